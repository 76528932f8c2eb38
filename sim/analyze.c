/* analyze.c - see analyze.h. */
#include "analyze.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "jsonutil.h"

enum { ST_UNKNOWN = 0, ST_UP, ST_DOWN };

typedef struct node_state {
    double since;
    uint8_t state;
    uint8_t from_start; /* the running interval began at time 0 */
    uint8_t spoofed;
    uint8_t seen;
} node_state;

typedef struct lengths {
    double *v;
    size_t n, cap;
} lengths;

static int push(lengths *l, double x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        double *v = mu_realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return 0;
}

/* Sort doubles in place: quicksort with a median-of-three pivot, the
 * smaller side recursed into (depth <= log2 n), insertion sort for short
 * runs. A trace of millions of intervals sorts several times faster than
 * through qsort's comparison callback, and without allocating. */
static void sort_doubles(double *v, size_t n)
{
    while (n > 16) {
        double a = v[0], b = v[n / 2], c = v[n - 1];
        double pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        size_t i = 0, j = n - 1;
        for (;;) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i >= j)
                break;
            double t = v[i];
            v[i++] = v[j];
            v[j--] = t;
        }
        /* [0, j] <= pivot <= [j + 1, n) */
        size_t left = j + 1;
        if (left < n - left) {
            sort_doubles(v, left);
            v += left;
            n -= left;
        } else {
            sort_doubles(v + left, n - left);
            n = left;
        }
    }
    for (size_t i = 1; i < n; i++) {
        double x = v[i];
        size_t k = i;
        for (; k > 0 && v[k - 1] > x; k--)
            v[k] = v[k - 1];
        v[k] = x;
    }
}

/* Fill the measured part of a summary from its complete lengths (sorted
 * here; converted to hours in place for the fits). */
static void summarise(lengths *l, interval_summary *s)
{
    s->count = l->n;
    s->best = -1;
    for (int f = 0; f < FIT_FAMILIES; f++)
        s->fit[f] = (fit_result){.family = (fit_family)f};
    if (!l->n)
        return;
    sort_doubles(l->v, l->n);
    double sum = 0;
    size_t zero = 0;
    for (size_t i = 0; i < l->n; i++) {
        sum += l->v[i];
        zero += l->v[i] == 0;
    }
    s->zero_length = zero;
    s->mean_s = sum / (double)l->n;
    s->median_s = l->n % 2 ? l->v[l->n / 2] : 0.5 * (l->v[l->n / 2 - 1] + l->v[l->n / 2]);
    s->min_s = l->v[0];
    s->max_s = l->v[l->n - 1];
    /* Sorted: the zeros come first. */
    double *h = l->v + zero;
    size_t nh = l->n - zero;
    for (size_t i = 0; i < nh; i++)
        h[i] /= 3600.0;
    s->best = fit_all(h, nh, s->fit);
}

static void close_interval(node_state *ns, double t, lengths *l, interval_summary *s, int *rc)
{
    if (ns->from_start)
        s->from_start++;
    else if (push(l, t - ns->since) < 0)
        *rc = -1;
}

int analyze_churn(const churn_trace *t, churn_summary *out, mu_error *errp)
{
    *out = (churn_summary){0};
    size_t nn = churn_node_count(t);
    const churn_event *ev = churn_events(t);
    size_t ne = churn_event_count(t);
    node_state *ns = mu_calloc(nn ? nn : 1, sizeof(*ns));
    lengths up = {0}, down = {0};
    int rc = 0;
    if (!ns) {
        rc = -1;
        goto done;
    }
    out->nodes = nn;
    out->events = ne;
    out->has_origin = false;
    out->origin_unix = churn_origin_unix(t, &out->has_origin);
    if (ne) {
        out->first_s = ev[0].time_s;
        out->last_s = ev[ne - 1].time_s;
    }
    for (size_t i = 0; i < ne && rc == 0; i++) {
        const churn_event *e = &ev[i];
        node_state *s = &ns[e->node];
        if (!s->seen) {
            s->seen = 1;
            out->nodes_with_events++;
        }
        switch ((churn_kind)e->kind) {
        case CHURN_SPOOF:
            out->spoofs++;
            if (!s->spoofed) {
                s->spoofed = 1;
                out->spoofed_nodes++;
            }
            continue;
        case CHURN_JOIN:
            out->joins++;
            if (s->state == ST_UP) {
                out->redundant++;
                continue;
            }
            if (s->state == ST_DOWN)
                close_interval(s, e->time_s, &down, &out->down, &rc);
            s->state = ST_UP;
            break;
        case CHURN_LEAVE:
            out->leaves++;
            if (s->state == ST_DOWN) {
                out->redundant++;
                continue;
            }
            if (s->state == ST_UP)
                close_interval(s, e->time_s, &up, &out->up, &rc);
            s->state = ST_DOWN;
            break;
        }
        s->since = e->time_s;
        s->from_start = e->time_s == 0;
    }
    if (rc < 0)
        goto done;
    for (size_t i = 0; i < nn; i++) {
        if (ns[i].state == ST_UP)
            out->up.open_at_end++;
        else if (ns[i].state == ST_DOWN)
            out->down.open_at_end++;
    }
    summarise(&up, &out->up);
    summarise(&down, &out->down);
done:
    mu_free(ns);
    mu_free(up.v);
    mu_free(down.v);
    if (rc < 0)
        return errprintf(errp, "out of memory analysing %zu events", ne);
    return 0;
}

