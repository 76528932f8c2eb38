/* rpc_reservations.c - the broker's reservation requests (managed brokers
 * reserve workers for a commitment period and carve clusters out of them),
 * and the core's reservation events on their way out (PUB socket, logs,
 * webhooks). Ownership as for clusters: over CURVE the owner is the asking
 * account, and only it (or an admin) may change a reservation.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "broker_int.h"
#include "ids.h"
#include "log.h"
#include "request.h"
#include "strutil.h"
#include "wire.h"

#define LIST_LIMIT_DEFAULT 1000
#define LIST_LIMIT_MAX     10000

typedef struct resv_view {
    Muster__ReservationInfo info;
    Muster__ClusterSpec spec;
    spec_storage storage;
    char id[ID_TEXT_LEN];
    Muster__ReservationMember *members;
    Muster__ReservationMember **memberp;
    char (*ids)[2][ID_TEXT_LEN];
} resv_view;

static void view_free(resv_view *v)
{
    mu_free(v->members);
    mu_free(v->memberp);
    mu_free(v->ids);
}

static int view_fill(broker *b, const reservation *r, resv_view *v, bool detail)
{
    const registry *reg = sched_registry_const(b->core);
    memset(v, 0, sizeof(*v));
    muster__reservation_info__init(&v->info);
    Muster__ReservationInfo *i = &v->info;
    id_format(&r->id, v->id);
    i->id = v->id;
    i->owner = (char *)r->owner;
    i->state = (char *)resv_state_name(r->state);
    request_to_spec(&r->req, r->hours, registry_catalog(reg), registry_regions(reg), &v->spec,
                    &v->storage);
    i->spec = &v->spec;
    i->wanted = r->req.workers;
    i->min_workers = r->req.min_workers;
    i->filled = r->n_members;
    i->in_use = sched_reservation_in_use(b->core, r);
    i->free = i->filled - i->in_use;
    i->hours = r->hours;
    i->list_price_per_hour_micro_usd = r->list_uusd_per_hour;
    i->discount_percent = r->discount_pct;
    i->price_per_hour_micro_usd = r->price_uusd_per_hour;
    i->total_micro_usd = r->price_uusd_per_hour * r->hours;
    i->created_at_ms = r->created_at;
    i->ends_at_ms = r->ends_at;
    i->ended_at_ms = r->ended_at;
    i->end_reason = (char *)r->end_reason;
    i->replaced = r->replaced;
    if (!detail)
        return 0;
    size_t n = r->n_members ? r->n_members : 1;
    v->members = mu_calloc(n, sizeof(*v->members));
    v->memberp = mu_calloc(n, sizeof(*v->memberp));
    v->ids = mu_calloc(n, sizeof(*v->ids));
    if (!v->members || !v->memberp || !v->ids) {
        view_free(v);
        return -1;
    }
    for (uint32_t k = 0; k < r->n_members; k++) {
        Muster__ReservationMember *m = &v->members[k];
        muster__reservation_member__init(m);
        const worker *w = registry_at(reg, r->members[k]);
        id_format(&w->id, v->ids[k][0]);
        m->worker_id = v->ids[k][0];
        m->hostname = w->hostname;
        m->gpu_model = (char *)(w->model ? w->model->name : "CPU");
        m->gpu_count = w->gpu_count;
        m->region = (char *)w->region;
        m->worker_state = (char *)worker_state_name(w->state);
        m->in_use = w->alloc == WORKER_ALLOCATED;
        const cluster *c = m->in_use ? sched_cluster_at(b->core, w->cluster) : NULL;
        if (c) {
            id_format(&c->id, v->ids[k][1]);
            m->cluster_id = v->ids[k][1];
        }
        v->memberp[k] = m;
    }
    i->members = v->memberp;
    i->n_members = r->n_members;
    return 0;
}

static void reply_resv(broker *b, const request *rq, const reservation *r)
{
    resv_view *v = mu_malloc(sizeof(*v));
    if (!v || view_fill(b, r, v, true) < 0) {
        mu_free(v);
        broker_error(b, rq, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    Muster__ReservationReply rr = MUSTER__RESERVATION_REPLY__INIT;
    rr.reservation = &v->info;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_RESERVATION_REPLY;
    reply.reservation_reply = &rr;
    broker_reply(b, rq, &reply);
    view_free(v);
    mu_free(v);
}

const reservation *rpc_find_reservation(broker *b, const request *rq, const char *id)
{
    const reservation *x = sched_reservation_find(b->core, id ? id : "");
    if (!x)
        broker_lookup_failed(b, rq, id ? id : "", "reservation");
    return x;
}

uint64_t rpc_held_gpus(broker *b, const char *owner)
{
    const registry *reg = sched_registry_const(b->core);
    uint64_t held = 0;
    for (size_t i = 0; i < sched_cluster_count(b->core); i++) {
        const cluster *o = sched_cluster_at(b->core, i);
        if (cluster_active(o) && o->resv == UINT32_MAX && !strcmp(o->owner, owner))
            for (uint32_t k = 0; k < o->n_members; k++) {
                const worker *w = registry_at(reg, o->members[k].worker);
                held += w ? w->gpu_count : o->req.gpus_per_worker;
            }
    }
    for (size_t i = 0; i < sched_reservation_count(b->core); i++) {
        const reservation *r = sched_reservation_at(b->core, i);
        if (resv_active(r) && !strcmp(r->owner, owner))
            held +=
                (uint64_t)r->req.workers * (r->req.gpus_per_worker ? r->req.gpus_per_worker : 1);
    }
    return held;
}

void rpc_create_reservation(broker *b, const request *rq)
{
    const Muster__CreateReservationRequest *q = rq->env->create_reservation;
    const registry *reg = sched_registry_const(b->core);
    match_request mr;
    mu_error err;
    if (!q->spec) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, "a reservation needs a spec");
        return;
    }
    if (request_from_spec(q->spec, registry_catalog(reg), registry_regions(reg), false, &mr, NULL,
                          &err) < 0) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, err.text);
        return;
    }
    if (q->min_workers) {
        if (q->min_workers > mr.workers) {
            char why[128];
            snprintf(why, sizeof(why), "min_workers %u is more than the %u workers asked for",
                     q->min_workers, mr.workers);
            broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, why);
            return;
        }
        mr.min_workers = q->min_workers;
    }
    char owner[64];
    const account *acct = broker_account(b, rq);
    if (acct) {
        str_copy(owner, acct->name, sizeof(owner));
        uint64_t asked = (uint64_t)mr.workers * (mr.gpus_per_worker ? mr.gpus_per_worker : 1);
        uint64_t held = acct->max_gpus ? rpc_held_gpus(b, owner) : 0;
        if (acct->max_gpus && held + asked > acct->max_gpus) {
            char why[200];
            snprintf(why, sizeof(why),
                     "quota: account %s may hold %u GPUs at once; it holds %llu and asks for "
                     "%llu more: nothing was reserved",
                     owner, acct->max_gpus, (unsigned long long)held, (unsigned long long)asked);
            broker_error(b, rq, MUSTER__STATUS__STATUS_PERMISSION_DENIED, why);
            return;
        }
    } else {
        str_sanitize(owner, sizeof(owner), q->owner && *q->owner ? q->owner : "anonymous");
    }
    mu_id id;
    id_generate(&id);
    match_explain why;
    const reservation *r =
        sched_reservation_create(b->core, &id, owner, &mr, q->hours, b->now, &why, &err);
    if (!r) {
        if (errno == ENOSPC) {
            log_info("reservation.not_met", "owner=\"%s\" reason=\"%s\"", owner, why.text);
            rpc_reply_not_met(b, rq, &why);
        } else {
            broker_error(b, rq,
                         errno == EINVAL ? MUSTER__STATUS__STATUS_BAD_REQUEST
                                         : MUSTER__STATUS__STATUS_INTERNAL,
                         err.text);
        }
        return;
    }
    reply_resv(b, rq, r);
}

void rpc_get_reservation(broker *b, const request *rq)
{
    const reservation *r = rpc_find_reservation(b, rq, rq->env->get_reservation->id);
    if (r && broker_may_see(b, rq, r->owner, "this reservation"))
        reply_resv(b, rq, r);
}

void rpc_list_reservations(broker *b, const request *rq)
{
    const Muster__ListReservationsRequest *q = rq->env->list_reservations;
    if (q->state && *q->state && strcmp(q->state, "active") && strcmp(q->state, "released") &&
        strcmp(q->state, "expired")) {
        char why[128];
        snprintf(why, sizeof(why), "unknown state \"%.30s\" (active, released or expired)",
                 q->state);
        broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, why);
        return;
    }
    size_t limit = q->limit ? q->limit : LIST_LIMIT_DEFAULT;
    if (limit > LIST_LIMIT_MAX)
        limit = LIST_LIMIT_MAX;
    bool all = broker_sees_all(b, rq);
    const account *acct = broker_account(b, rq);
    size_t n = sched_reservation_count(b->core);
    size_t room = n < limit ? n : limit;
    resv_view *views = mu_calloc(room ? room : 1, sizeof(*views));
    Muster__ReservationInfo **infos = mu_calloc(room ? room : 1, sizeof(*infos));
    if (!views || !infos) {
        mu_free(views);
        mu_free(infos);
        broker_error(b, rq, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    size_t k = 0, total = 0;
    for (size_t i = n; i-- > 0;) {
        const reservation *r = sched_reservation_at(b->core, i);
        if ((q->state && *q->state && strcmp(q->state, resv_state_name(r->state))) ||
            (q->owner && *q->owner && strcmp(q->owner, r->owner)) ||
            (!all && (!acct || strcmp(acct->name, r->owner))))
            continue;
        if (total++ < q->offset || k == room)
            continue;
        view_fill(b, r, &views[k], false); /* no members: cannot fail */
        infos[k] = &views[k].info;
        k++;
    }
    Muster__ListReservationsReply lr = MUSTER__LIST_RESERVATIONS_REPLY__INIT;
    lr.reservations = infos;
    lr.n_reservations = k;
    lr.total = (uint32_t)total;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_LIST_RESERVATIONS_REPLY;
    reply.list_reservations_reply = &lr;
    broker_reply(b, rq, &reply);
    mu_free(views);
    mu_free(infos);
}

