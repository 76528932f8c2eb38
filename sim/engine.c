/* engine.c - see engine.h.
 *
 * The loop: the next event in the heap is at time E. Before it, every core
 * deadline D < E is served: live workers that the core has not heard from
 * for a keep-alive interval are touched at D (the only heartbeats the
 * engine sends), and if something else is still due at D the core is
 * ticked there. Then the event is popped and handled. Timers due at the
 * very instant of an event run after the events of that instant.
 *
 * Measurements are taken from what the core reports through its ops
 * (cluster events, member notices, worker state changes: engine_observe.c)
 * and from its read-only accessors; never from a second model of what it
 * does.
 */
#include "engine_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "rng.h"
#include "strutil.h"
#include "synth.h"

#define PROGRESS_EVERY 65536u
/* Ticks at one instant that leave a deadline at or before it: the core
 * would be asking for a tick it does not act on. Never seen; a guard. */
#define MAX_STUCK_TICKS 1000u

/* --- config ---------------------------------------------------------------------- */

void engine_config_init(engine_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->seed = 1;
    cfg->heartbeat_ms = 1000;
    cfg->liveness = 3;
    cfg->keepalive_ms = 3600u * 1000u;
    cfg->ack_delay = (dist){DIST_CONSTANT, 2, 0};
    cfg->policy = ENGINE_AS_REQUESTED;
    cfg->min_tier = TIER_LOW;
    cfg->interval_ms = 3600u * 1000u;
    /* ENGINE_DEFAULT_HONEST_SPEED and the others, as values. */
    cfg->honest_speed = (dist){DIST_LOGNORMAL, 0, 0.03};
    cfg->spoofer_speed = (dist){DIST_UNIFORM, 0.3, 0.7};
    cfg->rtt_ms = (dist){DIST_LOGNORMAL, 3.9, 0.3};
    cfg->jitter_rtt_ms = (dist){DIST_LOGNORMAL, 4.5, 1};
}

static const char *const policy_names[] = {"as-requested", "pack", "spread"};

const char *engine_policy_name(engine_policy p)
{
    return (unsigned)p < 3 ? policy_names[p] : "unknown";
}

int engine_policy_parse(const char *s, engine_policy *out)
{
    for (int i = 0; i < 3; i++) {
        if (s && strcmp(s, policy_names[i]) == 0) {
            *out = (engine_policy)i;
            return 0;
        }
    }
    return -1;
}

/* --- small tools ----------------------------------------------------------------- */

uint64_t engine_ms_of(double s)
{
    double ms = floor(s * 1000.0 + 0.5);
    return ms <= 0 ? 0 : ms >= 1.8e19 ? UINT64_MAX : (uint64_t)ms;
}

/* A version 4 UUID from stream i of the seed: deterministic, and as unlikely
 * to collide as random ones. */
static void make_id(uint64_t seed, uint64_t key, uint64_t i, mu_id *id)
{
    rng r;
    rng_seed_stream(&r, seed ^ key, i);
    uint64_t a = rng_next(&r), b = rng_next(&r);
    for (int k = 0; k < 8; k++) {
        id->b[k] = (uint8_t)(a >> (8 * k));
        id->b[8 + k] = (uint8_t)(b >> (8 * k));
    }
    id->b[6] = (uint8_t)((id->b[6] & 0x0f) | 0x40);
    id->b[8] = (uint8_t)((id->b[8] & 0x3f) | 0x80);
}

/* Inside a callback nothing can be returned: remember the first failure
 * and let the loop stop after the call. */
void engine_fail(engine *e, int err)
{
    if (!e->failed)
        e->failed = err ? err : ENOMEM;
}

/* --- the keep-alive ring ------------------------------------------------------- */

static int ring_push(engine *e, uint64_t t, uint32_t n, uint32_t gen)
{
    if (e->ring_n == e->ring_cap) {
        size_t cap = e->ring_cap ? e->ring_cap * 2 : 1024;
        touch *nr = mu_malloc(cap * sizeof(*nr));
        if (!nr)
            return -1;
        for (size_t i = 0; i < e->ring_n; i++)
            nr[i] = e->ring[(e->ring_head + i) & (e->ring_cap - 1)];
        mu_free(e->ring);
        e->ring = nr;
        e->ring_cap = cap;
        e->ring_head = 0;
    }
    e->ring[(e->ring_head + e->ring_n++) & (e->ring_cap - 1)] = (touch){t, n, gen};
    return 0;
}

/* --- setup ----------------------------------------------------------------------- */

