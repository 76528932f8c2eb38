/* engine_verify.c - the agents' side of proof-of-work verification, in
 * virtual time (engine.h, docs/sim.md "Verification").
 *
 * The core's verifier runs unchanged: it sizes a challenge for the GPUs a
 * worker claims, sends it (sched_ops.challenge), asks for spots after the
 * commitment and judges the answer's timing and its proofs. Each modelled
 * agent answers as a real one would:
 *
 *   challenge sent at t0 ----(one way)---> the agent works for
 *   expected_ms / speed ----(one way)---> commitment at t0 + rtt1 + work
 *   spots asked at the commitment ----(rtt2)---> proofs
 *
 * and what it sends is real: it computes every leaf (pow_leaf), commits to
 * them with a Merkle root (pow_tree_create) and returns the leaves and
 * paths asked for, so the core's own pow_check_spot accepts them. The
 * challenges are made tiny (16 leaves, 1 KiB of scratch per GiB claimed,
 * and a calibration scale chosen so each takes whole rounds: see
 * verify_scale_auto) so that the hashing costs microseconds; the time the
 * core judges is the modelled one, never the time the hashing took.
 *
 * Agents: honest ones run at a speed drawn per check around 1 (their
 * claim); a spoofer (from a churn spoof event, or one of the `spoofers`
 * drawn at the start) runs at a speed drawn once per node, below its claim;
 * a share `jittery` of the nodes have a heavy-tailed round trip. Every draw
 * comes from a stream of the seed keyed by the node and the challenge.
 *
 * Measured: checks by outcome, honest workers the core failed (false
 * positives), spoofers it hired or found passed (false negatives), and how
 * long verdicts took.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "engine_int.h"
#include "rng.h"

/* The tiny challenges of the replay (see above). */
#define SIM_LEAVES    16u
#define SIM_SPOTS     4u
#define SIM_SCRATCH   1u /* KiB of scratch per GiB of VRAM claimed: the least */
#define SIM_TARGET_MS VERIFY_TARGET_DEFAULT_MS
#define FOREVER       UINT64_MAX

/* The calibration scale (pow units per TFLOPS-second) at which every node
 * of the fleet gets at least one round of work, so that no challenge is
 * clamped to a round and each takes its target time to within 1 / rounds
 * (the core rounds the rounds down). The least powerful GPU per GiB of
 * VRAM sets it; a fleet of one model gets its target exactly. */
static double verify_scale_auto(const engine *e)
{
    double u = 0;
    for (size_t i = 0; i < e->n_nodes; i++) {
        const gpu_model *m = catalog_at(e->cfg.cat, e->nodes[i].model);
        if (!m || m->fp32_tflops <= 0)
            continue;
        double g = e->nodes[i].gpus ? e->nodes[i].gpus : 1;
        double words = (double)SIM_SCRATCH * 1024.0 * m->vram_gib / 8.0 / SIM_LEAVES;
        words = words < 8 ? 8 : words > 65536 ? 65536 : floor(words);
        double need = SIM_LEAVES * words / (m->fp32_tflops * g * SIM_TARGET_MS / 1000.0);
        if (need > u)
            u = need;
    }
    return u > 0 ? u * (1 + 1e-9) : 1; /* a hair over, against rounding down */
}