void analyze_format_duration(double s, char *out, size_t n)
{
    if (s < 120)
        snprintf(out, n, "%.3g s", s);
    else if (s < 7200)
        snprintf(out, n, "%.3g min", s / 60);
    else if (s < 172800)
        snprintf(out, n, "%.3g h", s / 3600);
    else
        snprintf(out, n, "%.4g d", s / 86400);
}

static void format_utc(double unix_s, char *out, size_t n)
{
    time_t tt = (time_t)unix_s;
    struct tm tm;
    if (gmtime_r(&tt, &tm))
        strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
    else
        snprintf(out, n, "%.0f", unix_s);
}

static void fit_params_text(const fit_result *f, char *out, size_t n)
{
    switch (f->family) {
    case FIT_EXPONENTIAL:
        snprintf(out, n, "mean %.4g h", f->p1);
        break;
    case FIT_WEIBULL:
        snprintf(out, n, "shape %.4g, scale %.4g h", f->p1, f->p2);
        break;
    case FIT_LOGNORMAL:
        snprintf(out, n, "mu %.4g, sigma %.4g (ln h)", f->p1, f->p2);
        break;
    case FIT_FAMILIES:
        snprintf(out, n, "?");
        break;
    }
}

static void intervals_text(const interval_summary *s, const char *what, sbuf *out)
{
    sbuf_printf(out,
                "\n%s intervals: %zu complete (%zu of zero length), %zu open at the end, "
                "%zu from the start\n",
                what, s->count, s->zero_length, s->open_at_end, s->from_start);
    if (!s->count)
        return;
    char mean[32], med[32], mn[32], mx[32];
    analyze_format_duration(s->mean_s, mean, sizeof(mean));
    analyze_format_duration(s->median_s, med, sizeof(med));
    analyze_format_duration(s->min_s, mn, sizeof(mn));
    analyze_format_duration(s->max_s, mx, sizeof(mx));
    sbuf_printf(out, "  mean %s, median %s, min %s, max %s\n", mean, med, mn, mx);
    size_t nfit = s->count - s->zero_length;
    sbuf_printf(out,
                "  maximum-likelihood fits on %zu lengths in hours (%zu zero-length left "
                "out):\n",
                nfit, s->zero_length);
    sbuf_printf(out, "    %-12s %-34s %14s %14s\n", "family", "parameters", "log-lik", "AIC");
    for (int f = 0; f < FIT_FAMILIES; f++) {
        const fit_result *r = &s->fit[f];
        if (!r->ok) {
            sbuf_printf(out, "    %-12s %s\n", fit_family_name((fit_family)f),
                        "(not fitted: fewer than 2 distinct lengths)");
            continue;
        }
        char p[64];
        fit_params_text(r, p, sizeof(p));
        sbuf_printf(out, "    %-12s %-34s %14.1f %14.1f\n", fit_family_name((fit_family)f), p,
                    r->loglik, r->aic);
    }
    if (s->best < 0)
        return;
    /* How much better than the runner-up: an AIC gap above ~10 is decisive. */
    double gap = INFINITY;
    int second = -1;
    for (int f = 0; f < FIT_FAMILIES; f++) {
        if (f != s->best && s->fit[f].ok && s->fit[f].aic - s->fit[s->best].aic < gap) {
            gap = s->fit[f].aic - s->fit[s->best].aic;
            second = f;
        }
    }
    char spec[64];
    fit_format_spec(&s->fit[s->best], spec, sizeof(spec));
    if (second >= 0)
        sbuf_printf(out, "  best: %s (AIC %.1f below %s); as a generate spec: %s\n",
                    fit_family_name((fit_family)s->best), gap, fit_family_name((fit_family)second),
                    spec);
    else
        sbuf_printf(out, "  best: %s; as a generate spec: %s\n",
                    fit_family_name((fit_family)s->best), spec);
}

