/*
 * Unit tests for the load generator's requests.jsonl writer, through loadgen_run_phase against a
 * real server on 127.0.0.1: every finished request is either one whole row in the file or counted
 * in phase_result.rows_lost (and loadgen.row_errors, which makes the run artifact_write_failed);
 * never a torn row. A disk that refuses every write (/dev/full) loses every row, counted; an
 * allocation failure at each point of a short phase in turn (the fault hook) leaves only whole
 * rows. Also the request's header lines as the server receives them, on both transports.
 */
#include "test_common.h"

#include "load/loadgen.h"
#include "model/tokenizer.h"
#include "support/testsrv.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/sha256.h"

#include <jansson.h>
#include <pthread.h>

#define N_PROMPTS 6

static char url[128];
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char seen_headers[4096]; /* the last request's header block */

static bool handler(int fd, const struct testsrv_request *req, void *user)
{
    (void)user;
    pthread_mutex_lock(&seen_lock);
    snprintf(seen_headers, sizeof seen_headers, "%s", req->headers);
    pthread_mutex_unlock(&seen_lock);
    static const char body[] =
        "{\"id\":\"cmpl-1\",\"choices\":[{\"text\":\"hello there\",\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}";
    char h[160];
    snprintf(h, sizeof h,
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             sizeof body - 1);
    testsrv_write_str(fd, h);
    testsrv_write_str(fd, body);
    return true;
}

struct fixture {
    struct testsrv *srv;
    struct prompt prompts[N_PROMPTS];
    const struct prompt *ptrs[N_PROMPTS];
    char *dir;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || http_global_init() < 0)
        return -1;
    f->srv = testsrv_start(handler, NULL);
    f->dir = test_tmpdir();
    if (!f->srv || !f->dir)
        return -1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/completions", testsrv_port(f->srv));
    for (int i = 0; i < N_PROMPTS; i++) {
        struct prompt *p = &f->prompts[i];
        snprintf(p->id, sizeof p->id, "short-%05d", i);
        snprintf(p->set, sizeof p->set, "short");
        p->text = strdup("a short prompt");
        if (!p->text)
            return -1;
        p->len = strlen(p->text);
        p->target = p->est_tokens = 3;
        sha256_hex(p->text, p->len, p->sha256);
        f->ptrs[i] = p;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    testsrv_stop(f->srv);
    for (int i = 0; i < N_PROMPTS; i++)
        free(f->prompts[i].text);
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static const volatile sig_atomic_t not_interrupted = 0;

/* One closed-loop phase of every prompt, rows to rows_path; with fault_nth > 0 the phase itself
 * (not the set-up before it) has its fault_nth-th allocation failed. Returns
 * loadgen_run_phase's answer. */
static int run_phase_faulted(struct fixture *f, const char *rows_path, enum http_transport t,
                             const char *api_key, struct loadgen *lg, struct phase_result *out,
                             long fault_nth)
{
    static const struct gen_params gp = {.max_tokens = 8, .temperature = 0, .top_p = 1};
    memset(lg, 0, sizeof *lg);
    snprintf(lg->completions_url, sizeof lg->completions_url, "%s", url);
    lg->model = "tiny";
    lg->api_key = api_key;
    lg->timeout_s = 10;
    lg->gp = &gp;
    lg->run_id = "run";
    lg->spill_dir = f->dir;
    lg->interrupted = &not_interrupted;
    lg->tok = tokenizer_heuristic();
    lg->threads = 1;
    lg->transport = t;
    char err[ERR_LEN];
    assert_int_equal(loadgen_init(lg, err), 0);
    assert_int_equal(loadgen_open_rows(lg, rows_path, err), 0);
    struct phase_plan pp = {.name = "p", .prompts = f->ptrs, .n = N_PROMPTS, .concurrency = 2};
    if (fault_nth > 0)
        fault_arm(fault_nth, false);
    int rc = loadgen_run_phase(lg, &pp, out, err);
    fault_disarm();
    return rc;
}

static int run_phase(struct fixture *f, const char *rows_path, enum http_transport t,
                     const char *api_key, struct loadgen *lg, struct phase_result *out)
{
    return run_phase_faulted(f, rows_path, t, api_key, lg, out, 0);
}

/* The rows file: each line one whole JSON object. Returns the number of lines. */
static size_t whole_rows(const char *path)
{
    struct buf b = BUF_INIT;
    char err[ERR_LEN];
    assert_int_equal(fs_read_file(path, &b, 1 << 20, err), 0);
    size_t n = 0;
    const char *p = buf_cstr(&b), *end = p + b.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl); /* no line without its end */
        json_error_t je;
        json_t *row = json_loadb(p, (size_t)(nl - p), 0, &je);
        if (!row)
            fail_msg("row %zu is not whole JSON: %s", n + 1, je.text);
        assert_non_null(json_object_get(row, "request_index"));
        assert_non_null(json_object_get(row, "response_header_hints"));
        /* a phase of the default endpoint names it, as every row does */
        assert_string_equal(json_string_value(json_object_get(row, "endpoint")), "completions");
        json_decref(row);
        n++;
        p = nl + 1;
    }
    buf_free(&b);
    return n;
}

