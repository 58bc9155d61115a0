/*
 * test_faults.c - allocation failure in the artifact writers (SQLite's habit): report.html, the
 * CSV exports, the JSON file and row writers, the summary table and a requests.jsonl-style row
 * built with jsonw.
 *
 * jansson allocates through fault_malloc here (json_set_alloc_funcs), as struct buf always does,
 * so every allocation a writer makes can be failed. Each test first writes its artifact with no
 * fault (the reference bytes), then arms the fault hook at allocation 1, 2, 3 ... in turn and
 * writes again, until a write meets no armed allocation. After every armed write the answer must
 * be one of two: an error with a message and nothing new at the final path (no temporary file
 * left either), or success with the file byte-identical to the reference (an allocation whose
 * failure the code absorbs, such as a size hint). Never a crash (ASan), a leak, or a short file
 * reported as written.
 *
 * One exception, outside kvbench: jansson 2.14's parser is not safe against a failed
 * allocation. It ignores a failed append to its token buffer, so a string it parses can come out
 * a character short with no error (seen here: a run id one letter short in report.html), and one
 * failure inside json_loads frees a pointer it never allocated (ASan: bad-free). Nothing kvbench
 * does can make a parse under those failures correct, so jansson's allocations are failed only
 * while the writers build and serialise JSON (the JSON writers, the summary rows); while a writer
 * parses its inputs (report.html, the CSV, collecting summaries) jansson allocates as usual and
 * every other allocation is failed in turn.
 */
#include "test_common.h"

#include "report/csvexport.h"
#include "report/html.h"
#include "report/sumtable.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/jsonw.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

/* An upper bound on the allocations of one write: the loop fails if a write still meets an armed
 * allocation after this many (a write that never finishes allocating is a bug too). */
#define MAX_ALLOCS 200000L

static bool jansson_faults; /* jansson's allocations go through the fault hook */

static void *json_alloc(size_t size)
{
    return jansson_faults ? fault_malloc(size) : malloc(size);
}

static int setup(void **state)
{
    jansson_faults = true;
    json_set_alloc_funcs(json_alloc, free);
    char *dir = test_tmpdir();
    if (!dir)
        return -1;
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    fault_disarm();
    json_set_alloc_funcs(malloc, free);
    test_rmtree(*state);
    free(*state);
    return 0;
}

/* The whole file as a heap string (caller frees), or NULL when it does not exist. */
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

static void copy_file(const char *from, const char *to)
{
    char *s = slurp(from);
    if (!s)
        fail_msg("fixture %s missing", from);
    char err[ERR_LEN];
    assert_int_equal(fs_write_atomic(to, s, strlen(s), err), 0);
    free(s);
}

/* No file of dir has ".tmp." in its name: a failed write removed its temporary file. */
static void assert_no_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp."))
            fail_msg("a temporary file was left behind: %s/%s", dir, e->d_name);
    closedir(d);
}

/* got is want; else the first difference is shown (an artifact is long). */
static void assert_same(const char *got, const char *want, long n)
{
    size_t i = 0;
    while (got[i] && got[i] == want[i])
        i++;
    if (got[i] || want[i])
        fail_msg("allocation %ld failed: the output differs at byte %zu: got \"%.80s\", want "
                 "\"%.80s\"",
                 n, i, got + (i > 20 ? i - 20 : 0), want + (i > 20 ? i - 20 : 0));
}

/* The file at path is absent, or byte-identical to want. */
static void assert_absent_or(const char *path, const char *want, long n)
{
    char *got = slurp(path);
    if (got)
        assert_same(got, want, n);
    free(got);
}

/* A small run directory: the eviction_replay reference run (summary, config, requests, metrics
 * snapshots) and telemetry that the disk and cache-directory charts draw. */
