/* test_store.c - the durable store: what is saved comes back, a store of the
 * older schema opens and migrates, a damaged file is refused and left as it
 * was, a full store fails writes cleanly, and its checks catch what they
 * should. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fsutil.h"
#include "store.h"

typedef struct fixture {
    char dir[64];
    char path[96];
} fixture;

static int setup(void **state)
{
    fixture *f = test_calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/muster-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/musterd.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    test_free(f);
    return 0;
}

static mu_id make_id(unsigned n)
{
    mu_id id;
    memset(&id, 0, sizeof(id));
    id.b[0] = (uint8_t)n;
    id.b[15] = 0x5a;
    return id;
}

typedef struct loaded {
    unsigned workers, clusters;
    mu_id worker_ids[8];
    char regs[8][16];
    uptime ups[8];
    uint64_t reg_at[8];
    char owner[64];
    int state;
    size_t n_members, n_history;
    store_member members[8];
    char history_what[8][16];
    char spec[16];
    uint64_t ends_at;
} loaded;

static int on_worker(void *arg, const mu_id *id, const void *reg, size_t len,
                     uint64_t registered_at, const uptime *up, mu_error *errp)
{
    (void)errp;
    loaded *l = arg;
    l->worker_ids[l->workers] = *id;
    memcpy(l->regs[l->workers], reg, len < 15 ? len : 15);
    l->ups[l->workers] = *up;
    l->reg_at[l->workers] = registered_at;
    l->workers++;
    return 0;
}

static int on_cluster(void *arg, const store_cluster *c, mu_error *errp)
{
    (void)errp;
    loaded *l = arg;
    l->clusters++;
    snprintf(l->owner, sizeof(l->owner), "%s", c->owner);
    l->state = c->state;
    l->n_members = c->n_members;
    memcpy(l->members, c->members, c->n_members * sizeof(store_member));
    l->n_history = c->n_history;
    for (size_t i = 0; i < c->n_history && i < 8; i++)
        snprintf(l->history_what[i], sizeof(l->history_what[i]), "%s", c->history[i].what);
    memcpy(l->spec, c->spec, c->spec_len < 15 ? c->spec_len : 15);
    l->ends_at = c->ends_at;
    return 0;
}

static void put_cluster(store *st, unsigned n, const mu_id *w1, const mu_id *w2, int state)
{
    store_member members[3] = {{*w1, true, false}, {*w2, false, true}, {{{0}}, false, true}};
    store_change changes[2] = {{100, {{0}}, "created", "3 members"}, {150, *w1, "joined", "ack"}};
    store_cluster c = {.id = make_id(100 + n),
                       .owner = "alice",
                       .state = state,
                       .spec = "SPEC",
                       .spec_len = 4,
                       .hours = 6,
                       .created_at = 100,
                       .ends_at = 100 + 6 * 3600000ull,
                       .price_uusd_per_hour = 1530000,
                       .end_reason = "",
                       .members = members,
                       .n_members = 3,
                       .history = changes,
                       .n_history = 2};
    mu_error err;
    if (store_put_cluster(st, &c, &err) < 0)
        fail_msg("%s", err.text);
}

static void test_round_trip(void **state)
{
    fixture *f = *state;
    mu_error err;
    store *st = store_open(f->path, true, &err);
    assert_non_null(st);
    assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
    mu_id w1 = make_id(1), w2 = make_id(2);
    uptime up = {30.5f, 40.25f, 12345};
    assert_int_equal(store_begin(st, &err), 0);
    assert_int_equal(store_put_worker(st, &w1, "REG1", 4, 1000, &up, &err), 0);
    assert_int_equal(store_put_worker(st, &w2, "REG2", 4, 2000, &up, &err), 0);
    put_cluster(st, 1, &w1, &w2, 2);
    assert_int_equal(store_commit(st, &err), 0);
    /* a rolled back change leaves no trace */
    mu_id w3 = make_id(3);
    assert_int_equal(store_begin(st, &err), 0);
    assert_int_equal(store_put_worker(st, &w3, "REG3", 4, 3000, &up, &err), 0);
    store_rollback(st);
    uptime later = {31.0f, 41.0f, 22345};
    assert_int_equal(store_begin(st, &err), 0);
    assert_int_equal(store_put_uptime(st, &w1, &later, &err), 0);
    assert_int_equal(store_commit(st, &err), 0);
    assert_int_equal(store_check(st, &err), 0);
    store_close(st);

    st = store_open(f->path, true, &err);
    assert_non_null(st);
    loaded l = {0};
    assert_int_equal(store_load(st, on_worker, on_cluster, &l, &err), 0);
    assert_int_equal(l.workers, 2);
    assert_true(id_equal(&l.worker_ids[0], &w1));
    assert_string_equal(l.regs[0], "REG1");
    assert_int_equal(l.reg_at[1], 2000);
    assert_true(l.ups[0].online_h == 31.0f && l.ups[0].total_h == 41.0f);
    assert_int_equal(l.ups[0].at, 22345);
    assert_int_equal(l.clusters, 1);
    assert_string_equal(l.owner, "alice");
    assert_int_equal(l.state, 2);
    assert_string_equal(l.spec, "SPEC");
    assert_int_equal(l.ends_at, 100 + 6 * 3600000ull);
    assert_int_equal(l.n_members, 3);
    assert_true(id_equal(&l.members[0].worker, &w1) && l.members[0].acked);
    assert_true(l.members[1].lost && !l.members[1].acked);
    assert_true(id_is_null(&l.members[2].worker)); /* the vacant seat */
    assert_int_equal(l.n_history, 2);
    assert_string_equal(l.history_what[1], "joined");
    uint64_t n;
    assert_int_equal(store_count(st, "workers", &n, &err), 0);
    assert_int_equal(n, 2);
    store_close(st);
}

