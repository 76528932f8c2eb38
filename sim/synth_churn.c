/* synth_churn.c - the synthetic churn generator and the filling-in of node
 * attributes (see synth.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "strutil.h"
#include "synth.h"

/* Keys mixed into the seed for streams other than the per-node churn
 * streams, so filling attributes never reuses a generator's numbers. */
#define FILL_NODES_KEY 0x66696c6c6e6f6465ull /* "fillnode" */

#define MAX_NODE_GPUS 1024

const char *const synth_churn_keys[] = {"nodes",      "days",      "session", "gap",
                                        "spoofers",   "seed",      "diurnal", "gpus",
                                        "gpu_counts", "countries", NULL};

void synth_churn_params_init(synth_churn_params *p)
{
    *p = (synth_churn_params){.nodes = 1000, .days = 7, .seed = 1, .peak_hour = 20};
}

void synth_churn_params_free(synth_churn_params *p)
{
    mix_destroy(p->gpus);
    mix_destroy(p->gpu_counts);
    mix_destroy(p->countries);
    p->gpus = p->gpu_counts = p->countries = NULL;
}

static void replace_mix(mix **slot, mix *m)
{
    mix_destroy(*slot);
    *slot = m;
}

int synth_churn_params_set(synth_churn_params *p, const char *key, const char *value,
                           mu_error *errp)
{
    uint64_t u;
    double d;
    if (strcmp(key, "nodes") == 0) {
        if (str_to_u64(value, 1, 100000000, &u) < 0)
            return errprintf(errp, "nodes \"%s\" is not a whole number in 1..100000000", value);
        p->nodes = (uint32_t)u;
    } else if (strcmp(key, "days") == 0) {
        if (str_to_double(value, &d) < 0 || !(d > 0) || d > 36500)
            return errprintf(errp, "days \"%s\" is not a number in (0, 36500]", value);
        p->days = d;
    } else if (strcmp(key, "session") == 0 || strcmp(key, "gap") == 0) {
        dist x;
        if (dist_parse(value, &x, errp) < 0)
            return -1;
        if (key[0] == 's') {
            p->session = x;
            p->has_session = true;
        } else {
            p->gap = x;
            p->has_gap = true;
        }
    } else if (strcmp(key, "spoofers") == 0) {
        if (str_to_double(value, &d) < 0 || d < 0 || d > 1)
            return errprintf(errp, "spoofers \"%s\" is not a fraction in [0, 1]", value);
        p->spoofers = d;
    } else if (strcmp(key, "seed") == 0) {
        if (str_to_u64(value, 0, UINT64_MAX, &u) < 0)
            return errprintf(errp, "seed \"%s\" is not a whole number >= 0", value);
        p->seed = u;
    } else if (strcmp(key, "diurnal") == 0) {
        double amp, peak = p->peak_hour;
        char buf[64];
        if (str_copy(buf, value, sizeof(buf)) >= sizeof(buf))
            return errprintf(errp, "diurnal \"%.20s...\" is too long", value);
        char *comma = strchr(buf, ',');
        if (comma)
            *comma = '\0';
        if (str_to_double(buf, &amp) < 0 || amp < 0 || amp > 0.95 ||
            (comma && (str_to_double(comma + 1, &peak) < 0 || peak < 0 || peak >= 24)))
            return errprintf(errp,
                             "diurnal \"%s\" is not AMPLITUDE[,PEAK_HOUR] with amplitude in "
                             "[0, 0.95] and the peak in [0, 24)",
                             value);
        p->diurnal = amp;
        p->peak_hour = peak;
    } else if (strcmp(key, "gpus") == 0) {
        mix *m = mix_parse(value, false, "gpus", errp);
        if (!m)
            return -1;
        replace_mix(&p->gpus, m);
    } else if (strcmp(key, "gpu_counts") == 0) {
        mix *m = mix_parse_counts(value, MAX_NODE_GPUS, "gpu_counts", errp);
        if (!m)
            return -1;
        replace_mix(&p->gpu_counts, m);
    } else if (strcmp(key, "countries") == 0) {
        mix *m = mix_parse(value, true, "countries", errp);
        for (size_t i = 0; m && i < mix_count(m); i++) {
            double off = mix_extra(m, i, 0);
            const char *cc = mix_name(m, i);
            if (strlen(cc) != 2 || off < -12 || off > 14) {
                errprintf(errp,
                          "countries: \"%s\" needs a two-letter code and a UTC offset in "
                          "[-12, 14] hours",
                          cc);
                mix_destroy(m);
                m = NULL;
            }
        }
        if (!m)
            return -1;
        replace_mix(&p->countries, m);
    } else {
        return errprintf(errp, "unknown parameter \"%s\"", key);
    }
    return 0;
}

