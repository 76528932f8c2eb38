/* pow_sim.c - the simulated proof-of-work backend, for tests and the
 * simulator.
 *
 * It computes the real leaves with the CPU code (so the broker's checks run
 * against real work), then pads the wall time so that the job takes
 * expected_ms / speed in all, plus a jitter: a fast honest GPU (speed 1), a
 * spoofer with half the claimed throughput (speed 0.5), a slow network
 * (jitter). It can also play a cheater that skips a fraction of the leaves
 * and fills them with garbage. When the real computation already took
 * longer than the padded time, the job simply ends late, as a slow worker
 * would.
 *
 * The skipped set and the jitter come from the seed, never from a random
 * source, so that tests know exactly which spot checks must fail. */
#include "pow_backend.h"

#include <math.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"

/* Longest sleep between two looks at the cancel token while padding. */
#define PAD_SLICE_MS 10u
/* Longest padded job (a day). */
#define MAX_PAD_MS 86400000.0

typedef struct sim_ctx {
    pow_sim_opts opts;
} sim_ctx;

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Seed bytes [off, off+8) as a little-endian word: independent draws for
 * the skipped set (off 0) and the jitter (off 8). */
static uint64_t seed_word(const pow_params *p, int off)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | p->seed[off + k];
    return v;
}

bool pow_sim_skipped(const pow_params *p, double skip, uint32_t i)
{
    if (!(skip > 0))
        return false;
    uint64_t u = mix64(seed_word(p, 0) ^ mix64((uint64_t)i + 1));
    /* The top 53 bits as a uniform double in [0, 1). */
    return (double)(u >> 11) * 0x1.0p-53 < skip;
}

void pow_sim_garbage(uint32_t i, uint8_t out[POW_HASH_BYTES])
{
    uint8_t in[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16), (uint8_t)(i >> 24)};
    pow_hash(in, sizeof in, out);
}

static int sim_create(const pow_sim_opts *opts, void **ctx, mu_error *errp)
{
    pow_sim_opts o = opts ? *opts : (pow_sim_opts){.speed = 1.0};
    if (!(o.speed > 0) || !isfinite(o.speed))
        return errprintf(errp, "sim speed must be a positive number, not %g", o.speed);
    if (!(o.skip >= 0 && o.skip < 1))
        return errprintf(errp, "sim skip must be in [0, 1), not %g", o.skip);
    sim_ctx *c = mu_calloc(1, sizeof *c);
    if (!c)
        return errprintf(errp, "out of memory");
    c->opts = o;
    *ctx = c;
    return 0;
}

static void sim_destroy(void *ctx)
{
    mu_free(ctx);
}

static int sim_compute(void *ctx, const pow_job *job, uint8_t *leaf_hashes,
                       const pow_cancel *cancel, mu_error *errp)
{
    const sim_ctx *c = ctx;
    const pow_params *p = &job->params;
    uint64_t start = clock_mono_ms();

    uint64_t *scratch = mu_malloc((size_t)p->leaf_words * sizeof *scratch);
    if (!scratch)
        return errprintf(errp, "out of memory for %u scratch words", p->leaf_words);
    for (uint32_t i = 0; i < p->leaves; i++) {
        if (pow_cancel_requested(cancel)) {
            mu_free(scratch);
            return errprintf(errp, "cancelled");
        }
        uint8_t *out = leaf_hashes + (size_t)i * POW_HASH_BYTES;
        if (pow_sim_skipped(p, c->opts.skip, i))
            pow_sim_garbage(i, out);
        else
            pow_leaf(p, i, scratch, out);
    }
    mu_free(scratch);

    double target = job->expected_ms / c->opts.speed;
    if (c->opts.jitter_ms > 0)
        target += (double)(mix64(seed_word(p, 8)) % ((uint64_t)c->opts.jitter_ms + 1));
    /* A tiny speed would overflow the conversion: a day is long enough. */
    if (target > MAX_PAD_MS)
        target = MAX_PAD_MS;
    /* + 1: the millisecond clock truncates, so this guarantees at least
     * target ms of real time. */
    uint64_t end = start + (uint64_t)ceil(target) + 1;
    for (;;) {
        if (pow_cancel_requested(cancel))
            return errprintf(errp, "cancelled");
        uint64_t now = clock_mono_ms();
        if (now >= end)
            return 0;
        uint64_t left = end - now;
        clock_sleep_ms(left < PAD_SLICE_MS ? left : PAD_SLICE_MS, NULL);
    }
}

static const pow_backend_ops sim_ops = {
    .name = "sim",
    .create = sim_create,
    .destroy = sim_destroy,
    .compute = sim_compute,
};

const pow_backend_ops *pow_backend_sim(void)
{
    return &sim_ops;
}
