/* test_engine.c - the replay engine: its event queue, a tiny scenario whose
 * every number is worked out by hand, determinism, the reports, and input
 * the engine must refuse. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "engine.h"
#include "evq.h"
#include "rng.h"
#include "synth.h"
#include "testutil.h"

/* --- fixtures ----------------------------------------------------------------------- */

typedef struct fix {
    catalog *cat;
    region_table *regions;
    tier_table tiers;
    mix *tiers_medium;
    engine_config cfg;
} fix;

static int setup(void **state)
{
    fix *f = test_calloc(1, sizeof(*f));
    f->cat = test_catalog();
    f->regions = test_regions();
    tiers_default(&f->tiers);
    mu_error err;
    f->tiers_medium = mix_parse("medium:1", false, "tiers", &err);
    assert_non_null(f->tiers_medium);
    engine_config_init(&f->cfg);
    f->cfg.cat = f->cat;
    f->cfg.regions = f->regions;
    f->cfg.tiers = &f->tiers;
    f->cfg.fill_tiers = f->tiers_medium;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix *f = *state;
    mix_destroy(f->tiers_medium);
    regions_destroy(f->regions);
    catalog_destroy(f->cat);
    test_free(f);
    return 0;
}

static uint32_t node(churn_trace *t, const char *name, const char *model, unsigned gpus,
                     const char *cc)
{
    mu_error err;
    uint32_t i;
    assert_int_equal(churn_node_intern(t, name, &i, &err), 0);
    assert_int_equal(churn_node_set(t, i, model, gpus, cc, &err), 0);
    return i;
}

static void event(churn_trace *t, double at, uint32_t n, churn_kind k)
{
    mu_error err;
    assert_int_equal(churn_append(t, at, n, k, &err), 0);
}

static void request(workload *w, double at, double dur, unsigned workers, const char *model)
{
    mu_error err;
    workload_request r = {.arrival_s = at,
                          .duration_s = dur,
                          .workers = workers,
                          .gpus_per_worker = 1,
                          .gpu_model = model};
    assert_int_equal(workload_append(w, &r, &err), 0);
}

static engine *run(const engine_config *cfg, churn_trace *t, workload *w)
{
    mu_error err = {""};
    engine *e = engine_create(cfg, t, w, &err);
    if (!e)
        fail_msg("engine_create: %s", err.text);
    if (engine_run(e, &err) < 0)
        fail_msg("engine_run: %s", err.text);
    if (sched_check(engine_sched(e), &err) < 0)
        fail_msg("core invariant: %s", err.text);
    return e;
}

/* --- the event queue ----------------------------------------------------------------- */

static void test_evq_order(void **state)
{
    (void)state;
    evq *q = evq_create();
    assert_non_null(q);
    /* same time: class first, then push order */
    assert_int_equal(evq_push(q, 10, 3, 1, 0, 0, 0), 0);
    assert_int_equal(evq_push(q, 10, 0, 2, 0, 0, 0), 0);
    assert_int_equal(evq_push(q, 5, 9, 3, 0, 0, 0), 0);
    assert_int_equal(evq_push(q, 10, 0, 4, 0, 0, 0), 0);
    unsigned want[] = {3, 2, 4, 1};
    evq_event e;
    for (int i = 0; i < 4; i++) {
        assert_true(evq_pop(q, &e));
        assert_int_equal(e.kind, want[i]);
    }
    assert_false(evq_pop(q, &e));
    assert_null(evq_peek(q));
    /* many random pushes come out sorted, ties in push order */
    rng r;
    rng_seed(&r, 42);
    for (uint32_t i = 0; i < 20000; i++)
        assert_int_equal(evq_push(q, rng_below(&r, 500), (uint16_t)rng_below(&r, 3), 0, i, 0, 0),
                         0);
    assert_int_equal(evq_size(q), 20000);
    evq_event prev = {0};
    for (int i = 0; i < 20000; i++) {
        assert_true(evq_pop(q, &e));
        if (i) {
            assert_true(e.t > prev.t || (e.t == prev.t && e.order > prev.order));
            if (e.t == prev.t && e.order >> 48 == prev.order >> 48)
                assert_true(e.a > prev.a);
        }
        prev = e;
    }
    assert_int_equal(evq_peak(q), 20000);
    evq_destroy(q);
}

