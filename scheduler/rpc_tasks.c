/* rpc_tasks.c - the tasks of each cluster, between clients, the core and
 * agents.
 *
 * The core (core/tasks.h) decides; this file keeps what the core does not
 * need to decide (each task's accepted TaskSpec, its output, its result),
 * carries the decisions to agents and their reports back, and saves every
 * change in the broker's batch (persist.c), so that a start leaves for an
 * agent, and an exit is acknowledged to one, only once the change is on
 * disk.
 *
 * Members: the core's member ids are worker registry slots. A cluster's
 * task members are its seated members that are not lost; one is held (no
 * new tasks) while its agent is not connected or has not yet said, since
 * it last registered, what it runs (TaskReport). That is how a broker
 * restart, or an agent restart, finds out which attempts are still alive
 * without running anything twice by mistake.
 *
 * Memory: a task's output is kept in a bounded ring (tasklog.h) while the
 * task can still run; once it is final, the ring's content is saved with
 * the result and dropped, and `logs` reads it from the store.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker_int.h"
#include "log.h"
#include "strutil.h"
#include "tasklog.h"
#include "tasks.h"
#include "wire.h"

#define NIL UINT32_MAX
/* The broker's own backstop for a task's timeout: the agent enforces the
 * timeout itself and reports it; the core steps in only when the agent
 * does not (gone silent), this long after. */
#define TIMEOUT_BACKSTOP_MS   30000u
#define TASKS_PER_SUBMIT_MAX  100000u
#define TASK_TIMEOUT_MAX_MS   (7u * 24u * 3600u * 1000u)
#define TASK_NAME_MAX         64
#define TASK_RETRIES_MAX      100
#define TASK_LOGS_REPLY_BYTES (64u * 1024u)
#define DISPATCH_BATCH        256

typedef struct trec {
    uint8_t *spec; /* packed TaskSpec as accepted */
    uint32_t spec_len;
    int32_t signal;
    uint32_t result_len;
    uint64_t att_expect; /* next output offset expected of the running attempt */
    uint64_t log_saved;  /* log_total when last saved (0: nothing saved) */
    uint64_t log_total;  /* output bytes, all attempts (the ring's total) */
    tasklog *log;        /* while not final; NULL until there is output */
    uint8_t *result;     /* a result waiting to be saved */
    bool dirty, out_dirty;
} trec;

typedef struct book {
    broker *b;
    const cluster *c; /* valid while the core lives (books die with it) */
    taskset *ts;
    trec *r;
    uint32_t n, cap;
    uint32_t *members; /* worker slots ever added to ts */
    uint32_t n_members, cap_members;
    bool want_dispatch, ended;
} book;

typedef struct dirty_ref {
    uint32_t cslot, number;
} dirty_ref;

struct task_books {
    book **books; /* by cluster slot; NULL: no task ever */
    size_t cap;
    uint32_t *live; /* cluster slots whose book is not ended */
    size_t n_live, cap_live;
    dirty_ref *dirty;
    size_t n_dirty, cap_dirty;
    uint8_t *reported; /* by worker slot: told us what it runs since registering */
    size_t cap_reported;
};

/* --- small helpers ------------------------------------------------------------------- */

static bool is_final(task_state s)
{
    return s == TASK_SUCCEEDED || s == TASK_FAILED || s == TASK_CANCELLED;
}

static Muster__TaskSpec *unpack_spec(const trec *r)
{
    return muster__task_spec__unpack(mu_protobuf_allocator(), r->spec_len, r->spec);
}

static void free_spec(Muster__TaskSpec *s)
{
    if (s)
        muster__task_spec__free_unpacked(s, mu_protobuf_allocator());
}

static book *book_at(const broker *b, uint32_t cslot)
{
    const struct task_books *tb = b->tasks;
    return tb && cslot < tb->cap ? tb->books[cslot] : NULL;
}

static void mark_dirty(broker *b, book *bk, uint32_t number, bool output)
{
    struct task_books *tb = b->tasks;
    trec *r = &bk->r[number];
    if (output)
        r->out_dirty = true;
    if (r->dirty)
        return;
    if (mu_grow((void **)&tb->dirty, &tb->cap_dirty, tb->n_dirty + 1, sizeof(dirty_ref)) < 0) {
        persist_fail(b, "out of memory noting a task change");
        return;
    }
    r->dirty = true;
    tb->dirty[tb->n_dirty++] = (dirty_ref){bk->c->slot, number};
}

static bool reported(const broker *b, uint32_t wslot)
{
    const struct task_books *tb = b->tasks;
    return wslot < tb->cap_reported && tb->reported[wslot];
}

static bool connected(const broker *b, uint32_t wslot)
{
    return wslot < b->slot_peer_cap && b->slot_peer[wslot].len;
}

/* Send env to the agent of worker slot wslot, if connected. */
static int send_to_slot(broker *b, uint32_t wslot, Muster__Envelope *env)
{
    const worker *w = registry_at(b->reg, wslot);
    zs_peer peer;
    if (!w || broker_worker_peer(b, w, &peer) < 0)
        return -1;
    broker_send_agent(b, &peer, env);
    return 0;
}

static void send_kill(broker *b, uint32_t wslot, const char *cid, uint32_t number, uint32_t attempt,
                      const char *why)
{
    Muster__TaskKill k = MUSTER__TASK_KILL__INIT;
    k.cluster_id = (char *)cid;
    k.number = number;
    k.attempt = attempt;
    k.reason = (char *)why;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_TASK_KILL;
    env.task_kill = &k;
    send_to_slot(b, wslot, &env);
}

/* --- the observer: every state change is saved and announced ------------------------ */

static void on_task_change(void *arg, uint32_t number, task_state from, task_state to)
{
    book *bk = arg;
    broker *b = bk->b;
    const task_info *ti = taskset_get(bk->ts, number);
    mark_dirty(b, bk, number, is_final(to) || from == TASK_RUNNING);
    char cid[ID_TEXT_LEN], frame[64], topic[32], wid[ID_TEXT_LEN] = "";
    id_format(&bk->c->id, cid);
    const worker *w = ti->member != TASK_NO_MEMBER ? registry_at(b->reg, ti->member) : NULL;
    if (w && (to == TASK_RUNNING || from == TASK_RUNNING))
        id_format(&w->id, wid);
    snprintf(frame, sizeof(frame), "task.%s", cid);
    snprintf(topic, sizeof(topic), "task.%s", task_state_name(to));
    if (to == TASK_FAILED || (from == TASK_RUNNING && to == TASK_READY))
        log_warn(topic, "cluster=%s task=%u attempt=%u worker=%s reason=\"%s\"", cid, number,
                 ti->attempts, *wid ? wid : "-", ti->reason);
    else
        log_debug(topic, "cluster=%s task=%u attempt=%u worker=%s", cid, number, ti->attempts,
                  *wid ? wid : "-");
    Muster__Event ev = MUSTER__EVENT__INIT;
    ev.topic = topic;
    ev.cluster_id = cid;
    ev.cluster_state = (char *)cluster_state_name(bk->c->state);
    ev.worker_id = wid;
    ev.detail = (char *)ti->reason;
    ev.task = number;
    ev.task_state = (char *)task_state_name(to);
    broker_publish(b, frame, &ev);
    broker_notify(b, bk->c->owner, &ev);
    if (to != TASK_WAITING && to != TASK_SUCCEEDED)
        bk->want_dispatch = true; /* resources freed, or something to start */
    if (to == TASK_SUCCEEDED)
        bk->want_dispatch = true; /* dependents may be ready */
}

/* --- books ---------------------------------------------------------------------------- */

static void book_destroy(book *bk)
{
    if (!bk)
        return;
    for (uint32_t i = 0; i < bk->n; i++) {
        mu_free(bk->r[i].spec);
        mu_free(bk->r[i].result);
        tasklog_destroy(bk->r[i].log);
    }
    mu_free(bk->r);
    mu_free(bk->members);
    taskset_destroy(bk->ts);
    mu_free(bk);
}

