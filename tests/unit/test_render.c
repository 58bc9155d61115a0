/*
 * test_render.c - the rendering side at its seams: markdown to HTML, HTML escaping, the charts'
 * tick steps, CSV fields, the summary table, and report.html for a run and for a comparison
 * (built from a hand-written comparison.json and the reference run's summary), including the
 * comparison page with each of its allocations failed in turn.
 */
#include "test_common.h"

#include "report/csvexport.h"
#include "report/html.h"
#include "report/sumtable.h"
#include "report/svg.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/json.h"

#include <limits.h>
#include <math.h>

static char *md_html(const char *md)
{
    struct buf b = BUF_INIT;
    html_from_markdown(&b, md);
    assert_false(buf_failed(&b));
    char *s = buf_detach(&b);
    assert_non_null(s);
    return s;
}

static void test_markdown(void **state)
{
    (void)state;
    char *h =
        md_html("# Title\n\n## Part <one>\ntext with `co<de>` and **bold**\nmore\n\n"
                "- item `a`\n- item b\n\n| k | v |\n|---|---:|\n| x | 1 |\n\n```\na < b\n```\n");
    assert_string_equal(h, "<h2>Title</h2>\n"
                           "<h3>Part &lt;one&gt;</h3>\n"
                           "<p>text with <code>co&lt;de&gt;</code> and <strong>bold</strong> more"
                           "</p>\n"
                           "<ul>\n<li>item <code>a</code></li>\n<li>item b</li>\n</ul>\n"
                           "<div class=\"table\"><table><thead>\n<tr><th>k</th><th>v</th></tr>\n"
                           "</thead><tbody>\n<tr><td>x</td><td>1</td></tr>\n"
                           "</tbody></table></div>\n"
                           "<pre>a &lt; b\n</pre>\n");
    free(h);
    /* an open code span, bold or fence is closed at the end */
    h = md_html("`open **b\n```\nx");
    assert_string_equal(h, "<p><code>open **b</code></p>\n<pre>x\n</pre>\n");
    free(h);
}

static void test_escape_and_ticks(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    html_escape(&b, "a&b<c>\"d'e");
    html_escape(&b, NULL);
    assert_false(buf_failed(&b));
    assert_string_equal(buf_cstr(&b), "a&amp;b&lt;c&gt;&quot;d&#39;e");
    buf_free(&b);
    assert_true(svg_nice_step(100, 5) == 20);
    assert_true(svg_nice_step(7, 5) == 2);
    assert_true(svg_nice_step(0.3, 4) == 0.1);
    assert_true(svg_nice_step(0, 5) == 1);
    assert_true(svg_nice_step(NAN, 5) == 1);
}

static void test_csv_fields(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    csv_field(&b, "plain", 5);
    buf_append_char(&b, '|');
    csv_field(&b, "a,b", 3);
    buf_append_char(&b, '|');
    csv_field(&b, "say \"hi\"", 8);
    buf_append_char(&b, '|');
    json_t *v = json_pack("[f,f,I,b,n,s,[i,i]]", 1.5, 2.0000001, (json_int_t)7, 1, "x\ny", 1, 2);
    assert_non_null(v);
    for (size_t i = 0; i < json_array_size(v); i++) {
        csv_json_field(&b, json_array_get(v, i));
        buf_append_char(&b, '|');
    }
    csv_json_field(&b, NULL);
    json_decref(v);
    assert_false(buf_failed(&b));
    assert_string_equal(buf_cstr(&b),
                        "plain|\"a,b\"|\"say \"\"hi\"\"\"|1.5|2|7|true||\"x\ny\"|\"[1,2]\"|");
    buf_free(&b);
}

