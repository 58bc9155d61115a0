/*
 * Unit tests for the engine's KV block manager: the hash chain, every tier move and its counter,
 * LRU order, the disk offload filter, checksum failures in host memory and on disk (detected,
 * counted, treated as a miss), failed disk writes (injected and a real EFBIG), block files that
 * are not regular files (a FIFO, a symbolic link: refused without blocking, left in place), and
 * the directory lock (held with its lock file deleted; a removed directory made again and locked,
 * or given up when another holder has it).
 */
#include "test_common.h"

#include "engine/disktier.h"
#include "engine/kvbm.h"
#include "model/blockhash.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/fs.h"
#include "model/tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define BS 4 /* tokens per block */

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = test_tmpdir();
    return dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fs_remove_tree(dir, NULL);
    free(dir);
    return 0;
}

static struct kvbm *make(enum kv_mode mode, size_t g1, size_t g2, size_t g3, bool filter)
{
    struct kvbm_config cfg = {
        .block_tokens = BS,
        .block_bytes = 8192,
        .g1_blocks = g1,
        .g2_blocks = g2,
        .g3_blocks = g3,
        .mode = mode,
        .disk_filter = filter,
        .disk_dir = dir,
        .write_queue_depth = 4,
    };
    struct kvbm *m = NULL;
    char err[ERR_LEN];
    if (kvbm_create(&cfg, &m, err) < 0)
        fail_msg("kvbm_create: %s", err);
    return m;
}

/* A prompt of n_blocks full blocks whose token ids start at `base`. */
static void hashes_for(uint32_t base, size_t n_blocks, uint64_t *out)
{
    uint32_t ids[256];
    for (size_t i = 0; i < n_blocks * BS; i++)
        ids[i] = base + (uint32_t)i;
    assert_int_equal(blockhash_chain(ids, n_blocks * BS, BS, out), n_blocks);
}

/* Run one whole sequence: admit, (prefill) register, release. Returns matched blocks. */
static size_t run_seq(struct kvbm *m, const uint64_t *h, size_t n_blocks, size_t extra_blocks,
                      struct kvbm_admit_result *res_out)
{
    struct kvbm_seq seq;
    struct kvbm_admit_result res;
    assert_int_equal(kvbm_admit(m, h, n_blocks, n_blocks, n_blocks + extra_blocks, &seq, &res), 1);
    kvbm_register(m, &seq);
    size_t matched = seq.matched_blocks;
    kvbm_release(m, &seq);
    if (res_out)
        *res_out = res;
    return matched;
}

static void test_hash_chain_is_prefix_sensitive(void **state)
{
    (void)state;
    uint32_t a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint32_t b[8] = {1, 2, 3, 4, 5, 6, 7, 9};
    uint32_t c[8] = {0, 2, 3, 4, 5, 6, 7, 8};
    uint64_t ha[2], hb[2], hc[2];
    blockhash_chain(a, 8, 4, ha);
    blockhash_chain(b, 8, 4, hb);
    blockhash_chain(c, 8, 4, hc);
    assert_true(ha[0] == hb[0]); /* same first block */
    assert_true(ha[1] != hb[1]);
    assert_true(ha[0] != hc[0]);
    assert_true(ha[1] != hc[1]); /* equal block contents, different parent */
    assert_true(ha[0] == blockhash_next(0, a, 4));
    assert_true(ha[1] == blockhash_next(ha[0], a + 4, 4));
    /* partial blocks are not hashed */
    assert_int_equal(blockhash_chain(a, 7, 4, ha), 1);
    /* stable across runs: a golden value */
    assert_true(blockhash_next(0, a, 4) == blockhash_next(0, a, 4));
}

static void test_block_bytes_checksum(void **state)
{
    (void)state;
    void *b = NULL;
    assert_int_equal(posix_memalign(&b, 4096, 8192), 0);
    kvblock_fill(b, 8192, 42);
    assert_int_equal(kvblock_verify(b, 8192, 42), 0);
    assert_int_equal(kvblock_verify(b, 8192, 43), -1); /* another block's hash */
    ((unsigned char *)b)[5000] ^= 1;
    assert_int_equal(kvblock_verify(b, 8192, 42), -1);
    free(b);
}

