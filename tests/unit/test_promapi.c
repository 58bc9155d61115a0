/* Unit tests for node figures from a Prometheus server (probe/promapi.c): values at a window's
 * ends from raw samples (interpolated, counter resets corrected, series that began late),
 * grouping by node, the selector merged into each query, and the failures: a query Prometheus
 * refuses, families with no series (null, with the query), nothing matched, the server not
 * reachable or not Prometheus, and waiting for the server to scrape past the run. */
#include "test_common.h"

#include "probe/nodes.h"
#include "probe/promapi.h"
#include "support/testsrv.h"
#include "util/json.h"

#include <math.h>
#include <pthread.h>

enum mode { MODE_SERIES, MODE_EMPTY, MODE_ERROR, MODE_NOT_PROMETHEUS };

struct server {
    pthread_mutex_t lock;
    enum mode mode;
    double seen;    /* max(timestamp(node_disk_read_bytes_total…)) answers this; NAN: no series */
    double seen_wr; /* the same for node_disk_written_bytes_total */
    char paths[64][512];
    int n_paths;
};

static void url_decode(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && *s != '&' && n + 1 < cap; s++) {
        unsigned v;
        if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1) {
            out[n++] = (char)v;
            s += 2;
        } else {
            out[n++] = *s == '+' ? ' ' : *s;
        }
    }
    out[n] = '\0';
}

static void answer(int fd, int status, const char *body)
{
    char head[256];
    snprintf(head, sizeof head,
             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             status, status == 200 ? "OK" : "Error", strlen(body));
    testsrv_write_str(fd, head);
    testsrv_write_str(fd, body);
}

/* Raw samples around the window [1000, 1010]. */
static const char *matrix_of(const char *family)
{
    if (strcmp(family, "node_disk_read_bytes_total") == 0)
        return "[{\"metric\":{\"__name__\":\"node_disk_read_bytes_total\",\"device\":\"nvme0n1\","
               "\"instance\":\"10.0.0.1:9100\",\"job\":\"node\"},"
               "\"values\":[[995,\"0\"],[1005,\"1000\"],[1015,\"2000\"]]},"
               "{\"metric\":{\"__name__\":\"node_disk_read_bytes_total\",\"device\":\"dm-0\","
               "\"instance\":\"10.0.0.1:9100\",\"job\":\"node\"},"
               "\"values\":[[995,\"0\"],[1005,\"1000\"],[1015,\"2000\"]]},"
               "{\"metric\":{\"__name__\":\"node_disk_read_bytes_total\",\"device\":\"sda\","
               "\"instance\":\"10.0.0.2:9100\",\"job\":\"node\",\"node\":\"worker-2\"},"
               "\"values\":[[990,\"5000\"],[1000,\"6000\"],[1004,\"100\"],[1012,\"300\"]]}]";
    if (strcmp(family, "node_disk_written_bytes_total") == 0) /* began during the window */
        return "[{\"metric\":{\"device\":\"nvme0n1\",\"instance\":\"10.0.0.1:9100\"},"
               "\"values\":[[1003,\"10\"],[1013,\"20\"]]}]";
    if (strcmp(family, "node_disk_reads_completed_total") == 0)
        /* sda began 1 s into the window with all it had counted since boot; sdb was there */
        return "[{\"metric\":{\"device\":\"sda\",\"instance\":\"10.0.0.1:9100\"},"
               "\"values\":[[1001,\"5000000000000\"],[1011,\"5000000001200\"]]},"
               "{\"metric\":{\"device\":\"sdb\",\"instance\":\"10.0.0.1:9100\"},"
               "\"values\":[[999,\"10\"],[1011,\"22\"]]}]";
    if (strcmp(family, "node_disk_writes_completed_total") == 0)
        /* two exporters of one host (one node) that both see nvme0n1: one key, not one series */
        return "[{\"metric\":{\"device\":\"nvme0n1\",\"instance\":\"10.0.0.1:9100\"},"
               "\"values\":[[995,\"100\"],[1015,\"300\"]]},"
               "{\"metric\":{\"device\":\"nvme0n1\",\"instance\":\"10.0.0.1:9101\"},"
               "\"values\":[[995,\"100000\"],[1015,\"300000\"]]}]";
    if (strcmp(family, "node_memory_MemAvailable_bytes") == 0)
        return "[{\"metric\":{\"instance\":\"10.0.0.1:9100\"},\"values\":[[995,\"8e9\"],"
               "[1005,\"7e9\"],[1009,\"6e9\"],[1011,\"5e9\"]]}]";
    return "[]";
}

