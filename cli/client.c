/* client.c - see include/muster/client.h. */
#include "muster/client.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <zmq.h>

#include "alloc.h"
#include "clock.h"
#include "keys.h"
#include "wire.h"
#include "zsock.h"

struct muster_client {
    void *zctx;
    void *sock;
    void *mon; /* CURVE only: handshake failures of sock, so a refused key is said at once */
    int timeout_ms;
    uint64_t next_request_id;
};

/* CURVE options on a socket about to connect. */
static int set_curve(void *sock, const muster_curve *curve, mu_error *errp)
{
    if (!key_valid(curve->server_key) || !key_valid(curve->public_key) ||
        !key_valid(curve->secret_key))
        return errprintf(errp, "CURVE: a key is not 40 characters of Z85");
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, curve->server_key, 40) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, curve->public_key, 40) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, curve->secret_key, 40) < 0)
        return errprintf(errp, "CURVE: %s", zmq_strerror(errno));
    return 0;
}

muster_client *muster_client_create_curve(const char *endpoint, int timeout_ms,
                                          const muster_curve *curve, mu_error *errp)
{
    muster_client *c = mu_calloc(1, sizeof(*c));
    if (!c)
        return errprintf(errp, "out of memory"), NULL;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    /* Request ids need only differ between calls on this socket; starting
     * from the clock keeps them from repeating across runs in logs. */
    c->next_request_id = clock_wall_ms() << 8;
    if (!(c->zctx = zmq_ctx_new())) {
        errprintf(errp, "zmq_ctx_new: %s", zmq_strerror(errno));
        goto error;
    }
    if (!(c->sock = zs_socket(c->zctx, ZMQ_DEALER, 256 << 20, errp)))
        goto error;
    if (curve) {
        char ep[64];
        snprintf(ep, sizeof(ep), "inproc://muster-client-%p", (void *)c);
        if (set_curve(c->sock, curve, errp) < 0)
            goto error;
        if (zmq_socket_monitor(c->sock, ep,
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                   ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) < 0 ||
            !(c->mon = zmq_socket(c->zctx, ZMQ_PAIR)) || zmq_connect(c->mon, ep) < 0) {
            errprintf(errp, "socket monitor: %s", zmq_strerror(errno));
            goto error;
        }
    }
    if (zs_connect(c->sock, endpoint, errp) < 0)
        goto error;
    return c;
error:
    muster_client_destroy(c);
    return NULL;
}

muster_client *muster_client_create(const char *endpoint, int timeout_ms, mu_error *errp)
{
    return muster_client_create_curve(endpoint, timeout_ms, NULL, errp);
}

/* A handshake failure the monitor reported: -1 with the reason, else 0. */
static int handshake_failed(muster_client *c, mu_error *errp)
{
    for (;;) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, c->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return 0;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&ev) >= 2)
            memcpy(&event, zmq_msg_data(&ev), 2);
        int more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        while (more) { /* the endpoint frame */
            zmq_msg_t f;
            zmq_msg_init(&f);
            more = zmq_msg_recv(&f, c->mon, 0) >= 0 && zmq_msg_more(&f);
            zmq_msg_close(&f);
        }
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            errno = EACCES;
            return errprintf(errp, "the broker refused this client's key: no account has it "
                                   "(ask the broker's operator to add your public key)");
        }
        if (event) {
            errno = EACCES;
            return errprintf(errp, "the encrypted handshake with the broker failed: is the "
                                   "broker key its public key, and is it started with --key?");
        }
    }
}

void muster_client_destroy(muster_client *c)
{
    if (!c)
        return;
    if (c->mon) {
        zmq_socket_monitor(c->sock, NULL, 0);
        zs_close(c->mon);
    }
    zs_close(c->sock);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    mu_free(c);
}

