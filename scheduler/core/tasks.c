/* tasks.c - see tasks.h. */
#include "tasks.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

#define NIL UINT32_MAX

typedef struct task {
    task_info info; /* first: taskset_get hands out a pointer to it */
    uint32_t *deps; /* what it depends on (ids) */
    uint32_t n_deps;
    uint32_t *dependents; /* what depends on it (ids) */
    uint32_t n_dependents, cap_dependents;
    uint32_t unfinished; /* dependencies not yet succeeded */
    uint32_t hpos;       /* position in the ready or the deadline heap, NIL: none */
    uint32_t link;       /* scratch list (failure propagation, skipped in dispatch) */
    uint32_t pend;       /* scratch: dependents a submission is about to add */
    uint32_t mslot;      /* member slot while running; NIL otherwise */
    uint64_t deadline;   /* while running with a timeout */
    uint32_t excluded[TASK_MAX_LOSSES]; /* member ids that lost it (info.losses of them) */
} task;

typedef struct member {
    task_member cap;
    bool live;
    bool held;          /* keeps its running tasks, is given no new ones */
    uint64_t gpus_used; /* mask of indices in use */
    uint32_t cpus_used;
    uint64_t mem_used;
    uint32_t running;
} member;

/* A binary min-heap of task ids: the ready queue (by id, i.e. submission
 * order) or the running tasks with a deadline (by deadline, then id). A
 * task is in at most one of them, so one hpos per task serves both. */
typedef struct heap {
    uint32_t *a;
    uint32_t n, cap;
    bool by_deadline;
} heap;

struct taskset {
    task *tasks;
    uint32_t n_tasks, cap_tasks;
    member *members;
    uint32_t n_members, cap_members;
    heap ready, timed;
    size_t by_state[TASK_STATES];
    task_observer_fn observe;
    void *observe_arg;
};

static const char *const state_names[] = {"waiting",   "ready",  "running",
                                          "succeeded", "failed", "cancelled"};

const char *task_state_name(task_state s)
{
    return (unsigned)s < TASK_STATES ? state_names[s] : "unknown";
}

/* --- heaps ---------------------------------------------------------------- */

static bool heap_less(const taskset *ts, const heap *h, uint32_t a, uint32_t b)
{
    if (h->by_deadline && ts->tasks[a].deadline != ts->tasks[b].deadline)
        return ts->tasks[a].deadline < ts->tasks[b].deadline;
    return a < b;
}

static void heap_set(taskset *ts, heap *h, uint32_t pos, uint32_t t)
{
    h->a[pos] = t;
    ts->tasks[t].hpos = pos;
}

static void heap_up(taskset *ts, heap *h, uint32_t pos)
{
    uint32_t t = h->a[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!heap_less(ts, h, t, h->a[parent]))
            break;
        heap_set(ts, h, pos, h->a[parent]);
        pos = parent;
    }
    heap_set(ts, h, pos, t);
}

static void heap_down(taskset *ts, heap *h, uint32_t pos)
{
    uint32_t t = h->a[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && heap_less(ts, h, h->a[c + 1], h->a[c]))
            c++;
        if (!heap_less(ts, h, h->a[c], t))
            break;
        heap_set(ts, h, pos, h->a[c]);
        pos = c;
    }
    heap_set(ts, h, pos, t);
}

/* Capacity is reserved at submission (one place per task ever submitted),
 * so pushing never allocates and never fails. */
static void heap_push(taskset *ts, heap *h, uint32_t t)
{
    h->a[h->n++] = t;
    heap_up(ts, h, h->n - 1);
}

static void heap_remove(taskset *ts, heap *h, uint32_t t)
{
    uint32_t pos = ts->tasks[t].hpos;
    ts->tasks[t].hpos = NIL;
    uint32_t last = h->a[--h->n];
    if (pos == h->n)
        return;
    heap_set(ts, h, pos, last);
    heap_up(ts, h, pos);
    heap_down(ts, h, ts->tasks[last].hpos);
}

static int heap_reserve(heap *h, uint32_t cap)
{
    if (cap <= h->cap)
        return 0;
    uint32_t *a = mu_realloc(h->a, (size_t)cap * sizeof(*a));
    if (!a)
        return -1;
    h->a = a;
    h->cap = cap;
    return 0;
}

/* --- members -------------------------------------------------------------- */

static uint32_t member_slot(const taskset *ts, uint32_t id)
{
    for (uint32_t i = 0; i < ts->n_members; i++)
        if (ts->members[i].cap.id == id)
            return i;
    return NIL;
}

static uint64_t all_gpus(uint16_t n)
{
    return n >= 64 ? UINT64_MAX : (UINT64_C(1) << n) - 1;
}

static unsigned popcount64(uint64_t x)
{
    return (unsigned)__builtin_popcountll(x);
}

static bool fits_capacity(const task_member *cap, uint16_t gpus, uint16_t cpus, uint64_t mem)
{
    return gpus <= cap->gpus && cpus <= cap->cpus && mem <= cap->memory_mib;
}

static bool fits_free(const member *m, const task *t)
{
    if (!m->live || m->held)
        return false;
    unsigned free_gpus = popcount64(all_gpus(m->cap.gpus) & ~m->gpus_used);
    return t->info.gpus <= free_gpus && m->cpus_used + t->info.cpus <= m->cap.cpus &&
           t->info.memory_mib <= m->cap.memory_mib - m->mem_used;
}

