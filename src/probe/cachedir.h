/*
 * cachedir.h - snapshots of the KV disk-tier directory (file count, bytes, and every file's
 * mtime, size and path) and the churn between two of them: files created, deleted, grown and
 * shrunk, bytes added and removed.
 */
#ifndef KVBENCH_PROBE_CACHEDIR_H
#define KVBENCH_PROBE_CACHEDIR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache_file {
    char *path; /* relative to the directory */
    uint64_t size;
    int64_t mtime_ns;
};

struct cache_snap {
    char label[96];
    char time[28];
    bool ok;
    char error[256];
    struct cache_file *files; /* sorted by path */
    size_t n;
    uint64_t total_bytes;
};

/* Walk dir (recursively, not following links). A missing or unreadable directory gives a
 * snapshot with ok == false and the reason. Returns 0, or -1 when out of memory. */
int cachedir_snapshot(const char *dir, const char *label, struct cache_snap *out);
void cachedir_free(struct cache_snap *s);
/* Write "<mtime ISO> <size> <path>" lines after a header. Returns 0 or -1 with err. */
int cachedir_write(const struct cache_snap *s, const char *dir, const char *path, char *err);
/* {files_before, files_after, bytes_before, bytes_after, files_created, files_deleted,
 *  files_grown, files_shrunk, bytes_added, bytes_removed}; {available: false} if either failed. */
json_t *cachedir_churn(const struct cache_snap *before, const struct cache_snap *after);

#endif
