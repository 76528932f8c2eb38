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
int format_clusters_json(FILE *out, const Muster__ListClustersReply *r);
int format_search_json(FILE *out, const Muster__SearchReply *r);
/* The NotMet fields at the top level, plus
 * "error": {"status": "not_met", "reason": REASON}. */
int format_not_met_json(FILE *out, const Muster__NotMet *nm, const char *reason);
/* One event as one compact JSON line (JSON Lines). */
int format_event_json(FILE *out, const Muster__Event *e);
/* {"error": {"status": "...", "reason": "..."}} on stdout for --json users. */
int format_error_json(FILE *out, const char *status, const char *reason);

const char *format_state_name(Muster__WorkerState s);

/* USD with 2 decimals from micro-USD ("0.51" for 510000, rounded half up;
 * a non-zero amount under a cent keeps its significant digits: "0.004"). */
void format_usd(uint64_t uusd, char *out, size_t n);
/* Local time of UNIX ms: "2025-11-21 22:30:05" ("-" for 0). */
void format_time(uint64_t ms, char *out, size_t n);
/* A cluster state that is final: released, expired, failed. */
int format_cluster_ended(const char *state);

#endif
