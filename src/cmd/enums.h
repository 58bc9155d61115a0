/*
 * enums.h - where the flags find each enumeration's one table of names (util/names.h). A table
 * lives with its enum: KV modes in model/kvmode.h, log levels in util/log.h, arrivals in
 * load/loadgen.h, transports in net/http.h; the enumerations only the commands have (prompt
 * sets, prompt templates, eviction pressure) live here. A flag row points at its table
 * (OPT_ENUM), so the name is parsed to the C enum once, at the edge, and printed (help,
 * config.json, errors) from the same rows.
 */
#ifndef KVBENCH_CMD_ENUMS_H
#define KVBENCH_CMD_ENUMS_H

#include "load/loadgen.h" /* enum arrival, ARRIVAL_TABLE */
#include "model/kvmode.h" /* enum kv_mode, KV_MODE_NAMES */
#include "net/http.h"     /* enum http_transport, TRANSPORT_NAMES */
#include "util/log.h"     /* enum log_level, LOG_LEVEL_NAMES */
#include "util/names.h"

#include <stddef.h>

enum prompt_set { PROMPT_SET_SHORT, PROMPT_SET_LONG, PROMPT_SET_MIXED };
enum prompt_template { PROMPT_TEMPLATE_LLAMA3, PROMPT_TEMPLATE_NONE };
enum pressure_mode { PRESSURE_FIXED, PRESSURE_AUTO };

extern const struct name_entry PROMPT_SET_NAMES[];       /* enum prompt_set: short, long, mixed */
extern const struct name_entry REUSE_PROMPT_SET_NAMES[]; /* the same values: short, long */
extern const struct name_entry PROMPT_TEMPLATE_NAMES[];  /* enum prompt_template */
/* --chat-template: auto (CHAT_TEMPLATE_FLAG_AUTO) or one of model/chattpl's enum chat_template */
#define CHAT_TEMPLATE_FLAG_AUTO 99
extern const struct name_entry CHAT_TEMPLATE_FLAG_NAMES[];
extern const struct name_entry PRESSURE_NAMES[]; /* enum pressure_mode */

/* "a, b or c": a table's names as a sentence (error messages). Returns `out`. */
const char *enums_sentence(const struct name_entry *table, char *out, size_t len);

#endif
