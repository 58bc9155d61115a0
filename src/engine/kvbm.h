/*
 * kvbm.h - the tiered KV block manager of the embedded engine.
 *
 * Tiers (SPEC §1, §8): G1 device memory (modelled: capacity and bookkeeping only), G2 host memory
 * (real bytes, one aligned buffer per block), G3 disk (real files through disktier, written by a
 * background offload thread). Blocks are identified by their sequence hash (model/blockhash.h).
 *
 * Moves, each counted exactly when it happens, under KVBM's names:
 *   offload d2h  G1→G2  write-through when a computed block is registered
 *   offload h2d  G2→G3  when the block has been seen twice (KVBM's frequency filter) or at once
 *                       with the filter off; counted when the file write completes
 *   offload d2d  G1→G3  the same, when there is no host tier
 *   onboard h2d  G2→G1  on a prefix match found in host memory
 *   onboard d2d  G3→G1  on a prefix match found on disk (a real read, timed)
 *   prefetch     G3→G2  a block read from disk is also kept in host memory
 * Every tier evicts least-recently-used blocks. Each block's bytes are derived from its hash and
 * carry a checksum that is verified on every onboard; a mismatch is logged, counted and treated
 * as a miss, never served. A failed disk write leaves the block out of G3 and is counted.
 *
 * Threading: kvbm_admit, kvbm_register and kvbm_release are called from one thread (the
 * scheduler); the offload thread and metric readers synchronise through the manager's lock.
 */
#ifndef KVBENCH_ENGINE_KVBM_H
#define KVBENCH_ENGINE_KVBM_H

#include "model/kvmode.h" /* enum kv_mode */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kvbm_config {
    size_t block_tokens; /* tokens per block */
    size_t block_bytes;  /* KV bytes per block */
    size_t g1_blocks;    /* device capacity, > 0 */
    size_t g2_blocks;    /* host capacity (used when mode >= cpu_only) */
    size_t g3_blocks;    /* disk capacity (used when mode == cpu_disk) */
    enum kv_mode mode;
    bool disk_filter;         /* offload to disk only on a block's second sighting */
    const char *disk_dir;     /* required when the disk tier is used */
    size_t write_queue_depth; /* offload buffers in flight; 0: 16 */
};

struct kvbm_counters {
    uint64_t offload_d2h, offload_h2d, offload_d2d;
    uint64_t onboard_h2d, onboard_d2d;
    uint64_t matched_tokens;
    uint64_t disk_bytes_read, disk_bytes_written;
    uint64_t evictions_g1, evictions_g2, evictions_g3;
    uint64_t prefetches;
    uint64_t checksum_failures, disk_read_errors, disk_write_errors;
    uint64_t disk_refused; /* block files refused because they are not regular files (a FIFO, a
                              link, a device...); also counted in disk_read/write_errors */
    uint64_t host_lookups, host_hits, disk_lookups, disk_hits;
    size_t g1_used, g1_cached, g2_blocks, g3_blocks, g3_queued;
};

struct kvbm_gauges {
    double host_hit_rate, disk_hit_rate;
    double fetch_p50_ms, fetch_p95_ms, fetch_p99_ms;
    bool have_fetch; /* any disk read measured */
};

struct kv_entry;

/* One sequence's hold on the manager, from admission to release. */
struct kvbm_seq {
    uint64_t *hashes;          /* full prompt blocks */
    struct kv_entry **entries; /* held G1 entries (NULL until registered) */
    size_t n_full;
    size_t n_private;      /* G1 blocks reserved but not (yet) holding a hashed block */
    size_t matched_blocks; /* prefix blocks found in some tier */
};

struct kvbm_admit_result {
    size_t matched_blocks;
    size_t g1_hits, g2_onboards, g3_onboards;
    uint64_t g2_bytes; /* bytes moved G2→G1 (time is modelled by the caller) */
    double g3_read_s;  /* real time spent reading G3 blocks */
};

struct kvbm;

/* Create the manager (and start the offload thread when the disk tier is in use). */
int kvbm_create(const struct kvbm_config *cfg, struct kvbm **out, char *err);
/* Stop the offload thread (finishing queued writes) and free everything. Unless keep_files, the
 * block files this manager wrote are removed by its index (never by a scan of the directory, so
 * no file another engine wrote is touched); the directory's lock is released either way. */
void kvbm_destroy(struct kvbm *m, bool keep_files);

/* Admit a sequence: hashes[0..n_full) are its full prompt blocks, of which at most n_matchable
 * may be reused (the engine always computes at least one prompt token), and total_blocks is the
 * G1 reservation (prompt + maximum output). Looks the prefix up in G1, G2, G3, evicts G1 blocks
 * as needed, onboards G2/G3 blocks (real memory and disk reads). seq takes ownership of nothing:
 * the manager copies hashes.
 * Returns 1 admitted, 0 not enough G1 space right now (nothing changed), -1 never fits,
 * KVBM_ADMIT_NOMEM out of memory (nothing changed). */
#define KVBM_ADMIT_NOMEM (-2)
int kvbm_admit(struct kvbm *m, const uint64_t *hashes, size_t n_full, size_t n_matchable,
               size_t total_blocks, struct kvbm_seq *seq, struct kvbm_admit_result *res);
/* After prefill: the sequence's computed blocks become G1 blocks, offloaded to G2 (and queued for
 * G3) write-through. */
void kvbm_register(struct kvbm *m, struct kvbm_seq *seq);
/* The sequence finished: its blocks stay cached in G1 (evictable), its private blocks free. */
void kvbm_release(struct kvbm *m, struct kvbm_seq *seq);

void kvbm_get_counters(struct kvbm *m, struct kvbm_counters *out);
void kvbm_get_gauges(struct kvbm *m, struct kvbm_gauges *out);
/* Wait until every queued disk write has completed. */
void kvbm_flush(struct kvbm *m);
const struct kvbm_config *kvbm_config(const struct kvbm *m);
/* "O_DIRECT", "buffered+fadvise" or "none". */
const char *kvbm_disk_mode(const struct kvbm *m);
/* Where a block's file lives (for tests and logs). */
void kvbm_block_path(const struct kvbm *m, uint64_t hash, char *out, size_t len);
/* Which tiers hold a block: bit 0 G1, bit 1 G2, bit 2 G3. */
unsigned kvbm_block_tiers(struct kvbm *m, uint64_t hash);

/* Test hooks (fault injection). */
int kvbm_test_corrupt_g2(struct kvbm *m, uint64_t hash);
void kvbm_test_fail_disk_writes(struct kvbm *m, int n);

/* The bytes of a block: derived from its hash, with a checksummed header. size >= 64. */
void kvblock_fill(void *buf, size_t size, uint64_t hash);
/* 0 when buf holds the intact block of hash; -1 otherwise. */
int kvblock_verify(const void *buf, size_t size, uint64_t hash);

#endif
