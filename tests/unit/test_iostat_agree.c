/*
 * kvbench's `iostat -x` quantities against sysstat's iostat (the Debian package, installed by
 * scripts/install-deps.sh for this test), on the same device over the same seconds, under an
 * O_DIRECT write workload the test generates itself (dd oflag=direct). Averages over five
 * one-second intervals must agree within 5%.
 */
#include "test_common.h"

#include "probe/blockdev.h"
#include "probe/diskstats.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/proc.h"

#include <math.h>
#include <signal.h>

#define INTERVALS 5

struct cols {
    int w_s, wkb_s, wareq, w_await, aqu, util;
};

/* Averages of iostat's columns for dev over its reports. Returns the number of reports. */
static int parse_iostat(const char *text, const char *dev, double avg[6])
{
    struct cols c = {-1, -1, -1, -1, -1, -1};
    int reports = 0;
    double sum[6] = {0};
    const char *line = text;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[1024];
        if (len >= sizeof buf)
            len = sizeof buf - 1;
        memcpy(buf, line, len);
        buf[len] = '\0';
        char *tok[64];
        int n = 0;
        char *save;
        for (char *t = strtok_r(buf, " \t", &save); t && n < 64; t = strtok_r(NULL, " \t", &save))
            tok[n++] = t;
        if (n > 0 && strcmp(tok[0], "Device") == 0) {
            for (int i = 0; i < n; i++) {
                if (strcmp(tok[i], "w/s") == 0)
                    c.w_s = i;
                else if (strcmp(tok[i], "wkB/s") == 0)
                    c.wkb_s = i;
                else if (strcmp(tok[i], "wareq-sz") == 0)
                    c.wareq = i;
                else if (strcmp(tok[i], "w_await") == 0)
                    c.w_await = i;
                else if (strcmp(tok[i], "aqu-sz") == 0)
                    c.aqu = i;
                else if (strcmp(tok[i], "%util") == 0)
                    c.util = i;
            }
        } else if (n > 0 && strcmp(tok[0], dev) == 0 && c.util > 0) {
            int idx[6] = {c.w_s, c.wkb_s, c.wareq, c.w_await, c.aqu, c.util};
            for (int k = 0; k < 6; k++)
                sum[k] += idx[k] > 0 && idx[k] < n ? atof(tok[idx[k]]) : NAN;
            reports++;
        }
        line = end ? end + 1 : NULL;
    }
    for (int k = 0; k < 6; k++)
        avg[k] = reports ? sum[k] / reports : NAN;
    return reports;
}

static void test_agrees_with_sysstat(void **state)
{
    (void)state;
    char cwd[1024], err[ERR_LEN], dev[BLOCKDEV_NAME_LEN];
    if (!getcwd(cwd, sizeof cwd))
        fail_msg("getcwd");
    const char *how;
    if (blockdev_resolve("/sys", "auto", cwd, dev, &how, err) < 0 || strcmp(how, "mount") != 0) {
        print_message("%s is on no block device of its own (%s); nothing to compare\n", cwd, err);
        skip();
    }
    struct proc_result probe;
    char *v[] = {"iostat", "-V", NULL};
    if (proc_run(v, NULL, 10, 4096, PROC_MERGE_STDERR, &probe, err) < 0)
        fail_msg("sysstat's iostat is needed for this test (scripts/install-deps.sh installs "
                 "it): %s",
                 err);
    proc_result_free(&probe);

    char file[1200], log[1200], ofarg[1300];
    snprintf(file, sizeof file, "%s/iostat-agree-%d.bin", cwd, (int)getpid());
    snprintf(log, sizeof log, "%s/iostat-agree-%d.log", cwd, (int)getpid());
    snprintf(ofarg, sizeof ofarg, "of=%s", file);
    /* the workload: sequential 256 KiB O_DIRECT writes, steady for the whole measurement */
    char *dd[] = {"dd", "if=/dev/zero", ofarg, "bs=256k", "count=40000", "oflag=direct", NULL};
    struct proc_child ddc;
    assert_int_equal(proc_spawn(dd, NULL, NULL, &ddc, err), 0);
    clock_sleep_ns(1000000000, NULL);

    char *io[] = {"iostat", "-x", "-d", "-k", "-y", dev, "1", "5", NULL};
    struct proc_child ioc;
    assert_int_equal(proc_spawn(io, log, NULL, &ioc, err), 0);
    struct blockdev_stat prev, cur;
    uint64_t tprev = clock_now_ns();
    assert_int_equal(diskstats_read("/proc/diskstats", dev, &prev, err), 0);
    double ours[6] = {0};
    for (int i = 0; i < INTERVALS; i++) {
        clock_sleep_ns(tprev + 1000000000ull - clock_now_ns(), NULL);
        uint64_t t = clock_now_ns();
        assert_int_equal(diskstats_read("/proc/diskstats", dev, &cur, err), 0);
        struct iostat_x x;
        diskstats_compute(&prev, &cur, (double)(t - tprev) / 1e9, &x);
        double vals[6] = {x.w_s, x.wmb_s * 1024.0, x.wareq_sz, x.w_await, x.aqu_sz, x.util};
        for (int k = 0; k < 6; k++)
            ours[k] += vals[k] / INTERVALS;
        prev = cur;
        tprev = t;
    }
    for (int i = 0; i < 50 && proc_alive(&ioc); i++)
        clock_sleep_ns(100000000, NULL);
    proc_stop(&ioc, SIGTERM, 2);
    proc_stop(&ddc, SIGTERM, 5);
    unlink(file);
    struct buf out = BUF_INIT;
    fs_read_file(log, &out, 1 << 20, err);
    unlink(log);
    double ref[6];
    int reports = parse_iostat(buf_cstr(&out), dev, ref);
    print_message("iostat output:\n%s\n", buf_cstr(&out));
    buf_free(&out);
    assert_int_equal(reports, INTERVALS);
    static const char *const NAMES[6] = {"w/s", "wkB/s", "wareq-sz", "w_await", "aqu-sz", "%util"};
    int bad = 0;
    for (int k = 0; k < 6; k++) {
        double diff = fabs(ours[k] - ref[k]);
        double rel = ref[k] != 0 ? diff / fabs(ref[k]) : diff;
        print_message("%-9s kvbench %10.3f   iostat %10.3f   diff %5.2f%%\n", NAMES[k], ours[k],
                      ref[k], rel * 100);
        /* %util and aqu-sz near zero: compare absolutely (iostat prints two decimals) */
        bool ok = rel <= 0.05 || diff <= 0.02;
        bad += !ok;
    }
    assert_true(ours[0] > 10); /* the workload really wrote */
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agrees_with_sysstat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
