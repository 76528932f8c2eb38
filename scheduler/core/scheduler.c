/* scheduler.c - see scheduler.h. */
#include "scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "pricing.h"

#define NIL UINT32_MAX

struct sched {
    sched_config cfg;
    sched_ops ops;
    registry *reg;
    windex *ix;
    cluster_table *clusters;
    verifier *ver;
    uint64_t grace_until; /* after a restore: when missing members count as lost; 0 none */
    /* Clusters with a vacant seat, tried again every reroute_retry_ms. */
    uint32_t *needy;
    size_t n_needy, needy_cap;
    uint64_t retry_at;
    resv_table *resvs;
    /* Reservations holding fewer than they want: they take workers as they
     * become free, and are tried again with the clusters above. */
    uint32_t *rneedy;
    size_t n_rneedy, rneedy_cap;
};

static void reroute(sched *s, cluster *c, uint64_t now);
static void refresh(sched *s, worker *w, uint64_t now);
static reservation *resv_of(sched *s, const worker *w);
static void resv_lose(sched *s, reservation *r, worker *w, uint64_t now, const char *reason,
                      bool fill);
static void resv_fill(sched *s, reservation *r, uint64_t now);
static void resv_emit(sched *s, reservation *r, const char *topic, const worker *w,
                      const char *detail);

/* --- events out -------------------------------------------------------------------- */

static void emit(sched *s, cluster *c, const char *topic, const worker *w, const char *detail)
{
    if (s->ops.cluster_event)
        s->ops.cluster_event(s->ops.arg, c, topic, w, detail);
}

static void notice(sched *s, cluster *c, const worker *w, bool join)
{
    if (s->ops.member_notice)
        s->ops.member_notice(s->ops.arg, c, w, join);
}

static cluster_member *member_of(cluster *c, uint32_t worker_slot)
{
    if (worker_slot == NIL)
        return NULL;
    for (uint32_t i = 0; i < c->n_members; i++)
        if (c->members[i].worker == worker_slot)
            return &c->members[i];
    return NULL;
}

static uint32_t lost_count(const cluster *c)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_members; i++)
        n += c->members[i].lost;
    return n;
}

static bool all_acked(const cluster *c)
{
    for (uint32_t i = 0; i < c->n_members; i++)
        if (!c->members[i].acked)
            return false;
    return true;
}

/* Provisioning or degraded clusters become ready once every member is
 * there (acknowledged and not lost). */
static void maybe_ready(sched *s, cluster *c, uint64_t now)
{
    if ((c->state != CLUSTER_PROVISIONING && c->state != CLUSTER_DEGRADED) || lost_count(c) ||
        !all_acked(c))
        return;
    bool first = c->state == CLUSTER_PROVISIONING;
    c->state = CLUSTER_READY;
    if (first)
        c->ready_at = now;
    cluster_table_schedule(s->clusters, c);
    const char *why = first ? "all members acknowledged" : "every seat served again";
    cluster_record(c, now, NIL, "ready", why);
    emit(s, c, "cluster.ready", NULL, why);
}

/* End an active cluster: free its members and tell those still there. */
static void end_cluster(sched *s, cluster *c, cluster_state to, uint64_t now, const char *reason)
{
    c->state = to;
    c->ended_at = now;
    snprintf(c->end_reason, sizeof(c->end_reason), "%s", reason);
    cluster_table_schedule(s->clusters, c);
    for (uint32_t i = 0; i < c->n_members; i++) {
        if (c->members[i].worker == NIL)
            continue; /* vacated earlier */
        worker *w = registry_at_mut(s->reg, c->members[i].worker);
        w->cluster = NIL;
        if (!c->members[i].lost)
            notice(s, c, w, false);
        reservation *r = resv_of(s, w);
        if (r) { /* back to the reservation it was carved out of */
            w->alloc = WORKER_RESERVED;
            resv_emit(s, r, "reservation.member_returned", w, "its cluster ended");
            continue;
        }
        w->alloc = WORKER_FREE;
        verifier_worker_freed(s->ver, w, now);
        /* Back in the index if it can serve (or to a reservation short of
         * workers); failure to file it (out of memory) only hides it from
         * matching until its next change. */
        refresh(s, w, now);
    }
    c->vacant_at = 0;
    cluster_record(c, now, NIL, cluster_state_name(to), reason);
    char topic[32];
    snprintf(topic, sizeof(topic), "cluster.%s", cluster_state_name(to));
    emit(s, c, topic, NULL, reason);
}

/* --- what the registry tells us ------------------------------------------------------- */

/* A seat stopped being served (its member is marked lost or vacated by the
 * caller). The state changes before any event goes out, so every event
 * carries the state after the change. */
static void seat_lost(sched *s, cluster *c, uint64_t now, const worker *w, const char *what,
                      const char *reason, const char *degrade_why)
{
    cluster_record(c, now, w->slot, what, reason);
    bool degrades = c->state == CLUSTER_READY;
    if (degrades) {
        c->state = CLUSTER_DEGRADED;
        cluster_record(c, now, NIL, "degraded", degrade_why);
    }
    emit(s, c, "cluster.member_lost", w, reason);
    if (degrades)
        emit(s, c, "cluster.degraded", w, degrade_why);
}

static void recompute_price(sched *s, cluster *c);

static void exclude(cluster *c, uint32_t worker_slot)
{
    for (uint32_t i = 0; i < c->n_excluded && i < CLUSTER_EXCLUDED; i++)
        if (c->excluded[i] == worker_slot)
            return;
    c->excluded[c->n_excluded % CLUSTER_EXCLUDED] = worker_slot;
    c->n_excluded++;
}

static bool excluded(const cluster *c, uint32_t worker_slot)
{
    for (uint32_t i = 0; i < c->n_excluded && i < CLUSTER_EXCLUDED; i++)
        if (c->excluded[i] == worker_slot)
            return true;
    return false;
}

/* A member stops serving for good (offline past its grace, failed
 * verification, no longer what the request asked for): its seat is
 * vacated, the worker freed and never seated in this cluster again, and a
 * replacement is looked for at once. tell: the worker is still reachable
 * and is told to leave. */
static void vacate(sched *s, cluster *c, cluster_member *m, worker *w, uint64_t now,
                   const char *what, const char *reason, const char *degrade_why, bool tell)
{
    m->worker = NIL;
    m->lost = 1;
    m->acked = 0;
    w->alloc = WORKER_FREE;
    w->cluster = NIL;
    /* A member of a reservation's cluster leaves the reservation too; the
     * reservation takes another from the pool, the cluster another from it. */
    reservation *r = resv_of(s, w);
    if (r)
        resv_lose(s, r, w, now, reason, false);
    exclude(c, w->slot);
    recompute_price(s, c); /* nobody is paid for an empty seat */
    if (!c->vacant_at)
        c->vacant_at = now ? now : 1;
    seat_lost(s, c, now, w, what, reason, degrade_why);
    if (tell)
        notice(s, c, w, false);
    verifier_worker_freed(s->ver, w, now);
    refresh(s, w, now);
    if (r)
        resv_fill(s, r, now);
    reroute(s, c, now);
}

/* A member that re-registered as something its cluster's request does not
 * accept (another model, a lower tier, a higher price), or whose GPUs are
 * no longer the ones verified, leaves its seat. */
static bool vacate_if_unfit(sched *s, worker *w, uint64_t now)
{
    cluster *c = cluster_table_at(s->clusters, w->cluster);
    cluster_member *m = c ? member_of(c, w->slot) : NULL;
    if (!m)
        return false;
    if (!match_worker_fits(&c->req, w))
        vacate(s, c, m, w, now, "left", "re-registered outside the request",
               "a member no longer fits the request", true);
    else if (w->vstate == VERIFY_PENDING)
        vacate(s, c, m, w, now, "left", "its GPUs are not the ones verified",
               "a member's GPUs changed", true);
    else
        return false;
    return true;
}

/* A reserved member that re-registered as something its reservation does
 * not accept, or whose GPUs are no longer the ones verified, leaves it. */
