/* prover.c - see prover.h.
 *
 * One worker thread per prover, sleeping on a condition variable until a
 * job is pending. Every prover_start bumps a generation number; the thread
 * publishes a result only when its job is still the latest generation, so a
 * superseded job's root can never reach the broker, however the finish and
 * the next start interleave. The cancel token is an atomic flag the backend
 * polls between leaves: it is set (under the lock) by prover_start and
 * prover_destroy, and cleared (under the lock) when the thread takes the
 * next job, so a cancellation is never lost nor applied to the wrong job.
 * An eventfd tells the agent's poll loop that a result is waiting.
 */
#include "prover.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "pow_backend.h"
#ifdef MUSTER_HAVE_CUDA
#include "pow_cuda.h"
#endif

struct pow_cancel {
    atomic_int flag;
};

int pow_cancel_requested(const pow_cancel *c)
{
    return c && atomic_load_explicit(&c->flag, memory_order_relaxed);
}

struct prover {
    const pow_backend_ops *ops;
    void *ctx; /* the backend's */
    int efd;   /* eventfd: nonzero while a result waits to be taken */
    pthread_t thread;
    bool thread_started;
    pow_cancel cancel;

    /* Everything below is guarded by mu. prover_spots takes it through a
     * const pointer: the lock is not part of the prover's value. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool quit;
    uint64_t gen;      /* generation of the latest prover_start */
    bool has_pending;  /* a job waits for the thread */
    pow_job pending;   /* that job */
    uint64_t pend_gen; /* and its generation */

    int result; /* 0 none, 1 done, -1 failed: waiting for prover_take */
    uint64_t result_id;
    uint8_t result_root[POW_HASH_BYTES];
    uint32_t result_ms;
    mu_error result_err;

    pow_tree *tree; /* the last successful job's tree, for its spot checks */
    uint64_t tree_id;
};

static void efd_signal(int efd)
{
    uint64_t one = 1;
    /* Cannot fail short of a counter overflow, and one pending wake-up is
     * as good as many. */
    ssize_t n = write(efd, &one, sizeof one);
    (void)n;
}

static void efd_drain(int efd)
{
    uint64_t v;
    ssize_t n = read(efd, &v, sizeof v); /* EAGAIN when already empty */
    (void)n;
}

/* Run one job outside the lock: leaves by the backend, then the tree. */
static int run_job(prover *pv, const pow_job *job, pow_tree **treep, uint32_t *elapsed_ms,
                   mu_error *errp)
{
    uint64_t start = clock_mono_ms();
    size_t bytes = (size_t)job->params.leaves * POW_HASH_BYTES;
    uint8_t *leaves = mu_malloc(bytes);
    if (!leaves)
        return errprintf(errp, "out of memory for %u leaf hashes", job->params.leaves);
    int rc = pv->ops->compute(pv->ctx, job, leaves, &pv->cancel, errp);
    if (rc == 0) {
        *treep = pow_tree_create(&job->params, leaves, errp);
        if (!*treep)
            rc = -1;
    }
    mu_free(leaves);
    uint64_t ms = clock_mono_ms() - start;
    *elapsed_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    return rc;
}

static void *prover_thread(void *arg)
{
    prover *pv = arg;
    pthread_mutex_lock(&pv->mu);
    for (;;) {
        while (!pv->quit && !pv->has_pending)
            pthread_cond_wait(&pv->cv, &pv->mu);
        if (pv->quit)
            break;
        pow_job job = pv->pending;
        uint64_t gen = pv->pend_gen;
        pv->has_pending = false;
        atomic_store(&pv->cancel.flag, 0);
        pthread_mutex_unlock(&pv->mu);

        pow_tree *tree = NULL;
        uint32_t elapsed = 0;
        mu_error err = {""};
        int rc = run_job(pv, &job, &tree, &elapsed, &err);

        pthread_mutex_lock(&pv->mu);
        if (pv->quit || gen != pv->gen) {
            /* Superseded while it ran: nobody wants this result. */
            pow_tree_destroy(tree);
            continue;
        }
        pv->result = rc == 0 ? 1 : -1;
        pv->result_id = job.challenge_id;
        pv->result_ms = elapsed;
        pv->result_err = err;
        /* The previous job's tree goes either way: it is no longer the
         * last finished one. */
        pow_tree_destroy(pv->tree);
        pv->tree = tree;
        pv->tree_id = job.challenge_id;
        if (tree)
            pow_tree_root(tree, pv->result_root);
        efd_signal(pv->efd);
    }
    pthread_mutex_unlock(&pv->mu);
    return NULL;
}

