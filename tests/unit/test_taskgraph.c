/* test_taskgraph.c - the client side of tasks: task graph files
 * (cli/taskgraph.c) into SubmitTasksRequests, task ids and --after, and the
 * client library's task calls (cli/client.c) against a fake broker in the
 * same process.
 *
 * A good graph must come out as exactly the TaskSpecs it says (also after
 * a trip through the wire encoding); every bad one must be refused with an
 * error that names the culprit: the task (index and name) and the field. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "alloc.h"
#include "muster/client.h"
#include "taskgraph.h"
#include "testutil.h"
#include "wire.h"
#include "zsock.h"

static taskgraph *parse_ok(const char *json)
{
    mu_error err = {{0}};
    taskgraph *g = taskgraph_parse(json, strlen(json), "g.json", &err);
    if (!g)
        fail_msg("refused a good graph: %s", err.text);
    return g;
}

/* The graph must be refused, with every one of the NULL-ended WANT in the
 * error. */
static void parse_bad(const char *json, const char *const *want)
{
    mu_error err = {{0}};
    taskgraph *g = taskgraph_parse(json, strlen(json), "g.json", &err);
    if (g) {
        taskgraph_destroy(g);
        fail_msg("accepted a bad graph: %s", json);
    }
    if (getenv("SHOW_ERRORS")) /* to read them all: SHOW_ERRORS=1 test_taskgraph */
        print_message("%s\n", err.text);
    for (; *want; want++)
        if (!strstr(err.text, *want))
            fail_msg("error \"%s\" does not mention \"%s\" (graph: %s)", err.text, *want, json);
}

static const Muster__TaskSpec *task(const taskgraph *g, size_t i)
{
    const Muster__SubmitTasksRequest *r = taskgraph_request(g);
    assert_true(i < r->n_tasks);
    return r->tasks[i];
}

static void assert_strings(char **got, size_t n, const char *const *want)
{
    size_t k = 0;
    for (; want[k]; k++) {
        if (k >= n)
            fail_msg("only %zu strings, expected \"%s\" at %zu", n, want[k], k);
        assert_string_equal(got[k], want[k]);
    }
    assert_int_equal(n, k);
}

/* --- a good graph ----------------------------------------------------------------- */

static const char GOOD[] =
    "{\"cluster\": \"1a2b3c4d\",\n"
    " \"defaults\": {\"gpus\": 1, \"cpus\": 2, \"memory_mib\": 512, \"retries\": 2,\n"
    "              \"retry_exits\": true, \"timeout_s\": 30, \"placement\": \"spread\",\n"
    "              \"env\": {\"MODE\": \"train\", \"SEED\": \"1\"}},\n"
    " \"tasks\": [\n"
    "  {\"name\": \"prep\", \"argv\": [\"sh\", \"-c\", \"echo hi\"], \"gpus\": 0,\n"
    "   \"env\": {\"SEED\": \"7\", \"EXTRA\": \"x=y\"}, \"cwd\": \"/tmp\", \"retries\": 0},\n"
    "  {\"name\": \"train\", \"argv\": [\"python3\", \"train.py\"], \"after\": [\"prep\", 7],\n"
    "   \"memory_mib\": 1024, \"member\": \"7c1d\", \"hard_affinity\": true,\n"
    "   \"timeout_s\": 604800, \"result_file\": \"out/metrics.json\", \"retries\": 5},\n"
    "  {\"argv\": [\"true\"], \"after\": [\"train\", \"prep\"], \"retry_exits\": false,\n"
    "   \"placement\": \"pack\", \"image\": \"busybox\"},\n"
    "  {\"name\": \"soft\", \"argv\": [\"x\", \"\"], \"member\": \"7c1d\", \"placement\": "
    "\"member\"}\n"
    " ]}\n";

