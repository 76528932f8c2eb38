/* scheduler.c - see scheduler.h. */
#include "scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

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
};

static void reroute(sched *s, cluster *c, uint64_t now);

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
        w->alloc = WORKER_FREE;
        w->cluster = NIL;
        if (!c->members[i].lost)
            notice(s, c, w, false);
        /* Back in the index if it can serve; failure to file it (out of
         * memory) only hides it from matching until its next change. */
        index_refresh(s->ix, w);
        verifier_worker_freed(s->ver, w, now);
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
    exclude(c, w->slot);
    recompute_price(s, c); /* nobody is paid for an empty seat */
    if (!c->vacant_at)
        c->vacant_at = now ? now : 1;
    seat_lost(s, c, now, w, what, reason, degrade_why);
    if (tell)
        notice(s, c, w, false);
    index_refresh(s->ix, w);
    verifier_worker_freed(s->ver, w, now);
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

static void on_worker_state(void *arg, worker *w, worker_state from, worker_state to,
                            const char *reason)
{
    sched *s = arg;
    uint64_t now = w->last_seen > w->up.at ? w->last_seen : w->up.at;
    verifier_worker_changed(s->ver, w, now);
    if (w->alloc == WORKER_ALLOCATED && to == WORKER_ONLINE)
        vacate_if_unfit(s, w, now);
    index_refresh(s->ix, w);
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
    index_refresh(s->ix, w);
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
    index_refresh(s->ix, w);
    if (to == VERIFY_FAILED && w->alloc == WORKER_ALLOCATED) {
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
static uint32_t find_replacement(sched *s, const cluster *c, uint8_t prefer)
{
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
        w->alloc = WORKER_ALLOCATED;
        w->cluster = c->slot;
        index_remove(s->ix, w);
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
    if (!(s->clusters = cluster_table_create())) {
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
}

void sched_tick(sched *s, uint64_t now)
{
    registry_tick(s->reg, now);
    if (s->grace_until && now >= s->grace_until)
        end_grace(s, now);
    verifier_tick(s->ver, now);
    if (s->n_needy && now >= s->retry_at)
        retry_needy(s, now);
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
    if (s->n_needy && s->retry_at < t)
        t = s->retry_at;
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

const cluster *sched_cluster_create(sched *s, const mu_id *id, const char *owner,
                                    const match_request *rq, uint32_t hours, uint64_t now,
                                    match_explain *why, mu_error *errp)
{
    if (match_validate(rq, registry_catalog(s->reg), errp) < 0 || check_hours(s, hours, errp) < 0) {
        errno = EINVAL;
        return NULL;
    }
    if (cluster_table_get(s->clusters, id)) {
        errno = EEXIST;
        return errprintf(errp, "a cluster with this id exists"), NULL;
    }
    uint32_t *out = mu_calloc(rq->workers, sizeof(uint32_t));
    cluster_member *members = mu_calloc(rq->workers, sizeof(cluster_member));
    if (!out || !members) {
        mu_free(out);
        mu_free(members);
        errno = ENOMEM;
        return errprintf(errp, "out of memory"), NULL;
    }
    size_t n = match_find(s->ix, s->reg, rq, out);
    if (!n) {
        int e = errno == ENOMEM ? ENOMEM : ENOSPC;
        mu_free(out);
        mu_free(members);
        if (e == ENOSPC && why)
            match_explain_failure(s->ix, s->reg, rq, why);
        errno = e;
        return e == ENOMEM ? (errprintf(errp, "out of memory"), NULL) : NULL;
    }
    cluster *c = cluster_table_add(s->clusters, id);
    if (!c) {
        int e = errno;
        mu_free(out);
        mu_free(members);
        errno = e;
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
            index_refresh(s->ix, w);
            verifier_worker_freed(s->ver, w, now);
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
    /* Check every seat before changing anything. */
    for (size_t i = 0; i < cr->n_seats; i++) {
        if (id_is_null(&cr->seats[i].worker))
            continue;
        const worker *w = registry_get(s->reg, &cr->seats[i].worker);
        if (!w)
            return errprintf(errp, "saved cluster names a worker that was not saved"), NULL;
        if (active && w->alloc == WORKER_ALLOCATED)
            return errprintf(errp, "a worker is a member of two active saved clusters"), NULL;
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

void sched_restore_finish(sched *s, uint64_t now, uint64_t grace_ms)
{
    s->grace_until = now + (grace_ms ? grace_ms : 1);
}

/* --- invariants --------------------------------------------------------------------------------
 */

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
    return 0;
}

size_t sched_bytes(const sched *s)
{
    return sizeof(*s) + registry_bytes(s->reg) + index_bytes(s->ix) + verifier_bytes(s->ver);
}
