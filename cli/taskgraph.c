/* taskgraph.c - see taskgraph.h.
 *
 * The request borrows the strings of the parsed JSON tree (names, argv,
 * cwd, ...), which the graph keeps; what it builds itself ("NAME=value"
 * entries, "7" for a number in `after`, the arrays) lives in an arena, so a
 * graph of any size is freed in one go and a failed parse leaks nothing.
 *
 * Checks run in file order, so the error is about the first bad task; the
 * checks that need every task (duplicate names, unknown names in `after`,
 * cycles) run after them. Name lookups go through a sorted table and the
 * cycle search is an iterative depth-first search, so a 16 MiB file of
 * chained tasks costs O(n log n) and no deep recursion.
 */
#include "taskgraph.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "strutil.h"

/* --- the arena ------------------------------------------------------------------ */

typedef struct tg_block {
    struct tg_block *next;
    size_t used, size;
    max_align_t data[];
} tg_block;

#define BLOCK_BYTES ((size_t)64 << 10)

struct taskgraph {
    Muster__SubmitTasksRequest req;
    cJSON *root;      /* owns the strings the request borrows */
    tg_block *blocks; /* owns everything else */
};

/* size zeroed bytes that live as long as g; NULL when out of memory. */
static void *tg_alloc(taskgraph *g, size_t size)
{
    const size_t align = sizeof(max_align_t);
    if (size > SIZE_MAX / 2)
        return NULL;
    size = size ? (size + align - 1) / align * align : align;
    tg_block *b = g->blocks;
    if (!b || b->size - b->used < size) {
        size_t cap = size > BLOCK_BYTES ? size : BLOCK_BYTES;
        if (!(b = mu_malloc(sizeof(*b) + cap)))
            return NULL;
        b->size = cap;
        b->used = 0;
        b->next = g->blocks;
        g->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

void taskgraph_destroy(taskgraph *g)
{
    if (!g)
        return;
    cJSON_Delete(g->root);
    while (g->blocks) {
        tg_block *next = g->blocks->next;
        mu_free(g->blocks);
        g->blocks = next;
    }
    mu_free(g);
}

const Muster__SubmitTasksRequest *taskgraph_request(const taskgraph *g)
{
    return &g->req;
}

/* --- checks shared with the CLI ---------------------------------------------------- */

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

int taskgraph_check_name(const char *name, mu_error *errp)
{
    size_t len = strlen(name);
    if (len == 0)
        return errprintf(errp, "a task name must not be empty");
    if (len > TASKGRAPH_MAX_NAME)
        return errprintf(errp, "task name \"%.24s...\" is longer than %u bytes", name,
                         TASKGRAPH_MAX_NAME);
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return errprintf(errp, "task name \"%.24s\" contains a control character", name);
    if (all_digits(name))
        return errprintf(errp,
                         "task name \"%s\" is all digits: in \"after\", a number means a "
                         "task already in the cluster",
                         name);
    return 0;
}

int taskgraph_check_env(const char *entry, mu_error *errp)
{
    const char *eq = strchr(entry, '=');
    if (!eq)
        return errprintf(errp, "environment entry \"%.40s\" is not NAME=value", entry);
    if (eq == entry)
        return errprintf(errp, "environment entry \"%.40s\" has an empty NAME", entry);
    return 0;
}

/* Whether PATH has a ".." component. */
static bool has_dotdot(const char *path)
{
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += len;
        while (*p == '/')
            p++;
    }
    return false;
}

int taskgraph_check_result_file(const char *path, mu_error *errp)
{
    if (!*path)
        return errprintf(errp, "the result file's path is empty");
    if (path[0] == '/')
        return errprintf(errp, "\"%.40s\" must be relative to the task's directory", path);
    if (has_dotdot(path))
        return errprintf(errp, "\"%.40s\" must stay in the task's directory (no ..)", path);
    return 0;
}

int taskgraph_parse_id(const char *text, char *cluster, size_t n, uint32_t *number, mu_error *errp)
{
    const char *slash = strchr(text, '/');
    if (!slash)
        return errprintf(errp, "\"%.40s\" is not a task id: give CLUSTER/NUMBER (e.g. 1a2b3c4d/7)",
                         text);
    size_t len = (size_t)(slash - text);
    if (len == 0)
        return errprintf(errp, "\"%.40s\" is not a task id: the cluster before '/' is missing",
                         text);
    if (len > TASKGRAPH_MAX_CLUSTER_LEN || len >= n)
        return errprintf(errp, "\"%.40s...\" is not a task id: the cluster id is too long", text);
    for (size_t i = 0; i < len; i++)
        if (isspace((unsigned char)text[i]) || (unsigned char)text[i] < 0x20)
            return errprintf(errp, "\"%.40s\" is not a task id: blank in the cluster id", text);
    uint64_t v;
    if (str_to_u64(slash + 1, 0, UINT32_MAX, &v) < 0)
        return errprintf(errp,
                         "\"%.40s\" is not a task id: after '/' comes the task's number "
                         "(0..4294967295)",
                         text);
    memcpy(cluster, text, len);
    cluster[len] = '\0';
    *number = (uint32_t)v;
    return 0;
}

int taskgraph_parse_after(const char *text, const char *cluster, uint32_t *number, mu_error *errp)
{
    if (!strchr(text, '/')) {
        uint64_t v;
        if (str_to_u64(text, 0, UINT32_MAX, &v) < 0)
            return errprintf(errp,
                             "\"%.40s\" is not a task: give its number N or CLUSTER/N "
                             "(names are for graph files)",
                             text);
        *number = (uint32_t)v;
        return 0;
    }
    char c[TASKGRAPH_MAX_CLUSTER_LEN + 1];
    uint32_t v;
    if (taskgraph_parse_id(text, c, sizeof(c), &v, errp) < 0)
        return -1;
    size_t a = strlen(c), b = strlen(cluster);
    if (strncmp(c, cluster, a < b ? a : b) != 0)
        return errprintf(errp, "task %.60s is not in cluster %.40s", text, cluster);
    *number = v;
    return 0;
}

/* --- reading the file ------------------------------------------------------------- */

/* One "NAME": "value" of an env object, borrowed from the tree. */
typedef struct tg_env {
    const char *key, *value;
} tg_env;

/* What "defaults" sets; a task's own field wins. */
typedef struct tg_defaults {
    double gpus, cpus, memory_mib, timeout_s;
    int has_retries;
    double retries;
    bool retry_exits;
    const char *placement; /* borrowed; NULL: none */
    tg_env *env;           /* sorted by key */
    size_t n_env;
} tg_defaults;

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "true/false";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    return "not a value";
}

