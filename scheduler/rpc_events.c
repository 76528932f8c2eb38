/* rpc_events.c - events for one client, filtered by its account.
 *
 * The PUB socket cannot tell its subscribers apart, so over CURVE it is for
 * operators and admins only (ZAP domain "events", auth.c). Everyone else
 * subscribes on the client endpoint (SubscribeRequest): the broker keeps
 * each subscription (the connection's routing id, its account, its topic
 * prefixes, a lease) and sends each event it publishes to the subscribers
 * whose account may see it: worker events to all, a cluster's and its
 * tasks' events to its owner (and to operators and admins). Events leave in
 * the batch's outbox like the PUB ones, after their change is saved.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "broker_int.h"
#include "log.h"
#include "strutil.h"
#include "wire.h"

#define SUBS_MAX       1024
#define SUB_TOPICS_MAX 8
#define SUB_TOPIC_LEN  80
#define LEASE_DEFAULT  30000u
#define LEASE_MAX      600000u

typedef struct sub {
    zs_peer peer;
    char account[ACCOUNT_NAME_MAX]; /* "" in development mode */
    bool sees_all;
    char topics[SUB_TOPICS_MAX][SUB_TOPIC_LEN];
    uint32_t n_topics;
    uint64_t until; /* lease end */
} sub;

struct event_subs {
    sub *s;
    size_t n, cap;
};

static struct event_subs *subs_of(broker *b)
{
    if (!b->subs)
        b->subs = mu_calloc(1, sizeof(*b->subs));
    return b->subs;
}

void events_free(broker *b)
{
    if (!b->subs)
        return;
    mu_free(b->subs->s);
    mu_free(b->subs);
    b->subs = NULL;
}

static sub *find_sub(struct event_subs *es, const zs_peer *peer)
{
    for (size_t i = 0; i < es->n; i++)
        if (es->s[i].peer.len == peer->len && !memcmp(es->s[i].peer.id, peer->id, peer->len))
            return &es->s[i];
    return NULL;
}

void rpc_subscribe(broker *b, const request *rq)
{
    const Muster__SubscribeRequest *q = rq->env->subscribe;
    struct event_subs *es = subs_of(b);
    if (!es) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    if (q->n_topics > SUB_TOPICS_MAX) {
        char why[96];
        snprintf(why, sizeof(why), "at most %d topic prefixes per subscription", SUB_TOPICS_MAX);
        broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, why);
        return;
    }
    for (size_t i = 0; i < q->n_topics; i++)
        if (strlen(q->topics[i]) >= SUB_TOPIC_LEN) {
            broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, "topic prefix too long");
            return;
        }
    if (q->lease_ms > LEASE_MAX) {
        broker_error(b, rq, MUSTER__STATUS__STATUS_BAD_REQUEST, "lease_ms over 600000");
        return;
    }
    uint32_t lease = q->lease_ms ? q->lease_ms : LEASE_DEFAULT;
    sub *s = find_sub(es, &rq->msg->peer);
    if (!s) {
        /* Lapsed subscriptions make room first. */
        size_t k = 0;
        for (size_t i = 0; i < es->n; i++)
            if (es->s[i].until > b->now)
                es->s[k++] = es->s[i];
        es->n = k;
        if (es->n >= SUBS_MAX) {
            broker_error(b, rq, MUSTER__STATUS__STATUS_UNAVAILABLE,
                         "too many event subscriptions: try again later");
            return;
        }
        if (mu_grow((void **)&es->s, &es->cap, es->n + 1, sizeof(sub)) < 0) {
            broker_error(b, rq, MUSTER__STATUS__STATUS_INTERNAL, "out of memory");
            return;
        }
        s = &es->s[es->n++];
        memset(s, 0, sizeof(*s));
        s->peer = rq->msg->peer;
    }
    const account *a = broker_account(b, rq);
    str_copy(s->account, a ? a->name : "", sizeof(s->account));
    s->sees_all = broker_sees_all(b, rq);
    s->n_topics = (uint32_t)q->n_topics;
    for (size_t i = 0; i < q->n_topics; i++)
        str_copy(s->topics[i], q->topics[i], sizeof(s->topics[i]));
    s->until = b->now + lease;
    Muster__SubscribeReply sr = MUSTER__SUBSCRIBE_REPLY__INIT;
    sr.lease_ms = lease;
    Muster__Envelope reply;
    wire_envelope_init(&reply, 0);
    reply.body_case = MUSTER__ENVELOPE__BODY_SUBSCRIBE_REPLY;
    reply.subscribe_reply = &sr;
    broker_reply(b, rq, &reply);
}

static bool topic_wanted(const sub *s, const char *topic)
{
    if (!s->n_topics)
        return true;
    for (uint32_t i = 0; i < s->n_topics; i++)
        if (!strncmp(topic, s->topics[i], strlen(s->topics[i])))
            return true;
    return false;
}

void events_deliver(broker *b, const char *topic, const Muster__Envelope *env)
{
    struct event_subs *es = b->subs;
    if (!es || !es->n)
        return;
    /* Whose is it: a cluster's events (and its tasks') are its owner's, */
    const char *owner = NULL;
    const Muster__Event *ev = env->event;
    mu_id cid;
    if (ev->cluster_id && *ev->cluster_id && id_parse(ev->cluster_id, &cid) == 0) {
        const cluster *c = sched_cluster_get(b->core, &cid);
        owner = c ? c->owner : "";
    } else if (ev->reservation_id && *ev->reservation_id &&
               id_parse(ev->reservation_id, &cid) == 0) {
        /* and a reservation's are its owner's */
        const reservation *r = sched_reservation_get(b->core, &cid);
        owner = r ? r->owner : "";
    }
    for (size_t i = 0; i < es->n; i++) {
        const sub *s = &es->s[i];
        if (s->until <= b->now || !topic_wanted(s, topic))
            continue;
        if (owner && b->curve && !s->sees_all && strcmp(owner, s->account))
            continue;
        persist_queue(b, OUT_CLIENT, &s->peer, NULL, env, false);
    }
}