static void test_g1_reuse_and_lru(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_OFF, 8, 0, 0, true);
    uint64_t a[4], b[4], c[4];
    hashes_for(1000, 4, a);
    hashes_for(2000, 4, b);
    hashes_for(3000, 4, c);
    assert_int_equal(run_seq(m, a, 4, 0, NULL), 0);
    assert_int_equal(run_seq(m, a, 4, 0, NULL), 4); /* reuse from G1 */
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.matched_tokens, 4 * BS);
    assert_int_equal(cn.offload_d2h, 0); /* mode off: no offload */
    run_seq(m, b, 4, 0, NULL);           /* G1 (8) now holds a and b */
    run_seq(m, c, 4, 0, NULL);           /* evicts a (least recently used) */
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.evictions_g1, 4);
    assert_int_equal(kvbm_block_tiers(m, a[0]), 0);
    assert_int_equal(kvbm_block_tiers(m, b[0]), 1);
    assert_int_equal(run_seq(m, b, 4, 0, NULL), 4);
    assert_int_equal(run_seq(m, a, 4, 0, NULL), 0); /* gone: recomputed */
    kvbm_destroy(m, false);
}

static void test_g1_capacity_admission(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_OFF, 8, 0, 0, true);
    uint64_t a[4], b[4];
    hashes_for(1, 4, a);
    hashes_for(100, 4, b);
    struct kvbm_seq s1, s2, s3;
    struct kvbm_admit_result r;
    assert_int_equal(kvbm_admit(m, a, 4, 4, 6, &s1, &r), 1);
    /* 6 of 8 reserved by a running sequence: b needs 4 and must wait */
    assert_int_equal(kvbm_admit(m, b, 4, 4, 4, &s2, &r), 0);
    /* more than the whole G1 never fits */
    assert_int_equal(kvbm_admit(m, b, 4, 4, 9, &s3, &r), -1);
    kvbm_register(m, &s1);
    kvbm_release(m, &s1);
    assert_int_equal(kvbm_admit(m, b, 4, 4, 4, &s2, &r), 1); /* a's cached blocks are evicted */
    kvbm_register(m, &s2);
    kvbm_release(m, &s2);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.g1_used, 8);
    kvbm_destroy(m, false);
}

static void test_offload_chain_and_onboards(void **state)
{
    (void)state;
    /* G1 4 blocks, G2 4 blocks, G3 64 blocks, filter off: every block goes all the way down */
    struct kvbm *m = make(KV_MODE_CPU_DISK, 4, 4, 64, false);
    uint64_t a[4], b[4], c[4];
    hashes_for(10, 4, a);
    hashes_for(20, 4, b);
    hashes_for(30, 4, c);
    run_seq(m, a, 4, 0, NULL);
    kvbm_flush(m);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.offload_d2h, 4);
    assert_int_equal(cn.offload_h2d, 4);
    assert_int_equal(cn.offload_d2d, 0);
    assert_int_equal(cn.disk_bytes_written, 4 * 8192);
    char path[4096];
    kvbm_block_path(m, a[2], path, sizeof path);
    assert_true(fs_exists(path));
    assert_int_equal(kvbm_block_tiers(m, a[0]), 7); /* G1 + G2 + G3 */

    /* b pushes a out of G1 and G2: a lives on disk only */
    run_seq(m, b, 4, 0, NULL);
    kvbm_flush(m);
    assert_int_equal(kvbm_block_tiers(m, a[0]), 4);
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.evictions_g1, 4);
    assert_int_equal(cn.evictions_g2, 4);

    /* a again: all four onboard from disk (d2d), and are prefetched into G2 */
    struct kvbm_admit_result res;
    struct kvbm_seq seq;
    assert_int_equal(kvbm_admit(m, a, 4, 4, 4, &seq, &res), 1);
    assert_int_equal(res.matched_blocks, 4);
    assert_int_equal(res.g3_onboards, 4);
    assert_true(res.g3_read_s > 0);
    kvbm_register(m, &seq);
    kvbm_release(m, &seq);
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.onboard_d2d, 4);
    assert_int_equal(cn.onboard_h2d, 0);
    assert_int_equal(cn.prefetches, 4);
    assert_int_equal(cn.disk_bytes_read, 4 * 8192);
    assert_int_equal(cn.matched_tokens, 4 * BS);
    struct kvbm_gauges g;
    kvbm_get_gauges(m, &g);
    assert_true(g.have_fetch);
    assert_true(g.fetch_p50_ms > 0 && g.fetch_p99_ms >= g.fetch_p50_ms);
    assert_true(g.disk_hit_rate > 0);

    /* c pushes a out of G1 only (a is in G2 after the prefetch... and b's blocks go) */
    run_seq(m, c, 4, 0, NULL);
    kvbm_flush(m);
    assert_int_equal(kvbm_block_tiers(m, a[0]) & 1, 0);
    /* a is still in G2? G2 (4) now holds c: a was evicted from G2 as well */
    kvbm_destroy(m, false);
    assert_false(fs_exists(path)); /* files removed on destroy */
}

