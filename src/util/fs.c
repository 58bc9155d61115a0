/*
 * fs.c - filesystem helpers.
 */
#include "util/fs.h"

#include "util/redact.h"

#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *path, char *err)
{
    char tmp[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp)
        return err_set(err, "invalid directory path '%s'", path);
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return err_set(err, "cannot create directory %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0) {
        if (errno != EEXIST)
            return err_set(err, "cannot create directory %s: %s", tmp, strerror(errno));
        if (!fs_is_dir(tmp))
            return err_set(err, "%s exists and is not a directory", tmp);
    }
    return 0;
}

int fs_mkdir_new(const char *path, char *err)
{
    if (fs_exists(path)) {
        err_set(err, "%s already exists; refusing to overwrite it", path);
        return FS_EEXIST;
    }
    char parent[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof parent)
        return err_set(err, "invalid directory path '%s'", path);
    memcpy(parent, path, len + 1);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (fs_mkdir_p(parent, err) < 0)
            return -1;
    }
    if (mkdir(path, 0755) < 0) {
        if (errno == EEXIST) {
            err_set(err, "%s already exists; refusing to overwrite it", path);
            return FS_EEXIST;
        }
        return err_set(err, "cannot create directory %s: %s", path, strerror(errno));
    }
    return 0;
}

static int fs_write_atomic_raw(const char *path, const void *data, size_t len, char *err);

int fs_write_atomic(const char *path, const void *data, size_t len, char *err)
{
    size_t rlen;
    char *red = redact_dup(data, len, &rlen); /* every file kvbench writes: no secret in it */
    if (red) {
        int rc = fs_write_atomic_raw(path, red, rlen, err);
        free(red);
        return rc;
    }
    if (redact_needed(data, len)) /* the redacted copy ran out of memory: never write the secret */
        return err_set(err, "%s: not written: out of memory redacting it", path);
    return fs_write_atomic_raw(path, data, len, err);
}

int fs_write_buf(const char *path, const struct buf *b, char *err)
{
    if (buf_failed(b))
        return err_set(err, "%s: not written: out of memory while building it", path);
    return fs_write_atomic(path, buf_cstr(b), b->len, err);
}

static int fs_write_atomic_raw(const char *path, const void *data, size_t len, char *err)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return err_set(err, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set(err, "cannot create %s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return err_set(err, "cannot write %s: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) < 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return err_set(err, "cannot sync %s: %s", tmp, strerror(e));
    }
    if (close(fd) < 0) {
        int e = errno;
        unlink(tmp);
        return err_set(err, "cannot close %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return err_set(err, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return 0;
}

int fs_read_file(const char *path, struct buf *out, size_t max_bytes, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, "cannot open %s: %s", path, strerror(errno));
    size_t total = 0;
    for (;;) {
        if (buf_reserve(out, 65536) < 0) {
            close(fd);
            return err_set(err, "out of memory reading %s", path);
        }
        ssize_t r = read(fd, out->data + out->len, 65536);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return err_set(err, "cannot read %s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        total += (size_t)r;
        if (total > max_bytes) {
            close(fd);
            return err_set(err, "%s is larger than %zu bytes", path, max_bytes);
        }
        out->len += (size_t)r;
        out->data[out->len] = '\0';
    }
    close(fd);
    return 0;
}

bool fs_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool fs_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int fs_remove_tree(const char *path, char *err)
{
    if (!fs_exists(path))
        return 0;
    if (nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS) < 0)
        return err_set(err, "cannot remove %s: %s", path, strerror(errno));
    return 0;
}

int fs_append_whole(FILE *f, const void *data, size_t len)
{
    long start = ftell(f);
    if (fwrite(data, 1, len, f) == len && fflush(f) == 0)
        return 0;
    int e = errno ? errno : EIO;
    /* drop what stdio still holds and what reached the file of this write */
    clearerr(f);
    if (start >= 0) {
        fflush(f); /* may fail again: the buffer is discarded by the seek below either way */
        clearerr(f);
        if (ftruncate(fileno(f), (off_t)start) == 0)
            fseek(f, start, SEEK_SET);
        clearerr(f);
    }
    errno = e;
    return -1;
}
