/*
 * tierprobe.c - the measurements behind `kvbench tiers`.
 *
 * One pass engine serves the three paths: `inflight` worker threads take batch numbers from a
 * shared counter until every block is moved, and call the path's operations (a table of
 * functions): prep (untimed: stamp the block's identity into its buffer), move (timed: the
 * batch's transfers, from its first submit to its last completion) and check (untimed: the
 * read-back is the block expected). The pass's time is its first submit to its last completion,
 * so GB/s is bytes over the wall time of the whole pass, never an average of per-batch rates.
 *
 * Each worker owns its buffers (batch slots), filled once with kvblock_fill before any timing.
 * A block's identity is its hash: the fill's payload and checksum stay, and only the header's
 * hash (bytes 8..15, disktier.h's block layout) is stamped per block, so a write costs no fill
 * and every block written is still a valid block of its own hash. Reads check the header of
 * every block in the timed pass (a block that did not arrive, or another block's bytes), and an
 * untimed verification pass after it reads every block again and checks its payload's checksum
 * (kvblock_verify): the timed reads pay for no checksum, and no block goes unchecked.
 *
 * g2_g3 uses the engine's own block files (disktier: O_DIRECT, or buffered with the page cache
 * dropped), in <disk_dir>/kvbench-tiers-<pid>, locked by disktier like an engine's directory and
 * removed afterwards. g1_g3 uses one preallocated file there with blocks at offsets (as KVBM's
 * disk pool), through cuFile. g1_g2 copies between each worker's device slots and host slots on
 * the worker's own stream: 4 workers, 4 batches in flight on 4 streams; its read-back is checked
 * by copying the slots back once a pass is done.
 */
#include "engine/tierprobe.h"

#include "engine/disktier.h"
#include "engine/kvbm.h"
#include "util/clock.h"
#include "util/cuda.h"
#include "util/cufile.h"
#include "util/err.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#define GIB 1073741824.0
/* a pass shorter than this gets a note: too few batches for a steady figure */
#define SHORT_PASS_S 0.010
/* the header: magic (8 bytes), hash (8), as engine/disktier.h describes a block file */
#define HDR_BYTES 16

const double TIERPROBE_BE_LENGTH[TIERPROBE_BE_LENGTHS] = {1024, 4096, 16384, 32768};

