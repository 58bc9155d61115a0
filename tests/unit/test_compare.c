/*
 * Unit tests for bench/compare with repeats: means over the valid runs with t intervals, Welch
 * intervals on the log ratios and the verdicts (faster, slower, no difference, insufficient
 * repeats; throughput the other way round), an invalid run left out of the means and marking its
 * mode invalid; phase by phase, the one decision (pays, cannot tell, A/A) and --expect-gain;
 * html's markdown and escaping, and an SVG chart's parts.
 */
#include "test_common.h"

#include "verdict/compare.h"
#include "report/report.h"
#include "verdict/verdict.h"
#include "report/html.h"
#include "report/svg.h"
#include "util/buf.h"

#include <math.h>

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
    json_array_append_new(modes,
                          mode("cpu_disk", summary(true, 50, 210, 305, 20),
                               summary(true, 52, 190, 295, 21), summary(true, 51, 205, 300, 20.5)));
    json_t *c = compare_build(modes);
    const json_t *r = json_object_get(c, "repeats");
    assert_int_equal(json_integer_value(json_object_get(r, "runs_per_mode")), 3);
    const json_t *st =
        json_object_get(json_object_get(json_object_get(r, "stats"), "ttft_p50_ms"), "cpu_disk");
    assert_int_equal(json_integer_value(json_object_get(st, "runs")), 3);
    assert_float_equal(json_real_value(json_object_get(st, "mean")), 51, 1e-9);
    /* t interval: 51 +- 4.303 x 1 / sqrt(3) */
    assert_float_equal(json_real_value(json_object_get(st, "ci95_low")), 51 - 4.303 / sqrt(3),
                       1e-6);
    assert_string_equal(
        json_string_value(json_object_get(ratio(c, "ttft_p50_ms", "cpu_disk"), "verdict")),
        "faster");
    /* the ratio of geometric means */
    assert_float_equal(
        json_real_value(json_object_get(ratio(c, "ttft_p50_ms", "cpu_disk"), "ratio")),
        cbrt(50.0 * 52 * 51) / cbrt(100.0 * 104 * 98), 1e-9);
    assert_string_equal(
        json_string_value(json_object_get(ratio(c, "ttft_p95_ms", "cpu_disk"), "verdict")),
        "no difference");
    assert_string_equal(
        json_string_value(json_object_get(ratio(c, "req_per_s", "cpu_disk"), "verdict")), "faster");
    assert_null(ratio(c, "req_per_s", "cpu_only")); /* the baseline */
    /* the metrics' values are the means */
    const json_t *m0 = json_array_get(json_object_get(c, "metrics"), 0);
    assert_string_equal(json_string_value(json_object_get(m0, "metric")), "req_per_s");
    assert_float_equal(json_real_value(json_object_get(json_object_get(m0, "values"), "cpu_disk")),
                       20.5, 1e-9);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(c, "verdict"), "summary")),
               "cpu_disk vs cpu_only: TTFT p50 0.51x ["));
    char *text = compare_markdown(c);
    assert_non_null(strstr(text, "## The whole runs: 3 runs per mode, interleaved"));
    assert_non_null(strstr(text, "| ttft_p50_ms | cpu_disk | 3 | 51.00 |"));
    assert_non_null(strstr(text, "no difference |"));
    free(text);
    json_decref(c);
    json_decref(modes);

    /* an invalid run: left out of the means, its mode not valid, and 2 runs are too few */
    modes = json_array();
    json_array_append_new(modes, mode("cpu_only", summary(true, 100, 200, 300, 10),
                                      summary(true, 104, 180, 310, 11),
                                      summary(true, 98, 220, 290, 10.5)));
    json_array_append_new(modes, mode("cpu_disk", summary(true, 50, 210, 305, 20),
                                      summary(true, 52, 190, 295, 21), summary(false, 0, 0, 0, 0)));
    c = compare_build(modes);
    st = json_object_get(
        json_object_get(json_object_get(json_object_get(c, "repeats"), "stats"), "ttft_p50_ms"),
        "cpu_disk");
    assert_int_equal(json_integer_value(json_object_get(st, "runs")), 2);
    assert_string_equal(
        json_string_value(json_object_get(ratio(c, "ttft_p50_ms", "cpu_disk"), "verdict")),
        "insufficient repeats: 2, need >= 3");
    const json_t *md = json_array_get(json_object_get(c, "modes"), 1);
    assert_false(json_is_true(json_object_get(md, "valid")));
    assert_false(
        json_is_true(json_object_get(json_array_get(json_object_get(md, "runs"), 2), "valid")));
    json_decref(c);
    json_decref(modes);

    /* one run per mode: no repeats section, values as they were */
    modes = json_pack("[{s:s, s:s, s:o}, {s:s, s:s, s:o}]", "mode", "a", "run_id", "x", "summary",
                      summary(true, 1, 2, 3, 4), "mode", "b", "run_id", "y", "summary",
                      summary(true, 2, 2, 3, 8));
    c = compare_build(modes);
    assert_null(json_object_get(c, "repeats"));
    text = compare_markdown(c);
    assert_null(strstr(text, "## The whole runs"));
    free(text);
    json_decref(c);
    json_decref(modes);
}

