/*
 * pressure.c - set B's size from the tiers' capacities (--pressure auto).
 *
 * The engines cache full blocks and evict the least recently used first. After warm_A, set A's
 * blocks are the newest in device memory (and, offloaded, in host memory and on disk). For the
 * replay to read A back from disk, pressure_B must write more new blocks than the device and host
 * tiers hold together, so that all of A leaves them, while the disk keeps A and B both (else the
 * disk tier evicts A, the oldest, too). With a margin of a quarter and one prompt:
 *     B blocks >= 1.25 x (device + host) + one prompt,   A blocks + B blocks <= disk.
 */
#include "scenario/pressure.h"
#include "model/engines.h"

#include "probe/prom.h"
#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PRESSURE_MARGIN 1.25

static const char *const TIER_NAMES[TIER_COUNT] = {"device", "host", "disk"};

void pressure_caps_init(struct tier_caps *caps, const long long flag_blocks[TIER_COUNT],
                        long long flag_block_tokens)
{
    memset(caps, 0, sizeof *caps);
    for (int t = 0; t < TIER_COUNT; t++) {
        caps->blocks[t] = flag_blocks && flag_blocks[t] >= 0 ? flag_blocks[t] : -1;
        caps->source[t] = caps->blocks[t] >= 0 ? "flag --tier-blocks" : NULL;
    }
    caps->block_tokens = flag_block_tokens > 0 ? flag_block_tokens : 0;
    caps->source[TIER_COUNT] = caps->block_tokens ? "flag --kv-block-tokens" : NULL;
}

static bool metric(const json_t *m, const char *name, double *v)
{
    return m && prom_json_lookup(m, name, v) && isfinite(*v) && *v >= 0;
}

void pressure_caps_from_metrics(struct tier_caps *caps, const json_t *kv_metrics,
                                const json_t *api_metrics)
{
    static const char *const KVBENCH[TIER_COUNT] = {
        KVBENCH_TIER_CAPACITY "{tier=\"g1\"}",
        KVBENCH_TIER_CAPACITY "{tier=\"g2\"}",
        KVBENCH_TIER_CAPACITY "{tier=\"g3\"}",
    };
    double v;
    for (int t = 0; t < TIER_COUNT; t++) {
        if (caps->blocks[t] >= 0)
            continue;
        if (metric(kv_metrics, KVBENCH[t], &v) || metric(api_metrics, KVBENCH[t], &v)) {
            caps->blocks[t] = (long long)v;
            caps->source[t] = KVBENCH_TIER_CAPACITY;
        }
    }
    /* the device tier and the block size as each engine reports them (docs/RUN.md) */
    static const char *const DEVICE[] = {
        "dynamo_frontend_model_total_kv_blocks", /* Dynamo's frontend */
        "vllm:cache_config_info.num_gpu_blocks", /* vLLM (an info metric's label) */
        "trtllm:kvCacheStats.maxNumBlocks",      /* TensorRT-LLM's /metrics JSON */
        NULL,
    };
    static const char *const BLOCK[] = {
        "dynamo_frontend_model_kv_cache_block_size",
        "vllm:cache_config_info.block_size",
        "trtllm:kvCacheStats.tokensPerBlock",
        NULL,
    };
    for (size_t i = 0; DEVICE[i] && caps->blocks[TIER_DEVICE] < 0; i++)
        if (metric(api_metrics, DEVICE[i], &v) || metric(kv_metrics, DEVICE[i], &v)) {
            caps->blocks[TIER_DEVICE] = (long long)v;
            caps->source[TIER_DEVICE] = DEVICE[i];
        }
    for (size_t i = 0; BLOCK[i] && !caps->block_tokens; i++)
        if ((metric(api_metrics, BLOCK[i], &v) || metric(kv_metrics, BLOCK[i], &v)) && v >= 1) {
            caps->block_tokens = (long long)v;
            caps->source[TIER_COUNT] = BLOCK[i];
        }
    /* SGLang counts its device pool in tokens: blocks of its page size, which it does not
     * export (--kv-block-tokens gives it) */
    if (caps->blocks[TIER_DEVICE] < 0 && caps->block_tokens > 0 &&
        (metric(api_metrics, "sglang:max_total_num_tokens", &v) ||
         metric(kv_metrics, "sglang:max_total_num_tokens", &v))) {
        caps->blocks[TIER_DEVICE] = (long long)v / caps->block_tokens;
        caps->source[TIER_DEVICE] = "sglang:max_total_num_tokens / --kv-block-tokens";
    }
}

