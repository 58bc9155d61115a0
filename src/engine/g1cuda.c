/*
 * g1cuda.c - the device side of `--g1 cuda`.
 *
 * Design. The arena is one cudaMalloc of every G1 slot, taken once at start and never grown, so a
 * G1 block never waits for an allocation and the memory check at start is the only one. Staging
 * is one pinned buffer of G1CUDA_WINDOW slots: copy k of batch b uses staging slot
 * (b % G1CUDA_STREAMS) * G1CUDA_BATCH + k, so a staging slot is reused only by a batch on the same
 * stream, and a batch is opened on a stream only after the stream's previous batch was synced;
 * a host buffer handed to cudaMemcpyAsync is thus never written while a copy may still read it.
 * Items wait in per-stream arrays and are handed back when their stream is synced, oldest batch
 * first. Errors are counted per block and logged once per power of ten, as the disk tier's are.
 */
#include "engine/g1cuda.h"

#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB 1048576.0

struct g1cuda {
    struct cuda_rt *rt;
    int dev;
    size_t slots, slot_bytes;
    void *arena;   /* slots x slot_bytes of device memory */
    void *staging; /* G1CUDA_WINDOW x slot_bytes, pinned */
    cuda_stream streams[G1CUDA_STREAMS];
    uint32_t *free_slots;
    size_t free_n;
    pthread_t bound; /* the last thread the device was made current on */
    struct g1cuda_stats st;
};

static bool is_power_of_ten(uint64_t n)
{
    while (n >= 10 && n % 10 == 0)
        n /= 10;
    return n == 1;
}

/* Whether slots x slot_bytes fit in the device's free memory. */
static int check_fits(const struct cuda_rt *rt, int device, size_t slots, size_t slot_bytes,
                      char *err)
{
    if (slots == 0 || slots > UINT32_MAX)
        return err_set(err, "G1 on a CUDA device holds 1 to %u blocks, not %zu", UINT32_MAX, slots);
    if (slot_bytes && slots > SIZE_MAX / slot_bytes)
        return err_set(err, "G1 of %zu blocks of %zu bytes is too large", slots, slot_bytes);
    size_t need = slots * slot_bytes, free_b = 0, total_b = 0;
    if (cuda_mem_info(rt, &free_b, &total_b) < 0)
        return err_set(err, "cudaMemGetInfo failed on CUDA device %d", device);
    if (need > free_b)
        return err_set(err,
                       "G1 needs %zu blocks x %zu bytes = %.1f MiB of device memory, but CUDA "
                       "device %d has %.1f MiB free of %.1f MiB",
                       slots, slot_bytes, (double)need / MIB, device, (double)free_b / MIB,
                       (double)total_b / MIB);
    return 0;
}

int g1cuda_preflight(int device, size_t slots, size_t slot_bytes, char *err)
{
    struct cuda_rt *rt;
    if (cuda_open(device, &rt, err) < 0)
        return -1;
    int rc = check_fits(rt, device, slots, slot_bytes, err) < 0 ? G1CUDA_NO_ROOM : 0;
    cuda_close(rt);
    return rc;
}

