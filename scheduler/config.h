/* config.h - musterd's configuration: defaults, a JSON file, then flags.
 *
 * Keys of the JSON config file (all optional; an unknown key is an error):
 *   agent_endpoint         ZeroMQ endpoint agents connect to   (tcp://127.0.0.1:7700)
 *   client_endpoint        endpoint the CLI and clients use    (tcp://127.0.0.1:7701)
 *   event_endpoint         PUB endpoint for events             (tcp://127.0.0.1:7702)
 *   heartbeat_interval_ms  agents heartbeat at this pace       (1000)
 *   liveness               intervals of silence before offline (3)
 *   max_message_bytes      larger messages get STATUS_TOO_LARGE (262144)
 *   data_dir               where gpus.json and regions.json are (the build's data/)
 *   catalog                GPU catalog file (DATA_DIR/gpus.json)
 *   regions                region table file (DATA_DIR/regions.json)
 *   log_level              debug, info, warn, error, off       (info)
 *   state_dir              where the store lives (/var/lib/musterd as root, else
 *                          $XDG_STATE_HOME/musterd or ~/.local/state/musterd)
 *   durability             "full": every commit survives power loss (default);
 *                          "process": survives a musterd crash, not an OS one
 *   restore_grace_ms       after a restart, how long members of clusters have to
 *                          come back before they count as lost (30000)
 *   store_max_bytes        cap on the store's size, 0: none (0)
 *   reconnect_grace_ms     a worker whose connection closed is offline (and its
 *                          cluster seat replaced) unless back within this (1500)
 *   verify                 proof-of-work verification of workers: true (default)
 *                          or false (every worker is hireable at once)
 *   verify_target_ms       what a full check takes on the claimed GPU (1000)
 *   verify_scratch_kib     scratch memory of a check per claimed GiB of VRAM (64)
 *   verify_max_rtt_ms      most round trip subtracted from a check's time (250)
 *   verify_scale           work units per second per claimed FP32 TFLOPS: the
 *                          calibration of the proof of work (2e7)
 *   verify_recheck_ms      a worker that failed a check is checked again after (2000)
 *   verify_reverify_s      a free, verified worker is checked again after (21600)
 *   verify_light_ms        a hired worker gets a light check (1/4 of the work) this
 *                          often; 0: none, only its liveness and GPU identity (600000)
 *   key                    the broker's CURVE key pair file (muster keygen); with
 *                          it every endpoint is encrypted and authenticated and
 *                          may be on any address ("": none, loopback only)
 *   accounts               the accounts file (scheduler/auth.h); required with key
 *   webhook_allow_private  accounts' webhooks may be on loopback or private
 *                          addresses (false: refused, so that an account cannot
 *                          make the broker POST into its own network)
 *   task_log_kib           output kept per task, the latest (64)
 *   task_result_max_bytes  largest result file a task returns; held to half of
 *                          max_message_bytes (65536)
 *   tiers                  {"low": {"down": 100, "up": 75}, "medium": ..., ...}
 * Most keys have a flag (--agent-endpoint, --heartbeat-ms, --liveness,
 * --max-message-bytes, --data-dir, --log-level), which overrides the file;
 * catalog, regions and tiers are set in the file only.
 */
#ifndef MUSTERD_CONFIG_H
#define MUSTERD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "log.h"
#include "tiers.h"

#define CONFIG_PATH_MAX 1024

typedef struct broker_config {
    char agent_endpoint[256];
    char client_endpoint[256];
    char event_endpoint[256];
    uint32_t heartbeat_interval_ms;
    uint32_t liveness;
    uint32_t max_message_bytes;
    char data_dir[CONFIG_PATH_MAX];
    char catalog_path[CONFIG_PATH_MAX]; /* "" = DATA_DIR/gpus.json */
    char regions_path[CONFIG_PATH_MAX]; /* "" = DATA_DIR/regions.json */
    enum log_level log_level;
    tier_table tiers;
    char state_dir[CONFIG_PATH_MAX];
    bool full_sync;
    uint32_t restore_grace_ms;
    uint64_t store_max_bytes;
    uint32_t reconnect_grace_ms;
    bool verify;
    uint32_t verify_target_ms;
    double verify_scale;
    uint32_t verify_recheck_ms;
    uint32_t verify_reverify_s;
    uint32_t verify_light_ms;
    uint32_t verify_scratch_kib;
    uint32_t verify_max_rtt_ms;
    uint32_t task_log_bytes;
    uint32_t task_result_max_bytes;
    char key_path[CONFIG_PATH_MAX];      /* "": no CURVE (loopback only) */
    char accounts_path[CONFIG_PATH_MAX]; /* required with key_path */
    bool webhook_allow_private;          /* webhooks may POST to loopback/private addresses */
} broker_config;

void broker_config_default(broker_config *cfg);

/* Apply a JSON config (text of len bytes, named WHERE in errors) over cfg.
 * On error cfg is unchanged. */
int broker_config_parse_json(broker_config *cfg, const char *text, size_t len, const char *where,
                             mu_error *errp);
int broker_config_load_file(broker_config *cfg, const char *path, mu_error *errp);

/* What the command line asked for besides settings. */
typedef enum config_action {
    CONFIG_RUN,
    CONFIG_HELP,
    CONFIG_VERSION,
    CONFIG_CHECK, /* --check: verify the store, then exit */
    CONFIG_DUMP,  /* --dump: print the store as JSON, then exit */
} config_action;

/* Defaults, then --config FILE if given, then the other flags. Returns 0 and
 * *action, or -1 with a one-line reason naming the bad flag or key. */
int broker_config_from_args(broker_config *cfg, int argc, char **argv, config_action *action,
                            mu_error *errp);

/* Final checks: endpoints are loopback unless CURVE is on, numbers sane. */
int broker_config_validate(const broker_config *cfg, mu_error *errp);

void broker_config_usage(FILE *out);

/* Resolved catalog and region file paths. */
void broker_config_catalog_path(const broker_config *cfg, char *out, size_t n);
void broker_config_regions_path(const broker_config *cfg, char *out, size_t n);
void broker_config_store_path(const broker_config *cfg, char *out, size_t n);

/* True when an endpoint can only be reached from this machine. */
bool endpoint_is_local(const char *endpoint);

#endif
