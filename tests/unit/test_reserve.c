/* test_reserve.c - reservations in the scheduler core: filling (all or
 * nothing, a minimum), NOT_MET with nothing reserved, priority over
 * self-service, replacement of lost members (reserved or in use by a
 * cluster), clusters carved out of a reservation that use only its workers
 * and give them back, release, expiry, the commitment discount, and bad
 * input. sched_check after every step. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "pricing.h"
#include "schedfix.h"

#define T0   1000000000ull
#define HOUR 3600000ull

static int setup(void **state)
{
    *state = schedfix_create();
    return 0;
}

static int teardown(void **state)
{
    schedfix_destroy(*state);
    return 0;
}

static mu_id xid(char kind, unsigned n)
{
    char text[ID_TEXT_LEN];
    snprintf(text, sizeof(text), "%c%07x-0000-4000-8000-000000000000", kind, n & 0xfffffffu);
    mu_id id;
    assert_int_equal(id_parse(text, &id), 0);
    return id;
}

static mu_id wid(unsigned n)
{
    char text[ID_TEXT_LEN];
    schedfix_id(n, text);
    mu_id id;
    id_parse(text, &id);
    return id;
}

static void add(schedfix *f, unsigned from, unsigned to, const char *model)
{
    for (unsigned i = from; i < to; i++)
        schedfix_add(f, i, model, 1, "DE", 500, 400, 0, T0);
}

static const reservation *reserve(schedfix *f, unsigned n, unsigned workers, unsigned min,
                                  uint32_t hours)
{
    match_request rq = schedfix_request(f, "RTX 4090", 1, workers);
    rq.min_workers = min;
    mu_id id = xid('a', n);
    match_explain why;
    mu_error err;
    const reservation *r =
        sched_reservation_create(f->s, &id, "broker", &rq, hours, T0, &why, &err);
    schedfix_check(f);
    return r;
}

/* The fixture number of a worker. */
static unsigned num_of(const worker *w)
{
    for (unsigned i = 0; i < 64; i++) {
        mu_id id = wid(i);
        if (id_equal(&id, &w->id))
            return i;
    }
    fail_msg("not a fixture worker");
    return 0;
}

static bool is_member(const reservation *r, const worker *w)
{
    return resv_member_index(r, w->slot) >= 0;
}

static void test_fill_and_price(void **state)
{
    schedfix *f = *state;
    add(f, 0, 6, "RTX 4090");
    const reservation *r = reserve(f, 1, 4, 4, 24 * 30);
    assert_non_null(r);
    assert_int_equal(r->state, RESV_ACTIVE);
    assert_int_equal(r->n_members, 4);
    assert_int_equal(r->discount_pct, 20);
    assert_int_equal(r->price_uusd_per_hour, r->list_uusd_per_hour / 100 * 80);
    assert_int_equal(index_count(sched_index(f->s)), 2); /* self-service sees only 2 */
    for (uint32_t i = 0; i < r->n_members; i++)
        assert_int_equal(registry_at(sched_registry(f->s), r->members[i])->alloc, WORKER_RESERVED);
    assert_int_equal(sched_reservation_in_use(f->s, r), 0);
    assert_ptr_equal(sched_reservation_find(f->s, "a000"), r);
}

static void test_discount_rule(void **state)
{
    (void)state;
    assert_int_equal(pricing_commitment_discount_pct(1), 0);
    assert_int_equal(pricing_commitment_discount_pct(167), 0);
    assert_int_equal(pricing_commitment_discount_pct(168), 10);
    assert_int_equal(pricing_commitment_discount_pct(719), 10);
    assert_int_equal(pricing_commitment_discount_pct(720), 20);
    assert_int_equal(pricing_commitment_discount_pct(2160), 30);
    assert_int_equal(pricing_commitment_uusd(1000000, 2160), 700000);
    assert_int_equal(pricing_commitment_uusd(1000001, 168), 900000);
}

