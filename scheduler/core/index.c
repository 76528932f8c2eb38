/* index.c - see index.h.
 *
 * A bucket is a directory of sorted blocks, each holding up to BLOCK_MAX
 * entries (the key a worker is filed under, and its slot): a two-level
 * B-tree. Filing, refiling and removing a worker are what a simulated year
 * of a million workers does tens of millions of times; a search here is a
 * binary search of a compact directory and then of one block, a few cache
 * lines in all, where a binary tree of workers would chase a pointer to a
 * cold node at every level (sim_bench, bench/README.md). What each worker
 * was filed under is kept beside, by slot, so that a refresh can tell
 * whether it must move without searching, and a removal can find it.
 */
#include "index.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "idmap.h"

#define NIL UINT32_MAX

/* Entries per block: a split's memmove stays small, the directory short. */
#define BLOCK_MAX 128

/* What a worker is filed under, in walk order (index_compare). */
typedef struct ixent {
    uint64_t key;  /* (100 - uptime class) << 32 | price: ascending */
    uint64_t id8;  /* the id's first 8 bytes, big-endian: id order */
    uint32_t bw;   /* download bandwidth: descending */
    uint32_t slot; /* the worker's registry slot */
} ixent;

typedef struct block {
    uint32_t n;
    ixent e[BLOCK_MAX];
} block;

/* A block, a copy of its first entry, which directory searches compare
 * against, and its lowest price, which walks under a price cap skip by:
 * neither reads the block. How many entries have that price too: workers
 * of one model mostly share a price, and without the count nearly every
 * removal would rescan its whole block for the new lowest. */
typedef struct dent {
    ixent first;
    block *b;
    uint32_t min_price, min_count;
} dent;

typedef struct bdir {
    dent *ents;
    uint32_t n, cap;
} bdir;

typedef struct filed_at {
    ixent e;
    uint32_t bucket; /* NIL: not filed */
} filed_at;

struct windex {
    registry *reg; /* borrowed */
    ix_bucket *buckets;
    bdir *dirs; /* one per bucket */
    size_t n_buckets, cap_buckets;
    idmap *by_key; /* packed bucket key -> bucket number */
    /* per model: its bucket numbers */
    uint32_t **model_buckets;
    uint32_t *model_n, *model_cap;
    size_t n_models;
    size_t count;
    filed_at *filed; /* by registry slot */
    size_t cap_filed;
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
    for (size_t b = 0; b < ix->n_buckets; b++) {
        for (uint32_t k = 0; k < ix->dirs[b].n; k++)
            mu_free(ix->dirs[b].ents[k].b);
        mu_free(ix->dirs[b].ents);
    }
    mu_free(ix->dirs);
    mu_free(ix->buckets);
    mu_free(ix->filed);
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

/* Uptime class descending, then price ascending, in one number. */
static uint64_t key_of(const worker *w)
{
    return (uint64_t)(100u - index_uptime_class(w->uptime)) << 32 | w->price_uusd;
}

static ixent entry_of(const worker *w)
{
    uint64_t id8 = 0;
    for (int i = 0; i < 8; i++)
        id8 = id8 << 8 | w->id.b[i];
    return (ixent){key_of(w), id8, w->bw_down_mbps, w->slot};
}

int index_compare(const worker *a, const worker *b)
{
    uint64_t ka = key_of(a), kb = key_of(b);
    if (ka != kb)
        return ka < kb ? -1 : 1;
    if (a->bw_down_mbps != b->bw_down_mbps)
        return a->bw_down_mbps > b->bw_down_mbps ? -1 : 1;
    return memcmp(a->id.b, b->id.b, 16);
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
        bdir *nd = mu_realloc(ix->dirs, ncap * sizeof(*nd));
        if (!nd)
            return NIL; /* buckets grew, cap did not: the next call retries */
        ix->dirs = nd;
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
    ix->buckets[b] = (ix_bucket){model, w->region_idx, (uint8_t)w->tier, w->gpu_count, 0};
    ix->dirs[b] = (bdir){NULL, 0, 0};
    ix->n_buckets++;
    ix->model_buckets[model][ix->model_n[model]++] = b;
    return b;
}

/* Room for slot in the filed array; new places are unfiled. 0, or -1. */
static int reserve_filed(windex *ix, uint32_t slot)
{
    if (slot < ix->cap_filed)
        return 0;
    size_t old = ix->cap_filed;
    size_t ncap = old ? old : 1024;
    while (ncap <= slot)
        ncap *= 2;
    filed_at *nf = mu_realloc(ix->filed, ncap * sizeof(*nf));
    if (!nf) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = old; i < ncap; i++)
        nf[i].bucket = NIL;
    ix->filed = nf;
    ix->cap_filed = ncap;
    return 0;
}

