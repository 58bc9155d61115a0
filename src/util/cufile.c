/*
 * cufile.c - cuFile through dlopen. The prototypes are cufile.h's C ABI: CUfileError_t is a pair
 * of ints returned by value, CUfileHandle_t an opaque pointer, CUfileDescr_t {type, union {fd,
 * handle}, fs_ops}.
 */
#include "util/cufile.h"

#include "util/err.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CU_FILE_SUCCESS               0
#define CU_FILE_HANDLE_TYPE_OPAQUE_FD 1

struct cufile_status {
    int err;    /* CUfileOpError */
    int cu_err; /* CUresult */
};

struct cufile_descr {
    int type;
    union {
        int fd;
        void *handle;
    } handle;
    const void *fs_ops;
};

struct cufile {
    void *lib;
    char path[256];
    bool open;
    bool forced_compat; /* CUFILE_FORCE_COMPAT_MODE was set here */
    const char *mode;
    char mode_reason[384];
    struct cufile_status (*driver_open)(void);
    struct cufile_status (*driver_close)(void);
    struct cufile_status (*driver_props)(void *);
    struct cufile_status (*handle_register)(void **, struct cufile_descr *);
    void (*handle_deregister)(void *);
    struct cufile_status (*buf_register)(const void *, size_t, int);
    struct cufile_status (*buf_deregister)(const void *);
    ssize_t (*read)(void *, void *, size_t, off_t, off_t);
    ssize_t (*write)(void *, const void *, size_t, off_t, off_t);
};

static void *load_lib(char *path, size_t path_len, char *why, size_t why_len)
{
    const char *env = getenv("KVBENCH_CUFILE");
    if (env && *env) {
        snprintf(path, path_len, "%s", env);
        void *h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
        if (!h)
            snprintf(why, why_len, "KVBENCH_CUFILE=%s: %s", env, dlerror());
        return h;
    }
    static const char *const NAMES[] = {"libcufile.so", "libcufile.so.0"};
    static const char *const DIRS[] = {"", "/usr/local/cuda/lib64/",
                                       "/usr/local/cuda/targets/x86_64-linux/lib/",
                                       "/usr/local/cuda/targets/sbsa-linux/lib/"};
    for (size_t d = 0; d < sizeof DIRS / sizeof DIRS[0]; d++) {
        for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
            snprintf(path, path_len, "%s%s", DIRS[d], NAMES[i]);
            void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
            if (h)
                return h;
        }
    }
    snprintf(why, why_len,
             "libcufile.so* not found on the loader path or under /usr/local/cuda (set "
             "KVBENCH_CUFILE=/path/to/libcufile.so)");
    return NULL;
}

static bool resolve(struct cufile *cf, char *missing, size_t len)
{
#define SYM(field, name)                                                                           \
    do {                                                                                           \
        *(void **)(&cf->field) = dlsym(cf->lib, name);                                             \
        if (!cf->field) {                                                                          \
            snprintf(missing, len, "%s", name);                                                    \
            return false;                                                                          \
        }                                                                                          \
    } while (0)
    SYM(driver_open, "cuFileDriverOpen");
    /* cufile.h maps cuFileDriverClose to the reference-counted _v2 where the library has it */
    *(void **)(&cf->driver_close) = dlsym(cf->lib, "cuFileDriverClose_v2");
    if (!cf->driver_close)
        SYM(driver_close, "cuFileDriverClose");
    SYM(handle_register, "cuFileHandleRegister");
    SYM(handle_deregister, "cuFileHandleDeregister");
    SYM(buf_register, "cuFileBufRegister");
    SYM(buf_deregister, "cuFileBufDeregister");
    SYM(read, "cuFileRead");
    SYM(write, "cuFileWrite");
#undef SYM
    *(void **)(&cf->driver_props) = dlsym(cf->lib, "cuFileDriverGetProperties"); /* optional */
    return true;
}

