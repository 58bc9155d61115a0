/*
 * test_engine.h - the small embedded engine the unit tests start (test_sched, test_server): tiny
 * model profile, loopback on a free port, no metrics port, KV mode off with 48 device blocks.
 * A test changes the few fields its case is about and calls engine_start.
 */
#ifndef KVBENCH_TEST_ENGINE_H
#define KVBENCH_TEST_ENGINE_H

#include "engine/engine.h"
#include "engine/profile.h"
#include "model/tokenizer.h"

#include <string.h>

static inline struct engine_config test_engine_config(void)
{
    struct engine_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.metrics_port = -1;
    cfg.model = *profile_model("tiny");
    cfg.hw = *profile_hw("gb10");
    cfg.model_id = "m";
    cfg.endpoint = "dyn://test.engine.generate";
    cfg.max_body_bytes = 1 << 16;
    cfg.max_num_tokens = 4096;
    cfg.max_tokens_limit = 4096;
    cfg.max_connections = 4;
    cfg.http_threads = 1;
    cfg.max_num_seqs = 2;
    cfg.drop_model_after = -1;
    cfg.tok = tokenizer_heuristic();
    cfg.kv = (struct kvbm_config){
        .block_tokens = 32, .block_bytes = 1024, .g1_blocks = 48, .mode = KV_MODE_OFF};
    return cfg;
}

#endif
