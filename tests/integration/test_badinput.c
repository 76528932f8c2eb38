/*
 * Integration test: a real musterd fed bad input over raw ZeroMQ sockets.
 *
 *     test_badinput BUILD_DIR
 *
 * Starts BUILD_DIR/musterd on free 127.0.0.1 ports (--max-message-bytes 4096,
 * --log-level warn), connects DEALER sockets straight to its agent and client
 * endpoints and sends what a broken or hostile peer might: garbage bytes,
 * other protocol versions, bodies the broker does not know, oversized
 * messages, messages on the wrong endpoint, heartbeats from strangers, bad
 * registrations, routing ids that are too long, multipart messages. Every
 * request must get the right error status (with its request id echoed when
 * the envelope decoded), framing errors are dropped and counted, and
 * afterwards the broker still serves valid requests and exits 0 on SIGTERM
 * (a sanitizer report at exit makes a sanitized musterd exit non-zero, which
 * fails the last test).
 *
 * Every receive polls with a deadline, so the test cannot hang; the group
 * teardown kills musterd whatever happened (and musterd dies with the test
 * through PR_SET_PDEATHSIG), and prints its log when a test failed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "alloc.h"
#include "muster.pb-c.h"
#include "wire.h"

#define REPLY_TIMEOUT_MS  2000
#define NO_REPLY_MS       300
#define MAX_MESSAGE_BYTES 4096
#define MAX_SOCKS         64

/* A worker id the test registers for real. */
#define GOOD_ID "6f1c0e52-3b7a-4c1d-9e8f-0a1b2c3d4e5f"

static struct {
    const char *bindir;
    pid_t pid;       /* musterd, 0 once reaped */
    int exit_status; /* of musterd once reaped */
    char agent_ep[64];
    char client_ep[64];
    char event_ep[64];
    char logpath[64];
    char statedir[64]; /* musterd's own store, removed at the end */
    void *zctx;
    void *socks[MAX_SOCKS]; /* open sockets, closed by teardown if a test failed */
    uint64_t next_rid;
    unsigned errors_sent;  /* error replies received: the broker's "rejected" */
    unsigned dropped_sent; /* messages sent that must be dropped */
    unsigned tests_passed;
    size_t n_tests;
    void *events;             /* SUB on the event endpoint, from setup on */
    unsigned challenges_seen; /* proof-of-work challenges skipped by recv_env */
    bool keep_challenges;     /* recv_env returns them (the verification tests) */
} g;

/* --- time and processes ------------------------------------------------------ */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Reap musterd if it has exited, waiting at most timeout_ms. True once reaped. */
static bool reap(unsigned timeout_ms)
{
    if (g.pid <= 0)
        return true;
    uint64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(g.pid, &st, WNOHANG);
        if (r == g.pid) {
            g.exit_status = st;
            g.pid = 0;
            return true;
        }
        if (r < 0 && errno != EINTR) {
            g.pid = 0;
            g.exit_status = -1;
            return true;
        }
        if (mono_ms() >= deadline)
            return false;
        sleep_ms(10);
    }
}

static void kill_musterd(void)
{
    if (g.pid > 0) {
        kill(g.pid, SIGKILL);
        reap(5000);
    }
}

static void print_log(void)
{
    FILE *f = fopen(g.logpath, "r");
    if (!f)
        return;
    fprintf(stderr, "#### musterd log (%s)\n", g.logpath);
    char line[1024];
    while (fgets(line, sizeof(line), f))
        fprintf(stderr, "#   %s", line);
    fclose(f);
}

static bool log_contains(const char *needle)
{
    FILE *f = fopen(g.logpath, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static pid_t spawn_musterd(const int ports[3])
{
    snprintf(g.agent_ep, sizeof(g.agent_ep), "tcp://127.0.0.1:%d", ports[0]);
    snprintf(g.client_ep, sizeof(g.client_ep), "tcp://127.0.0.1:%d", ports[1]);
    snprintf(g.event_ep, sizeof(g.event_ep), "tcp://127.0.0.1:%d", ports[2]);
    char path[4096];
    snprintf(path, sizeof(path), "%s/musterd", g.bindir);
    char maxmsg[16];
    snprintf(maxmsg, sizeof(maxmsg), "%d", MAX_MESSAGE_BYTES);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* child: die with the test, log to the file, exec */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int fd = open(g.logpath, O_WRONLY | O_APPEND);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    char *argv[] = {path,           (char *)"--agent-endpoint",
                    g.agent_ep,     (char *)"--client-endpoint",
                    g.client_ep,    (char *)"--event-endpoint",
                    g.event_ep,     (char *)"--max-message-bytes",
                    maxmsg,         (char *)"--log-level",
                    (char *)"warn", (char *)"--state-dir",
                    g.statedir,     NULL};
    execv(path, argv);
    fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
    _exit(127);
}

/* --- sockets ---------------------------------------------------------------------- */

static void *open_dealer(const char *ep, const void *routing_id, size_t id_len)
{
    void *s = zmq_socket(g.zctx, ZMQ_DEALER);
    assert_non_null(s);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)), 0);
    if (routing_id)
        assert_int_equal(zmq_setsockopt(s, ZMQ_ROUTING_ID, routing_id, id_len), 0);
    assert_int_equal(zmq_connect(s, ep), 0);
    for (int i = 0; i < MAX_SOCKS; i++) {
        if (!g.socks[i]) {
            g.socks[i] = s;
            return s;
        }
    }
    zmq_close(s);
    fail_msg("too many open sockets");
    return NULL;
}

static void close_dealer(void *s)
{
    for (int i = 0; i < MAX_SOCKS; i++)
        if (g.socks[i] == s)
            g.socks[i] = NULL;
    zmq_close(s);
}

static void send_raw(void *s, const void *buf, size_t len)
{
    assert_int_equal(zmq_send(s, buf, len, 0), (int)len);
}

static void send_env(void *s, const Muster__Envelope *env)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(wire_encode(env, &buf, &len), 0);
    int rc = zmq_send(s, buf, len, 0);
    mu_free(buf);
    assert_int_equal(rc, (int)len);
}

/* Receive one single-frame message within timeout_ms and decode it; NULL when
 * nothing came. Free with muster__envelope__free_unpacked(env, NULL). */
static Muster__Envelope *recv_env(void *s, unsigned timeout_ms)
{
    uint64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            return NULL;
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&it, 1, (long)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        if (n == 0 || !(it.revents & ZMQ_POLLIN))
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        assert_true(zmq_msg_recv(&m, s, ZMQ_DONTWAIT) >= 0);
        int more = zmq_msg_more(&m);
        Muster__Envelope *env = muster__envelope__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        zmq_msg_close(&m);
        assert_false(more);   /* a reply is exactly one frame */
        assert_non_null(env); /* and decodes */
        bool pushed = env->body_case == MUSTER__ENVELOPE__BODY_POW_CHALLENGE ||
                      env->body_case == MUSTER__ENVELOPE__BODY_POW_SPOTS ||
                      env->body_case == MUSTER__ENVELOPE__BODY_VERDICT;
        if (env->request_id == 0 && pushed && !g.keep_challenges) {
            /* The broker verifies every new worker unasked: not a reply. */
            g.challenges_seen++;
            muster__envelope__free_unpacked(env, NULL);
            continue;
        }
        return env;
    }
}

