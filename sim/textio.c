/* textio.c - see textio.h. */
#include "textio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fsutil.h"

char *text_load(const char *path, line_cursor *c, mu_error *errp)
{
    size_t len;
    char *buf = fs_read_file(path, TEXT_MAX_BYTES, &len, errp);
    if (!buf)
        return NULL;
    const char *nul = memchr(buf, '\0', len);
    if (nul) {
        size_t line = 1;
        for (const char *q = buf; q < nul; q++)
            line += *q == '\n';
        mu_free(buf);
        return errprintf(errp, "%s:%zu: NUL byte: not a text file", path, line), NULL;
    }
    lines_init(c, buf, len);
    return buf;
}

void lines_init(line_cursor *c, char *buf, size_t len)
{
    c->p = buf;
    c->end = buf + len;
    c->line = 0;
}

char *lines_next(line_cursor *c)
{
    if (c->p >= c->end)
        return NULL;
    char *s = c->p;
    char *nl = memchr(s, '\n', (size_t)(c->end - s));
    char *e = nl ? nl : c->end;
    c->p = nl ? nl + 1 : c->end;
    if (e > s && e[-1] == '\r')
        e--;
    *e = '\0';
    c->line++;
    return s;
}

size_t split_char(char *s, char sep, char **fields, size_t max)
{
    size_t n = 0;
    for (;;) {
        if (n < max)
            fields[n] = s;
        n++;
        char *q = strchr(s, sep);
        if (!q)
            break;
        *q = '\0';
        s = q + 1;
    }
    return n;
}

size_t split_blanks(char *s, char **fields, size_t max)
{
    size_t n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        if (n < max)
            fields[n] = s;
        n++;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (!*s)
            break;
        *s++ = '\0';
    }
    return n;
}

bool text_is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t')
            return false;
    return true;
}

int text_to_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!*s || *s == ' ' || *s == '\t')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

void sbuf_init(sbuf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

void sbuf_free(sbuf *b)
{
    mu_free(b->data);
    sbuf_init(b);
}

static bool reserve(sbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *d = mu_realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void sbuf_append(sbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sbuf_puts(sbuf *b, const char *s)
{
    sbuf_append(b, s, strlen(s));
}

void sbuf_printf(sbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        sbuf_append(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

bool sbuf_failed(const sbuf *b)
{
    return b->failed;
}

int sbuf_write_out(const sbuf *b, const char *path, mu_error *errp)
{
    const char *name = path && strcmp(path, "-") != 0 ? path : "stdout";
    if (b->failed)
        return errprintf(errp, "%s: out of memory while formatting the output", name);
    if (name == path)
        return fs_write_atomic(path, b->data ? b->data : "", b->len, errp);
    if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len)
        return errprintf(errp, "stdout: %s", strerror(errno));
    if (fflush(stdout) != 0)
        return errprintf(errp, "stdout: %s", strerror(errno));
    return 0;
}
