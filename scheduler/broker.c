/* broker.c - see broker.h.
 *
 * Messages are dispatched through a table (one row per request type: which
 * socket may send it and which handler runs it), so adding a message is
 * adding a row. Every request gets a reply, errors included; a message that
 * cannot even be framed is dropped and counted. Nothing a peer sends can
 * stop the loop: handlers return a status, never abort.
 */
#include "broker.h"
#include "broker_int.h"
#include "webhook.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <zmq.h>

#include "alloc.h"
#include "catalog.h"
#include "clock.h"
#include "fsutil.h"
#include "idmap.h"
#include "ids.h"
#include "log.h"
#include "regions.h"
#include "registry.h"
#include "scheduler.h"
#include "strutil.h"
#include "wire.h"
#include "zsock.h"

/* --- replies and events --------------------------------------------------- */

static void *socket_of(broker *b, enum endpoint ep)
{
    return ep == EP_AGENT ? b->agents : b->clients;
}

static void send_reply(broker *b, const request *rq, Muster__Envelope *reply)
{
    reply->request_id = rq->env ? rq->env->request_id : reply->request_id;
    /* Held in the outbox until this batch's changes are on disk. */
    persist_queue(b, rq->from == EP_AGENT ? OUT_AGENT : OUT_CLIENT, &rq->msg->peer, NULL, reply,
                  true);
}

static void send_error(broker *b, const request *rq, uint64_t request_id, Muster__Status status,
                       const char *reason)
{
    Muster__Envelope reply;
    wire_envelope_init(&reply, request_id);
    reply.status = status;
    reply.reason = (char *)reason;
    b->stats.rejected++;
    request r = *rq;
    r.env = NULL;
    send_reply(b, &r, &reply);
}

/* --- who is asking ---------------------------------------------------------------------- */

/* The User-Id ZAP gave the connection a message came on (auth.c). */
static const char *user_id(const request *rq)
{
    const char *u = zmq_msg_gets((zmq_msg_t *)&rq->msg->payload, "User-Id");
    return u && *u ? u : NULL;
}

const account *broker_account(const broker *b, const request *rq)
{
    return b->curve ? accounts_by_name(b->acc, user_id(rq)) : NULL;
}

bool broker_sees_all(const broker *b, const request *rq)
{
    if (!b->curve)
        return true;
    const account *a = broker_account(b, rq);
    return a && (a->role == ROLE_OPERATOR || a->role == ROLE_ADMIN);
}

static bool owns(const broker *b, const request *rq, const char *owner)
{
    const account *a = broker_account(b, rq);
    return a && owner && !strcmp(a->name, owner);
}

static bool deny(broker *b, const request *rq, const char *what)
{
    const account *a = broker_account(b, rq);
    char why[200];
    snprintf(why, sizeof(why), "%.80s belongs to another account (you are %.40s)", what,
             a ? a->name : "unknown");
    broker_error(b, rq, MUSTER__STATUS__STATUS_PERMISSION_DENIED, why);
    return false;
}

bool broker_may_see(broker *b, const request *rq, const char *owner, const char *what)
{
    return broker_sees_all(b, rq) || owns(b, rq, owner) || deny(b, rq, what);
}

bool broker_may_change(broker *b, const request *rq, const char *owner, const char *what)
{
    if (!b->curve || owns(b, rq, owner))
        return true;
    const account *a = broker_account(b, rq);
    return (a && a->role == ROLE_ADMIN) || deny(b, rq, what);
}

/* The key a worker's id is bound to ("" none). */
static const char *bound_key(const broker *b, uint32_t slot)
{
    return slot < b->worker_keys_cap ? b->worker_keys[slot] : "";
}

int broker_bind_worker_key(broker *b, uint32_t slot, const char *key)
{
    if (mu_grow((void **)&b->worker_keys, &b->worker_keys_cap, (size_t)slot + 1,
                sizeof(*b->worker_keys)) < 0)
        return -1;
    str_copy(b->worker_keys[slot], key, sizeof(b->worker_keys[slot]));
    return 0;
}

void broker_lookup_failed(broker *b, const request *rq, const char *id, const char *noun)
{
    char why[160];
    Muster__Status st = MUSTER__STATUS__STATUS_NOT_FOUND;
    if (errno == EEXIST) {
        st = MUSTER__STATUS__STATUS_CONFLICT;
        snprintf(why, sizeof(why), "\"%.40s\" matches more than one %s: give more of the id", id,
                 noun);
    } else if (errno == EINVAL) {
        st = MUSTER__STATUS__STATUS_BAD_REQUEST;
        snprintf(why, sizeof(why), "give at least 4 characters of the %s id", noun);
    } else {
        snprintf(why, sizeof(why), "no %s with id \"%.40s\"", noun, id ? id : "");
    }
    broker_error(b, rq, st, why);
}

void broker_change_failed(broker *b, const request *rq, const mu_error *err)
{
    broker_error(b, rq,
                 errno == ESTALE   ? MUSTER__STATUS__STATUS_CONFLICT
                 : errno == ENOENT ? MUSTER__STATUS__STATUS_NOT_FOUND
                                   : MUSTER__STATUS__STATUS_BAD_REQUEST,
                 err->text);
}

void broker_reply(broker *b, const request *rq, Muster__Envelope *reply)
{
    send_reply(b, rq, reply);
}

void broker_error(broker *b, const request *rq, Muster__Status status, const char *reason)
{
    send_error(b, rq, rq->env ? rq->env->request_id : 0, status, reason);
}

void broker_publish(broker *b, const char *topic, Muster__Event *ev)
{
    ev->seq = ++b->event_seq;
    ev->time_ms = b->now;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_EVENT;
    env.event = ev;
    persist_queue(b, OUT_EVENT, NULL, topic, &env, false);
    events_deliver(b, topic, &env);
}

