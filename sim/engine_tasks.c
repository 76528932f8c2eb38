/* engine_tasks.c - tasks inside clusters, in virtual time (engine.h,
 * docs/sim.md "Tasks").
 *
 * A request of the workload may carry tasks (workload.h). When its cluster
 * is first ready, the simulated owner submits them to a taskset of the
 * core (scheduler/core/tasks.h, unchanged) whose members are the cluster's
 * serving members (registry slots as member ids, each with all its GPUs);
 * what the taskset dispatches starts at once and ends after a run time
 * drawn per task and attempt, exiting non-zero with the request's
 * probability. The members follow the cluster as musterd's shell makes
 * them (scheduler/rpc_tasks.c, sync_members): a member lost or vacated by
 * the core is lost to the taskset (its running tasks requeued, never on it
 * again), a replacement is added. An agent that goes down is held (given
 * nothing new) and its running attempts are over: they finish never; when
 * it comes back within the reconnect grace (keeping its seat), they are
 * reported lost, as an agent that restarted and runs nothing would have
 * them. The owner releases the cluster when its last task is final; a
 * cluster that ends first (its booking expires, it fails) cancels the rest.
 *
 * Measured: tasks by outcome, retries by cause, and GPU time: of attempts
 * that succeeded (useful work), were lost, exited non-zero or were cut off
 * by the cluster's end, against the GPU time allocated to clusters with
 * tasks (goodput).
 */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "engine_int.h"
#include "rng.h"

/* Why a task's latest attempt ended, for the cause of its retry. */
enum { TC_NONE = 0, TC_LOST = 1, TC_EXIT = 2 };

#define DISPATCH_BATCH 64
#define SUBMIT_BATCH   4096u

int engine_tasks_create(engine *e, mu_error *errp)
{
    e->tc = mu_calloc(e->n_req ? e->n_req : 1, sizeof(*e->tc));
    if (!e->tc)
        return errprintf(errp, "out of memory");
    for (size_t i = 0; i < e->n_req; i++)
        e->reqs[i].has_tasks = workload_at(e->wl, i)->tasks > 0;
    e->r.tasks_on = true;
    return 0;
}

static void tc_free(tcluster *tc)
{
    if (!tc)
        return;
    taskset_destroy(tc->ts);
    mu_free(tc->cause);
    mu_free(tc->members);
    mu_free(tc);
}

void engine_tasks_destroy(engine *e)
{
    for (size_t i = 0; e->tc && i < e->n_req; i++)
        tc_free(e->tc[i]);
    mu_free(e->tc);
    e->tc = NULL;
}

/* --- small tools ------------------------------------------------------------------- */

static bool queued(task_state s)
{
    return s == TASK_WAITING || s == TASK_READY;
}

static void observe(void *arg, uint32_t task, task_state from, task_state to)
{
    (void)task;
    tcluster *tc = arg;
    engine *e = tc->e;
    e->tasks_running -= from == TASK_RUNNING;
    e->tasks_queued -= queued(from);
    e->tasks_running += to == TASK_RUNNING;
    e->tasks_queued += queued(to);
    if (to == TASK_SUCCEEDED) {
        e->r.t_succeeded++;
        e->row.tasks_succeeded++;
        tc->final++;
    } else if (to == TASK_FAILED) {
        e->r.t_failed++;
        e->row.tasks_failed++;
        tc->final++;
    } else if (to == TASK_CANCELLED) {
        tc->final++;
    }
}

/* An attempt's run time (ms, at least 1) and exit code, drawn from the
 * stream of (request, task, attempt): the same whenever it is asked. */
static uint64_t attempt_draw(const engine *e, uint32_t q, uint32_t task, uint32_t attempt,
                             int *exit_code)
{
    const workload_request *w = workload_at(e->wl, q);
    rng g;
    rng_seed_stream(&g, e->cfg.seed ^ KEY_TASK ^ ((uint64_t)q * 0x9e3779b97f4a7c15ull),
                    (uint64_t)task << 32 | attempt);
    uint64_t ms = engine_ms_of(dist_sample(&w->task_s, &g));
    double u = rng_uniform(&g);
    *exit_code = u < w->task_fail ? 1 : 0;
    return ms ? ms : 1;
}

