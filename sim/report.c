/* report.c - see report.h: named counts, duration statistics, and the JSON,
 * CSV and text writers (the HTML page is in report_html.c). */
#include "report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "strutil.h"

/* --- named counts ----------------------------------------------------------------- */

int report_counts_add(report_counts *c, const char *name, uint64_t n)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strncmp(c->v[i].name, name, sizeof(c->v[i].name) - 1) == 0) {
            c->v[i].count += n;
            return 0;
        }
    }
    if (c->n == REPORT_MAX_NAMES) {
        c->other += n;
        return 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        report_count *v = mu_realloc(c->v, cap * sizeof(*v));
        if (!v) {
            c->other += n;
            return -1;
        }
        c->v = v;
        c->cap = cap;
    }
    str_copy(c->v[c->n].name, name ? name : "", sizeof(c->v[c->n].name));
    c->v[c->n++].count = n;
    return 0;
}

uint64_t report_counts_get(const report_counts *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].name, name) == 0)
            return c->v[i].count;
    return 0;
}

void report_counts_free(report_counts *c)
{
    mu_free(c->v);
    memset(c, 0, sizeof(*c));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const report_count *)a)->name, ((const report_count *)b)->name);
}

/* The counts sorted by name, so that output does not depend on the order
 * in which names first appeared. Caller frees; NULL when empty or on
 * allocation failure (*oom set). */
static report_count *sorted(const report_counts *c, bool *oom)
{
    if (!c->n)
        return NULL;
    report_count *v = mu_malloc(c->n * sizeof(*v));
    if (!v) {
        *oom = true;
        return NULL;
    }
    memcpy(v, c->v, c->n * sizeof(*v));
    qsort(v, c->n, sizeof(*v), by_name);
    return v;
}

/* --- statistics --------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rank(const uint64_t *v, size_t n, double p)
{
    size_t k = (size_t)ceil(p * (double)n);
    return v[k ? k - 1 : 0];
}

void report_stats_of(uint64_t *v, size_t n, report_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!n)
        return;
    qsort(v, n, sizeof(*v), cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    out->n = n;
    out->mean_ms = sum / (double)n;
    out->p50_ms = rank(v, n, 0.5);
    out->p95_ms = rank(v, n, 0.95);
    out->max_ms = v[n - 1];
}

/* --- the report ----------------------------------------------------------------------- */

void report_init(sim_report *r)
{
    memset(r, 0, sizeof(*r));
}

void report_free(sim_report *r)
{
    report_counts_free(&r->worker_transitions);
    report_counts_free(&r->unmet_by);
    report_counts_free(&r->invalid_by);
    report_counts_free(&r->topics);
    mu_free(r->rows);
    r->rows = NULL;
    r->n_rows = r->cap_rows = 0;
}

int report_add_row(sim_report *r, const report_row *row)
{
    if (r->n_rows == r->cap_rows) {
        size_t cap = r->cap_rows ? r->cap_rows * 2 : 64;
        report_row *v = mu_realloc(r->rows, cap * sizeof(*v));
        if (!v)
            return -1;
        r->rows = v;
        r->cap_rows = cap;
    }
    r->rows[r->n_rows++] = *row;
    return 0;
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : NAN;
}

double report_success_rate(const sim_report *r)
{
    return ratio((double)r->met, (double)r->requests);
}

double report_ready_rate(const sim_report *r)
{
    return ratio((double)r->reached_ready, (double)r->requests);
}

double report_goodput(const sim_report *r)
{
    return ratio(r->gpu_hours_ready, r->gpu_hours_allocated);
}

double report_utilisation(const sim_report *r)
{
    return ratio(r->gpu_hours_allocated, r->gpu_hours_online);
}

double report_false_positive_rate(const sim_report *r)
{
    return r->verify_on ? ratio((double)r->v_false_positives, (double)r->v_honest) : NAN;
}

double report_false_negative_rate(const sim_report *r)
{
    return r->verify_on ? ratio((double)r->v_false_negatives, (double)r->v_spoofers) : NAN;
}

double report_task_goodput(const sim_report *r)
{
    return r->tasks_on ? ratio(r->t_gh_useful, r->t_gh_allocated) : NAN;
}

