/* test_workload.c - the workload model and its readers: native JSON lines,
 * the Alibaba GPU pod list and the Standard Workload Format, on real
 * excerpts and on malformed inputs (FILE:LINE, no partial result). */
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

#include "catalog.h"
#include "simtest.h"
#include "testutil.h"
#include "workload.h"

#define ALIBABA SIM_TEST_DATA "/alibaba-pods-excerpt.csv"
#define SWF     SIM_TEST_DATA "/nasa-ipsc-excerpt.swf"

typedef workload *(*reader_fn)(const char *path, workload_read_stats *st, mu_error *errp);

static workload *read_swf8(const char *path, workload_read_stats *st, mu_error *errp)
{
    return workload_read_swf(path, 8, st, errp);
}

static void expect_refused(reader_fn reader, const char *text, unsigned line, const char *says)
{
    char path[64];
    simtest_write_temp(path, sizeof(path), text);
    mu_error err = {""};
    workload_read_stats st = {.records = 99};
    workload *w = reader(path, &st, &err);
    unlink(path);
    if (w)
        fail_msg("accepted: %s", text);
    simtest_assert_names(err.text, path, line);
    if (!strstr(err.text, says))
        fail_msg("error \"%s\" does not say \"%s\"", err.text, says);
    assert_int_equal(st.records, 99);
}

static void test_model(void **state)
{
    (void)state;
    mu_error err;
    workload *w = workload_create();
    workload_request r = {.arrival_s = 10,
                          .duration_s = 5,
                          .workers = 2,
                          .gpus_per_worker = 4,
                          .gpu_model = "T4",
                          .region = NULL,
                          .name = "a"};
    assert_int_equal(workload_append(w, &r, &err), 0);
    r.arrival_s = 5;
    r.name = "b";
    assert_int_equal(workload_append(w, &r, &err), 0);
    r.name = "c";
    assert_int_equal(workload_append(w, &r, &err), 0);
    r.duration_s = 0;
    assert_int_equal(workload_append(w, &r, &err), -1);
    r.duration_s = 1;
    r.arrival_s = -1;
    assert_int_equal(workload_append(w, &r, &err), -1);
    r.arrival_s = 1;
    r.workers = 0;
    assert_int_equal(workload_append(w, &r, &err), -1);
    assert_int_equal(workload_count(w), 3);
    assert_int_equal(workload_sort(w, &err), 0);
    assert_string_equal(workload_at(w, 0)->name, "b");
    assert_string_equal(workload_at(w, 1)->name, "c");
    assert_string_equal(workload_at(w, 2)->name, "a");
    assert_string_equal(workload_at(w, 0)->region, "");
    assert_null(workload_at(w, 3));
    assert_int_equal(workload_set_region(w, 1, "europe", &err), 0);
    assert_int_equal(workload_set_region(w, 3, "europe", &err), -1);
    sbuf out;
    sbuf_init(&out);
    assert_int_equal(workload_write_jsonl(w, &out, &err), 0);
    assert_string_equal(
        out.data,
        "{\"arrival_s\":5,\"duration_s\":5,\"workers\":2,\"gpus_per_worker\":4,\"gpu_model\":"
        "\"T4\",\"name\":\"b\"}\n"
        "{\"arrival_s\":5,\"duration_s\":5,\"workers\":2,\"gpus_per_worker\":4,\"gpu_model\":"
        "\"T4\",\"region\":\"europe\",\"name\":\"c\"}\n"
        "{\"arrival_s\":10,\"duration_s\":5,\"workers\":2,\"gpus_per_worker\":4,\"gpu_model\":"
        "\"T4\",\"name\":\"a\"}\n");
    sbuf_free(&out);
    workload_destroy(w);
    workload_destroy(NULL);
}

