/* workload.h - a workload: cluster requests in arrival order.
 *
 * A request asks for WORKERS workers with GPUS_PER_WORKER GPUs each, of one
 * GPU model ("" = any model), optionally in one region ("" = anywhere), for
 * DURATION_S seconds, arriving ARRIVAL_S seconds after the trace start; it
 * may name a placement (pack or spread). It may carry tasks, run in the
 * cluster once it is ready (Ray-style, scheduler/core/tasks.h): TASKS
 * tasks of TASK_GPUS GPUs each, each attempt running a time drawn from
 * TASK_S (seconds) and exiting non-zero with probability TASK_FAIL; a
 * non-zero exit is retried at most TASK_RETRIES times (a member lost is
 * always retried). The owner of a cluster with tasks releases it when its
 * last task is final; its duration is then the time booked.
 *
 * Strings are interned in the workload (a million requests share a dozen
 * model and region names) and borrowed by the request records.
 */
#ifndef MUSTER_SIM_WORKLOAD_H
#define MUSTER_SIM_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "error.h"
#include "textio.h"

/* Sanity bounds on a request's tasks. */
#define WORKLOAD_MAX_TASKS        1000000u
#define WORKLOAD_MAX_TASK_RETRIES 1000u

typedef struct workload_request {
    double arrival_s;         /* seconds from the trace start, >= 0 */
    double duration_s;        /* > 0 */
    uint32_t workers;         /* >= 1 */
    uint32_t gpus_per_worker; /* >= 1 */
    const char *gpu_model;    /* "" = any model */
    const char *region;       /* "" = any region */
    const char *name;         /* the request's id in its source trace, or "" */
    const char *placement;    /* "pack", "spread", or "" (as the replay decides) */
    /* Tasks (none when tasks is 0; the other task fields are then unused). */
    uint32_t tasks;        /* tasks to run, <= WORKLOAD_MAX_TASKS */
    uint32_t task_gpus;    /* GPUs per task, <= gpus_per_worker; 0: gpus_per_worker */
    uint32_t task_retries; /* non-zero exits retried, <= WORKLOAD_MAX_TASK_RETRIES */
    double task_fail;      /* probability an attempt exits non-zero, [0, 1] */
    dist task_s;           /* run time of one attempt, seconds */
} workload_request;

typedef struct workload workload;

/* NULL on allocation failure. */
workload *workload_create(void);
/* Accepts NULL. */
void workload_destroy(workload *w);

/* Append a copy of *r (NULL strings are read as ""). Fails, with w
 * unchanged, on an arrival that is negative or not finite, a duration that
 * is not > 0, zero workers or GPUs, a placement other than "", "pack" or
 * "spread", tasks out of bounds (more GPUs per task than per worker, a
 * failure probability outside [0, 1], too many tasks or retries), or no
 * memory. */
int workload_append(workload *w, const workload_request *r, mu_error *errp);
/* Order by arrival, keeping the order of equal arrivals (stable). Returns
 * 0, or -1 with w unchanged on allocation failure. */
int workload_sort(workload *w, mu_error *errp);
size_t workload_count(const workload *w);
/* Borrowed; valid until the next append, sort or set. NULL if out of range. */
const workload_request *workload_at(const workload *w, size_t i);
/* Set the region of request i ("" = any). Returns 0/-1. */
int workload_set_region(workload *w, size_t i, const char *region, mu_error *errp);
/* Give every request without tasks one task per worker, with all the
 * worker's GPUs of the request, running exactly the request's duration
 * (how `muster-sim run --tasks-per-worker` reads Alibaba pods and SWF jobs:
 * the trace's job is the work). Returns how many requests got tasks. */
size_t workload_tasks_per_worker(workload *w);
/* True when some request has tasks. */
bool workload_has_tasks(const workload *w);

/* Append W as JSON lines (see workload_read_jsonl) to out. */
int workload_write_jsonl(const workload *w, sbuf *out, mu_error *errp);

