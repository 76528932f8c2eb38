/* index.c - see index.h.
 *
 * A bucket is a directory of blocks of up to BLOCK_MAX entries (the key a
 * worker is filed under, and its slot), ordered by separators: every entry
 * of block k comes at or after block k's separator and before block k+1's.
 * Inside a block the entries are in no order. Filing is a directory search
 * and an append; removal moves the block's last entry into the hole; and
 * what each worker is filed at (block and position, by slot) is kept beside,
 * so that a removal searches nothing and a refresh can tell whether the
 * worker must move without reading more than its own entry.
 *
 * This is what a simulated year of a million workers does tens of millions
 * of times, each time on a block no cache holds any more. Sorted blocks cost
 * a binary search and a memmove through a whole cold block per change: with
 * them the index was half of sim_bench's replay (bench/README.md). Walks pay
 * instead, and they are rare: a step scans one block for the entry that
 * comes next (BLOCK_MAX compares over a few cache lines), and each block
 * keeps where its best entry is, so a walk's first step in a block reads one.
 */
#include "index.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "idmap.h"

#define NIL UINT32_MAX

/* Entries per block: a walk's step scans one, a split partitions one. */
#define BLOCK_MAX 64

/* What a worker is filed under, in walk order (index_compare). */
typedef struct ixent {
    uint64_t key;  /* uptime class, price, bandwidth (key_of): ascending */
    uint64_t id8;  /* the id's first 8 bytes, big-endian: id order */
    uint32_t bw;   /* download bandwidth: descending */
    uint32_t slot; /* the worker's registry slot */
} ixent;

/* The header is what filing reads. It holds a copy of the best entry,
 * so that an add compares against it without loading another cold line
 * (at a million workers, a block is rarely in any cache: bench/README.md). */
typedef struct block {
    uint32_t n;
    uint32_t best;                 /* where the entry that comes first is */
    uint32_t min_price, min_count; /* the lowest price, and how many have it */
    ixent top;                     /* a copy of e[best] */
    ixent e[BLOCK_MAX];
} block;

/* A block and its separator, which directory searches compare against, and
 * a lower bound of its prices, by which walks under a price cap skip blocks
 * without reading them. The bound is made exact when the block is filled,
 * split or merged and only loosens on removal, which then need not find
 * the block in the directory. */
typedef struct dent {
    ixent sep; /* for k > 0; block 0 takes what comes before every block */
    block *b;
    uint32_t min_price;
} dent;

typedef struct bdir {
    dent *ents;
    uint32_t n, cap;
} bdir;

typedef struct filed_at {
    block *b; /* NULL: not filed */
    uint32_t pos;
    uint32_t bucket; /* when not filed: where it was last, or NIL */
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

/* Uptime class descending, then price ascending, then download bandwidth
 * descending, in one number. Bandwidths from BW_TOP up share the lowest
 * value, and ent_compare orders them by their own. */
#define BW_BITS 25
#define BW_TOP  ((1u << BW_BITS) - 1)

static uint64_t key_of(const worker *w)
{
    uint32_t bw = w->bw_down_mbps < BW_TOP ? w->bw_down_mbps : BW_TOP;
    return (uint64_t)(100u - index_uptime_class(w->uptime)) << 57 |
           (uint64_t)w->price_uusd << BW_BITS | (BW_TOP - bw);
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

/* Whether w belongs in bucket bk. */
static bool in_bucket(const ix_bucket *bk, const worker *w)
{
    return bk->model == w->model_idx && bk->region == w->region_idx && bk->tier == w->tier &&
           bk->gpus == w->gpu_count;
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
        nf[i] = (filed_at){NULL, 0, NIL};
    ix->filed = nf;
    ix->cap_filed = ncap;
    return 0;
}

/* --- blocks ------------------------------------------------------------------------ */

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
    return (uint32_t)(e->key >> BW_BITS);
}

/* The block of bucket dir d whose range holds e: the last whose separator
 * is not after e (block 0 for what comes before every separator). */
static uint32_t find_block(const windex *ix, const bdir *d, const ixent *e)
{
    uint32_t lo = 1, hi = d->n; /* the answer is the last block in [0, lo) */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ent_compare(ix, &d->ents[mid].sep, e) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - 1;
}

/* Recompute b's best entry and lowest price from its entries. */
static void block_stats(const windex *ix, block *b)
{
    uint32_t best = 0, m = UINT32_MAX, n = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t p = price_of(&b->e[i]);
        if (p < m) {
            m = p;
            n = 1;
        } else if (p == m) {
            n++;
        }
        if (i && ent_compare(ix, &b->e[i], &b->e[best]) < 0)
            best = i;
    }
    b->best = best;
    b->top = b->e[best];
    b->min_price = m;
    b->min_count = n;
}

