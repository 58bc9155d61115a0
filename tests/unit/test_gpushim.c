/*
 * Unit tests for the dlopen shims of the CUDA runtime and cuFile (util/cuda, util/cufile),
 * against the stand-in libraries built with the tests (tests/support/fakecuda.c,
 * fakecufile.c) and against libraries that are missing or are not CUDA at all: every refusal
 * names what was not found.
 */
#include "test_common.h"
#include "util/cuda.h"
#include "util/cufile.h"
#include "util/err.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *fake(const char *var)
{
    const char *p = getenv(var);
    assert_non_null(p); /* set by CTest */
    return p;
}

static void test_no_runtime(void **state)
{
    (void)state;
    struct cuda_rt *rt;
    char reason[ERR_LEN];
    setenv("KVBENCH_CUDART", "/nonexistent/libcudart.so", 1);
    assert_int_equal(cuda_open(0, &rt, reason), -1);
    assert_null(rt);
    assert_non_null(strstr(reason, "no CUDA runtime: KVBENCH_CUDART=/nonexistent/libcudart.so"));
    /* a library that loads but is not the CUDA runtime */
    setenv("KVBENCH_CUDART", fake("FAKE_CUFILE"), 1);
    assert_int_equal(cuda_open(0, &rt, reason), -1);
    assert_non_null(strstr(reason, "has no cudaGetDeviceCount"));
    unsetenv("KVBENCH_CUDART");
}

static void test_no_device(void **state)
{
    (void)state;
    struct cuda_rt *rt;
    char reason[ERR_LEN];
    setenv("KVBENCH_CUDART", fake("FAKE_CUDART"), 1);
    setenv("FAKECUDA_DEVICES", "0", 1);
    assert_int_equal(cuda_open(0, &rt, reason), -1);
    assert_string_equal(
        reason, "no CUDA device: cudaGetDeviceCount says no CUDA-capable device is detected");
    setenv("FAKECUDA_DEVICES", "2", 1);
    assert_int_equal(cuda_open(2, &rt, reason), -1);
    assert_string_equal(reason, "no CUDA device 2: this machine has 2 (0..1)");
    unsetenv("FAKECUDA_DEVICES");
    unsetenv("KVBENCH_CUDART");
}

static void test_copies(void **state)
{
    (void)state;
    struct cuda_rt *rt;
    char reason[ERR_LEN], err[ERR_LEN], why[256];
    setenv("KVBENCH_CUDART", fake("FAKE_CUDART"), 1);
    assert_int_equal(cuda_open(0, &rt, reason), 0);
    assert_string_equal(cuda_lib(rt), fake("FAKE_CUDART"));
    int rv, dv;
    cuda_versions(rt, &rv, &dv);
    assert_int_equal(rv, 13000);
    assert_false(cuda_unified(rt, why, sizeof why));
    assert_non_null(strstr(why, "discrete"));
    setenv("FAKECUDA_INTEGRATED", "1", 1);
    assert_true(cuda_unified(rt, why, sizeof why));
    assert_non_null(strstr(why, "integrated"));
    unsetenv("FAKECUDA_INTEGRATED");
    setenv("FAKECUDA_HOST_PT", "1", 1);
    assert_true(cuda_unified(rt, why, sizeof why));
    assert_non_null(strstr(why, "HostPageTables"));
    unsetenv("FAKECUDA_HOST_PT");
    void *d, *h;
    cuda_stream s;
    assert_int_equal(cuda_malloc(rt, &d, 8192, err), 0);
    assert_int_equal(cuda_host_alloc(rt, &h, 8192, err), 0);
    assert_int_equal((uintptr_t)h % 4096, 0);
    assert_int_equal(cuda_stream_new(rt, &s, err), 0);
    memset(h, 0x5a, 8192);
    assert_int_equal(cuda_copy_async(rt, d, h, 8192, CUDA_H2D, s, err), 0);
    memset(h, 0, 8192);
    assert_int_equal(cuda_copy_async(rt, h, d, 8192, CUDA_D2H, s, err), 0);
    assert_int_equal(cuda_stream_sync(rt, s, err), 0);
    assert_int_equal(((unsigned char *)h)[8191], 0x5a);
    /* a copy in the wrong direction is the runtime's error, with its words */
    assert_int_equal(cuda_copy_async(rt, d, h, 8192, CUDA_D2H, s, err), -1);
    assert_string_equal(err, "cudaMemcpyAsync: invalid argument (CUDA error 1)");
    /* more device memory than there is */
    void *big;
    setenv("FAKECUDA_MEM_MB", "1", 1);
    assert_int_equal(cuda_malloc(rt, &big, 4 << 20, err), -1);
    assert_null(big);
    assert_string_equal(err, "cudaMalloc(4 MiB): out of memory (CUDA error 2)");
    unsetenv("FAKECUDA_MEM_MB");
    cuda_stream_free(rt, s);
    cuda_free(rt, d);
    cuda_host_free(rt, h);
    cuda_close(rt);
    unsetenv("KVBENCH_CUDART");
}