/* Fail, naming the field, when OBJ has a field not in KNOWN (NULL-ended, at
 * most 32) or one twice (cJSON keeps both; only the first would count). */
static int check_fields(const cJSON *obj, const char *const *known, const char *where,
                        mu_error *errp)
{
    uint32_t seen = 0;
    for (const cJSON *it = obj->child; it; it = it->next) {
        size_t i = 0;
        while (known[i] && strcmp(known[i], it->string))
            i++;
        if (known[i]) {
            if (seen & (1u << i))
                return errprintf(errp, "%s: field \"%s\" is given twice", where, known[i]);
            seen |= 1u << i;
            continue;
        }
        const char *best = NULL;
        unsigned best_d = 3; /* suggest only close names: a typo, not a guess */
        for (size_t j = 0; known[j]; j++) {
            unsigned d = str_edit_distance(it->string, known[j], 3);
            if (d < best_d) {
                best_d = d;
                best = known[j];
            }
        }
        if (best)
            return errprintf(errp, "%s: unknown field \"%.40s\" (did you mean \"%s\"?)", where,
                             it->string, best);
        char list[200];
        size_t len = 0;
        list[0] = '\0';
        for (size_t j = 0; known[j] && len < sizeof(list); j++) {
            int k = snprintf(list + len, sizeof(list) - len, "%s%s", j ? ", " : "", known[j]);
            if (k < 0)
                break;
            len += (size_t)k;
        }
        return errprintf(errp, "%s: unknown field \"%.40s\" (fields: %s)", where, it->string, list);
    }
    return 0;
}

