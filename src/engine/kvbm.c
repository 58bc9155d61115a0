/*
 * kvbm.c - tiered KV block manager.
 *
 * Design. Every block the manager knows is a struct kv_entry in one hash table keyed by sequence
 * hash. An entry carries flags for the tiers that hold it and one intrusive LRU node per tier:
 *   - G1 LRU holds only cached blocks no running sequence uses (g1_ref == 0): the evictable ones.
 *   - G2 and G3 LRUs hold every block of that tier.
 *   - A "ghost" LRU holds entries that no tier holds any more, so the disk filter still remembers
 *     how often a hash was seen; it is bounded and its oldest entries are dropped.
 * G1 accounting follows TensorRT-LLM's guaranteed-no-evict policy: a sequence reserves blocks for
 * its prompt and its maximum output at admission (g1_used counts hashed G1 blocks plus private
 * reservations), so a running sequence never needs to preempt.
 *
 * Disk writes go through a bounded queue of aligned buffers to the offload thread; the scheduler
 * waits for a free buffer when the disk falls behind (backpressure, never a silently dropped
 * offload). G3 reads happen on the scheduler thread with the entry pinned, outside the lock; the
 * disk tier opens block files non-blocking and refuses what is not a regular file, so a FIFO
 * under a block's name costs that block (a miss, counted), not the scheduler.
 *
 * The offload thread also looks at the cache directory a few times a second: a directory removed
 * under the engine is made again and locked (G3's index is dropped: its files are gone), or,
 * when another engine holds the path by then, G3 is turned off for good (g3_off).
 *
 * G1 on a CUDA device (--g1 cuda, m->g1 set): every entry in G1 owns a slot of the device arena
 * (private reservations hold none: their KV is never materialised), so G1's accounting is the
 * model's and only the bytes are added. Each call's copies form one transfer per direction
 * (engine/g1cuda.h): a registration fills its new blocks into G1 (host to device, from pinned
 * staging), then offloads them to G2 (device to host); an admission copies its G2 and G3 blocks
 * into G1, then offloads what goes to disk without a host tier (device to pinned write buffer).
 * What happens after a copy (a G2 block goes on to disk, a disk write is queued, a failed copy
 * undone) runs when the copy is handed back. An entry whose G2 slot a queued copy still uses is
 * marked g2_busy: evicting it from G2 first waits for the open transfers. Copies are waited for
 * with the lock held (they are short; disk reads still release it).
 */
#include "engine/kvbm.h"

#include "engine/disktier.h"
#include "engine/g1cuda.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/rng.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#define BLOCK_MAGIC    DISKTIER_BLOCK_MAGIC /* "KVBLOCK1" little-endian */
#define BLOCK_HEADER   64
#define FETCH_SAMPLES  1024
#define DIR_CHECK_NS   250000000ull       /* how often the offload thread looks at the directory */
#define G2_CHUNK_BYTES ((size_t)64 << 20) /* --g1 cuda: G2 is pinned in chunks of about this */

/* --g1 cuda: what a copy was for (struct g1cuda_item.tag) */
enum { CX_OFFLOAD_G2 = 1, CX_OFFLOAD_DISK = 2 };
/* --g1 cuda: where an onboarded block's bytes came from (kv_entry.onboard_src) */
enum { ONB_NONE = 0, ONB_G2 = 1, ONB_G3 = 2 };

const struct name_entry KVBM_G1_NAMES[] = {
    {"model", KVBM_G1_MODEL}, {"cuda", KVBM_G1_CUDA}, {NULL, 0}};

struct lnode {
    struct lnode *prev, *next;
};

struct kv_entry {
    uint64_t hash;
    struct kv_entry *hnext;
    uint32_t freq;
    uint32_t g1_ref;
    bool in_g1, in_g2, in_g3, g3_queued, g3_unlink_pending;
    bool g3_refused; /* its name in the directory is not a regular file: never offloaded again */
    uint16_t pins;
    uint32_t g2_slot;
    uint32_t g1_slot;    /* --g1 cuda: its slot of device memory while in_g1 */
    bool g2_busy;        /* --g1 cuda: a queued copy reads or writes its G2 slot */
    uint8_t onboard_src; /* --g1 cuda: ONB_* during an admission's onboard transfer */
    struct lnode g1_node, g2_node, g3_node, ghost_node;
};

struct wjob {
    struct kv_entry *e;
    void *buf;
    bool d2d;
};

struct kvbm {
    struct kvbm_config cfg;
    bool use_g2, use_g3;
    bool g3_off;               /* the disk tier's directory was lost: nothing goes to G3 any more */
    uint64_t write_err_streak; /* disk writes failed in a row (one log line per episode) */
    pthread_mutex_t lock;

    struct kv_entry **table;
    size_t table_size; /* power of two */
    size_t n_entries;

    struct lnode g1_lru, g2_lru, g3_lru, ghost_lru; /* head.next = most recent */
    size_t g1_cached, ghost_count, ghost_cap;
    size_t g1_used, g2_count, g3_count;

    void **g2_slots;
    uint32_t *g2_free;
    size_t g2_free_n, g2_alloc_n;

    struct disktier disk;
    void *read_buf;

    /* offload queue */
    pthread_t writer;
    bool writer_running, writer_stop;
    pthread_cond_t wcond, wdone;
    struct wjob *jobs;
    size_t jobs_cap, jobs_head, jobs_n;
    void **free_bufs;
    size_t free_bufs_n, bufs_total;
    size_t in_flight;

    struct kvbm_counters c;
    double fetch_ms[FETCH_SAMPLES];
    size_t fetch_n, fetch_pos;

    /* --g1 cuda: G1's device memory and copies (NULL: G1 is modelled) */
    struct g1cuda *g1;
    struct g1cuda_xfer xh, xd; /* the transfers into G1 and out of it, while open */
    size_t cx_fail;   /* an admission's onboards: the first prefix index whose copy failed */
    void **g2_chunks; /* pinned G2 memory, g2_chunk_slots blocks each */
    size_t g2_chunks_n, g2_chunk_slots;
    uint64_t g2_pin_failures;
    size_t g2_cap; /* G2's blocks: cfg.g2_blocks, or fewer once pinning more failed */
};

static void d2h_done(void *ctx, const struct g1cuda_item *it, bool ok);

/* ---------------------------------------------------------------- lists */

static void l_init(struct lnode *h)
{
    h->prev = h->next = h;
}

static bool l_linked(const struct lnode *n)
{
    return n->next != NULL;
}

static bool is_power_of_ten(uint64_t n)
{
    while (n >= 10 && n % 10 == 0)
        n /= 10;
    return n == 1;
}

