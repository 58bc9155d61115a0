/*
 * fit.h - a straight line y = a + b x fitted by least squares, with the fit's standard errors,
 * and where two such lines cross (the break-even scenario's TTFT against context length: a is
 * the fixed cost, b the cost per token).
 */
#ifndef KVBENCH_ANALYSIS_FIT_H
#define KVBENCH_ANALYSIS_FIT_H

#include <stdbool.h>
#include <stddef.h>

struct linfit {
    bool ok;           /* a and b are defined: >= 2 points at >= 2 distinct x */
    size_t n;          /* points used (pairs with a NaN, or a weight <= 0, are left out) */
    double a, b;       /* intercept and slope */
    double se_a, se_b; /* standard errors; NaN with 2 points (no residual degree of freedom) */
    double cov_ab;     /* covariance of a and b; NaN when se is */
    double r2;         /* coefficient of determination; NaN when every y is equal */
};

/* Fit y = a + b x over n points. w: weights (inverse variances, up to a common factor: the
 * residual variance scales them), NULL for ordinary least squares. Returns 0, or -1 when the
 * line is undefined (fewer than 2 usable points, or every x equal): out->ok false then. */
int fit_line(const double *x, const double *y, const double *w, size_t n, struct linfit *out);

/* Where line w crosses line c: the x at which a_w + b_w x = a_c + b_c x, and its standard error
 * by the delta method (the two fits independent). Returns 0, or -1 when the lines are parallel
 * (equal slopes) or either is not ok. se is NaN when either fit's is. */
int fit_crossing(const struct linfit *w, const struct linfit *c, double *x, double *se);

/* The line's value at x. */
double fit_at(const struct linfit *f, double x);

/* Where a warm line (onboarding) beats a cold one (recomputing) over the measured x: at every
 * one, at none, from the crossing up (the warm line is flatter) or below it (steeper). */
enum breakeven_kind { BE_UNKNOWN, BE_EVERY, BE_NONE, BE_FROM, BE_BELOW };
struct breakeven {
    enum breakeven_kind kind;
    double crossing, se; /* where the lines cross (NaN: parallel), and its standard error */
    double lo, hi;       /* its 95 % interval (t with the smaller fit's n - 2 degrees); NaN */
};
/* Judge warm against cold at each of xs[0..n) (warm beats cold where its line is lower).
 * BE_UNKNOWN when either fit is not ok or n is 0. Returns the kind. */
enum breakeven_kind fit_breakeven(const struct linfit *warm, const struct linfit *cold,
                                  const double *xs, size_t n, struct breakeven *out);
/* "every_measured_length", "none_of_the_measured_lengths", "from_length", "below_length",
 * "unknown". */
const char *breakeven_kind_name(enum breakeven_kind k);

#endif
