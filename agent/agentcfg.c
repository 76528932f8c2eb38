/* agentcfg.c - see agentcfg.h. */
#include "agentcfg.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "alloc.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "strutil.h"

/* The broker may ask for up to this much per result; so may the operator
 * (RUNNER_RESULT_CEILING in runner.h). */
#define MAX_RESULT_CEILING (16u << 20)

void agent_config_default(agent_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    str_copy(cfg->broker, "tcp://127.0.0.1:7700", sizeof(cfg->broker));
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (geteuid() == 0)
        str_copy(cfg->state_dir, "/var/lib/muster-agent", sizeof(cfg->state_dir));
    else if (xdg && *xdg)
        snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/muster-agent", xdg);
    else if (home && *home)
        snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/.local/state/muster-agent", home);
    else
        str_copy(cfg->state_dir, ".muster-agent", sizeof(cfg->state_dir));
    str_copy(cfg->data_dir, MUSTER_DATA_DIR, sizeof(cfg->data_dir));
    cfg->log_level = LOG_INFO;
    cfg->reconnect_min_ms = 1000;
    cfg->reconnect_max_ms = 32000;
    cfg->sim_speed = 1.0;
    cfg->task_kill_grace_ms = 5000;
    cfg->max_result_bytes = 1u << 20;
}

int agent_parse_simulate(const char *s, char *model, size_t n, uint32_t *count, mu_error *errp)
{
    const char *colon = strrchr(s, ':');
    size_t len = colon ? (size_t)(colon - s) : strlen(s);
    *count = 1;
    if (colon) {
        uint64_t c;
        if (str_to_u64(colon + 1, 1, 16, &c) < 0)
            return errprintf(errp, "--simulate-gpu: count \"%s\" is not 1..16", colon + 1);
        *count = (uint32_t)c;
    }
    if (len == 0 || len >= n)
        return errprintf(errp, "--simulate-gpu: expected MODEL[:COUNT], e.g. \"RTX 4090:2\"");
    memcpy(model, s, len);
    model[len] = '\0';
    return 0;
}

int agent_parse_price(const char *s, uint64_t *uusd, mu_error *errp)
{
    double v;
    if (str_to_double(s, &v) < 0 || v <= 0 || v > 1000)
        return errprintf(errp, "--price: \"%s\" is not a price in USD per GPU hour (0..1000]", s);
    *uusd = (uint64_t)(v * 1e6 + 0.5);
    return 0;
}

int agent_parse_bandwidth(const char *s, uint32_t *down, uint32_t *up, mu_error *errp)
{
    char buf[64];
    if (str_copy(buf, s, sizeof(buf)) >= sizeof(buf))
        return errprintf(errp, "--bandwidth: expected DOWN/UP in Mbit/s, e.g. 500/400");
    char *slash = strchr(buf, '/');
    if (!slash)
        return errprintf(errp, "--bandwidth: expected DOWN/UP in Mbit/s, e.g. 500/400");
    *slash = '\0';
    uint64_t d, u;
    if (str_to_u64(buf, 0, 1000000, &d) < 0 || str_to_u64(slash + 1, 0, 1000000, &u) < 0)
        return errprintf(errp, "--bandwidth: \"%s\" is not DOWN/UP in Mbit/s (0..1000000)", s);
    *down = (uint32_t)d;
    *up = (uint32_t)u;
    return 0;
}

static int set_country(agent_config *cfg, const char *v, mu_error *errp)
{
    if (strlen(v) != 2 || !isalpha((unsigned char)v[0]) || !isalpha((unsigned char)v[1]))
        return errprintf(errp, "country \"%s\" is not a two-letter ISO code (e.g. DE)", v);
    cfg->country[0] = (char)toupper((unsigned char)v[0]);
    cfg->country[1] = (char)toupper((unsigned char)v[1]);
    cfg->country[2] = '\0';
    return 0;
}

static int set_str(char *dst, size_t n, const char *v, const char *what, mu_error *errp)
{
    if (str_copy(dst, v, n) >= n)
        return errprintf(errp, "%s is too long (at most %zu characters)", what, n - 1);
    return 0;
}

