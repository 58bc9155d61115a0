/*
 * serve.c - `kvbench serve`: run the embedded engine until SIGINT, SIGTERM or SIGHUP (all three
 * a clean shutdown: drain, remove the block files and the directory's lock).
 *
 * Flag names follow SPEC §8 and the issue; tier sizes come in blocks or GB (GB = 2^30 bytes),
 * with KVBM's environment variables (DYN_KVBM_*) and BENCH_KV_MODE as defaults, so the same
 * environment that configures a Dynamo worker configures this engine.
 *
 * Before anything is bound or written it checks what would only fail later: a host tier larger
 * than the memory this process may use, a disk tier larger than its filesystem's free space (one
 * warning line each, or exit 2 with --strict), a --ready-file that cannot be written (exit 1:
 * a caller waiting for that file would otherwise wait on an engine that serves without it), and
 * with --g1 cuda the CUDA runtime, the device and its free memory for G1 (exit 2, one line naming
 * what is missing).
 */
#include "cmd/cmd.h"
#include "engine/engine.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const char *const PROFILES[] = {"llama-3.1-8b-fp8", "llama-3.3-70b-fp8", "tiny", NULL};
static const char *const HARDWARE[] = {"gb10", "h100", NULL};
/* "auto", then CHAT_TEMPLATE_NAMES' names */
static const char *const CHAT_TEMPLATES[] = {"auto", "llama3", "llama31", "chatml", "plain", NULL};

struct serve_opts {
    const char *host, *metrics_port, *ready_file, *model_id, *endpoint, *profile, *hardware;
    const char *personality;
    long long port;
    double kv_bytes_per_token, params_b, weights_gb, prefill_tflops, mem_bw_gbps, h2d_gbps,
        disk_read_gbps, step_overhead_ms;
    long long max_context;
    double speedup;
    long long block_size, max_num_seqs, max_num_tokens, max_tokens_limit, max_body_bytes,
        max_connections, http_threads;
    double request_read_timeout_s, idle_timeout_s;
    int kv_mode; /* enum kv_mode */
    int g1;      /* enum kvbm_g1 */
    long long cuda_device;
    long long gpu_blocks, cpu_blocks, disk_blocks;
    double gpu_gb, cpu_gb, disk_gb;
    const char *disk_dir;
    bool no_filter, keep_cache, strict;
    double fail_rate, disconnect_rate, stall_ms, stall_rate, startup_delay_s, drain_timeout_s;
    const char *tokenizer, *chat_template;
    long long drop_model_after, seed;
    int log_level; /* enum log_level */
    struct opt_list omit;
};

/* What --omit-response-field may leave out (docs/ENGINES.md). */
static const char *const OMITTABLE[] = {"timings.cache_n", "usage.prompt_tokens_details", "/props",
                                        NULL};

#define DBL_BIG 1e15

static const char USAGE[] = "kvbench serve [options]";
static const char DESCRIPTION[] =
    "The embedded engine: an OpenAI-compatible server (/v1/completions, /v1/chat/completions,\n"
    "/v1/models, /health, /metrics) with a continuous-batching scheduler and a tiered KV block\n"
    "manager: G1 device\n"
    "memory (modelled, or real with --g1 cuda), G2 host memory (real), G3 disk (real files,\n"
    "O_DIRECT where possible).\n"
    "KV metrics with KVBM's names are served on --metrics-port. --personality makes the outside\n"
    "look like vLLM, SGLang, llama.cpp or TensorRT-LLM instead (docs/ENGINES.md): their /health,\n"
    "/v1/models, metric names on the API port's /metrics, usage placement and error bodies.\n"
    "Runs until SIGINT/SIGTERM/SIGHUP, then\n"
    "drains in-flight requests and removes its cache files (unless --keep-cache).\n"
    "Tier sizes: *-blocks wins over *-gb; GB = 2^30 bytes. A host tier larger than the memory\n"
    "available or a disk tier larger than the free disk space is a warning (--strict: exit 2).";

#define GIB 1073741824.0

/* A kB field of /proc/meminfo ("MemAvailable:"), in bytes; -1 when absent. */
static double meminfo_bytes(const char *field)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f)
        return -1;
    char line[256];
    double v = -1;
    size_t n = strlen(field);
    while (v < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            v = strtod(line + n, NULL) * 1024.0;
    fclose(f);
    return v;
}

