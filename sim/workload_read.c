/* workload_read.c - the workload readers: native JSON lines, the Alibaba
 * GPU pod list and the Standard Workload Format (see workload.h).
 *
 * Like the churn readers, each reads a whole file and returns a complete
 * workload or NULL with "FILE:LINE: what is wrong"; records a trace is
 * known to contain but that are no request (CPU-only pods, jobs without a
 * run time) are skipped and counted, never silently.
 */
#include "workload.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "jsonutil.h"
#include "strutil.h"

/* A sanity bound on GPUs per worker and workers per request in traces. */
#define MAX_GPUS    1024
#define MAX_WORKERS 1000000

static bool skippable(const char *line, char comment)
{
    while (*line == ' ' || *line == '\t')
        line++;
    return !*line || (comment && *line == comment);
}

static workload_read_stats finish_stats(workload_read_stats st, const workload *w)
{
    st.requests = workload_count(w);
    return st;
}

/* --- JSON lines ------------------------------------------------------------ */

/* The optional task fields (workload.h). */
static int jsonl_tasks(const cJSON *o, workload_request *r, const char *where, mu_error *errp)
{
    static const char *const needs_tasks[] = {"task_s", "task_gpus", "task_fail", "task_retries"};
    if (json_get_u32(o, "tasks", false, 1, WORKLOAD_MAX_TASKS, &r->tasks, where, errp) < 0)
        return -1;
    if (!r->tasks) {
        for (size_t i = 0; i < sizeof(needs_tasks) / sizeof(needs_tasks[0]); i++)
            if (cJSON_GetObjectItemCaseSensitive(o, needs_tasks[i]))
                return errprintf(errp, "%s: \"%s\" without \"tasks\"", where, needs_tasks[i]);
        return 0;
    }
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "task_s");
    if (!ts)
        return errprintf(errp, "%s: \"tasks\" needs \"task_s\" (the run time of a task, seconds)",
                         where);
    if (cJSON_IsNumber(ts)) {
        if (!isfinite(ts->valuedouble) || !(ts->valuedouble > 0) || ts->valuedouble > 1e9)
            return errprintf(errp, "%s: \"task_s\" must be a number of seconds in (0, 1e9]", where);
        r->task_s = (dist){DIST_CONSTANT, ts->valuedouble, 0};
    } else if (cJSON_IsString(ts)) {
        if (dist_parse(ts->valuestring, &r->task_s, errp) < 0)
            return errprefix(errp, "%s: task_s", where);
    } else {
        return errprintf(errp,
                         "%s: \"task_s\" must be a number of seconds or a distribution "
                         "(\"exp:600\")",
                         where);
    }
    r->task_gpus = r->gpus_per_worker;
    if (json_get_u32(o, "task_gpus", false, 1, MAX_GPUS, &r->task_gpus, where, errp) < 0 ||
        json_get_number(o, "task_fail", false, 0, 1, &r->task_fail, where, errp) < 0 ||
        json_get_u32(o, "task_retries", false, 0, WORKLOAD_MAX_TASK_RETRIES, &r->task_retries,
                     where, errp) < 0)
        return -1;
    if (r->task_gpus > r->gpus_per_worker)
        return errprintf(errp, "%s: \"task_gpus\" %u is more than \"gpus_per_worker\" %u", where,
                         r->task_gpus, r->gpus_per_worker);
    return 0;
}

