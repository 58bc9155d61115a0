/*
 * Unit tests for the engine catalogue (model/engines.h): each personality's /metrics, rendered by
 * the embedded engine's own writer (engine/metrics.c) from known counters before and after a
 * phase, read back the way `kvbench run` reads a server (probe/kvsnap: kvsnap_parse,
 * kvsnap_delta_json, engine_delta through the profile's rules) must give every generic field the
 * engine reports, with the values put in, and null for every field it does not. A catalogue row
 * whose served name and rule name disagree fails here. Every profile with a personality must
 * have its expectation below: a new engine is one catalogue entry plus its row here.
 */
#include "test_common.h"

#include "analysis/signals.h"
#include "engine/internal.h"
#include "engine/metrics.h"
#include "model/engines.h"
#include "probe/kvsnap.h"
#include "util/json.h"

#include <math.h>

#define NUL NAN /* the field must come back null */

/* The counters of the engine before and after the phase (tokens; blocks for TensorRT-LLM). */
struct phase_counts {
    uint64_t prompt, generation, queries, dev, host, disk, hit_blocks, miss_blocks;
};
static const struct phase_counts BEFORE = {100, 50, 100, 10, 0, 0, 2, 5};
static const struct phase_counts AFTER = {1000, 90, 1000, 310, 200, 100, 9, 8};
#define BLOCK_TOKENS 16

/* What each personality's /metrics must read back as, per kv mode. */
struct expectation {
    const char *engine;
    enum kv_mode mode;
    double field[KF_COUNT];
};

