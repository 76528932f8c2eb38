/* webhook.h - signed HTTP deliveries of broker events, one endpoint per
 * account, retried with backoff on a thread of their own.
 *
 * The broker is single-threaded and must never wait on a customer's web
 * server, so webhooks_post() only copies the body into the endpoint's queue
 * under a mutex and, when the endpoint was idle, wakes the delivery thread.
 * That thread drives every transfer through one libcurl multi handle: each
 * endpoint has at most one request on the wire (deliveries to one endpoint
 * arrive in the order they were posted), and a slow or dead endpoint holds
 * up only its own queue.
 *
 * What a receiver gets, for every attempt:
 *
 *   POST <url>
 *   Content-Type: application/json
 *   X-Muster-Event: <event type>
 *   X-Muster-Delivery: <delivery id, decimal; the same on every retry>
 *   X-Muster-Timestamp: <UNIX seconds when this attempt was signed>
 *   X-Muster-Signature: sha256=<lowercase hex of HMAC-SHA256(secret, T "." body)>
 *
 * where T is the X-Muster-Timestamp value as sent (decimal ASCII) and body is
 * the raw request body. To verify: recompute the HMAC with the shared secret
 * over those exact bytes, compare in constant time, and reject a timestamp
 * further than a few minutes from the receiver's clock (that is what stops a
 * captured request from being replayed later; the timestamp is fresh on each
 * retry, so a late retry still passes). A receiver that may see a retry of a
 * delivery it already handled (its 2xx answer lost) deduplicates on
 * X-Muster-Delivery.
 *
 * A 2xx answer delivers; anything else (3xx: redirects are not followed; 4xx,
 * 5xx, a refused or reset connection, a timeout) is retried after
 * min(backoff_max, backoff_min * 2^(attempt-1)), jittered into its upper half
 * (deterministically, from the delivery id), or after the receiver's
 * Retry-After when that is longer (still capped), until max_attempts attempts
 * have been made; then the delivery has failed and the next one goes.
 *
 * Deliveries live in memory only: destroying the module (or restarting the
 * broker) loses those not yet delivered. Delivery ids increase from the wall
 * clock in microseconds at webhooks_create, so they do not repeat across
 * restarts (and stay below 2^53 for a JSON reader until the 2250s).
 *
 * Every function may be called from any thread, concurrently, except
 * webhooks_destroy, which must be the last call.
 */
#ifndef MUSTERD_WEBHOOK_H
#define MUSTERD_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Longest account name (bytes, without the NUL): a CURVE key in Z85 is 40. */
#define WEBHOOK_ACCOUNT_MAX 127
/* Longest event type; [A-Za-z0-9._-] only, as it goes into a header. */
#define WEBHOOK_EVENT_TYPE_MAX 63
/* Longest URL accepted. */
#define WEBHOOK_URL_MAX 2048
/* Secret length bounds: shorter secrets are guessable; longer ones add
 * nothing (HMAC-SHA256 hashes a key over 64 bytes down to 32 anyway). */
#define WEBHOOK_SECRET_MIN 16
#define WEBHOOK_SECRET_MAX 64
/* Deliveries listed in a status: pending ones, and finished ones. */
#define WEBHOOK_LIST_MAX 8

/* Every field at 0 takes the default in brackets. */
typedef struct webhook_config {
    uint32_t timeout_ms;     /* one HTTP attempt, connecting included [5000] */
    uint32_t backoff_min_ms; /* delay before the first retry [500] */
    uint32_t backoff_max_ms; /* the delay doubles up to this [60000] */
    uint32_t max_attempts;   /* attempts before a delivery has failed [8] */
    size_t queue_max;        /* deliveries waiting behind the one being sent, per
                              * endpoint; beyond it the oldest waiting ones are
                              * dropped, and counted [10000] */
    size_t queue_bytes_max;  /* the same bound on their bodies' bytes [16 MiB] */
    size_t body_max;         /* larger bodies are refused by webhooks_post [1 MiB] */
    /* Deliver to loopback, private (RFC 1918, ULA), link-local (cloud metadata
     * at 169.254.169.254), CGNAT, multicast and unspecified addresses. Off by
     * default: an account must not be able to make the broker POST into the
     * network it runs in. Checked on the address actually connected to, after
     * DNS, so a name that resolves to such an address is refused too. Tests
     * and single-host development turn it on. */
    bool allow_private;
} webhook_config;

typedef struct webhooks webhooks;