void analyze_churn_text(const churn_summary *s, const churn_read_stats *stats, const char *source,
                        const char *format, sbuf *out)
{
    sbuf_printf(out, "churn trace %s (%s)\n", source, format);
    if (stats && stats->zero_length + stats->gaps)
        sbuf_printf(out, "  read %zu records: %zu zero-length intervals (kept), %zu gaps\n",
                    stats->records, stats->zero_length, stats->gaps);
    sbuf_printf(out, "nodes %zu (%zu with events)\n", s->nodes, s->nodes_with_events);
    sbuf_printf(out, "events %zu: %zu join, %zu leave, %zu spoof (%zu nodes); %zu redundant\n",
                s->events, s->joins, s->leaves, s->spoofs, s->spoofed_nodes, s->redundant);
    char span[32];
    analyze_format_duration(s->last_s - s->first_s, span, sizeof(span));
    if (s->has_origin) {
        char a[40], b[40];
        format_utc(s->origin_unix + s->first_s, a, sizeof(a));
        format_utc(s->origin_unix + s->last_s, b, sizeof(b));
        sbuf_printf(out, "span %s, from %s to %s\n", span, a, b);
    } else {
        sbuf_printf(out, "span %s (events from %.0f s to %.0f s)\n", span, s->first_s, s->last_s);
    }
    intervals_text(&s->up, "available", out);
    intervals_text(&s->down, "unavailable", out);
}

/* cJSON can only fail by running out of memory: collect that in one flag. */
static void num(cJSON *o, const char *k, double v, bool *oom)
{
    if (!cJSON_AddNumberToObject(o, k, v))
        *oom = true;
}

static cJSON *obj(cJSON *parent, const char *k, bool *oom)
{
    cJSON *o = cJSON_AddObjectToObject(parent, k);
    if (!o)
        *oom = true;
    return o;
}

static void intervals_json(cJSON *parent, const char *k, const interval_summary *s, bool *oom)
{
    cJSON *o = obj(parent, k, oom);
    if (!o)
        return;
    num(o, "complete", (double)s->count, oom);
    num(o, "zero_length", (double)s->zero_length, oom);
    num(o, "open_at_end", (double)s->open_at_end, oom);
    num(o, "from_start", (double)s->from_start, oom);
    if (s->count) {
        num(o, "mean_s", s->mean_s, oom);
        num(o, "median_s", s->median_s, oom);
        num(o, "min_s", s->min_s, oom);
        num(o, "max_s", s->max_s, oom);
    }
    num(o, "fitted", (double)(s->count - s->zero_length), oom);
    cJSON *fits = obj(o, "fits_hours", oom);
    for (int f = 0; fits && f < FIT_FAMILIES; f++) {
        const fit_result *r = &s->fit[f];
        if (!r->ok)
            continue;
        cJSON *j = obj(fits, fit_family_name((fit_family)f), oom);
        if (!j)
            break;
        if (f == FIT_EXPONENTIAL) {
            num(j, "mean", r->p1, oom);
        } else if (f == FIT_WEIBULL) {
            num(j, "shape", r->p1, oom);
            num(j, "scale", r->p2, oom);
        } else {
            num(j, "mu", r->p1, oom);
            num(j, "sigma", r->p2, oom);
        }
        num(j, "loglik", r->loglik, oom);
        num(j, "aic", r->aic, oom);
    }
    if (s->best >= 0) {
        char spec[64];
        fit_format_spec(&s->fit[s->best], spec, sizeof(spec));
        if (!cJSON_AddStringToObject(o, "best", fit_family_name((fit_family)s->best)) ||
            !cJSON_AddStringToObject(o, "best_spec", spec))
            *oom = true;
    }
}

static int print_json(cJSON *root, bool oom, sbuf *out, mu_error *errp)
{
    char *text = oom ? NULL : cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return errprintf(errp, "out of memory formatting JSON");
    sbuf_puts(out, text);
    sbuf_puts(out, "\n");
    cJSON_free(text);
    return 0;
}

