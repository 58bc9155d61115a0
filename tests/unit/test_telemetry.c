/*
 * Unit tests for the telemetry parsers and collectors: /proc/diskstats and the iostat formulas
 * (with counter wrap and reset), /proc/<pid>/stat and io, nvidia-smi CSV, cache-directory
 * snapshots and churn, block-device resolution through a fake sysfs tree, and live reads of this
 * machine's /proc and /sys. Plus the sampler end to end for a second.
 */
#include "test_common.h"

#include "probe/blockdev.h"
#include "probe/cachedir.h"
#include "probe/diskstats.h"
#include "probe/gpu.h"
#include "probe/procstat.h"
#include "probe/telemetry.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"

#include <math.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static void fixture_text(const char *rel, struct buf *b)
{
    char path[512], err[ERR_LEN];
    assert_int_equal(fs_read_file(test_fixture(rel, path, sizeof path), b, 1 << 20, err), 0);
}

static void test_diskstats_formulas(void **state)
{
    (void)state;
    struct buf a = BUF_INIT, b = BUF_INIT;
    fixture_text("proc/diskstats_a.txt", &a);
    fixture_text("proc/diskstats_b.txt", &b);
    struct blockdev_stat sa, sb;
    assert_int_equal(diskstats_parse(a.data, "nvme0n1", &sa), 0);
    assert_int_equal(diskstats_parse(b.data, "nvme0n1", &sb), 0);
    struct iostat_x x;
    diskstats_compute(&sa, &sb, 2.0, &x);
    assert_true(x.r_s == 50);                                 /* 100 reads / 2 s */
    assert_true(x.w_s == 500);                                /* 1000 writes / 2 s */
    assert_true(fabs(x.rmb_s - 20480.0 / 2048 / 2) < 1e-9);   /* 5 MB/s */
    assert_true(fabs(x.wmb_s - 2048000.0 / 2048 / 2) < 1e-9); /* 500 MB/s */
    assert_true(x.rareq_sz == 102.4);                         /* 20480 sectors / 2 / 100 */
    assert_true(x.wareq_sz == 1024);                          /* 2048000 / 2 / 1000 */
    assert_true(x.r_await == 2);                              /* 200 ms / 100 */
    assert_true(x.w_await == 1.5);                            /* 1500 ms / 1000 */
    assert_true(x.aqu_sz == 1.25);                            /* 2500 ms / 2000 ms */
    assert_true(x.util == 50);                                /* 1000 ms / 2000 ms */
    /* the 17-field line of a recent kernel parses too */
    assert_int_equal(diskstats_parse(a.data, "vda", &sa), 0);
    assert_true(sa.read_ios == 5733 && sa.time_in_queue == 10370);
    assert_int_equal(diskstats_parse(a.data, "sdz", &sa), -1);
    /* a 32-bit read counter wrapped between the readings */
    assert_int_equal(diskstats_parse(a.data, "nvme0n1p1", &sa), 0);
    assert_int_equal(diskstats_parse(b.data, "nvme0n1p1", &sb), 0);
    assert_int_equal(diskstats_delta(sa.read_ios, sb.read_ios), 146);
    /* a 64-bit counter going backwards is a reset: 0, never negative or huge */
    assert_int_equal(diskstats_delta(5000000000ull, 10), 0);
    /* util is capped */
    struct blockdev_stat z = {0}, y = {0};
    y.io_ticks = 5000;
    diskstats_compute(&z, &y, 1.0, &x);
    assert_true(x.util == 100);
    diskstats_compute(&z, &y, 0, &x);
    assert_true(x.util == 0);
    buf_free(&a);
    buf_free(&b);
}