static uint32_t task_gpus(const engine *e, uint32_t q)
{
    return workload_at(e->wl, q)->task_gpus;
}

/* Ms of an attempt from its start to now. */
static uint64_t ran_ms(const engine *e, const task_info *ti)
{
    uint64_t start = ti->started_at > EPOCH_MS ? ti->started_at - EPOCH_MS : 0;
    return e->now > start ? e->now - start : 0;
}

static void maybe_done(engine *e, uint32_t q, tcluster *tc)
{
    if (tc->final < tc->n_tasks || tc->release_pushed)
        return;
    tc->release_pushed = 1;
    e->r.t_released_done++;
    /* Not from inside the core's callbacks: an event at this instant. */
    if (evq_push(e->q, e->now, CLS_RELEASE, EV_RELEASE, q, 0, 0) < 0)
        engine_fail(e, ENOMEM);
}

static void dispatch(engine *e, uint32_t q, tcluster *tc)
{
    task_start st[DISPATCH_BATCH];
    size_t k;
    do {
        k = taskset_dispatch(tc->ts, EPOCH_MS + e->now, st, DISPATCH_BATCH);
        for (size_t i = 0; i < k; i++) {
            e->r.t_attempts++;
            if (st[i].attempt > 1) {
                e->r.t_retries++;
                e->row.task_retries++;
                if (tc->cause[st[i].task] == TC_EXIT)
                    e->r.t_retries_exit++;
                else
                    e->r.t_retries_lost++;
            }
            int exit_code;
            uint64_t ms = attempt_draw(e, q, st[i].task, st[i].attempt, &exit_code);
            if (evq_push(e->q, e->now + ms, CLS_TASK, EV_TASK, q, st[i].task, st[i].attempt) < 0)
                engine_fail(e, ENOMEM);
        }
    } while (k == DISPATCH_BATCH);
}

/* The attempts running on member ws are over: account them as lost. */
static void account_lost(engine *e, uint32_t q, tcluster *tc, uint32_t ws, bool attempt_lost)
{
    uint64_t gpus = task_gpus(e, q);
    for (uint32_t i = 0; i < tc->n_tasks; i++) {
        const task_info *ti = taskset_get(tc->ts, i);
        if (!ti || ti->state != TASK_RUNNING || ti->member != ws)
            continue;
        e->t_lost_ms += gpus * ran_ms(e, ti);
        e->r.t_lost_attempts++;
        tc->cause[i] = TC_LOST;
        if (attempt_lost) {
            mu_error err;
            taskset_attempt_lost(tc->ts, i, ws, ti->attempts, EPOCH_MS + e->now, &err);
        }
    }
}

static bool serving(const cluster *c, uint32_t ws)
{
    for (uint32_t i = 0; i < c->n_members; i++)
        if (c->members[i].worker == ws && !c->members[i].lost)
            return true;
    return false;
}

