/*
 * Unit tests for the KV manager with G1 in device memory (--g1 cuda), on the stand-in CUDA
 * runtime (tests/support/fakecuda.c, FAKECUDA_DEFER on: a copy happens only when its stream is
 * synchronised, so a buffer read or reused before its copy is waited for shows up as wrong
 * bytes): blocks round-trip G1 -> G2 -> G3 -> G1 with their bytes read back from the device and
 * checksummed; the copies are of block size, in batches of at most 16 on their streams; failed
 * copies and syncs become counted misses; the refusals at start; the disk tier without a host
 * tier (device -> pinned buffer -> disk); and the same workload on both backends gives the same
 * tier counters.
 */
#include "test_common.h"

#include "engine/kvbm.h"
#include "engine/metrics.h"
#include "model/blockhash.h"
#include "util/err.h"
#include "util/fs.h"

#include <fcntl.h>

#define BS    4    /* tokens per block */
#define BLOCK 8192 /* bytes per block */

static char *dir, logpath[4200];

static int setup(void **state)
{
    (void)state;
    dir = test_tmpdir();
    if (!dir || !getenv("FAKE_CUDART"))
        return -1;
    snprintf(logpath, sizeof logpath, "%s/cuda.log", dir);
    setenv("KVBENCH_CUDART", getenv("FAKE_CUDART"), 1);
    setenv("FAKECUDA_DEFER", "1", 1);
    setenv("FAKECUDA_LOG_SYNC", "1", 1);
    setenv("FAKECUDA_LOG", logpath, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv("FAKECUDA_FAIL_COPIES_AFTER");
    unsetenv("FAKECUDA_FAIL_SYNCS_AFTER");
    unsetenv("FAKECUDA_MEM_MB");
    fs_remove_tree(dir, NULL);
    free(dir);
    return 0;
}

/* path: the disk tier's directory, filled in (it must outlive the manager). */
static struct kvbm_config config(enum kvbm_g1 g1, enum kv_mode mode, size_t g1_blocks, size_t g2,
                                 size_t g3, bool filter, const char *sub, char path[4200])
{
    snprintf(path, 4200, "%s/%s", dir, sub);
    return (struct kvbm_config){
        .block_tokens = BS,
        .block_bytes = BLOCK,
        .g1_blocks = g1_blocks,
        .g2_blocks = g2,
        .g3_blocks = g3,
        .mode = mode,
        .disk_filter = filter,
        .disk_dir = path,
        .write_queue_depth = 4,
        .g1 = g1,
    };
}

static struct kvbm *make(enum kv_mode mode, size_t g1, size_t g2, size_t g3, bool filter)
{
    static char path[4200];
    struct kvbm_config cfg = config(KVBM_G1_CUDA, mode, g1, g2, g3, filter, "kvbm", path);
    struct kvbm *m = NULL;
    char err[ERR_LEN];
    if (kvbm_create(&cfg, &m, err) < 0)
        fail_msg("kvbm_create: %s", err);
    return m;
}

/* A prompt of n_blocks full blocks whose token ids start at base. */
static void hashes_for(uint32_t base, size_t n_blocks, uint64_t *out)
{
    uint32_t ids[128 * BS];
    assert_true(n_blocks <= 128);
    for (size_t i = 0; i < n_blocks * BS; i++)
        ids[i] = base + (uint32_t)i;
    assert_int_equal(blockhash_chain(ids, n_blocks * BS, BS, out), n_blocks);
}

/* Admit, register, release. Returns the blocks matched. */
static size_t run_seq(struct kvbm *m, const uint64_t *h, size_t n, struct kvbm_admit_result *out)
{
    struct kvbm_seq seq;
    struct kvbm_admit_result res;
    assert_int_equal(kvbm_admit(m, h, n, n, n, &seq, &res), 1);
    kvbm_register(m, &seq);
    size_t matched = seq.matched_blocks;
    kvbm_release(m, &seq);
    if (out)
        *out = res;
    return matched;
}

/* The block's bytes, read back from its G1 slot on the device, are the block's. */
static void assert_on_device(struct kvbm *m, const uint64_t *h, size_t n)
{
    void *buf = malloc(BLOCK);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        memset(buf, 0, BLOCK);
        assert_int_equal(kvbm_test_read_g1(m, h[i], buf), 0);
        assert_int_equal(kvblock_verify(buf, BLOCK, h[i]), 0);
    }
    free(buf);
}

