/* test_synth.c - the generators: same seed same bytes, another seed other
 * bytes, the requested distributions coming back out of the analysis, the
 * daily cycle, spoofers, parameter files, and deterministic filling-in. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "analyze.h"
#include "churn_io.h"
#include "simtest.h"
#include "synth.h"

static void set(synth_churn_params *p, const char *k, const char *v)
{
    mu_error err;
    if (synth_churn_params_set(p, k, v, &err) < 0)
        fail_msg("%s=%s: %s", k, v, err.text);
}

static void wset(synth_workload_params *p, const char *k, const char *v)
{
    mu_error err;
    if (synth_workload_params_set(p, k, v, &err) < 0)
        fail_msg("%s=%s: %s", k, v, err.text);
}

/* Generate with P and return the CSV text (caller frees with sbuf_free). */
static sbuf churn_csv(const synth_churn_params *p)
{
    mu_error err = {""};
    churn_trace *t = synth_churn_generate(p, &err);
    if (!t)
        fail_msg("%s", err.text);
    sbuf b;
    sbuf_init(&b);
    assert_int_equal(churn_write_csv(t, &b, &err), 0);
    churn_destroy(t);
    return b;
}

static void small_params(synth_churn_params *p)
{
    synth_churn_params_init(p);
    set(p, "nodes", "200");
    set(p, "days", "3");
    set(p, "session", "weibull:0.7,5");
    set(p, "gap", "lognormal:1,0.8");
    set(p, "spoofers", "0.1");
    set(p, "gpus", "RTX 4090:3,A100 80GB:1");
    set(p, "gpu_counts", "1:6,8:1");
    set(p, "countries", "US:4:-5,DE:3:1,JP:2:9");
    set(p, "diurnal", "0.5,20");
    set(p, "seed", "42");
}

static void test_churn_determinism(void **state)
{
    (void)state;
    synth_churn_params p;
    small_params(&p);
    sbuf a = churn_csv(&p), b = churn_csv(&p);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    set(&p, "seed", "43");
    sbuf c = churn_csv(&p);
    assert_true(c.len != a.len || memcmp(a.data, c.data, a.len) != 0);
    /* Node i's history depends on the seed and i only: more nodes leave the
     * first ones as they were. */
    set(&p, "seed", "42");
    set(&p, "nodes", "5");
    sbuf few = churn_csv(&p);
    set(&p, "nodes", "6");
    sbuf more = churn_csv(&p);
    char *line = strtok(few.data, "\n");
    for (; line; line = strtok(NULL, "\n"))
        assert_non_null(strstr(more.data, line));
    sbuf_free(&a);
    sbuf_free(&b);
    sbuf_free(&c);
    sbuf_free(&few);
    sbuf_free(&more);
    synth_churn_params_free(&p);
}

static void test_churn_shape(void **state)
{
    (void)state;
    synth_churn_params p;
    small_params(&p);
    mu_error err = {""};
    churn_trace *t = synth_churn_generate(&p, &err);
    assert_non_null(t);
    assert_int_equal(churn_node_count(t), 200);
    const churn_event *ev = churn_events(t);
    size_t n = churn_event_count(t);
    /* Every node states itself at time 0; times are sorted, in range, and
     * whole milliseconds. */
    char at0[200] = {0};
    size_t spoofs = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].time_s == 0 && ev[i].kind != CHURN_SPOOF)
            at0[ev[i].node]++;
        if (i)
            assert_true(ev[i - 1].time_s <= ev[i].time_s);
        assert_true(ev[i].time_s >= 0 && ev[i].time_s < 3 * 86400.0);
        double ms = ev[i].time_s * 1000;
        assert_true(fabs(ms - round(ms)) < 1e-6);
        if (ev[i].kind == CHURN_SPOOF) {
            spoofs++;
            /* right after a join of the same node */
            assert_true(i > 0 && ev[i - 1].node == ev[i].node && ev[i - 1].kind == CHURN_JOIN &&
                        ev[i - 1].time_s == ev[i].time_s);
        }
    }
    for (int i = 0; i < 200; i++)
        assert_int_equal(at0[i], 1);
    assert_true(spoofs >= 8 && spoofs <= 35); /* 10% of 200, give or take */
    size_t a100 = 0, eight = 0, us = 0;
    for (uint32_t i = 0; i < 200; i++) {
        churn_node nd;
        churn_node_get(t, i, &nd);
        a100 += strcmp(nd.gpu_model, "A100 80GB") == 0;
        eight += nd.gpu_count == 8;
        us += strcmp(nd.country, "US") == 0;
        assert_true(nd.gpu_count == 1 || nd.gpu_count == 8);
    }
    assert_true(a100 > 30 && a100 < 75);   /* 1/4 of 200 */
    assert_true(eight > 12 && eight < 45); /* 1/7 */
    assert_true(us > 65 && us < 115);      /* 4/9 */
    churn_destroy(t);
    synth_churn_params_free(&p);
}

