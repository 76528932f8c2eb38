/* tiers.h - bandwidth tiers.
 *
 * Defaults follow the network muster models, in Mbit/s (down / up):
 * low 100/75, medium 400/300, high 800/600, ultra 1600/1200; a worker below
 * low is tier "none" and is not hireable. A worker is in the highest tier
 * whose both thresholds it meets. Operators may override the thresholds in
 * the broker config ("tiers").
 */
#ifndef MUSTER_TIERS_H
#define MUSTER_TIERS_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "error.h"

typedef enum tier { TIER_NONE = 0, TIER_LOW, TIER_MEDIUM, TIER_HIGH, TIER_ULTRA, TIER_COUNT } tier;

typedef struct tier_table {
    uint32_t min_down[TIER_COUNT]; /* Mbit/s; index TIER_NONE unused (0) */
    uint32_t min_up[TIER_COUNT];
} tier_table;

void tiers_default(tier_table *t);
tier tiers_classify(const tier_table *t, uint32_t down_mbps, uint32_t up_mbps);
const char *tier_name(tier t);
/* Parse "none", "low", "medium", "high", "ultra" (case-insensitive). 0/-1. */
int tier_parse(const char *s, tier *out);
/* Thresholds must rise strictly from low to ultra and be non-zero. */
int tiers_validate(const tier_table *t, mu_error *errp);
/* Apply {"low": {"down": 100, "up": 75}, ...} over *t (keys optional),
 * then validate. On error *t is unchanged. */
int tiers_from_json(tier_table *t, const cJSON *obj, const char *where, mu_error *errp);

#endif
