/*
 * Unit tests for bench/pressure: set B's size from the tiers' capacities, each way the tiers can
 * make a disk read-back impossible, capacities read from metric snapshots (kvbench serve's and
 * Dynamo's names), flags winning over metrics, and an unknown capacity never guessed.
 */
#include "test_common.h"

#include "scenario/pressure.h"
#include "probe/prom.h"

#include <jansson.h>

/* n prompts of `tokens` estimated tokens each */
static struct prompt *prompts(size_t n, size_t tokens)
{
    struct prompt *p = calloc(n, sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i].est_tokens = tokens;
    return p;
}

static const char *reason(const json_t *plan)
{
    return json_string_value(json_object_get(plan, "reason"));
}

static void test_sized_and_feasible(void **state)
{
    (void)state;
    long long blocks[3] = {64, 128, 4096};
    struct tier_caps caps;
    pressure_caps_init(&caps, blocks, 32);
    struct prompt *a = prompts(2, 1030); /* 32 full blocks each */
    size_t nb;
    json_t *plan = pressure_plan(&caps, a, 2, &nb);
    /* 1.25 x (64 + 128) + 32 = 272 blocks, at 32 a prompt: 9 prompts */
    assert_int_equal(nb, 9);
    assert_true(json_is_true(json_object_get(plan, "feasible")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(plan, "set_a"), "blocks")),
                     64);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(plan, "set_b"), "blocks")),
                     288);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(plan, "sources"), "host")),
        "flag --tier-blocks");
    json_decref(plan);
    free(a);
}

/* A request that cannot fit the device tier (prompt + max_tokens) makes the plan infeasible,
 * naming the capacity and the largest prompt that fits; one block under it fits. */
static void test_requests_fit_the_device_tier(void **state)
{
    (void)state;
    long long blocks[3] = {64, 128, 4096};
    struct tier_caps caps;
    pressure_caps_init(&caps, blocks, 32);
    struct prompt *a = prompts(2, 2016), *b = prompts(3, 1000);
    size_t nb;
    json_t *plan = pressure_plan(&caps, a, 2, &nb);
    /* 2016 + 32 = 2048 tokens = 64 blocks: fits exactly */
    assert_true(pressure_fit(plan, &caps, a, 2, b, 3, 32));
    assert_true(json_is_true(json_object_get(plan, "fits_device")));
    assert_true(json_is_true(json_object_get(plan, "feasible")));
    /* one token more in set B's last prompt: 65 blocks */
    b[2].est_tokens = 2017;
    snprintf(b[2].id, sizeof b[2].id, "B-00002");
    assert_false(pressure_fit(plan, &caps, a, 2, b, 3, 32));
    assert_true(json_is_false(json_object_get(plan, "fits_device")));
    assert_true(json_is_false(json_object_get(plan, "feasible")));
    assert_non_null(strstr(reason(plan), "B-00002"));
    assert_non_null(strstr(reason(plan), "device tier holds 64"));
    assert_non_null(strstr(reason(plan), "--long-range MIN:2016"));
    /* max_tokens alone past the device tier: nothing can run */
    assert_false(pressure_fit(plan, &caps, a, 2, NULL, 0, 4096));
    assert_non_null(strstr(reason(plan), "no request can run"));
    json_decref(plan);
    /* capacities unknown: nothing is claimed */
    pressure_caps_init(&caps, (long long[3]){-1, -1, -1}, 0);
    plan = pressure_plan(&caps, a, 2, &nb);
    assert_true(pressure_fit(plan, &caps, a, 2, b, 3, 32));
    assert_null(json_object_get(plan, "fits_device"));
    json_decref(plan);
    free(a);
    free(b);
}