static void test_diskstats_live(void **state)
{
    (void)state;
    /* every device listed in /proc/diskstats can be read by name */
    struct buf b = BUF_INIT;
    char err[ERR_LEN];
    assert_int_equal(fs_read_file("/proc/diskstats", &b, 1 << 22, err), 0);
    char name[128];
    unsigned maj, min;
    assert_int_equal(sscanf(b.data, "%u %u %127s", &maj, &min, name), 3);
    struct blockdev_stat st;
    assert_int_equal(diskstats_read("/proc/diskstats", name, &st, err), 0);
    assert_int_equal(diskstats_read("/proc/diskstats", "no-such-dev", &st, err), -1);
    assert_non_null(strstr(err, "no-such-dev"));
    assert_int_equal(diskstats_read("/nonexistent/diskstats", name, &st, err), -1);
    buf_free(&b);
}

static void test_procstat_parsers(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    fixture_text("proc/pid_stat_spaces.txt", &b);
    char comm[64];
    uint64_t ut, st, start, rss;
    assert_int_equal(procstat_parse_stat(b.data, comm, &ut, &st, &start, &rss), 0);
    assert_string_equal(comm, "my (weird) proc");
    assert_int_equal(ut, 150);
    assert_int_equal(st, 37);
    assert_int_equal(start, 987654);
    assert_int_equal(rss, 2048);
    buf_reset(&b);
    fixture_text("proc/pid_io.txt", &b);
    uint64_t rb, wb;
    assert_int_equal(procstat_parse_io(b.data, &rb, &wb), 0);
    assert_int_equal(rb, 40960);
    assert_int_equal(wb, 1048576);
    assert_int_equal(procstat_parse_io("garbage", &rb, &wb), -1);
    assert_int_equal(procstat_parse_stat("123 no-parens", comm, &ut, &st, &start, &rss), -1);
    assert_int_equal(procstat_parse_stat("1 (x) S 1 2", comm, &ut, &st, &start, &rss), -1);
    buf_free(&b);
}

static void test_procstat_live_self(void **state)
{
    (void)state;
    if (getenv("KVBENCH_EMULATOR")) {
        /* qemu-user answers /proc/self/stat itself, with CPU times of 0 */
        skip();
    }
    char spec[32];
    snprintf(spec, sizeof spec, "%d", (int)getpid());
    struct procstat *p = procstat_new(spec, "/proc");
    struct proc_row *rows;
    assert_int_equal(procstat_sample(p, 0, &rows), 0); /* the first sample is the baseline */
    free(rows);
    /* burn some CPU and write some bytes */
    volatile double x = 0;
    uint64_t t0 = clock_now_ns();
    while (clock_now_ns() - t0 < 200000000ull)
        x += 1.0;
    char *dir = test_tmpdir();
    char path[512], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/blob", dir);
    static char blob[1 << 20];
    assert_int_equal(fs_write_atomic(path, blob, sizeof blob, err), 0);
    assert_int_equal(procstat_sample(p, 0.3, &rows), 1);
    assert_int_equal(rows[0].pid, getpid());
    assert_true(rows[0].usr_pct + rows[0].sys_pct > 10); /* ~66% of a core for 0.3 s */
    assert_true(rows[0].rss_kb > 0);
    if (rows[0].kb_wr_s >= 0)
        assert_true(rows[0].kb_wr_s > 0); /* fsync'd 1 MiB */
    free(rows);
    procstat_free(p);
    /* a pattern matching nothing, and a PID that does not exist: no rows, no failure */
    p = procstat_new("no-such-process-name-xyz", "/proc");
    assert_int_equal(procstat_sample(p, 0, &rows), 0);
    free(rows);
    assert_int_equal(procstat_sample(p, 1, &rows), 0);
    free(rows);
    procstat_free(p);
    p = procstat_new("999999999", "/proc");
    assert_int_equal(procstat_sample(p, 1, &rows), 0);
    free(rows);
    procstat_free(p);
    p = procstat_new("ALL", "/nonexistent-proc");
    assert_int_equal(procstat_sample(p, 1, &rows), -1);
    procstat_free(p);
    fs_remove_tree(dir, NULL);
    free(dir);
}

