/* test_rng.c - the simulator's building blocks: the seeded generator and
 * its samplers, distribution specs, weighted mixes, interned strings and
 * the line/field tools. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "dist.h"
#include "mix.h"
#include "rng.h"
#include "strtab.h"
#include "testutil.h"
#include "textio.h"

static void test_rng_reference(void **state)
{
    (void)state;
    /* splitmix64's published first outputs for seed 1234567. */
    uint64_t s = 1234567;
    assert_true(rng_splitmix64(&s) == 6457827717110365317ull);
    assert_true(rng_splitmix64(&s) == 3203168211198807973ull);
    /* xoshiro256** seeded by splitmix64(42), as computed by an independent
     * Python transcription of the reference code: the same numbers on
     * every machine. */
    rng ref;
    rng_seed(&ref, 42);
    assert_true(rng_next(&ref) == 1546998764402558742ull);
    assert_true(rng_next(&ref) == 6990951692964543102ull);
    assert_true(rng_next(&ref) == 12544586762248559009ull);
    /* Same seed, same sequence; another seed or stream, another one. */
    rng a, b, c, d;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    rng_seed(&c, 43);
    rng_seed_stream(&d, 42, 1);
    int same_c = 0, same_d = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = rng_next(&a);
        assert_true(x == rng_next(&b));
        same_c += x == rng_next(&c);
        same_d += x == rng_next(&d);
    }
    assert_int_equal(same_c, 0);
    assert_int_equal(same_d, 0);
    /* Streams (seed, i) differ from (seed + 1, i - 1). */
    rng_seed_stream(&a, 5, 7);
    rng_seed_stream(&b, 6, 6);
    assert_true(rng_next(&a) != rng_next(&b));
}

static void test_rng_ranges(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 7);
    double sum = 0;
    unsigned hist[10] = {0};
    for (int i = 0; i < 100000; i++) {
        double u = rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
        double p = rng_uniform_pos(&r);
        assert_true(p > 0 && p < 1);
        sum += u;
        hist[rng_below(&r, 10)]++;
    }
    assert_true(fabs(sum / 100000 - 0.5) < 0.01);
    for (int i = 0; i < 10; i++)
        assert_true(hist[i] > 9500 && hist[i] < 10500);
}

static void test_samplers(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 11);
    const int n = 200000;
    double se = 0, sw = 0, sl = 0, sn = 0, sn2 = 0;
    for (int i = 0; i < n; i++) {
        se += rng_exponential(&r, 3.0);
        sw += rng_weibull(&r, 0.7, 5.0);
        sl += rng_lognormal(&r, 1.0, 0.5);
        double z = rng_normal(&r);
        sn += z;
        sn2 += z * z;
    }
    assert_true(fabs(se / n - 3.0) < 0.05);
    assert_true(fabs(sw / n - 5.0 * tgamma(1 + 1 / 0.7)) < 0.1);
    assert_true(fabs(sl / n - exp(1.0 + 0.125)) < 0.05);
    assert_true(fabs(sn / n) < 0.01);
    assert_true(fabs(sn2 / n - 1.0) < 0.02);
}

static void test_dist(void **state)
{
    (void)state;
    dist d;
    mu_error err;
    char buf[64];
    assert_int_equal(dist_parse("weibull:0.7,5", &d, &err), 0);
    assert_int_equal(d.kind, DIST_WEIBULL);
    assert_true(d.a == 0.7 && d.b == 5);
    dist_format(&d, buf, sizeof(buf));
    assert_string_equal(buf, "weibull:0.7,5");
    assert_int_equal(dist_parse("lognormal:-1,2", &d, &err), 0);
    assert_true(fabs(dist_mean(&d) - exp(-1 + 2)) < 1e-12);
    assert_int_equal(dist_parse("exp:4", &d, &err), 0);
    assert_true(dist_mean(&d) == 4);
    assert_int_equal(dist_parse("const:2.5", &d, &err), 0);
    rng r;
    rng_seed(&r, 1);
    assert_true(dist_sample(&d, &r) == 2.5);
    /* uniform: parsed, drawn inside (LO, HI), formatted back */
    assert_int_equal(dist_parse("uniform:0.3,0.7", &d, &err), 0);
    assert_int_equal(d.kind, DIST_UNIFORM);
    assert_true(fabs(dist_mean(&d) - 0.5) < 1e-12);
    for (int i = 0; i < 1000; i++) {
        double x = dist_sample(&d, &r);
        assert_true(x > 0.3 && x < 0.7);
    }
    dist_format(&d, buf, sizeof(buf));
    assert_string_equal(buf, "uniform:0.3,0.7");
    /* a change of unit scales every draw, so the mean too */
    static const char *const specs[] = {"exp:2", "weibull:0.7,3", "lognormal:0.5,0.8", "const:3",
                                        "uniform:1,2"};
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        assert_int_equal(dist_parse(specs[i], &d, &err), 0);
        dist s = dist_scale(&d, 3600);
        assert_true(fabs(dist_mean(&s) / dist_mean(&d) - 3600) < 1e-9);
        rng r1, r2;
        rng_seed(&r1, 3);
        rng_seed(&r2, 3);
        assert_true(fabs(dist_sample(&s, &r1) / dist_sample(&d, &r2) - 3600) < 1e-6);
    }
    static const char *const bad[] = {
        "weibull",   "weibull:0.7",   "weibull:0.7,5,1", "weibull:-1,5", "weibull:1,0",
        "gamma:1,2", "lognormal:1,0", "exp:0",           "exp:x",        "exp:1,",
        "",          "exp:nan",       "uniform:2,1",     "uniform:-1,1", "uniform:1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.text[0] = '\0';
        assert_int_equal(dist_parse(bad[i], &d, &err), -1);
        assert_true(strlen(err.text) > 0);
    }
}

