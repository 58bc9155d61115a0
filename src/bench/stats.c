/*
 * stats.c - percentiles and summaries.
 */
#include "bench/stats.h"

#include "util/rng.h"

#include <math.h>
#include <stdlib.h>
#include <stdint.h>
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

/* Doubles sorted through their bit patterns (LSD radix, 16 bits a pass): a streamed run has
 * hundreds of ITL values per request, and qsort's comparator calls dominated the summary. The
 * order is the comparator's (-0.0 first among zeros; NaN never reaches here). */
uint64_t stats_order_key(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b >> 63 ? ~b : b | (1ull << 63);
}

double stats_key_value(uint64_t k)
{
    uint64_t b = k >> 63 ? k & ~(1ull << 63) : ~k;
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

static void sort_doubles(double *v, size_t n)
{
    uint64_t *a = n >= 1024 ? malloc(n * sizeof *a) : NULL;
    uint64_t *t = a ? malloc(n * sizeof *t) : NULL;
    size_t *count = t ? calloc(65536, sizeof *count) : NULL;
    if (!count) {
        free(a);
        free(t);
        qsort(v, n, sizeof *v, cmp);
        return;
    }
    for (size_t i = 0; i < n; i++)
        a[i] = stats_order_key(v[i]);
    for (int shift = 0; shift < 64; shift += 16) {
        memset(count, 0, 65536 * sizeof *count);
        for (size_t i = 0; i < n; i++)
            count[(a[i] >> shift) & 0xffff]++;
        if (count[(a[0] >> shift) & 0xffff] == n)
            continue; /* every key has this digit: the pass would change nothing */
        size_t sum = 0;
        for (size_t d = 0; d < 65536; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            t[count[(a[i] >> shift) & 0xffff]++] = a[i];
        uint64_t *sw = a;
        a = t;
        t = sw;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = stats_key_value(a[i]);
    free(a);
    free(t);
    free(count);
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
    sort_doubles(values, n);
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

static double resample_mean(const double *v, size_t n, uint64_t *st)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[splitmix64(st) % n];
    return sum / (double)n;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int stats_bootstrap_ci(const double *a, size_t na, const double *b, size_t nb, size_t resamples,
                       uint64_t seed, double *lo, double *hi)
{
    if (!na || (b && !nb) || !resamples)
        return -1;
    double *r = malloc(resamples * sizeof *r);
    if (!r)
        return -1;
    uint64_t st = seed;
    size_t n = 0;
    for (size_t k = 0; k < resamples; k++) {
        double ma = resample_mean(a, na, &st);
        if (!b) {
            r[n++] = ma;
            continue;
        }
        double mb = resample_mean(b, nb, &st);
        if (mb != 0)
            r[n++] = ma / mb;
    }
    if (n == 0) {
        free(r);
        return -1;
    }
    qsort(r, n, sizeof *r, cmp_dbl);
    *lo = stats_percentile_sorted(r, n, 2.5);
    *hi = stats_percentile_sorted(r, n, 97.5);
    free(r);
    return 0;
}
