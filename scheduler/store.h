/* store.h - musterd's durable state: the project's one wrapper of SQLite.
 *
 * One file (WAL mode) in the broker's state directory. What is kept: every
 * worker's registration as the agent sent it (the Register message), when
 * it first registered and its uptime history; every cluster with its
 * request (the accepted ClusterSpec), state, times, price, members and
 * history. What is not: liveness (heartbeats are never written; after a
 * restart every worker is offline until heard from), the index (rebuilt),
 * counters.
 *
 * The broker writes changes inside one transaction per batch of messages
 * and commits before any reply or event of that batch leaves (group
 * commit): nothing acknowledged is lost, and one fsync serves many
 * requests.
 *
 * The schema is versioned (meta.schema_version); opening an older store
 * migrates it in one transaction, and a store newer than this build, or
 * one that is not a muster store, or damaged, is refused and left as it is.
 */
#ifndef MUSTERD_STORE_H
#define MUSTERD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ids.h"
#include "uptime.h"

#define STORE_SCHEMA_VERSION 6

typedef struct store store;

/* Open (or create) the store at path. full_sync: fsync at every commit
 * (survives power loss); otherwise only a process crash is survived.
 * NULL with a reason; an existing file is never overwritten or truncated. */
store *store_open(const char *path, bool full_sync, mu_error *errp);
/* As store_open, but migrate no further than schema `version`: for tests
 * that need a store written by an older muster. */
store *store_open_version(const char *path, bool full_sync, int version, mu_error *errp);
void store_close(store *st);
int store_schema_version(const store *st);

/* One transaction per batch. Returns 0, or -1 with a reason (e.g. the disk
 * is full); after a failed commit the transaction is rolled back. */
int store_begin(store *st, mu_error *errp);
int store_commit(store *st, mu_error *errp);
void store_rollback(store *st);
bool store_in_transaction(const store *st);

/* A worker: its registration (Register message bytes), first registration
 * time and uptime. Insert or replace. */
int store_put_worker(store *st, const mu_id *id, const void *reg, size_t len,
                     uint64_t registered_at, const uptime *up, mu_error *errp);
int store_put_uptime(store *st, const mu_id *id, const uptime *up, mu_error *errp);

typedef struct store_member {
    mu_id worker; /* all zero: a vacant seat */
    bool acked;
    bool lost;
} store_member;

typedef struct store_change {
    uint64_t at;
    mu_id worker; /* all zero: about the cluster itself */
    const char *what;
    const char *reason;
} store_change;

typedef struct store_cluster {
    mu_id id;
    const char *owner;
    int state;        /* cluster_state */
    const void *spec; /* ClusterSpec message bytes */
    size_t spec_len;
    uint32_t hours;
    uint64_t created_at, ready_at, ends_at, ended_at, provision_deadline;
    uint64_t price_uusd_per_hour;
    const char *end_reason;
    const store_member *members;
    size_t n_members;
    const store_change *history; /* on put: only the changes to add; on load:
                                    the latest 32, oldest first */
    size_t n_history;
    uint32_t history_seq;  /* seq of history[0] (changes are numbered from 0) */
    const mu_id *excluded; /* workers the cluster lost (schema 3) */
    size_t n_excluded;
    uint32_t replaced; /* seats refilled, ever */
    bool has_resv;     /* carved out of reservation resv (schema 6) */
    mu_id resv;
} store_cluster;

/* Insert or replace a cluster and its members; append its new changes. */
int store_put_cluster(store *st, const store_cluster *c, mu_error *errp);

/* One judged verification check (scheduler/core/verify.h), as stored. */
typedef struct store_verify_result {
    uint64_t at;
    uint32_t expected_ms, measured_ms, rtt_ms, leaf;
    uint8_t outcome, state;
} store_verify_result;
#define STORE_VERIFY_HISTORY 16
#define STORE_VERIFY_RECORD  26 /* bytes per record in the history blob */

/* A worker's verification state, checks judged and latest results. */
int store_put_verification(store *st, const mu_id *worker, int state, uint32_t checks,
                           const store_verify_result *hist, size_t n, mu_error *errp);
typedef int (*store_verification_fn)(void *arg, const mu_id *worker, int state, uint32_t checks,
                                     const store_verify_result *hist, size_t n, mu_error *errp);
/* Every saved verification (none before schema 3). */
int store_load_verification(store *st, store_verification_fn fn, void *arg, mu_error *errp);

