/* Unit tests for other nodes' metrics (probe/nodes.c): the known families read from real
 * node_exporter text and dcgm-exporter text, series keys, a node's per-phase figures (the disks
 * that count, counters that reset, figures that are missing), the cluster roll-up, and scraping
 * over HTTP with its failures (refused, 404, an endpoint that is not an exporter). */
#include "test_common.h"

#include "probe/nodes.h"
#include "support/testsrv.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/json.h"

#include <math.h>

static char *fixture(const char *rel)
{
    char path[4096];
    struct buf b = BUF_INIT;
    char err[512];
    assert_int_equal(fs_read_file(test_fixture(rel, path, sizeof path), &b, 1u << 20, err), 0);
    return buf_detach(&b);
}

static struct node_snap parse(const char *text, double wall_s)
{
    struct node_snap s = {.wall_s = wall_s};
    nodes_parse(text, strlen(text), &s);
    return s;
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

/* Real node_exporter output: only the known families are kept, one series per device. */
static void test_node_exporter_text(void **state)
{
    (void)state;
    char *text = fixture("nodes/node_exporter.txt");
    struct node_snap s = parse(text, 1);
    assert_true(s.ok);
    assert_true(num(s.series, "node_disk_read_bytes_total{device=\"vda\"}") == 2.671128832e+11);
    assert_true(num(s.series, "node_disk_written_bytes_total{device=\"zram0\"}") == 0);
    assert_true(num(s.series, "node_network_receive_bytes_total{device=\"eth0\"}") ==
                4.10036721e+08);
    assert_true(num(s.series, "node_memory_Dirty_bytes") == 1.3824e+08);
    /* families kvbench does not read stay out */
    const char *key;
    const json_t *v;
    json_object_foreach(s.series, key, v)
    {
        assert_non_null(nodes_family(key, strcspn(key, "{")));
        assert_null(strstr(key, "go_gc"));
        assert_null(strstr(key, "node_disk_io_time"));
    }
    node_snap_free(&s);
    free(text);
}

/* dcgm-exporter's labels are kept sorted (instance and job dropped); names with or without
 * _total find their family. */
static void test_dcgm_and_keys(void **state)
{
    (void)state;
    char *text = fixture("nodes/dcgm_exporter.txt");
    struct node_snap s = parse(text, 1);
    assert_true(s.ok);
    assert_true(num(s.series, "DCGM_FI_DEV_GPU_UTIL{DCGM_FI_DRIVER_VERSION=\"535.104.05\","
                              "Hostname=\"gpu-node-1\",UUID=\"GPU-604ac76c-d9cf-fef3-62e9-"
                              "d92044ab6e52\",device=\"nvidia0\",gpu=\"0\",modelName=\"NVIDIA "
                              "H100 80GB HBM3\"}") == 87);
    assert_null(json_object_get(s.series, "DCGM_FI_DEV_SM_CLOCK")); /* not a known family */
    node_snap_free(&s);
    free(text);

    s = parse("kvbm_disk_bytes_read_total{instance=\"a:1\",job=\"kvbm\"} 4096\n"
              "node_disk_read_bytes{device=\"sda\",instance=\"x\"} 7\n",
              1);
    assert_true(s.ok);
    assert_true(num(s.series, "kvbm_disk_bytes_read") == 4096);
    assert_true(num(s.series, "node_disk_read_bytes_total{device=\"sda\"}") == 7);
    node_snap_free(&s);

    /* escapes survive the key and come back out of it */
    struct node_label l[2] = {{"zz", 2, "a\"b\\c\nd"}, {"device", 6, "sda"}};
    struct buf k = BUF_INIT;
    assert_int_equal(nodes_series_key(&k, "node_disk_read_bytes_total", l, 2), 0);
    assert_string_equal(buf_cstr(&k),
                        "node_disk_read_bytes_total{device=\"sda\",zz=\"a\\\"b\\\\c\\nd\"}");
    char out[32];
    assert_true(nodes_key_label(buf_cstr(&k), "zz", out, sizeof out));
    assert_string_equal(out, "a\"b\\c\nd");
    assert_false(nodes_key_label(buf_cstr(&k), "gpu", out, sizeof out));
    buf_free(&k);
}

/* A name is its family with or without one _total, never two; series whose keys collide (only
 * instance differs, labels or values cut) are not summed: the first is kept, the rest counted. */
static void test_names_and_collisions(void **state)
{
    (void)state;
    const char *twice = "node_disk_read_bytes_total_total";
    assert_null(nodes_family(twice, strlen(twice)));
    assert_non_null(nodes_family("node_disk_read_bytes", strlen("node_disk_read_bytes")));
    assert_non_null(
        nodes_family("kvbm_disk_bytes_read_total", strlen("kvbm_disk_bytes_read_total")));
    struct node_snap s = parse("node_disk_read_bytes_total_total{device=\"sda\"} 5\n", 1);
    assert_false(s.ok);

    struct buf b = BUF_INIT, a = BUF_INIT;
    char longv[400];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    /* two exporters behind one endpoint: the same device under two instances; two devices whose
     * names differ only past the 256th character */
    const char *fmt = "node_disk_read_bytes_total{device=\"sda\",instance=\"a:9100\"} %d\n"
                      "node_disk_read_bytes_total{device=\"sda\",instance=\"b:9100\"} %d\n"
                      "node_disk_written_bytes_total{device=\"%s1\"} %d\n"
                      "node_disk_written_bytes_total{device=\"%s2\"} %d\n";
    buf_printf(&b, fmt, 100, 1000000, longv, 10, longv, 5000000);
    buf_printf(&a, fmt, 150, 2000000, longv, 30, longv, 9000000);
    assert_false(buf_failed(&b) || buf_failed(&a));
    struct node_snap sb = parse(buf_cstr(&b), 1), sa = parse(buf_cstr(&a), 2);
    assert_true(num(sa.series, "node_disk_read_bytes_total{device=\"sda\"}") == 150);
    json_t *o = nodes_phase_json(&sb, &sa);
    const json_t *d = json_object_get(o, "disk");
    assert_true(num(d, "read_bytes") == 50);
    assert_true(num(d, "written_bytes") == 20);
    assert_true(num(o, "collided_series") == 2);
    json_decref(o);
    node_snap_free(&sb);
    node_snap_free(&sa);
    buf_free(&b);
    buf_free(&a);
}

/* An endpoint that answers without any known family is not a node of zeros. */
static void test_wrong_families(void **state)
{
    (void)state;
    struct node_snap s = parse("http_requests_total 5\nprocess_cpu_seconds_total 1\n", 1);
    assert_false(s.ok);
    assert_null(s.series);
    assert_non_null(strstr(s.error, "none of the known families"));
    assert_non_null(strstr(s.error, "2 samples"));
    s = parse("{\"not\": \"prometheus\"}", 1);
    assert_false(s.ok);
}

static const char BEFORE[] = "node_disk_read_bytes_total{device=\"nvme0n1\"} 1000\n"
                             "node_disk_read_bytes_total{device=\"nvme0n1p1\"} 900\n"
                             "node_disk_read_bytes_total{device=\"nvme0n10\"} 0\n"
                             "node_disk_read_bytes_total{device=\"dm-0\"} 900\n"
                             "node_disk_read_bytes_total{device=\"md127\"} 0\n"
                             "node_disk_read_bytes_total{device=\"sda\"} 0\n"
                             "node_disk_read_bytes_total{device=\"sda2\"} 0\n"
                             "node_disk_read_bytes_total{device=\"loop3\"} 0\n"
                             "node_disk_written_bytes_total{device=\"nvme0n1\"} 5000\n"
                             "node_disk_written_bytes_total{device=\"dm-0\"} 5000\n"
                             "node_network_receive_bytes_total{device=\"eth0\"} 100\n"
                             "node_network_receive_bytes_total{device=\"lo\"} 100\n"
                             "node_network_transmit_bytes_total{device=\"eth0\"} 300\n"
                             "node_memory_MemAvailable_bytes 8e9\n";
static const char AFTER[] = "node_disk_read_bytes_total{device=\"nvme0n1\"} 2049576\n"
                            "node_disk_read_bytes_total{device=\"nvme0n1p1\"} 2049476\n"
                            "node_disk_read_bytes_total{device=\"nvme0n10\"} 1048576\n"
                            "node_disk_read_bytes_total{device=\"dm-0\"} 2049476\n"
                            "node_disk_read_bytes_total{device=\"md127\"} 3000\n"
                            "node_disk_read_bytes_total{device=\"sda\"} 1048576\n"
                            "node_disk_read_bytes_total{device=\"sda2\"} 1048576\n"
                            "node_disk_read_bytes_total{device=\"loop3\"} 4096\n"
                            "node_disk_written_bytes_total{device=\"nvme0n1\"} 105000\n"
                            "node_disk_written_bytes_total{device=\"dm-0\"} 105000\n"
                            "node_network_receive_bytes_total{device=\"eth0\"} 1100\n"
                            "node_network_receive_bytes_total{device=\"lo\"} 900100\n"
                            "node_network_transmit_bytes_total{device=\"eth0\"} 200\n"
                            "node_memory_MemAvailable_bytes 7e9\n"
                            "node_memory_Dirty_bytes 4096\n";

/* Physical disks count once; stacked, virtual devices and partitions stay in by_device only. */
static void test_phase_disk_network_memory(void **state)
{
    (void)state;
    struct node_snap b = parse(BEFORE, 100.0), a = parse(AFTER, 102.0);
    json_t *o = nodes_phase_json(&b, &a);
    assert_true(json_is_true(json_object_get(o, "available")));
    assert_true(num(o, "seconds") == 2.0);
    const json_t *d = json_object_get(o, "disk");
    /* nvme0n1 (2048576) + nvme0n10 (1048576, not a partition of nvme0n1) + sda (1048576) */
    assert_true(num(d, "read_bytes") == 4145728);
    assert_true(num(d, "written_bytes") == 100000);
    assert_true(fabs(num(d, "read_mib_delta") - 4145728 / 1048576.0) < 1e-9);
    assert_true(fabs(num(d, "read_mb_s") - 4145728 / 1e6 / 2) < 1e-9);
    assert_true(json_is_null(json_object_get(d, "reads_completed"))); /* family missing: null */
    const json_t *devs = json_object_get(d, "devices");
    assert_int_equal(json_array_size(devs), 3);
    char *dl = json_dumps(devs, JSON_COMPACT);
    assert_string_equal(dl, "[\"nvme0n1\",\"nvme0n10\",\"sda\"]");
    free(dl);
    const json_t *by = json_object_get(d, "by_device");
    assert_true(num(json_object_get(by, "dm-0"), "read_bytes") == 2048576);
    assert_true(num(json_object_get(by, "md127"), "read_bytes") == 3000);
    assert_true(num(json_object_get(by, "loop3"), "read_bytes") == 4096);
    assert_true(num(json_object_get(by, "sda2"), "read_bytes") == 1048576);
    const json_t *n = json_object_get(o, "network");
    assert_true(num(n, "receive_bytes") == 1000); /* lo left out */
    assert_true(num(json_object_get(json_object_get(n, "by_device"), "lo"), "receive_bytes") ==
                900000);
    /* a counter that went back (eth0 transmit 300 -> 200) counts from 0: 200, and is listed */
    assert_true(num(n, "transmit_bytes") == 200);
    const json_t *resets = json_object_get(o, "counter_resets");
    assert_int_equal(json_array_size(resets), 1);
    assert_string_equal(json_string_value(json_array_get(resets, 0)),
                        "node_network_transmit_bytes_total{device=\"eth0\"}");
    const json_t *m = json_object_get(o, "memory");
    assert_true(num(m, "node_memory_MemAvailable_bytes_after") == 7e9);
    assert_true(num(m, "node_memory_Dirty_bytes_after") == 4096);
    assert_true(json_is_null(json_object_get(m, "node_memory_Cached_bytes_after")));
    /* no GPU and no KV family on this node: whole sections null, not zeros */
    assert_true(json_is_null(json_object_get(o, "gpu")));
    assert_true(json_is_null(json_object_get(o, "kv")));
    json_decref(o);
    node_snap_free(&b);
    node_snap_free(&a);
}

/* GPU gauges after the phase (utilisation averaged, memory summed) and the KV section with the
 * engine's own keys; a KV counter that restarted counts from 0. */
static void test_phase_gpu_kv(void **state)
{
    (void)state;
    char *dcgm = fixture("nodes/dcgm_exporter.txt");
    struct buf bt = BUF_INIT, at = BUF_INIT;
    buf_printf(&bt, "kvbm_disk_bytes_read 100\nkvbm_disk_bytes_written 1000\n"
                    "kvbm_onboard_blocks_d2d 50\nkvbench_disk_read_errors 2\n");
    buf_printf(&at,
               "%skvbm_disk_bytes_read 1048676\nkvbm_disk_bytes_written 10\n"
               "kvbm_onboard_blocks_d2d 82\nkvbm_disk_cache_hit_rate 0.5\n"
               "kvbench_disk_read_errors 2\n",
               dcgm);
    assert_false(buf_failed(&bt) || buf_failed(&at));
    struct node_snap b = parse(buf_cstr(&bt), 10), a = parse(buf_cstr(&at), 11);
    assert_true(b.ok && a.ok);
    json_t *o = nodes_phase_json(&b, &a);
    const json_t *g = json_object_get(o, "gpu");
    assert_true(num(g, "DCGM_FI_DEV_GPU_UTIL_after") == 50);
    assert_true(num(g, "DCGM_FI_DEV_FB_USED_after") == 71147);
    assert_true(num(g, "DCGM_FI_PROF_PCIE_TX_BYTES_after") == 1.5e9);
    assert_true(num(g, "gpus") == 2);
    assert_true(num(json_object_get(json_object_get(g, "by_gpu"), "1"),
                    "DCGM_FI_DEV_GPU_UTIL_after") == 13);
    const json_t *kv = json_object_get(o, "kv");
    assert_true(num(kv, "kvbm_disk_bytes_read_delta") == 1048576);
    assert_true(num(kv, "disk_read_mib_delta") == 1);
    assert_true(num(kv, "kvbm_disk_bytes_written_delta") == 10); /* restarted: from 0 */
    assert_true(num(kv, "kvbm_onboard_blocks_d2d_delta") == 32);
    assert_true(json_is_true(json_object_get(kv, "disk_rehydrate_counter_positive")));
    assert_true(num(kv, "kvbm_disk_cache_hit_rate_after") == 0.5);
    assert_true(num(kv, "kvbench_disk_read_errors_delta") == 0);
    assert_true(json_is_null(json_object_get(kv, "kvbm_offload_blocks_h2d_delta")));
    assert_true(json_is_null(json_object_get(kv, "kvbench_g1_h2d_bytes_total_delta")));
    assert_null(json_object_get(kv, "available"));
    assert_true(json_is_null(json_object_get(o, "disk")));
    assert_int_equal(json_array_size(json_object_get(o, "counter_resets")), 1);
    json_decref(o);
    node_snap_free(&b);
    node_snap_free(&a);
    buf_free(&bt);
    buf_free(&at);
    free(dcgm);
}

/* A counter series with no value before the phase (a disk attached, an engine's counter first
 * exported, mid-phase) has no delta: counting it from 0 would count everything since boot. It
 * stays out of the totals and is named; a family with no series that started is null. */
static void test_series_without_start(void **state)
{
    (void)state;
    struct node_snap b = parse("node_disk_read_bytes_total{device=\"sda\"} 1000\n"
                               "kvbm_disk_bytes_read 100\n",
                               10),
                     a = parse("node_disk_read_bytes_total{device=\"sda\"} 1090\n"
                               "node_disk_read_bytes_total{device=\"sdb\"} 5000000000000\n"
                               "node_disk_written_bytes_total{device=\"sda\"} 5000000000000\n"
                               "kvbm_disk_bytes_read 200\n"
                               "kvbm_disk_bytes_written 7000000\n",
                               20);
    json_t *o = nodes_phase_json(&b, &a);
    const json_t *d = json_object_get(o, "disk");
    assert_true(num(d, "read_bytes") == 90);
    assert_true(json_is_null(json_object_get(d, "written_bytes")));
    assert_true(json_is_null(json_object_get(d, "write_mib_delta")));
    assert_null(json_object_get(json_object_get(d, "by_device"), "sdb"));
    char *dl = json_dumps(json_object_get(d, "devices"), JSON_COMPACT);
    assert_string_equal(dl, "[\"sda\"]");
    free(dl);
    const json_t *kv = json_object_get(o, "kv");
    assert_true(num(kv, "kvbm_disk_bytes_read_delta") == 100);
    assert_true(json_is_null(json_object_get(kv, "kvbm_disk_bytes_written_delta")));
    dl = json_dumps(json_object_get(o, "series_without_start"), JSON_COMPACT);
    assert_string_equal(dl, "[\"node_disk_read_bytes_total{device=\\\"sdb\\\"}\","
                            "\"node_disk_written_bytes_total{device=\\\"sda\\\"}\","
                            "\"kvbm_disk_bytes_written\"]");
    free(dl);
    assert_null(json_object_get(o, "counter_resets"));
    json_decref(o);
    node_snap_free(&b);
    node_snap_free(&a);
}

/* A snapshot that failed makes the node unavailable, with why; never figures of 0. */
static void test_phase_unavailable(void **state)
{
    (void)state;
    struct node_snap b = {.ok = false}, a = parse(AFTER, 2);
    snprintf(b.error, sizeof b.error, "http://10.0.0.9:9100/metrics: Connection refused");
    json_t *o = nodes_phase_json(&b, &a);
    assert_true(json_is_false(json_object_get(o, "available")));
    assert_string_equal(json_string_value(json_object_get(o, "reason")),
                        "before the phase: http://10.0.0.9:9100/metrics: Connection refused");
    assert_null(json_object_get(o, "disk"));
    json_decref(o);
    node_snap_free(&a);
}

static void test_cluster(void **state)
{
    (void)state;
    json_t *nodes =
        json_pack("{s:{s:b, s:{s:f, s:f, s:f, s:f}, s:{s:f, s:f}, s:n}, "
                  " s:{s:b, s:{s:f, s:n, s:f, s:n}, s:n, s:{s:f, s:n, s:b}}, s:{s:b, s:s}}",
                  "a", "available", 1, "disk", "read_bytes", 100.0, "written_bytes", 10.0,
                  "read_mib_delta", 1.0, "write_mib_delta", 0.5, "network", "receive_bytes", 7.0,
                  "transmit_bytes", 8.0, "kv", "b", "available", 1, "disk", "read_bytes", 50.0,
                  "written_bytes", "read_mib_delta", 2.0, "write_mib_delta", "network", "kv",
                  "kvbm_disk_bytes_read_delta", 4096.0, "kvbm_onboard_blocks_d2d_delta",
                  "disk_rehydrate_counter_positive", 1, "c", "available", 0, "reason", "refused");
    json_t *c = nodes_cluster_json(nodes);
    assert_true(num(c, "nodes") == 3);
    assert_true(num(c, "nodes_available") == 2);
    const json_t *d = json_object_get(c, "disk");
    assert_true(num(d, "read_bytes") == 150);
    assert_true(num(d, "written_bytes") == 10); /* b's null stays out, not 0 */
    assert_true(num(d, "read_mib_delta") == 3);
    assert_true(num(json_object_get(c, "network"), "receive_bytes") == 7);
    const json_t *kv = json_object_get(c, "kv");
    assert_true(num(kv, "kvbm_disk_bytes_read_delta") == 4096);
    assert_null(json_object_get(kv, "kvbm_onboard_blocks_d2d_delta")); /* nobody had it */
    json_decref(c);
    json_decref(nodes);
    /* nodes without any figure: sums are null, never 0 */
    nodes = json_pack("{s:{s:b, s:s}}", "x", "available", 0, "reason", "refused");
    c = nodes_cluster_json(nodes);
    assert_true(json_is_null(json_object_get(json_object_get(c, "disk"), "read_bytes")));
    assert_true(json_is_null(json_object_get(c, "kv")));
    json_decref(c);
    json_decref(nodes);
}

/* One node read both ways (--scrape and --prometheus-url) is one disk: the cluster sums the
 * scraped nodes only and names the Prometheus ones it left out; without scraped nodes it sums
 * the Prometheus ones. */
static void test_cluster_one_source(void **state)
{
    (void)state;
    json_t *nodes =
        json_pack("{s:{s:s, s:b, s:{s:f}}, s:{s:s, s:b, s:{s:f}}, s:{s:s, s:b, s:{s:f}}}", "node",
                  "source", "scrape", "available", 1, "disk", "read_bytes", 100.0, "127.0.0.1",
                  "source", "prometheus", "available", 1, "disk", "read_bytes", 101.0, "other",
                  "source", "scrape", "available", 1, "disk", "read_bytes", 5.0);
    json_t *c = nodes_cluster_json(nodes);
    assert_true(num(json_object_get(c, "disk"), "read_bytes") == 105);
    assert_true(num(c, "nodes") == 2);
    assert_true(num(c, "nodes_available") == 2);
    assert_string_equal(json_string_value(json_object_get(c, "source")), "scrape");
    char *ns = json_dumps(json_object_get(c, "not_summed"), JSON_COMPACT);
    assert_string_equal(ns, "[\"127.0.0.1\"]");
    free(ns);
    json_decref(c);
    json_object_del(nodes, "node");
    json_object_del(nodes, "other");
    c = nodes_cluster_json(nodes);
    assert_true(num(json_object_get(c, "disk"), "read_bytes") == 101);
    assert_string_equal(json_string_value(json_object_get(c, "source")), "prometheus");
    assert_null(json_object_get(c, "not_summed"));
    json_decref(c);
    json_decref(nodes);
}

static void test_target_parse(void **state)
{
    (void)state;
    struct node_target t;
    char err[512];
    assert_int_equal(nodes_target_parse("gpu-node_1.a=http://10.0.0.5:9100/metrics", &t, err), 0);
    assert_string_equal(t.name, "gpu-node_1.a");
    assert_string_equal(t.url, "http://10.0.0.5:9100/metrics");
    assert_int_equal(nodes_target_parse("n=https://x/m?a=b", &t, err), 0);
    assert_string_equal(t.url, "https://x/m?a=b");
    const char *bad[][2] = {
        {"node", "--scrape: expected NAME=URL, got 'node'"},
        {"=http://x", "--scrape: the node's name before '=' is empty in '=http://x'"},
        {"a/b=http://x", "--scrape: the node's name may hold letters, digits, '_', '.' and '-' "
                         "only (it names a file), got 'a/b'"},
        {"a=ftp://x", "--scrape a: expected an http:// or https:// URL, got 'ftp://x'"},
        {"a=http://", "--scrape a: expected an http:// or https:// URL, got 'http://'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(nodes_target_parse(bad[i][0], &t, err), -1);
        assert_string_equal(err, bad[i][1]);
    }
    char longname[128];
    memset(longname, 'n', 70);
    snprintf(longname + 70, sizeof longname - 70, "=http://x");
    assert_int_equal(nodes_target_parse(longname, &t, err), -1);
    assert_non_null(strstr(err, "longer than 63"));
}

/* ------------------------------------------------------------ over HTTP */

static bool exporter(int fd, const struct testsrv_request *req, void *user)
{
    (void)user;
    char head[256];
    const char *body = NULL;
    const char *type = "text/plain; version=0.0.4";
    if (strcmp(req->path, "/metrics") == 0)
        body = "# TYPE node_disk_read_bytes_total counter\n"
               "node_disk_read_bytes_total{device=\"sda\"} 4096\n";
    else if (strcmp(req->path, "/v1/models") == 0) {
        body = "{\"object\":\"list\",\"data\":[]}";
        type = "application/json";
    }
    if (!body) {
        testsrv_write_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
        return true;
    }
    snprintf(head, sizeof head,
             "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", type,
             strlen(body));
    testsrv_write_str(fd, head);
    testsrv_write_str(fd, body);
    return true;
}

static void test_scrape_http(void **state)
{
    (void)state;
    struct testsrv *srv = testsrv_start(exporter, NULL);
    assert_non_null(srv);
    char url[128];
    struct node_snap s;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", testsrv_port(srv));
    nodes_scrape(url, 5, &s);
    assert_true(s.ok);
    assert_true(s.wall_s > 1.6e9);
    assert_true(num(s.series, "node_disk_read_bytes_total{device=\"sda\"}") == 4096);
    node_snap_free(&s);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/nope", testsrv_port(srv));
    nodes_scrape(url, 5, &s);
    assert_false(s.ok);
    char want[200];
    snprintf(want, sizeof want, "HTTP 404 from %s", url);
    assert_string_equal(s.error, want);
    assert_null(s.series);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/models", testsrv_port(srv));
    nodes_scrape(url, 5, &s);
    assert_false(s.ok);
    assert_non_null(strstr(s.error, "none of the known families"));
    testsrv_stop(srv);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", testsrv_unused_port());
    nodes_scrape(url, 5, &s);
    assert_false(s.ok);
    assert_non_null(strstr(s.error, url));
    assert_true(strstr(s.error, "refused") || strstr(s.error, "connect"));
    /* and a phase around it says so */
    struct node_snap ok = parse(AFTER, 1);
    json_t *o = nodes_phase_json(&ok, &s);
    assert_true(json_is_false(json_object_get(o, "available")));
    assert_non_null(strstr(json_string_value(json_object_get(o, "reason")), "after the phase: "));
    json_decref(o);
    node_snap_free(&ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_exporter_text),
        cmocka_unit_test(test_dcgm_and_keys),
        cmocka_unit_test(test_wrong_families),
        cmocka_unit_test(test_names_and_collisions),
        cmocka_unit_test(test_phase_disk_network_memory),
        cmocka_unit_test(test_phase_gpu_kv),
        cmocka_unit_test(test_series_without_start),
        cmocka_unit_test(test_phase_unavailable),
        cmocka_unit_test(test_cluster),
        cmocka_unit_test(test_cluster_one_source),
        cmocka_unit_test(test_target_parse),
        cmocka_unit_test(test_scrape_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
