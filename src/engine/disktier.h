/*
 * disktier.h - G3: one file per KV block under the disk cache directory, written and read with
 * O_DIRECT where the filesystem allows it, so the block device really sees the I/O. Where
 * O_DIRECT is refused (tmpfs, some overlay filesystems) it falls back to buffered I/O with
 * fdatasync + posix_fadvise(DONTNEED) after writes and DONTNEED before reads, so reads still
 * reach the device; disktier_mode() says which is in use.
 *
 * Files are named kvbench-<16 hex digits of the sequence hash>.kvblk and begin with kvbench's
 * block header (magic, hash); only files of that name whose header says so are ever removed.
 * The directory is held with an exclusive lock (flock on .kvbench.lock, which records the
 * holder's PID) for the engine's lifetime: a second engine on the same directory is refused
 * instead of deleting the first one's blocks.
 */
#ifndef KVBENCH_ENGINE_DISKTIER_H
#define KVBENCH_ENGINE_DISKTIER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DISKTIER_ALIGN 4096
/* The first 8 bytes of every block ("KVBLOCK1" little-endian); the next 8 are its hash. */
#define DISKTIER_BLOCK_MAGIC 0x314b434f4c42564bull

struct disktier {
    char dir[PATH_MAX];
    size_t file_bytes;       /* block bytes rounded up to DISKTIER_ALIGN */
    bool direct;             /* O_DIRECT in use */
    _Atomic int fail_writes; /* test hook: fail this many upcoming writes with EIO (set under
                                the manager's lock, taken by the writer thread without it) */
    int lock_fd;             /* the held .kvbench.lock, -1 when none */
};

/* Create the directory, take its lock (a one-line err naming the holder's PID when another
 * engine has it), probe O_DIRECT, remove stale kvbench block files left by an earlier engine.
 * Returns 0 or -1 with err. */
int disktier_open(struct disktier *d, const char *dir, size_t block_bytes, char *err);
/* Release the directory's lock (after disktier_remove_all when the cache is not kept). */
void disktier_close(struct disktier *d);
/* Write one block from buf (DISKTIER_ALIGN-aligned, file_bytes long). Returns 0 or -errno. */
int disktier_write(struct disktier *d, uint64_t hash, const void *buf);
/* Read one block into buf (aligned, file_bytes long). Returns 0 or -errno (-EIO for short). */
int disktier_read(struct disktier *d, uint64_t hash, void *buf);
int disktier_remove(struct disktier *d, uint64_t hash);
/* Remove every kvbench block file in the directory (name and header checked); says in the log
 * what it left behind and why. Returns the number removed. */
int disktier_remove_all(struct disktier *d);
void disktier_path(const struct disktier *d, uint64_t hash, char out[PATH_MAX]);
const char *disktier_mode(const struct disktier *d);
/* An aligned buffer of file_bytes (free with free()). */
void *disktier_alloc(const struct disktier *d);

#endif