static void check_good(const Muster__SubmitTasksRequest *r)
{
    assert_string_equal(r->cluster_id, "1a2b3c4d");
    assert_int_equal(r->n_tasks, 4);
    const Muster__TaskSpec *prep = r->tasks[0], *train = r->tasks[1], *anon = r->tasks[2],
                           *soft = r->tasks[3];

    assert_string_equal(prep->name, "prep");
    assert_strings(prep->argv, prep->n_argv, (const char *const[]){"sh", "-c", "echo hi", NULL});
    assert_int_equal(prep->gpus, 0); /* its own 0 wins over the defaults' 1 */
    assert_int_equal(prep->cpus, 2); /* from the defaults */
    assert_int_equal(prep->memory_mib, 512);
    assert_int_equal(prep->max_retries, -1); /* "retries": 0 is none: -1 on the wire */
    assert_true(prep->retry_exits);
    assert_int_equal(prep->timeout_ms, 30000);
    assert_string_equal(prep->placement, "spread");
    assert_string_equal(prep->cwd, "/tmp");
    /* Merged with the defaults, the task's SEED winning; sorted by name. */
    assert_strings(prep->env, prep->n_env,
                   (const char *const[]){"EXTRA=x=y", "MODE=train", "SEED=7", NULL});
    assert_int_equal(prep->n_after, 0);

    assert_string_equal(train->name, "train");
    assert_strings(train->after, train->n_after, (const char *const[]){"prep", "7", NULL});
    assert_int_equal(train->gpus, 1);
    assert_int_equal(train->memory_mib, 1024);
    assert_string_equal(train->member, "7c1d");
    assert_string_equal(train->placement, "member-hard");
    assert_int_equal(train->timeout_ms, 604800u * 1000u);
    assert_string_equal(train->result_file, "out/metrics.json");
    assert_int_equal(train->max_retries, 5);
    assert_strings(train->env, train->n_env, (const char *const[]){"MODE=train", "SEED=1", NULL});
    assert_string_equal(train->cwd, "");

    assert_string_equal(anon->name, "");
    assert_strings(anon->after, anon->n_after, (const char *const[]){"train", "prep", NULL});
    assert_false(anon->retry_exits);
    assert_int_equal(anon->max_retries, 2); /* the defaults' */
    assert_string_equal(anon->placement, "pack");
    assert_string_equal(anon->image, "busybox");

    assert_strings(soft->argv, soft->n_argv, (const char *const[]){"x", "", NULL});
    assert_string_equal(soft->placement, "member");
    assert_string_equal(soft->member, "7c1d");
}

static void test_good_graph(void **state)
{
    (void)state;
    taskgraph *g = parse_ok(GOOD);
    check_good(taskgraph_request(g));

    /* The same after a trip through the wire. */
    Muster__Envelope env;
    wire_envelope_init(&env, 1);
    env.body_case = MUSTER__ENVELOPE__BODY_SUBMIT_TASKS;
    env.submit_tasks = (Muster__SubmitTasksRequest *)taskgraph_request(g);
    uint8_t *buf;
    size_t len;
    assert_int_equal(wire_encode(&env, &buf, &len), 0);
    taskgraph_destroy(g);
    Muster__Envelope *back;
    Muster__Status st;
    uint64_t rid;
    mu_error err;
    assert_int_equal(wire_decode(buf, len, 1 << 20, &back, &st, &rid, &err), 0);
    mu_free(buf);
    assert_int_equal(back->body_case, MUSTER__ENVELOPE__BODY_SUBMIT_TASKS);
    check_good(back->submit_tasks);
    wire_free(back);
}

/* Without defaults: absent fields are the wire's zeros (retries 0: the
 * broker's default), and no cluster. */
static void test_minimal_graph(void **state)
{
    (void)state;
    taskgraph *g = parse_ok("{\"tasks\": [{\"argv\": [\"true\"]}, {\"argv\": [\"false\"], "
                            "\"retries\": 3, \"retry_exits\": true}]}");
    const Muster__SubmitTasksRequest *r = taskgraph_request(g);
    assert_string_equal(r->cluster_id, "");
    const Muster__TaskSpec *a = task(g, 0), *b = task(g, 1);
    assert_int_equal(a->max_retries, 0);
    assert_false(a->retry_exits);
    assert_int_equal(a->gpus, 0);
    assert_int_equal(a->timeout_ms, 0);
    assert_string_equal(a->placement, "");
    assert_int_equal(a->n_env, 0);
    assert_int_equal(b->max_retries, 3);
    assert_true(b->retry_exits);
    taskgraph_destroy(g);

    /* The defaults' "retries": 0 is none for every task that says nothing. */
    g = parse_ok("{\"defaults\": {\"retries\": 0}, \"tasks\": [{\"argv\": [\"a\"]}, "
                 "{\"argv\": [\"b\"], \"retries\": 4}]}");
    assert_int_equal(task(g, 0)->max_retries, -1);
    assert_int_equal(task(g, 1)->max_retries, 4);
    taskgraph_destroy(g);
}

/* --- bad graphs ------------------------------------------------------------------ */

typedef struct bad_case {
    const char *json;
    const char *want[5];
} bad_case;

#define T(extra) "{\"tasks\": [{\"name\": \"a\", \"argv\": [\"x\"]" extra "}]}"

