/*
 * The library's one clock for intervals on this host: heartbeat coalescing,
 * wait deadlines, action deadlines.  Monotonic, so a wall-clock step never
 * stretches or cuts a wait (the bucket itself runs on Redis' clock).
 */
#include <time.h>

#include "internal.h"

int64_t tkm__monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
