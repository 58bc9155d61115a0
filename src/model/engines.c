/*
 * engines.c - the engine catalogue: one row set per engine, after each engine's public docs
 * (docs/ENGINES.md lists them): the rules the harness reads its metrics by, the personality the
 * embedded engine imitates, and the metric rows it serves under that personality, the names
 * spelled once for both. Below the harness and the engine, so it is data and pure functions of
 * JSON only (detection, context limits); reading a scrape through the rules (engine_delta) is
 * probe/kvsnap.c's.
 */
#include "model/engines.h"

#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const KV_FIELD_NAMES[KF_COUNT] = {
    "prompt_tokens",       "reused_tokens",          "reused_tokens_device", "reused_tokens_host",
    "reused_tokens_disk",  "reused_tokens_external", "onboard_blocks_host",  "onboard_blocks_disk",
    "offload_blocks_host", "offload_blocks_disk",    "reused_blocks",        "missed_blocks",
    "preemptions",         "cache_usage_after",
};

/* ------------------------------------------------------------ the tables */

/* Each engine's names are spelled once, here, and used by both of its faces: the rules the
 * harness reads and the rows the embedded engine serves (tests/unit/test_catalogue.c renders one
 * through the other). */

/* NVIDIA Dynamo + KVBM: KVBM's counters on its metrics port (DYN_KVBM_METRICS_PORT, 6880). */
static const char *const DYNAMO_FAMILIES[] = {"kvbm_", NULL};
static const struct kv_rule DYNAMO_RULES[] = {
    {KF_REUSED_TOKENS, KVBM_MATCHED_TOKENS, 1, NULL},
    {KF_ONBOARD_HOST, KVBM_ONBOARD_H2D, 1, NULL},
    {KF_ONBOARD_DISK, KVBM_ONBOARD_D2D, 1, NULL},
    {KF_OFFLOAD_HOST, KVBM_OFFLOAD_D2H, 1, NULL},
    {KF_OFFLOAD_DISK, KVBM_OFFLOAD_H2D, 1, NULL},
    {KF_OFFLOAD_DISK, KVBM_OFFLOAD_D2D, 1, NULL},
    {KF_COUNT, NULL, 0, NULL},
};
const struct served_metric KVBM_SERVED[] = {
    {KVBM_OFFLOAD_D2H, METRIC_COUNTER, "Blocks offloaded from device (G1) to host (G2)",
     EF_OFFLOAD_D2H, NULL, SERVED_ALWAYS},
    {KVBM_OFFLOAD_H2D, METRIC_COUNTER, "Blocks offloaded from host (G2) to disk (G3)",
     EF_OFFLOAD_H2D, NULL, SERVED_ALWAYS},
    {KVBM_OFFLOAD_D2D, METRIC_COUNTER, "Blocks offloaded from device (G1) to disk (G3)",
     EF_OFFLOAD_D2D, NULL, SERVED_ALWAYS},
    {KVBM_ONBOARD_H2D, METRIC_COUNTER, "Blocks onboarded from host (G2) to device (G1)",
     EF_ONBOARD_H2D, NULL, SERVED_ALWAYS},
    {KVBM_ONBOARD_D2D, METRIC_COUNTER, "Blocks onboarded from disk (G3) to device (G1)",
     EF_ONBOARD_D2D, NULL, SERVED_ALWAYS},
    {KVBM_MATCHED_TOKENS, METRIC_COUNTER, "Prompt tokens found in a KV tier instead of recomputed",
     EF_MATCHED_TOKENS, NULL, SERVED_ALWAYS},
    {KVBM_DISK_BYTES_READ, METRIC_COUNTER, "Bytes read from the disk tier", EF_DISK_BYTES_READ,
     NULL, SERVED_ALWAYS},
    {KVBM_DISK_BYTES_WRITTEN, METRIC_COUNTER, "Bytes written to the disk tier",
     EF_DISK_BYTES_WRITTEN, NULL, SERVED_ALWAYS},
    {NULL, METRIC_COUNTER, NULL, EF_COUNT, NULL, SERVED_ALWAYS},
};
static const struct served_metric NO_SERVED[] = {
    {NULL, METRIC_COUNTER, NULL, EF_COUNT, NULL, SERVED_ALWAYS},
};

