/* task_bench.c - task dispatch throughput, measured against what bounds it.
 *
 * Baselines, measured in the same run on the same machine:
 *   - the raw ZeroMQ round trip: a DEALER sends 128 bytes to a ROUTER on
 *     127.0.0.1 that echoes them, one at a time (what one message to an
 *     agent and one back cost, with nothing else);
 *   - fork/exec of `true`, one at a time (what running a process costs;
 *     every task is one).
 * Then a real musterd with real agents: a cluster of all of them, and
 * trivial tasks (`true`, 1 CPU each) run to completion, two ways:
 *   - bulk: one submission of --tasks tasks (a graph with no edges);
 *   - single: --single tasks submitted one request each, as fast as the
 *     broker acknowledges (each acknowledgement after its commit).
 * The figure is tasks completed per second, from the submission to the
 * last success the broker recorded. Each task is one TaskStart to an
 * agent and one TaskExit back (plus the acknowledgement), so the round
 * trip bounds the rate per agent link, and fork/exec bounds it per core.
 *
 * Prints its figures (JSON with --json); asserts only that every task
 * succeeded, exactly once.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "benchproc.h"
#include "muster/client.h"
#include "strutil.h"
#include "wire.h"

#define WHO "task_bench"

typedef struct opts {
    const char *bindir;
    unsigned agents;
    unsigned tasks;
    unsigned single;
    bool full_sync;
    bool json;
} opts;

/* --- baselines --------------------------------------------------------------------------- */

static void *echo_main(void *sock)
{
    for (;;) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, sock, 0) < 0 || zmq_msg_recv(&body, sock, 0) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&body);
            return NULL; /* context terminated */
        }
        if (zmq_msg_send(&id, sock, ZMQ_SNDMORE) < 0 || zmq_msg_send(&body, sock, 0) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&body);
            return NULL;
        }
    }
}

/* Sequential round trips per second through libzmq alone. */
static double zmq_round_trips(unsigned n)
{
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof(linger));
    char ep[256];
    size_t len = sizeof(ep);
    double rate = 0;
    pthread_t t;
    if (zmq_bind(router, "tcp://127.0.0.1:*") < 0 ||
        zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &len) < 0 || zmq_connect(dealer, ep) < 0 ||
        pthread_create(&t, NULL, echo_main, router) != 0) {
        fprintf(stderr, WHO ": zmq baseline: %s\n", zmq_strerror(errno));
        zmq_close(dealer);
        zmq_close(router);
        zmq_ctx_term(ctx);
        return 0;
    }
    char buf[128] = {0}, back[256];
    for (unsigned i = 0; i < 200; i++) { /* warm up: connect, first messages */
        zmq_send(dealer, buf, sizeof(buf), 0);
        zmq_recv(dealer, back, sizeof(back), 0);
    }
    double t0 = bench_now_s();
    for (unsigned i = 0; i < n; i++) {
        zmq_send(dealer, buf, sizeof(buf), 0);
        zmq_recv(dealer, back, sizeof(back), 0);
    }
    rate = n / (bench_now_s() - t0);
    zmq_close(dealer);
    zmq_ctx_shutdown(ctx); /* wakes the echo thread */
    pthread_join(t, NULL);
    zmq_close(router);
    zmq_ctx_term(ctx);
    return rate;
}

/* Sequential fork/exec/wait of `true` per second. */
static double spawn_rate(unsigned n)
{
    double t0 = bench_now_s();
    for (unsigned i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            execlp("true", "true", (char *)NULL);
            _exit(127);
        }
        if (pid < 0 || waitpid(pid, NULL, 0) < 0)
            return 0;
    }
    return n / (bench_now_s() - t0);
}

/* CPU seconds (user + system) a process has used so far; -1 unknown. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command (which may hold spaces) start past ')'. */
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* --- the broker ---------------------------------------------------------------------------- */

static int call(muster_client *c, Muster__Envelope *req, Muster__Envelope__BodyCase want,
                Muster__Envelope **out)
{
    mu_error err;
    Muster__Envelope *rep = NULL;
    if (muster_client_call(c, req, &rep, &err) < 0) {
        fprintf(stderr, WHO ": %s: %s\n", wire_body_name(req->body_case), err.text);
        return -1;
    }
    if (rep->status != MUSTER__STATUS__STATUS_OK || rep->body_case != want) {
        fprintf(stderr, WHO ": %s: %s\n", wire_body_name(req->body_case),
                rep->reason ? rep->reason : "unexpected reply");
        wire_free(rep);
        return -1;
    }
    *out = rep;
    return 0;
}