void rpc_extend_reservation(broker *b, const request *rq)
{
    const Muster__ExtendReservationRequest *q = rq->env->extend_reservation;
    const reservation *r = rpc_find_reservation(b, rq, q->id);
    if (!r || !broker_may_change(b, rq, r->owner, "this reservation"))
        return;
    mu_error err;
    if (sched_reservation_extend(b->core, &r->id, q->hours, b->now, &err) < 0)
        broker_change_failed(b, rq, &err);
    else
        reply_resv(b, rq, r);
}

void rpc_release_reservation(broker *b, const request *rq)
{
    const Muster__ReleaseReservationRequest *q = rq->env->release_reservation;
    const reservation *r = rpc_find_reservation(b, rq, q->id);
    if (!r || !broker_may_change(b, rq, r->owner, "this reservation"))
        return;
    char reason[81];
    str_sanitize(reason, sizeof(reason), q->reason && *q->reason ? q->reason : "");
    mu_error err;
    if (sched_reservation_release(b->core, &r->id, b->now, reason, &err) < 0)
        broker_change_failed(b, rq, &err);
    else
        reply_resv(b, rq, r);
}

void rpc_reservation_event(void *arg, const reservation *r, const char *topic, const worker *w,
                           const char *detail)
{
    broker *b = arg;
    char rid[ID_TEXT_LEN], wid[ID_TEXT_LEN] = "", frame[64];
    id_format(&r->id, rid);
    if (w)
        id_format(&w->id, wid);
    bool bad = !strcmp(topic, "reservation.member_lost");
    log_msg(bad ? LOG_WARN : LOG_INFO, topic,
            "reservation=%s owner=\"%s\" state=%s members=%u wanted=%u worker=%s detail=\"%s\"",
            rid, r->owner, resv_state_name(r->state), r->n_members, r->req.workers, w ? wid : "-",
            detail ? detail : "");
    persist_reservation(b, r);
    snprintf(frame, sizeof(frame), "reservation.%s", rid);
    Muster__Event ev = MUSTER__EVENT__INIT;
    ev.topic = (char *)topic;
    ev.reservation_id = rid;
    ev.reservation_state = (char *)resv_state_name(r->state);
    ev.worker_id = wid;
    ev.detail = (char *)(detail ? detail : "");
    broker_publish(b, frame, &ev);
    broker_notify(b, r->owner, &ev);
}
