/* search.c - see search.h. */
#include "search.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* Rows are few (models x regions x tiers), so a linear lookup is fine. */
static search_row *row_for(search_row **rows, size_t *n, size_t *cap, const ix_bucket *b)
{
    for (size_t i = 0; i < *n; i++) {
        search_row *r = &(*rows)[i];
        if (r->model == b->model && r->region == b->region && r->tier == b->tier)
            return r;
    }
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 32;
        search_row *nr = mu_realloc(*rows, ncap * sizeof(*nr));
        if (!nr)
            return NULL;
        *rows = nr;
        *cap = ncap;
    }
    search_row *r = &(*rows)[(*n)++];
    memset(r, 0, sizeof(*r));
    r->model = b->model;
    r->region = b->region;
    r->tier = b->tier;
    r->min_price_uusd = UINT32_MAX;
    return r;
}

static bool wants_model(const match_request *f, uint16_t model)
{
    if (!f->n_models)
        return true;
    for (unsigned i = 0; i < f->n_models; i++)
        if (f->models[i] == model)
            return true;
    return false;
}

static bool in_countries(const match_request *f, const worker *w)
{
    if (!f->n_countries)
        return true;
    for (unsigned i = 0; i < f->n_countries; i++)
        if (!memcmp(f->countries[i], w->country, 2))
            return true;
    return false;
}

static bool region_allowed(const match_request *f, const region_table *regions, uint8_t region)
{
    if (f->regions && (region >= 64 || !(f->regions >> region & 1)))
        return false;
    if (!f->n_countries)
        return true;
    for (unsigned i = 0; i < f->n_countries; i++)
        if (regions_index(regions, regions_of_country(regions, f->countries[i])) == region)
            return true;
    return false;
}

static int by_price(const void *a, const void *b)
{
    const search_row *x = a, *y = b;
    if (x->min_price_uusd != y->min_price_uusd)
        return x->min_price_uusd < y->min_price_uusd ? -1 : 1;
    if (x->workers != y->workers)
        return x->workers > y->workers ? -1 : 1;
    if (x->model != y->model)
        return x->model < y->model ? -1 : 1;
    if (x->region != y->region)
        return x->region < y->region ? -1 : 1;
    return (int)x->tier - (int)y->tier;
}

static int by_count(const void *a, const void *b)
{
    const search_row *x = a, *y = b;
    if (x->workers != y->workers)
        return x->workers > y->workers ? -1 : 1;
    return by_price(a, b);
}

static int by_uptime(const void *a, const void *b)
{
    const search_row *x = a, *y = b;
    if (x->best_uptime != y->best_uptime)
        return x->best_uptime > y->best_uptime ? -1 : 1;
    return by_price(a, b);
}

search_row *search_run(const windex *ix, const registry *reg, const match_request *f,
                       search_sort sort, size_t *n, uint32_t *total)
{
    const region_table *regions = registry_regions(reg);
    search_row *rows = NULL;
    size_t cap = 0;
    *n = 0;
    *total = 0;
    uint16_t min_class = index_uptime_class(f->min_uptime);
    for (uint32_t bi = 0; bi < index_bucket_count(ix); bi++) {
        const ix_bucket *b = index_bucket(ix, bi);
        if (!b->count || !wants_model(f, b->model) || b->tier < f->min_tier ||
            b->gpus < f->gpus_per_worker || !region_allowed(f, regions, b->region))
            continue;
        search_row *r = NULL;
        for (const worker *w = index_first_under(ix, bi, f->max_price_uusd); w;
             w = index_next_under(ix, w, f->max_price_uusd)) {
            if (index_uptime_class(w->uptime) < min_class)
                break; /* the rest of the bucket is less reliable still */
            if (w->uptime < f->min_uptime ||
                (f->max_price_uusd && w->price_uusd > f->max_price_uusd) || !in_countries(f, w))
                continue;
            if (!r && !(r = row_for(&rows, n, &cap, b))) {
                mu_free(rows);
                *n = 0;
                errno = ENOMEM;
                return NULL;
            }
            r->workers++;
            r->gpus += w->gpu_count;
            if (w->price_uusd < r->min_price_uusd)
                r->min_price_uusd = w->price_uusd;
            if (w->price_uusd > r->max_price_uusd)
                r->max_price_uusd = w->price_uusd;
            if (w->uptime > r->best_uptime)
                r->best_uptime = w->uptime;
            r->uptime_sum += w->uptime;
            if (w->gpu_count < 32)
                r->gpu_counts |= 1u << w->gpu_count;
            (*total)++;
        }
    }
    int (*cmp)(const void *, const void *) = sort == SEARCH_BY_COUNT    ? by_count
                                             : sort == SEARCH_BY_UPTIME ? by_uptime
                                                                        : by_price;
    if (*n > 1)
        qsort(rows, *n, sizeof(*rows), cmp);
    return rows;
}