static void test_jsonl(void **state)
{
    (void)state;
    char path[64];
    simtest_write_temp(path, sizeof(path),
                       "{\"arrival_s\": 0, \"duration_s\": 3600, \"workers\": 2, "
                       "\"gpus_per_worker\": 8, \"gpu_model\": \"A100 80GB\", \"region\": "
                       "\"europe\", \"name\": \"job \\\"1\\\"\"}\n"
                       "\n"
                       "{\"arrival_s\": 0.5, \"duration_s\": 60.25, \"workers\": 1, "
                       "\"gpus_per_worker\": 1, \"placement\": \"spread\"}\n");
    mu_error err = {""};
    workload_read_stats st;
    workload *w = workload_read_jsonl(path, &st, &err);
    unlink(path);
    if (!w)
        fail_msg("%s", err.text);
    assert_int_equal(st.records, 2);
    assert_int_equal(st.requests, 2);
    const workload_request *r = workload_at(w, 0);
    assert_string_equal(r->gpu_model, "A100 80GB");
    assert_string_equal(r->region, "europe");
    assert_string_equal(r->name, "job \"1\"");
    assert_int_equal(r->workers, 2);
    assert_string_equal(r->placement, "");
    r = workload_at(w, 1);
    assert_string_equal(r->gpu_model, "");
    assert_true(r->duration_s == 60.25);
    assert_string_equal(r->placement, "spread");
    /* Round trip: written, read, written: the same bytes. */
    sbuf a, b;
    sbuf_init(&a);
    sbuf_init(&b);
    assert_int_equal(workload_write_jsonl(w, &a, &err), 0);
    simtest_write_temp(path, sizeof(path), a.data);
    workload *w2 = workload_read_jsonl(path, NULL, &err);
    unlink(path);
    assert_non_null(w2);
    assert_int_equal(workload_write_jsonl(w2, &b, &err), 0);
    assert_string_equal(a.data, b.data);
    sbuf_free(&a);
    sbuf_free(&b);
    workload_destroy(w);
    workload_destroy(w2);
}

/* A well-formed request, open for more fields. */
#define R1 "{\"arrival_s\":0,\"duration_s\":60,\"workers\":1,\"gpus_per_worker\":1"