static void test_mix(void **state)
{
    (void)state;
    mu_error err;
    mix *m = mix_parse(" RTX 4090 :3, A100 80GB:1", false, "--gpus", &err);
    assert_non_null(m);
    assert_int_equal(mix_count(m), 2);
    assert_string_equal(mix_name(m, 0), "RTX 4090");
    assert_string_equal(mix_name(m, 1), "A100 80GB");
    assert_int_equal(mix_pick(m, 0.0), 0);
    assert_int_equal(mix_pick(m, 0.74), 0);
    assert_int_equal(mix_pick(m, 0.76), 1);
    assert_int_equal(mix_pick(m, 0.999999), 1);
    mix_destroy(m);
    m = mix_parse("US:4:-5,DE:3:1,JP:2", true, "countries", &err);
    assert_non_null(m);
    assert_true(mix_extra(m, 0, 0) == -5);
    assert_true(mix_extra(m, 2, 99) == 99);
    mix_destroy(m);
    m = mix_parse_counts("1:6,8:1", 1024, "counts", &err);
    assert_non_null(m);
    assert_int_equal(mix_count_at(m, 1), 8);
    mix_destroy(m);
    static const char *const bad[] = {"", "a", "a:0", "a:-1", "a:1,a:2", ":1", "a:1:2", "a:x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.text[0] = '\0';
        assert_null(mix_parse(bad[i], false, "--mix", &err));
        assert_non_null(strstr(err.text, "--mix"));
    }
    assert_null(mix_parse_counts("0:1", 8, "counts", &err));
    assert_null(mix_parse_counts("9:1", 8, "counts", &err));
    assert_null(mix_parse_counts("two:1", 8, "counts", &err));
    mix_destroy(NULL);
}

static void test_strtab(void **state)
{
    (void)state;
    strtab *t = strtab_create();
    assert_non_null(t);
    char name[32];
    uint32_t id;
    int added;
    for (uint32_t i = 0; i < 50000; i++) {
        snprintf(name, sizeof(name), "node-%u", i);
        assert_int_equal(strtab_intern(t, name, &id, &added), 0);
        assert_int_equal(id, i);
        assert_int_equal(added, 1);
    }
    const char *p7 = strtab_at(t, 7);
    for (uint32_t i = 0; i < 50000; i += 97) {
        snprintf(name, sizeof(name), "node-%u", i);
        assert_int_equal(strtab_intern(t, name, &id, &added), 0);
        assert_int_equal(id, i);
        assert_int_equal(added, 0);
        assert_string_equal(strtab_at(t, i), name);
    }
    /* Pointers stay valid as the table grows. */
    assert_ptr_equal(strtab_at(t, 7), p7);
    assert_int_equal(strtab_find(t, "nope", &id), -1);
    assert_int_equal(errno, ENOENT);
    assert_null(strtab_at(t, 50000));
    assert_int_equal(strtab_count(t), 50000);
    /* A failed intern leaves the table as it was. */
    for (size_t n = 1; n < 4; n++) {
        test_fail_alloc_after(n);
        int rc = strtab_intern(t, "brand new and long enough", &id, NULL);
        test_fail_alloc_after(0);
        if (rc == 0)
            break;
        assert_int_equal(errno, ENOMEM);
        assert_int_equal(strtab_count(t), 50000);
        assert_int_equal(strtab_find(t, "brand new and long enough", &id), -1);
    }
    strtab_destroy(t);
    strtab_destroy(NULL);
}

static void test_textio(void **state)
{
    (void)state;
    char buf[] = "a,b\r\n\n  x \t y  z\nlast";
    line_cursor c;
    lines_init(&c, buf, strlen(buf));
    char *l = lines_next(&c);
    assert_string_equal(l, "a,b");
    assert_int_equal(c.line, 1);
    char *f[4];
    assert_int_equal(split_char(l, ',', f, 4), 2);
    assert_string_equal(f[1], "b");
    l = lines_next(&c);
    assert_string_equal(l, "");
    assert_true(text_is_blank(l));
    l = lines_next(&c);
    assert_int_equal(split_blanks(l, f, 4), 3);
    assert_string_equal(f[0], "x");
    assert_string_equal(f[2], "z");
    l = lines_next(&c);
    assert_string_equal(l, "last");
    assert_int_equal(c.line, 4);
    assert_null(lines_next(&c));
    char many[] = "1,2,3,4,5,6";
    assert_int_equal(split_char(many, ',', f, 4), 6);
    int64_t v;
    assert_int_equal(text_to_i64("-12", -100, 100, &v), 0);
    assert_true(v == -12);
    assert_int_equal(text_to_i64("12x", -100, 100, &v), -1);
    assert_int_equal(text_to_i64("", -100, 100, &v), -1);
    assert_int_equal(text_to_i64("101", -100, 100, &v), -1);

    sbuf b;
    sbuf_init(&b);
    for (int i = 0; i < 1000; i++)
        sbuf_printf(&b, "%d,", i);
    assert_false(sbuf_failed(&b));
    assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
    assert_int_equal(b.len, strlen(b.data));
    /* A failed append is sticky. */
    test_fail_alloc_after(1);
    char big[9000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sbuf_puts(&b, big);
    test_fail_alloc_after(0);
    sbuf_puts(&b, "y");
    assert_true(sbuf_failed(&b));
    mu_error err;
    assert_int_equal(sbuf_write_out(&b, "/tmp/never-written", &err), -1);
    sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_reference), cmocka_unit_test(test_rng_ranges),
        cmocka_unit_test(test_samplers),      cmocka_unit_test(test_dist),
        cmocka_unit_test(test_mix),           cmocka_unit_test(test_strtab),
        cmocka_unit_test(test_textio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