/* --- sorted blocks ------------------------------------------------------------------- */

/* The order of two entries: index_compare on what they were filed under.
 * The worker records are read only when the first 8 bytes of two ids are
 * equal. */
static int ent_compare(const windex *ix, const ixent *a, const ixent *b)
{
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    if (a->bw != b->bw)
        return a->bw > b->bw ? -1 : 1;
    if (a->id8 != b->id8)
        return a->id8 < b->id8 ? -1 : 1;
    if (a->slot == b->slot)
        return 0;
    return memcmp(registry_at(ix->reg, a->slot)->id.b, registry_at(ix->reg, b->slot)->id.b, 16);
}

static uint32_t price_of(const ixent *e)
{
    return (uint32_t)e->key;
}

/* The block of bucket dir d that holds e, or would: the last whose first
 * entry is not after e (block 0 for what comes before every block). */
static uint32_t find_block(const windex *ix, const bdir *d, const ixent *e)
{
    uint32_t lo = 1, hi = d->n; /* the answer is the last block in [0, lo) */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ent_compare(ix, &d->ents[mid].first, e) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - 1;
}

/* The first position in b whose entry is not before e. */
static uint32_t find_pos(const windex *ix, const block *b, const ixent *e)
{
    /* The block is most likely cold: ask for all of it at once, so that the
     * binary search's misses overlap instead of following one another (the
     * memmove that comes next reads much of it anyway). */
    for (const char *c = (const char *)b->e, *end = (const char *)&b->e[b->n]; c < end; c += 64)
        __builtin_prefetch(c);
    uint32_t lo = 0, hi = b->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ent_compare(ix, &b->e[mid], e) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* b's lowest price, and in *count how many entries have it. */
static uint32_t block_min(const block *b, uint32_t *count)
{
    uint32_t m = UINT32_MAX, n = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t p = price_of(&b->e[i]);
        if (p < m) {
            m = p;
            n = 1;
        } else if (p == m) {
            n++;
        }
    }
    *count = n;
    return m;
}

/* Set de's lowest price and its count from its block. */
static void dent_min(dent *de)
{
    de->min_price = block_min(de->b, &de->min_count);
}

/* Put a new (empty) block into dir d at position at. 0, or -1 (ENOMEM). */
static int dir_insert(bdir *d, uint32_t at, block *b)
{
    if (d->n == d->cap) {
        uint32_t ncap = d->cap ? d->cap * 2 : 4;
        dent *ne = mu_realloc(d->ents, ncap * sizeof(*ne));
        if (!ne) {
            errno = ENOMEM;
            return -1;
        }
        d->ents = ne;
        d->cap = ncap;
    }
    memmove(&d->ents[at + 1], &d->ents[at], (d->n - at) * sizeof(*d->ents));
    d->ents[at].b = b;
    d->n++;
    return 0;
}

static void dir_delete(bdir *d, uint32_t at)
{
    mu_free(d->ents[at].b);
    memmove(&d->ents[at], &d->ents[at + 1], (d->n - at - 1) * sizeof(*d->ents));
    d->n--;
}

