/*
 * cuda.c - the CUDA runtime through dlopen. The prototypes are the runtime's C ABI (cudaError_t
 * is an int enum, streams are opaque pointers); nothing from CUDA's headers is needed to build.
 */
#include "util/cuda.h"

#include "util/err.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUDA_SUCCESS_            0
#define CUDA_ERROR_NO_DEVICE     100
#define CUDA_ATTR_INTEGRATED     18  /* cudaDevAttrIntegrated */
#define CUDA_ATTR_HOST_PAGETABLE 100 /* cudaDevAttrPageableMemoryAccessUsesHostPageTables */
#define CUDA_STREAM_NONBLOCKING  1
#define CUDA_HOST_ALLOC_DEFAULT  0

typedef int cuda_err;

struct cuda_rt {
    void *lib;
    char path[256];
    int dev;
    cuda_err (*get_device_count)(int *);
    cuda_err (*set_device)(int);
    cuda_err (*device_get_attribute)(int *, int, int);
    cuda_err (*mem_get_info)(size_t *, size_t *);
    cuda_err (*malloc_)(void **, size_t);
    cuda_err (*free_)(void *);
    cuda_err (*host_alloc)(void **, size_t, unsigned);
    cuda_err (*free_host)(void *);
    cuda_err (*stream_create)(cuda_stream *, unsigned);
    cuda_err (*stream_destroy)(cuda_stream);
    cuda_err (*stream_sync)(cuda_stream);
    cuda_err (*memcpy_async)(void *, const void *, size_t, int, cuda_stream);
    cuda_err (*runtime_version)(int *);
    cuda_err (*driver_version)(int *);
    const char *(*error_string)(cuda_err);
};

static const char *estr(const struct cuda_rt *rt, cuda_err e)
{
    const char *s = rt->error_string ? rt->error_string(e) : NULL;
    return s ? s : "unknown CUDA error";
}

static int fail(const struct cuda_rt *rt, char *err, const char *what, cuda_err e)
{
    return err_set(err, "%s: %s (CUDA error %d)", what, estr(rt, e), e);
}

/* The libraries tried, in order (see cuda.h). */
static const char *const NAMES[] = {"libcudart.so", "libcudart.so.13", "libcudart.so.12",
                                    "libcudart.so.11.0"};
static const char *const DIRS[] = {"", "/usr/local/cuda/lib64/",
                                   "/usr/local/cuda/targets/x86_64-linux/lib/",
                                   "/usr/local/cuda/targets/sbsa-linux/lib/"};
#define N_CANDIDATES (sizeof DIRS / sizeof DIRS[0] * (sizeof NAMES / sizeof NAMES[0]))

/* dlopen candidate *next or a later one (advancing *next past it); its name in path. NULL when
 * none is left. $KVBENCH_CUDART is the only candidate when set (why says why it failed). */
static void *load_lib(size_t *next, char *path, size_t path_len, char *why, size_t why_len)
{
    const char *env = getenv("KVBENCH_CUDART");
    if (env && *env) {
        if ((*next)++ > 0)
            return NULL;
        snprintf(path, path_len, "%s", env);
        void *h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
        if (!h)
            snprintf(why, why_len, "KVBENCH_CUDART=%s: %s", env, dlerror());
        return h;
    }
    const size_t n_names = sizeof NAMES / sizeof NAMES[0];
    while (*next < N_CANDIDATES) {
        size_t i = (*next)++;
        snprintf(path, path_len, "%s%s", DIRS[i / n_names], NAMES[i % n_names]);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h)
            return h;
    }
    return NULL;
}

