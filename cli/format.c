/* format.c - see format.h. */
#include "format.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "strutil.h"

const char *format_state_name(Muster__WorkerState s)
{
    switch (s) {
    case MUSTER__WORKER_STATE__WORKER_STATE_ONLINE:
        return "online";
    case MUSTER__WORKER_STATE__WORKER_STATE_SUSPECT:
        return "suspect";
    case MUSTER__WORKER_STATE__WORKER_STATE_OFFLINE:
        return "offline";
    default:
        return "unknown";
    }
}

void format_usd(uint64_t uusd, char *out, size_t n)
{
    uint64_t cents = uusd / 10000 + (uusd % 10000 >= 5000);
    if (uusd > 0 && cents == 0) {
        /* Under half a cent: keep the digits that say how much. */
        char buf[32];
        snprintf(buf, sizeof(buf), "0.%06" PRIu64, uusd);
        size_t len = strlen(buf);
        while (len > 4 && buf[len - 1] == '0')
            buf[--len] = '\0';
        snprintf(out, n, "%s", buf);
        return;
    }
    snprintf(out, n, "%" PRIu64 ".%02" PRIu64, cents / 100, cents % 100);
}

void format_time(uint64_t ms, char *out, size_t n)
{
    if (ms == 0) {
        snprintf(out, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, n, "%" PRIu64, ms);
}

/* "45s", "59m", "5h 59m", "2d 3h". */
static void span_text(uint64_t ms, char *out, size_t n)
{
    uint64_t s = ms / 1000;
    if (s < 60)
        snprintf(out, n, "%" PRIu64 "s", s);
    else if (s < 3600)
        snprintf(out, n, "%" PRIu64 "m", s / 60);
    else if (s < 86400)
        snprintf(out, n, "%" PRIu64 "h %" PRIu64 "m", s / 3600, s / 60 % 60);
    else
        snprintf(out, n, "%" PRIu64 "d %" PRIu64 "h", s / 86400, s / 3600 % 24);
}

int format_cluster_ended(const char *state)
{
    return state &&
           (!strcmp(state, "released") || !strcmp(state, "expired") || !strcmp(state, "failed"));
}

/* Join n strings with sep into out; "any" when there are none. */
static void join_text(char **v, size_t nv, const char *sep, const char *none, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    if (nv == 0) {
        snprintf(out, n, "%s", none);
        return;
    }
    for (size_t i = 0; i < nv && len < n; i++) {
        int k = snprintf(out + len, n - len, "%s%s", i ? sep : "", v[i]);
        if (k < 0)
            break;
        len += (size_t)k;
    }
}

static void gpus_text(const Muster__WorkerInfo *w, char *out, size_t n)
{
    if (w->gpu_count == 0)
        snprintf(out, n, "CPU only");
    else
        snprintf(out, n, "%ux %s", w->gpu_count, w->gpu_model);
}

static void where_text(const Muster__WorkerInfo *w, char *out, size_t n)
{
    if (w->country && *w->country)
        snprintf(out, n, "%s/%s", w->region, w->country);
    else
        snprintf(out, n, "%s", w->region);
}

void format_workers_table(FILE *out, const Muster__ListWorkersReply *r)
{
    if (r->n_workers == 0) {
        fprintf(out, "No workers.\n");
        return;
    }
    fprintf(out, "%-8s  %-20s  %-16s  %-20s  %-6s  %7s  %6s  %-7s  %-8s  %s\n", "ID", "HOST",
            "GPUS", "REGION", "TIER", "$/GPU-H", "UPTIME", "STATE", "VERIFIED", "LAST SEEN");
    for (size_t i = 0; i < r->n_workers; i++) {
        const Muster__WorkerInfo *w = r->workers[i];
        char gpus[64], where[48], seen[16], price[24];
        gpus_text(w, gpus, sizeof(gpus));
        where_text(w, where, sizeof(where));
        str_duration(w->last_seen_ms_ago, seen, sizeof(seen));
        format_usd(w->price_micro_usd, price, sizeof(price));
        fprintf(out, "%-8.8s  %-20.20s  %-16.16s  %-20.20s  %-6s  %7s  %6.3f  %-7s  %-8s  %s ago\n",
                w->id, w->hostname, gpus, where, w->tier, price, w->uptime,
                format_state_name(w->state), *w->verification ? w->verification : "-", seen);
    }
    size_t on = 0, gpus = 0;
    for (size_t i = 0; i < r->n_workers; i++) {
        if (r->workers[i]->state == MUSTER__WORKER_STATE__WORKER_STATE_ONLINE) {
            on++;
            gpus += r->workers[i]->gpu_count;
        }
    }
    fprintf(out, "%zu worker%s, %zu online with %zu GPU%s", r->n_workers,
            r->n_workers == 1 ? "" : "s", on, gpus, gpus == 1 ? "" : "s");
    if (r->total > r->n_workers)
        fprintf(out, " (of %u matching: see --limit and --offset)", r->total);
    fputs(".\n", out);
}

void format_worker_detail(FILE *out, const Muster__WorkerInfo *w)
{
    char gpus[64], where[48], seen[16];
    gpus_text(w, gpus, sizeof(gpus));
    where_text(w, where, sizeof(where));
    str_duration(w->last_seen_ms_ago, seen, sizeof(seen));
    fprintf(out, "id:           %s\n", w->id);
    fprintf(out, "host:         %s (fingerprint %s)\n", w->hostname,
            *w->host_fingerprint ? w->host_fingerprint : "-");
    fprintf(out, "state:        %s, last seen %s ago\n", format_state_name(w->state), seen);
    fprintf(out, "gpus:         %s (%s)%s\n", gpus, w->gpu_class,
            w->simulated ? ", simulated" : "");
    fprintf(out, "cpu, memory:  %u cores, %llu MiB\n", w->cpu_cores,
            (unsigned long long)w->memory_mib);
    fprintf(out, "region:       %s\n", where);
    fprintf(out, "bandwidth:    %u/%u Mbit/s down/up, tier %s\n", w->bandwidth_down_mbps,
            w->bandwidth_up_mbps, w->tier);
    char price[24];
    format_usd(w->price_micro_usd, price, sizeof(price));
    fprintf(out, "price:        %s USD per GPU hour\n", price);
    fprintf(out, "uptime:       %.3f\n", w->uptime);
    if (w->cluster_id && *w->cluster_id)
        fprintf(out, "alloc:        %s, cluster %s\n", *w->alloc ? w->alloc : "-", w->cluster_id);
    else
        fprintf(out, "alloc:        %s\n", *w->alloc ? w->alloc : "-");
    fprintf(out, "agent:        %s\n", *w->agent_version ? w->agent_version : "-");
    fprintf(out, "verification: %s, %u check%s\n", *w->verification ? w->verification : "-",
            w->verification_checks, w->verification_checks == 1 ? "" : "s");
    for (size_t i = 0; i < w->n_verification_history; i++) {
        const Muster__VerificationResult *r = w->verification_history[i];
        char when[40];
        format_time(r->time_ms, when, sizeof(when));
        fprintf(out, "  %s  %-9s -> %-7s %s\n", when, r->outcome, r->state, r->text);
    }
    for (size_t i = 0; i < w->n_devices; i++) {
        const Muster__Device *d = w->devices[i];
        fprintf(out, "device %zu:     %s, PCI %04x:%04x at %s, %llu MiB, driver %s", i, d->model,
                d->pci_vendor_id, d->pci_device_id, *d->pci_bus_id ? d->pci_bus_id : "-",
                (unsigned long long)d->vram_mib, *d->driver_version ? d->driver_version : "-");
        if (d->link_speed_gbps > 0)
            fprintf(out, ", link %.1f GB/s", (double)d->link_speed_gbps);
        fputc('\n', out);
    }
}

void format_status(FILE *out, const Muster__StatusReply *s)
{
    char up[16];
    str_duration(s->uptime_ms, up, sizeof(up));
    fprintf(out, "musterd %s (protocol %u), up %s\n", s->version, s->protocol_version, up);
    fprintf(out, "workers:   %u total: %u online, %u suspect, %u offline\n", s->workers_total,
            s->workers_online, s->workers_suspect, s->workers_offline);
    fprintf(out, "gpus:      %u online\n", s->gpus_online);
    fprintf(out, "messages:  %llu received, %llu rejected, %llu dropped\n",
            (unsigned long long)s->messages_received, (unsigned long long)s->messages_rejected,
            (unsigned long long)s->messages_dropped);
    fprintf(out, "liveness:  heartbeat every %u ms, offline after %u missed\n",
            s->heartbeat_interval_ms, s->liveness);
    fprintf(out, "endpoints: agents %s, clients %s, events %s\n", s->agent_endpoint,
            s->client_endpoint, s->event_endpoint);
    if (s->account && *s->account)
        fprintf(out, "account:   %s (%s)\n", s->account, s->role);
    const Muster__WebhookStatus *w = s->webhook;
    if (w) {
        fprintf(out,
                "webhook:   %s: %llu posted, %llu delivered, %llu queued, %llu failed, "
                "%llu dropped, %llu retries\n",
                w->url, (unsigned long long)w->posted, (unsigned long long)w->delivered,
                (unsigned long long)w->queued, (unsigned long long)w->failed,
                (unsigned long long)w->dropped, (unsigned long long)w->retries);
        if (w->last_error && *w->last_error)
            fprintf(out, "           last error: %s%s\n", w->last_error,
                    w->last_status ? "" : " (no answer)");
    }
}

/* Print ROOT (taken; NULL when it could not be built) as a pretty-printed
 * document, or as one compact line (JSON Lines) when LINE. */
static int print_json_as(FILE *out, cJSON *root, bool line)
{
    if (!root)
        return -1;
    char *text = line ? cJSON_PrintUnformatted(root) : cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return -1;
    fprintf(out, "%s\n", text);
    cJSON_free(text);
    return 0;
}

static int print_json(FILE *out, cJSON *root)
{
    return print_json_as(out, root, false);
}

/* {KEY: [ITEM(LIST, 0), ..., ITEM(LIST, n - 1)]}: a list reply, to which the
 * caller adds the reply's other fields. NULL when out of memory. */
static cJSON *list_json(const char *key, const void *list, size_t n,
                        cJSON *(*item)(const void *list, size_t i))
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, key) : NULL;
    if (!arr) {
        cJSON_Delete(root);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *x = item(list, i);
        if (!x) {
            cJSON_Delete(root);
            return NULL;
        }
        cJSON_AddItemToArray(arr, x);
    }
    return root;
}

