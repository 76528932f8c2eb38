/* match.c - see match.h.
 *
 * Both matchers feed the same selection (pack or spread) with one stream of
 * candidates per region, best first: the indexed matcher merges the walks of
 * the few buckets that can serve the request; the naive one sorts what a
 * scan of the fleet found. Same streams, same selection, same answer.
 */
#include "match.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pricing.h"

#define MAX_GROUPS 65 /* 64 regions + workers of unknown region */
#define PLURAL(n)  ((n) == 1 ? "" : "s")

/* --- the order and the filters ------------------------------------------------------ */

static unsigned waste(const match_request *rq, const worker *w)
{
    return (unsigned)(w->gpu_count - rq->gpus_per_worker);
}

/* The one total order of candidates: < 0 when a is the better choice. */
static int cand_compare(const match_request *rq, const worker *a, const worker *b)
{
    unsigned wa = waste(rq, a), wb = waste(rq, b);
    if (wa != wb)
        return wa < wb ? -1 : 1;
    uint16_t ca = index_uptime_class(a->uptime), cb = index_uptime_class(b->uptime);
    if (ca != cb)
        return ca > cb ? -1 : 1;
    if (a->price_uusd != b->price_uusd)
        return a->price_uusd < b->price_uusd ? -1 : 1;
    if (a->bw_down_mbps != b->bw_down_mbps)
        return a->bw_down_mbps > b->bw_down_mbps ? -1 : 1;
    return memcmp(a->id.b, b->id.b, 16);
}

static bool model_wanted(const match_request *rq, uint16_t model)
{
    for (unsigned i = 0; i < rq->n_models; i++)
        if (rq->models[i] == model)
            return true;
    return false;
}

static bool country_ok(const match_request *rq, const worker *w)
{
    if (!rq->n_countries)
        return true;
    for (unsigned i = 0; i < rq->n_countries; i++)
        if (rq->countries[i][0] == w->country[0] && rq->countries[i][1] == w->country[1])
            return true;
    return false;
}

/* What changes from worker to worker inside one bucket. */
static bool dynamic_ok(const match_request *rq, const worker *w)
{
    return w->uptime >= rq->min_uptime &&
           (!rq->max_price_uusd || w->price_uusd <= rq->max_price_uusd) && country_ok(rq, w);
}

/* Regions a request allows (countries narrow it); 0 means any. */
static uint64_t region_mask(const match_request *rq, const region_table *regions)
{
    uint64_t m = rq->regions;
    if (rq->n_countries) {
        uint64_t cm = 0;
        for (unsigned i = 0; i < rq->n_countries; i++) {
            int r = regions_index(regions, regions_of_country(regions, rq->countries[i]));
            if (r >= 0 && r < 64)
                cm |= 1ull << r;
        }
        m = m ? (m & cm) : cm;
        if (!m)
            m = 1ull << 63; /* countries of no known region: nothing matches */
    }
    return m;
}

static bool region_ok(uint64_t mask, uint8_t region)
{
    if (!mask)
        return true;
    return region < 64 && (mask >> region & 1);
}

static unsigned group_of(uint8_t region)
{
    return region < 64 ? region : 64;
}

bool match_worker_fits(const match_request *rq, const worker *w)
{
    return w->model && model_wanted(rq, w->model_idx) && w->gpu_count >= rq->gpus_per_worker &&
           w->tier >= rq->min_tier && region_ok(rq->regions, w->region_idx) && country_ok(rq, w) &&
           (!rq->max_price_uusd || w->price_uusd <= rq->max_price_uusd);
}

/* --- candidate streams ---------------------------------------------------------------- */

typedef struct stream {
    const match_request *rq;
    /* indexed: one cursor per bucket */
    const windex *ix;
    worker **cur;
    size_t n_cur;
    uint16_t min_class;
    /* naive: a sorted array */
    worker **arr;
    size_t n_arr, pos;
} stream;

static worker *cursor_fit(const stream *s, worker *w)
{
    for (; w; w = index_next_under(s->ix, w, s->rq->max_price_uusd)) {
        if (index_uptime_class(w->uptime) < s->min_class)
            return NULL; /* the rest of the bucket is less reliable still */
        if (dynamic_ok(s->rq, w))
            return w;
    }
    return NULL;
}

