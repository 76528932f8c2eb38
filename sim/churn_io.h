/* churn_io.h - reading and writing churn traces.
 *
 * Every reader reads a whole file and either returns a complete trace or
 * NULL with "FILE:LINE: what is wrong" in errp: never a partial trace.
 *
 * Native CSV (what `muster-sim generate churn` writes):
 *
 *   time_s,node,event[,gpu_model,gpu_count,country]
 *   0,node-0,join,RTX 4090,2,DE
 *   3600.5,node-0,leave,,,
 *   7200,node-0,join,,,
 *
 *   - the first line that is not blank or a '#' comment is the header,
 *     exactly one of the two forms above (blanks around names allowed);
 *   - every row has as many fields as the header; fields are trimmed of
 *     blanks; quoting is not supported, so names hold no ',' or '"';
 *   - time_s: seconds from the trace start, a number >= 0, rows in
 *     non-decreasing time;
 *   - node: any non-empty name; nodes are numbered in order of appearance;
 *   - event: join (available), leave (unavailable) or spoof (fails
 *     verification), any case;
 *   - gpu_model (free text), gpu_count (1..1024) and country (ISO 3166-1
 *     alpha-2) may be empty; a non-empty value states that attribute of the
 *     node, and a node may not be given two different values;
 *   - blank lines and lines starting with '#' are ignored; a file with no
 *     event rows is an error.
 *
 * Failure Trace Archive event_trace (e.g. LANL05 event_trace.tab): see
 * churn_read_fta.
 */
#ifndef MUSTER_SIM_CHURN_IO_H
#define MUSTER_SIM_CHURN_IO_H

#include <stddef.h>

#include "churn.h"
#include "error.h"
#include "textio.h"

/* What a reader saw, for reports (fields a format lacks stay 0). */
typedef struct churn_read_stats {
    size_t records;     /* event rows (CSV) or intervals (FTA) read */
    size_t zero_length; /* FTA: intervals with start == stop (kept) */
    size_t gaps;        /* FTA: intervals not followed at once by the node's next */
} churn_read_stats;

/* Read a native CSV churn trace (see above). stats may be NULL. */
churn_trace *churn_read_csv(const char *path, churn_read_stats *stats, mu_error *errp);

/* Read a Failure Trace Archive event_trace file.
 *
 * Columns (whitespace-separated: the archive's files pad tab-separated
 * fields with spaces and runs of tabs, so "split at tabs" would find empty
 * fields; names therefore hold no blanks):
 *   event_id component_id node_id platform_id node_name event_type
 *   event_start_time event_stop_time event_end_reason
 * event_type 1 = available, 0 = unavailable; times are UNIX seconds. An
 * optional header line (first field "event_id") must list exactly these
 * columns; blank lines and '#' lines are skipped.
 *
 * Each row is an interval of one node. Its start becomes a JOIN (type 1) or
 * LEAVE (type 0). Where a node's next interval does not begin exactly at
 * this one's stop (at its last interval, or at a gap), the stop becomes the
 * opposite event, so every interval the archive records is recoverable from
 * the events. Times are made relative to the earliest start (the trace
 * origin, kept in the trace). Nodes are identified by node_id, named by its
 * decimal value and numbered in increasing node_id order: node_name is not
 * an identity (in LANL05, 268 names belong to two node_ids each).
 *
 * event_id, component_id and platform_id must be integers; event_end_reason
 * is not used.
 *
 * Zero-length intervals (start == stop) are kept: their two events fall at
 * the same second, in the order LEAVE, JOIN (or the reverse for a zero-length
 * available interval), so a replay sees the failure; stats->zero_length
 * counts them. Rejected: wrong field count, non-numeric ids or times,
 * event_type other than 0/1, negative times, stop before start, and two
 * intervals of one node that overlap. */
churn_trace *churn_read_fta(const char *path, churn_read_stats *stats, mu_error *errp);

/* Append T in native CSV to out (times with millisecond resolution).
 * Attribute columns are written when some node has an attribute, on the
 * node's first event row only. Fails on a node name holding ',', '"' or a
 * line break, which the format cannot carry. */
int churn_write_csv(const churn_trace *t, sbuf *out, mu_error *errp);

/* Format a time in seconds the way the CSV writer does: milliseconds,
 * trailing zeros dropped ("3600", "0.25"). */
void churn_format_time(double t, char *out, size_t n);

#endif
