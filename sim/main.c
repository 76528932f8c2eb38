/* main.c - the `muster-sim` command: trace analysis, synthetic traces and
 * trace conversion. (Replaying traces against the scheduler core is the
 * next part of the simulator and not here yet.)
 *
 * Exit status, for scripts:
 *   0  success
 *   1  a file could not be read, was malformed, or the output not written
 *   2  bad usage (unknown command or flag, bad or missing value)
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze.h"
#include "churn_io.h"
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
                 "The muster simulator's trace tools: read real churn and workload traces,\n"
                 "summarise them, generate synthetic ones, convert them to muster's own formats.\n"
                 "\n"
                 "Commands:\n"
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
            "SIGMA of ln hours) | const:VALUE.\n"
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
    fprintf(out, "Usage: muster-sim generate workload --rate R --duration DIST [OPTIONS]\n"
                 "\n"
                 "Write a synthetic workload as JSON lines (one cluster request per line:\n"
                 "arrival_s, duration_s, workers, gpus_per_worker, gpu_model, region, name).\n"
                 "Arrivals are Poisson. Same options and seed, same bytes.\n"
                 "\n"
                 "DIST, in hours: exp:MEAN | weibull:SHAPE,SCALE | lognormal:MU,SIGMA | const:V.\n"
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
    if (strcmp(cmd, "analyze") == 0)
        return cmd_analyze(argc - 1, argv + 1);
    if (strcmp(cmd, "generate") == 0)
        return cmd_generate(argc - 1, argv + 1);
    if (strcmp(cmd, "convert") == 0)
        return cmd_convert(argc - 1, argv + 1);
    return usage_error("", "unknown command \"%s\"", cmd);
}
