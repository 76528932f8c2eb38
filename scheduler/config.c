/* config.c - see config.h. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "strutil.h"
#include "wire.h"

#define CONFIG_FILE_MAX (1u << 20)

void broker_config_default(broker_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    str_copy(cfg->agent_endpoint, "tcp://127.0.0.1:7700", sizeof(cfg->agent_endpoint));
    str_copy(cfg->client_endpoint, "tcp://127.0.0.1:7701", sizeof(cfg->client_endpoint));
    str_copy(cfg->event_endpoint, "tcp://127.0.0.1:7702", sizeof(cfg->event_endpoint));
    cfg->heartbeat_interval_ms = 1000;
    cfg->liveness = 3;
    cfg->max_message_bytes = WIRE_MAX_MESSAGE_DEFAULT;
    str_copy(cfg->data_dir, MUSTER_DATA_DIR, sizeof(cfg->data_dir));
    cfg->log_level = LOG_INFO;
    tiers_default(&cfg->tiers);
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (geteuid() == 0)
        str_copy(cfg->state_dir, "/var/lib/musterd", sizeof(cfg->state_dir));
    else if (xdg && *xdg)
        snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/musterd", xdg);
    else if (home && *home)
        snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/.local/state/musterd", home);
    else
        str_copy(cfg->state_dir, ".musterd", sizeof(cfg->state_dir));
    cfg->full_sync = true;
    cfg->restore_grace_ms = 30000;
    cfg->reconnect_grace_ms = 1500;
    cfg->task_log_bytes = 64 * 1024;
    cfg->task_result_max_bytes = 64 * 1024;
    cfg->verify = true;
    cfg->verify_target_ms = 1000;
    cfg->verify_scratch_kib = 64;
    cfg->verify_max_rtt_ms = 250;
    cfg->verify_scale = 2e7;
    cfg->verify_recheck_ms = 2000;
    cfg->verify_reverify_s = 6 * 3600;
    cfg->verify_light_ms = 600000;
}

static int set_str(char *dst, size_t n, const char *v, const char *what, mu_error *errp)
{
    if (!*v)
        return errprintf(errp, "%s must not be empty", what);
    if (str_copy(dst, v, n) >= n)
        return errprintf(errp, "%s is too long (at most %zu characters)", what, n - 1);
    return 0;
}

int broker_config_parse_json(broker_config *cfg, const char *text, size_t len, const char *where,
                             mu_error *errp)
{
    static const char *const keys[] = {"agent_endpoint",
                                       "client_endpoint",
                                       "event_endpoint",
                                       "heartbeat_interval_ms",
                                       "liveness",
                                       "max_message_bytes",
                                       "data_dir",
                                       "catalog",
                                       "regions",
                                       "log_level",
                                       "tiers",
                                       "state_dir",
                                       "durability",
                                       "restore_grace_ms",
                                       "store_max_bytes",
                                       "reconnect_grace_ms",
                                       "verify",
                                       "verify_target_ms",
                                       "verify_scale",
                                       "verify_recheck_ms",
                                       "verify_reverify_s",
                                       "verify_light_ms",
                                       "verify_scratch_kib",
                                       "verify_max_rtt_ms",
                                       "task_log_kib",
                                       "task_result_max_bytes",
                                       "key",
                                       "accounts",
                                       "webhook_allow_private",
                                       NULL};
    broker_config n = *cfg;
    cJSON *root = json_parse(text, len, where, errp);
    if (!root)
        return -1;
    int rc = -1;
    const char *s;
    if (json_check_keys(root, keys, where, errp) < 0)
        goto out;
    const json_string_field strs[] = {
        {"agent_endpoint", n.agent_endpoint, sizeof(n.agent_endpoint), true},
        {"client_endpoint", n.client_endpoint, sizeof(n.client_endpoint), true},
        {"event_endpoint", n.event_endpoint, sizeof(n.event_endpoint), true},
        {"data_dir", n.data_dir, sizeof(n.data_dir), true},
        {"catalog", n.catalog_path, sizeof(n.catalog_path), true},
        {"regions", n.regions_path, sizeof(n.regions_path), true},
        {"state_dir", n.state_dir, sizeof(n.state_dir), true},
        {"key", n.key_path, sizeof(n.key_path), true},
        {"accounts", n.accounts_path, sizeof(n.accounts_path), true},
    };
    if (json_get_strings(root, strs, sizeof(strs) / sizeof(strs[0]), where, errp) < 0)
        goto out;
    if (json_get_u32(root, "heartbeat_interval_ms", false, 10, 600000, &n.heartbeat_interval_ms,
                     where, errp) < 0 ||
        json_get_u32(root, "liveness", false, 2, 100, &n.liveness, where, errp) < 0 ||
        json_get_u32(root, "max_message_bytes", false, 1024, 64u << 20, &n.max_message_bytes, where,
                     errp) < 0)
        goto out;
    s = NULL;
    if (json_get_string(root, "log_level", false, &s, where, errp) < 0)
        goto out;
    if (s && log_level_parse(s, &n.log_level) < 0) {
        errprintf(errp, "%s: log_level \"%s\" is not debug, info, warn, error or off", where, s);
        goto out;
    }
    s = NULL;
    if (json_get_string(root, "durability", false, &s, where, errp) < 0)
        goto out;
    if (s && strcmp(s, "full") && strcmp(s, "process")) {
        errprintf(errp, "%s: durability \"%s\" is not full or process", where, s);
        goto out;
    }
    if (s)
        n.full_sync = !strcmp(s, "full");
    double maxb = 0;
    if (json_get_bool(root, "webhook_allow_private", false, &n.webhook_allow_private, where, errp) <
        0)
        goto out;
    uint32_t log_kib = n.task_log_bytes / 1024;
    if (json_get_u32(root, "task_log_kib", false, 1, 16384, &log_kib, where, errp) < 0 ||
        json_get_u32(root, "task_result_max_bytes", false, 0, 16u << 20, &n.task_result_max_bytes,
                     where, errp) < 0)
        goto out;
    n.task_log_bytes = log_kib * 1024;
    if (json_get_u32(root, "restore_grace_ms", false, 0, 3600000, &n.restore_grace_ms, where,
                     errp) < 0 ||
        json_get_number(root, "store_max_bytes", false, 0, 1e15, &maxb, where, errp) < 0)
        goto out;
    if (maxb > 0)
        n.store_max_bytes = (uint64_t)maxb;
    if (json_get_u32(root, "reconnect_grace_ms", false, 10, 3600000, &n.reconnect_grace_ms, where,
                     errp) < 0 ||
        json_get_bool(root, "verify", false, &n.verify, where, errp) < 0 ||
        json_get_u32(root, "verify_target_ms", false, 1, 600000, &n.verify_target_ms, where, errp) <
            0 ||
        json_get_number(root, "verify_scale", false, 1, 1e15, &n.verify_scale, where, errp) < 0 ||
        json_get_u32(root, "verify_recheck_ms", false, 10, 86400000, &n.verify_recheck_ms, where,
                     errp) < 0 ||
        json_get_u32(root, "verify_light_ms", false, 0, 86400000, &n.verify_light_ms, where, errp) <
            0 ||
        json_get_u32(root, "verify_scratch_kib", false, 1, 1u << 20, &n.verify_scratch_kib, where,
                     errp) < 0 ||
        json_get_u32(root, "verify_max_rtt_ms", false, 1, 60000, &n.verify_max_rtt_ms, where,
                     errp) < 0 ||
        json_get_u32(root, "verify_reverify_s", false, 1, 30 * 86400, &n.verify_reverify_s, where,
                     errp) < 0)
        goto out;
    const cJSON *tiers = cJSON_GetObjectItemCaseSensitive(root, "tiers");
    if (tiers && tiers_from_json(&n.tiers, tiers, where, errp) < 0)
        goto out;
    *cfg = n;
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

int broker_config_load_file(broker_config *cfg, const char *path, mu_error *errp)
{
    size_t len;
    char *text = fs_read_file(path, CONFIG_FILE_MAX, &len, errp);
    if (!text)
        return -1;
    int rc = broker_config_parse_json(cfg, text, len, path, errp);
    mu_free(text);
    return rc;
}

void broker_config_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: musterd [OPTIONS]\n"
        "\n"
        "The muster broker: keeps the inventory of GPU workers (muster-agent) and\n"
        "answers clients (muster). Runs in the foreground; stop it with SIGINT or\n"
        "SIGTERM. Logs go to stderr, one key=value line per event.\n"
        "\n"
        "Options (each overrides the same key of the --config file):\n"
        "  -c, --config FILE            JSON config file (keys: see docs/operator.md)\n"
        "      --agent-endpoint EP      where agents connect     [tcp://127.0.0.1:7700]\n"
        "      --client-endpoint EP     where clients connect    [tcp://127.0.0.1:7701]\n"
        "      --event-endpoint EP      PUB socket for events    [tcp://127.0.0.1:7702]\n"
        "      --heartbeat-ms MS        agent heartbeat interval [1000]\n"
        "      --liveness N             missed intervals before a worker is offline [3]\n"
        "      --max-message-bytes N    larger messages are refused [262144]\n"
        "      --data-dir DIR           where gpus.json and regions.json live\n"
        "                               [%s]\n"
        "      --log-level LEVEL        debug, info, warn, error, off [info]\n"
        "  -s, --state-dir DIR          where the store (musterd.db) lives\n"
        "                               [/var/lib/musterd as root, else\n"
        "                               ~/.local/state/musterd]\n"
        "      --durability full|process  full: commits survive power loss [full];\n"
        "                               process: they survive a musterd crash only\n"
        "      --restore-grace-ms MS    after a restart, how long cluster members have\n"
        "                               to come back before they count as lost [30000]\n"
        "      --reconnect-grace-ms MS  a worker whose connection closed is offline, and\n"
        "                               its cluster seat given to another, unless back\n"
        "                               within this [1500]\n"
        "      --key FILE               the broker's CURVE key pair (muster keygen): turns\n"
        "                               on encryption and authentication [off: loopback only]\n"
        "      --accounts FILE          who may connect as a client, with roles (JSON)\n"
        "      --webhook-allow-private  accounts' webhooks may be on loopback or private\n"
        "                               addresses [refused]\n"
        "      --task-log-kib KIB       output kept per task (the latest) [64]\n"
        "      --task-result-max-bytes N  largest result file a task may return; held\n"
        "                               to half of --max-message-bytes [65536]\n"
        "      --no-verify              hire workers without proof-of-work verification\n"
        "      --verify-target-ms MS    a full check's length on the claimed GPU [1000]\n"
        "      --verify-scale UNITS     proof-of-work units per second per claimed FP32\n"
        "                               TFLOPS (the calibration; docs/operator.md) [2e7]\n"
        "      --verify-scratch-kib KIB scratch memory of a check per claimed GiB of VRAM [64]\n"
        "      --verify-recheck-ms MS   re-check a worker that failed a check after [2000]\n"
        "      --verify-light-ms MS     a light check (1/4 of the work) of each hired\n"
        "                               worker this often; 0: none [600000]\n"
        "      --check                  verify the store (and its invariants), then exit\n"
        "      --dump                   print the store as JSON on stdout, then exit\n"
        "  -h, --help                   show this help and exit\n"
        "      --version                show the version and exit\n"
        "\n"
        "Endpoints must be loopback (tcp:// on 127.0.0.0/8, e.g. tcp://127.0.0.1:7700) or\n"
        "ipc:// (a Unix socket path):\n"
        "encrypted, authenticated transport for public addresses is not built yet, and\n"
        "musterd refuses to serve a public address without it.\n"
        "\n"
        "Every accepted request is in the store before its reply leaves. Only one\n"
        "musterd may use a state directory at a time.\n"
        "\n"
        "Exit status: 0 after a clean shutdown (--check: the store is sound), 1 on a\n"
        "runtime error (--check: a violation, listed), 2 on a bad flag or config.\n",
        MUSTER_DATA_DIR);
}

enum {
    OPT_AGENT = 256,
    OPT_CLIENT,
    OPT_EVENT,
    OPT_HB,
    OPT_LIVENESS,
    OPT_MAXMSG,
    OPT_DATADIR,
    OPT_LOGLEVEL,
    OPT_VERSION,
    OPT_DURABILITY,
    OPT_GRACE,
    OPT_CHECK,
    OPT_DUMP,
    OPT_RECONNECT,
    OPT_TASK_LOG,
    OPT_TASK_RESULT,
    OPT_KEY,
    OPT_ACCOUNTS,
    OPT_HOOK_PRIVATE,
    OPT_NOVERIFY,
    OPT_VTARGET,
    OPT_VSCALE,
    OPT_VRECHECK,
    OPT_VLIGHT,
    OPT_VSCRATCH,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"agent-endpoint", required_argument, NULL, OPT_AGENT},
    {"client-endpoint", required_argument, NULL, OPT_CLIENT},
    {"event-endpoint", required_argument, NULL, OPT_EVENT},
    {"heartbeat-ms", required_argument, NULL, OPT_HB},
    {"liveness", required_argument, NULL, OPT_LIVENESS},
    {"max-message-bytes", required_argument, NULL, OPT_MAXMSG},
    {"data-dir", required_argument, NULL, OPT_DATADIR},
    {"log-level", required_argument, NULL, OPT_LOGLEVEL},
    {"state-dir", required_argument, NULL, 's'},
    {"durability", required_argument, NULL, OPT_DURABILITY},
    {"restore-grace-ms", required_argument, NULL, OPT_GRACE},
    {"check", no_argument, NULL, OPT_CHECK},
    {"dump", no_argument, NULL, OPT_DUMP},
    {"reconnect-grace-ms", required_argument, NULL, OPT_RECONNECT},
    {"task-log-kib", required_argument, NULL, OPT_TASK_LOG},
    {"key", required_argument, NULL, OPT_KEY},
    {"accounts", required_argument, NULL, OPT_ACCOUNTS},
    {"webhook-allow-private", no_argument, NULL, OPT_HOOK_PRIVATE},
    {"task-result-max-bytes", required_argument, NULL, OPT_TASK_RESULT},
    {"no-verify", no_argument, NULL, OPT_NOVERIFY},
    {"verify-target-ms", required_argument, NULL, OPT_VTARGET},
    {"verify-scale", required_argument, NULL, OPT_VSCALE},
    {"verify-recheck-ms", required_argument, NULL, OPT_VRECHECK},
    {"verify-light-ms", required_argument, NULL, OPT_VLIGHT},
    {"verify-scratch-kib", required_argument, NULL, OPT_VSCRATCH},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int parse_u32_flag(const char *flag, const char *v, uint64_t min, uint64_t max,
                          uint32_t *out, mu_error *errp)
{
    uint64_t x;
    if (str_to_u64(v, min, max, &x) < 0)
        return errprintf(errp, "--%s: \"%s\" is not a whole number in %llu..%llu", flag, v,
                         (unsigned long long)min, (unsigned long long)max);
    *out = (uint32_t)x;
    return 0;
}

int broker_config_from_args(broker_config *cfg, int argc, char **argv, config_action *action,
                            mu_error *errp)
{
    broker_config_default(cfg);
    *action = CONFIG_RUN;
    int c;
    /* First pass: only --config (and --help/--version), so flags override the
     * file whatever their order. opterr off: we report errors ourselves. */
    opterr = 0;
    optind = 1;
    const char *config_path = NULL;
    while ((c = getopt_long(argc, argv, "c:s:h", long_opts, NULL)) != -1) {
        if (c == 'c')
            config_path = optarg;
        else if (c == 'h')
            *action = CONFIG_HELP;
        else if (c == OPT_VERSION)
            *action = CONFIG_VERSION;
        else if (c == OPT_CHECK)
            *action = CONFIG_CHECK;
        else if (c == OPT_DUMP)
            *action = CONFIG_DUMP;
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
    if (*action == CONFIG_HELP || *action == CONFIG_VERSION)
        return 0;
    if (config_path && broker_config_load_file(cfg, config_path, errp) < 0)
        return -1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:h", long_opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case OPT_AGENT:
            rc = set_str(cfg->agent_endpoint, sizeof(cfg->agent_endpoint), optarg,
                         "--agent-endpoint", errp);
            break;
        case OPT_CLIENT:
            rc = set_str(cfg->client_endpoint, sizeof(cfg->client_endpoint), optarg,
                         "--client-endpoint", errp);
            break;
        case OPT_EVENT:
            rc = set_str(cfg->event_endpoint, sizeof(cfg->event_endpoint), optarg,
                         "--event-endpoint", errp);
            break;
        case OPT_HB:
            rc = parse_u32_flag("heartbeat-ms", optarg, 10, 600000, &cfg->heartbeat_interval_ms,
                                errp);
            break;
        case OPT_LIVENESS:
            rc = parse_u32_flag("liveness", optarg, 2, 100, &cfg->liveness, errp);
            break;
        case OPT_MAXMSG:
            rc = parse_u32_flag("max-message-bytes", optarg, 1024, 64u << 20,
                                &cfg->max_message_bytes, errp);
            break;
        case OPT_DATADIR:
            rc = set_str(cfg->data_dir, sizeof(cfg->data_dir), optarg, "--data-dir", errp);
            break;
        case OPT_KEY:
            rc = set_str(cfg->key_path, sizeof(cfg->key_path), optarg, "--key", errp);
            break;
        case OPT_HOOK_PRIVATE:
            cfg->webhook_allow_private = true;
            break;
        case OPT_ACCOUNTS:
            rc =
                set_str(cfg->accounts_path, sizeof(cfg->accounts_path), optarg, "--accounts", errp);
            break;
        case 's':
            rc = set_str(cfg->state_dir, sizeof(cfg->state_dir), optarg, "--state-dir", errp);
            break;
        case OPT_DURABILITY:
            if (strcmp(optarg, "full") && strcmp(optarg, "process"))
                rc = errprintf(errp, "--durability: \"%s\" is not full or process", optarg);
            cfg->full_sync = !strcmp(optarg, "full");
            break;
        case OPT_GRACE:
            rc = parse_u32_flag("restore-grace-ms", optarg, 0, 3600000, &cfg->restore_grace_ms,
                                errp);
            break;
        case OPT_TASK_LOG: {
            uint32_t kib = 0;
            rc = parse_u32_flag("task-log-kib", optarg, 1, 16384, &kib, errp);
            cfg->task_log_bytes = kib * 1024;
            break;
        }
        case OPT_TASK_RESULT:
            rc = parse_u32_flag("task-result-max-bytes", optarg, 0, 16u << 20,
                                &cfg->task_result_max_bytes, errp);
            break;
        case OPT_RECONNECT:
            rc = parse_u32_flag("reconnect-grace-ms", optarg, 10, 3600000, &cfg->reconnect_grace_ms,
                                errp);
            break;
        case OPT_NOVERIFY:
            cfg->verify = false;
            break;
        case OPT_VTARGET:
            rc =
                parse_u32_flag("verify-target-ms", optarg, 1, 600000, &cfg->verify_target_ms, errp);
            break;
        case OPT_VSCALE:
            if (str_to_double(optarg, &cfg->verify_scale) < 0 || cfg->verify_scale < 1 ||
                cfg->verify_scale > 1e15)
                rc = errprintf(errp, "--verify-scale: \"%s\" is not a number in 1..1e15", optarg);
            break;
        case OPT_VRECHECK:
            rc = parse_u32_flag("verify-recheck-ms", optarg, 10, 86400000, &cfg->verify_recheck_ms,
                                errp);
            break;
        case OPT_VLIGHT:
            rc =
                parse_u32_flag("verify-light-ms", optarg, 0, 86400000, &cfg->verify_light_ms, errp);
            break;
        case OPT_VSCRATCH:
            rc = parse_u32_flag("verify-scratch-kib", optarg, 1, 1u << 20, &cfg->verify_scratch_kib,
                                errp);
            break;
        case OPT_LOGLEVEL:
            if (log_level_parse(optarg, &cfg->log_level) < 0)
                rc = errprintf(errp, "--log-level: \"%s\" is not debug, info, warn, error or off",
                               optarg);
            break;
        default:
            break;
        }
        if (rc < 0)
            return -1;
    }
    return broker_config_validate(cfg, errp);
}

