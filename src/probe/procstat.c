/*
 * procstat.c - process sampling.
 *
 * Each tracked process is keyed by (pid, starttime), so a PID reused by a new process starts a
 * new baseline instead of producing a bogus delta. A generation counter marks the processes
 * seen in the current scan; the rest have exited and are dropped.
 */
#include "probe/procstat.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ptrack {
    int pid;
    uint64_t starttime;
    char comm[64];
    bool matched;
    uint64_t utime, stime, rss, rb, wb;
    bool io_ok;
    unsigned gen;
};

struct procstat {
    char procfs[256];
    enum { SEL_ALL, SEL_PIDS, SEL_PATTERN } sel;
    int *pids;
    size_t n_pids;
    char pattern[128];
    struct ptrack *t;
    size_t n, cap;
    unsigned gen;
    long clk_tck;
    long page_kb;
    bool primed;
};

int procstat_parse_stat(const char *text, char comm[64], uint64_t *utime, uint64_t *stime,
                        uint64_t *starttime, uint64_t *rss_pages)
{
    const char *open = strchr(text, '(');
    const char *close = strrchr(text, ')');
    if (!open || !close || close < open)
        return -1;
    size_t n = (size_t)(close - open - 1);
    if (n > 63)
        n = 63;
    memcpy(comm, open + 1, n);
    comm[n] = '\0';
    /* after ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15) cutime cstime priority nice num_threads itrealvalue starttime(22)
     * vsize(23) rss(24) */
    const char *p = close + 2;
    uint64_t f[22];
    char state;
    int k =
        sscanf(p,
               "%c %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
               " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
               " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
               &state, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10],
               &f[11], &f[12], &f[13], &f[14], &f[15], &f[16], &f[17], &f[18], &f[19], &f[20]);
    /* priority and nice may be negative: sscanf into uint64 still consumes them */
    if (k < 22)
        return -1;
    *utime = f[10];
    *stime = f[11];
    *starttime = f[18];
    *rss_pages = f[20];
    return 0;
}

int procstat_parse_io(const char *text, uint64_t *rb, uint64_t *wb)
{
    const char *r = strstr(text, "\nread_bytes:");
    const char *w = strstr(text, "\nwrite_bytes:");
    if (!r || !w)
        return -1;
    if (sscanf(r + 12, "%" SCNu64, rb) != 1 || sscanf(w + 13, "%" SCNu64, wb) != 1)
        return -1;
    return 0;
}

static int read_text(const char *path, char *out, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t r = read(fd, out, n - 1);
    close(fd);
    if (r < 0)
        return -1;
    out[r] = '\0';
    return (int)r;
}

struct procstat *procstat_new(const char *spec, const char *procfs)
{
    struct procstat *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->procfs, sizeof p->procfs, "%s", procfs);
    p->clk_tck = sysconf(_SC_CLK_TCK);
    if (p->clk_tck <= 0)
        p->clk_tck = 100;
    p->page_kb = sysconf(_SC_PAGESIZE) / 1024;
    bool digits = *spec != '\0';
    for (const char *c = spec; *c; c++)
        if (!isdigit((unsigned char)*c) && *c != ',' && *c != ' ')
            digits = false;
    if (strcmp(spec, "ALL") == 0) {
        p->sel = SEL_ALL;
    } else if (digits) {
        p->sel = SEL_PIDS;
        for (const char *c = spec; *c;) {
            char *end;
            long v = strtol(c, &end, 10);
            if (end == c) {
                c++;
                continue;
            }
            int *np = realloc(p->pids, (p->n_pids + 1) * sizeof *np);
            if (!np)
                break;
            p->pids = np;
            p->pids[p->n_pids++] = (int)v;
            c = end;
        }
    } else {
        p->sel = SEL_PATTERN;
        snprintf(p->pattern, sizeof p->pattern, "%s", spec);
    }
    return p;
}

void procstat_free(struct procstat *p)
{
    if (!p)
        return;
    free(p->pids);
    free(p->t);
    free(p);
}

static struct ptrack *track(struct procstat *p, int pid, uint64_t starttime, bool *fresh)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->t[i].pid == pid) {
            if (p->t[i].starttime == starttime) {
                *fresh = false;
                return &p->t[i];
            }
            memset(&p->t[i], 0, sizeof p->t[i]); /* PID reused */
            p->t[i].pid = pid;
            p->t[i].starttime = starttime;
            *fresh = true;
            return &p->t[i];
        }
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        struct ptrack *t = realloc(p->t, cap * sizeof *t);
        if (!t)
            return NULL;
        p->t = t;
        p->cap = cap;
    }
    struct ptrack *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    t->pid = pid;
    t->starttime = starttime;
    *fresh = true;
    return t;
}