static void test_host_onboard_h2d(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_CPU_ONLY, 4, 8, 0, true);
    uint64_t a[4], b[4];
    hashes_for(10, 4, a);
    hashes_for(20, 4, b);
    run_seq(m, a, 4, 0, NULL);
    run_seq(m, b, 4, 0, NULL); /* a out of G1, still in G2 (8) */
    assert_int_equal(kvbm_block_tiers(m, a[0]), 2);
    struct kvbm_admit_result res;
    assert_int_equal(run_seq(m, a, 4, 0, &res), 4);
    assert_int_equal(res.g2_onboards, 4);
    assert_int_equal(res.g2_bytes, 4 * 8192);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.onboard_h2d, 4);
    assert_int_equal(cn.offload_h2d, 0); /* no disk tier in cpu_only */
    assert_int_equal(cn.host_hits, 4);
    kvbm_destroy(m, false);
}

static void test_disk_filter_second_sighting(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_CPU_DISK, 8, 16, 64, true);
    uint64_t a[2];
    hashes_for(500, 2, a);
    run_seq(m, a, 2, 0, NULL);
    kvbm_flush(m);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.offload_d2h, 2);
    assert_int_equal(cn.offload_h2d, 0); /* seen once: stays off disk */
    run_seq(m, a, 2, 0, NULL);           /* seen twice: offloaded to disk */
    kvbm_flush(m);
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.offload_h2d, 2);
    assert_int_equal(cn.offload_d2h, 2); /* already in G2: not copied again */
    kvbm_destroy(m, false);
}

static void test_d2d_without_host_tier(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_CPU_DISK, 8, 0, 64, false);
    uint64_t a[2];
    hashes_for(700, 2, a);
    run_seq(m, a, 2, 0, NULL);
    kvbm_flush(m);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.offload_d2h, 0);
    assert_int_equal(cn.offload_d2d, 2);
    assert_int_equal(kvbm_block_tiers(m, a[1]), 5);
    kvbm_destroy(m, false);
}

static void test_g3_lru_eviction_removes_files(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_CPU_DISK, 4, 4, 4, false);
    uint64_t a[4], b[4];
    hashes_for(1, 4, a);
    hashes_for(2000, 4, b);
    run_seq(m, a, 4, 0, NULL);
    kvbm_flush(m);
    run_seq(m, b, 4, 0, NULL);
    kvbm_flush(m);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.evictions_g3, 4);
    assert_int_equal(cn.g3_blocks, 4);
    char path[4096];
    kvbm_block_path(m, a[0], path, sizeof path);
    assert_false(fs_exists(path));
    kvbm_block_path(m, b[0], path, sizeof path);
    assert_true(fs_exists(path));
    /* a is gone from every tier */
    assert_int_equal(run_seq(m, a, 4, 0, NULL), 0);
    kvbm_destroy(m, false);
}

static void test_checksum_failure_host(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_CPU_ONLY, 4, 8, 0, true);
    uint64_t a[4], b[4];
    hashes_for(10, 4, a);
    hashes_for(20, 4, b);
    run_seq(m, a, 4, 0, NULL);
    run_seq(m, b, 4, 0, NULL);
    assert_int_equal(kvbm_test_corrupt_g2(m, a[2]), 0);
    struct kvbm_admit_result res;
    /* blocks 0 and 1 onboard; block 2 fails its checksum: the prefix ends there */
    assert_int_equal(run_seq(m, a, 4, 0, &res), 2);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.checksum_failures, 1);
    assert_int_equal(cn.onboard_h2d, 2);
    assert_int_equal(cn.matched_tokens, 2 * BS);
    kvbm_destroy(m, false);
}

