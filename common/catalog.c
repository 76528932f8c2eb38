/* catalog.c - see catalog.h.
 *
 * The catalog has tens of models, and lookups happen at registration and
 * request parsing, never per heartbeat, so a linear scan over normalised
 * names is both the simplest and fast enough.
 */
#include "catalog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "strutil.h"

#define NAME_MAX_LEN 96

struct catalog {
    gpu_model *models;
    size_t n;
    /* normalised name of each model followed by its aliases, per model */
    char ***norm; /* norm[i][0] = name, norm[i][1..] = aliases */
    /* Normalised names to models, open addressing over model + 1 (0:
     * empty): every registration resolves its GPUs' claims, and a scan of
     * every name and alias was most of what that cost. */
    uint32_t *by_name;
    size_t by_name_cap; /* power of two */
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static const char *const class_names[] = {"datacenter", "consumer", "apple", "cpu"};

const char *gpu_class_name(gpu_class cls)
{
    return (unsigned)cls < 4 ? class_names[cls] : "unknown";
}

static void model_clear(gpu_model *m)
{
    mu_free(m->name);
    for (size_t i = 0; i < m->n_aliases; i++)
        mu_free(m->aliases[i]);
    mu_free(m->aliases);
    mu_free(m->vendor);
    mu_free(m->pci_device_ids);
}

void catalog_destroy(catalog *cat)
{
    if (!cat)
        return;
    for (size_t i = 0; i < cat->n; i++) {
        if (cat->norm && cat->norm[i]) {
            for (size_t k = 0; k <= cat->models[i].n_aliases; k++)
                mu_free(cat->norm[i][k]);
            mu_free(cat->norm[i]);
        }
        model_clear(&cat->models[i]);
    }
    mu_free(cat->norm);
    mu_free(cat->by_name);
    mu_free(cat->models);
    mu_free(cat);
}

static int parse_hex16(const char *s, uint16_t *out)
{
    if (!s || strncmp(s, "0x", 2) != 0 || !s[2])
        return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s + 2, &end, 16);
    if (errno || *end || v > 0xffff)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static int parse_model(const cJSON *obj, gpu_model *m, const char *where, mu_error *errp)
{
    static const char *const keys[] = {
        "name",      "aliases",     "vendor",      "pci_vendor_id", "pci_device_ids",
        "vram_gib",  "fp32_tflops", "fp16_tflops", "class",         "reward_multiplier",
        "min_stake", "source",      NULL};
    char w[160];
    const char *name = NULL, *vendor = NULL, *cls = NULL, *source = NULL;
    if (json_get_string(obj, "name", true, &name, where, errp) < 0)
        return -1;
    snprintf(w, sizeof(w), "%s: model \"%s\"", where, name);
    if (json_check_keys(obj, keys, w, errp) < 0 ||
        json_get_string(obj, "vendor", true, &vendor, w, errp) < 0 ||
        json_get_string(obj, "class", true, &cls, w, errp) < 0 ||
        json_get_string(obj, "source", true, &source, w, errp) < 0 ||
        json_get_number(obj, "vram_gib", true, 0, 1e6, &m->vram_gib, w, errp) < 0 ||
        json_get_number(obj, "fp32_tflops", true, 0.001, 1e6, &m->fp32_tflops, w, errp) < 0 ||
        json_get_number(obj, "fp16_tflops", true, 0.001, 1e6, &m->fp16_tflops, w, errp) < 0 ||
        json_get_number(obj, "reward_multiplier", true, 0, 1000, &m->reward_multiplier, w, errp) <
            0 ||
        json_get_u32(obj, "min_stake", true, 0, UINT32_MAX, &m->min_stake, w, errp) < 0)
        return -1;
    if (strlen(name) == 0 || strlen(name) >= NAME_MAX_LEN)
        return errprintf(errp, "%s: name must be 1..%d characters", w, NAME_MAX_LEN - 1);
    int c = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(cls, class_names[i]) == 0)
            c = i;
    if (c < 0)
        return errprintf(errp, "%s: class \"%s\" is not datacenter, consumer, apple or cpu", w,
                         cls);
    m->cls = (gpu_class)c;
    if (!(m->name = mu_strdup(name)) || !(m->vendor = mu_strdup(vendor)))
        return errprintf(errp, "%s: out of memory", w);

    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(obj, "pci_vendor_id");
    if (pv && !cJSON_IsNull(pv)) {
        if (!cJSON_IsString(pv) || parse_hex16(pv->valuestring, &m->pci_vendor_id) < 0)
            return errprintf(errp, "%s: pci_vendor_id must be \"0x....\" or null", w);
    }
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(obj, "pci_device_ids");
    if (ids) {
        if (!cJSON_IsArray(ids))
            return errprintf(errp, "%s: pci_device_ids must be an array", w);
        size_t n = (size_t)cJSON_GetArraySize(ids);
        if (n && !m->pci_vendor_id)
            return errprintf(errp, "%s: pci_device_ids given without pci_vendor_id", w);
        m->pci_device_ids = mu_calloc(n ? n : 1, sizeof(uint16_t));
        if (!m->pci_device_ids)
            return errprintf(errp, "%s: out of memory", w);
        const cJSON *it;
        cJSON_ArrayForEach (it, ids) {
            if (!cJSON_IsString(it) ||
                parse_hex16(it->valuestring, &m->pci_device_ids[m->n_pci_device_ids]) < 0)
                return errprintf(errp, "%s: PCI device ids must be \"0x....\"", w);
            m->n_pci_device_ids++;
        }
    }
    const cJSON *al = cJSON_GetObjectItemCaseSensitive(obj, "aliases");
    if (al) {
        if (!cJSON_IsArray(al))
            return errprintf(errp, "%s: aliases must be an array of strings", w);
        size_t n = (size_t)cJSON_GetArraySize(al);
        m->aliases = mu_calloc(n ? n : 1, sizeof(char *));
        if (!m->aliases)
            return errprintf(errp, "%s: out of memory", w);
        const cJSON *it;
        cJSON_ArrayForEach (it, al) {
            if (!cJSON_IsString(it) || !*it->valuestring || strlen(it->valuestring) >= NAME_MAX_LEN)
                return errprintf(errp, "%s: aliases must be non-empty strings", w);
            if (!(m->aliases[m->n_aliases] = mu_strdup(it->valuestring)))
                return errprintf(errp, "%s: out of memory", w);
            m->n_aliases++;
        }
    }
    return 0;
}

