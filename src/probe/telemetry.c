/*
 * telemetry.c - the sampler thread and the collectors' bookkeeping.
 *
 * The thread wakes on an absolute schedule (interval after interval from the start, so a slow
 * tick does not drift the series), samples each collector in turn, and appends and flushes one
 * CSV row per item. Every collector has a status record: whether it started, how many samples
 * and errors it had, and its last error. The thread measures its own CPU time
 * (CLOCK_THREAD_CPUTIME_ID) so every run reports the sampler's overhead.
 */
#include "probe/telemetry.h"

#include "probe/cachedir.h"
#include "probe/container.h"
#include "probe/diskstats.h"
#include "probe/gpu.h"
#include "probe/kvsnap.h"
#include "probe/procstat.h"
#include "probe/prom.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "net/http.h"
#include "util/json.h"
#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

struct collector {
    const char *name;
    const char *status; /* "started", "skipped", "failed" */
    char reason[256];
    char output[256];
    unsigned long samples, errors;
    char last_error[256];
};

enum { C_DISK, C_PROC, C_GPU, C_METRICS, C_CACHE, C_LOGS, C_CUFILE, C_NODES, N_COLLECTORS };

struct label_stats {
    char label[64];
    unsigned long samples;
    /* peaks over the rows of at least a fifth of the interval, and over every row (used when the
     * label has no long row) */
    double peak_r, peak_w, peak_util, any_peak_r, any_peak_w, any_peak_util;
    unsigned long long_samples;
    double mb_r, mb_w, secs; /* MB read and written over the seconds the label's samples span */
    /* GPU samples: memory used summed over the GPUs, utilisation the busiest GPU's */
    unsigned long gpu_samples, gpu_util_samples;
    double gpu_peak_mem_mib, gpu_util_sum, gpu_peak_util;
};

struct telemetry {
    struct telemetry_config cfg;
    char dir[4096];
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    /* held across one disk sample (its read of diskstats, its row, its label): a label change
     * takes a sample at the boundary, so no row spans two phases */
    pthread_mutex_t disk_lock;
    pthread_cond_t cond;
    bool stop;
    double last_rmb_s, last_wmb_s; /* the latest disk sample (MB/s), NaN before one */
    char label[64];
    uint64_t t0_ns;

    struct collector col[N_COLLECTORS];
    FILE *f_disk, *f_proc, *f_gpu, *f_metrics;
    FILE **f_nodes; /* one per cfg.nodes (NULL where it could not be opened) */
    /* the runbook's human-readable files beside the CSVs (iostat -x, pidstat, nvidia-smi dmon
     * layouts); their write errors are the CSV collector's */
    FILE *l_disk, *l_proc, *l_gpu;
    struct procstat *procs;
    struct gpu_probe *gpu;
    struct blockdev_stat last_disk;
    bool have_disk;
    uint64_t last_disk_ns;
    uint64_t last_proc_ns;

    struct label_stats *ls;
    size_t n_ls, cap_ls;
    struct cache_snap *snaps;
    size_t n_snaps, cap_snaps;

    unsigned long ticks, late_ticks;
    double cpu_s, wall_s;
    json_t *container;
};

static void col_error(struct collector *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void col_error(struct collector *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof c->last_error, fmt, ap);
    va_end(ap);
    c->errors++;
}

static FILE *open_csv(struct telemetry *t, struct collector *c, const char *name,
                      const char *header)
{
    char path[4352];
    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    snprintf(c->output, sizeof c->output, "telemetry/%s", name);
    FILE *f = fopen(path, "w");
    if (!f) {
        c->status = "failed";
        snprintf(c->reason, sizeof c->reason, "cannot create %s: %s", path, strerror(errno));
        return NULL;
    }
    fprintf(f, "%s\n", header);
    fflush(f);
    c->status = "started";
    return f;
}

/* A human-readable log beside a CSV, opened with the tool's banner line. NULL when it cannot be
 * created (the CSV still carries every figure; the collector says why). */
static FILE *open_log(struct telemetry *t, struct collector *c, const char *name)
{
    char path[4352];
    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        col_error(c, "cannot create %s: %s", path, strerror(errno));
        return NULL;
    }
    struct utsname u;
    char host[256] = "", day[32] = "";
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    struct tm tm;
    strftime(day, sizeof day, "%m/%d/%y", localtime_r(&now, &tm));
    if (uname(&u) == 0)
        fprintf(f, "%s %s (%s) \t%s \t_%s_\t(%ld CPU)\n\n", u.sysname, u.release, host, day,
                u.machine, sysconf(_SC_NPROCESSORS_ONLN));
    fflush(f);
    return f;
}

