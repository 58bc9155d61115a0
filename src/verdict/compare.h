/*
 * compare.h - a comparison of KV modes (SPEC §2 `kvbench compare`) as analysis: comparison.json's
 * content from the runs' summaries (per mode the run id and validity, per metric the values, the
 * difference and the ratio against the first mode). Running the modes is run/comparison.h's.
 */
#ifndef KVBENCH_VERDICT_COMPARE_H
#define KVBENCH_VERDICT_COMPARE_H

#include <jansson.h>
#include <stddef.h>

/* The label of mode i among modes (its name, or name_<i+1> when the list names it twice: the two
 * sides of an A/A comparison), which also names its runs (<compare-id>_<label>[_r<k>]). */
void compare_label(const char *const *modes, size_t n, size_t i, char *out, size_t cap);

/* comparison.json's content from the per-mode entries ({mode, label, run_id, summary|null, ...};
 * with repeats, `repeats`: [summary|null, ...] in run order; label tells apart the two sides of
 * an A/A comparison). With more than one run per mode the metrics' values are the means over
 * the valid runs, and `repeats` holds, for TTFT p50/p95, latency p50 and throughput over the
 * whole runs, each mode's runs, mean and t interval, the ratio to the baseline with its Welch
 * interval, and the verdict. `phases` compares phase by phase and `decision` is the one verdict
 * (verdict.h). */
json_t *compare_build(const json_t *modes);
/* The metrics that get statistics over repeats (comparison.json `repeats.stats`), in their order,
 * NULL-terminated. */
const char *const *compare_stat_metrics(void);

#endif
