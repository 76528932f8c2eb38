/* persist.c - nothing acknowledged is ever lost.
 *
 * The broker works in batches (one pass of its loop: the messages waiting
 * on its sockets, then a tick). Whatever a batch changes is written to the
 * store in one transaction, and whatever it would send (replies, events,
 * notices to agents) waits in an outbox until that transaction commits:
 * group commit, so one fsync serves a whole batch, and nothing leaves the
 * broker before it is on disk.
 *
 * If the commit fails (a full disk, an I/O error), the batch's replies
 * become "unavailable" errors, its events are dropped, and the core is
 * rebuilt from the store, exactly as at a restart: memory never runs ahead
 * of the disk. Agents then register again, as after a restart.
 *
 * Workers are saved when they register (their Register message as sent)
 * and when their liveness changes (uptime); clusters whenever a cluster
 * event is emitted, once per batch. Heartbeats are never written.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "broker_int.h"
#include "fsutil.h"
#include "log.h"
#include "request.h"
#include "strutil.h"
#include "webhook.h"
#include "wire.h"

typedef struct out_entry {
    uint8_t kind; /* out_kind */
    bool is_reply;
    bool has_peer;
    zs_peer peer;
    char topic[64];
    char account[ACCOUNT_NAME_MAX]; /* OUT_WEBHOOK */
    uint64_t request_id;
    uint8_t *buf;
    size_t len;
} out_entry;

/* Slots of changed records, each listed once per batch. */
typedef struct dirty_set {
    uint8_t *flag;
    size_t flag_cap;
    uint32_t *list;
    size_t n, list_cap;
} dirty_set;

struct outbox {
    out_entry *e;
    size_t n, cap;
    dirty_set workers, clusters, resvs;
    uint32_t *hist_saved; /* per cluster slot: changes already in the store */
    size_t hist_cap;
    bool failed;
    char why[256];
};

static void fail(broker *b, const char *what, const mu_error *err)
{
    if (!b->out->failed)
        snprintf(b->out->why, sizeof(b->out->why), "%.40s: %.200s", what, err ? err->text : "");
    b->out->failed = true;
}

static int mark(dirty_set *d, uint32_t slot)
{
    if (mu_grow((void **)&d->flag, &d->flag_cap, (size_t)slot + 1, 1) < 0)
        return -1;
    if (d->flag[slot])
        return 0;
    if (mu_grow((void **)&d->list, &d->list_cap, d->n + 1, sizeof(uint32_t)) < 0)
        return -1;
    d->flag[slot] = 1;
    d->list[d->n++] = slot;
    return 0;
}

static void clear(dirty_set *d)
{
    for (size_t i = 0; i < d->n; i++)
        d->flag[d->list[i]] = 0;
    d->n = 0;
}

/* --- the outbox ------------------------------------------------------------------------ */

static void send_entry(broker *b, out_entry *e)
{
    mu_error err;
    int rc = 0;
    if (e->kind == OUT_WEBHOOK) {
        /* Never waits on the network: the delivery thread does (webhook.h). */
        if (b->hooks &&
            webhooks_post(b->hooks, e->account, e->topic, e->buf, e->len, NULL, &err) < 0)
            log_warn("webhook.not_queued", "account=%s reason=\"%s\"", e->account, err.text);
        mu_free(e->buf);
        e->buf = NULL;
        return;
    }
    if (e->kind == OUT_EVENT)
        rc = b->events ? zs_publish_raw(b->events, e->topic, e->buf, e->len, &err) : 0;
    else {
        void *sock = e->kind == OUT_AGENT ? b->agents : b->clients;
        rc = sock ? zs_send_raw(sock, e->has_peer ? &e->peer : NULL, e->buf, e->len, &err) : 0;
    }
    if (!(e->kind == OUT_EVENT ? b->events : e->kind == OUT_AGENT ? b->agents : b->clients))
        mu_free(e->buf); /* offline (--check): nowhere to send */
    e->buf = NULL;
    if (rc < 0)
        log_warn("send.failed", "reason=\"%s\"", err.text);
}