static const bad_case BAD[] = {
    /* not JSON, not an object, wrong shapes */
    {"{\"tasks\": [", {"g.json:1", "not valid JSON", NULL}},
    {"{\"tasks\": []}\n}", {"g.json:2", "unexpected text", NULL}},
    {"[1, 2]", {"JSON object", "not an array", NULL}},
    {"{}", {"\"tasks\" is missing", NULL}},
    {"{\"tasks\": {}}", {"\"tasks\" must be an array", NULL}},
    {"{\"tasks\": []}", {"\"tasks\" is empty", NULL}},
    {"{\"tasks\": [1]}", {"tasks[0]", "must be an object", "a number", NULL}},
    {"{\"cluster\": 5, \"tasks\": [{\"argv\": [\"x\"]}]}", {"\"cluster\"", "a string", NULL}},
    {"{\"cluster\": \"\", \"tasks\": [{\"argv\": [\"x\"]}]}", {"\"cluster\"", "empty", NULL}},
    /* unknown fields, at each level */
    {"{\"task\": [], \"tasks\": [{\"argv\": [\"x\"]}]}",
     {"unknown field \"task\"", "did you mean \"tasks\"", NULL}},
    {"{\"defaults\": {\"gpu\": 1}, \"tasks\": [{\"argv\": [\"x\"]}]}",
     {"defaults", "unknown field \"gpu\"", "\"gpus\"", NULL}},
    {"{\"defaults\": {\"name\": \"x\"}, \"tasks\": [{\"argv\": [\"x\"]}]}",
     {"defaults", "unknown field \"name\"", NULL}},
    {T(", \"bogus_field_name\": 1"),
     {"tasks[0] (\"a\")", "unknown field \"bogus_field_name\"", "argv", NULL}},
    {T(", \"gpus\": 1, \"gpus\": 2"), {"tasks[0] (\"a\")", "\"gpus\" is given twice", NULL}},
    /* argv */
    {"{\"tasks\": [{\"name\": \"a\"}]}", {"tasks[0] (\"a\")", "\"argv\" is missing", NULL}},
    {"{\"tasks\": [{\"argv\": []}]}", {"tasks[0]", "\"argv\" is empty", NULL}},
    {"{\"tasks\": [{\"argv\": \"ls -l\"}]}", {"tasks[0]", "\"argv\" must be an array", NULL}},
    {"{\"tasks\": [{\"argv\": [\"ls\"]}, {\"name\": \"b\", \"argv\": [\"ls\", 1]}]}",
     {"tasks[1] (\"b\")", "\"argv\"[1]", "a number", NULL}},
    {"{\"tasks\": [{\"argv\": [\"\", \"x\"]}]}", {"tasks[0]", "\"argv\"[0]", NULL}},
    /* wrong types */
    {T(", \"gpus\": \"1\""), {"tasks[0] (\"a\")", "\"gpus\" must be a number", "a string", NULL}},
    {T(", \"retry_exits\": \"yes\""),
     {"tasks[0] (\"a\")", "\"retry_exits\"", "true or false", NULL}},
    {T(", \"env\": [\"A=1\"]"), {"tasks[0] (\"a\")", "\"env\" must be an object", NULL}},
    {T(", \"env\": {\"A\": 1}"), {"tasks[0] (\"a\")", "\"A\" must be a string", NULL}},
    {T(", \"after\": \"b\""), {"tasks[0] (\"a\")", "\"after\" must be an array", NULL}},
    {T(", \"after\": [true]"), {"tasks[0] (\"a\")", "\"after\"[0]", "true/false", NULL}},
    {T(", \"cwd\": 3"), {"tasks[0] (\"a\")", "\"cwd\" must be a string", NULL}},
    {"{\"tasks\": [{\"name\": 5, \"argv\": [\"x\"]}]}",
     {"tasks[0]", "\"name\" must be a string", NULL}},
    /* numbers out of range */
    {T(", \"gpus\": -1"), {"tasks[0] (\"a\")", "\"gpus\"", "0..64", "-1", NULL}},
    {T(", \"gpus\": 65"), {"tasks[0] (\"a\")", "\"gpus\"", "65", NULL}},
    {T(", \"cpus\": 1.5"), {"tasks[0] (\"a\")", "\"cpus\" must be a whole number", NULL}},
    {T(", \"memory_mib\": 1e20"), {"tasks[0] (\"a\")", "\"memory_mib\"", NULL}},
    {T(", \"timeout_s\": 604801"), {"tasks[0] (\"a\")", "\"timeout_s\"", "7 days", NULL}},
    {T(", \"retries\": 101"), {"tasks[0] (\"a\")", "\"retries\"", "0..100", NULL}},
    {T(", \"retries\": -1"), {"tasks[0] (\"a\")", "\"retries\"", NULL}},
    {"{\"defaults\": {\"timeout_s\": 1e9}, \"tasks\": [{\"argv\": [\"x\"]}]}",
     {"defaults", "\"timeout_s\"", NULL}},
    /* env */
    {T(", \"env\": {\"A\": \"1\", \"A\": \"2\"}"), {"tasks[0] (\"a\")", "\"A\" twice", NULL}},
    {T(", \"env\": {\"A=B\": \"1\"}"), {"tasks[0] (\"a\")", "\"A=B\"", "variable name", NULL}},
    {T(", \"env\": {\"\": \"1\"}"), {"tasks[0] (\"a\")", "variable name", NULL}},
    /* placement, member */
    {T(", \"placement\": \"random\""), {"tasks[0] (\"a\")", "\"random\"", "placement", NULL}},
    {T(", \"placement\": \"member\""), {"tasks[0] (\"a\")", "needs \"member\"", NULL}},
    {T(", \"member\": \"w1\", \"placement\": \"spread\""),
     {"tasks[0] (\"a\")", "\"spread\"", NULL}},
    {T(", \"hard_affinity\": true"), {"tasks[0] (\"a\")", "\"hard_affinity\" needs", NULL}},
    {"{\"defaults\": {\"placement\": \"member\"}, \"tasks\": [{\"argv\": [\"x\"]}]}",
     {"defaults", "\"member\"", "per task", NULL}},
    /* paths */
    {T(", \"cwd\": \"work\""), {"tasks[0] (\"a\")", "\"cwd\"", "absolute", NULL}},
    {T(", \"result_file\": \"/etc/passwd\""),
     {"tasks[0] (\"a\")", "result_file", "relative", NULL}},
    {T(", \"result_file\": \"out/../../x\""), {"tasks[0] (\"a\")", "result_file", "..", NULL}},
    /* names */
    {"{\"tasks\": [{\"name\": \"12\", \"argv\": [\"x\"]}]}",
     {"tasks[0]", "\"12\"", "all digits", NULL}},
    {"{\"tasks\": [{\"name\": \"\", \"argv\": [\"x\"]}]}", {"tasks[0]", "empty", NULL}},
    {"{\"tasks\": [{\"name\": "
     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"argv\": [\"x\"]}]}",
     {"tasks[0]", "longer than 64", NULL}},
    {"{\"tasks\": [{\"name\": \"a\", \"argv\": [\"x\"]}, {\"argv\": [\"y\"]}, "
     "{\"name\": \"a\", \"argv\": [\"z\"]}]}",
     {"tasks[0] and tasks[2]", "both named \"a\"", NULL}},
    /* after */
    {"{\"tasks\": [{\"name\": \"a\", \"argv\": [\"x\"]}, {\"name\": \"b\", \"argv\": [\"y\"], "
     "\"after\": [\"a\", \"zz\"]}]}",
     {"tasks[1] (\"b\")", "\"zz\"", "no task of this file", NULL}},
    {T(", \"after\": [\"7\"]"), {"tasks[0] (\"a\")", "\"after\"[0]", "as a number (7)", NULL}},
    {T(", \"after\": [-1]"), {"tasks[0] (\"a\")", "\"after\"[0]", "-1", NULL}},
    {T(", \"after\": [1.5]"), {"tasks[0] (\"a\")", "\"after\"[0]", NULL}},
    {T(", \"after\": [4294967296]"), {"tasks[0] (\"a\")", "\"after\"[0]", NULL}},
    {T(", \"after\": [\"\"]"), {"tasks[0] (\"a\")", "empty name", NULL}},
    /* cycles */
    {T(", \"after\": [\"a\"]"), {"cycle", "\"a\" -> \"a\"", NULL}},
    {"{\"tasks\": [{\"name\": \"a\", \"argv\": [\"x\"], \"after\": [\"c\"]},"
     " {\"name\": \"b\", \"argv\": [\"x\"], \"after\": [\"a\"]},"
     " {\"name\": \"free\", \"argv\": [\"x\"]},"
     " {\"name\": \"c\", \"argv\": [\"x\"], \"after\": [\"b\", 3]}]}",
     {"cycle", "\"a\" -> \"c\" -> \"b\" -> \"a\"", NULL}},
};