int analyze_churn_json(const churn_summary *s, const churn_read_stats *stats, const char *source,
                       const char *format, sbuf *out, mu_error *errp)
{
    bool oom = false;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return errprintf(errp, "out of memory formatting JSON");
    if (!cJSON_AddStringToObject(root, "source", source) ||
        !cJSON_AddStringToObject(root, "format", format))
        oom = true;
    if (stats) {
        cJSON *r = obj(root, "read", &oom);
        if (r) {
            num(r, "records", (double)stats->records, &oom);
            num(r, "zero_length", (double)stats->zero_length, &oom);
            num(r, "gaps", (double)stats->gaps, &oom);
        }
    }
    num(root, "nodes", (double)s->nodes, &oom);
    num(root, "nodes_with_events", (double)s->nodes_with_events, &oom);
    cJSON *e = obj(root, "events", &oom);
    if (e) {
        num(e, "total", (double)s->events, &oom);
        num(e, "join", (double)s->joins, &oom);
        num(e, "leave", (double)s->leaves, &oom);
        num(e, "spoof", (double)s->spoofs, &oom);
        num(e, "redundant", (double)s->redundant, &oom);
    }
    num(root, "spoofed_nodes", (double)s->spoofed_nodes, &oom);
    num(root, "first_s", s->first_s, &oom);
    num(root, "last_s", s->last_s, &oom);
    if (s->has_origin)
        num(root, "origin_unix", s->origin_unix, &oom);
    intervals_json(root, "available", &s->up, &oom);
    intervals_json(root, "unavailable", &s->down, &oom);
    return print_json(root, oom, out, errp);
}

/* --- workloads -------------------------------------------------------------- */

typedef struct model_count {
    const char *model;
    size_t count;
} model_count;

static int cmp_model_count(const void *a, const void *b)
{
    const model_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->model, y->model);
}

int analyze_workload(const workload *w, workload_summary *out, mu_error *errp)
{
    *out = (workload_summary){0};
    size_t n = workload_count(w);
    out->requests = n;
    if (!n)
        return 0;
    double *dur = mu_malloc(n * sizeof(*dur));
    double *gpus = mu_malloc(n * sizeof(*gpus));
    model_count *mc = mu_malloc(n * sizeof(*mc));
    size_t nmc = 0;
    if (!dur || !gpus || !mc) {
        mu_free(dur);
        mu_free(gpus);
        mu_free(mc);
        return errprintf(errp, "out of memory analysing %zu requests", n);
    }
    out->first_arrival_s = workload_at(w, 0)->arrival_s;
    out->last_arrival_s = workload_at(w, n - 1)->arrival_s;
    double dsum = 0, gsum = 0;
    for (size_t i = 0; i < n; i++) {
        const workload_request *r = workload_at(w, i);
        double g = (double)r->workers * r->gpus_per_worker;
        dur[i] = r->duration_s;
        gpus[i] = g;
        dsum += r->duration_s;
        gsum += g;
        out->gpu_hours += g * r->duration_s / 3600.0;
        if (g > out->max_gpus)
            out->max_gpus = (unsigned)g;
        out->multi_worker += r->workers > 1;
        out->with_region += *r->region != '\0';
        /* Interned strings: one pointer per distinct model. A linear scan
         * is fine for the handful of models traces have. */
        size_t k = 0;
        while (k < nmc && strcmp(mc[k].model, r->gpu_model) != 0)
            k++;
        if (k == nmc)
            mc[nmc++] = (model_count){r->gpu_model, 0};
        mc[k].count++;
    }
    sort_doubles(dur, n);
    sort_doubles(gpus, n);
    qsort(mc, nmc, sizeof(*mc), cmp_model_count);
    out->mean_duration_s = dsum / (double)n;
    out->median_duration_s = n % 2 ? dur[n / 2] : 0.5 * (dur[n / 2 - 1] + dur[n / 2]);
    out->max_duration_s = dur[n - 1];
    out->mean_gpus = gsum / (double)n;
    out->median_gpus = n % 2 ? gpus[n / 2] : 0.5 * (gpus[n / 2 - 1] + gpus[n / 2]);
    for (size_t k = 0; k < nmc; k++) {
        if (k < WORKLOAD_SUMMARY_MODELS) {
            out->models[k].model = mc[k].model;
            out->models[k].count = mc[k].count;
            out->n_models++;
        } else {
            out->other_models += mc[k].count;
        }
    }
    mu_free(dur);
    mu_free(gpus);
    mu_free(mc);
    return 0;
}

