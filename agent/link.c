/* link.c - see link.h. */
#include "link.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "prover.h"
#include "strutil.h"
#include "wire.h"
#include "zsock.h"

/* Until the broker tells us its pace, assume the documented defaults. */
#define DEFAULT_INTERVAL_MS 1000u
#define DEFAULT_LIVENESS    3u

typedef struct link_state {
    const agent_config *cfg;
    const Muster__Register *reg;
    const inventory *inv;
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
    prover *pv;             /* proof-of-work jobs, in a thread of their own */
    uint64_t pow_challenge; /* the job running or last done (0: none) */
    uint32_t pow_expected;
    uint32_t pow_depth; /* of the job started */
    uint64_t done_id;   /* the job last finished, whose spots can be shown */
    uint32_t done_depth;
    uint32_t challenges; /* started, for --sim-speed-after */
} link_state;

static prover *make_prover(const agent_config *cfg, double speed, mu_error *errp)
{
    prover_config pc = {
        .backend = cfg->pow_backend[0]      ? cfg->pow_backend
                   : cfg->simulate_model[0] ? "sim"
                                            : "auto",
        .sim_speed = speed,
        .sim_skip = cfg->sim_skip,
        .sim_jitter_ms = cfg->sim_jitter_ms,
    };
    return prover_create(&pc, errp);
}

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

/* --- proof of work ------------------------------------------------------------ */

static void on_challenge(link_state *l, const Muster__PowChallenge *ch)
{
    pow_params p = {
        .leaves = ch->leaves, .leaf_words = ch->leaf_words, .leaf_rounds = ch->leaf_rounds};
    mu_error err;
    if (ch->seed.len != POW_SEED_BYTES) {
        log_warn("verify.bad_challenge", "reason=\"seed of %zu bytes\"", ch->seed.len);
        return;
    }
    memcpy(p.seed, ch->seed.data, POW_SEED_BYTES);
    if (l->cfg->sim_switch_after && ++l->challenges == l->cfg->sim_switch_after + 1) {
        prover *n = make_prover(l->cfg, l->cfg->sim_speed_after, &err);
        if (n) {
            prover_destroy(l->pv);
            l->pv = n;
            log_warn("verify.sim_switch", "speed=%.2f", l->cfg->sim_speed_after);
        }
    }
    if (pow_params_check(&p, &err) < 0 ||
        prover_start(l->pv, ch->challenge_id, &p, ch->expected_ms, &err) < 0) {
        log_warn("verify.bad_challenge", "challenge=%016llx reason=\"%s\"",
                 (unsigned long long)ch->challenge_id, err.text);
        return;
    }
    l->pow_challenge = ch->challenge_id;
    l->pow_expected = ch->expected_ms;
    l->pow_depth = pow_depth(&p);
    log_debug("verify.challenge", "challenge=%016llx units=%llu expected_ms=%u backend=%s",
              (unsigned long long)ch->challenge_id, (unsigned long long)pow_units(&p),
              ch->expected_ms, prover_backend_name(l->pv));
}

/* A job finished: commit to its result at once (the broker's clock runs). */
static void on_prover_done(link_state *l)
{
    uint64_t id;
    uint8_t root[POW_HASH_BYTES];
    uint32_t elapsed;
    mu_error err;
    int r = prover_take(l->pv, &id, root, &elapsed, &err);
    if (r == 0)
        return;
    if (r < 0) {
        log_warn("verify.failed", "reason=\"%s\"", err.text);
        return;
    }
    if (id != l->pow_challenge)
        return; /* superseded by a newer challenge */
    l->done_id = id;
    l->done_depth = l->pow_depth;
    Muster__PowCommit pc = MUSTER__POW_COMMIT__INIT;
    pc.challenge_id = id;
    pc.root.data = root;
    pc.root.len = POW_HASH_BYTES;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_POW_COMMIT;
    env.pow_commit = &pc;
    send_env(l, &env);
    log_debug("verify.committed", "challenge=%016llx elapsed_ms=%u expected_ms=%u",
              (unsigned long long)id, elapsed, l->pow_expected);
}

