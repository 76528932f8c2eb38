/* test_analyze.c - interval reconstruction and reports: a hand-made trace
 * with every corner (redundant events, spoofs, censoring at both ends,
 * zero-length intervals), the real FTA excerpt, and the whole LANL05 trace
 * end to end, checked against figures computed independently in Python
 * from the raw file. */
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
#include "jsonutil.h"
#include "simtest.h"
#include "testutil.h"

#define FTA_FULL SIM_SHARED_DATA "/fta-lanl05/event_trace.tab"

static void assert_close(double got, double want, double rel)
{
    if (!(fabs(got - want) <= rel * fabs(want)))
        fail_msg("%.10g is not within %g%% of %.10g", got, rel * 100, want);
}

static churn_trace *read_csv_text(const char *text)
{
    char path[64];
    simtest_write_temp(path, sizeof(path), text);
    mu_error err = {""};
    churn_trace *t = churn_read_csv(path, NULL, &err);
    unlink(path);
    if (!t)
        fail_msg("%s", err.text);
    return t;
}

static void test_corners(void **state)
{
    (void)state;
    churn_trace *t = read_csv_text("time_s,node,event\n"
                                   "0,a,join\n"    /* from the start: not measured */
                                   "0,b,leave\n"   /* from the start */
                                   "10,a,leave\n"  /* a up [0,10) censored */
                                   "10,a,leave\n"  /* redundant */
                                   "10,c,join\n"   /* c's first event, after 0 */
                                   "10,c,spoof\n"  /* no effect on availability */
                                   "20,a,join\n"   /* a down [10,20) = 10 */
                                   "20,a,leave\n"  /* a up [20,20) = 0 */
                                   "20,a,join\n"   /* a down [20,20) = 0 */
                                   "30,c,leave\n"  /* c up [10,30) = 20 */
                                   "30,c,spoof\n"  /* spoof again: one node */
                                   "40,c,join\n"   /* c down [30,40) = 10 */
                                   "50,b,join\n"); /* b down [0,50) censored */
    mu_error err;
    churn_summary s;
    assert_int_equal(analyze_churn(t, &s, &err), 0);
    assert_int_equal(s.nodes, 3);
    assert_int_equal(s.nodes_with_events, 3);
    assert_int_equal(s.events, 13);
    assert_int_equal(s.joins, 6);
    assert_int_equal(s.leaves, 5);
    assert_int_equal(s.spoofs, 2);
    assert_int_equal(s.spoofed_nodes, 1);
    assert_int_equal(s.redundant, 1);
    assert_int_equal(s.up.count, 2); /* 0 and 20 */
    assert_int_equal(s.up.zero_length, 1);
    assert_int_equal(s.up.from_start, 1);
    assert_int_equal(s.up.open_at_end, 3); /* a, b, c all up at the end */
    assert_true(s.up.mean_s == 10 && s.up.median_s == 10 && s.up.min_s == 0);
    assert_int_equal(s.down.count, 3); /* 10, 0, 10 */
    assert_int_equal(s.down.zero_length, 1);
    assert_int_equal(s.down.from_start, 1);
    assert_int_equal(s.down.open_at_end, 0);
    assert_true(s.down.median_s == 10);
    /* one non-zero up length: nothing to fit; two equal down ones: only
     * the exponential */
    assert_int_equal(s.up.best, -1);
    assert_int_equal(s.down.best, FIT_EXPONENTIAL);
    assert_false(s.down.fit[FIT_WEIBULL].ok);
    sbuf out;
    sbuf_init(&out);
    analyze_churn_text(&s, NULL, "x.csv", "native", &out);
    assert_non_null(strstr(out.data, "not fitted"));
    assert_int_equal(analyze_churn_json(&s, NULL, "x.csv", "native", &out, &err), 0);
    sbuf_free(&out);
    churn_destroy(t);
}

static void test_fta_excerpt(void **state)
{
    (void)state;
    mu_error err = {""};
    churn_read_stats st;
    churn_trace *t = churn_read_fta(SIM_TEST_DATA "/fta-lanl05-head.tab", &st, &err);
    assert_non_null(t);
    churn_summary s;
    assert_int_equal(analyze_churn(t, &s, &err), 0);
    assert_int_equal(s.nodes, 10);
    assert_int_equal(s.joins, 21);
    assert_int_equal(s.leaves, 21);
    assert_int_equal(s.redundant, 0);
    /* 11 available intervals; every node ends available after its last
     * repair (the reader's closing JOIN). */
    assert_int_equal(s.up.count, 11);
    assert_int_equal(s.up.open_at_end, 10);
    assert_close(s.up.mean_s, 8685507.272727273, 1e-12);
    assert_true(s.up.median_s == 3943080);
    assert_true(s.up.min_s == 341940 && s.up.max_s == 20333640);
    /* 21 unavailable intervals, node 701's begins the trace: 20 measured,
     * 4 of them zero-length. */
    assert_int_equal(s.down.count, 20);
    assert_int_equal(s.down.from_start, 1);
    assert_int_equal(s.down.zero_length, 4);
    assert_true(s.down.mean_s == 26997 && s.down.median_s == 150);
    assert_int_equal(s.down.fit[FIT_LOGNORMAL].n, 16);
    churn_destroy(t);
}

/* The whole LANL05 trace: 43,325 intervals on 3,577 nodes (the data
 * README's figures). The reference values were computed from the raw file
 * by an independent Python script (bisection for the Weibull shape). */
