/* test_tasks.c - the tasks of one cluster (tasks.h): a random graph driven
 * to completion through a member loss with the invariants checked after
 * every step, then each rule on its own: GPU indices, retries, timeouts,
 * cancel, dependency failure, bad input, exactly-once reports, placement,
 * FIFO order, and a run of 100,000 tasks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "alloc.h"
#include "tasks.h"
#include "testutil.h"

/* xorshift64*: seeded, so every run checks the same sequence. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(rng_next(s) % n);
}

static void check(const taskset *ts)
{
    mu_error e = {{0}};
    if (taskset_check(ts, &e) < 0)
        fail_msg("invariant broken: %s", e.text);
}

static taskset *make(const task_member *m, size_t n)
{
    mu_error e = {{0}};
    taskset *ts = taskset_create(m, n, &e);
    if (!ts)
        fail_msg("taskset_create: %s", e.text);
    return ts;
}

static uint32_t submit1(taskset *ts, const task_spec *s)
{
    mu_error e = {{0}};
    uint32_t id = 0;
    if (taskset_submit(ts, s, 1, 0, &id, &e) < 0)
        fail_msg("submit: %s", e.text);
    return id;
}

static void finish(taskset *ts, const task_start *st, int code)
{
    mu_error e = {{0}};
    if (taskset_finished(ts, st->task, st->member, st->attempt, code, 0, &e) < 0)
        fail_msg("finished: %s", e.text);
}

static task_state state_of(const taskset *ts, uint32_t id)
{
    return taskset_get(ts, id)->state;
}

/* --- the random graph ------------------------------------------------------- */

#define G_TASKS  200
#define G_MAXDEP 3

typedef struct gtask {
    uint32_t deps[G_MAXDEP];
    uint32_t n_deps;
    uint32_t lost_on[8];
    uint32_t n_lost;
    uint32_t successes;
    uint32_t start_seq; /* order of its successful attempt's start */
} gtask;

static void test_random_graph(void **state)
{
    (void)state;
    task_member members[] = {
        {.id = 10, .gpus = 4, .cpus = 16, .memory_mib = 65536},
        {.id = 11, .gpus = 8, .cpus = 32, .memory_mib = 131072},
        {.id = 12, .gpus = 2, .cpus = 8, .memory_mib = 32768},
        {.id = 13, .gpus = 4, .cpus = 16, .memory_mib = 65536},
    };
    taskset *ts = make(members, 4);
    static gtask g[G_TASKS];
    memset(g, 0, sizeof(g));
    uint64_t seed = 7;

    /* Build a DAG in topological order (deps on lower ranks), then give the
     * ids by a random permutation, so a dependency often names a later id
     * of the same batch. Two batches of 100; the second also depends on the
     * first. */
    uint32_t perm[G_TASKS]; /* rank -> id */
    for (uint32_t b = 0; b < 2; b++) {
        uint32_t lo = b * 100;
        for (uint32_t i = 0; i < 100; i++)
            perm[lo + i] = lo + i;
        for (uint32_t i = 99; i > 0; i--) {
            uint32_t j = rng_below(&seed, i + 1), tmp = perm[lo + i];
            perm[lo + i] = perm[lo + j];
            perm[lo + j] = tmp;
        }
    }
    task_spec specs[G_TASKS];
    memset(specs, 0, sizeof(specs));
    for (uint32_t r = 0; r < G_TASKS; r++) {
        uint32_t id = perm[r];
        gtask *t = &g[id];
        uint32_t want = r ? rng_below(&seed, G_MAXDEP + 1) : 0;
        for (uint32_t k = 0; k < want; k++) {
            uint32_t dep = perm[rng_below(&seed, r)];
            bool dup = false;
            for (uint32_t q = 0; q < t->n_deps; q++)
                dup |= t->deps[q] == dep;
            if (!dup)
                t->deps[t->n_deps++] = dep;
        }
        task_spec *s = &specs[id];
        s->gpus = (uint16_t)rng_below(&seed, 3);
        s->cpus = (uint16_t)(1 + rng_below(&seed, 4));
        s->memory_mib = rng_below(&seed, 8192);
        s->after = t->deps;
        s->n_after = t->n_deps;
        s->placement = (task_placement)rng_below(&seed, 3); /* default, spread, pack */
    }
    mu_error e = {{0}};
    uint32_t first = 99;
    if (taskset_submit(ts, specs, 100, 0, &first, &e) < 0)
        fail_msg("submit 1: %s", e.text);
    assert_int_equal(first, 0);
    if (taskset_submit(ts, specs + 100, 100, 0, &first, &e) < 0)
        fail_msg("submit 2: %s", e.text);
    assert_int_equal(first, 100);
    check(ts);

    task_start running[64], out[8];
    size_t n_running = 0;
    uint32_t seq = 0;
    bool lost = false;
    uint64_t now = 0;
    for (int step = 0; step < 100000 && taskset_count_state(ts, TASK_SUCCEEDED) < G_TASKS; step++) {
        now += 10;
        size_t n = taskset_dispatch(ts, now, out, 1 + rng_below(&seed, 8));
        check(ts);
        for (size_t i = 0; i < n; i++) {
            gtask *t = &g[out[i].task];
            for (uint32_t k = 0; k < t->n_deps; k++)
                assert_int_equal(state_of(ts, t->deps[k]), TASK_SUCCEEDED);
            for (uint32_t k = 0; k < t->n_lost; k++)
                assert_int_not_equal(out[i].member, t->lost_on[k]);
            t->start_seq = seq++;
            assert_true(n_running < 64);
            running[n_running++] = out[i];
        }
        if (!lost && taskset_count_state(ts, TASK_SUCCEEDED) >= 60 && n_running >= 2) {
            /* Lose the member of a running task, then add a replacement. */
            uint32_t victim = running[0].member;
            size_t kept = 0, gone = 0;
            for (size_t i = 0; i < n_running; i++) {
                if (running[i].member == victim) {
                    gtask *t = &g[running[i].task];
                    t->lost_on[t->n_lost++] = victim;
                    gone++;
                } else {
                    running[kept++] = running[i];
                }
            }
            task_start stale = running[0];
            for (size_t i = 0; i < n_running; i++)
                if (running[i].member == victim)
                    stale = running[i];
            assert_int_equal(taskset_member_lost(ts, victim, now), gone);
            check(ts);
            n_running = kept;
            lost = true;
            task_member repl = {.id = 20, .gpus = 8, .cpus = 32, .memory_mib = 131072};
            assert_int_equal(taskset_member_add(ts, &repl, &e), 0);
            check(ts);
            /* The lost member comes back too: the tasks it lost must still
             * never run on it again (checked at each start above). */
            for (size_t i = 0; i < 4; i++)
                if (members[i].id == victim)
                    assert_int_equal(taskset_member_add(ts, &members[i], &e), 0);
            assert_int_equal(taskset_member_count(ts), 5);
            check(ts);
            /* The lost attempt reporting late changes nothing. */
            if (stale.member == victim) {
                assert_int_equal(
                    taskset_finished(ts, stale.task, stale.member, stale.attempt, 0, now, &e), -1);
                assert_int_equal(errno, ESTALE);
            }
            continue;
        }
        if (n_running && rng_below(&seed, 3)) {
            size_t i = rng_below(&seed, (uint32_t)n_running);
            finish(ts, &running[i], 0);
            g[running[i].task].successes++;
            /* A duplicate report is refused. */
            if (rng_below(&seed, 4) == 0) {
                assert_int_equal(taskset_finished(ts, running[i].task, running[i].member,
                                                  running[i].attempt, 0, now, &e),
                                 -1);
                assert_int_equal(errno, ESTALE);
            }
            running[i] = running[--n_running];
            check(ts);
        }
    }
    assert_true(lost);
    assert_int_equal(taskset_count_state(ts, TASK_SUCCEEDED), G_TASKS);
    size_t relost = 0;
    for (uint32_t id = 0; id < G_TASKS; id++) {
        assert_int_equal(g[id].successes, 1);
        for (uint32_t k = 0; k < g[id].n_deps; k++)
            assert_true(g[g[id].deps[k]].start_seq < g[id].start_seq);
        const task_info *ti = taskset_get(ts, id);
        assert_int_equal(ti->losses, g[id].n_lost);
        assert_int_equal(ti->attempts, 1 + g[id].n_lost);
        relost += g[id].n_lost;
    }
    assert_true(relost > 0); /* the loss did hit running tasks */
    taskset_destroy(ts);
}

