/* clock.c - see clock.h. */
#include "clock.h"

#include <errno.h>
#include <time.h>

static uint64_t read_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t clock_wall_ms(void)
{
    return read_ms(CLOCK_REALTIME);
}

uint64_t clock_mono_ms(void)
{
    return read_ms(CLOCK_MONOTONIC);
}

void clock_sleep_ms(uint64_t ms, volatile sig_atomic_t *stop)
{
    struct timespec req = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    struct timespec rem;
    while (nanosleep(&req, &rem) == -1 && errno == EINTR) {
        if (stop && *stop)
            return;
        req = rem;
    }
}