/* Make the taskset's members the cluster's serving members. */
static void sync_members(engine *e, uint32_t q, tcluster *tc, const cluster *c)
{
    const registry *reg = sched_registry_const(e->s);
    for (uint32_t i = 0; i < c->n_members; i++) {
        const cluster_member *m = &c->members[i];
        if (m->worker == NIL || m->lost || taskset_member_live(tc->ts, m->worker))
            continue;
        const worker *w = registry_at(reg, m->worker);
        if (!w)
            continue;
        bool known = false;
        for (uint32_t k = 0; k < tc->n_members && !known; k++)
            known = tc->members[k] == m->worker;
        if (!known && tc->n_members == tc->cap_members) {
            uint32_t cap = tc->cap_members ? tc->cap_members * 2 : 8;
            uint32_t *nm = mu_realloc(tc->members, cap * sizeof(*nm));
            if (!nm) {
                engine_fail(e, ENOMEM);
                return;
            }
            tc->members = nm;
            tc->cap_members = cap;
        }
        task_member tm = {.id = w->slot,
                          .gpus = w->gpu_count,
                          .cpus = (uint16_t)(w->cpu_cores > UINT16_MAX ? UINT16_MAX : w->cpu_cores),
                          .memory_mib = w->memory_mib};
        mu_error err;
        if (taskset_member_add(tc->ts, &tm, &err) < 0) {
            engine_fail(e, errno == ENOMEM ? ENOMEM : EINVAL);
            return;
        }
        if (!known)
            tc->members[tc->n_members++] = w->slot;
        uint32_t n = w->slot < e->n_nodes ? e->slot_node[w->slot] : NIL;
        if (n != NIL && !e->nodes[n].live)
            taskset_member_hold(tc->ts, w->slot, true);
    }
    for (uint32_t k = 0; k < tc->n_members; k++) {
        uint32_t ws = tc->members[k];
        if (taskset_member_live(tc->ts, ws) && !serving(c, ws)) {
            account_lost(e, q, tc, ws, false);
            taskset_member_lost(tc->ts, ws, EPOCH_MS + e->now);
        }
    }
}

/* --- a cluster's tasks: start, follow, end ------------------------------------------- */

static void start_tasks(engine *e, uint32_t q, const cluster *c)
{
    const workload_request *w = workload_at(e->wl, q);
    tcluster *tc = mu_calloc(1, sizeof(*tc));
    mu_error err;
    if (!tc || !(tc->cause = mu_calloc(w->tasks, 1)) || !(tc->ts = taskset_create(NULL, 0, &err))) {
        tc_free(tc);
        engine_fail(e, ENOMEM);
        return;
    }
    tc->e = e;
    taskset_observe(tc->ts, observe, tc);
    e->tc[q] = tc;
    e->r.t_clusters++;
    sync_members(e, q, tc, c);
    task_spec spec = {.gpus = (uint16_t)w->task_gpus,
                      .placement = TASK_PLACE_DEFAULT,
                      .max_retries = w->task_retries ? w->task_retries : TASK_NO_RETRIES,
                      .retry_exits = w->task_retries > 0};
    uint32_t batch = w->tasks < SUBMIT_BATCH ? w->tasks : SUBMIT_BATCH;
    task_spec *specs = mu_malloc(batch * sizeof(*specs));
    if (!specs) {
        engine_fail(e, ENOMEM);
        return;
    }
    for (uint32_t i = 0; i < batch; i++)
        specs[i] = spec;
    for (uint32_t done = 0; done < w->tasks;) {
        uint32_t n = w->tasks - done < batch ? w->tasks - done : batch;
        if (taskset_submit(tc->ts, specs, n, EPOCH_MS + e->now, NULL, &err) < 0) {
            if (errno == ENOMEM) {
                engine_fail(e, ENOMEM);
                break;
            }
            e->r.t_submit_errors += w->tasks - done; /* the core refused them: not expected */
            break;
        }
        /* New tasks are waiting before the core makes them ready. */
        e->tasks_queued += n;
        tc->n_tasks += n;
        done += n;
    }
    mu_free(specs);
    e->r.t_submitted += tc->n_tasks;
    dispatch(e, q, tc);
    maybe_done(e, q, tc);
}

/* The cluster ended: what is not final is cancelled (the running attempts
 * cut off), and the taskset goes. */
static void end_tasks(engine *e, uint32_t q, tcluster *tc)
{
    uint64_t gpus = task_gpus(e, q);
    for (uint32_t i = 0; i < tc->n_tasks; i++) {
        const task_info *ti = taskset_get(tc->ts, i);
        if (ti->state == TASK_RUNNING) {
            e->t_cancelled_ms += gpus * ran_ms(e, ti);
            e->tasks_running--;
            e->r.t_cancelled++;
        } else if (queued(ti->state)) {
            e->tasks_queued--;
            e->r.t_cancelled++;
        }
    }
    tc_free(tc);
    e->tc[q] = NULL;
}

