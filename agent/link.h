/* link.h - the agent's link to the broker, the Paranoid Pirate way.
 *
 * Register first (the registration carries the protocol version); then any
 * message from the broker proves it alive, and the agent sends a heartbeat
 * only when it has sent nothing for one interval. When the broker has been
 * silent for `liveness` intervals the agent drops the socket and reconnects
 * after an exponential backoff (reconnect_min_ms doubling to
 * reconnect_max_ms). A broker that answers "unknown worker" (it restarted,
 * or declared us offline) gets a fresh registration at once. On stop the
 * agent says goodbye.
 *
 * Tasks (runner.h) run in child processes whatever the link does: TaskStart,
 * TaskKill and ClusterLeave start and stop them; their output goes out as
 * TaskOutput while registered (dropped, and counted, otherwise); each exit
 * goes out as TaskExit and is kept until a TaskExitAck. After every
 * registration the agent sends a TaskReport of the attempts running and
 * then every exit not yet acknowledged. On stop the tasks are killed.
 */
#ifndef MUSTER_AGENT_LINK_H
#define MUSTER_AGENT_LINK_H

#include <signal.h>

#include "agentcfg.h"
#include "error.h"
#include "inventory.h"
#include "muster.pb-c.h"

/* Run until *stop is set. REG is the registration to send and INV the
 * inventory behind it, for what to check when verification fails
 * (borrowed).
 * Returns 0 after a clean stop, -1 with a reason when the broker refused the
 * registration for good (e.g. an unknown GPU model), which no retry fixes. */
int link_run(const agent_config *cfg, const Muster__Register *reg, const inventory *inv,
             volatile sig_atomic_t *stop, mu_error *errp);

#endif
