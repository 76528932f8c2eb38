/* test_reroute.c - a cluster keeps its size when members fail: a member
 * that goes offline (goodbye, silence, a closed connection past its grace)
 * or fails verification has its seat vacated and filled at once by a
 * replacement meeting the same request (same region first), never by a
 * worker the cluster lost before; seats that cannot be filled are tried
 * again every reroute_retry_ms until they are, or the owner shrinks the
 * cluster. Every step is followed by sched_check.
 *
 * Time is virtual: the test advances it to the next core deadline or the
 * next heartbeat of the workers still running (every 1000 ms, on the
 * second), whichever comes first. Simulated agents acknowledge a join 40 ms
 * after the notice (20 ms each way) when a test asks them to, and answer
 * verification challenges at their speed with the real proof of work.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pow.h"
#include "schedfix.h"
#include "testutil.h"

#define T0        1000000000ull
#define HB_MS     1000u
#define ONE_WAY   20u /* ms, agent <-> broker, in this file */
#define MAXW      32
#define MAXLOG    512
#define NOBODY    UINT32_MAX
#define EUROPE_NA (schedfix_region(R->f, "europe") | schedfix_region(R->f, "north-america"))

typedef struct rec_event {
    uint64_t at;
    char topic[32];
    char detail[64];
    uint32_t worker; /* registry slot or NOBODY */
    cluster_state state;
} rec_event;

typedef struct rec_state {
    uint64_t at;
    uint32_t worker;
    worker_state from, to;
    char reason[64];
} rec_state;

typedef struct rec_notice {
    uint64_t at;
    uint32_t worker;
    bool join;
} rec_notice;

/* A simulated agent. */
typedef struct agent {
    bool used, alive, answers;
    double speed; /* of its claim, for verification */
    mu_id id;
    const worker *w;
    /* the challenge it is answering */
    uint64_t ch;
    pow_params p;
    uint32_t expected;
    uint64_t sent;
    bool light;
    pow_tree *tree;
    uint8_t root[POW_HASH_BYTES];
    uint32_t idx[POW_MAX_SPOT], n_idx;
    uint64_t commit_at, proofs_at; /* UINT64_MAX: nothing to send */
    unsigned challenges;
} agent;

typedef struct rr {
    schedfix *f;
    sched *s;
    uint64_t now;
    agent a[MAXW];
    uint32_t slot_to_n[MAXW * 4];
    rec_event ev[MAXLOG];
    size_t n_ev;
    rec_state st[MAXLOG];
    size_t n_st;
    rec_notice no[MAXLOG];
    size_t n_no;
    uint64_t ticks[MAXLOG]; /* times the core was ticked at, the latest MAXLOG */
    size_t n_ticks;
    unsigned verdicts;
} rr;

/* --- what the core tells us -------------------------------------------------------------- */

static void on_event(void *arg, const cluster *c, const char *topic, const worker *w,
                     const char *detail)
{
    rr *R = arg;
    assert_true(R->n_ev < MAXLOG);
    rec_event *e = &R->ev[R->n_ev++];
    e->at = R->now;
    snprintf(e->topic, sizeof(e->topic), "%s", topic);
    snprintf(e->detail, sizeof(e->detail), "%s", detail ? detail : "");
    e->worker = w ? w->slot : NOBODY;
    e->state = c->state;
}

static void on_state(void *arg, const worker *w, worker_state from, worker_state to,
                     const char *reason)
{
    rr *R = arg;
    assert_true(R->n_st < MAXLOG);
    rec_state *s = &R->st[R->n_st++];
    s->at = R->now;
    s->worker = w->slot;
    s->from = from;
    s->to = to;
    snprintf(s->reason, sizeof(s->reason), "%s", reason ? reason : "");
}

static void on_notice(void *arg, const cluster *c, const worker *w, bool join)
{
    (void)c;
    rr *R = arg;
    assert_true(R->n_no < MAXLOG);
    R->no[R->n_no++] = (rec_notice){R->now, w->slot, join};
}

static agent *agent_of(rr *R, const worker *w)
{
    assert_true(w->slot < MAXW * 4);
    uint32_t n = R->slot_to_n[w->slot];
    assert_true(n < MAXW);
    return &R->a[n];
}

static pow_tree *solve(const pow_params *p)
{
    uint8_t *leaves = malloc((size_t)p->leaves * POW_HASH_BYTES);
    uint64_t *scratch = malloc((size_t)p->leaf_words * sizeof(uint64_t));
    assert_true(leaves && scratch);
    for (uint32_t i = 0; i < p->leaves; i++)
        pow_leaf(p, i, scratch, leaves + (size_t)i * POW_HASH_BYTES);
    mu_error err;
    pow_tree *t = pow_tree_create(p, leaves, &err);
    if (!t)
        fail_msg("pow_tree_create: %s", err.text);
    free(scratch);
    free(leaves);
    return t;
}

static void on_challenge(void *arg, const worker *w, uint64_t id, const pow_params *p,
                         uint32_t expected_ms)
{
    rr *R = arg;
    agent *a = agent_of(R, w);
    a->challenges++;
    a->ch = id;
    a->p = *p;
    a->expected = expected_ms;
    a->sent = R->now;
    a->light = w->alloc != WORKER_FREE;
    pow_tree_destroy(a->tree);
    a->tree = NULL;
    a->commit_at = a->proofs_at = UINT64_MAX;
    if (!a->answers)
        return;
    a->tree = solve(p);
    pow_tree_root(a->tree, a->root);
    a->commit_at = R->now + ONE_WAY + (uint64_t)(expected_ms / a->speed) + ONE_WAY;
}

