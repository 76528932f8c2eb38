/* test_webhook.c - webhook deliveries against a tiny HTTP/1.1 server on
 * 127.0.0.1 in the same process: signature, order, retries and backoff, a
 * receiver that is down, hangs or redirects, isolation between endpoints, a
 * post that never waits, bounded queues, bad arguments, allocation failures,
 * prompt teardown, and logs that never hold the secret.
 *
 * Every wait has a deadline; every server is a thread with a listening socket
 * on an ephemeral port, stopped and joined by the test that started it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>

#include "clock.h"
#include "log.h"
#include "testutil.h"
#include "webhook.h"

/* 32 bytes, so that the test can check signatures with libsodium's one-shot
 * crypto_auth_hmacsha256 (fixed 32-byte keys), not the streaming API the
 * module uses. Printable, so that a leak into the log would be plain to see. */
static const char SECRET[] = "s3cret-for-webhook-tests-0123456";
static FILE *logfile;

/* --- a tiny HTTP server ---------------------------------------------------- */

enum answer { ANS_200, ANS_500, ANS_HANG, ANS_CLOSE, ANS_302 };

#define REQ_MAX  4096
#define HUNG_MAX 64

typedef struct req {
    char method[8];
    char path[256];
    char content_type[64];
    char event[80];
    char delivery[32];
    char timestamp[32];
    char signature[128];
    bool expect; /* an Expect: header came */
    char *body;
    size_t len;
    uint64_t at_ms; /* monotonic, when the whole request had arrived */
} req;

typedef struct server {
    int lfd;
    uint16_t port;
    pthread_t thread;
    pthread_mutex_t mu;
    bool stop;
    enum answer plan[32]; /* answers to the first requests, in order */
    size_t nplan;
    enum answer dflt; /* to the others */
    char location[128];
    req *reqs;
    size_t nreq;
    int hung[HUNG_MAX];
    size_t nhung;
} server;

static void copy_value(char *dst, size_t n, const char *v, size_t vlen)
{
    if (vlen >= n)
        vlen = n - 1;
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
}

