/*
 * fakecuda.c - a stand-in libcudart for tests on machines without a GPU: the calls kvbench
 * resolves, with "device" memory in host memory. It checks what a real runtime would refuse: a
 * copy's direction must match where its pointers live (cudaMalloc'ed vs not), a stream must be one
 * it made, a freed pointer is not freed twice. Environment:
 *   FAKECUDA_DEVICES     device count (default 1; 0: cudaErrorNoDevice)
 *   FAKECUDA_INTEGRATED  cudaDevAttrIntegrated (default 0)
 *   FAKECUDA_HOST_PT     cudaDevAttrPageableMemoryAccessUsesHostPageTables (default 0)
 *   FAKECUDA_MEM_MB      device memory (default 4096): a cudaMalloc beyond it fails
 *   FAKECUDA_PIN_MAX_MB  a cudaHostAlloc larger than this fails (logged as "pinfail BYTES")
 *   FAKECUDA_LOG         a file that receives one line per copy: "h2d BYTES" / "d2h BYTES"
 *   FAKECUDA_LOG_SYNC    1: FAKECUDA_LOG also gets "sync S N" per stream synchronisation: stream
 *                        S (numbered from 1 in the order made) carried N copies since its last
 *   FAKECUDA_DEFER       1: a copy queued on a stream is carried out when the stream is
 *                        synchronised (or destroyed), as a real asynchronous copy may be: a caller
 *                        that reads a destination or rewrites a source before the sync sees it
 *   FAKECUDA_FAIL_COPIES_AFTER  N: every copy after the first N fails (cudaErrorLaunchFailure),
 *                        as on a device that has faulted; counted from when the value is set
 *   FAKECUDA_FAIL_SYNCS_AFTER   N: the same for stream synchronisations (the copies they waited
 *                        for are then lost, as a real error reported at the sync would lose them)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

enum { OK = 0, E_INVALID = 1, E_NOMEM = 2, E_NODEV = 100 };

#define MAX_PTRS 65536
static struct {
    void *p;
    size_t n;
    int device; /* 1 device, 0 pinned host */
} ptrs[MAX_PTRS];
static size_t n_ptrs, dev_bytes;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int streams_made;

/* FAKECUDA_FAIL_*_AFTER: whether this call fails. Counts the calls made since the variable took
 * its present value. */
struct fail_after {
    const char *var;
    long seen, made;
};
static struct fail_after copy_fail = {"FAKECUDA_FAIL_COPIES_AFTER", -2, 0};
static struct fail_after sync_fail = {"FAKECUDA_FAIL_SYNCS_AFTER", -2, 0};

enum { E_LAUNCH = 719 };

/* A stream: the magic first (is_stream), then what FAKECUDA_DEFER and FAKECUDA_LOG_SYNC need. */
struct fstream {
    char magic[16];
    int id;
    size_t pending; /* copies since the last sync */
    struct dcopy {
        void *dst;
        const void *src;
        size_t n;
    } * q;
    size_t qn, qcap;
};

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

static int should_fail(struct fail_after *f)
{
    const char *v = getenv(f->var);
    long after = v && *v ? strtol(v, NULL, 10) : -1;
    pthread_mutex_lock(&lock);
    if (after != f->seen) {
        f->seen = after;
        f->made = 0;
    }
    int fail = after >= 0 && ++f->made > after;
    pthread_mutex_unlock(&lock);
    return fail;
}

/* 1 inside a device allocation, 0 elsewhere */
static int on_device(const void *p, size_t n)
{
    int r = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_ptrs; i++)
        if (ptrs[i].device && (const char *)p >= (char *)ptrs[i].p &&
            (const char *)p + n <= (char *)ptrs[i].p + ptrs[i].n)
            r = 1;
    pthread_mutex_unlock(&lock);
    return r;
}

static int track(void *p, size_t n, int device)
{
    pthread_mutex_lock(&lock);
    if (n_ptrs == MAX_PTRS) {
        pthread_mutex_unlock(&lock);
        return -1;
    }
    ptrs[n_ptrs].p = p;
    ptrs[n_ptrs].n = n;
    ptrs[n_ptrs].device = device;
    n_ptrs++;
    if (device)
        dev_bytes += n;
    pthread_mutex_unlock(&lock);
    return 0;
}

static int untrack(void *p, int device)
{
    int found = -1;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_ptrs; i++)
        if (ptrs[i].p == p && ptrs[i].device == device) {
            if (device)
                dev_bytes -= ptrs[i].n;
            ptrs[i] = ptrs[--n_ptrs];
            found = 0;
            break;
        }
    pthread_mutex_unlock(&lock);
    return found;
}

int cudaGetDeviceCount(int *n)
{
    *n = (int)env_long("FAKECUDA_DEVICES", 1);
    return *n > 0 ? OK : E_NODEV;
}

int cudaSetDevice(int d)
{
    int n;
    return cudaGetDeviceCount(&n) == OK && d >= 0 && d < n ? OK : E_INVALID;
}

int cudaDeviceGetAttribute(int *v, int attr, int dev)
{
    (void)dev;
    *v = attr == 18    ? (int)env_long("FAKECUDA_INTEGRATED", 0)
         : attr == 100 ? (int)env_long("FAKECUDA_HOST_PT", 0)
                       : 0;
    return OK;
}

int cudaMemGetInfo(size_t *free_b, size_t *total_b)
{
    *total_b = (size_t)env_long("FAKECUDA_MEM_MB", 4096) << 20;
    *free_b = *total_b > dev_bytes ? *total_b - dev_bytes : 0;
    return OK;
}