static void test_procstat_children_come_and_go(void **state)
{
    (void)state;
    /* a pattern tracks processes that start and exit between samples */
    struct procstat *p = procstat_new("kvbench_probe_child", "/proc");
    struct proc_row *rows;
    procstat_sample(p, 0, &rows);
    free(rows);
    FILE *c = popen("exec sh -c ': kvbench_probe_child; i=0; while [ $i -lt 300000 ]; do "
                    "i=$((i+1)); done'",
                    "r");
    assert_non_null(c);
    clock_sleep_ns(100000000, NULL);
    procstat_sample(p, 0.1, &rows); /* the child's baseline */
    free(rows);
    clock_sleep_ns(200000000, NULL);
    int n = procstat_sample(p, 0.2, &rows);
    bool found = false;
    for (int i = 0; i < n; i++)
        found |= rows[i].usr_pct + rows[i].sys_pct > 0;
    free(rows);
    pclose(c);
    assert_true(found);
    n = procstat_sample(p, 0.1, &rows); /* exited: gone */
    free(rows);
    assert_int_equal(n, 0);
    procstat_free(p);
}

static void test_smi_csv(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    fixture_text("proc/nvidia_smi.csv", &b);
    struct gpu_row rows[4];
    assert_int_equal(gpu_parse_smi_csv(b.data, rows, 4), 2);
    assert_string_equal(rows[0].name, "NVIDIA H100 80GB HBM3");
    assert_true(rows[0].util_pct == 87 && rows[0].mem_total_mib == 81559);
    assert_true(fabs(rows[0].power_w - 512.34) < 1e-9);
    assert_int_equal(rows[1].index, 1);
    assert_true(isnan(rows[1].mem_used_mib)); /* [N/A] */
    assert_true(rows[1].sm_clock_mhz == 2405);
    assert_int_equal(gpu_parse_smi_csv("garbage\n1,2\n", rows, 4), 0);
    buf_free(&b);
}

static void write_file(const char *dir, const char *name, size_t size)
{
    char path[1024], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *data = calloc(1, size ? size : 1);
    assert_int_equal(fs_write_atomic(path, data, size, err), 0);
    free(data);
}

static void test_cachedir_churn(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char sub[600], err[ERR_LEN];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    fs_mkdir_p(sub, err);
    write_file(dir, "keep", 100);
    write_file(dir, "grow", 100);
    write_file(dir, "shrink", 300);
    write_file(dir, "gone", 50);
    struct cache_snap a, b;
    assert_int_equal(cachedir_snapshot(dir, "before", &a), 0);
    assert_true(a.ok);
    assert_int_equal(a.n, 4);
    assert_int_equal(a.total_bytes, 550);
    write_file(dir, "grow", 400);
    write_file(dir, "shrink", 100);
    char path[700];
    snprintf(path, sizeof path, "%s/gone", dir);
    unlink(path);
    write_file(dir, "sub/new1", 1000);
    write_file(dir, "new2", 10);
    assert_int_equal(cachedir_snapshot(dir, "after", &b), 0);
    json_t *c = cachedir_churn(&a, &b);
    assert_int_equal(json_get_int(c, "files_created", -1), 2);
    assert_int_equal(json_get_int(c, "files_deleted", -1), 1);
    assert_int_equal(json_get_int(c, "files_grown", -1), 1);
    assert_int_equal(json_get_int(c, "files_shrunk", -1), 1);
    assert_int_equal(json_get_int(c, "bytes_added", -1), 1010 + 300);
    assert_int_equal(json_get_int(c, "bytes_removed", -1), 50 + 200);
    assert_int_equal(json_get_int(c, "files_after", -1), 5);
    json_decref(c);
    snprintf(path, sizeof path, "%s/list.txt", dir);
    assert_int_equal(cachedir_write(&b, dir, path, err), 0);
    struct buf t = BUF_INIT;
    fs_read_file(path, &t, 1 << 20, err);
    assert_non_null(strstr(t.data, "# files: 5\n"));
    assert_non_null(strstr(t.data, " 1000 sub/new1\n"));
    buf_free(&t);
    cachedir_free(&a);
    cachedir_free(&b);
    /* a missing directory is recorded, not fatal, and its churn is unavailable */
    assert_int_equal(cachedir_snapshot("/nonexistent/kvbm", "x", &a), 0);
    assert_false(a.ok);
    assert_non_null(strstr(a.error, "/nonexistent/kvbm"));
    c = cachedir_churn(&a, &a);
    assert_false(json_get_bool(c, "available", true));
    json_decref(c);
    cachedir_free(&a);
    fs_remove_tree(dir, NULL);
    free(dir);
}

