/* format.h - how the CLI shows replies: tables for people, JSON for scripts.
 * JSON field names follow the .proto field names, so scripts and other
 * clients see the same words; prices stay integer micro-USD in JSON (exact),
 * and are shown to people as USD with 2 decimals. */
#ifndef MUSTER_CLI_FORMAT_H
#define MUSTER_CLI_FORMAT_H

#include <stdint.h>
#include <stdio.h>

#include "muster.pb-c.h"

void format_workers_table(FILE *out, const Muster__ListWorkersReply *r);
void format_worker_detail(FILE *out, const Muster__WorkerInfo *w);
void format_status(FILE *out, const Muster__StatusReply *s);

/* Clusters and search, for people. now_ms is the client's wall clock (for
 * "ends in"). */
void format_quote(FILE *out, const Muster__QuoteReply *q);
void format_cluster_summary(FILE *out, const Muster__ClusterInfo *c);
void format_clusters_table(FILE *out, const Muster__ListClustersReply *r, uint64_t now_ms);
void format_cluster_detail(FILE *out, const Muster__ClusterInfo *c, uint64_t now_ms);
void format_search_table(FILE *out, const Muster__SearchReply *r);
/* "muster: cannot be met now: ..." and the alternatives as flags. */
void format_not_met(FILE *out, const Muster__NotMet *nm);
/* One line: "TIME  TOPIC  detail". */
void format_event_line(FILE *out, const Muster__Event *e);

/* JSON: one document per call, pretty-printed, ending in a newline.
 * Returns 0, or -1 when out of memory. */
int format_workers_json(FILE *out, const Muster__ListWorkersReply *r);
int format_worker_json(FILE *out, const Muster__WorkerInfo *w);
int format_status_json(FILE *out, const Muster__StatusReply *s);
int format_quote_json(FILE *out, const Muster__QuoteReply *q);
int format_cluster_json(FILE *out, const Muster__ClusterInfo *c);
/* Reservations: one as JSON or in detail (members, in use or free), a list. */
int format_reservation_json(FILE *out, const Muster__ReservationInfo *r);
int format_reservations_json(FILE *out, const Muster__ListReservationsReply *l);
void format_reservation_detail(FILE *out, const Muster__ReservationInfo *r);
void format_reservations_table(FILE *out, const Muster__ListReservationsReply *l);
int format_clusters_json(FILE *out, const Muster__ListClustersReply *r);
int format_search_json(FILE *out, const Muster__SearchReply *r);
/* The NotMet fields at the top level, plus
 * "error": {"status": "not_met", "reason": REASON}. */
int format_not_met_json(FILE *out, const Muster__NotMet *nm, const char *reason);
/* One event as one compact JSON line (JSON Lines). */
int format_event_json(FILE *out, const Muster__Event *e);
/* {"error": {"status": "...", "reason": "..."}} on stdout for --json users. */
int format_error_json(FILE *out, const char *status, const char *reason);

/* --- tasks ---------------------------------------------------------------------
 * A task is shown as CLUSTER/NUMBER. Its output and result are bytes: people
 * see them as text when they are printable UTF-8, else as size and hex;
 * JSON carries them in base64 (as protobuf's JSON mapping does), plus the
 * text when it is UTF-8. */

/* Table NUMBER NAME STATE WORKER GPUS ATTEMPTS EXIT AGE/REASON, then the
 * counts line. now_ms is the client's wall clock (for AGE). */
void format_tasks_table(FILE *out, const Muster__ListTasksReply *r, uint64_t now_ms);
/* "50 tasks: 12 succeeded, 3 running, ..." (no newline). */
void format_task_counts(FILE *out, const Muster__TaskCounts *c);
void format_task_detail(FILE *out, const Muster__TaskInfo *t, uint64_t now_ms);
/* A final task state: succeeded, failed, cancelled. */
int format_task_final(const char *state);
/* Whether BYTES are UTF-8 with no control characters but tab, CR and LF. */
int format_is_text(const uint8_t *bytes, size_t len);

int format_task_json(FILE *out, const Muster__TaskInfo *t);
int format_tasks_json(FILE *out, const Muster__ListTasksReply *r);
/* {"cluster_id", "first", "count"}. */
int format_submitted_json(FILE *out, const Muster__SubmitTasksReply *r);
/* Output of `task logs`: cluster_id, number, offset, next, final, state,
 * data (base64), text (or null); as one compact line when LINE (JSON Lines,
 * for --follow), else as a document. */
int format_task_logs_json(FILE *out, const char *cluster, uint32_t number,
                          const Muster__TaskLogsReply *r, int line);
/* The end of `task wait`: {"cluster_id", ["first", "count",] "outcome"
 * (succeeded, failed, timeout, interrupted), "counts" of the tasks waited
 * for, "total", "failed": [TASK...]} (first and count when SUBMITTED is not
 * NULL: after `task submit --wait`). */
int format_task_wait_json(FILE *out, const char *cluster, const Muster__SubmitTasksReply *submitted,
                          const char *outcome, const Muster__TaskCounts *counts,
                          const Muster__TaskInfo *const *failed, size_t n_failed);

const char *format_state_name(Muster__WorkerState s);

/* USD with 2 decimals from micro-USD ("0.51" for 510000, rounded half up;
 * a non-zero amount under a cent keeps its significant digits: "0.004"). */
void format_usd(uint64_t uusd, char *out, size_t n);
/* Local time of UNIX ms: "2025-11-21 22:30:05" ("-" for 0). */
void format_time(uint64_t ms, char *out, size_t n);
/* A cluster state that is final: released, expired, failed. */
int format_cluster_ended(const char *state);

#endif