static int check_config(const engine_config *c, mu_error *errp)
{
    if (!c->cat || !c->regions || !c->tiers)
        return errprintf(errp, "engine: catalog, regions and tiers are required");
    if (c->heartbeat_ms < 10)
        return errprintf(errp, "heartbeat interval must be at least 10 ms");
    if (c->liveness < 2 || c->liveness > 100)
        return errprintf(errp, "liveness must be 2..100 intervals");
    if ((uint64_t)c->heartbeat_ms * c->liveness > UINT32_MAX)
        return errprintf(errp, "heartbeat x liveness is too long");
    if (c->keepalive_ms < 60000u)
        return errprintf(errp, "keep-alive interval must be at least 60 s");
    if ((uint64_t)c->keepalive_ms * 2 < (uint64_t)c->heartbeat_ms * c->liveness)
        return errprintf(errp, "keep-alive interval must be at least half of heartbeat x "
                               "liveness");
    if (!(c->goodbye >= 0 && c->goodbye <= 1))
        return errprintf(errp, "goodbye fraction must be in [0, 1]");
    if (c->interval_ms < 1000)
        return errprintf(errp, "report interval must be at least 1 s");
    if (c->min_tier < TIER_LOW || c->min_tier >= TIER_COUNT)
        return errprintf(errp, "minimum tier must be low, medium, high or ultra");
    if ((unsigned)c->policy > ENGINE_SPREAD)
        return errprintf(errp, "unknown policy");
    return 0;
}

/* Fill and check what every node registers with. */
static int prepare_nodes(engine *e, const mix *tiers, mu_error *errp)
{
    const catalog *cat = e->cfg.cat;
    for (size_t i = 0; i < e->n_nodes; i++) {
        churn_node cn;
        churn_node_get(e->churn, (uint32_t)i, &cn);
        node *nd = &e->nodes[i];
        const gpu_model *m = catalog_find(cat, cn.gpu_model);
        if (!m) {
            char hint[160];
            catalog_hint(cat, cn.gpu_model, hint, sizeof(hint));
            return errprintf(errp, "node %s: GPU model \"%s\" is not in the catalog%s", cn.name,
                             cn.gpu_model, hint);
        }
        if (cn.gpu_count > WORKER_MAX_DEVICES)
            return errprintf(errp, "node %s has %u GPUs; a worker registers at most %d", cn.name,
                             cn.gpu_count, WORKER_MAX_DEVICES);
        if (!regions_of_country(e->cfg.regions, cn.country))
            return errprintf(errp, "node %s: country \"%s\" is not in the region table", cn.name,
                             cn.country);
        make_id(e->cfg.seed, KEY_WORKER_ID, i, &nd->id);
        nd->slot = NIL;
        nd->model = (uint16_t)catalog_index(cat, m);
        nd->gpus = m->cls == GPU_CLASS_CPU ? 0 : (uint8_t)(cn.gpu_count ? cn.gpu_count : 1);
        memcpy(nd->country, cn.country, 2);
        nd->country[2] = '\0';
        rng r;
        rng_seed_stream(&r, e->cfg.seed ^ KEY_TIER, i);
        tier t = TIER_LOW;
        tier_parse(mix_name(tiers, mix_pick(tiers, rng_uniform(&r))), &t);
        nd->tier = (uint8_t)t;
    }
    return 0;
}

/* "Any model" in a request: the models of the fleet, the most common first
 * (ties by catalog order), at most the MATCH_MAX_MODELS a request can name. */
static int choose_any_models(engine *e, mu_error *errp)
{
    size_t nm = catalog_count(e->cfg.cat);
    uint64_t *per = mu_calloc(nm ? nm : 1, sizeof(*per));
    if (!per)
        return errprintf(errp, "out of memory");
    for (size_t i = 0; i < e->n_nodes; i++)
        if (e->nodes[i].gpus)
            per[e->nodes[i].model]++;
    size_t distinct = 0;
    for (size_t m = 0; m < nm; m++)
        distinct += per[m] > 0;
    e->n_any_models = 0;
    char *s = e->r.any_models;
    size_t cap = sizeof(e->r.any_models), len = 0;
    while (e->n_any_models < MATCH_MAX_MODELS) {
        size_t best = nm;
        for (size_t m = 0; m < nm; m++)
            if (per[m] && (best == nm || per[m] > per[best]))
                best = m;
        if (best == nm)
            break;
        e->any_models[e->n_any_models++] = (uint16_t)best;
        per[best] = 0;
        len +=
            (size_t)snprintf(s + len, len < cap ? cap - len : 0, "%s%s",
                             e->n_any_models > 1 ? ", " : "", catalog_at(e->cfg.cat, best)->name);
        if (len >= cap)
            len = cap - 1;
    }
    if (distinct > e->n_any_models)
        snprintf(s + len, cap - len, " (and %zu less common models left out)",
                 distinct - e->n_any_models);
    mu_free(per);
    return 0;
}