static cJSON *worker_json(const Muster__WorkerInfo *w)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", w->id);
    cJSON_AddStringToObject(o, "hostname", w->hostname);
    cJSON_AddStringToObject(o, "host_fingerprint", w->host_fingerprint);
    cJSON_AddStringToObject(o, "state", format_state_name(w->state));
    cJSON_AddStringToObject(o, "gpu_model", w->gpu_model);
    cJSON_AddStringToObject(o, "gpu_class", w->gpu_class);
    cJSON_AddNumberToObject(o, "gpu_count", w->gpu_count);
    cJSON_AddNumberToObject(o, "cpu_cores", w->cpu_cores);
    cJSON_AddNumberToObject(o, "memory_mib", (double)w->memory_mib);
    cJSON_AddStringToObject(o, "country", w->country);
    cJSON_AddStringToObject(o, "region", w->region);
    cJSON_AddNumberToObject(o, "bandwidth_down_mbps", w->bandwidth_down_mbps);
    cJSON_AddNumberToObject(o, "bandwidth_up_mbps", w->bandwidth_up_mbps);
    cJSON_AddStringToObject(o, "tier", w->tier);
    cJSON_AddNumberToObject(o, "last_seen_ms_ago", (double)w->last_seen_ms_ago);
    cJSON_AddNumberToObject(o, "registered_at_ms", (double)w->registered_at_ms);
    cJSON_AddNumberToObject(o, "connected_at_ms", (double)w->connected_at_ms);
    cJSON_AddStringToObject(o, "agent_version", w->agent_version);
    cJSON_AddBoolToObject(o, "simulated", w->simulated);
    cJSON_AddNumberToObject(o, "price_micro_usd", (double)w->price_micro_usd);
    cJSON_AddNumberToObject(o, "uptime", w->uptime);
    cJSON_AddStringToObject(o, "alloc", w->alloc);
    cJSON_AddStringToObject(o, "cluster_id", w->cluster_id);
    cJSON_AddStringToObject(o, "verification", w->verification);
    cJSON_AddNumberToObject(o, "verification_checks", w->verification_checks);
    cJSON *hist = cJSON_AddArrayToObject(o, "verification_history");
    for (size_t i = 0; hist && i < w->n_verification_history; i++) {
        const Muster__VerificationResult *r = w->verification_history[i];
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddNumberToObject(x, "time_ms", (double)r->time_ms);
        cJSON_AddStringToObject(x, "outcome", r->outcome);
        cJSON_AddStringToObject(x, "state", r->state);
        cJSON_AddNumberToObject(x, "expected_ms", r->expected_ms);
        cJSON_AddNumberToObject(x, "measured_ms", r->measured_ms);
        cJSON_AddNumberToObject(x, "rtt_ms", r->rtt_ms);
        cJSON_AddNumberToObject(x, "throughput_ratio", r->throughput_ratio);
        cJSON_AddStringToObject(x, "text", r->text);
        cJSON_AddItemToArray(hist, x);
    }
    cJSON *devs = cJSON_AddArrayToObject(o, "devices");
    for (size_t i = 0; devs && i < w->n_devices; i++) {
        const Muster__Device *d = w->devices[i];
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddStringToObject(x, "model", d->model);
        cJSON_AddNumberToObject(x, "pci_vendor_id", d->pci_vendor_id);
        cJSON_AddNumberToObject(x, "pci_device_id", d->pci_device_id);
        cJSON_AddStringToObject(x, "pci_bus_id", d->pci_bus_id);
        cJSON_AddNumberToObject(x, "vram_mib", (double)d->vram_mib);
        cJSON_AddStringToObject(x, "driver_version", d->driver_version);
        cJSON_AddNumberToObject(x, "link_speed_gbps", d->link_speed_gbps);
        cJSON_AddItemToArray(devs, x);
    }
    return o;
}

static cJSON *worker_at(const void *r, size_t i)
{
    return worker_json(((const Muster__ListWorkersReply *)r)->workers[i]);
}

int format_workers_json(FILE *out, const Muster__ListWorkersReply *r)
{
    cJSON *root = list_json("workers", r, r->n_workers, worker_at);
    if (root)
        cJSON_AddNumberToObject(root, "total", r->total);
    return print_json(out, root);
}

int format_worker_json(FILE *out, const Muster__WorkerInfo *w)
{
    return print_json(out, worker_json(w));
}