int muster_client_call(muster_client *c, Muster__Envelope *req, Muster__Envelope **reply,
                       mu_error *errp)
{
    req->version = WIRE_PROTOCOL_VERSION;
    req->request_id = ++c->next_request_id;
    if (zs_send(c->sock, NULL, req, errp) < 0) {
        errno = EIO;
        return -1;
    }
    uint64_t deadline = clock_mono_ms() + (uint64_t)c->timeout_ms;
    for (;;) {
        uint64_t now = clock_mono_ms();
        if (now >= deadline) {
            errno = ETIMEDOUT;
            return errprintf(errp, "no reply from the broker within %d ms: is musterd running?",
                             c->timeout_ms);
        }
        zmq_pollitem_t it[2] = {{c->sock, 0, ZMQ_POLLIN, 0}, {c->mon, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, c->mon ? 2 : 1, (long)(deadline - now)) < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            errprintf(errp, "zmq_poll: %s", zmq_strerror(e));
            errno = e;
            return -1;
        }
        if (c->mon && (it[1].revents & ZMQ_POLLIN) && handshake_failed(c, errp) < 0)
            return -1;
        if (!(it[0].revents & ZMQ_POLLIN))
            continue;
        zs_msg msg;
        if (zs_recv(c->sock, false, true, &msg) < 0)
            continue;
        Muster__Envelope *env = NULL;
        Muster__Status st;
        uint64_t rid;
        mu_error derr;
        int rc = msg.bad_framing
                     ? -1
                     : wire_decode_reply(zmq_msg_data(&msg.payload), zmq_msg_size(&msg.payload),
                                         256u << 20, &env, &st, &rid, &derr);
        zs_msg_close(&msg);
        if (rc < 0) {
            errno = EPROTO;
            return errprintf(errp, "undecodable reply from the broker");
        }
        if (env->request_id != req->request_id) {
            wire_free(env); /* a late reply to an earlier call */
            continue;
        }
        *reply = env;
        return 0;
    }
}

/* Put request BODY in *req. Its body case is found from BODY's type: every
 * request type is the type of one member of the envelope's oneof, and those
 * members share one pointer (a union), at the offset the descriptor gives.
 * So each call below needs only to fill its request. -1 when BODY is not a
 * message the envelope carries. */
static int envelope_for(Muster__Envelope *req, const ProtobufCMessage *body)
{
    const ProtobufCMessageDescriptor *d = &muster__envelope__descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->descriptor != body->descriptor)
            continue;
        wire_envelope_init(req, 0);
        req->body_case = (Muster__Envelope__BodyCase)f->id;
        memcpy((char *)req + f->offset, &body, sizeof(body));
        return 0;
    }
    return -1;
}

/* Send request BODY and check that the reply is OK with the body WANT. A
 * STATUS_NOT_MET reply with its `not_met` body goes to *not_met when that is
 * not NULL (else it is freed); *not_met is NULL otherwise. */
static int call_expect_nm(muster_client *c, const ProtobufCMessage *body,
                          Muster__Envelope__BodyCase want, Muster__Envelope **reply,
                          Muster__Envelope **not_met, Muster__Status *status, mu_error *errp)
{
    Muster__Envelope req, *env;
    if (status)
        *status = MUSTER__STATUS__STATUS_OK;
    if (not_met)
        *not_met = NULL;
    if (envelope_for(&req, body) < 0) {
        errno = EINVAL;
        return errprintf(errp, "%s is not a request the broker takes", body->descriptor->name);
    }
    if (muster_client_call(c, &req, &env, errp) < 0)
        return -1;
    if (env->status != MUSTER__STATUS__STATUS_OK) {
        if (status)
            *status = env->status;
        const char *why = env->reason && *env->reason ? env->reason : NULL;
        bool has_body = env->status == MUSTER__STATUS__STATUS_NOT_MET &&
                        env->body_case == MUSTER__ENVELOPE__BODY_NOT_MET && env->not_met;
        if (!why && has_body && env->not_met->explanation && *env->not_met->explanation)
            why = env->not_met->explanation;
        errprintf(errp, "%s", why ? why : wire_status_name(env->status));
        if (has_body && not_met)
            *not_met = env;
        else
            wire_free(env);
        errno = EREMOTEIO;
        return -1;
    }
    if (env->body_case != want) {
        wire_free(env);
        errno = EPROTO;
        return errprintf(errp, "unexpected reply from the broker");
    }
    *reply = env;
    return 0;
}

static int call_expect(muster_client *c, const ProtobufCMessage *body,
                       Muster__Envelope__BodyCase want, Muster__Envelope **reply,
                       Muster__Status *status, mu_error *errp)
{
    return call_expect_nm(c, body, want, reply, NULL, status, errp);
}

int muster_list_workers(muster_client *c, const Muster__ListWorkersRequest *q,
                        Muster__Envelope **reply, Muster__Status *status, mu_error *errp)
{
    return call_expect(c, &q->base, MUSTER__ENVELOPE__BODY_LIST_WORKERS_REPLY, reply, status, errp);
}