static int prepare_requests(engine *e, mu_error *errp)
{
    for (size_t i = 0; i < e->n_req; i++) {
        const workload_request *w = workload_at(e->wl, i);
        req *q = &e->reqs[i];
        *q = (req){.slot = NIL, .model = NIL16, .region = 0xff, .loss_head = NIL, .loss_tail = NIL};
        if (*w->gpu_model) {
            const gpu_model *m = catalog_find(e->cfg.cat, w->gpu_model);
            if (!m) {
                char hint[160];
                catalog_hint(e->cfg.cat, w->gpu_model, hint, sizeof(hint));
                return errprintf(errp, "request %zu%s%s: GPU model \"%s\" is not in the catalog%s",
                                 i, *w->name ? " " : "", w->name, w->gpu_model, hint);
            }
            q->model = (uint16_t)catalog_index(e->cfg.cat, m);
        }
        if (*w->region) {
            int ri = regions_index(e->cfg.regions, w->region);
            if (ri < 0 || ri > 63)
                return errprintf(errp, "request %zu%s%s: \"%s\" is not a region", i,
                                 *w->name ? " " : "", w->name, w->region);
            q->region = (uint8_t)ri;
        }
        q->placement = strcmp(w->placement, "spread") == 0 ? PLACE_SPREAD : PLACE_PACK;
    }
    return 0;
}

static uint64_t traces_end(const engine *e)
{
    uint64_t end = e->n_cev ? engine_ms_of(e->cev[e->n_cev - 1].time_s) : 0;
    for (size_t i = 0; i < e->n_req; i++) {
        const workload_request *w = workload_at(e->wl, i);
        uint64_t t = engine_ms_of(w->arrival_s + w->duration_s);
        if (t > end)
            end = t;
    }
    return end;
}

static void copy_name(char *dst, size_t n, const char *src)
{
    str_copy(dst, src ? src : "", n);
}