static bool excluded(const task *t, uint32_t member_id)
{
    for (uint32_t i = 0; i < t->info.losses && i < TASK_MAX_LOSSES; i++)
        if (t->excluded[i] == member_id)
            return true;
    return false;
}

static bool usable(const taskset *ts, const task *t, uint32_t slot)
{
    return fits_free(&ts->members[slot], t) && !excluded(t, ts->members[slot].cap.id);
}

/* The member slot a ready task should start on now, or NIL. */
static uint32_t place(const taskset *ts, const task *t)
{
    uint32_t best = NIL;
    switch (t->info.placement) {
    case TASK_PLACE_MEMBER_HARD:
    case TASK_PLACE_MEMBER_SOFT: {
        uint32_t s = member_slot(ts, t->info.affinity);
        if (s != NIL && usable(ts, t, s))
            return s;
        if (t->info.placement == TASK_PLACE_MEMBER_HARD)
            return NIL;
        break;
    }
    case TASK_PLACE_SPREAD:
        for (uint32_t i = 0; i < ts->n_members; i++)
            if (usable(ts, t, i) &&
                (best == NIL || ts->members[i].running < ts->members[best].running))
                best = i;
        return best;
    case TASK_PLACE_PACK:
        for (uint32_t i = 0; i < ts->n_members; i++)
            if (usable(ts, t, i) &&
                (best == NIL || ts->members[i].running > ts->members[best].running))
                best = i;
        return best;
    case TASK_PLACE_DEFAULT:
        break;
    }
    for (uint32_t i = 0; i < ts->n_members; i++)
        if (usable(ts, t, i))
            return i;
    return NIL;
}

/* The lowest n free GPU indices of m. */
static uint64_t pick_gpus(const member *m, uint16_t n)
{
    uint64_t free_mask = all_gpus(m->cap.gpus) & ~m->gpus_used, pick = 0;
    while (n--) {
        uint64_t low = free_mask & (~free_mask + 1);
        pick |= low;
        free_mask &= ~low;
    }
    return pick;
}

/* --- state changes ---------------------------------------------------------- */

static void set_state(taskset *ts, task *t, task_state s)
{
    task_state from = t->info.state;
    ts->by_state[from]--;
    ts->by_state[s]++;
    t->info.state = s;
    if (ts->observe)
        ts->observe(ts->observe_arg, (uint32_t)(t - ts->tasks), from, s);
}

void taskset_observe(taskset *ts, task_observer_fn fn, void *arg)
{
    ts->observe = fn;
    ts->observe_arg = arg;
}

static void make_ready(taskset *ts, uint32_t id)
{
    set_state(ts, &ts->tasks[id], TASK_READY);
    heap_push(ts, &ts->ready, id);
}

/* Give back what a running task holds on its member. */
static void release(taskset *ts, task *t)
{
    member *m = &ts->members[t->mslot];
    m->gpus_used &= ~t->info.gpu_mask;
    m->cpus_used -= t->info.cpus;
    m->mem_used -= t->info.memory_mib;
    m->running--;
    t->mslot = NIL;
    if (t->hpos != NIL)
        heap_remove(ts, &ts->timed, (uint32_t)(t - ts->tasks));
}

/* Fail every unfinished task that depends on `root`, transitively. The
 * walk keeps its stack in the tasks' link fields, so it needs no memory
 * and cannot fail half-way. Only waiting tasks can depend on a task that
 * has not succeeded, so only those are touched. */
static void fail_dependents(taskset *ts, uint32_t root, uint64_t now)
{
    uint32_t stack = root;
    ts->tasks[root].link = NIL;
    while (stack != NIL) {
        uint32_t cur = stack;
        task *c = &ts->tasks[cur];
        stack = c->link;
        const char *how = c->info.state == TASK_CANCELLED ? "cancelled" : "failed";
        for (uint32_t i = 0; i < c->n_dependents; i++) {
            task *d = &ts->tasks[c->dependents[i]];
            if (d->info.state != TASK_WAITING)
                continue;
            /* Reason and time first: the observer sees the task as it is. */
            d->info.finished_at = now;
            snprintf(d->info.reason, sizeof(d->info.reason), "dependency %u %s", cur, how);
            set_state(ts, d, TASK_FAILED);
            d->link = stack;
            stack = c->dependents[i];
        }
    }
}

static void fail(taskset *ts, uint32_t id, uint64_t now)
{
    ts->tasks[id].info.finished_at = now;
    set_state(ts, &ts->tasks[id], TASK_FAILED);
    fail_dependents(ts, id, now);
}

/* A running attempt failed (non-zero exit or timeout), resources already
 * released: retry it or fail it. */
static void attempt_failed(taskset *ts, uint32_t id, uint64_t now, const char *what)
{
    task *t = &ts->tasks[id];
    t->info.failures++;
    bool retry = t->info.retry_exits && t->info.max_retries != TASK_NO_RETRIES &&
                 t->info.failures <= t->info.max_retries;
    if (retry) {
        snprintf(t->info.reason, sizeof(t->info.reason), "%s; retry %u of %u", what,
                 t->info.failures, t->info.max_retries);
        make_ready(ts, id);
        return;
    }
    if (!t->info.retry_exits)
        snprintf(t->info.reason, sizeof(t->info.reason), "%s (exits not retried)", what);
    else
        snprintf(t->info.reason, sizeof(t->info.reason), "%s after %u attempts", what,
                 t->info.attempts);
    fail(ts, id, now);
}

/* --- create / destroy --------------------------------------------------------- */