int index_add(windex *ix, worker *w)
{
    if (reserve_filed(ix, w->slot) < 0)
        return -1;
    uint32_t bn = bucket_for(ix, w);
    if (bn == NIL) {
        errno = ENOMEM;
        return -1;
    }
    bdir *d = &ix->dirs[bn];
    ixent e = entry_of(w);
    uint32_t k = 0;
    if (!d->n) {
        block *nb = mu_malloc(sizeof(*nb));
        if (!nb || dir_insert(d, 0, nb) < 0) {
            mu_free(nb);
            errno = ENOMEM;
            return -1;
        }
        nb->n = 0;
    } else {
        k = find_block(ix, d, &e);
        if (d->ents[k].b->n == BLOCK_MAX) {
            /* Full: its upper half moves to a new block after it. */
            block *b = d->ents[k].b, *nb = mu_malloc(sizeof(*nb));
            if (!nb || dir_insert(d, k + 1, nb) < 0) {
                mu_free(nb);
                errno = ENOMEM;
                return -1;
            }
            nb->n = BLOCK_MAX / 2;
            memcpy(nb->e, &b->e[BLOCK_MAX / 2], (BLOCK_MAX / 2) * sizeof(ixent));
            b->n = BLOCK_MAX / 2;
            dent_min(&d->ents[k]);
            dent_min(&d->ents[k + 1]);
            d->ents[k + 1].first = nb->e[0];
            if (ent_compare(ix, &nb->e[0], &e) <= 0)
                k++;
        }
    }
    block *b = d->ents[k].b;
    uint32_t p = find_pos(ix, b, &e);
    memmove(&b->e[p + 1], &b->e[p], (b->n - p) * sizeof(ixent));
    b->e[p] = e;
    if (!p)
        d->ents[k].first = e;
    if (!b->n || price_of(&e) < d->ents[k].min_price) {
        d->ents[k].min_price = price_of(&e);
        d->ents[k].min_count = 1;
    } else if (price_of(&e) == d->ents[k].min_price) {
        d->ents[k].min_count++;
    }
    b->n++;
    ix->filed[w->slot] = (filed_at){e, bn};
    ix->buckets[bn].count++;
    ix->count++;
    return 0;
}

void index_remove(windex *ix, worker *w)
{
    const filed_at *f = w->slot < ix->cap_filed ? &ix->filed[w->slot] : NULL;
    if (!f || f->bucket == NIL)
        return;
    uint32_t bn = f->bucket;
    bdir *d = &ix->dirs[bn];
    uint32_t k = find_block(ix, d, &f->e);
    block *b = d->ents[k].b;
    uint32_t p = find_pos(ix, b, &f->e);
    if (p >= b->n || b->e[p].slot != w->slot)
        return; /* cannot happen while index_check holds; never corrupt more */
    memmove(&b->e[p], &b->e[p + 1], (b->n - p - 1) * sizeof(ixent));
    b->n--;
    if (!b->n) {
        dir_delete(d, k);
    } else {
        if (!p)
            d->ents[k].first = b->e[0];
        if (price_of(&f->e) == d->ents[k].min_price && !--d->ents[k].min_count)
            dent_min(&d->ents[k]);
        /* Keep blocks at least a quarter full, so that walks and searches
         * stay short after heavy churn: a sparse block joins a neighbour
         * when the two fit in three quarters of one. */
        if (b->n < BLOCK_MAX / 4) {
            uint32_t left = NIL;
            if (k + 1 < d->n && b->n + d->ents[k + 1].b->n <= BLOCK_MAX * 3 / 4)
                left = k;
            else if (k > 0 && d->ents[k - 1].b->n + b->n <= BLOCK_MAX * 3 / 4)
                left = k - 1;
            if (left != NIL) {
                block *l = d->ents[left].b, *r = d->ents[left + 1].b;
                memcpy(&l->e[l->n], r->e, r->n * sizeof(ixent));
                l->n += r->n;
                const dent *rd = &d->ents[left + 1];
                dent *ld = &d->ents[left];
                if (rd->min_price < ld->min_price)
                    *ld = (dent){ld->first, ld->b, rd->min_price, rd->min_count};
                else if (rd->min_price == ld->min_price)
                    ld->min_count += rd->min_count;
                dir_delete(d, left + 1);
            }
        }
    }
    ix->filed[w->slot].bucket = NIL;
    ix->buckets[bn].count--;
    ix->count--;
}

