/* test_verify.c - the verification policy (verify.h) through the scheduler
 * core, against simulated agents that do the real proof of work.
 *
 * Every challenge the core sends (sched_ops.challenge) is answered by a
 * model of an agent: it computes the leaves with pow_leaf, commits to them
 * with pow_tree_create, and when the core asks for spots (sched_ops.spots)
 * returns the leaves and their pow_tree_path paths. Only time is simulated:
 * the answer reaches the core at the virtual instant a real agent's would
 * (challenge one way + compute time at the worker's speed + commit one way,
 * then a spot round trip), on a network model with heavy-tailed jitter. The
 * hashing is real, so a wrong or skipped leaf is caught by the core's own
 * pow_check_spot. Challenges are tiny (16 or 256 leaves of a few dozen
 * words) so ten thousand of them take well under a second of CPU.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pow.h"
#include "schedfix.h"
#include "testutil.h"
#include "verify.h"

#define T0        1000000000ull
#define HB_MS     1000u
#define GATHER_MS 250u /* a new worker's first check waits this long */
#define NIL32     UINT32_MAX

/* --- randomness of our own (the core's is seeded separately) -------------------------- */

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double unif(uint64_t *s)
{
    return (double)(rnd(s) >> 11) * 0x1.0p-53;
}

/* --- the network ----------------------------------------------------------------------------- */

/* One-way delay of one message = the worker's propagation delay (fixed per
 * worker) + queueing jitter + now and then a stall.
 *
 * Queueing jitter is Pareto(x_m, alpha): measurements of Internet delay
 * variation show power-law tails with alpha between 1 and 2 (bursty cross
 * traffic, bufferbloat on home uplinks); alpha = 1.5 has a finite mean
 * (6 ms here) and an infinite variance, so a single check occasionally sees
 * 100+ ms of extra delay (P = 0.3% per message) and, rarely, whole seconds.
 *
 * Stalls: with probability spike_p a message is held up uniformly 200 ms to
 * 1 s: a lost TCP segment costs at least the retransmission timeout (200 ms
 * minimum on Linux, more after backoff), and Wi-Fi retries and congested
 * home links behave alike. 1% per message is a pessimistic loss rate for a
 * home connection.
 *
 * Propagation 5..150 ms one way covers a worker in the broker's metro area
 * up to one on another continent. */
typedef struct netmodel {
    double base_lo_ms, base_hi_ms;     /* per-worker propagation, one way */
    double pareto_xm_ms, pareto_alpha; /* queueing jitter (xm 0: none) */
    double spike_p, spike_lo_ms, spike_hi_ms;
} netmodel;

static const netmodel NET_HEAVY = {5, 150, 2, 1.5, 0.01, 200, 1000};
/* A quiet LAN-like network: 30 ms each way and a light jitter tail. */
static const netmodel NET_CALM = {30, 30, 1, 3.0, 0, 0, 0};

/* --- the simulation --------------------------------------------------------------------------- */

enum { EV_HEARTBEAT = 0, EV_COMMIT = 1, EV_PROOFS = 2 };

typedef struct ev {
    uint64_t at, seq;
    uint64_t ch;
    uint32_t wi;
    uint8_t kind;
} ev;

typedef struct simw {
    unsigned n;
    mu_id id;
    const worker *w;
    double speed;              /* fraction of the claimed throughput it delivers */
    double noise_lo, noise_hi; /* compute time x uniform(noise_lo, noise_hi) */
    double skip;               /* fraction of leaves it does not compute */
    double base_ms;            /* propagation, one way */
    uint32_t stall_ms;         /* held back before answering spots */
    int gpu;                   /* >= 0: shares this physical GPU with others */
    bool alive;                /* heartbeats */
    bool answers;              /* answers challenges by itself */
    /* the challenge it is answering */
    uint64_t ch;
    pow_params p;
    uint32_t expected;
    uint64_t sent;
    pow_tree *tree;
    uint8_t root[POW_HASH_BYTES];
    uint32_t idx[POW_MAX_SPOT], n_idx;
    uint64_t spots_ch;
    /* what happened to it */
    uint32_t challenges, judged, outcome[5];
    uint32_t failed_at; /* judged checks when it was confirmed failed; 0: never */
    uint32_t passed_at; /* judged checks when it first became passed (hireable); 0: never */
    verify_result pass; /* that first pass */
    char trail[48];     /* its first outcomes: o(k) s(low) w(rong) t(imeout) b(ad) */
} simw;

typedef struct chlog {
    uint32_t wi;
    uint64_t id, at;
    uint32_t expected;
} chlog;

typedef struct sim {
    schedfix *f;
    sched *s;
    uint64_t now, seq, rng;
    netmodel net;
    simw *w;
    size_t n_w, cap_w;
    uint32_t slot_to_w[4096];
    ev *heap;
    size_t n_heap, cap_heap;
    uint64_t gpu_busy[64]; /* shared GPUs: busy until */
    /* totals */
    uint64_t challenges, judged, outcome[5], failed, verdicts, stale_answers, odd_errors;
    uint64_t light_judged, light_outcome[5], light_failed; /* light checks of hired workers */
    uint64_t steps;
    double *delays; /* one-way delays drawn, for the report */
    size_t n_delays, cap_delays;
    chlog *log;
    size_t n_log, cap_log;
    bool check_each_step;
} sim;

static void heap_push(sim *S, ev e)
{
    if (S->n_heap == S->cap_heap) {
        S->cap_heap = S->cap_heap ? 2 * S->cap_heap : 256;
        S->heap = realloc(S->heap, S->cap_heap * sizeof(ev));
        assert_non_null(S->heap);
    }
    e.seq = S->seq++;
    size_t i = S->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        ev *q = &S->heap[p];
        if (q->at < e.at || (q->at == e.at && q->seq < e.seq))
            break;
        S->heap[i] = *q;
        i = p;
    }
    S->heap[i] = e;
}

static ev heap_pop(sim *S)
{
    ev top = S->heap[0];
    ev last = S->heap[--S->n_heap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, b = i;
        const ev *best = &last;
        if (l < S->n_heap && (S->heap[l].at < best->at ||
                              (S->heap[l].at == best->at && S->heap[l].seq < best->seq))) {
            b = l;
            best = &S->heap[l];
        }
        if (l + 1 < S->n_heap && (S->heap[l + 1].at < best->at || (S->heap[l + 1].at == best->at &&
                                                                   S->heap[l + 1].seq < best->seq)))
            b = l + 1;
        if (b == i)
            break;
        S->heap[i] = S->heap[b];
        i = b;
    }
    if (S->n_heap)
        S->heap[i] = last;
    return top;
}

static double one_way(sim *S, const simw *sw)
{
    double d = sw->base_ms;
    if (S->net.pareto_xm_ms > 0) {
        double u = 1.0 - unif(&S->rng); /* (0, 1] */
        d += S->net.pareto_xm_ms / pow(u, 1.0 / S->net.pareto_alpha);
    }
    if (S->net.spike_p > 0 && unif(&S->rng) < S->net.spike_p)
        d += S->net.spike_lo_ms + (S->net.spike_hi_ms - S->net.spike_lo_ms) * unif(&S->rng);
    if (d > 1e7)
        d = 1e7;
    if (S->n_delays < S->cap_delays)
        S->delays[S->n_delays++] = d;
    return d;
}

static simw *of(sim *S, const worker *w)
{
    assert_true(w->slot < 4096);
    uint32_t wi = S->slot_to_w[w->slot];
    assert_int_not_equal(wi, NIL32);
    return &S->w[wi];
}

/* The agent's work: every leaf, except the skipped ones which are garbage;
 * the tree over them. */
