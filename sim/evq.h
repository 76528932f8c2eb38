/* evq.h - the simulator's event queue: a binary min-heap in virtual time.
 *
 * Events are ordered by time (virtual milliseconds), then by a class the
 * caller picks (so that at one instant, say, churn comes before arrivals),
 * then by the order they were pushed: a total order, so a replay pops the
 * same events in the same order on every run.
 *
 * The heap holds only what is pending: the engine feeds a trace into it one
 * event at a time (the next churn event is pushed when the current one is
 * popped), so its size follows what is in flight, not the trace length.
 * Entries are 32 bytes, stored by value in one array: no allocation per
 * event.
 */
#ifndef MUSTER_SIM_EVQ_H
#define MUSTER_SIM_EVQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct evq_event {
    uint64_t t;     /* virtual time, ms */
    uint64_t order; /* class << 48 | push sequence: ties at one instant */
    uint32_t kind;  /* the caller's */
    uint32_t a, b;  /* the caller's payload */
    uint32_t c;
} evq_event;

typedef struct evq evq;

/* NULL on allocation failure. */
evq *evq_create(void);
/* Accepts NULL. */
void evq_destroy(evq *q);

/* Push an event at time T in class CLASS (0..65535; lower first at one
 * instant). Returns 0, or -1 (errno ENOMEM) with the queue unchanged. */
int evq_push(evq *q, uint64_t t, uint16_t cls, uint32_t kind, uint32_t a, uint32_t b, uint32_t c);
/* Pop the first event into *out. False when the queue is empty. */
bool evq_pop(evq *q, evq_event *out);
/* The first event, borrowed (valid until the next push or pop), or NULL. */
const evq_event *evq_peek(const evq *q);

size_t evq_size(const evq *q);
/* The most events ever pending at once. */
size_t evq_peak(const evq *q);
/* Bytes held by the queue. */
size_t evq_bytes(const evq *q);

#endif