/* --- a scenario worked out by hand ------------------------------------------------------
 *
 * Workers a, b (t = 0) and c (t = 500 s): one RTX 4090 each, in Germany, tier
 * medium. Requests: r0 at 10 s and r1 at 20 s, each 2 workers x 1 RTX 4090
 * for an hour. Members acknowledge 2 s after they are told. a fails at
 * 1000 s. Heartbeat 1 s x liveness 3: the core takes a offline at 1003 s.
 *
 *   10 s    r0 matched to a and b (the only workers)      met 1
 *   12 s    a and b acknowledge: r0 ready                time to ready 2000 ms
 *   20 s    r1: nobody free                              unmet 1 (model)
 *   500 s   c joins
 *   1000 s  a's connection is lost: suspect; r0 still ready (its seat waits)
 *   1003 s  a offline: seat lost, r0 degraded, c replaces a at once
 *   1005 s  c acknowledges: r0 ready again              degraded 2000 ms,
 *                                                        reroute latency 0 ms
 *   3610 s  r0 released by its owner
 *   3620 s  end (r1's arrival + duration)
 *
 * GPU-seconds allocated: 2 GPUs x 3600 s = 7200 = 2 GPU-hours; ready:
 * 2 x (3600 - 2 - 2) = 7192; online: a 1000 + b 3620 + c 3120 = 7740.
 */
static churn_trace *three_workers(double fail_at)
{
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 4090", 1, "DE");
    uint32_t b = node(t, "b", "RTX 4090", 1, "DE");
    uint32_t c = node(t, "c", "RTX 4090", 1, "DE");
    event(t, 0, a, CHURN_JOIN);
    event(t, 0, b, CHURN_JOIN);
    event(t, 500, c, CHURN_JOIN);
    event(t, fail_at, a, CHURN_LEAVE);
    mu_error err;
    assert_int_equal(churn_sort(t, &err), 0);
    return t;
}

