/*
 * disktier.c - block files. Each operation opens, does one positioned transfer and closes: the
 * open/close pair is cheap next to a multi-kilobyte O_DIRECT transfer and keeps no descriptor
 * per cached block (a disk tier can hold hundreds of thousands of them).
 */
#include "engine/disktier.h"

#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <dirent.h>
#include <sys/file.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void disktier_path(const struct disktier *d, uint64_t hash, char out[PATH_MAX])
{
    int n = snprintf(out, PATH_MAX, "%s/kvbench-%016llx.kvblk", d->dir, (unsigned long long)hash);
    if (n < 0 || n >= PATH_MAX)
        out[0] = '\0'; /* cannot happen: disktier_open bounds the directory length */
}

const char *disktier_mode(const struct disktier *d)
{
    return d->direct ? "O_DIRECT" : "buffered+fadvise";
}

void *disktier_alloc(const struct disktier *d)
{
    void *p = NULL;
    if (posix_memalign(&p, DISKTIER_ALIGN, d->file_bytes) != 0)
        return NULL;
    return p;
}

static int is_block_file(const char *name)
{
    size_t len = strlen(name);
    if (len != strlen("kvbench-") + 16 + strlen(".kvblk"))
        return 0;
    if (strncmp(name, "kvbench-", 8) != 0 || strcmp(name + 24, ".kvblk") != 0)
        return 0;
    for (int i = 8; i < 24; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    return 1;
}

/* Whether path begins with kvbench's block header for the hash its name carries. */
/* Whether path begins with kvbench's block header for the hash its name carries. The header
 * is read the way the tier reads (O_DIRECT where in use): a buffered read of a block written with
 * O_DIRECT slowed the tier's next writes by a quarter (bench_engine's write ratio 0.9 -> 0.7). */
static bool has_block_header(const struct disktier *d, const char *path, const char *name)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | (d->direct ? O_DIRECT : 0));
    if (fd < 0)
        return false;
    unsigned char *h = NULL;
    bool ok = posix_memalign((void **)&h, DISKTIER_ALIGN, DISKTIER_ALIGN) == 0 &&
              pread(fd, h, DISKTIER_ALIGN, 0) >= 16;
    close(fd);
    uint64_t magic = 0, hash = 0;
    for (int i = 7; ok && i >= 0; i--) {
        magic = magic << 8 | h[i];
        hash = hash << 8 | h[8 + i];
    }
    free(h);
    return ok && magic == DISKTIER_BLOCK_MAGIC && hash == strtoull(name + 8, NULL, 16);
}

int disktier_remove_all(struct disktier *d)
{
    DIR *dir = opendir(d->dir);
    if (!dir)
        return 0;
    int n = 0, foreign = 0, failed = 0, first_errno = 0;
    struct dirent *de;
    char path[PATH_MAX];
    while ((de = readdir(dir))) {
        if (!is_block_file(de->d_name))
            continue;
        int len = snprintf(path, sizeof path, "%s/%s", d->dir, de->d_name);
        if (len <= 0 || len >= (int)sizeof path)
            continue;
        if (!has_block_header(d, path, de->d_name)) {
            foreign++; /* named like a block, but not one of ours: not ours to delete */
        } else if (unlink(path) == 0) {
            n++;
        } else if (errno != ENOENT) {
            if (!failed++)
                first_errno = errno;
        }
    }
    closedir(dir);
    if (foreign)
        log_warn("disk tier: left %d files in %s that are named like block files but do not carry "
                 "kvbench's block header",
                 foreign, d->dir);
    if (failed)
        log_warn("disk tier: could not remove %d block files from %s (%s); they are left behind",
                 failed, d->dir, strerror(first_errno));
    return n;
}