static void resv_lose_if_unfit(sched *s, worker *w, uint64_t now)
{
    reservation *r = resv_of(s, w);
    if (!r)
        return;
    if (!match_worker_fits(&r->req, w))
        resv_lose(s, r, w, now, "re-registered outside the request", true);
    else if (w->vstate == VERIFY_PENDING)
        resv_lose(s, r, w, now, "its GPUs are not the ones verified", true);
}

static void on_worker_state(void *arg, worker *w, worker_state from, worker_state to,
                            const char *reason)
{
    sched *s = arg;
    uint64_t now = w->last_seen > w->up.at ? w->last_seen : w->up.at;
    verifier_worker_changed(s->ver, w, now);
    if (w->alloc == WORKER_ALLOCATED && to == WORKER_ONLINE)
        vacate_if_unfit(s, w, now);
    if (w->alloc == WORKER_RESERVED && to == WORKER_OFFLINE)
        resv_lose(s, resv_of(s, w), w, now, reason, true);
    else if (w->alloc == WORKER_RESERVED)
        resv_lose_if_unfit(s, w, now);
    refresh(s, w, now);
    if (w->alloc == WORKER_ALLOCATED) {
        cluster *c = cluster_table_at(s->clusters, w->cluster);
        cluster_member *m = c ? member_of(c, w->slot) : NULL;
        if (m && to == WORKER_OFFLINE && !m->lost) {
            vacate(s, c, m, w, now, "lost", reason, "a member went offline", false);
        } else if (m && to == WORKER_ONLINE && from == WORKER_OFFLINE && !m->lost) {
            /* Back within the grace after a restart: remind it of its cluster. */
            cluster_record(c, now, w->slot, "back", "reconnected after a broker restart");
            notice(s, c, w, true);
        } else if (m && to == WORKER_ONLINE && m->lost) {
            /* It kept its seat: welcome it back and remind it of its cluster. */
            m->lost = 0;
            m->acked = 0;
            cluster_record(c, now, w->slot, "back", reason);
            emit(s, c, "cluster.member_back", w, reason);
            notice(s, c, w, true);
        }
    }
    if (s->ops.worker_state)
        s->ops.worker_state(s->ops.arg, w, from, to, reason);
}

static void on_worker_updated(void *arg, worker *w)
{
    sched *s = arg;
    verifier_worker_changed(s->ver, w, w->last_seen);
    if (w->alloc == WORKER_ALLOCATED)
        vacate_if_unfit(s, w, w->last_seen);
    else if (w->alloc == WORKER_RESERVED)
        resv_lose_if_unfit(s, w, w->last_seen);
    refresh(s, w, w->last_seen);
}

/* --- verification ----------------------------------------------------------------------------- */

static void on_challenge(void *arg, const worker *w, uint64_t id, const pow_params *p,
                         uint32_t expected_ms)
{
    sched *s = arg;
    if (s->ops.challenge)
        s->ops.challenge(s->ops.arg, w, id, p, expected_ms);
}

static void on_spots(void *arg, const worker *w, uint64_t id, const uint32_t *idx, uint32_t n)
{
    sched *s = arg;
    if (s->ops.spots)
        s->ops.spots(s->ops.arg, w, id, idx, n);
}

static void on_verdict(void *arg, const worker *cw, const verify_result *r, verify_state from,
                       verify_state to)
{
    sched *s = arg;
    worker *w = registry_at_mut(s->reg, cw->slot);
    /* The shell hears the verdict before any cluster change it causes. */
    if (s->ops.verdict)
        s->ops.verdict(s->ops.arg, w, r, from, to);
    refresh(s, w, r->at);
    if (to == VERIFY_FAILED && w->alloc == WORKER_RESERVED) {
        char why[64];
        snprintf(why, sizeof(why), "failed verification (%s)",
                 verify_outcome_name((verify_outcome)r->outcome));
        resv_lose(s, resv_of(s, w), w, r->at, why, true);
    } else if (to == VERIFY_FAILED && w->alloc == WORKER_ALLOCATED) {
        cluster *c = cluster_table_at(s->clusters, w->cluster);
        cluster_member *m = c ? member_of(c, w->slot) : NULL;
        if (m) {
            char why[64];
            snprintf(why, sizeof(why), "failed verification (%s)",
                     verify_outcome_name((verify_outcome)r->outcome));
            vacate(s, c, m, w, r->at, "failed", why, "a member failed verification", true);
        }
    }
}

/* --- reroute ---------------------------------------------------------------------------------- */

/* A free worker for one seat of c: what the request accepts, not lost by
 * c before; from region `prefer` if the request allows it, else anywhere
 * the request allows. NIL when there is none. */
static bool resv_usable(const match_request *rq, const worker *w)
{
    return w->alloc == WORKER_RESERVED && w->state == WORKER_ONLINE && w->vstate == 1 &&
           w->uptime >= rq->min_uptime && match_worker_fits(rq, w);
}

static uint32_t find_replacement(sched *s, const cluster *c, uint8_t prefer)
{
    if (c->resv != NIL) { /* only from its reservation's free members */
        const reservation *r = resv_table_at(s->resvs, c->resv);
        if (!r || !resv_active(r))
            return NIL;
        for (uint32_t i = 0; i < r->n_members; i++) {
            const worker *w = registry_at(s->reg, r->members[i]);
            if (resv_usable(&c->req, w) && !excluded(c, w->slot))
                return w->slot;
        }
        return NIL;
    }
    /* Pack within the preferred region; then spread over every allowed
     * region, so that an excluded worker heading one region's ranking
     * cannot hide a free worker in another. */
    match_request rq = c->req;
    rq.min_workers = 1;
    rq.workers = 1 + (c->n_excluded < CLUSTER_EXCLUDED ? c->n_excluded : CLUSTER_EXCLUDED);
    uint32_t out[1 + CLUSTER_EXCLUDED];
    for (int pass = 0; pass < 2; pass++) {
        match_request r = rq;
        r.placement = pass == 0 ? PLACE_PACK : PLACE_SPREAD;
        if (pass == 0) {
            if (prefer >= 64 || (rq.regions && !(rq.regions & (1ull << prefer))))
                continue;
            r.regions = 1ull << prefer;
        }
        size_t n = match_find(s->ix, s->reg, &r, out);
        for (size_t i = 0; i < n; i++)
            if (!excluded(c, out[i]))
                return out[i];
    }
    return NIL;
}

/* The region of the member a vacant seat last had, to look there first. */
static uint8_t seat_region(sched *s, const cluster *c)
{
    if (!c->n_excluded)
        return REGION_UNKNOWN;
    const worker *w = registry_at(s->reg, c->excluded[(c->n_excluded - 1) % CLUSTER_EXCLUDED]);
    return w ? w->region_idx : REGION_UNKNOWN;
}

static void recompute_price(sched *s, cluster *c)
{
    uint64_t p = 0;
    for (uint32_t i = 0; i < c->n_members; i++) {
        const worker *w =
            c->members[i].worker == NIL ? NULL : registry_at(s->reg, c->members[i].worker);
        if (w)
            p += (uint64_t)w->price_uusd * w->gpu_count;
    }
    c->price_uusd_per_hour = p;
}

static void add_needy(sched *s, cluster *c, uint64_t now)
{
    for (size_t i = 0; i < s->n_needy; i++)
        if (s->needy[i] == c->slot)
            return;
    if (s->n_needy == s->needy_cap) {
        size_t ncap = s->needy_cap ? s->needy_cap * 2 : 16;
        uint32_t *nn = mu_realloc(s->needy, ncap * sizeof(*nn));
        if (!nn)
            return; /* out of memory: tried again on its next loss */
        s->needy = nn;
        s->needy_cap = ncap;
    }
    s->needy[s->n_needy++] = c->slot;
    if (s->n_needy == 1)
        s->retry_at = now + s->cfg.reroute_retry_ms;
}

/* Fill every vacant seat of an active cluster that can be filled now; the
 * cluster is ready again once the replacements acknowledge. What cannot be
 * filled is tried again every reroute_retry_ms. */
