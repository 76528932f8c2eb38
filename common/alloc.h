/* alloc.h - the one allocator hook.
 *
 * Every allocation in muster's own code, and protobuf-c's and cJSON's through
 * their hooks, goes through mu_malloc & co, so a test can make the Nth
 * allocation fail and check that the code under test fails cleanly (the
 * SQLite test_malloc idea). Production never changes the hook.
 */
#ifndef MUSTER_ALLOC_H
#define MUSTER_ALLOC_H

#include <stddef.h>

typedef struct mu_allocator {
    void *(*malloc_fn)(size_t size);
    void *(*realloc_fn)(void *ptr, size_t size);
    void (*free_fn)(void *ptr);
} mu_allocator;

/* Install an allocator (NULL restores libc). Call only before other threads
 * exist; tests use it, daemons do not. Also routes cJSON through it. */
void mu_alloc_set(const mu_allocator *a);

void *mu_malloc(size_t size);
void *mu_calloc(size_t n, size_t size);
void *mu_realloc(void *ptr, size_t size);
void mu_free(void *ptr);
/* Returns a copy of s (NULL when s is NULL or on allocation failure). */
char *mu_strdup(const char *s);
/* Grow the array *p of *cap elements of `size` bytes to hold at least
 * `want` (doubling; new elements zeroed). 0, or -1 with *p unchanged. */
int mu_grow(void **p, size_t *cap, size_t want, size_t size);

/* A ProtobufCAllocator (as void * to keep protobuf-c out of this header)
 * that routes through the hook. */
void *mu_protobuf_allocator(void);

#endif