static void test_hand_checked(void **state)
{
    fix *f = *state;
    churn_trace *t = three_workers(1000);
    workload *w = workload_create();
    request(w, 10, 3600, 2, "RTX 4090");
    request(w, 20, 3600, 2, "RTX 4090");
    f->cfg.interval_ms = 1000000;
    engine *e = run(&f->cfg, t, w);
    const sim_report *r = engine_report(e);

    assert_int_equal(r->end_ms, 3620000);
    assert_int_equal(r->requests, 2);
    assert_int_equal(r->met, 1);
    assert_int_equal(r->unmet, 1);
    assert_int_equal(r->invalid, 0);
    assert_int_equal(report_counts_get(&r->unmet_by, "model"), 1);
    assert_true(fabs(report_success_rate(r) - 0.5) < 1e-12);
    assert_int_equal(r->reached_ready, 1);
    assert_int_equal(r->time_to_ready.n, 1);
    assert_int_equal(r->time_to_ready.p50_ms, 2000);
    assert_true(r->time_to_ready.mean_ms == 2000.0);
    assert_int_equal(r->clusters_degraded, 1);
    assert_int_equal(r->degraded_ms, 2000);
    assert_int_equal(r->cluster_ms, 3600000);
    assert_int_equal(r->member_losses, 1);
    assert_int_equal(r->replacements, 1);
    assert_int_equal(r->losses_unresolved, 0);
    assert_int_equal(r->reroute_latency.n, 1);
    assert_int_equal(r->reroute_latency.max_ms, 0);
    assert_int_equal(r->ended_released, 1);
    assert_int_equal(r->ended_failed + r->ended_expired + r->active_at_end, 0);
    assert_true(fabs(r->gpu_hours_allocated - 2.0) < 1e-9);
    assert_true(fabs(r->gpu_hours_ready - 7192.0 / 3600.0) < 1e-9);
    assert_true(fabs(r->gpu_hours_online - 7740.0 / 3600.0) < 1e-9);
    assert_true(fabs(report_goodput(r) - 7192.0 / 7200.0) < 1e-9);
    assert_true(fabs(report_utilisation(r) - 7200.0 / 7740.0) < 1e-9);

    /* what the core said, counted by topic */
    assert_int_equal(report_counts_get(&r->topics, "cluster.created"), 1);
    assert_int_equal(report_counts_get(&r->topics, "cluster.member_joined"), 3);
    assert_int_equal(report_counts_get(&r->topics, "cluster.ready"), 2);
    assert_int_equal(report_counts_get(&r->topics, "cluster.member_lost"), 1);
    assert_int_equal(report_counts_get(&r->topics, "cluster.degraded"), 1);
    assert_int_equal(report_counts_get(&r->topics, "cluster.member_replaced"), 1);
    assert_int_equal(report_counts_get(&r->topics, "cluster.released"), 1);

    /* workers */
    assert_int_equal(r->joins, 3);
    assert_int_equal(r->failures, 1);
    assert_int_equal(r->goodbyes, 0);
    assert_int_equal(r->final_online, 2);
    assert_int_equal(r->final_offline, 1);
    assert_int_equal(r->final_allocated, 0);
    assert_int_equal(report_counts_get(&r->worker_transitions, "online->suspect"), 1);
    assert_int_equal(report_counts_get(&r->worker_transitions, "suspect->offline"), 1);

    /* the engine: 4 churn events, 2 arrivals, 3 acks, 1 release, 4 samples;
     * one core tick (the reconnect grace at 1003 s); no keep-alive needed in
     * an hour */
    assert_int_equal(r->churn_events, 4);
    assert_int_equal(r->arrivals, 2);
    assert_int_equal(r->acks, 3);
    assert_int_equal(r->releases, 1);
    assert_int_equal(r->samples, 4);
    assert_int_equal(r->ticks, 1);
    assert_int_equal(r->touches, 0);
    assert_int_equal(r->events, 4 + 2 + 3 + 1 + 4 + 1);

    /* the time series: samples at 1000, 2000, 3000 and 3620 s */
    assert_int_equal(r->n_rows, 4);
    const report_row *row = &r->rows[0];
    assert_int_equal(row->t_ms, 1000000);
    assert_int_equal(row->online_workers, 2);
    assert_int_equal(row->suspect_workers, 1);
    assert_int_equal(row->allocated_workers, 2);
    assert_int_equal(row->ready_clusters, 1);
    assert_int_equal(row->requests, 2);
    assert_int_equal(row->met, 1);
    assert_int_equal(row->unmet, 1);
    assert_int_equal(row->member_losses, 0);
    row = &r->rows[1];
    assert_int_equal(row->t_ms, 2000000);
    assert_int_equal(row->online_workers, 2);
    assert_int_equal(row->suspect_workers, 0);
    assert_int_equal(row->allocated_workers, 2);
    assert_int_equal(row->allocated_gpus, 2);
    assert_int_equal(row->active_clusters, 1);
    assert_int_equal(row->requests, 0);
    assert_int_equal(row->member_losses, 1);
    assert_int_equal(row->replacements, 1);
    assert_int_equal(r->rows[3].t_ms, 3620000);
    assert_int_equal(r->rows[3].active_clusters, 0);
    assert_int_equal(r->rows[3].allocated_workers, 0);

    engine_destroy(e);
    workload_destroy(w);
    churn_destroy(t);
}

/* The same, but a says goodbye: offline at once, no grace and no tick. */
static void test_goodbye(void **state)
{
    fix *f = *state;
    churn_trace *t = three_workers(1000);
    workload *w = workload_create();
    request(w, 10, 3600, 2, "RTX 4090");
    f->cfg.goodbye = 1;
    engine *e = run(&f->cfg, t, w);
    const sim_report *r = engine_report(e);
    assert_int_equal(r->goodbyes, 1);
    assert_int_equal(r->failures, 0);
    assert_int_equal(r->ticks, 0);
    assert_int_equal(r->degraded_ms, 2000); /* 1000 s to c's ack at 1002 s */
    assert_int_equal(r->replacements, 1);
    assert_int_equal(report_counts_get(&r->worker_transitions, "online->offline"), 1);
    assert_true(fabs(r->gpu_hours_ready - 2.0 * (3600 - 4) / 3600.0) < 1e-9);
    engine_destroy(e);
    workload_destroy(w);
    churn_destroy(t);
}

