/* format.c - see format.h. */
#include "format.h"

#include <cjson/cJSON.h>
#include <string.h>

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
    fprintf(out, "%-8s  %-20s  %-16s  %-20s  %-6s  %-7s  %s\n", "ID", "HOST", "GPUS", "REGION",
            "TIER", "STATE", "LAST SEEN");
    for (size_t i = 0; i < r->n_workers; i++) {
        const Muster__WorkerInfo *w = r->workers[i];
        char gpus[64], where[48], seen[16];
        gpus_text(w, gpus, sizeof(gpus));
        where_text(w, where, sizeof(where));
        str_duration(w->last_seen_ms_ago, seen, sizeof(seen));
        fprintf(out, "%-8.8s  %-20.20s  %-16.16s  %-20.20s  %-6s  %-7s  %s ago\n", w->id,
                w->hostname, gpus, where, w->tier, format_state_name(w->state), seen);
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
    fprintf(out, "agent:        %s\n", *w->agent_version ? w->agent_version : "-");
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
}

static int print_json(FILE *out, cJSON *root)
{
    if (!root)
        return -1;
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return -1;
    fprintf(out, "%s\n", text);
    cJSON_free(text);
    return 0;
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

int format_workers_json(FILE *out, const Muster__ListWorkersReply *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "workers") : NULL;
    if (arr)
        cJSON_AddNumberToObject(root, "total", r->total);
    if (!arr) {
        cJSON_Delete(root);
        return -1;
    }
    for (size_t i = 0; i < r->n_workers; i++) {
        cJSON *w = worker_json(r->workers[i]);
        if (!w) {
            cJSON_Delete(root);
            return -1;
        }
        cJSON_AddItemToArray(arr, w);
    }
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