static void test_cufile(void **state)
{
    (void)state;
    struct cufile *cf;
    char reason[ERR_LEN], err[ERR_LEN];
    setenv("KVBENCH_CUFILE", "/nonexistent/libcufile.so", 1);
    assert_int_equal(cufile_open(&cf, reason), -1);
    assert_non_null(strstr(reason, "no cuFile: KVBENCH_CUFILE=/nonexistent/libcufile.so"));
    setenv("KVBENCH_CUFILE", fake("FAKE_CUFILE"), 1);
    setenv("FAKECUFILE_OPEN_ERR", "5030", 1);
    assert_int_equal(cufile_open(&cf, reason), -1);
    assert_non_null(strstr(reason, "no cuFile: cuFileDriverOpen failed (cuFile error 5030 "
                                   "INTERNAL_ERROR"));
    unsetenv("FAKECUFILE_OPEN_ERR");
    char *dir = test_tmpdir();
    setenv("KVBENCH_NVFS_DEV_DIR", dir, 1);
    /* no nvidia-fs: compatibility mode asked for from the start, so that registering a file
     * does not fail on GDS's filesystem checks */
    unsetenv("CUFILE_FORCE_COMPAT_MODE");
    setenv("FAKECUFILE_GDS_CHECKS_FAIL", "1", 1);
    assert_int_equal(cufile_open(&cf, reason), 0);
    assert_string_equal(cufile_mode(cf), "compat");
    assert_non_null(strstr(cufile_mode_reason(cf), "no /dev/nvidia-fs*"));
    assert_non_null(strstr(cufile_mode_reason(cf), "CUFILE_FORCE_COMPAT_MODE=true set for it"));
    assert_string_equal(getenv("CUFILE_FORCE_COMPAT_MODE"), "true");
    {
        char p0[600];
        snprintf(p0, sizeof p0, "%s/f0", dir);
        int fd0 = open(p0, O_CREAT | O_RDWR, 0600);
        void *h0;
        assert_int_equal(cufile_handle_register(cf, fd0, &h0, err), 0);
        cufile_handle_deregister(cf, h0);
        /* a machine whose cuFile refuses the file all the same: the reason names the code, the
         * log that says why, and udev's database when it cannot be read here */
        setenv("FAKECUFILE_GDS_CHECKS_FAIL", "always", 1);
        setenv("KVBENCH_UDEV_DIR", dir, 1); /* no data/ under it */
        assert_int_equal(cufile_handle_register(cf, fd0, &h0, err), -1);
        assert_null(h0);
        assert_non_null(strstr(err, "cuFile error 5027 HANDLE_NOT_REGISTERED"));
        assert_non_null(strstr(err, "cufile.log"));
        assert_non_null(strstr(err, "/run/udev/data) cannot be read here"));
        char udev[600];
        snprintf(udev, sizeof udev, "%s/data", dir);
        assert_int_equal(mkdir(udev, 0700), 0);
        assert_int_equal(cufile_handle_register(cf, fd0, &h0, err), -1);
        assert_non_null(strstr(err, "cuFile error 5027 HANDLE_NOT_REGISTERED"));
        assert_null(strstr(err, "udev"));
        rmdir(udev);
        unsetenv("KVBENCH_UDEV_DIR");
        close(fd0);
    }
    cufile_close(cf);
    unsetenv("FAKECUFILE_GDS_CHECKS_FAIL");
    unsetenv("CUFILE_FORCE_COMPAT_MODE");
    /* the device node is there but the driver reports no nvidia-fs version: still compat */
    char path[600];
    snprintf(path, sizeof path, "%s/nvidia-fs0", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    assert_int_equal(cufile_open(&cf, reason), 0);
    assert_string_equal(cufile_mode(cf), "compat");
    assert_non_null(strstr(cufile_mode_reason(cf), "reports no nvidia-fs driver"));
    /* a round trip through a file, with device memory of the stand-in runtime */
    struct cuda_rt *rt;
    setenv("KVBENCH_CUDART", fake("FAKE_CUDART"), 1);
    assert_int_equal(cuda_open(0, &rt, reason), 0);
    void *d, *h;
    assert_int_equal(cuda_malloc(rt, &d, 8192, err), 0);
    assert_int_equal(cuda_host_alloc(rt, &h, 8192, err), 0);
    memset(h, 0x33, 8192);
    assert_int_equal(cuda_copy_async(rt, d, h, 8192, CUDA_H2D, NULL, err), 0);
    snprintf(path, sizeof path, "%s/blk", dir);
    int fd = open(path, O_CREAT | O_RDWR, 0600);
    assert_true(fd >= 0);
    void *fh;
    assert_int_equal(cufile_handle_register(cf, fd, &fh, err), 0);
    assert_int_equal(cufile_buf_register(cf, d, 8192, err), 0);
    assert_int_equal(cufile_write(cf, fh, d, 4096, 4096, 4096, err), 4096);
    assert_int_equal(cufile_read(cf, fh, d, 4096, 4096, 0, err), 4096);
    assert_int_equal(cufile_read(cf, fh, d, 4096, 1 << 20, 0, err), 0); /* past the end */
    cufile_buf_deregister(cf, d);
    cufile_handle_deregister(cf, fh);
    void *bad;
    assert_int_equal(cufile_handle_register(cf, -1, &bad, err), -1);
    assert_non_null(strstr(err, "cuFileHandleRegister failed"));
    close(fd);
    cufile_close(cf);
    cuda_free(rt, d);
    cuda_host_free(rt, h);
    cuda_close(rt);
    unsetenv("KVBENCH_CUDART");
    unsetenv("KVBENCH_CUFILE");
    unsetenv("KVBENCH_NVFS_DEV_DIR");
    test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_runtime),
        cmocka_unit_test(test_no_device),
        cmocka_unit_test(test_copies),
        cmocka_unit_test(test_cufile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