/* A member that fails before it acknowledges, with nobody to replace it:
 * the core retries the seat every second and fails the cluster when the
 * provisioning timeout (30 s) runs out. */
static void test_provisioning_fails(void **state)
{
    fix *f = *state;
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 4090", 1, "DE");
    uint32_t b = node(t, "b", "RTX 4090", 1, "DE");
    event(t, 0, a, CHURN_JOIN);
    event(t, 0, b, CHURN_JOIN);
    event(t, 11, b, CHURN_LEAVE);
    workload *w = workload_create();
    request(w, 10, 600, 2, "RTX 4090");
    engine *e = run(&f->cfg, t, w);
    const sim_report *r = engine_report(e);
    assert_int_equal(r->met, 1);
    assert_int_equal(r->reached_ready, 0);
    assert_int_equal(r->ended_failed, 1);
    assert_int_equal(r->acks, 1); /* a's; b was gone before its turn */
    assert_int_equal(r->member_losses, 1);
    assert_int_equal(r->losses_unresolved, 1);
    assert_int_equal(r->replacements, 0);
    assert_int_equal(r->time_to_ready.n, 0);
    assert_int_equal(report_counts_get(&r->topics, "cluster.failed"), 1);
    /* ticks: b offline at 14 s, retries at 15..39 s, the timeout at 40 s,
     * and one more retry at 41 s that finds the cluster ended */
    assert_int_equal(r->ticks, 1 + 25 + 1 + 1);
    assert_true(fabs(r->gpu_hours_ready) < 1e-12);
    assert_true(isnan(report_goodput(r)) == 0);
    engine_destroy(e);
    workload_destroy(w);
    churn_destroy(t);
}

/* --- determinism, policies, reports ------------------------------------------------------- */

static churn_trace *synth_churn(uint32_t nodes, double days, uint64_t seed)
{
    synth_churn_params p;
    synth_churn_params_init(&p);
    mu_error err;
    assert_int_equal(synth_churn_params_set(&p, "session", "weibull:0.6,30", &err), 0);
    assert_int_equal(synth_churn_params_set(&p, "gap", "lognormal:0.5,1.2", &err), 0);
    p.nodes = nodes;
    p.days = days;
    p.seed = seed;
    churn_trace *t = synth_churn_generate(&p, &err);
    synth_churn_params_free(&p);
    if (!t)
        fail_msg("%s", err.text);
    return t;
}

static workload *synth_workload(double rate, double days, uint64_t seed)
{
    synth_workload_params p;
    synth_workload_params_init(&p);
    mu_error err;
    assert_int_equal(synth_workload_params_set(&p, "duration", "lognormal:0.5,1", &err), 0);
    assert_int_equal(synth_workload_params_set(&p, "workers", "1:6,2:3,4:1", &err), 0);
    assert_int_equal(synth_workload_params_set(&p, "gpus_per_worker", "1:3,2:1", &err), 0);
    assert_int_equal(synth_workload_params_set(&p, "models", "any:3,RTX 4090:2,A100 80GB:1", &err),
                     0);
    assert_int_equal(synth_workload_params_set(&p, "regions", "any:3,europe:1", &err), 0);
    p.rate = rate;
    p.has_rate = true;
    p.days = days;
    p.seed = seed;
    workload *w = synth_workload_generate(&p, &err);
    synth_workload_params_free(&p);
    if (!w)
        fail_msg("%s", err.text);
    return w;
}

typedef struct outputs {
    sbuf json, csv, html;
} outputs;

