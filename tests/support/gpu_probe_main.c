/*
 * kvbench-gpu-probe - prints what kvbench's GPU collector sees: the source it chose (NVML,
 * nvidia-smi, or unavailable with the reason) and one sample per GPU. Used to check the NVML and
 * nvidia-smi paths on a machine with a GPU; on a machine without one it must say unavailable.
 * Built only from src/probe/gpu.c and util/, so it compiles with nothing but gcc and libdl.
 */
#include "probe/gpu.h"

#include <math.h>
#include <stdio.h>

int main(void)
{
    struct gpu_probe *g = gpu_open();
    if (!g)
        return 2;
    printf("source: %s\n", gpu_source(g));
    if (*gpu_reason(g))
        printf("reason: %s\n", gpu_reason(g));
    struct gpu_row rows[16];
    int n = gpu_sample(g, rows, 16);
    if (n < 0) {
        printf("sample: failed (%s)\n", gpu_reason(g));
    } else {
        for (int i = 0; i < n; i++) {
            struct gpu_row *r = &rows[i];
            printf("gpu %d: %s | util %.0f%% | mem util %.0f%% | mem %.0f / %.0f MiB | power "
                   "%.1f W | sm %.0f MHz | temp %.0f C\n",
                   r->index, r->name, r->util_pct, r->mem_util_pct, r->mem_used_mib,
                   r->mem_total_mib, r->power_w, r->sm_clock_mhz, r->temp_c);
        }
    }
    gpu_close(g);
    return 0;
}
