/* benchproc.c - see benchproc.h. */
#include "benchproc.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "muster/client.h"
#include "strutil.h"
#include "wire.h"

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

pid_t bench_spawn(char *const argv[], const char *log)
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

int bench_broker_endpoints(const char *who, pid_t broker, const char *sdir, char *aep, char *cep,
                           size_t cap)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/endpoints.json", sdir);
    double deadline = bench_now_s() + 15;
    while (bench_now_s() < deadline) {
        if (waitpid(broker, NULL, WNOHANG) == broker) {
            fprintf(stderr, "%s: musterd exited at start\n", who);
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
    fprintf(stderr, "%s: musterd wrote no %s in 15 s\n", who, path);
    return -1;
}

void bench_remove_dir(const char *who, const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "%s: could not remove %s\n", who, dir);
}

void bench_print_log(const char *log)
{
    mu_error err;
    char *text = fs_read_file(log, 1 << 20, NULL, &err);
    fprintf(stderr, "--- %s\n%s--- end of log\n", log, text ? text : err.text);
    mu_free(text);
}

int bench_fleet_start(const char *who, bench_fleet *f, const char *bindir, const char *dir,
                      unsigned agents, bool full_sync)
{
    memset(f, 0, sizeof(*f));
    char sdir[600], path[600];
    snprintf(sdir, sizeof(sdir), "%s/broker", dir);
    snprintf(path, sizeof(path), "%s/musterd", bindir);
    snprintf(f->log, sizeof(f->log), "%s/musterd.log", dir);
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
                     full_sync ? "full" : "process",
                     "--log-level",
                     "warn",
                     "--no-verify",
                     NULL};
    f->broker = bench_spawn(bargv, f->log);
    if (bench_broker_endpoints(who, f->broker, sdir, f->aep, f->cep, sizeof(f->aep)) < 0) {
        bench_print_log(f->log);
        kill(f->broker, SIGKILL);
        waitpid(f->broker, NULL, 0);
        return -1;
    }
    f->agents = calloc(agents, sizeof(pid_t));
    f->n_agents = f->agents ? agents : 0;
    char apath[600];
    snprintf(apath, sizeof(apath), "%s/muster-agent", bindir);
    for (unsigned i = 0; i < f->n_agents; i++) {
        char st[640], host[32];
        snprintf(st, sizeof(st), "%s/agent-%u", dir, i);
        snprintf(host, sizeof(host), "bench-%u", i);
        char *aargv[] = {
            apath,        "--broker",    f->aep,      "--state-dir",       st,
            "--hostname", host,          "--country", i % 2 ? "DE" : "US", "--simulate-gpu",
            "RTX 4090",   "--bandwidth", "500/400",   "--log-level",       "warn",
            NULL};
        f->agents[i] = bench_spawn(aargv, f->log);
    }
    /* Wait for the fleet to register (status counts the workers online). */
    mu_error err;
    muster_client *probe = muster_client_create(f->cep, 500, &err);
    double deadline = bench_now_s() + 20;
    unsigned online = 0;
    while (probe && bench_now_s() < deadline && online < agents) {
        Muster__Envelope *rep;
        Muster__Status st;
        if (muster_broker_status(probe, &rep, &st, &err) == 0) {
            online = rep->broker_status_reply->workers_online;
            wire_free(rep);
        }
        if (online < agents)
            usleep(50000);
    }
    muster_client_destroy(probe);
    if (online < agents) {
        fprintf(stderr, "%s: only %u of %u agents registered\n", who, online, agents);
        bench_print_log(f->log);
        bench_fleet_stop(f);
        return -1;
    }
    return 0;
}

/* How long a stopped process may take to exit: musterd commits and closes,
 * agents say goodbye. A hang is a bug to report, not to wait out. */
#define STOP_GRACE_S 20

/* Wait for pid, asked to stop, until `deadline`; then kill it and say so.
 * 0 when it exited by itself, -1 when it had to be killed. */
static int reap(pid_t pid, const char *what, double deadline)
{
    while (waitpid(pid, NULL, WNOHANG) == 0) {
        if (bench_now_s() >= deadline) {
            fprintf(stderr, "%s (pid %d) did not exit within %d s of SIGTERM: killed\n", what,
                    (int)pid, STOP_GRACE_S);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
        usleep(20000);
    }
    return 0;
}

int bench_fleet_stop(bench_fleet *f)
{
    if (f->broker > 0)
        kill(f->broker, SIGTERM);
    for (unsigned i = 0; i < f->n_agents; i++)
        kill(f->agents[i], SIGTERM);
    double deadline = bench_now_s() + STOP_GRACE_S;
    int rc = 0;
    if (f->broker > 0 && reap(f->broker, "musterd", deadline) < 0)
        rc = -1;
    for (unsigned i = 0; i < f->n_agents; i++)
        if (reap(f->agents[i], "muster-agent", deadline) < 0)
            rc = -1;
    free(f->agents);
    f->agents = NULL;
    f->n_agents = 0;
    f->broker = 0;
    return rc;
}