static void env_free(Muster__Envelope *env)
{
    if (env)
        muster__envelope__free_unpacked(env, NULL);
}

/* Wait for an error reply with STATUS (and REQUEST_ID echoed) and count it.
 * Returns the reply for further checks. */
static Muster__Envelope *expect_error(void *s, Muster__Status status, uint64_t request_id)
{
    Muster__Envelope *r = recv_env(s, REPLY_TIMEOUT_MS);
    if (!r)
        fail_msg("no reply within %d ms (expected %s)", REPLY_TIMEOUT_MS, wire_status_name(status));
    if (r->status != status)
        fail_msg("status %s, expected %s (reason \"%s\")", wire_status_name(r->status),
                 wire_status_name(status), r->reason ? r->reason : "");
    g.errors_sent++;
    assert_int_equal(r->version, WIRE_PROTOCOL_VERSION);
    assert_int_equal(r->request_id, request_id);
    assert_non_null(r->reason);
    assert_true(strlen(r->reason) > 0);
    assert_int_equal(r->body_case, MUSTER__ENVELOPE__BODY__NOT_SET);
    return r;
}

static void expect_no_reply(void *s, unsigned ms)
{
    Muster__Envelope *r = recv_env(s, ms);
    if (r) {
        Muster__Status st = r->status;
        env_free(r);
        fail_msg("unexpected reply (status %s)", wire_status_name(st));
    }
}

/* Send ENV (its request id set here) and wait for an OK reply with body WANT. */
static Muster__Envelope *call_ok(void *s, Muster__Envelope *env, Muster__Envelope__BodyCase want)
{
    env->request_id = ++g.next_rid;
    send_env(s, env);
    Muster__Envelope *r = recv_env(s, REPLY_TIMEOUT_MS);
    if (!r)
        fail_msg("no reply within %d ms", REPLY_TIMEOUT_MS);
    if (r->status != MUSTER__STATUS__STATUS_OK)
        fail_msg("status %s (reason \"%s\")", wire_status_name(r->status),
                 r->reason ? r->reason : "");
    assert_int_equal(r->request_id, env->request_id);
    assert_int_equal(r->body_case, want);
    return r;
}

/* --- messages ----------------------------------------------------------------------- */

static void status_request(Muster__Envelope *env, Muster__StatusRequest *q)
{
    muster__status_request__init(q);
    wire_envelope_init(env, 0);
    env->body_case = MUSTER__ENVELOPE__BODY_BROKER_STATUS;
    env->broker_status = q;
}

/* The broker's status, over a fresh client socket. */
static Muster__Envelope *get_status(void)
{
    void *c = open_dealer(g.client_ep, NULL, 0);
    Muster__StatusRequest q;
    Muster__Envelope env;
    status_request(&env, &q);
    Muster__Envelope *r = call_ok(c, &env, MUSTER__ENVELOPE__BODY_BROKER_STATUS_REPLY);
    close_dealer(c);
    return r;
}

typedef struct reg_msg {
    Muster__Envelope env;
    Muster__Register reg;
    Muster__Device dev[20];
    Muster__Device *devp[20];
} reg_msg;

static void reg_init(reg_msg *m, const char *id, const char *model, size_t ndev,
                     const char *country)
{
    memset(m, 0, sizeof(*m));
    muster__register__init(&m->reg);
    m->reg.worker_id = (char *)id;
    m->reg.hostname = (char *)"badinput-host";
    m->reg.host_fingerprint = (char *)"00112233aabbccdd";
    for (size_t i = 0; i < ndev && i < 20; i++) {
        muster__device__init(&m->dev[i]);
        m->dev[i].model = (char *)model;
        m->dev[i].driver_version = (char *)"simulated";
        m->devp[i] = &m->dev[i];
    }
    m->reg.n_devices = ndev;
    m->reg.devices = m->devp;
    m->reg.cpu_cores = 8;
    m->reg.memory_mib = 32768;
    m->reg.country = (char *)country;
    m->reg.region = (char *)"";
    m->reg.bandwidth_down_mbps = 1000;
    m->reg.bandwidth_up_mbps = 800;
    m->reg.agent_version = (char *)"test";
    m->reg.simulated = true;
    wire_envelope_init(&m->env, 0);
    m->env.body_case = MUSTER__ENVELOPE__BODY_REGISTER;
    m->env.register_ = &m->reg;
}

static void heartbeat_msg(Muster__Envelope *env, Muster__Heartbeat *hb, uint64_t seq)
{
    muster__heartbeat__init(hb);
    hb->seq = seq;
    wire_envelope_init(env, 0);
    env->body_case = MUSTER__ENVELOPE__BODY_HEARTBEAT;
    env->heartbeat = hb;
}

/* Send ENV with a fresh request id and expect STATUS for it. */
static Muster__Envelope *send_expect(void *s, Muster__Envelope *env, Muster__Status status)
{
    env->request_id = ++g.next_rid;
    send_env(s, env);
    return expect_error(s, status, env->request_id);
}

/* As send_expect, for a request where several error statuses are fair. */
static Muster__Envelope *send_expect_any_error(void *s, Muster__Envelope *env)
{
    env->request_id = ++g.next_rid;
    send_env(s, env);
    Muster__Envelope *r = recv_env(s, REPLY_TIMEOUT_MS);
    if (!r)
        fail_msg("no reply within %d ms (expected an error)", REPLY_TIMEOUT_MS);
    assert_int_not_equal(r->status, MUSTER__STATUS__STATUS_OK);
    assert_int_equal(r->request_id, env->request_id);
    assert_true(r->reason && *r->reason);
    g.errors_sent++;
    return r;
}

