/* strtab.c - see strtab.h.
 *
 * Open addressing with linear probing over ids; the table is kept at most
 * half full. Nothing is ever removed, so no tombstones are needed.
 */
#include "strtab.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"

/* Strings are copied into blocks of this size (a longer string gets a block
 * of its own): one allocation per 64 KiB of names, not one per name. */
#define BLOCK_BYTES 65536

#define EMPTY UINT32_MAX

/* A slot keeps the hash beside the id, so a probe compares hashes without
 * touching the string arrays: one cache miss per lookup, not three. */
typedef struct slot {
    uint32_t id; /* EMPTY when free */
    uint32_t hash;
} slot;

typedef struct block {
    struct block *next;
    size_t used;
    size_t size;
    char data[];
} block;

struct strtab {
    const char **strs; /* by id; point into blocks */
    uint32_t *hashes;  /* by id, to rebuild the slots when they grow */
    size_t count;
    size_t cap; /* of strs and hashes */
    slot *slots;
    size_t nslots; /* power of two */
    block *blocks; /* newest first */
};

static uint32_t hash_str(const char *s)
{
    /* FNV-1a: short keys, no adversary (traces are local files). */
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

strtab *strtab_create(void)
{
    strtab *t = mu_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->nslots = 64;
    t->slots = mu_malloc(t->nslots * sizeof(*t->slots));
    if (!t->slots) {
        mu_free(t);
        return NULL;
    }
    memset(t->slots, 0xff, t->nslots * sizeof(*t->slots));
    return t;
}

void strtab_destroy(strtab *t)
{
    if (!t)
        return;
    for (block *b = t->blocks; b;) {
        block *n = b->next;
        mu_free(b);
        b = n;
    }
    mu_free(t->strs);
    mu_free(t->hashes);
    mu_free(t->slots);
    mu_free(t);
}

static size_t probe(const strtab *t, const char *s, uint32_t h, uint32_t *found)
{
    size_t mask = t->nslots - 1;
    size_t i = h & mask;
    for (;;) {
        uint32_t id = t->slots[i].id;
        if (id == EMPTY) {
            *found = EMPTY;
            return i;
        }
        if (t->slots[i].hash == h && strcmp(t->strs[id], s) == 0) {
            *found = id;
            return i;
        }
        i = (i + 1) & mask;
    }
}

int strtab_find(const strtab *t, const char *s, uint32_t *id)
{
    uint32_t found;
    probe(t, s, hash_str(s), &found);
    if (found == EMPTY) {
        errno = ENOENT;
        return -1;
    }
    *id = found;
    return 0;
}

/* Grow the slot array to twice its size; on failure nothing changes. */
static int grow_slots(strtab *t)
{
    size_t n = t->nslots * 2;
    slot *slots = mu_malloc(n * sizeof(*slots));
    if (!slots)
        return -1;
    memset(slots, 0xff, n * sizeof(*slots));
    for (size_t id = 0; id < t->count; id++) {
        size_t i = t->hashes[id] & (n - 1);
        while (slots[i].id != EMPTY)
            i = (i + 1) & (n - 1);
        slots[i] = (slot){(uint32_t)id, t->hashes[id]};
    }
    mu_free(t->slots);
    t->slots = slots;
    t->nslots = n;
    return 0;
}

int strtab_intern(strtab *t, const char *s, uint32_t *id, int *added)
{
    uint32_t h = hash_str(s);
    uint32_t found;
    probe(t, s, h, &found);
    if (found != EMPTY) {
        *id = found;
        if (added)
            *added = 0;
        return 0;
    }
    if (t->count >= UINT32_MAX - 1) {
        errno = EOVERFLOW;
        return -1;
    }
    /* Reserve everything first, so a failure leaves the table unchanged. */
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        const char **strs = mu_realloc(t->strs, cap * sizeof(*strs));
        if (!strs)
            goto nomem;
        t->strs = strs;
        uint32_t *hashes = mu_realloc(t->hashes, cap * sizeof(*hashes));
        if (!hashes)
            goto nomem;
        t->hashes = hashes;
        t->cap = cap;
    }
    if ((t->count + 1) * 2 > t->nslots && grow_slots(t) < 0)
        goto nomem;
    size_t len = strlen(s) + 1;
    block *b = t->blocks;
    if (!b || b->size - b->used < len) {
        size_t size = len > BLOCK_BYTES ? len : BLOCK_BYTES;
        block *nb = mu_malloc(sizeof(*nb) + size);
        if (!nb)
            goto nomem;
        nb->next = t->blocks;
        nb->used = 0;
        nb->size = size;
        t->blocks = nb;
        b = nb;
    }
    char *copy = b->data + b->used;
    memcpy(copy, s, len);
    b->used += len;
    size_t at = probe(t, s, h, &found);
    t->strs[t->count] = copy;
    t->hashes[t->count] = h;
    t->slots[at] = (slot){(uint32_t)t->count, h};
    *id = (uint32_t)t->count++;
    if (added)
        *added = 1;
    return 0;
nomem:
    errno = ENOMEM;
    return -1;
}

const char *strtab_at(const strtab *t, uint32_t id)
{
    return id < t->count ? t->strs[id] : NULL;
}

size_t strtab_count(const strtab *t)
{
    return t->count;
}