static void on_spots(void *arg, const worker *w, uint64_t id, const uint32_t *idx, uint32_t n)
{
    rr *R = arg;
    agent *a = agent_of(R, w);
    assert_int_equal(id, a->ch);
    memcpy(a->idx, idx, n * sizeof(*idx));
    a->n_idx = n;
    if (a->answers)
        a->proofs_at = R->now + 2 * ONE_WAY;
}

static void on_verdict(void *arg, const worker *w, const verify_result *r, verify_state from,
                       verify_state to)
{
    (void)w;
    (void)r;
    (void)from;
    (void)to;
    rr *R = arg;
    R->verdicts++;
}

/* --- the fixture ---------------------------------------------------------------------------- */

static rr *rr_create(const verify_config *vc)
{
    rr *R = calloc(1, sizeof(*R));
    assert_non_null(R);
    R->now = T0;
    for (size_t i = 0; i < MAXW * 4; i++)
        R->slot_to_n[i] = NOBODY;
    schedfix *f = test_calloc(1, sizeof(*f));
    f->cat = test_catalog();
    f->regions = test_regions();
    tiers_default(&f->tiers);
    /* the defaults: 1 s heartbeats, offline after 3, reconnect grace 1.5
     * intervals, reroute retried every second */
    sched_config cfg = {.reg = {.heartbeat_interval_ms = HB_MS,
                                .liveness = 3,
                                .cat = f->cat,
                                .regions = f->regions,
                                .tiers = &f->tiers}};
    if (vc)
        cfg.verify = *vc;
    sched_ops ops = {.worker_state = on_state,
                     .cluster_event = on_event,
                     .member_notice = on_notice,
                     .challenge = on_challenge,
                     .spots = on_spots,
                     .verdict = on_verdict,
                     .arg = R};
    mu_error err;
    f->s = sched_create(&cfg, &ops, &err);
    if (!f->s)
        fail_msg("sched_create: %s", err.text);
    R->f = f;
    R->s = f->s;
    return R;
}

static void rr_destroy(rr *R)
{
    for (size_t i = 0; i < MAXW; i++)
        pow_tree_destroy(R->a[i].tree);
    schedfix_destroy(R->f);
    free(R);
}

static void check(const rr *R)
{
    mu_error err;
    if (sched_check(R->s, &err) < 0)
        fail_msg("invariant at +%llu ms: %s", (unsigned long long)(R->now - T0), err.text);
}

/* Register (or re-register) agent n: one GPU of MODEL on PCI bus BUS, in
 * COUNTRY, at PRICE micro-USD per GPU hour. */
static const worker *add_bus(rr *R, unsigned n, const char *model, const char *country,
                             uint32_t price, unsigned bus)
{
    assert_true(n < MAXW);
    char id[ID_TEXT_LEN], host[32], busid[16], fp[17], addr[32];
    schedfix_id(n, id);
    snprintf(host, sizeof(host), "w%u", n);
    snprintf(busid, sizeof(busid), "0000:%02x:00.0", bus & 0xff);
    snprintf(fp, sizeof(fp), "host%u", n);
    snprintf(addr, sizeof(addr), "192.0.2.%u", n + 1);
    worker_device_spec dev = {.model_claim = model, .pci_bus_id = busid};
    worker_spec spec = {.id = id,
                        .hostname = host,
                        .fingerprint = fp,
                        .address = addr,
                        .devices = &dev,
                        .n_devices = 1,
                        .country = country,
                        .bw_down_mbps = 500,
                        .bw_up_mbps = 400,
                        .price_uusd = price};
    agent *a = &R->a[n];
    if (!a->used) {
        memset(a, 0, sizeof(*a));
        a->used = true;
        a->answers = true;
        a->speed = 1.0;
        a->commit_at = a->proofs_at = UINT64_MAX;
    }
    a->alive = true;
    mu_error err;
    const worker *w = sched_register(R->s, &spec, R->now, &err);
    if (!w)
        fail_msg("register %u: %s", n, err.text);
    a->w = w;
    a->id = w->id;
    R->slot_to_n[w->slot] = n;
    check(R);
    return w;
}

static const worker *add(rr *R, unsigned n, const char *country, uint32_t price)
{
    return add_bus(R, n, "RTX 4090", country, price, 1);
}

static unsigned n_of(const rr *R, uint32_t slot)
{
    return slot < MAXW * 4 ? R->slot_to_n[slot] : NOBODY;
}

static uint32_t slot_of(const rr *R, unsigned n)
{
    return R->a[n].w->slot;
}

