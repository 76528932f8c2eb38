/* strutil.c - see strutil.h. */
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t str_copy(char *dst, const char *src, size_t n)
{
    size_t len = strlen(src);
    if (n) {
        size_t k = len < n - 1 ? len : n - 1;
        memcpy(dst, src, k);
        dst[k] = '\0';
    }
    return len;
}

int str_norm(const char *in, char *out, size_t n)
{
    size_t k = 0;
    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        if (c == ' ' || c == '-' || c == '_' || c == '\t')
            continue;
        if (k + 1 >= n)
            return -1;
        /* ASCII only, as tolower in the C locale, without its call per
         * byte: every registration normalises its model's name. */
        out[k++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    if (n == 0)
        return -1;
    out[k] = '\0';
    return 0;
}

unsigned str_edit_distance(const char *a, const char *b, unsigned cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 127 || lb > 127)
        return cap;
    if ((la > lb ? la - lb : lb - la) >= cap)
        return cap;
    unsigned row[128];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        unsigned best = row[0];
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned cost =
                tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            unsigned v = diag + cost;
            if (up + 1 < v)
                v = up + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            row[j] = v;
            diag = up;
            if (v < best)
                best = v;
        }
        if (best >= cap)
            return cap;
    }
    return row[lb] < cap ? row[lb] : cap;
}

int str_to_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int str_to_double(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

void str_duration(uint64_t ms, char *out, size_t n)
{
    if (ms < 1000)
        snprintf(out, n, "%llums", (unsigned long long)ms);
    else if (ms < 120000)
        snprintf(out, n, "%llus", (unsigned long long)(ms / 1000));
    else if (ms < 7200000)
        snprintf(out, n, "%llum", (unsigned long long)(ms / 60000));
    else if (ms < 172800000)
        snprintf(out, n, "%lluh", (unsigned long long)(ms / 3600000));
    else
        snprintf(out, n, "%llud", (unsigned long long)(ms / 86400000));
}

bool str_is_empty(const char *s)
{
    return !s || !*s;
}

void str_sanitize(char *dst, size_t n, const char *src)
{
    if (!n)
        return;
    size_t k = 0;
    for (; src && *src && k + 1 < n; src++) {
        unsigned char c = (unsigned char)*src;
        dst[k++] = (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? '?' : (char)c;
    }
    dst[k] = '\0';
}