static int create_cluster(muster_client *c, unsigned workers, char *id, size_t cap)
{
    char *models[] = {"RTX 4090"};
    Muster__ClusterSpec spec = MUSTER__CLUSTER_SPEC__INIT;
    spec.gpu_models = models;
    spec.n_gpu_models = 1;
    spec.workers = workers;
    spec.hours = 1;
    spec.placement = "spread";
    Muster__CreateClusterRequest cr = MUSTER__CREATE_CLUSTER_REQUEST__INIT;
    cr.spec = &spec;
    cr.owner = "task-bench";
    Muster__Envelope req, *rep;
    wire_envelope_init(&req, 0);
    req.body_case = MUSTER__ENVELOPE__BODY_CREATE_CLUSTER;
    req.create_cluster = &cr;
    if (call(c, &req, MUSTER__ENVELOPE__BODY_CLUSTER_REPLY, &rep) < 0)
        return -1;
    str_copy(id, rep->cluster_reply->cluster->id, cap);
    wire_free(rep);
    /* Ready once every member acknowledged. */
    Muster__GetClusterRequest gr = MUSTER__GET_CLUSTER_REQUEST__INIT;
    gr.id = id;
    wire_envelope_init(&req, 0);
    req.body_case = MUSTER__ENVELOPE__BODY_GET_CLUSTER;
    req.get_cluster = &gr;
    double deadline = bench_now_s() + 20;
    while (bench_now_s() < deadline) {
        if (call(c, &req, MUSTER__ENVELOPE__BODY_CLUSTER_REPLY, &rep) < 0)
            return -1;
        bool ready = !strcmp(rep->cluster_reply->cluster->state, "ready");
        wire_free(rep);
        if (ready)
            return 0;
        usleep(20000);
    }
    fprintf(stderr, WHO ": cluster %s not ready in 20 s\n", id);
    return -1;
}

static int submit(muster_client *c, const char *cid, unsigned n)
{
    char *argv[] = {"true"};
    Muster__TaskSpec *specs = calloc(n, sizeof(*specs));
    Muster__TaskSpec **ptrs = calloc(n, sizeof(*ptrs));
    if (!specs || !ptrs) {
        free(specs);
        free(ptrs);
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        muster__task_spec__init(&specs[i]);
        specs[i].argv = argv;
        specs[i].n_argv = 1;
        specs[i].cpus = 1;
        ptrs[i] = &specs[i];
    }
    Muster__SubmitTasksRequest sr = MUSTER__SUBMIT_TASKS_REQUEST__INIT;
    sr.cluster_id = (char *)cid;
    sr.tasks = ptrs;
    sr.n_tasks = n;
    Muster__Envelope req, *rep;
    wire_envelope_init(&req, 0);
    req.body_case = MUSTER__ENVELOPE__BODY_SUBMIT_TASKS;
    req.submit_tasks = &sr;
    int rc = call(c, &req, MUSTER__ENVELOPE__BODY_SUBMIT_TASKS_REPLY, &rep);
    if (rc == 0)
        wire_free(rep);
    free(specs);
    free(ptrs);
    return rc;
}

/* Wait until `want` tasks of the cluster are over; their counts. */
static int wait_done(muster_client *c, const char *cid, unsigned want, double limit_s,
                     Muster__TaskCounts *out)
{
    Muster__ListTasksRequest lr = MUSTER__LIST_TASKS_REQUEST__INIT;
    lr.cluster_id = (char *)cid;
    lr.limit = 1;
    lr.state = "running"; /* small replies: only the counts matter */
    Muster__Envelope req, *rep;
    wire_envelope_init(&req, 0);
    req.body_case = MUSTER__ENVELOPE__BODY_LIST_TASKS;
    req.list_tasks = &lr;
    double deadline = bench_now_s() + limit_s;
    while (bench_now_s() < deadline) {
        if (call(c, &req, MUSTER__ENVELOPE__BODY_LIST_TASKS_REPLY, &rep) < 0)
            return -1;
        Muster__TaskCounts k = *rep->list_tasks_reply->counts;
        wire_free(rep);
        if (k.succeeded + k.failed + k.cancelled >= want) {
            *out = k;
            return 0;
        }
        usleep(5000);
    }
    fprintf(stderr, WHO ": tasks not done in %.0f s\n", limit_s);
    return -1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: task_bench --bindir DIR [--agents N] [--tasks N] [--single N]\n"
            "                  [--durability full|process] [--json]\n"
            "Trivial tasks (`true`) run to completion through a real musterd and agents, in one\n"
            "bulk submission of --tasks and then --single submissions of one task each; against\n"
            "the raw ZeroMQ round trip and fork/exec rates measured in the same run.\n"
            "Defaults: 4 agents, 4000 tasks, 500 single, durability full.\n");
}

