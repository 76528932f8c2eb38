/* report_html.c - the replay report as one self-contained HTML page: the
 * summary as tables and the time series as inline SVG line charts. No
 * script, no stylesheet or font from elsewhere: the file can be mailed,
 * archived or opened offline and looks the same.
 *
 * Long runs have more rows than a chart has pixels: rows are averaged in
 * bins (at most CHART_POINTS points per line), which keeps the level of
 * every series; the chart says when it did so. Coordinates are printed
 * with one decimal, so the same report gives the same bytes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "report.h"
#include "strutil.h"

#define CHART_POINTS 720
#define CHART_W      860
#define CHART_H      260
#define PAD_L        64
#define PAD_R        16
#define PAD_T        28
#define PAD_B        36
/* Presentation attributes on the SVG itself, so that a chart copied out of
 * the page looks the same. */
#define TEXT "font-family=\"sans-serif\" font-size=\"11\" fill=\"#444\""

static void esc(sbuf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            sbuf_puts(out, "&amp;");
            break;
        case '<':
            sbuf_puts(out, "&lt;");
            break;
        case '>':
            sbuf_puts(out, "&gt;");
            break;
        case '"':
            sbuf_puts(out, "&quot;");
            break;
        default:
            sbuf_append(out, s, 1);
        }
    }
}

/* --- charts ----------------------------------------------------------------------- */

typedef double (*getter)(const report_row *r);

static double g_online(const report_row *r)
{
    return r->online_workers;
}
static double g_suspect(const report_row *r)
{
    return r->suspect_workers;
}
static double g_alloc(const report_row *r)
{
    return r->allocated_workers;
}
static double g_online_gpus(const report_row *r)
{
    return (double)r->online_gpus;
}
static double g_alloc_gpus(const report_row *r)
{
    return (double)r->allocated_gpus;
}
static double g_active(const report_row *r)
{
    return r->active_clusters;
}
static double g_ready(const report_row *r)
{
    return r->ready_clusters;
}
static double g_degraded(const report_row *r)
{
    return r->degraded_clusters;
}
static double g_requests(const report_row *r)
{
    return r->requests;
}
static double g_met(const report_row *r)
{
    return r->met;
}
static double g_unmet(const report_row *r)
{
    return (double)r->unmet + r->invalid;
}
static double g_losses(const report_row *r)
{
    return r->member_losses;
}
static double g_reroutes(const report_row *r)
{
    return r->replacements;
}
static double g_checks(const report_row *r)
{
    return r->verify_checks;
}
static double g_not_ok(const report_row *r)
{
    return r->verify_not_ok;
}
static double g_vfailed(const report_row *r)
{
    return r->verify_failed;
}
static double g_running(const report_row *r)
{
    return r->tasks_running;
}
static double g_queued(const report_row *r)
{
    return r->tasks_queued;
}
static double g_tdone(const report_row *r)
{
    return r->tasks_succeeded;
}

typedef struct series {
    const char *name;
    const char *color;
    getter get;
} series;