static bool resolve(struct cuda_rt *rt, char *missing, size_t len)
{
#define SYM(field, name)                                                                           \
    do {                                                                                           \
        *(void **)(&rt->field) = dlsym(rt->lib, name);                                             \
        if (!rt->field) {                                                                          \
            snprintf(missing, len, "%s", name);                                                    \
            return false;                                                                          \
        }                                                                                          \
    } while (0)
    SYM(get_device_count, "cudaGetDeviceCount");
    SYM(set_device, "cudaSetDevice");
    SYM(device_get_attribute, "cudaDeviceGetAttribute");
    SYM(mem_get_info, "cudaMemGetInfo");
    SYM(malloc_, "cudaMalloc");
    SYM(free_, "cudaFree");
    SYM(host_alloc, "cudaHostAlloc");
    SYM(free_host, "cudaFreeHost");
    SYM(stream_create, "cudaStreamCreateWithFlags");
    SYM(stream_destroy, "cudaStreamDestroy");
    SYM(stream_sync, "cudaStreamSynchronize");
    SYM(memcpy_async, "cudaMemcpyAsync");
    SYM(runtime_version, "cudaRuntimeGetVersion");
    SYM(driver_version, "cudaDriverGetVersion");
    SYM(error_string, "cudaGetErrorString");
#undef SYM
    return true;
}

/* Load candidates until one has the calls and sees a device (a runtime newer than the driver
 * says "insufficient driver": an older runtime further down the list may still work). Returns
 * the device count, or -1 with reason (the first failure's words). */
static int load_working(struct cuda_rt *rt, char *reason)
{
    size_t next = 0;
    char why[400] = "";
    reason[0] = '\0';
    for (;;) {
        rt->lib = load_lib(&next, rt->path, sizeof rt->path, why, sizeof why);
        if (!rt->lib)
            break;
        char missing[64];
        int n = 0;
        cuda_err e;
        if (!resolve(rt, missing, sizeof missing)) {
            if (!reason[0])
                err_set(reason, "no CUDA runtime: %s has no %s", rt->path, missing);
        } else if ((e = rt->get_device_count(&n)) != CUDA_SUCCESS_ || n <= 0) {
            if (!reason[0])
                err_set(reason, "no CUDA device: cudaGetDeviceCount says %s",
                        e == CUDA_SUCCESS_ ? "0 devices" : estr(rt, e));
        } else {
            return n;
        }
        rt->lib = NULL; /* left loaded: a runtime registers exit handlers that must find it */
    }
    if (!reason[0])
        err_set(reason, "no CUDA runtime: %s",
                why[0] ? why
                       : "libcudart.so* not found on the loader path or under /usr/local/cuda "
                         "(set KVBENCH_CUDART=/path/to/libcudart.so)");
    return -1;
}

int cuda_open(int dev, struct cuda_rt **out, char *reason)
{
    *out = NULL;
    struct cuda_rt *rt = calloc(1, sizeof *rt);
    if (!rt)
        return err_set(reason, "no CUDA runtime: out of memory");
    int n = load_working(rt, reason);
    if (n < 0) {
        free(rt);
        return -1;
    }
    if (dev < 0 || dev >= n) {
        err_set(reason, "no CUDA device %d: this machine has %d (0..%d)", dev, n, n - 1);
        cuda_close(rt);
        return -1;
    }
    rt->dev = dev;
    cuda_err e = rt->set_device(dev);
    if (e != CUDA_SUCCESS_) {
        err_set(reason, "no CUDA device %d: cudaSetDevice says %s", dev, estr(rt, e));
        cuda_close(rt);
        return -1;
    }
    *out = rt;
    return 0;
}

void cuda_close(struct cuda_rt *rt)
{
    if (!rt)
        return;
    /* the library stays loaded: the runtime registers exit handlers that must find it */
    free(rt);
}

const char *cuda_lib(const struct cuda_rt *rt)
{
    return rt->path;
}

int cuda_device(const struct cuda_rt *rt)
{
    return rt->dev;
}

void cuda_versions(const struct cuda_rt *rt, int *runtime, int *driver)
{
    *runtime = *driver = 0;
    if (rt->runtime_version(runtime) != CUDA_SUCCESS_)
        *runtime = 0;
    if (rt->driver_version(driver) != CUDA_SUCCESS_)
        *driver = 0;
}