void analyze_workload_text(const workload_summary *s, const workload_read_stats *st,
                           const char *source, const char *format, sbuf *out)
{
    sbuf_printf(out, "workload %s (%s)\n", source, format);
    if (st) {
        sbuf_printf(out, "read %zu records: %zu requests kept", st->records, st->requests);
        if (st->skipped_no_gpu)
            sbuf_printf(out, ", %zu without GPUs skipped", st->skipped_no_gpu);
        if (st->skipped_bad_time)
            sbuf_printf(out, ", %zu without a valid time skipped", st->skipped_bad_time);
        if (st->skipped_no_procs)
            sbuf_printf(out, ", %zu without processors skipped", st->skipped_no_procs);
        sbuf_puts(out, "\n");
        if (st->fractional_gpu || st->never_scheduled || st->unmapped_model || st->rounded_up)
            sbuf_printf(out,
                        "  kept: %zu fractional-GPU (rented whole), %zu never scheduled, %zu "
                        "unmapped models, %zu rounded up to whole workers\n",
                        st->fractional_gpu, st->never_scheduled, st->unmapped_model,
                        st->rounded_up);
    }
    char a[32], b[32], c[32], span[32];
    analyze_format_duration(s->last_arrival_s - s->first_arrival_s, span, sizeof(span));
    sbuf_printf(out, "requests %zu over %s; %zu of more than one worker, %zu naming a region\n",
                s->requests, span, s->multi_worker, s->with_region);
    if (!s->requests)
        return;
    analyze_format_duration(s->mean_duration_s, a, sizeof(a));
    analyze_format_duration(s->median_duration_s, b, sizeof(b));
    analyze_format_duration(s->max_duration_s, c, sizeof(c));
    sbuf_printf(out, "duration: mean %s, median %s, max %s\n", a, b, c);
    sbuf_printf(out, "GPUs per request: mean %.3g, median %g, max %u; %.0f GPU-hours in all\n",
                s->mean_gpus, s->median_gpus, s->max_gpus, s->gpu_hours);
    sbuf_puts(out, "GPU model:");
    for (size_t k = 0; k < s->n_models; k++)
        sbuf_printf(out, "%s %s %zu", k ? "," : "",
                    *s->models[k].model ? s->models[k].model : "(any)", s->models[k].count);
    if (s->other_models)
        sbuf_printf(out, ", others %zu", s->other_models);
    sbuf_puts(out, "\n");
}

int analyze_workload_json(const workload_summary *s, const workload_read_stats *st,
                          const char *source, const char *format, sbuf *out, mu_error *errp)
{
    bool oom = false;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return errprintf(errp, "out of memory formatting JSON");
    if (!cJSON_AddStringToObject(root, "source", source) ||
        !cJSON_AddStringToObject(root, "format", format))
        oom = true;
    if (st) {
        cJSON *r = obj(root, "read", &oom);
        if (r) {
            num(r, "records", (double)st->records, &oom);
            num(r, "requests", (double)st->requests, &oom);
            num(r, "skipped_no_gpu", (double)st->skipped_no_gpu, &oom);
            num(r, "skipped_bad_time", (double)st->skipped_bad_time, &oom);
            num(r, "skipped_no_procs", (double)st->skipped_no_procs, &oom);
            num(r, "fractional_gpu", (double)st->fractional_gpu, &oom);
            num(r, "never_scheduled", (double)st->never_scheduled, &oom);
            num(r, "unmapped_model", (double)st->unmapped_model, &oom);
            num(r, "rounded_up", (double)st->rounded_up, &oom);
        }
    }
    num(root, "requests", (double)s->requests, &oom);
    if (s->requests) {
        num(root, "first_arrival_s", s->first_arrival_s, &oom);
        num(root, "last_arrival_s", s->last_arrival_s, &oom);
        num(root, "mean_duration_s", s->mean_duration_s, &oom);
        num(root, "median_duration_s", s->median_duration_s, &oom);
        num(root, "max_duration_s", s->max_duration_s, &oom);
        num(root, "mean_gpus", s->mean_gpus, &oom);
        num(root, "median_gpus", s->median_gpus, &oom);
        num(root, "max_gpus", s->max_gpus, &oom);
        num(root, "gpu_hours", s->gpu_hours, &oom);
    }
    num(root, "multi_worker", (double)s->multi_worker, &oom);
    num(root, "with_region", (double)s->with_region, &oom);
    cJSON *m = obj(root, "models", &oom);
    for (size_t k = 0; m && k < s->n_models; k++)
        num(m, *s->models[k].model ? s->models[k].model : "any", (double)s->models[k].count, &oom);
    if (m && s->other_models)
        num(m, "(others)", (double)s->other_models, &oom);
    return print_json(root, oom, out, errp);
}