/* Read one request from fd within 3 s; 0, or -1 when it did not come whole. */
static int read_request(int fd, req *r)
{
    size_t cap = 8192, have = 0;
    char *buf = malloc(cap);
    uint64_t deadline = clock_mono_ms() + 3000;
    char *end = NULL;
    size_t want = 0;
    for (;;) {
        if (!end) {
            end = memmem(buf, have, "\r\n\r\n", 4);
            if (end) {
                /* Parse the head. */
                *end = '\0';
                char *line = buf, *next;
                bool first = true;
                size_t clen = 0;
                for (; line; line = next) {
                    next = strstr(line, "\r\n");
                    if (next) {
                        *next = '\0';
                        next += 2;
                    }
                    if (first) {
                        sscanf(line, "%7s %255s", r->method, r->path);
                        first = false;
                        continue;
                    }
                    char *colon = strchr(line, ':');
                    if (!colon)
                        continue;
                    *colon = '\0';
                    const char *v = colon + 1;
                    while (*v == ' ')
                        v++;
                    size_t vl = strlen(v);
                    if (strcasecmp(line, "Content-Length") == 0)
                        clen = (size_t)strtoul(v, NULL, 10);
                    else if (strcasecmp(line, "Content-Type") == 0)
                        copy_value(r->content_type, sizeof(r->content_type), v, vl);
                    else if (strcasecmp(line, "X-Muster-Event") == 0)
                        copy_value(r->event, sizeof(r->event), v, vl);
                    else if (strcasecmp(line, "X-Muster-Delivery") == 0)
                        copy_value(r->delivery, sizeof(r->delivery), v, vl);
                    else if (strcasecmp(line, "X-Muster-Timestamp") == 0)
                        copy_value(r->timestamp, sizeof(r->timestamp), v, vl);
                    else if (strcasecmp(line, "X-Muster-Signature") == 0)
                        copy_value(r->signature, sizeof(r->signature), v, vl);
                    else if (strcasecmp(line, "Expect") == 0)
                        r->expect = true;
                }
                size_t head = (size_t)(end - buf) + 4;
                memmove(buf, buf + head, have - head);
                have -= head;
                want = clen;
            }
        }
        if (end && have >= want) {
            r->body = buf;
            r->len = want;
            r->at_ms = clock_mono_ms();
            return 0;
        }
        if (have == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        uint64_t now = clock_mono_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
            break;
        ssize_t n = read(fd, buf + have, cap - have);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    free(buf);
    return -1;
}

static void write_all(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        s += k;
        n -= (size_t)k;
    }
}

static void *server_run(void *arg)
{
    server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        req r;
        memset(&r, 0, sizeof(r));
        if (read_request(fd, &r) < 0) {
            close(fd);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        enum answer a = s->nreq < s->nplan ? s->plan[s->nreq] : s->dflt;
        if (s->nreq < REQ_MAX)
            s->reqs[s->nreq++] = r;
        else
            free(r.body);
        pthread_mutex_unlock(&s->mu);
        char buf[256];
        switch (a) {
        case ANS_200:
            write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            close(fd);
            break;
        case ANS_500:
            write_all(fd, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            close(fd);
            break;
        case ANS_302:
            snprintf(buf, sizeof(buf),
                     "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n",
                     s->location);
            write_all(fd, buf);
            close(fd);
            break;
        case ANS_CLOSE:
            close(fd);
            break;
        case ANS_HANG:
            /* Keep the connection open, say nothing, until the test ends. */
            pthread_mutex_lock(&s->mu);
            if (s->nhung < HUNG_MAX)
                s->hung[s->nhung++] = fd;
            else
                close(fd);
            pthread_mutex_unlock(&s->mu);
            break;
        }
    }
    return NULL;
}

static int listen_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static server *server_start(enum answer dflt, const enum answer *plan, size_t nplan)
{
    server *s = calloc(1, sizeof(*s));
    s->reqs = calloc(REQ_MAX, sizeof(*s->reqs));
    s->lfd = listen_loopback(&s->port);
    assert_int_equal(listen(s->lfd, 64), 0);
    s->dflt = dflt;
    assert_true(nplan <= 32);
    for (size_t i = 0; i < nplan; i++)
        s->plan[i] = plan[i];
    s->nplan = nplan;
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(pthread_create(&s->thread, NULL, server_run, s), 0);
    return s;
}

static void server_stop(server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    for (size_t i = 0; i < s->nhung; i++)
        close(s->hung[i]);
    for (size_t i = 0; i < s->nreq; i++)
        free(s->reqs[i].body);
    free(s->reqs);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static size_t server_count(server *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nreq;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* A copy of request i (its body borrowed: the server keeps requests until
 * it stops, and never moves them). */
static req server_req(server *s, size_t i)
{
    pthread_mutex_lock(&s->mu);
    assert_true(i < s->nreq);
    req r = s->reqs[i];
    pthread_mutex_unlock(&s->mu);
    return r;
}

static void server_url(const server *s, char *buf, size_t n)
{
    snprintf(buf, n, "http://127.0.0.1:%u/hook?x=1", (unsigned)s->port);
}

/* A port with nothing listening: connecting is refused at once. */
static uint16_t dead_port(void)
{
    uint16_t port;
    int fd = listen_loopback(&port);
    close(fd);
    return port;
}

/* --- helpers --------------------------------------------------------------- */

#define WAIT_FOR(cond, ms)                                                                         \
    do {                                                                                           \
        uint64_t deadline_ = clock_mono_ms() + (ms);                                               \
        while (!(cond) && clock_mono_ms() < deadline_)                                             \
            clock_sleep_ms(2, NULL);                                                               \
    } while (0)

static webhook_status status_of(webhooks *w, const char *account)
{
    webhook_status st;
    assert_int_equal(webhooks_status(w, account, &st), 0);
    return st;
}

static webhooks *create(uint32_t timeout_ms, uint32_t bmin, uint32_t bmax, uint32_t attempts)
{
    webhook_config c = {.timeout_ms = timeout_ms,
                        .backoff_min_ms = bmin,
                        .backoff_max_ms = bmax,
                        .max_attempts = attempts,
                        .allow_private = true};
    mu_error err;
    webhooks *w = webhooks_create(&c, &err);
    if (!w)
        fail_msg("webhooks_create: %s", err.text);
    return w;
}

static void set_endpoint(webhooks *w, const char *account, const char *url)
{
    mu_error err;
    if (webhooks_set(w, account, url, (const uint8_t *)SECRET, strlen(SECRET), &err) < 0)
        fail_msg("webhooks_set %s: %s", url, err.text);
}

static uint64_t post(webhooks *w, const char *account, const char *type, const char *body)
{
    mu_error err;
    uint64_t id = 0;
    if (webhooks_post(w, account, type, body, strlen(body), &id, &err) < 0)
        fail_msg("webhooks_post: %s", err.text);
    return id;
}

static uint64_t delivered(webhooks *w, const char *account)
{
    return status_of(w, account).delivered;
}

static uint64_t failed(webhooks *w, const char *account)
{
    return status_of(w, account).failed;
}

static enum webhook_state head_state(webhooks *w, const char *account)
{
    webhook_status st = status_of(w, account);
    return st.n_pending ? st.pending[0].state : WEBHOOK_DELIVERED;
}

/* --- tests ----------------------------------------------------------------- */

/* One delivery: the headers, the body, and a signature recomputed here. */
static void test_delivery_signed(void **state)
{
    (void)state;
    server *s = server_start(ANS_200, NULL, 0);
    webhook_config c = {.timeout_ms = 5000, .body_max = 2u << 20, .allow_private = true};
    webhooks *w = webhooks_create(&c, NULL);
    assert_non_null(w);
    char url[128];
    server_url(s, url, sizeof(url));
    set_endpoint(w, "acct-1", url);

    /* Large (1.5 MiB), where libcurl would send "Expect: 100-continue" and
     * wait a second for an answer this server never gives. */
    size_t blen = 3u << 19;
    char *body = malloc(blen + 1);
    int n = snprintf(body, blen + 1, "{\"event\":\"cluster.ready\",\"pad\":\"");
    memset(body + n, 'x', blen - (size_t)n - 2);
    memcpy(body + blen - 2, "\"}", 3);
    time_t before = time(NULL);
    uint64_t id = post(w, "acct-1", "cluster.ready", body);
    WAIT_FOR(delivered(w, "acct-1") == 1, 5000);
    assert_int_equal(delivered(w, "acct-1"), 1);
    time_t after = time(NULL);

    assert_int_equal(server_count(s), 1);
    req r = server_req(s, 0);
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.path, "/hook?x=1");
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(r.event, "cluster.ready");
    char idtext[32];
    snprintf(idtext, sizeof(idtext), "%" PRIu64, id);
    assert_string_equal(r.delivery, idtext);
    assert_false(r.expect);
    assert_int_equal(r.len, strlen(body));
    assert_memory_equal(r.body, body, r.len);
    free(body);
    long ts = strtol(r.timestamp, NULL, 10);
    assert_true(ts >= (long)before && ts <= (long)after);

    /* The receiver's check: HMAC-SHA256(secret, timestamp "." body). */
    size_t mlen = strlen(r.timestamp) + 1 + r.len;
    unsigned char *msg = malloc(mlen);
    memcpy(msg, r.timestamp, strlen(r.timestamp));
    msg[strlen(r.timestamp)] = '.';
    memcpy(msg + strlen(r.timestamp) + 1, r.body, r.len);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    assert_int_equal(strlen(SECRET), crypto_auth_hmacsha256_KEYBYTES);
    crypto_auth_hmacsha256(mac, msg, mlen, (const unsigned char *)SECRET);
    char expect[8 + 2 * sizeof(mac)] = "sha256=";
    sodium_bin2hex(expect + 7, sizeof(expect) - 7, mac, sizeof(mac));
    assert_string_equal(r.signature, expect);
    /* A verifier that checks it rejects a changed body. */
    msg[mlen - 1] ^= 1;
    assert_int_not_equal(
        crypto_auth_hmacsha256_verify(mac, msg, mlen, (const unsigned char *)SECRET), 0);
    free(msg);

    webhook_status st = status_of(w, "acct-1");
    assert_int_equal(st.posted, 1);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.failed + st.dropped + st.retries, 0);
    assert_true(st.last_success_ms > 0);
    assert_string_equal(st.last_error, "");
    assert_int_equal(st.n_pending, 0);
    assert_int_equal(st.n_finished, 1);
    assert_int_equal(st.finished[0].id, id);
    assert_int_equal(st.finished[0].state, WEBHOOK_DELIVERED);
    assert_int_equal(st.finished[0].attempts, 1);
    assert_int_equal(st.finished[0].last_status, 200);
    assert_string_equal(st.finished[0].event_type, "cluster.ready");
    assert_string_equal(webhook_state_name(st.finished[0].state), "delivered");
    webhooks_destroy(w);
    server_stop(s);
}

/* Deliveries to one endpoint arrive in order, a retry included: the failed
 * one is sent again before any later one. */
static void test_order_kept(void **state)
{
    (void)state;
    enum answer plan[] = {ANS_200, ANS_200, ANS_200, ANS_500, ANS_CLOSE};
    server *s = server_start(ANS_200, plan, 5);
    webhooks *w = create(2000, 20, 40, 5);
    char url[128];
    server_url(s, url, sizeof(url));
    set_endpoint(w, "acct", url);
    uint64_t ids[20];
    for (int i = 0; i < 20; i++) {
        char body[32];
        snprintf(body, sizeof(body), "{\"n\":%d}", i);
        ids[i] = post(w, "acct", "task.done", body);
        if (i)
            assert_true(ids[i] > ids[i - 1]);
    }
    WAIT_FOR(delivered(w, "acct") == 20, 10000);
    assert_int_equal(delivered(w, "acct"), 20);
    /* 0 1 2 3(500) 3(closed) 3 4 ... 19 */
    assert_int_equal(server_count(s), 22);
    int expect_n[22];
    for (int k = 0, i = 0; k < 22; k++) {
        expect_n[k] = i;
        if (!(k == 3 || k == 4))
            i++;
    }
    for (size_t k = 0; k < 22; k++) {
        req r = server_req(s, k);
        char body[32];
        snprintf(body, sizeof(body), "{\"n\":%d}", expect_n[k]);
        assert_int_equal(r.len, strlen(body));
        assert_memory_equal(r.body, body, r.len);
        char idtext[32];
        snprintf(idtext, sizeof(idtext), "%" PRIu64, ids[expect_n[k]]);
        assert_string_equal(r.delivery, idtext); /* the same id on each retry */
    }
    webhook_status st = status_of(w, "acct");
    assert_int_equal(st.retries, 2);
    assert_int_equal(st.failed, 0);
    webhooks_destroy(w);
    server_stop(s);
}

/* A 500, then a 200: delivered at the second attempt, after a backoff. */
static void test_retry_then_delivered(void **state)
{
    (void)state;
    enum answer plan[] = {ANS_500, ANS_200};
    server *s = server_start(ANS_200, plan, 2);
    webhooks *w = create(2000, 300, 1000, 5);
    char url[128];
    server_url(s, url, sizeof(url));
    set_endpoint(w, "acct", url);
    uint64_t id = post(w, "acct", "worker.offline", "{}");
    WAIT_FOR(delivered(w, "acct") == 1, 5000);
    assert_int_equal(server_count(s), 2);
    req r0 = server_req(s, 0), r1 = server_req(s, 1);
    /* The first retry waits backoff_min_ms, jittered into its upper half. */
    uint64_t gap = r1.at_ms - r0.at_ms;
    assert_true(gap >= 140);
    assert_true(gap < 1500);
    assert_string_equal(r0.delivery, r1.delivery);
    webhook_status st = status_of(w, "acct");
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.last_status, 500); /* the latest attempt that failed */
    assert_non_null(strstr(st.last_error, "500"));
    assert_int_equal(st.finished[0].id, id);
    assert_int_equal(st.finished[0].attempts, 2);
    assert_int_equal(st.finished[0].state, WEBHOOK_DELIVERED);
    webhooks_destroy(w);
    server_stop(s);
}

/* Connection refused: retried, then failed after max_attempts, the reason
 * visible; the queue then moves on. */
static void test_receiver_down(void **state)
{
    (void)state;
    webhooks *w = create(1000, 20, 40, 3);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)dead_port());
    set_endpoint(w, "down", url);
    uint64_t id = post(w, "down", "cluster.failed", "{\"a\":1}");
    WAIT_FOR(status_of(w, "down").pending[0].state == WEBHOOK_RETRYING || failed(w, "down") == 1,
             3000);
    WAIT_FOR(failed(w, "down") == 1, 5000);
    webhook_status st = status_of(w, "down");
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.delivered, 0);
    assert_int_equal(st.retries, 2);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.last_status, 0);
    assert_non_null(strstr(st.last_error, "onnect"));
    assert_true(st.last_error_ms > 0);
    assert_int_equal(st.last_success_ms, 0);
    assert_int_equal(st.finished[0].id, id);
    assert_int_equal(st.finished[0].state, WEBHOOK_FAILED);
    assert_int_equal(st.finished[0].attempts, 3);
    /* The next one is tried too (and fails the same way). */
    post(w, "down", "cluster.failed", "{\"a\":2}");
    WAIT_FOR(failed(w, "down") == 2, 5000);
    assert_int_equal(failed(w, "down"), 2);
    webhooks_destroy(w);
}

