/*
 * Unit tests for the tier probe (engine/tierprobe): real block files in a scratch directory, the
 * G1 paths through the stand-in CUDA runtime and cuFile (tests/support/fakecuda.c,
 * fakecufile.c): every row measured with sane numbers; the unavailable rows with the shims'
 * reasons (no runtime, no device, no cuFile, --no-gpu); unified memory; a disk directory that
 * cannot be used; read-backs that differ from what was written (a payload byte, a header) and a
 * failed write, each an error row and never a number; the scratch directory gone afterwards; a
 * directory held by an engine; the break-even arithmetic.
 */
#include "test_common.h"

#include "engine/disktier.h"
#include "engine/tierprobe.h"
#include "util/err.h"
#include "util/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define BB 65536 /* block bytes */

static char *tmp;
static char cache[600];

static int setup(void **state)
{
    (void)state;
    tmp = test_tmpdir();
    if (!tmp)
        return -1;
    snprintf(cache, sizeof cache, "%s/c", tmp);
    setenv("KVBENCH_NVFS_DEV_DIR", tmp, 1); /* no nvidia-fs here: cuFile's compat mode */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_rmtree(tmp);
    free(tmp);
    unsetenv("KVBENCH_CUDART");
    unsetenv("KVBENCH_CUFILE");
    unsetenv("FAKECUDA_DEVICES");
    unsetenv("FAKECUDA_INTEGRATED");
    unsetenv("FAKECUDA_LOG");
    unsetenv("KVBENCH_NVFS_DEV_DIR");
    return 0;
}

static const char *fake(const char *var)
{
    const char *p = getenv(var);
    assert_non_null(p); /* set by CTest */
    return p;
}

static void use_fakes(void)
{
    setenv("KVBENCH_CUDART", fake("FAKE_CUDART"), 1);
    setenv("KVBENCH_CUFILE", fake("FAKE_CUFILE"), 1);
}

static struct tierprobe_config config(bool no_gpu)
{
    return (struct tierprobe_config){
        .block_bytes = BB,
        .kv_bytes_per_token = 4096,
        .blocks = 64,
        .batch = 16,
        .inflight = 4,
        .disk_dir = cache,
        .no_gpu = no_gpu,
    };
}

static struct tierprobe_result *run(const struct tierprobe_config *cfg, size_t *ok)
{
    struct tierprobe_result *r = malloc(sizeof *r);
    assert_non_null(r);
    *ok = tierprobe_run(cfg, r);
    assert_int_equal(r->n_rows, TIERPROBE_MAX_ROWS);
    assert_true(r->scratch_removed);
    assert_false(fs_exists(r->scratch_dir));
    return r;
}

static void assert_measured(const struct tier_row *r, size_t blocks)
{
    if (r->status != TIER_OK)
        fail_msg("%s %s (%s): %s", r->path, r->direction, r->variant, r->reason);
    assert_int_equal(r->blocks, blocks);
    assert_int_equal(r->bytes, (uint64_t)blocks * BB);
    assert_true(r->pass_s > 0);
    assert_true(r->gb_per_s > 0);
    assert_true(fabs(r->gb_per_s - (double)r->bytes / r->pass_s / 1e9) < 1e-9 * r->gb_per_s);
    assert_true(fabs(r->us_per_block - r->pass_s * 1e6 / (double)blocks) < 1e-6);
    assert_true(fabs(r->kv_tokens_per_s - r->gb_per_s * 1e9 / 4096) < 1e-6 * r->kv_tokens_per_s);
    assert_true(r->batch_p50_us > 0);
    assert_true(r->batch_p99_us >= r->batch_p50_us);
    /* no batch takes longer than the pass (equal, up to rounding, when there is one batch) */
    assert_true(r->batch_p99_us <= r->pass_s * 1e6 * (1 + 1e-9));
}