int index_refresh(windex *ix, worker *w)
{
    /* Most refreshes (a heartbeat's hourly uptime update, a registration
     * that changes nothing that orders it) leave a worker where it is:
     * refiling it would cost two searches of its bucket for nothing. */
    const filed_at *f = w->slot < ix->cap_filed ? &ix->filed[w->slot] : NULL;
    if (f && f->bucket != NIL && index_eligible(w)) {
        const ix_bucket *bk = &ix->buckets[f->bucket];
        if (bk->model == w->model_idx && bk->region == w->region_idx && bk->tier == w->tier &&
            bk->gpus == w->gpu_count && f->e.key == key_of(w) && f->e.bw == w->bw_down_mbps)
            return 0;
    }
    index_remove(ix, w);
    return index_eligible(w) ? index_add(ix, w) : 0;
}

void index_prefetch(const windex *ix, uint32_t slot, int stage)
{
    if (slot >= ix->cap_filed)
        return;
    const filed_at *f = &ix->filed[slot];
    if (stage == 0) {
        __builtin_prefetch(f);
    } else if (f->bucket != NIL) {
        const bdir *d = &ix->dirs[f->bucket];
        const block *b = d->ents[find_block(ix, d, &f->e)].b;
        /* Where a binary search of it starts: all of it would stall on the
         * loads in flight for little more. */
        __builtin_prefetch(b);
        __builtin_prefetch(&b->e[BLOCK_MAX / 4]);
        __builtin_prefetch(&b->e[BLOCK_MAX / 2]);
        __builtin_prefetch(&b->e[BLOCK_MAX * 3 / 4]);
    }
}

/* A position in a bucket's walk. */
typedef struct cursor {
    const bdir *d;
    uint32_t k, p; /* block, entry */
} cursor;

static worker *at_cursor(const windex *ix, const cursor *c)
{
    return c->k < c->d->n ? registry_at_mut(ix->reg, c->d->ents[c->k].b->e[c->p].slot) : NULL;
}

/* Where a filed worker is. */
static cursor locate(const windex *ix, const worker *w)
{
    const filed_at *f = &ix->filed[w->slot];
    cursor c = {&ix->dirs[f->bucket], 0, 0};
    c.k = find_block(ix, c.d, &f->e);
    c.p = find_pos(ix, c.d->ents[c.k].b, &f->e);
    return c;
}

/* From c (inclusive) on, the first entry priced at most cap (0: any),
 * skipping whole blocks priced above it. */
static worker *scan_from(const windex *ix, cursor c, uint32_t cap)
{
    for (; c.k < c.d->n; c.k++, c.p = 0) {
        if (cap && c.d->ents[c.k].min_price > cap)
            continue;
        const block *b = c.d->ents[c.k].b;
        for (; c.p < b->n; c.p++)
            if (!cap || price_of(&b->e[c.p]) <= cap)
                return at_cursor(ix, &c);
    }
    return NULL;
}

worker *index_first(const windex *ix, uint32_t b)
{
    return index_first_under(ix, b, 0);
}

worker *index_next(const windex *ix, const worker *w)
{
    return index_next_under(ix, w, 0);
}

worker *index_first_under(const windex *ix, uint32_t b, uint32_t cap)
{
    if (b >= ix->n_buckets)
        return NULL;
    return scan_from(ix, (cursor){&ix->dirs[b], 0, 0}, cap);
}

