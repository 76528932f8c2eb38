/* pricing.c - see pricing.h. */
#include "pricing.h"

#include <math.h>
#include <stdio.h>

uint32_t pricing_default_uusd(const gpu_model *m, tier t)
{
    /* Indexed by tier; none is not hireable, priced as low. */
    static const double factor[TIER_COUNT] = {0.9, 0.9, 1.0, 1.1, 1.2};
    double mult = m && m->reward_multiplier > 0 ? m->reward_multiplier : 1.0;
    double f = (unsigned)t < TIER_COUNT ? factor[t] : 1.0;
    double p = llround(PRICING_BASE_UUSD * mult * f / 1000.0) * 1000.0; /* whole tenths of a cent */
    return p > PRICING_MAX_UUSD ? PRICING_MAX_UUSD : (uint32_t)p;
}

void pricing_format(uint64_t uusd, char *out, size_t n)
{
    if (uusd >= 10000 || uusd == 0)
        snprintf(out, n, "%llu.%02llu", (unsigned long long)((uusd + 5000) / 1000000),
                 (unsigned long long)(((uusd + 5000) / 10000) % 100));
    else
        snprintf(out, n, "%.4f", (double)uusd / 1e6);
}
