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
#ifndef KVBENCH_MODEL_ENGINES_H
#define KVBENCH_MODEL_ENGINES_H

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

/* Where an engine publishes its context limit: GET path, then a dotted key into the JSON answer
 * ("data.$model.max_model_len": member data, the entry of the run's model, member
 * max_model_len; a number picks an array element). */
struct ctx_limit_source {
    const char *path;
    const char *key;
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
    const struct ctx_limit_source *ctx_limits; /* tried in order; NULL: none published */
    /* NULL: kvbench's KV modes (off / cpu_only / cpu_disk through KVBM's tiers) are this engine's
     * own. Else they are not settable on it, and this says what the engine has instead. */
    const char *kv_modes_instead;
};

/* The profile of an engine nothing identified: no metric family is read as its (only the
 * responses' own reuse fields count) and nothing is assumed about its tiers or limits. */
extern const struct engine_profile ENGINE_UNKNOWN;

/* Every profile, NULL-terminated. */
extern const struct engine_profile *const ENGINE_PROFILES[];
extern const char *const ENGINE_NAMES[]; /* "auto", then each profile's name */

const struct engine_profile *engine_profile_find(const char *name);

/* What the server showed, for engine_detect (each NULL when it did not answer). */
struct engine_seen {
    const json_t *models;       /* /v1/models body */
    const char *health_body;    /* /health body */
    const json_t *metrics;      /* the base URL's /metrics as {name: value} */
    const json_t *kvbm_metrics; /* the KV metrics URL's (--kvbm-metrics-url) */
    const char *server_header;  /* the Server header of /v1/models */
};

/* Who answers. */
struct engine_id {
    const struct engine_profile *profile; /* never NULL: ENGINE_UNKNOWN when nothing matched */
    bool embedded;                        /* kvbench serve, showing profile's personality */
    char title[96];     /* for reports: "vLLM", "kvbench serve (vllm personality)" */
    char evidence[320]; /* one sentence: what decided it, or what was tried */
};

/* Decide the engine from what the server shows. Unidentified is ENGINE_UNKNOWN with what was
 * tried, never a guess. */
void engine_detect(const struct engine_seen *seen, struct engine_id *out);
/* The identity of a profile the user named (--engine NAME). */
void engine_named(const struct engine_profile *p, struct engine_id *out);

/* Whether kvbench's KV modes mean something on this engine (its own tiers, or kvbench serve). */
bool engine_kv_modes_apply(const struct engine_id *id);

/* The context limit in a source's JSON answer (> 0), or -1 when the key is absent or not a
 * positive integer. A key part "$model" picks the array entry whose id is model. */
long long engine_ctx_limit_in(const struct ctx_limit_source *src, const json_t *answer,
                              const char *model);

/* The generic per-phase object {engine, <field>: delta or null, …} from two snapshots' metrics. */
json_t *engine_delta(const struct engine_profile *p, const json_t *before, const json_t *after);

#endif
