/* synth_workload.c - the synthetic workload generator and the filling-in
 * of request regions (see synth.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "strutil.h"
#include "synth.h"

/* Stream keys: the generator and the region filler never share numbers. */
#define WORKLOAD_KEY     0x776f726b6c6f6164ull /* "workload" */
#define FILL_REGIONS_KEY 0x66696c6c72656769ull /* "fillregi" */
#define TASKS_KEY        0x7461736b73706563ull /* "taskspec" */

#define MAX_WORKERS 100000
#define MAX_GPUS    1024

const char *const synth_workload_keys[] = {
    "rate",    "days",  "duration",      "seed",      "workers",   "gpus_per_worker", "models",
    "regions", "tasks", "task_duration", "task_gpus", "task_fail", "task_retries",    NULL};

void synth_workload_params_init(synth_workload_params *p)
{
    *p = (synth_workload_params){.days = 1, .seed = 1};
}

void synth_workload_params_free(synth_workload_params *p)
{
    mix_destroy(p->workers);
    mix_destroy(p->gpus_per_worker);
    mix_destroy(p->models);
    mix_destroy(p->regions);
    mix_destroy(p->tasks);
    mix_destroy(p->task_gpus);
    p->workers = p->gpus_per_worker = p->models = p->regions = NULL;
    p->tasks = p->task_gpus = NULL;
}

/* Counts that may be 0 ("0:2,16:1": a third of the requests run 16 tasks). */
static mix *parse_counts0(const char *spec, unsigned long long max, const char *what,
                          mu_error *errp)
{
    mix *m = mix_parse(spec, false, what, errp);
    for (size_t i = 0; m && i < mix_count(m); i++) {
        uint64_t v;
        if (str_to_u64(mix_name(m, i), 0, max, &v) < 0) {
            errprintf(errp, "%s: \"%s\" is not a whole number in 0..%llu", what, mix_name(m, i),
                      max);
            mix_destroy(m);
            m = NULL;
        }
    }
    return m;
}

static int set_mix(mix **slot, mix *m)
{
    if (!m)
        return -1;
    mix_destroy(*slot);
    *slot = m;
    return 0;
}

int synth_workload_params_set(synth_workload_params *p, const char *key, const char *value,
                              mu_error *errp)
{
    uint64_t u;
    double d;
    if (strcmp(key, "rate") == 0) {
        if (str_to_double(value, &d) < 0 || !(d > 0) || d > 1e7)
            return errprintf(errp,
                             "rate \"%s\" is not a number of requests per hour in "
                             "(0, 1e7]",
                             value);
        p->rate = d;
        p->has_rate = true;
    } else if (strcmp(key, "days") == 0) {
        if (str_to_double(value, &d) < 0 || !(d > 0) || d > 36500)
            return errprintf(errp, "days \"%s\" is not a number in (0, 36500]", value);
        p->days = d;
    } else if (strcmp(key, "duration") == 0) {
        dist x;
        if (dist_parse(value, &x, errp) < 0)
            return -1;
        p->duration = x;
        p->has_duration = true;
    } else if (strcmp(key, "seed") == 0) {
        if (str_to_u64(value, 0, UINT64_MAX, &u) < 0)
            return errprintf(errp, "seed \"%s\" is not a whole number >= 0", value);
        p->seed = u;
    } else if (strcmp(key, "workers") == 0) {
        return set_mix(&p->workers, mix_parse_counts(value, MAX_WORKERS, "workers", errp));
    } else if (strcmp(key, "gpus_per_worker") == 0) {
        return set_mix(&p->gpus_per_worker,
                       mix_parse_counts(value, MAX_GPUS, "gpus_per_worker", errp));
    } else if (strcmp(key, "models") == 0) {
        return set_mix(&p->models, mix_parse(value, false, "models", errp));
    } else if (strcmp(key, "regions") == 0) {
        return set_mix(&p->regions, mix_parse(value, false, "regions", errp));
    } else if (strcmp(key, "tasks") == 0) {
        return set_mix(&p->tasks, parse_counts0(value, WORKLOAD_MAX_TASKS, "tasks", errp));
    } else if (strcmp(key, "task_duration") == 0) {
        dist x;
        if (dist_parse(value, &x, errp) < 0)
            return -1;
        p->task_duration = x;
        p->has_task_duration = true;
    } else if (strcmp(key, "task_gpus") == 0) {
        return set_mix(&p->task_gpus, mix_parse_counts(value, MAX_GPUS, "task_gpus", errp));
    } else if (strcmp(key, "task_fail") == 0) {
        if (str_to_double(value, &d) < 0 || !(d >= 0 && d <= 1))
            return errprintf(errp, "task_fail \"%s\" is not a probability in [0, 1]", value);
        p->task_fail = d;
    } else if (strcmp(key, "task_retries") == 0) {
        if (str_to_u64(value, 0, WORKLOAD_MAX_TASK_RETRIES, &u) < 0)
            return errprintf(errp, "task_retries \"%s\" is not a whole number in 0..%u", value,
                             WORKLOAD_MAX_TASK_RETRIES);
        p->task_retries = (uint32_t)u;
    } else {
        return errprintf(errp, "unknown parameter \"%s\"", key);
    }
    return 0;
}

