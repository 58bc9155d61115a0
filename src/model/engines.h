/*
 * engines.h - the engine catalogue: everything kvbench knows about other inference engines, as
 * data, one row set per engine in engines.c. Each row set carries two faces of one engine:
 *   - the profile the harness reads (`kvbench run --engine`): where the engine serves its
 *     metrics, which metric families prove it is this engine, how its counters map onto kvbench's
 *     generic per-phase KV fields (struct kv_rule), where it publishes its context limit, where
 *     per-request reuse shows;
 *   - the personality the embedded engine imitates (`kvbench serve --personality`): its /health,
 *     error and /v1/models shapes, where usage goes in a stream, its /tokenize dialect, and the
 *     metrics it serves (struct served_metric), named with the same spellings the rules read.
 * The signals, the metrics reader (probe/kvsnap), the server tokenizer (model/tokserver) and the
 * engine's wire.c / metrics.c read these rows and never branch on an engine's name, so a new
 * engine is one more row set (and its round-trip test in tests/unit/test_catalogue.c).
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
 *   offload_blocks_disk     blocks written to disk (host → disk and device → disk)
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

/* ------------------------------------------------------------ metric names read and served */

/* KVBM's names (Dynamo's KV block manager, on its metrics port), spelled once: the Dynamo
 * profile's rules, the snapshot reader's counter list (probe/kvsnap) and the embedded engine's
 * metrics port (engine/metrics.c) all use these. */
#define KVBM_OFFLOAD_D2H        "kvbm_offload_blocks_d2h"
#define KVBM_OFFLOAD_H2D        "kvbm_offload_blocks_h2d"
#define KVBM_OFFLOAD_D2D        "kvbm_offload_blocks_d2d"
#define KVBM_ONBOARD_H2D        "kvbm_onboard_blocks_h2d"
#define KVBM_ONBOARD_D2D        "kvbm_onboard_blocks_d2d"
#define KVBM_MATCHED_TOKENS     "kvbm_matched_tokens"
#define KVBM_DISK_BYTES_READ    "kvbm_disk_bytes_read"
#define KVBM_DISK_BYTES_WRITTEN "kvbm_disk_bytes_written"
#define KVBM_CACHE_EVICTIONS    "kvbm_cache_evictions"
#define KVBM_CACHE_PREFETCHES   "kvbm_cache_prefetches"
#define KVBM_HOST_HIT_RATE      "kvbm_host_cache_hit_rate"
#define KVBM_DISK_HIT_RATE      "kvbm_disk_cache_hit_rate"
#define KVBM_DISK_FETCH_P50_MS  "kvbm_disk_fetch_p50_ms"
#define KVBM_DISK_FETCH_P95_MS  "kvbm_disk_fetch_p95_ms"
#define KVBM_DISK_FETCH_P99_MS  "kvbm_disk_fetch_p99_ms"
/* kvbench serve's own extras on the metrics port, for what KVBM has no name for */
#define KVBENCH_TIER_BLOCKS   "kvbench_tier_blocks"
#define KVBENCH_TIER_CAPACITY "kvbench_tier_capacity_blocks"

/* trtllm-serve's /metrics is JSON iteration statistics; the reader flattens the last one's
 * kvCacheStats object to TRTLLM_KV_PREFIX<key> entries. */
#define TRTLLM_KV_STATS         "kvCacheStats"
#define TRTLLM_KV_PREFIX        "trtllm:" TRTLLM_KV_STATS "."
#define TRTLLM_REUSED_BLOCKS    "reusedBlocks"
#define TRTLLM_MISSED_BLOCKS    "missedBlocks"
#define TRTLLM_TOKENS_PER_BLOCK "tokensPerBlock"

/* What an engine counts, as the embedded engine knows it: the source of each metric a
 * personality serves. */
