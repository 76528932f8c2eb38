/* test_fit.c - maximum-likelihood fits: a known answer (computed
 * independently by bisection in Python), parameters recovered from large
 * synthetic samples, the right family winning on AIC, and bad samples. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "alloc.h"
#include "fit.h"
#include "rng.h"

#define N 20000

static void assert_close(double got, double want, double rel)
{
    if (!(fabs(got - want) <= rel * fabs(want)))
        fail_msg("%.10g is not within %g%% of %.10g", got, rel * 100, want);
}

static void test_known_answer(void **state)
{
    (void)state;
    const double x[] = {0.5, 1, 2, 3, 4, 5, 10};
    fit_result f[FIT_FAMILIES];
    int best = fit_all(x, 7, f);
    assert_true(f[FIT_WEIBULL].ok);
    assert_close(f[FIT_WEIBULL].p1, 1.2438378087775508, 1e-9);
    assert_close(f[FIT_WEIBULL].p2, 3.917464936395688, 1e-9);
    assert_close(f[FIT_WEIBULL].loglik, -15.801518035627788, 1e-9);
    assert_close(f[FIT_LOGNORMAL].p1, 0.9138470936023066, 1e-12);
    assert_close(f[FIT_LOGNORMAL].p2, 0.9362569836003317, 1e-12);
    assert_close(f[FIT_LOGNORMAL].loglik, -15.868442392233423, 1e-12);
    assert_close(f[FIT_EXPONENTIAL].p1, 3.642857142857143, 1e-12);
    assert_close(f[FIT_EXPONENTIAL].loglik, -16.049378121763468, 1e-12);
    /* AIC: exponential 34.10, weibull 35.60, lognormal 35.74 */
    assert_close(f[FIT_EXPONENTIAL].aic, 2 + 2 * 16.049378121763468, 1e-12);
    assert_int_equal(best, FIT_EXPONENTIAL);
    char spec[64];
    fit_format_spec(&f[FIT_WEIBULL], spec, sizeof(spec));
    assert_string_equal(spec, "weibull:1.244,3.917");
}

typedef double (*draw_fn)(rng *r);

static double draw_weibull(rng *r)
{
    return rng_weibull(r, 0.7, 5.0);
}

static double draw_lognormal(rng *r)
{
    return rng_lognormal(r, 1.5, 0.8);
}

static double draw_exponential(rng *r)
{
    return rng_exponential(r, 3.0);
}

static int fit_sample(draw_fn draw, uint64_t seed, fit_result f[FIT_FAMILIES])
{
    double *x = mu_malloc(N * sizeof(*x));
    assert_non_null(x);
    rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < N; i++)
        x[i] = draw(&r);
    int best = fit_all(x, N, f);
    mu_free(x);
    return best;
}

static void test_weibull_recovered(void **state)
{
    (void)state;
    fit_result f[FIT_FAMILIES];
    int best = fit_sample(draw_weibull, 1, f);
    assert_close(f[FIT_WEIBULL].p1, 0.7, 0.02);
    assert_close(f[FIT_WEIBULL].p2, 5.0, 0.03);
    assert_true(f[FIT_WEIBULL].iterations < 50);
    assert_int_equal(best, FIT_WEIBULL);
}

static void test_lognormal_recovered(void **state)
{
    (void)state;
    fit_result f[FIT_FAMILIES];
    int best = fit_sample(draw_lognormal, 2, f);
    assert_close(f[FIT_LOGNORMAL].p1, 1.5, 0.02);
    assert_close(f[FIT_LOGNORMAL].p2, 0.8, 0.02);
    assert_int_equal(best, FIT_LOGNORMAL);
}

static void test_exponential_recovered(void **state)
{
    (void)state;
    fit_result f[FIT_FAMILIES];
    int best = fit_sample(draw_exponential, 3, f);
    assert_close(f[FIT_EXPONENTIAL].p1, 3.0, 0.03);
    /* Weibull contains the exponential (shape 1): its shape says so, and
     * its one extra parameter costs more AIC than it gains. */
    assert_close(f[FIT_WEIBULL].p1, 1.0, 0.02);
    assert_int_equal(best, FIT_EXPONENTIAL);
}

/* The scale of the values does not matter (the solver works on shifted
 * logs): seconds or hours, the shape is the same. */
static void test_units(void **state)
{
    (void)state;
    double x[500];
    rng r;
    rng_seed(&r, 4);
    for (int i = 0; i < 500; i++)
        x[i] = rng_weibull(&r, 0.4, 1e7); /* huge values: x^k would overflow unshifted at k=50 */
    fit_result a, b;
    assert_int_equal(fit_weibull(x, 500, &a, NULL), 0);
    for (int i = 0; i < 500; i++)
        x[i] /= 3600.0;
    assert_int_equal(fit_weibull(x, 500, &b, NULL), 0);
    assert_close(a.p1, b.p1, 1e-9);
    assert_close(a.p2 / 3600.0, b.p2, 1e-9);
    /* log-likelihoods differ by n ln(3600), the same for every family */
    assert_close(b.loglik - a.loglik, 500 * log(3600.0), 1e-9);
}

static void test_bad_samples(void **state)
{
    (void)state;
    fit_result f;
    mu_error err;
    const double one[] = {1};
    const double same[] = {2, 2, 2};
    const double zero[] = {1, 0, 2};
    const double neg[] = {1, -1};
    const double inf[] = {1, INFINITY};
    assert_int_equal(fit_exponential(one, 1, &f, &err), -1);
    assert_false(f.ok);
    assert_int_equal(fit_weibull(same, 3, &f, &err), -1);
    assert_non_null(strstr(err.text, "equal"));
    assert_int_equal(fit_lognormal(same, 3, &f, &err), -1);
    assert_int_equal(fit_exponential(same, 3, &f, &err), 0); /* a mean is a mean */
    assert_int_equal(fit_weibull(zero, 3, &f, &err), -1);
    assert_int_equal(fit_lognormal(neg, 2, &f, &err), -1);
    assert_int_equal(fit_exponential(inf, 2, &f, &err), -1);
    fit_result all[FIT_FAMILIES];
    assert_int_equal(fit_all(one, 1, all), -1);
    assert_int_equal(fit_all(same, 3, all), FIT_EXPONENTIAL);
    char spec[16];
    fit_format_spec(&all[FIT_WEIBULL], spec, sizeof(spec));
    assert_string_equal(spec, "");
    assert_string_equal(fit_family_name(FIT_LOGNORMAL), "lognormal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_weibull_recovered),
        cmocka_unit_test(test_lognormal_recovered),
        cmocka_unit_test(test_exponential_recovered),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_bad_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
