/*
 * pressure.h - `--pressure auto` for eviction_replay: set B sized from the tiers' capacities so
 * that set A leaves device and host memory and stays on disk.
 *
 * Capacities come from flags (--tier-blocks, --kv-block-tokens) or from the engine's metrics:
 * kvbench serve's kvbench_tier_capacity_blocks{tier="g1|g2|g3"} on its KVBM endpoint, Dynamo's
 * dynamo_frontend_model_total_kv_blocks and dynamo_frontend_model_kv_cache_block_size on the
 * API's /metrics. A capacity that neither gives stays unknown, and the plan says what it could
 * not decide instead of guessing.
 */
#ifndef KVBENCH_SCENARIO_PRESSURE_H
#define KVBENCH_SCENARIO_PRESSURE_H

#include "scenario/workload.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum { TIER_DEVICE, TIER_HOST, TIER_DISK, TIER_COUNT };

struct tier_caps {
    long long blocks[TIER_COUNT];       /* -1: unknown, 0: the tier is off */
    long long block_tokens;             /* 0: unknown */
    const char *source[TIER_COUNT + 1]; /* where each came from: the flag or metric; NULL */
};

/* Unknown everything, then what the flags give (blocks[i] >= 0, block_tokens > 0). */
void pressure_caps_init(struct tier_caps *caps, const long long flag_blocks[TIER_COUNT],
                        long long flag_block_tokens);
/* Fill what is still unknown from metric snapshots ({name: value} objects; either may be NULL). */
void pressure_caps_from_metrics(struct tier_caps *caps, const json_t *kv_metrics,
                                const json_t *api_metrics);

/* The plan for set A (n_a prompts): pressure_plan in config.json. *n_b is the set B size to send
 * (0 when the capacities do not tell: the caller keeps --eviction-b-requests). The plan's
 * `feasible` is false, with `reason`, when the tiers make the read-back impossible (no disk tier,
 * or the disk cannot hold A and the pressure that pushes A out of the faster tiers), null when
 * the disk's capacity is unknown. New reference. */
json_t *pressure_plan(const struct tier_caps *caps, const struct prompt *a, size_t n_a,
                      size_t *n_b);

/* Can every request of the plan be cached at all? A prompt whose blocks plus max_tokens' do not
 * fit the device tier is refused by the engine (or never cached). Checks sets a and b against
 * caps (no-op when the device tier or block size is unknown); when one does not fit, the plan
 * becomes {feasible: false, fits_device: false, reason naming the capacity and the largest prompt
 * that fits}. Returns false then. */
bool pressure_fit(json_t *plan, const struct tier_caps *caps, const struct prompt *a, size_t n_a,
                  const struct prompt *b, size_t n_b, long long max_tokens);

#endif