void persist_fail(broker *b, const char *what)
{
    fail(b, what, NULL);
}

void persist_queue_webhook(broker *b, const char *acct, const char *type, uint8_t *body, size_t len)
{
    out_entry e = {.kind = OUT_WEBHOOK, .buf = body, .len = len};
    str_copy(e.topic, type, sizeof(e.topic));
    str_copy(e.account, acct, sizeof(e.account));
    outbox *o = b->out;
    if (!b->batching || !o) {
        send_entry(b, &e);
        return;
    }
    if (mu_grow((void **)&o->e, &o->cap, o->n + 1, sizeof(out_entry)) < 0) {
        mu_free(body);
        fail(b, "out of memory queueing a webhook", NULL);
        return;
    }
    o->e[o->n++] = e;
}

void persist_queue(broker *b, out_kind kind, const zs_peer *peer, const char *topic,
                   const Muster__Envelope *env, bool is_reply)
{
    out_entry e = {.kind = (uint8_t)kind, .is_reply = is_reply, .request_id = env->request_id};
    if (peer) {
        e.peer = *peer;
        e.has_peer = true;
    }
    if (topic)
        str_copy(e.topic, topic, sizeof(e.topic));
    if (wire_encode(env, &e.buf, &e.len) < 0) {
        log_error("send.failed", "reason=\"out of memory encoding a message\"");
        return;
    }
    outbox *o = b->out;
    if (!b->batching || !o) {
        send_entry(b, &e);
        return;
    }
    if (mu_grow((void **)&o->e, &o->cap, o->n + 1, sizeof(out_entry)) < 0) {
        /* Cannot hold it back: better to fail the batch than to send early. */
        mu_free(e.buf);
        fail(b, "out of memory queueing a reply", NULL);
        return;
    }
    o->e[o->n++] = e;
}

/* The batch could not be saved: each waiting reply becomes an error,
 * events and notices are dropped. */
static void turn_into_errors(broker *b)
{
    outbox *o = b->out;
    char reason[320];
    snprintf(reason, sizeof(reason),
             "the broker could not save the change (%.250s): nothing changed", o->why);
    for (size_t i = 0; i < o->n; i++) {
        out_entry *e = &o->e[i];
        mu_free(e->buf);
        e->buf = NULL;
        if (!e->is_reply)
            continue;
        Muster__Envelope env;
        wire_envelope_init(&env, e->request_id);
        env.status = MUSTER__STATUS__STATUS_UNAVAILABLE;
        env.reason = reason;
        if (wire_encode(&env, &e->buf, &e->len) < 0)
            e->buf = NULL;
    }
}

static void flush(broker *b)
{
    outbox *o = b->out;
    for (size_t i = 0; i < o->n; i++)
        if (o->e[i].buf)
            send_entry(b, &o->e[i]);
    o->n = 0;
}

/* --- saving ----------------------------------------------------------------------------------- */

static int in_tx(broker *b)
{
    mu_error err;
    if (store_in_transaction(b->st))
        return 0;
    if (store_begin(b->st, &err) < 0) {
        fail(b, "begin", &err);
        return -1;
    }
    return 0;
}

void persist_worker(broker *b, const worker *w, const Muster__Register *m)
{
    if (b->out->failed || in_tx(b) < 0)
        return;
    size_t len = muster__register__get_packed_size(m);
    uint8_t *buf = mu_malloc(len ? len : 1);
    if (!buf) {
        fail(b, "out of memory saving a worker", NULL);
        return;
    }
    muster__register__pack(m, buf);
    mu_error err;
    if (store_put_worker(b->st, &w->id, buf, len, w->registered_at, &w->up, &err) < 0)
        fail(b, "save worker", &err);
    mu_free(buf);
}

void persist_worker_key(broker *b, const worker *w, const char *key)
{
    mu_error err;
    if (b->out->failed || in_tx(b) < 0)
        return;
    if (store_put_worker_key(b->st, &w->id, key, &err) < 0)
        fail(b, "save worker key", &err);
}