int engine_verify_create(engine *e, sched_config *sc, sched_ops *ops, mu_error *errp)
{
    const engine_config *c = &e->cfg;
    if (!(c->spoofers >= 0 && c->spoofers <= 1) || !(c->jittery >= 0 && c->jittery <= 1))
        return errprintf(errp, "spoofers and jittery must be fractions in [0, 1]");
    if (!(c->verify_scale >= 0 && c->verify_scale <= 1e12))
        return errprintf(errp, "verification scale must be >= 0 (0: automatic)");
    e->vn = mu_calloc(e->n_nodes ? e->n_nodes : 1, sizeof(*e->vn));
    if (!e->vn)
        return errprintf(errp, "out of memory");
    sim_report *r = &e->r;
    for (size_t i = 0; i < e->n_nodes; i++) {
        vnode *v = &e->vn[i];
        rng g;
        rng_seed_stream(&g, c->seed ^ KEY_VNODE, i);
        double u_spoof = rng_uniform(&g), u_jit = rng_uniform(&g);
        double speed = dist_sample(&c->spoofer_speed, &g);
        v->joined_at = v->spoof_at = FOREVER;
        v->spoofer = u_spoof < c->spoofers;
        v->jittery = u_jit < c->jittery;
        v->speed = (float)speed;
        r->v_jittery_nodes += v->jittery;
    }
    double scale = c->verify_scale > 0 ? c->verify_scale : verify_scale_auto(e);
    sc->verify = (verify_config){.enabled = true,
                                 .target_ms = SIM_TARGET_MS,
                                 .units_per_tflop_s = scale,
                                 .scratch_kib_per_vram_gib = SIM_SCRATCH,
                                 .leaves = SIM_LEAVES,
                                 .spots = SIM_SPOTS,
                                 .light_ms = c->verify_light_ms,
                                 .reverify_ms = c->verify_reverify_ms,
                                 .seed = c->seed ^ KEY_VCORE};
    verify_config resolved = sc->verify;
    if (verify_config_resolve(&resolved, errp) < 0)
        return -1;
    ops->challenge = engine_on_challenge;
    ops->spots = engine_on_spots;
    ops->verdict = engine_on_verdict;
    r->verify_on = true;
    r->verify_scale = scale;
    r->verify_target_ms = resolved.target_ms;
    r->verify_leaves = resolved.leaves;
    r->verify_spots = resolved.spots;
    r->verify_light_ms = resolved.light_ms;
    r->verify_reverify_ms = resolved.reverify_ms;
    r->verify_min_ratio = resolved.min_ratio;
    r->spoofers_fraction = c->spoofers;
    r->jittery_fraction = c->jittery;
    dist_format(&c->honest_speed, r->honest_speed, sizeof(r->honest_speed));
    dist_format(&c->spoofer_speed, r->spoofer_speed, sizeof(r->spoofer_speed));
    dist_format(&c->rtt_ms, r->rtt_ms, sizeof(r->rtt_ms));
    dist_format(&c->jitter_rtt_ms, r->jitter_rtt_ms, sizeof(r->jitter_rtt_ms));
    r->v_expected_min_ms = UINT64_MAX;
    return 0;
}

static void flight_free(vflight *f)
{
    if (f) {
        pow_tree_destroy(f->tree);
        mu_free(f);
    }
}

void engine_verify_destroy(engine *e)
{
    for (size_t i = 0; e->vn && i < e->n_nodes; i++)
        flight_free(e->vn[i].fl);
    mu_free(e->vn);
    mu_free(e->v_leaves);
    mu_free(e->v_scratch);
    mu_free(e->v_first.v);
    mu_free(e->v_verified.v);
    mu_free(e->v_catch.v);
    e->vn = NULL;
}

/* --- the node's life ------------------------------------------------------------ */

static bool allocated(const engine *e, uint32_t n)
{
    const node *nd = &e->nodes[n];
    const worker *w = nd->slot == NIL ? NULL : registry_at(sched_registry_const(e->s), nd->slot);
    return w && w->alloc == WORKER_ALLOCATED;
}

/* n is up and spoofing from now: the start of the clock of its catch. */
static void spoofing_from(engine *e, uint32_t n)
{
    vnode *v = &e->vn[n];
    if (v->spoof_at != FOREVER)
        return;
    v->spoof_at = e->now;
    e->r.v_spoofers++;
    if (allocated(e, n))
        engine_verify_hired(e, n); /* it was hired honest and stays hired */
}

void engine_verify_join(engine *e, uint32_t n)
{
    vnode *v = &e->vn[n];
    if (v->joined_at == FOREVER)
        v->joined_at = e->now;
    if (v->spoofer)
        spoofing_from(e, n);
}

void engine_verify_spoof(engine *e, uint32_t n)
{
    e->r.v_spoof_events++;
    e->vn[n].spoofer = 1;
    if (e->nodes[n].live)
        spoofing_from(e, n);
}

void engine_verify_hired(engine *e, uint32_t n)
{
    vnode *v = &e->vn[n];
    if (v->spoof_at == FOREVER || (v->flags & VN_SPOOF_HIRED))
        return;
    v->flags |= VN_SPOOF_HIRED;
    e->r.v_spoofers_hired++;
}

/* --- answering ------------------------------------------------------------------ */

static uint32_t node_of(const engine *e, const worker *w)
{
    return w->slot < e->n_nodes ? e->slot_node[w->slot] : NIL;
}

/* A round trip of node n's link, in whole milliseconds. */
static uint32_t round_trip(const engine *e, const vnode *v, rng *g)
{
    double ms = dist_sample(v->jittery ? &e->cfg.jitter_rtt_ms : &e->cfg.rtt_ms, g);
    return ms < 0 ? 0 : ms > 3.6e6 ? 3600000u : (uint32_t)llround(ms);
}

