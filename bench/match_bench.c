/* match_bench.c - how fast the scheduler core matches a 64-GPU request
 * among a million registered workers, against the naive matcher measured in
 * the same run (DESIGN.md, performance targets).
 *
 * It builds a scheduler core on the real catalog and region table, registers
 * a synthetic fleet through sched_register (with uptime histories made of
 * registrations, goodbyes and heartbeats at earlier times), then times:
 *
 *   - match_find (the indexed matcher) on R seeded 64-GPU requests;
 *   - match_find_naive (a scan of the fleet) on the first K of them, and
 *     checks that both return exactly the same members;
 *   - sched_cluster_create + sched_cluster_release cycles (index updates
 *     included), with a few clusters live at a time;
 *
 * and reports percentiles, the speedup, and memory per worker. It asserts
 * no timing target (machines are noisy): it reports them with their
 * baseline. It exits non-zero when the two matchers disagree, a match breaks
 * its request, or a scheduler invariant breaks.
 *
 * The core is pure and reads no clock; this program is a shell and does:
 * CLOCK_MONOTONIC around each call measured, and a fixed virtual `now` for
 * the core.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "ids.h"
#include "regions.h"
#include "scheduler.h"
#include "strutil.h"
#include "tiers.h"

#ifndef MUSTER_SOURCE_DATA_DIR
#define MUSTER_SOURCE_DATA_DIR MUSTER_DATA_DIR
#endif

#define DEFAULT_WORKERS        1000000u
#define DEFAULT_REQUESTS       2000u
#define DEFAULT_NAIVE_REQUESTS 50u
#define DEFAULT_CYCLES         2000u
#define DEFAULT_LIVE           16u
#define DEFAULT_SEED           20240601u
#define MAX_WORKERS            20000000u
#define MAX_REQUESTS           10000000u
#define MAX_LIVE               256u

/* The core's virtual clock: 2026-01-01T00:00:00Z, in UNIX milliseconds. */
#define NOW_MS  1767225600000ull
#define HOUR_MS 3600000ull

/* --- a seeded PRNG of our own (splitmix64) ------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    r->s += 0x9e3779b97f4a7c15ull;
    return mix64(r->s);
}

/* Uniform in [0, n) (n > 0; the modulo bias is below 2^-40 here). */
static uint32_t rng_below(rng *r, uint32_t n)
{
    return (uint32_t)(rng_next(r) % n);
}

/* Uniform in [lo, hi] (lo <= hi). */
static uint32_t rng_range(rng *r, uint32_t lo, uint32_t hi)
{
    return lo + rng_below(r, hi - lo + 1);
}

/* An independent stream for worker n: 0 its id, 1 its hardware and place,
 * 2 its history. Regenerated whenever needed, so nothing is stored. */
static rng rng_for(uint64_t seed, uint64_t n, unsigned stream)
{
    return (rng){mix64(seed ^ mix64(n << 2 | stream))};
}

static uint32_t pick(rng *r, const uint32_t *weights, size_t n)
{
    uint32_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += weights[i];
    uint32_t x = rng_below(r, total);
    for (size_t i = 0; i < n; i++) {
        if (x < weights[i])
            return (uint32_t)i;
        x -= weights[i];
    }
    return (uint32_t)(n - 1);
}

/* --- the synthetic fleet -----------------------------------------------------------------
 *
 * SYNTHETIC: a guess at what a decentralized GPU network looks like, not a
 * measurement of one. Per mille of workers:
 *
 *   consumer  RTX 4090 235, RTX 3090 140, RTX 3080 75, RTX 3060 75, RTX 4080 60,
 *             RTX 4070 50, RTX 2080 Ti 45, RTX 5090 30, RTX 3070 25
 *   datacenter A100 80GB 50, H100 SXM 40, T4 40, L40S 30, A10 30, V100 30,
 *             A100 40GB 10, H200 10
 *   apple     M2 Max 15, M1 Max 5;  no GPU (CPU only) 5
 *
 * GPUs per worker: consumer 1 (80%), 2 (12%), 4 (6%), 8 (2%); datacenter 1
 * (35%), 2 (10%), 4 (20%), 8 (35%); Apple 1. Overall about 70% 1, 20% 2 or
 * 4, 10% 8, the 8-GPU hosts mostly datacenter models.
 *
 * Countries: 40 in 10 regions, weighted towards the US, China, Germany and
 * India (table below); 1% of workers give no country (region unknown).
 *
 * Bandwidth tier (down and up drawn inside the tier's default thresholds):
 * consumer none 10%, low 35%, medium 30%, high 15%, ultra 10%; datacenter
 * none 2%, low 8%, medium 25%, high 30%, ultra 35%. Tier none is registered
 * but not hireable. Prices are the defaults (price_uusd = 0).
 *
 * Histories (see `profile`): 10% join now (uptime is the 0.5 prior), 65%
 * joined 1 hour to 30 days ago and stayed online, 25% joined 2 to 30 days
 * ago, left, and came back later: uptime from about 0.3 to 1.0.
 */
typedef struct model_mix {
    const char *name;  /* catalog name */
    const char *claim; /* what an agent reports (NVML name) */
    uint32_t permille;
    const gpu_model *m; /* resolved at start */
} model_mix;

static const model_mix model_table[] = {
    {"RTX 4090", "NVIDIA GeForce RTX 4090", 235, NULL},
    {"RTX 3090", "NVIDIA GeForce RTX 3090", 140, NULL},
    {"RTX 3080", "NVIDIA GeForce RTX 3080", 75, NULL},
    {"RTX 3060", "NVIDIA GeForce RTX 3060", 75, NULL},
    {"RTX 4080", "NVIDIA GeForce RTX 4080", 60, NULL},
    {"RTX 4070", "NVIDIA GeForce RTX 4070", 50, NULL},
    {"RTX 2080 Ti", "NVIDIA GeForce RTX 2080 Ti", 45, NULL},
    {"RTX 5090", "NVIDIA GeForce RTX 5090", 30, NULL},
    {"RTX 3070", "NVIDIA GeForce RTX 3070", 25, NULL},
    {"A100 80GB", "NVIDIA A100-SXM4-80GB", 50, NULL},
    {"H100 SXM", "NVIDIA H100 80GB HBM3", 40, NULL},
    {"T4", "Tesla T4", 40, NULL},
    {"L40S", "NVIDIA L40S", 30, NULL},
    {"A10", "NVIDIA A10", 30, NULL},
    {"V100", "Tesla V100-SXM2-16GB", 30, NULL},
    {"A100 40GB", "NVIDIA A100-SXM4-40GB", 10, NULL},
    {"H200", "NVIDIA H200", 10, NULL},
    {"M2 Max", "Apple M2 Max", 15, NULL},
    {"M1 Max", "Apple M1 Max", 5, NULL},
    {"CPU", NULL, 5, NULL}, /* no GPU: registered, never matched */
};
#define N_MODELS (sizeof(model_table) / sizeof(model_table[0]))