static void swap_ent(ixent *e, uint32_t i, uint32_t j)
{
    ixent t = e[i];
    e[i] = e[j];
    e[j] = t;
}

/* Put the entry that comes h-th in order at e[h], those before it below
 * and those after above, in no order (quickselect, pivot the median of
 * three): a split needs its halves, not a sort, and a full sort was most
 * of what a split cost. Entries never compare equal, so the halves are
 * those a sort would give. */
static void block_select(const windex *ix, block *b, uint32_t h)
{
    ixent *e = b->e;
    uint32_t lo = 0, hi = b->n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ent_compare(ix, &e[mid], &e[lo]) < 0)
            swap_ent(e, lo, mid);
        if (ent_compare(ix, &e[hi], &e[lo]) < 0)
            swap_ent(e, lo, hi);
        if (ent_compare(ix, &e[mid], &e[hi]) < 0)
            swap_ent(e, mid, hi);
        const ixent pivot = e[hi];
        uint32_t at = lo;
        for (uint32_t i = lo; i < hi; i++)
            if (ent_compare(ix, &e[i], &pivot) < 0)
                swap_ent(e, i, at++);
        swap_ent(e, at, hi);
        if (at == h)
            return;
        if (h < at)
            hi = at - 1;
        else
            lo = at + 1;
    }
}

/* Tell the workers of b from position `from` on where they are now. */
static void refile_from(windex *ix, block *b, uint32_t from, uint32_t bucket)
{
    for (uint32_t i = from; i < b->n; i++)
        ix->filed[b->e[i].slot] = (filed_at){b, i, bucket};
}

/* Put block b into dir d at position at. 0, or -1 (ENOMEM). */
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
    d->ents[at] = (dent){.b = b, .min_price = UINT32_MAX};
    d->n++;
    return 0;
}

static void dir_delete(bdir *d, uint32_t at)
{
    mu_free(d->ents[at].b);
    memmove(&d->ents[at], &d->ents[at + 1], (d->n - at - 1) * sizeof(*d->ents));
    d->n--;
}

/* Split the full block k of bucket bn: the upper half of its entries, in
 * walk order, moves to a new block after it. 0, or -1 (ENOMEM) with
 * nothing changed. */
static int split(windex *ix, uint32_t bn, uint32_t k)
{
    bdir *d = &ix->dirs[bn];
    block *b = d->ents[k].b, *nb = mu_malloc(sizeof(*nb));
    if (!nb || dir_insert(d, k + 1, nb) < 0) {
        mu_free(nb);
        errno = ENOMEM;
        return -1;
    }
    block_select(ix, b, b->n / 2);
    nb->n = b->n - b->n / 2;
    memcpy(nb->e, &b->e[b->n / 2], nb->n * sizeof(ixent));
    b->n /= 2;
    block_stats(ix, b);
    block_stats(ix, nb);
    d->ents[k].min_price = b->min_price;
    d->ents[k + 1].min_price = nb->min_price;
    d->ents[k + 1].sep = nb->e[0];
    refile_from(ix, b, 0, bn);
    refile_from(ix, nb, 0, bn);
    return 0;
}

/* Block k of bucket bn has become sparse: keep blocks at least a quarter
 * full, so that walks and searches stay short after heavy churn, by joining
 * it to a neighbour when the two fit in three quarters of one. */
