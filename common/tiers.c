/* tiers.c - see tiers.h. */
#include "tiers.h"

#include <stdio.h>
#include <strings.h>

#include "jsonutil.h"

static const char *const names[TIER_COUNT] = {"none", "low", "medium", "high", "ultra"};

void tiers_default(tier_table *t)
{
    static const tier_table def = {{0, 100, 400, 800, 1600}, {0, 75, 300, 600, 1200}};
    *t = def;
}

tier tiers_classify(const tier_table *t, uint32_t down_mbps, uint32_t up_mbps)
{
    for (int i = TIER_ULTRA; i > TIER_NONE; i--)
        if (down_mbps >= t->min_down[i] && up_mbps >= t->min_up[i])
            return (tier)i;
    return TIER_NONE;
}

const char *tier_name(tier t)
{
    return (unsigned)t < TIER_COUNT ? names[t] : "unknown";
}

int tier_parse(const char *s, tier *out)
{
    for (int i = 0; i < TIER_COUNT; i++) {
        if (s && strcasecmp(s, names[i]) == 0) {
            *out = (tier)i;
            return 0;
        }
    }
    return -1;
}

int tiers_validate(const tier_table *t, mu_error *errp)
{
    for (int i = TIER_LOW; i < TIER_COUNT; i++) {
        if (t->min_down[i] == 0 || t->min_up[i] == 0)
            return errprintf(errp, "tier %s: thresholds must be above 0", names[i]);
        if (i > TIER_LOW &&
            (t->min_down[i] <= t->min_down[i - 1] || t->min_up[i] <= t->min_up[i - 1]))
            return errprintf(errp, "tier %s: thresholds must be above those of tier %s", names[i],
                             names[i - 1]);
    }
    return 0;
}

int tiers_from_json(tier_table *t, const cJSON *obj, const char *where, mu_error *errp)
{
    static const char *const keys[] = {"low", "medium", "high", "ultra", NULL};
    static const char *const kv[] = {"down", "up", NULL};
    tier_table n = *t;
    if (json_check_keys(obj, keys, where, errp) < 0)
        return -1;
    for (int i = TIER_LOW; i < TIER_COUNT; i++) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, names[i]);
        if (!e)
            continue;
        char w[96];
        snprintf(w, sizeof(w), "%s: tier %s", where, names[i]);
        if (json_check_keys(e, kv, w, errp) < 0 ||
            json_get_u32(e, "down", false, 1, 1000000, &n.min_down[i], w, errp) < 0 ||
            json_get_u32(e, "up", false, 1, 1000000, &n.min_up[i], w, errp) < 0)
            return -1;
    }
    if (tiers_validate(&n, errp) < 0)
        return errprefix(errp, "%s", where);
    *t = n;
    return 0;
}