/* A receiver that accepts and never answers is cut off at timeout_ms. */
static void test_hanging_receiver_times_out(void **state)
{
    (void)state;
    server *s = server_start(ANS_HANG, NULL, 0);
    webhooks *w = create(300, 50, 100, 1);
    char url[128];
    server_url(s, url, sizeof(url));
    set_endpoint(w, "acct", url);
    uint64_t t0 = clock_mono_ms();
    post(w, "acct", "task.done", "{}");
    WAIT_FOR(failed(w, "acct") == 1, 5000);
    uint64_t took = clock_mono_ms() - t0;
    assert_int_equal(failed(w, "acct"), 1);
    assert_true(took >= 280);
    assert_true(took < 2500);
    assert_int_equal(server_count(s), 1); /* it did get the request */
    webhook_status st = status_of(w, "acct");
    assert_non_null(strstr(st.last_error, "timed out"));
    webhooks_destroy(w);
    server_stop(s);
}

/* One endpoint hanging does not hold up another's deliveries. */
static void test_endpoints_independent(void **state)
{
    (void)state;
    server *slow = server_start(ANS_HANG, NULL, 0);
    server *fast = server_start(ANS_200, NULL, 0);
    webhooks *w = create(4000, 50, 100, 2);
    char url[128];
    server_url(slow, url, sizeof(url));
    set_endpoint(w, "slow", url);
    server_url(fast, url, sizeof(url));
    set_endpoint(w, "fast", url);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)dead_port());
    set_endpoint(w, "dead", url);

    for (int i = 0; i < 3; i++) {
        post(w, "slow", "e", "{}");
        post(w, "dead", "e", "{}");
    }
    WAIT_FOR(server_count(slow) == 1, 3000);
    assert_int_equal(server_count(slow), 1);
    uint64_t t0 = clock_mono_ms();
    for (int i = 0; i < 5; i++)
        post(w, "fast", "e", "{}");
    WAIT_FOR(delivered(w, "fast") == 5, 3000);
    uint64_t took = clock_mono_ms() - t0;
    assert_int_equal(delivered(w, "fast"), 5);
    assert_true(took < 1500); /* well under the slow one's 4 s timeout */
    /* ... and the slow one was still hanging all that time. */
    assert_int_equal(head_state(w, "slow"), WEBHOOK_DELIVERING);
    assert_int_equal(status_of(w, "slow").queued, 3);
    webhooks_destroy(w);
    server_stop(fast);
    server_stop(slow);
}

