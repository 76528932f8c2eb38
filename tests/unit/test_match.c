/* test_match.c - the matcher: each constraint, all-or-nothing and minimum
 * counts, the scoring order, pack and spread, the "why not" explanation and
 * the alternatives offered, validation, and the indexed matcher agreeing
 * with the naive scan, also on one bucket of thousands of workers and on
 * ties the index's keys cannot break. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "schedfix.h"

#define T0 1000000000ull

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

/* Run both matchers; they must agree. Returns the count. */
static size_t find(schedfix *f, const match_request *rq, uint32_t *out)
{
    uint32_t naive[MATCH_MAX_WORKERS];
    size_t n = match_find(sched_index(f->s), sched_registry_const(f->s), rq, out);
    size_t m = match_find_naive(sched_registry_const(f->s), rq, naive);
    assert_int_equal(n, m);
    assert_memory_equal(out, naive, n * sizeof(uint32_t));
    return n;
}

static unsigned host_no(schedfix *f, uint32_t slot)
{
    unsigned n;
    sscanf(registry_at(sched_registry(f->s), slot)->hostname, "w%u", &n);
    return n;
}

static void test_each_constraint(void **state)
{
    schedfix *f = *state;
    schedfix_add(f, 0, "RTX 4090", 1, "DE", 500, 400, 0, T0);      /* medium, europe */
    schedfix_add(f, 1, "RTX 3090", 1, "DE", 500, 400, 0, T0);      /* other model */
    schedfix_add(f, 2, "RTX 4090", 1, "US", 500, 400, 0, T0);      /* other region */
    schedfix_add(f, 3, "RTX 4090", 1, "FR", 150, 100, 0, T0);      /* tier low */
    schedfix_add(f, 4, "RTX 4090", 2, "FR", 900, 700, 0, T0);      /* 2 GPUs, high */
    schedfix_add(f, 5, "RTX 4090", 1, "FR", 500, 400, 900000, T0); /* expensive */
    schedfix_add(f, 6, "RTX 4090", 1, "JP", 50, 50, 0, T0);        /* tier none: never */
    uint32_t out[16];

    match_request rq = schedfix_request(f, "RTX 4090", 1, 1);
    rq.workers = rq.min_workers = 16;
    rq.min_workers = 1;
    size_t n = find(f, &rq, out);
    assert_int_equal(n, 5); /* every 4090 with a tier: 0, 2, 3, 4, 5 */
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(host_no(f, out[i]), 6);

    rq.gpus_per_worker = 2; /* only worker 4 */
    assert_int_equal(find(f, &rq, out), 1);
    assert_int_equal(host_no(f, out[0]), 4);
    rq.gpus_per_worker = 1;

    rq.min_tier = TIER_MEDIUM; /* drops 3 */
    assert_int_equal(find(f, &rq, out), 4);
    rq.regions = schedfix_region(f, "europe"); /* drops 2 */
    assert_int_equal(find(f, &rq, out), 3);
    memcpy(rq.countries[0], "DE", 3);
    rq.n_countries = 1; /* only 0 */
    assert_int_equal(find(f, &rq, out), 1);
    assert_int_equal(host_no(f, out[0]), 0);
    rq.n_countries = 0;
    rq.max_price_uusd = 800000; /* drops 5 */
    assert_int_equal(find(f, &rq, out), 2);
    rq.min_uptime = 0.9f; /* new workers start at 0.5 */
    assert_int_equal(find(f, &rq, out), 0);
}

static void test_gang_and_minimum(void **state)
{
    schedfix *f = *state;
    for (unsigned i = 0; i < 3; i++)
        schedfix_add(f, i, "H100", 8, "US", 2000, 1500, 0, T0);
    uint32_t out[16];
    match_request rq = schedfix_request(f, "H100", 8, 4);
    assert_int_equal(find(f, &rq, out), 0); /* all or nothing: 3 < 4 */
    rq.min_workers = 2;
    assert_int_equal(find(f, &rq, out), 3); /* as many as there are, >= 2 */
    rq.min_workers = 4;
    rq.workers = 3;
    mu_error err;
    assert_int_equal(match_validate(&rq, f->cat, &err), -1); /* min > workers */
}