void engine_on_challenge(void *arg, const worker *w, uint64_t id, const pow_params *p,
                         uint32_t expected_ms)
{
    engine *e = arg;
    e->r.v_challenges++;
    uint32_t n = node_of(e, w);
    if (n == NIL || !e->nodes[n].live)
        return; /* cannot happen: the core challenges online workers */
    vnode *v = &e->vn[n];
    flight_free(v->fl); /* an older one the agent never finished */
    v->fl = mu_calloc(1, sizeof(*v->fl));
    if (!v->fl) {
        engine_fail(e, ENOMEM);
        return;
    }
    vflight *f = v->fl;
    f->id = id;
    f->p = *p;
    f->gen = e->nodes[n].gen;
    rng g;
    rng_seed_stream(&g, e->cfg.seed ^ KEY_CHECK ^ ((uint64_t)n * 0x9e3779b97f4a7c15ull), id);
    double speed = dist_sample(&e->cfg.honest_speed, &g);
    if (v->spoofer)
        speed *= v->speed;
    uint32_t rtt1 = round_trip(e, v, &g);
    f->rtt2_ms = round_trip(e, v, &g);
    double work = (double)expected_ms / (speed > 1e-6 ? speed : 1e-6);
    uint64_t at = e->now + rtt1 + (uint64_t)llround(work > 3.6e9 ? 3.6e9 : work);
    if (evq_push(e->q, at, CLS_VERIFY, EV_COMMIT, n, f->gen, (uint32_t)(id >> 32)) < 0)
        engine_fail(e, ENOMEM);
}

/* The flight an answer event is about, or NULL when the agent has left
 * (or started another challenge) since. */
static vflight *flight_of(engine *e, const evq_event *ev)
{
    const node *nd = &e->nodes[ev->a];
    vflight *f = e->vn[ev->a].fl;
    if (!f || !nd->live || nd->gen != ev->b || f->gen != ev->b ||
        (uint32_t)(f->id >> 32) != ev->c) {
        e->r.v_dropped++;
        return NULL;
    }
    return f;
}

static void drop_flight(engine *e, uint32_t n)
{
    flight_free(e->vn[n].fl);
    e->vn[n].fl = NULL;
}

static int grow(void **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    void *nb = mu_realloc(*buf, need);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = need;
    return 0;
}

int engine_verify_commit(engine *e, const evq_event *ev, mu_error *errp)
{
    vflight *f = flight_of(e, ev);
    if (!f)
        return 0;
    const pow_params *p = &f->p;
    if (grow((void **)&e->v_leaves, &e->v_leaves_cap, (size_t)p->leaves * POW_HASH_BYTES) < 0 ||
        grow((void **)&e->v_scratch, &e->v_scratch_cap, (size_t)p->leaf_words * sizeof(uint64_t)) <
            0)
        return errprintf(errp, "out of memory");
    for (uint32_t i = 0; i < p->leaves; i++)
        pow_leaf(p, i, e->v_scratch, e->v_leaves + (size_t)i * POW_HASH_BYTES);
    mu_error err = {""};
    if (!(f->tree = pow_tree_create(p, e->v_leaves, &err)))
        return errprintf(errp, "out of memory");
    uint8_t root[POW_HASH_BYTES];
    pow_tree_root(f->tree, root);
    if (sched_verify_commit(e->s, &e->nodes[ev->a].id, f->id, root, EPOCH_MS + e->now, &err) < 0) {
        if (errno != ESTALE)
            return errprintf(errp, "the core refused a commitment: %s", err.text);
        e->r.v_late++; /* timed out: the core has judged it already */
        drop_flight(e, ev->a);
    }
    return 0;
}

void engine_on_spots(void *arg, const worker *w, uint64_t id, const uint32_t *idx, uint32_t n)
{
    engine *e = arg;
    uint32_t nn = node_of(e, w);
    vflight *f = nn == NIL ? NULL : e->vn[nn].fl;
    if (!f || f->id != id || n > POW_MAX_SPOT)
        return;
    memcpy(f->idx, idx, n * sizeof(*idx));
    f->n_idx = n;
    if (evq_push(e->q, e->now + f->rtt2_ms, CLS_VERIFY, EV_PROOFS, nn, f->gen,
                 (uint32_t)(id >> 32)) < 0)
        engine_fail(e, ENOMEM);
}

