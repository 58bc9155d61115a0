/*
 * engines.c - the engine profiles: one table per engine, after each engine's public docs
 * (docs/ENGINES.md lists them), and the two functions that use them (detection, generic delta).
 */
#include "model/engines.h"

#include "probe/kvsnap.h"
#include "probe/prom.h"
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

static const struct engine_profile DYNAMO = {
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

void engine_named(const struct engine_profile *p, struct engine_id *out)
{
    memset(out, 0, sizeof *out);
    out->profile = p;
    snprintf(out->title, sizeof out->title, "%s", p->title);
    snprintf(out->evidence, sizeof out->evidence, "--engine %s", p->name);
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
    for (size_t i = 0; s->metrics && ENGINE_PROFILES[i]; i++) {
        const struct engine_profile *p = ENGINE_PROFILES[i];
        if (p != &DYNAMO && kvsnap_has_family(s->metrics, p->families)) {
            snprintf(ev, len, "the base URL's /metrics carries %s* metrics", p->families[0]);
            return p;
        }
    }
    if (s->health_body && strstr(s->health_body, "\"instances\"") &&
        strstr(s->health_body, "\"endpoints\"")) {
        snprintf(ev, len, "/health lists Dynamo endpoints and instances");
        return &DYNAMO;
    }
    if (s->metrics && kvsnap_has_family(s->metrics, (const char *const[]){"dynamo_", NULL})) {
        snprintf(ev, len, "the base URL's /metrics carries dynamo_* metrics");
        return &DYNAMO;
    }
    if (s->kvbm_metrics && kvsnap_has_family(s->kvbm_metrics, DYNAMO_FAMILIES)) {
        snprintf(ev, len, "the KV metrics URL carries KVBM's kvbm_* metrics");
        return &DYNAMO;
    }
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
