/*
 * verdict.h - does offload pay here? (SPEC §4.6, `kvbench compare`)
 *
 * Phase by phase: each phase of one mode's runs against the same phase of the baseline mode's,
 * metric by metric, with per-repeat values; a ratio of geometric means with a Welch 95 %
 * interval on the logs (stats_log_ratio_ci) once each side has COMPARE_MIN_REPEATS valid runs,
 * "insufficient repeats" below. Then one decision: the scenario's answering phases (its table
 * row's `answers`) decide, the other phases are the cost side; "cannot tell" with the reason
 * when the runs cannot answer (too few repeats, invalid runs, modes that mean nothing on the
 * engine, tiers never reached).
 */
#ifndef KVBENCH_VERDICT_VERDICT_H
#define KVBENCH_VERDICT_VERDICT_H

#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Below this many valid runs per mode no comparison gets a verdict. */
#define COMPARE_MIN_REPEATS 3
/* "Does not pay" needs the interval to rule out a gain above this (10 %): "no difference" with
 * an interval that still allows more is "cannot tell" (too wide). */
#define VERDICT_NO_GAIN_BOUND 1.10

/* The key of a mode entry in the per-mode maps: its label (unique, also for an A/A pair). */
const char *verdict_label_of(const json_t *mode);
/* The runs of a mode entry: its `repeats`, or its one summary (NULL where a run failed); at most
 * max. */
size_t verdict_runs_of(const json_t *mode, const json_t **out, size_t max);

/* comparison.json's `phases` (every phase of the baseline's runs, then "overall") from the
 * per-mode entries ({label, mode, summary | repeats}). New reference. */
json_t *verdict_phases(const json_t *modes);

/* comparison.json's `decision` from the phases, the modes and the comparison's warnings:
 * {verdict: pays | does_not_pay | cannot_tell | aa_no_difference | aa_difference, line,
 * answer_phases, answer: [...], cost: [...], mode, baseline}. New reference. */
json_t *verdict_decide(const json_t *phases, const json_t *modes, const json_t *warnings);

/* --expect-gain PHASE:METRIC:RATIO: parsed into phase, metric (a comparison metric name such as
 * ttft_p50_ms) and ratio. Returns 0, or -1 with a one-line err. */
struct expect_gain {
    char phase[64];
    char metric[64];
    double ratio;
};
int verdict_parse_expect_gain(const char *spec, struct expect_gain *out, char *err);

/* Whether the gain is shown: the first non-baseline mode's gain on phase/metric (baseline ÷ mode
 * for lower-is-better metrics, mode ÷ baseline for throughput) is at least ratio, and, with
 * enough repeats, its interval excludes no gain. {phase, metric, wanted, gain, ci95_low, shown,
 * why}. New reference. */
json_t *verdict_expect_gain(const json_t *phases, const json_t *modes,
                            const struct expect_gain *want);

/* A run's break-even (summary.json breakeven.break_even) in words, appended to out: "host at
 * every measured length, disk from 6000 tokens"; nothing for a tier it did not measure. */
void verdict_break_even_words(const json_t *break_even, struct buf *out);

#endif