static void assert_unmeasured(const struct tier_row *r, enum tier_status st, const char *reason)
{
    assert_int_equal(r->status, st);
    if (!strstr(r->reason, reason))
        fail_msg("%s %s: reason '%s' lacks '%s'", r->path, r->direction, r->reason, reason);
    assert_true(isnan(r->gb_per_s) && isnan(r->us_per_block) && isnan(r->batch_p50_us) &&
                isnan(r->batch_p99_us) && isnan(r->kv_tokens_per_s) && isnan(r->pass_s));
}

static void assert_gpu_rows(const struct tierprobe_result *r, enum tier_status st,
                            const char *reason)
{
    for (size_t i = 0; i < TIERPROBE_MAX_ROWS; i++)
        if (i != 4 && i != 5)
            assert_unmeasured(&r->rows[i], st, reason);
}

static void test_disk_rows(void **state)
{
    (void)state;
    struct tierprobe_config cfg = config(true);
    size_t ok;
    struct tierprobe_result *r = run(&cfg, &ok);
    assert_int_equal(ok, 2);
    const char *variant = strcmp(r->disk_mode, "O_DIRECT") == 0 ? "o_direct" : "buffered";
    for (size_t i = 4; i < 6; i++) {
        assert_string_equal(r->rows[i].path, "g2_g3");
        assert_string_equal(r->rows[i].variant, variant);
        assert_measured(&r->rows[i], 64);
    }
    assert_string_equal(r->rows[4].direction, "write");
    assert_string_equal(r->rows[5].direction, "read");
    assert_gpu_rows(r, TIER_UNAVAILABLE, "--no-gpu");
    assert_false(r->cuda);
    assert_false(r->unified_known);
    /* the probe made the cache directory, so it went with the scratch directory */
    assert_false(fs_exists(cache));
    free(r);
}

static size_t count_lines(const char *path, const char *line)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    char buf[128];
    while (f && fgets(buf, sizeof buf, f))
        n += strcmp(buf, line) == 0;
    if (f)
        fclose(f);
    return n;
}

static void test_every_row_with_fakes(void **state)
{
    (void)state;
    use_fakes();
    char log[700];
    snprintf(log, sizeof log, "%s/copies.log", tmp);
    setenv("FAKECUDA_LOG", log, 1);
    struct tierprobe_config cfg = config(false);
    cfg.blocks = 40; /* a short last batch */
    size_t ok;
    struct tierprobe_result *r = run(&cfg, &ok);
    assert_int_equal(ok, 8);
    for (size_t i = 0; i < TIERPROBE_MAX_ROWS; i++)
        assert_measured(&r->rows[i], 40);
    const char *want[] = {"pinned", "pinned", "pageable", "pageable"};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(r->rows[i].variant, want[i]);
    assert_string_equal(r->rows[6].variant, "compat");
    assert_string_equal(r->rows[7].variant, "compat");
    assert_non_null(strstr(r->rows[6].reason, "no /dev/nvidia-fs*"));
    assert_true(r->cuda);
    assert_true(r->cufile);
    assert_string_equal(r->cufile_mode, "compat");
    assert_string_equal(r->cuda_lib, fake("FAKE_CUDART"));
    assert_true(r->unified_known);
    assert_false(r->unified);
    assert_non_null(strstr(r->unified_reason, "discrete"));
    /* the copies were block-sized and there were at least the timed passes' (pinned and
     * pageable, each way) */
    assert_true(count_lines(log, "d2h 65536\n") >= 2 * 40);
    assert_true(count_lines(log, "h2d 65536\n") >= 2 * 40);
    unsetenv("FAKECUDA_LOG");
    free(r);
}