static bool prometheus(int fd, const struct testsrv_request *req, void *user)
{
    struct server *sv = user;
    pthread_mutex_lock(&sv->lock);
    if (sv->n_paths < 64)
        snprintf(sv->paths[sv->n_paths++], sizeof sv->paths[0], "%s", req->path);
    enum mode mode = sv->mode;
    double seen = sv->seen, seen_wr = sv->seen_wr;
    pthread_mutex_unlock(&sv->lock);
    const char *q = strstr(req->path, "query=");
    char query[512] = "";
    if (q)
        url_decode(q + 6, query, sizeof query);
    if (strncmp(req->path, "/api/v1/query?", 14) != 0 || !q) {
        answer(fd, 404, "{\"status\":\"error\",\"error\":\"no such path\"}");
    } else if (mode == MODE_NOT_PROMETHEUS) {
        testsrv_write_str(fd, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 11\r\n\r\nbad gateway");
    } else if (mode == MODE_ERROR ||
               (strncmp(query, "DCGM_FI_DEV_FB_USED", 19) == 0 && mode == MODE_SERIES)) {
        answer(fd, 400,
               "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"1:20: parse error\"}");
    } else if (strncmp(query, "min(timestamp(up", 16) == 0) {
        /* a target with a slow interval (or one that is down) that no family is read from */
        answer(fd, 200,
               "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
               "[{\"metric\":{},\"value\":[2000,\"1400\"]}]}}");
    } else if (strncmp(query, "max(timestamp(", 14) == 0) {
        char body[256];
        const char *fam = query + 14;
        if (strncmp(fam, "node_disk_written_bytes_total", 29) == 0)
            seen = seen_wr;
        else if (strncmp(fam, "node_disk_read_bytes_total", 26) != 0)
            seen = NAN;
        if (isnan(seen))
            snprintf(body, sizeof body,
                     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}");
        else
            snprintf(body, sizeof body,
                     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
                     "[{\"metric\":{},\"value\":[2000,\"%.3f\"]}]}}",
                     seen);
        answer(fd, 200, body);
    } else {
        char family[128];
        snprintf(family, sizeof family, "%.*s", (int)strcspn(query, "{["), query);
        char body[4096];
        snprintf(body, sizeof body,
                 "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":%s}}",
                 mode == MODE_EMPTY ? "[]" : matrix_of(family));
        answer(fd, 200, body);
    }
    return true;
}

static struct testsrv *start(struct server *sv, enum mode mode, char *url, size_t cap)
{
    memset(sv, 0, sizeof *sv);
    pthread_mutex_init(&sv->lock, NULL);
    sv->mode = mode;
    sv->seen = NAN;
    sv->seen_wr = NAN;
    struct testsrv *srv = testsrv_start(prometheus, sv);
    assert_non_null(srv);
    snprintf(url, cap, "http://127.0.0.1:%d/", testsrv_port(srv));
    return srv;
}

static void set(struct server *sv, enum mode mode, double seen)
{
    pthread_mutex_lock(&sv->lock);
    sv->mode = mode;
    sv->seen = seen;
    pthread_mutex_unlock(&sv->lock);
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void test_value_at(void **state)
{
    (void)state;
    json_t *v = json_loads("[[10,\"100\"],[20,\"200\"],[30,\"50\"],[40,\"150\"]]", 0, NULL);
    double x;
    assert_false(promapi_value_at(v, 9.9, true, &x)); /* before the first sample */
    assert_true(promapi_value_at(v, 10, true, &x) && x == 100);
    assert_true(promapi_value_at(v, 15, true, &x) && x == 150);
    /* 200 then 50: a reset; corrected 200 + 50 = 250 at 30, 350 at 40 */
    assert_true(promapi_value_at(v, 25, true, &x) && x == 225);
    assert_true(promapi_value_at(v, 35, true, &x) && x == 300);
    assert_true(promapi_value_at(v, 99, true, &x) && x == 350); /* past the last: as it was */
    /* a gauge: the last sample at or before t, never a value it did not have */
    assert_true(promapi_value_at(v, 25, false, &x) && x == 200);
    assert_true(promapi_value_at(v, 30, false, &x) && x == 50);
    json_decref(v);
    v = json_loads("[[10,17]]", 0, NULL); /* not Prometheus' ["ts", "value"] */
    assert_false(promapi_value_at(v, 10, true, &x));
    json_decref(v);
    v = json_array();
    assert_false(promapi_value_at(v, 10, true, &x));
    json_decref(v);
}

static const json_t *missing_of(const json_t *node, const char *family)
{
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(node, "missing"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "family")), family) == 0)
            return m;
    }
    return NULL;
}