/* vLLM (v1 engine), /metrics on the API port: prefix-cache queries/hits count tokens; the
 * external_ pair counts hits in a KV connector's cache (CPU / disk offload, LMCache). */
#define VLLM_PROMPT        "vllm:prompt_tokens_total"
#define VLLM_HITS          "vllm:prefix_cache_hits_total"
#define VLLM_EXTERNAL_HITS "vllm:external_prefix_cache_hits_total"
#define VLLM_PREEMPTIONS   "vllm:num_preemptions_total"
#define VLLM_USAGE         "vllm:kv_cache_usage_perc"
static const char *const VLLM_FAMILIES[] = {"vllm:", NULL};
static const struct kv_rule VLLM_RULES[] = {
    {KF_PROMPT_TOKENS, VLLM_PROMPT, 1, NULL},
    {KF_REUSED_TOKENS, VLLM_HITS, 1, NULL},
    {KF_REUSED_TOKENS, VLLM_EXTERNAL_HITS, 1, NULL},
    {KF_REUSED_DEVICE, VLLM_HITS, 1, NULL},
    {KF_REUSED_EXTERNAL, VLLM_EXTERNAL_HITS, 1, NULL},
    {KF_PREEMPTIONS, VLLM_PREEMPTIONS, 1, NULL},
    {KF_CACHE_USAGE, VLLM_USAGE, 1, NULL},
    {KF_COUNT, NULL, 0, NULL},
};
static const struct served_metric VLLM_SERVED[] = {
    {VLLM_PROMPT, METRIC_COUNTER, "Number of prefill tokens processed.", EF_PROMPT_TOKENS, NULL,
     SERVED_ALWAYS},
    {"vllm:generation_tokens_total", METRIC_COUNTER, "Number of generation tokens processed.",
     EF_GENERATION_TOKENS, NULL, SERVED_ALWAYS},
    {"vllm:request_success_total", METRIC_COUNTER, "Count of successfully processed requests.",
     EF_REQUESTS_OK, NULL, SERVED_ALWAYS},
    {"vllm:num_requests_running", METRIC_GAUGE, "Number of requests in model execution batches.",
     EF_RUNNING, NULL, SERVED_ALWAYS},
    {VLLM_USAGE, METRIC_GAUGE, "KV-cache usage. 1 means 100 percent usage.", EF_CACHE_USAGE, NULL,
     SERVED_ALWAYS},
    {"vllm:prefix_cache_queries_total", METRIC_COUNTER,
     "Prefix cache queries, in terms of number of queried tokens.", EF_PREFIX_QUERIES, NULL,
     SERVED_ALWAYS},
    {VLLM_HITS, METRIC_COUNTER, "Prefix cache hits, in terms of number of cached tokens.",
     EF_HITS_DEVICE, NULL, SERVED_ALWAYS},
    {"vllm:external_prefix_cache_queries_total", METRIC_COUNTER,
     "External prefix cache queries from KV connector, in terms of queried tokens.",
     EF_QUERIES_OFFLOAD, NULL, SERVED_WITH_OFFLOAD},
    {VLLM_EXTERNAL_HITS, METRIC_COUNTER,
     "External prefix cache hits from KV connector, in terms of cached tokens.", EF_HITS_OFFLOAD,
     NULL, SERVED_WITH_OFFLOAD},
    {VLLM_PREEMPTIONS, METRIC_COUNTER, "Cumulative number of preemption from the engine.",
     EF_PREEMPTIONS, NULL, SERVED_ALWAYS},
    {NULL, METRIC_COUNTER, NULL, EF_COUNT, NULL, SERVED_ALWAYS},
};

/* SGLang (--enable-metrics), /metrics on the API port: cached tokens by cache_source (HiCache:
 * device, host, storage backends). */