/* A whole number in 0..max at KEY: 1 and *out when there, 0 when absent,
 * -1 with a reason. HINT follows the range in the error (" seconds"). */
static int get_whole(const cJSON *obj, const char *key, double max, const char *hint, double *out,
                     const char *where, mu_error *errp)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v))
        return errprintf(errp, "%s: \"%s\" must be a number, not %s", where, key, type_name(v));
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < 0 || d > max)
        return errprintf(errp, "%s: \"%s\" must be a whole number in 0..%.0f%s, not %.15g", where,
                         key, max, hint, d);
    *out = d;
    return 1;
}

static int get_bool(const cJSON *obj, const char *key, bool *out, const char *where, mu_error *errp)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v))
        return errprintf(errp, "%s: \"%s\" must be true or false, not %s", where, key,
                         type_name(v));
    *out = cJSON_IsTrue(v);
    return 1;
}

/* A non-empty string at KEY: 1 and *out (borrowed), 0 when absent, -1. */
static int get_text(const cJSON *obj, const char *key, const char **out, const char *where,
                    mu_error *errp)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return errprintf(errp, "%s: \"%s\" must be a string, not %s", where, key, type_name(v));
    if (!*v->valuestring)
        return errprintf(errp, "%s: \"%s\" must not be empty", where, key);
    *out = v->valuestring;
    return 1;
}

static int env_cmp(const void *a, const void *b)
{
    return strcmp(((const tg_env *)a)->key, ((const tg_env *)b)->key);
}

/* The "env" object at KEY as pairs sorted by name (*out: mu_free). */
static int get_env(const cJSON *obj, tg_env **out, size_t *n, const char *where, mu_error *errp)
{
    *out = NULL;
    *n = 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "env");
    if (!v)
        return 0;
    if (!cJSON_IsObject(v))
        return errprintf(errp, "%s: \"env\" must be an object {\"NAME\": \"value\"}, not %s", where,
                         type_name(v));
    size_t count = 0;
    for (const cJSON *it = v->child; it; it = it->next)
        count++;
    if (!count)
        return 0;
    tg_env *e = mu_calloc(count, sizeof(*e));
    if (!e)
        return errprintf(errp, "%s: out of memory", where);
    size_t i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        if (!*it->string || strchr(it->string, '=')) {
            mu_free(e);
            return errprintf(errp,
                             "%s: \"env\": \"%.40s\" is not a variable name (empty or with '=')",
                             where, it->string);
        }
        if (!cJSON_IsString(it)) {
            mu_free(e);
            return errprintf(errp, "%s: \"env\": \"%.40s\" must be a string, not %s", where,
                             it->string, type_name(it));
        }
        e[i].key = it->string;
        e[i].value = it->valuestring;
    }
    qsort(e, count, sizeof(*e), env_cmp);
    for (i = 1; i < count; i++) {
        if (!strcmp(e[i - 1].key, e[i].key)) {
            errprintf(errp, "%s: \"env\" gives \"%.40s\" twice", where, e[i].key);
            mu_free(e);
            return -1;
        }
    }
    *out = e;
    *n = count;
    return 1;
}

/* The task's "NAME=value" entries: D (the defaults') and T (its own), both
 * sorted by name, merged; the task's value wins for a name both give. The
 * result is sorted by name too: an environment has no order, a stable one
 * makes requests comparable. */
static int merge_env(taskgraph *g, Muster__TaskSpec *s, const tg_env *d, size_t nd, const tg_env *t,
                     size_t nt)
{
    if (nd + nt == 0)
        return 0;
    char **out = tg_alloc(g, (nd + nt) * sizeof(*out));
    if (!out)
        return -1;
    size_t i = 0, j = 0, n = 0;
    while (i < nd || j < nt) {
        const tg_env *e;
        int c = i == nd ? 1 : j == nt ? -1 : strcmp(d[i].key, t[j].key);
        if (c < 0) {
            e = &d[i++];
        } else {
            i += c == 0;
            e = &t[j++];
        }
        size_t kl = strlen(e->key), vl = strlen(e->value);
        char *kv = tg_alloc(g, kl + vl + 2);
        if (!kv)
            return -1;
        memcpy(kv, e->key, kl);
        kv[kl] = '=';
        memcpy(kv + kl + 1, e->value, vl + 1);
        out[n++] = kv;
    }
    s->env = out;
    s->n_env = n;
    return 0;
}

