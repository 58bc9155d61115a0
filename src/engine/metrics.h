/*
 * metrics.h - the writers behind the engine's /metrics, apart from the engine that feeds them:
 * what a personality serves is the catalogue's rows (model/engines.h) filled from a set of
 * figures, so a test can render any personality's /metrics with known values and read it back
 * through the harness's rules (tests/unit/test_catalogue.c). The engine's own entry points
 * (metrics_render_*) are in internal.h.
 */
#ifndef KVBENCH_ENGINE_METRICS_H
#define KVBENCH_ENGINE_METRICS_H

#include "engine/kvbm.h"
#include "model/engines.h"
#include "util/buf.h"

#include <stddef.h>
#include <stdint.h>

/* The value of each figure: count[] for the rows of type METRIC_COUNTER, gauge[] for
 * METRIC_GAUGE. */
struct metric_figures {
    uint64_t count[EF_COUNT];
    double gauge[EF_COUNT];
};

/* Prometheus text of rows (ended by {NULL}): one HELP / TYPE head per family, each line
 * labelled {labels,row label} (labels may be NULL), the rows that need more tiers than tiers
 * left out. */
void metrics_write_rows(const struct served_metric *rows, const char *labels,
                        enum served_when tiers, const struct metric_figures *f, struct buf *o);

/* The metrics port's text: KVBM's counters (KVBM_SERVED) and gauges, then kvbench's extras. */
void metrics_write_kvbm(const struct kvbm_counters *c, const struct kvbm_gauges *g,
                        const struct kvbm_config *cfg, struct buf *o);

/* What trtllm-serve's JSON iteration statistics say. */
struct trtllm_figures {
    uint64_t iter, active;
    size_t max_blocks, used_blocks, tokens_per_block;
    uint64_t reused_blocks, missed_blocks;
};
/* trtllm-serve's /metrics body: one iteration's statistics with its kvCacheStats. */
void metrics_write_trtllm(const struct trtllm_figures *t, const char *timestamp, struct buf *o);

#endif