static void test_unavailable(void **state)
{
    (void)state;
    struct tierprobe_config cfg = config(false);
    cfg.blocks = 16;
    cfg.batch = 4;
    cfg.inflight = 2;
    size_t ok;
    setenv("KVBENCH_CUDART", "/nonexistent", 1);
    struct tierprobe_result *r = run(&cfg, &ok);
    assert_int_equal(ok, 2);
    assert_gpu_rows(r, TIER_UNAVAILABLE, "no CUDA runtime: KVBENCH_CUDART=/nonexistent");
    assert_false(r->cuda);
    assert_false(r->unified_known);
    free(r);

    use_fakes();
    setenv("FAKECUDA_DEVICES", "0", 1);
    r = run(&cfg, &ok);
    assert_int_equal(ok, 2);
    assert_gpu_rows(r, TIER_UNAVAILABLE,
                    "no CUDA device: cudaGetDeviceCount says no CUDA-capable device is detected");
    free(r);
    unsetenv("FAKECUDA_DEVICES");

    /* CUDA without cuFile: G1<->G2 measured, G1<->G3 not */
    setenv("KVBENCH_CUFILE", "/nonexistent", 1);
    r = run(&cfg, &ok);
    assert_int_equal(ok, 6);
    assert_unmeasured(&r->rows[6], TIER_UNAVAILABLE, "no cuFile: KVBENCH_CUFILE=/nonexistent");
    assert_unmeasured(&r->rows[7], TIER_UNAVAILABLE, "no cuFile: KVBENCH_CUFILE=/nonexistent");
    assert_string_equal(r->rows[6].variant, "");
    assert_false(r->cufile);
    free(r);
}

static void test_unified(void **state)
{
    (void)state;
    use_fakes();
    setenv("FAKECUDA_INTEGRATED", "1", 1);
    struct tierprobe_config cfg = config(false);
    cfg.blocks = 16;
    size_t ok;
    struct tierprobe_result *r = run(&cfg, &ok);
    assert_true(r->unified_known);
    assert_true(r->unified);
    for (size_t i = 0; i < 4; i++) {
        assert_measured(&r->rows[i], 16);
        assert_non_null(strstr(r->rows[i].reason, "unified memory: not a PCIe copy ("));
        assert_non_null(strstr(r->rows[i].reason, "integrated"));
    }
    unsetenv("FAKECUDA_INTEGRATED");
    free(r);
}

static void test_disk_dir_unusable(void **state)
{
    (void)state;
    /* a regular file where the directory should be */
    int fd = open(cache, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    use_fakes();
    struct tierprobe_config cfg = config(false);
    cfg.blocks = 16;
    size_t ok;
    struct tierprobe_result *r = run(&cfg, &ok);
    assert_int_equal(ok, 4); /* G1<->G2 only: both disk paths need the directory */
    for (size_t i = 4; i < 8; i++)
        assert_unmeasured(&r->rows[i], TIER_ERROR, cache);
    assert_string_equal(r->disk_mode, "");
    free(r);
    /* and without a GPU nothing is measured */
    cfg.no_gpu = true;
    r = run(&cfg, &ok);
    assert_int_equal(ok, 0);
    struct stat st;
    assert_int_equal(stat(cache, &st), 0);
    assert_true(S_ISREG(st.st_mode) && st.st_size == 1); /* left alone */
    free(r);
    unlink(cache);
}

/* The test hook: change one byte of a block on disk, between the write and the read pass. */
struct corruption {
    const char *path; /* "g2_g3" or "g1_g3" */
    off_t at;         /* offset in the block */
    int calls;
};

static void corrupt(const char *path, const char *scratch, void *arg)
{
    struct corruption *c = arg;
    if (strcmp(path, c->path) != 0)
        return;
    c->calls++;
    char file[PATH_MAX + 300] = "";
    off_t off = c->at;
    if (strcmp(path, "g1_g3") == 0) {
        snprintf(file, sizeof file, "%s/kvbench-tiers-g1g3.dat", scratch);
        off += 3 * BB; /* block 3 of the pool file */
    } else {
        DIR *d = opendir(scratch);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d)) && !file[0])
            if (strncmp(e->d_name, "kvbench-", 8) == 0 && strstr(e->d_name, ".kvblk"))
                snprintf(file, sizeof file, "%s/%s", scratch, e->d_name);
        closedir(d);
    }
    int fd = open(file, O_RDWR);
    assert_true(fd >= 0);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    assert_int_equal(fsync(fd), 0);
    close(fd);
}

