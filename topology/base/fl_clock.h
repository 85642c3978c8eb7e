/*
 * fl_clock.h - the clocks feedline reads: monotonic time for timeouts,
 * backoff and latencies, wall time (epoch ms) for what is compared with
 * event times. One copy for every module.
 */
#ifndef FL_CLOCK_H
#define FL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t fl_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t fl_mono_ms(void)
{
    return fl_mono_us() / 1000;
}

static inline int64_t fl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
