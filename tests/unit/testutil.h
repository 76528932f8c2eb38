/* testutil.h - shared by the unit tests: the real data tables, and an
 * allocator that fails on demand (the SQLite test_malloc idea). */
#ifndef MUSTER_TESTUTIL_H
#define MUSTER_TESTUTIL_H

#include <stddef.h>

#include "catalog.h"
#include "regions.h"

/* The project's own data/gpus.json and data/regions.json; fail the test if
 * they do not load. */
catalog *test_catalog(void);
region_table *test_regions(void);

/* Make allocation number n (1-based, counted from this call) and every one
 * after it fail; n == 0 restores the normal allocator. */
void test_fail_alloc_after(size_t n);
/* Allocations made since the last test_fail_alloc_after. */
size_t test_alloc_count(void);

#endif