static pow_tree *solve(const pow_params *p, double skip, uint64_t *rng)
{
    uint32_t L = p->leaves;
    uint8_t *leaves = malloc((size_t)L * POW_HASH_BYTES);
    uint64_t *scratch = malloc((size_t)p->leaf_words * sizeof(uint64_t));
    uint8_t *skipped = calloc(L, 1);
    uint32_t *order = malloc(L * sizeof(uint32_t));
    assert_true(leaves && scratch && skipped && order);
    uint32_t k = (uint32_t)(skip * L + 0.5);
    for (uint32_t i = 0; i < L; i++)
        order[i] = i;
    for (uint32_t i = 0; i < k; i++) { /* a random k-subset */
        uint32_t j = i + (uint32_t)(rnd(rng) % (L - i));
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
        skipped[order[i]] = 1;
    }
    for (uint32_t i = 0; i < L; i++) {
        uint8_t *out = leaves + (size_t)i * POW_HASH_BYTES;
        if (skipped[i]) {
            for (int b = 0; b < POW_HASH_BYTES; b += 8) {
                uint64_t x = rnd(rng);
                memcpy(out + b, &x, 8);
            }
        } else {
            pow_leaf(p, i, scratch, out);
        }
    }
    mu_error err;
    pow_tree *t = pow_tree_create(p, leaves, &err);
    if (!t)
        fail_msg("pow_tree_create: %s", err.text);
    free(order);
    free(skipped);
    free(scratch);
    free(leaves);
    return t;
}

/* The proofs of spots idx[0..n) from tree t (malloc'ed buffers). */
static void proofs_of(const pow_tree *t, const uint32_t *idx, uint32_t n, uint8_t **leaves,
                      size_t *leaves_len, uint8_t **paths, size_t *paths_len)
{
    uint32_t depth = pow_tree_depth(t);
    *leaves_len = (size_t)n * POW_HASH_BYTES;
    *paths_len = (size_t)n * depth * POW_HASH_BYTES;
    *leaves = malloc(*leaves_len ? *leaves_len : 1);
    *paths = malloc(*paths_len ? *paths_len : 1);
    assert_true(*leaves && *paths);
    for (uint32_t k = 0; k < n; k++) {
        memcpy(*leaves + (size_t)k * POW_HASH_BYTES, pow_tree_leaf(t, idx[k]), POW_HASH_BYTES);
        pow_tree_path(t, idx[k], *paths + (size_t)k * depth * POW_HASH_BYTES);
    }
}

static void cb_challenge(void *arg, const worker *w, uint64_t id, const pow_params *p,
                         uint32_t expected_ms)
{
    sim *S = arg;
    simw *sw = of(S, w);
    assert_int_equal(pow_params_check(p, NULL), 0);
    if (w->alloc != WORKER_FREE) {
        /* a hired worker gets light checks only, and only when configured */
        const verify_config *vc = verifier_config(sched_verifier(S->s));
        uint32_t light = vc->leaves / VERIFY_LIGHT_DIVISOR;
        assert_int_not_equal(vc->light_ms, 0);
        assert_int_equal(p->leaves, light < POW_MIN_LEAVES ? POW_MIN_LEAVES : light);
    }
    S->challenges++;
    sw->challenges++;
    if (S->n_log == S->cap_log) {
        S->cap_log = S->cap_log ? 2 * S->cap_log : 256;
        S->log = realloc(S->log, S->cap_log * sizeof(chlog));
        assert_non_null(S->log);
    }
    S->log[S->n_log++] = (chlog){(uint32_t)(sw - S->w), id, S->now, expected_ms};
    sw->ch = id;
    sw->p = *p;
    sw->expected = expected_ms;
    sw->sent = S->now;
    pow_tree_destroy(sw->tree);
    sw->tree = NULL;
    if (!sw->answers)
        return;
    sw->tree = solve(p, sw->skip, &S->rng);
    pow_tree_root(sw->tree, sw->root);
    double noise = sw->noise_lo + (sw->noise_hi - sw->noise_lo) * unif(&S->rng);
    double compute = expected_ms / sw->speed * noise * (1.0 - sw->skip);
    double arrive = (double)S->now + one_way(S, sw);
    double done = arrive + compute;
    if (sw->gpu >= 0) { /* one GPU serves several workers: one challenge at a time */
        double start =
            arrive > (double)S->gpu_busy[sw->gpu] ? arrive : (double)S->gpu_busy[sw->gpu];
        done = start + compute;
        S->gpu_busy[sw->gpu] = (uint64_t)done;
    }
    double at = done + one_way(S, sw);
    heap_push(
        S,
        (ev){.at = (uint64_t)(at + 0.5), .ch = id, .wi = (uint32_t)(sw - S->w), .kind = EV_COMMIT});
}

static void cb_spots(void *arg, const worker *w, uint64_t id, const uint32_t *idx, uint32_t n)
{
    sim *S = arg;
    simw *sw = of(S, w);
    const verify_config *vc = verifier_config(sched_verifier(S->s));
    /* distinct leaves of the challenge, as many as configured */
    assert_int_equal(id, sw->ch);
    assert_int_equal(n, vc->spots < sw->p.leaves ? vc->spots : sw->p.leaves);
    for (uint32_t k = 0; k < n; k++) {
        assert_true(idx[k] < sw->p.leaves);
        for (uint32_t j = 0; j < k; j++)
            assert_int_not_equal(idx[j], idx[k]);
    }
    memcpy(sw->idx, idx, n * sizeof(*idx));
    sw->n_idx = n;
    sw->spots_ch = id;
    if (!sw->answers)
        return;
    double at = (double)S->now + one_way(S, sw) + sw->stall_ms + one_way(S, sw);
    heap_push(
        S,
        (ev){.at = (uint64_t)(at + 0.5), .ch = id, .wi = (uint32_t)(sw - S->w), .kind = EV_PROOFS});
}

static void cb_verdict(void *arg, const worker *w, const verify_result *r, verify_state from,
                       verify_state to)
{
    sim *S = arg;
    simw *sw = of(S, w);
    assert_true(r->outcome <= VERIFY_BAD);
    assert_int_equal(r->state, to);
    assert_int_equal(w->vstate, to);
    S->verdicts++;
    S->judged++;
    S->outcome[r->outcome]++;
    if (sw->judged < sizeof(sw->trail) - 1)
        sw->trail[sw->judged] = "oswtb"[r->outcome];
    sw->judged++;
    sw->outcome[r->outcome]++;
    if (r->light) {
        assert_int_not_equal(w->alloc, WORKER_FREE);
        S->light_judged++;
        S->light_outcome[r->outcome]++;
        S->light_failed += to == VERIFY_FAILED && from != VERIFY_FAILED;
    }
    if (to == VERIFY_FAILED && from != VERIFY_FAILED) {
        S->failed++;
        if (!sw->failed_at)
            sw->failed_at = sw->judged;
    }
    if (to == VERIFY_PASSED && !sw->passed_at) { /* hireable */
        sw->passed_at = sw->judged;
        sw->pass = *r;
    }
}

/* A schedfix (the real catalog, regions and tiers) with this configuration
 * and these ops; schedfix_destroy frees it. */
static schedfix *fix_create(const sched_config *base, const sched_ops *ops)
{
    schedfix *f = test_calloc(1, sizeof(*f));
    f->cat = test_catalog();
    f->regions = test_regions();
    tiers_default(&f->tiers);
    sched_config cfg = *base;
    cfg.reg.cat = f->cat;
    cfg.reg.regions = f->regions;
    cfg.reg.tiers = &f->tiers;
    mu_error err;
    f->s = sched_create(&cfg, ops, &err);
    if (!f->s)
        fail_msg("sched_create: %s", err.text);
    return f;
}

static sim *sim_create(const verify_config *vc, const netmodel *net, uint64_t seed)
{
    sim *S = calloc(1, sizeof(*S));
    assert_non_null(S);
    S->now = T0;
    S->rng = seed;
    S->net = *net;
    S->cap_w = 1024;
    S->w = calloc(S->cap_w, sizeof(simw));
    S->cap_delays = 200000;
    S->delays = malloc(S->cap_delays * sizeof(double));
    assert_true(S->w && S->delays);
    for (size_t i = 0; i < 4096; i++)
        S->slot_to_w[i] = NIL32;
    S->check_each_step = true;
    sched_config cfg = {.reg = {.heartbeat_interval_ms = HB_MS, .liveness = 3}, .verify = *vc};
    sched_ops ops = {.challenge = cb_challenge, .spots = cb_spots, .verdict = cb_verdict, .arg = S};
    S->f = fix_create(&cfg, &ops);
    S->s = S->f->s;
    return S;
}

static void sim_destroy(sim *S)
{
    for (size_t i = 0; i < S->n_w; i++)
        pow_tree_destroy(S->w[i].tree);
    schedfix_destroy(S->f);
    free(S->w);
    free(S->heap);
    free(S->delays);
    free(S->log);
    free(S);
}