int agent_config_parse_json(agent_config *cfg, const char *text, size_t len, const char *where,
                            mu_error *errp)
{
    static const char *const keys[] = {
        "broker", "state_dir", "country", "region", "simulate_gpu", "bandwidth", "hostname",
        "data_dir", "topology", "log_level", "reconnect_min_ms", "reconnect_max_ms", "price",
        /* tasks */
        "work_dir", "task_kill_grace_ms", "max_result_bytes", "broker_key", "key", NULL};
    agent_config n = *cfg;
    cJSON *root = json_parse(text, len, where, errp);
    if (!root)
        return -1;
    int rc = -1;
    const char *s;
    if (json_check_keys(root, keys, where, errp) < 0)
        goto out;
    const json_string_field strs[] = {
        {"broker", n.broker, sizeof(n.broker), true},
        {"state_dir", n.state_dir, sizeof(n.state_dir), true},
        {"region", n.region, sizeof(n.region), false},
        {"hostname", n.hostname, sizeof(n.hostname), false},
        {"data_dir", n.data_dir, sizeof(n.data_dir), true},
        {"topology", n.topology, sizeof(n.topology), false},
        {"work_dir", n.work_dir, sizeof(n.work_dir), true},
        {"broker_key", n.broker_key, sizeof(n.broker_key), true},
        {"key", n.key_path, sizeof(n.key_path), true},
    };
    if (json_get_strings(root, strs, sizeof(strs) / sizeof(strs[0]), where, errp) < 0)
        goto out;
    s = NULL;
    if (json_get_string(root, "country", false, &s, where, errp) < 0 ||
        (s && set_country(&n, s, errp) < 0))
        goto out;
    s = NULL;
    if (json_get_string(root, "simulate_gpu", false, &s, where, errp) < 0 ||
        (s && agent_parse_simulate(s, n.simulate_model, sizeof(n.simulate_model), &n.simulate_count,
                                   errp) < 0))
        goto out;
    s = NULL;
    if (json_get_string(root, "bandwidth", false, &s, where, errp) < 0 ||
        (s && agent_parse_bandwidth(s, &n.bw_down_mbps, &n.bw_up_mbps, errp) < 0))
        goto out;
    double price = 0;
    if (json_get_number(root, "price", false, 0.000001, 1000, &price, where, errp) < 0)
        goto out;
    if (price > 0)
        n.price_uusd = (uint64_t)(price * 1e6 + 0.5);
    s = NULL;
    if (json_get_string(root, "log_level", false, &s, where, errp) < 0)
        goto out;
    if (s && log_level_parse(s, &n.log_level) < 0) {
        errprintf(errp, "%s: log_level \"%s\" is not debug, info, warn, error or off", where, s);
        goto out;
    }
    if (json_get_u32(root, "reconnect_min_ms", false, 10, 3600000, &n.reconnect_min_ms, where,
                     errp) < 0 ||
        json_get_u32(root, "reconnect_max_ms", false, 10, 3600000, &n.reconnect_max_ms, where,
                     errp) < 0 ||
        json_get_u32(root, "task_kill_grace_ms", false, 1, 600000, &n.task_kill_grace_ms, where,
                     errp) < 0 ||
        json_get_u32(root, "max_result_bytes", false, 1, MAX_RESULT_CEILING, &n.max_result_bytes,
                     where, errp) < 0)
        goto out;
    *cfg = n;
    rc = 0;
out:
    if (rc < 0 && errp && strncmp(errp->text, where, strlen(where)) != 0)
        errprefix(errp, "%s", where);
    cJSON_Delete(root);
    return rc;
}

