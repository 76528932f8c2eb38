/* test_agents.c - the modelled agents of a replay: proof-of-work
 * verification answered in virtual time (engine_verify.c) and tasks run in
 * clusters (engine_tasks.c). Scenarios whose every number is worked out by
 * hand, determinism with both on, and settings the engine refuses. */
#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "engine.h"
#include "synth.h"
#include "testutil.h"

/* --- fixtures (as test_engine.c) ------------------------------------------------------ */

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

static uint32_t node(churn_trace *t, const char *name, const char *model, unsigned gpus)
{
    mu_error err;
    uint32_t i;
    assert_int_equal(churn_node_intern(t, name, &i, &err), 0);
    assert_int_equal(churn_node_set(t, i, model, gpus, "DE", &err), 0);
    return i;
}

static void event(churn_trace *t, double at, uint32_t n, churn_kind k)
{
    mu_error err;
    assert_int_equal(churn_append(t, at, n, k, &err), 0);
}

static void sorted(churn_trace *t)
{
    mu_error err;
    assert_int_equal(churn_sort(t, &err), 0);
}

/* A request of `workers` x 1 RTX 4090; with tasks when n_tasks > 0. */
static void request(workload *w, double at, double dur, unsigned workers, uint32_t n_tasks,
                    double task_s, double fail, uint32_t retries)
{
    mu_error err;
    workload_request r = {.arrival_s = at,
                          .duration_s = dur,
                          .workers = workers,
                          .gpus_per_worker = 1,
                          .gpu_model = "RTX 4090",
                          .tasks = n_tasks,
                          .task_gpus = 1,
                          .task_fail = fail,
                          .task_retries = retries,
                          .task_s = {DIST_CONSTANT, task_s, 0}};
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

static bool near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

/* --- verification, by hand --------------------------------------------------------------
 *
 * a, b, c honest and s a spoofer at half its claim, one RTX 4090 each, all
 * from 0 s (s's spoof event at 0 s too). Every honest check runs at exactly
 * the claimed speed, every round trip is 50 ms. One GPU model: the
 * automatic scale gives every challenge one round, 999 ms (the core rounds
 * down 999.99...). The core's defaults: first check after 250 ms, min ratio
 * 0.7, recheck 2 s, 3 slow strikes, a first check's round trip halved.
 *
 *   honest  0.250 s  challenge 1;  1.299 s commitment (50 + 999);  1.349 s
 *                    proofs: 1049 - 25 = 1024 ms measured, ok (pending,
 *                    1 pass); challenge 2 at once
 *           2.448 s  proofs: 1049 - 50 = 999 ms, ok: passed
 *   spoofer 0.250 s  challenge 1: work 1998 ms; proofs at 2.348 s: 2023 ms
 *                    measured > 999 / 0.7: slow, suspect; recheck at 4.348 s
 *           6.446 s  slow again (1998 ms); recheck at 8.446 s
 *          10.544 s  slow a third time: failed
 *
 * r0 (3 workers) at 60 s gets a, b and c; r1 (1 worker) at 120 s finds only
 * s free, which has failed: unmet. 9 checks, no false positive, no false
 * negative. */
static void test_verify_by_hand(void **state)
{
    fix *f = *state;
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 4090", 1), b = node(t, "b", "RTX 4090", 1);
    uint32_t c = node(t, "c", "RTX 4090", 1), s = node(t, "s", "RTX 4090", 1);
    event(t, 0, a, CHURN_JOIN);
    event(t, 0, b, CHURN_JOIN);
    event(t, 0, c, CHURN_JOIN);
    event(t, 0, s, CHURN_JOIN);
    event(t, 0, s, CHURN_SPOOF);
    sorted(t);
    workload *w = workload_create();
    request(w, 60, 600, 3, 0, 0, 0, 0);
    request(w, 120, 600, 1, 0, 0, 0, 0);
    f->cfg.verify = true;
    f->cfg.honest_speed = (dist){DIST_CONSTANT, 1, 0};
    f->cfg.spoofer_speed = (dist){DIST_CONSTANT, 0.5, 0};
    f->cfg.rtt_ms = (dist){DIST_CONSTANT, 50, 0};
    engine *e = run(&f->cfg, t, w);
    const sim_report *r = engine_report(e);

    assert_true(r->verify_on);
    assert_int_equal(r->verify_leaves, 16);
    assert_int_equal(r->v_challenges, 9);
    assert_int_equal(r->v_checks, 9);
    assert_int_equal(r->v_outcomes[0], 6); /* ok */
    assert_int_equal(r->v_outcomes[1], 3); /* slow */
    assert_int_equal(r->v_outcomes[2] + r->v_outcomes[3] + r->v_outcomes[4], 0);
    assert_int_equal(r->v_dropped + r->v_late, 0);
    assert_int_equal(r->v_expected_min_ms, 999);
    assert_int_equal(r->v_expected_max_ms, 999);
    assert_int_equal(r->v_spoof_events, 1);
    assert_int_equal(r->spoof_ignored, 0);
    assert_int_equal(r->v_honest, 3);
    assert_int_equal(r->v_honest_alarmed, 0);
    assert_int_equal(r->v_false_positives, 0);
    assert_int_equal(r->v_spoofers, 1);
    assert_int_equal(r->v_spoofers_caught, 1);
    assert_int_equal(r->v_spoofers_hired, 0);
    assert_int_equal(r->v_spoofers_passed, 0);
    assert_int_equal(r->v_false_negatives, 0);
    assert_true(near(report_false_positive_rate(r), 0));
    assert_true(near(report_false_negative_rate(r), 0));
    /* first verdicts: 1349 ms x 3, 2348 ms */
    assert_int_equal(r->v_first_verdict.n, 4);
    assert_int_equal(r->v_first_verdict.p50_ms, 1349);
    assert_int_equal(r->v_first_verdict.max_ms, 2348);
    assert_int_equal(r->v_verified.n, 3);
    assert_int_equal(r->v_verified.max_ms, 2448);
    assert_int_equal(r->v_catch.n, 1);
    assert_int_equal(r->v_catch.max_ms, 10544);
    /* what users saw */
    assert_int_equal(r->met, 1);
    assert_int_equal(r->unmet, 1);
    assert_int_equal(r->reached_ready, 1);
    assert_int_equal(report_counts_get(&r->worker_transitions, "online->offline"), 0);
    /* the time series: checks, not passed, workers failed */
    assert_int_equal(r->rows[0].verify_checks, 9);
    assert_int_equal(r->rows[0].verify_not_ok, 3);
    assert_int_equal(r->rows[0].verify_failed, 1);
    engine_destroy(e);
    workload_destroy(w);
    churn_destroy(t);
}

/* A worker verified honest and hired at 60 s turns spoofer at 100 s: a
 * false negative (hired while spoofing). Without light checks nothing
 * checks it while hired; freed at 660 s, it is due its next full check one
 * re-verification interval (20 min here) after its last, at 1202.448 s,
 * and fails three in a row. */
static void test_spoofer_turns(void **state)
{
    fix *f = *state;
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 4090", 1);
    event(t, 0, a, CHURN_JOIN);
    event(t, 100, a, CHURN_SPOOF);
    event(t, 4000, a, CHURN_LEAVE);
    sorted(t);
    workload *w = workload_create();
    request(w, 60, 600, 1, 0, 0, 0, 0);
    f->cfg.verify = true;
    f->cfg.honest_speed = (dist){DIST_CONSTANT, 1, 0};
    f->cfg.spoofer_speed = (dist){DIST_CONSTANT, 0.5, 0};
    f->cfg.rtt_ms = (dist){DIST_CONSTANT, 50, 0};
    f->cfg.verify_reverify_ms = 1200000;
    engine *e = run(&f->cfg, t, w);
    const sim_report *r = engine_report(e);
    assert_int_equal(r->met, 1);
    assert_int_equal(r->v_spoofers, 1);
    assert_int_equal(r->v_spoofers_hired, 1); /* it was a member when it turned */
    assert_int_equal(r->v_false_negatives, 1);
    assert_int_equal(r->v_spoofers_caught, 1);
    assert_int_equal(r->v_honest, 1);
    assert_int_equal(r->v_false_positives, 0);
    /* two checks to onboard, three to catch it: 1202.448 s, then every
     * 2 s after the last answer (+ 2048 ms to the commitment, + 50 ms to
     * the proofs): failed at 1212.742 s, 1112.742 s after it turned */
    assert_int_equal(r->v_checks, 5);
    assert_int_equal(r->v_catch.max_ms, 1112742);
    assert_true(near(report_false_negative_rate(r), 1));
    engine_destroy(e);
    workload_destroy(w);
    churn_destroy(t);
}

/* --- tasks, by hand ---------------------------------------------------------------------
 *
 * a and b, one RTX 4090 each, from 0 s. r0 at 10 s: 2 workers, 4 tasks of
 * 10 s on one GPU each; its members acknowledge 2 s later.
 *
 *   12 s  ready: tasks 0 and 1 start, one on each member
 *   22 s  both succeed; tasks 2 and 3 start, one on each member
 *   24 s  b's agent goes down (its task never finishes)
 *   27 s  b offline (heartbeat 1 s x 3): lost; its task (5 s run) requeued
 *   32 s  a's task succeeds; the requeued one starts on a
 *   42 s  it succeeds: all 4 done, the owner releases the cluster
 *
 * Useful: 4 x 10 GPU-s; lost: 5 GPU-s; allocated: 2 GPUs 10..27 s + 1 GPU
 * 27..42 s = 49 GPU-s; goodput 40 / 49. Whichever of a and b is the first
 * member, the numbers are the same. */
static void test_tasks_by_hand(void **state)
{
    fix *f = *state;
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 4090", 1), b = node(t, "b", "RTX 4090", 1);
    event(t, 0, a, CHURN_JOIN);
    event(t, 0, b, CHURN_JOIN);
    event(t, 24, b, CHURN_LEAVE);
    sorted(t);
    workload *w = workload_create();
    request(w, 10, 3600, 2, 4, 10, 0, 0);
    engine *e = run(&f->cfg, t, w);
    const sim_report *r = engine_report(e);
    assert_true(r->tasks_on);
    assert_int_equal(r->t_requested, 4);
    assert_int_equal(r->t_submitted, 4);
    assert_int_equal(r->t_succeeded, 4);
    assert_int_equal(r->t_failed + r->t_cancelled + r->t_unfinished + r->t_submit_errors, 0);
    assert_int_equal(r->t_attempts, 5);
    assert_int_equal(r->t_retries, 1);
    assert_int_equal(r->t_retries_lost, 1);
    assert_int_equal(r->t_retries_exit, 0);
    assert_int_equal(r->t_lost_attempts, 1);
    assert_int_equal(r->t_failed_attempts, 0);
    assert_int_equal(r->t_clusters, 1);
    assert_int_equal(r->t_released_done, 1);
    assert_true(near(r->t_gh_useful, 40.0 / 3600));
    assert_true(near(r->t_gh_lost, 5.0 / 3600));
    assert_true(near(r->t_gh_failed + r->t_gh_cancelled, 0));
    assert_true(near(r->t_gh_allocated, 49.0 / 3600));
    assert_true(near(report_task_goodput(r), 40.0 / 49.0));
    /* the cluster: released by its owner at 42 s */
    assert_int_equal(r->ended_released, 1);
    assert_int_equal(r->member_losses, 1);
    assert_int_equal(r->cluster_ms, 32000);
    assert_true(near(r->gpu_hours_allocated, 49.0 / 3600));
    engine_destroy(e);
    workload_destroy(w);
    churn_destroy(t);
}

/* The same, but b comes back at 25 s, within its reconnect grace: it keeps
 * its seat, but its agent restarted and runs nothing, so its task is lost
 * at 25 s (3 s run) and never goes back to b: it waits for a (32 s) and
 * succeeds at 42 s. Allocated: 2 GPUs 10..42 s = 64 GPU-s. */
static void test_tasks_agent_restart(void **state)
{
    fix *f = *state;
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 4090", 1), b = node(t, "b", "RTX 4090", 1);
    event(t, 0, a, CHURN_JOIN);
    event(t, 0, b, CHURN_JOIN);
    event(t, 24, b, CHURN_LEAVE);
    event(t, 25, b, CHURN_JOIN);
    sorted(t);
    workload *w = workload_create();
    request(w, 10, 3600, 2, 4, 10, 0, 0);
    engine *e = run(&f->cfg, t, w);
    const sim_report *r = engine_report(e);
    assert_int_equal(r->member_losses, 0);
    assert_int_equal(r->t_succeeded, 4);
    assert_int_equal(r->t_retries_lost, 1);
    assert_int_equal(r->t_lost_attempts, 1);
    assert_true(near(r->t_gh_lost, 3.0 / 3600));
    assert_true(near(r->t_gh_allocated, 64.0 / 3600));
    assert_true(near(report_task_goodput(r), 40.0 / 64.0));
    engine_destroy(e);
    workload_destroy(w);
    churn_destroy(t);
}

/* Exits: one worker, 2 tasks of 10 s that always exit non-zero, retried
 * once: task 0 runs 12..22 s and 22..32 s (failed), task 1 32..42 s and
 * 42..52 s (failed); the owner releases at 52 s. */
static void test_tasks_exit_failures(void **state)
{
    fix *f = *state;
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 4090", 1);
    event(t, 0, a, CHURN_JOIN);
    workload *w = workload_create();
    request(w, 10, 3600, 1, 2, 10, 1.0, 1);
    engine *e = run(&f->cfg, t, w);
    const sim_report *r = engine_report(e);
    assert_int_equal(r->t_succeeded, 0);
    assert_int_equal(r->t_failed, 2);
    assert_int_equal(r->t_attempts, 4);
    assert_int_equal(r->t_retries, 2);
    assert_int_equal(r->t_retries_exit, 2);
    assert_int_equal(r->t_failed_attempts, 4);
    assert_true(near(r->t_gh_failed, 40.0 / 3600));
    assert_true(near(r->t_gh_useful, 0));
    assert_true(near(r->t_gh_allocated, 42.0 / 3600));
    assert_true(near(report_task_goodput(r), 0));
    assert_int_equal(r->ended_released, 1);
    engine_destroy(e);
    workload_destroy(w);
    churn_destroy(t);
}

/* The booking runs out first: 2 tasks of 3000 s on one worker, booked for
 * one hour from 10 s. Task 0 runs 12..3012 s, task 1 from 3012 s until the
 * core expires the cluster at 3610 s: cancelled, 598 GPU-s cut off. */
static void test_tasks_cut_off(void **state)
{
    fix *f = *state;
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 4090", 1);
    event(t, 0, a, CHURN_JOIN);
    workload *w = workload_create();
    request(w, 10, 3000, 1, 2, 3000, 0, 0);
    f->cfg.until_ms = 4000000;
    engine *e = run(&f->cfg, t, w);
    const sim_report *r = engine_report(e);
    assert_int_equal(r->t_succeeded, 1);
    assert_int_equal(r->t_cancelled, 1);
    assert_int_equal(r->ended_expired, 1);
    assert_int_equal(r->t_released_done, 0);
    assert_true(near(r->t_gh_cancelled, 598.0 / 3600));
    assert_true(near(r->t_gh_allocated, 3600.0 / 3600));
    engine_destroy(e);
    workload_destroy(w);
    churn_destroy(t);
}

/* --- both on, synthetic: determinism ------------------------------------------------------ */

static churn_trace *synth_fleet(uint64_t seed)
{
    synth_churn_params p;
    synth_churn_params_init(&p);
    mu_error err;
    assert_int_equal(synth_churn_params_set(&p, "session", "weibull:0.6,20", &err), 0);
    assert_int_equal(synth_churn_params_set(&p, "gap", "lognormal:0.5,1", &err), 0);
    assert_int_equal(synth_churn_params_set(&p, "gpus", "RTX 4090:3,RTX 3090:1", &err), 0);
    assert_int_equal(synth_churn_params_set(&p, "spoofers", "0.1", &err), 0);
    p.nodes = 120;
    p.days = 1;
    p.seed = seed;
    churn_trace *t = synth_churn_generate(&p, &err);
    synth_churn_params_free(&p);
    if (!t)
        fail_msg("%s", err.text);
    return t;
}

static workload *synth_jobs(uint64_t seed)
{
    synth_workload_params p;
    synth_workload_params_init(&p);
    mu_error err;
    assert_int_equal(synth_workload_params_set(&p, "rate", "20", &err), 0);
    assert_int_equal(synth_workload_params_set(&p, "duration", "lognormal:0.5,0.5", &err), 0);
    assert_int_equal(synth_workload_params_set(&p, "workers", "1:3,2:2,4:1", &err), 0);
    assert_int_equal(synth_workload_params_set(&p, "tasks", "0:1,4:2,12:1", &err), 0);
    assert_int_equal(synth_workload_params_set(&p, "task_duration", "exp:0.2", &err), 0);
    assert_int_equal(synth_workload_params_set(&p, "task_fail", "0.05", &err), 0);
    assert_int_equal(synth_workload_params_set(&p, "task_retries", "2", &err), 0);
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

static void replay_to(fix *f, uint64_t seed, outputs *o)
{
    churn_trace *t = synth_fleet(7);
    workload *w = synth_jobs(8);
    engine_config cfg = f->cfg;
    cfg.seed = seed;
    cfg.goodbye = 0.3;
    cfg.verify = true;
    cfg.jittery = 0.2;
    cfg.verify_light_ms = 600000;
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

static double jnum(cJSON *o, const char *a, const char *b)
{
    cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(o, a), b);
    if (!cJSON_IsNumber(x))
        fail_msg("%s.%s is not a number", a, b);
    return x->valuedouble;
}

static void test_determinism(void **state)
{
    fix *f = *state;
    outputs a, b, c;
    replay_to(f, 5, &a);
    replay_to(f, 5, &b);
    replay_to(f, 6, &c);
    assert_true(same(&a.json, &b.json));
    assert_true(same(&a.csv, &b.csv));
    assert_true(same(&a.html, &b.html));
    assert_false(same(&a.json, &c.json)); /* the seed matters */
    /* both ran, and measured something */
    cJSON *j = cJSON_Parse(a.json.data);
    assert_non_null(j);
    assert_true(
        cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "verification"), "simulated")));
    assert_true(jnum(j, "verification", "checks") > 100);
    assert_true(jnum(j, "verification", "light_checks") > 0);
    assert_true(jnum(j, "verification", "spoofers") > 0);
    assert_true(jnum(j, "verification", "spoofers_caught") > 0);
    assert_true(jnum(j, "verification", "false_positives") >= 0);
    assert_true(jnum(j, "tasks", "submitted") > 50);
    assert_true(jnum(j, "tasks", "succeeded") > 0);
    double g = jnum(j, "tasks", "goodput");
    assert_true(g > 0 && g <= 1);
    cJSON_Delete(j);
    assert_non_null(
        strstr(a.csv.data, ",verify_checks,verify_not_ok,verify_failed,tasks_running,"));
    assert_non_null(strstr(a.html.data, "<h2>Verification</h2>"));
    assert_non_null(strstr(a.html.data, "<h2>Tasks</h2>"));
    outputs_free(&a);
    outputs_free(&b);
    outputs_free(&c);
}

