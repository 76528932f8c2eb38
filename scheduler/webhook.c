/* webhook.c - see webhook.h.
 *
 * Threads and ownership. Two threads use this module: the caller's (the
 * broker's event loop) and the delivery thread started by webhooks_create.
 * One mutex guards the endpoint table, every queue, every counter and the
 * ready list; the caller's thread holds it only to look up, copy and append,
 * never across I/O or a libcurl call. The multi handle and the transfers
 * (struct xfer) belong to the delivery thread alone; the one libcurl call
 * made from another thread is curl_multi_wakeup(), documented as safe for
 * exactly that.
 *
 * An endpoint's current delivery (ep->cur) is the head of its queue: once the
 * thread has taken it, it stays there through every retry until it is
 * delivered or has failed, which is what keeps an endpoint's deliveries in
 * order. libcurl sends its body in place (CURLOPT_POSTFIELDS is not copied),
 * so the current delivery is never dropped, and an endpoint removed while a
 * request is on the wire is handed to the delivery thread (the doomed list),
 * which aborts the transfer before freeing it.
 *
 * The ready list holds the endpoints that have something to send and no
 * request on the wire: the thread scans only those, so an idle endpoint costs
 * nothing per wake-up, and a post to a busy endpoint does not wake it at all.
 */
#include "webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <sodium.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "strutil.h"

/* curl_multi_poll() and curl_multi_wakeup() arrived in 7.68.0. */
#if LIBCURL_VERSION_NUM < 0x074400
#error "webhook.c needs libcurl >= 7.68.0"
#endif

#define DEFAULT_TIMEOUT_MS      5000u
#define DEFAULT_BACKOFF_MIN_MS  500u
#define DEFAULT_BACKOFF_MAX_MS  60000u
#define DEFAULT_MAX_ATTEMPTS    8u
#define DEFAULT_QUEUE_MAX       10000u
#define DEFAULT_QUEUE_BYTES_MAX (16u << 20)
#define DEFAULT_BODY_MAX        (1u << 20)
/* The longest the thread sleeps without a reason: only a safety net, as
 * every change that needs it awake wakes it. */
#define IDLE_POLL_MS 1000
/* At most one webhook.dropped line per endpoint per this many ms: a dead
 * receiver under a steady stream of events would otherwise log every event. */
#define DROP_LOG_INTERVAL_MS 1000u

typedef struct delivery {
    struct delivery *next;
    uint64_t id;
    uint64_t posted_ms; /* wall clock */
    uint32_t attempts;  /* under the mutex, like last_status */
    int last_status;
    char type[WEBHOOK_EVENT_TYPE_MAX + 1];
    size_t len;
    unsigned char body[]; /* immutable once queued: read without the mutex */
} delivery;

struct xfer;

typedef struct endpoint {
    struct endpoint *hnext;         /* hash chain */
    struct endpoint *rprev, *rnext; /* ready list */
    struct endpoint *dnext;         /* doomed list */
    bool on_ready;
    bool removed;
    char account[WEBHOOK_ACCOUNT_MAX + 1];
    char host[256]; /* for logs: never the whole URL, which may hold a token */
    char *url;
    uint8_t secret[WEBHOOK_SECRET_MAX];
    size_t secret_len;
    delivery *cur;           /* being sent or waiting for a retry */
    struct xfer *xfer;       /* the request on the wire; the delivery thread's */
    uint64_t due_ms;         /* monotonic: when cur may be tried (again) */
    delivery *qhead, *qtail; /* waiting behind cur, oldest first */
    size_t qlen;
    size_t qbytes;
    /* what webhook_status shows */
    uint64_t posted, delivered, failed, dropped, retries;
    int last_status;
    char last_error[160];
    uint64_t last_error_ms, last_success_ms;
    webhook_delivery_info finished[WEBHOOK_LIST_MAX]; /* ring */
    size_t n_finished, finished_next;
    uint64_t drops_unlogged, drop_logged_ms;
} endpoint;

/* One HTTP attempt, owned by the delivery thread. */
typedef struct xfer {
    struct xfer *snext; /* the thread's list of transfers to start */
    endpoint *ep;       /* borrowed */
    delivery *d;        /* borrowed: ep->cur */
    CURL *easy;
    struct curl_slist *headers;
    char *url; /* copies taken under the mutex: webhooks_set may replace */
    uint8_t secret[WEBHOOK_SECRET_MAX];
    size_t secret_len;
    bool allow_private;
    bool refused; /* the open_socket check refused an address */
    char refused_addr[INET6_ADDRSTRLEN];
    char errbuf[CURL_ERROR_SIZE];
} xfer;

struct webhooks {
    webhook_config cfg;
    pthread_mutex_t mu;
    pthread_t thread;
    CURLM *multi;
    bool stop;
    endpoint **buckets;
    size_t nbuckets; /* a power of two */
    size_t n_endpoints;
    endpoint *ready_head, *ready_tail;
    endpoint *doomed; /* removed with a request on the wire */
    uint64_t next_id;
};