static int on_worker_key_loaded(void *arg, const mu_id *id, const char *key, mu_error *errp)
{
    broker *b = arg;
    const worker *w = registry_get(b->reg, id);
    if (!w)
        return errprintf(errp, "a saved worker key of a worker that was not saved");
    if (broker_bind_worker_key(b, w->slot, key) < 0)
        return errprintf(errp, "out of memory");
    return 0;
}

void persist_uptime(broker *b, const worker *w)
{
    if (b->out && mark(&b->out->workers, w->slot) < 0)
        fail(b, "out of memory", NULL);
}

void persist_cluster(broker *b, const cluster *c)
{
    if (b->out && mark(&b->out->clusters, c->slot) < 0)
        fail(b, "out of memory", NULL);
}

void persist_reservation(broker *b, const reservation *r)
{
    if (b->out && mark(&b->out->resvs, r->slot) < 0)
        fail(b, "out of memory", NULL);
}

static int save_reservation(broker *b, const reservation *r, mu_error *errp)
{
    Muster__ClusterSpec spec;
    spec_storage storage;
    request_to_spec(&r->req, r->hours, b->cat, b->regions, &spec, &storage);
    size_t slen = muster__cluster_spec__get_packed_size(&spec);
    uint8_t *sbuf = mu_malloc(slen ? slen : 1);
    mu_id *members = mu_calloc(r->n_members ? r->n_members : 1, sizeof(*members));
    mu_id excluded[CLUSTER_EXCLUDED];
    size_t n_excluded = 0;
    if (!sbuf || !members) {
        mu_free(sbuf);
        mu_free(members);
        return errprintf(errp, "out of memory");
    }
    muster__cluster_spec__pack(&spec, sbuf);
    for (uint32_t i = 0; i < r->n_members; i++)
        members[i] = registry_at(b->reg, r->members[i])->id;
    for (uint32_t i = 0; i < r->n_excluded && i < CLUSTER_EXCLUDED; i++) {
        const worker *xw = registry_at(b->reg, r->excluded[i]);
        if (xw)
            excluded[n_excluded++] = xw->id;
    }
    store_reservation sr = {
        .id = r->id,
        .owner = r->owner,
        .state = (int)r->state,
        .spec = sbuf,
        .spec_len = slen,
        .hours = r->hours,
        .created_at = r->created_at,
        .ends_at = r->ends_at,
        .ended_at = r->ended_at,
        .list_uusd_per_hour = r->list_uusd_per_hour,
        .price_uusd_per_hour = r->price_uusd_per_hour,
        .discount_pct = r->discount_pct,
        .end_reason = r->end_reason,
        .members = members,
        .n_members = r->n_members,
        .excluded = excluded,
        .n_excluded = n_excluded,
        .replaced = r->replaced,
    };
    int rc = store_put_reservation(b->st, &sr, errp);
    mu_free(sbuf);
    mu_free(members);
    return rc;
}