/* --- group setup and teardown ---------------------------------------------------------- */

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    g.next_rid = 1000;
    snprintf(g.logpath, sizeof(g.logpath), "/tmp/muster-badinput-XXXXXX");
    int fd = mkstemp(g.logpath);
    if (fd < 0) {
        fprintf(stderr, "mkstemp: %s\n", strerror(errno));
        return -1;
    }
    close(fd);
    snprintf(g.statedir, sizeof(g.statedir), "/tmp/muster-badinput-state-XXXXXX");
    if (!mkdtemp(g.statedir)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    if (!(g.zctx = zmq_ctx_new()))
        return -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        int ports[3] = {free_port(), free_port(), free_port()};
        if (ports[0] < 0 || ports[1] < 0 || ports[2] < 0 || ports[0] == ports[1] ||
            ports[1] == ports[2] || ports[0] == ports[2])
            continue;
        g.pid = spawn_musterd(ports);
        if (g.pid < 0) {
            fprintf(stderr, "fork: %s\n", strerror(errno));
            g.pid = 0;
            return -1;
        }
        /* Poll the status until it answers, musterd dies, or 10 s pass. */
        void *c = zmq_socket(g.zctx, ZMQ_DEALER);
        int zero = 0;
        zmq_setsockopt(c, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_connect(c, g.client_ep);
        bool up = false;
        uint64_t deadline = mono_ms() + 10000;
        while (!up && mono_ms() < deadline && !reap(0)) {
            Muster__StatusRequest q;
            Muster__Envelope env;
            status_request(&env, &q);
            env.request_id = ++g.next_rid;
            uint8_t *buf;
            size_t len;
            if (wire_encode(&env, &buf, &len) == 0) {
                zmq_send(c, buf, len, ZMQ_DONTWAIT);
                mu_free(buf);
            }
            zmq_pollitem_t it = {c, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&it, 1, 200) > 0) {
                zmq_msg_t m;
                zmq_msg_init(&m);
                if (zmq_msg_recv(&m, c, ZMQ_DONTWAIT) >= 0) {
                    Muster__Envelope *r =
                        muster__envelope__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
                    up = r && r->status == MUSTER__STATUS__STATUS_OK &&
                         r->body_case == MUSTER__ENVELOPE__BODY_BROKER_STATUS_REPLY;
                    env_free(r);
                }
                zmq_msg_close(&m);
            }
        }
        zmq_close(c);
        if (up) {
            /* Subscribe now, long before the first event, so that the
             * slow-joiner window of PUB/SUB cannot eat it. */
            g.events = zmq_socket(g.zctx, ZMQ_SUB);
            zmq_setsockopt(g.events, ZMQ_LINGER, &zero, sizeof(zero));
            zmq_setsockopt(g.events, ZMQ_SUBSCRIBE, "worker.", 7);
            zmq_connect(g.events, g.event_ep);
            g.socks[MAX_SOCKS - 1] = g.events;
            fprintf(stderr, "# musterd pid %d: agents %s, clients %s\n", (int)g.pid, g.agent_ep,
                    g.client_ep);
            return 0;
        }
        if (g.pid == 0 && log_contains("cannot bind")) {
            fprintf(stderr, "# musterd could not bind (attempt %d), retrying\n", attempt);
            continue;
        }
        fprintf(stderr, "musterd did not come up\n");
        kill_musterd();
        print_log();
        return -1;
    }
    fprintf(stderr, "musterd could not bind free ports in 5 attempts\n");
    print_log();
    return -1;
}

static int group_teardown(void **state)
{
    kill_musterd();
    for (int i = 0; i < MAX_SOCKS; i++) {
        if (g.socks[i]) {
            zmq_close(g.socks[i]);
            g.socks[i] = NULL;
        }
    }
    if (g.zctx)
        zmq_ctx_term(g.zctx);
    g.zctx = NULL;
    if (g.tests_passed != g.n_tests)
        print_log();
    unlink(g.logpath);
    /* the store, its WAL and lock: the only files musterd makes there */
    const char *files[] = {"musterd.db", "musterd.db-wal", "musterd.db-shm", "lock"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", g.statedir, files[i]);
        unlink(path);
    }
    rmdir(g.statedir);
    return 0;
}

/* --- the tests ------------------------------------------------------------------------------ */

static void test_garbage_bytes(void **state)
{
    void *c = open_dealer(g.client_ep, NULL, 0);
    /* A run of 0xff: a tag varint that never ends. */
    static const uint8_t ff[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    send_raw(c, ff, sizeof(ff));
    env_free(expect_error(c, MUSTER__STATUS__STATUS_BAD_REQUEST, 0));
    /* Field 4 (reason), length-delimited, claims 16 bytes but has 1. */
    static const uint8_t truncated[] = {0x22, 0x10, 'a'};
    send_raw(c, truncated, sizeof(truncated));
    env_free(expect_error(c, MUSTER__STATUS__STATUS_BAD_REQUEST, 0));
    /* Plain text. */
    static const char text[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    send_raw(c, text, sizeof(text) - 1);
    Muster__Envelope *r = recv_env(c, REPLY_TIMEOUT_MS);
    assert_non_null(r);
    assert_int_not_equal(r->status, MUSTER__STATUS__STATUS_OK);
    assert_true(r->reason && *r->reason);
    g.errors_sent++;
    env_free(r);
    /* The same on the agent endpoint. */
    void *a = open_dealer(g.agent_ep, NULL, 0);
    send_raw(a, ff, sizeof(ff));
    env_free(expect_error(a, MUSTER__STATUS__STATUS_BAD_REQUEST, 0));
    /* An empty frame decodes as version 0: an error, never a crash. */
    send_raw(c, "", 0);
    r = recv_env(c, REPLY_TIMEOUT_MS);
    assert_non_null(r);
    assert_true(r->status == MUSTER__STATUS__STATUS_VERSION_MISMATCH ||
                r->status == MUSTER__STATUS__STATUS_BAD_REQUEST);
    g.errors_sent++;
    env_free(r);
    close_dealer(a);
    close_dealer(c);
    g.tests_passed++;
}

static void test_version_mismatch(void **state)
{
    void *c = open_dealer(g.client_ep, NULL, 0);
    Muster__StatusRequest q;
    Muster__Envelope env;
    status_request(&env, &q);
    env.version = 99;
    Muster__Envelope *r = send_expect(c, &env, MUSTER__STATUS__STATUS_VERSION_MISMATCH);
    assert_non_null(strstr(r->reason, "99"));
    env_free(r);
    /* Version 0 (field absent) too. */
    env.version = 0;
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_VERSION_MISMATCH));
    close_dealer(c);
    g.tests_passed++;
}

static void test_no_body(void **state)
{
    void *c = open_dealer(g.client_ep, NULL, 0);
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_UNKNOWN_MESSAGE));
    void *a = open_dealer(g.agent_ep, NULL, 0);
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_UNKNOWN_MESSAGE));
    close_dealer(a);
    close_dealer(c);
    g.tests_passed++;
}

static void test_unknown_body_field(void **state)
{
    /* Field 999, wire type 2 (length-delimited): tag (999 << 3) | 2 = 7994 =
     * 0x1f3a, as a varint 0xba 0x3e (low 7 bits 0x3a with the continuation
     * bit, then 0x3e). Check the arithmetic rather than trust it. */
    uint32_t tag = (999u << 3) | 2u;
    assert_int_equal(tag, 7994);
    uint8_t varint[2] = {(uint8_t)((tag & 0x7f) | 0x80), (uint8_t)(tag >> 7)};
    assert_true(tag >> 14 == 0);
    static const uint8_t msg[] = {0x08, 0x01, 0x10, 0x07, 0xba, 0x3e, 0x00};
    assert_memory_equal(varint, msg + 4, 2);
    /* And protobuf-c reads it as a version-1 envelope without a body. */
    Muster__Envelope *local = muster__envelope__unpack(NULL, sizeof(msg), msg);
    assert_non_null(local);
    assert_int_equal(local->version, 1);
    assert_int_equal(local->request_id, 7);
    assert_int_equal(local->body_case, MUSTER__ENVELOPE__BODY__NOT_SET);
    env_free(local);

    void *c = open_dealer(g.client_ep, NULL, 0);
    send_raw(c, msg, sizeof(msg));
    env_free(expect_error(c, MUSTER__STATUS__STATUS_UNKNOWN_MESSAGE, 7));
    /* With some content in the unknown field, and on the agent endpoint. */
    static const uint8_t msg2[] = {0x08, 0x01, 0x10, 0x09, 0xba, 0x3e, 0x03, 0x0a, 0x01, 'x'};
    void *a = open_dealer(g.agent_ep, NULL, 0);
    send_raw(a, msg2, sizeof(msg2));
    env_free(expect_error(a, MUSTER__STATUS__STATUS_UNKNOWN_MESSAGE, 9));
    close_dealer(a);
    close_dealer(c);
    g.tests_passed++;
}