static void maybe_merge(windex *ix, uint32_t bn, uint32_t k)
{
    bdir *d = &ix->dirs[bn];
    uint32_t n = d->ents[k].b->n, left = NIL;
    if (k + 1 < d->n && n + d->ents[k + 1].b->n <= BLOCK_MAX * 3 / 4)
        left = k;
    else if (k > 0 && d->ents[k - 1].b->n + n <= BLOCK_MAX * 3 / 4)
        left = k - 1;
    if (left == NIL)
        return;
    block *l = d->ents[left].b, *r = d->ents[left + 1].b;
    uint32_t from = l->n;
    memcpy(&l->e[l->n], r->e, r->n * sizeof(ixent));
    l->n += r->n;
    block_stats(ix, l); /* merges are rare: recount rather than combine */
    d->ents[left].min_price = l->min_price;
    refile_from(ix, l, from, bn);
    dir_delete(d, left + 1);
}

int index_add(windex *ix, worker *w)
{
    if (reserve_filed(ix, w->slot) < 0)
        return -1;
    /* A worker is mostly refiled where it was before. */
    uint32_t bn = ix->filed[w->slot].bucket;
    const ix_bucket *bk = bn != NIL ? &ix->buckets[bn] : NULL;
    if (!bk || !in_bucket(bk, w))
        bn = bucket_for(ix, w);
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
            if (split(ix, bn, k) < 0)
                return -1;
            if (ent_compare(ix, &d->ents[k + 1].sep, &e) <= 0)
                k++;
        }
    }
    block *b = d->ents[k].b;
    uint32_t p = b->n++, price = price_of(&e);
    b->e[p] = e;
    if (!p) {
        b->best = 0;
        b->top = e;
        b->min_price = price;
        b->min_count = 1;
    } else {
        if (ent_compare(ix, &e, &b->top) < 0) {
            b->best = p;
            b->top = e;
        }
        if (price < b->min_price) {
            b->min_price = price;
            b->min_count = 1;
        } else if (price == b->min_price) {
            b->min_count++;
        }
    }
    if (price < d->ents[k].min_price)
        d->ents[k].min_price = price;
    ix->filed[w->slot] = (filed_at){b, p, bn};
    ix->buckets[bn].count++;
    ix->count++;
    return 0;
}

void index_remove(windex *ix, worker *w)
{
    filed_at *f = w->slot < ix->cap_filed ? &ix->filed[w->slot] : NULL;
    if (!f || !f->b)
        return;
    block *b = f->b;
    uint32_t p = f->pos, bn = f->bucket;
    if (p >= b->n || b->e[p].slot != w->slot)
        return; /* cannot happen while index_check holds; never corrupt more */
    const ixent gone = b->e[p];
    f->b = NULL; /* its bucket stays, a hint for when it is filed again */
    ix->buckets[bn].count--;
    ix->count--;
    uint32_t last = --b->n;
    if (p != last) {
        b->e[p] = b->e[last];
        ix->filed[b->e[p].slot].pos = p;
    }
    bdir *d = &ix->dirs[bn];
    if (!b->n) {
        uint32_t k = find_block(ix, d, &gone);
        if (d->ents[k].b == b)
            dir_delete(d, k);
        return;
    }
    if (b->best == p || (price_of(&gone) == b->min_price && !--b->min_count))
        block_stats(ix, b);
    else if (b->best == last)
        b->best = p;
    if (b->n < BLOCK_MAX / 4) {
        uint32_t k = find_block(ix, d, &gone);
        if (d->ents[k].b == b)
            maybe_merge(ix, bn, k);
    }
}

int index_refresh(windex *ix, worker *w)
{
    /* Most refreshes (a heartbeat's hourly uptime update, a registration
     * that changes nothing that orders it) leave a worker where it is. */
    const filed_at *f = w->slot < ix->cap_filed ? &ix->filed[w->slot] : NULL;
    if (f && f->b && index_eligible(w)) {
        const ix_bucket *bk = &ix->buckets[f->bucket];
        const ixent *e = &f->b->e[f->pos];
        if (in_bucket(bk, w) && e->key == key_of(w) && e->bw == w->bw_down_mbps)
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
    } else if (f->b && stage == 1) {
        /* What a refresh compares and a removal rewrites. */
        __builtin_prefetch(f->b);
        if (f->pos < BLOCK_MAX)
            __builtin_prefetch(&f->b->e[f->pos]);
    } else if (f->b && f->b->n && f->b->n <= BLOCK_MAX) {
        /* The entry a removal moves into the hole. */
        __builtin_prefetch(&f->b->e[f->b->n - 1]);
    }
}

