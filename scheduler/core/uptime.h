/* uptime.h - a worker's rolling uptime.
 *
 * Uptime is the exponentially weighted fraction of time a worker was online,
 * with a time constant of 7 days (half-life about 4.9 days): last week
 * counts, last month hardly. A new worker starts from a prior of 50% worth
 * one day of history, so trust is earned: about a week online reaches 0.95.
 *
 * It costs two numbers and a time per worker and is advanced only when the
 * owner calls uptime_advance (at liveness changes, and at most hourly while
 * online): never per heartbeat, never per worker on a timer, so a simulated
 * year of a million workers stays cheap. Between advances the stored value
 * is a slight underestimate for an online worker, which errs on the safe
 * side for min-uptime requests.
 */
#ifndef MUSTER_UPTIME_H
#define MUSTER_UPTIME_H

#include <stdbool.h>
#include <stdint.h>

#define UPTIME_TAU_MS         (7ull * 24 * 3600 * 1000)
#define UPTIME_PRIOR_MS       (24ull * 3600 * 1000)
#define UPTIME_PRIOR_FRACTION 0.5

typedef struct uptime {
    float online_h; /* weighted hours online */
    float total_h;  /* weighted hours observed */
    uint64_t at;    /* time (ms) of the last advance */
} uptime;

/* A new worker first seen at `now`. */
void uptime_init(uptime *u, uint64_t now);
/* Account for [u->at, now) spent online or not. A `now` before u->at is
 * ignored (time never runs backwards here). */
void uptime_advance(uptime *u, uint64_t now, bool online);
/* The fraction in [0, 1] as of u->at. */
double uptime_value(const uptime *u);

#endif
