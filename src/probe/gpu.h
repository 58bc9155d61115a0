/*
 * gpu.h - GPU utilisation, memory, power, SM clock and temperature, through NVML loaded at run
 * time with dlopen("libnvidia-ml.so.1") (no build-time CUDA dependency), else `nvidia-smi
 * --query-gpu=... --format=csv` when it is on PATH, else unavailable (with the reason).
 * KVBENCH_GPU_SOURCE=nvidia-smi skips NVML; KVBENCH_GPU_SOURCE=none turns GPU sampling off.
 */
#ifndef KVBENCH_PROBE_GPU_H
#define KVBENCH_PROBE_GPU_H

#include <stdbool.h>
#include <stddef.h>

struct gpu_row {
    int index;
    char name[96];
    double util_pct, mem_util_pct; /* NaN when not supported */
    double mem_used_mib, mem_total_mib;
    double power_w, sm_clock_mhz, temp_c;
};

struct gpu_probe;

/* Open the best available source. Never NULL unless out of memory; check gpu_source(). */
struct gpu_probe *gpu_open(void);
/* "nvml", "nvidia-smi", or "unavailable". */
const char *gpu_source(const struct gpu_probe *g);
/* Why the better sources were not used (empty when NVML works). */
const char *gpu_reason(const struct gpu_probe *g);
/* Sample every GPU into rows (up to max). Returns the count, or -1 on a failed sample (the
 * reason in gpu_reason). */
int gpu_sample(struct gpu_probe *g, struct gpu_row *rows, size_t max);
void gpu_close(struct gpu_probe *g);
/* Parse nvidia-smi CSV (noheader, nounits) for the fields we query. Returns rows parsed. */
int gpu_parse_smi_csv(const char *text, struct gpu_row *rows, size_t max);

#endif