static void test_summary_table(void **state)
{
    (void)state;
    json_t *rows = json_array();
    json_t *s1 = json_pack("{s:s, s:s, s:{s:s}, s:b, s:{s:f, s:f, s:{s:f, s:f}}}", "run_id", "r1",
                           "scenario", "standard", "kv_mode", "mode", "cpu_only", "run_valid", 1,
                           "overall_summary", "req_per_s", 12.345, "error_rate", 0.0, "ttft_ms",
                           "p50", 10.04, "p95", 20.0);
    json_t *s2 = json_pack("{s:s, s:s, s:b, s:s, s:{s:{s:f}}}", "run_id", "run-two", "scenario",
                           "standard", "run_valid", 0, "invalid_reason", "bad", "overall_summary",
                           "goodput", "attainment", 0.5);
    assert_non_null(s1);
    assert_non_null(s2);
    json_t *r1 = sumtable_row(s1), *r2 = sumtable_row(s2);
    assert_non_null(r1);
    assert_non_null(r2);
    assert_int_equal(json_array_append_new(rows, r1), 0);
    assert_int_equal(json_array_append_new(rows, r2), 0);
    assert_true(sumtable_fill_attainment(rows));
    assert_true(json_is_null(json_object_get(r1, "attainment")));
    struct buf b = BUF_INIT;
    sumtable_render(rows, &b);
    assert_false(buf_failed(&b));
    assert_string_equal(
        buf_cstr(&b),
        "run_id   scenario  kv_mode   valid   req/s  ttft_p50  ttft_p95  lat_p50  lat_p95  "
        "err_rate  attain  signal\n"
        "r1       standard  cpu_only  yes     12.35      10.0      20.0        -        -     "
        "0.000       -  -\n"
        "run-two  standard  ?         no:bad      -         -         -        -        -         "
        "-  0.5000  -\n");
    buf_free(&b);
    json_decref(rows);
    json_decref(s1);
    json_decref(s2);
}

/* ------------------------------------------------------------ pages */

static void copy_file(const char *from, const char *to)
{
    struct buf b = BUF_INIT;
    char err[ERR_LEN];
    assert_int_equal(fs_read_file(from, &b, 1 << 24, err), 0);
    assert_int_equal(fs_write_buf(to, &b, err), 0);
    buf_free(&b);
}

static char *slurp(const char *path)
{
    struct buf b = BUF_INIT;
    char err[ERR_LEN];
    if (fs_read_file(path, &b, 1 << 26, err) < 0) {
        buf_free(&b);
        return NULL;
    }
    char *s = buf_detach(&b);
    assert_non_null(s);
    return s;
}

static void test_run_page(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    assert_non_null(dir);
    char err[ERR_LEN], from[PATH_MAX], to[PATH_MAX];
    static const char *const FILES[] = {"summary.json", "config.json", "requests.jsonl",
                                        "kvbm_metrics_snapshots.jsonl"};
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "reference/runs/eviction_replay/%s", FILES[i]);
        snprintf(to, sizeof to, "%s/%s", dir, FILES[i]);
        copy_file(test_fixture(rel, from, sizeof from), to);
    }
    assert_int_equal(html_write_run(dir, err), 0);
    snprintf(to, sizeof to, "%s/report.html", dir);
    char *page = slurp(to);
    assert_non_null(page);
    assert_non_null(strstr(page, "<title>kvbench run eviction_replay_X</title>"));
    assert_non_null(strstr(page, "Verdict: <span class=\"sig\">disk_rehydrate_detected</span>"));
    assert_non_null(strstr(page, "id=\"chart-requests\""));
    assert_non_null(strstr(page, "id=\"chart-latency-cdf\""));
    assert_non_null(strstr(page, "id=\"chart-kv-blocks\""));
    assert_non_null(strstr(page, "No disk or cache-directory telemetry"));
    /* report.md follows, its own title dropped (the page's h1 says it) */
    assert_non_null(
        strstr(page, "<section id=\"report\">\n<ul>\n<li><strong>Status:</strong> valid"));
    assert_non_null(strstr(page, "<h3>Phases</h3>"));
    assert_null(strstr(page, "<h2>kvbench run"));
    free(page);
    /* no summary.json: an error, and no page */
    snprintf(to, sizeof to, "%s/summary.json", dir);
    assert_int_equal(unlink(to), 0);
    snprintf(to, sizeof to, "%s/report.html", dir);
    assert_int_equal(unlink(to), 0);
    err[0] = '\0';
    assert_int_equal(html_write_run(dir, err), -1);
    assert_non_null(strstr(err, "summary.json"));
    assert_false(fs_exists(to));
    test_rmtree(dir);
    free(dir);
}

