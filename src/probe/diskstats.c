/*
 * diskstats.c - /proc/diskstats and sysstat's extended statistics.
 *
 * Formulas (sysstat's compute_ext_disk_stats, for a kernel that reports milliseconds):
 *   r/s = Δrd_ios / Δt           rMB/s = Δrd_sectors / 2048 / Δt
 *   r_await = Δrd_ticks / Δrd_ios (ms)          areq-sz = Δsectors / 2 / Δios (kB)
 *   aqu-sz = Δtime_in_queue / Δt_ms             %util = Δio_ticks / Δt_ms × 100
 */
#include "probe/diskstats.h"

#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int diskstats_parse(const char *text, const char *name, struct blockdev_stat *st)
{
    const char *line = text;
    while (line && *line) {
        unsigned maj, min;
        char dev[128];
        uint64_t v[11];
        int n = sscanf(line,
                       "%u %u %127s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                       " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
                       &maj, &min, dev, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
                       &v[8], &v[9], &v[10]);
        if (n == 14 && strcmp(dev, name) == 0) {
            *st = (struct blockdev_stat){v[0], v[1], v[2], v[3], v[4],  v[5],
                                         v[6], v[7], v[8], v[9], v[10], 0};
            return 0;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -1;
}

int diskstats_read(const char *path, const char *name, struct blockdev_stat *st, char *err)
{
    struct buf b = BUF_INIT;
    if (fs_read_file(path, &b, 1 << 22, err) < 0) {
        buf_free(&b);
        return -1;
    }
    int rc = diskstats_parse(buf_cstr(&b), name, st);
    buf_free(&b);
    if (rc < 0)
        return err_set(err, "device %s is not listed in %s", name, path);
    return 0;
}

uint64_t diskstats_delta(uint64_t before, uint64_t after)
{
    if (after >= before)
        return after - before;
    if (before <= 0xffffffffull)
        return after + 0x100000000ull - before; /* a 32-bit counter wrapped */
    return 0;                                   /* a reset (device re-created) */
}

void diskstats_compute(const struct blockdev_stat *b, const struct blockdev_stat *a, double dt_s,
                       struct iostat_x *o)
{
    memset(o, 0, sizeof *o);
    if (dt_s <= 0)
        return;
    double dt_ms = dt_s * 1000.0;
    double rio = (double)diskstats_delta(b->read_ios, a->read_ios);
    double wio = (double)diskstats_delta(b->write_ios, a->write_ios);
    double rsec = (double)diskstats_delta(b->read_sectors, a->read_sectors);
    double wsec = (double)diskstats_delta(b->write_sectors, a->write_sectors);
    double rticks = (double)diskstats_delta(b->read_ticks, a->read_ticks);
    double wticks = (double)diskstats_delta(b->write_ticks, a->write_ticks);
    double ioticks = (double)diskstats_delta(b->io_ticks, a->io_ticks);
    double queue = (double)diskstats_delta(b->time_in_queue, a->time_in_queue);
    o->r_s = rio / dt_s;
    o->w_s = wio / dt_s;
    o->rmb_s = rsec / 2048.0 / dt_s;
    o->wmb_s = wsec / 2048.0 / dt_s;
    o->rareq_sz = rio > 0 ? rsec / 2.0 / rio : 0;
    o->wareq_sz = wio > 0 ? wsec / 2.0 / wio : 0;
    o->areq_sz = rio + wio > 0 ? (rsec + wsec) / 2.0 / (rio + wio) : 0;
    o->r_await = rio > 0 ? rticks / rio : 0;
    o->w_await = wio > 0 ? wticks / wio : 0;
    o->aqu_sz = queue / dt_ms;
    o->util = ioticks / dt_ms * 100.0;
    if (o->util > 100)
        o->util = 100;
}