/* webhooks_post does not wait for the network. */
static void test_post_never_blocks(void **state)
{
    (void)state;
    server *s = server_start(ANS_HANG, NULL, 0);
    webhooks *w = create(5000, 50, 100, 2);
    char url[128];
    server_url(s, url, sizeof(url));
    set_endpoint(w, "acct", url);
    post(w, "acct", "e", "{}");
    WAIT_FOR(head_state(w, "acct") == WEBHOOK_DELIVERING && server_count(s) == 1, 3000);
    assert_int_equal(server_count(s), 1);
    char body[200];
    memset(body, 'a', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    uint64_t t0 = clock_mono_ms();
    for (int i = 0; i < 1000; i++)
        post(w, "acct", "cluster.changed", body);
    uint64_t took = clock_mono_ms() - t0;
    assert_true(took < 50);
    webhook_status st = status_of(w, "acct");
    assert_int_equal(st.queued, 1001);
    assert_int_equal(st.queued_bytes, 2 + 1000 * 199);
    assert_int_equal(st.n_pending, WEBHOOK_LIST_MAX);
    assert_int_equal(st.pending[1].state, WEBHOOK_QUEUED);
    webhooks_destroy(w);
    server_stop(s);
}

/* A full queue drops its oldest waiting deliveries, counted; the one on the
 * wire stays. By count, then by bytes. */
static void test_queue_overflow(void **state)
{
    (void)state;
    server *s = server_start(ANS_HANG, NULL, 0);
    webhook_config c = {.timeout_ms = 5000, .queue_max = 10, .allow_private = true};
    webhooks *w = webhooks_create(&c, NULL);
    assert_non_null(w);
    char url[128];
    server_url(s, url, sizeof(url));
    set_endpoint(w, "acct", url);
    uint64_t first = post(w, "acct", "e", "{}");
    WAIT_FOR(head_state(w, "acct") == WEBHOOK_DELIVERING, 3000);
    uint64_t ids[100];
    for (int i = 0; i < 100; i++)
        ids[i] = post(w, "acct", "e", "{}");
    webhook_status st = status_of(w, "acct");
    assert_int_equal(st.posted, 101);
    assert_int_equal(st.dropped, 90);
    assert_int_equal(st.queued, 11);
    assert_int_equal(st.pending[0].id, first);
    assert_int_equal(st.pending[0].state, WEBHOOK_DELIVERING);
    for (size_t k = 1; k < st.n_pending; k++)
        assert_int_equal(st.pending[k].id, ids[90 + k - 1]); /* the newest kept */
    assert_int_equal(st.finished[0].id, ids[89]);            /* the latest dropped */
    assert_int_equal(st.finished[0].state, WEBHOOK_DROPPED);
    assert_int_equal(st.finished[1].id, ids[88]);
    webhooks_destroy(w);

    /* By bytes: 1000 bytes of bodies waiting at most. */
    webhook_config cb = {
        .timeout_ms = 5000, .queue_bytes_max = 1000, .body_max = 100, .allow_private = true};
    w = webhooks_create(&cb, NULL);
    assert_non_null(w);
    set_endpoint(w, "acct", url);
    char body[101];
    memset(body, 'b', 100);
    body[100] = '\0';
    post(w, "acct", "e", body);
    WAIT_FOR(head_state(w, "acct") == WEBHOOK_DELIVERING, 3000);
    for (int i = 0; i < 25; i++)
        post(w, "acct", "e", body);
    st = status_of(w, "acct");
    assert_int_equal(st.dropped, 15);
    assert_int_equal(st.queued, 11);
    assert_int_equal(st.queued_bytes, 1100);
    mu_error err;
    char big[102];
    memset(big, 'c', 101);
    big[101] = '\0';
    errno = 0;
    assert_int_equal(webhooks_post(w, "acct", "e", big, 101, NULL, &err), -1);
    assert_int_equal(errno, EMSGSIZE);
    webhooks_destroy(w);
    server_stop(s);
}

/* A redirect is not followed: it is a failed attempt like any non-2xx. */
static void test_redirect_not_followed(void **state)
{
    (void)state;
    server *target = server_start(ANS_200, NULL, 0);
    server *s = server_start(ANS_302, NULL, 0);
    server_url(target, s->location, sizeof(s->location));
    webhooks *w = create(2000, 20, 40, 2);
    char url[128];
    server_url(s, url, sizeof(url));
    set_endpoint(w, "acct", url);
    post(w, "acct", "e", "{}");
    WAIT_FOR(failed(w, "acct") == 1, 5000);
    webhook_status st = status_of(w, "acct");
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.last_status, 302);
    assert_int_equal(server_count(s), 2);
    assert_int_equal(server_count(target), 0);
    webhooks_destroy(w);
    server_stop(s);
    server_stop(target);
}