static void test_corrupted_reads(void **state)
{
    (void)state;
    use_fakes();
    struct tierprobe_config cfg = config(false);
    cfg.blocks = 32;
    cfg.test_after_write = corrupt;
    /* a payload byte: the timed read passes its header check, the verification catches it */
    struct corruption c = {"g2_g3", 5000, 0};
    cfg.test_arg = &c;
    size_t ok;
    struct tierprobe_result *r = run(&cfg, &ok);
    assert_int_equal(c.calls, 1);
    assert_measured(&r->rows[4], 32);
    assert_unmeasured(&r->rows[5], TIER_ERROR, "checksum mismatch");
    assert_measured(&r->rows[7], 32);
    free(r);
    /* the header's hash: the timed read sees another block */
    c = (struct corruption){"g2_g3", 9, 0};
    r = run(&cfg, &ok);
    assert_unmeasured(&r->rows[5], TIER_ERROR, "read back another block");
    free(r);
    /* through cuFile */
    c = (struct corruption){"g1_g3", 20000, 0};
    r = run(&cfg, &ok);
    assert_int_equal(c.calls, 1);
    assert_measured(&r->rows[5], 32);
    assert_measured(&r->rows[6], 32);
    assert_unmeasured(&r->rows[7], TIER_ERROR, "block 3 (hash");
    assert_unmeasured(&r->rows[7], TIER_ERROR, "checksum mismatch");
    free(r);
    c = (struct corruption){"g1_g3", 0, 0};
    r = run(&cfg, &ok);
    assert_unmeasured(&r->rows[7], TIER_ERROR, "block 3: read back no block header");
    free(r);
}

static void test_failed_write(void **state)
{
    (void)state;
    struct tierprobe_config cfg = config(true);
    cfg.test_fail_writes = 1;
    size_t ok;
    struct tierprobe_result *r = run(&cfg, &ok);
    assert_int_equal(ok, 0);
    assert_unmeasured(&r->rows[4], TIER_ERROR, "Input/output error");
    assert_unmeasured(&r->rows[5], TIER_ERROR, "not measured: the write pass failed");
    free(r);
}

static void test_interrupted(void **state)
{
    (void)state;
    volatile sig_atomic_t stop = 1;
    struct tierprobe_config cfg = config(false);
    cfg.stop = &stop;
    use_fakes();
    size_t ok;
    struct tierprobe_result *r = run(&cfg, &ok);
    assert_int_equal(ok, 0);
    for (size_t i = 0; i < TIERPROBE_MAX_ROWS; i++)
        assert_unmeasured(&r->rows[i], TIER_ERROR, "interrupted");
    free(r);
}

/* An engine holds the cache directory: the probe's own subdirectory is locked apart from it, and
 * the engine's lock and files stay. */
static void test_beside_an_engine(void **state)
{
    (void)state;
    struct disktier held;
    char err[ERR_LEN];
    assert_int_equal(disktier_open(&held, cache, BB, err), 0);
    unsigned char *blk = disktier_alloc(&held);
    assert_non_null(blk);
    memset(blk, 7, held.file_bytes);
    assert_int_equal(disktier_write(&held, 42, blk), 0);
    struct tierprobe_config cfg = config(true);
    size_t ok;
    struct tierprobe_result *r = run(&cfg, &ok);
    assert_int_equal(ok, 2);
    char lock[700];
    snprintf(lock, sizeof lock, "%s/.kvbench.lock", cache);
    assert_true(fs_exists(lock));
    assert_true(disktier_held(&held));
    assert_int_equal(disktier_read(&held, 42, blk), 0);
    assert_int_equal(blk[100], 7);
    free(r);
    free(blk);
    disktier_remove(&held, 42);
    disktier_close(&held);
}

