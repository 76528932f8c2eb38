/* pow_cpu.c - the CPU proof-of-work backend: pow_leaf for every leaf, one
 * after the other, on the prover's thread.
 *
 * One thread keeps it simple and leaves the other cores to the agent's
 * tasks; a CPU-only worker is judged against a CPU's expected time, and a
 * GPU worker should use the cuda backend anyway. */
#include "pow_backend.h"

#include "alloc.h"

static int cpu_create(const pow_sim_opts *opts, void **ctx, mu_error *errp)
{
    (void)opts;
    (void)errp;
    *ctx = NULL; /* nothing to keep between jobs */
    return 0;
}

static void cpu_destroy(void *ctx)
{
    (void)ctx;
}

static int cpu_compute(void *ctx, const pow_job *job, uint8_t *leaf_hashes,
                       const pow_cancel *cancel, mu_error *errp)
{
    (void)ctx;
    const pow_params *p = &job->params;
    uint64_t *scratch = mu_malloc((size_t)p->leaf_words * sizeof *scratch);
    if (!scratch)
        return errprintf(errp, "out of memory for %u scratch words", p->leaf_words);
    for (uint32_t i = 0; i < p->leaves; i++) {
        if (pow_cancel_requested(cancel)) {
            mu_free(scratch);
            return errprintf(errp, "cancelled");
        }
        pow_leaf(p, i, scratch, leaf_hashes + (size_t)i * POW_HASH_BYTES);
    }
    mu_free(scratch);
    return 0;
}

static const pow_backend_ops cpu_ops = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .compute = cpu_compute,
};

const pow_backend_ops *pow_backend_cpu(void)
{
    return &cpu_ops;
}
