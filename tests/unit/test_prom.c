/* Unit tests for the Prometheus text parser and the metric deltas built on it. */
#include "test_common.h"

#include "probe/kvsnap.h"
#include "probe/prom.h"
#include "util/json.h"

#include <math.h>

static void parse(const char *text, struct prom_result *r)
{
    assert_int_equal(prom_parse(text, strlen(text), r), 0);
}

static void test_families_labels_sum(void **state)
{
    (void)state;
    const char *t = "# HELP kvbm_offload_blocks_d2h Blocks offloaded\n"
                    "# TYPE kvbm_offload_blocks_d2h counter\n"
                    "kvbm_offload_blocks_d2h{worker=\"0\"} 10\n"
                    "kvbm_offload_blocks_d2h{worker=\"1\"} 5.5\n"
                    "kvbm_host_cache_hit_rate 0.25\n"
                    "\n"
                    "# a free comment\n"
                    "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
                    "rpc_duration_seconds_bucket{le=\"+Inf\"} 17\n"
                    "rpc_duration_seconds_sum 1.7e-3\n"
                    "metric_without_timestamp_and_labels 12.47\n";
    struct prom_result r;
    parse(t, &r);
    assert_int_equal(r.malformed_lines, 0);
    assert_int_equal(r.samples, 7);
    double v;
    assert_true(prom_lookup(&r, "kvbm_offload_blocks_d2h", &v));
    assert_true(v == 15.5);
    assert_true(prom_lookup(&r, "kvbm_host_cache_hit_rate", &v));
    assert_true(v == 0.25);
    assert_true(prom_lookup(&r, "rpc_duration_seconds_sum", &v));
    assert_true(fabs(v - 0.0017) < 1e-12);
    assert_true(prom_lookup(&r, "http_requests_total", &v));
    assert_true(v == 1027);
    assert_false(prom_lookup(&r, "nope", &v));
    prom_free(&r);
}

static void test_total_suffix_matching(void **state)
{
    (void)state;
    struct prom_result r;
    parse("kvbm_matched_tokens_total 42\nfoo 1\n", &r);
    double v;
    assert_true(prom_lookup(&r, "kvbm_matched_tokens", &v)); /* bare name finds _total */
    assert_true(v == 42);
    assert_true(prom_lookup(&r, "foo_total", &v)); /* _total finds the bare name */
    assert_true(v == 1);
    json_t *j = prom_to_json(&r);
    assert_true(prom_json_lookup(j, "kvbm_matched_tokens", &v));
    assert_true(v == 42);
    assert_true(prom_json_lookup(j, "foo_total", &v));
    json_decref(j);
    prom_free(&r);
}

static void test_escapes_special_values(void **state)
{
    (void)state;
    const char *t = "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot "
                    "find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n"
                    "a{x=\"}{,=\"} NaN\n"
                    "b +Inf\n"
                    "c -Inf\n"
                    "d{trailing=\"comma\",} 3\r\n";
    struct prom_result r;
    parse(t, &r);
    assert_int_equal(r.malformed_lines, 0);
    double v;
    assert_true(prom_lookup(&r, "msdos_file_access_time_seconds", &v));
    assert_true(v == 1.458255915e9);
    assert_true(prom_lookup(&r, "a", &v));
    assert_true(isnan(v));
    assert_true(prom_lookup(&r, "b", &v));
    assert_true(isinf(v) && v > 0);
    assert_true(prom_lookup(&r, "d", &v));
    assert_true(v == 3);
    json_t *j = prom_to_json(&r);
    assert_true(json_is_null(json_object_get(j, "a"))); /* NaN → null */
    assert_true(json_is_null(json_object_get(j, "b")));
    assert_false(prom_json_lookup(j, "a", &v));
    json_decref(j);
    prom_free(&r);
}

static void test_malformed_lines_skipped_and_counted(void **state)
{
    (void)state;
    const char *t = "good 1\n"
                    "9bad_name 1\n"
                    "no_value\n"
                    "bad_value abc\n"
                    "bad_labels{x=1} 2\n"
                    "unterminated{x=\"a} 2\n"
                    "bad_ts 1 12x\n"
                    "hex 0x10\n"
                    "lowercase_nan nan\n"
                    "good 2\n";
    struct prom_result r;
    parse(t, &r);
    assert_int_equal(r.malformed_lines, 8);
    assert_non_null(strstr(r.first_error, "9bad_name"));
    double v;
    assert_true(prom_lookup(&r, "good", &v));
    assert_true(v == 3);
    prom_free(&r);
}

static void test_binary_garbage_never_crashes(void **state)
{
    (void)state;
    unsigned char junk[4096];
    uint64_t s = 12345;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof junk; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            junk[i] = (unsigned char)(s >> 56);
            if (junk[i] % 7 == 0)
                junk[i] = '\n';
        }
        struct prom_result r;
        assert_int_equal(prom_parse((const char *)junk, sizeof junk, &r), 0);
        prom_free(&r);
    }
}

