/* report.h - what a replay measured, and the three ways it is written out:
 * a JSON summary, a CSV time series and a self-contained HTML page with
 * SVG charts (no script, no external asset).
 *
 * The engine fills a sim_report as it runs; the writers only format it, so
 * the three files of one run always agree. Nothing here depends on the wall
 * clock: the same report gives the same bytes.
 *
 * Times are virtual milliseconds from the start of the traces. Every field
 * is defined in docs/sim.md ("Report fields").
 */
#ifndef MUSTER_SIM_REPORT_H
#define MUSTER_SIM_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "textio.h"

/* A named count: cluster event topics, constraints that ran out, ... */
typedef struct report_count {
    char name[64];
    uint64_t count;
} report_count;

/* A growing list of named counts, in order of first appearance (the
 * writers sort by name, so the output does not depend on that order). */
typedef struct report_counts {
    report_count *v;
    size_t n, cap;
    uint64_t other; /* counts of names that did not fit (REPORT_MAX_NAMES) */
} report_counts;

#define REPORT_MAX_NAMES 64

/* Add n to NAME's count (truncated to fit). Returns 0, or -1 on allocation
 * failure (the count goes to `other`). */
int report_counts_add(report_counts *c, const char *name, uint64_t n);
uint64_t report_counts_get(const report_counts *c, const char *name);
void report_counts_free(report_counts *c);

/* A sample of durations (ms), summarised. Percentiles are nearest-rank:
 * p50 is the value at rank ceil(0.5 n) of the sorted sample. */
typedef struct report_stats {
    uint64_t n;
    double mean_ms;
    uint64_t p50_ms, p95_ms, max_ms;
} report_stats;

/* Sorts v in place. */
void report_stats_of(uint64_t *v, size_t n, report_stats *out);

/* One row of the time series: gauges at the end of an interval, counters
 * over it. */
typedef struct report_row {
    uint64_t t_ms;            /* end of the interval */
    uint32_t online_workers;  /* state online in the core (not suspect) */
    uint32_t suspect_workers; /* connection lost, within the grace */
    uint64_t online_gpus;
    uint32_t allocated_workers; /* seated in an active cluster */
    uint64_t allocated_gpus;
    uint32_t active_clusters; /* provisioning, ready or degraded */
    uint32_t ready_clusters;
    uint32_t degraded_clusters;
    uint32_t requests; /* arrivals in the interval */
    uint32_t met;      /* of which accepted (matched) */
    uint32_t unmet;    /* refused: not enough workers */
    uint32_t invalid;  /* refused: a request the core does not accept */
    uint32_t member_losses;
    uint32_t replacements;
    /* Verification (written only when it ran): checks judged in the
     * interval, of which not passed, and workers failed. */
    uint32_t verify_checks, verify_not_ok, verify_failed;
    /* Tasks (written only when the workload has tasks): gauges, then
     * counters over the interval. */
    uint32_t tasks_running, tasks_queued;
    uint32_t tasks_succeeded, tasks_failed, task_retries;
} report_row;

/* The verification outcomes, as verify.h numbers them. */
#define REPORT_OUTCOMES 5

