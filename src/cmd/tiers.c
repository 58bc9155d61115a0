/*
 * tiers.c - `kvbench tiers`: how fast this machine moves a KV block between device memory (G1),
 * host memory (G2) and disk (G3) at the model profile's block size and KVBM's batching, and,
 * given a prefill rate, from which prefix length onboarding from each tier beats recomputing
 * (docs/TIERS.md). The measurements are engine/tierprobe's; this file picks the block size from
 * the profile (as `kvbench serve` would), prints the table or one JSON object, and chooses the
 * exit code: 0 when any row was measured, 1 when none was, 2 for a bad flag.
 */
#include "cmd/cmd.h"
#include "engine/profile.h"
#include "engine/tierprobe.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* `kvbench serve`'s defaults: its --profile, --block-size and --disk-cache-dir */
#define SERVE_PROFILE    "llama-3.1-8b-fp8"
#define SERVE_BLOCK_SIZE "32"
#define SERVE_DISK_DIR   "/tmp/kvbench-kvbm"
/* the buffers of a path (batch x inflight blocks), host and device alike */
#define MAX_BUFFER_BYTES (4.0 * 1073741824.0)

struct tiers_opts {
    const char *profile, *disk_dir, *from_breakeven;
    long long block_tokens, block_bytes, blocks, batch, inflight, cuda_device;
    bool no_gpu, json;
    double prefill_tps;
};

/* The block as the engine would size it. */
struct tiers_block {
    size_t bytes;
    double tokens, kv_bytes_per_token;
};

/* The prefill rate X of the break-even, and where it came from. */
struct tiers_prefill {
    bool given;
    double tps;
    char source[PATH_MAX + 96];
};

static const char USAGE[] = "kvbench tiers [options]";
static const char DESCRIPTION[] =
    "Measure this machine's KV paths at the model profile's block size, with KVBM's batching\n"
    "(--batch-blocks blocks per batch, --inflight batches in flight): G1<->G2 (cudaMemcpyAsync,\n"
    "pinned and pageable host memory), G2<->G3 (the engine's own block files, O_DIRECT or\n"
    "buffered with the page cache dropped, cold reads) and G1<->G3 (cuFile: GPUDirect Storage or\n"
    "its compatibility mode). A write pass, then a read pass; every block read is checked.\n"
    "Paths this machine lacks are listed as unavailable, with the reason. With\n"
    "--prefill-tokens-per-s or --from-breakeven: the prefix length from which onboarding from\n"
    "each tier beats recomputing it. The disk passes work in DIR/kvbench-tiers-<pid>, removed\n"
    "afterwards. Exit 0 when any path was measured, 1 when none, 2 for a bad flag\n"
    "(docs/TIERS.md).";

/* Resolve the profile and the block size. Returns 0, or EXIT_USAGE after one line. */
static int tiers_block(const struct tiers_opts *o, const struct opt *opts, struct tiers_block *b)
{
    const struct model_profile *m = profile_model(o->profile);
    if (!m) {
        fprintf(stderr, "kvbench tiers: --profile: expected one of %s, got '%s'\n",
                profile_model_names(), o->profile);
        return EXIT_USAGE;
    }
    b->kv_bytes_per_token = (double)m->kv_bytes_per_token;
    b->tokens = (double)o->block_tokens;
    b->bytes = (size_t)((double)o->block_tokens * b->kv_bytes_per_token);
    if (opts_given(opts, &o->block_bytes)) {
        b->bytes = (size_t)o->block_bytes;
        if (opts_given(opts, &o->block_tokens)) /* both: the KV bytes per token they imply */
            b->kv_bytes_per_token = (double)b->bytes / b->tokens;
        else
            b->tokens = (double)b->bytes / b->kv_bytes_per_token;
    }
    if (b->bytes < 64 || b->bytes > ((size_t)1 << 28)) {
        fprintf(stderr,
                "kvbench tiers: a block of %zu bytes (%.0f tokens x %.0f bytes): expected 64 "
                "bytes to 256 MiB; set --block-bytes\n",
                b->bytes, b->tokens, b->kv_bytes_per_token);
        return EXIT_USAGE;
    }
    /* each path holds batch x inflight blocks of buffers (host, and device for the G1 paths) */
    double buffers = (double)o->batch * (double)o->inflight * (double)b->bytes;
    if (buffers > MAX_BUFFER_BYTES) {
        fprintf(stderr,
                "kvbench tiers: --batch-blocks x --inflight blocks of %zu bytes need %.1f GiB of "
                "buffers; at most %.0f GiB\n",
                b->bytes, buffers / 1073741824.0, MAX_BUFFER_BYTES / 1073741824.0);
        return EXIT_USAGE;
    }
    return 0;
}

