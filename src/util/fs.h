/*
 * fs.h - filesystem helpers: mkdir -p, create-only directories, atomic file writes, whole-file
 * reads. All report failures through err (see err.h).
 */
#ifndef KVBENCH_UTIL_FS_H
#define KVBENCH_UTIL_FS_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define FS_EEXIST (-2) /* returned by fs_mkdir_new when the directory already exists */

/* Create path and any missing parents (mode 0755). Existing directories are fine. */
int fs_mkdir_p(const char *path, char *err);
/* Create a new directory (and its parents). Returns FS_EEXIST, with err filled, if path already
 * exists: a run directory is never reused or overwritten. */
BUF_MUST_CHECK int fs_mkdir_new(const char *path, char *err);
/* Write data to path atomically: a temporary file in the same directory, fsync, rename. */
BUF_MUST_CHECK int fs_write_atomic(const char *path, const void *data, size_t len, char *err);
/* fs_write_atomic of a buffer's contents; a failed buffer (an append ran out of memory) is refused
 * with an error and nothing is written: a short artifact never passes for a whole one. */
BUF_MUST_CHECK int fs_write_buf(const char *path, const struct buf *b, char *err);
/* Append the whole file to out (at most max_bytes; larger files are an error). */
int fs_read_file(const char *path, struct buf *out, size_t max_bytes, char *err);
bool fs_is_dir(const char *path);
bool fs_exists(const char *path);
/* Remove a directory tree (like rm -rf); missing path is success. */
int fs_remove_tree(const char *path, char *err);

/* Append len bytes (one or more whole lines) to f and flush; on failure (disk full, I/O error)
 * cut the file back to where it was, so no torn line survives. Returns 0, or -1 with errno. */
BUF_MUST_CHECK int fs_append_whole(FILE *f, const void *data, size_t len);

#endif