static int live_add(struct task_books *tb, uint32_t cslot)
{
    if (mu_grow((void **)&tb->live, &tb->cap_live, tb->n_live + 1, sizeof(uint32_t)) < 0)
        return -1;
    tb->live[tb->n_live++] = cslot;
    return 0;
}

static void live_remove(struct task_books *tb, uint32_t cslot)
{
    for (size_t i = 0; i < tb->n_live; i++)
        if (tb->live[i] == cslot) {
            tb->live[i] = tb->live[--tb->n_live];
            return;
        }
}

static bool seated_and_serving(const cluster *c, uint32_t wslot)
{
    for (uint32_t i = 0; i < c->n_members; i++)
        if (c->members[i].worker == wslot && !c->members[i].lost)
            return true;
    return false;
}

static void set_hold(broker *b, book *bk, uint32_t wslot)
{
    bool hold = !connected(b, wslot) || !reported(b, wslot);
    taskset_member_hold(bk->ts, wslot, hold);
    if (!hold)
        bk->want_dispatch = true;
}

/* Make the taskset's members the cluster's serving members. */
static void sync_members(broker *b, book *bk)
{
    const cluster *c = bk->c;
    for (uint32_t i = 0; i < c->n_members; i++) {
        const cluster_member *m = &c->members[i];
        if (m->worker == NIL || m->lost || taskset_member_live(bk->ts, m->worker))
            continue;
        const worker *w = registry_at(b->reg, m->worker);
        if (!w)
            continue;
        task_member tm = {.id = w->slot,
                          .gpus = w->gpu_count,
                          .cpus = (uint16_t)(w->cpu_cores > UINT16_MAX ? UINT16_MAX : w->cpu_cores),
                          .memory_mib = w->memory_mib};
        bool known = false;
        for (uint32_t k = 0; k < bk->n_members; k++)
            known |= bk->members[k] == w->slot;
        mu_error err;
        size_t cap = bk->cap_members;
        if ((!known && mu_grow((void **)&bk->members, &cap, (size_t)bk->n_members + 1,
                               sizeof(uint32_t)) < 0) ||
            taskset_member_add(bk->ts, &tm, &err) < 0) {
            log_warn("task.member_add_failed", "worker_slot=%u", w->slot);
            continue;
        }
        bk->cap_members = (uint32_t)cap;
        if (!known)
            bk->members[bk->n_members++] = w->slot;
        set_hold(b, bk, w->slot);
        bk->want_dispatch = true;
    }
    for (uint32_t k = 0; k < bk->n_members; k++) {
        uint32_t ws = bk->members[k];
        if (taskset_member_live(bk->ts, ws) && !seated_and_serving(c, ws)) {
            size_t n = taskset_member_lost(bk->ts, ws, b->now);
            if (n)
                log_info("task.member_lost", "worker_slot=%u requeued=%zu", ws, n);
            bk->want_dispatch = true;
        }
    }
}

static book *book_create(broker *b, const cluster *c, mu_error *errp)
{
    struct task_books *tb = b->tasks;
    if (mu_grow((void **)&tb->books, &tb->cap, (size_t)c->slot + 1, sizeof(book *)) < 0)
        return errprintf(errp, "out of memory"), NULL;
    book *bk = mu_calloc(1, sizeof(*bk));
    if (!bk || !(bk->ts = taskset_create(NULL, 0, errp)) || live_add(tb, c->slot) < 0) {
        if (bk)
            taskset_destroy(bk->ts);
        mu_free(bk);
        return errprintf(errp, "out of memory"), NULL;
    }
    bk->b = b;
    bk->c = c;
    tb->books[c->slot] = bk;
    sync_members(b, bk);
    return bk;
}

static trec *rec_reserve(book *bk, uint32_t more)
{
    size_t cap = bk->cap;
    if (mu_grow((void **)&bk->r, &cap, (size_t)bk->n + more, sizeof(trec)) < 0)
        return NULL;
    bk->cap = (uint32_t)cap;
    return bk->r;
}

/* The ring of a task's output, created (and filled from the store) when
 * first needed. NULL when out of memory. */
static tasklog *rec_log(broker *b, book *bk, uint32_t number)
{
    trec *r = &bk->r[number];
    if (r->log)
        return r->log;
    if (!(r->log = tasklog_create(b->cfg.task_log_bytes)))
        return NULL;
    if (r->log_total) {
        uint8_t *res, *log;
        size_t rlen, llen;
        uint64_t first;
        mu_error err;
        if (store_get_task_output(b->st, &bk->c->id, number, &res, &rlen, &log, &llen, &first,
                                  &err) == 0) {
            tasklog_restore(r->log, log, llen, first);
            mu_free(res);
            mu_free(log);
        }
        if (tasklog_total(r->log) < r->log_total) {
            /* Output the broker never saved (it restarted meanwhile): the
             * stream goes on from what was saved, with a note. */
            static const char note[] = "\n[... output lost in a broker restart ...]\n";
            tasklog_append(r->log, note, sizeof(note) - 1);
        }
    }
    r->log_total = tasklog_total(r->log);
    return r->log;
}

static void log_note(broker *b, book *bk, uint32_t number, const char *text)
{
    tasklog *l = rec_log(b, bk, number);
    if (!l)
        return;
    tasklog_append(l, text, strlen(text));
    bk->r[number].log_total = tasklog_total(l);
}

/* --- dispatch -------------------------------------------------------------------------- */

static void send_start(broker *b, book *bk, const task_start *st)
{
    trec *r = &bk->r[st->task];
    const worker *w = registry_at(b->reg, st->member);
    Muster__TaskSpec *spec = unpack_spec(r);
    char cid[ID_TEXT_LEN], wid[ID_TEXT_LEN];
    id_format(&bk->c->id, cid);
    mu_error err;
    if (!spec || !w) {
        taskset_attempt_failed(bk->ts, st->task, st->member, st->attempt, -1,
                               "the broker could not read the task back", b->now, &err);
        free_spec(spec);
        return;
    }
    id_format(&w->id, wid);
    uint32_t gpus[TASK_MAX_GPUS];
    size_t n_gpus = 0;
    for (uint32_t i = 0; i < TASK_MAX_GPUS; i++)
        if (st->gpu_mask & (UINT64_C(1) << i))
            gpus[n_gpus++] = i;
    Muster__TaskStart ts = MUSTER__TASK_START__INIT;
    ts.cluster_id = cid;
    ts.number = st->task;
    ts.attempt = st->attempt;
    ts.argv = spec->argv;
    ts.n_argv = spec->n_argv;
    ts.env = spec->env;
    ts.n_env = spec->n_env;
    ts.cwd = spec->cwd;
    ts.gpu_indices = gpus;
    ts.n_gpu_indices = n_gpus;
    ts.timeout_ms = spec->timeout_ms;
    ts.result_file = spec->result_file;
    ts.result_max_bytes = b->cfg.task_result_max_bytes;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_TASK_START;
    env.task_start = &ts;
    if (send_to_slot(b, st->member, &env) < 0) {
        /* Held members get nothing, so this is a race with a disconnect:
         * the attempt never left; run it elsewhere. */
        taskset_attempt_lost(bk->ts, st->task, st->member, st->attempt, b->now, &err);
        free_spec(spec);
        return;
    }
    char head[160];
    snprintf(head, sizeof(head), "%s--- attempt %u on %.8s (%.64s) ---\n",
             r->log_total && !(r->log && tasklog_total(r->log) == 0) ? "\n" : "", st->attempt, wid,
             w->hostname);
    log_note(b, bk, st->task, head);
    r->att_expect = 0;
    log_info("task.start", "cluster=%s task=%u attempt=%u worker=%s gpus=%zu argv0=\"%.64s\"", cid,
             st->task, st->attempt, wid, n_gpus, spec->n_argv ? spec->argv[0] : "");
    free_spec(spec);
}

static void dispatch_book(broker *b, book *bk)
{
    task_start st[DISPATCH_BATCH];
    for (;;) {
        size_t n = taskset_dispatch(bk->ts, b->now, st, DISPATCH_BATCH);
        for (size_t i = 0; i < n; i++)
            send_start(b, bk, &st[i]);
        if (n < DISPATCH_BATCH)
            break;
    }
}