static const struct expectation EXPECT[] = {
    {"vllm",
     KV_MODE_CPU_DISK,
     {[KF_PROMPT_TOKENS] = 900,
      [KF_REUSED_TOKENS] = 600,
      [KF_REUSED_DEVICE] = 300,
      [KF_REUSED_HOST] = NUL,
      [KF_REUSED_DISK] = NUL,
      [KF_REUSED_EXTERNAL] = 300,
      [KF_ONBOARD_HOST] = NUL,
      [KF_ONBOARD_DISK] = NUL,
      [KF_OFFLOAD_HOST] = NUL,
      [KF_OFFLOAD_DISK] = NUL,
      [KF_REUSED_BLOCKS] = NUL,
      [KF_MISSED_BLOCKS] = NUL,
      [KF_PREEMPTIONS] = 0,
      [KF_CACHE_USAGE] = 0}},
    /* no offload connector: the external_ pair is not served, so not read as 0 */
    {"vllm",
     KV_MODE_OFF,
     {[KF_PROMPT_TOKENS] = 900,
      [KF_REUSED_TOKENS] = 300,
      [KF_REUSED_DEVICE] = 300,
      [KF_REUSED_HOST] = NUL,
      [KF_REUSED_DISK] = NUL,
      [KF_REUSED_EXTERNAL] = NUL,
      [KF_ONBOARD_HOST] = NUL,
      [KF_ONBOARD_DISK] = NUL,
      [KF_OFFLOAD_HOST] = NUL,
      [KF_OFFLOAD_DISK] = NUL,
      [KF_REUSED_BLOCKS] = NUL,
      [KF_MISSED_BLOCKS] = NUL,
      [KF_PREEMPTIONS] = 0,
      [KF_CACHE_USAGE] = 0}},
    {"sglang",
     KV_MODE_CPU_DISK,
     {[KF_PROMPT_TOKENS] = 900,
      [KF_REUSED_TOKENS] = 600,
      [KF_REUSED_DEVICE] = 300,
      [KF_REUSED_HOST] = 200,
      [KF_REUSED_DISK] = 100,
      [KF_REUSED_EXTERNAL] = NUL,
      [KF_ONBOARD_HOST] = NUL,
      [KF_ONBOARD_DISK] = NUL,
      [KF_OFFLOAD_HOST] = NUL,
      [KF_OFFLOAD_DISK] = NUL,
      [KF_REUSED_BLOCKS] = NUL,
      [KF_MISSED_BLOCKS] = NUL,
      [KF_PREEMPTIONS] = 0,
      [KF_CACHE_USAGE] = 0}},
    /* host tier only: no storage row, so the disk field is null and the total lacks it */
    {"sglang",
     KV_MODE_CPU_ONLY,
     {[KF_PROMPT_TOKENS] = 900,
      [KF_REUSED_TOKENS] = 500,
      [KF_REUSED_DEVICE] = 300,
      [KF_REUSED_HOST] = 200,
      [KF_REUSED_DISK] = NUL,
      [KF_REUSED_EXTERNAL] = NUL,
      [KF_ONBOARD_HOST] = NUL,
      [KF_ONBOARD_DISK] = NUL,
      [KF_OFFLOAD_HOST] = NUL,
      [KF_OFFLOAD_DISK] = NUL,
      [KF_REUSED_BLOCKS] = NUL,
      [KF_MISSED_BLOCKS] = NUL,
      [KF_PREEMPTIONS] = 0,
      [KF_CACHE_USAGE] = 0}},
    {"llamacpp",
     KV_MODE_CPU_DISK,
     {[KF_PROMPT_TOKENS] = NUL,
      [KF_REUSED_TOKENS] = NUL,
      [KF_REUSED_DEVICE] = NUL,
      [KF_REUSED_HOST] = NUL,
      [KF_REUSED_DISK] = NUL,
      [KF_REUSED_EXTERNAL] = NUL,
      [KF_ONBOARD_HOST] = NUL,
      [KF_ONBOARD_DISK] = NUL,
      [KF_OFFLOAD_HOST] = NUL,
      [KF_OFFLOAD_DISK] = NUL,
      [KF_REUSED_BLOCKS] = NUL,
      [KF_MISSED_BLOCKS] = NUL,
      [KF_PREEMPTIONS] = NUL,
      [KF_CACHE_USAGE] = 0}},
    {"trtllm",
     KV_MODE_CPU_DISK,
     {[KF_PROMPT_TOKENS] = NUL,
      [KF_REUSED_TOKENS] = 7 * BLOCK_TOKENS,
      [KF_REUSED_DEVICE] = NUL,
      [KF_REUSED_HOST] = NUL,
      [KF_REUSED_DISK] = NUL,
      [KF_REUSED_EXTERNAL] = NUL,
      [KF_ONBOARD_HOST] = NUL,
      [KF_ONBOARD_DISK] = NUL,
      [KF_OFFLOAD_HOST] = NUL,
      [KF_OFFLOAD_DISK] = NUL,
      [KF_REUSED_BLOCKS] = 7,
      [KF_MISSED_BLOCKS] = 3,
      [KF_PREEMPTIONS] = NUL,
      [KF_CACHE_USAGE] = NUL}},
    /* Dynamo: the harness reads KVBM's port (dynamo_kvbm below), not the frontend's /metrics */
    {"dynamo",
     KV_MODE_CPU_DISK,
     {[KF_PROMPT_TOKENS] = NUL,
      [KF_REUSED_TOKENS] = NUL,
      [KF_REUSED_DEVICE] = NUL,
      [KF_REUSED_HOST] = NUL,
      [KF_REUSED_DISK] = NUL,
      [KF_REUSED_EXTERNAL] = NUL,
      [KF_ONBOARD_HOST] = NUL,
      [KF_ONBOARD_DISK] = NUL,
      [KF_OFFLOAD_HOST] = NUL,
      [KF_OFFLOAD_DISK] = NUL,
      [KF_REUSED_BLOCKS] = NUL,
      [KF_MISSED_BLOCKS] = NUL,
      [KF_PREEMPTIONS] = NUL,
      [KF_CACHE_USAGE] = NUL}},
};
#define N_EXPECT (sizeof EXPECT / sizeof EXPECT[0])

static void set_counts(struct engine *e, const struct phase_counts *c)
{
    e->fm.prompt_tokens = c->prompt;
    e->fm.generation_tokens = c->generation;
    e->fm.prefix_query_tokens = c->queries;
    e->fm.hit_tokens_device = c->dev;
    e->fm.hit_tokens_host = c->host;
    e->fm.hit_tokens_disk = c->disk;
    e->fm.hit_blocks = c->hit_blocks;
    e->fm.miss_blocks = c->miss_blocks;
}

/* A snapshot of e's API /metrics as kvbench run takes one (the body through kvsnap_parse). */
static void scrape(struct engine *e, struct kv_snapshot *s)
{
    struct buf b = BUF_INIT;
    bool json = false;
    metrics_render_api(e, &b, &json);
    assert_false(buf_failed(&b));
    assert_true(json == (e->cfg.personality->metrics == METRICS_TRTLLM));
    memset(s, 0, sizeof *s);
    kvsnap_parse(buf_cstr(&b), b.len, s);
    buf_free(&b);
    assert_true(s->success);
    assert_int_equal(s->malformed_lines, 0);
}