/* --- walks ----------------------------------------------------------------------------- */

/* Where in b the first entry after `after` (NULL: from the start) priced
 * at most cap (0: any) is; NIL when none is. */
static uint32_t block_next_exact(const windex *ix, const block *b, const ixent *after, uint32_t cap)
{
    uint32_t got = NIL;
    for (uint32_t i = 0; i < b->n; i++) {
        const ixent *x = &b->e[i];
        if ((cap && price_of(x) > cap) || (after && ent_compare(ix, x, after) <= 0))
            continue;
        if (got == NIL || ent_compare(ix, x, &b->e[got]) < 0)
            got = i;
    }
    return got;
}

typedef unsigned __int128 u128;

/* As block_next_exact, without a branch per entry: key and first id bytes
 * as one number decide, unless two entries tie on it or a bandwidth is
 * past what the key holds. Then the exact scan does. */
static uint32_t block_next(const windex *ix, const block *b, const ixent *after, uint32_t cap)
{
    if (cap && b->min_price > cap)
        return NIL;
    if (!after && (!cap || price_of(&b->top) <= cap))
        return b->best;
    u128 ak = after ? (u128)after->key << 64 | after->id8 : 0, gk = ~(u128)0;
    uint32_t got = NIL, max = cap ? cap : UINT32_MAX;
    bool odd = false;
    for (uint32_t i = 0; i < b->n; i++) {
        const ixent *x = &b->e[i];
        u128 k = (u128)x->key << 64 | x->id8;
        bool priced = price_of(x) <= max, later = !after || k > ak;
        odd |= priced & ((k == gk) | ((x->key & BW_TOP) == 0) | (after && k == ak && x != after));
        bool take = priced & later & (k < gk);
        gk = take ? k : gk;
        got = take ? i : got;
    }
    return odd ? block_next_exact(ix, b, after, cap) : got;
}

/* From block k of d on, the first entry after `after` (which is in block
 * k, or NULL) priced at most cap (0: any). */