#define SGLANG_PROMPT      "sglang:prompt_tokens_total"
#define SGLANG_CACHED      "sglang:cached_tokens_total"
#define SGLANG_DEVICE      "cache_source=\"device\""
#define SGLANG_HOST        "cache_source=\"host\""
#define SGLANG_STORAGE     "cache_source=\"storage"
#define SGLANG_RETRACTED   "sglang:num_retracted_reqs_total"
#define SGLANG_TOKEN_USAGE "sglang:token_usage"
static const char *const SGLANG_FAMILIES[] = {"sglang:", NULL};
static const struct kv_rule SGLANG_RULES[] = {
    {KF_PROMPT_TOKENS, SGLANG_PROMPT, 1, NULL},
    {KF_REUSED_TOKENS, SGLANG_CACHED, 1, NULL},
    {KF_REUSED_DEVICE, SGLANG_CACHED "{" SGLANG_DEVICE "}", 1, NULL},
    {KF_REUSED_HOST, SGLANG_CACHED "{" SGLANG_HOST "}", 1, NULL},
    {KF_REUSED_DISK, SGLANG_CACHED "{" SGLANG_STORAGE "*", 1, NULL}, /* every storage backend */
    {KF_PREEMPTIONS, SGLANG_RETRACTED, 1, NULL},
    {KF_CACHE_USAGE, SGLANG_TOKEN_USAGE, 1, NULL},
    {KF_COUNT, NULL, 0, NULL},
};
static const struct served_metric SGLANG_SERVED[] = {
    {SGLANG_PROMPT, METRIC_COUNTER, "Number of prefill tokens processed.", EF_PROMPT_TOKENS, NULL,
     SERVED_ALWAYS},
    {"sglang:generation_tokens_total", METRIC_COUNTER, "Number of generation tokens processed.",
     EF_GENERATION_TOKENS, NULL, SERVED_ALWAYS},
    {SGLANG_CACHED, METRIC_COUNTER, "Number of cached prompt tokens.", EF_HITS_DEVICE,
     SGLANG_DEVICE, SERVED_ALWAYS},
    {SGLANG_CACHED, METRIC_COUNTER, "Number of cached prompt tokens.", EF_HITS_HOST, SGLANG_HOST,
     SERVED_WITH_OFFLOAD},
    {SGLANG_CACHED, METRIC_COUNTER, "Number of cached prompt tokens.", EF_HITS_DISK,
     SGLANG_STORAGE "_file\"", SERVED_WITH_DISK},
    {"sglang:cache_hit_rate", METRIC_GAUGE, "The prefix cache hit rate.", EF_HIT_RATE, NULL,
     SERVED_ALWAYS},
    {SGLANG_TOKEN_USAGE, METRIC_GAUGE, "The token usage.", EF_CACHE_USAGE, NULL, SERVED_ALWAYS},
    {"sglang:num_running_reqs", METRIC_GAUGE, "The number of running requests.", EF_RUNNING, NULL,
     SERVED_ALWAYS},
    {SGLANG_RETRACTED, METRIC_COUNTER, "Requests retracted (preempted).", EF_PREEMPTIONS, NULL,
     SERVED_ALWAYS},
    {NULL, METRIC_COUNTER, NULL, EF_COUNT, NULL, SERVED_ALWAYS},
};

/* llama.cpp's llama-server (--metrics): no reuse counter (prompt_tokens_total counts evaluated
 * tokens only); reuse comes from each response's timings.cache_n. */
#define LLAMACPP_USAGE "llamacpp:kv_cache_usage_ratio"
static const char *const LLAMACPP_FAMILIES[] = {"llamacpp:", NULL};
static const struct kv_rule LLAMACPP_RULES[] = {
    {KF_CACHE_USAGE, LLAMACPP_USAGE, 1, NULL},
    {KF_COUNT, NULL, 0, NULL},
};
static const struct served_metric LLAMACPP_SERVED[] = {
    {"llamacpp:prompt_tokens_total", METRIC_COUNTER, "Number of prompt tokens processed.",
     EF_EVALUATED, NULL, SERVED_ALWAYS},
    {"llamacpp:tokens_predicted_total", METRIC_COUNTER, "Number of generation tokens processed.",
     EF_GENERATION_TOKENS, NULL, SERVED_ALWAYS},
    {LLAMACPP_USAGE, METRIC_GAUGE, "KV-cache usage. 1 means 100 percent usage.", EF_CACHE_USAGE,
     NULL, SERVED_ALWAYS},
    {"llamacpp:kv_cache_tokens", METRIC_GAUGE, "KV-cache tokens.", EF_CACHE_TOKENS, NULL,
     SERVED_ALWAYS},
    {"llamacpp:requests_processing", METRIC_GAUGE, "Number of requests processing.", EF_RUNNING,
     NULL, SERVED_ALWAYS},
    {NULL, METRIC_COUNTER, NULL, EF_COUNT, NULL, SERVED_ALWAYS},
};

