/* tasks.h - the Ray-style tasks of one cluster: submit, depend, place,
 * run, retry, collect. Pure: no I/O, time is a parameter; the broker's
 * shell (scheduler/rpc_tasks.c) connects it to agents.
 *
 * A taskset holds the tasks of one cluster and the cluster's members as
 * slots with capacities (GPUs, CPUs, memory). A task's life:
 *
 *   waiting --deps succeeded--> ready --dispatch--> running --exit 0--> succeeded
 *      |                          ^                   |
 *      |                          +-- member lost ----+  (always retried)
 *      |                          +-- exit != 0 / timeout, when retry_exits
 *      |                              and failures <= max_retries
 *      +-- a dependency failed or was cancelled --> failed
 *   running --exit != 0 / timeout, no retry left--> failed
 *   waiting/ready/running --cancel--> cancelled
 *
 * Succeeded, failed and cancelled are final. A failed or cancelled task
 * fails every task that depends on it, transitively, each with a reason
 * naming the dependency that brought it down, so a graph never hangs on a
 * task that will not run.
 *
 * The core only decides; the shell acts: taskset_dispatch says which task
 * to start on which member with which GPU indices (the agent sets
 * CUDA_VISIBLE_DEVICES from them), taskset_tick says which to kill, and the
 * shell reports outcomes back with the attempt number it was given, which
 * is what makes "succeeded exactly once" hold against late or duplicated
 * reports.
 *
 * Cost: tasks become ready through a per-task counter of unfinished
 * dependencies and a list of dependents, so a completion touches only its
 * dependents; ready tasks wait in a heap by id (submission order) and
 * running tasks with a timeout in a heap by deadline, so dispatch and tick
 * cost O(log n) per task started or stopped, plus the members scanned for
 * each (clusters are small). Member loss scans all tasks (rare).
 */
#ifndef MUSTER_TASKS_H
#define MUSTER_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* GPU indices are handed out as a 64-bit mask: a member has at most 64. */
#define TASK_MAX_GPUS 64
/* max_retries of 0 in a spec means this, as in Ray. */
#define TASK_DEFAULT_RETRIES 3
/* max_retries value for "never retry an exit or timeout". */
#define TASK_NO_RETRIES UINT32_MAX
/* Member loss is retried regardless of max_retries, but a task lost more
 * than this many times fails: a task that kills its members (out of memory,
 * a driver crash) must not walk through the whole cluster forever. It is
 * also how many members a task remembers it must never run on again. */
#define TASK_MAX_LOSSES 16
/* How many ready tasks dispatch looks past when they do not fit anywhere,
 * to start later ones that do (backfill). Bounded so that a long queue of
 * tasks that cannot start now does not make every dispatch scan it all. */
#define TASK_BACKFILL_WINDOW 64
/* No member (task_info.member, task_spec.member unset). */
#define TASK_NO_MEMBER UINT32_MAX
/* taskset_next_deadline when nothing is due. */
#define TASK_NO_DEADLINE UINT64_MAX

typedef struct task_member {
    uint32_t id;   /* the caller's member id (e.g. a registry slot); unique */
    uint16_t gpus; /* at most TASK_MAX_GPUS; indices 0..gpus-1 */
    uint16_t cpus;
    uint64_t memory_mib;
} task_member;

typedef enum task_state {
    TASK_WAITING = 0, /* some dependency has not succeeded yet */
    TASK_READY,       /* queued for a member */
    TASK_RUNNING,
    TASK_SUCCEEDED,
    TASK_FAILED,
    TASK_CANCELLED,
} task_state;
#define TASK_STATES 6

typedef enum task_placement {
    TASK_PLACE_DEFAULT = 0, /* the first member (in the order added) that fits */
    TASK_PLACE_SPREAD,      /* the member running the fewest tasks that fits */
    TASK_PLACE_PACK,        /* the member running the most tasks that still fits */
    TASK_PLACE_MEMBER_SOFT, /* `member` if it fits, else as default */
    TASK_PLACE_MEMBER_HARD, /* only `member`: waits for it */
} task_placement;

typedef struct task_spec {
    uint16_t gpus, cpus;
    uint64_t memory_mib;
    /* Ids of the tasks it depends on: earlier tasks, or tasks of the same
     * batch (ids are given in order from taskset_next_id), earlier or
     * later, as long as there is no cycle. Duplicates are harmless. */
    const uint32_t *after;
    size_t n_after;
    task_placement placement;
    uint32_t member; /* for TASK_PLACE_MEMBER_*: a member id */
    /* Exits and timeouts retried at most this many times (when retry_exits);
     * 0: TASK_DEFAULT_RETRIES; TASK_NO_RETRIES: none. */
    uint32_t max_retries;
    /* A non-zero exit or a timeout is retried only when asked: a task that
     * is not idempotent must not run twice because it failed once. */
    bool retry_exits;
    uint32_t timeout_ms; /* per attempt; 0: none */
} task_spec;

