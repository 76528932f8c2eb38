/* test_churn.c - the churn trace model and its readers and writer: the
 * real FTA excerpt, native CSV round trips, and every malformed input we
 * could think of, each refused with FILE:LINE and no partial result. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "churn.h"
#include "churn_io.h"
#include "simtest.h"
#include "testutil.h"

#define FTA_HEAD SIM_TEST_DATA "/fta-lanl05-head.tab"

static void test_model(void **state)
{
    (void)state;
    mu_error err;
    churn_trace *t = churn_create();
    uint32_t a, b, again;
    assert_int_equal(churn_node_intern(t, "a", &a, &err), 0);
    assert_int_equal(churn_node_intern(t, "b", &b, &err), 0);
    assert_int_equal(churn_node_intern(t, "a", &again, &err), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_int_equal(again, 0);
    assert_int_equal(churn_node_intern(t, "", &again, &err), -1);
    assert_int_equal(churn_node_count(t), 2);
    assert_false(churn_has_attributes(t));
    assert_int_equal(churn_node_set(t, b, "RTX 4090", 2, "de", &err), 0);
    assert_int_equal(churn_node_set(t, b, NULL, 0, "", &err), 0); /* changes nothing */
    churn_node nd;
    assert_int_equal(churn_node_get(t, b, &nd), 0);
    assert_string_equal(nd.name, "b");
    assert_string_equal(nd.gpu_model, "RTX 4090");
    assert_int_equal(nd.gpu_count, 2);
    assert_string_equal(nd.country, "DE");
    assert_true(churn_has_attributes(t));
    assert_int_equal(churn_node_set(t, b, NULL, 0, "DEU", &err), -1);
    assert_non_null(strstr(err.text, "DEU"));
    assert_int_equal(churn_node_set(t, 9, NULL, 0, NULL, &err), -1);
    assert_int_equal(churn_node_get(t, 9, &nd), -1);

    /* Sorting: by time, then node, equal keys in append order. */
    assert_int_equal(churn_append(t, 5, b, CHURN_JOIN, &err), 0);
    assert_int_equal(churn_append(t, 3, b, CHURN_LEAVE, &err), 0);
    assert_int_equal(churn_append(t, 3, b, CHURN_JOIN, &err), 0);
    assert_int_equal(churn_append(t, 3, a, CHURN_SPOOF, &err), 0);
    assert_int_equal(churn_append(t, 0, a, CHURN_JOIN, &err), 0);
    assert_int_equal(churn_append(t, -1, a, CHURN_JOIN, &err), -1);
    assert_int_equal(churn_append(t, NAN, a, CHURN_JOIN, &err), -1);
    assert_int_equal(churn_append(t, 1, 7, CHURN_JOIN, &err), -1);
    assert_int_equal(churn_append(t, 1, a, (churn_kind)9, &err), -1);
    assert_int_equal(churn_sort(t, &err), 0);
    const churn_event *ev = churn_events(t);
    assert_int_equal(churn_event_count(t), 5);
    static const struct {
        double t;
        uint32_t node, kind;
    } want[] = {{0, 0, CHURN_JOIN},
                {3, 0, CHURN_SPOOF},
                {3, 1, CHURN_LEAVE},
                {3, 1, CHURN_JOIN},
                {5, 1, CHURN_JOIN}};
    for (int i = 0; i < 5; i++) {
        assert_true(ev[i].time_s == want[i].t);
        assert_int_equal(ev[i].node, want[i].node);
        assert_int_equal(ev[i].kind, want[i].kind);
    }
    bool known;
    churn_origin_unix(t, &known);
    assert_false(known);

    churn_kind k;
    assert_int_equal(churn_kind_parse("JOIN", &k), 0);
    assert_int_equal(k, CHURN_JOIN);
    assert_int_equal(churn_kind_parse("spoof", &k), 0);
    assert_int_equal(k, CHURN_SPOOF);
    assert_int_equal(churn_kind_parse("fail", &k), -1);
    churn_destroy(t);
    churn_destroy(NULL);
}

