/*
 * disktier.c - block files. Each operation opens, does one positioned transfer and closes: the
 * open/close pair is cheap next to a multi-kilobyte O_DIRECT transfer and keeps no descriptor
 * per cached block (a disk tier can hold hundreds of thousands of them).
 *
 * Every name is opened relative to the held directory's descriptor, with O_NONBLOCK (so a FIFO or
 * a device under a block's name cannot hold the opening thread: the scheduler reads blocks on its
 * own thread, and a blocked open() there stalled every request) and O_NOFOLLOW; fstat then refuses
 * whatever is not a regular file, and O_NONBLOCK is cleared again for the transfer. A name this
 * tier did not make as a regular file is never written through, read from, or removed.
 */
#include "engine/disktier.h"

#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define LOCK_FILE ".kvbench.lock"

void disktier_path(const struct disktier *d, uint64_t hash, char out[PATH_MAX])
{
    int n = snprintf(out, PATH_MAX, "%s/kvbench-%016llx.kvblk", d->dir, (unsigned long long)hash);
    if (n < 0 || n >= PATH_MAX)
        out[0] = '\0'; /* cannot happen: disktier_open bounds the directory length */
}

/* The block's name inside the directory. */
static void block_name(uint64_t hash, char out[32])
{
    snprintf(out, 32, "kvbench-%016llx.kvblk", (unsigned long long)hash);
}

const char *disktier_mode(const struct disktier *d)
{
    return d->direct ? "O_DIRECT" : "buffered+fadvise";
}

const char *disktier_strerror(int rc)
{
    return rc == DISKTIER_NOTREG ? "not a regular file" : strerror(-rc);
}

bool disktier_held(const struct disktier *d)
{
    return d->dir_fd >= 0 && !d->lost;
}

void *disktier_alloc(const struct disktier *d)
{
    void *p = NULL;
    if (posix_memalign(&p, DISKTIER_ALIGN, d->file_bytes) != 0)
        return NULL;
    return p;
}

static const char *kind_of(mode_t m)
{
    if (S_ISREG(m))
        return "a regular file";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISLNK(m))
        return "a symbolic link";
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISSOCK(m))
        return "a socket";
    return "a device";
}

