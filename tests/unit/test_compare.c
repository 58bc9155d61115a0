/*
 * Unit tests for bench/compare with repeats: means over the valid runs, the bootstrap intervals,
 * the verdicts (faster, slower, no difference at this confidence; throughput the other way
 * round), an invalid run left out of the means and marking its mode invalid, and comparison.md's
 * section; html's markdown and escaping, and an SVG chart's parts.
 */
#include "test_common.h"

#include "bench/compare.h"
#include "bench/html.h"
#include "bench/svg.h"
#include "util/buf.h"

/* A run's summary with the overall figures the comparison reads. */
static json_t *summary(bool valid, double ttft50, double ttft95, double lat50, double rps)
{
    json_t *ov = valid ? json_pack("{s:f, s:{s:f, s:f}, s:{s:f}}", "req_per_s", rps, "ttft_ms",
                                   "p50", ttft50, "p95", ttft95, "latency_ms", "p50", lat50)
                       : json_pack("{s:b}", "excluded", 1);
    return json_pack("{s:b, s:o, s:o, s:[]}", "run_valid", valid, "invalid_reason",
                     valid ? json_null() : json_string("no_successful_requests"), "overall_summary",
                     ov, "phase_summaries");
}

static json_t *mode(const char *name, json_t *r1, json_t *r2, json_t *r3)
{
    json_t *reps = json_array();
    json_array_append(reps, r1);
    json_array_append(reps, r2);
    json_array_append(reps, r3);
    json_t *m = json_pack("{s:s, s:s, s:o, s:o, s:[s, s, s]}", "mode", name, "run_id", "r1",
                          "summary", r1, "repeats", reps, "run_ids", "r1", "r2", "r3");
    json_decref(r2);
    json_decref(r3);
    return m;
}

static const json_t *ratio(const json_t *c, const char *metric, const char *mode)
{
    return json_object_get(
        json_object_get(json_object_get(json_object_get(c, "repeats"), "ratios"), metric), mode);
}

static void test_repeats(void **state)
{
    (void)state;
    json_t *modes = json_array();
    /* cpu_disk: TTFT p50 clearly lower, TTFT p95 the same, throughput clearly higher */
    json_array_append_new(modes, mode("cpu_only", summary(true, 100, 200, 300, 10),
                                      summary(true, 104, 180, 310, 11),
                                      summary(true, 98, 220, 290, 10.5)));
    json_array_append_new(modes, mode("cpu_disk", summary(true, 50, 210, 305, 20),
                                      summary(true, 52, 190, 295, 21), summary(false, 0, 0, 0, 0)));
    json_t *c = compare_build(modes);
    const json_t *r = json_object_get(c, "repeats");
    assert_int_equal(json_integer_value(json_object_get(r, "runs_per_mode")), 3);
    const json_t *st =
        json_object_get(json_object_get(json_object_get(r, "stats"), "ttft_p50_ms"), "cpu_disk");
    assert_int_equal(json_integer_value(json_object_get(st, "runs")), 2); /* the invalid one out */
    assert_float_equal(json_real_value(json_object_get(st, "mean")), 51, 1e-9);
    assert_true(json_real_value(json_object_get(st, "ci95_low")) >= 50);
    assert_true(json_real_value(json_object_get(st, "ci95_high")) <= 52);
    assert_string_equal(
        json_string_value(json_object_get(ratio(c, "ttft_p50_ms", "cpu_disk"), "verdict")),
        "faster");
    assert_float_equal(
        json_real_value(json_object_get(ratio(c, "ttft_p50_ms", "cpu_disk"), "ratio")),
        51.0 / (302.0 / 3), 1e-9);
    assert_string_equal(
        json_string_value(json_object_get(ratio(c, "ttft_p95_ms", "cpu_disk"), "verdict")),
        "no difference at this confidence");
    assert_string_equal(
        json_string_value(json_object_get(ratio(c, "req_per_s", "cpu_disk"), "verdict")), "faster");
    assert_null(ratio(c, "req_per_s", "cpu_only")); /* the baseline */
    /* the metrics' values are the means */
    const json_t *m0 = json_array_get(json_object_get(c, "metrics"), 0);
    assert_string_equal(json_string_value(json_object_get(m0, "metric")), "req_per_s");
    assert_float_equal(json_real_value(json_object_get(json_object_get(m0, "values"), "cpu_disk")),
                       20.5, 1e-9);
    /* a mode with an invalid run is not valid, and says which */
    const json_t *md = json_array_get(json_object_get(c, "modes"), 1);
    assert_false(json_is_true(json_object_get(md, "valid")));
    assert_false(
        json_is_true(json_object_get(json_array_get(json_object_get(md, "runs"), 2), "valid")));
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(c, "verdict"), "summary")),
               "cpu_disk vs cpu_only: TTFT p50 0.51x ["));
    char *text = compare_markdown(c);
    assert_non_null(strstr(text, "## Repeats: 3 runs per mode, interleaved"));
    assert_non_null(strstr(text, "| ttft_p50_ms | cpu_disk | 2 | 51.00 |"));
    assert_non_null(strstr(text, "| ttft_p95_ms | cpu_disk | 2 |"));
    assert_non_null(strstr(text, "no difference at this confidence |"));
    free(text);
    json_decref(c);
    json_decref(modes);

    /* one run per mode: no repeats section, values as they were */
    modes = json_pack("[{s:s, s:s, s:o}, {s:s, s:s, s:o}]", "mode", "a", "run_id", "x", "summary",
                      summary(true, 1, 2, 3, 4), "mode", "b", "run_id", "y", "summary",
                      summary(true, 2, 2, 3, 8));
    c = compare_build(modes);
    assert_null(json_object_get(c, "repeats"));
    text = compare_markdown(c);
    assert_null(strstr(text, "## Repeats"));
    free(text);
    json_decref(c);
    json_decref(modes);
}

