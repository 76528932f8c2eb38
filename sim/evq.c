/* evq.c - see evq.h. */
#include "evq.h"

#include <errno.h>

#include "alloc.h"

struct evq {
    evq_event *h;
    size_t n, cap, peak;
    uint64_t seq; /* pushes so far: the tie-break within a class */
};

evq *evq_create(void)
{
    return mu_calloc(1, sizeof(evq));
}

void evq_destroy(evq *q)
{
    if (!q)
        return;
    mu_free(q->h);
    mu_free(q);
}

static inline bool before(const evq_event *a, const evq_event *b)
{
    return a->t < b->t || (a->t == b->t && a->order < b->order);
}

int evq_push(evq *q, uint64_t t, uint16_t cls, uint32_t kind, uint32_t a, uint32_t b, uint32_t c)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        evq_event *h = mu_realloc(q->h, cap * sizeof(*h));
        if (!h) {
            errno = ENOMEM;
            return -1;
        }
        q->h = h;
        q->cap = cap;
    }
    /* 48 bits of sequence: 2.8e14 pushes, far beyond any run. */
    evq_event e = {t, (uint64_t)cls << 48 | (q->seq++ & 0xffffffffffffull), kind, a, b, c};
    size_t i = q->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&e, &q->h[p]))
            break;
        q->h[i] = q->h[p];
        i = p;
    }
    q->h[i] = e;
    if (q->n > q->peak)
        q->peak = q->n;
    return 0;
}

bool evq_pop(evq *q, evq_event *out)
{
    if (!q->n)
        return false;
    *out = q->h[0];
    evq_event last = q->h[--q->n];
    size_t i = 0, n = q->n;
    /* Sift the last entry down from the root, moving the smaller child up. */
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n)
            break;
        size_t m = l + 1 < n && before(&q->h[l + 1], &q->h[l]) ? l + 1 : l;
        if (!before(&q->h[m], &last))
            break;
        q->h[i] = q->h[m];
        i = m;
    }
    if (n)
        q->h[i] = last;
    return true;
}

const evq_event *evq_peek(const evq *q)
{
    return q->n ? &q->h[0] : NULL;
}

size_t evq_size(const evq *q)
{
    return q->n;
}

size_t evq_peak(const evq *q)
{
    return q->peak;
}

size_t evq_bytes(const evq *q)
{
    return sizeof(*q) + q->cap * sizeof(evq_event);
}
