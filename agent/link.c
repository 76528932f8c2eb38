/* link.c - see link.h.
 *
 * Tasks: the runner (runner.h) runs the attempts the broker starts; this
 * file turns its events into messages. Output is forwarded only while
 * registered and while the socket takes it without blocking; what cannot
 * go waits in the runner, which drops the oldest beyond its window and
 * counts it in the next TaskOutput's `dropped` (it stays in the attempt's
 * output.log). An exit is kept until the broker
 * acknowledges it, and every registration is followed by the exits not
 * yet acknowledged and a TaskReport of the attempts running (or whose exit
 * is unacknowledged), so a broker restart or a lost link loses no result.
 */
#include "link.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <zmq.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "prover.h"
#include "runner.h"
#include "strutil.h"
#include "wire.h"
#include "zsock.h"

/* Until the broker tells us its pace, assume the documented defaults. */
#define DEFAULT_INTERVAL_MS 1000u
#define DEFAULT_LIVENESS    3u
/* Exits kept for the broker to acknowledge: beyond either bound the oldest
 * is dropped (with a warning) - a broker that acknowledges nothing must not
 * grow the agent without end. */
#define MAX_UNACKED_EXITS        1024u
#define MAX_UNACKED_RESULT_BYTES (64u << 20)

/* A TaskExit waiting for its TaskExitAck. */
typedef struct pending_exit {
    struct pending_exit *next;
    Muster__TaskExit msg; /* owns cluster_id, error and result.data */
    bool sent;            /* since the last registration */
} pending_exit;

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
    runner *rn;          /* task attempts, as child processes */
    pending_exit *exits; /* unacknowledged, oldest first */
    size_t n_exits;
    size_t exit_bytes;   /* of their results */
    struct pollfd *pfds; /* the runner's, for poll and zmq_poll */
    zmq_pollitem_t *items;
    size_t poll_cap;
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
    /* Never block on the broker: with the queue full (a slow or absent
     * broker) a send fails at once - exits are kept and sent again, output
     * waits in the runner - rather than stopping the loop that heartbeats
     * and reads the tasks' output. */
    int zero = 0;
    zmq_setsockopt(l->sock, ZMQ_SNDTIMEO, &zero, sizeof(zero));
    if (l->cfg->broker_key[0] &&
        (zmq_setsockopt(l->sock, ZMQ_CURVE_SERVERKEY, l->cfg->broker_key, 40) < 0 ||
         zmq_setsockopt(l->sock, ZMQ_CURVE_PUBLICKEY, l->cfg->curve.public_key, 40) < 0 ||
         zmq_setsockopt(l->sock, ZMQ_CURVE_SECRETKEY, l->cfg->curve.secret_key, 40) < 0)) {
        errprintf(errp, "CURVE: %s", zmq_strerror(errno));
        zs_close(l->sock);
        l->sock = NULL;
        return -1;
    }
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

/* --- tasks ------------------------------------------------------------------------ */

/* Can a message go now? Only once registered (before, the broker would
 * answer "unknown worker" to each), and only without blocking: a DEALER
 * blocks at its high-water mark, and the agent must keep heartbeating and
 * reading its tasks' output whatever the link does. */
static bool can_send(const link_state *l)
{
    if (!l->sock || !l->registered)
        return false;
    int events = 0;
    size_t sz = sizeof(events);
    return zmq_getsockopt(l->sock, ZMQ_EVENTS, &events, &sz) == 0 && (events & ZMQ_POLLOUT);
}

/* Forward output if the socket takes it now; if not, the runner keeps it
 * waiting (dropping the oldest, counted, beyond its window). */
static bool send_output(link_state *l, const runner_event *ev)
{
    if (!can_send(l))
        return false;
    Muster__TaskOutput to = MUSTER__TASK_OUTPUT__INIT;
    to.cluster_id = (char *)ev->cluster_id;
    to.number = ev->number;
    to.attempt = ev->attempt;
    to.offset = ev->offset;
    to.data.data = (uint8_t *)ev->data;
    to.data.len = ev->len;
    to.dropped = ev->dropped;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_TASK_OUTPUT;
    env.task_output = &to;
    return send_env(l, &env) == 0;
}