static void snap(struct kv_snapshot *s, const char *text)
{
    memset(s, 0, sizeof *s);
    struct prom_result r;
    parse(text, &r);
    s->success = true;
    s->metrics = prom_to_json(&r);
    prom_free(&r);
}

static void test_deltas(void **state)
{
    (void)state;
    struct kv_snapshot b, a;
    snap(&b, "kvbm_offload_blocks_d2h 10\nkvbm_onboard_blocks_d2d 5\nkvbm_matched_tokens 100\n"
             "kvbm_disk_bytes_read 0\nkvbm_cache_evictions{tier=\"host\"} 1\n");
    snap(&a, "kvbm_offload_blocks_d2h 25\nkvbm_onboard_blocks_d2d 2\n"
             "kvbm_matched_tokens_total 164\nkvbm_disk_bytes_read 2097152\n"
             "kvbm_offload_blocks_h2d 7\nkvbm_host_cache_hit_rate 0.5\n"
             "kvbm_cache_evictions{tier=\"host\"} 3\nkvbm_cache_evictions{tier=\"disk\"} 4\n");
    json_t *d = kvsnap_delta_json(&b, &a);
    assert_true(json_get_bool(d, "available", false));
    assert_true(json_get_num(d, "kvbm_offload_blocks_d2h_delta", -1) == 15);
    /* a counter that went backwards (restart) reads 0, never negative */
    assert_true(json_get_num(d, "kvbm_onboard_blocks_d2d_delta", -1) == 0);
    assert_true(json_get_num(d, "kvbm_matched_tokens_delta", -1) == 64);
    /* a counter that appeared during the phase */
    assert_true(json_get_num(d, "kvbm_offload_blocks_h2d_delta", -1) == 7);
    /* absent in both: null */
    assert_true(json_is_null(json_object_get(d, "kvbm_offload_blocks_d2d_delta")));
    assert_true(json_get_num(d, "kvbm_cache_evictions_delta", -1) == 6); /* summed labels */
    assert_true(json_get_num(d, "kvbm_host_cache_hit_rate_after", -1) == 0.5);
    assert_true(json_is_null(json_object_get(d, "kvbm_disk_fetch_p50_ms_after")));
    assert_true(json_get_num(d, "offload_blocks_total_delta", -1) == 22);
    assert_true(json_get_num(d, "disk_read_mib_delta", -1) == 2.0);
    assert_false(json_get_bool(d, "disk_rehydrate_counter_positive", true));
    json_decref(d);
    a.success = false;
    d = kvsnap_delta_json(&b, &a);
    assert_false(json_get_bool(d, "available", true));
    json_decref(d);
    kvsnap_free(&a);
    kvsnap_free(&b);
}

/* kvbench serve --g1 cuda's copy counters become the phase's gpu_copies; an engine without them
 * gets none (never zeros). */
static void test_gpu_copies(void **state)
{
    (void)state;
    struct kv_snapshot b = {0}, a = {0};
    snap(&b, "kvbm_offload_blocks_d2h 1\n");
    snap(&a, "kvbm_offload_blocks_d2h 2\n");
    assert_null(kvsnap_gpu_copies_json(&b, &a, 1.0));
    kvsnap_free(&a);
    kvsnap_free(&b);
    snap(&b, "kvbench_g1_h2d_bytes_total 1000000\nkvbench_g1_h2d_seconds_total 0.001\n"
             "kvbench_g1_d2h_bytes_total 0\nkvbench_g1_d2h_seconds_total 0\n");
    snap(&a, "kvbench_g1_h2d_bytes_total 5000000000\nkvbench_g1_h2d_seconds_total 0.101\n"
             "kvbench_g1_d2h_bytes_total 2000000\nkvbench_g1_d2h_seconds_total 0\n"
             "kvbench_g1_copy_errors_total 1\nkvbench_g1_device_bytes 4096\n");
    json_t *g = kvsnap_gpu_copies_json(&b, &a, 2.0);
    assert_non_null(g);
    assert_true(json_get_num(g, "h2d_bytes", -1) == 4999000000.0);
    assert_true(fabs(json_get_num(g, "h2d_gb_per_s", -1) - 49.99) < 1e-6); /* 5 GB in 0.1 s */
    assert_true(fabs(json_get_num(g, "h2d_mb_s", -1) - 2499.5) < 1e-6);    /* over the 2 s phase */
    /* bytes without measured time: no rate rather than an infinite one */
    assert_true(json_is_null(json_object_get(g, "d2h_gb_per_s")));
    assert_true(json_get_num(g, "copy_errors", -1) == 1); /* appeared during the phase */
    assert_true(json_is_null(json_object_get(g, "fill_bytes")));
    assert_true(json_get_num(g, "device_bytes_after", -1) == 4096);
    json_decref(g);
    a.success = false;
    assert_null(kvsnap_gpu_copies_json(&b, &a, 2.0));
    kvsnap_free(&a);
    kvsnap_free(&b);
}