/* What to log once the mutex is released: logging writes to stderr, which
 * may block, and the caller's thread must not wait behind it. */
typedef struct note {
    const char *event;
    enum log_level level;
    char account[WEBHOOK_ACCOUNT_MAX + 1];
    char host[256];
    char type[WEBHOOK_EVENT_TYPE_MAX + 1];
    uint64_t id;
    uint32_t attempt;
    int status;
    uint64_t n;
    char error[160];
} note;

const char *webhook_state_name(enum webhook_state s)
{
    static const char *const names[] = {"queued",    "delivering", "retrying",
                                        "delivered", "failed",     "dropped"};
    if ((unsigned)s >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[s];
}

static void note_log(const note *n)
{
    char account[WEBHOOK_ACCOUNT_MAX + 1], host[256], error[160];
    str_sanitize(account, sizeof(account), n->account);
    str_sanitize(host, sizeof(host), n->host);
    str_sanitize(error, sizeof(error), n->error);
    if (strcmp(n->event, "webhook.dropped") == 0)
        log_msg(n->level, n->event, "account=\"%s\" host=\"%s\" dropped=%" PRIu64, account, host,
                n->n);
    else if (strcmp(n->event, "webhook.delivered") == 0)
        log_msg(n->level, n->event,
                "account=\"%s\" host=\"%s\" id=%" PRIu64 " type=%s attempts=%u status=%d", account,
                host, n->id, n->type, n->attempt, n->status);
    else if (strcmp(n->event, "webhook.retry") == 0)
        log_msg(n->level, n->event,
                "account=\"%s\" host=\"%s\" id=%" PRIu64 " type=%s attempt=%u status=%d "
                "delay_ms=%" PRIu64 " error=\"%s\"",
                account, host, n->id, n->type, n->attempt, n->status, n->n, error);
    else
        log_msg(n->level, n->event,
                "account=\"%s\" host=\"%s\" id=%" PRIu64 " type=%s attempts=%u status=%d "
                "error=\"%s\"",
                account, host, n->id, n->type, n->attempt, n->status, error);
}

/* --- validation -------------------------------------------------------- */

static int check_account(const char *account, mu_error *errp)
{
    if (!account || !*account)
        return errno = EINVAL, errprintf(errp, "webhook: no account");
    if (strlen(account) > WEBHOOK_ACCOUNT_MAX)
        return errno = EINVAL,
               errprintf(errp, "webhook: account longer than %d bytes", WEBHOOK_ACCOUNT_MAX);
    return 0;
}

/* The event type becomes a header value: a token, so that no CR or LF can
 * smuggle in a header of its own. */
static int check_event_type(const char *t, mu_error *errp)
{
    if (!t || !*t || strlen(t) > WEBHOOK_EVENT_TYPE_MAX)
        return errno = EINVAL,
               errprintf(errp, "webhook: event type must be 1 to %d bytes", WEBHOOK_EVENT_TYPE_MAX);
    for (const char *p = t; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return errno = EINVAL,
                   errprintf(errp, "webhook: event type may hold only letters, digits, '.', "
                                   "'_' and '-'");
    }
    return 0;
}

/* Parse the URL with libcurl's own parser, so that what is checked is what
 * libcurl will connect to; copy its host into host (for logs). */
static int check_url(const char *url, char *host, size_t host_size, mu_error *errp)
{
    if (!url || !*url)
        return errno = EINVAL, errprintf(errp, "webhook: no URL");
    size_t n = strlen(url);
    if (n > WEBHOOK_URL_MAX)
        return errno = EINVAL,
               errprintf(errp, "webhook: URL longer than %d bytes", WEBHOOK_URL_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f)
            return errno = EINVAL,
                   errprintf(errp, "webhook: URL holds a space, control or non-ASCII byte");
    }
    CURLU *u = curl_url();
    if (!u)
        return errno = ENOMEM, errprintf(errp, "webhook: out of memory");
    char *scheme = NULL, *h = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        errno = EINVAL;
        errprintf(errp, "webhook: URL does not parse");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        errno = EINVAL;
        errprintf(errp, "webhook: URL must start with http:// or https://");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || !*h) {
        errno = EINVAL;
        errprintf(errp, "webhook: URL has no host");
        goto done;
    }
    str_copy(host, h, host_size);
    rc = 0;
done:
    curl_free(scheme);
    curl_free(h);
    curl_url_cleanup(u);
    return rc;
}

/* Addresses an account must not reach through the broker unless
 * allow_private is set (see webhook.h). */