int format_status_json(FILE *out, const Muster__StatusReply *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return -1;
    cJSON_AddStringToObject(o, "version", s->version);
    cJSON_AddNumberToObject(o, "protocol_version", s->protocol_version);
    cJSON_AddNumberToObject(o, "uptime_ms", (double)s->uptime_ms);
    cJSON_AddNumberToObject(o, "workers_total", s->workers_total);
    cJSON_AddNumberToObject(o, "workers_online", s->workers_online);
    cJSON_AddNumberToObject(o, "workers_suspect", s->workers_suspect);
    cJSON_AddNumberToObject(o, "workers_offline", s->workers_offline);
    cJSON_AddNumberToObject(o, "gpus_online", s->gpus_online);
    cJSON_AddNumberToObject(o, "messages_received", (double)s->messages_received);
    cJSON_AddNumberToObject(o, "messages_rejected", (double)s->messages_rejected);
    cJSON_AddNumberToObject(o, "messages_dropped", (double)s->messages_dropped);
    cJSON_AddNumberToObject(o, "heartbeat_interval_ms", s->heartbeat_interval_ms);
    cJSON_AddNumberToObject(o, "liveness", s->liveness);
    cJSON_AddStringToObject(o, "agent_endpoint", s->agent_endpoint);
    cJSON_AddStringToObject(o, "client_endpoint", s->client_endpoint);
    cJSON_AddStringToObject(o, "event_endpoint", s->event_endpoint);
    cJSON_AddStringToObject(o, "account", s->account ? s->account : "");
    cJSON_AddStringToObject(o, "role", s->role ? s->role : "");
    const Muster__WebhookStatus *w = s->webhook;
    if (w) {
        cJSON *h = cJSON_AddObjectToObject(o, "webhook");
        if (h) {
            cJSON_AddStringToObject(h, "url", w->url);
            cJSON_AddNumberToObject(h, "posted", (double)w->posted);
            cJSON_AddNumberToObject(h, "delivered", (double)w->delivered);
            cJSON_AddNumberToObject(h, "failed", (double)w->failed);
            cJSON_AddNumberToObject(h, "dropped", (double)w->dropped);
            cJSON_AddNumberToObject(h, "retries", (double)w->retries);
            cJSON_AddNumberToObject(h, "queued", (double)w->queued);
            cJSON_AddNumberToObject(h, "last_status", w->last_status);
            cJSON_AddStringToObject(h, "last_error", w->last_error);
            cJSON_AddNumberToObject(h, "last_error_ms", (double)w->last_error_ms);
            cJSON_AddNumberToObject(h, "last_success_ms", (double)w->last_success_ms);
        }
    }
    return print_json(out, o);
}

int format_error_json(FILE *out, const char *status, const char *reason)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *e = o ? cJSON_AddObjectToObject(o, "error") : NULL;
    if (!e) {
        cJSON_Delete(o);
        return -1;
    }
    cJSON_AddStringToObject(e, "status", status);
    cJSON_AddStringToObject(e, "reason", reason);
    return print_json(out, o);
}

/* --- clusters, quotes, search, events ------------------------------------------ */

/* "8 workers (at least 5) with 1+ RTX 4090, tier medium or better, in
 * europe, countries DE/FR, uptime >= 0.95, at most 0.60 USD per GPU hour,
 * placement pack, verified workers only". */
static void spec_text(const Muster__ClusterSpec *s, char *out, size_t n)
{
    char models[160], regions[160], countries[96], price[24];
    join_text(s->gpu_models, s->n_gpu_models, "/", "any GPU", models, sizeof(models));
    join_text(s->regions, s->n_regions, ", ", "anywhere", regions, sizeof(regions));
    join_text(s->countries, s->n_countries, "/", "", countries, sizeof(countries));
    uint32_t per = s->gpus_per_worker ? s->gpus_per_worker : 1;
    size_t len = 0;
    int k;
#define APPEND(...)                                                                                \
    do {                                                                                           \
        if (len < n && (k = snprintf(out + len, n - len, __VA_ARGS__)) > 0)                        \
            len += (size_t)k;                                                                      \
    } while (0)
    out[0] = '\0';
    if (s->workers)
        APPEND("%u worker%s", s->workers, s->workers == 1 ? "" : "s");
    else if (s->total_gpus)
        APPEND("%u GPUs", s->total_gpus);
    uint32_t asked =
        s->workers ? s->workers : s->total_gpus / (s->gpus_per_worker ? s->gpus_per_worker : 1);
    if (s->min_workers && s->min_workers < asked)
        APPEND(" (at least %u)", s->min_workers);
    APPEND("%s%ux %s", len ? " with " : "", per, models);
    APPEND(", tier %s or better", *s->min_tier ? s->min_tier : "low");
    APPEND(", %s%s", s->n_regions ? "in " : "", regions);
    if (s->n_countries)
        APPEND(", countries %s", countries);
    if (s->min_uptime > 0)
        APPEND(", uptime >= %.2f", s->min_uptime);
    if (s->max_price_micro_usd) {
        format_usd(s->max_price_micro_usd, price, sizeof(price));
        APPEND(", at most %s USD per GPU hour", price);
    }
    if (*s->placement)
        APPEND(", placement %s", s->placement);
    APPEND(", %s", s->include_unverified ? "unverified workers too" : "verified workers only");
#undef APPEND
}

void format_quote(FILE *out, const Muster__QuoteReply *q)
{
    char hour[24], total[24];
    format_usd(q->price_per_hour_micro_usd, hour, sizeof(hour));
    format_usd(q->total_micro_usd, total, sizeof(total));
    fprintf(out, "%u worker%s with %u GPU%s: %s USD per hour, %s USD for %u hour%s\n", q->workers,
            q->workers == 1 ? "" : "s", q->gpus, q->gpus == 1 ? "" : "s", hour, total, q->hours,
            q->hours == 1 ? "" : "s");
    fprintf(out, "(a quote reserves nothing: `muster cluster create` with the same flags asks "
                 "for it)\n");
}

/* Distinct regions of the members, or of the spec, or "any". */
static void cluster_regions(const Muster__ClusterInfo *c, char *out, size_t n)
{
    char *seen[16];
    size_t ns = 0;
    for (size_t i = 0; i < c->n_members && ns < 16; i++) {
        const char *r = c->members[i]->region;
        if (!r || !*r)
            continue;
        size_t j = 0;
        while (j < ns && strcmp(seen[j], r))
            j++;
        if (j == ns)
            seen[ns++] = (char *)r;
    }
    if (ns)
        join_text(seen, ns, ",", "", out, n);
    else if (c->spec)
        join_text(c->spec->regions, c->spec->n_regions, ",", "any", out, n);
    else
        snprintf(out, n, "any");
}

static void cluster_models(const Muster__ClusterInfo *c, char *out, size_t n)
{
    if (c->spec && c->spec->n_gpu_models)
        join_text(c->spec->gpu_models, c->spec->n_gpu_models, "/", "", out, n);
    else if (c->n_members && *c->members[0]->gpu_model)
        snprintf(out, n, "%s", c->members[0]->gpu_model);
    else
        snprintf(out, n, "any");
}

static uint32_t cluster_workers(const Muster__ClusterInfo *c)
{
    if (c->n_members)
        return (uint32_t)c->n_members;
    return c->spec ? c->spec->workers : 0;
}

static void ends_text(const Muster__ClusterInfo *c, uint64_t now_ms, char *out, size_t n)
{
    if (format_cluster_ended(c->state) || c->ended_at_ms)
        snprintf(out, n, "-");
    else if (c->ends_at_ms <= now_ms)
        snprintf(out, n, "now");
    else
        span_text(c->ends_at_ms - now_ms, out, n);
}

void format_cluster_summary(FILE *out, const Muster__ClusterInfo *c)
{
    char models[96], regions[96], hour[24], total[24], ends[32];
    cluster_models(c, models, sizeof(models));
    cluster_regions(c, regions, sizeof(regions));
    format_usd(c->price_per_hour_micro_usd, hour, sizeof(hour));
    format_usd(c->total_micro_usd, total, sizeof(total));
    format_time(c->ends_at_ms, ends, sizeof(ends));
    uint32_t w = cluster_workers(c);
    fprintf(out,
            "cluster %s (%s): %u worker%s, %u GPU%s of %s in %s; %s USD per hour, %s USD for "
            "%u hour%s; ends %s\n",
            c->id, c->state, w, w == 1 ? "" : "s", c->gpus, c->gpus == 1 ? "" : "s", models,
            regions, hour, total, c->hours, c->hours == 1 ? "" : "s", ends);
}