static void reroute(sched *s, cluster *c, uint64_t now)
{
    if (!cluster_active(c))
        return;
    bool vacant = false;
    for (uint32_t i = 0; i < c->n_members; i++) {
        cluster_member *m = &c->members[i];
        if (m->worker != NIL)
            continue;
        uint32_t slot = find_replacement(s, c, seat_region(s, c));
        if (slot == NIL) {
            vacant = true;
            continue;
        }
        worker *w = registry_at_mut(s->reg, slot);
        m->worker = slot;
        m->lost = 0;
        m->acked = 0;
        bool from_resv = w->alloc == WORKER_RESERVED;
        w->alloc = WORKER_ALLOCATED;
        w->cluster = c->slot;
        index_remove(s->ix, w);
        if (from_resv)
            resv_emit(s, resv_of(s, w), "reservation.member_in_use", w, "replaces a lost member");
        else
            verifier_worker_hired(s->ver, w, now);
        c->replaced++;
        recompute_price(s, c);
        char detail[64];
        snprintf(detail, sizeof(detail), "seat %u, after %.1f s", i,
                 (double)(now - (c->vacant_at ? c->vacant_at : now)) / 1000.0);
        cluster_record(c, now, slot, "replaced", detail);
        emit(s, c, "cluster.member_replaced", w, detail);
        notice(s, c, w, true);
    }
    if (vacant)
        add_needy(s, c, now);
    else
        c->vacant_at = 0;
}

static void retry_needy(sched *s, uint64_t now)
{
    size_t keep = 0;
    for (size_t i = 0; i < s->n_needy; i++) {
        cluster *c = cluster_table_at(s->clusters, s->needy[i]);
        if (!c || !cluster_active(c) || !c->vacant_at)
            continue;
        reroute(s, c, now);
        if (c->vacant_at)
            s->needy[keep++] = s->needy[i];
    }
    s->n_needy = keep; /* reroute adds nothing here: each c is still listed */
    s->retry_at = now + s->cfg.reroute_retry_ms;
}

/* --- reservations ------------------------------------------------------------------------------
 */

static reservation *resv_of(sched *s, const worker *w)
{
    reservation *r = w->resv == NIL ? NULL : resv_table_at(s->resvs, w->resv);
    return r && resv_active(r) ? r : NULL;
}

static void resv_emit(sched *s, reservation *r, const char *topic, const worker *w,
                      const char *detail)
{
    if (r && s->ops.reservation_event)
        s->ops.reservation_event(s->ops.arg, r, topic, w, detail);
}

/* Whether r, short of workers, would take the free worker w. */
static bool resv_accepts(const reservation *r, const worker *w)
{
    return resv_active(r) && r->n_members < r->req.workers && w->uptime >= r->req.min_uptime &&
           match_worker_fits(&r->req, w) && !resv_excluded(r, w->slot);
}

static void resv_take(sched *s, reservation *r, worker *w, uint64_t now, const char *why)
{
    r->members[r->n_members++] = w->slot;
    w->alloc = WORKER_RESERVED;
    w->resv = r->slot;
    w->cluster = NIL;
    index_remove(s->ix, w);
    verifier_worker_hired(s->ver, w, now);
    if (r->n_members >= r->req.workers)
        r->short_at = 0;
    if (why) {
        r->replaced++;
        resv_emit(s, r, "reservation.member_added", w, why);
    }
}

static void add_rneedy(sched *s, reservation *r, uint64_t now)
{
    for (size_t i = 0; i < s->n_rneedy; i++)
        if (s->rneedy[i] == r->slot)
            return;
    if (s->n_rneedy == s->rneedy_cap) {
        size_t ncap = s->rneedy_cap ? s->rneedy_cap * 2 : 8;
        uint32_t *nn = mu_realloc(s->rneedy, ncap * sizeof(*nn));
        if (!nn)
            return; /* out of memory: tried again on its next loss */
        s->rneedy = nn;
        s->rneedy_cap = ncap;
    }
    s->rneedy[s->n_rneedy++] = r->slot;
    if (s->n_rneedy == 1 && !s->n_needy)
        s->retry_at = now + s->cfg.reroute_retry_ms;
}

/* Take free workers for r until it holds what it wants or none fit. */
static void resv_fill(sched *s, reservation *r, uint64_t now)
{
    if (!resv_active(r))
        return;
    if (r->n_members < r->req.workers) {
        uint32_t extra = r->n_excluded < CLUSTER_EXCLUDED ? r->n_excluded : CLUSTER_EXCLUDED;
        match_request rq = r->req;
        rq.workers = r->req.workers - r->n_members + extra;
        rq.min_workers = 1;
        rq.placement = PLACE_SPREAD; /* anywhere the request allows */
        uint32_t *out = mu_calloc(rq.workers, sizeof(*out));
        size_t n = out ? match_find(s->ix, s->reg, &rq, out) : 0;
        for (size_t i = 0; i < n && r->n_members < r->req.workers; i++)
            if (!resv_excluded(r, out[i]))
                resv_take(s, r, registry_at_mut(s->reg, out[i]), now, "taken from the free pool");
        mu_free(out);
    }
    if (r->n_members < r->req.workers) {
        if (!r->short_at)
            r->short_at = now ? now : 1;
        add_rneedy(s, r, now);
    } else {
        r->short_at = 0;
    }
}

/* w leaves r for good (offline, failed verification, no longer fits): it
 * is never taken by r again, freed if it was only reserved (a member in use
 * is freed by its cluster), and r looks for another when fill is set. */
static void resv_lose(sched *s, reservation *r, worker *w, uint64_t now, const char *reason,
                      bool fill)
{
    if (!r)
        return;
    long i = resv_member_index(r, w->slot);
    if (i >= 0) {
        memmove(&r->members[i], &r->members[i + 1],
                (r->n_members - (size_t)i - 1) * sizeof(*r->members));
        r->n_members--;
    }
    w->resv = NIL;
    resv_exclude(r, w->slot);
    if (!r->short_at)
        r->short_at = now ? now : 1;
    resv_emit(s, r, "reservation.member_lost", w, reason);
    if (w->alloc == WORKER_RESERVED) {
        w->alloc = WORKER_FREE;
        verifier_worker_freed(s->ver, w, now);
        refresh(s, w, now);
    }
    if (fill)
        resv_fill(s, r, now);
    else
        add_rneedy(s, r, now);
}

/* A worker may have become free or eligible: a reservation short of
 * workers takes it before it goes back to the index for self-service. */
static void refresh(sched *s, worker *w, uint64_t now)
{
    if (w->alloc == WORKER_FREE && s->n_rneedy && index_eligible(w)) {
        for (size_t i = 0; i < s->n_rneedy; i++) {
            reservation *r = resv_table_at(s->resvs, s->rneedy[i]);
            if (r && resv_accepts(r, w)) {
                resv_take(s, r, w, now, "taken as it became free");
                return;
            }
        }
    }
    index_refresh(s->ix, w);
}

static void retry_rneedy(sched *s, uint64_t now)
{
    size_t keep = 0;
    for (size_t i = 0; i < s->n_rneedy; i++) {
        reservation *r = resv_table_at(s->resvs, s->rneedy[i]);
        if (!r || !resv_active(r) || r->n_members >= r->req.workers)
            continue;
        resv_fill(s, r, now);
        if (r->n_members < r->req.workers)
            s->rneedy[keep++] = s->rneedy[i];
    }
    s->n_rneedy = keep; /* resv_fill adds nothing here: each r is still listed */
    s->retry_at = now + s->cfg.reroute_retry_ms;
}

/* End an active reservation: free members go back to the pool at once,
 * members in use stay with their clusters until those end. */
static void resv_end(sched *s, reservation *r, resv_state to, uint64_t now, const char *reason)
{
    r->state = to;
    r->ended_at = now;
    r->short_at = 0;
    snprintf(r->end_reason, sizeof(r->end_reason), "%s", reason);
    uint32_t n = r->n_members;
    r->n_members = 0;
    for (uint32_t i = 0; i < n; i++) {
        worker *w = registry_at_mut(s->reg, r->members[i]);
        w->resv = NIL;
        if (w->alloc == WORKER_RESERVED) {
            w->alloc = WORKER_FREE;
            verifier_worker_freed(s->ver, w, now);
            refresh(s, w, now);
        }
    }
    char topic[32];
    snprintf(topic, sizeof(topic), "reservation.%s", resv_state_name(to));
    resv_emit(s, r, topic, NULL, reason);
}

/* --- lifecycle ----------------------------------------------------------------------------- */