const char *disktier_kind(const struct disktier *d, uint64_t hash)
{
    char name[32];
    block_name(hash, name);
    struct stat st;
    if (d->dir_fd < 0 || fstatat(d->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return "missing";
    return kind_of(st.st_mode);
}

/*
 * Open name in dfd without blocking and without following a link; refuse anything but a regular
 * file. flags: the access mode and O_CREAT/O_TRUNC/O_DIRECT as needed. Returns the descriptor
 * (blocking again, for the transfer), -errno, or DISKTIER_NOTREG.
 */
static int open_regular(int dfd, const char *name, int flags)
{
    int fd = openat(dfd, name, flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0644);
    if (fd < 0) {
        int e = errno;
        /* ELOOP: a symbolic link (O_NOFOLLOW); EISDIR: a directory opened for writing; ENXIO: a
         * FIFO without a reader opened for writing, a socket, a device without its driver */
        if (e == ELOOP || e == EISDIR || e == ENXIO)
            return DISKTIER_NOTREG;
        struct stat st;
        if (e != ENOENT && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            !S_ISREG(st.st_mode))
            return DISKTIER_NOTREG; /* e.g. EINVAL: O_DIRECT on a FIFO */
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return DISKTIER_NOTREG;
    }
    /* a regular file: transfers block as usual (F_SETFL keeps O_DIRECT, clears O_NONBLOCK) */
    if (fcntl(fd, F_SETFL, flags & O_DIRECT) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
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

/* Whether name (a regular file) begins with kvbench's block header for the hash its name carries.
 * The header is read the way the tier reads (O_DIRECT where in use): a buffered read of a block
 * written with O_DIRECT slowed the tier's next writes by a quarter (bench_engine's write ratio
 * 0.9 -> 0.7). */
static bool has_block_header(const struct disktier *d, const char *name)
{
    int fd = open_regular(d->dir_fd, name, O_RDONLY | (d->direct ? O_DIRECT : 0));
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
    if (!disktier_held(d))
        return 0;
    int scan_fd = dup(d->dir_fd); /* fdopendir takes its descriptor over */
    DIR *dir = scan_fd >= 0 ? fdopendir(scan_fd) : NULL;
    if (!dir) {
        if (scan_fd >= 0)
            close(scan_fd);
        return 0;
    }
    rewinddir(dir);
    int n = 0, foreign = 0, failed = 0, first_errno = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (!is_block_file(de->d_name))
            continue;
        if ((de->d_type != DT_REG && de->d_type != DT_UNKNOWN) ||
            !has_block_header(d, de->d_name)) {
            foreign++; /* named like a block, but not one of ours: not ours to delete */
        } else if (unlinkat(d->dir_fd, de->d_name, 0) == 0) {
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

/* ------------------------------------------------------------------------------------- lock */

/* The PID holding a flock on fd's inode, from /proc/locks; 0 when it cannot be told. */
static long flock_holder(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return 0;
    FILE *f = fopen("/proc/locks", "re");
    if (!f)
        return 0;
    char line[256];
    long pid = 0;
    while (!pid && fgets(line, sizeof line, f)) {
        /* "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" (waiters' lines have "->") */
        const char *s = strchr(line, ':');
        char type[16], kind[16], mode[16];
        long p;
        unsigned maj, min;
        unsigned long long ino;
        if (!s || sscanf(s + 1, " %15s %15s %15s %ld %x:%x:%llu", type, kind, mode, &p, &maj, &min,
                         &ino) != 7)
            continue;
        if (strcmp(type, "FLOCK") == 0 && maj == major(st.st_dev) && min == minor(st.st_dev) &&
            ino == (unsigned long long)st.st_ino && p > 0)
            pid = p;
    }
    fclose(f);
    return pid;
}

/* The PID recorded in dfd's .kvbench.lock, into out ("" when there is none). */
static void recorded_pid(int dfd, char out[32])
{
    out[0] = '\0';
    int fd = open_regular(dfd, LOCK_FILE, O_RDONLY);
    if (fd < 0)
        return;
    ssize_t r = pread(fd, out, 31, 0);
    close(fd);
    out[r > 0 ? r : 0] = '\0';
    out[strcspn(out, "\n")] = '\0';
}

static int refuse_held(const char *dir, int dfd, int held_fd, char *err)
{
    char pid[32];
    long p = flock_holder(held_fd);
    if (p > 0)
        snprintf(pid, sizeof pid, "%ld", p);
    else
        recorded_pid(dfd, pid);
    return err_set(err,
                   "disk cache directory %s is in use by another kvbench serve (pid %s); give each "
                   "engine its own --disk-cache-dir",
                   dir, pid[0] ? pid : "unknown");
}

/* Lock the directory dfd (the lock) and its .kvbench.lock (the holder's PID, and the lock older
 * kvbench builds take). Returns 0 with *lock_fd, or -1 with err; the caller closes dfd on
 * failure, which releases whatever was taken. */
static int lock_dir(const char *dir, int dfd, int *lock_fd, char *err)
{
    if (flock(dfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return refuse_held(dir, dfd, dfd, err);
        /* e.g. NFS, where flock needs a descriptor open for writing: the lock file's lock alone
         * then guards the directory, as in older builds */
        log_warn("disk tier: cannot lock the directory %s itself (%s); only %s/" LOCK_FILE
                 " guards it, and deleting that file would defeat it",
                 dir, strerror(errno), dir);
    }
    int fd = open_regular(dfd, LOCK_FILE, O_RDWR | O_CREAT);
    if (fd < 0)
        return err_set(err, "cannot create %s/" LOCK_FILE ": %s", dir, disktier_strerror(fd));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        int rc = e == EWOULDBLOCK
                     ? refuse_held(dir, dfd, fd, err)
                     : err_set(err, "cannot lock %s/" LOCK_FILE ": %s", dir, strerror(e));
        close(fd);
        return rc;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        log_warn("disk tier: cannot record our PID in %s/" LOCK_FILE ": %s", dir, strerror(errno));
    *lock_fd = fd;
    return 0;
}

/* Make the directory (when missing), open and lock it. Returns 0 with the descriptors, or -1. */
static int hold_dir(const char *dir, int *dir_fd, int *lock_fd, char *err)
{
    if (fs_mkdir_p(dir, err) < 0)
        return -1;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return err_set(err, "cannot open disk cache directory %s: %s", dir, strerror(errno));
    if (lock_dir(dir, dfd, lock_fd, err) < 0) {
        close(dfd);
        return -1;
    }
    *dir_fd = dfd;
    return 0;
}

/* Remove .kvbench.lock from dfd when it is still the file lock_fd holds. */
static void remove_lock_file(int dfd, int lock_fd)
{
    struct stat held, named;
    if (fstat(lock_fd, &held) == 0 && fstatat(dfd, LOCK_FILE, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
        held.st_dev == named.st_dev && held.st_ino == named.st_ino)
        unlinkat(dfd, LOCK_FILE, 0);
}

int disktier_recheck(struct disktier *d)
{
    if (d->lost)
        return -1;
    if (d->dir_fd < 0)
        return 0;
    struct stat st;
    if (fstat(d->dir_fd, &st) < 0 || st.st_nlink > 0)
        return 0; /* still there (perhaps renamed: it is still ours, and still used) */
    char err[ERR_LEN];
    int dfd = -1, lfd = -1;
    if (hold_dir(d->dir, &dfd, &lfd, err) < 0) {
        d->lost = true;
        log_warn("disk tier: %s was removed while in use and cannot be held again (%s); the disk "
                 "tier is off from now on and this engine touches nothing there",
                 d->dir, err);
        return -1;
    }
    /* dup2 swaps the directory under the same descriptor number atomically (a read on another
     * thread sees the old directory or the new one); the old directory's lock goes with it. */
    if (dup2(dfd, d->dir_fd) < 0) {
        close(lfd);
        close(dfd);
        d->lost = true;
        log_warn("disk tier: %s was removed while in use and cannot be held again (%s); the disk "
                 "tier is off from now on",
                 d->dir, strerror(errno));
        return -1;
    }
    close(dfd);
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    d->lock_fd = lfd;
    log_warn("disk tier: %s was missing and was made again; it is locked again and the blocks "
             "that were in it are dropped from G3",
             d->dir);
    return 1;
}

void disktier_close(struct disktier *d)
{
    if (d->lock_fd >= 0) {
        if (d->dir_fd >= 0)
            remove_lock_file(d->dir_fd, d->lock_fd); /* only ours: another's has another inode */
        close(d->lock_fd);
        d->lock_fd = -1;
    }
    if (d->dir_fd >= 0) {
        close(d->dir_fd);
        d->dir_fd = -1;
    }
}

/* Whether the filesystem takes O_DIRECT: a real aligned write of a probe file. */
static int probe_direct(struct disktier *d, char *err)
{
    char probe[64];
    snprintf(probe, sizeof probe, ".kvbench-direct-probe-%ld", (long)getpid());
    int fd = open_regular(d->dir_fd, probe, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT);
    if (fd >= 0) {
        void *buf = NULL;
        if (posix_memalign(&buf, DISKTIER_ALIGN, DISKTIER_ALIGN) == 0) {
            memset(buf, 0, DISKTIER_ALIGN);
            d->direct = pwrite(fd, buf, DISKTIER_ALIGN, 0) == DISKTIER_ALIGN;
            free(buf);
        }
        close(fd);
    } else {
        fd = open_regular(d->dir_fd, probe, O_WRONLY | O_CREAT | O_TRUNC);
        if (fd < 0)
            return err_set(err, "cannot write to disk cache directory %s: %s", d->dir,
                           disktier_strerror(fd));
        close(fd);
    }
    unlinkat(d->dir_fd, probe, 0);
    return 0;
}

int disktier_open(struct disktier *d, const char *dir, size_t block_bytes, char *err)
{
    memset(d, 0, sizeof *d);
    d->dir_fd = d->lock_fd = -1;
    if (strlen(dir) >= sizeof d->dir - 32)
        return err_set(err, "disk cache directory path too long");
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    d->file_bytes = (block_bytes + DISKTIER_ALIGN - 1) / DISKTIER_ALIGN * DISKTIER_ALIGN;
    if (hold_dir(dir, &d->dir_fd, &d->lock_fd, err) < 0)
        return -1;
    /* the lock is ours: whatever kvbench blocks are here belong to an engine that is gone */
    int stale = disktier_remove_all(d);
    if (stale > 0)
        log_info("disk tier: removed %d stale block files from %s", stale, dir);
    if (probe_direct(d, err) < 0) {
        disktier_close(d);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------- I/O */

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
    int left = d->fail_writes;
    while (left > 0 && !atomic_compare_exchange_weak(&d->fail_writes, &left, left - 1))
        ;
    if (left > 0)
        return -EIO;
    if (!disktier_held(d))
        return -ENOENT;
    char name[32];
    block_name(hash, name);
    int fd =
        open_regular(d->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | (d->direct ? O_DIRECT : 0));
    if (fd < 0)
        return fd; /* ENOENT: the directory was removed (the caller rechecks it) */
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
        unlinkat(d->dir_fd, name, 0); /* never leave a partial block behind (a regular file) */
    return rc;
}

int disktier_read(struct disktier *d, uint64_t hash, void *buf)
{
    if (d->dir_fd < 0)
        return -ENOENT;
    char name[32];
    block_name(hash, name);
    int fd = open_regular(d->dir_fd, name, O_RDONLY | (d->direct ? O_DIRECT : 0));
    if (fd < 0)
        return fd;
    if (!d->direct)
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    int rc = transfer(fd, buf, d->file_bytes, false);
    close(fd);
    return rc;
}

int disktier_remove(struct disktier *d, uint64_t hash)
{
    if (!disktier_held(d))
        return 0; /* the directory is not ours any more: nothing there is ours to remove */
    char name[32];
    block_name(hash, name);
    struct stat st;
    if (fstatat(d->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISREG(st.st_mode))
        return 0; /* not a file this tier made: left where it is */
    return unlinkat(d->dir_fd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
}