/* Deliver what the agents have to send at R->now. */
static void agents_send(rr *R)
{
    for (unsigned n = 0; n < MAXW; n++) {
        agent *a = &R->a[n];
        if (!a->used)
            continue;
        mu_error err;
        if (a->commit_at <= R->now) {
            a->commit_at = UINT64_MAX;
            if (a->alive)
                sched_verify_commit(R->s, &a->id, a->ch, a->root, R->now, &err);
            check(R);
        }
        if (a->proofs_at <= R->now) {
            a->proofs_at = UINT64_MAX;
            if (!a->alive || !a->tree)
                continue;
            uint32_t depth = pow_tree_depth(a->tree);
            size_t ll = (size_t)a->n_idx * POW_HASH_BYTES, pl = ll * depth;
            uint8_t *leaves = malloc(ll), *paths = malloc(pl);
            assert_true(leaves && paths);
            for (uint32_t k = 0; k < a->n_idx; k++) {
                memcpy(leaves + (size_t)k * POW_HASH_BYTES, pow_tree_leaf(a->tree, a->idx[k]),
                       POW_HASH_BYTES);
                pow_tree_path(a->tree, a->idx[k], paths + (size_t)k * depth * POW_HASH_BYTES);
            }
            sched_verify_proofs(R->s, &a->id, a->ch, leaves, ll, paths, pl, R->now, &err);
            free(leaves);
            free(paths);
            check(R);
        }
    }
}

static uint64_t next_send(const rr *R)
{
    uint64_t t = UINT64_MAX;
    for (unsigned n = 0; n < MAXW; n++) {
        const agent *a = &R->a[n];
        if (!a->used)
            continue;
        if (a->commit_at < t)
            t = a->commit_at;
        if (a->proofs_at < t)
            t = a->proofs_at;
    }
    return t;
}

/* Advance to `until`: the live agents heartbeat on every whole second
 * (counted from T0), agents send their answers when due, and the core is
 * ticked at each of its deadlines. */
static void advance(rr *R, uint64_t until)
{
    if (until < R->now)
        until = R->now;
    unsigned spin = 0;
    for (;;) {
        uint64_t hb = T0 + ((R->now - T0) / HB_MS + 1) * HB_MS;
        uint64_t dl = sched_next_deadline(R->s);
        uint64_t sd = next_send(R);
        uint64_t t = hb < dl ? hb : dl;
        t = sd < t ? sd : t;
        if (t > until)
            break;
        if (t <= R->now) {
            /* a deadline that a tick does not move would spin forever */
            if (++spin > 1000)
                fail_msg("sched_next_deadline stuck at +%llu ms (now +%llu ms, verifier's %llu)",
                         (unsigned long long)(dl - T0), (unsigned long long)(R->now - T0),
                         (unsigned long long)(verifier_next_deadline(sched_verifier(R->s)) - T0));
            t = R->now;
        } else {
            spin = 0;
        }
        R->now = t;
        if (sd <= t)
            agents_send(R);
        if (t == hb)
            for (unsigned n = 0; n < MAXW; n++)
                if (R->a[n].used && R->a[n].alive)
                    sched_touch(R->s, &R->a[n].id, t);
        if (dl <= t || t == hb) {
            sched_tick(R->s, t);
            R->ticks[R->n_ticks++ % MAXLOG] = t;
        }
        check(R);
    }
    R->now = until;
    sched_tick(R->s, until);
    check(R);
}

static bool ticked_at(const rr *R, uint64_t t)
{
    for (size_t i = 0; i < R->n_ticks && i < MAXLOG; i++)
        if (R->ticks[i] == t)
            return true;
    return false;
}

/* The i-th event with this topic since event number `from` (NULL: none). */
static const rec_event *find_event(const rr *R, size_t from, const char *topic)
{
    for (size_t i = from; i < R->n_ev; i++)
        if (!strcmp(R->ev[i].topic, topic))
            return &R->ev[i];
    return NULL;
}

static size_t count_events(const rr *R, size_t from, const char *topic)
{
    size_t n = 0;
    for (size_t i = from; i < R->n_ev; i++)
        n += !strcmp(R->ev[i].topic, topic);
    return n;
}

static mu_id cid(unsigned n)
{
    char text[ID_TEXT_LEN];
    snprintf(text, sizeof(text), "c%07x-0000-4000-8000-000000000000", n);
    mu_id id;
    assert_int_equal(id_parse(text, &id), 0);
    return id;
}

/* A cluster of `workers` x 1 RTX 4090 in `regions` (0: any), packed. */
static const cluster *create(rr *R, unsigned n, unsigned workers, uint64_t regions)
{
    match_request rq = schedfix_request(R->f, "RTX 4090", 1, workers);
    rq.regions = regions;
    rq.placement = PLACE_PACK;
    mu_id id = cid(n);
    match_explain why;
    mu_error err;
    const cluster *c = sched_cluster_create(R->s, &id, "owner", &rq, 24, R->now, &why, &err);
    if (!c)
        fail_msg("cluster %u: %s", n, errno == ENOSPC ? why.text : err.text);
    check(R);
    return c;
}

static void ack(rr *R, const cluster *c, unsigned n)
{
    mu_error err;
    if (sched_cluster_ack(R->s, &c->id, &R->a[n].id, R->now, &err) < 0)
        fail_msg("ack of %u: %s", n, err.text);
    check(R);
}

static void ack_all(rr *R, const cluster *c)
{
    for (uint32_t i = 0; i < c->n_members; i++)
        if (c->members[i].worker != NOBODY && !c->members[i].acked)
            ack(R, c, n_of(R, c->members[i].worker));
}

static bool member(const cluster *c, uint32_t slot)
{
    for (uint32_t i = 0; i < c->n_members; i++)
        if (c->members[i].worker == slot)
            return true;
    return false;
}