static int jsonl_line(workload *w, const char *line, const char *where, double *prev,
                      mu_error *errp)
{
    static const char *const keys[] = {"arrival_s",    "duration_s", "workers",   "gpus_per_worker",
                                       "gpu_model",    "region",     "name",      "placement",
                                       "tasks",        "task_s",     "task_gpus", "task_fail",
                                       "task_retries", NULL};
    cJSON *o = cJSON_ParseWithOpts(line, NULL, true);
    if (!o)
        return errprintf(errp, "%s: not a JSON object (or out of memory)", where);
    workload_request r = {.gpu_model = "", .region = "", .name = "", .placement = ""};
    int rc = -1;
    /* Field by field, so the first problem is the one reported. */
    if (json_check_keys(o, keys, where, errp) < 0 ||
        json_get_number(o, "arrival_s", true, 0, 1e15, &r.arrival_s, where, errp) < 0 ||
        json_get_number(o, "duration_s", true, 1e-3, 1e15, &r.duration_s, where, errp) < 0 ||
        json_get_u32(o, "workers", true, 1, MAX_WORKERS, &r.workers, where, errp) < 0)
        goto out;
    if (json_get_u32(o, "gpus_per_worker", true, 1, MAX_GPUS, &r.gpus_per_worker, where, errp) ||
        json_get_string(o, "gpu_model", false, &r.gpu_model, where, errp) < 0 ||
        json_get_string(o, "region", false, &r.region, where, errp) < 0 ||
        json_get_string(o, "name", false, &r.name, where, errp) < 0 ||
        json_get_string(o, "placement", false, &r.placement, where, errp) < 0 ||
        jsonl_tasks(o, &r, where, errp) < 0)
        goto out;
    if (w && workload_count(w) && r.arrival_s < *prev) {
        errprintf(errp,
                  "%s: arrival_s %g is before the previous line's %g (lines must be in "
                  "arrival order)",
                  where, r.arrival_s, *prev);
        goto out;
    }
    if (workload_append(w, &r, errp) < 0) {
        errprefix(errp, "%s", where);
        goto out;
    }
    *prev = r.arrival_s;
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

workload *workload_read_jsonl(const char *path, workload_read_stats *stats, mu_error *errp)
{
    line_cursor c;
    char *buf = text_load(path, &c, errp);
    if (!buf)
        return NULL;
    workload *w = workload_create();
    if (!w) {
        errprintf(errp, "%s: out of memory", path);
        goto error;
    }
    workload_read_stats st = {0};
    double prev = 0;
    char *line;
    while ((line = lines_next(&c))) {
        if (skippable(line, 0))
            continue;
        char where[300];
        snprintf(where, sizeof(where), "%s:%zu", path, c.line);
        st.records++;
        if (jsonl_line(w, line, where, &prev, errp) < 0)
            goto error;
    }
    if (!workload_count(w)) {
        errprintf(errp, "%s: no requests (empty file)", path);
        goto error;
    }
    if (stats)
        *stats = finish_stats(st, w);
    mu_free(buf);
    return w;
error:
    workload_destroy(w);
    mu_free(buf);
    return NULL;
}

/* --- Alibaba GPU trace ----------------------------------------------------------- */

const char *workload_alibaba_model(const char *spec, int *unmapped)
{
    /* The models of the trace's node list (openb_node_list_all_node.csv:
     * G2, T4, P100, V100M16, G3, V100M32, A10) against data/gpus.json. P100
     * is not in the catalog; G2 and G3 are anonymised in the trace, so no
     * model can be claimed for them. */
    static const struct {
        const char *spec;
        const char *model;
    } map[] = {
        {"T4", "T4"},     {"A10", "A10"}, {"V100M16", "V100"}, {"V100M32", "V100"},
        {"V100", "V100"}, {"P100", ""},   {"G2", ""},          {"G3", ""},
    };
    if (unmapped)
        *unmapped = 0;
    if (!spec || !*spec)
        return "";
    const char *model = NULL;
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, "|");
        const char *m = "";
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
            if (strlen(map[i].spec) == len && strncmp(map[i].spec, p, len) == 0) {
                m = map[i].model;
                break;
            }
        }
        if (model && strcmp(model, m) != 0)
            model = "";
        else if (!model)
            model = m;
        p += len;
        if (*p == '|')
            p++;
    }
    if (!model || !*model) {
        if (unmapped)
            *unmapped = 1;
        return "";
    }
    return model;
}

enum {
    AB_NAME,
    AB_NUM_GPU,
    AB_GPU_MILLI,
    AB_GPU_SPEC,
    AB_CREATION,
    AB_DELETION,
    AB_SCHEDULED,
    AB_NCOLS
};

static const char *const alibaba_columns[AB_NCOLS] = {
    "name", "num_gpu", "gpu_milli", "gpu_spec", "creation_time", "deletion_time", "scheduled_time",
};

/* Alibaba times: empty means "not known" (skip the pod); anything else must
 * be a number of seconds >= 0. Returns 1 (have it), 0 (missing) or -1. */