static int pick_backend(prover *pv, const prover_config *cfg, mu_error *errp)
{
    const char *name = cfg->backend ? cfg->backend : "auto";
    pow_sim_opts opts = {
        .speed = cfg->sim_speed == 0 ? 1.0 : cfg->sim_speed,
        .skip = cfg->sim_skip,
        .jitter_ms = cfg->sim_jitter_ms,
    };
    if (strcmp(name, "auto") == 0) {
#ifdef MUSTER_HAVE_CUDA
        /* A GPU host without a working device still proves on its CPU: the
         * broker will judge the time. */
        pv->ops = pow_backend_cuda();
        if (pv->ops->create(&opts, &pv->ctx, NULL) == 0)
            return 0;
#endif
        pv->ops = pow_backend_cpu();
    } else if (strcmp(name, "cpu") == 0) {
        pv->ops = pow_backend_cpu();
    } else if (strcmp(name, "sim") == 0) {
        pv->ops = pow_backend_sim();
    } else if (strcmp(name, "cuda") == 0) {
#ifdef MUSTER_HAVE_CUDA
        pv->ops = pow_backend_cuda();
#else
        return errprintf(errp, "the cuda proof-of-work backend is not built in (no nvcc when "
                               "muster was built)");
#endif
    } else {
        return errprintf(errp, "unknown proof-of-work backend \"%s\" (cpu, sim, cuda or auto)",
                         name);
    }
    if (pv->ops->create(&opts, &pv->ctx, errp) < 0)
        return errprefix(errp, "%s backend", pv->ops->name);
    return 0;
}

prover *prover_create(const prover_config *cfg, mu_error *errp)
{
    static const prover_config defaults = {.backend = "auto"};
    if (!cfg)
        cfg = &defaults;
    /* For the fastest BLAKE2b (pow.h); without it hashing is only slower,
     * so a failure is not the prover's. */
    (void)pow_init();

    prover *pv = mu_calloc(1, sizeof *pv);
    if (!pv) {
        errprintf(errp, "out of memory");
        return NULL;
    }
    pv->efd = -1;
    atomic_init(&pv->cancel.flag, 0);
    int rc;
    if ((rc = pthread_mutex_init(&pv->mu, NULL)) != 0) {
        mu_free(pv);
        errprintf(errp, "mutex: %s", strerror(rc));
        return NULL;
    }
    if ((rc = pthread_cond_init(&pv->cv, NULL)) != 0) {
        pthread_mutex_destroy(&pv->mu);
        mu_free(pv);
        errprintf(errp, "condition variable: %s", strerror(rc));
        return NULL;
    }
    if (pick_backend(pv, cfg, errp) < 0)
        goto error;
    pv->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pv->efd < 0) {
        errprintf(errp, "eventfd: %s", strerror(errno));
        goto error;
    }
    if ((rc = pthread_create(&pv->thread, NULL, prover_thread, pv)) != 0) {
        errprintf(errp, "cannot start the prover thread: %s", strerror(rc));
        goto error;
    }
    pv->thread_started = true;
    return pv;
error:
    prover_destroy(pv);
    return NULL;
}

