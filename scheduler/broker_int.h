/* broker_int.h - what the broker's own files share: the context and the
 * reply and event helpers. Not for use outside scheduler/. */
#ifndef MUSTERD_BROKER_INT_H
#define MUSTERD_BROKER_INT_H

#include <stdint.h>

#include "auth.h"
#include "broker.h"
#include "catalog.h"
#include "idmap.h"
#include "regions.h"
#include "registry.h"
#include "scheduler.h"
#include "store.h"
#include "tasks.h"
#include "zsock.h"

/* How many messages one socket may hand us before the other gets a turn. */
#define BATCH 256
/* Workers in one ListWorkers reply (a WorkerInfo is a few hundred bytes). */
#define LIST_LIMIT_DEFAULT 1000
#define LIST_LIMIT_MAX     10000

enum endpoint { EP_AGENT = 1, EP_CLIENT = 2 };

/* A ZeroMQ routing id kept per worker slot, to reach the agent later. */
typedef struct peer_slot {
    uint8_t len; /* 0: not connected */
    uint8_t id[IDMAP_KEY_MAX];
    int fd; /* the connection it last spoke on (ZMQ_SRCFD), -1 unknown */
} peer_slot;

typedef struct counters {
    uint64_t received;
    uint64_t rejected;
    uint64_t dropped;
} counters;

struct broker {
    broker_config cfg;
    catalog *cat;
    region_table *regions;
    sched *core;
    registry *reg; /* the core's, borrowed */
    void *zctx;
    void *agents;
    void *clients;
    void *events;
    void *monitor;     /* PAIR: the agent socket's disconnect events */
    uint32_t *fd_slot; /* connection descriptor -> worker slot (UINT32_MAX: none) */
    size_t fd_cap;
    char endpoints[3][256]; /* as bound */
    idmap *peer_to_slot;    /* routing id -> worker slot */
    peer_slot *slot_peer;   /* worker slot -> routing id */
    size_t slot_peer_cap;
    counters stats;
    uint64_t started_at;
    uint64_t now; /* latest time given to the core; never decreases */
    uint64_t event_seq;
    /* durability (persist.c) */
    store *st;
    int lock_fd;
    struct outbox *out;
    bool batching;
    /* tasks (rpc_tasks.c) */
    struct task_books *tasks;
    /* security (auth.h): all NULL/false in development mode */
    bool curve;
    key_pair key;
    accounts *acc;
    zap *zap;
    char (*worker_keys)[KEY_TEXT_LEN]; /* by worker slot: the key its id is bound to */
    size_t worker_keys_cap;
    struct webhooks *hooks;  /* NULL: no account has a webhook */
    struct event_subs *subs; /* clients' filtered event subscriptions (rpc_events.c) */
};

/* A request as handlers see it. */
typedef struct request {
    enum endpoint from;
    const zs_msg *msg;
    const Muster__Envelope *env;
} request;

typedef void (*handler_fn)(broker *b, const request *rq);

/* The account a client request comes from: NULL in development mode
 * (no CURVE), where every client is the same anonymous user. */
const account *broker_account(const broker *b, const request *rq);
/* Whether rq may see (get, list) or change (extend, release, submit, ...)
 * what `owner` owns: its owner, or an operator (see) or admin (both); in
 * development mode, anyone. When not, a PERMISSION_DENIED reply is sent. */
bool broker_may_see(broker *b, const request *rq, const char *owner, const char *what);
bool broker_may_change(broker *b, const request *rq, const char *owner, const char *what);
/* Whether rq's account sees every owner's things (operator, admin, or
 * development mode). */
bool broker_sees_all(const broker *b, const request *rq);
/* Remember (in memory) the key a worker's id is bound to. */
int broker_bind_worker_key(broker *b, uint32_t slot, const char *key);

/* Reply to rq (the request id is echoed). */
void broker_reply(broker *b, const request *rq, Muster__Envelope *reply);
/* A failed lookup of a NOUN ("cluster") by id or prefix, from errno
 * (EEXIST ambiguous, EINVAL too short, else not found). */
