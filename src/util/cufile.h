/*
 * cufile.h - NVIDIA cuFile (GPUDirect Storage), loaded at run time with dlopen: reads and writes
 * between a file and device memory. Without the nvidia-fs kernel driver cuFile runs in
 * compatibility mode (POSIX I/O through its own bounce buffers); cufile_mode says which.
 *
 * Where the library is looked for: $KVBENCH_CUFILE (a path; nothing else is tried when set), then
 * libcufile.so, libcufile.so.0 on the loader's path and under /usr/local/cuda/lib64 and
 * /usr/local/cuda/targets/{x86_64,sbsa}-linux/lib. The CUDA device must be current on the
 * calling thread (cuda_bind) before cufile_open.
 */
#ifndef KVBENCH_UTIL_CUFILE_H
#define KVBENCH_UTIL_CUFILE_H

#include <stddef.h>
#include <sys/types.h>

struct cufile;

/* Load the library and open the driver (cuFileDriverOpen). Returns 0, or -1 with a one-line
 * reason: "no cuFile: ..." naming what was not found or what the driver said. */
int cufile_open(struct cufile **out, char *reason);
/* cuFileDriverClose, and free. */
void cufile_close(struct cufile *cf);
const char *cufile_lib(const struct cufile *cf);
/* "gds" (the nvidia-fs driver is there: DMA between the NVMe and the GPU) or "compat" (POSIX I/O
 * through host bounce buffers), and why it is that mode. */
const char *cufile_mode(const struct cufile *cf);
const char *cufile_mode_reason(const struct cufile *cf);
/* Register an open file descriptor (opened with O_DIRECT for GDS). Returns 0 or -1 with err. */
int cufile_handle_register(struct cufile *cf, int fd, void **handle, char *err);
void cufile_handle_deregister(struct cufile *cf, void *handle);
/* Register device memory for DMA (optional for correctness, needed for speed). */
int cufile_buf_register(struct cufile *cf, void *dev, size_t n, char *err);
void cufile_buf_deregister(struct cufile *cf, void *dev);
/* Read n bytes at file offset off into dev + dev_off / write them from there. Returns the bytes
 * moved, or -1 with err. */
ssize_t cufile_read(struct cufile *cf, void *handle, void *dev, size_t n, off_t off, off_t dev_off,
                    char *err);
ssize_t cufile_write(struct cufile *cf, void *handle, const void *dev, size_t n, off_t off,
                     off_t dev_off, char *err);

#endif