/* A comparison directory <root>/cmp with two modes whose runs are the reference run's summary. */
static void make_comparison(const char *root)
{
    char path[PATH_MAX], from[PATH_MAX], err[ERR_LEN];
    static const char *const RUNS[] = {"cmp_base", "cmp_disk"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", root, RUNS[i]);
        assert_int_equal(fs_mkdir_p(path, err), 0);
        snprintf(path, sizeof path, "%s/%s/summary.json", root, RUNS[i]);
        copy_file(test_fixture("reference/runs/eviction_replay/summary.json", from, sizeof from),
                  path);
    }
    snprintf(path, sizeof path, "%s/cmp", root);
    assert_int_equal(fs_mkdir_p(path, err), 0);
    json_t *c = json_pack(
        "{s:s, s:s, s:b, s:{s:s, s:s}, s:[{s:s}], s:["
        "{s:s, s:s, s:s, s:s, s:[{s:s}]}, {s:s, s:s, s:s, s:s}], s:["
        "{s:s, s:{s:{s:{s:{s:[f,f,f]}, s:{s:[f]}}}}}]}",
        "compare_id", "cmp", "scenario", "eviction_replay", "all_valid", 1, "decision", "verdict",
        "faster", "line", "disk <wins>", "warnings", "message", "only a test", "modes", "label",
        "base<1>", "mode", "cpu_only", "run_id", "cmp_base", "signal", "none", "runs", "run_id",
        "cmp_base", "label", "disk", "mode", "cpu_disk", "run_id", "cmp_disk", "signal",
        "disk_rehydrate_detected", "phases", "phase", "replay_A", "metrics", "ttft_p50_ms", "modes",
        "base<1>", "values", 10.0, 12.0, 14.0, "disk", "values", 5.0);
    assert_non_null(c);
    snprintf(path, sizeof path, "%s/cmp/comparison.json", root);
    assert_int_equal(json_write_file(path, c, err), 0);
    json_decref(c);
}

static void test_compare_page(void **state)
{
    (void)state;
    char *root = test_tmpdir();
    assert_non_null(root);
    make_comparison(root);
    char dir[PATH_MAX], path[PATH_MAX + 16], err[ERR_LEN];
    snprintf(dir, sizeof dir, "%s/cmp", root);
    snprintf(path, sizeof path, "%s/report.html", dir);
    assert_int_equal(html_write_compare(dir, err), 0);
    char *page = slurp(path);
    assert_non_null(page);
    assert_non_null(strstr(page, "<title>kvbench compare cmp</title>"));
    assert_non_null(strstr(page, "<strong>disk &lt;wins&gt;</strong>"));
    assert_non_null(strstr(page, "Every run <strong>VALID</strong>"));
    assert_non_null(strstr(page, "<div>Warning: only a test</div>"));
    assert_non_null(strstr(page, "<code>base&lt;1&gt;</code>: <span class=\"sig\">none</span>"));
    assert_non_null(strstr(page, "id=\"chart-mode-ttft_p50_ms\""));
    assert_null(strstr(page, "id=\"chart-mode-req_per_s\"")); /* no values: no chart */
    assert_non_null(strstr(page, "95% CI"));                  /* three runs: a whisker */
    assert_non_null(strstr(page, "id=\"chart-mode-readback\""));
    assert_non_null(strstr(page, "<a href=\"../cmp_base/report.html\">cmp_base</a>"));
    assert_non_null(strstr(page, "<a href=\"../cmp_disk/report.html\">cmp_disk</a>"));
    assert_non_null(strstr(page, "</html>\n"));

    /* every allocation failed in turn: an error and no page, or the same page (jansson
     * allocates as usual: see test_faults.c) */
    long n, errors = 0;
    for (n = 1; n < 100000; n++) {
        unlink(path);
        err[0] = '\0';
        fault_arm(n, false);
        int rc = html_write_compare(dir, err);
        fault_disarm();
        long failed = fault_failures();
        if (rc < 0) {
            assert_true(failed > 0);
            assert_true(err[0] != '\0');
            assert_false(fs_exists(path));
            errors++;
        } else {
            char *again = slurp(path);
            assert_non_null(again);
            assert_string_equal(again, page);
            free(again);
        }
        if (failed == 0)
            break;
    }
    assert_true(n < 100000);
    assert_true(errors > 0);
    free(page);
    test_rmtree(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markdown),   cmocka_unit_test(test_escape_and_ticks),
        cmocka_unit_test(test_csv_fields), cmocka_unit_test(test_summary_table),
        cmocka_unit_test(test_run_page),   cmocka_unit_test(test_compare_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
