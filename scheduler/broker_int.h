/* broker_int.h - what the broker's own files share: the context and the
 * reply and event helpers. Not for use outside scheduler/. */
#ifndef MUSTERD_BROKER_INT_H
#define MUSTERD_BROKER_INT_H

#include <stdint.h>

#include "broker.h"
#include "catalog.h"
#include "idmap.h"
#include "regions.h"
#include "registry.h"
#include "sched.h"
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
    char endpoints[3][256]; /* as bound */
    idmap *peer_to_slot;    /* routing id -> worker slot */
    peer_slot *slot_peer;   /* worker slot -> routing id */
    size_t slot_peer_cap;
    counters stats;
    uint64_t started_at;
    uint64_t now; /* latest time given to the core; never decreases */
    uint64_t event_seq;
};

/* A request as handlers see it. */
typedef struct request {
    enum endpoint from;
    const zs_msg *msg;
    const Muster__Envelope *env;
} request;

typedef void (*handler_fn)(broker *b, const request *rq);

/* Reply to rq (the request id is echoed). */
void broker_reply(broker *b, const request *rq, Muster__Envelope *reply);
/* An error reply with status and reason, counted as rejected. */
void broker_error(broker *b, const request *rq, Muster__Status status, const char *reason);
/* Publish env's event under topic (first frame). */
void broker_publish(broker *b, const char *topic, Muster__Event *ev);

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
/* The worker behind a routing id, or NULL. */
const worker *broker_peer_worker(broker *b, const zs_peer *peer);
/* The routing id of a connected worker: 0, or -1 when not connected. */
int broker_worker_peer(const broker *b, const worker *w, zs_peer *out);
/* Send an unsolicited message to an agent. */
void broker_send_agent(broker *b, const zs_peer *peer, const Muster__Envelope *env);

#endif