void format_clusters_table(FILE *out, const Muster__ListClustersReply *r, uint64_t now_ms)
{
    if (r->n_clusters == 0) {
        fprintf(out, "No clusters.\n");
        return;
    }
    fprintf(out, "%-8s  %-12s  %-12s  %7s  %5s  %-16s  %-20s  %8s  %s\n", "ID", "OWNER", "STATE",
            "WORKERS", "GPUS", "MODEL", "REGION", "$/H", "ENDS IN");
    uint64_t hourly = 0;
    size_t active = 0;
    for (size_t i = 0; i < r->n_clusters; i++) {
        const Muster__ClusterInfo *c = r->clusters[i];
        char models[96], regions[96], hour[24], ends[32];
        cluster_models(c, models, sizeof(models));
        cluster_regions(c, regions, sizeof(regions));
        format_usd(c->price_per_hour_micro_usd, hour, sizeof(hour));
        ends_text(c, now_ms, ends, sizeof(ends));
        fprintf(out, "%-8.8s  %-12.12s  %-12.12s  %7u  %5u  %-16.16s  %-20.20s  %8s  %s\n", c->id,
                c->owner, c->state, cluster_workers(c), c->gpus, models, regions, hour, ends);
        if (!format_cluster_ended(c->state)) {
            active++;
            hourly += c->price_per_hour_micro_usd;
        }
    }
    char h[24];
    format_usd(hourly, h, sizeof(h));
    fprintf(out, "%zu cluster%s, %zu active costing %s USD per hour", r->n_clusters,
            r->n_clusters == 1 ? "" : "s", active, h);
    if (r->total > r->n_clusters)
        fprintf(out, " (of %u matching: see --limit)", r->total);
    fputs(".\n", out);
}

void format_cluster_detail(FILE *out, const Muster__ClusterInfo *c, uint64_t now_ms)
{
    char buf[512], t[32], hour[24], total[24], span[32];
    fprintf(out, "id:           %s\n", c->id);
    fprintf(out, "owner:        %s\n", *c->owner ? c->owner : "-");
    fprintf(out, "state:        %s", c->state);
    if (*c->end_reason)
        fprintf(out, " (%s)", c->end_reason);
    fputc('\n', out);
    if (c->spec) {
        spec_text(c->spec, buf, sizeof(buf));
        fprintf(out, "request:      %s\n", buf);
    }
    format_usd(c->price_per_hour_micro_usd, hour, sizeof(hour));
    format_usd(c->total_micro_usd, total, sizeof(total));
    fprintf(out, "gpus:         %u on %zu worker%s\n", c->gpus, c->n_members,
            c->n_members == 1 ? "" : "s");
    fprintf(out, "price:        %s USD per hour, %s USD for %u hour%s\n", hour, total, c->hours,
            c->hours == 1 ? "" : "s");
    format_time(c->created_at_ms, t, sizeof(t));
    fprintf(out, "created:      %s\n", t);
    if (c->ready_at_ms) {
        format_time(c->ready_at_ms, t, sizeof(t));
        fprintf(out, "ready:        %s (%.1f s after creation)\n", t,
                c->ready_at_ms >= c->created_at_ms
                    ? (double)(c->ready_at_ms - c->created_at_ms) / 1000.0
                    : 0.0);
    } else {
        fprintf(out, "ready:        -\n");
    }
    format_time(c->ends_at_ms, t, sizeof(t));
    if (!c->ended_at_ms && c->ends_at_ms > now_ms) {
        span_text(c->ends_at_ms - now_ms, span, sizeof(span));
        fprintf(out, "ends:         %s (in %s)\n", t, span);
    } else {
        fprintf(out, "ends:         %s\n", t);
    }
    if (c->ended_at_ms) {
        format_time(c->ended_at_ms, t, sizeof(t));
        fprintf(out, "ended:        %s%s%s\n", t, *c->end_reason ? ": " : "", c->end_reason);
    }
    size_t acked = 0, lost = 0;
    for (size_t i = 0; i < c->n_members; i++) {
        acked += c->members[i]->acknowledged;
        lost += c->members[i]->lost;
    }
    fprintf(out, "members:      %zu, %zu joined, %zu lost\n", c->n_members, acked, lost);
    if (c->n_members) {
        fprintf(out, "  %-8s  %-20s  %-16s  %-20s  %-6s  %7s  %-6s  %s\n", "WORKER", "HOST", "GPUS",
                "REGION", "TIER", "$/GPU-H", "JOINED", "STATE");
        for (size_t i = 0; i < c->n_members; i++) {
            const Muster__ClusterMember *m = c->members[i];
            char gpus[64], where[48], price[24], state[32];
            if (!*m->worker_id) {
                fprintf(out, "  %-8s  (vacant seat)\n", "-");
                continue;
            }
            snprintf(gpus, sizeof(gpus), "%ux %s", m->gpu_count, m->gpu_model);
            if (*m->country)
                snprintf(where, sizeof(where), "%s/%s", m->region, m->country);
            else
                snprintf(where, sizeof(where), "%s", m->region);
            format_usd(m->price_micro_usd, price, sizeof(price));
            snprintf(state, sizeof(state), "%s%s", *m->worker_state ? m->worker_state : "-",
                     m->lost ? ", lost" : "");
            fprintf(out, "  %-8.8s  %-20.20s  %-16.16s  %-20.20s  %-6s  %7s  %-6s  %s\n",
                    m->worker_id, m->hostname, gpus, where, m->tier, price,
                    m->acknowledged ? "yes" : "no", state);
        }
    }
    if (c->n_history) {
        fprintf(out, "history:\n");
        for (size_t i = 0; i < c->n_history; i++) {
            const Muster__ClusterChange *h = c->history[i];
            format_time(h->time_ms, t, sizeof(t));
            fprintf(out, "  %s  %-8.8s  %s%s%s\n", t, *h->worker_id ? h->worker_id : "-", h->what,
                    *h->reason ? ": " : "", h->reason);
        }
    }
}

void format_search_table(FILE *out, const Muster__SearchReply *r)
{
    if (r->n_rows == 0) {
        fprintf(out, "No free workers match.\n");
        return;
    }
    fprintf(out, "%-16s  %-16s  %-6s  %7s  %5s  %-11s  %-13s  %s\n", "MODEL", "REGION", "TIER",
            "WORKERS", "GPUS", "GPUS/WORKER", "$/GPU-H", "UPTIME (best / mean)");
    uint64_t workers = 0, gpus = 0;
    for (size_t i = 0; i < r->n_rows; i++) {
        const Muster__SearchRow *w = r->rows[i];
        char lo[24], hi[24], range[56];
        format_usd(w->min_price_micro_usd, lo, sizeof(lo));
        format_usd(w->max_price_micro_usd, hi, sizeof(hi));
        if (w->min_price_micro_usd == w->max_price_micro_usd)
            snprintf(range, sizeof(range), "%s", lo);
        else
            snprintf(range, sizeof(range), "%s-%s", lo, hi);
        fprintf(out, "%-16.16s  %-16.16s  %-6s  %7u  %5u  %-11.11s  %-13s  %.3f / %.3f\n",
                w->gpu_model, w->region, w->tier, w->workers, w->gpus, w->gpus_per_worker, range,
                w->best_uptime, w->mean_uptime);
        workers += w->workers;
        gpus += w->gpus;
    }
    fprintf(out, "%" PRIu64 " free worker%s with %" PRIu64 " GPU%s in %zu row%s", workers,
            workers == 1 ? "" : "s", gpus, gpus == 1 ? "" : "s", r->n_rows,
            r->n_rows == 1 ? "" : "s");
    if (r->total_workers > workers)
        fprintf(out, " (of %u matching free workers: see --limit)", r->total_workers);
    fputs(".\n", out);
}

void format_not_met(FILE *out, const Muster__NotMet *nm)
{
    fprintf(out, "muster: cannot be met now: %s\n", *nm->explanation ? nm->explanation : "-");
    if (nm->n_alternatives == 0) {
        fprintf(out, "no nearby request would succeed now\n");
        return;
    }
    int width = 24;
    for (size_t i = 0; i < nm->n_alternatives; i++) {
        int len = (int)strlen(nm->alternatives[i]->flags);
        if (len > width)
            width = len;
    }
    fprintf(out, "nearest requests that would succeed:\n");
    for (size_t i = 0; i < nm->n_alternatives; i++)
        fprintf(out, "  %-*s  %s\n", width, nm->alternatives[i]->flags, nm->alternatives[i]->text);
}

