/* main.c - the `muster` command: a thin layer over the client library.
 *
 * Exit status, for scripts:
 *   0  success
 *   1  the broker answered with an error (not found, bad request, ...)
 *   2  bad usage (unknown command or flag, bad value)
 *   3  the broker could not be reached (no reply within --timeout)
 *   4  the request cannot be met now (quote, cluster create, task submit):
 *      the broker's explanation (and the nearest requests that would
 *      succeed) are shown
 *   5  `task wait` (or `task submit --wait`) ran out of time first; 1 is a
 *      task that failed, 2 bad usage, so a script can tell the three apart
 * 130 interrupted (Ctrl-C) while `cluster create --wait` or `task wait` was
 *      waiting
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "format.h"
#include "muster/client.h"
#include "strutil.h"
#include "taskgraph.h"
#include "wire.h"

enum {
    EXIT_OK = 0,
    EXIT_REMOTE = 1,
    EXIT_USAGE = 2,
    EXIT_UNREACHABLE = 3,
    EXIT_NOT_MET = 4,
    EXIT_WAIT_TIMEOUT = 5,
    EXIT_INTERRUPTED = 130,
};

typedef struct cli {
    const char *broker;
    const char *events; /* event endpoint; NULL: ask the broker (status) */
    int timeout_ms;
    bool json;
} cli;

#define EXIT_CODES_HELP                                                                            \
    "Exit status: 0 success, 1 the broker answered with an error, 2 bad usage,\n"                  \
    "3 the broker could not be reached, 4 the request cannot be met now.\n"

static void usage(FILE *out)
{
    fprintf(out, "Usage: muster [GLOBAL OPTIONS] COMMAND [ARGS]\n"
                 "\n"
                 "Talk to a muster broker (musterd): see the fleet, rent clusters, run\n"
                 "tasks on them.\n"
                 "\n"
                 "Commands:\n"
                 "  workers [--state S] [--region R] [--gpu MODEL]\n"
                 "                         list workers (id, host, GPUs, region, tier, price,\n"
                 "                         uptime, state, last seen); S is online, suspect or\n"
                 "                         offline\n"
                 "  workers show ID        one worker in detail (ID may be a unique prefix of\n"
                 "                         at least 4 characters)\n"
                 "  status                 the broker's version, uptime, fleet and counters\n"
                 "  search [FILTERS]       free workers now, by model, region and tier\n"
                 "  quote REQUEST          what a cluster would get and cost now (reserves\n"
                 "                         nothing)\n"
                 "  cluster create REQUEST --hours N [--wait]\n"
                 "                         rent a cluster; prints its id\n"
                 "  cluster list           your clusters (all, or by --state / --owner)\n"
                 "  cluster show ID        one cluster: request, members, price, history\n"
                 "  cluster extend ID --hours N\n"
                 "  cluster shrink ID      give up seats no replacement could fill\n"
                 "  cluster release ID     end it now and free its workers\n"
                 "  cluster watch ID       stream its events until it ends\n"
                 "  task submit --cluster ID [OPTIONS] -- CMD [ARGS...]\n"
                 "                         run a command on a member; prints the task's id,\n"
                 "                         CLUSTER/NUMBER\n"
                 "  task submit --file GRAPH [--cluster ID]\n"
                 "                         submit a graph of tasks from a JSON file\n"
                 "  task list --cluster ID a cluster's tasks and their counts by state\n"
                 "  task show TASK         one task: command, state, attempts, exit, result\n"
                 "  task logs TASK [--follow]\n"
                 "                         its output\n"
                 "  task wait [--cluster ID] [TASK...] [--timeout S]\n"
                 "                         wait until tasks are over (exit 0: all succeeded)\n"
                 "  task cancel TASK       stop a task; the tasks after it fail\n"
                 "REQUEST is --gpu MODEL and --workers N or --total-gpus N, plus optional\n"
                 "constraints: see `muster quote --help`. TASK is CLUSTER/NUMBER: see\n"
                 "`muster task --help`.\n"
                 "\n"
                 "Global options (also accepted after the command):\n"
                 "  -b, --broker EP        broker's client endpoint [$MUSTER_BROKER, else\n"
                 "                         tcp://127.0.0.1:7701]\n"
                 "  -t, --timeout MS       how long to wait for each reply of the broker\n"
                 "                         [5000] (after `cluster watch`, `task submit` and\n"
                 "                         `task wait`, --timeout is theirs, in seconds)\n"
                 "      --events EP        broker's event endpoint [$MUSTER_EVENTS, else the\n"
                 "                         one `muster status` shows]\n"
                 "  -j, --json             machine-readable output (errors too, on stdout)\n"
                 "  -h, --help             show this help (or a command's: muster workers --help)\n"
                 "      --version          show the version\n"
                 "\n" EXIT_CODES_HELP
                 "After waiting for tasks: 1 a task failed, 5 timed out, 130 interrupted.\n");
}

/* Report a failed call; returns the exit status it deserves. */
static int fail(const cli *c, const mu_error *err, Muster__Status status)
{
    int code = errno == ETIMEDOUT ? EXIT_UNREACHABLE : EXIT_REMOTE;
    const char *st = errno == ETIMEDOUT ? "unreachable" : wire_status_name(status);
    if (errno == EPROTO)
        st = "protocol_error";
    if (c->json)
        format_error_json(stdout, st, err->text);
    fprintf(stderr, "muster: %s\n", err->text);
    return code;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "muster: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see muster --help)\n");
    va_end(ap);
    return EXIT_USAGE;
}

static muster_client *connect_or_fail(const cli *c, int *code)
{
    mu_error err;
    muster_client *mc = muster_client_create(c->broker, c->timeout_ms, &err);
    if (!mc) {
        /* libzmq refused the endpoint itself: that is bad usage. */
        if (c->json)
            format_error_json(stdout, "bad_usage", err.text);
        *code = usage_error("--broker %s: %s", c->broker, err.text);
    }
    return mc;
}

/* Global options are accepted after the command too: take them out of the
 * command's arguments, up to a "--" (what follows it, such as the command
 * of `task submit`, is left alone). Returns 0, or an exit status on a bad
 * value. */
static int take_globals(cli *c, int *argc, char **argv, bool timeout_is_local)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (!strcmp(a, "--")) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        int is_broker = !strcmp(a, "--broker") || !strcmp(a, "-b");
        int is_events = !strcmp(a, "--events");
        int is_timeout = !timeout_is_local && (!strcmp(a, "--timeout") || !strcmp(a, "-t"));
        if (!strncmp(a, "--broker=", 9)) {
            is_broker = 1;
            val = a + 9;
        } else if (!strncmp(a, "--events=", 9)) {
            is_events = 1;
            val = a + 9;
        } else if (!timeout_is_local && !strncmp(a, "--timeout=", 10)) {
            is_timeout = 1;
            val = a + 10;
        } else if (is_broker || is_timeout || is_events) {
            if (i + 1 >= *argc)
                return usage_error("%s needs a value", a);
            val = argv[++i];
        }
        if (is_broker) {
            c->broker = val;
        } else if (is_events) {
            c->events = val;
        } else if (is_timeout) {
            uint64_t v;
            if (str_to_u64(val, 1, 3600000, &v) < 0)
                return usage_error("--timeout \"%s\" is not a number of milliseconds "
                                   "(1..3600000)",
                                   val);
            c->timeout_ms = (int)v;
        } else if (!strcmp(a, "--json") || !strcmp(a, "-j")) {
            c->json = true;
        } else {
            argv[out++] = argv[i];
        }
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

/* A request the CLI sends: call the broker, then show the reply. */
typedef int (*call_fn)(muster_client *mc, const void *arg, Muster__Envelope **reply,
                       Muster__Status *status, mu_error *errp);
typedef void (*show_fn)(const cli *c, const Muster__Envelope *reply);

/* Connect, call, show, disconnect: returns the exit status. */
static int run(const cli *c, call_fn call, const void *arg, show_fn show)
{
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    Muster__Envelope *reply;
    Muster__Status st;
    mu_error err;
    if (call(mc, arg, &reply, &st, &err) < 0) {
        code = fail(c, &err, st);
    } else {
        show(c, reply);
        wire_free(reply);
    }
    muster_client_destroy(mc);
    return code;
}

static int call_get_worker(muster_client *mc, const void *id, Muster__Envelope **reply,
                           Muster__Status *st, mu_error *errp)
{
    return muster_get_worker(mc, id, reply, st, errp);
}

static void show_worker(const cli *c, const Muster__Envelope *reply)
{
    if (c->json)
        format_worker_json(stdout, reply->get_worker_reply->worker);
    else
        format_worker_detail(stdout, reply->get_worker_reply->worker);
}

static int call_list_workers(muster_client *mc, const void *q, Muster__Envelope **reply,
                             Muster__Status *st, mu_error *errp)
{
    return muster_list_workers(mc, q, reply, st, errp);
}

static void show_workers(const cli *c, const Muster__Envelope *reply)
{
    if (c->json)
        format_workers_json(stdout, reply->list_workers_reply);
    else
        format_workers_table(stdout, reply->list_workers_reply);
}

static int call_status(muster_client *mc, const void *unused, Muster__Envelope **reply,
                       Muster__Status *st, mu_error *errp)
{
    (void)unused;
    return muster_broker_status(mc, reply, st, errp);
}

static void show_status(const cli *c, const Muster__Envelope *reply)
{
    if (c->json)
        format_status_json(stdout, reply->broker_status_reply);
    else
        format_status(stdout, reply->broker_status_reply);
}

static int cmd_workers(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", required_argument, NULL, 's'},
        {"region", required_argument, NULL, 'r'},
        {"gpu", required_argument, NULL, 'g'},
        {"limit", required_argument, NULL, 'l'},
        {"offset", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    Muster__ListWorkersRequest q = MUSTER__LIST_WORKERS_REQUEST__INIT;
    int o;
    uint64_t v;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "+s:r:g:l:o:h", opts, NULL)) != -1) {
        switch (o) {
        case 'l':
            if (str_to_u64(optarg, 1, 10000, &v) < 0)
                return usage_error("--limit \"%s\" is not 1..10000", optarg);
            q.limit = (uint32_t)v;
            break;
        case 'o':
            if (str_to_u64(optarg, 0, UINT32_MAX, &v) < 0)
                return usage_error("--offset \"%s\" is not a count", optarg);
            q.offset = (uint32_t)v;
            break;
        case 's':
            if (strcmp(optarg, "online") && strcmp(optarg, "suspect") && strcmp(optarg, "offline"))
                return usage_error("--state \"%s\" is not online, suspect or offline", optarg);
            q.state = optarg;
            break;
        case 'r':
            q.region = optarg;
            break;
        case 'g':
            q.gpu_model = optarg;
            break;
        case 'h':
            printf("Usage: muster workers [--state S] [--region R] [--gpu MODEL]\n"
                   "                      [--limit N] [--offset N] [--json]\n"
                   "       muster workers show ID [--json]\n"
                   "List the broker's workers (at most --limit, default 1000, in registration\n"
                   "order, after skipping --offset), or show one (ID: a unique prefix of at\n"
                   "least 4 characters). S is online, suspect or offline. Prices are USD per\n"
                   "GPU hour; uptime is the rolling fraction of time online (0..1).\n"
                   "\n" EXIT_CODES_HELP);
            return EXIT_OK;
        default:
            return usage_error("workers: unknown option or missing value in \"%s\"",
                               argv[optind - 1]);
        }
    }
    if (optind < argc && strcmp(argv[optind], "show") == 0) {
        const char *id = NULL;
        for (int i = optind + 1; i < argc; i++) {
            if (argv[i][0] == '-')
                return usage_error("workers show: unknown option \"%s\"", argv[i]);
            else if (!id)
                id = argv[i];
            else
                return usage_error("workers show: unexpected argument \"%s\"", argv[i]);
        }
        if (!id)
            return usage_error("workers show: which worker? give its ID");
        return run(c, call_get_worker, id, show_worker);
    }
    if (optind < argc)
        return usage_error("workers: unexpected argument \"%s\"", argv[optind]);

    return run(c, call_list_workers, &q, show_workers);
}

static int cmd_status(cli *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("Usage: muster status [--json]\n"
                   "Show the broker's version, uptime, workers by state, GPUs online,\n"
                   "message counters and endpoints.\n"
                   "\n" EXIT_CODES_HELP);
            return EXIT_OK;
        } else {
            return usage_error("status: unexpected argument \"%s\"", argv[i]);
        }
    }
    return run(c, call_status, NULL, show_status);
}

/* --- cluster requests: the flags quote, cluster create and search share ------- */

#define MAX_LIST 64 /* entries of one list flag (--gpu, --region, --country) */

typedef enum spec_mode { MODE_QUOTE, MODE_CREATE, MODE_SEARCH } spec_mode;