/* A number in a cgroup v2 file of this process's cgroup; -1 when absent or "max". */
static double cgroup_value(const char *file)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return -1;
    char line[PATH_MAX], path[PATH_MAX + 64] = "";
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "0::", 3) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/%s", line + 3, file);
        }
    fclose(f);
    if (!path[0] || !(f = fopen(path, "re")))
        return -1;
    char v[64] = "";
    char *ok = fgets(v, sizeof v, f);
    fclose(f);
    char *end;
    double d = ok ? strtod(v, &end) : -1;
    return ok && end != v ? d : -1;
}

/* One tier that may not fit: a warning line, or with strict an error and exit 2. Returns 0 or
 * EXIT_USAGE. */
static int tier_too_big(bool strict, const char *what)
{
    if (strict) {
        fprintf(stderr, "kvbench serve: --strict: %s\n", what);
        return EXIT_USAGE;
    }
    log_warn("%s (--strict refuses to start)", what);
    return 0;
}

/* Tier sizes against the machine: G2 against the memory this process may use (MemAvailable, or
 * its cgroup's headroom when smaller), G3 against the free space of the cache directory's
 * filesystem (its nearest existing ancestor when it is not made yet). */
static int check_tier_sizes(const struct kvbm_config *kv, bool strict)
{
    double block = ceil((double)kv->block_bytes / 4096.0) * 4096.0; /* as allocated */
    char what[512];
    if (kv->mode >= KV_MODE_CPU_ONLY && kv->g2_blocks > 0) {
        double need = (double)kv->g2_blocks * block;
        double avail = meminfo_bytes("MemAvailable:"), total = meminfo_bytes("MemTotal:");
        double cg_max = cgroup_value("memory.max"), cg_cur = cgroup_value("memory.current");
        bool cg = cg_max >= 0 && cg_cur >= 0 && (avail < 0 || cg_max - cg_cur < avail);
        if (cg)
            avail = cg_max > cg_cur ? cg_max - cg_cur : 0;
        if (avail >= 0 && need > avail) {
            snprintf(what, sizeof what,
                     "the host tier (G2: %zu blocks, %.1f GiB) is larger than the memory "
                     "available to this engine (%.1f GiB %s, of %.1f GiB total); lower "
                     "--cpu-cache-gb or --cpu-cache-blocks",
                     kv->g2_blocks, need / GIB, avail / GIB,
                     cg ? "under its cgroup's memory.max" : "MemAvailable", total / GIB);
            if (tier_too_big(strict, what))
                return EXIT_USAGE;
        }
    }
    if (kv->mode == KV_MODE_CPU_DISK && kv->g3_blocks > 0 && kv->disk_dir && *kv->disk_dir) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", kv->disk_dir);
        struct statvfs vfs;
        while (statvfs(dir, &vfs) < 0) {
            char *slash = strrchr(dir, '/');
            if (errno != ENOENT || !slash)
                return 0; /* cannot tell: the disk tier's own start says what is wrong */
            if (slash == dir)
                slash[1] = '\0';
            else
                *slash = '\0';
        }
        double need = (double)kv->g3_blocks * block;
        double avail = (double)vfs.f_bavail * (double)vfs.f_frsize;
        if (need > avail) {
            snprintf(what, sizeof what,
                     "the disk tier (G3: %zu blocks, %.1f GiB) is larger than the free space "
                     "under %s (%.1f GiB free of %.1f GiB); lower --disk-cache-gb or "
                     "--disk-cache-blocks",
                     kv->g3_blocks, need / GIB, kv->disk_dir, avail / GIB,
                     (double)vfs.f_blocks * (double)vfs.f_frsize / GIB);
            if (tier_too_big(strict, what))
                return EXIT_USAGE;
        }
    }
    return 0;
}

/* Whether the ready file can be written: a probe file made and removed next to it (the ready file
 * itself is written atomically through a temporary file in the same directory). */
