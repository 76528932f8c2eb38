/* regions.h - the region table (data/regions.json): ISO 3166-1 alpha-2
 * country code to muster region. Loaded once by a shell; pure lookups after. */
#ifndef MUSTER_REGIONS_H
#define MUSTER_REGIONS_H

#include <stddef.h>

#include "error.h"

typedef struct region_table region_table;

region_table *regions_parse(const char *text, size_t len, const char *where, mu_error *errp);
region_table *regions_load_file(const char *path, mu_error *errp);
void regions_destroy(region_table *t);

/* Region name of a country code (case-insensitive), borrowed; NULL if unknown. */
const char *regions_of_country(const region_table *t, const char *code);
/* Index of the region of a country code (case-insensitive), or -1 if unknown. */
int regions_index_of_country(const region_table *t, const char *code);
/* Canonical (borrowed) region name if NAME is a region, else NULL. */
const char *regions_find(const region_table *t, const char *name);
/* Index of a region name (any case) in 0..regions_count-1, or -1. */
int regions_index(const region_table *t, const char *name);
size_t regions_count(const region_table *t);
const char *regions_name_at(const region_table *t, size_t i);
size_t regions_country_count(const region_table *t);

#endif
