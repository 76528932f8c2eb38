/* test_config.c - musterd's and muster-agent's configuration: defaults,
 * JSON files, flags overriding files, and a one-line error naming the
 * problem for every bad key, value or flag. Also the agent's worker-id file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agentcfg.h"
#include "config.h"
#include "fsutil.h"

static int broker_args(broker_config *cfg, mu_error *err, config_action *action, ...)
{
    char *argv[16] = {"musterd"};
    int argc = 1;
    va_list ap;
    va_start(ap, action);
    for (char *a; argc < 15 && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    return broker_config_from_args(cfg, argc, argv, action, err);
}

static void test_broker_defaults(void **state)
{
    (void)state;
    broker_config cfg;
    config_action action;
    mu_error err;
    assert_int_equal(broker_args(&cfg, &err, &action, NULL), 0);
    assert_int_equal(action, CONFIG_RUN);
    assert_string_equal(cfg.agent_endpoint, "tcp://127.0.0.1:7700");
    assert_string_equal(cfg.client_endpoint, "tcp://127.0.0.1:7701");
    assert_int_equal(cfg.heartbeat_interval_ms, 1000);
    assert_int_equal(cfg.liveness, 3);
    assert_int_equal(cfg.tiers.min_down[TIER_MEDIUM], 400);
    char path[CONFIG_PATH_MAX + 32];
    broker_config_catalog_path(&cfg, path, sizeof(path));
    assert_non_null(strstr(path, "/gpus.json"));
    assert_int_equal(broker_args(&cfg, &err, &action, "--help", NULL), 0);
    assert_int_equal(action, CONFIG_HELP);
}

static void test_broker_json(void **state)
{
    (void)state;
    broker_config cfg;
    broker_config_default(&cfg);
    mu_error err;
    const char *ok = "{\"agent_endpoint\": \"tcp://127.0.0.1:9000\", \"liveness\": 5,\n"
                     " \"log_level\": \"debug\", \"tiers\": {\"ultra\": {\"down\": 5000}}}";
    assert_int_equal(broker_config_parse_json(&cfg, ok, strlen(ok), "c.json", &err), 0);
    assert_string_equal(cfg.agent_endpoint, "tcp://127.0.0.1:9000");
    assert_int_equal(cfg.liveness, 5);
    assert_int_equal(cfg.log_level, LOG_DEBUG);
    assert_int_equal(cfg.tiers.min_down[TIER_ULTRA], 5000);

    const char *bad[][2] = {
        {"{\"agent_endpiont\": \"x\"}", "unknown key \"agent_endpiont\""},
        {"{\"liveness\": 1}", "\"liveness\" must be between 2 and 100"},
        {"{\"liveness\": \"3\"}", "\"liveness\" must be a number"},
        {"{\"heartbeat_interval_ms\": 250.5}", "whole number"},
        {"{\"log_level\": \"loud\"}", "log_level \"loud\""},
        {"{\"agent_endpoint\": \"\"}", "must not be empty"},
        {"{\"tiers\": {\"low\": {\"down\": 0}}}", "between 1 and"},
        {"{\n\"liveness\": 3,,\n}", "c.json:2"},
        {"[]", "expected a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        broker_config before = cfg;
        memset(&err, 0, sizeof(err));
        assert_int_equal(
            broker_config_parse_json(&cfg, bad[i][0], strlen(bad[i][0]), "c.json", &err), -1);
        if (!strstr(err.text, bad[i][1]))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.text, bad[i][1]);
        assert_memory_equal(&cfg, &before, sizeof(cfg)); /* unchanged */
    }
}

static void test_broker_flags_override_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/muster-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/musterd.json", dir);
    const char *text = "{\"liveness\": 7, \"heartbeat_interval_ms\": 250}";
    mu_error err;
    assert_int_equal(fs_write_atomic(path, text, strlen(text), &err), 0);
    broker_config cfg;
    config_action action;
    /* the flag comes before --config and still wins */
    assert_int_equal(broker_args(&cfg, &err, &action, "--liveness", "4", "--config", path, NULL),
                     0);
    assert_int_equal(cfg.liveness, 4);
    assert_int_equal(cfg.heartbeat_interval_ms, 250);
    unlink(path);
    rmdir(dir);
}

static void test_broker_bad_flags(void **state)
{
    (void)state;
    broker_config cfg;
    config_action action;
    mu_error err;
    struct {
        const char *a, *b, *needle;
    } cases[] = {
        {"--liveness", "0", "--liveness"},
        {"--heartbeat-ms", "fast", "--heartbeat-ms"},
        {"--bogus", NULL, "--bogus"},
        {"--agent-endpoint", "tcp://0.0.0.0:7700", "is not tcp:// on 127.0.0.0/8"},
        {"--client-endpoint", "tcp://10.1.2.3:7701", "is not tcp:// on 127.0.0.0/8"},
        {"--event-endpoint", "tcp://127.0.0.1:7700", "same endpoint"},
        {"--config", "/nonexistent.json", "/nonexistent.json"},
        {"--log-level", "chatty", "--log-level"},
        {"stray", NULL, "unexpected argument"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(broker_args(&cfg, &err, &action, cases[i].a, cases[i].b, NULL), -1);
        if (!strstr(err.text, cases[i].needle))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.text, cases[i].needle);
        assert_null(strchr(err.text, '\n')); /* one line */
    }
    /* Port "*" (any free port) may be asked for by every endpoint. */
    memset(&err, 0, sizeof(err));
    assert_int_equal(broker_args(&cfg, &err, &action, "--agent-endpoint", "tcp://127.0.0.1:*",
                                 "--client-endpoint", "tcp://127.0.0.1:*", "--event-endpoint",
                                 "tcp://127.0.0.1:*", NULL),
                     0);
    assert_true(endpoint_is_local("ipc:///tmp/x"));
    assert_false(endpoint_is_local("tcp://localhost:1")); /* libzmq cannot bind a name */
    assert_true(endpoint_is_local("tcp://127.0.0.1:*"));
    assert_true(endpoint_is_local("tcp://127.1.2.3:9"));
    assert_false(endpoint_is_local("tcp://*:7700"));
    assert_false(endpoint_is_local("tcp://127.example.com:1"));
    assert_false(endpoint_is_local("tcp://eth0:7700"));
    assert_false(endpoint_is_local("pgm://127.0.0.1:1"));
}