engine *engine_create(const engine_config *cfg, churn_trace *churn, workload *wl, mu_error *errp)
{
    if (check_config(cfg, errp) < 0)
        return NULL;
    if (!churn)
        return errprintf(errp, "engine: a churn trace is required"), NULL;
    engine *e = mu_calloc(1, sizeof(*e));
    if (!e)
        return errprintf(errp, "out of memory"), NULL;
    e->cfg = *cfg;
    e->churn = churn;
    e->wl = wl;
    e->creating = NIL;
    e->loss_free = NIL;
    report_init(&e->r);
    mix *gpus = NULL, *counts = NULL, *countries = NULL, *tiers = NULL;
    const mix *mg = cfg->fill_gpus, *mc = cfg->fill_gpu_counts, *mk = cfg->fill_countries,
              *mt = cfg->fill_tiers;
    if ((!mg && !(mg = gpus = mix_parse(ENGINE_DEFAULT_GPUS, false, "gpus", errp))) ||
        (!mc &&
         !(mc = counts = mix_parse_counts(ENGINE_DEFAULT_GPU_COUNTS, 1024, "gpu counts", errp))) ||
        (!mk &&
         !(mk = countries = mix_parse(ENGINE_DEFAULT_COUNTRIES, false, "countries", errp))) ||
        (!mt && !(mt = tiers = mix_parse(ENGINE_DEFAULT_TIERS, false, "tiers", errp))))
        goto error;
    for (size_t i = 0; i < mix_count(mt); i++) {
        tier t;
        if (tier_parse(mix_name(mt, i), &t) < 0) {
            errprintf(errp, "tiers: \"%s\" is not none, low, medium, high or ultra",
                      mix_name(mt, i));
            goto error;
        }
    }
    if (synth_fill_nodes(churn, mg, mc, mk, cfg->seed, errp) < 0)
        goto error;
    if (wl && cfg->fill_regions && synth_fill_regions(wl, cfg->fill_regions, cfg->seed, errp) < 0)
        goto error;
    e->cev = churn_events(churn);
    e->n_cev = churn_event_count(churn);
    e->n_nodes = churn_node_count(churn);
    e->n_req = wl ? workload_count(wl) : 0;
    if (e->n_nodes >= NIL || e->n_req >= NIL) {
        errprintf(errp, "too many nodes or requests for one run");
        goto error;
    }
    e->nodes = mu_calloc(e->n_nodes ? e->n_nodes : 1, sizeof(*e->nodes));
    e->slot_node = mu_malloc((e->n_nodes ? e->n_nodes : 1) * sizeof(*e->slot_node));
    e->reqs = mu_calloc(e->n_req ? e->n_req : 1, sizeof(*e->reqs));
    e->slot_req = mu_malloc((e->n_req ? e->n_req : 1) * sizeof(*e->slot_req));
    e->q = evq_create();
    if (!e->nodes || !e->slot_node || !e->reqs || !e->slot_req || !e->q) {
        errprintf(errp, "out of memory");
        goto error;
    }
    e->n_slot_req = e->n_req;
    for (size_t i = 0; i < e->n_nodes; i++)
        e->slot_node[i] = NIL;
    for (size_t i = 0; i < e->n_req; i++)
        e->slot_req[i] = NIL;
    if (prepare_nodes(e, mt, errp) < 0 || prepare_requests(e, errp) < 0 ||
        choose_any_models(e, errp) < 0)
        goto error;

    sched_config sc = {0};
    /* The registry's interval is the keep-alive, not the agents' heartbeat
     * (engine.h); a failure reaches it as a closed connection whose grace
     * is the agents' liveness window. */
    sc.reg.heartbeat_interval_ms = cfg->keepalive_ms;
    sc.reg.liveness = 2;
    sc.reg.reconnect_grace_ms = cfg->heartbeat_ms * cfg->liveness;
    sc.reg.cat = cfg->cat;
    sc.reg.regions = cfg->regions;
    sc.reg.tiers = cfg->tiers;
    sc.provision_timeout_ms = cfg->provision_timeout_ms;
    sc.max_hours = cfg->max_hours;
    sc.reroute_retry_ms = cfg->reroute_retry_ms;
    sched_ops ops = {.worker_state = engine_on_worker_state,
                     .cluster_event = engine_on_cluster_event,
                     .member_notice = engine_on_member_notice,
                     .arg = e};
    /* With verification, the core challenges every worker and the engine
     * answers for the agents (engine_verify.c); without, sc.verify stays
     * zero: off, and every worker counts as verified. */
    if (cfg->verify && engine_verify_create(e, &sc, &ops, errp) < 0)
        goto error;
    if (wl && workload_has_tasks(wl) && engine_tasks_create(e, errp) < 0)
        goto error;
    if (!(e->s = sched_create(&sc, &ops, errp)))
        goto error;

    e->until = cfg->until_ms ? cfg->until_ms : traces_end(e);
    sim_report *r = &e->r;
    copy_name(r->churn_source, sizeof(r->churn_source), cfg->churn_source);
    copy_name(r->churn_format, sizeof(r->churn_format), cfg->churn_format);
    copy_name(r->workload_source, sizeof(r->workload_source), cfg->workload_source);
    copy_name(r->workload_format, sizeof(r->workload_format), cfg->workload_format);
    r->seed = cfg->seed;
    copy_name(r->policy, sizeof(r->policy), engine_policy_name(cfg->policy));
    r->heartbeat_ms = cfg->heartbeat_ms;
    r->liveness = cfg->liveness;
    r->keepalive_ms = cfg->keepalive_ms;
    r->reroute_retry_ms =
        cfg->reroute_retry_ms ? cfg->reroute_retry_ms : SCHED_REROUTE_RETRY_DEFAULT_MS;
    r->provision_timeout_ms =
        cfg->provision_timeout_ms ? cfg->provision_timeout_ms : SCHED_PROVISION_TIMEOUT_DEFAULT_MS;
    r->goodbye_fraction = cfg->goodbye;
    dist_format(&cfg->ack_delay, r->ack_delay, sizeof(r->ack_delay));
    copy_name(r->min_tier, sizeof(r->min_tier), tier_name(cfg->min_tier));
    r->interval_ms = cfg->interval_ms;
    r->end_ms = e->until;
    r->nodes = e->n_nodes;
    mix_destroy(gpus);
    mix_destroy(counts);
    mix_destroy(countries);
    mix_destroy(tiers);
    return e;
error:
    mix_destroy(gpus);
    mix_destroy(counts);
    mix_destroy(countries);
    mix_destroy(tiers);
    engine_destroy(e);
    return NULL;
}

void engine_destroy(engine *e)
{
    if (!e)
        return;
    sched_destroy(e->s);
    engine_verify_destroy(e);
    engine_tasks_destroy(e);
    evq_destroy(e->q);
    mu_free(e->nodes);
    mu_free(e->slot_node);
    mu_free(e->reqs);
    mu_free(e->slot_req);
    mu_free(e->ring);
    mu_free(e->losses);
    mu_free(e->ttr.v);
    mu_free(e->reroute.v);
    report_free(&e->r);
    mu_free(e);
}

/* --- the clock ------------------------------------------------------------------- */

/* Move virtual time to t, integrating the GPUs the core counts online. */
static void advance(engine *e, uint64_t t)
{
    if (t <= e->now)
        return;
    e->online_gpu_ms += registry_gpus_online(sched_registry_const(e->s)) * (t - e->now);
    e->now = t;
}

/* "n" and the node's number: snprintf's cost was a sixth of a
 * registration's instructions. */