/* --- allocation failures ----------------------------------------------------------------- */

/* The Nth allocation fails, for every N until a whole replay with both
 * verification and tasks succeeds: the engine fails cleanly with a reason
 * (ASan and LeakSanitizer check the rest), or succeeds with the same
 * report as without failures. */
static void test_allocation_failures(void **state)
{
    fix *f = *state;
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 4090", 1), b = node(t, "b", "RTX 4090", 1);
    uint32_t s = node(t, "s", "RTX 4090", 1);
    event(t, 0, a, CHURN_JOIN);
    event(t, 0, b, CHURN_JOIN);
    event(t, 0, s, CHURN_JOIN);
    event(t, 0, s, CHURN_SPOOF);
    event(t, 24, b, CHURN_LEAVE);
    sorted(t);
    workload *w = workload_create();
    request(w, 10, 3600, 2, 4, 10, 0.5, 1);
    f->cfg.verify = true;
    engine *ref = run(&f->cfg, t, w);
    uint64_t want = engine_report(ref)->events, checks = engine_report(ref)->v_checks;
    assert_true(checks > 0);
    engine_destroy(ref);
    size_t n;
    for (n = 1; n < 20000; n++) {
        mu_error err = {""};
        test_fail_alloc_after(n);
        engine *e = engine_create(&f->cfg, t, w, &err);
        int rc = e ? engine_run(e, &err) : -1;
        test_fail_alloc_after(0);
        if (rc == 0) {
            assert_int_equal(engine_report(e)->events, want);
            assert_int_equal(engine_report(e)->v_checks, checks);
            engine_destroy(e);
            break;
        }
        if (!strstr(err.text, "memory"))
            fail_msg("allocation %zu: \"%s\" does not say out of memory", n, err.text);
        engine_destroy(e);
    }
    assert_true(n < 20000);
    workload_destroy(w);
    churn_destroy(t);
}

/* --- refused ------------------------------------------------------------------------------ */

static void test_refused(void **state)
{
    fix *f = *state;
    churn_trace *t = churn_create();
    uint32_t a = node(t, "a", "RTX 4090", 1);
    event(t, 0, a, CHURN_JOIN);
    engine_config bad = f->cfg;
    bad.verify = true;
    bad.jittery = 1.5;
    mu_error err = {""};
    assert_null(engine_create(&bad, t, NULL, &err));
    assert_non_null(strstr(err.text, "jittery"));
    bad.jittery = 0;
    bad.verify_scale = -1;
    assert_null(engine_create(&bad, t, NULL, &err));
    assert_non_null(strstr(err.text, "scale"));
    churn_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_verify_by_hand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spoofer_turns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_by_hand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_agent_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_exit_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_cut_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
