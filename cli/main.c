/* main.c - the `muster` command: a thin layer over the client library.
 * The global options and the fleet and cluster commands are here, the task
 * commands in cmd_task.c; what both share is declared in cli.h.
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
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cli.h"
#include "clock.h"
#include "format.h"
#include "muster/client.h"
#include "strutil.h"
#include "wire.h"

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
                 "  cluster create REQUEST --hours N --from-reservation R\n"
                 "                         a cluster carved out of your reservation R\n"
                 "  reserve create REQUEST --hours N [--min-workers N]\n"
                 "                         reserve workers for a commitment period, at a\n"
                 "                         discount by length (managed brokers)\n"
                 "  reserve list|show|extend|release\n"
                 "                         your reservations: what is in use and what is free\n"
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
                 "  keygen --out FILE      make a CURVE key pair; prints its public key\n"
                 "  events [--topic P]     print events as they come (yours, over CURVE)\n"
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
                 "      --key FILE         your CURVE key pair (muster keygen), for a broker\n"
                 "                         started with --key [$MUSTER_KEY]\n"
                 "      --broker-key KEY   the broker's public key [$MUSTER_BROKER_KEY]\n"
                 "  -j, --json             machine-readable output (errors too, on stdout)\n"
                 "  -h, --help             show this help (or a command's: muster workers --help)\n"
                 "      --version          show the version\n"
                 "\n" EXIT_CODES_HELP
                 "After waiting for tasks: 1 a task failed, 5 timed out, 130 interrupted.\n");
}

int fail(const cli *c, const mu_error *err, Muster__Status status)
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

int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "muster: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see muster --help)\n");
    va_end(ap);
    return EXIT_USAGE;
}

const muster_curve *cli_curve(const cli *c, muster_curve *curve, key_pair *kp, int *code)
{
    *code = EXIT_OK;
    if (!c->broker_key && !c->key_file)
        return NULL;
    mu_error err;
    if (!c->broker_key || !c->key_file) {
        *code = usage_error("--broker-key and --key go together (the broker's public key, and "
                            "your key pair file from `muster keygen`)");
        return NULL;
    }
    if (!key_valid(c->broker_key)) {
        *code = usage_error("--broker-key: not a public key (40 characters of Z85)");
        return NULL;
    }
    if (key_pair_load(c->key_file, kp, &err) < 0) {
        if (c->json)
            format_error_json(stdout, "bad_usage", err.text);
        *code = usage_error("--key: %s", err.text);
        return NULL;
    }
    *curve = (muster_curve){c->broker_key, kp->public_key, kp->secret_key};
    return curve;
}

muster_client *connect_or_fail(const cli *c, int *code)
{
    mu_error err;
    muster_curve curve;
    key_pair kp;
    const muster_curve *cv = cli_curve(c, &curve, &kp, code);
    if (*code)
        return NULL;
    muster_client *mc = muster_client_create_curve(c->broker, c->timeout_ms, cv, &err);
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
        int is_key = !strcmp(a, "--key");
        int is_broker_key = !strcmp(a, "--broker-key");
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
        } else if (is_broker || is_timeout || is_events || is_key || is_broker_key) {
            if (i + 1 >= *argc)
                return usage_error("%s needs a value", a);
            val = argv[++i];
        }
        if (is_broker) {
            c->broker = val;
        } else if (is_key) {
            c->key_file = val;
        } else if (is_broker_key) {
            c->broker_key = val;
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

int run(const cli *c, call_fn call, const void *arg, show_fn show)
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
        code = show(c, arg, reply);
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

static int show_worker(const cli *c, const void *arg, const Muster__Envelope *reply)
{
    if (c->json)
        format_worker_json(stdout, reply->get_worker_reply->worker);
    else
        format_worker_detail(stdout, reply->get_worker_reply->worker);
    return EXIT_OK;
}

static int call_list_workers(muster_client *mc, const void *q, Muster__Envelope **reply,
                             Muster__Status *st, mu_error *errp)
{
    return muster_list_workers(mc, q, reply, st, errp);
}

static int show_workers(const cli *c, const void *arg, const Muster__Envelope *reply)
{
    if (c->json)
        format_workers_json(stdout, reply->list_workers_reply);
    else
        format_workers_table(stdout, reply->list_workers_reply);
    return EXIT_OK;
}

static int call_status(muster_client *mc, const void *unused, Muster__Envelope **reply,
                       Muster__Status *st, mu_error *errp)
{
    (void)unused;
    return muster_broker_status(mc, reply, st, errp);
}

static int show_status(const cli *c, const void *arg, const Muster__Envelope *reply)
{
    if (c->json)
        format_status_json(stdout, reply->broker_status_reply);
    else
        format_status(stdout, reply->broker_status_reply);
    return EXIT_OK;
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
    static const char *const states[] = {"online", "suspect", "offline", NULL};
    Muster__ListWorkersRequest q = MUSTER__LIST_WORKERS_REQUEST__INIT;
    int o, rc;
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
            if ((rc = parse_offset(optarg, &q.offset)))
                return rc;
            break;
        case 's':
            if ((rc = parse_choice("--state", optarg, states)))
                return rc;
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

typedef enum spec_mode { MODE_QUOTE, MODE_CREATE, MODE_SEARCH, MODE_RESERVE } spec_mode;

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
    const char *from_resv; /* cluster create --from-reservation */
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
    OPT_BY,
    OPT_REASON,
    OPT_TIMEOUT_S,
    OPT_HELP,
    OPT_FROM_RESV,
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
           "  --from-reservation R   carve the cluster out of your reservation R (id or\n"
           "                         unique prefix): only its free members that fit the\n"
           "                         request are used, and replacements come only from it;\n"
           "                         they go back to it when the cluster ends. The cluster\n"
           "                         may not outlast the reservation (exit 4 when too few\n"
           "                         of its members are free)\n"
           "\n" EXIT_CODES_HELP "130: interrupted (Ctrl-C) while waiting; the cluster is kept.\n",
           REQUEST_FLAGS_HELP);
}

