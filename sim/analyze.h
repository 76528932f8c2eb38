/* analyze.h - what a churn trace (or a workload) says, in figures.
 *
 * For churn: each node's events are replayed in order to rebuild its
 * availability intervals (JOIN to next LEAVE) and unavailability intervals
 * (LEAVE to next JOIN). Rules:
 *   - SPOOF does not change availability; it is counted (events and nodes);
 *   - a JOIN of an available node or a LEAVE of an unavailable one changes
 *     nothing and is counted as redundant;
 *   - an interval still running at the last event is open (right-censored)
 *     and one beginning at time 0 may have begun before the trace did
 *     (left-censored): both are counted but not measured;
 *   - zero-length intervals are measured (count, mean, median) but cannot
 *     be fitted by Weibull or lognormal (ln 0): all three fits leave them
 *     out, so that the three log-likelihoods stay comparable, and the number
 *     left out is reported.
 * Fits are in hours (see fit.h).
 */
#ifndef MUSTER_SIM_ANALYZE_H
#define MUSTER_SIM_ANALYZE_H

#include <stdbool.h>
#include <stddef.h>

#include "churn.h"
#include "churn_io.h"
#include "error.h"
#include "fit.h"
#include "textio.h"
#include "workload.h"

typedef struct interval_summary {
    size_t count;                          /* complete intervals, zero-length ones included */
    size_t zero_length;                    /* of which of length 0: left out of the fits */
    size_t open_at_end;                    /* still running at the end of the trace */
    size_t from_start;                     /* began at time 0: perhaps earlier; not measured */
    double mean_s, median_s, min_s, max_s; /* over count (0 when count is 0) */
    fit_result fit[FIT_FAMILIES];          /* on the count - zero_length others, hours */
    int best;                              /* fit_family with the lowest AIC, or -1 */
} interval_summary;

typedef struct churn_summary {
    size_t nodes;             /* in the node table */
    size_t nodes_with_events; /* with at least one event */
    size_t events, joins, leaves, spoofs;
    size_t spoofed_nodes;
    size_t redundant;       /* events that changed nothing */
    double first_s, last_s; /* times of the first and last event */
    bool has_origin;        /* the trace is anchored to UNIX time */
    double origin_unix;
    interval_summary up;   /* availability */
    interval_summary down; /* unavailability */
} churn_summary;

/* Summarise T. Returns 0, or -1 on allocation failure. */
int analyze_churn(const churn_trace *t, churn_summary *out, mu_error *errp);
/* Append a report for people / as one JSON object (with a newline). SOURCE
 * and FORMAT name what was read; STATS (may be NULL) adds what the reader
 * saw. */
void analyze_churn_text(const churn_summary *s, const churn_read_stats *stats, const char *source,
                        const char *format, sbuf *out);
int analyze_churn_json(const churn_summary *s, const churn_read_stats *stats, const char *source,
                       const char *format, sbuf *out, mu_error *errp);

#define WORKLOAD_SUMMARY_MODELS 16

typedef struct workload_summary {
    size_t requests;
    double first_arrival_s, last_arrival_s;
    double mean_duration_s, median_duration_s, max_duration_s;
    double mean_gpus, median_gpus; /* workers * gpus_per_worker */
    unsigned max_gpus;
    double gpu_hours;    /* sum of GPUs * duration */
    size_t multi_worker; /* requests of more than one worker */
    size_t with_region;  /* requests naming a region */
    /* Requests by GPU model ("" = any), most frequent first; the rest are
     * summed in other_models. */
    struct {
        const char *model; /* borrowed from the workload */
        size_t count;
    } models[WORKLOAD_SUMMARY_MODELS];
    size_t n_models;
    size_t other_models;
} workload_summary;

int analyze_workload(const workload *w, workload_summary *out, mu_error *errp);
/* STATS may be NULL. */
void analyze_workload_text(const workload_summary *s, const workload_read_stats *stats,
                           const char *source, const char *format, sbuf *out);
int analyze_workload_json(const workload_summary *s, const workload_read_stats *stats,
                          const char *source, const char *format, sbuf *out, mu_error *errp);

/* A length in seconds for people: "42 s", "58 min", "5.9 h", "74.2 d". */
void analyze_format_duration(double s, char *out, size_t n);

#endif
