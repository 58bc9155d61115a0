/*
 * personality.h - how the embedded engine looks from outside (`kvbench serve --personality`).
 *
 * A personality changes only the outside of the engine, each after that engine's public docs
 * (docs/ENGINES.md lists the sources): the /health body, the /v1/models fields, which metrics are
 * served and where, where usage and cached tokens appear in a stream, the error body's shape, and
 * the few behaviours a client must cope with (llama.cpp's silent truncation at the slot context,
 * a server that adds its own BOS token, a model field that is ignored). The scheduler and the KV
 * block manager are the same under every personality.
 */
#ifndef KVBENCH_ENGINE_PERSONALITY_H
#define KVBENCH_ENGINE_PERSONALITY_H

#include <stdbool.h>

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
    METRICS_DYNAMO,   /* dynamo_frontend_* on the API port, KVBM's kvbm_* on --metrics-port */
    METRICS_VLLM,     /* vllm:* on the API port */
    METRICS_SGLANG,   /* sglang:* on the API port, cached tokens by cache_source */
    METRICS_LLAMACPP, /* llamacpp:* on the API port */
    METRICS_TRTLLM    /* trtllm-serve's JSON iteration statistics at /metrics (kvCacheStats) */
};

enum tokenize_style {
    TOKENIZE_NONE,    /* no /tokenize (Dynamo's frontend, trtllm-serve) */
    TOKENIZE_VLLM,    /* {model, prompt, add_special_tokens} -> {count, max_model_len, tokens} */
    TOKENIZE_LLAMACPP /* {content, add_special} -> {tokens} */
};

struct personality {
    const char *name;
    const char *owned_by; /* /v1/models data[].owned_by */
    enum health_style health;
    enum error_style errors;
    enum metrics_style metrics;
    bool kvbm_port;           /* KVBM metrics on --metrics-port */
    bool usage_details;       /* usage.prompt_tokens_details.cached_tokens */
    bool usage_chunk;         /* stream_options.include_usage: a final chunk with choices [] */
    bool usage_on_last_chunk; /* usage (and timings) on the last text chunk, always */
    bool timings;             /* llama.cpp's per-response timings {prompt_n, cache_n, …} */
    bool truncate_prompt;     /* over the context: cut the prompt (llama.cpp), not refuse */
    bool model_ignored;       /* any model field is accepted */
    bool adds_bos;            /* the server puts its own BOS token before a text prompt */
    bool props;               /* llama.cpp's GET /props (default_generation_settings.n_ctx) */
    enum tokenize_style tokenize;
};

/* The personality named s, or NULL. */
const struct personality *personality_find(const char *s);
/* "dynamo", "vllm", "sglang", "llamacpp", "trtllm", NULL-terminated. */
extern const char *const PERSONALITY_NAMES[];

#endif
