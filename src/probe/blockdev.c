/*
 * blockdev.c - /sys/block and /sys/dev/block.
 *
 * A directory's device comes from stat(2): st_dev's major:minor names /sys/dev/block/M:m, a
 * symlink into the device tree; a partition there has a "partition" file and its parent
 * directory is the whole disk, which is what we report (the counters of the disk include all its
 * partitions).
 */
#include "probe/blockdev.h"

#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

int blockdev_parse_stat(const char *text, struct blockdev_stat *st)
{
    uint64_t v[11];
    int n = sscanf(text,
                   "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                   " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10]);
    if (n != 11)
        return -1;
    *st = (struct blockdev_stat){v[0], v[1], v[2], v[3], v[4],  v[5],
                                 v[6], v[7], v[8], v[9], v[10], 0};
    return 0;
}

static int read_small(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t r = fread(out, 1, n - 1, f);
    fclose(f);
    out[r] = '\0';
    return 0;
}

int blockdev_read(const char *sysfs_root, const char *name, struct blockdev_stat *st, char *err)
{
    char path[PATH_MAX], text[512];
    snprintf(path, sizeof path, "%s/class/block/%s/stat", sysfs_root, name);
    if (read_small(path, text, sizeof text) < 0)
        return err_set(err, "cannot read %s: %s", path, strerror(errno));
    if (blockdev_parse_stat(text, st) < 0)
        return err_set(err, "unexpected content in %s", path);
    st->wall_ns = clock_wall_ns();
    return 0;
}

static bool valid_name(const char *s)
{
    if (!*s || strlen(s) >= BLOCKDEV_NAME_LEN || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (const char *p = s; *p; p++)
        if (*p == '/')
            return false;
    return true;
}

static int busiest(const char *sysfs_root, char name[BLOCKDEV_NAME_LEN])
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/block", sysfs_root);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    uint64_t best = 0;
    bool found = false;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        if (n[0] == '.' || strncmp(n, "loop", 4) == 0 || strncmp(n, "ram", 3) == 0 ||
            strncmp(n, "zram", 4) == 0 || !valid_name(n))
            continue;
        struct blockdev_stat st;
        if (blockdev_read(sysfs_root, n, &st, NULL) < 0)
            continue;
        uint64_t work = st.read_sectors + st.write_sectors;
        if (!found || work > best) {
            best = work;
            found = true;
            snprintf(name, BLOCKDEV_NAME_LEN, "%.63s", n);
        }
    }
    closedir(d);
    return found ? 0 : -1;
}

int blockdev_resolve(const char *sysfs_root, const char *spec, const char *path,
                     char name[BLOCKDEV_NAME_LEN], const char **how, char *err)
{
    if (strcmp(spec, "auto") != 0) {
        if (!valid_name(spec))
            return err_set(err, "invalid block device name '%s'", spec);
        struct blockdev_stat st;
        if (blockdev_read(sysfs_root, spec, &st, NULL) < 0)
            return err_set(err, "block device '%s' does not exist (no %s/class/block/%s/stat)",
                           spec, sysfs_root, spec);
        snprintf(name, BLOCKDEV_NAME_LEN, "%.63s", spec);
        *how = "named";
        return 0;
    }
    struct stat sb;
    const char *target = path && stat(path, &sb) == 0 ? path : ".";
    if (stat(target, &sb) < 0)
        return err_set(err, "cannot stat %s: %s", target, strerror(errno));
    char link[PATH_MAX], real[PATH_MAX];
    snprintf(link, sizeof link, "%s/dev/block/%u:%u", sysfs_root, major(sb.st_dev),
             minor(sb.st_dev));
    if (realpath(link, real)) {
        char part[PATH_MAX + 16];
        snprintf(part, sizeof part, "%s/partition", real);
        char *base;
        char parent[PATH_MAX];
        if (fs_exists(part)) {
            snprintf(parent, sizeof parent, "%s", real);
            base = basename(dirname(parent));
        } else {
            snprintf(parent, sizeof parent, "%s", real);
            base = basename(parent);
        }
        struct blockdev_stat st;
        if (valid_name(base) && blockdev_read(sysfs_root, base, &st, NULL) == 0) {
            snprintf(name, BLOCKDEV_NAME_LEN, "%.63s", base);
            *how = "mount";
            return 0;
        }
    }
    if (busiest(sysfs_root, name) == 0) {
        *how = "busiest";
        return 0;
    }
    return err_set(err, "no block device found for %s", target);
}

json_t *blockdev_stat_json(const struct blockdev_stat *s)
{
    char ts[CLOCK_ISO_LEN];
    clock_iso_utc(s->wall_ns, ts);
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "read_ios",
                          (json_int_t)s->read_ios, "read_merges", (json_int_t)s->read_merges,
                          "read_sectors", (json_int_t)s->read_sectors, "read_ticks",
                          (json_int_t)s->read_ticks, "write_ios", (json_int_t)s->write_ios,
                          "write_merges", (json_int_t)s->write_merges, "write_sectors",
                          (json_int_t)s->write_sectors, "write_ticks", (json_int_t)s->write_ticks,
                          "in_flight", (json_int_t)s->in_flight, "io_ticks",
                          (json_int_t)s->io_ticks, "time_in_queue", (json_int_t)s->time_in_queue);
    json_object_set_new(o, "timestamp_utc", s->wall_ns ? json_string(ts) : json_null());
    return o;
}

static uint64_t d(uint64_t after, uint64_t before)
{
    return after >= before ? after - before : 0;
}

json_t *blockdev_delta_json(const struct blockdev_stat *b, const struct blockdev_stat *a)
{
    uint64_t rb = d(a->read_sectors, b->read_sectors) * 512;
    uint64_t wb = d(a->write_sectors, b->write_sectors) * 512;
    return json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:o, s:o}", "read_ios_delta",
                     (json_int_t)d(a->read_ios, b->read_ios), "write_ios_delta",
                     (json_int_t)d(a->write_ios, b->write_ios), "read_bytes_delta", (json_int_t)rb,
                     "write_bytes_delta", (json_int_t)wb, "read_mib_delta", (double)rb / 1048576.0,
                     "write_mib_delta", (double)wb / 1048576.0, "before", blockdev_stat_json(b),
                     "after", blockdev_stat_json(a));
}