const char *tier_status_name(enum tier_status s)
{
    return s == TIER_OK ? "ok" : s == TIER_UNAVAILABLE ? "unavailable" : "error";
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* Whether a header names the block expected; err says what it holds otherwise. */
static int check_header(const unsigned char *h, size_t block, uint64_t hash, char *err)
{
    uint64_t got;
    if (!kvblock_header(h, &got))
        return err_set(err, "block %zu: read back no block header (the read did not land)", block);
    if (got != hash)
        return err_set(err, "block %zu: read back another block (hash %016llx, expected %016llx)",
                       block, (unsigned long long)got, (unsigned long long)hash);
    return 0;
}

/* ------------------------------------------------------------------------------- the passes */

struct tp_batch {
    size_t first, n; /* blocks [first, first + n) */
};

/* A path's operations on one worker's state w. Each returns 0, or -1 with err. */
struct tp_ops {
    int (*start)(void *w, char *err); /* on the worker's thread, once (cuda_bind) */
    int (*prep)(void *w, const struct tp_batch *b, char *err);
    int (*move)(void *w, const struct tp_batch *b, char *err); /* the timed part */
    int (*check)(void *w, const struct tp_batch *b, char *err);
};

struct tp_pass {
    const struct tp_ops *ops;
    void **workers;
    size_t n_workers, blocks, batch, n_batches;
    volatile sig_atomic_t *stop;
    _Atomic size_t next; /* the next batch to take */
    _Atomic bool failed;
    double *batch_us;     /* per batch; each written by the worker that moved it */
    pthread_mutex_t lock; /* guards what follows */
    char err[ERR_LEN];    /* the first failure */
    uint64_t t0, t1;      /* first submit, last completion */
};

struct tp_thread {
    struct tp_pass *p;
    void *w;
};

static void pass_fail(struct tp_pass *p, const char *err)
{
    pthread_mutex_lock(&p->lock);
    if (!atomic_load(&p->failed))
        snprintf(p->err, sizeof p->err, "%s", err);
    atomic_store(&p->failed, true);
    pthread_mutex_unlock(&p->lock);
}

static void *pass_worker(void *arg)
{
    struct tp_thread *t = arg;
    struct tp_pass *p = t->p;
    const struct tp_ops *ops = p->ops;
    char err[ERR_LEN] = "";
    uint64_t first = UINT64_MAX, last = 0;
    if (ops->start && ops->start(t->w, err) < 0) {
        pass_fail(p, err);
        return NULL;
    }
    while (!atomic_load(&p->failed) && !(p->stop && *p->stop)) {
        size_t k = atomic_fetch_add(&p->next, 1);
        if (k >= p->n_batches)
            break;
        struct tp_batch b = {k * p->batch, p->blocks - k * p->batch};
        if (b.n > p->batch)
            b.n = p->batch;
        if (ops->prep && ops->prep(t->w, &b, err) < 0)
            break;
        uint64_t s = clock_now_ns();
        if (ops->move(t->w, &b, err) < 0)
            break;
        uint64_t e = clock_now_ns();
        p->batch_us[k] = (double)(e - s) / 1e3;
        first = s < first ? s : first;
        last = e > last ? e : last;
        if (ops->check && ops->check(t->w, &b, err) < 0)
            break;
    }
    if (err[0])
        pass_fail(p, err);
    pthread_mutex_lock(&p->lock);
    p->t0 = first < p->t0 ? first : p->t0;
    p->t1 = last > p->t1 ? last : p->t1;
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Run a pass over blocks with one thread per worker. Returns 0, or -1 with err (the first
 * failure, or "interrupted"). p->batch_us and the times are the caller's to read (pass_free). */
static int pass_run(struct tp_pass *p, const struct tp_ops *ops, void **workers, size_t n_workers,
                    size_t blocks, size_t batch, volatile sig_atomic_t *stop, char *err)
{
    memset(p, 0, sizeof *p);
    p->ops = ops;
    p->workers = workers;
    p->n_workers = n_workers;
    p->blocks = blocks;
    p->batch = batch;
    p->n_batches = (blocks + batch - 1) / batch;
    p->stop = stop;
    p->t0 = UINT64_MAX;
    pthread_mutex_init(&p->lock, NULL);
    p->batch_us = calloc(p->n_batches ? p->n_batches : 1, sizeof *p->batch_us);
    pthread_t *tid = calloc(n_workers, sizeof *tid);
    struct tp_thread *th = calloc(n_workers, sizeof *th);
    size_t started = 0;
    if (!p->batch_us || !tid || !th) {
        pass_fail(p, "out of memory");
    } else {
        for (; started < n_workers; started++) {
            th[started] = (struct tp_thread){p, workers[started]};
            if (pthread_create(&tid[started], NULL, pass_worker, &th[started]) != 0) {
                pass_fail(p, "cannot start a worker thread");
                break;
            }
        }
    }
    for (size_t i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    free(tid);
    free(th);
    if (atomic_load(&p->failed))
        return err_set(err, "%s", p->err);
    if (stop && *stop)
        return err_set(err, "interrupted");
    return 0;
}

static void pass_free(struct tp_pass *p)
{
    free(p->batch_us);
    p->batch_us = NULL;
    pthread_mutex_destroy(&p->lock);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (linear interpolation) of v[0..n), n > 0; sorts v. */
static double quantile(double *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, cmp_double);
    double at = q * (double)(n - 1);
    size_t lo = (size_t)at;
    return lo + 1 < n ? v[lo] + (v[lo + 1] - v[lo]) * (at - (double)lo) : v[n - 1];
}

static void row_unmeasured(struct tier_row *r, enum tier_status st, const char *reason)
{
    r->status = st;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    r->pass_s = r->gb_per_s = r->us_per_block = r->batch_p50_us = r->batch_p99_us =
        r->kv_tokens_per_s = NAN;
}

/* A row from a pass that ran (extra_s: time the pass needed after its last batch, e.g. a
 * buffered file's fdatasync). The batch percentiles are over full batches when there is one (a
 * short last batch would pull them down). */
static void row_from_pass(struct tier_row *r, const struct tp_pass *p, double extra_s,
                          const struct tierprobe_config *cfg)
{
    size_t full = p->blocks / p->batch, n = full ? full : p->n_batches;
    double pass_s = (double)(p->t1 - p->t0) / 1e9 + extra_s;
    r->status = TIER_OK;
    r->pass_s = pass_s;
    r->gb_per_s = (double)r->bytes / pass_s / 1e9;
    r->us_per_block = pass_s * 1e6 / (double)r->blocks;
    r->kv_tokens_per_s = (double)r->bytes / pass_s / cfg->kv_bytes_per_token;
    r->batch_p50_us = quantile(p->batch_us, n, 0.50);
    r->batch_p99_us = quantile(p->batch_us, n, 0.99);
    if (pass_s < SHORT_PASS_S) {
        size_t len = strlen(r->reason);
        snprintf(r->reason + len, sizeof r->reason - len,
                 "%spass took %.1f ms: too short to be steady; raise --blocks", len ? "; " : "",
                 pass_s * 1e3);
    }
}

/* Set up a row's identity before it is measured. */
static void row_init(struct tier_row *r, const char *path, const char *dir,
                     const struct tierprobe_config *cfg)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->direction = dir;
    r->blocks = cfg->blocks;
    r->bytes = (uint64_t)cfg->blocks * cfg->block_bytes;
    row_unmeasured(r, TIER_ERROR, "");
}

static void progress(const struct tierprobe_config *cfg, const char *what)
{
    if (cfg->progress)
        cfg->progress(what, cfg->progress_arg);
}

/* "g1_g2 write (pinned)" */
static void progress_row(const struct tierprobe_config *cfg, const struct tier_row *r)
{
    char what[64];
    snprintf(what, sizeof what, "%s %s (%s)", r->path, r->direction, r->variant);
    progress(cfg, what);
}

static bool stopped(const struct tierprobe_config *cfg)
{
    return cfg->stop && *cfg->stop;
}

/* The read row of a path whose write pass did not complete. */
static void read_unmeasured(const struct tierprobe_config *cfg, struct tier_row *r)
{
    row_unmeasured(r, TIER_ERROR,
                   stopped(cfg) ? "interrupted" : "not measured: the write pass failed");
}

/* The hash of block i of a pass, and the fill seed of a worker's slot (any distinct numbers: the
 * hashes also name the block files). */
static uint64_t block_hash(uint64_t base, size_t i)
{
    return base + (uint64_t)i;
}

static uint64_t slot_seed(uint64_t base, size_t w, size_t j)
{
    return ~base ^ ((uint64_t)w << 32 | (uint64_t)j);
}

/* Whether the filesystem under dir has room for bytes (with 2 % to spare). Returns 0 (or when
 * it cannot be told), -1 with err. */
static int check_space(const char *dir, double bytes, char *err)
{
    struct statvfs v;
    if (statvfs(dir, &v) < 0)
        return 0;
    double avail = (double)v.f_bavail * (double)v.f_frsize;
    if (avail < bytes * 1.02)
        return err_set(err, "needs %.2f GiB under %s and %.2f GiB are free; lower --blocks",
                       bytes / GIB, dir, avail / GIB);
    return 0;
}

/* ---------------------------------------------------------------------- g2_g3: block files */

struct disk_worker {
    struct disktier *d;
    unsigned char *buf; /* batch slots of file_bytes, aligned */
    size_t stride, block_bytes;
    uint64_t base;
};

static int disk_prep_write(void *wp, const struct tp_batch *b, char *err)
{
    (void)err;
    struct disk_worker *w = wp;
    for (size_t j = 0; j < b->n; j++)
        kvblock_restamp(w->buf + j * w->stride, block_hash(w->base, b->first + j));
    return 0;
}

static int disk_prep_read(void *wp, const struct tp_batch *b, char *err)
{
    (void)err;
    struct disk_worker *w = wp;
    for (size_t j = 0; j < b->n; j++)
        memset(w->buf + j * w->stride, 0, HDR_BYTES);
    return 0;
}

static int disk_write(void *wp, const struct tp_batch *b, char *err)
{
    struct disk_worker *w = wp;
    for (size_t j = 0; j < b->n; j++) {
        int rc = disktier_write(w->d, block_hash(w->base, b->first + j), w->buf + j * w->stride);
        if (rc < 0)
            return err_set(err, "writing block %zu under %s: %s", b->first + j, w->d->dir,
                           disktier_strerror(rc));
    }
    return 0;
}

static int disk_read(void *wp, const struct tp_batch *b, char *err)
{
    struct disk_worker *w = wp;
    for (size_t j = 0; j < b->n; j++) {
        int rc = disktier_read(w->d, block_hash(w->base, b->first + j), w->buf + j * w->stride);
        if (rc < 0)
            return err_set(err, "reading block %zu under %s: %s", b->first + j, w->d->dir,
                           disktier_strerror(rc));
    }
    return 0;
}

static int disk_check_header(void *wp, const struct tp_batch *b, char *err)
{
    struct disk_worker *w = wp;
    for (size_t j = 0; j < b->n; j++)
        if (check_header(w->buf + j * w->stride, b->first + j, block_hash(w->base, b->first + j),
                         err) < 0)
            return -1;
    return 0;
}

static int disk_verify(void *wp, const struct tp_batch *b, char *err)
{
    struct disk_worker *w = wp;
    for (size_t j = 0; j < b->n; j++) {
        uint64_t h = block_hash(w->base, b->first + j);
        if (kvblock_verify(w->buf + j * w->stride, w->block_bytes, h) < 0)
            return err_set(err,
                           "block %zu (hash %016llx): its bytes read back differ from those "
                           "written (checksum mismatch)",
                           b->first + j, (unsigned long long)h);
    }
    return 0;
}

static const struct tp_ops DISK_WRITE = {NULL, disk_prep_write, disk_write, NULL};
static const struct tp_ops DISK_READ = {NULL, disk_prep_read, disk_read, disk_check_header};
static const struct tp_ops DISK_VERIFY = {NULL, disk_prep_read, disk_read, disk_verify};

/* Write, read (timed) and verify (untimed) the block files; rows[0] write, rows[1] read. */
static void disk_passes(const struct tierprobe_config *cfg, struct disk_worker *ws, void **wp,
                        struct tier_row *rows)
{
    char err[ERR_LEN];
    struct tp_pass p;
    progress_row(cfg, &rows[0]);
    int rc = pass_run(&p, &DISK_WRITE, wp, cfg->inflight, cfg->blocks, cfg->batch, cfg->stop, err);
    if (rc == 0)
        row_from_pass(&rows[0], &p, 0, cfg);
    else
        row_unmeasured(&rows[0], TIER_ERROR, err);
    pass_free(&p);
    if (rc < 0) {
        read_unmeasured(cfg, &rows[1]);
        return;
    }
    if (cfg->test_after_write)
        cfg->test_after_write("g2_g3", ws[0].d->dir, cfg->test_arg);
    progress_row(cfg, &rows[1]);
    rc = pass_run(&p, &DISK_READ, wp, cfg->inflight, cfg->blocks, cfg->batch, cfg->stop, err);
    struct tier_row timed = rows[1];
    if (rc == 0)
        row_from_pass(&timed, &p, 0, cfg);
    pass_free(&p);
    if (rc == 0) {
        progress(cfg, "g2_g3 verify");
        rc = pass_run(&p, &DISK_VERIFY, wp, cfg->inflight, cfg->blocks, cfg->batch, cfg->stop, err);
        pass_free(&p);
    }
    if (rc == 0)
        rows[1] = timed;
    else
        row_unmeasured(&rows[1], TIER_ERROR, err);
}

/* The directory is in memory (tmpfs, ramfs), where O_DIRECT may be accepted (tmpfs since Linux
 * 6.6) but no device is reached: what would be measured is memory. */
static bool in_memory_fs(const char *dir, char *what, size_t len)
{
    struct statfs sf;
    if (statfs(dir, &sf) != 0)
        return false;
    const char *name = (unsigned long)sf.f_type == 0x01021994ul   ? "tmpfs"
                       : (unsigned long)sf.f_type == 0x858458f6ul ? "ramfs"
                                                                  : NULL;
    if (name)
        snprintf(what, len, "%s", name);
    return name != NULL;
}

/* The g2_g3 rows, with the tier d open on the scratch directory. */
static void run_g2_g3(const struct tierprobe_config *cfg, struct disktier *d, uint64_t base,
                      struct tier_row *rows)
{
    const char *variant = d->direct ? "o_direct" : "buffered";
    char err[ERR_LEN];
    for (int k = 0; k < 2; k++) {
        snprintf(rows[k].variant, sizeof rows[k].variant, "%s", variant);
        if (!d->direct)
            snprintf(rows[k].reason, sizeof rows[k].reason,
                     "O_DIRECT refused here: buffered, each write fdatasync'ed and the page cache "
                     "dropped (fadvise DONTNEED) so that reads reach the device");
    }
    char fs[16];
    if (in_memory_fs(d->dir, fs, sizeof fs)) {
        for (int k = 0; k < 2; k++)
            snprintf(rows[k].reason, sizeof rows[k].reason,
                     "%s is %s (memory): these are memory speeds, not a disk's; give "
                     "--disk-cache-dir a directory on the disk the KV cache would use",
                     cfg->disk_dir, fs);
    }
    if (check_space(d->dir, (double)cfg->blocks * (double)d->file_bytes, err) < 0) {
        row_unmeasured(&rows[0], TIER_ERROR, err);
        row_unmeasured(&rows[1], TIER_ERROR, err);
        return;
    }
    struct disk_worker *ws = calloc(cfg->inflight, sizeof *ws);
    void **wp = calloc(cfg->inflight, sizeof *wp);
    bool ok = ws && wp;
    for (size_t w = 0; ok && w < cfg->inflight; w++) {
        ws[w] = (struct disk_worker){d, NULL, d->file_bytes, cfg->block_bytes, base};
        ok = posix_memalign((void **)&ws[w].buf, DISKTIER_ALIGN, cfg->batch * d->file_bytes) == 0;
        if (!ok)
            ws[w].buf = NULL;
        for (size_t j = 0; ok && j < cfg->batch; j++)
            kvblock_fill(ws[w].buf + j * d->file_bytes, cfg->block_bytes, slot_seed(base, w, j));
        wp[w] = &ws[w];
    }
    if (ok) {
        d->fail_writes = cfg->test_fail_writes;
        disk_passes(cfg, ws, wp, rows);
    } else {
        row_unmeasured(&rows[0], TIER_ERROR, "out of memory for the block buffers");
        row_unmeasured(&rows[1], TIER_ERROR, "out of memory for the block buffers");
    }
    for (size_t i = 0; i < cfg->blocks; i++)
        disktier_remove(d, block_hash(base, i));
    for (size_t w = 0; ws && w < cfg->inflight; w++)
        free(ws[w].buf);
    free(ws);
    free(wp);
}

/* ------------------------------------------------------------------- g1_g2: device <-> host */

struct copy_worker {
    const struct cuda_rt *rt;
    cuda_stream s;
    unsigned char *dev, *host; /* batch slots each */
    size_t stride, block_bytes;
    bool pinned;
    size_t touched; /* slots [0, touched) moved in the current pass (by this worker's thread) */
};

static int copy_start(void *wp, char *err)
{
    return cuda_bind(((struct copy_worker *)wp)->rt, err);
}

/* Copy slots [0, n) of one worker in one direction on its stream, and wait. */
static int copy_slots(struct copy_worker *w, size_t n, enum cuda_copy_kind kind, char *err)
{
    for (size_t j = 0; j < n; j++) {
        unsigned char *dev = w->dev + j * w->stride, *host = w->host + j * w->stride;
        if (cuda_copy_async(w->rt, kind == CUDA_D2H ? host : dev, kind == CUDA_D2H ? dev : host,
                            w->block_bytes, kind, w->s, err) < 0)
            return -1;
    }
    return cuda_stream_sync(w->rt, w->s, err);
}

static int copy_batch(struct copy_worker *w, const struct tp_batch *b, enum cuda_copy_kind kind,
                      char *err)
{
    if (b->n > w->touched)
        w->touched = b->n;
    return copy_slots(w, b->n, kind, err);
}

static int copy_d2h(void *wp, const struct tp_batch *b, char *err)
{
    return copy_batch(wp, b, CUDA_D2H, err);
}

static int copy_h2d(void *wp, const struct tp_batch *b, char *err)
{
    return copy_batch(wp, b, CUDA_H2D, err);
}

static const struct tp_ops COPY_D2H = {copy_start, NULL, copy_d2h, NULL};
static const struct tp_ops COPY_H2D = {copy_start, NULL, copy_h2d, NULL};

static void copy_workers_free(struct copy_worker *ws, size_t n)
{
    for (size_t w = 0; ws && w < n; w++) {
        if (ws[w].pinned)
            cuda_host_free(ws[w].rt, ws[w].host);
        else
            free(ws[w].host);
        cuda_free(ws[w].rt, ws[w].dev);
        cuda_stream_free(ws[w].rt, ws[w].s);
    }
    free(ws);
}

/* Each worker: a stream, batch device slots, batch host slots (pinned or pageable). */
static struct copy_worker *copy_workers_new(const struct tierprobe_config *cfg,
                                            const struct cuda_rt *rt, bool pinned, char *err)
{
    struct copy_worker *ws = calloc(cfg->inflight, sizeof *ws);
    if (!ws) {
        err_set(err, "out of memory");
        return NULL;
    }
    size_t stride = round_up(cfg->block_bytes, DISKTIER_ALIGN), bytes = cfg->batch * stride;
    for (size_t w = 0; w < cfg->inflight; w++) {
        struct copy_worker *c = &ws[w];
        *c = (struct copy_worker){rt, NULL, NULL, NULL, stride, cfg->block_bytes, pinned, 0};
        int rc = cuda_stream_new(rt, &c->s, err);
        if (rc == 0)
            rc = cuda_malloc(rt, (void **)&c->dev, bytes, err);
        if (rc == 0 && pinned)
            rc = cuda_host_alloc(rt, (void **)&c->host, bytes, err);
        if (rc == 0 && !pinned && posix_memalign((void **)&c->host, DISKTIER_ALIGN, bytes) != 0) {
            c->host = NULL;
            rc = err_set(err, "out of memory for %zu MiB of pageable host memory", bytes >> 20);
        }
        if (rc < 0) {
            copy_workers_free(ws, w + 1);
            return NULL;
        }
    }
    return ws;
}

/* Every worker's host slots: its blocks (blocks true) or zeros. */
static void host_fill(struct copy_worker *ws, const struct tierprobe_config *cfg, uint64_t base,
                      bool blocks)
{
    for (size_t w = 0; w < cfg->inflight; w++)
        for (size_t j = 0; j < cfg->batch; j++) {
            unsigned char *h = ws[w].host + j * ws[w].stride;
            if (blocks)
                kvblock_fill(h, cfg->block_bytes, slot_seed(base, w, j));
            else
                memset(h, 0, cfg->block_bytes);
        }
}

/* Copy every worker's slots one way, and wait. */
static int copy_all(struct copy_worker *ws, const struct tierprobe_config *cfg,
                    enum cuda_copy_kind kind, char *err)
{
    for (size_t w = 0; w < cfg->inflight; w++)
        if (copy_slots(&ws[w], cfg->batch, kind, err) < 0)
            return -1;
    return 0;
}

/* Whether the host slots that the pass moved (a worker that took no batch moved none) hold the
 * blocks that were filled. */
static int host_verify(struct copy_worker *ws, const struct tierprobe_config *cfg, uint64_t base,
                       const char *what, char *err)
{
    for (size_t w = 0; w < cfg->inflight; w++)
        for (size_t j = 0; j < ws[w].touched; j++)
            if (kvblock_verify(ws[w].host + j * ws[w].stride, cfg->block_bytes,
                               slot_seed(base, w, j)) < 0)
                return err_set(err,
                               "%s: worker %zu's slot %zu holds other bytes than the block "
                               "copied (checksum mismatch)",
                               what, w, j);
    return 0;
}

/* The timed offload pass (D2H): the host slots are zeroed first, and hold the device's blocks
 * after it. */
static int copy_offload(const struct tierprobe_config *cfg, struct copy_worker *ws, void **wp,
                        uint64_t base, struct tier_row *row)
{
    char err[ERR_LEN];
    struct tp_pass p;
    host_fill(ws, cfg, base, false);
    for (size_t w = 0; w < cfg->inflight; w++)
        ws[w].touched = 0;
    progress_row(cfg, row);
    int rc = pass_run(&p, &COPY_D2H, wp, cfg->inflight, cfg->blocks, cfg->batch, cfg->stop, err);
    if (rc == 0 && (rc = host_verify(ws, cfg, base, "offload (D2H)", err)) == 0)
        row_from_pass(row, &p, 0, cfg);
    pass_free(&p);
    if (rc < 0)
        row_unmeasured(row, TIER_ERROR, err);
    return rc;
}

/* The timed onboard pass (H2D): the device slots are zeroed first; after it they are copied back
 * and checked. */
static int copy_onboard(const struct tierprobe_config *cfg, struct copy_worker *ws, void **wp,
                        uint64_t base, struct tier_row *row)
{
    char err[ERR_LEN];
    struct tp_pass p;
    host_fill(ws, cfg, base, false);
    if (copy_all(ws, cfg, CUDA_H2D, err) < 0) {
        row_unmeasured(row, TIER_ERROR, err);
        return -1;
    }
    host_fill(ws, cfg, base, true);
    for (size_t w = 0; w < cfg->inflight; w++)
        ws[w].touched = 0;
    progress_row(cfg, row);
    int rc = pass_run(&p, &COPY_H2D, wp, cfg->inflight, cfg->blocks, cfg->batch, cfg->stop, err);
    if (rc == 0) {
        host_fill(ws, cfg, base, false);
        rc = copy_all(ws, cfg, CUDA_D2H, err);
    }
    if (rc == 0 && (rc = host_verify(ws, cfg, base, "onboard (H2D)", err)) == 0)
        row_from_pass(row, &p, 0, cfg);
    pass_free(&p);
    if (rc < 0)
        row_unmeasured(row, TIER_ERROR, err);
    return rc;
}

/* One variant's rows (rows[0] write, rows[1] read): set-up, a warm-up of each direction (first
 * touch, the runtime's lazy set-up), then the timed passes. */
static void run_g1_g2_variant(const struct tierprobe_config *cfg, const struct cuda_rt *rt,
                              bool pinned, uint64_t base, struct tier_row *rows)
{
    char err[ERR_LEN];
    struct copy_worker *ws = copy_workers_new(cfg, rt, pinned, err);
    void **wp = ws ? calloc(cfg->inflight, sizeof *wp) : NULL;
    if (!wp) {
        row_unmeasured(&rows[0], TIER_ERROR, ws ? "out of memory" : err);
        row_unmeasured(&rows[1], TIER_ERROR, ws ? "out of memory" : err);
        copy_workers_free(ws, cfg->inflight);
        return;
    }
    for (size_t w = 0; w < cfg->inflight; w++)
        wp[w] = &ws[w];
    host_fill(ws, cfg, base, true);
    int rc = copy_all(ws, cfg, CUDA_H2D, err);
    size_t warm =
        cfg->blocks < 2 * cfg->batch * cfg->inflight ? cfg->blocks : 2 * cfg->batch * cfg->inflight;
    struct tp_pass p;
    for (int k = 0; rc == 0 && k < 2; k++) {
        rc = pass_run(&p, k ? &COPY_H2D : &COPY_D2H, wp, cfg->inflight, warm, cfg->batch, cfg->stop,
                      err);
        pass_free(&p);
    }
    if (rc == 0)
        rc = copy_offload(cfg, ws, wp, base, &rows[0]);
    else
        row_unmeasured(&rows[0], TIER_ERROR, err);
    if (rc == 0)
        copy_onboard(cfg, ws, wp, base, &rows[1]);
    else
        read_unmeasured(cfg, &rows[1]);
    free(wp);
    copy_workers_free(ws, cfg->inflight);
}

/* ------------------------------------------------------------------------ g1_g3: cuFile */

struct gds_worker {
    const struct cuda_rt *rt;
    struct cufile *cf;
    void *fh;
    cuda_stream s;
    unsigned char *dev;  /* batch slots, registered with cuFile */
    unsigned char *host; /* pinned: batch slots, then one of zeros */
    size_t stride, block_bytes, batch;
    uint64_t base;
    bool registered;
};

static int gds_start(void *wp, char *err)
{
    return cuda_bind(((struct gds_worker *)wp)->rt, err);
}

/* Stamp each block's hash into its device slot's header (an 8-byte copy), and wait. */
static int gds_prep_write(void *wp, const struct tp_batch *b, char *err)
{
    struct gds_worker *w = wp;
    for (size_t j = 0; j < b->n; j++) {
        unsigned char *blk = w->host + j * w->stride;
        kvblock_restamp(blk, block_hash(w->base, b->first + j));
        if (cuda_copy_async(w->rt, w->dev + j * w->stride + 8, blk + 8, 8, CUDA_H2D, w->s, err) < 0)
            return -1;
    }
    return cuda_stream_sync(w->rt, w->s, err);
}

/* Zero each device slot's header, so that a read that does not land is seen. */
static int gds_prep_read(void *wp, const struct tp_batch *b, char *err)
{
    struct gds_worker *w = wp;
    const unsigned char *zero = w->host + w->batch * w->stride;
    for (size_t j = 0; j < b->n; j++)
        if (cuda_copy_async(w->rt, w->dev + j * w->stride, zero, HDR_BYTES, CUDA_H2D, w->s, err) <
            0)
            return -1;
    return cuda_stream_sync(w->rt, w->s, err);
}

static int gds_write(void *wp, const struct tp_batch *b, char *err)
{
    struct gds_worker *w = wp;
    for (size_t j = 0; j < b->n; j++) {
        off_t off = (off_t)((b->first + j) * w->stride), dev_off = (off_t)(j * w->stride);
        ssize_t r = cufile_write(w->cf, w->fh, w->dev, w->stride, off, dev_off, err);
        if (r >= 0 && (size_t)r != w->stride)
            return err_set(err, "cuFileWrite of block %zu wrote %zd of %zu bytes", b->first + j, r,
                           w->stride);
        if (r < 0)
            return -1;
    }
    return 0;
}

static int gds_read(void *wp, const struct tp_batch *b, char *err)
{
    struct gds_worker *w = wp;
    for (size_t j = 0; j < b->n; j++) {
        off_t off = (off_t)((b->first + j) * w->stride), dev_off = (off_t)(j * w->stride);
        ssize_t r = cufile_read(w->cf, w->fh, w->dev, w->stride, off, dev_off, err);
        if (r >= 0 && (size_t)r != w->stride)
            return err_set(err, "cuFileRead of block %zu read %zd of %zu bytes", b->first + j, r,
                           w->stride);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* Copy n bytes of each slot of the batch to the host, and wait. */
static int gds_fetch(struct gds_worker *w, const struct tp_batch *b, size_t n, char *err)
{
    for (size_t j = 0; j < b->n; j++)
        if (cuda_copy_async(w->rt, w->host + j * w->stride, w->dev + j * w->stride, n, CUDA_D2H,
                            w->s, err) < 0)
            return -1;
    return cuda_stream_sync(w->rt, w->s, err);
}

static int gds_check_header(void *wp, const struct tp_batch *b, char *err)
{
    struct gds_worker *w = wp;
    if (gds_fetch(w, b, HDR_BYTES, err) < 0)
        return -1;
    for (size_t j = 0; j < b->n; j++)
        if (check_header(w->host + j * w->stride, b->first + j, block_hash(w->base, b->first + j),
                         err) < 0)
            return -1;
    return 0;
}

static int gds_verify(void *wp, const struct tp_batch *b, char *err)
{
    struct gds_worker *w = wp;
    if (gds_fetch(w, b, w->block_bytes, err) < 0)
        return -1;
    for (size_t j = 0; j < b->n; j++) {
        uint64_t h = block_hash(w->base, b->first + j);
        if (kvblock_verify(w->host + j * w->stride, w->block_bytes, h) < 0)
            return err_set(err,
                           "block %zu (hash %016llx): its bytes read back differ from those "
                           "written (checksum mismatch)",
                           b->first + j, (unsigned long long)h);
    }
    return 0;
}

static const struct tp_ops GDS_WRITE = {gds_start, gds_prep_write, gds_write, NULL};
static const struct tp_ops GDS_READ = {gds_start, gds_prep_read, gds_read, gds_check_header};
static const struct tp_ops GDS_VERIFY = {gds_start, gds_prep_read, gds_read, gds_verify};

static void gds_workers_free(struct gds_worker *ws, size_t n)
{
    for (size_t w = 0; ws && w < n; w++) {
        if (ws[w].registered)
            cufile_buf_deregister(ws[w].cf, ws[w].dev);
        cuda_host_free(ws[w].rt, ws[w].host);
        cuda_free(ws[w].rt, ws[w].dev);
        cuda_stream_free(ws[w].rt, ws[w].s);
    }
    free(ws);
}

/* Each worker: a stream, batch device slots holding its blocks (registered with cuFile), and
 * pinned host slots. */
static struct gds_worker *gds_workers_new(const struct tierprobe_config *cfg,
                                          const struct cuda_rt *rt, struct cufile *cf, void *fh,
                                          uint64_t base, char *err)
{
    struct gds_worker *ws = calloc(cfg->inflight, sizeof *ws);
    if (!ws) {
        err_set(err, "out of memory");
        return NULL;
    }
    size_t stride = round_up(cfg->block_bytes, DISKTIER_ALIGN), bytes = cfg->batch * stride;
    for (size_t w = 0; w < cfg->inflight; w++) {
        struct gds_worker *g = &ws[w];
        *g = (struct gds_worker){rt,         cf,   fh,   NULL, NULL, NULL, stride, cfg->block_bytes,
                                 cfg->batch, base, false};
        int rc = cuda_stream_new(rt, &g->s, err);
        if (rc == 0)
            rc = cuda_malloc(rt, (void **)&g->dev, bytes, err);
        if (rc == 0)
            rc = cuda_host_alloc(rt, (void **)&g->host, bytes + stride, err);
        for (size_t j = 0; rc == 0 && j < cfg->batch; j++) {
            unsigned char *h = g->host + j * stride;
            kvblock_fill(h, cfg->block_bytes, slot_seed(base, w, j));
            rc = cuda_copy_async(rt, g->dev + j * stride, h, stride, CUDA_H2D, g->s, err);
        }
        if (rc == 0) {
            memset(g->host + bytes, 0, stride);
            rc = cuda_stream_sync(rt, g->s, err);
        }
        if (rc == 0 && (rc = cufile_buf_register(cf, g->dev, bytes, err)) == 0)
            g->registered = true;
        if (rc < 0) {
            gds_workers_free(ws, w + 1);
            return NULL;
        }
    }
    return ws;
}

/* The write pass, then (for a buffered file) its fdatasync, counted in the pass, and the page
 * cache dropped so that the reads reach the device. Before it, untimed, a batch per worker (the
 * first cuFile I/O sets up its buffers); the timed pass writes those blocks again. */
static int gds_write_pass(const struct tierprobe_config *cfg, void **wp, int fd, bool direct,
                          struct tier_row *row)
{
    char err[ERR_LEN];
    struct tp_pass p;
    progress_row(cfg, row);
    size_t warm = cfg->batch * cfg->inflight;
    int rc = pass_run(&p, &GDS_WRITE, wp, cfg->inflight, warm < cfg->blocks ? warm : cfg->blocks,
                      cfg->batch, cfg->stop, err);
    pass_free(&p);
    if (rc < 0) {
        row_unmeasured(row, TIER_ERROR, err);
        return -1;
    }
    rc = pass_run(&p, &GDS_WRITE, wp, cfg->inflight, cfg->blocks, cfg->batch, cfg->stop, err);
    double sync_s = 0;
    if (rc == 0 && !direct) {
        uint64_t t = clock_now_ns();
        if (fdatasync(fd) < 0)
            rc = err_set(err, "fdatasync: %s", strerror(errno));
        sync_s = (double)(clock_now_ns() - t) / 1e9;
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    }
    if (rc == 0)
        row_from_pass(row, &p, sync_s, cfg);
    else
        row_unmeasured(row, TIER_ERROR, err);
    pass_free(&p);
    return rc;
}

/* Timed read pass, then the untimed verification of every block. */
static void gds_read_pass(const struct tierprobe_config *cfg, void **wp, struct tier_row *row)
{
    char err[ERR_LEN];
    struct tp_pass p;
    progress_row(cfg, row);
    int rc = pass_run(&p, &GDS_READ, wp, cfg->inflight, cfg->blocks, cfg->batch, cfg->stop, err);
    struct tier_row timed = *row;
    if (rc == 0)
        row_from_pass(&timed, &p, 0, cfg);
    pass_free(&p);
    if (rc == 0) {
        progress(cfg, "g1_g3 verify");
        rc = pass_run(&p, &GDS_VERIFY, wp, cfg->inflight, cfg->blocks, cfg->batch, cfg->stop, err);
        pass_free(&p);
    }
    if (rc == 0)
        *row = timed;
    else
        row_unmeasured(row, TIER_ERROR, err);
}

/* The pool file: O_DIRECT where the filesystem takes it (*direct), preallocated. Returns the
 * descriptor, or -1 with err. */
static int gds_file(const char *path, size_t bytes, bool *direct, char *note, size_t note_len,
                    char *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0600);
    *direct = fd >= 0;
    if (fd < 0) {
        int e = errno;
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            return err_set(err, "cannot create %s: %s", path, strerror(errno));
        snprintf(note, note_len,
                 "O_DIRECT refused (%s): buffered file, fdatasync'ed after the writes and the "
                 "page cache dropped before the reads",
                 strerror(e));
    }
    int rc = posix_fallocate(fd, 0, (off_t)bytes);
    if (rc == EOPNOTSUPP || rc == EINVAL)
        rc = ftruncate(fd, (off_t)bytes) < 0 ? errno : 0;
    if (rc != 0) {
        close(fd);
        unlink(path);
        return err_set(err, "cannot allocate %.2f GiB for %s: %s", (double)bytes / GIB, path,
                       strerror(rc));
    }
    return fd;
}

/* The g1_g3 rows: a pool file in the scratch directory, through cuFile. */
static void run_g1_g3(const struct tierprobe_config *cfg, const struct cuda_rt *rt,
                      struct cufile *cf, const char *scratch, uint64_t base, struct tier_row *rows)
{
    char err[ERR_LEN], note[300] = "", path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/kvbench-tiers-g1g3.dat", scratch);
    size_t bytes = cfg->blocks * round_up(cfg->block_bytes, DISKTIER_ALIGN);
    bool direct = false;
    int fd = check_space(scratch, (double)bytes, err) < 0
                 ? -1
                 : gds_file(path, bytes, &direct, note, sizeof note, err);
    void *fh = NULL;
    if (fd >= 0 && cufile_handle_register(cf, fd, &fh, err) < 0)
        fh = NULL;
    struct gds_worker *ws = fh ? gds_workers_new(cfg, rt, cf, fh, base, err) : NULL;
    void **wp = ws ? calloc(cfg->inflight, sizeof *wp) : NULL;
    if (!wp) {
        row_unmeasured(&rows[0], TIER_ERROR, ws ? "out of memory" : err);
        row_unmeasured(&rows[1], TIER_ERROR, ws ? "out of memory" : err);
    } else {
        for (size_t w = 0; w < cfg->inflight; w++)
            wp[w] = &ws[w];
        for (int k = 0; k < 2; k++)
            snprintf(rows[k].reason, sizeof rows[k].reason, "%s%s%s", cufile_mode_reason(cf),
                     note[0] ? "; " : "", note);
        if (gds_write_pass(cfg, wp, fd, direct, &rows[0]) == 0) {
            if (cfg->test_after_write)
                cfg->test_after_write("g1_g3", scratch, cfg->test_arg);
            gds_read_pass(cfg, wp, &rows[1]);
        } else {
            read_unmeasured(cfg, &rows[1]);
        }
    }
    free(wp);
    gds_workers_free(ws, cfg->inflight);
    if (fh)
        cufile_handle_deregister(cf, fh);
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
}

/* ---------------------------------------------------------------------------------- the run */

static void rows_unmeasured(struct tier_row *rows, size_t n, enum tier_status st, const char *why)
{
    for (size_t i = 0; i < n; i++)
        row_unmeasured(&rows[i], st, why);
}

/* CUDA's and cuFile's rows (g1_g2: rows[0..4), g1_g3: rows[6..8)). scratch is NULL when the
 * scratch directory could not be made (scratch_err says why). */
static void run_gpu(const struct tierprobe_config *cfg, struct tierprobe_result *out,
                    const char *scratch, const char *scratch_err, uint64_t base)
{
    struct tier_row *rows = out->rows;
    if (cfg->no_gpu) {
        snprintf(out->cuda_reason, sizeof out->cuda_reason, "--no-gpu");
        snprintf(out->cufile_reason, sizeof out->cufile_reason, "--no-gpu");
        rows_unmeasured(rows, 4, TIER_UNAVAILABLE, "--no-gpu");
        rows_unmeasured(rows + 6, 2, TIER_UNAVAILABLE, "--no-gpu");
        return;
    }
    struct cuda_rt *rt;
    if (cuda_open(cfg->cuda_device, &rt, out->cuda_reason) < 0) {
        snprintf(out->cufile_reason, sizeof out->cufile_reason, "not tried: no CUDA");
        rows_unmeasured(rows, 4, TIER_UNAVAILABLE, out->cuda_reason);
        rows_unmeasured(rows + 6, 2, TIER_UNAVAILABLE, out->cuda_reason);
        return;
    }
    out->cuda = true;
    snprintf(out->cuda_lib, sizeof out->cuda_lib, "%s", cuda_lib(rt));
    cuda_versions(rt, &out->runtime_version, &out->driver_version);
    out->device = cuda_device(rt);
    out->unified_known = true;
    out->unified = cuda_unified(rt, out->unified_reason, sizeof out->unified_reason);
    for (size_t i = 0; out->unified && i < 4; i++)
        snprintf(rows[i].reason, sizeof rows[i].reason, "unified memory: not a PCIe copy (%s)",
                 out->unified_reason);
    for (size_t v = 0; v < 2; v++)
        if (stopped(cfg))
            rows_unmeasured(rows + 2 * v, 2, TIER_ERROR, "interrupted");
        else
            run_g1_g2_variant(cfg, rt, v == 0, base, rows + 2 * v);
    struct cufile *cf = NULL;
    if (cuda_bind(rt, out->cufile_reason) < 0 || cufile_open(&cf, out->cufile_reason) < 0) {
        rows_unmeasured(rows + 6, 2, TIER_UNAVAILABLE, out->cufile_reason);
    } else {
        out->cufile = true;
        snprintf(out->cufile_mode, sizeof out->cufile_mode, "%s", cufile_mode(cf));
        snprintf(out->cufile_reason, sizeof out->cufile_reason, "%s", cufile_mode_reason(cf));
        for (size_t i = 6; i < 8; i++)
            snprintf(rows[i].variant, sizeof rows[i].variant, "%s", cufile_mode(cf));
        if (!scratch)
            rows_unmeasured(rows + 6, 2, TIER_ERROR, scratch_err);
        else if (stopped(cfg))
            rows_unmeasured(rows + 6, 2, TIER_ERROR, "interrupted");
        else
            run_g1_g3(cfg, rt, cf, scratch, base, rows + 6);
        cufile_close(cf);
    }
    cuda_close(rt);
}

static const char *const ROW_PATH[TIERPROBE_MAX_ROWS] = {"g1_g2", "g1_g2", "g1_g2", "g1_g2",
                                                         "g2_g3", "g2_g3", "g1_g3", "g1_g3"};

size_t tierprobe_run(const struct tierprobe_config *cfg, struct tierprobe_result *out)
{
    memset(out, 0, sizeof *out);
    out->n_rows = TIERPROBE_MAX_ROWS;
    for (size_t i = 0; i < out->n_rows; i++)
        row_init(&out->rows[i], ROW_PATH[i], i % 2 ? "read" : "write", cfg);
    for (size_t i = 0; i < 4; i++)
        snprintf(out->rows[i].variant, sizeof out->rows[i].variant, "%s",
                 i < 2 ? "pinned" : "pageable");
    uint64_t base = (clock_wall_ns() ^ (uint64_t)getpid() << 40) * 0x9e3779b97f4a7c15ull;
    snprintf(out->scratch_dir, sizeof out->scratch_dir, "%s/kvbench-tiers-%ld", cfg->disk_dir,
             (long)getpid());
    bool had_parent = fs_exists(cfg->disk_dir), had_scratch = fs_exists(out->scratch_dir);
    struct disktier d;
    char derr[ERR_LEN];
    bool disk = disktier_open(&d, out->scratch_dir, cfg->block_bytes, derr) == 0;
    if (disk) {
        snprintf(out->disk_mode, sizeof out->disk_mode, "%s", disktier_mode(&d));
        run_g2_g3(cfg, &d, base, out->rows + 4);
    } else {
        rows_unmeasured(out->rows + 4, 2, TIER_ERROR, derr);
    }
    run_gpu(cfg, out, disk ? out->scratch_dir : NULL, derr, base);
    if (disk)
        disktier_close(&d);
    /* only an empty directory goes: another's (a PID reused in another container) keeps its
     * lock file, and so does a directory that was there before */
    if (!had_scratch)
        rmdir(out->scratch_dir);
    if (!had_parent)
        rmdir(cfg->disk_dir);
    out->scratch_removed = !fs_exists(out->scratch_dir);
    size_t ok = 0;
    for (size_t i = 0; i < out->n_rows; i++) {
        struct tier_row *r = &out->rows[i];
        ok += r->status == TIER_OK;
        if (r->status != TIER_OK && !r->reason[0]) /* every path says why; this is a guard */
            snprintf(r->reason, sizeof r->reason, "not measured");
    }
    return ok;
}

/* The nearest existing ancestor of path (path itself when it exists), into out. */
static void existing_ancestor(const char *path, char *out, size_t len)
{
    snprintf(out, len, "%s", path);
    while (!fs_exists(out)) {
        char *slash = strrchr(out, '/');
        if (!slash)
            snprintf(out, len, ".");
        else if (slash == out)
            out[1] = '\0';
        else
            *slash = '\0';
        if (!slash || slash == out)
            break;
    }
}

size_t tierprobe_default_blocks(size_t block_bytes, size_t batch, size_t inflight,
                                const char *disk_dir)
{
    size_t n = round_up((size_t)ceil(GIB / (double)block_bytes), batch);
    if (n < batch * inflight)
        n = batch * inflight;
    if (n > TIERPROBE_MAX_DEFAULT_BLOCKS)
        n = TIERPROBE_MAX_DEFAULT_BLOCKS / batch * batch;
    char at[PATH_MAX];
    existing_ancestor(disk_dir, at, sizeof at);
    struct statvfs v;
    if (statvfs(at, &v) == 0) {
        double half = (double)v.f_bavail * (double)v.f_frsize / 2;
        size_t fit = (size_t)(half / (double)round_up(block_bytes, DISKTIER_ALIGN)) / batch * batch;
        if (n > fit)
            n = fit;
    }
    return n ? n : batch;
}

int tierprobe_breakeven(double fixed_us, double onboard_tps, double prefill_tps,
                        struct tier_breakeven *out)
{
    if (!isfinite(fixed_us) || fixed_us < 0 || !isfinite(onboard_tps) || onboard_tps <= 0 ||
        !isfinite(prefill_tps) || prefill_tps <= 0)
        return -1;
    double fixed = fixed_us / 1e6;
    out->never = onboard_tps <= prefill_tps;
    out->tokens = out->never ? NAN : fixed / (1 / prefill_tps - 1 / onboard_tps);
    for (size_t i = 0; i < TIERPROBE_BE_LENGTHS; i++) {
        double l = TIERPROBE_BE_LENGTH[i];
        out->speedup[i] = (l / prefill_tps) / (fixed + l / onboard_tps);
    }
    return 0;
}