void broker_lookup_failed(broker *b, const request *rq, const char *id, const char *noun);
/* A failed change (extend, release), from errno: ESTALE (it has ended)
 * CONFLICT, ENOENT NOT_FOUND, else BAD_REQUEST; the reason is err's. */
void broker_change_failed(broker *b, const request *rq, const mu_error *err);
/* An error reply with status and reason, counted as rejected. */
void broker_error(broker *b, const request *rq, Muster__Status status, const char *reason);
/* Publish env's event under topic (first frame). */
void broker_publish(broker *b, const char *topic, Muster__Event *ev);
/* The same event for the webhook of `owner`'s account, if it has one
 * (after the batch is saved, like every event). Call after broker_publish
 * (which numbers it). */
void broker_notify(broker *b, const char *owner, const Muster__Event *ev);

/* Cluster, quote and search handlers (rpc_clusters.c). */
void rpc_quote(broker *b, const request *rq);
void rpc_create_cluster(broker *b, const request *rq);
void rpc_get_cluster(broker *b, const request *rq);
void rpc_list_clusters(broker *b, const request *rq);
void rpc_extend_cluster(broker *b, const request *rq);
void rpc_release_cluster(broker *b, const request *rq);
void rpc_search(broker *b, const request *rq);
void rpc_cluster_ack(broker *b, const request *rq);
/* Core callbacks: cluster events out, join/leave notices to agents. */
void rpc_cluster_event(void *arg, const cluster *c, const char *topic, const worker *w,
                       const char *detail);
void rpc_member_notice(void *arg, const cluster *c, const worker *w, bool join);
void rpc_shrink_cluster(broker *b, const request *rq);
/* A NOT_MET reply: why a valid request cannot be met, and what could be. */
void rpc_reply_not_met(broker *b, const request *rq, const match_explain *why);
/* Reservations (rpc_reservations.c). */
void rpc_create_reservation(broker *b, const request *rq);
void rpc_get_reservation(broker *b, const request *rq);
void rpc_list_reservations(broker *b, const request *rq);
void rpc_extend_reservation(broker *b, const request *rq);
void rpc_release_reservation(broker *b, const request *rq);
/* The reservation an id or prefix names, or NULL after an error reply. */
const reservation *rpc_find_reservation(broker *b, const request *rq, const char *id);
/* GPUs an account holds, for its quota: members of its active clusters not
 * carved out of a reservation (a vacant seat counts as asked), and the
 * workers its active reservations want. */
uint64_t rpc_held_gpus(broker *b, const char *owner);
void rpc_reservation_event(void *arg, const reservation *r, const char *topic, const worker *w,
                           const char *detail);
/* Verification (rpc_verify.c): core callbacks and the agents' answers. */
void rpc_verify_challenge(void *arg, const worker *w, uint64_t challenge_id, const pow_params *p,
                          uint32_t expected_ms);
void rpc_verify_spots(void *arg, const worker *w, uint64_t challenge_id, const uint32_t *idx,
                      uint32_t n);
void rpc_verify_verdict(void *arg, const worker *w, const verify_result *r, verify_state from,
                        verify_state to);
void rpc_pow_commit(broker *b, const request *rq);
void rpc_pow_proofs(broker *b, const request *rq);
/* A VerificationResult that borrows from r and text. */
void rpc_verify_result_fill(const verify_result *r, Muster__VerificationResult *out, char *text,
                            size_t cap);
/* The cluster named by a client (id or unique prefix), or NULL after an
 * error reply (not found, ambiguous, too short). */
const cluster *rpc_find_cluster(broker *b, const request *rq, const char *id);

/* Filtered event subscriptions (rpc_events.c). */
void rpc_subscribe(broker *b, const request *rq);
/* Send an event envelope published under topic to the subscribers who
 * may see it. */
void events_deliver(broker *b, const char *topic, const Muster__Envelope *env);
void events_free(broker *b);

