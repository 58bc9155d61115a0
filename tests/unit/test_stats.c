/* Unit tests for percentiles (linear interpolation, as numpy's default). */
#include "test_common.h"

#include <stdint.h>

#include "bench/stats.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap),     cmocka_unit_test(test_large_sets_sort_like_qsort),
        cmocka_unit_test(test_interpolation), cmocka_unit_test(test_single_and_empty),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
