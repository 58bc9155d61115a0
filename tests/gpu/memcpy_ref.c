/*
 * memcpy_ref.c - the reference that `kvbench tiers` is checked against on a GPU machine (make
 * gpu-check): a plain, synchronous cudaMemcpy loop between pinned host memory and device memory,
 * in chunks of the KV block size, and one whole-buffer cudaMemcpy, best of three. Built there
 * against the CUDA toolkit (cc memcpy_ref.c -I$CUDA/include -L$CUDA/lib64 -lcudart); never part
 * of kvbench's build. Prints one JSON object.
 *
 * usage: memcpy_ref BLOCK_BYTES BLOCKS
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define CHECK(call)                                                                                \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "memcpy_ref: %s: %s\n", #call, cudaGetErrorString(e_));                \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* GB/s of the best of three passes; chunk == total: one copy. */
static double pass(char *dst, char *src, size_t total, size_t chunk, enum cudaMemcpyKind kind)
{
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        CHECK(cudaDeviceSynchronize());
        double t0 = now_s();
        for (size_t off = 0; off < total; off += chunk)
            CHECK(cudaMemcpy(dst + off, src + off, chunk, kind));
        double gbs = (double)total / (now_s() - t0) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    return best;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: memcpy_ref BLOCK_BYTES BLOCKS\n");
        return 2;
    }
    size_t block = strtoull(argv[1], NULL, 10), n = strtoull(argv[2], NULL, 10);
    size_t total = block * n;
    char *dev, *host;
    CHECK(cudaMalloc((void **)&dev, total));
    CHECK(cudaHostAlloc((void **)&host, total, cudaHostAllocDefault));
    for (size_t i = 0; i < total; i += 4096)
        host[i] = (char)i;
    pass(dev, host, total, total, cudaMemcpyHostToDevice); /* warm-up */
    double h2d_loop = pass(dev, host, total, block, cudaMemcpyHostToDevice);
    double d2h_loop = pass(host, dev, total, block, cudaMemcpyDeviceToHost);
    double h2d_big = pass(dev, host, total, total, cudaMemcpyHostToDevice);
    double d2h_big = pass(host, dev, total, total, cudaMemcpyDeviceToHost);
    printf("{\"block_bytes\": %zu, \"blocks\": %zu, \"h2d_loop_gb_s\": %.3f, \"d2h_loop_gb_s\": "
           "%.3f, \"h2d_big_gb_s\": %.3f, \"d2h_big_gb_s\": %.3f}\n",
           block, n, h2d_loop, d2h_loop, h2d_big, d2h_big);
    CHECK(cudaFreeHost(host));
    CHECK(cudaFree(dev));
    return 0;
}