/* An eviction_replay run's summary: TTFT p50/p95 per phase and blocks onboarded from disk. */
static json_t *evsum(double replay50, double pressure95, double disk_blocks)
{
    json_t *phases = json_array();
    static const char *const NAMES[] = {"warmup", "warm_A", "pressure_B", "replay_A"};
    for (int i = 0; i < 4; i++) {
        double t50 = i == 3 ? replay50 : 200, t95 = i == 2 ? pressure95 : 400;
        json_array_append_new(phases,
                              json_pack("{s:s, s:{s:f, s:f, s:f}, s:f, s:f, s:{s:{s:f, s:f}}}",
                                        "phase", NAMES[i], "ttft_ms", "p50", t50, "p95", t95, "p99",
                                        t95, "req_per_s", 1.0, "error_rate", 0.0,
                                        "kvbm_metrics_delta", "engine_delta", "onboard_blocks_disk",
                                        i == 3 ? disk_blocks : 0.0, "onboard_blocks_host", 0.0));
    }
    return json_pack("{s:b, s:s, s:o, s:{s:f, s:{s:f, s:f}}}", "run_valid", 1, "scenario",
                     "eviction_replay", "phase_summaries", phases, "overall_summary", "req_per_s",
                     1.0, "ttft_ms", "p50", 200.0, "p95", 400.0);
}

static json_t *two_modes(const char *a, const char *la, json_t *a1, json_t *a2, json_t *a3,
                         const char *b, const char *lb, json_t *b1, json_t *b2, json_t *b3)
{
    json_t *modes = json_array(), *ma = mode(a, a1, a2, a3), *mb = mode(b, b1, b2, b3);
    json_object_set_new(ma, "label", json_string(la));
    json_object_set_new(mb, "label", json_string(lb));
    json_array_append_new(modes, ma);
    json_array_append_new(modes, mb);
    return modes;
}

static const char *decision(const json_t *c, const char *key)
{
    return json_string_value(json_object_get(json_object_get(c, "decision"), key));
}