sched *sched_create(const sched_config *cfg, const sched_ops *ops, mu_error *errp)
{
    sched *s = mu_calloc(1, sizeof(*s));
    if (!s)
        return errprintf(errp, "out of memory"), NULL;
    s->cfg = *cfg;
    if (!s->cfg.provision_timeout_ms)
        s->cfg.provision_timeout_ms = SCHED_PROVISION_TIMEOUT_DEFAULT_MS;
    if (!s->cfg.max_hours)
        s->cfg.max_hours = SCHED_MAX_HOURS_DEFAULT;
    if (!s->cfg.reroute_retry_ms)
        s->cfg.reroute_retry_ms = SCHED_REROUTE_RETRY_DEFAULT_MS;
    if (ops)
        s->ops = *ops;
    registry_observer obs = {on_worker_state, on_worker_updated, s};
    if (!(s->reg = registry_create(&cfg->reg, &obs, errp)))
        goto error;
    verify_ops vops = {on_challenge, on_spots, on_verdict, s};
    if (!(s->ver = verifier_create(&cfg->verify, s->reg, &vops, errp)))
        goto error;
    if (!(s->ix = index_create(s->reg, catalog_count(cfg->reg.cat), errp)))
        goto error;
    if (!(s->clusters = cluster_table_create()) || !(s->resvs = resv_table_create())) {
        errprintf(errp, "out of memory");
        goto error;
    }
    return s;
error:
    sched_destroy(s);
    return NULL;
}

void sched_destroy(sched *s)
{
    if (!s)
        return;
    cluster_table_destroy(s->clusters);
    resv_table_destroy(s->resvs);
    mu_free(s->rneedy);
    verifier_destroy(s->ver);
    mu_free(s->needy);
    index_destroy(s->ix);
    registry_destroy(s->reg);
    mu_free(s);
}

registry *sched_registry(sched *s)
{
    return s->reg;
}

const registry *sched_registry_const(const sched *s)
{
    return s->reg;
}

const windex *sched_index(const sched *s)
{
    return s->ix;
}

const worker *sched_register(sched *s, const worker_spec *spec, uint64_t now, mu_error *errp)
{
    return registry_register(s->reg, spec, now, errp);
}

int sched_touch(sched *s, const mu_id *id, uint64_t now)
{
    return registry_touch(s->reg, id, now);
}

void sched_prefetch(const sched *s, const mu_id *id, uint32_t slot_hint, prefetch_for what,
                    int stage)
{
    registry_prefetch(s->reg, id, slot_hint, what, stage);
    index_prefetch(s->ix, slot_hint, stage);
}

int sched_goodbye(sched *s, const mu_id *id, uint64_t now, const char *reason)
{
    return registry_goodbye(s->reg, id, now, reason);
}

int sched_disconnected(sched *s, const mu_id *id, uint64_t now)
{
    return registry_disconnected(s->reg, id, now);
}

int sched_verify_commit(sched *s, const mu_id *id, uint64_t challenge_id,
                        const uint8_t root[POW_HASH_BYTES], uint64_t now, mu_error *errp)
{
    const worker *w = registry_get(s->reg, id);
    if (!w) {
        errno = ENOENT;
        return errprintf(errp, "unknown worker");
    }
    return verifier_commit(s->ver, w, challenge_id, root, now, errp);
}

int sched_verify_proofs(sched *s, const mu_id *id, uint64_t challenge_id, const uint8_t *leaves,
                        size_t leaves_len, const uint8_t *paths, size_t paths_len, uint64_t now,
                        mu_error *errp)
{
    const worker *w = registry_get(s->reg, id);
    if (!w) {
        errno = ENOENT;
        return errprintf(errp, "unknown worker");
    }
    return verifier_proofs(s->ver, w, challenge_id, leaves, leaves_len, paths, paths_len, now,
                           errp);
}

const verifier *sched_verifier(const sched *s)
{
    return s->ver;
}

/* The grace after a restore is over: members still offline are lost. */
static void end_grace(sched *s, uint64_t now)
{
    s->grace_until = 0;
    for (size_t k = 0; k < cluster_table_count(s->clusters); k++) {
        cluster *c = cluster_table_at(s->clusters, k);
        if (!cluster_active(c))
            continue;
        for (uint32_t i = 0; i < c->n_members; i++) {
            cluster_member *m = &c->members[i];
            const worker *w = m->worker == NIL ? NULL : registry_at(s->reg, m->worker);
            if (!w || w->state != WORKER_OFFLINE)
                continue;
            vacate(s, c, m, registry_at_mut(s->reg, m->worker), now, "lost",
                   "not back after the broker restarted",
                   "a member did not come back after the broker restarted", false);
        }
        reroute(s, c, now); /* seats vacant since before the restart too */
    }
    for (size_t k = 0; k < resv_table_count(s->resvs); k++) {
        reservation *r = resv_table_at(s->resvs, k);
        for (uint32_t i = 0; resv_active(r) && i < r->n_members;) {
            worker *w = registry_at_mut(s->reg, r->members[i]);
            if (w->alloc == WORKER_RESERVED && w->state == WORKER_OFFLINE)
                resv_lose(s, r, w, now, "not back after the broker restarted", false);
            else
                i++;
        }
        resv_fill(s, r, now);
    }
}

void sched_tick(sched *s, uint64_t now)
{
    registry_tick(s->reg, now);
    if (s->grace_until && now >= s->grace_until)
        end_grace(s, now);
    verifier_tick(s->ver, now);
    if ((s->n_needy || s->n_rneedy) && now >= s->retry_at) {
        retry_rneedy(s, now); /* reservations first: they have priority */
        retry_needy(s, now);
    }
    for (size_t k = 0; k < resv_table_count(s->resvs); k++) {
        reservation *r = resv_table_at(s->resvs, k);
        if (resv_active(r) && r->ends_at <= now)
            resv_end(s, r, RESV_EXPIRED, now, "its commitment ended");
    }
    cluster *c;
    while ((c = cluster_table_next_due(s->clusters)) && cluster_deadline(c) <= now) {
        if (c->state == CLUSTER_PROVISIONING && c->provision_deadline <= now &&
            c->provision_deadline < c->ends_at) {
            uint32_t missing = 0;
            for (uint32_t i = 0; i < c->n_members; i++)
                missing += !c->members[i].acked;
            char why[96];
            snprintf(why, sizeof(why), "%u of %u members did not acknowledge within %u s", missing,
                     c->n_members, s->cfg.provision_timeout_ms / 1000);
            end_cluster(s, c, CLUSTER_FAILED, now, why);
        } else {
            end_cluster(s, c, CLUSTER_EXPIRED, now, "its time ran out");
        }
    }
}

uint64_t sched_next_deadline(const sched *s)
{
    uint64_t t = registry_next_deadline(s->reg);
    if (s->grace_until && s->grace_until < t)
        t = s->grace_until;
    uint64_t v = verifier_next_deadline(s->ver);
    if (v < t)
        t = v;
    if ((s->n_needy || s->n_rneedy) && s->retry_at < t)
        t = s->retry_at;
    for (size_t k = 0; k < resv_table_count(s->resvs); k++) {
        const reservation *r = resv_table_at(s->resvs, k);
        if (resv_active(r) && r->ends_at < t)
            t = r->ends_at;
    }
    const cluster *c = cluster_table_next_due(s->clusters);
    if (c && cluster_deadline(c) < t)
        t = cluster_deadline(c);
    return t;
}

/* --- clusters --------------------------------------------------------------------------------- */

static int check_hours(const sched *s, uint32_t hours, mu_error *errp)
{
    if (hours < 1 || hours > s->cfg.max_hours)
        return errprintf(errp, "duration must be 1..%u hours", s->cfg.max_hours);
    return 0;
}

