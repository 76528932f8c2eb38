/* strutil.h - small string helpers shared by every program. */
#ifndef MUSTER_STRUTIL_H
#define MUSTER_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy src into dst (size n), always NUL-terminated. Returns strlen(src),
 * so truncation shows as a result >= n. */
size_t str_copy(char *dst, const char *src, size_t n);

/* Normalise a name for lookups: lowercase, with spaces, '-' and '_' removed
 * ("GeForce RTX-4090" -> "geforcertx4090"). Returns 0, or -1 if it does not
 * fit in n. */
int str_norm(const char *in, char *out, size_t n);

/* Levenshtein distance, capped: returns cap when the distance is >= cap
 * (keeps "did you mean" suggestions cheap). Strings longer than 127 bytes
 * return cap. */
unsigned str_edit_distance(const char *a, const char *b, unsigned cap);

/* Parse a whole string as an unsigned integer in [min, max]. Returns 0/-1. */
int str_to_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Parse a whole string as a finite double. Returns 0/-1. */
int str_to_double(const char *s, double *out);

/* Human-friendly duration of ms milliseconds: "850ms", "12s", "5m", "3h", "2d". */
void str_duration(uint64_t ms, char *out, size_t n);

bool str_is_empty(const char *s);

/* Copy src into dst (size n) with every byte that is not printable ASCII,
 * and every '"' and '\\', replaced by '?': safe inside a quoted log value. */
void str_sanitize(char *dst, size_t n, const char *src);

#endif