static void log_end(struct collector *c, FILE *f, const char *name)
{
    if (f && fflush(f) != 0)
        col_error(c, "cannot write %s: %s", name, strerror(errno));
}

static void row_end(struct collector *c, FILE *f)
{
    if (fputc('\n', f) == EOF || fflush(f) != 0)
        col_error(c, "cannot write %s: %s", c->output, strerror(errno));
    else
        c->samples++;
}

static void fnum(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, ",%.3f", v);
    else
        fputs(",", f);
}

static struct label_stats *stats_for(struct telemetry *t, const char *label)
{
    for (size_t i = 0; i < t->n_ls; i++)
        if (strcmp(t->ls[i].label, label) == 0)
            return &t->ls[i];
    if (t->n_ls == t->cap_ls) {
        size_t cap = t->cap_ls ? t->cap_ls * 2 : 16;
        struct label_stats *n = realloc(t->ls, cap * sizeof *n);
        if (!n)
            return NULL;
        t->ls = n;
        t->cap_ls = cap;
    }
    struct label_stats *s = &t->ls[t->n_ls++];
    memset(s, 0, sizeof *s);
    snprintf(s->label, sizeof s->label, "%s", label);
    return s;
}

/* ------------------------------------------------------------ one tick */

static void sample_disk(struct telemetry *t, const char *ts, double el, const char *label)
{
    struct collector *c = &t->col[C_DISK];
    if (!t->f_disk)
        return;
    struct blockdev_stat st;
    char err[ERR_LEN];
    char path[300];
    snprintf(path, sizeof path, "%s/diskstats", t->cfg.procfs);
    uint64_t now = clock_now_ns();
    if (diskstats_read(path, t->cfg.device, &st, err) < 0) {
        col_error(c, "%s", err); /* the device disappeared (or /proc is unreadable) */
        t->have_disk = false;
        return;
    }
    if (t->have_disk) {
        struct iostat_x x;
        double dt = (double)(now - t->last_disk_ns) / 1e9;
        diskstats_compute(&t->last_disk, &st, dt, &x);
        fprintf(t->f_disk, "%s,%.3f,%s,%s", ts, el, label, t->cfg.device);
        double v[] = {x.r_s,     x.w_s,     x.rmb_s,   x.wmb_s,  x.rareq_sz, x.wareq_sz,
                      x.areq_sz, x.r_await, x.w_await, x.aqu_sz, x.util};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
            fnum(t->f_disk, v[i]);
        row_end(c, t->f_disk);
        if (t->l_disk) { /* iostat -x's layout, with the columns computed here */
            fprintf(t->l_disk,
                    "Device            r/s     rkB/s r_await rareq-sz     w/s     wkB/s w_await "
                    "wareq-sz  aqu-sz  %%util\n%-12s %8.2f %9.2f %7.2f %8.2f %7.2f %9.2f %7.2f "
                    "%8.2f %7.2f %6.2f\n\n",
                    t->cfg.device, x.r_s, x.rmb_s * 1024, x.r_await, x.rareq_sz, x.w_s,
                    x.wmb_s * 1024, x.w_await, x.wareq_sz, x.aqu_sz, x.util);
            log_end(c, t->l_disk, "the iostat log");
        }
        pthread_mutex_lock(&t->lock);
        t->last_rmb_s = x.rmb_s;
        t->last_wmb_s = x.wmb_s;
        struct label_stats *s = stats_for(t, label);
        if (s) {
            s->samples++;
            s->mb_r += x.rmb_s * dt;
            s->mb_w += x.wmb_s * dt;
            s->secs += dt;
            /* a boundary sample can span a few milliseconds, whose rate says little */
            s->any_peak_r = fmax(s->any_peak_r, x.rmb_s);
            s->any_peak_w = fmax(s->any_peak_w, x.wmb_s);
            s->any_peak_util = fmax(s->any_peak_util, x.util);
            if (dt >= t->cfg.interval_s / 5) {
                s->long_samples++;
                s->peak_r = fmax(s->peak_r, x.rmb_s);
                s->peak_w = fmax(s->peak_w, x.wmb_s);
                s->peak_util = fmax(s->peak_util, x.util);
            }
        }
        pthread_mutex_unlock(&t->lock);
    }
    t->last_disk = st;
    t->last_disk_ns = now;
    t->have_disk = true;
}

