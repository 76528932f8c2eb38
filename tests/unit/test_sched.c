/* test_sched.c - clusters through their life (provision, ready, degrade,
 * extend, release, expire, fail), and a randomized run of thousands of
 * interleaved creates, releases, expiries, acknowledgements, worker arrivals
 * and departures with every invariant checked after every step. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

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

static mu_id cid(unsigned n)
{
    char text[ID_TEXT_LEN];
    snprintf(text, sizeof(text), "c%07x-0000-4000-8000-000000000000", n);
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

static void ack_all(schedfix *f, const cluster *c, uint64_t now)
{
    for (uint32_t i = 0; i < c->n_members; i++) {
        const worker *w = registry_at(sched_registry(f->s), c->members[i].worker);
        assert_int_equal(sched_cluster_ack(f->s, &c->id, &w->id, now, NULL), 0);
    }
}

static void test_lifecycle(void **state)
{
    schedfix *f = *state;
    for (unsigned i = 0; i < 6; i++)
        schedfix_add(f, i, "RTX 4090", 2, "DE", 500, 400, 0, T0);
    match_request rq = schedfix_request(f, "RTX 4090", 2, 4);
    mu_error err;
    match_explain why;
    sched_quote q;
    assert_int_equal(sched_quote_request(f->s, &rq, 6, &q, &why, &err), 0);
    assert_int_equal(q.workers, 4);
    assert_int_equal(q.gpus, 8);
    assert_int_equal(q.total_uusd, q.per_hour_uusd * 6);
    assert_int_equal(f->joins, 0); /* a quote reserves nothing */

    mu_id id = cid(1);
    const cluster *c = sched_cluster_create(f->s, &id, "alice", &rq, 6, T0, &why, &err);
    assert_non_null(c);
    assert_int_equal(c->state, CLUSTER_PROVISIONING);
    assert_int_equal(c->n_members, 4);
    assert_int_equal(c->price_uusd_per_hour, q.per_hour_uusd);
    assert_int_equal(f->joins, 4);
    assert_int_equal(index_count(sched_index(f->s)), 2);
    schedfix_check(f);

    /* the same id twice is refused */
    assert_null(sched_cluster_create(f->s, &id, "alice", &rq, 6, T0, &why, &err));
    assert_int_equal(errno, EEXIST);
    /* only 2 workers left: a second cluster of 4 cannot be met */
    mu_id id2 = cid(2);
    assert_null(sched_cluster_create(f->s, &id2, "bob", &rq, 6, T0, &why, &err));
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(why.available, 2);
    schedfix_check(f);

    /* a worker outside the cluster cannot acknowledge for it */
    mu_id outsider = wid(5);
    const worker *w5 = registry_get(sched_registry(f->s), &outsider);
    if (w5->alloc == WORKER_FREE) {
        assert_int_equal(sched_cluster_ack(f->s, &id, &outsider, T0, &err), -1);
        assert_int_equal(errno, EPERM);
    }
    ack_all(f, c, T0 + 100);
    assert_int_equal(c->state, CLUSTER_READY);
    assert_int_equal(c->ready_at, T0 + 100);
    assert_string_equal(f->last_topic, "cluster.ready");

    assert_int_equal(sched_cluster_extend(f->s, &id, 2, T0 + 200, &err), 0);
    assert_int_equal(c->ends_at, T0 + 8 * HOUR);
    assert_int_equal(sched_cluster_extend(f->s, &id, SCHED_MAX_HOURS_DEFAULT, T0, &err), -1);

    assert_int_equal(sched_cluster_release(f->s, &id, T0 + 300, NULL, &err), 0);
    assert_int_equal(c->state, CLUSTER_RELEASED);
    assert_int_equal(f->leaves, 4);
    assert_int_equal(index_count(sched_index(f->s)), 6);
    assert_int_equal(sched_cluster_release(f->s, &id, T0 + 400, NULL, &err), -1);
    assert_int_equal(errno, ESTALE);
    schedfix_check(f);
}