enum webhook_state {
    WEBHOOK_QUEUED = 0, /* waiting behind others, or for the thread */
    WEBHOOK_DELIVERING, /* a request is on the wire */
    WEBHOOK_RETRYING,   /* an attempt failed; waiting for the next */
    WEBHOOK_DELIVERED,  /* a 2xx answer came back */
    WEBHOOK_FAILED,     /* max_attempts attempts failed */
    WEBHOOK_DROPPED,    /* pushed out of a full queue before delivery */
};

/* "queued", "delivering", ...; "?" for a value out of range. */
const char *webhook_state_name(enum webhook_state s);

typedef struct webhook_delivery_info {
    uint64_t id;
    char event_type[WEBHOOK_EVENT_TYPE_MAX + 1];
    enum webhook_state state;
    uint32_t attempts;    /* made so far */
    int last_status;      /* HTTP status of the latest attempt; 0: no answer */
    uint64_t posted_ms;   /* wall clock, when webhooks_post queued it */
    uint64_t finished_ms; /* wall clock, when it was delivered, failed or
                           * dropped; 0 while pending */
} webhook_delivery_info;

typedef struct webhook_status {
    /* Totals since the endpoint was first set (webhooks_set replacing the URL
     * or secret keeps them). */
    uint64_t posted;
    uint64_t delivered;
    uint64_t failed;
    uint64_t dropped;
    uint64_t retries; /* attempts beyond each delivery's first */
    /* Now. */
    uint64_t queued;       /* pending: being sent, retrying or waiting */
    uint64_t queued_bytes; /* their bodies */
    /* The latest attempt that did not deliver. */
    int last_status;      /* its HTTP status; 0: no answer (see last_error) */
    char last_error[160]; /* why, for a person; "" when none yet */
    uint64_t last_error_ms;
    uint64_t last_success_ms; /* wall clock; 0: never */
    /* The oldest pending deliveries, in delivery order (the first is the one
     * being sent or retried), then the latest finished ones, newest first. */
    size_t n_pending;
    webhook_delivery_info pending[WEBHOOK_LIST_MAX];
    size_t n_finished;
    webhook_delivery_info finished[WEBHOOK_LIST_MAX];
} webhook_status;

/* Start the module and its delivery thread. cfg may be NULL (all defaults).
 * Returns NULL with errno set (EINVAL: backoff_min_ms > backoff_max_ms;
 * ENOMEM; or what libcurl or pthread_create failed with) and errp filled. */
webhooks *webhooks_create(const webhook_config *cfg, mu_error *errp);

/* Stop the thread, abort transfers in progress and free everything,
 * pending deliveries included (they are lost). Returns without waiting on
 * any receiver: the thread never blocks on the network. Accepts NULL. */
void webhooks_destroy(webhooks *w);

/* Register the endpoint of an account, or replace its URL and secret (the
 * queue and totals are kept; a request already on the wire finishes with the
 * old ones, the next attempt uses the new). url: http:// or https:// with a
 * host, at most WEBHOOK_URL_MAX bytes, no spaces or control characters;
 * secret: WEBHOOK_SECRET_MIN..WEBHOOK_SECRET_MAX bytes, copied. Returns 0, or
 * -1 with errno EINVAL (bad argument, errp says which) or ENOMEM. */
int webhooks_set(webhooks *w, const char *account, const char *url, const uint8_t *secret,
                 size_t secret_len, mu_error *errp);

/* Forget an account's endpoint: its pending deliveries are discarded and a
 * request on the wire is aborted. Returns 0, or -1 with errno ENOENT. */
int webhooks_remove(webhooks *w, const char *account);

/* Queue one delivery for an account's endpoint; the body (len bytes, JSON) is
 * copied. Never waits on the network: takes the mutex for a copy and a list
 * append, and wakes the thread only if the endpoint was idle. When the queue
 * is full the oldest waiting deliveries are dropped (counted in
 * webhook_status.dropped and logged), never this one. Sets *id (when id is
 * not NULL) to the delivery id the receiver will see. Returns 0, or -1 with
 * errno ENOENT (no endpoint for the account), EINVAL (bad event type),
 * EMSGSIZE (body over body_max) or ENOMEM, and errp filled. */
int webhooks_post(webhooks *w, const char *account, const char *event_type, const void *body,
                  size_t len, uint64_t *id, mu_error *errp);

/* Fill *out with an account's delivery state. Returns 0, or -1 with errno
 * ENOENT (no endpoint for the account). */
int webhooks_status(webhooks *w, const char *account, webhook_status *out);

#endif