enum engine_figure {
    EF_PROMPT_TOKENS,     /* prompt tokens seen */
    EF_GENERATION_TOKENS, /* tokens generated */
    EF_REQUESTS_OK,       /* requests finished successfully */
    EF_RUNNING,           /* requests in flight (gauge) */
    EF_CACHE_USAGE,       /* share of the device blocks in use (gauge) */
    EF_CACHE_TOKENS,      /* tokens the device blocks in use hold (gauge) */
    EF_PREFIX_QUERIES,    /* prompt tokens looked up in the prefix cache */
    EF_HITS_DEVICE,       /* … found in device memory */
    EF_HITS_HOST,         /* … onboarded from host memory */
    EF_HITS_DISK,         /* … onboarded from disk */
    EF_HITS_OFFLOAD,      /* host + disk: what an offload connector served */
    EF_QUERIES_OFFLOAD,   /* queries less device hits: what an offload connector was asked */
    EF_HIT_RATE,          /* every hit over the queries (gauge) */
    EF_EVALUATED,         /* prompt tokens computed rather than reused */
    EF_PREEMPTIONS,       /* sequences preempted (the embedded engine never preempts) */
    EF_REUSED_BLOCKS,     /* blocks found in the prefix cache (TensorRT-LLM's reusedBlocks) */
    EF_MISSED_BLOCKS,     /* blocks looked up and not found */
    EF_OFFLOAD_D2H,       /* KVBM's block counters */
    EF_OFFLOAD_H2D,
    EF_OFFLOAD_D2D,
    EF_ONBOARD_H2D,
    EF_ONBOARD_D2D,
    EF_MATCHED_TOKENS,
    EF_DISK_BYTES_READ,
    EF_DISK_BYTES_WRITTEN,
    EF_COUNT
};

enum metric_type {
    METRIC_COUNTER, /* an integer that only grows */
    METRIC_GAUGE,   /* a value read as it is */
};

/* Which KV tiers a served metric needs: an engine without them does not serve it. */
enum served_when {
    SERVED_ALWAYS,
    SERVED_WITH_OFFLOAD, /* host (or an offload connector) on: kv mode cpu_only or cpu_disk */
    SERVED_WITH_DISK,    /* disk on: kv mode cpu_disk */
};

/* One line of Prometheus text a personality serves. Consecutive rows of one name are one family
 * (one HELP / TYPE head) told apart by label. */
struct served_metric {
    const char *name;
    enum metric_type type;
    const char *help;
    enum engine_figure figure;
    const char *label; /* added after the personality's own labels ("cache_source=\"host\""), or
                          NULL */
    enum served_when when;
};

/* ------------------------------------------------------------ personalities */

enum health_style {
    HEALTH_DYNAMO, /* {"status":"healthy","endpoints":[…],"instances":[…]}, 503 while not ready */
    HEALTH_EMPTY,   /* 200 with an empty body (vLLM, SGLang, TensorRT-LLM) */
    HEALTH_LLAMACPP /* {"status":"ok"}; 503 {"error":{"code":503,"message":"Loading model"}} */
};

enum error_style {
    ERROR_OPENAI,  /* {"error":{"message","type","param","code"}} */
    ERROR_OBJECT,  /* {"object":"error","message","type","param","code"} (SGLang, older vLLM) */
    ERROR_LLAMACPP /* {"error":{"code":<status>,"message","type"}} */
};

enum metrics_style {
    METRICS_DYNAMO,     /* dynamo_frontend_* on the API port, KVBM's kvbm_* on --metrics-port */
    METRICS_PROMETHEUS, /* the personality's served rows on the API port */
    METRICS_TRTLLM      /* trtllm-serve's JSON iteration statistics at /metrics (kvCacheStats) */
};

enum tokenize_style {
    TOKENIZE_NONE,    /* no /tokenize (Dynamo's frontend, trtllm-serve) */
    TOKENIZE_VLLM,    /* {model, prompt, add_special_tokens} -> {count, max_model_len, tokens} */
    TOKENIZE_LLAMACPP /* {content, add_special} -> {tokens} */
};

/* A /tokenize dialect: the request's and the answer's member names. */
struct tokenize_dialect {
    enum tokenize_style style;
    const char *model_key;   /* the model's name, or NULL: not sent */
    const char *text_key;    /* the text to count */
    const char *special_key; /* whether to add special tokens (the BOS) */
    bool special_default;    /* what the server does when special_key is absent */
    const char *count_key;   /* the answer's token count, or NULL: only the tokens array */
    const char *tokens_key;  /* the answer's token ids */
};

