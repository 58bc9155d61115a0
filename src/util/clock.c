/*
 * clock.c - monotonic and wall clocks, ISO-8601 formatting.
 */
#include "util/clock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t clock_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "YYYY-MM-DDTHH:MM:SS" then the fraction and zone that fmt writes from frac. */
static void iso_utc(uint64_t wall_ns, char *out, size_t cap, const char *fmt, unsigned frac)
{
    time_t secs = (time_t)(wall_ns / 1000000000ull);
    struct tm tm;
    gmtime_r(&secs, &tm);
    if (strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
        out[0] = '\0';
        return;
    }
    snprintf(out + 19, cap - 19, fmt, frac);
}

void clock_iso_utc(uint64_t wall_ns, char out[CLOCK_ISO_LEN])
{
    iso_utc(wall_ns, out, CLOCK_ISO_LEN, ".%06uZ",
            (unsigned)((wall_ns % 1000000000ull) / 1000u) % 1000000u);
}

void clock_iso_utc_ms(uint64_t wall_ns, char out[CLOCK_ISO_MS_LEN])
{
    iso_utc(wall_ns, out, CLOCK_ISO_MS_LEN, ".%03u+00:00",
            (unsigned)((wall_ns % 1000000000ull) / 1000000u) % 1000u);
}

int clock_parse_iso(const char *s, double *epoch_s)
{
    struct tm tm = {0};
    int used = 0;
    if (!s ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        used != 19)
        return -1;
    double frac = 0, scale = 0.1;
    const char *p = s + 19;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += (*p - '0') * scale;
    bool z = *p == 'Z' && !p[1], offset0 = strcmp(p, "+00:00") == 0;
    if ((!z && !offset0) || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *epoch_s = (double)t + frac;
    return 0;
}

void clock_compact_utc(uint64_t wall_ns, char out[17])
{
    time_t secs = (time_t)(wall_ns / 1000000000ull);
    struct tm tm;
    gmtime_r(&secs, &tm);
    if (strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        out[0] = '\0';
}

void clock_sleep_ns(uint64_t ns, const volatile int *stop)
{
    struct timespec req = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    struct timespec rem;
    while (nanosleep(&req, &rem) < 0 && errno == EINTR) {
        if (stop && *stop)
            return;
        req = rem;
    }
}