static void test_checksum_failure_disk(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_CPU_DISK, 4, 4, 64, false);
    uint64_t a[4], b[4];
    hashes_for(10, 4, a);
    hashes_for(20, 4, b);
    run_seq(m, a, 4, 0, NULL);
    kvbm_flush(m);
    run_seq(m, b, 4, 0, NULL);
    kvbm_flush(m);
    /* flip a byte of block 1's file on disk */
    char path[4096];
    kvbm_block_path(m, a[1], path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char byte;
    assert_int_equal(pread(fd, &byte, 1, 3000), 1);
    byte ^= 0xff;
    assert_int_equal(pwrite(fd, &byte, 1, 3000), 1);
    close(fd);
    struct kvbm_admit_result res;
    assert_int_equal(run_seq(m, a, 4, 0, &res), 1);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.checksum_failures, 1);
    assert_int_equal(cn.onboard_d2d, 1);
    /* The bad copy was dropped from G3; the block was recomputed and offloaded again, so once
     * the writes are done the file holds the block's correct bytes. */
    kvbm_flush(m);
    assert_true(fs_exists(path));
    void *buf = NULL;
    assert_int_equal(posix_memalign(&buf, 4096, 8192), 0);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, 8192, 0), 8192);
    close(fd);
    assert_int_equal(kvblock_verify(buf, 8192, a[1]), 0);
    free(buf);
    kvbm_destroy(m, false);
}

static void test_disk_write_failures(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_CPU_DISK, 8, 8, 64, false);
    kvbm_test_fail_disk_writes(m, 2);
    uint64_t a[4];
    hashes_for(10, 4, a);
    run_seq(m, a, 4, 0, NULL);
    kvbm_flush(m);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.disk_write_errors, 2);
    assert_int_equal(cn.offload_h2d, 2);
    assert_int_equal(cn.g3_blocks, 2);
    /* serving goes on: the blocks are still reusable from G1 */
    assert_int_equal(run_seq(m, a, 4, 0, NULL), 4);
    kvbm_destroy(m, false);
}

static void test_disk_full_real_efbig(void **state)
{
    (void)state;
    /* A real write failure: a file-size limit below one block makes write() fail (EFBIG). */
    struct kvbm *m = make(KV_MODE_CPU_DISK, 8, 8, 64, false);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    uint64_t a[2];
    hashes_for(900, 2, a);
    run_seq(m, a, 2, 0, NULL);
    kvbm_flush(m);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.disk_write_errors, 2);
    assert_int_equal(cn.g3_blocks, 0);
    char path[4096];
    kvbm_block_path(m, a[0], path, sizeof path);
    assert_false(fs_exists(path)); /* no partial file left */
    kvbm_destroy(m, false);
}

static void test_prefix_partial_match(void **state)
{
    (void)state;
    struct kvbm *m = make(KV_MODE_OFF, 16, 0, 0, true);
    uint32_t ids[16];
    for (int i = 0; i < 16; i++)
        ids[i] = (uint32_t)i;
    uint64_t h1[4], h2[4];
    blockhash_chain(ids, 16, BS, h1);
    ids[9] = 999; /* diverge in block 2 */
    blockhash_chain(ids, 16, BS, h2);
    run_seq(m, h1, 4, 0, NULL);
    assert_int_equal(run_seq(m, h2, 4, 0, NULL), 2);
    /* n_matchable limits reuse (the engine always computes one token) */
    struct kvbm_seq seq;
    struct kvbm_admit_result res;
    assert_int_equal(kvbm_admit(m, h1, 4, 3, 4, &seq, &res), 1);
    assert_int_equal(seq.matched_blocks, 3);
    kvbm_register(m, &seq);
    kvbm_release(m, &seq);
    kvbm_destroy(m, false);
}