/* A store written by the foundation (schema 1: workers only) opens,
 * migrates to the current schema, and keeps its workers. */
static void test_migrates_from_schema_1(void **state)
{
    fixture *f = *state;
    mu_error err;
    store *st = store_open_version(f->path, true, 1, &err);
    assert_non_null(st);
    assert_int_equal(store_schema_version(st), 1);
    mu_id w1 = make_id(1);
    uptime up = {1, 2, 3};
    assert_int_equal(store_begin(st, &err), 0);
    assert_int_equal(store_put_worker(st, &w1, "OLD", 3, 77, &up, &err), 0);
    assert_int_equal(store_commit(st, &err), 0);
    /* schema 1 has no clusters */
    store_cluster c = {.id = make_id(9), .owner = "x", .spec = "", .end_reason = ""};
    assert_int_equal(store_put_cluster(st, &c, &err), -1);
    store_close(st);

    st = store_open(f->path, true, &err);
    assert_non_null(st);
    assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
    loaded l = {0};
    assert_int_equal(store_load(st, on_worker, on_cluster, &l, &err), 0);
    assert_int_equal(l.workers, 1);
    assert_string_equal(l.regs[0], "OLD");
    assert_int_equal(l.reg_at[0], 77);
    assert_int_equal(l.clusters, 0);
    store_close(st);
}

typedef struct loaded_resv {
    unsigned n;
    char owner[32];
    int state;
    size_t n_members, n_excluded;
    mu_id member1;
    uint64_t price;
    uint32_t discount;
} loaded_resv;

static int on_resv(void *arg, const store_reservation *r, mu_error *errp)
{
    (void)errp;
    loaded_resv *l = arg;
    l->n++;
    snprintf(l->owner, sizeof(l->owner), "%s", r->owner);
    l->state = r->state;
    l->n_members = r->n_members;
    l->n_excluded = r->n_excluded;
    if (r->n_members > 1)
        l->member1 = r->members[1];
    l->price = r->price_uusd_per_hour;
    l->discount = r->discount_pct;
    return 0;
}

static int on_worker_skip(void *arg, const mu_id *id, const void *reg, size_t len,
                          uint64_t registered_at, const uptime *up, mu_error *errp)
{
    (void)arg, (void)id, (void)reg, (void)len, (void)registered_at, (void)up, (void)errp;
    return 0;
}

static int on_cluster_skip(void *arg, const store_cluster *c, mu_error *errp)
{
    (void)arg, (void)c, (void)errp;
    return 0;
}

static int on_cluster_resv(void *arg, const store_cluster *c, mu_error *errp)
{
    (void)errp;
    mu_id *out = arg;
    if (c->has_resv)
        out[0] = c->resv;
    return 0;
}

/* A schema 5 store migrates to 6; reservations (members, lost workers,
 * price) and the reservation a cluster was carved out of come back. */
