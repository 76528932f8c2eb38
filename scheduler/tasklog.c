/* tasklog.c - see tasklog.h. */
#include "tasklog.h"

#include <string.h>

#include "alloc.h"

struct tasklog {
    uint8_t *ring;
    size_t cap;
    uint64_t total; /* bytes appended ever; byte at offset o sits at ring[o % cap] */
    uint64_t base;  /* nothing before this offset was ever kept (a restore) */
};

tasklog *tasklog_create(size_t cap)
{
    if (!cap)
        return NULL;
    tasklog *l = mu_calloc(1, sizeof(*l));
    if (!l || !(l->ring = mu_malloc(cap))) {
        mu_free(l);
        return NULL;
    }
    l->cap = cap;
    return l;
}

void tasklog_destroy(tasklog *l)
{
    if (!l)
        return;
    mu_free(l->ring);
    mu_free(l);
}

void tasklog_append(tasklog *l, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (!len)
        return;
    if (len > l->cap) {
        /* Only the tail can be kept. */
        l->total += len - l->cap;
        p += len - l->cap;
        len = l->cap;
    }
    size_t at = (size_t)(l->total % l->cap);
    size_t first = len < l->cap - at ? len : l->cap - at;
    memcpy(l->ring + at, p, first);
    memcpy(l->ring, p + first, len - first);
    l->total += len;
}

void tasklog_restore(tasklog *l, const void *data, size_t len, uint64_t first)
{
    l->total = l->base = first;
    tasklog_append(l, data, len);
}

uint64_t tasklog_total(const tasklog *l)
{
    return l->total;
}

uint64_t tasklog_first(const tasklog *l)
{
    uint64_t oldest = l->total > l->cap ? l->total - l->cap : 0;
    return oldest > l->base ? oldest : l->base;
}

size_t tasklog_read(const tasklog *l, uint64_t from, void *buf, size_t max, uint64_t *start)
{
    uint64_t first = tasklog_first(l);
    if (from < first)
        from = first;
    if (from > l->total)
        from = l->total;
    *start = from;
    size_t n = (size_t)(l->total - from);
    if (n > max)
        n = max;
    if (!n)
        return 0;
    size_t at = (size_t)(from % l->cap);
    size_t a = n < l->cap - at ? n : l->cap - at;
    memcpy(buf, l->ring + at, a);
    memcpy((uint8_t *)buf + a, l->ring, n - a);
    return n;
}