/* X from --prefill-tokens-per-s or a breakeven run's summary.json. Returns 0, or EXIT_USAGE
 * after one line. */
static int tiers_prefill(const struct tiers_opts *o, const struct opt *opts,
                         struct tiers_prefill *x)
{
    bool given = opts_given(opts, &o->prefill_tps);
    if (given && o->from_breakeven) {
        fprintf(stderr, "kvbench tiers: give --prefill-tokens-per-s or --from-breakeven, not "
                        "both\n");
        return EXIT_USAGE;
    }
    if (given) {
        *x = (struct tiers_prefill){true, o->prefill_tps, "--prefill-tokens-per-s"};
        return 0;
    }
    if (!o->from_breakeven)
        return 0;
    char path[PATH_MAX + 32], err[ERR_LEN];
    snprintf(path, sizeof path, fs_is_dir(o->from_breakeven) ? "%s/summary.json" : "%s",
             o->from_breakeven);
    json_t *s = json_read_file(path, err);
    double us = NAN;
    bool ok = s &&
              json_get_num_strict(json_object_get(s, "breakeven"), "prefill_us_per_token", &us) &&
              isfinite(us) && us > 0;
    json_decref(s);
    if (!ok) {
        fprintf(stderr, "kvbench tiers: --from-breakeven: %s\n",
                !s ? err
                   : "no breakeven.prefill_us_per_token in its summary.json (not a --scenario "
                     "breakeven run, or its cold fit failed)");
        return EXIT_USAGE;
    }
    x->given = true;
    x->tps = 1e6 / us;
    snprintf(x->source, sizeof x->source, "%s: breakeven.prefill_us_per_token = %.4g", path, us);
    return 0;
}

/* The break-even tiers: which read row each is. */
static const struct {
    const char *tier;
    size_t row;
} BE_TIERS[] = {{"host", 1}, {"disk_via_host", 5}, {"disk_direct", 7}};
#define N_BE_TIERS (sizeof BE_TIERS / sizeof BE_TIERS[0])

/* ------------------------------------------------------------------------------------ JSON */