/* The block's file on disk holds the block. */
static void assert_on_disk(struct kvbm *m, const uint64_t *h, size_t n)
{
    void *buf = malloc(BLOCK);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        kvbm_block_path(m, h[i], path, sizeof path);
        int fd = open(path, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, buf, BLOCK, 0), BLOCK);
        close(fd);
        assert_int_equal(kvblock_verify(buf, BLOCK, h[i]), 0);
    }
    free(buf);
}

struct copylog {
    size_t h2d, d2h, other_size, syncs, synced, max_batch;
    unsigned streams_seen; /* bit per stream id (mod 32) */
};

/* What FAKECUDA_LOG recorded since it was last read (then emptied). */
static struct copylog read_log(void)
{
    struct copylog l = {0};
    FILE *f = fopen(logpath, "r");
    if (!f)
        return l;
    char what[16];
    size_t a, b;
    char line[128];
    while (fgets(line, sizeof line, f)) {
        int n = sscanf(line, "%15s %zu %zu", what, &a, &b);
        if (n == 3 && strcmp(what, "sync") == 0) {
            l.syncs++;
            l.synced += b;
            l.max_batch = b > l.max_batch ? b : l.max_batch;
            l.streams_seen |= 1u << (a % 32);
        } else if (n == 2 && strcmp(what, "h2d") == 0) {
            l.h2d++;
            l.other_size += a != BLOCK;
        } else if (n == 2 && strcmp(what, "d2h") == 0) {
            l.d2h++;
            l.other_size += a != BLOCK;
        } else {
            fail_msg("unexpected FAKECUDA_LOG line: %s", line);
        }
    }
    fclose(f);
    unlink(logpath);
    return l;
}

static void test_round_trip_through_every_tier(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_CPU_DISK, 4, 4, 64, false);
    read_log();
    uint64_t a[4], b[4];
    hashes_for(10, 4, a);
    hashes_for(20, 4, b);
    run_seq(m, a, 4, NULL);
    kvbm_flush(m);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.g1_fill_bytes, 4 * BLOCK);    /* the device's own fills */
    assert_int_equal(cn.g1_copy_bytes[1], 4 * BLOCK); /* G1 -> G2, a real copy each */
    assert_int_equal(cn.g1_copy_bytes[0], 0);
    assert_int_equal(cn.offload_d2h, 4);
    assert_int_equal(cn.offload_h2d, 4);
    assert_int_equal(cn.g1_device_bytes, 4 * BLOCK);
    struct copylog l = read_log();
    assert_int_equal(l.h2d, 4);
    assert_int_equal(l.d2h, 4);
    assert_int_equal(l.other_size, 0);
    assert_on_device(m, a, 4);
    assert_on_disk(m, a, 4); /* G2's bytes came from the device */

    /* b pushes a out of G1 and G2: a is on disk only, then comes back through the device */
    run_seq(m, b, 4, NULL);
    kvbm_flush(m);
    assert_int_equal(kvbm_block_tiers(m, a[0]), 4);
    assert_int_equal(kvbm_test_read_g1(m, a[0], NULL), -1); /* not in G1 */
    struct kvbm_admit_result res;
    assert_int_equal(run_seq(m, a, 4, &res), 4);
    assert_int_equal(res.g3_onboards, 4);
    assert_int_equal(res.g2_bytes, 0);
    assert_on_device(m, a, 4);
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.onboard_d2d, 4);
    assert_int_equal(cn.prefetches, 4);
    assert_int_equal(cn.g1_copy_bytes[0], 4 * BLOCK); /* staging -> G1 */
    assert_int_equal(cn.g1_copy_batches[0], 1);
    assert_int_equal(cn.checksum_failures + cn.g1_copy_errors, 0);
    kvbm_destroy(m, false);
}