static void sample_procs(struct telemetry *t, const char *ts, double el, const char *label)
{
    struct collector *c = &t->col[C_PROC];
    if (!t->f_proc || !t->procs)
        return;
    uint64_t now = clock_now_ns();
    double dt = t->last_proc_ns ? (double)(now - t->last_proc_ns) / 1e9 : 0;
    t->last_proc_ns = now;
    struct proc_row *rows = NULL;
    int n = procstat_sample(t->procs, dt, &rows);
    if (n < 0) {
        col_error(c, "cannot read %s", t->cfg.procfs);
        return;
    }
    char clock_text[16] = "";
    if (t->l_proc && n > 0) { /* pidstat -u -r -d's layout, one block per sample */
        time_t now_s = time(NULL);
        struct tm tm;
        strftime(clock_text, sizeof clock_text, "%H:%M:%S", localtime_r(&now_s, &tm));
        fprintf(t->l_proc, "# Time          PID    %%usr %%system    %%CPU       RSS   kB_rd/s   "
                           "kB_wr/s  Command\n");
    }
    for (int i = 0; i < n; i++) {
        struct proc_row *r = &rows[i];
        if (t->l_proc)
            fprintf(t->l_proc, "%-8s %10d %7.2f %7.2f %7.2f %9llu %9.2f %9.2f  %s\n", clock_text,
                    r->pid, r->usr_pct, r->sys_pct, r->usr_pct + r->sys_pct,
                    (unsigned long long)r->rss_kb, r->kb_rd_s >= 0 ? r->kb_rd_s : 0.0,
                    r->kb_wr_s >= 0 ? r->kb_wr_s : 0.0, r->comm);
        fprintf(t->f_proc, "%s,%.3f,%s,%d,", ts, el, label, r->pid);
        for (const char *p = r->comm; *p; p++) /* commands may hold commas or quotes */
            fputc(*p == ',' || *p == '"' || *p == '\n' ? '_' : *p, t->f_proc);
        fnum(t->f_proc, r->usr_pct);
        fnum(t->f_proc, r->sys_pct);
        fnum(t->f_proc, r->usr_pct + r->sys_pct);
        fprintf(t->f_proc, ",%llu", (unsigned long long)r->rss_kb);
        fnum(t->f_proc, r->kb_rd_s >= 0 ? r->kb_rd_s : NAN);
        fnum(t->f_proc, r->kb_wr_s >= 0 ? r->kb_wr_s : NAN);
        if (fputc('\n', t->f_proc) == EOF)
            col_error(c, "cannot write pidstat.csv: %s", strerror(errno));
    }
    if (t->l_proc && n > 0)
        fputc('\n', t->l_proc);
    log_end(c, t->l_proc, "pidstat.log");
    if (fflush(t->f_proc) != 0)
        col_error(c, "cannot write pidstat.csv: %s", strerror(errno));
    else
        c->samples++;
    free(rows);
}

/* Fold one GPU sample into its label's figures (NaN readings are left out). */
static void gpu_stats(struct telemetry *t, const char *label, const struct gpu_row *rows, int n)
{
    double mem = 0, util = NAN;
    bool have_mem = false;
    for (int i = 0; i < n; i++) {
        if (isfinite(rows[i].mem_used_mib)) {
            mem += rows[i].mem_used_mib;
            have_mem = true;
        }
        if (isfinite(rows[i].util_pct) && !(rows[i].util_pct <= util))
            util = rows[i].util_pct;
    }
    pthread_mutex_lock(&t->lock);
    struct label_stats *s = stats_for(t, label);
    if (s && n > 0) {
        s->gpu_samples++;
        if (have_mem && mem > s->gpu_peak_mem_mib)
            s->gpu_peak_mem_mib = mem;
        if (isfinite(util)) {
            s->gpu_util_samples++;
            s->gpu_util_sum += util;
            if (util > s->gpu_peak_util)
                s->gpu_peak_util = util;
        }
    }
    pthread_mutex_unlock(&t->lock);
}