static int check_member(const task_member *m, mu_error *errp)
{
    if (m->gpus > TASK_MAX_GPUS) {
        errno = EINVAL;
        return errprintf(errp, "member %u: %u GPUs, at most %d are supported", m->id, m->gpus,
                         TASK_MAX_GPUS);
    }
    return 0;
}

static int reserve_members(taskset *ts, uint32_t cap)
{
    if (cap <= ts->cap_members)
        return 0;
    uint32_t ncap = ts->cap_members ? ts->cap_members * 2 : 8;
    if (ncap < cap)
        ncap = cap;
    member *m = mu_realloc(ts->members, (size_t)ncap * sizeof(*m));
    if (!m)
        return -1;
    ts->members = m;
    ts->cap_members = ncap;
    return 0;
}

taskset *taskset_create(const task_member *members, size_t n, mu_error *errp)
{
    if (n > UINT32_MAX / 2) {
        errno = EINVAL;
        errprintf(errp, "too many members");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (check_member(&members[i], errp) < 0)
            return NULL;
        for (size_t j = 0; j < i; j++)
            if (members[j].id == members[i].id) {
                errno = EINVAL;
                errprintf(errp, "member id %u given twice", members[i].id);
                return NULL;
            }
    }
    taskset *ts = mu_calloc(1, sizeof(*ts));
    if (!ts || reserve_members(ts, (uint32_t)n) < 0) {
        mu_free(ts);
        errno = ENOMEM;
        errprintf(errp, "out of memory");
        return NULL;
    }
    ts->timed.by_deadline = true;
    for (size_t i = 0; i < n; i++)
        ts->members[i] = (member){.cap = members[i], .live = true};
    ts->n_members = (uint32_t)n;
    return ts;
}

void taskset_destroy(taskset *ts)
{
    if (!ts)
        return;
    for (uint32_t i = 0; i < ts->n_tasks; i++) {
        mu_free(ts->tasks[i].deps);
        mu_free(ts->tasks[i].dependents);
    }
    mu_free(ts->tasks);
    mu_free(ts->members);
    mu_free(ts->ready.a);
    mu_free(ts->timed.a);
    mu_free(ts);
}

uint32_t taskset_next_id(const taskset *ts)
{
    return ts->n_tasks;
}

/* --- submit ----------------------------------------------------------------- */

static int check_spec(const taskset *ts, const task_spec *s, size_t i, size_t n, bool capacity,
                      mu_error *errp)
{
    uint32_t base = ts->n_tasks;
    if ((unsigned)s->placement > TASK_PLACE_MEMBER_HARD)
        return errprintf(errp, "task %zu: unknown placement %d", i, (int)s->placement);
    if (s->n_after && !s->after)
        return errprintf(errp, "task %zu: %zu dependencies but no list", i, s->n_after);
    for (size_t k = 0; k < s->n_after; k++) {
        uint32_t d = s->after[k];
        if ((uint64_t)d >= (uint64_t)base + n)
            return errprintf(errp, "task %zu: depends on unknown task %u", i, d);
        if (d == base + i)
            return errprintf(errp, "task %zu: depends on itself (a cycle)", i);
        if (d < base &&
            (ts->tasks[d].info.state == TASK_FAILED || ts->tasks[d].info.state == TASK_CANCELLED))
            return errprintf(errp, "task %zu: depends on task %u, which is already %s", i, d,
                             task_state_name(ts->tasks[d].info.state));
    }
    if (!capacity)
        return 0;
    if (s->placement == TASK_PLACE_MEMBER_HARD) {
        uint32_t slot = member_slot(ts, s->member);
        if (slot == NIL || !ts->members[slot].live)
            return errprintf(errp,
                             "task %zu: hard affinity to member %u, which is not in the "
                             "cluster",
                             i, s->member);
        if (!fits_capacity(&ts->members[slot].cap, s->gpus, s->cpus, s->memory_mib))
            return errprintf(errp,
                             "task %zu: needs %u GPUs, %u CPUs, %llu MiB; its member %u has "
                             "only %u, %u, %llu",
                             i, s->gpus, s->cpus, (unsigned long long)s->memory_mib, s->member,
                             ts->members[slot].cap.gpus, ts->members[slot].cap.cpus,
                             (unsigned long long)ts->members[slot].cap.memory_mib);
        return 0;
    }
    for (uint32_t m = 0; m < ts->n_members; m++)
        if (ts->members[m].live &&
            fits_capacity(&ts->members[m].cap, s->gpus, s->cpus, s->memory_mib))
            return 0;
    return errprintf(errp,
                     "task %zu: needs %u GPUs, %u CPUs, %llu MiB, more than any member of the "
                     "cluster has",
                     i, s->gpus, s->cpus, (unsigned long long)s->memory_mib);
}

/* Kahn's algorithm over the batch's edges among themselves (edges to
 * earlier tasks cannot close a cycle: those never depend on new ones). */