int engine_verify_proofs(engine *e, const evq_event *ev, mu_error *errp)
{
    vflight *f = flight_of(e, ev);
    if (!f)
        return 0;
    uint32_t depth = pow_tree_depth(f->tree);
    size_t path_bytes = (size_t)depth * POW_HASH_BYTES;
    size_t leaves_len = (size_t)f->n_idx * POW_HASH_BYTES, paths_len = f->n_idx * path_bytes;
    uint8_t *buf = mu_malloc(leaves_len + paths_len + 1);
    if (!buf)
        return errprintf(errp, "out of memory");
    for (uint32_t k = 0; k < f->n_idx; k++) {
        memcpy(buf + (size_t)k * POW_HASH_BYTES, pow_tree_leaf(f->tree, f->idx[k]), POW_HASH_BYTES);
        pow_tree_path(f->tree, f->idx[k], buf + leaves_len + k * path_bytes);
    }
    mu_error err = {""};
    int rc = sched_verify_proofs(e->s, &e->nodes[ev->a].id, f->id, buf, leaves_len,
                                 buf + leaves_len, paths_len, EPOCH_MS + e->now, &err);
    int saved = errno;
    mu_free(buf);
    drop_flight(e, ev->a);
    if (rc < 0) {
        if (saved != ESTALE)
            return errprintf(errp, "the core refused proofs: %s", err.text);
        e->r.v_late++;
    }
    return 0;
}

/* --- verdicts --------------------------------------------------------------------- */

static void push_since(engine *e, u64vec *v, uint64_t since)
{
    if (since != FOREVER && engine_vec_push(v, e->now - since) < 0)
        engine_fail(e, ENOMEM);
}

void engine_on_verdict(void *arg, const worker *w, const verify_result *res, verify_state from,
                       verify_state to)
{
    engine *e = arg;
    sim_report *r = &e->r;
    r->v_checks++;
    r->v_light_checks += res->light != 0;
    if (res->outcome < REPORT_OUTCOMES)
        r->v_outcomes[res->outcome]++;
    if (res->expected_ms) {
        r->v_expected_n++;
        r->v_expected_sum_ms += res->expected_ms;
        if (res->expected_ms < r->v_expected_min_ms)
            r->v_expected_min_ms = res->expected_ms;
        if (res->expected_ms > r->v_expected_max_ms)
            r->v_expected_max_ms = res->expected_ms;
    }
    e->row.verify_checks++;
    e->row.verify_not_ok += res->outcome != VERIFY_OK;
    bool fails = to == VERIFY_FAILED && from != VERIFY_FAILED;
    e->row.verify_failed += fails;
    uint32_t n = node_of(e, w);
    if (n == NIL)
        return;
    vnode *v = &e->vn[n];
    if (!(v->flags & VN_VERDICT)) {
        v->flags |= VN_VERDICT;
        push_since(e, &e->v_first, v->joined_at);
    }
    if (v->spoof_at == FOREVER) { /* honest */
        if (!(v->flags & VN_HONEST)) {
            v->flags |= VN_HONEST;
            r->v_honest++;
        }
        if (res->outcome != VERIFY_OK && !(v->flags & VN_ALARM)) {
            v->flags |= VN_ALARM;
            r->v_honest_alarmed++;
        }
        if (to == VERIFY_PASSED && !(v->flags & VN_VERIFIED)) {
            v->flags |= VN_VERIFIED;
            push_since(e, &e->v_verified, v->joined_at);
        }
        if (fails && !(v->flags & VN_FP)) {
            v->flags |= VN_FP;
            r->v_false_positives++;
        }
        return;
    }
    if (to == VERIFY_PASSED && !(v->flags & VN_SPOOF_PASS)) {
        v->flags |= VN_SPOOF_PASS;
        r->v_spoofers_passed++;
    }
    if (fails && !(v->flags & VN_SPOOF_CAUGHT)) {
        v->flags |= VN_SPOOF_CAUGHT;
        r->v_spoofers_caught++;
        push_since(e, &e->v_catch, v->spoof_at);
    }
}

void engine_verify_finish(engine *e)
{
    sim_report *r = &e->r;
    for (size_t i = 0; i < e->n_nodes; i++)
        r->v_false_negatives += (e->vn[i].flags & (VN_SPOOF_HIRED | VN_SPOOF_PASS)) != 0;
    if (!r->v_expected_n)
        r->v_expected_min_ms = 0;
    report_stats_of(e->v_first.v, e->v_first.n, &r->v_first_verdict);
    report_stats_of(e->v_verified.v, e->v_verified.n, &r->v_verified);
    report_stats_of(e->v_catch.v, e->v_catch.n, &r->v_catch);
}
