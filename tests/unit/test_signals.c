/* Unit tests for every branch of the SPEC §5.4 verdicts, validity, and identity hashing. */
#include "test_common.h"

#include "load/loadgen.h"
#include "analysis/signals.h"
#include "util/err.h"
#include "util/json.h"
#include "util/sha256.h"

static json_t *io(double read_mib, double write_mib)
{
    return json_pack("{s:f, s:f}", "read_mib_delta", read_mib, "write_mib_delta", write_mib);
}

static const char *sig(const json_t *o)
{
    return json_string_value(json_object_get(o, "signal"));
}

static void test_io_signal(void **state)
{
    (void)state;
    json_t *w = io(2, 0), *p = io(0, 500), *r;
    r = io(10, 0);
    json_t *s = signal_eviction_io(w, p, r);
    assert_string_equal(sig(s), "possible_readback");
    assert_true(json_get_num(s, "readback_threshold_mib", 0) == 2.4);
    assert_true(json_get_num(s, "pressure_write_mib", 0) == 500);
    assert_non_null(json_object_get(s, "interpretation"));
    json_decref(s);
    json_decref(r);
    /* above 1.2 x warm but not above 1 MiB: weak */
    json_t *w0 = io(0.1, 0);
    r = io(0.5, 0);
    s = signal_eviction_io(w0, p, r);
    assert_string_equal(sig(s), "weak_read_signal");
    json_decref(s);
    json_decref(r);
    /* exactly the threshold is not above it */
    r = io(2.4, 0);
    s = signal_eviction_io(w, p, r);
    assert_string_equal(sig(s), "weak_read_signal");
    json_decref(s);
    json_decref(r);
    r = io(0, 0);
    s = signal_eviction_io(w, p, r);
    assert_string_equal(sig(s), "no_clear_readback");
    json_decref(s);
    s = signal_eviction_io(NULL, p, r);
    assert_string_equal(sig(s), "io_unavailable");
    json_decref(s);
    json_decref(r);
    json_decref(w);
    json_decref(w0);
    json_decref(p);
}

/* A phase's nodes object: {NAME: {source, available, disk: {read_mib_delta, write_mib_delta}}}. */
static json_t *nodes3(double a_read, double b_read, double c_read, const char *source)
{
    return json_pack("{s:{s:s, s:b, s:{s:f, s:f}}, s:{s:s, s:b, s:{s:f, s:f}}, "
                     "s:{s:s, s:b, s:{s:f, s:n}}, s:{s:s, s:b, s:n}, s:{s:s, s:b, s:s}}",
                     "a", "source", source, "available", 1, "disk", "read_mib_delta", a_read,
                     "write_mib_delta", 0.0, "b", "source", source, "available", 1, "disk",
                     "read_mib_delta", b_read, "write_mib_delta", 300.0, "c", "source", source,
                     "available", 1, "disk", "read_mib_delta", c_read, "write_mib_delta", "kvonly",
                     "source", source, "available", 1, "disk", "down", "source", source,
                     "available", 0, "reason", "refused");
}

/* Other nodes' disks: each node judged alone, the verdict names the one that read back. */
static void test_io_signal_nodes(void **state)
{
    (void)state;
    json_t *w = nodes3(0, 0, 5, "scrape"), *p = nodes3(0, 0, 0, "scrape");
    json_t *r = nodes3(0.5, 768, 5, "scrape");
    json_t *s = signal_eviction_io_nodes(w, p, r);
    assert_string_equal(sig(s), "possible_readback");
    assert_string_equal(json_string_value(json_object_get(s, "node")), "b");
    assert_string_equal(json_string_value(json_object_get(s, "source")), "scrape");
    assert_true(json_get_num(s, "replay_read_mib", 0) == 768);
    assert_true(json_get_num(s, "pressure_write_mib", 0) == 300);
    assert_non_null(strstr(json_string_value(json_object_get(s, "interpretation")),
                           "Node b (scrape): Replay read 768.0 MiB"));
    const json_t *per = json_object_get(s, "per_node");
    assert_string_equal(sig(json_object_get(per, "a")), "weak_read_signal");
    assert_string_equal(sig(json_object_get(per, "c")), "weak_read_signal"); /* 5 <= 1.2 x 5 */
    assert_string_equal(sig(json_object_get(per, "kvonly")), "io_unavailable");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(per, "kvonly"), "reason")),
        "no disk read figures in replay_A");
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(per, "down"), "reason")),
               "unavailable in replay_A: refused"));
    json_decref(s);
    /* no read-back anywhere: the node that read the most is named */
    json_decref(r);
    r = nodes3(0, 0.2, 0, "prometheus");
    s = signal_eviction_io_nodes(w, p, r);
    assert_string_equal(json_string_value(json_object_get(s, "node")), "b");
    assert_string_equal(json_string_value(json_object_get(s, "source")), "prometheus");
    json_decref(s);
    /* no node has disk figures in both phases: NULL, the local device decides */
    assert_null(signal_eviction_io_nodes(NULL, p, r));
    json_t *only = json_pack("{s:{s:b, s:n}}", "x", "available", 1, "disk");
    assert_null(signal_eviction_io_nodes(only, only, only));
    json_decref(only);
    json_decref(r);
    json_decref(w);
    json_decref(p);
}

