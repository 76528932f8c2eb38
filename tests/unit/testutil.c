/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "alloc.h"

catalog *test_catalog(void)
{
    mu_error err;
    catalog *c = catalog_load_file(MUSTER_SOURCE_DATA_DIR "/gpus.json", &err);
    if (!c)
        fail_msg("catalog: %s", err.text);
    return c;
}

region_table *test_regions(void)
{
    mu_error err;
    region_table *t = regions_load_file(MUSTER_SOURCE_DATA_DIR "/regions.json", &err);
    if (!t)
        fail_msg("regions: %s", err.text);
    return t;
}

static size_t alloc_count;
static size_t fail_at;

static void *failing_malloc(size_t n)
{
    if (++alloc_count >= fail_at)
        return NULL;
    return malloc(n);
}

static void *failing_realloc(void *p, size_t n)
{
    if (++alloc_count >= fail_at)
        return NULL;
    return realloc(p, n);
}

void test_fail_alloc_after(size_t n)
{
    static const mu_allocator failing = {failing_malloc, failing_realloc, free};
    alloc_count = 0;
    fail_at = n;
    mu_alloc_set(n ? &failing : NULL);
}

size_t test_alloc_count(void)
{
    return alloc_count;
}
