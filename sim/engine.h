/* engine.h - the replay: a churn trace and a workload driven through the
 * unchanged scheduler core (scheduler.h) in virtual time.
 *
 * A discrete-event simulator. Its clock jumps from one event to the next;
 * events wait in a binary heap (evq.h): the trace's churn events and
 * request arrivals (fed one at a time), members' acknowledgements after a
 * modelled provisioning delay, the ends of clusters' durations, and the
 * report's sample points. Between events the engine asks the core for its
 * next deadline (sched_next_deadline) and ticks it there, so the core's own
 * timers (reconnect grace, provisioning timeout, reroute retries, expiry)
 * run exactly when they fall due. The engine decides no policy: matching,
 * liveness, degrading and rerouting are the core's.
 *
 * Agents are modelled, not run:
 *   - a join registers the worker (sched_register, a worker_spec built from
 *     the node's attributes);
 *   - a leave is a clean goodbye with probability `goodbye`, else a failure:
 *     the core is told the connection is gone (sched_disconnected) and its
 *     reconnect grace, set to liveness x heartbeat, takes the worker offline
 *     unless it comes back first;
 *   - heartbeats are not events (a million workers beating every second for
 *     a year would be 3e13 of them): the core's registry is configured with
 *     a keep-alive interval instead of the agents' heartbeat interval, and a
 *     live worker is touched only when the core would otherwise consider it
 *     silent, at most once per keep-alive interval (docs/sim.md, "The
 *     heartbeat model");
 *   - a member told it joined a cluster acknowledges after a delay drawn
 *     from `ack_delay`, if it is still up by then;
 *   - with `verify`, the core's proof-of-work verification runs and each
 *     agent answers its challenges in virtual time (engine_verify.c): the
 *     commitment comes a round trip plus the work time (the challenge's
 *     expected time / the agent's speed) after the challenge, the proofs a
 *     round trip after the spots are asked for, and both are real (the
 *     leaves and Merkle paths of common/pow.h), so the core judges them
 *     exactly as musterd would. Honest agents run at about their claimed
 *     speed, spoofers (from a churn `spoof` event, or `spoofers`) slower;
 *     a share `jittery` of the nodes have a heavy-tailed round trip;
 *   - requests with tasks (workload.h) run them in their cluster once it
 *     is ready, through the core's taskset (engine_tasks.c): attempts end
 *     after a drawn run time, fail with the request's probability, are
 *     requeued by the core when their member is lost; the owner releases
 *     the cluster when its last task is final.
 *
 * Deterministic: every random draw comes from a stream of the seed keyed by
 * what it is for (node, request, member), so the same inputs and seed give
 * the same report, byte for byte.
 */
#ifndef MUSTER_SIM_ENGINE_H
#define MUSTER_SIM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "churn.h"
#include "dist.h"
#include "error.h"
#include "mix.h"
#include "regions.h"
#include "report.h"
#include "scheduler.h"
#include "tiers.h"
#include "workload.h"

typedef enum engine_policy {
    ENGINE_AS_REQUESTED = 0, /* the request's own placement (pack when it names none) */
    ENGINE_PACK,
    ENGINE_SPREAD,
} engine_policy;

/* Where a long run is: handed to the progress callback. */
typedef struct engine_progress {
    uint64_t events;  /* processed so far */
    uint64_t touches; /* keep-alive touches so far (not events) */
    uint64_t now_ms;  /* virtual time reached */
    uint64_t end_ms;  /* where the run stops */
    bool done;        /* the last call of a run */
} engine_progress;