static void make_run(const char *dir)
{
    static const char *const FILES[] = {"summary.json", "config.json", "requests.jsonl",
                                        "kvbm_metrics_snapshots.jsonl"};
    char from[PATH_MAX], to[PATH_MAX], rel[256];
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        snprintf(rel, sizeof rel, "reference/runs/eviction_replay/%s", FILES[i]);
        snprintf(to, sizeof to, "%s/%s", dir, FILES[i]);
        copy_file(test_fixture(rel, from, sizeof from), to);
    }
    char err[ERR_LEN];
    snprintf(to, sizeof to, "%s/telemetry", dir);
    assert_int_equal(fs_mkdir_p(to, err), 0);
    static const char IOSTAT[] = "time_utc,elapsed_s,label,device,r_s,w_s,rMB_s,wMB_s\n"
                                 "2026-11-30T20:16:47.000Z,0.1,start,vda,1,2,0.5,1.5\n"
                                 "2026-11-30T20:16:55.000Z,8.1,warm_A,vda,3,4,2.5,0.25\n"
                                 "2026-11-30T20:17:05.000Z,18.1,pressure_B,vda,5,6,12.0,30.0\n";
    snprintf(to, sizeof to, "%s/telemetry/iostat_vda.csv", dir);
    assert_int_equal(fs_write_atomic(to, IOSTAT, strlen(IOSTAT), err), 0);
    static const char SNAP[] = "# kvbench cache-directory snapshot\n# label: after_warm_A\n"
                               "# time: 2026-11-30T20:16:58.000Z\n# bytes: 7340032\n";
    snprintf(to, sizeof to, "%s/telemetry/kvbm_after_warm_A_files.txt", dir);
    assert_int_equal(fs_write_atomic(to, SNAP, strlen(SNAP), err), 0);
}

/* ------------------------------------------------------------ report.html */

/* Writes report.html with every allocation failed in turn (jansson's too when jansson_faults);
 * returns how many writes failed. */
static long html_loop(const char *dir, const char *path, const char *want)
{
    char err[ERR_LEN];
    long n, errors = 0;
    for (n = 1; n < MAX_ALLOCS; n++) {
        unlink(path);
        err[0] = '\0';
        fault_arm(n, false);
        int rc = html_write_run(dir, err);
        fault_disarm();
        long failed = fault_failures();
        if (rc < 0) {
            assert_true(failed > 0); /* only the injected failure may fail it */
            assert_true(err[0] != '\0');
            assert_false(fs_exists(path));
            errors++;
        } else {
            char *got = slurp(path);
            assert_non_null(got);
            assert_same(got, want, n);
            free(got);
        }
        assert_no_tmp(dir);
        if (failed == 0)
            break;
    }
    assert_true(n < MAX_ALLOCS);
    return errors;
}

static void test_html_run(void **state)
{
    const char *dir = *state;
    make_run(dir);
    char path[PATH_MAX], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/report.html", dir);
    assert_int_equal(html_write_run(dir, err), 0);
    char *want = slurp(path);
    assert_non_null(want);
    assert_non_null(strstr(want, "id=\"chart-disk\"")); /* the telemetry is drawn */
    assert_non_null(strstr(want, "id=\"chart-cache-dir\""));
    jansson_faults = false; /* it parses its inputs (see the top of the file) */
    assert_true(html_loop(dir, path, want) > 0); /* the loop did fail writes */
    free(want);
}

/* ------------------------------------------------------------ CSV */

