/* index.c - see index.h. */
#include "index.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "idmap.h"

#define NIL UINT32_MAX

struct windex {
    registry *reg; /* borrowed */
    ix_bucket *buckets;
    size_t n_buckets, cap_buckets;
    idmap *by_key; /* packed bucket key -> bucket number */
    /* per model: its bucket numbers */
    uint32_t **model_buckets;
    uint32_t *model_n, *model_cap;
    size_t n_models;
    size_t count;
};

windex *index_create(registry *reg, size_t n_models, mu_error *errp)
{
    windex *ix = mu_calloc(1, sizeof(*ix));
    if (!ix)
        return errprintf(errp, "out of memory"), NULL;
    ix->reg = reg;
    ix->n_models = n_models;
    if (!(ix->by_key = idmap_create()) ||
        !(ix->model_buckets = mu_calloc(n_models ? n_models : 1, sizeof(uint32_t *))) ||
        !(ix->model_n = mu_calloc(n_models ? n_models : 1, sizeof(uint32_t))) ||
        !(ix->model_cap = mu_calloc(n_models ? n_models : 1, sizeof(uint32_t)))) {
        index_destroy(ix);
        return errprintf(errp, "out of memory"), NULL;
    }
    return ix;
}

void index_destroy(windex *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; ix->model_buckets && i < ix->n_models; i++)
        mu_free(ix->model_buckets[i]);
    mu_free(ix->model_buckets);
    mu_free(ix->model_n);
    mu_free(ix->model_cap);
    idmap_destroy(ix->by_key);
    mu_free(ix->buckets);
    mu_free(ix);
}

bool index_eligible(const worker *w)
{
    /* vstate 1: verification passed (verify.h; the index does not need the rest). */
    return w->state == WORKER_ONLINE && w->alloc == WORKER_FREE && w->vstate == 1 &&
           w->tier > TIER_NONE && w->gpu_count > 0 && w->model && w->model->cls != GPU_CLASS_CPU;
}

uint16_t index_uptime_class(float fraction)
{
    int c = (int)(fraction * 100.0f);
    return (uint16_t)(c < 0 ? 0 : c > 100 ? 100 : c);
}

int index_compare(const worker *a, const worker *b)
{
    if (a->ix_uclass != b->ix_uclass)
        return a->ix_uclass > b->ix_uclass ? -1 : 1;
    if (a->price_uusd != b->price_uusd)
        return a->price_uusd < b->price_uusd ? -1 : 1;
    if (a->bw_down_mbps != b->bw_down_mbps)
        return a->bw_down_mbps > b->bw_down_mbps ? -1 : 1;
    return memcmp(a->id.b, b->id.b, 16);
}

static worker *at(const windex *ix, uint32_t slot)
{
    return slot == NIL ? NULL : registry_at_mut(ix->reg, slot);
}

/* --- buckets ----------------------------------------------------------------------- */

static void pack_key(uint8_t key[6], uint16_t model, uint8_t region, uint8_t tier_, uint16_t gpus)
{
    key[0] = (uint8_t)(model >> 8);
    key[1] = (uint8_t)model;
    key[2] = region;
    key[3] = tier_;
    key[4] = (uint8_t)(gpus >> 8);
    key[5] = (uint8_t)gpus;
}

/* The bucket for w, created when missing. NIL when memory runs out. */
static uint32_t bucket_for(windex *ix, const worker *w)
{
    uint16_t model = (uint16_t)w->model_idx;
    uint8_t key[6];
    pack_key(key, model, w->region_idx, (uint8_t)w->tier, w->gpu_count);
    uint32_t b;
    if (idmap_get(ix->by_key, key, sizeof(key), &b) == 0)
        return b;
    if (model >= ix->n_models)
        return NIL;
    if (ix->n_buckets == ix->cap_buckets) {
        size_t ncap = ix->cap_buckets ? ix->cap_buckets * 2 : 64;
        ix_bucket *nb = mu_realloc(ix->buckets, ncap * sizeof(*nb));
        if (!nb)
            return NIL;
        ix->buckets = nb;
        ix->cap_buckets = ncap;
    }
    if (ix->model_n[model] == ix->model_cap[model]) {
        uint32_t ncap = ix->model_cap[model] ? ix->model_cap[model] * 2 : 8;
        uint32_t *nm = mu_realloc(ix->model_buckets[model], ncap * sizeof(*nm));
        if (!nm)
            return NIL;
        ix->model_buckets[model] = nm;
        ix->model_cap[model] = ncap;
    }
    b = (uint32_t)ix->n_buckets;
    if (idmap_put(ix->by_key, key, sizeof(key), b) < 0)
        return NIL;
    ix->buckets[b] = (ix_bucket){model, w->region_idx, (uint8_t)w->tier, w->gpu_count, 0, NIL};
    ix->n_buckets++;
    ix->model_buckets[model][ix->model_n[model]++] = b;
    return b;
}