/* TensorRT-LLM's trtllm-serve: /metrics is JSON iteration statistics; kvCacheStats carries the
 * KV cache manager's cumulative reused / missed block counters. */
static const char *const TRTLLM_FAMILIES[] = {TRTLLM_KV_PREFIX, NULL};
static const struct kv_rule TRTLLM_RULES[] = {
    {KF_REUSED_BLOCKS, TRTLLM_KV_PREFIX TRTLLM_REUSED_BLOCKS, 1, NULL},
    {KF_MISSED_BLOCKS, TRTLLM_KV_PREFIX TRTLLM_MISSED_BLOCKS, 1, NULL},
    {KF_REUSED_TOKENS, TRTLLM_KV_PREFIX TRTLLM_REUSED_BLOCKS, 1,
     TRTLLM_KV_PREFIX TRTLLM_TOKENS_PER_BLOCK},
    {KF_COUNT, NULL, 0, NULL},
};

/* ------------------------------------------------------------ personalities */

const struct tokenize_dialect TOKENIZE_DIALECTS[] = {
    {TOKENIZE_VLLM, "model", "prompt", "add_special_tokens", true, "count", "tokens"},
    {TOKENIZE_LLAMACPP, NULL, "content", "add_special", false, NULL, "tokens"},
    {TOKENIZE_NONE, NULL, NULL, NULL, false, NULL, NULL},
};

static const struct personality DYNAMO_SERVE = {
    .name = "dynamo",
    .owned_by = "kvbench",
    .health = HEALTH_DYNAMO,
    .errors = ERROR_OPENAI,
    .metrics = METRICS_DYNAMO,
    .served = NO_SERVED, /* dynamo_frontend_* (engine/metrics.c), KVBM_SERVED on the port */
    .kvbm_port = true,
    .usage_details = true,
    .usage_chunk = true,
};
static const struct personality VLLM_SERVE = {
    .name = "vllm",
    .owned_by = "vllm",
    .health = HEALTH_EMPTY,
    .errors = ERROR_OPENAI,
    .metrics = METRICS_PROMETHEUS,
    .model_label = "model_name",
    .extra_labels = "engine=\"0\"",
    .served = VLLM_SERVED,
    .usage_chunk = true,
    .adds_bos = true,
    .models_max_len = true,
    .tokenize = TOKENIZE_VLLM,
    .tokenize_messages = true,
};
static const struct personality SGLANG_SERVE = {
    .name = "sglang",
    .owned_by = "sglang",
    .health = HEALTH_EMPTY,
    .errors = ERROR_OBJECT,
    .metrics = METRICS_PROMETHEUS,
    .model_label = "model_name",
    .served = SGLANG_SERVED,
    .usage_chunk = true,
    .adds_bos = true,
    .models_max_len = true,
    .tokenize = TOKENIZE_VLLM,
};
static const struct personality LLAMACPP_SERVE = {
    .name = "llamacpp",
    .owned_by = "llamacpp",
    .health = HEALTH_LLAMACPP,
    .errors = ERROR_LLAMACPP,
    .metrics = METRICS_PROMETHEUS,
    .served = LLAMACPP_SERVED,
    .usage_on_last_chunk = true,
    .timings = true,
    .truncate_prompt = true,
    .model_ignored = true,
    .adds_bos = true,
    .props = true,
    .models_meta = true,
    .tokenize = TOKENIZE_LLAMACPP,
    .chat_role_null = true,
};
static const struct personality TRTLLM_SERVE = {
    .name = "trtllm",
    .owned_by = "tensorrt_llm",
    .health = HEALTH_EMPTY,
    .errors = ERROR_OPENAI,
    .metrics = METRICS_TRTLLM,
    .served = NO_SERVED, /* JSON iteration statistics (engine/metrics.c) */
    .usage_chunk = true,
    .adds_bos = true,
};

