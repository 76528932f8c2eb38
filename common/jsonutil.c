/* jsonutil.c - see jsonutil.h. */
#include "jsonutil.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "fsutil.h"

cJSON *json_parse(const char *text, size_t len, const char *where, mu_error *errp)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        if (!end || end < text || end > text + len) {
            errprintf(errp, "%s: not valid JSON (or out of memory)", where);
            return NULL;
        }
        unsigned line = 1;
        for (const char *p = text; p < end; p++)
            line += *p == '\n';
        errprintf(errp, "%s:%u: not valid JSON near '%.20s'", where, line, end);
        return NULL;
    }
    /* Trailing garbage after the value is as bad as a syntax error. */
    while (end < text + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (end < text + len && *end != '\0') {
        unsigned line = 1;
        for (const char *p = text; p < end; p++)
            line += *p == '\n';
        cJSON_Delete(root);
        errprintf(errp, "%s:%u: unexpected text after the JSON value", where, line);
        return NULL;
    }
    return root;
}

cJSON *json_load_file(const char *path, size_t max_bytes, mu_error *errp)
{
    size_t len;
    char *text = fs_read_file(path, max_bytes, &len, errp);
    if (!text)
        return NULL;
    cJSON *root = json_parse(text, len, path, errp);
    mu_free(text);
    return root;
}

int json_check_keys(const cJSON *obj, const char *const *allowed, const char *where, mu_error *errp)
{
    if (!cJSON_IsObject(obj))
        return errprintf(errp, "%s: expected a JSON object", where);
    for (const cJSON *it = obj->child; it; it = it->next) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++) {
            if (strcmp(*a, it->string) == 0) {
                ok = true;
                break;
            }
        }
        if (!ok)
            return errprintf(errp, "%s: unknown key \"%s\"", where, it->string);
    }
    return 0;
}

static const cJSON *get(const cJSON *obj, const char *key, bool required, const char *where,
                        mu_error *errp, int *rc)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *rc = 0;
    if (!v && required)
        *rc = errprintf(errp, "%s: missing required key \"%s\"", where, key);
    return v;
}

int json_get_string(const cJSON *obj, const char *key, bool required, const char **out,
                    const char *where, mu_error *errp)
{
    int rc;
    const cJSON *v = get(obj, key, required, where, errp, &rc);
    if (!v)
        return rc;
    if (!cJSON_IsString(v))
        return errprintf(errp, "%s: \"%s\" must be a string", where, key);
    *out = v->valuestring;
    return 0;
}

int json_get_strings(const cJSON *obj, const json_string_field *fields, size_t n, const char *where,
                     mu_error *errp)
{
    for (size_t i = 0; i < n; i++) {
        const json_string_field *f = &fields[i];
        const char *s = NULL;
        if (json_get_string(obj, f->key, false, &s, where, errp) < 0)
            return -1;
        if (!s)
            continue;
        if (f->nonempty && !*s)
            return errprintf(errp, "%s: \"%s\" must not be empty", where, f->key);
        if (strlen(s) >= f->size)
            return errprintf(errp, "%s: \"%s\" is too long (at most %zu characters)", where, f->key,
                             f->size - 1);
        memcpy(f->dst, s, strlen(s) + 1);
    }
    return 0;
}

int json_get_number(const cJSON *obj, const char *key, bool required, double min, double max,
                    double *out, const char *where, mu_error *errp)
{
    int rc;
    const cJSON *v = get(obj, key, required, where, errp, &rc);
    if (!v)
        return rc;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return errprintf(errp, "%s: \"%s\" must be a number", where, key);
    if (v->valuedouble < min || v->valuedouble > max)
        return errprintf(errp, "%s: \"%s\" must be between %g and %g", where, key, min, max);
    *out = v->valuedouble;
    return 0;
}

int json_get_u32(const cJSON *obj, const char *key, bool required, uint32_t min, uint32_t max,
                 uint32_t *out, const char *where, mu_error *errp)
{
    double d = 0;
    int rc;
    const cJSON *v = get(obj, key, required, where, errp, &rc);
    if (!v)
        return rc;
    if (json_get_number(obj, key, true, min, max, &d, where, errp) < 0)
        return -1;
    if (d != floor(d))
        return errprintf(errp, "%s: \"%s\" must be a whole number", where, key);
    *out = (uint32_t)d;
    return 0;
}

int json_get_bool(const cJSON *obj, const char *key, bool required, bool *out, const char *where,
                  mu_error *errp)
{
    int rc;
    const cJSON *v = get(obj, key, required, where, errp, &rc);
    if (!v)
        return rc;
    if (!cJSON_IsBool(v))
        return errprintf(errp, "%s: \"%s\" must be true or false", where, key);
    *out = cJSON_IsTrue(v);
    return 0;
}
