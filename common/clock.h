/* clock.h - the shells' clocks. The scheduler core never reads a clock: the
 * shells read one here and pass the time in as a parameter. */
#ifndef MUSTER_CLOCK_H
#define MUSTER_CLOCK_H

#include <signal.h>
#include <stdint.h>

/* UNIX time in milliseconds (wall clock; stored, shown to people). */
uint64_t clock_wall_ms(void);
/* Monotonic milliseconds (timeouts, intervals; never jumps). */
uint64_t clock_mono_ms(void);
/* Sleep for ms milliseconds (restarts after signals unless *stop is set). */
void clock_sleep_ms(uint64_t ms, volatile sig_atomic_t *stop);

#endif
