/*
 * Unit tests for the transport seam of net/http.h: the same requests on libcurl and on the
 * native client, against one real server on 127.0.0.1, must give the same results: status,
 * body, header callbacks, the arrival times of the body's parts (a server pause shows as the same
 * gap on both), and the same error class for a refused connection, a reset, a closed-early
 * answer and a timeout. Also the interface's own header list: lines reach the server as given,
 * a malformed line or an allocation failure marks the list failed, and a failed list never
 * starts on either transport.
 */
#include "test_common.h"

#include "net/http.h"
#include "support/testsrv.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fault.h"

#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#define PAUSE_MS 120

static char url_base[64];

static bool handler(int fd, const struct testsrv_request *req, void *user)
{
    (void)user;
    if (strcmp(req->path, "/two-parts") == 0) {
        /* chunked: part one, a pause, part two; each transport must time them apart */
        testsrv_write_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                              "X-Request-Id: rid-7\r\nX-Trace: t1\r\n\r\n"
                              "6\r\nfirst|\r\n");
        testsrv_sleep_ms(PAUSE_MS);
        testsrv_write_str(fd, "6\r\nsecond\r\n0\r\n\r\n");
        return true;
    }
    if (strcmp(req->path, "/teapot") == 0) {
        testsrv_write_str(fd, "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 5\r\n\r\nshort");
        return true;
    }
    if (strcmp(req->path, "/echo") == 0) {
        char h[128];
        snprintf(h, sizeof h, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                 strlen(req->headers));
        testsrv_write_str(fd, h);
        testsrv_write_str(fd, req->headers);
        return true;
    }
    if (strcmp(req->path, "/rst") == 0) {
        /* an abortive close: the client sees a reset, not an orderly end */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        return false;
    }
    if (strcmp(req->path, "/cut") == 0) {
        testsrv_write_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b");
        return false;
    }
    if (strcmp(req->path, "/stall") == 0) {
        testsrv_write_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome");
        testsrv_sleep_ms(1000);
        return false;
    }
    testsrv_write_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    return true;
}

/* What one request gave, as the caller of the interface sees it. */
struct outcome {
    long status;
    enum http_error error;
    char error_text[256];
    struct buf body;
    uint64_t part_t[16]; /* arrival time of each on_data call */
    size_t parts;
    size_t second_at; /* index of the call that carried "second" (SIZE_MAX: none) */
    char request_id[32];
    int headers_seen;
    uint64_t t_start, t_first, t_done;
};

static int on_data(struct http_req *req, const char *data, size_t len, uint64_t t_ns)
{
    struct outcome *o = req->user;
    if (o->second_at == SIZE_MAX && memchr(data, 's', len) && o->body.len + len > 6)
        o->second_at = o->parts;
    if (o->parts < 16)
        o->part_t[o->parts] = t_ns;
    o->parts++;
    buf_append(&o->body, data, len);
    return buf_failed(&o->body) ? 1 : 0;
}

static void on_header(struct http_req *req, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    struct outcome *o = req->user;
    o->headers_seen++;
    if (nlen == 12 && strncasecmp(name, "x-request-id", 12) == 0)
        snprintf(o->request_id, sizeof o->request_id, "%.*s", (int)vlen, value);
}

/* Run path on transport t to completion; the outcome into o (free o->body). */
static void run_on(enum http_transport t, const char *base, const char *path, double timeout_s,
                   struct outcome *o)
{
    memset(o, 0, sizeof *o);
    o->second_at = SIZE_MAX;
    char url[160], err[ERR_LEN];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct http_client *c = http_client_new_for(url, 2, t, err);
    assert_non_null(c);
    assert_string_equal(http_client_transport(c), t == HTTP_TRANSPORT_CURL ? "libcurl" : "native");
    struct http_req req;
    http_req_init(&req);
    req.url = url;
    req.timeout_s = timeout_s;
    req.connect_timeout_s = 2;
    req.on_data = on_data;
    req.on_header = on_header;
    req.user = o;
    assert_int_equal(http_req_add_header(&req, "Content-Type: application/json"), 0);
    assert_int_equal(http_client_start(c, &req, err), 0);
    while (req.active)
        assert_true(http_client_poll(c, 100) >= 0);
    assert_int_equal(http_client_active(c), 0);
    o->status = req.status;
    o->error = req.error;
    snprintf(o->error_text, sizeof o->error_text, "%s", req.error_text);
    o->t_start = req.t_start_ns;
    o->t_first = req.t_first_byte_ns;
    o->t_done = req.t_done_ns;
    http_client_free(c);
    http_req_cleanup(&req); /* the request's transport state outlives its client */
}

