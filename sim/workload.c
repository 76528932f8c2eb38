/* workload.c - see workload.h: the request list and its JSON lines writer. */
#include "workload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "strtab.h"

struct workload {
    workload_request *r;
    size_t n;
    size_t cap;
    strtab *strings;
};

workload *workload_create(void)
{
    workload *w = mu_calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    if (!(w->strings = strtab_create())) {
        mu_free(w);
        return NULL;
    }
    return w;
}

void workload_destroy(workload *w)
{
    if (!w)
        return;
    mu_free(w->r);
    strtab_destroy(w->strings);
    mu_free(w);
}

/* The interned copy of s ("" stays the literal: nothing to store). */
static int intern(workload *w, const char *s, const char **out)
{
    if (!s || !*s) {
        *out = "";
        return 0;
    }
    uint32_t id;
    if (strtab_intern(w->strings, s, &id, NULL) < 0)
        return -1;
    *out = strtab_at(w->strings, id);
    return 0;
}

int workload_append(workload *w, const workload_request *r, mu_error *errp)
{
    if (!isfinite(r->arrival_s) || r->arrival_s < 0)
        return errprintf(errp, "arrival %g is negative or not finite", r->arrival_s);
    if (!isfinite(r->duration_s) || !(r->duration_s > 0))
        return errprintf(errp, "duration %g is not a number > 0", r->duration_s);
    if (!r->workers || !r->gpus_per_worker)
        return errprintf(errp, "a request needs at least one worker and one GPU per worker");
    if (r->placement && *r->placement && strcmp(r->placement, "pack") != 0 &&
        strcmp(r->placement, "spread") != 0)
        return errprintf(errp, "placement \"%.32s\" is not pack or spread", r->placement);
    if (r->tasks) {
        if (r->tasks > WORKLOAD_MAX_TASKS)
            return errprintf(errp, "%u tasks: at most %u per request", r->tasks,
                             WORKLOAD_MAX_TASKS);
        if (r->task_gpus > r->gpus_per_worker)
            return errprintf(
                errp, "task_gpus %u is more than gpus_per_worker %u: no member could run a task",
                r->task_gpus, r->gpus_per_worker);
        if (!(r->task_fail >= 0 && r->task_fail <= 1))
            return errprintf(errp, "task_fail %g is not a probability in [0, 1]", r->task_fail);
        if (r->task_retries > WORKLOAD_MAX_TASK_RETRIES)
            return errprintf(errp, "task_retries %u: at most %u", r->task_retries,
                             WORKLOAD_MAX_TASK_RETRIES);
        if ((unsigned)r->task_s.kind > DIST_UNIFORM || !(dist_mean(&r->task_s) > 0) ||
            !isfinite(dist_mean(&r->task_s)))
            return errprintf(errp, "task_s is not a run time > 0");
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        workload_request *a = mu_realloc(w->r, cap * sizeof(*a));
        if (!a)
            return errprintf(errp, "out of memory (%zu requests)", w->n);
        w->r = a;
        w->cap = cap;
    }
    workload_request c = *r;
    if (!c.tasks) {
        c.task_gpus = c.task_retries = 0;
        c.task_fail = 0;
        c.task_s = (dist){DIST_CONSTANT, 1, 0};
    } else if (!c.task_gpus) {
        c.task_gpus = c.gpus_per_worker;
    }
    if (intern(w, r->gpu_model, &c.gpu_model) < 0 || intern(w, r->region, &c.region) < 0 ||
        intern(w, r->name, &c.name) < 0 || intern(w, r->placement, &c.placement) < 0)
        return errprintf(errp, "out of memory (request strings)");
    w->r[w->n++] = c;
    return 0;
}

int workload_sort(workload *w, mu_error *errp)
{
    size_t n = w->n, i = 1;
    while (i < n && w->r[i].arrival_s >= w->r[i - 1].arrival_s)
        i++;
    if (i >= n)
        return 0;
    /* Bottom-up merge sort: stable, so equal arrivals keep trace order. */
    workload_request *tmp = mu_malloc(n * sizeof(*tmp));
    if (!tmp)
        return errprintf(errp, "out of memory sorting %zu requests", n);
    workload_request *src = w->r, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                dst[k++] = src[b].arrival_s < src[a].arrival_s ? src[b++] : src[a++];
            while (a < mid)
                dst[k++] = src[a++];
            while (b < hi)
                dst[k++] = src[b++];
        }
        workload_request *s = src;
        src = dst;
        dst = s;
    }
    if (src != w->r)
        memcpy(w->r, src, n * sizeof(*src));
    mu_free(tmp);
    return 0;
}

