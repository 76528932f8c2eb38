/* verify.h - proof-of-work verification of workers: the policy.
 *
 * A worker is hired only after it has shown it has the GPU it claims. The
 * broker sends a challenge sized so the claimed GPU needs `target_ms` for it
 * (catalog FP32 throughput x a calibration scale; scratch memory from the
 * claimed VRAM), built from a fresh seed so nothing large crosses the wire
 * (pow.h). The agent commits to every leaf with a Merkle root; only then
 * does the broker pick a few leaves at random, and checks each itself
 * (recomputes it, follows its path to the root). Skipped work is caught by
 * the spots, slow work by the clock.
 *
 * Timing: the time to the commitment minus the smallest round trip seen in
 * the recent spot exchanges (the one leg with no work in it) is the compute
 * time; jitter only ever adds to it, so a spoofer slower than min_ratio of
 * its claim fails every check, while an honest worker delayed once fails
 * one check, becomes suspect and is re-checked soon. The round trip is the
 * worker's to delay, so what is subtracted is capped (max_rtt_ms, and half
 * of a full check's margin): a spoofer that stalls its spot answers gains
 * at most that. `slow_strikes` slow answers among the latest
 * VERIFY_STRIKE_WINDOW checks, or `wrong_strikes` wrong ones ever, confirm
 * a failure.
 *
 *   pending --2 passes--> passed --fail--> suspect --pass--> passed
 *      |                                  |
 *      +------------- strikes ------------+--> failed (never hired again)
 *
 * Workers with the same host fingerprint or network address are challenged
 * at the same moment, so one GPU cannot answer for several. Hired workers
 * get no full proof (it would disturb the job): their liveness and the
 * identity of their GPUs are checked while hired, and, when light_ms is
 * set, a light proof (a quarter of the work) every light_ms, which catches
 * a GPU swapped out after it was verified; the full proof comes when they
 * are free again.
 *
 * Pure like the rest of the core: time is a parameter, randomness comes
 * from a generator seeded by the caller, messages go out through ops.
 */
#ifndef MUSTER_VERIFY_H
#define MUSTER_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "pow.h"
#include "registry.h"

typedef enum verify_state {
    VERIFY_PENDING = 0,
    VERIFY_PASSED = 1,
    VERIFY_SUSPECT = 2,
    VERIFY_FAILED = 3,
} verify_state;

typedef enum verify_outcome {
    VERIFY_OK = 0,
    VERIFY_SLOW = 1,    /* right answer, below min_ratio of the claimed throughput */
    VERIFY_WRONG = 2,   /* a spot-checked leaf or its path was wrong */
    VERIFY_TIMEOUT = 3, /* no answer in time */
    VERIFY_BAD = 4,     /* a malformed proof */
} verify_outcome;

typedef struct verify_config {
    bool enabled; /* off: every worker counts as passed (the simulator, tests, trusted fleets) */
    uint32_t target_ms;                /* honest time of a full check on the claimed GPU */
    double units_per_tflop_s;          /* calibration: pow units per second per FP32 TFLOPS */
    uint32_t scratch_kib_per_vram_gib; /* scratch memory of a challenge per GiB claimed */
    uint32_t leaves;                   /* leaves of a challenge (power of two) */
    uint32_t spots;                    /* leaves checked per challenge */
    double min_ratio;                  /* slowest honest fraction of the claimed throughput */
    uint32_t answer_grace_ms;          /* beyond expected/min_ratio before a timeout */
    uint32_t recheck_ms;               /* after a failed check */
    uint32_t reverify_ms;              /* between full checks of a free passed worker */
    uint8_t slow_strikes;  /* slow answers among the latest VERIFY_STRIKE_WINDOW that fail it */
    uint8_t wrong_strikes; /* wrong answers that fail it */
    uint32_t max_rtt_ms;   /* most round trip subtracted from a check's time */
    uint32_t gather_ms;    /* a new worker's first check waits this long */
    uint32_t light_ms;     /* between light checks of a hired worker; 0: none (identity only) */
    uint64_t seed;         /* of the generator that draws seeds and spots */
} verify_config;

#define VERIFY_TARGET_DEFAULT_MS     1000u
#define VERIFY_UNITS_DEFAULT         2e7
#define VERIFY_SCRATCH_DEFAULT_KIB   64u
#define VERIFY_LEAVES_DEFAULT        16384u
#define VERIFY_SPOTS_DEFAULT         16u
#define VERIFY_MIN_RATIO_DEFAULT     0.7
#define VERIFY_GRACE_DEFAULT_MS      2000u
#define VERIFY_RECHECK_DEFAULT_MS    2000u
#define VERIFY_REVERIFY_DEFAULT_MS   (6u * 3600u * 1000u)
#define VERIFY_SLOW_STRIKES_DEFAULT  3u
#define VERIFY_WRONG_STRIKES_DEFAULT 2u
#define VERIFY_GATHER_DEFAULT_MS     250u
#define VERIFY_LIGHT_DIVISOR         4u /* a light check is this much smaller */
#define VERIFY_MAX_RTT_DEFAULT_MS    250u
#define VERIFY_STRIKE_WINDOW         5 /* slow_strikes count among this many latest checks */
#define VERIFY_ONBOARD_PASSES        2 /* passes in a row that make a new worker hireable */

