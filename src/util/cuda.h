/*
 * cuda.h - the CUDA runtime, loaded at run time with dlopen (never a build-time dependency: the
 * binary builds and runs the same on a machine without CUDA, and says why the GPU paths are
 * unavailable there).
 *
 * Where the library is looked for, in order: $KVBENCH_CUDART (a path; nothing else is tried when
 * it is set), then libcudart.so, libcudart.so.13, .so.12, .so.11.0 on the loader's path, then the
 * same names under /usr/local/cuda/lib64 and /usr/local/cuda/targets/{x86_64,sbsa}-linux/lib.
 *
 * Only the calls kvbench needs are resolved: device count and choice, attributes, memory info,
 * device and pinned host allocation, streams, cudaMemcpyAsync, synchronisation and versions. The
 * device is per thread in the CUDA runtime: a thread other than the one that opened calls
 * cuda_bind before it copies.
 */
#ifndef KVBENCH_UTIL_CUDA_H
#define KVBENCH_UTIL_CUDA_H

#include <stdbool.h>
#include <stddef.h>

/* cudaMemcpyKind */
enum cuda_copy_kind { CUDA_H2D = 1, CUDA_D2H = 2 };

typedef void *cuda_stream;
struct cuda_rt;

/* Load the runtime and select device dev (>= 0). Returns 0, or -1 with a one-line reason that
 * names what was not found: "no CUDA runtime: ..." (no library, or one without the calls),
 * "no CUDA device: ..." (the runtime found none, or no driver), "no CUDA device N: ...". */
int cuda_open(int dev, struct cuda_rt **out, char *reason);
void cuda_close(struct cuda_rt *rt);
/* The library that was loaded (the path or soname given to dlopen). */
const char *cuda_lib(const struct cuda_rt *rt);
int cuda_device(const struct cuda_rt *rt);
/* Runtime and driver versions as CUDA writes them (13000 = 13.0); 0 when unknown. */
void cuda_versions(const struct cuda_rt *rt, int *runtime, int *driver);
/* Whether device memory is the host's memory (DGX Spark / GB10, GH200, Jetson): the device is
 * integrated, or pageable memory is accessed through the host's page tables. why says which
 * attribute said so (or "discrete: ..."). */
bool cuda_unified(const struct cuda_rt *rt, char *why, size_t why_len);
/* Free and total device memory in bytes. Returns 0 or -1. */
int cuda_mem_info(const struct cuda_rt *rt, size_t *free_b, size_t *total_b);
/* Make the device current on the calling thread. Returns 0 or -1 with err. */
int cuda_bind(const struct cuda_rt *rt, char *err);

int cuda_malloc(const struct cuda_rt *rt, void **p, size_t n, char *err);
void cuda_free(const struct cuda_rt *rt, void *p);
/* Pinned (page-locked) host memory, page aligned (usable for O_DIRECT). */
int cuda_host_alloc(const struct cuda_rt *rt, void **p, size_t n, char *err);
void cuda_host_free(const struct cuda_rt *rt, void *p);
/* A non-blocking stream (does not synchronise with the legacy default stream). */
int cuda_stream_new(const struct cuda_rt *rt, cuda_stream *s, char *err);
void cuda_stream_free(const struct cuda_rt *rt, cuda_stream s);
int cuda_copy_async(const struct cuda_rt *rt, void *dst, const void *src, size_t n,
                    enum cuda_copy_kind kind, cuda_stream s, char *err);
/* Wait for everything queued on s. */
int cuda_stream_sync(const struct cuda_rt *rt, cuda_stream s, char *err);

#endif
