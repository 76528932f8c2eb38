/* request.c - see request.h. */
#include "request.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pricing.h"

int request_from_spec(const Muster__ClusterSpec *spec, const catalog *cat,
                      const region_table *regions, bool for_search, match_request *rq,
                      uint32_t *hours, mu_error *errp)
{
    memset(rq, 0, sizeof(*rq));
    if (!spec)
        return errprintf(errp, "the request has no spec");
    if (spec->n_gpu_models > MATCH_MAX_MODELS)
        return errprintf(errp, "name at most %d GPU models", MATCH_MAX_MODELS);
    if (!for_search && spec->n_gpu_models == 0)
        return errprintf(errp, "name the GPU model(s) wanted");
    for (size_t i = 0; i < spec->n_gpu_models; i++) {
        const gpu_model *m = catalog_find(cat, spec->gpu_models[i]);
        if (!m) {
            char hint[160];
            catalog_hint(cat, spec->gpu_models[i], hint, sizeof(hint));
            return errprintf(errp, "unknown GPU model \"%.40s\"%s", spec->gpu_models[i], hint);
        }
        if (m->cls == GPU_CLASS_CPU)
            return errprintf(errp, "\"%s\" is not a GPU", m->name);
        uint16_t idx = (uint16_t)catalog_index(cat, m);
        bool dup = false;
        for (unsigned k = 0; k < rq->n_models; k++)
            dup |= rq->models[k] == idx;
        if (!dup)
            rq->models[rq->n_models++] = idx;
    }
    rq->gpus_per_worker = (uint16_t)(spec->gpus_per_worker ? spec->gpus_per_worker : 1);
    if (spec->gpus_per_worker > WORKER_MAX_DEVICES)
        return errprintf(errp, "GPUs per worker must be 1..%d", WORKER_MAX_DEVICES);

    if (!for_search) {
        if (spec->workers && spec->total_gpus)
            return errprintf(errp, "give the number of workers or of total GPUs, not both");
        uint32_t workers = spec->workers;
        if (spec->total_gpus) {
            if (spec->total_gpus % rq->gpus_per_worker)
                return errprintf(errp, "%u GPUs is not a whole number of workers of %u GPUs",
                                 spec->total_gpus, rq->gpus_per_worker);
            workers = spec->total_gpus / rq->gpus_per_worker;
        }
        if (workers < 1 || workers > MATCH_MAX_WORKERS)
            return errprintf(errp, "workers must be 1..%d", MATCH_MAX_WORKERS);
        rq->workers = workers;
        rq->min_workers = spec->min_workers ? spec->min_workers : workers;
        if (rq->min_workers > workers)
            return errprintf(errp, "the minimum (%u) is more than the workers asked for (%u)",
                             spec->min_workers, workers);
        if (!*spec->placement || !strcmp(spec->placement, "pack"))
            rq->placement = PLACE_PACK;
        else if (!strcmp(spec->placement, "spread"))
            rq->placement = PLACE_SPREAD;
        else
            return errprintf(errp, "placement \"%.20s\" is not pack or spread", spec->placement);
        if (hours) {
            if (spec->hours < 1 || spec->hours > REQUEST_MAX_HOURS)
                return errprintf(errp, "duration must be 1..%u hours", REQUEST_MAX_HOURS);
            *hours = spec->hours;
        }
    }

    rq->min_tier = TIER_LOW;
    if (*spec->min_tier) {
        tier t;
        if (tier_parse(spec->min_tier, &t) < 0 || t == TIER_NONE)
            return errprintf(errp, "bandwidth tier \"%.20s\" is not low, medium, high or ultra",
                             spec->min_tier);
        rq->min_tier = t;
    }
    for (size_t i = 0; i < spec->n_regions; i++) {
        int r = regions_index(regions, spec->regions[i]);
        if (r < 0 || r >= 64) {
            char known[256] = "";
            for (size_t k = 0; k < regions_count(regions); k++) {
                size_t len = strlen(known);
                snprintf(known + len, sizeof(known) - len, "%s%s", k ? ", " : "",
                         regions_name_at(regions, k));
            }
            return errprintf(errp, "unknown region \"%.30s\" (regions: %s)", spec->regions[i],
                             known);
        }
        rq->regions |= 1ull << r;
    }
    if (spec->n_countries > MATCH_MAX_COUNTRIES)
        return errprintf(errp, "name at most %d countries", MATCH_MAX_COUNTRIES);
    for (size_t i = 0; i < spec->n_countries; i++) {
        const char *cc = spec->countries[i];
        if (!regions_of_country(regions, cc))
            return errprintf(errp, "unknown country code \"%.8s\" (ISO 3166-1 alpha-2, e.g. DE)",
                             cc);
        rq->countries[rq->n_countries][0] = (char)toupper((unsigned char)cc[0]);
        rq->countries[rq->n_countries][1] = (char)toupper((unsigned char)cc[1]);
        rq->countries[rq->n_countries][2] = '\0';
        rq->n_countries++;
    }
    if (!(spec->min_uptime >= 0.0 && spec->min_uptime <= 1.0))
        return errprintf(errp, "minimum uptime must be between 0 and 1");
    rq->min_uptime = (float)spec->min_uptime;
    if (spec->max_price_micro_usd > PRICING_MAX_UUSD)
        return errprintf(errp, "maximum price must be at most 1000 USD per GPU hour");
    rq->max_price_uusd = (uint32_t)spec->max_price_micro_usd;
    /* Only verified workers are in the index: an unverified GPU is not
     * hired, whoever asks. */
    if (spec->include_unverified && !for_search)
        return errprintf(errp, "include_unverified is not supported: only workers that passed "
                               "proof-of-work verification are hired");
    if (for_search)
        return 0;
    return match_validate(rq, cat, errp);
}

void request_to_spec(const match_request *rq, uint32_t hours, const catalog *cat,
                     const region_table *regions, Muster__ClusterSpec *spec, spec_storage *storage)
{
    muster__cluster_spec__init(spec);
    for (unsigned i = 0; i < rq->n_models; i++)
        storage->models[i] = catalog_at(cat, rq->models[i])->name;
    spec->gpu_models = storage->models;
    spec->n_gpu_models = rq->n_models;
    spec->gpus_per_worker = rq->gpus_per_worker;
    spec->workers = rq->workers;
    spec->min_workers = rq->min_workers;
    spec->min_tier = (char *)tier_name(rq->min_tier);
    size_t nr = 0;
    for (unsigned r = 0; r < 64; r++)
        if (rq->regions >> r & 1 && regions_name_at(regions, r))
            storage->regions[nr++] = (char *)regions_name_at(regions, r);
    spec->regions = storage->regions;
    spec->n_regions = nr;
    for (unsigned i = 0; i < rq->n_countries; i++)
        storage->countries[i] = (char *)rq->countries[i];
    spec->countries = storage->countries;
    spec->n_countries = rq->n_countries;
    spec->min_uptime = rq->min_uptime;
    spec->max_price_micro_usd = rq->max_price_uusd;
    spec->placement = rq->placement == PLACE_SPREAD ? "spread" : "pack";
    spec->hours = hours;
}
