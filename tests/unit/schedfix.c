/* schedfix.c - see schedfix.h. */
#include "schedfix.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "testutil.h"

static void on_event(void *arg, const cluster *c, const char *topic, const worker *w,
                     const char *detail)
{
    (void)c;
    (void)w;
    (void)detail;
    schedfix *f = arg;
    f->events++;
    snprintf(f->last_topic, sizeof(f->last_topic), "%s", topic);
}

static void on_notice(void *arg, const cluster *c, const worker *w, bool join)
{
    (void)c;
    (void)w;
    schedfix *f = arg;
    if (join)
        f->joins++;
    else
        f->leaves++;
}

schedfix *schedfix_create(void)
{
    schedfix *f = test_calloc(1, sizeof(*f));
    f->cat = test_catalog();
    f->regions = test_regions();
    tiers_default(&f->tiers);
    sched_config cfg = {.reg = {.heartbeat_interval_ms = 1000,
                                .liveness = 3,
                                .cat = f->cat,
                                .regions = f->regions,
                                .tiers = &f->tiers}};
    sched_ops ops = {.cluster_event = on_event, .member_notice = on_notice, .arg = f};
    mu_error err;
    f->s = sched_create(&cfg, &ops, &err);
    if (!f->s)
        fail_msg("sched_create: %s", err.text);
    return f;
}

void schedfix_destroy(schedfix *f)
{
    sched_destroy(f->s);
    regions_destroy(f->regions);
    catalog_destroy(f->cat);
    test_free(f);
}

void schedfix_id(unsigned n, char out[ID_TEXT_LEN])
{
    snprintf(out, ID_TEXT_LEN, "%08x-0000-4000-8000-%012x", n + 1, n + 1);
}

const worker *schedfix_add(schedfix *f, unsigned n, const char *model, unsigned count,
                           const char *country, unsigned down, unsigned up, uint32_t price,
                           uint64_t now)
{
    char id[ID_TEXT_LEN], host[32];
    schedfix_id(n, id);
    snprintf(host, sizeof(host), "w%u", n);
    worker_device_spec devs[WORKER_MAX_DEVICES];
    for (unsigned i = 0; i < count; i++)
        devs[i] = (worker_device_spec){.model_claim = model};
    worker_spec spec = {.id = id,
                        .hostname = host,
                        .devices = devs,
                        .n_devices = count,
                        .country = country,
                        .bw_down_mbps = down,
                        .bw_up_mbps = up,
                        .price_uusd = price};
    mu_error err;
    const worker *w = sched_register(f->s, &spec, now, &err);
    if (!w)
        fail_msg("register %u: %s", n, err.text);
    return w;
}

match_request schedfix_request(const schedfix *f, const char *model, unsigned gpus,
                               unsigned workers)
{
    match_request rq = {0};
    const gpu_model *m = catalog_find(f->cat, model);
    if (!m)
        fail_msg("no model %s", model);
    rq.models[0] = (uint16_t)catalog_index(f->cat, m);
    rq.n_models = 1;
    rq.gpus_per_worker = (uint16_t)gpus;
    rq.workers = workers;
    rq.min_workers = workers;
    rq.min_tier = TIER_LOW;
    rq.placement = PLACE_SPREAD;
    return rq;
}

uint64_t schedfix_region(const schedfix *f, const char *name)
{
    int r = regions_index(f->regions, name);
    if (r < 0)
        fail_msg("no region %s", name);
    return 1ull << r;
}

void schedfix_check(const schedfix *f)
{
    mu_error err;
    if (sched_check(f->s, &err) < 0)
        fail_msg("invariant: %s", err.text);
}
