/* tasklog.h - the latest part of a task's output, with offsets that count
 * every byte ever appended, so a reader asking "from offset N" learns both
 * what is still kept and what it missed. A ring of fixed capacity: memory
 * per task is bounded however much a task prints. */
#ifndef MUSTERD_TASKLOG_H
#define MUSTERD_TASKLOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct tasklog tasklog;

/* A log keeping the latest cap bytes (cap > 0); NULL when out of memory. */
tasklog *tasklog_create(size_t cap);
void tasklog_destroy(tasklog *l);

/* Start from saved state: data are the bytes at offsets
 * first .. first + len of the stream (only the latest cap are kept). */
void tasklog_restore(tasklog *l, const void *data, size_t len, uint64_t first);
void tasklog_append(tasklog *l, const void *data, size_t len);

/* Bytes appended ever (the offset the next byte gets). */
uint64_t tasklog_total(const tasklog *l);
/* Offset of the oldest byte still kept. */
uint64_t tasklog_first(const tasklog *l);

/* Copy up to max bytes from offset `from` on into buf (from older than
 * what is kept: from the oldest kept). Returns the number copied; *start
 * gets the offset of buf[0]. */
size_t tasklog_read(const tasklog *l, uint64_t from, void *buf, size_t max, uint64_t *start);

#endif