static void tick_book(broker *b, book *bk)
{
    task_stop st[DISPATCH_BATCH];
    char cid[ID_TEXT_LEN];
    id_format(&bk->c->id, cid);
    for (;;) {
        size_t n = taskset_tick(bk->ts, b->now, st, DISPATCH_BATCH);
        for (size_t i = 0; i < n; i++)
            send_kill(b, st[i].member, cid, st[i].task, st[i].attempt,
                      "timed out (its agent did not report)");
        if (n < DISPATCH_BATCH)
            break;
    }
}

/* The cluster ended: nothing more runs in it. */
static void end_book(broker *b, book *bk)
{
    if (bk->ended)
        return;
    bk->ended = true;
    live_remove(b->tasks, bk->c->slot);
    char why[112], cid[ID_TEXT_LEN];
    snprintf(why, sizeof(why), "cluster %s: %.80s", cluster_state_name(bk->c->state),
             bk->c->end_reason[0] ? bk->c->end_reason : "ended");
    id_format(&bk->c->id, cid);
    for (uint32_t i = 0; i < bk->n; i++) {
        const task_info *ti = taskset_get(bk->ts, i);
        if (is_final(ti->state))
            continue;
        uint32_t member = ti->member, attempt = ti->attempts;
        bool was_running;
        mu_error err;
        if (taskset_cancel(bk->ts, i, why, b->now, &was_running, &err) == 0 && was_running)
            send_kill(b, member, cid, i, attempt, why);
    }
}

void tasks_flush(broker *b)
{
    struct task_books *tb = b->tasks;
    if (!tb)
        return;
    for (size_t i = 0; i < tb->n_live; i++) {
        book *bk = tb->books[tb->live[i]];
        if (taskset_next_deadline(bk->ts) <= b->now)
            tick_book(b, bk);
        if (bk->want_dispatch) {
            bk->want_dispatch = false;
            dispatch_book(b, bk);
        }
    }
}

uint64_t tasks_next_deadline(const broker *b)
{
    const struct task_books *tb = b->tasks;
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; tb && i < tb->n_live; i++) {
        uint64_t d = taskset_next_deadline(tb->books[tb->live[i]]->ts);
        if (d < next)
            next = d;
    }
    return next;
}

/* --- what the core and the broker tell us ------------------------------------------- */

void tasks_cluster_event(broker *b, const cluster *c)
{
    book *bk = book_at(b, c->slot);
    if (!bk || bk->ended)
        return;
    if (!cluster_active(c)) {
        end_book(b, bk);
        return;
    }
    sync_members(b, bk);
}

void tasks_worker_changed(broker *b, const worker *w, bool registered)
{
    struct task_books *tb = b->tasks;
    if (!tb)
        return;
    if (registered) {
        if (mu_grow((void **)&tb->reported, &tb->cap_reported, (size_t)w->slot + 1, 1) == 0)
            tb->reported[w->slot] = 0;
    }
    if (w->alloc != WORKER_ALLOCATED)
        return;
    book *bk = book_at(b, w->cluster);
    if (bk && !bk->ended && taskset_member_live(bk->ts, w->slot))
        set_hold(b, bk, w->slot);
}

/* --- agents' messages ---------------------------------------------------------------- */

/* The book and number of a task named on the wire, or NULL. */
static book *find_task(broker *b, const char *cluster_id, uint32_t number)
{
    mu_id id;
    if (!cluster_id || id_parse(cluster_id, &id) < 0)
        return NULL;
    const cluster *c = sched_cluster_get(b->core, &id);
    book *bk = c ? book_at(b, c->slot) : NULL;
    return bk && number < bk->n ? bk : NULL;
}

static bool runs_attempt(const book *bk, uint32_t number, uint32_t wslot, uint32_t attempt)
{
    const task_info *ti = taskset_get(bk->ts, number);
    return ti && ti->state == TASK_RUNNING && ti->member == wslot && ti->attempts == attempt;
}

void rpc_task_output(broker *b, const request *rq)
{
    const Muster__TaskOutput *m = rq->env->task_output;
    const worker *w = broker_peer_worker(b, &rq->msg->peer);
    book *bk = find_task(b, m->cluster_id, m->number);
    if (!bk || !runs_attempt(bk, m->number, w->slot, m->attempt)) {
        /* Output of an attempt nobody wants any more: stop it. */
        send_kill(b, w->slot, m->cluster_id, m->number, m->attempt, "not wanted any more");
        return;
    }
    trec *r = &bk->r[m->number];
    char note[128];
    if (m->offset > r->att_expect || m->dropped) {
        uint64_t missing = m->offset > r->att_expect ? m->offset - r->att_expect : 0;
        snprintf(note, sizeof(note),
                 "\n[... %llu bytes of output not forwarded: see the agent's task log ...]\n",
                 (unsigned long long)(missing > m->dropped ? missing : m->dropped));
        log_note(b, bk, m->number, note);
    }
    size_t skip = 0;
    if (m->offset < r->att_expect)
        skip = (size_t)(r->att_expect - m->offset); /* sent twice */
    if (skip < m->data.len) {
        tasklog *l = rec_log(b, bk, m->number);
        if (l) {
            tasklog_append(l, m->data.data + skip, m->data.len - skip);
            r->log_total = tasklog_total(l);
        }
    }
    if (m->offset + m->data.len > r->att_expect)
        r->att_expect = m->offset + m->data.len;
}

static void send_exit_ack(broker *b, const request *rq, const Muster__TaskExit *m)
{
    Muster__TaskExitAck a = MUSTER__TASK_EXIT_ACK__INIT;
    a.cluster_id = m->cluster_id;
    a.number = m->number;
    a.attempt = m->attempt;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_TASK_EXIT_ACK;
    env.task_exit_ack = &a;
    broker_send_agent(b, &rq->msg->peer, &env);
}

void rpc_task_exit(broker *b, const request *rq)
{
    const Muster__TaskExit *m = rq->env->task_exit;
    const worker *w = broker_peer_worker(b, &rq->msg->peer);
    book *bk = find_task(b, m->cluster_id, m->number);
    /* Acknowledged in any case (after this batch is saved): a report that
     * changes nothing must not come back forever. */
    send_exit_ack(b, rq, m);
    if (!bk || !runs_attempt(bk, m->number, w->slot, m->attempt)) {
        log_debug("task.exit_stale", "cluster=%.40s task=%u attempt=%u", m->cluster_id, m->number,
                  m->attempt);
        return;
    }
    trec *r = &bk->r[m->number];
    r->signal = m->signal;
    char what[112], err_text[81];
    mu_error err;
    int rc;
    str_sanitize(err_text, sizeof(err_text), m->error ? m->error : "");
    if (m->timed_out) {
        const task_info *ti = taskset_get(bk->ts, m->number);
        Muster__TaskSpec *spec = unpack_spec(r);
        snprintf(what, sizeof(what), "timed out after %.1f s",
                 spec ? spec->timeout_ms / 1000.0 : (ti->timeout_ms / 1000.0));
        free_spec(spec);
        rc = taskset_attempt_failed(bk->ts, m->number, w->slot, m->attempt, -1, what, b->now, &err);
    } else if (*err_text) {
        rc = taskset_attempt_failed(bk->ts, m->number, w->slot, m->attempt, m->exit_code, err_text,
                                    b->now, &err);
    } else if (m->signal) {
        snprintf(what, sizeof(what), "killed by signal %d", m->signal);
        rc = taskset_attempt_failed(bk->ts, m->number, w->slot, m->attempt, -1, what, b->now, &err);
    } else {
        if (m->exit_code == 0 && m->result.len) {
            if (m->result.len > b->cfg.task_result_max_bytes) {
                snprintf(what, sizeof(what), "result of %zu bytes, over the limit of %u",
                         m->result.len, b->cfg.task_result_max_bytes);
                rc = taskset_attempt_failed(bk->ts, m->number, w->slot, m->attempt, 0, what, b->now,
                                            &err);
                goto out;
            }
            mu_free(r->result);
            r->result = mu_malloc(m->result.len);
            if (!r->result) {
                persist_fail(b, "out of memory keeping a result");
                return;
            }
            memcpy(r->result, m->result.data, m->result.len);
            r->result_len = (uint32_t)m->result.len;
        }
        rc = taskset_finished(bk->ts, m->number, w->slot, m->attempt, m->exit_code, b->now, &err);
    }
out:
    if (rc < 0)
        log_warn("task.exit_refused", "task=%u reason=\"%s\"", m->number, err.text);
    mark_dirty(b, bk, m->number, true);
    const task_info *ti = taskset_get(bk->ts, m->number);
    log_info("task.exit",
             "cluster=%s task=%u attempt=%u exit_code=%d signal=%d timed_out=%d state=%s",
             m->cluster_id, m->number, m->attempt, m->exit_code, m->signal, m->timed_out,
             task_state_name(ti->state));
}

