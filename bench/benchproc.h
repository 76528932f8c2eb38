/* benchproc.h - what the benchmarks that run real processes share: start
 * a program with its stderr in a log, find a broker's endpoints, clean up. */
#ifndef MUSTER_BENCHPROC_H
#define MUSTER_BENCHPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Monotonic seconds. */
double bench_now_s(void);
/* Start argv[0] with stderr appended to log; the child's pid. */
pid_t bench_spawn(char *const argv[], const char *log);
/* Wait (15 s at most) for the broker to write <sdir>/endpoints.json (it
 * binds port "*", so no port is guessed) and copy out the agent and client
 * endpoints. -1 with a message on stderr when it exits or never writes it. */
int bench_broker_endpoints(const char *who, pid_t broker, const char *sdir, char *aep, char *cep,
                           size_t cap);
void bench_remove_dir(const char *who, const char *dir);
void bench_print_log(const char *log);

/* A local fleet: musterd on free ports (--no-verify: benchmarks measure
 * other things) and agents with one simulated RTX 4090 each, all logging
 * to <dir>/musterd.log. */
typedef struct bench_fleet {
    pid_t broker;
    pid_t *agents;
    unsigned n_agents;
    char aep[256], cep[256];
    char log[600];
} bench_fleet;

/* Start it and wait (20 s at most) until every agent is online. -1 with
 * the log printed when it does not come up (what started is stopped). */
int bench_fleet_start(const char *who, bench_fleet *f, const char *bindir, const char *dir,
                      unsigned agents, bool full_sync);
/* SIGTERM everything and reap it. 0, or -1 when something did not exit
 * within a grace period and was killed (said on stderr). */
int bench_fleet_stop(bench_fleet *f);

#endif