static uint64_t price_of(const rr *R, const cluster *c)
{
    uint64_t p = 0;
    for (uint32_t i = 0; i < c->n_members; i++)
        if (c->members[i].worker != NOBODY) {
            const worker *w = registry_at(sched_registry_const(R->s), c->members[i].worker);
            p += (uint64_t)w->price_uusd * w->gpu_count;
        }
    return p;
}

static void goodbye(rr *R, unsigned n)
{
    R->a[n].alive = false;
    assert_int_equal(sched_goodbye(R->s, &R->a[n].id, R->now, "agent stopped"), 0);
    check(R);
}

/* --- a member goes offline -------------------------------------------------------------------- */

/* Members in Germany; a spare in France (europe, dearer) and one in the US
 * (cheapest of all): the replacement comes from the lost member's region. */
static void test_goodbye_replaced_same_region(void **state)
{
    (void)state;
    rr *R = rr_create(NULL);
    add(R, 0, "DE", 100000);
    add(R, 1, "DE", 110000);
    add(R, 2, "FR", 300000);
    add(R, 3, "US", 50000);
    const cluster *c = create(R, 1, 2, EUROPE_NA);
    assert_true(member(c, slot_of(R, 0)) && member(c, slot_of(R, 1)));
    assert_int_equal(c->price_uusd_per_hour, 210000);
    ack_all(R, c);
    assert_int_equal(c->state, CLUSTER_READY);
    advance(R, T0 + 5500);
    assert_int_equal(c->state, CLUSTER_READY);

    size_t e0 = R->n_ev, n0 = R->n_no;
    goodbye(R, 1);
    const rec_event *lost = find_event(R, e0, "cluster.member_lost");
    const rec_event *rep = find_event(R, e0, "cluster.member_replaced");
    assert_non_null(lost);
    assert_int_equal(lost->worker, slot_of(R, 1));
    assert_non_null(find_event(R, e0, "cluster.degraded"));
    assert_non_null(rep);
    assert_int_equal(rep->worker, slot_of(R, 2)); /* France, not the cheaper US one */
    assert_int_equal(rep->at, R->now);
    assert_int_equal(rep->state, CLUSTER_DEGRADED); /* until the replacement acknowledges */
    assert_int_equal(c->replaced, 1);
    assert_true(member(c, slot_of(R, 2)) && !member(c, slot_of(R, 1)));
    assert_int_equal(c->price_uusd_per_hour, 400000);
    assert_int_equal(c->price_uusd_per_hour, price_of(R, c));
    assert_int_equal(R->a[2].w->alloc, WORKER_ALLOCATED);
    assert_int_equal(R->a[3].w->alloc, WORKER_FREE);
    /* the replacement is told to join; the one gone is not told anything */
    assert_int_equal(R->n_no, n0 + 1);
    assert_true(R->no[n0].join && R->no[n0].worker == slot_of(R, 2));
    R->now += 2 * ONE_WAY;
    ack(R, c, 2);
    assert_int_equal(c->state, CLUSTER_READY);
    assert_non_null(find_event(R, e0, "cluster.ready"));
    /* its history says what happened */
    bool seen = false;
    for (uint32_t i = 0; i < c->n_history && i < CLUSTER_HISTORY; i++) {
        const cluster_change *ch = cluster_history_at(c, i);
        assert_non_null(ch);
        seen |= ch && !strcmp(ch->what, "replaced");
    }
    assert_true(seen);
    rr_destroy(R);
}

static void test_goodbye_replaced_other_region(void **state)
{
    (void)state;
    rr *R = rr_create(NULL);
    add(R, 0, "DE", 100000);
    add(R, 1, "DE", 110000);
    add(R, 3, "US", 300000);
    add(R, 4, "JP", 10000); /* asia: not allowed by the request */
    const cluster *c = create(R, 1, 2, EUROPE_NA);
    ack_all(R, c);
    size_t e0 = R->n_ev;
    R->now += 3000;
    goodbye(R, 0);
    const rec_event *rep = find_event(R, e0, "cluster.member_replaced");
    assert_non_null(rep);
    assert_int_equal(rep->worker, slot_of(R, 3));
    R->now += 2 * ONE_WAY;
    ack(R, c, 3);
    assert_int_equal(c->state, CLUSTER_READY);
    assert_int_equal(c->price_uusd_per_hour, 410000);
    rr_destroy(R);
}

/* Silence: the member stops heartbeating; the ticks find it suspect after
 * 1.5 intervals and offline after `liveness` intervals, and it is replaced
 * in that same tick. */
