/*
 * kvbm.h - the tiered KV block manager of the embedded engine.
 *
 * Tiers (SPEC §1, §8): G1 device memory, G2 host memory (real bytes, one aligned buffer per
 * block), G3 disk (real files through disktier, written by a background offload thread). G1 has
 * two backends: KVBM_G1_MODEL (capacity and bookkeeping only, no bytes) and KVBM_G1_CUDA (every G1
 * block holds its bytes in a slot of real device memory, G2 is pinned host memory, and the moves
 * between them are real cudaMemcpyAsync copies, batched and timed: engine/g1cuda.h). Blocks are
 * identified by their sequence hash (model/blockhash.h).
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
 * as a miss, never served. A failed disk write leaves the block out of G3 and is counted. With
 * KVBM_G1_CUDA a computed block is first written into its G1 slot (the device's own fill, counted
 * apart from the moves), and a failed CUDA copy is counted (g1_copy_errors): the block is a miss
 * (recomputed) or is not offloaded, and serving goes on.
 *
 * Threading: kvbm_admit, kvbm_register and kvbm_release are called from one thread (the
 * scheduler); the offload thread and metric readers synchronise through the manager's lock. With
 * KVBM_G1_CUDA the device is made current on whichever thread copies (the scheduler's); the
 * offload thread only writes pinned host buffers to disk.
 */
#ifndef KVBENCH_ENGINE_KVBM_H
#define KVBENCH_ENGINE_KVBM_H

#include "model/kvmode.h" /* enum kv_mode */
#include "util/names.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where G1's blocks live: modelled (no bytes) or in a CUDA device's memory. */
enum kvbm_g1 { KVBM_G1_MODEL = 0, KVBM_G1_CUDA = 1 };
/* "model", "cuda": the one table of their names (--g1). */
extern const struct name_entry KVBM_G1_NAMES[];

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
    enum kvbm_g1 g1;          /* G1's backend (default: the model) */
    int cuda_device;          /* KVBM_G1_CUDA: the device */
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
    /* KVBM_G1_CUDA (all 0 with the model): block copies between G1 and host memory, index 0
     * host to device (onboards), 1 device to host (offloads); their measured time; the device's
     * own fills of computed blocks; failed block copies; the device memory G1 holds */
    uint64_t g1_copy_bytes[2], g1_copy_batches[2];
    double g1_copy_s[2];
    uint64_t g1_fill_bytes, g1_copy_errors;
    size_t g1_device_bytes;
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
    uint64_t g2_bytes; /* bytes moved G2→G1 (time is modelled by the caller with the model) */
    double g3_read_s;  /* real time spent reading G3 blocks */
    double g1_h2d_s;   /* KVBM_G1_CUDA: real time of the onboard copies into G1 */
};

struct kvbm;

/* Create the manager (and start the offload thread when the disk tier is in use). With
 * KVBM_G1_CUDA the CUDA runtime is loaded and G1's device memory allocated here; err then says
 * why it cannot be (cuda_open's reason, or the memory missing with its numbers). */
int kvbm_create(const struct kvbm_config *cfg, struct kvbm **out, char *err);
/* KVBM_G1_CUDA before anything is started: whether the runtime, the device and free device
 * memory for cfg's G1 are there. Returns 0; -1 with the one-line reason (no runtime, no device);
 * KVBM_G1_NO_ROOM with the memory needed and free. Allocates nothing. 0 with the model. */
#define KVBM_G1_NO_ROOM (-2)
int kvbm_g1_preflight(const struct kvbm_config *cfg, char *err);
/* Says where G1 lives, for the start-up log: "modelled (capacity only)" or "CUDA device 0
 * (/path/libcudart.so, runtime 13.0, driver 13.0): 64 blocks, 2.0 MiB of device memory; G2 in
 * pinned host memory". */
void kvbm_g1_describe(const struct kvbm *m, char *out, size_t len);
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
/* KVBM_G1_CUDA: copy a G1 block's bytes from the device into out (block bytes rounded up to
 * 4096). Returns 0, or -1 when the block is not in G1 or the copy failed. */
int kvbm_test_read_g1(struct kvbm *m, uint64_t hash, void *out);
void kvbm_test_fail_disk_writes(struct kvbm *m, int n);

/* The bytes of a block: derived from its hash, with a checksummed header. size >= 64. */
void kvblock_fill(void *buf, size_t size, uint64_t hash);
/* 0 when buf holds the intact block of hash; -1 otherwise. */
int kvblock_verify(const void *buf, size_t size, uint64_t hash);
/* Give a block kvblock_fill made the name hash, keeping its payload (and so its checksum): a
 * cheap way to write many distinct blocks from one filled buffer (kvbench tiers). */
void kvblock_restamp(void *buf, uint64_t hash);
/* Whether buf starts with a block header; *hash is the block's name then. */
bool kvblock_header(const void *buf, uint64_t *hash);

#endif