void broker_notify(broker *b, const char *owner, const Muster__Event *ev)
{
    if (!b->hooks || !owner)
        return;
    const account *a = accounts_by_name(b->acc, owner);
    if (!a || !a->webhook_url[0])
        return;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return;
    cJSON_AddStringToObject(o, "type", ev->topic);
    cJSON_AddNumberToObject(o, "seq", (double)ev->seq);
    cJSON_AddNumberToObject(o, "time_ms", (double)ev->time_ms);
    cJSON_AddStringToObject(o, "cluster_id", ev->cluster_id ? ev->cluster_id : "");
    cJSON_AddStringToObject(o, "cluster_state", ev->cluster_state ? ev->cluster_state : "");
    cJSON_AddStringToObject(o, "worker_id", ev->worker_id ? ev->worker_id : "");
    cJSON_AddStringToObject(o, "detail", ev->detail ? ev->detail : "");
    if (ev->task_state && *ev->task_state) {
        cJSON_AddNumberToObject(o, "task", ev->task);
        cJSON_AddStringToObject(o, "task_state", ev->task_state);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return;
    size_t len = strlen(text);
    uint8_t *body = mu_malloc(len ? len : 1);
    if (body) {
        memcpy(body, text, len);
        persist_queue_webhook(b, a->name, ev->topic, body, len);
    }
    cJSON_free(text);
}

static void publish(broker *b, const char *topic, const worker *w, const char *detail)
{
    char id[ID_TEXT_LEN];
    id_format(&w->id, id);
    Muster__Event ev = MUSTER__EVENT__INIT;
    ev.topic = (char *)topic;
    ev.worker_id = id;
    ev.detail = (char *)detail;
    broker_publish(b, topic, &ev);
}

/* --- peers ---------------------------------------------------------------------- */

static int peer_slot_reserve(broker *b, size_t slot)
{
    if (slot < b->slot_peer_cap)
        return 0;
    size_t ncap = b->slot_peer_cap ? b->slot_peer_cap : 64;
    while (ncap <= slot)
        ncap *= 2;
    peer_slot *n = mu_realloc(b->slot_peer, ncap * sizeof(*n));
    if (!n)
        return -1;
    memset(n + b->slot_peer_cap, 0, (ncap - b->slot_peer_cap) * sizeof(*n));
    b->slot_peer = n;
    b->slot_peer_cap = ncap;
    return 0;
}

static void peer_forget_slot(broker *b, uint32_t slot)
{
    if (slot >= b->slot_peer_cap || b->slot_peer[slot].len == 0)
        return;
    peer_slot *p = &b->slot_peer[slot];
    uint32_t mapped;
    if (idmap_get(b->peer_to_slot, p->id, p->len, &mapped) == 0 && mapped == slot)
        idmap_remove(b->peer_to_slot, p->id, p->len);
    p->len = 0;
}

/* The worker behind a routing id, or NULL. */
const worker *broker_peer_worker(broker *b, const zs_peer *peer)
{
    uint32_t slot;
    if (peer->len > IDMAP_KEY_MAX || idmap_get(b->peer_to_slot, peer->id, peer->len, &slot) < 0)
        return NULL;
    return registry_at(b->reg, slot);
}

int broker_worker_peer(const broker *b, const worker *w, zs_peer *out)
{
    if (w->slot >= b->slot_peer_cap || b->slot_peer[w->slot].len == 0)
        return -1;
    out->len = b->slot_peer[w->slot].len;
    memcpy(out->id, b->slot_peer[w->slot].id, out->len);
    return 0;
}

void broker_send_agent(broker *b, const zs_peer *peer, const Muster__Envelope *env)
{
    persist_queue(b, OUT_AGENT, peer, NULL, env, false);
}

void broker_forget_peers(broker *b)
{
    idmap *fresh = idmap_create();
    if (fresh) {
        idmap_destroy(b->peer_to_slot);
        b->peer_to_slot = fresh;
    }
    if (b->slot_peer)
        memset(b->slot_peer, 0, b->slot_peer_cap * sizeof(*b->slot_peer));
}

/* Observer of the core's state changes: log, publish, and drop the routing id
 * of a worker that went offline so that its next message is answered with
 * "register again" (Paranoid Pirate: tell an unknown peer to reconnect). */
static void on_state_change(void *arg, const worker *w, worker_state from, worker_state to,
                            const char *reason)
{
    broker *b = arg;
    char id[ID_TEXT_LEN];
    id_format(&w->id, id);
    char topic[32];
    snprintf(topic, sizeof(topic), "worker.%s", worker_state_name(to));
    log_msg(to == WORKER_ONLINE ? LOG_INFO : LOG_WARN, topic,
            "id=%s host=%s from=%s gpus=%u model=\"%s\" reason=\"%s\"", id, w->hostname,
            worker_state_name(from), w->gpu_count, w->model ? w->model->name : "none", reason);
    if (to == WORKER_OFFLINE)
        peer_forget_slot(b, w->slot);
    tasks_worker_changed(b, w, false);
    persist_uptime(b, w);
    publish(b, topic, w, reason);
}

/* --- views ------------------------------------------------------------------------ */

/* Fill a WorkerInfo that borrows from w and from scratch storage. */
typedef struct worker_view {
    Muster__WorkerInfo info;
    char id[ID_TEXT_LEN];
    char cluster_id[ID_TEXT_LEN];
    verify_result hist[VERIFY_HISTORY];
    Muster__VerificationResult vr[VERIFY_HISTORY];
    Muster__VerificationResult *vrp[VERIFY_HISTORY];
    char vtext[VERIFY_HISTORY][160];
    Muster__Device dev[WORKER_MAX_DEVICES];
    Muster__Device *devp[WORKER_MAX_DEVICES];
} worker_view;

static void view_fill(const broker *b, const worker *w, worker_view *v)
{
    muster__worker_info__init(&v->info);
    id_format(&w->id, v->id);
    Muster__WorkerInfo *i = &v->info;
    i->id = v->id;
    i->hostname = w->hostname;
    i->host_fingerprint = (char *)w->fingerprint;
    const char *model = w->model ? w->model->name : "CPU";
    for (unsigned k = 0; k < w->gpu_count; k++) {
        Muster__Device *d = &v->dev[k];
        muster__device__init(d);
        d->model = (char *)model;
        d->pci_vendor_id = w->devices[k].pci_vendor_id;
        d->pci_device_id = w->devices[k].pci_device_id;
        d->pci_bus_id = (char *)w->devices[k].pci_bus_id;
        d->vram_mib = w->devices[k].vram_mib;
        d->driver_version = (char *)w->devices[k].driver_version;
        d->link_speed_gbps = w->devices[k].link_speed_gbps;
        v->devp[k] = d;
    }
    i->n_devices = w->gpu_count;
    i->devices = v->devp;
    i->gpu_model = (char *)model;
    i->gpu_class = (char *)(w->model ? gpu_class_name(w->model->cls) : "cpu");
    i->gpu_count = w->gpu_count;
    i->cpu_cores = w->cpu_cores;
    i->memory_mib = w->memory_mib;
    i->country = (char *)w->country;
    i->region = (char *)w->region;
    i->bandwidth_down_mbps = w->bw_down_mbps;
    i->bandwidth_up_mbps = w->bw_up_mbps;
    i->tier = (char *)tier_name(w->tier);
    i->state = (Muster__WorkerState)w->state;
    i->last_seen_ms_ago = b->now > w->last_seen ? b->now - w->last_seen : 0;
    i->registered_at_ms = w->registered_at;
    i->connected_at_ms = w->connected_at;
    i->agent_version = w->agent_version;
    i->simulated = w->simulated;
    i->price_micro_usd = w->price_uusd;
    i->uptime = w->uptime;
    i->alloc = (char *)(w->alloc == WORKER_ALLOCATED  ? "allocated"
                        : w->alloc == WORKER_RESERVED ? "reserved"
                                                      : "free");
    const cluster *c = w->alloc == WORKER_ALLOCATED ? sched_cluster_at(b->core, w->cluster) : NULL;
    if (c)
        id_format(&c->id, v->cluster_id);
    i->cluster_id = v->cluster_id;
    const verifier *ver = sched_verifier(b->core);
    i->verification = (char *)verify_state_name(verifier_state(ver, w));
    i->verification_checks = verifier_checks(ver, w);
    size_t n = verifier_history(ver, w, v->hist);
    for (size_t k = 0; k < n; k++) {
        rpc_verify_result_fill(&v->hist[k], &v->vr[k], v->vtext[k], sizeof(v->vtext[k]));
        v->vrp[k] = &v->vr[k];
    }
    i->n_verification_history = n;
    i->verification_history = v->vrp;
}

/* --- agent handlers ------------------------------------------------------------------ */

int broker_spec_from_register(const Muster__Register *m,
                              worker_device_spec devs[WORKER_MAX_DEVICES], worker_spec *spec,
                              mu_error *errp)
{
    if (m->n_devices > WORKER_MAX_DEVICES)
        return errprintf(errp, "%zu GPUs on one worker; at most %d are supported", m->n_devices,
                         WORKER_MAX_DEVICES);
    for (size_t i = 0; i < m->n_devices; i++) {
        const Muster__Device *d = m->devices[i];
        if (d->pci_vendor_id > 0xffff || d->pci_device_id > 0xffff)
            return errprintf(errp, "PCI ids must fit in 16 bits");
        devs[i] = (worker_device_spec){
            .model_claim = d->model,
            .pci_vendor_id = (uint16_t)d->pci_vendor_id,
            .pci_device_id = (uint16_t)d->pci_device_id,
            .pci_bus_id = d->pci_bus_id,
            .vram_mib = d->vram_mib,
            .driver_version = d->driver_version,
            .link_speed_gbps = d->link_speed_gbps,
        };
    }
    *spec = (worker_spec){
        .id = m->worker_id,
        .hostname = m->hostname,
        .fingerprint = m->host_fingerprint,
        .devices = devs,
        .n_devices = m->n_devices,
        .cpu_cores = m->cpu_cores,
        .memory_mib = m->memory_mib,
        .country = m->country,
        .region = m->region,
        .bw_down_mbps = m->bandwidth_down_mbps,
        .bw_up_mbps = m->bandwidth_up_mbps,
        .agent_version = m->agent_version,
        .simulated = m->simulated,
        .price_uusd = m->price_micro_usd > UINT32_MAX ? UINT32_MAX : (uint32_t)m->price_micro_usd,
    };
    return 0;
}

static void on_register(broker *b, const request *rq)
{
    const Muster__Register *m = rq->env->register_;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    worker_spec spec;
    mu_error err;
    if (broker_spec_from_register(m, devs, &spec, &err) < 0) {
        send_error(b, rq, rq->env->request_id, MUSTER__STATUS__STATUS_BAD_REQUEST, err.text);
        return;
    }
    const zs_peer *peer = &rq->msg->peer;
    if (peer->len > IDMAP_KEY_MAX) {
        send_error(b, rq, rq->env->request_id, MUSTER__STATUS__STATUS_BAD_REQUEST,
                   "routing id too long: let libzmq choose it");
        return;
    }
    if (peer_slot_reserve(b, registry_count(b->reg) + 1) < 0) {
        send_error(b, rq, rq->env->request_id, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    /* Unbind the worker's old connection first: whatever the core tells
     * this worker while it registers must wait for the new one (below). */
    mu_id wid;
    const worker *prev = id_parse(m->worker_id, &wid) == 0 ? registry_get(b->reg, &wid) : NULL;
    /* Over CURVE a worker id belongs to the key that first registered it. */
    const char *uid = b->curve ? user_id(rq) : NULL;
    const char *key = uid && !strncmp(uid, "key:", 4) ? uid + 4 : NULL;
    if (b->curve && !key) {
        send_error(b, rq, rq->env->request_id, MUSTER__STATUS__STATUS_PERMISSION_DENIED,
                   "no CURVE key on this connection");
        return;
    }
    if (prev && key && *bound_key(b, prev->slot) && strcmp(bound_key(b, prev->slot), key)) {
        char why[160];
        snprintf(why, sizeof(why),
                 "worker id %.40s is bound to another key: an agent cannot take over another "
                 "worker's id (use a fresh state directory)",
                 m->worker_id);
        log_warn("register.refused", "worker=%.40s key=%s reason=\"bound to another key\"",
                 m->worker_id, key);
        send_error(b, rq, rq->env->request_id, MUSTER__STATUS__STATUS_PERMISSION_DENIED, why);
        return;
    }
    if (prev)
        peer_forget_slot(b, prev->slot);
    /* Where it connects from: workers behind one address are verified
     * together (verify.h). libzmq knows it; the agent cannot claim it. */
    const char *addr = zmq_msg_gets((zmq_msg_t *)&rq->msg->payload, "Peer-Address");
    spec.address = addr ? addr : "";
    const worker *w = sched_register(b->core, &spec, b->now, &err);
    if (!w) {
        char host[65];
        str_sanitize(host, sizeof(host), m->hostname);
        log_warn("register.refused", "host=\"%s\" reason=\"%s\"", host, err.text);
        send_error(b, rq, rq->env->request_id, MUSTER__STATUS__STATUS_BAD_REQUEST, err.text);
        return;
    }
    /* Bind the routing id to the worker: forget whatever it pointed to
     * before, and the worker's previous connection. */
    uint32_t old_slot;
    if (idmap_get(b->peer_to_slot, peer->id, peer->len, &old_slot) == 0 && old_slot != w->slot)
        peer_forget_slot(b, old_slot);
    peer_forget_slot(b, w->slot);
    if (idmap_put(b->peer_to_slot, peer->id, peer->len, w->slot) < 0) {
        send_error(b, rq, rq->env->request_id, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    b->slot_peer[w->slot].len = peer->len;
    memcpy(b->slot_peer[w->slot].id, peer->id, peer->len);
    tasks_worker_changed(b, w, true);
    persist_worker(b, w, m);
    if (key && strcmp(bound_key(b, w->slot), key)) {
        if (broker_bind_worker_key(b, w->slot, key) < 0)
            persist_fail(b, "out of memory binding a worker key");
        else
            persist_worker_key(b, w, key);
    }
    /* Its verification too: other GPUs than the verified ones made it
     * pending, and a restart must not find it passed. */
    persist_uptime(b, w);
    /* A member of a cluster that registers again (agent restarted, broker
     * restarted, back from offline) is told its cluster once more. */
    const cluster *c = w->alloc == WORKER_ALLOCATED ? sched_cluster_at(b->core, w->cluster) : NULL;
    if (c && cluster_active(c))
        rpc_member_notice(b, c, w, true);

    char id[ID_TEXT_LEN];
    id_format(&w->id, id);
    Muster__RegisterReply rr = MUSTER__REGISTER_REPLY__INIT;
    rr.worker_id = id;
    rr.heartbeat_interval_ms = b->cfg.heartbeat_interval_ms;
    rr.liveness = b->cfg.liveness;
    rr.gpu_model = (char *)(w->model ? w->model->name : "CPU");
    rr.tier = (char *)tier_name(w->tier);
    rr.region = (char *)w->region;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_REGISTER_REPLY;
    reply.register_reply = &rr;
    send_reply(b, rq, &reply);
}

static void on_heartbeat(broker *b, const request *rq)
{
    /* The touch already happened in dispatch (any message counts); the echo
     * lets the agent know the broker is alive. */
    Muster__Heartbeat hb = MUSTER__HEARTBEAT__INIT;
    hb.seq = rq->env->heartbeat->seq;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_HEARTBEAT;
    reply.heartbeat = &hb;
    send_reply(b, rq, &reply);
}

static void on_goodbye(broker *b, const request *rq)
{
    const worker *w = broker_peer_worker(b, &rq->msg->peer);
    const char *reason = rq->env->goodbye->reason;
    char clean[81], why[96];
    str_sanitize(clean, sizeof(clean), reason && *reason ? reason : "agent stopped");
    snprintf(why, sizeof(why), "goodbye: %s", clean);
    sched_goodbye(b->core, &w->id, b->now, why);
    /* No reply: the agent is on its way out. */
}

/* --- client handlers ------------------------------------------------------------------ */

static void on_list_workers(broker *b, const request *rq)
{
    const Muster__ListWorkersRequest *q = rq->env->list_workers;
    worker_state want_state = WORKER_NEW;
    const gpu_model *want_model = NULL;
    const char *want_region = NULL;
    char why[160];
    if (!str_is_empty(q->state) && worker_state_parse(q->state, &want_state) < 0) {
        snprintf(why, sizeof(why), "unknown state \"%.40s\" (online, suspect or offline)",
                 q->state);
        send_error(b, rq, rq->env->request_id, MUSTER__STATUS__STATUS_BAD_REQUEST, why);
        return;
    }
    if (!str_is_empty(q->region) && !(want_region = regions_find(b->regions, q->region))) {
        snprintf(why, sizeof(why), "unknown region \"%.40s\"", q->region);
        send_error(b, rq, rq->env->request_id, MUSTER__STATUS__STATUS_BAD_REQUEST, why);
        return;
    }
    if (!str_is_empty(q->gpu_model) && !(want_model = catalog_find(b->cat, q->gpu_model))) {
        snprintf(why, sizeof(why), "unknown GPU model \"%.40s\"", q->gpu_model);
        send_error(b, rq, rq->env->request_id, MUSTER__STATUS__STATUS_BAD_REQUEST, why);
        return;
    }
    /* Replies are bounded: a fleet of a million would not fit in one. */
    size_t limit = q->limit ? q->limit : LIST_LIMIT_DEFAULT;
    if (limit > LIST_LIMIT_MAX)
        limit = LIST_LIMIT_MAX;
    size_t n = registry_count(b->reg);
    size_t room = n < limit ? n : limit;
    worker_view *views = mu_calloc(room ? room : 1, sizeof(*views));
    Muster__WorkerInfo **infos = mu_calloc(room ? room : 1, sizeof(*infos));
    if (!views || !infos) {
        mu_free(views);
        mu_free(infos);
        send_error(b, rq, rq->env->request_id, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    size_t k = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        const worker *w = registry_at(b->reg, i);
        if ((want_state != WORKER_NEW && w->state != want_state) ||
            (want_region && w->region != want_region) || (want_model && w->model != want_model))
            continue;
        if (total++ < q->offset || k == room)
            continue;
        view_fill(b, w, &views[k]);
        infos[k] = &views[k].info;
        k++;
    }
    Muster__ListWorkersReply lr = MUSTER__LIST_WORKERS_REPLY__INIT;
    lr.total = (uint32_t)total;
    lr.n_workers = k;
    lr.workers = infos;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_LIST_WORKERS_REPLY;
    reply.list_workers_reply = &lr;
    send_reply(b, rq, &reply);
    mu_free(views);
    mu_free(infos);
}

static void on_get_worker(broker *b, const request *rq)
{
    const char *id = rq->env->get_worker->id;
    const worker *w = registry_find(b->reg, id ? id : "");
    if (!w) {
        char why[160];
        Muster__Status st = MUSTER__STATUS__STATUS_NOT_FOUND;
        if (errno == EEXIST) {
            st = MUSTER__STATUS__STATUS_CONFLICT;
            snprintf(why, sizeof(why),
                     "\"%.40s\" matches more than one worker: give more of the id", id);
        } else if (errno == EINVAL) {
            st = MUSTER__STATUS__STATUS_BAD_REQUEST;
            snprintf(why, sizeof(why), "give at least 4 characters of the worker id");
        } else {
            snprintf(why, sizeof(why), "no worker with id \"%.40s\"", id);
        }
        send_error(b, rq, rq->env->request_id, st, why);
        return;
    }
    worker_view *v = mu_calloc(1, sizeof(*v));
    if (!v) {
        send_error(b, rq, rq->env->request_id, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    view_fill(b, w, v);
    Muster__GetWorkerReply gr = MUSTER__GET_WORKER_REPLY__INIT;
    gr.worker = &v->info;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_GET_WORKER_REPLY;
    reply.get_worker_reply = &gr;
    send_reply(b, rq, &reply);
    mu_free(v);
}

static void on_status(broker *b, const request *rq)
{
    Muster__StatusReply sr = MUSTER__STATUS_REPLY__INIT;
    sr.version = (char *)MUSTER_VERSION;
    sr.protocol_version = WIRE_PROTOCOL_VERSION;
    sr.uptime_ms = b->now - b->started_at;
    sr.workers_total = (uint32_t)registry_count(b->reg);
    sr.workers_online = (uint32_t)registry_count_state(b->reg, WORKER_ONLINE);
    sr.workers_suspect = (uint32_t)registry_count_state(b->reg, WORKER_SUSPECT);
    sr.workers_offline = (uint32_t)registry_count_state(b->reg, WORKER_OFFLINE);
    sr.gpus_online = (uint32_t)registry_gpus_online(b->reg);
    sr.messages_received = b->stats.received;
    sr.messages_rejected = b->stats.rejected;
    sr.messages_dropped = b->stats.dropped;
    sr.heartbeat_interval_ms = b->cfg.heartbeat_interval_ms;
    sr.liveness = b->cfg.liveness;
    sr.agent_endpoint = b->endpoints[0];
    sr.client_endpoint = b->endpoints[1];
    sr.event_endpoint = b->endpoints[2];
    sr.clusters_total = (uint32_t)sched_cluster_count(b->core);
    sr.clusters_active = (uint32_t)sched_clusters_active(b->core);
    const account *a = broker_account(b, rq);
    Muster__WebhookStatus hs = MUSTER__WEBHOOK_STATUS__INIT;
    webhook_status ws;
    if (a) {
        sr.account = (char *)a->name;
        sr.role = (char *)account_role_name(a->role);
        if (a->webhook_url[0] && b->hooks && webhooks_status(b->hooks, a->name, &ws) == 0) {
            hs.url = (char *)a->webhook_url;
            hs.posted = ws.posted;
            hs.delivered = ws.delivered;
            hs.failed = ws.failed;
            hs.dropped = ws.dropped;
            hs.retries = ws.retries;
            hs.queued = ws.queued;
            hs.last_status = ws.last_status;
            hs.last_error = ws.last_error;
            hs.last_error_ms = ws.last_error_ms;
            hs.last_success_ms = ws.last_success_ms;
            sr.webhook = &hs;
        }
    }
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_BROKER_STATUS_REPLY;
    reply.broker_status_reply = &sr;
    send_reply(b, rq, &reply);
}

/* --- dispatch ----------------------------------------------------------------------------- */

static const struct route {
    Muster__Envelope__BodyCase body;
    enum endpoint from;
    bool needs_registration; /* agent must be known (registered, not offline) */
    handler_fn fn;
} routes[] = {
    {MUSTER__ENVELOPE__BODY_REGISTER, EP_AGENT, false, on_register},
    {MUSTER__ENVELOPE__BODY_HEARTBEAT, EP_AGENT, true, on_heartbeat},
    {MUSTER__ENVELOPE__BODY_GOODBYE, EP_AGENT, true, on_goodbye},
    {MUSTER__ENVELOPE__BODY_CLUSTER_ACK, EP_AGENT, true, rpc_cluster_ack},
    {MUSTER__ENVELOPE__BODY_POW_COMMIT, EP_AGENT, true, rpc_pow_commit},
    {MUSTER__ENVELOPE__BODY_POW_PROOFS, EP_AGENT, true, rpc_pow_proofs},
    {MUSTER__ENVELOPE__BODY_TASK_OUTPUT, EP_AGENT, true, rpc_task_output},
    {MUSTER__ENVELOPE__BODY_TASK_EXIT, EP_AGENT, true, rpc_task_exit},
    {MUSTER__ENVELOPE__BODY_TASK_REPORT, EP_AGENT, true, rpc_task_report},
    {MUSTER__ENVELOPE__BODY_LIST_WORKERS, EP_CLIENT, false, on_list_workers},
    {MUSTER__ENVELOPE__BODY_GET_WORKER, EP_CLIENT, false, on_get_worker},
    {MUSTER__ENVELOPE__BODY_BROKER_STATUS, EP_CLIENT, false, on_status},
    {MUSTER__ENVELOPE__BODY_QUOTE, EP_CLIENT, false, rpc_quote},
    {MUSTER__ENVELOPE__BODY_CREATE_CLUSTER, EP_CLIENT, false, rpc_create_cluster},
    {MUSTER__ENVELOPE__BODY_GET_CLUSTER, EP_CLIENT, false, rpc_get_cluster},
    {MUSTER__ENVELOPE__BODY_LIST_CLUSTERS, EP_CLIENT, false, rpc_list_clusters},
    {MUSTER__ENVELOPE__BODY_EXTEND_CLUSTER, EP_CLIENT, false, rpc_extend_cluster},
    {MUSTER__ENVELOPE__BODY_RELEASE_CLUSTER, EP_CLIENT, false, rpc_release_cluster},
    {MUSTER__ENVELOPE__BODY_SHRINK_CLUSTER, EP_CLIENT, false, rpc_shrink_cluster},
    {MUSTER__ENVELOPE__BODY_CREATE_RESERVATION, EP_CLIENT, false, rpc_create_reservation},
    {MUSTER__ENVELOPE__BODY_GET_RESERVATION, EP_CLIENT, false, rpc_get_reservation},
    {MUSTER__ENVELOPE__BODY_LIST_RESERVATIONS, EP_CLIENT, false, rpc_list_reservations},
    {MUSTER__ENVELOPE__BODY_EXTEND_RESERVATION, EP_CLIENT, false, rpc_extend_reservation},
    {MUSTER__ENVELOPE__BODY_RELEASE_RESERVATION, EP_CLIENT, false, rpc_release_reservation},
    {MUSTER__ENVELOPE__BODY_SEARCH, EP_CLIENT, false, rpc_search},
    {MUSTER__ENVELOPE__BODY_SUBSCRIBE, EP_CLIENT, false, rpc_subscribe},
    {MUSTER__ENVELOPE__BODY_SUBMIT_TASKS, EP_CLIENT, false, rpc_submit_tasks},
    {MUSTER__ENVELOPE__BODY_LIST_TASKS, EP_CLIENT, false, rpc_list_tasks},
    {MUSTER__ENVELOPE__BODY_GET_TASK, EP_CLIENT, false, rpc_get_task},
    {MUSTER__ENVELOPE__BODY_CANCEL_TASK, EP_CLIENT, false, rpc_cancel_task},
    {MUSTER__ENVELOPE__BODY_TASK_LOGS, EP_CLIENT, false, rpc_task_logs},
};

static void note_connection(broker *b, const zs_msg *msg);

static void dispatch(broker *b, enum endpoint from, const zs_msg *msg)
{
    b->stats.received++;
    if (msg->bad_framing) {
        b->stats.dropped++;
        log_debug("message.dropped", "endpoint=%s reason=\"bad framing\"",
                  from == EP_AGENT ? "agent" : "client");
        return;
    }
    request rq = {from, msg, NULL};
    Muster__Envelope *env;
    Muster__Status status;
    uint64_t request_id;
    mu_error err;
    if (wire_decode(zmq_msg_data((zmq_msg_t *)&msg->payload),
                    zmq_msg_size((zmq_msg_t *)&msg->payload), b->cfg.max_message_bytes, &env,
                    &status, &request_id, &err) < 0) {
        log_debug("message.rejected", "endpoint=%s status=%s reason=\"%s\"",
                  from == EP_AGENT ? "agent" : "client", wire_status_name(status), err.text);
        send_error(b, &rq, request_id, status, err.text);
        return;
    }
    rq.env = env;
    const struct route *route = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (routes[i].body == env->body_case)
            route = &routes[i];
    if (!route) {
        char why[96];
        snprintf(why, sizeof(why), "\"%s\" is not a request the broker accepts",
                 wire_body_name(env->body_case));
        send_error(b, &rq, env->request_id, MUSTER__STATUS__STATUS_BAD_REQUEST, why);
    } else if (route->from != from) {
        char why[128];
        snprintf(why, sizeof(why), "\"%s\" belongs on the %s endpoint",
                 wire_body_name(env->body_case), route->from == EP_AGENT ? "agent" : "client");
        send_error(b, &rq, env->request_id, MUSTER__STATUS__STATUS_WRONG_ENDPOINT, why);
    } else if (from == EP_AGENT) {
        /* Any message from a registered agent counts as a heartbeat. */
        const worker *w = broker_peer_worker(b, &msg->peer);
        if (w && sched_touch(b->core, &w->id, b->now) < 0)
            w = NULL;
        if (route->needs_registration && !w)
            send_error(b, &rq, env->request_id, MUSTER__STATUS__STATUS_UNKNOWN_WORKER,
                       "unknown worker: register again");
        else
            route->fn(b, &rq);
        note_connection(b, msg);
    } else {
        route->fn(b, &rq);
    }
    wire_free(env);
}

/* Drain the agent socket's monitor: a closed connection makes its worker
 * suspect at once (sched_disconnected), so a crashed agent is replaced
 * after the reconnect grace instead of the whole liveness window. Drained
 * before the agent socket, so a connection that reuses the descriptor is
 * never taken for the closed one. */
static void drain_monitor(broker *b)
{
    for (int i = 0; i < BATCH; i++) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, b->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        /* Frame 1: event (u16) and value (u32, the descriptor); frame 2:
         * the endpoint. */
        uint16_t event = 0;
        uint32_t fd = UINT32_MAX;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&event, zmq_msg_data(&ev), 2);
            memcpy(&fd, (uint8_t *)zmq_msg_data(&ev) + 2, 4);
        }
        while (zmq_msg_more(&ev)) {
            zmq_msg_init(&addr);
            int more = zmq_msg_recv(&addr, b->monitor, 0) >= 0 && zmq_msg_more(&addr);
            zmq_msg_close(&addr);
            if (!more)
                break;
        }
        zmq_msg_close(&ev);
        if (event != ZMQ_EVENT_DISCONNECTED || fd >= b->fd_cap || b->fd_slot[fd] == UINT32_MAX)
            continue;
        uint32_t slot = b->fd_slot[fd];
        b->fd_slot[fd] = UINT32_MAX;
        const worker *w = registry_at(b->reg, slot);
        if (w && slot < b->slot_peer_cap && b->slot_peer[slot].fd == (int)fd) {
            b->slot_peer[slot].fd = -1;
            sched_disconnected(b->core, &w->id, b->now);
        }
    }
}

/* Remember which connection (descriptor) a registered worker speaks on. */
static void note_connection(broker *b, const zs_msg *msg)
{
    const worker *w = broker_peer_worker(b, &msg->peer);
    int fd = zmq_msg_get((zmq_msg_t *)&msg->payload, ZMQ_SRCFD);
    if (!w || fd < 0 || fd > 1 << 20 || w->slot >= b->slot_peer_cap)
        return;
    if ((size_t)fd >= b->fd_cap) {
        size_t ncap = b->fd_cap ? b->fd_cap : 256;
        while (ncap <= (size_t)fd)
            ncap *= 2;
        uint32_t *n = mu_realloc(b->fd_slot, ncap * sizeof(*n));
        if (!n)
            return; /* out of memory: liveness still catches it, later */
        for (size_t i = b->fd_cap; i < ncap; i++)
            n[i] = UINT32_MAX;
        b->fd_slot = n;
        b->fd_cap = ncap;
    }
    b->fd_slot[fd] = w->slot;
    b->slot_peer[w->slot].fd = fd;
}

/* Receive and handle up to BATCH messages from one socket. */
static int drain_socket(broker *b, enum endpoint ep, mu_error *errp)
{
    for (int i = 0; i < BATCH; i++) {
        zs_msg msg;
        if (zs_recv(socket_of(b, ep), true, true, &msg) < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            return errprintf(errp, "receive failed: %s", zmq_strerror(errno));
        }
        dispatch(b, ep, &msg);
        zs_msg_close(&msg);
    }
    return 0;
}

static void advance_clock(broker *b)
{
    uint64_t t = clock_wall_ms();
    if (t > b->now)
        b->now = t; /* never backwards, whatever the wall clock does */
}

int broker_run(broker *b, volatile sig_atomic_t *stop, mu_error *errp)
{
    log_info("broker.ready", "agents=%s clients=%s events=%s heartbeat_ms=%u liveness=%u",
             b->endpoints[0], b->endpoints[1], b->endpoints[2], b->cfg.heartbeat_interval_ms,
             b->cfg.liveness);
    while (!*stop) {
        advance_clock(b);
        uint64_t deadline = sched_next_deadline(b->core);
        uint64_t task_deadline = tasks_next_deadline(b);
        if (task_deadline < deadline)
            deadline = task_deadline;
        long timeout = 1000;
        if (deadline != UINT64_MAX)
            timeout = deadline <= b->now ? 0 : (long)(deadline - b->now + 1);
        if (timeout > 1000)
            timeout = 1000;
        zmq_pollitem_t items[4] = {{b->agents, 0, ZMQ_POLLIN, 0},
                                   {b->clients, 0, ZMQ_POLLIN, 0},
                                   {b->monitor, 0, ZMQ_POLLIN, 0},
                                   {b->zap ? zap_socket(b->zap) : NULL, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, b->zap ? 4 : 3, timeout) < 0) {
            if (errno == EINTR)
                continue;
            return errprintf(errp, "zmq_poll: %s", zmq_strerror(errno));
        }
        advance_clock(b);
        /* One batch: every change it makes is committed together, before
         * any of its replies or events leaves (group commit). */
        persist_begin_batch(b);
        int rc = 0;
        if (b->zap)
            zap_handle(b->zap); /* new connections: who may come in */
        drain_monitor(b);
        if ((items[0].revents & ZMQ_POLLIN) && drain_socket(b, EP_AGENT, errp) < 0)
            rc = -1;
        if (rc == 0 && (items[1].revents & ZMQ_POLLIN) && drain_socket(b, EP_CLIENT, errp) < 0)
            rc = -1;
        if (rc == 0) {
            sched_tick(b->core, b->now);
            tasks_flush(b);
        }
        if (persist_end_batch(b, errp) < 0 || rc < 0)
            return -1;
    }
    log_info("broker.stopping", "workers=%zu received=%llu rejected=%llu dropped=%llu",
             registry_count(b->reg), (unsigned long long)b->stats.received,
             (unsigned long long)b->stats.rejected, (unsigned long long)b->stats.dropped);
    return 0;
}

/* --- lifecycle ------------------------------------------------------------------------- */

static int open_socket(broker *b, int type, const char *ep, int idx, void **out, mu_error *errp)
{
    /* The hard frame cap protects memory before the soft cap (a reply
     * saying "too large") can be applied: 16x the soft cap. */
    int64_t hard = type == ZMQ_PUB ? -1 : (int64_t)b->cfg.max_message_bytes * 16;
    void *s = zs_socket(b->zctx, type, hard, errp);
    if (!s)
        return -1;
    if (b->curve) {
        /* Every endpoint is a CURVE server; ZAP (auth.c) says who gets in:
         * agents with any key, clients and subscribers with an account's. */
        int one = 1;
        /* The PUB socket cannot filter by subscriber: operators and
         * admins only; others subscribe on the client endpoint. */
        const char *domain = idx == 0 ? "agent" : idx == 1 ? "client" : "events";
        if (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one)) < 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, b->key.secret_key, 40) < 0 ||
            zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) < 0) {
            errprintf(errp, "CURVE on %s: %s", ep, zmq_strerror(errno));
            zs_close(s);
            return -1;
        }
    }
    if (zs_bind(s, ep, errp) < 0) {
        zs_close(s);
        return -1;
    }
    if (zs_last_endpoint(s, b->endpoints[idx], sizeof(b->endpoints[idx])) < 0)
        str_copy(b->endpoints[idx], ep, sizeof(b->endpoints[idx]));
    *out = s;
    return 0;
}

static int open_monitor(broker *b, mu_error *errp)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://musterd-agents-%p", (void *)b);
    if (zmq_socket_monitor(b->agents, ep, ZMQ_EVENT_DISCONNECTED) < 0 ||
        !(b->monitor = zmq_socket(b->zctx, ZMQ_PAIR)) || zmq_connect(b->monitor, ep) < 0)
        return errprintf(errp, "agent socket monitor: %s", zmq_strerror(errno));
    return 0;
}

