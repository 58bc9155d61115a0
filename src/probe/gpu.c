/*
 * gpu.c - NVML through dlopen, nvidia-smi as the fallback.
 *
 * Only the handful of NVML entry points we call are declared here, with the C types of NVML's
 * public ABI (nvmlReturn_t is an int enum, nvmlDevice_t an opaque pointer), so kvbench builds
 * without CUDA and runs on machines without a GPU. A field NVML does not support on a device
 * (memory on a unified-memory GB10, for one) is recorded as empty, not as a failure.
 */
#include "probe/gpu.h"

#include "util/proc.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvml_ret;
typedef void *nvml_dev;
struct nvml_util {
    unsigned gpu, memory;
};
struct nvml_mem {
    unsigned long long total, free, used;
};
/* nvmlMemory_v2_t: "used" excludes the driver's reserved memory, as nvidia-smi reports it. */
struct nvml_mem_v2 {
    unsigned version;
    unsigned long long total, reserved, free, used;
};
#define NVML_MEMORY_V2_VERSION ((unsigned)(sizeof(struct nvml_mem_v2) | (2u << 24)))

struct gpu_probe {
    enum { SRC_NONE, SRC_NVML, SRC_SMI } src;
    char reason[256];
    void *lib;
    nvml_ret (*init)(void);
    nvml_ret (*shutdown)(void);
    nvml_ret (*count)(unsigned *);
    nvml_ret (*handle)(unsigned, nvml_dev *);
    nvml_ret (*name)(nvml_dev, char *, unsigned);
    nvml_ret (*util)(nvml_dev, struct nvml_util *);
    nvml_ret (*mem)(nvml_dev, struct nvml_mem *);
    nvml_ret (*mem_v2)(nvml_dev, struct nvml_mem_v2 *); /* optional (newer drivers) */
    nvml_ret (*power)(nvml_dev, unsigned *);
    nvml_ret (*clock)(nvml_dev, int, unsigned *);
    nvml_ret (*temp)(nvml_dev, int, unsigned *);
};

#define NVML_CLOCK_SM        1
#define NVML_TEMPERATURE_GPU 0

static bool smi_on_path(void)
{
    const char *path = getenv("PATH");
    if (!path)
        return false;
    char dir[4096];
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(dir, sizeof dir, "%.*s/nvidia-smi", (int)n, p);
        FILE *f = fopen(dir, "r");
        if (f) {
            fclose(f);
            return true;
        }
        p += n;
        if (*p == ':')
            p++;
    }
    return false;
}

static int load_nvml(struct gpu_probe *g)
{
    g->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!g->lib) {
        snprintf(g->reason, sizeof g->reason, "NVML: %s", dlerror());
        return -1;
    }
#define SYM(field, name)                                                                           \
    do {                                                                                           \
        *(void **)(&g->field) = dlsym(g->lib, name);                                               \
        if (!g->field) {                                                                           \
            snprintf(g->reason, sizeof g->reason, "NVML lacks %s", name);                          \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)
    SYM(init, "nvmlInit_v2");
    SYM(shutdown, "nvmlShutdown");
    SYM(count, "nvmlDeviceGetCount_v2");
    SYM(handle, "nvmlDeviceGetHandleByIndex_v2");
    SYM(name, "nvmlDeviceGetName");
    SYM(util, "nvmlDeviceGetUtilizationRates");
    SYM(mem, "nvmlDeviceGetMemoryInfo");
    SYM(power, "nvmlDeviceGetPowerUsage");
    SYM(clock, "nvmlDeviceGetClockInfo");
    SYM(temp, "nvmlDeviceGetTemperature");
#undef SYM
    *(void **)(&g->mem_v2) = dlsym(g->lib, "nvmlDeviceGetMemoryInfo_v2");
    nvml_ret rc = g->init();
    if (rc != 0) {
        snprintf(g->reason, sizeof g->reason, "nvmlInit failed (NVML error %d)", rc);
        return -1;
    }
    return 0;
}

struct gpu_probe *gpu_open(void)
{
    struct gpu_probe *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    /* KVBENCH_GPU_SOURCE=nvidia-smi skips NVML (to exercise the fallback); =none disables. */
    const char *force = getenv("KVBENCH_GPU_SOURCE");
    if (force && strcmp(force, "none") == 0) {
        snprintf(g->reason, sizeof g->reason, "disabled by KVBENCH_GPU_SOURCE=none");
        return g;
    }
    bool smi_only = force && strcmp(force, "nvidia-smi") == 0;
    if (smi_only)
        snprintf(g->reason, sizeof g->reason, "NVML skipped (KVBENCH_GPU_SOURCE=nvidia-smi)");
    if (!smi_only && load_nvml(g) == 0) {
        g->src = SRC_NVML;
        return g;
    }
    if (g->lib) {
        dlclose(g->lib);
        g->lib = NULL;
    }
    if (smi_on_path()) {
        g->src = SRC_SMI;
        return g;
    }
    size_t n = strlen(g->reason);
    snprintf(g->reason + n, sizeof g->reason - n, "; nvidia-smi is not on PATH");
    g->src = SRC_NONE;
    return g;
}

