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

uint32_t pricing_commitment_discount_pct(uint32_t hours)
{
    if (hours >= 90u * 24u)
        return 30;
    if (hours >= 30u * 24u)
        return 20;
    if (hours >= 7u * 24u)
        return 10;
    return 0;
}

uint64_t pricing_commitment_uusd(uint64_t per_hour_uusd, uint32_t hours)
{
    return per_hour_uusd / 100u * (100u - pricing_commitment_discount_pct(hours)) +
           per_hour_uusd % 100u * (100u - pricing_commitment_discount_pct(hours)) / 100u;
}

void pricing_format(uint64_t uusd, char *out, size_t n)
{
    if (uusd >= 10000 || uusd == 0)
        snprintf(out, n, "%llu.%02llu", (unsigned long long)((uusd + 5000) / 1000000),
                 (unsigned long long)(((uusd + 5000) / 10000) % 100));
    else
        snprintf(out, n, "%.4f", (double)uusd / 1e6);
}