typedef struct report_entry {
    uint32_t number, attempt;
} report_entry;

static int cmp_entry(const void *a, const void *b)
{
    const report_entry *x = a, *y = b;
    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    return x->attempt < y->attempt ? -1 : x->attempt > y->attempt;
}

void rpc_task_report(broker *b, const request *rq)
{
    const Muster__TaskReport *m = rq->env->task_report;
    const worker *w = broker_peer_worker(b, &rq->msg->peer);
    struct task_books *tb = b->tasks;
    if (mu_grow((void **)&tb->reported, &tb->cap_reported, (size_t)w->slot + 1, 1) < 0) {
        persist_fail(b, "out of memory");
        return;
    }
    tb->reported[w->slot] = 1;
    book *bk = w->alloc == WORKER_ALLOCATED ? book_at(b, w->cluster) : NULL;
    if (bk && bk->ended)
        bk = NULL;
    char cid[ID_TEXT_LEN] = "";
    if (bk)
        id_format(&bk->c->id, cid);
    /* What it runs of its cluster, sorted, to look up each task it should run. */
    report_entry *mine = mu_calloc(m->n_running ? m->n_running : 1, sizeof(*mine));
    size_t n_mine = 0;
    if (!mine) {
        persist_fail(b, "out of memory");
        return;
    }
    for (size_t i = 0; i < m->n_running; i++) {
        const Muster__TaskRef *t = m->running[i];
        if (bk && t->cluster_id && !strcmp(t->cluster_id, cid) && t->number < bk->n &&
            runs_attempt(bk, t->number, w->slot, t->attempt)) {
            mine[n_mine++] = (report_entry){t->number, t->attempt};
            continue;
        }
        send_kill(b, w->slot, t->cluster_id, t->number, t->attempt, "not wanted any more");
    }
    if (bk) {
        qsort(mine, n_mine, sizeof(*mine), cmp_entry);
        size_t lost = 0;
        for (uint32_t i = 0; i < bk->n; i++) {
            const task_info *ti = taskset_get(bk->ts, i);
            if (ti->state != TASK_RUNNING || ti->member != w->slot)
                continue;
            report_entry key = {i, ti->attempts};
            if (bsearch(&key, mine, n_mine, sizeof(*mine), cmp_entry))
                continue;
            mu_error err;
            if (taskset_attempt_lost(bk->ts, i, w->slot, ti->attempts, b->now, &err) == 0)
                lost++;
        }
        if (lost)
            log_warn("task.attempts_lost", "cluster=%s worker_slot=%u lost=%zu", cid, w->slot,
                     lost);
        if (taskset_member_live(bk->ts, w->slot))
            set_hold(b, bk, w->slot);
    }
    mu_free(mine);
}

/* --- clients' requests ---------------------------------------------------------------- */

static int parse_placement(const char *s, task_placement *out)
{
    static const struct {
        const char *name;
        task_placement p;
    } names[] = {{"", TASK_PLACE_DEFAULT},           {"default", TASK_PLACE_DEFAULT},
                 {"spread", TASK_PLACE_SPREAD},      {"pack", TASK_PLACE_PACK},
                 {"member", TASK_PLACE_MEMBER_SOFT}, {"member-hard", TASK_PLACE_MEMBER_HARD}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(s ? s : "", names[i].name)) {
            *out = names[i].p;
            return 0;
        }
    return -1;
}

static const char *placement_name(task_placement p)
{
    static const char *const n[] = {"default", "spread", "pack", "member", "member-hard"};
    return (unsigned)p < 5 ? n[p] : "default";
}

typedef struct name_ref {
    const char *name;
    uint32_t index;
} name_ref;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const name_ref *)a)->name, ((const name_ref *)b)->name);
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Check one task of a submission and fill its core spec; deps are written
 * to after (room for n_after). kept is what is saved: a shallow copy of t
 * (whose strings stay the request's) with `after` as task numbers (in
 * after_text, pointed to by after_ptr), `member` the full worker id and
 * `placement` named. */
static int check_task(broker *b, const cluster *c, uint32_t base, size_t i,
                      const Muster__TaskSpec *t, const name_ref *names, size_t n_names,
                      task_spec *out, uint32_t *after, char (*after_text)[12], char **after_ptr,
                      char *member_text, Muster__TaskSpec *kept, mu_error *errp)
{
    *kept = *t;
    kept->after = after_ptr;
    char label[96];
    char clean[TASK_NAME_MAX + 1];
    str_sanitize(clean, sizeof(clean), t->name ? t->name : "");
    if (*clean)
        snprintf(label, sizeof(label), "task %zu (%s)", i, clean);
    else
        snprintf(label, sizeof(label), "task %zu", i);
    if (t->image && *t->image)
        return errprintf(errp,
                         "%s: container images are not supported by any agent yet; give argv "
                         "(a program and its arguments)",
                         label);
    if (!t->n_argv || !t->argv[0] || !*t->argv[0])
        return errprintf(errp, "%s: argv is empty: give the program to run", label);
    if (t->name && strlen(t->name) > TASK_NAME_MAX)
        return errprintf(errp, "%s: name longer than %d characters", label, TASK_NAME_MAX);
    for (size_t k = 0; k < t->n_env; k++) {
        const char *eq = strchr(t->env[k], '=');
        if (!eq || eq == t->env[k])
            return errprintf(errp, "%s: environment entry \"%.40s\" is not NAME=value", label,
                             t->env[k]);
    }
    if (t->cwd && *t->cwd && t->cwd[0] != '/')
        return errprintf(errp, "%s: cwd \"%.60s\" is not an absolute path", label, t->cwd);
    if (t->result_file && *t->result_file) {
        const char *rf = t->result_file;
        if (rf[0] == '/' || !strcmp(rf, "..") || !strncmp(rf, "../", 3) || strstr(rf, "/../") ||
            (strlen(rf) >= 3 && !strcmp(rf + strlen(rf) - 3, "/..")) || strlen(rf) > 255)
            return errprintf(errp,
                             "%s: result_file \"%.60s\" must be a relative path inside the "
                             "task's directory",
                             label, rf);
    }
    if (t->gpus > TASK_MAX_GPUS || t->cpus > UINT16_MAX)
        return errprintf(errp, "%s: %u GPUs and %u CPUs: more than any worker has", label, t->gpus,
                         t->cpus);
    if (t->timeout_ms > TASK_TIMEOUT_MAX_MS)
        return errprintf(errp, "%s: timeout over 7 days", label);
    if (t->max_retries < -1 || t->max_retries > TASK_RETRIES_MAX)
        return errprintf(errp, "%s: max_retries %d is not -1 (none), 0 (default: %d) or 1..%d",
                         label, t->max_retries, TASK_DEFAULT_RETRIES, TASK_RETRIES_MAX);
    task_placement pl;
    if (parse_placement(t->placement, &pl) < 0)
        return errprintf(errp,
                         "%s: placement \"%.32s\" is not default, spread, pack, member or "
                         "member-hard",
                         label, t->placement);
    uint32_t member = 0;
    if (pl == TASK_PLACE_MEMBER_SOFT || pl == TASK_PLACE_MEMBER_HARD) {
        const worker *w = t->member && *t->member ? registry_find(b->reg, t->member) : NULL;
        if (!w || w->alloc != WORKER_ALLOCATED || w->cluster != c->slot)
            return errprintf(errp, "%s: member \"%.40s\" is not a member of this cluster", label,
                             t->member ? t->member : "");
        member = w->slot;
        id_format(&w->id, member_text);
        kept->member = member_text;
    } else if (t->member && *t->member) {
        return errprintf(errp, "%s: member is given but placement is not member or member-hard",
                         label);
    }
    for (size_t k = 0; k < t->n_after; k++) {
        const char *a = t->after[k];
        uint64_t num;
        if (all_digits(a)) {
            if (str_to_u64(a, 0, UINT32_MAX, &num) < 0 || num >= base)
                return errprintf(errp, "%s: depends on task %.20s, which the cluster does not have",
                                 label, a);
            after[k] = (uint32_t)num;
        } else {
            name_ref key = {a, 0};
            const name_ref *hit = bsearch(&key, names, n_names, sizeof(*names), cmp_name);
            if (!hit)
                return errprintf(errp,
                                 "%s: depends on \"%.40s\", which is neither a task number of the "
                                 "cluster nor a name in this submission",
                                 label, a);
            after[k] = base + hit->index;
        }
        snprintf(after_text[k], sizeof(after_text[k]), "%u", after[k]);
        after_ptr[k] = after_text[k];
    }
    *out = (task_spec){.gpus = (uint16_t)t->gpus,
                       .cpus = (uint16_t)t->cpus,
                       .memory_mib = t->memory_mib,
                       .after = after,
                       .n_after = t->n_after,
                       .placement = pl,
                       .member = member,
                       .max_retries = t->max_retries < 0    ? TASK_NO_RETRIES
                                      : t->max_retries == 0 ? 0
                                                            : (uint32_t)t->max_retries,
                       .retry_exits = t->retry_exits,
                       .timeout_ms = t->timeout_ms ? t->timeout_ms + TIMEOUT_BACKSTOP_MS : 0};
    kept->placement = (char *)placement_name(pl);
    return 0;
}