static void test_rows_whole_and_headers(void **state)
{
    struct fixture *f = *state;
    enum http_transport ts[] = {HTTP_TRANSPORT_NATIVE, HTTP_TRANSPORT_CURL};
    for (size_t k = 0; k < 2; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/requests-%zu.jsonl", f->dir, k);
        struct loadgen lg;
        struct phase_result out;
        assert_int_equal(run_phase(f, path, ts[k], "sk-test-key", &lg, &out), 0);
        assert_int_equal(out.n, N_PROMPTS);
        assert_int_equal(out.errors, 0);
        assert_int_equal(out.rows_lost, 0);
        assert_int_equal(lg.row_errors, 0);
        assert_int_equal(lg.rows_written, N_PROMPTS);
        assert_string_equal(out.transport, k == 0 ? "native" : "libcurl");
        pthread_mutex_lock(&seen_lock);
        assert_non_null(strstr(seen_headers, "content-type: application/json"));
        assert_non_null(strstr(seen_headers, "accept: application/json"));
        assert_non_null(strstr(seen_headers, "authorization: Bearer sk-test-key"));
        assert_non_null(strstr(seen_headers, "x-request-id: run-"));
        pthread_mutex_unlock(&seen_lock);
        phase_result_free(&out);
        loadgen_free(&lg);
        assert_int_equal(whole_rows(path), N_PROMPTS);
    }
}

/* A disk that refuses every write: no row survives, every one is counted, the phase stops. */
static void test_write_failure_counts_rows(void **state)
{
    struct fixture *f = *state;
    if (access("/dev/full", W_OK) != 0)
        skip();
    struct loadgen lg;
    struct phase_result out;
    assert_int_equal(run_phase(f, "/dev/full", HTTP_TRANSPORT_NATIVE, NULL, &lg, &out), 0);
    assert_true(out.n >= 1);
    assert_int_equal(lg.rows_written, 0);
    assert_int_equal(out.rows_lost, out.n); /* every finished request's row, counted */
    assert_int_equal(lg.row_errors, out.rows_lost);
    assert_non_null(strstr(lg.row_error, "space"));
    phase_result_free(&out);
    loadgen_free(&lg);
}

/* An allocation failure at each point of the phase in turn: the phase ends cleanly or with an
 * error, and every finished request is a whole row or counted lost. At least one point is in the
 * row writer (a row lost to it). */
static void test_alloc_failure_never_tears_a_row(void **state)
{
    struct fixture *f = *state;
    size_t saw_lost = 0;
    for (long nth = 1; nth <= 60; nth++) {
        char path[512];
        snprintf(path, sizeof path, "%s/fault-%ld.jsonl", f->dir, nth);
        struct loadgen lg;
        struct phase_result out;
        int rc = run_phase_faulted(f, path, HTTP_TRANSPORT_NATIVE, NULL, &lg, &out, nth);
        size_t rows = whole_rows(path);
        assert_int_equal(rows, lg.rows_written);
        if (rc == 0) {
            assert_int_equal(lg.rows_written + out.rows_lost, out.n);
            assert_int_equal(lg.row_errors, out.rows_lost);
            saw_lost += out.rows_lost > 0;
        }
        phase_result_free(&out);
        loadgen_free(&lg);
    }
    assert_true(saw_lost > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_whole_and_headers),
        cmocka_unit_test(test_write_failure_counts_rows),
        cmocka_unit_test(test_alloc_failure_never_tears_a_row),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