static int save_cluster(broker *b, const cluster *c, mu_error *errp)
{
    outbox *o = b->out;
    const registry *reg = b->reg;
    Muster__ClusterSpec spec;
    spec_storage storage;
    request_to_spec(&c->req, c->hours, b->cat, b->regions, &spec, &storage);
    size_t slen = muster__cluster_spec__get_packed_size(&spec);
    uint8_t *sbuf = mu_malloc(slen ? slen : 1);
    store_member *members = mu_calloc(c->n_members ? c->n_members : 1, sizeof(*members));
    store_change changes[CLUSTER_HISTORY];
    mu_id excluded[CLUSTER_EXCLUDED];
    size_t n_excluded = 0;
    for (uint32_t i = 0; i < c->n_excluded && i < CLUSTER_EXCLUDED; i++) {
        const worker *xw = registry_at(reg, c->excluded[i]);
        if (xw)
            excluded[n_excluded++] = xw->id;
    }
    if (!sbuf || !members ||
        mu_grow((void **)&o->hist_saved, &o->hist_cap, (size_t)c->slot + 1, sizeof(uint32_t)) < 0) {
        mu_free(sbuf);
        mu_free(members);
        return errprintf(errp, "out of memory");
    }
    muster__cluster_spec__pack(&spec, sbuf);
    for (uint32_t i = 0; i < c->n_members; i++) {
        const worker *w = registry_at(reg, c->members[i].worker);
        if (w)
            members[i].worker = w->id;
        members[i].acked = c->members[i].acked;
        members[i].lost = c->members[i].lost;
    }
    /* Only the changes the store does not have yet (of those still kept). */
    uint32_t kept = c->n_history < CLUSTER_HISTORY ? c->n_history : CLUSTER_HISTORY;
    uint32_t first = c->n_history - kept;
    uint32_t start = o->hist_saved[c->slot] > first ? o->hist_saved[c->slot] : first;
    size_t n_changes = 0;
    for (uint32_t i = start; i < c->n_history; i++) {
        const cluster_change *ch = cluster_history_at(c, i - first);
        store_change *s = &changes[n_changes++];
        memset(s, 0, sizeof(*s));
        s->at = ch->at;
        const worker *w = registry_at(reg, ch->worker);
        if (w)
            s->worker = w->id;
        s->what = ch->what;
        s->reason = ch->reason;
    }
    store_cluster sc = {
        .id = c->id,
        .owner = c->owner,
        .state = (int)c->state,
        .spec = sbuf,
        .spec_len = slen,
        .hours = c->hours,
        .created_at = c->created_at,
        .ready_at = c->ready_at,
        .ends_at = c->ends_at,
        .ended_at = c->ended_at,
        .provision_deadline = c->provision_deadline,
        .price_uusd_per_hour = c->price_uusd_per_hour,
        .end_reason = c->end_reason,
        .members = members,
        .n_members = c->n_members,
        .history = changes,
        .n_history = n_changes,
        .history_seq = start,
        .excluded = excluded,
        .n_excluded = n_excluded,
        .replaced = c->replaced,
    };
    const reservation *from = c->resv == UINT32_MAX ? NULL : sched_reservation_at(b->core, c->resv);
    if (from) {
        sc.has_resv = true;
        sc.resv = from->id;
    }
    int rc = store_put_cluster(b->st, &sc, errp);
    if (rc == 0)
        o->hist_saved[c->slot] = c->n_history;
    mu_free(sbuf);
    mu_free(members);
    return rc;
}

static int save_verification(broker *b, const worker *w, mu_error *errp)
{
    const verifier *v = sched_verifier(b->core);
    uint32_t checks = verifier_checks(v, w);
    verify_state st = verifier_state(v, w);
    if (!checks && st == VERIFY_PENDING)
        return 0; /* nothing judged yet: nothing to keep */
    verify_result hist[VERIFY_HISTORY];
    store_verify_result out[VERIFY_HISTORY];
    size_t n = verifier_history(v, w, hist);
    for (size_t i = 0; i < n; i++)
        out[i] = (store_verify_result){
            hist[i].at, hist[i].expected_ms, hist[i].measured_ms, hist[i].rtt_ms, hist[i].leaf,
            /* bit 7: a light check */
            (uint8_t)(hist[i].outcome | (hist[i].light ? 0x80 : 0)), hist[i].state};
    return store_put_verification(b->st, &w->id, (int)st, checks, out, n, errp);
}

static void save_dirty(broker *b)
{
    outbox *o = b->out;
    mu_error err;
    for (size_t i = 0; i < o->workers.n && !o->failed; i++) {
        const worker *w = registry_at(b->reg, o->workers.list[i]);
        if (w && in_tx(b) == 0 && store_put_uptime(b->st, &w->id, &w->up, &err) < 0)
            fail(b, "save uptime", &err);
        if (w && !o->failed && save_verification(b, w, &err) < 0)
            fail(b, "save verification", &err);
    }
    for (size_t i = 0; i < o->resvs.n && !o->failed; i++) {
        const reservation *r = sched_reservation_at(b->core, o->resvs.list[i]);
        if (r && in_tx(b) == 0 && save_reservation(b, r, &err) < 0)
            fail(b, "save reservation", &err);
    }
    for (size_t i = 0; i < o->clusters.n && !o->failed; i++) {
        const cluster *c = sched_cluster_at(b->core, o->clusters.list[i]);
        if (c && in_tx(b) == 0 && save_cluster(b, c, &err) < 0)
            fail(b, "save cluster", &err);
    }
    if (!o->failed && tasks_pending(b) && in_tx(b) == 0 && tasks_save_dirty(b, &err) < 0)
        fail(b, "save task", &err);
}