int sched_quote_request(sched *s, const match_request *rq, uint32_t hours, sched_quote *q,
                        match_explain *why, mu_error *errp)
{
    if (match_validate(rq, registry_catalog(s->reg), errp) < 0 || check_hours(s, hours, errp) < 0) {
        errno = EINVAL;
        return -1;
    }
    uint32_t *out = mu_calloc(rq->workers, sizeof(uint32_t));
    if (!out) {
        errno = ENOMEM;
        return errprintf(errp, "out of memory");
    }
    size_t n = match_find(s->ix, s->reg, rq, out);
    if (!n) {
        mu_free(out);
        if (why)
            match_explain_failure(s->ix, s->reg, rq, why);
        errno = ENOSPC;
        return -1;
    }
    memset(q, 0, sizeof(*q));
    q->workers = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        const worker *w = registry_at(s->reg, out[i]);
        q->gpus += w->gpu_count;
        q->per_hour_uusd += (uint64_t)w->price_uusd * w->gpu_count;
    }
    q->total_uusd = q->per_hour_uusd * hours;
    mu_free(out);
    return 0;
}

/* Check a request to create a cluster or a reservation, and match it:
 * the matched worker slots in *out (the caller frees it), and how many;
 * 0 with nothing allocated and errno EINVAL (a bad request), ENOMEM, or
 * ENOSPC (why says what ran out). */
static size_t match_for_create(sched *s, const match_request *rq, uint32_t hours,
                               match_explain *why, uint32_t **out, mu_error *errp)
{
    *out = NULL;
    if (match_validate(rq, registry_catalog(s->reg), errp) < 0 || check_hours(s, hours, errp) < 0) {
        errno = EINVAL;
        return 0;
    }
    if (!(*out = mu_calloc(rq->workers, sizeof(uint32_t)))) {
        errno = ENOMEM;
        errprintf(errp, "out of memory");
        return 0;
    }
    size_t n = match_find(s->ix, s->reg, rq, *out);
    if (!n) {
        int e = errno == ENOMEM ? ENOMEM : ENOSPC;
        mu_free(*out);
        *out = NULL;
        if (e == ENOMEM)
            errprintf(errp, "out of memory");
        else if (why)
            match_explain_failure(s->ix, s->reg, rq, why);
        errno = e;
    }
    return n;
}

const cluster *sched_cluster_create(sched *s, const mu_id *id, const char *owner,
                                    const match_request *rq, uint32_t hours, uint64_t now,
                                    match_explain *why, mu_error *errp)
{
    if (cluster_table_get(s->clusters, id)) {
        errno = EEXIST;
        return errprintf(errp, "a cluster with this id exists"), NULL;
    }
    uint32_t *out;
    size_t n = match_for_create(s, rq, hours, why, &out, errp);
    if (!n)
        return NULL;
    cluster_member *members = mu_calloc(rq->workers, sizeof(cluster_member));
    cluster *c = members ? cluster_table_add(s->clusters, id) : NULL;
    if (!c) {
        mu_free(out);
        mu_free(members);
        errno = ENOMEM;
        return errprintf(errp, "out of memory"), NULL;
    }
    /* From here nothing can fail. */
    snprintf(c->owner, sizeof(c->owner), "%s", owner && *owner ? owner : "anonymous");
    c->req = *rq;
    c->state = CLUSTER_PROVISIONING;
    c->members = members;
    c->n_members = (uint32_t)n;
    c->hours = hours;
    c->created_at = now;
    c->ends_at = now + (uint64_t)hours * 3600000u;
    c->provision_deadline = now + s->cfg.provision_timeout_ms;
    for (size_t i = 0; i < n; i++) {
        worker *w = registry_at_mut(s->reg, out[i]);
        members[i].worker = out[i];
        w->alloc = WORKER_ALLOCATED;
        w->cluster = c->slot;
        index_remove(s->ix, w);
        verifier_worker_hired(s->ver, w, now);
        c->price_uusd_per_hour += (uint64_t)w->price_uusd * w->gpu_count;
    }
    mu_free(out);
    cluster_table_schedule(s->clusters, c);
    char detail[96];
    snprintf(detail, sizeof(detail), "%u members, %u hours", c->n_members, hours);
    cluster_record(c, now, NIL, "created", detail);
    emit(s, c, "cluster.created", NULL, detail);
    for (uint32_t i = 0; i < c->n_members; i++)
        notice(s, c, registry_at(s->reg, c->members[i].worker), true);
    return c;
}

static reservation *active_resv(sched *s, const mu_id *id, mu_error *errp)
{
    reservation *r = resv_table_get(s->resvs, id);
    if (!r) {
        errno = ENOENT;
        return errprintf(errp, "no such reservation"), NULL;
    }
    if (!resv_active(r)) {
        errno = ESTALE;
        return errprintf(errp, "the reservation has ended (%s)", resv_state_name(r->state)), NULL;
    }
    return r;
}

const cluster *sched_cluster_create_from(sched *s, const mu_id *id, const char *owner,
                                         const match_request *rq, uint32_t hours,
                                         const mu_id *resv_id, uint64_t now, match_explain *why,
                                         mu_error *errp)
{
    if (match_validate(rq, registry_catalog(s->reg), errp) < 0 || check_hours(s, hours, errp) < 0) {
        errno = EINVAL;
        return NULL;
    }
    reservation *r = active_resv(s, resv_id, errp);
    if (!r)
        return NULL;
    if (now + (uint64_t)hours * 3600000u > r->ends_at) {
        errno = EINVAL;
        return errprintf(errp, "the reservation ends in %.1f hours: the cluster may not outlast it",
                         (double)(r->ends_at > now ? r->ends_at - now : 0) / 3600000.0),
               NULL;
    }
    if (cluster_table_get(s->clusters, id)) {
        errno = EEXIST;
        return errprintf(errp, "a cluster with this id exists"), NULL;
    }
    cluster_member *members = mu_calloc(rq->workers, sizeof(cluster_member));
    if (!members) {
        errno = ENOMEM;
        return errprintf(errp, "out of memory"), NULL;
    }
    uint32_t n = 0, free_n = 0;
    for (uint32_t i = 0; i < r->n_members && n < rq->workers; i++) {
        const worker *w = registry_at(s->reg, r->members[i]);
        free_n += w->alloc == WORKER_RESERVED;
        if (resv_usable(rq, w))
            members[n++].worker = w->slot;
    }
    if (n < rq->min_workers) {
        mu_free(members);
        if (why) {
            memset(why, 0, sizeof(*why));
            why->available = n;
            snprintf(why->constraint, sizeof(why->constraint), "reservation");
            snprintf(why->text, sizeof(why->text),
                     "%u of %u workers: the reservation has %u free members, %u of them fit "
                     "the request",
                     n, rq->min_workers, free_n, n);
        }
        errno = ENOSPC;
        return NULL;
    }
    cluster *c = cluster_table_add(s->clusters, id);
    if (!c) {
        int e = errno;
        mu_free(members);
        errno = e;
        return errprintf(errp, "out of memory"), NULL;
    }
    /* From here nothing can fail. */
    snprintf(c->owner, sizeof(c->owner), "%s", owner && *owner ? owner : "anonymous");
    c->req = *rq;
    c->state = CLUSTER_PROVISIONING;
    c->members = members;
    c->n_members = n;
    c->hours = hours;
    c->created_at = now;
    c->ends_at = now + (uint64_t)hours * 3600000u;
    c->provision_deadline = now + s->cfg.provision_timeout_ms;
    c->resv = r->slot;
    for (uint32_t i = 0; i < n; i++) {
        worker *w = registry_at_mut(s->reg, members[i].worker);
        w->alloc = WORKER_ALLOCATED;
        w->cluster = c->slot;
        c->price_uusd_per_hour += (uint64_t)w->price_uusd * w->gpu_count;
    }
    cluster_table_schedule(s->clusters, c);
    char detail[96];
    snprintf(detail, sizeof(detail), "%u members, %u hours, from a reservation", c->n_members,
             hours);
    cluster_record(c, now, NIL, "created", detail);
    emit(s, c, "cluster.created", NULL, detail);
    for (uint32_t i = 0; i < n; i++) {
        const worker *w = registry_at(s->reg, members[i].worker);
        resv_emit(s, r, "reservation.member_in_use", w, "taken by a cluster");
        notice(s, c, w, true);
    }
    return c;
}