static void test_silent_member_replaced(void **state)
{
    (void)state;
    rr *R = rr_create(NULL);
    add(R, 0, "DE", 100000);
    add(R, 1, "DE", 110000);
    add(R, 2, "DE", 300000);
    const cluster *c = create(R, 1, 2, 0);
    ack_all(R, c);
    advance(R, T0 + 4000); /* the last heartbeat of 1 */
    uint64_t last = R->now;
    R->a[1].alive = false; /* the host loses power: no goodbye, no closed connection */
    uint64_t kill = last + 300;
    size_t e0 = R->n_ev, s0 = R->n_st;
    advance(R, last + 10000);
    uint64_t suspect = 0, offline = 0;
    for (size_t i = s0; i < R->n_st; i++) {
        if (R->st[i].worker != slot_of(R, 1))
            continue;
        if (R->st[i].to == WORKER_SUSPECT && !suspect)
            suspect = R->st[i].at;
        if (R->st[i].to == WORKER_OFFLINE && !offline)
            offline = R->st[i].at;
    }
    const rec_event *rep = find_event(R, e0, "cluster.member_replaced");
    assert_non_null(rep);
    assert_int_equal(rep->worker, slot_of(R, 2));
    assert_int_equal(suspect, last + 3 * HB_MS / 2);
    assert_int_equal(offline, last + 3 * HB_MS);
    assert_int_equal(rep->at, offline);
    assert_int_equal(c->state, CLUSTER_DEGRADED);
    /* the replacement acknowledges 2 x 20 ms later (advance did not) */
    R->now = rep->at + 2 * ONE_WAY;
    ack(R, c, 2);
    assert_int_equal(c->state, CLUSTER_READY);
    print_message("silent member (power loss %llu ms after its last heartbeat): suspect after "
                  "%llu ms, offline and replaced %llu ms after the kill, ready again after %llu "
                  "ms\n",
                  (unsigned long long)(kill - last), (unsigned long long)(suspect - kill),
                  (unsigned long long)(offline - kill), (unsigned long long)(R->now - kill));
    rr_destroy(R);
}

/* --- a closed connection -------------------------------------------------------------------------
 */

static void test_disconnect_grace_and_replacement(void **state)
{
    (void)state;
    rr *R = rr_create(NULL);
    add(R, 0, "DE", 100000);
    add(R, 1, "DE", 110000);
    add(R, 2, "DE", 300000);
    const cluster *c = create(R, 1, 2, 0);
    ack_all(R, c);
    advance(R, T0 + 10400);

    /* a blip: the connection closes and the agent reconnects within the
     * grace; it keeps its seat and the cluster never degrades */
    size_t e0 = R->n_ev, s0 = R->n_st;
    assert_int_equal(sched_disconnected(R->s, &R->a[1].id, R->now), 0);
    check(R);
    assert_int_equal(R->a[1].w->state, WORKER_SUSPECT);
    assert_int_equal(R->n_st, s0 + 1);
    assert_int_equal(R->st[s0].at, R->now);
    assert_int_equal(R->st[s0].to, WORKER_SUSPECT);
    assert_int_equal(c->state, CLUSTER_READY);
    /* closing twice changes nothing */
    assert_int_equal(sched_disconnected(R->s, &R->a[1].id, R->now), 0);
    assert_int_equal(R->n_st, s0 + 1);
    R->a[1].alive = false;
    advance(R, R->now + 1000);
    R->a[1].alive = true;
    assert_int_equal(sched_touch(R->s, &R->a[1].id, R->now), 0);
    check(R);
    assert_int_equal(R->a[1].w->state, WORKER_ONLINE);
    advance(R, R->now + 5000);
    assert_int_equal(R->a[1].w->state, WORKER_ONLINE);
    assert_true(member(c, slot_of(R, 1)));
    assert_int_equal(c->state, CLUSTER_READY);
    assert_int_equal(count_events(R, e0, "cluster.member_lost"), 0);
    assert_int_equal(count_events(R, e0, "cluster.degraded"), 0);
    assert_int_equal(c->replaced, 0);

    /* killed: the agent's process dies, its connection closes at once and
     * it never comes back; offline after the reconnect grace (default 1.5
     * heartbeat intervals), replaced in the same tick; the replacement
     * acknowledges 40 ms later */
    advance(R, R->now + 400);
    uint64_t kill = R->now;
    e0 = R->n_ev;
    s0 = R->n_st;
    R->a[1].alive = false;
    assert_int_equal(sched_disconnected(R->s, &R->a[1].id, kill), 0);
    check(R);
    assert_int_equal(c->state, CLUSTER_READY); /* suspect keeps its seat */
    uint64_t ready = 0, offline = 0, replaced = 0;
    while (R->now < kill + 10000 && !ready) {
        uint64_t next = sched_next_deadline(R->s);
        advance(R, next < R->now + HB_MS ? next : R->now + HB_MS);
        const rec_event *rep = find_event(R, e0, "cluster.member_replaced");
        if (rep && !replaced) {
            replaced = rep->at;
            assert_int_equal(rep->worker, slot_of(R, 2));
            R->now = replaced + 2 * ONE_WAY;
            ack(R, c, 2);
            if (c->state == CLUSTER_READY)
                ready = R->now;
        }
    }
    for (size_t i = s0; i < R->n_st; i++)
        if (R->st[i].worker == slot_of(R, 1) && R->st[i].to == WORKER_OFFLINE)
            offline = R->st[i].at;
    print_message("killed member (connection closed): suspect at once, offline after %llu ms, "
                  "replaced after %llu ms, ready again %llu ms after the kill (heartbeat %u ms, "
                  "default grace)\n",
                  (unsigned long long)(offline - kill), (unsigned long long)(replaced - kill),
                  (unsigned long long)(ready - kill), HB_MS);
    assert_int_equal(offline, kill + 3 * HB_MS / 2);
    assert_int_equal(replaced, offline);
    assert_true(ready > 0);
    /* DESIGN.md: a dropped member replaced within two heartbeat intervals */
    assert_true(replaced - kill <= 2 * HB_MS);
    assert_int_equal(c->replaced, 1);
    assert_false(member(c, slot_of(R, 1)));
    rr_destroy(R);
}