static void test_window_nodes(void **state)
{
    (void)state;
    struct server sv;
    char url[128];
    struct testsrv *srv = start(&sv, MODE_SERIES, url, sizeof url);
    struct promapi_config cfg = {url, "{job=~\"node|dcgm\"}", 5, NULL};
    json_t *raw = json_object();
    json_t *nodes = promapi_window_nodes(&cfg, 1000, 1010, raw);
    assert_int_equal(json_object_size(nodes), 2);
    const json_t *a = json_object_get(nodes, "10.0.0.1"), *w = json_object_get(nodes, "worker-2");
    assert_non_null(a);
    assert_non_null(w);
    assert_string_equal(json_string_value(json_object_get(a, "source")), "prometheus");
    assert_string_equal(json_string_value(json_object_get(a, "url")), url);
    assert_string_equal(json_string_value(json_array_get(json_object_get(a, "instances"), 0)),
                        "10.0.0.1:9100");
    assert_true(json_is_true(json_object_get(a, "available")));
    /* 500 at 1000, 1500 at 1010 (interpolated); dm-0 stacks on nvme0n1: out of the total */
    const json_t *d = json_object_get(a, "disk");
    assert_true(num(d, "read_bytes") == 1000);
    assert_true(num(json_object_get(json_object_get(d, "by_device"), "dm-0"), "read_bytes") ==
                1000);
    /* began at 1003: no value at the start, so no delta (never counted from 0): null, named,
     * and missing with its query */
    assert_true(json_is_null(json_object_get(d, "written_bytes")));
    const json_t *late = missing_of(a, "node_disk_written_bytes_total");
    assert_non_null(late);
    assert_string_equal(json_string_value(json_object_get(late, "query")),
                        "node_disk_written_bytes_total{job=~\"node|dcgm\"}");
    assert_non_null(strstr(json_string_value(json_object_get(late, "reason")),
                           "no sample at or before the phase's start"));
    /* sda began 1 s in: left out of the total (not 5e12 since boot); sdb's 10 counts */
    assert_true(num(d, "reads_completed") == 10);
    assert_null(missing_of(a, "node_disk_reads_completed_total"));
    char *late_series = json_dumps(json_object_get(a, "series_without_start"), JSON_COMPACT);
    assert_string_equal(late_series, "[\"node_disk_written_bytes_total{device=\\\"nvme0n1\\\"}\","
                                     "\"node_disk_reads_completed_total{device=\\\"sda\\\"}\"]");
    free(late_series);
    /* the second exporter's nvme0n1 is not added to the first's: 100 over the window, one
     * collision counted */
    assert_true(num(d, "writes_completed") == 100);
    assert_true(num(a, "collided_series") == 1);
    assert_true(num(json_object_get(a, "memory"), "node_memory_MemAvailable_bytes_after") == 6e9);
    /* worker-2 restarted its counter inside the window: 6000 -> 6250 after the correction */
    const json_t *dw = json_object_get(w, "disk");
    assert_true(num(dw, "read_bytes") == 250);
    assert_true(json_is_null(json_object_get(dw, "written_bytes")));
    /* and the reset is listed, as a scraped node's is */
    char *resets = json_dumps(json_object_get(w, "counter_resets"), JSON_COMPACT);
    assert_string_equal(
        resets, "[\"node_disk_read_bytes_total{device=\\\"sda\\\",node=\\\"worker-2\\\"}\"]");
    free(resets);
    assert_null(json_object_get(a, "counter_resets"));
    /* a family with no series: null, with the query that found nothing; a refused one: its error */
    const json_t *m = missing_of(w, "node_disk_written_bytes_total");
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "query")),
                        "node_disk_written_bytes_total{job=~\"node|dcgm\"}");
    m = missing_of(a, "DCGM_FI_DEV_FB_USED");
    assert_non_null(strstr(json_string_value(json_object_get(m, "error")), "bad_data"));
    assert_non_null(strstr(json_string_value(json_object_get(m, "error")), "parse error"));
    assert_true(json_is_null(json_object_get(a, "gpu")));
    /* the selector merged into each family's query, the raw samples around the window */
    bool asked = false;
    for (int i = 0; i < sv.n_paths; i++)
        asked |= strcmp(sv.paths[i], "/api/v1/query?query=node_disk_read_bytes_total%7Bjob%3D~"
                                     "%22node%7Cdcgm%22%7D%5B610000ms%5D&time=1310.000") == 0;
    assert_true(asked);
    /* the answers kept as they came */
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(raw, "node_disk_read_bytes_total"), "status")),
                        "success");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(raw, "DCGM_FI_DEV_FB_USED"), "status")),
        "error");
    json_decref(raw);
    json_decref(nodes);
    testsrv_stop(srv);
    pthread_mutex_destroy(&sv.lock);
}