static int ready_file_check(const char *path, char *err)
{
    if (fs_is_dir(path))
        return err_set(err, "cannot write --ready-file %s: it is a directory", path);
    char probe[PATH_MAX];
    int n = snprintf(probe, sizeof probe, "%s.probe-%ld", path, (long)getpid());
    if (n < 0 || n >= (int)sizeof probe)
        return err_set(err, "cannot write --ready-file %s: path too long", path);
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return err_set(err, "cannot write --ready-file %s: %s", path, strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

#define SO struct serve_opts

/* The flags of `kvbench serve`, one row each, values in struct serve_opts. */
static const struct opt SERVE_ROWS[] = {
    {.name = "host",
     OPT_AT_STR(SO, host),
     .def = "127.0.0.1",
     .metavar = "ADDR",
     .help = "IPv4 address to listen on"},
    {.name = "port",
     OPT_AT_INT(SO, port),
     .def = "8000",
     .min = 0,
     .max = 65535,
     .help = "API port (0: any free port)"},
    {.name = "metrics-port",
     OPT_AT_STR(SO, metrics_port),
     .def = "6880",
     .metavar = "PORT",
     .help = "KV metrics port; 0 disables, 'auto' picks a free port"},
    {.name = "ready-file",
     OPT_AT_STR(SO, ready_file),
     .metavar = "PATH",
     .help = "once serving, write {pid, port, metrics_port, base_url} here as JSON"},
    {.name = "model-id",
     OPT_AT_STR(SO, model_id),
     .metavar = "ID",
     .help = "served model name (default: the profile's, e.g. "
             "nvidia/Llama-3.1-8B-Instruct-FP8)"},
    {.name = "endpoint",
     OPT_AT_STR(SO, endpoint),
     .def = "dyn://dynamo.tensorrt_llm.generate",
     .metavar = "URI",
     .help = "endpoint advertised by /health"},
    {.name = "personality",
     OPT_AT_CHOICE(SO, personality),
     .def = "dynamo",
     .choices = PERSONALITY_NAMES, /* the catalogue's own list */
     .help = "which engine's outside to show (docs/ENGINES.md)"},
    {.name = "profile",
     OPT_AT_CHOICE(SO, profile),
     .def = "llama-3.1-8b-fp8",
     .choices = PROFILES,
     .help = "model profile (KV bytes per token, weights)"},
    {.name = "hardware",
     OPT_AT_CHOICE(SO, hardware),
     .def = "gb10",
     .choices = HARDWARE,
     .help = "hardware model for modelled GPU time"},
    {.name = "kv-bytes-per-token",
     OPT_AT_FLOAT(SO, kv_bytes_per_token),
     .min = 64,
     .max = DBL_BIG,
     .metavar = "BYTES",
     .help = "override the profile's KV bytes"},
    {.name = "params-b",
     OPT_AT_FLOAT(SO, params_b),
     .min = 1e-6,
     .max = 1e6,
     .metavar = "BILLIONS",
     .help = "override parameters (prefill cost)"},
    {.name = "weights-gb",
     OPT_AT_FLOAT(SO, weights_gb),
     .min = 1e-6,
     .max = 1e6,
     .metavar = "GB",
     .help = "override bytes read per decode step (1e9 bytes)"},
    {.name = "prefill-tflops",
     OPT_AT_FLOAT(SO, prefill_tflops),
     .min = 1e-6,
     .max = 1e6,
     .metavar = "TFLOPS",
     .help = "override effective prefill compute"},
    {.name = "mem-bw-gbps",
     OPT_AT_FLOAT(SO, mem_bw_gbps),
     .min = 1e-3,
     .max = 1e6,
     .metavar = "GB/S",
     .help = "override effective device memory bandwidth"},
    {.name = "h2d-gbps",
     OPT_AT_FLOAT(SO, h2d_gbps),
     .min = 1e-3,
     .max = 1e6,
     .metavar = "GB/S",
     .help = "override host-to-device (G2->G1) bandwidth"},
    {.name = "disk-read-gbps",
     OPT_AT_FLOAT(SO, disk_read_gbps),
     .min = 1e-6,
     .max = 1e6,
     .metavar = "GB/S",
     .help = "fault: a slow disk, G3 reads modelled at this bandwidth (bytes / X added to the "
             "step; the real read still runs within it) (default: real reads only)"},
    {.name = "step-overhead-ms",
     OPT_AT_FLOAT(SO, step_overhead_ms),
     .min = 0,
     .max = 1e6,
     .metavar = "MS",
     .help = "override fixed cost per decode step"},
    {.name = "max-context",
     OPT_AT_INT(SO, max_context),
     .min = 1,
     .max = 1 << 30,
     .help = "override the model's context length"},
    {.name = "speedup",
     OPT_AT_FLOAT(SO, speedup),
     .def = "1",
     .min = 0,
     .max = 1e9,
     .help = "divide all modelled time by this (0: no modelled time)"},
    {.name = "block-size",
     OPT_AT_INT(SO, block_size),
     .def = "32",
     .min = 1,
     .max = 4096,
     .help = "tokens per KV block"},
    {.name = "max-num-seqs",
     OPT_AT_INT(SO, max_num_seqs),
     .def = "64",
     .min = 1,
     .max = 65536,
     .help = "sequences batched at once"},
    {.name = "max-num-tokens",
     OPT_AT_INT(SO, max_num_tokens),
     .def = "8192",
     .min = 1,
     .max = 1 << 30,
     .help = "longest accepted prompt (TensorRT-LLM's name)"},
    {.name = "max-tokens-limit",
     OPT_AT_INT(SO, max_tokens_limit),
     .def = "32768",
     .min = 1,
     .max = 1 << 30,
     .help = "largest accepted max_tokens"},
    {.name = "max-body-bytes",
     OPT_AT_INT(SO, max_body_bytes),
     .def = "16777216",
     .min = 1024,
     .max = 1ll << 32,
     .help = "request body limit (413 above it)"},
    {.name = "max-connections",
     OPT_AT_INT(SO, max_connections),
     .def = "1024",
     .min = 1,
     .max = 65536,
     .help = "concurrent HTTP connections"},
    {.name = "request-read-timeout-s",
     OPT_AT_DURATION(SO, request_read_timeout_s),
     .def = "10",
     .min = 1,
     .max = 3600,
     .help = "a connection must deliver its request line and headers within this, in "
             "total, however slowly it sends (slow-header floods)"},
    {.name = "idle-timeout-s",
     OPT_AT_DURATION(SO, idle_timeout_s),
     .def = "15",
     .min = 1,
     .max = 86400,
     .help = "a kept-alive connection idle this long is closed, as is one whose request moves "
             "no byte this long (a stalled upload; a stream whose client stopped reading: its "
             "request is cancelled and its KV blocks freed)"},
    {.name = "http-threads",
     OPT_AT_INT(SO, http_threads),
     .def = "2",
     .min = 1,
     .max = 64,
     .help = "HTTP event-loop threads"},
    {.name = "kv-mode",
     OPT_AT_ENUM(SO, kv_mode, KV_MODE_NAMES),
     .def = "cpu_disk",
     .env = "BENCH_KV_MODE",
     .help = "KV tiers in use"},
    {.name = "g1",
     OPT_AT_ENUM(SO, g1, KVBM_G1_NAMES),
     .def = "model",
     .help = "where G1 (device KV blocks) lives: model (capacity and modelled time only) or cuda "
             "(a CUDA device's memory: G2 pinned, G1<->G2 copies real and timed; the runtime is "
             "loaded at run time, $KVBENCH_CUDART names it)"},
    {.name = "cuda-device",
     OPT_AT_INT(SO, cuda_device),
     .def = "0",
     .min = 0,
     .max = 4096,
     .metavar = "N",
     .help = "with --g1 cuda: the CUDA device G1 lives on"},
    {.name = "gpu-cache-blocks",
     OPT_AT_INT(SO, gpu_blocks),
     .min = 1,
     .max = 1ll << 32,
     .help = "G1 capacity in blocks"},
    {.name = "gpu-cache-gb",
     OPT_AT_FLOAT(SO, gpu_gb),
     .def = "8",
     .min = 1e-9,
     .max = 1e6,
     .help = "G1 capacity"},
    {.name = "cpu-cache-blocks",
     OPT_AT_INT(SO, cpu_blocks),
     .min = 0,
     .max = 1ll << 32,
     .help = "G2 capacity in blocks"},
    {.name = "cpu-cache-gb",
     OPT_AT_FLOAT(SO, cpu_gb),
     .def = "8",
     .min = 0,
     .max = 1e6,
     .env = "DYN_KVBM_CPU_CACHE_GB",
     .help = "G2 capacity (real host memory)"},
    {.name = "disk-cache-blocks",
     OPT_AT_INT(SO, disk_blocks),
     .min = 0,
     .max = 1ll << 32,
     .help = "G3 capacity in blocks"},
    {.name = "disk-cache-gb",
     OPT_AT_FLOAT(SO, disk_gb),
     .def = "32",
     .min = 0,
     .max = 1e6,
     .env = "DYN_KVBM_DISK_CACHE_GB",
     .help = "G3 capacity (real files)"},
    {.name = "disk-cache-dir",
     OPT_AT_STR(SO, disk_dir),
     .def = "/tmp/kvbench-kvbm",
     .env = "DYN_KVBM_DISK_CACHE_DIR",
     .metavar = "DIR",
     .help = "G3 directory"},
    {.name = "disable-disk-offload-filter",
     OPT_AT_BOOL(SO, no_filter),
     .env = "DYN_KVBM_DISABLE_DISK_OFFLOAD_FILTER",
     .help = "offload to disk on first sight, not on a block's second"},
    {.name = "keep-cache", OPT_AT_BOOL(SO, keep_cache), .help = "leave the block files on exit"},
    {.name = "strict",
     OPT_AT_BOOL(SO, strict),
     .help = "refuse to start (exit 2) where a tier is larger than the memory available or "
             "the disk's free space, instead of warning"},
    {.name = "fail-rate",
     OPT_AT_FLOAT(SO, fail_rate),
     .def = "0",
     .min = 0,
     .max = 1,
     .metavar = "P",
     .help = "fault: answer this share of completions with 500"},
    {.name = "disconnect-rate",
     OPT_AT_FLOAT(SO, disconnect_rate),
     .def = "0",
     .min = 0,
     .max = 1,
     .metavar = "P",
     .help = "fault: cut this share of responses mid-way"},
    {.name = "stall-ms",
     OPT_AT_FLOAT(SO, stall_ms),
     .def = "0",
     .min = 0,
     .max = 86400000,
     .metavar = "MS",
     .help = "fault: hold responses this long before "
             "their first token"},
    {.name = "stall-rate",
     OPT_AT_FLOAT(SO, stall_rate),
     .def = "1",
     .min = 0,
     .max = 1,
     .metavar = "P",
     .help = "share of requests --stall-ms applies to"},
    {.name = "omit-response-field",
     OPT_AT_LIST(SO, omit),
     .metavar = "FIELD",
     .help = "leave out what some builds of an engine do not send: timings.cache_n "
             "(llama.cpp before it sent it), usage.prompt_tokens_details, /props (the "
             "llamacpp personality's endpoint, absent from old llama.cpp builds)"},
    {.name = "drop-model-after",
     OPT_AT_INT(SO, drop_model_after),
     .def = "-1",
     .min = -1,
     .max = 1ll << 40,
     .help = "fault: after N completions the model unregisters (-1: never)"},
    {.name = "startup-delay-s",
     OPT_AT_DURATION(SO, startup_delay_s),
     .def = "0",
     .help = "report not_ready this long after start (a slow worker)"},
    {.name = "drain-timeout-s",
     OPT_AT_DURATION(SO, drain_timeout_s),
     .def = "30",
     .help = "on SIGINT/SIGTERM/SIGHUP, wait this long for in-flight requests"},
    {.name = "tokenizer",
     OPT_AT_STR(SO, tokenizer),
     .def = "auto",
     .metavar = "SPEC",
     .help = "prompt tokens: heuristic, auto ($BENCH_TOKENIZER, $MODEL_HANDLE, Hugging Face "
             "cache for --model-id), or a tokenizer.json / its directory"},
    {.name = "chat-template",
     OPT_AT_CHOICE(SO, chat_template),
     .def = "auto",
     .choices = CHAT_TEMPLATES,
     .help = "how /v1/chat/completions renders messages before tokenizing: auto (the "
             "tokenizer_config.json beside the tokenizer, else the model id / profile: Llama 3 "
             "-> llama3, tiny -> plain), llama3, chatml or plain"},
    {.name = "seed",
     OPT_AT_INT(SO, seed),
     .def = "0",
     .min = 0,
     .max = 9007199254740991.0,
     .help = "seed for output text and faults"},
    CMD_OPT_LOG_LEVEL(OPT_AT(SO, log_level, int), "INFO", "log verbosity"),
    {0},
};

/* The model and hardware: the profiles', then each figure given on the command line. */
static void model_config(const struct serve_opts *o, const struct opt *opts,
                         struct engine_config *cfg)
{
    cfg->model = *profile_model(o->profile);
    cfg->hw = *profile_hw(o->hardware);
    if (opts_given(opts, &o->kv_bytes_per_token))
        cfg->model.kv_bytes_per_token = (size_t)o->kv_bytes_per_token;
    if (opts_given(opts, &o->params_b))
        cfg->model.params = o->params_b * 1e9;
    if (opts_given(opts, &o->weights_gb))
        cfg->model.weight_bytes = o->weights_gb * 1e9;
    if (opts_given(opts, &o->max_context))
        cfg->model.max_context = (size_t)o->max_context;
    if (opts_given(opts, &o->prefill_tflops))
        cfg->hw.eff_flops = o->prefill_tflops * 1e12;
    if (opts_given(opts, &o->mem_bw_gbps))
        cfg->hw.mem_bw = o->mem_bw_gbps * 1e9;
    if (opts_given(opts, &o->h2d_gbps))
        cfg->hw.h2d_bw = o->h2d_gbps * 1e9;
    if (opts_given(opts, &o->disk_read_gbps))
        cfg->disk_read_bw = o->disk_read_gbps * 1e9;
    if (opts_given(opts, &o->step_overhead_ms))
        cfg->hw.step_overhead_s = o->step_overhead_ms / 1e3;
}

/* The outside: address, ports, personality and what it leaves out, limits, faults. Returns -1
 * to go on, or the exit code after printing the error. */
static int front_config(const struct serve_opts *o, struct engine_config *cfg)
{
    cfg->host = o->host;
    cfg->port = (int)o->port;
    cfg->personality = personality_find(o->personality);
    for (size_t i = 0; i < o->omit.n; i++) {
        size_t k = 0;
        while (OMITTABLE[k] && strcmp(OMITTABLE[k], o->omit.items[i]) != 0)
            k++;
        if (!OMITTABLE[k]) {
            fprintf(stderr,
                    "kvbench serve: --omit-response-field: expected timings.cache_n, "
                    "usage.prompt_tokens_details or /props, got '%s'\n",
                    o->omit.items[i]);
            return EXIT_USAGE;
        }
        if (k == 0)
            cfg->omit_cache_n = true;
        else if (k == 1)
            cfg->omit_usage_details = true;
        else
            cfg->omit_props = true;
    }
    if (strcmp(o->metrics_port, "auto") == 0) {
        cfg->metrics_port = 0;
    } else {
        char *end;
        long mp_val = strtol(o->metrics_port, &end, 10);
        if (*end || end == o->metrics_port || mp_val < 0 || mp_val > 65535) {
            fprintf(stderr,
                    "kvbench serve: --metrics-port: expected a port from 0 to 65535 or 'auto', "
                    "got '%s'\n",
                    o->metrics_port);
            return EXIT_USAGE;
        }
        cfg->metrics_port = mp_val == 0 ? -1 : (int)mp_val;
    }
    if (!cfg->personality->kvbm_port)
        cfg->metrics_port = -1; /* the engine's counters are on the API port's /metrics */
    cfg->model_id = o->model_id ? o->model_id : profile_model(o->profile)->served_name;
    cfg->endpoint = o->endpoint;
    cfg->max_body_bytes = (size_t)o->max_body_bytes;
    cfg->max_num_tokens = (size_t)o->max_num_tokens;
    cfg->max_tokens_limit = (size_t)o->max_tokens_limit;
    cfg->max_connections = (unsigned)o->max_connections;
    cfg->request_read_timeout_s = (unsigned)o->request_read_timeout_s;
    cfg->idle_timeout_s = (unsigned)o->idle_timeout_s;
    cfg->http_threads = (unsigned)o->http_threads;
    cfg->startup_delay_s = o->startup_delay_s;
    cfg->speedup = o->speedup;
    cfg->max_num_seqs = (size_t)o->max_num_seqs;
    cfg->keep_cache = o->keep_cache;
    cfg->fail_rate = o->fail_rate;
    cfg->disconnect_rate = o->disconnect_rate;
    cfg->stall_ms = o->stall_ms;
    cfg->stall_rate = o->stall_rate;
    cfg->drop_model_after = o->drop_model_after;
    cfg->seed = (uint64_t)o->seed;
    return -1;
}

/* The tiers: blocks given win over GB; then the checks against memory and disk. Returns -1 to
 * go on, or the exit code after printing the error. */
static int tiers_config(const struct serve_opts *o, const struct opt *opts,
                        struct engine_config *cfg)
{
    struct kvbm_config *kv = &cfg->kv;
    kv->block_tokens = (size_t)o->block_size;
    kv->block_bytes = kv->block_tokens * cfg->model.kv_bytes_per_token;
    double gib = 1073741824.0;
    kv->g1_blocks = opts_given(opts, &o->gpu_blocks)
                        ? (size_t)o->gpu_blocks
                        : (size_t)floor(o->gpu_gb * gib / (double)kv->block_bytes);
    kv->g2_blocks = opts_given(opts, &o->cpu_blocks)
                        ? (size_t)o->cpu_blocks
                        : (size_t)floor(o->cpu_gb * gib / (double)kv->block_bytes);
    kv->g3_blocks = opts_given(opts, &o->disk_blocks)
                        ? (size_t)o->disk_blocks
                        : (size_t)floor(o->disk_gb * gib / (double)kv->block_bytes);
    kv->mode = (enum kv_mode)o->kv_mode;
    kv->disk_filter = !o->no_filter;
    kv->disk_dir = o->disk_dir;
    if (kv->g1_blocks == 0) {
        fprintf(stderr,
                "kvbench serve: the device cache holds no block of %zu bytes; raise "
                "--gpu-cache-gb or set --gpu-cache-blocks\n",
                kv->block_bytes);
        return EXIT_USAGE;
    }
    kv->g1 = (enum kvbm_g1)o->g1;
    kv->cuda_device = (int)o->cuda_device;
    if (kv->g1 != KVBM_G1_CUDA && opts_given(opts, &o->cuda_device)) {
        fprintf(stderr, "kvbench serve: --cuda-device needs --g1 cuda (the model has no device)\n");
        return EXIT_USAGE;
    }
    int rc = check_tier_sizes(kv, o->strict);
    if (rc)
        return rc;
    char err[ERR_LEN];
    rc = kvbm_g1_preflight(kv, err); /* --g1 cuda: runtime, device, memory, before listening */
    if (rc < 0) {
        fprintf(stderr, "kvbench serve: --g1 cuda: %s%s\n", err,
                rc == KVBM_G1_NO_ROOM ? "; lower --gpu-cache-gb or --gpu-cache-blocks" : "");
        return EXIT_USAGE;
    }
    return -1;
}

/* {pid, port, metrics_port, host, model_id, kv_mode, base_url, personality, metrics_url}. */
static int write_ready_file(const char *path, const struct engine_config *cfg, int port, int mport,
                            char *err)
{
    json_t *rf = json_pack("{s:i, s:i, s:i, s:s, s:s, s:s}", "pid", (int)getpid(), "port", port,
                           "metrics_port", mport, "host", cfg->host, "model_id", cfg->model_id,
                           "kv_mode", kv_mode_name(cfg->kv.mode));
    char url[128];
    snprintf(url, sizeof url, "http://%s:%d", cfg->host, port);
    json_object_set_new(rf, "base_url", json_string(url));
    json_object_set_new(rf, "personality", json_string(cfg->personality->name));
    if (mport > 0 && cfg->personality->kvbm_port) {
        snprintf(url, sizeof url, "http://%s:%d/metrics", cfg->host, mport);
        json_object_set_new(rf, "metrics_url", json_string(url));
    } else if (!cfg->personality->kvbm_port) {
        /* the engine's own counters, on the API port */
        snprintf(url, sizeof url, "http://%s:%d/metrics", cfg->host, port);
        json_object_set_new(rf, "metrics_url", json_string(url));
    }
    int wrc = json_write_file(path, rf, err);
    json_decref(rf);
    return wrc;
}

/* --chat-template: the one named, else (auto) the tokenizer_config.json beside the tokenizer.json,
 * else the model id's family, else the profile's (llama-* -> llama3, tiny -> plain). why: the
 * reason, for the log. */
static enum chat_template chat_template_choose(const struct serve_opts *o,
                                               const struct tokenizer *tok, const char *model_id,
                                               char *why, size_t cap)
{
    if (strcmp(o->chat_template, "auto") != 0) {
        snprintf(why, cap, "--chat-template");
        return (enum chat_template)names_value(CHAT_TEMPLATE_NAMES, o->chat_template);
    }
    char miss[600] = "";
    if (tok->path && strcmp(tok->kind, "tokenizer.json") == 0) {
        char reason[512];
        int t = chat_template_of_tokenizer(tok->path, reason, sizeof reason);
        if (t >= 0) {
            snprintf(why, cap, "%s", reason);
            return (enum chat_template)t;
        }
        snprintf(miss, sizeof miss, " (%s)", reason);
    }
    int t = chat_template_of_model(model_id);
    if (t >= 0) {
        snprintf(why, cap, "the model id %s%s", model_id, miss);
        return (enum chat_template)t;
    }
    snprintf(why, cap, "the %s profile%s", o->profile, miss);
    return strncmp(o->profile, "llama-", 6) == 0 ? CHAT_TPL_LLAMA3 : CHAT_TPL_PLAIN;
}

/* Start the engine, say where it serves, write --ready-file, then wait for a signal and drain.
 * Returns the exit code. */
static int serve_until_signal(const struct serve_opts *o, struct engine_config *cfg)
{
    /* Signals are taken synchronously by this thread; every thread started below inherits the
     * mask, so SIGINT/SIGTERM/SIGHUP reach sigwait and nothing else. SIGHUP (a closed terminal,
     * a supervisor's stop) is a clean shutdown too: there is no configuration to reload. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[ERR_LEN];
    struct engine *eng = NULL;
    if (engine_start(cfg, &eng, err) < 0) {
        fprintf(stderr, "kvbench serve: %s\n", err);
        return 1;
    }
    const struct kvbm_config *kv = &cfg->kv;
    int port = engine_port(eng), mport = engine_metrics_port(eng);
    log_info("serving %s on http://%s:%d (kv mode %s; G1 %zu, G2 %zu, G3 %zu blocks of %zu "
             "tokens / %zu bytes; disk %s at %s; speedup %g)",
             cfg->model_id, cfg->host, port, kv_mode_name(kv->mode), kv->g1_blocks,
             kv->mode >= KV_MODE_CPU_ONLY ? kv->g2_blocks : 0,
             kv->mode == KV_MODE_CPU_DISK ? kv->g3_blocks : 0, kv->block_tokens, kv->block_bytes,
             kvbm_disk_mode(engine_kvbm(eng)), kv->mode == KV_MODE_CPU_DISK ? kv->disk_dir : "-",
             cfg->speedup);
    char g1[1024];
    kvbm_g1_describe(engine_kvbm(eng), g1, sizeof g1);
    log_info("G1 (%s): %s", names_name(KVBM_G1_NAMES, (int)kv->g1), g1);
    if (mport > 0)
        log_info("KV metrics on http://%s:%d/metrics", cfg->host, mport);
    if (o->ready_file && write_ready_file(o->ready_file, cfg, port, mport, err) < 0) {
        /* a caller waits for this file: serving without it would leave it waiting */
        fprintf(stderr, "kvbench serve: cannot write --ready-file: %s\n", err);
        engine_stop(eng);
        return 1;
    }

    int sig = 0;
    sigwait(&set, &sig);
    const char *signame = sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM";
    log_info("received %s: draining (up to %.0f s)", signame, o->drain_timeout_s);
    engine_begin_drain(eng);
    size_t left = engine_wait_idle(eng, o->drain_timeout_s);
    if (left)
        log_warn("%zu requests still in flight are failed", left);
    engine_stop(eng);
    if (o->ready_file)
        unlink(o->ready_file);
    log_info("stopped%s", cfg->keep_cache ? " (cache files kept)" : "");
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    struct serve_opts o;
    memset(&o, 0, sizeof o);
    struct opt opts[sizeof SERVE_ROWS / sizeof SERVE_ROWS[0]];
    size_t n = 0;
    opts_bind(opts, &n, sizeof opts / sizeof opts[0], SERVE_ROWS, &o, NULL);
    int rc = cmd_parse("serve", USAGE, DESCRIPTION, opts, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    cmd_set_log_level(o.log_level);

    struct engine_config cfg;
    memset(&cfg, 0, sizeof cfg);
    model_config(&o, opts, &cfg);
    rc = front_config(&o, &cfg);
    if (rc < 0)
        rc = tiers_config(&o, opts, &cfg);
    char err[ERR_LEN];
    if (rc < 0 && o.ready_file && ready_file_check(o.ready_file, err) < 0) {
        fprintf(stderr, "kvbench serve: %s\n", err);
        rc = 1;
    }
    if (rc >= 0) {
        opts_free(opts);
        return rc;
    }
    char note[512];
    const struct tokenizer *tok =
        tokenizer_resolve(o.tokenizer, cfg.model_id, note, sizeof note, err);
    if (!tok) {
        fprintf(stderr, "kvbench serve: --tokenizer: %s\n", err);
        opts_free(opts);
        return EXIT_USAGE;
    }
    cfg.tok = tok;
    log_info("tokenizer: %s", note);
    char why[1024];
    cfg.chat_tpl = chat_template_choose(&o, tok, cfg.model_id, why, sizeof why);
    log_info("chat template: %s (from %s)", names_name(CHAT_TEMPLATE_NAMES, (int)cfg.chat_tpl),
             why);
    rc = serve_until_signal(&o, &cfg);
    tokenizer_free(tok);
    opts_free(opts);
    return rc;
}