typedef struct country_mix {
    const char *code; /* "" : the agent gave none */
    uint32_t weight;  /* per ten thousand */
} country_mix;

static const country_mix country_table[] = {
    {"US", 1500}, {"CN", 900}, {"DE", 700}, {"IN", 550}, {"RU", 400}, {"BR", 350}, {"GB", 350},
    {"JP", 330},  {"FR", 320}, {"CA", 300}, {"KR", 280}, {"PL", 250}, {"NL", 240}, {"UA", 200},
    {"TR", 190},  {"VN", 180}, {"ID", 170}, {"AU", 170}, {"MX", 160}, {"TW", 150}, {"ES", 150},
    {"IT", 150},  {"SG", 140}, {"AR", 120}, {"SE", 110}, {"TH", 110}, {"PH", 100}, {"ZA", 100},
    {"NG", 90},   {"PK", 90},  {"EG", 80},  {"CO", 80},  {"CL", 70},  {"MY", 70},  {"AE", 70},
    {"SA", 60},   {"KE", 60},  {"KZ", 60},  {"NZ", 50},  {"UZ", 40},  {"", 100},
};
#define N_COUNTRIES (sizeof(country_table) / sizeof(country_table[0]))

static const uint32_t gpus_consumer[] = {80, 12, 6, 2}; /* 1, 2, 4, 8 GPUs */
static const uint32_t gpus_datacenter[] = {35, 10, 20, 35};
static const uint32_t tier_consumer[] = {10, 35, 30, 15, 10}; /* none..ultra */
static const uint32_t tier_datacenter[] = {2, 8, 25, 30, 35};

/* History slots: hours before NOW, oldest first. */
static const uint32_t slot_age_h[] = {720, 504, 336, 240, 168, 120, 96, 72, 48, 36,
                                      24,  18,  12,  8,   6,   4,   3,  2,  1,  0};
#define N_SLOTS   (sizeof(slot_age_h) / sizeof(slot_age_h[0]))
#define SLOT_NONE 255

static uint64_t slot_time(unsigned slot)
{
    return NOW_MS - slot_age_h[slot] * HOUR_MS;
}

/* When worker n registers, says goodbye, and registers again (slots). */
typedef struct profile {
    uint8_t reg, bye, rereg;
} profile;

static profile profile_of(uint64_t seed, uint32_t n)
{
    rng r = rng_for(seed, n, 2);
    profile p = {SLOT_NONE, SLOT_NONE, SLOT_NONE};
    uint32_t kind = rng_below(&r, 100);
    if (kind < 10) { /* joins now */
        p.reg = N_SLOTS - 1;
    } else if (kind < 75) { /* steady: 30 days to 1 hour ago */
        p.reg = (uint8_t)rng_range(&r, 0, N_SLOTS - 2);
    } else { /* flaky: joined at least 2 days ago, left, came back */
        p.reg = (uint8_t)rng_range(&r, 0, 8);
        p.bye = (uint8_t)rng_range(&r, p.reg + 1u, N_SLOTS - 3);
        p.rereg = (uint8_t)rng_range(&r, p.bye + 1u, N_SLOTS - 2);
    }
    return p;
}

