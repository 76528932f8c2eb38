/* churn_read.c - the churn trace readers (native CSV, Failure Trace
 * Archive) and the CSV writer; formats are described in churn_io.h.
 *
 * Readers build a fresh trace and destroy it on the first error, so the
 * caller sees a whole trace or none. Rules that would let a typo pass
 * silently (an unknown event name, a row with a field too many, rows out of
 * time order) are errors naming FILE:LINE.
 */
#include "churn_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "strutil.h"

#define CSV_MAX_GPUS 1024

static const char *const csv_columns[] = {"time_s",    "node",      "event",
                                          "gpu_model", "gpu_count", "country"};
#define CSV_BASIC_COLUMNS 3
#define CSV_ALL_COLUMNS   6

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Blank lines and '#' comments carry nothing. */
static bool skippable(const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    return !*line || *line == '#';
}

static int check_csv_header(char **f, size_t nf, const char *path, size_t line, mu_error *errp)
{
    bool ok = nf == CSV_BASIC_COLUMNS || nf == CSV_ALL_COLUMNS;
    for (size_t i = 0; ok && i < nf; i++)
        ok = strcmp(f[i], csv_columns[i]) == 0;
    if (ok)
        return 0;
    const char *hint = "";
    if (nf >= 1 && strncmp(f[0], "event_id", 8) == 0)
        hint = " (this looks like a Failure Trace Archive event_trace: read it as fta)";
    return errprintf(errp,
                     "%s:%zu: header must be \"time_s,node,event\" or "
                     "\"time_s,node,event,gpu_model,gpu_count,country\"%s",
                     path, line, hint);
}

/* A node's attribute stated on two rows must agree. */
static int check_same(const char *what, const char *known, const char *given, const char *node,
                      const char *path, size_t line, mu_error *errp)
{
    if (!*given || !*known || strcasecmp(known, given) == 0)
        return 0;
    return errprintf(errp, "%s:%zu: node \"%s\": %s \"%s\" differs from \"%s\" given earlier", path,
                     line, node, what, given, known);
}