static void test_expiry_and_provisioning_timeout(void **state)
{
    schedfix *f = *state;
    for (unsigned i = 0; i < 4; i++)
        schedfix_add(f, i, "T4", 1, "US", 500, 400, 0, T0);
    match_request rq = schedfix_request(f, "T4", 1, 2);
    mu_id a = cid(1), b = cid(2);
    const cluster *ca = sched_cluster_create(f->s, &a, "x", &rq, 1, T0, NULL, NULL);
    const cluster *cb = sched_cluster_create(f->s, &b, "x", &rq, 1, T0, NULL, NULL);
    assert_non_null(ca);
    assert_non_null(cb);
    ack_all(f, ca, T0 + 10);
    /* b's members never answer: it fails at the provisioning timeout */
    assert_int_equal(sched_next_deadline(f->s) <= T0 + SCHED_PROVISION_TIMEOUT_DEFAULT_MS, 1);
    /* keep the workers alive while time passes */
    for (unsigned i = 0; i < 4; i++) {
        mu_id w = wid(i);
        sched_touch(f->s, &w, T0 + SCHED_PROVISION_TIMEOUT_DEFAULT_MS);
    }
    sched_tick(f->s, T0 + SCHED_PROVISION_TIMEOUT_DEFAULT_MS);
    assert_int_equal(cb->state, CLUSTER_FAILED);
    assert_non_null(strstr(cb->end_reason, "2 of 2 members did not acknowledge"));
    assert_int_equal(ca->state, CLUSTER_READY);
    schedfix_check(f);
    for (unsigned i = 0; i < 4; i++) {
        mu_id w = wid(i);
        sched_touch(f->s, &w, T0 + HOUR);
    }
    sched_tick(f->s, T0 + HOUR);
    assert_int_equal(ca->state, CLUSTER_EXPIRED);
    assert_int_equal(sched_clusters_active(f->s), 0);
    assert_int_equal(index_count(sched_index(f->s)), 4);
    schedfix_check(f);
}

static void test_member_lost_and_replaced(void **state)
{
    schedfix *f = *state;
    for (unsigned i = 0; i < 4; i++)
        schedfix_add(f, i, "L40S", 1, "NL", 900, 700, 0, T0);
    match_request rq = schedfix_request(f, "L40S", 1, 3);
    mu_id id = cid(7);
    const cluster *c = sched_cluster_create(f->s, &id, "x", &rq, 4, T0, NULL, NULL);
    ack_all(f, c, T0);
    /* Which worker was left out: it is the replacement. */
    unsigned spare = 4;
    for (unsigned i = 0; i < 4; i++) {
        mu_id w = wid(i);
        if (registry_get(sched_registry(f->s), &w)->alloc == WORKER_FREE)
            spare = i;
    }
    assert_true(spare < 4);
    mu_id lost = wid(spare == 0 ? 1 : 0);
    size_t joins = f->joins;
    assert_int_equal(sched_goodbye(f->s, &lost, T0 + 1000, "stopped"), 0);
    /* Degraded, and the spare is told to join at once. */
    assert_int_equal(c->state, CLUSTER_DEGRADED);
    assert_int_equal(f->joins, joins + 1);
    assert_int_equal(c->replaced, 1);
    schedfix_check(f);
    mu_id sp = wid(spare);
    assert_int_equal(sched_cluster_ack(f->s, &id, &sp, T0 + 1100, NULL), 0);
    assert_int_equal(c->state, CLUSTER_READY);
    /* The lost worker comes back: free, not seated again in this cluster. */
    schedfix_add(f, spare == 0 ? 1 : 0, "L40S", 1, "NL", 900, 700, 0, T0 + 2000);
    assert_int_equal(f->joins, joins + 1);
    assert_int_equal(registry_get(sched_registry(f->s), &lost)->alloc, WORKER_FREE);
    assert_int_equal(index_count(sched_index(f->s)), 1);
    schedfix_check(f);
}

/* --- the randomized run ---------------------------------------------------------------- */

static uint64_t rng(uint64_t *s);

