/*
 * profile.h - model and hardware profiles: the constants behind the engine's modelled GPU time.
 *
 * Time model (docs/ENGINE.md gives the derivation and sources):
 *   prefill  = uncached_tokens × 2 × params / effective_flops
 *   decode   = step_overhead + weight_bytes / mem_bw + context_tokens × kv_bytes_per_token / mem_bw
 *              (one step produces one token for every running sequence)
 *   onboard  = bytes / h2d_bw for G2→G1; G3→G1 is the real, measured read time
 * All modelled time is divided by --speedup (0 = no modelled time at all).
 */
#ifndef KVBENCH_ENGINE_PROFILE_H
#define KVBENCH_ENGINE_PROFILE_H

#include <stddef.h>

struct model_profile {
    const char *name;
    const char *served_name; /* default --model-id */
    double params;           /* parameters */
    double weight_bytes;     /* bytes read per decode step */
    size_t kv_bytes_per_token;
    size_t max_context;
};

struct hw_profile {
    const char *name;
    double eff_flops;       /* effective prefill FLOP/s */
    double mem_bw;          /* effective memory bandwidth, bytes/s */
    double h2d_bw;          /* host→device copy bandwidth, bytes/s */
    double step_overhead_s; /* fixed cost of one decode step */
};

const struct model_profile *profile_model(const char *name);
const struct hw_profile *profile_hw(const char *name);
/* Comma-separated names, for help and error messages. */
const char *profile_model_names(void);
const char *profile_hw_names(void);

#endif
