/* ids.h - worker and request ids: UUIDs, the project's one wrapper of
 * libuuid. Binary inside the broker (16 bytes), text on the wire and in
 * files (36 characters, lowercase). */
#ifndef MUSTER_IDS_H
#define MUSTER_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ID_TEXT_LEN 37 /* 36 characters + NUL */

typedef struct mu_id {
    uint8_t b[16];
} mu_id;

/* A fresh random UUID (shells only: it reads the system's randomness). */
void id_generate(mu_id *id);
/* Parse the 36-character text form. Returns 0 or -1. */
int id_parse(const char *text, mu_id *id);
void id_format(const mu_id *id, char out[ID_TEXT_LEN]);
bool id_equal(const mu_id *a, const mu_id *b);
bool id_is_null(const mu_id *id);
/* A well-mixed 64-bit hash of an id, for hash tables. Ids come from
 * agents: a peer that made up colliding ids could slow lookups, never break
 * them. */
uint64_t id_hash(const mu_id *id);

/* The one item i in [0, n) of set whose id (id_at(set, i)) starts with
 * prefix, case-insensitively: its index; SIZE_MAX with errno EINVAL (fewer
 * than 4 characters), EEXIST (more than one) or ENOENT. A scan: prefixes
 * are people typing ids. */
size_t id_prefix_search(const mu_id *(*id_at)(const void *set, size_t i), const void *set, size_t n,
                        const char *prefix);

#endif