static json_t *kd(double h2d, double d2d, double matched)
{
    return json_pack("{s:b, s:f, s:f, s:f, s:f, s:f}", "available", 1,
                     "kvbm_onboard_blocks_h2d_delta", h2d, "kvbm_onboard_blocks_d2d_delta", d2d,
                     "onboard_blocks_total_delta", h2d + d2d, "kvbm_matched_tokens_delta", matched,
                     "offload_blocks_total_delta", 0.0);
}

static void test_kvbm_signal_branches(void **state)
{
    (void)state;
    json_t *quiet = kd(0, 0, 0);
    json_t *r = kd(0, 12, 384);
    json_t *s = signal_eviction_kvbm(quiet, quiet, r, -1);
    assert_string_equal(sig(s), "disk_rehydrate_detected");
    assert_string_equal(json_string_value(json_object_get(s, "reuse_gate")), "reuse_present");
    assert_true(json_get_num(s, "replay_onboard_blocks_d2d", 0) == 12);
    assert_true(json_get_bool(s, "disk_onboard_in_replay", false));
    json_decref(s);
    json_decref(r);
    /* host-only onboarding in replay: still an onboard, but not from disk, and it says why */
    r = kd(5, 0, 160);
    s = signal_eviction_kvbm(quiet, quiet, r, -1);
    assert_string_equal(sig(s), "disk_rehydrate_detected");
    assert_false(json_get_bool(s, "disk_onboard_in_replay", true));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s, "diagnosis"), "cause")),
        "set_a_still_in_host");
    assert_non_null(
        strstr(json_string_value(json_object_get(s, "interpretation")), "still in host memory"));
    json_decref(s);
    json_decref(r);
    /* replay matched nothing: the payload hashes decide why */
    s = signal_eviction_kvbm(quiet, quiet, quiet, -1);
    assert_string_equal(sig(s), "no_onboard_no_reuse_signal");
    assert_string_equal(json_string_value(json_object_get(s, "reuse_gate")), "reuse_absent");
    signal_eviction_identity(s, 16, -1); /* unknown: no diagnosis */
    assert_null(json_object_get(s, "diagnosis"));
    signal_eviction_identity(s, 16, 12);
    json_t *d = json_object_get(s, "diagnosis");
    assert_string_equal(json_string_value(json_object_get(d, "cause")), "prompts_not_identical");
    assert_int_equal(json_integer_value(json_object_get(d, "replay_payloads_sent_in_warm")), 12);
    assert_non_null(strstr(json_string_value(json_object_get(s, "interpretation")),
                           "4 of the 16 distinct replay payloads were never sent"));
    json_decref(s);
    s = signal_eviction_kvbm(quiet, quiet, quiet, -1);
    signal_eviction_identity(s, 16, 16);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s, "diagnosis"), "cause")),
        "engine_reused_nothing");
    assert_non_null(
        strstr(json_string_value(json_object_get(s, "interpretation")), "byte-identical"));
    json_decref(s);
    /* replay reused from G1 while pressure onboarded */
    r = kd(0, 0, 640);
    json_t *p = kd(3, 0, 96);
    s = signal_eviction_kvbm(quiet, p, r, -1);
    assert_string_equal(sig(s), "onboard_outside_replay");
    json_decref(s);
    s = signal_eviction_kvbm(quiet, quiet, r, -1);
    assert_string_equal(sig(s), "no_onboard_signal");
    signal_eviction_identity(s, 16, 12); /* only completes a signal that saw no reuse */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s, "diagnosis"), "cause")),
        "set_b_too_small");
    json_decref(s);
    json_t *na = json_pack("{s:b}", "available", 0);
    s = signal_eviction_kvbm(quiet, quiet, na, -1);
    assert_string_equal(sig(s), "kvbm_metrics_unavailable");
    json_decref(s);
    json_decref(na);
    json_decref(r);
    json_decref(p);
    json_decref(quiet);
}