/* A large reverse-ordered trace sorts stably (the merge sort's passes). */
static void test_sort_large(void **state)
{
    (void)state;
    mu_error err;
    churn_trace *t = churn_create();
    uint32_t n;
    for (int i = 0; i < 10; i++) {
        char name[8];
        snprintf(name, sizeof(name), "n%d", i);
        assert_int_equal(churn_node_intern(t, name, &n, &err), 0);
    }
    for (int i = 9999; i >= 0; i--) {
        assert_int_equal(churn_append(t, (double)(i / 3), (uint32_t)(i % 10), CHURN_LEAVE, &err),
                         0);
        assert_int_equal(churn_append(t, (double)(i / 3), (uint32_t)(i % 10), CHURN_JOIN, &err), 0);
    }
    assert_int_equal(churn_sort(t, &err), 0);
    const churn_event *ev = churn_events(t);
    for (size_t i = 1; i < churn_event_count(t); i++) {
        assert_true(ev[i - 1].time_s < ev[i].time_s ||
                    (ev[i - 1].time_s == ev[i].time_s && ev[i - 1].node <= ev[i].node));
        if (ev[i - 1].time_s == ev[i].time_s && ev[i - 1].node == ev[i].node)
            assert_true(ev[i - 1].kind == CHURN_LEAVE && ev[i].kind == CHURN_JOIN);
    }
    churn_destroy(t);
}

static void test_fta_excerpt(void **state)
{
    (void)state;
    mu_error err = {""};
    churn_read_stats st;
    churn_trace *t = churn_read_fta(FTA_HEAD, &st, &err);
    if (!t)
        fail_msg("%s", err.text);
    /* 32 intervals on 10 nodes, contiguous per node: one event per interval
     * start plus one at each node's last stop. */
    assert_int_equal(st.records, 32);
    assert_int_equal(st.zero_length, 4);
    assert_int_equal(st.gaps, 0);
    assert_int_equal(churn_node_count(t), 10);
    assert_int_equal(churn_event_count(t), 42);
    bool known;
    assert_true(churn_origin_unix(t, &known) == 1073321160.0);
    assert_true(known);
    /* Nodes in node_id order, named by node_id. */
    static const char *const names[] = {"655", "656", "701", "702", "703",
                                        "704", "705", "706", "707", "708"};
    for (uint32_t i = 0; i < 10; i++) {
        churn_node nd;
        churn_node_get(t, i, &nd);
        assert_string_equal(nd.name, names[i]);
        assert_string_equal(nd.gpu_model, "");
        assert_string_equal(nd.country, "");
    }
    const churn_event *ev = churn_events(t);
    size_t n = churn_event_count(t);
    /* Node 701 (one unavailability interval) starts the trace. */
    assert_true(ev[0].time_s == 0);
    assert_int_equal(ev[0].node, 2);
    assert_int_equal(ev[0].kind, CHURN_LEAVE);
    assert_true(ev[n - 1].time_s == 1125482580.0 - 1073321160.0);
    /* Node 708's only interval has zero length: LEAVE then JOIN at once. */
    uint32_t n708;
    assert_int_equal(churn_node_find(t, "708", &n708), 0);
    int seen = 0;
    double at = -1;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].node != n708)
            continue;
        assert_int_equal(ev[i].kind, seen == 0 ? CHURN_LEAVE : CHURN_JOIN);
        if (seen == 1)
            assert_true(ev[i].time_s == at);
        at = ev[i].time_s;
        seen++;
    }
    assert_int_equal(seen, 2);
    for (size_t i = 1; i < n; i++)
        assert_true(ev[i - 1].time_s <= ev[i].time_s);
    churn_destroy(t);
}

/* Every allocation failing in turn: NULL and nothing leaked (ASan checks
 * the leaks), until the read succeeds. */
static void test_fta_allocation_failures(void **state)
{
    (void)state;
    mu_error err;
    for (size_t k = 1; k < 200; k++) {
        test_fail_alloc_after(k);
        churn_trace *t = churn_read_fta(FTA_HEAD, NULL, &err);
        test_fail_alloc_after(0);
        if (t) {
            assert_int_equal(churn_event_count(t), 42);
            churn_destroy(t);
            return;
        }
    }
    fail_msg("never succeeded");
}