/* --- the lost are not seated again
 * ---------------------------------------------------------------- */

static void test_lost_worker_never_chosen_again(void **state)
{
    (void)state;
    rr *R = rr_create(NULL);
    add(R, 0, "DE", 100000);
    add(R, 1, "DE", 100000);
    const cluster *c = create(R, 1, 2, 0);
    ack_all(R, c);
    advance(R, T0 + 5300);
    uint64_t lost_at = R->now;
    size_t e0 = R->n_ev;
    goodbye(R, 1);
    assert_int_equal(c->state, CLUSTER_DEGRADED);
    assert_int_equal(count_events(R, e0, "cluster.member_replaced"), 0);
    assert_true(sched_next_deadline(R->s) <= lost_at + 1000);
    /* it comes back at once, the only free worker: never seated here again */
    size_t n0 = R->n_no;
    R->now += 500;
    add(R, 1, "DE", 100000);
    assert_int_equal(R->a[1].w->alloc, WORKER_FREE);
    assert_int_equal(index_count(sched_index(R->s)), 1);
    advance(R, lost_at + 5650);
    assert_int_equal(c->state, CLUSTER_DEGRADED);
    assert_int_equal(count_events(R, e0, "cluster.member_replaced"), 0);
    assert_int_equal(R->n_no, n0);
    assert_int_equal(R->a[1].w->alloc, WORKER_FREE);
    /* tried again every reroute_retry_ms (1000 by default) */
    for (unsigned k = 1; k <= 5; k++)
        if (!ticked_at(R, lost_at + k * 1000ull))
            fail_msg("no retry at +%u ms after the loss", k * 1000);
    /* a new eligible worker: seated at the next retry, not before */
    add(R, 5, "DE", 200000);
    assert_int_equal(count_events(R, e0, "cluster.member_replaced"), 0);
    advance(R, lost_at + 6000);
    const rec_event *rep = find_event(R, e0, "cluster.member_replaced");
    assert_non_null(rep);
    assert_int_equal(rep->worker, slot_of(R, 5));
    assert_int_equal(rep->at, lost_at + 6000);
    R->now += 2 * ONE_WAY;
    ack(R, c, 5);
    assert_int_equal(c->state, CLUSTER_READY);
    /* the replacement leaves too: 1 is still the only candidate, still not */
    e0 = R->n_ev;
    goodbye(R, 5);
    advance(R, R->now + 3000);
    assert_int_equal(c->state, CLUSTER_DEGRADED);
    assert_int_equal(count_events(R, e0, "cluster.member_replaced"), 0);
    /* another cluster may hire it: the exclusion is this cluster's */
    const cluster *other = create(R, 2, 1, 0);
    assert_true(member(other, slot_of(R, 1)));
    rr_destroy(R);
}

/* The lost worker is back in the index, in the lost member's region and
 * cheaper; the only other candidate is in another region the request
 * allows. The seat must go to that one. */
static void test_replacement_found_past_excluded_worker(void **state)
{
    (void)state;
    rr *R = rr_create(NULL);
    add(R, 0, "DE", 100000);
    add(R, 1, "DE", 100000);
    const cluster *c = create(R, 1, 2, EUROPE_NA);
    ack_all(R, c);
    advance(R, T0 + 3000);
    size_t e0 = R->n_ev;
    goodbye(R, 1);
    assert_int_equal(c->state, CLUSTER_DEGRADED);
    R->now += 200;
    add(R, 1, "DE", 100000); /* back, excluded from c */
    add(R, 7, "US", 200000); /* a fresh candidate the request allows */
    /* 7 is eligible: a request for one worker in north-america gets it */
    match_request rq = schedfix_request(R->f, "RTX 4090", 1, 1);
    rq.regions = schedfix_region(R->f, "north-america");
    sched_quote q;
    assert_int_equal(sched_quote_request(R->s, &rq, 1, &q, NULL, NULL), 0);
    assert_int_equal(q.per_hour_uusd, 200000);
    advance(R, R->now + 3 * 1000); /* three retries */
    const rec_event *rep = find_event(R, e0, "cluster.member_replaced");
    if (!rep)
        fail_msg("the seat stayed vacant although worker 7 (US, allowed) was free for 3 retries: "
                 "%s, worker 7 %s",
                 cluster_state_name(c->state),
                 R->a[7].w->alloc == WORKER_FREE ? "free" : "allocated");
    assert_int_equal(rep->worker, slot_of(R, 7));
    rr_destroy(R);
}

/* --- a member fails verification -------------------------------------------------------------- */

/* Tiny challenges (16 leaves of 192 words for an RTX 4090, ~300 ms). */
static verify_config verify_on(void)
{
    return (verify_config){.enabled = true,
                           .target_ms = 300,
                           .units_per_tflop_s = 124,
                           .scratch_kib_per_vram_gib = 1,
                           .leaves = 16,
                           .seed = 7};
}

