/* idmap.c - see idmap.h. */
#include "idmap.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "ids.h"

typedef struct entry {
    uint8_t len; /* 0: empty slot */
    uint8_t key[IDMAP_KEY_MAX];
    uint32_t value;
} entry;

struct idmap {
    entry *slots;
    size_t cap; /* power of two */
    size_t count;
};

/* Ids (16 bytes) through id_hash, other keys (routing ids libzmq assigns,
 * bucket keys) FNV-1a with a final mix. A peer that crafted colliding ids
 * could slow lookups, never break them; a keyed hash is the answer once
 * registration is authenticated and that becomes worth the cost. */
static uint64_t hash(const uint8_t *k, size_t len)
{
    if (len == 16) {
        /* Cluster and reservation ids: two words mixed, not sixteen bytes. */
        mu_id id;
        memcpy(id.b, k, 16);
        return id_hash(&id);
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= k[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

idmap *idmap_create(void)
{
    idmap *m = mu_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->cap = 16;
    if (!(m->slots = mu_calloc(m->cap, sizeof(entry)))) {
        mu_free(m);
        return NULL;
    }
    return m;
}

void idmap_destroy(idmap *m)
{
    if (!m)
        return;
    mu_free(m->slots);
    mu_free(m);
}

static size_t find(const idmap *m, const uint8_t *key, size_t len, int *found)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)hash(key, len) & mask;
    for (;;) {
        const entry *e = &m->slots[i];
        if (e->len == 0) {
            *found = 0;
            return i;
        }
        if (e->len == len && memcmp(e->key, key, len) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int grow(idmap *m)
{
    size_t ncap = m->cap * 2;
    entry *ns = mu_calloc(ncap, sizeof(entry));
    if (!ns)
        return -1;
    entry *old = m->slots;
    size_t ocap = m->cap;
    m->slots = ns;
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].len) {
            int found;
            size_t j = find(m, old[i].key, old[i].len, &found);
            m->slots[j] = old[i];
        }
    }
    mu_free(old);
    return 0;
}

int idmap_put(idmap *m, const void *key, size_t len, uint32_t value)
{
    if (len == 0 || len > IDMAP_KEY_MAX) {
        errno = EINVAL;
        return -1;
    }
    int found;
    size_t i = find(m, key, len, &found);
    if (found) {
        m->slots[i].value = value;
        return 0;
    }
    if ((m->count + 1) * 2 > m->cap) {
        if (grow(m) < 0) {
            errno = ENOMEM;
            return -1;
        }
        i = find(m, key, len, &found);
    }
    entry *e = &m->slots[i];
    e->len = (uint8_t)len;
    memcpy(e->key, key, len);
    e->value = value;
    m->count++;
    return 0;
}

int idmap_get(const idmap *m, const void *key, size_t len, uint32_t *value)
{
    if (len == 0 || len > IDMAP_KEY_MAX) {
        errno = ENOENT;
        return -1;
    }
    int found;
    size_t i = find(m, key, len, &found);
    if (!found) {
        errno = ENOENT;
        return -1;
    }
    *value = m->slots[i].value;
    return 0;
}

int idmap_remove(idmap *m, const void *key, size_t len)
{
    if (len == 0 || len > IDMAP_KEY_MAX) {
        errno = ENOENT;
        return -1;
    }
    int found;
    size_t i = find(m, key, len, &found);
    if (!found) {
        errno = ENOENT;
        return -1;
    }
    /* Backward-shift: move later entries of the probe run into the hole so
     * lookups never need tombstones. */
    size_t mask = m->cap - 1;
    size_t hole = i;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        entry *e = &m->slots[j];
        if (e->len == 0)
            break;
        size_t home = (size_t)hash(e->key, e->len) & mask;
        /* e may move into the hole if its home is not in (hole, j]. */
        int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            m->slots[hole] = *e;
            hole = j;
        }
    }
    m->slots[hole].len = 0;
    m->count--;
    return 0;
}

size_t idmap_count(const idmap *m)
{
    return m->count;
}

size_t idmap_bytes(const idmap *m)
{
    return sizeof(*m) + m->cap * sizeof(entry);
}