void persist_begin_batch(broker *b)
{
    b->batching = true;
}

static int load(broker *b, mu_error *errp);

int persist_end_batch(broker *b, mu_error *errp)
{
    outbox *o = b->out;
    mu_error err;
    if (!o->failed)
        save_dirty(b);
    if (store_in_transaction(b->st)) {
        if (o->failed)
            store_rollback(b->st);
        else if (store_commit(b->st, &err) < 0)
            fail(b, "commit", &err);
    }
    b->batching = false;
    clear(&o->workers);
    clear(&o->clusters);
    clear(&o->resvs);
    if (!o->failed) {
        tasks_saved(b);
        flush(b);
        return 0;
    }
    /* Memory ran ahead of the disk: answer with errors, then take the
     * state back to what the store holds. */
    log_error("store.save_failed", "reason=\"%s\" replies_failed=%zu", o->why, o->n);
    turn_into_errors(b);
    flush(b);
    o->failed = false;
    if (load(b, errp) < 0)
        return errprefix(errp, "could not reload the store after a failed save");
    return 0;
}

/* --- loading
 * -------------------------------------------------------------------------------------- */

static int on_worker_loaded(void *arg, const mu_id *id, const void *reg, size_t len,
                            uint64_t registered_at, const uptime *up, mu_error *errp)
{
    broker *b = arg;
    char text[ID_TEXT_LEN];
    id_format(id, text);
    Muster__Register *m =
        muster__register__unpack(mu_protobuf_allocator(), len, (const uint8_t *)reg);
    if (!m)
        return errprintf(errp, "saved worker %s: its registration does not decode", text);
    worker_device_spec devs[WORKER_MAX_DEVICES];
    worker_spec spec;
    int rc = broker_spec_from_register(m, devs, &spec, errp);
    if (rc == 0 && !sched_restore_worker(b->core, &spec, registered_at, up, errp))
        rc = -1;
    muster__register__free_unpacked(m, mu_protobuf_allocator());
    if (rc < 0)
        return errprefix(errp, "saved worker %s", text);
    return 0;
}

static int on_cluster_loaded(void *arg, const store_cluster *sc, mu_error *errp)
{
    broker *b = arg;
    char text[ID_TEXT_LEN];
    id_format(&sc->id, text);
    Muster__ClusterSpec *spec = muster__cluster_spec__unpack(mu_protobuf_allocator(), sc->spec_len,
                                                             (const uint8_t *)sc->spec);
    if (!spec)
        return errprintf(errp, "saved cluster %s: its request does not decode", text);
    cluster_restore cr = {0};
    uint32_t hours;
    cluster_seat *seats = mu_calloc(sc->n_members ? sc->n_members : 1, sizeof(*seats));
    cluster_change changes[CLUSTER_HISTORY];
    int rc = request_from_spec(spec, b->cat, b->regions, false, &cr.req, &hours, errp);
    if (rc == 0 && !seats)
        rc = errprintf(errp, "out of memory");
    if (rc == 0) {
        for (size_t i = 0; i < sc->n_members; i++) {
            seats[i].worker = sc->members[i].worker;
            seats[i].acked = sc->members[i].acked;
            seats[i].lost = sc->members[i].lost;
        }
        size_t n = sc->n_history < CLUSTER_HISTORY ? sc->n_history : CLUSTER_HISTORY;
        for (size_t i = 0; i < n; i++) {
            const worker *w = registry_get(b->reg, &sc->history[i].worker);
            changes[i].at = sc->history[i].at;
            changes[i].worker = w ? w->slot : UINT32_MAX;
            str_copy(changes[i].what, sc->history[i].what, sizeof(changes[i].what));
            str_copy(changes[i].reason, sc->history[i].reason, sizeof(changes[i].reason));
        }
        cr.id = sc->id;
        cr.owner = sc->owner;
        cr.hours = sc->hours;
        cr.state = (cluster_state)sc->state;
        cr.created_at = sc->created_at;
        cr.ready_at = sc->ready_at;
        cr.ends_at = sc->ends_at;
        cr.ended_at = sc->ended_at;
        cr.provision_deadline = sc->provision_deadline;
        cr.price_uusd_per_hour = sc->price_uusd_per_hour;
        cr.end_reason = sc->end_reason;
        cr.seats = seats;
        cr.n_seats = sc->n_members;
        cr.history = changes;
        cr.n_history = n;
        cr.history_total = sc->history_seq + (uint32_t)n;
        cr.excluded = sc->excluded;
        cr.n_excluded = sc->n_excluded;
        cr.replaced = sc->replaced;
        cr.resv = sc->has_resv ? &sc->resv : NULL;
        const cluster *c = sched_restore_cluster(b->core, &cr, errp);
        if (!c)
            rc = -1;
        else if (mu_grow((void **)&b->out->hist_saved, &b->out->hist_cap, (size_t)c->slot + 1,
                         sizeof(uint32_t)) < 0)
            rc = errprintf(errp, "out of memory");
        else
            b->out->hist_saved[c->slot] = cr.history_total;
    }
    mu_free(seats);
    muster__cluster_spec__free_unpacked(spec, mu_protobuf_allocator());
    if (rc < 0)
        return errprefix(errp, "saved cluster %s", text);
    return 0;
}