/* Higher uptime first, then cheaper, then better connected, then by id;
 * fewer surplus GPUs before all of those. */
static void test_scoring_order(void **state)
{
    schedfix *f = *state;
    /* Worker 0 is online for a week: its uptime rises above the others'. */
    schedfix_add(f, 0, "A100 80GB", 1, "DE", 500, 400, 500000, T0);
    char id[ID_TEXT_LEN];
    schedfix_id(0, id);
    mu_id id0;
    id_parse(id, &id0);
    for (unsigned h = 1; h <= 24 * 7; h++)
        assert_int_equal(sched_touch(f->s, &id0, T0 + h * 3600000ull), 0);
    uint64_t now = T0 + 24 * 7 * 3600000ull;
    schedfix_add(f, 1, "A100 80GB", 1, "DE", 500, 400, 300000, now); /* cheaper */
    schedfix_add(f, 2, "A100 80GB", 1, "DE", 500, 400, 400000, now);
    schedfix_add(f, 3, "A100 80GB", 1, "DE", 900, 700, 400000, now); /* same price, faster */
    schedfix_add(f, 4, "A100 80GB", 2, "DE", 500, 400, 100000, now); /* cheapest, 1 GPU spare */
    schedfix_add(f, 5, "A100 80GB", 1, "DE", 900, 700, 400000, now); /* ties 3 but for id */
    assert_true(registry_get(sched_registry(f->s), &id0)->uptime > 0.9f);

    uint32_t out[8];
    match_request rq = schedfix_request(f, "A100 80GB", 1, 6);
    assert_int_equal(find(f, &rq, out), 6);
    unsigned want[] = {0, 1, 3, 5, 2, 4};
    for (size_t i = 0; i < 6; i++)
        if (host_no(f, out[i]) != want[i])
            fail_msg("position %zu: worker %u, expected %u", i, host_no(f, out[i]), want[i]);
    rq.min_uptime = 0.9f;
    rq.workers = rq.min_workers = 1;
    assert_int_equal(find(f, &rq, out), 1);
    assert_int_equal(host_no(f, out[0]), 0);
}

