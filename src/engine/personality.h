/*
 * personality.h - how the embedded engine looks from outside (`kvbench serve --personality`).
 *
 * The facts of each personality (struct personality: /health, errors, /v1/models, usage, the
 * metrics it serves, its /tokenize dialect) are rows of the engine catalogue (model/engines.h),
 * next to the profile the harness reads the same engine by, so that what the engine imitates and
 * what the harness expects are spelled once. The scheduler and the KV block manager are the same
 * under every personality.
 */
#ifndef KVBENCH_ENGINE_PERSONALITY_H
#define KVBENCH_ENGINE_PERSONALITY_H

#include "model/engines.h"

/* The personality named s, or NULL. */
const struct personality *personality_find(const char *s);
/* "dynamo", "vllm", "sglang", "llamacpp", "trtllm", NULL-terminated: the catalogue's names. */
#define PERSONALITY_NAMES (ENGINE_NAMES + 1)

#endif