/* What taskset_get shows of a task. */
typedef struct task_info {
    uint32_t id;
    task_state state;
    uint16_t gpus, cpus;
    uint64_t memory_mib;
    task_placement placement;
    uint32_t affinity;    /* spec.member */
    uint32_t max_retries; /* resolved: TASK_DEFAULT_RETRIES for 0 */
    bool retry_exits;
    uint32_t timeout_ms;
    uint32_t member;   /* running on, or last ran on; TASK_NO_MEMBER: never ran */
    uint64_t gpu_mask; /* GPU indices on `member` (bit i: index i) of the latest attempt */
    uint32_t attempts; /* starts, all causes; the current/latest attempt number (1-based) */
    uint32_t failures; /* attempts that exited non-zero or timed out */
    uint32_t losses;   /* attempts whose member was lost */
    int exit_code;     /* of the latest reported exit; -1 before any, or after a timeout */
    uint64_t submitted_at, started_at, finished_at; /* started_at: latest attempt; 0: none */
    char reason[112]; /* why it failed, was cancelled or was retried last; "" when none */
} task_info;

/* One decision of taskset_dispatch: start `task` on `member`, attempt
 * number `attempt` (to quote back in taskset_finished), on the GPUs whose
 * indices are set in gpu_mask (CUDA_VISIBLE_DEVICES). */
typedef struct task_start {
    uint32_t task, member, attempt;
    uint64_t gpu_mask;
} task_start;

/* One decision of taskset_tick: kill that attempt of `task` on `member`. */
typedef struct task_stop {
    uint32_t task, member, attempt;
} task_stop;

typedef struct taskset taskset;

/* A taskset over n members (n may be 0; members can be added later).
 * NULL with a reason on duplicate member ids, more than TASK_MAX_GPUS GPUs
 * on a member, or no memory. */
taskset *taskset_create(const task_member *members, size_t n, mu_error *errp);
void taskset_destroy(taskset *ts);

/* Called at every change of a task's state (and a running task requeued
 * is a change: running -> ready), after the change; the shell saves and
 * announces from it. fn must not call back into the taskset. NULL: none. */
typedef void (*task_observer_fn)(void *arg, uint32_t task, task_state from, task_state to);
void taskset_observe(taskset *ts, task_observer_fn fn, void *arg);

/* The id the next submitted task will get (ids are 0, 1, 2, ... in
 * submission order), so a batch can name its own tasks in `after`. */
uint32_t taskset_next_id(const taskset *ts);

/* Submit n tasks as one graph, atomically: they get ids taskset_next_id(),
 * +1, ... in order (the first in *first_id when not NULL). Tasks with no
 * unfinished dependency are ready at once. -1 with a reason naming the
 * task's index in the batch, and nothing changed, for: an empty batch, an
 * unknown dependency, a dependency on a task already failed or cancelled,
 * a cycle, more GPUs/CPUs/memory than any live member has (or than the
 * member of a hard affinity has), a hard affinity to a member that is not
 * live, a bad placement, or no memory (errno EINVAL or ENOMEM). */
int taskset_submit(taskset *ts, const task_spec *specs, size_t n, uint64_t now, uint32_t *first_id,
                   mu_error *errp);

/* Decide what to start now: up to max ready tasks, in submission order,
 * each on a member with the free resources, chosen by its placement and
 * never one that lost this task before. A task that fits nowhere now keeps
 * its place in the queue; up to TASK_BACKFILL_WINDOW such tasks are looked
 * past to start later ones. GPUs are the lowest free indices of the
 * member. The tasks are then running (attempt counted, started at now).
 * Returns how many were filled in out. */
size_t taskset_dispatch(taskset *ts, uint64_t now, task_start *out, size_t max);

/* The attempt `attempt` of `task` ended on `member` with exit_code.
 * 0: succeeded, and its dependents whose last dependency this was become
 * ready. Non-zero: ready again when retry_exits and failures <=
 * max_retries, else failed, with its dependents. Its resources are free
 * again. -1 and nothing changed: errno ENOENT for an unknown task, ESTALE
 * when the task is not running that attempt on that member (a duplicate
 * report, a late one from an attempt already timed out, cancelled or lost). */
int taskset_finished(taskset *ts, uint32_t task, uint32_t member, uint32_t attempt, int exit_code,
                     uint64_t now, mu_error *errp);

/* The attempt failed for a reason other than its exit code: it could not
 * start, it exited 0 but its result was refused, a signal ended it. `what`
 * says why (kept as the reason). Retried or failed exactly as a non-zero
 * exit. Errors as taskset_finished. */
int taskset_attempt_failed(taskset *ts, uint32_t task, uint32_t member, uint32_t attempt,
                           int exit_code, const char *what, uint64_t now, mu_error *errp);