static void test_host_onboard_copies_from_g2(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_CPU_ONLY, 4, 8, 0, true);
    uint64_t a[4], b[4];
    hashes_for(10, 4, a);
    hashes_for(20, 4, b);
    run_seq(m, a, 4, NULL);
    run_seq(m, b, 4, NULL); /* a out of G1, still in G2 */
    assert_int_equal(kvbm_block_tiers(m, a[0]), 2);
    struct kvbm_admit_result res;
    assert_int_equal(run_seq(m, a, 4, &res), 4);
    assert_int_equal(res.g2_onboards, 4);
    assert_int_equal(res.g2_bytes, 4 * BLOCK);
    assert_true(res.g1_h2d_s >= 0);
    assert_on_device(m, a, 4);
    /* a corrupt G2 copy is refused before any copy: a miss, never served */
    run_seq(m, b, 4, NULL);
    assert_int_equal(kvbm_test_corrupt_g2(m, a[1]), 0);
    assert_int_equal(run_seq(m, a, 4, &res), 1);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.checksum_failures, 1);
    assert_int_equal(cn.onboard_h2d, 9); /* a 4, b 4 (pushed out of G1 by a), a[0] */
    assert_on_device(m, a, 4);           /* recomputed: filled into G1 again */
    kvbm_destroy(m, false);
}

static void test_batches_of_sixteen_on_four_streams(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_CPU_ONLY, 96, 256, 0, true);
    read_log();
    uint64_t a[40], b[96];
    hashes_for(1000, 40, a);
    hashes_for(5000, 96, b);
    run_seq(m, a, 40, NULL);
    struct copylog l = read_log();
    assert_int_equal(l.h2d, 40); /* fills */
    assert_int_equal(l.d2h, 40); /* offloads to G2 */
    assert_int_equal(l.other_size, 0);
    assert_int_equal(l.synced, 80); /* every copy was waited for */
    assert_true(l.max_batch <= 16);
    assert_int_equal(l.syncs, 6); /* 16 + 16 + 8, each way */
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.g1_copy_batches[1], 3);
    assert_int_equal(cn.g1_copy_batches[0], 0); /* fills are not onboards */

    run_seq(m, b, 96, NULL); /* a out of G1 (96), still in G2 (256) */
    read_log();
    struct kvbm_admit_result res;
    assert_int_equal(run_seq(m, a, 40, &res), 40);
    assert_int_equal(res.g2_onboards, 40);
    l = read_log();
    assert_int_equal(l.h2d, 40);
    assert_int_equal(l.d2h, 0); /* a is in G2 already */
    assert_true(l.max_batch <= 16);
    assert_int_equal(l.synced, 40);
    assert_int_equal(__builtin_popcount(l.streams_seen), 3); /* batch i on stream i % 4 */
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.g1_copy_batches[0], 3);
    assert_int_equal(cn.g1_copy_bytes[0], 40 * BLOCK);
    assert_on_device(m, a, 40);
    read_log(); /* (the reads back are copies too) */

    /* five batches each way: the fifth waits for the first one's stream before it goes out */
    uint64_t c[80];
    hashes_for(90000, 80, c);
    run_seq(m, c, 80, NULL);
    l = read_log();
    assert_int_equal(l.h2d, 80);
    assert_int_equal(l.d2h, 80);
    assert_int_equal(l.max_batch, 16);
    assert_int_equal(l.syncs, 10);
    assert_int_equal(l.synced, 160);
    assert_int_equal(__builtin_popcount(l.streams_seen), 4);
    assert_on_device(m, c, 80);
    kvbm_destroy(m, false);
}

/* A host tier smaller than one registration: a slot a queued copy writes is reused only after
 * that copy and what follows it (the disk write from G2) are done. */
static void test_small_host_tier_waits_for_its_copies(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_CPU_DISK, 24, 4, 64, false);
    uint64_t a[20];
    hashes_for(300, 20, a);
    run_seq(m, a, 20, NULL);
    kvbm_flush(m);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.offload_d2h, 20);
    assert_int_equal(cn.evictions_g2, 16);
    assert_int_equal(cn.offload_h2d, 20);
    assert_on_disk(m, a, 20);
    assert_int_equal(kvbm_block_tiers(m, a[19]), 7);
    assert_int_equal(kvbm_block_tiers(m, a[0]), 5);
    kvbm_destroy(m, false);
}