churn_trace *churn_read_csv(const char *path, churn_read_stats *stats, mu_error *errp)
{
    line_cursor c;
    char *buf = text_load(path, &c, errp);
    if (!buf)
        return NULL;
    churn_trace *t = churn_create();
    if (!t) {
        errprintf(errp, "%s: out of memory", path);
        goto error;
    }
    size_t ncols = 0, rows = 0;
    double prev = 0;
    char *line;
    while ((line = lines_next(&c))) {
        if (skippable(line))
            continue;
        if (strchr(line, '"')) {
            errprintf(errp, "%s:%zu: quoted fields are not supported", path, c.line);
            goto error;
        }
        char *f[CSV_ALL_COLUMNS];
        size_t nf = split_char(line, ',', f, CSV_ALL_COLUMNS);
        for (size_t i = 0; i < nf && i < CSV_ALL_COLUMNS; i++)
            f[i] = trim(f[i]);
        if (!ncols) {
            if (check_csv_header(f, nf, path, c.line, errp) < 0)
                goto error;
            ncols = nf;
            continue;
        }
        if (nf != ncols) {
            errprintf(errp, "%s:%zu: expected %zu fields (as the header), found %zu", path, c.line,
                      ncols, nf);
            goto error;
        }
        double time_s;
        if (str_to_double(f[0], &time_s) < 0) {
            errprintf(errp, "%s:%zu: time_s \"%s\" is not a number", path, c.line, f[0]);
            goto error;
        }
        if (time_s < 0) {
            errprintf(errp, "%s:%zu: time_s %s is negative", path, c.line, f[0]);
            goto error;
        }
        if (rows && time_s < prev) {
            errprintf(errp,
                      "%s:%zu: time_s %s is before the previous row's %g (rows must be in "
                      "time order)",
                      path, c.line, f[0], prev);
            goto error;
        }
        churn_kind kind;
        if (churn_kind_parse(f[2], &kind) < 0) {
            errprintf(errp, "%s:%zu: event \"%s\" is not join, leave or spoof", path, c.line, f[2]);
            goto error;
        }
        uint32_t node;
        if (!*f[1]) {
            errprintf(errp, "%s:%zu: node name is empty", path, c.line);
            goto error;
        }
        if (churn_node_intern(t, f[1], &node, errp) < 0) {
            errprefix(errp, "%s:%zu", path, c.line);
            goto error;
        }
        if (ncols == CSV_ALL_COLUMNS) {
            uint64_t count = 0;
            if (*f[4] && str_to_u64(f[4], 1, CSV_MAX_GPUS, &count) < 0) {
                errprintf(errp, "%s:%zu: gpu_count \"%s\" is not a whole number in 1..%d", path,
                          c.line, f[4], CSV_MAX_GPUS);
                goto error;
            }
            churn_node known;
            churn_node_get(t, node, &known);
            char cnt[24] = "", kcnt[24] = "";
            if (count)
                snprintf(cnt, sizeof(cnt), "%u", (unsigned)count);
            if (known.gpu_count)
                snprintf(kcnt, sizeof(kcnt), "%u", known.gpu_count);
            if (check_same("gpu_model", known.gpu_model, f[3], f[1], path, c.line, errp) < 0 ||
                check_same("gpu_count", kcnt, cnt, f[1], path, c.line, errp) < 0 ||
                check_same("country", known.country, f[5], f[1], path, c.line, errp) < 0)
                goto error;
            if (churn_node_set(t, node, f[3], (uint32_t)count, f[5], errp) < 0) {
                errprefix(errp, "%s:%zu", path, c.line);
                goto error;
            }
        }
        if (churn_append(t, time_s, node, kind, errp) < 0) {
            errprefix(errp, "%s:%zu", path, c.line);
            goto error;
        }
        prev = time_s;
        rows++;
    }
    if (!ncols) {
        errprintf(errp, "%s: empty file (expected the header line time_s,node,event[,...])", path);
        goto error;
    }
    if (!rows) {
        errprintf(errp, "%s: no events after the header", path);
        goto error;
    }
    /* Rows are in time order already; this orders the nodes within one
     * instant, keeping each node's own order. */
    if (churn_sort(t, errp) < 0) {
        errprefix(errp, "%s", path);
        goto error;
    }
    if (stats)
        *stats = (churn_read_stats){.records = rows};
    mu_free(buf);
    return t;
error:
    churn_destroy(t);
    mu_free(buf);
    return NULL;
}

/* --- Failure Trace Archive ----------------------------------------------- */

static const char *const fta_columns[] = {
    "event_id",   "component_id",     "node_id",         "platform_id",      "node_name",
    "event_type", "event_start_time", "event_stop_time", "event_end_reason",
};
#define FTA_COLUMNS 9

typedef struct fta_row {
    uint32_t node_id;
    uint32_t available; /* event_type */
    double start, stop; /* UNIX seconds */
    size_t line;
} fta_row;

static int fta_row_cmp(const void *pa, const void *pb)
{
    const fta_row *a = pa, *b = pb;
    if (a->node_id != b->node_id)
        return a->node_id < b->node_id ? -1 : 1;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return a->line < b->line ? -1 : a->line > b->line;
}

