/* libFuzzer target: the embedded engine's completion-request validation (what `kvbench serve`
 * does with a POST body before anything is scheduled), under each personality. The first byte
 * picks the personality (its value mod 6) and the endpoint (its bit 7: /v1/chat/completions,
 * messages rendered through the chat template); the rest is the body. Every input must end in 200
 * or a 4xx/5xx answer with a message, never a crash, a leak or a hang. */
#include "engine/engine.h"
#include "engine/server.h"
#include "engine/personality.h"
#include "engine/profile.h"
#include "net/http.h"
#include "model/tokenizer.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct engine *engines[6];

static struct engine *start(const char *personality)
{
    struct engine_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "127.0.0.1";
    cfg.metrics_port = -1;
    cfg.model = *profile_model("tiny");
    cfg.hw = *profile_hw("gb10");
    cfg.model_id = "m";
    cfg.endpoint = "dyn://fuzz.engine.generate";
    cfg.max_body_bytes = 1 << 20;
    cfg.max_num_tokens = 4096;
    cfg.max_tokens_limit = 4096;
    cfg.max_connections = 8;
    cfg.http_threads = 1;
    cfg.max_num_seqs = 8;
    cfg.drop_model_after = -1;
    cfg.personality = personality ? personality_find(personality) : NULL;
    cfg.tok = tokenizer_heuristic();
    cfg.kv = (struct kvbm_config){
        .block_tokens = 32, .block_bytes = 1024, .g1_blocks = 1024, .mode = KV_MODE_OFF};
    struct engine *e = NULL;
    char err[256];
    if (engine_start(&cfg, &e, err) < 0) {
        fprintf(stderr, "fuzz_engine_request: %s\n", err);
        abort();
    }
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const P[] = {NULL, "vllm", "sglang", "llamacpp", "trtllm", "dynamo"};
    if (size < 1)
        return 0;
    size_t k = data[0] % 6;
    if (!engines[k]) {
        http_global_init();
        engines[k] = start(P[k]);
    }
    unsigned status = 0;
    char msg[512];
    bool chat = (data[0] & 0x80) != 0;
    int rc = server_parse_body(engines[k], chat, (const char *)data + 1, size - 1, &status, NULL,
                               msg, sizeof msg, NULL);
    if ((rc == 0) != (status == 200) || (rc != 0 && (status < 400 || !msg[0])))
        abort();
    return 0;
}