static void sim_check(const sim *S)
{
    mu_error err;
    if (sched_check(S->s, &err) < 0)
        fail_msg("invariant at t=%llu: %s", (unsigned long long)(S->now - T0), err.text);
}

/* A worker's registration: COUNT GPUs of MODEL on PCI buses starting at
 * BUS; fingerprint and address may be NULL (none). */
static const worker *sim_register(sim *S, unsigned n, const char *model, unsigned count,
                                  unsigned bus, const char *fp, const char *addr, mu_error *errp)
{
    char id[ID_TEXT_LEN], host[32], buses[WORKER_MAX_DEVICES][16];
    schedfix_id(n, id);
    snprintf(host, sizeof(host), "w%u", n);
    worker_device_spec devs[WORKER_MAX_DEVICES];
    for (unsigned i = 0; i < count; i++) {
        snprintf(buses[i], sizeof(buses[i]), "0000:%02x:00.0", (bus + i) & 0xff);
        devs[i] = (worker_device_spec){.model_claim = model, .pci_bus_id = buses[i]};
    }
    worker_spec spec = {.id = id,
                        .hostname = host,
                        .fingerprint = fp,
                        .address = addr,
                        .devices = devs,
                        .n_devices = count,
                        .country = "DE",
                        .bw_down_mbps = 500,
                        .bw_up_mbps = 400};
    return sched_register(S->s, &spec, S->now, errp);
}

/* Add simulated worker number n at S->now. */
static simw *sim_add(sim *S, unsigned n, double speed, const char *fp, const char *addr)
{
    assert_true(S->n_w < S->cap_w);
    mu_error err;
    const worker *w = sim_register(S, n, "RTX 4090", 1, 1, fp, addr, &err);
    if (!w)
        fail_msg("register %u: %s", n, err.text);
    simw *sw = &S->w[S->n_w];
    memset(sw, 0, sizeof(*sw));
    sw->n = n;
    sw->id = w->id;
    sw->w = w;
    sw->speed = speed;
    sw->noise_lo = 0.97;
    sw->noise_hi = 1.03;
    sw->base_ms = S->net.base_lo_ms + (S->net.base_hi_ms - S->net.base_lo_ms) * unif(&S->rng);
    sw->gpu = -1;
    sw->alive = true;
    sw->answers = true;
    S->slot_to_w[w->slot] = (uint32_t)S->n_w;
    S->n_w++;
    heap_push(S, (ev){.at = S->now + HB_MS, .wi = (uint32_t)(sw - S->w), .kind = EV_HEARTBEAT});
    return sw;
}

static void handle(sim *S, ev e)
{
    simw *sw = &S->w[e.wi];
    mu_error err;
    if (e.kind == EV_HEARTBEAT) {
        if (sw->alive) {
            sched_touch(S->s, &sw->id, S->now);
            heap_push(S, (ev){.at = S->now + HB_MS, .wi = e.wi, .kind = EV_HEARTBEAT});
        }
        return;
    }
    if (!sw->alive || e.ch != sw->ch || !sw->tree)
        return; /* gone, or a newer challenge replaced this one */
    if (e.kind == EV_COMMIT) {
        int rc = sched_verify_commit(S->s, &sw->id, e.ch, sw->root, S->now, &err);
        if (rc < 0) {
            if (errno == ESTALE)
                S->stale_answers++; /* timed out */
            else
                S->odd_errors++;
        }
        return;
    }
    if (e.ch != sw->spots_ch)
        return;
    uint8_t *leaves, *paths;
    size_t ll, pl;
    proofs_of(sw->tree, sw->idx, sw->n_idx, &leaves, &ll, &paths, &pl);
    int rc = sched_verify_proofs(S->s, &sw->id, e.ch, leaves, ll, paths, pl, S->now, &err);
    if (rc < 0) {
        if (errno == ESTALE)
            S->stale_answers++;
        else
            S->odd_errors++;
    }
    free(leaves);
    free(paths);
}

/* Run until `until` (virtual) or until stop(S) holds: events and the
 * core's deadlines in time order. */
static void sim_run(sim *S, uint64_t until, bool (*stop)(const sim *))
{
    uint64_t last_tick = 0;
    unsigned same = 0;
    for (;;) {
        if (stop && stop(S))
            return;
        uint64_t ts = sched_next_deadline(S->s);
        uint64_t te = S->n_heap ? S->heap[0].at : UINT64_MAX;
        uint64_t t = ts < te ? ts : te;
        if (t > until) {
            if (until > S->now)
                S->now = until;
            sched_tick(S->s, S->now);
            sim_check(S);
            return;
        }
        if (t < S->now)
            t = S->now;
        S->now = t;
        if (ts <= te) {
            /* a deadline that a tick does not move would spin forever */
            same = last_tick == t && ts <= t ? same + 1 : 0;
            if (same > 1000)
                fail_msg("sched_next_deadline stuck at t=%llu", (unsigned long long)(t - T0));
            last_tick = t;
            sched_tick(S->s, t);
        } else {
            handle(S, heap_pop(S));
        }
        S->steps++;
        if (S->check_each_step)
            sim_check(S);
    }
}

/* A challenge size tiny enough for thousands: 16 leaves of 192 words and
 * one round for an RTX 4090 (24 GiB at 1 KiB per GiB; 82.6 TFLOPS at 37
 * units per TFLOPS-second is ~1000 ms, the broker's default target, for
 * 16 x 192 units). */
static verify_config tiny_config(uint32_t leaves, uint64_t seed)
{
    return (verify_config){.enabled = true,
                           .target_ms = 1000,
                           .units_per_tflop_s = 37,
                           .scratch_kib_per_vram_gib = 1,
                           .leaves = leaves,
                           .reverify_ms = 5000,
                           .gather_ms = GATHER_MS,
                           .seed = seed};
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(double *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i];
}

/* --- 1. honest workers under heavy-tailed jitter ------------------------------------------- */

#define HONEST_WORKERS 100
#define HONEST_CHECKS  10000

static bool enough_checks(const sim *S)
{
    return S->judged >= HONEST_CHECKS;
}

static void test_honest_false_failure_rate(void **state)
{
    (void)state;
    verify_config vc = tiny_config(16, 0x5eed0001);
    sim *S = sim_create(&vc, &NET_HEAVY, 20250101);
    S->check_each_step = false; /* checked every 1000 steps below */
    for (unsigned i = 0; i < HONEST_WORKERS; i++) {
        sim_add(S, i, 1.0, NULL, NULL); /* +-3% compute noise */
        S->now += 7;
    }
    while (!enough_checks(S)) {
        sim_run(S, S->now + 10000, enough_checks);
        sim_check(S);
        if (S->now > T0 + 24 * 3600000ull)
            fail_msg("only %llu checks in a virtual day", (unsigned long long)S->judged);
    }
    qsort(S->delays, S->n_delays, sizeof(double), cmp_double);
    uint64_t bad = S->judged - S->outcome[VERIFY_OK];
    double single = (double)bad / (double)S->judged;
    double false_fail = (double)S->failed / (double)S->judged;
    unsigned suspect_workers = 0;
    for (size_t i = 0; i < S->n_w; i++)
        suspect_workers += S->w[i].judged > S->w[i].outcome[VERIFY_OK];
    print_message("honest: %llu checks of %u workers in %.0f virtual s; one-way delay p50 %.0f, "
                  "p99 %.0f, p99.9 %.0f, max %.0f ms (%zu messages)\n",
                  (unsigned long long)S->judged, HONEST_WORKERS, (double)(S->now - T0) / 1000.0,
                  quantile(S->delays, S->n_delays, 0.5), quantile(S->delays, S->n_delays, 0.99),
                  quantile(S->delays, S->n_delays, 0.999), S->delays[S->n_delays - 1], S->n_delays);
    print_message("honest: single-check failures %llu = %.3f%% (slow %llu, timeout %llu, wrong "
                  "%llu, bad %llu) on %u workers\n",
                  (unsigned long long)bad, 100.0 * single,
                  (unsigned long long)S->outcome[VERIFY_SLOW],
                  (unsigned long long)S->outcome[VERIFY_TIMEOUT],
                  (unsigned long long)S->outcome[VERIFY_WRONG],
                  (unsigned long long)S->outcome[VERIFY_BAD], suspect_workers);
    print_message("honest: confirmed failures %llu: false-failure rate %.4f%% per challenge "
                  "(limit 0.1%%)\n",
                  (unsigned long long)S->failed, 100.0 * false_fail);
    assert_true(S->judged >= HONEST_CHECKS);
    /* the answers are right: only the clock can fail an honest worker */
    assert_int_equal(S->outcome[VERIFY_WRONG] + S->outcome[VERIFY_BAD], 0);
    assert_int_equal(S->odd_errors, 0);
    /* the jitter was heavy enough to fail single checks (else this
     * measured nothing) */
    assert_true(quantile(S->delays, S->n_delays, 0.999) > 200.0);
    assert_true(bad > 0);
    assert_true(false_fail < 0.001);
    sim_destroy(S);
}

