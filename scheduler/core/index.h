/* index.h - the free workers a request can be served from, indexed so that
 * matching never scans the fleet.
 *
 * Workers that are online, free, hireable (tier above none) and have GPUs are
 * filed in buckets keyed by (GPU model, region, bandwidth tier, GPU count).
 * A request names a few models, regions and tiers, so it touches only the
 * handful of buckets that can serve it. Inside a bucket, workers are walked
 * in score order; they are kept in blocks of up to 64 entries under a
 * directory ordered by separators (no allocation per worker; filing and
 * removal touch a few cache lines, index.c says how):
 *
 *   uptime class (whole percent) descending, price ascending, download
 *   bandwidth descending, id ascending
 *
 * Uptime first makes a min-uptime filter a prefix of the walk, price second
 * makes the cheapest of equally reliable workers come first, and the id
 * breaks every tie, so the order, and every match, is deterministic. Each
 * block also keeps its lowest price, so a walk under a price cap skips whole
 * blocks that have nothing cheap enough.
 */
#ifndef MUSTER_INDEX_H
#define MUSTER_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "registry.h"

typedef struct windex windex;

typedef struct ix_bucket {
    uint16_t model; /* catalog index */
    uint8_t region; /* region index or REGION_UNKNOWN */
    uint8_t tier;
    uint16_t gpus;  /* GPUs per worker */
    uint32_t count; /* workers filed here */
} ix_bucket;

/* reg is borrowed; n_models is the catalog's size. */
windex *index_create(registry *reg, size_t n_models, mu_error *errp);
void index_destroy(windex *ix);

/* Whether a worker belongs in the index at all. */
bool index_eligible(const worker *w);
/* File w (must not be filed). Returns 0, or -1 with errno ENOMEM. */
int index_add(windex *ix, worker *w);
/* Take w out if it is filed; otherwise nothing. */
void index_remove(windex *ix, worker *w);
/* Remove and re-file w if eligible, after its key or state changed. */
int index_refresh(windex *ix, worker *w);
/* A hint with no effect: the worker at `slot` will soon be refiled or
 * looked up (registry_prefetch says why). Stage 0 loads where it is filed;
 * stage 1, asked for later, its entry and its block's head; stage 2, later
 * still, the block's last entry, which its removal moves. */
void index_prefetch(const windex *ix, uint32_t slot, int stage);

size_t index_count(const windex *ix);
size_t index_bucket_count(const windex *ix);
const ix_bucket *index_bucket(const windex *ix, uint32_t b);
/* The buckets of one model, as bucket numbers (borrowed). */
size_t index_model_buckets(const windex *ix, uint16_t model, const uint32_t **out);

/* In-order walk of bucket b: the best worker first, NULL at the end. A
 * step finds w where it is filed and scans its block for the next entry
 * (O(block), plus a directory search, O(log n), into the next block); a
 * worker no longer filed ends the walk. */
worker *index_first(const windex *ix, uint32_t b);
worker *index_next(const windex *ix, const worker *w);
/* The same walk restricted to workers priced at most cap (micro-USD per
 * GPU hour; 0: no cap), skipping blocks priced above it. */
worker *index_first_under(const windex *ix, uint32_t b, uint32_t cap);
worker *index_next_under(const windex *ix, const worker *w, uint32_t cap);

/* The score order inside a bucket: < 0 when a comes before b. */
int index_compare(const worker *a, const worker *b);
uint16_t index_uptime_class(float fraction);

/* Bytes held by the index: buckets, blocks and what each worker is filed under. */
size_t index_bytes(const windex *ix);

/* Check the blocks (ranges, best entries, lowest prices, counts), that each
 * filed worker is filed under its current key, and that exactly the
 * eligible workers are filed. 0, or -1 with the first fault. */
int index_check(const windex *ix, mu_error *errp);

#endif
