/* scheduler.h - the scheduler core: workers, their index, and clusters.
 *
 * The one object the broker and the simulator drive. Pure like all of the
 * core: it takes events (a worker registered, heartbeated or left, a client
 * asked for a cluster, a member acknowledged, time advanced to `now`) and
 * reports what follows through the ops the shell provides: worker state
 * changes, cluster events, and notices to send to members. It never does
 * I/O and never reads a clock.
 */
#ifndef MUSTER_SCHED_H
#define MUSTER_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster.h"
#include "error.h"
#include "index.h"
#include "match.h"
#include "registry.h"
#include "reservation.h"
#include "verify.h"

typedef struct sched_config {
    registry_config reg;
    verify_config verify;
    uint32_t provision_timeout_ms; /* members must acknowledge within this */
    uint32_t max_hours;            /* longest cluster, extensions included */
    uint32_t reroute_retry_ms;     /* how often a vacant seat is tried again */
} sched_config;

#define SCHED_PROVISION_TIMEOUT_DEFAULT_MS 30000u
#define SCHED_MAX_HOURS_DEFAULT            (24u * 90u) /* 90 days */
#define SCHED_REROUTE_RETRY_DEFAULT_MS     1000u

typedef struct sched_ops {
    /* A worker's liveness changed. */
    void (*worker_state)(void *arg, const worker *w, worker_state from, worker_state to,
                         const char *reason);
    /* A cluster changed. topic: cluster.created, .member_joined, .ready,
     * .degraded, .member_lost, .member_back, .member_replaced, .shrunk,
     * .extended, .released, .expired, .failed.
     * w is the member concerned, or NULL. */
    void (*cluster_event)(void *arg, const cluster *c, const char *topic, const worker *w,
                          const char *detail);
    /* Tell a worker it is now a member of c (join) or no longer (leave). */
    void (*member_notice)(void *arg, const cluster *c, const worker *w, bool join);
    /* Verification (verify.h): send a challenge, ask for spots, a verdict. */
    void (*challenge)(void *arg, const worker *w, uint64_t challenge_id, const pow_params *p,
                      uint32_t expected_ms);
    void (*spots)(void *arg, const worker *w, uint64_t challenge_id, const uint32_t *idx,
                  uint32_t n);
    void (*verdict)(void *arg, const worker *w, const verify_result *r, verify_state from,
                    verify_state to);
    void *arg;
    /* A reservation changed. topic: reservation.created, .member_added,
     * .member_lost, .member_in_use, .member_returned, .extended, .released,
     * .expired. w is the member concerned, or NULL. (Last so that older
     * positional initializers still compile.) */
    void (*reservation_event)(void *arg, const reservation *r, const char *topic, const worker *w,
                              const char *detail);
} sched_ops;

typedef struct sched sched;

sched *sched_create(const sched_config *cfg, const sched_ops *ops, mu_error *errp);
void sched_destroy(sched *s);

registry *sched_registry(sched *s);
const registry *sched_registry_const(const sched *s);
const windex *sched_index(const sched *s);

/* Workers: as registry_register / _touch / _goodbye, with the index and
 * clusters kept in step. */
const worker *sched_register(sched *s, const worker_spec *spec, uint64_t now, mu_error *errp);
int sched_touch(sched *s, const mu_id *id, uint64_t now);
/* A hint with no effect on any state: the caller will soon pass this id to
 * sched_touch, _disconnected, _goodbye or _register, and last saw it at
 * slot_hint (worker.slot; UINT32_MAX: unknown). Stage 0 first, then stage
 * 1 once that has had time to arrive (a few workers later), then stage 2:
 * see registry_prefetch and index_prefetch. */
void sched_prefetch(const sched *s, const mu_id *id, uint32_t slot_hint, prefetch_for what,
                    int stage);
int sched_goodbye(sched *s, const mu_id *id, uint64_t now, const char *reason);
/* The worker's connection closed (registry_disconnected). */
int sched_disconnected(sched *s, const mu_id *id, uint64_t now);

