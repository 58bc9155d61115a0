/*
 * Unit tests for analysis/fit: least squares on known lines (exact, and a worked example whose
 * standard errors are computed by hand), weights, degenerate inputs (one point, equal x, NaN, two
 * points with no residual degree of freedom), where two lines cross and its error, and the
 * break-even judgement over measured lengths.
 */
#include "test_common.h"

#include "analysis/fit.h"

#include <math.h>

static void test_exact_line(void **state)
{
    (void)state;
    double x[] = {1024, 2048, 4096, 8192, 16384}, y[5];
    for (size_t i = 0; i < 5; i++)
        y[i] = 1.5 + 0.0125 * x[i]; /* 1.5 ms + 12.5 µs per token */
    struct linfit f;
    assert_int_equal(fit_line(x, y, NULL, 5, &f), 0);
    assert_true(f.ok);
    assert_int_equal(f.n, 5);
    assert_true(fabs(f.a - 1.5) < 1e-9 && fabs(f.b - 0.0125) < 1e-12);
    assert_true(f.se_a < 1e-9 && f.se_b < 1e-12);
    assert_true(fabs(f.r2 - 1) < 1e-12);
    assert_true(fabs(fit_at(&f, 1000) - 14) < 1e-9);
}

/* x 1..4, y 1 3 2 5: b = 5.5 / 5, a = 0, s² = 2.7 / 2, se_b = √(s²/5), se_a = √(s² (1/4 +
 * 2.5²/5)), cov = -2.5 s² / 5, R² = 1 - 2.7 / 8.75. */
static void test_worked_example(void **state)
{
    (void)state;
    double x[] = {1, 2, 3, 4}, y[] = {1, 3, 2, 5};
    struct linfit f;
    assert_int_equal(fit_line(x, y, NULL, 4, &f), 0);
    assert_true(fabs(f.b - 1.1) < 1e-12 && fabs(f.a) < 1e-12);
    assert_true(fabs(f.se_b - sqrt(0.27)) < 1e-12);
    assert_true(fabs(f.se_a - sqrt(2.025)) < 1e-12);
    assert_true(fabs(f.cov_ab + 0.675) < 1e-12);
    assert_true(fabs(f.r2 - (1 - 2.7 / 8.75)) < 1e-12);
    /* equal weights change nothing; a zero weight drops the point, as a NaN does */
    double w1[] = {2, 2, 2, 2}, w0[] = {1, 1, 1, 0}, yn[] = {1, 3, 2, NAN};
    struct linfit g, h, k;
    assert_int_equal(fit_line(x, y, w1, 4, &g), 0);
    assert_true(fabs(g.b - f.b) < 1e-12 && fabs(g.se_b - f.se_b) < 1e-12);
    assert_int_equal(fit_line(x, y, w0, 4, &h), 0);
    assert_int_equal(fit_line(x, yn, NULL, 4, &k), 0);
    assert_int_equal(h.n, 3);
    assert_int_equal(k.n, 3);
    assert_true(fabs(h.b - 0.5) < 1e-12 && fabs(h.b - k.b) < 1e-12 && fabs(h.a - k.a) < 1e-12);
    /* weights pull the line towards the heavy points */
    double wh[] = {1, 1, 1, 100};
    assert_int_equal(fit_line(x, y, wh, 4, &g), 0);
    assert_true(fabs(fit_at(&g, 4) - 5) < fabs(fit_at(&f, 4) - 5));
}

static void test_degenerate(void **state)
{
    (void)state;
    struct linfit f;
    double x1[] = {1024}, y1[] = {10};
    assert_int_equal(fit_line(x1, y1, NULL, 1, &f), -1);
    assert_false(f.ok);
    assert_int_equal(f.n, 1);
    assert_true(isnan(f.b));
    assert_int_equal(fit_line(x1, y1, NULL, 0, &f), -1);
    double xe[] = {2048, 2048, 2048}, ye[] = {1, 2, 3};
    assert_int_equal(fit_line(xe, ye, NULL, 3, &f), -1);
    assert_false(f.ok);
    double xn[] = {NAN, 1, INFINITY}, yn[] = {1, 2, 3};
    assert_int_equal(fit_line(xn, yn, NULL, 3, &f), -1);
    assert_int_equal(f.n, 1);
    /* two points: the line, but no error (no residual degree of freedom) */
    double x2[] = {1, 3}, y2[] = {2, 6};
    assert_int_equal(fit_line(x2, y2, NULL, 2, &f), 0);
    assert_true(f.ok && fabs(f.b - 2) < 1e-12 && fabs(f.a) < 1e-12);
    assert_true(isnan(f.se_a) && isnan(f.se_b) && isnan(f.cov_ab));
    /* every y equal: a flat line, R² undefined */
    double yf[] = {4, 4};
    assert_int_equal(fit_line(x2, yf, NULL, 2, &f), 0);
    assert_true(f.b == 0 && isnan(f.r2));
}

