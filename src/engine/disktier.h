/*
 * disktier.h - G3: one file per KV block under the disk cache directory, written and read with
 * O_DIRECT where the filesystem allows it, so the block device really sees the I/O. Where
 * O_DIRECT is refused (tmpfs before Linux 6.6, some overlay filesystems) it falls back to buffered
 * I/O with fdatasync + posix_fadvise(DONTNEED) after writes and DONTNEED before reads, so reads
 * still reach the device; disktier_mode() says which is in use.
 *
 * Files are named kvbench-<16 hex digits of the sequence hash>.kvblk and begin with kvbench's
 * block header (magic, hash). The tier never blocks on a file it did not make: block files are
 * opened non-blocking without following links, and anything that is not a regular file (a FIFO,
 * a socket, a device, a directory, a symbolic link) is refused (DISKTIER_NOTREG) and left where it
 * is; a refused file costs its block, never the engine.
 *
 * The lock holds the directory, not a name in it: an O_DIRECTORY descriptor of the cache
 * directory is flock'ed for the engine's lifetime and every file operation is relative to it, so
 * deleting .kvbench.lock (which records the holder's PID, and is also flock'ed for older kvbench
 * builds) unlocks nothing, and a directory that was replaced is never touched. A second engine on
 * a held directory is refused and touches nothing. If the held directory is removed while the
 * engine runs, disktier_recheck makes the path again and locks it (its blocks are lost), or, when
 * another engine holds the path by then, gives the tier up: it never re-creates without a lock.
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
/* Returned for a block file that is not a regular file (or is a link): refused, left in place. */
#define DISKTIER_NOTREG (-4096)

struct disktier {
    char dir[PATH_MAX];
    size_t file_bytes;       /* block bytes rounded up to DISKTIER_ALIGN */
    bool direct;             /* O_DIRECT in use */
    _Atomic int fail_writes; /* test hook: fail this many upcoming writes with EIO (set under
                                the manager's lock, taken by the writer thread without it) */
    /* The directory, flock'ed: the lock; -1 when none. Its number never changes while open (a
     * re-made directory is dup2'ed onto it), so a reader on another thread may use it while
     * disktier_recheck runs. */
    int dir_fd;
    int lock_fd; /* the held .kvbench.lock, -1 when none */
    /* The directory was removed and could not be held again: the tier is off (set by the
     * writing thread, read by any). */
    _Atomic bool lost;
};

/* Create the directory, take its lock (a one-line err naming the holder's PID when another
 * engine has it), probe O_DIRECT, remove stale kvbench block files left by an earlier engine
 * (only with the lock held: a dead engine's). Returns 0 or -1 with err; on failure nothing is
 * held and nothing in the directory was removed. */
int disktier_open(struct disktier *d, const char *dir, size_t block_bytes, char *err);
/* Release the directory's lock and remove .kvbench.lock (when it is still the one we hold). */
void disktier_close(struct disktier *d);
/* Whether this tier holds its directory (opened, locked, not lost). */
bool disktier_held(const struct disktier *d);
/* Look whether the held directory still exists. Call from one thread only (the one that
 * writes). Returns 0 unchanged; 1 it had been removed and is made again and locked (empty: the
 * caller drops its index of G3); -1 it had been removed and cannot be held again (another engine
 * has the path, or it cannot be made): the tier is off for good. Logs one line when it acts. */
int disktier_recheck(struct disktier *d);
/* Write one block from buf (DISKTIER_ALIGN-aligned, file_bytes long). Returns 0, -errno or
 * DISKTIER_NOTREG (something not a regular file has the block's name: left in place). */
int disktier_write(struct disktier *d, uint64_t hash, const void *buf);
/* Read one block into buf (aligned, file_bytes long). Returns 0, -errno (-EIO for a short file)
 * or DISKTIER_NOTREG. Never blocks on a FIFO or a device. */
int disktier_read(struct disktier *d, uint64_t hash, void *buf);
/* Remove a block file of ours; a name that is not a regular file is left alone. Returns 0 or
 * -errno. */
int disktier_remove(struct disktier *d, uint64_t hash);
/* Remove every kvbench block file in the directory (name and header checked, regular files
 * only); says in the log what it left behind and why. Returns the number removed. Used at start
 * for a dead engine's leftovers; a running engine removes its own files by its index. */
int disktier_remove_all(struct disktier *d);
void disktier_path(const struct disktier *d, uint64_t hash, char out[PATH_MAX]);
/* What the block's name is now, for log lines: "a FIFO", "a symbolic link", "a directory",
 * "a socket", "a device", "a regular file", "missing". A static string. */
const char *disktier_kind(const struct disktier *d, uint64_t hash);
/* strerror for disktier's return codes (DISKTIER_NOTREG included). A static string. */
const char *disktier_strerror(int rc);
const char *disktier_mode(const struct disktier *d);
/* An aligned buffer of file_bytes (free with free()). */
void *disktier_alloc(const struct disktier *d);

#endif
