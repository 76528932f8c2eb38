/* engine_observe.c - what the core tells the replay, and the measurements
 * made of it: every cluster event topic counted by name (so topics the core
 * adds later show up in reports), the time each cluster spends in each
 * state and the GPUs it holds, losses and the replacements that serve them
 * again, acknowledgements scheduled for members told they joined. Nothing
 * here decides anything for the core: it only observes (see engine_int.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "engine_int.h"
#include "rng.h"

int engine_vec_push(u64vec *v, uint64_t x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        uint64_t *nv = mu_realloc(v->v, cap * sizeof(*nv));
        if (!nv)
            return -1;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

void engine_count(engine *e, report_counts *c, const char *name)
{
    if (report_counts_add(c, name, 1) < 0)
        engine_fail(e, ENOMEM);
}

/* --- losses ---------------------------------------------------------------------- */

static void loss_push(engine *e, req *q, uint64_t at)
{
    uint32_t i;
    if (e->loss_free != NIL) {
        i = e->loss_free;
        e->loss_free = e->losses[i].next;
    } else {
        if (e->n_losses == e->cap_losses) {
            size_t cap = e->cap_losses ? e->cap_losses * 2 : 256;
            loss *nl = mu_realloc(e->losses, cap * sizeof(*nl));
            if (!nl) {
                engine_fail(e, ENOMEM);
                return;
            }
            e->losses = nl;
            e->cap_losses = cap;
        }
        i = (uint32_t)e->n_losses++;
    }
    e->losses[i] = (loss){at, NIL};
    if (q->loss_tail != NIL)
        e->losses[q->loss_tail].next = i;
    else
        q->loss_head = i;
    q->loss_tail = i;
}

/* The oldest pending loss of q: true and its time, or false. */
static bool loss_pop(engine *e, req *q, uint64_t *at)
{
    uint32_t i = q->loss_head;
    if (i == NIL)
        return false;
    *at = e->losses[i].at;
    q->loss_head = e->losses[i].next;
    if (q->loss_head == NIL)
        q->loss_tail = NIL;
    e->losses[i].next = e->loss_free;
    e->loss_free = i;
    return true;
}

/* --- accounting of clusters ------------------------------------------------------ */

static bool state_active(uint8_t st)
{
    return st == CLUSTER_PROVISIONING || st == CLUSTER_READY || st == CLUSTER_DEGRADED;
}

/* Credit q's time since its last change to the state it was in. */
static void account(engine *e, req *q, uint64_t now)
{
    if (!state_active(q->state) || now <= q->last_ms) {
        q->last_ms = now > q->last_ms ? now : q->last_ms;
        return;
    }
    uint64_t dt = now - q->last_ms;
    e->r.cluster_ms += dt;
    e->alloc_gpu_ms += (uint64_t)q->gpus * dt;
    if (q->has_tasks)
        e->task_alloc_gpu_ms += (uint64_t)q->gpus * dt;
    if (q->state == CLUSTER_READY)
        e->ready_gpu_ms += (uint64_t)q->gpus * dt;
    else if (q->state == CLUSTER_DEGRADED)
        e->r.degraded_ms += dt;
    q->last_ms = now;
}

/* Take q's state, members and GPUs from the core's record after a change. */
static void refresh(engine *e, req *q, const cluster *c)
{
    uint32_t seated = 0, gpus = 0;
    bool active = cluster_active(c);
    const registry *reg = sched_registry_const(e->s);
    for (uint32_t i = 0; active && i < c->n_members; i++) {
        if (c->members[i].worker == NIL)
            continue;
        const worker *w = registry_at(reg, c->members[i].worker);
        seated++;
        gpus += w ? w->gpu_count : 0;
    }
    e->alloc_workers += (int64_t)seated - (int64_t)q->seated;
    e->alloc_gpus += (int64_t)gpus - (int64_t)q->gpus;
    if (state_active(q->state))
        e->by_state[q->state]--;
    if (active)
        e->by_state[c->state]++;
    bool was_active = state_active(q->state);
    q->state = (uint8_t)c->state;
    q->seated = seated;
    q->gpus = gpus;
    if (c->state == CLUSTER_DEGRADED && !q->degraded_once) {
        q->degraded_once = 1;
        e->r.clusters_degraded++;
    }
    if (was_active && !active && !q->ended) {
        q->ended = 1;
        if (c->state == CLUSTER_RELEASED)
            e->r.ended_released++;
        else if (c->state == CLUSTER_EXPIRED)
            e->r.ended_expired++;
        else
            e->r.ended_failed++;
        uint64_t at;
        while (loss_pop(e, q, &at))
            e->r.losses_unresolved++;
    }
}

req *engine_req_of(engine *e, const cluster *c)
{
    if (c->slot >= e->n_slot_req)
        return NULL;
    if (e->slot_req[c->slot] == NIL) {
        if (e->creating == NIL)
            return NULL;
        e->slot_req[c->slot] = e->creating;
        e->reqs[e->creating].slot = c->slot;
    }
    return &e->reqs[e->slot_req[c->slot]];
}