static worker *stream_next(stream *s)
{
    if (s->arr)
        return s->pos < s->n_arr ? s->arr[s->pos++] : NULL;
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < s->n_cur; i++)
        if (s->cur[i] && (best == SIZE_MAX || cand_compare(s->rq, s->cur[i], s->cur[best]) < 0))
            best = i;
    if (best == SIZE_MAX)
        return NULL;
    worker *w = s->cur[best];
    s->cur[best] = cursor_fit(s, index_next_under(s->ix, w, s->rq->max_price_uusd));
    return w;
}

/* --- selection ------------------------------------------------------------------------- */

/* Pick members from the per-region streams; returns how many were found
 * (possibly fewer than min_workers). scratch has room for rq->workers. */
static size_t select_members(const match_request *rq, stream *groups, const bool *present,
                             uint32_t *out, uint32_t *scratch)
{
    size_t n = 0;
    if (rq->placement == PLACE_SPREAD) {
        bool more = true;
        while (n < rq->workers && more) {
            more = false;
            for (unsigned g = 0; g < MAX_GROUPS && n < rq->workers; g++) {
                if (!present[g])
                    continue;
                worker *w = stream_next(&groups[g]);
                if (w) {
                    out[n++] = w->slot;
                    more = true;
                }
            }
        }
        return n;
    }
    /* pack: the region with the most members wins, then the cheaper one,
     * then the lower region number. Workers of unknown region cannot be
     * packed anywhere. */
    uint64_t best_cost = UINT64_MAX;
    for (unsigned g = 0; g < 64; g++) {
        if (!present[g])
            continue;
        size_t k = 0;
        uint64_t cost = 0;
        worker *w;
        while (k < rq->workers && (w = stream_next(&groups[g]))) {
            scratch[k++] = w->slot;
            cost += (uint64_t)w->price_uusd * w->gpu_count;
        }
        if (k > n || (k == n && k > 0 && cost < best_cost)) {
            memcpy(out, scratch, k * sizeof(*out));
            n = k;
            best_cost = cost;
        }
    }
    return n;
}

/* Indexed: how many members the request can get (0..workers), into out. */
static size_t find_indexed(const windex *ix, const registry *reg, const match_request *rq,
                           uint32_t *out)
{
    uint64_t mask = region_mask(rq, registry_regions(reg));
    size_t total = 0;
    for (unsigned m = 0; m < rq->n_models; m++) {
        const uint32_t *bs;
        total += index_model_buckets(ix, rq->models[m], &bs);
    }
    worker **cursors = mu_calloc(total ? total : 1, sizeof(*cursors));
    uint32_t *scratch =
        rq->placement == PLACE_PACK ? mu_calloc(rq->workers, sizeof(uint32_t)) : NULL;
    if (!cursors || (rq->placement == PLACE_PACK && !scratch)) {
        mu_free(cursors);
        mu_free(scratch);
        errno = ENOMEM;
        return 0;
    }
    stream groups[MAX_GROUPS];
    bool present[MAX_GROUPS] = {false};
    uint16_t min_class = index_uptime_class(rq->min_uptime);
    /* Lay the cursors out group by group: count per group, then fill. */
    size_t per_group[MAX_GROUPS] = {0};
    for (unsigned pass = 0; pass < 2; pass++) {
        size_t offset = 0;
        for (unsigned g = 0; pass == 1 && g < MAX_GROUPS; g++) {
            groups[g] =
                (stream){.rq = rq, .ix = ix, .cur = cursors + offset, .min_class = min_class};
            offset += per_group[g];
        }
        for (unsigned m = 0; m < rq->n_models; m++) {
            const uint32_t *bs;
            size_t nb = index_model_buckets(ix, rq->models[m], &bs);
            for (size_t i = 0; i < nb; i++) {
                const ix_bucket *b = index_bucket(ix, bs[i]);
                if (!b->count || b->tier < rq->min_tier || b->gpus < rq->gpus_per_worker ||
                    !region_ok(mask, b->region))
                    continue;
                unsigned g = group_of(b->region);
                if (pass == 0) {
                    per_group[g]++;
                    continue;
                }
                worker *w =
                    cursor_fit(&groups[g], index_first_under(ix, bs[i], rq->max_price_uusd));
                if (w) {
                    groups[g].cur[groups[g].n_cur++] = w;
                    present[g] = true;
                }
            }
        }
    }
    size_t n = select_members(rq, groups, present, out, scratch);
    mu_free(cursors);
    mu_free(scratch);
    return n;
}

size_t match_find(const windex *ix, const registry *reg, const match_request *rq, uint32_t *out)
{
    size_t n = find_indexed(ix, reg, rq, out);
    return n >= rq->min_workers && n > 0 ? n : 0;
}