static void test_disktier_direct_and_stale_cleanup(void **state)
{
    (void)state;
    /* A stale block file from an earlier engine (a real block), a file named like one that is
     * not (another program's), and an unrelated file: only the first may go. */
    char stale[4096], fake[4096], other[4096], err[ERR_LEN];
    snprintf(stale, sizeof stale, "%s/kvbench-00000000000000ff.kvblk", dir);
    snprintf(fake, sizeof fake, "%s/kvbench-00000000000000fe.kvblk", dir);
    snprintf(other, sizeof other, "%s/notes.txt", dir);
    char block[4096];
    kvblock_fill(block, sizeof block, 0xff);
    assert_int_equal(fs_write_atomic(stale, block, sizeof block, err), 0);
    kvblock_fill(block, sizeof block, 0xfd); /* a block, but not of the hash its name says */
    assert_int_equal(fs_write_atomic(fake, block, sizeof block, err), 0);
    assert_int_equal(fs_write_atomic(other, "y", 1, err), 0);
    struct disktier d;
    assert_int_equal(disktier_open(&d, dir, 5000, err), 0);
    assert_int_equal(d.file_bytes, 8192);
    assert_false(fs_exists(stale));
    assert_true(fs_exists(fake));
    assert_true(fs_exists(other));
    /* the directory is held: a second opener is refused and names the holder */
    struct disktier d2;
    assert_int_equal(disktier_open(&d2, dir, 5000, err), -1);
    assert_non_null(strstr(err, "in use by another kvbench serve"));
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    assert_non_null(strstr(err, pid));
    void *buf = disktier_alloc(&d);
    kvblock_fill(buf, d.file_bytes, 77);
    assert_int_equal(disktier_write(&d, 77, buf), 0);
    memset(buf, 0, d.file_bytes);
    assert_int_equal(disktier_read(&d, 77, buf), 0);
    assert_int_equal(kvblock_verify(buf, d.file_bytes, 77), 0);
    assert_int_equal(disktier_read(&d, 78, buf), -ENOENT);
    assert_int_equal(disktier_remove_all(&d), 1);
    assert_true(fs_exists(fake));
    disktier_close(&d);
    /* released: the next opener gets it */
    assert_int_equal(disktier_open(&d2, dir, 5000, err), 0);
    disktier_close(&d2);
    free(buf);
    unlink(other);
    unlink(fake);
}

/* Poll cond (up to ~5 s): the offload thread acts on the directory a few times a second. */
#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        for (int w_ = 0; w_ < 500 && !(cond); w_++)                                                \
            nanosleep(&(struct timespec){0, 10000000}, NULL);                                      \
    } while (0)