/* The same honest workers and network, hired: a hired worker gets a light
 * check (an eighth of the leaves, so an eighth of the expected time) every
 * light_ms, judged the same way; three slow ones in a row fail it for good
 * and take it out of its cluster. */
static bool enough_light_checks(const sim *S)
{
    return S->light_judged >= HONEST_CHECKS;
}

static void test_honest_light_checks(void **state)
{
    (void)state;
    verify_config vc = tiny_config(256, 0x5eed0002); /* light checks: 32 leaves */
    vc.light_ms = 5000;
    sim *S = sim_create(&vc, &NET_HEAVY, 20250202);
    S->check_each_step = false;
    for (unsigned i = 0; i < HONEST_WORKERS; i++) {
        sim_add(S, i, 1.0, NULL, NULL);
        S->now += 7;
    }
    sim_run(S, S->now + 20000, NULL);
    /* hire every one that passed, one cluster each, acknowledged */
    match_request rq = schedfix_request(S->f, "RTX 4090", 1, 1);
    unsigned hired = 0;
    for (unsigned i = 0; i < HONEST_WORKERS; i++) {
        char text[ID_TEXT_LEN];
        snprintf(text, sizeof(text), "c%07x-0000-4000-8000-000000000000", i + 1);
        mu_id cid;
        assert_int_equal(id_parse(text, &cid), 0);
        const cluster *c = sched_cluster_create(S->s, &cid, "x", &rq, 24, S->now, NULL, NULL);
        if (!c)
            break;
        const worker *m = registry_at(sched_registry(S->s), c->members[0].worker);
        assert_int_equal(sched_cluster_ack(S->s, &cid, &m->id, S->now, NULL), 0);
        hired++;
    }
    sim_check(S);
    assert_true(hired >= HONEST_WORKERS / 2);
    uint64_t full_before = S->judged - S->light_judged;
    while (!enough_light_checks(S)) {
        sim_run(S, S->now + 10000, enough_light_checks);
        sim_check(S);
        if (S->now > T0 + 24 * 3600000ull)
            fail_msg("only %llu light checks in a virtual day",
                     (unsigned long long)S->light_judged);
    }
    uint64_t bad = S->light_judged - S->light_outcome[VERIFY_OK];
    unsigned still = 0;
    for (size_t i = 0; i < S->n_w; i++)
        still += S->w[i].w->alloc == WORKER_ALLOCATED;
    uint32_t light_expected = 0;
    for (size_t i = 0; i < S->n_log; i++)
        if (S->w[S->log[i].wi].w->alloc == WORKER_ALLOCATED)
            light_expected = S->log[i].expected;
    print_message("honest, hired (light checks of %u ms expected): %llu light checks, single-check "
                  "failures %llu = %.3f%%, confirmed failures %llu: false-failure rate %.4f%% per "
                  "challenge (limit 0.1%%); %u of %u still hired\n",
                  light_expected, (unsigned long long)S->light_judged, (unsigned long long)bad,
                  100.0 * (double)bad / (double)S->light_judged,
                  (unsigned long long)S->light_failed,
                  100.0 * (double)S->light_failed / (double)S->light_judged, still, hired);
    /* at the broker's default of one light check every 10 minutes */
    double per_check = (double)S->light_failed / (double)S->light_judged;
    print_message("honest, hired: at one light check per 10 min, %.2f%% of honest hired workers "
                  "would be failed for good per day\n",
                  100.0 * (1.0 - pow(1.0 - per_check, 144)));
    /* no full check of a hired worker: full ones only before hiring (and
     * of the few left free) */
    assert_true(S->judged - S->light_judged - full_before < 200);
    assert_int_equal(S->light_outcome[VERIFY_WRONG] + S->light_outcome[VERIFY_BAD], 0);
    assert_true((double)S->light_failed / (double)S->light_judged < 0.001);
    sim_destroy(S);
}

/* --- 2. spoofers ------------------------------------------------------------------------------ */

static bool all_decided(const sim *S)
{
    for (size_t i = 0; i < S->n_w; i++)
        if (!S->w[i].failed_at && !S->w[i].passed_at)
            return false;
    return true;
}

typedef struct spoof_report {
    double speed;
    unsigned n, caught, escaped, escaped_first, undecided;
    unsigned min_checks, max_checks;
    double mean_checks;
} spoof_report;

/* n spoofers delivering `speed` of their claim (compute noise only ever
 * slows them: a GPU does not beat its own peak), stalling their spot
 * answers by stall_ms; how many are confirmed failed within
 * VERIFY_STRIKE_WINDOW checks without ever becoming hireable. */
static spoof_report run_spoofers(double speed, unsigned n, const netmodel *net, uint32_t stall_ms,
                                 uint64_t seed)
{
    verify_config vc = tiny_config(16, seed ^ 0xabcdef);
    sim *S = sim_create(&vc, net, seed);
    S->check_each_step = false;
    for (unsigned i = 0; i < n; i++) {
        simw *sw = sim_add(S, i, speed, NULL, NULL);
        sw->noise_lo = 1.0;
        sw->noise_hi = 1.03;
        sw->stall_ms = stall_ms;
        S->now += 3;
    }
    sim_run(S, S->now + 120000, all_decided);
    sim_check(S);
    spoof_report r = {.speed = speed, .n = n, .min_checks = UINT32_MAX};
    unsigned shown = 0;
    double sum = 0;
    for (size_t i = 0; i < S->n_w; i++) {
        const simw *sw = &S->w[i];
        if (sw->failed_at && !sw->passed_at && sw->failed_at <= VERIFY_STRIKE_WINDOW) {
            r.caught++;
            sum += sw->failed_at;
            r.min_checks = sw->failed_at < r.min_checks ? sw->failed_at : r.min_checks;
            r.max_checks = sw->failed_at > r.max_checks ? sw->failed_at : r.max_checks;
        } else if (sw->passed_at) {
            r.escaped++;
            r.escaped_first += sw->passed_at == 1;
            if (shown++ < 3)
                print_message("  spoofer at %.0f%% passed check %u: measured %u ms for %u "
                              "expected, after subtracting a round trip of %u ms\n",
                              100 * speed, sw->passed_at, sw->pass.measured_ms,
                              sw->pass.expected_ms, sw->pass.rtt_ms);
        } else {
            r.undecided++;
        }
    }
    r.mean_checks = r.caught ? sum / r.caught : 0;
    if (!r.caught)
        r.min_checks = 0;
    sim_destroy(S);
    return r;
}

static void print_spoof(const char *what, const spoof_report *r)
{
    print_message("%s at %2.0f%%: %u/%u confirmed failed, never hireable (checks needed min %u, "
                  "mean %.2f, max %u); %u became hireable (%u at their first chance), %u "
                  "undecided\n",
                  what, 100 * r->speed, r->caught, r->n, r->min_checks, r->mean_checks,
                  r->max_checks, r->escaped, r->escaped_first, r->undecided);
}

static void test_spoofers_fail(void **state)
{
    (void)state;
    static const double speeds[] = {0.69, 0.60, 0.50, 0.30};
    spoof_report r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = run_spoofers(speeds[i], 500, &NET_HEAVY, 0, 777 + 1000 * (uint64_t)i);
        print_spoof("spoofer", &r[i]);
    }
    for (int i = 0; i < 4; i++)
        if (r[i].caught != r[i].n)
            fail_msg("spoofers at %.0f%% of their claim: %u of %u not confirmed failed within "
                     "%d checks (%u became hireable)",
                     100 * r[i].speed, r[i].n - r[i].caught, r[i].n, VERIFY_STRIKE_WINDOW,
                     r[i].escaped);
}