static const char *const TOP_FIELDS[] = {"cluster", "defaults", "tasks", NULL};
static const char *const DEFAULT_FIELDS[] = {
    "gpus", "cpus", "memory_mib", "retries", "retry_exits", "timeout_s", "env", "placement", NULL};
static const char *const TASK_FIELDS[] = {
    "name",    "argv",        "image",     "env",         "cwd",    "gpus",
    "cpus",    "memory_mib",  "after",     "placement",   "member", "hard_affinity",
    "retries", "retry_exits", "timeout_s", "result_file", NULL};

/* The fields "defaults" and a task share; present ones overwrite what the
 * caller put in (the defaults, for a task). */
static int get_common(const cJSON *o, tg_defaults *v, const char *where, mu_error *errp)
{
    int rc;
    if (get_whole(o, "gpus", TASKGRAPH_MAX_GPUS, "", &v->gpus, where, errp) < 0 ||
        get_whole(o, "cpus", TASKGRAPH_MAX_CPUS, "", &v->cpus, where, errp) < 0 ||
        get_whole(o, "memory_mib", (double)TASKGRAPH_MAX_MEMORY_MIB, " (1 PiB)", &v->memory_mib,
                  where, errp) < 0 ||
        get_whole(o, "timeout_s", TASKGRAPH_MAX_TIMEOUT_S, " seconds (7 days)", &v->timeout_s,
                  where, errp) < 0 ||
        get_bool(o, "retry_exits", &v->retry_exits, where, errp) < 0)
        return -1;
    if ((rc = get_whole(o, "retries", TASKGRAPH_MAX_RETRIES, " (0: none)", &v->retries, where,
                        errp)) < 0)
        return -1;
    if (rc)
        v->has_retries = 1;
    return 0;
}

static int check_placement(const char *p, bool member_ok, const char *where, mu_error *errp)
{
    if (!strcmp(p, "default") || !strcmp(p, "spread") || !strcmp(p, "pack") ||
        (member_ok && !strcmp(p, "member")))
        return 0;
    if (member_ok)
        return errprintf(errp, "%s: \"placement\" \"%.24s\" is not default, spread, pack or member",
                         where, p);
    return errprintf(errp,
                     "%s: \"placement\" \"%.24s\" is not default, spread or pack (member is "
                     "per task, with \"member\")",
                     where, p);
}

static int parse_defaults(const cJSON *dv, tg_defaults *d, const char *file, mu_error *errp)
{
    char where[160];
    snprintf(where, sizeof(where), "%s: defaults", file);
    if (!cJSON_IsObject(dv))
        return errprintf(errp, "%s: must be an object, not %s", where, type_name(dv));
    if (check_fields(dv, DEFAULT_FIELDS, where, errp) < 0 || get_common(dv, d, where, errp) < 0 ||
        get_env(dv, &d->env, &d->n_env, where, errp) < 0 ||
        get_text(dv, "placement", &d->placement, where, errp) < 0)
        return -1;
    if (d->placement && check_placement(d->placement, false, where, errp) < 0)
        return -1;
    return 0;
}

static void task_where(char *buf, size_t n, const char *file, size_t i, const char *name)
{
    if (name && *name)
        snprintf(buf, n, "%s: tasks[%zu] (\"%s\")", file, i, name);
    else
        snprintf(buf, n, "%s: tasks[%zu]", file, i);
}