/* When no node can be read, one object says why, with the query; never zeros. */
static void test_window_failures(void **state)
{
    (void)state;
    struct server sv;
    char url[128];
    struct testsrv *srv = start(&sv, MODE_EMPTY, url, sizeof url);
    struct promapi_config cfg = {url, NULL, 5, NULL};
    json_t *nodes = promapi_window_nodes(&cfg, 1000, 1010, NULL);
    const json_t *p = json_object_get(nodes, "prometheus");
    assert_int_equal(json_object_size(nodes), 1);
    assert_true(json_is_false(json_object_get(p, "available")));
    assert_string_equal(json_string_value(json_object_get(p, "reason")),
                        "no series of any known family matched (e.g. node_disk_read_bytes_total "
                        "found nothing)");
    assert_string_equal(json_string_value(json_object_get(p, "query")),
                        "node_disk_read_bytes_total");
    json_decref(nodes);

    set(&sv, MODE_ERROR, NAN);
    nodes = promapi_window_nodes(&cfg, 1000, 1010, NULL);
    p = json_object_get(nodes, "prometheus");
    assert_true(json_is_false(json_object_get(p, "available")));
    assert_non_null(strstr(json_string_value(json_object_get(p, "reason")),
                           "queries failed and none found a series"));
    json_decref(nodes);
    testsrv_stop(srv);
    pthread_mutex_destroy(&sv.lock);

    char down[64];
    snprintf(down, sizeof down, "http://127.0.0.1:%d", testsrv_unused_port());
    cfg.url = down;
    nodes = promapi_window_nodes(&cfg, 1000, 1010, NULL);
    p = json_object_get(nodes, "prometheus");
    assert_true(json_is_false(json_object_get(p, "available")));
    const char *why = json_string_value(json_object_get(p, "reason"));
    assert_non_null(strstr(why, down));
    assert_non_null(strstr(why, "(query node_disk_read_bytes_total["));
    json_decref(nodes);
}

/* The wait is on the families' own series, each family's newest sample: a target that no
 * family is read from (its up is 100 s behind here) holds nothing up; a family with no series
 * neither. */
static void test_wait_past(void **state)
{
    (void)state;
    struct server sv;
    char url[128], q[512], err[512];
    struct testsrv *srv = start(&sv, MODE_SERIES, url, sizeof url);
    struct promapi_config cfg = {url, "{job=\"node\"}", 0.3, NULL};
    set(&sv, MODE_SERIES, 1500.5);
    pthread_mutex_lock(&sv.lock);
    sv.seen_wr = 1502;
    pthread_mutex_unlock(&sv.lock);
    assert_int_equal(promapi_wait_past(&cfg, 1500, q, sizeof q, err), 0);
    const char *want = "/api/v1/query?query=max%28timestamp%28node_disk_read_bytes_total%7Bjob%3D"
                       "%22node%22%7D%29%29&time=";
    bool asked = false;
    for (int i = 0; i < sv.n_paths; i++)
        asked |= strncmp(sv.paths[i], want, strlen(want)) == 0;
    assert_true(asked);
    set(&sv, MODE_SERIES, 1495);
    assert_int_equal(promapi_wait_past(&cfg, 1500, q, sizeof q, err), PROMAPI_BEHIND);
    assert_non_null(strstr(err, "the newest sample of node_disk_read_bytes_total was still 5.0 s "
                                "before the last phase's end"));
    assert_string_equal(q, "max(timestamp(node_disk_read_bytes_total{job=\"node\"}))");
    /* an interrupted run waits no longer, however long the timeout */
    volatile sig_atomic_t stop = 1;
    struct promapi_config stopped = {url, NULL, 3600, &stop};
    assert_int_equal(promapi_wait_past(&stopped, 1500, q, sizeof q, err), PROMAPI_BEHIND);
    assert_non_null(strstr(err, "when the run was interrupted the newest sample of "));
    set(&sv, MODE_SERIES, NAN);
    pthread_mutex_lock(&sv.lock);
    sv.seen_wr = NAN;
    pthread_mutex_unlock(&sv.lock);
    assert_int_equal(promapi_wait_past(&cfg, 1500, q, sizeof q, err), PROMAPI_UNAVAILABLE);
    assert_string_equal(err, "no series of any known family matches: "
                             "max(timestamp(node_disk_read_bytes_total{job=\"node\"})) found "
                             "nothing, nor did the other families'");
    set(&sv, MODE_NOT_PROMETHEUS, NAN);
    assert_int_equal(promapi_wait_past(&cfg, 1500, q, sizeof q, err), PROMAPI_UNAVAILABLE);
    assert_non_null(strstr(err, "HTTP 502"));
    assert_non_null(strstr(err, "not Prometheus' API"));
    assert_string_equal(q, "max(timestamp(node_disk_read_bytes_total{job=\"node\"}))");
    testsrv_stop(srv);
    pthread_mutex_destroy(&sv.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_at),
        cmocka_unit_test(test_window_nodes),
        cmocka_unit_test(test_window_failures),
        cmocka_unit_test(test_wait_past),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