typedef struct sim_report {
    /* --- the run ---------------------------------------------------------- */
    char churn_source[256];
    char churn_format[16];
    char workload_source[256];
    char workload_format[16];
    uint64_t seed;
    char policy[16]; /* pack, spread or as-requested */
    uint32_t heartbeat_ms, liveness, keepalive_ms, reroute_retry_ms, provision_timeout_ms;
    double goodbye_fraction;
    char ack_delay[64]; /* dist spec, seconds */
    char min_tier[8];
    uint64_t interval_ms;
    uint64_t end_ms;      /* the virtual time the run stopped at */
    char any_models[256]; /* what "any model" was taken to mean */

    /* --- the engine ------------------------------------------------------- */
    uint64_t events;       /* heap events + core ticks */
    uint64_t heap_events;  /* from the churn trace or the event queue */
    uint64_t churn_events; /* of which: churn trace events */
    uint64_t arrivals, acks, releases, samples;
    uint64_t ticks;      /* sched_tick calls: core timers due */
    uint64_t touches;    /* keep-alive touches (not events, see docs/sim.md) */
    uint64_t reconnects; /* a live worker the core had dropped registered again */
    size_t peak_queue;   /* most events pending in the queue at once */

    /* --- workers ---------------------------------------------------------- */
    uint64_t nodes;        /* in the churn trace */
    uint64_t nodes_joined; /* that joined at least once */
    uint64_t joins, failures, goodbyes;
    uint64_t redundant;     /* a join of a live node or a leave of a gone one */
    uint64_t spoof_ignored; /* spoof events when verification is not simulated */
    uint64_t final_online, final_suspect, final_offline, final_allocated;
    uint64_t never_joined;
    report_counts worker_transitions; /* "online->suspect", ... */

    /* --- requests and clusters -------------------------------------------- */
    uint64_t requests, met, unmet, invalid, not_arrived; /* not_arrived: after the end */
    report_counts unmet_by;   /* constraint that ran out (match_explain) */
    report_counts invalid_by; /* the core's reason */
    uint64_t reached_ready;   /* clusters ready at least once */
    uint64_t ended_released, ended_expired, ended_failed, active_at_end;
    report_stats time_to_ready;
    uint64_t clusters_degraded; /* clusters degraded at least once */
    uint64_t degraded_ms;       /* summed over clusters */
    uint64_t cluster_ms;        /* time clusters were active, summed */
    uint64_t member_losses, replacements, returns;
    uint64_t losses_unresolved;   /* seats still lost at the end (or when the cluster ended) */
    report_stats reroute_latency; /* a loss to the replacement of that seat */
    double gpu_hours_online, gpu_hours_allocated, gpu_hours_ready;
    report_counts topics; /* every cluster event topic the core emitted */

    /* --- verification (when verify_on; docs/sim.md) ------------------------- */
    bool verify_on;
    char honest_speed[64], spoofer_speed[64], rtt_ms[64], jitter_rtt_ms[64]; /* dist specs */
    double spoofers_fraction, jittery_fraction;
    double verify_scale; /* pow units per TFLOPS-second */
    uint32_t verify_target_ms, verify_leaves, verify_spots, verify_light_ms, verify_reverify_ms;
    double verify_min_ratio;
    uint64_t v_challenges;                /* sent by the core */
    uint64_t v_checks, v_light_checks;    /* judged (verdicts), of which light */
    uint64_t v_outcomes[REPORT_OUTCOMES]; /* by verify_outcome */
    uint64_t v_dropped;                   /* challenges whose agent left before answering */
    uint64_t v_late;                      /* answers the core no longer waited for */
    uint64_t v_expected_n, v_expected_min_ms, v_expected_max_ms;
    double v_expected_sum_ms;                     /* expected time of the checks judged */
    uint64_t v_spoof_events;                      /* churn spoof events, taken in */
    uint64_t v_jittery_nodes;                     /* nodes on a jittery link */
    uint64_t v_honest;                            /* nodes judged at least once while honest */
    uint64_t v_honest_alarmed;                    /* of which with a check not passed */
    uint64_t v_false_positives;                   /* of which failed */
    uint64_t v_spoofers;                          /* nodes that were up while spoofing */
    uint64_t v_spoofers_caught;                   /* of which failed */
    uint64_t v_spoofers_hired, v_spoofers_passed; /* hired, or passed a check, while spoofing */
    uint64_t v_false_negatives;                   /* spoofers hired or passed (either) */
    report_stats v_first_verdict;                 /* first join to first verdict */
    report_stats v_verified;                      /* first join to first pass (honest) */
    report_stats v_catch;                         /* up as a spoofer to failed */

    /* --- tasks (when tasks_on; docs/sim.md) ------------------------------- */
    bool tasks_on;
    uint64_t t_requested; /* tasks of the requests that arrived */
    uint64_t t_submitted; /* submitted to a ready cluster */
    uint64_t t_succeeded, t_failed;
    uint64_t t_cancelled;  /* not final when their cluster ended */
    uint64_t t_unfinished; /* not final when the run stopped (cluster active) */
    uint64_t t_attempts;   /* starts */
    uint64_t t_retries, t_retries_lost, t_retries_exit; /* starts after the first, by cause */
    uint64_t t_lost_attempts, t_failed_attempts;        /* attempts that ended so */
    uint64_t t_clusters;                                /* clusters that ran tasks */
    uint64_t t_released_done; /* of which released by their owner, all tasks final */
    uint64_t t_submit_errors; /* tasks the core refused (not expected) */
    double t_gh_useful, t_gh_lost, t_gh_failed, t_gh_cancelled; /* GPU-hours of attempts */
    double t_gh_allocated; /* GPU-hours allocated to clusters with tasks */

    /* --- time series ------------------------------------------------------ */
    report_row *rows;
    size_t n_rows, cap_rows;
} sim_report;

void report_init(sim_report *r);
void report_free(sim_report *r);
/* Append a row. 0, or -1 on allocation failure. */
int report_add_row(sim_report *r, const report_row *row);

/* Derived figures (NAN when undefined, written as null). */
double report_success_rate(const sim_report *r);        /* met / requests */
double report_ready_rate(const sim_report *r);          /* reached_ready / requests */
double report_goodput(const sim_report *r);             /* GPU-h ready / GPU-h allocated */
double report_utilisation(const sim_report *r);         /* GPU-h allocated / GPU-h online */
double report_false_positive_rate(const sim_report *r); /* false positives / honest */
double report_false_negative_rate(const sim_report *r); /* false negatives / spoofers */
double report_task_goodput(const sim_report *r); /* task GPU-h useful / allocated with tasks */

/* The writers append to out; -1 only on allocation failure. */
int report_json(const sim_report *r, sbuf *out, mu_error *errp);
int report_csv(const sim_report *r, sbuf *out, mu_error *errp);
int report_html(const sim_report *r, sbuf *out, mu_error *errp);
/* A few lines for people (what `muster-sim run` prints). */
void report_text(const sim_report *r, sbuf *out);

#endif
