/* rpc_clusters.c - the broker's cluster, quote and search requests, and the
 * core's cluster events on their way out (PUB socket, logs, agents).
 *
 * Replies borrow from the core's records and from views built here on the
 * stack or heap for the duration of one reply; nothing is kept.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "broker_int.h"
#include "ids.h"
#include "log.h"
#include "pricing.h"
#include "request.h"
#include "search.h"
#include "strutil.h"
#include "wire.h"

#define LIST_LIMIT_DEFAULT   1000
#define LIST_LIMIT_MAX       10000
#define SEARCH_LIMIT_DEFAULT 100
#define SEARCH_LIMIT_MAX     1000

/* --- views -------------------------------------------------------------------------- */

typedef struct cluster_view {
    Muster__ClusterInfo info;
    Muster__ClusterSpec spec;
    spec_storage storage;
    char id[ID_TEXT_LEN];
    Muster__ClusterMember *members;
    Muster__ClusterMember **memberp;
    char (*member_ids)[ID_TEXT_LEN];
    Muster__ClusterChange changes[CLUSTER_HISTORY];
    Muster__ClusterChange *changep[CLUSTER_HISTORY];
    char change_ids[CLUSTER_HISTORY][ID_TEXT_LEN];
} cluster_view;

static void view_free(cluster_view *v)
{
    mu_free(v->members);
    mu_free(v->memberp);
    mu_free(v->member_ids);
}

/* Fill v from c; with history when detail. 0, or -1 when out of memory. */
static int view_fill(broker *b, const cluster *c, cluster_view *v, bool detail)
{
    const registry *reg = sched_registry_const(b->core);
    memset(v, 0, sizeof(*v));
    muster__cluster_info__init(&v->info);
    Muster__ClusterInfo *i = &v->info;
    id_format(&c->id, v->id);
    i->id = v->id;
    i->owner = (char *)c->owner;
    i->state = (char *)cluster_state_name(c->state);
    request_to_spec(&c->req, c->hours, registry_catalog(reg), registry_regions(reg), &v->spec,
                    &v->storage);
    i->spec = &v->spec;
    size_t n = c->n_members ? c->n_members : 1;
    v->members = mu_calloc(n, sizeof(*v->members));
    v->memberp = mu_calloc(n, sizeof(*v->memberp));
    v->member_ids = mu_calloc(n, sizeof(*v->member_ids));
    if (!v->members || !v->memberp || !v->member_ids) {
        view_free(v);
        return -1;
    }
    for (uint32_t k = 0; k < c->n_members; k++) {
        Muster__ClusterMember *m = &v->members[k];
        muster__cluster_member__init(m);
        const worker *w = registry_at(reg, c->members[k].worker);
        m->acknowledged = c->members[k].acked;
        m->lost = c->members[k].lost;
        if (w) {
            id_format(&w->id, v->member_ids[k]);
            m->worker_id = v->member_ids[k];
            m->hostname = w->hostname;
            m->gpu_model = (char *)(w->model ? w->model->name : "CPU");
            m->gpu_count = w->gpu_count;
            m->region = (char *)w->region;
            m->country = (char *)w->country;
            m->tier = (char *)tier_name(w->tier);
            m->price_micro_usd = w->price_uusd;
            m->worker_state = (char *)worker_state_name(w->state);
            i->gpus += w->gpu_count;
        }
        v->memberp[k] = m;
    }
    i->members = v->memberp;
    i->n_members = c->n_members;
    i->hours = c->hours;
    i->created_at_ms = c->created_at;
    i->ready_at_ms = c->ready_at;
    i->ends_at_ms = c->ends_at;
    i->ended_at_ms = c->ended_at;
    i->price_per_hour_micro_usd = c->price_uusd_per_hour;
    i->total_micro_usd = c->price_uusd_per_hour * c->hours;
    i->end_reason = (char *)c->end_reason;
    if (detail) {
        uint32_t kept = c->n_history < CLUSTER_HISTORY ? c->n_history : CLUSTER_HISTORY;
        for (uint32_t k = 0; k < kept; k++) {
            const cluster_change *ch = cluster_history_at(c, k);
            Muster__ClusterChange *x = &v->changes[k];
            muster__cluster_change__init(x);
            x->time_ms = ch->at;
            x->what = (char *)ch->what;
            x->reason = (char *)ch->reason;
            const worker *w = registry_at(reg, ch->worker);
            if (w) {
                id_format(&w->id, v->change_ids[k]);
                x->worker_id = v->change_ids[k];
            }
            v->changep[k] = x;
        }
        i->history = v->changep;
        i->n_history = kept;
    }
    return 0;
}

