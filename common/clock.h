/*
 * clock — the monotonic clock every room reads its "now" from (timeouts,
 * back-off, progress and ETA, latency figures). Never jumps with the wall
 * clock; [rt]: one clock_gettime, no lock, no allocation.
 */
#ifndef ES_CLOCK_H
#define ES_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t es_monotonic_ns(void);

/* The same in seconds. */
double es_monotonic_s(void);

#endif
