/* client.c - see include/muster/client.h. */
#include "muster/client.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "alloc.h"
#include "clock.h"
#include "wire.h"
#include "zsock.h"

struct muster_client {
    void *zctx;
    void *sock;
    int timeout_ms;
    uint64_t next_request_id;
};

muster_client *muster_client_create(const char *endpoint, int timeout_ms, mu_error *errp)
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
    if (!(c->sock = zs_socket(c->zctx, ZMQ_DEALER, 256 << 20, errp)) ||
        zs_connect(c->sock, endpoint, errp) < 0)
        goto error;
    return c;
error:
    muster_client_destroy(c);
    return NULL;
}

void muster_client_destroy(muster_client *c)
{
    if (!c)
        return;
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
        zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, (long)(deadline - now)) < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            errprintf(errp, "zmq_poll: %s", zmq_strerror(e));
            errno = e;
            return -1;
        }
        if (!(it.revents & ZMQ_POLLIN))
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

/* Call and check that the reply is OK with the expected body. */
static int call_expect(muster_client *c, Muster__Envelope *req, Muster__Envelope__BodyCase want,
                       Muster__Envelope **reply, Muster__Status *status, mu_error *errp)
{
    Muster__Envelope *env;
    if (status)
        *status = MUSTER__STATUS__STATUS_OK;
    if (muster_client_call(c, req, &env, errp) < 0)
        return -1;
    if (env->status != MUSTER__STATUS__STATUS_OK) {
        if (status)
            *status = env->status;
        errprintf(errp, "%s",
                  env->reason && *env->reason ? env->reason : wire_status_name(env->status));
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

int muster_list_workers(muster_client *c, const Muster__ListWorkersRequest *q,
                        Muster__Envelope **reply, Muster__Status *status, mu_error *errp)
{
    Muster__Envelope req;
    wire_envelope_init(&req, 0);
    req.body_case = MUSTER__ENVELOPE__BODY_LIST_WORKERS;
    req.list_workers = (Muster__ListWorkersRequest *)q;
    return call_expect(c, &req, MUSTER__ENVELOPE__BODY_LIST_WORKERS_REPLY, reply, status, errp);
}

int muster_get_worker(muster_client *c, const char *id, Muster__Envelope **reply,
                      Muster__Status *status, mu_error *errp)
{
    Muster__GetWorkerRequest q = MUSTER__GET_WORKER_REQUEST__INIT;
    q.id = (char *)id;
    Muster__Envelope req;
    wire_envelope_init(&req, 0);
    req.body_case = MUSTER__ENVELOPE__BODY_GET_WORKER;
    req.get_worker = &q;
    return call_expect(c, &req, MUSTER__ENVELOPE__BODY_GET_WORKER_REPLY, reply, status, errp);
}

int muster_broker_status(muster_client *c, Muster__Envelope **reply, Muster__Status *status,
                         mu_error *errp)
{
    Muster__StatusRequest q = MUSTER__STATUS_REQUEST__INIT;
    Muster__Envelope req;
    wire_envelope_init(&req, 0);
    req.body_case = MUSTER__ENVELOPE__BODY_BROKER_STATUS;
    req.broker_status = &q;
    return call_expect(c, &req, MUSTER__ENVELOPE__BODY_BROKER_STATUS_REPLY, reply, status, errp);
}
