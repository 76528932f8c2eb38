/* prover.h - the agent's side of a proof-of-work challenge.
 *
 * The prover runs a backend (pow_backend.h) on a thread of its own so that
 * the agent's zmq_poll loop keeps heartbeating while the work runs. The
 * flow, as the agent drives it:
 *
 *   challenge arrives      prover_start(pv, id, &params, expected_ms)
 *   prover_fd() readable   prover_take() -> the Merkle root and the time
 *                          taken, sent to the broker
 *   spots requested        prover_spots(pv, id, idx, n, ...) -> the leaves
 *                          and their paths, sent to the broker
 *
 * Only one job runs at a time: a new challenge cancels the one running and
 * drops its result if it was not taken yet. The last finished job's tree is
 * kept for its spot checks until the next job finishes (a failed job leaves
 * none).
 *
 * All functions are for the one thread that owns the prover (the agent's
 * main loop); the background thread is internal.
 */
#ifndef MUSTER_AGENT_PROVER_H
#define MUSTER_AGENT_PROVER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "pow.h"

typedef struct prover prover;

typedef struct prover_config {
    const char *backend;    /* "cpu", "sim", "cuda" or "auto" (NULL: "auto") */
    double sim_speed;       /* sim: the job takes expected_ms / sim_speed (0: 1.0) */
    double sim_skip;        /* sim: fraction of leaves skipped, in [0, 1) */
    uint32_t sim_jitter_ms; /* sim: uniform 0..sim_jitter_ms added */
} prover_config;

/* Make a prover and start its thread. "auto" picks cuda when it is built in
 * and a device answers, else cpu. NULL with a reason: an unknown backend,
 * "cuda" not built in or without a device, bad sim options, out of memory
 * or threads. Also calls pow_init() (faster hashing, see pow.h). */
prover *prover_create(const prover_config *cfg, mu_error *errp);

/* Cancel any running job, join the thread, free everything (NULL is fine).
 * Returns once the backend has noticed the cancellation (between leaves). */
void prover_destroy(prover *pv);

/* The backend in use: "cpu", "sim" or "cuda" (borrowed, static). */
const char *prover_backend_name(const prover *pv);

/* A file descriptor that becomes readable when a job has finished (done or
 * failed); poll it with zmq_poll or poll(2), then call prover_take, which
 * makes it unreadable again. Owned by the prover. */
int prover_fd(const prover *pv);

/* Start computing a challenge; p is copied. A job already running is
 * cancelled (it finishes in the background, its result dropped) and a
 * finished result not yet taken is dropped. 0, or -1 with a reason when p
 * is out of range (pow_params_check); on failure nothing changes. Never
 * blocks on the work. */
int prover_start(prover *pv, uint64_t challenge_id, const pow_params *p, uint32_t expected_ms,
                 mu_error *errp);

/* Take the finished job's result:
 *    1  done: *challenge_id, root and *elapsed_ms (wall time measured by
 *       the prover from the start of the work to the root) are set;
 *    0  nothing has finished since the last take (or start);
 *   -1  the job failed: *challenge_id is set and *errp says why.
 * Any output pointer may be NULL. */
int prover_take(prover *pv, uint64_t *challenge_id, uint8_t root[POW_HASH_BYTES],
                uint32_t *elapsed_ms, mu_error *errp);

/* Answer the broker's spot check of challenge_id, which must be the last
 * job that finished successfully: for each of the n indices (n <=
 * POW_MAX_SPOT), the leaf hash into leaves + 32 * k and its path (depth
 * hashes, see pow_tree_path) into paths + 32 * depth * k, depth being
 * log2(leaves) of that challenge. -1 with a reason when the challenge is
 * not the last finished one, n is too large or an index is out of range;
 * nothing is written then. */
int prover_spots(const prover *pv, uint64_t challenge_id, const uint32_t *idx, size_t n,
                 uint8_t *leaves, uint8_t *paths, mu_error *errp);

#endif