/* A "nice" step for about n ticks over [0, max]: 1, 2 or 5 x 10^k. */
static double nice_step(double max, int n)
{
    double raw = max / n;
    double p = pow(10, floor(log10(raw)));
    double f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

static void fmt_num(char *b, size_t n, double v)
{
    if (v >= 1e6)
        snprintf(b, n, "%gM", v / 1e6);
    else if (v >= 1e4)
        snprintf(b, n, "%gk", v / 1e3);
    else
        snprintf(b, n, "%g", v);
}

static void chart(sbuf *out, const sim_report *r, const char *title, const series *s, size_t ns)
{
    size_t n = r->n_rows;
    sbuf_puts(out, "<figure>\n");
    if (!n) {
        sbuf_printf(out, "<figcaption>%s: no data</figcaption></figure>\n", title);
        return;
    }
    size_t bin = (n + CHART_POINTS - 1) / CHART_POINTS;
    size_t pts = (n + bin - 1) / bin;
    double *y = mu_calloc(ns * pts, sizeof(double));
    double *x = mu_calloc(pts, sizeof(double));
    if (!y || !x) {
        mu_free(y);
        mu_free(x);
        sbuf_printf(out, "<figcaption>%s: out of memory</figcaption></figure>\n", title);
        return;
    }
    double ymax = 0;
    for (size_t p = 0; p < pts; p++) {
        size_t lo = p * bin, hi = lo + bin < n ? lo + bin : n;
        x[p] = (double)r->rows[hi - 1].t_ms;
        for (size_t k = 0; k < ns; k++) {
            double sum = 0;
            for (size_t i = lo; i < hi; i++)
                sum += s[k].get(&r->rows[i]);
            y[k * pts + p] = sum / (double)(hi - lo);
            if (y[k * pts + p] > ymax)
                ymax = y[k * pts + p];
        }
    }
    double xmax = (double)r->end_ms > 0 ? (double)r->end_ms : 1;
    bool days = xmax > 72 * 3.6e6;
    double xunit = days ? 86.4e6 : 3.6e6;
    double ystep = nice_step(ymax > 0 ? ymax : 1, 4);
    double ytop = ystep * ceil((ymax > 0 ? ymax : 1) / ystep);
    double pw = CHART_W - PAD_L - PAD_R, ph = CHART_H - PAD_T - PAD_B;

    sbuf_printf(out,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">\n",
                CHART_W, CHART_H, CHART_W, CHART_H, title);
    sbuf_printf(out,
                "<text x=\"%d\" y=\"16\" font-family=\"sans-serif\" font-size=\"13\" "
                "fill=\"#222\">%s</text>\n",
                PAD_L, title);
    /* horizontal grid and y labels */
    for (double v = 0; v <= ytop + ystep / 2; v += ystep) {
        double py = PAD_T + ph - v / ytop * ph;
        char b[32];
        fmt_num(b, sizeof(b), v);
        sbuf_printf(out,
                    "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                    "<text x=\"%d\" y=\"%.1f\" " TEXT " text-anchor=\"end\">%s</text>\n",
                    PAD_L, py, CHART_W - PAD_R, py, PAD_L - 6, py + 4, b);
    }
    /* x labels */
    double xstep = nice_step(xmax / xunit, 8);
    for (double v = 0; v <= xmax / xunit + 1e-9; v += xstep) {
        double px = PAD_L + v * xunit / xmax * pw;
        sbuf_printf(out, "<text x=\"%.1f\" y=\"%d\" " TEXT " text-anchor=\"middle\">%g</text>\n",
                    px, CHART_H - PAD_B + 16, v);
    }
    sbuf_printf(
        out, "<text x=\"%.1f\" y=\"%d\" " TEXT " text-anchor=\"middle\">virtual time (%s)</text>\n",
        PAD_L + pw / 2, CHART_H - 4, days ? "days" : "hours");
    sbuf_printf(out,
                "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
                "stroke=\"#999\"/>\n",
                PAD_L, PAD_T, pw, ph);
    for (size_t k = 0; k < ns; k++) {
        sbuf_printf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                    s[k].color);
        for (size_t p = 0; p < pts; p++)
            sbuf_printf(out, "%s%.1f,%.1f", p ? " " : "", PAD_L + x[p] / xmax * pw,
                        PAD_T + ph - y[k * pts + p] / ytop * ph);
        sbuf_puts(out, "\"/>\n");
        /* legend, on the title's line */
        double lx = PAD_L + 300 + 160.0 * (double)k;
        sbuf_printf(out,
                    "<rect x=\"%.1f\" y=\"9\" width=\"14\" height=\"3\" fill=\"%s\"/>"
                    "<text x=\"%.1f\" y=\"15\" " TEXT ">%s</text>\n",
                    lx, s[k].color, lx + 18, s[k].name);
    }
    sbuf_puts(out, "</svg>\n");
    if (bin > 1) {
        char b[32];
        str_duration(r->interval_ms * bin, b, sizeof(b));
        sbuf_printf(out, "<figcaption>each point is the mean of %zu intervals (%s)</figcaption>\n",
                    bin, b);
    }
    sbuf_puts(out, "</figure>\n");
    mu_free(y);
    mu_free(x);
}

