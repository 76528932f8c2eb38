/* strtab.h - interned strings: each distinct string stored once, with a
 * dense id (0, 1, 2, ... in order of first appearance).
 *
 * Node names of a churn trace (a million of them) and the few distinct GPU
 * models, countries and regions of traces are interned here, so records
 * hold one pointer instead of a copy. Strings live in fixed blocks that
 * never move: a returned pointer stays valid until strtab_destroy.
 */
#ifndef MUSTER_SIM_STRTAB_H
#define MUSTER_SIM_STRTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct strtab strtab;

/* NULL on allocation failure. */
strtab *strtab_create(void);
/* Frees every string; accepts NULL. */
void strtab_destroy(strtab *t);

/* The id of S, adding a copy of it when absent (*added says which, when
 * not NULL). Returns 0, or -1 with errno ENOMEM (table unchanged) or
 * EOVERFLOW (more than UINT32_MAX - 1 strings). */
int strtab_intern(strtab *t, const char *s, uint32_t *id, int *added);
/* The id of S: 0, or -1 (errno ENOENT) when absent. */
int strtab_find(const strtab *t, const char *s, uint32_t *id);
/* The string with this id (borrowed), or NULL when out of range. */
const char *strtab_at(const strtab *t, uint32_t id);
size_t strtab_count(const strtab *t);

#endif
