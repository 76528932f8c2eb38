/* fit.c - see fit.h. */
#include "fit.h"

#include <math.h>
#include <stdio.h>

static int check_sample(const double *x, size_t n, fit_result *out, fit_family fam, mu_error *errp)
{
    *out = (fit_result){.family = fam, .n = n};
    if (n < 2)
        return errprintf(errp, "%s fit needs at least 2 values, got %zu", fit_family_name(fam), n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || !(x[i] > 0))
            return errprintf(errp, "%s fit: value %zu (%g) is not finite and > 0",
                             fit_family_name(fam), i, x[i]);
    return 0;
}

int fit_exponential(const double *x, size_t n, fit_result *out, mu_error *errp)
{
    if (check_sample(x, n, out, FIT_EXPONENTIAL, errp) < 0)
        return -1;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += x[i];
    double mean = sum / (double)n;
    out->p1 = mean;
    /* sum of ln(rate) - rate * x with rate = 1/mean */
    out->loglik = -(double)n * log(mean) - (double)n;
    out->aic = 2.0 * 1 - 2.0 * out->loglik;
    out->ok = true;
    return 0;
}

int fit_lognormal(const double *x, size_t n, fit_result *out, mu_error *errp)
{
    if (check_sample(x, n, out, FIT_LOGNORMAL, errp) < 0)
        return -1;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += log(x[i]);
    double mu = sum / (double)n;
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        double d = log(x[i]) - mu;
        ss += d * d;
    }
    double var = ss / (double)n;
    if (!(var > 0))
        return errprintf(errp, "lognormal fit: all %zu values are equal", n);
    double sigma = sqrt(var);
    out->p1 = mu;
    out->p2 = sigma;
    out->loglik =
        -sum - (double)n * log(sigma) - 0.5 * (double)n * log(2.0 * M_PI) - 0.5 * (double)n;
    out->aic = 2.0 * 2 - 2.0 * out->loglik;
    out->ok = true;
    return 0;
}

/* The Weibull profile equation g(k) and its derivative, on z = ln x - max
 * ln x <= 0 so that exp(k z) <= 1 never overflows, whatever the unit (the
 * equation is unchanged by the shift). z is recomputed from x at each step
 * rather than kept in a buffer: a log per value is cheap, and a fit that
 * needs no allocation cannot fail for lack of memory. */
static void weibull_g(const double *x, size_t n, double lmax, double zmean, double k, double *g,
                      double *dg)
{
    double b = 0, a = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
        double z = log(x[i]) - lmax;
        double e = exp(k * z);
        b += e;
        a += z * e;
        c += z * z * e;
    }
    double r = a / b;
    *g = r - 1.0 / k - zmean;
    *dg = c / b - r * r + 1.0 / (k * k);
}

int fit_weibull(const double *x, size_t n, fit_result *out, mu_error *errp)
{
    if (check_sample(x, n, out, FIT_WEIBULL, errp) < 0)
        return -1;
    double lmax = -INFINITY, lsum = 0, lsq = 0;
    for (size_t i = 0; i < n; i++) {
        double l = log(x[i]);
        lsum += l;
        if (l > lmax)
            lmax = l;
    }
    double lmean = lsum / (double)n;
    for (size_t i = 0; i < n; i++) {
        double d = log(x[i]) - lmean;
        lsq += d * d;
    }
    double lsd = sqrt(lsq / (double)n);
    if (!(lsd > 0))
        return errprintf(errp, "weibull fit: all %zu values are equal", n);
    double zmean = lmean - lmax;
    /* Start from the moment estimate on logs: sd(ln X) = pi / (k sqrt 6). */
    double k = M_PI / (sqrt(6.0) * lsd);
    double g, dg, lo = k, hi = k;
    /* g rises from -infinity (k -> 0) to a positive limit: halve and double
     * the start until it brackets the root. */
    weibull_g(x, n, lmax, zmean, lo, &g, &dg);
    for (int i = 0; g > 0 && i < 200; i++) {
        lo /= 2;
        weibull_g(x, n, lmax, zmean, lo, &g, &dg);
    }
    if (g > 0)
        return errprintf(errp, "weibull fit: no lower bracket for the shape");
    weibull_g(x, n, lmax, zmean, hi, &g, &dg);
    for (int i = 0; g < 0 && i < 200; i++) {
        hi *= 2;
        weibull_g(x, n, lmax, zmean, hi, &g, &dg);
    }
    if (g < 0)
        return errprintf(errp, "weibull fit: no upper bracket for the shape");
    int it;
    for (it = 0; it < 200; it++) {
        weibull_g(x, n, lmax, zmean, k, &g, &dg);
        if (g == 0)
            break;
        if (g < 0)
            lo = k;
        else
            hi = k;
        double next = k - g / dg;
        if (!(next > lo && next < hi))
            next = 0.5 * (lo + hi);
        double step = fabs(next - k);
        k = next;
        if (step <= 1e-12 * k || hi - lo <= 1e-12 * k)
            break;
    }
    double b = 0;
    for (size_t i = 0; i < n; i++)
        b += exp(k * (log(x[i]) - lmax));
    double lnscale = lmax + log(b / (double)n) / k;
    double sum_pow = 0;
    for (size_t i = 0; i < n; i++)
        sum_pow += exp(k * (log(x[i]) - lnscale));
    out->p1 = k;
    out->p2 = exp(lnscale);
    out->loglik = (double)n * log(k) - (double)n * k * lnscale + (k - 1.0) * lsum - sum_pow;
    out->aic = 2.0 * 2 - 2.0 * out->loglik;
    out->iterations = it + 1;
    out->ok = true;
    return 0;
}

int fit_all(const double *x, size_t n, fit_result out[FIT_FAMILIES])
{
    fit_exponential(x, n, &out[FIT_EXPONENTIAL], NULL);
    fit_weibull(x, n, &out[FIT_WEIBULL], NULL);
    fit_lognormal(x, n, &out[FIT_LOGNORMAL], NULL);
    int best = -1;
    for (int f = 0; f < FIT_FAMILIES; f++)
        if (out[f].ok && (best < 0 || out[f].aic < out[best].aic))
            best = f;
    return best;
}

const char *fit_family_name(fit_family f)
{
    switch (f) {
    case FIT_EXPONENTIAL:
        return "exponential";
    case FIT_WEIBULL:
        return "weibull";
    case FIT_LOGNORMAL:
        return "lognormal";
    case FIT_FAMILIES:
        break;
    }
    return "?";
}

void fit_format_spec(const fit_result *f, char *out, size_t n)
{
    if (!f->ok) {
        snprintf(out, n, "%s", "");
        return;
    }
    switch (f->family) {
    case FIT_EXPONENTIAL:
        snprintf(out, n, "exp:%.4g", f->p1);
        break;
    case FIT_WEIBULL:
        snprintf(out, n, "weibull:%.4g,%.4g", f->p1, f->p2);
        break;
    case FIT_LOGNORMAL:
        snprintf(out, n, "lognormal:%.4g,%.4g", f->p1, f->p2);
        break;
    case FIT_FAMILIES:
        snprintf(out, n, "%s", "");
        break;
    }
}
