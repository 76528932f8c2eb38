/* dist.h - the length distributions of synthetic traces (sessions, gaps,
 * job durations), written the same way on the command line, in parameter
 * files and in `muster-sim analyze` output, so a fitted model can be pasted
 * straight into `muster-sim generate`:
 *
 *   exp:MEAN              exponential with this mean
 *   weibull:SHAPE,SCALE   Weibull, shape k > 0 and scale lambda > 0
 *   lognormal:MU,SIGMA    lognormal: ln(X) ~ Normal(MU, SIGMA), SIGMA > 0
 *   const:VALUE           always VALUE (for tests and simple experiments)
 *   uniform:LO,HI         uniform between LO and HI, 0 <= LO < HI (draws are > LO)
 *
 * Values are in whatever unit the caller states (hours for the churn and
 * workload generators); MU is then the mean of the log of hours.
 */
#ifndef MUSTER_SIM_DIST_H
#define MUSTER_SIM_DIST_H

#include <stddef.h>

#include "error.h"
#include "rng.h"

typedef enum dist_kind {
    DIST_EXPONENTIAL = 0,
    DIST_WEIBULL,
    DIST_LOGNORMAL,
    DIST_CONSTANT,
    DIST_UNIFORM,
} dist_kind;

typedef struct dist {
    dist_kind kind;
    double a; /* mean | shape | mu | value | low */
    double b; /* unused | scale | sigma | unused | high */
} dist;

/* Parse SPEC (see above). Returns 0, or -1 with the reason in errp. */
int dist_parse(const char *spec, dist *out, mu_error *errp);
/* One draw (> 0 for every valid dist). */
double dist_sample(const dist *d, rng *r);
/* The expected value. */
double dist_mean(const dist *d);
/* SPEC for d, as dist_parse reads it back ("weibull:0.7,5"). */
void dist_format(const dist *d, char *out, size_t n);
/* The same family with every draw multiplied by k > 0 (a change of unit:
 * hours to seconds is k = 3600). */
dist dist_scale(const dist *d, double k);

#endif
