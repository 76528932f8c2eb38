/* churn.h - a churn trace: when each node joined (became available), left
 * (became unavailable) or failed verification (a spoofer), in time order,
 * with what is known of each node.
 *
 * Times are seconds from the start of the trace (double; readers and the
 * generator keep millisecond resolution). Nodes are numbered 0..N-1 in
 * order of first appearance; each has a unique name and, where the trace
 * says, a GPU model, a GPU count and a country (ISO 3166-1 alpha-2). What a
 * trace does not say is empty ("" or 0), never invented here: see
 * synth_fill_nodes() for filling it in deterministically.
 *
 * The event array is contiguous and borrowed by readers (churn_events), so
 * a replay walks it at memory speed.
 */
#ifndef MUSTER_SIM_CHURN_H
#define MUSTER_SIM_CHURN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum churn_kind {
    CHURN_JOIN = 0, /* the node becomes available */
    CHURN_LEAVE,    /* the node becomes unavailable */
    CHURN_SPOOF,    /* the node fails verification (claims what it is not) */
} churn_kind;

typedef struct churn_event {
    double time_s; /* seconds from the trace start, >= 0 */
    uint32_t node; /* index into the node table */
    uint32_t kind; /* churn_kind */
} churn_event;

/* What is known of a node; strings are borrowed from the trace. */
typedef struct churn_node {
    const char *name;      /* unique, never empty */
    const char *gpu_model; /* "" when the trace does not say */
    uint32_t gpu_count;    /* 0 when the trace does not say */
    const char *country;   /* upper-case alpha-2, "" when the trace does not say */
} churn_node;

typedef struct churn_trace churn_trace;

/* An empty trace; NULL on allocation failure. */
churn_trace *churn_create(void);
/* Accepts NULL. */
void churn_destroy(churn_trace *t);

/* The index of the node called NAME, adding it when new. Returns 0, or -1
 * (trace unchanged) on an empty name or allocation failure. */
int churn_node_intern(churn_trace *t, const char *name, uint32_t *index, mu_error *errp);
/* The index of NAME: 0, or -1 when there is no such node. */
int churn_node_find(const churn_trace *t, const char *name, uint32_t *index);
/* Set what is known of a node: a NULL or "" string and a zero count leave
 * that attribute as it is. COUNTRY must be two ASCII letters (stored upper
 * case). Returns 0, or -1 (node unchanged) on a bad index or value. */
int churn_node_set(churn_trace *t, uint32_t node, const char *gpu_model, uint32_t gpu_count,
                   const char *country, mu_error *errp);
/* Fill *out for node i (i < churn_node_count). Returns 0, or -1 if out of range. */
int churn_node_get(const churn_trace *t, uint32_t i, churn_node *out);
size_t churn_node_count(const churn_trace *t);
/* True when some node has some attribute. */
bool churn_has_attributes(const churn_trace *t);

/* Append an event (at any time: churn_sort orders them). Fails on a time
 * that is negative or not finite, an unknown node or kind, or no memory. */
int churn_append(churn_trace *t, double time_s, uint32_t node, churn_kind kind, mu_error *errp);
/* Order events by time, then node, keeping the append order of events with
 * the same time and node (a zero-length interval stays LEAVE then JOIN).
 * Returns 0, or -1 with the trace unchanged on allocation failure. */
int churn_sort(churn_trace *t, mu_error *errp);
size_t churn_event_count(const churn_trace *t);
/* The events, borrowed; valid until the next append or sort. */
const churn_event *churn_events(const churn_trace *t);

/* UNIX time of time 0 when the trace is anchored to real time (FTA), else
 * 0 with *known false. */
double churn_origin_unix(const churn_trace *t, bool *known);
void churn_set_origin_unix(churn_trace *t, double unix_s);

/* "join", "leave", "spoof". */
const char *churn_kind_name(churn_kind k);
/* Parse a kind name, ignoring case. Returns 0/-1. */
int churn_kind_parse(const char *s, churn_kind *out);

#endif