void agent_config_usage(FILE *out)
{
    fprintf(out,
            "Usage: muster-agent [OPTIONS]\n"
            "\n"
            "The muster worker daemon: finds this host's GPUs (hwloc, NVML when present),\n"
            "registers with the broker, runs the tasks the broker sends and heartbeats until\n"
            "stopped (SIGINT/SIGTERM, which kill the tasks still running; then it says\n"
            "goodbye). Its worker id is created once and kept in the state directory, so a\n"
            "restarted agent is the same worker.\n"
            "\n"
            "Options (each overrides the same key of the --config file):\n"
            "  -c, --config FILE          JSON config file (keys: see docs/operator.md)\n"
            "  -b, --broker EP            broker's agent endpoint [tcp://127.0.0.1:7700]\n"
            "  -s, --state-dir DIR        where the worker id is kept\n"
            "                             [/var/lib/muster-agent as root, else\n"
            "                             ~/.local/state/muster-agent]\n"
            "      --country CC           ISO 3166-1 country code of this host, e.g. DE\n"
            "      --region NAME          muster region (derived from --country if absent)\n"
            "      --simulate-gpu MODEL[:COUNT]\n"
            "                             claim COUNT (1..16) simulated GPUs of a catalog\n"
            "                             model, for hosts without GPUs (e.g. \"RTX 4090:2\")\n"
            "      --bandwidth DOWN/UP    measured bandwidth in Mbit/s, e.g. 500/400; sets\n"
            "                             the tier (low >= 100/75, medium >= 400/300,\n"
            "                             high >= 800/600, ultra >= 1600/1200) [0/0: none]\n"
            "      --price USD            asking price per GPU hour, e.g. 0.45 [the broker's\n"
            "                             default, from the GPU catalog and the tier]\n"
            "      --hostname NAME        register under NAME instead of this host's name\n"
            "      --topology FILE        inventory an hwloc XML topology, not this host\n"
            "      --data-dir DIR         where gpus.json lives [%s]\n"
            "      --log-level LEVEL      debug, info, warn, error, off [info]\n"
            "      --reconnect-min-ms MS  first reconnect delay [1000]\n"
            "      --reconnect-max-ms MS  longest reconnect delay (doubling) [32000]\n"
            "      --broker-key KEY       the broker's CURVE public key: connect encrypted\n"
            "                             and authenticated (a broker started with --key)\n"
            "      --key FILE             this worker's key pair, created at the first\n"
            "                             start; its id is bound to it [STATE-DIR/key.json]\n"
            "      --work-dir DIR         where tasks run: each attempt in DIR/CLUSTER/N.A/,\n"
            "                             its working directory unless the task names one,\n"
            "                             with output.log holding all of its output\n"
            "                             [STATE-DIR/tasks]\n"
            "      --task-kill-grace-ms MS\n"
            "                             a task timed out or cancelled gets SIGTERM, then\n"
            "                             SIGKILL after MS (1..600000) [5000]\n"
            "      --max-result-bytes N   largest result file returned when the broker sets\n"
            "                             no limit, 1..16777216 [1048576]\n"
            "      --pow-backend NAME     proof-of-work backend: auto (CUDA when built and\n"
            "                             a device is there, else cpu), cpu, cuda, or sim\n"
            "                             (simulated GPUs; the default with --simulate-gpu)\n"
            "      --sim-speed F          sim backend: fraction of the claimed throughput\n"
            "                             delivered, 0.01..4 (below 0.7 fails) [1.0]\n"
            "      --sim-skip F           sim backend: fraction of the work skipped, 0..0.99,\n"
            "                             to test the broker's spot checks [0]\n"
            "      --sim-jitter-ms MS     sim backend: up to MS of random delay added [0]\n"
            "      --sim-speed-after N:F  sim backend: from the (N+1)th challenge on, run at\n"
            "                             speed F (a GPU swapped out after verification)\n"
            "  -h, --help                 show this help and exit\n"
            "      --version              show the version and exit\n"
            "\n"
            "Exit status: 0 after a clean stop, 1 on a runtime error, 2 on a bad flag,\n"
            "config or data file, a broker endpoint libzmq rejects, or when the broker\n"
            "refuses the registration (the reason is logged).\n",
            MUSTER_DATA_DIR);
}

