/* Unit tests for the runner (run/runner.h) at its one seam, bench_run: against a server that is
 * not there (a closed loopback port), in a scratch results root — the run directory and every
 * artifact written for an invalid run, the phase plan in config.json, the validity decision
 * (server_unreachable, nothing sent), a refused run id or existing directory (RUN_USAGE, nothing
 * written), and an artifact that cannot be written (report.md into a missing directory): the run
 * is artifact_write_failed, and the summary says which file. */
#include "test_common.h"

#include "run/runner.h"
#include "util/err.h"
#include "util/json.h"

#include <jansson.h>
#include <sys/stat.h>

static const volatile sig_atomic_t NOT_INTERRUPTED = 0;

/* A run of the standard scenario (warmup 2, main 3) at a port nothing listens on. */
static void config_init(struct run_config *c, const char *root, const char *run_id)
{
    memset(c, 0, sizeof *c);
    c->base_url = "http://127.0.0.1:9"; /* discard: refused at once */
    c->model_id = "m";
    c->model_resolve_timeout_s = 1;
    c->model_resolve_poll_s = 0.1;
    c->scen.scenario = "standard";
    c->scen.prompt_set = "short";
    c->short_range = (struct token_range){32, 64};
    c->long_range = (struct token_range){256, 512};
    c->scen.requests = 3;
    c->scen.warmup = 2;
    c->scen.concurrency = 1;
    c->gp.max_tokens = 8;
    c->timeout_s = 2;
    c->max_response_bytes = 1 << 20;
    c->max_error_rate = 0.5;
    c->unreachable_timeout_s = 0.2;
    c->seed = 1;
    c->tokenizer_spec = "heuristic";
    c->tok = tokenizer_heuristic();
    c->results_root = root;
    c->run_id = run_id;
    c->scen.reuse_repeat = 2;
    c->scen.reuse_prompt_set = "short";
    c->scen.kv_mode = KV_MODE_OFF;
    c->engine_max_input_tokens = 100000;
    c->procfs_root = "/proc";
    c->sysfs_root = "/sys";
    c->phase_io_device = "auto";
    c->iostat_device = "auto";
    c->kvbm_cache_dir = root;
    c->scen.kvbm_metrics_url = "http://127.0.0.1:9/metrics";
    c->kvbm_metrics_timeout_s = 0.2;
    c->report_filename = "report.md";
    c->prompt_salt = "none";
    c->add_bos = "auto";
    c->engine = "auto";
    c->interrupt_grace_s = 1;
    c->threads = 1;
}

static bool exists(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0;
}

static json_t *read_json(const char *dir, const char *name)
{
    char path[PATH_MAX + 64], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_t *v = json_read_file(path, err);
    if (!v)
        fail_msg("%s: %s", name, err);
    return v;
}

static void test_unreachable_run_writes_everything(void **state)
{
    (void)state;
    char *root = test_tmpdir();
    assert_non_null(root);
    struct run_config c;
    config_init(&c, root, "r1");
    c.flags = json_pack("{s:s}", "scenario", "standard");
    struct run_outcome out;
    char err[ERR_LEN] = "";
    assert_int_equal(bench_run(&c, &NOT_INTERRUPTED, &out, err), RUN_OK);
    assert_false(out.valid);
    assert_string_equal(out.invalid_reason, "server_unreachable");
    assert_int_equal(out.requests_sent, 0);
    static const char *const files[] = {
        "config.json",           "summary.json",   "report.md",
        "report.html",           "requests.jsonl", "kvbm_metrics_snapshots.jsonl",
        "prompts_manifest.jsonl"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (!exists(out.run_dir, files[i]))
            fail_msg("%s missing in %s", files[i], out.run_dir);
    /* the phase plan: warmup (not in the overall figures), then main */
    json_t *config = read_json(out.run_dir, "config.json");
    const json_t *ph = json_object_get(config, "phases");
    assert_int_equal(json_array_size(ph), 2);
    assert_string_equal(json_get_str(json_array_get(ph, 0), "name", ""), "warmup");
    assert_int_equal(json_get_int(json_array_get(ph, 0), "requests", 0), 2);
    assert_false(json_get_bool(json_array_get(ph, 0), "include_in_overall", true));
    assert_string_equal(json_get_str(json_array_get(ph, 1), "name", ""), "main");
    assert_int_equal(json_get_int(json_array_get(ph, 1), "requests", 0), 3);
    assert_true(json_equal(json_object_get(config, "args"), c.flags));
    json_t *s = read_json(out.run_dir, "summary.json");
    assert_false(json_get_bool(s, "run_valid", true));
    assert_string_equal(json_get_str(s, "invalid_reason", ""), "server_unreachable");
    assert_string_equal(json_get_str(s, "run_id", ""), "r1");
    json_decref(s);
    json_decref(config);
    json_decref(c.flags);
    test_rmtree(root);
    free(root);
}

static void test_refused_run_ids(void **state)
{
    (void)state;
    char *root = test_tmpdir();
    assert_non_null(root);
    struct run_config c;
    struct run_outcome out;
    char err[ERR_LEN] = "";
    config_init(&c, root, "../escape");
    assert_int_equal(bench_run(&c, &NOT_INTERRUPTED, &out, err), RUN_USAGE);
    assert_true(err[0] != '\0');
    /* an existing run directory is never written into */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/taken", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    config_init(&c, root, "taken");
    assert_int_equal(bench_run(&c, &NOT_INTERRUPTED, &out, err), RUN_USAGE);
    assert_false(exists(dir, "summary.json"));
    test_rmtree(root);
    free(root);
}

/* report.md cannot be written: the run is artifact_write_failed (after the reason it already
 * had), the summary names the file, and no report.md is left behind as if it were good. */
static void test_artifact_write_failure(void **state)
{
    (void)state;
    char *root = test_tmpdir();
    assert_non_null(root);
    struct run_config c;
    config_init(&c, root, "r2");
    c.report_filename = "no_such_dir/report.md";
    struct run_outcome out;
    char err[ERR_LEN] = "";
    assert_int_equal(bench_run(&c, &NOT_INTERRUPTED, &out, err), RUN_OK);
    assert_false(out.valid);
    assert_false(exists(out.run_dir, "no_such_dir/report.md"));
    json_t *s = read_json(out.run_dir, "summary.json");
    const json_t *details = json_object_get(s, "invalid_details_kvbench");
    const json_t *write = NULL, *d;
    size_t i;
    json_array_foreach(details, i, d) if (strcmp(json_get_str(d, "reason", ""),
                                                 "artifact_write_failed") == 0) write = d;
    assert_non_null(write);
    const json_t *e0 = json_array_get(json_object_get(write, "errors"), 0);
    assert_string_equal(json_get_str(e0, "file", ""), "no_such_dir/report.md");
    json_decref(s);
    test_rmtree(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreachable_run_writes_everything),
        cmocka_unit_test(test_refused_run_ids),
        cmocka_unit_test(test_artifact_write_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