void format_event_line(FILE *out, const Muster__Event *e)
{
    char t[48], ms[8];
    time_t sec = (time_t)(e->time_ms / 1000);
    struct tm tm;
    if (!localtime_r(&sec, &tm) || strftime(t, sizeof(t), "%H:%M:%S", &tm) == 0)
        snprintf(t, sizeof(t), "%" PRIu64, e->time_ms / 1000);
    snprintf(ms, sizeof(ms), ".%03u", (unsigned)(e->time_ms % 1000));
    fprintf(out, "%s%s  %-22s  ", t, ms, e->topic);
    if (*e->worker_id)
        fprintf(out, "worker %.8s: ", e->worker_id);
    fputs(*e->detail ? e->detail : "-", out);
    if (*e->cluster_state)
        fprintf(out, " [%s]", e->cluster_state);
    fputc('\n', out);
}

/* --- their JSON --- */

/* An array of strings (empty when there are none, unlike
 * cJSON_CreateStringArray with NULL). */
static cJSON *strings_json(char **v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static cJSON *spec_json(const Muster__ClusterSpec *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "gpu_models", strings_json(s->gpu_models, s->n_gpu_models));
    cJSON_AddNumberToObject(o, "gpus_per_worker", s->gpus_per_worker);
    cJSON_AddNumberToObject(o, "workers", s->workers);
    cJSON_AddNumberToObject(o, "total_gpus", s->total_gpus);
    cJSON_AddNumberToObject(o, "min_workers", s->min_workers);
    cJSON_AddStringToObject(o, "min_tier", s->min_tier);
    cJSON_AddItemToObject(o, "regions", strings_json(s->regions, s->n_regions));
    cJSON_AddItemToObject(o, "countries", strings_json(s->countries, s->n_countries));
    cJSON_AddNumberToObject(o, "min_uptime", s->min_uptime);
    cJSON_AddNumberToObject(o, "max_price_micro_usd", (double)s->max_price_micro_usd);
    cJSON_AddBoolToObject(o, "include_unverified", s->include_unverified);
    cJSON_AddStringToObject(o, "placement", s->placement);
    cJSON_AddNumberToObject(o, "hours", s->hours);
    return o;
}

static cJSON *cluster_json(const Muster__ClusterInfo *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", c->id);
    cJSON_AddStringToObject(o, "owner", c->owner);
    cJSON_AddStringToObject(o, "state", c->state);
    if (c->spec)
        cJSON_AddItemToObject(o, "spec", spec_json(c->spec));
    cJSON *ms = cJSON_AddArrayToObject(o, "members");
    for (size_t i = 0; ms && i < c->n_members; i++) {
        const Muster__ClusterMember *m = c->members[i];
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddStringToObject(x, "worker_id", m->worker_id);
        cJSON_AddStringToObject(x, "hostname", m->hostname);
        cJSON_AddStringToObject(x, "gpu_model", m->gpu_model);
        cJSON_AddNumberToObject(x, "gpu_count", m->gpu_count);
        cJSON_AddStringToObject(x, "region", m->region);
        cJSON_AddStringToObject(x, "country", m->country);
        cJSON_AddStringToObject(x, "tier", m->tier);
        cJSON_AddNumberToObject(x, "price_micro_usd", (double)m->price_micro_usd);
        cJSON_AddBoolToObject(x, "acknowledged", m->acknowledged);
        cJSON_AddBoolToObject(x, "lost", m->lost);
        cJSON_AddStringToObject(x, "worker_state", m->worker_state);
        cJSON_AddItemToArray(ms, x);
    }
    cJSON_AddNumberToObject(o, "gpus", c->gpus);
    cJSON_AddNumberToObject(o, "hours", c->hours);
    cJSON_AddNumberToObject(o, "created_at_ms", (double)c->created_at_ms);
    cJSON_AddNumberToObject(o, "ready_at_ms", (double)c->ready_at_ms);
    cJSON_AddNumberToObject(o, "ends_at_ms", (double)c->ends_at_ms);
    cJSON_AddNumberToObject(o, "ended_at_ms", (double)c->ended_at_ms);
    cJSON_AddNumberToObject(o, "price_per_hour_micro_usd", (double)c->price_per_hour_micro_usd);
    cJSON_AddNumberToObject(o, "total_micro_usd", (double)c->total_micro_usd);
    cJSON_AddStringToObject(o, "end_reason", c->end_reason);
    cJSON *hs = cJSON_AddArrayToObject(o, "history");
    for (size_t i = 0; hs && i < c->n_history; i++) {
        const Muster__ClusterChange *h = c->history[i];
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddNumberToObject(x, "time_ms", (double)h->time_ms);
        cJSON_AddStringToObject(x, "worker_id", h->worker_id);
        cJSON_AddStringToObject(x, "what", h->what);
        cJSON_AddStringToObject(x, "reason", h->reason);
        cJSON_AddItemToArray(hs, x);
    }
    return o;
}

int format_quote_json(FILE *out, const Muster__QuoteReply *q)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return -1;
    cJSON_AddNumberToObject(o, "workers", q->workers);
    cJSON_AddNumberToObject(o, "gpus", q->gpus);
    cJSON_AddNumberToObject(o, "price_per_hour_micro_usd", (double)q->price_per_hour_micro_usd);
    cJSON_AddNumberToObject(o, "total_micro_usd", (double)q->total_micro_usd);
    cJSON_AddNumberToObject(o, "hours", q->hours);
    return print_json(out, o);
}

int format_cluster_json(FILE *out, const Muster__ClusterInfo *c)
{
    return print_json(out, cluster_json(c));
}

static cJSON *cluster_at(const void *r, size_t i)
{
    return cluster_json(((const Muster__ListClustersReply *)r)->clusters[i]);
}

int format_clusters_json(FILE *out, const Muster__ListClustersReply *r)
{
    cJSON *root = list_json("clusters", r, r->n_clusters, cluster_at);
    if (root)
        cJSON_AddNumberToObject(root, "total", r->total);
    return print_json(out, root);
}

static cJSON *search_row_at(const void *r, size_t i)
{
    const Muster__SearchRow *w = ((const Muster__SearchReply *)r)->rows[i];
    cJSON *x = cJSON_CreateObject();
    if (!x)
        return NULL;
    cJSON_AddStringToObject(x, "gpu_model", w->gpu_model);
    cJSON_AddStringToObject(x, "region", w->region);
    cJSON_AddStringToObject(x, "tier", w->tier);
    cJSON_AddNumberToObject(x, "workers", w->workers);
    cJSON_AddNumberToObject(x, "gpus", w->gpus);
    cJSON_AddNumberToObject(x, "min_price_micro_usd", (double)w->min_price_micro_usd);
    cJSON_AddNumberToObject(x, "max_price_micro_usd", (double)w->max_price_micro_usd);
    cJSON_AddNumberToObject(x, "best_uptime", w->best_uptime);
    cJSON_AddNumberToObject(x, "mean_uptime", w->mean_uptime);
    cJSON_AddStringToObject(x, "gpus_per_worker", w->gpus_per_worker);
    return x;
}

int format_search_json(FILE *out, const Muster__SearchReply *r)
{
    cJSON *root = list_json("rows", r, r->n_rows, search_row_at);
    if (root)
        cJSON_AddNumberToObject(root, "total_workers", r->total_workers);
    return print_json(out, root);
}