static void exit_free(pending_exit *p)
{
    mu_free(p->msg.cluster_id);
    mu_free(p->msg.error);
    mu_free(p->msg.result.data);
    mu_free(p);
}

static pending_exit *exit_find(link_state *l, const char *cluster_id, uint32_t number,
                               uint32_t attempt, pending_exit ***prevp)
{
    pending_exit **pp = &l->exits;
    for (; *pp; pp = &(*pp)->next) {
        const Muster__TaskExit *m = &(*pp)->msg;
        if (m->number == number && m->attempt == attempt && !strcmp(m->cluster_id, cluster_id))
            break;
    }
    if (prevp)
        *prevp = pp;
    return *pp;
}

static void exit_unlink(link_state *l, pending_exit **pp)
{
    pending_exit *p = *pp;
    *pp = p->next;
    l->n_exits--;
    l->exit_bytes -= p->msg.result.len;
    exit_free(p);
}

/* Send every exit not sent since the last registration, oldest first, as
 * long as the socket takes them. */
static void flush_exits(link_state *l)
{
    for (pending_exit *p = l->exits; p; p = p->next) {
        if (p->sent)
            continue;
        if (!can_send(l))
            return;
        Muster__Envelope env;
        wire_envelope_init(&env, 0);
        env.body_case = MUSTER__ENVELOPE__BODY_TASK_EXIT;
        env.task_exit = &p->msg;
        if (send_env(l, &env) < 0)
            return;
        p->sent = true;
    }
}

/* Keep an exit until acknowledged, and send it. */
static void add_exit(link_state *l, const runner_event *ev)
{
    pending_exit *p = mu_calloc(1, sizeof(*p));
    if (!p) {
        log_error("task.exit_lost", "cluster=%.40s task=%u attempt=%u reason=\"out of memory\"",
                  ev->cluster_id, ev->number, ev->attempt);
        return;
    }
    muster__task_exit__init(&p->msg);
    p->msg.cluster_id = mu_strdup(ev->cluster_id);
    p->msg.number = ev->number;
    p->msg.attempt = ev->attempt;
    p->msg.exit_code = ev->exit_code;
    p->msg.signal = ev->signal;
    p->msg.timed_out = ev->timed_out;
    p->msg.output_bytes = ev->output_bytes;
    p->msg.error = mu_strdup(ev->error ? ev->error : "");
    if (ev->result) {
        p->msg.result.data = mu_malloc(ev->result_len ? ev->result_len : 1);
        if (p->msg.result.data) {
            memcpy(p->msg.result.data, ev->result, ev->result_len);
            p->msg.result.len = ev->result_len;
        }
    }
    if (!p->msg.cluster_id || !p->msg.error || (ev->result && !p->msg.result.data)) {
        log_error("task.exit_lost", "cluster=%.40s task=%u attempt=%u reason=\"out of memory\"",
                  ev->cluster_id, ev->number, ev->attempt);
        exit_free(p);
        return;
    }
    pending_exit **pp = &l->exits;
    while (*pp)
        pp = &(*pp)->next;
    *pp = p;
    l->n_exits++;
    l->exit_bytes += p->msg.result.len;
    while (l->n_exits > MAX_UNACKED_EXITS ||
           (l->exit_bytes > MAX_UNACKED_RESULT_BYTES && l->exits != p)) {
        const Muster__TaskExit *m = &l->exits->msg;
        log_warn("task.exit_dropped",
                 "cluster=%.40s task=%u attempt=%u unacked=%zu result_bytes=%zu "
                 "reason=\"too many exits not acknowledged by the broker: the oldest is "
                 "forgotten\"",
                 m->cluster_id, m->number, m->attempt, l->n_exits, l->exit_bytes);
        exit_unlink(l, &l->exits);
    }
    flush_exits(l);
}