static bool v4_private(const uint8_t a[4])
{
    return a[0] == 0 || a[0] == 10 || a[0] == 127 || (a[0] == 169 && a[1] == 254) ||
           (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
           (a[0] == 100 && (a[1] & 0xc0) == 64) ||                 /* CGNAT 100.64/10 */
           (a[0] == 198 && (a[1] & 0xfe) == 18) ||                 /* benchmarking 198.18/15 */
           (a[0] == 192 && a[1] == 0 && a[2] == 0) || a[0] >= 224; /* multicast, reserved */
}

static bool addr_private(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)ss;
        uint8_t a[4];
        memcpy(a, &s4->sin_addr, sizeof(a));
        return v4_private(a);
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)ss;
        const uint8_t *a = s6->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        static const uint8_t zero[15] = {0};
        if (memcmp(a, mapped, 12) == 0) /* ::ffff:a.b.c.d */
            return v4_private(a + 12);
        if (memcmp(a, zero, 15) == 0) /* :: and ::1 */
            return true;
        return (a[0] & 0xfe) == 0xfc ||                   /* unique local fc00::/7 */
               (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || /* link-local fe80::/10 */
               a[0] == 0xff;                              /* multicast */
    }
    return true; /* anything else (AF_UNIX) is local by definition */
}

/* --- endpoint table and lists (all under the mutex) ---------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static endpoint *lookup(webhooks *w, const char *account)
{
    endpoint *ep = w->buckets[hash_str(account) & (w->nbuckets - 1)];
    while (ep && strcmp(ep->account, account) != 0)
        ep = ep->hnext;
    return ep;
}

/* Double the table when it is as full as it has buckets. -1 on ENOMEM, the
 * table unchanged. */
static int table_reserve(webhooks *w)
{
    if (w->n_endpoints < w->nbuckets)
        return 0;
    size_t nb = w->nbuckets * 2;
    endpoint **b = mu_calloc(nb, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < w->nbuckets; i++) {
        endpoint *ep = w->buckets[i];
        while (ep) {
            endpoint *next = ep->hnext;
            size_t k = hash_str(ep->account) & (nb - 1);
            ep->hnext = b[k];
            b[k] = ep;
            ep = next;
        }
    }
    mu_free(w->buckets);
    w->buckets = b;
    w->nbuckets = nb;
    return 0;
}

static void table_unlink(webhooks *w, endpoint *ep)
{
    endpoint **pp = &w->buckets[hash_str(ep->account) & (w->nbuckets - 1)];
    while (*pp != ep)
        pp = &(*pp)->hnext;
    *pp = ep->hnext;
    ep->hnext = NULL;
    w->n_endpoints--;
}

static void ready_unlink(webhooks *w, endpoint *ep)
{
    if (!ep->on_ready)
        return;
    if (ep->rprev)
        ep->rprev->rnext = ep->rnext;
    else
        w->ready_head = ep->rnext;
    if (ep->rnext)
        ep->rnext->rprev = ep->rprev;
    else
        w->ready_tail = ep->rprev;
    ep->rprev = ep->rnext = NULL;
    ep->on_ready = false;
}

/* Put ep on the ready list if and only if it has something to send and
 * nothing on the wire. Returns true when it was just added (the thread may be
 * asleep without knowing). */
static bool ready_update(webhooks *w, endpoint *ep)
{
    bool want = !ep->removed && !ep->xfer && (ep->cur || ep->qhead);
    if (!want) {
        ready_unlink(w, ep);
        return false;
    }
    if (ep->on_ready)
        return false;
    ep->rprev = w->ready_tail;
    ep->rnext = NULL;
    if (w->ready_tail)
        w->ready_tail->rnext = ep;
    else
        w->ready_head = ep;
    w->ready_tail = ep;
    ep->on_ready = true;
    return true;
}

static void info_of(const delivery *d, enum webhook_state state, webhook_delivery_info *out)
{
    out->id = d->id;
    memcpy(out->event_type, d->type, sizeof(out->event_type));
    out->state = state;
    out->attempts = d->attempts;
    out->last_status = d->last_status;
    out->posted_ms = d->posted_ms;
    out->finished_ms = 0;
}

/* d is done (delivered, failed or dropped): remember it in the ring, free it. */
static void finish(endpoint *ep, delivery *d, enum webhook_state state)
{
    webhook_delivery_info *fi = &ep->finished[ep->finished_next];
    info_of(d, state, fi);
    fi->finished_ms = clock_wall_ms();
    ep->finished_next = (ep->finished_next + 1) % WEBHOOK_LIST_MAX;
    if (ep->n_finished < WEBHOOK_LIST_MAX)
        ep->n_finished++;
    mu_free(d);
}

static void endpoint_free(endpoint *ep)
{
    if (!ep)
        return;
    mu_free(ep->cur);
    delivery *d = ep->qhead;
    while (d) {
        delivery *next = d->next;
        mu_free(d);
        d = next;
    }
    mu_free(ep->url);
    sodium_memzero(ep->secret, sizeof(ep->secret));
    mu_free(ep);
}

static void xfer_free(xfer *x)
{
    if (!x)
        return;
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    mu_free(x->url);
    sodium_memzero(x->secret, sizeof(x->secret));
    mu_free(x);
}

/* --- one attempt (delivery thread) --------------------------------------- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb; /* the answer's status is all that counts */
}