/* A task of a cluster (schema 4): its accepted TaskSpec and where it
 * stands. Written at every state change; its output (result file, log
 * tail) separately, when an attempt ends. */
typedef struct store_task {
    mu_id cluster;
    uint32_t number;
    const void *spec; /* TaskSpec message bytes as accepted */
    size_t spec_len;
    int state; /* task_state */
    uint32_t attempts, failures, losses;
    int32_t exit_code, signal;
    mu_id worker; /* running on, or last ran on; all zero: never ran */
    uint64_t gpu_mask;
    uint64_t submitted_at, started_at, finished_at;
    const char *reason;
    const mu_id *lost_on; /* workers that lost it: never run there again */
    size_t n_lost_on;
    uint32_t result_len; /* on load: the saved result's size */
    uint64_t log_total;  /* output bytes produced, all attempts */
} store_task;

int store_put_task(store *st, const store_task *t, mu_error *errp);
/* The task's result file (when it succeeded) and the latest part of its
 * output: log holds bytes log_offset .. log_offset + log_len of it. */
int store_put_task_output(store *st, const mu_id *cluster, uint32_t number, const void *result,
                          size_t result_len, const void *log, size_t log_len, uint64_t log_offset,
                          mu_error *errp);
/* Read them back; *result and *log are the caller's to mu_free (NULL when
 * empty). A task with no saved output: 0 with everything empty. */
int store_get_task_output(store *st, const mu_id *cluster, uint32_t number, uint8_t **result,
                          size_t *result_len, uint8_t **log, size_t *log_len, uint64_t *log_offset,
                          mu_error *errp);
typedef int (*store_task_fn)(void *arg, const store_task *t, mu_error *errp);
/* Every task, by cluster (in the clusters' creation order), then number. */
int store_load_tasks(store *st, store_task_fn fn, void *arg, mu_error *errp);

/* The CURVE public key a worker id is bound to (schema 5): set at its
 * first registration over CURVE, and only another registration with the
 * same key may use that id. */
int store_put_worker_key(store *st, const mu_id *worker, const char *key, mu_error *errp);
typedef int (*store_worker_key_fn)(void *arg, const mu_id *worker, const char *key, mu_error *errp);
/* Every worker with a bound key. */
int store_load_worker_keys(store *st, store_worker_key_fn fn, void *arg, mu_error *errp);

/* A reservation (schema 6): its request, commitment, price, members (the
 * workers it holds, in use or not) and the workers it lost. */
typedef struct store_reservation {
    mu_id id;
    const char *owner;
    int state;        /* resv_state */
    const void *spec; /* ClusterSpec message bytes */
    size_t spec_len;
    uint32_t hours;
    uint64_t created_at, ends_at, ended_at;
    uint64_t list_uusd_per_hour, price_uusd_per_hour;
    uint32_t discount_pct;
    const char *end_reason;
    const mu_id *members;
    size_t n_members;
    const mu_id *excluded;
    size_t n_excluded;
    uint32_t replaced;
} store_reservation;

/* Insert or replace a reservation. */
int store_put_reservation(store *st, const store_reservation *r, mu_error *errp);
typedef int (*store_reservation_fn)(void *arg, const store_reservation *r, mu_error *errp);

typedef int (*store_worker_fn)(void *arg, const mu_id *id, const void *reg, size_t len,
                               uint64_t registered_at, const uptime *up, mu_error *errp);
typedef int (*store_cluster_fn)(void *arg, const store_cluster *c, mu_error *errp);

/* Read everything back: workers first (in first-registration order), then
 * clusters (in creation order) with members and history. A callback that
 * fails stops the load. */
int store_load(store *st, store_worker_fn on_worker, store_cluster_fn on_cluster, void *arg,
               mu_error *errp);

/* As store_load, with the reservations (schema 6) between the workers and
 * the clusters (a cluster may name one). on_reservation may be NULL. */
int store_load_all(store *st, store_worker_fn on_worker, store_reservation_fn on_reservation,
                   store_cluster_fn on_cluster, void *arg, mu_error *errp);

/* SQLite's integrity check plus the store's own: every member and change
 * names a cluster that exists, every member a worker that exists. */
int store_check(store *st, mu_error *errp);

/* Cap the store's size (0: no cap beyond the disk's). Past it, writes fail
 * as on a full disk: the operator's way to keep musterd from filling one. */
int store_set_max_bytes(store *st, uint64_t bytes, mu_error *errp);

/* Counts, for status and tests. */
int store_count(store *st, const char *table, uint64_t *n, mu_error *errp);

#endif
