/* fsutil.h - file helpers for the shells (never used by the core). */
#ifndef MUSTER_FSUTIL_H
#define MUSTER_FSUTIL_H

#include <stddef.h>

#include "error.h"

/* Read a whole file of at most max_bytes. Returns a NUL-terminated buffer
 * the caller frees with mu_free (*len, when LEN is not NULL, excludes the NUL), or NULL. */
char *fs_read_file(const char *path, size_t max_bytes, size_t *len, mu_error *errp);

/* Replace path atomically: write PATH.tmp, fsync it, rename it over PATH,
 * fsync the directory, so a crash leaves either the old or the new file. */
int fs_write_atomic(const char *path, const void *data, size_t len, mu_error *errp);

/* mkdir -p with the given mode for created directories. */
int fs_mkdir_p(const char *path, unsigned mode, mu_error *errp);

/* Create DIR if needed and take an exclusive lock on DIR/lock (holding the
 * pid), kept until the process exits: one process per state directory.
 * Returns the lock's file descriptor, or -1 with a reason naming WHO holds
 * it (e.g. "another muster-agent (pid 42) uses state directory X: HINT"). */
int fs_lock_dir(const char *dir, const char *who, const char *hint, mu_error *errp);

#endif