/* The error class's words, the same on both transports (the rows' error text starts so). */
static void assert_same(const struct outcome *a, const struct outcome *b)
{
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->error, b->error);
    assert_int_equal(a->body.len, b->body.len);
    if (a->body.len)
        assert_memory_equal(a->body.data, b->body.data, a->body.len);
    assert_string_equal(a->request_id, b->request_id);
    size_t wa = strcspn(a->error_text, ":"), wb = strcspn(b->error_text, ":");
    assert_int_equal(wa, wb);
    assert_memory_equal(a->error_text, b->error_text, wa);
}

static void both(const char *path, double timeout_s, struct outcome *curl, struct outcome *nat)
{
    run_on(HTTP_TRANSPORT_CURL, url_base, path, timeout_s, curl);
    run_on(HTTP_TRANSPORT_NATIVE, url_base, path, timeout_s, nat);
    assert_same(curl, nat);
}

static void test_same_body_and_part_times(void **state)
{
    (void)state;
    struct outcome o[2];
    both("/two-parts", 5, &o[0], &o[1]);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(o[k].status, 200);
        assert_int_equal(o[k].error, HTTP_OK);
        assert_int_equal(o[k].body.len, 12);
        assert_memory_equal(o[k].body.data, "first|second", 12);
        assert_string_equal(o[k].request_id, "rid-7");
        assert_true(o[k].headers_seen >= 2);
        /* the times are those of arrival: the server's pause lies between the parts */
        assert_true(o[k].parts >= 2 && o[k].parts <= 16);
        assert_true(o[k].second_at != SIZE_MAX && o[k].second_at > 0);
        uint64_t gap = o[k].part_t[o[k].second_at] - o[k].part_t[0];
        assert_true(gap >= (PAUSE_MS - 20) * 1000000ull);
        assert_true(o[k].t_first == o[k].part_t[0]);
        assert_true(o[k].t_start <= o[k].t_first && o[k].t_first <= o[k].t_done);
        for (size_t i = 1; i < o[k].parts; i++)
            assert_true(o[k].part_t[i] >= o[k].part_t[i - 1]);
        buf_free(&o[k].body);
    }
}

static void test_same_error_status(void **state)
{
    (void)state;
    struct outcome o[2];
    both("/teapot", 5, &o[0], &o[1]);
    assert_int_equal(o[0].status, 418);
    assert_int_equal(o[0].error, HTTP_OK); /* an answer, not a transport error */
    assert_string_equal(buf_cstr(&o[0].body), "short");
    buf_free(&o[0].body);
    buf_free(&o[1].body);
}

static void test_same_refused(void **state)
{
    (void)state;
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", testsrv_unused_port());
    struct outcome o[2];
    run_on(HTTP_TRANSPORT_CURL, base, "/x", 5, &o[0]);
    run_on(HTTP_TRANSPORT_NATIVE, base, "/x", 5, &o[1]);
    assert_same(&o[0], &o[1]);
    assert_int_equal(o[0].error, HTTP_ERR_CONNECT);
    assert_int_equal(o[0].status, 0);
    assert_non_null(strstr(o[1].error_text, "connect failed"));
    buf_free(&o[0].body);
    buf_free(&o[1].body);
}

static void test_same_reset_and_cut(void **state)
{
    (void)state;
    struct outcome o[2];
    both("/rst", 5, &o[0], &o[1]);
    assert_int_equal(o[0].error, HTTP_ERR_RECV);
    assert_int_equal(o[0].status, 0);
    assert_int_equal(o[0].body.len, 0);
    assert_non_null(strstr(o[0].error_text, "connection closed or reset"));
    buf_free(&o[0].body);
    buf_free(&o[1].body);
    both("/cut", 5, &o[0], &o[1]);
    assert_int_equal(o[0].error, HTTP_ERR_RECV);
    assert_int_equal(o[0].status, 200);
    assert_string_equal(buf_cstr(&o[1].body), "only ten b"); /* what arrived is kept */
    buf_free(&o[0].body);
    buf_free(&o[1].body);
}

static void test_same_timeout(void **state)
{
    (void)state;
    struct outcome o[2];
    uint64_t t0 = clock_now_ns();
    both("/stall", 0.3, &o[0], &o[1]);
    assert_true(clock_now_ns() - t0 < 1800000000ull); /* neither waited for the server */
    assert_int_equal(o[0].error, HTTP_ERR_TIMEOUT);
    assert_int_equal(o[0].status, 200);
    assert_string_equal(buf_cstr(&o[1].body), "some");
    for (int k = 0; k < 2; k++) {
        assert_true(o[k].t_done - o[k].t_start >= 250000000ull);
        buf_free(&o[k].body);
    }
}

/* The header list is the interface's own: the same lines reach the server on both transports,
 * and a list rebuilt with http_req_reset_headers replaces the old one. */