int muster_get_worker(muster_client *c, const char *id, Muster__Envelope **reply,
                      Muster__Status *status, mu_error *errp)
{
    Muster__GetWorkerRequest q = MUSTER__GET_WORKER_REQUEST__INIT;
    q.id = (char *)id;
    return call_expect(c, &q.base, MUSTER__ENVELOPE__BODY_GET_WORKER_REPLY, reply, status, errp);
}

int muster_broker_status(muster_client *c, Muster__Envelope **reply, Muster__Status *status,
                         mu_error *errp)
{
    Muster__StatusRequest q = MUSTER__STATUS_REQUEST__INIT;
    return call_expect(c, &q.base, MUSTER__ENVELOPE__BODY_BROKER_STATUS_REPLY, reply, status, errp);
}

int muster_quote(muster_client *c, const Muster__ClusterSpec *spec, Muster__Envelope **reply,
                 Muster__Envelope **not_met, Muster__Status *status, mu_error *errp)
{
    Muster__QuoteRequest q = MUSTER__QUOTE_REQUEST__INIT;
    q.spec = (Muster__ClusterSpec *)spec;
    return call_expect_nm(c, &q.base, MUSTER__ENVELOPE__BODY_QUOTE_REPLY, reply, not_met, status,
                          errp);
}

int muster_create_cluster(muster_client *c, const Muster__ClusterSpec *spec, const char *owner,
                          Muster__Envelope **reply, Muster__Envelope **not_met,
                          Muster__Status *status, mu_error *errp)
{
    Muster__CreateClusterRequest q = MUSTER__CREATE_CLUSTER_REQUEST__INIT;
    q.spec = (Muster__ClusterSpec *)spec;
    q.owner = (char *)(owner ? owner : "");
    return call_expect_nm(c, &q.base, MUSTER__ENVELOPE__BODY_CLUSTER_REPLY, reply, not_met, status,
                          errp);
}

int muster_create_cluster_from(muster_client *c, const Muster__ClusterSpec *spec, const char *owner,
                               const char *reservation, Muster__Envelope **reply,
                               Muster__Envelope **not_met, Muster__Status *status, mu_error *errp)
{
    Muster__CreateClusterRequest q = MUSTER__CREATE_CLUSTER_REQUEST__INIT;
    q.spec = (Muster__ClusterSpec *)spec;
    q.owner = (char *)(owner ? owner : "");
    q.from_reservation = (char *)(reservation ? reservation : "");
    return call_expect_nm(c, &q.base, MUSTER__ENVELOPE__BODY_CLUSTER_REPLY, reply, not_met, status,
                          errp);
}

int muster_create_reservation(muster_client *c, const Muster__ClusterSpec *spec,
                              uint32_t min_workers, uint32_t hours, const char *owner,
                              Muster__Envelope **reply, Muster__Envelope **not_met,
                              Muster__Status *status, mu_error *errp)
{
    Muster__CreateReservationRequest q = MUSTER__CREATE_RESERVATION_REQUEST__INIT;
    q.spec = (Muster__ClusterSpec *)spec;
    q.min_workers = min_workers;
    q.hours = hours;
    q.owner = (char *)(owner ? owner : "");
    return call_expect_nm(c, &q.base, MUSTER__ENVELOPE__BODY_RESERVATION_REPLY, reply, not_met,
                          status, errp);
}

int muster_get_reservation(muster_client *c, const char *id, Muster__Envelope **reply,
                           Muster__Status *status, mu_error *errp)
{
    Muster__GetReservationRequest q = MUSTER__GET_RESERVATION_REQUEST__INIT;
    q.id = (char *)id;
    return call_expect(c, &q.base, MUSTER__ENVELOPE__BODY_RESERVATION_REPLY, reply, status, errp);
}

int muster_list_reservations(muster_client *c, const Muster__ListReservationsRequest *q,
                             Muster__Envelope **reply, Muster__Status *status, mu_error *errp)
{
    return call_expect(c, &q->base, MUSTER__ENVELOPE__BODY_LIST_RESERVATIONS_REPLY, reply, status,
                       errp);
}

int muster_extend_reservation(muster_client *c, const char *id, uint32_t hours,
                              Muster__Envelope **reply, Muster__Status *status, mu_error *errp)
{
    Muster__ExtendReservationRequest q = MUSTER__EXTEND_RESERVATION_REQUEST__INIT;
    q.id = (char *)id;
    q.hours = hours;
    return call_expect(c, &q.base, MUSTER__ENVELOPE__BODY_RESERVATION_REPLY, reply, status, errp);
}