static int naive_cmp(const void *a, const void *b, void *rq)
{
    return cand_compare(rq, *(worker *const *)a, *(worker *const *)b);
}

size_t match_find_naive(const registry *reg, const match_request *rq, uint32_t *out)
{
    uint64_t mask = region_mask(rq, registry_regions(reg));
    size_t n_all = registry_count(reg);
    worker **all = mu_calloc(n_all ? n_all : 1, sizeof(*all));
    uint32_t *scratch = mu_calloc(rq->workers ? rq->workers : 1, sizeof(uint32_t));
    size_t per_group[MAX_GROUPS] = {0};
    if (!all || !scratch) {
        mu_free(all);
        mu_free(scratch);
        errno = ENOMEM;
        return 0;
    }
    /* Scan: every worker that could serve, grouped by region. */
    size_t k = 0;
    for (size_t i = 0; i < n_all; i++) {
        worker *w = (worker *)registry_at(reg, i);
        if (index_eligible(w) && model_wanted(rq, w->model_idx) &&
            w->gpu_count >= rq->gpus_per_worker && w->tier >= rq->min_tier &&
            region_ok(mask, w->region_idx) && dynamic_ok(rq, w)) {
            all[k++] = w;
            per_group[group_of(w->region_idx)]++;
        }
    }
    /* Sort by (group, candidate order) so each group is a sorted run. */
    worker **sorted = mu_calloc(k ? k : 1, sizeof(*sorted));
    if (!sorted) {
        mu_free(all);
        mu_free(scratch);
        errno = ENOMEM;
        return 0;
    }
    stream groups[MAX_GROUPS];
    bool present[MAX_GROUPS] = {false};
    size_t fill[MAX_GROUPS], offset = 0;
    for (unsigned g = 0; g < MAX_GROUPS; g++) {
        groups[g] = (stream){.rq = rq, .arr = sorted + offset, .n_arr = per_group[g]};
        fill[g] = offset;
        present[g] = per_group[g] > 0;
        offset += per_group[g];
    }
    for (size_t i = 0; i < k; i++)
        sorted[fill[group_of(all[i]->region_idx)]++] = all[i];
    for (unsigned g = 0; g < MAX_GROUPS; g++)
        if (per_group[g] > 1)
            qsort_r(groups[g].arr, per_group[g], sizeof(worker *), naive_cmp, (void *)rq);
    size_t n = select_members(rq, groups, present, out, scratch);
    mu_free(sorted);
    mu_free(all);
    mu_free(scratch);
    return n >= rq->min_workers && n > 0 ? n : 0;
}

/* --- validation and words ---------------------------------------------------------------- */

int match_validate(const match_request *rq, const catalog *cat, mu_error *errp)
{
    if (rq->n_models == 0 || rq->n_models > MATCH_MAX_MODELS)
        return errprintf(errp, "name 1 to %d GPU models", MATCH_MAX_MODELS);
    for (unsigned i = 0; i < rq->n_models; i++) {
        const gpu_model *m = catalog_at(cat, rq->models[i]);
        if (!m)
            return errprintf(errp, "unknown GPU model");
        if (m->cls == GPU_CLASS_CPU)
            return errprintf(errp, "\"%s\" is not a GPU: clusters are made of GPU workers",
                             m->name);
    }
    if (rq->gpus_per_worker < 1 || rq->gpus_per_worker > WORKER_MAX_DEVICES)
        return errprintf(errp, "GPUs per worker must be 1..%d", WORKER_MAX_DEVICES);
    if (rq->workers < 1 || rq->workers > MATCH_MAX_WORKERS)
        return errprintf(errp, "workers must be 1..%d", MATCH_MAX_WORKERS);
    if (rq->min_workers < 1 || rq->min_workers > rq->workers)
        return errprintf(errp, "the minimum count must be 1..%u (the workers asked for)",
                         rq->workers);
    if (rq->min_tier < TIER_LOW || rq->min_tier >= TIER_COUNT)
        return errprintf(errp, "the bandwidth tier must be low, medium, high or ultra");
    if (!(rq->min_uptime >= 0.0f && rq->min_uptime <= 1.0f))
        return errprintf(errp, "minimum uptime must be between 0 and 1");
    if (rq->max_price_uusd > PRICING_MAX_UUSD)
        return errprintf(errp, "maximum price must be at most 1000 USD per GPU hour");
    if (rq->placement != PLACE_PACK && rq->placement != PLACE_SPREAD)
        return errprintf(errp, "placement must be pack or spread");
    if (rq->n_countries > MATCH_MAX_COUNTRIES)
        return errprintf(errp, "at most %d countries", MATCH_MAX_COUNTRIES);
    return 0;
}