/* --- tables ------------------------------------------------------------------------- */

static void row_s(sbuf *out, const char *k, const char *v)
{
    sbuf_puts(out, "<tr><th>");
    esc(out, k);
    sbuf_puts(out, "</th><td>");
    esc(out, v);
    sbuf_puts(out, "</td></tr>\n");
}

static void row_u(sbuf *out, const char *k, uint64_t v)
{
    char b[32];
    snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
    row_s(out, k, b);
}

static void row_pct(sbuf *out, const char *k, double v)
{
    char b[32];
    if (isfinite(v))
        snprintf(b, sizeof(b), "%.2f%%", 100 * v);
    else
        snprintf(b, sizeof(b), "-");
    row_s(out, k, b);
}

static void row_f(sbuf *out, const char *k, double v)
{
    char b[48];
    snprintf(b, sizeof(b), "%.1f", v);
    row_s(out, k, b);
}

static void row_ms(sbuf *out, const char *k, uint64_t ms)
{
    char b[64], d[32];
    str_duration(ms, d, sizeof(d));
    snprintf(b, sizeof(b), "%s (%llu ms)", d, (unsigned long long)ms);
    row_s(out, k, b);
}

static void row_stats(sbuf *out, const char *k, const report_stats *s)
{
    char b[160], m[32], p50[32], p95[32], mx[32];
    if (!s->n) {
        row_s(out, k, "-");
        return;
    }
    str_duration((uint64_t)llround(s->mean_ms), m, sizeof(m));
    str_duration(s->p50_ms, p50, sizeof(p50));
    str_duration(s->p95_ms, p95, sizeof(p95));
    str_duration(s->max_ms, mx, sizeof(mx));
    snprintf(b, sizeof(b), "mean %s, p50 %s, p95 %s, max %s (n = %llu)", m, p50, p95, mx,
             (unsigned long long)s->n);
    row_s(out, k, b);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const report_count *)a)->name, ((const report_count *)b)->name);
}

static void counts_table(sbuf *out, const char *title, const report_counts *c)
{
    sbuf_printf(out, "<h3>%s</h3>\n", title);
    if (!c->n && !c->other) {
        sbuf_puts(out, "<p>none</p>\n");
        return;
    }
    report_count *v = mu_malloc((c->n ? c->n : 1) * sizeof(*v));
    if (!v)
        return;
    memcpy(v, c->v, c->n * sizeof(*v));
    qsort(v, c->n, sizeof(*v), by_name);
    sbuf_puts(out, "<table>\n");
    for (size_t i = 0; i < c->n; i++)
        row_u(out, v[i].name, v[i].count);
    if (c->other)
        row_u(out, "(other)", c->other);
    sbuf_puts(out, "</table>\n");
    mu_free(v);
}