int muster_release_reservation(muster_client *c, const char *id, const char *reason,
                               Muster__Envelope **reply, Muster__Status *status, mu_error *errp)
{
    Muster__ReleaseReservationRequest q = MUSTER__RELEASE_RESERVATION_REQUEST__INIT;
    q.id = (char *)id;
    q.reason = (char *)(reason ? reason : "");
    return call_expect(c, &q.base, MUSTER__ENVELOPE__BODY_RESERVATION_REPLY, reply, status, errp);
}

int muster_get_cluster(muster_client *c, const char *id, Muster__Envelope **reply,
                       Muster__Status *status, mu_error *errp)
{
    Muster__GetClusterRequest q = MUSTER__GET_CLUSTER_REQUEST__INIT;
    q.id = (char *)id;
    return call_expect(c, &q.base, MUSTER__ENVELOPE__BODY_CLUSTER_REPLY, reply, status, errp);
}

int muster_list_clusters(muster_client *c, const Muster__ListClustersRequest *q,
                         Muster__Envelope **reply, Muster__Status *status, mu_error *errp)
{
    return call_expect(c, &q->base, MUSTER__ENVELOPE__BODY_LIST_CLUSTERS_REPLY, reply, status,
                       errp);
}

int muster_extend_cluster(muster_client *c, const char *id, uint32_t hours,
                          Muster__Envelope **reply, Muster__Status *status, mu_error *errp)
{
    Muster__ExtendClusterRequest q = MUSTER__EXTEND_CLUSTER_REQUEST__INIT;
    q.id = (char *)id;
    q.hours = hours;
    return call_expect(c, &q.base, MUSTER__ENVELOPE__BODY_CLUSTER_REPLY, reply, status, errp);
}

int muster_release_cluster(muster_client *c, const char *id, const char *reason,
                           Muster__Envelope **reply, Muster__Status *status, mu_error *errp)
{
    Muster__ReleaseClusterRequest q = MUSTER__RELEASE_CLUSTER_REQUEST__INIT;
    q.id = (char *)id;
    q.reason = (char *)(reason ? reason : "");
    return call_expect(c, &q.base, MUSTER__ENVELOPE__BODY_CLUSTER_REPLY, reply, status, errp);
}

int muster_shrink_cluster(muster_client *c, const char *id, Muster__Envelope **reply,
                          Muster__Status *status, mu_error *errp)
{
    Muster__ShrinkClusterRequest q = MUSTER__SHRINK_CLUSTER_REQUEST__INIT;
    q.id = (char *)id;
    return call_expect(c, &q.base, MUSTER__ENVELOPE__BODY_CLUSTER_REPLY, reply, status, errp);
}

int muster_search(muster_client *c, const Muster__SearchRequest *q, Muster__Envelope **reply,
                  Muster__Status *status, mu_error *errp)
{
    return call_expect(c, &q->base, MUSTER__ENVELOPE__BODY_SEARCH_REPLY, reply, status, errp);
}

/* --- tasks ---------------------------------------------------------------------- */

int muster_submit_tasks(muster_client *c, const Muster__SubmitTasksRequest *q,
                        Muster__Envelope **reply, Muster__Status *status, mu_error *errp)
{
    return call_expect(c, &q->base, MUSTER__ENVELOPE__BODY_SUBMIT_TASKS_REPLY, reply, status, errp);
}

int muster_list_tasks(muster_client *c, const Muster__ListTasksRequest *q, Muster__Envelope **reply,
                      Muster__Status *status, mu_error *errp)
{
    return call_expect(c, &q->base, MUSTER__ENVELOPE__BODY_LIST_TASKS_REPLY, reply, status, errp);
}

int muster_get_task(muster_client *c, const char *cluster, uint32_t number,
                    Muster__Envelope **reply, Muster__Status *status, mu_error *errp)
{
    Muster__GetTaskRequest q = MUSTER__GET_TASK_REQUEST__INIT;
    q.cluster_id = (char *)cluster;
    q.number = number;
    return call_expect(c, &q.base, MUSTER__ENVELOPE__BODY_TASK_REPLY, reply, status, errp);
}

