/* Unit tests for summary.json (verdict/summary.h): summary_build from a run record made here
 * (struct run_state, as the runner fills it) — the run's facts, one phase summary per phase that
 * ran or was skipped, the overall summary or its exclusion on an invalid run, and each
 * scenario's verdicts placed where its table row names them. */
#include "test_common.h"

#include "verdict/summary.h"
#include "util/json.h"

#include <jansson.h>

static const struct gen_params GP = {.max_tokens = 8, .stream = true};
static const struct slo NO_SLO = {.any = false};

struct fixture {
    struct scen_config cfg;
    struct phase_state phases[4];
    struct run_state rs;
    struct validity v;
    json_t *notes;
};

static void fixture_init(struct fixture *f, const char *scenario, const char *const *names,
                         size_t n)
{
    memset(f, 0, sizeof *f);
    f->cfg = (struct scen_config){.scenario = scenario,
                                  .kv_mode = KV_MODE_CPU_DISK,
                                  .gp = &GP,
                                  .slo = &NO_SLO,
                                  .cpu_cache_gb = 4,
                                  .disk_cache_gb = 16};
    for (size_t i = 0; i < n; i++) {
        struct phase_state *p = &f->phases[i];
        snprintf(p->name, sizeof p->name, "%s", names[i]);
        p->concurrency = 1;
        p->n = 1;
        p->included = true;
        p->set = "short";
        p->ran = true;
        p->models_after = -1;
    }
    f->rs.cfg = &f->cfg;
    snprintf(f->rs.run_id, sizeof f->rs.run_id, "run_1");
    snprintf(f->rs.created_utc, sizeof f->rs.created_utc, "2026-12-06T00:00:00.000Z");
    snprintf(f->rs.model, sizeof f->rs.model, "m");
    f->rs.model_count_end = -1;
    f->rs.phases = f->phases;
    f->rs.n_phases = n;
    f->rs.warnings = json_array();
    validity_init(&f->v);
    f->notes = json_pack("[s]", "a note");
}

static void fixture_free(struct fixture *f)
{
    json_decref(f->rs.warnings);
    json_decref(f->notes);
    validity_free(&f->v);
}

static void test_valid_run(void **state)
{
    (void)state;
    static const char *const names[] = {"warmup", "main"};
    struct fixture f;
    fixture_init(&f, "standard", names, 2);
    f.phases[0].included = false;
    json_t *s = summary_build(&f.rs, &f.v, f.notes);
    assert_non_null(s);
    assert_string_equal(json_get_str(s, "run_id", ""), "run_1");
    assert_true(json_get_bool(s, "run_valid", false));
    assert_true(json_is_null(json_object_get(s, "invalid_reason")));
    assert_string_equal(json_get_str(s, "scenario", ""), "standard");
    assert_true(json_get_bool(s, "stream", false));
    assert_string_equal(json_get_str(s, "model_id", ""), "m");
    const json_t *km = json_object_get(s, "kv_mode");
    assert_string_equal(json_get_str(km, "mode", ""), "cpu_disk");
    const json_t *ps = json_object_get(s, "phase_summaries");
    assert_int_equal(json_array_size(ps), 2);
    assert_string_equal(json_get_str(json_array_get(ps, 1), "phase", ""), "main");
    assert_false(json_get_bool(json_array_get(ps, 0), "included_in_overall", true));
    const json_t *ov = json_object_get(s, "overall_summary");
    assert_string_equal(json_get_str(ov, "phase", ""), "overall");
    assert_false(json_get_bool(ov, "excluded", false));
    assert_int_equal(json_get_int(ov, "requests", -1), 1); /* main only */
    /* standard has no verdicts */
    assert_null(json_object_get(ov, "eviction_replay_signal_kvbm"));
    assert_non_null(json_object_get(s, "fingerprint"));
    assert_non_null(json_object_get(s, "request_identity"));
    assert_true(json_equal(json_object_get(s, "notes"), f.notes));
    json_decref(s);
    fixture_free(&f);
}