int format_not_met_json(FILE *out, const Muster__NotMet *nm, const char *reason)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *e = o ? cJSON_AddObjectToObject(o, "error") : NULL;
    if (!e) {
        cJSON_Delete(o);
        return -1;
    }
    cJSON_AddStringToObject(e, "status", "not_met");
    cJSON_AddStringToObject(e, "reason", reason && *reason ? reason : nm->explanation);
    cJSON_AddStringToObject(o, "constraint", nm->constraint);
    cJSON_AddNumberToObject(o, "available", nm->available);
    cJSON_AddStringToObject(o, "explanation", nm->explanation);
    cJSON *alts = cJSON_AddArrayToObject(o, "alternatives");
    for (size_t i = 0; alts && i < nm->n_alternatives; i++) {
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddStringToObject(x, "flags", nm->alternatives[i]->flags);
        cJSON_AddStringToObject(x, "text", nm->alternatives[i]->text);
        cJSON_AddNumberToObject(x, "available", nm->alternatives[i]->available);
        cJSON_AddItemToArray(alts, x);
    }
    return print_json(out, o);
}

int format_event_json(FILE *out, const Muster__Event *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return -1;
    cJSON_AddNumberToObject(o, "seq", (double)e->seq);
    cJSON_AddNumberToObject(o, "time_ms", (double)e->time_ms);
    cJSON_AddStringToObject(o, "topic", e->topic);
    cJSON_AddStringToObject(o, "worker_id", e->worker_id);
    cJSON_AddStringToObject(o, "detail", e->detail);
    cJSON_AddStringToObject(o, "cluster_id", e->cluster_id);
    cJSON_AddStringToObject(o, "cluster_state", e->cluster_state);
    return print_json_as(out, o, true);
}

/* --- tasks ---------------------------------------------------------------------- */

int format_task_final(const char *state)
{
    return state &&
           (!strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "cancelled"));
}

int format_is_text(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        /* Lead byte: the length and the lowest code point it may encode
         * (no overlong forms), then continuation bytes; no surrogates, no
         * code point above U+10FFFF. */
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* "sig 9", "0", or "-" when the task has not exited yet. */
static void exit_text(const Muster__TaskInfo *t, char *out, size_t n)
{
    if (t->signal > 0)
        snprintf(out, n, "sig %d", t->signal);
    else if (t->exit_code >= 0 && (t->attempts > 0 || format_task_final(t->state)))
        snprintf(out, n, "%d", t->exit_code);
    else
        snprintf(out, n, "-");
}

static uint64_t counts_total(const Muster__TaskCounts *c)
{
    return c ? (uint64_t)c->waiting + c->ready + c->running + c->succeeded + c->failed +
                   c->cancelled
             : 0;
}

void format_task_counts(FILE *out, const Muster__TaskCounts *c)
{
    static const Muster__TaskCounts zero = MUSTER__TASK_COUNTS__INIT;
    uint64_t total = counts_total(c);
    if (!c)
        c = &zero;
    fprintf(out, "%" PRIu64 " task%s", total, total == 1 ? "" : "s");
    const char *names[] = {"succeeded", "running", "ready", "waiting", "failed", "cancelled"};
    uint32_t v[] = {c->succeeded, c->running, c->ready, c->waiting, c->failed, c->cancelled};
    const char *sep = ": ";
    for (size_t i = 0; i < 6; i++) {
        if (!v[i])
            continue;
        fprintf(out, "%s%u %s", sep, v[i], names[i]);
        sep = ", ";
    }
}

void format_tasks_table(FILE *out, const Muster__ListTasksReply *r, uint64_t now_ms)
{
    if (r->n_tasks == 0 && counts_total(r->counts) == 0) {
        fprintf(out, "No tasks.\n");
        return;
    }
    if (r->n_tasks == 0)
        fprintf(out, "No tasks match; the cluster has ");
    else
        fprintf(out, "%6s  %-16s  %-9s  %-8s  %4s  %8s  %5s  %s\n", "NUMBER", "NAME", "STATE",
                "WORKER", "GPUS", "ATTEMPTS", "EXIT", "AGE/REASON");
    for (size_t i = 0; i < r->n_tasks; i++) {
        const Muster__TaskInfo *t = r->tasks[i];
        char ex[16], age[32];
        exit_text(t, ex, sizeof(ex));
        if (t->submitted_at_ms && now_ms > t->submitted_at_ms)
            span_text(now_ms - t->submitted_at_ms, age, sizeof(age));
        else
            snprintf(age, sizeof(age), "0s");
        fprintf(out, "%6u  %-16.16s  %-9.9s  %-8.8s  %4u  %8u  %5s  %s\n", t->number,
                *t->name ? t->name : "-", t->state, *t->worker_id ? t->worker_id : "-",
                t->spec ? t->spec->gpus : 0, t->attempts, ex, *t->reason ? t->reason : age);
    }
    format_task_counts(out, r->counts);
    if (r->total > r->n_tasks)
        fprintf(out, " (listed %zu of %u matching: see --limit and --offset)", r->n_tasks,
                r->total);
    fputs(".\n", out);
}

/* ARG as a shell would need it: bare when safe, else in single quotes. */
static void quote_arg(FILE *out, const char *arg)
{
    bool bare = *arg != '\0';
    for (const char *p = arg; *p && bare; p++)
        bare = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%",
                      *p) != NULL;
    if (bare) {
        fputs(arg, out);
        return;
    }
    fputc('\'', out);
    for (const char *p = arg; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", out);
        else
            fputc(*p, out);
    }
    fputc('\'', out);
}

static void hex_line(FILE *out, const uint8_t *p, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max; i++)
        fprintf(out, "%s%02x", i && i % 4 == 0 ? " " : "", p[i]);
    if (n > max)
        fputs(" ...", out);
}

/* Text (each line indented) or size and hex. */
static void result_block(FILE *out, const char *label, const uint8_t *p, size_t n, size_t total)
{
    if (n == 0) {
        if (total)
            fprintf(out, "%-14s%zu bytes (not in this reply)\n", label, total);
        else
            fprintf(out, "%-14s-\n", label);
        return;
    }
    if (!format_is_text(p, n)) {
        fprintf(out, "%-14s%zu bytes, not text: ", label, total > n ? total : n);
        hex_line(out, p, n, 32);
        fputc('\n', out);
        return;
    }
    fprintf(out, "%-14s%zu bytes\n", label, total > n ? total : n);
    bool bol = true;
    for (size_t i = 0; i < n; i++) {
        if (bol)
            fputs("  ", out);
        fputc(p[i], out);
        bol = p[i] == '\n';
    }
    if (!bol)
        fputc('\n', out);
}