static void test_too_large(void **state)
{
    /* A valid list_workers request of exactly 8192 bytes: the cap applies
     * before decoding. */
    char *big = malloc(8192);
    assert_non_null(big);
    Muster__ListWorkersRequest q = MUSTER__LIST_WORKERS_REQUEST__INIT;
    Muster__Envelope env;
    wire_envelope_init(&env, 77);
    env.body_case = MUSTER__ENVELOPE__BODY_LIST_WORKERS;
    env.list_workers = &q;
    size_t n;
    for (n = 8150; n < 8192; n++) {
        memset(big, 'x', n);
        big[n] = '\0';
        q.state = big;
        if (muster__envelope__get_packed_size(&env) == 8192)
            break;
    }
    assert_int_equal(muster__envelope__get_packed_size(&env), 8192);
    void *c = open_dealer(g.client_ep, NULL, 0);
    send_env(c, &env);
    free(big);
    Muster__Envelope *r = expect_error(c, MUSTER__STATUS__STATUS_TOO_LARGE, 0);
    assert_non_null(strstr(r->reason, "8192"));
    env_free(r);
    /* Raw bytes just over the cap, on the agent endpoint. */
    uint8_t *raw = calloc(1, MAX_MESSAGE_BYTES + 1);
    assert_non_null(raw);
    void *a = open_dealer(g.agent_ep, NULL, 0);
    send_raw(a, raw, MAX_MESSAGE_BYTES + 1);
    free(raw);
    env_free(expect_error(a, MUSTER__STATUS__STATUS_TOO_LARGE, 0));
    /* Exactly at the cap is fine as far as size goes: zero bytes decode as
     * version 0, so the answer is a version mismatch, not "too large". */
    raw = calloc(1, MAX_MESSAGE_BYTES);
    assert_non_null(raw);
    send_raw(a, raw, MAX_MESSAGE_BYTES);
    free(raw);
    r = recv_env(a, REPLY_TIMEOUT_MS);
    assert_non_null(r);
    assert_int_not_equal(r->status, MUSTER__STATUS__STATUS_TOO_LARGE);
    assert_int_not_equal(r->status, MUSTER__STATUS__STATUS_OK);
    g.errors_sent++;
    env_free(r);
    close_dealer(a);
    close_dealer(c);
    g.tests_passed++;
}

static void test_wrong_endpoint(void **state)
{
    /* A client message on the agent endpoint. */
    void *a = open_dealer(g.agent_ep, NULL, 0);
    Muster__ListWorkersRequest q = MUSTER__LIST_WORKERS_REQUEST__INIT;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_LIST_WORKERS;
    env.list_workers = &q;
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_WRONG_ENDPOINT));
    Muster__StatusRequest sq;
    status_request(&env, &sq);
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_WRONG_ENDPOINT));
    /* An agent message (a perfectly valid register) on the client endpoint. */
    void *c = open_dealer(g.client_ep, NULL, 0);
    reg_msg m;
    reg_init(&m, GOOD_ID, "RTX 4090", 1, "DE");
    env_free(send_expect(c, &m.env, MUSTER__STATUS__STATUS_WRONG_ENDPOINT));
    Muster__Heartbeat hb;
    heartbeat_msg(&env, &hb, 1);
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_WRONG_ENDPOINT));
    close_dealer(c);
    close_dealer(a);
    /* ... and it did not register anything. */
    Muster__Envelope *st = get_status();
    assert_int_equal(st->broker_status_reply->workers_total, 0);
    env_free(st);
    g.tests_passed++;
}

static void test_unknown_worker(void **state)
{
    void *a = open_dealer(g.agent_ep, NULL, 0);
    Muster__Heartbeat hb;
    Muster__Envelope env;
    heartbeat_msg(&env, &hb, 1);
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_UNKNOWN_WORKER));
    /* A goodbye from a stranger too (and the broker must not crash on it). */
    Muster__Goodbye gb = MUSTER__GOODBYE__INIT;
    gb.reason = (char *)"never said hello";
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_GOODBYE;
    env.goodbye = &gb;
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_UNKNOWN_WORKER));
    close_dealer(a);
    g.tests_passed++;
}

static void test_register_refused(void **state)
{
    void *a = open_dealer(g.agent_ep, NULL, 0);
    reg_msg m;
    Muster__Envelope *r;

    reg_init(&m, GOOD_ID, "Voodoo5 6000", 2, "DE");
    r = send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST);
    if (!strstr(r->reason, "Voodoo5 6000"))
        fail_msg("reason does not name the model: \"%s\"", r->reason);
    env_free(r);

    reg_init(&m, GOOD_ID, "RTX 4090", 1, "ZZ");
    r = send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST);
    if (!strstr(r->reason, "ZZ") || !strstr(r->reason, "country"))
        fail_msg("reason does not name the country: \"%s\"", r->reason);
    env_free(r);

    reg_init(&m, GOOD_ID, "RTX 4090", 1, "Germany");
    env_free(send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST));

    reg_init(&m, "not-a-uuid", "RTX 4090", 1, "DE");
    r = send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST);
    if (!strstr(r->reason, "UUID"))
        fail_msg("reason does not say what is wrong with the id: \"%s\"", r->reason);
    env_free(r);

    reg_init(&m, "", "RTX 4090", 1, "DE");
    env_free(send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    reg_init(&m, "00000000-0000-0000-0000-000000000000", "RTX 4090", 1, "DE");
    env_free(send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST));

    /* Region that contradicts the country, and an unknown region. */
    reg_init(&m, GOOD_ID, "RTX 4090", 1, "DE");
    m.reg.region = (char *)"asia-east";
    env_free(send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    m.reg.region = (char *)"atlantis";
    env_free(send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST));

    /* Empty hostname, and one that would forge a log line and colour the
     * operator's terminal. */
    reg_init(&m, GOOD_ID, "RTX 4090", 1, "DE");
    m.reg.hostname = (char *)"";
    env_free(send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    m.reg.hostname = (char *)"evil\nts=2026-01-01T00:00:00.000Z level=error event=forged\x1b[31m";
    env_free(send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST));

    /* Too many devices, PCI ids out of range, mixed models. */
    reg_init(&m, GOOD_ID, "RTX 4090", 20, "DE");
    env_free(send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    reg_init(&m, GOOD_ID, "RTX 4090", 1, "DE");
    m.dev[0].pci_vendor_id = 0x10000;
    env_free(send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    reg_init(&m, GOOD_ID, "RTX 4090", 2, "DE");
    m.dev[1].model = (char *)"H100";
    env_free(send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST));

    /* None of it registered a worker, and this socket is still a stranger. */
    Muster__Heartbeat hb;
    Muster__Envelope env;
    heartbeat_msg(&env, &hb, 1);
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_UNKNOWN_WORKER));
    close_dealer(a);
    Muster__Envelope *st = get_status();
    assert_int_equal(st->broker_status_reply->workers_total, 0);
    env_free(st);
    g.tests_passed++;
}

