/* cluster.h - cluster records and the table that holds them.
 *
 * A cluster is accepted with its members already chosen (matching is
 * immediate), so its life starts at provisioning:
 *
 *   provisioning --all members acknowledge--> ready <--> degraded
 *        |                                      |            |
 *        +-- members silent past the timeout -> failed       |
 *   ready/degraded --end of duration--> expired; --release--> released
 *
 * Degraded means a seat is not served: its member went offline (the seat is
 * kept, and the cluster is ready again when it comes back), or the member
 * re-registered as something the request does not accept (the seat is
 * vacated and the worker freed). Filling seats with replacements is the
 * reroute's job. The table keeps ended clusters for `cluster show`,
 * and keeps active ones in a heap ordered by their next deadline (expiry,
 * or the provisioning timeout), so a tick touches only what is due.
 */
#ifndef MUSTER_CLUSTER_H
#define MUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ids.h"
#include "match.h"

typedef enum cluster_state {
    CLUSTER_PROVISIONING = 1,
    CLUSTER_READY,
    CLUSTER_DEGRADED,
    CLUSTER_RELEASED,
    CLUSTER_EXPIRED,
    CLUSTER_FAILED,
} cluster_state;

typedef struct cluster_member {
    uint32_t worker; /* registry slot, or UINT32_MAX: the seat is vacant */
    uint8_t acked;   /* the agent acknowledged joining */
    uint8_t lost;    /* not serving: offline (seat kept) or vacant */
} cluster_member;

#define CLUSTER_HISTORY  32 /* changes kept per cluster (the latest) */
#define CLUSTER_EXCLUDED 32 /* workers a cluster remembers it lost */

typedef struct cluster_change {
    uint64_t at;
    uint32_t worker; /* registry slot, or UINT32_MAX for the cluster itself */
    char what[16];   /* "created", "joined", "lost", "back", "ready", ... */
    char reason[64];
} cluster_change;

typedef struct cluster {
    mu_id id;
    char owner[64];
    match_request req;
    cluster_state state;
    cluster_member *members;
    uint32_t n_members;
    uint32_t hours; /* duration asked for, extensions included */
    uint64_t created_at, ready_at, ends_at, ended_at;
    uint64_t provision_deadline;
    uint64_t price_uusd_per_hour; /* sum of members' GPUs x price, fixed at creation */
    char end_reason[96];
    cluster_change history[CLUSTER_HISTORY];
    uint32_t n_history; /* total recorded; the last CLUSTER_HISTORY are kept */
    uint32_t slot;
    uint32_t heap_pos; /* UINT32_MAX when not active */
    /* Workers lost by this cluster (offline or failed verification): never
     * seated in it again. Registry slots, the latest CLUSTER_EXCLUDED. */
    uint32_t excluded[CLUSTER_EXCLUDED];
    uint32_t n_excluded;
    uint32_t replaced;  /* seats filled by a replacement, ever */
    uint64_t vacant_at; /* since when a seat has been vacant; 0: none */
    /* Reservation slot it was carved out of (its members and replacements
     * come only from that reservation), or UINT32_MAX. */
    uint32_t resv;
} cluster;

typedef struct cluster_table cluster_table;

cluster_table *cluster_table_create(void);
void cluster_table_destroy(cluster_table *t);

/* A new cluster in the table (zeroed but for id and slot). NULL with errno
 * EEXIST (id taken) or ENOMEM. */
cluster *cluster_table_add(cluster_table *t, const mu_id *id);
cluster *cluster_table_get(const cluster_table *t, const mu_id *id);
/* Full id or a unique prefix of at least 4 characters; NULL with errno
 * ENOENT, EEXIST (ambiguous) or EINVAL (too short). */
cluster *cluster_table_find(const cluster_table *t, const char *prefix);
size_t cluster_table_count(const cluster_table *t);
cluster *cluster_table_at(const cluster_table *t, size_t slot);

bool cluster_active(const cluster *c);
/* Its next deadline: the provisioning timeout while provisioning, else the
 * end of its duration. */
uint64_t cluster_deadline(const cluster *c);
/* Put c in the deadline heap, or move it after its deadline changed, or
 * take it out once it has ended. */
void cluster_table_schedule(cluster_table *t, cluster *c);
/* The active cluster with the earliest deadline, or NULL. */
cluster *cluster_table_next_due(const cluster_table *t);
size_t cluster_table_active_count(const cluster_table *t);

void cluster_record(cluster *c, uint64_t at, uint32_t worker_slot, const char *what,
                    const char *reason);
/* The i-th kept change, oldest first (i < min(n_history, CLUSTER_HISTORY)). */
const cluster_change *cluster_history_at(const cluster *c, uint32_t i);

const char *cluster_state_name(cluster_state s);

#endif
