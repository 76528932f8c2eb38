/* fit.h - maximum-likelihood fits of interval lengths: exponential,
 * Weibull and lognormal, each with its log-likelihood and AIC so the family
 * that describes a sample best can be named.
 *
 * All three take the same sample of strictly positive lengths, so their
 * log-likelihoods are comparable; the unit is the caller's (analyze uses
 * hours, the unit of `generate`'s distribution specs) and shifts every
 * log-likelihood by the same n*ln(unit), leaving the ranking unchanged.
 *
 *   exponential  rate = 1/mean                         (closed form)
 *   weibull      shape k solves the profile likelihood equation
 *                  sum(x^k ln x)/sum(x^k) - 1/k - mean(ln x) = 0,
 *                increasing in k: Newton's method kept inside a bisection
 *                bracket; then scale = (mean(x^k))^(1/k)
 *   lognormal    mu = mean(ln x), sigma^2 = mean((ln x - mu)^2)  (closed form)
 *
 * AIC = 2 * parameters - 2 * log-likelihood; lower is better.
 */
#ifndef MUSTER_SIM_FIT_H
#define MUSTER_SIM_FIT_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef enum fit_family {
    FIT_EXPONENTIAL = 0,
    FIT_WEIBULL,
    FIT_LOGNORMAL,
    FIT_FAMILIES,
} fit_family;

typedef struct fit_result {
    fit_family family;
    bool ok;   /* false: the sample cannot be fitted (too small, all equal) */
    double p1; /* exponential: mean; weibull: shape k; lognormal: mu */
    double p2; /* weibull: scale lambda; lognormal: sigma; exponential: 0 */
    double loglik;
    double aic;
    size_t n;       /* sample size */
    int iterations; /* weibull: solver steps */
} fit_result;

/* Each returns 0 and fills *out, or -1 with the reason in errp (and
 * out->ok false): fewer than 2 values, a value that is not finite and > 0,
 * or (Weibull, lognormal) all values equal. */
int fit_exponential(const double *x, size_t n, fit_result *out, mu_error *errp);
int fit_weibull(const double *x, size_t n, fit_result *out, mu_error *errp);
int fit_lognormal(const double *x, size_t n, fit_result *out, mu_error *errp);

/* Fit all three into out[FIT_FAMILIES] (indexed by family). Returns the
 * family with the lowest AIC among those that fitted, or -1 if none did. */
int fit_all(const double *x, size_t n, fit_result out[FIT_FAMILIES]);

/* "exponential", "weibull", "lognormal". */
const char *fit_family_name(fit_family f);
/* The generate-style spec of a fit ("weibull:0.43,712.5"); "" when !ok. */
void fit_format_spec(const fit_result *f, char *out, size_t n);

#endif