/* Every dialect, ended by {TOKENIZE_NONE, …}. */
extern const struct tokenize_dialect TOKENIZE_DIALECTS[];
/* The dialect of style, or NULL for TOKENIZE_NONE. */
const struct tokenize_dialect *tokenize_dialect(enum tokenize_style style);

/* How the embedded engine looks from outside when it imitates an engine (`kvbench serve
 * --personality`). It changes only the outside of the engine, each after that engine's public
 * docs (docs/ENGINES.md lists the sources): the /health body, the /v1/models fields, which
 * metrics are served and where, where usage and cached tokens appear in a stream, the error
 * body's shape, and the few behaviours a client must cope with (llama.cpp's silent truncation at
 * the slot context, a server that adds its own BOS token, a model field that is ignored). */
struct personality {
    const char *name;
    const char *owned_by; /* /v1/models data[].owned_by */
    enum health_style health;
    enum error_style errors;
    enum metrics_style metrics;
    /* METRICS_PROMETHEUS: the rows served at the API port's /metrics (ended by {NULL}), labelled
     * model_label="<model>" then extra_labels (either NULL: none) */
    const struct served_metric *served;
    const char *model_label;
    const char *extra_labels;
    bool kvbm_port;           /* KVBM metrics on --metrics-port */
    bool usage_details;       /* usage.prompt_tokens_details.cached_tokens */
    bool usage_chunk;         /* stream_options.include_usage: a final chunk with choices [] */
    bool usage_on_last_chunk; /* usage (and timings) on the last text chunk, always */
    bool timings;             /* llama.cpp's per-response timings {prompt_n, cache_n, …} */
    bool truncate_prompt;     /* over the context: cut the prompt (llama.cpp), not refuse */
    bool model_ignored;       /* any model field is accepted */
    bool adds_bos;            /* the server puts its own BOS token before a text prompt */
    bool props;               /* llama.cpp's GET /props (default_generation_settings.n_ctx) */
    bool models_max_len;      /* /v1/models entries carry root and max_model_len (vLLM, SGLang) */
    bool models_meta;         /* /v1/models entries carry meta {n_ctx_train, n_vocab} (llama.cpp) */
    enum tokenize_style tokenize;
    bool tokenize_messages; /* /tokenize also takes {messages, add_generation_prompt} (vLLM) */
    bool chat_role_null; /* a chat stream's role chunk carries content null, not "" (llama.cpp) */
};

/* KVBM's block counters as the embedded engine serves them on its metrics port (the Dynamo
 * personality's kvbm_port), ended by {NULL}. */
extern const struct served_metric KVBM_SERVED[];

/* ------------------------------------------------------------ profiles */

/* What identifies an engine beyond its /v1/models owner and its metric families on the base URL
 * (engine_detect tries these after those of every profile). */
struct engine_marks {
    const char *const *health;       /* strings its /health body carries, all of them; or NULL */
    const char *health_says;         /* the evidence sentence when they do */
    const char *const *api_families; /* prefixes on the base URL's /metrics; or NULL */
    const char *port_says;           /* what the KV metrics URL carries when it shows the
                                        profile's families (a profile with no metrics_url) */
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
    /* what `kvbench serve --personality NAME` imitates of it; NULL: no personality */
    const struct personality *serve;
    const struct engine_marks *marks; /* NULL: owner and families only */
};

/* NVIDIA Dynamo + KVBM: KVBM's own counters, whose keys (<metric>_delta) the KV delta object of
 * every phase carries (probe/kvsnap.h) whatever the engine. */
extern const struct engine_profile ENGINE_DYNAMO;

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

/* Whether a {name: value} metrics object has a name starting with one of families (prefixes,
 * NULL-terminated). */
bool engine_has_family(const json_t *metrics, const char *const *families);

/* The personality named name (a profile's name), or NULL. */
const struct personality *engine_personality_find(const char *name);

#endif