static json_t *cap_json(long long v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

json_t *pressure_plan(const struct tier_caps *caps, const struct prompt *a, size_t n_a, size_t *n_b)
{
    *n_b = 0;
    json_t *o = json_object();
    json_put_str(o, "mode", "auto");
    json_t *cap = json_object(), *src = json_object();
    for (int t = 0; t < TIER_COUNT; t++) {
        json_put(cap, TIER_NAMES[t], cap_json(caps->blocks[t]));
        json_put(src, TIER_NAMES[t], caps->source[t] ? json_string(caps->source[t]) : json_null());
    }
    json_put(src, "block_tokens",
             caps->source[TIER_COUNT] ? json_string(caps->source[TIER_COUNT]) : json_null());
    json_put(o, "capacity_blocks", cap);
    json_put(o, "block_tokens",
             caps->block_tokens ? json_integer(caps->block_tokens) : json_null());
    json_put(o, "sources", src);

    const char *missing = caps->block_tokens <= 0         ? "tokens per block"
                          : caps->blocks[TIER_DEVICE] < 0 ? "the device tier's capacity"
                          : caps->blocks[TIER_HOST] < 0   ? "the host tier's capacity"
                                                          : NULL;
    if (missing) {
        char why[200];
        snprintf(why, sizeof why,
                 "%s is unknown (neither --tier-blocks / --kv-block-tokens nor the engine's "
                 "metrics give it): set B keeps --eviction-b-requests",
                 missing);
        json_put(o, "feasible", json_null());
        json_put_str(o, "reason", why);
        return o;
    }
    long long bt = caps->block_tokens;
    long long a_blocks = 0;
    for (size_t i = 0; i < n_a; i++)
        a_blocks += (long long)a[i].est_tokens / bt; /* full blocks are what is cached */
    double per_prompt = n_a && a_blocks ? (double)a_blocks / (double)n_a : 1;
    long long fast = caps->blocks[TIER_DEVICE] + caps->blocks[TIER_HOST];
    long long b_needed = (long long)ceil(PRESSURE_MARGIN * (double)fast + per_prompt);
    size_t nb = (size_t)ceil((double)b_needed / per_prompt);
    if (nb < 1)
        nb = 1;
    long long b_blocks = (long long)llround((double)nb * per_prompt);
    *n_b = nb;
    json_put(o, "set_a",
             json_pack("{s:I, s:I}", "requests", (json_int_t)n_a, "blocks", (json_int_t)a_blocks));
    json_put_real(o, "blocks_per_prompt", round(per_prompt * 10) / 10);
    json_put(o, "set_b",
             json_pack("{s:I, s:I}", "requests", (json_int_t)nb, "blocks", (json_int_t)b_blocks));
    json_put(o, "expected",
             json_pack("{s:I, s:I}", "blocks_pushed_past_device_and_host", (json_int_t)fast,
                       "disk_blocks_needed", (json_int_t)(a_blocks + b_blocks)));
    long long disk = caps->blocks[TIER_DISK];
    char why[320];
    if (disk < 0) {
        json_put(o, "feasible", json_null());
        snprintf(why, sizeof why,
                 "the disk tier's capacity is unknown: whether it keeps set A (%lld blocks) and "
                 "set B (%lld) cannot be checked",
                 a_blocks, b_blocks);
    } else if (disk == 0) {
        json_put_bool(o, "feasible", false);
        snprintf(why, sizeof why, "there is no disk tier: nothing can be read back from disk");
    } else if (a_blocks > disk) {
        json_put_bool(o, "feasible", false);
        snprintf(why, sizeof why,
                 "the disk tier (%lld blocks) is smaller than set A (%lld blocks): fewer or "
                 "shorter A prompts (--eviction-a-requests, --long-range)",
                 disk, a_blocks);
    } else if (a_blocks + b_blocks > disk) {
        json_put_bool(o, "feasible", false);
        snprintf(why, sizeof why,
                 "the disk tier (%lld blocks) cannot keep set A (%lld) and the pressure that "
                 "pushes A out of device and host memory (%lld): A would be evicted from disk "
                 "too; a larger disk cache or smaller faster tiers",
                 disk, a_blocks, b_blocks);
    } else {
        json_put_bool(o, "feasible", true);
        snprintf(why, sizeof why,
                 "set B writes %lld blocks, more than device + host hold (%lld), and the disk "
                 "(%lld) keeps A and B (%lld)",
                 b_blocks, fast, disk, a_blocks + b_blocks);
    }
    json_put_str(o, "reason", why);
    return o;
}

bool pressure_fit(json_t *plan, const struct tier_caps *caps, const struct prompt *a, size_t n_a,
                  const struct prompt *b, size_t n_b, long long max_tokens)
{
    long long bt = caps->block_tokens, dev = caps->blocks[TIER_DEVICE];
    if (!plan || bt <= 0 || dev < 0)
        return true;
    const struct prompt *worst = NULL;
    for (size_t i = 0; i < n_a + n_b; i++) {
        const struct prompt *p = i < n_a ? &a[i] : &b[i - n_a];
        if (!worst || p->est_tokens > worst->est_tokens)
            worst = p;
    }
    if (!worst)
        return true;
    /* the engine holds a request's prompt and its answer in device blocks while it runs */
    long long need = ((long long)worst->est_tokens + max_tokens + bt - 1) / bt;
    json_put(plan, "largest_request_blocks", json_integer(need));
    if (need <= dev) {
        json_put_bool(plan, "fits_device", true);
        return true;
    }
    long long room = dev * bt - max_tokens;
    char why[400];
    if (room > 0)
        snprintf(why, sizeof why,
                 "prompt %s (%zu tokens) with max_tokens %lld needs %lld KV blocks of %lld tokens, "
                 "but the device tier holds %lld: no request over %lld prompt tokens can run or "
                 "be cached; --long-range MIN:%lld (or a larger device tier)",
                 worst->id, worst->est_tokens, max_tokens, need, bt, dev, room, room);
    else
        snprintf(why, sizeof why,
                 "the device tier holds %lld KV blocks of %lld tokens, less than max_tokens %lld "
                 "alone: no request can run",
                 dev, bt, max_tokens);
    json_put_bool(plan, "fits_device", false);
    json_put_bool(plan, "feasible", false);
    json_put_str(plan, "reason", why);
    return false;
}