/* Verification answers (verifier_commit / verifier_proofs); -1 with errno
 * ENOENT for an unknown worker. */
int sched_verify_commit(sched *s, const mu_id *id, uint64_t challenge_id,
                        const uint8_t root[POW_HASH_BYTES], uint64_t now, mu_error *errp);
int sched_verify_proofs(sched *s, const mu_id *id, uint64_t challenge_id, const uint8_t *leaves,
                        size_t leaves_len, const uint8_t *paths, size_t paths_len, uint64_t now,
                        mu_error *errp);
const verifier *sched_verifier(const sched *s);

/* Advance time: liveness, provisioning timeouts, expiries. */
void sched_tick(sched *s, uint64_t now);
/* Earliest time a tick could change anything (UINT64_MAX: nothing pending). */
uint64_t sched_next_deadline(const sched *s);

typedef struct sched_quote {
    uint32_t workers;
    uint32_t gpus;
    uint64_t per_hour_uusd;
    uint64_t total_uusd; /* per_hour x hours */
} sched_quote;

/* What a request would get and cost now, reserving nothing. Returns 0; or
 * -1 with errno EINVAL (a bad request: reason in errp) or ENOSPC (cannot be
 * met now: *why says why and what could be). */
int sched_quote_request(sched *s, const match_request *rq, uint32_t hours, sched_quote *q,
                        match_explain *why, mu_error *errp);

/* Accept a cluster: match, allocate, tell the members. Returns the cluster
 * (provisioning), or NULL with errno EINVAL (reason in errp), ENOSPC (*why
 * filled), EEXIST (id taken) or ENOMEM; nothing changes on failure. */
const cluster *sched_cluster_create(sched *s, const mu_id *id, const char *owner,
                                    const match_request *rq, uint32_t hours, uint64_t now,
                                    match_explain *why, mu_error *errp);

/* A member acknowledged joining. 0, or -1 with a reason (not a member, not
 * provisioning any more is fine: 0). */
int sched_cluster_ack(sched *s, const mu_id *cluster_id, const mu_id *worker_id, uint64_t now,
                      mu_error *errp);
/* Give up the seats that are not served (vacant, or their member offline):
 * the cluster keeps the members it has, its size and price shrink to them,
 * and it is ready once they are all there. -1 with errno EINVAL when no
 * seat is lost or none would remain (release it instead). */
int sched_cluster_shrink(sched *s, const mu_id *cluster_id, uint64_t now, uint32_t *dropped,
                         mu_error *errp);
/* Add hours to an active cluster. */
int sched_cluster_extend(sched *s, const mu_id *cluster_id, uint32_t hours, uint64_t now,
                         mu_error *errp);
/* End an active cluster now and free its members. */
int sched_cluster_release(sched *s, const mu_id *cluster_id, uint64_t now, const char *reason,
                          mu_error *errp);

/* A cluster carved out of an active reservation: its members are taken
 * only from the reservation's free (reserved) members that fit rq, and its
 * lost members are replaced only from them; when it ends they go back to
 * the reservation. It may not outlast the reservation. NULL with errno
 * ENOENT (no such reservation), ESTALE (ended), EINVAL, ENOSPC (*why says
 * how many fit), EEXIST or ENOMEM; nothing changes on failure. */
const cluster *sched_cluster_create_from(sched *s, const mu_id *id, const char *owner,
                                         const match_request *rq, uint32_t hours,
                                         const mu_id *resv_id, uint64_t now, match_explain *why,
                                         mu_error *errp);

const cluster *sched_cluster_get(const sched *s, const mu_id *id);
/* As cluster_table_find. */
const cluster *sched_cluster_find(const sched *s, const char *prefix);
size_t sched_cluster_count(const sched *s);
const cluster *sched_cluster_at(const sched *s, size_t slot);
size_t sched_clusters_active(const sched *s);

/* --- reservations (reservation.h) ------------------------------------------------------ */

/* Reserve up to rq->workers workers, at least rq->min_workers, for `hours`.
 * Returns the reservation (active), or NULL with errno EINVAL (reason in
 * errp), ENOSPC (*why filled; nothing is reserved), EEXIST or ENOMEM. */