enum {
    OPT_COUNTRY = 256,
    OPT_REGION,
    OPT_SIMULATE,
    OPT_BANDWIDTH,
    OPT_HOSTNAME,
    OPT_TOPOLOGY,
    OPT_DATADIR,
    OPT_LOGLEVEL,
    OPT_RMIN,
    OPT_RMAX,
    OPT_VERSION,
    OPT_POWBACKEND,
    OPT_SIMSPEED,
    OPT_SIMSKIP,
    OPT_SIMJITTER,
    OPT_SIMAFTER,
    OPT_PRICE,
    OPT_WORKDIR,
    OPT_BROKER_KEY,
    OPT_KEY,
    OPT_KILLGRACE,
    OPT_MAXRESULT,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"broker", required_argument, NULL, 'b'},
    {"state-dir", required_argument, NULL, 's'},
    {"country", required_argument, NULL, OPT_COUNTRY},
    {"region", required_argument, NULL, OPT_REGION},
    {"simulate-gpu", required_argument, NULL, OPT_SIMULATE},
    {"bandwidth", required_argument, NULL, OPT_BANDWIDTH},
    {"price", required_argument, NULL, OPT_PRICE},
    {"pow-backend", required_argument, NULL, OPT_POWBACKEND},
    {"sim-speed", required_argument, NULL, OPT_SIMSPEED},
    {"sim-skip", required_argument, NULL, OPT_SIMSKIP},
    {"sim-jitter-ms", required_argument, NULL, OPT_SIMJITTER},
    {"sim-speed-after", required_argument, NULL, OPT_SIMAFTER},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"topology", required_argument, NULL, OPT_TOPOLOGY},
    {"data-dir", required_argument, NULL, OPT_DATADIR},
    {"log-level", required_argument, NULL, OPT_LOGLEVEL},
    {"reconnect-min-ms", required_argument, NULL, OPT_RMIN},
    {"reconnect-max-ms", required_argument, NULL, OPT_RMAX},
    {"work-dir", required_argument, NULL, OPT_WORKDIR},
    {"broker-key", required_argument, NULL, OPT_BROKER_KEY},
    {"key", required_argument, NULL, OPT_KEY},
    {"task-kill-grace-ms", required_argument, NULL, OPT_KILLGRACE},
    {"max-result-bytes", required_argument, NULL, OPT_MAXRESULT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

int agent_config_from_args(agent_config *cfg, int argc, char **argv, agent_action *action,
                           mu_error *errp)
{
    static const char shortopts[] = "c:b:s:h";
    agent_config_default(cfg);
    *action = AGENT_RUN;
    const char *config_path = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, shortopts, long_opts, NULL)) != -1) {
        if (c == 'c')
            config_path = optarg;
        else if (c == 'h')
            *action = AGENT_HELP;
        else if (c == OPT_VERSION)
            *action = AGENT_VERSION;
        else if (c == '?') {
            if (optopt)
                return errprintf(errp, "option -%c is unknown or needs a value (see --help)",
                                 optopt);
            return errprintf(errp, "option %s is unknown or needs a value (see --help)",
                             argv[optind - 1]);
        }
    }
    if (optind < argc)
        return errprintf(errp, "unexpected argument \"%s\" (see --help)", argv[optind]);
    if (*action != AGENT_RUN)
        return 0;
    if (config_path) {
        size_t len;
        char *text = fs_read_file(config_path, 1u << 20, &len, errp);
        if (!text)
            return -1;
        int rc = agent_config_parse_json(cfg, text, len, config_path, errp);
        mu_free(text);
        if (rc < 0)
            return -1;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, shortopts, long_opts, NULL)) != -1) {
        int rc = 0;
        uint64_t v;
        switch (c) {
        case 'b':
            rc = set_str(cfg->broker, sizeof(cfg->broker), optarg, "--broker", errp);
            break;
        case 's':
            rc = set_str(cfg->state_dir, sizeof(cfg->state_dir), optarg, "--state-dir", errp);
            break;
        case OPT_COUNTRY:
            rc = set_country(cfg, optarg, errp);
            break;
        case OPT_REGION:
            rc = set_str(cfg->region, sizeof(cfg->region), optarg, "--region", errp);
            break;
        case OPT_SIMULATE:
            rc = agent_parse_simulate(optarg, cfg->simulate_model, sizeof(cfg->simulate_model),
                                      &cfg->simulate_count, errp);
            break;
        case OPT_BANDWIDTH:
            rc = agent_parse_bandwidth(optarg, &cfg->bw_down_mbps, &cfg->bw_up_mbps, errp);
            break;
        case OPT_PRICE:
            rc = agent_parse_price(optarg, &cfg->price_uusd, errp);
            break;
        case OPT_POWBACKEND:
            if (strcmp(optarg, "auto") && strcmp(optarg, "cpu") && strcmp(optarg, "cuda") &&
                strcmp(optarg, "sim"))
                rc = errprintf(errp, "--pow-backend: \"%s\" is not auto, cpu, cuda or sim", optarg);
            else
                str_copy(cfg->pow_backend, optarg, sizeof(cfg->pow_backend));
            break;
        case OPT_SIMSPEED:
            if (str_to_double(optarg, &cfg->sim_speed) < 0 || cfg->sim_speed < 0.01 ||
                cfg->sim_speed > 4)
                rc = errprintf(errp, "--sim-speed: \"%s\" is not a number in 0.01..4", optarg);
            break;
        case OPT_SIMSKIP:
            if (str_to_double(optarg, &cfg->sim_skip) < 0 || cfg->sim_skip < 0 ||
                cfg->sim_skip > 0.99)
                rc = errprintf(errp, "--sim-skip: \"%s\" is not a number in 0..0.99", optarg);
            break;
        case OPT_SIMJITTER:
            if (str_to_u64(optarg, 0, 60000, &v) < 0)
                rc = errprintf(errp, "--sim-jitter-ms: \"%s\" is not 0..60000", optarg);
            else
                cfg->sim_jitter_ms = (uint32_t)v;
            break;
        case OPT_SIMAFTER: {
            char *colon = strchr(optarg, ':');
            char count[16];
            if (!colon || (size_t)(colon - optarg) >= sizeof(count)) {
                rc = errprintf(errp, "--sim-speed-after: expected N:F, e.g. 1:0.5");
                break;
            }
            memcpy(count, optarg, (size_t)(colon - optarg));
            count[colon - optarg] = '\0';
            if (str_to_u64(count, 1, 1000000, &v) < 0 ||
                str_to_double(colon + 1, &cfg->sim_speed_after) < 0 ||
                cfg->sim_speed_after < 0.01 || cfg->sim_speed_after > 4)
                rc = errprintf(errp,
                               "--sim-speed-after: \"%s\" is not N:F with N >= 1 and F in "
                               "0.01..4",
                               optarg);
            else
                cfg->sim_switch_after = (uint32_t)v;
            break;
        }
        case OPT_HOSTNAME:
            rc = set_str(cfg->hostname, sizeof(cfg->hostname), optarg, "--hostname", errp);
            break;
        case OPT_TOPOLOGY:
            rc = set_str(cfg->topology, sizeof(cfg->topology), optarg, "--topology", errp);
            break;
        case OPT_DATADIR:
            rc = set_str(cfg->data_dir, sizeof(cfg->data_dir), optarg, "--data-dir", errp);
            break;
        case OPT_LOGLEVEL:
            if (log_level_parse(optarg, &cfg->log_level) < 0)
                rc = errprintf(errp, "--log-level: \"%s\" is not debug, info, warn, error or off",
                               optarg);
            break;
        case OPT_RMIN:
        case OPT_RMAX:
            if (str_to_u64(optarg, 10, 3600000, &v) < 0)
                rc = errprintf(errp, "--reconnect-%s-ms: \"%s\" is not 10..3600000",
                               c == OPT_RMIN ? "min" : "max", optarg);
            else if (c == OPT_RMIN)
                cfg->reconnect_min_ms = (uint32_t)v;
            else
                cfg->reconnect_max_ms = (uint32_t)v;
            break;
        case OPT_BROKER_KEY:
            rc = set_str(cfg->broker_key, sizeof(cfg->broker_key), optarg, "--broker-key", errp);
            break;
        case OPT_KEY:
            rc = set_str(cfg->key_path, sizeof(cfg->key_path), optarg, "--key", errp);
            break;
        case OPT_WORKDIR:
            rc = set_str(cfg->work_dir, sizeof(cfg->work_dir), optarg, "--work-dir", errp);
            break;
        case OPT_KILLGRACE:
            if (str_to_u64(optarg, 1, 600000, &v) < 0)
                rc = errprintf(errp, "--task-kill-grace-ms: \"%s\" is not 1..600000", optarg);
            else
                cfg->task_kill_grace_ms = (uint32_t)v;
            break;
        case OPT_MAXRESULT:
            if (str_to_u64(optarg, 1, MAX_RESULT_CEILING, &v) < 0)
                rc = errprintf(errp, "--max-result-bytes: \"%s\" is not 1..%u", optarg,
                               MAX_RESULT_CEILING);
            else
                cfg->max_result_bytes = (uint32_t)v;
            break;
        default:
            break;
        }
        if (rc < 0)
            return -1;
    }
    if (cfg->reconnect_max_ms < cfg->reconnect_min_ms)
        return errprintf(errp, "reconnect_max_ms (%u) is below reconnect_min_ms (%u)",
                         cfg->reconnect_max_ms, cfg->reconnect_min_ms);
    if (!cfg->broker[0] || !cfg->state_dir[0])
        return errprintf(errp, "broker endpoint and state directory must not be empty");
    if (!cfg->work_dir[0] && (size_t)snprintf(cfg->work_dir, sizeof(cfg->work_dir), "%s/tasks",
                                              cfg->state_dir) >= sizeof(cfg->work_dir))
        return errprintf(errp, "state directory too long for its tasks directory: pass --work-dir");
    if (cfg->broker_key[0] && !key_valid(cfg->broker_key))
        return errprintf(errp, "--broker-key: not a public key (40 characters of Z85, as musterd "
                               "logs it at start and `muster keygen` prints it)");
    if (cfg->key_path[0] && !cfg->broker_key[0])
        return errprintf(errp, "--key needs --broker-key (the broker's public key)");
    if (!cfg->key_path[0] && (size_t)snprintf(cfg->key_path, sizeof(cfg->key_path), "%s/key.json",
                                              cfg->state_dir) >= sizeof(cfg->key_path))
        return errprintf(errp, "state directory too long for its key file: pass --key");
    return 0;
}