/* The runbook's section 9 against an engine with the disk offload filter: warm_A moved A to
 * host memory only, replay_A found nothing and wrote A to disk itself. The verdict says so. */
static void test_kvbm_signal_diagnosis(void **state)
{
    (void)state;
    json_t *warm =
        json_pack("{s:b, s:f, s:f, s:f, s:f, s:f}", "available", 1, "kvbm_offload_blocks_d2h_delta",
                  5093.0, "kvbm_offload_blocks_h2d_delta", 0.0, "kvbm_onboard_blocks_h2d_delta",
                  0.0, "kvbm_onboard_blocks_d2d_delta", 0.0, "kvbm_matched_tokens_delta", 0.0);
    json_t *quiet = kd(0, 0, 0);
    json_t *replay =
        json_pack("{s:b, s:f, s:f, s:f, s:f, s:f}", "available", 1, "kvbm_offload_blocks_d2h_delta",
                  5093.0, "kvbm_offload_blocks_h2d_delta", 5093.0, "kvbm_onboard_blocks_h2d_delta",
                  0.0, "kvbm_onboard_blocks_d2d_delta", 0.0, "kvbm_matched_tokens_delta", 0.0);
    json_t *s = signal_eviction_kvbm(warm, quiet, replay, -1);
    assert_string_equal(sig(s), "no_onboard_no_reuse_signal");
    signal_eviction_identity(s, 16, 16); /* the counters' diagnosis stands */
    /* ... unless there is no disk tier at all: then the filter is not the cause */
    json_t *nd = json_deep_copy(s);
    signal_eviction_no_disk_tier(nd, "kv mode cpu_only");
    assert_string_equal(sig(nd), "no_onboard_no_reuse_signal");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(nd, "diagnosis"), "cause")),
        "no_disk_tier");
    assert_null(strstr(json_string_value(json_object_get(nd, "interpretation")), "filter"));
    assert_non_null(strstr(json_string_value(json_object_get(nd, "interpretation")),
                           "no disk tier here (kv mode cpu_only)"));
    json_decref(nd);
    const json_t *d = json_object_get(s, "diagnosis");
    assert_string_equal(json_string_value(json_object_get(d, "cause")), "set_a_never_reached_disk");
    assert_true(json_get_num(d, "replay_offload_blocks_disk", 0) == 5093);
    const char *t = json_string_value(json_object_get(s, "interpretation"));
    assert_non_null(strstr(t, "never reached the disk"));
    assert_non_null(strstr(t, "5093 blocks to disk itself"));
    assert_null(strstr(t, "byte-identical")); /* no generic advice instead of the cause */
    json_decref(s);
    /* a warm phase that did write to disk: no such diagnosis */
    json_t *warm2 = json_pack("{s:b, s:f, s:f}", "available", 1, "kvbm_offload_blocks_d2h_delta",
                              10.0, "kvbm_offload_blocks_h2d_delta", 10.0);
    s = signal_eviction_kvbm(warm2, quiet, quiet, -1);
    assert_null(json_object_get(s, "diagnosis"));
    json_decref(s);
    /* device → disk offloads (d2d) reach the disk too: KVBM's keys are read by the Dynamo
     * profile's rules, which count h2d and d2d as offload_blocks_disk (the fallback used to read
     * h2d only, and called this warm phase one that never reached the disk) */
    json_t *warm4 =
        json_pack("{s:b, s:f, s:f, s:f}", "available", 1, "kvbm_offload_blocks_d2h_delta", 10.0,
                  "kvbm_offload_blocks_h2d_delta", 0.0, "kvbm_offload_blocks_d2d_delta", 7.0);
    s = signal_eviction_kvbm(warm4, quiet, quiet, -1);
    assert_null(json_object_get(s, "diagnosis"));
    assert_true(json_get_num(s, "warm_offload_blocks", 0) == 17);
    json_decref(s);
    json_decref(warm4);
    /* absent counters (null) are never read as 0: no diagnosis either */
    json_t *warm3 = json_pack("{s:b, s:f}", "available", 1, "kvbm_offload_blocks_d2h_delta", 10.0);
    s = signal_eviction_kvbm(warm3, quiet, quiet, -1);
    assert_null(json_object_get(s, "diagnosis"));
    json_decref(s);
    json_decref(warm);
    json_decref(warm2);
    json_decref(warm3);
    json_decref(replay);
    json_decref(quiet);
}