static void test_jsonl_tasks(void **state)
{
    (void)state;
    char path[64];
    simtest_write_temp(
        path, sizeof(path),
        R1 ",\"tasks\":4,\"task_s\":10.5}\n"
           "{\"arrival_s\":1,\"duration_s\":600,\"workers\":2,\"gpus_per_worker\":4,"
           "\"tasks\":16,\"task_s\":\"lognormal:4.5,0.3\",\"task_gpus\":2,"
           "\"task_fail\":0.05,\"task_retries\":3}\n"
           "{\"arrival_s\":2,\"duration_s\":600,\"workers\":1,\"gpus_per_worker\":1}\n");
    mu_error err = {""};
    workload *w = workload_read_jsonl(path, NULL, &err);
    unlink(path);
    if (!w)
        fail_msg("%s", err.text);
    assert_true(workload_has_tasks(w));
    const workload_request *r = workload_at(w, 0);
    assert_int_equal(r->tasks, 4);
    assert_int_equal(r->task_gpus, 1); /* gpus_per_worker */
    assert_int_equal(r->task_s.kind, DIST_CONSTANT);
    assert_true(r->task_s.a == 10.5);
    assert_true(r->task_fail == 0);
    assert_int_equal(r->task_retries, 0);
    r = workload_at(w, 1);
    assert_int_equal(r->tasks, 16);
    assert_int_equal(r->task_gpus, 2);
    assert_int_equal(r->task_s.kind, DIST_LOGNORMAL);
    assert_true(r->task_s.a == 4.5 && r->task_s.b == 0.3);
    assert_true(r->task_fail == 0.05);
    assert_int_equal(r->task_retries, 3);
    assert_int_equal(workload_at(w, 2)->tasks, 0);
    /* written and read back: the same bytes */
    sbuf a, b;
    sbuf_init(&a);
    sbuf_init(&b);
    assert_int_equal(workload_write_jsonl(w, &a, &err), 0);
    assert_non_null(strstr(a.data, "\"tasks\":4,\"task_s\":10.5}"));
    assert_non_null(strstr(a.data, "\"tasks\":16,\"task_s\":\"lognormal:4.5,0.3\",\"task_gpus\":2,"
                                   "\"task_fail\":0.05,\"task_retries\":3}"));
    simtest_write_temp(path, sizeof(path), a.data);
    workload *w2 = workload_read_jsonl(path, NULL, &err);
    unlink(path);
    assert_non_null(w2);
    assert_int_equal(workload_write_jsonl(w2, &b, &err), 0);
    assert_string_equal(a.data, b.data);
    /* one task per worker for the requests without tasks (Alibaba, SWF) */
    assert_int_equal(workload_tasks_per_worker(w2), 1);
    r = workload_at(w2, 2);
    assert_int_equal(r->tasks, 1);
    assert_int_equal(r->task_gpus, 1);
    assert_true(r->task_s.kind == DIST_CONSTANT && r->task_s.a == 600);
    assert_int_equal(workload_at(w2, 1)->tasks, 16); /* kept */
    sbuf_free(&a);
    sbuf_free(&b);
    workload_destroy(w);
    workload_destroy(w2);
    /* the model refuses what the reader would */
    workload *m = workload_create();
    workload_request bad = {.arrival_s = 0,
                            .duration_s = 1,
                            .workers = 1,
                            .gpus_per_worker = 1,
                            .tasks = 1,
                            .task_gpus = 2,
                            .task_s = {DIST_CONSTANT, 1, 0}};
    assert_int_equal(workload_append(m, &bad, &err), -1);
    assert_non_null(strstr(err.text, "task_gpus 2"));
    bad.task_gpus = 1;
    bad.task_fail = 2;
    assert_int_equal(workload_append(m, &bad, &err), -1);
    bad.task_fail = 0;
    bad.task_s.a = 0;
    assert_int_equal(workload_append(m, &bad, &err), -1);
    bad.task_s.a = 1;
    assert_int_equal(workload_append(m, &bad, &err), 0);
    assert_true(workload_has_tasks(m));
    workload_destroy(m);
}