static void test_reply_bodies_refused(void **state)
{
    /* Bodies the broker sends but never accepts. */
    void *a = open_dealer(g.agent_ep, NULL, 0);
    Muster__RegisterReply rr = MUSTER__REGISTER_REPLY__INIT;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_REGISTER_REPLY;
    env.register_reply = &rr;
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    close_dealer(a);

    void *c = open_dealer(g.client_ep, NULL, 0);
    Muster__StatusReply sr = MUSTER__STATUS_REPLY__INIT;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_BROKER_STATUS_REPLY;
    env.broker_status_reply = &sr;
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    Muster__Event ev = MUSTER__EVENT__INIT;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_EVENT;
    env.event = &ev;
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    close_dealer(c);
    g.tests_passed++;
}

static void test_bad_client_requests(void **state)
{
    void *c = open_dealer(g.client_ep, NULL, 0);
    Muster__ListWorkersRequest q = MUSTER__LIST_WORKERS_REQUEST__INIT;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_LIST_WORKERS;
    env.list_workers = &q;
    q.state = (char *)"sleeping";
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    q.state = (char *)"";
    q.region = (char *)"atlantis";
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    q.region = (char *)"";
    q.gpu_model = (char *)"Voodoo5 6000";
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_BAD_REQUEST));

    Muster__GetWorkerRequest gq = MUSTER__GET_WORKER_REQUEST__INIT;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_GET_WORKER;
    env.get_worker = &gq;
    gq.id = (char *)"ab";
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    gq.id = (char *)"";
    Muster__Envelope *r = send_expect_any_error(c, &env);
    env_free(r);
    gq.id = (char *)"0000ffff";
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_NOT_FOUND));
    close_dealer(c);
    g.tests_passed++;
}

/* Task requests a client gets wrong, and task reports an agent makes up:
 * clear errors or nothing, the broker unharmed. */
static void test_bad_task_messages(void **state)
{
    void *c = open_dealer(g.client_ep, NULL, 0);
    Muster__Envelope env;
    char *argv[] = {(char *)"true"};
    Muster__TaskSpec ts = MUSTER__TASK_SPEC__INIT;
    ts.argv = argv;
    ts.n_argv = 1;
    Muster__TaskSpec *tsp[] = {&ts};
    Muster__SubmitTasksRequest sq = MUSTER__SUBMIT_TASKS_REQUEST__INIT;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_SUBMIT_TASKS;
    env.submit_tasks = &sq;
    sq.cluster_id = (char *)"0000ffff"; /* no such cluster */
    sq.tasks = tsp;
    sq.n_tasks = 1;
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_NOT_FOUND));
    sq.cluster_id = (char *)"ab"; /* too short a prefix */
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    Muster__GetTaskRequest gq = MUSTER__GET_TASK_REQUEST__INIT;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_GET_TASK;
    env.get_task = &gq;
    gq.cluster_id = (char *)"0000ffff";
    gq.number = 7;
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_NOT_FOUND));
    Muster__TaskLogsRequest lq = MUSTER__TASK_LOGS_REQUEST__INIT;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_TASK_LOGS;
    env.task_logs = &lq;
    lq.cluster_id = (char *)"";
    env_free(send_expect_any_error(c, &env));
    close_dealer(c);

    /* An agent that reports exits, output and running attempts of tasks
     * that do not exist: nothing changes, exits are acknowledged (so they
     * are not sent forever), the broker goes on serving. */
    void *a = open_dealer(g.agent_ep, NULL, 0);
    reg_msg m;
    reg_init(&m, "6f1c0e5a-0000-4000-8000-00000000cccc", "RTX 4090", 1, "DE");
    env_free(call_ok(a, &m.env, MUSTER__ENVELOPE__BODY_REGISTER_REPLY));
    Muster__TaskExit te = MUSTER__TASK_EXIT__INIT;
    te.cluster_id = (char *)"not-a-cluster-id";
    te.number = 4000000000u;
    te.attempt = 3;
    te.exit_code = 0;
    wire_envelope_init(&env, ++g.next_rid);
    env.body_case = MUSTER__ENVELOPE__BODY_TASK_EXIT;
    env.task_exit = &te;
    send_env(a, &env);
    Muster__Envelope *ack = NULL;
    for (int i = 0; i < 20 && !ack; i++) {
        Muster__Envelope *r = recv_env(a, REPLY_TIMEOUT_MS);
        assert_non_null(r);
        if (r->body_case == MUSTER__ENVELOPE__BODY_TASK_EXIT_ACK)
            ack = r;
        else
            env_free(r);
    }
    assert_non_null(ack);
    assert_string_equal(ack->task_exit_ack->cluster_id, "not-a-cluster-id");
    assert_int_equal(ack->task_exit_ack->number, 4000000000u);
    env_free(ack);
    uint8_t junk[1000];
    memset(junk, 'x', sizeof(junk));
    Muster__TaskOutput to = MUSTER__TASK_OUTPUT__INIT;
    to.cluster_id = (char *)"6f1c0e5a-0000-4000-8000-00000000cccc";
    to.offset = UINT64_MAX - 10;
    to.data.data = junk;
    to.data.len = sizeof(junk);
    to.dropped = UINT64_MAX;
    wire_envelope_init(&env, ++g.next_rid);
    env.body_case = MUSTER__ENVELOPE__BODY_TASK_OUTPUT;
    env.task_output = &to;
    send_env(a, &env);
    enum { REFS = 500 };
    Muster__TaskRef refs[REFS], *refp[REFS];
    for (int i = 0; i < REFS; i++) {
        muster__task_ref__init(&refs[i]);
        refs[i].cluster_id = (char *)(i % 2 ? "" : "zzzz");
        refs[i].number = (uint32_t)i;
        refs[i].attempt = (uint32_t)i;
        refp[i] = &refs[i];
    }
    Muster__TaskReport tr = MUSTER__TASK_REPORT__INIT;
    tr.running = refp;
    tr.n_running = REFS;
    wire_envelope_init(&env, ++g.next_rid);
    env.body_case = MUSTER__ENVELOPE__BODY_TASK_REPORT;
    env.task_report = &tr;
    send_env(a, &env);
    /* Task messages before registering are refused like any other. */
    void *stranger = open_dealer(g.agent_ep, NULL, 0);
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_TASK_EXIT;
    env.task_exit = &te;
    env_free(send_expect(stranger, &env, MUSTER__STATUS__STATUS_UNKNOWN_WORKER));
    close_dealer(stranger);
    Muster__Envelope *st = get_status();
    assert_true(st->broker_status_reply->workers_online >= 1);
    env_free(st);
    /* Leave as it came: a goodbye, so later tests see no worker. */
    Muster__Goodbye gb = MUSTER__GOODBYE__INIT;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_GOODBYE;
    env.goodbye = &gb;
    send_env(a, &env);
    close_dealer(a);
    g.tests_passed++;
}

