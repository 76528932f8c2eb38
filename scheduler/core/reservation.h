/* reservation.h - reservation records and the table that holds them.
 *
 * A reservation (for managed brokers) holds up to `wanted` workers that fit
 * its request for a commitment period, at a commitment price fixed when it
 * is created (pricing.h). It is accepted only when at least min_workers can
 * be reserved at once; below `wanted` it takes workers as they become free,
 * before self-service requests see them. Its members are reserved (free
 * within it) or in use by a cluster carved out of it:
 *
 *   active --release--> released; --end of commitment--> expired
 *
 * The scheduler (scheduler.c) owns the members' alloc state; this file only
 * keeps the records.
 */
#ifndef MUSTER_RESERVATION_H
#define MUSTER_RESERVATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "ids.h"
#include "match.h"

typedef enum resv_state {
    RESV_ACTIVE = 1,
    RESV_RELEASED,
    RESV_EXPIRED,
} resv_state;

typedef struct reservation {
    mu_id id;
    char owner[64];
    match_request req; /* req.workers is the count wanted, req.min_workers the least */
    resv_state state;
    uint32_t *members; /* worker slots, req.workers entries of room */
    uint32_t n_members;
    uint32_t hours; /* commitment, extensions included */
    uint64_t created_at, ends_at, ended_at;
    uint64_t list_uusd_per_hour;  /* members' prices at creation, before the discount */
    uint64_t price_uusd_per_hour; /* after the commitment discount; fixed */
    uint32_t discount_pct;
    char end_reason[96];
    /* Workers it lost (offline, failed verification): never taken again. */
    uint32_t excluded[CLUSTER_EXCLUDED];
    uint32_t n_excluded;
    uint32_t replaced; /* members taken to replace lost ones or fill up, ever */
    uint64_t short_at; /* since when it holds fewer than wanted; 0: full */
    uint32_t slot;
} reservation;

typedef struct resv_table resv_table;

resv_table *resv_table_create(void);
void resv_table_destroy(resv_table *t);
/* A new reservation (zeroed but for id and slot). NULL with errno EEXIST or
 * ENOMEM. */
reservation *resv_table_add(resv_table *t, const mu_id *id);
reservation *resv_table_get(const resv_table *t, const mu_id *id);
/* Full id or a unique prefix of at least 4 characters; NULL with errno
 * ENOENT, EEXIST (ambiguous) or EINVAL (too short). */
reservation *resv_table_find(const resv_table *t, const char *prefix);
size_t resv_table_count(const resv_table *t);
reservation *resv_table_at(const resv_table *t, size_t slot);

bool resv_active(const reservation *r);
bool resv_excluded(const reservation *r, uint32_t worker_slot);
void resv_exclude(reservation *r, uint32_t worker_slot);
/* Index of worker_slot in r->members, or -1. */
long resv_member_index(const reservation *r, uint32_t worker_slot);

const char *resv_state_name(resv_state s);

#endif