static void reply_cluster(broker *b, const request *rq, const cluster *c)
{
    cluster_view *v = mu_malloc(sizeof(*v));
    if (!v || view_fill(b, c, v, true) < 0) {
        mu_free(v);
        broker_error(b, rq, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    Muster__ClusterReply cr = MUSTER__CLUSTER_REPLY__INIT;
    cr.cluster = &v->info;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_CLUSTER_REPLY;
    reply.cluster_reply = &cr;
    broker_reply(b, rq, &reply);
    view_free(v);
    mu_free(v);
}

/* A valid request the fleet cannot serve: why, and what could be. Not
 * counted as rejected: it is an answer, not an error of the peer's. */
void rpc_reply_not_met(broker *b, const request *rq, const match_explain *why)
{
    Muster__NotMet nm = MUSTER__NOT_MET__INIT;
    Muster__Alternative alts[4], *altp[4];
    nm.constraint = (char *)why->constraint;
    nm.available = why->available;
    nm.explanation = (char *)why->text;
    for (size_t i = 0; i < why->n_alt && i < 4; i++) {
        muster__alternative__init(&alts[i]);
        alts[i].flags = (char *)why->alt[i].flags;
        alts[i].text = (char *)why->alt[i].text;
        alts[i].available = why->alt[i].available;
        altp[i] = &alts[i];
    }
    nm.alternatives = altp;
    nm.n_alternatives = why->n_alt < 4 ? why->n_alt : 4;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.status = MUSTER__STATUS__STATUS_NOT_MET;
    reply.reason = (char *)why->text;
    reply.body_case = MUSTER__ENVELOPE__BODY_NOT_MET;
    reply.not_met = &nm;
    broker_reply(b, rq, &reply);
}

/* The cluster an id or prefix names, or NULL after an error reply. */
const cluster *rpc_find_cluster(broker *b, const request *rq, const char *id)
{
    const cluster *x = sched_cluster_find(b->core, id ? id : "");
    if (!x)
        broker_lookup_failed(b, rq, id ? id : "", "cluster");
    return x;
}

/* --- requests ------------------------------------------------------------------------- */

void rpc_quote(broker *b, const request *rq)
{
    const registry *reg = sched_registry_const(b->core);
    match_request mr;
    uint32_t hours;
    mu_error err;
    if (request_from_spec(rq->env->quote->spec, registry_catalog(reg), registry_regions(reg), false,
                          &mr, &hours, &err) < 0) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, err.text);
        return;
    }
    sched_quote q;
    match_explain why;
    if (sched_quote_request(b->core, &mr, hours, &q, &why, &err) < 0) {
        if (errno == ENOSPC)
            rpc_reply_not_met(b, rq, &why);
        else
            broker_error(b, rq,
                         errno == EINVAL ? MUSTER__STATUS__STATUS_BAD_REQUEST
                                         : MUSTER__STATUS__STATUS_INTERNAL,
                         err.text);
        return;
    }
    Muster__QuoteReply qr = MUSTER__QUOTE_REPLY__INIT;
    qr.workers = q.workers;
    qr.gpus = q.gpus;
    qr.price_per_hour_micro_usd = q.per_hour_uusd;
    qr.total_micro_usd = q.total_uusd;
    qr.hours = hours;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_QUOTE_REPLY;
    reply.quote_reply = &qr;
    broker_reply(b, rq, &reply);
}