void rpc_submit_tasks(broker *b, const request *rq)
{
    const Muster__SubmitTasksRequest *q = rq->env->submit_tasks;
    const cluster *c = rpc_find_cluster(b, rq, q->cluster_id);
    if (!c || !broker_may_change(b, rq, c->owner, "this cluster"))
        return;
    char cid[ID_TEXT_LEN], why[256];
    id_format(&c->id, cid);
    if (!cluster_active(c)) {
        snprintf(why, sizeof(why), "cluster %s is %s: tasks run only on an active cluster", cid,
                 cluster_state_name(c->state));
        broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, why);
        return;
    }
    size_t n = q->n_tasks;
    if (!n || n > TASKS_PER_SUBMIT_MAX) {
        snprintf(why, sizeof(why), "%zu tasks: a submission holds 1..%u", n, TASKS_PER_SUBMIT_MAX);
        broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, why);
        return;
    }
    mu_error err = {{0}};
    book *bk = book_at(b, c->slot);
    bool fresh = !bk;
    if (!bk && !(bk = book_create(b, c, &err))) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_INTERNAL, err.text);
        return;
    }
    uint32_t base = taskset_next_id(bk->ts);
    size_t total_after = 0, n_names = 0;
    for (size_t i = 0; i < n; i++) {
        total_after += q->tasks[i]->n_after;
        n_names += q->tasks[i]->name && *q->tasks[i]->name;
    }
    task_spec *specs = mu_calloc(n, sizeof(*specs));
    uint32_t *after = mu_calloc(total_after ? total_after : 1, sizeof(*after));
    char(*after_text)[12] = mu_calloc(total_after ? total_after : 1, sizeof(*after_text));
    char **after_ptr = mu_calloc(total_after ? total_after : 1, sizeof(*after_ptr));
    char(*members)[ID_TEXT_LEN] = mu_calloc(n, sizeof(*members));
    name_ref *names = mu_calloc(n_names ? n_names : 1, sizeof(*names));
    uint8_t **packed = mu_calloc(n, sizeof(*packed));
    size_t *plen = mu_calloc(n, sizeof(*plen));
    Muster__Status st = MUSTER__STATUS__STATUS_BAD_REQUEST;
    int rc = -1;
    if (!specs || !after || !after_text || !after_ptr || !members || !names || !packed || !plen ||
        !rec_reserve(bk, (uint32_t)n)) {
        errprintf(&err, "out of memory");
        st = MUSTER__STATUS__STATUS_INTERNAL;
        goto out;
    }
    n_names = 0;
    for (size_t i = 0; i < n; i++)
        if (q->tasks[i]->name && *q->tasks[i]->name)
            names[n_names++] = (name_ref){q->tasks[i]->name, (uint32_t)i};
    qsort(names, n_names, sizeof(*names), cmp_name);
    for (size_t i = 1; i < n_names; i++)
        if (!strcmp(names[i - 1].name, names[i].name)) {
            char clean[TASK_NAME_MAX + 1];
            str_sanitize(clean, sizeof(clean), names[i].name);
            errprintf(&err, "two tasks are named \"%s\": names must be unique in a submission",
                      clean);
            goto out;
        }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        Muster__TaskSpec kept;
        if (check_task(b, c, base, i, q->tasks[i], names, n_names, &specs[i], after + off,
                       after_text + off, after_ptr + off, members[i], &kept, &err) < 0)
            goto out;
        off += q->tasks[i]->n_after;
        plen[i] = muster__task_spec__get_packed_size(&kept);
        if (!(packed[i] = mu_malloc(plen[i] ? plen[i] : 1))) {
            errprintf(&err, "out of memory");
            st = MUSTER__STATUS__STATUS_INTERNAL;
            goto out;
        }
        muster__task_spec__pack(&kept, packed[i]);
    }
    uint32_t first;
    /* Observe from the start, so tasks ready at once are saved and announced. */
    taskset_observe(bk->ts, on_task_change, bk);
    if (taskset_submit(bk->ts, specs, n, b->now, &first, &err) < 0) {
        st = errno == ENOMEM ? MUSTER__STATUS__STATUS_INTERNAL : MUSTER__STATUS__STATUS_BAD_REQUEST;
        goto out;
    }
    /* Accepted: nothing below can fail. */
    for (size_t i = 0; i < n; i++) {
        trec *r = &bk->r[first + i];
        memset(r, 0, sizeof(*r));
        r->spec = packed[i];
        r->spec_len = (uint32_t)plen[i];
        packed[i] = NULL;
    }
    bk->n = first + (uint32_t)n;
    for (size_t i = 0; i < n; i++)
        mark_dirty(b, bk, first + (uint32_t)i, false);
    bk->want_dispatch = true;
    rc = 0;
    log_info("task.submitted", "cluster=%s first=%u count=%zu", cid, first, n);
    Muster__Event ev = MUSTER__EVENT__INIT;
    char frame[64], detail[64];
    snprintf(frame, sizeof(frame), "task.%s", cid);
    snprintf(detail, sizeof(detail), "%zu tasks, %u..%u", n, first, first + (uint32_t)n - 1);
    ev.topic = "task.submitted";
    ev.cluster_id = cid;
    ev.cluster_state = (char *)cluster_state_name(c->state);
    ev.detail = detail;
    ev.task = first;
    ev.task_state = "submitted";
    broker_publish(b, frame, &ev);

    Muster__SubmitTasksReply sr = MUSTER__SUBMIT_TASKS_REPLY__INIT;
    sr.cluster_id = cid;
    sr.first = first;
    sr.count = (uint32_t)n;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_SUBMIT_TASKS_REPLY;
    reply.submit_tasks_reply = &sr;
    broker_reply(b, rq, &reply);
out:
    if (rc < 0) {
        /* A book made for this submission and left empty goes again. */
        if (fresh && bk->n == 0) {
            live_remove(b->tasks, c->slot);
            b->tasks->books[c->slot] = NULL;
            book_destroy(bk);
        }
        broker_error(b, rq, st, err.text);
    }
    for (size_t i = 0; packed && i < n; i++)
        mu_free(packed[i]);
    mu_free(packed);
    mu_free(plen);
    mu_free(specs);
    mu_free(after);
    mu_free(after_text);
    mu_free(after_ptr);
    mu_free(members);
    mu_free(names);
}