static int parse_after(taskgraph *g, const cJSON *av, Muster__TaskSpec *s, const char *where,
                       mu_error *errp)
{
    if (!cJSON_IsArray(av))
        return errprintf(errp, "%s: \"after\" must be an array of task names and numbers, not %s",
                         where, type_name(av));
    size_t n = 0, k = 0;
    for (const cJSON *x = av->child; x; x = x->next)
        n++;
    if (!n)
        return 0;
    char **after = tg_alloc(g, n * sizeof(*after));
    if (!after)
        return errprintf(errp, "%s: out of memory", where);
    for (const cJSON *x = av->child; x; x = x->next, k++) {
        if (cJSON_IsString(x)) {
            if (!*x->valuestring)
                return errprintf(errp, "%s: \"after\"[%zu] is an empty name", where, k);
            if (all_digits(x->valuestring))
                return errprintf(errp,
                                 "%s: \"after\"[%zu] is the string \"%.12s\": a task already in "
                                 "the cluster is given as a number (%.12s), a task of this file "
                                 "by its name",
                                 where, k, x->valuestring, x->valuestring);
            after[k] = x->valuestring; /* a name: resolved once every task is read */
        } else if (cJSON_IsNumber(x)) {
            double d = x->valuedouble;
            if (!isfinite(d) || d != floor(d) || d < 0 || d > UINT32_MAX)
                return errprintf(errp,
                                 "%s: \"after\"[%zu] must be a task number in 0..4294967295, "
                                 "not %.15g",
                                 where, k, d);
            if (!(after[k] = tg_alloc(g, 12)))
                return errprintf(errp, "%s: out of memory", where);
            snprintf(after[k], 12, "%u", (unsigned)d);
        } else {
            return errprintf(errp,
                             "%s: \"after\"[%zu] must be a task name (string) or number, not %s",
                             where, k, type_name(x));
        }
    }
    s->after = after;
    s->n_after = n;
    return 0;
}

static int parse_argv(taskgraph *g, const cJSON *av, Muster__TaskSpec *s, const char *where,
                      mu_error *errp)
{
    if (!av)
        return errprintf(errp,
                         "%s: \"argv\" is missing: give the program and its arguments, e.g. "
                         "[\"sh\", \"-c\", \"echo hi\"]",
                         where);
    if (!cJSON_IsArray(av))
        return errprintf(errp, "%s: \"argv\" must be an array of strings, not %s", where,
                         type_name(av));
    size_t n = 0, k = 0;
    for (const cJSON *x = av->child; x; x = x->next)
        n++;
    if (!n)
        return errprintf(errp, "%s: \"argv\" is empty: give the program and its arguments", where);
    char **argv = tg_alloc(g, n * sizeof(*argv));
    if (!argv)
        return errprintf(errp, "%s: out of memory", where);
    for (const cJSON *x = av->child; x; x = x->next, k++) {
        if (!cJSON_IsString(x))
            return errprintf(errp, "%s: \"argv\"[%zu] must be a string, not %s", where, k,
                             type_name(x));
        argv[k] = x->valuestring;
    }
    if (!*argv[0])
        return errprintf(errp, "%s: \"argv\"[0], the program, must not be empty", where);
    s->argv = argv;
    s->n_argv = n;
    return 0;
}

