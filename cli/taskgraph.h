/* taskgraph.h - task graph files and task ids, read on the client's side.
 *
 * `muster task submit --file graph.json` sends a whole graph of tasks in one
 * SubmitTasksRequest, which the broker accepts whole or not at all. This
 * module turns the file into that request and refuses a bad file before
 * anything is sent, naming the task (its index in "tasks" and its name) and
 * the field at fault. The format is in docs/cli.md ("Task graph files"):
 *
 *   {"cluster": "ID or prefix",                    optional; --cluster wins
 *    "defaults": {"gpus": 1, "retries": 2, ...},   optional
 *    "tasks": [{"name": "prep", "argv": ["sh", "-c", "..."],
 *               "after": ["other-name", 7], ...}, ...]}
 *
 * `after` holds names of tasks of the same file (strings) or numbers of
 * tasks already in the cluster (integers); both go on the wire as strings,
 * which is why a name may not be all digits. Cycles among names are found
 * here too (the broker checks again), and named in the error.
 *
 * Also here: parsing a task id "CLUSTER/NUMBER" and a dependency of
 * `--after`, so the CLI and the tests share one definition.
 */
#ifndef MUSTER_CLI_TASKGRAPH_H
#define MUSTER_CLI_TASKGRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "muster.pb-c.h"

/* Limits of what the client sends, the broker's where it has them
 * (docs/protocol.md, "Tasks"): at most 100,000 tasks per request, 100
 * retries, a timeout of 7 days. GPUs: a member has at most 64 (the
 * scheduler's GPU mask); CPUs: 16 bits in the scheduler; memory: 1 PiB is
 * more than any member has. The file cap keeps a mistaken path (a dataset)
 * from being read whole; the broker's own cap on a message (256 KiB by
 * default) is usually the lower one. */
#define TASKGRAPH_MAX_FILE_BYTES  (16u << 20)
#define TASKGRAPH_MAX_TASKS       100000u
#define TASKGRAPH_MAX_GPUS        64u
#define TASKGRAPH_MAX_CPUS        65535u
#define TASKGRAPH_MAX_MEMORY_MIB  (1ull << 30)
#define TASKGRAPH_MAX_RETRIES     100u
#define TASKGRAPH_MAX_TIMEOUT_S   (7u * 86400u)
#define TASKGRAPH_MAX_NAME        64u /* bytes of a task name */
#define TASKGRAPH_MAX_CLUSTER_LEN 63u /* bytes of a cluster id or prefix */

typedef struct taskgraph taskgraph;

/* Parse a graph from TEXT (LEN bytes, at most TASKGRAPH_MAX_FILE_BYTES).
 * WHERE names the source in errors ("graph.json"). Returns the graph, which
 * the caller frees with taskgraph_destroy, or NULL with a reason in errp
 * ("graph.json: tasks[3] (\"prep\"): \"gpus\" must be ..."). */
taskgraph *taskgraph_parse(const char *text, size_t len, const char *where, mu_error *errp);

/* Read PATH ("-": standard input) and parse it as above. */
taskgraph *taskgraph_load(const char *path, mu_error *errp);

void taskgraph_destroy(taskgraph *g);

/* The request the graph makes (borrowed: valid until taskgraph_destroy).
 * Its cluster_id is the file's "cluster", or "" when it has none: a caller
 * with --cluster sends a copy of the request with its own cluster_id. */
const Muster__SubmitTasksRequest *taskgraph_request(const taskgraph *g);

/* A task name: 1..TASKGRAPH_MAX_NAME bytes, no control characters, not all
 * digits (a number in `after` means a task already in the cluster).
 * Returns 0, or -1 with the reason. */
int taskgraph_check_name(const char *name, mu_error *errp);

/* An environment entry "NAME=value" with a non-empty NAME. Returns 0/-1. */
int taskgraph_check_env(const char *entry, mu_error *errp);

/* A result file's path: relative to the task's directory and staying in
 * it (no ".." component). Returns 0/-1. */
int taskgraph_check_result_file(const char *path, mu_error *errp);

/* Parse a task id "CLUSTER/NUMBER": CLUSTER (a cluster id or a unique
 * prefix, up to TASKGRAPH_MAX_CLUSTER_LEN bytes) is copied into cluster
 * (size n), NUMBER (decimal, 0..4294967295) into *number. Returns 0, or -1
 * with the reason. */
int taskgraph_parse_id(const char *text, char *cluster, size_t n, uint32_t *number, mu_error *errp);

/* Parse one dependency of `task submit --after`: "N" or "CLUSTER/N", where
 * CLUSTER must name the cluster the task goes to (CLUSTER, given as an id
 * or prefix: one of the two must be a prefix of the other). Returns 0 and
 * the number, or -1 with the reason ("task X/3 is not in cluster Y"). */
int taskgraph_parse_after(const char *text, const char *cluster, uint32_t *number, mu_error *errp);

#endif