void engine_tasks_cluster_event(engine *e, req *q, const cluster *c, const char *topic)
{
    uint32_t i = (uint32_t)(q - e->reqs);
    tcluster *tc = e->tc[i];
    if (!cluster_active(c)) {
        if (tc)
            end_tasks(e, i, tc);
        return;
    }
    if (!tc) {
        if (strcmp(topic, "cluster.ready") == 0 && !q->ended)
            start_tasks(e, i, c);
        return;
    }
    sync_members(e, i, tc, c);
    dispatch(e, i, tc);
    maybe_done(e, i, tc);
}

/* The taskset of the cluster node n's worker is a member of, with its
 * request index; NULL when none. */
static tcluster *tc_of_node(engine *e, uint32_t n, uint32_t *q)
{
    const node *nd = &e->nodes[n];
    const worker *w = nd->slot == NIL ? NULL : registry_at(sched_registry_const(e->s), nd->slot);
    if (!w || w->alloc != WORKER_ALLOCATED || w->cluster >= e->n_slot_req)
        return NULL;
    uint32_t i = e->slot_req[w->cluster];
    if (i == NIL || !e->tc[i] || !taskset_member_live(e->tc[i]->ts, nd->slot))
        return NULL;
    *q = i;
    return e->tc[i];
}

void engine_tasks_leave(engine *e, uint32_t n)
{
    uint32_t q;
    tcluster *tc = tc_of_node(e, n, &q);
    if (tc)
        taskset_member_hold(tc->ts, e->nodes[n].slot, true);
}

void engine_tasks_join(engine *e, uint32_t n)
{
    uint32_t q;
    tcluster *tc = tc_of_node(e, n, &q);
    if (!tc)
        return;
    uint32_t ws = e->nodes[n].slot;
    account_lost(e, q, tc, ws, true); /* it restarted: it runs nothing */
    taskset_member_hold(tc->ts, ws, false);
    dispatch(e, q, tc);
    maybe_done(e, q, tc);
}

int engine_tasks_done(engine *e, const evq_event *ev, mu_error *errp)
{
    uint32_t q = ev->a, task = ev->b, attempt = ev->c;
    tcluster *tc = e->tc[q];
    if (!tc)
        return 0; /* its cluster has ended */
    const task_info *ti = taskset_get(tc->ts, task);
    if (!ti || ti->state != TASK_RUNNING || ti->attempts != attempt)
        return 0; /* that attempt was lost or cut off */
    uint32_t ws = ti->member;
    uint32_t n = ws < e->n_nodes ? e->slot_node[ws] : NIL;
    if (n == NIL || !e->nodes[n].live)
        return 0; /* its agent is down: it never finishes */
    int exit_code;
    attempt_draw(e, q, task, attempt, &exit_code);
    uint64_t gpu_ms = (uint64_t)task_gpus(e, q) * ran_ms(e, ti);
    mu_error err = {""};
    if (taskset_finished(tc->ts, task, ws, attempt, exit_code, EPOCH_MS + e->now, &err) < 0)
        return errprintf(errp, "the core refused a task's end: %s", err.text);
    if (exit_code == 0) {
        e->t_useful_ms += gpu_ms;
    } else {
        e->t_failed_ms += gpu_ms;
        e->r.t_failed_attempts++;
        tc->cause[task] = TC_EXIT;
    }
    dispatch(e, q, tc);
    maybe_done(e, q, tc);
    return 0;
}

void engine_tasks_finish(engine *e)
{
    sim_report *r = &e->r;
    for (size_t i = 0; i < e->n_req; i++)
        if (e->tc[i])
            r->t_unfinished += e->tc[i]->n_tasks - e->tc[i]->final;
    r->t_gh_useful = (double)e->t_useful_ms / 3.6e6;
    r->t_gh_lost = (double)e->t_lost_ms / 3.6e6;
    r->t_gh_failed = (double)e->t_failed_ms / 3.6e6;
    r->t_gh_cancelled = (double)e->t_cancelled_ms / 3.6e6;
    r->t_gh_allocated = (double)e->task_alloc_gpu_ms / 3.6e6;
}