static int set_churn(void *p, const char *key, const char *value, mu_error *errp)
{
    return synth_churn_params_set(p, key, value, errp);
}

int synth_churn_params_load(synth_churn_params *p, const char *path, mu_error *errp)
{
    return synth_params_load(path, p, set_churn, errp);
}

/* Hours to seconds, rounded to milliseconds so the CSV writer's text reads
 * back as exactly the same double. */
static double to_seconds(double hours)
{
    return round(hours * 3600.0 * 1000.0) / 1000.0;
}

/* The end of an offline gap of G hours of operational time begun at T
 * (hours, UTC): solve L(x) = L(t) + g for the cumulative join rate
 * L(x) = x + a P / (2 pi) sin(2 pi (x + off - peak) / P), P = 24 h. L is
 * increasing with slope in [1 - a, 1 + a], which brackets the answer;
 * Newton's method stays inside that bracket or bisects. */
static double diurnal_end(double t, double g, double a, double phase_h)
{
    if (a == 0)
        return t + g;
    const double P = 24.0, w = 2.0 * M_PI / P;
    double target = t + a / w * sin(w * (t + phase_h)) + g;
    double lo = t + g / (1 + a), hi = t + g / (1 - a);
    double x = t + g;
    for (int i = 0; i < 100; i++) {
        double f = x + a / w * sin(w * (x + phase_h)) - target;
        if (f < 0)
            lo = x;
        else
            hi = x;
        double next = x - f / (1 + a * cos(w * (x + phase_h)));
        if (!(next > lo && next < hi))
            next = 0.5 * (lo + hi);
        if (fabs(next - x) < 1e-10)
            return next;
        x = next;
    }
    return x;
}

typedef struct node_plan {
    double offset_h; /* UTC offset of the node's country */
    bool spoofer;
} node_plan;

/* One node's history from the warm-up to the end; appends its events. */
static int simulate_node(churn_trace *t, const synth_churn_params *p, uint32_t node, rng *r,
                         const node_plan *plan, mu_error *errp)
{
    double es = dist_mean(&p->session), eg = dist_mean(&p->gap);
    double horizon = p->days * 24.0;
    /* Ten mean cycles settle an alternating renewal process close to its
     * equilibrium; a year is plenty for any cycle worth simulating. */
    double warm = 10.0 * (es + eg);
    if (!(warm <= 8760.0))
        warm = 8760.0;
    double x = -warm;
    bool up = rng_uniform(r) < es / (es + eg);
    bool joined = false;
    double phase = plan->offset_h - p->peak_hour;
    for (;;) {
        double len = dist_sample(up ? &p->session : &p->gap, r);
        double next = up ? x + len : diurnal_end(x, len, p->diurnal, phase);
        if (x < 0 && next >= 0) {
            /* The state at time 0, so a replay knows every node from the start. */
            if (churn_append(t, 0, node, up ? CHURN_JOIN : CHURN_LEAVE, errp) < 0)
                return -1;
            if (up && plan->spoofer && !joined && churn_append(t, 0, node, CHURN_SPOOF, errp) < 0)
                return -1;
            joined |= up;
        }
        if (next >= horizon)
            return 0;
        x = next;
        up = !up;
        if (x >= 0) {
            double ts = to_seconds(x);
            if (churn_append(t, ts, node, up ? CHURN_JOIN : CHURN_LEAVE, errp) < 0)
                return -1;
            if (up && plan->spoofer && !joined && churn_append(t, ts, node, CHURN_SPOOF, errp) < 0)
                return -1;
            joined |= up;
        }
    }
}