static void test_blockdev_fake_sysfs(void **state)
{
    (void)state;
    /* /sys/dev/block/M:m -> ../../devices/.../block/nvme9n1/nvme9n1p2 (a partition) */
    char *root = test_tmpdir();
    char p[1024], err[ERR_LEN];
    struct stat sb;
    assert_int_equal(stat(root, &sb), 0);
    unsigned maj = major(sb.st_dev), min = minor(sb.st_dev);
    snprintf(p, sizeof p, "%s/devices/pci0/block/nvme9n1/nvme9n1p2", root);
    fs_mkdir_p(p, err);
    snprintf(p, sizeof p, "%s/devices/pci0/block/nvme9n1/nvme9n1p2/partition", root);
    assert_int_equal(fs_write_atomic(p, "2\n", 2, err), 0);
    snprintf(p, sizeof p, "%s/devices/pci0/block/nvme9n1/stat", root);
    const char *stat_text = "    10 0 800 5 20 0 1600 7 0 9 12 0 0 0 0\n";
    assert_int_equal(fs_write_atomic(p, stat_text, strlen(stat_text), err), 0);
    snprintf(p, sizeof p, "%s/dev/block", root);
    fs_mkdir_p(p, err);
    char link[1100];
    snprintf(link, sizeof link, "%s/dev/block/%u:%u", root, maj, min);
    char target[1100];
    snprintf(target, sizeof target, "%s/devices/pci0/block/nvme9n1/nvme9n1p2", root);
    assert_int_equal(symlink(target, link), 0);
    snprintf(p, sizeof p, "%s/class/block", root);
    fs_mkdir_p(p, err);
    snprintf(link, sizeof link, "%s/class/block/nvme9n1", root);
    snprintf(target, sizeof target, "%s/devices/pci0/block/nvme9n1", root);
    assert_int_equal(symlink(target, link), 0);
    snprintf(p, sizeof p, "%s/block", root);
    fs_mkdir_p(p, err);
    char name[BLOCKDEV_NAME_LEN];
    const char *how;
    assert_int_equal(blockdev_resolve(root, "auto", root, name, &how, err), 0);
    assert_string_equal(name, "nvme9n1"); /* the whole disk, not the partition */
    assert_string_equal(how, "mount");
    struct blockdev_stat st;
    assert_int_equal(blockdev_read(root, "nvme9n1", &st, err), 0);
    assert_int_equal(st.read_sectors, 800);
    assert_int_equal(st.time_in_queue, 12);
    assert_int_equal(blockdev_resolve(root, "nvme9n1", NULL, name, &how, err), 0);
    assert_string_equal(how, "named");
    assert_int_equal(blockdev_resolve(root, "sdq", NULL, name, &how, err), -1);
    assert_non_null(strstr(err, "'sdq' does not exist"));
    assert_int_equal(blockdev_resolve(root, "../etc", NULL, name, &how, err), -1);
    json_t *d = blockdev_delta_json(&st, &st);
    assert_int_equal(json_get_int(d, "read_bytes_delta", -1), 0);
    json_decref(d);
    struct blockdev_stat later = st;
    later.read_sectors += 2048;
    later.write_ios -= 1; /* went backwards: 0, never negative */
    d = blockdev_delta_json(&st, &later);
    assert_true(json_get_num(d, "read_mib_delta", -1) == 1.0);
    assert_int_equal(json_get_int(d, "write_ios_delta", -1), 0);
    json_decref(d);
    fs_remove_tree(root, NULL);
    free(root);
}