int g1cuda_open(int device, size_t slots, size_t slot_bytes, struct g1cuda **out, char *err)
{
    *out = NULL;
    struct g1cuda *g = calloc(1, sizeof *g);
    if (!g)
        return err_set(err, "out of memory");
    if (cuda_open(device, &g->rt, err) < 0) {
        free(g);
        return -1;
    }
    g->dev = device;
    g->slots = slots;
    g->slot_bytes = slot_bytes;
    g->bound = pthread_self(); /* cuda_open made the device current here */
    if (check_fits(g->rt, device, slots, slot_bytes, err) < 0)
        goto fail;
    char why[ERR_LEN];
    if (cuda_malloc(g->rt, &g->arena, slots * slot_bytes, why) < 0) {
        err_set(err, "G1 on CUDA device %d: %s", device, why);
        goto fail;
    }
    g->st.device_bytes = slots * slot_bytes;
    for (int s = 0; s < G1CUDA_STREAMS; s++) {
        if (cuda_stream_new(g->rt, &g->streams[s], why) < 0) {
            err_set(err, "G1 on CUDA device %d: %s", device, why);
            goto fail;
        }
    }
    if (cuda_host_alloc(g->rt, &g->staging, G1CUDA_WINDOW * slot_bytes, why) < 0) {
        err_set(err, "G1 staging buffers: %s", why);
        goto fail;
    }
    g->free_slots = malloc(slots * sizeof *g->free_slots);
    if (!g->free_slots) {
        err_set(err, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < slots; i++) /* slot 0 is taken first */
        g->free_slots[g->free_n++] = (uint32_t)(slots - 1 - i);
    *out = g;
    return 0;
fail:
    g1cuda_close(g);
    return -1;
}

void g1cuda_close(struct g1cuda *g)
{
    if (!g)
        return;
    if (g->rt) {
        char err[ERR_LEN];
        if (!pthread_equal(g->bound, pthread_self()) && cuda_bind(g->rt, err) < 0)
            log_warn("G1 on CUDA device %d: freeing its memory: %s", g->dev, err);
        /* every transfer ends synced: the streams are idle */
        for (int s = 0; s < G1CUDA_STREAMS; s++)
            cuda_stream_free(g->rt, g->streams[s]);
        cuda_host_free(g->rt, g->staging);
        cuda_free(g->rt, g->arena);
        cuda_close(g->rt);
    }
    free(g->free_slots);
    free(g);
}

void g1cuda_describe(const struct g1cuda *g, char *out, size_t len)
{
    int rt = 0, drv = 0;
    cuda_versions(g->rt, &rt, &drv);
    snprintf(out, len, "CUDA device %d (%s, runtime %d.%d, driver %d.%d)", g->dev, cuda_lib(g->rt),
             rt / 1000, rt % 1000 / 10, drv / 1000, drv % 1000 / 10);
}

int g1cuda_device(const struct g1cuda *g)
{
    return g->dev;
}

const char *g1cuda_lib(const struct g1cuda *g)
{
    return cuda_lib(g->rt);
}

const struct g1cuda_stats *g1cuda_stats(const struct g1cuda *g)
{
    return &g->st;
}

int g1cuda_slot_take(struct g1cuda *g, uint32_t *slot)
{
    if (!g->free_n)
        return -1;
    *slot = g->free_slots[--g->free_n];
    return 0;
}

void g1cuda_slot_put(struct g1cuda *g, uint32_t slot)
{
    if (g->free_n < g->slots)
        g->free_slots[g->free_n++] = slot;
}

void *g1cuda_slot(const struct g1cuda *g, uint32_t slot)
{
    return (char *)g->arena + (size_t)slot * g->slot_bytes;
}

void *g1cuda_host_alloc(struct g1cuda *g, size_t n, char *err)
{
    void *p = NULL;
    return cuda_host_alloc(g->rt, &p, n, err) == 0 ? p : NULL;
}

void g1cuda_host_free(struct g1cuda *g, void *p)
{
    cuda_host_free(g->rt, p);
}

/* ---------------------------------------------------------------- transfers */

/* n block copies failed: count them, and say so on the first and at each power of ten. */
static void count_errors(struct g1cuda *g, uint64_t n, const char *why)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = ++g->st.copy_errors;
        if (is_power_of_ten(k))
            log_warn("G1 on CUDA device %d: a block copy failed: %s; the block is recomputed (or "
                     "not offloaded) (%llu failed so far, counted in "
                     "kvbench_g1_copy_errors_total)",
                     g->dev, why, (unsigned long long)k);
    }
}

void g1cuda_xfer_begin(struct g1cuda_xfer *x, struct g1cuda *g, int dir, bool fill,
                       g1cuda_done_fn done, void *ctx)
{
    memset(x, 0, sizeof *x);
    x->g = g;
    x->dir = dir;
    x->fill = fill;
    x->done = done;
    x->ctx = ctx;
    x->open = true;
    if (!pthread_equal(g->bound, pthread_self())) {
        char err[ERR_LEN];
        if (cuda_bind(g->rt, err) < 0) {
            x->broken = true; /* every copy of this transfer fails, counted */
            snprintf(x->err, sizeof x->err, "%s", err);
        } else {
            g->bound = pthread_self();
        }
    }
}