static void on_spots(link_state *l, const Muster__PowSpots *sp)
{
    mu_error err;
    if (sp->n_leaves == 0 || sp->n_leaves > POW_MAX_SPOT) {
        log_warn("verify.bad_spots", "reason=\"%zu leaves asked\"", sp->n_leaves);
        return;
    }
    /* depth <= 16 (POW_MAX_LEAVES): bounded buffers. */
    size_t n = sp->n_leaves;
    uint8_t *leaves = mu_malloc(n * POW_HASH_BYTES);
    uint8_t *paths = mu_malloc(n * 16 * POW_HASH_BYTES);
    if (!leaves || !paths) {
        mu_free(leaves);
        mu_free(paths);
        log_warn("verify.failed", "reason=\"out of memory\"");
        return;
    }
    uint32_t depth = l->done_depth;
    if (sp->challenge_id != l->done_id) {
        log_warn("verify.bad_spots", "challenge=%016llx reason=\"not the last one done\"",
                 (unsigned long long)sp->challenge_id);
    } else if (prover_spots(l->pv, sp->challenge_id, sp->leaves, n, leaves, paths, &err) < 0) {
        log_warn("verify.bad_spots", "challenge=%016llx reason=\"%s\"",
                 (unsigned long long)sp->challenge_id, err.text);
    } else {
        Muster__PowProofs pp = MUSTER__POW_PROOFS__INIT;
        pp.challenge_id = sp->challenge_id;
        pp.leaves.data = leaves;
        pp.leaves.len = n * POW_HASH_BYTES;
        pp.paths.data = paths;
        pp.paths.len = n * depth * POW_HASH_BYTES;
        Muster__Envelope env;
        wire_envelope_init(&env, 0);
        env.body_case = MUSTER__ENVELOPE__BODY_POW_PROOFS;
        env.pow_proofs = &pp;
        send_env(l, &env);
    }
    mu_free(leaves);
    mu_free(paths);
}

/* The broker judged a check: say so, and on a failure what to look at. */
static void on_verdict(link_state *l, const Muster__Verdict *vd)
{
    const Muster__VerificationResult *r = vd->result;
    char text[160];
    str_sanitize(text, sizeof(text), r && r->text ? r->text : "");
    bool ok = r && r->outcome && !strcmp(r->outcome, "ok");
    log_msg(ok ? LOG_INFO : LOG_WARN, "verify.verdict", "state=%.16s backend=%s result=\"%s\"",
            vd->state, prover_backend_name(l->pv), text);
    if (ok)
        return;
    const Muster__Register *reg = l->reg;
    for (size_t i = 0; i < reg->n_devices; i++) {
        const Muster__Device *d = reg->devices[i];
        const inv_gpu *g = NULL;
        for (unsigned k = 0; l->inv && k < l->inv->gpu_count; k++)
            if (!strcmp(l->inv->gpus[k].pci_bus_id, d->pci_bus_id))
                g = &l->inv->gpus[k];
        log_warn("verify.check",
                 "gpu=%zu model=\"%s\" bus=%s driver=\"%s\" pcie_link_gbps=%.1f pcie_gen=%u "
                 "pcie_width=%u power_limit_w=%.0f hint=\"check the driver version, that the PCIe "
                 "link runs at full speed and width, and the power limit (nvidia-smi -q -d "
                 "POWER,CLOCK); a throttled or shared GPU answers slowly\"",
                 i, d->model, d->pci_bus_id, d->driver_version, d->link_speed_gbps,
                 g ? g->pcie_gen : 0, g ? g->pcie_width : 0, g ? g->power_limit_mw / 1000.0 : 0.0);
    }
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
    } else if (env->body_case == MUSTER__ENVELOPE__BODY_POW_CHALLENGE) {
        on_challenge(l, env->pow_challenge);
    } else if (env->body_case == MUSTER__ENVELOPE__BODY_POW_SPOTS) {
        on_spots(l, env->pow_spots);
    } else if (env->body_case == MUSTER__ENVELOPE__BODY_VERDICT) {
        on_verdict(l, env->verdict);
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

int link_run(const agent_config *cfg, const Muster__Register *reg, const inventory *inv,
             volatile sig_atomic_t *stop, mu_error *errp)
{
    link_state l = {.cfg = cfg, .reg = reg, .inv = inv};
    int rc = 0;
    l.backoff_ms = cfg->reconnect_min_ms;
    if (!(l.pv = make_prover(cfg, cfg->sim_speed, errp)))
        return errprefix(errp, "proof-of-work backend");
    log_info("verify.backend", "backend=%s", prover_backend_name(l.pv));
    if (!(l.zctx = zmq_ctx_new())) {
        prover_destroy(l.pv);
        return errprintf(errp, "zmq_ctx_new: %s", zmq_strerror(errno));
    }
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
            zmq_pollitem_t items[2] = {{l.sock, 0, ZMQ_POLLIN, 0},
                                       {NULL, prover_fd(l.pv), ZMQ_POLLIN, 0}};
            zmq_pollitem_t *it = &items[0];
            if (zmq_poll(items, 2, timeout) < 0) {
                if (errno == EINTR)
                    continue;
                rc = errprintf(errp, "zmq_poll: %s", zmq_strerror(errno));
                break;
            }
            if (items[1].revents & ZMQ_POLLIN)
                on_prover_done(&l);
            if (it->revents & ZMQ_POLLIN) {
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
    prover_destroy(l.pv);
    return rc;
}