typedef struct bad_input {
    const char *text;
    unsigned line; /* the line the error must name; 0: file only */
    const char *says;
} bad_input;

static void expect_refused(churn_trace *(*reader)(const char *, churn_read_stats *, mu_error *),
                           const bad_input *b)
{
    char path[64];
    simtest_write_temp(path, sizeof(path), b->text);
    mu_error err = {""};
    churn_read_stats st = {99, 99, 99};
    churn_trace *t = reader(path, &st, &err);
    unlink(path);
    if (t)
        fail_msg("accepted: %s", b->text);
    simtest_assert_names(err.text, path, b->line);
    if (!strstr(err.text, b->says))
        fail_msg("error \"%s\" does not say \"%s\"", err.text, b->says);
    assert_int_equal(st.records, 99); /* no partial result, not even stats */
}

static const char fta_header[] = "event_id component_id node_id platform_id node_name event_type "
                                 "event_start_time event_stop_time event_end_reason\n";

static void test_fta_malformed(void **state)
{
    (void)state;
    char buf[16][512];
    static const bad_input rows[] = {
        {"0 0 1 3 a 0 100 200\n", 2, "expected 9"},
        {"0 0 1 3 a 0 100 200 8000 9\n", 2, "expected 9"},
        {"0 0 1 3 a 0 1e2x 200 8000\n", 2, "event_start_time"},
        {"0 0 1 3 a 2 100 200 8000\n", 2, "event_type"},
        {"0 0 1 3 a 0 100 50 8000\n", 2, "before event_start_time"},
        {"0 0 1 3 a 0 -100 50 8000\n", 2, "negative"},
        {"0 0 x 3 a 0 100 200 8000\n", 2, "node_id"},
        {"0 0 -1 3 a 0 100 200 8000\n", 2, "node_id"},
        {"z 0 1 3 a 0 100 200 8000\n", 2, "event_id"},
        {"0 0 1 3 a 0 100 200 8000\n1 0 1 3 a 1 150 300 8000\n", 3, "overlaps"},
        /* overlap found after sorting: the later line is named */
        {"1 0 1 3 a 1 150 300 8000\n0 0 1 3 a 0 100 200 8000\n", 3, "overlaps"},
    };
    size_t n = sizeof(rows) / sizeof(rows[0]);
    for (size_t i = 0; i < n; i++) {
        snprintf(buf[i], sizeof(buf[i]), "%s%s", fta_header, rows[i].text);
        bad_input b = {buf[i], rows[i].line, rows[i].says};
        expect_refused(churn_read_fta, &b);
    }
    static const bad_input whole[] = {
        {"", 0, "no intervals"},
        {"event_id component_id node_id platform_id node_name event_type "
         "event_start_time event_stop_time event_end_reason\n",
         0, "no intervals"},
        {"event_id node_id\n0 0 1 3 a 0 100 200 8000\n", 1, "header"},
        {"# comment\n\n0 0 1 3 a 0 100 200 8000\nrubbish\n", 4, "expected 9"},
    };
    for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
        expect_refused(churn_read_fta, &whole[i]);
}

/* Without a header, with comments and a gap between intervals. */
static void test_fta_gaps(void **state)
{
    (void)state;
    char path[64];
    simtest_write_temp(path, sizeof(path),
                       "# FTA without header\n"
                       "0 0 7 3 x 1 1000 2000 0\n"
                       "1 0 7 3 x 0 2500 2600 0\n"
                       "0 0 3 3 y 1 1500 1500 0\n");
    mu_error err = {""};
    churn_read_stats st;
    churn_trace *t = churn_read_fta(path, &st, &err);
    unlink(path);
    if (!t)
        fail_msg("%s", err.text);
    assert_int_equal(st.records, 3);
    assert_int_equal(st.gaps, 1);
    assert_int_equal(st.zero_length, 1);
    /* node 3 is first (node_id order); node 7: JOIN 0, LEAVE 1000 (gap),
     * LEAVE 1500, JOIN 1600. */
    churn_node nd;
    churn_node_get(t, 0, &nd);
    assert_string_equal(nd.name, "3");
    const churn_event *ev = churn_events(t);
    assert_int_equal(churn_event_count(t), 6);
    assert_true(ev[0].time_s == 0 && ev[0].node == 1 && ev[0].kind == CHURN_JOIN);
    assert_true(ev[1].time_s == 500 && ev[1].node == 0 && ev[1].kind == CHURN_JOIN);
    assert_true(ev[2].time_s == 500 && ev[2].node == 0 && ev[2].kind == CHURN_LEAVE);
    assert_true(ev[3].time_s == 1000 && ev[3].node == 1 && ev[3].kind == CHURN_LEAVE);
    assert_true(ev[4].time_s == 1500 && ev[4].node == 1 && ev[4].kind == CHURN_LEAVE);
    assert_true(ev[5].time_s == 1600 && ev[5].node == 1 && ev[5].kind == CHURN_JOIN);
    churn_destroy(t);
}