static struct linfit line(double a, double b, double se_a, double se_b, size_t n)
{
    return (struct linfit){
        .ok = true, .n = n, .a = a, .b = b, .se_a = se_a, .se_b = se_b, .cov_ab = 0};
}

static void test_crossing(void **state)
{
    (void)state;
    struct linfit warm = line(10, 1, 0, 0, 5), cold = line(0, 3, 0, 0, 5);
    double x, se;
    assert_int_equal(fit_crossing(&warm, &cold, &x, &se), 0);
    assert_true(fabs(x - 5) < 1e-12 && fabs(se) < 1e-12);
    /* delta method: var x = (var Δa + x² var Δb) / Δb² with independent fits, no covariance */
    warm = line(10, 1, 1, 0.1, 5);
    cold = line(0, 3, 1, 0.1, 5);
    assert_int_equal(fit_crossing(&warm, &cold, &x, &se), 0);
    assert_true(fabs(se - sqrt((2 + 25 * 0.02) / 4)) < 1e-12);
    struct linfit par = line(4, 3, 0, 0, 5), bad = {.ok = false};
    assert_int_equal(fit_crossing(&par, &cold, &x, &se), -1);
    assert_true(isnan(x));
    assert_int_equal(fit_crossing(&bad, &cold, &x, &se), -1);
}

static void test_breakeven(void **state)
{
    (void)state;
    double xs[] = {1, 2, 4, 8};
    struct breakeven be;
    struct linfit cold = line(1, 3, 0.1, 0.01, 4);
    /* flatter and cheaper everywhere: every length; the crossing lies below the ladder */
    struct linfit w = line(1.5, 1, 0.1, 0.01, 4);
    assert_int_equal(fit_breakeven(&w, &cold, xs, 4, &be), BE_EVERY);
    assert_true(fabs(be.crossing - 0.25) < 1e-12);
    assert_true(be.lo < be.crossing && be.crossing < be.hi);
    assert_string_equal(breakeven_kind_name(be.kind), "every_measured_length");
    /* steeper: none */
    w = line(1, 4, 0.1, 0.01, 4);
    assert_int_equal(fit_breakeven(&w, &cold, xs, 4, &be), BE_NONE);
    assert_string_equal(breakeven_kind_name(be.kind), "none_of_the_measured_lengths");
    /* a fixed cost that a flatter line earns back from x = 5 */
    w = line(11, 1, 0.1, 0.01, 4);
    assert_int_equal(fit_breakeven(&w, &cold, xs, 4, &be), BE_FROM);
    assert_true(fabs(be.crossing - 5) < 1e-12);
    /* cheaper at first, steeper: below x = 10/3 only */
    struct linfit c2 = line(10, 1, 0.1, 0.01, 4);
    w = line(0, 4, 0.1, 0.01, 4);
    assert_int_equal(fit_breakeven(&w, &c2, xs, 4, &be), BE_BELOW);
    assert_true(fabs(be.crossing - 10.0 / 3) < 1e-12);
    /* two lengths: a crossing but no interval (no degree of freedom) */
    w = line(11, 1, 0.1, 0.01, 2);
    assert_int_equal(fit_breakeven(&w, &cold, xs, 4, &be), BE_FROM);
    assert_true(isnan(be.lo) && isnan(be.hi));
    /* nothing to judge */
    struct linfit bad = {.ok = false};
    assert_int_equal(fit_breakeven(&bad, &cold, xs, 4, &be), BE_UNKNOWN);
    assert_int_equal(fit_breakeven(&w, &cold, xs, 0, &be), BE_UNKNOWN);
    assert_string_equal(breakeven_kind_name(BE_UNKNOWN), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_line), cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_degenerate), cmocka_unit_test(test_crossing),
        cmocka_unit_test(test_breakeven),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
