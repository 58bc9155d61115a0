/*
 * enums.h - the one table of names of each enumeration that a flag of several commands takes
 * (util/names.h): KV modes, log levels, arrivals, transports, prompt sets, prompt templates,
 * eviction pressure. A flag row points at its table (OPT_ENUM), so the name is parsed to the
 * C enum once, at the edge, and printed (help, config.json, errors) from the same rows.
 */
#ifndef KVBENCH_CMD_ENUMS_H
#define KVBENCH_CMD_ENUMS_H

#include "engine/kvbm.h" /* enum kv_mode */
#include "util/log.h"    /* enum log_level */
#include "util/names.h"

#include <stddef.h>

enum prompt_set { PROMPT_SET_SHORT, PROMPT_SET_LONG, PROMPT_SET_MIXED };
enum prompt_template { PROMPT_TEMPLATE_LLAMA3, PROMPT_TEMPLATE_NONE };
enum pressure_mode { PRESSURE_FIXED, PRESSURE_AUTO };

extern const struct name_entry KV_MODE_NAMES[];          /* enum kv_mode (engine/kvbm.h) */
extern const struct name_entry LOG_LEVEL_NAMES[];        /* enum log_level (util/log.h) */
extern const struct name_entry ARRIVAL_TABLE[];          /* enum arrival (load/loadgen.h) */
extern const struct name_entry TRANSPORT_NAMES[];        /* enum http_transport (net/http.h) */
extern const struct name_entry PROMPT_SET_NAMES[];       /* enum prompt_set: short, long, mixed */
extern const struct name_entry REUSE_PROMPT_SET_NAMES[]; /* the same values: short, long */
extern const struct name_entry PROMPT_TEMPLATE_NAMES[];  /* enum prompt_template */
extern const struct name_entry PRESSURE_NAMES[];         /* enum pressure_mode */

/* "a, b or c": a table's names as a sentence (error messages). Returns `out`. */
const char *enums_sentence(const struct name_entry *table, char *out, size_t len);

#endif