static int parse_task(taskgraph *g, const tg_defaults *d, const cJSON *item, size_t i,
                      const char *file, Muster__TaskSpec *s, mu_error *errp)
{
    char where[200];
    tg_env *env = NULL;
    size_t n_env = 0;
    muster__task_spec__init(s);
    task_where(where, sizeof(where), file, i, NULL);
    if (!cJSON_IsObject(item))
        return errprintf(errp, "%s: must be an object, not %s", where, type_name(item));
    const cJSON *nv = cJSON_GetObjectItemCaseSensitive(item, "name");
    if (nv) {
        if (!cJSON_IsString(nv))
            return errprintf(errp, "%s: \"name\" must be a string, not %s", where, type_name(nv));
        if (taskgraph_check_name(nv->valuestring, errp) < 0)
            return errprefix(errp, "%s", where);
        s->name = nv->valuestring;
        task_where(where, sizeof(where), file, i, s->name);
    }
    if (check_fields(item, TASK_FIELDS, where, errp) < 0 ||
        parse_argv(g, cJSON_GetObjectItemCaseSensitive(item, "argv"), s, where, errp) < 0)
        return -1;

    tg_defaults v = *d; /* the defaults, overwritten by the task's own fields */
    const char *image = NULL, *cwd = NULL, *member = NULL, *placement = NULL, *result = NULL;
    bool hard = false;
    if (get_common(item, &v, where, errp) < 0 || get_text(item, "image", &image, where, errp) < 0 ||
        get_text(item, "cwd", &cwd, where, errp) < 0 ||
        get_text(item, "member", &member, where, errp) < 0 ||
        get_text(item, "placement", &placement, where, errp) < 0 ||
        get_text(item, "result_file", &result, where, errp) < 0 ||
        get_bool(item, "hard_affinity", &hard, where, errp) < 0)
        return -1;
    if (placement && check_placement(placement, true, where, errp) < 0)
        return -1;
    if (member) {
        if (placement && strcmp(placement, "member"))
            return errprintf(errp,
                             "%s: \"member\" goes with \"placement\": \"member\" (or none), not "
                             "\"%s\"",
                             where, placement);
        placement = hard ? "member-hard" : "member";
    } else {
        if (placement && !strcmp(placement, "member"))
            return errprintf(errp,
                             "%s: \"placement\": \"member\" needs \"member\": a worker id or "
                             "prefix",
                             where);
        if (hard)
            return errprintf(errp, "%s: \"hard_affinity\" needs \"member\"", where);
        if (!placement)
            placement = d->placement;
    }
    if (cwd && cwd[0] != '/')
        return errprintf(errp, "%s: \"cwd\" must be an absolute directory on the member", where);
    if (result && taskgraph_check_result_file(result, errp) < 0)
        return errprefix(errp, "%s: \"result_file\"", where);
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(item, "after");
    if (av && parse_after(g, av, s, where, errp) < 0)
        return -1;
    if (get_env(item, &env, &n_env, where, errp) < 0)
        return -1;
    int rc = merge_env(g, s, d->env, d->n_env, env, n_env);
    mu_free(env);
    if (rc < 0)
        return errprintf(errp, "%s: out of memory", where);

    s->gpus = (uint32_t)v.gpus;
    s->cpus = (uint32_t)v.cpus;
    s->memory_mib = (uint64_t)v.memory_mib;
    s->timeout_ms = (uint32_t)v.timeout_s * 1000u;
    s->retry_exits = v.retry_exits;
    /* The file says how many retries, 0 meaning none; the wire's 0 means
     * the broker's default, -1 none. */
    s->max_retries = !v.has_retries ? 0 : v.retries == 0 ? -1 : (int32_t)v.retries;
    if (image)
        s->image = (char *)image;
    if (cwd)
        s->cwd = (char *)cwd;
    if (member)
        s->member = (char *)member;
    if (placement)
        s->placement = (char *)placement;
    if (result)
        s->result_file = (char *)result;
    return 0;
}

/* --- checks across tasks ---------------------------------------------------------- */

typedef struct tg_name {
    const char *name;
    size_t index;
} tg_name;

