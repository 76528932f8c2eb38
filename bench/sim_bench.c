/* sim_bench.c - how fast muster-sim replays a large fleet: a million
 * workers, a year of synthetic churn and a steady workload, driven through
 * the scheduler core by the replay engine (DESIGN.md, performance targets:
 * under a minute, at least a million events per second, memory linear in
 * the number of workers).
 *
 * The traces are generated in memory with the same generators as
 * `muster-sim generate` (no files), then replayed. It reports events
 * processed, events per second, wall time, peak RSS and bytes per worker,
 * and, measured in the same run, a baseline: the cost of popping as many
 * events through an event heap (at the size the engine's queue reached)
 * without calling the core, so that the figures show what the scheduler
 * costs on top of dispatching events. Targets are reported, never
 * asserted; it fails only when the core's invariants break (--check).
 *
 * The engine and the core read no clock; this program is a shell and reads
 * CLOCK_MONOTONIC around what it measures.
 */
#include <cjson/cJSON.h>
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
#include "engine.h"
#include "evq.h"
#include "regions.h"
#include "rng.h"
#include "strutil.h"
#include "synth.h"
#include "tiers.h"

#ifndef MUSTER_SOURCE_DATA_DIR
#define MUSTER_SOURCE_DATA_DIR MUSTER_DATA_DIR
#endif

#define DEFAULT_WORKERS 1000000u
#define DEFAULT_DAYS    365.0
/* Requests per hour per million workers: a steady stream whose clusters the
 * core keeps for `cluster show` after they end (a few KiB each), so the
 * rate scales with the fleet to keep memory per worker comparable. */
#define DEFAULT_RATE_PER_M 20.0
#define DEFAULT_KEEPALIVE  (7.0 * 86400.0)
#define DEFAULT_SEED       20250101u

/* A fleet that churns like volunteer hosts: sessions Weibull with shape
 * 0.6 (mean 30 days), gaps lognormal around 4.5 hours (mean 9 hours),
 * joins crowding into local evenings. */
#define CHURN_SESSION "weibull:0.6,480"
#define CHURN_GAP     "lognormal:1.5,1.2"
#define CHURN_DIURNAL "0.3"
#define CHURN_GPUS    "RTX 4090:4,RTX 3090:3,A100 80GB:2,H100 SXM:1"
#define CHURN_COUNTS  "1:6,2:2,4:1,8:1"
#define CHURN_CTRIES                                                                               \
    "US:30:-5,CA:5:-5,BR:5:-3,DE:15:1,GB:10:0,FR:10:1,IN:5:5.5,JP:10:9,KR:5:9,AU:5:10"
#define WL_DURATION "lognormal:1,1"
#define WL_WORKERS  "1:6,2:2,4:1,8:1"
#define WL_GPUS     "1:3,2:1,4:1"
#define WL_MODELS   "any:3,RTX 4090:2,A100 80GB:1"
#define WL_REGIONS  "any:2,europe:1,north-america:1"

typedef struct opts {
    uint32_t workers;
    double days;
    double rate; /* < 0: DEFAULT_RATE_PER_M per million workers */
    double keepalive_s;
    uint64_t seed;
    bool json, check, quiet, hugepages;
} opts;

static FILE *human;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(human, fmt, ap);
    va_end(ap);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t peak_rss(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_maxrss * 1024u; /* Linux: KiB */
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sim_bench [options]\n"
            "  --workers N       workers in the synthetic fleet [%u]\n"
            "  --days D          virtual days of churn and workload [%g]\n"
            "  --rate R          cluster requests per hour [%g per million workers]\n"
            "  --keepalive S     the engine's keep-alive interval, seconds [%g]\n"
            "  --seed S          seed of both traces and the replay [%u]\n"
            "  --check           check the core's invariants after the replay\n"
            "  --quiet           no progress on stderr\n"
            "  --no-hugepages    leave malloc's pages small (by default the bench\n"
            "                    runs itself again with glibc.malloc.hugetlb=1)\n"
            "  --json            one JSON object with every figure on stdout\n"
            "                    (the human summary goes to stderr)\n"
            "  -h, --help        this help\n",
            DEFAULT_WORKERS, DEFAULT_DAYS, DEFAULT_RATE_PER_M, DEFAULT_KEEPALIVE, DEFAULT_SEED);
}

