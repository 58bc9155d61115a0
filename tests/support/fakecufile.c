/*
 * fakecufile.c - a stand-in libcufile for tests: cuFileRead/Write as pread/pwrite on the
 * registered descriptor into the (host-resident) memory of fakecuda.c, like cuFile's
 * compatibility mode. cuFileDriverGetProperties reports no nvidia-fs driver. Environment:
 *   FAKECUFILE_OPEN_ERR  a non-zero CUfileOpError for cuFileDriverOpen to return
 *   FAKECUFILE_GDS_CHECKS_FAIL  cuFileHandleRegister fails with 5027 (HANDLE_NOT_REGISTERED)
 *                        unless CUFILE_FORCE_COMPAT_MODE=true was set before cuFileDriverOpen;
 *                        =always: fails with 5027 whatever was set (what the H100 and H200
 *                        machines without nvidia-fs did with ext4 on virtio, also with the
 *                        variable set)
 */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

struct status {
    int err, cu_err;
};
struct descr {
    int type;
    union {
        int fd;
        void *handle;
    } handle;
    const void *fs_ops;
};
struct fh {
    int fd;
};
static int opened, forced_compat;

struct status cuFileDriverOpen(void)
{
    const char *fc = getenv("CUFILE_FORCE_COMPAT_MODE");
    forced_compat = fc && strcmp(fc, "true") == 0;
    const char *e = getenv("FAKECUFILE_OPEN_ERR");
    struct status s = {e && *e ? atoi(e) : 0, 0};
    opened = s.err == 0;
    return s;
}

struct status cuFileDriverClose(void)
{
    struct status s = {opened ? 0 : 5001, 0};
    opened = 0;
    return s;
}

struct status cuFileDriverGetProperties(void *props)
{
    memset(props, 0, 64);
    return (struct status){0, 0};
}

struct status cuFileHandleRegister(void **h, struct descr *d)
{
    if (!opened || d->type != 1 || d->handle.fd < 0)
        return (struct status){5003, 0};
    const char *checks = getenv("FAKECUFILE_GDS_CHECKS_FAIL");
    if (checks && *checks && (!forced_compat || strcmp(checks, "always") == 0))
        return (struct status){5027, 0};
    struct fh *f = malloc(sizeof *f);
    if (!f)
        return (struct status){5011, 0};
    f->fd = d->handle.fd;
    *h = f;
    return (struct status){0, 0};
}

void cuFileHandleDeregister(void *h)
{
    free(h);
}

struct status cuFileBufRegister(const void *p, size_t n, int flags)
{
    (void)flags;
    return (struct status){p && n ? 0 : 5005, 0};
}

struct status cuFileBufDeregister(const void *p)
{
    return (struct status){p ? 0 : 5005, 0};
}

ssize_t cuFileRead(void *h, void *buf, size_t n, off_t off, off_t buf_off)
{
    ssize_t r = pread(((struct fh *)h)->fd, (char *)buf + buf_off, n, off);
    return r < 0 ? -5 : r;
}

ssize_t cuFileWrite(void *h, const void *buf, size_t n, off_t off, off_t buf_off)
{
    ssize_t r = pwrite(((struct fh *)h)->fd, (const char *)buf + buf_off, n, off);
    return r < 0 ? -5 : r;
}