static void test_reservations_round_trip(void **state)
{
    fixture *f = *state;
    mu_error err;
    store *st = store_open_version(f->path, true, 5, &err);
    assert_non_null(st);
    store_reservation r = {.id = make_id(7), .owner = "mgd", .spec = "", .end_reason = ""};
    assert_int_equal(store_put_reservation(st, &r, &err), -1); /* schema 5 has none */
    store_close(st);

    st = store_open(f->path, true, &err);
    assert_non_null(st);
    assert_int_equal(store_schema_version(st), 6);
    mu_id ms[3] = {make_id(1), make_id(2), make_id(3)}, ex = make_id(4);
    r.state = 1;
    r.spec = "SPEC";
    r.spec_len = 4;
    r.hours = 720;
    r.list_uusd_per_hour = 1000000;
    r.price_uusd_per_hour = 800000;
    r.discount_pct = 20;
    r.members = ms;
    r.n_members = 3;
    r.excluded = &ex;
    r.n_excluded = 1;
    assert_int_equal(store_begin(st, &err), 0);
    assert_int_equal(store_put_reservation(st, &r, &err), 0);
    store_cluster c = {.id = make_id(9), .owner = "x", .spec = "", .end_reason = ""};
    c.has_resv = true;
    c.resv = r.id;
    assert_int_equal(store_put_cluster(st, &c, &err), 0);
    assert_int_equal(store_commit(st, &err), 0);
    store_close(st);

    st = store_open(f->path, true, &err);
    assert_non_null(st);
    loaded_resv l = {0};
    mu_id carved[1];
    memset(carved, 0, sizeof(carved));
    assert_int_equal(store_load_all(st, on_worker_skip, on_resv, on_cluster_skip, &l, &err), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.owner, "mgd");
    assert_int_equal(l.n_members, 3);
    assert_true(id_equal(&l.member1, &ms[1]));
    assert_int_equal(l.n_excluded, 1);
    assert_int_equal(l.price, 800000);
    assert_int_equal(l.discount, 20);
    store_close(st);
    st = store_open(f->path, true, &err);
    assert_int_equal(store_load_all(st, on_worker_skip, NULL, on_cluster_resv, carved, &err), 0);
    assert_true(id_equal(&carved[0], &r.id));
    uint64_t n;
    assert_int_equal(store_count(st, "reservations", &n, &err), 0);
    assert_int_equal(n, 1);
    store_close(st);
}

/* A file that is not a store is refused, named, and left exactly as it was. */
static void test_damaged_file_left_alone(void **state)
{
    fixture *f = *state;
    mu_error err;
    char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 7 + 3);
    assert_int_equal(fs_write_atomic(f->path, junk, sizeof(junk), &err), 0);
    assert_null(store_open(f->path, true, &err));
    assert_non_null(strstr(err.text, f->path));
    size_t len;
    char *after = fs_read_file(f->path, 1 << 20, &len, &err);
    assert_non_null(after);
    assert_int_equal(len, sizeof(junk));
    assert_memory_equal(after, junk, sizeof(junk));
    free(after);

    /* A path in a directory that does not exist is an error, not a new store. */
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/musterd.db", f->dir);
    assert_null(store_open(missing, true, &err));
}

/* Writing past the cap fails like a full disk: an error, nothing half-saved. */
static void test_full_store_fails_cleanly(void **state)
{
    fixture *f = *state;
    mu_error err;
    store *st = store_open(f->path, false, &err);
    assert_non_null(st);
    assert_int_equal(store_set_max_bytes(st, 128 * 1024, &err), 0);
    static char blob[8192];
    memset(blob, 'x', sizeof(blob));
    uptime up = {0};
    int failed_at = -1;
    for (unsigned i = 0; i < 200 && failed_at < 0; i++) {
        mu_id id = make_id(i);
        id.b[1] = (uint8_t)(i >> 8);
        if (store_begin(st, &err) < 0 ||
            store_put_worker(st, &id, blob, sizeof(blob), i, &up, &err) < 0 ||
            store_commit(st, &err) < 0) {
            failed_at = (int)i;
            store_rollback(st);
        }
    }
    assert_true(failed_at > 0);
    assert_non_null(strstr(err.text, "full"));
    uint64_t n;
    assert_int_equal(store_count(st, "workers", &n, &err), 0);
    assert_int_equal(n, (uint64_t)failed_at); /* every commit before it, none after */
    assert_int_equal(store_check(st, &err), 0);
    store_close(st);
}

static void test_check_finds_orphans(void **state)
{
    fixture *f = *state;
    mu_error err;
    store *st = store_open(f->path, true, &err);
    mu_id w1 = make_id(1), ghost = make_id(2);
    uptime up = {0};
    assert_int_equal(store_begin(st, &err), 0);
    assert_int_equal(store_put_worker(st, &w1, "R", 1, 1, &up, &err), 0);
    put_cluster(st, 1, &w1, &ghost, 2); /* ghost was never a worker */
    assert_int_equal(store_commit(st, &err), 0);
    assert_int_equal(store_check(st, &err), -1);
    assert_non_null(strstr(err.text, "not known workers"));
    store_close(st);
}