static void host_name(uint32_t n, char out[12])
{
    char digits[10];
    int k = 0;
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    out[0] = 'n';
    for (int i = 0; i < k; i++)
        out[1 + i] = digits[k - 1 - i];
    out[1 + k] = '\0';
}

static int register_node(engine *e, uint32_t n, mu_error *errp)
{
    node *nd = &e->nodes[n];
    char id[ID_TEXT_LEN], host[12];
    id_format(&nd->id, id);
    host_name(n, host);
    const gpu_model *m = catalog_at(e->cfg.cat, nd->model);
    worker_device_spec devs[WORKER_MAX_DEVICES];
    for (unsigned i = 0; i < nd->gpus; i++)
        devs[i] = (worker_device_spec){.model_claim = m->name};
    const tier_table *tt = e->cfg.tiers;
    uint32_t down = nd->tier == TIER_NONE ? tt->min_down[TIER_LOW] / 2 : tt->min_down[nd->tier];
    uint32_t up = nd->tier == TIER_NONE ? tt->min_up[TIER_LOW] / 2 : tt->min_up[nd->tier];
    worker_spec spec = {.id = id,
                        .hostname = host,
                        .devices = devs,
                        .n_devices = nd->gpus,
                        .country = nd->country,
                        .bw_down_mbps = down,
                        .bw_up_mbps = up,
                        .agent_version = "muster-sim",
                        .simulated = true};
    const worker *w = sched_register(e->s, &spec, EPOCH_MS + e->now, errp);
    if (!w)
        return errprefix(errp, "core refused node %u", n);
    if (w->slot >= e->n_nodes)
        return errprintf(errp, "core gave node %u an unexpected slot", n);
    nd->slot = w->slot;
    e->slot_node[w->slot] = n;
    nd->last_touch = e->now;
    if (ring_push(e, e->now, n, nd->gen) < 0)
        return errprintf(errp, "out of memory");
    return 0;
}

static void progress(engine *e, bool done)
{
    if (!e->cfg.progress)
        return;
    engine_progress p = {e->r.events, e->r.touches, e->now, e->until, done};
    e->cfg.progress(e->cfg.progress_arg, &p);
}

/* Events and touches both take time: report after every PROGRESS_EVERY of
 * either, so a run made mostly of keep-alives shows progress too. */
static void maybe_progress(engine *e)
{
    if (e->r.events + e->r.touches < e->next_progress)
        return;
    e->next_progress = e->r.events + e->r.touches + PROGRESS_EVERY;
    progress(e, false);
}

/* A replay is a stream of random workers among up to millions, each a
 * handful of cache misses. Keep-alives and churn come in a known order, so
 * the engine loads ahead of the one it serves: its own node record
 * 4 * PREFETCH_STEP workers ahead, then, a step nearer each time, what the
 * core reads from the id and slot, what that points to, and what that
 * points to in turn (sched_prefetch, stages 0 to 2). The loads then overlap
 * with the work on the workers before. A step of 6 measured 5 to 9% faster
 * than 4 over 120 days of sim_bench, and 8 slower again; over a year the
 * difference drowns in the machine's noise (bench/README.md). */
#define PREFETCH_STEP   6u
#define PREFETCH_STAGES 4u

/* Load ahead for node n, which is `ahead` steps from being served. */
static void prefetch_node(const engine *e, uint32_t n, prefetch_for what, unsigned ahead)
{
    const node *nd = &e->nodes[n];
    if (ahead == PREFETCH_STAGES)
        __builtin_prefetch(nd);
    else
        sched_prefetch(e->s, &nd->id, nd->slot, what, (int)(PREFETCH_STAGES - 1 - ahead));
}

static void prefetch_touch(const engine *e)
{
    size_t m = e->ring_cap - 1;
    for (unsigned a = 1; a <= PREFETCH_STAGES; a++)
        if (e->ring_n > a * PREFETCH_STEP)
            prefetch_node(e, e->ring[(e->ring_head + a * PREFETCH_STEP) & m].node,
                          PREFETCH_HEARTBEAT, a);
}

static void prefetch_churn(const engine *e, size_t k)
{
    for (unsigned a = 1; a <= PREFETCH_STAGES; a++) {
        if (k + a * PREFETCH_STEP >= e->n_cev)
            break;
        const churn_event *ce = &e->cev[k + a * PREFETCH_STEP];
        prefetch_node(e, ce->node, ce->kind == CHURN_JOIN ? PREFETCH_REGISTER : PREFETCH_HEARTBEAT,
                      a);
    }
}

/* Touch, at the current time, every live worker the core has not heard from
 * for a keep-alive interval: the only heartbeats the engine sends. They are
 * in the order the core heard from them, so the walk stops at the first
 * fresh one. */
