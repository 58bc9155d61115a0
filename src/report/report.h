/*
 * report.h - report.md from a run's summary.json and config.json.
 */
#ifndef KVBENCH_REPORT_REPORT_H
#define KVBENCH_REPORT_REPORT_H

#include "util/buf.h"

#include <jansson.h>

/* report.md from a summary (and the run's config). Caller frees. */
char *report_markdown(const json_t *summary, const json_t *config);

/* comparison.md from comparison.json (verdict/compare.h). Caller frees; NULL when out of
 * memory. */
char *compare_markdown(const json_t *comparison);

#endif