static void test_long_routing_id(void **state)
{
    /* libzmq allows routing ids up to 255 bytes; the broker keys peers by at
     * most 32. A longer one must be refused, not truncated or crashed on. */
    char id[100];
    memset(id, 'r', sizeof(id));
    id[0] = 'L'; /* ids starting with a zero byte are reserved */
    void *a = open_dealer(g.agent_ep, id, sizeof(id));
    reg_msg m;
    reg_init(&m, GOOD_ID, "RTX 4090", 1, "DE");
    Muster__Envelope *r = send_expect(a, &m.env, MUSTER__STATUS__STATUS_BAD_REQUEST);
    if (!strstr(r->reason, "routing id"))
        fail_msg("reason: \"%s\"", r->reason);
    env_free(r);
    Muster__Heartbeat hb;
    Muster__Envelope env;
    heartbeat_msg(&env, &hb, 1);
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_UNKNOWN_WORKER));
    close_dealer(a);
    g.tests_passed++;
}

static void test_multipart_dropped(void **state)
{
    Muster__Envelope *st = get_status();
    uint64_t dropped_before = st->broker_status_reply->messages_dropped;
    env_free(st);

    void *c = open_dealer(g.client_ep, NULL, 0);
    /* Three frames, the first a valid status request: still bad framing. */
    Muster__StatusRequest q;
    Muster__Envelope env;
    status_request(&env, &q);
    env.request_id = ++g.next_rid;
    uint8_t *buf;
    size_t len;
    assert_int_equal(wire_encode(&env, &buf, &len), 0);
    assert_int_equal(zmq_send(c, buf, len, ZMQ_SNDMORE), (int)len);
    assert_int_equal(zmq_send(c, "b", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(c, "c", 1, 0), 1);
    mu_free(buf);
    g.dropped_sent++;
    expect_no_reply(c, NO_REPLY_MS);
    /* The agent endpoint drops it too. */
    void *a = open_dealer(g.agent_ep, NULL, 0);
    assert_int_equal(zmq_send(a, "a", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(a, "b", 1, 0), 1);
    g.dropped_sent++;
    expect_no_reply(a, NO_REPLY_MS);
    close_dealer(a);
    /* The same socket is still served afterwards. */
    status_request(&env, &q);
    env_free(call_ok(c, &env, MUSTER__ENVELOPE__BODY_BROKER_STATUS_REPLY));
    close_dealer(c);

    st = get_status();
    uint64_t dropped = st->broker_status_reply->messages_dropped;
    env_free(st);
    if (dropped < 1 || dropped - dropped_before != 2)
        fail_msg("messages_dropped %llu (was %llu), expected 2 more", (unsigned long long)dropped,
                 (unsigned long long)dropped_before);
    g.tests_passed++;
}

static void test_over_hard_cap(void **state)
{
    /* Over 16x max_message_bytes libzmq itself drops the connection: no
     * reply, and the broker carries on. */
    size_t n = (size_t)MAX_MESSAGE_BYTES * 16 + 1024;
    uint8_t *raw = calloc(1, n);
    assert_non_null(raw);
    void *c = open_dealer(g.client_ep, NULL, 0);
    send_raw(c, raw, n);
    free(raw);
    expect_no_reply(c, NO_REPLY_MS);
    close_dealer(c);
    assert_true(!reap(0));
    Muster__Envelope *st = get_status();
    env_free(st);
    g.tests_passed++;
}

static void test_still_serving(void **state)
{
    Muster__Envelope *st = get_status();
    const Muster__StatusReply *s = st->broker_status_reply;
    fprintf(stderr, "# received %llu, rejected %llu, dropped %llu; error replies seen %u\n",
            (unsigned long long)s->messages_received, (unsigned long long)s->messages_rejected,
            (unsigned long long)s->messages_dropped, g.errors_sent);
    assert_int_equal(s->protocol_version, WIRE_PROTOCOL_VERSION);
    assert_string_equal(s->client_endpoint, g.client_ep);
    assert_string_equal(s->agent_endpoint, g.agent_ep);
    if (s->messages_rejected < g.errors_sent)
        fail_msg("messages_rejected %llu < %u error replies received",
                 (unsigned long long)s->messages_rejected, g.errors_sent);
    assert_true(s->messages_dropped >= g.dropped_sent);
    assert_true(s->messages_received >= s->messages_rejected + s->messages_dropped);
    assert_int_equal(s->workers_total, 0);
    env_free(st);
    g.tests_passed++;
}

static void test_valid_register_and_list(void **state)
{
    void *a = open_dealer(g.agent_ep, NULL, 0);
    reg_msg m;
    reg_init(&m, GOOD_ID, "H100", 4, "de"); /* alias and lower-case country */
    Muster__Envelope *r = call_ok(a, &m.env, MUSTER__ENVELOPE__BODY_REGISTER_REPLY);
    const Muster__RegisterReply *rr = r->register_reply;
    assert_string_equal(rr->worker_id, GOOD_ID);
    assert_string_equal(rr->gpu_model, "H100 SXM");
    assert_string_equal(rr->region, "europe");
    assert_string_equal(rr->tier, "high"); /* 1000/800 */
    assert_true(rr->heartbeat_interval_ms >= 10);
    assert_true(rr->liveness >= 2);
    env_free(r);

    /* A heartbeat is echoed with its seq. */
    Muster__Heartbeat hb;
    Muster__Envelope env;
    heartbeat_msg(&env, &hb, 42);
    r = call_ok(a, &env, MUSTER__ENVELOPE__BODY_HEARTBEAT);
    assert_int_equal(r->heartbeat->seq, 42);
    env_free(r);

    void *c = open_dealer(g.client_ep, NULL, 0);
    Muster__ListWorkersRequest q = MUSTER__LIST_WORKERS_REQUEST__INIT;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_LIST_WORKERS;
    env.list_workers = &q;
    r = call_ok(c, &env, MUSTER__ENVELOPE__BODY_LIST_WORKERS_REPLY);
    assert_int_equal(r->list_workers_reply->n_workers, 1);
    const Muster__WorkerInfo *w = r->list_workers_reply->workers[0];
    assert_string_equal(w->id, GOOD_ID);
    assert_string_equal(w->hostname, "badinput-host");
    assert_string_equal(w->gpu_model, "H100 SXM");
    assert_int_equal(w->gpu_count, 4);
    assert_string_equal(w->country, "DE");
    assert_string_equal(w->region, "europe");
    assert_int_equal(w->state, MUSTER__WORKER_STATE__WORKER_STATE_ONLINE);
    assert_true(w->simulated);
    env_free(r);

    /* Filters. */
    q.gpu_model = (char *)"RTX 4090";
    r = call_ok(c, &env, MUSTER__ENVELOPE__BODY_LIST_WORKERS_REPLY);
    assert_int_equal(r->list_workers_reply->n_workers, 0);
    env_free(r);
    q.gpu_model = (char *)"H100";
    q.state = (char *)"online";
    q.region = (char *)"europe";
    r = call_ok(c, &env, MUSTER__ENVELOPE__BODY_LIST_WORKERS_REPLY);
    assert_int_equal(r->list_workers_reply->n_workers, 1);
    env_free(r);

    /* get_worker by prefix. */
    Muster__GetWorkerRequest gq = MUSTER__GET_WORKER_REQUEST__INIT;
    gq.id = (char *)"6F1C0E"; /* case does not matter */
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_GET_WORKER;
    env.get_worker = &gq;
    r = call_ok(c, &env, MUSTER__ENVELOPE__BODY_GET_WORKER_REPLY);
    assert_string_equal(r->get_worker_reply->worker->id, GOOD_ID);
    env_free(r);

    Muster__Envelope *st = get_status();
    assert_int_equal(st->broker_status_reply->workers_total, 1);
    assert_int_equal(st->broker_status_reply->workers_online, 1);
    assert_int_equal(st->broker_status_reply->gpus_online, 4);
    env_free(st);

    /* Goodbye: no reply, offline at once; the next heartbeat from that
     * socket is told to register again. */
    Muster__Goodbye gb = MUSTER__GOODBYE__INIT;
    gb.reason = (char *)"test done";
    wire_envelope_init(&env, ++g.next_rid);
    env.body_case = MUSTER__ENVELOPE__BODY_GOODBYE;
    env.goodbye = &gb;
    send_env(a, &env);
    expect_no_reply(a, NO_REPLY_MS);
    heartbeat_msg(&env, &hb, 43);
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_UNKNOWN_WORKER));
    st = get_status();
    assert_int_equal(st->broker_status_reply->workers_total, 1);
    assert_int_equal(st->broker_status_reply->workers_offline, 1);
    assert_int_equal(st->broker_status_reply->gpus_online, 0);
    env_free(st);
    close_dealer(c);
    close_dealer(a);
    g.tests_passed++;
}

