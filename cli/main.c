/* main.c - the `muster` command: a thin layer over the client library.
 *
 * Exit status, for scripts:
 *   0  success
 *   1  the broker answered with an error (not found, bad request, ...)
 *   2  bad usage (unknown command or flag, bad value)
 *   3  the broker could not be reached (no reply within --timeout)
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "muster/client.h"
#include "strutil.h"
#include "wire.h"

enum { EXIT_OK = 0, EXIT_REMOTE = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

typedef struct cli {
    const char *broker;
    int timeout_ms;
    bool json;
} cli;

static void usage(FILE *out)
{
    fprintf(out, "Usage: muster [GLOBAL OPTIONS] COMMAND [ARGS]\n"
                 "\n"
                 "Talk to a muster broker (musterd).\n"
                 "\n"
                 "Commands:\n"
                 "  workers [--state S] [--region R] [--gpu MODEL]\n"
                 "                         list workers (id, host, GPUs, region, tier, state,\n"
                 "                         last seen); S is online, suspect or offline\n"
                 "  workers show ID        one worker in detail (ID may be a unique prefix of\n"
                 "                         at least 4 characters)\n"
                 "  status                 the broker's version, uptime, fleet and counters\n"
                 "\n"
                 "Global options (also accepted after the command):\n"
                 "  -b, --broker EP        broker's client endpoint [$MUSTER_BROKER, else\n"
                 "                         tcp://127.0.0.1:7701]\n"
                 "  -t, --timeout MS       how long to wait for the broker [5000]\n"
                 "  -j, --json             machine-readable output (errors too, on stdout)\n"
                 "  -h, --help             show this help (or a command's: muster workers --help)\n"
                 "      --version          show the version\n"
                 "\n"
                 "Exit status: 0 success, 1 the broker answered with an error, 2 bad usage,\n"
                 "3 the broker could not be reached.\n");
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
 * command's arguments. Returns 0, or an exit status on a bad value. */
static int take_globals(cli *c, int *argc, char **argv)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        int is_broker = !strcmp(a, "--broker") || !strcmp(a, "-b");
        int is_timeout = !strcmp(a, "--timeout") || !strcmp(a, "-t");
        if (!strncmp(a, "--broker=", 9)) {
            is_broker = 1;
            val = a + 9;
        } else if (!strncmp(a, "--timeout=", 10)) {
            is_timeout = 1;
            val = a + 10;
        } else if (is_broker || is_timeout) {
            if (i + 1 >= *argc)
                return usage_error("%s needs a value", a);
            val = argv[++i];
        }
        if (is_broker) {
            c->broker = val;
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
                   "least 4 characters). S is online, suspect or offline.\n");
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
                   "message counters and endpoints.\n");
            return EXIT_OK;
        } else {
            return usage_error("status: unexpected argument \"%s\"", argv[i]);
        }
    }
    return run(c, call_status, NULL, show_status);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"broker", required_argument, NULL, 'b'}, {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    const char *env = getenv("MUSTER_BROKER");
    cli c = {env && *env ? env : "tcp://127.0.0.1:7701", 5000, false};
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
    int rc = take_globals(&c, &sub_argc, sub_argv);
    if (rc)
        return rc;
    if (strcmp(cmd, "workers") == 0)
        return cmd_workers(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    return usage_error("unknown command \"%s\"", cmd);
}