/* --- JSON ----------------------------------------------------------------------------- */

/* cJSON can only fail by running out of memory: collect that in one flag. */
static void num(cJSON *o, const char *k, double v, bool *oom)
{
    if (!(isfinite(v) ? cJSON_AddNumberToObject(o, k, v) : cJSON_AddNullToObject(o, k)))
        *oom = true;
}

/* Round to 6 significant decimals so that a figure reads the same on every
 * platform and stays short (cJSON would print 17 digits). */
static double r6(double v)
{
    if (!isfinite(v) || v == 0)
        return v;
    char buf[32];
    snprintf(buf, sizeof(buf), "%.6g", v);
    return strtod(buf, NULL);
}

static void str(cJSON *o, const char *k, const char *v, bool *oom)
{
    if (!cJSON_AddStringToObject(o, k, v))
        *oom = true;
}

static void null(cJSON *o, const char *k, bool *oom)
{
    if (!cJSON_AddNullToObject(o, k))
        *oom = true;
}

static cJSON *obj(cJSON *parent, const char *k, bool *oom)
{
    cJSON *o = cJSON_AddObjectToObject(parent, k);
    if (!o)
        *oom = true;
    return o ? o : parent; /* on failure, keep going harmlessly: oom is set */
}

static void counts_json(cJSON *parent, const char *k, const report_counts *c, bool *oom)
{
    cJSON *o = obj(parent, k, oom);
    report_count *v = sorted(c, oom);
    for (size_t i = 0; v && i < c->n; i++)
        num(o, v[i].name, (double)v[i].count, oom);
    if (c->other)
        num(o, "(other)", (double)c->other, oom);
    mu_free(v);
}

static void stats_json(cJSON *parent, const char *k, const report_stats *s, bool *oom)
{
    cJSON *o = obj(parent, k, oom);
    num(o, "count", (double)s->n, oom);
    if (!s->n) {
        null(o, "mean_ms", oom);
        null(o, "p50_ms", oom);
        null(o, "p95_ms", oom);
        null(o, "max_ms", oom);
        return;
    }
    num(o, "mean_ms", r6(s->mean_ms), oom);
    num(o, "p50_ms", (double)s->p50_ms, oom);
    num(o, "p95_ms", (double)s->p95_ms, oom);
    num(o, "max_ms", (double)s->max_ms, oom);
}

static void boolean(cJSON *o, const char *k, bool v, bool *oom)
{
    if (!cJSON_AddBoolToObject(o, k, v))
        *oom = true;
}

static const char *const outcome_names[REPORT_OUTCOMES] = {"ok", "slow", "wrong", "timeout",
                                                           "bad-proof"};