static int agent_args(agent_config *cfg, mu_error *err, ...)
{
    char *argv[16] = {"muster-agent"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; argc < 15 && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    agent_action action;
    return agent_config_from_args(cfg, argc, argv, &action, err);
}

static void test_agent_flags(void **state)
{
    (void)state;
    agent_config cfg;
    mu_error err;
    assert_int_equal(agent_args(&cfg, &err, "--simulate-gpu", "RTX 4090:4", "--country", "de",
                                "--bandwidth", "500/400", "-b", "tcp://127.0.0.1:1", NULL),
                     0);
    assert_string_equal(cfg.simulate_model, "RTX 4090");
    assert_int_equal(cfg.simulate_count, 4);
    assert_string_equal(cfg.country, "DE");
    assert_int_equal(cfg.bw_down_mbps, 500);
    assert_int_equal(cfg.bw_up_mbps, 400);
    assert_string_equal(cfg.broker, "tcp://127.0.0.1:1");
    assert_int_equal(agent_args(&cfg, &err, "--simulate-gpu", "T4", NULL), 0);
    assert_int_equal(cfg.simulate_count, 1);

    struct {
        const char *a, *b, *needle;
    } cases[] = {
        {"--simulate-gpu", "T4:0", "1..16"},
        {"--simulate-gpu", "T4:17", "1..16"},
        {"--simulate-gpu", ":2", "MODEL[:COUNT]"},
        {"--bandwidth", "500", "DOWN/UP"},
        {"--bandwidth", "a/b", "DOWN/UP"},
        {"--country", "Germany", "two-letter"},
        {"--reconnect-min-ms", "5", "--reconnect-min-ms"},
        {"--nope", NULL, "--nope"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(agent_args(&cfg, &err, cases[i].a, cases[i].b, NULL), -1);
        if (!strstr(err.text, cases[i].needle))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.text, cases[i].needle);
    }
    assert_int_equal(
        agent_args(&cfg, &err, "--reconnect-min-ms", "5000", "--reconnect-max-ms", "1000", NULL),
        -1);
    assert_non_null(strstr(err.text, "reconnect_max_ms"));
}

static void test_agent_json(void **state)
{
    (void)state;
    agent_config cfg;
    agent_config_default(&cfg);
    mu_error err;
    const char *ok = "{\"country\": \"jp\", \"simulate_gpu\": \"H100:8\", \"bandwidth\": "
                     "\"2000/1500\", \"hostname\": \"n1\"}";
    assert_int_equal(agent_config_parse_json(&cfg, ok, strlen(ok), "a.json", &err), 0);
    assert_string_equal(cfg.country, "JP");
    assert_int_equal(cfg.simulate_count, 8);
    assert_string_equal(cfg.hostname, "n1");
    agent_config before = cfg;
    const char *bad = "{\"country\": \"jp\", \"gpu\": \"H100\"}";
    assert_int_equal(agent_config_parse_json(&cfg, bad, strlen(bad), "a.json", &err), -1);
    assert_non_null(strstr(err.text, "unknown key \"gpu\""));
    assert_memory_equal(&cfg, &before, sizeof(cfg));
}

static void test_agent_identity_persists(void **state)
{
    (void)state;
    char dir[] = "/tmp/muster-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/state/nested", dir);
    mu_id a, b;
    bool created;
    mu_error err;
    assert_int_equal(agent_identity_load(sub, &a, &created, &err), 0);
    assert_true(created);
    assert_false(id_is_null(&a));
    assert_int_equal(agent_identity_load(sub, &b, &created, &err), 0);
    assert_false(created);
    assert_true(id_equal(&a, &b));

    /* A corrupt id file is an error and is left exactly as it was. */
    char path[192];
    snprintf(path, sizeof(path), "%s/worker-id", sub);
    assert_int_equal(fs_write_atomic(path, "garbage\n", 8, &err), 0);
    assert_int_equal(agent_identity_load(sub, &b, &created, &err), -1);
    assert_non_null(strstr(err.text, "left untouched"));
    size_t len;
    char *text = fs_read_file(path, 100, &len, &err);
    assert_non_null(text);
    assert_string_equal(text, "garbage\n");
    free(text);

    unlink(path);

    /* One agent per state directory: a second lock is refused. flock locks
     * belong to the open file, so a second open in this process conflicts
     * just as another process would. */
    int fd = agent_state_lock(sub, &err);
    assert_true(fd >= 0);
    assert_int_equal(agent_state_lock(sub, &err), -1);
    assert_non_null(strstr(err.text, "another muster-agent"));
    close(fd);
    fd = agent_state_lock(sub, &err); /* free again once released */
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof(path), "%s/lock", sub);
    unlink(path);

    rmdir(sub);
    snprintf(sub, sizeof(sub), "%s/state", dir);
    rmdir(sub);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_defaults),
        cmocka_unit_test(test_broker_json),
        cmocka_unit_test(test_broker_flags_override_file),
        cmocka_unit_test(test_broker_bad_flags),
        cmocka_unit_test(test_agent_flags),
        cmocka_unit_test(test_agent_json),
        cmocka_unit_test(test_agent_identity_persists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
