/* mix.c - see mix.h. */
#include "mix.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "strutil.h"

typedef struct mix_entry {
    char *name;
    double weight;
    double cum; /* sum of weights up to and including this entry */
    double extra;
    bool has_extra;
} mix_entry;

struct mix {
    mix_entry *e;
    size_t n;
};

void mix_destroy(mix *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        mu_free(m->e[i].name);
    mu_free(m->e);
    mu_free(m);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

mix *mix_parse(const char *spec, bool allow_extra, const char *what, mu_error *errp)
{
    char *buf = mu_strdup(spec);
    mix *m = mu_calloc(1, sizeof(*m));
    size_t cap = 1;
    for (const char *p = spec; *p; p++)
        cap += *p == ',';
    if (m)
        m->e = mu_calloc(cap, sizeof(*m->e));
    if (!buf || !m || !m->e) {
        errprintf(errp, "%s: out of memory", what);
        goto error;
    }
    if (strspn(spec, " \t,") == strlen(spec))
        goto empty;
    char *save = NULL;
    double total = 0;
    for (char *ent = strtok_r(buf, ",", &save); ent; ent = strtok_r(NULL, ",", &save)) {
        char *f[4];
        size_t nf = 0;
        for (char *s = ent;;) {
            char *c = strchr(s, ':');
            if (nf < 4)
                f[nf] = s;
            nf++;
            if (!c)
                break;
            *c = '\0';
            s = c + 1;
        }
        char *name = trim(f[0]);
        if (nf < 2 || nf > (allow_extra ? 3u : 2u)) {
            errprintf(errp, "%s: entry \"%s\" is not NAME:WEIGHT%s", what, name,
                      allow_extra ? "[:UTC_OFFSET_H]" : "");
            goto error;
        }
        if (!*name) {
            errprintf(errp, "%s: an entry has an empty name", what);
            goto error;
        }
        mix_entry *e = &m->e[m->n];
        if (str_to_double(trim(f[1]), &e->weight) < 0 || !(e->weight > 0)) {
            errprintf(errp, "%s: weight of \"%s\" must be a number > 0", what, name);
            goto error;
        }
        if (nf == 3) {
            if (str_to_double(trim(f[2]), &e->extra) < 0) {
                errprintf(errp, "%s: third field of \"%s\" must be a number", what, name);
                goto error;
            }
            e->has_extra = true;
        }
        for (size_t i = 0; i < m->n; i++) {
            if (strcmp(m->e[i].name, name) == 0) {
                errprintf(errp, "%s: \"%s\" is listed twice", what, name);
                goto error;
            }
        }
        if (!(e->name = mu_strdup(name))) {
            errprintf(errp, "%s: out of memory", what);
            goto error;
        }
        total += e->weight;
        e->cum = total;
        m->n++;
    }
    if (m->n == 0)
        goto empty;
    if (!isfinite(total)) {
        errprintf(errp, "%s: weights are too large", what);
        goto error;
    }
    mu_free(buf);
    return m;
empty:
    errprintf(errp, "%s: empty list (expected NAME:WEIGHT,...)", what);
error:
    mu_free(buf);
    mix_destroy(m);
    return NULL;
}

mix *mix_parse_counts(const char *spec, unsigned long long max, const char *what, mu_error *errp)
{
    mix *m = mix_parse(spec, false, what, errp);
    for (size_t i = 0; m && i < m->n; i++) {
        uint64_t v;
        if (str_to_u64(m->e[i].name, 1, max, &v) < 0) {
            errprintf(errp, "%s: \"%s\" is not a whole number in 1..%llu", what, m->e[i].name, max);
            mix_destroy(m);
            m = NULL;
        }
    }
    return m;
}

unsigned mix_count_at(const mix *m, size_t i)
{
    return (unsigned)strtoul(m->e[i].name, NULL, 10);
}

size_t mix_count(const mix *m)
{
    return m->n;
}

const char *mix_name(const mix *m, size_t i)
{
    return m->e[i].name;
}

double mix_weight(const mix *m, size_t i)
{
    return m->e[i].weight;
}

double mix_extra(const mix *m, size_t i, double otherwise)
{
    return m->e[i].has_extra ? m->e[i].extra : otherwise;
}

size_t mix_pick(const mix *m, double u)
{
    double target = u * m->e[m->n - 1].cum;
    /* First entry whose cumulative weight exceeds the target. */
    size_t lo = 0, hi = m->n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->e[mid].cum > target)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}
