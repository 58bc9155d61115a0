/* Unit tests for percentiles (linear interpolation, as numpy's default). */
#include "test_common.h"

#include <stdint.h>

#include "analysis/stats.h"
#include "util/rng.h"

#include <math.h>

static void test_interpolation(void **state)
{
    (void)state;
    double v[] = {4, 1, 3, 2};
    struct dstats s;
    stats_compute(v, 4, &s);
    assert_true(s.min == 1 && s.max == 4);
    assert_true(s.p50 == 2.5);
    /* numpy.percentile([1,2,3,4], 90) = 3.7 ; 95 = 3.85 ; 99 = 3.97 */
    assert_true(fabs(s.p90 - 3.7) < 1e-12);
    assert_true(fabs(s.p95 - 3.85) < 1e-12);
    assert_true(fabs(s.p99 - 3.97) < 1e-12);
    assert_true(s.mean == 2.5);
}

static void test_single_and_empty(void **state)
{
    (void)state;
    double one[] = {7};
    struct dstats s;
    stats_compute(one, 1, &s);
    assert_true(s.p50 == 7 && s.p99 == 7 && s.min == 7);
    stats_compute(NULL, 0, &s);
    json_t *j = stats_json(&s);
    assert_int_equal(json_object_size(j), 0); /* {} when empty */
    json_decref(j);
    stats_compute(one, 1, &s);
    j = stats_json(&s);
    assert_int_equal(json_object_size(j), 7);
    json_decref(j);
}

static void test_many(void **state)
{
    (void)state;
    struct dvec d = {0};
    for (int i = 100; i >= 0; i--)
        dvec_push(&d, i);
    struct dstats s;
    stats_compute(d.v, d.n, &s);
    assert_true(s.p50 == 50 && s.p90 == 90 && s.p99 == 99);
    assert_true(stats_percentile_sorted(d.v, d.n, 12.5) == 12.5);
    dvec_free(&d);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Large sets go through the radix sort: same order as qsort, negatives, zeros and tiny and huge
 * magnitudes included. */
static void test_large_sets_sort_like_qsort(void **state)
{
    (void)state;
    enum { N = 20000 };
    double *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double u = (double)(x >> 11) / 9007199254740992.0;
        switch (i % 5) {
        case 0:
            a[i] = u * 1000;
            break;
        case 1:
            a[i] = -u * 1e-3;
            break;
        case 2:
            a[i] = (double)(x % 7);
            break;
        case 3:
            a[i] = i % 2 ? -0.0 : 1e300 * u;
            break;
        default:
            a[i] = (double)(x % 1000000) / 1e6;
            break;
        }
    }
    memcpy(b, a, N * sizeof *a);
    qsort(b, N, sizeof *b, cmp_d);
    struct dstats st;
    stats_compute(a, N, &st);
    for (size_t i = 0; i < N; i++)
        assert_true(a[i] == b[i]);
    for (size_t i = 1; i < N; i++)
        assert_true(a[i - 1] <= a[i]);
    assert_true(st.min == b[0] && st.max == b[N - 1]);
    free(a);
    free(b);
}

/* The bootstrap's intervals: exact for constant runs, around the mean otherwise, the same for
 * the same seed, and undefined where a side is empty or every resample divides by 0. */
static void test_bootstrap(void **state)
{
    (void)state;
    double a[] = {10, 10, 10}, b[] = {20, 20, 20}, lo, hi;
    assert_int_equal(stats_bootstrap_ci(a, 3, b, 3, 2000, 1, &lo, &hi), 0);
    assert_float_equal(lo, 0.5, 1e-12);
    assert_float_equal(hi, 0.5, 1e-12);
    double x[] = {9, 10, 11, 10, 12, 8}, y[] = {10, 11, 9, 10, 8, 12};
    assert_int_equal(stats_bootstrap_ci(x, 6, NULL, 0, 10000, 7, &lo, &hi), 0);
    assert_true(lo < 10 && hi > 10 && lo >= 8 && hi <= 12); /* the mean is 10 */
    double lo2, hi2;
    assert_int_equal(stats_bootstrap_ci(x, 6, NULL, 0, 10000, 7, &lo2, &hi2), 0);
    assert_float_equal(lo, lo2, 0);
    assert_float_equal(hi, hi2, 0);
    /* the same distribution: the ratio's interval holds 1 */
    assert_int_equal(stats_bootstrap_ci(x, 6, y, 6, 10000, 3, &lo, &hi), 0);
    assert_true(lo < 1 && hi > 1);
    /* clearly apart: it does not */
    double fast[] = {50, 52, 49}, slow[] = {100, 98, 103};
    assert_int_equal(stats_bootstrap_ci(fast, 3, slow, 3, 10000, 3, &lo, &hi), 0);
    assert_true(hi < 1 && lo > 0.45);
    double zero[] = {0, 0};
    assert_int_equal(stats_bootstrap_ci(a, 3, zero, 2, 100, 1, &lo, &hi), -1);
    assert_int_equal(stats_bootstrap_ci(a, 0, NULL, 0, 100, 1, &lo, &hi), -1);
    assert_int_equal(stats_bootstrap_ci(a, 3, b, 0, 100, 1, &lo, &hi), -1);
}