/* With allow_private off, loopback is refused after DNS, before any byte. */
static void test_private_address_refused(void **state)
{
    (void)state;
    server *s = server_start(ANS_200, NULL, 0);
    webhook_config c = {.timeout_ms = 2000, .max_attempts = 1};
    mu_error err;
    webhooks *w = webhooks_create(&c, &err);
    assert_non_null(w);
    char url[128];
    server_url(s, url, sizeof(url));
    set_endpoint(w, "ip", url);
    snprintf(url, sizeof(url), "http://localhost:%u/", (unsigned)s->port);
    set_endpoint(w, "name", url);
    post(w, "ip", "e", "{}");
    post(w, "name", "e", "{}");
    WAIT_FOR(failed(w, "ip") == 1 && failed(w, "name") == 1, 5000);
    assert_int_equal(failed(w, "ip"), 1);
    assert_int_equal(failed(w, "name"), 1);
    assert_non_null(strstr(status_of(w, "ip").last_error, "private"));
    assert_non_null(strstr(status_of(w, "name").last_error, "private"));
    assert_int_equal(server_count(s), 0);
    webhooks_destroy(w);
    server_stop(s);
}

/* Replacing the URL keeps the totals and sends a waiting retry at once;
 * removing forgets the endpoint, aborting what is on the wire. */