/* d must carry exactly the fields of want: each number equal, each NUL null. */
static void assert_fields(const json_t *d, const double *want, const char *what)
{
    for (int f = 0; f < KF_COUNT; f++) {
        const json_t *v = json_object_get(d, KV_FIELD_NAMES[f]);
        if (isnan(want[f])) {
            if (!json_is_null(v))
                fail_msg("%s: %s should be null, is %g", what, KV_FIELD_NAMES[f],
                         json_number_value(v));
        } else if (!json_is_number(v) || json_number_value(v) != want[f]) {
            fail_msg("%s: %s should be %g, is %s %g", what, KV_FIELD_NAMES[f], want[f],
                     json_is_number(v) ? "" : "null", json_number_value(v));
        }
    }
}

static void roundtrip(const struct expectation *x)
{
    const struct engine_profile *p = engine_profile_find(x->engine);
    assert_non_null(p);
    assert_non_null(p->serve);
    struct engine *e = calloc(1, sizeof *e);
    assert_non_null(e);
    assert_int_equal(metrics_init(&e->fm), 0);
    e->cfg.model_id = "m";
    e->cfg.personality = personality_find(x->engine);
    assert_ptr_equal(e->cfg.personality, p->serve);
    e->cfg.kv.mode = x->mode;
    e->cfg.kv.g1_blocks = 100;
    e->cfg.kv.block_tokens = BLOCK_TOKENS;
    struct kv_snapshot before, after;
    set_counts(e, &BEFORE);
    scrape(e, &before);
    set_counts(e, &AFTER);
    scrape(e, &after);
    /* what proves the endpoint is this engine's is in what its personality serves */
    assert_true(engine_has_family(after.metrics, p->families) || p == &ENGINE_DYNAMO);
    json_t *d = engine_delta(p, before.metrics, after.metrics);
    assert_string_equal(json_get_str(d, "engine", ""), p->name);
    char what[64];
    snprintf(what, sizeof what, "%s (%s)", x->engine, kv_mode_name(x->mode));
    assert_fields(d, x->field, what);
    json_decref(d);
    kvsnap_free(&before);
    kvsnap_free(&after);
    metrics_free(&e->fm);
    free(e);
}

static void test_every_personality_reads_back(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_EXPECT; i++)
        roundtrip(&EXPECT[i]);
}

/* A catalogue entry with a personality and no expectation above is a new engine without its
 * test. */
static void test_every_personality_has_an_expectation(void **state)
{
    (void)state;
    size_t n = 0;
    for (size_t i = 0; ENGINE_PROFILES[i]; i++, n++) {
        const struct engine_profile *p = ENGINE_PROFILES[i];
        bool found = false;
        for (size_t k = 0; k < N_EXPECT; k++)
            found = found || strcmp(EXPECT[k].engine, p->name) == 0;
        if (p->serve && !found)
            fail_msg("engine %s has a personality but no round-trip expectation", p->name);
        if (p->serve)
            assert_string_equal(p->serve->name, p->name);
        /* the names --engine and --personality accept are the catalogue's */
        assert_string_equal(ENGINE_NAMES[i + 1], p->name);
        assert_ptr_equal(personality_find(p->name), p->serve);
    }
    assert_string_equal(ENGINE_NAMES[0], "auto");
    assert_null(ENGINE_NAMES[n + 1]);
    assert_null(personality_find("nonesuch"));
    assert_null(personality_find(NULL));
}

/* KVBM's port: the counters Dynamo's rules read, through the same writer the engine serves
 * them with; and KVBM's own delta keys (kvsnap_delta_json), read by the signals when no
 * engine_delta is there, must give the same generic fields. */
static void kvbm_scrape(const struct kvbm_counters *c, struct kv_snapshot *s)
{
    struct kvbm_gauges g = {0};
    struct kvbm_config cfg = {.mode = KV_MODE_CPU_DISK, .g1_blocks = 8, .g2_blocks = 16};
    struct buf b = BUF_INIT;
    metrics_write_kvbm(c, &g, &cfg, &b);
    assert_false(buf_failed(&b));
    memset(s, 0, sizeof *s);
    kvsnap_parse(buf_cstr(&b), b.len, s);
    buf_free(&b);
    assert_true(s->success);
    assert_int_equal(s->malformed_lines, 0);
}