static void test_reuse_signal(void **state)
{
    (void)state;
    json_t *d1 = kd(0, 0, 0), *d2 = kd(0, 0, 1536), *d3 = kd(0, 0, 0);
    const json_t *ds[3] = {d1, d2, d3};
    long long cached[3] = {0, 1536, -1};
    json_t *s = signal_reuse_kvbm(ds, cached, NULL, 3);
    assert_string_equal(sig(s), "prefix_reuse_detected");
    assert_true(json_get_num(s, "reuse_2_matched_tokens", 0) == 1536);
    assert_true(json_is_integer(json_object_get(s, "reuse_2_cached_tokens")));
    assert_true(json_is_null(json_object_get(s, "reuse_3_cached_tokens")));
    json_decref(s);
    const json_t *none[2] = {d1, d3};
    long long cached0[2] = {0, 0};
    s = signal_reuse_kvbm(none, cached0, NULL, 2);
    assert_string_equal(sig(s), "no_prefix_reuse_signal");
    json_decref(s);
    /* the first request matching (from an earlier run) does not count as reuse */
    const json_t *first[2] = {d2, d1};
    long long cached_first[2] = {1536, 0};
    s = signal_reuse_kvbm(first, cached_first, NULL, 2);
    assert_string_equal(sig(s), "no_prefix_reuse_signal");
    json_decref(s);
    json_t *na = json_pack("{s:b}", "available", 0);
    const json_t *un[2] = {d1, na};
    long long no_cached[2] = {-1, -1};
    double ttft[2] = {800, 40};
    s = signal_reuse_kvbm(un, no_cached, ttft, 2);
    assert_string_equal(sig(s), "kvbm_metrics_unavailable");
    /* indirect evidence is reported, never turned into a verdict */
    assert_true(json_get_num(json_object_get(s, "ttft_evidence"), "ratio", 0) == 0.05);
    json_decref(s);
    /* no metrics, but the responses said what they reused (llama.cpp timings.cache_n) */
    long long cache_n[2] = {0, 1024};
    s = signal_reuse_kvbm(un, cache_n, ttft, 2);
    assert_string_equal(sig(s), "prefix_reuse_detected");
    assert_string_equal(json_string_value(json_object_get(s, "evidence_source")),
                        "per_request_cached_tokens");
    json_decref(s);
    /* an endpoint without the fields: counters null are not zeros */
    json_t *blank = json_pack("{s:b, s:{s:s, s:n}}", "available", 1, "engine_delta", "engine",
                              "llamacpp", "reused_tokens");
    const json_t *bl[2] = {blank, blank};
    s = signal_reuse_kvbm(bl, no_cached, NULL, 2);
    assert_string_equal(sig(s), "kvbm_metrics_unavailable");
    json_decref(s);
    json_decref(blank);
    json_decref(na);
    json_decref(d1);
    json_decref(d2);
    json_decref(d3);
}

static void test_identity_verdict(void **state)
{
    (void)state;
    const char *p[3] = {"a", "a", "a"}, *g[3] = {"g", "g", "g"}, *id[3] = {"i", "i", "i"},
               *pl[3] = {"p", "p", "p"};
    json_t *s = signal_reuse_identity(p, g, id, pl, 3);
    assert_string_equal(json_string_value(json_object_get(s, "verdict")),
                        "identical_inputs_confirmed");
    assert_true(json_get_bool(s, "identical_prompt_bytes", false));
    json_decref(s);
    const char *p2[3] = {"a", "b", "a"};
    s = signal_reuse_identity(p2, g, id, pl, 3);
    assert_string_equal(json_string_value(json_object_get(s, "verdict")),
                        "identity_mismatch_detected");
    assert_false(json_get_bool(s, "identical_prompt_bytes", true));
    assert_true(json_get_bool(s, "identical_generation_params", false));
    json_decref(s);
    s = signal_reuse_identity(p, g, id, pl, 0);
    assert_string_equal(json_string_value(json_object_get(s, "verdict")),
                        "identity_mismatch_detected");
    json_decref(s);
}

