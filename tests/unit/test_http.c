/*
 * Unit tests for net/http.h on each transport (+ net/sse on top of it) against a real server on
 * 127.0.0.1: streams split at many byte boundaries, keep-alive reuse, concurrency, connection
 * refused, a server closing mid-stream, a slow server hitting the timeout, 4xx/5xx bodies,
 * headers. tests/unit/test_transport.c holds the side-by-side comparison of the two.
 */
#include "test_common.h"

#include "support/testsrv.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "net/http.h"
#include "net/sse.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct buf stream; /* the recorded SSE fixture */
/* Every test runs twice: on libcurl and on the native client (net/http_native.c). */
static enum http_transport transport = HTTP_TRANSPORT_CURL;

static void send_headers(int fd, const char *status, const char *extra)
{
    char h[512];
    snprintf(h, sizeof h,
             "HTTP/1.1 %s\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
             "%s\r\n",
             status, extra);
    testsrv_write_str(fd, h);
}

static void send_chunk(int fd, const char *data, size_t len)
{
    char h[32];
    snprintf(h, sizeof h, "%zx\r\n", len);
    testsrv_write_str(fd, h);
    testsrv_write(fd, data, len);
    testsrv_write_str(fd, "\r\n");
}

static bool handler(int fd, const struct testsrv_request *req, void *user)
{
    (void)user;
    unsigned split = 0;
    if (sscanf(req->path, "/sse/%u", &split) == 1) {
        /* the stream in two chunks split at `split`, with a pause so they arrive apart */
        send_headers(fd, "200 OK", "X-Request-Id: rid-1\r\n");
        if (split > stream.len)
            split = (unsigned)stream.len;
        if (split)
            send_chunk(fd, stream.data, split);
        testsrv_sleep_ms(2);
        if (stream.len - split)
            send_chunk(fd, stream.data + split, stream.len - split);
        testsrv_write_str(fd, "0\r\n\r\n");
        return true;
    }
    if (strcmp(req->path, "/close-mid") == 0) {
        send_headers(fd, "200 OK", "");
        send_chunk(fd, stream.data, 200);
        testsrv_sleep_ms(20);
        return false; /* closes without the terminating chunk */
    }
    if (strcmp(req->path, "/slow") == 0) {
        send_headers(fd, "200 OK", "");
        send_chunk(fd, "data: one\n\n", 11);
        testsrv_sleep_ms(1500);
        return false;
    }
    if (strcmp(req->path, "/not-found") == 0) {
        const char *body = "{\"error\":{\"message\":\"model not found\",\"code\":404}}";
        char h[256];
        snprintf(h, sizeof h, "HTTP/1.1 404 Not Found\r\nContent-Length: %zu\r\n\r\n",
                 strlen(body));
        testsrv_write_str(fd, h);
        testsrv_write_str(fd, body);
        return true;
    }
    if (strcmp(req->path, "/boom") == 0) {
        testsrv_write_str(fd, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 13\r\n\r\n"
                              "engine failed");
        return true;
    }
    if (strcmp(req->path, "/echo") == 0) {
        struct buf b = BUF_INIT;
        buf_printf(&b, "%s %s\n%s\n", req->method, req->path, req->headers);
        buf_append(&b, req->body, req->body_len);
        char h[128];
        snprintf(h, sizeof h, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", b.len);
        testsrv_write_str(fd, h);
        testsrv_write(fd, b.data, b.len);
        buf_free(&b);
        return true;
    }
    if (strcmp(req->path, "/reset") == 0)
        return false; /* no answer at all */
    if (strcmp(req->path, "/close-after") == 0) {
        /* a whole answer that keeps nothing alive: the server closes the connection after it */
        testsrv_write_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        return false;
    }
    if (strcmp(req->path, "/to-eof") == 0) {
        /* no length, no chunks: the body ends when the connection does */
        testsrv_write_str(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
        return false;
    }
    if (strcmp(req->path, "/garbage") == 0) {
        testsrv_write_str(fd, "HTTP/1.1 2x0 What\r\n\r\n");
        return false;
    }
    testsrv_write_str(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    return true;
}

struct sse_ctx {
    struct sse_parser parser;
    struct buf events;
    char request_id[64];
    int chunks;
    uint64_t last_t;
    bool t_monotonic;
};

static int record(void *user, const char *event, const char *data, size_t len)
{
    struct buf *out = user;
    buf_append_str(out, event);
    buf_append_char(out, '|');
    buf_append(out, data, len);
    buf_append_char(out, '\x1e');
    return 0;
}

static int on_data(struct http_req *req, const char *data, size_t len, uint64_t t_ns)
{
    struct sse_ctx *ctx = req->user;
    ctx->chunks++;
    if (t_ns < ctx->last_t || t_ns < req->t_start_ns)
        ctx->t_monotonic = false;
    ctx->last_t = t_ns;
    return sse_feed(&ctx->parser, data, len) < 0;
}

static void on_header(struct http_req *req, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    struct sse_ctx *ctx = req->user;
    if (nlen == 12 && strncasecmp(name, "x-request-id", 12) == 0)
        snprintf(ctx->request_id, sizeof ctx->request_id, "%.*s", (int)vlen, value);
}

static char url_base[64];

static int setup(void **state)
{
    char path[512], err[ERR_LEN];
    if (fs_read_file(test_fixture("sse/openai_stream.txt", path, sizeof path), &stream, 1 << 20,
                     err) < 0)
        return -1;
    struct testsrv *s = testsrv_start(handler, NULL);
    if (!s)
        return -1;
    snprintf(url_base, sizeof url_base, "http://127.0.0.1:%d", testsrv_port(s));
    *state = s;
    return http_global_init();
}

static int teardown(void **state)
{
    testsrv_stop(*state);
    buf_free(&stream);
    return 0;
}

static void reference_events(struct buf *ref)
{
    struct sse_parser p;
    sse_init(&p, record, ref);
    sse_feed(&p, stream.data, stream.len);
    sse_free(&p);
}

static void test_stream_splits_identical(void **state)
{
    struct testsrv *s = *state;
    struct buf ref = BUF_INIT;
    reference_events(&ref);
    char err[ERR_LEN];
    struct http_client *c = http_client_new_for(url_base, 4, transport, err);
    assert_non_null(c);
    struct sse_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    struct http_req req;
    http_req_init(&req);
    req.on_data = on_data;
    req.on_header = on_header;
    req.user = &ctx;
    req.timeout_s = 10;
    char url[128];
    int conns_before = testsrv_connections(s);
    /* Many split points, across the whole stream, over one kept-alive connection. */
    for (size_t k = 0; k <= stream.len; k += stream.len / 97 + 1) {
        snprintf(url, sizeof url, "%s/sse/%zu", url_base, k);
        sse_init(&ctx.parser, record, &ctx.events);
        buf_reset(&ctx.events);
        ctx.t_monotonic = true;
        ctx.last_t = 0;
        req.url = url;
        assert_int_equal(http_client_start(c, &req, err), 0);
        while (http_client_poll(c, 1000) > 0) {
        }
        assert_int_equal(req.error, HTTP_OK);
        assert_int_equal(req.status, 200);
        assert_true(ctx.t_monotonic);
        assert_true(req.t_first_byte_ns >= req.t_start_ns);
        assert_true(req.t_done_ns >= req.t_first_byte_ns);
        assert_string_equal(ctx.request_id, "rid-1");
        if (ctx.events.len != ref.len || memcmp(ctx.events.data, ref.data, ref.len) != 0)
            fail_msg("events differ for split %zu", k);
        sse_free(&ctx.parser);
    }
    /* keep-alive: all those requests used one connection */
    assert_int_equal(testsrv_connections(s) - conns_before, 1);
    http_req_cleanup(&req);
    buf_free(&ctx.events);
    buf_free(&ref);
    http_client_free(c);
}

static void test_concurrent_requests(void **state)
{
    (void)state;
    char err[ERR_LEN];
    enum { N = 16 };
    struct http_client *c = http_client_new_for(url_base, N, transport, err);
    assert_non_null(c);
    struct http_req reqs[N];
    char urls[N][96];
    for (int i = 0; i < N; i++) {
        http_req_init(&reqs[i]);
        snprintf(urls[i], sizeof urls[i], "%s/sse/%d", url_base, i * 50);
        reqs[i].url = urls[i];
        reqs[i].timeout_s = 10;
        assert_int_equal(http_client_start(c, &reqs[i], err), 0);
    }
    assert_int_equal(http_client_active(c), N);
    while (http_client_poll(c, 1000) > 0) {
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(reqs[i].error, HTTP_OK);
        assert_int_equal(reqs[i].status, 200);
        assert_int_equal(reqs[i].body_buf.len, stream.len); /* collected, de-chunked */
        assert_memory_equal(reqs[i].body_buf.data, stream.data, stream.len);
        http_req_cleanup(&reqs[i]);
    }
    http_client_free(c);
}

/* One request to completion on a client of the transport under test. */
static int run_one(struct http_req *req, char *err)
{
    struct http_client *c = http_client_new_for(req->url, 1, transport, err);
    if (!c)
        return -1;
    if (http_client_start(c, req, err) < 0) {
        http_client_free(c);
        return -1;
    }
    while (req->active)
        http_client_poll(c, 100);
    http_client_free(c);
    req->client = NULL;
    return 0;
}

static void fetch(const char *path, struct http_req *req, double timeout_s)
{
    static char url[128];
    char err[ERR_LEN];
    snprintf(url, sizeof url, "%s%s", url_base, path);
    http_req_init(req);
    req->url = url;
    req->timeout_s = timeout_s;
    assert_int_equal(run_one(req, err), 0);
}

static void test_error_statuses_keep_body(void **state)
{
    (void)state;
    struct http_req req;
    fetch("/not-found", &req, 5);
    assert_int_equal(req.error, HTTP_OK); /* an HTTP answer, not a transport error */
    assert_int_equal(req.status, 404);
    assert_string_equal(req.body_buf.data,
                        "{\"error\":{\"message\":\"model not found\",\"code\":404}}");
    http_req_cleanup(&req);
    fetch("/boom", &req, 5);
    assert_int_equal(req.status, 500);
    assert_string_equal(req.body_buf.data, "engine failed");
    http_req_cleanup(&req);
}

static void test_connection_refused(void **state)
{
    (void)state;
    int port = testsrv_unused_port();
    char url[64], err[ERR_LEN];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/models", port);
    struct http_req req;
    http_req_init(&req);
    req.url = url;
    req.timeout_s = 5;
    assert_int_equal(run_one(&req, err), 0);
    assert_int_equal(req.error, HTTP_ERR_CONNECT);
    assert_int_equal(req.status, 0);
    assert_non_null(strstr(req.error_text, "connect failed"));
    http_req_cleanup(&req);
}

static void test_close_mid_stream(void **state)
{
    (void)state;
    struct http_req req;
    fetch("/close-mid", &req, 5);
    assert_int_equal(req.error, HTTP_ERR_RECV);
    assert_int_equal(req.status, 200);
    assert_int_equal(req.body_buf.len, 200); /* what arrived is kept */
    assert_non_null(strstr(req.error_text, "connection closed or reset"));
    http_req_cleanup(&req);
    fetch("/reset", &req, 5);
    assert_int_equal(req.error, HTTP_ERR_RECV);
    assert_int_equal(req.status, 0);
    http_req_cleanup(&req);
}

static void test_slow_server_times_out(void **state)
{
    (void)state;
    struct http_req req;
    uint64_t t0 = clock_now_ns();
    fetch("/slow", &req, 0.3);
    uint64_t took = clock_now_ns() - t0;
    assert_int_equal(req.error, HTTP_ERR_TIMEOUT);
    assert_int_equal(req.status, 200);
    assert_string_equal(req.body_buf.data, "data: one\n\n");
    assert_true(took < 1400000000ull); /* it did not wait for the server */
    http_req_cleanup(&req);
}

static void test_post_body_and_headers(void **state)
{
    (void)state;
    char url[128], err[ERR_LEN];
    snprintf(url, sizeof url, "%s/echo", url_base);
    struct http_req req;
    http_req_init(&req);
    req.url = url;
    static const char body[] = "{\"prompt\":\"hi\"}";
    req.body = body;
    req.body_len = strlen(body);
    assert_int_equal(http_req_add_header(&req, "Authorization: Bearer sk-test"), 0);
    assert_int_equal(http_req_add_header(&req, "Content-Type: application/json"), 0);
    assert_int_equal(run_one(&req, err), 0);
    assert_int_equal(req.status, 200);
    const char *got = req.body_buf.data;
    assert_non_null(strstr(got, "POST /echo"));
    assert_non_null(strstr(got, "authorization: Bearer sk-test"));
    assert_null(strstr(got, "expect:")); /* no 100-continue round trip */
    assert_non_null(strstr(got, body));
    http_req_cleanup(&req);
}

static int abort_at_first(struct http_req *req, const char *d, size_t l, uint64_t t)
{
    (void)req;
    (void)d;
    (void)l;
    (void)t;
    return 1;
}

static void test_callback_abort(void **state)
{
    (void)state;
    char url[128], err[ERR_LEN];
    snprintf(url, sizeof url, "%s/sse/10", url_base);
    struct http_req req;
    http_req_init(&req);
    req.url = url;
    req.on_data = abort_at_first;
    assert_int_equal(run_one(&req, err), 0);
    assert_int_equal(req.error, HTTP_ERR_ABORTED);
    http_req_cleanup(&req);
}

static void test_body_cap(void **state)
{
    (void)state;
    char url[128], err[ERR_LEN];
    snprintf(url, sizeof url, "%s/sse/0", url_base);
    struct http_req req;
    http_req_init(&req);
    req.url = url;
    req.max_body = 100;
    assert_int_equal(run_one(&req, err), 0);
    /* past the cap the transfer stops, with an error that says why */
    assert_int_equal(req.error, HTTP_ERR_OTHER);
    assert_non_null(strstr(req.error_text, "larger than 100 bytes"));
    assert_int_equal(req.body_buf.len, 100);
    assert_true(req.body_truncated);
    assert_true(req.bytes_received <= stream.len);
    http_req_cleanup(&req);
}

/* A server that closes after each answer, a body read to EOF, a garbage status line. */
static void test_connection_endings(void **state)
{
    (void)state;
    char err[ERR_LEN], url[128];
    snprintf(url, sizeof url, "%s/close-after", url_base);
    struct http_client *c = http_client_new_for(url_base, 1, transport, err);
    assert_non_null(c);
    for (int i = 0; i < 3; i++) { /* the connection is gone each time; the next one is new */
        struct http_req req;
        http_req_init(&req);
        req.url = url;
        req.timeout_s = 5;
        assert_int_equal(http_client_start(c, &req, err), 0);
        while (req.active)
            http_client_poll(c, 100);
        assert_int_equal(req.error, HTTP_OK);
        assert_int_equal(req.status, 200);
        assert_string_equal(req.body_buf.data, "ok");
        http_req_cleanup(&req);
    }
    http_client_free(c);
    struct http_req req;
    fetch("/to-eof", &req, 5);
    assert_int_equal(req.error, HTTP_OK);
    assert_string_equal(req.body_buf.data, "until the end");
    http_req_cleanup(&req);
    fetch("/garbage", &req, 5);
    assert_int_not_equal(req.error, HTTP_OK);
    http_req_cleanup(&req);
}

/* Makes epoll_pwait2 answer ENOSYS for this process from now on, as an old kernel would
 * (a seccomp filter; already so under an emulator that lacks it). 0 when it is missing now. */
static int hide_epoll_pwait2(void)
{
    int ep = epoll_create1(0);
    if (ep < 0)
        return -1;
    struct epoll_event ev;
    struct timespec zero = {0, 0};
    int r = epoll_pwait2(ep, &ev, 1, &zero, NULL);
    if (r < 0 && errno == ENOSYS) {
        close(ep);
        return 0;
    }
#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
#ifdef TEST_AUDIT_ARCH
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_epoll_pwait2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0) {
        r = epoll_pwait2(ep, &ev, 1, &zero, NULL);
        close(ep);
        return r < 0 && errno == ENOSYS ? 0 : -1;
    }
#endif
    close(ep);
    return -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_splits_identical),
        cmocka_unit_test(test_concurrent_requests),
        cmocka_unit_test(test_error_statuses_keep_body),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_close_mid_stream),
        cmocka_unit_test(test_slow_server_times_out),
        cmocka_unit_test(test_post_body_and_headers),
        cmocka_unit_test(test_callback_abort),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_connection_endings),
    };
    transport = HTTP_TRANSPORT_CURL;
    int failed = cmocka_run_group_tests_name("libcurl", tests, setup, teardown);
    transport = HTTP_TRANSPORT_NATIVE;
    failed += cmocka_run_group_tests_name("native", tests, setup, teardown);
    /* Once more where epoll_pwait2 is missing (kernels before 5.11, qemu-user): the native
     * client must fall back to epoll_wait, not fail or spin. */
    if (hide_epoll_pwait2() == 0)
        failed +=
            cmocka_run_group_tests_name("native without epoll_pwait2", tests, setup, teardown);
    else
        printf("[  SKIPPED ] native without epoll_pwait2: cannot install a seccomp filter here\n");
    return failed;
}
