/* idtable.c - see idtable.h. */
#include "idtable.h"

#include <errno.h>
#include <stdint.h>

#include "alloc.h"
#include "idmap.h"

struct idtable {
    size_t record_size, id_offset;
    void **slots;
    size_t n, cap;
    idmap *by_id;
};

idtable *idtable_create(size_t record_size, size_t id_offset)
{
    idtable *t = mu_calloc(1, sizeof(*t));
    if (!t || !(t->by_id = idmap_create())) {
        mu_free(t);
        return NULL;
    }
    t->record_size = record_size;
    t->id_offset = id_offset;
    return t;
}

void idtable_destroy(idtable *t, void (*free_owned)(void *record))
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        if (free_owned)
            free_owned(t->slots[i]);
        mu_free(t->slots[i]);
    }
    mu_free(t->slots);
    idmap_destroy(t->by_id);
    mu_free(t);
}

static mu_id *id_of(const idtable *t, void *record)
{
    return (mu_id *)((char *)record + t->id_offset);
}

void *idtable_add(idtable *t, const mu_id *id)
{
    uint32_t slot;
    if (idmap_get(t->by_id, id->b, 16, &slot) == 0) {
        errno = EEXIST;
        return NULL;
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        void **ns = mu_realloc(t->slots, ncap * sizeof(*ns));
        if (!ns) {
            errno = ENOMEM;
            return NULL;
        }
        t->slots = ns;
        t->cap = ncap;
    }
    void *r = mu_calloc(1, t->record_size);
    if (!r || idmap_put(t->by_id, id->b, 16, (uint32_t)t->n) < 0) {
        mu_free(r);
        errno = ENOMEM;
        return NULL;
    }
    *id_of(t, r) = *id;
    t->slots[t->n++] = r;
    return r;
}

void *idtable_get(const idtable *t, const mu_id *id)
{
    uint32_t slot;
    return idmap_get(t->by_id, id->b, 16, &slot) == 0 ? t->slots[slot] : NULL;
}

static const mu_id *id_at(const void *set, size_t i)
{
    const idtable *t = set;
    return id_of(t, t->slots[i]);
}

void *idtable_find(const idtable *t, const char *prefix)
{
    mu_id id;
    if (id_parse(prefix, &id) == 0) {
        void *x = idtable_get(t, &id);
        if (!x)
            errno = ENOENT;
        return x;
    }
    size_t i = id_prefix_search(id_at, t, t->n, prefix);
    return i == SIZE_MAX ? NULL : t->slots[i];
}

void *idtable_at(const idtable *t, size_t slot)
{
    return slot < t->n ? t->slots[slot] : NULL;
}

size_t idtable_count(const idtable *t)
{
    return t->n;
}
