/* runner.h - the agent's task runner: task attempts as child processes.
 *
 * The agent's main loop owns one runner. It starts attempts the broker sends
 * (runner_start), polls the runner's file descriptors beside its own socket
 * (runner_pollfds, runner_timeout_ms) and calls runner_process, which reads
 * output, enforces deadlines, reaps exits and reports them as events. No
 * ZeroMQ and no protobuf here: plain structs, so the tests drive it alone.
 *
 * Each attempt runs in <work_dir>/<cluster_id>/<number>.<attempt>/ (created),
 * which holds output.log - every byte the attempt wrote, complete whatever
 * was forwarded - and is the task's working directory unless it names one.
 *
 * The child process:
 *   - leads a process group of its own; when it exits, whatever remains of
 *     the group is SIGKILLed, so nothing outlives its task (a process that
 *     leaves the group with setsid() escapes: that needs cgroups);
 *   - reads /dev/null; stdout and stderr share one pipe (interleaved as
 *     written); inherits no other descriptor of the agent;
 *   - has every signal at its default disposition, none blocked;
 *   - gets a minimal environment: PATH (the agent's, or
 *     /usr/local/bin:/usr/bin:/bin), HOME and LANG when the agent has them,
 *     MUSTER_CLUSTER_ID, MUSTER_TASK (the number), MUSTER_ATTEMPT,
 *     MUSTER_TASK_DIR (the attempt directory, absolute) and
 *     CUDA_VISIBLE_DEVICES (the GPU indices, "0,3"; "" for a task without
 *     GPUs, so it sees none); then the task's own NAME=value entries, which
 *     may override the first three but never CUDA_VISIBLE_DEVICES nor the
 *     MUSTER_ ones (such entries are ignored: the GPUs are the broker's
 *     placement, not the task's choice);
 *   - is found by searching argv[0] in that environment's PATH (as execvp,
 *     without the /bin/sh fallback for scripts lacking a #! line).
 *
 * Timeouts and kills: SIGTERM to the group, SIGKILL after kill_grace_ms.
 *
 * Reaping uses a pidfd (Linux >= 5.3), so an exit wakes poll(); without one
 * runner_timeout_ms asks to be called every 100 ms. The runner installs no
 * signal handler; it needs SIGCHLD not to be ignored (SIG_IGN would reap the
 * children before it can).
 *
 * Everything is for the one thread that owns the runner.
 */
#ifndef MUSTER_AGENT_RUNNER_H
#define MUSTER_AGENT_RUNNER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct runner runner;

/* The hard ceiling of a result file, whatever a start message asks. */
#define RUNNER_RESULT_CEILING (16u << 20)
/* Attempts running at once; runner_start refuses more (EAGAIN). */
#define RUNNER_MAX_ATTEMPTS 256

typedef struct runner_config {
    const char *work_dir;      /* root of the attempt directories (created) */
    size_t tail_bytes;         /* output tail kept for the exit event [64 KiB] */
    uint32_t kill_grace_ms;    /* SIGTERM, then SIGKILL after this [5000] */
    uint32_t result_max_bytes; /* cap when a task gives 0 [1 MiB]; <= RUNNER_RESULT_CEILING */
    size_t forward_max_bytes;  /* output waiting to be forwarded (see runner_event_fn), per
                                  attempt, beyond which the oldest is dropped (still in
                                  output.log) [256 KiB] */
    bool no_pidfd;             /* tests: reap by polling, as on kernels before 5.3 */
} runner_config;

/* One attempt to start. Every pointer is borrowed for the call. */
typedef struct runner_task {
    const char *cluster_id; /* [A-Za-z0-9_.-], 1..128 characters, not starting with '.' */
    uint32_t number;
    uint32_t attempt;
    const char *const *argv; /* argc entries, the first not empty */
    size_t argc;
    const char *const *env; /* "NAME=value" */
    size_t n_env;
    const char *cwd; /* NULL or "": the attempt directory; relative: to work_dir; must exist */
    const uint32_t *gpus;
    size_t n_gpus;
    uint32_t timeout_ms;       /* 0: none */
    const char *result_file;   /* NULL or "": none; relative to the cwd, no ".."; removed
                                  before the start, so only this attempt can write it */
    uint32_t result_max_bytes; /* 0: the runner's default; clamped to the ceiling */
} runner_task;

typedef enum runner_event_kind { RUNNER_OUTPUT = 1, RUNNER_EXIT } runner_event_kind;