/* What goes in comes back out: sessions Weibull(0.7, 5 h) and gaps
 * lognormal(1, 0.8), fitted by analyze from the generated trace. */
static void test_churn_recovered(void **state)
{
    (void)state;
    synth_churn_params p;
    synth_churn_params_init(&p);
    set(&p, "nodes", "300");
    set(&p, "days", "60");
    set(&p, "session", "weibull:0.7,5");
    set(&p, "gap", "lognormal:1,0.8");
    mu_error err = {""};
    churn_trace *t = synth_churn_generate(&p, &err);
    assert_non_null(t);
    churn_summary s;
    assert_int_equal(analyze_churn(t, &s, &err), 0);
    assert_true(s.up.count > 30000);
    assert_int_equal(s.up.from_start + s.down.from_start, 300);
    assert_int_equal(s.up.open_at_end + s.down.open_at_end, 300);
    assert_int_equal(s.up.best, FIT_WEIBULL);
    assert_int_equal(s.down.best, FIT_LOGNORMAL);
    /* Intervals still open at the end are not measured, which shortens the
     * sample a little: allow a few percent. */
    assert_true(fabs(s.up.fit[FIT_WEIBULL].p1 - 0.7) < 0.03);
    assert_true(fabs(s.up.fit[FIT_WEIBULL].p2 - 5.0) < 0.25);
    assert_true(fabs(s.down.fit[FIT_LOGNORMAL].p1 - 1.0) < 0.03);
    assert_true(fabs(s.down.fit[FIT_LOGNORMAL].p2 - 0.8) < 0.03);
    churn_destroy(t);
    synth_churn_params_free(&p);
}

/* With a strong daily cycle peaking at 20:00 local time (UTC here), joins
 * crowd into the evening; without it they are spread evenly. */
static void test_diurnal(void **state)
{
    (void)state;
    for (int on = 0; on < 2; on++) {
        synth_churn_params p;
        synth_churn_params_init(&p);
        set(&p, "nodes", "300");
        set(&p, "days", "20");
        set(&p, "session", "exp:2");
        set(&p, "gap", "exp:6");
        if (on)
            set(&p, "diurnal", "0.9,20");
        mu_error err = {""};
        churn_trace *t = synth_churn_generate(&p, &err);
        assert_non_null(t);
        double hour[24] = {0};
        const churn_event *ev = churn_events(t);
        for (size_t i = 0; i < churn_event_count(t); i++)
            if (ev[i].kind == CHURN_JOIN && ev[i].time_s > 0)
                hour[(int)fmod(ev[i].time_s / 3600.0, 24.0)]++;
        double ratio = hour[20] / hour[8];
        if (on)
            assert_true(ratio > 4);
        else
            assert_true(ratio > 0.8 && ratio < 1.25);
        churn_destroy(t);
        synth_churn_params_free(&p);
    }
}

