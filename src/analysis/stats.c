/*
 * stats.c - percentiles and summaries.
 */
#include "analysis/stats.h"

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

double stats_mean(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return n ? s / (double)n : NAN;
}

double stats_t975(double df)
{
    /* t_0.975 for df 1..30, then 40, 60, 120; beyond, the normal's 1.96 */
    static const double T[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                               2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                               2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                               2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
    if (!(df >= 1))
        return NAN;
    if (df < 31)
        return T[(size_t)floor(df) - 1];
    if (df < 40)
        return 2.042; /* between 30 and 40: the wider, df 30 */
    if (df < 60)
        return 2.021;
    if (df < 120)
        return 2.000;
    return df < 1e6 ? 1.980 : 1.960;
}

static void log_mean_var(const double *v, size_t n, double *mean, double *var)
{
    double m = 0, q = 0;
    for (size_t i = 0; i < n; i++)
        m += log(v[i]);
    m /= (double)n;
    for (size_t i = 0; i < n; i++)
        q += (log(v[i]) - m) * (log(v[i]) - m);
    *mean = m;
    *var = n > 1 ? q / (double)(n - 1) : 0;
}

int stats_log_ratio_ci(const double *a, size_t na, const double *b, size_t nb, struct ratio_ci *out)
{
    out->ok = false;
    if (na < 2 || nb < 2)
        return -1;
    for (size_t i = 0; i < na; i++)
        if (!(a[i] > 0) || !isfinite(a[i]))
            return -1;
    for (size_t i = 0; i < nb; i++)
        if (!(b[i] > 0) || !isfinite(b[i]))
            return -1;
    double ma, va, mb, vb;
    log_mean_var(a, na, &ma, &va);
    log_mean_var(b, nb, &mb, &vb);
    double sa = va / (double)na, sb = vb / (double)nb, se2 = sa + sb;
    double d = ma - mb;
    out->ratio = exp(d);
    if (se2 <= 0) {
        /* no spread on either side: the interval is the point */
        out->lo = out->hi = out->ratio;
        out->df = (double)(na + nb - 2);
        out->ok = true;
        return 0;
    }
    double den =
        (sa > 0 ? sa * sa / (double)(na - 1) : 0) + (sb > 0 ? sb * sb / (double)(nb - 1) : 0);
    out->df = den > 0 ? se2 * se2 / den : (double)(na + nb - 2);
    double t = stats_t975(out->df), half = t * sqrt(se2);
    out->lo = exp(d - half);
    out->hi = exp(d + half);
    out->ok = true;
    return 0;
}
