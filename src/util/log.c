/*
 * log.c - levelled logging. Each message is formatted into one buffer and written with a single
 * fwrite under the stdio lock, so concurrent threads produce whole lines.
 */
#include "util/log.h"

#include "util/clock.h"
#include "util/redact.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

static volatile enum log_level current_level = LOG_INFO;

const struct name_entry LOG_LEVEL_NAMES[] = {{"DEBUG", LOG_DEBUG},
                                             {"INFO", LOG_INFO},
                                             {"WARNING", LOG_WARNING},
                                             {"ERROR", LOG_ERROR},
                                             {NULL, 0}};

void log_set_level(enum log_level level)
{
    current_level = level;
}

enum log_level log_get_level(void)
{
    return current_level;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (const struct name_entry *e = LOG_LEVEL_NAMES; e->name; e++) {
        if (strcasecmp(s, e->name) == 0) {
            *out = (enum log_level)e->value;
            return 0;
        }
    }
    if (strcasecmp(s, "WARN") == 0) {
        *out = LOG_WARNING;
        return 0;
    }
    return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < current_level || level >= LOG_OFF)
        return;
    char line[2048];
    char ts[CLOCK_ISO_LEN];
    clock_iso_utc(clock_wall_ns(), ts);
    int n = snprintf(line, sizeof line, "%s %s ", ts, names_name(LOG_LEVEL_NAMES, (int)level));
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated message */
    line[len++] = '\n';
    size_t rlen;
    char *red = redact_dup(line, len, &rlen); /* no secret reaches a log */
    flockfile(stderr);
    fwrite(red ? red : line, 1, red ? rlen : len, stderr);
    funlockfile(stderr);
    free(red);
}