static int alibaba_time(const char *s, double *out, const char *col, const char *path, size_t line,
                        mu_error *errp)
{
    if (!*s)
        return 0;
    if (str_to_double(s, out) < 0)
        return errprintf(errp, "%s:%zu: %s \"%s\" is not a number", path, line, col, s);
    if (*out < 0)
        return errprintf(errp, "%s:%zu: %s %s is negative", path, line, col, s);
    return 1;
}

#define AB_MAX_FIELDS 64

workload *workload_read_alibaba(const char *path, workload_read_stats *stats, mu_error *errp)
{
    line_cursor c;
    char *buf = text_load(path, &c, errp);
    if (!buf)
        return NULL;
    workload *w = workload_create();
    if (!w) {
        errprintf(errp, "%s: out of memory", path);
        goto error;
    }
    workload_read_stats st = {0};
    int col[AB_NCOLS];
    size_t ncols = 0;
    char *line;
    while ((line = lines_next(&c))) {
        if (skippable(line, 0))
            continue;
        if (strchr(line, '"')) {
            errprintf(errp, "%s:%zu: quoted fields are not supported", path, c.line);
            goto error;
        }
        char *f[AB_MAX_FIELDS];
        size_t nf = split_char(line, ',', f, AB_MAX_FIELDS);
        if (!ncols) {
            if (nf > AB_MAX_FIELDS) {
                errprintf(errp, "%s:%zu: more than %d columns", path, c.line, AB_MAX_FIELDS);
                goto error;
            }
            for (int k = 0; k < AB_NCOLS; k++) {
                col[k] = -1;
                for (size_t i = 0; i < nf; i++)
                    if (strcmp(f[i], alibaba_columns[k]) == 0)
                        col[k] = (int)i;
                if (col[k] < 0 && k != AB_SCHEDULED) {
                    errprintf(errp,
                              "%s:%zu: no column \"%s\" in the header (not an Alibaba "
                              "pod list?)",
                              path, c.line, alibaba_columns[k]);
                    goto error;
                }
            }
            ncols = nf;
            continue;
        }
        st.records++;
        if (nf != ncols) {
            errprintf(errp, "%s:%zu: expected %zu fields (as the header), found %zu", path, c.line,
                      ncols, nf);
            goto error;
        }
        uint64_t num_gpu, milli;
        if (str_to_u64(f[col[AB_NUM_GPU]], 0, MAX_GPUS, &num_gpu) < 0) {
            errprintf(errp, "%s:%zu: num_gpu \"%s\" is not a whole number in 0..%d", path, c.line,
                      f[col[AB_NUM_GPU]], MAX_GPUS);
            goto error;
        }
        if (str_to_u64(f[col[AB_GPU_MILLI]], 0, 1000, &milli) < 0) {
            errprintf(errp, "%s:%zu: gpu_milli \"%s\" is not a whole number in 0..1000", path,
                      c.line, f[col[AB_GPU_MILLI]]);
            goto error;
        }
        double created = 0, deleted = 0, scheduled = 0;
        int hc = alibaba_time(f[col[AB_CREATION]], &created, "creation_time", path, c.line, errp);
        int hd = alibaba_time(f[col[AB_DELETION]], &deleted, "deletion_time", path, c.line, errp);
        int hs = col[AB_SCHEDULED] < 0 ? 1
                                       : alibaba_time(f[col[AB_SCHEDULED]], &scheduled,
                                                      "scheduled_time", path, c.line, errp);
        if (hc < 0 || hd < 0 || hs < 0)
            goto error;
        if (num_gpu == 0) {
            st.skipped_no_gpu++;
            continue;
        }
        if (!hc || !hd || deleted <= created) {
            st.skipped_bad_time++;
            continue;
        }
        int unmapped;
        workload_request r = {
            .arrival_s = created,
            .duration_s = deleted - created,
            .workers = 1,
            .gpus_per_worker = (uint32_t)num_gpu,
            .gpu_model = workload_alibaba_model(f[col[AB_GPU_SPEC]], &unmapped),
            .region = "",
            .name = f[col[AB_NAME]],
        };
        st.unmapped_model += (size_t)unmapped;
        st.fractional_gpu += milli < 1000;
        st.never_scheduled += !hs;
        if (workload_append(w, &r, errp) < 0) {
            errprefix(errp, "%s:%zu", path, c.line);
            goto error;
        }
    }
    if (!ncols) {
        errprintf(errp, "%s: empty file (expected a header line)", path);
        goto error;
    }
    if (!workload_count(w)) {
        errprintf(errp, "%s: no GPU requests (%zu pods read)", path, st.records);
        goto error;
    }
    if (workload_sort(w, errp) < 0) {
        errprefix(errp, "%s", path);
        goto error;
    }
    if (stats)
        *stats = finish_stats(st, w);
    mu_free(buf);
    return w;
error:
    workload_destroy(w);
    mu_free(buf);
    return NULL;
}