static void test_not_met_reserves_nothing(void **state)
{
    schedfix *f = *state;
    add(f, 0, 2, "RTX 4090");
    match_request rq = schedfix_request(f, "RTX 4090", 1, 4);
    mu_id id = xid('a', 1);
    match_explain why;
    mu_error err;
    assert_null(sched_reservation_create(f->s, &id, "broker", &rq, 10, T0, &why, &err));
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(why.available, 2);
    assert_int_equal(sched_reservation_count(f->s), 0);
    assert_int_equal(index_count(sched_index(f->s)), 2);
    schedfix_check(f);
    /* a minimum fill of 2 is met */
    const reservation *r = reserve(f, 2, 4, 2, 10);
    assert_non_null(r);
    assert_int_equal(r->n_members, 2);
    assert_int_not_equal(r->short_at, 0);
}

static void test_bad_input(void **state)
{
    schedfix *f = *state;
    add(f, 0, 2, "RTX 4090");
    match_request rq = schedfix_request(f, "RTX 4090", 1, 2);
    rq.min_workers = 3; /* more than wanted */
    mu_id id = xid('a', 1);
    mu_error err;
    assert_null(sched_reservation_create(f->s, &id, "b", &rq, 10, T0, NULL, &err));
    assert_int_equal(errno, EINVAL);
    rq.min_workers = 2;
    assert_null(sched_reservation_create(f->s, &id, "b", &rq, 0, T0, NULL, &err));
    assert_int_equal(errno, EINVAL);
    assert_null(sched_reservation_create(f->s, &id, "b", &rq, 100000, T0, NULL, &err));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(sched_reservation_count(f->s), 0);
    assert_non_null(sched_reservation_create(f->s, &id, "b", &rq, 10, T0, NULL, &err));
    assert_null(sched_reservation_create(f->s, &id, "b", &rq, 10, T0, NULL, &err));
    assert_int_equal(errno, EEXIST);
    mu_id other = xid('a', 9);
    assert_int_equal(sched_reservation_extend(f->s, &other, 1, T0, &err), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(sched_reservation_extend(f->s, &id, 100000, T0, &err), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(sched_reservation_extend(f->s, &id, 5, T0, &err), 0);
    assert_int_equal(sched_reservation_get(f->s, &id)->hours, 15);
    assert_int_equal(sched_reservation_get(f->s, &id)->ends_at, T0 + 15 * HOUR);
    assert_int_equal(sched_reservation_release(f->s, &id, T0, NULL, &err), 0);
    assert_int_equal(sched_reservation_release(f->s, &id, T0, NULL, &err), -1);
    assert_int_equal(errno, ESTALE);
    schedfix_check(f);
}

static void test_priority_over_self_service(void **state)
{
    schedfix *f = *state;
    add(f, 0, 4, "RTX 4090");
    match_request rq = schedfix_request(f, "RTX 4090", 1, 2);
    mu_id cid = xid('c', 1);
    mu_error err;
    const cluster *c = sched_cluster_create(f->s, &cid, "alice", &rq, 5, T0, NULL, &err);
    assert_non_null(c);
    /* a reservation never takes workers out of a running cluster */
    const reservation *r = reserve(f, 1, 4, 2, 10);
    assert_non_null(r);
    assert_int_equal(r->n_members, 2);
    for (uint32_t i = 0; i < c->n_members; i++)
        assert_false(is_member(r, registry_at(sched_registry(f->s), c->members[i].worker)));
    /* the cluster ends: its workers go to the reservation, not to the pool */
    assert_int_equal(sched_cluster_release(f->s, &cid, T0 + 1000, NULL, &err), 0);
    schedfix_check(f);
    assert_int_equal(r->n_members, 4);
    assert_int_equal(r->short_at, 0);
    assert_int_equal(index_count(sched_index(f->s)), 0);
    mu_id c2 = xid('c', 2);
    match_explain why;
    assert_null(sched_cluster_create(f->s, &c2, "bob", &rq, 5, T0 + 2000, &why, &err));
    assert_int_equal(errno, ENOSPC);
    /* a new worker goes to a reservation short of workers first */
    const reservation *r2 = reserve(f, 2, 3, 0, 10);
    assert_null(r2); /* min 0 is not a valid request */
    match_request rq2 = schedfix_request(f, "RTX 4090", 1, 3);
    rq2.min_workers = 1;
    add(f, 10, 11, "RTX 4090");
    mu_id rid2 = xid('a', 2);
    r2 = sched_reservation_create(f->s, &rid2, "broker", &rq2, 10, T0 + 3000, NULL, &err);
    assert_non_null(r2);
    assert_int_equal(r2->n_members, 1);
    add(f, 11, 12, "RTX 4090");
    schedfix_check(f);
    assert_int_equal(r2->n_members, 2);
    assert_int_equal(index_count(sched_index(f->s)), 0);
}

static void test_lost_member_replaced(void **state)
{
    schedfix *f = *state;
    add(f, 0, 5, "RTX 4090");
    const reservation *r = reserve(f, 1, 3, 3, 10);
    assert_non_null(r);
    const worker *lost = registry_at(sched_registry(f->s), r->members[0]);
    mu_id lid = lost->id;
    assert_int_equal(sched_goodbye(f->s, &lid, T0 + 1000, "killed"), 0);
    schedfix_check(f);
    assert_int_equal(r->n_members, 3);
    assert_false(is_member(r, lost));
    assert_int_equal(lost->alloc, WORKER_FREE);
    assert_int_equal(r->replaced, 1);
    assert_int_equal(index_count(sched_index(f->s)), 1);
    /* the lost worker comes back: not taken by this reservation again */
    schedfix_add(f, num_of(lost), "RTX 4090", 1, "DE", 500, 400, 0, T0 + 2000);
    schedfix_check(f);
    assert_false(is_member(r, lost));
    /* no free worker left for the next loss: short, tried again */
    const worker *lost2 = registry_at(sched_registry(f->s), r->members[1]);
    mu_id l2 = lost2->id;
    assert_int_equal(sched_goodbye(f->s, &l2, T0 + 3000, "killed"), 0);
    schedfix_check(f);
    assert_int_equal(r->n_members, 3); /* took the last free one, not the excluded one */
    assert_int_equal(index_count(sched_index(f->s)), 1);
    const worker *lost3 = registry_at(sched_registry(f->s), r->members[2]);
    mu_id l3 = lost3->id;
    assert_int_equal(sched_goodbye(f->s, &l3, T0 + 4000, "killed"), 0);
    schedfix_check(f);
    assert_int_equal(r->n_members, 2); /* the only free worker is excluded */
    assert_int_not_equal(r->short_at, 0);
    assert_true(sched_next_deadline(f->s) <= T0 + 4000 + SCHED_REROUTE_RETRY_DEFAULT_MS);
    add(f, 20, 21, "RTX 4090");
    schedfix_check(f);
    assert_int_equal(r->n_members, 3);
    assert_int_equal(r->short_at, 0);
}

static void test_sub_allocation(void **state)
{
    schedfix *f = *state;
    add(f, 0, 8, "RTX 4090");
    const reservation *r = reserve(f, 1, 4, 4, 48);
    assert_non_null(r);
    match_request rq = schedfix_request(f, "RTX 4090", 1, 2);
    mu_id rid = r->id, cid = xid('c', 1);
    mu_error err;
    match_explain why;
    const cluster *c =
        sched_cluster_create_from(f->s, &cid, "customer", &rq, 5, &rid, T0 + 1000, &why, &err);
    assert_non_null(c);
    schedfix_check(f);
    for (uint32_t i = 0; i < c->n_members; i++)
        assert_true(is_member(r, registry_at(sched_registry(f->s), c->members[i].worker)));
    assert_int_equal(sched_reservation_in_use(f->s, r), 2);
    assert_int_equal(index_count(sched_index(f->s)), 4); /* the pool is untouched */
    /* only 2 of its members are free: 3 cannot be carved out */
    match_request rq3 = schedfix_request(f, "RTX 4090", 1, 3);
    mu_id c3 = xid('c', 3);
    assert_null(sched_cluster_create_from(f->s, &c3, "x", &rq3, 5, &rid, T0 + 1000, &why, &err));
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(why.available, 2);
    assert_string_equal(why.constraint, "reservation");
    /* may not outlast the reservation */
    assert_null(sched_cluster_create_from(f->s, &c3, "x", &rq, 49, &rid, T0 + 1000, &why, &err));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(sched_cluster_extend(f->s, &cid, 48, T0 + 1000, &err), -1);
    mu_id none = xid('a', 7);
    assert_null(sched_cluster_create_from(f->s, &c3, "x", &rq, 1, &none, T0 + 1000, &why, &err));
    assert_int_equal(errno, ENOENT);
    schedfix_check(f);
    /* a member in use goes offline: the reservation takes one from the pool
     * and the cluster one from the reservation */
    const worker *m0 = registry_at(sched_registry(f->s), c->members[0].worker);
    mu_id m0id = m0->id;
    assert_int_equal(sched_goodbye(f->s, &m0id, T0 + 2000, "killed"), 0);
    schedfix_check(f);
    assert_false(is_member(r, m0));
    assert_int_equal(r->n_members, 4);
    assert_int_equal(c->members[0].worker != UINT32_MAX, true);
    assert_true(is_member(r, registry_at(sched_registry(f->s), c->members[0].worker)));
    assert_int_equal(sched_reservation_in_use(f->s, r), 2);
    assert_int_equal(index_count(sched_index(f->s)), 3);
    /* the cluster ends: its members go back to the reservation */
    assert_int_equal(sched_cluster_release(f->s, &cid, T0 + 3000, NULL, &err), 0);
    schedfix_check(f);
    assert_int_equal(sched_reservation_in_use(f->s, r), 0);
    assert_int_equal(r->n_members, 4);
    assert_int_equal(index_count(sched_index(f->s)), 3);
}

static void test_release_and_expiry(void **state)
{
    schedfix *f = *state;
    add(f, 0, 6, "RTX 4090");
    const reservation *r = reserve(f, 1, 4, 4, 10);
    const reservation *r2 = reserve(f, 2, 2, 2, 3);
    assert_non_null(r);
    assert_non_null(r2);
    assert_int_equal(index_count(sched_index(f->s)), 0);
    match_request rq = schedfix_request(f, "RTX 4090", 1, 1);
    mu_id rid = r->id, cid = xid('c', 1);
    mu_error err;
    const cluster *c =
        sched_cluster_create_from(f->s, &cid, "customer", &rq, 5, &rid, T0, NULL, &err);
    assert_non_null(c);
    uint32_t in_use = c->members[0].worker;
    /* release: 3 free members at once, the one in use when its cluster ends */
    assert_int_equal(sched_reservation_release(f->s, &rid, T0 + 1000, NULL, &err), 0);
    schedfix_check(f);
    assert_int_equal(r->state, RESV_RELEASED);
    assert_int_equal(r->n_members, 0);
    assert_int_equal(index_count(sched_index(f->s)), 3);
    assert_int_equal(registry_at(sched_registry(f->s), in_use)->alloc, WORKER_ALLOCATED);
    assert_int_equal(sched_cluster_release(f->s, &cid, T0 + 2000, NULL, &err), 0);
    schedfix_check(f);
    assert_int_equal(index_count(sched_index(f->s)), 4);
    /* expiry at the end of the commitment */
    assert_true(sched_next_deadline(f->s) <= T0 + 3 * HOUR);
    for (unsigned i = 0; i < 6; i++) { /* heartbeats: they stay online */
        mu_id id = wid(i);
        assert_int_equal(sched_touch(f->s, &id, T0 + 3 * HOUR), 0);
    }
    sched_tick(f->s, T0 + 3 * HOUR);
    schedfix_check(f);
    assert_int_equal(r2->state, RESV_EXPIRED);
    assert_int_equal(index_count(sched_index(f->s)), 6);
}

static void test_failed_verification_and_unfit(void **state)
{
    schedfix *f = *state;
    add(f, 0, 3, "RTX 4090");
    const reservation *r = reserve(f, 1, 2, 1, 10);
    assert_non_null(r);
    /* a member re-registers as another model: it leaves the reservation */
    const worker *w = registry_at(sched_registry(f->s), r->members[0]);
    schedfix_add(f, num_of(w), "RTX 3060", 1, "DE", 500, 400, 0, T0 + 1000);
    schedfix_check(f);
    assert_false(is_member(r, w));
    assert_int_equal(r->n_members, 2);
}

/* Thousands of random steps: reservations created, extended, released;
 * clusters self-service and carved out of reservations, released; workers
 * leaving, coming back, re-registering as another model; time passing.
 * Every invariant after every step. Deterministic (a fixed LCG). */
static void test_random_interleaving(void **state)
{
    schedfix *f = *state;
    uint64_t rng = 12345, now = T0;
#define RND(n)                                                                                     \
    ((unsigned)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 33) % (n))
    enum { W = 40 };
    bool online[W];
    for (unsigned i = 0; i < W; i++) {
        schedfix_add(f, i, "RTX 4090", 1, (const char *[]){"DE", "US", "JP"}[i % 3], 500, 400, 0,
                     now);
        online[i] = true;
    }
    unsigned n_resv = 0, n_clusters = 0, carved = 0, reserved = 0;
    mu_error err;
    for (unsigned step = 0; step < 4000; step++) {
        now += 1 + RND(60000); /* up to a minute: reservations and clusters expire */
        for (unsigned i = 0; i < W; i++)
            if (online[i]) {
                mu_id id = wid(i);
                sched_touch(f->s, &id, now);
            }
        switch (RND(10)) {
        case 0: { /* a reservation */
            match_request rq = schedfix_request(f, "RTX 4090", 1, 1 + RND(10));
            rq.min_workers = 1 + RND(rq.workers);
            mu_id id = xid('a', ++n_resv);
            reserved +=
                sched_reservation_create(f->s, &id, "b", &rq, 2 + RND(3), now, NULL, &err) != NULL;
            break;
        }
        case 1: { /* a self-service cluster */
            match_request rq = schedfix_request(f, "RTX 4090", 1, 1 + RND(4));
            mu_id id = xid('c', ++n_clusters);
            sched_cluster_create(f->s, &id, "s", &rq, 1 + RND(2), now, NULL, &err);
            break;
        }
        case 2: { /* a cluster carved out of a reservation */
            if (!n_resv)
                break;
            mu_id rid = xid('a', n_resv - RND(n_resv < 4 ? n_resv : 4)); /* a recent one */
            match_request rq = schedfix_request(f, "RTX 4090", 1, 1 + RND(3));
            mu_id id = xid('c', ++n_clusters);
            carved +=
                sched_cluster_create_from(f->s, &id, "b", &rq, 1, &rid, now, NULL, &err) != NULL;
            break;
        }
        case 3: { /* release something */
            if (RND(2) && n_resv) {
                mu_id id = xid('a', 1 + RND(n_resv));
                sched_reservation_release(f->s, &id, now, NULL, &err);
            } else if (n_clusters) {
                mu_id id = xid('c', 1 + RND(n_clusters));
                sched_cluster_release(f->s, &id, now, NULL, &err);
            }
            break;
        }
        case 4: { /* a worker leaves */
            unsigned i = RND(W);
            if (online[i]) {
                mu_id id = wid(i);
                sched_goodbye(f->s, &id, now, "bye");
                online[i] = false;
            }
            break;
        }
        case 5: { /* a worker (re-)registers, now and then as another model */
            unsigned i = RND(W);
            schedfix_add(f, i, RND(8) ? "RTX 4090" : "RTX 3060", 1, "DE", 500, 400, 0, now);
            online[i] = true;
            break;
        }
        case 6: { /* acknowledge joins */
            for (size_t k = 0; k < sched_cluster_count(f->s); k++) {
                const cluster *c = sched_cluster_at(f->s, k);
                for (uint32_t m = 0; cluster_active(c) && m < c->n_members; m++) {
                    const worker *w = registry_at(sched_registry(f->s), c->members[m].worker);
                    if (w)
                        sched_cluster_ack(f->s, &c->id, &w->id, now, NULL);
                }
            }
            break;
        }
        case 7:
            if (n_resv) {
                mu_id id = xid('a', 1 + RND(n_resv));
                sched_reservation_extend(f->s, &id, 1, now, &err);
            }
            break;
        default:
            break;
        }
        sched_tick(f->s, now);
        if (sched_check(f->s, &err) < 0)
            fail_msg("step %u: %s", step, err.text);
    }
#undef RND
    assert_true(n_resv > 100 && n_clusters > 100);
    print_message("reserved %u, carved %u\n", reserved, carved);
    assert_true(reserved > 20 && carved > 20); /* the paths were taken */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fill_and_price, setup, teardown),
        cmocka_unit_test(test_discount_rule),
        cmocka_unit_test_setup_teardown(test_not_met_reserves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_over_self_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_member_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sub_allocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_verification_and_unfit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_interleaving, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