size_t workload_count(const workload *w)
{
    return w->n;
}

const workload_request *workload_at(const workload *w, size_t i)
{
    return i < w->n ? &w->r[i] : NULL;
}

int workload_set_region(workload *w, size_t i, const char *region, mu_error *errp)
{
    if (i >= w->n)
        return errprintf(errp, "request %zu does not exist", i);
    const char *s;
    if (intern(w, region, &s) < 0)
        return errprintf(errp, "out of memory (request strings)");
    w->r[i].region = s;
    return 0;
}

size_t workload_tasks_per_worker(workload *w)
{
    size_t n = 0;
    for (size_t i = 0; i < w->n; i++) {
        workload_request *r = &w->r[i];
        if (r->tasks)
            continue;
        r->tasks = r->workers;
        r->task_gpus = r->gpus_per_worker;
        r->task_retries = 0;
        r->task_fail = 0;
        r->task_s = (dist){DIST_CONSTANT, r->duration_s, 0};
        n++;
    }
    return n;
}

bool workload_has_tasks(const workload *w)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->r[i].tasks)
            return true;
    return false;
}

static void put_json_string(sbuf *out, const char *s)
{
    sbuf_puts(out, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sbuf_printf(out, "\\%c", *p);
        else if (*p < 0x20)
            sbuf_printf(out, "\\u%04x", *p);
        else
            sbuf_append(out, (const char *)p, 1);
    }
    sbuf_puts(out, "\"");
}

/* Milliseconds, trailing zeros dropped: compact and exact to read back. */
static void put_seconds(sbuf *out, double t)
{
    char buf[40];
    snprintf(buf, sizeof(buf), "%.3f", t);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *e = buf + strlen(buf);
        while (e > dot + 1 && e[-1] == '0')
            *--e = '\0';
        if (e == dot + 1)
            *dot = '\0';
    }
    sbuf_puts(out, buf);
}

/* The shortest text that reads back as the same double. */
static void put_exact(sbuf *out, double v)
{
    char buf[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    sbuf_puts(out, buf);
}

/* A run time: a bare number when constant, else a dist spec, exactly. */
static void put_task_s(sbuf *out, const dist *d)
{
    static const char *const names[] = {"exp", "weibull", "lognormal", "const", "uniform"};
    if (d->kind == DIST_CONSTANT) {
        put_exact(out, d->a);
        return;
    }
    sbuf_printf(out, "\"%s:", names[d->kind]);
    put_exact(out, d->a);
    if (d->kind != DIST_EXPONENTIAL) {
        sbuf_puts(out, ",");
        put_exact(out, d->b);
    }
    sbuf_puts(out, "\"");
}

int workload_write_jsonl(const workload *w, sbuf *out, mu_error *errp)
{
    for (size_t i = 0; i < w->n; i++) {
        const workload_request *r = &w->r[i];
        sbuf_puts(out, "{\"arrival_s\":");
        put_seconds(out, r->arrival_s);
        sbuf_puts(out, ",\"duration_s\":");
        put_seconds(out, r->duration_s);
        sbuf_printf(out, ",\"workers\":%u,\"gpus_per_worker\":%u,\"gpu_model\":", r->workers,
                    r->gpus_per_worker);
        put_json_string(out, r->gpu_model);
        if (*r->region) {
            sbuf_puts(out, ",\"region\":");
            put_json_string(out, r->region);
        }
        if (*r->name) {
            sbuf_puts(out, ",\"name\":");
            put_json_string(out, r->name);
        }
        if (*r->placement) {
            sbuf_puts(out, ",\"placement\":");
            put_json_string(out, r->placement);
        }
        if (r->tasks) {
            sbuf_printf(out, ",\"tasks\":%u,\"task_s\":", r->tasks);
            put_task_s(out, &r->task_s);
            if (r->task_gpus != r->gpus_per_worker)
                sbuf_printf(out, ",\"task_gpus\":%u", r->task_gpus);
            if (r->task_fail > 0) {
                sbuf_puts(out, ",\"task_fail\":");
                put_exact(out, r->task_fail);
            }
            if (r->task_retries)
                sbuf_printf(out, ",\"task_retries\":%u", r->task_retries);
        }
        sbuf_puts(out, "}\n");
    }
    if (sbuf_failed(out))
        return errprintf(errp, "out of memory writing %zu requests", w->n);
    return 0;
}