/* --- treap --------------------------------------------------------------------------- */

/* Replace the link that points at `old` (from its parent or the root) with
 * `neu`. */
static void replace_child(windex *ix, ix_bucket *bk, worker *old, uint32_t neu)
{
    worker *p = at(ix, old->ix_parent);
    if (!p)
        bk->root = neu;
    else if (p->ix_left == old->slot)
        p->ix_left = neu;
    else
        p->ix_right = neu;
    worker *n = at(ix, neu);
    if (n)
        n->ix_parent = old->ix_parent;
}

/* Recompute w's subtree minimum price from its own and its children's;
 * whether it changed. */
static bool pull(windex *ix, worker *w)
{
    uint32_t m = w->price_uusd;
    worker *l = at(ix, w->ix_left), *r = at(ix, w->ix_right);
    if (l && l->ix_min_price < m)
        m = l->ix_min_price;
    if (r && r->ix_min_price < m)
        m = r->ix_min_price;
    bool changed = w->ix_min_price != m;
    w->ix_min_price = m;
    return changed;
}

/* Recompute from w up to the root, after one node was added below w or
 * spliced out below it: only that path changed, so once a node's minimum
 * stays what it was, every ancestor's does too. */
static void pull_up(windex *ix, worker *w)
{
    for (; w; w = at(ix, w->ix_parent))
        if (!pull(ix, w))
            return;
}

/* Rotate w up above its parent. */
static void rotate_up(windex *ix, ix_bucket *bk, worker *w)
{
    worker *p = at(ix, w->ix_parent);
    replace_child(ix, bk, p, w->slot);
    if (p->ix_left == w->slot) {
        p->ix_left = w->ix_right;
        worker *c = at(ix, w->ix_right);
        if (c)
            c->ix_parent = p->slot;
        w->ix_right = p->slot;
    } else {
        p->ix_right = w->ix_left;
        worker *c = at(ix, w->ix_left);
        if (c)
            c->ix_parent = p->slot;
        w->ix_left = p->slot;
    }
    p->ix_parent = w->slot;
    /* p is now w's child: fix it first, then w (same set as p's was). */
    pull(ix, p);
    pull(ix, w);
}

int index_add(windex *ix, worker *w)
{
    uint32_t b = bucket_for(ix, w);
    if (b == NIL) {
        errno = ENOMEM;
        return -1;
    }
    ix_bucket *bk = &ix->buckets[b];
    w->ix_uclass = index_uptime_class(w->uptime);
    w->ix_price = w->price_uusd;
    w->ix_bw = w->bw_down_mbps;
    w->ix_left = w->ix_right = w->ix_parent = NIL;
    w->ix_bucket = b;
    w->ix_min_price = w->price_uusd;
    /* Plain BST insert, then rotate up while the heap order is broken. */
    if (bk->root == NIL) {
        bk->root = w->slot;
    } else {
        worker *cur = at(ix, bk->root);
        for (;;) {
            uint32_t *link = index_compare(w, cur) < 0 ? &cur->ix_left : &cur->ix_right;
            if (*link == NIL) {
                *link = w->slot;
                w->ix_parent = cur->slot;
                break;
            }
            cur = at(ix, *link);
        }
        pull_up(ix, cur);
        worker *p;
        while ((p = at(ix, w->ix_parent)) && p->ix_prio < w->ix_prio)
            rotate_up(ix, bk, w);
    }
    bk->count++;
    ix->count++;
    return 0;
}

