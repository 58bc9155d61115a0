/*
 * bench_telemetry - the sampler's own CPU cost, measured with CLOCK_THREAD_CPUTIME_ID in the
 * sampler thread, at a 1 s and a 100 ms interval, sampling the disk holding the current
 * directory, every process (--telemetry-pid ALL) and the GPU when there is one. Target: under
 * 1% of one core at 1 s. Prints figures; never fails on time.
 *   bench_telemetry [SECONDS_AT_1S] [SECONDS_AT_100MS]
 */
#include "probe/blockdev.h"
#include "probe/telemetry.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int measure(double interval, double seconds, const char *dev)
{
    char dir[] = "/tmp/kvbench-bench-telemetry-XXXXXX";
    if (!mkdtemp(dir))
        return -1;
    char out[256], err[ERR_LEN];
    snprintf(out, sizeof out, "%s/telemetry", dir);
    struct telemetry_config tc = {.out_dir = out,
                                  .interval_s = interval,
                                  .device = dev,
                                  .device_error = "none",
                                  .pid_spec = "ALL",
                                  .metrics_url = NULL,
                                  .cache_dir = dir,
                                  .container = "",
                                  .procfs = "/proc",
                                  .container_timeout_s = 5};
    struct telemetry *t = telemetry_start(&tc, err);
    if (!t) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    clock_sleep_ns((uint64_t)(seconds * 1e9), NULL);
    telemetry_stop(t);
    json_t *churn = json_object();
    telemetry_write_reports(t, churn, err);
    json_decref(churn);
    telemetry_free(t);
    char path[300];
    snprintf(path, sizeof path, "%s/telemetry_report.json", out);
    json_t *rep = json_read_file(path, err);
    json_t *s = json_object_get(rep, "sampler");
    int procs_rows = 0;
    snprintf(path, sizeof path, "%s/pidstat.csv", out);
    FILE *f = fopen(path, "r");
    for (int c; f && (c = fgetc(f)) != EOF;)
        procs_rows += c == '\n';
    if (f)
        fclose(f);
    printf("  interval %5.3f s: %4lld ticks in %.1f s, sampler CPU %.4f s = %.3f%% of one core "
           "(%d process rows)\n",
           interval, json_get_int(s, "ticks", 0), json_get_num(s, "wall_s", 0),
           json_get_num(s, "cpu_s", 0), json_get_num(s, "cpu_pct_of_one_core", 0), procs_rows - 1);
    json_decref(rep);
    fs_remove_tree(dir, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    double s1 = argc > 1 ? atof(argv[1]) : 10, s2 = argc > 2 ? atof(argv[2]) : 5;
    char dev[BLOCKDEV_NAME_LEN], err[ERR_LEN];
    const char *how;
    bool have = blockdev_resolve("/sys", "auto", ".", dev, &how, err) == 0;
    printf("telemetry sampler overhead (disk %s, every process, GPU if present, no metrics URL)\n",
           have ? dev : "none");
    if (measure(1.0, s1, have ? dev : NULL) < 0 || measure(0.1, s2, have ? dev : NULL) < 0)
        return 1;
    printf("  target: < 1%% of one core at a 1 s interval\n");
    return 0;
}