static void test_dynamo_kvbm_port_reads_back(void **state)
{
    (void)state;
    struct kvbm_counters c0 = {.offload_d2h = 1,
                               .offload_h2d = 1,
                               .offload_d2d = 1,
                               .onboard_h2d = 1,
                               .onboard_d2d = 1,
                               .matched_tokens = 1};
    struct kvbm_counters c1 = {.offload_d2h = 11,
                               .offload_h2d = 21,
                               .offload_d2d = 31,
                               .onboard_h2d = 41,
                               .onboard_d2d = 51,
                               .matched_tokens = 61,
                               .disk_bytes_read = 1048576,
                               .disk_bytes_written = 2097152};
    struct kv_snapshot before, after;
    kvbm_scrape(&c0, &before);
    kvbm_scrape(&c1, &after);
    assert_true(engine_has_family(after.metrics, ENGINE_DYNAMO.families));
    json_t *d = engine_delta(&ENGINE_DYNAMO, before.metrics, after.metrics);
    double want[KF_COUNT];
    for (int f = 0; f < KF_COUNT; f++)
        want[f] = NUL;
    want[KF_REUSED_TOKENS] = 60;
    want[KF_ONBOARD_HOST] = 40;
    want[KF_ONBOARD_DISK] = 50;
    want[KF_OFFLOAD_HOST] = 10;
    want[KF_OFFLOAD_DISK] = 50; /* host → disk (20) and device → disk (30) */
    assert_fields(d, want, "dynamo (kvbm port)");
    json_decref(d);

    /* every counter kvsnap reads is served */
    json_t *kd = kvsnap_delta_json(&before, &after);
    for (size_t i = 0; KV_COUNTERS[i]; i++) {
        char key[96];
        snprintf(key, sizeof key, "%s_delta", KV_COUNTERS[i]);
        if (!json_is_number(json_object_get(kd, key)))
            fail_msg("%s is not served on the KVBM port", KV_COUNTERS[i]);
    }
    for (size_t i = 0; KV_GAUGES[i]; i++) {
        char key[96];
        snprintf(key, sizeof key, "%s_after", KV_GAUGES[i]);
        if (!json_is_number(json_object_get(kd, key)))
            fail_msg("%s is not served on the KVBM port", KV_GAUGES[i]);
    }
    assert_true(json_get_num(kd, "disk_write_mib_delta", 0) == 2.0);

    /* the signals read the same offload and onboard counts with or without engine_delta */
    json_t *with = json_deep_copy(kd);
    json_object_set_new(with, "engine_delta",
                        engine_delta(&ENGINE_DYNAMO, before.metrics, after.metrics));
    json_t *s1 = signal_eviction_kvbm(kd, kd, kd, -1);
    json_t *s2 = signal_eviction_kvbm(with, with, with, -1);
    const char *keys[] = {"warm_offload_blocks", "warm_onboard_blocks", "warm_matched_tokens",
                          "replay_onboard_blocks_h2d", "replay_onboard_blocks_d2d"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        assert_true(json_is_number(json_object_get(s1, keys[i])));
        assert_true(json_get_num(s1, keys[i], -1) == json_get_num(s2, keys[i], -2));
    }
    assert_true(json_get_num(s1, "warm_offload_blocks", 0) == 10 + 20 + 30);
    json_decref(s1);
    json_decref(s2);
    json_decref(with);
    json_decref(kd);
    kvsnap_free(&before);
    kvsnap_free(&after);
}

/* The /tokenize dialects: each personality that serves /tokenize has its dialect's row. */
static void test_tokenize_dialects(void **state)
{
    (void)state;
    for (size_t i = 0; ENGINE_PROFILES[i]; i++) {
        const struct personality *p = ENGINE_PROFILES[i]->serve;
        if (p && p->tokenize != TOKENIZE_NONE) {
            const struct tokenize_dialect *d = tokenize_dialect(p->tokenize);
            assert_non_null(d);
            assert_non_null(d->text_key);
            assert_non_null(d->special_key);
            assert_non_null(d->tokens_key);
        }
    }
    assert_null(tokenize_dialect(TOKENIZE_NONE));
    assert_string_equal(tokenize_dialect(TOKENIZE_VLLM)->text_key, "prompt");
    assert_string_equal(tokenize_dialect(TOKENIZE_LLAMACPP)->text_key, "content");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_personality_reads_back),
        cmocka_unit_test(test_every_personality_has_an_expectation),
        cmocka_unit_test(test_dynamo_kvbm_port_reads_back),
        cmocka_unit_test(test_tokenize_dialects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
