/* search.h - what is available now: free workers grouped by GPU model,
 * region and bandwidth tier, with counts, price range and uptime, filtered
 * by the same constraints as a cluster request. Walks only the index
 * buckets the filter allows. */
#ifndef MUSTER_SEARCH_H
#define MUSTER_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "match.h"

typedef struct search_row {
    uint16_t model; /* catalog index */
    uint8_t region; /* region index or REGION_UNKNOWN */
    uint8_t tier;
    uint32_t workers;
    uint32_t gpus;
    uint32_t min_price_uusd, max_price_uusd;
    float best_uptime;
    double uptime_sum;   /* mean = uptime_sum / workers */
    uint32_t gpu_counts; /* bit n: some worker has n GPUs (n < 32) */
} search_row;

typedef enum search_sort {
    SEARCH_BY_PRICE = 0, /* cheapest first */
    SEARCH_BY_COUNT,     /* most workers first */
    SEARCH_BY_UPTIME,    /* most reliable first */
} search_sort;

/* Rows for a filter: models (none = every model), gpus_per_worker, min_tier,
 * regions/countries, min_uptime and max_price of f count; workers,
 * min_workers and placement do not. Returns a sorted array of *n rows the
 * caller frees with mu_free (NULL with *n = 0 when nothing matches), or
 * NULL with errno ENOMEM. *total gets the matching free workers. */
search_row *search_run(const windex *ix, const registry *reg, const match_request *f,
                       search_sort sort, size_t *n, uint32_t *total);

#endif
