/* reservation.c - see reservation.h. */
#include "reservation.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "alloc.h"
#include "idtable.h"

struct resv_table {
    idtable *recs;
};

static const char *const state_names[] = {"pending", "active", "released", "expired"};

const char *resv_state_name(resv_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "unknown";
}

resv_table *resv_table_create(void)
{
    resv_table *t = mu_calloc(1, sizeof(*t));
    if (!t || !(t->recs = idtable_create(sizeof(reservation), offsetof(reservation, id)))) {
        mu_free(t);
        return NULL;
    }
    return t;
}

static void free_members(void *r)
{
    mu_free(((reservation *)r)->members);
}

void resv_table_destroy(resv_table *t)
{
    if (!t)
        return;
    idtable_destroy(t->recs, free_members);
    mu_free(t);
}

reservation *resv_table_add(resv_table *t, const mu_id *id)
{
    reservation *r = idtable_add(t->recs, id);
    if (r)
        r->slot = (uint32_t)(idtable_count(t->recs) - 1);
    return r;
}

reservation *resv_table_get(const resv_table *t, const mu_id *id)
{
    return idtable_get(t->recs, id);
}

reservation *resv_table_find(const resv_table *t, const char *prefix)
{
    return idtable_find(t->recs, prefix);
}

size_t resv_table_count(const resv_table *t)
{
    return idtable_count(t->recs);
}

reservation *resv_table_at(const resv_table *t, size_t slot)
{
    return idtable_at(t->recs, slot);
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