static void test_member_gpus_changed(void **state)
{
    (void)state;
    verify_config vc = verify_on();
    rr *R = rr_create(&vc);
    add(R, 0, "DE", 100000);
    add(R, 1, "DE", 110000);
    add(R, 2, "DE", 300000);
    advance(R, T0 + 2000);
    for (unsigned n = 0; n < 3; n++)
        assert_int_equal(R->a[n].w->vstate, VERIFY_PASSED);
    const cluster *c = create(R, 1, 2, 0);
    ack_all(R, c);
    assert_true(member(c, slot_of(R, 1)));
    advance(R, T0 + 5000);
    /* 1 re-registers with its GPU on another bus: pending, out of its seat */
    size_t e0 = R->n_ev, n0 = R->n_no;
    add_bus(R, 1, "RTX 4090", "DE", 110000, 2);
    assert_int_equal(R->a[1].w->vstate, VERIFY_PENDING);
    assert_false(member(c, slot_of(R, 1)));
    const rec_event *lost = find_event(R, e0, "cluster.member_lost");
    assert_non_null(lost);
    assert_int_equal(lost->worker, slot_of(R, 1));
    const rec_event *rep = find_event(R, e0, "cluster.member_replaced");
    assert_non_null(rep);
    assert_int_equal(rep->worker, slot_of(R, 2));
    /* it is still there: told to leave; the replacement told to join */
    bool left = false, joined = false;
    for (size_t i = n0; i < R->n_no; i++) {
        left |= !R->no[i].join && R->no[i].worker == slot_of(R, 1);
        joined |= R->no[i].join && R->no[i].worker == slot_of(R, 2);
    }
    assert_true(left && joined);
    R->now += 2 * ONE_WAY;
    ack(R, c, 2);
    assert_int_equal(c->state, CLUSTER_READY);
    /* free again, it is checked and passes, but this cluster lost it */
    advance(R, R->now + 2000);
    assert_int_equal(R->a[1].w->vstate, VERIFY_PASSED);
    e0 = R->n_ev;
    goodbye(R, 2);
    advance(R, R->now + 3000);
    assert_int_equal(count_events(R, e0, "cluster.member_replaced"), 0);
    assert_int_equal(c->state, CLUSTER_DEGRADED);
    rr_destroy(R);
}

/* A challenge sent while the worker was free, hired before it answered,
 * answered too slowly: with slow_strikes 1 that confirms the failure, and
 * the member is replaced. */
static void test_member_fails_verification(void **state)
{
    (void)state;
    verify_config vc = verify_on();
    vc.reverify_ms = 10000;
    vc.slow_strikes = 1;
    rr *R = rr_create(&vc);
    add(R, 0, "DE", 100000);
    advance(R, T0 + 5000);
    add(R, 1, "DE", 300000);
    advance(R, T0 + 9000); /* two onboarding checks each */
    assert_int_equal(R->a[0].w->vstate, VERIFY_PASSED);
    assert_int_equal(R->a[1].w->vstate, VERIFY_PASSED);
    /* 0's GPU is no longer what it was; its re-verification goes out ~10 s
     * after its first check */
    R->a[0].speed = 0.3;
    unsigned ch0 = R->a[0].challenges;
    while (R->a[0].challenges == ch0)
        advance(R, R->now + 50);
    const cluster *c = create(R, 1, 1, 0);
    assert_true(member(c, slot_of(R, 0)));
    ack_all(R, c);
    assert_int_equal(c->state, CLUSTER_READY);
    size_t e0 = R->n_ev;
    advance(R, R->now + 3000);
    assert_int_equal(R->a[0].w->vstate, VERIFY_FAILED);
    const rec_event *lost = find_event(R, e0, "cluster.member_lost");
    assert_non_null(lost);
    assert_non_null(strstr(lost->detail, "failed verification"));
    const rec_event *rep = find_event(R, e0, "cluster.member_replaced");
    assert_non_null(rep);
    assert_int_equal(rep->worker, slot_of(R, 1));
    R->now += 2 * ONE_WAY;
    ack(R, c, 1);
    assert_int_equal(c->state, CLUSTER_READY);
    assert_int_equal(R->a[0].w->alloc, WORKER_FREE);
    assert_int_equal(index_count(sched_index(R->s)), 0); /* failed: never hireable */
    rr_destroy(R);
}

/* One slow answer makes a hired worker suspect, not failed (3 strikes are
 * needed): it keeps its seat. A connection blip it recovers from within the
 * grace, or the hourly refresh of its uptime, must not change that. */
static rr *suspect_member(const cluster **cp)
{
    verify_config vc = verify_on();
    vc.reverify_ms = 10000;
    rr *R = rr_create(&vc);
    add(R, 0, "DE", 100000);
    advance(R, T0 + 5000);
    add(R, 1, "DE", 300000);
    advance(R, T0 + 9000); /* two onboarding checks each */
    R->a[0].speed = 0.5;   /* this once: a slow answer */
    unsigned ch0 = R->a[0].challenges;
    while (R->a[0].challenges == ch0)
        advance(R, R->now + 50);
    const cluster *c = create(R, 1, 1, 0);
    assert_true(member(c, slot_of(R, 0)));
    ack_all(R, c);
    advance(R, R->now + 3000);
    R->a[0].speed = 1.0;
    assert_int_equal(R->a[0].w->vstate, VERIFY_SUSPECT);
    assert_true(member(c, slot_of(R, 0)));
    assert_int_equal(c->state, CLUSTER_READY);
    *cp = c;
    return R;
}

