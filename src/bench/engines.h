/*
 * engines.h - engine profiles (`kvbench run --engine`): where each engine serves its metrics and
 * how its own counters map onto kvbench's generic per-phase KV fields. Profiles are data, one
 * table per engine in engines.c; the signals read only the generic fields and never branch on an
 * engine's name, so a new engine is one more table.
 *
 * Generic fields of a phase (each null when the engine does not report it):
 *   prompt_tokens           prompt tokens the engine saw
 *   reused_tokens           prompt tokens reused from any KV tier instead of recomputed
 *   reused_tokens_device    … of them from device memory (G1)
 *   reused_tokens_host      … from host memory (G2)
 *   reused_tokens_disk      … from disk / storage (G3)
 *   reused_tokens_external  … from an offload connector whose tier is not told (vLLM)
 *   onboard_blocks_host     blocks brought back host → device
 *   onboard_blocks_disk     blocks brought back disk → device
 *   offload_blocks_host     blocks copied device → host
 *   offload_blocks_disk     blocks written to disk
 *   reused_blocks / missed_blocks   block-level prefix hits and misses (TensorRT-LLM)
 *   preemptions             sequences preempted
 *   cache_usage_after       share of the device KV cache in use after the phase (gauge)
 */
#ifndef KVBENCH_BENCH_ENGINES_H
#define KVBENCH_BENCH_ENGINES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum kv_field {
    KF_PROMPT_TOKENS,
    KF_REUSED_TOKENS,
    KF_REUSED_DEVICE,
    KF_REUSED_HOST,
    KF_REUSED_DISK,
    KF_REUSED_EXTERNAL,
    KF_ONBOARD_HOST,
    KF_ONBOARD_DISK,
    KF_OFFLOAD_HOST,
    KF_OFFLOAD_DISK,
    KF_REUSED_BLOCKS,
    KF_MISSED_BLOCKS,
    KF_PREEMPTIONS,
    KF_CACHE_USAGE, /* a gauge: the value after the phase */
    KF_COUNT
};

extern const char *const KV_FIELD_NAMES[KF_COUNT];

/* One source of a generic field: a metric (summed over label sets, or the `name{label="v"}`
 * entry; a trailing '*' in the name matches every entry with that prefix), times scale. Several
 * rules for one field add up. */
struct kv_rule {
    enum kv_field field;
    const char *metric;
    double scale;
    const char *scale_metric; /* multiply by this metric's value after the phase (blocks→tokens) */
};

struct engine_profile {
    const char *name;
    const char *title;           /* for reports */
    const char *owned_by;        /* /v1/models owned_by that identifies the engine */
    const char *metrics_url;     /* default, relative to --base-url ("/metrics"), or absolute */
    const char *const *families; /* metric name prefixes that prove the endpoint is this engine's */
    const struct kv_rule *rules;
    const char *reuse_source; /* what per-request evidence the engine gives, for docs/reports */
    bool tier_breakdown;      /* tells device / host / disk apart */
    bool carry_empty;         /* an answer with none of the families means "no change since the last
                                 poll" (trtllm-serve drains its statistics), not "unavailable" */
};

/* Every profile, NULL-terminated. */
extern const struct engine_profile *const ENGINE_PROFILES[];
extern const char *const ENGINE_NAMES[]; /* "auto", then each profile's name */

const struct engine_profile *engine_profile_find(const char *name);

/* Decide the engine from what the server shows. models: /v1/models body (or NULL); health_body
 * (or NULL); metrics: a {name: value} object of the base URL's /metrics (or NULL). Fills evidence
 * (one sentence). Never NULL: the fallback is dynamo with evidence saying so. */
const struct engine_profile *engine_detect(const json_t *models, const char *health_body,
                                           const json_t *metrics, char *evidence, size_t len);

/* The generic per-phase object {engine, <field>: delta or null, …} from two snapshots' metrics. */
json_t *engine_delta(const struct engine_profile *p, const json_t *before, const json_t *after);

#endif