static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){DEFAULT_WORKERS, DEFAULT_DAYS, -1,  DEFAULT_KEEPALIVE, DEFAULT_SEED, false,
                false,           false,        true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        double d;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--check")) {
            o->check = true;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = true;
        } else if (!strcmp(a, "--no-hugepages")) {
            o->hugepages = false;
        } else if (!strcmp(a, "--workers") && v && !str_to_u64(v, 1, 100000000, &u)) {
            o->workers = (uint32_t)u;
            i++;
        } else if (!strcmp(a, "--days") && v && !str_to_double(v, &d) && d > 0 && d <= 3650) {
            o->days = d;
            i++;
        } else if (!strcmp(a, "--rate") && v && !str_to_double(v, &d) && d > 0 && d <= 1e6) {
            o->rate = d;
            i++;
        } else if (!strcmp(a, "--keepalive") && v && !str_to_double(v, &d) && d >= 60 &&
                   d <= 40 * 86400.0) {
            o->keepalive_s = d;
            i++;
        } else if (!strcmp(a, "--seed") && v && !str_to_u64(v, 0, UINT64_MAX, &u)) {
            o->seed = u;
            i++;
        } else {
            fprintf(stderr, "sim_bench: bad option or value: %s%s%s\n", a, v ? " " : "",
                    v ? v : "");
            usage(stderr);
            return -1;
        }
    }
    if (o->rate < 0) {
        o->rate = DEFAULT_RATE_PER_M * o->workers / 1e6;
        if (o->rate < 1)
            o->rate = 1;
    }
    return 0;
}

typedef struct progress_state {
    bool quiet;
    double start, last;
} progress_state;

static void on_progress(void *arg, const engine_progress *p)
{
    progress_state *ps = arg;
    double t = now_s();
    if (ps->quiet || p->done || t - ps->last < 5.0)
        return;
    ps->last = t;
    fprintf(stderr, "sim_bench: %.1fM events (%.1fM touches), day %.1f of %.1f, %.2fM events/s\n",
            (double)p->events / 1e6, (double)p->touches / 1e6, (double)p->now_ms / 86.4e6,
            (double)p->end_ms / 86.4e6, (double)p->events / (t - ps->start) / 1e6);
}

static int set(int (*fn)(void *, const char *, const char *, mu_error *), void *p, const char *k,
               const char *v)
{
    mu_error err;
    if (fn(p, k, v, &err) < 0) {
        fprintf(stderr, "sim_bench: %s: %s\n", k, err.text);
        return -1;
    }
    return 0;
}

static int churn_set(void *p, const char *k, const char *v, mu_error *e)
{
    return synth_churn_params_set(p, k, v, e);
}

static int wl_set(void *p, const char *k, const char *v, mu_error *e)
{
    return synth_workload_params_set(p, k, v, e);
}

/* The baseline: N pops through an event heap holding `size` events, each
 * pop followed by a push a little later: what dispatching an event costs
 * without the core (the engine reads its churn trace in place, which
 * costs less still). Returns seconds. */
static double heap_baseline(uint64_t n, size_t size, uint64_t seed, uint64_t *checksum)
{
    evq *q = evq_create();
    if (!q)
        return -1;
    rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < size; i++)
        evq_push(q, rng_below(&r, 1000000), 0, 1, (uint32_t)i, 0, 0);
    double t0 = now_s();
    uint64_t sum = 0;
    evq_event ev;
    for (uint64_t i = 0; i < n && evq_pop(q, &ev); i++) {
        sum += ev.a;
        evq_push(q, ev.t + 1 + (rng_next(&r) & 0xfffff), (uint16_t)(i & 3), 1, ev.a, 0, 0);
    }
    double el = now_s() - t0;
    evq_destroy(q);
    *checksum = sum;
    return el;
}

