/*
 * report.h - report.md from a run's summary.json and config.json.
 */
#ifndef KVBENCH_BENCH_REPORT_H
#define KVBENCH_BENCH_REPORT_H

#include <jansson.h>

/* report.md from a summary (and the run's config). Caller frees. */
char *report_markdown(const json_t *summary, const json_t *config);

#endif
