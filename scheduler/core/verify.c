/* verify.c - see verify.h. */
#include "verify.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "idmap.h"

#define NIL UINT32_MAX

/* A challenge in flight. */
typedef struct flight {
    uint64_t id;
    pow_params p;
    uint32_t expected_ms;
    uint64_t sent_at, commit_at, spot_at;
    uint8_t root[POW_HASH_BYTES];
    uint32_t idx[POW_MAX_SPOT];
    uint32_t n_idx;
    uint8_t phase;    /* 1: awaiting the commitment, 2: awaiting the proofs */
    uint8_t light;    /* the small check of a hired worker */
    uint32_t full_ms; /* what the full check would need (= expected_ms unless light) */
} flight;

#define RTT_WINDOW 4

typedef struct vrec {
    uint8_t state;  /* verify_state */
    uint8_t slow;   /* the latest checks, newest in bit 0: 1 slow or unanswered */
    uint8_t wrong;  /* wrong answers since its GPUs were last changed */
    uint8_t passes; /* passes in a row */
    uint8_t n_rtt;
    uint32_t checks; /* judged, ever */
    uint32_t seq;    /* challenges issued, for the next id */
    uint32_t heap_pos;
    uint64_t due;      /* next check or answer deadline; UINT64_MAX none */
    uint64_t last_at;  /* last judged check */
    uint64_t fp_hash;  /* group keys this worker is filed under (0: none) */
    uint64_t adr_hash; /* ... */
    uint64_t ident;    /* identity_of() of the GPUs last seen (0: never) */
    uint32_t fp_next, fp_prev, adr_next, adr_prev;
    uint32_t rtt[RTT_WINDOW];
    flight *fl;
    verify_result hist[VERIFY_HISTORY];
} vrec;

struct verifier {
    verify_config cfg;
    registry *reg;
    verify_ops ops;
    vrec *recs;
    size_t n_recs;
    uint32_t *heap; /* slots by due */
    size_t n_heap, heap_cap;
    idmap *groups; /* tag + hash -> first slot of the group */
    uint64_t rng;
};

static const char *const state_names[] = {"pending", "passed", "suspect", "failed"};
static const char *const outcome_names[] = {"ok", "slow", "wrong", "timeout", "bad-proof"};

const char *verify_state_name(verify_state s)
{
    return (unsigned)s < 4 ? state_names[s] : "unknown";
}

const char *verify_outcome_name(verify_outcome o)
{
    return (unsigned)o < 5 ? outcome_names[o] : "unknown";
}