int muster_cancel_task(muster_client *c, const char *cluster, uint32_t number,
                       Muster__Envelope **reply, Muster__Status *status, mu_error *errp)
{
    Muster__CancelTaskRequest q = MUSTER__CANCEL_TASK_REQUEST__INIT;
    q.cluster_id = (char *)cluster;
    q.number = number;
    return call_expect(c, &q.base, MUSTER__ENVELOPE__BODY_TASK_REPLY, reply, status, errp);
}

int muster_task_logs(muster_client *c, const char *cluster, uint32_t number, uint64_t offset,
                     uint32_t max_bytes, Muster__Envelope **reply, Muster__Status *status,
                     mu_error *errp)
{
    Muster__TaskLogsRequest q = MUSTER__TASK_LOGS_REQUEST__INIT;
    q.cluster_id = (char *)cluster;
    q.number = number;
    q.offset = offset;
    q.max_bytes = max_bytes;
    return call_expect(c, &q.base, MUSTER__ENVELOPE__BODY_TASK_LOGS_REPLY, reply, status, errp);
}

/* --- events --------------------------------------------------------------------- */

struct muster_events {
    void *zctx;
    void *sock;
    /* A subscription on the client endpoint (muster_events_subscribe): the
     * client it runs on, its request, and when to renew its lease. */
    muster_client *mc;
    Muster__SubscribeRequest req;
    char *topic;
    uint64_t renew_at;
    uint32_t lease_ms;
};

/* The largest event the client accepts; events are small. */
#define EVENT_MAX_BYTES (1u << 20)

muster_events *muster_events_open(const char *endpoint, const char *topic_prefix, mu_error *errp)
{
    return muster_events_open_curve(endpoint, topic_prefix, NULL, errp);
}

muster_events *muster_events_open_curve(const char *endpoint, const char *topic_prefix,
                                        const muster_curve *curve, mu_error *errp)
{
    muster_events *ev = mu_calloc(1, sizeof(*ev));
    if (!ev)
        return errprintf(errp, "out of memory"), NULL;
    if (!topic_prefix)
        topic_prefix = "";
    if (!(ev->zctx = zmq_ctx_new())) {
        errprintf(errp, "zmq_ctx_new: %s", zmq_strerror(errno));
        goto error;
    }
    if (!(ev->sock = zs_socket(ev->zctx, ZMQ_SUB, 4 * (int64_t)EVENT_MAX_BYTES, errp)))
        goto error;
    if (curve && set_curve(ev->sock, curve, errp) < 0)
        goto error;
    if (zmq_setsockopt(ev->sock, ZMQ_SUBSCRIBE, topic_prefix, strlen(topic_prefix)) < 0) {
        errprintf(errp, "subscribe to \"%s\": %s", topic_prefix, zmq_strerror(errno));
        goto error;
    }
    if (zs_connect(ev->sock, endpoint, errp) < 0)
        goto error;
    return ev;
error:
    muster_events_close(ev);
    return NULL;
}

/* Ask (again) for the subscription; the reply is skipped by next(). */
static int subscribe_send(muster_events *ev, mu_error *errp)
{
    Muster__Envelope env;
    wire_envelope_init(&env, ++ev->mc->next_request_id);
    env.version = WIRE_PROTOCOL_VERSION;
    env.body_case = MUSTER__ENVELOPE__BODY_SUBSCRIBE;
    env.subscribe = &ev->req;
    if (zs_send(ev->mc->sock, NULL, &env, errp) < 0)
        return -1;
    ev->renew_at = clock_mono_ms() + ev->lease_ms / 3;
    return 0;
}