/* Tasks (rpc_tasks.c): clients' requests, agents' reports. */
void rpc_submit_tasks(broker *b, const request *rq);
void rpc_list_tasks(broker *b, const request *rq);
void rpc_get_task(broker *b, const request *rq);
void rpc_cancel_task(broker *b, const request *rq);
void rpc_task_logs(broker *b, const request *rq);
void rpc_task_output(broker *b, const request *rq);
void rpc_task_exit(broker *b, const request *rq);
void rpc_task_report(broker *b, const request *rq);
int tasks_init(broker *b, mu_error *errp);
void tasks_free(broker *b);
/* A cluster changed (members, state): follow it. */
void tasks_cluster_event(broker *b, const cluster *c);
/* A worker changed liveness, or registered (then it must say again what
 * it runs before it gets new tasks). */
void tasks_worker_changed(broker *b, const worker *w, bool registered);
/* End of a batch: timeouts, then start what can start. */
void tasks_flush(broker *b);
uint64_t tasks_next_deadline(const broker *b);
/* Persistence: save the batch's changed tasks (inside its transaction);
 * after the commit, tasks_saved; load after clusters; reset before a
 * reload. */
bool tasks_pending(const broker *b);
int tasks_save_dirty(broker *b, mu_error *errp);
void tasks_saved(broker *b);
int tasks_load(broker *b, mu_error *errp);
void tasks_reset(broker *b);
int tasks_check(const broker *b, mu_error *errp);
void tasks_counts(const broker *b, size_t *tasks, size_t *running);
/* A cluster's tasks (NULL: none ever), and one's accepted spec (the
 * caller frees it with muster__task_spec__free_unpacked). */
const taskset *tasks_of(const broker *b, const cluster *c);
Muster__TaskSpec *tasks_spec(const broker *b, const cluster *c, uint32_t number);

/* --- durability (persist.c) --- */

typedef enum out_kind { OUT_AGENT, OUT_CLIENT, OUT_EVENT, OUT_WEBHOOK } out_kind;
typedef struct outbox outbox;

/* Lock the state directory, open the store, build the core from it. */
int persist_open(broker *b, mu_error *errp);
void persist_close(broker *b);
/* Send env now, or, inside a batch, once the batch's changes are saved.
 * is_reply: a reply, turned into an "unavailable" error if saving fails. */
void persist_queue(broker *b, out_kind kind, const zs_peer *peer, const char *topic,
                   const Muster__Envelope *env, bool is_reply);
/* A webhook delivery (body taken: mu_malloc'd) for account, sent once the
 * batch is saved. */
void persist_queue_webhook(broker *b, const char *acct, const char *type, uint8_t *body,
                           size_t len);
void persist_begin_batch(broker *b);
/* Fail the batch (out of memory): its replies become errors, nothing of it
 * is saved. */
void persist_fail(broker *b, const char *what);
/* Save the batch's changes, then send what waited. If saving fails, every
 * waiting reply becomes an error and the core is rebuilt from the store.
 * -1 only when even that fails (the broker cannot go on). */
int persist_end_batch(broker *b, mu_error *errp);
/* A (re-)registration, with the message the agent sent. */
void persist_worker(broker *b, const worker *w, const Muster__Register *m);
/* Save the key a worker's id is now bound to. */
void persist_worker_key(broker *b, const worker *w, const char *key);
/* Changes to save at the end of the batch. */
void persist_uptime(broker *b, const worker *w);
void persist_cluster(broker *b, const cluster *c);
void persist_reservation(broker *b, const reservation *r);
int persist_check(broker *b, FILE *out, mu_error *errp);
int persist_dump(broker *b, FILE *out, mu_error *errp);

/* Create the core (b->core, b->reg) with the broker's callbacks. */
int broker_core_create(broker *b, mu_error *errp);
/* Forget every routing id: agents must register again. */
void broker_forget_peers(broker *b);
int broker_spec_from_register(const Muster__Register *m,
                              worker_device_spec devs[WORKER_MAX_DEVICES], worker_spec *spec,
                              mu_error *errp);

/* The worker behind a routing id, or NULL. */
const worker *broker_peer_worker(broker *b, const zs_peer *peer);
/* The routing id of a connected worker: 0, or -1 when not connected. */
int broker_worker_peer(const broker *b, const worker *w, zs_peer *out);
/* Send an unsolicited message to an agent. */
void broker_send_agent(broker *b, const zs_peer *peer, const Muster__Envelope *env);

#endif