/* Every connection goes through here, after DNS: the one place where the
 * address actually connected to is known. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    xfer *x = clientp;
    if (purpose == CURLSOCKTYPE_IPCXN && !x->allow_private) {
        /* libcurl's struct sockaddr is the head of a larger storage: copy what
         * it says it holds before looking at it as an IPv6 address. */
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        size_t n = a->addrlen < sizeof(ss) ? a->addrlen : sizeof(ss);
        memcpy(&ss, &a->addr, n);
        if (addr_private(&ss)) {
            x->refused = true;
            const void *in =
                ss.ss_family == AF_INET6
                    ? (const void *)&((const struct sockaddr_in6 *)(const void *)&ss)->sin6_addr
                    : (const void *)&((const struct sockaddr_in *)(const void *)&ss)->sin_addr;
            if ((ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ||
                !inet_ntop(ss.ss_family, in, x->refused_addr, sizeof(x->refused_addr)))
                str_copy(x->refused_addr, "?", sizeof(x->refused_addr));
            return CURL_SOCKET_BAD;
        }
    }
    /* CLOEXEC: a program the daemon starts must not inherit the connection. */
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static int add_header(struct curl_slist **list, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int add_header(struct curl_slist **list, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line))
        return -1;
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return -1;
    *list = l;
    return 0;
}

/* Sign and set up the request for x->d. Returns 0, or -1 with x->errbuf
 * saying why (the attempt then counts as failed and is retried). Runs without
 * the mutex: the delivery's body is immutable, and the URL and secret are
 * x's own copies. */
