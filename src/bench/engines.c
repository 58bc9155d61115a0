/*
 * engines.c - the engine profiles: one table per engine, after each engine's public docs
 * (docs/ENGINES.md lists them), and the two functions that use them (detection, generic delta).
 */
#include "bench/engines.h"

#include "probe/kvsnap.h"
#include "probe/prom.h"
#include "util/json.h"

#include <stdio.h>
#include <string.h>

const char *const KV_FIELD_NAMES[KF_COUNT] = {
    "prompt_tokens",       "reused_tokens",          "reused_tokens_device", "reused_tokens_host",
    "reused_tokens_disk",  "reused_tokens_external", "onboard_blocks_host",  "onboard_blocks_disk",
    "offload_blocks_host", "offload_blocks_disk",    "reused_blocks",        "missed_blocks",
    "preemptions",         "cache_usage_after",
};

/* ------------------------------------------------------------ the tables */

/* NVIDIA Dynamo + KVBM: KVBM's counters on its metrics port (DYN_KVBM_METRICS_PORT, 6880). */
static const char *const DYNAMO_FAMILIES[] = {"kvbm_", NULL};
static const struct kv_rule DYNAMO_RULES[] = {
    {KF_REUSED_TOKENS, "kvbm_matched_tokens", 1, NULL},
    {KF_ONBOARD_HOST, "kvbm_onboard_blocks_h2d", 1, NULL},
    {KF_ONBOARD_DISK, "kvbm_onboard_blocks_d2d", 1, NULL},
    {KF_OFFLOAD_HOST, "kvbm_offload_blocks_d2h", 1, NULL},
    {KF_OFFLOAD_DISK, "kvbm_offload_blocks_h2d", 1, NULL},
    {KF_OFFLOAD_DISK, "kvbm_offload_blocks_d2d", 1, NULL},
    {KF_COUNT, NULL, 0, NULL},
};

/* vLLM (v1 engine), /metrics on the API port: prefix-cache queries/hits count tokens; the
 * external_ pair counts hits in a KV connector's cache (CPU / disk offload, LMCache). */
static const char *const VLLM_FAMILIES[] = {"vllm:", NULL};
static const struct kv_rule VLLM_RULES[] = {
    {KF_PROMPT_TOKENS, "vllm:prompt_tokens_total", 1, NULL},
    {KF_REUSED_TOKENS, "vllm:prefix_cache_hits_total", 1, NULL},
    {KF_REUSED_TOKENS, "vllm:external_prefix_cache_hits_total", 1, NULL},
    {KF_REUSED_DEVICE, "vllm:prefix_cache_hits_total", 1, NULL},
    {KF_REUSED_EXTERNAL, "vllm:external_prefix_cache_hits_total", 1, NULL},
    {KF_PREEMPTIONS, "vllm:num_preemptions_total", 1, NULL},
    {KF_CACHE_USAGE, "vllm:kv_cache_usage_perc", 1, NULL},
    {KF_COUNT, NULL, 0, NULL},
};

/* SGLang (--enable-metrics), /metrics on the API port: cached tokens by cache_source (HiCache:
 * device, host, storage backends). */
static const char *const SGLANG_FAMILIES[] = {"sglang:", NULL};
static const struct kv_rule SGLANG_RULES[] = {
    {KF_PROMPT_TOKENS, "sglang:prompt_tokens_total", 1, NULL},
    {KF_REUSED_TOKENS, "sglang:cached_tokens_total", 1, NULL},
    {KF_REUSED_DEVICE, "sglang:cached_tokens_total{cache_source=\"device\"}", 1, NULL},
    {KF_REUSED_HOST, "sglang:cached_tokens_total{cache_source=\"host\"}", 1, NULL},
    {KF_REUSED_DISK, "sglang:cached_tokens_total{cache_source=\"storage*", 1, NULL},
    {KF_PREEMPTIONS, "sglang:num_retracted_reqs_total", 1, NULL},
    {KF_CACHE_USAGE, "sglang:token_usage", 1, NULL},
    {KF_COUNT, NULL, 0, NULL},
};

/* llama.cpp's llama-server (--metrics): no reuse counter (prompt_tokens_total counts evaluated
 * tokens only); reuse comes from each response's timings.cache_n. */
static const char *const LLAMACPP_FAMILIES[] = {"llamacpp:", NULL};
static const struct kv_rule LLAMACPP_RULES[] = {
    {KF_CACHE_USAGE, "llamacpp:kv_cache_usage_ratio", 1, NULL},
    {KF_COUNT, NULL, 0, NULL},
};

/* TensorRT-LLM's trtllm-serve: /metrics is JSON iteration statistics; kvCacheStats carries the
 * KV cache manager's cumulative reused / missed block counters. */
static const char *const TRTLLM_FAMILIES[] = {"trtllm:kvCacheStats.", NULL};
static const struct kv_rule TRTLLM_RULES[] = {
    {KF_REUSED_BLOCKS, "trtllm:kvCacheStats.reusedBlocks", 1, NULL},
    {KF_MISSED_BLOCKS, "trtllm:kvCacheStats.missedBlocks", 1, NULL},
    {KF_REUSED_TOKENS, "trtllm:kvCacheStats.reusedBlocks", 1, "trtllm:kvCacheStats.tokensPerBlock"},
    {KF_COUNT, NULL, 0, NULL},
};