static int parse_fta_line(char **f, const char *path, size_t line, fta_row *r, mu_error *errp)
{
    int64_t v;
    static const int int_cols[] = {0, 1, 3};
    for (size_t i = 0; i < sizeof(int_cols) / sizeof(int_cols[0]); i++) {
        int col = int_cols[i];
        if (text_to_i64(f[col], INT64_MIN, INT64_MAX, &v) < 0)
            return errprintf(errp, "%s:%zu: %s \"%s\" is not an integer", path, line,
                             fta_columns[col], f[col]);
    }
    if (text_to_i64(f[2], 0, UINT32_MAX - 1, &v) < 0)
        return errprintf(errp, "%s:%zu: node_id \"%s\" is not an integer in 0..%u", path, line,
                         f[2], UINT32_MAX - 1);
    r->node_id = (uint32_t)v;
    if (strcmp(f[5], "0") != 0 && strcmp(f[5], "1") != 0)
        return errprintf(errp, "%s:%zu: event_type \"%s\" is not 0 (unavailable) or 1 (available)",
                         path, line, f[5]);
    r->available = f[5][0] == '1';
    double *times[2] = {&r->start, &r->stop};
    for (int i = 0; i < 2; i++) {
        const char *s = f[6 + i];
        if (str_to_double(s, times[i]) < 0)
            return errprintf(errp, "%s:%zu: %s \"%s\" is not a number of UNIX seconds", path, line,
                             fta_columns[6 + i], s);
        if (*times[i] < 0)
            return errprintf(errp, "%s:%zu: %s %s is negative", path, line, fta_columns[6 + i], s);
    }
    if (r->stop < r->start)
        return errprintf(errp, "%s:%zu: event_stop_time %s is before event_start_time %s", path,
                         line, f[7], f[6]);
    r->line = line;
    return 0;
}

static int check_fta_header(char **f, size_t nf, const char *path, size_t line, mu_error *errp)
{
    bool ok = nf == FTA_COLUMNS;
    for (size_t i = 0; ok && i < nf; i++)
        ok = strcmp(f[i], fta_columns[i]) == 0;
    if (ok)
        return 0;
    return errprintf(errp,
                     "%s:%zu: header must be \"event_id component_id node_id platform_id "
                     "node_name event_type event_start_time event_stop_time event_end_reason\"",
                     path, line);
}

churn_trace *churn_read_fta(const char *path, churn_read_stats *stats, mu_error *errp)
{
    line_cursor c;
    char *buf = text_load(path, &c, errp);
    if (!buf)
        return NULL;
    churn_trace *t = NULL;
    fta_row *rows = NULL;
    size_t n = 0, cap = 0;
    bool first = true;
    char *line;
    while ((line = lines_next(&c))) {
        if (skippable(line))
            continue;
        char *f[FTA_COLUMNS];
        size_t nf = split_blanks(line, f, FTA_COLUMNS);
        if (first && nf && strcmp(f[0], "event_id") == 0) {
            first = false;
            if (check_fta_header(f, nf, path, c.line, errp) < 0)
                goto error;
            continue;
        }
        first = false;
        if (nf != FTA_COLUMNS) {
            errprintf(errp, "%s:%zu: expected %d whitespace-separated fields, found %zu", path,
                      c.line, FTA_COLUMNS, nf);
            goto error;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            fta_row *r = mu_realloc(rows, ncap * sizeof(*r));
            if (!r) {
                errprintf(errp, "%s: out of memory", path);
                goto error;
            }
            rows = r;
            cap = ncap;
        }
        if (parse_fta_line(f, path, c.line, &rows[n], errp) < 0)
            goto error;
        n++;
    }
    if (!n) {
        errprintf(errp, "%s: no intervals (empty file or header only)", path);
        goto error;
    }
    qsort(rows, n, sizeof(*rows), fta_row_cmp);
    double origin = rows[0].start;
    for (size_t i = 1; i < n; i++) {
        if (rows[i].start < origin)
            origin = rows[i].start;
        const fta_row *p = &rows[i - 1], *r = &rows[i];
        if (p->node_id == r->node_id && r->start < p->stop) {
            /* Report the later line of the two, whichever order the file has. */
            const fta_row *late = r->line > p->line ? r : p, *early = late == r ? p : r;
            errprintf(errp,
                      "%s:%zu: node_id %u: this interval overlaps the one on line %zu (%.0f..%.0f "
                      "and %.0f..%.0f)",
                      path, late->line, r->node_id, early->line, p->start, p->stop, r->start,
                      r->stop);
            goto error;
        }
    }
    t = churn_create();
    if (!t) {
        errprintf(errp, "%s: out of memory", path);
        goto error;
    }
    churn_set_origin_unix(t, origin);
    churn_read_stats st = {.records = n};
    uint32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        const fta_row *r = &rows[i];
        if (i == 0 || r->node_id != rows[i - 1].node_id) {
            char name[16];
            snprintf(name, sizeof(name), "%u", r->node_id);
            if (churn_node_intern(t, name, &node, errp) < 0)
                goto error_at;
        }
        churn_kind k = r->available ? CHURN_JOIN : CHURN_LEAVE;
        if (churn_append(t, r->start - origin, node, k, errp) < 0)
            goto error_at;
        st.zero_length += r->start == r->stop;
        const fta_row *next = i + 1 < n && rows[i + 1].node_id == r->node_id ? &rows[i + 1] : NULL;
        if (!next || next->start != r->stop) {
            churn_kind opposite = r->available ? CHURN_LEAVE : CHURN_JOIN;
            if (churn_append(t, r->stop - origin, node, opposite, errp) < 0)
                goto error_at;
            st.gaps += next != NULL;
        }
        continue;
    error_at:
        errprefix(errp, "%s:%zu", path, r->line);
        goto error;
    }
    if (churn_sort(t, errp) < 0) {
        errprefix(errp, "%s", path);
        goto error;
    }
    if (stats)
        *stats = st;
    mu_free(rows);
    mu_free(buf);
    return t;