muster_events *muster_events_subscribe(const char *client_endpoint, const char *topic_prefix,
                                       const muster_curve *curve, int timeout_ms, mu_error *errp)
{
    muster_events *ev = mu_calloc(1, sizeof(*ev));
    if (!ev)
        return errprintf(errp, "out of memory"), NULL;
    if (!(ev->mc = muster_client_create_curve(client_endpoint, timeout_ms, curve, errp)))
        goto error;
    ev->sock = ev->mc->sock; /* borrowed: closed with mc */
    muster__subscribe_request__init(&ev->req);
    ev->lease_ms = 30000;
    ev->req.lease_ms = ev->lease_ms;
    if (topic_prefix && *topic_prefix) {
        if (!(ev->topic = mu_strdup(topic_prefix))) {
            errprintf(errp, "out of memory");
            goto error;
        }
        ev->req.topics = &ev->topic;
        ev->req.n_topics = 1;
    }
    /* The first time, wait for the answer: a refused key or a broker that
     * is not there is said now. */
    Muster__Envelope req, *rep = NULL;
    wire_envelope_init(&req, 0);
    req.body_case = MUSTER__ENVELOPE__BODY_SUBSCRIBE;
    req.subscribe = &ev->req;
    if (muster_client_call(ev->mc, &req, &rep, errp) < 0)
        goto error;
    if (rep->status != MUSTER__STATUS__STATUS_OK) {
        errno = EREMOTEIO;
        errprintf(errp, "%s", rep->reason ? rep->reason : "subscription refused");
        wire_free(rep);
        goto error;
    }
    wire_free(rep);
    ev->renew_at = clock_mono_ms() + ev->lease_ms / 3;
    return ev;
error:
    muster_events_close(ev);
    return NULL;
}

void muster_events_close(muster_events *ev)
{
    if (!ev)
        return;
    if (ev->mc) {
        muster_client_destroy(ev->mc);
        mu_free(ev->topic);
        mu_free(ev);
        return;
    }
    zs_close(ev->sock);
    if (ev->zctx)
        zmq_ctx_term(ev->zctx);
    mu_free(ev);
}

/* Receive one whole message that is waiting: 0 and the last frame in
 * *payload (the caller closes it), with *frames its number of frames; -1
 * with errno (EAGAIN: nothing there). */
static int recv_event_frames(void *sock, zmq_msg_t *payload, int *frames)
{
    *frames = 0;
    zmq_msg_init(payload);
    for (;;) {
        zmq_msg_close(payload);
        zmq_msg_init(payload);
        if (zmq_msg_recv(payload, sock, *frames ? 0 : ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(payload);
            errno = e;
            return -1;
        }
        (*frames)++;
        if (!zmq_msg_more(payload))
            return 0;
    }
}

int muster_events_next(muster_events *ev, int timeout_ms, Muster__Envelope **event, mu_error *errp)
{
    uint64_t deadline = timeout_ms >= 0 ? clock_mono_ms() + (uint64_t)timeout_ms : UINT64_MAX;
    for (;;) {
        long wait = -1;
        if (timeout_ms >= 0) {
            uint64_t now = clock_mono_ms();
            wait = now >= deadline ? 0 : (long)(deadline - now);
        }
        if (ev->mc) {
            /* A subscription lapses unless renewed. */
            uint64_t now = clock_mono_ms();
            if (now >= ev->renew_at && subscribe_send(ev, errp) < 0)
                return -1;
            long to_renew = (long)(ev->renew_at - clock_mono_ms());
            if (wait < 0 || to_renew < wait)
                wait = to_renew > 0 ? to_renew : 0;
        }
        zmq_pollitem_t it = {ev->sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&it, 1, wait);
        if (n < 0) {
            int e = errno;
            errprintf(errp, "zmq_poll: %s", zmq_strerror(e));
            errno = e;
            return -1;
        }
        if (n == 0 || !(it.revents & ZMQ_POLLIN)) {
            if (timeout_ms >= 0 && clock_mono_ms() >= deadline)
                return 1;
            continue;
        }
        zmq_msg_t payload;
        int frames;
        if (recv_event_frames(ev->sock, &payload, &frames) < 0) {
            if (errno == EAGAIN)
                continue;
            if (errno == EINTR) {
                errprintf(errp, "interrupted");
                errno = EINTR;
                return -1;
            }
            int e = errno;
            errprintf(errp, "receive an event: %s", zmq_strerror(e));
            errno = e;
            return -1;
        }
        Muster__Envelope *env = NULL;
        Muster__Status st;
        uint64_t rid;
        /* PUB: topic and envelope; a subscription: the envelope alone. */
        int rc = frames != (ev->mc ? 1 : 2)
                     ? -1
                     : wire_decode_reply(zmq_msg_data(&payload), zmq_msg_size(&payload),
                                         EVENT_MAX_BYTES, &env, &st, &rid, NULL);
        zmq_msg_close(&payload);
        if (rc < 0)
            continue; /* not an event as docs/protocol.md frames it: skip */
        if (env->body_case != MUSTER__ENVELOPE__BODY_EVENT || !env->event) {
            wire_free(env);
            continue;
        }
        *event = env;
        return 0;
    }
}