/* cufile.h's CUfileOpError names (5000 + n), for the reasons kvbench prints. */
static const char *cufile_err_name(int err)
{
    static const char *const NAMES[] = {
        [1] = "DRIVER_NOT_INITIALIZED",
        [2] = "DRIVER_INVALID_PROPS",
        [3] = "DRIVER_UNSUPPORTED_LIMIT",
        [4] = "DRIVER_VERSION_MISMATCH",
        [5] = "DRIVER_VERSION_READ_ERROR",
        [6] = "DRIVER_CLOSING",
        [7] = "PLATFORM_NOT_SUPPORTED",
        [8] = "IO_NOT_SUPPORTED",
        [9] = "DEVICE_NOT_SUPPORTED",
        [10] = "NVFS_DRIVER_ERROR",
        [11] = "CUDA_DRIVER_ERROR",
        [12] = "CUDA_POINTER_INVALID",
        [13] = "CUDA_MEMORY_TYPE_INVALID",
        [14] = "CUDA_POINTER_RANGE_ERROR",
        [15] = "CUDA_CONTEXT_MISMATCH",
        [16] = "INVALID_MAPPING_SIZE",
        [17] = "INVALID_MAPPING_RANGE",
        [18] = "INVALID_FILE_TYPE",
        [19] = "INVALID_FILE_OPEN_FLAG",
        [20] = "DIO_NOT_SET",
        [22] = "INVALID_VALUE",
        [23] = "MEMORY_ALREADY_REGISTERED",
        [24] = "MEMORY_NOT_REGISTERED",
        [25] = "PERMISSION_DENIED",
        [26] = "DRIVER_ALREADY_OPEN",
        [27] = "HANDLE_NOT_REGISTERED",
        [28] = "HANDLE_ALREADY_REGISTERED",
        [29] = "DEVICE_NOT_FOUND",
        [30] = "INTERNAL_ERROR",
        [31] = "GETNEWFD_FAILED",
        [33] = "NVFS_SETUP_ERROR",
        [34] = "IO_DISABLED",
        [36] = "GPU_MEMORY_PINNING_FAILED",
        [43] = "NOMEM_ERROR",
        [44] = "IO_ERROR",
    };
    int n = err - 5000;
    if (n <= 0 || n >= (int)(sizeof NAMES / sizeof NAMES[0]) || !NAMES[n])
        return "unknown";
    return NAMES[n];
}

/* udev's device database ($KVBENCH_UDEV_DIR, else /run/udev) can be read here. */
static bool udev_readable(void)
{
    const char *dir = getenv("KVBENCH_UDEV_DIR");
    char data[512];
    snprintf(data, sizeof data, "%s/data", dir && *dir ? dir : "/run/udev");
    DIR *d = opendir(data);
    if (d)
        closedir(d);
    return d != NULL;
}

/* The nvidia-fs driver's character devices (/dev/nvidia-fs0 ...), or $KVBENCH_NVFS_DEV_DIR. */
static bool nvfs_device_present(void)
{
    const char *dir = getenv("KVBENCH_NVFS_DEV_DIR");
    DIR *d = opendir(dir && *dir ? dir : "/dev");
    if (!d)
        return false;
    bool found = false;
    for (struct dirent *de; !found && (de = readdir(d));)
        found = strncmp(de->d_name, "nvidia-fs", 9) == 0;
    closedir(d);
    return found;
}

/* GDS needs the nvidia-fs driver: its device nodes, and the version cuFile reports for it. */
static void decide_mode(struct cufile *cf)
{
    bool dev = nvfs_device_present();
    unsigned nvfs_major = 0;
    bool props = false;
    if (cf->driver_props) {
        unsigned char raw[1024] = {0}; /* CUfileDrvProps_t; its first field is nvfs.major_version */
        if (cf->driver_props(raw).err == CU_FILE_SUCCESS) {
            memcpy(&nvfs_major, raw, sizeof nvfs_major);
            props = true;
        }
    }
    if (dev && (!props || nvfs_major > 0)) {
        cf->mode = "gds";
        snprintf(cf->mode_reason, sizeof cf->mode_reason,
                 "the nvidia-fs driver is loaded (/dev/nvidia-fs*%s); cuFile may still fall back "
                 "to compatibility mode for a file whose filesystem GDS cannot use",
                 props ? ", cuFileDriverGetProperties reports its version" : "");
    } else {
        cf->mode = "compat";
        snprintf(cf->mode_reason, sizeof cf->mode_reason,
                 "%s: cuFile moves data through host bounce buffers with POSIX I/O%s",
                 !dev ? "no /dev/nvidia-fs* (the nvidia-fs kernel module is not loaded)"
                      : "cuFileDriverGetProperties reports no nvidia-fs driver",
                 cf->forced_compat ? " (CUFILE_FORCE_COMPAT_MODE=true set for it)" : "");
    }
}

