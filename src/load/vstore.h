/*
 * vstore.h - a store of measured values (milliseconds) whose memory does not grow with the run.
 *
 * Values are kept in a buffer of VSTORE_BUFFER values; when it fills, the buffer is appended to an
 * unlinked temporary file in the store's directory (the run's results directory) and reused. The
 * statistics are exact: small sets are sorted in memory, as stats_compute does; large sets are
 * read back in passes that select each percentile's neighbours by their bits (a radix selection,
 * 16 bits a pass), with memory bounded by the histograms, not by the number of values.
 */
#ifndef KVBENCH_LOAD_VSTORE_H
#define KVBENCH_LOAD_VSTORE_H

#include "analysis/stats.h"

#include <stdbool.h>
#include <stddef.h>

struct vstore {
    const char *dir; /* where values spill; NULL: the system's temporary directory */
    double *buf;
    size_t n_buf;
    int fd;        /* the spill file, when has_file */
    bool has_file; /* a zeroed struct vstore is an empty store */
    size_t n_file; /* values in the file */
    size_t n;      /* values in all */
    double min, max;
    bool failed; /* a spill failed: values were lost, the statistics say so */
};

void vstore_init(struct vstore *v, const char *dir);
/* 0, or -1 when the value could not be kept (out of memory, a failed spill: v->failed). */
int vstore_push(struct vstore *v, double x);
int vstore_push_n(struct vstore *v, const double *x, size_t n);
void vstore_free(struct vstore *v);

/* Exact statistics over the union of k stores (the threads' stores of one phase, or the phases
 * of the overall summary). 0, or -1 when a store failed or a read-back failed (s->n is then 0). */
int vstore_stats(struct vstore *const *vs, size_t k, struct dstats *s);

/* Tests only: buffer size and the largest set sorted in memory (0 restores the defaults). */
void vstore_tune(size_t buffer_values, size_t sort_max);

#endif