static worker *scan_from(const windex *ix, const bdir *d, uint32_t k, const ixent *after,
                         uint32_t cap)
{
    for (; k < d->n; k++, after = NULL) {
        if (cap && d->ents[k].min_price > cap)
            continue;
        const block *b = d->ents[k].b;
        uint32_t p = block_next(ix, b, after, cap);
        if (p != NIL)
            return registry_at_mut(ix->reg, b->e[p].slot);
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
    return scan_from(ix, &ix->dirs[b], 0, NULL, cap);
}

worker *index_next_under(const windex *ix, const worker *w, uint32_t cap)
{
    if (w->slot >= ix->cap_filed || !ix->filed[w->slot].b)
        return NULL; /* not filed: it has no place in a walk */
    const filed_at *f = &ix->filed[w->slot];
    const ixent *e = &f->b->e[f->pos];
    uint32_t p = block_next(ix, f->b, e, cap);
    if (p != NIL)
        return registry_at_mut(ix->reg, f->b->e[p].slot);
    const bdir *d = &ix->dirs[f->bucket];
    return scan_from(ix, d, find_block(ix, d, e) + 1, NULL, cap);
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

/* Check block k of bucket bn: its entries, that each is filed where it is,
 * in its range, and the block's best entry and prices. */
static int check_block(const windex *ix, uint32_t bn, uint32_t k, mu_error *errp)
{
    const bdir *d = &ix->dirs[bn];
    const ix_bucket *bk = &ix->buckets[bn];
    const block *b = d->ents[k].b;
    if (!b->n || b->n > BLOCK_MAX)
        return errprintf(errp, "bucket %u: block %u holds %u entries", bn, k, b->n);
    uint32_t best = 0, mn = 0, m = UINT32_MAX;
    for (uint32_t p = 0; p < b->n; p++) {
        const ixent *e = &b->e[p];
        const worker *w = registry_at(ix->reg, e->slot);
        if (!w)
            return errprintf(errp, "bucket %u: slot %u does not exist", bn, e->slot);
        const filed_at *f = e->slot < ix->cap_filed ? &ix->filed[e->slot] : NULL;
        if (!f || f->b != b || f->pos != p || f->bucket != bn)
            return errprintf(errp, "bucket %u: worker %u is not filed where it is", bn, e->slot);
        if (!index_eligible(w))
            return errprintf(errp, "bucket %u: worker %u is filed but not eligible", bn, e->slot);
        if (!in_bucket(bk, w))
            return errprintf(errp, "bucket %u: worker %u is in the wrong bucket", bn, e->slot);
        ixent now = entry_of(w);
        if (memcmp(&now, e, sizeof(now)))
            return errprintf(errp, "bucket %u: worker %u filed under a stale key", bn, e->slot);
        if ((k > 0 && ent_compare(ix, e, &d->ents[k].sep) < 0) ||
            (k + 1 < d->n && ent_compare(ix, e, &d->ents[k + 1].sep) >= 0))
            return errprintf(errp, "bucket %u: worker %u is outside block %u's range", bn, e->slot,
                             k);
        if (p && ent_compare(ix, e, &b->e[best]) < 0)
            best = p;
        if (price_of(e) < m) {
            m = price_of(e);
            mn = 1;
        } else if (price_of(e) == m) {
            mn++;
        }
    }
    if (b->best != best || memcmp(&b->top, &b->e[best], sizeof(ixent)))
        return errprintf(errp, "bucket %u: block %u's best entry is wrong", bn, k);
    if (b->min_price != m || b->min_count != mn)
        return errprintf(errp, "bucket %u: block %u's lowest price or its count is wrong", bn, k);
    if (d->ents[k].min_price > m)
        return errprintf(errp, "bucket %u: block %u's price bound is above its lowest price", bn,
                         k);
    return 0;
}

int index_check(const windex *ix, mu_error *errp)
{
    size_t total = 0;
    for (uint32_t b = 0; b < ix->n_buckets; b++) {
        const bdir *d = &ix->dirs[b];
        size_t n = 0;
        for (uint32_t k = 0; k < d->n; k++) {
            if (k > 1 && ent_compare(ix, &d->ents[k - 1].sep, &d->ents[k].sep) >= 0)
                return errprintf(errp, "bucket %u: separators out of order at block %u", b, k);
            if (check_block(ix, b, k, errp) < 0)
                return -1;
            n += d->ents[k].b->n;
        }
        if (n != ix->buckets[b].count)
            return errprintf(errp, "bucket %u: count %u but %zu filed", b, ix->buckets[b].count, n);
        /* The walk agrees with the count and is strictly increasing in the
         * order of the worker records themselves. */
        size_t k = 0;
        const worker *prev = NULL;
        for (const worker *w = index_first(ix, b); w; w = index_next(ix, w), k++) {
            if (prev && index_compare(prev, w) >= 0)
                return errprintf(errp, "bucket %u: walk out of order", b);
            prev = w;
        }
        if (k != n)
            return errprintf(errp, "bucket %u: walk saw %zu of %zu", b, k, n);
        total += n;
    }
    if (total != ix->count)
        return errprintf(errp, "index count %zu but %zu filed", ix->count, total);
    size_t eligible = 0, filed = 0;
    for (size_t i = 0; i < ix->cap_filed; i++)
        filed += ix->filed[i].b != NULL;
    if (filed != ix->count)
        return errprintf(errp, "%zu workers filed but the index counts %zu", filed, ix->count);
    for (size_t i = 0; i < registry_count(ix->reg); i++) {
        const worker *w = registry_at(ix->reg, i);
        if (index_eligible(w)) {
            eligible++;
            if (i >= ix->cap_filed || !ix->filed[i].b)
                return errprintf(errp, "worker %zu is eligible but not filed", i);
        }
    }
    if (eligible != ix->count)
        return errprintf(errp, "%zu eligible workers but %zu filed", eligible, ix->count);
    return 0;
}
