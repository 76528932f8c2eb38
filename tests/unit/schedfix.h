/* schedfix.h - a scheduler core on the real catalog and region table, and
 * quick ways to add workers to it, for the matcher and scheduler tests. */
#ifndef MUSTER_SCHEDFIX_H
#define MUSTER_SCHEDFIX_H

#include "scheduler.h"

typedef struct schedfix {
    catalog *cat;
    region_table *regions;
    tier_table tiers;
    sched *s;
    /* what the core told the shell */
    size_t joins, leaves, events;
    char last_topic[32];
} schedfix;

/* liveness: 1 s heartbeats, offline after 3 */
schedfix *schedfix_create(void);
void schedfix_destroy(schedfix *f);

/* Register worker number n (its id derives from n) with COUNT GPUs of MODEL
 * in COUNTRY, bandwidth DOWN/UP Mbit/s, price in micro-USD (0: default).
 * Fails the test if refused. */
const worker *schedfix_add(schedfix *f, unsigned n, const char *model, unsigned count,
                           const char *country, unsigned down, unsigned up, uint32_t price,
                           uint64_t now);
void schedfix_id(unsigned n, char out[ID_TEXT_LEN]);
/* A request for WORKERS x GPUS of MODEL at tier low, anywhere, all or nothing. */
match_request schedfix_request(const schedfix *f, const char *model, unsigned gpus,
                               unsigned workers);
/* Region bit of a region name. */
uint64_t schedfix_region(const schedfix *f, const char *name);
/* Fails the test when an invariant is broken. */
void schedfix_check(const schedfix *f);

#endif
