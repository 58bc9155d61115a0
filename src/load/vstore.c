/*
 * vstore.c - measured values spilled to an unlinked file; exact percentiles by radix selection.
 */
#include "load/vstore.h"

#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VSTORE_BUFFER   65536      /* values buffered per store: 512 KiB */
#define VSTORE_SORT_MAX (1u << 17) /* sets up to this many values (1 MiB) are sorted in memory */
#define READ_CHUNK      65536      /* values read back at a time */
#define N_TARGETS       8          /* ranks of p50, p90, p95, p99 and their neighbours */
#define DIGITS          65536      /* 16 bits a pass, four passes */

static size_t buffer_values = VSTORE_BUFFER, sort_max = VSTORE_SORT_MAX;

void vstore_tune(size_t buf_values, size_t sort_maximum)
{
    buffer_values = buf_values ? buf_values : VSTORE_BUFFER;
    sort_max = sort_maximum ? sort_maximum : VSTORE_SORT_MAX;
}

void vstore_init(struct vstore *v, const char *dir)
{
    memset(v, 0, sizeof *v);
    v->dir = dir;
}

void vstore_free(struct vstore *v)
{
    free(v->buf);
    if (v->has_file)
        close(v->fd);
    vstore_init(v, v->dir);
}

static int open_spill(const char *dir)
{
    if (!dir || !*dir)
        dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    /* a file system without O_TMPFILE: a named file, unlinked at once */
    char path[4096];
    snprintf(path, sizeof path, "%s/.kvbench-values-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

static int spill(struct vstore *v)
{
    if (!v->has_file) {
        v->fd = open_spill(v->dir);
        if (v->fd < 0) {
            log_error("cannot spill measured values to %s: %s", v->dir ? v->dir : "$TMPDIR",
                      strerror(errno));
            return -1;
        }
        v->has_file = true;
    }
    const char *p = (const char *)v->buf;
    size_t left = v->n_buf * sizeof *v->buf;
    off_t off = (off_t)(v->n_file * sizeof *v->buf);
    while (left) {
        ssize_t w = pwrite(v->fd, p, left, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log_error("cannot spill measured values: %s", w < 0 ? strerror(errno) : "short write");
            return -1;
        }
        p += w;
        left -= (size_t)w;
        off += w;
    }
    v->n_file += v->n_buf;
    v->n_buf = 0;
    return 0;
}

int vstore_push(struct vstore *v, double x)
{
    if (v->failed)
        return -1;
    if (!v->buf) {
        v->buf = malloc(buffer_values * sizeof *v->buf);
        if (!v->buf) {
            v->failed = true;
            return -1;
        }
    }
    if (v->n_buf == buffer_values && spill(v) < 0) {
        v->failed = true;
        return -1;
    }
    v->buf[v->n_buf++] = x;
    if (v->n == 0 || x < v->min)
        v->min = x;
    if (v->n == 0 || x > v->max)
        v->max = x;
    v->n++;
    return 0;
}

int vstore_push_n(struct vstore *v, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (vstore_push(v, x[i]) < 0)
            return -1;
    return 0;
}

/* ------------------------------------------------------------ reading back */

/* Calls fn on every value of every store, a chunk at a time. */
typedef void (*chunk_fn)(void *user, const double *x, size_t n);

static int each_chunk(struct vstore *const *vs, size_t k, double *tmp, chunk_fn fn, void *user)
{
    for (size_t i = 0; i < k; i++) {
        const struct vstore *v = vs[i];
        for (size_t done = 0; done < v->n_file;) {
            size_t want = v->n_file - done < READ_CHUNK ? v->n_file - done : READ_CHUNK;
            ssize_t r = pread(v->fd, tmp, want * sizeof *tmp, (off_t)(done * sizeof *tmp));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0 || (size_t)r % sizeof *tmp) {
                log_error("cannot read back measured values: %s",
                          r < 0 ? strerror(errno) : "short read");
                return -1;
            }
            fn(user, tmp, (size_t)r / sizeof *tmp);
            done += (size_t)r / sizeof *tmp;
        }
        if (v->n_buf)
            fn(user, v->buf, v->n_buf);
    }
    return 0;
}

struct gather {
    double *all;
    size_t n;
    double sum;
};

static void gather_fn(void *user, const double *x, size_t n)
{
    struct gather *g = user;
    memcpy(g->all + g->n, x, n * sizeof *x);
    g->n += n;
}

struct select {
    size_t n_t;
    uint64_t prefix[N_TARGETS]; /* the key's bits decided so far */
    size_t rank[N_TARGETS];     /* rank left within the values that share the prefix */
    size_t *hist[N_TARGETS];
    int shift; /* this pass's digit: bits shift .. shift+15 */
    double sum;
    bool summing;
};

static void select_fn(void *user, const double *x, size_t n)
{
    struct select *s = user;
    for (size_t i = 0; i < n; i++) {
        if (s->summing)
            s->sum += x[i];
        uint64_t key = stats_order_key(x[i]);
        uint64_t high = s->shift == 48 ? 0 : key >> (s->shift + 16);
        unsigned digit = (unsigned)(key >> s->shift) & 0xffff;
        for (size_t t = 0; t < s->n_t; t++)
            if (high == s->prefix[t])
                s->hist[t][digit]++;
    }
}

/* The values at ranks[] (0-based, ascending order) of the union, in four passes. */
static int select_ranks(struct vstore *const *vs, size_t k, const size_t *ranks, size_t n_ranks,
                        double *out, double *sum)
{
    struct select s = {.n_t = n_ranks, .summing = true};
    double *tmp = malloc(READ_CHUNK * sizeof *tmp);
    int rc = tmp ? 0 : -1;
    for (size_t t = 0; t < n_ranks && rc == 0; t++) {
        s.rank[t] = ranks[t];
        s.hist[t] = malloc(DIGITS * sizeof *s.hist[t]);
        if (!s.hist[t])
            rc = -1;
    }
    for (s.shift = 48; s.shift >= 0 && rc == 0; s.shift -= 16) {
        for (size_t t = 0; t < n_ranks; t++)
            memset(s.hist[t], 0, DIGITS * sizeof *s.hist[t]);
        if (each_chunk(vs, k, tmp, select_fn, &s) < 0) {
            rc = -1;
            break;
        }
        s.summing = false;
        for (size_t t = 0; t < n_ranks; t++) {
            size_t below = 0, d = 0;
            while (d < DIGITS - 1 && below + s.hist[t][d] <= s.rank[t])
                below += s.hist[t][d++];
            s.rank[t] -= below;
            s.prefix[t] = (s.prefix[t] << 16) | d;
        }
    }
    for (size_t t = 0; t < n_ranks; t++) {
        if (rc == 0)
            out[t] = stats_key_value(s.prefix[t]);
        free(s.hist[t]);
    }
    free(tmp);
    *sum = s.sum;
    return rc;
}

static double interpolate(const double *at, size_t n, double p, const size_t *ranks, size_t n_r)
{
    double rank = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)rank;
    double v_lo = NAN, v_hi = NAN;
    for (size_t t = 0; t < n_r; t++) {
        if (ranks[t] == lo)
            v_lo = at[t];
        if (ranks[t] == lo + 1)
            v_hi = at[t];
    }
    if (lo >= n - 1)
        return v_lo;
    return v_lo + (v_hi - v_lo) * (rank - (double)lo);
}

