/* Unit tests for report.md (report/report.h): report_markdown from a summary.json written here —
 * the status line, the invalid run's reason and rule, the phases' table, the scenario's own
 * section (eviction_replay's verdicts, multi_turn's rounds), the request identity and notes; and
 * a buffer that fails gives no report at all, never a short one. */
#include "test_common.h"

#include "report/report.h"
#include "util/fault.h"

#include <jansson.h>

static json_t *summary_of(const char *text)
{
    json_error_t je;
    json_t *s = json_loads(text, 0, &je);
    if (!s)
        fail_msg("bad test JSON: %s", je.text);
    return s;
}

static void has(const char *md, const char *needle)
{
    if (!strstr(md, needle))
        fail_msg("report.md lacks '%s':\n%s", needle, md);
}

static const char *VALID_EVICTION =
    "{\"run_id\": \"r1\", \"run_valid\": true, \"scenario\": \"eviction_replay\", \"stream\": true,"
    " \"model_id\": \"m\", \"kv_mode\": {\"mode\": \"cpu_disk\", \"cpu_cache_gb\": 4,"
    " \"disk_cache_gb\": 16}, \"fingerprint\": {\"host\": \"h\", \"cpu_count\": 2},"
    " \"phase_summaries\": [{\"phase\": \"warm_A\", \"concurrency\": 2, \"total_requests\": 6,"
    "   \"error_requests\": 0, \"req_per_s\": 3.5, \"latency_ms\": {\"p50\": 12.25}},"
    "  {\"phase\": \"replay_A\", \"concurrency\": 2, \"total_requests\": 6, \"error_requests\": "
    "1}],"
    " \"overall_summary\": {\"total_requests\": 12, \"error_requests\": 1, \"req_per_s\": 3.5,"
    "   \"eviction_replay_signal_kvbm\": {\"signal\": \"disk_onboard_detected\","
    "     \"interpretation\": \"Set A came back from disk.\"},"
    "   \"eviction_replay_signal_io\": {\"signal\": \"disk_read_detected\","
    "     \"interpretation\": \"Replay read 3 MiB.\"}},"
    " \"request_identity\": {\"total_requests\": 12, \"unique_prompt_sha256_count\": 6},"
    " \"notes\": [\"a note\"]}";

static void test_valid_run_sections(void **state)
{
    (void)state;
    json_t *s = summary_of(VALID_EVICTION);
    json_t *config = json_pack("{s:s}", "base_url", "http://h:1");
    char *md = report_markdown(s, config);
    assert_non_null(md);
    has(md, "# kvbench run r1\n");
    has(md, "- **Status:** valid\n");
    has(md, "- **Scenario:** eviction_replay, stream on\n");
    has(md, "- **Model:** m at http://h:1\n");
    has(md, "- **KV mode:** cpu_disk (host cache 4 GB, disk cache 16 GB)\n");
    assert_null(strstr(md, "Why the run is invalid"));
    has(md, "\n## Phases\n");
    has(md, "| warm_A | 2 | 6 | 0 | 3.50 | 12.2");
    has(md, "| replay_A | 2 | 6 | 1 | –");
    has(md, "Overall (included phases): 12 requests, 1 errors, 3.50 req/s");
    /* the scenario's own section, from its row of the table */
    has(md, "## Signals\n\n### Replay from disk (KV metrics): `disk_onboard_detected`\n\n"
            "Set A came back from disk.\n\n");
    has(md, "### Replay from disk (block device): `disk_read_detected`\n\nReplay read 3 MiB.");
    has(md, "## Request identity\n\n- Requests: 12\n- Unique prompt hashes: 6\n");
    has(md, "## Notes\n\n- a note\n");
    /* in order: header, phases, signals, identity, notes */
    assert_true(strstr(md, "## Phases") < strstr(md, "## Signals"));
    assert_true(strstr(md, "## Signals") < strstr(md, "## Request identity"));
    assert_true(strstr(md, "## Request identity") < strstr(md, "## Notes"));
    free(md);
    json_decref(config);
    json_decref(s);
}

/* A run on kvbench serve --g1 cuda with GPU telemetry: the GPU table, with what each phase copied
 * and "–" where a source said nothing; a run with neither has no GPU table. */