/* Phase by phase: replay_A answers and decides; pressure_B is the cost; A/A; too few repeats. */
static void test_phases_and_decision(void **state)
{
    (void)state;
    json_t *modes = two_modes("cpu_only", "cpu_only", evsum(250, 400, 0), evsum(240, 410, 0),
                              evsum(255, 395, 0), "cpu_disk", "cpu_disk", evsum(90, 560, 117),
                              evsum(95, 570, 117), evsum(100, 555, 117));
    json_t *c = compare_build(modes);
    const json_t *ph = json_array_get(json_object_get(c, "phases"), 2);
    assert_string_equal(json_string_value(json_object_get(ph, "phase")), "replay_A");
    assert_true(json_is_true(json_object_get(ph, "answers")));
    const json_t *vs = json_object_get(
        json_object_get(json_object_get(json_object_get(ph, "metrics"), "ttft_p50_ms"),
                        "vs_baseline"),
        "cpu_disk");
    assert_string_equal(json_string_value(json_object_get(vs, "verdict")), "faster");
    assert_string_equal(decision(c, "verdict"), "pays");
    const char *line = decision(c, "line");
    assert_non_null(strstr(line, "Offload pays here: replay_A TTFT p50 2."));
    assert_non_null(strstr(line, "x faster (95 % CI"));
    assert_non_null(strstr(line, "117 blocks read back from disk"));
    assert_non_null(strstr(line, "cost: pressure_B TTFT p95 1.4"));
    char *text = compare_markdown(c);
    assert_non_null(strstr(text, "**Offload pays here: replay_A"));
    assert_non_null(strstr(text, "| replay_A (answers) | TTFT p50 | cpu_disk | 3 |"));
    free(text);
    /* --expect-gain: shown at 1.5, not at 5 */
    struct expect_gain g;
    char err[256];
    assert_int_equal(verdict_parse_expect_gain("replay_A:ttft_p50:1.5", &g, err), 0);
    json_t *eg = verdict_expect_gain(json_object_get(c, "phases"), modes, &g);
    assert_true(json_is_true(json_object_get(eg, "shown")));
    json_decref(eg);
    assert_int_equal(verdict_parse_expect_gain("replay_A:ttft_p50_ms:5", &g, err), 0);
    eg = verdict_expect_gain(json_object_get(c, "phases"), modes, &g);
    assert_false(json_is_true(json_object_get(eg, "shown")));
    json_decref(eg);
    assert_int_equal(verdict_parse_expect_gain("nope:ttft_p50:1", &g, err), 0);
    eg = verdict_expect_gain(json_object_get(c, "phases"), modes, &g);
    assert_false(json_is_true(json_object_get(eg, "shown")));
    json_decref(eg);
    assert_int_equal(verdict_parse_expect_gain("replay_A:ttft_p50", &g, err), -1);
    assert_int_equal(verdict_parse_expect_gain("replay_A:bogus:2", &g, err), -1);
    assert_int_equal(verdict_parse_expect_gain("replay_A:ttft_p50:-1", &g, err), -1);
    assert_int_equal(verdict_parse_expect_gain("replay_A:disk_read_mib:2", &g, err), -1);
    json_decref(c);
    json_decref(modes);

    /* the disk tier never read: cannot tell */
    modes = two_modes("cpu_only", "cpu_only", evsum(250, 400, 0), evsum(240, 410, 0),
                      evsum(255, 395, 0), "cpu_disk", "cpu_disk", evsum(250, 400, 0),
                      evsum(245, 400, 0), evsum(252, 400, 0));
    c = compare_build(modes);
    assert_string_equal(decision(c, "verdict"), "cannot_tell");
    assert_non_null(strstr(decision(c, "line"), "never reached the offload tiers"));
    json_decref(c);
    json_decref(modes);

    /* A/A: the same mode twice, noise only */
    modes = two_modes("cpu_disk", "cpu_disk_1", evsum(100, 400, 117), evsum(104, 410, 117),
                      evsum(98, 395, 117), "cpu_disk", "cpu_disk_2", evsum(101, 405, 117),
                      evsum(99, 398, 117), evsum(103, 402, 117));
    c = compare_build(modes);
    assert_string_equal(decision(c, "verdict"), "aa_no_difference");
    assert_non_null(strstr(decision(c, "line"), "A/A (cpu_disk twice): no difference"));
    json_decref(c);
    json_decref(modes);

    /* --modes in the other order (cpu_disk first): the verdict still speaks of offload */
    modes = two_modes("cpu_disk", "cpu_disk", evsum(90, 560, 117), evsum(95, 570, 117),
                      evsum(100, 555, 117), "cpu_only", "cpu_only", evsum(250, 400, 0),
                      evsum(240, 410, 0), evsum(255, 395, 0));
    c = compare_build(modes);
    assert_string_equal(decision(c, "verdict"), "pays");
    assert_non_null(strstr(decision(c, "line"), "Offload pays here: replay_A TTFT p50 2."));
    assert_non_null(strstr(decision(c, "line"), "with cpu_disk against cpu_only"));
    assert_non_null(strstr(decision(c, "line"), "117 blocks read back from disk"));
    assert_string_equal(decision(c, "offload_mode"), "cpu_disk");
    json_decref(c);
    json_decref(modes);

    /* one run far off: "no difference" whose interval still allows a large gain is cannot
     * tell, not "does not pay" */
    modes = two_modes("cpu_only", "cpu_only", evsum(250, 400, 0), evsum(240, 410, 0),
                      evsum(255, 395, 0), "cpu_disk", "cpu_disk", evsum(90, 560, 117),
                      evsum(95, 570, 117), evsum(900, 555, 117));
    c = compare_build(modes);
    assert_string_equal(decision(c, "verdict"), "cannot_tell");
    assert_non_null(
        strstr(decision(c, "line"), "interval is too wide to tell a gain from none (replay_A"));
    json_decref(c);
    json_decref(modes);
    /* a tight "no difference": offload does not pay */
    modes = two_modes("cpu_only", "cpu_only", evsum(250, 400, 0), evsum(240, 410, 0),
                      evsum(255, 395, 0), "cpu_disk", "cpu_disk", evsum(249, 400, 117),
                      evsum(242, 400, 117), evsum(253, 400, 117));
    c = compare_build(modes);
    assert_string_equal(decision(c, "verdict"), "does_not_pay");
    json_decref(c);
    json_decref(modes);

    /* nothing measured that decides (no TTFT without --stream): cannot tell, never "does not
     * pay" */
    json_t *nottft[6];
    for (int k = 0; k < 6; k++) {
        nottft[k] = evsum(100, 200, k >= 3 ? 117 : 0);
        size_t pi;
        json_t *ps;
        json_array_foreach(json_object_get(nottft[k], "phase_summaries"), pi, ps)
            json_object_set_new(ps, "ttft_ms", json_object());
    }
    modes = two_modes("cpu_only", "cpu_only", nottft[0], nottft[1], nottft[2], "cpu_disk",
                      "cpu_disk", nottft[3], nottft[4], nottft[5]);
    c = compare_build(modes);
    assert_string_equal(decision(c, "verdict"), "cannot_tell");
    assert_non_null(strstr(decision(c, "line"), "not measured (replay_A TTFT p50: unavailable"));
    json_decref(c);
    json_decref(modes);

    /* two valid runs a side: insufficient repeats, with the point estimate */
    modes = two_modes("cpu_only", "cpu_only", evsum(250, 400, 0), evsum(240, 410, 0),
                      summary(false, 0, 0, 0, 0), "cpu_disk", "cpu_disk", evsum(90, 560, 117),
                      evsum(95, 570, 117), evsum(100, 555, 117));
    c = compare_build(modes);
    assert_string_equal(decision(c, "verdict"), "cannot_tell");
    assert_non_null(strstr(decision(c, "line"), "runs of cpu_only are invalid"));
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
        cmocka_unit_test(test_phases_and_decision),
        cmocka_unit_test(test_markdown_and_escaping),
        cmocka_unit_test(test_svg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