/* The round trip the core subtracts is measured on the spot exchange, whose
 * answer the worker sends when it likes: a spoofer that holds back every
 * spot answer by the time it is short of (its compute time less what its
 * claim needs) looks exactly as fast as its claim. On a calm network, with
 * the same spoofers answering promptly as the control. */
static void test_spoofer_stalling_spot_answers(void **state)
{
    (void)state;
    /* at 50% of an RTX 4090, the 299 ms challenge takes 598 ms: hold back
     * the spot answers by the difference */
    spoof_report control = run_spoofers(0.5, 100, &NET_CALM, 0, 4242);
    spoof_report staller = run_spoofers(0.5, 100, &NET_CALM, 300, 4243);
    print_spoof("prompt spoofer", &control);
    print_spoof("stalling spoofer", &staller);
    assert_int_equal(control.caught, control.n);
    if (staller.caught != staller.n)
        fail_msg("spoofers at 50%% that hold back their spot answers by 300 ms: %u of %u pass",
                 staller.escaped, staller.n);
}

/* --- 3. skipped work
 * ------------------------------------------------------------------------------ */

/* Probability that `spots` distinct leaves drawn from L miss all k skipped
 * ones (the core draws distinct spots). */
static double miss_exact(uint32_t L, uint32_t k, uint32_t spots)
{
    double p = 1.0;
    for (uint32_t i = 0; i < spots; i++)
        p *= (double)(L - k - i) / (double)(L - i);
    return p < 0 ? 0 : p;
}

static void skip_run(double skip, unsigned workers, uint64_t horizon_ms, uint64_t seed,
                     double *rate, uint64_t *checks, unsigned *failed, unsigned *within)
{
    verify_config vc = tiny_config(256, seed);
    vc.spots = 16;
    sim *S = sim_create(&vc, &NET_CALM, seed * 7 + 1);
    S->check_each_step = false;
    for (unsigned i = 0; i < workers; i++) {
        simw *sw = sim_add(S, i, 1.0, NULL, NULL);
        sw->skip = skip;
        S->now += 5;
    }
    sim_run(S, S->now + horizon_ms, NULL);
    sim_check(S);
    uint8_t strikes = verifier_config(sched_verifier(S->s))->wrong_strikes;
    *checks = S->judged;
    *rate = S->judged ? (double)S->outcome[VERIFY_WRONG] / (double)S->judged : 0;
    *failed = *within = 0;
    for (size_t i = 0; i < S->n_w; i++) {
        *failed += S->w[i].failed_at != 0;
        *within += S->w[i].failed_at && S->w[i].failed_at <= strikes;
    }
    assert_int_equal(S->outcome[VERIFY_BAD], 0);
    assert_int_equal(S->odd_errors, 0);
    sim_destroy(S);
}

static void test_skipping_worker_caught(void **state)
{
    (void)state;
    const uint32_t L = 256, spots = 16;
    static const double fractions[] = {0.5, 0.1, 0.05};
    for (int i = 0; i < 3; i++) {
        double f = fractions[i];
        uint32_t k = (uint32_t)(f * L + 0.5);
        double fe = (double)k / L;
        double with_repl = 1.0 - pow(1.0 - fe, spots);
        double exact = 1.0 - miss_exact(L, k, spots);
        unsigned workers = i == 0 ? 300 : 400;
        double rate;
        uint64_t checks;
        unsigned failed, within;
        skip_run(f, workers, i == 0 ? 30000 : 40000, 99 + (uint64_t)i, &rate, &checks, &failed,
                 &within);
        print_message("skip %.3f (%u of %u leaves), %u spots: caught in %.4f%% of %llu checks; "
                      "theory 1-(1-f)^spots = %.4f%%, without replacement %.4f%%; %u/%u workers "
                      "failed (%u within wrong_strikes checks)\n",
                      fe, k, L, spots, 100 * rate, (unsigned long long)checks, 100 * with_repl,
                      100 * exact, failed, workers, within);
        assert_true(checks >= workers);
        double sigma = sqrt(exact * (1 - exact) / (double)checks);
        if (i == 0) {
            /* every one of them caught, on every check */
            assert_int_equal(failed, workers);
            assert_int_equal(within, workers);
            assert_true(rate >= 0.999);
        } else if (fabs(rate - exact) > 5 * sigma + 1e-9) {
            fail_msg("skip %.3f: catch rate %.4f, theory %.4f (5 sigma = %.4f)", fe, rate, exact,
                     5 * sigma);
        }
    }
}

/* --- 4. stale, replayed, misdirected and malformed answers ---------------------------------------
 */

static simw *manual(sim *S, unsigned n, const char *fp)
{
    simw *sw = sim_add(S, n, 1.0, fp, NULL);
    sw->answers = false;
    return sw;
}

/* Answer the worker's current challenge by hand: commit at `at`. */
static int commit_now(sim *S, simw *sw, uint64_t ch, const uint8_t *root, mu_error *err)
{
    int rc = sched_verify_commit(S->s, &sw->id, ch, root, S->now, err);
    int e = errno;
    sim_check(S);
    errno = e;
    return rc;
}

static int proofs_now(sim *S, simw *sw, uint64_t ch, const pow_tree *t, mu_error *err)
{
    uint8_t *leaves, *paths;
    size_t ll, pl;
    proofs_of(t, sw->idx, sw->n_idx, &leaves, &ll, &paths, &pl);
    int rc = sched_verify_proofs(S->s, &sw->id, ch, leaves, ll, paths, pl, S->now, err);
    int e = errno;
    free(leaves);
    free(paths);
    sim_check(S);
    errno = e;
    return rc;
}

static void tick_at(sim *S, uint64_t t)
{
    S->now = t;
    for (size_t i = 0; i < S->n_w; i++)
        if (S->w[i].alive)
            sched_touch(S->s, &S->w[i].id, t);
    sched_tick(S->s, t);
    sim_check(S);
}

static verify_state vstate(const sim *S, const simw *sw)
{
    return verifier_state(sched_verifier(S->s), sw->w);
}