static void l_remove(struct lnode *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

static void l_push_front(struct lnode *h, struct lnode *n)
{
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}

#define ENTRY_OF(node, field) ((struct kv_entry *)((char *)(node)-offsetof(struct kv_entry, field)))

/* ---------------------------------------------------------------- blocks */

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void kvblock_fill(void *buf, size_t size, uint64_t hash)
{
    unsigned char *b = buf;
    /* One pseudo-random 4 KiB page from the hash, repeated: memcpy speed, content unique per
     * block. */
    uint64_t s = hash;
    size_t page = size - BLOCK_HEADER < 4096 ? size - BLOCK_HEADER : 4096;
    unsigned char *payload = b + BLOCK_HEADER;
    for (size_t i = 0; i + 8 <= page; i += 8)
        put_le64(payload + i, splitmix64(&s));
    for (size_t i = page / 8 * 8; i < page; i++)
        payload[i] = (unsigned char)splitmix64(&s);
    for (size_t off = page; off < size - BLOCK_HEADER; off += page) {
        size_t n = size - BLOCK_HEADER - off < page ? size - BLOCK_HEADER - off : page;
        memcpy(payload + off, payload, n);
    }
    memset(b, 0, BLOCK_HEADER);
    put_le64(b, BLOCK_MAGIC);
    put_le64(b + 8, hash);
    put_le64(b + 16, XXH3_64bits(payload, size - BLOCK_HEADER));
    put_le64(b + 24, size);
}

void kvblock_restamp(void *buf, uint64_t hash)
{
    put_le64((unsigned char *)buf + 8, hash);
}

bool kvblock_header(const void *buf, uint64_t *hash)
{
    const unsigned char *b = buf;
    if (get_le64(b) != BLOCK_MAGIC)
        return false;
    *hash = get_le64(b + 8);
    return true;
}

int kvblock_verify(const void *buf, size_t size, uint64_t hash)
{
    const unsigned char *b = buf;
    if (size < BLOCK_HEADER || get_le64(b) != BLOCK_MAGIC || get_le64(b + 8) != hash ||
        get_le64(b + 24) != size)
        return -1;
    return get_le64(b + 16) == XXH3_64bits(b + BLOCK_HEADER, size - BLOCK_HEADER) ? 0 : -1;
}

/* ---------------------------------------------------------------- table */

static size_t bucket_of(const struct kvbm *m, uint64_t hash)
{
    return (size_t)(hash ^ (hash >> 29)) & (m->table_size - 1);
}

static struct kv_entry *find(struct kvbm *m, uint64_t hash)
{
    for (struct kv_entry *e = m->table[bucket_of(m, hash)]; e; e = e->hnext)
        if (e->hash == hash)
            return e;
    return NULL;
}

static int grow_table(struct kvbm *m)
{
    size_t size = m->table_size * 2;
    struct kv_entry **t = fault_calloc(size, sizeof *t);
    if (!t)
        return -1;
    struct kv_entry **old = m->table;
    size_t old_size = m->table_size;
    m->table = t;
    m->table_size = size;
    for (size_t i = 0; i < old_size; i++) {
        for (struct kv_entry *e = old[i], *next; e; e = next) {
            next = e->hnext;
            size_t b = bucket_of(m, e->hash);
            e->hnext = t[b];
            t[b] = e;
        }
    }
    free(old);
    return 0;
}

static void unlink_from_table(struct kvbm *m, struct kv_entry *e)
{
    struct kv_entry **pp = &m->table[bucket_of(m, e->hash)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    m->n_entries--;
}

static bool held_anywhere(const struct kv_entry *e)
{
    return e->in_g1 || e->in_g2 || e->in_g3 || e->g3_queued || e->pins || e->g1_ref;
}

/* An entry no tier holds becomes a ghost (remembered for the frequency filter). */
static void maybe_ghost(struct kvbm *m, struct kv_entry *e)
{
    if (held_anywhere(e) || l_linked(&e->ghost_node))
        return;
    l_push_front(&m->ghost_lru, &e->ghost_node);
    m->ghost_count++;
    while (m->ghost_count > m->ghost_cap) {
        struct kv_entry *g = ENTRY_OF(m->ghost_lru.prev, ghost_node);
        l_remove(&g->ghost_node);
        m->ghost_count--;
        unlink_from_table(m, g);
        free(g);
    }
}

static struct kv_entry *find_or_create(struct kvbm *m, uint64_t hash)
{
    struct kv_entry *e = find(m, hash);
    if (e) {
        if (l_linked(&e->ghost_node)) {
            l_remove(&e->ghost_node);
            m->ghost_count--;
        }
        return e;
    }
    if (m->n_entries + 1 > m->table_size * 3 / 4 && grow_table(m) < 0)
        return NULL;
    e = fault_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->hash = hash;
    size_t b = bucket_of(m, hash);
    e->hnext = m->table[b];
    m->table[b] = e;
    m->n_entries++;
    return e;
}

/* ---------------------------------------------------------------- tiers */

static void g1_evict_one(struct kvbm *m)
{
    struct kv_entry *e = ENTRY_OF(m->g1_lru.prev, g1_node);
    l_remove(&e->g1_node);
    m->g1_cached--;
    e->in_g1 = false;
    if (m->g1)
        g1cuda_slot_put(m->g1, e->g1_slot);
    m->g1_used--;
    m->c.evictions_g1++;
    maybe_ghost(m, e);
}

static void g2_drop(struct kvbm *m, struct kv_entry *e)
{
    l_remove(&e->g2_node);
    e->in_g2 = false;
    m->g2_free[m->g2_free_n++] = e->g2_slot;
    m->g2_count--;
}

/* --g1 cuda: wait for the open transfers (and run what follows their copies). */
static void g1_flush_open(struct kvbm *m)
{
    if (m->xh.open)
        g1cuda_xfer_flush(&m->xh);
    if (m->xd.open)
        g1cuda_xfer_flush(&m->xd);
}

/* The buffer of a new G2 slot: aligned host memory, or with --g1 cuda a slot of a pinned chunk
 * (pinning is slow: one chunk of about G2_CHUNK_BYTES per many blocks, not one per block). NULL
 * when out of memory. */
static void *g2_new_buffer(struct kvbm *m, size_t slot)
{
    if (!m->g1)
        return disktier_alloc(&m->disk);
    size_t chunk = slot / m->g2_chunk_slots, k = slot % m->g2_chunk_slots;
    if (k == 0) {
        size_t left = m->cfg.g2_blocks - slot;
        size_t n = left < m->g2_chunk_slots ? left : m->g2_chunk_slots;
        char err[ERR_LEN];
        m->g2_chunks[chunk] = g1cuda_host_alloc(m->g1, n * m->disk.file_bytes, err);
        if (!m->g2_chunks[chunk]) {
            /* G2 stays at the slots it has (its LRU evicts from now on): retrying a large pin
             * on every insert, under the lock, would slow every step */
            m->g2_cap = slot;
            m->g2_pin_failures++;
            log_warn("host tier: pinning %zu more blocks failed: %s; G2 keeps the %zu blocks it "
                     "has",
                     n, err, slot);
            return NULL;
        }
        m->g2_chunks_n = chunk + 1;
    }
    return (char *)m->g2_chunks[chunk] + k * m->disk.file_bytes;
}

/* Take a G2 slot for e (evicting the LRU block if full). Returns the buffer or NULL. */
static void *g2_insert(struct kvbm *m, struct kv_entry *e)
{
    if (m->g2_count >= m->g2_cap && m->g2_lru.prev != &m->g2_lru &&
        ENTRY_OF(m->g2_lru.prev, g2_node)->g2_busy)
        g1_flush_open(m); /* a queued copy still uses the victim's slot */
    if (m->g2_count >= m->g2_cap) {
        struct lnode *n = m->g2_lru.prev;
        if (n == &m->g2_lru)
            return NULL;
        struct kv_entry *victim = ENTRY_OF(n, g2_node);
        g2_drop(m, victim);
        m->c.evictions_g2++;
        maybe_ghost(m, victim);
    }
    uint32_t slot;
    if (m->g2_free_n) {
        slot = m->g2_free[--m->g2_free_n];
    } else {
        if (m->g2_alloc_n >= m->g2_cap)
            return NULL;
        void *p = g2_new_buffer(m, m->g2_alloc_n);
        if (!p)
            return NULL;
        slot = (uint32_t)m->g2_alloc_n++;
        m->g2_slots[slot] = p;
    }
    e->g2_slot = slot;
    e->in_g2 = true;
    l_push_front(&m->g2_lru, &e->g2_node);
    m->g2_count++;
    return m->g2_slots[slot];
}

static void g3_remove(struct kvbm *m, struct kv_entry *e)
{
    l_remove(&e->g3_node);
    e->in_g3 = false;
    m->g3_count--;
    if (e->pins)
        e->g3_unlink_pending = true; /* a reader has it open; unlink when unpinned */
    else
        disktier_remove(&m->disk, e->hash);
}

/* Drop e from G3's index without touching its name: the file there is not one this tier made
 * (refused), or is gone with its directory. */
static void g3_forget(struct kvbm *m, struct kv_entry *e)
{
    l_remove(&e->g3_node);
    e->in_g3 = false;
    e->g3_unlink_pending = false;
    m->g3_count--;
}

/* The directory was made again (lost false) or given up (lost true): none of G3's files is
 * there any more. */
static void g3_drop_all(struct kvbm *m, bool lost)
{
    while (m->g3_lru.next != &m->g3_lru) {
        struct kv_entry *e = ENTRY_OF(m->g3_lru.next, g3_node);
        g3_forget(m, e);
        maybe_ghost(m, e);
    }
    if (lost)
        m->g3_off = true;
}

static void g3_evict_over_capacity(struct kvbm *m)
{
    struct lnode *n = m->g3_lru.prev;
    while (m->g3_count > m->cfg.g3_blocks && n != &m->g3_lru) {
        struct lnode *prev = n->prev;
        struct kv_entry *e = ENTRY_OF(n, g3_node);
        g3_remove(m, e);
        m->c.evictions_g3++;
        maybe_ghost(m, e);
        n = prev;
    }
}

static void record_fetch(struct kvbm *m, double ms)
{
    m->fetch_ms[m->fetch_pos] = ms;
    m->fetch_pos = (m->fetch_pos + 1) % FETCH_SAMPLES;
    if (m->fetch_n < FETCH_SAMPLES)
        m->fetch_n++;
}

/* ---------------------------------------------------------------- offload thread */

/* Write one job's block; a write that finds the directory gone has it looked at (and made again)
 * and is tried once more. *recheck: what disktier_recheck said (0 when not asked). Lock not held.
 */
static int write_block(struct kvbm *m, const struct wjob *job, int *recheck)
{
    *recheck = 0;
    int rc = disktier_write(&m->disk, job->e->hash, job->buf);
    if (rc == -ENOENT) {
        *recheck = disktier_recheck(&m->disk);
        if (*recheck > 0)
            rc = disktier_write(&m->disk, job->e->hash, job->buf);
    }
    return rc;
}

static void *writer_main(void *arg)
{
    struct kvbm *m = arg;
    uint64_t next_check = clock_now_ns() + DIR_CHECK_NS;
    pthread_mutex_lock(&m->lock);
    for (;;) {
        uint64_t now = clock_now_ns();
        if (now >= next_check && !m->g3_off) {
            next_check = now + DIR_CHECK_NS;
            pthread_mutex_unlock(&m->lock);
            int r = disktier_recheck(&m->disk);
            pthread_mutex_lock(&m->lock);
            if (r != 0)
                g3_drop_all(m, r < 0);
            continue;
        }
        if (m->jobs_n == 0) {
            if (m->writer_stop)
                break;
            if (now >= next_check)
                next_check = now + DIR_CHECK_NS; /* g3_off: nothing to look at */
            struct timespec ts = {.tv_sec = (time_t)(next_check / 1000000000ull),
                                  .tv_nsec = (long)(next_check % 1000000000ull)};
            pthread_cond_timedwait(&m->wcond, &m->lock, &ts);
            continue;
        }
        struct wjob job = m->jobs[m->jobs_head];
        m->jobs_head = (m->jobs_head + 1) % m->jobs_cap;
        m->jobs_n--;
        m->in_flight++;
        bool off = m->g3_off;
        pthread_mutex_unlock(&m->lock);

        int recheck = 0;
        int rc = off ? -ENOENT : write_block(m, &job, &recheck);

        pthread_mutex_lock(&m->lock);
        if (recheck != 0)
            g3_drop_all(m, recheck < 0);
        struct kv_entry *e = job.e;
        e->g3_queued = false;
        m->c.g3_queued--;
        if (rc == 0) {
            if (m->write_err_streak) {
                log_info("disk tier: writes succeed again after %llu failed",
                         (unsigned long long)m->write_err_streak);
                m->write_err_streak = 0;
            }
            e->in_g3 = true;
            l_push_front(&m->g3_lru, &e->g3_node);
            m->g3_count++;
            if (job.d2d)
                m->c.offload_d2d++;
            else
                m->c.offload_h2d++;
            m->c.disk_bytes_written += m->disk.file_bytes;
            g3_evict_over_capacity(m);
        } else if (m->g3_off) {
            maybe_ghost(m, e); /* the tier is gone (logged once): not a write error */
        } else {
            m->c.disk_write_errors++;
            if (rc == DISKTIER_NOTREG) {
                m->c.disk_refused++;
                e->g3_refused = true;
            }
            /* one line per episode (and per power of ten), not one per block: a full disk
             * fails every write */
            uint64_t n = ++m->write_err_streak;
            if (n == 1)
                log_warn("disk tier: writing block %016llx failed: %s; it stays out of G3 (further "
                         "failures are counted in kvbench_disk_write_errors)",
                         (unsigned long long)e->hash, disktier_strerror(rc));
            else if (is_power_of_ten(n))
                log_warn("disk tier: %llu block writes in a row failed (last: %s)",
                         (unsigned long long)n, disktier_strerror(rc));
            maybe_ghost(m, e);
        }
        m->free_bufs[m->free_bufs_n++] = job.buf;
        m->in_flight--;
        pthread_cond_broadcast(&m->wdone);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

static void enqueue_job(struct kvbm *m, struct kv_entry *e, void *buf, bool d2d)
{
    size_t tail = (m->jobs_head + m->jobs_n) % m->jobs_cap;
    m->jobs[tail] = (struct wjob){e, buf, d2d};
    m->jobs_n++;
    pthread_cond_signal(&m->wcond);
}

/* --g1 cuda without a host tier: the block goes device -> pinned write buffer -> disk; its write
 * is queued once the copy is done (d2h_done). Lock held. */
static void offload_from_device(struct kvbm *m, struct kv_entry *e, void *buf)
{
    bool own = !m->xd.open; /* every caller opens one; a lone copy is a transfer of its own */
    if (own)
        g1cuda_xfer_begin(&m->xd, m->g1, G1CUDA_D2H, false, d2h_done, m);
    g1cuda_xfer_copy(&m->xd, buf, g1cuda_slot(m->g1, e->g1_slot),
                     &(struct g1cuda_item){.a = e, .b = buf, .tag = CX_OFFLOAD_DISK});
    if (own)
        g1cuda_xfer_end(&m->xd);
}

/* Queue a disk write of e. Called with the lock held; may wait (releasing it) for a buffer.
 * src: the G2 bytes to copy, or NULL for a block that is in G1 only (G1→G3): its bytes derived
 * from the hash, or with --g1 cuda copied from its device slot. */
static void queue_disk_write(struct kvbm *m, struct kv_entry *e, const void *src)
{
    e->g3_queued = true;
    m->c.g3_queued++;
    e->pins++; /* keeps e alive (not a ghost) while we may wait */
    while (m->free_bufs_n == 0) {
        if (!src && m->g1 && m->xd.open && g1cuda_xfer_pending(&m->xd))
            g1cuda_xfer_flush(&m->xd); /* our own queued copies hold buffers: hand them over */
        else
            pthread_cond_wait(&m->wdone, &m->lock);
    }
    e->pins--;
    void *buf = m->free_bufs[--m->free_bufs_n];
    if (!src && m->g1) {
        offload_from_device(m, e, buf);
        return;
    }
    if (src)
        memcpy(buf, src, m->disk.file_bytes);
    else
        kvblock_fill(buf, m->disk.file_bytes, e->hash);
    enqueue_job(m, e, buf, src == NULL);
}

/* A block seen (computed or matched): count it and offload to disk when the filter allows. */
static void consider_disk(struct kvbm *m, struct kv_entry *e)
{
    if (!m->use_g3 || m->g3_off || e->in_g3 || e->g3_queued || e->g3_refused)
        return;
    if (m->cfg.disk_filter && e->freq < 2)
        return;
    if (e->in_g2)
        queue_disk_write(m, e, m->g2_slots[e->g2_slot]);
    else if (!m->use_g2 && e->in_g1)
        queue_disk_write(m, e, NULL);
}

/* ---------------------------------------------------------------- API */

/* A block's bytes as every tier holds them: rounded up to the disk tier's alignment. */
static size_t slot_bytes(size_t block_bytes)
{
    return (block_bytes + DISKTIER_ALIGN - 1) / DISKTIER_ALIGN * DISKTIER_ALIGN;
}

int kvbm_g1_preflight(const struct kvbm_config *cfg, char *err)
{
    if (cfg->g1 != KVBM_G1_CUDA)
        return 0;
    int rc = g1cuda_preflight(cfg->cuda_device, cfg->g1_blocks, slot_bytes(cfg->block_bytes), err);
    return rc == G1CUDA_NO_ROOM ? KVBM_G1_NO_ROOM : rc;
}

/* --g1 cuda: the device arena and the table of G2's pinned chunks. */
static int create_g1_cuda(struct kvbm *m, char *err)
{
    if (g1cuda_open(m->cfg.cuda_device, m->cfg.g1_blocks, m->disk.file_bytes, &m->g1, err) < 0)
        return -1;
    if (m->use_g2) {
        m->g2_chunk_slots = G2_CHUNK_BYTES / m->disk.file_bytes;
        if (m->g2_chunk_slots == 0)
            m->g2_chunk_slots = 1;
        size_t n = (m->cfg.g2_blocks + m->g2_chunk_slots - 1) / m->g2_chunk_slots;
        m->g2_chunks = fault_calloc(n, sizeof *m->g2_chunks);
        if (!m->g2_chunks)
            return err_set(err, "out of memory sizing the KV tiers");
    }
    return 0;
}

int kvbm_create(const struct kvbm_config *cfg, struct kvbm **out, char *err)
{
    if (cfg->block_tokens == 0 || cfg->block_bytes < BLOCK_HEADER)
        return err_set(err, "KV block size must be at least 1 token and %d bytes", BLOCK_HEADER);
    if (cfg->g1_blocks == 0)
        return err_set(err, "the device tier (G1) needs at least one block");
    if (cfg->g2_blocks > UINT32_MAX || cfg->g1_blocks > SIZE_MAX / 4)
        return err_set(err, "tier sizes too large");
    struct kvbm *m = fault_calloc(1, sizeof *m);
    if (!m)
        return err_set(err, "out of memory");
    m->cfg = *cfg;
    m->g2_cap = cfg->g2_blocks;
    m->disk.dir_fd = m->disk.lock_fd = -1;
    if (!m->cfg.write_queue_depth)
        m->cfg.write_queue_depth = 16;
    m->use_g2 = cfg->mode >= KV_MODE_CPU_ONLY && cfg->g2_blocks > 0;
    m->use_g3 = cfg->mode == KV_MODE_CPU_DISK && cfg->g3_blocks > 0;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca; /* the offload thread's timed waits run on the monotonic clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->wcond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&m->wdone, NULL);
    l_init(&m->g1_lru);
    l_init(&m->g2_lru);
    l_init(&m->g3_lru);
    l_init(&m->ghost_lru);
    m->table_size = 1024;
    m->table = fault_calloc(m->table_size, sizeof *m->table);
    size_t tier_total =
        cfg->g1_blocks + (m->use_g2 ? cfg->g2_blocks : 0) + (m->use_g3 ? cfg->g3_blocks : 0);
    m->ghost_cap = tier_total * 2 > 4096 ? tier_total * 2 : 4096;
    /* Without a disk tier the block buffers still need alignment: disktier computes it. */
    m->disk.file_bytes = slot_bytes(cfg->block_bytes);
    if (!m->table)
        goto oom;
    if (cfg->g1 == KVBM_G1_CUDA && create_g1_cuda(m, err) < 0)
        goto fail;
    if (m->use_g2) {
        m->g2_slots = fault_calloc(cfg->g2_blocks, sizeof *m->g2_slots);
        m->g2_free = fault_calloc(cfg->g2_blocks, sizeof *m->g2_free);
        if (!m->g2_slots || !m->g2_free)
            goto oom;
    }
    if (m->use_g3) {
        if (!cfg->disk_dir || !*cfg->disk_dir) {
            err_set(err, "the disk tier needs a cache directory");
            goto fail;
        }
        if (disktier_open(&m->disk, cfg->disk_dir, cfg->block_bytes, err) < 0)
            goto fail;
        if (!m->g1) /* with --g1 cuda blocks are read into pinned staging */
            m->read_buf = disktier_alloc(&m->disk);
        m->jobs_cap = m->cfg.write_queue_depth;
        m->jobs = fault_calloc(m->jobs_cap, sizeof *m->jobs);
        m->free_bufs = fault_calloc(m->jobs_cap, sizeof *m->free_bufs);
        if ((!m->g1 && !m->read_buf) || !m->jobs || !m->free_bufs)
            goto oom;
        for (size_t i = 0; i < m->jobs_cap; i++) {
            /* with --g1 cuda pinned: a block may come straight from the device (no host tier) */
            void *b = m->g1 ? g1cuda_host_alloc(m->g1, m->disk.file_bytes, NULL)
                            : disktier_alloc(&m->disk);
            if (!b)
                goto oom;
            m->free_bufs[m->free_bufs_n++] = b;
            m->bufs_total++;
        }
        if (pthread_create(&m->writer, NULL, writer_main, m) != 0) {
            err_set(err, "cannot start the offload thread");
            goto fail;
        }
        m->writer_running = true;
    }
    *out = m;
    return 0;
oom:
    err_set(err, "out of memory sizing the KV tiers");
fail:
    kvbm_destroy(m, false);
    return -1;
}

void kvbm_destroy(struct kvbm *m, bool keep_files)
{
    if (!m)
        return;
    if (m->writer_running) {
        pthread_mutex_lock(&m->lock);
        m->writer_stop = true;
        pthread_cond_signal(&m->wcond);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->writer, NULL);
    }
    /* only an engine that holds the directory may clean it: a refused second engine must not
     * delete the first one's blocks on its way out. It removes what its index says it wrote,
     * never by scanning: the offload thread has finished every queued write, so each file it
     * made is in the index (in G3, or waiting for a reader to unpin it). */
    if (m->use_g3 && !keep_files && disktier_held(&m->disk)) {
        for (size_t i = 0; i < m->table_size && m->table; i++)
            for (struct kv_entry *e = m->table[i]; e; e = e->hnext)
                if (e->in_g3 || e->g3_unlink_pending)
                    disktier_remove(&m->disk, e->hash);
    }
    if (m->use_g3 && m->disk.dir[0])
        disktier_close(&m->disk);
    for (size_t i = 0; i < m->table_size && m->table; i++) {
        for (struct kv_entry *e = m->table[i], *next; e; e = next) {
            next = e->hnext;
            free(e);
        }
    }
    free(m->table);
    for (size_t i = 0; i < m->g2_alloc_n && !m->g1; i++)
        free(m->g2_slots[i]);
    for (size_t i = 0; i < m->g2_chunks_n; i++)
        g1cuda_host_free(m->g1, m->g2_chunks[i]);
    free(m->g2_chunks);
    free(m->g2_slots);
    free(m->g2_free);
    for (size_t i = 0; i < m->free_bufs_n; i++) {
        if (m->g1)
            g1cuda_host_free(m->g1, m->free_bufs[i]);
        else
            free(m->free_bufs[i]);
    }
    free(m->free_bufs);
    free(m->jobs);
    free(m->read_buf);
    g1cuda_close(m->g1);
    pthread_cond_destroy(&m->wcond);
    pthread_cond_destroy(&m->wdone);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static void take_g1_ref(struct kvbm *m, struct kv_entry *e)
{
    if (e->g1_ref++ == 0 && l_linked(&e->g1_node)) {
        l_remove(&e->g1_node);
        m->g1_cached--;
    }
}

static void drop_g1_ref(struct kvbm *m, struct kv_entry *e)
{
    if (--e->g1_ref == 0 && e->in_g1) {
        l_push_front(&m->g1_lru, &e->g1_node);
        m->g1_cached++;
    }
}

/* Onboard e from G3 into G1 (and G2 as a prefetch): read into buf (aligned, file_bytes), which
 * holds the verified block on success. Lock held on entry and exit. */
static int onboard_from_disk(struct kvbm *m, struct kv_entry *e, struct kvbm_admit_result *res,
                             void *buf)
{
    e->pins++;
    pthread_mutex_unlock(&m->lock);
    uint64_t t0 = clock_now_ns();
    int rc = disktier_read(&m->disk, e->hash, buf);
    uint64_t t1 = clock_now_ns();
    bool ok = rc == 0 && kvblock_verify(buf, m->disk.file_bytes, e->hash) == 0;
    const char *kind = rc == DISKTIER_NOTREG ? disktier_kind(&m->disk, e->hash) : NULL;
    pthread_mutex_lock(&m->lock);
    e->pins--;
    if (e->g3_unlink_pending && e->pins == 0) {
        e->g3_unlink_pending = false;
        disktier_remove(&m->disk, e->hash);
    }
    res->g3_read_s += (double)(t1 - t0) / 1e9;
    if (!ok && rc == DISKTIER_NOTREG) {
        /* not a file this tier made (a FIFO, a link, a device...): a miss, and left in place */
        m->c.disk_read_errors++;
        m->c.disk_refused++;
        if (is_power_of_ten(m->c.disk_refused)) {
            char path[PATH_MAX];
            disktier_path(&m->disk, e->hash, path);
            log_warn("disk tier: refused %s: it is %s, not a regular file; the block is recomputed "
                     "and the file left in place (%llu refused so far, counted in "
                     "kvbench_disk_read_errors)",
                     path, kind, (unsigned long long)m->c.disk_refused);
        }
        if (e->in_g3)
            g3_forget(m, e);
        e->g3_refused = true; /* writing it again would be refused the same way */
        return -1;
    }
    if (!ok) {
        if (rc < 0) {
            m->c.disk_read_errors++;
            if (is_power_of_ten(m->c.disk_read_errors))
                log_warn("disk tier: reading block %016llx failed: %s; treated as a miss (%llu "
                         "read errors so far)",
                         (unsigned long long)e->hash, disktier_strerror(rc),
                         (unsigned long long)m->c.disk_read_errors);
        } else {
            m->c.checksum_failures++;
            log_warn("disk tier: block %016llx failed its checksum; treated as a miss",
                     (unsigned long long)e->hash);
        }
        if (e->in_g3)
            g3_remove(m, e);
        return -1;
    }
    m->c.disk_bytes_read += m->disk.file_bytes;
    record_fetch(m, (double)(t1 - t0) / 1e6);
    if (e->in_g3) {
        l_remove(&e->g3_node);
        l_push_front(&m->g3_lru, &e->g3_node);
    }
    if (m->use_g2 && !e->in_g2) {
        void *slot = g2_insert(m, e);
        if (slot) {
            memcpy(slot, buf, m->disk.file_bytes);
            m->c.prefetches++;
        }
    }
    return 0;
}

/* The reusable prefix of hashes[0..n_matchable): blocks present in some tier, in order. Returns
 * its length; *g1_hits: how many of them are in G1. Lock held. */
static size_t lookup_prefix(struct kvbm *m, const uint64_t *hashes, size_t n_matchable,
                            size_t *g1_hits)
{
    size_t prefix = 0;
    *g1_hits = 0;
    while (prefix < n_matchable) {
        struct kv_entry *e = find(m, hashes[prefix]);
        if (!e || !(e->in_g1 || (m->use_g2 && e->in_g2) || (m->use_g3 && e->in_g3)))
            break;
        if (e->in_g1)
            (*g1_hits)++;
        prefix++;
    }
    return prefix;
}

/* Hold the prefix's G1 blocks and reserve `needed` more, evicting cached G1 blocks as needed.
 * Returns false (nothing held) when G1 has no room now. Lock held. */
static bool reserve_g1(struct kvbm *m, struct kvbm_seq *seq, size_t prefix, size_t needed)
{
    for (size_t i = 0; i < prefix; i++) {
        struct kv_entry *e = find(m, seq->hashes[i]);
        if (e->in_g1) {
            take_g1_ref(m, e);
            seq->entries[i] = e;
        }
    }
    if (m->g1_used + needed > m->cfg.g1_blocks + m->g1_cached) {
        for (size_t i = 0; i < prefix; i++)
            if (seq->entries[i])
                drop_g1_ref(m, seq->entries[i]);
        return false;
    }
    while (m->g1_used + needed > m->cfg.g1_blocks)
        g1_evict_one(m);
    m->g1_used += needed;
    seq->n_private = needed;
    return true;
}

/* The G2 copy of e before it is onboarded: 0 intact, or -1 (logged, counted, dropped from G2).
 * Lock held. */
static int g2_verify(struct kvbm *m, struct kv_entry *e)
{
    if (kvblock_verify(m->g2_slots[e->g2_slot], m->disk.file_bytes, e->hash) == 0)
        return 0;
    m->c.checksum_failures++;
    log_warn("host tier: block %016llx failed its checksum; treated as a miss",
             (unsigned long long)e->hash);
    g2_drop(m, e);
    maybe_ghost(m, e);
    return -1;
}

/* Onboard one prefix block found below G1 (G2, else G3). Returns 0, or -1 when it is a miss
 * after all (a checksum failure, a failed read): the prefix ends there. Lock held. */
static int onboard_one(struct kvbm *m, struct kv_entry *e, struct kvbm_admit_result *res)
{
    if (m->use_g2)
        m->c.host_lookups++;
    if (m->use_g2 && e->in_g2) {
        if (g2_verify(m, e) < 0)
            return -1;
        m->c.host_hits++;
        m->c.onboard_h2d++;
        res->g2_onboards++;
        res->g2_bytes += m->cfg.block_bytes;
        l_remove(&e->g2_node);
        l_push_front(&m->g2_lru, &e->g2_node);
        return 0;
    }
    if (m->use_g3 && e->in_g3) {
        m->c.disk_lookups++;
        if (onboard_from_disk(m, e, res, m->read_buf) < 0) {
            maybe_ghost(m, e);
            return -1;
        }
        m->c.disk_hits++;
        m->c.onboard_d2d++;
        res->g3_onboards++;
        return 0;
    }
    return -1;
}

/* Bring the prefix into G1, in order; a failure ends the prefix. Returns the blocks matched.
 * Lock held (released around disk reads). */
static size_t onboard_prefix(struct kvbm *m, struct kvbm_seq *seq, size_t prefix,
                             struct kvbm_admit_result *res)
{
    size_t matched = 0;
    for (size_t i = 0; i < prefix; i++) {
        struct kv_entry *e = seq->entries[i];
        if (e) {
            res->g1_hits++;
            matched++;
            continue;
        }
        e = find(m, seq->hashes[i]);
        if (!e)
            break; /* dropped while the lock was released for a disk read */
        if (onboard_one(m, e, res) < 0)
            break;
        e->in_g1 = true;
        take_g1_ref(m, e);
        seq->entries[i] = e;
        seq->n_private--;
        matched++;
    }
    return matched;
}

/* ---------------------------------------------------------------- G1 on a CUDA device */

/* A block whose bytes did not reach G1 (its copy failed): out of G1, its slot free again, and
 * the sequence keeps it as a private block (recomputed, never shared). Lock held. */
static void g1_unhold(struct kvbm *m, struct kvbm_seq *seq, size_t i, struct kv_entry *e)
{
    e->in_g1 = false;
    g1cuda_slot_put(m->g1, e->g1_slot);
    drop_g1_ref(m, e);
    seq->entries[i] = NULL;
    seq->n_private++;
    maybe_ghost(m, e);
}

/* A computed block's fill into G1 is done. */
static void fill_done(void *ctx, const struct g1cuda_item *it, bool ok)
{
    if (!ok)
        g1_unhold(ctx, it->b, it->index, it->a);
}

/* A prefix block's copy into G1 is done; a failed one ends the prefix there. */
static void onboard_done(void *ctx, const struct g1cuda_item *it, bool ok)
{
    struct kvbm *m = ctx;
    struct kv_entry *e = it->a;
    e->g2_busy = false;
    if (ok)
        return;
    if (it->index < m->cx_fail)
        m->cx_fail = it->index;
    e->onboard_src = ONB_NONE;
    g1_unhold(m, it->b, it->index, e);
}

/* A copy out of G1 is done: into the block's G2 slot (write-through; on to disk from there), or
 * into a pinned write buffer (no host tier; its disk write is queued now). A failed one leaves
 * the block out of that tier. */
static void d2h_done(void *ctx, const struct g1cuda_item *it, bool ok)
{
    struct kvbm *m = ctx;
    struct kv_entry *e = it->a;
    if (it->tag == CX_OFFLOAD_G2) {
        e->g2_busy = false;
        if (!ok) {
            g2_drop(m, e);
            maybe_ghost(m, e);
            return;
        }
        m->c.offload_d2h++;
        consider_disk(m, e);
        return;
    }
    if (ok) {
        enqueue_job(m, e, it->b, true);
        return;
    }
    m->free_bufs[m->free_bufs_n++] = it->b;
    e->g3_queued = false;
    m->c.g3_queued--;
    maybe_ghost(m, e);
    pthread_cond_broadcast(&m->wdone);
}

/* Where e's bytes come from for its copy into G1: its G2 slot (checksum verified), or the pinned
 * staging buffer its disk read went into (verified there; also prefetched into G2). NULL: a miss
 * after all. *from: ONB_G2 or ONB_G3. Lock held (released around the disk read). */
static const void *onboard_source(struct kvbm *m, struct kv_entry *e, struct kvbm_admit_result *res,
                                  int *from)
{
    if (m->use_g2)
        m->c.host_lookups++;
    if (m->use_g2 && e->in_g2) {
        if (g2_verify(m, e) < 0)
            return NULL;
        m->c.host_hits++;
        l_remove(&e->g2_node);
        l_push_front(&m->g2_lru, &e->g2_node);
        *from = ONB_G2;
        return m->g2_slots[e->g2_slot];
    }
    if (m->use_g3 && e->in_g3) {
        m->c.disk_lookups++;
        void *buf = g1cuda_xfer_next(&m->xh); /* the next copy's pinned staging */
        if (onboard_from_disk(m, e, res, buf) < 0) {
            maybe_ghost(m, e);
            return NULL;
        }
        m->c.disk_hits++;
        *from = ONB_G3;
        return buf;
    }
    return NULL;
}

/* onboard_prefix with G1 on the device: each prefix block below G1 takes a G1 slot and is
 * copied there; the copies go out in batches and are waited for at the end. A failed copy ends
 * the prefix at its block (blocks past it that did arrive stay held, as G1 hits past a broken
 * prefix do). Counts the onboards. Returns the blocks matched. Lock held. */
static size_t onboard_prefix_cuda(struct kvbm *m, struct kvbm_seq *seq, size_t prefix,
                                  struct kvbm_admit_result *res)
{
    g1cuda_xfer_begin(&m->xh, m->g1, G1CUDA_H2D, false, onboard_done, m);
    m->cx_fail = SIZE_MAX;
    size_t stop = 0;
    for (; stop < prefix; stop++) {
        if (seq->entries[stop])
            continue; /* in G1 already */
        struct kv_entry *e = find(m, seq->hashes[stop]);
        if (!e)
            break; /* dropped while the lock was released for a disk read */
        int from = ONB_NONE;
        const void *src = onboard_source(m, e, res, &from);
        uint32_t slot;
        if (!src || g1cuda_slot_take(m->g1, &slot) < 0)
            break;
        e->g1_slot = slot;
        e->in_g1 = true;
        take_g1_ref(m, e);
        seq->entries[stop] = e;
        seq->n_private--;
        e->onboard_src = (uint8_t)from;
        e->g2_busy = from == ONB_G2;
        g1cuda_xfer_copy(&m->xh, g1cuda_slot(m->g1, slot), src,
                         &(struct g1cuda_item){.a = e, .b = seq, .index = stop});
    }
    res->g1_h2d_s = g1cuda_xfer_end(&m->xh);
    size_t matched = stop < m->cx_fail ? stop : m->cx_fail;
    for (size_t i = 0; i < stop; i++) {
        struct kv_entry *e = seq->entries[i];
        if (!e)
            continue;
        int from = e->onboard_src;
        e->onboard_src = ONB_NONE;
        if (i >= matched)
            continue;
        if (from == ONB_G2) {
            m->c.onboard_h2d++;
            res->g2_onboards++;
            res->g2_bytes += m->cfg.block_bytes;
        } else if (from == ONB_G3) {
            m->c.onboard_d2d++;
            res->g3_onboards++;
        } else {
            res->g1_hits++;
        }
    }
    return matched;
}

/* kvbm_register with G1 on the device, first the fills: each newly computed block takes a G1
 * slot and its bytes are written there from pinned staging (standing in for the KV its prefill
 * computed on the device). A failed fill leaves the block private. Lock held. */
static void register_fill(struct kvbm *m, struct kvbm_seq *seq)
{
    g1cuda_xfer_begin(&m->xh, m->g1, G1CUDA_H2D, true, fill_done, m);
    for (size_t i = seq->matched_blocks; i < seq->n_full; i++) {
        if (seq->entries[i])
            continue;
        struct kv_entry *e = find_or_create(m, seq->hashes[i]);
        if (!e)
            continue; /* out of memory: the block stays a private, unshared one */
        uint32_t slot = 0;
        if (e->in_g1) {
            /* Another sequence registered the same block meanwhile: share it. */
            take_g1_ref(m, e);
            m->g1_used--;
        } else if (g1cuda_slot_take(m->g1, &slot) < 0) {
            maybe_ghost(m, e);
            continue;
        } else {
            e->g1_slot = slot;
            e->in_g1 = true;
            take_g1_ref(m, e);
            void *stage = g1cuda_xfer_next(&m->xh);
            kvblock_fill(stage, m->disk.file_bytes, e->hash);
            g1cuda_xfer_copy(&m->xh, g1cuda_slot(m->g1, slot), stage,
                             &(struct g1cuda_item){.a = e, .b = seq, .index = i});
        }
        seq->n_private--;
        seq->entries[i] = e;
    }
    g1cuda_xfer_end(&m->xh);
}

/* Then the offloads: write-through G1→G2 as a real copy into the block's G2 slot (on to disk
 * once it is there), and the disk offload of blocks already in G2, or without a host tier
 * straight from their G1 slot. Lock held. */
static void register_offload(struct kvbm *m, struct kvbm_seq *seq)
{
    g1cuda_xfer_begin(&m->xd, m->g1, G1CUDA_D2H, false, d2h_done, m);
    for (size_t i = seq->matched_blocks; i < seq->n_full; i++) {
        struct kv_entry *e = seq->entries[i];
        if (!e)
            continue;
        e->freq++;
        if (m->use_g2 && !e->in_g2) {
            void *slot = g2_insert(m, e);
            if (slot) {
                e->g2_busy = true;
                g1cuda_xfer_copy(&m->xd, slot, g1cuda_slot(m->g1, e->g1_slot),
                                 &(struct g1cuda_item){.a = e, .tag = CX_OFFLOAD_G2});
                continue; /* d2h_done takes it on to disk */
            }
        }
        consider_disk(m, e);
    }
    g1cuda_xfer_end(&m->xd);
}

int kvbm_admit(struct kvbm *m, const uint64_t *hashes, size_t n_full, size_t n_matchable,
               size_t total_blocks, struct kvbm_seq *seq, struct kvbm_admit_result *res)
{
    memset(res, 0, sizeof *res);
    memset(seq, 0, sizeof *seq);
    if (total_blocks < n_full)
        total_blocks = n_full;
    if (total_blocks > m->cfg.g1_blocks)
        return -1;
    if (n_matchable > n_full)
        n_matchable = n_full;
    seq->hashes = fault_malloc((n_full ? n_full : 1) * sizeof *seq->hashes);
    seq->entries = fault_calloc(n_full ? n_full : 1, sizeof *seq->entries);
    if (!seq->hashes || !seq->entries) {
        free(seq->hashes);
        free(seq->entries);
        memset(seq, 0, sizeof *seq);
        return KVBM_ADMIT_NOMEM;
    }
    if (n_full)
        memcpy(seq->hashes, hashes, n_full * sizeof *hashes);
    seq->n_full = n_full;

    pthread_mutex_lock(&m->lock);
    size_t g1_hits;
    size_t prefix = lookup_prefix(m, hashes, n_matchable, &g1_hits);
    /* every block not already in G1 costs one */
    if (!reserve_g1(m, seq, prefix, total_blocks - g1_hits)) {
        pthread_mutex_unlock(&m->lock);
        free(seq->hashes);
        free(seq->entries);
        memset(seq, 0, sizeof *seq);
        return 0;
    }
    size_t matched =
        m->g1 ? onboard_prefix_cuda(m, seq, prefix, res) : onboard_prefix(m, seq, prefix, res);
    if (matched < n_matchable) {
        /* The lookup that ended the prefix was a miss in every lower tier. */
        struct kv_entry *e = find(m, hashes[matched]);
        if (!e || !e->in_g1) {
            if (m->use_g2 && !(e && e->in_g2))
                m->c.host_lookups++;
            if (m->use_g3 && !(e && e->in_g3))
                m->c.disk_lookups++;
        }
    }
    /* Held G1 entries past a broken prefix are recomputed but keep their (identical) blocks. */
    seq->matched_blocks = matched;
    res->matched_blocks = matched;
    m->c.matched_tokens += (uint64_t)matched * m->cfg.block_tokens;
    if (m->g1) /* without a host tier a block goes to disk from its G1 slot */
        g1cuda_xfer_begin(&m->xd, m->g1, G1CUDA_D2H, false, d2h_done, m);
    for (size_t i = 0; i < matched; i++) {
        struct kv_entry *e = seq->entries[i];
        e->freq++;
        consider_disk(m, e);
    }
    if (m->g1)
        g1cuda_xfer_end(&m->xd);
    pthread_mutex_unlock(&m->lock);
    return 1;
}

void kvbm_register(struct kvbm *m, struct kvbm_seq *seq)
{
    pthread_mutex_lock(&m->lock);
    if (m->g1) {
        register_fill(m, seq);
        register_offload(m, seq);
        pthread_mutex_unlock(&m->lock);
        return;
    }
    for (size_t i = seq->matched_blocks; i < seq->n_full; i++) {
        struct kv_entry *e = seq->entries[i];
        if (!e) {
            e = find_or_create(m, seq->hashes[i]);
            if (!e)
                continue; /* out of memory: the block stays a private, unshared one */
            if (e->in_g1) {
                /* Another sequence registered the same block meanwhile: share it. */
                take_g1_ref(m, e);
                m->g1_used--;
            } else {
                e->in_g1 = true;
                take_g1_ref(m, e);
            }
            seq->n_private--;
            seq->entries[i] = e;
        }
        e->freq++;
        if (m->use_g2 && !e->in_g2) {
            void *slot = g2_insert(m, e);
            if (slot) {
                kvblock_fill(slot, m->disk.file_bytes, e->hash);
                m->c.offload_d2h++;
            }
        }
        consider_disk(m, e);
    }
    pthread_mutex_unlock(&m->lock);
}

void kvbm_release(struct kvbm *m, struct kvbm_seq *seq)
{
    pthread_mutex_lock(&m->lock);
    /* Tail blocks first, so the LRU evicts a sequence's tail before its shared prefix. */
    for (size_t i = seq->n_full; i-- > 0;) {
        if (seq->entries && seq->entries[i])
            drop_g1_ref(m, seq->entries[i]);
    }
    m->g1_used -= seq->n_private;
    pthread_mutex_unlock(&m->lock);
    free(seq->hashes);
    free(seq->entries);
    memset(seq, 0, sizeof *seq);
}

void kvbm_get_counters(struct kvbm *m, struct kvbm_counters *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->c;
    out->g1_used = m->g1_used;
    out->g1_cached = m->g1_cached;
    out->g2_blocks = m->g2_count;
    out->g3_blocks = m->g3_count;
    if (m->g1) {
        const struct g1cuda_stats *st = g1cuda_stats(m->g1);
        for (int d = 0; d < 2; d++) {
            out->g1_copy_bytes[d] = st->copy_bytes[d];
            out->g1_copy_batches[d] = st->copy_batches[d];
            out->g1_copy_s[d] = st->copy_s[d];
        }
        out->g1_fill_bytes = st->fill_bytes;
        out->g1_copy_errors = st->copy_errors;
        out->g1_device_bytes = st->device_bytes;
    }
    pthread_mutex_unlock(&m->lock);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct_sorted(const double *v, size_t n, double p)
{
    double rank = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)rank;
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (v[hi] - v[lo]) * (rank - (double)lo);
}

void kvbm_get_gauges(struct kvbm *m, struct kvbm_gauges *out)
{
    double samples[FETCH_SAMPLES];
    pthread_mutex_lock(&m->lock);
    out->host_hit_rate = m->c.host_lookups ? (double)m->c.host_hits / (double)m->c.host_lookups : 0;
    out->disk_hit_rate = m->c.disk_lookups ? (double)m->c.disk_hits / (double)m->c.disk_lookups : 0;
    size_t n = m->fetch_n;
    memcpy(samples, m->fetch_ms, n * sizeof *samples);
    pthread_mutex_unlock(&m->lock);
    out->have_fetch = n > 0;
    out->fetch_p50_ms = out->fetch_p95_ms = out->fetch_p99_ms = 0;
    if (n) {
        qsort(samples, n, sizeof *samples, cmp_double);
        out->fetch_p50_ms = pct_sorted(samples, n, 50);
        out->fetch_p95_ms = pct_sorted(samples, n, 95);
        out->fetch_p99_ms = pct_sorted(samples, n, 99);
    }
}

void kvbm_flush(struct kvbm *m)
{
    pthread_mutex_lock(&m->lock);
    while (m->jobs_n > 0 || m->in_flight > 0)
        pthread_cond_wait(&m->wdone, &m->lock);
    pthread_mutex_unlock(&m->lock);
}

const struct kvbm_config *kvbm_config(const struct kvbm *m)
{
    return &m->cfg;
}

void kvbm_g1_describe(const struct kvbm *m, char *out, size_t len)
{
    if (!m->g1) {
        snprintf(out, len, "modelled (capacity and bookkeeping only, no bytes)");
        return;
    }
    char dev[600];
    g1cuda_describe(m->g1, dev, sizeof dev);
    snprintf(out, len,
             "%s: %zu blocks, %.1f MiB of device memory; G2 in pinned host memory; copies in "
             "batches of %d blocks on %d streams",
             dev, m->cfg.g1_blocks, (double)g1cuda_stats(m->g1)->device_bytes / 1048576.0,
             G1CUDA_BATCH, G1CUDA_STREAMS);
}

const char *kvbm_disk_mode(const struct kvbm *m)
{
    return m->use_g3 ? disktier_mode(&m->disk) : "none";
}

void kvbm_block_path(const struct kvbm *m, uint64_t hash, char *out, size_t len)
{
    char path[PATH_MAX];
    disktier_path(&m->disk, hash, path);
    snprintf(out, len, "%s", path);
}

unsigned kvbm_block_tiers(struct kvbm *m, uint64_t hash)
{
    pthread_mutex_lock(&m->lock);
    struct kv_entry *e = find(m, hash);
    unsigned t = e ? (unsigned)e->in_g1 | (unsigned)e->in_g2 << 1 | (unsigned)e->in_g3 << 2 : 0;
    pthread_mutex_unlock(&m->lock);
    return t;
}

int kvbm_test_corrupt_g2(struct kvbm *m, uint64_t hash)
{
    pthread_mutex_lock(&m->lock);
    struct kv_entry *e = find(m, hash);
    int rc = -1;
    if (e && e->in_g2) {
        unsigned char *p = m->g2_slots[e->g2_slot];
        p[BLOCK_HEADER + 100] ^= 0x5a;
        rc = 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int kvbm_test_read_g1(struct kvbm *m, uint64_t hash, void *out)
{
    pthread_mutex_lock(&m->lock);
    struct kv_entry *e = find(m, hash);
    int rc = -1;
    if (m->g1 && e && e->in_g1)
        rc = g1cuda_read_slot(m->g1, e->g1_slot, out, NULL);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void kvbm_test_fail_disk_writes(struct kvbm *m, int n)
{
    pthread_mutex_lock(&m->lock);
    m->disk.fail_writes = n;
    pthread_mutex_unlock(&m->lock);
}