static void replay_to(fix *f, engine_policy policy, uint64_t seed, outputs *o)
{
    churn_trace *t = synth_churn(400, 5, 7);
    workload *w = synth_workload(20, 5, 8);
    engine_config cfg = f->cfg;
    cfg.fill_tiers = NULL; /* the defaults */
    cfg.policy = policy;
    cfg.seed = seed;
    cfg.goodbye = 0.3;
    cfg.ack_delay = (dist){DIST_LOGNORMAL, 0.5, 0.8};
    engine *e = run(&cfg, t, w);
    mu_error err;
    sbuf_init(&o->json);
    sbuf_init(&o->csv);
    sbuf_init(&o->html);
    assert_int_equal(report_json(engine_report(e), &o->json, &err), 0);
    assert_int_equal(report_csv(engine_report(e), &o->csv, &err), 0);
    assert_int_equal(report_html(engine_report(e), &o->html, &err), 0);
    engine_destroy(e);
    workload_destroy(w);
    churn_destroy(t);
}

static void outputs_free(outputs *o)
{
    sbuf_free(&o->json);
    sbuf_free(&o->csv);
    sbuf_free(&o->html);
}

static bool same(const sbuf *a, const sbuf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void test_determinism(void **state)
{
    fix *f = *state;
    outputs a, b, c;
    replay_to(f, ENGINE_AS_REQUESTED, 5, &a);
    replay_to(f, ENGINE_AS_REQUESTED, 5, &b);
    replay_to(f, ENGINE_AS_REQUESTED, 6, &c);
    assert_true(same(&a.json, &b.json));
    assert_true(same(&a.csv, &b.csv));
    assert_true(same(&a.html, &b.html));
    assert_false(same(&a.json, &c.json)); /* the seed matters */
    outputs_free(&a);
    outputs_free(&b);
    outputs_free(&c);
}

static void test_reports(void **state)
{
    fix *f = *state;
    outputs o;
    replay_to(f, ENGINE_SPREAD, 5, &o);
    cJSON *j = cJSON_Parse(o.json.data);
    assert_non_null(j);
    static const char *const top[] = {"run",      "engine",    "workers",      "requests",
                                      "clusters", "gpu_hours", "verification", "tasks"};
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
        assert_non_null(cJSON_GetObjectItem(j, top[i]));
    cJSON *rq = cJSON_GetObjectItem(j, "requests");
    assert_true(cJSON_GetObjectItem(rq, "requests")->valuedouble > 50);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(rq, "success_rate")));
    cJSON *cl = cJSON_GetObjectItem(j, "clusters");
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(cl, "time_to_ready"), "p95_ms"));
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(cl, "events"), "cluster.created"));
    /* not simulated: null, never a zero that was not measured */
    cJSON *v = cJSON_GetObjectItem(j, "verification"), *tk = cJSON_GetObjectItem(j, "tasks");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(v, "simulated")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(v, "false_positives")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(v, "false_negatives")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(tk, "simulated")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(tk, "retries")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(tk, "goodput")));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "run"), "policy")->valuestring,
                        "spread");
    cJSON_Delete(j);
    /* CSV: a header, then one row per hour of the 5 days (plus the end) */
    size_t lines = 0;
    for (size_t i = 0; i < o.csv.len; i++)
        lines += o.csv.data[i] == '\n';
    assert_true(lines >= 1 + 5 * 24);
    assert_non_null(strstr(o.csv.data, "time_s,online_workers,"));
    assert_null(strstr(o.csv.data, "verify_checks")); /* columns only of what ran */
    assert_null(strstr(o.csv.data, "tasks_running"));
    /* HTML: charts inline, nothing loaded from elsewhere */
    assert_non_null(strstr(o.html.data, "<svg"));
    assert_non_null(strstr(o.html.data, "<polyline"));
    assert_null(strstr(o.html.data, "<script"));
    assert_null(strstr(o.html.data, "http://www.w3.org/1999")); /* only the SVG namespace */
    assert_null(strstr(o.html.data, "src="));
    outputs_free(&o);
}