/* Where each engine publishes its context limit (SPEC §3.3; docs/ENGINES.md). */
static const struct ctx_limit_source MODELS_MAX_LEN[] = {
    {"/v1/models", "data.$model.max_model_len"},
    {NULL, NULL},
};
static const struct ctx_limit_source LLAMACPP_CTX[] = {
    {"/props", "default_generation_settings.n_ctx"},
    {"/props", "n_ctx"},
    {NULL, NULL},
};

static const char *const DYNAMO_HEALTH[] = {"\"instances\"", "\"endpoints\"", NULL};
static const char *const DYNAMO_API_FAMILIES[] = {"dynamo_", NULL};
static const struct engine_marks DYNAMO_MARKS = {
    .health = DYNAMO_HEALTH,
    .health_says = "/health lists Dynamo endpoints and instances",
    .api_families = DYNAMO_API_FAMILIES,
    .port_says = "KVBM's kvbm_* metrics",
};
const struct engine_profile ENGINE_DYNAMO = {
    .name = "dynamo",
    .title = "NVIDIA Dynamo + KVBM",
    .owned_by = NULL,
    .metrics_url = NULL, /* --kvbm-metrics-url (KVBM's own port) */
    .families = DYNAMO_FAMILIES,
    .rules = DYNAMO_RULES,
    .reuse_source = "usage.prompt_tokens_details.cached_tokens",
    .tier_breakdown = true,
    .ctx_limits = NULL, /* the frontend publishes none: --engine-max-input-tokens */
    .kv_modes_instead = NULL,
    .serve = &DYNAMO_SERVE,
    .marks = &DYNAMO_MARKS,
};
static const struct engine_profile VLLM = {
    .name = "vllm",
    .title = "vLLM",
    .owned_by = "vllm",
    .metrics_url = "/metrics",
    .families = VLLM_FAMILIES,
    .rules = VLLM_RULES,
    .reuse_source = "usage.prompt_tokens_details.cached_tokens (--enable-prompt-tokens-details)",
    .tier_breakdown = false,
    .ctx_limits = MODELS_MAX_LEN,
    .kv_modes_instead = "its KV offload connector (--kv-transfer-config, e.g. LMCache or the "
                        "OffloadingConnector) and --enable-prefix-caching",
    .serve = &VLLM_SERVE,
};
static const struct engine_profile SGLANG = {
    .name = "sglang",
    .title = "SGLang",
    .owned_by = "sglang",
    .metrics_url = "/metrics",
    .families = SGLANG_FAMILIES,
    .rules = SGLANG_RULES,
    .reuse_source = "usage.prompt_tokens_details.cached_tokens (--enable-cache-report)",
    .tier_breakdown = true,
    .ctx_limits = MODELS_MAX_LEN,
    .kv_modes_instead = "its hierarchical cache (--enable-hierarchical-cache, "
                        "--hicache-storage-backend) and --disable-radix-cache",
    .serve = &SGLANG_SERVE,
};
static const struct engine_profile LLAMACPP = {
    .name = "llamacpp",
    .title = "llama.cpp llama-server",
    .owned_by = "llamacpp",
    .metrics_url = "/metrics",
    .families = LLAMACPP_FAMILIES,
    .rules = LLAMACPP_RULES,
    .reuse_source = "timings.cache_n of each response, else usage.prompt_tokens - "
                    "timings.prompt_n",
    .tier_breakdown = false,
    .ctx_limits = LLAMACPP_CTX,
    .kv_modes_instead = "its prompt cache only (cache_prompt, --cache-reuse); it has no host or "
                        "disk KV tier",
    .serve = &LLAMACPP_SERVE,
};
static const struct engine_profile TRTLLM = {
    .name = "trtllm",
    .title = "TensorRT-LLM trtllm-serve",
    .owned_by = "tensorrt_llm",
    .metrics_url = "/metrics",
    .families = TRTLLM_FAMILIES,
    .rules = TRTLLM_RULES,
    .reuse_source = "none per response; kvCacheStats block counters",
    .tier_breakdown = false,
    .carry_empty = true,
    .ctx_limits = NULL, /* none published: --engine-max-input-tokens */
    .kv_modes_instead = "its kv_cache_config (enable_block_reuse, host_cache_size)",
    .serve = &TRTLLM_SERVE,
};