static void test_fta_full(void **state)
{
    (void)state;
    if (access(FTA_FULL, R_OK) != 0)
        skip();
    mu_error err = {""};
    churn_read_stats st;
    churn_trace *t = churn_read_fta(FTA_FULL, &st, &err);
    if (!t)
        fail_msg("%s", err.text);
    assert_int_equal(st.records, 43325);
    assert_int_equal(st.zero_length, 122);
    assert_int_equal(st.gaps, 0);
    churn_summary s;
    assert_int_equal(analyze_churn(t, &s, &err), 0);
    assert_int_equal(s.nodes, 3577);
    assert_int_equal(s.nodes_with_events, 3577);
    assert_int_equal(s.events, 43325 + 3577);
    assert_true(s.origin_unix == 800920500.0);
    assert_int_equal(s.redundant, 0);

    assert_int_equal(s.up.count, 19874);
    assert_int_equal(s.up.zero_length, 0);
    assert_int_equal(s.up.open_at_end, 3577);
    assert_close(s.up.mean_s, 6407963.367213445, 1e-9);
    assert_close(s.up.median_s, 1009020, 1e-12);
    assert_close(s.up.fit[FIT_EXPONENTIAL].p1, 1779.98982422596, 1e-9);
    assert_close(s.up.fit[FIT_WEIBULL].p1, 0.48224700330533743, 1e-6);
    assert_close(s.up.fit[FIT_WEIBULL].p2, 816.6028682598484, 1e-6);
    assert_close(s.up.fit[FIT_WEIBULL].loglik, -155797.94043283348, 1e-9);
    assert_close(s.up.fit[FIT_LOGNORMAL].p1, 5.555633289809153, 1e-9);
    assert_close(s.up.fit[FIT_LOGNORMAL].p2, 2.391547319280676, 1e-9);
    assert_int_equal(s.up.best, FIT_WEIBULL);

    /* node 408's first interval starts the trace: not measured */
    assert_int_equal(s.down.from_start, 1);
    assert_int_equal(s.down.count, 23450);
    assert_int_equal(s.down.zero_length, 122);
    assert_int_equal(s.down.fit[FIT_WEIBULL].n, 23328);
    assert_close(s.down.mean_s, 21185.897654584223, 1e-9);
    assert_true(s.down.median_s == 3480);
    assert_close(s.down.fit[FIT_EXPONENTIAL].p1, 5.915748599679907, 1e-9);
    assert_close(s.down.fit[FIT_WEIBULL].p1, 0.5767402887734054, 1e-6);
    assert_close(s.down.fit[FIT_WEIBULL].p2, 2.1799696848511902, 1e-6);
    assert_close(s.down.fit[FIT_LOGNORMAL].p1, 0.04834236163783704, 1e-9);
    assert_close(s.down.fit[FIT_LOGNORMAL].p2, 1.4159091250047002, 1e-9);
    assert_close(s.down.fit[FIT_LOGNORMAL].loglik, -42341.54963749625, 1e-9);
    assert_int_equal(s.down.best, FIT_LOGNORMAL);

    /* The JSON report parses and carries the same figures. */
    sbuf out;
    sbuf_init(&out);
    assert_int_equal(analyze_churn_json(&s, &st, FTA_FULL, "fta", &out, &err), 0);
    cJSON *j = json_parse(out.data, out.len, "report", &err);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "nodes")->valuedouble, 3577);
    const cJSON *down = cJSON_GetObjectItem(j, "unavailable");
    assert_string_equal(cJSON_GetObjectItem(down, "best")->valuestring, "lognormal");
    assert_int_equal(cJSON_GetObjectItem(down, "zero_length")->valuedouble, 122);
    cJSON_Delete(j);
    sbuf_free(&out);
    churn_destroy(t);
}

static void test_workload_summary(void **state)
{
    (void)state;
    mu_error err = {""};
    workload_read_stats st;
    workload *w = workload_read_swf(SIM_TEST_DATA "/nasa-ipsc-excerpt.swf", 8, &st, &err);
    assert_non_null(w);
    workload_summary s;
    assert_int_equal(analyze_workload(w, &s, &err), 0);
    assert_int_equal(s.requests, 48);
    assert_int_equal(s.max_gpus, 128);
    assert_true(s.mean_gpus == 1196.0 / 48);
    assert_int_equal(s.n_models, 1);
    assert_string_equal(s.models[0].model, "");
    sbuf out;
    sbuf_init(&out);
    analyze_workload_text(&s, &st, "x.swf", "swf", &out);
    assert_non_null(strstr(out.data, "requests 48"));
    assert_int_equal(analyze_workload_json(&s, &st, "x.swf", "swf", &out, &err), 0);
    sbuf_free(&out);
    workload_destroy(w);
}

static void test_allocation_failure(void **state)
{
    (void)state;
    mu_error err = {""};
    churn_trace *t = churn_read_fta(SIM_TEST_DATA "/fta-lanl05-head.tab", NULL, &err);
    churn_summary s;
    size_t k;
    for (k = 1; k < 20; k++) {
        test_fail_alloc_after(k);
        int rc = analyze_churn(t, &s, &err);
        test_fail_alloc_after(0);
        if (rc == 0)
            break;
        assert_non_null(strstr(err.text, "out of memory"));
    }
    assert_true(k < 20);
    churn_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corners),
        cmocka_unit_test(test_fta_excerpt),
        cmocka_unit_test(test_fta_full),
        cmocka_unit_test(test_workload_summary),
        cmocka_unit_test(test_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