static void test_validity_first_reason_wins(void **state)
{
    (void)state;
    struct validity v;
    validity_init(&v);
    assert_null(v.reason);
    validity_add(&v, "model_dropped", json_pack("{s:s}", "phase", "main"));
    validity_add(&v, "kvbm_metrics_unavailable", json_string("no snapshot"));
    assert_string_equal(v.reason, "model_dropped");
    assert_int_equal(json_array_size(v.details), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v.details, 1), "reason")),
                        "kvbm_metrics_unavailable");
    validity_free(&v);
}

static void test_identity_hashes(void **state)
{
    (void)state;
    const char *stop[] = {"<|eot_id|>"};
    struct gen_params gp = {.max_tokens = 64,
                            .temperature = 0,
                            .top_p = 1,
                            .stop = stop,
                            .n_stop = 1,
                            .stream = false,
                            .has_seed = true,
                            .seed = 1337};
    struct loadgen lg = {.model = "m", .gp = &gp};
    char err[ERR_LEN];
    assert_int_equal(loadgen_init(&lg, err), 0);
    /* the params hash is the SHA-256 of the canonical JSON (sorted keys, no spaces) */
    const char *canon = "{\"max_tokens\":64,\"seed\":1337,\"stop\":[\"<|eot_id|>\"],"
                        "\"stream\":false,\"temperature\":0.0,\"top_p\":1.0}";
    char want[65];
    sha256_hex(canon, strlen(canon), want);
    assert_string_equal(lg.params_sha256, want);
    /* the body carries exactly what was hashed, plus model and prompt */
    struct prompt p = {.text = "hi", .len = 2};
    char *body = loadgen_body(&lg, &p);
    json_t *b = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(b, "model")), "m");
    assert_string_equal(json_string_value(json_object_get(b, "prompt")), "hi");
    assert_int_equal(json_integer_value(json_object_get(b, "seed")), 1337);
    assert_null(json_object_get(b, "stream_options"));
    json_decref(b);
    free(body);
    loadgen_free(&lg);
    gp.stream = true;
    gp.has_seed = false;
    assert_int_equal(loadgen_init(&lg, err), 0);
    assert_string_not_equal(lg.params_sha256, want);
    body = loadgen_body(&lg, &p);
    b = json_loads(body, 0, NULL);
    assert_true(
        json_is_true(json_object_get(json_object_get(b, "stream_options"), "include_usage")));
    assert_null(json_object_get(b, "seed"));
    json_decref(b);
    free(body);
    loadgen_free(&lg);
}

/* Every invalidity reason is in docs/RUN.md's validity table, and unknown reasons are not rules. */
static void test_validity_rules_documented(void **state)
{
    (void)state;
    char path[1024];
    test_fixture("../../docs/RUN.md", path, sizeof path);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char doc[1 << 18];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';
    size_t rules = 0;
    for (const struct validity_rule *r = VALIDITY_RULES; r->reason; r++, rules++) {
        char row[96];
        snprintf(row, sizeof row, "| `%s` |", r->reason);
        if (!strstr(doc, row))
            fail_msg("docs/RUN.md has no validity row for %s", r->reason);
        assert_non_null(r->when);
        assert_ptr_equal(validity_rule(r->reason), r);
    }
    assert_true(rules >= 11);
    assert_null(validity_rule("nope"));
    assert_null(validity_rule(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_io_signal),
        cmocka_unit_test(test_kvbm_signal_branches),
        cmocka_unit_test(test_kvbm_signal_diagnosis),
        cmocka_unit_test(test_reuse_signal),
        cmocka_unit_test(test_validity_rules_documented),
        cmocka_unit_test(test_identity_verdict),
        cmocka_unit_test(test_validity_first_reason_wins),
        cmocka_unit_test(test_identity_hashes),
        cmocka_unit_test(test_io_signal_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
