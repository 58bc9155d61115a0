/*
 * cachedir.c - directory walks and diffs. Both snapshots are sorted by path, so the diff is one
 * merge pass. The walk uses opendir/fstatat (nftw keeps global state and is not thread-safe).
 */
#include "probe/cachedir.h"

#include "util/clock.h"
#include "util/err.h"
#include "util/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct walk {
    struct cache_snap *s;
    size_t cap;
    int oom;
};

static void walk_dir(struct walk *w, int dfd, const char *prefix, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) && !w->oom) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* vanished between readdir and stat */
        char rel[4096];
        snprintf(rel, sizeof rel, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name);
        if (S_ISDIR(st.st_mode)) {
            if (depth < 16) {
                int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (sub >= 0)
                    walk_dir(w, sub, rel, depth + 1);
            }
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        if (w->s->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 1024;
            struct cache_file *f = realloc(w->s->files, cap * sizeof *f);
            if (!f) {
                w->oom = 1;
                break;
            }
            w->s->files = f;
            w->cap = cap;
        }
        char *p = strdup(rel);
        if (!p) {
            w->oom = 1;
            break;
        }
        w->s->files[w->s->n++] = (struct cache_file){
            p, (uint64_t)st.st_size, (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec};
        w->s->total_bytes += (uint64_t)st.st_size;
    }
    closedir(d);
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(((const struct cache_file *)a)->path, ((const struct cache_file *)b)->path);
}

int cachedir_snapshot(const char *dir, const char *label, struct cache_snap *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->label, sizeof out->label, "%s", label);
    clock_iso_utc(clock_wall_ns(), out->time);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(out->error, sizeof out->error, "cannot open %s: %s", dir, strerror(errno));
        return 0;
    }
    struct walk w = {out, 0, 0};
    walk_dir(&w, fd, "", 0);
    if (w.oom) {
        cachedir_free(out);
        return -1;
    }
    if (out->n)
        qsort(out->files, out->n, sizeof *out->files, cmp_path);
    out->ok = true;
    return 0;
}

void cachedir_free(struct cache_snap *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->files[i].path);
    free(s->files);
    s->files = NULL;
    s->n = 0;
}

int cachedir_write(const struct cache_snap *s, const char *dir, const char *path, char *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return err_set(err, "cannot create %s: %s", path, strerror(errno));
    fprintf(f, "# kvbench cache-directory snapshot\n# label: %s\n# time: %s\n# directory: %s\n",
            s->label, s->time, dir);
    if (!s->ok)
        fprintf(f, "# error: %s\n", s->error);
    else
        fprintf(f, "# files: %zu\n# bytes: %llu\n# mtime size path\n", s->n,
                (unsigned long long)s->total_bytes);
    for (size_t i = 0; i < s->n; i++) {
        char ts[CLOCK_ISO_LEN];
        clock_iso_utc((uint64_t)(s->files[i].mtime_ns > 0 ? s->files[i].mtime_ns : 0), ts);
        fprintf(f, "%s %llu %s\n", ts, (unsigned long long)s->files[i].size, s->files[i].path);
    }
    int rc = 0;
    if (ferror(f))
        rc = err_set(err, "cannot write %s", path);
    if (fclose(f) != 0 && rc == 0)
        rc = err_set(err, "cannot write %s: %s", path, strerror(errno));
    return rc;
}

json_t *cachedir_churn(const struct cache_snap *b, const struct cache_snap *a)
{
    if (!b || !a || !b->ok || !a->ok)
        return json_pack("{s:b, s:s}", "available", 0, "reason",
                         b && !b->ok   ? b->error
                         : a && !a->ok ? a->error
                                       : "snapshot missing");
    size_t i = 0, j = 0, created = 0, deleted = 0, grown = 0, shrunk = 0;
    uint64_t added = 0, removed = 0;
    while (i < b->n || j < a->n) {
        int c = i >= b->n ? 1 : j >= a->n ? -1 : strcmp(b->files[i].path, a->files[j].path);
        if (c < 0) {
            deleted++;
            removed += b->files[i++].size;
        } else if (c > 0) {
            created++;
            added += a->files[j++].size;
        } else {
            uint64_t sb = b->files[i].size, sa = a->files[j].size;
            if (sa > sb) {
                grown++;
                added += sa - sb;
            } else if (sa < sb) {
                shrunk++;
                removed += sb - sa;
            }
            i++;
            j++;
        }
    }
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "available", 1,
                     "files_before", (json_int_t)b->n, "files_after", (json_int_t)a->n,
                     "bytes_before", (json_int_t)b->total_bytes, "bytes_after",
                     (json_int_t)a->total_bytes, "files_created", (json_int_t)created,
                     "files_deleted", (json_int_t)deleted, "files_grown", (json_int_t)grown,
                     "files_shrunk", (json_int_t)shrunk, "bytes_added", (json_int_t)added,
                     "bytes_removed", (json_int_t)removed);
}