error:
    churn_destroy(t);
    mu_free(rows);
    mu_free(buf);
    return NULL;
}

/* --- writer ---------------------------------------------------------------- */

void churn_format_time(double t, char *out, size_t n)
{
    snprintf(out, n, "%.3f", t);
    char *dot = strchr(out, '.');
    if (!dot)
        return;
    char *e = out + strlen(out);
    while (e > dot + 1 && e[-1] == '0')
        *--e = '\0';
    if (e == dot + 1)
        *dot = '\0';
}

/* A value the CSV reader would read back differently. */
static bool unwritable(const char *s)
{
    size_t n = strlen(s);
    return strpbrk(s, ",\"\r\n") ||
           (n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'));
}

int churn_write_csv(const churn_trace *t, sbuf *out, mu_error *errp)
{
    size_t nn = churn_node_count(t);
    bool attrs = churn_has_attributes(t);
    for (uint32_t i = 0; i < nn; i++) {
        churn_node nd;
        churn_node_get(t, i, &nd);
        if (unwritable(nd.name) || unwritable(nd.gpu_model))
            return errprintf(errp,
                             "node \"%s\": a name or GPU model holding ',', '\"', a line "
                             "break or outer blanks cannot be written as CSV",
                             nd.name);
    }
    bool *seen = NULL;
    if (attrs && !(seen = mu_calloc(nn ? nn : 1, sizeof(*seen))))
        return errprintf(errp, "out of memory");
    sbuf_puts(out,
              attrs ? "time_s,node,event,gpu_model,gpu_count,country\n" : "time_s,node,event\n");
    const churn_event *ev = churn_events(t);
    size_t ne = churn_event_count(t);
    for (size_t i = 0; i < ne; i++) {
        char ts[40];
        churn_format_time(ev[i].time_s, ts, sizeof(ts));
        churn_node nd;
        churn_node_get(t, ev[i].node, &nd);
        sbuf_printf(out, "%s,%s,%s", ts, nd.name, churn_kind_name((churn_kind)ev[i].kind));
        if (attrs) {
            if (!seen[ev[i].node]) {
                seen[ev[i].node] = true;
                if (nd.gpu_count)
                    sbuf_printf(out, ",%s,%u,%s", nd.gpu_model, nd.gpu_count, nd.country);
                else
                    sbuf_printf(out, ",%s,,%s", nd.gpu_model, nd.country);
            } else {
                sbuf_puts(out, ",,,");
            }
        }
        sbuf_puts(out, "\n");
    }
    mu_free(seen);
    if (sbuf_failed(out))
        return errprintf(errp, "out of memory writing %zu events", ne);
    return 0;
}
