/* test_idmap.c - the hash map under the registry: checked against a plain
 * array model through a long random run of puts, gets and removes (which is
 * what exercises backward-shift deletion), plus its error cases. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "idmap.h"
#include "testutil.h"

/* xorshift64*: a seeded generator, so every run checks the same sequence. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

#define KEYS 2000

static void test_matches_model(void **state)
{
    (void)state;
    idmap *m = idmap_create();
    assert_non_null(m);
    static uint8_t keys[KEYS][16];
    static int64_t model[KEYS]; /* -1: absent */
    uint64_t seed = 42;
    for (int i = 0; i < KEYS; i++) {
        /* Few distinct bytes: plenty of collisions in the probe runs. */
        memset(keys[i], 0, 16);
        keys[i][0] = (uint8_t)(i & 0xff);
        keys[i][1] = (uint8_t)(i >> 8);
        model[i] = -1;
    }
    size_t count = 0;
    for (int step = 0; step < 200000; step++) {
        int k = (int)(rng_next(&seed) % KEYS);
        int op = (int)(rng_next(&seed) % 3);
        uint32_t v;
        if (op == 0) {
            uint32_t nv = (uint32_t)rng_next(&seed);
            assert_int_equal(idmap_put(m, keys[k], 16, nv), 0);
            if (model[k] < 0)
                count++;
            model[k] = nv;
        } else if (op == 1) {
            int rc = idmap_remove(m, keys[k], 16);
            assert_int_equal(rc, model[k] < 0 ? -1 : 0);
            if (model[k] >= 0)
                count--;
            model[k] = -1;
        } else {
            int rc = idmap_get(m, keys[k], 16, &v);
            if (model[k] < 0) {
                assert_int_equal(rc, -1);
                assert_int_equal(errno, ENOENT);
            } else {
                assert_int_equal(rc, 0);
                assert_int_equal(v, (uint32_t)model[k]);
            }
        }
        assert_int_equal(idmap_count(m), count);
    }
    /* Every key agrees with the model at the end. */
    for (int k = 0; k < KEYS; k++) {
        uint32_t v;
        int rc = idmap_get(m, keys[k], 16, &v);
        assert_int_equal(rc, model[k] < 0 ? -1 : 0);
        if (model[k] >= 0)
            assert_int_equal(v, (uint32_t)model[k]);
    }
    /* Load factor stays at or below 1/2: memory is linear in the count. */
    assert_true(idmap_bytes(m) <= 4 * 48 * (count + 16));
    idmap_destroy(m);
}

static void test_key_lengths(void **state)
{
    (void)state;
    idmap *m = idmap_create();
    uint8_t k[IDMAP_KEY_MAX + 1] = {1, 2, 3};
    uint32_t v;
    assert_int_equal(idmap_put(m, k, 0, 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(idmap_put(m, k, IDMAP_KEY_MAX + 1, 1), -1);
    assert_int_equal(errno, EINVAL);
    /* "ab" and "abc" are different keys even with a shared prefix */
    assert_int_equal(idmap_put(m, "ab", 2, 1), 0);
    assert_int_equal(idmap_put(m, "abc", 3, 2), 0);
    assert_int_equal(idmap_get(m, "ab", 2, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(idmap_get(m, "abc", 3, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(idmap_get(m, k, IDMAP_KEY_MAX + 1, &v), -1);
    idmap_destroy(m);
    idmap_destroy(NULL);
}

/* A failed grow leaves the map as it was. */
static void test_allocation_failure(void **state)
{
    (void)state;
    idmap *m = idmap_create();
    uint32_t i;
    for (i = 0; i < 8; i++)
        assert_int_equal(idmap_put(m, &i, sizeof(i), i), 0);
    test_fail_alloc_after(1);
    int rc = idmap_put(m, &i, sizeof(i), i); /* 9th: needs to grow past 16 slots */
    test_fail_alloc_after(0);
    assert_int_equal(rc, -1);
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(idmap_count(m), 8);
    for (uint32_t j = 0; j < 8; j++) {
        uint32_t v;
        assert_int_equal(idmap_get(m, &j, sizeof(j), &v), 0);
        assert_int_equal(v, j);
    }
    idmap_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_model),
        cmocka_unit_test(test_key_lengths),
        cmocka_unit_test(test_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