/* --- Standard Workload Format ----------------------------------------------- */

#define SWF_FIELDS 18

static const char *const swf_fields[SWF_FIELDS] = {
    "job_number",
    "submit_time",
    "wait_time",
    "run_time",
    "allocated_processors",
    "average_cpu_time",
    "used_memory",
    "requested_processors",
    "requested_time",
    "requested_memory",
    "status",
    "user_id",
    "group_id",
    "executable",
    "queue",
    "partition",
    "preceding_job",
    "think_time",
};

workload *workload_read_swf(const char *path, uint32_t node_gpus, workload_read_stats *stats,
                            mu_error *errp)
{
    if (node_gpus == 0)
        node_gpus = 8;
    line_cursor c;
    char *buf = text_load(path, &c, errp);
    if (!buf)
        return NULL;
    workload *w = workload_create();
    if (!w) {
        errprintf(errp, "%s: out of memory", path);
        goto error;
    }
    workload_read_stats st = {0};
    char *line;
    while ((line = lines_next(&c))) {
        if (skippable(line, ';'))
            continue;
        char *f[SWF_FIELDS];
        size_t nf = split_blanks(line, f, SWF_FIELDS);
        if (nf != SWF_FIELDS) {
            errprintf(errp, "%s:%zu: expected %d whitespace-separated fields, found %zu", path,
                      c.line, SWF_FIELDS, nf);
            goto error;
        }
        double v[SWF_FIELDS];
        for (int i = 0; i < SWF_FIELDS; i++) {
            if (str_to_double(f[i], &v[i]) < 0) {
                errprintf(errp, "%s:%zu: %s \"%s\" is not a number", path, c.line, swf_fields[i],
                          f[i]);
                goto error;
            }
        }
        st.records++;
        if (v[1] < 0) {
            errprintf(errp, "%s:%zu: submit_time %s is negative", path, c.line, f[1]);
            goto error;
        }
        double procs = v[4] > 0 ? v[4] : v[7];
        if (!(v[3] > 0)) {
            st.skipped_bad_time++;
            continue;
        }
        if (!(procs > 0)) {
            st.skipped_no_procs++;
            continue;
        }
        if (procs != floor(procs) || procs > (double)MAX_GPUS * MAX_WORKERS) {
            errprintf(errp, "%s:%zu: processor count %g is not a plausible whole number", path,
                      c.line, procs);
            goto error;
        }
        uint64_t p = (uint64_t)procs;
        workload_request r = {
            .arrival_s = v[1], .duration_s = v[3], .region = "", .gpu_model = "", .name = f[0]};
        if (p <= node_gpus) {
            r.workers = 1;
            r.gpus_per_worker = (uint32_t)p;
        } else {
            r.workers = (uint32_t)((p + node_gpus - 1) / node_gpus);
            r.gpus_per_worker = node_gpus;
            st.rounded_up += p % node_gpus != 0;
        }
        if (workload_append(w, &r, errp) < 0) {
            errprefix(errp, "%s:%zu", path, c.line);
            goto error;
        }
    }
    if (!workload_count(w)) {
        errprintf(errp, "%s: no jobs with a run time and processors (%zu read)", path, st.records);
        goto error;
    }
    if (workload_sort(w, errp) < 0) {
        errprefix(errp, "%s", path);
        goto error;
    }
    if (stats)
        *stats = finish_stats(st, w);
    mu_free(buf);
    return w;
error:
    workload_destroy(w);
    mu_free(buf);
    return NULL;
}
