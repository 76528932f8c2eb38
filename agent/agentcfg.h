/* agentcfg.h - muster-agent's configuration: defaults, a JSON file, flags.
 *
 * Keys of the JSON config file (all optional; an unknown key is an error):
 *   broker          broker's agent endpoint             (tcp://127.0.0.1:7700)
 *   state_dir       where the worker id is kept          (see agent_config_default)
 *   country         ISO 3166-1 alpha-2 code, e.g. "DE"
 *   region          muster region, e.g. "europe" (derived from country if absent)
 *   simulate_gpu    "MODEL[:COUNT]": claim simulated GPUs (hosts without GPUs)
 *   bandwidth       "DOWN/UP" in Mbit/s, e.g. "500/400" (until the probe lands)
 *   price           asking price in USD per GPU hour, e.g. 0.45 (default: the
 *                   broker's, from the GPU catalog and bandwidth tier)
 *   hostname        name to register under               (this host's name)
 *   data_dir        where gpus.json lives (to check simulate_gpu early)
 *   topology        hwloc XML topology to inventory instead of this host
 *   log_level       debug, info, warn, error             (info)
 *   reconnect_min_ms, reconnect_max_ms   backoff bounds   (1000, 32000)
 *   work_dir        where task attempts run, one directory each, with their
 *                   output.log                           (<state_dir>/tasks)
 *   task_kill_grace_ms   SIGTERM to SIGKILL on a timeout or kill, 1..600000 (5000)
 *   max_result_bytes     result file cap when the broker gives none,
 *                        1..16777216                     (1048576)
 */
#ifndef MUSTER_AGENTCFG_H
#define MUSTER_AGENTCFG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "keys.h"
#include "ids.h"
#include "log.h"

#define AGENT_PATH_MAX 1024

typedef struct agent_config {
    char broker[256];
    char state_dir[AGENT_PATH_MAX];
    char country[3];
    char region[40];
    char simulate_model[96]; /* "" = use the real inventory */
    uint32_t simulate_count;
    uint32_t bw_down_mbps;
    uint32_t bw_up_mbps;
    uint64_t price_uusd; /* asking price per GPU hour; 0: the broker's default */
    char hostname[256];  /* "" = this host's */
    char data_dir[AGENT_PATH_MAX];
    char topology[AGENT_PATH_MAX];
    enum log_level log_level;
    uint32_t reconnect_min_ms;
    uint32_t reconnect_max_ms;
    /* Proof of work (prover.h): backend "auto", "cpu", "cuda" or "sim"
     * ("" = "sim" with --simulate-gpu, else "auto"); the sim backend's
     * speed factor (1.0 honest), skipped fraction and jitter. */
    char pow_backend[8];
    double sim_speed;
    double sim_skip;
    uint32_t sim_jitter_ms;
    /* sim: after this many challenges, run at sim_speed_after instead (a
     * GPU swapped out after it was verified); 0: never. */
    uint32_t sim_switch_after;
    double sim_speed_after;
    /* Tasks (runner.h). work_dir is <state_dir>/tasks unless given; it is
     * filled in by agent_config_from_args, after every other setting. */
    char work_dir[AGENT_PATH_MAX];
    uint32_t task_kill_grace_ms;
    uint32_t max_result_bytes;
    /* CURVE: the broker's public key ("" = plain, a loopback broker) and
     * this worker's key pair file (<state_dir>/key.json unless given,
     * created at the first start). curve is filled in by main. */
    char broker_key[KEY_TEXT_LEN];
    char key_path[AGENT_PATH_MAX];
    key_pair curve;
} agent_config;

typedef enum agent_action { AGENT_RUN, AGENT_HELP, AGENT_VERSION } agent_action;

/* Defaults: state_dir is /var/lib/muster-agent for root, else
 * $XDG_STATE_HOME/muster-agent or ~/.local/state/muster-agent; work_dir is
 * left "" (meaning <state_dir>/tasks, see agent_config_from_args). */
void agent_config_default(agent_config *cfg);
int agent_config_parse_json(agent_config *cfg, const char *text, size_t len, const char *where,
                            mu_error *errp);
/* Defaults, then --config FILE, then flags. -1 with a one-line reason. */
int agent_config_from_args(agent_config *cfg, int argc, char **argv, agent_action *action,
                           mu_error *errp);
void agent_config_usage(FILE *out);

/* Parse "MODEL[:COUNT]" (COUNT 1..16, default 1). */
int agent_parse_simulate(const char *s, char *model, size_t n, uint32_t *count, mu_error *errp);
/* Parse a price in USD per GPU hour ("0.45") into micro-USD, 0 < p <= 1000. */
int agent_parse_price(const char *s, uint64_t *uusd, mu_error *errp);
/* Parse "DOWN/UP" in Mbit/s. */
int agent_parse_bandwidth(const char *s, uint32_t *down, uint32_t *up, mu_error *errp);

/* The worker id kept in STATE_DIR/worker-id: read it, or create the
 * directory and a fresh id the first time (*created = true). A corrupt file
 * is an error and is left alone: the id is the worker's identity and its
 * credit, never silently replaced. */
int agent_identity_load(const char *state_dir, mu_id *id, bool *created, mu_error *errp);

/* Take STATE_DIR/lock (creating the directory), held until the process
 * exits: two agents on one state directory would be one worker id fighting
 * itself. Returns the lock's file descriptor, or -1 with a reason naming the
 * pid that holds it. */
int agent_state_lock(const char *state_dir, mu_error *errp);

#endif