static void test_reregister_takes_over(void **state)
{
    /* The same worker id registering from a new connection takes it over:
     * the old connection is now a stranger. */
    void *a1 = open_dealer(g.agent_ep, NULL, 0);
    void *a2 = open_dealer(g.agent_ep, NULL, 0);
    reg_msg m;
    reg_init(&m, GOOD_ID, "RTX 4090", 2, "JP");
    Muster__Envelope *r = call_ok(a1, &m.env, MUSTER__ENVELOPE__BODY_REGISTER_REPLY);
    assert_string_equal(r->register_reply->region, "asia-east");
    env_free(r);
    env_free(call_ok(a2, &m.env, MUSTER__ENVELOPE__BODY_REGISTER_REPLY));
    Muster__Heartbeat hb;
    Muster__Envelope env;
    heartbeat_msg(&env, &hb, 1);
    env_free(call_ok(a2, &env, MUSTER__ENVELOPE__BODY_HEARTBEAT));
    env_free(send_expect(a1, &env, MUSTER__STATUS__STATUS_UNKNOWN_WORKER));
    Muster__Envelope *st = get_status();
    assert_int_equal(st->broker_status_reply->workers_total, 1);
    assert_int_equal(st->broker_status_reply->workers_online, 1);
    assert_int_equal(st->broker_status_reply->gpus_online, 2);
    env_free(st);
    close_dealer(a1);
    close_dealer(a2);
    g.tests_passed++;
}

static void test_ambiguous_prefix(void **state)
{
    /* A second worker whose id shares its first 7 characters with GOOD_ID. */
    void *a = open_dealer(g.agent_ep, NULL, 0);
    reg_msg m;
    reg_init(&m, "6f1c0e5a-0000-4000-8000-000000000001", "A100", 1, "FR");
    env_free(call_ok(a, &m.env, MUSTER__ENVELOPE__BODY_REGISTER_REPLY));
    void *c = open_dealer(g.client_ep, NULL, 0);
    Muster__GetWorkerRequest gq = MUSTER__GET_WORKER_REQUEST__INIT;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_GET_WORKER;
    env.get_worker = &gq;
    gq.id = (char *)"6f1c0e5";
    env_free(send_expect(c, &env, MUSTER__STATUS__STATUS_CONFLICT));
    gq.id = (char *)"6f1c0e5a";
    Muster__Envelope *r = call_ok(c, &env, MUSTER__ENVELOPE__BODY_GET_WORKER_REPLY);
    assert_string_equal(r->get_worker_reply->worker->gpu_model, "A100 40GB");
    assert_string_equal(r->get_worker_reply->worker->region, "europe");
    env_free(r);
    gq.id = (char *)GOOD_ID;
    r = call_ok(c, &env, MUSTER__ENVELOPE__BODY_GET_WORKER_REPLY);
    assert_string_equal(r->get_worker_reply->worker->id, GOOD_ID);
    env_free(r);
    close_dealer(c);
    close_dealer(a);
    g.tests_passed++;
}

static void test_events_published(void **state)
{
    /* By now GOOD_ID went online, offline (goodbye) and online again. Read
     * what the PUB socket said: two frames, topic then envelope; seq counts
     * up by one. */
    assert_non_null(g.events);
    bool online = false, offline_goodbye = false;
    uint64_t last_seq = 0;
    unsigned n = 0;
    for (;;) {
        zmq_pollitem_t it = {g.events, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, n == 0 ? REPLY_TIMEOUT_MS : 200) <= 0)
            break;
        char topic[64];
        int tl = zmq_recv(g.events, topic, sizeof(topic) - 1, ZMQ_DONTWAIT);
        assert_true(tl > 0 && tl < (int)sizeof(topic));
        topic[tl] = '\0';
        int more = 0;
        size_t sz = sizeof(more);
        zmq_getsockopt(g.events, ZMQ_RCVMORE, &more, &sz);
        assert_true(more);
        zmq_msg_t m;
        zmq_msg_init(&m);
        assert_true(zmq_msg_recv(&m, g.events, 0) >= 0);
        assert_false(zmq_msg_more(&m));
        Muster__Envelope *e = muster__envelope__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        zmq_msg_close(&m);
        assert_non_null(e);
        assert_int_equal(e->version, WIRE_PROTOCOL_VERSION);
        assert_int_equal(e->body_case, MUSTER__ENVELOPE__BODY_EVENT);
        const Muster__Event *ev = e->event;
        assert_string_equal(ev->topic, topic);
        if (n > 0 && ev->seq != last_seq + 1)
            fail_msg("event seq %llu after %llu", (unsigned long long)ev->seq,
                     (unsigned long long)last_seq);
        last_seq = ev->seq;
        n++;
        if (strcmp(ev->worker_id, GOOD_ID) == 0) {
            if (strcmp(topic, "worker.online") == 0)
                online = true;
            if (strcmp(topic, "worker.offline") == 0 && strstr(ev->detail, "goodbye"))
                offline_goodbye = true;
        }
        env_free(e);
    }
    fprintf(stderr, "# %u events, last seq %llu\n", n, (unsigned long long)last_seq);
    assert_true(online);
    assert_true(offline_goodbye);
    g.tests_passed++;
}

