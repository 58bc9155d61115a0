/* Unit tests for capacity at SLO (verdict/capacity.c): the search on synthetic attainment
 * functions (deterministic), the judgement of a step (target, falling behind, TTFT growing), a
 * mode's capacity interval, the ratio interval and the verdict lines, "cannot tell" included. */
#include "test_common.h"

#include "verdict/capacity.h"

#include <math.h>
#include <string.h>

/* Run a search against a server whose capacity is cap: every load <= cap passes. Returns the
 * search's end and its steps in *steps. */
static enum cap_end search_against(double cap, double start, double factor, double precision,
                                   double min_rate, double max_rate, bool accelerate,
                                   struct cap_search *s)
{
    capacity_search_init(s, start, factor, precision, min_rate, max_rate, 50, accelerate);
    double rate, last = -1;
    while (capacity_search_next(s, &rate)) {
        assert_true(rate != last); /* never the same load twice in a row */
        assert_true(rate >= min_rate * (1 - 1e-9) && rate <= max_rate * (1 + 1e-9));
        capacity_search_record(s, rate, rate <= cap);
        last = rate;
    }
    return s->end;
}

static void test_ladder_then_bisection(void **state)
{
    (void)state;
    struct cap_search s;
    /* from 1 by x2: 1 2 4 8 16 32 64 pass, 128 fails, then bisection of [64, 128] */
    assert_int_equal(search_against(100, 1, 2, 0.05, 1.0 / 64, 1024, false, &s), CAP_FOUND);
    assert_true(s.lo <= 100 && s.hi > 100);
    assert_true(s.hi / s.lo <= 1.05 + 1e-9);
    assert_true(s.lo >= 64 && s.lo <= 100);
    /* 8 ladder steps, then ceil(log2(ln 2 / ln 1.05)) = 4 bisections */
    assert_int_equal(s.steps, 8 + 4);

    /* the first step fails: the ladder goes down */
    assert_int_equal(search_against(3, 64, 2, 0.05, 0.01, 1024, false, &s), CAP_FOUND);
    assert_true(s.lo <= 3 && s.hi > 3 && s.hi / s.lo <= 1.05 + 1e-9);

    /* the same inputs give the same steps */
    struct cap_search s2;
    search_against(3, 64, 2, 0.05, 0.01, 1024, false, &s2);
    assert_true(s2.lo == s.lo && s2.hi == s.hi && s2.steps == s.steps);
}

static void test_bounds(void **state)
{
    (void)state;
    struct cap_search s;
    /* never fails up to --max-rate: a bound, not a capacity */
    assert_int_equal(search_against(1e9, 1, 2, 0.05, 0.1, 100, false, &s), CAP_ABOVE_MAX);
    assert_true(s.lo == 100);
    /* fails at the lowest load */
    assert_int_equal(search_against(0.001, 1, 2, 0.05, 0.1, 100, false, &s), CAP_BELOW_MIN);
    assert_true(s.hi == 0.1 && s.lo == 0);
    /* out of steps */
    capacity_search_init(&s, 1, 2, 0.001, 0.01, 1e6, 3, false);
    double r;
    for (int k = 0; capacity_search_next(&s, &r); k++)
        capacity_search_record(&s, r, true);
    assert_int_equal(s.end, CAP_NO_STEPS);
    assert_int_equal(s.steps, 3);
}

static void test_accelerated_rebracket(void **state)
{
    (void)state;
    struct cap_search s, plain;
    /* a re-bracketing search from far below: the factor squares, so it arrives in few steps */
    assert_int_equal(search_against(500, 10, 1.15, 0.05, 0.1, 1e5, true, &s), CAP_FOUND);
    assert_int_equal(search_against(500, 10, 1.15, 0.05, 0.1, 1e5, false, &plain), CAP_FOUND);
    assert_true(s.lo <= 500 && s.hi > 500 && s.hi / s.lo <= 1.05 + 1e-9);
    assert_true(s.steps < plain.steps);
    /* from just under the boundary, it stays fine */
    assert_int_equal(search_against(100, 90, 1.15, 0.05, 0.1, 1e5, true, &s), CAP_FOUND);
    assert_true(s.steps <= 5);
}

static void test_judge(void **state)
{
    (void)state;
    struct cap_step st = {.offered = 10,
                          .attainment = 0.95,
                          .sent_rate = 10,
                          .done_rate = 10,
                          .between = 40,
                          .ttft_first = 100,
                          .ttft_last = 110,
                          .latency_first = 0.5,
                          .check_growth = true};
    assert_int_equal(capacity_judge(&st, 0.9, 2000), CAP_PASS);
    st.attainment = 0.85;
    assert_int_equal(capacity_judge(&st, 0.9, 2000), CAP_MISS);
    st.attainment = NAN;
    assert_int_equal(capacity_judge(&st, 0.9, 2000), CAP_UNJUDGED);
    st.attainment = 1;
    /* completions at 80 % of sends over 40 requests: 1 s late, more than a quarter of 0.5 s */
    st.done_rate = 8;
    assert_int_equal(capacity_judge(&st, 0.9, 2000), CAP_BEHIND);
    /* a small lag within latency noise is not a queue */
    st.done_rate = 9.4;
    st.latency_first = 2;
    assert_int_equal(capacity_judge(&st, 0.9, 2000), CAP_PASS);
    st.done_rate = 10;
    /* TTFT growing through the step: 100 -> 800 ms with a 2 s SLO (> 1.5 x 100 + 500) */
    st.ttft_last = 800;
    assert_int_equal(capacity_judge(&st, 0.9, 2000), CAP_GROWING);
    st.ttft_last = 600;
    assert_int_equal(capacity_judge(&st, 0.9, 2000), CAP_PASS);
    /* multi_turn: context grows by round, growth is not judged */
    st.ttft_last = 5000;
    st.check_growth = false;
    assert_int_equal(capacity_judge(&st, 0.9, 2000), CAP_PASS);
    assert_string_equal(capacity_judgement_name(CAP_GROWING), "ttft_growing");
}