/* <state-dir>/endpoints.json names the endpoints as bound, so that a
 * broker started on port "*" (any free port) can be found by scripts and
 * tests without guessing a port that might be taken. */
static int write_endpoints(broker *b, mu_error *errp)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "agent_endpoint", b->endpoints[0]) ||
        !cJSON_AddStringToObject(j, "client_endpoint", b->endpoints[1]) ||
        !cJSON_AddStringToObject(j, "event_endpoint", b->endpoints[2]) ||
        !cJSON_AddNumberToObject(j, "pid", (double)getpid())) {
        cJSON_Delete(j);
        return errprintf(errp, "out of memory");
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text)
        return errprintf(errp, "out of memory");
    char path[PATH_MAX];
    int rc = 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/endpoints.json", b->cfg.state_dir) >= sizeof(path))
        rc = errprintf(errp, "state directory path too long");
    else
        rc = fs_write_atomic(path, text, strlen(text), errp);
    cJSON_free(text);
    return rc < 0 ? errprefix(errp, "endpoints file") : 0;
}

int broker_core_create(broker *b, mu_error *errp)
{
    /* Challenge seeds and spots must not be guessable by agents. */
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = clock_wall_ms() ^ ((uint64_t)getpid() << 32);
    sched_config sc = {
        .reg =
            {
                .heartbeat_interval_ms = b->cfg.heartbeat_interval_ms,
                .liveness = b->cfg.liveness,
                .reconnect_grace_ms = b->cfg.reconnect_grace_ms,
                .cat = b->cat,
                .regions = b->regions,
                .tiers = &b->cfg.tiers,
            },
        .verify =
            {
                .enabled = b->cfg.verify,
                .target_ms = b->cfg.verify_target_ms,
                .units_per_tflop_s = b->cfg.verify_scale,
                .recheck_ms = b->cfg.verify_recheck_ms,
                .reverify_ms = b->cfg.verify_reverify_s * 1000u,
                .light_ms = b->cfg.verify_light_ms,
                .scratch_kib_per_vram_gib = b->cfg.verify_scratch_kib,
                .max_rtt_ms = b->cfg.verify_max_rtt_ms,
                .seed = seed,
            },
    };
    sched_ops ops = {.worker_state = on_state_change,
                     .cluster_event = rpc_cluster_event,
                     .member_notice = rpc_member_notice,
                     .challenge = rpc_verify_challenge,
                     .spots = rpc_verify_spots,
                     .verdict = rpc_verify_verdict,
                     .arg = b,
                     .reservation_event = rpc_reservation_event};
    if (!(b->core = sched_create(&sc, &ops, errp)))
        return -1;
    b->reg = sched_registry(b->core);
    return 0;
}

