/*
 * blockdev.h - block-device I/O counters from /sys (the figures behind "did the disk really
 * see it"): which device holds a directory, and its cumulative counters.
 */
#ifndef KVBENCH_PROBE_BLOCKDEV_H
#define KVBENCH_PROBE_BLOCKDEV_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define BLOCKDEV_NAME_LEN 64

struct blockdev_stat {
    uint64_t read_ios, read_merges, read_sectors, read_ticks;
    uint64_t write_ios, write_merges, write_sectors, write_ticks;
    uint64_t in_flight, io_ticks, time_in_queue;
    uint64_t wall_ns; /* when blockdev_read read it (0: parsed from text) */
};

/* Resolve spec to a device name. spec "auto": the whole disk holding path (or "." when path does
 * not exist), found through /sys/dev/block; when that filesystem has no block device (tmpfs,
 * overlay), the busiest disk in /sys/block. Any other spec names a device (disk or partition).
 * how: "mount", "busiest" or "named". Returns 0, or -1 with err (e.g. the device does not exist).
 * sysfs_root is "/sys" except in tests. */
int blockdev_resolve(const char *sysfs_root, const char *spec, const char *path,
                     char name[BLOCKDEV_NAME_LEN], const char **how, char *err);
/* Read the counters of a device. Returns 0 or -1 with err. */
int blockdev_read(const char *sysfs_root, const char *name, struct blockdev_stat *st, char *err);
/* Parse the text of a stat file (11 to 17 fields). Returns 0 or -1. */
int blockdev_parse_stat(const char *text, struct blockdev_stat *st);
json_t *blockdev_stat_json(const struct blockdev_stat *st);
/* The io_delta object of SPEC §5.3: *_delta figures, MiB, before and after. Counters that went
 * backwards (device re-created, wrap) read as 0. */
json_t *blockdev_delta_json(const struct blockdev_stat *before, const struct blockdev_stat *after);

#endif