const reservation *sched_reservation_create(sched *s, const mu_id *id, const char *owner,
                                            const match_request *rq, uint32_t hours, uint64_t now,
                                            match_explain *why, mu_error *errp)
{
    if (resv_table_get(s->resvs, id)) {
        errno = EEXIST;
        return errprintf(errp, "a reservation with this id exists"), NULL;
    }
    uint32_t *out;
    size_t n = match_for_create(s, rq, hours, why, &out, errp);
    if (!n)
        return NULL;
    uint32_t *members = mu_calloc(rq->workers, sizeof(uint32_t));
    reservation *r = members ? resv_table_add(s->resvs, id) : NULL;
    if (!r) {
        mu_free(out);
        mu_free(members);
        errno = ENOMEM;
        return errprintf(errp, "out of memory"), NULL;
    }
    /* From here nothing can fail. */
    snprintf(r->owner, sizeof(r->owner), "%s", owner && *owner ? owner : "anonymous");
    r->req = *rq;
    r->state = RESV_ACTIVE;
    r->members = members;
    r->hours = hours;
    r->created_at = now;
    r->ends_at = now + (uint64_t)hours * 3600000u;
    for (size_t i = 0; i < n; i++) {
        worker *w = registry_at_mut(s->reg, out[i]);
        resv_take(s, r, w, now, NULL);
        r->list_uusd_per_hour += (uint64_t)w->price_uusd * w->gpu_count;
    }
    mu_free(out);
    r->discount_pct = pricing_commitment_discount_pct(hours);
    r->price_uusd_per_hour = pricing_commitment_uusd(r->list_uusd_per_hour, hours);
    char detail[96];
    snprintf(detail, sizeof(detail), "%u of %u workers, %u hours, %u%% off", r->n_members,
             rq->workers, hours, r->discount_pct);
    resv_emit(s, r, "reservation.created", NULL, detail);
    if (r->n_members < r->req.workers) {
        r->short_at = now ? now : 1;
        add_rneedy(s, r, now);
    }
    return r;
}

int sched_reservation_extend(sched *s, const mu_id *id, uint32_t hours, uint64_t now,
                             mu_error *errp)
{
    (void)now;
    reservation *r = active_resv(s, id, errp);
    if (!r)
        return -1;
    if (hours < 1 || r->hours + (uint64_t)hours > s->cfg.max_hours) {
        errno = EINVAL;
        return errprintf(errp, "a reservation may last at most %u hours (it has %u)",
                         s->cfg.max_hours, r->hours);
    }
    r->hours += hours;
    r->ends_at += (uint64_t)hours * 3600000u;
    char detail[64];
    snprintf(detail, sizeof(detail), "+%u hours, %u in all", hours, r->hours);
    resv_emit(s, r, "reservation.extended", NULL, detail);
    return 0;
}

int sched_reservation_release(sched *s, const mu_id *id, uint64_t now, const char *reason,
                              mu_error *errp)
{
    reservation *r = active_resv(s, id, errp);
    if (!r)
        return -1;
    resv_end(s, r, RESV_RELEASED, now, reason && *reason ? reason : "released by its owner");
    return 0;
}

const reservation *sched_reservation_get(const sched *s, const mu_id *id)
{
    return resv_table_get(s->resvs, id);
}

const reservation *sched_reservation_find(const sched *s, const char *prefix)
{
    return resv_table_find(s->resvs, prefix);
}

size_t sched_reservation_count(const sched *s)
{
    return resv_table_count(s->resvs);
}

const reservation *sched_reservation_at(const sched *s, size_t slot)
{
    return resv_table_at(s->resvs, slot);
}

uint32_t sched_reservation_in_use(const sched *s, const reservation *r)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_members; i++)
        n += registry_at(s->reg, r->members[i])->alloc == WORKER_ALLOCATED;
    return n;
}

static cluster *active_cluster(sched *s, const mu_id *id, mu_error *errp)
{
    cluster *c = cluster_table_get(s->clusters, id);
    if (!c) {
        errno = ENOENT;
        return errprintf(errp, "no such cluster"), NULL;
    }
    if (!cluster_active(c)) {
        errno = ESTALE;
        return errprintf(errp, "the cluster has ended (%s)", cluster_state_name(c->state)), NULL;
    }
    return c;
}

int sched_cluster_ack(sched *s, const mu_id *cluster_id, const mu_id *worker_id, uint64_t now,
                      mu_error *errp)
{
    cluster *c = cluster_table_get(s->clusters, cluster_id);
    const worker *w = registry_get(s->reg, worker_id);
    if (!c || !w) {
        errno = ENOENT;
        return errprintf(errp, "no such cluster or worker");
    }
    if (!cluster_active(c))
        return 0; /* a late acknowledgement of an ended cluster: nothing to do */
    cluster_member *m = member_of(c, w->slot);
    if (!m || w->cluster != c->slot) {
        errno = EPERM;
        return errprintf(errp, "this worker is not a member of this cluster");
    }
    if (!m->acked) {
        m->acked = 1;
        cluster_record(c, now, w->slot, "joined", "acknowledged");
        emit(s, c, "cluster.member_joined", w, "acknowledged");
    }
    maybe_ready(s, c, now);
    return 0;
}

int sched_cluster_extend(sched *s, const mu_id *cluster_id, uint32_t hours, uint64_t now,
                         mu_error *errp)
{
    cluster *c = active_cluster(s, cluster_id, errp);
    if (!c)
        return -1;
    if (hours < 1 || c->hours + (uint64_t)hours > s->cfg.max_hours) {
        errno = EINVAL;
        return errprintf(errp, "a cluster may last at most %u hours (it has %u)", s->cfg.max_hours,
                         c->hours);
    }
    const reservation *r = c->resv == NIL ? NULL : resv_table_at(s->resvs, c->resv);
    if (r && resv_active(r) && c->ends_at + (uint64_t)hours * 3600000u > r->ends_at) {
        errno = EINVAL;
        return errprintf(errp, "the cluster may not outlast its reservation (extend that first)");
    }
    c->hours += hours;
    c->ends_at += (uint64_t)hours * 3600000u;
    cluster_table_schedule(s->clusters, c);
    char detail[64];
    snprintf(detail, sizeof(detail), "+%u hours, %u in all", hours, c->hours);
    cluster_record(c, now, NIL, "extended", detail);
    emit(s, c, "cluster.extended", NULL, detail);
    return 0;
}

int sched_cluster_shrink(sched *s, const mu_id *cluster_id, uint64_t now, uint32_t *dropped,
                         mu_error *errp)
{
    cluster *c = active_cluster(s, cluster_id, errp);
    if (!c)
        return -1;
    uint32_t keep = 0;
    for (uint32_t i = 0; i < c->n_members; i++)
        keep += !c->members[i].lost;
    if (keep == c->n_members) {
        errno = EINVAL;
        return errprintf(errp, "every seat is served: nothing to shrink");
    }
    if (keep == 0) {
        errno = EINVAL;
        return errprintf(errp, "no member would remain: release the cluster instead");
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < c->n_members; i++) {
        cluster_member m = c->members[i];
        if (!m.lost) {
            c->members[k++] = m;
            continue;
        }
        if (m.worker != NIL) { /* offline but seated (after a restart) */
            worker *w = registry_at_mut(s->reg, m.worker);
            w->alloc = WORKER_FREE;
            w->cluster = NIL;
            exclude(c, w->slot);
            reservation *r = resv_of(s, w);
            if (r)
                resv_lose(s, r, w, now, "given up by its cluster while offline", true);
            verifier_worker_freed(s->ver, w, now);
            refresh(s, w, now);
        }
    }
    uint32_t gone = c->n_members - k;
    c->n_members = k;
    c->req.workers = k;
    if (c->req.min_workers > k)
        c->req.min_workers = k;
    c->vacant_at = 0;
    recompute_price(s, c);
    if (dropped)
        *dropped = gone;
    char detail[64];
    snprintf(detail, sizeof(detail), "%u seats given up, %u members", gone, k);
    cluster_record(c, now, NIL, "shrunk", detail);
    emit(s, c, "cluster.shrunk", NULL, detail);
    maybe_ready(s, c, now);
    return 0;
}

int sched_cluster_release(sched *s, const mu_id *cluster_id, uint64_t now, const char *reason,
                          mu_error *errp)
{
    cluster *c = active_cluster(s, cluster_id, errp);
    if (!c)
        return -1;
    end_cluster(s, c, CLUSTER_RELEASED, now, reason && *reason ? reason : "released by its owner");
    return 0;
}

