/*
 * diskstats.h - the `iostat -x` quantities of one block device, computed from two readings of
 * /proc/diskstats the way sysstat computes them.
 */
#ifndef KVBENCH_PROBE_DISKSTATS_H
#define KVBENCH_PROBE_DISKSTATS_H

#include "probe/blockdev.h"

#include <stdbool.h>
#include <stdint.h>

struct iostat_x {
    double r_s, w_s;           /* completed reads / writes per second */
    double rmb_s, wmb_s;       /* MB/s as iostat -m prints them (MiB: sectors / 2048) */
    double rareq_sz, wareq_sz; /* average read / write size, kB */
    double areq_sz;            /* average request size, kB */
    double r_await, w_await;   /* ms per read / write, queue time included */
    double aqu_sz;             /* average queue length */
    double util;               /* % of time the device had I/O in flight (<= 100) */
};

/* Read the counters of `name` from a /proc/diskstats file. Returns 0, -1 when the device is not
 * listed (err says so) or the file cannot be read. */
int diskstats_read(const char *path, const char *name, struct blockdev_stat *st, char *err);
/* Parse diskstats text for `name`. Returns 0 or -1. */
int diskstats_parse(const char *text, const char *name, struct blockdev_stat *st);
/* The iostat quantities between two readings taken dt_s apart. Counters that went backwards
 * are taken as a 32-bit wrap when the old value fits in 32 bits, otherwise as a reset (0). */
void diskstats_compute(const struct blockdev_stat *before, const struct blockdev_stat *after,
                       double dt_s, struct iostat_x *out);
/* Counter difference with the wrap rule above. */
uint64_t diskstats_delta(uint64_t before, uint64_t after);

#endif
