/*
 * fakecuda.c - a stand-in libcudart for tests on machines without a GPU: the calls kvbench
 * resolves, with "device" memory in host memory. It checks what a real runtime would refuse: a
 * copy's direction must match where its pointers live (cudaMalloc'ed vs not), a stream must be one
 * it made, a freed pointer is not freed twice. Environment:
 *   FAKECUDA_DEVICES     device count (default 1; 0: cudaErrorNoDevice)
 *   FAKECUDA_INTEGRATED  cudaDevAttrIntegrated (default 0)
 *   FAKECUDA_HOST_PT     cudaDevAttrPageableMemoryAccessUsesHostPageTables (default 0)
 *   FAKECUDA_MEM_MB      device memory (default 4096): a cudaMalloc beyond it fails
 *   FAKECUDA_LOG         a file that receives one line per copy: "h2d BYTES" / "d2h BYTES"
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

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
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
    *s = malloc(16);
    if (!*s)
        return E_NOMEM;
    memcpy(*s, "fakestream", 11);
    __atomic_add_fetch(&streams_made, 1, __ATOMIC_SEQ_CST);
    return OK;
}

static int is_stream(void *s)
{
    return s && memcmp(s, "fakestream", 11) == 0;
}

int cudaStreamDestroy(void *s)
{
    if (!is_stream(s))
        return E_INVALID;
    memset(s, 0, 16);
    free(s);
    return OK;
}

int cudaStreamSynchronize(void *s)
{
    return s == NULL || is_stream(s) ? OK : E_INVALID;
}

int cudaMemcpyAsync(void *dst, const void *src, size_t n, int kind, void *s)
{
    if (s && !is_stream(s))
        return E_INVALID;
    if ((kind == 1 && (!on_device(dst, n) || on_device(src, n))) ||
        (kind == 2 && (on_device(dst, n) || !on_device(src, n))) || (kind != 1 && kind != 2))
        return E_INVALID;
    memcpy(dst, src, n);
    const char *log = getenv("FAKECUDA_LOG");
    if (log && *log) {
        FILE *f = fopen(log, "a");
        if (f) {
            fprintf(f, "%s %zu\n", kind == 1 ? "h2d" : "d2h", n);
            fclose(f);
        }
    }
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
    default:
        return "unknown error";
    }
}
