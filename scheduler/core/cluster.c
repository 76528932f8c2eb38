/* cluster.c - see cluster.h. */
#include "cluster.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "idtable.h"

#define NIL UINT32_MAX

struct cluster_table {
    idtable *recs;
    cluster **heap; /* active clusters, min-heap by deadline then slot */
    size_t heap_n, heap_cap;
};

static const char *const state_names[] = {"pending",  "provisioning", "ready", "degraded",
                                          "released", "expired",      "failed"};

const char *cluster_state_name(cluster_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "unknown";
}

cluster_table *cluster_table_create(void)
{
    cluster_table *t = mu_calloc(1, sizeof(*t));
    if (!t || !(t->recs = idtable_create(sizeof(cluster), offsetof(cluster, id)))) {
        mu_free(t);
        return NULL;
    }
    return t;
}

static void free_members(void *c)
{
    mu_free(((cluster *)c)->members);
}

void cluster_table_destroy(cluster_table *t)
{
    if (!t)
        return;
    idtable_destroy(t->recs, free_members);
    mu_free(t->heap);
    mu_free(t);
}

cluster *cluster_table_add(cluster_table *t, const mu_id *id)
{
    /* Keep the heap able to hold every cluster, so that scheduling one
     * later can never fail. */
    size_t n = idtable_count(t->recs);
    if (t->heap_cap < n + 1) {
        size_t ncap = t->heap_cap ? t->heap_cap * 2 : 16;
        cluster **nh = mu_realloc(t->heap, ncap * sizeof(*nh));
        if (!nh) {
            errno = ENOMEM;
            return NULL;
        }
        t->heap = nh;
        t->heap_cap = ncap;
    }
    cluster *c = idtable_add(t->recs, id);
    if (!c)
        return NULL;
    c->slot = (uint32_t)n;
    c->heap_pos = NIL;
    c->resv = NIL;
    return c;
}

cluster *cluster_table_get(const cluster_table *t, const mu_id *id)
{
    return idtable_get(t->recs, id);
}

cluster *cluster_table_find(const cluster_table *t, const char *prefix)
{
    return idtable_find(t->recs, prefix);
}

size_t cluster_table_count(const cluster_table *t)
{
    return idtable_count(t->recs);
}

cluster *cluster_table_at(const cluster_table *t, size_t slot)
{
    return idtable_at(t->recs, slot);
}

bool cluster_active(const cluster *c)
{
    return c->state == CLUSTER_PROVISIONING || c->state == CLUSTER_READY ||
           c->state == CLUSTER_DEGRADED;
}

uint64_t cluster_deadline(const cluster *c)
{
    if (c->state == CLUSTER_PROVISIONING && c->provision_deadline < c->ends_at)
        return c->provision_deadline;
    return c->ends_at;
}

/* --- the deadline heap --------------------------------------------------------------- */

static bool before(const cluster *a, const cluster *b)
{
    uint64_t da = cluster_deadline(a), db = cluster_deadline(b);
    return da != db ? da < db : a->slot < b->slot;
}

static void heap_set(cluster_table *t, size_t i, cluster *c)
{
    t->heap[i] = c;
    c->heap_pos = (uint32_t)i;
}

static void sift_up(cluster_table *t, size_t i)
{
    cluster *c = t->heap[i];
    while (i > 0 && before(c, t->heap[(i - 1) / 2])) {
        heap_set(t, i, t->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(t, i, c);
}

static void sift_down(cluster_table *t, size_t i)
{
    cluster *c = t->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cluster *best = c;
        if (l < t->heap_n && before(t->heap[l], best)) {
            m = l;
            best = t->heap[l];
        }
        if (r < t->heap_n && before(t->heap[r], best))
            m = r;
        if (m == i)
            break;
        heap_set(t, i, t->heap[m]);
        i = m;
    }
    heap_set(t, i, c);
}

void cluster_table_schedule(cluster_table *t, cluster *c)
{
    if (c->heap_pos != NIL) {
        size_t i = c->heap_pos;
        cluster *last = t->heap[--t->heap_n];
        c->heap_pos = NIL;
        if (last != c) {
            heap_set(t, i, last);
            sift_up(t, i);
            sift_down(t, last->heap_pos);
        }
    }
    if (!cluster_active(c))
        return;
    /* heap_cap >= number of clusters >= active ones: see cluster_table_add. */
    heap_set(t, t->heap_n++, c);
    sift_up(t, c->heap_pos);
}

cluster *cluster_table_next_due(const cluster_table *t)
{
    return t->heap_n ? t->heap[0] : NULL;
}

size_t cluster_table_active_count(const cluster_table *t)
{
    return t->heap_n;
}

/* --- history ----------------------------------------------------------------------------- */

void cluster_record(cluster *c, uint64_t at, uint32_t worker_slot, const char *what,
                    const char *reason)
{
    cluster_change *ch = &c->history[c->n_history % CLUSTER_HISTORY];
    ch->at = at;
    ch->worker = worker_slot;
    snprintf(ch->what, sizeof(ch->what), "%s", what);
    snprintf(ch->reason, sizeof(ch->reason), "%s", reason ? reason : "");
    c->n_history++;
}

const cluster_change *cluster_history_at(const cluster *c, uint32_t i)
{
    uint32_t kept = c->n_history < CLUSTER_HISTORY ? c->n_history : CLUSTER_HISTORY;
    if (i >= kept)
        return NULL;
    uint32_t first = c->n_history - kept;
    return &c->history[(first + i) % CLUSTER_HISTORY];
}