static void test_jsonl_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        unsigned line;
        const char *says;
    } bad[] = {
        {"", 0, "no requests"},
        {"\n\n", 0, "no requests"},
        {"{\"arrival_s\":0,\"duration_s\":1,\"workers\":1}\n", 1, "gpus_per_worker"},
        {"{\"arrival_s\":0,\"duration_s\":1,\"workers\":1,\"gpus_per_worker\":1,"
         "\"placement\":\"diagonal\"}\n",
         1, "placement \"diagonal\" is not pack or spread"},
        {"{\"arrival_s\":0,\"duration_s\":1,\"workers\":1,\"gpus_per_worker\":1,\"gpu\":\"x\"}\n",
         1, "unknown key"},
        {"{\"arrival_s\":\"0\",\"duration_s\":1,\"workers\":1,\"gpus_per_worker\":1}\n", 1,
         "arrival_s"},
        {"{\"arrival_s\":-1,\"duration_s\":1,\"workers\":1,\"gpus_per_worker\":1}\n", 1,
         "arrival_s"},
        {"{\"arrival_s\":0,\"duration_s\":0,\"workers\":1,\"gpus_per_worker\":1}\n", 1,
         "duration_s"},
        {"{\"arrival_s\":0,\"duration_s\":1,\"workers\":0,\"gpus_per_worker\":1}\n", 1, "workers"},
        {"{\"arrival_s\":0,\"duration_s\":1,\"workers\":1.5,\"gpus_per_worker\":1}\n", 1,
         "workers"},
        {"{\"arrival_s\":5,\"duration_s\":1,\"workers\":1,\"gpus_per_worker\":1}\n"
         "{\"arrival_s\":4,\"duration_s\":1,\"workers\":1,\"gpus_per_worker\":1}\n",
         2, "arrival order"},
        {"{\"arrival_s\":0,\"duration_s\":1,\"workers\":1,\"gpus_per_worker\":1} x\n", 1,
         "not a JSON object"},
        {"[1,2]\n", 1, "object"},
        {"{\"arrival_s\":0,\n\"duration_s\":1}\n", 1, "not a JSON object"},
        /* tasks */
        {R1 "}\n" R1 ",\"tasks\":4}\n", 2, "\"tasks\" needs \"task_s\""},
        {R1 ",\"task_s\":10}\n", 1, "\"task_s\" without \"tasks\""},
        {R1 ",\"task_fail\":0.1}\n", 1, "\"task_fail\" without \"tasks\""},
        {R1 ",\"tasks\":0,\"task_s\":10}\n", 1, "\"tasks\" must be between 1 and"},
        {R1 ",\"tasks\":2.5,\"task_s\":10}\n", 1, "\"tasks\" must be a whole number"},
        {R1 ",\"tasks\":4,\"task_s\":0}\n", 1, "\"task_s\" must be a number of seconds"},
        {R1 ",\"tasks\":4,\"task_s\":\"gamma:2\"}\n", 1, "task_s: distribution \"gamma:2\""},
        {R1 ",\"tasks\":4,\"task_s\":[10]}\n", 1, "\"task_s\" must be a number of seconds or"},
        {R1 ",\"tasks\":4,\"task_s\":10,\"task_gpus\":2}\n", 1,
         "\"task_gpus\" 2 is more than \"gpus_per_worker\" 1"},
        {R1 ",\"tasks\":4,\"task_s\":10,\"task_fail\":1.5}\n", 1,
         "\"task_fail\" must be between 0 and 1"},
        {R1 ",\"tasks\":4,\"task_s\":10,\"task_retries\":-1}\n", 1, "\"task_retries\""},
        {R1 ",\"tasks\":4,\"task_s\":10,\"task_time\":1}\n", 1, "unknown key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(workload_read_jsonl, bad[i].text, bad[i].line, bad[i].says);
}

static void test_alibaba_excerpt(void **state)
{
    (void)state;
    mu_error err = {""};
    workload_read_stats st;
    workload *w = workload_read_alibaba(ALIBABA, &st, &err);
    if (!w)
        fail_msg("%s", err.text);
    /* 70 pods: 6 CPU-only, pod 7285 deleted when created, 63 requests. */
    assert_int_equal(st.records, 70);
    assert_int_equal(st.skipped_no_gpu, 6);
    assert_int_equal(st.skipped_bad_time, 1);
    assert_int_equal(st.requests, 63);
    assert_int_equal(st.fractional_gpu, 21);
    assert_int_equal(st.never_scheduled, 1);
    assert_int_equal(st.unmapped_model, 0); /* gpu_spec is empty in this trace */
    const workload_request *r = workload_at(w, 0);
    assert_string_equal(r->name, "openb-pod-0000");
    assert_true(r->arrival_s == 0 && r->duration_s == 12537496);
    assert_int_equal(r->workers, 1);
    assert_int_equal(r->gpus_per_worker, 1);
    assert_string_equal(r->gpu_model, "");
    unsigned gpus = 0;
    for (size_t i = 0; i < workload_count(w); i++) {
        r = workload_at(w, i);
        gpus += r->gpus_per_worker * r->workers;
        if (strcmp(r->name, "openb-pod-0017") == 0)
            assert_int_equal(r->gpus_per_worker, 8);
        if (i)
            assert_true(workload_at(w, i - 1)->arrival_s <= r->arrival_s);
    }
    assert_int_equal(gpus, 70);
    assert_string_equal(workload_at(w, 62)->name, "openb-pod-0068");
    workload_destroy(w);
}

static void test_alibaba_models(void **state)
{
    (void)state;
    int unmapped;
    assert_string_equal(workload_alibaba_model("", &unmapped), "");
    assert_int_equal(unmapped, 0);
    assert_string_equal(workload_alibaba_model("T4", &unmapped), "T4");
    assert_int_equal(unmapped, 0);
    assert_string_equal(workload_alibaba_model("V100M16|V100M32", &unmapped), "V100");
    assert_string_equal(workload_alibaba_model("V100M32", &unmapped), "V100");
    assert_string_equal(workload_alibaba_model("A10", &unmapped), "A10");
    assert_string_equal(workload_alibaba_model("T4|V100M16", &unmapped), "");
    assert_int_equal(unmapped, 1);
    assert_string_equal(workload_alibaba_model("G2", &unmapped), "");
    assert_int_equal(unmapped, 1);
    assert_string_equal(workload_alibaba_model("P100", &unmapped), "");
    assert_string_equal(workload_alibaba_model("H800", &unmapped), "");
    assert_int_equal(unmapped, 1);
    /* Every name the mapping produces is in the project's catalog. */
    catalog *cat = test_catalog();
    static const char *const specs[] = {"T4", "A10", "V100M16", "V100M32", "V100"};
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        const char *m = workload_alibaba_model(specs[i], NULL);
        const gpu_model *g = catalog_find(cat, m);
        assert_non_null(g);
        assert_string_equal(g->name, m);
    }
    /* P100 really is absent, so mapping it to "" is right. */
    assert_null(catalog_find(cat, "P100"));
    catalog_destroy(cat);
}

