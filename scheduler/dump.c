/* dump.c - musterd --dump: the saved state as one JSON document, for
 * operators (backups they can read, audits, moving to another tool). Built
 * from the core as restored, so names are resolved and times are UNIX ms. */
#include <cjson/cJSON.h>
#include <stdio.h>

#include "alloc.h"
#include "broker_int.h"
#include "ids.h"

static cJSON *worker_json(const broker *b, const worker *w)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char id[ID_TEXT_LEN];
    id_format(&w->id, id);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "hostname", w->hostname);
    cJSON_AddStringToObject(o, "gpu_model", w->model ? w->model->name : "CPU");
    cJSON_AddNumberToObject(o, "gpu_count", w->gpu_count);
    cJSON_AddStringToObject(o, "country", w->country);
    cJSON_AddStringToObject(o, "region", w->region);
    cJSON_AddStringToObject(o, "tier", tier_name(w->tier));
    cJSON_AddNumberToObject(o, "price_micro_usd", w->price_uusd);
    cJSON_AddNumberToObject(o, "registered_at_ms", (double)w->registered_at);
    cJSON_AddNumberToObject(o, "uptime", w->uptime);
    cJSON_AddStringToObject(o, "alloc",
                            w->alloc == WORKER_ALLOCATED  ? "allocated"
                            : w->alloc == WORKER_RESERVED ? "reserved"
                                                          : "free");
    const verifier *v = sched_verifier(b->core);
    cJSON_AddStringToObject(o, "verification", verify_state_name(verifier_state(v, w)));
    cJSON_AddNumberToObject(o, "verification_checks", verifier_checks(v, w));
    verify_result hist[VERIFY_HISTORY];
    size_t n = verifier_history(v, w, hist);
    cJSON *checks = cJSON_AddArrayToObject(o, "verification_history");
    for (size_t i = 0; checks && i < n; i++) {
        char text[160];
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        verify_result_text(&hist[i], text, sizeof(text));
        cJSON_AddNumberToObject(x, "time_ms", (double)hist[i].at);
        cJSON_AddStringToObject(x, "outcome", verify_outcome_name((verify_outcome)hist[i].outcome));
        cJSON_AddStringToObject(x, "text", text);
        cJSON_AddItemToArray(checks, x);
    }
    return o;
}

static cJSON *cluster_json(const broker *b, const cluster *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char id[ID_TEXT_LEN], text[256];
    id_format(&c->id, id);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "owner", c->owner);
    cJSON_AddStringToObject(o, "state", cluster_state_name(c->state));
    match_describe(&c->req, b->cat, text, sizeof(text));
    cJSON_AddStringToObject(o, "shape", text);
    cJSON_AddNumberToObject(o, "workers_asked", c->req.workers);
    cJSON_AddNumberToObject(o, "hours", c->hours);
    cJSON_AddNumberToObject(o, "created_at_ms", (double)c->created_at);
    cJSON_AddNumberToObject(o, "ready_at_ms", (double)c->ready_at);
    cJSON_AddNumberToObject(o, "ends_at_ms", (double)c->ends_at);
    cJSON_AddNumberToObject(o, "ended_at_ms", (double)c->ended_at);
    cJSON_AddNumberToObject(o, "price_per_hour_micro_usd", (double)c->price_uusd_per_hour);
    cJSON_AddStringToObject(o, "end_reason", c->end_reason);
    cJSON *members = cJSON_AddArrayToObject(o, "members");
    for (uint32_t i = 0; members && i < c->n_members; i++) {
        cJSON *m = cJSON_CreateObject();
        const worker *w = registry_at(b->reg, c->members[i].worker);
        if (!m)
            break;
        if (w) {
            id_format(&w->id, text);
            cJSON_AddStringToObject(m, "worker_id", text);
        } else {
            cJSON_AddNullToObject(m, "worker_id");
        }
        cJSON_AddBoolToObject(m, "acknowledged", c->members[i].acked);
        cJSON_AddBoolToObject(m, "lost", c->members[i].lost);
        cJSON_AddItemToArray(members, m);
    }
    cJSON_AddNumberToObject(o, "seats_replaced", c->replaced);
    cJSON *lost = cJSON_AddArrayToObject(o, "lost_workers");
    for (uint32_t i = 0; lost && i < c->n_excluded && i < CLUSTER_EXCLUDED; i++) {
        const worker *w = registry_at(b->reg, c->excluded[i]);
        if (!w)
            continue;
        id_format(&w->id, text);
        cJSON_AddItemToArray(lost, cJSON_CreateString(text));
    }
    cJSON *history = cJSON_AddArrayToObject(o, "history");
    uint32_t kept = c->n_history < CLUSTER_HISTORY ? c->n_history : CLUSTER_HISTORY;
    for (uint32_t i = 0; history && i < kept; i++) {
        const cluster_change *ch = cluster_history_at(c, i);
        cJSON *h = cJSON_CreateObject();
        if (!h)
            break;
        cJSON_AddNumberToObject(h, "time_ms", (double)ch->at);
        cJSON_AddStringToObject(h, "what", ch->what);
        cJSON_AddStringToObject(h, "reason", ch->reason);
        cJSON_AddItemToArray(history, h);
    }
    const taskset *ts = tasks_of(b, c);
    cJSON *tasks = cJSON_AddArrayToObject(o, "tasks");
    for (uint32_t i = 0; ts && tasks && i < taskset_count(ts); i++) {
        const task_info *ti = taskset_get(ts, i);
        Muster__TaskSpec *spec = tasks_spec(b, c, i);
        cJSON *t = cJSON_CreateObject();
        if (!t) {
            if (spec)
                muster__task_spec__free_unpacked(spec, mu_protobuf_allocator());
            break;
        }
        cJSON_AddNumberToObject(t, "number", i);
        cJSON_AddStringToObject(t, "name", spec && spec->name ? spec->name : "");
        cJSON *argv = cJSON_AddArrayToObject(t, "argv");
        for (size_t k = 0; spec && argv && k < spec->n_argv; k++)
            cJSON_AddItemToArray(argv, cJSON_CreateString(spec->argv[k]));
        cJSON_AddStringToObject(t, "state", task_state_name(ti->state));
        cJSON_AddNumberToObject(t, "attempts", ti->attempts);
        cJSON_AddNumberToObject(t, "failures", ti->failures);
        cJSON_AddNumberToObject(t, "losses", ti->losses);
        cJSON_AddNumberToObject(t, "exit_code", ti->exit_code);
        const worker *w = ti->member != TASK_NO_MEMBER ? registry_at(b->reg, ti->member) : NULL;
        if (w) {
            id_format(&w->id, text);
            cJSON_AddStringToObject(t, "worker_id", text);
        } else {
            cJSON_AddNullToObject(t, "worker_id");
        }
        cJSON_AddStringToObject(t, "reason", ti->reason);
        cJSON_AddNumberToObject(t, "submitted_at_ms", (double)ti->submitted_at);
        cJSON_AddNumberToObject(t, "finished_at_ms", (double)ti->finished_at);
        cJSON_AddItemToArray(tasks, t);
        if (spec)
            muster__task_spec__free_unpacked(spec, mu_protobuf_allocator());
    }
    return o;
}