/* What was not simulated is null, never a zero that was not measured. */
static void verification_json(cJSON *root, const sim_report *r, bool *oom)
{
    cJSON *v = obj(root, "verification", oom);
    boolean(v, "simulated", r->verify_on, oom);
    if (!r->verify_on) {
        null(v, "checks", oom);
        null(v, "false_positives", oom);
        null(v, "false_negatives", oom);
        return;
    }
    cJSON *st = obj(v, "settings", oom);
    num(st, "target_ms", r->verify_target_ms, oom);
    num(st, "min_ratio", r6(r->verify_min_ratio), oom);
    num(st, "leaves", r->verify_leaves, oom);
    num(st, "spots", r->verify_spots, oom);
    num(st, "units_per_tflop_s", r6(r->verify_scale), oom);
    num(st, "light_ms", r->verify_light_ms, oom);
    num(st, "reverify_ms", r->verify_reverify_ms, oom);
    str(st, "honest_speed", r->honest_speed, oom);
    str(st, "spoofer_speed", r->spoofer_speed, oom);
    num(st, "spoofers", r6(r->spoofers_fraction), oom);
    str(st, "rtt_ms", r->rtt_ms, oom);
    num(st, "jittery", r6(r->jittery_fraction), oom);
    str(st, "jitter_rtt_ms", r->jitter_rtt_ms, oom);
    num(v, "challenges", (double)r->v_challenges, oom);
    num(v, "checks", (double)r->v_checks, oom);
    num(v, "light_checks", (double)r->v_light_checks, oom);
    cJSON *oc = obj(v, "outcomes", oom);
    for (int i = 0; i < REPORT_OUTCOMES; i++)
        num(oc, outcome_names[i], (double)r->v_outcomes[i], oom);
    num(v, "answers_dropped", (double)r->v_dropped, oom);
    num(v, "answers_late", (double)r->v_late, oom);
    cJSON *ex = obj(v, "expected_ms", oom);
    if (r->v_expected_n) {
        num(ex, "mean", r6(r->v_expected_sum_ms / (double)r->v_expected_n), oom);
        num(ex, "min", (double)r->v_expected_min_ms, oom);
        num(ex, "max", (double)r->v_expected_max_ms, oom);
    } else {
        null(ex, "mean", oom);
        null(ex, "min", oom);
        null(ex, "max", oom);
    }
    num(v, "spoof_events", (double)r->v_spoof_events, oom);
    num(v, "jittery_nodes", (double)r->v_jittery_nodes, oom);
    num(v, "honest_workers", (double)r->v_honest, oom);
    num(v, "honest_alarmed", (double)r->v_honest_alarmed, oom);
    num(v, "false_positives", (double)r->v_false_positives, oom);
    num(v, "false_positive_rate", r6(report_false_positive_rate(r)), oom);
    num(v, "spoofers", (double)r->v_spoofers, oom);
    num(v, "spoofers_caught", (double)r->v_spoofers_caught, oom);
    num(v, "spoofers_hired", (double)r->v_spoofers_hired, oom);
    num(v, "spoofers_passed", (double)r->v_spoofers_passed, oom);
    num(v, "false_negatives", (double)r->v_false_negatives, oom);
    num(v, "false_negative_rate", r6(report_false_negative_rate(r)), oom);
    stats_json(v, "time_to_first_verdict", &r->v_first_verdict, oom);
    stats_json(v, "time_to_verified", &r->v_verified, oom);
    stats_json(v, "time_to_catch", &r->v_catch, oom);
}

static void tasks_json(cJSON *root, const sim_report *r, bool *oom)
{
    cJSON *t = obj(root, "tasks", oom);
    boolean(t, "simulated", r->tasks_on, oom);
    if (!r->tasks_on) {
        null(t, "retries", oom);
        null(t, "goodput", oom);
        return;
    }
    num(t, "requested", (double)r->t_requested, oom);
    num(t, "submitted", (double)r->t_submitted, oom);
    num(t, "succeeded", (double)r->t_succeeded, oom);
    num(t, "failed", (double)r->t_failed, oom);
    num(t, "cancelled", (double)r->t_cancelled, oom);
    num(t, "unfinished", (double)r->t_unfinished, oom);
    num(t, "submit_errors", (double)r->t_submit_errors, oom);
    num(t, "attempts", (double)r->t_attempts, oom);
    num(t, "retries", (double)r->t_retries, oom);
    num(t, "retries_after_loss", (double)r->t_retries_lost, oom);
    num(t, "retries_after_exit", (double)r->t_retries_exit, oom);
    num(t, "lost_attempts", (double)r->t_lost_attempts, oom);
    num(t, "failed_attempts", (double)r->t_failed_attempts, oom);
    num(t, "clusters", (double)r->t_clusters, oom);
    num(t, "released_when_done", (double)r->t_released_done, oom);
    cJSON *g = obj(t, "gpu_hours", oom);
    num(g, "useful", r6(r->t_gh_useful), oom);
    num(g, "lost", r6(r->t_gh_lost), oom);
    num(g, "failed", r6(r->t_gh_failed), oom);
    num(g, "cancelled", r6(r->t_gh_cancelled), oom);
    num(g, "allocated", r6(r->t_gh_allocated), oom);
    num(t, "goodput", r6(report_task_goodput(r)), oom);
}