/* --- GPU indices --------------------------------------------------------------- */

static void test_gpu_indices(void **state)
{
    (void)state;
    task_member m = {.id = 1, .gpus = 4, .cpus = 8, .memory_mib = 1024};
    taskset *ts = make(&m, 1);
    task_spec s = {.gpus = 2};
    for (int i = 0; i < 3; i++)
        submit1(ts, &s);
    task_start out[4];
    assert_int_equal(taskset_dispatch(ts, 1, out, 4), 2);
    assert_int_equal(out[0].task, 0);
    assert_int_equal(out[0].gpu_mask, 0x3); /* CUDA_VISIBLE_DEVICES=0,1 */
    assert_int_equal(out[1].task, 1);
    assert_int_equal(out[1].gpu_mask, 0xc); /* 2,3 */
    check(ts);
    finish(ts, &out[0], 0);
    assert_int_equal(taskset_dispatch(ts, 2, out + 2, 2), 1);
    assert_int_equal(out[2].task, 2);
    assert_int_equal(out[2].gpu_mask, 0x3); /* freed and reused */
    check(ts);
    /* A 1-GPU task after {2,3} frees gets the lowest free index: 2. */
    task_spec one = {.gpus = 1};
    submit1(ts, &one);
    finish(ts, &out[1], 0);
    assert_int_equal(taskset_dispatch(ts, 3, out, 1), 1);
    assert_int_equal(out[0].gpu_mask, 0x4);
    check(ts);
    taskset_destroy(ts);
}

/* --- retries ------------------------------------------------------------------- */

/* Run task id once more and report `code`; returns its attempt. */
static uint32_t run_once(taskset *ts, uint32_t id, int code)
{
    task_start out[1];
    assert_int_equal(taskset_dispatch(ts, 1, out, 1), 1);
    assert_int_equal(out[0].task, id);
    finish(ts, out, code);
    check(ts);
    return out[0].attempt;
}