static void test_policies_differ(void **state)
{
    fix *f = *state;
    outputs p, s;
    replay_to(f, ENGINE_PACK, 5, &p);
    replay_to(f, ENGINE_SPREAD, 5, &s);
    assert_false(same(&p.json, &s.json));
    outputs_free(&p);
    outputs_free(&s);
}

/* --- what the engine refuses ---------------------------------------------------------------- */

static void expect_refused(fix *f, churn_trace *t, workload *w, const char *says)
{
    mu_error err = {""};
    engine *e = engine_create(&f->cfg, t, w, &err);
    if (e)
        fail_msg("accepted; expected \"%s\"", says);
    if (!strstr(err.text, says))
        fail_msg("error \"%s\" does not say \"%s\"", err.text, says);
}

static void test_refused(void **state)
{
    fix *f = *state;
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 9999", 1, "DE");
    event(t, 0, a, CHURN_JOIN);
    expect_refused(f, t, NULL, "node a: GPU model \"RTX 9999\" is not in the catalog");
    churn_destroy(t);

    t = churn_create();
    a = node(t, "big", "RTX 4090", 64, "DE");
    event(t, 0, a, CHURN_JOIN);
    expect_refused(f, t, NULL, "node big has 64 GPUs");
    churn_destroy(t);

    t = churn_create();
    a = node(t, "x", "RTX 4090", 1, "QQ");
    event(t, 0, a, CHURN_JOIN);
    expect_refused(f, t, NULL, "node x: country \"QQ\"");
    churn_destroy(t);

    t = three_workers(100);
    workload *w = workload_create();
    request(w, 10, 60, 1, "Voodoo 2");
    expect_refused(f, t, w, "request 0: GPU model \"Voodoo 2\"");
    workload_destroy(w);
    w = workload_create();
    mu_error err;
    workload_request r = {.arrival_s = 1,
                          .duration_s = 5,
                          .workers = 1,
                          .gpus_per_worker = 1,
                          .region = "atlantis",
                          .name = "job-1"};
    assert_int_equal(workload_append(w, &r, &err), 0);
    expect_refused(f, t, w, "request 0 job-1: \"atlantis\" is not a region");
    workload_destroy(w);

    engine_config bad = f->cfg;
    bad.keepalive_ms = 1000;
    mu_error e2 = {""};
    assert_null(engine_create(&bad, t, NULL, &e2));
    assert_non_null(strstr(e2.text, "keep-alive"));
    churn_destroy(t);
}

/* Requests the core refuses are counted as invalid, by reason. */
static void test_invalid_requests(void **state)
{
    fix *f = *state;
    churn_trace *t = three_workers(100);
    workload *w = workload_create();
    request(w, 1, 3600.0 * 24 * 365, 1, "RTX 4090"); /* a year: beyond max_hours */
    mu_error err;
    workload_request r = {.arrival_s = 2, .duration_s = 60, .workers = 1, .gpus_per_worker = 32};
    assert_int_equal(workload_append(w, &r, &err), 0);
    f->cfg.until_ms = 10000;
    engine *e = run(&f->cfg, t, w);
    const sim_report *rep = engine_report(e);
    assert_int_equal(rep->requests, 2);
    assert_int_equal(rep->invalid, 2);
    assert_int_equal(report_counts_get(&rep->invalid_by, "duration must be 1..2160 hours"), 1);
    assert_int_equal(report_counts_get(&rep->invalid_by, "GPUs per worker must be 1..16"), 1);
    engine_destroy(e);
    workload_destroy(w);
    churn_destroy(t);
}

/* An event pushed by a core tick (a replacement's acknowledgement) comes
 * before the next core deadline: it must be handled at its own time, not
 * once the core has no deadline left before the next event of the queue.
 *
 * r0 (1 x RTX 4090, from 10 s) gets a, r1 (1 x A100, from 20 s) gets x.
 * x fails at 1000 s and is offline at 1003 s: no A100 is free, so the core
 * retries r1's seat every second until r1 is released at 3620 s. a fails
 * at 2000 s (offline at 2003 s); c joins at 2500 s and takes a's seat at
 * the retry of that instant; it acknowledges at 2502 s, in the middle of
 * r1's retries: r0 is degraded 2003 s to 2502 s, r1 1003 s to 3620 s. */