static void test_breakeven(void **state)
{
    (void)state;
    struct tier_breakeven be;
    /* fixed 1 ms, R = 100k tokens/s, X = 10k tokens/s: L* = 0.001 / (1e-4 - 1e-5) = 11.1 */
    assert_int_equal(tierprobe_breakeven(1000, 1e5, 1e4, &be), 0);
    assert_false(be.never);
    assert_true(fabs(be.tokens - 0.001 / 9e-5) < 1e-9);
    /* at 1024 tokens: 0.1024 s recomputing, 0.001 + 0.01024 s onboarding */
    assert_true(fabs(be.speedup[0] - 0.1024 / 0.01124) < 1e-9);
    assert_true(be.speedup[3] > be.speedup[0]); /* the fixed cost weighs less on longer prefixes */
    for (size_t i = 0; i < TIERPROBE_BE_LENGTHS; i++)
        assert_true(be.speedup[i] < 10); /* never above R / X */
    /* R <= X: never */
    assert_int_equal(tierprobe_breakeven(1000, 5000, 1e4, &be), 0);
    assert_true(be.never);
    assert_true(isnan(be.tokens));
    assert_true(fabs(be.speedup[0] - 0.1024 / (0.001 + 1024.0 / 5000)) < 1e-9);
    assert_int_equal(tierprobe_breakeven(0, 1e4, 1e4, &be), 0);
    assert_true(be.never);
    /* no fixed cost: onboarding wins from the first token */
    assert_int_equal(tierprobe_breakeven(0, 2e4, 1e4, &be), 0);
    assert_true(be.tokens == 0);
    assert_true(fabs(be.speedup[2] - 2) < 1e-12);
    /* figures that are not numbers */
    assert_int_equal(tierprobe_breakeven(NAN, 1e5, 1e4, &be), -1);
    assert_int_equal(tierprobe_breakeven(1000, 1e5, 0, &be), -1);
    assert_int_equal(tierprobe_breakeven(-1, 1e5, 1e4, &be), -1);
    assert_int_equal(tierprobe_breakeven(1000, INFINITY, 1e4, &be), -1);
}

static void test_default_blocks(void **state)
{
    (void)state;
    /* every default is a multiple of the batch and at least one batch per worker (unless the
     * disk is nearly full) */
    size_t sizes[] = {64, 4096, 65536, 2u << 20, 5u << 20, 256u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = tierprobe_default_blocks(sizes[i], 16, 4, tmp);
        assert_int_equal(n % 16, 0);
        assert_true(n <= TIERPROBE_MAX_DEFAULT_BLOCKS);
    }
    struct statvfs v;
    assert_int_equal(statvfs(tmp, &v), 0);
    double free_b = (double)v.f_bavail * (double)v.f_frsize;
    if (free_b > 8.0 * (1 << 30)) { /* room for 1 GiB twice over: the 1 GiB rule decides */
        assert_int_equal(tierprobe_default_blocks(2u << 20, 16, 4, tmp), 512);
        assert_int_equal(tierprobe_default_blocks(65536, 16, 4, tmp), 16384);
        assert_int_equal(tierprobe_default_blocks(5u << 20, 16, 4, tmp), 208); /* 205 -> 208 */
        assert_int_equal(tierprobe_default_blocks(64, 16, 4, tmp), TIERPROBE_MAX_DEFAULT_BLOCKS);
        assert_int_equal(tierprobe_default_blocks(64u << 20, 16, 4, tmp), 64); /* 16 -> 64 */
        /* a directory that does not exist yet: its nearest ancestor's filesystem */
        char deep[700];
        snprintf(deep, sizeof deep, "%s/a/b/c", tmp);
        assert_int_equal(tierprobe_default_blocks(2u << 20, 16, 4, deep), 512);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_row_with_fakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_dir_unusable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupted_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_beside_an_engine, setup, teardown),
        cmocka_unit_test(test_breakeven),
        cmocka_unit_test_setup_teardown(test_default_blocks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
