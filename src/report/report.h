/*
 * report.h - report.md from a run's summary.json and config.json.
 */
#ifndef KVBENCH_REPORT_REPORT_H
#define KVBENCH_REPORT_REPORT_H

#include "util/buf.h"

#include <jansson.h>

/* report.md from a summary (and the run's config). Caller frees. */
char *report_markdown(const json_t *summary, const json_t *config);

/* o[key] formatted with fmt (one double), or `absent` when it is missing or null: a table cell
 * (report.md, comparison.md and the scenarios' sections write them all this way). */
void report_num(struct buf *b, const json_t *o, const char *key, const char *fmt,
                const char *absent);
/* A scenario's verdict heading: "### name: `signal`" and its interpretation. */
void report_verdict(struct buf *b, const char *name, const json_t *verdict);

#endif