static void test_blockdev_live(void **state)
{
    (void)state;
    char name[BLOCKDEV_NAME_LEN], err[ERR_LEN];
    const char *how;
    if (blockdev_resolve("/sys", "auto", "/tmp", name, &how, err) < 0) {
        print_message("no block device on this machine: %s\n", err);
        skip();
    }
    struct blockdev_stat st;
    assert_int_equal(blockdev_read("/sys", name, &st, err), 0);
}

/* A fake /proc/diskstats holding one device, "fakedisk", with this many sectors read. */
static void fake_diskstats(const char *procfs, unsigned long long read_sectors)
{
    char path[600], tmp[620];
    snprintf(path, sizeof path, "%s/diskstats", procfs);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f, " 252 0 fakedisk %llu 0 %llu 10 0 0 0 0 0 10 10\n", read_sectors / 8, read_sectors);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* A phase far shorter than the interval still gets its own row: the label change closes the
 * interval, so the reads it did are its own and not the next phase's. */
static void test_label_change_closes_the_interval(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char out[600], procfs[600], err[ERR_LEN];
    snprintf(out, sizeof out, "%s/telemetry", dir);
    snprintf(procfs, sizeof procfs, "%s/proc", dir);
    assert_int_equal(fs_mkdir_p(procfs, err), 0);
    fake_diskstats(procfs, 0);
    struct telemetry_config tc = {.out_dir = out,
                                  .interval_s = 30, /* one tick at start, none after */
                                  .device = "fakedisk",
                                  .pid_spec = "kvbench-no-such-process",
                                  .cache_dir = dir,
                                  .container = "",
                                  .procfs = procfs,
                                  .container_timeout_s = 5};
    setenv("KVBENCH_GPU_SOURCE", "none", 1);
    struct telemetry *t = telemetry_start(&tc, err);
    assert_non_null(t);
    clock_sleep_ns(100000000, NULL); /* the sampler's first tick reads the baseline */
    telemetry_set_label(t, "short");
    fake_diskstats(procfs, 2048 * 10); /* 10 MB read during "short" */
    clock_sleep_ns(50000000, NULL);
    telemetry_set_label(t, "between");
    clock_sleep_ns(50000000, NULL);
    telemetry_set_label(t, "next");
    telemetry_stop(t);
    json_t *st = telemetry_label_stats(t, "short");
    assert_int_equal(json_get_int(st, "samples", 0), 1);
    double mean = json_get_num(st, "mean_read_mb_s", 0);
    assert_true(mean > 10 && mean < 10 / 0.05); /* 10 MB over a little more than 50 ms */
    assert_true(json_get_num(st, "peak_read_mb_s", 0) == mean);
    json_decref(st);
    st = telemetry_label_stats(t, "between");
    assert_int_equal(json_get_int(st, "samples", 0), 1);
    assert_true(json_get_num(st, "mean_read_mb_s", -1) == 0);
    json_decref(st);
    st = telemetry_label_stats(t, "next"); /* stopped before any row of its own */
    assert_int_equal(json_get_int(st, "samples", -1), 0);
    json_decref(st);
    telemetry_free(t);
    unsetenv("KVBENCH_GPU_SOURCE");
    char path[800];
    snprintf(path, sizeof path, "%s/iostat_fakedisk.csv", out);
    struct buf b = BUF_INIT;
    assert_int_equal(fs_read_file(path, &b, 1 << 20, err), 0);
    const char *row = strstr(b.data, ",short,fakedisk,");
    assert_non_null(row);
    assert_null(strstr(row + 1, ",short,")); /* one row */
    buf_free(&b);
    fs_remove_tree(dir, NULL);
    free(dir);
}