static void test_bad_graphs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++)
        parse_bad(BAD[i].json, BAD[i].want);
}

/* Every graph of BAD is fixed by one change: check that the good twin of
 * a few is accepted, so the cases above fail for the reason they name. */
static void test_bad_graphs_twins(void **state)
{
    (void)state;
    static const char *const good[] = {
        T(", \"gpus\": 64"),
        T(", \"timeout_s\": 604800"),
        T(", \"retries\": 100"),
        T(", \"after\": [7]"),
        T(", \"member\": \"w1\", \"placement\": \"member\""),
        T(", \"cwd\": \"/work\""),
        T(", \"result_file\": \"out/..x/y\""),
        T(", \"env\": {\"A\": \"1\", \"B\": \"2\"}"),
        "{\"tasks\": [{\"name\": \"a1\", \"argv\": [\"x\"]}]}",
        "{\"tasks\": [{\"name\": \"a\", \"argv\": [\"x\"], \"after\": [\"c\"]},"
        " {\"name\": \"b\", \"argv\": [\"x\"], \"after\": [\"a\"]},"
        " {\"name\": \"c\", \"argv\": [\"x\"], \"after\": [3]}]}",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        taskgraph_destroy(parse_ok(good[i]));
}

/* --- size: files, many tasks, long chains ----------------------------------------- */

static char *graph_of(size_t n, bool chain, bool close_cycle)
{
    size_t cap = 64 + n * 64;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t len = (size_t)snprintf(s, cap, "{\"tasks\": [");
    for (size_t i = 0; i < n; i++) {
        if (chain && (i > 0 || close_cycle))
            len += (size_t)snprintf(s + len, cap - len,
                                    "%s{\"name\": \"t%zu\", \"argv\": [\"x\"], \"after\": "
                                    "[\"t%zu\"]}",
                                    i ? "," : "", i, i ? i - 1 : n - 1);
        else
            len += (size_t)snprintf(s + len, cap - len, "%s{\"name\": \"t%zu\", \"argv\": [\"x\"]}",
                                    i ? "," : "", i);
    }
    snprintf(s + len, cap - len, "]}");
    return s;
}

static void test_many_tasks(void **state)
{
    (void)state;
    /* A chain of 50,000: no recursion to overflow, and it is not a cycle. */
    char *s = graph_of(50000, true, false);
    taskgraph *g = parse_ok(s);
    assert_int_equal(taskgraph_request(g)->n_tasks, 50000);
    assert_string_equal(task(g, 49999)->after[0], "t49998");
    taskgraph_destroy(g);
    free(s);

    /* The same chain closed into one long cycle. */
    s = graph_of(50000, true, true);
    parse_bad(s, (const char *const[]){"cycle", "\"t0\" -> \"t49999\"", "...", NULL});
    free(s);

    /* More than a request may carry. */
    s = graph_of(TASKGRAPH_MAX_TASKS + 1, false, false);
    parse_bad(s, (const char *const[]){"100001 tasks", "at most 100000", NULL});
    free(s);
}

static void test_files(void **state)
{
    (void)state;
    mu_error err = {{0}};
    /* Too large, without reading it. */
    char *big = malloc(TASKGRAPH_MAX_FILE_BYTES + 1);
    assert_non_null(big);
    memset(big, ' ', TASKGRAPH_MAX_FILE_BYTES + 1);
    assert_null(taskgraph_parse(big, TASKGRAPH_MAX_FILE_BYTES + 1, "big.json", &err));
    assert_non_null(strstr(err.text, "big.json: larger than"));
    free(big);

    char path[] = "/tmp/test_taskgraph_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, GOOD, strlen(GOOD)), (ssize_t)strlen(GOOD));
    taskgraph *g = taskgraph_load(path, &err);
    if (!g)
        fail_msg("load: %s", err.text);
    check_good(taskgraph_request(g));
    taskgraph_destroy(g);

    /* A file over the cap (sparse: nothing to write) is refused by size. */
    assert_int_equal(ftruncate(fd, (off_t)TASKGRAPH_MAX_FILE_BYTES + 1), 0);
    assert_null(taskgraph_load(path, &err));
    assert_non_null(strstr(err.text, path));
    assert_non_null(strstr(err.text, "larger than"));
    close(fd);
    unlink(path);

    assert_null(taskgraph_load("/nonexistent/graph.json", &err));
    assert_non_null(strstr(err.text, "/nonexistent/graph.json"));
}

/* Allocation N fails, for every N until the parse succeeds: each failure is
 * clean (the sanitizer build checks for leaks) and says why. */
static void test_out_of_memory(void **state)
{
    (void)state;
    size_t n;
    for (n = 1; n < 100000; n++) {
        mu_error err = {{0}};
        test_fail_alloc_after(n);
        taskgraph *g = taskgraph_parse(GOOD, strlen(GOOD), "g.json", &err);
        test_fail_alloc_after(0);
        if (g) {
            check_good(taskgraph_request(g));
            taskgraph_destroy(g);
            break;
        }
        if (!err.text[0])
            fail_msg("allocation %zu failed without a reason", n);
    }
    assert_true(n > 10); /* the parse did allocate, and did fail before that */
}

/* --- task ids, --after, single checks --------------------------------------------- */

static void test_task_ids(void **state)
{
    (void)state;
    char c[TASKGRAPH_MAX_CLUSTER_LEN + 1];
    uint32_t n = 99;
    mu_error err = {{0}};
    assert_int_equal(taskgraph_parse_id("1a2b3c4d/7", c, sizeof(c), &n, &err), 0);
    assert_string_equal(c, "1a2b3c4d");
    assert_int_equal(n, 7);
    assert_int_equal(taskgraph_parse_id("1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d/4294967295", c,
                                        sizeof(c), &n, &err),
                     0);
    assert_string_equal(c, "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d");
    assert_int_equal(n, UINT32_MAX);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"1a2b3c4d", "give CLUSTER/NUMBER"},
        {"/7", "cluster before '/' is missing"},
        {"1a2b/", "task's number"},
        {"1a2b/x", "task's number"},
        {"1a2b/-1", "task's number"},
        {"1a2b/4294967296", "task's number"},
        {"1a2b/7/8", "task's number"},
        {"1a 2b/7", "blank"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/1", "too long"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.text[0] = '\0';
        if (taskgraph_parse_id(bad[i].text, c, sizeof(c), &n, &err) == 0)
            fail_msg("accepted task id \"%s\"", bad[i].text);
        if (!strstr(err.text, bad[i].want))
            fail_msg("\"%s\": error \"%s\" does not say \"%s\"", bad[i].text, err.text,
                     bad[i].want);
    }

    assert_int_equal(taskgraph_parse_after("12", "1a2b", &n, &err), 0);
    assert_int_equal(n, 12);
    /* Same cluster: either may be a prefix of the other. */
    assert_int_equal(taskgraph_parse_after("1a2b3c4d/3", "1a2b", &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(taskgraph_parse_after("1a2b/4", "1a2b3c4d", &n, &err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(taskgraph_parse_after("9f9f/4", "1a2b3c4d", &n, &err), -1);
    assert_non_null(strstr(err.text, "not in cluster 1a2b3c4d"));
    assert_int_equal(taskgraph_parse_after("prep", "1a2b", &n, &err), -1);
    assert_non_null(strstr(err.text, "\"prep\""));
    assert_int_equal(taskgraph_parse_after("-3", "1a2b", &n, &err), -1);
}

static void test_checks(void **state)
{
    (void)state;
    mu_error err = {{0}};
    assert_int_equal(taskgraph_check_name("prep-1", &err), 0);
    assert_int_equal(taskgraph_check_name("007", &err), -1);
    assert_non_null(strstr(err.text, "all digits"));
    assert_int_equal(taskgraph_check_name("a\tb", &err), -1);
    assert_non_null(strstr(err.text, "control character"));
    assert_int_equal(taskgraph_check_env("A=", &err), 0);
    assert_int_equal(taskgraph_check_env("A=b=c", &err), 0);
    assert_int_equal(taskgraph_check_env("A", &err), -1);
    assert_non_null(strstr(err.text, "NAME=value"));
    assert_int_equal(taskgraph_check_env("=b", &err), -1);
    assert_non_null(strstr(err.text, "empty NAME"));
    assert_int_equal(taskgraph_check_result_file("out/r.json", &err), 0);
    assert_int_equal(taskgraph_check_result_file("..", &err), -1);
    assert_int_equal(taskgraph_check_result_file("a//../b", &err), -1);
    assert_int_equal(taskgraph_check_result_file("/r.json", &err), -1);
    assert_int_equal(taskgraph_check_result_file("", &err), -1);
}

/* --- the client calls, against a fake broker -------------------------------------- */

/* One ROUTER socket on an ephemeral port, in a thread, answering each task
 * request the way musterd's protocol says, and recording what it got. */
typedef struct fake_broker {
    void *ctx, *sock;
    char endpoint[128];
    pthread_t thread;
    int answered;
    /* what the requests said */
    char submit_cluster[64];
    size_t submit_tasks;
    char submit_argv0[32];
    char list_state[16];
    uint32_t list_offset, list_limit;
    uint32_t get_number;
    uint64_t logs_offset;
    uint32_t logs_max;
} fake_broker;

#define FAKE_REQUESTS 7

/* The bodies of the replies, which must live until the reply is sent. */
typedef struct fake_bodies {
    Muster__SubmitTasksReply sub;
    Muster__TaskInfo info;
    Muster__TaskInfo *infos[1];
    Muster__TaskCounts counts;
    Muster__ListTasksReply list;
    Muster__TaskReply one;
    Muster__TaskLogsReply logs;
} fake_bodies;

#define FAKE_CLUSTER "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"

static void fake_answer(fake_broker *f, const Muster__Envelope *req, Muster__Envelope *rep,
                        fake_bodies *b)
{
    muster__submit_tasks_reply__init(&b->sub);
    muster__task_info__init(&b->info);
    muster__task_counts__init(&b->counts);
    muster__list_tasks_reply__init(&b->list);
    muster__task_reply__init(&b->one);
    muster__task_logs_reply__init(&b->logs);
    b->infos[0] = &b->info;
    b->info.cluster_id = (char *)FAKE_CLUSTER;
    b->info.number = 7;
    b->info.state = (char *)"failed";
    b->info.reason = (char *)"exit 1";
    switch (req->body_case) {
    case MUSTER__ENVELOPE__BODY_SUBMIT_TASKS: {
        const Muster__SubmitTasksRequest *q = req->submit_tasks;
        snprintf(f->submit_cluster, sizeof(f->submit_cluster), "%s", q->cluster_id);
        f->submit_tasks = q->n_tasks;
        if (q->n_tasks && q->tasks[0]->n_argv)
            snprintf(f->submit_argv0, sizeof(f->submit_argv0), "%s", q->tasks[0]->argv[0]);
        if (q->n_tasks && q->tasks[0]->gpus > 8) {
            rep->status = MUSTER__STATUS__STATUS_NOT_MET;
            rep->reason = (char *)"no member has 9 GPUs";
            return;
        }
        b->sub.cluster_id = (char *)FAKE_CLUSTER;
        b->sub.first = 5;
        b->sub.count = (uint32_t)q->n_tasks;
        rep->body_case = MUSTER__ENVELOPE__BODY_SUBMIT_TASKS_REPLY;
        rep->submit_tasks_reply = &b->sub;
        return;
    }
    case MUSTER__ENVELOPE__BODY_LIST_TASKS:
        snprintf(f->list_state, sizeof(f->list_state), "%s", req->list_tasks->state);
        f->list_offset = req->list_tasks->offset;
        f->list_limit = req->list_tasks->limit;
        b->counts.failed = 1;
        b->counts.running = 2;
        b->list.tasks = b->infos;
        b->list.n_tasks = 1;
        b->list.total = 1;
        b->list.counts = &b->counts;
        rep->body_case = MUSTER__ENVELOPE__BODY_LIST_TASKS_REPLY;
        rep->list_tasks_reply = &b->list;
        return;
    case MUSTER__ENVELOPE__BODY_GET_TASK:
        f->get_number = req->get_task->number;
        if (req->get_task->number != 7) {
            rep->status = MUSTER__STATUS__STATUS_NOT_FOUND;
            rep->reason = (char *)"no task 8 in cluster 1a2b3c4d";
            return;
        }
        b->one.task = &b->info;
        rep->body_case = MUSTER__ENVELOPE__BODY_TASK_REPLY;
        rep->task_reply = &b->one;
        return;
    case MUSTER__ENVELOPE__BODY_CANCEL_TASK:
        rep->status = MUSTER__STATUS__STATUS_CONFLICT;
        rep->reason = (char *)"task 7 is over (failed)";
        return;
    case MUSTER__ENVELOPE__BODY_TASK_LOGS:
        f->logs_offset = req->task_logs->offset;
        f->logs_max = req->task_logs->max_bytes;
        b->logs.data.data = (uint8_t *)"hello\n";
        b->logs.data.len = 6;
        b->logs.offset = 100;
        b->logs.next = 106;
        b->logs.final = true;
        b->logs.state = (char *)"failed";
        rep->body_case = MUSTER__ENVELOPE__BODY_TASK_LOGS_REPLY;
        rep->task_logs_reply = &b->logs;
        return;
    default:
        rep->status = MUSTER__STATUS__STATUS_UNKNOWN_MESSAGE;
        rep->reason = (char *)"not a task request";
        return;
    }
}

static void *fake_run(void *arg)
{
    fake_broker *f = arg;
    while (f->answered < FAKE_REQUESTS) {
        zmq_pollitem_t it = {f->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 20000) <= 0)
            return NULL; /* the test fails on what it did not get */
        zs_msg m;
        if (zs_recv(f->sock, true, false, &m) < 0)
            continue;
        Muster__Envelope *req = NULL;
        Muster__Status st;
        uint64_t rid;
        int rc = wire_decode(zmq_msg_data(&m.payload), zmq_msg_size(&m.payload), 1 << 20, &req, &st,
                             &rid, NULL);
        Muster__Envelope rep;
        fake_bodies bodies;
        wire_envelope_init(&rep, rc == 0 ? req->request_id : rid);
        if (rc == 0)
            fake_answer(f, req, &rep, &bodies);
        else
            rep.status = st;
        zs_send(f->sock, &m.peer, &rep, NULL);
        zs_msg_close(&m);
        wire_free(req);
        f->answered++;
    }
    return NULL;
}

static void test_client_calls(void **state)
{
    (void)state;
    fake_broker f;
    memset(&f, 0, sizeof(f));
    mu_error err = {{0}};
    f.ctx = zmq_ctx_new();
    assert_non_null(f.ctx);
    f.sock = zs_socket(f.ctx, ZMQ_ROUTER, 0, &err);
    assert_non_null(f.sock);
    assert_int_equal(zs_bind(f.sock, "tcp://127.0.0.1:*", &err), 0);
    assert_int_equal(zs_last_endpoint(f.sock, f.endpoint, sizeof(f.endpoint)), 0);
    assert_int_equal(pthread_create(&f.thread, NULL, fake_run, &f), 0);

    muster_client *mc = muster_client_create(f.endpoint, 10000, &err);
    assert_non_null(mc);
    Muster__Envelope *reply = NULL;
    Muster__Status st;

    /* 1: a graph from a file, to a cluster given by prefix. */
    taskgraph *g = parse_ok(GOOD);
    assert_int_equal(muster_submit_tasks(mc, taskgraph_request(g), &reply, &st, &err), 0);
    assert_int_equal(st, MUSTER__STATUS__STATUS_OK);
    assert_string_equal(reply->submit_tasks_reply->cluster_id, FAKE_CLUSTER);
    assert_int_equal(reply->submit_tasks_reply->first, 5);
    assert_int_equal(reply->submit_tasks_reply->count, 4);
    wire_free(reply);
    taskgraph_destroy(g);

    /* 2: one task the cluster cannot run: NOT_MET, with the reason. */
    Muster__TaskSpec big = MUSTER__TASK_SPEC__INIT;
    Muster__TaskSpec *bigp = &big;
    char *argv[] = {(char *)"nvidia-smi"};
    big.argv = argv;
    big.n_argv = 1;
    big.gpus = 9;
    Muster__SubmitTasksRequest q = MUSTER__SUBMIT_TASKS_REQUEST__INIT;
    q.cluster_id = (char *)"1a2b";
    q.tasks = &bigp;
    q.n_tasks = 1;
    reply = NULL;
    assert_int_equal(muster_submit_tasks(mc, &q, &reply, &st, &err), -1);
    assert_int_equal(errno, EREMOTEIO);
    assert_int_equal(st, MUSTER__STATUS__STATUS_NOT_MET);
    assert_string_equal(err.text, "no member has 9 GPUs");

    /* 3: list. */
    Muster__ListTasksRequest lq = MUSTER__LIST_TASKS_REQUEST__INIT;
    lq.cluster_id = (char *)"1a2b";
    lq.state = (char *)"failed";
    lq.offset = 3;
    lq.limit = 50;
    assert_int_equal(muster_list_tasks(mc, &lq, &reply, &st, &err), 0);
    assert_int_equal(reply->list_tasks_reply->n_tasks, 1);
    assert_int_equal(reply->list_tasks_reply->tasks[0]->number, 7);
    assert_int_equal(reply->list_tasks_reply->counts->running, 2);
    wire_free(reply);

    /* 4, 5: get, found and not. */
    assert_int_equal(muster_get_task(mc, "1a2b", 7, &reply, &st, &err), 0);
    assert_string_equal(reply->task_reply->task->reason, "exit 1");
    wire_free(reply);
    assert_int_equal(muster_get_task(mc, "1a2b", 8, &reply, &st, &err), -1);
    assert_int_equal(st, MUSTER__STATUS__STATUS_NOT_FOUND);
    assert_non_null(strstr(err.text, "no task 8"));

    /* 6: cancel a task that is over. */
    assert_int_equal(muster_cancel_task(mc, "1a2b", 7, &reply, &st, &err), -1);
    assert_int_equal(st, MUSTER__STATUS__STATUS_CONFLICT);
    assert_non_null(strstr(err.text, "is over"));

    /* 7: logs. */
    assert_int_equal(muster_task_logs(mc, "1a2b", 7, 42, 4096, &reply, &st, &err), 0);
    const Muster__TaskLogsReply *lr = reply->task_logs_reply;
    assert_int_equal(lr->offset, 100);
    assert_int_equal(lr->next, 106);
    assert_true(lr->final);
    assert_memory_equal(lr->data.data, "hello\n", 6);
    wire_free(reply);

    pthread_join(f.thread, NULL);
    assert_int_equal(f.answered, FAKE_REQUESTS);
    assert_string_equal(f.submit_cluster, "1a2b"); /* the last submission's */
    assert_int_equal(f.submit_tasks, 1);
    assert_string_equal(f.submit_argv0, "nvidia-smi");
    assert_string_equal(f.list_state, "failed");
    assert_int_equal(f.list_offset, 3);
    assert_int_equal(f.list_limit, 50);
    assert_int_equal(f.get_number, 8);
    assert_int_equal(f.logs_offset, 42);
    assert_int_equal(f.logs_max, 4096);

    muster_client_destroy(mc);
    zs_close(f.sock);
    zmq_ctx_term(f.ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_graph),    cmocka_unit_test(test_minimal_graph),
        cmocka_unit_test(test_bad_graphs),    cmocka_unit_test(test_bad_graphs_twins),
        cmocka_unit_test(test_many_tasks),    cmocka_unit_test(test_files),
        cmocka_unit_test(test_out_of_memory), cmocka_unit_test(test_task_ids),
        cmocka_unit_test(test_checks),        cmocka_unit_test(test_client_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