static int check_acyclic(const taskset *ts, const task_spec *specs, size_t n, mu_error *errp)
{
    uint32_t base = ts->n_tasks;
    size_t edges = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < specs[i].n_after; k++)
            if (specs[i].after[k] >= base)
                edges++;
    if (!edges)
        return 0;
    uint32_t *indeg = mu_calloc(n, sizeof(*indeg));
    uint32_t *off = mu_calloc(n + 1, sizeof(*off));
    uint32_t *adj = mu_malloc(edges * sizeof(*adj)); /* dep (batch index) -> dependents */
    uint32_t *queue = mu_malloc(n * sizeof(*queue));
    int rc = 0;
    if (!indeg || !off || !adj || !queue) {
        errno = ENOMEM;
        rc = errprintf(errp, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < specs[i].n_after; k++)
            if (specs[i].after[k] >= base) {
                off[specs[i].after[k] - base + 1]++;
                indeg[i]++;
            }
    for (size_t i = 0; i < n; i++)
        off[i + 1] += off[i];
    /* Fill adj using queue as the per-node write cursor. */
    for (size_t i = 0; i < n; i++)
        queue[i] = off[i];
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < specs[i].n_after; k++)
            if (specs[i].after[k] >= base)
                adj[queue[specs[i].after[k] - base]++] = (uint32_t)i;
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++)
        if (!indeg[i])
            queue[tail++] = (uint32_t)i;
    while (head < tail) {
        uint32_t u = queue[head++];
        for (uint32_t e = off[u]; e < off[u + 1]; e++)
            if (--indeg[adj[e]] == 0)
                queue[tail++] = adj[e];
    }
    if (tail < n) {
        for (size_t i = 0; i < n; i++)
            if (indeg[i]) {
                errno = EINVAL;
                rc = errprintf(errp, "task %zu: its dependencies form a cycle", i);
                break;
            }
    }
out:
    mu_free(indeg);
    mu_free(off);
    mu_free(adj);
    mu_free(queue);
    return rc;
}

/* Submission proper; capacity: check that some member can hold each task
 * (not when restoring: members may have changed since). */