static void test_suspect_member_keeps_seat_over_blip(void **state)
{
    (void)state;
    const cluster *c;
    rr *R = suspect_member(&c);
    size_t e0 = R->n_ev;
    assert_int_equal(sched_disconnected(R->s, &R->a[0].id, R->now), 0);
    check(R);
    R->now += 500;
    assert_int_equal(sched_touch(R->s, &R->a[0].id, R->now), 0);
    check(R);
    if (!member(c, slot_of(R, 0))) {
        const rec_event *lost = find_event(R, e0, "cluster.member_lost");
        fail_msg("a suspect member back within the grace lost its seat (%s)",
                 lost ? lost->detail : "?");
    }
    assert_int_equal(c->state, CLUSTER_READY);
    rr_destroy(R);
}

static void test_suspect_member_keeps_seat_over_uptime_refresh(void **state)
{
    (void)state;
    const cluster *c;
    rr *R = suspect_member(&c);
    size_t e0 = R->n_ev;
    advance(R, R->now + REGISTRY_UPTIME_REFRESH_MS + 2000);
    if (!member(c, slot_of(R, 0))) {
        const rec_event *lost = find_event(R, e0, "cluster.member_lost");
        fail_msg("a suspect member that kept heartbeating lost its seat at +%llu s (%s)",
                 lost ? (unsigned long long)(lost->at - T0) / 1000 : 0ull,
                 lost ? lost->detail : "?");
    }
    rr_destroy(R);
}

/* --- shrinking
 * -------------------------------------------------------------------------------------- */

static void test_shrink(void **state)
{
    (void)state;
    rr *R = rr_create(NULL);
    add(R, 0, "DE", 100000);
    add(R, 1, "DE", 120000);
    add(R, 2, "DE", 140000);
    add_bus(R, 8, "RTX 3090", "DE", 90000, 1);
    const cluster *c = create(R, 1, 3, 0);
    ack_all(R, c);
    mu_error err;
    uint32_t dropped = 99;
    /* nothing lost: nothing to shrink */
    assert_int_equal(sched_cluster_shrink(R->s, &c->id, R->now, &dropped, &err), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(c->n_members, 3);
    check(R);
    advance(R, T0 + 2500);
    goodbye(R, 2); /* no spare: the seat stays vacant */
    assert_int_equal(c->state, CLUSTER_DEGRADED);
    size_t e0 = R->n_ev;
    assert_int_equal(sched_cluster_shrink(R->s, &c->id, R->now, &dropped, &err), 0);
    check(R);
    assert_int_equal(dropped, 1);
    assert_int_equal(c->n_members, 2);
    assert_int_equal(c->req.workers, 2);
    assert_int_equal(c->price_uusd_per_hour, 220000);
    assert_int_equal(c->price_uusd_per_hour, price_of(R, c));
    assert_int_equal(c->state, CLUSTER_READY);
    assert_non_null(find_event(R, e0, "cluster.shrunk"));
    assert_non_null(find_event(R, e0, "cluster.ready"));
    assert_int_equal(sched_cluster_shrink(R->s, &c->id, R->now, &dropped, &err), -1);
    assert_int_equal(errno, EINVAL);
    /* no longer looking for a member: a newcomer is not seated */
    add(R, 5, "DE", 100000);
    advance(R, R->now + 3000);
    assert_int_equal(count_events(R, e0, "cluster.member_replaced"), 0);
    assert_int_equal(c->n_members, 2);
    assert_int_equal(R->a[5].w->alloc, WORKER_FREE);

    /* a cluster of one that lost its only member: nothing would remain */
    match_request rq = schedfix_request(R->f, "RTX 3090", 1, 1);
    mu_id id2 = cid(2);
    const cluster *c2 = sched_cluster_create(R->s, &id2, "x", &rq, 2, R->now, NULL, &err);
    assert_non_null(c2);
    ack(R, c2, 8);
    goodbye(R, 8);
    assert_int_equal(c2->state, CLUSTER_DEGRADED);
    assert_int_equal(sched_cluster_shrink(R->s, &c2->id, R->now, &dropped, &err), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(c2->n_members, 1);
    check(R);
    /* unknown and ended clusters */
    mu_id none = cid(99);
    assert_int_equal(sched_cluster_shrink(R->s, &none, R->now, &dropped, &err), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(sched_cluster_release(R->s, &c2->id, R->now, NULL, &err), 0);
    assert_int_equal(sched_cluster_shrink(R->s, &c2->id, R->now, &dropped, &err), -1);
    assert_int_equal(errno, ESTALE);
    check(R);
    rr_destroy(R);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goodbye_replaced_same_region),
        cmocka_unit_test(test_goodbye_replaced_other_region),
        cmocka_unit_test(test_silent_member_replaced),
        cmocka_unit_test(test_disconnect_grace_and_replacement),
        cmocka_unit_test(test_lost_worker_never_chosen_again),
        cmocka_unit_test(test_replacement_found_past_excluded_worker),
        cmocka_unit_test(test_member_gpus_changed),
        cmocka_unit_test(test_member_fails_verification),
        cmocka_unit_test(test_suspect_member_keeps_seat_over_blip),
        cmocka_unit_test(test_suspect_member_keeps_seat_over_uptime_refresh),
        cmocka_unit_test(test_shrink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