static void verification_table(sbuf *out, const sim_report *r)
{
    static const char *const outcomes[REPORT_OUTCOMES] = {"passed", "too slow", "wrong result",
                                                          "no answer in time", "malformed"};
    char b[160];
    sbuf_puts(out, "<h2>Verification</h2>\n<table>\n");
    row_u(out, "challenges sent", r->v_challenges);
    row_u(out, "checks judged", r->v_checks);
    row_u(out, "of which light checks (hired workers)", r->v_light_checks);
    for (int i = 0; i < REPORT_OUTCOMES; i++) {
        snprintf(b, sizeof(b), "checks: %s", outcomes[i]);
        row_u(out, b, r->v_outcomes[i]);
    }
    row_u(out, "answers never sent (the agent left)", r->v_dropped);
    row_u(out, "answers too late (the core had timed the check out)", r->v_late);
    row_u(out, "honest workers checked", r->v_honest);
    row_u(out, "of which with a check not passed", r->v_honest_alarmed);
    row_u(out, "of which failed (false positives)", r->v_false_positives);
    row_pct(out, "false positive rate", report_false_positive_rate(r));
    row_u(out, "spoofers (up while spoofing)", r->v_spoofers);
    row_u(out, "of which failed (caught)", r->v_spoofers_caught);
    row_u(out, "of which hired while spoofing", r->v_spoofers_hired);
    row_u(out, "of which passed while spoofing", r->v_spoofers_passed);
    row_u(out, "false negatives (hired or passed)", r->v_false_negatives);
    row_pct(out, "false negative rate", report_false_negative_rate(r));
    row_stats(out, "time to first verdict (from the first join)", &r->v_first_verdict);
    row_stats(out, "time to verified (honest, from the first join)", &r->v_verified);
    row_stats(out, "time to catch a spoofer (from up as one)", &r->v_catch);
    if (r->v_expected_n) {
        snprintf(b, sizeof(b), "mean %.0f ms, min %llu, max %llu (target %u ms)",
                 r->v_expected_sum_ms / (double)r->v_expected_n,
                 (unsigned long long)r->v_expected_min_ms, (unsigned long long)r->v_expected_max_ms,
                 r->verify_target_ms);
        row_s(out, "expected time of a check", b);
    }
    snprintf(b, sizeof(b), "%u leaves, %u spots, %.6g units per TFLOPS-second, min ratio %.2f",
             r->verify_leaves, r->verify_spots, r->verify_scale, r->verify_min_ratio);
    row_s(out, "challenge size", b);
    row_ms(out, "re-verification of free workers", r->verify_reverify_ms);
    if (r->verify_light_ms)
        row_ms(out, "light checks of hired workers", r->verify_light_ms);
    else
        row_s(out, "light checks of hired workers", "none");
    row_s(out, "honest speed (per check)", r->honest_speed);
    snprintf(b, sizeof(b), "%s (drawn per node)", r->spoofer_speed);
    row_s(out, "spoofer speed", b);
    snprintf(b, sizeof(b), "%.4g", r->spoofers_fraction);
    row_s(out, "share of nodes spoofing from their first join", b);
    row_s(out, "round trip, ms", r->rtt_ms);
    snprintf(b, sizeof(b), "%s, %.4g of nodes (%llu)", r->jitter_rtt_ms, r->jittery_fraction,
             (unsigned long long)r->v_jittery_nodes);
    row_s(out, "jittery links: round trip, ms", b);
    sbuf_puts(out, "</table>\n");
}

static void tasks_table(sbuf *out, const sim_report *r)
{
    sbuf_puts(out, "<h2>Tasks</h2>\n<table>\n");
    row_u(out, "tasks in the requests that arrived", r->t_requested);
    row_u(out, "submitted (their cluster was ready)", r->t_submitted);
    row_u(out, "succeeded", r->t_succeeded);
    row_u(out, "failed", r->t_failed);
    row_u(out, "cancelled (their cluster ended first)", r->t_cancelled);
    row_u(out, "unfinished at the end of the run", r->t_unfinished);
    row_u(out, "attempts", r->t_attempts);
    row_u(out, "retries", r->t_retries);
    row_u(out, "retries after a member was lost", r->t_retries_lost);
    row_u(out, "retries after a non-zero exit", r->t_retries_exit);
    row_u(out, "attempts lost with their member", r->t_lost_attempts);
    row_u(out, "attempts that exited non-zero", r->t_failed_attempts);
    row_u(out, "clusters that ran tasks", r->t_clusters);
    row_u(out, "of which released when done", r->t_released_done);
    row_f(out, "GPU-hours of attempts that succeeded (useful)", r->t_gh_useful);
    row_f(out, "GPU-hours of attempts lost", r->t_gh_lost);
    row_f(out, "GPU-hours of attempts that exited non-zero", r->t_gh_failed);
    row_f(out, "GPU-hours of attempts cut off by the cluster's end", r->t_gh_cancelled);
    row_f(out, "GPU-hours allocated to clusters with tasks", r->t_gh_allocated);
    row_pct(out, "task goodput (useful / allocated)", report_task_goodput(r));
    if (r->t_submit_errors)
        row_u(out, "tasks the core refused", r->t_submit_errors);
    sbuf_puts(out, "</table>\n");
}