static void worker_id(uint64_t seed, uint32_t n, mu_id *id)
{
    rng r = rng_for(seed, n, 0);
    uint64_t a = rng_next(&r), b = rng_next(&r);
    memcpy(id->b, &a, 8);
    memcpy(id->b + 8, &b, 8);
    id->b[6] = (uint8_t)((id->b[6] & 0x0f) | 0x40); /* version 4 */
    id->b[8] = (uint8_t)((id->b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

/* A registration as an agent would send it. */
typedef struct wgen {
    char id[ID_TEXT_LEN];
    char host[32];
    char fingerprint[17];
    char bus[WORKER_MAX_DEVICES][16];
    worker_device_spec devs[WORKER_MAX_DEVICES];
    worker_spec spec;
} wgen;

static void gen_worker(uint64_t seed, const model_mix *models, const tier_table *tiers, uint32_t n,
                       wgen *g)
{
    mu_id id;
    worker_id(seed, n, &id);
    id_format(&id, g->id);
    rng r = rng_for(seed, n, 1);
    uint32_t weights[N_MODELS];
    for (size_t i = 0; i < N_MODELS; i++)
        weights[i] = models[i].permille;
    const model_mix *mm = &models[pick(&r, weights, N_MODELS)];
    const gpu_model *m = mm->m;
    bool dc = m->cls == GPU_CLASS_DATACENTER;
    static const unsigned counts[] = {1, 2, 4, 8};
    unsigned gpus = m->cls == GPU_CLASS_CPU     ? 0
                    : m->cls == GPU_CLASS_APPLE ? 1
                    : dc                        ? counts[pick(&r, gpus_datacenter, 4)]
                                                : counts[pick(&r, gpus_consumer, 4)];
    uint32_t cw[N_COUNTRIES];
    for (size_t i = 0; i < N_COUNTRIES; i++)
        cw[i] = country_table[i].weight;
    const char *country = country_table[pick(&r, cw, N_COUNTRIES)].code;
    tier t = (tier)pick(&r, dc ? tier_datacenter : tier_consumer, TIER_COUNT);
    uint32_t down, up;
    if (t == TIER_NONE) {
        down = rng_range(&r, 5, tiers->min_down[TIER_LOW] - 1);
        up = rng_range(&r, 1, tiers->min_up[TIER_LOW] - 1);
    } else if (t == TIER_ULTRA) {
        down = rng_range(&r, tiers->min_down[t], 10000);
        up = rng_range(&r, tiers->min_up[t], 10000);
    } else {
        down = rng_range(&r, tiers->min_down[t], tiers->min_down[t + 1] - 1);
        up = rng_range(&r, tiers->min_up[t], tiers->min_up[t + 1] - 1);
    }
    snprintf(g->host, sizeof(g->host), "gpu-%02x%02x%02x%02x", id.b[0], id.b[1], id.b[2], id.b[3]);
    uint64_t fp = rng_next(&r);
    snprintf(g->fingerprint, sizeof(g->fingerprint), "%016llx", (unsigned long long)fp);
    for (unsigned i = 0; i < gpus; i++) {
        snprintf(g->bus[i], sizeof(g->bus[i]), "0000:%02x:00.0", (unsigned)(uint8_t)(i + 1));
        g->devs[i] = (worker_device_spec){
            .model_claim = mm->claim,
            .pci_vendor_id = m->pci_vendor_id,
            .pci_device_id = m->n_pci_device_ids ? m->pci_device_ids[0] : 0,
            .pci_bus_id = g->bus[i],
            .vram_mib = (uint64_t)(m->vram_gib * 1024.0),
            .driver_version = m->pci_vendor_id == 0x10de ? "550.54.15" : "",
            .link_speed_gbps = dc ? 32.0f : 16.0f,
        };
    }
    g->spec = (worker_spec){
        .id = g->id,
        .hostname = g->host,
        .fingerprint = g->fingerprint,
        .devices = g->devs,
        .n_devices = gpus,
        .cpu_cores = dc ? 64 : 8u << rng_below(&r, 3),
        .memory_mib = (dc ? 512ull : 16ull << rng_below(&r, 3)) * 1024,
        .country = country,
        .bw_down_mbps = down,
        .bw_up_mbps = up,
        .agent_version = "0.1.0",
        .price_uusd = 0,
    };
}

/* --- requests ------------------------------------------------------------------------------ */

typedef enum kind {
    K_4090_SPREAD, /* 64 x 1 RTX 4090, anywhere, spread */
    K_H100_PACK,   /* 8 x 8 H100 (or H100/H200), one region */
    K_A100_4,      /* 16 x 4 A100 80GB, pack or spread */
    K_3090_EUROPE, /* 64 x 1 RTX 3090 in europe at tier medium */
    K_PRICE_CAP,   /* 64 x 1 RTX 4090/4080 at most 0.55 USD per GPU hour */
    K_COUNTRIES,   /* 32 x 2 RTX 3090/3080 in DE, FR, NL, PL, uptime >= 0.9 */
    K_SCARCE,      /* 64 x 1 V100 in Kenya at tier ultra, uptime >= 0.9: never met */
    K_COUNT
} kind;

static const char *const kind_names[K_COUNT] = {
    "4090_x64_spread",        "h100_8x8_pack",  "a100_4x16",
    "3090_x64_europe_medium", "4090_x64_price", "3090_2x32_countries",
    "v100_x64_kenya_ultra",
};
static const uint32_t kind_weights[K_COUNT] = {30, 15, 15, 15, 10, 10, 5};

typedef struct bench_request {
    match_request rq;
    kind k;
} bench_request;

typedef struct env {
    catalog *cat;
    region_table *regions;
    tier_table tiers;
    model_mix models[N_MODELS];
} env;

static uint16_t model_index(const env *e, const char *name)
{
    const gpu_model *m = catalog_find(e->cat, name);
    return (uint16_t)catalog_index(e->cat, m);
}

static uint64_t region_bit(const env *e, const char *name)
{
    return 1ull << regions_index(e->regions, name);
}

static void set_models(const env *e, match_request *rq, const char *a, const char *b)
{
    rq->models[0] = model_index(e, a);
    rq->n_models = 1;
    if (b)
        rq->models[rq->n_models++] = model_index(e, b);
}

static bench_request gen_request(const env *e, rng *r)
{
    bench_request br = {.k = (kind)pick(r, kind_weights, K_COUNT)};
    match_request *rq = &br.rq;
    rq->min_tier = TIER_LOW;
    rq->placement = PLACE_SPREAD;
    rq->min_uptime = rng_below(r, 2) ? 0.5f : 0.0f;
    switch (br.k) {
    case K_4090_SPREAD:
        set_models(e, rq, "RTX 4090", NULL);
        rq->gpus_per_worker = 1;
        rq->workers = 64;
        break;
    case K_H100_PACK:
        set_models(e, rq, "H100 SXM", rng_below(r, 3) == 0 ? "H200" : NULL);
        rq->gpus_per_worker = 8;
        rq->workers = 8;
        rq->min_tier = TIER_MEDIUM;
        rq->placement = PLACE_PACK;
        break;
    case K_A100_4:
        set_models(e, rq, "A100 80GB", NULL);
        rq->gpus_per_worker = 4;
        rq->workers = 16;
        rq->placement = rng_below(r, 2) ? PLACE_PACK : PLACE_SPREAD;
        break;
    case K_3090_EUROPE:
        set_models(e, rq, "RTX 3090", NULL);
        rq->gpus_per_worker = 1;
        rq->workers = 64;
        rq->min_tier = TIER_MEDIUM;
        rq->regions = region_bit(e, "europe");
        break;
    case K_PRICE_CAP:
        set_models(e, rq, "RTX 4090", "RTX 4080");
        rq->gpus_per_worker = 1;
        rq->workers = 64;
        rq->max_price_uusd = 550000; /* 0.55 USD: 4090s at tier high and ultra cost more */
        break;
    case K_COUNTRIES: {
        static const char *const cc[] = {"DE", "FR", "NL", "PL"};
        set_models(e, rq, "RTX 3090", "RTX 3080");
        rq->gpus_per_worker = 2;
        rq->workers = 32;
        for (size_t i = 0; i < 4; i++)
            memcpy(rq->countries[i], cc[i], 3);
        rq->n_countries = 4;
        rq->min_uptime = 0.9f;
        break;
    }
    case K_SCARCE:
    default:
        set_models(e, rq, "V100", NULL);
        rq->gpus_per_worker = 1;
        rq->workers = 64;
        rq->min_tier = TIER_ULTRA;
        memcpy(rq->countries[0], "KE", 3);
        rq->n_countries = 1;
        rq->min_uptime = 0.9f;
        rq->placement = PLACE_PACK;
        break;
    }
    /* Sometimes a minimum instead of all or nothing. */
    rq->min_workers = rng_below(r, 4) == 0 ? rq->workers / 2 : rq->workers;
    return br;
}

/* --- measuring ------------------------------------------------------------------------------ */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct stats {
    size_t n;
    double p50, p90, p99, max, mean; /* microseconds */
} stats;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v (n > 0). */
static double rank(const double *v, size_t n, double p)
{
    size_t k = (size_t)ceil(p * (double)n);
    k = k < 1 ? 1 : k > n ? n : k;
    return v[k - 1];
}

static stats stats_of(const double *us, size_t n)
{
    stats s = {.n = n};
    if (!n)
        return s;
    double *v = malloc(n * sizeof(*v));
    if (!v) {
        fprintf(stderr, "match_bench: out of memory\n");
        exit(1);
    }
    memcpy(v, us, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    s.p50 = rank(v, n, 0.50);
    s.p90 = rank(v, n, 0.90);
    s.p99 = rank(v, n, 0.99);
    s.max = v[n - 1];
    s.mean = sum / (double)n;
    free(v);
    return s;
}

static double round2(double x)
{
    return (double)llround(x * 100.0) / 100.0;
}

static cJSON *stats_json(const stats *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)s->n);
    cJSON_AddNumberToObject(o, "p50", round2(s->p50));
    cJSON_AddNumberToObject(o, "p90", round2(s->p90));
    cJSON_AddNumberToObject(o, "p99", round2(s->p99));
    cJSON_AddNumberToObject(o, "max", round2(s->max));
    cJSON_AddNumberToObject(o, "mean", round2(s->mean));
    return o;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "match_bench: out of memory\n");
        exit(1);
    }
    return p;
}

