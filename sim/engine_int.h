/* engine_int.h - what the replay's files share: the engine's state.
 *
 * engine.c owns the loop (setup, the clock, the keep-alive, the events);
 * engine_observe.c takes in what the core reports through its ops and
 * turns it into the measurements of the report; engine_verify.c models
 * the agents' answers to verification challenges, engine_tasks.c the tasks
 * run in clusters. Private to sim/.
 */
#ifndef MUSTER_SIM_ENGINE_INT_H
#define MUSTER_SIM_ENGINE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "evq.h"
#include "pow.h"
#include "tasks.h"

#define NIL UINT32_MAX

/* Virtual time 0 is this instant for the core, whose clock is UNIX
 * milliseconds (2026-01-01T00:00:00Z): some of its fields use 0 for
 * "never", so the replay must not start at 0. */
#define EPOCH_MS 1767225600000ull

/* Event kinds, and their order at one instant: the trace's churn first (a
 * worker that leaves at t does not acknowledge, answer or finish a task at
 * t), then tasks that end (a task ending as its cluster ends counts), then
 * clusters whose time is up (their members are free for a request arriving
 * at t), then acknowledgements, verification answers (a worker passing at
 * t can serve a request arriving at t), arrivals, and the sample that
 * observes it all. */
enum { EV_CHURN = 1, EV_RELEASE, EV_ACK, EV_ARRIVAL, EV_SAMPLE, EV_COMMIT, EV_PROOFS, EV_TASK };
enum {
    CLS_CHURN = 0,
    CLS_TASK = 1,
    CLS_RELEASE = 2,
    CLS_ACK = 3,
    CLS_VERIFY = 4,
    CLS_ARRIVAL = 5,
    CLS_SAMPLE = 6
};

/* Keys mixed into the seed, one per use of randomness, so that no two uses
 * ever share numbers. */
#define KEY_WORKER_ID  0x776f726b65726964ull /* "workerid" */
#define KEY_CLUSTER_ID 0x636c757374657269ull /* "clusteri" */
#define KEY_TIER       0x7469657273657421ull /* "tierset!" */
#define KEY_LEAVE      0x6c65617665736179ull /* "leavesay" */
#define KEY_ACK        0x61636b64656c6179ull /* "ackdelay" */
#define KEY_VNODE      0x766e6f6465736574ull /* "vnodeset": a node's link and honesty */
#define KEY_CHECK      0x636865636b6d6f64ull /* "checkmod": one answer's speed and delays */
#define KEY_VCORE      0x76636f7265736565ull /* "vcoresee": the verifier's own generator */
#define KEY_TASK       0x7461736b72756e21ull /* "taskrun!": an attempt's run time and exit */

/* What the engine knows of a node of the churn trace. */
typedef struct node {
    mu_id id;
    uint64_t last_touch; /* virtual ms of its last registration or touch */
    uint32_t slot;       /* registry slot once registered, else NIL */
    uint32_t gen;        /* bumped at every join and leave: stale events are dropped */
    uint16_t model;      /* catalog index */
    uint8_t gpus;        /* devices it registers with */
    uint8_t tier;
    char country[3];
    uint8_t live;   /* the agent is up */
    uint8_t joined; /* it joined at least once */
} node;

/* What the engine knows of a request and of the cluster made for it. */
typedef struct req {
    uint32_t slot;      /* the cluster's slot in the core, NIL: none */
    uint16_t model;     /* catalog index, or NIL16: any model */
    uint8_t region;     /* region index, or 0xff: any */
    uint8_t placement;  /* placement asked for */
    uint8_t state;      /* last cluster_state seen, 0 before creation */
    uint8_t ready_once; /* reached ready */
    uint8_t degraded_once;
    uint8_t ended;
    uint8_t has_tasks; /* the request carries tasks (engine_tasks.c) */
    uint32_t seated;   /* members seated, while active */
    uint32_t gpus;     /* their GPUs */
    uint64_t created_ms, last_ms;
    uint32_t loss_head, loss_tail; /* seats lost, not yet served again (loss pool) */
} req;

