/* test_runner.c - the agent's task runner (agent/runner.c): real child
 * processes (sh, sleep, head), driven the way the agent's loop drives it:
 * poll the runner's fds with its own timeout, then runner_process.
 *
 * Every wait is bounded (WAIT_MS) and uses the runner's timeout uncapped,
 * so a runner that forgets to wake its caller fails the test instead of
 * being rescued by a short poll. Timing: only lower bounds are asserted
 * where a deadline is involved, upper bounds only generously. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "runner.h"
#include "testutil.h"

/* How long a test waits for events before calling the runner hung. */
#define WAIT_MS 10000

/* What the events of one runner said. */
typedef struct collect {
    uint8_t *out; /* forwarded output, concatenated, of every attempt */
    size_t out_len;
    size_t out_cap;
    uint64_t next_offset; /* where the next output event must start (one attempt) */
    bool offsets_ok;
    uint64_t dropped;
    size_t n_output;
    size_t max_len;
    int refuse; /* refuse this many output offers (a link that is down) */
    int n_exits;
    /* the last exit */
    int exit_code;
    int signal;
    bool timed_out;
    bool has_error;
    char error[256];
    bool has_result;
    uint8_t result[256];
    size_t result_len;
    uint64_t output_bytes;
    char tail[256];
    uint64_t tail_offset;
} collect;

typedef struct fixture {
    char tmp[64];
    char work[128];
    runner *r;
    collect c;
} fixture;

static void collect_init(collect *c)
{
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->offsets_ok = true;
}

static bool on_event(void *arg, const runner_event *ev)
{
    collect *c = arg;
    if (ev->kind == RUNNER_OUTPUT && c->refuse > 0) {
        c->refuse--;
        return false;
    }
    if (ev->kind == RUNNER_OUTPUT) {
        if (ev->len == 0 || ev->offset != c->next_offset + ev->dropped)
            c->offsets_ok = false;
        c->next_offset = ev->offset + ev->len;
        c->dropped += ev->dropped;
        c->n_output++;
        if (ev->len > c->max_len)
            c->max_len = ev->len;
        if (c->out_len + ev->len > c->out_cap) {
            c->out_cap = (c->out_len + ev->len) * 2;
            c->out = realloc(c->out, c->out_cap + 1);
            assert_non_null(c->out);
        }
        memcpy(c->out + c->out_len, ev->data, ev->len);
        c->out_len += ev->len;
        c->out[c->out_len] = '\0';
        return true;
    }
    assert_int_equal(ev->kind, RUNNER_EXIT);
    c->n_exits++;
    c->exit_code = ev->exit_code;
    c->signal = ev->signal;
    c->timed_out = ev->timed_out;
    c->has_error = ev->error != NULL;
    snprintf(c->error, sizeof(c->error), "%s", ev->error ? ev->error : "");
    c->has_result = ev->result != NULL;
    c->result_len = ev->result_len;
    if (ev->result) {
        assert_true(ev->result_len < sizeof(c->result));
        memcpy(c->result, ev->result, ev->result_len);
    }
    c->output_bytes = ev->output_bytes;
    size_t n = ev->len < sizeof(c->tail) - 1 ? ev->len : sizeof(c->tail) - 1;
    memcpy(c->tail, ev->data + ev->len - n, n);
    c->tail[n] = '\0';
    c->tail_offset = ev->offset + ev->len - n;
    return true;
}

/* Drive the runner until `exits` exit events came, or fail after WAIT_MS. */
static void run_until_exits(runner *r, collect *c, int exits)
{
    uint64_t end = clock_mono_ms() + WAIT_MS;
    while (c->n_exits < exits) {
        uint64_t now = clock_mono_ms();
        assert_true(now < end);
        struct pollfd fds[64];
        size_t n = runner_pollfds(r, fds, 64);
        assert_true(n <= 64);
        int t = runner_timeout_ms(r, now);
        int left = (int)(end - now);
        poll(fds, n, t < 0 || t > left ? left : t);
        runner_process(r, clock_mono_ms(), on_event, c);
    }
    assert_int_equal(c->n_exits, exits);
}

