/*
 * tierprobe.h - how fast this machine moves a KV block between the tiers, at KVBM's block size
 * and batching (`kvbench tiers`, docs/TIERS.md):
 *   g1_g2  device <-> host memory: cudaMemcpyAsync, pinned and pageable host memory
 *   g2_g3  host memory <-> disk: the engine's own block files (engine/disktier.h), cold reads
 *   g1_g3  device <-> disk: cuFile (GPUDirect Storage, or its compatibility mode)
 * Each path runs a write pass, then a read pass over the same blocks: `inflight` workers take
 * batches of `batch` blocks from a shared counter, as KVBM keeps 4 batches of 16 in flight. Every
 * block read is checked against the block written (engine/kvbm.h's kvblock_fill and
 * kvblock_verify); a mismatch makes the row an error, never a number.
 *
 * A path that cannot run on this machine still has its rows, "unavailable" with the reason (no
 * CUDA runtime, no device, no cuFile, --no-gpu), and its numbers NaN.
 */
#ifndef KVBENCH_ENGINE_TIERPROBE_H
#define KVBENCH_ENGINE_TIERPROBE_H

#include "util/err.h"

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tier_status { TIER_OK, TIER_UNAVAILABLE, TIER_ERROR };

/* "ok", "unavailable", "error". */
const char *tier_status_name(enum tier_status s);

/* One measured (or not) path, direction and variant. */
struct tier_row {
    const char *path;      /* "g1_g2", "g2_g3", "g1_g3" */
    const char *direction; /* "write" (towards the slower tier), "read" (back) */
    char variant[24];      /* "pinned", "pageable", "o_direct", "buffered", "gds", "compat"; ""
                              when not known (the path never started) */
    enum tier_status status;
    char reason[ERR_LEN]; /* why not ok; for an ok row a note, or "" */
    size_t blocks;        /* blocks moved in the pass */
    uint64_t bytes;       /* blocks x block_bytes (KV bytes; files are rounded up to 4 KiB) */
    /* NaN unless ok */
    double pass_s;                     /* first submit to last completion */
    double gb_per_s;                   /* bytes / pass_s / 1e9 */
    double us_per_block;               /* pass_s / blocks */
    double batch_p50_us, batch_p99_us; /* one batch: its submit to its last block done */
    double kv_tokens_per_s;            /* bytes / pass_s / kv_bytes_per_token */
};

#define TIERPROBE_MAX_ROWS 8

struct tierprobe_config {
    size_t block_bytes;        /* >= 64 */
    double kv_bytes_per_token; /* > 0 */
    size_t blocks;             /* per pass, >= 1 */
    size_t batch;              /* blocks per batch, >= 1 */
    size_t inflight;           /* workers (batches in flight), >= 1 */
    const char *disk_dir;      /* the probe works in <disk_dir>/kvbench-tiers-<pid> */
    int cuda_device;
    bool no_gpu; /* the g1_* rows are "unavailable" with reason "--no-gpu" */
    /* Set (by a signal handler) to stop: the running pass ends at its next batch, its rows are
     * errors ("interrupted"), and the scratch directory is still removed. May be NULL. */
    volatile sig_atomic_t *stop;
    /* Told before each step ("g2_g3 write", ...), for a progress line. May be NULL. */
    void (*progress)(const char *what, void *arg);
    void *progress_arg;
    /* Test hooks: fail this many g2_g3 block writes with EIO (disktier's fail_writes), and a
     * call between each disk path's write and read passes with the path ("g2_g3", "g1_g3") and
     * the scratch directory (a test corrupts a file there). */
    int test_fail_writes;
    void (*test_after_write)(const char *path, const char *scratch_dir, void *arg);
    void *test_arg;
};

struct tierprobe_result {
    struct tier_row rows[TIERPROBE_MAX_ROWS];
    size_t n_rows;
    /* CUDA: opened (then lib, versions and device are set) or why not */
    bool cuda;
    char cuda_reason[ERR_LEN];
    char cuda_lib[PATH_MAX];
    int runtime_version, driver_version, device;
    bool unified_known, unified; /* known only when CUDA opened */
    char unified_reason[256];
    /* cuFile: opened (mode "gds" or "compat") or why not */
    bool cufile;
    char cufile_mode[16];
    char cufile_reason[ERR_LEN];
    /* The disk tier's mode ("O_DIRECT", "buffered+fadvise"; "" when it never opened) and the
     * scratch directory (removed afterwards: scratch_removed). */
    char disk_mode[24];
    char scratch_dir[PATH_MAX];
    bool scratch_removed;
};

/* Run every path. Fills out (rows in a fixed order: g1_g2 pinned write, read; g1_g2 pageable
 * write, read; g2_g3 write, read; g1_g3 write, read). Returns the number of ok rows. */
size_t tierprobe_run(const struct tierprobe_config *cfg, struct tierprobe_result *out);

/* The default --blocks: about 1 GiB of KV per pass, a multiple of batch, at least
 * batch x inflight, at most TIERPROBE_MAX_DEFAULT_BLOCKS, and no more than half the free space
 * under disk_dir (its nearest existing ancestor) when that can be told. */
#define TIERPROBE_MAX_DEFAULT_BLOCKS 65536
size_t tierprobe_default_blocks(size_t block_bytes, size_t batch, size_t inflight,
                                const char *disk_dir);

/* Break-even against recomputing (docs/TIERS.md): onboarding a prefix of L tokens from a tier
 * costs about fixed + L / R (fixed: the first batch's latency, which nothing hides; R: the
 * tier's KV tokens per second), recomputing it L / X (X: prefill tokens per second). */
#define TIERPROBE_BE_LENGTHS 4
extern const double TIERPROBE_BE_LENGTH[TIERPROBE_BE_LENGTHS]; /* 1k, 4k, 16k, 32k tokens */
#define TIERPROBE_BE_FORMULA                                                                       \
    "L* = fixed / (1/X - 1/R); onboard(L) = fixed + L/R, recompute(L) = L/X"

struct tier_breakeven {
    bool never;    /* R <= X: onboarding is never faster per token than recomputing */
    double tokens; /* L*: onboarding beats recomputing from this prefix length (NaN if never) */
    double speedup[TIERPROBE_BE_LENGTHS]; /* recompute time / onboard time at each length */
};

/* fixed_us >= 0, onboard_tps (R) > 0, prefill_tps (X) > 0. Returns 0, or -1 when a figure is
 * not a finite positive number (out untouched). */
int tierprobe_breakeven(double fixed_us, double onboard_tps, double prefill_tps,
                        struct tier_breakeven *out);

#endif