static int on_reservation_loaded(void *arg, const store_reservation *sr, mu_error *errp)
{
    broker *b = arg;
    char text[ID_TEXT_LEN];
    id_format(&sr->id, text);
    Muster__ClusterSpec *spec = muster__cluster_spec__unpack(mu_protobuf_allocator(), sr->spec_len,
                                                             (const uint8_t *)sr->spec);
    if (!spec)
        return errprintf(errp, "saved reservation %s: its request does not decode", text);
    resv_restore rr = {0};
    int rc = request_from_spec(spec, b->cat, b->regions, false, &rr.req, NULL, errp);
    if (rc == 0) {
        rr.id = sr->id;
        rr.owner = sr->owner;
        rr.hours = sr->hours;
        rr.state = (resv_state)sr->state;
        rr.created_at = sr->created_at;
        rr.ends_at = sr->ends_at;
        rr.ended_at = sr->ended_at;
        rr.list_uusd_per_hour = sr->list_uusd_per_hour;
        rr.price_uusd_per_hour = sr->price_uusd_per_hour;
        rr.discount_pct = sr->discount_pct;
        rr.end_reason = sr->end_reason;
        rr.members = sr->members;
        rr.n_members = sr->n_members;
        rr.excluded = sr->excluded;
        rr.n_excluded = sr->n_excluded;
        rr.replaced = sr->replaced;
        if (!sched_restore_reservation(b->core, &rr, errp))
            rc = -1;
    }
    muster__cluster_spec__free_unpacked(spec, mu_protobuf_allocator());
    if (rc < 0)
        return errprefix(errp, "saved reservation %s", text);
    return 0;
}

static int on_verification_loaded(void *arg, const mu_id *id, int state, uint32_t checks,
                                  const store_verify_result *hist, size_t n, mu_error *errp)
{
    broker *b = arg;
    const worker *w = registry_get(b->reg, id);
    if (!w)
        return errprintf(errp, "saved verification of a worker that was not saved");
    verify_result r[STORE_VERIFY_HISTORY];
    for (size_t i = 0; i < n && i < STORE_VERIFY_HISTORY; i++)
        r[i] = (verify_result){.at = hist[i].at,
                               .expected_ms = hist[i].expected_ms,
                               .measured_ms = hist[i].measured_ms,
                               .rtt_ms = hist[i].rtt_ms,
                               .leaf = hist[i].leaf,
                               .outcome = hist[i].outcome & 0x7f,
                               .light = (hist[i].outcome & 0x80) != 0,
                               .state = hist[i].state};
    return sched_restore_verification(b->core, w, (verify_state)state, r, n, checks, errp);
}

