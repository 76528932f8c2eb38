/* durability_bench.c - what durability costs, measured against SQLite.
 *
 * Baseline: SQLite's own insert rate through the store, one transaction
 * (one fsync) per insert, with the same synchronous setting the broker
 * uses. Then: a real musterd with real agents on 127.0.0.1, and C client
 * threads each creating and releasing one-worker clusters as fast as they
 * get replies, for a few seconds. Every reply is sent only after its change
 * is committed, so acknowledged operations per second against the baseline
 * shows what group commit buys: many requests share one fsync.
 *
 * Prints its figures (and JSON with --json); asserts nothing about speed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "clock.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "muster/client.h"
#include "store.h"
#include "strutil.h"
#include "wire.h"

typedef struct opts {
    const char *bindir;
    unsigned clients;
    unsigned agents;
    double seconds;
    bool full_sync;
    bool json;
} opts;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- the baseline: SQLite alone -------------------------------------------------------- */

static double sqlite_rate(const char *dir, bool full_sync, unsigned n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/baseline.db", dir);
    mu_error err;
    store *st = store_open(path, full_sync, &err);
    if (!st) {
        fprintf(stderr, "baseline: %s\n", err.text);
        return 0;
    }
    uptime up = {1, 2, 3};
    char reg[200];
    memset(reg, 'r', sizeof(reg));
    double t0 = now_s();
    for (unsigned i = 0; i < n; i++) {
        mu_id id;
        memset(&id, 0, sizeof(id));
        memcpy(id.b, &i, sizeof(i));
        id.b[15] = 1;
        if (store_begin(st, &err) < 0 ||
            store_put_worker(st, &id, reg, sizeof(reg), i, &up, &err) < 0 ||
            store_commit(st, &err) < 0) {
            fprintf(stderr, "baseline: %s\n", err.text);
            break;
        }
    }
    double rate = n / (now_s() - t0);
    store_close(st);
    return rate;
}

/* --- the broker under load ---------------------------------------------------------------- */

typedef struct client_arg {
    const char *endpoint;
    volatile int *stop;
    unsigned long creates, releases, refused, errors;
    double lat_sum;
} client_arg;

static void *client_main(void *p)
{
    client_arg *a = p;
    mu_error err;
    muster_client *c = muster_client_create(a->endpoint, 5000, &err);
    if (!c)
        return NULL;
    char *models[] = {"RTX 4090"};
    while (!*a->stop) {
        Muster__ClusterSpec spec = MUSTER__CLUSTER_SPEC__INIT;
        spec.gpu_models = models;
        spec.n_gpu_models = 1;
        spec.workers = 1;
        spec.hours = 1;
        spec.placement = "spread";
        Muster__CreateClusterRequest cr = MUSTER__CREATE_CLUSTER_REQUEST__INIT;
        cr.spec = &spec;
        cr.owner = "bench";
        Muster__Envelope req, *rep;
        wire_envelope_init(&req, 0);
        req.body_case = MUSTER__ENVELOPE__BODY_CREATE_CLUSTER;
        req.create_cluster = &cr;
        double t0 = now_s();
        if (muster_client_call(c, &req, &rep, &err) < 0) {
            a->errors++;
            continue;
        }
        a->lat_sum += now_s() - t0;
        if (rep->status != MUSTER__STATUS__STATUS_OK ||
            rep->body_case != MUSTER__ENVELOPE__BODY_CLUSTER_REPLY) {
            a->refused++; /* every worker busy at that moment */
            wire_free(rep);
            continue;
        }
        a->creates++;
        char id[ID_TEXT_LEN];
        str_copy(id, rep->cluster_reply->cluster->id, sizeof(id));
        wire_free(rep);
        Muster__ReleaseClusterRequest rr = MUSTER__RELEASE_CLUSTER_REQUEST__INIT;
        rr.id = id;
        wire_envelope_init(&req, 0);
        req.body_case = MUSTER__ENVELOPE__BODY_RELEASE_CLUSTER;
        req.release_cluster = &rr;
        if (muster_client_call(c, &req, &rep, &err) < 0) {
            a->errors++;
            continue;
        }
        if (rep->status == MUSTER__STATUS__STATUS_OK)
            a->releases++;
        wire_free(rep);
    }
    muster_client_destroy(c);
    return NULL;
}

static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Wait for the broker to write <state>/endpoints.json (it binds port "*",
 * so no port is guessed) and copy out the agent and client endpoints. */