static int set_workload(void *p, const char *key, const char *value, mu_error *errp)
{
    return synth_workload_params_set(p, key, value, errp);
}

int synth_workload_params_load(synth_workload_params *p, const char *path, mu_error *errp)
{
    return synth_params_load(path, p, set_workload, errp);
}

static double ms(double s)
{
    return round(s * 1000.0) / 1000.0;
}

workload *synth_workload_generate(const synth_workload_params *p, mu_error *errp)
{
    if (!p->has_rate || !p->has_duration)
        return errprintf(errp, "both rate and duration are required"), NULL;
    if (p->tasks && !p->has_task_duration)
        return errprintf(errp, "tasks need task_duration (hours)"), NULL;
    workload *w = workload_create();
    if (!w)
        return errprintf(errp, "out of memory"), NULL;
    rng r;
    rng_seed_stream(&r, p->seed, WORKLOAD_KEY);
    double horizon_h = p->days * 24.0, t = 0;
    for (size_t i = 0;; i++) {
        t += rng_exponential(&r, 1.0 / p->rate);
        if (t >= horizon_h)
            break;
        /* A fixed number of draws per request, used or not, so changing
         * one mix does not reshuffle everything else. */
        double u_w = rng_uniform(&r), u_g = rng_uniform(&r);
        double u_m = rng_uniform(&r), u_r = rng_uniform(&r);
        double hours = dist_sample(&p->duration, &r);
        char name[32];
        snprintf(name, sizeof(name), "req-%zu", i);
        workload_request req = {
            .arrival_s = ms(t * 3600.0),
            /* at least a millisecond: the JSON lines keep milliseconds */
            .duration_s = fmax(ms(hours * 3600.0), 0.001),
            .workers = p->workers ? mix_count_at(p->workers, mix_pick(p->workers, u_w)) : 1,
            .gpus_per_worker = p->gpus_per_worker ? mix_count_at(p->gpus_per_worker,
                                                                 mix_pick(p->gpus_per_worker, u_g))
                                                  : 1,
            .gpu_model = p->models ? mix_name(p->models, mix_pick(p->models, u_m)) : "",
            .region = p->regions ? mix_name(p->regions, mix_pick(p->regions, u_r)) : "",
            .name = name,
        };
        if (strcmp(req.gpu_model, "any") == 0)
            req.gpu_model = "";
        if (strcmp(req.region, "any") == 0)
            req.region = "";
        if (p->tasks) {
            /* Their own stream: a workload without tasks draws as before. */
            rng rt;
            rng_seed_stream(&rt, p->seed ^ TASKS_KEY, i);
            double u_t = rng_uniform(&rt), u_tg = rng_uniform(&rt);
            req.tasks = mix_count_at(p->tasks, mix_pick(p->tasks, u_t));
            if (req.tasks) {
                unsigned g = p->task_gpus ? mix_count_at(p->task_gpus, mix_pick(p->task_gpus, u_tg))
                                          : req.gpus_per_worker;
                req.task_gpus = g < req.gpus_per_worker ? g : req.gpus_per_worker;
                req.task_s = dist_scale(&p->task_duration, 3600.0);
                req.task_fail = p->task_fail;
                req.task_retries = p->task_retries;
            }
        }
        if (workload_append(w, &req, errp) < 0) {
            workload_destroy(w);
            return NULL;
        }
    }
    return w;
}

int synth_fill_regions(workload *w, const mix *regions, uint64_t seed, mu_error *errp)
{
    size_t n = workload_count(w);
    for (size_t i = 0; regions && i < n; i++) {
        if (*workload_at(w, i)->region)
            continue;
        rng r;
        rng_seed_stream(&r, seed ^ FILL_REGIONS_KEY, i);
        const char *region = mix_name(regions, mix_pick(regions, rng_uniform(&r)));
        if (strcmp(region, "any") != 0 && workload_set_region(w, i, region, errp) < 0)
            return -1;
    }
    return 0;
}