typedef struct engine_config {
    const catalog *cat;          /* borrowed, required */
    const region_table *regions; /* borrowed, required */
    const tier_table *tiers;     /* borrowed, required */
    uint64_t seed;               /* [1] */
    uint32_t heartbeat_ms;       /* the agents' heartbeat interval [1000] */
    uint32_t liveness;           /* intervals of silence before offline [3] */
    uint32_t keepalive_ms;       /* the core registry's interval [3600000] */
    double goodbye;              /* fraction of leaves that are clean goodbyes [0] */
    dist ack_delay;              /* seconds from a join notice to the ack [const:2] */
    engine_policy policy;        /* [as requested] */
    tier min_tier;               /* every request's lowest tier [low] */
    uint64_t interval_ms;        /* time series step [3600000] */
    uint64_t until_ms;           /* stop here; 0: the end of the traces */
    uint32_t provision_timeout_ms, max_hours, reroute_retry_ms; /* 0: the core's defaults */
    /* Filling in what the churn trace does not say, per node (synth.h,
     * synth_fill_nodes); NULL: the defaults in docs/sim.md. Borrowed. */
    const mix *fill_gpus, *fill_gpu_counts, *fill_countries;
    const mix *fill_tiers;   /* bandwidth tier per node: "low:2,medium:4,..." */
    const mix *fill_regions; /* requests without a region; NULL: left as any */
    /* Verification (docs/sim.md, "Verification"): off by default, so that
     * every worker counts as verified and large replays stay fast. */
    bool verify;
    double spoofers;             /* share of nodes spoofing from their first join [0] */
    dist honest_speed;           /* an honest agent's speed per check, x its claim */
    dist spoofer_speed;          /* a spoofer's speed, drawn once per node, x its claim */
    dist rtt_ms;                 /* round trip of an ordinary link, milliseconds */
    double jittery;              /* share of nodes on a jittery link [0] */
    dist jitter_rtt_ms;          /* their round trips, milliseconds */
    double verify_scale;         /* pow units per TFLOPS-second; 0: automatic */
    uint32_t verify_light_ms;    /* light checks of hired workers; 0: none [0] */
    uint32_t verify_reverify_ms; /* full checks of free workers; 0: the core's [6 h] */
    /* Called every 65536 events or touches, and once at the end; may be
     * NULL. */
    void (*progress)(void *arg, const engine_progress *p);
    void *progress_arg;
    /* Names for the report ("" when absent). */
    const char *churn_source, *churn_format, *workload_source, *workload_format;
} engine_config;

/* The defaults above. The catalog, regions and tiers stay NULL. */
void engine_config_init(engine_config *cfg);

typedef struct engine engine;

/* Prepare a replay of CHURN (required) and WL (NULL: no requests). Both
 * are borrowed and must outlive the engine; attributes the churn trace
 * lacks are filled into it (synth_fill_nodes, with the config's mixes and
 * seed: `muster-sim convert churn` with the same mixes and seed shows what
 * was filled) and so are missing regions of WL when fill_regions is given.
 * Fails, with a reason naming the node or request, on a GPU model or
 * region not in the tables, a country not in the region table, a node with
 * more GPUs than a worker may have, or a bad config. */
engine *engine_create(const engine_config *cfg, churn_trace *churn, workload *wl, mu_error *errp);
void engine_destroy(engine *e);

/* Run to the end. Returns 0, or -1 with a reason (out of memory, or the
 * core refused something the engine had checked: a bug). Once only. */
int engine_run(engine *e, mu_error *errp);

/* The measurements (complete after engine_run). Borrowed. */
const sim_report *engine_report(const engine *e);
/* The core, for checks (sched_check) and sizes. */
const sched *engine_sched(const engine *e);
/* Bytes the engine holds besides the core and the traces. */
size_t engine_bytes(const engine *e);

const char *engine_policy_name(engine_policy p);
/* "pack", "spread", "as-requested". 0/-1. */
int engine_policy_parse(const char *s, engine_policy *out);

/* The default fill-in mixes (docs/sim.md). */
#define ENGINE_DEFAULT_GPUS       "RTX 4090:4,RTX 3090:3,A100 80GB:2,H100 SXM:1"
#define ENGINE_DEFAULT_GPU_COUNTS "1:6,2:2,4:1,8:1"
#define ENGINE_DEFAULT_COUNTRIES  "US:30,CA:5,BR:5,DE:15,GB:10,FR:10,IN:5,JP:10,KR:5,AU:5"
#define ENGINE_DEFAULT_TIERS      "low:2,medium:4,high:3,ultra:1"

/* The default agent models of verification (docs/sim.md). */
#define ENGINE_DEFAULT_HONEST_SPEED  "lognormal:0,0.03"
#define ENGINE_DEFAULT_SPOOFER_SPEED "uniform:0.3,0.7"
#define ENGINE_DEFAULT_RTT_MS        "lognormal:3.9,0.3"
#define ENGINE_DEFAULT_JITTER_RTT_MS "lognormal:4.5,1"

#endif