static int name_cmp(const void *a, const void *b)
{
    const tg_name *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int name_key_cmp(const void *key, const void *b)
{
    return strcmp(key, ((const tg_name *)b)->name);
}

/* Describe the cycle STACK[from..top-1] (each after the next, the last
 * after the first) into errp. */
static int cycle_error(const Muster__SubmitTasksRequest *r, const size_t *stack, size_t from,
                       size_t top, const char *file, mu_error *errp)
{
    char path[180];
    size_t len = 0;
    path[0] = '\0';
    for (size_t k = from; k <= top; k++) {
        const char *name = r->tasks[stack[k < top ? k : from]]->name;
        size_t need = strlen(name) + 6;
        if (len + need + 8 > sizeof(path)) {
            snprintf(path + len, sizeof(path) - len, " -> ...");
            break;
        }
        len += (size_t)snprintf(path + len, sizeof(path) - len, "%s\"%s\"", k > from ? " -> " : "",
                                name);
    }
    return errprintf(errp, "%s: \"after\" makes a cycle (A -> B: A runs after B): %s", file, path);
}

/* Duplicate names, names in `after` that no task has, cycles. */
static int check_graph(const Muster__SubmitTasksRequest *r, const char *file, mu_error *errp)
{
    size_t n = r->n_tasks, nn = 0, n_edges = 0;
    int rc = -1;
    tg_name *names = mu_calloc(n, sizeof(*names));
    size_t *start = mu_calloc(n + 1, sizeof(*start));
    size_t *edges = NULL, *stack = NULL, *pos = NULL;
    unsigned char *color = NULL;
    if (!names || !start)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        if (*r->tasks[i]->name)
            names[nn++] = (tg_name){r->tasks[i]->name, i};
        for (size_t k = 0; k < r->tasks[i]->n_after; k++)
            n_edges += !all_digits(r->tasks[i]->after[k]);
    }
    qsort(names, nn, sizeof(*names), name_cmp);
    for (size_t k = 1; k < nn; k++) {
        if (!strcmp(names[k - 1].name, names[k].name)) {
            errprintf(errp, "%s: tasks[%zu] and tasks[%zu] are both named \"%s\"", file,
                      names[k - 1].index, names[k].index, names[k].name);
            goto out;
        }
    }
    /* The edges, task -> the tasks it runs after, as one array. */
    if (!(edges = mu_calloc(n_edges ? n_edges : 1, sizeof(*edges))))
        goto oom;
    for (size_t i = 0, e = 0; i < n; i++) {
        const Muster__TaskSpec *s = r->tasks[i];
        start[i] = e;
        for (size_t k = 0; k < s->n_after; k++) {
            if (all_digits(s->after[k]))
                continue;
            const tg_name *t = bsearch(s->after[k], names, nn, sizeof(*names), name_key_cmp);
            if (!t) {
                char where[200];
                task_where(where, sizeof(where), file, i, s->name);
                errprintf(errp,
                          "%s: \"after\" names \"%.40s\", which is no task of this file (a task "
                          "already in the cluster is given by its number)",
                          where, s->after[k]);
                goto out;
            }
            edges[e++] = t->index;
        }
        start[i + 1] = e;
    }
    /* Depth-first, without recursion: color 1 is "on the path", so an edge
     * to such a task closes a cycle made of the path from it on. */
    stack = mu_calloc(n, sizeof(*stack));
    pos = mu_calloc(n, sizeof(*pos));
    color = mu_calloc(n, 1);
    if (!stack || !pos || !color)
        goto oom;
    for (size_t root = 0; root < n; root++) {
        if (color[root])
            continue;
        size_t top = 0;
        stack[top++] = root;
        color[root] = 1;
        pos[root] = start[root];
        while (top) {
            size_t u = stack[top - 1];
            if (pos[u] == start[u + 1]) {
                color[u] = 2;
                top--;
                continue;
            }
            size_t v = edges[pos[u]++];
            if (color[v] == 1) {
                size_t from = top - 1;
                while (stack[from] != v)
                    from--;
                cycle_error(r, stack, from, top, file, errp);
                goto out;
            }
            if (color[v] == 0) {
                color[v] = 1;
                pos[v] = start[v];
                stack[top++] = v;
            }
        }
    }
    rc = 0;
    goto out;
oom:
    errprintf(errp, "%s: out of memory", file);
out:
    mu_free(names);
    mu_free(start);
    mu_free(edges);
    mu_free(stack);
    mu_free(pos);
    mu_free(color);
    return rc;
}

/* --- the whole file --------------------------------------------------------------- */