void index_remove(windex *ix, worker *w)
{
    if (w->ix_bucket == NIL)
        return;
    ix_bucket *bk = &ix->buckets[w->ix_bucket];
    /* Rotate w down (its higher-priority child up) until it has at most
     * one child, then splice it out. */
    for (;;) {
        worker *l = at(ix, w->ix_left), *r = at(ix, w->ix_right);
        if (!l || !r) {
            worker *parent = at(ix, w->ix_parent);
            replace_child(ix, bk, w, l ? l->slot : r ? r->slot : NIL);
            pull_up(ix, parent);
            break;
        }
        rotate_up(ix, bk, l->ix_prio > r->ix_prio ? l : r);
    }
    w->ix_bucket = NIL;
    w->ix_left = w->ix_right = w->ix_parent = NIL;
    bk->count--;
    ix->count--;
}

int index_refresh(windex *ix, worker *w)
{
    /* Most refreshes (a heartbeat's hourly uptime update, a registration
     * that changes nothing that orders it) leave a worker where it is:
     * refiling it would cost two walks of its treap for nothing. */
    if (w->ix_bucket != NIL && index_eligible(w)) {
        const ix_bucket *bk = &ix->buckets[w->ix_bucket];
        if (bk->model == w->model_idx && bk->region == w->region_idx && bk->tier == w->tier &&
            bk->gpus == w->gpu_count && w->ix_uclass == index_uptime_class(w->uptime) &&
            w->ix_price == w->price_uusd && w->ix_bw == w->bw_down_mbps)
            return 0;
    }
    index_remove(ix, w);
    return index_eligible(w) ? index_add(ix, w) : 0;
}

worker *index_first(const windex *ix, uint32_t b)
{
    worker *w = b < ix->n_buckets ? at(ix, ix->buckets[b].root) : NULL;
    while (w && w->ix_left != NIL)
        w = at(ix, w->ix_left);
    return w;
}

worker *index_next(const windex *ix, const worker *w)
{
    if (w->ix_right != NIL) {
        worker *c = at(ix, w->ix_right);
        while (c->ix_left != NIL)
            c = at(ix, c->ix_left);
        return c;
    }
    const worker *c = w;
    worker *p = at(ix, c->ix_parent);
    while (p && p->ix_right == c->slot) {
        c = p;
        p = at(ix, p->ix_parent);
    }
    return p;
}

/* The first worker in x's subtree priced at most cap; the subtree's
 * minimum must already be known to be at most cap. */
static worker *leftmost_under(const windex *ix, worker *x, uint32_t cap)
{
    while (x) {
        worker *l = at(ix, x->ix_left);
        if (l && l->ix_min_price <= cap) {
            x = l;
            continue;
        }
        if (x->price_uusd <= cap)
            return x;
        x = at(ix, x->ix_right); /* the minimum is on this side, then */
    }
    return NULL;
}

worker *index_first_under(const windex *ix, uint32_t b, uint32_t cap)
{
    if (!cap)
        return index_first(ix, b);
    worker *root = b < ix->n_buckets ? at(ix, ix->buckets[b].root) : NULL;
    return root && root->ix_min_price <= cap ? leftmost_under(ix, root, cap) : NULL;
}

worker *index_next_under(const windex *ix, const worker *w, uint32_t cap)
{
    if (!cap)
        return index_next(ix, w);
    worker *r = at(ix, w->ix_right);
    if (r && r->ix_min_price <= cap)
        return leftmost_under(ix, r, cap);
    const worker *c = w;
    worker *p = at(ix, c->ix_parent);
    while (p) {
        if (p->ix_left == c->slot) { /* up from the left: p comes next in order */
            if (p->price_uusd <= cap)
                return p;
            r = at(ix, p->ix_right);
            if (r && r->ix_min_price <= cap)
                return leftmost_under(ix, r, cap);
        }
        c = p;
        p = at(ix, p->ix_parent);
    }
    return NULL;
}

size_t index_count(const windex *ix)
{
    return ix->count;
}

size_t index_bucket_count(const windex *ix)
{
    return ix->n_buckets;
}

const ix_bucket *index_bucket(const windex *ix, uint32_t b)
{
    return b < ix->n_buckets ? &ix->buckets[b] : NULL;
}