static const char csv_good[] = "# a hand-written trace\n"
                               "time_s, node, event, gpu_model, gpu_count, country\n"
                               "0,n1,join,RTX 4090,2,de\n"
                               "0,n2,JOIN,,,\n"
                               "\n"
                               "10.5,n1,leave,,,\n"
                               "10.5,n2,spoof,A100 80GB,,US\r\n"
                               "20,n1,join,RTX 4090,,DE\n";

static void test_csv_read_write(void **state)
{
    (void)state;
    char path[64];
    simtest_write_temp(path, sizeof(path), csv_good);
    mu_error err = {""};
    churn_read_stats st;
    churn_trace *t = churn_read_csv(path, &st, &err);
    unlink(path);
    if (!t)
        fail_msg("%s", err.text);
    assert_int_equal(st.records, 5);
    assert_int_equal(churn_node_count(t), 2);
    assert_int_equal(churn_event_count(t), 5);
    churn_node nd;
    churn_node_get(t, 0, &nd);
    assert_string_equal(nd.gpu_model, "RTX 4090");
    assert_int_equal(nd.gpu_count, 2);
    assert_string_equal(nd.country, "DE");
    churn_node_get(t, 1, &nd);
    assert_string_equal(nd.gpu_model, "A100 80GB");
    assert_int_equal(nd.gpu_count, 0);
    assert_string_equal(nd.country, "US");
    assert_int_equal(churn_events(t)[3].kind, CHURN_SPOOF);

    sbuf out;
    sbuf_init(&out);
    assert_int_equal(churn_write_csv(t, &out, &err), 0);
    assert_string_equal(out.data, "time_s,node,event,gpu_model,gpu_count,country\n"
                                  "0,n1,join,RTX 4090,2,DE\n"
                                  "0,n2,join,A100 80GB,,US\n"
                                  "10.5,n1,leave,,,\n"
                                  "10.5,n2,spoof,,,\n"
                                  "20,n1,join,,,\n");
    /* Written, read back, written again: the same bytes. */
    simtest_write_temp(path, sizeof(path), out.data);
    churn_trace *t2 = churn_read_csv(path, NULL, &err);
    unlink(path);
    assert_non_null(t2);
    sbuf out2;
    sbuf_init(&out2);
    assert_int_equal(churn_write_csv(t2, &out2, &err), 0);
    assert_string_equal(out.data, out2.data);
    sbuf_free(&out);
    sbuf_free(&out2);
    churn_destroy(t2);
    churn_destroy(t);

    /* The short header: no attribute columns. */
    simtest_write_temp(path, sizeof(path), "time_s,node,event\n1.25,x,leave\n");
    t = churn_read_csv(path, NULL, &err);
    unlink(path);
    assert_non_null(t);
    sbuf_init(&out);
    assert_int_equal(churn_write_csv(t, &out, &err), 0);
    assert_string_equal(out.data, "time_s,node,event\n1.25,x,leave\n");
    sbuf_free(&out);
    churn_destroy(t);
}