const reservation *sched_reservation_create(sched *s, const mu_id *id, const char *owner,
                                            const match_request *rq, uint32_t hours, uint64_t now,
                                            match_explain *why, mu_error *errp);
/* Add hours to an active reservation; its price per hour does not change. */
int sched_reservation_extend(sched *s, const mu_id *id, uint32_t hours, uint64_t now,
                             mu_error *errp);
/* End an active reservation now: its free members are freed at once, those
 * in use by one of its clusters when that cluster ends. */
int sched_reservation_release(sched *s, const mu_id *id, uint64_t now, const char *reason,
                              mu_error *errp);
const reservation *sched_reservation_get(const sched *s, const mu_id *id);
const reservation *sched_reservation_find(const sched *s, const char *prefix);
size_t sched_reservation_count(const sched *s);
const reservation *sched_reservation_at(const sched *s, size_t slot);
/* Members of r in use by one of its clusters. */
uint32_t sched_reservation_in_use(const sched *s, const reservation *r);

/* --- recovery: rebuilding the core from what was saved ----------------------------- */

const worker *sched_restore_worker(sched *s, const worker_spec *spec, uint64_t registered_at,
                                   const uptime *up, mu_error *errp);
/* Its verification state and history (after sched_restore_worker). */
int sched_restore_verification(sched *s, const worker *w, verify_state st,
                               const verify_result *hist, size_t n, uint32_t checks,
                               mu_error *errp);

typedef struct cluster_seat {
    mu_id worker; /* all zero: vacant */
    bool acked;
    bool lost;
} cluster_seat;

typedef struct cluster_restore {
    mu_id id;
    const char *owner;
    match_request req;
    uint32_t hours;
    cluster_state state;
    uint64_t created_at, ready_at, ends_at, ended_at, provision_deadline;
    uint64_t price_uusd_per_hour;
    const char *end_reason;
    const cluster_seat *seats;
    size_t n_seats;
    const cluster_change *history; /* the kept changes, oldest first */
    size_t n_history;
    uint32_t history_total; /* changes ever recorded */
    const mu_id *excluded;  /* workers it lost (unknown ones are skipped) */
    size_t n_excluded;
    uint32_t replaced;
    const mu_id *resv; /* the reservation it was carved out of, or NULL */
} cluster_restore;

/* A cluster saved before a restart, with its seats; members of an active
 * one are allocated to it again. Restore workers first. NULL with a reason
 * (unknown member, a worker in two active clusters, a bad request). */
const cluster *sched_restore_cluster(sched *s, const cluster_restore *cr, mu_error *errp);

typedef struct resv_restore {
    mu_id id;
    const char *owner;
    match_request req;
    uint32_t hours;
    resv_state state;
    uint64_t created_at, ends_at, ended_at;
    uint64_t list_uusd_per_hour, price_uusd_per_hour;
    uint32_t discount_pct;
    const char *end_reason;
    const mu_id *members; /* active ones only */
    size_t n_members;
    const mu_id *excluded;
    size_t n_excluded;
    uint32_t replaced;
} resv_restore;

/* A reservation saved before a restart; its members are reserved to it
 * again. Restore workers first, then reservations, then clusters (a
 * cluster names its reservation in cluster_restore.resv). NULL with a
 * reason. */
const reservation *sched_restore_reservation(sched *s, const resv_restore *rr, mu_error *errp);

/* Restoring is done: members of active clusters that are not back by
 * now + grace_ms count as lost then (their clusters degrade). */
void sched_restore_finish(sched *s, uint64_t now, uint64_t grace_ms);

/* Check every invariant: the index holds exactly the free eligible workers;
 * a worker is allocated iff it is a member of exactly one active cluster;
 * every member fits its cluster's request; states agree with members.
 * 0, or -1 with the first violation. */
int sched_check(const sched *s, mu_error *errp);

/* Bytes of scheduler state (registry records, index, maps) per worker. */
size_t sched_bytes(const sched *s);

#endif