static cJSON *resv_json(const broker *b, const reservation *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char id[ID_TEXT_LEN], text[256];
    id_format(&r->id, id);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "owner", r->owner);
    cJSON_AddStringToObject(o, "state", resv_state_name(r->state));
    match_describe(&r->req, b->cat, text, sizeof(text));
    cJSON_AddStringToObject(o, "shape", text);
    cJSON_AddNumberToObject(o, "wanted", r->req.workers);
    cJSON_AddNumberToObject(o, "min_workers", r->req.min_workers);
    cJSON_AddNumberToObject(o, "hours", r->hours);
    cJSON_AddNumberToObject(o, "created_at_ms", (double)r->created_at);
    cJSON_AddNumberToObject(o, "ends_at_ms", (double)r->ends_at);
    cJSON_AddNumberToObject(o, "ended_at_ms", (double)r->ended_at);
    cJSON_AddNumberToObject(o, "list_price_per_hour_micro_usd", (double)r->list_uusd_per_hour);
    cJSON_AddNumberToObject(o, "discount_percent", r->discount_pct);
    cJSON_AddNumberToObject(o, "price_per_hour_micro_usd", (double)r->price_uusd_per_hour);
    cJSON_AddStringToObject(o, "end_reason", r->end_reason);
    cJSON_AddNumberToObject(o, "replaced", r->replaced);
    cJSON *members = cJSON_AddArrayToObject(o, "members");
    for (uint32_t i = 0; members && i < r->n_members; i++) {
        const worker *w = registry_at(b->reg, r->members[i]);
        cJSON *m = cJSON_CreateObject();
        if (!m)
            break;
        id_format(&w->id, id);
        cJSON_AddStringToObject(m, "worker_id", id);
        cJSON_AddBoolToObject(m, "in_use", w->alloc == WORKER_ALLOCATED);
        const cluster *c =
            w->alloc == WORKER_ALLOCATED ? sched_cluster_at(b->core, w->cluster) : NULL;
        if (c) {
            id_format(&c->id, id);
            cJSON_AddStringToObject(m, "cluster_id", id);
        }
        cJSON_AddItemToArray(members, m);
    }
    return o;
}

int persist_dump(broker *b, FILE *out, mu_error *errp)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *workers = root ? cJSON_AddArrayToObject(root, "workers") : NULL;
    cJSON *clusters = root ? cJSON_AddArrayToObject(root, "clusters") : NULL;
    cJSON *resvs = root ? cJSON_AddArrayToObject(root, "reservations") : NULL;
    if (!workers || !clusters || !resvs)
        goto oom;
    cJSON_AddNumberToObject(root, "schema_version", store_schema_version(b->st));
    for (size_t i = 0; i < registry_count(b->reg); i++) {
        cJSON *w = worker_json(b, registry_at(b->reg, i));
        if (!w)
            goto oom;
        cJSON_AddItemToArray(workers, w);
    }
    for (size_t i = 0; i < sched_cluster_count(b->core); i++) {
        cJSON *c = cluster_json(b, sched_cluster_at(b->core, i));
        if (!c)
            goto oom;
        cJSON_AddItemToArray(clusters, c);
    }
    for (size_t i = 0; i < sched_reservation_count(b->core); i++) {
        cJSON *r = resv_json(b, sched_reservation_at(b->core, i));
        if (!r)
            goto oom;
        cJSON_AddItemToArray(resvs, r);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return errprintf(errp, "out of memory");
    fprintf(out, "%s\n", text);
    cJSON_free(text);
    return 0;
oom:
    cJSON_Delete(root);
    return errprintf(errp, "out of memory");
}