taskgraph *taskgraph_parse(const char *text, size_t len, const char *where, mu_error *errp)
{
    if (len > TASKGRAPH_MAX_FILE_BYTES)
        return errprintf(errp, "%s: larger than %u bytes (16 MiB)", where,
                         TASKGRAPH_MAX_FILE_BYTES),
               NULL;
    taskgraph *g = mu_calloc(1, sizeof(*g));
    if (!g)
        return errprintf(errp, "%s: out of memory", where), NULL;
    muster__submit_tasks_request__init(&g->req);
    tg_defaults d;
    memset(&d, 0, sizeof(d));
    if (!(g->root = json_parse(text, len, where, errp)))
        goto error;
    const cJSON *root = g->root;
    if (!cJSON_IsObject(root)) {
        errprintf(errp, "%s: a task graph is a JSON object {\"tasks\": [...]}, not %s", where,
                  type_name(root));
        goto error;
    }
    const char *cluster = NULL;
    if (check_fields(root, TOP_FIELDS, where, errp) < 0 ||
        get_text(root, "cluster", &cluster, where, errp) < 0)
        goto error;
    if (cluster && strlen(cluster) > TASKGRAPH_MAX_CLUSTER_LEN) {
        errprintf(errp, "%s: \"cluster\" is longer than a cluster id", where);
        goto error;
    }
    if (cluster)
        g->req.cluster_id = (char *)cluster;
    const cJSON *dv = cJSON_GetObjectItemCaseSensitive(root, "defaults");
    if (dv && parse_defaults(dv, &d, where, errp) < 0)
        goto error;
    const cJSON *tv = cJSON_GetObjectItemCaseSensitive(root, "tasks");
    if (!tv) {
        errprintf(errp, "%s: \"tasks\" is missing: nothing to submit", where);
        goto error;
    }
    if (!cJSON_IsArray(tv)) {
        errprintf(errp, "%s: \"tasks\" must be an array of tasks, not %s", where, type_name(tv));
        goto error;
    }
    size_t n = 0, i = 0;
    for (const cJSON *x = tv->child; x; x = x->next)
        n++;
    if (!n) {
        errprintf(errp, "%s: \"tasks\" is empty: nothing to submit", where);
        goto error;
    }
    if (n > TASKGRAPH_MAX_TASKS) {
        errprintf(errp, "%s: %zu tasks: at most %u go in one submission", where, n,
                  TASKGRAPH_MAX_TASKS);
        goto error;
    }
    Muster__TaskSpec *specs = tg_alloc(g, n * sizeof(*specs));
    Muster__TaskSpec **ptrs = tg_alloc(g, n * sizeof(*ptrs));
    if (!specs || !ptrs) {
        errprintf(errp, "%s: out of memory", where);
        goto error;
    }
    for (const cJSON *x = tv->child; x; x = x->next, i++) {
        ptrs[i] = &specs[i];
        if (parse_task(g, &d, x, i, where, &specs[i], errp) < 0)
            goto error;
    }
    g->req.tasks = ptrs;
    g->req.n_tasks = n;
    if (check_graph(&g->req, where, errp) < 0)
        goto error;
    mu_free(d.env);
    return g;
error:
    mu_free(d.env);
    taskgraph_destroy(g);
    return NULL;
}

/* Read all of F (at most max bytes): a NUL-terminated buffer (mu_free). */
static char *read_stream(FILE *f, size_t max, size_t *len, const char *where, mu_error *errp)
{
    size_t cap = 0, n = 0;
    char *buf = NULL;
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                mu_free(buf);
                return errprintf(errp, "%s: larger than %zu bytes (16 MiB)", where, max), NULL;
            }
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > max + 1)
                ncap = max + 1;
            char *nb = mu_realloc(buf, ncap + 1);
            if (!nb) {
                mu_free(buf);
                return errprintf(errp, "%s: out of memory", where), NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) {
            if (ferror(f)) {
                int e = errno;
                mu_free(buf);
                return errprintf(errp, "%s: read failed: %s", where, strerror(e)), NULL;
            }
            break;
        }
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

taskgraph *taskgraph_load(const char *path, mu_error *errp)
{
    size_t len = 0;
    const char *where = strcmp(path, "-") ? path : "standard input";
    char *text = strcmp(path, "-")
                     ? fs_read_file(path, TASKGRAPH_MAX_FILE_BYTES, &len, errp)
                     : read_stream(stdin, TASKGRAPH_MAX_FILE_BYTES, &len, where, errp);
    if (!text)
        return NULL;
    taskgraph *g = taskgraph_parse(text, len, where, errp);
    mu_free(text);
    return g;
}
