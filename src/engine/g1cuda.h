/*
 * g1cuda.h - G1 in real device memory (`kvbench serve --g1 cuda`): the KV manager's device arena
 * (one cudaMalloc, one slot per G1 block), its four copy streams, pinned host memory, and the
 * batched transfers that move blocks between the device and the host.
 *
 * A transfer is the copies of one direction made by one call of the manager (an admission's
 * onboards, a registration's fills or offloads). Like KVBM, its copies go out in batches of
 * G1CUDA_BATCH blocks, batch b on stream b % G1CUDA_STREAMS, so up to G1CUDA_STREAMS batches are
 * in flight; a batch that would reuse a busy stream first waits for that stream. Each copy carries
 * an item that is handed back to the transfer's done function once the copy has completed or
 * failed (a failed call never stops the transfer: its blocks come back with ok false). Its time
 * is measured with the monotonic clock, from the first copy's submission to the last sync.
 *
 * Every CUDA call goes through util/cuda.h (the runtime is dlopen'ed). The device is per thread
 * in the CUDA runtime: a transfer begun on a thread other than the last one binds the device
 * first. Not thread-safe: the manager calls it under its lock.
 */
#ifndef KVBENCH_ENGINE_G1CUDA_H
#define KVBENCH_ENGINE_G1CUDA_H

#include "util/cuda.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define G1CUDA_BATCH   16
#define G1CUDA_STREAMS 4
#define G1CUDA_WINDOW  (G1CUDA_BATCH * G1CUDA_STREAMS) /* copies in flight at most */

/* [G1CUDA_H2D] host to device, [G1CUDA_D2H] device to host */
enum { G1CUDA_H2D = 0, G1CUDA_D2H = 1 };

struct g1cuda_stats {
    uint64_t copy_bytes[2];   /* bytes of completed block copies (onboards and offloads) */
    double copy_s[2];         /* measured transfer time */
    uint64_t copy_batches[2]; /* batches submitted */
    uint64_t copy_errors;     /* block copies (fills included) that failed */
    uint64_t fill_bytes;      /* the device's own fills: computed blocks written into G1 */
    size_t device_bytes;      /* device memory held (the arena) */
};

struct g1cuda;

/* What a copy carries back to the done function; the manager's own meaning. */
struct g1cuda_item {
    void *a, *b;
    size_t index;
    int tag;
};

typedef void (*g1cuda_done_fn)(void *ctx, const struct g1cuda_item *item, bool ok);

struct g1cuda_stream_items {
    struct g1cuda_item items[G1CUDA_BATCH];
    bool failed[G1CUDA_BATCH]; /* the submission failed */
    size_t n, delivered;
};

/* One transfer (see above). Fields are the module's; the caller only holds the storage. */
struct g1cuda_xfer {
    struct g1cuda *g;
    int dir; /* G1CUDA_H2D or G1CUDA_D2H */
    bool fill, open, broken, delivering;
    g1cuda_done_fn done;
    void *ctx;
    size_t batch, pos; /* the open batch and the copies in it */
    bool ready;        /* the open batch's stream is free for it */
    bool busy[G1CUDA_STREAMS];
    struct g1cuda_stream_items s[G1CUDA_STREAMS];
    uint64_t t0;   /* first submission (0: none yet) */
    char err[256]; /* broken: why (the device could not be bound on this thread) */
};

/* Load the runtime, select device, and check that slots x slot_bytes of device memory are free.
 * Returns 0; -1 with cuda_open's one-line reason ("no CUDA runtime: ...", "no CUDA device:
 * ..."); G1CUDA_NO_ROOM with the memory needed and free. Allocates nothing. */
#define G1CUDA_NO_ROOM (-2)
int g1cuda_preflight(int device, size_t slots, size_t slot_bytes, char *err);
/* The same checks, then the arena (slots x slot_bytes of device memory), the streams and
 * G1CUDA_WINDOW pinned staging buffers of slot_bytes. slot_bytes is a multiple of 4096. */
int g1cuda_open(int device, size_t slots, size_t slot_bytes, struct g1cuda **out, char *err);
/* Free every allocation and stream. NULL is fine. */
void g1cuda_close(struct g1cuda *g);

/* "device 0 (libcudart.so.13, runtime 13.0, driver 13.0)" for log lines. */
void g1cuda_describe(const struct g1cuda *g, char *out, size_t len);
int g1cuda_device(const struct g1cuda *g);
const char *g1cuda_lib(const struct g1cuda *g);
const struct g1cuda_stats *g1cuda_stats(const struct g1cuda *g);

/* A free G1 slot: 0 and *slot, or -1 when every slot is taken. */
int g1cuda_slot_take(struct g1cuda *g, uint32_t *slot);
void g1cuda_slot_put(struct g1cuda *g, uint32_t slot);
/* The device address of a slot. */
void *g1cuda_slot(const struct g1cuda *g, uint32_t slot);

/* Pinned, page-aligned host memory (usable for O_DIRECT); NULL with err. Free with
 * g1cuda_host_free. */
void *g1cuda_host_alloc(struct g1cuda *g, size_t n, char *err);
void g1cuda_host_free(struct g1cuda *g, void *p);

/* Begin a transfer in direction dir (G1CUDA_H2D, G1CUDA_D2H). fill: the device's own fills (their
 * bytes count as fill_bytes, not as copies). done gets every item back. */
void g1cuda_xfer_begin(struct g1cuda_xfer *x, struct g1cuda *g, int dir, bool fill,
                       g1cuda_done_fn done, void *ctx);
/* Make the next copy's place ready (waiting for a stream when its batch would reuse a busy one)
 * and return its pinned staging buffer (slot_bytes), the caller's until that copy is synced. */
void *g1cuda_xfer_next(struct g1cuda_xfer *x);
/* Queue one block copy of slot_bytes from src to dst. */
void g1cuda_xfer_copy(struct g1cuda_xfer *x, void *dst, const void *src,
                      const struct g1cuda_item *item);
/* Whether copies are queued and not yet handed back. */
bool g1cuda_xfer_pending(const struct g1cuda_xfer *x);
/* Wait for every queued copy and hand its item back; the transfer stays open. */
void g1cuda_xfer_flush(struct g1cuda_xfer *x);
/* Flush and close; the measured time (seconds, 0 without copies) is added to the stats and
 * returned. */
double g1cuda_xfer_end(struct g1cuda_xfer *x);

/* Copy one block from its G1 slot to host memory, synchronously (tests and diagnostics). */
int g1cuda_read_slot(struct g1cuda *g, uint32_t slot, void *out, char *err);

#endif
