/*
 * kvsnap.h - snapshots of a Prometheus endpoint (KVBM's metrics), and the per-phase delta object
 * of SPEC §5.3 computed from two of them.
 */
#ifndef KVBENCH_PROBE_KVSNAP_H
#define KVBENCH_PROBE_KVSNAP_H

#include "model/engines.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct kv_snapshot {
    char label[96];
    char time[28];
    bool success;
    char error[256];
    json_t *metrics; /* {name: summed value}; NULL when !success */
    size_t malformed_lines;
    bool wrong_families; /* answered, but with none of the expected families */
    bool carried;        /* metrics carried over from the previous snapshot (see runner.c) */
};

/* The counters and gauges kvbench reads (KVBM's names, model/engines.h). */
extern const char *const KV_COUNTERS[];
extern const char *const KV_GAUGES[];

/* Scrape url (timeout_s): Prometheus text, or trtllm-serve's JSON iteration statistics (flattened
 * to trtllm:kvCacheStats.<key>). Never fails: a failed scrape is a snapshot with success ==
 * false. With families (name prefixes, NULL-terminated), an answer carrying none of them is a
 * failed snapshot too (wrong_families), never a source of zeros. */
void kvsnap_take(const char *url, double timeout_s, const char *label, const char *const *families,
                 struct kv_snapshot *out);
/* The metrics of a scrape's body (Prometheus text, or trtllm-serve's JSON) into out->metrics,
 * out->success and out->malformed_lines (out's other members are left as they are). */
void kvsnap_parse(const char *body, size_t len, struct kv_snapshot *out);
void kvsnap_free(struct kv_snapshot *s);
/* {label, time, success, error, metrics, malformed_lines}. New reference. */
json_t *kvsnap_json(const struct kv_snapshot *s);
/* The delta object between two snapshots: <counter>_delta (never negative; a reset reads as 0;
 * null when the counter is absent), <gauge>_after, derived totals; or {available: false, reason}
 * when either snapshot is missing. New reference. */
json_t *kvsnap_delta_json(const struct kv_snapshot *before, const struct kv_snapshot *after);

/* The G1 copy traffic of kvbench serve --g1 cuda between two snapshots: {h2d_bytes, d2h_bytes,
 * h2d_seconds, d2h_seconds (measured copy time), h2d_batches, d2h_batches, copy_errors,
 * fill_bytes, h2d_gb_per_s / d2h_gb_per_s (bytes per second of copying), h2d_mb_s / d2h_mb_s
 * (over duration_s), device_bytes_after}; NULL when the engine exports no such counters (any other
 * engine, or a snapshot failed). New reference. */
json_t *kvsnap_gpu_copies_json(const struct kv_snapshot *before, const struct kv_snapshot *after,
                               double duration_s);

/* The generic per-phase object {engine, <field>: delta or null, …} from two snapshots' metrics,
 * read by p's rules (model/engines.h). New reference. */
json_t *engine_delta(const struct engine_profile *p, const json_t *before, const json_t *after);

/* A phase's kvbm_metrics_delta (summary.json) from the snapshots around it: kvsnap_delta_json,
 * and where both snapshots succeeded its engine_delta (p's rules) and, on an engine that copies
 * between device and host memory, gpu_copies over duration_s. One function for a run's phases
 * and for kvbench merge, which computes it once over the shards' earliest before- and latest
 * after-snapshot. New reference. */
json_t *kvsnap_phase_delta(const struct engine_profile *p, const struct kv_snapshot *before,
                           const struct kv_snapshot *after, double duration_s);

#endif
