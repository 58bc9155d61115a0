/*
 * clock.h - time sources.
 *
 * Durations always come from CLOCK_MONOTONIC (immune to wall-clock steps); wall-clock stamps are
 * UTC ISO-8601 with microseconds, e.g. "2026-11-28T00:51:45.123456Z".
 */
#ifndef KVBENCH_UTIL_CLOCK_H
#define KVBENCH_UTIL_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define CLOCK_ISO_LEN 28 /* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" + NUL */

/* Monotonic nanoseconds since an arbitrary origin. */
uint64_t clock_now_ns(void);
/* Wall-clock nanoseconds since the Unix epoch. */
uint64_t clock_wall_ns(void);
/* Format wall-clock ns as UTC ISO-8601 with microseconds into out[CLOCK_ISO_LEN]. */
void clock_iso_utc(uint64_t wall_ns, char out[CLOCK_ISO_LEN]);
/* The reference harness's stamps in the artifacts it defines (request rows' start_ts / end_ts,
 * created_utc): milliseconds and an explicit offset, "2026-11-30T20:16:46.987+00:00". */
#define CLOCK_ISO_MS_LEN 30
void clock_iso_utc_ms(uint64_t wall_ns, char out[CLOCK_ISO_MS_LEN]);
/* Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS[.frac]Z" or "...[.frac]+00:00" (what
 * clock_iso_utc and clock_iso_utc_ms write).
 * Returns 0, or -1 when s is not such a time. */
int clock_parse_iso(const char *s, double *epoch_s);
/* Format wall-clock ns as a compact run id "YYYYMMDDTHHMMSSZ" into out (>= 17 bytes). */
void clock_compact_utc(uint64_t wall_ns, char out[17]);
/* Sleep for ns nanoseconds (restarts after signals unless *stop becomes nonzero). */
void clock_sleep_ns(uint64_t ns, const volatile int *stop);
/* ns → milliseconds as double. */
static inline double clock_ns_to_ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

#endif