static int broker_endpoints(pid_t broker, const char *sdir, char *aep, char *cep, size_t cap)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/endpoints.json", sdir);
    double deadline = now_s() + 15;
    while (now_s() < deadline) {
        if (waitpid(broker, NULL, WNOHANG) == broker) {
            fprintf(stderr, "durability_bench: musterd exited at start\n");
            return -1;
        }
        mu_error err;
        char *text = fs_read_file(path, 1 << 16, NULL, &err);
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        mu_free(text);
        const char *a = NULL, *c = NULL;
        bool ok = j && json_get_string(j, "agent_endpoint", true, &a, "endpoints", &err) == 0 &&
                  json_get_string(j, "client_endpoint", true, &c, "endpoints", &err) == 0;
        if (ok) {
            str_copy(aep, a, cap);
            str_copy(cep, c, cap);
        }
        cJSON_Delete(j);
        if (ok)
            return 0;
        usleep(20000);
    }
    fprintf(stderr, "durability_bench: musterd wrote no %s in 15 s\n", path);
    return -1;
}

static void remove_dir(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "durability_bench: could not remove %s\n", dir);
}

static void print_log(const char *log)
{
    mu_error err;
    char *text = fs_read_file(log, 1 << 20, NULL, &err);
    fprintf(stderr, "--- %s\n%s--- end of log\n", log, text ? text : err.text);
    mu_free(text);
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: durability_bench --bindir DIR [--clients N] [--agents N] [--seconds S]\n"
                 "                        [--durability full|process] [--json]\n"
                 "Measures acknowledged cluster creates and releases per second through a real\n"
                 "musterd (each reply sent only after its change is committed) against SQLite's\n"
                 "own insert rate, one transaction per insert, with the same synchronous setting.\n"
                 "Defaults: 8 clients, 24 agents, 5 seconds, durability full.\n");
}