static void fill(struct cap_mode *m, const double *v, size_t n)
{
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < n; i++) {
        m->est[i] = v[i];
        m->end[i] = CAP_FOUND;
    }
    m->n = n;
    capacity_mode_summarise(m);
}

static void test_mode_interval(void **state)
{
    (void)state;
    struct cap_mode m;
    double v[] = {10, 11, 12};
    fill(&m, v, 3);
    assert_true(m.has_ci);
    assert_true(fabs(m.capacity - cbrt(10.0 * 11 * 12)) < 1e-9);
    assert_true(m.lo < 10.5 && m.hi > 11.5 && m.lo < m.capacity && m.hi > m.capacity);
    fill(&m, v, 1);
    assert_false(m.has_ci);
    assert_true(fabs(m.capacity - 10) < 1e-9 && isnan(m.lo));
    /* a censored search leaves no estimate */
    m.end[1] = CAP_ABOVE_MAX;
    m.est[1] = 100;
    m.n = 2;
    capacity_mode_summarise(&m);
    assert_int_equal(m.censored, CAP_ABOVE_MAX);
    assert_true(isnan(m.capacity));
}

static void test_verdicts(void **state)
{
    (void)state;
    struct cap_mode a, b;
    struct cap_ratio r;
    char line[600];
    const char *slo = "90 % of requests within ttft_ms <= 2000";
    double base[] = {10, 10.5, 9.8}, more[] = {16, 16.5, 15.8}, same[] = {10.2, 9.9, 10.4};
    fill(&a, base, 3);
    fill(&b, more, 3);
    assert_int_equal(
        capacity_compare(&a, "cpu_only", &b, "cpu_disk", 0.05, slo, &r, line, sizeof line),
        CAP_V_MORE);
    assert_true(r.ok && r.lo > 1 && r.ratio > 1.5 && r.ratio < 1.7 && r.lo < r.ratio &&
                r.hi > r.ratio);
    assert_non_null(strstr(line, "cpu_disk serves 1.59x"));
    assert_non_null(strstr(line, "x the load of cpu_only (95 % CI "));
    assert_non_null(strstr(line, slo));
    /* the other way round: less */
    assert_int_equal(
        capacity_compare(&b, "cpu_disk", &a, "cpu_only", 0.05, slo, &r, line, sizeof line),
        CAP_V_LESS);
    assert_true(r.hi < 1);
    /* A/A: no difference */
    fill(&b, same, 3);
    assert_int_equal(
        capacity_compare(&a, "cpu_only_1", &b, "cpu_only_2", 0.05, slo, &r, line, sizeof line),
        CAP_V_SAME);
    assert_true(r.lo < 1 && r.hi > 1);
    assert_true(strncmp(line, "no difference at this confidence", 32) == 0);
    /* one grid step apart with no spread: an interval that excludes 1, but within the precision */
    double g1[] = {10, 10, 10}, g2[] = {10.4, 10.4, 10.4};
    fill(&a, g1, 3);
    fill(&b, g2, 3);
    assert_int_equal(capacity_compare(&a, "x", &b, "y", 0.05, slo, &r, line, sizeof line),
                     CAP_V_SAME);
    /* cannot tell: too few searches, a censored side */
    fill(&a, base, 2);
    fill(&b, more, 3);
    assert_int_equal(
        capacity_compare(&a, "cpu_only", &b, "cpu_disk", 0.05, slo, &r, line, sizeof line),
        CAP_V_CANNOT);
    assert_false(r.ok);
    assert_string_equal(line, "cannot tell: insufficient repeats (cpu_only: 2 searches, 3 needed)");
    fill(&a, base, 3);
    b.end[2] = CAP_ABOVE_MAX;
    capacity_mode_summarise(&b);
    assert_int_equal(
        capacity_compare(&a, "cpu_only", &b, "cpu_disk", 0.05, slo, &r, line, sizeof line),
        CAP_V_CANNOT);
    assert_string_equal(line, "cannot tell: cpu_disk met the target up to --max-rate "
                              "(saturation not reached)");
    b.end[2] = CAP_BELOW_MIN;
    capacity_mode_summarise(&b);
    capacity_compare(&a, "cpu_only", &b, "cpu_disk", 0.05, slo, &r, line, sizeof line);
    assert_string_equal(line, "cannot tell: cpu_disk missed the target at the lowest load tried");
    assert_string_equal(capacity_verdict_name(CAP_V_CANNOT), "cannot_tell");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ladder_then_bisection), cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_accelerated_rebracket), cmocka_unit_test(test_judge),
        cmocka_unit_test(test_mode_interval),         cmocka_unit_test(test_verdicts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