int vstore_stats(struct vstore *const *vs, size_t k, struct dstats *s)
{
    memset(s, 0, sizeof *s);
    size_t n = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < k; i++) {
        if (vs[i]->failed)
            return -1;
        n += vs[i]->n;
        if (vs[i]->n && vs[i]->min < lo)
            lo = vs[i]->min;
        if (vs[i]->n && vs[i]->max > hi)
            hi = vs[i]->max;
    }
    if (n == 0)
        return 0;
    if (n <= sort_max) {
        struct gather g = {.all = malloc(n * sizeof(double))};
        double *tmp = g.all ? malloc(READ_CHUNK * sizeof *tmp) : NULL;
        int rc = tmp ? each_chunk(vs, k, tmp, gather_fn, &g) : -1;
        free(tmp);
        if (rc == 0)
            stats_compute(g.all, g.n, s);
        free(g.all);
        return rc;
    }
    static const double ps[] = {50, 90, 95, 99};
    size_t ranks[N_TARGETS], n_r = 0;
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        size_t r = (size_t)(ps[i] / 100.0 * (double)(n - 1));
        ranks[n_r++] = r;
        ranks[n_r++] = r + 1 < n ? r + 1 : r;
    }
    double at[N_TARGETS], sum = 0;
    if (select_ranks(vs, k, ranks, n_r, at, &sum) < 0)
        return -1;
    s->n = n;
    s->min = lo;
    s->max = hi;
    s->mean = sum / (double)n;
    s->p50 = interpolate(at, n, 50, ranks, n_r);
    s->p90 = interpolate(at, n, 90, ranks, n_r);
    s->p95 = interpolate(at, n, 95, ranks, n_r);
    s->p99 = interpolate(at, n, 99, ranks, n_r);
    return 0;
}
