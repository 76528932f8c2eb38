/* regions.c - see regions.h. Countries are kept sorted by code, for
 * listing, and indexed by their two letters, for lookups: every worker's
 * registration names its country. */
#include "regions.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "strutil.h"

typedef struct country {
    char code[3];
    unsigned region;
} country;

#define CODES (26 * 26)

struct region_table {
    char **regions;
    size_t n_regions;
    country *countries;
    size_t n_countries;
    int16_t by_code[CODES]; /* region index by code_slot; -1: unknown */
};

/* Where a two-letter code (either case) sits in by_code; -1 if it is not
 * two ASCII letters. */
static int code_slot(const char *code)
{
    if (!code || !code[0] || !code[1] || code[2])
        return -1;
    unsigned a = ((unsigned char)code[0] | 0x20u) - 'a', b = ((unsigned char)code[1] | 0x20u) - 'a';
    return a < 26 && b < 26 ? (int)(a * 26 + b) : -1;
}

void regions_destroy(region_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_regions; i++)
        mu_free(t->regions[i]);
    mu_free(t->regions);
    mu_free(t->countries);
    mu_free(t);
}

static int cmp_country(const void *a, const void *b)
{
    return strcmp(((const country *)a)->code, ((const country *)b)->code);
}

static int region_index(const region_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_regions; i++)
        if (strcasecmp(t->regions[i], name) == 0) /* lookups ignore case too */
            return (int)i;
    return -1;
}

region_table *regions_parse(const char *text, size_t len, const char *where, mu_error *errp)
{
    static const char *const keys[] = {"version", "comment",   "source",
                                       "regions", "countries", NULL};
    static const char *const rkeys[] = {"name", "description", NULL};
    static const char *const ckeys[] = {"code", "name", "region", NULL};
    region_table *t = NULL;
    cJSON *root = json_parse(text, len, where, errp);
    if (!root)
        return NULL;
    uint32_t version;
    if (json_check_keys(root, keys, where, errp) < 0 ||
        json_get_u32(root, "version", true, 1, 1, &version, where, errp) < 0)
        goto error;
    const cJSON *regions = cJSON_GetObjectItemCaseSensitive(root, "regions");
    const cJSON *countries = cJSON_GetObjectItemCaseSensitive(root, "countries");
    if (!cJSON_IsArray(regions) || !cJSON_GetArraySize(regions) || !cJSON_IsArray(countries)) {
        errprintf(errp, "%s: \"regions\" and \"countries\" must be arrays", where);
        goto error;
    }
    if (!(t = mu_calloc(1, sizeof(*t))) ||
        !(t->regions = mu_calloc((size_t)cJSON_GetArraySize(regions), sizeof(char *))) ||
        !(t->countries = mu_calloc((size_t)cJSON_GetArraySize(countries) + 1, sizeof(country)))) {
        errprintf(errp, "%s: out of memory", where);
        goto error;
    }
    const cJSON *it;
    cJSON_ArrayForEach (it, regions) {
        const char *name = NULL;
        if (json_check_keys(it, rkeys, where, errp) < 0 ||
            json_get_string(it, "name", true, &name, where, errp) < 0)
            goto error;
        if (!*name || strlen(name) > 32 || region_index(t, name) >= 0) {
            errprintf(errp, "%s: region \"%s\" is empty, too long or listed twice", where, name);
            goto error;
        }
        if (!(t->regions[t->n_regions] = mu_strdup(name))) {
            errprintf(errp, "%s: out of memory", where);
            goto error;
        }
        t->n_regions++;
    }
    cJSON_ArrayForEach (it, countries) {
        const char *code = NULL, *region = NULL;
        if (json_check_keys(it, ckeys, where, errp) < 0 ||
            json_get_string(it, "code", true, &code, where, errp) < 0 ||
            json_get_string(it, "region", true, &region, where, errp) < 0)
            goto error;
        if (strlen(code) != 2 || !isupper((unsigned char)code[0]) ||
            !isupper((unsigned char)code[1])) {
            errprintf(errp, "%s: country code \"%s\" is not two capital letters", where, code);
            goto error;
        }
        int r = region_index(t, region);
        if (r < 0) {
            errprintf(errp, "%s: country %s names unknown region \"%s\"", where, code, region);
            goto error;
        }
        country *c = &t->countries[t->n_countries++];
        memcpy(c->code, code, 3);
        c->region = (unsigned)r;
    }
    qsort(t->countries, t->n_countries, sizeof(country), cmp_country);
    for (size_t i = 1; i < t->n_countries; i++) {
        if (strcmp(t->countries[i - 1].code, t->countries[i].code) == 0) {
            errprintf(errp, "%s: country %s listed twice", where, t->countries[i].code);
            goto error;
        }
    }
    for (size_t i = 0; i < CODES; i++)
        t->by_code[i] = -1;
    for (size_t i = 0; i < t->n_countries; i++)
        t->by_code[code_slot(t->countries[i].code)] = (int16_t)t->countries[i].region;
    cJSON_Delete(root);
    return t;
error:
    regions_destroy(t);
    cJSON_Delete(root);
    return NULL;
}

region_table *regions_load_file(const char *path, mu_error *errp)
{
    size_t len;
    char *text = fs_read_file(path, 1u << 20, &len, errp);
    if (!text)
        return NULL;
    region_table *t = regions_parse(text, len, path, errp);
    mu_free(text);
    return t;
}

const char *regions_of_country(const region_table *t, const char *code)
{
    int r = regions_index_of_country(t, code);
    return r >= 0 ? t->regions[r] : NULL;
}

int regions_index_of_country(const region_table *t, const char *code)
{
    int k = code_slot(code);
    return k >= 0 ? t->by_code[k] : -1;
}

const char *regions_find(const region_table *t, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < t->n_regions; i++)
        if (strcasecmp(t->regions[i], name) == 0)
            return t->regions[i];
    return NULL;
}

int regions_index(const region_table *t, const char *name)
{
    /* Most callers hold a name this table gave them. */
    for (size_t i = 0; name && i < t->n_regions; i++)
        if (t->regions[i] == name)
            return (int)i;
    return name ? region_index(t, name) : -1;
}

size_t regions_count(const region_table *t)
{
    return t->n_regions;
}

const char *regions_name_at(const region_table *t, size_t i)
{
    return i < t->n_regions ? t->regions[i] : NULL;
}

size_t regions_country_count(const region_table *t)
{
    return t->n_countries;
}