/* A delivery thread when some account has a webhook. */
static int open_webhooks(broker *b, mu_error *errp)
{
    bool any = false;
    for (size_t i = 0; i < accounts_count(b->acc); i++)
        any |= accounts_at(b->acc, i)->webhook_url[0] != '\0';
    if (!any)
        return 0;
    webhook_config wc = {.allow_private = b->cfg.webhook_allow_private};
    if (!(b->hooks = webhooks_create(&wc, errp)))
        return -1;
    for (size_t i = 0; i < accounts_count(b->acc); i++) {
        const account *a = accounts_at(b->acc, i);
        if (a->webhook_url[0] &&
            webhooks_set(b->hooks, a->name, a->webhook_url, (const uint8_t *)a->webhook_secret,
                         strlen(a->webhook_secret), errp) < 0)
            return errprefix(errp, "account %s's webhook", a->name);
    }
    return 0;
}

/* Everything but the sockets: data tables, the store, the core as saved. */
static broker *broker_init(const broker_config *cfg, mu_error *errp)
{
    broker *b = mu_calloc(1, sizeof(*b));
    if (!b)
        return errprintf(errp, "out of memory"), NULL;
    b->cfg = *cfg;
    /* A result travels in one message. */
    if (b->cfg.task_result_max_bytes > b->cfg.max_message_bytes / 2)
        b->cfg.task_result_max_bytes = b->cfg.max_message_bytes / 2;
    b->lock_fd = -1;
    b->now = clock_wall_ms();
    b->started_at = b->now;
    char path[CONFIG_PATH_MAX + 32];
    broker_config_catalog_path(cfg, path, sizeof(path));
    if (!(b->cat = catalog_load_file(path, errp)))
        goto error;
    broker_config_regions_path(cfg, path, sizeof(path));
    if (!(b->regions = regions_load_file(path, errp)))
        goto error;
    if (!(b->peer_to_slot = idmap_create())) {
        errprintf(errp, "out of memory");
        goto error;
    }
    if (tasks_init(b, errp) < 0 || persist_open(b, errp) < 0)
        goto error;
    return b;
error:
    broker_destroy(b);
    return NULL;
}