/* Build the normalised names and reject duplicates across models. */
static int index_names(catalog *cat, const char *where, mu_error *errp)
{
    cat->norm = mu_calloc(cat->n ? cat->n : 1, sizeof(char **));
    if (!cat->norm)
        return errprintf(errp, "%s: out of memory", where);
    for (size_t i = 0; i < cat->n; i++) {
        gpu_model *m = &cat->models[i];
        cat->norm[i] = mu_calloc(m->n_aliases + 1, sizeof(char *));
        if (!cat->norm[i])
            return errprintf(errp, "%s: out of memory", where);
        for (size_t k = 0; k <= m->n_aliases; k++) {
            const char *s = k == 0 ? m->name : m->aliases[k - 1];
            char buf[NAME_MAX_LEN];
            if (str_norm(s, buf, sizeof(buf)) < 0 || !buf[0])
                return errprintf(errp, "%s: bad model name \"%s\"", where, s);
            if (!(cat->norm[i][k] = mu_strdup(buf)))
                return errprintf(errp, "%s: out of memory", where);
            for (size_t j = 0; j <= i; j++) {
                size_t kmax = j == i ? k : cat->models[j].n_aliases + 1;
                for (size_t q = 0; q < kmax; q++) {
                    if (strcmp(cat->norm[j][q], buf) == 0 && j != i)
                        return errprintf(errp, "%s: \"%s\" names both %s and %s", where, s,
                                         cat->models[j].name, m->name);
                }
            }
        }
        for (size_t p = 0; p < m->n_pci_device_ids; p++) {
            for (size_t j = 0; j < i; j++) {
                const gpu_model *o = &cat->models[j];
                for (size_t q = 0; q < o->n_pci_device_ids; q++)
                    if (o->pci_vendor_id == m->pci_vendor_id &&
                        o->pci_device_ids[q] == m->pci_device_ids[p])
                        return errprintf(errp, "%s: PCI id %04x:%04x claimed by %s and %s", where,
                                         m->pci_vendor_id, m->pci_device_ids[p], o->name, m->name);
            }
        }
    }
    size_t names = 0;
    for (size_t i = 0; i < cat->n; i++)
        names += cat->models[i].n_aliases + 1;
    cat->by_name_cap = 16;
    while (cat->by_name_cap < names * 2)
        cat->by_name_cap *= 2;
    if (!(cat->by_name = mu_calloc(cat->by_name_cap, sizeof(*cat->by_name))))
        return errprintf(errp, "%s: out of memory", where);
    for (size_t i = 0; i < cat->n; i++) {
        for (size_t k = 0; k <= cat->models[i].n_aliases; k++) {
            size_t at = (size_t)name_hash(cat->norm[i][k]) & (cat->by_name_cap - 1);
            while (cat->by_name[at])
                at = (at + 1) & (cat->by_name_cap - 1);
            cat->by_name[at] = (uint32_t)i + 1;
        }
    }
    return 0;
}

