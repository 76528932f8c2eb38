/* reservation.c - see reservation.h. */
#include "reservation.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "alloc.h"
#include "idmap.h"

struct resv_table {
    reservation **slots;
    size_t n, cap;
    idmap *by_id;
};

static const char *const state_names[] = {"pending", "active", "released", "expired"};

const char *resv_state_name(resv_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "unknown";
}

resv_table *resv_table_create(void)
{
    resv_table *t = mu_calloc(1, sizeof(*t));
    if (!t || !(t->by_id = idmap_create())) {
        mu_free(t);
        return NULL;
    }
    return t;
}

void resv_table_destroy(resv_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        mu_free(t->slots[i]->members);
        mu_free(t->slots[i]);
    }
    mu_free(t->slots);
    idmap_destroy(t->by_id);
    mu_free(t);
}

reservation *resv_table_add(resv_table *t, const mu_id *id)
{
    uint32_t slot;
    if (idmap_get(t->by_id, id->b, 16, &slot) == 0) {
        errno = EEXIST;
        return NULL;
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        reservation **ns = mu_realloc(t->slots, ncap * sizeof(*ns));
        if (!ns) {
            errno = ENOMEM;
            return NULL;
        }
        t->slots = ns;
        t->cap = ncap;
    }
    reservation *r = mu_calloc(1, sizeof(*r));
    if (!r || idmap_put(t->by_id, id->b, 16, (uint32_t)t->n) < 0) {
        mu_free(r);
        errno = ENOMEM;
        return NULL;
    }
    r->id = *id;
    r->slot = (uint32_t)t->n;
    t->slots[t->n++] = r;
    return r;
}

reservation *resv_table_get(const resv_table *t, const mu_id *id)
{
    uint32_t slot;
    return idmap_get(t->by_id, id->b, 16, &slot) == 0 ? t->slots[slot] : NULL;
}

static const mu_id *id_at(const void *t, size_t i)
{
    return &((const resv_table *)t)->slots[i]->id;
}

reservation *resv_table_find(const resv_table *t, const char *prefix)
{
    mu_id id;
    if (id_parse(prefix, &id) == 0) {
        reservation *x = resv_table_get(t, &id);
        if (!x)
            errno = ENOENT;
        return x;
    }
    size_t i = id_prefix_search(id_at, t, t->n, prefix);
    return i == SIZE_MAX ? NULL : t->slots[i];
}

size_t resv_table_count(const resv_table *t)
{
    return t->n;
}

reservation *resv_table_at(const resv_table *t, size_t slot)
{
    return slot < t->n ? t->slots[slot] : NULL;
}

bool resv_active(const reservation *r)
{
    return r->state == RESV_ACTIVE;
}

bool resv_excluded(const reservation *r, uint32_t worker_slot)
{
    for (uint32_t i = 0; i < r->n_excluded && i < CLUSTER_EXCLUDED; i++)
        if (r->excluded[i] == worker_slot)
            return true;
    return false;
}

void resv_exclude(reservation *r, uint32_t worker_slot)
{
    if (resv_excluded(r, worker_slot))
        return;
    r->excluded[r->n_excluded % CLUSTER_EXCLUDED] = worker_slot;
    r->n_excluded++;
}

long resv_member_index(const reservation *r, uint32_t worker_slot)
{
    for (uint32_t i = 0; i < r->n_members; i++)
        if (r->members[i] == worker_slot)
            return (long)i;
    return -1;
}