static int alloc(void **p, size_t n, int device)
{
    size_t total = (size_t)env_long("FAKECUDA_MEM_MB", 4096) << 20;
    if (device && dev_bytes + n > total)
        return E_NOMEM;
    *p = aligned_alloc(4096, (n + 4095) / 4096 * 4096);
    if (!*p)
        return E_NOMEM;
    memset(*p, 0xcd, n); /* device memory starts as garbage */
    if (track(*p, n, device) < 0) {
        free(*p);
        return E_NOMEM;
    }
    return OK;
}

int cudaMalloc(void **p, size_t n)
{
    return alloc(p, n, 1);
}

int cudaFree(void *p)
{
    if (!p)
        return OK;
    if (untrack(p, 1) < 0)
        return E_INVALID;
    free(p);
    return OK;
}

int cudaHostAlloc(void **p, size_t n, unsigned flags)
{
    (void)flags;
    long max_mb = env_long("FAKECUDA_PIN_MAX_MB", 0);
    if (max_mb > 0 && n > (size_t)max_mb << 20) {
        const char *log = getenv("FAKECUDA_LOG");
        FILE *f = log && *log ? fopen(log, "a") : NULL;
        if (f) {
            fprintf(f, "pinfail %zu\n", n);
            fclose(f);
        }
        *p = NULL;
        return E_NOMEM;
    }
    return alloc(p, n, 0);
}

int cudaFreeHost(void *p)
{
    if (untrack(p, 0) < 0)
        return E_INVALID;
    free(p);
    return OK;
}

int cudaStreamCreateWithFlags(void **s, unsigned flags)
{
    (void)flags;
    struct fstream *f = calloc(1, sizeof *f);
    if (!f)
        return E_NOMEM;
    memcpy(f->magic, "fakestream", 11);
    f->id = __atomic_add_fetch(&streams_made, 1, __ATOMIC_SEQ_CST);
    *s = f;
    return OK;
}

static int is_stream(void *s)
{
    return s && memcmp(s, "fakestream", 11) == 0;
}

/* Carry out what FAKECUDA_DEFER held back on f. */
static void run_deferred(struct fstream *f)
{
    for (size_t i = 0; i < f->qn; i++)
        memcpy(f->q[i].dst, f->q[i].src, f->q[i].n);
    f->qn = 0;
}

/* One line to FAKECUDA_LOG, when set. */
static void log_line(const char *line)
{
    const char *log = getenv("FAKECUDA_LOG");
    if (!log || !*log)
        return;
    FILE *f = fopen(log, "a");
    if (f) {
        fputs(line, f);
        fclose(f);
    }
}

int cudaStreamDestroy(void *s)
{
    if (!is_stream(s))
        return E_INVALID;
    struct fstream *f = s;
    run_deferred(f);
    free(f->q);
    memset(f, 0, sizeof *f);
    free(f);
    return OK;
}

int cudaStreamSynchronize(void *s)
{
    if (s == NULL)
        return OK;
    if (!is_stream(s))
        return E_INVALID;
    struct fstream *f = s;
    if (should_fail(&sync_fail)) {
        f->qn = 0; /* lost */
        f->pending = 0;
        return E_LAUNCH;
    }
    run_deferred(f);
    if (env_long("FAKECUDA_LOG_SYNC", 0) && f->pending) {
        char line[64];
        snprintf(line, sizeof line, "sync %d %zu\n", f->id, f->pending);
        log_line(line);
    }
    f->pending = 0;
    return OK;
}

/* FAKECUDA_DEFER: hold the copy until f is synchronised. Returns 0, or -1 out of memory. */
static int defer_copy(struct fstream *f, void *dst, const void *src, size_t n)
{
    if (f->qn == f->qcap) {
        size_t cap = f->qcap ? 2 * f->qcap : 64;
        struct dcopy *q = realloc(f->q, cap * sizeof *q);
        if (!q)
            return -1;
        f->q = q;
        f->qcap = cap;
    }
    f->q[f->qn++] = (struct dcopy){dst, src, n};
    return 0;
}

int cudaMemcpyAsync(void *dst, const void *src, size_t n, int kind, void *s)
{
    if (s && !is_stream(s))
        return E_INVALID;
    if ((kind == 1 && (!on_device(dst, n) || on_device(src, n))) ||
        (kind == 2 && (on_device(dst, n) || !on_device(src, n))) || (kind != 1 && kind != 2))
        return E_INVALID;
    if (should_fail(&copy_fail))
        return E_LAUNCH;
    struct fstream *f = s;
    if (f && env_long("FAKECUDA_DEFER", 0)) {
        if (defer_copy(f, dst, src, n) < 0)
            return E_NOMEM;
    } else {
        memcpy(dst, src, n);
    }
    if (f)
        f->pending++;
    char line[64];
    snprintf(line, sizeof line, "%s %zu\n", kind == 1 ? "h2d" : "d2h", n);
    log_line(line);
    return OK;
}

int cudaRuntimeGetVersion(int *v)
{
    *v = 13000;
    return OK;
}

int cudaDriverGetVersion(int *v)
{
    *v = 13000;
    return OK;
}

const char *cudaGetErrorString(int e)
{
    switch (e) {
    case OK:
        return "no error";
    case E_INVALID:
        return "invalid argument";
    case E_NOMEM:
        return "out of memory";
    case E_NODEV:
        return "no CUDA-capable device is detected";
    case E_LAUNCH:
        return "unspecified launch failure";
    default:
        return "unknown error";
    }
}