static void test_disk_without_host_tier(void **state)
{
    (void)state;
    /* no G2: blocks go device -> pinned write buffer -> disk; 12 blocks through 4 buffers */
    struct kvbm *m = make(KV_MODE_CPU_DISK, 16, 0, 64, false);
    read_log();
    uint64_t a[12], b[16];
    hashes_for(40, 12, a);
    hashes_for(4000, 16, b);
    run_seq(m, a, 12, NULL);
    kvbm_flush(m);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.offload_d2d, 12);
    assert_int_equal(cn.offload_d2h, 0);
    assert_int_equal(cn.g1_copy_bytes[1], 12 * BLOCK);
    assert_on_disk(m, a, 12);
    struct copylog l = read_log();
    assert_int_equal(l.d2h, 12);
    assert_int_equal(l.h2d, 12);
    run_seq(m, b, 16, NULL); /* a out of G1 */
    kvbm_flush(m);
    struct kvbm_admit_result res;
    assert_int_equal(run_seq(m, a, 12, &res), 12);
    assert_int_equal(res.g3_onboards, 12);
    assert_on_device(m, a, 12);
    kvbm_destroy(m, false);
}

static void test_failed_copies_are_counted_misses(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_CPU_ONLY, 4, 8, 0, true);
    uint64_t a[4], b[4];
    hashes_for(10, 4, a);
    hashes_for(20, 4, b);
    run_seq(m, a, 4, NULL);
    run_seq(m, b, 4, NULL);
    /* two copies go through, then the device fails every copy: the onboard of blocks 2 and 3
     * fails (the prefix ends at 2), and their recomputed fills fail too (they stay private) */
    setenv("FAKECUDA_FAIL_COPIES_AFTER", "2", 1);
    struct kvbm_admit_result res;
    assert_int_equal(run_seq(m, a, 4, &res), 2);
    assert_int_equal(res.g2_onboards, 2);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.g1_copy_errors, 4);
    assert_int_equal(cn.onboard_h2d, 2);
    assert_int_equal(cn.g1_used, 2); /* a[0], a[1] cached; a[2], a[3] freed */
    assert_int_equal(kvbm_block_tiers(m, a[2]), 2);
    unsetenv("FAKECUDA_FAIL_COPIES_AFTER");
    assert_on_device(m, a, 2);

    /* the device works again: a comes back, from G1 and G2 */
    assert_int_equal(run_seq(m, a, 4, &res), 4);
    assert_int_equal(res.g1_hits, 2);
    assert_int_equal(res.g2_onboards, 2);
    assert_on_device(m, a, 4);

    /* a failed sync loses its whole batch: b's fills and their offloads */
    setenv("FAKECUDA_FAIL_SYNCS_AFTER", "0", 1);
    uint64_t c[3];
    hashes_for(30, 3, c);
    assert_int_equal(run_seq(m, c, 3, NULL), 0);
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.g1_copy_errors, 7);
    assert_int_equal(kvbm_block_tiers(m, c[0]), 0);
    unsetenv("FAKECUDA_FAIL_SYNCS_AFTER");
    assert_int_equal(run_seq(m, c, 3, NULL), 0);
    assert_int_equal(run_seq(m, c, 3, NULL), 3);
    assert_on_device(m, c, 3);
    kvbm_destroy(m, false);
}