static void test_retries(void **state)
{
    (void)state;
    task_member m = {.id = 1, .gpus = 1, .cpus = 1, .memory_mib = 1};
    taskset *ts = make(&m, 1);

    /* Exits are not retried unless asked. */
    task_spec no = {.gpus = 1};
    uint32_t a = submit1(ts, &no);
    run_once(ts, a, 3);
    assert_int_equal(state_of(ts, a), TASK_FAILED);
    assert_int_equal(taskset_get(ts, a)->attempts, 1);
    assert_int_equal(taskset_get(ts, a)->exit_code, 3);
    assert_non_null(strstr(taskset_get(ts, a)->reason, "exited with code 3"));

    /* Asked: retried up to the default 3 times, so 4 runs, then failed. */
    task_spec yes = {.gpus = 1, .retry_exits = true};
    uint32_t b = submit1(ts, &yes);
    assert_int_equal(taskset_get(ts, b)->max_retries, TASK_DEFAULT_RETRIES);
    for (uint32_t i = 1; i <= 3; i++) {
        assert_int_equal(run_once(ts, b, 1), i);
        assert_int_equal(state_of(ts, b), TASK_READY);
    }
    assert_int_equal(run_once(ts, b, 1), 4);
    assert_int_equal(state_of(ts, b), TASK_FAILED);
    assert_int_equal(taskset_get(ts, b)->failures, 4);

    /* An explicit limit, and success on a retry. */
    task_spec one = {.gpus = 1, .retry_exits = true, .max_retries = 1};
    uint32_t c = submit1(ts, &one);
    run_once(ts, c, 1);
    assert_int_equal(state_of(ts, c), TASK_READY);
    run_once(ts, c, 0);
    assert_int_equal(state_of(ts, c), TASK_SUCCEEDED);
    uint32_t d = submit1(ts, &one);
    run_once(ts, d, 1);
    run_once(ts, d, 1);
    assert_int_equal(state_of(ts, d), TASK_FAILED);

    /* Member loss is always retried, even with no retries at all, and
     * never back on a member that lost it; more than TASK_MAX_LOSSES
     * losses fail it. */
    taskset_destroy(ts);
    task_member ms[TASK_MAX_LOSSES + 2];
    for (uint32_t i = 0; i < TASK_MAX_LOSSES + 2; i++)
        ms[i] = (task_member){.id = 100 + i, .gpus = 1, .cpus = 1, .memory_mib = 1};
    ts = make(ms, TASK_MAX_LOSSES + 2);
    task_spec never = {.gpus = 1, .max_retries = TASK_NO_RETRIES};
    uint32_t t = submit1(ts, &never);
    for (uint32_t i = 1; i <= TASK_MAX_LOSSES + 1; i++) {
        task_start out[1];
        assert_int_equal(taskset_dispatch(ts, i, out, 1), 1);
        assert_int_equal(out[0].attempt, i);
        assert_int_equal(out[0].member, 100 + i - 1); /* each time a new member */
        assert_int_equal(taskset_member_lost(ts, out[0].member, i), 1);
        check(ts);
        if (i <= TASK_MAX_LOSSES)
            assert_int_equal(state_of(ts, t), TASK_READY);
    }
    assert_int_equal(state_of(ts, t), TASK_FAILED);
    assert_int_equal(taskset_get(ts, t)->failures, 0);
    assert_non_null(strstr(taskset_get(ts, t)->reason, "lost"));
    taskset_destroy(ts);
}

/* A member that lost a task and comes back (same id) is not used for that
 * task again, even where it would be the first choice. */
static void test_lost_member_returns(void **state)
{
    (void)state;
    task_member ms[2] = {{.id = 1, .gpus = 2, .cpus = 2, .memory_mib = 10},
                         {.id = 2, .gpus = 2, .cpus = 2, .memory_mib = 10}};
    taskset *ts = make(ms, 2);
    task_spec s = {.gpus = 1};
    uint32_t a = submit1(ts, &s);
    task_start out[2];
    assert_int_equal(taskset_dispatch(ts, 1, out, 2), 1);
    assert_int_equal(out[0].member, 1);
    assert_int_equal(taskset_member_lost(ts, 1, 2), 1);
    assert_int_equal(taskset_member_lost(ts, 1, 2), 0); /* already lost */
    assert_int_equal(taskset_member_count(ts), 1);
    mu_error e;
    assert_int_equal(taskset_member_add(ts, &ms[0], &e), 0);
    assert_int_equal(taskset_member_count(ts), 2);
    uint32_t b = submit1(ts, &s);
    assert_int_equal(taskset_dispatch(ts, 3, out, 2), 2);
    assert_int_equal(out[0].task, a);
    assert_int_equal(out[0].member, 2); /* not member 1, the first that fits */
    assert_int_equal(out[0].attempt, 2);
    assert_int_equal(out[1].task, b);
    assert_int_equal(out[1].member, 1); /* others may use it */
    assert_int_equal(taskset_get(ts, a)->losses, 1);
    assert_int_equal(taskset_get(ts, a)->failures, 0);
    check(ts);
    taskset_destroy(ts);
}

/* --- timeouts ------------------------------------------------------------------- */

static void test_timeouts(void **state)
{
    (void)state;
    task_member m = {.id = 5, .gpus = 2, .cpus = 2, .memory_mib = 100};
    taskset *ts = make(&m, 1);
    task_spec s = {.gpus = 1, .timeout_ms = 1000};
    task_spec r = {.gpus = 1, .timeout_ms = 5000, .retry_exits = true};
    uint32_t a = submit1(ts, &s), b = submit1(ts, &r);
    assert_int_equal(taskset_next_deadline(ts), TASK_NO_DEADLINE);
    task_start out[2];
    assert_int_equal(taskset_dispatch(ts, 100, out, 2), 2);
    assert_int_equal(taskset_next_deadline(ts), 1100);
    task_stop stop[4];
    assert_int_equal(taskset_tick(ts, 1099, stop, 4), 0);
    assert_int_equal(state_of(ts, a), TASK_RUNNING);
    assert_int_equal(taskset_tick(ts, 1100, stop, 4), 1);
    assert_int_equal(stop[0].task, a);
    assert_int_equal(stop[0].member, 5);
    assert_int_equal(stop[0].attempt, 1);
    assert_int_equal(state_of(ts, a), TASK_FAILED); /* timeouts retried only when asked */
    assert_non_null(strstr(taskset_get(ts, a)->reason, "timed out"));
    check(ts);
    /* The killed attempt's late report is stale. */
    mu_error e;
    assert_int_equal(taskset_finished(ts, a, 5, 1, 0, 1200, &e), -1);
    assert_int_equal(errno, ESTALE);
    assert_int_equal(taskset_next_deadline(ts), 5100);
    assert_int_equal(taskset_tick(ts, 6000, stop, 4), 1);
    assert_int_equal(stop[0].task, b);
    assert_int_equal(state_of(ts, b), TASK_READY); /* retry_exits: timed out, retried */
    assert_int_equal(taskset_next_deadline(ts), TASK_NO_DEADLINE);
    assert_int_equal(taskset_dispatch(ts, 7000, out, 2), 1);
    assert_int_equal(taskset_next_deadline(ts), 12000);
    finish(ts, out, 0);
    assert_int_equal(taskset_next_deadline(ts), TASK_NO_DEADLINE);
    assert_int_equal(state_of(ts, b), TASK_SUCCEEDED);
    check(ts);
    taskset_destroy(ts);
}

