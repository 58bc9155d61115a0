/*
 * log.h - levelled, timestamped logging to stderr.
 *
 * One line per message: "<UTC ISO-8601> <LEVEL> <message>". Lines from different threads never
 * interleave. The level is process-wide and set once from --log-level.
 */
#ifndef KVBENCH_UTIL_LOG_H
#define KVBENCH_UTIL_LOG_H

#include "util/names.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARNING = 2, LOG_ERROR = 3, LOG_OFF = 4 };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* The levels' one table of names (util/names.h), for --log-level and the log lines. */
extern const struct name_entry LOG_LEVEL_NAMES[];
/* Parses DEBUG/INFO/WARNING/WARN/ERROR (any case); returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
