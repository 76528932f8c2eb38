/* muster/client.h - the C client library: talk to musterd's client endpoint.
 *
 * A client is one DEALER socket to the broker. Each call sends one Envelope
 * and waits for the reply carrying the same request id (replies to earlier,
 * timed-out calls are skipped). Messages are the generated protobuf-c types
 * of proto/muster.proto, so everything the wire can say, the library can.
 *
 * Not thread-safe: one client per thread.
 */
#ifndef MUSTER_CLIENT_H
#define MUSTER_CLIENT_H

#include <stdint.h>

#include "error.h"
#include "muster.pb-c.h"

typedef struct muster_client muster_client;

/* Connect to ENDPOINT (e.g. "tcp://127.0.0.1:7701"); calls wait at most
 * timeout_ms for a reply. Connecting does not wait for the broker: a broker
 * that is not there shows up as a timeout on the first call. NULL with a
 * reason on failure. */
muster_client *muster_client_create(const char *endpoint, int timeout_ms, mu_error *errp);

/* CURVE (a broker started with --key): the broker's public key and this
 * client's key pair, each 40 characters of Z85 (`muster keygen`). */
typedef struct muster_curve {
    const char *server_key;
    const char *public_key;
    const char *secret_key;
} muster_curve;

/* As muster_client_create, encrypted and authenticated when curve is not
 * NULL. A key the broker refuses (no account has it) or a wrong broker key
 * fails the next call at once, with errno EACCES and a reason, instead of
 * timing out. */
muster_client *muster_client_create_curve(const char *endpoint, int timeout_ms,
                                          const muster_curve *curve, mu_error *errp);
void muster_client_destroy(muster_client *c);

/* Send REQ (its version and request id are set here) and wait for the reply.
 * Returns 0 and *reply, which the caller frees with wire_free and which may
 * carry an error status with its reason; or -1 with a reason when no reply
 * came (errno ETIMEDOUT) or the reply could not be decoded (EPROTO). */
int muster_client_call(muster_client *c, Muster__Envelope *req, Muster__Envelope **reply,
                       mu_error *errp);

/* Convenience calls: each returns 0 and a reply whose status is OK and
 * whose body is the expected one (the caller frees it with wire_free); -1
 * with a reason otherwise (errno ETIMEDOUT, EPROTO, or EREMOTEIO when the
 * broker answered with an error, whose status is then in *status when
 * status is not NULL). */
int muster_list_workers(muster_client *c, const Muster__ListWorkersRequest *q,
                        Muster__Envelope **reply, Muster__Status *status, mu_error *errp);
int muster_get_worker(muster_client *c, const char *id, Muster__Envelope **reply,
                      Muster__Status *status, mu_error *errp);
int muster_broker_status(muster_client *c, Muster__Envelope **reply, Muster__Status *status,
                         mu_error *errp);

/* --- clusters ----------------------------------------------------------------
 *
 * A quote or a cluster request that is valid but cannot be served by the
 * fleet now is answered with STATUS_NOT_MET and a `not_met` body: why (the
 * constraint that ran out, how many members the request could get) and the
 * nearest requests that would succeed. muster_quote and
 * muster_create_cluster then return -1 with errno EREMOTEIO, *status
 * STATUS_NOT_MET, the explanation as the reason, and, when not_met is not
 * NULL, that whole reply in *not_met (its body_case is
 * MUSTER__ENVELOPE__BODY_NOT_MET): the caller frees it with wire_free. On
 * every other outcome *not_met is set to NULL. */

/* What SPEC would get and cost now (reply body `quote_reply`). Reserves
 * nothing. */
int muster_quote(muster_client *c, const Muster__ClusterSpec *spec, Muster__Envelope **reply,
                 Muster__Envelope **not_met, Muster__Status *status, mu_error *errp);

/* Ask for a cluster for OWNER (reply body `cluster_reply`). Its members are
 * chosen and allocated at once; the cluster starts as "provisioning" and is
 * "ready" once every member has acknowledged joining (watch its events, or
 * poll muster_get_cluster). */
int muster_create_cluster(muster_client *c, const Muster__ClusterSpec *spec, const char *owner,
                          Muster__Envelope **reply, Muster__Envelope **not_met,
                          Muster__Status *status, mu_error *errp);