static void test_markdown_and_escaping(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    html_from_markdown(&b,
                       "## Phases\n\n| phase | error |\n|---|---|\n| main | <script>x</script> "
                       "& `code` |\n\n- **Status:** valid\n- two\n\nplain\ntext\n```\na<b\n```\n");
    const char *h = buf_cstr(&b);
    assert_non_null(strstr(h, "<h3>Phases</h3>"));
    assert_non_null(strstr(h, "<thead>\n<tr><th>phase</th><th>error</th></tr>\n</thead><tbody>"));
    assert_non_null(strstr(h, "<td>&lt;script&gt;x&lt;/script&gt; &amp; <code>code</code></td>"));
    assert_null(strstr(h, "<script>"));
    assert_non_null(
        strstr(h, "<ul>\n<li><strong>Status:</strong> valid</li>\n<li>two</li>\n</ul>"));
    assert_non_null(strstr(h, "<p>plain text</p>"));
    assert_non_null(strstr(h, "<pre>a&lt;b\n</pre>"));
    buf_free(&b);
}

static void test_svg(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct chart c;
    double x[] = {0, 1, 2}, y[] = {5, 7, 3};
    chart_begin(&c, &b, "t", "A <title>", "seconds", "ms", 0, 2, 0, 7);
    chart_band(&c, 0, 1, "warm_A", 0);
    chart_points(&c, 0, "TTFT", x, y, 3);
    chart_line(&c, 1, "latency", x, y, 3, true);
    chart_end(&c);
    const char *s = buf_cstr(&b);
    assert_non_null(strstr(s, "<figure class=\"chart\" id=\"t\"><figcaption>A &lt;title&gt;"));
    assert_int_equal(strstr(s, "<circle class=\"mark\"") != NULL, 1);
    assert_non_null(strstr(s, "<title>TTFT: 7 at 1</title>"));
    assert_non_null(strstr(s, "class=\"mark line\""));
    assert_non_null(strstr(s, "stroke-dasharray=\"6 3\"")); /* series 1 dashed */
    assert_non_null(strstr(s, ">warm_A</text>"));
    assert_non_null(strstr(s, "<g class=\"legend\""));
    assert_non_null(strstr(s, ">8</text>")); /* y ticks reach past 7 at a 1-2-5 step */
    assert_non_null(strstr(s, "</svg></figure>"));
    buf_free(&b);
    assert_float_equal(svg_nice_step(7, 5), 2, 0);
    assert_float_equal(svg_nice_step(0.07, 5), 0.02, 1e-15);
    assert_float_equal(svg_nice_step(0, 5), 1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeats),
        cmocka_unit_test(test_markdown_and_escaping),
        cmocka_unit_test(test_svg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