/* An active cluster, searched from a random place; NULL if none. */
static const cluster *some_active(schedfix *f, uint64_t *seed)
{
    size_t k = sched_cluster_count(f->s);
    size_t start = k ? rng(seed) % k : 0;
    for (size_t i = 0; i < k; i++) {
        const cluster *c = sched_cluster_at(f->s, (start + i) % k);
        if (cluster_active(c))
            return c;
    }
    return NULL;
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

#define POOL 300

static void test_randomized_invariants(void **state)
{
    schedfix *f = *state;
    static const char *const models[] = {"RTX 4090", "RTX 3090", "H100", "A100 80GB"};
    static const char *const countries[] = {"DE", "FR", "US", "JP", "BR", ""};
    static const unsigned bws[][2] = {{150, 100}, {500, 400}, {900, 700}, {2000, 1500}};
    uint64_t seed = 20261121;
    uint64_t now = T0;
    bool alive[POOL] = {false};
    unsigned arrivals = 0, creates = 0, refused = 0, releases = 0, steps = 6000;
    unsigned next_cluster = 1;
    for (unsigned step = 0; step < steps; step++) {
        unsigned op = (unsigned)(rng(&seed) % 100);
        if (op < 25) { /* a worker arrives (new or returning) */
            unsigned n = (unsigned)(rng(&seed) % POOL);
            const unsigned *bw = bws[rng(&seed) % 4];
            schedfix_add(f, n, models[n % 4], 1 + (unsigned)(n % 3 == 0) * 7, countries[n % 6],
                         bw[0], bw[1], (uint32_t)(n % 5) * 100000u, now);
            arrivals += !alive[n];
            alive[n] = true;
        } else if (op < 35) { /* a worker leaves */
            unsigned n = (unsigned)(rng(&seed) % POOL);
            mu_id id = wid(n);
            if (alive[n])
                assert_int_equal(sched_goodbye(f->s, &id, now, "left"), 0);
            alive[n] = false;
        } else if (op < 60) { /* a cluster request */
            match_request rq = schedfix_request(f, models[rng(&seed) % 4], 1, 1);
            rq.gpus_per_worker = rng(&seed) % 4 ? 1 : 8;
            rq.workers = 1 + (uint32_t)(rng(&seed) % 6);
            rq.min_workers = rng(&seed) % 2 ? rq.workers : 1;
            rq.min_tier = (tier)(TIER_LOW + rng(&seed) % 3);
            rq.placement = rng(&seed) % 2 ? PLACE_PACK : PLACE_SPREAD;
            if (rng(&seed) % 3 == 0)
                rq.regions = schedfix_region(f, rng(&seed) % 2 ? "europe" : "north-america");
            if (rng(&seed) % 4 == 0)
                rq.max_price_uusd = 250000;
            /* the index and the scan must agree before anything is taken */
            uint32_t a[MATCH_MAX_WORKERS], b[MATCH_MAX_WORKERS];
            size_t na = match_find(sched_index(f->s), sched_registry_const(f->s), &rq, a);
            size_t nb = match_find_naive(sched_registry_const(f->s), &rq, b);
            assert_int_equal(na, nb);
            assert_memory_equal(a, b, na * sizeof(uint32_t));
            mu_id id = cid(next_cluster++);
            match_explain why;
            const cluster *c = sched_cluster_create(
                f->s, &id, "r", &rq, 1 + (uint32_t)(rng(&seed) % 3), now, &why, NULL);
            if (c) {
                creates++;
                assert_int_equal(c->n_members, na);
                if (rng(&seed) % 4) /* most members acknowledge */
                    ack_all(f, c, now);
            } else {
                refused++;
                assert_int_equal(errno, ENOSPC);
                assert_int_equal(na, 0);
                assert_true(why.available < rq.min_workers);
            }
        } else if (op < 70) { /* a release */
            const cluster *c = some_active(f, &seed);
            if (c) {
                assert_int_equal(sched_cluster_release(f->s, &c->id, now, NULL, NULL), 0);
                releases++;
            }
        } else if (op < 75) { /* an extension */
            const cluster *c = some_active(f, &seed);
            if (c)
                assert_int_equal(sched_cluster_extend(f->s, &c->id, 1, now, NULL), 0);
        } else { /* time passes; the living keep heartbeating */
            now += rng(&seed) % (40 * 60 * 1000);
            for (unsigned n = 0; n < POOL; n++) {
                if (alive[n]) {
                    mu_id id = wid(n);
                    assert_int_equal(sched_touch(f->s, &id, now), 0);
                }
            }
            sched_tick(f->s, now);
        }
        mu_error err;
        if (sched_check(f->s, &err) < 0)
            fail_msg("step %u: %s", step, err.text);
        /* counts add up */
        size_t free_online = 0;
        const registry *reg = sched_registry_const(f->s);
        for (size_t i = 0; i < registry_count(reg); i++)
            free_online += index_eligible(registry_at(reg, i));
        assert_int_equal(free_online, index_count(sched_index(f->s)));
    }
    size_t expired = 0;
    for (size_t k = 0; k < sched_cluster_count(f->s); k++)
        expired += sched_cluster_at(f->s, k)->state == CLUSTER_EXPIRED;
    print_message("randomized: %u steps, %u worker arrivals, %u clusters created, %u refused, "
                  "%u released, %zu expired\n",
                  steps, arrivals, creates, refused, releases, expired);
    /* the run exercised what it claims to */
    assert_true(creates > 300 && refused > 100 && releases > 100 && expired > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_and_provisioning_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_lost_and_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_randomized_invariants, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