static bool pattern_match(struct procstat *p, int pid, const char *comm)
{
    if (strstr(comm, p->pattern))
        return true;
    char path[300], cmd[4096];
    snprintf(path, sizeof path, "%s/%d/cmdline", p->procfs, pid);
    int n = read_text(path, cmd, sizeof cmd);
    for (int i = 0; i < n; i++)
        if (cmd[i] == '\0')
            cmd[i] = ' ';
    return n > 0 && strstr(cmd, p->pattern) != NULL;
}

/* Sample one process; append a row when due. */
static void sample_pid(struct procstat *p, int pid, double dt_s, struct proc_row **rows,
                       size_t *n_rows, size_t *cap_rows)
{
    char path[300], text[1024];
    snprintf(path, sizeof path, "%s/%d/stat", p->procfs, pid);
    if (read_text(path, text, sizeof text) <= 0)
        return; /* exited */
    char comm[64];
    uint64_t ut, st, start, rss;
    if (procstat_parse_stat(text, comm, &ut, &st, &start, &rss) < 0)
        return;
    bool fresh;
    struct ptrack *t = track(p, pid, start, &fresh);
    if (!t)
        return;
    t->gen = p->gen;
    if (fresh) {
        snprintf(t->comm, sizeof t->comm, "%s", comm);
        t->matched = p->sel != SEL_PATTERN || pattern_match(p, pid, comm);
    }
    uint64_t rb = 0, wb = 0;
    snprintf(path, sizeof path, "%s/%d/io", p->procfs, pid);
    bool io_ok = read_text(path, text, sizeof text) > 0 && procstat_parse_io(text, &rb, &wb) == 0;
    if (!fresh && t->matched && dt_s > 0) {
        double du = (double)(ut >= t->utime ? ut - t->utime : 0) / (double)p->clk_tck;
        double ds = (double)(st >= t->stime ? st - t->stime : 0) / (double)p->clk_tck;
        double drd = io_ok && t->io_ok && rb >= t->rb ? (double)(rb - t->rb) : 0;
        double dwr = io_ok && t->io_ok && wb >= t->wb ? (double)(wb - t->wb) : 0;
        bool active = du > 0 || ds > 0 || drd > 0 || dwr > 0;
        if (p->sel != SEL_ALL || active) {
            if (*n_rows == *cap_rows) {
                size_t cap = *cap_rows ? *cap_rows * 2 : 64;
                struct proc_row *r = realloc(*rows, cap * sizeof *r);
                if (!r)
                    return;
                *rows = r;
                *cap_rows = cap;
            }
            struct proc_row *r = &(*rows)[(*n_rows)++];
            r->pid = pid;
            snprintf(r->comm, sizeof r->comm, "%s", comm);
            r->usr_pct = du / dt_s * 100.0;
            r->sys_pct = ds / dt_s * 100.0;
            r->rss_kb = rss * (uint64_t)p->page_kb;
            r->kb_rd_s = io_ok && t->io_ok ? drd / 1024.0 / dt_s : -1;
            r->kb_wr_s = io_ok && t->io_ok ? dwr / 1024.0 / dt_s : -1;
        }
    }
    t->utime = ut;
    t->stime = st;
    t->rss = rss;
    t->rb = rb;
    t->wb = wb;
    t->io_ok = io_ok;
}

int procstat_sample(struct procstat *p, double dt_s, struct proc_row **rows)
{
    *rows = NULL;
    size_t n_rows = 0, cap_rows = 0;
    p->gen++;
    double dt = p->primed ? dt_s : 0;
    if (p->sel == SEL_PIDS) {
        for (size_t i = 0; i < p->n_pids; i++)
            sample_pid(p, p->pids[i], dt, rows, &n_rows, &cap_rows);
    } else {
        DIR *d = opendir(p->procfs);
        if (!d)
            return -1;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!isdigit((unsigned char)de->d_name[0]))
                continue;
            sample_pid(p, atoi(de->d_name), dt, rows, &n_rows, &cap_rows);
        }
        closedir(d);
    }
    /* drop the processes that exited */
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->t[i].gen == p->gen)
            p->t[k++] = p->t[i];
    p->n = k;
    p->primed = true;
    return (int)n_rows;
}
