/* link.c - see link.h. */
#include "link.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "log.h"
#include "strutil.h"
#include "wire.h"
#include "zsock.h"

/* Until the broker tells us its pace, assume the documented defaults. */
#define DEFAULT_INTERVAL_MS 1000u
#define DEFAULT_LIVENESS    3u

typedef struct link_state {
    const agent_config *cfg;
    const Muster__Register *reg;
    void *zctx;
    void *sock;
    uint64_t next_request_id;
    uint64_t hb_seq;
    uint32_t interval_ms;
    uint32_t liveness;
    uint64_t last_recv;
    uint64_t last_send;
    uint64_t backoff_ms; /* next reconnect delay */
    bool registered;
} link_state;

static int send_env(link_state *l, Muster__Envelope *env)
{
    mu_error err;
    env->request_id = ++l->next_request_id;
    if (zs_send(l->sock, NULL, env, &err) < 0) {
        log_warn("link.send_failed", "reason=\"%s\"", err.text);
        return -1;
    }
    l->last_send = clock_mono_ms();
    return 0;
}

static void send_register(link_state *l)
{
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_REGISTER;
    env.register_ = (Muster__Register *)l->reg;
    send_env(l, &env);
}

static void send_heartbeat(link_state *l)
{
    Muster__Heartbeat hb = MUSTER__HEARTBEAT__INIT;
    hb.seq = ++l->hb_seq;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    send_env(l, &env);
}

static void send_ack(link_state *l, const char *cluster_id)
{
    Muster__ClusterAck ack = MUSTER__CLUSTER_ACK__INIT;
    ack.cluster_id = (char *)cluster_id;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_CLUSTER_ACK;
    env.cluster_ack = &ack;
    send_env(l, &env);
}

static void send_goodbye(link_state *l, const char *reason)
{
    Muster__Goodbye gb = MUSTER__GOODBYE__INIT;
    gb.reason = (char *)reason;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_GOODBYE;
    env.goodbye = &gb;
    send_env(l, &env);
}

static int open_socket(link_state *l, mu_error *errp)
{
    l->sock = zs_socket(l->zctx, ZMQ_DEALER, 64 << 20, errp);
    if (!l->sock)
        return -1;
    if (zs_connect(l->sock, l->cfg->broker, errp) < 0) {
        zs_close(l->sock);
        l->sock = NULL;
        return -1;
    }
    l->registered = false;
    l->interval_ms = DEFAULT_INTERVAL_MS;
    l->liveness = DEFAULT_LIVENESS;
    l->last_recv = clock_mono_ms();
    send_register(l);
    return 0;
}

/* Handle one message from the broker. Returns 0, or -1 with a reason when
 * the registration was refused for good. */
static int handle(link_state *l, const zs_msg *msg, mu_error *errp)
{
    Muster__Envelope *env;
    Muster__Status status;
    uint64_t rid;
    mu_error err;
    if (msg->bad_framing) {
        log_warn("link.bad_message", "reason=\"bad framing\"");
        return 0;
    }
    if (wire_decode_reply(zmq_msg_data((zmq_msg_t *)&msg->payload),
                          zmq_msg_size((zmq_msg_t *)&msg->payload), 64u << 20, &env, &status, &rid,
                          &err) < 0) {
        log_warn("link.bad_message", "reason=\"%s\"", err.text);
        return 0;
    }
    if (env->status != MUSTER__STATUS__STATUS_OK) {
        int rc = 0;
        if (env->status == MUSTER__STATUS__STATUS_UNKNOWN_WORKER) {
            log_info("link.reregister", "reason=\"%s\"", env->reason);
            l->registered = false;
            send_register(l);
        } else if (!l->registered && (env->status == MUSTER__STATUS__STATUS_BAD_REQUEST ||
                                      env->status == MUSTER__STATUS__STATUS_VERSION_MISMATCH)) {
            /* No retry can fix these: say why and stop. */
            rc = errprintf(errp, "broker refused the registration: %s", env->reason);
        } else {
            log_warn("link.error_reply", "status=%s reason=\"%s\"", wire_status_name(env->status),
                     env->reason);
        }
        wire_free(env);
        return rc;
    }
    if (env->body_case == MUSTER__ENVELOPE__BODY_REGISTER_REPLY) {
        const Muster__RegisterReply *rr = env->register_reply;
        l->registered = true;
        l->backoff_ms = l->cfg->reconnect_min_ms; /* only a success resets it */
        if (rr->heartbeat_interval_ms >= 10)
            l->interval_ms = rr->heartbeat_interval_ms;
        if (rr->liveness >= 2)
            l->liveness = rr->liveness;
        log_info("link.registered", "id=%s model=\"%s\" tier=%s region=%s heartbeat_ms=%u",
                 rr->worker_id, rr->gpu_model, rr->tier, rr->region, l->interval_ms);
        if (strcmp(rr->tier, "none") == 0)
            log_warn("link.not_hireable",
                     "reason=\"bandwidth below the broker's lowest tier: pass --bandwidth\"");
    }
    if (env->body_case == MUSTER__ENVELOPE__BODY_CLUSTER_JOIN) {
        /* Joining costs nothing yet (tasks come later): acknowledge at once
         * so the cluster can be ready. */
        const Muster__ClusterJoin *cj = env->cluster_join;
        char owner[64];
        str_sanitize(owner, sizeof(owner), cj->owner);
        log_info("cluster.joined", "cluster=%.40s owner=\"%s\" members=%u", cj->cluster_id, owner,
                 cj->members);
        send_ack(l, cj->cluster_id);
    } else if (env->body_case == MUSTER__ENVELOPE__BODY_CLUSTER_LEAVE) {
        char reason[96];
        str_sanitize(reason, sizeof(reason), env->cluster_leave->reason);
        log_info("cluster.left", "cluster=%.40s reason=\"%s\"", env->cluster_leave->cluster_id,
                 reason);
    }
    /* Heartbeat echoes and acknowledgement echoes need nothing: receiving
     * them was the point. */
    wire_free(env);
    return 0;
}