void format_task_detail(FILE *out, const Muster__TaskInfo *t, uint64_t now_ms)
{
    const Muster__TaskSpec *s = t->spec;
    char when[32], span[32];
    fprintf(out, "%-14s%s/%u", "task:", t->cluster_id, t->number);
    if (*t->name)
        fprintf(out, " (\"%s\")", t->name);
    fputc('\n', out);
    fprintf(out, "%-14s%s%s%s\n", "state:", t->state, *t->reason ? ": " : "", t->reason);
    if (s) {
        fprintf(out, "%-14s", "command:");
        for (size_t i = 0; i < s->n_argv; i++) {
            if (i)
                fputc(' ', out);
            quote_arg(out, s->argv[i]);
        }
        fputc('\n', out);
        if (*s->image)
            fprintf(out, "%-14s%s\n", "image:", s->image);
        for (size_t i = 0; i < s->n_env; i++)
            fprintf(out, "%-14s%s\n", i ? "" : "env:", s->env[i]);
        fprintf(out, "%-14s%s\n", "cwd:", *s->cwd ? s->cwd : "- (a fresh directory per attempt)");
        fprintf(out, "%-14s%u GPU%s, %u CPU%s, %" PRIu64 " MiB reserved\n", "resources:", s->gpus,
                s->gpus == 1 ? "" : "s", s->cpus, s->cpus == 1 ? "" : "s", s->memory_mib);
        fprintf(out, "%-14s", "after:");
        for (size_t i = 0; i < s->n_after; i++)
            fprintf(out, "%s%s", i ? ", " : "", s->after[i]);
        fputs(s->n_after ? "\n" : "-\n", out);
        if (*s->member)
            fprintf(out, "%-14s%s %s\n", "placement:", *s->placement ? s->placement : "member",
                    s->member);
        else
            fprintf(out, "%-14s%s\n", "placement:", *s->placement ? s->placement : "default");
        if (!s->retry_exits)
            fprintf(out, "%-14sexits and timeouts not retried (a lost member always is)\n",
                    "retries:");
        else if (s->max_retries < 0)
            fprintf(out, "%-14snone\n", "retries:");
        else if (s->max_retries == 0)
            fprintf(out, "%-14sup to 3 (the default)\n", "retries:");
        else
            fprintf(out, "%-14sup to %d\n", "retries:", s->max_retries);
        if (s->timeout_ms)
            fprintf(out, "%-14s%.3g s per attempt\n", "timeout:", (double)s->timeout_ms / 1000.0);
        else
            fprintf(out, "%-14snone\n", "timeout:");
        if (*s->result_file)
            fprintf(out, "%-14s%s\n", "result file:", s->result_file);
    }
    if (*t->worker_id) {
        fprintf(out, "%-14s%s", "worker:", t->worker_id);
        for (size_t i = 0; i < t->n_gpu_indices; i++)
            fprintf(out, "%s%u", i ? "," : ", GPUs ", t->gpu_indices[i]);
        fputc('\n', out);
    } else {
        fprintf(out, "%-14s- (never ran)\n", "worker:");
    }
    fprintf(out, "%-14s%u (%u failed, %u lost)\n", "attempts:", t->attempts, t->failures,
            t->losses);
    char ex[16];
    exit_text(t, ex, sizeof(ex));
    fprintf(out, "%-14s%s\n", "exit:", ex);
    format_time(t->submitted_at_ms, when, sizeof(when));
    if (t->submitted_at_ms && now_ms > t->submitted_at_ms) {
        span_text(now_ms - t->submitted_at_ms, span, sizeof(span));
        fprintf(out, "%-14s%s (%s ago)\n", "submitted:", when, span);
    } else {
        fprintf(out, "%-14s%s\n", "submitted:", when);
    }
    format_time(t->started_at_ms, when, sizeof(when));
    fprintf(out, "%-14s%s\n", "started:", when);
    format_time(t->finished_at_ms, when, sizeof(when));
    if (t->finished_at_ms && t->started_at_ms && t->finished_at_ms >= t->started_at_ms) {
        str_duration(t->finished_at_ms - t->started_at_ms, span, sizeof(span));
        fprintf(out, "%-14s%s (the last attempt took %s)\n", "finished:", when, span);
    } else {
        fprintf(out, "%-14s%s\n", "finished:", when);
    }
    fprintf(out, "%-14s%" PRIu64 " bytes (muster task logs %s/%u)\n", "output:", t->log_bytes,
            t->cluster_id, t->number);
    result_block(out, "result:", t->result.data, t->result.len, t->result_bytes);
}

/* --- their JSON --- */

static char *base64(const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = cJSON_malloc((n + 2) / 3 * 4 + 1);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        s[o++] = tab[v >> 18 & 63];
        s[o++] = tab[v >> 12 & 63];
        s[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        s[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    s[o] = '\0';
    return s;
}

/* KEY: the bytes in base64; TEXT_KEY: them as a string when they are
 * UTF-8 (JSON strings are), else null. */
static void add_bytes(cJSON *o, const char *key, const char *text_key, const uint8_t *p, size_t n)
{
    char *b = base64(p, n);
    if (b) {
        cJSON_AddStringToObject(o, key, b);
        cJSON_free(b);
    }
    char *t = format_is_text(p, n) ? cJSON_malloc(n + 1) : NULL;
    if (t) {
        if (n)
            memcpy(t, p, n); /* p may be NULL when n is 0 */
        t[n] = '\0';
        cJSON_AddStringToObject(o, text_key, t);
        cJSON_free(t);
    } else {
        cJSON_AddNullToObject(o, text_key);
    }
}

static cJSON *task_spec_json(const Muster__TaskSpec *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "name", s->name);
    cJSON_AddItemToObject(o, "argv", strings_json(s->argv, s->n_argv));
    cJSON_AddStringToObject(o, "image", s->image);
    cJSON_AddItemToObject(o, "env", strings_json(s->env, s->n_env));
    cJSON_AddStringToObject(o, "cwd", s->cwd);
    cJSON_AddNumberToObject(o, "gpus", s->gpus);
    cJSON_AddNumberToObject(o, "cpus", s->cpus);
    cJSON_AddNumberToObject(o, "memory_mib", (double)s->memory_mib);
    cJSON_AddItemToObject(o, "after", strings_json(s->after, s->n_after));
    cJSON_AddStringToObject(o, "placement", s->placement);
    cJSON_AddStringToObject(o, "member", s->member);
    cJSON_AddNumberToObject(o, "max_retries", s->max_retries);
    cJSON_AddBoolToObject(o, "retry_exits", s->retry_exits);
    cJSON_AddNumberToObject(o, "timeout_ms", s->timeout_ms);
    cJSON_AddStringToObject(o, "result_file", s->result_file);
    return o;
}

static cJSON *task_json(const Muster__TaskInfo *t)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char id[160];
    snprintf(id, sizeof(id), "%s/%u", t->cluster_id, t->number);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "cluster_id", t->cluster_id);
    cJSON_AddNumberToObject(o, "number", t->number);
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "state", t->state);
    if (t->spec)
        cJSON_AddItemToObject(o, "spec", task_spec_json(t->spec));
    cJSON_AddStringToObject(o, "worker_id", t->worker_id);
    cJSON *g = cJSON_AddArrayToObject(o, "gpu_indices");
    for (size_t i = 0; g && i < t->n_gpu_indices; i++)
        cJSON_AddItemToArray(g, cJSON_CreateNumber(t->gpu_indices[i]));
    cJSON_AddNumberToObject(o, "attempts", t->attempts);
    cJSON_AddNumberToObject(o, "failures", t->failures);
    cJSON_AddNumberToObject(o, "losses", t->losses);
    cJSON_AddNumberToObject(o, "exit_code", t->exit_code);
    cJSON_AddNumberToObject(o, "signal", t->signal);
    cJSON_AddNumberToObject(o, "submitted_at_ms", (double)t->submitted_at_ms);
    cJSON_AddNumberToObject(o, "started_at_ms", (double)t->started_at_ms);
    cJSON_AddNumberToObject(o, "finished_at_ms", (double)t->finished_at_ms);
    cJSON_AddStringToObject(o, "reason", t->reason);
    add_bytes(o, "result", "result_text", t->result.data, t->result.len);
    cJSON_AddNumberToObject(o, "result_bytes", t->result_bytes);
    cJSON_AddNumberToObject(o, "log_bytes", (double)t->log_bytes);
    return o;
}

static cJSON *task_counts_json(const Muster__TaskCounts *c)
{
    static const Muster__TaskCounts zero = MUSTER__TASK_COUNTS__INIT;
    if (!c)
        c = &zero;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "waiting", c->waiting);
    cJSON_AddNumberToObject(o, "ready", c->ready);
    cJSON_AddNumberToObject(o, "running", c->running);
    cJSON_AddNumberToObject(o, "succeeded", c->succeeded);
    cJSON_AddNumberToObject(o, "failed", c->failed);
    cJSON_AddNumberToObject(o, "cancelled", c->cancelled);
    return o;
}

int format_task_json(FILE *out, const Muster__TaskInfo *t)
{
    return print_json(out, task_json(t));
}

static cJSON *task_at(const void *r, size_t i)
{
    return task_json(((const Muster__ListTasksReply *)r)->tasks[i]);
}

int format_tasks_json(FILE *out, const Muster__ListTasksReply *r)
{
    cJSON *root = list_json("tasks", r, r->n_tasks, task_at);
    if (root) {
        cJSON_AddNumberToObject(root, "total", r->total);
        cJSON_AddItemToObject(root, "counts", task_counts_json(r->counts));
    }
    return print_json(out, root);
}