static bool is_fifo(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* A block file replaced by a FIFO (or a symbolic link) is refused at once, never opened in a way
 * that blocks: the prefix ends there, the block is recomputed, the file is left where it is and
 * counted; writing the block again is refused the same way. A FIFO named like a block does not
 * hold up the start-up scan either. alarm() turns a hang into a failure. */
static void test_disk_fifo_and_link_refused(void **state)
{
    (void)state;
    alarm(30);
    char fifo0[4096];
    snprintf(fifo0, sizeof fifo0, "%s/kvbench-00000000000000aa.kvblk", dir);
    assert_int_equal(mkfifo(fifo0, 0644), 0);
    struct kvbm *m = make(KV_MODE_CPU_DISK, 4, 4, 64, false); /* scans past the FIFO */
    assert_true(is_fifo(fifo0));
    uint64_t a[4], b[4], c[4];
    hashes_for(10, 4, a);
    hashes_for(20, 4, b);
    hashes_for(30, 4, c);
    run_seq(m, a, 4, 0, NULL);
    kvbm_flush(m);
    run_seq(m, c, 4, 0, NULL);
    kvbm_flush(m);
    run_seq(m, b, 4, 0, NULL); /* a and c now live on disk only */
    kvbm_flush(m);
    assert_int_equal(kvbm_block_tiers(m, a[1]), 4);
    assert_int_equal(kvbm_block_tiers(m, c[0]), 4);

    char path[4096];
    kvbm_block_path(m, a[1], path, sizeof path);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkfifo(path, 0644), 0);
    struct kvbm_admit_result res;
    assert_int_equal(run_seq(m, a, 4, 0, &res), 1); /* block 0 onboards, block 1 is refused */
    assert_int_equal(res.g3_onboards, 1);
    kvbm_flush(m); /* the recomputed block 1 is not offloaded again onto the FIFO's name */
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.disk_refused, 1);
    assert_int_equal(cn.disk_read_errors, 1);
    assert_int_equal(cn.disk_write_errors, 0);
    assert_int_equal(cn.checksum_failures, 0);
    assert_true(is_fifo(path)); /* left in place */
    assert_int_equal(kvbm_block_tiers(m, a[1]) & 4, 0);

    /* a symbolic link to a copy of the right bytes is refused too (O_NOFOLLOW) */
    char cpath[4096], target[4096];
    kvbm_block_path(m, c[0], cpath, sizeof cpath);
    snprintf(target, sizeof target, "%s/elsewhere", dir);
    assert_int_equal(rename(cpath, target), 0);
    assert_int_equal(symlink(target, cpath), 0);
    assert_int_equal(run_seq(m, c, 4, 0, &res), 0);
    kvbm_flush(m); /* and nothing is written through the link */
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.disk_refused, 2);
    assert_int_equal(cn.disk_read_errors, 2);
    assert_int_equal(cn.disk_write_errors, 0);
    kvbm_destroy(m, false);
    /* clean-up removes our regular files only: the FIFOs, the link and its target stay */
    assert_true(is_fifo(path));
    assert_true(is_fifo(fifo0));
    struct stat st;
    assert_int_equal(lstat(cpath, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_true(fs_exists(target));
    alarm(0);
    unlink(fifo0);
    unlink(path);
    unlink(cpath);
    unlink(target);
}

/* disktier itself: reads and writes of a name that is a FIFO (with or without a reader at its other
 * end), a symbolic link or a directory are refused at once, nothing is written into or through
 * them, and remove leaves them alone. */
static void test_disktier_refuses_non_regular(void **state)
{
    (void)state;
    alarm(30);
    char err[ERR_LEN], path[4096], target[4096];
    struct disktier d;
    assert_int_equal(disktier_open(&d, dir, 8192, err), 0);
    void *buf = disktier_alloc(&d);
    kvblock_fill(buf, d.file_bytes, 1);
    disktier_path(&d, 1, path);
    assert_int_equal(mkfifo(path, 0644), 0);
    assert_int_equal(disktier_read(&d, 1, buf), DISKTIER_NOTREG);
    assert_int_equal(disktier_write(&d, 1, buf), DISKTIER_NOTREG); /* no reader */
    int rfd = open(path, O_RDONLY | O_NONBLOCK);
    assert_true(rfd >= 0);
    assert_int_equal(disktier_write(&d, 1, buf), DISKTIER_NOTREG); /* a reader: still refused */
    char byte;
    assert_true(read(rfd, &byte, 1) <= 0); /* ...and nothing was written into it */
    close(rfd);
    assert_string_equal(disktier_kind(&d, 1), "a FIFO");
    assert_int_equal(disktier_remove(&d, 1), 0);
    assert_true(is_fifo(path)); /* not ours to remove */
    unlink(path);

    snprintf(target, sizeof target, "%s/target", dir);
    assert_int_equal(fs_write_atomic(target, "x", 1, err), 0);
    disktier_path(&d, 2, path);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(disktier_write(&d, 2, buf), DISKTIER_NOTREG);
    assert_int_equal(disktier_read(&d, 2, buf), DISKTIER_NOTREG);
    struct stat st;
    assert_int_equal(stat(target, &st), 0);
    assert_int_equal(st.st_size, 1); /* not written through the link */
    assert_string_equal(disktier_kind(&d, 2), "a symbolic link");
    assert_int_equal(disktier_remove(&d, 2), 0);
    assert_int_equal(lstat(path, &st), 0);
    unlink(path);
    unlink(target);

    disktier_path(&d, 3, path);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(disktier_write(&d, 3, buf), DISKTIER_NOTREG);
    assert_int_equal(disktier_read(&d, 3, buf), DISKTIER_NOTREG);
    rmdir(path);
    assert_string_equal(disktier_strerror(DISKTIER_NOTREG), "not a regular file");
    disktier_close(&d);
    free(buf);
    alarm(0);
}

/* The lock is the directory's, not the lock file's: with .kvbench.lock deleted a second opener is
 * still refused (naming the holder, from /proc/locks), and nothing of the first is removed. */
static void test_lock_survives_deleted_lock_file(void **state)
{
    (void)state;
    char lock[4096], err[ERR_LEN];
    snprintf(lock, sizeof lock, "%s/.kvbench.lock", dir);
    struct disktier d, d2;
    assert_int_equal(disktier_open(&d, dir, 8192, err), 0);
    assert_true(disktier_held(&d));
    void *buf = disktier_alloc(&d);
    kvblock_fill(buf, d.file_bytes, 5);
    assert_int_equal(disktier_write(&d, 5, buf), 0);
    char path[4096];
    disktier_path(&d, 5, path);
    assert_int_equal(unlink(lock), 0);
    assert_int_equal(disktier_open(&d2, dir, 8192, err), -1);
    assert_non_null(strstr(err, "in use by another kvbench serve"));
    char pid[32];
    snprintf(pid, sizeof pid, "(pid %ld)", (long)getpid());
    assert_non_null(strstr(err, pid));
    assert_true(fs_exists(path));  /* the refused opener removed nothing */
    assert_false(fs_exists(lock)); /* ...and made no lock file of its own */
    assert_int_equal(disktier_read(&d, 5, buf), 0);
    assert_int_equal(disktier_remove(&d, 5), 0);
    disktier_close(&d);
    assert_int_equal(disktier_open(&d2, dir, 8192, err), 0);
    disktier_close(&d2);
    free(buf);
}

/* The directory removed under a running manager is made again and locked (G3's index dropped,
 * new blocks written there, a second opener refused); when another holder takes the path first,
 * the manager gives G3 up and touches nothing of the other's. */
static void test_removed_directory(void **state)
{
    (void)state;
    char err[ERR_LEN], lock[4096];
    snprintf(lock, sizeof lock, "%s/.kvbench.lock", dir);
    struct kvbm *m = make(KV_MODE_CPU_DISK, 4, 4, 64, false);
    uint64_t a[4], b[4], c[4];
    hashes_for(10, 4, a);
    hashes_for(20, 4, b);
    hashes_for(30, 4, c);
    run_seq(m, a, 4, 0, NULL);
    kvbm_flush(m);
    struct kvbm_counters cn;
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.g3_blocks, 4);
    assert_int_equal(fs_remove_tree(dir, err), 0);
    WAIT_FOR(fs_exists(lock));
    assert_true(fs_is_dir(dir));
    WAIT_FOR((kvbm_get_counters(m, &cn), cn.g3_blocks == 0));
    assert_int_equal(cn.g3_blocks, 0);
    struct disktier d2;
    assert_int_equal(disktier_open(&d2, dir, 8192, err), -1); /* locked again */
    assert_non_null(strstr(err, "in use by another kvbench serve"));
    run_seq(m, b, 4, 0, NULL);
    kvbm_flush(m);
    char path[4096];
    kvbm_block_path(m, b[0], path, sizeof path);
    assert_true(fs_exists(path));
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.g3_blocks, 4);
    assert_int_equal(cn.disk_write_errors, 0);

    /* now another holder takes the path before the manager looks: the directory is moved away
     * (still the manager's), a new one at the path is locked by d2, then the old one is removed */
    char moved[4096];
    snprintf(moved, sizeof moved, "%s.moved", dir);
    assert_int_equal(rename(dir, moved), 0);
    assert_int_equal(disktier_open(&d2, dir, 8192, err), 0);
    assert_int_equal(fs_remove_tree(moved, err), 0);
    WAIT_FOR((kvbm_get_counters(m, &cn), cn.g3_blocks == 0));
    assert_int_equal(cn.g3_blocks, 0);
    void *buf = disktier_alloc(&d2);
    kvblock_fill(buf, d2.file_bytes, c[0]);
    assert_int_equal(disktier_write(&d2, c[0], buf), 0); /* d2's own block of the same hash */
    run_seq(m, c, 4, 0, NULL);                           /* the manager writes nothing now */
    kvbm_flush(m);
    kvbm_get_counters(m, &cn);
    assert_int_equal(cn.g3_blocks, 0);
    assert_int_equal(cn.disk_write_errors, 0);
    kvbm_block_path(m, c[1], path, sizeof path);
    assert_false(fs_exists(path));
    kvbm_destroy(m, false);
    disktier_path(&d2, c[0], path);
    assert_true(fs_exists(path)); /* the manager removed nothing of d2's */
    assert_true(fs_exists(lock)); /* nor d2's lock */
    struct disktier d3;
    assert_int_equal(disktier_open(&d3, dir, 8192, err), -1);
    assert_int_equal(disktier_remove(&d2, c[0]), 0);
    disktier_close(&d2);
    assert_false(fs_exists(lock));
    free(buf);
}