int report_json(const sim_report *r, sbuf *out, mu_error *errp)
{
    bool oom = false;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return errprintf(errp, "out of memory writing the report");

    cJSON *run = obj(root, "run", &oom);
    str(run, "churn", r->churn_source, &oom);
    str(run, "churn_format", r->churn_format, &oom);
    str(run, "workload", r->workload_source, &oom);
    str(run, "workload_format", r->workload_format, &oom);
    num(run, "seed", (double)r->seed, &oom);
    str(run, "policy", r->policy, &oom);
    num(run, "heartbeat_ms", r->heartbeat_ms, &oom);
    num(run, "liveness", r->liveness, &oom);
    num(run, "keepalive_ms", r->keepalive_ms, &oom);
    num(run, "reroute_retry_ms", r->reroute_retry_ms, &oom);
    num(run, "provision_timeout_ms", r->provision_timeout_ms, &oom);
    num(run, "goodbye_fraction", r6(r->goodbye_fraction), &oom);
    str(run, "ack_delay_s", r->ack_delay, &oom);
    str(run, "min_tier", r->min_tier, &oom);
    str(run, "any_model", r->any_models, &oom);
    num(run, "interval_ms", (double)r->interval_ms, &oom);
    num(run, "end_ms", (double)r->end_ms, &oom);

    cJSON *ev = obj(root, "engine", &oom);
    num(ev, "events", (double)r->events, &oom);
    num(ev, "heap_events", (double)r->heap_events, &oom);
    num(ev, "churn_events", (double)r->churn_events, &oom);
    num(ev, "arrivals", (double)r->arrivals, &oom);
    num(ev, "acks", (double)r->acks, &oom);
    num(ev, "releases", (double)r->releases, &oom);
    num(ev, "samples", (double)r->samples, &oom);
    num(ev, "core_ticks", (double)r->ticks, &oom);
    num(ev, "keepalive_touches", (double)r->touches, &oom);
    num(ev, "reconnects", (double)r->reconnects, &oom);
    num(ev, "peak_queue", (double)r->peak_queue, &oom);

    cJSON *wk = obj(root, "workers", &oom);
    num(wk, "nodes", (double)r->nodes, &oom);
    num(wk, "joined", (double)r->nodes_joined, &oom);
    num(wk, "never_joined", (double)r->never_joined, &oom);
    num(wk, "joins", (double)r->joins, &oom);
    num(wk, "failures", (double)r->failures, &oom);
    num(wk, "goodbyes", (double)r->goodbyes, &oom);
    num(wk, "redundant_events", (double)r->redundant, &oom);
    num(wk, "spoof_events_ignored", (double)r->spoof_ignored, &oom);
    cJSON *fin = obj(wk, "final", &oom);
    num(fin, "online", (double)r->final_online, &oom);
    num(fin, "suspect", (double)r->final_suspect, &oom);
    num(fin, "offline", (double)r->final_offline, &oom);
    num(fin, "never_joined", (double)r->never_joined, &oom);
    num(fin, "allocated", (double)r->final_allocated, &oom);
    counts_json(wk, "transitions", &r->worker_transitions, &oom);

    cJSON *rq = obj(root, "requests", &oom);
    num(rq, "requests", (double)r->requests, &oom);
    num(rq, "met", (double)r->met, &oom);
    num(rq, "unmet", (double)r->unmet, &oom);
    num(rq, "invalid", (double)r->invalid, &oom);
    num(rq, "after_the_end", (double)r->not_arrived, &oom);
    num(rq, "success_rate", r6(report_success_rate(r)), &oom);
    num(rq, "ready_rate", r6(report_ready_rate(r)), &oom);
    counts_json(rq, "unmet_by_constraint", &r->unmet_by, &oom);
    counts_json(rq, "invalid_by_reason", &r->invalid_by, &oom);

    cJSON *cl = obj(root, "clusters", &oom);
    num(cl, "reached_ready", (double)r->reached_ready, &oom);
    num(cl, "released", (double)r->ended_released, &oom);
    num(cl, "expired", (double)r->ended_expired, &oom);
    num(cl, "failed", (double)r->ended_failed, &oom);
    num(cl, "active_at_end", (double)r->active_at_end, &oom);
    stats_json(cl, "time_to_ready", &r->time_to_ready, &oom);
    num(cl, "degraded_clusters", (double)r->clusters_degraded, &oom);
    num(cl, "degraded_ms", (double)r->degraded_ms, &oom);
    num(cl, "active_ms", (double)r->cluster_ms, &oom);
    num(cl, "degraded_fraction", r6(ratio((double)r->degraded_ms, (double)r->cluster_ms)), &oom);
    num(cl, "member_losses", (double)r->member_losses, &oom);
    num(cl, "reroutes", (double)r->replacements, &oom);
    num(cl, "members_back", (double)r->returns, &oom);
    num(cl, "losses_unresolved", (double)r->losses_unresolved, &oom);
    stats_json(cl, "reroute_latency", &r->reroute_latency, &oom);
    counts_json(cl, "events", &r->topics, &oom);

    cJSON *g = obj(root, "gpu_hours", &oom);
    num(g, "online", r6(r->gpu_hours_online), &oom);
    num(g, "allocated", r6(r->gpu_hours_allocated), &oom);
    num(g, "ready", r6(r->gpu_hours_ready), &oom);
    num(g, "utilisation", r6(report_utilisation(r)), &oom);
    num(g, "goodput", r6(report_goodput(r)), &oom);

    verification_json(root, r, &oom);
    tasks_json(root, r, &oom);

    char *text = oom ? NULL : cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return errprintf(errp, "out of memory writing the report");
    sbuf_puts(out, text);
    sbuf_puts(out, "\n");
    cJSON_free(text);
    if (sbuf_failed(out))
        return errprintf(errp, "out of memory writing the report");
    return 0;
}