static void test_gpu_table(void **state)
{
    (void)state;
    json_t *s = summary_of(
        "{\"run_id\": \"g\", \"run_valid\": true, \"scenario\": \"eviction_replay\","
        " \"phase_summaries\": [{\"phase\": \"warm_A\", \"telemetry\": {\"gpu\": {\"samples\": 3,"
        "   \"peak_mem_used_mib\": 20480, \"mean_util_pct\": 12}},"
        "   \"kvbm_metrics_delta\": {\"available\": true, \"gpu_copies\": {\"h2d_bytes\": 0,"
        "   \"h2d_gb_per_s\": null, \"d2h_bytes\": 104857600, \"d2h_gb_per_s\": 51.25,"
        "   \"copy_errors\": 0}}},"
        "  {\"phase\": \"replay_A\", \"telemetry\": {\"gpu\": {\"samples\": 0}},"
        "   \"kvbm_metrics_delta\": {\"available\": true, \"gpu_copies\": {\"h2d_bytes\": "
        "   52428800, \"h2d_gb_per_s\": 48.5, \"d2h_bytes\": 0, \"copy_errors\": 0}}}]}");
    json_t *config = json_object();
    char *md = report_markdown(s, config);
    assert_non_null(md);
    has(md, "## GPU per phase\n");
    has(md, "| warm_A | 20480 | 12 | 0.0 | – | 100.0 | 51.25 | 0 |\n");
    has(md, "| replay_A | – | – | 50.0 | 48.50 | 0.0 | – | 0 |\n");
    free(md);
    json_decref(s);
    s = summary_of(VALID_EVICTION);
    md = report_markdown(s, config);
    assert_null(strstr(md, "GPU per phase"));
    free(md);
    json_decref(config);
    json_decref(s);
}

static void test_invalid_run(void **state)
{
    (void)state;
    json_t *s = summary_of(
        "{\"run_id\": \"r2\", \"run_valid\": false, \"invalid_reason\": \"server_unreachable\","
        " \"invalid_details\": [\"nothing answered\", {\"k\": 1}], \"scenario\": \"standard\","
        " \"overall_summary\": {\"excluded\": true}, \"phase_summaries\": [],"
        " \"warnings\": [{\"code\": \"w1\", \"message\": \"careful\"}]}");
    char *md = report_markdown(s, NULL);
    assert_non_null(md);
    has(md, "- **Status:** INVALID — `server_unreachable`\n");
    has(md, "- **Warning (`w1`):** careful\n");
    has(md, "\n## Why the run is invalid\n\n`server_unreachable`: ");
    has(md, "- nothing answered\n- `{\"k\":1}`\n");
    /* excluded: no overall line */
    assert_null(strstr(md, "Overall (included phases)"));
    has(md, "The standard scenario has no offload verdict");
    free(md);
    json_decref(s);
}

static void test_multi_turn_section(void **state)
{
    (void)state;
    json_t *s = summary_of(
        "{\"run_id\": \"r3\", \"run_valid\": true, \"scenario\": \"multi_turn\","
        " \"multi_turn\": {\"users\": 2, \"rounds_planned\": 2, \"device_tier_tokens\": 512,"
        "  \"verdict\": {\"signal\": \"reuse_holds\", \"interpretation\": \"it held\"},"
        "  \"rounds\": [{\"round\": 2, \"requests\": 2, \"errors\": 0, \"hit_rate\": 0.75,"
        "   \"ttft_ms\": {\"p50\": 5}}]}}");
    char *md = report_markdown(s, NULL);
    assert_non_null(md);
    has(md, "### multi_turn: `reuse_holds`\n\nit held.\n\n");
    has(md, "device tier 512 tokens.");
    has(md, "| 2 | 2 | 0 | 5.0 | – | – | – | 0.75 | – | – |\n");
    free(md);
    json_decref(s);
}

/* An allocation that fails while the report is built: NULL, never a short report. */
static void test_failed_buffer_gives_no_report(void **state)
{
    (void)state;
    json_t *s = summary_of(VALID_EVICTION);
    int failed_runs = 0;
    for (long nth = 1; nth <= 6; nth++) {
        fault_arm(nth, true);
        char *md = report_markdown(s, NULL);
        long failures = fault_failures();
        fault_disarm();
        if (failures > 0) {
            assert_null(md);
            failed_runs++;
        }
        free(md);
    }
    assert_true(failed_runs > 0);        /* the buffer did grow through the hook */
    char *md = report_markdown(s, NULL); /* and it recovers once memory is back */
    assert_non_null(md);
    has(md, "## Notes");
    free(md);
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_run_sections),
        cmocka_unit_test(test_gpu_table),
        cmocka_unit_test(test_invalid_run),
        cmocka_unit_test(test_multi_turn_section),
        cmocka_unit_test(test_failed_buffer_gives_no_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
