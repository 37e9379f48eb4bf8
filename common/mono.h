/*
 * mono.h - the monotonic clock, for deadlines, ages and expiries.
 *
 * Contract: thread-safe; never fails (CLOCK_MONOTONIC always exists on
 * Linux). Values only compare with each other: they are not wall time.
 */
#ifndef CHARTFS_MONO_H
#define CHARTFS_MONO_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in whole seconds. */
time_t mono_s(void);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t mono_ms(void);

#endif