/* The last line of an attempt's output, for a person reading the log. */
static void last_line(const runner_event *ev, char *out, size_t n)
{
    size_t end = ev->len;
    while (end && (ev->data[end - 1] == '\n' || ev->data[end - 1] == '\r'))
        end--;
    size_t start = end;
    while (start && ev->data[start - 1] != '\n' && end - start < 200)
        start--;
    char raw[201];
    memcpy(raw, ev->data + start, end - start);
    raw[end - start] = '\0';
    str_sanitize(out, n, raw);
}

static bool on_runner_event(void *arg, const runner_event *ev)
{
    link_state *l = arg;
    if (ev->kind == RUNNER_OUTPUT)
        return send_output(l, ev);
    char error[200];
    str_sanitize(error, sizeof(error), ev->error ? ev->error : "");
    bool ok = ev->exit_code == 0 && !ev->error;
    log_msg(ok ? LOG_INFO : LOG_WARN, "task.exit",
            "cluster=%.40s task=%u attempt=%u exit_code=%d signal=%d timed_out=%s "
            "output_bytes=%llu result_bytes=%zu error=\"%s\"",
            ev->cluster_id, ev->number, ev->attempt, ev->exit_code, ev->signal,
            ev->timed_out ? "true" : "false", (unsigned long long)ev->output_bytes,
            ev->result ? ev->result_len : 0, error);
    if (!ok && ev->len && log_get_level() <= LOG_DEBUG) {
        char line[160];
        last_line(ev, line, sizeof(line));
        log_debug("task.output_tail", "cluster=%.40s task=%u attempt=%u last_line=\"%s\"",
                  ev->cluster_id, ev->number, ev->attempt, line);
    }
    add_exit(l, ev);
    return true;
}

static void on_task_start(link_state *l, const Muster__Envelope *env)
{
    const Muster__TaskStart *ts = env->task_start;
    char cluster[48], argv0[96], gpus[128];
    str_sanitize(cluster, sizeof(cluster), ts->cluster_id);
    str_sanitize(argv0, sizeof(argv0), ts->n_argv ? ts->argv[0] : "");
    size_t at = 0;
    gpus[0] = '\0';
    for (size_t i = 0; i < ts->n_gpu_indices && at + 12 < sizeof(gpus); i++)
        at += (size_t)snprintf(gpus + at, sizeof(gpus) - at, "%s%u", i ? "," : "",
                               ts->gpu_indices[i]);
    pending_exit **pp;
    pending_exit *done = exit_find(l, ts->cluster_id, ts->number, ts->attempt, &pp);
    if (done) {
        /* It ran here already: the broker missed the exit, not the start. */
        log_info("task.exit_resent", "cluster=%s task=%u attempt=%u", cluster, ts->number,
                 ts->attempt);
        done->sent = false;
        flush_exits(l);
        return;
    }
    runner_task t = {
        .cluster_id = ts->cluster_id,
        .number = ts->number,
        .attempt = ts->attempt,
        .argv = (const char *const *)ts->argv,
        .argc = ts->n_argv,
        .env = (const char *const *)ts->env,
        .n_env = ts->n_env,
        .cwd = ts->cwd,
        .gpus = ts->gpu_indices,
        .n_gpus = ts->n_gpu_indices,
        .timeout_ms = ts->timeout_ms,
        .result_file = ts->result_file,
        .result_max_bytes = ts->result_max_bytes,
    };
    mu_error err;
    if (runner_start(l->rn, &t, clock_mono_ms(), &err) < 0) {
        if (errno == EEXIST) { /* running already: the broker resent the start */
            log_debug("task.duplicate", "cluster=%s task=%u attempt=%u", cluster, ts->number,
                      ts->attempt);
            return;
        }
        char reason[200];
        str_sanitize(reason, sizeof(reason), err.text);
        log_warn("task.refused", "cluster=%s task=%u attempt=%u reason=\"%s\"", cluster, ts->number,
                 ts->attempt, reason);
        runner_event ev = {.kind = RUNNER_EXIT,
                           .cluster_id = ts->cluster_id,
                           .number = ts->number,
                           .attempt = ts->attempt,
                           .exit_code = -1,
                           .error = err.text};
        add_exit(l, &ev);
        return;
    }
    log_info("task.start", "cluster=%s task=%u attempt=%u gpus=\"%s\" argv0=\"%s\" timeout_ms=%u",
             cluster, ts->number, ts->attempt, gpus, argv0, ts->timeout_ms);
}