static void sample_gpu(struct telemetry *t, const char *ts, double el, const char *label)
{
    struct collector *c = &t->col[C_GPU];
    if (!t->f_gpu)
        return;
    struct gpu_row rows[16];
    int n = gpu_sample(t->gpu, rows, 16);
    if (n < 0) {
        col_error(c, "%s", gpu_reason(t->gpu));
        return;
    }
    for (int i = 0; i < n; i++) {
        struct gpu_row *r = &rows[i];
        fprintf(t->f_gpu, "%s,%.3f,%s,%s,%d,", ts, el, label, gpu_source(t->gpu), r->index);
        for (const char *p = r->name; *p; p++)
            fputc(*p == ',' ? ' ' : *p, t->f_gpu);
        double v[] = {r->util_pct, r->mem_util_pct, r->mem_used_mib, r->mem_total_mib,
                      r->power_w,  r->sm_clock_mhz, r->temp_c};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            fnum(t->f_gpu, v[k]);
        fputc('\n', t->f_gpu);
        if (t->l_gpu) /* nvidia-smi dmon's layout: gpu pwr temp sm mem mclk-less */
            fprintf(t->l_gpu, "%s %5d %5.0f %5.0f %5.0f %5.0f %7.0f %7.0f %6.0f\n", ts + 11,
                    r->index, r->power_w, r->temp_c, r->util_pct, r->mem_util_pct, r->mem_used_mib,
                    r->mem_total_mib, r->sm_clock_mhz);
    }
    gpu_stats(t, label, rows, n);
    log_end(c, t->l_gpu, "nvidia_smi_dmon.txt");
    if (fflush(t->f_gpu) != 0)
        col_error(c, "cannot write gpu.csv: %s", strerror(errno));
    else
        c->samples++;
}

static void sample_metrics(struct telemetry *t, const char *ts, double el, const char *label)
{
    struct collector *c = &t->col[C_METRICS];
    if (!t->f_metrics)
        return;
    struct kv_snapshot s;
    kvsnap_take(t->cfg.metrics_url, t->cfg.metrics_timeout_s, label, NULL, &s);
    fprintf(t->f_metrics, "%s,%.3f,%s,%d", ts, el, label, s.success ? 1 : 0);
    const char *const *lists[2] = {KV_COUNTERS, KV_GAUGES};
    for (int l = 0; l < 2; l++) {
        for (int i = 0; lists[l][i]; i++) {
            double v;
            if (s.success && prom_json_lookup(s.metrics, lists[l][i], &v))
                fnum(t->f_metrics, v);
            else
                fputs(",", t->f_metrics);
        }
    }
    if (!s.success)
        col_error(c, "%s", s.error);
    row_end(c, t->f_metrics);
    kvsnap_free(&s);
}

/* A series key as one CSV field: quoted, its quotes doubled. */
static void csv_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Every --scrape node: one row per series of the known families (long format). */
static void sample_nodes(struct telemetry *t, const char *label)
{
    struct collector *c = &t->col[C_NODES];
    for (size_t i = 0; t->f_nodes && i < t->cfg.n_nodes; i++) {
        FILE *f = t->f_nodes[i];
        if (!f)
            continue;
        struct node_snap s;
        nodes_scrape(t->cfg.nodes[i].url, t->cfg.metrics_timeout_s, &s);
        if (!s.ok) {
            col_error(c, "%s: %s", t->cfg.nodes[i].name, s.error);
            continue;
        }
        const char *key;
        const json_t *v;
        json_object_foreach(s.series, key, v)
        {
            fprintf(f, "%.3f,%s,", s.wall_s, label);
            csv_quoted(f, key);
            if (json_is_number(v))
                fprintf(f, ",%.17g\n", json_number_value(v));
            else
                fputs(",\n", f);
        }
        if (fflush(f) != 0 || ferror(f))
            col_error(c, "cannot write nodes_%s.csv: %s", t->cfg.nodes[i].name, strerror(errno));
        else
            c->samples++;
        node_snap_free(&s);
    }
}