static void test_invalid_run_is_excluded(void **state)
{
    (void)state;
    static const char *const names[] = {"main"};
    struct fixture f;
    fixture_init(&f, "standard", names, 1);
    validity_add(&f.v, "server_unreachable",
                 json_pack("{s:s}", "message", "every request failed to connect"));
    json_t *s = summary_build(&f.rs, &f.v, f.notes);
    assert_false(json_get_bool(s, "run_valid", true));
    assert_string_equal(json_get_str(s, "invalid_reason", ""), "server_unreachable");
    const json_t *d = json_object_get(s, "invalid_details");
    assert_int_equal(json_array_size(d), 1);
    assert_string_equal(json_string_value(json_array_get(d, 0)),
                        "server_unreachable: every request failed to connect");
    const json_t *ov = json_object_get(s, "overall_summary");
    assert_true(json_get_bool(ov, "excluded", false));
    assert_string_equal(json_get_str(ov, "reason", ""), "server_unreachable");
    assert_null(json_object_get(ov, "requests"));
    json_decref(s);
    fixture_free(&f);
}

/* The overall duration is the sum of the included phases' duration_s as summary.json records
 * them (to the millisecond): 0.0834 + 0.1519 + 0.1644 s is 0.3997 s unrounded, but the phases
 * read 0.083 + 0.152 + 0.164 = 0.399, which is what a reader or `kvbench merge` adds up. */
static void test_overall_duration_sums_recorded_phases(void **state)
{
    (void)state;
    static const char *const names[] = {"warmup", "warm_A", "pressure_B", "replay_A"};
    struct fixture f;
    fixture_init(&f, "standard", names, 4);
    f.phases[0].included = false;
    f.phases[0].res.duration_s = 0.0514;
    f.phases[1].res.duration_s = 0.0834;
    f.phases[2].res.duration_s = 0.1519;
    f.phases[3].res.duration_s = 0.1644;
    json_t *s = summary_build(&f.rs, &f.v, f.notes);
    const json_t *ps = json_object_get(s, "phase_summaries");
    double sum = 0;
    for (size_t i = 1; i < 4; i++)
        sum += json_get_num(json_array_get(ps, i), "duration_s", -1);
    const json_t *ov = json_object_get(s, "overall_summary");
    assert_float_equal(json_get_num(ov, "duration_s", -1), 0.399, 1e-9);
    assert_float_equal(json_get_num(ov, "duration_s", -1), sum, 1e-9);
    json_decref(s);
    fixture_free(&f);
}

/* eviction_replay whose warm_A and replay_A did not both run: its verdicts say so, where its row
 * of the scenario table names them. */
static void test_eviction_verdicts_placed(void **state)
{
    (void)state;
    static const char *const names[] = {"warm_A", "pressure_B", "replay_A"};
    struct fixture f;
    fixture_init(&f, "eviction_replay", names, 3);
    f.phases[2].ran = false;
    f.phases[2].skipped = true;
    json_t *s = summary_build(&f.rs, &f.v, f.notes);
    const json_t *ov = json_object_get(s, "overall_summary");
    const json_t *k = json_object_get(ov, "eviction_replay_signal_kvbm");
    assert_non_null(k);
    assert_string_equal(json_get_str(k, "signal", ""), "unavailable");
    assert_non_null(
        strstr(json_get_str(k, "interpretation", ""), "No request of warm_A succeeded"));
    assert_non_null(json_object_get(ov, "eviction_replay_signal_io"));
    /* the skipped phase is listed as skipped */
    const json_t *ps = json_object_get(s, "phase_summaries");
    assert_int_equal(json_array_size(ps), 3);
    assert_true(json_get_bool(json_array_get(ps, 2), "skipped", false));
    json_decref(s);
    fixture_free(&f);
}

/* reuse_verify: its identity verdict goes both in the overall summary and request_identity. */
static void test_reuse_identity_placed(void **state)
{
    (void)state;
    static const char *const names[] = {"reuse_1", "reuse_2"};
    struct fixture f;
    fixture_init(&f, "reuse_verify", names, 2);
    json_t *s = summary_build(&f.rs, &f.v, f.notes);
    const json_t *ov = json_object_get(s, "overall_summary");
    assert_non_null(json_object_get(ov, "reuse_verify_signal_kvbm"));
    const json_t *a = json_object_get(ov, "reuse_verify_identity");
    const json_t *b =
        json_object_get(json_object_get(s, "request_identity"), "reuse_verify_identity");
    assert_non_null(a);
    assert_ptr_equal(a, b); /* one object, two places */
    json_decref(s);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_run),
        cmocka_unit_test(test_invalid_run_is_excluded),
        cmocka_unit_test(test_overall_duration_sums_recorded_phases),
        cmocka_unit_test(test_eviction_verdicts_placed),
        cmocka_unit_test(test_reuse_identity_placed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