/* Wait for the proof-of-work challenge the broker sends a new worker. */
static Muster__Envelope *await_challenge(void *s)
{
    g.keep_challenges = true;
    Muster__Envelope *r = NULL;
    uint64_t deadline = mono_ms() + 5000;
    while (mono_ms() < deadline && !r) {
        r = recv_env(s, 500);
        if (r && r->body_case != MUSTER__ENVELOPE__BODY_POW_CHALLENGE) {
            env_free(r);
            r = NULL;
        }
    }
    g.keep_challenges = false;
    if (!r)
        fail_msg("no proof-of-work challenge within 5 s of registering");
    return r;
}

static void commit_msg(Muster__Envelope *env, Muster__PowCommit *pc, uint64_t id, uint8_t *root,
                       size_t len)
{
    muster__pow_commit__init(pc);
    pc->challenge_id = id;
    pc->root.data = root;
    pc->root.len = len;
    wire_envelope_init(env, 0);
    env->body_case = MUSTER__ENVELOPE__BODY_POW_COMMIT;
    env->pow_commit = pc;
}

static void proofs_msg(Muster__Envelope *env, Muster__PowProofs *pp, uint64_t id, uint8_t *buf,
                       size_t leaves_len, size_t paths_len)
{
    muster__pow_proofs__init(pp);
    pp->challenge_id = id;
    pp->leaves.data = buf;
    pp->leaves.len = leaves_len;
    pp->paths.data = buf;
    pp->paths.len = paths_len;
    wire_envelope_init(env, 0);
    env->body_case = MUSTER__ENVELOPE__BODY_POW_PROOFS;
    env->pow_proofs = pp;
}

/* Answers to proof-of-work challenges that are out of order, stale, meant
 * for another worker or malformed get an error with a reason, and the
 * broker goes on serving. */
static void test_pow_answers_refused(void **state)
{
    void *a = open_dealer(g.agent_ep, NULL, 0);
    void *b = open_dealer(g.agent_ep, NULL, 0);
    reg_msg ma, mb;
    reg_init(&ma, "6f1c0e5a-0000-4000-8000-00000000aaaa", "RTX 4090", 1, "DE");
    reg_init(&mb, "6f1c0e5a-0000-4000-8000-00000000bbbb", "RTX 4090", 1, "DE");
    ma.reg.host_fingerprint = (char *)"aaaaaaaaaaaaaaaa";
    mb.reg.host_fingerprint = (char *)"bbbbbbbbbbbbbbbb";
    env_free(call_ok(a, &ma.env, MUSTER__ENVELOPE__BODY_REGISTER_REPLY));
    env_free(call_ok(b, &mb.env, MUSTER__ENVELOPE__BODY_REGISTER_REPLY));
    Muster__Envelope *ch = await_challenge(a);
    uint64_t id = ch->pow_challenge->challenge_id;
    assert_int_equal(ch->pow_challenge->seed.len, 32);
    assert_true(ch->pow_challenge->leaves >= 16);
    env_free(ch);
    env_free(await_challenge(b)); /* b is challenged too; it never answers */

    uint8_t buf[4096] = {0};
    Muster__Envelope env;
    Muster__PowCommit pc;
    Muster__PowProofs pp;
    /* a root that is not 32 bytes */
    commit_msg(&env, &pc, id, buf, 5);
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    /* an old (or made-up) challenge id */
    commit_msg(&env, &pc, id + (1ull << 32), buf, 32);
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_CONFLICT));
    /* a's challenge answered by b */
    commit_msg(&env, &pc, id, buf, 32);
    env_free(send_expect(b, &env, MUSTER__STATUS__STATUS_PERMISSION_DENIED));
    /* proofs before the commitment */
    proofs_msg(&env, &pp, id, buf, 32, 32);
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_CONFLICT));
    /* the commitment itself is taken (no reply): the spots follow */
    commit_msg(&env, &pc, id, buf, 32);
    env.request_id = ++g.next_rid;
    send_env(a, &env);
    g.keep_challenges = true;
    Muster__Envelope *sp = recv_env(a, REPLY_TIMEOUT_MS);
    g.keep_challenges = false;
    assert_non_null(sp);
    assert_int_equal(sp->body_case, MUSTER__ENVELOPE__BODY_POW_SPOTS);
    assert_int_equal(sp->pow_spots->challenge_id, id);
    assert_true(sp->pow_spots->n_leaves > 0);
    env_free(sp);
    /* committing twice */
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_CONFLICT));
    /* proofs of the wrong length: refused, and counted as a bad proof */
    proofs_msg(&env, &pp, id, buf, 7, 9);
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_BAD_REQUEST));
    /* the challenge is over: the same proofs again are stale */
    env_free(send_expect(a, &env, MUSTER__STATUS__STATUS_CONFLICT));
    Muster__Envelope *st = get_status();
    assert_int_equal(st->status, MUSTER__STATUS__STATUS_OK);
    env_free(st);
    close_dealer(a);
    close_dealer(b);
    g.tests_passed++;
}

static void test_sigterm_exits_zero(void **state)
{
    assert_true(g.pid > 0);
    int st;
    assert_int_equal(waitpid(g.pid, &st, WNOHANG), 0); /* still alive */
    assert_int_equal(kill(g.pid, SIGTERM), 0);
    if (!reap(3000))
        fail_msg("musterd did not exit within 3 s of SIGTERM");
    if (!WIFEXITED(g.exit_status) || WEXITSTATUS(g.exit_status) != 0) {
        if (WIFSIGNALED(g.exit_status))
            fail_msg("musterd died of signal %d", WTERMSIG(g.exit_status));
        fail_msg("musterd exited with status %d", WEXITSTATUS(g.exit_status));
    }
    assert_false(log_contains("Sanitizer"));
    assert_false(log_contains("runtime error:"));
    g.tests_passed++;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s BUILD_DIR\n", argv[0]);
        return 2;
    }
    g.bindir = argv[1];
    /* A last resort against a hang the polls do not catch. */
    alarm(100);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_garbage_bytes),
        cmocka_unit_test(test_version_mismatch),
        cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_unknown_body_field),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_wrong_endpoint),
        cmocka_unit_test(test_unknown_worker),
        cmocka_unit_test(test_register_refused),
        cmocka_unit_test(test_reply_bodies_refused),
        cmocka_unit_test(test_bad_client_requests),
        cmocka_unit_test(test_long_routing_id),
        cmocka_unit_test(test_multipart_dropped),
        cmocka_unit_test(test_over_hard_cap),
        cmocka_unit_test(test_still_serving),
        cmocka_unit_test(test_valid_register_and_list),
        cmocka_unit_test(test_reregister_takes_over),
        cmocka_unit_test(test_ambiguous_prefix),
        cmocka_unit_test(test_events_published),
        cmocka_unit_test(test_pow_answers_refused),
        cmocka_unit_test(test_bad_task_messages),
        cmocka_unit_test(test_sigterm_exits_zero),
    };
    /* The teardown prints musterd's log unless every test passed. */
    g.n_tests = sizeof(tests) / sizeof(tests[0]);
    return cmocka_run_group_tests_name("integration.badinput", tests, group_setup, group_teardown);
}
