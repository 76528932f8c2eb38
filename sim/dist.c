/* dist.c - see dist.h. */
#include "dist.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "strutil.h"

static int parse_params(const char *spec, const char *rest, double *v, size_t want, mu_error *errp)
{
    char buf[128];
    if (str_copy(buf, rest, sizeof(buf)) >= sizeof(buf))
        return errprintf(errp, "distribution \"%.40s...\" is too long", spec);
    size_t n = 0;
    char *s = buf;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = '\0';
        if (n == want || str_to_double(s, &v[n]) < 0)
            goto bad;
        n++;
        if (!comma)
            break;
        s = comma + 1;
    }
    if (n != want)
        goto bad;
    return 0;
bad:
    return errprintf(errp, "distribution \"%s\": expected %zu number%s after the ':'", spec, want,
                     want == 1 ? "" : "s (comma-separated)");
}

int dist_parse(const char *spec, dist *out, mu_error *errp)
{
    static const struct {
        const char *name;
        dist_kind kind;
        size_t nparams;
    } kinds[] = {
        {"exp", DIST_EXPONENTIAL, 1},     {"weibull", DIST_WEIBULL, 2},
        {"lognormal", DIST_LOGNORMAL, 2}, {"const", DIST_CONSTANT, 1},
        {"uniform", DIST_UNIFORM, 2},
    };
    const char *colon = strchr(spec, ':');
    size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strlen(kinds[i].name) != nlen || strncmp(kinds[i].name, spec, nlen) != 0)
            continue;
        if (!colon)
            return errprintf(errp, "distribution \"%s\": parameters missing (e.g. %s)", spec,
                             kinds[i].nparams == 1 ? "exp:4" : "weibull:0.7,5");
        double v[2] = {0, 0};
        if (parse_params(spec, colon + 1, v, kinds[i].nparams, errp) < 0)
            return -1;
        dist d = {kinds[i].kind, v[0], v[1]};
        switch (d.kind) {
        case DIST_EXPONENTIAL:
        case DIST_CONSTANT:
            if (!(d.a > 0))
                return errprintf(errp, "distribution \"%s\": the value must be > 0", spec);
            break;
        case DIST_WEIBULL:
            if (!(d.a > 0 && d.b > 0))
                return errprintf(errp, "distribution \"%s\": shape and scale must be > 0", spec);
            break;
        case DIST_LOGNORMAL:
            if (!(d.b > 0))
                return errprintf(errp, "distribution \"%s\": sigma must be > 0", spec);
            break;
        case DIST_UNIFORM:
            if (!(d.a >= 0 && d.b > d.a))
                return errprintf(errp, "distribution \"%s\": expected 0 <= LO < HI", spec);
            break;
        }
        *out = d;
        return 0;
    }
    return errprintf(errp,
                     "distribution \"%s\": unknown family (exp:MEAN, weibull:SHAPE,SCALE, "
                     "lognormal:MU,SIGMA, const:VALUE or uniform:LO,HI)",
                     spec);
}

double dist_sample(const dist *d, rng *r)
{
    switch (d->kind) {
    case DIST_EXPONENTIAL:
        return rng_exponential(r, d->a);
    case DIST_WEIBULL:
        return rng_weibull(r, d->a, d->b);
    case DIST_LOGNORMAL:
        return rng_lognormal(r, d->a, d->b);
    case DIST_UNIFORM:
        return d->a + (d->b - d->a) * rng_uniform_pos(r);
    case DIST_CONSTANT:
        break;
    }
    return d->a;
}

double dist_mean(const dist *d)
{
    switch (d->kind) {
    case DIST_EXPONENTIAL:
        return d->a;
    case DIST_WEIBULL:
        return d->b * tgamma(1.0 + 1.0 / d->a);
    case DIST_LOGNORMAL:
        return exp(d->a + d->b * d->b / 2.0);
    case DIST_UNIFORM:
        return (d->a + d->b) / 2.0;
    case DIST_CONSTANT:
        break;
    }
    return d->a;
}

void dist_format(const dist *d, char *out, size_t n)
{
    switch (d->kind) {
    case DIST_EXPONENTIAL:
        snprintf(out, n, "exp:%.6g", d->a);
        break;
    case DIST_WEIBULL:
        snprintf(out, n, "weibull:%.6g,%.6g", d->a, d->b);
        break;
    case DIST_LOGNORMAL:
        snprintf(out, n, "lognormal:%.6g,%.6g", d->a, d->b);
        break;
    case DIST_CONSTANT:
        snprintf(out, n, "const:%.6g", d->a);
        break;
    case DIST_UNIFORM:
        snprintf(out, n, "uniform:%.6g,%.6g", d->a, d->b);
        break;
    }
}

dist dist_scale(const dist *d, double k)
{
    dist s = *d;
    switch (d->kind) {
    case DIST_EXPONENTIAL:
    case DIST_CONSTANT:
        s.a *= k;
        break;
    case DIST_WEIBULL:
        s.b *= k;
        break;
    case DIST_LOGNORMAL:
        s.a += log(k); /* ln(kX) = ln k + ln X */
        break;
    case DIST_UNIFORM:
        s.a *= k;
        s.b *= k;
        break;
    }
    return s;
}
