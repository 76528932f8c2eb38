/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static struct {
    const char *prog;
    enum log_level level;
    FILE *out;
} logger = {"muster", LOG_INFO, NULL};

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_init(const char *prog, enum log_level level, FILE *out)
{
    logger.prog = prog;
    logger.level = level;
    logger.out = out;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = LOG_DEBUG; i <= LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

enum log_level log_get_level(void)
{
    return logger.level;
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
    if (level < logger.level || level >= LOG_OFF)
        return;
    FILE *out = logger.out ? logger.out : stderr;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

    /* Build the line first so that concurrent writers (several agents on one
     * terminal) do not interleave within a line. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s prog=%s event=%s", ts,
                     (long)(tv.tv_usec / 1000), level_names[level], logger.prog, event);
    if (fmt && *fmt && n > 0 && (size_t)n < sizeof(line) - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if (n >= (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, out);
    fflush(out);
}