static void test_replace_and_remove(void **state)
{
    (void)state;
    server *ok = server_start(ANS_200, NULL, 0);
    server *hang = server_start(ANS_HANG, NULL, 0);
    webhooks *w = create(2000, 10000, 10000, 5);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)dead_port());
    set_endpoint(w, "acct", url);
    post(w, "acct", "e", "{}");
    WAIT_FOR(head_state(w, "acct") == WEBHOOK_RETRYING, 3000);
    assert_int_equal(head_state(w, "acct"), WEBHOOK_RETRYING);
    /* The same URL and secret again (a reload): the backoff stands. */
    set_endpoint(w, "acct", url);
    clock_sleep_ms(200, NULL);
    assert_int_equal(status_of(w, "acct").pending[0].attempts, 1);
    uint64_t t0 = clock_mono_ms();
    server_url(ok, url, sizeof(url));
    set_endpoint(w, "acct", url);
    WAIT_FOR(delivered(w, "acct") == 1, 3000);
    assert_int_equal(delivered(w, "acct"), 1);
    assert_true(clock_mono_ms() - t0 < 2000); /* not the 5-10 s backoff */
    webhook_status st = status_of(w, "acct");
    assert_int_equal(st.posted, 1);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.finished[0].attempts, 2);

    assert_int_equal(webhooks_remove(w, "acct"), 0);
    errno = 0;
    assert_int_equal(webhooks_status(w, "acct", &st), -1);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(webhooks_post(w, "acct", "e", "{}", 2, NULL, NULL), -1);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(webhooks_remove(w, "acct"), -1);
    assert_int_equal(errno, ENOENT);

    /* Removed with a request on the wire and others waiting. */
    server_url(hang, url, sizeof(url));
    set_endpoint(w, "hung", url);
    post(w, "hung", "e", "{}");
    post(w, "hung", "e", "{}");
    WAIT_FOR(head_state(w, "hung") == WEBHOOK_DELIVERING && server_count(hang) == 1, 3000);
    assert_int_equal(server_count(hang), 1);
    assert_int_equal(webhooks_remove(w, "hung"), 0);
    /* Set again under the same name: a fresh endpoint, nothing carried over. */
    server_url(ok, url, sizeof(url));
    set_endpoint(w, "hung", url);
    st = status_of(w, "hung");
    assert_int_equal(st.posted + st.queued + st.delivered, 0);
    post(w, "hung", "e", "{}");
    WAIT_FOR(delivered(w, "hung") == 1, 3000);
    assert_int_equal(delivered(w, "hung"), 1);
    webhooks_destroy(w);
    server_stop(hang);
    server_stop(ok);
}