static const struct kv_rule NO_RULES[] = {{KF_COUNT, NULL, 0, NULL}};
const struct engine_profile ENGINE_UNKNOWN = {
    .name = "unknown",
    .title = "unknown engine",
    .owned_by = NULL,
    .metrics_url = NULL,
    .families = DYNAMO_FAMILIES, /* KVBM's at --kvbm-metrics-url, had it answered, is Dynamo */
    .rules = NO_RULES,
    .reuse_source = "whatever each response carries (usage cached tokens, timings, meta_info)",
    .tier_breakdown = false,
    .ctx_limits = MODELS_MAX_LEN,
    .kv_modes_instead = "whatever its own flags are (unknown engine)",
};

const struct engine_profile *const ENGINE_PROFILES[] = {&ENGINE_DYNAMO, &VLLM,   &SGLANG,
                                                        &LLAMACPP,      &TRTLLM, NULL};
const char *const ENGINE_NAMES[] = {"auto", "dynamo", "vllm", "sglang", "llamacpp", "trtllm", NULL};

const struct engine_profile *engine_profile_find(const char *name)
{
    for (size_t i = 0; name && ENGINE_PROFILES[i]; i++)
        if (strcmp(ENGINE_PROFILES[i]->name, name) == 0)
            return ENGINE_PROFILES[i];
    return NULL;
}

/* ------------------------------------------------------------ detection */

void engine_named(const struct engine_profile *p, struct engine_id *out)
{
    memset(out, 0, sizeof *out);
    out->profile = p;
    snprintf(out->title, sizeof out->title, "%s", p->title);
    snprintf(out->evidence, sizeof out->evidence, "--engine %s", p->name);
}

/* The profile whose marks the server shows, with the sentence that says which. */
/* Whether body carries every string of marks. */
static bool carries_all(const char *body, const char *const *marks)
{
    for (size_t i = 0; marks[i]; i++)
        if (!strstr(body, marks[i]))
            return false;
    return true;
}

/* The profile whose further marks (struct engine_marks) the server shows, strongest first: its
 * /health body, its families on the base URL's /metrics, its own families at the KV metrics URL. */
static const struct engine_profile *match_marks(const struct engine_seen *s, char *ev, size_t len)
{
    for (size_t i = 0; s->health_body && ENGINE_PROFILES[i]; i++) {
        const struct engine_marks *m = ENGINE_PROFILES[i]->marks;
        if (m && m->health && carries_all(s->health_body, m->health)) {
            snprintf(ev, len, "%s", m->health_says);
            return ENGINE_PROFILES[i];
        }
    }
    for (size_t i = 0; s->metrics && ENGINE_PROFILES[i]; i++) {
        const struct engine_marks *m = ENGINE_PROFILES[i]->marks;
        if (m && m->api_families && engine_has_family(s->metrics, m->api_families)) {
            snprintf(ev, len, "the base URL's /metrics carries %s* metrics", m->api_families[0]);
            return ENGINE_PROFILES[i];
        }
    }
    for (size_t i = 0; s->kvbm_metrics && ENGINE_PROFILES[i]; i++) {
        const struct engine_profile *p = ENGINE_PROFILES[i];
        if (!p->metrics_url && p->marks && engine_has_family(s->kvbm_metrics, p->families)) {
            snprintf(ev, len, "the KV metrics URL carries %s", p->marks->port_says);
            return p;
        }
    }
    return NULL;
}

