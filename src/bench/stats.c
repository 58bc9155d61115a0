/*
 * stats.c - percentiles and summaries.
 */
#include "bench/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int dvec_push(struct dvec *d, double x)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        double *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = x;
    return 0;
}

int dvec_extend(struct dvec *d, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (dvec_push(d, x[i]) < 0)
            return -1;
    return 0;
}

void dvec_free(struct dvec *d)
{
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double stats_percentile_sorted(const double *v, size_t n, double p)
{
    if (n == 1)
        return v[0];
    double rank = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)rank;
    if (lo >= n - 1)
        return v[n - 1];
    double frac = rank - (double)lo;
    return v[lo] + (v[lo + 1] - v[lo]) * frac;
}

void stats_compute(double *values, size_t n, struct dstats *s)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    if (!n)
        return;
    qsort(values, n, sizeof *values, cmp);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += values[i];
    s->min = values[0];
    s->max = values[n - 1];
    s->mean = sum / (double)n;
    s->p50 = stats_percentile_sorted(values, n, 50);
    s->p90 = stats_percentile_sorted(values, n, 90);
    s->p95 = stats_percentile_sorted(values, n, 95);
    s->p99 = stats_percentile_sorted(values, n, 99);
}

double round_to(double v, int decimals)
{
    double m = pow(10, decimals);
    return isfinite(v) ? round(v * m) / m : v;
}

json_t *stats_json(const struct dstats *s)
{
    if (!s->n)
        return json_object();
    /* milliseconds to the microsecond, as the reference harness rounds them */
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "min", round_to(s->min, 3), "p50",
                     round_to(s->p50, 3), "p90", round_to(s->p90, 3), "p95", round_to(s->p95, 3),
                     "p99", round_to(s->p99, 3), "max", round_to(s->max, 3), "mean",
                     round_to(s->mean, 3));
}