churn_trace *synth_churn_generate(const synth_churn_params *p, mu_error *errp)
{
    if (!p->has_session || !p->has_gap)
        return errprintf(errp, "both session and gap distributions are required"), NULL;
    churn_trace *t = churn_create();
    if (!t)
        return errprintf(errp, "out of memory"), NULL;
    for (uint32_t i = 0; i < p->nodes; i++) {
        char name[24];
        uint32_t idx;
        snprintf(name, sizeof(name), "node-%u", i);
        if (churn_node_intern(t, name, &idx, errp) < 0)
            goto error;
    }
    for (uint32_t i = 0; i < p->nodes; i++) {
        rng r;
        rng_seed_stream(&r, p->seed, i);
        /* Always four draws for the attributes, used or not, so that the
         * churn that follows does not depend on which mixes were given. */
        double u_gpu = rng_uniform(&r), u_cnt = rng_uniform(&r);
        double u_cty = rng_uniform(&r), u_spoof = rng_uniform(&r);
        node_plan plan = {0, u_spoof < p->spoofers};
        const char *model = p->gpus ? mix_name(p->gpus, mix_pick(p->gpus, u_gpu)) : "";
        uint32_t count = 0;
        if (p->gpu_counts)
            count = mix_count_at(p->gpu_counts, mix_pick(p->gpu_counts, u_cnt));
        else if (p->gpus)
            count = 1;
        const char *country = "";
        if (p->countries) {
            size_t k = mix_pick(p->countries, u_cty);
            country = mix_name(p->countries, k);
            plan.offset_h = mix_extra(p->countries, k, 0);
        }
        if (churn_node_set(t, i, model, count, country, errp) < 0 ||
            simulate_node(t, p, i, &r, &plan, errp) < 0)
            goto error;
    }
    if (churn_sort(t, errp) < 0)
        goto error;
    return t;
error:
    churn_destroy(t);
    return NULL;
}

int synth_fill_nodes(churn_trace *t, const mix *gpus, const mix *counts, const mix *countries,
                     uint64_t seed, mu_error *errp)
{
    /* Check the country codes before touching any node. */
    for (size_t k = 0; countries && k < mix_count(countries); k++) {
        const char *cc = mix_name(countries, k);
        if (strlen(cc) != 2)
            return errprintf(errp, "countries: \"%s\" is not a two-letter code", cc);
    }
    size_t n = churn_node_count(t);
    for (uint32_t i = 0; i < n; i++) {
        churn_node nd;
        churn_node_get(t, i, &nd);
        rng r;
        rng_seed_stream(&r, seed ^ FILL_NODES_KEY, i);
        double u_gpu = rng_uniform(&r), u_cnt = rng_uniform(&r), u_cty = rng_uniform(&r);
        const char *model = NULL, *country = NULL;
        uint32_t count = 0;
        if (gpus && !*nd.gpu_model)
            model = mix_name(gpus, mix_pick(gpus, u_gpu));
        if (!nd.gpu_count) {
            if (counts)
                count = mix_count_at(counts, mix_pick(counts, u_cnt));
            else if (model)
                count = 1;
        }
        if (countries && !*nd.country)
            country = mix_name(countries, mix_pick(countries, u_cty));
        if (churn_node_set(t, i, model, count, country, errp) < 0)
            return -1;
    }
    return 0;
}
