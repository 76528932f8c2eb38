/* main.c - the `muster-sim` command: trace analysis, synthetic traces,
 * trace conversion, and replays of traces against the scheduler core.
 *
 * Exit status, for scripts:
 *   0  success
 *   1  a file could not be read, was malformed, or the output not written
 *   2  bad usage (unknown command or flag, bad or missing value)
 */
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyze.h"
#include "churn_io.h"
#include "engine.h"
#include "pow.h"
#include "report.h"
#include "strutil.h"
#include "synth.h"
#include "textio.h"
#include "workload.h"

enum { EXIT_OK = 0, EXIT_FILE = 1, EXIT_USAGE = 2 };

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "muster-sim: %s%s", cmd, *cmd ? ": " : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see muster-sim %s%s--help)\n", cmd, *cmd ? " " : "");
    va_end(ap);
    return EXIT_USAGE;
}

static int file_error(const mu_error *err)
{
    fprintf(stderr, "muster-sim: %s\n", err->text);
    return EXIT_FILE;
}

/* Report getopt_long's complaint about argv[optind - 1]. */
static int bad_option(const char *cmd, int o, char **argv)
{
    if (o == ':')
        return usage_error(cmd, "%s needs a value", argv[optind - 1]);
    return usage_error(cmd, "unknown option \"%s\"", argv[optind - 1]);
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: muster-sim COMMAND [OPTIONS]\n"
                 "\n"
                 "The muster simulator: replay churn and workload traces against the scheduler\n"
                 "core in virtual time; read real traces, summarise them, generate synthetic\n"
                 "ones, convert them to muster's own formats.\n"
                 "\n"
                 "Commands:\n"
                 "  run --churn FILE [--workload FILE] ...\n"
                 "                      replay the traces against the scheduler core; reports\n"
                 "                      in JSON, CSV and HTML\n"
                 "  analyze --churn FILE [--format native|fta] [--json]\n"
                 "                      availability and unavailability intervals of a churn\n"
                 "                      trace, with exponential, Weibull and lognormal fits\n"
                 "  analyze --workload FILE [--format jsonl|alibaba|swf] [--json]\n"
                 "                      what a workload trace holds\n"
                 "  generate churn ...  a synthetic churn trace (native CSV)\n"
                 "  generate workload ...\n"
                 "                      a synthetic workload (JSON lines)\n"
                 "  convert churn ...   a churn trace to native CSV, filling in node attributes\n"
                 "  convert workload ...\n"
                 "                      a workload trace to JSON lines, filling in regions\n"
                 "\n"
                 "  -h, --help          this help; COMMAND --help for a command's\n"
                 "      --version       the version\n"
                 "\n"
                 "Exit status: 0 success, 1 a file could not be read or was malformed (the\n"
                 "message names FILE:LINE), 2 bad usage.\n");
}

/* --- analyze ----------------------------------------------------------------- */

static void analyze_usage(FILE *out)
{
    fprintf(out, "Usage: muster-sim analyze --churn FILE [--format native|fta] [--json]\n"
                 "       muster-sim analyze --workload FILE [--format jsonl|alibaba|swf]\n"
                 "                          [--swf-node-gpus N] [--json]\n"
                 "\n"
                 "Churn: rebuild each node's availability (join to leave) and unavailability\n"
                 "(leave to join) intervals; print their count, mean, median, and maximum-\n"
                 "likelihood fits (in hours) of exponential, Weibull and lognormal with\n"
                 "log-likelihood and AIC, naming the best. Intervals still open at the end or\n"
                 "beginning at time 0 are counted but not measured; zero-length ones are\n"
                 "measured but left out of the fits (ln 0), and counted.\n"
                 "\n"
                 "Workload: requests, arrival span, durations, GPUs per request, GPU models,\n"
                 "and what the reader skipped.\n"
                 "\n"
                 "  --churn FILE         a churn trace\n"
                 "  --workload FILE      a workload trace\n"
                 "  --format F           churn: native (CSV, default) or fta (Failure Trace\n"
                 "                       Archive event_trace); workload: jsonl (default),\n"
                 "                       alibaba (cluster-trace-gpu-v2023 pod list) or swf\n"
                 "                       (Standard Workload Format, uncompressed)\n"
                 "  --swf-node-gpus N    swf: GPUs per worker, one GPU per processor [8]\n"
                 "  --json               one JSON object instead of text\n"
                 "  -h, --help           this help\n");
}

/* Churn and workload loading, shared by analyze and convert. */
static churn_trace *load_churn(const char *path, const char *format, churn_read_stats *st,
                               mu_error *err)
{
    return strcmp(format, "fta") == 0 ? churn_read_fta(path, st, err)
                                      : churn_read_csv(path, st, err);
}

static workload *load_workload(const char *path, const char *format, uint32_t node_gpus,
                               workload_read_stats *st, mu_error *err)
{
    if (strcmp(format, "alibaba") == 0)
        return workload_read_alibaba(path, st, err);
    if (strcmp(format, "swf") == 0)
        return workload_read_swf(path, node_gpus, st, err);
    return workload_read_jsonl(path, st, err);
}

static bool format_ok(const char *format, bool churn)
{
    static const char *const cf[] = {"native", "fta", NULL};
    static const char *const wf[] = {"jsonl", "alibaba", "swf", NULL};
    for (const char *const *f = churn ? cf : wf; *f; f++)
        if (strcmp(*f, format) == 0)
            return true;
    return false;
}

enum {
    OPT_CHURN = 1000,
    OPT_WORKLOAD,
    OPT_FORMAT,
    OPT_JSON,
    OPT_SWF_GPUS,
    OPT_OUT,
    OPT_SEED,
    OPT_FILL_GPUS,
    OPT_FILL_COUNTS,
    OPT_FILL_COUNTRIES,
    OPT_FILL_REGIONS,
    OPT_PARAMS,
    OPT_KEY_BASE = 2000, /* generate: OPT_KEY_BASE + index in the generator's keys */
};