/* Many endpoints: the table grows and each is found again. */
static void test_many_endpoints(void **state)
{
    (void)state;
    server *s = server_start(ANS_200, NULL, 0);
    webhooks *w = create(2000, 20, 40, 3);
    char url[128];
    server_url(s, url, sizeof(url));
    for (int i = 0; i < 100; i++) {
        char acc[32];
        snprintf(acc, sizeof(acc), "account-%d", i);
        set_endpoint(w, acc, url);
    }
    for (int i = 0; i < 100; i++) {
        char acc[32];
        snprintf(acc, sizeof(acc), "account-%d", i);
        post(w, acc, "e", "{}");
    }
    bool all = false;
    uint64_t deadline = clock_mono_ms() + 10000;
    while (!all && clock_mono_ms() < deadline) {
        all = true;
        for (int i = 0; i < 100 && all; i++) {
            char acc[32];
            snprintf(acc, sizeof(acc), "account-%d", i);
            all = delivered(w, acc) == 1;
        }
        if (!all)
            clock_sleep_ms(5, NULL);
    }
    assert_true(all);
    assert_int_equal(server_count(s), 100);
    for (int i = 0; i < 100; i += 2) {
        char acc[32];
        snprintf(acc, sizeof(acc), "account-%d", i);
        assert_int_equal(webhooks_remove(w, acc), 0);
    }
    webhook_status st;
    assert_int_equal(webhooks_status(w, "account-0", &st), -1);
    assert_int_equal(webhooks_status(w, "account-99", &st), 0);
    webhooks_destroy(w);
    server_stop(s);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    mu_error err;
    webhook_config c = {.backoff_min_ms = 5000, .backoff_max_ms = 100};
    errno = 0;
    assert_null(webhooks_create(&c, &err));
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err.text, "backoff"));
    webhook_config c2 = {.body_max = 2000, .queue_bytes_max = 1000};
    errno = 0;
    assert_null(webhooks_create(&c2, &err));
    assert_int_equal(errno, EINVAL);

    webhooks *w = create(1000, 10, 20, 1);
    const uint8_t *sec = (const uint8_t *)SECRET;
    size_t sl = strlen(SECRET);
    static const char *const bad_urls[] = {
        "ftp://example.com/x",
        "",
        "http://",
        "https://",
        "example.com/hook",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://exa mple.com/",
        "http://example.com/\r\nX-Evil: 1",
        "http://example.com/\x7f",
        "javascript:alert(1)",
    };
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        errno = 0;
        err.text[0] = '\0';
        if (webhooks_set(w, "acct", bad_urls[i], sec, sl, &err) != -1)
            fail_msg("accepted URL \"%s\"", bad_urls[i]);
        assert_int_equal(errno, EINVAL);
        assert_true(strlen(err.text) > 0);
    }
    errno = 0;
    assert_int_equal(webhooks_set(w, "acct", NULL, sec, sl, &err), -1);
    assert_int_equal(errno, EINVAL);
    char longurl[WEBHOOK_URL_MAX + 32];
    snprintf(longurl, sizeof(longurl), "http://example.com/");
    memset(longurl + strlen(longurl), 'a', WEBHOOK_URL_MAX);
    longurl[WEBHOOK_URL_MAX + 10] = '\0';
    assert_int_equal(webhooks_set(w, "acct", longurl, sec, sl, &err), -1);
    /* None of those left an endpoint behind. */
    webhook_status st;
    errno = 0;
    assert_int_equal(webhooks_status(w, "acct", &st), -1);
    assert_int_equal(errno, ENOENT);

    /* Secrets and accounts. */
    const char *good = "https://hooks.example.com:8443/muster?token=abc";
    assert_int_equal(webhooks_set(w, "acct", good, NULL, 32, &err), -1);
    assert_int_equal(webhooks_set(w, "acct", good, sec, WEBHOOK_SECRET_MIN - 1, &err), -1);
    uint8_t longsec[WEBHOOK_SECRET_MAX + 1] = {0};
    assert_int_equal(webhooks_set(w, "acct", good, longsec, sizeof(longsec), &err), -1);
    assert_int_equal(webhooks_set(w, NULL, good, sec, sl, &err), -1);
    assert_int_equal(webhooks_set(w, "", good, sec, sl, &err), -1);
    char longacc[WEBHOOK_ACCOUNT_MAX + 2];
    memset(longacc, 'k', sizeof(longacc) - 1);
    longacc[sizeof(longacc) - 1] = '\0';
    assert_int_equal(webhooks_set(w, longacc, good, sec, sl, &err), -1);
    assert_int_equal(webhooks_set(NULL, "acct", good, sec, sl, &err), -1);

    assert_int_equal(webhooks_set(w, "acct", good, sec, sl, &err), 0);
    assert_int_equal(webhooks_set(w, "acct", "HTTP://Example.COM", sec, sl, &err), 0);
    assert_int_equal(webhooks_set(w, "acct", "http://[::1]:9/x", sec, WEBHOOK_SECRET_MIN, &err), 0);

    /* Posts. */
    errno = 0;
    assert_int_equal(webhooks_post(w, "nobody", "e", "{}", 2, NULL, &err), -1);
    assert_int_equal(errno, ENOENT);
    static const char *const bad_types[] = {"", "a b", "x\r\nX-Evil: 1", "tab\t", "sémantique"};
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        errno = 0;
        assert_int_equal(webhooks_post(w, "acct", bad_types[i], "{}", 2, NULL, &err), -1);
        assert_int_equal(errno, EINVAL);
    }
    char longtype[WEBHOOK_EVENT_TYPE_MAX + 2];
    memset(longtype, 't', sizeof(longtype) - 1);
    longtype[sizeof(longtype) - 1] = '\0';
    assert_int_equal(webhooks_post(w, "acct", longtype, "{}", 2, NULL, &err), -1);
    assert_int_equal(webhooks_post(w, "acct", NULL, "{}", 2, NULL, &err), -1);
    errno = 0;
    assert_int_equal(webhooks_post(w, "acct", "e", NULL, 2, NULL, &err), -1);
    assert_int_equal(errno, EINVAL);
    char *huge = calloc(1, (1u << 20) + 1);
    errno = 0;
    assert_int_equal(webhooks_post(w, "acct", "e", huge, (1u << 20) + 1, NULL, &err), -1);
    assert_int_equal(errno, EMSGSIZE);
    free(huge);
    assert_int_equal(webhooks_post(NULL, "acct", "e", "{}", 2, NULL, &err), -1);
    assert_int_equal(webhooks_status(w, "acct", &st), 0);
    assert_int_equal(st.posted, 0); /* nothing above was queued */
    assert_int_equal(webhooks_status(w, "acct", NULL), -1);
    assert_int_equal(webhooks_remove(w, NULL), -1);
    assert_string_equal(webhook_state_name((enum webhook_state)42), "?");
    webhooks_destroy(w);
    webhooks_destroy(NULL);
}