/* A TaskInfo borrowing from the book and from v. */
typedef struct task_view {
    Muster__TaskInfo info;
    Muster__TaskSpec *spec;
    char cid[ID_TEXT_LEN], wid[ID_TEXT_LEN];
    uint32_t gpus[TASK_MAX_GPUS];
    uint8_t *result;
} task_view;

static void view_fill(broker *b, book *bk, uint32_t number, bool with_result, task_view *v)
{
    const task_info *ti = taskset_get(bk->ts, number);
    trec *r = &bk->r[number];
    muster__task_info__init(&v->info);
    Muster__TaskInfo *i = &v->info;
    id_format(&bk->c->id, v->cid);
    i->cluster_id = v->cid;
    i->number = number;
    v->spec = unpack_spec(r);
    if (v->spec) {
        i->spec = v->spec;
        i->name = v->spec->name;
    }
    i->state = (char *)task_state_name(ti->state);
    const worker *w = ti->member != TASK_NO_MEMBER ? registry_at(b->reg, ti->member) : NULL;
    v->wid[0] = '\0';
    if (w)
        id_format(&w->id, v->wid);
    i->worker_id = v->wid;
    size_t ng = 0;
    for (uint32_t k = 0; k < TASK_MAX_GPUS; k++)
        if (ti->gpu_mask & (UINT64_C(1) << k))
            v->gpus[ng++] = k;
    i->gpu_indices = v->gpus;
    i->n_gpu_indices = ti->attempts ? ng : 0;
    i->attempts = ti->attempts;
    i->failures = ti->failures;
    i->losses = ti->losses;
    i->exit_code = ti->exit_code;
    i->signal = r->signal;
    i->submitted_at_ms = ti->submitted_at;
    i->started_at_ms = ti->started_at;
    i->finished_at_ms = is_final(ti->state) ? ti->finished_at : 0;
    i->reason = (char *)ti->reason;
    i->result_bytes = r->result_len;
    i->log_bytes = r->log_total;
    v->result = NULL;
    if (with_result && r->result_len) {
        if (r->result) {
            i->result.data = r->result;
            i->result.len = r->result_len;
        } else {
            uint8_t *log;
            size_t rlen, llen;
            uint64_t first;
            mu_error err;
            if (store_get_task_output(b->st, &bk->c->id, number, &v->result, &rlen, &log, &llen,
                                      &first, &err) == 0) {
                mu_free(log);
                i->result.data = v->result;
                i->result.len = rlen;
            }
        }
    }
}

static void view_free(task_view *v)
{
    free_spec(v->spec);
    mu_free(v->result);
}

/* The book of a request's cluster id, with a reply when there is none. */
static book *book_or_reply(broker *b, const request *rq, const char *cluster_id, uint32_t number,
                           bool want_number, bool change)
{
    const cluster *c = rpc_find_cluster(b, rq, cluster_id);
    if (!c || !(change ? broker_may_change(b, rq, c->owner, "this cluster's tasks")
                       : broker_may_see(b, rq, c->owner, "this cluster's tasks")))
        return NULL;
    book *bk = book_at(b, c->slot);
    char why[160], cid[ID_TEXT_LEN];
    id_format(&c->id, cid);
    if (want_number && (!bk || number >= bk->n)) {
        snprintf(why, sizeof(why), "cluster %s has no task %u (it has %u)", cid, number,
                 bk ? bk->n : 0);
        broker_error(b, rq, MUSTER__STATUS__STATUS_NOT_FOUND, why);
        return NULL;
    }
    if (!bk) {
        /* No task ever: an empty list, answered by the caller. */
        errno = ENOENT;
    }
    return bk;
}

void rpc_list_tasks(broker *b, const request *rq)
{
    const Muster__ListTasksRequest *q = rq->env->list_tasks;
    const cluster *c = rpc_find_cluster(b, rq, q->cluster_id);
    if (!c || !broker_may_see(b, rq, c->owner, "this cluster's tasks"))
        return;
    book *bk = book_at(b, c->slot);
    int want = -1; /* a task_state, -1 any, -2 active */
    if (q->state && *q->state) {
        if (!strcmp(q->state, "active"))
            want = -2;
        for (int s = 0; s < TASK_STATES && want == -1; s++)
            if (!strcmp(q->state, task_state_name((task_state)s)))
                want = s;
        if (want == -1) {
            char why[160];
            snprintf(why, sizeof(why),
                     "state \"%.32s\" is not waiting, ready, running, succeeded, failed, "
                     "cancelled or active",
                     q->state);
            broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, why);
            return;
        }
    }
    uint32_t limit = q->limit ? q->limit : LIST_LIMIT_DEFAULT;
    if (limit > LIST_LIMIT_MAX)
        limit = LIST_LIMIT_MAX;
    uint32_t n = bk ? bk->n : 0, total = 0, shown = 0;
    task_view *views = mu_calloc(limit < n ? limit : (n ? n : 1), sizeof(*views));
    Muster__TaskInfo **ptrs = mu_calloc(limit < n ? limit : (n ? n : 1), sizeof(*ptrs));
    if (!views || !ptrs) {
        mu_free(views);
        mu_free(ptrs);
        broker_error(b, rq, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        task_state s = taskset_get(bk->ts, i)->state;
        if (want >= 0 ? (int)s != want : want == -2 ? is_final(s) : false)
            continue;
        if (total++ < q->offset || shown >= limit)
            continue;
        view_fill(b, bk, i, false, &views[shown]);
        ptrs[shown] = &views[shown].info;
        shown++;
    }
    Muster__TaskCounts counts = MUSTER__TASK_COUNTS__INIT;
    if (bk) {
        counts.waiting = (uint32_t)taskset_count_state(bk->ts, TASK_WAITING);
        counts.ready = (uint32_t)taskset_count_state(bk->ts, TASK_READY);
        counts.running = (uint32_t)taskset_count_state(bk->ts, TASK_RUNNING);
        counts.succeeded = (uint32_t)taskset_count_state(bk->ts, TASK_SUCCEEDED);
        counts.failed = (uint32_t)taskset_count_state(bk->ts, TASK_FAILED);
        counts.cancelled = (uint32_t)taskset_count_state(bk->ts, TASK_CANCELLED);
    }
    Muster__ListTasksReply lr = MUSTER__LIST_TASKS_REPLY__INIT;
    lr.tasks = ptrs;
    lr.n_tasks = shown;
    lr.total = total;
    lr.counts = &counts;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_LIST_TASKS_REPLY;
    reply.list_tasks_reply = &lr;
    broker_reply(b, rq, &reply);
    for (uint32_t i = 0; i < shown; i++)
        view_free(&views[i]);
    mu_free(views);
    mu_free(ptrs);
}

static void reply_task(broker *b, const request *rq, book *bk, uint32_t number)
{
    task_view v;
    view_fill(b, bk, number, true, &v);
    Muster__TaskReply tr = MUSTER__TASK_REPLY__INIT;
    tr.task = &v.info;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_TASK_REPLY;
    reply.task_reply = &tr;
    broker_reply(b, rq, &reply);
    view_free(&v);
}

void rpc_get_task(broker *b, const request *rq)
{
    const Muster__GetTaskRequest *q = rq->env->get_task;
    book *bk = book_or_reply(b, rq, q->cluster_id, q->number, true, false);
    if (bk)
        reply_task(b, rq, bk, q->number);
}

void rpc_cancel_task(broker *b, const request *rq)
{
    const Muster__CancelTaskRequest *q = rq->env->cancel_task;
    book *bk = book_or_reply(b, rq, q->cluster_id, q->number, true, true);
    if (!bk)
        return;
    const task_info *ti = taskset_get(bk->ts, q->number);
    uint32_t member = ti->member, attempt = ti->attempts;
    bool was_running;
    mu_error err;
    if (taskset_cancel(bk->ts, q->number, "cancelled by request", b->now, &was_running, &err) < 0) {
        broker_error(b, rq,
                     errno == EALREADY ? MUSTER__STATUS__STATUS_CONFLICT
                                       : MUSTER__STATUS__STATUS_NOT_FOUND,
                     err.text);
        return;
    }
    if (was_running) {
        char cid[ID_TEXT_LEN];
        id_format(&bk->c->id, cid);
        send_kill(b, member, cid, q->number, attempt, "cancelled by request");
    }
    reply_task(b, rq, bk, q->number);
}