/* The directory's lock: flock on .kvbench.lock, which then holds our PID. */
static int take_lock(struct disktier *d, char *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.kvbench.lock", d->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set(err, "cannot create %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t r = pread(fd, pid, sizeof pid - 1, 0);
        close(fd);
        pid[r > 0 ? r : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            return err_set(err,
                           "disk cache directory %s is in use by another kvbench serve (pid %s); "
                           "give each engine its own --disk-cache-dir",
                           d->dir, pid[0] ? pid : "unknown");
        return err_set(err, "cannot lock %s: %s", path, strerror(e));
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        log_warn("disk tier: cannot record our PID in %s: %s", path, strerror(errno));
    d->lock_fd = fd;
    return 0;
}

void disktier_close(struct disktier *d)
{
    if (d->lock_fd < 0)
        return;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.kvbench.lock", d->dir);
    unlink(path); /* still ours: we hold the lock */
    close(d->lock_fd);
    d->lock_fd = -1;
}

int disktier_open(struct disktier *d, const char *dir, size_t block_bytes, char *err)
{
    memset(d, 0, sizeof *d);
    d->lock_fd = -1;
    if (strlen(dir) >= sizeof d->dir - 32)
        return err_set(err, "disk cache directory path too long");
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    d->file_bytes = (block_bytes + DISKTIER_ALIGN - 1) / DISKTIER_ALIGN * DISKTIER_ALIGN;
    if (fs_mkdir_p(dir, err) < 0)
        return -1;
    if (take_lock(d, err) < 0)
        return -1;
    int stale = disktier_remove_all(d);
    if (stale > 0)
        log_info("disk tier: removed %d stale block files from %s", stale, dir);
    /* Probe O_DIRECT with a real aligned write. */
    char probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%s/.kvbench-direct-probe-%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        void *buf = NULL;
        if (posix_memalign(&buf, DISKTIER_ALIGN, DISKTIER_ALIGN) == 0) {
            memset(buf, 0, DISKTIER_ALIGN);
            d->direct = pwrite(fd, buf, DISKTIER_ALIGN, 0) == DISKTIER_ALIGN;
            free(buf);
        }
        close(fd);
    } else {
        fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            err_set(err, "cannot write to disk cache directory %s: %s", dir, strerror(errno));
            disktier_close(d);
            return -1;
        }
        close(fd);
    }
    unlink(probe);
    return 0;
}

static int transfer(int fd, void *buf, size_t len, bool writing)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = writing ? pwrite(fd, (char *)buf + done, len - done, (off_t)done)
                            : pread(fd, (char *)buf + done, len - done, (off_t)done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO; /* short file */
        done += (size_t)r;
    }
    return 0;
}

int disktier_write(struct disktier *d, uint64_t hash, const void *buf)
{
    char path[PATH_MAX];
    disktier_path(d, hash, path);
    int left = d->fail_writes;
    while (left > 0 && !atomic_compare_exchange_weak(&d->fail_writes, &left, left - 1))
        ;
    if (left > 0)
        return -EIO;
    int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (d->direct ? O_DIRECT : 0);
    int fd = open(path, flags, 0644);
    if (fd < 0 && errno == ENOENT) {
        /* the directory was deleted under us: make it again, once */
        char err[ERR_LEN];
        if (fs_mkdir_p(d->dir, err) == 0) {
            log_warn("disk tier: %s was missing and was made again", d->dir);
            fd = open(path, flags, 0644);
        }
    }
    if (fd < 0)
        return -errno;
    int rc = transfer(fd, (void *)buf, d->file_bytes, true);
    if (rc == 0 && !d->direct) {
        if (fdatasync(fd) < 0)
            rc = -errno;
        else
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    }
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        unlink(path); /* never leave a partial block behind */
    return rc;
}

int disktier_read(struct disktier *d, uint64_t hash, void *buf)
{
    char path[PATH_MAX];
    disktier_path(d, hash, path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | (d->direct ? O_DIRECT : 0));
    if (fd < 0)
        return -errno;
    if (!d->direct)
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    int rc = transfer(fd, buf, d->file_bytes, false);
    close(fd);
    return rc;
}

int disktier_remove(struct disktier *d, uint64_t hash)
{
    char path[PATH_MAX];
    disktier_path(d, hash, path);
    return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}