static const char ab_header[] = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,"
                                "pod_phase,creation_time,deletion_time,scheduled_time\n";

static void test_alibaba_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *rows;
        unsigned line;
        const char *says;
    } bad[] = {
        {"p,1,1,1,1000,,LS,Running,0,10\n", 2, "expected 11 fields"},
        {"p,1,1,x,1000,,LS,Running,0,10,0\n", 2, "num_gpu"},
        {"p,1,1,1,1500,,LS,Running,0,10,0\n", 2, "gpu_milli"},
        {"p,1,1,1,1000,,LS,Running,zero,10,0\n", 2, "creation_time"},
        {"p,1,1,1,1000,,LS,Running,-5,10,0\n", 2, "negative"},
        {"p,1,1,1,1000,,LS,Running,0,1O,0\n", 2, "deletion_time"},
        {"p,1,1,0,0,,LS,Running,0,10,0\n", 0, "no GPU requests"},
        {"p,1,1,1,1000,,LS,Running,5,5,\n", 0, "no GPU requests"},
        {"", 0, "no GPU requests"},
    };
    char buf[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(buf, sizeof(buf), "%s%s", ab_header, bad[i].rows);
        expect_refused(workload_read_alibaba, buf, bad[i].line, bad[i].says);
    }
    expect_refused(workload_read_alibaba, "", 0, "empty");
    expect_refused(workload_read_alibaba, "name,num_gpu\np,1\n", 1, "gpu_milli");
    expect_refused(workload_read_alibaba, "time_s,node,event\n0,a,join\n", 1, "Alibaba");
}