/* What a reader saw (fields a format lacks stay 0). */
typedef struct workload_read_stats {
    size_t records;          /* data lines read */
    size_t requests;         /* requests kept */
    size_t skipped_no_gpu;   /* Alibaba: num_gpu 0 (CPU-only pods) */
    size_t skipped_bad_time; /* Alibaba: a missing time or deletion <= creation;
                                SWF: run time unknown (-1) or 0 */
    size_t skipped_no_procs; /* SWF: neither allocated nor requested processors */
    size_t fractional_gpu;   /* Alibaba: gpu_milli < 1000, rented as whole GPUs */
    size_t never_scheduled;  /* Alibaba: no scheduled_time (pending when the trace
                                ended); kept */
    size_t unmapped_model;   /* Alibaba: gpu_spec with no catalog match; kept as any */
    size_t rounded_up;       /* SWF: processors not a multiple of the worker size */
} workload_read_stats;

/* Native JSON lines: one object per line,
 *   {"arrival_s": 0, "duration_s": 3600, "workers": 2, "gpus_per_worker": 8,
 *    "gpu_model": "A100 80GB", "region": "europe", "name": "job-1",
 *    "placement": "spread", "tasks": 64, "task_s": "exp:600",
 *    "task_gpus": 1, "task_fail": 0.02, "task_retries": 2}
 * arrival_s, duration_s, workers and gpus_per_worker are required; gpu_model,
 * region, name and placement ("pack" or "spread") are optional ("" or
 * absent = any, or as the replay decides). Tasks are optional: "tasks"
 * (1..WORKLOAD_MAX_TASKS) needs "task_s", the run time of an attempt in
 * seconds, a number (every attempt that long) or a distribution (dist.h,
 * in seconds); "task_gpus" (default gpus_per_worker, at most that),
 * "task_fail" (default 0) and "task_retries" (default 0) need "tasks".
 * Unknown keys are errors; lines must be in non-decreasing arrival; blank
 * lines are skipped; a file with no request is an error. */
workload *workload_read_jsonl(const char *path, workload_read_stats *stats, mu_error *errp);

/* Alibaba cluster-trace-gpu-v2023 pod list (openb_pod_list_*.csv). Columns
 * are found by header name; needed: name, num_gpu, gpu_milli, gpu_spec,
 * creation_time, deletion_time (scheduled_time is used when present). Each
 * pod with num_gpu >= 1 is one request: 1 worker with num_gpu GPUs (a
 * gpu_milli below 1000, a share of one GPU, is rented as the whole GPU),
 * arriving at creation_time, lasting deletion_time - creation_time; the
 * model is workload_alibaba_model(gpu_spec). Pods with num_gpu 0, a missing
 * time or deletion <= creation are skipped and counted. Malformed numbers
 * and wrong field counts are errors. */
workload *workload_read_alibaba(const char *path, workload_read_stats *stats, mu_error *errp);

/* The catalog model (data/gpus.json) named by an Alibaba gpu_spec, "" when
 * there is no clear match. A spec may list alternatives ("V100M16|V100M32");
 * it maps to a model only when every alternative maps to that same model.
 * *unmapped is set when SPEC is not empty yet maps to "". */
const char *workload_alibaba_model(const char *spec, int *unmapped);

/* Standard Workload Format (Parallel Workloads Archive): ';' comment lines,
 * 18 whitespace-separated numeric fields per job. A job is a request
 * arriving at its submit time (field 2) for its run time (field 4), of
 * processors = allocated (field 5) or, when that is -1, requested (field 8).
 * One processor is one GPU; workers hold NODE_GPUS GPUs each (8 when 0):
 * a job of p <= NODE_GPUS processors is 1 worker of p GPUs, a larger one is
 * ceil(p / NODE_GPUS) workers of NODE_GPUS GPUs (rounding up is counted).
 * Jobs with an unknown or zero run time, or no processor count, are skipped
 * and counted. Jobs are sorted by submit time. */
workload *workload_read_swf(const char *path, uint32_t node_gpus, workload_read_stats *stats,
                            mu_error *errp);

#endif