int agent_state_lock(const char *state_dir, mu_error *errp)
{
    return fs_lock_dir(state_dir, "muster-agent", "give each agent its own --state-dir", errp);
}

int agent_identity_load(const char *state_dir, mu_id *id, bool *created, mu_error *errp)
{
    char path[AGENT_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/worker-id", state_dir);
    *created = false;
    if (access(path, F_OK) == 0) {
        size_t len;
        char *text = fs_read_file(path, 4096, &len, errp);
        if (!text)
            return -1;
        while (len && isspace((unsigned char)text[len - 1]))
            text[--len] = '\0';
        int rc = id_parse(text, id);
        mu_free(text);
        if (rc < 0)
            return errprintf(errp,
                             "%s does not hold a worker id (a UUID); it is left untouched: "
                             "restore it, or remove it to register as a new worker",
                             path);
        return 0;
    }
    if (errno != ENOENT)
        return errprintf(errp, "%s: %s", path, strerror(errno));
    if (fs_mkdir_p(state_dir, 0700, errp) < 0)
        return -1;
    char text[ID_TEXT_LEN + 1];
    id_generate(id);
    id_format(id, text);
    text[ID_TEXT_LEN - 1] = '\n';
    text[ID_TEXT_LEN] = '\0';
    /* Write the id under a private name, then link() it into place: link
     * fails if the file appeared meanwhile (another agent on the same state
     * dir), and then that agent's id is the one to use, never overwritten. */
    char tmp[AGENT_PATH_MAX + 48];
    snprintf(tmp, sizeof(tmp), "%s/worker-id.%ld.new", state_dir, (long)getpid());
    if (fs_write_atomic(tmp, text, ID_TEXT_LEN, errp) < 0)
        return -1;
    int rc = link(tmp, path);
    int e = errno;
    unlink(tmp);
    if (rc < 0 && e == EEXIST)
        return agent_identity_load(state_dir, id, created, errp);
    if (rc < 0)
        return errprintf(errp, "%s: %s", path, strerror(e));
    *created = true;
    return 0;
}