static void test_pack_and_spread(void **state)
{
    schedfix *f = *state;
    const char *where[] = {"DE", "FR", "NL", "US", "US", "CA", "US", "US", "JP"};
    for (unsigned i = 0; i < 9; i++)
        schedfix_add(f, i, "RTX 4090", 1, where[i], 500, 400, 0, T0);
    uint32_t out[16];
    match_request rq = schedfix_request(f, "RTX 4090", 1, 4);
    rq.placement = PLACE_PACK; /* north-america has 5, europe 3 */
    assert_int_equal(find(f, &rq, out), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(registry_at(sched_registry(f->s), out[i])->region, "north-america");
    rq.workers = rq.min_workers = 6; /* no region has 6 */
    assert_int_equal(find(f, &rq, out), 0);
    rq.placement = PLACE_SPREAD;
    assert_int_equal(find(f, &rq, out), 6);
    /* round-robin: each of the three regions gives 2 */
    int per[3] = {0};
    for (size_t i = 0; i < 6; i++) {
        const char *r = registry_at(sched_registry(f->s), out[i])->region;
        per[!strcmp(r, "europe") ? 0 : !strcmp(r, "north-america") ? 1 : 2]++;
    }
    /* japan's one worker, and the other five as evenly as round-robin gives */
    assert_int_equal(per[2], 1);
    assert_true(per[0] == 2 || per[0] == 3);
    assert_true(per[1] == 2 || per[1] == 3);
    assert_int_equal(per[0] + per[1] + per[2], 6);
}

static bool has_alt(const match_explain *why, const char *flags)
{
    for (size_t i = 0; i < why->n_alt; i++)
        if (!strcmp(why->alt[i].flags, flags))
            return true;
    return false;
}

static void test_why_not_and_alternatives(void **state)
{
    schedfix *f = *state;
    unsigned n = 0;
    for (unsigned i = 0; i < 5; i++) /* 5 medium in europe */
        schedfix_add(f, n++, "RTX 4090", 1, "DE", 500, 400, 0, T0);
    for (unsigned i = 0; i < 4; i++) /* 4 low in europe */
        schedfix_add(f, n++, "RTX 4090", 1, "FR", 150, 100, 0, T0);
    for (unsigned i = 0; i < 8; i++) /* 8 medium in north america */
        schedfix_add(f, n++, "RTX 4090", 1, "US", 500, 400, 0, T0);
    match_request rq = schedfix_request(f, "RTX 4090", 1, 8);
    rq.regions = schedfix_region(f, "europe");
    rq.min_tier = TIER_MEDIUM;
    rq.placement = PLACE_PACK;
    uint32_t out[16];
    assert_int_equal(find(f, &rq, out), 0);
    match_explain why;
    match_explain_failure(sched_index(f->s), sched_registry_const(f->s), &rq, &why);
    assert_string_equal(why.constraint, "tier");
    assert_int_equal(why.available, 5);
    assert_string_equal(why.text,
                        "5 of 8 workers with 1x RTX 4090 in europe at tier medium or better");
    assert_true(has_alt(&why, "--bandwidth low"));        /* 5 + 4 >= 8 */
    assert_true(has_alt(&why, "--region north-america")); /* 8 there */
    assert_true(has_alt(&why, "--workers 5"));
    for (size_t i = 0; i < why.n_alt; i++) {
        /* every alternative offered really succeeds */
        match_request alt = rq;
        if (!strcmp(why.alt[i].flags, "--bandwidth low"))
            alt.min_tier = TIER_LOW;
        else if (!strcmp(why.alt[i].flags, "--region north-america"))
            alt.regions = schedfix_region(f, "north-america");
        else if (!strcmp(why.alt[i].flags, "--workers 5"))
            alt.workers = alt.min_workers = 5;
        else
            continue;
        assert_true(find(f, &alt, out) >= alt.min_workers);
    }

    /* An unknown-to-the-fleet model ran out first. */
    match_request none = schedfix_request(f, "H200", 1, 1);
    match_explain_failure(sched_index(f->s), sched_registry_const(f->s), &none, &why);
    assert_string_equal(why.constraint, "model");
    assert_int_equal(why.available, 0);
    assert_string_equal(why.text, "0 of 1 workers with 1x H200");

    /* Price ran out: the alternative names the price that would do. */
    match_request cheap = schedfix_request(f, "RTX 4090", 1, 3);
    cheap.max_price_uusd = 100000;
    match_explain_failure(sched_index(f->s), sched_registry_const(f->s), &cheap, &why);
    assert_string_equal(why.constraint, "price");
    char flags[64];
    snprintf(flags, sizeof(flags), "--max-price 0.51"); /* 4090 medium default */
    assert_true(has_alt(&why, flags));
}

static void test_validation(void **state)
{
    schedfix *f = *state;
    mu_error err;
    match_request ok = schedfix_request(f, "T4", 1, 2);
    assert_int_equal(match_validate(&ok, f->cat, &err), 0);
    match_request rq = ok;
    rq.workers = 0;
    assert_int_equal(match_validate(&rq, f->cat, &err), -1);
    assert_non_null(strstr(err.text, "workers"));
    rq = ok;
    rq.workers = MATCH_MAX_WORKERS + 1;
    assert_int_equal(match_validate(&rq, f->cat, &err), -1);
    rq = ok;
    rq.gpus_per_worker = 0;
    assert_int_equal(match_validate(&rq, f->cat, &err), -1);
    assert_non_null(strstr(err.text, "GPUs per worker"));
    rq = ok;
    rq.min_uptime = 1.5f;
    assert_int_equal(match_validate(&rq, f->cat, &err), -1);
    assert_non_null(strstr(err.text, "uptime"));
    rq = ok;
    rq.min_uptime = -0.1f;
    assert_int_equal(match_validate(&rq, f->cat, &err), -1);
    rq = ok;
    rq.min_tier = TIER_NONE;
    assert_int_equal(match_validate(&rq, f->cat, &err), -1);
    rq = ok;
    rq.n_models = 0;
    assert_int_equal(match_validate(&rq, f->cat, &err), -1);
    rq = ok;
    rq.models[0] = (uint16_t)catalog_index(f->cat, catalog_find(f->cat, "CPU"));
    assert_int_equal(match_validate(&rq, f->cat, &err), -1);
    assert_non_null(strstr(err.text, "not a GPU"));
    rq = ok;
    rq.models[0] = 9999;
    assert_int_equal(match_validate(&rq, f->cat, &err), -1);
}

/* Workers of unknown region serve only requests that name no region, and
 * never a packed one. */
static void test_unknown_region(void **state)
{
    schedfix *f = *state;
    schedfix_add(f, 0, "T4", 1, "", 500, 400, 0, T0);
    uint32_t out[4];
    match_request rq = schedfix_request(f, "T4", 1, 1);
    assert_int_equal(find(f, &rq, out), 1);
    rq.placement = PLACE_PACK;
    assert_int_equal(find(f, &rq, out), 0);
    rq.placement = PLACE_SPREAD;
    rq.regions = schedfix_region(f, "europe");
    assert_int_equal(find(f, &rq, out), 0);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* One bucket far larger than an index block (128 workers), filed, refiled
 * (uptime classes moving as time passes, prices changing at
 * re-registration) and emptied again: blocks split, merge and go away, and
 * after every round the index passes its own check and both matchers agree,
 * with and without a price cap, on requests that reach deep into the
 * bucket. */
#define BIG 3000

static void test_large_bucket(void **state)
{
    schedfix *f = *state;
    uint64_t seed = 77, now = T0;
    bool up[BIG] = {false};
    for (unsigned n = 0; n < BIG; n++) {
        schedfix_add(f, n, "RTX 4090", 1, "DE", 500, 400, 100000 + (n * 7919u % 13) * 10000, now);
        up[n] = true;
    }
    schedfix_check(f);
    assert_int_equal(index_count(sched_index(f->s)), BIG);
    assert_int_equal(index_bucket_count(sched_index(f->s)), 1);
    for (unsigned round = 0; round < 40; round++) {
        now += 1000 + xorshift(&seed) % (12 * 3600 * 1000);
        unsigned keep = round < 30 ? 95 : 40; /* the last rounds thin the bucket out */
        for (unsigned n = 0; n < BIG; n++) {
            mu_id id;
            char text[ID_TEXT_LEN];
            schedfix_id(n, text);
            assert_int_equal(id_parse(text, &id), 0);
            unsigned r = (unsigned)(xorshift(&seed) % 100);
            /* Prefetch hints, right, wrong, absent or out of range, change
             * nothing: the checks and matches below would see it. */
            const worker *known = registry_get(sched_registry_const(f->s), &id);
            uint32_t hints[] = {known ? known->slot : n, n + 1, UINT32_MAX, BIG * 4};
            for (int stage = 0; stage < 3; stage++)
                sched_prefetch(f->s, &id, hints[r % 4], (prefetch_for)(r / 4 % 2), stage);
            if (up[n] && r >= keep) {
                assert_int_equal(sched_goodbye(f->s, &id, now, "left"), 0);
                up[n] = false;
            } else if (up[n] && r < 5) { /* back with a new price */
                schedfix_add(f, n, "RTX 4090", 1, "DE", 500, 400,
                             100000 + (uint32_t)(xorshift(&seed) % 40) * 5000, now);
            } else if (up[n]) {
                assert_int_equal(sched_touch(f->s, &id, now), 0);
            } else if (round < 30 && r < 30) {
                schedfix_add(f, n, "RTX 4090", 1, "DE", 500, 400,
                             100000 + (uint32_t)(xorshift(&seed) % 40) * 5000, now);
                up[n] = true;
            }
        }
        sched_tick(f->s, now);
        schedfix_check(f);
        match_request rq = schedfix_request(f, "RTX 4090", 1, 1);
        uint32_t out[MATCH_MAX_WORKERS];
        rq.workers = rq.min_workers = 1 + (uint32_t)(xorshift(&seed) % 64);
        rq.max_price_uusd = round % 2 ? 0 : 105000 + (uint32_t)(xorshift(&seed) % 8) * 5000;
        size_t got = find(f, &rq, out);
        size_t live = 0;
        for (unsigned n = 0; n < BIG; n++)
            live += up[n];
        if (!rq.max_price_uusd && live >= rq.workers)
            assert_int_equal(got, rq.workers);
    }
    /* Everyone leaves: every block goes. */
    for (unsigned n = 0; n < BIG; n++) {
        if (!up[n])
            continue;
        mu_id id;
        char text[ID_TEXT_LEN];
        schedfix_id(n, text);
        assert_int_equal(id_parse(text, &id), 0);
        assert_int_equal(sched_goodbye(f->s, &id, now, "left"), 0);
    }
    schedfix_check(f);
    assert_int_equal(index_count(sched_index(f->s)), 0);
    assert_null(index_first(sched_index(f->s), 0));
}

/* What the index's one-number comparison cannot tell apart is ordered all
 * the same: ids that share their first 8 bytes, and bandwidths past what
 * its key holds. Walks, and so matches, must still follow the full order. */
static void test_ties_past_the_key(void **state)
{
    schedfix *f = *state;
    uint64_t seed = 5;
    for (unsigned n = 0; n < 300; n++) {
        char id[ID_TEXT_LEN], host[32];
        /* The first 150 share the 8 bytes "0000abcd-0000-4000"; the rest
         * differ there and have bandwidths of 40 to 46 Tbit/s. */
        if (n < 150)
            snprintf(id, sizeof(id), "0000abcd-0000-4000-8000-%012x", n + 1);
        else
            snprintf(id, sizeof(id), "%08x-0000-4000-8000-000000000001", n + 1);
        snprintf(host, sizeof(host), "w%u", n);
        worker_device_spec dev = {.model_claim = "RTX 4090"};
        worker_spec spec = {.id = id,
                            .hostname = host,
                            .devices = &dev,
                            .n_devices = 1,
                            .country = "DE",
                            .bw_down_mbps = n < 150 ? 500 : 40000000 + (n * 7919u % 7) * 1000000,
                            .bw_up_mbps = 400,
                            .price_uusd = 100000 + (uint32_t)(xorshift(&seed) % 3) * 5000};
        mu_error err;
        if (!sched_register(f->s, &spec, T0, &err))
            fail_msg("register %u: %s", n, err.text);
    }
    schedfix_check(f); /* the walks follow index_compare on the records */
    for (unsigned round = 0; round < 20; round++) {
        match_request rq = schedfix_request(f, "RTX 4090", 1, 1);
        rq.workers = rq.min_workers = 1 + (uint32_t)(xorshift(&seed) % 64);
        rq.max_price_uusd = round % 2 ? 0 : 100000 + (uint32_t)(round % 3) * 5000;
        uint32_t out[MATCH_MAX_WORKERS];
        size_t got = find(f, &rq, out);
        if (!rq.max_price_uusd)
            assert_int_equal(got, rq.workers);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_constraint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gang_and_minimum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scoring_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_and_spread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_why_not_and_alternatives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_region, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_bucket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ties_past_the_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