/* splitmix64: seeded by the caller, so runs repeat exactly. */
static uint64_t next_rand(verifier *v)
{
    uint64_t z = (v->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int verify_config_resolve(verify_config *c, mu_error *errp)
{
    if (!c->target_ms)
        c->target_ms = VERIFY_TARGET_DEFAULT_MS;
    if (c->units_per_tflop_s <= 0)
        c->units_per_tflop_s = VERIFY_UNITS_DEFAULT;
    if (!c->scratch_kib_per_vram_gib)
        c->scratch_kib_per_vram_gib = VERIFY_SCRATCH_DEFAULT_KIB;
    if (!c->leaves)
        c->leaves = VERIFY_LEAVES_DEFAULT;
    if (!c->spots)
        c->spots = VERIFY_SPOTS_DEFAULT;
    if (c->min_ratio <= 0)
        c->min_ratio = VERIFY_MIN_RATIO_DEFAULT;
    if (!c->answer_grace_ms)
        c->answer_grace_ms = VERIFY_GRACE_DEFAULT_MS;
    if (!c->recheck_ms)
        c->recheck_ms = VERIFY_RECHECK_DEFAULT_MS;
    if (!c->reverify_ms)
        c->reverify_ms = VERIFY_REVERIFY_DEFAULT_MS;
    if (!c->slow_strikes)
        c->slow_strikes = VERIFY_SLOW_STRIKES_DEFAULT;
    if (!c->wrong_strikes)
        c->wrong_strikes = VERIFY_WRONG_STRIKES_DEFAULT;
    if (!c->gather_ms)
        c->gather_ms = VERIFY_GATHER_DEFAULT_MS;
    if (c->leaves < 16 || c->leaves > POW_MAX_LEAVES || (c->leaves & (c->leaves - 1)))
        return errprintf(errp, "verification leaves must be a power of two in 16..%u",
                         POW_MAX_LEAVES);
    if (c->spots > POW_MAX_SPOT || c->spots > c->leaves)
        return errprintf(errp, "verification spots must be 1..%u and at most the leaves",
                         POW_MAX_SPOT);
    if (!(c->min_ratio > 0 && c->min_ratio < 1)) /* NaN too */
        return errprintf(errp, "verification min ratio must be in (0, 1)");
    if (!c->max_rtt_ms)
        c->max_rtt_ms = VERIFY_MAX_RTT_DEFAULT_MS;
    if (c->slow_strikes > VERIFY_STRIKE_WINDOW)
        return errprintf(errp, "verification slow strikes must be 1..%d", VERIFY_STRIKE_WINDOW);
    if (c->target_ms > 600000)
        return errprintf(errp, "verification target must be at most 600000 ms");
    if (!isfinite(c->units_per_tflop_s) || c->units_per_tflop_s > 1e15)
        return errprintf(errp, "verification scale is out of range");
    return 0;
}

int verify_size(const verify_config *cfg, const worker *w, pow_params *p, uint32_t *expected_ms)
{
    if (!w->model || w->model->fp32_tflops <= 0)
        return -1;
    memset(p, 0, sizeof(*p));
    /* Throughput claimed: every GPU of the worker. */
    double rate = w->model->fp32_tflops * (w->gpu_count ? w->gpu_count : 1) *
                  cfg->units_per_tflop_s; /* units per second */
    double units = rate * cfg->target_ms / 1000.0;
    double scratch_bytes = (double)cfg->scratch_kib_per_vram_gib * 1024.0 * w->model->vram_gib;
    double words = scratch_bytes / 8.0 / cfg->leaves;
    if (words < 8)
        words = 8;
    if (words > 65536)
        words = 65536;
    double rounds = units / ((double)cfg->leaves * floor(words));
    if (rounds < 1)
        rounds = 1;
    if (rounds > (double)(1u << 20))
        rounds = (double)(1u << 20);
    p->leaves = cfg->leaves;
    p->leaf_words = (uint32_t)words;
    p->leaf_rounds = (uint32_t)rounds;
    double ms = (double)pow_units(p) / rate * 1000.0;
    *expected_ms = ms < 1 ? 1 : ms > 3.6e6 ? 3600000u : (uint32_t)ms;
    return 0;
}

void verify_result_text(const verify_result *r, char *buf, size_t cap)
{
    unsigned pct = r->measured_ms ? (unsigned)(100.0 * r->expected_ms / r->measured_ms + 0.5) : 0;
    if (r->light && cap > 14) {
        size_t n = (size_t)snprintf(buf, cap, "light check ");
        buf += n;
        cap -= n;
    }
    switch ((verify_outcome)r->outcome) {
    case VERIFY_OK:
        snprintf(buf, cap, "passed: %u%% of the claimed throughput (%u ms, %u expected)", pct,
                 r->measured_ms, r->expected_ms);
        break;
    case VERIFY_SLOW:
        snprintf(buf, cap, "too slow: %u%% of the claimed throughput (%u ms, %u expected)", pct,
                 r->measured_ms, r->expected_ms);
        break;
    case VERIFY_WRONG:
        snprintf(buf, cap, "wrong result: leaf %u does not match the work", r->leaf);
        break;
    case VERIFY_TIMEOUT:
        snprintf(buf, cap, "no answer before the deadline (%u ms expected)", r->expected_ms);
        break;
    default:
        snprintf(buf, cap, "malformed proof");
        break;
    }
}

/* --- the schedule: a min-heap of slots by due time --------------------------------------- */

static bool heap_less(const verifier *v, uint32_t a, uint32_t b)
{
    const vrec *ra = &v->recs[a], *rb = &v->recs[b];
    return ra->due < rb->due || (ra->due == rb->due && a < b);
}

static void heap_set(verifier *v, size_t pos, uint32_t slot)
{
    v->heap[pos] = slot;
    v->recs[slot].heap_pos = (uint32_t)pos;
}

static void sift_up(verifier *v, size_t pos)
{
    uint32_t slot = v->heap[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (!heap_less(v, slot, v->heap[parent]))
            break;
        heap_set(v, pos, v->heap[parent]);
        pos = parent;
    }
    heap_set(v, pos, slot);
}

static void sift_down(verifier *v, size_t pos)
{
    uint32_t slot = v->heap[pos];
    for (;;) {
        size_t l = 2 * pos + 1, best = pos;
        uint32_t best_slot = slot;
        if (l < v->n_heap && heap_less(v, v->heap[l], best_slot)) {
            best = l;
            best_slot = v->heap[l];
        }
        if (l + 1 < v->n_heap && heap_less(v, v->heap[l + 1], best_slot)) {
            best = l + 1;
            best_slot = v->heap[l + 1];
        }
        if (best == pos)
            break;
        heap_set(v, pos, best_slot);
        pos = best;
    }
    heap_set(v, pos, slot);
}

static void heap_remove(verifier *v, uint32_t slot)
{
    vrec *r = &v->recs[slot];
    if (r->heap_pos == NIL)
        return;
    size_t pos = r->heap_pos;
    r->heap_pos = NIL;
    uint32_t last = v->heap[--v->n_heap];
    if (pos == v->n_heap)
        return;
    heap_set(v, pos, last);
    sift_up(v, pos);
    sift_down(v, v->recs[last].heap_pos);
}

/* Set when the worker next needs attention (UINT64_MAX: never). Out of
 * memory leaves it unscheduled; its next change schedules it again. */
static void schedule(verifier *v, uint32_t slot, uint64_t due)
{
    vrec *r = &v->recs[slot];
    heap_remove(v, slot);
    r->due = due;
    if (due == UINT64_MAX)
        return;
    if (v->n_heap == v->heap_cap) {
        size_t ncap = v->heap_cap ? v->heap_cap * 2 : 64;
        uint32_t *nh = mu_realloc(v->heap, ncap * sizeof(*nh));
        if (!nh)
            return;
        v->heap = nh;
        v->heap_cap = ncap;
    }
    heap_set(v, v->n_heap++, slot);
    sift_up(v, v->n_heap - 1);
}

/* --- records and groups ---------------------------------------------------------------------- */

static vrec *rec_of(verifier *v, const worker *w)
{
    if (w->slot < v->n_recs)
        return &v->recs[w->slot];
    /* Workers join one at a time: grow by an eighth (and some), not by one. */
    size_t n = registry_count(v->reg);
    if (n < v->n_recs + v->n_recs / 8 + 64)
        n = v->n_recs + v->n_recs / 8 + 64;
    if (n <= w->slot)
        n = (size_t)w->slot + 1;
    vrec *nr = mu_realloc(v->recs, n * sizeof(*nr));
    if (!nr)
        return NULL;
    for (size_t i = v->n_recs; i < n; i++) {
        memset(&nr[i], 0, sizeof(nr[i]));
        nr[i].heap_pos = NIL;
        nr[i].due = UINT64_MAX;
        nr[i].fp_next = nr[i].fp_prev = nr[i].adr_next = nr[i].adr_prev = NIL;
    }
    v->recs = nr;
    v->n_recs = n;
    return &v->recs[w->slot];
}

static uint64_t key_hash(const char *s)
{
    if (!s || !*s)
        return 0;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h ? h : 1;
}

/* Group lists: tag 'f' (fingerprint) or 'a' (address). */
static uint32_t *next_of(vrec *r, char tag)
{
    return tag == 'f' ? &r->fp_next : &r->adr_next;
}

static uint32_t *prev_of(vrec *r, char tag)
{
    return tag == 'f' ? &r->fp_prev : &r->adr_prev;
}

static void group_key(char tag, uint64_t h, uint8_t key[9])
{
    key[0] = (uint8_t)tag;
    memcpy(key + 1, &h, 8);
}

static void group_leave(verifier *v, uint32_t slot, char tag)
{
    vrec *r = &v->recs[slot];
    uint64_t *h = tag == 'f' ? &r->fp_hash : &r->adr_hash;
    if (!*h)
        return;
    uint8_t key[9];
    group_key(tag, *h, key);
    uint32_t prev = *prev_of(r, tag), next = *next_of(r, tag);
    if (prev != NIL)
        *next_of(&v->recs[prev], tag) = next;
    else if (next != NIL)
        idmap_put(v->groups, key, 9, next); /* replaces a present key: cannot fail */
    else
        idmap_remove(v->groups, key, 9);
    if (next != NIL)
        *prev_of(&v->recs[next], tag) = prev;
    *prev_of(r, tag) = *next_of(r, tag) = NIL;
    *h = 0;
}

static void group_join(verifier *v, uint32_t slot, char tag, uint64_t hash)
{
    vrec *r = &v->recs[slot];
    uint64_t *h = tag == 'f' ? &r->fp_hash : &r->adr_hash;
    if (*h == hash)
        return;
    group_leave(v, slot, tag);
    if (!hash)
        return;
    uint8_t key[9];
    group_key(tag, hash, key);
    uint32_t head;
    bool has = idmap_get(v->groups, key, 9, &head) == 0;
    if (idmap_put(v->groups, key, 9, slot) < 0)
        return; /* out of memory: not grouped, still verified alone */
    *h = hash;
    *prev_of(r, tag) = NIL;
    *next_of(r, tag) = has ? head : NIL;
    if (has)
        *prev_of(&v->recs[head], tag) = slot;
}

/* --- lifecycle -------------------------------------------------------------------------------- */

verifier *verifier_create(const verify_config *cfg, registry *reg, const verify_ops *ops,
                          mu_error *errp)
{
    verify_config c = *cfg;
    if (verify_config_resolve(&c, errp) < 0)
        return NULL;
    verifier *v = mu_calloc(1, sizeof(*v));
    if (!v || !(v->groups = idmap_create())) {
        mu_free(v);
        return errprintf(errp, "out of memory"), NULL;
    }
    v->cfg = c;
    v->reg = reg;
    if (ops)
        v->ops = *ops;
    v->rng = c.seed;
    return v;
}

void verifier_destroy(verifier *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n_recs; i++)
        mu_free(v->recs[i].fl);
    mu_free(v->recs);
    mu_free(v->heap);
    idmap_destroy(v->groups);
    mu_free(v);
}

const verify_config *verifier_config(const verifier *v)
{
    return &v->cfg;
}

/* The worker's own field the index reads (registry.h: vstate). */
static void set_vstate(verifier *v, const worker *w, verify_state st)
{
    worker *mw = registry_at_mut(v->reg, w->slot);
    mw->vstate = (uint8_t)st;
}

static void record(vrec *r, const verify_result *res)
{
    memmove(&r->hist[0], &r->hist[1], (VERIFY_HISTORY - 1) * sizeof(r->hist[0]));
    r->hist[VERIFY_HISTORY - 1] = *res;
    r->checks++;
    r->last_at = res->at;
}

static void drop_flight(vrec *r)
{
    mu_free(r->fl);
    r->fl = NULL;
}

/* Judge a finished check and move the worker on. */
static void judge(verifier *v, const worker *w, vrec *r, verify_outcome o, uint32_t measured,
                  uint32_t rtt, uint32_t leaf, uint64_t now)
{
    verify_state from = (verify_state)r->state, to;
    bool light = r->fl && r->fl->light;
    verify_result res = {.at = now,
                         .light = light,
                         .expected_ms = r->fl ? r->fl->expected_ms : 0,
                         .measured_ms = measured,
                         .rtt_ms = rtt,
                         .leaf = leaf,
                         .outcome = (uint8_t)o};
    drop_flight(r);
    /* Slow answers count within the latest VERIFY_STRIKE_WINDOW checks, not
     * only in a row: one GPU answering for two workers makes them slow by
     * turns, and a pass in between must not wash that out. A wrong leaf is
     * never the network's doing: those are never forgiven. */
    bool slow = o == VERIFY_SLOW || o == VERIFY_TIMEOUT;
    r->slow = (uint8_t)((r->slow << 1) | slow);
    r->wrong = (uint8_t)(r->wrong + (o == VERIFY_WRONG || o == VERIFY_BAD));
    unsigned recent = (unsigned)__builtin_popcount(r->slow & ((1u << VERIFY_STRIKE_WINDOW) - 1));
    r->passes = o == VERIFY_OK ? (uint8_t)(r->passes < 255 ? r->passes + 1 : 255) : 0;
    /* A light check has a quarter of a full one's margin, so jitter makes
     * it slow far more often: a hired worker is failed on light checks only
     * when all of the latest are slow (a spoofer's every one is). */
    unsigned need = light ? VERIFY_STRIKE_WINDOW : v->cfg.slow_strikes;
    if (from == VERIFY_FAILED)
        to = VERIFY_FAILED;
    else if (recent >= need || r->wrong >= v->cfg.wrong_strikes)
        to = VERIFY_FAILED;
    else if (o != VERIFY_OK)
        to = VERIFY_SUSPECT;
    else if (from == VERIFY_PENDING && r->passes < VERIFY_ONBOARD_PASSES)
        to = VERIFY_PENDING; /* a newcomer passes twice in a row: a lucky
                              * round trip does not make a spoofer hireable */
    else
        to = VERIFY_PASSED;
    r->state = (uint8_t)to;
    res.state = (uint8_t)to;
    record(r, &res);
    set_vstate(v, w, to);
    uint64_t due = UINT64_MAX;
    bool hired = w->alloc != WORKER_FREE;
    if (to == VERIFY_PENDING)
        due = now; /* its second check at once */
    else if (to == VERIFY_SUSPECT && (!hired || v->cfg.light_ms))
        due = now + v->cfg.recheck_ms;
    else if (to == VERIFY_PASSED && hired && v->cfg.light_ms)
        due = now + v->cfg.light_ms;
    else if (to == VERIFY_PASSED && !hired)
        due = now + v->cfg.reverify_ms;
    schedule(v, w->slot, due);
    if (v->ops.verdict)
        v->ops.verdict(v->ops.arg, w, &res, from, to);
}

/* Can w take a full check now? Online, free, and nothing in flight. */
static bool checkable(const worker *w, const vrec *r)
{
    return w->state == WORKER_ONLINE && w->alloc == WORKER_FREE && !r->fl &&
           r->state != VERIFY_FAILED;
}

static void issue(verifier *v, const worker *w, vrec *r, uint64_t now, bool light)
{
    pow_params p;
    uint32_t expected;
    if (verify_size(&v->cfg, w, &p, &expected) < 0) {
        /* Nothing to measure it against: it cannot be hired as a GPU. */
        r->state = VERIFY_FAILED;
        set_vstate(v, w, VERIFY_FAILED);
        schedule(v, w->slot, UINT64_MAX);
        return;
    }
    flight *f = mu_calloc(1, sizeof(*f));
    if (!f) {
        schedule(v, w->slot, now + v->cfg.recheck_ms); /* try again later */
        return;
    }
    for (size_t i = 0; i < POW_SEED_BYTES; i += 8) {
        uint64_t x = next_rand(v);
        memcpy(p.seed + i, &x, 8);
    }
    if (light) {
        /* A quarter of the leaves: the same work per leaf (and per spot),
         * a short burst a running job hardly notices. */
        f->full_ms = expected;
        uint32_t full = p.leaves, leaves = p.leaves / VERIFY_LIGHT_DIVISOR;
        p.leaves = leaves < POW_MIN_LEAVES ? POW_MIN_LEAVES : leaves;
        expected = (uint32_t)((uint64_t)expected * p.leaves / full);
        if (!expected)
            expected = 1;
    }
    if (!light)
        f->full_ms = expected;
    f->light = light;
    f->p = p;
    f->expected_ms = expected;
    f->id = ((uint64_t)++r->seq << 32) | w->slot;
    f->sent_at = now;
    f->phase = 1;
    r->fl = f;
    uint64_t limit = (uint64_t)(expected / v->cfg.min_ratio) + v->cfg.answer_grace_ms;
    schedule(v, w->slot, now + limit);
    if (v->ops.challenge)
        v->ops.challenge(v->ops.arg, w, f->id, &f->p, expected);
}

/* Challenge w and, at the same moment, every checkable worker sharing its
 * host fingerprint or address. */
static void issue_group(verifier *v, const worker *w, uint64_t now)
{
    vrec *r = &v->recs[w->slot];
    issue(v, w, r, now, false);
    const char tags[2] = {'f', 'a'};
    for (int t = 0; t < 2; t++) {
        uint64_t h = tags[t] == 'f' ? r->fp_hash : r->adr_hash;
        if (!h)
            continue;
        uint8_t key[9];
        group_key(tags[t], h, key);
        uint32_t s;
        if (idmap_get(v->groups, key, 9, &s) < 0)
            continue;
        for (; s != NIL; s = *next_of(&v->recs[s], tags[t])) {
            const worker *o = registry_at(v->reg, s);
            vrec *orec = &v->recs[s];
            if (o && s != w->slot && checkable(o, orec) && orec->state != VERIFY_FAILED)
                issue(v, o, orec, now, false);
        }
    }
}

/* What was verified: the model, the count and each device's PCI ids and
 * bus id. */
static uint64_t identity_of(const worker *w)
{
    uint64_t h = 1469598103934665603ull;
    uint64_t parts[2] = {w->model_idx, w->gpu_count};
    for (int i = 0; i < 2; i++)
        h = (h ^ parts[i]) * 1099511628211ull;
    for (uint16_t d = 0; d < w->gpu_count && w->devices; d++) {
        const worker_device *dev = &w->devices[d];
        h = (h ^ ((uint64_t)dev->pci_vendor_id << 16 | dev->pci_device_id)) * 1099511628211ull;
        for (const char *c = dev->pci_bus_id; *c; c++)
            h = (h ^ (uint8_t)*c) * 1099511628211ull;
    }
    return h ? h : 1;
}

void verifier_worker_changed(verifier *v, const worker *w, uint64_t now)
{
    /* With nobody challenged, a worker is passed once for good: after that
     * its record need not even be read (every registration, leave and
     * uptime refresh of a simulated fleet comes through here). */
    if (!v->cfg.enabled && w->vstate == VERIFY_PASSED && w->slot < v->n_recs)
        return;
    vrec *r = rec_of(v, w);
    if (!r)
        return;
    if (!v->cfg.enabled) {
        /* Nobody is challenged: identities and groups are never used. */
        if (r->state != VERIFY_PASSED) {
            r->state = VERIFY_PASSED;
            set_vstate(v, w, VERIFY_PASSED);
        }
        return;
    }
    uint64_t ident = identity_of(w);
    bool identity_changed = r->ident && r->ident != ident;
    r->ident = ident;
    group_join(v, w->slot, 'f', key_hash(w->fingerprint));
    group_join(v, w->slot, 'a', key_hash(w->address));
    set_vstate(v, w, (verify_state)r->state);
    if (r->state == VERIFY_FAILED)
        return; /* failed stays failed, whatever it re-registers as */
    if (identity_changed && r->state != VERIFY_PENDING) {
        r->state = VERIFY_PENDING;
        r->slow = r->wrong = r->passes = 0; /* other GPUs: their record starts afresh */
        set_vstate(v, w, VERIFY_PENDING);
    }
    if (w->state != WORKER_ONLINE) {
        /* Gone mid-check: no verdict, it is asked again once back. */
        if (r->fl)
            drop_flight(r);
        schedule(v, w->slot, UINT64_MAX);
        return;
    }
    if (r->fl)
        return; /* an answer is awaited; its deadline is scheduled */
    if (r->state == VERIFY_PENDING || r->state == VERIFY_SUSPECT) {
        /* A new worker waits gather_ms, so that workers arriving together
         * (a host or a farm starting) are challenged together, once. */
        uint64_t due = now + (r->state == VERIFY_SUSPECT ? v->cfg.recheck_ms : v->cfg.gather_ms);
        if (r->due == UINT64_MAX || r->due > due)
            schedule(v, w->slot, due);
    } else if (r->due == UINT64_MAX) {
        schedule(v, w->slot,
                 r->last_at + v->cfg.reverify_ms > now ? r->last_at + v->cfg.reverify_ms : now);
    }
}

void verifier_worker_hired(verifier *v, const worker *w, uint64_t now)
{
    vrec *r = rec_of(v, w);
    if (!r || !v->cfg.enabled || !v->cfg.light_ms || r->fl || r->state == VERIFY_FAILED)
        return;
    if (r->due == UINT64_MAX || r->due > now + v->cfg.light_ms)
        schedule(v, w->slot, now + v->cfg.light_ms);
}

void verifier_worker_freed(verifier *v, const worker *w, uint64_t now)
{
    vrec *r = rec_of(v, w);
    if (!r || !v->cfg.enabled || r->state == VERIFY_FAILED || r->fl)
        return;
    uint64_t due = r->state == VERIFY_PASSED && r->last_at + v->cfg.reverify_ms > now
                       ? r->last_at + v->cfg.reverify_ms
                       : now;
    if (w->state == WORKER_ONLINE)
        schedule(v, w->slot, due);
}

/* --- answers ------------------------------------------------------------------------------------
 */

static vrec *flight_of(verifier *v, const worker *w, uint64_t id, uint8_t phase, mu_error *errp)
{
    vrec *r = w->slot < v->n_recs ? &v->recs[w->slot] : NULL;
    if (r && r->fl && r->fl->id == id) {
        if (r->fl->phase != phase) {
            errno = ESTALE;
            return errprintf(errp, "challenge %016llx was already answered",
                             (unsigned long long)id),
                   NULL;
        }
        return r;
    }
    uint32_t owner = (uint32_t)(id & 0xffffffffu);
    if (owner != w->slot && owner < v->n_recs && v->recs[owner].fl && v->recs[owner].fl->id == id) {
        errno = EPERM;
        return errprintf(errp, "challenge %016llx was issued to another worker",
                         (unsigned long long)id),
               NULL;
    }
    errno = ESTALE;
    return errprintf(errp, "challenge %016llx is not in flight (old, replayed or unknown)",
                     (unsigned long long)id),
           NULL;
}

int verifier_commit(verifier *v, const worker *w, uint64_t challenge_id,
                    const uint8_t root[POW_HASH_BYTES], uint64_t now, mu_error *errp)
{
    vrec *r = flight_of(v, w, challenge_id, 1, errp);
    if (!r)
        return -1;
    flight *f = r->fl;
    f->commit_at = now;
    memcpy(f->root, root, POW_HASH_BYTES);
    /* Distinct indices, drawn only now that the result is committed. */
    uint32_t n = v->cfg.spots < f->p.leaves ? v->cfg.spots : f->p.leaves;
    f->n_idx = 0;
    while (f->n_idx < n) {
        uint32_t i = (uint32_t)(next_rand(v) % f->p.leaves);
        bool dup = false;
        for (uint32_t k = 0; k < f->n_idx; k++)
            dup |= f->idx[k] == i;
        if (!dup)
            f->idx[f->n_idx++] = i;
    }
    f->spot_at = now;
    f->phase = 2;
    schedule(v, w->slot, now + v->cfg.answer_grace_ms);
    if (v->ops.spots)
        v->ops.spots(v->ops.arg, w, f->id, f->idx, f->n_idx);
    return 0;
}

int verifier_proofs(verifier *v, const worker *w, uint64_t challenge_id, const uint8_t *leaves,
                    size_t leaves_len, const uint8_t *paths, size_t paths_len, uint64_t now,
                    mu_error *errp)
{
    vrec *r = flight_of(v, w, challenge_id, 2, errp);
    if (!r)
        return -1;
    flight *f = r->fl;
    uint32_t depth = pow_depth(&f->p);
    size_t path_bytes = (size_t)depth * POW_HASH_BYTES;
    if (leaves_len != (size_t)f->n_idx * POW_HASH_BYTES ||
        paths_len != (size_t)f->n_idx * path_bytes) {
        uint32_t spots = f->n_idx; /* judge frees the flight */
        judge(v, w, r, VERIFY_BAD, 0, 0, 0, now);
        errno = EINVAL;
        return errprintf(errp, "malformed proof: %zu leaf bytes and %zu path bytes for %u spots",
                         leaves_len, paths_len, spots);
    }
    uint64_t *scratch = mu_malloc((size_t)f->p.leaf_words * sizeof(uint64_t));
    if (!scratch) {
        errno = ENOMEM;
        return errprintf(errp, "out of memory");
    }
    uint32_t bad = NIL;
    for (uint32_t k = 0; k < f->n_idx && bad == NIL; k++) {
        mu_error e;
        if (pow_check_spot(&f->p, f->idx[k], leaves + (size_t)k * POW_HASH_BYTES,
                           paths + (size_t)k * path_bytes, path_bytes, f->root, scratch, &e) < 0)
            bad = f->idx[k];
    }
    mu_free(scratch);
    /* The spot exchange carries no work: its round trip is the network's. */
    uint32_t rtt = (uint32_t)(now - f->spot_at);
    r->rtt[r->n_rtt % RTT_WINDOW] = rtt;
    r->n_rtt = (uint8_t)(r->n_rtt + 1 < 2 * RTT_WINDOW ? r->n_rtt + 1 : RTT_WINDOW);
    uint32_t rtt_min = rtt;
    for (uint32_t k = 0; k < RTT_WINDOW && k < r->n_rtt; k++)
        if (r->rtt[k] < rtt_min)
            rtt_min = r->rtt[k];
    /* The worker times its own spot answers: it could hold them back to
     * make its round trip, and so its compute time, look what it likes.
     * What is subtracted is capped at max_rtt_ms and at half the margin a
     * full check leaves (expected / min_ratio - expected), so stalling buys
     * a spoofer at most half that margin. */
    /* One sample is all a first check has, and jitter on the spot leg
     * would be taken off the compute time in full: take half of it. */
    if (r->n_rtt == 1)
        rtt_min /= 2;
    double margin = (double)f->full_ms * (1.0 / v->cfg.min_ratio - 1.0);
    uint32_t cap = v->cfg.max_rtt_ms;
    if (margin / 2 < cap)
        cap = (uint32_t)(margin / 2);
    if (rtt_min > cap)
        rtt_min = cap;
    uint64_t took = f->commit_at - f->sent_at;
    uint32_t measured = took > rtt_min ? (uint32_t)(took - rtt_min) : 1;
    if (bad != NIL) {
        judge(v, w, r, VERIFY_WRONG, measured, rtt_min, bad, now);
        return 0;
    }
    bool slow = (double)f->expected_ms < v->cfg.min_ratio * (double)measured;
    judge(v, w, r, slow ? VERIFY_SLOW : VERIFY_OK, measured, rtt_min, 0, now);
    return 0;
}

/* --- time
 * ----------------------------------------------------------------------------------------- */

void verifier_tick(verifier *v, uint64_t now)
{
    while (v->n_heap && v->recs[v->heap[0]].due <= now) {
        uint32_t slot = v->heap[0];
        vrec *r = &v->recs[slot];
        const worker *w = registry_at(v->reg, slot);
        heap_remove(v, slot);
        r->due = UINT64_MAX;
        if (!w)
            continue;
        if (r->fl) {
            judge(v, w, r, VERIFY_TIMEOUT, 0, 0, 0, now);
        } else if (checkable(w, r)) {
            issue_group(v, w, now);
        } else if (w->state == WORKER_ONLINE && w->alloc != WORKER_FREE &&
                   r->state != VERIFY_FAILED && v->cfg.light_ms) {
            /* Hired: no full proof (it would disturb the job), a light one. */
            issue(v, w, r, now, true);
        }
    }
}

uint64_t verifier_next_deadline(const verifier *v)
{
    return v->n_heap ? v->recs[v->heap[0]].due : UINT64_MAX;
}

verify_state verifier_state(const verifier *v, const worker *w)
{
    return w->slot < v->n_recs ? (verify_state)v->recs[w->slot].state : VERIFY_PENDING;
}

size_t verifier_history(const verifier *v, const worker *w, verify_result *out)
{
    if (w->slot >= v->n_recs)
        return 0;
    const vrec *r = &v->recs[w->slot];
    size_t n = r->checks < VERIFY_HISTORY ? r->checks : VERIFY_HISTORY;
    memcpy(out, &r->hist[VERIFY_HISTORY - n], n * sizeof(*out));
    return n;
}

uint32_t verifier_checks(const verifier *v, const worker *w)
{
    return w->slot < v->n_recs ? v->recs[w->slot].checks : 0;
}

int verifier_restore(verifier *v, const worker *w, verify_state st, const verify_result *hist,
                     size_t n, uint32_t checks, mu_error *errp)
{
    if ((unsigned)st > VERIFY_FAILED)
        return errprintf(errp, "saved verification state %d is unknown", (int)st);
    vrec *r = rec_of(v, w);
    if (!r)
        return errprintf(errp, "out of memory");
    if (n > VERIFY_HISTORY) {
        hist += n - VERIFY_HISTORY;
        n = VERIFY_HISTORY;
    }
    memcpy(&r->hist[VERIFY_HISTORY - n], hist, n * sizeof(*hist));
    r->checks = checks > n ? checks : (uint32_t)n;
    r->last_at = n ? hist[n - 1].at : 0;
    /* A suspect is asked again as if new; failed stays failed. */
    r->state = (uint8_t)(st == VERIFY_SUSPECT ? VERIFY_PENDING : st);
    if (!v->cfg.enabled && r->state != VERIFY_FAILED)
        r->state = VERIFY_PASSED;
    set_vstate(v, w, (verify_state)r->state);
    return 0;
}

size_t verifier_bytes(const verifier *v)
{
    return sizeof(*v) + v->n_recs * sizeof(vrec) + v->heap_cap * sizeof(uint32_t) +
           idmap_bytes(v->groups);
}