static const char *STYLE =
    "body{font-family:sans-serif;margin:2em;color:#222;max-width:900px}"
    "h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}h3{font-size:1em}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em}"
    "th{background:#f4f4f4;font-weight:normal}td{font-variant-numeric:tabular-nums}"
    "figure{margin:1em 0}figcaption{font-size:.8em;color:#666}";

int report_html(const sim_report *r, sbuf *out, mu_error *errp)
{
    sbuf_puts(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<title>muster-sim replay</title>\n<style>");
    sbuf_puts(out, STYLE);
    sbuf_puts(out, "</style>\n</head>\n<body>\n<h1>muster-sim replay</h1>\n<p>Churn ");
    esc(out, *r->churn_source ? r->churn_source : "(none)");
    sbuf_puts(out, " (");
    esc(out, r->churn_format);
    sbuf_puts(out, "), workload ");
    esc(out, *r->workload_source ? r->workload_source : "(none)");
    sbuf_puts(out, " (");
    esc(out, r->workload_format);
    sbuf_printf(out, "), seed %llu, policy ", (unsigned long long)r->seed);
    esc(out, r->policy);
    sbuf_puts(out, ".</p>\n");

    sbuf_puts(out, "<h2>Summary</h2>\n<table>\n");
    row_u(out, "requests", r->requests);
    row_u(out, "met (accepted)", r->met);
    row_pct(out, "success rate (met / requests)", report_success_rate(r));
    row_u(out, "reached ready", r->reached_ready);
    row_pct(out, "ready rate (ready / requests)", report_ready_rate(r));
    row_u(out, "unmet (not enough workers)", r->unmet);
    row_u(out, "invalid (refused by the core)", r->invalid);
    row_stats(out, "time to ready", &r->time_to_ready);
    row_u(out, "clusters degraded at least once", r->clusters_degraded);
    row_ms(out, "degraded time, all clusters", r->degraded_ms);
    row_pct(out, "degraded share of cluster time",
            r->cluster_ms ? (double)r->degraded_ms / (double)r->cluster_ms : NAN);
    row_u(out, "member losses", r->member_losses);
    row_u(out, "reroutes (member replaced)", r->replacements);
    row_stats(out, "reroute latency", &r->reroute_latency);
    row_u(out, "losses never served again", r->losses_unresolved);
    row_f(out, "GPU-hours online", r->gpu_hours_online);
    row_f(out, "GPU-hours allocated", r->gpu_hours_allocated);
    row_f(out, "GPU-hours ready", r->gpu_hours_ready);
    row_pct(out, "utilisation (allocated / online)", report_utilisation(r));
    row_pct(out, "goodput (ready / allocated)", report_goodput(r));
    if (r->verify_on) {
        char b[96];
        snprintf(b, sizeof(b), "%llu of %llu honest workers",
                 (unsigned long long)r->v_false_positives, (unsigned long long)r->v_honest);
        row_s(out, "verification false positives (honest workers failed)", b);
        snprintf(b, sizeof(b), "%llu of %llu spoofers", (unsigned long long)r->v_false_negatives,
                 (unsigned long long)r->v_spoofers);
        row_s(out, "verification false negatives (spoofers hired or passed)", b);
    } else {
        row_s(out, "verification false positives / negatives", "not simulated (see --verify)");
    }
    if (r->tasks_on) {
        row_u(out, "task retries", r->t_retries);
        row_pct(out, "task goodput (useful task GPU-h / allocated)", report_task_goodput(r));
    } else {
        row_s(out, "task retries", "no tasks in the workload");
    }
    sbuf_puts(out, "</table>\n");
    if (r->verify_on)
        verification_table(out, r);
    if (r->tasks_on)
        tasks_table(out, r);

    sbuf_puts(out, "<h2>Time series</h2>\n");
    static const series workers[] = {{"online workers", "#1f77b4", g_online},
                                     {"allocated workers", "#d62728", g_alloc},
                                     {"suspect workers", "#7f7f7f", g_suspect}};
    static const series gpus[] = {{"online GPUs", "#1f77b4", g_online_gpus},
                                  {"allocated GPUs", "#d62728", g_alloc_gpus}};
    static const series clusters[] = {{"active clusters", "#2ca02c", g_active},
                                      {"ready", "#1f77b4", g_ready},
                                      {"degraded", "#ff7f0e", g_degraded}};
    static const series requests[] = {{"requests", "#7f7f7f", g_requests},
                                      {"met", "#2ca02c", g_met},
                                      {"unmet or invalid", "#d62728", g_unmet}};
    static const series losses[] = {{"member losses", "#ff7f0e", g_losses},
                                    {"reroutes", "#1f77b4", g_reroutes}};
    chart(out, r, "Workers", workers, 3);
    chart(out, r, "GPUs", gpus, 2);
    chart(out, r, "Clusters", clusters, 3);
    chart(out, r, "Requests per interval", requests, 3);
    chart(out, r, "Member losses and reroutes per interval", losses, 2);
    static const series checks[] = {{"checks", "#1f77b4", g_checks},
                                    {"not passed", "#ff7f0e", g_not_ok},
                                    {"workers failed", "#d62728", g_vfailed}};
    static const series tasks[] = {{"running", "#2ca02c", g_running},
                                   {"queued", "#7f7f7f", g_queued},
                                   {"succeeded", "#1f77b4", g_tdone}};
    if (r->verify_on)
        chart(out, r, "Verification checks per interval", checks, 3);
    if (r->tasks_on)
        chart(out, r, "Tasks (running and queued: at the end of each interval)", tasks, 3);

    sbuf_puts(out, "<h2>Details</h2>\n");
    counts_table(out, "Unmet requests by the constraint that ran out", &r->unmet_by);
    counts_table(out, "Invalid requests by reason", &r->invalid_by);
    counts_table(out, "Cluster events by topic", &r->topics);
    counts_table(out, "Worker state changes", &r->worker_transitions);
    sbuf_puts(out, "<h3>Run</h3>\n<table>\n");
    row_u(out, "nodes in the churn trace", r->nodes);
    row_u(out, "joins", r->joins);
    row_u(out, "failures (connection lost)", r->failures);
    row_u(out, "goodbyes", r->goodbyes);
    if (r->verify_on)
        row_u(out, "spoof events", r->v_spoof_events);
    else
        row_u(out, "spoof events (verification not simulated)", r->spoof_ignored);
    row_u(out, "events processed", r->events);
    row_u(out, "core ticks", r->ticks);
    row_u(out, "keep-alive touches", r->touches);
    row_ms(out, "virtual time", r->end_ms);
    row_ms(out, "report interval", r->interval_ms);
    char b[64];
    snprintf(b, sizeof(b), "%u ms x %u", r->heartbeat_ms, r->liveness);
    row_s(out, "heartbeat x liveness", b);
    row_ms(out, "keep-alive interval", r->keepalive_ms);
    row_s(out, "acknowledgement delay (s)", r->ack_delay);
    row_s(out, "minimum tier", r->min_tier);
    row_s(out, "any model means", r->any_models);
    sbuf_puts(out, "</table>\n</body>\n</html>\n");
    if (sbuf_failed(out))
        return errprintf(errp, "out of memory writing the HTML report");
    return 0;
}