static void *sampler(void *arg)
{
    struct telemetry *t = arg;
    uint64_t interval = (uint64_t)(t->cfg.interval_s * 1e9);
    uint64_t next = clock_now_ns();
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    uint64_t w0 = clock_now_ns();
    for (;;) {
        char label[64], ts[CLOCK_ISO_LEN];
        pthread_mutex_lock(&t->disk_lock);
        pthread_mutex_lock(&t->lock);
        bool stop = t->stop;
        snprintf(label, sizeof label, "%s", t->label);
        pthread_mutex_unlock(&t->lock);
        if (stop) {
            pthread_mutex_unlock(&t->disk_lock);
            break;
        }
        clock_iso_utc(clock_wall_ns(), ts);
        double el = (double)(clock_now_ns() - t->t0_ns) / 1e9;
        sample_disk(t, ts, el, label);
        pthread_mutex_unlock(&t->disk_lock);
        sample_procs(t, ts, el, label);
        sample_gpu(t, ts, el, label);
        sample_metrics(t, ts, el, label);
        sample_nodes(t, label);
        t->ticks++;
        next += interval;
        uint64_t now = clock_now_ns();
        if (now > next) {
            t->late_ticks++;
            next = now; /* a tick took longer than the interval: do not try to catch up */
        }
        struct timespec until = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
        pthread_mutex_lock(&t->lock);
        while (!t->stop) {
            if (pthread_cond_timedwait(&t->cond, &t->lock, &until) == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&t->lock);
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    t->cpu_s = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    t->wall_s = (double)(clock_now_ns() - w0) / 1e9;
    return NULL;
}

/* kvbm_metrics.csv with its header: one column per KV counter and gauge. NULL when it cannot be
 * opened, or when the header could not be built whole (it would misname every column). */
static FILE *open_metrics_csv(struct telemetry *t)
{
    struct buf h = BUF_INIT;
    buf_append_str(&h, "time_utc,elapsed_s,label,ok");
    for (int i = 0; KV_COUNTERS[i]; i++)
        buf_printf(&h, ",%s", KV_COUNTERS[i]);
    for (int i = 0; KV_GAUGES[i]; i++)
        buf_printf(&h, ",%s", KV_GAUGES[i]);
    FILE *f =
        buf_failed(&h) ? NULL : open_csv(t, &t->col[C_METRICS], "kvbm_metrics.csv", buf_cstr(&h));
    buf_free(&h);
    return f;
}

/* nodes_<NAME>.csv for each --scrape node: t_s (epoch seconds of the scrape), label, series,
 * value. */
static void open_nodes_csv(struct telemetry *t)
{
    struct collector *c = &t->col[C_NODES];
    if (!t->cfg.n_nodes) {
        snprintf(c->reason, sizeof c->reason, "no --scrape node");
        return;
    }
    t->f_nodes = calloc(t->cfg.n_nodes, sizeof *t->f_nodes);
    if (!t->f_nodes) {
        c->status = "failed";
        snprintf(c->reason, sizeof c->reason, "out of memory");
        return;
    }
    size_t opened = 0;
    for (size_t i = 0; i < t->cfg.n_nodes; i++) {
        char name[NODE_NAME_MAX + 16];
        snprintf(name, sizeof name, "nodes_%s.csv", t->cfg.nodes[i].name);
        t->f_nodes[i] = open_csv(t, c, name, "t_s,label,series,value");
        opened += t->f_nodes[i] != NULL;
    }
    if (opened < t->cfg.n_nodes) /* open_csv said which and why */
        return;
    snprintf(c->reason, sizeof c->reason, "%zu node%s scraped every interval", t->cfg.n_nodes,
             t->cfg.n_nodes == 1 ? "" : "s");
    snprintf(c->output, sizeof c->output, "telemetry/nodes_<NAME>.csv");
}

/* ------------------------------------------------------------ API */

struct telemetry *telemetry_start(const struct telemetry_config *cfg, char *err)
{
    if (fs_mkdir_p(cfg->out_dir, err) < 0)
        return NULL;
    struct telemetry *t = calloc(1, sizeof *t);
    if (!t) {
        err_set(err, "out of memory");
        return NULL;
    }
    t->cfg = *cfg;
    snprintf(t->dir, sizeof t->dir, "%s", cfg->out_dir);
    snprintf(t->label, sizeof t->label, "start");
    t->t0_ns = clock_now_ns();
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->disk_lock, NULL);
    t->last_rmb_s = t->last_wmb_s = NAN;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    static const char *const NAMES[N_COLLECTORS] = {"disk",         "processes", "gpu",
                                                    "kvbm_metrics", "cache_dir", "container_logs",
                                                    "cufile_logs",  "nodes"};
    for (int i = 0; i < N_COLLECTORS; i++) {
        t->col[i].name = NAMES[i];
        t->col[i].status = "skipped";
    }
    if (cfg->device) {
        char name[128];
        snprintf(name, sizeof name, "iostat_%s.csv", cfg->device);
        t->f_disk = open_csv(t, &t->col[C_DISK], name,
                             "time_utc,elapsed_s,label,device,r_s,w_s,rMB_s,wMB_s,rareq_sz_kb,"
                             "wareq_sz_kb,areq_sz_kb,r_await_ms,w_await_ms,aqu_sz,util_pct");
        snprintf(name, sizeof name, "iostat_%s.log", cfg->device);
        if (t->f_disk)
            t->l_disk = open_log(t, &t->col[C_DISK], name);
    } else {
        snprintf(t->col[C_DISK].reason, sizeof t->col[C_DISK].reason, "no block device: %s",
                 cfg->device_error ? cfg->device_error : "unknown");
    }
    t->procs = procstat_new(cfg->pid_spec, cfg->procfs);
    if (t->procs)
        t->f_proc = open_csv(t, &t->col[C_PROC], "pidstat.csv",
                             "time_utc,elapsed_s,label,pid,command,usr_pct,sys_pct,cpu_pct,rss_kb,"
                             "kb_rd_s,kb_wr_s");
    if (t->f_proc)
        t->l_proc = open_log(t, &t->col[C_PROC], "pidstat.log");
    t->gpu = gpu_open();
    if (t->gpu && strcmp(gpu_source(t->gpu), "unavailable") != 0) {
        t->f_gpu = open_csv(t, &t->col[C_GPU], "gpu.csv",
                            "time_utc,elapsed_s,label,source,gpu,name,util_pct,mem_util_pct,"
                            "mem_used_mib,mem_total_mib,power_w,sm_clock_mhz,temp_c");
        if (t->f_gpu && (t->l_gpu = open_log(t, &t->col[C_GPU], "nvidia_smi_dmon.txt")))
            fprintf(t->l_gpu, "#Time      gpu   pwr  temp    sm   mem   fb_MiB  fb_tot   sclk\n"
                              "#HH:MM:SS  Idx     W     C     %%     %%      MiB     MiB    MHz\n");
        if (*gpu_reason(t->gpu))
            snprintf(t->col[C_GPU].reason, sizeof t->col[C_GPU].reason, "using %s (%s)",
                     gpu_source(t->gpu), gpu_reason(t->gpu));
        else
            snprintf(t->col[C_GPU].reason, sizeof t->col[C_GPU].reason, "using %s",
                     gpu_source(t->gpu));
    } else {
        snprintf(t->col[C_GPU].reason, sizeof t->col[C_GPU].reason, "no GPU telemetry: %s",
                 t->gpu ? gpu_reason(t->gpu) : "out of memory");
        /* the runbook's file exists all the same, and says why it is empty */
        char gp[4352];
        snprintf(gp, sizeof gp, "%s/nvidia_smi_dmon.txt", t->dir);
        FILE *g = fopen(gp, "w");
        if (g) {
            fprintf(g, "# %s\n", t->col[C_GPU].reason);
            fclose(g);
        }
    }
    if (cfg->metrics_url)
        t->f_metrics = open_metrics_csv(t);
    open_nodes_csv(t);
    t->col[C_CACHE].status = "started";
    snprintf(t->col[C_CACHE].reason, sizeof t->col[C_CACHE].reason, "snapshots of %s",
             cfg->cache_dir);
    snprintf(t->col[C_CACHE].output, sizeof t->col[C_CACHE].output,
             "telemetry/kvbm_<label>_files.txt");
    if (pthread_create(&t->thread, NULL, sampler, t) != 0) {
        err_set(err, "cannot start the telemetry sampler thread");
        telemetry_free(t);
        return NULL;
    }
    t->running = true;
    log_info("telemetry: every %.3g s into %s (disk %s, processes %s, gpu %s)", cfg->interval_s,
             t->dir, cfg->device ? cfg->device : "none", cfg->pid_spec,
             t->gpu ? gpu_source(t->gpu) : "unavailable");
    return t;
}

void telemetry_set_label(struct telemetry *t, const char *label)
{
    /* Close the disk interval that ends here under the label that ends here: without it a phase
     * shorter than the interval has no row of its own, and its reads land in the next label's. */
    pthread_mutex_lock(&t->disk_lock);
    pthread_mutex_lock(&t->lock);
    char old[64];
    snprintf(old, sizeof old, "%s", t->label);
    bool sample = t->running && !t->stop;
    pthread_mutex_unlock(&t->lock);
    if (sample && strcmp(old, label) != 0) {
        char ts[CLOCK_ISO_LEN];
        clock_iso_utc(clock_wall_ns(), ts);
        sample_disk(t, ts, (double)(clock_now_ns() - t->t0_ns) / 1e9, old);
    }
    pthread_mutex_lock(&t->lock);
    snprintf(t->label, sizeof t->label, "%s", label);
    pthread_mutex_unlock(&t->lock);
    pthread_mutex_unlock(&t->disk_lock);
}

void telemetry_cache_snapshot(struct telemetry *t, const char *label)
{
    struct collector *c = &t->col[C_CACHE];
    if (t->n_snaps == t->cap_snaps) {
        size_t cap = t->cap_snaps ? t->cap_snaps * 2 : 16;
        struct cache_snap *s = realloc(t->snaps, cap * sizeof *s);
        if (!s) {
            col_error(c, "out of memory");
            return;
        }
        t->snaps = s;
        t->cap_snaps = cap;
    }
    struct cache_snap *s = &t->snaps[t->n_snaps];
    if (cachedir_snapshot(t->cfg.cache_dir, label, s) < 0) {
        col_error(c, "out of memory walking %s", t->cfg.cache_dir);
        return;
    }
    t->n_snaps++;
    if (!s->ok)
        col_error(c, "%s", s->error);
    char path[4400], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/kvbm_%s_files.txt", t->dir, label);
    if (cachedir_write(s, t->cfg.cache_dir, path, err) < 0)
        col_error(c, "%s", err);
    else if (s->ok)
        c->samples++;
}

static const struct cache_snap *find_snap(const struct telemetry *t, const char *label)
{
    for (size_t i = t->n_snaps; i-- > 0;)
        if (strcmp(t->snaps[i].label, label) == 0)
            return &t->snaps[i];
    return NULL;
}

json_t *telemetry_cache_churn(struct telemetry *t, const char *before, const char *after)
{
    return cachedir_churn(find_snap(t, before), find_snap(t, after));
}

json_t *telemetry_label_stats(struct telemetry *t, const char *label)
{
    pthread_mutex_lock(&t->lock);
    json_t *o = NULL;
    for (size_t i = 0; i < t->n_ls && !o; i++) {
        struct label_stats *s = &t->ls[i];
        if (strcmp(s->label, label) != 0)
            continue;
        bool lng = s->long_samples > 0;
        o = json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "samples", (json_int_t)s->samples,
                      "peak_read_mb_s", lng ? s->peak_r : s->any_peak_r, "peak_write_mb_s",
                      lng ? s->peak_w : s->any_peak_w, "mean_read_mb_s",
                      s->secs > 0 ? s->mb_r / s->secs : 0.0, "mean_write_mb_s",
                      s->secs > 0 ? s->mb_w / s->secs : 0.0, "peak_util_pct",
                      lng ? s->peak_util : s->any_peak_util);
    }
    pthread_mutex_unlock(&t->lock);
    return o ? o : json_pack("{s:i}", "samples", 0);
}

