/*
 * Unit tests for bench/vstore: values spilled to a real unlinked file, read back exactly; the
 * radix selection gives the same percentiles as sorting everything (stats_compute), over one
 * store or the union of several, with duplicates, negatives, zeros of both signs and tiny sets;
 * a spill that cannot happen makes the statistics fail rather than lie.
 */
#include "test_common.h"

#include "analysis/stats.h"
#include "load/vstore.h"
#include "util/rng.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

static int teardown(void **state)
{
    (void)state;
    vstore_tune(0, 0);
    return 0;
}

/* values with many ties (ITLs repeat at the clock's resolution) and a long tail */
static double value(uint64_t *st, size_t i)
{
    uint64_t r = splitmix64(st);
    switch (i % 7) {
    case 0:
        return (double)(r % 50) * 0.001; /* ties */
    case 1:
        return -(double)(r % 1000) / 7.0; /* negatives */
    case 2:
        return i % 2 ? 0.0 : -0.0;
    default:
        return (double)(r % 1000000) / 997.0 + (r % 97 == 0 ? 1e6 : 0);
    }
}

/* Statistics of the stores must equal stats_compute over the same values, field by field (the
 * mean up to summation order). */
static void check_against_sort(size_t n, size_t n_stores, size_t buffer, size_t sort_max)
{
    char *dir = test_tmpdir();
    assert_non_null(dir);
    vstore_tune(buffer, sort_max);
    struct vstore st[4];
    struct vstore *ptr[4];
    for (size_t i = 0; i < n_stores; i++) {
        vstore_init(&st[i], dir);
        ptr[i] = &st[i];
    }
    double *all = malloc((n ? n : 1) * sizeof *all);
    assert_non_null(all);
    uint64_t rs = 42 + n;
    for (size_t i = 0; i < n; i++) {
        all[i] = value(&rs, i);
        assert_int_equal(vstore_push(&st[i % n_stores], all[i]), 0);
    }
    struct dstats want, got;
    stats_compute(all, n, &want);
    assert_int_equal(vstore_stats(ptr, n_stores, &got), 0);
    assert_int_equal(got.n, want.n);
    if (n) {
        assert_true(got.min == want.min && got.max == want.max);
        assert_true(got.p50 == want.p50);
        assert_true(got.p90 == want.p90);
        assert_true(got.p95 == want.p95);
        assert_true(got.p99 == want.p99);
        assert_true(fabs(got.mean - want.mean) <= 1e-9 * (fabs(want.mean) + 1));
    }
    /* the spill files are unlinked: nothing is left in the directory, even before freeing */
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    size_t entries = 0;
    while ((e = readdir(d)))
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    assert_int_equal(entries, 0);
    for (size_t i = 0; i < n_stores; i++) {
        if (n / n_stores > (buffer ? buffer : 65536))
            assert_true(st[i].has_file && st[i].n_buf <= buffer); /* spilled, buffer bounded */
        vstore_free(&st[i]);
    }
    free(all);
    rmdir(dir);
    free(dir);
}

static void test_in_memory(void **state)
{
    (void)state;
    check_against_sort(0, 1, 0, 0);
    check_against_sort(1, 1, 0, 0);
    check_against_sort(2, 1, 0, 0);
    check_against_sort(1000, 3, 0, 0);
}

static void test_spilled_and_sorted(void **state)
{
    (void)state;
    check_against_sort(50000, 1, 1000, 0); /* 50 spills, sorted in memory */
    check_against_sort(50001, 3, 777, 0);
}

static void test_spilled_and_selected(void **state)
{
    (void)state;
    /* the selection path: sort_max below n */
    for (size_t n = 1; n <= 9; n++)
        check_against_sort(n, 1, 4, 1);
    check_against_sort(100, 2, 16, 10);
    check_against_sort(200003, 4, 4096, 1000);
    check_against_sort(65537, 1, 1 << 16, 1000); /* a buffer and one value in memory */
}

static void test_all_equal(void **state)
{
    (void)state;
    vstore_tune(8, 4);
    struct vstore v;
    vstore_init(&v, NULL);
    for (int i = 0; i < 100; i++)
        assert_int_equal(vstore_push(&v, 3.25), 0);
    struct vstore *p = &v;
    struct dstats s;
    assert_int_equal(vstore_stats(&p, 1, &s), 0);
    assert_true(s.n == 100 && s.min == 3.25 && s.p50 == 3.25 && s.p99 == 3.25 && s.max == 3.25);
    assert_true(s.mean == 3.25);
    vstore_free(&v);
}

static void test_spill_failure_is_not_a_number(void **state)
{
    (void)state;
    vstore_tune(4, 2);
    struct vstore v;
    vstore_init(&v, "/nonexistent/kvbench-vstore");
    for (int i = 0; i < 4; i++)
        assert_int_equal(vstore_push(&v, i), 0); /* buffered */
    assert_int_equal(vstore_push(&v, 5), -1);    /* the spill cannot happen */
    assert_true(v.failed);
    assert_int_equal(vstore_push(&v, 6), -1);
    struct vstore *p = &v;
    struct dstats s;
    assert_int_equal(vstore_stats(&p, 1, &s), -1);
    assert_int_equal(s.n, 0);
    vstore_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_in_memory, teardown),
        cmocka_unit_test_teardown(test_spilled_and_sorted, teardown),
        cmocka_unit_test_teardown(test_spilled_and_selected, teardown),
        cmocka_unit_test_teardown(test_all_equal, teardown),
        cmocka_unit_test_teardown(test_spill_failure_is_not_a_number, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