static void test_csv_malformed(void **state)
{
    (void)state;
    static const bad_input bad[] = {
        {"", 0, "empty"},
        {"# only a comment\n\n", 0, "empty"},
        {"time_s,node,event\n", 0, "no events"},
        {"time,node,event\n0,a,join\n", 1, "header"},
        {"time_s,node,event,gpu_model\n0,a,join,x\n", 1, "header"},
        {"event_id component_id node_id\n", 1, "Failure Trace Archive"},
        {"time_s,node,event\n0,a,join,extra\n", 2, "expected 3 fields"},
        {"time_s,node,event\n0,a\n", 2, "expected 3 fields"},
        {"time_s,node,event,gpu_model,gpu_count,country\n0,a,join\n", 2, "expected 6 fields"},
        {"time_s,node,event\nabc,a,join\n", 2, "not a number"},
        {"time_s,node,event\n1e999,a,join\n", 2, "not a number"},
        {"time_s,node,event\n-1,a,join\n", 2, "negative"},
        {"time_s,node,event\n5,a,join\n4,a,leave\n", 3, "time order"},
        {"time_s,node,event\n0,a,fail\n", 2, "not join, leave or spoof"},
        {"time_s,node,event\n0,,join\n", 2, "empty"},
        {"time_s,node,event\n0,\"a\",join\n", 2, "quoted"},
        {"time_s,node,event,gpu_model,gpu_count,country\n0,a,join,,0,\n", 2, "gpu_count"},
        {"time_s,node,event,gpu_model,gpu_count,country\n0,a,join,,x,\n", 2, "gpu_count"},
        {"time_s,node,event,gpu_model,gpu_count,country\n0,a,join,,,DEU\n", 2, "DEU"},
        {"time_s,node,event,gpu_model,gpu_count,country\n0,a,join,T4,,\n1,a,leave,V100,,\n", 3,
         "differs"},
        {"time_s,node,event,gpu_model,gpu_count,country\n0,a,join,,1,\n1,a,leave,,2,\n", 3,
         "differs"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(churn_read_csv, &bad[i]);
    /* The NUL case above is cut short by the string literal: write it by hand. */
    char path[64];
    simtest_write_temp(path, sizeof(path), "");
    FILE *f = fopen(path, "wb");
    fwrite("time_s,node,event\n0,a,join\n1,b\0,leave\n", 1, 38, f);
    fclose(f);
    mu_error err = {""};
    assert_null(churn_read_csv(path, NULL, &err));
    simtest_assert_names(err.text, path, 3);
    assert_non_null(strstr(err.text, "NUL"));
    unlink(path);
    /* A missing file names the file. */
    assert_null(churn_read_csv("/nonexistent/trace.csv", NULL, &err));
    simtest_assert_names(err.text, "/nonexistent/trace.csv", 0);
    assert_null(churn_read_fta("/nonexistent/trace.tab", NULL, &err));
    simtest_assert_names(err.text, "/nonexistent/trace.tab", 0);
}

static void test_csv_unwritable(void **state)
{
    (void)state;
    mu_error err;
    churn_trace *t = churn_create();
    uint32_t n;
    assert_int_equal(churn_node_intern(t, "a,b", &n, &err), 0);
    assert_int_equal(churn_append(t, 0, n, CHURN_JOIN, &err), 0);
    sbuf out;
    sbuf_init(&out);
    assert_int_equal(churn_write_csv(t, &out, &err), -1);
    assert_non_null(strstr(err.text, "a,b"));
    sbuf_free(&out);
    churn_destroy(t);
    char ts[32];
    churn_format_time(3600, ts, sizeof(ts));
    assert_string_equal(ts, "3600");
    churn_format_time(0.25, ts, sizeof(ts));
    assert_string_equal(ts, "0.25");
    churn_format_time(1.0004, ts, sizeof(ts));
    assert_string_equal(ts, "1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),          cmocka_unit_test(test_sort_large),
        cmocka_unit_test(test_fta_excerpt),    cmocka_unit_test(test_fta_allocation_failures),
        cmocka_unit_test(test_fta_malformed),  cmocka_unit_test(test_fta_gaps),
        cmocka_unit_test(test_csv_read_write), cmocka_unit_test(test_csv_malformed),
        cmocka_unit_test(test_csv_unwritable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