/* --- CSV ------------------------------------------------------------------------------ */

#define CSV_HEADER                                                                                 \
    "time_s,online_workers,suspect_workers,online_gpus,allocated_workers,allocated_gpus,"          \
    "active_clusters,ready_clusters,degraded_clusters,requests,met,unmet,invalid,"                 \
    "member_losses,reroutes\n"

/* Columns of what was simulated only: a run without them keeps the header
 * (and the bytes) it always had. */
#define CSV_VERIFY ",verify_checks,verify_not_ok,verify_failed"
#define CSV_TASKS  ",tasks_running,tasks_queued,tasks_succeeded,tasks_failed,task_retries"

int report_csv(const sim_report *r, sbuf *out, mu_error *errp)
{
    sbuf_append(out, CSV_HEADER, strlen(CSV_HEADER) - 1);
    if (r->verify_on)
        sbuf_puts(out, CSV_VERIFY);
    if (r->tasks_on)
        sbuf_puts(out, CSV_TASKS);
    sbuf_puts(out, "\n");
    for (size_t i = 0; i < r->n_rows; i++) {
        const report_row *w = &r->rows[i];
        sbuf_printf(out, "%llu.%03u,%u,%u,%llu,%u,%llu,%u,%u,%u,%u,%u,%u,%u,%u,%u",
                    (unsigned long long)(w->t_ms / 1000), (unsigned)(w->t_ms % 1000),
                    w->online_workers, w->suspect_workers, (unsigned long long)w->online_gpus,
                    w->allocated_workers, (unsigned long long)w->allocated_gpus, w->active_clusters,
                    w->ready_clusters, w->degraded_clusters, w->requests, w->met, w->unmet,
                    w->invalid, w->member_losses, w->replacements);
        if (r->verify_on)
            sbuf_printf(out, ",%u,%u,%u", w->verify_checks, w->verify_not_ok, w->verify_failed);
        if (r->tasks_on)
            sbuf_printf(out, ",%u,%u,%u,%u,%u", w->tasks_running, w->tasks_queued,
                        w->tasks_succeeded, w->tasks_failed, w->task_retries);
        sbuf_puts(out, "\n");
    }
    if (sbuf_failed(out))
        return errprintf(errp, "out of memory writing the time series");
    return 0;
}

/* --- text --------------------------------------------------------------------------------- */

static void pct(sbuf *out, double v)
{
    if (isfinite(v))
        sbuf_printf(out, "%.1f%%", 100 * v);
    else
        sbuf_puts(out, "-");
}

static void dur(sbuf *out, uint64_t ms)
{
    char b[32];
    str_duration(ms, b, sizeof(b));
    sbuf_puts(out, b);
}