void rpc_create_cluster(broker *b, const request *rq)
{
    const Muster__CreateClusterRequest *q = rq->env->create_cluster;
    const registry *reg = sched_registry_const(b->core);
    match_request mr;
    uint32_t hours;
    mu_error err;
    if (request_from_spec(q->spec, registry_catalog(reg), registry_regions(reg), false, &mr, &hours,
                          &err) < 0) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, err.text);
        return;
    }
    char owner[64];
    const account *acct = broker_account(b, rq);
    const reservation *from = NULL;
    if (q->from_reservation && *q->from_reservation) {
        /* Carved out of a reservation: only its owner may, and its workers
         * are already held (no quota check: they count in the reservation). */
        if (!(from = rpc_find_reservation(b, rq, q->from_reservation)) ||
            !broker_may_change(b, rq, from->owner, "this reservation"))
            return;
    }
    if (acct) {
        /* Over CURVE the owner is who asks, whatever the request says. */
        str_copy(owner, acct->name, sizeof(owner));
        if (acct->max_gpus && !from) {
            uint64_t held = rpc_held_gpus(b, owner);
            uint64_t asked = (uint64_t)mr.workers * (mr.gpus_per_worker ? mr.gpus_per_worker : 1);
            if (held + asked > acct->max_gpus) {
                char why[200];
                snprintf(why, sizeof(why),
                         "quota: account %s may hold %u GPUs at once; it holds %llu and asks "
                         "for at least %llu more: nothing was allocated",
                         owner, acct->max_gpus, (unsigned long long)held,
                         (unsigned long long)asked);
                broker_error(b, rq, MUSTER__STATUS__STATUS_PERMISSION_DENIED, why);
                return;
            }
        }
    } else {
        str_sanitize(owner, sizeof(owner), q->owner && *q->owner ? q->owner : "anonymous");
    }
    mu_id id;
    id_generate(&id);
    match_explain why;
    const cluster *c =
        from ? sched_cluster_create_from(b->core, &id, owner, &mr, hours, &from->id, b->now, &why,
                                         &err)
             : sched_cluster_create(b->core, &id, owner, &mr, hours, b->now, &why, &err);
    if (!c) {
        if (errno == ENOSPC) {
            log_info("cluster.not_met", "owner=\"%s\" reason=\"%s\"", owner, why.text);
            rpc_reply_not_met(b, rq, &why);
        } else {
            broker_error(b, rq,
                         errno == EINVAL   ? MUSTER__STATUS__STATUS_BAD_REQUEST
                         : errno == ESTALE ? MUSTER__STATUS__STATUS_CONFLICT
                                           : MUSTER__STATUS__STATUS_INTERNAL,
                         err.text);
        }
        return;
    }
    reply_cluster(b, rq, c);
}

void rpc_get_cluster(broker *b, const request *rq)
{
    const cluster *c = rpc_find_cluster(b, rq, rq->env->get_cluster->id);
    if (c && broker_may_see(b, rq, c->owner, "this cluster"))
        reply_cluster(b, rq, c);
}

static bool state_matches(const cluster *c, const char *want)
{
    if (!want || !*want)
        return true;
    if (!strcmp(want, "active"))
        return cluster_active(c);
    return !strcmp(want, cluster_state_name(c->state));
}

void rpc_list_clusters(broker *b, const request *rq)
{
    const Muster__ListClustersRequest *q = rq->env->list_clusters;
    static const char *const states[] = {"active",   "provisioning", "ready", "degraded",
                                         "released", "expired",      "failed"};
    if (q->state && *q->state) {
        bool known = false;
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
            known |= !strcmp(q->state, states[i]);
        if (!known) {
            char why[160];
            snprintf(why, sizeof(why),
                     "unknown state \"%.30s\" (active, provisioning, ready, degraded, "
                     "released, expired or failed)",
                     q->state);
            broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, why);
            return;
        }
    }
    size_t limit = q->limit ? q->limit : LIST_LIMIT_DEFAULT;
    if (limit > LIST_LIMIT_MAX)
        limit = LIST_LIMIT_MAX;
    /* Over CURVE, only one's own clusters, unless an operator or admin. */
    bool all = broker_sees_all(b, rq);
    const account *acct = broker_account(b, rq);
    size_t n = sched_cluster_count(b->core);
    size_t room = n < limit ? n : limit;
    cluster_view *views = mu_calloc(room ? room : 1, sizeof(*views));
    Muster__ClusterInfo **infos = mu_calloc(room ? room : 1, sizeof(*infos));
    size_t k = 0, total = 0;
    bool oom = !views || !infos;
    /* Newest first: clusters are kept in creation order. */
    for (size_t i = n; i-- > 0 && !oom;) {
        const cluster *c = sched_cluster_at(b->core, i);
        if (!state_matches(c, q->state) || (q->owner && *q->owner && strcmp(q->owner, c->owner)) ||
            (!all && (!acct || strcmp(acct->name, c->owner))))
            continue;
        if (total++ < q->offset || k == room)
            continue;
        if (view_fill(b, c, &views[k], false) < 0) {
            oom = true;
            break;
        }
        infos[k] = &views[k].info;
        k++;
    }
    if (oom) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
    } else {
        Muster__ListClustersReply lr = MUSTER__LIST_CLUSTERS_REPLY__INIT;
        lr.clusters = infos;
        lr.n_clusters = k;
        lr.total = (uint32_t)total;
        Muster__Envelope reply;
        wire_envelope_init(&reply, 0);
        reply.body_case = MUSTER__ENVELOPE__BODY_LIST_CLUSTERS_REPLY;
        reply.list_clusters_reply = &lr;
        broker_reply(b, rq, &reply);
    }
    for (size_t i = 0; i < k; i++)
        view_free(&views[i]);
    mu_free(views);
    mu_free(infos);
}