static int keepalive(engine *e, mu_error *errp)
{
    uint64_t k = e->cfg.keepalive_ms;
    while (e->ring_n) {
        touch t = e->ring[e->ring_head];
        node *nd = &e->nodes[t.node];
        if (nd->live && nd->gen == t.gen && nd->last_touch == t.t && t.t + k > e->now)
            break;
        prefetch_touch(e);
        e->ring_head = (e->ring_head + 1) & (e->ring_cap - 1);
        e->ring_n--;
        if (!nd->live || nd->gen != t.gen || nd->last_touch != t.t)
            continue; /* superseded by a later touch, or gone */
        e->r.touches++;
        if (sched_touch(e->s, &nd->id, EPOCH_MS + e->now) < 0) {
            /* The core no longer knows it as up: the agent registers again,
             * as a Paranoid Pirate worker told so would. */
            e->r.reconnects++;
            if (register_node(e, t.node, errp) < 0)
                return -1;
            continue;
        }
        nd->last_touch = e->now;
        if (ring_push(e, e->now, t.node, nd->gen) < 0)
            return errprintf(errp, "out of memory");
    }
    return 0;
}

/* When the next event is due, from the churn trace or the queue;
 * UINT64_MAX when there is none. */
static uint64_t next_event_time(const engine *e)
{
    const evq_event *top = evq_peek(e->q);
    uint64_t tq = top ? top->t : UINT64_MAX;
    return e->next_cev_t < tq ? e->next_cev_t : tq;
}

/* Serve every core deadline before `before` (virtual ms) and before the
 * next event: what a tick does may push events (a replacement's
 * acknowledgement, an agent's answer to a challenge) that come before the
 * next deadline. */
static int run_timers(engine *e, uint64_t before, mu_error *errp)
{
    uint64_t stuck_at = UINT64_MAX;
    unsigned stuck = 0;
    for (;;) {
        uint64_t d = sched_next_deadline(e->s);
        if (d == UINT64_MAX)
            return 0;
        uint64_t dv = d > EPOCH_MS ? d - EPOCH_MS : 0;
        if (dv >= before || dv >= next_event_time(e))
            return 0;
        if (dv < e->now)
            dv = e->now; /* overdue: now is as early as time can go */
        advance(e, dv);
        if (keepalive(e, errp) < 0)
            return -1;
        maybe_progress(e);
        uint64_t d2 = sched_next_deadline(e->s);
        if (d2 > EPOCH_MS + dv)
            continue; /* it was only keep-alives */
        if (dv == stuck_at && ++stuck > MAX_STUCK_TICKS)
            return errprintf(errp,
                             "the core keeps asking for a tick at %llu ms and does not "
                             "act on it",
                             (unsigned long long)dv);
        if (dv != stuck_at) {
            stuck_at = dv;
            stuck = 0;
        }
        sched_tick(e->s, EPOCH_MS + dv);
        e->r.ticks++;
        e->r.events++;
        if (e->failed) {
            errno = e->failed;
            return errprintf(errp, "out of memory");
        }
    }
}

/* --- events ---------------------------------------------------------------------- */

/* Churn is class 0 (CLS_CHURN), first at any instant, and the trace is in
 * time order: taking its next event whenever it is due no later than the
 * queue's first is the order the queue itself would give. Reading it in
 * place spares a push and a pop for most events of a replay. */
static void next_churn(engine *e, size_t k)
{
    e->next_cev = k;
    e->next_cev_t = k < e->n_cev ? engine_ms_of(e->cev[k].time_s) : UINT64_MAX;
}

static int push_next_arrival(engine *e, size_t i)
{
    if (i >= e->n_req)
        return 0;
    return evq_push(e->q, engine_ms_of(workload_at(e->wl, i)->arrival_s), CLS_ARRIVAL, EV_ARRIVAL,
                    (uint32_t)i, 0, 0);
}

static int on_churn(engine *e, uint32_t k, mu_error *errp)
{
    const churn_event *ce = &e->cev[k];
    node *nd = &e->nodes[ce->node];
    prefetch_churn(e, k);
    e->r.churn_events++;
    if (ce->kind == CHURN_SPOOF) {
        if (e->vn)
            engine_verify_spoof(e, ce->node);
        else
            e->r.spoof_ignored++;
    } else if (ce->kind == CHURN_JOIN) {
        if (nd->live) {
            e->r.redundant++;
        } else {
            nd->live = 1;
            nd->gen++;
            e->r.joins++;
            if (!nd->joined) {
                nd->joined = 1;
                e->r.nodes_joined++;
            }
            if (register_node(e, ce->node, errp) < 0)
                return -1;
            if (e->vn)
                engine_verify_join(e, ce->node);
            if (e->tc)
                engine_tasks_join(e, ce->node);
        }
    } else if (!nd->live) {
        e->r.redundant++;
    } else {
        if (e->tc)
            engine_tasks_leave(e, ce->node);
        nd->live = 0;
        nd->gen++;
        bool bye = e->cfg.goodbye >= 1;
        if (e->cfg.goodbye > 0 && e->cfg.goodbye < 1) {
            rng r;
            rng_seed_stream(&r, e->cfg.seed ^ KEY_LEAVE, (uint64_t)ce->node << 32 | nd->gen);
            bye = rng_uniform(&r) < e->cfg.goodbye;
        }
        int rc;
        if (bye) {
            e->r.goodbyes++;
            rc = sched_goodbye(e->s, &nd->id, EPOCH_MS + e->now, "left (churn trace)");
        } else {
            e->r.failures++;
            rc = sched_disconnected(e->s, &nd->id, EPOCH_MS + e->now);
        }
        if (rc < 0)
            return errprintf(errp, "core does not know node %u: %s", ce->node, strerror(errno));
    }
    next_churn(e, k + 1);
    return 0;
}

