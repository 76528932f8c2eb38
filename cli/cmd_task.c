/* cmd_task.c - `muster task ...`: submit, list, show, logs, wait, cancel.
 *
 * A task is named CLUSTER/NUMBER (taskgraph.h parses the names and graph
 * files). Every subcommand is one or a few calls of the client library;
 * `task wait` (and `task submit --wait`) and `task logs --follow` poll the
 * broker, as tasks have no events. Errors, usage and exit statuses are
 * reported as every other command does (cli.h).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "clock.h"
#include "format.h"
#include "muster/client.h"
#include "strutil.h"
#include "taskgraph.h"
#include "wire.h"

#define TASK_EXIT_CODES_HELP                                                                       \
    "Exit status: 0 success, 1 the broker answered with an error, 2 bad usage (a bad\n"            \
    "graph file too: nothing is sent), 3 the broker could not be reached, 4 the\n"                 \
    "submission cannot be met now. After waiting (task wait, task submit --wait):\n"               \
    "0 every task succeeded, 1 one failed or was cancelled, 5 --timeout or\n"                      \
    "--wait-timeout ran out first, 130 interrupted (Ctrl-C).\n"

/* getopt_long's codes of the long options (above every character, so that
 * -h and -f can share a case with --help and --follow). */
enum {
    OPT_CLUSTER = 256,
    OPT_NAME,
    OPT_GPUS,
    OPT_CPUS,
    OPT_MEMORY,
    OPT_AFTER,
    OPT_RETRIES,
    OPT_RETRY_EXITS,
    OPT_TIMEOUT,
    OPT_ENV,
    OPT_CWD,
    OPT_PLACEMENT,
    OPT_MEMBER,
    OPT_HARD,
    OPT_RESULT_FILE,
    OPT_FILE,
    OPT_WAIT,
    OPT_WAIT_TIMEOUT,
    OPT_STATE,
    OPT_LIMIT,
    OPT_OFFSET,
    OPT_FOLLOW,
    OPT_HELP,
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

/* --cluster ID: a full id or a prefix (the broker resolves it), so no more
 * than an id's length. */
static int parse_cluster(const char *arg, const char **out)
{
    if (!*arg || strlen(arg) > TASKGRAPH_MAX_CLUSTER_LEN)
        return usage_error("--cluster \"%s\" is not a cluster id", arg);
    *out = arg;
    return 0;
}

/* The CLI itself ran out of memory: exit 1. */
static int out_of_memory(void)
{
    fprintf(stderr, "muster: out of memory\n");
    return EXIT_REMOTE;
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
    int rc = split_list(arg, a->after_arg, &a->n_after_arg, MAX_TASK_AFTER);
    if (rc < 0)
        return usage_error("--after: at most %d tasks", MAX_TASK_AFTER);
    if (rc == 0)
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
        {"cluster", required_argument, NULL, OPT_CLUSTER},
        {"name", required_argument, NULL, OPT_NAME},
        {"gpus", required_argument, NULL, OPT_GPUS},
        {"cpus", required_argument, NULL, OPT_CPUS},
        {"memory", required_argument, NULL, OPT_MEMORY},
        {"after", required_argument, NULL, OPT_AFTER},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"retry-exits", no_argument, NULL, OPT_RETRY_EXITS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"env", required_argument, NULL, OPT_ENV},
        {"cwd", required_argument, NULL, OPT_CWD},
        {"placement", required_argument, NULL, OPT_PLACEMENT},
        {"member", required_argument, NULL, OPT_MEMBER},
        {"hard", no_argument, NULL, OPT_HARD},
        {"result-file", required_argument, NULL, OPT_RESULT_FILE},
        {"file", required_argument, NULL, OPT_FILE},
        {"wait", no_argument, NULL, OPT_WAIT},
        {"wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    muster__task_spec__init(&a->spec);
    a->spec.env = a->env;
    a->spec.after = a->after;
    int o, rc;
    uint32_t retries;
    uint64_t v;
    mu_error err;
    const char *last_optarg = NULL;
    optind = 0;
    opterr = 0;
    /* '+': options stop at the first other word, or at "--". */
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        last_optarg = optarg;
        bool for_both = o == OPT_CLUSTER || o == OPT_FILE || o == OPT_WAIT ||
                        o == OPT_WAIT_TIMEOUT || o == OPT_HELP || o == 'h' || o == '?';
        if (!for_both && !a->one_flag)
            a->one_flag = flag_name(opts, o);
        switch (o) {
        case OPT_CLUSTER:
            if ((rc = parse_cluster(optarg, &a->cluster)))
                return rc;
            break;
        case OPT_NAME:
            if (taskgraph_check_name(optarg, &err) < 0)
                return usage_error("--name: %s", err.text);
            a->spec.name = optarg;
            break;
        case OPT_GPUS:
            if ((rc = parse_count("--gpus", optarg, 0, TASKGRAPH_MAX_GPUS, &a->spec.gpus)))
                return rc;
            break;
        case OPT_CPUS:
            if ((rc = parse_count("--cpus", optarg, 0, TASKGRAPH_MAX_CPUS, &a->spec.cpus)))
                return rc;
            break;
        case OPT_MEMORY:
            if (str_to_u64(optarg, 0, TASKGRAPH_MAX_MEMORY_MIB, &v) < 0)
                return usage_error("--memory \"%s\" is not a size in MiB (0..%llu)", optarg,
                                   (unsigned long long)TASKGRAPH_MAX_MEMORY_MIB);
            a->spec.memory_mib = v;
            break;
        case OPT_AFTER:
            if ((rc = add_after(a, optarg)))
                return rc;
            break;
        case OPT_RETRIES:
            if ((rc = parse_count("--retries", optarg, 0, TASKGRAPH_MAX_RETRIES, &retries)))
                return rc;
            /* 0 here means none; on the wire 0 is the default, -1 none. */
            a->spec.max_retries = retries == 0 ? -1 : (int32_t)retries;
            a->have_retries = true;
            break;
        case OPT_RETRY_EXITS:
            a->spec.retry_exits = true;
            break;
        case OPT_TIMEOUT:
            if (str_to_u64(optarg, 0, TASKGRAPH_MAX_TIMEOUT_S, &v) < 0)
                return usage_error("--timeout \"%s\" is not a number of seconds in 0..%u "
                                   "(7 days)",
                                   optarg, TASKGRAPH_MAX_TIMEOUT_S);
            a->spec.timeout_ms = (uint32_t)v * 1000u;
            break;
        case OPT_ENV:
            if ((rc = add_env(a, optarg)))
                return rc;
            break;
        case OPT_CWD:
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
        case OPT_MEMBER:
            if (!*optarg)
                return usage_error("--member needs a worker id or prefix");
            a->member = optarg;
            break;
        case OPT_HARD:
            a->hard = true;
            break;
        case OPT_RESULT_FILE:
            if (taskgraph_check_result_file(optarg, &err) < 0)
                return usage_error("--result-file: %s", err.text);
            a->spec.result_file = optarg;
            break;
        case OPT_FILE:
            if (!*optarg)
                return usage_error("--file needs a path (\"-\": standard input)");
            a->file = optarg;
            break;
        case OPT_WAIT:
            a->wait = true;
            break;
        case OPT_WAIT_TIMEOUT:
            if ((rc = parse_count("--wait-timeout", optarg, 1, 31 * 86400, &a->wait_timeout_s)))
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
    if (!a)
        return out_of_memory();
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
            code = out_of_memory();
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

static int call_list_tasks(muster_client *mc, const void *q, Muster__Envelope **reply,
                           Muster__Status *st, mu_error *errp)
{
    return muster_list_tasks(mc, q, reply, st, errp);
}

static int show_tasks(const cli *c, const void *q, const Muster__Envelope *reply)
{
    if (c->json)
        format_tasks_json(stdout, reply->list_tasks_reply);
    else
        format_tasks_table(stdout, reply->list_tasks_reply, clock_wall_ms());
    return EXIT_OK;
}

static int task_list(cli *c, int argc, char **argv)
{
    static const char *const states[] = {"waiting", "ready",     "running", "succeeded",
                                         "failed",  "cancelled", "active",  NULL};
    Muster__ListTasksRequest q = MUSTER__LIST_TASKS_REQUEST__INIT;
    const list_cmd l = {
        .name = "task list",
        .by = "cluster",
        .hint = " (the cluster is --cluster ID)",
        .states = states,
        .max_limit = TASK_PAGE,
        .by_value = &q.cluster_id,
        .state = &q.state,
        .limit = &q.limit,
        .offset = &q.offset,
    };
    int rc = parse_list_cmd(&l, argc, argv);
    if (rc < 0) {
        task_list_help();
        return EXIT_OK;
    }
    if (rc)
        return rc;
    if (!*q.cluster_id)
        return usage_error("task list: which cluster? give --cluster ID");
    return run(c, call_list_tasks, &q, show_tasks);
}

/* Parse "TASK [--follow]" of show, logs and cancel (argv[0] is the
 * command's name). Returns 0, -1 after --help was shown, or a usage exit
 * status. */
static int parse_task_cmd(int argc, char **argv, void (*help)(void), char *cluster, size_t n,
                          uint32_t *number, bool *follow)
{
    static const struct option opts[] = {
        {"follow", no_argument, NULL, OPT_FOLLOW},
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
        case OPT_FOLLOW:
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

/* The task that show and cancel name, and which of the two to do. */
typedef struct task_ref {
    char cluster[TASKGRAPH_MAX_CLUSTER_LEN + 1];
    uint32_t number;
    bool cancel;
} task_ref;

static int call_task(muster_client *mc, const void *arg, Muster__Envelope **reply,
                     Muster__Status *st, mu_error *errp)
{
    const task_ref *ref = arg;
    if (ref->cancel)
        return muster_cancel_task(mc, ref->cluster, ref->number, reply, st, errp);
    return muster_get_task(mc, ref->cluster, ref->number, reply, st, errp);
}

/* The task in detail, or after cancel its state now (--json: the task). */
static int show_task(const cli *c, const void *arg, const Muster__Envelope *reply)
{
    const task_ref *ref = arg;
    const Muster__TaskInfo *t = reply->task_reply->task;
    if (!t)
        return bad_reply(c, "names no task");
    if (c->json)
        format_task_json(stdout, t);
    else if (!ref->cancel)
        format_task_detail(stdout, t, clock_wall_ms());
    else if (!strcmp(t->state, "cancelled"))
        printf("task %s/%u cancelled\n", t->cluster_id, t->number);
    else
        printf("task %s/%u is %s%s%s\n", t->cluster_id, t->number, t->state, *t->reason ? ": " : "",
               t->reason);
    return EXIT_OK;
}

static int show_or_cancel(cli *c, int argc, char **argv, bool cancel)
{
    task_ref ref = {.cancel = cancel};
    int rc = parse_task_cmd(argc, argv, cancel ? task_cancel_help : task_show_help, ref.cluster,
                            sizeof(ref.cluster), &ref.number, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    return run(c, call_task, &ref, show_task);
}

static int task_show(cli *c, int argc, char **argv)
{
    return show_or_cancel(c, argc, argv, false);
}

static int task_cancel(cli *c, int argc, char **argv)
{
    return show_or_cancel(c, argc, argv, true);
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
                    code = out_of_memory();
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
        {"cluster", required_argument, NULL, OPT_CLUSTER},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cluster = NULL;
    char from_id[TASKGRAPH_MAX_CLUSTER_LEN + 1];
    uint32_t timeout_s = 0;
    int o, rc;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case OPT_CLUSTER:
            if ((rc = parse_cluster(optarg, &cluster)))
                return rc;
            break;
        case OPT_TIMEOUT:
            if ((rc = parse_timeout_s(optarg, &timeout_s)))
                return rc;
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
    if (n && !numbers)
        return out_of_memory();
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

int cmd_task(cli *c, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(cli *c, int argc, char **argv); /* argv[0] is the name */
    } subs[] = {
        {"submit", task_submit}, {"list", task_list}, {"show", task_show},
        {"cancel", task_cancel}, {"logs", task_logs}, {"wait", task_wait},
    };
    int rc = subcommand_help(argc, argv, task_help);
    if (rc >= 0)
        return rc;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (!strcmp(argv[1], subs[i].name))
            return subs[i].fn(c, argc - 1, argv + 1);
    return usage_error("task: unknown command \"%s\"", argv[1]);
}