static void test_impossible_tiers(void **state)
{
    (void)state;
    struct prompt *a = prompts(2, 1030);
    size_t nb;
    struct {
        long long disk;
        const char *says;
    } cases[] = {
        {0, "no disk tier"},
        {63, "smaller than set A"},
        {300, "cannot keep set A (64) and the pressure"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long long blocks[3] = {64, 128, cases[i].disk};
        struct tier_caps caps;
        pressure_caps_init(&caps, blocks, 32);
        json_t *plan = pressure_plan(&caps, a, 2, &nb);
        assert_true(json_is_false(json_object_get(plan, "feasible")));
        assert_non_null(strstr(reason(plan), cases[i].says));
        assert_int_equal(nb, 9); /* still planned: the run shows what happens */
        json_decref(plan);
    }
    /* the disk's capacity unknown: sized, feasibility not decided */
    long long unknown_disk[3] = {64, 128, -1};
    struct tier_caps caps;
    pressure_caps_init(&caps, unknown_disk, 32);
    json_t *plan = pressure_plan(&caps, a, 2, &nb);
    assert_true(json_is_null(json_object_get(plan, "feasible")));
    assert_int_equal(nb, 9);
    json_decref(plan);
    free(a);
}

static void test_unknown_is_not_guessed(void **state)
{
    (void)state;
    struct prompt *a = prompts(2, 1030);
    struct tier_caps caps;
    pressure_caps_init(&caps, NULL, 0);
    size_t nb = 99;
    json_t *plan = pressure_plan(&caps, a, 2, &nb);
    assert_int_equal(nb, 0);
    assert_null(json_object_get(plan, "set_b"));
    assert_non_null(strstr(reason(plan), "tokens per block is unknown"));
    json_decref(plan);
    /* Dynamo gives the device tier and the block size, not the host tier */
    json_t *api = json_pack("{s:f, s:f}", "dynamo_frontend_model_total_kv_blocks", 160.0,
                            "dynamo_frontend_model_kv_cache_block_size", 32.0);
    pressure_caps_from_metrics(&caps, NULL, api);
    assert_int_equal(caps.blocks[TIER_DEVICE], 160);
    assert_int_equal(caps.block_tokens, 32);
    plan = pressure_plan(&caps, a, 2, &nb);
    assert_int_equal(nb, 0);
    assert_non_null(strstr(reason(plan), "the host tier's capacity is unknown"));
    json_decref(plan);
    json_decref(api);
    free(a);
}

static void test_metrics_and_flags(void **state)
{
    (void)state;
    json_t *kv = json_pack("{s:f, s:f, s:f, s:f}", "kvbench_tier_capacity_blocks", 1312.0,
                           "kvbench_tier_capacity_blocks{tier=\"g1\"}", 160.0,
                           "kvbench_tier_capacity_blocks{tier=\"g2\"}", 128.0,
                           "kvbench_tier_capacity_blocks{tier=\"g3\"}", 1024.0);
    json_t *api = json_pack("{s:f, s:f}", "dynamo_frontend_model_total_kv_blocks", 999.0,
                            "dynamo_frontend_model_kv_cache_block_size", 64.0);
    long long flags[3] = {-1, 0, -1}; /* the host tier off by flag */
    struct tier_caps caps;
    pressure_caps_init(&caps, flags, 0);
    pressure_caps_from_metrics(&caps, kv, api);
    assert_int_equal(caps.blocks[TIER_DEVICE], 160); /* kvbench's own gauge before Dynamo's */
    assert_int_equal(caps.blocks[TIER_HOST], 0);
    assert_int_equal(caps.blocks[TIER_DISK], 1024);
    assert_int_equal(caps.block_tokens, 64);
    assert_string_equal(caps.source[TIER_HOST], "flag --tier-blocks");
    assert_string_equal(caps.source[TIER_DISK], "kvbench_tier_capacity_blocks");
    json_decref(kv);
    json_decref(api);
}

/* metrics text as an engine serves it, as the run reads it ({name: value}) */
static json_t *scrape(const char *text)
{
    struct prom_result r;
    assert_int_equal(prom_parse(text, strlen(text), &r), 0);
    json_t *j = prom_to_json(&r);
    prom_free(&r);
    return j;
}

static void test_other_engines(void **state)
{
    (void)state;
    long long host_disk[3] = {-1, 0, 8192}; /* what a real offload tier needs from flags */
    struct tier_caps caps;
    /* vLLM: an info metric's labels */
    json_t *m = scrape("# TYPE vllm:cache_config_info gauge\n"
                       "vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\","
                       "enable_prefix_caching=\"True\",num_gpu_blocks=\"27355\"} 1.0\n");
    pressure_caps_init(&caps, host_disk, 0);
    pressure_caps_from_metrics(&caps, NULL, m);
    assert_int_equal(caps.blocks[TIER_DEVICE], 27355);
    assert_int_equal(caps.block_tokens, 16);
    assert_string_equal(caps.source[TIER_DEVICE], "vllm:cache_config_info.num_gpu_blocks");
    json_decref(m);
    /* TensorRT-LLM: its /metrics JSON, as kvsnap names the fields */
    m = json_pack("{s:f, s:f}", "trtllm:kvCacheStats.maxNumBlocks", 4000.0,
                  "trtllm:kvCacheStats.tokensPerBlock", 32.0);
    pressure_caps_init(&caps, host_disk, 0);
    pressure_caps_from_metrics(&caps, m, NULL);
    assert_int_equal(caps.blocks[TIER_DEVICE], 4000);
    assert_int_equal(caps.block_tokens, 32);
    json_decref(m);
    /* SGLang: tokens, not blocks; its page size only from --kv-block-tokens */
    m = scrape("sglang:max_total_num_tokens{model_name=\"m\"} 65536\n");
    pressure_caps_init(&caps, host_disk, 0);
    pressure_caps_from_metrics(&caps, NULL, m);
    assert_int_equal(caps.blocks[TIER_DEVICE], -1); /* not guessed */
    pressure_caps_init(&caps, host_disk, 64);
    pressure_caps_from_metrics(&caps, NULL, m);
    assert_int_equal(caps.blocks[TIER_DEVICE], 1024);
    json_decref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sized_and_feasible),
        cmocka_unit_test(test_impossible_tiers),
        cmocka_unit_test(test_unknown_is_not_guessed),
        cmocka_unit_test(test_metrics_and_flags),
        cmocka_unit_test(test_other_engines),
        cmocka_unit_test(test_requests_fit_the_device_tier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