typedef struct tasks_loaded {
    unsigned n;
    uint32_t numbers[8];
    int states[8];
    uint32_t attempts[8], result_len[8];
    size_t lost_on[8];
    char reasons[8][32];
    mu_id workers[8];
    uint64_t log_total[8];
} tasks_loaded;

static int on_task(void *arg, const store_task *t, mu_error *errp)
{
    (void)errp;
    tasks_loaded *l = arg;
    if (l->n >= 8)
        return -1;
    l->numbers[l->n] = t->number;
    l->states[l->n] = t->state;
    l->attempts[l->n] = t->attempts;
    l->result_len[l->n] = t->result_len;
    l->lost_on[l->n] = t->n_lost_on;
    l->workers[l->n] = t->worker;
    l->log_total[l->n] = t->log_total;
    snprintf(l->reasons[l->n], sizeof(l->reasons[0]), "%s", t->reason);
    l->n++;
    return 0;
}

/* Tasks (schema 4): saved at each change, replaced in place, loaded in
 * number order with their output; a store of schema 3 migrates to them. */
static void test_tasks_round_trip(void **state)
{
    fixture *f = *state;
    mu_error err;
    store *st = store_open_version(f->path, true, 3, &err);
    assert_non_null(st);
    mu_id w1 = make_id(1), w2 = make_id(2);
    uptime up = {0};
    assert_int_equal(store_begin(st, &err), 0);
    assert_int_equal(store_put_worker(st, &w1, "R", 1, 1, &up, &err), 0);
    assert_int_equal(store_put_worker(st, &w2, "R", 1, 1, &up, &err), 0);
    put_cluster(st, 1, &w1, &w2, 2);
    assert_int_equal(store_commit(st, &err), 0);
    store_task t = {.cluster = make_id(101), .number = 0, .spec = "TS", .spec_len = 2};
    assert_int_equal(store_put_task(st, &t, &err), -1); /* schema 3 has no tasks */
    store_close(st);

    st = store_open(f->path, true, &err);
    assert_non_null(st);
    assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
    assert_int_equal(store_begin(st, &err), 0);
    for (uint32_t i = 0; i < 3; i++) {
        t.number = 2 - i; /* out of order: the load sorts */
        t.state = 1;
        t.reason = "queued";
        assert_int_equal(store_put_task(st, &t, &err), 0);
    }
    mu_id lost[2] = {w2, w1};
    t.number = 1;
    t.state = 3;
    t.attempts = 2;
    t.worker = w1;
    t.lost_on = lost;
    t.n_lost_on = 2;
    t.reason = "member lost; requeued";
    t.log_total = 12345;
    assert_int_equal(store_put_task(st, &t, &err), 0); /* replaces task 1 */
    assert_int_equal(store_put_task_output(st, &t.cluster, 1, "RESULT", 6, "tail", 4, 12341, &err),
                     0);
    assert_int_equal(store_commit(st, &err), 0);
    assert_int_equal(store_check(st, &err), 0);

    tasks_loaded l = {0};
    assert_int_equal(store_load_tasks(st, on_task, &l, &err), 0);
    assert_int_equal(l.n, 3);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(l.numbers[i], i);
    assert_int_equal(l.states[1], 3);
    assert_int_equal(l.attempts[1], 2);
    assert_int_equal(l.lost_on[1], 2);
    assert_int_equal(l.result_len[1], 6);
    assert_int_equal(l.result_len[0], 0);
    assert_int_equal(l.log_total[1], 12345);
    assert_memory_equal(&l.workers[1], &w1, sizeof(w1));
    assert_string_equal(l.reasons[1], "member lost; requeued");
    assert_string_equal(l.reasons[0], "queued");

    uint8_t *res, *log;
    size_t rlen, llen;
    uint64_t off;
    assert_int_equal(store_get_task_output(st, &t.cluster, 1, &res, &rlen, &log, &llen, &off, &err),
                     0);
    assert_int_equal(rlen, 6);
    assert_memory_equal(res, "RESULT", 6);
    assert_int_equal(llen, 4);
    assert_memory_equal(log, "tail", 4);
    assert_int_equal(off, 12341);
    free(res);
    free(log);
    assert_int_equal(store_get_task_output(st, &t.cluster, 0, &res, &rlen, &log, &llen, &off, &err),
                     0);
    assert_null(res);
    assert_int_equal(rlen + llen, 0);

    uint64_t n;
    assert_int_equal(store_count(st, "tasks", &n, &err), 0);
    assert_int_equal(n, 3);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrates_from_schema_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_file_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_store_fails_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_finds_orphans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reservations_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
