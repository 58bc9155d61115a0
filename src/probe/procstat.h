/*
 * procstat.h - per-process CPU, memory and I/O from /proc (the quantities of `pidstat -u -r -d`):
 * %usr, %sys, RSS, and read/write bytes per second, for every process, a list of PIDs, or the
 * processes whose name or command line contains a pattern. Processes that appear mid-run are
 * picked up (their first interval is their baseline) and processes that exit are dropped.
 */
#ifndef KVBENCH_PROBE_PROCSTAT_H
#define KVBENCH_PROBE_PROCSTAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct proc_row {
    int pid;
    char comm[64];
    double usr_pct, sys_pct;
    uint64_t rss_kb;
    double kb_rd_s, kb_wr_s; /* -1 when /proc/<pid>/io is unreadable */
};

struct procstat;

/* spec: "ALL", "123,456", or a name pattern. procfs: "/proc" except in tests. */
struct procstat *procstat_new(const char *spec, const char *procfs);
void procstat_free(struct procstat *p);
/* Sample now; on every call after the first, fill rows (caller frees *rows) with the processes
 * that match (for ALL: those that used CPU or did I/O in the interval). Returns the number of
 * rows, or -1 when /proc cannot be read at all. */
int procstat_sample(struct procstat *p, double dt_s, struct proc_row **rows);
/* Parse one /proc/<pid>/stat line: comm, utime, stime (ticks), starttime, rss (pages). */
int procstat_parse_stat(const char *text, char comm[64], uint64_t *utime, uint64_t *stime,
                        uint64_t *starttime, uint64_t *rss_pages);
/* Parse /proc/<pid>/io: read_bytes, write_bytes. */
int procstat_parse_io(const char *text, uint64_t *read_bytes, uint64_t *write_bytes);

#endif