const char *gpu_source(const struct gpu_probe *g)
{
    return g->src == SRC_NVML ? "nvml" : g->src == SRC_SMI ? "nvidia-smi" : "unavailable";
}

const char *gpu_reason(const struct gpu_probe *g)
{
    return g->reason;
}

static double field(const char *s)
{
    while (*s == ' ')
        s++;
    char *end;
    double v = strtod(s, &end);
    return end == s ? NAN : v; /* "[N/A]", "[Not Supported]" */
}

int gpu_parse_smi_csv(const char *text, struct gpu_row *rows, size_t max)
{
    size_t n = 0;
    const char *line = text;
    while (line && *line && n < max) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[512];
        if (len >= sizeof buf)
            len = sizeof buf - 1;
        memcpy(buf, line, len);
        buf[len] = '\0';
        /* index, name, utilization.gpu, utilization.memory, memory.used, memory.total,
         * power.draw, clocks.sm, temperature.gpu */
        char *f[9];
        int k = 0;
        char *save = NULL;
        for (char *tok = strtok_r(buf, ",", &save); tok && k < 9; tok = strtok_r(NULL, ",", &save))
            f[k++] = tok;
        if (k == 9) {
            struct gpu_row *r = &rows[n++];
            r->index = atoi(f[0]);
            const char *nm = f[1];
            while (*nm == ' ')
                nm++;
            snprintf(r->name, sizeof r->name, "%s", nm);
            r->util_pct = field(f[2]);
            r->mem_util_pct = field(f[3]);
            r->mem_used_mib = field(f[4]);
            r->mem_total_mib = field(f[5]);
            r->power_w = field(f[6]);
            r->sm_clock_mhz = field(f[7]);
            r->temp_c = field(f[8]);
        }
        line = end ? end + 1 : NULL;
    }
    return (int)n;
}

static int sample_smi(struct gpu_probe *g, struct gpu_row *rows, size_t max)
{
    char *argv[] = {"nvidia-smi",
                    "--query-gpu=index,name,utilization.gpu,utilization.memory,memory.used,"
                    "memory.total,power.draw,clocks.sm,temperature.gpu",
                    "--format=csv,noheader,nounits", NULL};
    struct proc_result res;
    char err[512];
    if (proc_run(argv, NULL, 10, 1 << 16, 0, &res, err) < 0) {
        snprintf(g->reason, sizeof g->reason, "%.250s", err);
        return -1;
    }
    int n = -1;
    if (res.exited && res.exit_code == 0)
        n = gpu_parse_smi_csv(buf_cstr(&res.out), rows, max);
    else
        snprintf(g->reason, sizeof g->reason, "nvidia-smi failed: %.200s",
                 buf_cstr(res.err_out.len ? &res.err_out : &res.out));
    proc_result_free(&res);
    return n;
}

static int sample_nvml(struct gpu_probe *g, struct gpu_row *rows, size_t max)
{
    unsigned count = 0;
    nvml_ret rc = g->count(&count);
    if (rc != 0) {
        snprintf(g->reason, sizeof g->reason, "nvmlDeviceGetCount failed (NVML error %d)", rc);
        return -1;
    }
    size_t n = 0;
    for (unsigned i = 0; i < count && n < max; i++) {
        nvml_dev d;
        if (g->handle(i, &d) != 0)
            continue;
        struct gpu_row *r = &rows[n++];
        memset(r, 0, sizeof *r);
        r->index = (int)i;
        if (g->name(d, r->name, sizeof r->name) != 0)
            snprintf(r->name, sizeof r->name, "GPU %u", i);
        struct nvml_util u;
        if (g->util(d, &u) == 0) {
            r->util_pct = u.gpu;
            r->mem_util_pct = u.memory;
        } else {
            r->util_pct = r->mem_util_pct = NAN;
        }
        struct nvml_mem_v2 m2 = {.version = NVML_MEMORY_V2_VERSION};
        struct nvml_mem m;
        if (g->mem_v2 && g->mem_v2(d, &m2) == 0) {
            r->mem_used_mib = (double)m2.used / 1048576.0;
            r->mem_total_mib = (double)m2.total / 1048576.0;
        } else if (g->mem(d, &m) == 0) {
            r->mem_used_mib = (double)m.used / 1048576.0;
            r->mem_total_mib = (double)m.total / 1048576.0;
        } else {
            r->mem_used_mib = r->mem_total_mib = NAN;
        }
        unsigned v;
        r->power_w = g->power(d, &v) == 0 ? v / 1000.0 : NAN;
        r->sm_clock_mhz = g->clock(d, NVML_CLOCK_SM, &v) == 0 ? v : NAN;
        r->temp_c = g->temp(d, NVML_TEMPERATURE_GPU, &v) == 0 ? v : NAN;
    }
    return (int)n;
}

int gpu_sample(struct gpu_probe *g, struct gpu_row *rows, size_t max)
{
    if (g->src == SRC_NVML)
        return sample_nvml(g, rows, max);
    if (g->src == SRC_SMI)
        return sample_smi(g, rows, max);
    return -1;
}

void gpu_close(struct gpu_probe *g)
{
    if (!g)
        return;
    if (g->src == SRC_NVML && g->shutdown)
        g->shutdown();
    if (g->lib)
        dlclose(g->lib);
    free(g);
}
