/* cli.h - what the files of the `muster` command share.
 *
 * main.c holds the global options and the fleet and cluster commands;
 * cmd_task.c holds `muster task ...`. Every command must report errors, bad
 * usage and Ctrl-C the same way, with the same exit statuses, and read the
 * flags they have in common (--state, --limit, --offset, --timeout S, comma
 * lists) with the same checks and messages; so the helpers that do that are
 * defined once, in main.c, and declared here. Everything else stays static
 * in its file.
 */
#ifndef MUSTER_CLI_CLI_H
#define MUSTER_CLI_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "keys.h"
#include "muster/client.h"

/* Exit statuses: main.c's opening comment says when each is used. */
enum {
    EXIT_OK = 0,
    EXIT_REMOTE = 1,
    EXIT_USAGE = 2,
    EXIT_UNREACHABLE = 3,
    EXIT_NOT_MET = 4,
    EXIT_WAIT_TIMEOUT = 5,
    EXIT_INTERRUPTED = 130,
};

/* The global options, which every command talks to the broker with. */
typedef struct cli {
    const char *broker;
    const char *events; /* event endpoint; NULL: ask the broker (status) */
    int timeout_ms;
    bool json;
    const char *key_file;   /* this client's CURVE key pair file; NULL: plain */
    const char *broker_key; /* the broker's public key; NULL: plain */
} cli;

/* The CURVE settings of c (into curve and kp, which it points into): NULL
 * when c connects in plain text; else the loaded keys, or NULL with *code
 * set to an exit status after a message (a missing or bad key file). */
const muster_curve *cli_curve(const cli *c, muster_curve *curve, key_pair *kp, int *code);

/* --- reporting: each returns the exit status the command ends with ----------- */

/* A failed call: the reason on stderr (and as JSON on stdout with --json);
 * exit 3 when the broker did not answer (errno ETIMEDOUT), else 1. */
int fail(const cli *c, const mu_error *err, Muster__Status status);
/* A failed request that may be NOT_MET (exit 4, with the explanation and the
 * alternatives of NOT_MET, which is freed; NULL if there is none); anything
 * else as fail(). */
int fail_request(const cli *c, const mu_error *err, Muster__Status st, Muster__Envelope *not_met);
/* A reply that is not what was asked for: "the broker's reply WHAT", as a
 * protocol error (exit 1). */
int bad_reply(const cli *c, const char *what);
/* "muster: WHAT (see muster --help)" on stderr: exit 2. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- talking to the broker ------------------------------------------------------ */

/* Connect to --broker; NULL, with the exit status in *code, when the
 * endpoint is refused. */
muster_client *connect_or_fail(const cli *c, int *code);

/* A request the CLI sends: call the broker with ARG (the request, or what
 * names it), then show the reply to ARG, returning the exit status (a reply
 * that lacks what the request asked for is bad_reply()). */
typedef int (*call_fn)(muster_client *mc, const void *arg, Muster__Envelope **reply,
                       Muster__Status *status, mu_error *errp);
typedef int (*show_fn)(const cli *c, const void *arg, const Muster__Envelope *reply);

/* Connect, call, show, disconnect: returns the exit status. */
int run(const cli *c, call_fn call, const void *arg, show_fn show);

/* --- flags that several commands take: each returns 0 or a usage exit status ---- */

/* A whole number in min..max (max at most UINT32_MAX). */
int parse_count(const char *flag, const char *arg, uint64_t min, uint64_t max, uint32_t *out);
/* --offset: a whole number in 0..UINT32_MAX. */
int parse_offset(const char *arg, uint32_t *out);
/* --timeout of a wait or a watch: seconds in 1..2678400 (31 days). */
int parse_timeout_s(const char *arg, uint32_t *out);
/* ARG is one of CHOICES (NULL-terminated), else "FLAG "ARG" is not a, b or c". */
int parse_choice(const char *flag, const char *arg, const char *const *choices);
/* A comma list (split in place: argv strings are ours), blanks trimmed and
 * empty entries skipped, appended to list[*n..max). Returns 1 when it added
 * one or more, 0 when there were none, -1 when there were more than max. */
int split_list(char *arg, char **list, size_t *n, size_t max);

/* A listing (cluster list, task list) and where its flags go: --state S (one
 * of STATES), --BY VALUE (its own filter), --limit N (1..max_limit) and
 * --offset N each set the request's field when given. */
typedef struct list_cmd {
    const char *name;          /* "task list", for messages */
    const char *by;            /* the filter flag without "--": "owner", "cluster" */
    const char *hint;          /* after "unexpected argument "ARG"" ("" for none) */
    const char *const *states; /* NULL-terminated */
    uint32_t max_limit;
    char **by_value, **state; /* borrowed: the request's fields */
    uint32_t *limit, *offset;
} list_cmd;

/* Parse a listing's flags (argv[0] is the subcommand). Returns 0, -1 when
 * --help was given (the caller shows it), or a usage exit status. */
int parse_list_cmd(const list_cmd *l, int argc, char **argv);

/* The start of a command with subcommands (cluster, task): none given is
 * HELP on stderr and exit 2; --help, -h or help is HELP on stdout and exit
 * 0. Returns that exit status, or -1 when argv[1] is a subcommand to run. */
int subcommand_help(int argc, char **argv, void (*help)(FILE *out));

/* --- Ctrl-C while waiting ----------------------------------------------------------
 *
 * Set by SIGINT/SIGTERM once catch_sigint() has run. A signal handler can
 * reach nothing but a global flag: this is the CLI's only mutable global,
 * shared because the cluster and the task commands both wait. */
extern volatile sig_atomic_t interrupted;

/* Ctrl-C sets `interrupted` and interrupts the waits (no SA_RESTART). */
void catch_sigint(void);

/* `muster task ...` (cmd_task.c); argv[0] is "task". */
int cmd_task(cli *c, int argc, char **argv);

#endif
