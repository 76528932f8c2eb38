/* jsonutil.h - the project's one wrapper around cJSON for reading files.
 *
 * Config files and data tables are strict: an unknown key is an error that
 * names the key (a typo in a config must not be silently ignored), a parse
 * error names the file and line.
 */
#ifndef MUSTER_JSONUTIL_H
#define MUSTER_JSONUTIL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* Parse text (len bytes; need not be NUL-terminated). WHERE names the source
 * in errors ("config.json"). Returns a tree the caller frees with
 * cJSON_Delete, or NULL with "WHERE:LINE: ..." in errp. */
cJSON *json_parse(const char *text, size_t len, const char *where, mu_error *errp);

/* Read and parse a file of at most max_bytes. Same ownership as json_parse. */
cJSON *json_load_file(const char *path, size_t max_bytes, mu_error *errp);

/* Fail (naming the key and WHERE) if obj has a key not in the NULL-terminated
 * list ALLOWED, or if obj is not an object. */
int json_check_keys(const cJSON *obj, const char *const *allowed, const char *where,
                    mu_error *errp);

/* Typed getters. A missing key leaves *out unchanged and returns 0 unless
 * REQUIRED; a key of the wrong type or out of range is an error naming it.
 * Strings are borrowed from the tree. */
int json_get_string(const cJSON *obj, const char *key, bool required, const char **out,
                    const char *where, mu_error *errp);
int json_get_number(const cJSON *obj, const char *key, bool required, double min, double max,
                    double *out, const char *where, mu_error *errp);
int json_get_u32(const cJSON *obj, const char *key, bool required, uint32_t min, uint32_t max,
                 uint32_t *out, const char *where, mu_error *errp);
int json_get_bool(const cJSON *obj, const char *key, bool required, bool *out, const char *where,
                  mu_error *errp);

/* A string key copied into a fixed buffer of a config struct. */
typedef struct json_string_field {
    const char *key;
    char *dst;
    size_t size;   /* of dst */
    bool nonempty; /* "" is an error */
} json_string_field;

/* Copy each present key of FIELDS into its buffer. Fails, naming the key,
 * on a non-string, a value that does not fit, or an empty one where that is
 * not allowed; buffers already copied are then partly written, so callers
 * parse into a copy of their struct and keep it only on success. */
int json_get_strings(const cJSON *obj, const json_string_field *fields, size_t n, const char *where,
                     mu_error *errp);

#endif
