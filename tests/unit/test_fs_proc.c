/* Unit tests for util/fs and util/proc. */
#include "test_common.h"

#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/proc.h"

#include <signal.h>
#include <sys/stat.h>

static void test_mkdir_p_and_new(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[512], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/a/b/c", dir);
    assert_int_equal(fs_mkdir_p(path, err), 0);
    assert_true(fs_is_dir(path));
    assert_int_equal(fs_mkdir_p(path, err), 0); /* idempotent */
    snprintf(path, sizeof path, "%s/results/run1", dir);
    assert_int_equal(fs_mkdir_new(path, err), 0);
    assert_int_equal(fs_mkdir_new(path, err), FS_EEXIST);
    assert_non_null(strstr(err, "refusing to overwrite"));
    /* a file in the way */
    snprintf(path, sizeof path, "%s/file", dir);
    assert_int_equal(fs_write_atomic(path, "x", 1, err), 0);
    assert_int_equal(fs_mkdir_p(path, err), -1);
    assert_true(fs_remove_tree(dir, err) == 0);
    assert_false(fs_exists(dir));
    free(dir);
}

static void test_write_atomic_replaces(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[512], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/f.txt", dir);
    assert_int_equal(fs_write_atomic(path, "one", 3, err), 0);
    assert_int_equal(fs_write_atomic(path, "second", 6, err), 0);
    struct buf b = BUF_INIT;
    assert_int_equal(fs_read_file(path, &b, 100, err), 0);
    assert_string_equal(b.data, "second");
    buf_reset(&b);
    assert_int_equal(fs_read_file(path, &b, 3, err), -1); /* larger than the cap */
    buf_free(&b);
    snprintf(path, sizeof path, "%s/missing/f.txt", dir);
    assert_int_equal(fs_write_atomic(path, "x", 1, err), -1);
    assert_non_null(strstr(err, "missing"));
    fs_remove_tree(dir, NULL);
    free(dir);
}

static void test_proc_captures_and_status(void **state)
{
    (void)state;
    struct proc_result r;
    char err[ERR_LEN];
    char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    assert_int_equal(proc_run(argv, NULL, 10, 1024, 0, &r, err), 0);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 3);
    assert_string_equal(buf_cstr(&r.out), "out\n");
    assert_string_equal(buf_cstr(&r.err_out), "err\n");
    proc_result_free(&r);

    assert_int_equal(proc_run(argv, NULL, 10, 1024, PROC_MERGE_STDERR, &r, err), 0);
    assert_non_null(strstr(buf_cstr(&r.out), "out"));
    assert_non_null(strstr(buf_cstr(&r.out), "err"));
    proc_result_free(&r);
}

static void test_proc_stdin_and_cap(void **state)
{
    (void)state;
    struct proc_result r;
    char err[ERR_LEN];
    char *argv[] = {"cat", NULL};
    assert_int_equal(proc_run(argv, "hello stdin", 10, 5, 0, &r, err), 0);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(buf_cstr(&r.out), "hello"); /* capped at 5 bytes */
    proc_result_free(&r);
}

static void test_proc_timeout_kills_group(void **state)
{
    (void)state;
    struct proc_result r;
    char err[ERR_LEN];
    uint64_t t0 = clock_now_ns();
    /* The grandchild sleep holds stdout open; the group kill must reach it. */
    assert_int_equal(proc_run_shell("sleep 30 & sleep 30; echo never", 0.3, 1024, 0, &r, err), 0);
    uint64_t elapsed = clock_now_ns() - t0;
    assert_true(r.timed_out);
    assert_true(r.signaled);
    assert_true(elapsed < 10ull * 1000000000ull);
    assert_null(strstr(buf_cstr(&r.out), "never"));
    proc_result_free(&r);
}

static void test_proc_exec_failure(void **state)
{
    (void)state;
    struct proc_result r;
    char err[ERR_LEN];
    char *argv[] = {"/no/such/program", NULL};
    assert_int_equal(proc_run(argv, NULL, 5, 1024, 0, &r, err), -1);
    assert_non_null(strstr(err, "cannot execute /no/such/program"));
    struct proc_child c;
    assert_int_equal(proc_spawn(argv, NULL, NULL, &c, err), -1);
}

static void test_proc_spawn_stop(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char log[512], err[ERR_LEN];
    snprintf(log, sizeof log, "%s/child.log", dir);
    char *argv[] = {"sh", "-c",
                    "echo started $KVB_TEST_VAR; trap 'echo bye; exit 7' TERM; "
                    "while :; do sleep 0.05; done",
                    NULL};
    char *env[] = {"KVB_TEST_VAR=yes", NULL};
    struct proc_child c;
    assert_int_equal(proc_spawn(argv, log, env, &c, err), 0);
    clock_sleep_ns(300000000, NULL);
    assert_true(proc_alive(&c));
    int code = proc_stop(&c, SIGTERM, 5);
    assert_int_equal(code, 7);
    assert_false(proc_alive(&c));
    struct buf b = BUF_INIT;
    assert_int_equal(fs_read_file(log, &b, 4096, err), 0);
    assert_non_null(strstr(b.data, "started yes"));
    assert_non_null(strstr(b.data, "bye"));
    buf_free(&b);
    fs_remove_tree(dir, NULL);
    free(dir);
}

static void test_proc_stop_escalates(void **state)
{
    (void)state;
    char err[ERR_LEN];
    char *argv[] = {"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done", NULL};
    struct proc_child c;
    assert_int_equal(proc_spawn(argv, NULL, NULL, &c, err), 0);
    clock_sleep_ns(100000000, NULL);
    int code = proc_stop(&c, SIGTERM, 0.3);
    assert_int_equal(code, 128 + SIGKILL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mkdir_p_and_new),
        cmocka_unit_test(test_write_atomic_replaces),
        cmocka_unit_test(test_proc_captures_and_status),
        cmocka_unit_test(test_proc_stdin_and_cap),
        cmocka_unit_test(test_proc_timeout_kills_group),
        cmocka_unit_test(test_proc_exec_failure),
        cmocka_unit_test(test_proc_spawn_stop),
        cmocka_unit_test(test_proc_stop_escalates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