int link_run(const agent_config *cfg, const Muster__Register *reg, volatile sig_atomic_t *stop,
             mu_error *errp)
{
    link_state l = {.cfg = cfg, .reg = reg};
    int rc = 0;
    l.backoff_ms = cfg->reconnect_min_ms;
    if (!(l.zctx = zmq_ctx_new()))
        return errprintf(errp, "zmq_ctx_new: %s", zmq_strerror(errno));
    while (!*stop) {
        if (open_socket(&l, errp) < 0) {
            rc = -1;
            break;
        }
        log_info("link.connecting", "broker=%s", cfg->broker);
        while (!*stop) {
            uint64_t now = clock_mono_ms();
            uint64_t silent_limit = (uint64_t)l.interval_ms * l.liveness;
            if (now - l.last_recv >= silent_limit)
                break;
            uint64_t next_hb = l.last_send + l.interval_ms;
            long timeout = next_hb > now ? (long)(next_hb - now) : 0;
            zmq_pollitem_t it = {l.sock, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&it, 1, timeout) < 0) {
                if (errno == EINTR)
                    continue;
                rc = errprintf(errp, "zmq_poll: %s", zmq_strerror(errno));
                break;
            }
            if (it.revents & ZMQ_POLLIN) {
                zs_msg msg;
                while (zs_recv(l.sock, false, true, &msg) == 0) {
                    l.last_recv = clock_mono_ms();
                    int hr = handle(&l, &msg, errp);
                    zs_msg_close(&msg);
                    if (hr < 0) {
                        rc = -1;
                        break;
                    }
                }
                if (rc < 0)
                    break;
            }
            /* Heartbeat only when the link has been idle for an interval, and
             * only once registered (before that, the registration is what we
             * are waiting on). */
            if (l.registered && clock_mono_ms() - l.last_send >= l.interval_ms)
                send_heartbeat(&l);
        }
        if (rc < 0 || *stop)
            break;
        log_warn("link.lost", "broker=%s silent_ms=%llu retry_in_ms=%llu", cfg->broker,
                 (unsigned long long)(clock_mono_ms() - l.last_recv),
                 (unsigned long long)l.backoff_ms);
        zs_close(l.sock);
        l.sock = NULL;
        clock_sleep_ms(l.backoff_ms, stop);
        l.backoff_ms =
            l.backoff_ms * 2 > cfg->reconnect_max_ms ? cfg->reconnect_max_ms : l.backoff_ms * 2;
    }
    if (l.sock) {
        if (*stop && l.registered) {
            send_goodbye(&l, "agent stopped");
            /* Give the goodbye a moment to leave before the socket closes. */
            int linger = 500;
            zmq_setsockopt(l.sock, ZMQ_LINGER, &linger, sizeof(linger));
            log_info("link.goodbye", "broker=%s", cfg->broker);
        }
        zs_close(l.sock);
    }
    zmq_ctx_term(l.zctx);
    return rc;
}