broker *broker_create(const broker_config *cfg, mu_error *errp)
{
    broker *b = broker_init(cfg, errp);
    if (!b)
        return NULL;
    if (!(b->zctx = zmq_ctx_new())) {
        errprintf(errp, "zmq_ctx_new: %s", zmq_strerror(errno));
        goto error;
    }
    if (cfg->key_path[0]) {
        if (key_pair_load(cfg->key_path, &b->key, errp) < 0 ||
            !(b->acc = accounts_load(cfg->accounts_path, errp)) ||
            !(b->zap = zap_create(b->zctx, b->acc, errp)))
            goto error;
        b->curve = true;
        log_info("broker.curve", "public_key=%s accounts=%zu", b->key.public_key,
                 accounts_count(b->acc));
        if (open_webhooks(b, errp) < 0)
            goto error;
    }
    if (open_socket(b, ZMQ_ROUTER, cfg->agent_endpoint, 0, &b->agents, errp) < 0 ||
        open_socket(b, ZMQ_ROUTER, cfg->client_endpoint, 1, &b->clients, errp) < 0 ||
        open_socket(b, ZMQ_PUB, cfg->event_endpoint, 2, &b->events, errp) < 0 ||
        open_monitor(b, errp) < 0 || write_endpoints(b, errp) < 0)
        goto error;
    log_info("broker.started", "version=%s catalog_models=%zu regions=%zu countries=%zu",
             MUSTER_VERSION, catalog_count(b->cat), regions_count(b->regions),
             regions_country_count(b->regions));
    return b;
error:
    broker_destroy(b);
    return NULL;
}