#define NIL16 0xffffu

/* A loss waiting for its seat to be served again, in a pool of list nodes. */
typedef struct loss {
    uint64_t at;
    uint32_t next;
} loss;

/* A live node's latest registration or touch, in the order they happened:
 * the same order as the core's list of online workers. */
typedef struct touch {
    uint64_t t;
    uint32_t node, gen;
} touch;

typedef struct u64vec {
    uint64_t *v;
    size_t n, cap;
} u64vec;

/* Append x. 0, or -1 on allocation failure. */
int engine_vec_push(u64vec *v, uint64_t x);

/* --- verification (engine_verify.c) ------------------------------------------ */

/* A challenge a modelled agent is answering. */
typedef struct vflight {
    uint64_t id;
    pow_params p;
    uint32_t gen;     /* the node's life it was sent in */
    uint32_t rtt2_ms; /* round trip of the spot exchange, drawn with the challenge */
    uint32_t n_idx;
    uint32_t idx[POW_MAX_SPOT];
    pow_tree *tree; /* from the commitment to the proofs */
} vflight;

/* What the verification model knows of a node. */
typedef struct vnode {
    vflight *fl;        /* the challenge in flight, or NULL */
    uint64_t joined_at; /* its first join, virtual ms; UINT64_MAX: not yet */
    uint64_t spoof_at;  /* first up as a spoofer; UINT64_MAX: not (yet) */
    float speed;        /* a spoofer's share of its claimed throughput */
    uint8_t spoofer;    /* it spoofs (from a spoof event or --spoofers) */
    uint8_t jittery;    /* its link has the heavy-tailed round trip */
    uint16_t flags;     /* VN_* */
} vnode;

enum {
    VN_VERDICT = 1,       /* judged at least once */
    VN_HONEST = 2,        /* judged while honest */
    VN_ALARM = 4,         /* a check not passed while honest */
    VN_FP = 8,            /* failed while honest */
    VN_VERIFIED = 16,     /* passed (state) while honest */
    VN_SPOOF_PASS = 32,   /* passed a check while spoofing */
    VN_SPOOF_HIRED = 64,  /* hired while spoofing */
    VN_SPOOF_CAUGHT = 128 /* failed while spoofing */
};

/* --- tasks (engine_tasks.c) ---------------------------------------------------- */

/* The tasks of one cluster, from its first ready to its end. */
typedef struct tcluster {
    struct engine *e; /* borrowed, for the observer */
    taskset *ts;
    uint8_t *cause;    /* per task: why its latest attempt ended (TC_*) */
    uint32_t *members; /* member ids (registry slots) ever added */
    uint32_t n_members, cap_members;
    uint32_t n_tasks, final;
    uint8_t release_pushed;
} tcluster;