static int on_arrival(engine *e, uint32_t i, mu_error *errp)
{
    const workload_request *w = workload_at(e->wl, i);
    req *q = &e->reqs[i];
    e->r.requests++;
    e->row.requests++;
    e->r.t_requested += w->tasks;
    match_request rq;
    memset(&rq, 0, sizeof(rq));
    if (q->model != NIL16) {
        rq.models[0] = q->model;
        rq.n_models = 1;
    } else {
        memcpy(rq.models, e->any_models, sizeof(rq.models));
        rq.n_models = e->n_any_models;
    }
    rq.gpus_per_worker =
        (uint16_t)(w->gpus_per_worker > UINT16_MAX ? UINT16_MAX : w->gpus_per_worker);
    rq.workers = w->workers;
    rq.min_workers = w->workers;
    rq.min_tier = e->cfg.min_tier;
    rq.regions = q->region == 0xff ? 0 : 1ull << q->region;
    rq.placement = e->cfg.policy == ENGINE_PACK     ? PLACE_PACK
                   : e->cfg.policy == ENGINE_SPREAD ? PLACE_SPREAD
                                                    : (placement)q->placement;
    double h = ceil(w->duration_s / 3600.0);
    uint32_t hours = h < 1 ? 1 : h > UINT32_MAX ? UINT32_MAX : (uint32_t)h;
    mu_id id;
    make_id(e->cfg.seed, KEY_CLUSTER_ID, i, &id);
    q->created_ms = q->last_ms = e->now;
    match_explain why;
    mu_error err = {""};
    e->creating = i;
    const cluster *c =
        sched_cluster_create(e->s, &id, "muster-sim", &rq, hours, EPOCH_MS + e->now, &why, &err);
    int saved = errno;
    e->creating = NIL;
    if (!c) {
        if (saved == ENOSPC) {
            e->r.unmet++;
            e->row.unmet++;
            engine_count(e, &e->r.unmet_by, why.constraint);
        } else if (saved == EINVAL) {
            e->r.invalid++;
            e->row.invalid++;
            engine_count(e, &e->r.invalid_by, err.text);
        } else {
            return errprintf(errp, "request %u: %s", i, err.text);
        }
    } else {
        e->r.met++;
        e->row.met++;
        /* The owner of a cluster with tasks releases it when they are done
         * (engine_tasks.c), or the core expires it when its hours run out. */
        uint64_t end = e->now + (engine_ms_of(w->duration_s) ? engine_ms_of(w->duration_s) : 1);
        if (!q->has_tasks && evq_push(e->q, end, CLS_RELEASE, EV_RELEASE, i, 0, 0) < 0)
            return errprintf(errp, "out of memory");
    }
    return push_next_arrival(e, i + 1) < 0 ? errprintf(errp, "out of memory") : 0;
}

static int on_ack(engine *e, const evq_event *ev, mu_error *errp)
{
    req *q = &e->reqs[ev->a];
    node *nd = &e->nodes[ev->b];
    if (!nd->live || nd->gen != ev->c || q->slot == NIL)
        return 0; /* it left before it could answer */
    const cluster *c = sched_cluster_at(e->s, q->slot);
    if (!c || !cluster_active(c))
        return 0;
    e->r.acks++;
    mu_error err;
    if (sched_cluster_ack(e->s, &c->id, &nd->id, EPOCH_MS + e->now, &err) < 0 && errno != EPERM)
        return errprintf(errp, "acknowledgement refused: %s", err.text);
    /* EPERM: its seat was given to another worker meanwhile; nothing to do. */
    return 0;
}

static int on_release(engine *e, uint32_t i, mu_error *errp)
{
    req *q = &e->reqs[i];
    const cluster *c = q->slot == NIL ? NULL : sched_cluster_at(e->s, q->slot);
    if (!c || !cluster_active(c))
        return 0; /* failed or expired before its owner let it go */
    e->r.releases++;
    mu_error err;
    if (sched_cluster_release(e->s, &c->id, EPOCH_MS + e->now, "the job ended (simulated owner)",
                              &err) < 0)
        return errprintf(errp, "release refused: %s", err.text);
    return 0;
}