static int parse_node_gpus(const char *cmd, const char *s, uint32_t *out)
{
    uint64_t v;
    if (str_to_u64(s, 1, 1024, &v) < 0)
        return usage_error(cmd, "--swf-node-gpus \"%s\" is not a whole number in 1..1024", s);
    *out = (uint32_t)v;
    return 0;
}

static int cmd_analyze(int argc, char **argv)
{
    static const struct option opts[] = {
        {"churn", required_argument, NULL, OPT_CHURN},
        {"workload", required_argument, NULL, OPT_WORKLOAD},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"swf-node-gpus", required_argument, NULL, OPT_SWF_GPUS},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *churn = NULL, *wl = NULL, *format = NULL;
    uint32_t node_gpus = 8;
    bool json = false;
    int o;
    while ((o = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        switch (o) {
        case OPT_CHURN:
            churn = optarg;
            break;
        case OPT_WORKLOAD:
            wl = optarg;
            break;
        case OPT_FORMAT:
            format = optarg;
            break;
        case OPT_SWF_GPUS:
            if (parse_node_gpus("analyze", optarg, &node_gpus))
                return EXIT_USAGE;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            analyze_usage(stdout);
            return EXIT_OK;
        default:
            return bad_option("analyze", o, argv);
        }
    }
    if (optind < argc)
        return usage_error("analyze", "unexpected argument \"%s\"", argv[optind]);
    if (!churn == !wl)
        return usage_error("analyze", "give one of --churn FILE or --workload FILE");
    if (!format)
        format = churn ? "native" : "jsonl";
    if (!format_ok(format, churn != NULL))
        return usage_error("analyze", "--format \"%s\" is not %s", format,
                           churn ? "native or fta" : "jsonl, alibaba or swf");
    mu_error err = {""};
    sbuf out;
    sbuf_init(&out);
    int rc = EXIT_OK;
    if (churn) {
        churn_read_stats st;
        churn_summary s;
        churn_trace *t = load_churn(churn, format, &st, &err);
        if (!t)
            return file_error(&err);
        if (analyze_churn(t, &s, &err) < 0 ||
            (json ? analyze_churn_json(&s, &st, churn, format, &out, &err)
                  : (analyze_churn_text(&s, &st, churn, format, &out), 0)) < 0)
            rc = file_error(&err);
        churn_destroy(t);
    } else {
        workload_read_stats st;
        workload_summary s;
        workload *w = load_workload(wl, format, node_gpus, &st, &err);
        if (!w)
            return file_error(&err);
        if (analyze_workload(w, &s, &err) < 0 ||
            (json ? analyze_workload_json(&s, &st, wl, format, &out, &err)
                  : (analyze_workload_text(&s, &st, wl, format, &out), 0)) < 0)
            rc = file_error(&err);
        workload_destroy(w);
    }
    if (rc == EXIT_OK && sbuf_write_out(&out, NULL, &err) < 0)
        rc = file_error(&err);
    sbuf_free(&out);
    return rc;
}

/* --- generate ----------------------------------------------------------------- */

static void generate_churn_usage(FILE *out)
{
    fprintf(out,
            "Usage: muster-sim generate churn --session DIST --gap DIST [OPTIONS]\n"
            "\n"
            "Write a synthetic churn trace as native CSV (time_s,node,event[,gpu_model,\n"
            "gpu_count,country]). Each node alternates online sessions and offline gaps;\n"
            "it is simulated from before time 0 so the trace starts in equilibrium, and\n"
            "its state at time 0 is the first event. Same options and seed, same bytes.\n"
            "\n"
            "DIST, in hours: exp:MEAN | weibull:SHAPE,SCALE | lognormal:MU,SIGMA (MU and\n"
            "SIGMA of ln hours) | const:VALUE | uniform:LO,HI.\n"
            "MIX: NAME:WEIGHT,NAME:WEIGHT,... (weights are relative).\n"
            "\n"
            "  --session DIST       online session lengths (required)\n"
            "  --gap DIST           offline gap lengths (required)\n"
            "  --nodes N            number of nodes [1000]\n"
            "  --days D             trace length in days [7]\n"
            "  --spoofers FRAC      fraction of nodes that fail verification: a spoof event\n"
            "                       follows their first join [0]\n"
            "  --diurnal A[,PEAK]   daily cycle: the rejoin rate is multiplied by\n"
            "                       1 + A cos(2 pi (local hour - PEAK) / 24), A in [0, 0.95],\n"
            "                       PEAK the local hour of most joins [20]; local hour =\n"
            "                       UTC + the node's country offset [0: no cycle]\n"
            "  --gpus MIX           GPU models, e.g. \"RTX 4090:3,A100 80GB:1\" [unstated]\n"
            "  --gpu-counts MIX     GPUs per node, e.g. \"1:6,2:3,8:1\" [1 with --gpus]\n"
            "  --countries MIX      countries with UTC offsets in hours, as\n"
            "                       CC:WEIGHT[:OFFSET], e.g. \"US:4:-5,DE:3:1,JP:2:9\"\n"
            "                       [unstated, offset 0]\n"
            "  --seed S             random seed [1]\n"
            "  --params FILE        a JSON object of these parameters (names with '_' for\n"
            "                       '-', numbers or strings); flags given too override it\n"
            "  --out FILE           write to FILE (atomically) instead of stdout\n"
            "  -h, --help           this help\n");
}

static void generate_workload_usage(FILE *out)
{
    fprintf(out,
            "Usage: muster-sim generate workload --rate R --duration DIST [OPTIONS]\n"
            "\n"
            "Write a synthetic workload as JSON lines (one cluster request per line:\n"
            "arrival_s, duration_s, workers, gpus_per_worker, gpu_model, region, name,\n"
            "and the tasks when asked for). Arrivals are Poisson. Same options and seed,\n"
            "same bytes.\n"
            "\n"
            "DIST, in hours: exp:MEAN | weibull:SHAPE,SCALE | lognormal:MU,SIGMA | const:V |\n"
            "uniform:LO,HI.\n"
            "MIX: NAME:WEIGHT,... (weights are relative).\n"
            "\n"
            "  --rate R                requests per hour (required)\n"
            "  --duration DIST         request durations (required)\n"
            "  --days D                length of the arrival period [1]\n"
            "  --workers MIX           workers per request, e.g. \"1:6,2:2,8:1\" [1]\n"
            "  --gpus-per-worker MIX   e.g. \"1:3,8:1\" [1]\n"
            "  --models MIX            GPU models, \"any\" for no constraint, e.g.\n"
            "                          \"any:2,RTX 4090:1\" [any]\n"
            "  --regions MIX           regions, \"any\" for no constraint [any]\n"
            "\n"
            "Tasks run in each cluster (written as \"tasks\", \"task_s\", ...; docs/sim.md):\n"
            "  --tasks MIX             tasks per request, 0 allowed, e.g. \"0:1,16:2\" [none]\n"
            "  --task-duration DIST    run time of a task attempt, hours (required with\n"
            "                          --tasks)\n"
            "  --task-gpus MIX         GPUs per task, at most the request's GPUs per\n"
            "                          worker [all of them]\n"
            "  --task-fail P           probability an attempt exits non-zero [0]\n"
            "  --task-retries N        non-zero exits retried per task [0]\n"
            "  --seed S                random seed [1]\n"
            "  --params FILE           a JSON object of these parameters (names with '_'\n"
            "                          for '-'); flags given too override it\n"
            "  --out FILE              write to FILE (atomically) instead of stdout\n"
            "  -h, --help              this help\n");
}

#define MAX_PARAM_FLAGS 16

/* generate churn|workload: flags named after the generator's keys. */
static int cmd_generate(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(argc < 2 ? stderr : stdout,
                "Usage: muster-sim generate churn|workload [OPTIONS] (see --help of each)\n");
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    bool is_churn = strcmp(argv[1], "churn") == 0;
    if (!is_churn && strcmp(argv[1], "workload") != 0)
        return usage_error("generate", "unknown kind \"%s\" (churn or workload)", argv[1]);
    const char *cmd = is_churn ? "generate churn" : "generate workload";
    const char *const *keys = is_churn ? synth_churn_keys : synth_workload_keys;
    struct option opts[MAX_PARAM_FLAGS + 4];
    char names[MAX_PARAM_FLAGS][32];
    size_t nk = 0;
    for (; keys[nk] && nk < MAX_PARAM_FLAGS; nk++) {
        str_copy(names[nk], keys[nk], sizeof(names[nk]));
        for (char *c = names[nk]; *c; c++)
            if (*c == '_')
                *c = '-';
        opts[nk] = (struct option){names[nk], required_argument, NULL, OPT_KEY_BASE + (int)nk};
    }
    opts[nk] = (struct option){"params", required_argument, NULL, OPT_PARAMS};
    opts[nk + 1] = (struct option){"out", required_argument, NULL, OPT_OUT};
    opts[nk + 2] = (struct option){"help", no_argument, NULL, 'h'};
    opts[nk + 3] = (struct option){NULL, 0, NULL, 0};

    /* Collect first: the parameter file applies before the flags, wherever
     * --params appears. */
    struct {
        int key;
        const char *value;
    } given[64];
    size_t ngiven = 0;
    const char *params = NULL, *out_path = NULL;
    int o;
    optind = 0;
    while ((o = getopt_long(argc - 1, argv + 1, "+:h", opts, NULL)) != -1) {
        if (o >= OPT_KEY_BASE && (size_t)(o - OPT_KEY_BASE) < nk) {
            if (ngiven == sizeof(given) / sizeof(given[0]))
                return usage_error(cmd, "too many options");
            given[ngiven].key = o - OPT_KEY_BASE;
            given[ngiven++].value = optarg;
        } else if (o == OPT_PARAMS) {
            params = optarg;
        } else if (o == OPT_OUT) {
            out_path = optarg;
        } else if (o == 'h') {
            (is_churn ? generate_churn_usage : generate_workload_usage)(stdout);
            return EXIT_OK;
        } else {
            return bad_option(cmd, o, argv + 1);
        }
    }
    if (optind < argc - 1)
        return usage_error(cmd, "unexpected argument \"%s\"", argv[1 + optind]);

    mu_error err = {""};
    synth_churn_params cp;
    synth_workload_params wp;
    synth_churn_params_init(&cp);
    synth_workload_params_init(&wp);
    sbuf out;
    sbuf_init(&out);
    int rc = EXIT_OK;
    if (params && (is_churn ? synth_churn_params_load(&cp, params, &err)
                            : synth_workload_params_load(&wp, params, &err)) < 0) {
        rc = file_error(&err);
        goto done;
    }
    for (size_t i = 0; i < ngiven; i++) {
        const char *key = keys[given[i].key];
        if ((is_churn ? synth_churn_params_set(&cp, key, given[i].value, &err)
                      : synth_workload_params_set(&wp, key, given[i].value, &err)) < 0) {
            rc = usage_error(cmd, "--%s: %s", names[given[i].key], err.text);
            goto done;
        }
    }
    if (is_churn) {
        if (!cp.has_session || !cp.has_gap) {
            rc = usage_error(cmd, "--session and --gap are required");
            goto done;
        }
        churn_trace *t = synth_churn_generate(&cp, &err);
        if (!t || churn_write_csv(t, &out, &err) < 0)
            rc = file_error(&err);
        churn_destroy(t);
    } else {
        if (!wp.has_rate || !wp.has_duration) {
            rc = usage_error(cmd, "--rate and --duration are required");
            goto done;
        }
        if (wp.tasks && !wp.has_task_duration) {
            rc = usage_error(cmd, "--tasks needs --task-duration");
            goto done;
        }
        workload *w = synth_workload_generate(&wp, &err);
        if (!w || workload_write_jsonl(w, &out, &err) < 0)
            rc = file_error(&err);
        workload_destroy(w);
    }
    if (rc == EXIT_OK && sbuf_write_out(&out, out_path, &err) < 0)
        rc = file_error(&err);
done:
    synth_churn_params_free(&cp);
    synth_workload_params_free(&wp);
    sbuf_free(&out);
    return rc;
}

/* --- convert -------------------------------------------------------------------- */

static void convert_usage(FILE *out)
{
    fprintf(out, "Usage: muster-sim convert churn --churn FILE [--format native|fta]\n"
                 "                          [--fill-gpus MIX] [--fill-gpu-counts MIX]\n"
                 "                          [--fill-countries MIX] [--seed S] [--out FILE]\n"
                 "       muster-sim convert workload --workload FILE [--format jsonl|alibaba|swf]\n"
                 "                          [--swf-node-gpus N] [--fill-regions MIX] [--seed S]\n"
                 "                          [--out FILE]\n"
                 "\n"
                 "Rewrite a trace in muster's own format (churn: native CSV; workload: JSON\n"
                 "lines), filling in what the trace does not say. A filled value is drawn for\n"
                 "each node (or request) from its own stream of the seed, keyed by its index:\n"
                 "it depends only on the seed, the mix and the index. Values the trace gives\n"
                 "are kept.\n"
                 "\n"
                 "  --fill-gpus MIX        GPU models of nodes without one\n"
                 "  --fill-gpu-counts MIX  GPU counts (\"1:6,8:1\"); 1 where a model was filled\n"
                 "                         and this is not given\n"
                 "  --fill-countries MIX   ISO 3166-1 alpha-2 countries (\"US:4,DE:3\")\n"
                 "  --fill-regions MIX     regions of requests without one (\"europe:1,...\")\n"
                 "  --swf-node-gpus N      swf: GPUs per worker, one GPU per processor [8]\n"
                 "  --seed S               seed of the filled values [1]\n"
                 "  --format, --churn, --workload: as for analyze\n"
                 "  --out FILE             write to FILE (atomically) instead of stdout\n"
                 "  -h, --help             this help\n");
}

static int cmd_convert(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        convert_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    bool is_churn = strcmp(argv[1], "churn") == 0;
    if (!is_churn && strcmp(argv[1], "workload") != 0)
        return usage_error("convert", "unknown kind \"%s\" (churn or workload)", argv[1]);
    const char *cmd = is_churn ? "convert churn" : "convert workload";
    static const struct option opts[] = {
        {"churn", required_argument, NULL, OPT_CHURN},
        {"workload", required_argument, NULL, OPT_WORKLOAD},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"swf-node-gpus", required_argument, NULL, OPT_SWF_GPUS},
        {"fill-gpus", required_argument, NULL, OPT_FILL_GPUS},
        {"fill-gpu-counts", required_argument, NULL, OPT_FILL_COUNTS},
        {"fill-countries", required_argument, NULL, OPT_FILL_COUNTRIES},
        {"fill-regions", required_argument, NULL, OPT_FILL_REGIONS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"out", required_argument, NULL, OPT_OUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *in = NULL, *format = NULL, *out_path = NULL;
    const char *fill_gpus = NULL, *fill_counts = NULL, *fill_countries = NULL, *fill_regions = NULL;
    uint32_t node_gpus = 8;
    uint64_t seed = 1;
    int o;
    optind = 0;
    while ((o = getopt_long(argc - 1, argv + 1, "+:h", opts, NULL)) != -1) {
        switch (o) {
        case OPT_CHURN:
        case OPT_WORKLOAD:
            if ((o == OPT_CHURN) != is_churn)
                return usage_error(cmd, "--%s does not apply here",
                                   o == OPT_CHURN ? "churn" : "workload");
            in = optarg;
            break;
        case OPT_FORMAT:
            format = optarg;
            break;
        case OPT_SWF_GPUS:
            if (parse_node_gpus(cmd, optarg, &node_gpus))
                return EXIT_USAGE;
            break;
        case OPT_FILL_GPUS:
            fill_gpus = optarg;
            break;
        case OPT_FILL_COUNTS:
            fill_counts = optarg;
            break;
        case OPT_FILL_COUNTRIES:
            fill_countries = optarg;
            break;
        case OPT_FILL_REGIONS:
            fill_regions = optarg;
            break;
        case OPT_SEED:
            if (str_to_u64(optarg, 0, UINT64_MAX, &seed) < 0)
                return usage_error(cmd, "--seed \"%s\" is not a whole number >= 0", optarg);
            break;
        case OPT_OUT:
            out_path = optarg;
            break;
        case 'h':
            convert_usage(stdout);
            return EXIT_OK;
        default:
            return bad_option(cmd, o, argv + 1);
        }
    }
    if (optind < argc - 1)
        return usage_error(cmd, "unexpected argument \"%s\"", argv[1 + optind]);
    if (!in)
        return usage_error(cmd, "--%s FILE is required", is_churn ? "churn" : "workload");
    if (!format)
        format = is_churn ? "native" : "jsonl";
    if (!format_ok(format, is_churn))
        return usage_error(cmd, "--format \"%s\" is not %s", format,
                           is_churn ? "native or fta" : "jsonl, alibaba or swf");
    if (is_churn ? fill_regions != NULL : (fill_gpus || fill_counts || fill_countries))
        return usage_error(cmd, "%s",
                           is_churn ? "--fill-regions applies to workloads"
                                    : "--fill-gpus, --fill-gpu-counts and "
                                      "--fill-countries apply to churn traces");
    mu_error err = {""};
    mix *gm = NULL, *cm = NULL, *km = NULL, *rm = NULL;
    int rc = EXIT_OK;
    sbuf out;
    sbuf_init(&out);
    if ((fill_gpus && !(gm = mix_parse(fill_gpus, false, "--fill-gpus", &err))) ||
        (fill_counts && !(cm = mix_parse_counts(fill_counts, 1024, "--fill-gpu-counts", &err))) ||
        (fill_countries && !(km = mix_parse(fill_countries, false, "--fill-countries", &err))) ||
        (fill_regions && !(rm = mix_parse(fill_regions, false, "--fill-regions", &err)))) {
        rc = usage_error(cmd, "%s", err.text);
        goto done;
    }
    if (is_churn) {
        churn_trace *t = load_churn(in, format, NULL, &err);
        if (!t || synth_fill_nodes(t, gm, cm, km, seed, &err) < 0 ||
            churn_write_csv(t, &out, &err) < 0)
            rc = file_error(&err);
        churn_destroy(t);
    } else {
        workload *w = load_workload(in, format, node_gpus, NULL, &err);
        if (!w || synth_fill_regions(w, rm, seed, &err) < 0 ||
            workload_write_jsonl(w, &out, &err) < 0)
            rc = file_error(&err);
        workload_destroy(w);
    }
    if (rc == EXIT_OK && sbuf_write_out(&out, out_path, &err) < 0)
        rc = file_error(&err);
done:
    mix_destroy(gm);
    mix_destroy(cm);
    mix_destroy(km);
    mix_destroy(rm);
    sbuf_free(&out);
    return rc;
}

/* --- run --------------------------------------------------------------------------- */

static void run_usage(FILE *out)
{
    fprintf(out,
            "Usage: muster-sim run --churn FILE [--workload FILE] [OPTIONS]\n"
            "\n"
            "Replay a churn trace and a workload against the scheduler core in virtual\n"
            "time: workers join and leave as the churn trace says, cluster requests arrive\n"
            "as the workload says, and the core matches, degrades and reroutes them as\n"
            "musterd would. Prints a summary; writes reports on request. Same inputs and\n"
            "seed, same bytes. See docs/sim.md.\n"
            "\n"
            "Inputs:\n"
            "  --churn FILE            churn trace (required)\n"
            "  --churn-format F        native (CSV, default) or fta\n"
            "  --workload FILE         cluster requests [none]\n"
            "  --workload-format F     jsonl (default), alibaba or swf\n"
            "  --swf-node-gpus N       swf: GPUs per worker, one GPU per processor [8]\n"
            "  --data-dir DIR          where gpus.json and regions.json are [%s]\n"
            "\n"
            "What traces lack (drawn per node or request from the seed):\n"
            "  --fill-gpus MIX         GPU models of nodes without one\n"
            "                          [\"" ENGINE_DEFAULT_GPUS "\"]\n"
            "  --fill-gpu-counts MIX   GPUs per node [\"" ENGINE_DEFAULT_GPU_COUNTS "\"]\n"
            "  --fill-countries MIX    countries [\"" ENGINE_DEFAULT_COUNTRIES "\"]\n"
            "  --fill-tiers MIX        bandwidth tiers [\"" ENGINE_DEFAULT_TIERS "\"]\n"
            "  --fill-regions MIX      regions of requests without one [any region]\n"
            "\n"
            "Model:\n"
            "  --policy P              placement of every request: pack, spread or\n"
            "                          as-requested [as-requested; pack when not named]\n"
            "  --seed S                random seed [1]\n"
            "  --heartbeat-ms MS       agents' heartbeat interval [1000]\n"
            "  --liveness N            intervals before a failed worker is offline [3]\n"
            "  --keepalive S           how often the simulator refreshes a live worker\n"
            "                          in the core (and its uptime) [3600]\n"
            "  --goodbye FRAC          share of leaves that are clean goodbyes; the rest\n"
            "                          are failures [0]\n"
            "  --ack-delay DIST        seconds from a join notice to the acknowledgement\n"
            "                          [const:2]\n"
            "  --min-tier T            lowest bandwidth tier of every request [low]\n"
            "  --provision-timeout S   members must acknowledge within [30]\n"
            "  --max-hours N           longest cluster the core accepts [2160]\n"
            "  --reroute-retry-ms MS   how often the core retries a vacant seat [1000]\n"
            "  --tasks-per-worker      requests without tasks get one task per worker, with\n"
            "                          all its GPUs, running the request's duration (for\n"
            "                          Alibaba and SWF traces)\n"
            "\n"
            "Verification (off by default: every worker counts as verified, spoof events\n"
            "are ignored, and replays stay fast; docs/sim.md):\n"
            "  --verify                run the core's proof-of-work verification, the agents\n"
            "                          answering challenges in virtual time\n"
            "  --spoofers FRAC         share of nodes that spoof from their first join, as\n"
            "                          well as those of spoof events [0]\n"
            "  --spoofer-speed DIST    a spoofer's speed, x its claim, drawn per node\n"
            "                          [" ENGINE_DEFAULT_SPOOFER_SPEED "]\n"
            "  --honest-speed DIST     an honest agent's speed per check, x its claim\n"
            "                          [" ENGINE_DEFAULT_HONEST_SPEED "]\n"
            "  --rtt-ms DIST           round trip of a link, milliseconds\n"
            "                          [" ENGINE_DEFAULT_RTT_MS "]\n"
            "  --jittery FRAC          share of nodes on a jittery link [0]\n"
            "  --jitter-rtt-ms DIST    their round trip, milliseconds\n"
            "                          [" ENGINE_DEFAULT_JITTER_RTT_MS "]\n"
            "  --verify-scale U        pow units per TFLOPS-second [automatic: the least\n"
            "                          powerful GPU of the fleet gets one round of work]\n"
            "  --verify-light S        light checks of hired workers every S seconds, 0 none\n"
            "                          [0; musterd's default is 600]\n"
            "  --reverify S            full checks of free workers every S seconds [21600]\n"
            "\n"
            "Output:\n"
            "  --interval S            time series step [3600]\n"
            "  --until S               stop at this virtual time [the end of the traces]\n"
            "  --report-json FILE      summary (JSON)\n"
            "  --report-csv FILE       time series (CSV, one row per interval)\n"
            "  --report-html FILE      both, as one self-contained HTML page with charts\n"
            "  --check                 check the core's invariants at the end\n"
            "  --quiet                 no progress on stderr\n"
            "  -h, --help              this help\n",
            MUSTER_DATA_DIR);
}

/* Progress every few seconds of wall time; the shell may read the clock,
 * the engine and the core do not. */
typedef struct run_progress {
    bool quiet;
    bool printed;
    double start, last;
} run_progress;

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_progress(void *arg, const engine_progress *p)
{
    run_progress *rp = arg;
    double now = wall_s();
    if (rp->quiet || (!p->done && now - rp->last < 2.0) || (p->done && !rp->printed))
        return;
    rp->last = now;
    rp->printed = true;
    double el = now - rp->start;
    fprintf(stderr,
            "muster-sim: %s%.3gM events (and %.3gM keep-alive touches), virtual %.1f of %.1f "
            "days (%.0f%%), %.3gM events/s\n",
            p->done ? "done: " : "", (double)p->events / 1e6, (double)p->touches / 1e6,
            (double)p->now_ms / 86.4e6, (double)p->end_ms / 86.4e6,
            p->end_ms ? 100.0 * (double)p->now_ms / (double)p->end_ms : 100.0,
            el > 0 ? (double)p->events / el / 1e6 : 0.0);
}

enum {
    OPT_CHURN_FORMAT = 3000,
    OPT_WL_FORMAT,
    OPT_DATA_DIR,
    OPT_FILL_TIERS,
    OPT_POLICY,
    OPT_HB,
    OPT_LIVENESS,
    OPT_KEEPALIVE,
    OPT_GOODBYE,
    OPT_ACK,
    OPT_MIN_TIER,
    OPT_PROV,
    OPT_MAX_HOURS,
    OPT_RETRY,
    OPT_INTERVAL,
    OPT_UNTIL,
    OPT_JSON_OUT,
    OPT_CSV_OUT,
    OPT_HTML_OUT,
    OPT_CHECK,
    OPT_QUIET,
    OPT_TASKS_PER_WORKER,
    OPT_VERIFY,
    OPT_SPOOFERS,
    OPT_SPOOFER_SPEED,
    OPT_HONEST_SPEED,
    OPT_RTT,
    OPT_JITTERY,
    OPT_JITTER_RTT,
    OPT_VERIFY_SCALE,
    OPT_VERIFY_LIGHT,
    OPT_REVERIFY,
};

static int u32_flag(const char *flag, const char *v, uint64_t min, uint64_t max, uint32_t *out)
{
    uint64_t x;
    if (str_to_u64(v, min, max, &x) < 0)
        return usage_error("run", "%s \"%s\" is not a whole number in %llu..%llu", flag, v,
                           (unsigned long long)min, (unsigned long long)max);
    *out = (uint32_t)x;
    return 0;
}

/* Seconds, as a number in [min, max], to milliseconds. */
static int secs_flag(const char *flag, const char *v, double min, double max, uint64_t *out_ms)
{
    double x;
    if (str_to_double(v, &x) < 0 || !(x >= min && x <= max))
        return usage_error("run", "%s \"%s\" is not a number of seconds in [%g, %g]", flag, v, min,
                           max);
    *out_ms = (uint64_t)llround(x * 1000.0);
    return 0;
}

static int write_report(const sim_report *r, const char *path,
                        int (*writer)(const sim_report *, sbuf *, mu_error *), mu_error *err)
{
    if (!path)
        return 0;
    sbuf b;
    sbuf_init(&b);
    int rc = writer(r, &b, err) < 0 || sbuf_write_out(&b, path, err) < 0 ? -1 : 0;
    sbuf_free(&b);
    return rc;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"churn", required_argument, NULL, OPT_CHURN},
        {"churn-format", required_argument, NULL, OPT_CHURN_FORMAT},
        {"workload", required_argument, NULL, OPT_WORKLOAD},
        {"workload-format", required_argument, NULL, OPT_WL_FORMAT},
        {"swf-node-gpus", required_argument, NULL, OPT_SWF_GPUS},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"fill-gpus", required_argument, NULL, OPT_FILL_GPUS},
        {"fill-gpu-counts", required_argument, NULL, OPT_FILL_COUNTS},
        {"fill-countries", required_argument, NULL, OPT_FILL_COUNTRIES},
        {"fill-tiers", required_argument, NULL, OPT_FILL_TIERS},
        {"fill-regions", required_argument, NULL, OPT_FILL_REGIONS},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"seed", required_argument, NULL, OPT_SEED},
        {"heartbeat-ms", required_argument, NULL, OPT_HB},
        {"liveness", required_argument, NULL, OPT_LIVENESS},
        {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
        {"goodbye", required_argument, NULL, OPT_GOODBYE},
        {"ack-delay", required_argument, NULL, OPT_ACK},
        {"min-tier", required_argument, NULL, OPT_MIN_TIER},
        {"provision-timeout", required_argument, NULL, OPT_PROV},
        {"max-hours", required_argument, NULL, OPT_MAX_HOURS},
        {"reroute-retry-ms", required_argument, NULL, OPT_RETRY},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"report-json", required_argument, NULL, OPT_JSON_OUT},
        {"report-csv", required_argument, NULL, OPT_CSV_OUT},
        {"report-html", required_argument, NULL, OPT_HTML_OUT},
        {"check", no_argument, NULL, OPT_CHECK},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"tasks-per-worker", no_argument, NULL, OPT_TASKS_PER_WORKER},
        {"verify", no_argument, NULL, OPT_VERIFY},
        {"spoofers", required_argument, NULL, OPT_SPOOFERS},
        {"spoofer-speed", required_argument, NULL, OPT_SPOOFER_SPEED},
        {"honest-speed", required_argument, NULL, OPT_HONEST_SPEED},
        {"rtt-ms", required_argument, NULL, OPT_RTT},
        {"jittery", required_argument, NULL, OPT_JITTERY},
        {"jitter-rtt-ms", required_argument, NULL, OPT_JITTER_RTT},
        {"verify-scale", required_argument, NULL, OPT_VERIFY_SCALE},
        {"verify-light", required_argument, NULL, OPT_VERIFY_LIGHT},
        {"reverify", required_argument, NULL, OPT_REVERIFY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    engine_config cfg;
    engine_config_init(&cfg);
    const char *churn_path = NULL, *wl_path = NULL, *cfmt = "native", *wfmt = "jsonl";
    const char *data_dir = MUSTER_DATA_DIR;
    const char *fill[5] = {NULL}; /* gpus, counts, countries, tiers, regions */
    const char *json_out = NULL, *csv_out = NULL, *html_out = NULL;
    uint32_t node_gpus = 8;
    bool check = false, tasks_per_worker = false;
    const char *verify_flag = NULL; /* a verification option, which needs --verify */
    run_progress rp = {0};
    uint64_t ms;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        switch (o) {
        case OPT_CHURN:
            churn_path = optarg;
            break;
        case OPT_CHURN_FORMAT:
            cfmt = optarg;
            if (!format_ok(cfmt, true))
                return usage_error("run", "--churn-format \"%s\" is not native or fta", cfmt);
            break;
        case OPT_WORKLOAD:
            wl_path = optarg;
            break;
        case OPT_WL_FORMAT:
            wfmt = optarg;
            if (!format_ok(wfmt, false))
                return usage_error("run", "--workload-format \"%s\" is not jsonl, alibaba or swf",
                                   wfmt);
            break;
        case OPT_SWF_GPUS:
            if (parse_node_gpus("run", optarg, &node_gpus))
                return EXIT_USAGE;
            break;
        case OPT_DATA_DIR:
            data_dir = optarg;
            break;
        case OPT_FILL_GPUS:
        case OPT_FILL_COUNTS:
        case OPT_FILL_COUNTRIES:
            fill[o - OPT_FILL_GPUS] = optarg;
            break;
        case OPT_FILL_TIERS:
            fill[3] = optarg;
            break;
        case OPT_FILL_REGIONS:
            fill[4] = optarg;
            break;
        case OPT_POLICY:
            if (engine_policy_parse(optarg, &cfg.policy) < 0)
                return usage_error("run", "--policy \"%s\" is not pack, spread or as-requested",
                                   optarg);
            break;
        case OPT_SEED:
            if (str_to_u64(optarg, 0, UINT64_MAX, &cfg.seed) < 0)
                return usage_error("run", "--seed \"%s\" is not a whole number >= 0", optarg);
            break;
        case OPT_HB:
            if (u32_flag("--heartbeat-ms", optarg, 10, 600000, &cfg.heartbeat_ms))
                return EXIT_USAGE;
            break;
        case OPT_LIVENESS:
            if (u32_flag("--liveness", optarg, 2, 100, &cfg.liveness))
                return EXIT_USAGE;
            break;
        case OPT_KEEPALIVE:
            if (secs_flag("--keepalive", optarg, 60, 40 * 86400.0, &ms))
                return EXIT_USAGE;
            cfg.keepalive_ms = (uint32_t)ms;
            break;
        case OPT_GOODBYE:
            if (str_to_double(optarg, &cfg.goodbye) < 0 || !(cfg.goodbye >= 0 && cfg.goodbye <= 1))
                return usage_error("run", "--goodbye \"%s\" is not a fraction in [0, 1]", optarg);
            break;
        case OPT_ACK: {
            mu_error err;
            if (dist_parse(optarg, &cfg.ack_delay, &err) < 0)
                return usage_error("run", "--ack-delay: %s", err.text);
            break;
        }
        case OPT_MIN_TIER:
            if (tier_parse(optarg, &cfg.min_tier) < 0 || cfg.min_tier == TIER_NONE)
                return usage_error("run", "--min-tier \"%s\" is not low, medium, high or ultra",
                                   optarg);
            break;
        case OPT_PROV:
            if (secs_flag("--provision-timeout", optarg, 1, 86400, &ms))
                return EXIT_USAGE;
            cfg.provision_timeout_ms = (uint32_t)ms;
            break;
        case OPT_MAX_HOURS:
            if (u32_flag("--max-hours", optarg, 1, 24u * 365u * 100u, &cfg.max_hours))
                return EXIT_USAGE;
            break;
        case OPT_RETRY:
            if (u32_flag("--reroute-retry-ms", optarg, 10, 86400000, &cfg.reroute_retry_ms))
                return EXIT_USAGE;
            break;
        case OPT_INTERVAL:
            if (secs_flag("--interval", optarg, 1, 365 * 86400.0, &cfg.interval_ms))
                return EXIT_USAGE;
            break;
        case OPT_UNTIL:
            if (secs_flag("--until", optarg, 0.001, 1e12, &cfg.until_ms))
                return EXIT_USAGE;
            break;
        case OPT_JSON_OUT:
            json_out = optarg;
            break;
        case OPT_CSV_OUT:
            csv_out = optarg;
            break;
        case OPT_HTML_OUT:
            html_out = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_QUIET:
            rp.quiet = true;
            break;
        case OPT_TASKS_PER_WORKER:
            tasks_per_worker = true;
            break;
        case OPT_VERIFY:
            cfg.verify = true;
            break;
        case OPT_SPOOFERS:
        case OPT_JITTERY: {
            double *f = o == OPT_SPOOFERS ? &cfg.spoofers : &cfg.jittery;
            verify_flag = o == OPT_SPOOFERS ? "--spoofers" : "--jittery";
            if (str_to_double(optarg, f) < 0 || !(*f >= 0 && *f <= 1))
                return usage_error("run", "%s \"%s\" is not a fraction in [0, 1]", verify_flag,
                                   optarg);
            break;
        }
        case OPT_SPOOFER_SPEED:
        case OPT_HONEST_SPEED:
        case OPT_RTT:
        case OPT_JITTER_RTT: {
            dist *d = o == OPT_SPOOFER_SPEED  ? &cfg.spoofer_speed
                      : o == OPT_HONEST_SPEED ? &cfg.honest_speed
                      : o == OPT_RTT          ? &cfg.rtt_ms
                                              : &cfg.jitter_rtt_ms;
            mu_error err;
            verify_flag = o == OPT_SPOOFER_SPEED  ? "--spoofer-speed"
                          : o == OPT_HONEST_SPEED ? "--honest-speed"
                          : o == OPT_RTT          ? "--rtt-ms"
                                                  : "--jitter-rtt-ms";
            if (dist_parse(optarg, d, &err) < 0)
                return usage_error("run", "%s: %s", verify_flag, err.text);
            break;
        }
        case OPT_VERIFY_SCALE:
            verify_flag = "--verify-scale";
            if (str_to_double(optarg, &cfg.verify_scale) < 0 ||
                !(cfg.verify_scale > 0 && cfg.verify_scale <= 1e12))
                return usage_error("run", "--verify-scale \"%s\" is not a number in (0, 1e12]",
                                   optarg);
            break;
        case OPT_VERIFY_LIGHT:
            verify_flag = "--verify-light";
            if (secs_flag("--verify-light", optarg, 0, 86400, &ms))
                return EXIT_USAGE;
            cfg.verify_light_ms = (uint32_t)ms;
            break;
        case OPT_REVERIFY:
            verify_flag = "--reverify";
            if (secs_flag("--reverify", optarg, 1, 30 * 86400.0, &ms))
                return EXIT_USAGE;
            cfg.verify_reverify_ms = (uint32_t)ms;
            break;
        case 'h':
            run_usage(stdout);
            return EXIT_OK;
        default:
            return bad_option("run", o, argv);
        }
    }
    if (optind < argc)
        return usage_error("run", "unexpected argument \"%s\"", argv[optind]);
    if (!churn_path)
        return usage_error("run", "--churn FILE is required");
    if (verify_flag && !cfg.verify)
        return usage_error("run", "%s needs --verify", verify_flag);
    if ((uint64_t)cfg.keepalive_ms * 2 < (uint64_t)cfg.heartbeat_ms * cfg.liveness)
        return usage_error("run", "--keepalive must be at least half of heartbeat x liveness");

    static const char *const fill_flags[] = {"--fill-gpus", "--fill-gpu-counts", "--fill-countries",
                                             "--fill-tiers", "--fill-regions"};
    mix *mixes[5] = {NULL};
    mu_error err = {""};
    int rc = EXIT_OK;
    catalog *cat = NULL;
    region_table *regions = NULL;
    churn_trace *churn = NULL;
    workload *wl = NULL;
    engine *e = NULL;
    tier_table tiers;
    tiers_default(&tiers);
    for (int i = 0; i < 5; i++) {
        if (!fill[i])
            continue;
        mixes[i] = i == 1 ? mix_parse_counts(fill[i], WORKER_MAX_DEVICES, fill_flags[i], &err)
                          : mix_parse(fill[i], false, fill_flags[i], &err);
        if (!mixes[i]) {
            rc = usage_error("run", "%s", err.text);
            goto done;
        }
    }
    for (size_t k = 0; mixes[3] && k < mix_count(mixes[3]); k++) {
        tier t;
        if (tier_parse(mix_name(mixes[3], k), &t) < 0) {
            rc = usage_error("run", "--fill-tiers: \"%s\" is not none, low, medium, high or ultra",
                             mix_name(mixes[3], k));
            goto done;
        }
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/gpus.json", data_dir);
    if (!(cat = catalog_load_file(path, &err))) {
        rc = file_error(&err);
        goto done;
    }
    snprintf(path, sizeof(path), "%s/regions.json", data_dir);
    if (!(regions = regions_load_file(path, &err))) {
        rc = file_error(&err);
        goto done;
    }
    if (!(churn = load_churn(churn_path, cfmt, NULL, &err)) ||
        (wl_path && !(wl = load_workload(wl_path, wfmt, node_gpus, NULL, &err)))) {
        rc = file_error(&err);
        goto done;
    }
    if (wl && tasks_per_worker)
        workload_tasks_per_worker(wl);
    cfg.cat = cat;
    cfg.regions = regions;
    cfg.tiers = &tiers;
    cfg.fill_gpus = mixes[0];
    cfg.fill_gpu_counts = mixes[1];
    cfg.fill_countries = mixes[2];
    cfg.fill_tiers = mixes[3];
    cfg.fill_regions = mixes[4];
    cfg.churn_source = churn_path;
    cfg.churn_format = cfmt;
    cfg.workload_source = wl_path ? wl_path : "";
    cfg.workload_format = wl_path ? wfmt : "";
    cfg.progress = on_progress;
    cfg.progress_arg = &rp;
    rp.start = rp.last = wall_s();
    if (!(e = engine_create(&cfg, churn, wl, &err)) || engine_run(e, &err) < 0) {
        rc = file_error(&err);
        goto done;
    }
    if (check && sched_check(engine_sched(e), &err) < 0) {
        errprefix(&err, "core invariant broken at the end of the replay");
        rc = file_error(&err);
        goto done;
    }
    const sim_report *r = engine_report(e);
    if (write_report(r, json_out, report_json, &err) < 0 ||
        write_report(r, csv_out, report_csv, &err) < 0 ||
        write_report(r, html_out, report_html, &err) < 0) {
        rc = file_error(&err);
        goto done;
    }
    sbuf out;
    sbuf_init(&out);
    report_text(r, &out);
    if (sbuf_write_out(&out, NULL, &err) < 0)
        rc = file_error(&err);
    sbuf_free(&out);
done:
    engine_destroy(e);
    churn_destroy(churn);
    workload_destroy(wl);
    regions_destroy(regions);
    catalog_destroy(cat);
    for (int i = 0; i < 5; i++)
        mix_destroy(mixes[i]);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("muster-sim %s\n", MUSTER_VERSION);
        return EXIT_OK;
    }
    opterr = 0;
    optind = 0;
    pow_init(); /* the fastest BLAKE2b for the proofs of --verify; correct without */
    if (strcmp(cmd, "analyze") == 0)
        return cmd_analyze(argc - 1, argv + 1);
    if (strcmp(cmd, "generate") == 0)
        return cmd_generate(argc - 1, argv + 1);
    if (strcmp(cmd, "convert") == 0)
        return cmd_convert(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    return usage_error("", "unknown command \"%s\"", cmd);
}
