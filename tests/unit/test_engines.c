/*
 * Unit tests for the engine profiles: the per-label split of the Prometheus parser they read,
 * the generic per-phase fields (null when the engine does not report one, never 0), engine
 * detection from what a server shows, the eviction verdicts on engines without a tier
 * breakdown, and --base-url normalisation.
 */
#include "test_common.h"

#include "model/engines.h"
#include "analysis/signals.h"
#include "cmd/cmd.h"
#include "probe/kvsnap.h"
#include "probe/prom.h"
#include "util/json.h"

static json_t *metrics_of(const char *text)
{
    struct prom_result r;
    assert_int_equal(prom_parse(text, strlen(text), &r), 0);
    json_t *j = prom_to_json(&r);
    prom_free(&r);
    return j;
}

static double field(const json_t *d, const char *name)
{
    const json_t *v = json_object_get(d, name);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void test_sglang_tiers_from_labels(void **state)
{
    (void)state;
    json_t *b =
        metrics_of("sglang:cached_tokens_total{model_name=\"m\",cache_source=\"device\"} 10\n"
                   "sglang:cached_tokens_total{model_name=\"m\",cache_source=\"host\"} 0\n"
                   "sglang:prompt_tokens_total{model_name=\"m\"} 100\n");
    json_t *a = metrics_of(
        "sglang:cached_tokens_total{model_name=\"m\",cache_source=\"device\"} 42\n"
        "sglang:cached_tokens_total{model_name=\"m\",cache_source=\"host\"} 64\n"
        "sglang:cached_tokens_total{model_name=\"m\",cache_source=\"storage_file\"} 128\n"
        "sglang:cached_tokens_total{model_name=\"m\",cache_source=\"storage_mooncake\"} 32\n"
        "sglang:prompt_tokens_total{model_name=\"m\"} 900\n"
        "sglang:token_usage{model_name=\"m\"} 0.25\n");
    json_t *d = engine_delta(engine_profile_find("sglang"), b, a);
    assert_string_equal(json_string_value(json_object_get(d, "engine")), "sglang");
    assert_true(field(d, "prompt_tokens") == 800);
    assert_true(field(d, "reused_tokens") == 256); /* (42+64+128+32) - 10 */
    assert_true(field(d, "reused_tokens_device") == 32);
    assert_true(field(d, "reused_tokens_host") == 64);
    assert_true(field(d, "reused_tokens_disk") == 160); /* every storage_* backend */
    assert_true(field(d, "cache_usage_after") == 0.25);
    /* not reported by SGLang: null, not 0 */
    assert_true(json_is_null(json_object_get(d, "onboard_blocks_disk")));
    assert_true(json_is_null(json_object_get(d, "preemptions")));
    json_decref(d);
    json_decref(a);
    json_decref(b);
}

static void test_vllm_and_trtllm_fields(void **state)
{
    (void)state;
    json_t *b = metrics_of("vllm:prefix_cache_hits_total{engine=\"0\"} 0\n");
    json_t *a = metrics_of("vllm:prefix_cache_hits_total{engine=\"0\"} 300\n"
                           "vllm:external_prefix_cache_hits_total{engine=\"0\"} 700\n"
                           "vllm:num_preemptions_total{engine=\"0\"} 2\n");
    json_t *d = engine_delta(engine_profile_find("vllm"), b, a);
    assert_true(field(d, "reused_tokens") == 1000);
    assert_true(field(d, "reused_tokens_device") == 300);
    assert_true(field(d, "reused_tokens_external") == 700); /* appeared during the phase */
    assert_true(field(d, "preemptions") == 2);
    assert_true(json_is_null(json_object_get(d, "prompt_tokens")));
    json_decref(d);
    json_decref(a);
    json_decref(b);
    /* TensorRT-LLM: blocks, turned into tokens with tokensPerBlock */
    json_t *tb = json_pack("{s:f, s:f}", "trtllm:kvCacheStats.reusedBlocks", 4.0,
                           "trtllm:kvCacheStats.tokensPerBlock", 32.0);
    json_t *ta = json_pack("{s:f, s:f, s:f}", "trtllm:kvCacheStats.reusedBlocks", 14.0,
                           "trtllm:kvCacheStats.missedBlocks", 3.0,
                           "trtllm:kvCacheStats.tokensPerBlock", 32.0);
    d = engine_delta(engine_profile_find("trtllm"), tb, ta);
    assert_true(field(d, "reused_blocks") == 10);
    assert_true(field(d, "reused_tokens") == 320);
    assert_true(field(d, "missed_blocks") == 3);
    json_decref(d);
    json_decref(ta);
    json_decref(tb);
}

static const char *detect(const json_t *models, const char *health, const json_t *metrics,
                          const json_t *kvbm, const char *server, struct engine_id *id)
{
    struct engine_seen seen = {.models = models,
                               .health_body = health,
                               .metrics = metrics,
                               .kvbm_metrics = kvbm,
                               .server_header = server};
    engine_detect(&seen, id);
    return id->profile->name;
}

static void test_detect(void **state)
{
    (void)state;
    struct engine_id id;
    json_t *models = json_pack("{s:[{s:s, s:s}]}", "data", "id", "m", "owned_by", "llamacpp");
    assert_string_equal(detect(models, NULL, NULL, NULL, NULL, &id), "llamacpp");
    assert_non_null(strstr(id.evidence, "owned_by"));
    assert_string_equal(id.title, "llama.cpp llama-server");
    assert_false(id.embedded);
    assert_false(engine_kv_modes_apply(&id)); /* llama.cpp has no kvbench KV modes */
    json_decref(models);
    models = json_pack("{s:[{s:s, s:s}]}", "data", "id", "m", "owned_by", "someone");
    json_t *m = metrics_of("sglang:prompt_tokens_total 1\n");
    assert_string_equal(detect(models, NULL, m, NULL, NULL, &id), "sglang");
    json_decref(m);
    assert_string_equal(detect(models, "{\"status\":\"healthy\",\"endpoints\":[],\"instances\":[]}",
                               NULL, NULL, NULL, &id),
                        "dynamo");
    assert_string_equal(id.evidence, "/health lists Dynamo endpoints and instances");
    assert_true(engine_kv_modes_apply(&id));
    /* the Dynamo frontend's own metrics on the base URL */
    m = metrics_of("dynamo_frontend_inflight_requests 0\n");
    assert_string_equal(detect(models, "", m, NULL, NULL, &id), "dynamo");
    assert_string_equal(id.evidence, "the base URL's /metrics carries dynamo_* metrics");
    json_decref(m);
    /* KVBM's own port answering with its families is Dynamo's mark too */
    json_t *k = metrics_of("kvbm_matched_tokens 5\n");
    assert_string_equal(detect(models, "", NULL, k, NULL, &id), "dynamo");
    assert_string_equal(id.evidence, "the KV metrics URL carries KVBM's kvbm_* metrics");
    /* … but not on the base URL, where KVBM does not serve them */
    assert_string_equal(detect(models, "", k, NULL, NULL, &id), "unknown");
    json_decref(k);
    /* nothing known: unknown, with what was tried; never a guessed Dynamo */
    assert_string_equal(detect(models, "", NULL, NULL, NULL, &id), "unknown");
    assert_non_null(strstr(id.evidence, "nothing identified"));
    assert_non_null(strstr(id.evidence, "\"someone\""));
    assert_non_null(strstr(id.evidence, "KV metrics URL did not answer"));
    assert_false(engine_kv_modes_apply(&id));
    assert_string_equal(detect(NULL, NULL, NULL, NULL, NULL, &id), "unknown");
    assert_non_null(strstr(id.evidence, "/v1/models did not answer"));
    json_decref(models);
    /* kvbench serve names itself; the personality decides the metric names */
    models = json_pack("{s:[{s:s, s:s}]}", "data", "id", "m", "owned_by", "vllm");
    assert_string_equal(detect(models, "", NULL, NULL, "kvbench-serve/1.2.3", &id), "vllm");
    assert_true(id.embedded);
    assert_string_equal(id.title, "kvbench serve (vllm personality)");
    assert_true(engine_kv_modes_apply(&id));
    json_decref(models);
    assert_null(engine_profile_find("auto"));
    assert_null(engine_profile_find("nope"));
    assert_null(engine_profile_find("unknown")); /* not a choice of --engine */
}

static json_t *eng(const char *name, const char *field_name, double v)
{
    json_t *ed = json_object();
    json_object_set_new(ed, "engine", json_string(name));
    for (int f = 0; f < KF_COUNT; f++)
        json_object_set_new(ed, KV_FIELD_NAMES[f], json_null());
    if (field_name)
        json_object_set_new(ed, field_name, json_real(v));
    return json_pack("{s:b, s:o}", "available", 1, "engine_delta", ed);
}

static const char *sig(const json_t *s)
{
    return json_string_value(json_object_get(s, "signal"));
}

static void test_ctx_limit_sources(void **state)
{
    (void)state;
    const struct engine_profile *v = engine_profile_find("vllm"),
                                *l = engine_profile_find("llamacpp");
    json_t *models =
        json_pack("{s:[{s:s, s:I}]}", "data", "id", "m", "max_model_len", (json_int_t)4096);
    assert_int_equal(engine_ctx_limit_in(&v->ctx_limits[0], models, "m"), 4096);
    assert_int_equal(engine_ctx_limit_in(&v->ctx_limits[0], models, NULL), 4096); /* the first */
    assert_int_equal(engine_ctx_limit_in(&v->ctx_limits[0], models, "other"), -1);
    json_decref(models);
    /* several models: the one the run sends to, not the first listed */
    models = json_pack("{s:[{s:s, s:I}, {s:s, s:I}]}", "data", "id", "a", "max_model_len",
                       (json_int_t)2048, "id", "b", "max_model_len", (json_int_t)131072);
    assert_int_equal(engine_ctx_limit_in(&v->ctx_limits[0], models, "b"), 131072);
    json_decref(models);
    models = json_pack("{s:[{s:s}]}", "data", "id", "m");
    assert_int_equal(engine_ctx_limit_in(&v->ctx_limits[0], models, "m"), -1);
    json_decref(models);
    json_t *props =
        json_pack("{s:{s:I}}", "default_generation_settings", "n_ctx", (json_int_t)2048);
    assert_int_equal(engine_ctx_limit_in(&l->ctx_limits[0], props, "m"), 2048);
    assert_int_equal(engine_ctx_limit_in(&l->ctx_limits[1], props, "m"), -1);
    json_decref(props);
    props = json_pack("{s:I}", "n_ctx", (json_int_t)0); /* not a limit */
    assert_int_equal(engine_ctx_limit_in(&l->ctx_limits[1], props, "m"), -1);
    json_decref(props);
    /* engines that publish none say so by having no source */
    assert_null(engine_profile_find("dynamo")->ctx_limits);
    assert_null(engine_profile_find("trtllm")->ctx_limits);
}

static void test_eviction_without_tiers(void **state)
{
    (void)state;
    /* llama.cpp: no counter at all; the replay's responses said they reused tokens */
    json_t *none = eng("llamacpp", NULL, 0);
    json_t *s = signal_eviction_kvbm(none, none, none, 40192);
    assert_string_equal(sig(s), "reuse_in_replay_tier_unknown");
    assert_true(json_is_null(json_object_get(s, "disk_onboard_in_replay")));
    json_decref(s);
    /* … and nothing at all: unavailable, never no_onboard */
    s = signal_eviction_kvbm(none, none, none, -1);
    assert_string_equal(sig(s), "kvbm_metrics_unavailable");
    json_decref(s);
    /* reuse reported as 0: reuse never triggered */
    s = signal_eviction_kvbm(none, none, none, 0);
    assert_string_equal(sig(s), "no_onboard_no_reuse_signal");
    json_decref(s);
    /* vLLM's connector hits: an onboard, tier unknown */
    json_t *ext = eng("vllm", "reused_tokens_external", 512);
    s = signal_eviction_kvbm(none, none, ext, -1);
    assert_string_equal(sig(s), "onboard_detected_tier_unknown");
    json_decref(s);
    /* SGLang's storage hits: read back from disk */
    json_t *disk = eng("sglang", "reused_tokens_disk", 1024);
    s = signal_eviction_kvbm(none, none, disk, -1);
    assert_string_equal(sig(s), "disk_rehydrate_detected");
    assert_true(json_is_true(json_object_get(s, "disk_onboard_in_replay")));
    json_decref(s);
    json_decref(disk);
    json_decref(ext);
    json_decref(none);
}

static void test_base_url(void **state)
{
    (void)state;
    char out[256];
    bool v1;
    assert_int_equal(base_url_normalize("http://h:8000/", out, sizeof out, &v1), 0);
    assert_string_equal(out, "http://h:8000");
    assert_false(v1);
    assert_int_equal(base_url_normalize("http://h:8000/v1/", out, sizeof out, &v1), 0);
    assert_string_equal(out, "http://h:8000");
    assert_true(v1);
    assert_int_equal(base_url_normalize("https://h/api/v1", out, sizeof out, &v1), 0);
    assert_string_equal(out, "https://h/api");
    assert_int_equal(base_url_normalize("http://h:8000", out, sizeof out, &v1), 0);
    assert_string_equal(out, "http://h:8000");
    assert_int_equal(base_url_normalize("h:8000", out, sizeof out, &v1), -1);
    assert_int_equal(base_url_normalize("http://", out, sizeof out, &v1), -1);
    assert_int_equal(base_url_normalize("http:///", out, sizeof out, &v1), -1);
    /* ports: empty, 0, past 65535, not digits, no host: usage errors, never a wait */
    const char *bad[] = {"http://127.0.0.1:",
                         "http://127.0.0.1:0",
                         "http://127.0.0.1:99999",
                         "http://127.0.0.1:65536",
                         "http://h:80x/v1",
                         "http://:80",
                         "http://[::1",
                         "http://[::1]x:80",
                         "http://[::1]:"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (base_url_normalize(bad[i], out, sizeof out, &v1) != -1)
            fail_msg("%s was accepted", bad[i]);
    assert_int_equal(base_url_normalize("http://127.0.0.1:65535", out, sizeof out, &v1), 0);
    assert_int_equal(base_url_normalize("http://[::1]:8000/v1", out, sizeof out, &v1), 0);
    assert_string_equal(out, "http://[::1]:8000");
    assert_int_equal(base_url_normalize("https://h:1/", out, sizeof out, &v1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sglang_tiers_from_labels),
        cmocka_unit_test(test_vllm_and_trtllm_fields),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_ctx_limit_sources),
        cmocka_unit_test(test_eviction_without_tiers),
        cmocka_unit_test(test_base_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