int format_submitted_json(FILE *out, const Muster__SubmitTasksReply *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return -1;
    cJSON_AddStringToObject(o, "cluster_id", r->cluster_id);
    cJSON_AddNumberToObject(o, "first", r->first);
    cJSON_AddNumberToObject(o, "count", r->count);
    return print_json(out, o);
}

int format_task_logs_json(FILE *out, const char *cluster, uint32_t number,
                          const Muster__TaskLogsReply *r, int line)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return -1;
    cJSON_AddStringToObject(o, "cluster_id", cluster);
    cJSON_AddNumberToObject(o, "number", number);
    cJSON_AddNumberToObject(o, "offset", (double)r->offset);
    cJSON_AddNumberToObject(o, "next", (double)r->next);
    cJSON_AddBoolToObject(o, "final", r->final);
    cJSON_AddStringToObject(o, "state", r->state);
    add_bytes(o, "data", "text", r->data.data, r->data.len);
    return print_json_as(out, o, line != 0);
}

int format_task_wait_json(FILE *out, const char *cluster, const Muster__SubmitTasksReply *submitted,
                          const char *outcome, const Muster__TaskCounts *counts,
                          const Muster__TaskInfo *const *failed, size_t n_failed)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return -1;
    cJSON_AddStringToObject(o, "cluster_id", cluster);
    if (submitted) {
        cJSON_AddNumberToObject(o, "first", submitted->first);
        cJSON_AddNumberToObject(o, "count", submitted->count);
    }
    cJSON_AddStringToObject(o, "outcome", outcome);
    cJSON_AddItemToObject(o, "counts", task_counts_json(counts));
    cJSON_AddNumberToObject(o, "total", (double)counts_total(counts));
    cJSON *arr = cJSON_AddArrayToObject(o, "failed");
    for (size_t i = 0; arr && i < n_failed; i++)
        cJSON_AddItemToArray(arr, task_json(failed[i]));
    return print_json(out, o);
}

/* --- reservations ------------------------------------------------------------------ */

static cJSON *reservation_json(const Muster__ReservationInfo *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "owner", r->owner);
    cJSON_AddStringToObject(o, "state", r->state);
    if (r->spec)
        cJSON_AddItemToObject(o, "spec", spec_json(r->spec));
    cJSON_AddNumberToObject(o, "wanted", r->wanted);
    cJSON_AddNumberToObject(o, "min_workers", r->min_workers);
    cJSON_AddNumberToObject(o, "filled", r->filled);
    cJSON_AddNumberToObject(o, "in_use", r->in_use);
    cJSON_AddNumberToObject(o, "free", r->free);
    cJSON *ms = cJSON_AddArrayToObject(o, "members");
    for (size_t i = 0; ms && i < r->n_members; i++) {
        const Muster__ReservationMember *m = r->members[i];
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddStringToObject(x, "worker_id", m->worker_id);
        cJSON_AddStringToObject(x, "hostname", m->hostname);
        cJSON_AddStringToObject(x, "gpu_model", m->gpu_model);
        cJSON_AddNumberToObject(x, "gpu_count", m->gpu_count);
        cJSON_AddStringToObject(x, "region", m->region);
        cJSON_AddStringToObject(x, "worker_state", m->worker_state);
        cJSON_AddBoolToObject(x, "in_use", m->in_use);
        cJSON_AddStringToObject(x, "cluster_id", m->cluster_id);
        cJSON_AddItemToArray(ms, x);
    }
    cJSON_AddNumberToObject(o, "hours", r->hours);
    cJSON_AddNumberToObject(o, "list_price_per_hour_micro_usd",
                            (double)r->list_price_per_hour_micro_usd);
    cJSON_AddNumberToObject(o, "discount_percent", r->discount_percent);
    cJSON_AddNumberToObject(o, "price_per_hour_micro_usd", (double)r->price_per_hour_micro_usd);
    cJSON_AddNumberToObject(o, "total_micro_usd", (double)r->total_micro_usd);
    cJSON_AddNumberToObject(o, "created_at_ms", (double)r->created_at_ms);
    cJSON_AddNumberToObject(o, "ends_at_ms", (double)r->ends_at_ms);
    cJSON_AddNumberToObject(o, "ended_at_ms", (double)r->ended_at_ms);
    cJSON_AddStringToObject(o, "end_reason", r->end_reason);
    cJSON_AddNumberToObject(o, "replaced", r->replaced);
    return o;
}

int format_reservation_json(FILE *out, const Muster__ReservationInfo *r)
{
    return print_json(out, reservation_json(r));
}

static cJSON *reservation_at(const void *l, size_t i)
{
    return reservation_json(((const Muster__ListReservationsReply *)l)->reservations[i]);
}

int format_reservations_json(FILE *out, const Muster__ListReservationsReply *l)
{
    cJSON *root = list_json("reservations", l, l->n_reservations, reservation_at);
    if (root)
        cJSON_AddNumberToObject(root, "total", l->total);
    return print_json(out, root);
}

void format_reservation_detail(FILE *out, const Muster__ReservationInfo *r)
{
    char price[24], list[24], total[24], ends[32], created[32];
    format_usd(r->price_per_hour_micro_usd, price, sizeof(price));
    format_usd(r->list_price_per_hour_micro_usd, list, sizeof(list));
    format_usd(r->total_micro_usd, total, sizeof(total));
    format_time(r->ends_at_ms, ends, sizeof(ends));
    format_time(r->created_at_ms, created, sizeof(created));
    fprintf(out, "reservation %s (%s), owner %s\n", r->id, r->state, r->owner);
    fprintf(out, "  workers   %u of %u wanted (at least %u): %u in use, %u free\n", r->filled,
            r->wanted, r->min_workers, r->in_use, r->free);
    fprintf(out, "  hours     %u, created %s, ends %s\n", r->hours, created, ends);
    fprintf(out, "  price     %s USD per hour (%s less %u%% for the commitment), %s USD in all\n",
            price, list, r->discount_percent, total);
    if (r->end_reason && *r->end_reason)
        fprintf(out, "  ended     %s\n", r->end_reason);
    if (r->replaced)
        fprintf(out, "  taken     %u workers after creation (refills and replacements)\n",
                r->replaced);
    if (r->n_members)
        fprintf(out, "  %-36s  %-16s  %-12s  %-8s  %s\n", "WORKER", "HOST", "GPU", "STATE", "USE");
    for (size_t i = 0; i < r->n_members; i++) {
        const Muster__ReservationMember *m = r->members[i];
        fprintf(out, "  %-36s  %-16.16s  %ux %-9.9s  %-8s  %s%s\n", m->worker_id, m->hostname,
                m->gpu_count, m->gpu_model, m->worker_state, m->in_use ? "cluster " : "free",
                m->in_use ? m->cluster_id : "");
    }
}

void format_reservations_table(FILE *out, const Muster__ListReservationsReply *l)
{
    fprintf(out, "%-36s  %-8s  %-12s  %7s  %6s  %5s  %5s  %10s\n", "ID", "STATE", "OWNER", "FILLED",
            "IN USE", "FREE", "HOURS", "USD/HOUR");
    for (size_t i = 0; i < l->n_reservations; i++) {
        const Muster__ReservationInfo *r = l->reservations[i];
        char price[24], filled[24];
        format_usd(r->price_per_hour_micro_usd, price, sizeof(price));
        snprintf(filled, sizeof(filled), "%u/%u", r->filled, r->wanted);
        fprintf(out, "%-36s  %-8s  %-12.12s  %7s  %6u  %5u  %5u  %10s\n", r->id, r->state, r->owner,
                filled, r->in_use, r->free, r->hours, price);
    }
    if (l->total > l->n_reservations)
        fprintf(out, "(%zu of %u shown)\n", l->n_reservations, l->total);
}
