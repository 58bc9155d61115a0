/*
 * sumtable.h - reading many runs' summary.json (files, run directories, results roots, globs)
 * and flattening each into one table row: run id, scenario, kv mode, valid, req/s, TTFT and
 * latency p50/p95, error rate, goodput attainment (runs with --slo), and the scenario's verdict.
 */
#ifndef KVBENCH_REPORT_SUMTABLE_H
#define KVBENCH_REPORT_SUMTABLE_H

#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Called for every path that could not be used (unreadable, malformed, not a summary). */
typedef void (*sumtable_warn_fn)(const char *path, const char *why, void *user);

/* Expand specs (a summary.json, a run directory, a directory of run directories, or a glob of
 * any of those) and read each summary. Returns a JSON array of {path, summary}, in order, without
 * duplicates; NULL when out of memory (never a list with a summary missing). */
BUF_MUST_CHECK json_t *sumtable_collect(const char *const *specs, size_t n, sumtable_warn_fn warn,
                                        void *user);
/* The flat row of one summary (with `shard: {index, count}` for one shard of a run). New
 * reference; NULL when out of memory (never a row with a cell missing). */
BUF_MUST_CHECK json_t *sumtable_row(const json_t *summary);
/* The scenario's verdict of a summary, {signal, interpretation}: overall_summary.<kvbm_key>,
 * kvbm_metrics.<signal_key> (an invalid run), or <extra_key>.verdict (multi_turn, trace), as the
 * scenario table names them. Borrowed; NULL when the summary has none (standard). */
const json_t *sumtable_verdict(const json_t *summary);
/* Its signal ("-" when none). */
const char *sumtable_signal(const json_t *summary);
/* When any row has an `attainment` (a run with --slo: overall_summary.goodput.attainment), give
 * the others one too (null), so that every row has the same keys. Returns whether any had it. */
bool sumtable_fill_attainment(json_t *rows);
/* An aligned text table of rows (as sumtable_row gives them); an attainment column when any row
 * has one. Out of memory is out's sticky error: the caller checks buf_failed(out). */
void sumtable_render(const json_t *rows, struct buf *out);

#endif