static int on_sample(engine *e, mu_error *errp)
{
    const registry *reg = sched_registry_const(e->s);
    report_row row = e->row;
    row.t_ms = e->now;
    row.online_workers = (uint32_t)registry_count_state(reg, WORKER_ONLINE);
    row.suspect_workers = (uint32_t)registry_count_state(reg, WORKER_SUSPECT);
    row.online_gpus = registry_gpus_online(reg);
    row.allocated_workers = (uint32_t)e->alloc_workers;
    row.allocated_gpus = (uint64_t)e->alloc_gpus;
    row.ready_clusters = (uint32_t)e->by_state[CLUSTER_READY];
    row.degraded_clusters = (uint32_t)e->by_state[CLUSTER_DEGRADED];
    row.active_clusters =
        (uint32_t)(e->by_state[CLUSTER_PROVISIONING] + row.ready_clusters + row.degraded_clusters);
    row.tasks_running = (uint32_t)e->tasks_running;
    row.tasks_queued = (uint32_t)e->tasks_queued;
    if (report_add_row(&e->r, &row) < 0)
        return errprintf(errp, "out of memory");
    memset(&e->row, 0, sizeof(e->row));
    e->r.samples++;
    if (e->now < e->until) {
        uint64_t next = e->now + e->cfg.interval_ms;
        if (evq_push(e->q, next < e->until ? next : e->until, CLS_SAMPLE, EV_SAMPLE, 0, 0, 0) < 0)
            return errprintf(errp, "out of memory");
    }
    return 0;
}

int engine_run(engine *e, mu_error *errp)
{
    if (e->ran)
        return errprintf(errp, "engine: a replay runs once");
    e->ran = true;
    next_churn(e, 0);
    if (push_next_arrival(e, 0) < 0 ||
        evq_push(e->q, e->cfg.interval_ms < e->until ? e->cfg.interval_ms : e->until, CLS_SAMPLE,
                 EV_SAMPLE, 0, 0, 0) < 0)
        return errprintf(errp, "out of memory");
    e->next_progress = PROGRESS_EVERY;
    for (;;) {
        if (run_timers(e, e->until, errp) < 0)
            return -1;
        uint64_t t = next_event_time(e);
        if (t == UINT64_MAX || t > e->until)
            break;
        evq_event ev = {.kind = EV_CHURN, .a = (uint32_t)e->next_cev};
        if (t != e->next_cev_t)
            evq_pop(e->q, &ev);
        advance(e, t);
        int rc = 0;
        switch (ev.kind) {
        case EV_CHURN:
            rc = on_churn(e, ev.a, errp);
            break;
        case EV_ARRIVAL:
            e->r.arrivals++;
            rc = on_arrival(e, ev.a, errp);
            break;
        case EV_ACK:
            rc = on_ack(e, &ev, errp);
            break;
        case EV_RELEASE:
            rc = on_release(e, ev.a, errp);
            break;
        case EV_SAMPLE:
            rc = on_sample(e, errp);
            break;
        case EV_COMMIT:
            rc = engine_verify_commit(e, &ev, errp);
            break;
        case EV_PROOFS:
            rc = engine_verify_proofs(e, &ev, errp);
            break;
        case EV_TASK:
            rc = engine_tasks_done(e, &ev, errp);
            break;
        }
        if (rc < 0)
            return -1;
        if (e->failed) {
            errno = e->failed;
            return errprintf(errp, "out of memory");
        }
        e->r.heap_events++;
        e->r.events++;
        maybe_progress(e);
    }
    advance(e, e->until);
    engine_finish(e);
    if (e->failed) {
        errno = e->failed;
        return errprintf(errp, "out of memory");
    }
    progress(e, true);
    return 0;
}

const sim_report *engine_report(const engine *e)
{
    return &e->r;
}

const sched *engine_sched(const engine *e)
{
    return e->s;
}

size_t engine_bytes(const engine *e)
{
    return sizeof(*e) + e->n_nodes * (sizeof(node) + sizeof(uint32_t)) +
           e->n_req * (sizeof(req) + sizeof(uint32_t)) + e->ring_cap * sizeof(touch) +
           e->cap_losses * sizeof(loss) + (e->ttr.cap + e->reroute.cap) * sizeof(uint64_t) +
           evq_bytes(e->q) + e->r.cap_rows * sizeof(report_row) +
           (e->vn ? e->n_nodes * sizeof(vnode) : 0) + (e->tc ? e->n_req * sizeof(tcluster *) : 0);
}
