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
#include "benchproc.h"
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
    double t0 = bench_now_s();
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
    double rate = n / (bench_now_s() - t0);
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
        double t0 = bench_now_s();
        if (muster_client_call(c, &req, &rep, &err) < 0) {
            a->errors++;
            continue;
        }
        a->lat_sum += bench_now_s() - t0;
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

    bench_fleet fleet;
    if (bench_fleet_start("durability_bench", &fleet, o.bindir, dir, o.agents, o.full_sync) < 0) {
        bench_remove_dir("durability_bench", dir);
        return 1;
    }
    int rc = 0;
    const char *cep = fleet.cep;
    client_arg *args = calloc(o.clients, sizeof(*args));
    pthread_t *threads = calloc(o.clients, sizeof(*threads));
    volatile int stop = 0;
    double t0 = bench_now_s(), elapsed = 0;
    for (unsigned i = 0; rc == 0 && i < o.clients; i++) {
        args[i] = (client_arg){.endpoint = cep, .stop = &stop};
        pthread_create(&threads[i], NULL, client_main, &args[i]);
    }
    if (rc == 0) {
        while (bench_now_s() - t0 < o.seconds)
            usleep(20000);
        stop = 1;
        for (unsigned i = 0; i < o.clients; i++)
            pthread_join(threads[i], NULL);
        elapsed = bench_now_s() - t0;
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
    if (bench_fleet_stop(&fleet) < 0)
        rc = 1;
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
    bench_remove_dir("durability_bench", dir);
    free(args);
    free(threads);
    return rc ? rc : errors > (creates + releases) / 10 ? 1 : 0;
}