/* Fill in defaults for zero fields; then check. 0, or -1 with a reason. */
int verify_config_resolve(verify_config *cfg, mu_error *errp);

/* One judged check, as kept in a worker's history. */
typedef struct verify_result {
    uint64_t at;
    uint32_t expected_ms; /* what the claimed GPU needs */
    uint32_t measured_ms; /* compute time: to the commitment, less the round trip */
    uint32_t rtt_ms;      /* the round trip subtracted */
    uint32_t leaf;        /* the first wrong leaf (VERIFY_WRONG) */
    uint8_t outcome;      /* verify_outcome */
    uint8_t state;        /* verify_state after it */
    uint8_t light;        /* a light check of a hired worker */
} verify_result;

#define VERIFY_HISTORY 4 /* results kept per worker in memory (the latest) */

/* A sentence for operators: "passed: 98% of the claimed throughput
 * (294 ms, 300 expected)", "too slow: 45% of the claimed throughput ...". */
void verify_result_text(const verify_result *r, char *buf, size_t cap);
const char *verify_state_name(verify_state s);
const char *verify_outcome_name(verify_outcome o);

/* How a challenge is sized for a worker: 0, or -1 when its model has no
 * throughput in the catalog (it cannot be verified, so it is failed). */
int verify_size(const verify_config *cfg, const worker *w, pow_params *p, uint32_t *expected_ms);

typedef struct verifier verifier;

typedef struct verify_ops {
    /* Send a challenge. */
    void (*challenge)(void *arg, const worker *w, uint64_t challenge_id, const pow_params *p,
                      uint32_t expected_ms);
    /* Ask for the leaves at idx (after the commitment). */
    void (*spots)(void *arg, const worker *w, uint64_t challenge_id, const uint32_t *idx,
                  uint32_t n);
    /* A check was judged; from -> to may be equal. */
    void (*verdict)(void *arg, const worker *w, const verify_result *r, verify_state from,
                    verify_state to);
    void *arg;
} verify_ops;

verifier *verifier_create(const verify_config *cfg, registry *reg, const verify_ops *ops,
                          mu_error *errp);
void verifier_destroy(verifier *v);
const verify_config *verifier_config(const verifier *v);

/* The worker's state changed or it (re-)registered: start, cancel or
 * schedule checks. A worker whose GPUs are not the ones verified (another
 * model, count or device list) is pending again: that is the light check a
 * hired worker gets on every registration. */
void verifier_worker_changed(verifier *v, const worker *w, uint64_t now);
/* The worker was hired: with light_ms set, it gets a light check (a
 * quarter of the full one, judged the same way) every light_ms. */
void verifier_worker_hired(verifier *v, const worker *w, uint64_t now);
/* The worker was freed from a cluster: it is due a full check if its last
 * one is older than the re-verification interval. */
void verifier_worker_freed(verifier *v, const worker *w, uint64_t now);

/* Answers. Both return 0 when the answer was taken (judged or moved on), or
 * -1 with errno and a reason for the sender: ESTALE (no such challenge in
 * flight for this worker: old, replayed or already answered), EPERM (the
 * challenge was issued to another worker), EINVAL (malformed: it also
 * counts against the worker as a bad proof). */
int verifier_commit(verifier *v, const worker *w, uint64_t challenge_id,
                    const uint8_t root[POW_HASH_BYTES], uint64_t now, mu_error *errp);
/* n spots, in the order asked: leaves n x 32 bytes, paths n x depth x 32. */
int verifier_proofs(verifier *v, const worker *w, uint64_t challenge_id, const uint8_t *leaves,
                    size_t leaves_len, const uint8_t *paths, size_t paths_len, uint64_t now,
                    mu_error *errp);

/* Advance time: issue due checks, time out answers. */
void verifier_tick(verifier *v, uint64_t now);
uint64_t verifier_next_deadline(const verifier *v);

verify_state verifier_state(const verifier *v, const worker *w);
/* Latest results, oldest first; returns how many (<= VERIFY_HISTORY). */
size_t verifier_history(const verifier *v, const worker *w, verify_result *out);
/* Results ever judged for this worker. */
uint32_t verifier_checks(const verifier *v, const worker *w);

/* Recovery: a saved state and history (failed stays failed; pending and
 * suspect workers are checked again once back). */
int verifier_restore(verifier *v, const worker *w, verify_state st, const verify_result *hist,
                     size_t n, uint32_t checks, mu_error *errp);

size_t verifier_bytes(const verifier *v);

#endif