/* An info metric's numeric labels become name.label entries; other labels and other metrics'
 * labels do not. */
static void test_info_labels(void **state)
{
    (void)state;
    const char *t = "vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\","
                    "gpu_memory_utilization=\"0.9\",note=\"a \\\"quoted\\\" 7\","
                    "num_gpu_blocks=\"27355\"} 1.0\n"
                    "vllm:num_requests_running{engine=\"0\"} 3\n"
                    "broken_info{x=\"\"} 1\n";
    struct prom_result r;
    assert_int_equal(prom_parse(t, strlen(t), &r), 0);
    double v;
    assert_true(prom_lookup(&r, "vllm:cache_config_info.num_gpu_blocks", &v) && v == 27355);
    assert_true(prom_lookup(&r, "vllm:cache_config_info.block_size", &v) && v == 16);
    assert_true(prom_lookup(&r, "vllm:cache_config_info.gpu_memory_utilization", &v) && v == 0.9);
    assert_false(prom_lookup(&r, "vllm:cache_config_info.cache_dtype", &v)); /* not a number */
    assert_false(prom_lookup(&r, "vllm:cache_config_info.note", &v));
    assert_true(prom_lookup(&r, "vllm:cache_config_info", &v) && v == 1);
    assert_false(prom_lookup(&r, "vllm:num_requests_running.engine", &v)); /* not an info */
    assert_false(prom_lookup(&r, "broken_info.x", &v));
    assert_int_equal(r.malformed_lines, 0);
    prom_free(&r);
}

struct scanned {
    char lines[8][160];
    int n;
};

/* Each sample as "name|label=value|...|value", labels unescaped. */
static int collect(const struct prom_sample *s, void *user)
{
    struct scanned *sc = user;
    if (sc->n == 8)
        return 7; /* stops the scan: returned as is */
    char *o = sc->lines[sc->n++];
    int k = snprintf(o, 160, "%.*s", (int)s->name_len, s->name);
    const char *p = s->labels, *name;
    size_t nl;
    char v[32];
    while (p && prom_label_next(&p, s->labels_end, &name, &nl, v, sizeof v))
        k += snprintf(o + k, 160 - (size_t)k, "|%.*s=%s", (int)nl, name, v);
    snprintf(o + k, 160 - (size_t)k, "|%g", s->value);
    return 0;
}

/* prom_scan hands every sample apart, labels and escapes intact, and counts what it skips. */
static void test_scan_samples_and_labels(void **state)
{
    (void)state;
    const char *t = "# TYPE node_disk_read_bytes_total counter\n"
                    "node_disk_read_bytes_total{device=\"sda\"} 1024\n"
                    "node_disk_read_bytes_total{ device = \"dm-0\" , major=\"253\" } 2e3\n"
                    "odd{path=\"a\\\\b\\\"c\\nd\"} 1\n"
                    "bad{x=1} 2\n"
                    "plain 3 1700000000\n";
    struct scanned sc = {0};
    struct prom_scan_stats st;
    assert_int_equal(prom_scan(t, strlen(t), collect, &sc, &st), 0);
    assert_int_equal(sc.n, 4);
    assert_int_equal(st.samples, 4);
    assert_int_equal(st.malformed_lines, 1);
    assert_non_null(strstr(st.first_error, "bad labels"));
    assert_string_equal(sc.lines[0], "node_disk_read_bytes_total|device=sda|1024");
    assert_string_equal(sc.lines[1], "node_disk_read_bytes_total|device=dm-0|major=253|2000");
    assert_string_equal(sc.lines[2], "odd|path=a\\b\"c\nd|1");
    assert_string_equal(sc.lines[3], "plain|3");
    /* a value longer than the buffer is cut, never overrun */
    const char *lbl = "{device=\"0123456789abcdef\"}", *p = lbl, *name;
    size_t nl;
    char small[5];
    assert_true(prom_label_next(&p, lbl + strlen(lbl), &name, &nl, small, sizeof small));
    assert_string_equal(small, "0123");
    assert_false(prom_label_next(&p, lbl + strlen(lbl), &name, &nl, small, sizeof small));
    /* the callback's answer stops the scan */
    struct scanned many = {0};
    const char *big = "x 1\nx 2\nx 3\nx 4\nx 5\nx 6\nx 7\nx 8\nx 9\nx 10\n";
    assert_int_equal(prom_scan(big, strlen(big), collect, &many, &st), 7);
    assert_int_equal(many.n, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families_labels_sum),
        cmocka_unit_test(test_total_suffix_matching),
        cmocka_unit_test(test_escapes_special_values),
        cmocka_unit_test(test_malformed_lines_skipped_and_counted),
        cmocka_unit_test(test_binary_garbage_never_crashes),
        cmocka_unit_test(test_deltas),
        cmocka_unit_test(test_gpu_copies),
        cmocka_unit_test(test_info_labels),
        cmocka_unit_test(test_scan_samples_and_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