static void test_stale_replayed_malformed(void **state)
{
    (void)state;
    verify_config vc = tiny_config(16, 11);
    sim *S = sim_create(&vc, &NET_CALM, 12);
    simw *a = manual(S, 1, "fp-a"), *b = manual(S, 2, "fp-b");
    tick_at(S, T0 + GATHER_MS - 1);
    assert_int_equal(a->challenges, 0); /* new workers are gathered first */
    tick_at(S, T0 + GATHER_MS);
    assert_int_equal(a->challenges, 1);
    assert_int_equal(b->challenges, 1);
    uint64_t ida = a->ch, idb = b->ch;
    assert_int_not_equal(ida, idb);
    pow_tree *ta = solve(&a->p, 0, &S->rng), *tb = solve(&b->p, 0, &S->rng);
    uint8_t ra[POW_HASH_BYTES], rb[POW_HASH_BYTES];
    pow_tree_root(ta, ra);
    pow_tree_root(tb, rb);
    mu_error err;

    /* an unknown worker */
    mu_id nobody;
    assert_int_equal(id_parse("99999999-0000-4000-8000-000000000099", &nobody), 0);
    assert_int_equal(sched_verify_commit(S->s, &nobody, ida, ra, S->now, &err), -1);
    assert_int_equal(errno, ENOENT);
    /* a's answer to b's challenge */
    S->now += 300;
    assert_int_equal(commit_now(S, a, idb, rb, &err), -1);
    assert_int_equal(errno, EPERM);
    /* proofs before the commitment */
    assert_int_equal(proofs_now(S, a, ida, ta, &err), -1);
    assert_int_equal(errno, ESTALE);
    /* ids that were never issued */
    assert_int_equal(commit_now(S, a, ida + (1ull << 32), ra, &err), -1);
    assert_int_equal(errno, ESTALE);
    assert_int_equal(commit_now(S, a, 0xffffffffffffffffull, ra, &err), -1);
    assert_int_equal(errno, ESTALE);
    assert_int_equal(S->verdicts, 0);
    assert_int_equal(vstate(S, a), VERIFY_PENDING);

    /* a commits; committing again is a replay */
    assert_int_equal(commit_now(S, a, ida, ra, &err), 0);
    assert_int_equal(a->n_idx, 16);
    assert_int_equal(commit_now(S, a, ida, ra, &err), -1);
    assert_int_equal(errno, ESTALE);
    /* malformed proofs: one leaf short, then (on b) paths one hash short */
    S->now += 60;
    uint8_t *leaves, *paths;
    size_t ll, pl;
    proofs_of(ta, a->idx, a->n_idx, &leaves, &ll, &paths, &pl);
    assert_int_equal(sched_verify_proofs(S->s, &a->id, ida, leaves, ll - POW_HASH_BYTES, paths, pl,
                                         S->now, &err),
                     -1);
    assert_int_equal(errno, EINVAL);
    sim_check(S);
    assert_int_equal(S->verdicts, 1);
    assert_int_equal(a->outcome[VERIFY_BAD], 1);
    assert_int_equal(vstate(S, a), VERIFY_SUSPECT);
    assert_int_equal(a->w->vstate, VERIFY_SUSPECT);
    /* the full, right proofs now come too late: that challenge is over */
    assert_int_equal(sched_verify_proofs(S->s, &a->id, ida, leaves, ll, paths, pl, S->now, &err),
                     -1);
    assert_int_equal(errno, ESTALE);
    free(leaves);
    free(paths);
    assert_int_equal(commit_now(S, a, ida, ra, &err), -1);
    assert_int_equal(errno, ESTALE);

    assert_int_equal(commit_now(S, b, idb, rb, &err), 0);
    proofs_of(tb, b->idx, b->n_idx, &leaves, &ll, &paths, &pl);
    assert_int_equal(
        sched_verify_proofs(S->s, &b->id, idb, leaves, ll, paths, pl - 1, S->now, &err), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(sched_verify_proofs(S->s, &b->id, idb, NULL, 0, NULL, 0, S->now, &err), -1);
    assert_int_equal(errno, ESTALE); /* the bad proof ended it */
    free(leaves);
    free(paths);
    sim_check(S);
    assert_int_equal(vstate(S, b), VERIFY_SUSPECT);
    assert_int_equal(S->verdicts, 2);

    /* re-checked after recheck_ms; b answers this one right */
    uint32_t recheck_ms = verifier_config(sched_verifier(S->s))->recheck_ms;
    tick_at(S, S->now + recheck_ms - 1);
    assert_int_equal(b->challenges, 1);
    tick_at(S, S->now + 1);
    assert_int_equal(b->challenges, 2);
    assert_int_equal(a->challenges, 2);
    uint64_t idb2 = b->ch;
    assert_int_not_equal(idb2, idb);
    /* the old answer is stale; replaying the old root for the new id is
     * caught by the spots (other seed: other leaves) */
    assert_int_equal(commit_now(S, b, idb, rb, &err), -1);
    assert_int_equal(errno, ESTALE);
    S->now += 300;
    assert_int_equal(commit_now(S, b, idb2, rb, &err), 0);
    assert_int_equal(proofs_now(S, b, idb2, tb, &err), 0);
    assert_int_equal(b->outcome[VERIFY_WRONG], 1);
    assert_int_equal(vstate(S, b), VERIFY_FAILED); /* a bad proof and a wrong one: 2 strikes */
    /* a answers its new challenge right */
    pow_tree *ta2 = solve(&a->p, 0, &S->rng);
    uint8_t ra2[POW_HASH_BYTES];
    pow_tree_root(ta2, ra2);
    assert_int_equal(commit_now(S, a, a->ch, ra2, &err), 0);
    S->now += 60;
    assert_int_equal(proofs_now(S, a, a->ch, ta2, &err), 0);
    assert_int_equal(vstate(S, a), VERIFY_PASSED);
    assert_int_equal(a->w->vstate, VERIFY_PASSED);
    /* and replays it */
    assert_int_equal(proofs_now(S, a, a->ch, ta2, &err), -1);
    assert_int_equal(errno, ESTALE);
    assert_int_equal(vstate(S, a), VERIFY_PASSED);
    pow_tree_destroy(ta);
    pow_tree_destroy(ta2);
    pow_tree_destroy(tb);
    sim_destroy(S);
}

/* --- 5. who may be hired, and when checks happen -------------------------------------------------
 */

static void answer_all(sim *S, uint64_t ms)
{
    sim_run(S, S->now + ms, NULL);
    sim_check(S);
}

static int quote(sim *S, unsigned workers)
{
    match_request rq = schedfix_request(S->f, "RTX 4090", 1, workers);
    sched_quote q;
    match_explain why;
    int rc = sched_quote_request(S->s, &rq, 1, &q, &why, NULL);
    return rc < 0 ? -errno : (int)q.workers;
}

static void test_pending_not_hireable(void **state)
{
    (void)state;
    verify_config vc = tiny_config(16, 21);
    sim *S = sim_create(&vc, &NET_CALM, 22);
    simw *a = sim_add(S, 1, 1.0, NULL, NULL), *b = sim_add(S, 2, 1.0, NULL, NULL);
    sim_check(S);
    assert_int_equal(a->w->vstate, VERIFY_PENDING);
    assert_int_equal(index_count(sched_index(S->s)), 0);
    assert_int_equal(quote(S, 2), -ENOSPC);
    assert_int_equal(quote(S, 1), -ENOSPC);
    answer_all(S, 3000);
    assert_int_equal(vstate(S, a), VERIFY_PASSED);
    assert_int_equal(vstate(S, b), VERIFY_PASSED);
    assert_int_equal(index_count(sched_index(S->s)), 2);
    assert_int_equal(quote(S, 2), 2);

    /* the same GPUs again: still passed, no new check */
    uint32_t ch = a->challenges;
    mu_error err;
    assert_non_null(sim_register(S, 1, "RTX 4090", 1, 1, NULL, NULL, &err));
    sim_check(S);
    assert_int_equal(vstate(S, a), VERIFY_PASSED);
    answer_all(S, 1000);
    assert_int_equal(a->challenges, ch);
    /* another device list (the GPU on another bus): pending, not hireable */
    assert_non_null(sim_register(S, 1, "RTX 4090", 1, 2, NULL, NULL, &err));
    sim_check(S);
    assert_int_equal(vstate(S, a), VERIFY_PENDING);
    assert_int_equal(a->w->vstate, VERIFY_PENDING);
    assert_int_equal(quote(S, 2), -ENOSPC);
    answer_all(S, 5000);
    /* pending again: two passes in a row (VERIFY_ONBOARD_PASSES) */
    assert_int_equal(a->challenges, ch + VERIFY_ONBOARD_PASSES);
    assert_int_equal(vstate(S, a), VERIFY_PASSED);
    assert_int_equal(quote(S, 2), 2);
    /* another GPU count too */
    assert_non_null(sim_register(S, 2, "RTX 4090", 2, 1, NULL, NULL, &err));
    sim_check(S);
    assert_int_equal(vstate(S, b), VERIFY_PENDING);
    answer_all(S, 3000);
    assert_int_equal(vstate(S, b), VERIFY_PASSED);
    sim_destroy(S);
}

static void test_failed_stays_failed(void **state)
{
    (void)state;
    verify_config vc = tiny_config(16, 31);
    sim *S = sim_create(&vc, &NET_CALM, 32);
    simw *x = sim_add(S, 1, 0.3, NULL, NULL);
    answer_all(S, 20000);
    assert_int_equal(vstate(S, x), VERIFY_FAILED);
    assert_int_equal(x->failed_at, vc.slow_strikes ? vc.slow_strikes : VERIFY_SLOW_STRIKES_DEFAULT);
    uint32_t ch = x->challenges;
    mu_error err;
    /* re-registering as the same, or with other GPUs, or after going
     * offline, changes nothing: never challenged, never hireable */
    assert_non_null(sim_register(S, 1, "RTX 4090", 1, 1, NULL, NULL, &err));
    assert_non_null(sim_register(S, 1, "RTX 4090", 2, 5, NULL, NULL, &err));
    sim_check(S);
    assert_int_equal(vstate(S, x), VERIFY_FAILED);
    assert_int_equal(sched_goodbye(S->s, &x->id, S->now, "bye"), 0);
    answer_all(S, 1000);
    assert_non_null(sim_register(S, 1, "RTX 4090", 1, 9, NULL, NULL, &err));
    answer_all(S, 60000);
    assert_int_equal(vstate(S, x), VERIFY_FAILED);
    assert_int_equal(x->w->vstate, VERIFY_FAILED);
    assert_int_equal(x->challenges, ch);
    assert_int_equal(index_count(sched_index(S->s)), 0);
    assert_int_equal(quote(S, 1), -ENOSPC);
    sim_destroy(S);
}

/* The challenges of worker wi sent at or after `from`. */
static size_t sent_since(const sim *S, const simw *sw, uint64_t from, uint64_t *at, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < S->n_log; i++)
        if (S->log[i].wi == (uint32_t)(sw - S->w) && S->log[i].at >= from && n < cap)
            at[n++] = S->log[i].at;
    return n;
}

