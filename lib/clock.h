/* Time as the tools read and print it. */
#ifndef CHOM_CLOCK_H
#define CHOM_CLOCK_H

#include <stddef.h>
#include <time.h>

/* Seconds on the monotonic clock: for durations and deadlines. */
double chom_mono(void);
/* t as UTC ISO 8601, 2026-11-27T02:00:00Z, into buf (at least 21 bytes). */
void chom_iso_time(time_t t, char *buf, size_t size);

#endif
