/*
 * engine.h - the embedded engine behind `kvbench serve` (SPEC §8): an OpenAI-compatible HTTP
 * server (libmicrohttpd) in front of a continuous-batching scheduler and the tiered KV block
 * manager. Its GPU's compute is modelled (time); its host and disk tiers are real, and so is its
 * device tier with --g1 cuda (kvbm.h).
 */
#ifndef KVBENCH_ENGINE_ENGINE_H
#define KVBENCH_ENGINE_ENGINE_H

#include "engine/kvbm.h"
#include "engine/personality.h"
#include "engine/profile.h"
#include "model/chattpl.h"
#include "model/tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct engine_config {
    /* HTTP */
    const char *host; /* IPv4 address to bind, default 127.0.0.1 */
    int port;         /* 0: any free port */
    int metrics_port; /* KV metrics; 0: any free port; < 0: disabled */
    const char *model_id;
    const char *endpoint; /* advertised in /health, e.g. dyn://dynamo.tensorrt_llm.generate */
    size_t max_body_bytes;
    size_t max_num_tokens;   /* prompt limit (TensorRT-LLM's max_num_tokens) */
    size_t max_tokens_limit; /* largest accepted max_tokens */
    unsigned max_connections;
    unsigned request_read_timeout_s; /* a connection must deliver its request headers in this */
    unsigned idle_timeout_s;         /* a connection with a request may idle this long */
    unsigned http_threads;
    double startup_delay_s;                /* report not_ready this long after start */
    const struct personality *personality; /* NULL: dynamo */
    /* response fields left out, to look like builds of an engine that do not send them
     * (--omit-response-field): llama.cpp builds without timings.cache_n, servers without
     * usage.prompt_tokens_details */
    bool omit_cache_n, omit_usage_details, omit_props;
    /* model and time */
    struct model_profile model;
    struct hw_profile hw;
    double speedup; /* divides modelled time; 0 = none */
    double
        disk_read_bw; /* --disk-read-gbps: G3 reads modelled at this many bytes/s; 0: real only */
    size_t max_num_seqs;
    /* KV */
    struct kvbm_config kv;
    bool keep_cache;
    /* prompt tokens: the heuristic or a tokenizer.json (borrowed; outlives the engine) */
    const struct tokenizer *tok;
    /* how /v1/chat/completions (and vLLM's /tokenize with messages) render messages to text */
    enum chat_template chat_tpl;
    /* faults */
    double fail_rate;
    double disconnect_rate;
    double stall_ms;
    double stall_rate;
    long long drop_model_after; /* < 0: never */
    uint64_t seed;
};

struct engine;

/* Start serving. Returns 0, or -1 with err (e.g. "port 8000 on 127.0.0.1 is already in use"). */
int engine_start(const struct engine_config *cfg, struct engine **out, char *err);
int engine_port(const struct engine *e);
int engine_metrics_port(const struct engine *e);
/* Stop taking new requests (/health reports shutting_down, completions get 503). */
void engine_begin_drain(struct engine *e);
/* Wait until no request is in flight or timeout_s passes. Returns the number still in flight. */
size_t engine_wait_idle(struct engine *e, double timeout_s);
/* Fail what is still in flight, stop HTTP, the scheduler and the KV manager, remove the cache
 * files unless keep_cache, free everything. */
void engine_stop(struct engine *e);
/* The KV manager (for logs and tests). */
struct kvbm *engine_kvbm(struct engine *e);

#endif