static void test_shared_host_challenged_together(void **state)
{
    (void)state;
    verify_config vc = tiny_config(16, 41);
    vc.reverify_ms = 3600000;
    sim *S = sim_create(&vc, &NET_CALM, 42);
    /* a and b: one host fingerprint; c and d: one address; e alone */
    simw *a = sim_add(S, 1, 1.0, "host-one", "198.51.100.1");
    simw *c = sim_add(S, 3, 1.0, "host-three", "203.0.113.7");
    simw *e = sim_add(S, 5, 1.0, "host-five", "198.51.100.5");
    answer_all(S, 5000);
    assert_int_equal(vstate(S, a), VERIFY_PASSED);
    assert_int_equal(vstate(S, c), VERIFY_PASSED);
    /* b joins a's host 20 s later, d joins c's address 40 s later */
    S->now += 20000;
    uint64_t tb = S->now;
    simw *b = sim_add(S, 2, 1.0, "host-one", "198.51.100.2");
    answer_all(S, 20000);
    uint64_t td = S->now;
    simw *d = sim_add(S, 4, 1.0, "host-four", "203.0.113.7");
    answer_all(S, 5000);
    uint64_t at[2][8];
    /* b's two onboarding checks; a is challenged with it whenever it has
     * no answer of its own still awaited */
    assert_int_equal(sent_since(S, b, tb, at[0], 8), VERIFY_ONBOARD_PASSES);
    assert_true(sent_since(S, a, tb, at[1], 8) >= 1);
    print_message("fingerprint group: b challenged at +%llu ms, a at +%llu ms after b registered\n",
                  (unsigned long long)(at[0][0] - tb), (unsigned long long)(at[1][0] - tb));
    assert_int_equal(at[0][0], at[1][0]);
    assert_int_equal(sent_since(S, d, td, at[0], 8), VERIFY_ONBOARD_PASSES);
    assert_true(sent_since(S, c, td, at[1], 8) >= 1);
    assert_int_equal(at[0][0], at[1][0]);
    /* e shares nothing: not asked again */
    assert_int_equal(sent_since(S, e, tb, at[0], 8), 0);
    sim_destroy(S);
}

/* One GPU registered as two workers. Challenged one at a time (no shared
 * fingerprint or address) both pass; challenged together, the GPU answers
 * one after the other, in the order the core issued them (the due one,
 * i.e. the suspect, first: what a host keeping both alive would choose),
 * so the second answer is slow; one of the two must end up failed. */
static void test_one_gpu_two_workers(void **state)
{
    (void)state;
    for (int shared = 0; shared < 2; shared++) {
        verify_config vc = tiny_config(16, 51 + (uint64_t)shared);
        sim *S = sim_create(&vc, &NET_CALM, 52);
        simw *a = sim_add(S, 1, 1.0, shared ? "same-box" : "box-a", NULL);
        a->gpu = 0;
        answer_all(S, 2500);
        simw *b = sim_add(S, 2, 1.0, shared ? "same-box" : "box-b", NULL);
        b->gpu = 0;
        answer_all(S, 60000);
        unsigned failed = (vstate(S, a) == VERIFY_FAILED) + (vstate(S, b) == VERIFY_FAILED);
        print_message("one GPU as two workers, %s fingerprint: %s and %s after %u + %u checks "
                      "(%u and %u slow); outcomes a %s, b %s\n",
                      shared ? "one" : "different", verify_state_name(vstate(S, a)),
                      verify_state_name(vstate(S, b)), a->judged, b->judged,
                      a->outcome[VERIFY_SLOW], b->outcome[VERIFY_SLOW], a->trail, b->trail);
        if (shared)
            assert_true(failed >= 1);
        else
            assert_int_equal(failed, 0);
        sim_destroy(S);
    }
}

static void test_hired_not_challenged(void **state)
{
    (void)state;
    verify_config vc = tiny_config(16, 61);
    vc.reverify_ms = 5000; /* a free passed worker is checked every ~5 s */
    sim *S = sim_create(&vc, &NET_CALM, 62);
    simw *a = sim_add(S, 1, 1.0, NULL, NULL);
    simw *b = sim_add(S, 2, 1.0, NULL, NULL);
    answer_all(S, 4000); /* two onboarding checks of ~1 s */
    assert_int_equal(vstate(S, a), VERIFY_PASSED);
    /* hire one of them, between checks */
    match_request rq = schedfix_request(S->f, "RTX 4090", 1, 1);
    mu_id cid;
    assert_int_equal(id_parse("c0000001-0000-4000-8000-000000000000", &cid), 0);
    const cluster *c = sched_cluster_create(S->s, &cid, "x", &rq, 1, S->now, NULL, NULL);
    assert_non_null(c);
    simw *hired = c->members[0].worker == a->w->slot ? a : b;
    simw *free_one = hired == a ? b : a;
    assert_int_equal(sched_cluster_ack(S->s, &cid, &hired->id, S->now, NULL), 0);
    sim_check(S);
    /* a challenge in flight at the moment of hire may still be answered:
     * let it finish */
    answer_all(S, 3000);
    uint64_t since = S->now;
    uint32_t free_before = free_one->challenges;
    answer_all(S, 60000);
    uint64_t at[64];
    size_t n_hired = sent_since(S, hired, since, at, 64);
    print_message("over 60 s: hired worker challenged %zu times, free one %u times\n", n_hired,
                  free_one->challenges - free_before);
    assert_int_equal(n_hired, 0);
    assert_true(free_one->challenges - free_before >= 8);
    assert_int_equal(c->state, CLUSTER_READY);
    /* freed: checked at once (its last check is older than reverify_ms) */
    uint64_t rel = S->now;
    assert_int_equal(sched_cluster_release(S->s, &cid, rel, NULL, NULL), 0);
    sim_check(S);
    answer_all(S, 100);
    assert_int_equal(sent_since(S, hired, rel, at, 64), 1);
    assert_int_equal(at[0], rel);
    sim_destroy(S);
}

/* One check of a manual worker, answered 20 ms each way, computing at
 * `speed` of its claim; wrong: garbage leaves. Returns the outcome. */
static verify_outcome one_check(sim *S, simw *sw, double speed, bool wrong)
{
    uint32_t before = sw->challenges, judged = sw->judged;
    while (sw->challenges == before) {
        uint64_t t = sched_next_deadline(S->s);
        assert_true(t != UINT64_MAX);
        tick_at(S, t > S->now ? t : S->now);
    }
    pow_tree *t = solve(&sw->p, wrong ? 1.0 : 0.0, &S->rng);
    uint8_t root[POW_HASH_BYTES];
    pow_tree_root(t, root);
    mu_error err;
    S->now = sw->sent + 40 + (uint64_t)(sw->expected / speed);
    assert_int_equal(commit_now(S, sw, sw->ch, root, &err), 0);
    S->now += 40;
    assert_int_equal(proofs_now(S, sw, sw->ch, t, &err), 0);
    pow_tree_destroy(t);
    assert_int_equal(sw->judged, judged + 1);
    verify_result h[VERIFY_HISTORY];
    size_t n = verifier_history(sched_verifier(S->s), sw->w, h);
    assert_true(n >= 1);
    return (verify_outcome)h[n - 1].outcome;
}

/* slow_strikes slow answers among the latest VERIFY_STRIKE_WINDOW checks
 * confirm a failure; passes in between do not wash them out, older ones
 * drop out of the window. */