void rpc_task_logs(broker *b, const request *rq)
{
    const Muster__TaskLogsRequest *q = rq->env->task_logs;
    book *bk = book_or_reply(b, rq, q->cluster_id, q->number, true, false);
    if (!bk)
        return;
    trec *r = &bk->r[q->number];
    const task_info *ti = taskset_get(bk->ts, q->number);
    size_t max = q->max_bytes ? q->max_bytes : TASK_LOGS_REPLY_BYTES;
    if (max > b->cfg.max_message_bytes / 2)
        max = b->cfg.max_message_bytes / 2;
    uint8_t *buf = mu_malloc(max ? max : 1), *saved = NULL, *res = NULL;
    if (!buf) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    size_t n = 0;
    uint64_t start = q->offset;
    if (r->log) {
        n = tasklog_read(r->log, q->offset, buf, max, &start);
    } else if (r->log_total) {
        size_t rlen, llen;
        uint64_t first;
        mu_error err;
        if (store_get_task_output(b->st, &bk->c->id, q->number, &res, &rlen, &saved, &llen, &first,
                                  &err) == 0 &&
            llen) {
            uint64_t from = q->offset < first ? first : q->offset;
            if (from > first + llen)
                from = first + llen;
            n = (size_t)(first + llen - from);
            if (n > max)
                n = max;
            memcpy(buf, saved + (from - first), n);
            start = from;
        }
    }
    if (start < q->offset)
        start = q->offset;
    Muster__TaskLogsReply lr = MUSTER__TASK_LOGS_REPLY__INIT;
    lr.data.data = buf;
    lr.data.len = n;
    lr.offset = start;
    lr.next = start + n;
    lr.final = is_final(ti->state) && lr.next >= r->log_total;
    lr.state = (char *)task_state_name(ti->state);
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_TASK_LOGS_REPLY;
    reply.task_logs_reply = &lr;
    broker_reply(b, rq, &reply);
    mu_free(buf);
    mu_free(saved);
    mu_free(res);
}

/* --- saving and loading --------------------------------------------------------------- */

static int save_task(broker *b, book *bk, uint32_t number, mu_error *errp)
{
    trec *r = &bk->r[number];
    const task_info *ti = taskset_get(bk->ts, number);
    const uint32_t *lost;
    size_t n_lost = taskset_lost_on(bk->ts, number, &lost);
    mu_id lost_ids[TASK_MAX_LOSSES];
    size_t nl = 0;
    for (size_t i = 0; i < n_lost; i++) {
        const worker *w = registry_at(b->reg, lost[i]);
        if (w)
            lost_ids[nl++] = w->id;
    }
    const worker *w = ti->member != TASK_NO_MEMBER ? registry_at(b->reg, ti->member) : NULL;
    store_task t = {.cluster = bk->c->id,
                    .number = number,
                    .spec = r->spec,
                    .spec_len = r->spec_len,
                    .state = (int)ti->state,
                    .attempts = ti->attempts,
                    .failures = ti->failures,
                    .losses = ti->losses,
                    .exit_code = ti->exit_code,
                    .signal = r->signal,
                    .gpu_mask = ti->gpu_mask,
                    .submitted_at = ti->submitted_at,
                    .started_at = ti->started_at,
                    .finished_at = ti->finished_at,
                    .reason = ti->reason,
                    .lost_on = lost_ids,
                    .n_lost_on = nl,
                    .log_total = r->log_total};
    if (w)
        t.worker = w->id;
    if (store_put_task(b->st, &t, errp) < 0)
        return -1;
    if (!r->out_dirty)
        return 0;
    /* Output: only when there is any, or a result. A result saved once is
     * final (only a success has one). */
    if (r->log || r->result) {
        uint8_t *tail = NULL;
        size_t len = 0;
        uint64_t first = r->log_total;
        if (r->log) {
            size_t cap = b->cfg.task_log_bytes;
            if (!(tail = mu_malloc(cap ? cap : 1)))
                return errprintf(errp, "out of memory");
            len = tasklog_read(r->log, 0, tail, cap, &first);
        }
        int rc = store_put_task_output(b->st, &bk->c->id, number, r->result, r->result_len, tail,
                                       len, first, errp);
        mu_free(tail);
        if (rc < 0)
            return -1;
        r->log_saved = r->log_total;
    }
    return 0;
}

bool tasks_pending(const broker *b)
{
    return b->tasks && b->tasks->n_dirty;
}

int tasks_check(const broker *b, mu_error *errp)
{
    const struct task_books *tb = b->tasks;
    for (size_t i = 0; tb && i < tb->cap; i++)
        if (tb->books[i] && taskset_check(tb->books[i]->ts, errp) < 0)
            return errprefix(errp, "tasks of cluster slot %zu", i);
    return 0;
}

int tasks_save_dirty(broker *b, mu_error *errp)
{
    struct task_books *tb = b->tasks;
    for (size_t i = 0; i < tb->n_dirty; i++) {
        book *bk = book_at(b, tb->dirty[i].cslot);
        if (bk && tb->dirty[i].number < bk->n && save_task(b, bk, tb->dirty[i].number, errp) < 0)
            return -1;
    }
    return 0;
}

void tasks_saved(broker *b)
{
    struct task_books *tb = b->tasks;
    for (size_t i = 0; i < tb->n_dirty; i++) {
        book *bk = book_at(b, tb->dirty[i].cslot);
        if (!bk || tb->dirty[i].number >= bk->n)
            continue;
        trec *r = &bk->r[tb->dirty[i].number];
        bool saved_output = r->out_dirty;
        r->dirty = r->out_dirty = false;
        if (saved_output) {
            mu_free(r->result);
            r->result = NULL;
            if (is_final(taskset_get(bk->ts, tb->dirty[i].number)->state)) {
                /* Final: its output now lives in the store only. */
                tasklog_destroy(r->log);
                r->log = NULL;
            }
        }
    }
    tb->n_dirty = 0;
}

/* Saved tasks of one cluster, gathered while loading. */
typedef struct loading {
    broker *b;
    mu_id cluster;
    bool any;
    task_restore *tr;
    trec *recs;
    Muster__TaskSpec **specs;
    uint32_t **after;
    uint32_t **lost;
    size_t n, cap;
} loading;

static void loading_clear(loading *ld)
{
    for (size_t i = 0; i < ld->n; i++) {
        free_spec(ld->specs[i]);
        mu_free(ld->after[i]);
        mu_free(ld->lost[i]);
        mu_free(ld->recs[i].spec);
        mu_free((void *)ld->tr[i].reason);
    }
    ld->n = 0;
    ld->any = false;
}

static int loading_finish(loading *ld, mu_error *errp)
{
    if (!ld->any)
        return 0;
    broker *b = ld->b;
    char cid[ID_TEXT_LEN];
    id_format(&ld->cluster, cid);
    const cluster *c = sched_cluster_get(b->core, &ld->cluster);
    if (!c)
        return errprintf(errp, "saved tasks of cluster %s, which was not saved", cid);
    book *bk = book_create(b, c, errp);
    if (!bk)
        return -1;
    if (taskset_restore(bk->ts, ld->tr, ld->n, b->now, errp) < 0 ||
        !rec_reserve(bk, (uint32_t)ld->n)) {
        live_remove(b->tasks, c->slot);
        b->tasks->books[c->slot] = NULL;
        book_destroy(bk);
        return errprefix(errp, "saved tasks of cluster %s", cid);
    }
    for (size_t i = 0; i < ld->n; i++) {
        bk->r[i] = ld->recs[i];
        ld->recs[i].spec = NULL;
        bk->r[i].log_saved = bk->r[i].log_total;
    }
    bk->n = (uint32_t)ld->n;
    taskset_observe(bk->ts, on_task_change, bk);
    /* Tasks whose member is gone were requeued by the restore: save that. */
    for (uint32_t i = 0; i < bk->n; i++) {
        const task_info *ti = taskset_get(bk->ts, i);
        if (ti->state != ld->tr[i].state || ti->losses != ld->tr[i].losses)
            mark_dirty(b, bk, i, false);
    }
    if (!cluster_active(c))
        end_book(b, bk);
    bk->want_dispatch = true;
    loading_clear(ld);
    return 0;
}