/* The CSV export with every allocation failed in turn; returns how many exports failed. */
static long csv_loop(const char *dir, const char *out, const char *want_req, const char *want_ph)
{
    char req[PATH_MAX + 16], ph[PATH_MAX + 16], err[ERR_LEN];
    snprintf(req, sizeof req, "%s/requests.csv", out);
    snprintf(ph, sizeof ph, "%s/phases.csv", out);
    struct csv_result res;
    long n, errors = 0;
    for (n = 1; n < MAX_ALLOCS; n++) {
        unlink(req);
        unlink(ph);
        err[0] = '\0';
        fault_arm(n, false);
        int rc = csv_export_run(dir, out, &res, err);
        fault_disarm();
        long failed = fault_failures();
        if (rc < 0) {
            assert_true(failed > 0);
            assert_true(err[0] != '\0');
            errors++;
            /* a file written before the failure is whole; the one that failed is absent */
            assert_absent_or(ph, want_ph, n);
            assert_false(fs_exists(req));
        } else {
            assert_int_equal(res.requests, 26);
            char *a = slurp(req), *b = slurp(ph);
            assert_non_null(a);
            assert_non_null(b);
            assert_same(a, want_req, n);
            assert_same(b, want_ph, n);
            free(a);
            free(b);
        }
        assert_no_tmp(out);
        if (failed == 0)
            break;
    }
    assert_true(n < MAX_ALLOCS);
    return errors;
}

static void test_csv_export(void **state)
{
    const char *dir = *state;
    make_run(dir);
    char out[PATH_MAX], req[PATH_MAX + 16], ph[PATH_MAX + 16], err[ERR_LEN];
    snprintf(out, sizeof out, "%s/csv", dir);
    assert_int_equal(fs_mkdir_p(out, err), 0);
    snprintf(req, sizeof req, "%s/requests.csv", out);
    snprintf(ph, sizeof ph, "%s/phases.csv", out);
    struct csv_result res;
    assert_int_equal(csv_export_run(dir, out, &res, err), 0);
    assert_int_equal(res.requests, 26);
    char *want_req = slurp(req), *want_ph = slurp(ph);
    assert_non_null(want_req);
    assert_non_null(want_ph);
    jansson_faults = false; /* it parses its inputs (see the top of the file) */
    assert_true(csv_loop(dir, out, want_req, want_ph) > 0);
    free(want_req);
    free(want_ph);
}

/* ------------------------------------------------------------ JSON files and rows */

static void test_json_writers(void **state)
{
    const char *dir = *state;
    char from[PATH_MAX], path[PATH_MAX], lines[PATH_MAX], err[ERR_LEN];
    json_t *v = json_read_file(
        test_fixture("reference/runs/eviction_replay/summary.json", from, sizeof from), err);
    assert_non_null(v);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    snprintf(lines, sizeof lines, "%s/rows.jsonl", dir);
    assert_int_equal(json_write_file(path, v, err), 0);
    char *want = slurp(path);
    assert_non_null(want);
    FILE *f = fopen(lines, "w+");
    assert_non_null(f);
    assert_int_equal(json_write_line(f, v, err), 0);
    long line_len = ftell(f);
    assert_true(line_len > 0);
    char want_sha[65];
    assert_int_equal(json_canonical_sha256(v, want_sha), 0);
    long n, errors = 0;
    for (n = 1; n < MAX_ALLOCS; n++) {
        unlink(path);
        assert_int_equal(ftruncate(fileno(f), 0), 0);
        rewind(f);
        fault_arm(n, false);
        int rc_file = json_write_file(path, v, err);
        int rc_line = json_write_line(f, v, err);
        char sha[65];
        int rc_sha = json_canonical_sha256(v, sha);
        fault_disarm();
        long failed = fault_failures();
        errors += (rc_file < 0) + (rc_line < 0) + (rc_sha < 0);
        if (rc_file < 0) {
            assert_false(fs_exists(path));
        } else {
            char *got = slurp(path);
            assert_non_null(got);
            assert_same(got, want, n);
            free(got);
        }
        /* the row is whole or absent */
        assert_int_equal(ftell(f), rc_line < 0 ? 0 : line_len);
        if (rc_sha == 0)
            assert_string_equal(sha, want_sha);
        assert_no_tmp(dir);
        if (failed == 0)
            break;
    }
    assert_true(n < MAX_ALLOCS);
    assert_true(errors > 0);
    fclose(f);
    free(want);
    json_decref(v);
}