static void test_refusals_at_start(void **state)
{
    (void)state;
    char err[ERR_LEN];
    struct kvbm *m = NULL;
    char path[4200];
    struct kvbm_config cfg = config(KVBM_G1_CUDA, KV_MODE_CPU_ONLY, 256, 8, 0, true, "r", path);
    setenv("FAKECUDA_MEM_MB", "1", 1);
    assert_int_equal(kvbm_g1_preflight(&cfg, err), KVBM_G1_NO_ROOM);
    /* (the free figure is what earlier tests left allocated: all of it when they freed it) */
    assert_non_null(strstr(err, "G1 needs 256 blocks x 8192 bytes = 2.0 MiB of device memory, but "
                                "CUDA device 0 has "));
    assert_non_null(strstr(err, " MiB free of 1.0 MiB"));
    assert_int_equal(kvbm_create(&cfg, &m, err), -1);
    assert_null(m);
    assert_non_null(strstr(err, "G1 needs 256 blocks"));
    unsetenv("FAKECUDA_MEM_MB");

    setenv("FAKECUDA_DEVICES", "0", 1);
    assert_int_equal(kvbm_g1_preflight(&cfg, err), -1);
    assert_non_null(strstr(err, "no CUDA device: "));
    assert_int_equal(kvbm_create(&cfg, &m, err), -1);
    unsetenv("FAKECUDA_DEVICES");
    cfg.cuda_device = 3;
    assert_int_equal(kvbm_create(&cfg, &m, err), -1);
    assert_string_equal(err, "no CUDA device 3: this machine has 1 (0..0)");
    cfg.cuda_device = 0;

    setenv("KVBENCH_CUDART", "/nonexistent/libcudart.so", 1);
    assert_int_equal(kvbm_g1_preflight(&cfg, err), -1);
    assert_non_null(strstr(err, "no CUDA runtime: KVBENCH_CUDART=/nonexistent/libcudart.so"));
    /* the model needs no runtime */
    cfg.g1 = KVBM_G1_MODEL;
    assert_int_equal(kvbm_g1_preflight(&cfg, err), 0);
    assert_int_equal(kvbm_create(&cfg, &m, err), 0);
    char what[256];
    kvbm_g1_describe(m, what, sizeof what);
    assert_non_null(strstr(what, "modelled"));
    kvbm_destroy(m, false);
    setenv("KVBENCH_CUDART", getenv("FAKE_CUDART"), 1);

    cfg.g1 = KVBM_G1_CUDA;
    assert_int_equal(kvbm_create(&cfg, &m, err), 0);
    kvbm_g1_describe(m, what, sizeof what);
    assert_non_null(strstr(what, "CUDA device 0 ("));
    assert_non_null(strstr(what, getenv("FAKE_CUDART")));
    assert_non_null(strstr(what, "256 blocks, 2.0 MiB of device memory"));
    kvbm_destroy(m, false);
}

/* The same workload on both backends: every tier counter agrees (the G3 tier is large enough
 * that the order disk writes complete in does not matter). */
static void test_backends_agree(void **state)
{
    (void)state;
    static const struct {
        enum kv_mode mode;
        size_t g1, g2, g3;
        bool filter;
    } CASES[] = {
        {KV_MODE_CPU_DISK, 12, 8, 4096, true},  {KV_MODE_CPU_DISK, 12, 8, 4096, false},
        {KV_MODE_CPU_DISK, 10, 0, 4096, false}, {KV_MODE_CPU_ONLY, 8, 20, 0, true},
        {KV_MODE_OFF, 9, 0, 0, true},
    };
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        struct kvbm *mm[2];
        char paths[2][4200];
        for (int b = 0; b < 2; b++) {
            struct kvbm_config cfg =
                config(b ? KVBM_G1_CUDA : KVBM_G1_MODEL, CASES[k].mode, CASES[k].g1, CASES[k].g2,
                       CASES[k].g3, CASES[k].filter, b ? "agree-cuda" : "agree-model", paths[b]);
            char err[ERR_LEN];
            if (kvbm_create(&cfg, &mm[b], err) < 0)
                fail_msg("kvbm_create: %s", err);
        }
        uint64_t seed = 42 + k;
        for (int step = 0; step < 60; step++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t prefix = (uint32_t)(seed >> 33) % 6;
            size_t n = 1 + (size_t)(seed >> 40) % (CASES[k].g1 - 1);
            uint64_t h[64];
            hashes_for(prefix * 100000, n, h);
            size_t got[2];
            for (int b = 0; b < 2; b++) {
                got[b] = run_seq(mm[b], h, n, NULL);
                kvbm_flush(mm[b]);
            }
            assert_int_equal(got[0], got[1]);
            struct kvbm_counters c[2];
            kvbm_get_counters(mm[0], &c[0]);
            kvbm_get_counters(mm[1], &c[1]);
            /* the tier counters come first in the struct, up to the G1 copy figures */
            size_t same = offsetof(struct kvbm_counters, g1_copy_bytes);
            if (memcmp(&c[0], &c[1], same) != 0)
                fail_msg("case %zu step %d: the backends' counters differ", k, step);
            assert_int_equal(c[1].g1_copy_errors, 0);
        }
        kvbm_destroy(mm[0], false);
        kvbm_destroy(mm[1], false);
    }
}