void match_describe(const match_request *rq, const catalog *cat, char *out, size_t n)
{
    size_t len = (size_t)snprintf(out, n, "%ux ", rq->gpus_per_worker);
    for (unsigned i = 0; i < rq->n_models && len < n; i++) {
        const gpu_model *m = catalog_at(cat, rq->models[i]);
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? "/" : "", m ? m->name : "?");
    }
}

/* Append SEP then S to buf (size n), cutting what does not fit. */
static void append(char *buf, size_t n, const char *sep, const char *s)
{
    size_t len = strlen(buf);
    if (len < n)
        snprintf(buf + len, n - len, "%s%s", sep, s);
}

/* " in europe, asia-east" (or the countries). */
static void describe_where(const match_request *rq, const region_table *regions, char *out,
                           size_t n)
{
    out[0] = '\0';
    if (rq->n_countries) {
        for (unsigned i = 0; i < rq->n_countries; i++)
            append(out, n, i ? ", " : " in ", rq->countries[i]);
        return;
    }
    bool first = true;
    for (unsigned r = 0; r < 64; r++) {
        if (!(rq->regions >> r & 1))
            continue;
        const char *name = regions_name_at(regions, r);
        append(out, n, first ? " in " : ", ", name ? name : "?");
        first = false;
    }
}

static size_t count_of(const windex *ix, const registry *reg, const match_request *rq,
                       uint32_t *buf)
{
    return find_indexed(ix, reg, rq, buf);
}

static void add_alt(match_explain *why, uint32_t available, const char *flags, const char *text)
{
    if (why->n_alt >= sizeof(why->alt) / sizeof(why->alt[0]))
        return;
    match_alternative *a = &why->alt[why->n_alt++];
    a->available = available;
    snprintf(a->flags, sizeof(a->flags), "%s", flags);
    snprintf(a->text, sizeof(a->text), "%s", text);
}