const cluster *sched_cluster_get(const sched *s, const mu_id *id)
{
    return cluster_table_get(s->clusters, id);
}

const cluster *sched_cluster_find(const sched *s, const char *prefix)
{
    return cluster_table_find(s->clusters, prefix);
}

size_t sched_cluster_count(const sched *s)
{
    return cluster_table_count(s->clusters);
}

const cluster *sched_cluster_at(const sched *s, size_t slot)
{
    return cluster_table_at(s->clusters, slot);
}

size_t sched_clusters_active(const sched *s)
{
    return cluster_table_active_count(s->clusters);
}

/* --- recovery -------------------------------------------------------------------------------- */

const worker *sched_restore_worker(sched *s, const worker_spec *spec, uint64_t registered_at,
                                   const uptime *up, mu_error *errp)
{
    const worker *w = registry_restore(s->reg, spec, registered_at, up, errp);
    if (w)
        verifier_worker_changed(s->ver, w, registered_at);
    return w;
}

int sched_restore_verification(sched *s, const worker *w, verify_state st,
                               const verify_result *hist, size_t n, uint32_t checks, mu_error *errp)
{
    return verifier_restore(s->ver, w, st, hist, n, checks, errp);
}

const cluster *sched_restore_cluster(sched *s, const cluster_restore *cr, mu_error *errp)
{
    if (match_validate(&cr->req, registry_catalog(s->reg), errp) < 0)
        return errprefix(errp, "saved request"), NULL;
    if (cr->state < CLUSTER_PROVISIONING || cr->state > CLUSTER_FAILED)
        return errprintf(errp, "saved cluster has no valid state"), NULL;
    if (cr->n_seats == 0 || cr->n_seats > MATCH_MAX_WORKERS)
        return errprintf(errp, "saved cluster has %zu seats", cr->n_seats), NULL;
    bool active = cr->state == CLUSTER_PROVISIONING || cr->state == CLUSTER_READY ||
                  cr->state == CLUSTER_DEGRADED;
    const reservation *from = NULL;
    if (cr->resv && !(from = resv_table_get(s->resvs, cr->resv)))
        return errprintf(errp, "saved cluster names a reservation that was not saved"), NULL;
    if (from && !resv_active(from))
        from = NULL; /* its members were handed to the cluster for good */
    /* Check every seat before changing anything. */
    for (size_t i = 0; i < cr->n_seats; i++) {
        if (id_is_null(&cr->seats[i].worker))
            continue;
        const worker *w = registry_get(s->reg, &cr->seats[i].worker);
        if (!w)
            return errprintf(errp, "saved cluster names a worker that was not saved"), NULL;
        if (active && w->alloc == WORKER_ALLOCATED)
            return errprintf(errp, "a worker is a member of two active saved clusters"), NULL;
        if (active && w->alloc == WORKER_RESERVED && (!from || w->resv != from->slot))
            return errprintf(errp, "a cluster member is held by another reservation"), NULL;
        if (active && from && w->alloc != WORKER_RESERVED)
            return errprintf(errp, "a cluster member is not held by its reservation"), NULL;
    }
    cluster_member *members = mu_calloc(cr->n_seats, sizeof(*members));
    if (!members)
        return errprintf(errp, "out of memory"), NULL;
    cluster *c = cluster_table_add(s->clusters, &cr->id);
    if (!c) {
        mu_free(members);
        return errprintf(errp, errno == EEXIST ? "cluster saved twice" : "out of memory"), NULL;
    }
    snprintf(c->owner, sizeof(c->owner), "%s", cr->owner ? cr->owner : "");
    c->req = cr->req;
    c->state = cr->state;
    c->hours = cr->hours;
    c->created_at = cr->created_at;
    c->ready_at = cr->ready_at;
    c->ends_at = cr->ends_at;
    c->ended_at = cr->ended_at;
    c->provision_deadline = cr->provision_deadline;
    c->price_uusd_per_hour = cr->price_uusd_per_hour;
    snprintf(c->end_reason, sizeof(c->end_reason), "%s", cr->end_reason ? cr->end_reason : "");
    c->members = members;
    c->n_members = (uint32_t)cr->n_seats;
    if (cr->resv)
        c->resv = resv_table_get(s->resvs, cr->resv)->slot;
    for (size_t i = 0; i < cr->n_seats; i++) {
        const worker *cw =
            id_is_null(&cr->seats[i].worker) ? NULL : registry_get(s->reg, &cr->seats[i].worker);
        members[i].worker = cw ? cw->slot : NIL;
        members[i].acked = cr->seats[i].acked;
        members[i].lost = cr->seats[i].lost || !cw;
        if (cw && active) {
            worker *w = registry_at_mut(s->reg, cw->slot);
            w->alloc = WORKER_ALLOCATED;
            w->cluster = c->slot;
            index_remove(s->ix, w);
        }
    }
    size_t kept = cr->n_history < CLUSTER_HISTORY ? cr->n_history : CLUSTER_HISTORY;
    uint32_t total = cr->history_total >= kept ? cr->history_total : (uint32_t)kept;
    c->n_history = total - (uint32_t)kept;
    for (size_t i = cr->n_history - kept; i < cr->n_history; i++) {
        const cluster_change *ch = &cr->history[i];
        cluster_record(c, ch->at, ch->worker, ch->what, ch->reason);
    }
    c->n_history = total;
    for (size_t i = 0; i < cr->n_excluded; i++) {
        const worker *xw = registry_get(s->reg, &cr->excluded[i]);
        if (xw)
            exclude(c, xw->slot);
    }
    c->replaced = cr->replaced;
    for (uint32_t i = 0; i < c->n_members; i++)
        if (members[i].worker == NIL && active && !c->vacant_at)
            c->vacant_at = cr->created_at ? cr->created_at : 1;
    cluster_table_schedule(s->clusters, c);
    return c;
}

const reservation *sched_restore_reservation(sched *s, const resv_restore *rr, mu_error *errp)
{
    if (match_validate(&rr->req, registry_catalog(s->reg), errp) < 0)
        return errprefix(errp, "saved request"), NULL;
    if (rr->state < RESV_ACTIVE || rr->state > RESV_EXPIRED)
        return errprintf(errp, "saved reservation has no valid state"), NULL;
    bool active = rr->state == RESV_ACTIVE;
    if (active && rr->n_members > rr->req.workers)
        return errprintf(errp, "saved reservation has %zu members for %u wanted", rr->n_members,
                         rr->req.workers),
               NULL;
    for (size_t i = 0; active && i < rr->n_members; i++) {
        const worker *w = registry_get(s->reg, &rr->members[i]);
        if (!w)
            return errprintf(errp, "saved reservation names a worker that was not saved"), NULL;
        if (w->alloc != WORKER_FREE)
            return errprintf(errp, "a worker is held twice in the saved state"), NULL;
        for (size_t j = 0; j < i; j++)
            if (id_equal(&rr->members[j], &rr->members[i]))
                return errprintf(errp, "saved reservation lists a worker twice"), NULL;
    }
    uint32_t *members = mu_calloc(rr->req.workers ? rr->req.workers : 1, sizeof(uint32_t));
    if (!members)
        return errprintf(errp, "out of memory"), NULL;
    reservation *r = resv_table_add(s->resvs, &rr->id);
    if (!r) {
        mu_free(members);
        return errprintf(errp, errno == EEXIST ? "reservation saved twice" : "out of memory"), NULL;
    }
    snprintf(r->owner, sizeof(r->owner), "%s", rr->owner ? rr->owner : "");
    r->req = rr->req;
    r->state = rr->state;
    r->members = members;
    r->hours = rr->hours;
    r->created_at = rr->created_at;
    r->ends_at = rr->ends_at;
    r->ended_at = rr->ended_at;
    r->list_uusd_per_hour = rr->list_uusd_per_hour;
    r->price_uusd_per_hour = rr->price_uusd_per_hour;
    r->discount_pct = rr->discount_pct;
    r->replaced = rr->replaced;
    snprintf(r->end_reason, sizeof(r->end_reason), "%s", rr->end_reason ? rr->end_reason : "");
    for (size_t i = 0; active && i < rr->n_members; i++) {
        worker *w = registry_at_mut(s->reg, registry_get(s->reg, &rr->members[i])->slot);
        r->members[r->n_members++] = w->slot;
        w->alloc = WORKER_RESERVED;
        w->resv = r->slot;
        index_remove(s->ix, w);
    }
    for (size_t i = 0; i < rr->n_excluded; i++) {
        const worker *xw = registry_get(s->reg, &rr->excluded[i]);
        if (xw)
            resv_exclude(r, xw->slot);
    }
    if (active && r->n_members < r->req.workers) {
        r->short_at = rr->created_at ? rr->created_at : 1;
        add_rneedy(s, r, rr->created_at);
    }
    return r;
}