bool cuda_unified(const struct cuda_rt *rt, char *why, size_t why_len)
{
    int integrated = 0, host_pt = 0;
    if (rt->device_get_attribute(&integrated, CUDA_ATTR_INTEGRATED, rt->dev) != CUDA_SUCCESS_)
        integrated = 0;
    if (rt->device_get_attribute(&host_pt, CUDA_ATTR_HOST_PAGETABLE, rt->dev) != CUDA_SUCCESS_)
        host_pt = 0;
    if (integrated)
        snprintf(why, why_len,
                 "integrated GPU (cudaDevAttrIntegrated = 1): device memory is "
                 "host memory");
    else if (host_pt)
        snprintf(why, why_len,
                 "cudaDevAttrPageableMemoryAccessUsesHostPageTables = 1: the GPU "
                 "reads host memory through the host's page tables (coherent link)");
    else
        snprintf(why, why_len,
                 "discrete GPU: host memory is across PCIe (or NVLink-C2C without "
                 "host page tables)");
    return integrated || host_pt;
}

int cuda_mem_info(const struct cuda_rt *rt, size_t *free_b, size_t *total_b)
{
    return rt->mem_get_info(free_b, total_b) == CUDA_SUCCESS_ ? 0 : -1;
}

int cuda_bind(const struct cuda_rt *rt, char *err)
{
    cuda_err e = rt->set_device(rt->dev);
    return e == CUDA_SUCCESS_ ? 0 : fail(rt, err, "cudaSetDevice", e);
}

int cuda_malloc(const struct cuda_rt *rt, void **p, size_t n, char *err)
{
    cuda_err e = rt->malloc_(p, n);
    if (e == CUDA_SUCCESS_)
        return 0;
    *p = NULL;
    char what[64];
    snprintf(what, sizeof what, "cudaMalloc(%zu MiB)", n >> 20);
    return fail(rt, err, what, e);
}

void cuda_free(const struct cuda_rt *rt, void *p)
{
    if (p)
        rt->free_(p);
}

int cuda_host_alloc(const struct cuda_rt *rt, void **p, size_t n, char *err)
{
    cuda_err e = rt->host_alloc(p, n, CUDA_HOST_ALLOC_DEFAULT);
    if (e == CUDA_SUCCESS_)
        return 0;
    *p = NULL;
    char what[64];
    snprintf(what, sizeof what, "cudaHostAlloc(%zu MiB)", n >> 20);
    return fail(rt, err, what, e);
}

void cuda_host_free(const struct cuda_rt *rt, void *p)
{
    if (p)
        rt->free_host(p);
}

int cuda_stream_new(const struct cuda_rt *rt, cuda_stream *s, char *err)
{
    cuda_err e = rt->stream_create(s, CUDA_STREAM_NONBLOCKING);
    return e == CUDA_SUCCESS_ ? 0 : fail(rt, err, "cudaStreamCreateWithFlags", e);
}

void cuda_stream_free(const struct cuda_rt *rt, cuda_stream s)
{
    if (s)
        rt->stream_destroy(s);
}

int cuda_copy_async(const struct cuda_rt *rt, void *dst, const void *src, size_t n,
                    enum cuda_copy_kind kind, cuda_stream s, char *err)
{
    cuda_err e = rt->memcpy_async(dst, src, n, (int)kind, s);
    return e == CUDA_SUCCESS_ ? 0 : fail(rt, err, "cudaMemcpyAsync", e);
}

int cuda_stream_sync(const struct cuda_rt *rt, cuda_stream s, char *err)
{
    cuda_err e = rt->stream_sync(s);
    return e == CUDA_SUCCESS_ ? 0 : fail(rt, err, "cudaStreamSynchronize", e);
}