static void on_task_kill(link_state *l, const Muster__Envelope *env)
{
    const Muster__TaskKill *tk = env->task_kill;
    char cluster[48], reason[96];
    str_sanitize(cluster, sizeof(cluster), tk->cluster_id);
    str_sanitize(reason, sizeof(reason), tk->reason);
    if (runner_kill(l->rn, tk->cluster_id, tk->number, tk->attempt, clock_mono_ms()) < 0) {
        /* Ended already (its exit is sent or on its way) or never here. */
        log_debug("task.kill_unknown", "cluster=%s task=%u attempt=%u", cluster, tk->number,
                  tk->attempt);
        return;
    }
    log_info("task.kill", "cluster=%s task=%u attempt=%u reason=\"%s\"", cluster, tk->number,
             tk->attempt, reason);
}

static void on_task_exit_ack(link_state *l, const Muster__Envelope *env)
{
    const Muster__TaskExitAck *ack = env->task_exit_ack;
    pending_exit **pp;
    if (exit_find(l, ack->cluster_id, ack->number, ack->attempt, &pp))
        exit_unlink(l, pp);
}

static void report_one(void *arg, const char *cluster_id, uint32_t number, uint32_t attempt)
{
    Muster__TaskReport *rep = arg;
    Muster__TaskRef *ref = rep->running[rep->n_running];
    muster__task_ref__init(ref);
    ref->cluster_id = (char *)cluster_id;
    ref->number = number;
    ref->attempt = attempt;
    rep->n_running++;
}

/* After a registration: every exit not acknowledged, then what runs here
 * (the broker may have restarted and know nothing of either). The report
 * also lists the attempts whose exit is still unacknowledged: the broker
 * must not take one for lost because its exit is still on the way (a full
 * socket may hold it back behind the report). */
static void report_tasks(link_state *l)
{
    for (pending_exit *p = l->exits; p; p = p->next)
        p->sent = false;
    flush_exits(l);
    size_t n = runner_count(l->rn) + l->n_exits;
    Muster__TaskRef *refs = mu_calloc(n ? n : 1, sizeof(*refs));
    Muster__TaskRef **ptrs = mu_calloc(n ? n : 1, sizeof(*ptrs));
    if (!refs || !ptrs) {
        log_error("task.report_failed", "reason=\"out of memory\"");
    } else {
        Muster__TaskReport rep = MUSTER__TASK_REPORT__INIT;
        for (size_t i = 0; i < n; i++)
            ptrs[i] = &refs[i];
        rep.running = ptrs;
        runner_each(l->rn, report_one, &rep);
        for (pending_exit *p = l->exits; p && rep.n_running < n; p = p->next)
            report_one(&rep, p->msg.cluster_id, p->msg.number, p->msg.attempt);
        Muster__Envelope env;
        wire_envelope_init(&env, 0);
        env.body_case = MUSTER__ENVELOPE__BODY_TASK_REPORT;
        env.task_report = &rep;
        send_env(l, &env);
        if (n)
            log_info("task.report", "running=%zu unacked_exits=%zu", runner_count(l->rn),
                     l->n_exits);
    }
    mu_free(refs);
    mu_free(ptrs);
}

/* --- dispatch ------------------------------------------------------------------------ */

