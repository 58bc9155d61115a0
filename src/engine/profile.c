/*
 * profile.c - the built-in profiles. Where each number comes from is in docs/ENGINE.md; every
 * one can be overridden on the `kvbench serve` command line.
 */
#include "engine/profile.h"

#include <string.h>

static const struct model_profile MODELS[] = {
    /* 32 layers × 8 KV heads × 128 dims × 2 (K and V) × 1 byte (FP8) = 64 KiB per token */
    {"llama-3.1-8b-fp8", "nvidia/Llama-3.1-8B-Instruct-FP8", 8.03e9, 8.03e9, 32 * 8 * 128 * 2,
     131072},
    /* 80 layers × 8 KV heads × 128 dims × 2 × 1 byte = 160 KiB per token */
    {"llama-3.3-70b-fp8", "nvidia/Llama-3.3-70B-Instruct-FP8", 70.6e9, 70.6e9, 80 * 8 * 128 * 2,
     131072},
    /* a toy model for tests: 1 KiB per token, tiny weights */
    {"tiny", "kvbench/tiny", 1.0e8, 1.0e8, 1024, 131072},
};

static const struct hw_profile HWS[] = {
    /* DGX Spark (GB10): 273 GB/s LPDDR5x unified memory, ~62% reached in decode; prefill
     * calibrated to ~8k tokens/s for Llama-3.1-8B FP8; host and device share memory. */
    {"gb10", 128e12, 170e9, 100e9, 0.002},
    /* H100 SXM: 3.35 TB/s HBM3 (~78% reached); ~400 TFLOP/s effective FP8 prefill; PCIe Gen5
     * x16 host link ~50 GB/s. */
    {"h100", 400e12, 2.6e12, 50e9, 0.002},
};

const struct model_profile *profile_model(const char *name)
{
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++)
        if (strcmp(MODELS[i].name, name) == 0)
            return &MODELS[i];
    return NULL;
}

const struct hw_profile *profile_hw(const char *name)
{
    for (size_t i = 0; i < sizeof HWS / sizeof HWS[0]; i++)
        if (strcmp(HWS[i].name, name) == 0)
            return &HWS[i];
    return NULL;
}

const char *profile_model_names(void)
{
    return "llama-3.1-8b-fp8, llama-3.3-70b-fp8, tiny";
}

const char *profile_hw_names(void)
{
    return "gb10, h100";
}