/* Destroy with deliveries on the wire, waiting, and in backoff: prompt. */
static void test_destroy_with_pending(void **state)
{
    (void)state;
    server *s = server_start(ANS_HANG, NULL, 0);
    webhooks *w = create(10000, 5000, 10000, 8);
    char url[128];
    server_url(s, url, sizeof(url));
    set_endpoint(w, "hung", url);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)dead_port());
    set_endpoint(w, "dead", url);
    for (int i = 0; i < 100; i++) {
        post(w, "hung", "e", "{}");
        post(w, "dead", "e", "{}");
    }
    WAIT_FOR(server_count(s) == 1 && head_state(w, "dead") == WEBHOOK_RETRYING, 3000);
    assert_int_equal(head_state(w, "dead"), WEBHOOK_RETRYING);
    uint64_t t0 = clock_mono_ms();
    webhooks_destroy(w);
    assert_true(clock_mono_ms() - t0 < 500);
    server_stop(s);
}

/* Allocation failures leave no trace. The delivery thread is idle
 * throughout (no endpoint, or its only request hanging on the wire), so the
 * failing allocator is seen by the calls under test alone. */
static void test_allocation_failures(void **state)
{
    (void)state;
    mu_error err;
    webhooks *w = NULL;
    for (size_t n = 1; n < 100 && !w; n++) {
        test_fail_alloc_after(n);
        errno = 0;
        w = webhooks_create(NULL, &err);
        test_fail_alloc_after(0);
        if (!w)
            assert_int_equal(errno, ENOMEM);
    }
    assert_non_null(w);
    webhooks_destroy(w);

    server *s = server_start(ANS_HANG, NULL, 0);
    w = create(5000, 50, 100, 2);
    char url[128];
    server_url(s, url, sizeof(url));
    int rc = -1;
    for (size_t n = 1; n < 100 && rc < 0; n++) {
        /* Enough endpoints first that the next set grows the table. */
        for (int i = 0; n == 1 && i < 16; i++) {
            char acc[32];
            snprintf(acc, sizeof(acc), "filler-%d", i);
            set_endpoint(w, acc, url);
        }
        test_fail_alloc_after(n);
        errno = 0;
        rc = webhooks_set(w, "acct", url, (const uint8_t *)SECRET, strlen(SECRET), &err);
        test_fail_alloc_after(0);
        if (rc < 0) {
            assert_int_equal(errno, ENOMEM);
            webhook_status st;
            assert_int_equal(webhooks_status(w, "acct", &st), -1);
        }
    }
    assert_int_equal(rc, 0);
    post(w, "acct", "e", "{}");
    WAIT_FOR(head_state(w, "acct") == WEBHOOK_DELIVERING && server_count(s) == 1, 3000);
    assert_int_equal(server_count(s), 1);
    test_fail_alloc_after(1);
    errno = 0;
    rc = webhooks_post(w, "acct", "e", "{}", 2, NULL, &err);
    test_fail_alloc_after(0);
    assert_int_equal(rc, -1);
    assert_int_equal(errno, ENOMEM);
    webhook_status st = status_of(w, "acct");
    assert_int_equal(st.posted, 1);
    assert_int_equal(st.queued, 1);
    webhooks_destroy(w);
    server_stop(s);
}

/* Last: the log of every test above has the events and never the secret. */
static void test_logs(void **state)
{
    (void)state;
    fflush(logfile);
    long size = ftell(logfile);
    assert_true(size > 0);
    char *text = calloc(1, (size_t)size + 1);
    rewind(logfile);
    assert_int_equal(fread(text, 1, (size_t)size, logfile), (size_t)size);
    if (getenv("TEST_WEBHOOK_SHOW_LOG"))
        fputs(text, stderr);
    assert_non_null(strstr(text, "event=webhook.set "));
    assert_non_null(strstr(text, "event=webhook.delivered "));
    assert_non_null(strstr(text, "event=webhook.retry "));
    assert_non_null(strstr(text, "event=webhook.failed "));
    assert_non_null(strstr(text, "event=webhook.dropped "));
    assert_non_null(strstr(text, "event=webhook.removed "));
    assert_null(strstr(text, SECRET));
    char hex[2 * sizeof(SECRET)];
    sodium_bin2hex(hex, sizeof(hex), (const unsigned char *)SECRET, strlen(SECRET));
    assert_null(strstr(text, hex));
    assert_null(strstr(text, "token=abc")); /* nor a URL's query */
    free(text);
}

int main(void)
{
    assert_true(sodium_init() >= 0);
    /* Loopback must not go through a proxy (the module ignores these anyway). */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    logfile = tmpfile();
    assert_non_null(logfile);
    log_init("test_webhook", LOG_DEBUG, logfile);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivery_signed),
        cmocka_unit_test(test_order_kept),
        cmocka_unit_test(test_retry_then_delivered),
        cmocka_unit_test(test_receiver_down),
        cmocka_unit_test(test_hanging_receiver_times_out),
        cmocka_unit_test(test_endpoints_independent),
        cmocka_unit_test(test_post_never_blocks),
        cmocka_unit_test(test_queue_overflow),
        cmocka_unit_test(test_redirect_not_followed),
        cmocka_unit_test(test_private_address_refused),
        cmocka_unit_test(test_replace_and_remove),
        cmocka_unit_test(test_many_endpoints),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_destroy_with_pending),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_logs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fclose(logfile);
    return rc;
}