void rpc_extend_cluster(broker *b, const request *rq)
{
    const Muster__ExtendClusterRequest *q = rq->env->extend_cluster;
    const cluster *c = rpc_find_cluster(b, rq, q->id);
    if (!c || !broker_may_change(b, rq, c->owner, "this cluster"))
        return;
    mu_error err;
    if (sched_cluster_extend(b->core, &c->id, q->hours, b->now, &err) < 0)
        broker_change_failed(b, rq, &err);
    else
        reply_cluster(b, rq, c);
}

void rpc_release_cluster(broker *b, const request *rq)
{
    const Muster__ReleaseClusterRequest *q = rq->env->release_cluster;
    const cluster *c = rpc_find_cluster(b, rq, q->id);
    if (!c || !broker_may_change(b, rq, c->owner, "this cluster"))
        return;
    char reason[81];
    str_sanitize(reason, sizeof(reason), q->reason && *q->reason ? q->reason : "");
    mu_error err;
    if (sched_cluster_release(b->core, &c->id, b->now, reason, &err) < 0)
        broker_change_failed(b, rq, &err);
    else
        reply_cluster(b, rq, c);
}

void rpc_shrink_cluster(broker *b, const request *rq)
{
    const Muster__ShrinkClusterRequest *q = rq->env->shrink_cluster;
    const cluster *c = rpc_find_cluster(b, rq, q->id);
    if (!c || !broker_may_change(b, rq, c->owner, "this cluster"))
        return;
    mu_error err;
    if (sched_cluster_shrink(b->core, &c->id, b->now, NULL, &err) < 0)
        broker_change_failed(b, rq, &err);
    else
        reply_cluster(b, rq, c);
}

void rpc_search(broker *b, const request *rq)
{
    const Muster__SearchRequest *q = rq->env->search;
    const registry *reg = sched_registry_const(b->core);
    match_request f;
    mu_error err;
    Muster__ClusterSpec empty = MUSTER__CLUSTER_SPEC__INIT;
    if (request_from_spec(q->filter ? q->filter : &empty, registry_catalog(reg),
                          registry_regions(reg), true, &f, NULL, &err) < 0) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, err.text);
        return;
    }
    search_sort sort = SEARCH_BY_PRICE;
    if (q->sort && *q->sort) {
        if (!strcmp(q->sort, "count"))
            sort = SEARCH_BY_COUNT;
        else if (!strcmp(q->sort, "uptime"))
            sort = SEARCH_BY_UPTIME;
        else if (strcmp(q->sort, "price")) {
            broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST,
                         "sort by price, count or uptime");
            return;
        }
    }
    size_t n;
    uint32_t total;
    errno = 0;
    search_row *rows = search_run(sched_index(b->core), reg, &f, sort, &n, &total);
    if (!rows && errno == ENOMEM) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    size_t limit = q->limit ? q->limit : SEARCH_LIMIT_DEFAULT;
    if (limit > SEARCH_LIMIT_MAX)
        limit = SEARCH_LIMIT_MAX;
    size_t shown = n < limit ? n : limit;
    Muster__SearchRow *out = mu_calloc(shown ? shown : 1, sizeof(*out));
    Muster__SearchRow **outp = mu_calloc(shown ? shown : 1, sizeof(*outp));
    char(*counts)[48] = mu_calloc(shown ? shown : 1, sizeof(*counts));
    if (!out || !outp || !counts) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
    } else {
        const catalog *cat = registry_catalog(reg);
        const region_table *regions = registry_regions(reg);
        for (size_t i = 0; i < shown; i++) {
            const search_row *r = &rows[i];
            Muster__SearchRow *x = &out[i];
            muster__search_row__init(x);
            x->gpu_model = catalog_at(cat, r->model)->name;
            const char *rn = regions_name_at(regions, r->region);
            x->region = (char *)(rn ? rn : "unknown");
            x->tier = (char *)tier_name((tier)r->tier);
            x->workers = r->workers;
            x->gpus = r->gpus;
            x->min_price_micro_usd = r->min_price_uusd;
            x->max_price_micro_usd = r->max_price_uusd;
            x->best_uptime = r->best_uptime;
            x->mean_uptime = r->workers ? r->uptime_sum / r->workers : 0;
            size_t len = 0;
            for (unsigned g = 1; g < 32; g++)
                if (r->gpu_counts >> g & 1 && len < sizeof(counts[i]))
                    len += (size_t)snprintf(counts[i] + len, sizeof(counts[i]) - len, "%s%u",
                                            len ? "," : "", g);
            x->gpus_per_worker = counts[i];
            outp[i] = x;
        }
        Muster__SearchReply sr = MUSTER__SEARCH_REPLY__INIT;
        sr.rows = outp;
        sr.n_rows = shown;
        sr.total_workers = total;
        Muster__Envelope reply;
        wire_envelope_init(&reply, 0);
        reply.body_case = MUSTER__ENVELOPE__BODY_SEARCH_REPLY;
        reply.search_reply = &sr;
        broker_reply(b, rq, &reply);
    }
    mu_free(counts);
    mu_free(out);
    mu_free(outp);
    mu_free(rows);
}