static void test_params(void **state)
{
    (void)state;
    synth_churn_params p;
    synth_churn_params_init(&p);
    mu_error err;
    static const char *const bad[][2] = {
        {"nodes", "0"},           {"nodes", "x"},         {"days", "-1"},
        {"session", "weibull:0"}, {"spoofers", "1.5"},    {"seed", "-3"},
        {"diurnal", "0.99"},      {"diurnal", "0.5,25"},  {"gpus", ""},
        {"gpu_counts", "0:1"},    {"countries", "USA:1"}, {"countries", "US:1:20"},
        {"colour", "blue"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.text[0] = '\0';
        assert_int_equal(synth_churn_params_set(&p, bad[i][0], bad[i][1], &err), -1);
        assert_true(strlen(err.text) > 0);
    }
    /* Nothing bad was kept. */
    assert_int_equal(p.nodes, 1000);
    assert_null(p.gpus);
    assert_null(synth_churn_generate(&p, &err)); /* session and gap missing */
    assert_non_null(strstr(err.text, "required"));

    /* A parameter file gives the same trace as the same flags. */
    char path[64];
    simtest_write_temp(path, sizeof(path),
                       "{\"nodes\": 200, \"days\": 3, \"session\": \"weibull:0.7,5\", "
                       "\"gap\": \"lognormal:1,0.8\", \"spoofers\": 0.1, "
                       "\"gpus\": \"RTX 4090:3,A100 80GB:1\", \"gpu_counts\": \"1:6,8:1\", "
                       "\"countries\": \"US:4:-5,DE:3:1,JP:2:9\", \"diurnal\": \"0.5,20\", "
                       "\"seed\": 42}");
    assert_int_equal(synth_churn_params_load(&p, path, &err), 0);
    unlink(path);
    synth_churn_params q;
    small_params(&q);
    sbuf a = churn_csv(&p), b = churn_csv(&q);
    assert_string_equal(a.data, b.data);
    sbuf_free(&a);
    sbuf_free(&b);
    synth_churn_params_free(&q);

    simtest_write_temp(path, sizeof(path), "{\"nodes\": 10, \"colour\": 1}");
    assert_int_equal(synth_churn_params_load(&p, path, &err), -1);
    simtest_assert_names(err.text, path, 0);
    assert_non_null(strstr(err.text, "colour"));
    unlink(path);
    simtest_write_temp(path, sizeof(path), "{\"nodes\": true}");
    assert_int_equal(synth_churn_params_load(&p, path, &err), -1);
    unlink(path);
    simtest_write_temp(path, sizeof(path), "{\"nodes\": 10,\n\"days\": }");
    assert_int_equal(synth_churn_params_load(&p, path, &err), -1);
    simtest_assert_names(err.text, path, 2);
    unlink(path);
    synth_churn_params_free(&p);
}

static sbuf workload_jsonl(const synth_workload_params *p)
{
    mu_error err = {""};
    workload *w = synth_workload_generate(p, &err);
    if (!w)
        fail_msg("%s", err.text);
    sbuf b;
    sbuf_init(&b);
    assert_int_equal(workload_write_jsonl(w, &b, &err), 0);
    workload_destroy(w);
    return b;
}

static void test_workload(void **state)
{
    (void)state;
    synth_workload_params p;
    synth_workload_params_init(&p);
    mu_error err;
    assert_null(synth_workload_generate(&p, &err));
    wset(&p, "rate", "50");
    wset(&p, "days", "2");
    wset(&p, "duration", "lognormal:0.5,1");
    wset(&p, "workers", "1:6,2:2,8:1");
    wset(&p, "gpus_per_worker", "1:3,8:1");
    wset(&p, "models", "any:2,RTX 4090:1");
    wset(&p, "regions", "europe:1,any:1");
    wset(&p, "seed", "9");
    sbuf a = workload_jsonl(&p), b = workload_jsonl(&p);
    assert_string_equal(a.data, b.data);
    wset(&p, "seed", "10");
    sbuf c = workload_jsonl(&p);
    assert_true(strcmp(a.data, c.data) != 0);
    sbuf_free(&a);
    sbuf_free(&b);
    sbuf_free(&c);

    workload *w = synth_workload_generate(&p, &err);
    size_t n = workload_count(w);
    /* Poisson: 2400 expected, sd 49 */
    assert_true(n > 2200 && n < 2600);
    size_t any = 0, eu = 0, eight = 0;
    for (size_t i = 0; i < n; i++) {
        const workload_request *r = workload_at(w, i);
        any += !*r->gpu_model;
        eu += strcmp(r->region, "europe") == 0;
        eight += r->workers == 8;
        assert_true(r->arrival_s < 2 * 86400.0 && r->duration_s > 0);
        if (i)
            assert_true(workload_at(w, i - 1)->arrival_s <= r->arrival_s);
    }
    assert_true(fabs((double)any / n - 2.0 / 3) < 0.05);
    assert_true(fabs((double)eu / n - 0.5) < 0.05);
    assert_true(fabs((double)eight / n - 1.0 / 9) < 0.03);
    workload_destroy(w);
    assert_int_equal(synth_workload_params_set(&p, "workers", "0:1", &err), -1);
    assert_int_equal(synth_workload_params_set(&p, "rate", "0", &err), -1);
    assert_int_equal(synth_workload_params_set(&p, "speed", "1", &err), -1);
    synth_workload_params_free(&p);
}

/* Tasks come from their own stream: the requests are the same with and
 * without them; each request draws its count, its tasks' GPUs (capped at
 * its GPUs per worker) and the run time in seconds. */
static void test_workload_tasks(void **state)
{
    (void)state;
    synth_workload_params p;
    synth_workload_params_init(&p);
    wset(&p, "rate", "50");
    wset(&p, "duration", "lognormal:0.5,1");
    wset(&p, "workers", "1:6,2:2,8:1");
    wset(&p, "gpus_per_worker", "1:3,8:1");
    wset(&p, "seed", "9");
    mu_error err;
    workload *plain = synth_workload_generate(&p, &err);
    assert_non_null(plain);
    assert_false(workload_has_tasks(plain));
    wset(&p, "tasks", "0:1,16:3");
    assert_null(synth_workload_generate(&p, &err)); /* needs task_duration */
    assert_non_null(strstr(err.text, "task_duration"));
    wset(&p, "task_duration", "exp:0.25");
    wset(&p, "task_gpus", "2:1");
    wset(&p, "task_fail", "0.1");
    wset(&p, "task_retries", "2");
    workload *w = synth_workload_generate(&p, &err);
    assert_non_null(w);
    assert_int_equal(workload_count(w), workload_count(plain));
    size_t with = 0;
    for (size_t i = 0; i < workload_count(w); i++) {
        const workload_request *a = workload_at(w, i), *b = workload_at(plain, i);
        assert_true(a->arrival_s == b->arrival_s && a->duration_s == b->duration_s);
        assert_int_equal(a->workers, b->workers);
        assert_int_equal(a->gpus_per_worker, b->gpus_per_worker);
        if (!a->tasks)
            continue;
        with++;
        assert_int_equal(a->tasks, 16);
        assert_int_equal(a->task_gpus, a->gpus_per_worker < 2 ? a->gpus_per_worker : 2);
        assert_int_equal(a->task_s.kind, DIST_EXPONENTIAL);
        assert_true(fabs(a->task_s.a - 900) < 1e-9); /* 0.25 h in seconds */
        assert_true(a->task_fail == 0.1);
        assert_int_equal(a->task_retries, 2);
    }
    assert_true(fabs((double)with / (double)workload_count(w) - 0.75) < 0.05);
    sbuf a = workload_jsonl(&p), b = workload_jsonl(&p);
    assert_string_equal(a.data, b.data);
    assert_non_null(strstr(a.data, "\"tasks\":16,\"task_s\":\"exp:900\""));
    sbuf_free(&a);
    sbuf_free(&b);
    workload_destroy(w);
    workload_destroy(plain);
    assert_int_equal(synth_workload_params_set(&p, "tasks", "-1:1", &err), -1);
    assert_int_equal(synth_workload_params_set(&p, "task_fail", "2", &err), -1);
    assert_int_equal(synth_workload_params_set(&p, "task_retries", "x", &err), -1);
    assert_int_equal(synth_workload_params_set(&p, "task_gpus", "0:1", &err), -1);
    synth_workload_params_free(&p);
}

static void test_fill(void **state)
{
    (void)state;
    mu_error err = {""};
    churn_trace *t = churn_read_fta(SIM_TEST_DATA "/fta-lanl05-head.tab", NULL, &err);
    assert_non_null(t);
    assert_int_equal(churn_node_set(t, 3, "T4", 4, "FR", &err), 0); /* the trace says */
    mix *g = mix_parse("RTX 4090:1,RTX 3090:1", false, "g", &err);
    mix *c = mix_parse("US:1,DE:1,JP:1", false, "c", &err);
    assert_int_equal(synth_fill_nodes(t, g, NULL, c, 7, &err), 0);
    char first[10][32];
    for (uint32_t i = 0; i < 10; i++) {
        churn_node nd;
        churn_node_get(t, i, &nd);
        assert_true(*nd.gpu_model && *nd.country);
        if (i == 3) {
            assert_string_equal(nd.gpu_model, "T4");
            assert_int_equal(nd.gpu_count, 4);
            assert_string_equal(nd.country, "FR");
        } else {
            assert_int_equal(nd.gpu_count, 1);
        }
        snprintf(first[i], sizeof(first[i]), "%s/%s", nd.gpu_model, nd.country);
    }
    churn_destroy(t);
    /* Same seed, same values; another seed, some other value. */
    int differs = 0;
    for (uint64_t seed = 7; seed <= 8; seed++) {
        t = churn_read_fta(SIM_TEST_DATA "/fta-lanl05-head.tab", NULL, &err);
        assert_int_equal(churn_node_set(t, 3, "T4", 4, "FR", &err), 0);
        assert_int_equal(synth_fill_nodes(t, g, NULL, c, seed, &err), 0);
        for (uint32_t i = 0; i < 10; i++) {
            churn_node nd;
            churn_node_get(t, i, &nd);
            char now[32];
            snprintf(now, sizeof(now), "%s/%s", nd.gpu_model, nd.country);
            if (seed == 7)
                assert_string_equal(now, first[i]);
            else
                differs += strcmp(now, first[i]) != 0;
        }
        churn_destroy(t);
    }
    assert_true(differs > 0);
    mix *bad = mix_parse("USA:1", false, "c", &err);
    t = churn_read_fta(SIM_TEST_DATA "/fta-lanl05-head.tab", NULL, &err);
    assert_int_equal(synth_fill_nodes(t, NULL, NULL, bad, 1, &err), -1);
    churn_destroy(t);
    mix_destroy(bad);

    /* Regions of requests. */
    workload *w = workload_create();
    workload_request r = {
        .arrival_s = 0, .duration_s = 1, .workers = 1, .gpus_per_worker = 1, .region = "asia-east"};
    assert_int_equal(workload_append(w, &r, &err), 0);
    r.region = "";
    for (int i = 0; i < 50; i++)
        assert_int_equal(workload_append(w, &r, &err), 0);
    mix *regions = mix_parse("europe:1,north-america:1", false, "r", &err);
    assert_int_equal(synth_fill_regions(w, regions, 3, &err), 0);
    assert_string_equal(workload_at(w, 0)->region, "asia-east");
    size_t eu = 0;
    for (size_t i = 1; i < 51; i++) {
        assert_true(*workload_at(w, i)->region);
        eu += strcmp(workload_at(w, i)->region, "europe") == 0;
    }
    assert_true(eu > 10 && eu < 40);
    mix_destroy(regions);
    workload_destroy(w);
    mix_destroy(g);
    mix_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_churn_determinism),
        cmocka_unit_test(test_churn_shape),
        cmocka_unit_test(test_churn_recovered),
        cmocka_unit_test(test_diurnal),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_workload),
        cmocka_unit_test(test_workload_tasks),
        cmocka_unit_test(test_fill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