/* Build the core from the store, from scratch. */
static int load(broker *b, mu_error *errp)
{
    if (b->core) {
        sched_destroy(b->core);
        b->core = NULL;
        b->reg = NULL;
    }
    tasks_reset(b);
    if (b->worker_keys)
        memset(b->worker_keys, 0, b->worker_keys_cap * sizeof(*b->worker_keys));
    broker_forget_peers(b);
    if (b->out->hist_saved)
        memset(b->out->hist_saved, 0, b->out->hist_cap * sizeof(uint32_t));
    if (broker_core_create(b, errp) < 0 ||
        store_load_all(b->st, on_worker_loaded, on_reservation_loaded, on_cluster_loaded, b, errp) <
            0 ||
        store_load_verification(b->st, on_verification_loaded, b, errp) < 0 ||
        store_load_worker_keys(b->st, on_worker_key_loaded, b, errp) < 0 || tasks_load(b, errp) < 0)
        return -1;
    sched_restore_finish(b->core, b->now, b->cfg.restore_grace_ms);
    log_info("store.loaded", "workers=%zu clusters=%zu active=%zu reservations=%zu grace_ms=%u",
             registry_count(b->reg), sched_cluster_count(b->core), sched_clusters_active(b->core),
             sched_reservation_count(b->core), b->cfg.restore_grace_ms);
    return 0;
}

int persist_open(broker *b, mu_error *errp)
{
    const broker_config *cfg = &b->cfg;
    if (fs_mkdir_p(cfg->state_dir, 0700, errp) < 0)
        return errprefix(errp, "state directory");
    b->lock_fd = fs_lock_dir(cfg->state_dir, "musterd", "run one musterd per --state-dir", errp);
    if (b->lock_fd < 0)
        return -1;
    char path[CONFIG_PATH_MAX + 32];
    broker_config_store_path(cfg, path, sizeof(path));
    if (!(b->st = store_open(path, cfg->full_sync, errp)))
        return -1;
    if (cfg->store_max_bytes && store_set_max_bytes(b->st, cfg->store_max_bytes, errp) < 0)
        return -1;
    if (!(b->out = mu_calloc(1, sizeof(*b->out))))
        return errprintf(errp, "out of memory");
    return load(b, errp);
}

void persist_close(broker *b)
{
    outbox *o = b->out;
    if (o) {
        for (size_t i = 0; i < o->n; i++)
            mu_free(o->e[i].buf);
        mu_free(o->e);
        mu_free(o->workers.flag);
        mu_free(o->workers.list);
        mu_free(o->clusters.flag);
        mu_free(o->clusters.list);
        mu_free(o->resvs.flag);
        mu_free(o->resvs.list);
        mu_free(o->hist_saved);
        mu_free(o);
        b->out = NULL;
    }
    store_close(b->st);
    b->st = NULL;
    if (b->lock_fd >= 0)
        close(b->lock_fd);
    b->lock_fd = -1;
}

/* --- operators' tools ---------------------------------------------------------------------------
 */

static size_t active_resvs(broker *b)
{
    size_t n = 0;
    for (size_t i = 0; i < sched_reservation_count(b->core); i++)
        n += resv_active(sched_reservation_at(b->core, i));
    return n;
}

int persist_check(broker *b, FILE *out, mu_error *errp)
{
    if (store_check(b->st, errp) < 0 || sched_check(b->core, errp) < 0 || tasks_check(b, errp) < 0)
        return -1;
    uint64_t members = 0, changes = 0;
    if (store_count(b->st, "cluster_members", &members, errp) < 0 ||
        store_count(b->st, "cluster_history", &changes, errp) < 0)
        return -1;
    fprintf(out,
            "store ok: schema %d, %zu workers, %zu clusters (%zu active), %llu seats, "
            "%llu history entries, %zu reservations (%zu active)\n",
            store_schema_version(b->st), registry_count(b->reg), sched_cluster_count(b->core),
            sched_clusters_active(b->core), (unsigned long long)members,
            (unsigned long long)changes, sched_reservation_count(b->core), active_resvs(b));
    return 0;
}