void rpc_cluster_ack(broker *b, const request *rq)
{
    const worker *w = broker_peer_worker(b, &rq->msg->peer);
    const char *cid = rq->env->cluster_ack->cluster_id;
    mu_id id;
    mu_error err;
    if (!w || id_parse(cid ? cid : "", &id) < 0) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, "cluster_id is not a cluster id");
        return;
    }
    if (sched_cluster_ack(b->core, &id, &w->id, b->now, &err) < 0) {
        broker_error(b, rq,
                     errno == ENOENT ? MUSTER__STATUS__STATUS_NOT_FOUND
                                     : MUSTER__STATUS__STATUS_PERMISSION_DENIED,
                     err.text);
        return;
    }
    /* Every request gets a reply: the acknowledgement, echoed. */
    Muster__ClusterAck ack = MUSTER__CLUSTER_ACK__INIT;
    ack.cluster_id = (char *)cid;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_CLUSTER_ACK;
    reply.cluster_ack = &ack;
    broker_reply(b, rq, &reply);
}

/* --- out of the core ------------------------------------------------------------------------ */

void rpc_cluster_event(void *arg, const cluster *c, const char *topic, const worker *w,
                       const char *detail)
{
    broker *b = arg;
    char cid[ID_TEXT_LEN], wid[ID_TEXT_LEN] = "", frame[64];
    id_format(&c->id, cid);
    if (w)
        id_format(&w->id, wid);
    bool bad = !strcmp(topic, "cluster.failed") || !strcmp(topic, "cluster.degraded") ||
               !strcmp(topic, "cluster.member_lost");
    log_msg(bad ? LOG_WARN : LOG_INFO, topic,
            "cluster=%s owner=\"%s\" state=%s members=%u worker=%s detail=\"%s\"", cid, c->owner,
            cluster_state_name(c->state), c->n_members, w ? wid : "-", detail ? detail : "");
    persist_cluster(b, c);
    tasks_cluster_event(b, c);
    snprintf(frame, sizeof(frame), "cluster.%s", cid);
    Muster__Event ev = MUSTER__EVENT__INIT;
    ev.topic = (char *)topic;
    ev.cluster_id = cid;
    ev.cluster_state = (char *)cluster_state_name(c->state);
    ev.worker_id = wid;
    ev.detail = (char *)(detail ? detail : "");
    broker_publish(b, frame, &ev);
    broker_notify(b, c->owner, &ev);
}

void rpc_member_notice(void *arg, const cluster *c, const worker *w, bool join)
{
    broker *b = arg;
    zs_peer peer;
    if (broker_worker_peer(b, w, &peer) < 0)
        return; /* not connected: it hears on its next registration */
    char cid[ID_TEXT_LEN];
    id_format(&c->id, cid);
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    Muster__ClusterJoin cj = MUSTER__CLUSTER_JOIN__INIT;
    Muster__ClusterLeave cl = MUSTER__CLUSTER_LEAVE__INIT;
    if (join) {
        cj.cluster_id = cid;
        cj.owner = (char *)c->owner;
        cj.ends_at_ms = c->ends_at;
        cj.members = c->n_members;
        env.body_case = MUSTER__ENVELOPE__BODY_CLUSTER_JOIN;
        env.cluster_join = &cj;
    } else {
        cl.cluster_id = cid;
        cl.reason = (char *)(c->end_reason[0] ? c->end_reason : cluster_state_name(c->state));
        env.body_case = MUSTER__ENVELOPE__BODY_CLUSTER_LEAVE;
        env.cluster_leave = &cl;
    }
    broker_send_agent(b, &peer, &env);
}