static json_t *num_or_null(double v)
{
    return json_real_or_null(v, isfinite(v));
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *row_json(const struct tier_row *r)
{
    json_t *o = json_object();
    json_put_str(o, "path", r->path);
    json_put_str(o, "direction", r->direction);
    json_put(o, "variant", str_or_null(r->variant));
    json_put(o, "gb_per_s", num_or_null(r->gb_per_s));
    json_put(o, "us_per_block", num_or_null(r->us_per_block));
    json_put(o, "batch_p50_us", num_or_null(r->batch_p50_us));
    json_put(o, "batch_p99_us", num_or_null(r->batch_p99_us));
    json_put(o, "kv_tokens_per_s", num_or_null(r->kv_tokens_per_s));
    json_put(o, "pass_s", num_or_null(r->pass_s));
    json_put_int(o, "blocks", (long long)r->blocks);
    json_put_int(o, "bytes", (long long)r->bytes);
    json_put_str(o, "status", tier_status_name(r->status));
    json_put(o, "reason", str_or_null(r->reason));
    return o;
}

static json_t *breakeven_json(const struct tierprobe_result *res, const struct tiers_prefill *x)
{
    json_t *a = json_array();
    for (size_t t = 0; t < N_BE_TIERS; t++) {
        const struct tier_row *r = &res->rows[BE_TIERS[t].row];
        struct tier_breakeven be;
        bool ok = r->status == TIER_OK &&
                  tierprobe_breakeven(r->batch_p50_us, r->kv_tokens_per_s, x->tps, &be) == 0;
        json_t *o = json_object();
        json_put_str(o, "tier", BE_TIERS[t].tier);
        json_put_str(o, "path", r->path);
        json_put_str(o, "direction", r->direction);
        json_put(o, "variant", str_or_null(r->variant));
        json_put_str(o, "status", ok ? "ok" : tier_status_name(r->status));
        json_put(o, "reason", ok ? json_null() : str_or_null(r->reason));
        json_put_str(o, "formula", TIERPROBE_BE_FORMULA);
        json_put(o, "fixed_us", num_or_null(ok ? r->batch_p50_us : NAN));
        json_put(o, "onboard_tokens_per_s", num_or_null(ok ? r->kv_tokens_per_s : NAN));
        json_put_real(o, "prefill_tokens_per_s", x->tps);
        json_put(o, "break_even_tokens",
                 !ok        ? json_null()
                 : be.never ? json_string("never")
                            : num_or_null(be.tokens));
        json_t *sp = json_array();
        for (size_t i = 0; ok && i < TIERPROBE_BE_LENGTHS; i++)
            json_array_append_new(sp, json_pack("{s:f, s:o}", "tokens", TIERPROBE_BE_LENGTH[i],
                                                "speedup", num_or_null(be.speedup[i])));
        json_put(o, "speedup", sp);
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *cuda_json(const struct tierprobe_result *res)
{
    if (!res->cuda)
        return json_null();
    return json_pack("{s:s, s:i, s:i, s:i}", "lib", res->cuda_lib, "runtime_version",
                     res->runtime_version, "driver_version", res->driver_version, "device",
                     res->device);
}

static int print_json(const struct tiers_opts *o, const struct tiers_block *b,
                      const struct tierprobe_config *cfg, const struct tierprobe_result *res,
                      const struct tiers_prefill *x)
{
    json_t *j = json_object();
    json_put_str(j, "profile", o->profile);
    json_put_int(j, "block_bytes", (long long)b->bytes);
    json_put(j, "block_tokens",
             b->tokens == floor(b->tokens) ? json_integer((json_int_t)b->tokens)
                                           : json_real(b->tokens));
    json_put_real(j, "kv_bytes_per_token", b->kv_bytes_per_token);
    json_put_int(j, "blocks", (long long)cfg->blocks);
    json_put_int(j, "batch_blocks", (long long)cfg->batch);
    json_put_int(j, "inflight", (long long)cfg->inflight);
    json_put_str(j, "disk_cache_dir", cfg->disk_dir);
    json_put_str(j, "scratch_dir", res->scratch_dir);
    json_put_bool(j, "scratch_removed", res->scratch_removed);
    json_put(j, "disk_mode", str_or_null(res->disk_mode));
    json_put(j, "unified_memory", res->unified_known ? json_boolean(res->unified) : json_null());
    json_put(j, "unified_memory_reason",
             res->unified_known ? json_string(res->unified_reason) : json_null());
    json_put(j, "cuda", cuda_json(res));
    json_put(j, "cuda_reason", res->cuda ? json_null() : str_or_null(res->cuda_reason));
    json_put(j, "cufile",
             res->cufile
                 ? json_pack("{s:s, s:s}", "mode", res->cufile_mode, "reason", res->cufile_reason)
                 : json_null());
    json_put(j, "cufile_reason", res->cufile ? json_null() : str_or_null(res->cufile_reason));
    json_t *rows = json_array();
    for (size_t i = 0; i < res->n_rows; i++)
        json_array_append_new(rows, row_json(&res->rows[i]));
    json_put(j, "rows", rows);
    json_put(j, "prefill_tokens_per_s", x->given ? json_real(x->tps) : json_null());
    json_put(j, "prefill_source", x->given ? json_string(x->source) : json_null());
    json_put(j, "break_even", x->given ? breakeven_json(res, x) : json_null());
    char *text = json_text(j, JSON_DUMP_FLAGS_PRETTY);
    json_decref(j);
    if (!text) {
        fprintf(stderr, "kvbench tiers: out of memory writing JSON\n");
        return -1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

/* ------------------------------------------------------------------------------------ text */

/* A number in a column, or "-" for a row that was not measured. */
static void col(double v, const char *fmt, int width)
{
    if (isfinite(v))
        printf(fmt, width, v);
    else
        printf("%*s", width, "-");
}

/* The rows' reasons and notes under the table: once for a path whose rows all say the same. */
static void print_reasons(const struct tierprobe_result *res)
{
    for (size_t i = 0; i < res->n_rows;) {
        size_t end = i + 1;
        while (end < res->n_rows && strcmp(res->rows[end].path, res->rows[i].path) == 0)
            end++;
        bool same = true;
        for (size_t k = i + 1; k < end; k++)
            same = same && strcmp(res->rows[k].reason, res->rows[i].reason) == 0;
        for (size_t k = i; k < end; k++) {
            const struct tier_row *r = &res->rows[k];
            if (same && k == i && r->reason[0])
                printf("  %s: %s\n", r->path, r->reason);
            else if (!same && r->reason[0])
                printf("  %s %s (%s): %s\n", r->path, r->direction,
                       r->variant[0] ? r->variant : "-", r->reason);
        }
        i = end;
    }
}

static void print_rows(const struct tierprobe_result *res)
{
    printf("%-6s %-9s %-9s %9s %10s %13s %13s %13s  %s\n", "path", "direction", "variant", "GB/s",
           "us/block", "batch p50 us", "batch p99 us", "KV tokens/s", "status");
    for (size_t i = 0; i < res->n_rows; i++) {
        const struct tier_row *r = &res->rows[i];
        printf("%-6s %-9s %-9s", r->path, r->direction, r->variant[0] ? r->variant : "-");
        col(r->gb_per_s, " %*.3f", 9);
        col(r->us_per_block, " %*.1f", 10);
        col(r->batch_p50_us, " %*.1f", 13);
        col(r->batch_p99_us, " %*.1f", 13);
        col(r->kv_tokens_per_s, " %*.0f", 13);
        printf("  %s\n", tier_status_name(r->status));
    }
    print_reasons(res);
}

static void print_machine(const struct tierprobe_result *res)
{
    if (res->cuda)
        printf("CUDA: %s, runtime %d.%d, driver %d.%d, device %d\n", res->cuda_lib,
               res->runtime_version / 1000, res->runtime_version % 1000 / 10,
               res->driver_version / 1000, res->driver_version % 1000 / 10, res->device);
    else
        printf("CUDA: unavailable (%s)\n", res->cuda_reason);
    if (res->unified_known)
        printf("unified memory: %s (%s)\n", res->unified ? "yes: G1<->G2 is not a PCIe copy" : "no",
               res->unified_reason);
    else
        printf("unified memory: unknown (no CUDA)\n");
    if (res->cufile)
        printf("cuFile: %s (%s)\n", res->cufile_mode, res->cufile_reason);
    else
        printf("cuFile: unavailable (%s)\n", res->cufile_reason);
    printf("disk: %s in %s (%s)\n", res->disk_mode[0] ? res->disk_mode : "not opened",
           res->scratch_dir, res->scratch_removed ? "removed afterwards" : "NOT removed");
}

static void print_breakeven(const struct tierprobe_result *res, const struct tiers_prefill *x)
{
    printf("\nbreak-even against recomputing at X = %.0f prefill tokens/s (%s):\n"
           "  onboarding L tokens from a tier costs fixed + L/R (fixed: its read batch p50; R: its "
           "KV tokens/s), recomputing them L/X; %s\n",
           x->tps, x->source, "L* = fixed / (1/X - 1/R), never when R <= X");
    printf("%-14s %-24s %10s %12s %10s  %s\n", "tier", "row", "fixed us", "R tokens/s", "L* tokens",
           "speed-up at 1k / 4k / 16k / 32k tokens");
    for (size_t t = 0; t < N_BE_TIERS; t++) {
        const struct tier_row *r = &res->rows[BE_TIERS[t].row];
        char name[64];
        snprintf(name, sizeof name, "%s %s (%s)", r->path, r->direction,
                 r->variant[0] ? r->variant : "-");
        printf("%-14s %-24s", BE_TIERS[t].tier, name);
        struct tier_breakeven be;
        if (r->status != TIER_OK ||
            tierprobe_breakeven(r->batch_p50_us, r->kv_tokens_per_s, x->tps, &be) < 0) {
            printf(" %s\n", r->status == TIER_OK ? "not computable" : tier_status_name(r->status));
            continue;
        }
        printf(" %10.1f %12.0f", r->batch_p50_us, r->kv_tokens_per_s);
        if (be.never)
            printf(" %10s ", "never");
        else
            printf(" %10.0f ", be.tokens);
        for (size_t i = 0; i < TIERPROBE_BE_LENGTHS; i++)
            printf("%s%.2fx", i ? " / " : " ", be.speedup[i]);
        printf("\n");
    }
}

static void print_text(const struct tiers_opts *o, const struct tiers_block *b,
                       const struct tierprobe_config *cfg, const struct tierprobe_result *res,
                       const struct tiers_prefill *x)
{
    printf("kvbench tiers: %s, blocks of %zu bytes (%.4g x %.0f KV bytes per token), %zu blocks "
           "per pass, batches of %zu, %zu in flight\n\n",
           o->profile, b->bytes, b->tokens, b->kv_bytes_per_token, cfg->blocks, cfg->batch,
           cfg->inflight);
    print_rows(res);
    printf("\n");
    print_machine(res);
    if (x->given)
        print_breakeven(res, x);
}

/* ------------------------------------------------------------------------------ the command */

static void tiers_progress(const char *what, void *arg)
{
    (void)arg;
    fprintf(stderr, "kvbench tiers: %s ...\n", what);
}

#define TO struct tiers_opts

/* The flags of `kvbench tiers`, one row each, values in struct tiers_opts. --profile's help is
 * set when bound (it names the profiles, from their table). */
static const struct opt TIERS_ROWS[] = {
    {.name = "profile", OPT_AT_STR(TO, profile), .def = SERVE_PROFILE, .metavar = "NAME"},
    {.name = "block-tokens",
     OPT_AT_INT(TO, block_tokens),
     .def = SERVE_BLOCK_SIZE,
     .min = 1,
     .max = 4096,
     .help = "tokens per KV block (kvbench serve's --block-size)"},
    {.name = "block-bytes",
     OPT_AT_INT(TO, block_bytes),
     .min = 64,
     .max = 1 << 28,
     .metavar = "BYTES",
     .help = "KV bytes per block (default: block tokens x the profile's KV bytes per token; "
             "with --block-tokens too, they set the KV bytes per token)"},
    {.name = "disk-cache-dir",
     OPT_AT_STR(TO, disk_dir),
     .def = SERVE_DISK_DIR,
     .env = "DYN_KVBM_DISK_CACHE_DIR",
     .metavar = "DIR",
     .help = "the disk tier's directory (kvbench serve's); the probe works in "
             "DIR/kvbench-tiers-<pid>, its own, removed afterwards"},
    {.name = "blocks",
     OPT_AT_INT(TO, blocks),
     .min = 1,
     .max = 1 << 24,
     .help = "blocks per pass (default: about 1 GiB of KV, at least batch x inflight, at most "
             "65536 and half the disk's free space)"},
    {.name = "batch-blocks",
     OPT_AT_INT(TO, batch),
     .def = "16",
     .min = 1,
     .max = 4096,
     .help = "blocks per batch (KVBM's 16)"},
    {.name = "inflight",
     OPT_AT_INT(TO, inflight),
     .def = "4",
     .min = 1,
     .max = 64,
     .help = "batches in flight: worker threads, one CUDA stream each (KVBM's 4)"},
    {.name = "cuda-device",
     OPT_AT_INT(TO, cuda_device),
     .def = "0",
     .min = 0,
     .max = 1024,
     .help = "the CUDA device of the G1 paths"},
    {.name = "no-gpu",
     OPT_AT_BOOL(TO, no_gpu),
     .help = "skip the G1 paths (CUDA, cuFile): their rows are unavailable"},
    {.name = "json",
     OPT_AT_BOOL(TO, json),
     .help = "print one JSON object (docs/TIERS.md) instead of the table"},
    {.name = "prefill-tokens-per-s",
     OPT_AT_FLOAT(TO, prefill_tps),
     .min = 1e-6,
     .max = 1e12,
     .metavar = "X",
     .help = "the GPU's prefill rate: adds each tier's break-even prefix length"},
    {.name = "from-breakeven",
     OPT_AT_STR(TO, from_breakeven),
     .metavar = "RUN_DIR",
     .help = "take the prefill rate from a `kvbench run --scenario breakeven` run's "
             "summary.json (1e6 / breakeven.prefill_us_per_token)"},
    {0},
};

int cmd_tiers(int argc, char **argv)
{
    struct tiers_opts o;
    memset(&o, 0, sizeof o);
    struct opt opts[sizeof TIERS_ROWS / sizeof TIERS_ROWS[0]];
    size_t n = 0;
    opts_bind(opts, &n, sizeof opts / sizeof opts[0], TIERS_ROWS, &o, NULL);
    char profile_help[256];
    snprintf(profile_help, sizeof profile_help,
             "model profile whose KV bytes per token size the block: %s", profile_model_names());
    opts_find(opts, &o.profile)->help = profile_help;
    int rc = cmd_parse("tiers", USAGE, DESCRIPTION, opts, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (o.no_gpu && opts_given(opts, &o.cuda_device)) {
        fprintf(stderr, "kvbench tiers: --cuda-device and --no-gpu contradict each other\n");
        return EXIT_USAGE;
    }
    struct tiers_block b;
    struct tiers_prefill x = {0};
    if ((rc = tiers_block(&o, opts, &b)) != 0 || (rc = tiers_prefill(&o, opts, &x)) != 0)
        return rc;
    cmd_catch_signals();
    struct tierprobe_config cfg = {
        .block_bytes = b.bytes,
        .kv_bytes_per_token = b.kv_bytes_per_token,
        .batch = (size_t)o.batch,
        .inflight = (size_t)o.inflight,
        .disk_dir = o.disk_dir,
        .cuda_device = (int)o.cuda_device,
        .no_gpu = o.no_gpu,
        .stop = &cmd_interrupted,
        .progress = isatty(STDERR_FILENO) ? tiers_progress : NULL,
    };
    cfg.blocks = opts_given(opts, &o.blocks)
                     ? (size_t)o.blocks
                     : tierprobe_default_blocks(b.bytes, cfg.batch, cfg.inflight, o.disk_dir);
    struct tierprobe_result *res = malloc(sizeof *res);
    if (!res) {
        fprintf(stderr, "kvbench tiers: out of memory\n");
        return 1;
    }
    size_t ok = tierprobe_run(&cfg, res);
    rc = 0;
    if (o.json)
        rc = print_json(&o, &b, &cfg, res, &x);
    else
        print_text(&o, &b, &cfg, res, &x);
    if (!res->scratch_removed)
        fprintf(stderr, "kvbench tiers: could not remove %s\n", res->scratch_dir);
    if (ok == 0)
        fprintf(stderr, "kvbench tiers: no path could be measured (see the rows' reasons)\n");
    free(res);
    return rc != 0 || ok == 0 || cmd_interrupted ? 1 : 0;
}
