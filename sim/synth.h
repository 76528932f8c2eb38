/* synth.h - synthetic traces: churn and workload generators, and the
 * deterministic filling-in of what real traces lack.
 *
 * Every generator is a pure function of its parameters, seed included:
 * the same parameters give the same trace, byte for byte, on every run
 * (same build and libm). Each node draws from its own stream of the seed
 * (rng_seed_stream), so node i's history does not depend on how many nodes
 * there are.
 *
 * Parameters are set by name with a string value, the same way from the
 * command line (--name VALUE, '-' for '_') and from a JSON parameter file
 * ({"name": VALUE, ...}, numbers or strings), so both are checked by the
 * same code. Lengths are in hours, in dist.h syntax.
 */
#ifndef MUSTER_SIM_SYNTH_H
#define MUSTER_SIM_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "churn.h"
#include "dist.h"
#include "error.h"
#include "mix.h"
#include "workload.h"

/* --- churn -----------------------------------------------------------------
 *
 * N nodes alternate between online sessions and offline gaps, both drawn
 * from the given distributions (hours). Each node is simulated from well
 * before time 0 (ten mean cycles, at most a year) so that the trace starts
 * in equilibrium; at time 0 every node's state is emitted (a JOIN or a
 * LEAVE at 0), then each transition until the end. Times are rounded to
 * milliseconds.
 *
 * Daily cycle: with diurnal amplitude a (0..0.95), the rate at which
 * offline nodes come back is multiplied by 1 + a cos(2 pi (h - peak) / 24)
 * where h is the node's local hour (UTC plus its country's offset): gaps
 * are drawn in "operational time" and stretched or shrunk through that
 * rate, so the long-run mean gap is unchanged while joins crowd into local
 * evenings. Session lengths are not modulated.
 *
 * Spoofers: each node is a spoofer with probability `spoofers`; a spoofer
 * gets a SPOOF event right after its first JOIN.
 *
 * Node attributes come from the mixes when given (GPU model, GPU count,
 * country; with GPU models but no count mix, a node has 1 GPU) and are
 * left unstated otherwise.
 */
typedef struct synth_churn_params {
    uint32_t nodes; /* "nodes", default 1000 */
    double days;    /* "days", default 7 */
    dist session;   /* "session": required */
    dist gap;       /* "gap": required */
    bool has_session, has_gap;
    double spoofers;  /* "spoofers", fraction 0..1, default 0 */
    uint64_t seed;    /* "seed", default 1 */
    double diurnal;   /* "diurnal": "AMP[,PEAK_HOUR]", default 0 (off) */
    double peak_hour; /* local hour of the most joins, default 20 */
    mix *gpus;        /* "gpus": "MODEL:WEIGHT,..." (owned; NULL unstated) */
    mix *gpu_counts;  /* "gpu_counts": "COUNT:WEIGHT,..." */
    mix *countries;   /* "countries": "CC:WEIGHT[:UTC_OFFSET_H],..." */
} synth_churn_params;

void synth_churn_params_init(synth_churn_params *p);
/* Frees the mixes; p can be initialised again. */
void synth_churn_params_free(synth_churn_params *p);
/* Set parameter KEY (JSON name) from VALUE. Returns 0, or -1 with the
 * reason in errp (p unchanged) on an unknown key or a bad value. */
int synth_churn_params_set(synth_churn_params *p, const char *key, const char *value,
                           mu_error *errp);
/* Apply a JSON parameter file. Returns 0/-1 ("FILE: key: reason"). */
int synth_churn_params_load(synth_churn_params *p, const char *path, mu_error *errp);
/* NULL-terminated list of the keys, for help and checks. */
extern const char *const synth_churn_keys[];

/* Generate. Fails on missing required parameters or no memory. */
churn_trace *synth_churn_generate(const synth_churn_params *p, mu_error *errp);

/* Fill in what a trace does not say, per node: a missing GPU model from
 * GPUS, a missing GPU count from COUNTS (1 when a model was filled and
 * COUNTS is NULL), a missing country from COUNTRIES. Each node draws from
 * stream i of a seed-derived key, so the result depends only on the seed,
 * the mixes and the node's index. NULL mixes fill nothing. Returns 0/-1. */
int synth_fill_nodes(churn_trace *t, const mix *gpus, const mix *counts, const mix *countries,
                     uint64_t seed, mu_error *errp);

/* --- workload ----------------------------------------------------------------
 *
 * Poisson arrivals at `rate` requests per hour over `days`; each request
 * draws its workers, GPUs per worker, GPU model ("any" = any model) and
 * region from the mixes and its duration (hours) from `duration`.
 *
 * Tasks (optional): with a `tasks` mix, each request draws how many tasks
 * it runs (0 allowed) and their GPUs (`task_gpus`, capped at the request's
 * GPUs per worker; all of them when not given) from their own stream of
 * the seed, so a workload without tasks is the same with or without this
 * code; every task of a request runs a time drawn from `task_duration`
 * (hours; written in seconds), fails with probability `task_fail` and is
 * retried `task_retries` times.
 */
typedef struct synth_workload_params {
    double rate;   /* "rate": requests per hour, required */
    double days;   /* "days", default 1 */
    dist duration; /* "duration": hours, required */
    bool has_rate, has_duration;
    uint64_t seed;        /* "seed", default 1 */
    mix *workers;         /* "workers": "COUNT:WEIGHT,...", default 1 */
    mix *gpus_per_worker; /* "gpus_per_worker": "COUNT:WEIGHT,...", default 1 */
    mix *models;          /* "models": "MODEL:WEIGHT,..." ("any"), default any */
    mix *regions;         /* "regions": "REGION:WEIGHT,...", default any */
    mix *tasks;           /* "tasks": "COUNT:WEIGHT,..." per request (0 allowed), default none */
    dist task_duration;   /* "task_duration": hours, required with tasks */
    bool has_task_duration;
    mix *task_gpus;        /* "task_gpus": "COUNT:WEIGHT,...", default gpus_per_worker */
    double task_fail;      /* "task_fail": probability an attempt exits non-zero [0] */
    uint32_t task_retries; /* "task_retries": non-zero exits retried [0] */
} synth_workload_params;

void synth_workload_params_init(synth_workload_params *p);
void synth_workload_params_free(synth_workload_params *p);
int synth_workload_params_set(synth_workload_params *p, const char *key, const char *value,
                              mu_error *errp);
int synth_workload_params_load(synth_workload_params *p, const char *path, mu_error *errp);
extern const char *const synth_workload_keys[];

workload *synth_workload_generate(const synth_workload_params *p, mu_error *errp);

/* Give every request without a region one from REGIONS, drawn from stream
 * i of a seed-derived key (deterministic per request index). Returns 0/-1. */
int synth_fill_regions(workload *w, const mix *regions, uint64_t seed, mu_error *errp);

/* Apply a JSON parameter file through SET (shared by both loaders):
 * numbers are passed as their shortest exact text, strings as they are. */
int synth_params_load(const char *path, void *p,
                      int (*set)(void *p, const char *key, const char *value, mu_error *errp),
                      mu_error *errp);

#endif