static const struct engine_profile DYNAMO = {
    .name = "dynamo",
    .title = "NVIDIA Dynamo + KVBM",
    .owned_by = NULL,
    .metrics_url = NULL, /* --kvbm-metrics-url (KVBM's own port) */
    .families = DYNAMO_FAMILIES,
    .rules = DYNAMO_RULES,
    .reuse_source = "usage.prompt_tokens_details.cached_tokens",
    .tier_breakdown = true,
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
};
static const struct engine_profile LLAMACPP = {
    .name = "llamacpp",
    .title = "llama.cpp llama-server",
    .owned_by = "llamacpp",
    .metrics_url = "/metrics",
    .families = LLAMACPP_FAMILIES,
    .rules = LLAMACPP_RULES,
    .reuse_source = "timings.cache_n of each response",
    .tier_breakdown = false,
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
};

const struct engine_profile *const ENGINE_PROFILES[] = {&DYNAMO,   &VLLM,   &SGLANG,
                                                        &LLAMACPP, &TRTLLM, NULL};
const char *const ENGINE_NAMES[] = {"auto", "dynamo", "vllm", "sglang", "llamacpp", "trtllm", NULL};

const struct engine_profile *engine_profile_find(const char *name)
{
    for (size_t i = 0; name && ENGINE_PROFILES[i]; i++)
        if (strcmp(ENGINE_PROFILES[i]->name, name) == 0)
            return ENGINE_PROFILES[i];
    return NULL;
}

/* ------------------------------------------------------------ detection */

const struct engine_profile *engine_detect(const json_t *models, const char *health_body,
                                           const json_t *metrics, char *evidence, size_t len)
{
    const json_t *m0 = json_array_get(json_object_get(models, "data"), 0);
    const char *owner = json_get_str(m0, "owned_by", NULL);
    for (size_t i = 0; owner && ENGINE_PROFILES[i]; i++) {
        const struct engine_profile *p = ENGINE_PROFILES[i];
        if (p->owned_by && strcmp(owner, p->owned_by) == 0) {
            snprintf(evidence, len, "/v1/models lists owned_by \"%s\"", owner);
            return p;
        }
    }
    for (size_t i = 0; metrics && ENGINE_PROFILES[i]; i++) {
        const struct engine_profile *p = ENGINE_PROFILES[i];
        if (p != &DYNAMO && kvsnap_has_family(metrics, p->families)) {
            snprintf(evidence, len, "the base URL's /metrics carries %s* metrics", p->families[0]);
            return p;
        }
    }
    if (health_body && strstr(health_body, "\"instances\"") &&
        strstr(health_body, "\"endpoints\"")) {
        snprintf(evidence, len, "/health lists Dynamo endpoints and instances");
        return &DYNAMO;
    }
    if (metrics && kvsnap_has_family(metrics, (const char *const[]){"dynamo_", NULL})) {
        snprintf(evidence, len, "the base URL's /metrics carries dynamo_* metrics");
        return &DYNAMO;
    }
    snprintf(evidence, len,
             "nothing identified the engine (owned_by %s%s%s, no known metric family); assuming "
             "Dynamo + KVBM",
             owner ? "\"" : "", owner ? owner : "absent", owner ? "\"" : "");
    return &DYNAMO;
}

/* ------------------------------------------------------------ generic deltas */

/* The value of metric (with a trailing '*': the sum of every entry with that prefix). */
static bool lookup(const json_t *metrics, const char *metric, double *out)
{
    size_t n = strlen(metric);
    if (n && metric[n - 1] == '*') {
        bool any = false;
        double sum = 0;
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)metrics, k, v)
        {
            if (strncmp(k, metric, n - 1) == 0 && json_is_number(v)) {
                sum += json_number_value(v);
                any = true;
            }
        }
        *out = sum;
        return any;
    }
    return prom_json_lookup(metrics, metric, out);
}

json_t *engine_delta(const struct engine_profile *p, const json_t *before, const json_t *after)
{
    double val[KF_COUNT] = {0};
    bool have[KF_COUNT] = {false};
    for (const struct kv_rule *r = p->rules; r->metric; r++) {
        double a, b = 0, v;
        if (!lookup(after, r->metric, &a))
            continue;
        if (r->field == KF_CACHE_USAGE) {
            v = a;
        } else {
            if (!lookup(before, r->metric, &b))
                b = 0;              /* appeared during the phase */
            v = a >= b ? a - b : 0; /* a counter reset reads as 0 */
        }
        double scale = r->scale;
        if (r->scale_metric) {
            double s;
            if (!lookup(after, r->scale_metric, &s))
                continue;
            scale *= s;
        }
        val[r->field] += v * scale;
        have[r->field] = true;
    }
    json_t *o = json_object();
    json_put_str(o, "engine", p->name);
    for (int f = 0; f < KF_COUNT; f++)
        json_put(o, KV_FIELD_NAMES[f], have[f] ? json_real(val[f]) : json_null());
    return o;
}