/* Drive the runner until the forwarded output holds `want`. */
static void run_until_output(runner *r, collect *c, const char *want)
{
    uint64_t end = clock_mono_ms() + WAIT_MS;
    while (!c->out || !strstr((char *)c->out, want)) {
        uint64_t now = clock_mono_ms();
        assert_true(now < end);
        struct pollfd fds[64];
        size_t n = runner_pollfds(r, fds, 64);
        int t = runner_timeout_ms(r, now);
        poll(fds, n, t < 0 || t > 50 ? 50 : t);
        runner_process(r, clock_mono_ms(), on_event, c);
    }
}

static runner *make_runner(fixture *f, size_t forward_max, uint32_t grace_ms, bool no_pidfd)
{
    runner_config cfg = {.work_dir = f->work,
                         .forward_max_bytes = forward_max,
                         .kill_grace_ms = grace_ms,
                         .no_pidfd = no_pidfd};
    mu_error err;
    runner *r = runner_create(&cfg, &err);
    if (!r)
        fail_msg("runner_create: %s", err.text);
    return r;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->tmp, sizeof(f->tmp), "/tmp/test_runner.XXXXXX");
    assert_non_null(mkdtemp(f->tmp));
    snprintf(f->work, sizeof(f->work), "%s/work", f->tmp);
    f->r = make_runner(f, 0, 0, false);
    collect_init(&f->c);
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fixture *f = *state;
    runner_destroy(f->r);
    nftw(f->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f->c.out);
    free(f);
    return 0;
}

/* Start a task from an argv of C strings (NULL-terminated). */
static int start(runner *r, const char *cluster, uint32_t number, uint32_t attempt,
                 const runner_task *extra, const char *const *argv)
{
    runner_task t = extra ? *extra : (runner_task){0};
    size_t argc = 0;
    while (argv[argc])
        argc++;
    t.cluster_id = cluster;
    t.number = number;
    t.attempt = attempt;
    t.argv = argv;
    t.argc = argc;
    mu_error err;
    int rc = runner_start(r, &t, clock_mono_ms(), &err);
    if (rc < 0 && errno != EEXIST && errno != EINVAL && errno != ENOMEM)
        fail_msg("runner_start: %s", err.text);
    return rc;
}

/* Run `sh -c SCRIPT` to its exit. */
static void run_sh(fixture *f, const runner_task *extra, const char *script)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    collect_init(&f->c);
    assert_int_equal(start(f->r, "c1", 4, 2, extra, argv), 0);
    run_until_exits(f->r, &f->c, 1);
    assert_int_equal(runner_count(f->r), 0);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

/* Gone, or a zombie nobody reaps (PID 1 in a container may not). */
static bool process_gone(pid_t pid)
{
    uint64_t end = clock_mono_ms() + 3000;
    for (;;) {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return true;
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        FILE *fp = fopen(path, "r");
        if (fp) {
            size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
            fclose(fp);
            buf[n] = '\0';
            char *rp = strrchr(buf, ')');
            if (rp && rp[1] == ' ' && rp[2] == 'Z')
                return true;
        }
        if (clock_mono_ms() > end)
            return false;
        usleep(10000);
    }
}

/* --- tests ------------------------------------------------------------------------ */