void sched_restore_finish(sched *s, uint64_t now, uint64_t grace_ms)
{
    s->grace_until = now + (grace_ms ? grace_ms : 1);
}

/* --- invariants --------------------------------------------------------------------------------
 */

/* A worker is held by a reservation (reserved, or allocated to one of its
 * clusters) iff it is a member of exactly that active reservation; members
 * fit the request; a reservation holds no more than it wants; members of a
 * cluster carved out of an active reservation belong to it. */
static int check_reservations(const sched *s, mu_error *errp)
{
    size_t held = 0, listed = 0;
    for (size_t i = 0; i < registry_count(s->reg); i++) {
        const worker *w = registry_at(s->reg, i);
        if (w->alloc == WORKER_RESERVED && w->resv == NIL)
            return errprintf(errp, "worker %zu is reserved by no reservation", i);
        if (w->alloc == WORKER_FREE && w->resv != NIL)
            return errprintf(errp, "worker %zu is free but held by a reservation", i);
        if (w->alloc == WORKER_RESERVED && w->state == WORKER_OFFLINE && !s->grace_until)
            return errprintf(errp, "worker %zu is reserved but offline", i);
        if (w->resv == NIL)
            continue;
        held++;
        const reservation *r = resv_table_at(s->resvs, w->resv);
        if (!r || !resv_active(r))
            return errprintf(errp, "worker %zu is held by no active reservation", i);
        if (resv_member_index(r, w->slot) < 0)
            return errprintf(errp, "worker %zu is held by a reservation it is not in", i);
        if (w->alloc == WORKER_ALLOCATED) {
            const cluster *c = cluster_table_at(s->clusters, w->cluster);
            if (!c || c->resv != w->resv)
                return errprintf(errp, "worker %zu of a reservation is in another cluster", i);
        }
    }
    for (size_t k = 0; k < resv_table_count(s->resvs); k++) {
        const reservation *r = resv_table_at(s->resvs, k);
        if (!resv_active(r)) {
            if (r->n_members)
                return errprintf(errp, "ended reservation %zu still holds workers", k);
            continue;
        }
        if (r->n_members > r->req.workers)
            return errprintf(errp, "reservation %zu holds %u of %u wanted", k, r->n_members,
                             r->req.workers);
        for (uint32_t i = 0; i < r->n_members; i++) {
            const worker *w = registry_at(s->reg, r->members[i]);
            if (!w || w->resv != r->slot)
                return errprintf(errp, "reservation %zu: member %u is not held by it", k,
                                 r->members[i]);
            if (!match_worker_fits(&r->req, w))
                return errprintf(errp, "reservation %zu: member %u does not fit the request", k,
                                 r->members[i]);
            for (uint32_t j = 0; j < i; j++)
                if (r->members[j] == r->members[i])
                    return errprintf(errp, "reservation %zu lists worker %u twice", k,
                                     r->members[i]);
        }
        listed += r->n_members;
    }
    if (held != listed)
        return errprintf(errp, "%zu workers held by reservations but %zu listed", held, listed);
    for (size_t k = 0; k < cluster_table_count(s->clusters); k++) {
        const cluster *c = cluster_table_at(s->clusters, k);
        const reservation *r = c->resv == NIL ? NULL : resv_table_at(s->resvs, c->resv);
        if (!cluster_active(c) || !r || !resv_active(r))
            continue;
        for (uint32_t i = 0; i < c->n_members; i++) {
            const worker *w = registry_at(s->reg, c->members[i].worker);
            if (w && w->resv != r->slot)
                return errprintf(errp, "cluster %zu: member %u is not in its reservation", k,
                                 c->members[i].worker);
        }
    }
    return 0;
}

int sched_check(const sched *s, mu_error *errp)
{
    if (index_check(s->ix, errp) < 0)
        return -1;
    size_t allocated = 0, members = 0, active = 0;
    for (size_t i = 0; i < registry_count(s->reg); i++) {
        const worker *w = registry_at(s->reg, i);
        if (w->alloc != WORKER_ALLOCATED)
            continue;
        allocated++;
        const cluster *c = cluster_table_at(s->clusters, w->cluster);
        if (!c || !cluster_active(c))
            return errprintf(errp, "worker %zu is allocated to no active cluster", i);
        if (!member_of((cluster *)c, w->slot))
            return errprintf(errp, "worker %zu is allocated to a cluster it is not in", i);
    }
    for (size_t k = 0; k < cluster_table_count(s->clusters); k++) {
        const cluster *c = cluster_table_at(s->clusters, k);
        if (!cluster_active(c)) {
            for (uint32_t i = 0; i < c->n_members; i++) {
                const worker *w = registry_at(s->reg, c->members[i].worker);
                if (w && w->alloc == WORKER_ALLOCATED && w->cluster == c->slot)
                    return errprintf(errp, "ended cluster %zu still holds worker %u", k,
                                     c->members[i].worker);
            }
            if (c->heap_pos != NIL)
                return errprintf(errp, "ended cluster %zu is still scheduled", k);
            continue;
        }
        active++;
        if (c->heap_pos == NIL)
            return errprintf(errp, "active cluster %zu is not scheduled", k);
        if (c->n_members < c->req.min_workers || c->n_members > c->req.workers)
            return errprintf(errp, "cluster %zu has %u members for a request of %u..%u", k,
                             c->n_members, c->req.min_workers, c->req.workers);
        uint32_t lost = 0, seated = 0;
        bool acked = true;
        for (uint32_t i = 0; i < c->n_members; i++) {
            if (c->members[i].worker == NIL) { /* a vacant seat */
                if (!c->members[i].lost)
                    return errprintf(errp, "cluster %zu: a vacant seat is not marked lost", k);
                lost++;
                acked = false;
                continue;
            }
            seated++;
            const worker *w = registry_at(s->reg, c->members[i].worker);
            if (w->alloc != WORKER_ALLOCATED || w->cluster != c->slot)
                return errprintf(errp, "cluster %zu: member %u is not allocated to it", k,
                                 c->members[i].worker);
            if (!match_worker_fits(&c->req, w))
                return errprintf(errp, "cluster %zu: member %u does not fit the request", k,
                                 c->members[i].worker);
            for (uint32_t j = 0; j < i; j++)
                if (c->members[j].worker == c->members[i].worker)
                    return errprintf(errp, "cluster %zu lists worker %u twice", k,
                                     c->members[i].worker);
            /* lost means offline; offline but not lost only while the grace
             * after a restore runs */
            if ((c->members[i].lost && w->state != WORKER_OFFLINE) ||
                (!c->members[i].lost && w->state == WORKER_OFFLINE && !s->grace_until))
                return errprintf(errp, "cluster %zu: member %u lost flag disagrees", k,
                                 c->members[i].worker);
            lost += c->members[i].lost;
            acked &= c->members[i].acked != 0;
        }
        members += seated;
        if (c->state == CLUSTER_READY && (lost || !acked))
            return errprintf(errp, "cluster %zu is ready with members missing", k);
        if (c->state == CLUSTER_DEGRADED && !lost && acked)
            return errprintf(errp, "cluster %zu is degraded with every member there", k);
    }
    if (members != allocated)
        return errprintf(errp, "%zu members in active clusters but %zu workers allocated", members,
                         allocated);
    if (active != cluster_table_active_count(s->clusters))
        return errprintf(errp, "%zu active clusters but %zu scheduled", active,
                         cluster_table_active_count(s->clusters));
    return check_reservations(s, errp);
}

size_t sched_bytes(const sched *s)
{
    return sizeof(*s) + registry_bytes(s->reg) + index_bytes(s->ix) + verifier_bytes(s->ver);
}
