/* alloc.c - see alloc.h. */
#include "alloc.h"

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static mu_allocator current = {malloc, realloc, free};

void mu_alloc_set(const mu_allocator *a)
{
    static const mu_allocator libc = {malloc, realloc, free};
    current = a ? *a : libc;
    cJSON_Hooks hooks = {current.malloc_fn, current.free_fn};
    cJSON_InitHooks(&hooks);
}

void *mu_malloc(size_t size)
{
    return current.malloc_fn(size ? size : 1);
}

void *mu_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = mu_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *mu_realloc(void *ptr, size_t size)
{
    return current.realloc_fn(ptr, size ? size : 1);
}

void mu_free(void *ptr)
{
    if (ptr)
        current.free_fn(ptr);
}

char *mu_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = mu_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

int mu_grow(void **p, size_t *cap, size_t want, size_t size)
{
    if (want <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < want)
        ncap *= 2;
    if (ncap > SIZE_MAX / size)
        return -1;
    void *np = mu_realloc(*p, ncap * size);
    if (!np)
        return -1;
    memset((char *)np + *cap * size, 0, (ncap - *cap) * size);
    *p = np;
    *cap = ncap;
    return 0;
}

static void *pb_alloc(void *data, size_t size)
{
    (void)data;
    return mu_malloc(size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    mu_free(ptr);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

void *mu_protobuf_allocator(void)
{
    return &pb_allocator;
}