/* A lognormal draw: exp(mu + sigma * N(0,1)) (Box-Muller on splitmix64). */
static double lognormal(uint64_t *st, double mu, double sigma)
{
    double u1 = splitmix64_unit(st), u2 = splitmix64_unit(st);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return exp(mu + sigma * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
}

/* Per-repeat medians at 3 repeats a side, as kvbench compare sees them (10 % spread): 20 A/A
 * comparisons call "no difference" at least 18 times, and a 20 % shift is found at least 18 of 20
 * times at a 3 % spread. The Welch interval holds its coverage where a bootstrap over 3 values
 * (an interval between the extremes) does not. */
static void test_welch_log_ratio(void **state)
{
    (void)state;
    uint64_t st = 20261206;
    int same = 0, found = 0, boot_same = 0;
    for (int trial = 0; trial < 20; trial++) {
        double a[3], b[3];
        for (int i = 0; i < 3; i++) {
            a[i] = lognormal(&st, log(100), 0.10);
            b[i] = lognormal(&st, log(100), 0.10);
        }
        struct ratio_ci ci;
        assert_int_equal(stats_log_ratio_ci(a, 3, b, 3, &ci), 0);
        same += ci.lo <= 1 && ci.hi >= 1;
        double lo, hi;
        if (stats_bootstrap_ci(a, 3, b, 3, 2000, 7 + (uint64_t)trial, &lo, &hi) == 0)
            boot_same += lo <= 1 && hi >= 1;
        for (int i = 0; i < 3; i++) {
            a[i] = lognormal(&st, log(80), 0.03); /* 20 % faster */
            b[i] = lognormal(&st, log(100), 0.03);
        }
        assert_int_equal(stats_log_ratio_ci(a, 3, b, 3, &ci), 0);
        found += ci.hi < 1;
    }
    print_message("A/A no difference %d/20 (bootstrap %d/20); 20%% shift found %d/20\n", same,
                  boot_same, found);
    assert_true(same >= 18);
    assert_true(found >= 18);
    /* exact figures: identical sides, a known shift */
    double x[] = {100, 110, 90}, y[] = {50, 55, 45};
    struct ratio_ci ci;
    assert_int_equal(stats_log_ratio_ci(y, 3, x, 3, &ci), 0);
    assert_float_equal(ci.ratio, 0.5, 1e-12);
    assert_true(ci.lo < 0.5 && ci.hi > 0.5 && ci.hi < 1);
    assert_int_equal(stats_log_ratio_ci(x, 3, x, 3, &ci), 0);
    assert_float_equal(ci.ratio, 1, 1e-12);
    /* undefined: too few values, a value of 0 */
    double z[] = {0, 1, 2};
    assert_int_equal(stats_log_ratio_ci(x, 1, x, 3, &ci), -1);
    assert_int_equal(stats_log_ratio_ci(z, 3, x, 3, &ci), -1);
    assert_false(ci.ok);
    assert_float_equal(stats_t975(4), 2.776, 1e-9);
    assert_float_equal(stats_t975(4.9), 2.776, 1e-9); /* rounds down: the wider */
    assert_true(isnan(stats_t975(0.5)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap),     cmocka_unit_test(test_large_sets_sort_like_qsort),
        cmocka_unit_test(test_interpolation), cmocka_unit_test(test_single_and_empty),
        cmocka_unit_test(test_many),          cmocka_unit_test(test_welch_log_ratio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