/* Where the human summary goes: stdout, or stderr under --json. */
static FILE *human;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(human, fmt, ap);
    va_end(ap);
    fflush(human);
}

static void say_stats(const char *label, const stats *s)
{
    say("%-26s n=%-6zu p50 %9.1f  p90 %9.1f  p99 %9.1f  max %9.1f us\n", label, s->n, s->p50,
        s->p90, s->p99, s->max);
}

/* --- options --------------------------------------------------------------------------------- */

typedef struct options {
    uint32_t workers, requests, naive_requests, cycles, live;
    uint64_t seed;
    const char *data_dir;
    bool json;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: match_bench [options]\n"
            "\n"
            "Registers a synthetic fleet of GPU workers in a scheduler core built on the real\n"
            "catalog and region table, then measures, in one run:\n"
            "  - match_find (the indexed matcher) on seeded 64-GPU requests;\n"
            "  - match_find_naive (a scan of the fleet) on the first of those requests, and\n"
            "    checks that both matchers return the same members;\n"
            "  - sched_cluster_create + sched_cluster_release cycles;\n"
            "and reports latency percentiles, the speedup, and memory per worker. Timing\n"
            "targets are reported, never asserted. Exit status: 0 done, 1 the matchers\n"
            "disagreed or an invariant broke, 2 bad usage or data.\n"
            "\n"
            "options:\n"
            "  --workers N         workers to register (default %u, 1..%u)\n"
            "  --requests N        requests for the indexed matcher (default %u, 1..%u)\n"
            "  --naive-requests N  of those, how many the naive matcher also runs\n"
            "                      (default %u, at most --requests; 0 skips the baseline)\n"
            "  --cycles N          create/release cycles (default %u, 0 skips them)\n"
            "  --live N            clusters kept live during the cycles (default %u, 1..%u)\n"
            "  --seed N            seed of the fleet and the requests (default %u)\n"
            "  --data-dir DIR      where gpus.json and regions.json are\n"
            "                      (default %s)\n"
            "  --json              print one JSON object with every figure on stdout\n"
            "                      (the human summary goes to stderr)\n"
            "  -h, --help          show this and exit\n",
            DEFAULT_WORKERS, MAX_WORKERS, DEFAULT_REQUESTS, MAX_REQUESTS, DEFAULT_NAIVE_REQUESTS,
            DEFAULT_CYCLES, DEFAULT_LIVE, MAX_LIVE, DEFAULT_SEED, MUSTER_SOURCE_DATA_DIR);
}

static int parse_u32(const char *flag, const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t x;
    if (str_to_u64(v, min, max, &x) < 0) {
        fprintf(stderr, "match_bench: %s wants a whole number in %u..%u, not \"%s\"\n", flag, min,
                max, v);
        return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

/* 0: run; 1: help shown; -1: bad usage (said why). */
static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){DEFAULT_WORKERS, DEFAULT_REQUESTS, DEFAULT_NAIVE_REQUESTS, DEFAULT_CYCLES,
                   DEFAULT_LIVE,    DEFAULT_SEED,     MUSTER_SOURCE_DATA_DIR, false};
    bool naive_set = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--json")) {
            o->json = true;
            continue;
        }
        static const char *const valued[] = {"--workers", "--requests", "--naive-requests",
                                             "--cycles",  "--live",     "--seed",
                                             "--data-dir"};
        const char *v = NULL;
        size_t which = SIZE_MAX;
        for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]); k++) {
            size_t len = strlen(valued[k]);
            if (!strncmp(a, valued[k], len) && (a[len] == '\0' || a[len] == '=')) {
                which = k;
                if (a[len] == '=') {
                    v = a + len + 1;
                } else if (i + 1 < argc) {
                    v = argv[++i];
                } else {
                    fprintf(stderr, "match_bench: %s needs a value (see --help)\n", a);
                    return -1;
                }
                break;
            }
        }
        if (which == SIZE_MAX) {
            fprintf(stderr, "match_bench: unknown option \"%s\" (see --help)\n", a);
            return -1;
        }
        int rc = 0;
        switch (which) {
        case 0:
            rc = parse_u32(valued[which], v, 1, MAX_WORKERS, &o->workers);
            break;
        case 1:
            rc = parse_u32(valued[which], v, 1, MAX_REQUESTS, &o->requests);
            break;
        case 2:
            rc = parse_u32(valued[which], v, 0, MAX_REQUESTS, &o->naive_requests);
            naive_set = true;
            break;
        case 3:
            rc = parse_u32(valued[which], v, 0, MAX_REQUESTS, &o->cycles);
            break;
        case 4:
            rc = parse_u32(valued[which], v, 1, MAX_LIVE, &o->live);
            break;
        case 5:
            if (str_to_u64(v, 0, UINT64_MAX, &o->seed) < 0) {
                fprintf(stderr, "match_bench: --seed wants a whole number, not \"%s\"\n", v);
                rc = -1;
            }
            break;
        default:
            if (!*v) {
                fprintf(stderr, "match_bench: --data-dir wants a directory\n");
                rc = -1;
            }
            o->data_dir = v;
            break;
        }
        if (rc < 0)
            return -1;
    }
    if (o->naive_requests > o->requests) {
        if (naive_set) {
            fprintf(stderr,
                    "match_bench: --naive-requests (%u) cannot exceed --requests (%u): the naive "
                    "matcher runs the first of the same requests\n",
                    o->naive_requests, o->requests);
            return -1;
        }
        o->naive_requests = o->requests;
    }
    return 0;
}

/* --- setup -------------------------------------------------------------------------------------
 */