static void test_output_and_exit0(void **state)
{
    fixture *f = *state;
    run_sh(f, NULL, "echo hello; echo oops >&2; echo bye");
    assert_int_equal(f->c.exit_code, 0);
    assert_int_equal(f->c.signal, 0);
    assert_false(f->c.timed_out);
    assert_false(f->c.has_error);
    assert_false(f->c.has_result);
    assert_string_equal((char *)f->c.out, "hello\noops\nbye\n");
    assert_true(f->c.offsets_ok);
    assert_int_equal(f->c.dropped, 0);
    assert_int_equal(f->c.output_bytes, 15);
    assert_string_equal(f->c.tail, "hello\noops\nbye\n");
    assert_int_equal(f->c.tail_offset, 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/c1/4.2/output.log", f->work);
    size_t len;
    char *log = read_all(path, &len);
    assert_string_equal(log, "hello\noops\nbye\n");
    free(log);
}

static void test_exit_code(void **state)
{
    fixture *f = *state;
    run_sh(f, NULL, "echo failing; exit 3");
    assert_int_equal(f->c.exit_code, 3);
    assert_int_equal(f->c.signal, 0);
    assert_false(f->c.has_error);
    assert_string_equal((char *)f->c.out, "failing\n");
}

static void test_gpus(void **state)
{
    fixture *f = *state;
    const uint32_t gpus[] = {1, 3};
    runner_task t = {.gpus = gpus, .n_gpus = 2};
    run_sh(f, &t, "printf '[%s]' \"${CUDA_VISIBLE_DEVICES-unset}\"");
    assert_string_equal((char *)f->c.out, "[1,3]");
    /* No GPUs: set, and empty, so CUDA sees none. */
    run_sh(f, NULL, "printf '[%s]' \"${CUDA_VISIBLE_DEVICES-unset}\"");
    assert_string_equal((char *)f->c.out, "[]");
}

static void test_env(void **state)
{
    fixture *f = *state;
    const uint32_t gpus[] = {2};
    const char *env[] = {"FOO=bar baz",    "CUDA_VISIBLE_DEVICES=0,1,2,3", "MUSTER_TASK=99",
                         "MUSTER_OTHER=x", "PATH=/usr/bin:/bin",           "EMPTY=",
                         "FOO=again"};
    runner_task t = {.gpus = gpus, .n_gpus = 1, .env = env, .n_env = 7};
    run_sh(f, &t,
           "printf '%s|%s|%s|%s|%s|%s|%s|%s|%s\\n' \"$MUSTER_CLUSTER_ID\" \"$MUSTER_TASK\" "
           "\"$MUSTER_ATTEMPT\" \"$CUDA_VISIBLE_DEVICES\" \"$FOO\" \"${MUSTER_OTHER-unset}\" "
           "\"$PATH\" \"${EMPTY-unset}\" \"$MUSTER_TASK_DIR\"; pwd");
    char real[PATH_MAX];
    assert_non_null(realpath(f->work, real));
    char want[PATH_MAX * 3];
    snprintf(want, sizeof(want), "c1|4|2|2|again|unset|/usr/bin:/bin||%s/c1/4.2\n%s/c1/4.2\n", real,
             real);
    assert_string_equal((char *)f->c.out, want);
    assert_int_equal(f->c.exit_code, 0);

    /* The base environment: PATH (the agent's), and nothing else leaks. */
    setenv("MUSTER_TEST_SECRET", "leak", 1);
    runner_destroy(f->r);
    f->r = make_runner(f, 0, 0, false);
    unsetenv("MUSTER_TEST_SECRET");
    run_sh(f, NULL, "printf '%s|%s' \"${MUSTER_TEST_SECRET-unset}\" \"$PATH\"");
    char want2[4096];
    const char *path = getenv("PATH");
    snprintf(want2, sizeof(want2), "unset|%s",
             path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    assert_string_equal((char *)f->c.out, want2);
}

static void test_env_rejected(void **state)
{
    fixture *f = *state;
    const char *env[] = {"GOOD=1", "NOEQUALS"};
    runner_task t = {.env = env, .n_env = 2};
    run_sh(f, &t, "echo should not run");
    assert_int_equal(f->c.exit_code, -1);
    assert_true(f->c.has_error);
    assert_string_equal(f->c.error, "env entry 'NOEQUALS' is not NAME=value");
    assert_int_equal(f->c.output_bytes, 0);
    assert_int_equal(f->c.out_len, 0);
    const char *env2[] = {"=value"};
    t.env = env2;
    t.n_env = 1;
    run_sh(f, &t, "echo should not run");
    assert_string_equal(f->c.error, "env entry '=value' is not NAME=value");
}

static void test_exec_failure(void **state)
{
    fixture *f = *state;
    const char *argv[] = {"/nonexistent/prog", "x", NULL};
    collect_init(&f->c);
    assert_int_equal(start(f->r, "c1", 1, 1, NULL, argv), 0);
    run_until_exits(f->r, &f->c, 1);
    assert_int_equal(f->c.exit_code, 127);
    assert_int_equal(f->c.signal, 0);
    assert_string_equal(f->c.error, "cannot run '/nonexistent/prog': No such file or directory");

    const char *argv2[] = {"no-such-program-muster", NULL};
    collect_init(&f->c);
    assert_int_equal(start(f->r, "c1", 1, 2, NULL, argv2), 0);
    run_until_exits(f->r, &f->c, 1);
    assert_int_equal(f->c.exit_code, 127);
    assert_string_equal(f->c.error,
                        "cannot run 'no-such-program-muster': No such file or directory");

    /* A file that is not executable. */
    char path[128];
    snprintf(path, sizeof(path), "%s/notexec", f->tmp);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("#!/bin/sh\necho hi\n", fp);
    fclose(fp);
    chmod(path, 0644);
    const char *argv3[] = {path, NULL};
    collect_init(&f->c);
    assert_int_equal(start(f->r, "c1", 1, 3, NULL, argv3), 0);
    run_until_exits(f->r, &f->c, 1);
    assert_int_equal(f->c.exit_code, 127);
    assert_non_null(strstr(f->c.error, "Permission denied"));
    /* Made executable, it runs. */
    chmod(path, 0755);
    collect_init(&f->c);
    assert_int_equal(start(f->r, "c1", 1, 4, NULL, argv3), 0);
    run_until_exits(f->r, &f->c, 1);
    assert_int_equal(f->c.exit_code, 0);
    assert_string_equal((char *)f->c.out, "hi\n");

    /* A bare name is searched in the task's PATH, not the agent's. */
    char bin[128], env_path[256];
    snprintf(bin, sizeof(bin), "%s/bin", f->tmp);
    assert_int_equal(mkdir(bin, 0700), 0);
    char tool[256];
    snprintf(tool, sizeof(tool), "%s/bin/mytool", f->tmp);
    assert_int_equal(rename(path, tool), 0);
    snprintf(env_path, sizeof(env_path), "PATH=/nonexistent::%s:/usr/bin:/bin", bin);
    const char *env[] = {env_path};
    runner_task t = {.env = env, .n_env = 1};
    const char *argv4[] = {"mytool", NULL};
    collect_init(&f->c);
    assert_int_equal(start(f->r, "c1", 1, 5, &t, argv4), 0);
    run_until_exits(f->r, &f->c, 1);
    assert_int_equal(f->c.exit_code, 0);
    assert_string_equal((char *)f->c.out, "hi\n");
}

static void test_cwd(void **state)
{
    fixture *f = *state;
    runner_task t = {.cwd = "/nonexistent-muster-dir"};
    run_sh(f, &t, "echo ran");
    assert_int_equal(f->c.exit_code, -1);
    assert_string_equal(f->c.error,
                        "working directory '/nonexistent-muster-dir': No such file or directory");
    assert_int_equal(f->c.output_bytes, 0);

    char file[128];
    snprintf(file, sizeof(file), "%s/afile", f->tmp);
    close(open(file, O_CREAT | O_WRONLY, 0600));
    t.cwd = file;
    run_sh(f, &t, "echo ran");
    assert_int_equal(f->c.exit_code, -1);
    assert_non_null(strstr(f->c.error, "is not a directory"));

    /* An absolute cwd that exists. */
    char real[PATH_MAX], want[PATH_MAX + 2];
    assert_non_null(realpath(f->tmp, real));
    t.cwd = real;
    run_sh(f, &t, "pwd");
    snprintf(want, sizeof(want), "%s\n", real);
    assert_string_equal((char *)f->c.out, want);

    /* A relative one is under the work directory. */
    char sub[256];
    snprintf(sub, sizeof(sub), "%s/shared", f->work);
    assert_int_equal(mkdir(sub, 0700), 0);
    t.cwd = "shared";
    run_sh(f, &t, "pwd");
    assert_non_null(realpath(sub, real));
    snprintf(want, sizeof(want), "%s\n", real);
    assert_string_equal((char *)f->c.out, want);
}

static void test_timeout(void **state)
{
    fixture *f = *state;
    runner_task t = {.timeout_ms = 200};
    uint64_t t0 = clock_mono_ms();
    run_sh(f, &t, "echo started; exec sleep 30");
    uint64_t took = clock_mono_ms() - t0;
    assert_true(f->c.timed_out);
    assert_int_equal(f->c.exit_code, -1);
    assert_int_equal(f->c.signal, SIGTERM);
    assert_false(f->c.has_error);
    assert_string_equal((char *)f->c.out, "started\n");
    assert_true(took >= 200);
    assert_true(took < 4000); /* well before the 5 s grace */
}

static void test_timeout_grace(void **state)
{
    fixture *f = *state;
    runner_destroy(f->r);
    f->r = make_runner(f, 0, 300, false);
    runner_task t = {.timeout_ms = 200};
    uint64_t t0 = clock_mono_ms();
    /* sh ignores SIGTERM and so does its sleep (ignored dispositions are
     * inherited): only the SIGKILL after the grace ends them. */
    run_sh(f, &t, "trap '' TERM; echo trapped; sleep 30; echo survived");
    uint64_t took = clock_mono_ms() - t0;
    assert_true(f->c.timed_out);
    assert_int_equal(f->c.signal, SIGKILL);
    assert_int_equal(f->c.exit_code, -1);
    assert_string_equal((char *)f->c.out, "trapped\n");
    assert_true(took >= 500);
    assert_true(took < 5000);
}

static void test_kill(void **state)
{
    fixture *f = *state;
    const char *argv[] = {"sh", "-c", "echo up; exec sleep 30", NULL};
    collect_init(&f->c);
    assert_int_equal(start(f->r, "c1", 7, 1, NULL, argv), 0);
    run_until_output(f->r, &f->c, "up\n");
    assert_int_equal(runner_kill(f->r, "c1", 7, 2, clock_mono_ms()), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(runner_kill(f->r, "c2", 7, 1, clock_mono_ms()), -1);
    assert_int_equal(runner_kill(f->r, "c1", 7, 1, clock_mono_ms()), 0);
    assert_int_equal(runner_kill(f->r, "c1", 7, 1, clock_mono_ms()), 0); /* again: harmless */
    run_until_exits(f->r, &f->c, 1);
    assert_int_equal(f->c.exit_code, -1);
    assert_int_equal(f->c.signal, SIGTERM);
    assert_false(f->c.timed_out);
    assert_string_equal(f->c.error, "cancelled");
    assert_int_equal(runner_kill(f->r, "c1", 7, 1, clock_mono_ms()), -1);
}

static void count_each(void *arg, const char *cluster_id, uint32_t number, uint32_t attempt)
{
    int *n = arg;
    assert_true(!strcmp(cluster_id, "ca") || !strcmp(cluster_id, "cb"));
    assert_true(number <= 2 && attempt == 1);
    (*n)++;
}

static void test_kill_cluster(void **state)
{
    fixture *f = *state;
    const char *argv[] = {"sleep", "30", NULL};
    collect_init(&f->c);
    assert_int_equal(start(f->r, "ca", 1, 1, NULL, argv), 0);
    assert_int_equal(start(f->r, "ca", 2, 1, NULL, argv), 0);
    assert_int_equal(start(f->r, "cb", 1, 1, NULL, argv), 0);
    assert_int_equal(runner_count(f->r), 3);
    int n = 0;
    runner_each(f->r, count_each, &n);
    assert_int_equal(n, 3);
    assert_int_equal(runner_kill_cluster(f->r, "ca", clock_mono_ms()), 2);
    assert_int_equal(runner_kill_cluster(f->r, "nope", clock_mono_ms()), 0);
    run_until_exits(f->r, &f->c, 2);
    assert_int_equal(runner_count(f->r), 1);
    assert_int_equal(runner_kill(f->r, "cb", 1, 1, clock_mono_ms()), 0);
    run_until_exits(f->r, &f->c, 3);
    assert_int_equal(runner_count(f->r), 0);
    assert_int_equal(runner_timeout_ms(f->r, clock_mono_ms()), -1);
    assert_int_equal(runner_pollfds(f->r, NULL, 0), 0);
}

static void test_grandchild_killed(void **state)
{
    fixture *f = *state;
    uint64_t t0 = clock_mono_ms();
    /* The background sleep holds the pipe open: the exit must not wait for
     * it, and it must not outlive the task. */
    run_sh(f, NULL, "sleep 30 & echo $!");
    assert_true(clock_mono_ms() - t0 < 5000);
    assert_int_equal(f->c.exit_code, 0);
    long pid = strtol((char *)f->c.out, NULL, 10);
    assert_true(pid > 1);
    assert_true(process_gone((pid_t)pid));
}

static void test_flood(void **state)
{
    fixture *f = *state;
    runner_destroy(f->r);
    f->r = make_runner(f, 4096, 0, false);
    run_sh(f, NULL, "head -c 5000000 /dev/zero");
    assert_int_equal(f->c.exit_code, 0);
    assert_int_equal(f->c.output_bytes, 5000000);
    assert_true(f->c.dropped > 0);
    assert_true(f->c.offsets_ok);
    assert_int_equal(f->c.out_len + f->c.dropped, 5000000);
    assert_true(f->c.max_len <= 4096);
    assert_int_equal(f->c.next_offset, 5000000); /* the last bytes always arrive */
    char path[256];
    snprintf(path, sizeof(path), "%s/c1/4.2/output.log", f->work);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 5000000);
}

/* A consumer that keeps up loses nothing, however fast the output comes. */
static void test_flood_kept_up(void **state)
{
    fixture *f = *state;
    run_sh(f, NULL, "head -c 3000000 /dev/zero");
    assert_int_equal(f->c.exit_code, 0);
    assert_int_equal(f->c.output_bytes, 3000000);
    assert_int_equal(f->c.dropped, 0);
    assert_int_equal(f->c.out_len, 3000000);
    assert_true(f->c.offsets_ok);
    assert_true(f->c.max_len <= 64 * 1024);
}

/* A consumer that refuses (its link is down) gets, once it takes output
 * again, the newest forward_max_bytes and the count of the rest. */
static void test_backpressure(void **state)
{
    fixture *f = *state;
    collect_init(&f->c);
    f->c.refuse = 3;
    const char *argv[] = {"sh", "-c", "head -c 2000000 /dev/zero; sleep 0.5; echo end", NULL};
    assert_int_equal(start(f->r, "c1", 4, 2, NULL, argv), 0);
    uint64_t t0 = clock_mono_ms();
    run_until_exits(f->r, &f->c, 1);
    assert_true(clock_mono_ms() - t0 >= 500);
    assert_int_equal(f->c.refuse, 0);
    assert_int_equal(f->c.exit_code, 0);
    assert_int_equal(f->c.output_bytes, 2000004);
    assert_true(f->c.offsets_ok);
    assert_int_equal(f->c.dropped, 2000000 - 256 * 1024);
    assert_int_equal(f->c.out_len + f->c.dropped, 2000004);
    assert_memory_equal(f->c.out + f->c.out_len - 4, "end\n", 4);
}

static void test_burst_not_dropped(void **state)
{
    fixture *f = *state;
    /* ~110 KB at once, within the default forwarding window: all of it
     * forwarded, in order, in several events. */
    run_sh(f, NULL, "i=0; while [ $i -lt 20000 ]; do echo $i; i=$((i+1)); done");
    assert_int_equal(f->c.exit_code, 0);
    assert_int_equal(f->c.dropped, 0);
    assert_true(f->c.offsets_ok);
    char path[256];
    snprintf(path, sizeof(path), "%s/c1/4.2/output.log", f->work);
    size_t len;
    char *log = read_all(path, &len);
    assert_int_equal(len, f->c.output_bytes);
    assert_int_equal(len, f->c.out_len);
    assert_memory_equal(log, f->c.out, len);
    assert_string_equal(f->c.tail + strlen(f->c.tail) - 6, "19999\n");
    free(log);
}

static void test_result(void **state)
{
    fixture *f = *state;
    runner_task t = {.result_file = "out/res.txt"};
    run_sh(f, &t, "mkdir out && printf 42 > out/res.txt");
    assert_int_equal(f->c.exit_code, 0);
    assert_false(f->c.has_error);
    assert_true(f->c.has_result);
    assert_int_equal(f->c.result_len, 2);
    assert_memory_equal(f->c.result, "42", 2);

    /* An empty result is a result. */
    t.result_file = "res.txt";
    run_sh(f, &t, ": > res.txt");
    assert_true(f->c.has_result);
    assert_int_equal(f->c.result_len, 0);

    t.result_max_bytes = 4;
    run_sh(f, &t, "printf 0123456789 > res.txt");
    assert_int_equal(f->c.exit_code, 0);
    assert_false(f->c.has_result);
    assert_string_equal(f->c.error, "result file 'res.txt' is 10 bytes, over the limit of 4");

    t.result_max_bytes = 0;
    run_sh(f, &t, "true");
    assert_int_equal(f->c.exit_code, 0);
    assert_false(f->c.has_result);
    assert_string_equal(f->c.error, "result file 'res.txt' was not written");

    /* A failed task's result is not read, and not missed. */
    run_sh(f, &t, "printf 42 > res.txt; exit 1");
    assert_int_equal(f->c.exit_code, 1);
    assert_false(f->c.has_result);
    assert_false(f->c.has_error);

    const char *bad[] = {"../x", "/etc/passwd", "a/../../x", "a/.."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t.result_file = bad[i];
        run_sh(f, &t, "echo should not run");
        assert_int_equal(f->c.exit_code, -1);
        assert_non_null(strstr(f->c.error, "must be a relative path"));
        assert_int_equal(f->c.output_bytes, 0);
    }
    /* Names that merely contain dots are fine. */
    t.result_file = "..x/y..";
    run_sh(f, &t, "mkdir ..x && printf ok > ..x/y..");
    assert_true(f->c.has_result);
    assert_memory_equal(f->c.result, "ok", 2);
}

static void test_start_errors(void **state)
{
    fixture *f = *state;
    mu_error err;
    runner_task t = {.cluster_id = "c1"};
    assert_int_equal(runner_start(f->r, &t, clock_mono_ms(), &err), -1);
    assert_int_equal(errno, EINVAL);
    const char *empty[] = {"", NULL};
    assert_int_equal(start(f->r, "c1", 1, 1, NULL, empty), -1);
    assert_int_equal(errno, EINVAL);
    const char *argv[] = {"sleep", "30", NULL};
    const char *bad_ids[] = {"../x", "a/b", "", ".hidden", "a b"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        assert_int_equal(start(f->r, bad_ids[i], 1, 1, NULL, argv), -1);
        assert_int_equal(errno, EINVAL);
    }
    assert_int_equal(runner_count(f->r), 0);

    assert_int_equal(start(f->r, "c1", 1, 1, NULL, argv), 0);
    assert_int_equal(start(f->r, "c1", 1, 1, NULL, argv), -1);
    assert_int_equal(errno, EEXIST);
    /* Another attempt of the same task is another attempt. */
    assert_int_equal(start(f->r, "c1", 1, 2, NULL, argv), 0);
    assert_int_equal(runner_count(f->r), 2);
    collect_init(&f->c);
    runner_kill_cluster(f->r, "c1", clock_mono_ms());
    run_until_exits(f->r, &f->c, 2);

    runner_config cfg = {.work_dir = NULL};
    assert_null(runner_create(&cfg, &err));
    cfg.work_dir = f->work;
    cfg.result_max_bytes = RUNNER_RESULT_CEILING + 1;
    assert_null(runner_create(&cfg, &err));
    assert_non_null(strstr(err.text, "ceiling"));
    cfg.result_max_bytes = 0;
    cfg.work_dir = "/proc/muster-cannot-be-here";
    assert_null(runner_create(&cfg, &err));
}

static void test_destroy_kills(void **state)
{
    fixture *f = *state;
    const char *argv[] = {"sh", "-c", "sleep 30 & echo $$ $!; wait", NULL};
    collect_init(&f->c);
    assert_int_equal(start(f->r, "c1", 1, 1, NULL, argv), 0);
    run_until_output(f->r, &f->c, "\n");
    long leader = 0, child = 0;
    assert_int_equal(sscanf((char *)f->c.out, "%ld %ld", &leader, &child), 2);
    assert_int_equal(kill((pid_t)leader, 0), 0);
    runner_destroy(f->r);
    f->r = NULL;
    /* The leader was reaped by runner_destroy: gone for good. */
    assert_int_equal(kill((pid_t)leader, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_true(process_gone((pid_t)child));
    assert_int_equal(f->c.n_exits, 0); /* no events from destroy */
}

static void test_no_pidfd(void **state)
{
    fixture *f = *state;
    runner_destroy(f->r);
    f->r = make_runner(f, 0, 0, true);
    const char *argv[] = {"sh", "-c", "sleep 0.3; exit 5", NULL};
    collect_init(&f->c);
    assert_int_equal(start(f->r, "c1", 1, 1, NULL, argv), 0);
    /* Only the pipe to poll, so a timer. */
    assert_int_equal(runner_pollfds(f->r, NULL, 0), 1);
    int t = runner_timeout_ms(f->r, clock_mono_ms());
    assert_true(t >= 0 && t <= 100);
    run_until_exits(f->r, &f->c, 1);
    assert_int_equal(f->c.exit_code, 5);
}

static void test_pidfd_wakes(void **state)
{
    fixture *f = *state;
    const char *argv[] = {"sleep", "0.3", NULL};
    collect_init(&f->c);
    assert_int_equal(start(f->r, "c1", 1, 1, NULL, argv), 0);
    struct pollfd fds[4];
    size_t n = runner_pollfds(f->r, fds, 4);
    if (n == 1) {
        printf("skipped: no pidfd_open on this kernel\n");
        run_until_exits(f->r, &f->c, 1);
        return;
    }
    /* The pipe and the pidfd; no timer needed. */
    assert_int_equal(n, 2);
    assert_int_equal(runner_pollfds(f->r, fds, 1), 2); /* says how many it wants */
    assert_int_equal(runner_timeout_ms(f->r, clock_mono_ms()), -1);
    uint64_t t0 = clock_mono_ms();
    run_until_exits(f->r, &f->c, 1);
    assert_true(clock_mono_ms() - t0 < 3000);
    assert_int_equal(f->c.exit_code, 0);
}

static void test_isolation(void **state)
{
    fixture *f = *state;
    /* An fd of ours without close-on-exec must not reach the task. */
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, 100), 100);
    close(fd);
    /* The agent ignores SIGPIPE; the task must not: `yes` dies quietly of
     * it rather than printing "Broken pipe". */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    run_sh(f, NULL,
           "[ -e /proc/$$/fd/100 ] && echo leaked || echo clean; readlink /proc/$$/fd/0; "
           "yes | head -c 1 >/dev/null");
    signal(SIGPIPE, old);
    close(100);
    assert_string_equal((char *)f->c.out, "clean\n/dev/null\n");
    /* Its own process group. */
    run_sh(f, NULL, "ps -o pgid= -p $$ | tr -d ' '; echo $$");
    long pgid = 0, pid = 0;
    if (sscanf((char *)f->c.out, "%ld %ld", &pgid, &pid) == 2)
        assert_int_equal(pgid, pid);
    else
        assert_int_equal(sscanf((char *)f->c.out + strcspn((char *)f->c.out, "\n"), "%ld", &pid),
                         1); /* no ps: at least sh ran */
}

static void test_alloc_failures(void **state)
{
    fixture *f = *state;
    runner_destroy(f->r);
    f->r = NULL;
    const char *argv[] = {"sh", "-c", "echo ok", NULL};
    bool ran = false;
    for (size_t n = 1; n < 200 && !ran; n++) {
        collect_init(&f->c);
        test_fail_alloc_after(n);
        mu_error err;
        runner_config cfg = {.work_dir = f->work};
        runner *r = runner_create(&cfg, &err);
        int rc = r ? start(r, "c1", 1, 1, NULL, argv) : -1;
        test_fail_alloc_after(0);
        if (!r)
            continue;
        if (rc < 0) {
            assert_int_equal(errno, ENOMEM);
            assert_int_equal(runner_count(r), 0);
        } else {
            run_until_exits(r, &f->c, 1);
            if (f->c.has_error) {
                assert_string_equal(f->c.error, "out of memory");
            } else {
                assert_int_equal(f->c.exit_code, 0);
                assert_string_equal((char *)f->c.out, "ok\n");
                ran = true;
            }
        }
        runner_destroy(r);
    }
    assert_true(ran);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_output_and_exit0),
        T(test_exit_code),
        T(test_gpus),
        T(test_env),
        T(test_env_rejected),
        T(test_exec_failure),
        T(test_cwd),
        T(test_timeout),
        T(test_timeout_grace),
        T(test_kill),
        T(test_kill_cluster),
        T(test_grandchild_killed),
        T(test_flood),
        T(test_flood_kept_up),
        T(test_backpressure),
        T(test_burst_not_dropped),
        T(test_result),
        T(test_start_errors),
        T(test_destroy_kills),
        T(test_no_pidfd),
        T(test_pidfd_wakes),
        T(test_isolation),
        T(test_alloc_failures),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
