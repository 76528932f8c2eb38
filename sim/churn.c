/* churn.c - see churn.h. */
#include "churn.h"

#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "strtab.h"

#define NONE UINT32_MAX

/* Per-node attributes as ids into the value table: a million nodes with a
 * dozen models and countries cost 12 bytes each. */
typedef struct node_attr {
    uint32_t model;   /* value id or NONE */
    uint32_t country; /* value id or NONE */
    uint32_t gpu_count;
} node_attr;

struct churn_trace {
    churn_event *ev;
    size_t n;
    size_t cap;
    strtab *names;  /* node names: id == node index */
    strtab *values; /* GPU models and countries */
    node_attr *attr;
    size_t attr_cap;
    double origin_unix;
    bool has_origin;
};

churn_trace *churn_create(void)
{
    churn_trace *t = mu_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->names = strtab_create();
    t->values = strtab_create();
    if (!t->names || !t->values) {
        churn_destroy(t);
        return NULL;
    }
    return t;
}

void churn_destroy(churn_trace *t)
{
    if (!t)
        return;
    mu_free(t->ev);
    mu_free(t->attr);
    strtab_destroy(t->names);
    strtab_destroy(t->values);
    mu_free(t);
}

int churn_node_intern(churn_trace *t, const char *name, uint32_t *index, mu_error *errp)
{
    if (!name || !*name)
        return errprintf(errp, "a node name is empty");
    uint32_t id;
    if (strtab_find(t->names, name, &id) == 0) {
        *index = id;
        return 0;
    }
    /* Room for the attributes first: interning cannot be undone. */
    size_t n = strtab_count(t->names);
    if (n == t->attr_cap) {
        size_t cap = t->attr_cap ? t->attr_cap * 2 : 256;
        node_attr *a = mu_realloc(t->attr, cap * sizeof(*a));
        if (!a)
            return errprintf(errp, "out of memory (node table)");
        t->attr = a;
        t->attr_cap = cap;
    }
    if (strtab_intern(t->names, name, &id, NULL) < 0)
        return errprintf(errp, "out of memory (node table)");
    t->attr[id] = (node_attr){NONE, NONE, 0};
    *index = id;
    return 0;
}

int churn_node_find(const churn_trace *t, const char *name, uint32_t *index)
{
    return strtab_find(t->names, name, index);
}

int churn_node_set(churn_trace *t, uint32_t node, const char *gpu_model, uint32_t gpu_count,
                   const char *country, mu_error *errp)
{
    if (node >= strtab_count(t->names))
        return errprintf(errp, "node %u does not exist", node);
    char cc[3] = "";
    if (country && *country) {
        if (strlen(country) != 2 || !isalpha((unsigned char)country[0]) ||
            !isalpha((unsigned char)country[1]))
            return errprintf(errp, "country \"%s\" is not an ISO 3166-1 alpha-2 code (e.g. DE)",
                             country);
        cc[0] = (char)toupper((unsigned char)country[0]);
        cc[1] = (char)toupper((unsigned char)country[1]);
    }
    node_attr a = t->attr[node];
    if (gpu_model && *gpu_model && strtab_intern(t->values, gpu_model, &a.model, NULL) < 0)
        return errprintf(errp, "out of memory (node attributes)");
    if (cc[0] && strtab_intern(t->values, cc, &a.country, NULL) < 0)
        return errprintf(errp, "out of memory (node attributes)");
    if (gpu_count)
        a.gpu_count = gpu_count;
    t->attr[node] = a;
    return 0;
}

int churn_node_get(const churn_trace *t, uint32_t i, churn_node *out)
{
    if (i >= strtab_count(t->names))
        return -1;
    const node_attr *a = &t->attr[i];
    out->name = strtab_at(t->names, i);
    out->gpu_model = a->model == NONE ? "" : strtab_at(t->values, a->model);
    out->gpu_count = a->gpu_count;
    out->country = a->country == NONE ? "" : strtab_at(t->values, a->country);
    return 0;
}

size_t churn_node_count(const churn_trace *t)
{
    return strtab_count(t->names);
}

bool churn_has_attributes(const churn_trace *t)
{
    size_t n = strtab_count(t->names);
    for (size_t i = 0; i < n; i++)
        if (t->attr[i].model != NONE || t->attr[i].country != NONE || t->attr[i].gpu_count)
            return true;
    return false;
}

int churn_append(churn_trace *t, double time_s, uint32_t node, churn_kind kind, mu_error *errp)
{
    if (!isfinite(time_s) || time_s < 0)
        return errprintf(errp, "event time %g is negative or not finite", time_s);
    if (node >= strtab_count(t->names))
        return errprintf(errp, "event for node %u, which does not exist", node);
    if ((unsigned)kind > CHURN_SPOOF)
        return errprintf(errp, "unknown event kind %d", (int)kind);
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        churn_event *ev = mu_realloc(t->ev, cap * sizeof(*ev));
        if (!ev)
            return errprintf(errp, "out of memory (%zu events)", t->n);
        t->ev = ev;
        t->cap = cap;
    }
    t->ev[t->n++] = (churn_event){time_s, node, (uint32_t)kind};
    return 0;
}

static inline bool before(const churn_event *a, const churn_event *b)
{
    return a->time_s < b->time_s || (a->time_s == b->time_s && a->node < b->node);
}

int churn_sort(churn_trace *t, mu_error *errp)
{
    size_t n = t->n;
    size_t i = 1;
    while (i < n && !before(&t->ev[i], &t->ev[i - 1]))
        i++;
    if (i >= n)
        return 0; /* already in order: the common case for readers */
    /* Bottom-up merge sort: stable, which qsort is not. */
    churn_event *tmp = mu_malloc(n * sizeof(*tmp));
    if (!tmp)
        return errprintf(errp, "out of memory sorting %zu events", n);
    churn_event *src = t->ev, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                dst[k++] = before(&src[b], &src[a]) ? src[b++] : src[a++];
            while (a < mid)
                dst[k++] = src[a++];
            while (b < hi)
                dst[k++] = src[b++];
        }
        churn_event *s = src;
        src = dst;
        dst = s;
    }
    if (src != t->ev)
        memcpy(t->ev, src, n * sizeof(*src));
    mu_free(tmp);
    return 0;
}

size_t churn_event_count(const churn_trace *t)
{
    return t->n;
}

const churn_event *churn_events(const churn_trace *t)
{
    return t->ev;
}

double churn_origin_unix(const churn_trace *t, bool *known)
{
    if (known)
        *known = t->has_origin;
    return t->has_origin ? t->origin_unix : 0;
}

void churn_set_origin_unix(churn_trace *t, double unix_s)
{
    t->origin_unix = unix_s;
    t->has_origin = true;
}

const char *churn_kind_name(churn_kind k)
{
    switch (k) {
    case CHURN_JOIN:
        return "join";
    case CHURN_LEAVE:
        return "leave";
    case CHURN_SPOOF:
        return "spoof";
    }
    return "?";
}

int churn_kind_parse(const char *s, churn_kind *out)
{
    static const churn_kind all[] = {CHURN_JOIN, CHURN_LEAVE, CHURN_SPOOF};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcasecmp(s, churn_kind_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}