/* --- cancel ------------------------------------------------------------------------ */

static void test_cancel(void **state)
{
    (void)state;
    task_member m = {.id = 1, .gpus = 1, .cpus = 4, .memory_mib = 100};
    taskset *ts = make(&m, 1);
    uint32_t a0 = 0, a1 = 1;
    task_spec specs[4] = {
        {.gpus = 1},                             /* 0: runs */
        {.gpus = 1, .after = &a0, .n_after = 1}, /* 1: after 0 */
        {.gpus = 1, .after = &a1, .n_after = 1}, /* 2: after 1 */
        {.cpus = 1},                             /* 3: ready, independent */
    };
    mu_error e;
    assert_int_equal(taskset_submit(ts, specs, 4, 0, NULL, &e), 0);
    task_start out[4];
    assert_int_equal(taskset_dispatch(ts, 1, out, 1), 1);
    assert_int_equal(out[0].task, 0);
    bool was = false;
    assert_int_equal(taskset_cancel(ts, 0, NULL, 2, &was, &e), 0);
    assert_true(was);
    assert_int_equal(state_of(ts, 0), TASK_CANCELLED);
    assert_int_equal(state_of(ts, 1), TASK_FAILED);
    assert_string_equal(taskset_get(ts, 1)->reason, "dependency 0 cancelled");
    assert_int_equal(state_of(ts, 2), TASK_FAILED);
    assert_string_equal(taskset_get(ts, 2)->reason, "dependency 1 failed");
    check(ts);
    /* Its resources are free, its late report is stale, it cannot be
     * cancelled twice. */
    assert_int_equal(taskset_finished(ts, 0, 1, 1, 0, 3, &e), -1);
    assert_int_equal(errno, ESTALE);
    assert_int_equal(taskset_cancel(ts, 0, NULL, 3, &was, &e), -1);
    assert_int_equal(errno, EALREADY);
    assert_int_equal(taskset_cancel(ts, 99, NULL, 3, &was, &e), -1);
    assert_int_equal(errno, ENOENT);
    /* A ready task: not running. */
    assert_int_equal(state_of(ts, 3), TASK_READY);
    assert_int_equal(taskset_cancel(ts, 3, NULL, 3, &was, &e), 0);
    assert_false(was);
    assert_int_equal(taskset_dispatch(ts, 4, out, 4), 0);
    check(ts);
    /* Nothing may depend on a cancelled task from now on. */
    task_spec late = {.after = &a0, .n_after = 1};
    assert_int_equal(taskset_submit(ts, &late, 1, 5, NULL, &e), -1);
    assert_non_null(strstr(e.text, "cancelled"));
    taskset_destroy(ts);
}

/* --- dependency failure ------------------------------------------------------------------ */

static void test_dependency_failure(void **state)
{
    (void)state;
    task_member m = {.id = 1, .gpus = 4, .cpus = 4, .memory_mib = 100};
    taskset *ts = make(&m, 1);
    uint32_t d0 = 0, d1 = 1, d12[2] = {1, 2};
    task_spec specs[5] = {
        {.gpus = 1},                             /* 0: will fail */
        {.gpus = 1, .after = &d0, .n_after = 1}, /* 1 */
        {.gpus = 1},                             /* 2: independent, succeeds */
        {.gpus = 1, .after = d12, .n_after = 2}, /* 3: after 1 and 2 */
        {.gpus = 1, .after = &d1, .n_after = 1}, /* 4: after 1 */
    };
    mu_error e;
    assert_int_equal(taskset_submit(ts, specs, 5, 0, NULL, &e), 0);
    assert_int_equal(state_of(ts, 1), TASK_WAITING);
    task_start out[4];
    assert_int_equal(taskset_dispatch(ts, 1, out, 4), 2);
    finish(ts, &out[1], 0); /* task 2 */
    finish(ts, &out[0], 9); /* task 0 fails */
    assert_int_equal(state_of(ts, 0), TASK_FAILED);
    assert_int_equal(state_of(ts, 1), TASK_FAILED);
    assert_string_equal(taskset_get(ts, 1)->reason, "dependency 0 failed");
    assert_int_equal(state_of(ts, 2), TASK_SUCCEEDED);
    assert_int_equal(state_of(ts, 3), TASK_FAILED);
    assert_string_equal(taskset_get(ts, 3)->reason, "dependency 1 failed");
    assert_int_equal(state_of(ts, 4), TASK_FAILED);
    assert_int_equal(taskset_count_state(ts, TASK_FAILED), 4);
    assert_int_equal(taskset_dispatch(ts, 2, out, 4), 0);
    check(ts);
    /* A later task after one already succeeded is ready at once. */
    uint32_t d2 = 2;
    task_spec after2 = {.gpus = 1, .after = &d2, .n_after = 1};
    uint32_t late = submit1(ts, &after2);
    assert_int_equal(state_of(ts, late), TASK_READY);
    check(ts);
    taskset_destroy(ts);
}

/* --- bad input ------------------------------------------------------------------------------ */

typedef struct snapshot {
    size_t count, by_state[TASK_STATES];
    uint32_t next;
} snapshot;

static snapshot snap(const taskset *ts)
{
    snapshot s = {.count = taskset_count(ts), .next = taskset_next_id(ts)};
    for (int i = 0; i < TASK_STATES; i++)
        s.by_state[i] = taskset_count_state(ts, (task_state)i);
    return s;
}

static void expect_rejected(taskset *ts, const task_spec *specs, size_t n, const char *words)
{
    snapshot before = snap(ts);
    mu_error e = {{0}};
    uint32_t first = 12345;
    if (taskset_submit(ts, specs, n, 0, &first, &e) != -1)
        fail_msg("accepted a graph that should fail with \"%s\"", words);
    assert_int_equal(first, 12345);
    if (!strstr(e.text, words))
        fail_msg("expected \"%s\" in \"%s\"", words, e.text);
    snapshot after = snap(ts);
    assert_memory_equal(&before, &after, sizeof(before));
    check(ts);
}