static int load_env(env *e, const char *dir)
{
    char path[4096];
    mu_error err;
    if ((size_t)snprintf(path, sizeof(path), "%s/gpus.json", dir) >= sizeof(path)) {
        fprintf(stderr, "match_bench: --data-dir is too long\n");
        return -1;
    }
    if (!(e->cat = catalog_load_file(path, &err))) {
        fprintf(stderr, "match_bench: %s\n", err.text);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/regions.json", dir);
    if (!(e->regions = regions_load_file(path, &err))) {
        fprintf(stderr, "match_bench: %s\n", err.text);
        return -1;
    }
    tiers_default(&e->tiers);
    memcpy(e->models, model_table, sizeof(model_table));
    for (size_t i = 0; i < N_MODELS; i++) {
        e->models[i].m = catalog_find(e->cat, e->models[i].name);
        if (!e->models[i].m ||
            (e->models[i].claim && catalog_find(e->cat, e->models[i].claim) != e->models[i].m)) {
            fprintf(stderr, "match_bench: the catalog %s/gpus.json has no model \"%s\"\n", dir,
                    e->models[i].name);
            return -1;
        }
    }
    for (size_t i = 0; i < N_COUNTRIES; i++) {
        if (*country_table[i].code && !regions_of_country(e->regions, country_table[i].code)) {
            fprintf(stderr, "match_bench: the region table has no country %s\n",
                    country_table[i].code);
            return -1;
        }
    }
    static const char *const regions_used[] = {"europe"};
    for (size_t i = 0; i < 1; i++) {
        int r = regions_index(e->regions, regions_used[i]);
        if (r < 0 || r >= 64) {
            fprintf(stderr, "match_bench: the region table has no region %s\n", regions_used[i]);
            return -1;
        }
    }
    static const char *const models_used[] = {"RTX 4090", "RTX 4080", "RTX 3090",  "RTX 3080",
                                              "H100 SXM", "H200",     "A100 80GB", "V100"};
    for (size_t i = 0; i < sizeof(models_used) / sizeof(models_used[0]); i++) {
        if (!catalog_find(e->cat, models_used[i])) {
            fprintf(stderr, "match_bench: the catalog has no model \"%s\"\n", models_used[i]);
            return -1;
        }
    }
    return 0;
}

typedef struct counters {
    size_t joins, leaves, events;
} counters;

static void on_event(void *arg, const cluster *c, const char *topic, const worker *w,
                     const char *detail)
{
    (void)c;
    (void)topic;
    (void)w;
    (void)detail;
    ((counters *)arg)->events++;
}

static void on_notice(void *arg, const cluster *c, const worker *w, bool join)
{
    (void)c;
    (void)w;
    counters *k = arg;
    if (join)
        k->joins++;
    else
        k->leaves++;
}

/* Register the fleet, slot by slot in time order, then one heartbeat each
 * at NOW (which refreshes the uptime of every worker registered an hour or
 * more earlier). Returns 0, or -1 having said why. */
static int build_fleet(sched *s, const env *e, const options *o, double *register_s,
                       double *heartbeat_s)
{
    wgen g;
    mu_error err;
    uint64_t t0 = mono_ns();
    for (unsigned slot = 0; slot < N_SLOTS; slot++) {
        uint64_t t = slot_time(slot);
        for (uint32_t n = 0; n < o->workers; n++) {
            profile p = profile_of(o->seed, n);
            if (p.reg == slot || p.rereg == slot) {
                gen_worker(o->seed, e->models, &e->tiers, n, &g);
                if (!sched_register(s, &g.spec, t, &err)) {
                    fprintf(stderr, "match_bench: registering worker %u: %s\n", n, err.text);
                    return -1;
                }
            } else if (p.bye == slot) {
                mu_id id;
                worker_id(o->seed, n, &id);
                if (sched_goodbye(s, &id, t, "synthetic churn") < 0) {
                    fprintf(stderr, "match_bench: goodbye of worker %u: %s\n", n, strerror(errno));
                    return -1;
                }
            }
        }
    }
    uint64_t t1 = mono_ns();
    for (uint32_t n = 0; n < o->workers; n++) {
        mu_id id;
        worker_id(o->seed, n, &id);
        if (sched_touch(s, &id, NOW_MS) < 0) {
            fprintf(stderr, "match_bench: heartbeat of worker %u: %s\n", n, strerror(errno));
            return -1;
        }
    }
    uint64_t t2 = mono_ns();
    *register_s = (double)(t1 - t0) / 1e9;
    *heartbeat_s = (double)(t2 - t1) / 1e9;
    if (registry_count(sched_registry_const(s)) != o->workers) {
        fprintf(stderr, "match_bench: %zu workers registered, expected %u (id collision?)\n",
                registry_count(sched_registry_const(s)), o->workers);
        return -1;
    }
    return 0;
}

/* --- checks ------------------------------------------------------------------------------------
 */

/* Whether out[0..n) is a valid answer to rq: the right count, distinct,
 * free and online, each fitting every constraint, one region when packed.
 * Says what is wrong. */
static bool answer_ok(const registry *reg, const match_request *rq, const uint32_t *out, size_t n,
                      size_t req_no)
{
    if (n == 0)
        return true;
    if (n < rq->min_workers || n > rq->workers) {
        fprintf(stderr, "match_bench: request %zu: %zu members for %u..%u\n", req_no, n,
                rq->min_workers, rq->workers);
        return false;
    }
    uint8_t region = 0;
    for (size_t i = 0; i < n; i++) {
        const worker *w = registry_at(reg, out[i]);
        if (!w || !index_eligible(w) || !match_worker_fits(rq, w) || w->uptime < rq->min_uptime) {
            fprintf(stderr, "match_bench: request %zu: member %zu (slot %u) does not fit\n", req_no,
                    i, out[i]);
            return false;
        }
        if (rq->placement == PLACE_PACK) {
            if (i == 0)
                region = w->region_idx;
            else if (w->region_idx != region || region >= 64) {
                fprintf(stderr, "match_bench: request %zu: packed members in two regions\n",
                        req_no);
                return false;
            }
        }
        for (size_t j = 0; j < i; j++) {
            if (out[j] == out[i]) {
                fprintf(stderr, "match_bench: request %zu: slot %u chosen twice\n", req_no, out[i]);
                return false;
            }
        }
    }
    return true;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Describe a disagreement between the matchers precisely. */
static void report_disagreement(const env *e, const registry *reg, const bench_request *br,
                                size_t req_no, uint32_t *ix_out, size_t n_ix, uint32_t *nv_out,
                                size_t n_nv)
{
    char shape[128];
    match_describe(&br->rq, e->cat, shape, sizeof(shape));
    fprintf(stderr,
            "match_bench: DISAGREEMENT on request %zu (%s: %u x %s, min %u, tier %s, "
            "regions 0x%llx, %u countries, uptime >= %.2f, max price %u uUSD, %s): "
            "indexed %zu members, naive %zu\n",
            req_no, kind_names[br->k], br->rq.workers, shape, br->rq.min_workers,
            tier_name(br->rq.min_tier), (unsigned long long)br->rq.regions, br->rq.n_countries,
            (double)br->rq.min_uptime, br->rq.max_price_uusd,
            br->rq.placement == PLACE_PACK ? "pack" : "spread", n_ix, n_nv);
    size_t n = n_ix < n_nv ? n_ix : n_nv;
    for (size_t i = 0; i < n; i++) {
        if (ix_out[i] != nv_out[i]) {
            const worker *a = registry_at(reg, ix_out[i]), *b = registry_at(reg, nv_out[i]);
            fprintf(stderr,
                    "  first difference at position %zu: indexed slot %u (%ux, uptime %.4f, "
                    "region %u, tier %d), naive slot %u (%ux, uptime %.4f, region %u, tier %d)\n",
                    i, ix_out[i], a->gpu_count, (double)a->uptime, a->region_idx, a->tier,
                    nv_out[i], b->gpu_count, (double)b->uptime, b->region_idx, b->tier);
            break;
        }
    }
    if (n_ix == n_nv) {
        qsort(ix_out, n_ix, sizeof(uint32_t), cmp_u32);
        qsort(nv_out, n_nv, sizeof(uint32_t), cmp_u32);
        fprintf(stderr, "  as sets the members are %s\n",
                memcmp(ix_out, nv_out, n_ix * sizeof(uint32_t)) ? "different" : "the same");
    }
}

/* --- machine
 * -------------------------------------------------------------------------------------- */

static void cpu_model(char *out, size_t n)
{
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t')
                    c++;
                c[strcspn(c, "\n")] = '\0';
                snprintf(out, n, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static uint64_t max_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (uint64_t)ru.ru_maxrss * 1024u; /* Linux: KiB */
}

/* --- the runs ------------------------------------------------------------------------------ */

typedef struct results {
    /* the fleet */
    double setup_s, register_s, heartbeat_s, check_s;
    size_t hireable, buckets;
    uint64_t gpus;
    size_t up_hist[4]; /* hireable workers by uptime: < 0.5, < 0.9, < 0.95, >= 0.95 */
    size_t bytes;
    uint64_t rss_empty, rss_setup, rss_end;
    /* matching */
    size_t met, met_kind[K_COUNT], n_kind[K_COUNT];
    stats ix_all, ix_kind[K_COUNT], nv, ix_same;
    size_t agree;
    double speedup_p50, speedup_p99;
    /* clusters */
    stats create, create_fail, release;
    /* what went wrong: bad answers, disagreements, broken invariants */
    size_t faults;
} results;

/* Time match_find on every request and check every answer. */
static void run_indexed(const sched *s, const bench_request *reqs, uint32_t n_reqs, double *ix_us,
                        results *r)
{
    const registry *reg = sched_registry_const(s);
    const windex *ix = sched_index(s);
    uint32_t *out = xcalloc(MATCH_MAX_WORKERS, sizeof(uint32_t));
    for (uint32_t i = 0; i < n_reqs; i++) {
        uint64_t a = mono_ns();
        size_t n = match_find(ix, reg, &reqs[i].rq, out);
        uint64_t b = mono_ns();
        ix_us[i] = (double)(b - a) / 1e3;
        r->met += n > 0;
        r->met_kind[reqs[i].k] += n > 0;
        r->n_kind[reqs[i].k]++;
        if (!answer_ok(reg, &reqs[i].rq, out, n, i))
            r->faults++;
    }
    r->ix_all = stats_of(ix_us, n_reqs);
    double *tmp = xcalloc(n_reqs, sizeof(double));
    for (unsigned k = 0; k < K_COUNT; k++) {
        size_t m = 0;
        for (uint32_t i = 0; i < n_reqs; i++)
            if (reqs[i].k == (kind)k)
                tmp[m++] = ix_us[i];
        r->ix_kind[k] = stats_of(tmp, m);
    }
    free(tmp);
    free(out);
}

/* Time match_find_naive on the first n_naive requests; the indexed matcher
 * must give exactly the same members, in the same order. */
static void run_naive(const env *e, const sched *s, const bench_request *reqs, uint32_t n_naive,
                      const double *ix_us, results *r)
{
    if (!n_naive)
        return;
    const registry *reg = sched_registry_const(s);
    const windex *ix = sched_index(s);
    uint32_t *out = xcalloc(MATCH_MAX_WORKERS, sizeof(uint32_t));
    uint32_t *out2 = xcalloc(MATCH_MAX_WORKERS, sizeof(uint32_t));
    double *nv_us = xcalloc(n_naive, sizeof(double));
    for (uint32_t i = 0; i < n_naive; i++) {
        uint64_t a = mono_ns();
        size_t n_nv = match_find_naive(reg, &reqs[i].rq, out2);
        uint64_t b = mono_ns();
        nv_us[i] = (double)(b - a) / 1e3;
        size_t n_ix = match_find(ix, reg, &reqs[i].rq, out);
        if (n_ix == n_nv && !memcmp(out, out2, n_ix * sizeof(uint32_t))) {
            r->agree++;
        } else {
            report_disagreement(e, reg, &reqs[i], i, out, n_ix, out2, n_nv);
            r->faults++;
        }
    }
    r->nv = stats_of(nv_us, n_naive);
    r->ix_same = stats_of(ix_us, n_naive); /* the same requests, timed in run_indexed */
    r->speedup_p50 = r->ix_same.p50 > 0 ? r->nv.p50 / r->ix_same.p50 : 0;
    r->speedup_p99 = r->ix_same.p99 > 0 ? r->nv.p99 / r->ix_same.p99 : 0;
    free(nv_us);
    free(out2);
    free(out);
}

static void release_one(sched *s, const mu_id *id, uint64_t now, double *us, size_t *n, results *r)
{
    mu_error err;
    uint64_t a = mono_ns();
    int rc = sched_cluster_release(s, id, now, "benchmark", &err);
    uint64_t b = mono_ns();
    if (rc < 0) {
        fprintf(stderr, "match_bench: release: %s\n", err.text);
        r->faults++;
    }
    us[(*n)++] = (double)(b - a) / 1e3;
}

/* Cycles of sched_cluster_create (the requests in turn) and
 * sched_cluster_release, `live` clusters held at a time (the oldest is
 * released before each create once the ring is full). At the end every
 * cluster is released: the index must hold what it held before. */
static void run_cycles(sched *s, const bench_request *reqs, const options *o, const counters *cnt,
                       results *r)
{
    if (!o->cycles)
        return;
    const windex *ix = sched_index(s);
    double *create_us = xcalloc(o->cycles, sizeof(double));
    double *fail_us = xcalloc(o->cycles, sizeof(double));
    double *release_us = xcalloc(o->cycles + o->live, sizeof(double));
    size_t n_create = 0, n_fail = 0, n_release = 0;
    size_t index_before = index_count(ix);
    mu_id *ring = xcalloc(o->live, sizeof(mu_id));
    bool *used = xcalloc(o->live, sizeof(bool));
    rng cr = {mix64(o->seed ^ 0x636c757374657273ull)};
    mu_error err;
    for (uint32_t i = 0; i < o->cycles; i++) {
        uint64_t now = NOW_MS + i;
        unsigned at = i % o->live;
        if (used[at]) {
            release_one(s, &ring[at], now, release_us, &n_release, r);
            used[at] = false;
        }
        mu_id id;
        uint64_t x = rng_next(&cr), y = rng_next(&cr);
        memcpy(id.b, &x, 8);
        memcpy(id.b + 8, &y, 8);
        const match_request *rq = &reqs[i % o->requests].rq;
        match_explain why;
        uint64_t a = mono_ns();
        const cluster *c = sched_cluster_create(s, &id, "bench", rq, 1, now, &why, &err);
        uint64_t b = mono_ns();
        if (c) {
            create_us[n_create++] = (double)(b - a) / 1e3;
            ring[at] = id;
            used[at] = true;
            if (c->n_members < rq->min_workers || c->n_members > rq->workers) {
                fprintf(stderr, "match_bench: a cluster of %u members for a request of %u..%u\n",
                        c->n_members, rq->min_workers, rq->workers);
                r->faults++;
            }
        } else if (errno == ENOSPC) {
            fail_us[n_fail++] = (double)(b - a) / 1e3;
        } else {
            fprintf(stderr, "match_bench: sched_cluster_create: %s\n", err.text);
            r->faults++;
        }
    }
    for (unsigned at = 0; at < o->live; at++)
        if (used[at])
            release_one(s, &ring[at], NOW_MS + o->cycles, release_us, &n_release, r);
    if (index_count(ix) != index_before) {
        fprintf(stderr, "match_bench: %zu workers indexed after the cycles, %zu before\n",
                index_count(ix), index_before);
        r->faults++;
    }
    if (cnt->joins != cnt->leaves) {
        fprintf(stderr, "match_bench: %zu joins but %zu leaves\n", cnt->joins, cnt->leaves);
        r->faults++;
    }
    if (sched_check(s, &err) < 0) {
        fprintf(stderr, "match_bench: invariant broken after the cycles: %s\n", err.text);
        r->faults++;
    }
    r->create = stats_of(create_us, n_create);
    r->create_fail = stats_of(fail_us, n_fail);
    r->release = stats_of(release_us, n_release);
    free(ring);
    free(used);
    free(create_us);
    free(fail_us);
    free(release_us);
}

/* --- reports ------------------------------------------------------------------------------------
 */

typedef struct targets {
    bool p99, speedup, memory;
} targets;

static targets targets_of(const results *r, const options *o)
{
    return (targets){
        .p99 = r->ix_all.p99 < 1000.0,
        .speedup = r->nv.n && r->speedup_p50 >= 100.0 && r->speedup_p99 >= 100.0,
        .memory = (double)r->bytes / o->workers < 1024.0,
    };
}

static double share(size_t part, size_t whole)
{
    return whole ? (double)part / (double)whole : 0.0;
}

static void print_human(const options *o, const results *r)
{
    targets t = targets_of(r, o);
    say("\n");
    say("%-26s %u workers, %zu hireable, %zu index buckets, %llu GPUs online\n", "fleet",
        o->workers, r->hireable, r->buckets, (unsigned long long)r->gpus);
    say("%-26s %.2f s (%.2f us/worker): registrations %.2f s, heartbeats %.2f s; "
        "sched_check %.2f s\n",
        "setup", r->setup_s, r->setup_s * 1e6 / o->workers, r->register_s, r->heartbeat_s,
        r->check_s);
    say("%-26s <0.5 %.1f%%, 0.5-0.9 %.1f%%, 0.9-0.95 %.1f%%, >=0.95 %.1f%%\n", "uptime (hireable)",
        100 * share(r->up_hist[0], r->hireable), 100 * share(r->up_hist[1], r->hireable),
        100 * share(r->up_hist[2], r->hireable), 100 * share(r->up_hist[3], r->hireable));
    say("%-26s sched_bytes %.0f B/worker; max RSS %.0f B/worker (%.0f above the empty "
        "process)\n",
        "memory", (double)r->bytes / o->workers, (double)r->rss_setup / o->workers,
        (double)(r->rss_setup - r->rss_empty) / o->workers);
    say_stats("indexed match_find", &r->ix_all);
    say("%-26s %zu of %u met (%.1f%%)\n", "", r->met, o->requests,
        100 * share(r->met, o->requests));
    for (unsigned k = 0; k < K_COUNT; k++) {
        if (!r->n_kind[k])
            continue;
        char label[64];
        snprintf(label, sizeof(label), "  %s", kind_names[k]);
        say("%-26s n=%-6zu p50 %9.1f  p90 %9.1f  p99 %9.1f  max %9.1f us, %zu met\n", label,
            r->n_kind[k], r->ix_kind[k].p50, r->ix_kind[k].p90, r->ix_kind[k].p99,
            r->ix_kind[k].max, r->met_kind[k]);
    }
    if (r->nv.n) {
        say_stats("naive match_find_naive", &r->nv);
        say_stats("indexed, same requests", &r->ix_same);
        say("%-26s p50 %.0fx, p99 %.0fx; the matchers agree on %zu of %zu\n", "speedup",
            r->speedup_p50, r->speedup_p99, r->agree, r->nv.n);
    }
    if (o->cycles) {
        say_stats("sched_cluster_create", &r->create);
        say_stats("  not met (explained)", &r->create_fail);
        say_stats("sched_cluster_release", &r->release);
    }
    say("%-26s p99 < 1 ms: %s; naive/indexed >= 100x at p50 and p99: %s; "
        "< 1 KiB/worker: %s (reported, not asserted)\n",
        "targets", t.p99 ? "yes" : "NO", r->nv.n ? (t.speedup ? "yes" : "NO") : "not measured",
        t.memory ? "yes" : "NO");
    if (r->faults)
        say("FAILED: %zu faults, see the messages above\n", r->faults);
}

static void print_json(const options *o, const results *r, const char *cpu, long ncpu)
{
    targets t = targets_of(r, o);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "benchmark", "match");
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddNumberToObject(j, "workers", o->workers);
    cJSON_AddNumberToObject(j, "hireable_workers", (double)r->hireable);
    cJSON_AddNumberToObject(j, "index_buckets", (double)r->buckets);
    cJSON_AddNumberToObject(j, "gpus_online", (double)r->gpus);
    cJSON_AddNumberToObject(j, "setup_s", round2(r->setup_s));
    cJSON_AddNumberToObject(j, "register_s", round2(r->register_s));
    cJSON_AddNumberToObject(j, "heartbeat_s", round2(r->heartbeat_s));
    cJSON_AddNumberToObject(j, "check_s", round2(r->check_s));
    cJSON *uh = cJSON_AddObjectToObject(j, "uptime_share");
    static const char *const uh_names[] = {"below_0.5", "0.5_to_0.9", "0.9_to_0.95", "0.95_up"};
    for (int k = 0; k < 4; k++)
        cJSON_AddNumberToObject(uh, uh_names[k], round2(share(r->up_hist[k], r->hireable)));
    cJSON_AddNumberToObject(j, "requests", o->requests);
    cJSON_AddNumberToObject(j, "success_rate", share(r->met, o->requests));
    cJSON_AddItemToObject(j, "indexed_us", stats_json(&r->ix_all));
    cJSON *bk = cJSON_AddObjectToObject(j, "indexed_by_kind");
    for (unsigned k = 0; k < K_COUNT; k++) {
        if (!r->n_kind[k])
            continue;
        cJSON *ko = stats_json(&r->ix_kind[k]);
        cJSON_AddNumberToObject(ko, "met", (double)r->met_kind[k]);
        cJSON_AddItemToObject(bk, kind_names[k], ko);
    }
    cJSON_AddNumberToObject(j, "naive_requests", o->naive_requests);
    cJSON_AddItemToObject(j, "naive_us", stats_json(&r->nv));
    cJSON_AddItemToObject(j, "indexed_same_requests_us", stats_json(&r->ix_same));
    cJSON_AddNumberToObject(j, "agree", (double)r->agree);
    cJSON_AddBoolToObject(j, "matchers_agree", r->agree == r->nv.n);
    cJSON_AddNumberToObject(j, "speedup_p50", round2(r->speedup_p50));
    cJSON_AddNumberToObject(j, "speedup_p99", round2(r->speedup_p99));
    cJSON_AddNumberToObject(j, "sched_bytes", (double)r->bytes);
    cJSON_AddNumberToObject(j, "bytes_per_worker", round2((double)r->bytes / o->workers));
    cJSON_AddNumberToObject(j, "max_rss_bytes", (double)r->rss_end);
    cJSON_AddNumberToObject(j, "rss_bytes_per_worker", round2((double)r->rss_setup / o->workers));
    cJSON_AddNumberToObject(j, "rss_above_empty_bytes_per_worker",
                            round2((double)(r->rss_setup - r->rss_empty) / o->workers));
    cJSON *cro = cJSON_AddObjectToObject(j, "create_release_us");
    cJSON_AddNumberToObject(cro, "cycles", o->cycles);
    cJSON_AddNumberToObject(cro, "live_clusters", o->live);
    cJSON_AddItemToObject(cro, "create", stats_json(&r->create));
    cJSON_AddItemToObject(cro, "create_not_met", stats_json(&r->create_fail));
    cJSON_AddItemToObject(cro, "release", stats_json(&r->release));
    cJSON *tg = cJSON_AddObjectToObject(j, "targets");
    cJSON_AddBoolToObject(tg, "p99_under_1ms", t.p99);
    if (r->nv.n)
        cJSON_AddBoolToObject(tg, "speedup_100x", t.speedup);
    else
        cJSON_AddNullToObject(tg, "speedup_100x");
    cJSON_AddBoolToObject(tg, "under_1KiB", t.memory);
    cJSON *mc = cJSON_AddObjectToObject(j, "machine");
    cJSON_AddNumberToObject(mc, "cpus", (double)ncpu);
    cJSON_AddStringToObject(mc, "cpu_model", cpu);
    cJSON_AddNumberToObject(j, "faults", (double)r->faults);
    cJSON_AddBoolToObject(j, "ok", r->faults == 0);
    char *text = cJSON_PrintUnformatted(j);
    if (text) {
        printf("%s\n", text);
        cJSON_free(text);
    }
    cJSON_Delete(j);
}

/* --- main ----------------------------------------------------------------------------------------
 */

int main(int argc, char **argv)
{
    options o;
    int pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    human = o.json ? stderr : stdout;

    env e = {0};
    if (load_env(&e, o.data_dir) < 0) {
        catalog_destroy(e.cat);
        regions_destroy(e.regions);
        return 2;
    }
    counters cnt = {0};
    sched_config cfg = {.reg = {.heartbeat_interval_ms = 1000,
                                .liveness = 3,
                                .cat = e.cat,
                                .regions = e.regions,
                                .tiers = &e.tiers}};
    sched_ops ops = {.cluster_event = on_event, .member_notice = on_notice, .arg = &cnt};
    mu_error err;
    sched *s = sched_create(&cfg, &ops, &err);
    if (!s) {
        fprintf(stderr, "match_bench: sched_create: %s\n", err.text);
        return 1;
    }
    const registry *reg = sched_registry_const(s);
    const windex *ix = sched_index(s);
    char cpu[256];
    cpu_model(cpu, sizeof(cpu));
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    results r = {0};

    say("muster match benchmark: synthetic fleet, seed %llu, %ld CPUs (%s)\n",
        (unsigned long long)o.seed, ncpu, cpu);
    say("registering %u workers...\n", o.workers);
    r.rss_empty = max_rss_bytes();
    if (build_fleet(s, &e, &o, &r.register_s, &r.heartbeat_s) < 0) {
        sched_destroy(s);
        return 1;
    }
    r.setup_s = r.register_s + r.heartbeat_s;
    r.rss_setup = max_rss_bytes();
    r.bytes = sched_bytes(s);
    r.hireable = index_count(ix);
    r.buckets = index_bucket_count(ix);
    r.gpus = registry_gpus_online(reg);
    for (size_t i = 0; i < registry_count(reg); i++) {
        const worker *w = registry_at(reg, i);
        if (index_eligible(w))
            r.up_hist[w->uptime < 0.5f ? 0 : w->uptime < 0.9f ? 1 : w->uptime < 0.95f ? 2 : 3]++;
    }
    uint64_t t0 = mono_ns();
    if (sched_check(s, &err) < 0) {
        fprintf(stderr, "match_bench: invariant broken after setup: %s\n", err.text);
        r.faults++;
    }
    r.check_s = (double)(mono_ns() - t0) / 1e9;
    say("setup %.2f s\n", r.setup_s);

    bench_request *reqs = xcalloc(o.requests, sizeof(*reqs));
    rng rr = {mix64(o.seed ^ 0x7265717565737473ull)};
    for (uint32_t i = 0; i < o.requests; i++) {
        reqs[i] = gen_request(&e, &rr);
        if (match_validate(&reqs[i].rq, e.cat, &err) < 0) {
            fprintf(stderr, "match_bench: request %u is invalid: %s\n", i, err.text);
            r.faults++;
        }
    }
    double *ix_us = xcalloc(o.requests, sizeof(double));
    say("indexed matcher: %u requests...\n", o.requests);
    run_indexed(s, reqs, o.requests, ix_us, &r);
    if (o.naive_requests)
        say("naive matcher: %u requests...\n", o.naive_requests);
    run_naive(&e, s, reqs, o.naive_requests, ix_us, &r);
    if (o.cycles)
        say("create/release: %u cycles, %u clusters live...\n", o.cycles, o.live);
    run_cycles(s, reqs, &o, &cnt, &r);
    r.rss_end = max_rss_bytes();

    print_human(&o, &r);
    if (o.json)
        print_json(&o, &r, cpu, ncpu);

    free(ix_us);
    free(reqs);
    sched_destroy(s);
    regions_destroy(e.regions);
    catalog_destroy(e.cat);
    return r.faults ? 1 : 0;
}