void prover_destroy(prover *pv)
{
    if (!pv)
        return;
    if (pv->thread_started) {
        pthread_mutex_lock(&pv->mu);
        pv->quit = true;
        atomic_store(&pv->cancel.flag, 1);
        pthread_cond_signal(&pv->cv);
        pthread_mutex_unlock(&pv->mu);
        pthread_join(pv->thread, NULL);
    }
    if (pv->ops)
        pv->ops->destroy(pv->ctx);
    if (pv->efd >= 0)
        close(pv->efd);
    pow_tree_destroy(pv->tree);
    pthread_cond_destroy(&pv->cv);
    pthread_mutex_destroy(&pv->mu);
    mu_free(pv);
}

const char *prover_backend_name(const prover *pv)
{
    return pv->ops->name;
}

int prover_fd(const prover *pv)
{
    return pv->efd;
}

int prover_start(prover *pv, uint64_t challenge_id, const pow_params *p, uint32_t expected_ms,
                 mu_error *errp)
{
    if (pow_params_check(p, errp) < 0)
        return -1;
    pthread_mutex_lock(&pv->mu);
    pv->gen++;
    pv->pending = (pow_job){.challenge_id = challenge_id, .params = *p, .expected_ms = expected_ms};
    pv->pend_gen = pv->gen;
    pv->has_pending = true;
    /* Stop the running job, if any; the thread clears the flag when it
     * takes this one. */
    atomic_store(&pv->cancel.flag, 1);
    pv->result = 0;
    efd_drain(pv->efd);
    pthread_cond_signal(&pv->cv);
    pthread_mutex_unlock(&pv->mu);
    return 0;
}

int prover_take(prover *pv, uint64_t *challenge_id, uint8_t root[POW_HASH_BYTES],
                uint32_t *elapsed_ms, mu_error *errp)
{
    pthread_mutex_lock(&pv->mu);
    int rc = pv->result;
    if (rc != 0) {
        if (challenge_id)
            *challenge_id = pv->result_id;
        if (rc > 0) {
            if (root)
                memcpy(root, pv->result_root, POW_HASH_BYTES);
            if (elapsed_ms)
                *elapsed_ms = pv->result_ms;
        } else if (errp) {
            *errp = pv->result_err;
        }
        pv->result = 0;
    }
    efd_drain(pv->efd);
    pthread_mutex_unlock(&pv->mu);
    return rc;
}

int prover_spots(const prover *cpv, uint64_t challenge_id, const uint32_t *idx, size_t n,
                 uint8_t *leaves, uint8_t *paths, mu_error *errp)
{
    prover *pv = (prover *)cpv; /* for the lock only */
    if (n > POW_MAX_SPOT)
        return errprintf(errp, "%zu spots asked for, at most %u", n, POW_MAX_SPOT);
    if (n > 0 && (!idx || !leaves || !paths))
        return errprintf(errp, "no spot indices or output buffers");
    pthread_mutex_lock(&pv->mu);
    int rc = 0;
    if (!pv->tree || pv->tree_id != challenge_id) {
        rc = errprintf(errp, "challenge %llu is not the last one finished",
                       (unsigned long long)challenge_id);
        goto out;
    }
    uint32_t l = pow_tree_leaves(pv->tree);
    for (size_t k = 0; k < n; k++) {
        if (idx[k] >= l) {
            rc = errprintf(errp, "spot %u is out of range (%u leaves)", idx[k], l);
            goto out;
        }
    }
    size_t path_bytes = (size_t)pow_tree_depth(pv->tree) * POW_HASH_BYTES;
    for (size_t k = 0; k < n; k++) {
        memcpy(leaves + k * POW_HASH_BYTES, pow_tree_leaf(pv->tree, idx[k]), POW_HASH_BYTES);
        pow_tree_path(pv->tree, idx[k], paths + k * path_bytes);
    }
out:
    pthread_mutex_unlock(&pv->mu);
    return rc;
}