static int on_task_loaded(void *arg, const store_task *t, mu_error *errp)
{
    loading *ld = arg;
    broker *b = ld->b;
    if (ld->any && !id_equal(&ld->cluster, &t->cluster) && loading_finish(ld, errp) < 0)
        return -1;
    if (!ld->any) {
        ld->any = true;
        ld->cluster = t->cluster;
    }
    if (t->number != ld->n)
        return errprintf(errp, "saved task %u where task %zu was expected", t->number, ld->n);
    if (ld->n == ld->cap) {
        size_t ncap = ld->cap ? ld->cap * 2 : 64;
        void *a = mu_realloc(ld->tr, ncap * sizeof(*ld->tr));
        if (a)
            ld->tr = a;
        void *r2 = a ? mu_realloc(ld->recs, ncap * sizeof(*ld->recs)) : NULL;
        if (r2)
            ld->recs = r2;
        void *s = r2 ? mu_realloc(ld->specs, ncap * sizeof(*ld->specs)) : NULL;
        if (s)
            ld->specs = s;
        void *af = s ? mu_realloc(ld->after, ncap * sizeof(*ld->after)) : NULL;
        if (af)
            ld->after = af;
        void *lo = af ? mu_realloc(ld->lost, ncap * sizeof(*ld->lost)) : NULL;
        if (!lo)
            return errprintf(errp, "out of memory");
        ld->lost = lo;
        ld->cap = ncap;
    }
    size_t i = ld->n;
    Muster__TaskSpec *spec =
        muster__task_spec__unpack(mu_protobuf_allocator(), t->spec_len, (const uint8_t *)t->spec);
    if (!spec)
        return errprintf(errp, "saved task %u: its spec does not decode", t->number);
    ld->specs[i] = spec;
    ld->after[i] = mu_calloc(spec->n_after ? spec->n_after : 1, sizeof(uint32_t));
    ld->lost[i] = mu_calloc(t->n_lost_on ? t->n_lost_on : 1, sizeof(uint32_t));
    ld->recs[i] = (trec){0};
    ld->tr[i] = (task_restore){0};
    ld->n++; /* from here on, loading_clear frees what this entry holds */
    uint8_t *copy = mu_malloc(t->spec_len ? t->spec_len : 1);
    if (!ld->after[i] || !ld->lost[i] || !copy) {
        mu_free(copy);
        return errprintf(errp, "out of memory");
    }
    memcpy(copy, t->spec, t->spec_len);
    ld->recs[i].spec = copy;
    ld->recs[i].spec_len = (uint32_t)t->spec_len;
    ld->recs[i].signal = t->signal;
    ld->recs[i].result_len = t->result_len;
    ld->recs[i].log_total = t->log_total;
    for (size_t k = 0; k < spec->n_after; k++) {
        uint64_t d;
        if (str_to_u64(spec->after[k], 0, UINT32_MAX, &d) < 0)
            return errprintf(errp, "saved task %u: dependency \"%.20s\"", t->number,
                             spec->after[k]);
        ld->after[i][k] = (uint32_t)d;
    }
    size_t nl = 0;
    for (size_t k = 0; k < t->n_lost_on; k++) {
        const worker *w = registry_get(b->reg, &t->lost_on[k]);
        ld->lost[i][nl++] = w ? w->slot : NIL;
    }
    task_placement pl = TASK_PLACE_DEFAULT;
    parse_placement(spec->placement, &pl);
    uint32_t member = NIL;
    if (spec->member && *spec->member) {
        mu_id mid;
        const worker *w = id_parse(spec->member, &mid) == 0 ? registry_get(b->reg, &mid) : NULL;
        member = w ? w->slot : NIL;
    }
    const worker *ran = id_is_null(&t->worker) ? NULL : registry_get(b->reg, &t->worker);
    const char *keep_reason = NULL;
    if (t->reason && *t->reason) {
        size_t rl = strlen(t->reason) + 1;
        char *keep = mu_malloc(rl);
        if (!keep)
            return errprintf(errp, "out of memory");
        memcpy(keep, t->reason, rl);
        keep_reason = keep;
    }
    ld->tr[i] = (task_restore){
        .spec = {.gpus = (uint16_t)spec->gpus,
                 .cpus = (uint16_t)spec->cpus,
                 .memory_mib = spec->memory_mib,
                 .after = ld->after[i],
                 .n_after = spec->n_after,
                 .placement = pl,
                 .member = member,
                 .max_retries = spec->max_retries < 0    ? TASK_NO_RETRIES
                                : spec->max_retries == 0 ? 0
                                                         : (uint32_t)spec->max_retries,
                 .retry_exits = spec->retry_exits,
                 .timeout_ms = spec->timeout_ms ? spec->timeout_ms + TIMEOUT_BACKSTOP_MS : 0},
        .state = (task_state)t->state,
        .attempts = t->attempts,
        .failures = t->failures,
        .losses = t->losses,
        .exit_code = t->exit_code,
        .member = ran ? ran->slot : TASK_NO_MEMBER,
        .gpu_mask = t->gpu_mask,
        .submitted_at = t->submitted_at,
        .started_at = t->started_at,
        .finished_at = t->finished_at,
        .reason = keep_reason, /* copied by the restore; freed with the entry */
        .lost_on = ld->lost[i],
        .n_lost_on = nl};
    return 0;
}

int tasks_load(broker *b, mu_error *errp)
{
    loading ld = {.b = b};
    int rc = store_load_tasks(b->st, on_task_loaded, &ld, errp);
    if (rc == 0)
        rc = loading_finish(&ld, errp);
    loading_clear(&ld);
    mu_free(ld.tr);
    mu_free(ld.recs);
    mu_free(ld.specs);
    mu_free(ld.after);
    mu_free(ld.lost);
    if (rc == 0 && b->tasks->n_live)
        log_info("tasks.loaded", "clusters_with_tasks=%zu", b->tasks->n_live);
    return rc;
}

/* --- lifecycle ------------------------------------------------------------------------ */

void tasks_reset(broker *b)
{
    struct task_books *tb = b->tasks;
    if (!tb)
        return;
    for (size_t i = 0; i < tb->cap; i++)
        book_destroy(tb->books[i]);
    if (tb->books)
        memset(tb->books, 0, tb->cap * sizeof(*tb->books));
    if (tb->reported)
        memset(tb->reported, 0, tb->cap_reported);
    tb->n_live = 0;
    tb->n_dirty = 0;
}

int tasks_init(broker *b, mu_error *errp)
{
    if (!(b->tasks = mu_calloc(1, sizeof(*b->tasks))))
        return errprintf(errp, "out of memory");
    return 0;
}

void tasks_free(broker *b)
{
    struct task_books *tb = b->tasks;
    if (!tb)
        return;
    tasks_reset(b);
    mu_free(tb->books);
    mu_free(tb->live);
    mu_free(tb->dirty);
    mu_free(tb->reported);
    mu_free(tb);
    b->tasks = NULL;
}

const taskset *tasks_of(const broker *b, const cluster *c)
{
    const book *bk = book_at(b, c->slot);
    return bk ? bk->ts : NULL;
}

Muster__TaskSpec *tasks_spec(const broker *b, const cluster *c, uint32_t number)
{
    const book *bk = book_at(b, c->slot);
    return bk && number < bk->n ? unpack_spec(&bk->r[number]) : NULL;
}

void tasks_counts(const broker *b, size_t *tasks, size_t *running)
{
    *tasks = *running = 0;
    const struct task_books *tb = b->tasks;
    for (size_t i = 0; tb && i < tb->cap; i++)
        if (tb->books[i]) {
            *tasks += tb->books[i]->n;
            *running += taskset_count_state(tb->books[i]->ts, TASK_RUNNING);
        }
}