/* As muster_create_cluster, carved out of RESERVATION (an id or a unique
 * prefix): its members come only from the reservation's free members, and
 * go back to it when the cluster ends; it may not outlast the reservation.
 * NOT_MET when too few of them are free and fit SPEC. */
int muster_create_cluster_from(muster_client *c, const Muster__ClusterSpec *spec, const char *owner,
                               const char *reservation, Muster__Envelope **reply,
                               Muster__Envelope **not_met, Muster__Status *status, mu_error *errp);

/* --- reservations (managed brokers) -------------------------------------------
 *
 * Reserve SPEC's workers (at least MIN_WORKERS, 0: all or nothing) for HOURS
 * at a commitment price (10% off for a week or more, 20% for 30 days, 30%
 * for 90 days), for OWNER (over CURVE: the asking account). Reply body
 * `reservation_reply`; NOT_MET as for clusters, nothing reserved then. A
 * reservation below its wanted count takes workers as they become free,
 * before self-service requests; lost members are replaced. Carve clusters
 * out of it with muster_create_cluster_from. */
int muster_create_reservation(muster_client *c, const Muster__ClusterSpec *spec,
                              uint32_t min_workers, uint32_t hours, const char *owner,
                              Muster__Envelope **reply, Muster__Envelope **not_met,
                              Muster__Status *status, mu_error *errp);
/* One reservation with its members, in use or free (`reservation_reply`). */
int muster_get_reservation(muster_client *c, const char *id, Muster__Envelope **reply,
                           Muster__Status *status, mu_error *errp);
/* Reservations, newest first (`list_reservations_reply`). */
int muster_list_reservations(muster_client *c, const Muster__ListReservationsRequest *q,
                             Muster__Envelope **reply, Muster__Status *status, mu_error *errp);
/* Add HOURS to an active reservation; its price per hour stays. */
int muster_extend_reservation(muster_client *c, const char *id, uint32_t hours,
                              Muster__Envelope **reply, Muster__Status *status, mu_error *errp);
/* End it now: free members at once, members in use when their cluster ends. */
int muster_release_reservation(muster_client *c, const char *id, const char *reason,
                               Muster__Envelope **reply, Muster__Status *status, mu_error *errp);

/* One cluster, with members and history (reply body `cluster_reply`). ID is
 * a full id or a unique prefix of at least 4 characters. */
int muster_get_cluster(muster_client *c, const char *id, Muster__Envelope **reply,
                       Muster__Status *status, mu_error *errp);

/* Clusters, newest first, filtered by Q (reply body `list_clusters_reply`). */
int muster_list_clusters(muster_client *c, const Muster__ListClustersRequest *q,
                         Muster__Envelope **reply, Muster__Status *status, mu_error *errp);

/* Add HOURS to an active cluster (reply body `cluster_reply`). */
int muster_extend_cluster(muster_client *c, const char *id, uint32_t hours,
                          Muster__Envelope **reply, Muster__Status *status, mu_error *errp);

/* Give up the seats of a degraded cluster that no replacement could fill:
 * it keeps its present members at their price (reply body `cluster_reply`). */
int muster_shrink_cluster(muster_client *c, const char *id, Muster__Envelope **reply,
                          Muster__Status *status, mu_error *errp);

/* End an active cluster now and free its members; REASON may be NULL
 * (reply body `cluster_reply`). */
int muster_release_cluster(muster_client *c, const char *id, const char *reason,
                           Muster__Envelope **reply, Muster__Status *status, mu_error *errp);

/* Free workers available now, grouped by model, region and tier (reply body
 * `search_reply`). */
int muster_search(muster_client *c, const Muster__SearchRequest *q, Muster__Envelope **reply,
                  Muster__Status *status, mu_error *errp);

/* --- tasks --------------------------------------------------------------------
 *
 * Ray-style tasks run on the members of one cluster. A task is named by its
 * cluster and its number there (0, 1, 2, ... in submission order); the CLI
 * writes it CLUSTER/NUMBER. CLUSTER is a full id or a unique prefix of at
 * least 4 characters. Tasks go through waiting, ready and running to one of
 * the final states succeeded, failed or cancelled.
 *
 * The calls return like the other convenience calls: when the broker
 * answers with an error, -1 with errno EREMOTEIO, its reason in errp and
 * its status in *status. A submission is refused as a whole, with the
 * broker's reason naming the task at fault: STATUS_BAD_REQUEST when it is
 * malformed (an empty argv, a cycle in `after`, ...), STATUS_NOT_FOUND for
 * an unknown cluster, STATUS_NOT_MET when it is valid but the cluster
 * cannot run it (docs/protocol.md, "Tasks", lists the checks); a NOT_MET
 * body, if any, is freed, its explanation being the reason when the reply
 * has none. An unknown task number is STATUS_NOT_FOUND. */

