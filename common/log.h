/* log.h - structured logs to stderr, one event per line (logfmt).
 *
 *   ts=2026-11-21T21:56:20.123Z level=info prog=musterd event=worker.online id=... gpus=2
 *
 * Logging is process-wide by nature (there is one stderr), so the level and
 * program name are set once at start-up by main(); library and core code
 * never log, they return errors. This is the one piece of file-scope mutable
 * state in the shells, and it is written only before any thread exists.
 */
#ifndef MUSTER_LOG_H
#define MUSTER_LOG_H

#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

void log_init(const char *prog, enum log_level level, FILE *out);
/* Parse "debug", "info", "warn", "error", "off". Returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
enum log_level log_get_level(void);

/* EVENT is a dotted name (e.g. "worker.online"); FMT adds key=value pairs. */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