/* A requests.jsonl row as the load generator builds one, written whole or refused. */
static void build_row(struct buf *b, const char *text)
{
    struct jsonw w;
    jw_open(&w, b);
    jw_int(&w, "request_index", 3);
    jw_str(&w, "phase", "replay_A");
    jw_str(&w, "start_ts", "2026-11-30T20:16:47.000+00:00");
    jw_num(&w, "latency_ms", 3365.737);
    jw_num(&w, "ttft_ms", NAN);
    jw_str(&w, "error", NULL);
    jw_begin_array(&w, "itl_ms");
    for (int i = 0; i < 300; i++)
        jw_elem_num(&w, 12.25 + i);
    jw_end_array(&w);
    jw_str(&w, "output_text", text);
    jw_object_raw(&w, "usage", "\"prompt_tokens\":12", strlen("\"prompt_tokens\":12"));
    jw_close(&w);
    buf_append_char(b, '\n');
}

static void test_jsonw_row(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX], err[ERR_LEN], text[3000];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    snprintf(path, sizeof path, "%s/requests.jsonl", dir);
    struct buf b = BUF_INIT;
    build_row(&b, text);
    assert_false(buf_failed(&b));
    char *want = buf_detach(&b);
    assert_non_null(want);
    long n, errors = 0;
    for (n = 1; n < MAX_ALLOCS; n++) {
        unlink(path);
        fault_arm(n, false);
        build_row(&b, text);
        int rc = fs_write_buf(path, &b, err);
        fault_disarm();
        long failed = fault_failures();
        if (rc < 0) {
            assert_true(buf_failed(&b) || failed > 0);
            assert_false(fs_exists(path));
            errors++;
        } else {
            char *got = slurp(path);
            assert_non_null(got);
            assert_same(got, want, n);
            free(got);
        }
        buf_free(&b);
        if (failed == 0)
            break;
    }
    assert_true(n < MAX_ALLOCS);
    assert_true(errors > 0);
    free(want);
}

/* ------------------------------------------------------------ the summary table */

static void test_summary_table(void **state)
{
    const char *dir = *state;
    make_run(dir);
    const char *specs[] = {dir};
    json_t *found = sumtable_collect(specs, 1, NULL, NULL);
    assert_non_null(found);
    assert_int_equal(json_array_size(found), 1);
    const json_t *summary = json_object_get(json_array_get(found, 0), "summary");
    json_t *rows = json_array();
    assert_non_null(rows);
    json_t *row = sumtable_row(summary);
    assert_non_null(row);
    assert_int_equal(json_array_append_new(rows, row), 0);
    struct buf b = BUF_INIT;
    sumtable_render(rows, &b);
    assert_false(buf_failed(&b));
    char *want = buf_detach(&b);
    assert_non_null(want);
    assert_non_null(strstr(want, "run_id"));
    long n, errors = 0;
    for (n = 1; n < MAX_ALLOCS; n++) {
        fault_arm(n, false);
        jansson_faults = false; /* it parses (see the top of the file) */
        json_t *f2 = sumtable_collect(specs, 1, NULL, NULL);
        jansson_faults = true;
        json_t *r2 = sumtable_row(summary);
        sumtable_render(rows, &b);
        fault_disarm();
        long failed = fault_failures();
        if (f2) /* whole, or NULL: never a list with the run missing */
            assert_int_equal(json_array_size(f2), 1);
        if (r2)
            assert_true(json_equal(r2, row));
        if (!buf_failed(&b))
            assert_same(buf_cstr(&b), want, n);
        errors += !f2 + !r2 + buf_failed(&b);
        json_decref(f2);
        json_decref(r2);
        buf_free(&b);
        if (failed == 0)
            break;
    }
    assert_true(n < MAX_ALLOCS);
    assert_true(errors > 0);
    free(want);
    json_decref(rows);
    json_decref(found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jsonw_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html_run, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
