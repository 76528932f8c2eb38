/* broker.h - musterd's shell: sockets, dispatch and the clock around the
 * pure scheduler core.
 *
 * One context owns every subsystem, created in a fixed order by
 * broker_create and torn down by broker_destroy: catalog and region table,
 * the registry (core), the ZeroMQ context and its three sockets (agents
 * ROUTER, clients ROUTER, events PUB).
 */
#ifndef MUSTERD_BROKER_H
#define MUSTERD_BROKER_H

#include <signal.h>
#include <stdio.h>

#include "config.h"
#include "error.h"

typedef struct broker broker;

/* Load data files, create the core, bind sockets. NULL with a reason. */
broker *broker_create(const broker_config *cfg, mu_error *errp);

/* Serve until *stop becomes non-zero (set from a signal handler).
 * Returns 0 on a clean stop, -1 with a reason on a fatal socket error. */
int broker_run(broker *b, volatile sig_atomic_t *stop, mu_error *errp);

void broker_destroy(broker *b);

/* musterd --check: load the store (and with it every saved worker and
 * cluster), verify the store's and the core's invariants, report on out.
 * 0 when sound; -1 with the first violation. Needs no sockets. */
int broker_check(const broker_config *cfg, FILE *out, mu_error *errp);
/* musterd --dump: the saved state as one JSON document on out. */
int broker_dump(const broker_config *cfg, FILE *out, mu_error *errp);

#endif