int broker_check(const broker_config *cfg, FILE *out, mu_error *errp)
{
    broker *b = broker_init(cfg, errp);
    if (!b)
        return -1;
    int rc = persist_check(b, out, errp);
    broker_destroy(b);
    return rc;
}

int broker_dump(const broker_config *cfg, FILE *out, mu_error *errp)
{
    broker *b = broker_init(cfg, errp);
    if (!b)
        return -1;
    int rc = persist_dump(b, out, errp);
    broker_destroy(b);
    return rc;
}

void broker_destroy(broker *b)
{
    if (!b)
        return;
    if (b->zctx && b->agents && b->clients && b->events) {
        /* Stopped cleanly: nobody should find this broker any more. */
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof(path), "%s/endpoints.json", b->cfg.state_dir) <
            sizeof(path))
            unlink(path);
    }
    /* Monitoring stops before its socket closes: libzmq's I/O thread would
     * otherwise block for good sending an agent's disconnection to a
     * socket nobody reads, and zmq_ctx_term below with it (libzmq issues
     * 2083 and 3575). Seen as a musterd that did not exit on SIGTERM while
     * its agents were stopping too. */
    if (b->agents)
        zmq_socket_monitor(b->agents, NULL, 0);
    zs_close(b->monitor);
    webhooks_destroy(b->hooks);
    events_free(b);
    zap_destroy(b->zap);
    accounts_destroy(b->acc);
    mu_free(b->worker_keys);
    zs_close(b->agents);
    zs_close(b->clients);
    zs_close(b->events);
    if (b->zctx)
        zmq_ctx_term(b->zctx);
    persist_close(b);
    tasks_free(b);
    idmap_destroy(b->peer_to_slot);
    mu_free(b->slot_peer);
    mu_free(b->fd_slot);
    sched_destroy(b->core);
    regions_destroy(b->regions);
    catalog_destroy(b->cat);
    mu_free(b);
}
