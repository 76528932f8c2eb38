/* idtable.h - records the core keeps for good, by id and by slot: clusters
 * and reservations (ended ones stay, for `show`).
 *
 * The table allocates each record (zeroed, its id set) and never moves or
 * frees one before idtable_destroy, so pointers to records stay valid; slot
 * i is the i-th record added.
 */
#ifndef MUSTER_IDTABLE_H
#define MUSTER_IDTABLE_H

#include <stddef.h>

#include "ids.h"

typedef struct idtable idtable;

/* Records of record_size bytes whose mu_id sits at id_offset. NULL when
 * memory runs out. */
idtable *idtable_create(size_t record_size, size_t id_offset);
/* Calls free_owned (if not NULL) on each record for what it owns, then
 * frees the records and the table. */
void idtable_destroy(idtable *t, void (*free_owned)(void *record));

/* A new record for id in slot idtable_count() - 1 after the call. NULL with
 * errno EEXIST (id known) or ENOMEM; the table is unchanged then. */
void *idtable_add(idtable *t, const mu_id *id);
void *idtable_get(const idtable *t, const mu_id *id);
/* By a whole id or a prefix of at least 4 characters; NULL with errno
 * ENOENT, EEXIST (ambiguous) or EINVAL (see id_prefix_search). */
void *idtable_find(const idtable *t, const char *prefix);
void *idtable_at(const idtable *t, size_t slot);
size_t idtable_count(const idtable *t);

#endif