static void test_ack_from_a_tick(void **state)
{
    fix *f = *state;
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 4090", 1, "DE");
    uint32_t x = node(t, "x", "A100 80GB", 1, "DE");
    uint32_t c = node(t, "c", "RTX 4090", 1, "DE");
    event(t, 0, a, CHURN_JOIN);
    event(t, 0, x, CHURN_JOIN);
    event(t, 1000, x, CHURN_LEAVE);
    event(t, 2000, a, CHURN_LEAVE);
    event(t, 2500, c, CHURN_JOIN);
    mu_error err;
    assert_int_equal(churn_sort(t, &err), 0);
    workload *w = workload_create();
    request(w, 10, 3600, 1, "RTX 4090");
    request(w, 20, 3600, 1, "A100 80GB");
    engine *e = run(&f->cfg, t, w);
    const sim_report *r = engine_report(e);
    assert_int_equal(r->reached_ready, 2);
    assert_int_equal(r->replacements, 1);
    assert_int_equal(r->reroute_latency.max_ms, 497000);
    assert_int_equal(r->degraded_ms, 499000 + 2617000);
    assert_int_equal(r->acks, 3);
    engine_destroy(e);
    workload_destroy(w);
    churn_destroy(t);
}

/* A long quiet stretch: live workers are touched once per keep-alive
 * interval, so the core never takes them for silent. */
static void test_keepalive(void **state)
{
    fix *f = *state;
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 4090", 1, "DE");
    uint32_t b = node(t, "b", "RTX 4090", 1, "DE");
    event(t, 0, a, CHURN_JOIN);
    event(t, 0, b, CHURN_JOIN);
    event(t, 10 * 86400.0, b, CHURN_LEAVE);
    f->cfg.interval_ms = 86400000;
    engine *e = run(&f->cfg, t, NULL);
    const sim_report *r = engine_report(e);
    assert_int_equal(r->final_online, 1);
    assert_int_equal(r->reconnects, 0);
    assert_int_equal(report_counts_get(&r->worker_transitions, "online->suspect"), 1);
    /* the registry's online deadline is 1.5 keep-alive intervals after a
     * touch: both workers are touched together at 1.5 h, 3 h, ... up to
     * 238.5 h (b leaves at 240 h, before that instant's timers) */
    assert_int_equal(r->touches, 2 * 159);
    assert_int_equal(r->ticks, 0);
    engine_destroy(e);
    churn_destroy(t);
}

/* The Nth allocation fails, for every N up to a whole replay's worth: the
 * engine fails cleanly with a reason (ASan and LeakSanitizer check the
 * rest), or succeeds with the same report as without failures. */
static void test_allocation_failures(void **state)
{
    fix *f = *state;
    churn_trace *t = three_workers(1000);
    workload *w = workload_create();
    request(w, 10, 3600, 2, "RTX 4090");
    request(w, 20, 3600, 2, "RTX 4090");
    engine *ref = run(&f->cfg, t, w);
    uint64_t want = engine_report(ref)->events;
    engine_destroy(ref);
    size_t n;
    for (n = 1; n < 5000; n++) {
        mu_error err = {""};
        test_fail_alloc_after(n);
        engine *e = engine_create(&f->cfg, t, w, &err);
        int rc = e ? engine_run(e, &err) : -1;
        test_fail_alloc_after(0);
        if (rc == 0) {
            assert_int_equal(engine_report(e)->events, want);
            engine_destroy(e);
            break;
        }
        if (!strstr(err.text, "memory"))
            fail_msg("allocation %zu: \"%s\" does not say out of memory", n, err.text);
        engine_destroy(e);
    }
    assert_true(n < 5000);
    workload_destroy(w);
    churn_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evq_order),
        cmocka_unit_test_setup_teardown(test_hand_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_goodbye, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provisioning_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policies_differ, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_from_a_tick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