int main(int argc, char **argv)
{
    opts o = {NULL, 8, 24, 5.0, true, false};
    for (int i = 1; i < argc; i++) {
        uint64_t v;
        double d;
        if (!strcmp(argv[i], "--bindir") && i + 1 < argc)
            o.bindir = argv[++i];
        else if (!strcmp(argv[i], "--clients") && i + 1 < argc &&
                 str_to_u64(argv[i + 1], 1, 256, &v) == 0) {
            o.clients = (unsigned)v;
            i++;
        } else if (!strcmp(argv[i], "--agents") && i + 1 < argc &&
                   str_to_u64(argv[i + 1], 1, 200, &v) == 0) {
            o.agents = (unsigned)v;
            i++;
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc &&
                   str_to_double(argv[i + 1], &d) == 0 && d > 0 && d <= 600) {
            o.seconds = d;
            i++;
        } else if (!strcmp(argv[i], "--durability") && i + 1 < argc &&
                   (!strcmp(argv[i + 1], "full") || !strcmp(argv[i + 1], "process"))) {
            o.full_sync = !strcmp(argv[++i], "full");
        } else if (!strcmp(argv[i], "--json")) {
            o.json = true;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "durability_bench: bad or incomplete option \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!o.bindir) {
        fprintf(stderr, "durability_bench: --bindir is required\n");
        return 2;
    }
    char dir[] = "/tmp/muster-durability-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    double baseline = sqlite_rate(dir, o.full_sync, 500);

    char aep[256], cep[256], sdir[600], path[600], log[600];
    snprintf(sdir, sizeof(sdir), "%s/broker", dir);
    snprintf(path, sizeof(path), "%s/musterd", o.bindir);
    snprintf(log, sizeof(log), "%s/musterd.log", dir);
    char *bargv[] = {path,
                     "--agent-endpoint",
                     "tcp://127.0.0.1:*",
                     "--client-endpoint",
                     "tcp://127.0.0.1:*",
                     "--event-endpoint",
                     "tcp://127.0.0.1:*",
                     "--state-dir",
                     sdir,
                     "--durability",
                     o.full_sync ? "full" : "process",
                     "--log-level",
                     "warn",
                     "--no-verify", /* what durability costs, not verification */
                     NULL};
    pid_t broker = spawn(bargv, log);
    if (broker_endpoints(broker, sdir, aep, cep, sizeof(aep)) < 0) {
        print_log(log);
        kill(broker, SIGKILL);
        waitpid(broker, NULL, 0);
        remove_dir(dir);
        return 1;
    }
    pid_t *agents = calloc(o.agents, sizeof(pid_t));
    char apath[600];
    snprintf(apath, sizeof(apath), "%s/muster-agent", o.bindir);
    for (unsigned i = 0; i < o.agents; i++) {
        char st[640], host[32];
        snprintf(st, sizeof(st), "%s/agent-%u", dir, i);
        snprintf(host, sizeof(host), "bench-%u", i);
        char *aargv[] = {
            apath,        "--broker",    aep,         "--state-dir",       st,
            "--hostname", host,          "--country", i % 2 ? "DE" : "US", "--simulate-gpu",
            "RTX 4090",   "--bandwidth", "500/400",   "--log-level",       "warn",
            NULL};
        agents[i] = spawn(aargv, log);
    }
    /* Wait for the fleet to register (status answers with every worker). */
    mu_error err;
    muster_client *probe = muster_client_create(cep, 500, &err);
    double deadline = now_s() + 20;
    unsigned online = 0;
    while (probe && now_s() < deadline && online < o.agents) {
        Muster__Envelope *rep;
        Muster__Status st;
        if (muster_broker_status(probe, &rep, &st, &err) == 0) {
            online = rep->broker_status_reply->workers_online;
            wire_free(rep);
        }
        usleep(100000);
    }
    muster_client_destroy(probe);
    int rc = 0;
    if (online < o.agents) {
        fprintf(stderr, "durability_bench: only %u of %u agents registered\n", online, o.agents);
        print_log(log);
        rc = 1;
    }
    client_arg *args = calloc(o.clients, sizeof(*args));
    pthread_t *threads = calloc(o.clients, sizeof(*threads));
    volatile int stop = 0;
    double t0 = now_s(), elapsed = 0;
    for (unsigned i = 0; rc == 0 && i < o.clients; i++) {
        args[i] = (client_arg){.endpoint = cep, .stop = &stop};
        pthread_create(&threads[i], NULL, client_main, &args[i]);
    }
    if (rc == 0) {
        while (now_s() - t0 < o.seconds)
            usleep(20000);
        stop = 1;
        for (unsigned i = 0; i < o.clients; i++)
            pthread_join(threads[i], NULL);
        elapsed = now_s() - t0;
    }
    unsigned long creates = 0, releases = 0, refused = 0, errors = 0;
    double lat = 0;
    for (unsigned i = 0; i < o.clients; i++) {
        creates += args[i].creates;
        releases += args[i].releases;
        refused += args[i].refused;
        errors += args[i].errors;
        lat += args[i].lat_sum;
    }
    kill(broker, SIGTERM);
    for (unsigned i = 0; i < o.agents; i++)
        kill(agents[i], SIGTERM);
    waitpid(broker, NULL, 0);
    for (unsigned i = 0; i < o.agents; i++)
        waitpid(agents[i], NULL, 0);
    double acked = elapsed > 0 ? (creates + releases) / elapsed : 0;
    double answered = elapsed > 0 ? (creates + releases + refused) / elapsed : 0;
    if (o.json) {
        printf("{\"durability\": \"%s\", \"clients\": %u, \"agents\": %u, \"seconds\": %.2f,\n"
               " \"sqlite_commits_per_s\": %.0f, \"acked_creates\": %lu, \"acked_releases\": %lu,\n"
               " \"refused_busy\": %lu, \"errors\": %lu, \"acked_changes_per_s\": %.0f,\n"
               " \"answered_per_s\": %.0f, \"create_latency_ms\": %.2f, \"ratio\": %.1f}\n",
               o.full_sync ? "full" : "process", o.clients, o.agents, elapsed, baseline, creates,
               releases, refused, errors, acked, answered,
               creates + refused ? 1000 * lat / (double)(creates + refused) : 0,
               baseline > 0 ? acked / baseline : 0);
    } else {
        printf("durability %s, %u clients, %u agents, %.1f s\n", o.full_sync ? "full" : "process",
               o.clients, o.agents, elapsed);
        printf("baseline   SQLite through the store, one commit per insert: %.0f commits/s\n",
               baseline);
        printf("musterd    %lu creates and %lu releases acknowledged (each after its commit):"
               " %.0f changes/s, %.1fx the baseline\n",
               creates, releases, acked, baseline > 0 ? acked / baseline : 0);
        printf("           %lu creates refused (every worker busy at that moment), %lu errors;"
               " mean create latency %.2f ms\n",
               refused, errors, creates + refused ? 1000 * lat / (double)(creates + refused) : 0);
    }
    remove_dir(dir);
    free(agents);
    free(args);
    free(threads);
    return rc ? rc : errors > (creates + releases) / 10 ? 1 : 0;
}