size_t index_model_buckets(const windex *ix, uint16_t model, const uint32_t **out)
{
    if (model >= ix->n_models) {
        *out = NULL;
        return 0;
    }
    *out = ix->model_buckets[model];
    return ix->model_n[model];
}

size_t index_bytes(const windex *ix)
{
    size_t n = sizeof(*ix) + idmap_bytes(ix->by_key) + ix->cap_buckets * sizeof(ix_bucket);
    for (size_t i = 0; i < ix->n_models; i++)
        n += ix->model_cap[i] * sizeof(uint32_t);
    return n + ix->n_models * (sizeof(uint32_t *) + 2 * sizeof(uint32_t));
}

/* Check one subtree; returns its size or -1. */
static long check_subtree(const windex *ix, uint32_t b, uint32_t slot, uint32_t parent,
                          mu_error *errp)
{
    if (slot == NIL)
        return 0;
    const worker *w = at(ix, slot);
    if (!w)
        return errprintf(errp, "bucket %u: slot %u does not exist", b, slot);
    if (w->ix_bucket != b || w->ix_parent != parent)
        return errprintf(errp, "bucket %u: worker %u has wrong bucket or parent", b, slot);
    if (!index_eligible(w))
        return errprintf(errp, "bucket %u: worker %u is filed but not eligible", b, slot);
    const ix_bucket *bk = &ix->buckets[b];
    if (w->model_idx != bk->model || w->region_idx != bk->region || w->tier != bk->tier ||
        w->gpu_count != bk->gpus)
        return errprintf(errp, "bucket %u: worker %u is in the wrong bucket", b, slot);
    const worker *l = at(ix, w->ix_left), *r = at(ix, w->ix_right);
    if ((l && (index_compare(l, w) >= 0 || l->ix_prio > w->ix_prio)) ||
        (r && (index_compare(r, w) <= 0 || r->ix_prio > w->ix_prio)))
        return errprintf(errp, "bucket %u: order or priority broken at worker %u", b, slot);
    uint32_t m = w->price_uusd;
    if (l && l->ix_min_price < m)
        m = l->ix_min_price;
    if (r && r->ix_min_price < m)
        m = r->ix_min_price;
    if (w->ix_min_price != m)
        return errprintf(errp, "bucket %u: subtree minimum price wrong at worker %u", b, slot);
    if (w->ix_uclass != index_uptime_class(w->uptime))
        return errprintf(errp, "bucket %u: worker %u filed under a stale uptime class", b, slot);
    long nl = check_subtree(ix, b, w->ix_left, slot, errp);
    if (nl < 0)
        return -1;
    long nr = check_subtree(ix, b, w->ix_right, slot, errp);
    if (nr < 0)
        return -1;
    return nl + nr + 1;
}

int index_check(const windex *ix, mu_error *errp)
{
    size_t total = 0;
    for (uint32_t b = 0; b < ix->n_buckets; b++) {
        long n = check_subtree(ix, b, ix->buckets[b].root, NIL, errp);
        if (n < 0)
            return -1;
        if ((size_t)n != ix->buckets[b].count)
            return errprintf(errp, "bucket %u: count %u but %ld filed", b, ix->buckets[b].count, n);
        /* In-order walk agrees with the count and is strictly increasing. */
        size_t k = 0;
        const worker *prev = NULL;
        for (const worker *w = index_first(ix, b); w; w = index_next(ix, w), k++) {
            if (prev && index_compare(prev, w) >= 0)
                return errprintf(errp, "bucket %u: walk out of order", b);
            prev = w;
        }
        if (k != (size_t)n)
            return errprintf(errp, "bucket %u: walk saw %zu of %ld", b, k, n);
        total += (size_t)n;
    }
    if (total != ix->count)
        return errprintf(errp, "index count %zu but %zu filed", ix->count, total);
    size_t eligible = 0;
    for (size_t i = 0; i < registry_count(ix->reg); i++) {
        const worker *w = registry_at(ix->reg, i);
        if (index_eligible(w)) {
            eligible++;
            if (w->ix_bucket == NIL)
                return errprintf(errp, "worker %zu is eligible but not filed", i);
        }
    }
    if (eligible != ix->count)
        return errprintf(errp, "%zu eligible workers but %zu filed", eligible, ix->count);
    return 0;
}