static void on_cluster_join(link_state *l, const Muster__Envelope *env)
{
    /* Joining costs nothing yet (tasks come later): acknowledge at once
     * so the cluster can be ready. */
    const Muster__ClusterJoin *cj = env->cluster_join;
    char owner[64];
    str_sanitize(owner, sizeof(owner), cj->owner);
    log_info("cluster.joined", "cluster=%.40s owner=\"%s\" members=%u", cj->cluster_id, owner,
             cj->members);
    send_ack(l, cj->cluster_id);
}

/* A member that leaves a cluster stops the cluster's tasks. */
static void on_cluster_leave(link_state *l, const Muster__Envelope *env)
{
    const Muster__ClusterLeave *cl = env->cluster_leave;
    char reason[96];
    str_sanitize(reason, sizeof(reason), cl->reason);
    size_t killed = runner_kill_cluster(l->rn, cl->cluster_id, clock_mono_ms());
    log_info("cluster.left", "cluster=%.40s reason=\"%s\" tasks_killed=%zu", cl->cluster_id, reason,
             killed);
}

static void on_pow_challenge(link_state *l, const Muster__Envelope *env)
{
    on_challenge(l, env->pow_challenge);
}

static void on_pow_spots(link_state *l, const Muster__Envelope *env)
{
    on_spots(l, env->pow_spots);
}

static void on_verdict_msg(link_state *l, const Muster__Envelope *env)
{
    on_verdict(l, env->verdict);
}

/* What the broker may send once the registration is answered. Heartbeat
 * echoes and acknowledgement echoes are not here: receiving them was the
 * point. */
static const struct {
    Muster__Envelope__BodyCase body;
    void (*fn)(link_state *l, const Muster__Envelope *env);
} handlers[] = {
    {MUSTER__ENVELOPE__BODY_CLUSTER_JOIN, on_cluster_join},
    {MUSTER__ENVELOPE__BODY_CLUSTER_LEAVE, on_cluster_leave},
    {MUSTER__ENVELOPE__BODY_POW_CHALLENGE, on_pow_challenge},
    {MUSTER__ENVELOPE__BODY_POW_SPOTS, on_pow_spots},
    {MUSTER__ENVELOPE__BODY_VERDICT, on_verdict_msg},
    {MUSTER__ENVELOPE__BODY_TASK_START, on_task_start},
    {MUSTER__ENVELOPE__BODY_TASK_KILL, on_task_kill},
    {MUSTER__ENVELOPE__BODY_TASK_EXIT_ACK, on_task_exit_ack},
};

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
                                      env->status == MUSTER__STATUS__STATUS_VERSION_MISMATCH ||
                                      env->status == MUSTER__STATUS__STATUS_PERMISSION_DENIED)) {
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
        report_tasks(l);
    }
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (handlers[i].body == env->body_case)
            handlers[i].fn(l, env);
    wire_free(env);
    return 0;
}

/* --- the loop ---------------------------------------------------------------------- */

/* Put the runner's fds in l->pfds and, after the first `fixed` entries, in
 * l->items, growing both as needed. Returns how many are there. */
static size_t runner_items(link_state *l, size_t fixed)
{
    size_t want = runner_pollfds(l->rn, NULL, 0);
    if (fixed + want > l->poll_cap) {
        size_t cap = (fixed + want) * 2;
        struct pollfd *p = mu_realloc(l->pfds, cap * sizeof(*p));
        if (p)
            l->pfds = p;
        zmq_pollitem_t *it = p ? mu_realloc(l->items, cap * sizeof(*it)) : NULL;
        if (it)
            l->items = it;
        if (p && it)
            l->poll_cap = cap;
    }
    size_t room = l->poll_cap > fixed ? l->poll_cap - fixed : 0;
    size_t n = runner_pollfds(l->rn, l->pfds, room);
    if (n > room)
        n = room; /* out of memory: runner_process still runs on the timer */
    for (size_t i = 0; i < n; i++)
        l->items[fixed + i] = (zmq_pollitem_t){NULL, l->pfds[i].fd, ZMQ_POLLIN, 0};
    return n;
}