void report_text(const sim_report *r, sbuf *out)
{
    sbuf_printf(out, "replayed %llu events to %.1f h (%llu core ticks, %llu keep-alive touches)\n",
                (unsigned long long)r->events, (double)r->end_ms / 3.6e6,
                (unsigned long long)r->ticks, (unsigned long long)r->touches);
    sbuf_printf(out,
                "workers: %llu nodes, %llu joins, %llu failures, %llu goodbyes; at the end %llu "
                "online, %llu allocated\n",
                (unsigned long long)r->nodes, (unsigned long long)r->joins,
                (unsigned long long)r->failures, (unsigned long long)r->goodbyes,
                (unsigned long long)r->final_online, (unsigned long long)r->final_allocated);
    sbuf_printf(out, "requests: %llu, met %llu (", (unsigned long long)r->requests,
                (unsigned long long)r->met);
    pct(out, report_success_rate(r));
    sbuf_printf(out, "), unmet %llu, invalid %llu; ready %llu (", (unsigned long long)r->unmet,
                (unsigned long long)r->invalid, (unsigned long long)r->reached_ready);
    pct(out, report_ready_rate(r));
    sbuf_puts(out, ")\n");
    if (r->time_to_ready.n) {
        sbuf_puts(out, "time to ready: mean ");
        dur(out, (uint64_t)llround(r->time_to_ready.mean_ms));
        sbuf_puts(out, ", p50 ");
        dur(out, r->time_to_ready.p50_ms);
        sbuf_puts(out, ", p95 ");
        dur(out, r->time_to_ready.p95_ms);
        sbuf_puts(out, "\n");
    }
    sbuf_printf(out, "degraded: %llu clusters, ", (unsigned long long)r->clusters_degraded);
    dur(out, r->degraded_ms);
    sbuf_printf(out, " in all; %llu member losses, %llu reroutes",
                (unsigned long long)r->member_losses, (unsigned long long)r->replacements);
    if (r->reroute_latency.n) {
        sbuf_puts(out, " (p50 ");
        dur(out, r->reroute_latency.p50_ms);
        sbuf_puts(out, ", p95 ");
        dur(out, r->reroute_latency.p95_ms);
        sbuf_puts(out, ")");
    }
    sbuf_puts(out, "\n");
    sbuf_printf(out, "GPU-hours: %.1f online, %.1f allocated, %.1f ready; utilisation ",
                r->gpu_hours_online, r->gpu_hours_allocated, r->gpu_hours_ready);
    pct(out, report_utilisation(r));
    sbuf_puts(out, ", goodput ");
    pct(out, report_goodput(r));
    sbuf_puts(out, "\n");
    if (r->verify_on) {
        sbuf_printf(out,
                    "verification: %llu checks (%llu not passed); %llu honest workers, %llu "
                    "failed (false positives, ",
                    (unsigned long long)r->v_checks,
                    (unsigned long long)(r->v_checks - r->v_outcomes[0]),
                    (unsigned long long)r->v_honest, (unsigned long long)r->v_false_positives);
        pct(out, report_false_positive_rate(r));
        sbuf_printf(out, "); %llu spoofers, %llu caught, %llu hired or passed (false negatives, ",
                    (unsigned long long)r->v_spoofers, (unsigned long long)r->v_spoofers_caught,
                    (unsigned long long)r->v_false_negatives);
        pct(out, report_false_negative_rate(r));
        sbuf_puts(out, ")\n");
    }
    if (r->tasks_on) {
        sbuf_printf(out,
                    "tasks: %llu submitted, %llu succeeded, %llu failed, %llu cancelled; %llu "
                    "retries (%llu after a loss, %llu after an exit); task goodput ",
                    (unsigned long long)r->t_submitted, (unsigned long long)r->t_succeeded,
                    (unsigned long long)r->t_failed, (unsigned long long)r->t_cancelled,
                    (unsigned long long)r->t_retries, (unsigned long long)r->t_retries_lost,
                    (unsigned long long)r->t_retries_exit);
        pct(out, report_task_goodput(r));
        sbuf_printf(out, " (%.1f useful of %.1f GPU-hours allocated)\n", r->t_gh_useful,
                    r->t_gh_allocated);
    }
}