static void test_sampler_end_to_end(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char out[600], cache[600], err[ERR_LEN];
    snprintf(out, sizeof out, "%s/telemetry", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    fs_mkdir_p(cache, err);
    char name[BLOCKDEV_NAME_LEN];
    const char *how;
    bool dev = blockdev_resolve("/sys", "auto", cache, name, &how, err) == 0;
    char self[32];
    snprintf(self, sizeof self, "%d", (int)getpid());
    struct telemetry_config tc = {.out_dir = out,
                                  .interval_s = 0.1,
                                  .device = dev ? name : NULL,
                                  .device_error = "none",
                                  .pid_spec = self,
                                  .metrics_url = "http://127.0.0.1:1/metrics",
                                  .metrics_timeout_s = 0.2,
                                  .cache_dir = cache,
                                  .container = "",
                                  .procfs = "/proc",
                                  .container_timeout_s = 5};
    setenv("KVBENCH_GPU_SOURCE", "none", 1);
    struct telemetry *t = telemetry_start(&tc, err);
    assert_non_null(t);
    telemetry_cache_snapshot(t, "before_x");
    telemetry_set_label(t, "x");
    write_file(cache, "kvbench-0000000000000001.kvblk", 4096);
    clock_sleep_ns(600000000, NULL);
    telemetry_cache_snapshot(t, "after_x");
    telemetry_stop(t);
    json_t *churn = telemetry_cache_churn(t, "before_x", "after_x");
    assert_int_equal(json_get_int(churn, "files_created", -1), 1);
    json_t *st = telemetry_label_stats(t, "x");
    if (dev)
        assert_true(json_get_int(st, "samples", 0) >= 3);
    json_decref(st);
    assert_int_equal(telemetry_write_reports(t, churn, err), 0);
    json_decref(churn);
    telemetry_free(t);
    unsetenv("KVBENCH_GPU_SOURCE");
    char path[800];
    snprintf(path, sizeof path, "%s/telemetry_report.json", out);
    json_t *rep = json_read_file(path, err);
    assert_non_null(rep);
    json_t *cols = json_object_get(rep, "collectors");
    size_t i;
    json_t *c;
    json_array_foreach(cols, i, c)
    {
        const char *n = json_get_str(c, "name", "");
        const char *s = json_get_str(c, "status", "");
        if (strcmp(n, "kvbm_metrics") == 0) {
            /* nothing listens on port 1: every scrape failed, recorded, not fatal */
            assert_string_equal(s, "started");
            assert_true(json_get_int(c, "errors", 0) > 0);
        }
        if (strcmp(n, "gpu") == 0)
            assert_string_equal(s, "skipped");
        if (strcmp(n, "container_logs") == 0)
            assert_string_equal(s, "skipped");
        if (strcmp(n, "processes") == 0)
            assert_true(json_get_int(c, "samples", 0) >= 3);
    }
    assert_true(json_get_num(json_object_get(rep, "sampler"), "cpu_s", -1) >= 0);
    json_decref(rep);
    snprintf(path, sizeof path, "%s/pidstat.csv", out);
    struct buf b = BUF_INIT;
    assert_int_equal(fs_read_file(path, &b, 1 << 20, err), 0);
    assert_non_null(strstr(b.data, ",x,"));
    buf_free(&b);
    fs_remove_tree(dir, NULL);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diskstats_formulas),
        cmocka_unit_test(test_diskstats_live),
        cmocka_unit_test(test_procstat_parsers),
        cmocka_unit_test(test_procstat_live_self),
        cmocka_unit_test(test_procstat_children_come_and_go),
        cmocka_unit_test(test_smi_csv),
        cmocka_unit_test(test_cachedir_churn),
        cmocka_unit_test(test_blockdev_fake_sysfs),
        cmocka_unit_test(test_blockdev_live),
        cmocka_unit_test(test_sampler_end_to_end),
        cmocka_unit_test(test_label_change_closes_the_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