static int xfer_build(webhooks *w, xfer *x)
{
    const delivery *d = x->d;
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRIu64, clock_wall_ms() / 1000);

    /* HMAC-SHA256(secret, timestamp "." body): see webhook.h. */
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char hex[2 * crypto_auth_hmacsha256_BYTES + 1];
    crypto_auth_hmacsha256_state hs;
    crypto_auth_hmacsha256_init(&hs, x->secret, x->secret_len);
    crypto_auth_hmacsha256_update(&hs, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&hs, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&hs, d->body, d->len);
    crypto_auth_hmacsha256_final(&hs, mac);
    sodium_memzero(&hs, sizeof(hs));
    sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));

    if (add_header(&x->headers, "Content-Type: application/json") < 0 ||
        add_header(&x->headers, "X-Muster-Event: %s", d->type) < 0 ||
        add_header(&x->headers, "X-Muster-Delivery: %" PRIu64, d->id) < 0 ||
        add_header(&x->headers, "X-Muster-Timestamp: %s", ts) < 0 ||
        add_header(&x->headers, "X-Muster-Signature: sha256=%s", hex) < 0 ||
        /* No "Expect: 100-continue" round trip (libcurl asks for one before
         * a large body), which costs a second per attempt against the many
         * servers that ignore it. */
        add_header(&x->headers, "Expect:") < 0) {
        str_copy(x->errbuf, "out of memory", sizeof(x->errbuf));
        return -1;
    }
    x->easy = curl_easy_init();
    if (!x->easy) {
        str_copy(x->errbuf, "out of memory (curl_easy_init)", sizeof(x->errbuf));
        return -1;
    }
    CURL *e = x->easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_PRIVATE, (void *)x);
    SET(CURLOPT_URL, x->url);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->len);
    SET(CURLOPT_POSTFIELDS, (const void *)d->body);
    SET(CURLOPT_HTTPHEADER, x->headers);
    SET(CURLOPT_USERAGENT, "muster-webhook/" MUSTER_VERSION);
    /* One bound on the whole attempt, DNS and connecting included: a receiver
     * that accepts and never answers is cut off here. */
    SET(CURLOPT_TIMEOUT_MS, (long)w->cfg.timeout_ms);
    /* Threads and signals: libcurl must not use SIGALRM for DNS timeouts. */
    SET(CURLOPT_NOSIGNAL, 1L);
    /* A redirect is an answer like any other non-2xx (retried), never
     * followed: following would send the signed body somewhere the account
     * did not register, and around the private-address check's intent. */
    SET(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    /* Direct connections only: a proxy from the environment (http_proxy)
     * would be a surprise in a daemon, and would defeat the address check. */
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
    SET(CURLOPT_OPENSOCKETDATA, (void *)x);
    SET(CURLOPT_WRITEFUNCTION, discard);
#if LIBCURL_VERSION_NUM >= 0x075700
    /* Aborting a transfer must not wait for its DNS thread (destroy, remove). */
    SET(CURLOPT_QUICK_EXIT, 1L);
#endif
    /* TLS: libcurl's defaults verify the peer's certificate and host name;
     * nothing here turns that off. */
#undef SET
    if (rc != CURLE_OK) {
        snprintf(x->errbuf, sizeof(x->errbuf), "curl setup: %s", curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

/* splitmix64: the jitter is a function of the delivery and the attempt, so a
 * run can be replayed, yet endpoints that failed together do not retry in
 * lockstep. */
static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The wait after the attempts-th attempt failed. */
static uint64_t backoff_ms(const webhook_config *c, uint64_t id, uint32_t attempts,
                           uint64_t retry_after_ms)
{
    uint64_t d = c->backoff_min_ms;
    for (uint32_t i = 1; i < attempts && d < c->backoff_max_ms; i++)
        d *= 2;
    if (d > c->backoff_max_ms)
        d = c->backoff_max_ms;
    uint64_t half = d / 2;
    d = d - half + mix(id ^ ((uint64_t)attempts << 56)) % (half + 1);
    if (retry_after_ms > d)
        d = retry_after_ms < c->backoff_max_ms ? retry_after_ms : c->backoff_max_ms;
    return d;
}

/* Record how x's attempt ended (under the mutex); fill *n for the log. */
static void attempt_done(webhooks *w, xfer *x, bool ok, int status, const char *error,
                         uint64_t retry_after_ms, note *n)
{
    endpoint *ep = x->ep;
    delivery *d = x->d;
    ep->xfer = NULL;
    n->event = NULL;
    if (ep->removed)
        return; /* on the doomed list: freed by the thread's next round */
    d->last_status = status;
    str_copy(n->account, ep->account, sizeof(n->account));
    str_copy(n->host, ep->host, sizeof(n->host));
    str_copy(n->type, d->type, sizeof(n->type));
    n->id = d->id;
    n->attempt = d->attempts;
    n->status = status;
    str_copy(n->error, error, sizeof(n->error));
    if (ok) {
        ep->delivered++;
        ep->last_success_ms = clock_wall_ms();
        ep->cur = NULL;
        finish(ep, d, WEBHOOK_DELIVERED);
        n->event = "webhook.delivered";
        n->level = LOG_DEBUG;
    } else {
        ep->last_status = status;
        str_copy(ep->last_error, error, sizeof(ep->last_error));
        ep->last_error_ms = clock_wall_ms();
        if (d->attempts >= w->cfg.max_attempts) {
            ep->failed++;
            ep->cur = NULL;
            finish(ep, d, WEBHOOK_FAILED);
            n->event = "webhook.failed";
            n->level = LOG_WARN;
        } else {
            uint64_t delay = backoff_ms(&w->cfg, d->id, d->attempts, retry_after_ms);
            ep->due_ms = clock_mono_ms() + delay;
            n->event = "webhook.retry";
            n->level = LOG_INFO;
            n->n = delay;
        }
    }
    ready_update(w, ep);
}

/* Take the endpoints that are due off the ready list, each with a transfer
 * for its current delivery (under the mutex). Returns them as a list, and
 * sets *wait_ms to the time until the next one falls due. */
static xfer *take_due(webhooks *w, uint64_t now, long *wait_ms)
{
    xfer *start = NULL, **tail = &start;
    endpoint *ep = w->ready_head;
    while (ep) {
        endpoint *next = ep->rnext;
        if (ep->due_ms > now) {
            if ((long)(ep->due_ms - now) < *wait_ms)
                *wait_ms = (long)(ep->due_ms - now);
            ep = next;
            continue;
        }
        xfer *x = mu_calloc(1, sizeof(*x));
        char *url = mu_strdup(ep->url);
        if (!x || !url) {
            /* Try again on the safety-net tick, not in a busy loop. */
            mu_free(x);
            mu_free(url);
            *wait_ms = IDLE_POLL_MS;
            break;
        }
        if (!ep->cur) {
            ep->cur = ep->qhead;
            ep->qhead = ep->cur->next;
            if (!ep->qhead)
                ep->qtail = NULL;
            ep->cur->next = NULL;
            ep->qlen--;
            ep->qbytes -= ep->cur->len;
        }
        if (ep->cur->attempts > 0)
            ep->retries++;
        ep->cur->attempts++;
        x->ep = ep;
        x->d = ep->cur;
        x->url = url;
        memcpy(x->secret, ep->secret, ep->secret_len);
        x->secret_len = ep->secret_len;
        x->allow_private = w->cfg.allow_private;
        ep->xfer = x;
        ready_unlink(w, ep);
        *tail = x;
        tail = &x->snext;
        ep = next;
    }
    return start;
}

static void *run(void *arg)
{
    webhooks *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        endpoint *doomed = w->doomed;
        w->doomed = NULL;
        long wait_ms = IDLE_POLL_MS;
        xfer *start = take_due(w, clock_mono_ms(), &wait_ms);
        pthread_mutex_unlock(&w->mu);

        /* Removed endpoints: nobody else can reach them any more. */
        while (doomed) {
            endpoint *next = doomed->dnext;
            if (doomed->xfer) {
                curl_multi_remove_handle(w->multi, doomed->xfer->easy);
                xfer_free(doomed->xfer);
            }
            endpoint_free(doomed);
            doomed = next;
        }

        bool finished_any = false;
        while (start) {
            xfer *x = start;
            start = x->snext;
            if (xfer_build(w, x) < 0 || curl_multi_add_handle(w->multi, x->easy) != CURLM_OK) {
                if (!x->errbuf[0])
                    str_copy(x->errbuf, "curl_multi_add_handle failed", sizeof(x->errbuf));
                note n;
                pthread_mutex_lock(&w->mu);
                attempt_done(w, x, false, 0, x->errbuf, 0, &n);
                pthread_mutex_unlock(&w->mu);
                if (n.event)
                    note_log(&n);
                xfer_free(x);
                finished_any = true;
            }
        }

        int running = 0;
        curl_multi_perform(w->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(w->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *e = m->easy_handle;
            CURLcode res = m->data.result;
            char *priv = NULL;
            long code = 0;
            curl_off_t retry_after = 0;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
            xfer *x = (xfer *)(void *)priv;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after);
            curl_multi_remove_handle(w->multi, e); /* m is invalid from here */

            bool ok = res == CURLE_OK && code >= 200 && code <= 299;
            char error[160] = "";
            if (x->refused)
                snprintf(error, sizeof(error),
                         "refused to connect to %s: a private address (allow_private is off)",
                         x->refused_addr);
            else if (res != CURLE_OK)
                str_copy(error, x->errbuf[0] ? x->errbuf : curl_easy_strerror(res), sizeof(error));
            else if (!ok)
                snprintf(error, sizeof(error), "HTTP status %ld", code);
            uint64_t ra_ms =
                retry_after > 0 && retry_after < 86400 ? (uint64_t)retry_after * 1000 : 0;
            note n;
            pthread_mutex_lock(&w->mu);
            attempt_done(w, x, ok, (int)code, error, ra_ms, &n);
            pthread_mutex_unlock(&w->mu);
            if (n.event)
                note_log(&n);
            xfer_free(x);
            finished_any = true;
        }

        /* A finished attempt may have made another ready or set a retry time
         * that wait_ms does not know about: go round again at once. */
        if (!finished_any) {
            long curl_ms = -1;
            curl_multi_timeout(w->multi, &curl_ms);
            if (curl_ms >= 0 && curl_ms < wait_ms)
                wait_ms = curl_ms;
            if (wait_ms > 0)
                curl_multi_poll(w->multi, NULL, 0, (int)wait_ms, NULL);
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* --- the public functions ------------------------------------------------- */

webhooks *webhooks_create(const webhook_config *cfg, mu_error *errp)
{
    webhook_config c = {0};
    if (cfg)
        c = *cfg;
    if (!c.timeout_ms)
        c.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!c.backoff_min_ms)
        c.backoff_min_ms = DEFAULT_BACKOFF_MIN_MS;
    if (!c.backoff_max_ms)
        c.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
    if (!c.max_attempts)
        c.max_attempts = DEFAULT_MAX_ATTEMPTS;
    if (!c.queue_max)
        c.queue_max = DEFAULT_QUEUE_MAX;
    if (!c.queue_bytes_max)
        c.queue_bytes_max = DEFAULT_QUEUE_BYTES_MAX;
    if (!c.body_max)
        c.body_max = DEFAULT_BODY_MAX;
    if (c.backoff_min_ms > c.backoff_max_ms) {
        errno = EINVAL;
        errprintf(errp, "webhook: backoff_min_ms %u is over backoff_max_ms %u", c.backoff_min_ms,
                  c.backoff_max_ms);
        return NULL;
    }
    if (c.body_max > c.queue_bytes_max) {
        errno = EINVAL;
        errprintf(errp, "webhook: body_max %zu is over queue_bytes_max %zu", c.body_max,
                  c.queue_bytes_max);
        return NULL;
    }
    if (sodium_init() < 0) {
        errno = EIO;
        errprintf(errp, "webhook: libsodium failed to initialise");
        return NULL;
    }
    /* Reference-counted, and thread-safe in the libcurl builds that say
     * "threadsafe"; paired with curl_global_cleanup in webhooks_destroy. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        errno = EIO;
        errprintf(errp, "webhook: curl_global_init failed");
        return NULL;
    }
    webhooks *w = mu_calloc(1, sizeof(*w));
    if (!w)
        goto nomem;
    w->cfg = c;
    /* Ids increase, from the wall clock in microseconds: a receiver that
     * deduplicates on X-Muster-Delivery is not fooled by a broker restart. */
    w->next_id = clock_wall_ms() * 1000;
    w->nbuckets = 16;
    w->buckets = mu_calloc(w->nbuckets, sizeof(*w->buckets));
    if (!w->buckets)
        goto nomem;
    w->multi = curl_multi_init();
    if (!w->multi)
        goto nomem;
    int rc = pthread_mutex_init(&w->mu, NULL);
    if (rc != 0) {
        errno = rc;
        errprintf(errp, "webhook: pthread_mutex_init: %s", strerror(rc));
        goto error;
    }
    /* The thread takes no signal: SIGINT and SIGTERM must reach the broker's
     * loop, and a SIGPIPE from a peer's reset is just an error there. The mask
     * is inherited, so block all around pthread_create. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->thread, NULL, run, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&w->mu);
        errno = rc;
        errprintf(errp, "webhook: pthread_create: %s", strerror(rc));
        goto error;
    }
    return w;
nomem:
    errno = ENOMEM;
    errprintf(errp, "webhook: out of memory");
error:
    if (w) {
        if (w->multi)
            curl_multi_cleanup(w->multi);
        mu_free(w->buckets);
        mu_free(w);
    }
    curl_global_cleanup();
    return NULL;
}

void webhooks_destroy(webhooks *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_mutex_unlock(&w->mu);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);

    /* One thread again: abort what is on the wire, free everything. */
    endpoint *doomed = w->doomed;
    while (doomed) {
        endpoint *next = doomed->dnext;
        if (doomed->xfer) {
            curl_multi_remove_handle(w->multi, doomed->xfer->easy);
            xfer_free(doomed->xfer);
        }
        endpoint_free(doomed);
        doomed = next;
    }
    for (size_t i = 0; i < w->nbuckets; i++) {
        endpoint *ep = w->buckets[i];
        while (ep) {
            endpoint *next = ep->hnext;
            if (ep->xfer) {
                curl_multi_remove_handle(w->multi, ep->xfer->easy);
                xfer_free(ep->xfer);
            }
            endpoint_free(ep);
            ep = next;
        }
    }
    mu_free(w->buckets);
    curl_multi_cleanup(w->multi);
    pthread_mutex_destroy(&w->mu);
    mu_free(w);
    curl_global_cleanup();
}

int webhooks_set(webhooks *w, const char *account, const char *url, const uint8_t *secret,
                 size_t secret_len, mu_error *errp)
{
    char host[256];
    if (!w)
        return errno = EINVAL, errprintf(errp, "webhook: no module");
    if (check_account(account, errp) < 0 || check_url(url, host, sizeof(host), errp) < 0)
        return -1;
    if (!secret || secret_len < WEBHOOK_SECRET_MIN || secret_len > WEBHOOK_SECRET_MAX)
        return errno = EINVAL, errprintf(errp, "webhook: the secret must be %d to %d bytes",
                                         WEBHOOK_SECRET_MIN, WEBHOOK_SECRET_MAX);
    /* Allocate before taking the mutex, so that failing changes nothing. */
    char *copy = mu_strdup(url);
    endpoint *fresh = mu_calloc(1, sizeof(*fresh));
    if (!copy || !fresh) {
        mu_free(copy);
        mu_free(fresh);
        return errno = ENOMEM, errprintf(errp, "webhook: out of memory");
    }
    bool wake = false, replaced = false;
    pthread_mutex_lock(&w->mu);
    endpoint *ep = lookup(w, account);
    if (ep) {
        replaced = true;
        bool changed = strcmp(ep->url, url) != 0 || ep->secret_len != secret_len ||
                       sodium_memcmp(ep->secret, secret, secret_len) != 0;
        char *old = ep->url;
        ep->url = copy;
        copy = old; /* freed below */
        sodium_memzero(ep->secret, sizeof(ep->secret));
        /* A retry waiting for its time goes now when the URL or secret
         * changed: likely a fix for what was failing. Setting the same again
         * (a configuration reload) leaves the backoff alone. */
        if (changed && ep->cur && !ep->xfer && ep->due_ms) {
            ep->due_ms = 0;
            wake = true;
        }
    } else {
        if (table_reserve(w) < 0) {
            pthread_mutex_unlock(&w->mu);
            mu_free(copy);
            mu_free(fresh);
            return errno = ENOMEM, errprintf(errp, "webhook: out of memory");
        }
        ep = fresh;
        fresh = NULL;
        str_copy(ep->account, account, sizeof(ep->account));
        ep->url = copy;
        copy = NULL;
        size_t k = hash_str(account) & (w->nbuckets - 1);
        ep->hnext = w->buckets[k];
        w->buckets[k] = ep;
        w->n_endpoints++;
    }
    memcpy(ep->secret, secret, secret_len);
    ep->secret_len = secret_len;
    str_copy(ep->host, host, sizeof(ep->host));
    pthread_mutex_unlock(&w->mu);
    mu_free(copy);
    mu_free(fresh);
    if (wake)
        curl_multi_wakeup(w->multi);
    char acc[WEBHOOK_ACCOUNT_MAX + 1], h[256];
    str_sanitize(acc, sizeof(acc), account);
    str_sanitize(h, sizeof(h), host);
    log_info(replaced ? "webhook.replaced" : "webhook.set", "account=\"%s\" host=\"%s\"", acc, h);
    return 0;
}

int webhooks_remove(webhooks *w, const char *account)
{
    if (!w || check_account(account, NULL) < 0)
        return errno = EINVAL, -1;
    pthread_mutex_lock(&w->mu);
    endpoint *ep = lookup(w, account);
    if (!ep) {
        pthread_mutex_unlock(&w->mu);
        return errno = ENOENT, -1;
    }
    table_unlink(w, ep);
    ready_unlink(w, ep);
    ep->removed = true;
    bool on_wire = ep->xfer != NULL;
    if (on_wire) {
        /* libcurl is still sending ep->cur: the thread aborts it and frees. */
        ep->dnext = w->doomed;
        w->doomed = ep;
    }
    pthread_mutex_unlock(&w->mu);
    if (on_wire)
        curl_multi_wakeup(w->multi);
    else
        endpoint_free(ep);
    char acc[WEBHOOK_ACCOUNT_MAX + 1];
    str_sanitize(acc, sizeof(acc), account);
    log_info("webhook.removed", "account=\"%s\"", acc);
    return 0;
}

int webhooks_post(webhooks *w, const char *account, const char *event_type, const void *body,
                  size_t len, uint64_t *id, mu_error *errp)
{
    if (!w)
        return errno = EINVAL, errprintf(errp, "webhook: no module");
    if (check_account(account, errp) < 0 || check_event_type(event_type, errp) < 0)
        return -1;
    if (!body && len)
        return errno = EINVAL, errprintf(errp, "webhook: no body");
    if (len > w->cfg.body_max)
        return errno = EMSGSIZE,
               errprintf(errp, "webhook: body of %zu bytes is over %zu", len, w->cfg.body_max);
    /* Copy outside the mutex: the thread never waits behind a memcpy. */
    delivery *d = mu_malloc(sizeof(*d) + len);
    if (!d)
        return errno = ENOMEM, errprintf(errp, "webhook: out of memory");
    memset(d, 0, sizeof(*d));
    str_copy(d->type, event_type, sizeof(d->type));
    d->len = len;
    if (len)
        memcpy(d->body, body, len);
    d->posted_ms = clock_wall_ms();

    note n = {0};
    pthread_mutex_lock(&w->mu);
    endpoint *ep = lookup(w, account);
    if (!ep) {
        pthread_mutex_unlock(&w->mu);
        mu_free(d);
        return errno = ENOENT, errprintf(errp, "webhook: no endpoint for this account");
    }
    d->id = w->next_id++;
    if (ep->qtail)
        ep->qtail->next = d;
    else
        ep->qhead = d;
    ep->qtail = d;
    ep->qlen++;
    ep->qbytes += len;
    ep->posted++;
    /* Full: the oldest waiting go (the one being sent stays, and so does
     * this one, which body_max <= queue_bytes_max always lets fit). */
    while ((ep->qlen > w->cfg.queue_max || ep->qbytes > w->cfg.queue_bytes_max) && ep->qhead != d) {
        delivery *old = ep->qhead;
        ep->qhead = old->next;
        ep->qlen--;
        ep->qbytes -= old->len;
        ep->dropped++;
        ep->drops_unlogged++;
        finish(ep, old, WEBHOOK_DROPPED);
    }
    if (ep->drops_unlogged && d->posted_ms - ep->drop_logged_ms >= DROP_LOG_INTERVAL_MS) {
        n.event = "webhook.dropped";
        n.level = LOG_WARN;
        n.n = ep->drops_unlogged;
        str_copy(n.account, ep->account, sizeof(n.account));
        str_copy(n.host, ep->host, sizeof(n.host));
        ep->drops_unlogged = 0;
        ep->drop_logged_ms = d->posted_ms;
    }
    bool wake = ready_update(w, ep);
    uint64_t did = d->id;
    pthread_mutex_unlock(&w->mu);
    if (wake)
        curl_multi_wakeup(w->multi);
    if (n.event)
        note_log(&n);
    if (id)
        *id = did;
    return 0;
}

int webhooks_status(webhooks *w, const char *account, webhook_status *out)
{
    if (!w || !out || check_account(account, NULL) < 0)
        return errno = EINVAL, -1;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&w->mu);
    endpoint *ep = lookup(w, account);
    if (!ep) {
        pthread_mutex_unlock(&w->mu);
        return errno = ENOENT, -1;
    }
    out->posted = ep->posted;
    out->delivered = ep->delivered;
    out->failed = ep->failed;
    out->dropped = ep->dropped;
    out->retries = ep->retries;
    out->queued = ep->qlen + (ep->cur ? 1 : 0);
    out->queued_bytes = ep->qbytes + (ep->cur ? ep->cur->len : 0);
    out->last_status = ep->last_status;
    str_copy(out->last_error, ep->last_error, sizeof(out->last_error));
    out->last_error_ms = ep->last_error_ms;
    out->last_success_ms = ep->last_success_ms;
    if (ep->cur)
        info_of(ep->cur,
                ep->xfer                ? WEBHOOK_DELIVERING
                : ep->cur->attempts > 0 ? WEBHOOK_RETRYING
                                        : WEBHOOK_QUEUED,
                &out->pending[out->n_pending++]);
    for (const delivery *d = ep->qhead; d && out->n_pending < WEBHOOK_LIST_MAX; d = d->next)
        info_of(d, WEBHOOK_QUEUED, &out->pending[out->n_pending++]);
    for (size_t i = 0; i < ep->n_finished; i++) {
        size_t k = (ep->finished_next + WEBHOOK_LIST_MAX - 1 - i) % WEBHOOK_LIST_MAX;
        out->finished[out->n_finished++] = ep->finished[k];
    }
    pthread_mutex_unlock(&w->mu);
    return 0;
}