bool endpoint_is_local(const char *ep)
{
    if (strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0)
        return true;
    if (strncmp(ep, "tcp://", 6) != 0)
        return false;
    const char *host = ep + 6;
    const char *colon = strrchr(host, ':');
    if (!colon)
        return false;
    size_t len = (size_t)(colon - host);
    /* 127.0.0.0/8, written as a dotted quad: a name such as
     * "127.example.com" is not loopback, and libzmq cannot bind names
     * ("localhost") or IPv6 without ZMQ_IPV6, so those are refused too. */
    if (len < 7 || strncmp(host, "127.", 4) != 0)
        return false;
    int dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (host[i] == '.')
            dots++;
        else if (host[i] < '0' || host[i] > '9')
            return false;
    }
    return dots == 3;
}

int broker_config_validate(const broker_config *cfg, mu_error *errp)
{
    const char *eps[] = {cfg->agent_endpoint, cfg->client_endpoint, cfg->event_endpoint};
    const char *names[] = {"agent_endpoint", "client_endpoint", "event_endpoint"};
    if (cfg->key_path[0] && !cfg->accounts_path[0])
        return errprintf(errp, "--key turns CURVE on: give --accounts too (who may connect)");
    if (cfg->accounts_path[0] && !cfg->key_path[0])
        return errprintf(errp, "--accounts needs --key (the broker's CURVE key pair)");
    for (int i = 0; i < 3; i++) {
        if (!cfg->key_path[0] && !endpoint_is_local(eps[i]))
            return errprintf(errp,
                             "%s %s is not tcp:// on 127.0.0.0/8 or ipc://: without CURVE "
                             "(--key and --accounts) anyone who can reach it could act as "
                             "anyone, so musterd serves only this machine; create a key pair "
                             "with `muster keygen` and an accounts file (docs/operator.md, "
                             "\"Security\")",
                             names[i], eps[i]);
        /* Port "*" asks libzmq for any free port: several may say so. */
        bool any_port = strlen(eps[i]) >= 2 && strcmp(eps[i] + strlen(eps[i]) - 2, ":*") == 0;
        for (int j = 0; j < i && !any_port; j++)
            if (strcmp(eps[i], eps[j]) == 0)
                return errprintf(errp, "%s and %s are the same endpoint %s", names[j], names[i],
                                 eps[i]);
    }
    if (cfg->liveness < 2)
        return errprintf(errp, "liveness must be at least 2");
    if (cfg->heartbeat_interval_ms < 10)
        return errprintf(errp, "heartbeat interval must be at least 10 ms");

    return tiers_validate(&cfg->tiers, errp);
}

static void join_path(char *out, size_t n, const char *dir, const char *file)
{
    snprintf(out, n, "%s/%s", dir, file);
}

void broker_config_catalog_path(const broker_config *cfg, char *out, size_t n)
{
    if (cfg->catalog_path[0])
        str_copy(out, cfg->catalog_path, n);
    else
        join_path(out, n, cfg->data_dir, "gpus.json");
}

void broker_config_store_path(const broker_config *cfg, char *out, size_t n)
{
    join_path(out, n, cfg->state_dir, "musterd.db");
}

void broker_config_regions_path(const broker_config *cfg, char *out, size_t n)
{
    if (cfg->regions_path[0])
        str_copy(out, cfg->regions_path, n);
    else
        join_path(out, n, cfg->data_dir, "regions.json");
}
