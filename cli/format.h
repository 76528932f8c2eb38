/* format.h - how the CLI shows replies: tables for people, JSON for scripts.
 * JSON field names follow the .proto field names, so scripts and other
 * clients see the same words. */
#ifndef MUSTER_CLI_FORMAT_H
#define MUSTER_CLI_FORMAT_H

#include <stdio.h>

#include "muster.pb-c.h"

void format_workers_table(FILE *out, const Muster__ListWorkersReply *r);
void format_worker_detail(FILE *out, const Muster__WorkerInfo *w);
void format_status(FILE *out, const Muster__StatusReply *s);

/* JSON: one document per call, pretty-printed, ending in a newline.
 * Returns 0, or -1 when out of memory. */
int format_workers_json(FILE *out, const Muster__ListWorkersReply *r);
int format_worker_json(FILE *out, const Muster__WorkerInfo *w);
int format_status_json(FILE *out, const Muster__StatusReply *s);
/* {"error": {"status": "...", "reason": "..."}} on stdout for --json users. */
int format_error_json(FILE *out, const char *status, const char *reason);

const char *format_state_name(Muster__WorkerState s);

#endif
