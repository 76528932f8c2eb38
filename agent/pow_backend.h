/* pow_backend.h - the proof-of-work backends behind one ops table.
 *
 * A backend computes every leaf hash of a challenge (pow.h specifies the
 * function); the prover (prover.h) runs it in a background thread, builds
 * the Merkle tree and answers spot checks. Backends:
 *
 *   cpu   pow_leaf on one thread: portable, the reference.
 *   sim   for tests and the simulator: the real leaves on the CPU, then the
 *         wall time padded to what a GPU of a given apparent speed would
 *         take; it can also play a cheater that skips leaves.
 *   cuda  (pow_cuda.h) one GPU thread per leaf; built only when CMake found
 *         nvcc.
 *
 * A backend polls the cancel token between leaves (or kernel launches) and
 * gives up when it is set, so a superseded or destroyed job stops soon.
 */
#ifndef MUSTER_AGENT_POW_BACKEND_H
#define MUSTER_AGENT_POW_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "pow.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Set by the prover to stop a running job (opaque, owned by the prover,
 * safe to read from any thread). */
typedef struct pow_cancel pow_cancel;

/* Nonzero once the job has been cancelled. NULL is never cancelled. */
int pow_cancel_requested(const pow_cancel *c);

/* What a backend is given with each job. */
typedef struct pow_job {
    uint64_t challenge_id;
    pow_params params;    /* checked by the prover before the job starts */
    uint32_t expected_ms; /* the broker's honest time for the claimed GPU (the
                           * sim backend's yardstick; others ignore it) */
} pow_job;

/* Options of the sim backend (ignored by the others). */
typedef struct pow_sim_opts {
    double speed;       /* apparent speed: the job takes expected_ms / speed
                         * (1.0 honest, 0.5 a spoofer at half the claimed
                         * throughput); > 0 */
    double skip;        /* fraction of leaves not computed, in [0, 1): a cheater
                         * skipping work (see pow_sim_skipped) */
    uint32_t jitter_ms; /* uniform 0..jitter_ms added to the padded time, drawn
                         * from the seed */
} pow_sim_opts;

typedef struct pow_backend_ops {
    const char *name;
    /* Make the backend's context in *ctx (NULL is a valid context). 0, or -1
     * with a reason (e.g. "no CUDA device: ..."). */
    int (*create)(const pow_sim_opts *opts, void **ctx, mu_error *errp);
    /* Free a context made by create (NULL is fine). */
    void (*destroy)(void *ctx);
    /* Compute every leaf hash of job into leaf_hashes (leaves * 32 bytes,
     * leaf 0 first). 0 when done; -1 with a reason when it failed or was
     * cancelled (leaf_hashes then holds nothing useful). Called from the
     * prover's thread, one job at a time per context. */
    int (*compute)(void *ctx, const pow_job *job, uint8_t *leaf_hashes, const pow_cancel *cancel,
                   mu_error *errp);
} pow_backend_ops;

/* The backends (static tables, never freed). */
const pow_backend_ops *pow_backend_cpu(void);
const pow_backend_ops *pow_backend_sim(void);

/* Whether the sim backend, with skip fraction `skip`, skips leaf i of a
 * challenge: a fixed function of the seed and i, so tests know exactly
 * which spots must fail. About skip * L leaves are skipped. */
bool pow_sim_skipped(const pow_params *p, double skip, uint32_t i);

/* The garbage the sim backend puts in place of skipped leaf i:
 * H(le32(i)). */
void pow_sim_garbage(uint32_t i, uint8_t out[POW_HASH_BYTES]);

#ifdef __cplusplus
}
#endif

#endif