typedef struct spec_args {
    Muster__ClusterSpec spec;
    char *models[MAX_LIST];
    char *regions[MAX_LIST];
    char *countries[MAX_LIST];
    bool have_workers, have_total, have_hours, have_gpw;
    /* cluster create */
    const char *owner;
    bool wait;
    uint32_t wait_timeout_s;
    /* search */
    const char *sort;
    uint32_t limit;
} spec_args;

enum {
    OPT_GPU = 256,
    OPT_GPW,
    OPT_WORKERS,
    OPT_TOTAL,
    OPT_MIN_WORKERS,
    OPT_BANDWIDTH,
    OPT_REGION,
    OPT_COUNTRY,
    OPT_MIN_UPTIME,
    OPT_MAX_PRICE,
    OPT_PLACEMENT,
    OPT_HOURS,
    OPT_OWNER,
    OPT_WAIT,
    OPT_WAIT_TIMEOUT,
    OPT_SORT,
    OPT_LIMIT,
    OPT_OFFSET,
    OPT_STATE,
    OPT_REASON,
    OPT_TIMEOUT_S,
    OPT_HELP,
};

static const char *const REQUEST_FLAGS_HELP =
    "  --gpu MODEL            GPU model: a catalog name or alias (\"RTX 4090\",\n"
    "                         \"H100\"); repeat it or give a comma list for any of\n"
    "                         several models\n"
    "  --gpus-per-worker N    GPUs on each worker, at least [1]\n"
    "  --workers N            how many workers, or\n"
    "  --total-gpus N         how many GPUs in all (a multiple of --gpus-per-worker)\n"
    "  --min-workers N        accept as few as N workers [all or nothing]\n"
    "  --bandwidth TIER       lowest bandwidth tier: low, medium, high, ultra [low]\n"
    "  --region R             only in these regions (repeat or comma list), e.g.\n"
    "                         europe, north-america, asia-east [anywhere]\n"
    "  --country CC           only in these countries: ISO codes such as DE, US\n"
    "                         (repeat or comma list)\n"
    "  --min-uptime F         lowest rolling uptime of a worker, 0..1 (e.g. 0.95)\n"
    "  --max-price USD        highest price per GPU hour in USD, e.g. 0.60\n"
    "Only workers that passed proof-of-work verification are hired.\n";

static void quote_help(void)
{
    printf("Usage: muster quote --gpu MODEL (--workers N | --total-gpus N) [OPTIONS] [--json]\n"
           "What a cluster would get and cost now, reserving nothing: workers, GPUs,\n"
           "price per hour and in total (USD). When the fleet cannot serve the request,\n"
           "shows why and the nearest requests that would succeed (exit 4).\n"
           "\n"
           "Options:\n"
           "%s"
           "  --placement P          pack (all in one region, lowest latency) or spread\n"
           "                         (across the allowed regions) [pack]\n"
           "  --hours N              duration, 1..2160 [1]\n"
           "\n" EXIT_CODES_HELP,
           REQUEST_FLAGS_HELP);
}

static void create_help(void)
{
    printf("Usage: muster cluster create --gpu MODEL (--workers N | --total-gpus N)\n"
           "                             --hours N [OPTIONS] [--wait] [--json]\n"
           "Rent a cluster: its workers are chosen and allocated at once, and it is\n"
           "ready when every member has acknowledged joining. Prints the cluster id\n"
           "(--json: the whole cluster). When the fleet cannot serve the request, shows\n"
           "why and the nearest requests that would succeed (exit 4); nothing is\n"
           "allocated then. Check first with `muster quote` (same flags).\n"
           "\n"
           "Options:\n"
           "%s"
           "  --placement P          pack (all in one region, lowest latency) or spread\n"
           "                         (across the allowed regions) [pack]\n"
           "  --hours N              duration, 1..2160 (required)\n"
           "  --owner NAME           who the cluster is for [$USER, else anonymous]\n"
           "  --wait                 show progress (\"3/8 members joined\") until the\n"
           "                         cluster is ready (exit 0) or failed (exit 1)\n"
           "  --wait-timeout S       give up waiting after S seconds, leaving the cluster\n"
           "                         as it is (exit 1) [120]\n"
           "\n" EXIT_CODES_HELP "130: interrupted (Ctrl-C) while waiting; the cluster is kept.\n",
           REQUEST_FLAGS_HELP);
}

static void search_help(void)
{
    printf("Usage: muster search [--gpu MODEL] [FILTERS] [--sort KEY] [--limit N] [--json]\n"
           "Free workers available now, grouped by GPU model, region and bandwidth tier:\n"
           "how many workers and GPUs, the GPU counts per worker, the price range per GPU\n"
           "hour (USD) and uptime (best / mean). Reserves nothing.\n"
           "\n"
           "Filters (all optional):\n"
           "%s"
           "Output:\n"
           "  --sort KEY             price (cheapest first), count (most workers first)\n"
           "                         or uptime (most reliable first) [price]\n"
           "  --limit N              at most N rows, 1..10000 [100]\n"
           "\n" EXIT_CODES_HELP,
           REQUEST_FLAGS_HELP);
}

/* Split a comma list (in place: argv strings are ours) into list; trims
 * blanks. Returns 0 or a usage exit status. */
static int add_list(const char *flag, char *arg, char **list, size_t *n)
{
    char *save = NULL;
    bool any = false;
    for (char *tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        size_t len = strlen(tok);
        while (len && isspace((unsigned char)tok[len - 1]))
            tok[--len] = '\0';
        if (!*tok)
            continue;
        if (*n >= MAX_LIST)
            return usage_error("%s: at most %d values", flag, MAX_LIST);
        list[(*n)++] = tok;
        any = true;
    }
    if (!any)
        return usage_error("%s needs a value", flag);
    return 0;
}

static int parse_count(const char *flag, const char *arg, uint64_t max, uint32_t *out)
{
    uint64_t v;
    if (str_to_u64(arg, 1, max, &v) < 0) {
        if (max >= UINT32_MAX)
            return usage_error("%s \"%s\" is not a positive whole number", flag, arg);
        return usage_error("%s \"%s\" is not a whole number in 1..%llu", flag, arg,
                           (unsigned long long)max);
    }
    *out = (uint32_t)v;
    return 0;
}

/* Durations: 1..2160 hours (90 days), as the protocol allows. */
static int parse_hours(const char *arg, uint32_t *out)
{
    uint64_t v;
    if (str_to_u64(arg, 1, 2160, &v) < 0)
        return usage_error("--hours \"%s\" is not a duration in 1..2160 hours", arg);
    *out = (uint32_t)v;
    return 0;
}

/* Parse the request flags of quote, cluster create or search into a. argv[0]
 * is the command's name. Returns 0, -1 after --help was shown, or a usage
 * exit status. */
