/* rpc_verify.c - proof-of-work verification on the wire: challenges and
 * spot requests out to agents, their answers in, verdicts logged,
 * published, saved and told to the agent. The policy is the core's
 * (scheduler/core/verify.h); this file only carries messages. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "broker_int.h"
#include "ids.h"
#include "log.h"
#include "wire.h"

static void send_to(broker *b, const worker *w, Muster__Envelope *env)
{
    zs_peer peer;
    if (broker_worker_peer(b, w, &peer) < 0)
        return; /* not connected: the answer times out and it is asked again */
    broker_send_agent(b, &peer, env);
}

void rpc_verify_challenge(void *arg, const worker *w, uint64_t challenge_id, const pow_params *p,
                          uint32_t expected_ms)
{
    broker *b = arg;
    Muster__PowChallenge ch = MUSTER__POW_CHALLENGE__INIT;
    ch.challenge_id = challenge_id;
    ch.seed.data = (uint8_t *)p->seed;
    ch.seed.len = POW_SEED_BYTES;
    ch.leaves = p->leaves;
    ch.leaf_words = p->leaf_words;
    ch.leaf_rounds = p->leaf_rounds;
    ch.expected_ms = expected_ms;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_POW_CHALLENGE;
    env.pow_challenge = &ch;
    char id[ID_TEXT_LEN];
    id_format(&w->id, id);
    log_debug("verify.challenge", "id=%s challenge=%016llx units=%llu expected_ms=%u", id,
              (unsigned long long)challenge_id, (unsigned long long)pow_units(p), expected_ms);
    send_to(b, w, &env);
}

void rpc_verify_spots(void *arg, const worker *w, uint64_t challenge_id, const uint32_t *idx,
                      uint32_t n)
{
    broker *b = arg;
    Muster__PowSpots sp = MUSTER__POW_SPOTS__INIT;
    sp.challenge_id = challenge_id;
    sp.leaves = (uint32_t *)idx;
    sp.n_leaves = n;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_POW_SPOTS;
    env.pow_spots = &sp;
    send_to(b, w, &env);
}

void rpc_verify_result_fill(const verify_result *r, Muster__VerificationResult *out, char *text,
                            size_t cap)
{
    muster__verification_result__init(out);
    verify_result_text(r, text, cap);
    out->time_ms = r->at;
    out->outcome = (char *)verify_outcome_name((verify_outcome)r->outcome);
    out->state = (char *)verify_state_name((verify_state)r->state);
    out->expected_ms = r->expected_ms;
    out->measured_ms = r->measured_ms;
    out->rtt_ms = r->rtt_ms;
    out->throughput_ratio = r->measured_ms ? (double)r->expected_ms / r->measured_ms : 0;
    out->text = text;
    out->light = r->light;
}

void rpc_verify_verdict(void *arg, const worker *w, const verify_result *r, verify_state from,
                        verify_state to)
{
    broker *b = arg;
    char id[ID_TEXT_LEN], text[160];
    id_format(&w->id, id);
    Muster__VerificationResult res;
    rpc_verify_result_fill(r, &res, text, sizeof(text));
    log_msg(r->outcome == VERIFY_OK ? LOG_INFO : LOG_WARN, "worker.verification",
            "id=%s host=%s model=\"%s\" from=%s to=%s outcome=%s expected_ms=%u measured_ms=%u "
            "rtt_ms=%u reason=\"%s\"",
            id, w->hostname, w->model ? w->model->name : "none", verify_state_name(from),
            verify_state_name(to), res.outcome, r->expected_ms, r->measured_ms, r->rtt_ms, text);
    /* Saved with the worker at the end of the batch, before anyone hears. */
    persist_uptime(b, w);
    Muster__Event ev = MUSTER__EVENT__INIT;
    char topic[40];
    snprintf(topic, sizeof(topic), "worker.verification.%s", verify_state_name(to));
    ev.topic = topic;
    ev.worker_id = id;
    ev.detail = text;
    broker_publish(b, topic, &ev);
    Muster__Verdict vd = MUSTER__VERDICT__INIT;
    vd.state = (char *)verify_state_name(to);
    vd.result = &res;
    Muster__Envelope env;
    wire_envelope_init(&env, 0);
    env.body_case = MUSTER__ENVELOPE__BODY_VERDICT;
    env.verdict = &vd;
    send_to(b, w, &env);
}

static void answer_error(broker *b, const request *rq, const mu_error *err)
{
    Muster__Status st = errno == EINVAL   ? MUSTER__STATUS__STATUS_BAD_REQUEST
                        : errno == EPERM  ? MUSTER__STATUS__STATUS_PERMISSION_DENIED
                        : errno == ENOMEM ? MUSTER__STATUS__STATUS_INTERNAL
                                          : MUSTER__STATUS__STATUS_CONFLICT;
    broker_error(b, rq, st, err->text);
}

void rpc_pow_commit(broker *b, const request *rq)
{
    const Muster__PowCommit *m = rq->env->pow_commit;
    const worker *w = broker_peer_worker(b, &rq->msg->peer);
    mu_error err;
    if (m->root.len != POW_HASH_BYTES) {
        errno = EINVAL;
        errprintf(&err, "root must be %d bytes, not %zu", POW_HASH_BYTES, m->root.len);
        answer_error(b, rq, &err);
        return;
    }
    if (sched_verify_commit(b->core, &w->id, m->challenge_id, m->root.data, b->now, &err) < 0)
        answer_error(b, rq, &err);
}

void rpc_pow_proofs(broker *b, const request *rq)
{
    const Muster__PowProofs *m = rq->env->pow_proofs;
    const worker *w = broker_peer_worker(b, &rq->msg->peer);
    mu_error err;
    if (sched_verify_proofs(b->core, &w->id, m->challenge_id, m->leaves.data, m->leaves.len,
                            m->paths.data, m->paths.len, b->now, &err) < 0)
        answer_error(b, rq, &err);
}