static void test_swf_excerpt(void **state)
{
    (void)state;
    mu_error err = {""};
    workload_read_stats st;
    workload *w = workload_read_swf(SWF, 8, &st, &err);
    if (!w)
        fail_msg("%s", err.text);
    /* 50 jobs, two with run time 0 (jobs 658, 659). */
    assert_int_equal(st.records, 50);
    assert_int_equal(st.skipped_bad_time, 2);
    assert_int_equal(st.requests, 48);
    assert_int_equal(st.rounded_up, 0); /* powers of two only */
    const workload_request *r = workload_at(w, 0);
    assert_string_equal(r->name, "1");
    assert_true(r->arrival_s == 0 && r->duration_s == 1451);
    assert_int_equal(r->workers, 16); /* 128 processors */
    assert_int_equal(r->gpus_per_worker, 8);
    unsigned workers = 0, gpus = 0;
    for (size_t i = 0; i < workload_count(w); i++) {
        r = workload_at(w, i);
        workers += r->workers;
        gpus += r->workers * r->gpus_per_worker;
        if (strcmp(r->name, "57") == 0) {
            assert_int_equal(r->workers, 1);
            assert_int_equal(r->gpus_per_worker, 1);
        }
    }
    assert_int_equal(workers, 168);
    assert_int_equal(gpus, 1196);
    workload_destroy(w);

    /* One GPU per worker: workers = processors. */
    w = workload_read_swf(SWF, 1, &st, &err);
    assert_non_null(w);
    assert_int_equal(workload_at(w, 0)->workers, 128);
    assert_int_equal(workload_at(w, 0)->gpus_per_worker, 1);
    workload_destroy(w);

    /* 12 processors on 8-GPU workers: 2 workers, rounded up and counted;
     * allocated -1 falls back to requested (field 8); unsorted submits are
     * sorted. */
    char path[64];
    simtest_write_temp(path, sizeof(path),
                       "; comment\n"
                       "1 100 -1 50 12 -1 -1 -1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n"
                       "2 50 -1 50 -1 -1 -1 4 -1 -1 1 1 1 -1 -1 -1 -1 -1\n"
                       "3 60 -1 50 -1 -1 -1 -1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n");
    w = workload_read_swf(path, 0, &st, &err);
    unlink(path);
    assert_non_null(w);
    assert_int_equal(st.rounded_up, 1);
    assert_int_equal(st.skipped_no_procs, 1);
    assert_string_equal(workload_at(w, 0)->name, "2");
    assert_int_equal(workload_at(w, 0)->gpus_per_worker, 4);
    assert_int_equal(workload_at(w, 1)->workers, 2);
    workload_destroy(w);
}

static void test_swf_malformed(void **state)
{
    (void)state;
    expect_refused(read_swf8, "", 0, "no jobs");
    expect_refused(read_swf8, "; only comments\n;\n", 0, "no jobs");
    expect_refused(read_swf8, "1 0 -1 10 1 -1 -1 -1 -1 -1 -1 1 1 -1 -1 -1 -1\n", 1, "expected 18");
    expect_refused(read_swf8, ";\n1 0 -1 10 1 -1 -1 -1 -1 -1 -1 1 1 -1 -1 -1 -1 -1 7\n", 2,
                   "expected 18");
    expect_refused(read_swf8, "1 0 -1 ten 1 -1 -1 -1 -1 -1 -1 1 1 -1 -1 -1 -1 -1\n", 1, "run_time");
    expect_refused(read_swf8, "1 -5 -1 10 1 -1 -1 -1 -1 -1 -1 1 1 -1 -1 -1 -1 -1\n", 1, "negative");
    expect_refused(read_swf8, "1 0 -1 10 1.5 -1 -1 -1 -1 -1 -1 1 1 -1 -1 -1 -1 -1\n", 1,
                   "processor");
}

static void test_allocation_failures(void **state)
{
    (void)state;
    mu_error err;
    reader_fn readers[] = {workload_read_alibaba, read_swf8};
    const char *paths[] = {ALIBABA, SWF};
    for (int k = 0; k < 2; k++) {
        size_t n;
        for (n = 1; n < 200; n++) {
            test_fail_alloc_after(n);
            workload *w = readers[k](paths[k], NULL, &err);
            test_fail_alloc_after(0);
            if (w) {
                workload_destroy(w);
                break;
            }
        }
        assert_true(n < 200);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_jsonl_tasks),
        cmocka_unit_test(test_jsonl_malformed),
        cmocka_unit_test(test_alibaba_excerpt),
        cmocka_unit_test(test_alibaba_models),
        cmocka_unit_test(test_alibaba_malformed),
        cmocka_unit_test(test_swf_excerpt),
        cmocka_unit_test(test_swf_malformed),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