/* The profile whose marks the server shows, with the sentence that says which. */
static const struct engine_profile *match(const struct engine_seen *s, char *ev, size_t len)
{
    const json_t *m0 = json_array_get(json_object_get(s->models, "data"), 0);
    const char *owner = json_get_str(m0, "owned_by", NULL);
    for (size_t i = 0; owner && ENGINE_PROFILES[i]; i++) {
        const struct engine_profile *p = ENGINE_PROFILES[i];
        if (p->owned_by && strcmp(owner, p->owned_by) == 0) {
            snprintf(ev, len, "/v1/models lists owned_by \"%s\"", owner);
            return p;
        }
    }
    /* families served at the base URL (a profile with no metrics_url serves them elsewhere) */
    for (size_t i = 0; s->metrics && ENGINE_PROFILES[i]; i++) {
        const struct engine_profile *p = ENGINE_PROFILES[i];
        if (p->metrics_url && engine_has_family(s->metrics, p->families)) {
            snprintf(ev, len, "the base URL's /metrics carries %s* metrics", p->families[0]);
            return p;
        }
    }
    const struct engine_profile *p = match_marks(s, ev, len);
    if (p)
        return p;
    snprintf(ev, len,
             "nothing identified the engine: /v1/models %s%s%s%s, /health %s, /metrics %s, KV "
             "metrics URL %s (--engine NAME chooses a profile)",
             s->models ? "owned_by " : "", s->models ? (owner ? "\"" : "") : "did not answer",
             s->models ? (owner ? owner : "absent") : "", s->models && owner ? "\"" : "",
             s->health_body ? "shows no known engine" : "did not answer",
             s->metrics ? "carries no known metric family" : "did not answer",
             s->kvbm_metrics ? "carries no kvbm_* metrics" : "did not answer");
    return NULL;
}

void engine_detect(const struct engine_seen *s, struct engine_id *out)
{
    memset(out, 0, sizeof *out);
    const struct engine_profile *p = match(s, out->evidence, sizeof out->evidence);
    out->profile = p ? p : &ENGINE_UNKNOWN;
    /* kvbench serve names itself in its Server header whatever outside it shows */
    out->embedded = s->server_header && strncmp(s->server_header, "kvbench-serve/", 14) == 0;
    if (out->embedded) {
        snprintf(out->title, sizeof out->title, "kvbench serve (%s personality)",
                 out->profile->name);
        size_t n = strlen(out->evidence);
        snprintf(out->evidence + n, sizeof out->evidence - n, "; Server: %s", s->server_header);
    } else {
        snprintf(out->title, sizeof out->title, "%s", out->profile->title);
    }
}

bool engine_kv_modes_apply(const struct engine_id *id)
{
    return id->embedded || (id->profile && !id->profile->kv_modes_instead);
}

long long engine_ctx_limit_in(const struct ctx_limit_source *src, const json_t *answer,
                              const char *model)
{
    const json_t *v = answer;
    char key[128];
    snprintf(key, sizeof key, "%s", src->key);
    char *save = NULL;
    for (char *part = strtok_r(key, ".", &save); part && v; part = strtok_r(NULL, ".", &save)) {
        if (json_is_array(v) && strcmp(part, "$model") == 0) {
            /* the entry of the model the run sends to (the first when none is known) */
            const json_t *e, *hit = NULL;
            size_t i;
            json_array_foreach(v, i, e) if (!hit && model && *model &&
                                            strcmp(json_get_str(e, "id", ""), model) == 0) hit = e;
            v = hit ? hit : (model && *model ? NULL : json_array_get(v, 0));
        } else if (json_is_array(v)) {
            char *end;
            unsigned long i = strtoul(part, &end, 10);
            v = *end ? NULL : json_array_get(v, i);
        } else {
            v = json_object_get(v, part);
        }
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return -1;
    return (long long)json_integer_value(v);
}

/* ------------------------------------------------------------ lookups */

bool engine_has_family(const json_t *metrics, const char *const *families)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)metrics, k, v)
    {
        (void)v;
        for (size_t i = 0; families[i]; i++)
            if (strncmp(k, families[i], strlen(families[i])) == 0)
                return true;
    }
    return false;
}

const struct personality *engine_personality_find(const char *name)
{
    const struct engine_profile *p = engine_profile_find(name);
    return p ? p->serve : NULL;
}

const struct tokenize_dialect *tokenize_dialect(enum tokenize_style style)
{
    for (size_t i = 0; TOKENIZE_DIALECTS[i].style != TOKENIZE_NONE; i++)
        if (TOKENIZE_DIALECTS[i].style == style)
            return &TOKENIZE_DIALECTS[i];
    return NULL;
}
