/* textio.h - the small text tools every trace reader and writer shares.
 *
 * Readers load a whole file (fs_read_file), then walk it line by line,
 * splitting fields in place: no copy per line, and every error can name
 * FILE:LINE. Writers append to an sbuf, a growing buffer whose failure is
 * sticky, so a writer checks once at the end instead of after every field.
 */
#ifndef MUSTER_SIM_TEXTIO_H
#define MUSTER_SIM_TEXTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Traces can be large (a year of churn on a million workers is a few GB of
 * CSV); this is a sanity bound, not a tuning knob. */
#define TEXT_MAX_BYTES ((size_t)8 << 30)

/* A cursor over a NUL-terminated text buffer that it modifies in place. */
typedef struct line_cursor {
    char *p;     /* next unread byte */
    char *end;   /* the terminating NUL */
    size_t line; /* number of the line last returned (1-based) */
} line_cursor;

/* Load PATH whole for line-by-line reading. Refuses a file holding a NUL
 * byte (not text). Returns the buffer (caller frees with mu_free) and sets
 * up *c, or NULL with "PATH: ..." in errp. */
char *text_load(const char *path, line_cursor *c, mu_error *errp);

/* Start a cursor over buf (len bytes, buf[len] == '\0'). */
void lines_init(line_cursor *c, char *buf, size_t len);
/* The next line, NUL-terminated in place, without its "\n" or "\r\n";
 * NULL at the end of the buffer. */
char *lines_next(line_cursor *c);

/* Split s in place at each SEP. Fills up to max field pointers and returns
 * the number of fields found (which may exceed max: the caller reports it). */
size_t split_char(char *s, char sep, char **fields, size_t max);
/* Split s in place at runs of spaces and tabs, ignoring leading and
 * trailing blanks. Same return as split_char. */
size_t split_blanks(char *s, char **fields, size_t max);

/* True when s holds only blanks (or nothing). */
bool text_is_blank(const char *s);

/* Parse a whole field as a signed integer in [min, max]. Returns 0/-1. */
int text_to_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* A growing output buffer. After a failed append every later append is a
 * no-op and sbuf_failed() is true: check once, at the end. */
typedef struct sbuf {
    char *data; /* NUL-terminated while not failed; NULL before the first append */
    size_t len;
    size_t cap;
    bool failed;
} sbuf;

void sbuf_init(sbuf *b);
void sbuf_free(sbuf *b);
void sbuf_append(sbuf *b, const char *s, size_t n);
void sbuf_puts(sbuf *b, const char *s);
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool sbuf_failed(const sbuf *b);

/* Write the buffer to PATH atomically (fs_write_atomic), or to stdout when
 * PATH is NULL or "-". Fails (naming PATH) if the buffer failed earlier. */
int sbuf_write_out(const sbuf *b, const char *path, mu_error *errp);

#endif