/* Out of memory at each allocation in turn (once, then from there on): creation fails with a
 * clear error and leaves nothing behind, or the manager degrades (a sequence not admitted, a
 * block left unshared) and, the memory back, works as before. ASan checks for leaks and crashes. */
static void test_allocation_failures(void **state)
{
    (void)state;
    uint64_t a[4], b[4], c[6];
    hashes_for(10, 4, a);
    hashes_for(20, 4, b);
    hashes_for(30, 6, c);
    long reached = 0;
    for (int persistent = 0; persistent <= 1; persistent++) {
        for (long nth = 1; nth <= 40; nth++) {
            struct kvbm_config cfg = {
                .block_tokens = BS,
                .block_bytes = 8192,
                .g1_blocks = 8,
                .g2_blocks = 4,
                .g3_blocks = 16,
                .mode = KV_MODE_CPU_DISK,
                .disk_filter = false,
                .disk_dir = dir,
                .write_queue_depth = 2,
            };
            struct kvbm *m = NULL;
            char err[ERR_LEN] = "";
            fault_arm(nth, persistent);
            if (kvbm_create(&cfg, &m, err) < 0) {
                fault_disarm();
                assert_non_null(strstr(err, "out of memory"));
                reached++;
                continue;
            }
            const uint64_t *seqs[] = {a, b, a, c, b};
            const size_t lens[] = {4, 4, 4, 6, 4};
            for (size_t k = 0; k < 5; k++) {
                struct kvbm_seq seq;
                struct kvbm_admit_result res;
                int rc = kvbm_admit(m, seqs[k], lens[k], lens[k], lens[k], &seq, &res);
                if (rc != 1)
                    continue; /* not admitted now (the engine would retry) or out of memory */
                kvbm_register(m, &seq);
                kvbm_release(m, &seq);
            }
            kvbm_flush(m);
            reached += fault_failures() > 0;
            fault_disarm();
            /* the memory is back: it works as it did */
            run_seq(m, c, 6, 0, NULL);
            assert_int_equal(run_seq(m, c, 6, 0, NULL), 6);
            kvbm_destroy(m, false);
        }
    }
    assert_true(reached > 10); /* the failures did reach the code */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_chain_is_prefix_sensitive),
        cmocka_unit_test(test_block_bytes_checksum),
        cmocka_unit_test(test_g1_reuse_and_lru),
        cmocka_unit_test(test_g1_capacity_admission),
        cmocka_unit_test(test_offload_chain_and_onboards),
        cmocka_unit_test(test_host_onboard_h2d),
        cmocka_unit_test(test_disk_filter_second_sighting),
        cmocka_unit_test(test_d2d_without_host_tier),
        cmocka_unit_test(test_g3_lru_eviction_removes_files),
        cmocka_unit_test(test_checksum_failure_host),
        cmocka_unit_test(test_checksum_failure_disk),
        cmocka_unit_test(test_disk_write_failures),
        cmocka_unit_test(test_disk_full_real_efbig),
        cmocka_unit_test(test_prefix_partial_match),
        cmocka_unit_test(test_disktier_direct_and_stale_cleanup),
        cmocka_unit_test(test_disk_fifo_and_link_refused),
        cmocka_unit_test(test_disktier_refuses_non_regular),
        cmocka_unit_test(test_lock_survives_deleted_lock_file),
        cmocka_unit_test(test_removed_directory),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
