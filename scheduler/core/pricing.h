/* pricing.h - hourly prices, in micro-US-dollars (uUSD) so that sums are
 * exact integers and every run gives the same totals.
 *
 * A worker's operator may set its price per GPU hour; otherwise it is
 * 0.20 USD x the catalog's reward multiplier (RTX 3060 = 1.0, so about
 * 0.20 USD for an RTX 3060, 0.50 for an RTX 4090, 1.25 for an H100)
 * x a tier factor (low 0.9, medium 1.0, high 1.1, ultra 1.2): better
 * connected GPUs cost a little more.
 */
#ifndef MUSTER_PRICING_H
#define MUSTER_PRICING_H

#include <stdint.h>

#include "catalog.h"
#include "tiers.h"

#define PRICING_BASE_UUSD 200000u     /* 0.20 USD */
#define PRICING_MAX_UUSD  1000000000u /* 1,000 USD per GPU hour: above is a typo */

uint32_t pricing_default_uusd(const gpu_model *m, tier t);

/* Reservations pay a commitment price: the members' hourly prices less a
 * discount by commitment length, 10% for at least 7 days (168 hours), 20%
 * for at least 30 days (720 hours), 30% for at least 90 days (2160 hours),
 * none below a week. */
uint32_t pricing_commitment_discount_pct(uint32_t hours);
/* per_hour less the discount for `hours`, rounded down to a whole uUSD. */
uint64_t pricing_commitment_uusd(uint64_t per_hour_uusd, uint32_t hours);

/* "0.51" for 510000 uUSD (cents, rounded half up; more digits below a cent). */
void pricing_format(uint64_t uusd, char *out, size_t n);

#endif
