/*
 * stats.h - summary statistics with linear-interpolated percentiles (numpy's default method:
 * rank = p/100 × (n-1), interpolated between neighbours).
 */
#ifndef KVBENCH_ANALYSIS_STATS_H
#define KVBENCH_ANALYSIS_STATS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dvec {
    double *v;
    size_t n, cap;
};

int dvec_push(struct dvec *d, double x);
int dvec_extend(struct dvec *d, const double *x, size_t n);
void dvec_free(struct dvec *d);

struct dstats {
    size_t n;
    double min, p50, p90, p95, p99, max, mean;
};

/* Doubles as unsigned keys in the same order (-0.0 before 0.0; no NaN), and back: the radix
 * sort here and vstore's radix selection order by them. */
uint64_t stats_order_key(double x);
double stats_key_value(uint64_t k);
/* Percentile p (0..100) of sorted values. n must be > 0. */
double stats_percentile_sorted(const double *sorted, size_t n, double p);
/* Sorts values in place and fills s (s->n == 0 when n == 0). */
void stats_compute(double *values, size_t n, struct dstats *s);
/* {min, p50, p90, p95, p99, max, mean}, or {} when empty. New reference. */
/* v rounded to decimals places (summary.json rounds as the reference harness does). */
double round_to(double v, int decimals);
json_t *stats_json(const struct dstats *s);

/* Percentile-bootstrap 95 % interval: `resamples` times, draw na values of a and nb of b with
 * replacement (splitmix64 from seed: the same inputs give the same interval) and take
 * mean(a*) / mean(b*), or mean(a*) when b is NULL; the interval is the 2.5th..97.5th percentile
 * of those. Resamples whose mean(b*) is 0 are left out. Returns 0, or -1 when it is undefined
 * (an empty side, or no resample with mean(b*) != 0). */
int stats_bootstrap_ci(const double *a, size_t na, const double *b, size_t nb, size_t resamples,
                       uint64_t seed, double *lo, double *hi);

/* The mean of n values (NaN when n is 0). */
double stats_mean(const double *v, size_t n);

/* The two-sided 95 % quantile of Student's t with df degrees of freedom (t_0.975); a fractional
 * df rounds down (the wider interval). df < 1 gives NaN. */
double stats_t975(double df);

/* The ratio of a's geometric mean to b's with its 95 % interval, by Welch's t on the logs of the
 * values (one value per repeat: a method whose coverage holds at a handful of repeats, where a
 * bootstrap over 2 or 3 values does not). Every value must be > 0 and each side needs >= 2.
 * Returns 0, or -1 when undefined (out untouched but for ok = false). */
struct ratio_ci {
    bool ok;
    double ratio, lo, hi; /* exp(mean log a - mean log b) and its interval */
    double df;            /* Welch-Satterthwaite degrees of freedom */
};
int stats_log_ratio_ci(const double *a, size_t na, const double *b, size_t nb,
                       struct ratio_ci *out);

#endif