/* A million workers' records, links and index are reached at random: with
 * 4 KiB pages nearly every access also misses the TLB. glibc backs its
 * large blocks with transparent huge pages when asked through a tunable,
 * which is read only at startup: so the bench runs itself again with it
 * set. The core allocates as it always does; only the pages change. */
#define HUGETLB_TUNABLE "glibc.malloc.hugetlb=1"

static void reexec_with_hugepages(char **argv)
{
    const char *cur = getenv("GLIBC_TUNABLES");
    if (cur && strstr(cur, "glibc.malloc.hugetlb"))
        return; /* set already, by us or by the caller */
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s%s%s", cur ? cur : "", cur && *cur ? ":" : "",
                     HUGETLB_TUNABLE);
    if (n < 0 || (size_t)n >= sizeof(buf) || setenv("GLIBC_TUNABLES", buf, 1) < 0)
        return;
    execv("/proc/self/exe", argv);
    /* Could not: run on with small pages, and say so below. */
}

/* Anonymous memory in huge pages now (smaps_rollup), or -1 if unknown. */
static long long anon_huge_bytes(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f)
        return -1;
    char line[256];
    long long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "AnonHugePages: %lld kB", &kib) == 1)
            break;
    fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

int main(int argc, char **argv)
{
    opts o;
    if (parse(argc, argv, &o) < 0)
        return 2;
    if (o.hugepages)
        reexec_with_hugepages(argv);
    const char *tun = getenv("GLIBC_TUNABLES");
    bool huge_asked = tun && strstr(tun, HUGETLB_TUNABLE);
    human = o.json ? stderr : stdout;
    mu_error err;
    catalog *cat = catalog_load_file(MUSTER_SOURCE_DATA_DIR "/gpus.json", &err);
    region_table *regions =
        cat ? regions_load_file(MUSTER_SOURCE_DATA_DIR "/regions.json", &err) : NULL;
    if (!cat || !regions) {
        fprintf(stderr, "sim_bench: %s\n", err.text);
        return 1;
    }
    tier_table tiers;
    tiers_default(&tiers);

    /* --- the traces, in memory ------------------------------------------------------ */
    char num[64];
    synth_churn_params cp;
    synth_churn_params_init(&cp);
    synth_workload_params wp;
    synth_workload_params_init(&wp);
    int bad = 0;
    snprintf(num, sizeof(num), "%u", o.workers);
    bad |= set(churn_set, &cp, "nodes", num);
    snprintf(num, sizeof(num), "%.17g", o.days);
    bad |= set(churn_set, &cp, "days", num);
    bad |= set(wl_set, &wp, "days", num);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)o.seed);
    bad |= set(churn_set, &cp, "seed", num);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)(o.seed + 1));
    bad |= set(wl_set, &wp, "seed", num);
    bad |= set(churn_set, &cp, "session", CHURN_SESSION);
    bad |= set(churn_set, &cp, "gap", CHURN_GAP);
    bad |= set(churn_set, &cp, "diurnal", CHURN_DIURNAL);
    bad |= set(churn_set, &cp, "gpus", CHURN_GPUS);
    bad |= set(churn_set, &cp, "gpu_counts", CHURN_COUNTS);
    bad |= set(churn_set, &cp, "countries", CHURN_CTRIES);
    snprintf(num, sizeof(num), "%.17g", o.rate);
    bad |= set(wl_set, &wp, "rate", num);
    bad |= set(wl_set, &wp, "duration", WL_DURATION);
    bad |= set(wl_set, &wp, "workers", WL_WORKERS);
    bad |= set(wl_set, &wp, "gpus_per_worker", WL_GPUS);
    bad |= set(wl_set, &wp, "models", WL_MODELS);
    bad |= set(wl_set, &wp, "regions", WL_REGIONS);
    if (bad)
        return 1;
    double t0 = now_s();
    churn_trace *churn = synth_churn_generate(&cp, &err);
    workload *wl = churn ? synth_workload_generate(&wp, &err) : NULL;
    synth_churn_params_free(&cp);
    synth_workload_params_free(&wp);
    if (!churn || !wl) {
        fprintf(stderr, "sim_bench: generating the traces: %s\n", err.text);
        return 1;
    }
    double gen_s = now_s() - t0;
    uint64_t rss_traces = peak_rss();
    size_t n_cev = churn_event_count(churn), n_req = workload_count(wl);
    say("sim_bench: %u workers, %g days: %zu churn events, %zu requests, generated in %.1f s "
        "(peak RSS %.0f MiB)\n",
        o.workers, o.days, n_cev, n_req, gen_s, (double)rss_traces / 1048576.0);

    /* --- the replay ------------------------------------------------------------------ */
    engine_config cfg;
    engine_config_init(&cfg);
    cfg.cat = cat;
    cfg.regions = regions;
    cfg.tiers = &tiers;
    cfg.seed = o.seed;
    cfg.keepalive_ms = (uint32_t)(o.keepalive_s * 1000.0);
    cfg.goodbye = 0.2;
    cfg.ack_delay = (dist){DIST_LOGNORMAL, 0.7, 0.5};
    cfg.interval_ms = 3600000;
    progress_state ps = {o.quiet, 0, 0};
    cfg.progress = on_progress;
    cfg.progress_arg = &ps;
    cfg.churn_source = "synthetic";
    cfg.churn_format = "memory";
    cfg.workload_source = "synthetic";
    cfg.workload_format = "memory";
    engine *e = engine_create(&cfg, churn, wl, &err);
    if (!e) {
        fprintf(stderr, "sim_bench: %s\n", err.text);
        return 1;
    }
    ps.start = ps.last = now_s();
    double r0 = now_s();
    if (engine_run(e, &err) < 0) {
        fprintf(stderr, "sim_bench: replay: %s\n", err.text);
        return 1;
    }
    double run_s = now_s() - r0;
    uint64_t rss_peak = peak_rss();
    long long huge = anon_huge_bytes();
    const sim_report *r = engine_report(e);
    int rc = 0;
    if (o.check && sched_check(engine_sched(e), &err) < 0) {
        fprintf(stderr, "sim_bench: core invariant broken: %s\n", err.text);
        rc = 1;
    }
    size_t core_bytes = sched_bytes(engine_sched(e));
    size_t eng_bytes = engine_bytes(e);
    size_t clusters = sched_cluster_count(engine_sched(e));
    size_t cluster_bytes = clusters * sizeof(cluster);
    size_t trace_bytes = n_cev * sizeof(churn_event) + n_req * sizeof(workload_request);

    /* --- the baseline, in the same process ----------------------------------------- */
    uint64_t checksum = 0;
    double base_s =
        heap_baseline(r->heap_events, r->peak_queue > 2 ? r->peak_queue : 2, o.seed, &checksum);

    double eps = (double)r->events / run_s;
    double ns_event = run_s * 1e9 / (double)r->events;
    double ns_base = base_s * 1e9 / (double)(r->heap_events ? r->heap_events : 1);
    say("replay: %llu events (%llu from the traces and the queue, %llu core ticks) in %.2f s: "
        "%.2fM events/s, "
        "%.0f ns/event\n",
        (unsigned long long)r->events, (unsigned long long)r->heap_events,
        (unsigned long long)r->ticks, run_s, eps / 1e6, ns_event);
    say("  keep-alive touches %llu (not counted as events), %llu requests, %llu met, %llu "
        "clusters ready, %llu member losses, %llu reroutes\n",
        (unsigned long long)r->touches, (unsigned long long)r->requests, (unsigned long long)r->met,
        (unsigned long long)r->reached_ready, (unsigned long long)r->member_losses,
        (unsigned long long)r->replacements);
    say("baseline: as many pops (%llu) through the event heap (%zu pending) without the core: "
        "%.3f s, %.0f ns/event: the core and its bookkeeping cost %.1fx the heap\n",
        (unsigned long long)r->heap_events, r->peak_queue, base_s, ns_base,
        ns_base > 0 ? ns_event / ns_base : 0);
    say("memory: peak RSS %.0f MiB = %.0f bytes per worker (traces %.0f MiB, core %.0f MiB = %zu "
        "B/worker, engine %.0f MiB, %zu clusters kept %.0f MiB)\n",
        (double)rss_peak / 1048576.0, (double)rss_peak / o.workers, (double)trace_bytes / 1048576.0,
        (double)core_bytes / 1048576.0, core_bytes / o.workers, (double)eng_bytes / 1048576.0,
        clusters, (double)cluster_bytes / 1048576.0);
    say("pages: huge pages %s for malloc; %.0f MiB of memory in huge pages at the end\n",
        huge_asked ? "asked" : "not asked", huge < 0 ? 0.0 : (double)huge / 1048576.0);
    say("targets: under 60 s (%s), at least 1M events/s (%s)\n", run_s < 60 ? "met" : "missed",
        eps >= 1e6 ? "met" : "missed");

    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "workers", o.workers);
        cJSON_AddNumberToObject(j, "days", o.days);
        cJSON_AddNumberToObject(j, "requests_per_hour", o.rate);
        cJSON_AddNumberToObject(j, "keepalive_s", o.keepalive_s);
        cJSON_AddNumberToObject(j, "seed", (double)o.seed);
        cJSON_AddNumberToObject(j, "churn_events", (double)n_cev);
        cJSON_AddNumberToObject(j, "requests", (double)n_req);
        cJSON_AddNumberToObject(j, "generate_s", gen_s);
        cJSON_AddNumberToObject(j, "events", (double)r->events);
        cJSON_AddNumberToObject(j, "heap_events", (double)r->heap_events);
        cJSON_AddNumberToObject(j, "core_ticks", (double)r->ticks);
        cJSON_AddNumberToObject(j, "keepalive_touches", (double)r->touches);
        cJSON_AddNumberToObject(j, "wall_s", run_s);
        cJSON_AddNumberToObject(j, "events_per_s", eps);
        cJSON_AddNumberToObject(j, "ns_per_event", ns_event);
        cJSON_AddNumberToObject(j, "baseline_heap_s", base_s);
        cJSON_AddNumberToObject(j, "baseline_ns_per_event", ns_base);
        cJSON_AddNumberToObject(j, "peak_rss_bytes", (double)rss_peak);
        cJSON_AddBoolToObject(j, "hugepages_asked", huge_asked);
        cJSON_AddNumberToObject(j, "anon_huge_bytes", (double)huge);
        cJSON_AddNumberToObject(j, "rss_after_traces_bytes", (double)rss_traces);
        cJSON_AddNumberToObject(j, "bytes_per_worker", (double)rss_peak / o.workers);
        cJSON_AddNumberToObject(j, "core_bytes", (double)core_bytes);
        cJSON_AddNumberToObject(j, "engine_bytes", (double)eng_bytes);
        cJSON_AddNumberToObject(j, "trace_bytes", (double)trace_bytes);
        cJSON_AddNumberToObject(j, "clusters", (double)clusters);
        cJSON_AddNumberToObject(j, "cluster_bytes", (double)cluster_bytes);
        cJSON_AddNumberToObject(j, "met", (double)r->met);
        cJSON_AddNumberToObject(j, "member_losses", (double)r->member_losses);
        cJSON_AddNumberToObject(j, "reroutes", (double)r->replacements);
        cJSON_AddNumberToObject(j, "baseline_checksum", (double)(checksum & 0xffffffffu));
        char *text = cJSON_PrintUnformatted(j);
        if (text)
            printf("%s\n", text);
        cJSON_free(text);
        cJSON_Delete(j);
    }
    engine_destroy(e);
    workload_destroy(wl);
    churn_destroy(churn);
    regions_destroy(regions);
    catalog_destroy(cat);
    return rc;
}