static void test_header_lines_reach_server(void **state)
{
    (void)state;
    enum http_transport ts[] = {HTTP_TRANSPORT_CURL, HTTP_TRANSPORT_NATIVE};
    for (size_t k = 0; k < 2; k++) {
        char url[128], err[ERR_LEN];
        snprintf(url, sizeof url, "%s/echo", url_base);
        struct http_client *c = http_client_new_for(url, 1, ts[k], err);
        assert_non_null(c);
        struct http_req req;
        http_req_init(&req);
        req.url = url;
        req.timeout_s = 5;
        for (int round = 0; round < 2; round++) {
            http_req_reset_headers(&req);
            assert_int_equal(http_req_add_header(&req, "Accept: text/event-stream"), 0);
            assert_int_equal(http_req_add_headerf(&req, "x-request-id: run-%d", round), 0);
            assert_int_equal(req.headers.n, 2);
            assert_int_equal(http_client_start(c, &req, err), 0);
            while (req.active)
                http_client_poll(c, 100);
            assert_int_equal(req.status, 200);
            const char *got = buf_cstr(&req.body_buf);
            assert_non_null(strstr(got, "accept: text/event-stream"));
            char want[32];
            snprintf(want, sizeof want, "x-request-id: run-%d", round);
            assert_non_null(strstr(got, want));
            snprintf(want, sizeof want, "x-request-id: run-%d", 1 - round);
            assert_null(strstr(got, want)); /* the previous round's line is gone */
        }
        http_client_free(c);
        http_req_cleanup(&req);
    }
}

/* A malformed line (header injection) or an allocation failure marks the list failed; a failed
 * list never starts, on either transport, until it is reset. */
static void test_failed_header_list_never_starts(void **state)
{
    (void)state;
    enum http_transport ts[] = {HTTP_TRANSPORT_CURL, HTTP_TRANSPORT_NATIVE};
    for (size_t k = 0; k < 2; k++) {
        char url[128], err[ERR_LEN];
        snprintf(url, sizeof url, "%s/echo", url_base);
        struct http_client *c = http_client_new_for(url, 1, ts[k], err);
        assert_non_null(c);
        struct http_req req;
        http_req_init(&req);
        req.url = url;
        assert_int_equal(http_req_add_header(&req, "A: b"), 0);
        assert_int_equal(http_req_add_header(&req, "Evil: x\r\nInjected: y"), -1);
        assert_true(req.headers.failed);
        assert_int_equal(http_req_add_header(&req, ""), -1);
        assert_int_equal(http_client_start(c, &req, err), -1);
        assert_non_null(strstr(err, "header"));
        assert_false(req.active);
        assert_int_equal(http_client_active(c), 0);

        http_req_clear_headers(&req); /* its memory too, so that the next line must allocate */
        assert_false(req.headers.failed);
        fault_arm(1, true); /* the list's buffer cannot grow */
        assert_int_equal(http_req_add_headerf(&req, "Authorization: Bearer %s", "sk-x"), -1);
        fault_disarm();
        assert_true(req.headers.failed);
        assert_int_equal(http_client_start(c, &req, err), -1);

        http_req_reset_headers(&req);
        assert_int_equal(http_req_add_header(&req, "A: b"), 0);
        req.timeout_s = 5;
        assert_int_equal(http_client_start(c, &req, err), 0);
        while (req.active)
            http_client_poll(c, 100);
        assert_int_equal(req.status, 200);
        http_client_free(c);
        http_req_cleanup(&req);
    }
}

/* A request run on one transport and then on the other: each start uses the client's. */
static void test_request_moves_between_transports(void **state)
{
    (void)state;
    char url[128], err[ERR_LEN];
    snprintf(url, sizeof url, "%s/teapot", url_base);
    struct http_client *cc = http_client_new_for(url, 1, HTTP_TRANSPORT_CURL, err);
    struct http_client *nc = http_client_new_for(url, 1, HTTP_TRANSPORT_NATIVE, err);
    assert_non_null(cc);
    assert_non_null(nc);
    struct http_req req;
    http_req_init(&req);
    req.url = url;
    req.timeout_s = 5;
    struct http_client *order[] = {cc, nc, cc};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(http_client_start(order[i], &req, err), 0);
        while (req.active)
            http_client_poll(order[i], 100);
        assert_int_equal(req.status, 418);
        if (strcmp(buf_cstr(&req.body_buf), "short") != 0)
            fail_msg("start %zu: body \"%s\", error %s", i, buf_cstr(&req.body_buf),
                     req.error_text);
    }
    http_req_cleanup(&req);
    http_client_free(cc);
    http_client_free(nc);
}

static int setup(void **state)
{
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
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_body_and_part_times),
        cmocka_unit_test(test_same_error_status),
        cmocka_unit_test(test_same_refused),
        cmocka_unit_test(test_same_reset_and_cut),
        cmocka_unit_test(test_same_timeout),
        cmocka_unit_test(test_header_lines_reach_server),
        cmocka_unit_test(test_failed_header_list_never_starts),
        cmocka_unit_test(test_request_moves_between_transports),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