/* --- what the core tells us ------------------------------------------------------ */

void engine_on_worker_state(void *arg, const worker *w, worker_state from, worker_state to,
                            const char *reason)
{
    (void)w;
    (void)reason;
    engine *e = arg;
    /* Several per churn event: a counter here, names only at the end. */
    if ((unsigned)from < 4 && (unsigned)to < 4)
        e->transitions[from][to]++;
}

void engine_on_cluster_event(void *arg, const cluster *c, const char *topic, const worker *w,
                             const char *detail)
{
    (void)w;
    (void)detail;
    engine *e = arg;
    engine_count(e, &e->r.topics, topic);
    req *q = engine_req_of(e, c);
    if (!q)
        return; /* not one of ours: cannot happen, the engine creates them all */
    account(e, q, e->now);
    if (strcmp(topic, "cluster.ready") == 0 && !q->ready_once) {
        q->ready_once = 1;
        e->r.reached_ready++;
        if (engine_vec_push(&e->ttr, e->now - q->created_ms) < 0)
            engine_fail(e, ENOMEM);
    } else if (strcmp(topic, "cluster.member_lost") == 0) {
        e->r.member_losses++;
        e->row.member_losses++;
        loss_push(e, q, e->now);
    } else if (strcmp(topic, "cluster.member_replaced") == 0) {
        uint64_t at;
        e->r.replacements++;
        e->row.replacements++;
        if (loss_pop(e, q, &at) && engine_vec_push(&e->reroute, e->now - at) < 0)
            engine_fail(e, ENOMEM);
    } else if (strcmp(topic, "cluster.member_back") == 0) {
        uint64_t at;
        e->r.returns++;
        loss_pop(e, q, &at);
    } else if (strcmp(topic, "cluster.shrunk") == 0) {
        uint64_t at;
        while (loss_pop(e, q, &at))
            ; /* those seats are given up, not served again */
    }
    refresh(e, q, c);
    if (q->has_tasks && e->tc)
        engine_tasks_cluster_event(e, q, c, topic);
}

void engine_on_member_notice(void *arg, const cluster *c, const worker *w, bool join)
{
    engine *e = arg;
    if (!join)
        return;
    req *q = engine_req_of(e, c);
    uint32_t n = w->slot < e->n_nodes ? e->slot_node[w->slot] : NIL;
    if (!q || n == NIL || !e->nodes[n].live)
        return; /* a dead agent acknowledges nothing */
    if (e->vn)
        engine_verify_hired(e, n);
    node *nd = &e->nodes[n];
    rng r;
    uint64_t key =
        ((uint64_t)(q - e->reqs) << 32 | n) ^ ((uint64_t)nd->gen * 0x9e3779b97f4a7c15ull);
    rng_seed_stream(&r, e->cfg.seed ^ KEY_ACK, key);
    uint64_t delay = engine_ms_of(dist_sample(&e->cfg.ack_delay, &r));
    if (evq_push(e->q, e->now + delay, CLS_ACK, EV_ACK, (uint32_t)(q - e->reqs), n, nd->gen) < 0)
        engine_fail(e, ENOMEM);
}

void engine_finish(engine *e)
{
    sim_report *r = &e->r;
    for (size_t i = 0; i < e->n_req; i++) {
        req *q = &e->reqs[i];
        if (state_active(q->state)) {
            account(e, q, e->until);
            r->active_at_end++;
            uint64_t at;
            while (loss_pop(e, q, &at))
                r->losses_unresolved++;
        }
    }
    r->not_arrived = e->n_req - r->requests;
    for (int from = 0; from < 4; from++) {
        for (int to = 0; to < 4; to++) {
            char name[40];
            if (!e->transitions[from][to])
                continue;
            snprintf(name, sizeof(name), "%s->%s", worker_state_name((worker_state)from),
                     worker_state_name((worker_state)to));
            if (report_counts_add(&e->r.worker_transitions, name, e->transitions[from][to]) < 0)
                engine_fail(e, ENOMEM);
        }
    }
    const registry *reg = sched_registry_const(e->s);
    r->final_online = registry_count_state(reg, WORKER_ONLINE);
    r->final_suspect = registry_count_state(reg, WORKER_SUSPECT);
    r->final_offline = registry_count_state(reg, WORKER_OFFLINE);
    r->final_allocated = (uint64_t)e->alloc_workers;
    r->never_joined = e->n_nodes - r->nodes_joined;
    report_stats_of(e->ttr.v, e->ttr.n, &r->time_to_ready);
    report_stats_of(e->reroute.v, e->reroute.n, &r->reroute_latency);
    r->gpu_hours_online = (double)e->online_gpu_ms / 3.6e6;
    r->gpu_hours_allocated = (double)e->alloc_gpu_ms / 3.6e6;
    r->gpu_hours_ready = (double)e->ready_gpu_ms / 3.6e6;
    r->peak_queue = evq_peak(e->q);
    if (e->vn)
        engine_verify_finish(e);
    if (e->tc)
        engine_tasks_finish(e);
}