static int submit(taskset *ts, const task_spec *specs, size_t n, uint64_t now, uint32_t *first_id,
                  bool capacity, mu_error *errp)
{
    errno = EINVAL;
    if (!n)
        return errprintf(errp, "empty task graph: nothing to submit");
    if (n > UINT32_MAX / 2 - ts->n_tasks)
        return errprintf(errp, "too many tasks");
    for (size_t i = 0; i < n; i++)
        if (check_spec(ts, &specs[i], i, n, capacity, errp) < 0)
            return -1;
    if (check_acyclic(ts, specs, n, errp) < 0)
        return -1;

    /* Reserve everything first: past this block nothing can fail, so a
     * submission is all or nothing. Growing capacity changes nothing seen. */
    uint32_t base = ts->n_tasks, total = base + (uint32_t)n;
    uint32_t **deps = NULL, **dependents = NULL;
    uint32_t *n_dependents = NULL;
    if (total > ts->cap_tasks) {
        uint32_t ncap = ts->cap_tasks ? ts->cap_tasks : 64;
        while (ncap < total)
            ncap = ncap > UINT32_MAX / 2 ? total : ncap * 2;
        task *nt = mu_realloc(ts->tasks, (size_t)ncap * sizeof(*nt));
        if (!nt)
            goto nomem;
        ts->tasks = nt;
        ts->cap_tasks = ncap;
    }
    if (heap_reserve(&ts->ready, ts->cap_tasks) < 0 || heap_reserve(&ts->timed, ts->cap_tasks) < 0)
        goto nomem;
    deps = mu_calloc(n, sizeof(*deps));
    dependents = mu_calloc(n, sizeof(*dependents));
    n_dependents = mu_calloc(n, sizeof(*n_dependents));
    if (!deps || !dependents || !n_dependents)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        if (specs[i].n_after) {
            deps[i] = mu_malloc(specs[i].n_after * sizeof(**deps));
            if (!deps[i])
                goto nomem;
        }
        for (size_t k = 0; k < specs[i].n_after; k++) {
            uint32_t d = specs[i].after[k];
            if (d >= base)
                n_dependents[d - base]++;
            else
                ts->tasks[d].pend++;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (n_dependents[i] && !(dependents[i] = mu_malloc(n_dependents[i] * sizeof(uint32_t))))
            goto nomem;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < specs[i].n_after; k++) {
            task *d = specs[i].after[k] < base ? &ts->tasks[specs[i].after[k]] : NULL;
            if (!d || !d->pend)
                continue;
            uint32_t need = d->n_dependents + d->pend;
            if (need > d->cap_dependents) {
                uint32_t ncap = d->cap_dependents ? d->cap_dependents : 4;
                while (ncap < need)
                    ncap *= 2;
                uint32_t *a = mu_realloc(d->dependents, (size_t)ncap * sizeof(*a));
                if (!a)
                    goto nomem;
                d->dependents = a;
                d->cap_dependents = ncap;
            }
            d->pend = 0;
        }

    /* Commit. */
    for (size_t i = 0; i < n; i++) {
        const task_spec *s = &specs[i];
        task *t = &ts->tasks[base + i];
        memset(t, 0, sizeof(*t));
        t->info.id = base + (uint32_t)i;
        t->info.state = TASK_WAITING;
        t->info.gpus = s->gpus;
        t->info.cpus = s->cpus;
        t->info.memory_mib = s->memory_mib;
        t->info.placement = s->placement;
        t->info.affinity = s->member;
        t->info.max_retries = s->max_retries ? s->max_retries : TASK_DEFAULT_RETRIES;
        t->info.retry_exits = s->retry_exits;
        t->info.timeout_ms = s->timeout_ms;
        t->info.member = TASK_NO_MEMBER;
        t->info.exit_code = -1;
        t->info.submitted_at = now;
        t->deps = deps[i];
        t->n_deps = (uint32_t)s->n_after;
        t->dependents = dependents[i];
        t->cap_dependents = n_dependents[i];
        t->hpos = t->link = t->mslot = NIL;
        ts->by_state[TASK_WAITING]++;
    }
    ts->n_tasks = total;
    for (size_t i = 0; i < n; i++) {
        task *t = &ts->tasks[base + i];
        for (size_t k = 0; k < specs[i].n_after; k++) {
            uint32_t d = specs[i].after[k];
            t->deps[k] = d;
            task *dt = &ts->tasks[d];
            dt->dependents[dt->n_dependents++] = base + (uint32_t)i;
            if (dt->info.state != TASK_SUCCEEDED)
                t->unfinished++;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!ts->tasks[base + i].unfinished)
            make_ready(ts, base + (uint32_t)i);
    mu_free(deps);
    mu_free(dependents);
    mu_free(n_dependents);
    if (first_id)
        *first_id = base;
    return 0;

nomem:
    for (size_t i = 0; i < n; i++) {
        if (deps)
            mu_free(deps[i]);
        if (dependents)
            mu_free(dependents[i]);
        for (size_t k = 0; k < specs[i].n_after; k++)
            if (specs[i].after[k] < base)
                ts->tasks[specs[i].after[k]].pend = 0;
    }
    mu_free(deps);
    mu_free(dependents);
    mu_free(n_dependents);
    errno = ENOMEM;
    return errprintf(errp, "out of memory");
}

int taskset_submit(taskset *ts, const task_spec *specs, size_t n, uint64_t now, uint32_t *first_id,
                   mu_error *errp)
{
    return submit(ts, specs, n, now, first_id, true, errp);
}

/* --- dispatch, outcomes ------------------------------------------------------ */

size_t taskset_dispatch(taskset *ts, uint64_t now, task_start *out, size_t max)
{
    size_t started = 0, skipped = 0;
    uint32_t skip_list = NIL;
    while (started < max && ts->ready.n) {
        uint32_t id = ts->ready.a[0];
        heap_remove(ts, &ts->ready, id);
        task *t = &ts->tasks[id];
        uint32_t slot = place(ts, t);
        if (slot == NIL) {
            t->link = skip_list;
            skip_list = id;
            if (++skipped >= TASK_BACKFILL_WINDOW)
                break;
            continue;
        }
        member *m = &ts->members[slot];
        t->info.gpu_mask = pick_gpus(m, t->info.gpus);
        m->gpus_used |= t->info.gpu_mask;
        m->cpus_used += t->info.cpus;
        m->mem_used += t->info.memory_mib;
        m->running++;
        t->mslot = slot;
        t->info.member = m->cap.id;
        t->info.attempts++;
        t->info.started_at = now;
        set_state(ts, t, TASK_RUNNING);
        if (t->info.timeout_ms) {
            t->deadline = now + t->info.timeout_ms;
            heap_push(ts, &ts->timed, id);
        }
        out[started++] = (task_start){.task = id,
                                      .member = m->cap.id,
                                      .attempt = t->info.attempts,
                                      .gpu_mask = t->info.gpu_mask};
    }
    /* Those that fit nowhere keep their place: the heap is ordered by id. */
    while (skip_list != NIL) {
        uint32_t id = skip_list;
        skip_list = ts->tasks[id].link;
        ts->tasks[id].link = NIL;
        heap_push(ts, &ts->ready, id);
    }
    return started;
}

/* The task `id` if it is running attempt `attempt` on `member_id`; else
 * NULL with errno ENOENT or ESTALE and a reason. */
static task *running_attempt(taskset *ts, uint32_t id, uint32_t member_id, uint32_t attempt,
                             mu_error *errp)
{
    if (id >= ts->n_tasks) {
        errno = ENOENT;
        errprintf(errp, "no task %u", id);
        return NULL;
    }
    task *t = &ts->tasks[id];
    if (t->info.state != TASK_RUNNING || t->info.member != member_id ||
        t->info.attempts != attempt) {
        errno = ESTALE;
        errprintf(errp,
                  "task %u attempt %u on member %u: stale report (the task is %s, attempt %u)", id,
                  attempt, member_id, task_state_name(t->info.state), t->info.attempts);
        return NULL;
    }
    return t;
}

int taskset_finished(taskset *ts, uint32_t id, uint32_t member_id, uint32_t attempt, int exit_code,
                     uint64_t now, mu_error *errp)
{
    task *t = running_attempt(ts, id, member_id, attempt, errp);
    if (!t)
        return -1;
    release(ts, t);
    t->info.exit_code = exit_code;
    if (exit_code == 0) {
        t->info.finished_at = now;
        t->info.reason[0] = '\0';
        set_state(ts, t, TASK_SUCCEEDED);
        for (uint32_t i = 0; i < t->n_dependents; i++) {
            task *d = &ts->tasks[t->dependents[i]];
            if (d->info.state == TASK_WAITING && --d->unfinished == 0)
                make_ready(ts, t->dependents[i]);
        }
        return 0;
    }
    char what[48];
    snprintf(what, sizeof(what), "exited with code %d", exit_code);
    attempt_failed(ts, id, now, what);
    return 0;
}

int taskset_attempt_failed(taskset *ts, uint32_t id, uint32_t member_id, uint32_t attempt,
                           int exit_code, const char *what, uint64_t now, mu_error *errp)
{
    task *t = running_attempt(ts, id, member_id, attempt, errp);
    if (!t)
        return -1;
    release(ts, t);
    t->info.exit_code = exit_code;
    char buf[80];
    snprintf(buf, sizeof(buf), "%s", what && *what ? what : "failed");
    attempt_failed(ts, id, now, buf);
    return 0;
}

/* Running task `id` was lost with its member `member_id` (resources
 * already released): never back there; requeued, or failed when it cannot
 * go anywhere else. */
static void lose(taskset *ts, uint32_t id, uint32_t member_id, uint64_t now, const char *how)
{
    task *t = &ts->tasks[id];
    if (t->info.losses < TASK_MAX_LOSSES)
        t->excluded[t->info.losses] = member_id;
    t->info.losses++;
    if (t->info.placement == TASK_PLACE_MEMBER_HARD) {
        snprintf(t->info.reason, sizeof(t->info.reason), "member %u, its hard affinity, %s",
                 member_id, how);
        fail(ts, id, now);
    } else if (t->info.losses > TASK_MAX_LOSSES) {
        snprintf(t->info.reason, sizeof(t->info.reason), "lost %u times (last: member %u %s)",
                 t->info.losses, member_id, how);
        fail(ts, id, now);
    } else {
        snprintf(t->info.reason, sizeof(t->info.reason), "member %u %s; requeued", member_id, how);
        make_ready(ts, id);
    }
}

int taskset_attempt_lost(taskset *ts, uint32_t id, uint32_t member_id, uint32_t attempt,
                         uint64_t now, mu_error *errp)
{
    task *t = running_attempt(ts, id, member_id, attempt, errp);
    if (!t)
        return -1;
    release(ts, t);
    lose(ts, id, member_id, now, "lost the attempt");
    return 0;
}

size_t taskset_member_lost(taskset *ts, uint32_t member_id, uint64_t now)
{
    uint32_t slot = member_slot(ts, member_id);
    if (slot == NIL || !ts->members[slot].live)
        return 0;
    size_t n = 0;
    for (uint32_t id = 0; id < ts->n_tasks && ts->members[slot].running; id++) {
        task *t = &ts->tasks[id];
        if (t->info.state != TASK_RUNNING || t->mslot != slot)
            continue;
        n++;
        release(ts, t);
        lose(ts, id, member_id, now, "was lost");
    }
    member *m = &ts->members[slot];
    m->live = false;
    m->gpus_used = 0;
    m->cpus_used = 0;
    m->mem_used = 0;
    m->running = 0;
    return n;
}

int taskset_member_add(taskset *ts, const task_member *nm, mu_error *errp)
{
    if (check_member(nm, errp) < 0)
        return -1;
    uint32_t slot = member_slot(ts, nm->id);
    if (slot != NIL && ts->members[slot].live) {
        errno = EEXIST;
        return errprintf(errp, "member %u is already in the cluster", nm->id);
    }
    if (slot == NIL) {
        if (reserve_members(ts, ts->n_members + 1) < 0) {
            errno = ENOMEM;
            return errprintf(errp, "out of memory");
        }
        slot = ts->n_members++;
    }
    ts->members[slot] = (member){.cap = *nm, .live = true};
    return 0;
}

bool taskset_member_live(const taskset *ts, uint32_t member_id)
{
    uint32_t slot = member_slot(ts, member_id);
    return slot != NIL && ts->members[slot].live;
}

int taskset_member_hold(taskset *ts, uint32_t member_id, bool hold)
{
    uint32_t slot = member_slot(ts, member_id);
    if (slot == NIL || !ts->members[slot].live) {
        errno = ENOENT;
        return -1;
    }
    ts->members[slot].held = hold;
    return 0;
}

int taskset_cancel(taskset *ts, uint32_t id, const char *why, uint64_t now, bool *was_running,
                   mu_error *errp)
{
    if (was_running)
        *was_running = false;
    if (id >= ts->n_tasks) {
        errno = ENOENT;
        return errprintf(errp, "no task %u", id);
    }
    task *t = &ts->tasks[id];
    switch (t->info.state) {
    case TASK_SUCCEEDED:
    case TASK_FAILED:
    case TASK_CANCELLED:
        errno = EALREADY;
        return errprintf(errp, "task %u is already %s", id, task_state_name(t->info.state));
    case TASK_RUNNING:
        release(ts, t);
        if (was_running)
            *was_running = true;
        break;
    case TASK_READY:
        heap_remove(ts, &ts->ready, id);
        break;
    case TASK_WAITING:
        break;
    }
    t->info.finished_at = now;
    snprintf(t->info.reason, sizeof(t->info.reason), "%s", why && *why ? why : "cancelled");
    set_state(ts, t, TASK_CANCELLED);
    fail_dependents(ts, id, now);
    return 0;
}

size_t taskset_tick(taskset *ts, uint64_t now, task_stop *out, size_t max)
{
    size_t n = 0;
    while (n < max && ts->timed.n && ts->tasks[ts->timed.a[0]].deadline <= now) {
        uint32_t id = ts->timed.a[0];
        task *t = &ts->tasks[id];
        out[n++] = (task_stop){.task = id, .member = t->info.member, .attempt = t->info.attempts};
        release(ts, t);
        t->info.exit_code = -1;
        char what[48];
        snprintf(what, sizeof(what), "timed out after %u ms", t->info.timeout_ms);
        attempt_failed(ts, id, now, what);
    }
    return n;
}

uint64_t taskset_next_deadline(const taskset *ts)
{
    return ts->timed.n ? ts->tasks[ts->timed.a[0]].deadline : TASK_NO_DEADLINE;
}

const task_info *taskset_get(const taskset *ts, uint32_t id)
{
    return id < ts->n_tasks ? &ts->tasks[id].info : NULL;
}

size_t taskset_count(const taskset *ts)
{
    return ts->n_tasks;
}

size_t taskset_count_state(const taskset *ts, task_state s)
{
    return (unsigned)s < TASK_STATES ? ts->by_state[s] : 0;
}

size_t taskset_member_count(const taskset *ts)
{
    size_t n = 0;
    for (uint32_t i = 0; i < ts->n_members; i++)
        n += ts->members[i].live;
    return n;
}

size_t taskset_lost_on(const taskset *ts, uint32_t id, const uint32_t **members)
{
    if (id >= ts->n_tasks) {
        *members = NULL;
        return 0;
    }
    const task *t = &ts->tasks[id];
    *members = t->excluded;
    return t->info.losses < TASK_MAX_LOSSES ? t->info.losses : TASK_MAX_LOSSES;
}

/* --- restore ------------------------------------------------------------------ */

int taskset_restore(taskset *ts, const task_restore *tr, size_t n, uint64_t now, mu_error *errp)
{
    if (ts->n_tasks) {
        errno = EINVAL;
        return errprintf(errp, "tasks can only be restored into an empty set");
    }
    if (!n)
        return 0;
    task_spec *specs = mu_calloc(n, sizeof(*specs));
    if (!specs) {
        errno = ENOMEM;
        return errprintf(errp, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        specs[i] = tr[i].spec;
        if ((unsigned)tr[i].state >= TASK_STATES) {
            mu_free(specs);
            errno = EINVAL;
            return errprintf(errp, "task %zu: bad state %d", i, (int)tr[i].state);
        }
    }
    /* The graph as submitted (its checks: ids, cycles), all waiting or ready. */
    int rc = submit(ts, specs, n, now, NULL, false, errp);
    mu_free(specs);
    if (rc < 0)
        return -1;
    ts->ready.n = 0;
    for (uint32_t id = 0; id < ts->n_tasks; id++) {
        task *t = &ts->tasks[id];
        const task_restore *r = &tr[id];
        ts->by_state[t->info.state]--;
        t->hpos = NIL;
        t->info.state = r->state;
        ts->by_state[r->state]++;
        t->info.attempts = r->attempts;
        t->info.failures = r->failures;
        t->info.losses = r->losses;
        t->info.exit_code = r->exit_code;
        t->info.member = r->member;
        t->info.gpu_mask = r->gpu_mask;
        t->info.submitted_at = r->submitted_at;
        t->info.started_at = r->started_at;
        t->info.finished_at = r->finished_at;
        snprintf(t->info.reason, sizeof(t->info.reason), "%s", r->reason ? r->reason : "");
        size_t nl = r->n_lost_on < TASK_MAX_LOSSES ? r->n_lost_on : TASK_MAX_LOSSES;
        if (nl > r->losses)
            nl = r->losses;
        for (size_t k = 0; k < nl; k++)
            t->excluded[k] = r->lost_on[k];
        /* Fewer saved than lost: the list is what it is, a lower bound. */
        if (nl < r->losses && r->losses <= TASK_MAX_LOSSES)
            t->info.losses = (uint32_t)nl;
    }
    /* Recount dependencies, then place each unfinished task again. */
    for (uint32_t id = 0; id < ts->n_tasks; id++) {
        task *t = &ts->tasks[id];
        t->unfinished = 0;
        for (uint32_t k = 0; k < t->n_deps; k++)
            t->unfinished += ts->tasks[t->deps[k]].info.state != TASK_SUCCEEDED;
    }
    for (uint32_t id = 0; id < ts->n_tasks; id++) {
        task *t = &ts->tasks[id];
        switch (t->info.state) {
        case TASK_RUNNING: {
            uint32_t slot = member_slot(ts, t->info.member);
            member *m = slot != NIL ? &ts->members[slot] : NULL;
            bool holds =
                m && m->live && !t->unfinished && popcount64(t->info.gpu_mask) == t->info.gpus &&
                !(t->info.gpu_mask & ~all_gpus(m->cap.gpus)) &&
                !(t->info.gpu_mask & m->gpus_used) && m->cpus_used + t->info.cpus <= m->cap.cpus &&
                t->info.memory_mib <= m->cap.memory_mib - m->mem_used;
            if (holds) {
                m->gpus_used |= t->info.gpu_mask;
                m->cpus_used += t->info.cpus;
                m->mem_used += t->info.memory_mib;
                m->running++;
                t->mslot = slot;
                if (t->info.timeout_ms) {
                    t->deadline = t->info.started_at + t->info.timeout_ms;
                    heap_push(ts, &ts->timed, id);
                }
            } else if (t->unfinished) {
                set_state(ts, t, TASK_WAITING);
            } else {
                /* Its member is gone (or it no longer fits there): as lost. */
                lose(ts, id, t->info.member, now, "is gone after a restart");
            }
            break;
        }
        case TASK_WAITING:
        case TASK_READY:
            set_state(ts, t, TASK_WAITING);
            if (!t->unfinished)
                make_ready(ts, id);
            break;
        default:
            break;
        }
    }
    /* Whatever waits on a task that failed or was cancelled fails with it. */
    for (uint32_t id = 0; id < ts->n_tasks; id++) {
        task_state st = ts->tasks[id].info.state;
        if (st == TASK_FAILED || st == TASK_CANCELLED)
            fail_dependents(ts, id, now);
    }
    return taskset_check(ts, errp);
}

/* --- invariants --------------------------------------------------------------- */

int taskset_check(const taskset *ts, mu_error *errp)
{
    size_t counts[TASK_STATES] = {0};
    uint64_t *gpus = mu_calloc(ts->n_members ? ts->n_members : 1, sizeof(*gpus));
    uint64_t *cpus = mu_calloc(ts->n_members ? ts->n_members : 1, sizeof(*cpus));
    uint64_t *mem = mu_calloc(ts->n_members ? ts->n_members : 1, sizeof(*mem));
    uint32_t *running = mu_calloc(ts->n_members ? ts->n_members : 1, sizeof(*running));
    int rc = 0;
    if (!gpus || !cpus || !mem || !running) {
        rc = errprintf(errp, "out of memory");
        goto out;
    }
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        rc = errprintf(errp, __VA_ARGS__);                                                         \
        goto out;                                                                                  \
    } while (0)
    for (uint32_t id = 0; id < ts->n_tasks; id++) {
        const task *t = &ts->tasks[id];
        task_state s = t->info.state;
        if ((unsigned)s >= TASK_STATES)
            FAIL("task %u: bad state %d", id, (int)s);
        counts[s]++;
        if ((s == TASK_RUNNING) != (t->mslot != NIL))
            FAIL("task %u: %s but %s a member", id, task_state_name(s),
                 t->mslot != NIL ? "holds" : "holds no");
        if (s == TASK_RUNNING) {
            uint32_t m = t->mslot;
            if (m >= ts->n_members || !ts->members[m].live)
                FAIL("task %u: running on a member that is not live", id);
            if (ts->members[m].cap.id != t->info.member)
                FAIL("task %u: member id mismatch", id);
            if (popcount64(t->info.gpu_mask) != t->info.gpus)
                FAIL("task %u: holds %u GPU indices, needs %u", id, popcount64(t->info.gpu_mask),
                     t->info.gpus);
            if (gpus[m] & t->info.gpu_mask)
                FAIL("task %u: a GPU index of member %u is given twice", id, t->info.member);
            if (t->info.gpu_mask & ~all_gpus(ts->members[m].cap.gpus))
                FAIL("task %u: GPU index beyond member %u's GPUs", id, t->info.member);
            if (excluded(t, t->info.member))
                FAIL("task %u: running on member %u, which lost it before", id, t->info.member);
            gpus[m] |= t->info.gpu_mask;
            cpus[m] += t->info.cpus;
            mem[m] += t->info.memory_mib;
            running[m]++;
            if ((t->hpos != NIL) != (t->info.timeout_ms != 0))
                FAIL("task %u: running, timeout %u, deadline heap membership wrong", id,
                     t->info.timeout_ms);
        }
        if (s == TASK_READY &&
            (t->hpos == NIL || t->hpos >= ts->ready.n || ts->ready.a[t->hpos] != id))
            FAIL("task %u: ready but not queued", id);
        if (s != TASK_READY && s != TASK_RUNNING && t->hpos != NIL)
            FAIL("task %u: %s but in a queue", id, task_state_name(s));
        uint32_t unfinished = 0;
        for (uint32_t k = 0; k < t->n_deps; k++)
            unfinished += ts->tasks[t->deps[k]].info.state != TASK_SUCCEEDED;
        if (s == TASK_WAITING && (!unfinished || unfinished != t->unfinished))
            FAIL("task %u: waiting with %u unfinished dependencies (counter %u)", id, unfinished,
                 t->unfinished);
        if ((s == TASK_READY || s == TASK_RUNNING || s == TASK_SUCCEEDED) && unfinished)
            FAIL("task %u: %s with %u unfinished dependencies", id, task_state_name(s), unfinished);
        if (s == TASK_FAILED || s == TASK_CANCELLED)
            for (uint32_t k = 0; k < t->n_dependents; k++) {
                task_state ds = ts->tasks[t->dependents[k]].info.state;
                if (ds != TASK_FAILED && ds != TASK_CANCELLED)
                    FAIL("task %u: %s, but its dependent %u is %s", id, task_state_name(s),
                         t->dependents[k], task_state_name(ds));
            }
    }
    for (int s = 0; s < TASK_STATES; s++)
        if (counts[s] != ts->by_state[s])
            FAIL("%zu tasks %s, counter says %zu", counts[s], task_state_name((task_state)s),
                 ts->by_state[s]);
    if (ts->ready.n != counts[TASK_READY])
        FAIL("ready queue holds %u, %zu tasks ready", ts->ready.n, counts[TASK_READY]);
    for (uint32_t i = 1; i < ts->ready.n; i++)
        if (ts->ready.a[(i - 1) / 2] > ts->ready.a[i])
            FAIL("ready queue out of order");
    for (uint32_t m = 0; m < ts->n_members; m++) {
        const member *mb = &ts->members[m];
        if (mb->gpus_used != gpus[m] || mb->cpus_used != cpus[m] || mb->mem_used != mem[m] ||
            mb->running != running[m])
            FAIL("member %u: resources in use do not match its running tasks", mb->cap.id);
        if (cpus[m] > mb->cap.cpus || mem[m] > mb->cap.memory_mib ||
            (gpus[m] & ~all_gpus(mb->cap.gpus)))
            FAIL("member %u: more in use than it has", mb->cap.id);
    }
#undef FAIL
out:
    mu_free(gpus);
    mu_free(cpus);
    mu_free(mem);
    mu_free(running);
    return rc;
}