/* Submit Q's tasks, a graph accepted whole or not at all (reply body
 * `submit_tasks_reply`: the cluster's full id and the numbers given, first
 * .. first + count - 1, in the order of Q's tasks). */
int muster_submit_tasks(muster_client *c, const Muster__SubmitTasksRequest *q,
                        Muster__Envelope **reply, Muster__Status *status, mu_error *errp);

/* Tasks of a cluster in number order, filtered by Q's state (reply body
 * `list_tasks_reply`: without results; with the counts by state of all the
 * cluster's tasks). */
int muster_list_tasks(muster_client *c, const Muster__ListTasksRequest *q, Muster__Envelope **reply,
                      Muster__Status *status, mu_error *errp);

/* One task, with its result (reply body `task_reply`). */
int muster_get_task(muster_client *c, const char *cluster, uint32_t number,
                    Muster__Envelope **reply, Muster__Status *status, mu_error *errp);

/* Cancel a task that is not final: it is killed if it runs, and the tasks
 * that wait for it fail (reply body `task_reply`: the task after the
 * change). A task that is already over is STATUS_CONFLICT. */
int muster_cancel_task(muster_client *c, const char *cluster, uint32_t number,
                       Muster__Envelope **reply, Muster__Status *status, mu_error *errp);

/* Up to max_bytes (0: the broker's 64 KiB) of a task's output from byte
 * OFFSET on (reply body `task_logs_reply`). Its `offset` is above the one
 * asked when older output is no longer kept; ask next from its `next`;
 * `final` says that nothing more will come. */
int muster_task_logs(muster_client *c, const char *cluster, uint32_t number, uint64_t offset,
                     uint32_t max_bytes, Muster__Envelope **reply, Muster__Status *status,
                     mu_error *errp);

/* --- events -------------------------------------------------------------------
 *
 * A SUB socket on the broker's event endpoint (StatusReply.event_endpoint).
 * Topics: "worker.<state>", and "cluster.<cluster id>" for everything about
 * one cluster; a subscription is a topic prefix ("cluster." gets every
 * cluster, "" everything). Events are fire-and-forget: what is published
 * before the subscription reaches the broker (a few milliseconds after
 * opening) is missed, so a client waiting for a state should also poll it.
 */
typedef struct muster_events muster_events;

/* Subscribe to TOPIC_PREFIX (NULL or "": everything) at ENDPOINT. NULL with
 * a reason on failure (a bad endpoint). */
muster_events *muster_events_open(const char *endpoint, const char *topic_prefix, mu_error *errp);
/* Events filtered to what this client's account may see (its own
 * clusters and their tasks, worker events; all for operators and admins),
 * over a connection of their own to the broker's CLIENT endpoint. Over
 * CURVE this is how a user gets events: the PUB socket is for operators
 * and admins. The subscription is renewed by muster_events_next. NULL with
 * a reason (errno as for calls: ETIMEDOUT, EACCES, EREMOTEIO). */
muster_events *muster_events_subscribe(const char *client_endpoint, const char *topic_prefix,
                                       const muster_curve *curve, int timeout_ms, mu_error *errp);
/* The same over CURVE (curve may be NULL). */
muster_events *muster_events_open_curve(const char *endpoint, const char *topic_prefix,
                                        const muster_curve *curve, mu_error *errp);

/* Wait at most timeout_ms (< 0: without limit) for the next event. Returns 0
 * and *event (an Envelope whose body is `event`; the caller frees it with
 * wire_free); 1 when the time ran out; -1 with a reason on error, with errno
 * EINTR when a signal interrupted the wait (a caller that handles SIGINT
 * checks its flag and calls again or stops). Malformed messages are skipped. */
int muster_events_next(muster_events *ev, int timeout_ms, Muster__Envelope **event, mu_error *errp);
void muster_events_close(muster_events *ev);

#endif