static void test_metrics_families(void **state)
{
    (void)state;
    struct kvbm_counters c = {.g1_copy_bytes = {8192, 16384},
                              .g1_copy_batches = {1, 2},
                              .g1_copy_s = {0.5, 0.25},
                              .g1_copy_errors = 3,
                              .g1_fill_bytes = 4096,
                              .g1_device_bytes = 65536};
    struct kvbm_gauges g = {0};
    struct kvbm_config cfg = {
        .mode = KV_MODE_CPU_DISK, .g1_blocks = 8, .g1 = KVBM_G1_CUDA, .cuda_device = 1};
    struct buf b = BUF_INIT;
    metrics_write_kvbm(&c, &g, &cfg, &b);
    const char *t = buf_cstr(&b);
    assert_non_null(strstr(t, "\nkvbench_g1_backend_info{backend=\"cuda\",device=\"1\"} 1\n"));
    assert_non_null(strstr(t, "\nkvbench_g1_h2d_bytes_total 8192\n"));
    assert_non_null(strstr(t, "\nkvbench_g1_d2h_bytes_total 16384\n"));
    assert_non_null(strstr(t, "\nkvbench_g1_h2d_seconds_total 0.5\n"));
    assert_non_null(strstr(t, "\nkvbench_g1_d2h_batches_total 2\n"));
    assert_non_null(strstr(t, "\nkvbench_g1_copy_errors_total 3\n"));
    assert_non_null(strstr(t, "\nkvbench_g1_fill_bytes_total 4096\n"));
    assert_non_null(strstr(t, "\nkvbench_g1_device_bytes 65536\n"));
    assert_non_null(strstr(t, "# TYPE kvbench_g1_h2d_seconds_total counter\n"));
    buf_free(&b);
    struct kvbm_counters zero = {0};
    cfg.g1 = KVBM_G1_MODEL;
    metrics_write_kvbm(&zero, &g, &cfg, &b);
    t = buf_cstr(&b);
    assert_non_null(strstr(t, "\nkvbench_g1_backend_info{backend=\"model\",device=\"none\"} 1\n"));
    /* the model copies nothing: no copy families at all, never zeros */
    assert_null(strstr(t, "kvbench_g1_h2d_bytes_total"));
    assert_null(strstr(t, "kvbench_g1_device_bytes"));
    buf_free(&b);
}

/* Pinning more host memory for G2 fails: G2 keeps what it has and is not asked to grow again on
 * every block (each try is a large pin under the manager's lock). */
static void test_g2_pin_failure_caps_the_tier(void **state)
{
    (void)state;
    unlink(logpath);
    setenv("FAKECUDA_PIN_MAX_MB", "8", 1); /* the staging fits; a 64 MiB G2 chunk does not */
    struct kvbm *m = make(KV_MODE_CPU_ONLY, 64, 8192, 0, false);
    uint64_t h[8];
    for (uint32_t i = 0; i < 20; i++) {
        hashes_for(1000 + i * 100, 8, h);
        assert_int_equal(run_seq(m, h, 8, NULL), 0);
    }
    struct kvbm_counters c;
    kvbm_get_counters(m, &c);
    assert_int_equal(c.g2_blocks, 0);
    kvbm_destroy(m, false);
    unsetenv("FAKECUDA_PIN_MAX_MB");
    struct buf b = BUF_INIT;
    assert_int_equal(fs_read_file(logpath, &b, 1 << 24, NULL), 0);
    size_t fails = 0;
    for (const char *p = b.data; (p = strstr(p, "pinfail ")); p++)
        fails++;
    assert_int_equal(fails, 1); /* tried once, not once per block */
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_g2_pin_failure_caps_the_tier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_through_every_tier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_onboard_copies_from_g2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_of_sixteen_on_four_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_host_tier_waits_for_its_copies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_without_host_tier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_copies_are_counted_misses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backends_agree, setup, teardown),
        cmocka_unit_test(test_metrics_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