worker *index_next_under(const windex *ix, const worker *w, uint32_t cap)
{
    if (w->slot >= ix->cap_filed || ix->filed[w->slot].bucket == NIL)
        return NULL; /* not filed: it has no place in a walk */
    cursor c = locate(ix, w);
    c.p++;
    return scan_from(ix, c, cap);
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
    size_t n = sizeof(*ix) + idmap_bytes(ix->by_key) +
               ix->cap_buckets * (sizeof(ix_bucket) + sizeof(bdir)) +
               ix->cap_filed * sizeof(filed_at);
    for (size_t b = 0; b < ix->n_buckets; b++)
        n += ix->dirs[b].cap * sizeof(dent) + ix->dirs[b].n * sizeof(block);
    for (size_t i = 0; i < ix->n_models; i++)
        n += ix->model_cap[i] * sizeof(uint32_t);
    return n + ix->n_models * (sizeof(uint32_t *) + 2 * sizeof(uint32_t));
}

/* Check one bucket's blocks; the number of entries, or -1. */
static long check_bucket(const windex *ix, uint32_t bn, mu_error *errp)
{
    const bdir *d = &ix->dirs[bn];
    const ix_bucket *bk = &ix->buckets[bn];
    const ixent *prev = NULL;
    long total = 0;
    for (uint32_t k = 0; k < d->n; k++) {
        const block *b = d->ents[k].b;
        if (!b->n || b->n > BLOCK_MAX)
            return errprintf(errp, "bucket %u: block %u holds %u entries", bn, k, b->n);
        if (memcmp(&d->ents[k].first, &b->e[0], sizeof(ixent)))
            return errprintf(errp, "bucket %u: block %u's first entry is stale", bn, k);
        for (uint32_t p = 0; p < b->n; p++) {
            const ixent *e = &b->e[p];
            const worker *w = registry_at(ix->reg, e->slot);
            if (!w)
                return errprintf(errp, "bucket %u: slot %u does not exist", bn, e->slot);
            if (e->slot >= ix->cap_filed || ix->filed[e->slot].bucket != bn ||
                memcmp(&ix->filed[e->slot].e, e, sizeof(*e)))
                return errprintf(errp, "bucket %u: worker %u is not filed where it is", bn,
                                 e->slot);
            if (!index_eligible(w))
                return errprintf(errp, "bucket %u: worker %u is filed but not eligible", bn,
                                 e->slot);
            if (w->model_idx != bk->model || w->region_idx != bk->region || w->tier != bk->tier ||
                w->gpu_count != bk->gpus)
                return errprintf(errp, "bucket %u: worker %u is in the wrong bucket", bn, e->slot);
            ixent now = entry_of(w);
            if (memcmp(&now, e, sizeof(now)))
                return errprintf(errp, "bucket %u: worker %u filed under a stale key", bn, e->slot);
            if (prev && ent_compare(ix, prev, e) >= 0)
                return errprintf(errp, "bucket %u: order broken at worker %u", bn, e->slot);
            prev = e;
        }
        uint32_t mn, m = block_min(b, &mn);
        if (d->ents[k].min_price != m)
            return errprintf(errp, "bucket %u: block %u's lowest price is wrong", bn, k);
        if (d->ents[k].min_count != mn)
            return errprintf(errp, "bucket %u: block %u's count at its lowest price is wrong", bn,
                             k);
        total += b->n;
    }
    return total;
}

int index_check(const windex *ix, mu_error *errp)
{
    size_t total = 0;
    for (uint32_t b = 0; b < ix->n_buckets; b++) {
        long n = check_bucket(ix, b, errp);
        if (n < 0)
            return -1;
        if ((size_t)n != ix->buckets[b].count)
            return errprintf(errp, "bucket %u: count %u but %ld filed", b, ix->buckets[b].count, n);
        /* The walk agrees with the count and is strictly increasing in the
         * order of the worker records themselves. */
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
            if (i >= ix->cap_filed || ix->filed[i].bucket == NIL)
                return errprintf(errp, "worker %zu is eligible but not filed", i);
        }
    }
    if (eligible != ix->count)
        return errprintf(errp, "%zu eligible workers but %zu filed", eligible, ix->count);
    return 0;
}