void match_explain_failure(const windex *ix, const registry *reg, const match_request *rq,
                           match_explain *why)
{
    memset(why, 0, sizeof(*why));
    const catalog *cat = registry_catalog(reg);
    const region_table *regions = registry_regions(reg);
    uint32_t *buf = mu_calloc(rq->workers ? rq->workers : 1, sizeof(uint32_t));
    if (!buf) {
        snprintf(why->text, sizeof(why->text), "out of memory while explaining");
        return;
    }
    /* Apply the constraints one by one; the first that leaves too few
     * workers is the one that ran out. */
    match_request st = *rq;
    st.regions = 0;
    st.n_countries = 0;
    st.min_tier = TIER_LOW;
    st.min_uptime = 0;
    st.max_price_uusd = 0;
    st.placement = PLACE_SPREAD;
    char shape[128], where[128], part[128];
    match_describe(rq, cat, shape, sizeof(shape));
    describe_where(rq, regions, where, sizeof(where));
    char desc[256];
    snprintf(desc, sizeof(desc), "%s", shape);
    size_t c = count_of(ix, reg, &st, buf);
    const char *ran_out = "model";
    size_t available = c;
    if (c >= rq->workers) {
        st.regions = rq->regions;
        memcpy(st.countries, rq->countries, sizeof(st.countries));
        st.n_countries = rq->n_countries;
        available = c = count_of(ix, reg, &st, buf);
        ran_out = "region";
        append(desc, sizeof(desc), "", where);
    }
    if (c >= rq->workers) {
        st.min_tier = rq->min_tier;
        available = c = count_of(ix, reg, &st, buf);
        ran_out = "tier";
        snprintf(part, sizeof(part), " at tier %s or better", tier_name(rq->min_tier));
        append(desc, sizeof(desc), "", part);
    }
    if (c >= rq->workers) {
        st.min_uptime = rq->min_uptime;
        available = c = count_of(ix, reg, &st, buf);
        ran_out = "uptime";
        snprintf(part, sizeof(part), " with uptime >= %.2f", (double)rq->min_uptime);
        append(desc, sizeof(desc), "", part);
    }
    if (c >= rq->workers) {
        st.max_price_uusd = rq->max_price_uusd;
        available = c = count_of(ix, reg, &st, buf);
        ran_out = "price";
        char price[32];
        pricing_format(rq->max_price_uusd, price, sizeof(price));
        snprintf(part, sizeof(part), " at most %s USD per GPU hour", price);
        append(desc, sizeof(desc), "", part);
    }
    if (c >= rq->workers) {
        st.placement = rq->placement;
        available = c = count_of(ix, reg, &st, buf);
        ran_out = "placement";
        append(desc, sizeof(desc), "", " in any one region (pack)");
    }
    snprintf(why->constraint, sizeof(why->constraint), "%s", ran_out);
    snprintf(why->text, sizeof(why->text), "%zu of %u workers with %.200s",
             available < rq->workers ? available : rq->workers, rq->workers, desc);
    /* What the request exactly as asked could get (the stages above each
     * relax whatever follows them). */
    size_t full = count_of(ix, reg, rq, buf);
    why->available = (uint32_t)(full < rq->workers ? full : rq->workers);

    /* Nearer requests that would succeed: a lower tier, other regions,
     * spread instead of pack, a lower uptime or a higher price, fewer
     * workers. Each is the request as asked with one thing changed. */
    char flags[96], text[160];
    for (int t = (int)rq->min_tier - 1; t >= TIER_LOW; t--) {
        match_request alt = *rq;
        alt.min_tier = (tier)t;
        size_t k = count_of(ix, reg, &alt, buf);
        if (k >= rq->workers) {
            snprintf(flags, sizeof(flags), "--bandwidth %s", tier_name((tier)t));
            snprintf(text, sizeof(text), "%u worker%s at tier %s or better", rq->workers,
                     PLURAL(rq->workers), tier_name((tier)t));
            add_alt(why, rq->workers, flags, text);
            break;
        }
    }
    if (rq->regions || rq->n_countries) {
        size_t added = 0;
        for (unsigned r = 0; r < regions_count(regions) && r < 64 && added < 2; r++) {
            if (rq->regions >> r & 1)
                continue;
            match_request alt = *rq;
            alt.regions = 1ull << r;
            alt.n_countries = 0;
            if (count_of(ix, reg, &alt, buf) >= rq->workers) {
                snprintf(flags, sizeof(flags), "--region %s", regions_name_at(regions, r));
                snprintf(text, sizeof(text), "%u worker%s in %s", rq->workers, PLURAL(rq->workers),
                         regions_name_at(regions, r));
                add_alt(why, rq->workers, flags, text);
                added++;
            }
        }
    }
    if (rq->placement == PLACE_PACK) {
        match_request alt = *rq;
        alt.placement = PLACE_SPREAD;
        if (count_of(ix, reg, &alt, buf) >= rq->workers)
            add_alt(why, rq->workers, "--placement spread",
                    "the same workers spread across regions");
    }
    if (!strcmp(ran_out, "uptime")) {
        static const float steps[] = {0.9f, 0.8f, 0.5f, 0.0f};
        for (size_t i = 0; i < 4; i++) {
            if (steps[i] >= rq->min_uptime)
                continue;
            match_request alt = *rq;
            alt.min_uptime = steps[i];
            if (count_of(ix, reg, &alt, buf) >= rq->workers) {
                snprintf(flags, sizeof(flags), "--min-uptime %.2f", (double)steps[i]);
                snprintf(text, sizeof(text), "%u worker%s with uptime >= %.2f", rq->workers,
                         PLURAL(rq->workers), (double)steps[i]);
                add_alt(why, rq->workers, flags, text);
                break;
            }
        }
    }
    if (!strcmp(ran_out, "price")) {
        match_request alt = *rq;
        alt.max_price_uusd = 0;
        size_t k = count_of(ix, reg, &alt, buf);
        if (k >= rq->workers) {
            uint32_t top = 0;
            for (size_t i = 0; i < k; i++) {
                const worker *w = registry_at(reg, buf[i]);
                if (w->price_uusd > top)
                    top = w->price_uusd;
            }
            char price[32];
            pricing_format(top, price, sizeof(price));
            snprintf(flags, sizeof(flags), "--max-price %s", price);
            snprintf(text, sizeof(text), "%u worker%s at up to %s USD per GPU hour", rq->workers,
                     PLURAL(rq->workers), price);
            add_alt(why, rq->workers, flags, text);
        }
    }
    if (why->available > 0 && why->available < rq->workers) {
        snprintf(flags, sizeof(flags), "--workers %u", why->available);
        snprintf(text, sizeof(text), "%u worker%s as asked", why->available,
                 why->available == 1 ? "" : "s");
        add_alt(why, why->available, flags, text);
    }
    mu_free(buf);
}