static int parse_spec(spec_mode mode, int argc, char **argv, spec_args *a)
{
    static const struct option opts[] = {
        {"gpu", required_argument, NULL, OPT_GPU},
        {"gpus-per-worker", required_argument, NULL, OPT_GPW},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"total-gpus", required_argument, NULL, OPT_TOTAL},
        {"min-workers", required_argument, NULL, OPT_MIN_WORKERS},
        {"bandwidth", required_argument, NULL, OPT_BANDWIDTH},
        {"region", required_argument, NULL, OPT_REGION},
        {"country", required_argument, NULL, OPT_COUNTRY},
        {"min-uptime", required_argument, NULL, OPT_MIN_UPTIME},
        {"max-price", required_argument, NULL, OPT_MAX_PRICE},
        {"placement", required_argument, NULL, OPT_PLACEMENT},
        {"hours", required_argument, NULL, OPT_HOURS},
        {"owner", required_argument, NULL, OPT_OWNER},
        {"wait", no_argument, NULL, OPT_WAIT},
        {"wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
        {"sort", required_argument, NULL, OPT_SORT},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *name = mode == MODE_QUOTE    ? "quote"
                       : mode == MODE_CREATE ? "cluster create"
                                             : "search";
    muster__cluster_spec__init(&a->spec);
    a->spec.gpu_models = a->models;
    a->spec.regions = a->regions;
    a->spec.countries = a->countries;
    a->spec.gpus_per_worker = 1;
    a->wait_timeout_s = 120;
    int o, rc;
    uint32_t v;
    double d;
    optind = 0; /* full reset: getopt may permute (ID before or after flags) */
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *flag = o >= OPT_GPU && o <= OPT_LIMIT ? opts[o - OPT_GPU].name : "";
        bool request_only = o == OPT_WORKERS || o == OPT_TOTAL || o == OPT_MIN_WORKERS ||
                            o == OPT_PLACEMENT || o == OPT_HOURS;
        bool create_only = o == OPT_OWNER || o == OPT_WAIT || o == OPT_WAIT_TIMEOUT;
        bool search_only = o == OPT_SORT || o == OPT_LIMIT;
        if ((mode == MODE_SEARCH && (request_only || create_only)) ||
            (mode != MODE_CREATE && create_only) || (mode != MODE_SEARCH && search_only))
            return usage_error("%s: --%s does not apply here", name, flag);
        switch (o) {
        case OPT_GPU:
            if ((rc = add_list("--gpu", optarg, a->models, &a->spec.n_gpu_models)))
                return rc;
            break;
        case OPT_GPW:
            if ((rc = parse_count("--gpus-per-worker", optarg, 65535, &a->spec.gpus_per_worker)))
                return rc;
            a->have_gpw = true;
            break;
        case OPT_WORKERS:
            if ((rc = parse_count("--workers", optarg, UINT32_MAX, &a->spec.workers)))
                return rc;
            a->have_workers = true;
            break;
        case OPT_TOTAL:
            if ((rc = parse_count("--total-gpus", optarg, UINT32_MAX, &a->spec.total_gpus)))
                return rc;
            a->have_total = true;
            break;
        case OPT_MIN_WORKERS:
            if ((rc = parse_count("--min-workers", optarg, UINT32_MAX, &a->spec.min_workers)))
                return rc;
            break;
        case OPT_BANDWIDTH:
            if (strcmp(optarg, "low") && strcmp(optarg, "medium") && strcmp(optarg, "high") &&
                strcmp(optarg, "ultra"))
                return usage_error("--bandwidth \"%s\" is not a tier: low, medium, high or ultra",
                                   optarg);
            a->spec.min_tier = optarg;
            break;
        case OPT_REGION:
            if ((rc = add_list("--region", optarg, a->regions, &a->spec.n_regions)))
                return rc;
            break;
        case OPT_COUNTRY: {
            size_t before = a->spec.n_countries;
            if ((rc = add_list("--country", optarg, a->countries, &a->spec.n_countries)))
                return rc;
            for (size_t i = before; i < a->spec.n_countries; i++) {
                char *cc = a->countries[i];
                if (strlen(cc) != 2 || !isalpha((unsigned char)cc[0]) ||
                    !isalpha((unsigned char)cc[1]))
                    return usage_error("--country \"%s\" is not a 2-letter ISO 3166 code "
                                       "such as DE or US",
                                       cc);
                cc[0] = (char)toupper((unsigned char)cc[0]);
                cc[1] = (char)toupper((unsigned char)cc[1]);
            }
            break;
        }
        case OPT_MIN_UPTIME:
            if (str_to_double(optarg, &d) < 0 || d < 0.0 || d > 1.0)
                return usage_error("--min-uptime \"%s\" is not a fraction in 0..1 (e.g. 0.95)",
                                   optarg);
            a->spec.min_uptime = d;
            break;
        case OPT_MAX_PRICE: {
            if (optarg[0] == '$')
                optarg++;
            if (str_to_double(optarg, &d) < 0 || d <= 0.0 || d > 1000.0 || llround(d * 1e6) < 1)
                return usage_error("--max-price \"%s\" is not a price in USD per GPU hour "
                                   "(more than 0, at most 1000, e.g. 0.60)",
                                   optarg);
            a->spec.max_price_micro_usd = (uint64_t)llround(d * 1e6);
            break;
        }
        case OPT_PLACEMENT:
            if (strcmp(optarg, "pack") && strcmp(optarg, "spread"))
                return usage_error("--placement \"%s\" is not pack or spread", optarg);
            a->spec.placement = optarg;
            break;
        case OPT_HOURS:
            if ((rc = parse_hours(optarg, &a->spec.hours)))
                return rc;
            a->have_hours = true;
            break;
        case OPT_OWNER:
            if (!*optarg || strlen(optarg) > 63)
                return usage_error("--owner must be 1..63 characters");
            a->owner = optarg;
            break;
        case OPT_WAIT:
            a->wait = true;
            break;
        case OPT_WAIT_TIMEOUT:
            if ((rc = parse_count("--wait-timeout", optarg, 86400, &a->wait_timeout_s)))
                return rc;
            break;
        case OPT_SORT:
            if (strcmp(optarg, "price") && strcmp(optarg, "count") && strcmp(optarg, "uptime"))
                return usage_error("--sort \"%s\" is not price, count or uptime", optarg);
            a->sort = optarg;
            break;
        case OPT_LIMIT:
            if ((rc = parse_count("--limit", optarg, 10000, &v)))
                return rc;
            a->limit = v;
            break;
        case 'h':
        case OPT_HELP:
            if (mode == MODE_QUOTE)
                quote_help();
            else if (mode == MODE_CREATE)
                create_help();
            else
                search_help();
            return -1;
        default:
            return usage_error("%s: unknown option or missing value in \"%s\"", name,
                               argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("%s: unexpected argument \"%s\"", name, argv[optind]);
    if (mode == MODE_SEARCH)
        return 0;
    /* quote and create: a whole request. */
    if (a->spec.n_gpu_models == 0)
        return usage_error("%s: which GPU? give --gpu MODEL (e.g. --gpu \"RTX 4090\")", name);
    if (a->have_workers == a->have_total)
        return usage_error("%s: give either --workers N or --total-gpus N%s", name,
                           a->have_workers ? ", not both" : "");
    if (a->have_total && a->spec.total_gpus % a->spec.gpus_per_worker)
        return usage_error("%s: --total-gpus %u is not a multiple of --gpus-per-worker %u", name,
                           a->spec.total_gpus, a->spec.gpus_per_worker);
    uint32_t workers =
        a->have_workers ? a->spec.workers : a->spec.total_gpus / a->spec.gpus_per_worker;
    if (a->spec.min_workers > workers)
        return usage_error("%s: --min-workers %u is more than the %u workers asked for", name,
                           a->spec.min_workers, workers);
    if (!a->have_hours) {
        if (mode == MODE_CREATE)
            return usage_error("%s: for how long? give --hours N (1..2160)", name);
        a->spec.hours = 1;
    }
    if (mode == MODE_CREATE && !a->owner) {
        const char *user = getenv("USER");
        a->owner = user && *user && strlen(user) <= 63 ? user : "anonymous";
    }
    return 0;
}

/* Show a failed quote or create: a NOT_MET answer as the explanation and
 * alternatives (exit 4), anything else as fail() does. */
static int fail_request(const cli *c, const mu_error *err, Muster__Status st,
                        Muster__Envelope *not_met)
{
    if (st == MUSTER__STATUS__STATUS_NOT_MET && not_met) {
        if (c->json)
            format_not_met_json(stdout, not_met->not_met, err->text);
        format_not_met(stderr, not_met->not_met);
        wire_free(not_met);
        return EXIT_NOT_MET;
    }
    if (st == MUSTER__STATUS__STATUS_NOT_MET) {
        /* NOT_MET without its body: still "cannot be met now". */
        if (c->json)
            format_error_json(stdout, "not_met", err->text);
        fprintf(stderr, "muster: cannot be met now: %s\n", err->text);
        return EXIT_NOT_MET;
    }
    return fail(c, err, st);
}

static int cmd_quote(cli *c, int argc, char **argv)
{
    spec_args a;
    memset(&a, 0, sizeof(a));
    int rc = parse_spec(MODE_QUOTE, argc, argv, &a);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    Muster__Envelope *reply, *nm;
    Muster__Status st;
    mu_error err;
    if (muster_quote(mc, &a.spec, &reply, &nm, &st, &err) < 0) {
        code = fail_request(c, &err, st, nm);
    } else {
        if (c->json)
            format_quote_json(stdout, reply->quote_reply);
        else
            format_quote(stdout, reply->quote_reply);
        wire_free(reply);
    }
    muster_client_destroy(mc);
    return code;
}

static int cmd_search(cli *c, int argc, char **argv)
{
    spec_args a;
    memset(&a, 0, sizeof(a));
    int rc = parse_spec(MODE_SEARCH, argc, argv, &a);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    Muster__SearchRequest q = MUSTER__SEARCH_REQUEST__INIT;
    q.filter = &a.spec;
    q.sort = (char *)(a.sort ? a.sort : "");
    q.limit = a.limit;
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    Muster__Envelope *reply;
    Muster__Status st;
    mu_error err;
    if (muster_search(mc, &q, &reply, &st, &err) < 0) {
        code = fail(c, &err, st);
    } else {
        if (c->json)
            format_search_json(stdout, reply->search_reply);
        else
            format_search_table(stdout, reply->search_reply);
        wire_free(reply);
    }
    muster_client_destroy(mc);
    return code;
}

/* --- waiting and watching --------------------------------------------------------- */

/* Set by SIGINT/SIGTERM while waiting or watching. A signal handler can
 * reach nothing but a global flag: this is the CLI's only mutable global. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Ctrl-C sets `interrupted` and interrupts the waits (no SA_RESTART). */
static void catch_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Subscribe to TOPIC on the broker's event endpoint (--events, else the one
 * its status names). NULL, after a note on stderr, when that fails: callers
 * then poll only. */
static muster_events *open_events(const cli *c, muster_client *mc, const char *topic)
{
    mu_error err;
    Muster__Envelope *reply = NULL;
    Muster__Status st;
    const char *ep = c->events;
    if (!ep) {
        if (muster_broker_status(mc, &reply, &st, &err) < 0) {
            fprintf(stderr, "muster: cannot learn the event endpoint (%s): polling instead\n",
                    err.text);
            return NULL;
        }
        ep = reply->broker_status_reply->event_endpoint;
    }
    muster_events *ev = NULL;
    if (!ep || !*ep)
        fprintf(stderr, "muster: the broker has no event endpoint: polling instead\n");
    else if (!(ev = muster_events_open(ep, topic, &err)))
        fprintf(stderr, "muster: events at %s: %s: polling instead\n", ep, err.text);
    wire_free(reply);
    return ev;
}

/* Wait up to ms for an event of cluster ID (others are skipped): 1 when one
 * came (in *out when out is not NULL, else freed), 0 when the time ran out
 * or on Ctrl-C. Sleeps instead when there is no event socket. */
static int wait_event(muster_events *ev, const char *id, uint64_t ms, Muster__Envelope **out)
{
    uint64_t deadline = clock_mono_ms() + ms;
    if (out)
        *out = NULL;
    if (!ev) {
        clock_sleep_ms(ms, &interrupted);
        return 0;
    }
    for (;;) {
        uint64_t now = clock_mono_ms();
        if (interrupted || now >= deadline)
            return 0;
        Muster__Envelope *e;
        mu_error err;
        int rc = muster_events_next(ev, (int)(deadline - now), &e, &err);
        if (rc == 1)
            return 0;
        if (rc < 0) {
            if (errno == EINTR)
                continue; /* `interrupted` says whether to stop */
            clock_sleep_ms(deadline - now, &interrupted);
            return 0;
        }
        if (strcmp(e->event->cluster_id, id) != 0) {
            wire_free(e);
            continue;
        }
        if (out)
            *out = e;
        else
            wire_free(e);
        return 1;
    }
}

static size_t members_joined(const Muster__ClusterInfo *ci)
{
    size_t n = 0;
    for (size_t i = 0; i < ci->n_members; i++)
        n += ci->members[i]->acknowledged;
    return n;
}

/* After create --wait: show progress until the cluster is ready or failed,
 * polling get_cluster every second and at once on each of its events (so a
 * missed event costs at most a second). *final gets the last cluster
 * reply. Returns the exit status. */
static int wait_ready(const cli *c, muster_client *mc, muster_events *ev, const char *id,
                      uint32_t timeout_s, Muster__Envelope **final)
{
    uint64_t deadline = clock_mono_ms() + (uint64_t)timeout_s * 1000;
    long shown = -1;
    *final = NULL;
    for (;;) {
        Muster__Envelope *reply;
        Muster__Status st;
        mu_error err;
        if (muster_get_cluster(mc, id, &reply, &st, &err) < 0) {
            wire_free(*final);
            *final = NULL;
            return fail(c, &err, st);
        }
        wire_free(*final);
        *final = reply;
        const Muster__ClusterInfo *ci = reply->cluster_reply->cluster;
        size_t joined = members_joined(ci);
        if ((long)joined != shown && !ci->ready_at_ms && !format_cluster_ended(ci->state)) {
            fprintf(stderr, "muster: %zu/%zu members joined\n", joined, ci->n_members);
            shown = (long)joined;
        }
        if (ci->ready_at_ms) {
            double secs = ci->ready_at_ms >= ci->created_at_ms
                              ? (double)(ci->ready_at_ms - ci->created_at_ms) / 1000.0
                              : 0.0;
            fprintf(stderr, "muster: cluster %s ready in %.1f s%s%s\n", ci->id, secs,
                    strcmp(ci->state, "ready") ? ", now " : "",
                    strcmp(ci->state, "ready") ? ci->state : "");
            return EXIT_OK;
        }
        if (format_cluster_ended(ci->state)) {
            fprintf(stderr, "muster: cluster %s %s%s%s\n", ci->id, ci->state,
                    *ci->end_reason ? ": " : "", ci->end_reason);
            return EXIT_REMOTE;
        }
        uint64_t now = clock_mono_ms();
        if (now >= deadline) {
            fprintf(stderr,
                    "muster: cluster %s is not ready after %u s (%s, %zu/%zu members joined); "
                    "it stays allocated until it fails or you release it: "
                    "muster cluster release %s\n",
                    ci->id, timeout_s, ci->state, joined, ci->n_members, ci->id);
            return EXIT_REMOTE;
        }
        if (interrupted)
            break;
        uint64_t step = deadline - now < 1000 ? deadline - now : 1000;
        wait_event(ev, id, step, NULL);
        if (interrupted)
            break;
    }
    const Muster__ClusterInfo *ci = (*final)->cluster_reply->cluster;
    fprintf(stderr, "muster: stopped waiting; cluster %s is %s (muster cluster show %s)\n", ci->id,
            ci->state, ci->id);
    return EXIT_INTERRUPTED;
}

static int cluster_create(cli *c, int argc, char **argv)
{
    spec_args a;
    memset(&a, 0, sizeof(a));
    int rc = parse_spec(MODE_CREATE, argc, argv, &a);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    muster_events *ev = NULL;
    if (a.wait) {
        catch_sigint();
        /* Subscribe before asking, to all clusters (the id is not known
         * yet): the subscription is then in place when the members join. */
        ev = open_events(c, mc, "cluster.");
    }
    Muster__Envelope *reply = NULL, *nm;
    Muster__Status st;
    mu_error err;
    if (muster_create_cluster(mc, &a.spec, a.owner, &reply, &nm, &st, &err) < 0) {
        code = fail_request(c, &err, st, nm);
        goto out;
    }
    const Muster__ClusterInfo *ci = reply->cluster_reply->cluster;
    if (!ci || !ci->id || !*ci->id) {
        mu_error e2;
        errprintf(&e2, "the broker's reply names no cluster");
        errno = EPROTO;
        code = fail(c, &e2, MUSTER__STATUS__STATUS_OK);
        goto out;
    }
    if (a.wait) {
        fprintf(stderr, "muster: cluster %s created (%s); waiting up to %u s for %zu member%s\n",
                ci->id, ci->state, a.wait_timeout_s, ci->n_members, ci->n_members == 1 ? "" : "s");
        char *id = mu_strdup(ci->id);
        Muster__Envelope *final = NULL;
        code = id ? wait_ready(c, mc, ev, id, a.wait_timeout_s, &final) : EXIT_REMOTE;
        mu_free(id);
        if (final) {
            wire_free(reply);
            reply = final;
            ci = reply->cluster_reply->cluster;
        }
        if (!final)
            goto out; /* the error is shown */
    } else {
        format_cluster_summary(stderr, ci);
    }
    if (c->json)
        format_cluster_json(stdout, ci);
    else
        printf("%s\n", ci->id);
out:
    wire_free(reply);
    muster_events_close(ev);
    muster_client_destroy(mc);
    return code;
}

/* --- cluster list / show / extend / release / watch ----------------------------- */

static int one_cluster_reply(const cli *c, int rcall, Muster__Envelope *reply, Muster__Status st,
                             const mu_error *err, void (*show)(const Muster__ClusterInfo *))
{
    if (rcall < 0)
        return fail(c, err, st);
    if (c->json)
        format_cluster_json(stdout, reply->cluster_reply->cluster);
    else
        show(reply->cluster_reply->cluster);
    wire_free(reply);
    return EXIT_OK;
}

static void show_detail(const Muster__ClusterInfo *ci)
{
    format_cluster_detail(stdout, ci, clock_wall_ms());
}

static void show_extended(const Muster__ClusterInfo *ci)
{
    char t[32], total[24];
    format_time(ci->ends_at_ms, t, sizeof(t));
    format_usd(ci->total_micro_usd, total, sizeof(total));
    printf("cluster %s extended: now %u hour%s in all, ends %s, %s USD in total\n", ci->id,
           ci->hours, ci->hours == 1 ? "" : "s", t, total);
}

static void show_released(const Muster__ClusterInfo *ci)
{
    printf("cluster %s %s: %zu worker%s freed\n", ci->id, ci->state, ci->n_members,
           ci->n_members == 1 ? "" : "s");
}

static void show_shrunk(const Muster__ClusterInfo *ci)
{
    char price[24];
    format_usd(ci->price_per_hour_micro_usd, price, sizeof(price));
    printf("cluster %s %s: %zu member%s, %s USD per hour\n", ci->id, ci->state, ci->n_members,
           ci->n_members == 1 ? "" : "s", price);
}

static void cluster_help(FILE *out)
{
    fprintf(out, "Usage: muster cluster create REQUEST --hours N [--owner NAME] [--wait]\n"
                 "                             [--wait-timeout S] [--json]\n"
                 "       muster cluster list [--state S] [--owner NAME] [--limit N]\n"
                 "                           [--offset N] [--json]\n"
                 "       muster cluster show ID [--json]\n"
                 "       muster cluster extend ID --hours N [--json]\n"
                 "       muster cluster shrink ID [--json]\n"
                 "       muster cluster release ID [--reason TEXT] [--json]\n"
                 "       muster cluster watch ID [--timeout S] [--json]\n"
                 "\n"
                 "Rent a cluster of workers and manage it. ID is a full cluster id or a unique\n"
                 "prefix of at least 4 characters. REQUEST is --gpu MODEL and --workers N or\n"
                 "--total-gpus N plus constraints: see `muster cluster create --help`.\n"
                 "\n"
                 "  list     clusters, newest first: S is provisioning, ready, degraded,\n"
                 "           released, expired, failed, or active (the first three)\n"
                 "           [all]; at most --limit (default 1000) after --offset\n"
                 "  show     request, members (worker, host, model, region, tier, price,\n"
                 "           joined, lost), price per hour and in total, times, history\n"
                 "  extend   add N hours (1..2160) to an active cluster\n"
                 "  shrink   give up the seats of a degraded cluster that no replacement could\n"
                 "           fill (members offline or failed are replaced automatically, same\n"
                 "           region first); it keeps its present members at their price\n"
                 "  release  end it now and free its workers; --reason is kept in its history\n"
                 "  watch    print its events as they happen (\"TIME  TOPIC  detail\"; --json:\n"
                 "           one JSON object per line) until it ends (released, expired,\n"
                 "           failed), or for at most --timeout S seconds, or until Ctrl-C;\n"
                 "           exits 0 in all three cases. Here --timeout is the watch's, in\n"
                 "           seconds: give the per-request timeout (ms) before `cluster`.\n"
                 "\n" EXIT_CODES_HELP);
}

/* Parse "ID [flags]" of show / extend / release / watch. */
static int parse_id_cmd(const char *name, int argc, char **argv, const char **id, uint32_t *hours,
                        const char **reason, uint32_t *timeout_s)
{
    static const struct option opts[] = {
        {"hours", required_argument, NULL, OPT_HOURS},
        {"reason", required_argument, NULL, OPT_REASON},
        {"timeout", required_argument, NULL, OPT_TIMEOUT_S},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int o, rc;
    *id = NULL;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case OPT_HOURS:
            if (!hours)
                goto unknown;
            if ((rc = parse_hours(optarg, hours)))
                return rc;
            break;
        case OPT_REASON:
            if (!reason)
                goto unknown;
            if (strlen(optarg) > 200)
                return usage_error("--reason: at most 200 characters");
            *reason = optarg;
            break;
        case OPT_TIMEOUT_S: {
            uint64_t v;
            if (!timeout_s)
                goto unknown;
            if (str_to_u64(optarg, 1, 31 * 86400, &v) < 0)
                return usage_error("--timeout \"%s\" is not a number of seconds (1..2678400)",
                                   optarg);
            *timeout_s = (uint32_t)v;
            break;
        }
        case 'h':
        case OPT_HELP:
            cluster_help(stdout);
            return -1;
        default:
        unknown:
            return usage_error("cluster %s: unknown option or missing value in \"%s\"", name,
                               argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (!*id)
            *id = argv[i];
        else
            return usage_error("cluster %s: unexpected argument \"%s\"", name, argv[i]);
    }
    if (!*id)
        return usage_error("cluster %s: which cluster? give its ID", name);
    if (hours && *hours == 0)
        return usage_error("cluster %s: by how much? give --hours N (1..2160)", name);
    return 0;
}

static int cluster_list(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", required_argument, NULL, OPT_STATE},
        {"owner", required_argument, NULL, OPT_OWNER},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"offset", required_argument, NULL, OPT_OFFSET},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    static const char *const states[] = {"provisioning", "ready",  "degraded", "released",
                                         "expired",      "failed", "active"};
    Muster__ListClustersRequest q = MUSTER__LIST_CLUSTERS_REQUEST__INIT;
    int o, rc;
    uint64_t v;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case OPT_STATE: {
            bool ok = false;
            for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
                ok = ok || !strcmp(optarg, states[i]);
            if (!ok)
                return usage_error("--state \"%s\" is not provisioning, ready, degraded, "
                                   "released, expired, failed or active",
                                   optarg);
            q.state = optarg;
            break;
        }
        case OPT_OWNER:
            q.owner = optarg;
            break;
        case OPT_LIMIT:
            if ((rc = parse_count("--limit", optarg, 10000, &q.limit)))
                return rc;
            break;
        case OPT_OFFSET:
            if (str_to_u64(optarg, 0, UINT32_MAX, &v) < 0)
                return usage_error("--offset \"%s\" is not a count", optarg);
            q.offset = (uint32_t)v;
            break;
        case 'h':
        case OPT_HELP:
            cluster_help(stdout);
            return EXIT_OK;
        default:
            return usage_error("cluster list: unknown option or missing value in \"%s\"",
                               argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("cluster list: unexpected argument \"%s\"", argv[optind]);
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    Muster__Envelope *reply;
    Muster__Status st;
    mu_error err;
    if (muster_list_clusters(mc, &q, &reply, &st, &err) < 0) {
        code = fail(c, &err, st);
    } else {
        if (c->json)
            format_clusters_json(stdout, reply->list_clusters_reply);
        else
            format_clusters_table(stdout, reply->list_clusters_reply, clock_wall_ms());
        wire_free(reply);
    }
    muster_client_destroy(mc);
    return code;
}

/* Print one event, as a line or a JSON line, at once (a pipe may wait). */
static void print_event(const cli *c, const Muster__Event *e)
{
    if (c->json)
        format_event_json(stdout, e);
    else
        format_event_line(stdout, e);
    fflush(stdout);
}

static bool event_ends(const Muster__Event *e)
{
    return format_cluster_ended(e->cluster_state) || !strcmp(e->topic, "cluster.released") ||
           !strcmp(e->topic, "cluster.expired") || !strcmp(e->topic, "cluster.failed");
}

/* The end of an ended cluster as an event (seq 0: rebuilt from the cluster,
 * its event having been missed). */
static void print_end_from_history(const cli *c, const Muster__ClusterInfo *ci)
{
    Muster__Event e = MUSTER__EVENT__INIT;
    char topic[64];
    snprintf(topic, sizeof(topic), "cluster.%s", ci->state);
    e.topic = topic;
    e.time_ms = ci->ended_at_ms;
    e.detail = ci->end_reason;
    e.worker_id = (char *)"";
    e.cluster_id = ci->id;
    e.cluster_state = ci->state;
    for (size_t i = ci->n_history; i-- > 0;) {
        const Muster__ClusterChange *h = ci->history[i];
        if (!strcmp(h->what, ci->state)) {
            e.time_ms = h->time_ms;
            if (*h->reason)
                e.detail = h->reason;
            break;
        }
    }
    print_event(c, &e);
}

static int cluster_watch(cli *c, const char *prefix, uint32_t timeout_s)
{
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    catch_sigint();
    Muster__Envelope *reply = NULL;
    Muster__Status st;
    mu_error err;
    muster_events *ev = NULL;
    char *id = NULL;
    if (muster_get_cluster(mc, prefix, &reply, &st, &err) < 0) {
        code = fail(c, &err, st);
        goto out;
    }
    if (!(id = mu_strdup(reply->cluster_reply->cluster->id))) {
        code = EXIT_REMOTE;
        goto out;
    }
    if (format_cluster_ended(reply->cluster_reply->cluster->state)) {
        print_end_from_history(c, reply->cluster_reply->cluster);
        goto out;
    }
    char topic[96];
    snprintf(topic, sizeof(topic), "cluster.%s", id);
    ev = open_events(c, mc, topic);
    if (!c->json)
        fprintf(stderr, "muster: watching cluster %s (%s)%s\n", id,
                reply->cluster_reply->cluster->state, timeout_s ? "" : "; Ctrl-C to stop");
    uint64_t deadline = timeout_s ? clock_mono_ms() + (uint64_t)timeout_s * 1000 : UINT64_MAX;
    uint64_t next_poll = clock_mono_ms() + 1000;
    uint64_t ended_seen = 0; /* when a poll first found it ended */
    while (!interrupted) {
        uint64_t now = clock_mono_ms();
        if (now >= deadline) {
            fprintf(stderr, "muster: watch: %u s are up; cluster %s goes on\n", timeout_s, id);
            break;
        }
        uint64_t until = next_poll < deadline ? next_poll : deadline;
        Muster__Envelope *e = NULL;
        if (until > now && wait_event(ev, id, until - now, &e) == 1) {
            print_event(c, e->event);
            bool end = event_ends(e->event);
            wire_free(e);
            if (end)
                break;
            continue;
        }
        if (interrupted || clock_mono_ms() < next_poll)
            continue;
        /* Poll as a fallback: an event may have been missed. */
        next_poll = clock_mono_ms() + 1000;
        wire_free(reply);
        reply = NULL;
        if (muster_get_cluster(mc, id, &reply, &st, &err) < 0) {
            code = fail(c, &err, st);
            break;
        }
        if (format_cluster_ended(reply->cluster_reply->cluster->state)) {
            /* Give its event a moment to arrive before rebuilding it. */
            if (ev && !ended_seen) {
                ended_seen = clock_mono_ms();
                next_poll = ended_seen + 500;
                continue;
            }
            print_end_from_history(c, reply->cluster_reply->cluster);
            break;
        }
    }
out:
    mu_free(id);
    wire_free(reply);
    muster_events_close(ev);
    muster_client_destroy(mc);
    return code;
}

static int cmd_cluster(cli *c, int argc, char **argv)
{
    if (argc < 2) {
        cluster_help(stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        cluster_help(stdout);
        return EXIT_OK;
    }
    argc--;
    argv++;
    if (!strcmp(sub, "create"))
        return cluster_create(c, argc, argv);
    if (!strcmp(sub, "list"))
        return cluster_list(c, argc, argv);
    if (strcmp(sub, "show") && strcmp(sub, "extend") && strcmp(sub, "release") &&
        strcmp(sub, "watch") && strcmp(sub, "shrink"))
        return usage_error("cluster: unknown command \"%s\"", sub);
    const char *id, *reason = NULL;
    uint32_t hours = 0, timeout_s = 0;
    bool extend = !strcmp(sub, "extend"), release = !strcmp(sub, "release"),
         watch = !strcmp(sub, "watch");
    int rc = parse_id_cmd(sub, argc, argv, &id, extend ? &hours : NULL, release ? &reason : NULL,
                          watch ? &timeout_s : NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    if (watch)
        return cluster_watch(c, id, timeout_s);
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    Muster__Envelope *reply = NULL;
    Muster__Status st;
    mu_error err;
    if (extend) {
        rc = muster_extend_cluster(mc, id, hours, &reply, &st, &err);
        code = one_cluster_reply(c, rc, reply, st, &err, show_extended);
    } else if (release) {
        rc = muster_release_cluster(mc, id, reason, &reply, &st, &err);
        code = one_cluster_reply(c, rc, reply, st, &err, show_released);
    } else if (!strcmp(sub, "shrink")) {
        rc = muster_shrink_cluster(mc, id, &reply, &st, &err);
        code = one_cluster_reply(c, rc, reply, st, &err, show_shrunk);
    } else {
        rc = muster_get_cluster(mc, id, &reply, &st, &err);
        code = one_cluster_reply(c, rc, reply, st, &err, show_detail);
    }
    muster_client_destroy(mc);
    return code;
}

/* --- tasks: submit, list, show, logs, wait, cancel -------------------------------- */

#define TASK_EXIT_CODES_HELP                                                                       \
    "Exit status: 0 success, 1 the broker answered with an error, 2 bad usage (a bad\n"            \
    "graph file too: nothing is sent), 3 the broker could not be reached, 4 the\n"                 \
    "submission cannot be met now. After waiting (task wait, task submit --wait):\n"               \
    "0 every task succeeded, 1 one failed or was cancelled, 5 --timeout or\n"                      \
    "--wait-timeout ran out first, 130 interrupted (Ctrl-C).\n"

enum {
    OPT_T_CLUSTER = 512,
    OPT_T_NAME,
    OPT_T_GPUS,
    OPT_T_CPUS,
    OPT_T_MEMORY,
    OPT_T_AFTER,
    OPT_T_RETRIES,
    OPT_T_RETRY_EXITS,
    OPT_T_ENV,
    OPT_T_CWD,
    OPT_T_MEMBER,
    OPT_T_HARD,
    OPT_T_RESULT_FILE,
    OPT_T_FILE,
    OPT_T_FOLLOW,
};

/* How often `task wait` and `task logs --follow` ask the broker: often
 * enough to feel immediate, rarely enough to cost the broker nothing. A
 * wait that receives many tasks per poll asks half as often. */
#define TASK_POLL_MS      250
#define TASK_POLL_SLOW_MS 500
/* ListTasks returns at most this many tasks per call (the protocol's cap). */
#define TASK_PAGE 10000
/* Bytes asked per TaskLogs call: the broker's default, given explicitly so
 * that a short reply means "that is all for now". */
#define TASK_LOG_CHUNK (64u << 10)
/* Failed tasks listed after a wait of all a cluster's tasks. */
#define TASK_FAILED_SHOWN 100

static void task_help(FILE *out)
{
    fprintf(out, "Usage: muster task submit --cluster ID [OPTIONS] [--wait] -- CMD [ARGS...]\n"
                 "       muster task submit --file GRAPH [--cluster ID] [--wait]\n"
                 "       muster task list --cluster ID [--state S] [--limit N] [--offset N]\n"
                 "       muster task show TASK\n"
                 "       muster task logs TASK [--follow]\n"
                 "       muster task wait [--cluster ID] [TASK...] [--timeout S]\n"
                 "       muster task cancel TASK\n"
                 "(each also takes --json)\n"
                 "\n"
                 "Run commands on the members of a cluster: a task asks for GPUs, CPUs and\n"
                 "memory, may start only after other tasks succeeded, and is retried when its\n"
                 "member is lost. TASK is CLUSTER/NUMBER: a cluster id or a unique prefix of at\n"
                 "least 4 characters, '/', the task's number in that cluster (e.g. 1a2b3c4d/7).\n"
                 "\n"
                 "  submit   one task (the command after --), or a graph of tasks from a JSON\n"
                 "           file; prints the task's id, or the range of ids\n"
                 "  list     the cluster's tasks in number order and its counts by state\n"
                 "  show     everything about one task, its result included\n"
                 "  logs     its output (stdout and stderr, every attempt); --follow goes on\n"
                 "           until the task is over\n"
                 "  wait     until the tasks given, or all the cluster's tasks, are over\n"
                 "  cancel   stop a task; the tasks that wait for it fail\n"
                 "`muster task COMMAND --help` tells more.\n"
                 "\n" TASK_EXIT_CODES_HELP);
}

static void task_submit_help(void)
{
    printf("Usage: muster task submit --cluster ID [OPTIONS] [--wait] -- CMD [ARGS...]\n"
           "       muster task submit --file GRAPH [--cluster ID] [--wait]\n"
           "Run CMD with ARGS on a member of cluster ID (a full id or a unique prefix).\n"
           "The command comes after \"--\", so its flags are never taken for muster's.\n"
           "Prints the task's id, CLUSTER/NUMBER (--json: {\"cluster_id\", \"first\",\n"
           "\"count\"}). When the broker answers that the cluster cannot run it\n"
           "(not_met), it says why (exit 4): nothing is submitted then.\n"
           "\n"
           "One task:\n"
           "  --cluster ID           the cluster to run on (required)\n"
           "  --name NAME            a name, shown by list and show (not all digits)\n"
           "  --gpus N               GPUs, 0..64, given to it as CUDA_VISIBLE_DEVICES [0]\n"
           "  --cpus N               CPUs reserved, 0..65535 [0: none]\n"
           "  --memory MIB           memory reserved, in MiB [0: none]\n"
           "  --after T1,T2          start only once these tasks have succeeded: numbers\n"
           "                         N or CLUSTER/N of the same cluster (repeat or comma\n"
           "                         list); when one fails or is cancelled, so does this\n"
           "  --retry-exits          retry a non-zero exit or a timeout (an attempt whose\n"
           "                         member is lost is always retried)\n"
           "  --retries N            with --retry-exits, at most N retries, 0..100;\n"
           "                         0: none [the broker's default, 3]\n"
           "  --timeout S            kill an attempt after S seconds, 0..604800 (7 days);\n"
           "                         0: never [never]. In seconds: the per-request\n"
           "                         timeout goes before `task` (muster -t 2000 task ...)\n"
           "  --env NAME=VALUE       add to its environment (repeat)\n"
           "  --cwd DIR              its working directory on the member, absolute [a\n"
           "                         fresh directory per attempt]\n"
           "  --placement P          default (the first member that fits), spread (the\n"
           "                         one running the fewest tasks) or pack (the one\n"
           "                         running the most that still fits) [default]\n"
           "  --member WORKER        rather on this member (worker id or prefix) ...\n"
           "  --hard                 ... and only there: it waits for that member, and\n"
           "                         fails if the member is lost\n"
           "  --result-file PATH     a file, relative to its directory, sent back as its\n"
           "                         result when it exits 0 (see `muster task show`)\n"
           "A graph:\n"
           "  --file GRAPH           the tasks of a JSON file (\"-\": standard input),\n"
           "                         sent in one request: accepted whole or not at all.\n"
           "                         Format: docs/cli.md, \"Task graph files\". --cluster\n"
           "                         wins over the file's \"cluster\". A bad file is\n"
           "                         refused before anything is sent (exit 2). Prints\n"
           "                         \"submitted N tasks: C/FIRST..C/LAST\".\n"
           "Both:\n"
           "  --wait                 then wait for the tasks submitted, as `muster task\n"
           "                         wait` does, and exit as it does\n"
           "  --wait-timeout S       stop waiting after S seconds (exit 5) [no limit]\n"
           "\n" TASK_EXIT_CODES_HELP);
}

static void task_list_help(void)
{
    printf("Usage: muster task list --cluster ID [--state S] [--limit N] [--offset N] [--json]\n"
           "The tasks of cluster ID in number order: NUMBER NAME STATE WORKER GPUS\n"
           "ATTEMPTS EXIT AGE/REASON (AGE since submission; REASON why it failed, was\n"
           "cancelled or retried), then the cluster's tasks counted by state.\n"
           "  --state S              waiting, ready, running, succeeded, failed,\n"
           "                         cancelled, or active (the first three) [all]\n"
           "  --limit N              at most N tasks, 1..10000 [1000]\n"
           "  --offset N             skip the first N matching tasks [0]\n"
           "--json: {\"tasks\": [TASK...], \"total\": matching, \"counts\": {...}}.\n"
           "\n" TASK_EXIT_CODES_HELP);
}

static void task_show_help(void)
{
    printf("Usage: muster task show TASK [--json]\n"
           "Everything about one task (TASK is CLUSTER/NUMBER): state and reason,\n"
           "command, environment, resources, dependencies, placement, retries,\n"
           "timeout, member and GPUs, attempts, exit code or signal, times, output\n"
           "size, and its result: as text when it is printable UTF-8, else its size\n"
           "and first bytes in hex (--json: \"result\" in base64, \"result_text\" when\n"
           "it is UTF-8, else null).\n"
           "\n" TASK_EXIT_CODES_HELP);
}

static void task_logs_help(void)
{
    printf("Usage: muster task logs TASK [--follow] [--json]\n"
           "Print the output of a task (TASK is CLUSTER/NUMBER): stdout and stderr as\n"
           "read, every attempt after a line \"--- attempt N on WORKER (HOST) ---\". The\n"
           "broker keeps the latest part of it (64 KiB by default; the whole is on the\n"
           "member); when older output is gone, a note \"[... N bytes no longer kept\n"
           "...]\" goes to stderr.\n"
           "  -f, --follow           keep printing as it comes (asking every 250 ms)\n"
           "                         until the task is over or Ctrl-C (exit 0)\n"
           "--json: {\"cluster_id\", \"number\", \"offset\" (of the first byte shown),\n"
           "\"next\", \"final\", \"state\", \"data\" (base64), \"text\" (when UTF-8, else\n"
           "null)}; with --follow, one such line per reply (JSON Lines).\n"
           "\n" TASK_EXIT_CODES_HELP);
}

static void task_wait_help(void)
{
    printf("Usage: muster task wait [--cluster ID] [TASK...] [--timeout S] [--json]\n"
           "Wait until the tasks given, or else every task of cluster ID (also those\n"
           "submitted meanwhile), are over: succeeded, failed or cancelled. TASK is a\n"
           "number N of cluster ID, or CLUSTER/N (then --cluster may be left out).\n"
           "Asks the broker every 250 ms (500 ms for many tasks); on a terminal, shows\n"
           "progress on stderr (\"12/50 succeeded, 3 running, 35 queued, 0 failed\"),\n"
           "then one final line and every task that failed or was cancelled, with its\n"
           "reason. A broker that stops answering after the first reply is asked\n"
           "again until it answers or the time runs out.\n"
           "  --cluster ID           the cluster\n"
           "  --timeout S            give up after S seconds, 1..2678400 [no limit]; in\n"
           "                         seconds: the per-request timeout goes before `task`\n"
           "--json: {\"cluster_id\", \"outcome\" (succeeded, failed, timeout,\n"
           "interrupted), \"counts\", \"total\", \"failed\": [TASK...]}.\n"
           "\n"
           "Exit status: 0 every task succeeded, 1 one failed or was cancelled (or the\n"
           "broker answered with an error, e.g. no such task), 2 bad usage, 3 the broker\n"
           "could not be reached, 5 --timeout ran out first, 130 interrupted (Ctrl-C).\n");
}

static void task_cancel_help(void)
{
    printf("Usage: muster task cancel TASK [--json]\n"
           "Cancel a task that is not over (TASK is CLUSTER/NUMBER): it is killed if it\n"
           "runs, and the tasks waiting for it fail. Prints its state after the change\n"
           "(--json: the whole task). A task that is already over is not changed: the\n"
           "broker answers with an error (conflict, exit 1).\n"
           "\n" TASK_EXIT_CODES_HELP);
}

/* A file or input the CLI refused before sending anything: exit 2, with
 * the reason (and as JSON with --json). */
static int bad_input(const cli *c, const char *why)
{
    if (c->json)
        format_error_json(stdout, "bad_usage", why);
    fprintf(stderr, "muster: %s\n", why);
    return EXIT_USAGE;
}

/* The reply is not what the request asked for. */
static int bad_reply(const cli *c, const char *what)
{
    mu_error e;
    errprintf(&e, "the broker's reply %s", what);
    errno = EPROTO;
    return fail(c, &e, MUSTER__STATUS__STATUS_OK);
}

/* --- task submit --- */

#define MAX_TASK_ENV   256
#define MAX_TASK_AFTER 1024

typedef struct submit_args {
    const char *cluster, *file;
    Muster__TaskSpec spec;
    char *env[MAX_TASK_ENV];
    char *after_arg[MAX_TASK_AFTER]; /* as given: parsed once --cluster is known */
    size_t n_after_arg;
    char *after[MAX_TASK_AFTER];
    char after_text[MAX_TASK_AFTER][12];
    const char *one_flag; /* the first flag given that is for one task only */
    const char *member;
    bool hard, have_retries, have_placement, wait;
    uint32_t wait_timeout_s;
} submit_args;

static const char *flag_name(const struct option *opts, int val)
{
    for (; opts->name; opts++)
        if (opts->val == val)
            return opts->name;
    return "?";
}

/* Split a comma list of --after into a->after_arg (in place). */
static int add_after(submit_args *a, char *arg)
{
    char *save = NULL;
    bool any = false;
    for (char *tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        size_t len = strlen(tok);
        while (len && isspace((unsigned char)tok[len - 1]))
            tok[--len] = '\0';
        if (!*tok)
            continue;
        if (a->n_after_arg >= MAX_TASK_AFTER)
            return usage_error("--after: at most %d tasks", MAX_TASK_AFTER);
        a->after_arg[a->n_after_arg++] = tok;
        any = true;
    }
    if (!any)
        return usage_error("--after needs a task: N or CLUSTER/N");
    return 0;
}

/* --env NAME=VALUE; a later one for the same NAME replaces the earlier. */
static int add_env(submit_args *a, char *arg)
{
    mu_error err;
    if (taskgraph_check_env(arg, &err) < 0)
        return usage_error("--env: %s", err.text);
    size_t klen = (size_t)(strchr(arg, '=') - arg) + 1;
    for (size_t i = 0; i < a->spec.n_env; i++) {
        if (!strncmp(a->env[i], arg, klen)) {
            a->env[i] = arg;
            return 0;
        }
    }
    if (a->spec.n_env >= MAX_TASK_ENV)
        return usage_error("--env: at most %d variables", MAX_TASK_ENV);
    a->env[a->spec.n_env++] = arg;
    return 0;
}

/* Parse `task submit`'s flags and command. argv[0] is "submit". Returns
 * 0, -1 after --help was shown, or a usage exit status. */
static int parse_submit(int argc, char **argv, submit_args *a)
{
    static const struct option opts[] = {
        {"cluster", required_argument, NULL, OPT_T_CLUSTER},
        {"name", required_argument, NULL, OPT_T_NAME},
        {"gpus", required_argument, NULL, OPT_T_GPUS},
        {"cpus", required_argument, NULL, OPT_T_CPUS},
        {"memory", required_argument, NULL, OPT_T_MEMORY},
        {"after", required_argument, NULL, OPT_T_AFTER},
        {"retries", required_argument, NULL, OPT_T_RETRIES},
        {"retry-exits", no_argument, NULL, OPT_T_RETRY_EXITS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT_S},
        {"env", required_argument, NULL, OPT_T_ENV},
        {"cwd", required_argument, NULL, OPT_T_CWD},
        {"placement", required_argument, NULL, OPT_PLACEMENT},
        {"member", required_argument, NULL, OPT_T_MEMBER},
        {"hard", no_argument, NULL, OPT_T_HARD},
        {"result-file", required_argument, NULL, OPT_T_RESULT_FILE},
        {"file", required_argument, NULL, OPT_T_FILE},
        {"wait", no_argument, NULL, OPT_WAIT},
        {"wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    muster__task_spec__init(&a->spec);
    a->spec.env = a->env;
    a->spec.after = a->after;
    int o, rc;
    uint64_t v;
    mu_error err;
    const char *last_optarg = NULL;
    optind = 0;
    opterr = 0;
    /* '+': options stop at the first other word, or at "--". */
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        last_optarg = optarg;
        bool for_both = o == OPT_T_CLUSTER || o == OPT_T_FILE || o == OPT_WAIT ||
                        o == OPT_WAIT_TIMEOUT || o == OPT_HELP || o == 'h' || o == '?';
        if (!for_both && !a->one_flag)
            a->one_flag = flag_name(opts, o);
        switch (o) {
        case OPT_T_CLUSTER:
            if (!*optarg || strlen(optarg) > TASKGRAPH_MAX_CLUSTER_LEN)
                return usage_error("--cluster \"%s\" is not a cluster id", optarg);
            a->cluster = optarg;
            break;
        case OPT_T_NAME:
            if (taskgraph_check_name(optarg, &err) < 0)
                return usage_error("--name: %s", err.text);
            a->spec.name = optarg;
            break;
        case OPT_T_GPUS:
            if (str_to_u64(optarg, 0, TASKGRAPH_MAX_GPUS, &v) < 0)
                return usage_error("--gpus \"%s\" is not a whole number in 0..%u", optarg,
                                   TASKGRAPH_MAX_GPUS);
            a->spec.gpus = (uint32_t)v;
            break;
        case OPT_T_CPUS:
            if (str_to_u64(optarg, 0, TASKGRAPH_MAX_CPUS, &v) < 0)
                return usage_error("--cpus \"%s\" is not a whole number in 0..%u", optarg,
                                   TASKGRAPH_MAX_CPUS);
            a->spec.cpus = (uint32_t)v;
            break;
        case OPT_T_MEMORY:
            if (str_to_u64(optarg, 0, TASKGRAPH_MAX_MEMORY_MIB, &v) < 0)
                return usage_error("--memory \"%s\" is not a size in MiB (0..%llu)", optarg,
                                   (unsigned long long)TASKGRAPH_MAX_MEMORY_MIB);
            a->spec.memory_mib = v;
            break;
        case OPT_T_AFTER:
            if ((rc = add_after(a, optarg)))
                return rc;
            break;
        case OPT_T_RETRIES:
            if (str_to_u64(optarg, 0, TASKGRAPH_MAX_RETRIES, &v) < 0)
                return usage_error("--retries \"%s\" is not a whole number in 0..%u", optarg,
                                   TASKGRAPH_MAX_RETRIES);
            /* 0 here means none; on the wire 0 is the default, -1 none. */
            a->spec.max_retries = v == 0 ? -1 : (int32_t)v;
            a->have_retries = true;
            break;
        case OPT_T_RETRY_EXITS:
            a->spec.retry_exits = true;
            break;
        case OPT_TIMEOUT_S:
            if (str_to_u64(optarg, 0, TASKGRAPH_MAX_TIMEOUT_S, &v) < 0)
                return usage_error("--timeout \"%s\" is not a number of seconds in 0..%u "
                                   "(7 days)",
                                   optarg, TASKGRAPH_MAX_TIMEOUT_S);
            a->spec.timeout_ms = (uint32_t)v * 1000u;
            break;
        case OPT_T_ENV:
            if ((rc = add_env(a, optarg)))
                return rc;
            break;
        case OPT_T_CWD:
            if (optarg[0] != '/')
                return usage_error("--cwd \"%s\" is not an absolute directory", optarg);
            a->spec.cwd = optarg;
            break;
        case OPT_PLACEMENT:
            if (strcmp(optarg, "default") && strcmp(optarg, "spread") && strcmp(optarg, "pack"))
                return usage_error("--placement \"%s\" is not default, spread or pack (for a "
                                   "member, give --member)",
                                   optarg);
            a->spec.placement = optarg;
            a->have_placement = true;
            break;
        case OPT_T_MEMBER:
            if (!*optarg)
                return usage_error("--member needs a worker id or prefix");
            a->member = optarg;
            break;
        case OPT_T_HARD:
            a->hard = true;
            break;
        case OPT_T_RESULT_FILE:
            if (taskgraph_check_result_file(optarg, &err) < 0)
                return usage_error("--result-file: %s", err.text);
            a->spec.result_file = optarg;
            break;
        case OPT_T_FILE:
            if (!*optarg)
                return usage_error("--file needs a path (\"-\": standard input)");
            a->file = optarg;
            break;
        case OPT_WAIT:
            a->wait = true;
            break;
        case OPT_WAIT_TIMEOUT:
            if ((rc = parse_count("--wait-timeout", optarg, 31 * 86400, &a->wait_timeout_s)))
                return rc;
            break;
        case 'h':
        case OPT_HELP:
            task_submit_help();
            return -1;
        default:
            return usage_error("task submit: unknown option or missing value in \"%s\"",
                               argv[optind - 1]);
        }
    }
    /* Whether getopt stopped at "--" (and not at an option's value "--"). */
    bool dashdash = optind >= 1 && optind <= argc && !strcmp(argv[optind - 1], "--") &&
                    argv[optind - 1] != last_optarg;
    if (a->wait_timeout_s && !a->wait)
        return usage_error("task submit: --wait-timeout goes with --wait");
    if (a->file) {
        if (a->one_flag)
            return usage_error("task submit: --%s does not apply with --file (set it in the "
                               "file)",
                               a->one_flag);
        if (optind < argc || dashdash)
            return usage_error("task submit: give either --file or a command after --, not both");
        return 0;
    }
    if (optind >= argc)
        return usage_error("task submit: what to run? give -- CMD [ARGS...], or --file GRAPH");
    if (!dashdash)
        return usage_error("task submit: put the command after \"--\" (muster task submit "
                           "--cluster ID -- %s ...), so that its flags are not taken for muster's",
                           argv[optind]);
    if (!*argv[optind])
        return usage_error("task submit: the command is empty");
    if (!a->cluster)
        return usage_error("task submit: which cluster? give --cluster ID");
    a->spec.argv = argv + optind;
    a->spec.n_argv = (size_t)(argc - optind);
    for (size_t i = 0; i < a->n_after_arg; i++) {
        uint32_t n;
        if (taskgraph_parse_after(a->after_arg[i], a->cluster, &n, &err) < 0)
            return usage_error("--after: %s", err.text);
        snprintf(a->after_text[i], sizeof(a->after_text[i]), "%u", n);
        a->after[a->spec.n_after++] = a->after_text[i];
    }
    if (a->hard && !a->member)
        return usage_error("task submit: --hard needs --member WORKER");
    if (a->member && a->have_placement)
        return usage_error("task submit: --member is a placement of its own: leave out "
                           "--placement");
    if (a->member) {
        a->spec.member = (char *)a->member;
        a->spec.placement = (char *)(a->hard ? "member-hard" : "member");
    }
    if (a->have_retries && !a->spec.retry_exits)
        fprintf(stderr, "muster: note: --retries counts retries of non-zero exits and timeouts, "
                        "which happen only with --retry-exits\n");
    return 0;
}

/* --- polling tasks: what `task wait` sees --- */

/* What one poll found out about the tasks waited for. Failed and cancelled
 * tasks point into the replies kept in pages. */
typedef struct task_poll {
    Muster__TaskCounts counts;
    Muster__Envelope **pages;
    size_t n_pages, cap_pages;
    const Muster__TaskInfo **failed;
    size_t n_failed, cap_failed;
    uint32_t unlisted;                              /* failed or cancelled tasks not in `failed` */
    size_t fetched;                                 /* tasks received */
    char cluster_id[TASKGRAPH_MAX_CLUSTER_LEN + 1]; /* the full id, once a task named it */
} task_poll;

static void poll_clear(task_poll *p)
{
    for (size_t i = 0; i < p->n_pages; i++)
        wire_free(p->pages[i]);
    p->n_pages = 0;
    p->n_failed = 0;
    p->unlisted = 0;
    p->fetched = 0;
    muster__task_counts__init(&p->counts);
}

static void poll_free(task_poll *p)
{
    poll_clear(p);
    mu_free(p->pages);
    mu_free(p->failed);
}

/* Keep reply E (taken, also on failure). */
static int poll_keep(task_poll *p, Muster__Envelope *e)
{
    if (p->n_pages == p->cap_pages) {
        size_t cap = p->cap_pages ? 2 * p->cap_pages : 8;
        Muster__Envelope **n = mu_realloc(p->pages, cap * sizeof(*n));
        if (!n) {
            wire_free(e);
            return -1;
        }
        p->pages = n;
        p->cap_pages = cap;
    }
    p->pages[p->n_pages++] = e;
    return 0;
}

static void poll_add_failed(task_poll *p, const Muster__TaskInfo *t)
{
    if (p->n_failed == p->cap_failed) {
        size_t cap = p->cap_failed ? 2 * p->cap_failed : 16;
        const Muster__TaskInfo **n = mu_realloc(p->failed, cap * sizeof(*n));
        if (!n) {
            p->unlisted++;
            return;
        }
        p->failed = n;
        p->cap_failed = cap;
    }
    p->failed[p->n_failed++] = t;
}

static void count_task(task_poll *p, const Muster__TaskInfo *t)
{
    Muster__TaskCounts *c = &p->counts;
    if (!strcmp(t->state, "succeeded"))
        c->succeeded++;
    else if (!strcmp(t->state, "failed"))
        c->failed++;
    else if (!strcmp(t->state, "cancelled"))
        c->cancelled++;
    else if (!strcmp(t->state, "running"))
        c->running++;
    else if (!strcmp(t->state, "ready"))
        c->ready++;
    else
        c->waiting++; /* waiting, or a state this client does not know: not over */
    if (!strcmp(t->state, "failed") || !strcmp(t->state, "cancelled"))
        poll_add_failed(p, t);
    if (!p->cluster_id[0] && t->cluster_id)
        snprintf(p->cluster_id, sizeof(p->cluster_id), "%s", t->cluster_id);
}

static uint32_t tasks_active(const Muster__TaskCounts *c)
{
    return c->waiting + c->ready + c->running;
}

static uint32_t tasks_total(const Muster__TaskCounts *c)
{
    return tasks_active(c) + c->succeeded + c->failed + c->cancelled;
}

static int list_page(muster_client *mc, const char *cluster, const char *state, uint32_t offset,
                     uint32_t limit, Muster__Envelope **reply, Muster__Status *st, mu_error *err)
{
    Muster__ListTasksRequest q = MUSTER__LIST_TASKS_REQUEST__INIT;
    q.cluster_id = (char *)cluster;
    q.state = (char *)state;
    q.offset = offset;
    q.limit = limit;
    return muster_list_tasks(mc, &q, reply, st, err);
}

/* Every task of the cluster: its counts are in any ListTasks reply. */
static int poll_all(muster_client *mc, const char *cluster, task_poll *p, Muster__Status *st,
                    mu_error *err)
{
    Muster__Envelope *r;
    poll_clear(p);
    if (list_page(mc, cluster, "", 0, 1, &r, st, err) < 0)
        return -1;
    const Muster__ListTasksReply *lr = r->list_tasks_reply;
    if (lr->counts) {
        p->counts.waiting = lr->counts->waiting;
        p->counts.ready = lr->counts->ready;
        p->counts.running = lr->counts->running;
        p->counts.succeeded = lr->counts->succeeded;
        p->counts.failed = lr->counts->failed;
        p->counts.cancelled = lr->counts->cancelled;
    }
    if (lr->n_tasks && !p->cluster_id[0])
        snprintf(p->cluster_id, sizeof(p->cluster_id), "%s", lr->tasks[0]->cluster_id);
    wire_free(r);
    return 0;
}

/* After poll_all: the failed and cancelled tasks, up to TASK_FAILED_SHOWN
 * of each. */
static int poll_all_failed(muster_client *mc, const char *cluster, task_poll *p, Muster__Status *st,
                           mu_error *err)
{
    static const char *const states[] = {"failed", "cancelled"};
    for (size_t s = 0; s < 2; s++) {
        Muster__Envelope *r;
        if (list_page(mc, cluster, states[s], 0, TASK_FAILED_SHOWN, &r, st, err) < 0)
            return -1;
        const Muster__ListTasksReply *lr = r->list_tasks_reply;
        for (size_t i = 0; i < lr->n_tasks; i++)
            poll_add_failed(p, lr->tasks[i]);
        if (lr->total > lr->n_tasks)
            p->unlisted += lr->total - (uint32_t)lr->n_tasks;
        if (poll_keep(p, r) < 0)
            return errprintf(err, "out of memory");
    }
    return 0;
}

/* The tasks numbered NUMBERS (sorted, distinct, n > 0). ListTasks pages
 * through tasks in number order; the first page is asked at offset
 * NUMBERS[0], where that task is when no earlier number is missing, and
 * moved back when a page starts past it (the gap tells how far: numbers
 * grow at least as fast as offsets). Returns 0, -1 when a call failed, -2
 * (errp says which) when a task is not there. */
static int poll_set(muster_client *mc, const char *cluster, const uint32_t *numbers, size_t n,
                    task_poll *p, Muster__Status *st, mu_error *err)
{
    uint32_t lo = numbers[0], hi = numbers[n - 1];
    uint64_t off = lo;
    bool started = false, done = false;
    size_t want = 0, seen = 0;
    long missing = -1; /* index in numbers of the first one not found */
    poll_clear(p);
    while (!done) {
        Muster__Envelope *r;
        if (list_page(mc, cluster, "", (uint32_t)off, TASK_PAGE, &r, st, err) < 0)
            return -1;
        const Muster__ListTasksReply *lr = r->list_tasks_reply;
        if (lr->n_tasks == 0) {
            uint32_t total = lr->total;
            wire_free(r);
            if (started || off == 0 || total == 0 || off < total)
                break;
            off = total - 1; /* the guess went past the end: start lower */
            continue;
        }
        uint32_t first = lr->tasks[0]->number;
        if (!started && first > lo && off > 0) {
            uint64_t back = first - lo;
            off = back > off ? 0 : off - back;
            wire_free(r);
            continue;
        }
        started = true;
        p->fetched += lr->n_tasks;
        for (size_t i = 0; i < lr->n_tasks && !done; i++) {
            const Muster__TaskInfo *t = lr->tasks[i];
            while (want < n && numbers[want] < t->number) {
                if (missing < 0)
                    missing = (long)want;
                want++;
            }
            if (want < n && numbers[want] == t->number) {
                count_task(p, t);
                seen++;
                want++;
            }
            done = want == n || t->number >= hi;
        }
        off += lr->n_tasks;
        if (off >= lr->total)
            done = true;
        if (poll_keep(p, r) < 0)
            return errprintf(err, "out of memory");
    }
    if (seen < n) {
        if (missing < 0)
            missing = (long)want;
        errprintf(err, "task %s/%u not found", p->cluster_id[0] ? p->cluster_id : cluster,
                  numbers[missing]);
        return -2;
    }
    return 0;
}

/* "12/50 succeeded, 3 running, 35 queued, 0 failed"; COMPACT leaves out
 * the parts that are zero. */
static void progress_text(const Muster__TaskCounts *c, bool compact, char *out, size_t n)
{
    size_t len = 0;
    int k = snprintf(out, n, "%u/%u succeeded", c->succeeded, tasks_total(c));
    len = k > 0 ? (size_t)k : 0;
    const char *names[] = {"running", "queued", "failed", "cancelled"};
    uint32_t v[] = {c->running, c->waiting + c->ready, c->failed, c->cancelled};
    for (size_t i = 0; i < 4 && len < n; i++) {
        if (!v[i] && (compact || i == 3))
            continue;
        k = snprintf(out + len, n - len, ", %u %s", v[i], names[i]);
        if (k > 0)
            len += (size_t)k;
    }
}

/* Wait for NUMBERS (n of them) of CLUSTER, or for all its tasks when n is
 * 0, polling ListTasks; report as `task wait` does. SUBMITTED is the reply
 * of `task submit --wait`, for its JSON. Returns the exit status. */
static int wait_tasks(const cli *c, muster_client *mc, const char *cluster, const uint32_t *numbers,
                      size_t n, uint32_t timeout_s, const Muster__SubmitTasksReply *submitted)
{
    catch_sigint();
    bool tty = isatty(STDERR_FILENO) && !c->json;
    uint64_t deadline = timeout_s ? clock_mono_ms() + (uint64_t)timeout_s * 1000 : UINT64_MAX;
    task_poll polls[2];
    memset(polls, 0, sizeof(polls));
    int cur = -1; /* polls[cur]: the latest good poll */
    char asked[TASKGRAPH_MAX_CLUSTER_LEN + 1];
    snprintf(asked, sizeof(asked), "%s", cluster);
    size_t shown_len = 0; /* of the progress line on the terminal */
    char shown[160] = ""; /* its text */
    bool quiet_broker = false;
    const char *outcome = NULL;
    int code = EXIT_OK;
    for (;;) {
        task_poll *p = &polls[cur == 0 ? 1 : 0];
        Muster__Status st;
        mu_error err;
        int rc =
            n ? poll_set(mc, asked, numbers, n, p, &st, &err) : poll_all(mc, asked, p, &st, &err);
        if (rc == -2 || (rc < 0 && (cur < 0 || errno != ETIMEDOUT))) {
            if (shown_len)
                fputc('\n', stderr);
            if (rc == -2) {
                if (c->json)
                    format_error_json(stdout, "not_found", err.text);
                fprintf(stderr, "muster: %s\n", err.text);
                code = EXIT_REMOTE;
            } else {
                code = fail(c, &err, st);
            }
            goto out;
        }
        if (rc < 0) {
            /* The broker answered before: it may be restarting. */
            if (!quiet_broker)
                fprintf(stderr, "%smuster: %s (still waiting)\n", shown_len ? "\n" : "", err.text);
            quiet_broker = true;
            shown_len = 0;
            shown[0] = '\0';
        } else {
            quiet_broker = false;
            cur = p == &polls[0] ? 0 : 1;
            /* From now on ask by the full id: a prefix could become
             * ambiguous while we wait. */
            if (p->cluster_id[0])
                snprintf(asked, sizeof(asked), "%s", p->cluster_id);
            char line[160];
            progress_text(&p->counts, false, line, sizeof(line));
            if (tty && strcmp(line, shown)) {
                size_t len = strlen(line);
                fprintf(stderr, "\r%s%*s", line, shown_len > len ? (int)(shown_len - len) : 0, "");
                shown_len = len;
                snprintf(shown, sizeof(shown), "%s", line);
            }
            if (tasks_active(&p->counts) == 0) {
                bool bad = p->counts.failed || p->counts.cancelled;
                outcome = bad ? "failed" : "succeeded";
                code = bad ? EXIT_REMOTE : EXIT_OK;
                break;
            }
        }
        uint64_t now = clock_mono_ms();
        if (interrupted) {
            outcome = "interrupted";
            code = EXIT_INTERRUPTED;
            break;
        }
        if (now >= deadline) {
            outcome = "timeout";
            code = EXIT_WAIT_TIMEOUT;
            break;
        }
        uint64_t step = cur >= 0 && polls[cur].fetched > 1000 ? TASK_POLL_SLOW_MS : TASK_POLL_MS;
        clock_sleep_ms(deadline - now < step ? deadline - now : step, &interrupted);
    }
    if (shown_len)
        fprintf(stderr, "\r%*s\r", (int)shown_len, "");
    /* Here cur >= 0: a failed first poll has ended the wait above. */
    task_poll *p = &polls[cur];
    const char *cid = p->cluster_id[0] ? p->cluster_id : asked;
    if (!n && (p->counts.failed || p->counts.cancelled)) {
        Muster__Status st;
        mu_error err;
        if (poll_all_failed(mc, asked, p, &st, &err) < 0)
            fprintf(stderr, "muster: could not list the failed tasks: %s\n", err.text);
    }
    char line[160];
    progress_text(&p->counts, true, line, sizeof(line));
    if (!strcmp(outcome, "timeout"))
        fprintf(stderr, "muster: not over after %u s: %s\n", timeout_s, line);
    else if (!strcmp(outcome, "interrupted"))
        fprintf(stderr, "muster: stopped waiting: %s\n", line);
    else
        fprintf(stderr, "muster: %s\n", line);
    size_t listed = p->n_failed < 20 ? p->n_failed : 20;
    for (size_t i = 0; i < listed; i++) {
        const Muster__TaskInfo *t = p->failed[i];
        fprintf(stderr, "  %s/%u%s%s%s %s%s%s\n", t->cluster_id, t->number, *t->name ? " (" : "",
                t->name, *t->name ? ")" : "", t->state, *t->reason ? ": " : "", t->reason);
    }
    if (p->n_failed - listed + p->unlisted)
        fprintf(stderr, "  ... and %zu more: muster task list --cluster %s --state failed\n",
                p->n_failed - listed + p->unlisted, cid);
    if (c->json)
        format_task_wait_json(stdout, cid, submitted, outcome, &p->counts, p->failed, p->n_failed);
out:
    poll_free(&polls[0]);
    poll_free(&polls[1]);
    return code;
}

static int task_submit(cli *c, int argc, char **argv)
{
    submit_args *a = mu_calloc(1, sizeof(*a));
    if (!a) {
        fprintf(stderr, "muster: out of memory\n");
        return EXIT_REMOTE;
    }
    int code = parse_submit(argc, argv, a);
    taskgraph *g = NULL;
    muster_client *mc = NULL;
    Muster__Envelope *reply = NULL;
    uint32_t *numbers = NULL;
    if (code) {
        code = code < 0 ? EXIT_OK : code;
        goto out;
    }
    Muster__SubmitTasksRequest q = MUSTER__SUBMIT_TASKS_REQUEST__INIT;
    Muster__TaskSpec *one = &a->spec;
    if (a->file) {
        mu_error err;
        if (!(g = taskgraph_load(a->file, &err))) {
            code = bad_input(c, err.text);
            goto out;
        }
        q = *taskgraph_request(g);
        if (a->cluster)
            q.cluster_id = (char *)a->cluster;
        if (!*q.cluster_id) {
            code = usage_error("task submit: which cluster? give --cluster ID, or \"cluster\" "
                               "in %s",
                               a->file);
            goto out;
        }
    } else {
        q.cluster_id = (char *)a->cluster;
        q.tasks = &one;
        q.n_tasks = 1;
    }
    if (!(mc = connect_or_fail(c, &code)))
        goto out;
    Muster__Status st;
    mu_error err;
    if (muster_submit_tasks(mc, &q, &reply, &st, &err) < 0) {
        code = fail_request(c, &err, st, NULL);
        goto out;
    }
    const Muster__SubmitTasksReply *r = reply->submit_tasks_reply;
    if (!r || !r->cluster_id || !*r->cluster_id || r->count != q.n_tasks ||
        (uint64_t)r->first + r->count - 1 > UINT32_MAX) {
        code = bad_reply(c, "does not match the submission");
        goto out;
    }
    if (c->json && !a->wait)
        format_submitted_json(stdout, r);
    else if (!c->json && !a->file)
        printf("%s/%u\n", r->cluster_id, r->first);
    else if (!c->json && r->count == 1)
        printf("submitted 1 task: %s/%u\n", r->cluster_id, r->first);
    else if (!c->json)
        printf("submitted %u tasks: %s/%u..%s/%u\n", r->count, r->cluster_id, r->first,
               r->cluster_id, r->first + r->count - 1);
    fflush(stdout);
    if (a->wait) {
        if (!(numbers = mu_calloc(r->count, sizeof(*numbers)))) {
            fprintf(stderr, "muster: out of memory\n");
            code = EXIT_REMOTE;
            goto out;
        }
        for (uint32_t i = 0; i < r->count; i++)
            numbers[i] = r->first + i;
        code = wait_tasks(c, mc, r->cluster_id, numbers, r->count, a->wait_timeout_s, r);
    }
out:
    mu_free(numbers);
    wire_free(reply);
    muster_client_destroy(mc);
    taskgraph_destroy(g);
    mu_free(a);
    return code;
}

/* --- task list / show / logs / wait / cancel --- */

static int task_list(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"cluster", required_argument, NULL, OPT_T_CLUSTER},
        {"state", required_argument, NULL, OPT_STATE},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"offset", required_argument, NULL, OPT_OFFSET},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    static const char *const states[] = {"waiting", "ready",     "running", "succeeded",
                                         "failed",  "cancelled", "active"};
    Muster__ListTasksRequest q = MUSTER__LIST_TASKS_REQUEST__INIT;
    int o, rc;
    uint64_t v;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case OPT_T_CLUSTER:
            q.cluster_id = optarg;
            break;
        case OPT_STATE: {
            bool ok = false;
            for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
                ok = ok || !strcmp(optarg, states[i]);
            if (!ok)
                return usage_error("--state \"%s\" is not waiting, ready, running, succeeded, "
                                   "failed, cancelled or active",
                                   optarg);
            q.state = optarg;
            break;
        }
        case OPT_LIMIT:
            if ((rc = parse_count("--limit", optarg, TASK_PAGE, &q.limit)))
                return rc;
            break;
        case OPT_OFFSET:
            if (str_to_u64(optarg, 0, UINT32_MAX, &v) < 0)
                return usage_error("--offset \"%s\" is not a count", optarg);
            q.offset = (uint32_t)v;
            break;
        case 'h':
        case OPT_HELP:
            task_list_help();
            return EXIT_OK;
        default:
            return usage_error("task list: unknown option or missing value in \"%s\"",
                               argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("task list: unexpected argument \"%s\" (the cluster is --cluster ID)",
                           argv[optind]);
    if (!*q.cluster_id)
        return usage_error("task list: which cluster? give --cluster ID");
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    Muster__Envelope *reply;
    Muster__Status st;
    mu_error err;
    if (muster_list_tasks(mc, &q, &reply, &st, &err) < 0) {
        code = fail(c, &err, st);
    } else {
        if (c->json)
            format_tasks_json(stdout, reply->list_tasks_reply);
        else
            format_tasks_table(stdout, reply->list_tasks_reply, clock_wall_ms());
        wire_free(reply);
    }
    muster_client_destroy(mc);
    return code;
}

/* Parse "TASK [--follow]" of show, logs and cancel (argv[0] is the
 * command's name). Returns 0, -1 after --help was shown, or a usage exit
 * status. */
static int parse_task_cmd(int argc, char **argv, void (*help)(void), char *cluster, size_t n,
                          uint32_t *number, bool *follow)
{
    static const struct option opts[] = {
        {"follow", no_argument, NULL, OPT_T_FOLLOW},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *name = argv[0], *id = NULL;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "hf", opts, NULL)) != -1) {
        switch (o) {
        case 'f':
        case OPT_T_FOLLOW:
            if (!follow)
                goto unknown;
            *follow = true;
            break;
        case 'h':
        case OPT_HELP:
            help();
            return -1;
        default:
        unknown:
            return usage_error("task %s: unknown option \"%s\"", name, argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (id)
            return usage_error("task %s: unexpected argument \"%s\"", name, argv[i]);
        id = argv[i];
    }
    if (!id)
        return usage_error("task %s: which task? give CLUSTER/NUMBER", name);
    mu_error err;
    if (taskgraph_parse_id(id, cluster, n, number, &err) < 0)
        return usage_error("task %s: %s", name, err.text);
    return 0;
}

static int task_show(cli *c, int argc, char **argv, bool cancel)
{
    char cluster[TASKGRAPH_MAX_CLUSTER_LEN + 1];
    uint32_t number;
    int rc = parse_task_cmd(argc, argv, cancel ? task_cancel_help : task_show_help, cluster,
                            sizeof(cluster), &number, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    Muster__Envelope *reply = NULL;
    Muster__Status st;
    mu_error err;
    rc = cancel ? muster_cancel_task(mc, cluster, number, &reply, &st, &err)
                : muster_get_task(mc, cluster, number, &reply, &st, &err);
    if (rc < 0) {
        code = fail(c, &err, st);
    } else if (!reply->task_reply->task) {
        code = bad_reply(c, "names no task");
    } else {
        const Muster__TaskInfo *t = reply->task_reply->task;
        if (c->json)
            format_task_json(stdout, t);
        else if (!cancel)
            format_task_detail(stdout, t, clock_wall_ms());
        else if (!strcmp(t->state, "cancelled"))
            printf("task %s/%u cancelled\n", t->cluster_id, t->number);
        else
            printf("task %s/%u is %s%s%s\n", t->cluster_id, t->number, t->state,
                   *t->reason ? ": " : "", t->reason);
    }
    wire_free(reply);
    muster_client_destroy(mc);
    return code;
}

static int task_logs(cli *c, int argc, char **argv)
{
    char cluster[TASKGRAPH_MAX_CLUSTER_LEN + 1];
    uint32_t number;
    bool follow = false;
    int rc = parse_task_cmd(argc, argv, task_logs_help, cluster, sizeof(cluster), &number, &follow);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    if (follow)
        catch_sigint();
    uint64_t offset = 0;
    bool said_final = false;
    /* --json without --follow: one document of all that is kept, from
     * all.offset to all.next (output read before a gap is dropped, so that
     * data stays contiguous). */
    bool collect = c->json && !follow, have_all = false;
    Muster__TaskLogsReply all = MUSTER__TASK_LOGS_REPLY__INIT;
    uint8_t *buf = NULL;
    size_t cap = 0;
    char state[32] = "";
    while (!interrupted) {
        Muster__Envelope *reply;
        Muster__Status st;
        mu_error err;
        if (muster_task_logs(mc, cluster, number, offset, TASK_LOG_CHUNK, &reply, &st, &err) < 0) {
            code = fail(c, &err, st);
            break;
        }
        const Muster__TaskLogsReply *r = reply->task_logs_reply;
        size_t len = r->data.len;
        bool final = r->final;
        if (r->next < r->offset + len || r->offset < offset) {
            wire_free(reply);
            code = bad_reply(c, "has offsets that do not add up");
            break;
        }
        if (r->offset > offset)
            fprintf(stderr, "[... %" PRIu64 " bytes no longer kept ...]\n", r->offset - offset);
        if (collect) {
            if (!have_all || r->offset > offset) {
                all.data.len = 0;
                all.offset = r->offset;
            }
            if (all.data.len + len > cap) {
                size_t ncap = (all.data.len + len) * 2;
                uint8_t *nb = mu_realloc(buf, ncap);
                if (!nb) {
                    wire_free(reply);
                    fprintf(stderr, "muster: out of memory\n");
                    code = EXIT_REMOTE;
                    break;
                }
                buf = nb;
                cap = ncap;
            }
            if (len)
                memcpy(buf + all.data.len, r->data.data, len);
            all.data.len += len;
            all.next = r->next;
            all.final = final;
            snprintf(state, sizeof(state), "%s", r->state);
            have_all = true;
        } else if (c->json && (len || (final && !said_final))) {
            /* --follow --json: a line per reply with data, and one that
             * says it is over. */
            format_task_logs_json(stdout, cluster, number, r, true);
            said_final = said_final || final;
        } else if (!c->json && len) {
            fwrite(r->data.data, 1, len, stdout);
        }
        fflush(stdout);
        offset = r->next;
        wire_free(reply);
        if (len)
            continue; /* there may be more at once */
        if (!follow || final)
            break;
        clock_sleep_ms(TASK_POLL_MS, &interrupted);
    }
    if (collect && have_all && code == EXIT_OK) {
        all.data.data = buf;
        all.state = state;
        format_task_logs_json(stdout, cluster, number, &all, false);
    }
    mu_free(buf);
    muster_client_destroy(mc);
    return code;
}

static int uint32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int task_wait(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"cluster", required_argument, NULL, OPT_T_CLUSTER},
        {"timeout", required_argument, NULL, OPT_TIMEOUT_S},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cluster = NULL;
    char from_id[TASKGRAPH_MAX_CLUSTER_LEN + 1];
    uint32_t timeout_s = 0;
    int o;
    uint64_t v;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case OPT_T_CLUSTER:
            if (!*optarg || strlen(optarg) > TASKGRAPH_MAX_CLUSTER_LEN)
                return usage_error("--cluster \"%s\" is not a cluster id", optarg);
            cluster = optarg;
            break;
        case OPT_TIMEOUT_S:
            if (str_to_u64(optarg, 1, 31 * 86400, &v) < 0)
                return usage_error("--timeout \"%s\" is not a number of seconds (1..2678400)",
                                   optarg);
            timeout_s = (uint32_t)v;
            break;
        case 'h':
        case OPT_HELP:
            task_wait_help();
            return EXIT_OK;
        default:
            return usage_error("task wait: unknown option or missing value in \"%s\"",
                               argv[optind - 1]);
        }
    }
    mu_error err;
    if (!cluster) {
        /* The cluster of the first task given as CLUSTER/N. */
        for (int i = optind; i < argc && !cluster; i++) {
            uint32_t unused;
            if (!strchr(argv[i], '/'))
                continue;
            if (taskgraph_parse_id(argv[i], from_id, sizeof(from_id), &unused, &err) < 0)
                return usage_error("task wait: %s", err.text);
            cluster = from_id;
        }
        if (!cluster)
            return usage_error("task wait: which cluster? give --cluster ID, or tasks as "
                               "CLUSTER/NUMBER");
    }
    size_t n = (size_t)(argc - optind);
    uint32_t *numbers = n ? mu_calloc(n, sizeof(*numbers)) : NULL;
    if (n && !numbers) {
        fprintf(stderr, "muster: out of memory\n");
        return EXIT_REMOTE;
    }
    for (size_t i = 0; i < n; i++) {
        if (taskgraph_parse_after(argv[optind + (int)i], cluster, &numbers[i], &err) < 0) {
            mu_free(numbers);
            return usage_error("task wait: %s", err.text);
        }
    }
    if (n)
        qsort(numbers, n, sizeof(*numbers), uint32_cmp);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (!distinct || numbers[i] != numbers[distinct - 1])
            numbers[distinct++] = numbers[i];
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (mc)
        code = wait_tasks(c, mc, cluster, numbers, distinct, timeout_s, NULL);
    muster_client_destroy(mc);
    mu_free(numbers);
    return code;
}

static int cmd_task(cli *c, int argc, char **argv)
{
    if (argc < 2) {
        task_help(stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        task_help(stdout);
        return EXIT_OK;
    }
    argc--;
    argv++;
    if (!strcmp(sub, "submit"))
        return task_submit(c, argc, argv);
    if (!strcmp(sub, "list"))
        return task_list(c, argc, argv);
    if (!strcmp(sub, "show"))
        return task_show(c, argc, argv, false);
    if (!strcmp(sub, "cancel"))
        return task_show(c, argc, argv, true);
    if (!strcmp(sub, "logs"))
        return task_logs(c, argc, argv);
    if (!strcmp(sub, "wait"))
        return task_wait(c, argc, argv);
    return usage_error("task: unknown command \"%s\"", sub);
}

/* Whether the command line is `cluster [globals] watch ...`, `task
 * [globals] submit ...` or `task [globals] wait ...`: its --timeout is then
 * the command's own (seconds), not the per-request one. */
static bool has_local_timeout(int argc, char **argv)
{
    bool cluster = argc >= 2 && !strcmp(argv[0], "cluster");
    bool task = argc >= 2 && !strcmp(argv[0], "task");
    if (!cluster && !task)
        return false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--broker") || !strcmp(a, "-b") || !strcmp(a, "--events") ||
            !strcmp(a, "--timeout") || !strcmp(a, "-t")) {
            i++;
            continue;
        }
        if (a[0] == '-')
            continue;
        return cluster ? !strcmp(a, "watch") : !strcmp(a, "submit") || !strcmp(a, "wait");
    }
    return false;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"broker", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"events", required_argument, NULL, 'E'},
        {NULL, 0, NULL, 0},
    };
    const char *env = getenv("MUSTER_BROKER");
    const char *events = getenv("MUSTER_EVENTS");
    cli c = {env && *env ? env : "tcp://127.0.0.1:7701", events && *events ? events : NULL, 5000,
             false};
    int o;
    opterr = 0;
    /* '+': stop at the command; its own flags are parsed by the command. */
    while ((o = getopt_long(argc, argv, "+b:t:jh", opts, NULL)) != -1) {
        uint64_t v;
        switch (o) {
        case 'b':
            c.broker = optarg;
            break;
        case 't':
            if (str_to_u64(optarg, 1, 3600000, &v) < 0)
                return usage_error("--timeout \"%s\" is not a number of milliseconds (1..3600000)",
                                   optarg);
            c.timeout_ms = (int)v;
            break;
        case 'j':
            c.json = true;
            break;
        case 'E':
            c.events = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("muster %s (protocol %u)\n", MUSTER_VERSION, WIRE_PROTOCOL_VERSION);
            return EXIT_OK;
        default:
            return usage_error("unknown option or missing value in \"%s\"", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[optind];
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    int rc = take_globals(&c, &sub_argc, sub_argv, has_local_timeout(sub_argc, sub_argv));
    if (rc)
        return rc;
    if (strcmp(cmd, "workers") == 0)
        return cmd_workers(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "quote") == 0)
        return cmd_quote(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "search") == 0)
        return cmd_search(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "cluster") == 0)
        return cmd_cluster(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "task") == 0)
        return cmd_task(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    return usage_error("unknown command \"%s\"", cmd);
}
