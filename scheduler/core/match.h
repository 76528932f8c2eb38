/* match.h - choosing the workers of a cluster.
 *
 * A request names GPU models, GPUs per worker, how many workers (all or
 * nothing, or a minimum), the lowest bandwidth tier, allowed regions or
 * countries, a minimum uptime, a maximum price per GPU hour, and placement:
 *
 *   pack    all members in one region (lowest latency); the region that can
 *           give the most of the best candidates wins, ties to the cheaper
 *   spread  members taken round-robin across the allowed regions
 *
 * Candidates are ranked by one total order, the same everywhere: the fewest
 * GPUs beyond what was asked (a worker is hired whole), then the index's
 * order (uptime class, price, bandwidth, id). Matching walks only the index
 * buckets that can serve the request, in that order, and stops as soon as it
 * has enough: it never scans the fleet. match_find_naive does scan it, with
 * the same rules, so tests can check one against the other and benchmarks
 * can measure what the index buys.
 *
 * When a request cannot be met, match_explain says which constraint ran out
 * ("5 of 8 workers with 1x RTX 4090 in europe at tier medium or better") and
 * offers the nearest requests that would succeed.
 */
#ifndef MUSTER_MATCH_H
#define MUSTER_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "index.h"
#include "registry.h"

#define MATCH_MAX_MODELS    8
#define MATCH_MAX_COUNTRIES 16
#define MATCH_MAX_WORKERS   4096 /* members of one cluster */

typedef enum placement {
    PLACE_PACK = 0,
    PLACE_SPREAD = 1,
} placement;

typedef struct match_request {
    uint16_t models[MATCH_MAX_MODELS]; /* catalog indices: any of these */
    uint8_t n_models;
    uint16_t gpus_per_worker;               /* at least this many GPUs on each member */
    uint32_t workers;                       /* members wanted */
    uint32_t min_workers;                   /* fewest acceptable; == workers: all or nothing */
    tier min_tier;                          /* lowest bandwidth tier, >= TIER_LOW */
    uint64_t regions;                       /* bit i: region index i allowed; 0: any region */
    char countries[MATCH_MAX_COUNTRIES][3]; /* if any: members only from these */
    uint8_t n_countries;
    float min_uptime;        /* 0..1 */
    uint32_t max_price_uusd; /* per GPU hour; 0: no limit */
    placement placement;
} match_request;

/* A nearer request that would succeed: flags for the CLI and a sentence. */
typedef struct match_alternative {
    char flags[96]; /* e.g. "--bandwidth low" */
    char text[160]; /* e.g. "8 workers at tier low or better" */
    uint32_t available;
} match_alternative;

typedef struct match_explain {
    uint32_t available;  /* most members the request as asked can get */
    char constraint[16]; /* model, region, tier, uptime, price, placement */
    char text[256];
    match_alternative alt[4];
    size_t n_alt;
} match_explain;

/* Check a request for sense (counts, ranges, known models, at most 64
 * regions). 0, or -1 with a reason for the person who sent it. */
int match_validate(const match_request *rq, const catalog *cat, mu_error *errp);

/* Choose members: writes up to rq->workers worker slots to out, best first,
 * and returns how many (>= rq->min_workers), or 0 when the request cannot be
 * met. Reads the index only; allocates nothing when placement is spread and
 * a small scratch buffer when pack; returns 0 with errno ENOMEM if that
 * fails. Deterministic. */
size_t match_find(const windex *ix, const registry *reg, const match_request *rq, uint32_t *out);

/* The same answer by scanning every worker (O(fleet)). */
size_t match_find_naive(const registry *reg, const match_request *rq, uint32_t *out);

/* Why rq cannot be met, and what could be: fills *why. */
void match_explain_failure(const windex *ix, const registry *reg, const match_request *rq,
                           match_explain *why);

/* Whether w meets rq's static constraints (model, GPUs, tier, region,
 * country, price): what a member must keep satisfying. */
bool match_worker_fits(const match_request *rq, const worker *w);

/* "1x RTX 4090" or "8x H100 SXM/H200": the request's shape, for messages. */
void match_describe(const match_request *rq, const catalog *cat, char *out, size_t n);

#endif