json_t *telemetry_label_gpu(struct telemetry *t, const char *label)
{
    if (!t->f_gpu)
        return NULL;
    pthread_mutex_lock(&t->lock);
    json_t *o = NULL;
    for (size_t i = 0; i < t->n_ls && !o; i++) {
        const struct label_stats *s = &t->ls[i];
        if (strcmp(s->label, label) != 0 || s->gpu_samples == 0)
            continue;
        bool util = s->gpu_util_samples > 0; /* a GPU without utilisation readings: null */
        o = json_pack(
            "{s:I, s:f, s:o, s:o}", "samples", (json_int_t)s->gpu_samples, "peak_mem_used_mib",
            s->gpu_peak_mem_mib, "mean_util_pct",
            json_real_or_null(util ? s->gpu_util_sum / (double)s->gpu_util_samples : 0, util),
            "peak_util_pct", json_real_or_null(s->gpu_peak_util, util));
    }
    pthread_mutex_unlock(&t->lock);
    return o ? o : json_pack("{s:i}", "samples", 0);
}

/* The runbook's docker_<container>_logs.txt when no log could be had: the reason instead. */
static void no_logs(const char *path, const char *why)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "# no container logs: %s\n", why);
        fclose(f);
    }
}

void telemetry_stop(struct telemetry *t)
{
    if (t->running) {
        pthread_mutex_lock(&t->lock);
        t->stop = true;
        pthread_cond_signal(&t->cond);
        pthread_mutex_unlock(&t->lock);
        pthread_join(t->thread, NULL);
        t->running = false;
    }
    /* Container logs last, so they cover the whole run. */
    struct collector *lc = &t->col[C_LOGS], *cc = &t->col[C_CUFILE];
    if (!t->cfg.container || !*t->cfg.container) {
        snprintf(lc->reason, sizeof lc->reason, "no container name");
        snprintf(cc->reason, sizeof cc->reason, "no container name");
        return;
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/docker_%s_logs.txt", t->dir, t->cfg.container);
    if (!container_docker_present()) {
        snprintf(lc->reason, sizeof lc->reason, "docker is not on PATH");
        snprintf(cc->reason, sizeof cc->reason, "docker is not on PATH");
        no_logs(path, lc->reason);
        return;
    }
    char err[ERR_LEN];
    t->container = container_inspect(t->cfg.container, t->cfg.container_timeout_s, err);
    if (!t->container) {
        snprintf(lc->reason, sizeof lc->reason, "container %s: %s", t->cfg.container, err);
        snprintf(cc->reason, sizeof cc->reason, "container %s: %s", t->cfg.container, err);
        no_logs(path, lc->reason);
        return;
    }
    snprintf(lc->output, sizeof lc->output, "telemetry/docker_%s_logs.txt", t->cfg.container);
    if (container_logs(t->cfg.container, path, t->cfg.container_timeout_s, err) < 0) {
        lc->status = fs_exists(path) ? "started" : "failed";
        col_error(lc, "%s", err);
        snprintf(lc->reason, sizeof lc->reason, "%s", err);
    } else {
        lc->status = "started";
        lc->samples = 1;
    }
    snprintf(path, sizeof path, "%s/cufile_logs", t->dir);
    snprintf(cc->output, sizeof cc->output, "telemetry/cufile_logs/");
    if (container_copy(t->cfg.container, "/var/log/cufile", path, t->cfg.container_timeout_s, err) <
        0) {
        cc->status = "failed";
        snprintf(cc->reason, sizeof cc->reason, "%s", err);
    } else {
        cc->status = "started";
        cc->samples = 1;
    }
}

const json_t *telemetry_container(const struct telemetry *t)
{
    return t->container;
}

int telemetry_write_reports(struct telemetry *t, const json_t *churn, char *err)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/cache_churn.json", t->dir);
    if (json_write_file(path, churn, err) < 0)
        return -1;
    json_t *cols = json_array();
    for (int i = 0; i < N_COLLECTORS; i++) {
        struct collector *c = &t->col[i];
        const char *status = c->status;
        if (strcmp(status, "started") == 0 && c->samples == 0 && c->errors > 0)
            status = "failed"; /* started, but never produced a sample */
        json_array_append_new(cols,
                              json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "name", c->name,
                                        "status", status, "reason", c->reason, "output", c->output,
                                        "samples", (json_int_t)c->samples, "errors",
                                        (json_int_t)c->errors, "last_error", c->last_error));
    }
    double pct = t->wall_s > 0 ? t->cpu_s / t->wall_s * 100.0 : 0;
    json_t *rep =
        json_pack("{s:o, s:{s:f, s:I, s:I, s:f, s:f, s:f}, s:s, s:s}", "collectors", cols,
                  "sampler", "interval_s", t->cfg.interval_s, "ticks", (json_int_t)t->ticks,
                  "late_ticks", (json_int_t)t->late_ticks, "cpu_s", t->cpu_s, "wall_s", t->wall_s,
                  "cpu_pct_of_one_core", pct, "gpu_source",
                  t->gpu ? gpu_source(t->gpu) : "unavailable", "process_filter", t->cfg.pid_spec);
    snprintf(path, sizeof path, "%s/telemetry_report.json", t->dir);
    int rc = json_write_file(path, rep, err);
    json_decref(rep);
    return rc;
}

bool telemetry_disk_now(struct telemetry *t, double *read_mb_s, double *write_mb_s)
{
    pthread_mutex_lock(&t->lock);
    *read_mb_s = t->last_rmb_s;
    *write_mb_s = t->last_wmb_s;
    pthread_mutex_unlock(&t->lock);
    return !isnan(*read_mb_s);
}

void telemetry_free(struct telemetry *t)
{
    if (!t)
        return;
    if (t->running)
        telemetry_stop(t);
    FILE *files[] = {t->f_disk, t->f_proc, t->f_gpu, t->f_metrics, t->l_disk, t->l_proc, t->l_gpu};
    for (int i = 0; i < 7; i++)
        if (files[i])
            fclose(files[i]);
    for (size_t i = 0; t->f_nodes && i < t->cfg.n_nodes; i++)
        if (t->f_nodes[i])
            fclose(t->f_nodes[i]);
    free(t->f_nodes);
    procstat_free(t->procs);
    gpu_close(t->gpu);
    for (size_t i = 0; i < t->n_snaps; i++)
        cachedir_free(&t->snaps[i]);
    free(t->snaps);
    free(t->ls);
    json_decref(t->container);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->disk_lock);
    free(t);
}