/* An event. Every pointer is borrowed, valid only during the callback. */
typedef struct runner_event {
    runner_event_kind kind;
    const char *cluster_id;
    uint32_t number;
    uint32_t attempt;
    /* RUNNER_OUTPUT: len > 0 bytes at offset (counting every byte of this
     * attempt's output), after `dropped` bytes that were not forwarded (they
     * are in output.log), so offset == the previous event's offset + len +
     * dropped (of the events taken, see runner_event_fn). RUNNER_EXIT: the last tail_bytes of the
     * output (for a person to read), offset being that of data[0]; dropped is 0. */
    const uint8_t *data;
    size_t len;
    uint64_t offset;
    uint64_t dropped;
    /* RUNNER_EXIT only (the attempt is gone after it). */
    int exit_code;         /* WEXITSTATUS; -1 when killed by a signal or never started,
                              127 when the program could not be executed */
    int signal;            /* the signal that ended it, 0 none */
    bool timed_out;        /* ended by its timeout */
    const char *error;     /* NULL, or why it could not run or its result is missing,
                              or "cancelled" (runner_kill) */
    const uint8_t *result; /* the result file, read after exit 0 only */
    size_t result_len;
    uint64_t output_bytes; /* every byte of output, forwarded or not */
} runner_event;

/* Called for each event. For RUNNER_OUTPUT, return true when the bytes
 * were taken (sent); false leaves them waiting, offered again 100 ms later
 * with whatever came meanwhile, the oldest beyond forward_max_bytes being
 * dropped and counted in `dropped` - backpressure from a slow or absent
 * link. At exit, output still refused is given up (it is in output.log);
 * the exit event always comes, its return value is ignored. */
typedef bool (*runner_event_fn)(void *arg, const runner_event *ev);

/* Make a runner, creating cfg->work_dir (mode 0700) when missing. Zero
 * fields take their defaults. NULL with a reason: no work_dir, one that
 * cannot be created, a result cap over the ceiling, out of memory. */
runner *runner_create(const runner_config *cfg, mu_error *errp);

/* SIGKILL every process group still running, reap the leaders, free
 * everything; no events (NULL is fine). May wait for the kernel to finish
 * killing, never for a task. */
void runner_destroy(runner *r);

/* Start an attempt at monotonic time NOW (ms). 0 when it started or when
 * it could not run for a reason of its own (a bad cwd, env entry or
 * result_file, a program that cannot be executed, fork failing...): that
 * comes as a RUNNER_EXIT with `error` from the next runner_process, so
 * every attempt ends in exactly one exit event. -1 with errno and a reason,
 * nothing started and no event to come: EINVAL (no task, empty argv, a
 * cluster id unfit for a directory name), EEXIST (that cluster, number and
 * attempt is already here), EAGAIN (RUNNER_MAX_ATTEMPTS running), ENOMEM.
 * May block for as long as exec() takes. */
int runner_start(runner *r, const runner_task *t, uint64_t now, mu_error *errp);

/* Stop an attempt: SIGTERM to its group, SIGKILL kill_grace_ms later (a
 * second kill keeps the first one's schedule). Its exit event says
 * error "cancelled". 0, or -1 with errno ENOENT when no such attempt. */
int runner_kill(runner *r, const char *cluster_id, uint32_t number, uint32_t attempt, uint64_t now);
/* runner_kill every attempt of a cluster. Returns how many. */
size_t runner_kill_cluster(runner *r, const char *cluster_id, uint64_t now);

/* Fill at most max pollfds (events POLLIN) the caller should poll; returns
 * how many the runner wants, which may be more than max (call again with
 * room for them all). revents are not read back: runner_process looks at
 * everything. */
size_t runner_pollfds(const runner *r, struct pollfd *out, size_t max);

/* Milliseconds until runner_process must run even if no fd is readable: 0
 * when it has work now, -1 when no timer is needed (nothing running, or
 * only attempts whose fds will say when). */
int runner_timeout_ms(const runner *r, uint64_t now);

/* Read output, enforce deadlines, reap, and call fn for each event; never
 * blocks. fn must not call back into the runner. */
void runner_process(runner *r, uint64_t now, runner_event_fn fn, void *arg);

/* Attempts not yet reported by their exit event. */
size_t runner_count(const runner *r);

/* Call fn for each attempt still running (not yet reported by an exit
 * event), for the TaskReport. fn must not call back into the runner. */
void runner_each(const runner *r,
                 void (*fn)(void *arg, const char *cluster_id, uint32_t number, uint32_t attempt),
                 void *arg);

#endif