int cufile_open(struct cufile **out, char *reason)
{
    *out = NULL;
    struct cufile *cf = calloc(1, sizeof *cf);
    if (!cf)
        return err_set(reason, "no cuFile: out of memory");
    char why[400], missing[64];
    cf->lib = load_lib(cf->path, sizeof cf->path, why, sizeof why);
    if (!cf->lib) {
        free(cf);
        return err_set(reason, "no cuFile: %s", why);
    }
    if (!resolve(cf, missing, sizeof missing)) {
        err_set(reason, "no cuFile: %s has no %s", cf->path, missing);
        free(cf);
        return -1;
    }
    /* Without the nvidia-fs driver GDS cannot run: ask cuFile for its compatibility mode from
     * the start (CUFILE_FORCE_COMPAT_MODE), so that registering a file does not fail on the GDS
     * checks of the filesystem (seen on an H100 VM: cuFileHandleRegister error 5027 on ext4 on
     * virtio). A value the user set is kept. */
    cf->forced_compat = !nvfs_device_present() && !getenv("CUFILE_FORCE_COMPAT_MODE");
    if (cf->forced_compat)
        setenv("CUFILE_FORCE_COMPAT_MODE", "true", 0);
    struct cufile_status st = cf->driver_open();
    if (st.err != CU_FILE_SUCCESS) {
        err_set(reason,
                "no cuFile: cuFileDriverOpen failed (cuFile error %d %s, CUDA error %d; see "
                "cufile.log and /etc/cufile.json's allow_compat_mode)",
                st.err, cufile_err_name(st.err), st.cu_err);
        free(cf);
        return -1;
    }
    cf->open = true;
    decide_mode(cf);
    *out = cf;
    return 0;
}

void cufile_close(struct cufile *cf)
{
    if (!cf)
        return;
    if (cf->open)
        cf->driver_close();
    free(cf); /* the library stays loaded, as the CUDA runtime */
}

const char *cufile_lib(const struct cufile *cf)
{
    return cf->path;
}

const char *cufile_mode(const struct cufile *cf)
{
    return cf->mode;
}

const char *cufile_mode_reason(const struct cufile *cf)
{
    return cf->mode_reason;
}

int cufile_handle_register(struct cufile *cf, int fd, void **handle, char *err)
{
    struct cufile_descr d = {.type = CU_FILE_HANDLE_TYPE_OPAQUE_FD, .handle.fd = fd};
    struct cufile_status st = cf->handle_register(handle, &d);
    if (st.err == CU_FILE_SUCCESS)
        return 0;
    *handle = NULL;
    /* cuFile says why only in its log. It looks the file's block device up in udev's database,
     * in compatibility mode too (KvikIO falls back to POSIX I/O where /run/udev is unreadable). */
    return err_set(err,
                   "cuFileHandleRegister failed (cuFile error %d %s, CUDA error %d); cuFile "
                   "writes why in cufile.log ($CUFILE_LOGFILE_PATH, else the working "
                   "directory)%s",
                   st.err, cufile_err_name(st.err), st.cu_err,
                   udev_readable() ? ""
                                   : "; udev's device database (/run/udev/data) cannot be read "
                                     "here, and cuFile looks the file's device up there to "
                                     "register it (in a container: mount /run/udev read-only)");
}

void cufile_handle_deregister(struct cufile *cf, void *handle)
{
    if (handle)
        cf->handle_deregister(handle);
}

int cufile_buf_register(struct cufile *cf, void *dev, size_t n, char *err)
{
    struct cufile_status st = cf->buf_register(dev, n, 0);
    if (st.err == CU_FILE_SUCCESS)
        return 0;
    return err_set(err, "cuFileBufRegister failed (cuFile error %d %s, CUDA error %d)", st.err,
                   cufile_err_name(st.err), st.cu_err);
}

void cufile_buf_deregister(struct cufile *cf, void *dev)
{
    if (dev)
        cf->buf_deregister(dev);
}

ssize_t cufile_read(struct cufile *cf, void *handle, void *dev, size_t n, off_t off, off_t dev_off,
                    char *err)
{
    ssize_t r = cf->read(handle, dev, n, off, dev_off);
    if (r < 0)
        err_set(err, "cuFileRead failed (%zd)", r);
    return r < 0 ? -1 : r;
}

ssize_t cufile_write(struct cufile *cf, void *handle, const void *dev, size_t n, off_t off,
                     off_t dev_off, char *err)
{
    ssize_t r = cf->write(handle, dev, n, off, dev_off);
    if (r < 0)
        err_set(err, "cuFileWrite failed (%zd)", r);
    return r < 0 ? -1 : r;
}