static void test_bad_input(void **state)
{
    (void)state;
    task_member ms[2] = {{.id = 1, .gpus = 4, .cpus = 8, .memory_mib = 1000},
                         {.id = 2, .gpus = 8, .cpus = 4, .memory_mib = 500}};
    taskset *ts = make(ms, 2);
    task_spec ok = {.gpus = 1};
    submit1(ts, &ok); /* task 0, so there is something to leave unchanged */
    /* Ids 1..4 (indices 0..3): 2 after 4, 4 after 3, 3 after 2, a cycle
     * behind a valid task. */
    uint32_t c1 = 4, c2 = 2, c3 = 3;
    task_spec cyc[4] = {{.gpus = 1},
                        {.after = &c1, .n_after = 1},
                        {.after = &c2, .n_after = 1},
                        {.after = &c3, .n_after = 1}};
    expect_rejected(ts, cyc, 4, "cycle");
    uint32_t self = 1;
    task_spec selfs[1] = {{.after = &self, .n_after = 1}};
    expect_rejected(ts, selfs, 1, "task 0: depends on itself");
    /* Unknown dependency. */
    uint32_t unknown = 999;
    task_spec unk[2] = {{.gpus = 1}, {.after = &unknown, .n_after = 1}};
    expect_rejected(ts, unk, 2, "task 1: depends on unknown task 999");
    /* More than any member: 8 GPUs and 8 CPUs are on different members. */
    task_spec big[1] = {{.gpus = 8, .cpus = 8}};
    expect_rejected(ts, big, 1, "more than any member");
    task_spec mem[1] = {{.memory_mib = 1001}};
    expect_rejected(ts, mem, 1, "more than any member");
    /* Hard affinity: unknown member, or one too small. */
    task_spec hard[1] = {{.placement = TASK_PLACE_MEMBER_HARD, .member = 77}};
    expect_rejected(ts, hard, 1, "member 77");
    task_spec hard2[1] = {{.gpus = 5, .placement = TASK_PLACE_MEMBER_HARD, .member = 1}};
    expect_rejected(ts, hard2, 1, "its member 1");
    /* Empty. */
    expect_rejected(ts, NULL, 0, "empty");
    assert_int_equal(taskset_count(ts), 1);
    /* The same shapes, acyclic and in range, are accepted. */
    uint32_t fwd = 2;
    task_spec good[2] = {{.gpus = 8, .after = &fwd, .n_after = 1}, {.cpus = 8}};
    uint32_t first = 0;
    mu_error e;
    assert_int_equal(taskset_submit(ts, good, 2, 0, &first, &e), 0);
    assert_int_equal(first, 1);
    assert_int_equal(state_of(ts, 1), TASK_WAITING);
    assert_int_equal(state_of(ts, 2), TASK_READY);
    check(ts);
    /* Members: duplicates and too many GPUs are refused. */
    task_member dup[2] = {{.id = 3}, {.id = 3}};
    assert_null(taskset_create(dup, 2, &e));
    task_member huge = {.id = 4, .gpus = 65};
    assert_null(taskset_create(&huge, 1, &e));
    assert_int_equal(taskset_member_add(ts, &huge, &e), -1);
    assert_int_equal(taskset_member_add(ts, &ms[0], &e), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(taskset_member_count(ts), 2);
    taskset_destroy(ts);
}

/* Out of memory at any point of a submission leaves nothing behind. */
static void test_submit_allocation_failure(void **state)
{
    (void)state;
    task_member m = {.id = 1, .gpus = 2, .cpus = 2, .memory_mib = 10};
    uint32_t deps[2] = {0, 3}; /* after the task submitted first, and a later one of the batch */
    task_spec specs[3] = {{.gpus = 1}, {.after = deps, .n_after = 2}, {.cpus = 1}};
    size_t fail_at;
    for (fail_at = 1; fail_at < 40; fail_at++) {
        taskset *ts = make(&m, 1);
        task_spec pre = {.gpus = 1};
        submit1(ts, &pre);
        uint32_t dep0 = 0;
        task_spec on0 = {.after = &dep0, .n_after = 1};
        snapshot before = snap(ts);
        mu_error e;
        test_fail_alloc_after(fail_at);
        int rc = taskset_submit(ts, specs, 3, 0, NULL, &e);
        if (rc == 0)
            rc = taskset_submit(ts, &on0, 1, 0, NULL, &e) < 0 ? 1 : 0;
        int err = errno;
        test_fail_alloc_after(0);
        if (rc == -1) {
            if (err != ENOMEM)
                fail_msg("allocation %zu failed: errno %d, %s", fail_at, err, e.text);
            snapshot after = snap(ts);
            assert_memory_equal(&before, &after, sizeof(before));
        }
        check(ts);
        taskset_destroy(ts);
        if (rc == 0)
            break; /* every allocation point was failed once */
    }
    /* Both submissions allocate several times: each point was hit. */
    assert_true(fail_at > 8 && fail_at < 40);
}

/* --- exactly once -------------------------------------------------------------------------------
 */

static void test_exactly_once(void **state)
{
    (void)state;
    task_member ms[2] = {{.id = 1, .gpus = 1, .cpus = 1, .memory_mib = 1},
                         {.id = 2, .gpus = 1, .cpus = 1, .memory_mib = 1}};
    taskset *ts = make(ms, 2);
    task_spec s = {.gpus = 1, .retry_exits = true};
    uint32_t id = submit1(ts, &s);
    task_start out[1];
    mu_error e;
    assert_int_equal(taskset_dispatch(ts, 1, out, 1), 1);
    finish(ts, out, 1); /* attempt 1 fails, retried */
    assert_int_equal(taskset_dispatch(ts, 2, out, 1), 1);
    assert_int_equal(out[0].attempt, 2);
    /* A stale attempt, a wrong member, an unknown task. */
    assert_int_equal(taskset_finished(ts, id, out[0].member, 1, 0, 3, &e), -1);
    assert_int_equal(errno, ESTALE);
    assert_int_equal(taskset_finished(ts, id, out[0].member == 1 ? 2 : 1, 2, 0, 3, &e), -1);
    assert_int_equal(errno, ESTALE);
    assert_int_equal(taskset_finished(ts, 7, 1, 1, 0, 3, &e), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(state_of(ts, id), TASK_RUNNING);
    finish(ts, out, 0);
    assert_int_equal(state_of(ts, id), TASK_SUCCEEDED);
    /* Duplicates, success or failure, change nothing. */
    assert_int_equal(taskset_finished(ts, id, out[0].member, 2, 0, 4, &e), -1);
    assert_int_equal(errno, ESTALE);
    assert_int_equal(taskset_finished(ts, id, out[0].member, 2, 1, 4, &e), -1);
    assert_int_equal(errno, ESTALE);
    assert_int_equal(state_of(ts, id), TASK_SUCCEEDED);
    assert_int_equal(taskset_get(ts, id)->exit_code, 0);
    assert_int_equal(taskset_count_state(ts, TASK_SUCCEEDED), 1);
    /* Losing the member afterwards does not touch a finished task. */
    assert_int_equal(taskset_member_lost(ts, out[0].member, 5), 0);
    assert_int_equal(state_of(ts, id), TASK_SUCCEEDED);
    check(ts);
    taskset_destroy(ts);
}

/* --- placement
 * ------------------------------------------------------------------------------------ */

static void test_placement(void **state)
{
    (void)state;
    task_member ms[3] = {{.id = 1, .gpus = 4, .cpus = 8, .memory_mib = 100},
                         {.id = 2, .gpus = 4, .cpus = 8, .memory_mib = 100},
                         {.id = 3, .gpus = 4, .cpus = 8, .memory_mib = 100}};
    task_start out[8];

    /* Spread: three tasks on three members. */
    taskset *ts = make(ms, 3);
    task_spec spread = {.gpus = 1, .placement = TASK_PLACE_SPREAD};
    for (int i = 0; i < 3; i++)
        submit1(ts, &spread);
    assert_int_equal(taskset_dispatch(ts, 1, out, 8), 3);
    assert_int_not_equal(out[0].member, out[1].member);
    assert_int_not_equal(out[1].member, out[2].member);
    assert_int_not_equal(out[0].member, out[2].member);
    check(ts);
    taskset_destroy(ts);

    /* Pack: one task on member 2 first; packed tasks join it until full. */
    ts = make(ms, 3);
    task_spec on2 = {.gpus = 1, .placement = TASK_PLACE_MEMBER_HARD, .member = 2};
    submit1(ts, &on2);
    assert_int_equal(taskset_dispatch(ts, 1, out, 8), 1);
    assert_int_equal(out[0].member, 2);
    task_spec pack = {.gpus = 1, .placement = TASK_PLACE_PACK};
    for (int i = 0; i < 5; i++)
        submit1(ts, &pack);
    assert_int_equal(taskset_dispatch(ts, 2, out, 8), 5);
    for (int i = 0; i < 3; i++)
        assert_int_equal(out[i].member, 2);
    assert_int_not_equal(out[3].member, 2); /* member 2 is full */
    assert_int_equal(out[4].member, out[3].member);
    check(ts);
    taskset_destroy(ts);

    /* Hard waits for its member; soft goes elsewhere when it is full. */
    ts = make(ms, 3);
    task_spec fill3 = {.gpus = 4, .placement = TASK_PLACE_MEMBER_HARD, .member = 3};
    submit1(ts, &fill3);
    assert_int_equal(taskset_dispatch(ts, 1, out, 8), 1);
    task_start filler = out[0];
    assert_int_equal(filler.member, 3);
    task_spec hard = {.gpus = 1, .placement = TASK_PLACE_MEMBER_HARD, .member = 3};
    task_spec soft = {.gpus = 1, .placement = TASK_PLACE_MEMBER_SOFT, .member = 3};
    task_spec soft2 = {.gpus = 1, .placement = TASK_PLACE_MEMBER_SOFT, .member = 2};
    uint32_t h = submit1(ts, &hard), s = submit1(ts, &soft), s2 = submit1(ts, &soft2);
    assert_int_equal(taskset_dispatch(ts, 2, out, 8), 2);
    assert_int_equal(out[0].task, s);
    assert_int_equal(out[0].member, 1); /* soft, member 3 full: the first that fits */
    assert_int_equal(out[1].task, s2);
    assert_int_equal(out[1].member, 2); /* soft, member 2 fits */
    assert_int_equal(state_of(ts, h), TASK_READY);
    finish(ts, &filler, 0);
    assert_int_equal(taskset_dispatch(ts, 3, out, 8), 1);
    assert_int_equal(out[0].task, h);
    assert_int_equal(out[0].member, 3);
    check(ts);
    /* Losing the member of a hard affinity fails the task. */
    assert_int_equal(taskset_member_lost(ts, 3, 4), 1);
    assert_int_equal(state_of(ts, h), TASK_FAILED);
    assert_non_null(strstr(taskset_get(ts, h)->reason, "hard affinity"));
    check(ts);
    taskset_destroy(ts);
}

/* --- fairness
 * ---------------------------------------------------------------------------------------- */

static void test_fifo(void **state)
{
    (void)state;
    task_member m = {.id = 1, .gpus = 2, .cpus = 2, .memory_mib = 10};
    taskset *ts = make(&m, 1);
    task_spec s = {.gpus = 1, .retry_exits = true};
    for (int i = 0; i < 10; i++)
        submit1(ts, &s);
    task_start out[2], running[2];
    assert_int_equal(taskset_dispatch(ts, 1, running, 2), 2);
    assert_int_equal(running[0].task, 0);
    assert_int_equal(running[1].task, 1);
    /* Task 0 fails and is retried: it goes before the later tasks. Task 1
     * succeeds. Then each freed GPU goes to the oldest ready task. */
    finish(ts, &running[0], 1);
    finish(ts, &running[1], 0);
    uint32_t order[16], n_order = 0;
    for (int round = 0; round < 20; round++) {
        size_t n = taskset_dispatch(ts, 2, out, 2);
        for (size_t i = 0; i < n; i++) {
            assert_true(n_order < 16);
            order[n_order++] = out[i].task;
        }
        for (size_t i = 0; i < n; i++)
            finish(ts, &out[i], 0);
        check(ts);
    }
    uint32_t expect[] = {0, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(n_order, 9);
    assert_memory_equal(order, expect, sizeof(expect));
    assert_int_equal(taskset_count_state(ts, TASK_SUCCEEDED), 10);

    /* A big task at the head does not stop smaller ones behind it, and
     * keeps its place: it starts as soon as the GPUs are free. */
    taskset_destroy(ts);
    ts = make(&m, 1);
    task_spec one = {.gpus = 1}, two = {.gpus = 2};
    uint32_t a = submit1(ts, &one);
    assert_int_equal(taskset_dispatch(ts, 1, out, 2), 1);
    uint32_t big = submit1(ts, &two), small = submit1(ts, &one);
    (void)a;
    task_start b[2];
    assert_int_equal(taskset_dispatch(ts, 2, b, 2), 1);
    assert_int_equal(b[0].task, small); /* backfilled */
    finish(ts, &out[0], 0);
    assert_int_equal(taskset_dispatch(ts, 3, out, 2), 0); /* one GPU free: big waits */
    submit1(ts, &one);
    finish(ts, &b[0], 0);
    assert_int_equal(taskset_dispatch(ts, 4, out, 2), 1);
    assert_int_equal(out[0].task, big); /* before the later 1-GPU task */
    check(ts);
    taskset_destroy(ts);
}

/* --- scale
 * ---------------------------------------------------------------------------------------------- */

#define SCALE_TASKS   100000
#define SCALE_MEMBERS 64

static void test_scale(void **state)
{
    (void)state;
    task_member ms[SCALE_MEMBERS];
    for (uint32_t i = 0; i < SCALE_MEMBERS; i++)
        ms[i] = (task_member){.id = i, .gpus = 8, .cpus = 64, .memory_mib = 1 << 20};
    taskset *ts = make(ms, SCALE_MEMBERS);
    task_spec *specs = mu_calloc(SCALE_TASKS, sizeof(*specs));
    assert_non_null(specs);
    for (uint32_t i = 0; i < SCALE_TASKS; i++)
        specs[i] = (task_spec){.gpus = 1, .cpus = 1};
    mu_error e;
    assert_int_equal(taskset_submit(ts, specs, SCALE_TASKS, 0, NULL, &e), 0);
    mu_free(specs);
    task_start out[1024];
    size_t dispatches = 0, done = 0;
    uint64_t now = 0;
    while (done < SCALE_TASKS) {
        size_t n = taskset_dispatch(ts, ++now, out, 1024);
        dispatches++;
        assert_true(n > 0);
        assert_true(n <= SCALE_MEMBERS * 8); /* never more than there are GPUs */
        for (size_t i = 0; i < n; i++)
            finish(ts, &out[i], 0);
        done += n;
    }
    assert_int_equal(taskset_count_state(ts, TASK_SUCCEEDED), SCALE_TASKS);
    assert_int_equal(dispatches, (SCALE_TASKS + 511) / 512);
    check(ts);
    taskset_destroy(ts);
}

/* An attempt that failed for another reason than its exit (result
 * refused, could not start) counts as a failure with that reason; an
 * attempt its agent no longer runs is lost there and goes elsewhere; a
 * held member keeps what it runs and gets nothing new. */
static void test_attempt_outcomes_and_hold(void **state)
{
    (void)state;
    mu_error e = {{0}};
    task_member ms[2] = {{.id = 7, .gpus = 1, .cpus = 1, .memory_mib = 1},
                         {.id = 8, .gpus = 1, .cpus = 1, .memory_mib = 1}};
    taskset *ts = make(ms, 2);
    task_spec sp = {.gpus = 1, .retry_exits = true, .max_retries = 1};
    uint32_t a = submit1(ts, &sp);
    task_start st[2];
    assert_int_equal(taskset_dispatch(ts, 1, st, 2), 1);
    assert_int_equal(taskset_attempt_failed(ts, a, st[0].member, st[0].attempt, 0,
                                            "result file is too large", 2, &e),
                     0);
    assert_int_equal(state_of(ts, a), TASK_READY);
    assert_non_null(strstr(taskset_get(ts, a)->reason, "result file is too large"));
    assert_int_equal(taskset_get(ts, a)->failures, 1);
    /* A stale report of that attempt changes nothing. */
    assert_int_equal(taskset_attempt_failed(ts, a, st[0].member, st[0].attempt, 0, "x", 3, &e), -1);
    assert_int_equal(errno, ESTALE);

    assert_int_equal(taskset_dispatch(ts, 4, st, 2), 1);
    uint32_t first = st[0].member;
    assert_int_equal(taskset_attempt_lost(ts, a, first, st[0].attempt, 5, &e), 0);
    assert_int_equal(state_of(ts, a), TASK_READY);
    assert_int_equal(taskset_get(ts, a)->losses, 1);
    assert_int_equal(taskset_get(ts, a)->failures, 1); /* a loss is not a failure */
    const uint32_t *lost;
    assert_int_equal(taskset_lost_on(ts, a, &lost), 1);
    assert_int_equal(lost[0], first);

    /* The other member is held: nothing starts until it is released. */
    uint32_t other = first == 7 ? 8 : 7;
    assert_int_equal(taskset_member_hold(ts, other, true), 0);
    assert_int_equal(taskset_dispatch(ts, 6, st, 2), 0);
    assert_int_equal(taskset_member_hold(ts, other, false), 0);
    assert_int_equal(taskset_dispatch(ts, 7, st, 2), 1);
    assert_int_equal(st[0].member, other);
    /* Held while running: keeps the task, which can still finish. */
    assert_int_equal(taskset_member_hold(ts, other, true), 0);
    assert_int_equal(state_of(ts, a), TASK_RUNNING);
    finish(ts, &st[0], 0);
    assert_int_equal(state_of(ts, a), TASK_SUCCEEDED);
    assert_int_equal(taskset_member_hold(ts, 99, true), -1);
    assert_true(taskset_member_live(ts, 7));
    assert_false(taskset_member_live(ts, 99));
    check(ts);
    taskset_destroy(ts);
}

/* What a taskset saved comes back: final tasks final, running ones on
 * their member with their GPUs when it is still there, as lost when it is
 * not, waiting and ready ones by their dependencies. */
static void test_restore(void **state)
{
    (void)state;
    mu_error e = {{0}};
    task_member ms[2] = {{.id = 1, .gpus = 2, .cpus = 4, .memory_mib = 100},
                         {.id = 2, .gpus = 2, .cpus = 4, .memory_mib = 100}};
    taskset *ts = make(ms, 2);
    /* 0 -> 2, 1 -> 3, 2 -> 4; 5 alone */
    uint32_t d0[] = {0}, d1[] = {1}, d2[] = {2};
    task_spec specs[6] = {{.gpus = 1},
                          {.gpus = 1, .timeout_ms = 1000},
                          {.gpus = 1, .after = d0, .n_after = 1},
                          {.gpus = 1, .after = d1, .n_after = 1},
                          {.gpus = 1, .after = d2, .n_after = 1},
                          {.gpus = 2}};
    assert_int_equal(taskset_submit(ts, specs, 6, 10, NULL, &e), 0);
    task_start st[8];
    size_t n = taskset_dispatch(ts, 20, st, 8); /* 0, 1 on member 1; 5 on member 2 */
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        if (st[i].task == 0)
            finish(ts, &st[i], 0); /* 0 succeeded, 2 ready */

    /* Save everything, as the broker does. */
    task_restore tr[6];
    for (uint32_t id = 0; id < 6; id++) {
        const task_info *ti = taskset_get(ts, id);
        tr[id] = (task_restore){.spec = specs[id],
                                .state = ti->state,
                                .attempts = ti->attempts,
                                .failures = ti->failures,
                                .losses = ti->losses,
                                .exit_code = ti->exit_code,
                                .member = ti->member,
                                .gpu_mask = ti->gpu_mask,
                                .submitted_at = ti->submitted_at,
                                .started_at = ti->started_at,
                                .finished_at = ti->finished_at,
                                .reason = ti->reason};
        tr[id].n_lost_on = taskset_lost_on(ts, id, &tr[id].lost_on);
    }
    uint32_t member_of5 = taskset_get(ts, 5)->member;
    uint32_t member_of1 = taskset_get(ts, 1)->member;
    uint64_t mask1 = taskset_get(ts, 1)->gpu_mask;

    /* Same members: everything as it was. */
    taskset *back = make(ms, 2);
    assert_int_equal(taskset_restore(back, tr, 6, 30, &e), 0);
    assert_int_equal(state_of(back, 0), TASK_SUCCEEDED);
    assert_int_equal(state_of(back, 1), TASK_RUNNING);
    assert_int_equal(taskset_get(back, 1)->member, member_of1);
    assert_int_equal(taskset_get(back, 1)->gpu_mask, mask1);
    assert_int_equal(taskset_next_deadline(back), taskset_get(ts, 1)->started_at + 1000);
    assert_int_equal(state_of(back, 2), TASK_READY);
    assert_int_equal(state_of(back, 3), TASK_WAITING);
    assert_int_equal(state_of(back, 5), TASK_RUNNING);
    assert_int_equal(taskset_count_state(back, TASK_RUNNING), 2);
    /* The running attempts can report as before. */
    assert_int_equal(taskset_finished(back, 1, member_of1, 1, 0, 40, &e), 0);
    assert_int_equal(state_of(back, 3), TASK_READY);
    check(back);
    taskset_destroy(back);

    /* Member of task 5 gone: 5 requeued, never to go back there. */
    task_member only = member_of5 == 1 ? ms[1] : ms[0];
    back = make(&only, 1);
    assert_int_equal(taskset_restore(back, tr, 6, 30, &e), 0);
    assert_int_equal(state_of(back, 5), TASK_READY);
    assert_int_equal(taskset_get(back, 5)->losses, 1);
    check(back);
    taskset_destroy(back);

    /* A failed task's waiting dependents fail on restore. */
    tr[1].state = TASK_FAILED;
    back = make(ms, 2);
    assert_int_equal(taskset_restore(back, tr, 6, 30, &e), 0);
    assert_int_equal(state_of(back, 3), TASK_FAILED);
    check(back);
    /* Only into an empty set; a bad graph is refused. */
    assert_int_equal(taskset_restore(back, tr, 6, 30, &e), -1);
    taskset_destroy(back);
    uint32_t self[] = {0};
    tr[0].spec.after = self;
    tr[0].spec.n_after = 1;
    back = make(ms, 2);
    assert_int_equal(taskset_restore(back, tr, 6, 30, &e), -1);
    taskset_destroy(back);
    taskset_destroy(ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_graph),
        cmocka_unit_test(test_gpu_indices),
        cmocka_unit_test(test_retries),
        cmocka_unit_test(test_lost_member_returns),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_dependency_failure),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_submit_allocation_failure),
        cmocka_unit_test(test_exactly_once),
        cmocka_unit_test(test_placement),
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_scale),
        cmocka_unit_test(test_attempt_outcomes_and_hold),
        cmocka_unit_test(test_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