struct engine {
    engine_config cfg;
    churn_trace *churn; /* borrowed */
    workload *wl;       /* borrowed, may be NULL */
    const churn_event *cev;
    size_t n_cev;
    /* The churn trace is read in place, in time order, not through the
     * queue: its next event and when that is (UINT64_MAX: none left). */
    size_t next_cev;
    uint64_t next_cev_t;
    size_t n_req;
    sched *s;
    evq *q;
    node *nodes;
    size_t n_nodes;
    uint32_t *slot_node; /* registry slot -> node */
    req *reqs;
    uint32_t *slot_req; /* cluster slot -> request */
    size_t n_slot_req;
    uint32_t creating; /* the request being created, for callbacks inside create */
    uint16_t any_models[MATCH_MAX_MODELS];
    uint8_t n_any_models;
    /* keep-alive ring */
    touch *ring;
    size_t ring_head, ring_n, ring_cap; /* cap: power of two */
    /* loss pool */
    loss *losses;
    size_t n_losses, cap_losses;
    uint32_t loss_free;
    /* clock and gauges */
    uint64_t now;   /* virtual ms */
    uint64_t until; /* virtual ms */
    uint64_t online_gpu_ms, alloc_gpu_ms, ready_gpu_ms;
    int64_t alloc_workers, alloc_gpus;
    int64_t by_state[8]; /* active clusters by cluster_state */
    report_row row;      /* counters of the current interval */
    u64vec ttr, reroute;
    uint64_t transitions[4][4]; /* worker state changes, from x to: named at the end */
    uint64_t next_progress;     /* events + touches at the next progress report */
    bool ran;
    int failed; /* an error inside a callback: errno */
    /* verification: NULL when off */
    vnode *vn;
    uint8_t *v_leaves; /* leaf hashes of the answer being computed */
    uint64_t *v_scratch;
    size_t v_leaves_cap, v_scratch_cap;
    u64vec v_first, v_verified, v_catch;
    /* tasks: NULL when the workload has none */
    tcluster **tc; /* per request, while its cluster runs tasks */
    int64_t tasks_running, tasks_queued;
    uint64_t task_alloc_gpu_ms; /* GPUs x ms allocated to clusters with tasks */
    uint64_t t_useful_ms, t_lost_ms, t_failed_ms, t_cancelled_ms; /* GPU x ms of attempts */
    sim_report r;
};

/* --- shared between engine.c and engine_observe.c ------------------------- */

/* Remember the first failure inside a callback (nothing can be returned
 * from one) and let the loop stop after the call. */
void engine_fail(engine *e, int err);
/* Add one to NAME's count (engine_fail on allocation failure). */
void engine_count(engine *e, report_counts *c, const char *name);
/* The request a cluster was made for (NULL: not one of ours). */
req *engine_req_of(engine *e, const cluster *c);

/* The core's ops (sched_ops), with the engine as their argument. */
void engine_on_worker_state(void *arg, const worker *w, worker_state from, worker_state to,
                            const char *reason);
void engine_on_cluster_event(void *arg, const cluster *c, const char *topic, const worker *w,
                             const char *detail);
void engine_on_member_notice(void *arg, const cluster *c, const worker *w, bool join);

/* Close the books at the end of a run. */
void engine_finish(engine *e);

/* Verification (engine_verify.c). Create: the per-node models, the core's
 * verify_config and the challenge, spots and verdict ops. */
int engine_verify_create(engine *e, sched_config *sc, sched_ops *ops, mu_error *errp);
void engine_verify_destroy(engine *e);
void engine_verify_join(engine *e, uint32_t n);  /* node n joined */
void engine_verify_spoof(engine *e, uint32_t n); /* a churn spoof event */
void engine_verify_hired(engine *e, uint32_t n); /* told it joined a cluster */
int engine_verify_commit(engine *e, const evq_event *ev, mu_error *errp);
int engine_verify_proofs(engine *e, const evq_event *ev, mu_error *errp);
void engine_verify_finish(engine *e);
void engine_on_challenge(void *arg, const worker *w, uint64_t challenge_id, const pow_params *p,
                         uint32_t expected_ms);
void engine_on_spots(void *arg, const worker *w, uint64_t challenge_id, const uint32_t *idx,
                     uint32_t n);
void engine_on_verdict(void *arg, const worker *w, const verify_result *res, verify_state from,
                       verify_state to);

/* Tasks (engine_tasks.c). */
int engine_tasks_create(engine *e, mu_error *errp);
void engine_tasks_destroy(engine *e);
/* A cluster event of a request with tasks, after the books are updated. */
void engine_tasks_cluster_event(engine *e, req *q, const cluster *c, const char *topic);
void engine_tasks_leave(engine *e, uint32_t n); /* node n's agent is going down */
void engine_tasks_join(engine *e, uint32_t n);  /* node n registered again */
int engine_tasks_done(engine *e, const evq_event *ev, mu_error *errp);
void engine_tasks_finish(engine *e);

/* Milliseconds from trace seconds, rounded. */
uint64_t engine_ms_of(double s);

#endif