/* The poll timeout the runner needs, folded into `timeout` (ms). When some
 * of its fds could not be polled, wake at least every 100 ms. */
static long runner_timeout(const link_state *l, long timeout, bool all_polled)
{
    int rt = runner_timeout_ms(l->rn, clock_mono_ms());
    if (!all_polled && (rt < 0 || rt > 100))
        rt = 100;
    return rt >= 0 && rt < timeout ? rt : timeout;
}

/* Wait ms while the link is down, still serving the tasks (their output is
 * read, their deadlines kept); returns early when *stop is set. */
static void wait_serving_tasks(link_state *l, uint64_t ms, volatile sig_atomic_t *stop)
{
    uint64_t end = clock_mono_ms() + ms;
    while (!*stop) {
        uint64_t now = clock_mono_ms();
        if (now >= end)
            break;
        size_t n = runner_items(l, 0);
        long timeout = runner_timeout(l, (long)(end - now), n == runner_pollfds(l->rn, NULL, 0));
        if (poll(l->pfds, n, (int)timeout) < 0 && errno != EINTR)
            clock_sleep_ms(10, stop);
        runner_process(l->rn, clock_mono_ms(), on_runner_event, l);
    }
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
    runner_config rcfg = {.work_dir = cfg->work_dir,
                          .kill_grace_ms = cfg->task_kill_grace_ms,
                          .result_max_bytes = cfg->max_result_bytes};
    if (!(l.rn = runner_create(&rcfg, errp))) {
        prover_destroy(l.pv);
        return errprefix(errp, "--work-dir");
    }
    log_info("task.work_dir", "dir=%s kill_grace_ms=%u max_result_bytes=%u", cfg->work_dir,
             cfg->task_kill_grace_ms, cfg->max_result_bytes);
    if (!(l.zctx = zmq_ctx_new())) {
        runner_destroy(l.rn);
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
            /* Wake for the liveness limit, the next heartbeat (once
             * registered) and whatever the tasks need. */
            uint64_t wake = l.last_recv + silent_limit;
            if (l.registered && l.last_send + l.interval_ms < wake)
                wake = l.last_send + l.interval_ms;
            long timeout = wake > now ? (long)(wake - now) : 0;
            size_t n = runner_items(&l, 2);
            timeout = runner_timeout(&l, timeout, n == runner_pollfds(l.rn, NULL, 0));
            zmq_pollitem_t fixed[2] = {{l.sock, 0, ZMQ_POLLIN, 0},
                                       {NULL, prover_fd(l.pv), ZMQ_POLLIN, 0}};
            zmq_pollitem_t *items = l.poll_cap >= 2 ? l.items : fixed;
            items[0] = fixed[0];
            items[1] = fixed[1];
            if (zmq_poll(items, (int)(2 + n), timeout) < 0) {
                if (errno == EINTR)
                    continue;
                rc = errprintf(errp, "zmq_poll: %s", zmq_strerror(errno));
                break;
            }
            zmq_pollitem_t *it = &items[0];
            if (items[1].revents & ZMQ_POLLIN)
                on_prover_done(&l);
            runner_process(l.rn, clock_mono_ms(), on_runner_event, &l);
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
            flush_exits(&l); /* those the socket would not take before */
        }
        if (rc < 0 || *stop)
            break;
        log_warn("link.lost", "broker=%s silent_ms=%llu retry_in_ms=%llu", cfg->broker,
                 (unsigned long long)(clock_mono_ms() - l.last_recv),
                 (unsigned long long)l.backoff_ms);
        zs_close(l.sock);
        l.sock = NULL;
        l.registered = false;
        wait_serving_tasks(&l, l.backoff_ms, stop);
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
    if (runner_count(l.rn))
        log_info("task.stopping", "running=%zu", runner_count(l.rn));
    runner_destroy(l.rn); /* nothing outlives the agent */
    prover_destroy(l.pv);
    while (l.exits)
        exit_unlink(&l, &l.exits);
    mu_free(l.pfds);
    mu_free(l.items);
    return rc;
}
