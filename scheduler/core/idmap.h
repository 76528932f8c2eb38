/* idmap.h - a hash map from short byte strings (<= IDMAP_KEY_MAX bytes) to
 * 32-bit values: ZeroMQ routing ids (5 bytes) to registry slots, cluster and
 * reservation ids (16 bytes) to table slots, index bucket keys, verifier
 * groups. (The registry maps worker ids itself: registry.c.)
 *
 * Open addressing with linear probing and backward-shift deletion: one flat
 * array, no per-entry allocation, about 80 bytes per key at the maximum
 * load factor of 1/2.
 */
#ifndef MUSTER_IDMAP_H
#define MUSTER_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#define IDMAP_KEY_MAX 32

typedef struct idmap idmap;

/* NULL on allocation failure. */
idmap *idmap_create(void);
void idmap_destroy(idmap *m);

/* Insert or replace. Returns 0, or -1 with errno ENOMEM (map unchanged) or
 * EINVAL (key longer than IDMAP_KEY_MAX or empty). */
int idmap_put(idmap *m, const void *key, size_t len, uint32_t value);
/* Returns 0 and *value when found, -1 (errno ENOENT) when not. */
int idmap_get(const idmap *m, const void *key, size_t len, uint32_t *value);
/* Returns 0 when removed, -1 (ENOENT) when absent. */
int idmap_remove(idmap *m, const void *key, size_t len);
size_t idmap_count(const idmap *m);
/* Bytes of memory the map holds (for the memory-per-worker figure). */
size_t idmap_bytes(const idmap *m);

#endif