/* That attempt vanished while its member stayed (the agent restarted and
 * no longer runs it): as a member loss for this one task, it is requeued
 * elsewhere, never back on that member. Errors as taskset_finished. */
int taskset_attempt_lost(taskset *ts, uint32_t task, uint32_t member, uint32_t attempt,
                         uint64_t now, mu_error *errp);

/* Member `member` was lost (offline, rerouted away): its capacity is gone,
 * and each task running on it is ready again with that member excluded for
 * it, whatever max_retries says; but a task lost more than
 * TASK_MAX_LOSSES times, or with a hard affinity to that member, fails.
 * The shell need not stop anything (the member is gone). Returns the
 * number of tasks that were running on it; 0 for an unknown or already
 * lost member. */
size_t taskset_member_lost(taskset *ts, uint32_t member, uint64_t now);

/* A member joins (a replacement), or a lost one comes back (same id: its
 * new capacity replaces the old; tasks that were lost on it still never go
 * back to it). -1 with a reason: EEXIST when that id is live, EINVAL for
 * more than TASK_MAX_GPUS GPUs, ENOMEM. */
int taskset_member_add(taskset *ts, const task_member *m, mu_error *errp);

/* Whether a member is in the set and not lost. */
bool taskset_member_live(const taskset *ts, uint32_t member);
/* Hold a live member (hold true): it keeps its running tasks but is given
 * no new ones (e.g. while its agent is disconnected or has not yet said
 * what it runs); release it with hold false. -1 (ENOENT) when not live. */
int taskset_member_hold(taskset *ts, uint32_t member, bool hold);

/* Cancel a task that is not finished, with why as its reason (NULL:
 * "cancelled"); its dependents fail ("dependency N cancelled"). *was_running (when not NULL) says
 * the shell must stop it on its member (task_info.member, attempt task_info.attempts); any later
 * report of that attempt is ESTALE. -1 with errno ENOENT (unknown) or
 * EALREADY (already succeeded, failed or cancelled). */
int taskset_cancel(taskset *ts, uint32_t task, const char *why, uint64_t now, bool *was_running,
                   mu_error *errp);

/* Time is now: running tasks past their timeout, up to max of them, are
 * written to out for the shell to kill, and count as a failed attempt
 * (retried only when retry_exits and failures remain). Call again while it
 * fills out completely. Returns how many were written. */
size_t taskset_tick(taskset *ts, uint64_t now, task_stop *out, size_t max);
/* The earliest timeout among running tasks; TASK_NO_DEADLINE when none. */
uint64_t taskset_next_deadline(const taskset *ts);

/* A task by id, or NULL. Valid until the next taskset_submit. */
const task_info *taskset_get(const taskset *ts, uint32_t task);
/* All tasks ever submitted. */
size_t taskset_count(const taskset *ts);
/* Tasks in state s now. */
size_t taskset_count_state(const taskset *ts, task_state s);
/* Members now live. */
size_t taskset_member_count(const taskset *ts);

/* The members that lost a task (it never runs there again), in the order
 * lost; at most TASK_MAX_LOSSES. */
size_t taskset_lost_on(const taskset *ts, uint32_t task, const uint32_t **members);

/* A task as saved, for taskset_restore. */
typedef struct task_restore {
    task_spec spec; /* `after`: ids among the restored tasks */
    task_state state;
    uint32_t attempts, failures, losses;
    int exit_code;
    uint32_t member; /* running on or last ran on; TASK_NO_MEMBER */
    uint64_t gpu_mask;
    uint64_t submitted_at, started_at, finished_at;
    const char *reason;
    const uint32_t *lost_on; /* taskset_lost_on as saved */
    size_t n_lost_on;
} task_restore;

/* Rebuild an empty taskset (created with the members as they are now)
 * from saved tasks, ids 0..n-1 in order: final tasks stay final; running
 * ones keep their member, GPUs and deadline when that member is live and
 * can hold them, else they are requeued as lost there; the rest are
 * waiting or ready by their dependencies, and whatever depends on a failed
 * or cancelled task fails. -1 with a reason for a graph that does not hold
 * together (bad ids, a cycle, a bad state) or no memory; the set is then
 * unusable and must be destroyed. */
int taskset_restore(taskset *ts, const task_restore *tasks, size_t n, uint64_t now, mu_error *errp);

/* Check the invariants, for tests and debug builds: per member, resources
 * in use equal the sum over its running tasks and are within capacity, no
 * GPU index given twice; a task is running iff it holds a member; waiting
 * iff some dependency has not succeeded; ready tasks are queued and
 * nothing else is; the counters match; every dependent of a failed or
 * cancelled task is failed or cancelled. -1 with the first violation. */
int taskset_check(const taskset *ts, mu_error *errp);

const char *task_state_name(task_state s);

#endif