int main(int argc, char **argv)
{
    opts o = {NULL, 4, 4000, 500, true, false};
    for (int i = 1; i < argc; i++) {
        uint64_t v;
        if (!strcmp(argv[i], "--bindir") && i + 1 < argc)
            o.bindir = argv[++i];
        else if (!strcmp(argv[i], "--agents") && i + 1 < argc &&
                 str_to_u64(argv[i + 1], 1, 64, &v) == 0) {
            o.agents = (unsigned)v;
            i++;
        } else if (!strcmp(argv[i], "--tasks") && i + 1 < argc &&
                   str_to_u64(argv[i + 1], 1, 100000, &v) == 0) {
            o.tasks = (unsigned)v;
            i++;
        } else if (!strcmp(argv[i], "--single") && i + 1 < argc &&
                   str_to_u64(argv[i + 1], 0, 100000, &v) == 0) {
            o.single = (unsigned)v;
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
            fprintf(stderr, WHO ": bad or incomplete option \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!o.bindir) {
        fprintf(stderr, WHO ": --bindir is required\n");
        return 2;
    }
    char dir[] = "/tmp/muster-taskbench-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    double zmq_rate = zmq_round_trips(20000);
    double fork_rate = spawn_rate(300);

    bench_fleet fleet;
    if (bench_fleet_start(WHO, &fleet, o.bindir, dir, o.agents, o.full_sync) < 0) {
        bench_remove_dir(WHO, dir);
        return 1;
    }
    int rc = 0;
    mu_error err;
    muster_client *c = muster_client_create(fleet.cep, 10000, &err);
    char cid[64] = "";
    if (!c || create_cluster(c, o.agents, cid, sizeof(cid)) < 0)
        rc = 1;

    Muster__TaskCounts bulk = MUSTER__TASK_COUNTS__INIT, single = MUSTER__TASK_COUNTS__INIT;
    double bulk_s = 0, single_s = 0, single_ack_s = 0;
    double broker_cpu = 0;
    if (rc == 0) {
        double cpu0 = proc_cpu_s(fleet.broker);
        double t0 = bench_now_s();
        if (submit(c, cid, o.tasks) < 0 || wait_done(c, cid, o.tasks, 300, &bulk) < 0)
            rc = 1;
        bulk_s = bench_now_s() - t0;
        broker_cpu = proc_cpu_s(fleet.broker) - cpu0;
    }
    if (rc == 0 && o.single) {
        double t0 = bench_now_s();
        for (unsigned i = 0; i < o.single && rc == 0; i++)
            if (submit(c, cid, 1) < 0)
                rc = 1;
        single_ack_s = bench_now_s() - t0;
        if (rc == 0 && wait_done(c, cid, o.tasks + o.single, 300, &single) < 0)
            rc = 1;
        single_s = bench_now_s() - t0;
    }
    muster_client_destroy(c);
    if (rc)
        bench_print_log(fleet.log);
    if (bench_fleet_stop(&fleet) < 0)
        rc = 1;

    unsigned total = o.tasks + o.single;
    unsigned ok = o.single ? single.succeeded : bulk.succeeded;
    double bulk_rate = bulk_s > 0 ? o.tasks / bulk_s : 0;
    double single_rate = single_s > 0 ? o.single / single_s : 0;
    double ack_rate = single_ack_s > 0 ? o.single / single_ack_s : 0;
    /* What the broker's own work would allow on one core, processes aside. */
    double broker_rate = broker_cpu > 0 ? o.tasks / broker_cpu : 0;
    if (o.json) {
        printf("{\"agents\": %u, \"durability\": \"%s\", \"zmq_round_trips_per_s\": %.0f,\n"
               " \"fork_exec_per_s\": %.0f, \"bulk_tasks\": %u, \"bulk_tasks_per_s\": %.0f,\n"
               " \"single_tasks\": %u, \"single_tasks_per_s\": %.0f,"
               " \"single_submits_acked_per_s\": %.0f,\n"
               " \"broker_cpu_s\": %.3f, \"broker_tasks_per_cpu_s\": %.0f,\n"
               " \"succeeded\": %u, \"failed\": %u, \"ratio_bulk_to_zmq\": %.3f}\n",
               o.agents, o.full_sync ? "full" : "process", zmq_rate, fork_rate, o.tasks, bulk_rate,
               o.single, single_rate, ack_rate, broker_cpu, broker_rate, ok,
               (o.single ? single.failed : bulk.failed), zmq_rate > 0 ? bulk_rate / zmq_rate : 0);
    } else {
        printf("baselines   raw ZeroMQ round trip (128 B, 127.0.0.1): %.0f/s;"
               " fork/exec of `true`: %.0f/s\n",
               zmq_rate, fork_rate);
        printf("bulk        %u tasks in one submission, %u agents: %.0f tasks/s"
               " (%.3fx the round trip rate)\n",
               o.tasks, o.agents, bulk_rate, zmq_rate > 0 ? bulk_rate / zmq_rate : 0);
        printf("broker      %.2f CPU s for the bulk run: %.0f tasks per broker CPU second\n",
               broker_cpu, broker_rate);
        if (o.single)
            printf("single      %u submissions of one task: %.0f acknowledged/s,"
                   " %.0f tasks/s completed\n",
                   o.single, ack_rate, single_rate);
        printf("outcome     %u of %u succeeded, %u failed (durability %s)\n", ok, total,
               o.single ? single.failed : bulk.failed, o.full_sync ? "full" : "process");
    }
    bench_remove_dir(WHO, dir);
    if (rc == 0 && ok != total) {
        fprintf(stderr, WHO ": %u of %u tasks succeeded\n", ok, total);
        rc = 1;
    }
    return rc;
}