static void test_slow_strikes_in_a_row(void **state)
{
    (void)state;
    verify_config vc = tiny_config(16, 81);
    sim *S = sim_create(&vc, &NET_CALM, 82);
    simw *a = manual(S, 1, NULL);
    static const struct {
        double speed;
        verify_outcome o;
        verify_state st;
    } steps[] = {
        /* window (oldest first) after each: S | S O | S O S | S O S O |
         * S O S O O | O S O O O | S O O O S | O O O S S | O O S S S: 3 */
        {0.5, VERIFY_SLOW, VERIFY_SUSPECT}, {1.0, VERIFY_OK, VERIFY_PASSED},
        {0.6, VERIFY_SLOW, VERIFY_SUSPECT}, {1.0, VERIFY_OK, VERIFY_PASSED},
        {1.0, VERIFY_OK, VERIFY_PASSED},    {1.0, VERIFY_OK, VERIFY_PASSED},
        {0.5, VERIFY_SLOW, VERIFY_SUSPECT}, {0.5, VERIFY_SLOW, VERIFY_SUSPECT},
        {0.5, VERIFY_SLOW, VERIFY_FAILED},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        assert_int_equal(one_check(S, a, steps[i].speed, false), steps[i].o);
        assert_int_equal(vstate(S, a), steps[i].st);
    }
    /* and nothing more is asked of it */
    tick_at(S, S->now + 3600000);
    assert_int_equal(a->judged, 9);
    sim_destroy(S);
}

/* wrong_strikes wrong answers confirm a failure (verify.h). A wrong leaf
 * is never the network's fault, so a pass in between should not wipe the
 * count as it does for slow answers. */
static void test_wrong_strikes_accumulate(void **state)
{
    (void)state;
    verify_config vc = tiny_config(16, 91);
    sim *S = sim_create(&vc, &NET_CALM, 92);
    simw *a = manual(S, 1, NULL);
    assert_int_equal(one_check(S, a, 1.0, true), VERIFY_WRONG);
    assert_int_equal(vstate(S, a), VERIFY_SUSPECT);
    assert_int_equal(one_check(S, a, 1.0, false), VERIFY_OK);
    assert_int_equal(vstate(S, a), VERIFY_PASSED);
    assert_int_equal(one_check(S, a, 1.0, true), VERIFY_WRONG);
    if (vstate(S, a) != VERIFY_FAILED)
        fail_msg("two wrong answers (with a pass between) leave the worker %s, not failed",
                 verify_state_name(vstate(S, a)));
    sim_destroy(S);
}

static void test_offline_mid_challenge(void **state)
{
    (void)state;
    verify_config vc = tiny_config(16, 71);
    sim *S = sim_create(&vc, &NET_CALM, 72);
    simw *a = manual(S, 1, NULL);
    tick_at(S, T0 + GATHER_MS);
    assert_int_equal(a->challenges, 1);
    uint64_t id1 = a->ch;
    pow_tree *t = solve(&a->p, 0, &S->rng);
    uint8_t root[POW_HASH_BYTES];
    pow_tree_root(t, root);
    /* it leaves while computing */
    S->now += 100;
    assert_int_equal(sched_goodbye(S->s, &a->id, S->now, "agent stopped"), 0);
    a->alive = false;
    sim_check(S);
    S->now += 200;
    mu_error err;
    assert_int_equal(commit_now(S, a, id1, root, &err), -1);
    assert_int_equal(errno, ESTALE);
    tick_at(S, S->now + 60000); /* long past any answer deadline */
    assert_int_equal(S->verdicts, 0);
    assert_int_equal(a->challenges, 1);
    assert_int_equal(vstate(S, a), VERIFY_PENDING);
    /* back: asked again, passes */
    a->alive = true;
    assert_non_null(sim_register(S, 1, "RTX 4090", 1, 1, NULL, NULL, &err));
    tick_at(S, S->now + GATHER_MS);
    assert_int_equal(a->challenges, 2);
    uint64_t id2 = a->ch;
    assert_int_not_equal(id2, id1);
    pow_tree_destroy(t);
    t = solve(&a->p, 0, &S->rng);
    pow_tree_root(t, root);
    S->now += 330;
    assert_int_equal(commit_now(S, a, id2, root, &err), 0);
    /* the connection closes before the proofs: suspect, the check is
     * dropped without a verdict */
    S->now += 10;
    assert_int_equal(sched_disconnected(S->s, &a->id, S->now), 0);
    sim_check(S);
    S->now += 50;
    assert_int_equal(proofs_now(S, a, id2, t, &err), -1);
    assert_int_equal(errno, ESTALE);
    assert_int_equal(S->verdicts, 0);
    /* heard from again within the grace: asked again */
    assert_int_equal(sched_touch(S->s, &a->id, S->now), 0);
    tick_at(S, S->now + GATHER_MS);
    assert_int_equal(a->challenges, 3);
    assert_int_equal(S->verdicts, 0);
    assert_int_equal(vstate(S, a), VERIFY_PENDING);
    pow_tree_destroy(t);
    sim_destroy(S);
}

/* --- 6. configuration
 * ------------------------------------------------------------------------------ */

static int resolve(verify_config c)
{
    mu_error err;
    return verify_config_resolve(&c, &err);
}

static void test_config_resolve(void **state)
{
    (void)state;
    verify_config c = {0};
    mu_error err;
    assert_int_equal(verify_config_resolve(&c, &err), 0);
    assert_int_equal(c.leaves, VERIFY_LEAVES_DEFAULT);
    assert_int_equal(c.spots, VERIFY_SPOTS_DEFAULT);
    assert_true(c.min_ratio > 0 && c.min_ratio < 1);
    assert_int_equal(c.slow_strikes, VERIFY_SLOW_STRIKES_DEFAULT);
    /* leaves: a power of two in 16..65536 */
    assert_int_equal(resolve((verify_config){.leaves = 24}), -1);
    assert_int_equal(resolve((verify_config){.leaves = 100}), -1);
    assert_int_equal(resolve((verify_config){.leaves = 8, .spots = 8}), -1);
    assert_int_equal(resolve((verify_config){.leaves = 131072}), -1);
    assert_int_equal(resolve((verify_config){.leaves = 16}), 0);
    assert_int_equal(resolve((verify_config){.leaves = 65536}), 0);
    /* spots: at most 64 and at most the leaves */
    assert_int_equal(resolve((verify_config){.spots = 65}), -1);
    assert_int_equal(resolve((verify_config){.spots = 1000}), -1);
    assert_int_equal(resolve((verify_config){.spots = 64}), 0);
    assert_int_equal(resolve((verify_config){.leaves = 16, .spots = 32}), -1);
    /* min_ratio in (0, 1) */
    assert_int_equal(resolve((verify_config){.min_ratio = 1.0}), -1);
    assert_int_equal(resolve((verify_config){.min_ratio = 1.5}), -1);
    assert_int_equal(resolve((verify_config){.min_ratio = 0.99}), 0);
    assert_int_equal(resolve((verify_config){.units_per_tflop_s = INFINITY}), -1);
    assert_int_equal(resolve((verify_config){.target_ms = 600001}), -1);
    /* and the scheduler refuses to start with one */
    schedfix probe = {0};
    probe.cat = test_catalog();
    probe.regions = test_regions();
    tiers_default(&probe.tiers);
    sched_config cfg = {.reg = {.heartbeat_interval_ms = 1000,
                                .liveness = 3,
                                .cat = probe.cat,
                                .regions = probe.regions,
                                .tiers = &probe.tiers},
                        .verify = {.leaves = 48}};
    assert_null(sched_create(&cfg, NULL, &err));
    assert_non_null(strstr(err.text, "power of two"));
    regions_destroy(probe.regions);
    catalog_destroy(probe.cat);
    /* NaN compares false with everything: it must not slip through as a
     * ratio (every check would pass: expected < NaN x measured is false) */
    assert_int_equal(resolve((verify_config){.min_ratio = NAN}), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_resolve),
        cmocka_unit_test(test_stale_replayed_malformed),
        cmocka_unit_test(test_pending_not_hireable),
        cmocka_unit_test(test_failed_stays_failed),
        cmocka_unit_test(test_shared_host_challenged_together),
        cmocka_unit_test(test_one_gpu_two_workers),
        cmocka_unit_test(test_hired_not_challenged),
        cmocka_unit_test(test_offline_mid_challenge),
        cmocka_unit_test(test_slow_strikes_in_a_row),
        cmocka_unit_test(test_wrong_strikes_accumulate),
        cmocka_unit_test(test_skipping_worker_caught),
        cmocka_unit_test(test_honest_false_failure_rate),
        cmocka_unit_test(test_honest_light_checks),
        cmocka_unit_test(test_spoofers_fail),
        cmocka_unit_test(test_spoofer_stalling_spot_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
