/* uptime.c - see uptime.h. */
#include "uptime.h"

#include <math.h>

#define TAU_H ((double)UPTIME_TAU_MS / 3600000.0)

void uptime_init(uptime *u, uint64_t now)
{
    u->total_h = (float)(UPTIME_PRIOR_MS / 3600000.0);
    u->online_h = (float)(UPTIME_PRIOR_FRACTION * u->total_h);
    u->at = now;
}

void uptime_advance(uptime *u, uint64_t now, bool online)
{
    if (now <= u->at)
        return;
    double dt_h = (double)(now - u->at) / 3600000.0;
    /* Decay what was, and add the new span with its own decay folded in:
     * the integral of e^-(t/tau) over the span is tau * (1 - d). */
    double d = exp(-dt_h / TAU_H);
    double added = TAU_H * (1.0 - d);
    u->total_h = (float)(u->total_h * d + added);
    u->online_h = (float)(u->online_h * d + (online ? added : 0.0));
    u->at = now;
}

double uptime_value(const uptime *u)
{
    if (u->total_h <= 0)
        return 0.0;
    double v = (double)u->online_h / (double)u->total_h;
    return v < 0 ? 0 : v > 1 ? 1 : v;
}