/* Wait for stream s and hand back what it carried. */
static void sync_stream(struct g1cuda_xfer *x, int s)
{
    if (!x->busy[s])
        return;
    struct g1cuda *g = x->g;
    struct g1cuda_stream_items *si = &x->s[s];
    char err[ERR_LEN];
    bool ok = x->broken || cuda_stream_sync(g->rt, g->streams[s], err) == 0;
    x->busy[s] = false;
    if (!ok) {
        uint64_t lost = 0;
        for (size_t k = si->delivered; k < si->n; k++)
            lost += !si->failed[k];
        count_errors(g, lost, err);
    }
    x->delivering = true;
    while (si->delivered < si->n) {
        size_t k = si->delivered++;
        bool done_ok = ok && !si->failed[k];
        if (done_ok && x->fill)
            g->st.fill_bytes += g->slot_bytes;
        else if (done_ok)
            g->st.copy_bytes[x->dir] += g->slot_bytes;
        x->done(x->ctx, &si->items[k], done_ok);
    }
    x->delivering = false;
}

void *g1cuda_xfer_next(struct g1cuda_xfer *x)
{
    if (x->pos == G1CUDA_BATCH) {
        x->batch++;
        x->pos = 0;
        x->ready = false;
    }
    int s = (int)(x->batch % G1CUDA_STREAMS);
    if (!x->ready) {
        sync_stream(x, s); /* the batch G1CUDA_STREAMS before this one */
        x->s[s].n = x->s[s].delivered = 0;
        x->ready = true;
    }
    return (char *)x->g->staging + ((size_t)s * G1CUDA_BATCH + x->pos) * x->g->slot_bytes;
}

void g1cuda_xfer_copy(struct g1cuda_xfer *x, void *dst, const void *src,
                      const struct g1cuda_item *item)
{
    struct g1cuda *g = x->g;
    g1cuda_xfer_next(x);
    int s = (int)(x->batch % G1CUDA_STREAMS);
    struct g1cuda_stream_items *si = &x->s[s];
    size_t k = si->n++;
    si->items[k] = *item;
    if (x->pos++ == 0 && !x->fill)
        g->st.copy_batches[x->dir]++;
    if (!x->t0)
        x->t0 = clock_now_ns();
    char err[ERR_LEN];
    enum cuda_copy_kind kind = x->dir == G1CUDA_H2D ? CUDA_H2D : CUDA_D2H;
    si->failed[k] =
        x->broken || cuda_copy_async(g->rt, dst, src, g->slot_bytes, kind, g->streams[s], err) < 0;
    if (si->failed[k])
        count_errors(g, 1, x->broken ? x->err : err);
    x->busy[s] = true;
}

bool g1cuda_xfer_pending(const struct g1cuda_xfer *x)
{
    for (int s = 0; s < G1CUDA_STREAMS; s++)
        if (x->busy[s])
            return true;
    return false;
}

void g1cuda_xfer_flush(struct g1cuda_xfer *x)
{
    if (!x->open || x->delivering)
        return;
    /* oldest batch first: the stream after the open batch's carries the batch three before it */
    for (size_t k = 1; k <= G1CUDA_STREAMS; k++)
        sync_stream(x, (int)((x->batch + k) % G1CUDA_STREAMS));
}

double g1cuda_xfer_end(struct g1cuda_xfer *x)
{
    if (!x->open)
        return 0;
    g1cuda_xfer_flush(x);
    double spent = 0;
    if (x->t0) {
        spent = (double)(clock_now_ns() - x->t0) / 1e9;
        if (!x->fill)
            x->g->st.copy_s[x->dir] += spent;
    }
    x->open = false;
    return spent;
}

int g1cuda_read_slot(struct g1cuda *g, uint32_t slot, void *out, char *err)
{
    if (!pthread_equal(g->bound, pthread_self())) {
        if (cuda_bind(g->rt, err) < 0)
            return -1;
        g->bound = pthread_self();
    }
    if (cuda_copy_async(g->rt, out, g1cuda_slot(g, slot), g->slot_bytes, CUDA_D2H, g->streams[0],
                        err) < 0)
        return -1;
    return cuda_stream_sync(g->rt, g->streams[0], err);
}