static void reserve_create_help(void)
{
    printf("Usage: muster reserve create --gpu MODEL (--workers N | --total-gpus N)\n"
           "                             --hours N [--min-workers N] [OPTIONS] [--json]\n"
           "Reserve workers for a commitment period (managed brokers): they are taken at\n"
           "once, all of them or at least --min-workers, and nobody else is offered them\n"
           "until the reservation ends. Below the count asked for, it takes workers as\n"
           "they become free, before self-service requests; members that go offline or\n"
           "fail verification are replaced. It never takes workers out of running\n"
           "clusters. Carve clusters out of it with `muster cluster create\n"
           "--from-reservation ID`. Prints the reservation id (--json: all of it). When\n"
           "the fleet cannot serve the request, shows why and the nearest requests that\n"
           "would succeed (exit 4); nothing is reserved then.\n"
           "\n"
           "The price per hour is fixed at creation: the members' prices less 10%% for a\n"
           "commitment of 7 days (168 hours) or more, 20%% for 30 days (720 hours) or\n"
           "more, 30%% for 90 days (2160 hours).\n"
           "\n"
           "Options:\n"
           "%s"
           "  --placement P          pack (all in one region) or spread [pack]\n"
           "  --hours N              commitment, 1..2160 (required)\n"
           "  --owner NAME           who it is for, without CURVE [$USER, else anonymous]\n"
           "\n" EXIT_CODES_HELP,
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

int split_list(char *arg, char **list, size_t *n, size_t max)
{
    char *save = NULL;
    int added = 0;
    for (char *tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        size_t len = strlen(tok);
        while (len && isspace((unsigned char)tok[len - 1]))
            tok[--len] = '\0';
        if (!*tok)
            continue;
        if (*n >= max)
            return -1;
        list[(*n)++] = tok;
        added = 1;
    }
    return added;
}

/* Split a comma list (in place: argv strings are ours) into list; trims
 * blanks. Returns 0 or a usage exit status. */
static int add_list(const char *flag, char *arg, char **list, size_t *n)
{
    int rc = split_list(arg, list, n, MAX_LIST);
    if (rc < 0)
        return usage_error("%s: at most %d values", flag, MAX_LIST);
    if (rc == 0)
        return usage_error("%s needs a value", flag);
    return 0;
}

int parse_count(const char *flag, const char *arg, uint64_t min, uint64_t max, uint32_t *out)
{
    uint64_t v;
    if (str_to_u64(arg, min, max, &v) < 0) {
        if (min == 1 && max >= UINT32_MAX)
            return usage_error("%s \"%s\" is not a positive whole number", flag, arg);
        return usage_error("%s \"%s\" is not a whole number in %llu..%llu", flag, arg,
                           (unsigned long long)min, (unsigned long long)max);
    }
    *out = (uint32_t)v;
    return 0;
}

int parse_offset(const char *arg, uint32_t *out)
{
    uint64_t v;
    if (str_to_u64(arg, 0, UINT32_MAX, &v) < 0)
        return usage_error("--offset \"%s\" is not a count", arg);
    *out = (uint32_t)v;
    return 0;
}

int parse_timeout_s(const char *arg, uint32_t *out)
{
    uint64_t v;
    if (str_to_u64(arg, 1, 31 * 86400, &v) < 0)
        return usage_error("--timeout \"%s\" is not a number of seconds (1..2678400)", arg);
    *out = (uint32_t)v;
    return 0;
}

int parse_choice(const char *flag, const char *arg, const char *const *choices)
{
    char text[256] = "";
    size_t len = 0;
    for (size_t i = 0; choices[i]; i++) {
        if (!strcmp(arg, choices[i]))
            return 0;
        const char *sep = i == 0 ? "" : choices[i + 1] ? ", " : " or ";
        int k = snprintf(text + len, sizeof(text) - len, "%s%s", sep, choices[i]);
        if (k > 0 && (size_t)k < sizeof(text) - len)
            len += (size_t)k;
    }
    return usage_error("%s \"%s\" is not %s", flag, arg, text);
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
        {"from-reservation", required_argument, NULL, OPT_FROM_RESV},
        {NULL, 0, NULL, 0},
    };
    static const char *const placements[] = {"pack", "spread", NULL};
    static const char *const sorts[] = {"price", "count", "uptime", NULL};
    const char *name = mode == MODE_QUOTE     ? "quote"
                       : mode == MODE_CREATE  ? "cluster create"
                       : mode == MODE_RESERVE ? "reserve create"
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
        const char *flag = o >= OPT_GPU && o <= OPT_LIMIT ? opts[o - OPT_GPU].name
                           : o == OPT_FROM_RESV           ? "from-reservation"
                                                          : "";
        bool request_only = o == OPT_WORKERS || o == OPT_TOTAL || o == OPT_MIN_WORKERS ||
                            o == OPT_PLACEMENT || o == OPT_HOURS;
        bool create_only = o == OPT_WAIT || o == OPT_WAIT_TIMEOUT || o == OPT_FROM_RESV;
        bool owner_ok = mode == MODE_CREATE || mode == MODE_RESERVE;
        bool search_only = o == OPT_SORT || o == OPT_LIMIT;
        if ((mode == MODE_SEARCH && (request_only || create_only)) ||
            (mode != MODE_CREATE && create_only) || (o == OPT_OWNER && !owner_ok) ||
            (mode != MODE_SEARCH && search_only))
            return usage_error("%s: --%s does not apply here", name, flag);
        switch (o) {
        case OPT_GPU:
            if ((rc = add_list("--gpu", optarg, a->models, &a->spec.n_gpu_models)))
                return rc;
            break;
        case OPT_GPW:
            if ((rc = parse_count("--gpus-per-worker", optarg, 1, 65535, &a->spec.gpus_per_worker)))
                return rc;
            a->have_gpw = true;
            break;
        case OPT_WORKERS:
            if ((rc = parse_count("--workers", optarg, 1, UINT32_MAX, &a->spec.workers)))
                return rc;
            a->have_workers = true;
            break;
        case OPT_TOTAL:
            if ((rc = parse_count("--total-gpus", optarg, 1, UINT32_MAX, &a->spec.total_gpus)))
                return rc;
            a->have_total = true;
            break;
        case OPT_MIN_WORKERS:
            if ((rc = parse_count("--min-workers", optarg, 1, UINT32_MAX, &a->spec.min_workers)))
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
            if ((rc = parse_choice("--placement", optarg, placements)))
                return rc;
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
        case OPT_FROM_RESV:
            if (!*optarg || strlen(optarg) > 64)
                return usage_error("--from-reservation: give a reservation id (or a unique "
                                   "prefix of at least 4 characters)");
            a->from_resv = optarg;
            break;
        case OPT_WAIT_TIMEOUT:
            if ((rc = parse_count("--wait-timeout", optarg, 1, 86400, &a->wait_timeout_s)))
                return rc;
            break;
        case OPT_SORT:
            if ((rc = parse_choice("--sort", optarg, sorts)))
                return rc;
            a->sort = optarg;
            break;
        case OPT_LIMIT:
            if ((rc = parse_count("--limit", optarg, 1, 10000, &v)))
                return rc;
            a->limit = v;
            break;
        case 'h':
        case OPT_HELP:
            if (mode == MODE_QUOTE)
                quote_help();
            else if (mode == MODE_CREATE)
                create_help();
            else if (mode == MODE_RESERVE)
                reserve_create_help();
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
        if (mode == MODE_CREATE || mode == MODE_RESERVE)
            return usage_error("%s: for how long? give --hours N (1..2160)", name);
        a->spec.hours = 1;
    }
    if ((mode == MODE_CREATE || mode == MODE_RESERVE) && !a->owner) {
        const char *user = getenv("USER");
        a->owner = user && *user && strlen(user) <= 63 ? user : "anonymous";
    }
    return 0;
}

/* Show a failed quote or create: a NOT_MET answer as the explanation and
 * alternatives (exit 4), anything else as fail() does. */
int fail_request(const cli *c, const mu_error *err, Muster__Status st, Muster__Envelope *not_met)
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

int bad_reply(const cli *c, const char *what)
{
    mu_error e;
    errprintf(&e, "the broker's reply %s", what);
    errno = EPROTO;
    return fail(c, &e, MUSTER__STATUS__STATUS_OK);
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

static int call_search(muster_client *mc, const void *q, Muster__Envelope **reply,
                       Muster__Status *st, mu_error *errp)
{
    return muster_search(mc, q, reply, st, errp);
}

static int show_search(const cli *c, const void *arg, const Muster__Envelope *reply)
{
    if (c->json)
        format_search_json(stdout, reply->search_reply);
    else
        format_search_table(stdout, reply->search_reply);
    return EXIT_OK;
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
    return run(c, call_search, &q, show_search);
}

/* --- waiting and watching --------------------------------------------------------- */

/* Set by SIGINT/SIGTERM while waiting or watching (cli.h). */
volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Ctrl-C sets `interrupted` and interrupts the waits (no SA_RESTART). */
void catch_sigint(void)
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
    muster_curve curve;
    key_pair kp;
    int code;
    const muster_curve *cv = cli_curve(c, &curve, &kp, &code);
    if (code) {
        fprintf(stderr, "muster: events: no keys: polling instead\n");
        return NULL;
    }
    muster_events *ev = NULL;
    if (cv) {
        /* Over CURVE the PUB socket is for operators: subscribe on the
         * client endpoint, which shows this account what it may see. */
        if (!(ev = muster_events_subscribe(c->broker, topic, cv, c->timeout_ms, &err)))
            fprintf(stderr, "muster: events: %s: polling instead\n", err.text);
        return ev;
    }
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
    if ((a.from_resv
             ? muster_create_cluster_from(mc, &a.spec, a.owner, a.from_resv, &reply, &nm, &st, &err)
             : muster_create_cluster(mc, &a.spec, a.owner, &reply, &nm, &st, &err)) < 0) {
        code = fail_request(c, &err, st, nm);
        goto out;
    }
    const Muster__ClusterInfo *ci = reply->cluster_reply->cluster;
    if (!ci || !ci->id || !*ci->id) {
        code = bad_reply(c, "names no cluster");
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
                 "                             [--wait-timeout S] [--from-reservation R]\n"
                 "                             [--json]\n"
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
static void reserve_help(FILE *out);

static int parse_id_cmd_of(const char *noun, void (*help)(FILE *out), const char *name, int argc,
                           char **argv, const char **id, uint32_t *hours, const char **reason,
                           uint32_t *timeout_s);

static int parse_id_cmd(const char *name, int argc, char **argv, const char **id, uint32_t *hours,
                        const char **reason, uint32_t *timeout_s)
{
    return parse_id_cmd_of("cluster", cluster_help, name, argc, argv, id, hours, reason, timeout_s);
}

static int parse_id_cmd_of(const char *noun, void (*help)(FILE *out), const char *name, int argc,
                           char **argv, const char **id, uint32_t *hours, const char **reason,
                           uint32_t *timeout_s)
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
        case OPT_TIMEOUT_S:
            if (!timeout_s)
                goto unknown;
            if ((rc = parse_timeout_s(optarg, timeout_s)))
                return rc;
            break;
        case 'h':
        case OPT_HELP:
            help(stdout);
            return -1;
        default:
        unknown:
            return usage_error("%s %s: unknown option or missing value in \"%s\"", noun, name,
                               argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (!*id)
            *id = argv[i];
        else
            return usage_error("%s %s: unexpected argument \"%s\"", noun, name, argv[i]);
    }
    if (!*id)
        return usage_error("%s %s: which %s? give its ID", noun, name, noun);
    if (hours && *hours == 0)
        return usage_error("%s %s: by how much? give --hours N (1..2160)", noun, name);
    return 0;
}

static int call_list_clusters(muster_client *mc, const void *q, Muster__Envelope **reply,
                              Muster__Status *st, mu_error *errp)
{
    return muster_list_clusters(mc, q, reply, st, errp);
}

static int show_clusters(const cli *c, const void *arg, const Muster__Envelope *reply)
{
    if (c->json)
        format_clusters_json(stdout, reply->list_clusters_reply);
    else
        format_clusters_table(stdout, reply->list_clusters_reply, clock_wall_ms());
    return EXIT_OK;
}

int parse_list_cmd(const list_cmd *l, int argc, char **argv)
{
    const struct option opts[] = {
        {"state", required_argument, NULL, OPT_STATE},
        {l->by, required_argument, NULL, OPT_BY},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"offset", required_argument, NULL, OPT_OFFSET},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int o, rc;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case OPT_STATE:
            if ((rc = parse_choice("--state", optarg, l->states)))
                return rc;
            *l->state = optarg;
            break;
        case OPT_BY:
            *l->by_value = optarg;
            break;
        case OPT_LIMIT:
            if ((rc = parse_count("--limit", optarg, 1, l->max_limit, l->limit)))
                return rc;
            break;
        case OPT_OFFSET:
            if ((rc = parse_offset(optarg, l->offset)))
                return rc;
            break;
        case 'h':
        case OPT_HELP:
            return -1;
        default:
            return usage_error("%s: unknown option or missing value in \"%s\"", l->name,
                               argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("%s: unexpected argument \"%s\"%s", l->name, argv[optind], l->hint);
    return 0;
}

static int cluster_list(cli *c, int argc, char **argv)
{
    static const char *const states[] = {"provisioning", "ready",  "degraded", "released",
                                         "expired",      "failed", "active",   NULL};
    Muster__ListClustersRequest q = MUSTER__LIST_CLUSTERS_REQUEST__INIT;
    const list_cmd l = {
        .name = "cluster list",
        .by = "owner",
        .hint = "",
        .states = states,
        .max_limit = 10000,
        .by_value = &q.owner,
        .state = &q.state,
        .limit = &q.limit,
        .offset = &q.offset,
    };
    int rc = parse_list_cmd(&l, argc, argv);
    if (rc < 0) {
        cluster_help(stdout);
        return EXIT_OK;
    }
    if (rc)
        return rc;
    return run(c, call_list_clusters, &q, show_clusters);
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

/* `muster events [--topic PREFIX] [--for S] [--count N]`: print events as
 * they come (one line each; JSON lines with --json). */
static int cmd_events(cli *c, int argc, char **argv)
{
    const char *topic = "";
    uint32_t for_s = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("Usage: muster events [--topic PREFIX] [--for S] [--count N] [--json]\n"
                   "Print the broker's events as they come: worker.<state>, cluster.<id> (its\n"
                   "changes), task.<cluster id> (its tasks' changes); --topic keeps those whose\n"
                   "topic starts with PREFIX. Over CURVE you see your own clusters' and tasks'\n"
                   "events and every worker's (operators and admins: everything). Stops after\n"
                   "--for seconds or --count events (default: Ctrl-C). Exit 0; 3 when the\n"
                   "broker cannot be reached.\n");
            return EXIT_OK;
        }
        if (!strcmp(a, "--topic") && i + 1 < argc) {
            topic = argv[++i];
        } else if (!strcmp(a, "--for") && i + 1 < argc) {
            int rc = parse_timeout_s(argv[++i], &for_s);
            if (rc)
                return rc;
        } else if (!strcmp(a, "--count") && i + 1 < argc) {
            int rc = parse_count("--count", argv[++i], 1, UINT32_MAX, &count);
            if (rc)
                return rc;
        } else {
            return usage_error("events: unexpected \"%s\"", a);
        }
    }
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    muster_events *ev = open_events(c, mc, topic);
    muster_client_destroy(mc);
    if (!ev)
        return EXIT_UNREACHABLE;
    catch_sigint();
    uint64_t end = for_s ? clock_mono_ms() + (uint64_t)for_s * 1000 : UINT64_MAX;
    uint32_t seen = 0;
    while (!interrupted && (!count || seen < count)) {
        uint64_t now = clock_mono_ms();
        if (now >= end)
            break;
        Muster__Envelope *e = NULL;
        mu_error err;
        long wait = end == UINT64_MAX ? 1000 : (long)(end - now);
        int rc = muster_events_next(ev, (int)(wait > 1000 ? 1000 : wait), &e, &err);
        if (rc < 0 && errno != EINTR) {
            fprintf(stderr, "muster: events: %s\n", err.text);
            muster_events_close(ev);
            return EXIT_UNREACHABLE;
        }
        if (rc == 0 && e) {
            print_event(c, e->event);
            wire_free(e);
            seen++;
        }
    }
    muster_events_close(ev);
    return EXIT_OK;
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

int subcommand_help(int argc, char **argv, void (*help)(FILE *out))
{
    if (argc < 2) {
        help(stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        help(stdout);
        return EXIT_OK;
    }
    return -1;
}

static int cmd_cluster(cli *c, int argc, char **argv)
{
    int rc = subcommand_help(argc, argv, cluster_help);
    if (rc >= 0)
        return rc;
    const char *sub = argv[1];
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
    rc = parse_id_cmd(sub, argc, argv, &id, extend ? &hours : NULL, release ? &reason : NULL,
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

/* --- reserve create / list / show / extend / release ----------------------------- */

static void reserve_help(FILE *out)
{
    fprintf(out, "Usage: muster reserve create REQUEST --hours N [--min-workers N] [--owner NAME]\n"
                 "                             [--json]\n"
                 "       muster reserve list [--state S] [--owner NAME] [--limit N] [--offset N]\n"
                 "                           [--json]\n"
                 "       muster reserve show ID [--json]\n"
                 "       muster reserve extend ID --hours N [--json]\n"
                 "       muster reserve release ID [--reason TEXT] [--json]\n"
                 "\n"
                 "Reserve workers for a commitment period at a commitment price, and carve\n"
                 "clusters out of them (`muster cluster create --from-reservation ID ...`).\n"
                 "ID is a full reservation id or a unique prefix of at least 4 characters.\n"
                 "REQUEST is as for `muster cluster create`: see `muster reserve create --help`.\n"
                 "\n"
                 "  create   take the workers now (all, or at least --min-workers); prints the\n"
                 "           id. Price per hour fixed now: the members' prices less 10%% for 7\n"
                 "           days or more, 20%% for 30 days or more, 30%% for 90 days\n"
                 "  list     reservations, newest first: S is active, released or expired [all]\n"
                 "  show     request, price, members (in use by which cluster, or free)\n"
                 "  extend   add N hours (1..2160 in all) to an active reservation; the price\n"
                 "           per hour stays\n"
                 "  release  end it now: free members go back to the pool at once, members in\n"
                 "           use when their cluster ends\n"
                 "\n" EXIT_CODES_HELP);
}

static int reserve_create(cli *c, int argc, char **argv)
{
    spec_args a;
    memset(&a, 0, sizeof(a));
    int rc = parse_spec(MODE_RESERVE, argc, argv, &a);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    Muster__Envelope *reply = NULL, *nm;
    Muster__Status st;
    mu_error err;
    uint32_t hours = a.spec.hours;
    if (muster_create_reservation(mc, &a.spec, a.spec.min_workers, hours, a.owner, &reply, &nm, &st,
                                  &err) < 0) {
        code = fail_request(c, &err, st, nm);
    } else if (!reply->reservation_reply->reservation ||
               !reply->reservation_reply->reservation->id) {
        code = bad_reply(c, "names no reservation");
    } else {
        const Muster__ReservationInfo *ri = reply->reservation_reply->reservation;
        if (c->json) {
            format_reservation_json(stdout, ri);
        } else {
            format_reservation_detail(stderr, ri);
            printf("%s\n", ri->id);
        }
    }
    wire_free(reply);
    muster_client_destroy(mc);
    return code;
}

static int call_list_reservations(muster_client *mc, const void *q, Muster__Envelope **reply,
                                  Muster__Status *st, mu_error *errp)
{
    return muster_list_reservations(mc, q, reply, st, errp);
}

static int show_reservations(const cli *c, const void *arg, const Muster__Envelope *reply)
{
    if (c->json)
        format_reservations_json(stdout, reply->list_reservations_reply);
    else
        format_reservations_table(stdout, reply->list_reservations_reply);
    return EXIT_OK;
}

static int reserve_list(cli *c, int argc, char **argv)
{
    static const char *const states[] = {"active", "released", "expired", NULL};
    Muster__ListReservationsRequest q = MUSTER__LIST_RESERVATIONS_REQUEST__INIT;
    const list_cmd l = {
        .name = "reserve list",
        .by = "owner",
        .hint = "",
        .states = states,
        .max_limit = 10000,
        .by_value = &q.owner,
        .state = &q.state,
        .limit = &q.limit,
        .offset = &q.offset,
    };
    int rc = parse_list_cmd(&l, argc, argv);
    if (rc < 0) {
        reserve_help(stdout);
        return EXIT_OK;
    }
    if (rc)
        return rc;
    return run(c, call_list_reservations, &q, show_reservations);
}

static int cmd_reserve(cli *c, int argc, char **argv)
{
    int rc = subcommand_help(argc, argv, reserve_help);
    if (rc >= 0)
        return rc;
    const char *sub = argv[1];
    argc--;
    argv++;
    if (!strcmp(sub, "create"))
        return reserve_create(c, argc, argv);
    if (!strcmp(sub, "list"))
        return reserve_list(c, argc, argv);
    if (strcmp(sub, "show") && strcmp(sub, "extend") && strcmp(sub, "release"))
        return usage_error("reserve: unknown command \"%s\" (create, list, show, extend or "
                           "release)",
                           sub);
    const char *id, *reason = NULL;
    uint32_t hours = 0;
    bool extend = !strcmp(sub, "extend"), release = !strcmp(sub, "release");
    rc = parse_id_cmd_of("reserve", reserve_help, sub, argc, argv, &id, extend ? &hours : NULL,
                         release ? &reason : NULL, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    int code = EXIT_OK;
    muster_client *mc = connect_or_fail(c, &code);
    if (!mc)
        return code;
    Muster__Envelope *reply = NULL;
    Muster__Status st;
    mu_error err;
    if (extend)
        rc = muster_extend_reservation(mc, id, hours, &reply, &st, &err);
    else if (release)
        rc = muster_release_reservation(mc, id, reason, &reply, &st, &err);
    else
        rc = muster_get_reservation(mc, id, &reply, &st, &err);
    if (rc < 0) {
        code = fail(c, &err, st);
    } else {
        const Muster__ReservationInfo *ri = reply->reservation_reply->reservation;
        if (!ri)
            code = bad_reply(c, "names no reservation");
        else if (c->json)
            format_reservation_json(stdout, ri);
        else
            format_reservation_detail(stdout, ri);
    }
    wire_free(reply);
    muster_client_destroy(mc);
    return code;
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
            !strcmp(a, "--timeout") || !strcmp(a, "-t") || !strcmp(a, "--key") ||
            !strcmp(a, "--broker-key")) {
            i++;
            continue;
        }
        if (a[0] == '-')
            continue;
        return cluster ? !strcmp(a, "watch") : !strcmp(a, "submit") || !strcmp(a, "wait");
    }
    return false;
}

/* `muster keygen --out FILE`: a key pair for CURVE (broker, agent or
 * client); the file is never overwritten. */
static int cmd_keygen(cli *c, int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("Usage: muster keygen --out FILE [--json]\n"
                   "Make a CURVE key pair (for musterd --key, muster-agent --key or muster\n"
                   "--key) and write it to FILE (JSON, mode 0600; an existing file is never\n"
                   "overwritten). Prints the public key: give it to the broker's operator for\n"
                   "your account, or to agents and clients as --broker-key. Keep FILE secret.\n");
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else
            return usage_error("keygen: unexpected \"%s\"", argv[i]);
    }
    if (!out)
        return usage_error("keygen: --out FILE is required (where the key pair goes)");
    key_pair kp;
    mu_error err;
    if (key_pair_generate(&kp, &err) < 0 || key_pair_save(out, &kp, &err) < 0) {
        if (errno == EEXIST)
            errprintf(&err, "%s exists: a key pair is never overwritten (choose another file)",
                      out);
        if (c->json)
            format_error_json(stdout, "bad_usage", err.text);
        fprintf(stderr, "muster: keygen: %s\n", err.text);
        return EXIT_REMOTE;
    }
    if (c->json)
        printf("{\"public_key\": \"%s\", \"file\": \"%s\"}\n", kp.public_key, out);
    else
        printf("%s\n", kp.public_key);
    return EXIT_OK;
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
        {"key", required_argument, NULL, 'K'},
        {"broker-key", required_argument, NULL, 'B'},
        {NULL, 0, NULL, 0},
    };
    const char *env = getenv("MUSTER_BROKER");
    const char *events = getenv("MUSTER_EVENTS");
    const char *key = getenv("MUSTER_KEY");
    const char *broker_key = getenv("MUSTER_BROKER_KEY");
    cli c = {env && *env ? env : "tcp://127.0.0.1:7701",
             events && *events ? events : NULL,
             5000,
             false,
             key && *key ? key : NULL,
             broker_key && *broker_key ? broker_key : NULL};
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
        case 'K':
            c.key_file = optarg;
            break;
        case 'B':
            c.broker_key = optarg;
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
    if (strcmp(cmd, "reserve") == 0)
        return cmd_reserve(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "task") == 0)
        return cmd_task(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "events") == 0)
        return cmd_events(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    return usage_error("unknown command \"%s\"", cmd);
}