catalog *catalog_parse(const char *text, size_t len, const char *where, mu_error *errp)
{
    static const char *const keys[] = {"version", "comment", "sources", "models", NULL};
    catalog *cat = NULL;
    cJSON *root = json_parse(text, len, where, errp);
    if (!root)
        return NULL;
    uint32_t version = 0;
    if (json_check_keys(root, keys, where, errp) < 0 ||
        json_get_u32(root, "version", true, 0, UINT32_MAX, &version, where, errp) < 0)
        goto error;
    if (version != 1) {
        errprintf(errp, "%s: catalog version %u is not supported (expected 1)", where, version);
        goto error;
    }
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(root, "models");
    if (!cJSON_IsArray(models) || cJSON_GetArraySize(models) == 0) {
        errprintf(errp, "%s: \"models\" must be a non-empty array", where);
        goto error;
    }
    const cJSON *sources = cJSON_GetObjectItemCaseSensitive(root, "sources");
    if (sources && !cJSON_IsObject(sources)) {
        errprintf(errp, "%s: \"sources\" must be an object", where);
        goto error;
    }
    if (!(cat = mu_calloc(1, sizeof(*cat)))) {
        errprintf(errp, "%s: out of memory", where);
        goto error;
    }
    size_t n = (size_t)cJSON_GetArraySize(models);
    if (!(cat->models = mu_calloc(n, sizeof(gpu_model)))) {
        errprintf(errp, "%s: out of memory", where);
        goto error;
    }
    const cJSON *it;
    cJSON_ArrayForEach (it, models) {
        if (!cJSON_IsObject(it)) {
            errprintf(errp, "%s: model %zu is not an object", where, cat->n + 1);
            goto error;
        }
        /* Count it before parsing so a half-parsed model is freed too. */
        gpu_model *m = &cat->models[cat->n++];
        if (parse_model(it, m, where, errp) < 0)
            goto error;
        const char *src = cJSON_GetObjectItemCaseSensitive(it, "source")->valuestring;
        if (sources && !cJSON_GetObjectItemCaseSensitive(sources, src)) {
            errprintf(errp, "%s: model \"%s\" cites unknown source \"%s\"", where, m->name, src);
            goto error;
        }
    }
    if (index_names(cat, where, errp) < 0)
        goto error;
    cJSON_Delete(root);
    return cat;
error:
    catalog_destroy(cat);
    cJSON_Delete(root);
    return NULL;
}

catalog *catalog_load_file(const char *path, mu_error *errp)
{
    size_t len;
    char *text = fs_read_file(path, 4u << 20, &len, errp);
    if (!text)
        return NULL;
    catalog *cat = catalog_parse(text, len, path, errp);
    mu_free(text);
    return cat;
}

size_t catalog_count(const catalog *cat)
{
    return cat->n;
}

const gpu_model *catalog_at(const catalog *cat, size_t i)
{
    return i < cat->n ? &cat->models[i] : NULL;
}

int catalog_index(const catalog *cat, const gpu_model *m)
{
    if (m < cat->models || m >= cat->models + cat->n)
        return -1;
    return (int)(m - cat->models);
}

const gpu_model *catalog_find(const catalog *cat, const char *name)
{
    char buf[NAME_MAX_LEN];
    if (!name || str_norm(name, buf, sizeof(buf)) < 0 || !buf[0])
        return NULL;
    if (!cat->by_name_cap)
        return NULL;
    size_t mask = cat->by_name_cap - 1;
    for (size_t at = (size_t)name_hash(buf) & mask; cat->by_name[at]; at = (at + 1) & mask) {
        size_t i = cat->by_name[at] - 1;
        for (size_t k = 0; k <= cat->models[i].n_aliases; k++)
            if (strcmp(cat->norm[i][k], buf) == 0)
                return &cat->models[i];
    }
    return NULL;
}

const gpu_model *catalog_find_pci(const catalog *cat, uint16_t vendor, uint16_t device)
{
    for (size_t i = 0; i < cat->n; i++) {
        const gpu_model *m = &cat->models[i];
        if (m->pci_vendor_id != vendor)
            continue;
        for (size_t k = 0; k < m->n_pci_device_ids; k++)
            if (m->pci_device_ids[k] == device)
                return m;
    }
    return NULL;
}

void catalog_hint(const catalog *cat, const char *name, char *out, size_t n)
{
    const gpu_model *sug[3];
    size_t k = catalog_suggest(cat, name, sug, 3);
    if (n)
        out[0] = '\0';
    for (size_t i = 0; i < k; i++) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s\"%s\"", i ? ", " : " (did you mean ", sug[i]->name);
    }
    if (k)
        strncat(out, "?)", n - strlen(out) - 1);
}

size_t catalog_suggest(const catalog *cat, const char *name, const gpu_model **out, size_t max)
{
    char buf[NAME_MAX_LEN];
    if (!name || max == 0 || str_norm(name, buf, sizeof(buf)) < 0 || !buf[0])
        return 0;
    /* Score each model by its best name: edit distance, with a substring
     * match counted as distance 1 so "4090" finds "RTX 4090". */
    enum { CAP = 4 };
    size_t count = 0;
    for (unsigned want = 0; want < CAP && count < max; want++) {
        for (size_t i = 0; i < cat->n && count < max; i++) {
            unsigned best = CAP;
            for (size_t k = 0; k <= cat->models[i].n_aliases; k++) {
                unsigned d = str_edit_distance(cat->norm[i][k], buf, CAP);
                if (d > 1 && (strstr(cat->norm[i][k], buf) || strstr(buf, cat->norm[i][k])))
                    d = 1;
                if (d < best)
                    best = d;
            }
            if (best == want)
                out[count++] = &cat->models[i];
        }
    }
    return count;
}
