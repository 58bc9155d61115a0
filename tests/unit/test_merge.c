/*
 * Unit tests for what kvbench merge reads a run back through: requests.jsonl rows into struct
 * req_result (load/rowread.h), checked against the results a real phase kept while it wrote
 * them (a streaming server on 127.0.0.1, an open loop, a failed request) and against the
 * aggregate the phase's threads kept; every malformed field refused with its name; a run's
 * configuration rebuilt from its config.json args (cmd/runargs.h); and the checks that the
 * directories given are shards of one run (run/merge.h).
 */
#include "test_common.h"

#include "cmd/runargs.h"
#include "load/loadgen.h"
#include "load/rowread.h"
#include "model/tokenizer.h"
#include "run/merge.h"
#include "run/shard.h"
#include "support/testsrv.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/sha256.h"

#include <jansson.h>
#include <math.h>

#define N_PROMPTS 8

static void send_chunk(int fd, const char *data)
{
    char h[32];
    snprintf(h, sizeof h, "%zx\r\n", strlen(data));
    testsrv_write_str(fd, h);
    testsrv_write_str(fd, data);
    testsrv_write_str(fd, "\r\n");
}

/* A streamed completion in four events (TTFT, three gaps), or HTTP 500 for a prompt that asks
 * for it. */
static bool handler(int fd, const struct testsrv_request *req, void *user)
{
    (void)user;
    if (req->body && strstr(req->body, "please fail")) {
        static const char body[] = "{\"error\":{\"message\":\"boom, with \\\"quotes\\\"\"}}";
        char h[160];
        snprintf(h, sizeof h, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: %zu\r\n\r\n",
                 sizeof body - 1);
        testsrv_write_str(fd, h);
        testsrv_write_str(fd, body);
        return true;
    }
    testsrv_write_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n");
    static const char *const words[] = {"alpha", " beta", " gamma", " delta"};
    for (size_t i = 0; i < 4; i++) {
        char ev[256];
        snprintf(
            ev, sizeof ev,
            "data: {\"id\":\"cmpl-t\",\"choices\":[{\"text\":\"%s\",\"finish_reason\":%s}]}\n\n",
            words[i], i == 3 ? "\"stop\"" : "null");
        send_chunk(fd, ev);
        testsrv_sleep_ms(2);
    }
    send_chunk(fd, "data: {\"id\":\"cmpl-t\",\"choices\":[],\"usage\":{\"prompt_tokens\":6,"
                   "\"completion_tokens\":4,\"prompt_tokens_details\":{\"cached_tokens\":2}}}\n\n");
    send_chunk(fd, "data: [DONE]\n\n");
    send_chunk(fd, "");
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
    for (int i = 0; i < N_PROMPTS; i++) {
        struct prompt *p = &f->prompts[i];
        snprintf(p->id, sizeof p->id, "main-%05d", i);
        snprintf(p->set, sizeof p->set, "short");
        char text[64];
        snprintf(text, sizeof text, "prompt number %d%s", i, i == 5 ? " please fail" : "");
        if (!(p->text = strdup(text)))
            return -1;
        p->len = strlen(p->text);
        p->target = 6;
        p->est_tokens = 5 + (size_t)i;
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
static const struct gen_params GP = {.max_tokens = 8, .temperature = 0, .top_p = 1, .stream = true};

/* One open-loop phase of every prompt (so rows have lags), rows written to path. */
static void run_open_phase(struct fixture *f, const char *path, const struct slo *slo,
                           struct loadgen *lg, struct phase_result *out)
{
    memset(lg, 0, sizeof *lg);
    snprintf(lg->completions_url, sizeof lg->completions_url, "http://127.0.0.1:%d/v1/completions",
             testsrv_port(f->srv));
    lg->model = "tiny";
    lg->timeout_s = 10;
    lg->gp = &GP;
    lg->run_id = "merge-test";
    lg->spill_dir = f->dir;
    lg->interrupted = &not_interrupted;
    lg->tok = tokenizer_heuristic();
    lg->threads = 2;
    lg->transport = HTTP_TRANSPORT_NATIVE;
    lg->request_rate = 2000;
    lg->shape.arrival = ARRIVAL_CONSTANT;
    lg->shape.burstiness = 1;
    lg->max_concurrency = 2;
    lg->slo = slo;
    char err[ERR_LEN];
    assert_int_equal(loadgen_init(lg, err), 0);
    assert_int_equal(loadgen_open_rows(lg, path, err), 0);
    struct phase_plan pp = {
        .name = "main", .prompts = f->ptrs, .n = N_PROMPTS, .concurrency = 2, .open_loop = true};
    assert_int_equal(loadgen_run_phase(lg, &pp, out, err), 0);
    assert_int_equal(loadgen_close_rows(lg, err), 0);
}

static const struct req_result *kept_by_index(const struct phase_result *r, size_t index)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->reqs[i].request_index == index)
            return &r->reqs[i];
    fail_msg("no kept result for request %zu", index);
    return NULL;
}

/* NaN equals NaN here: both say "not measured". */
static void assert_same_ms(double a, double b)
{
    if (isnan(a) || isnan(b))
        assert_true(isnan(a) && isnan(b));
    else
        assert_true(fabs(a - b) <= 1e-9 * fmax(1, fabs(a)));
}

/* A row read back is the result the phase kept for it. */
static void assert_row_is_result(const struct row_read *r, const struct req_result *q)
{
    assert_string_equal(r->phase, "main");
    assert_string_equal(r->prompt.id, q->prompt->id);
    assert_string_equal(r->prompt.sha256, q->prompt->sha256);
    assert_int_equal(r->prompt.est_tokens, q->prompt->est_tokens);
    assert_int_equal(r->q.worker_idx, q->worker_idx);
    assert_int_equal(r->q.ok, q->ok);
    assert_int_equal(r->q.status, q->status);
    assert_same_ms(r->q.latency_ms, q->latency_ms);
    assert_same_ms(r->q.ttft_ms, q->ttft_ms);
    assert_same_ms(r->q.tpot_ms, q->tpot_ms);
    assert_same_ms(r->q.lag_ms, q->lag_ms);
    assert_same_ms(r->q.client_lag_ms, q->client_lag_ms);
    assert_int_equal(r->itl.n, q->n_itl);
    assert_int_equal(r->q.usage_prompt, q->usage_prompt);
    assert_int_equal(r->q.usage_completion, q->usage_completion);
    assert_int_equal(r->q.cached, q->cached);
    assert_string_equal(r->q.cached_source ? r->q.cached_source : "-",
                        q->cached_source ? q->cached_source : "-");
    assert_string_equal(r->q.finish_reason, q->finish_reason);
    assert_int_equal(r->q.output_tokens_est, q->output_tokens_est);
    assert_int_equal(r->q.output_len_chars, q->output_len_chars);
    assert_string_equal(r->q.identity_sha256, q->identity_sha256);
    assert_string_equal(r->q.payload_sha256, q->payload_sha256);
    assert_string_equal(r->q.error ? r->q.error : "-", q->error ? q->error : "-");
    assert_true(r->start_s > 1e9 && r->end_s >= r->start_s);
}

static void assert_same_stats(struct phase_agg *const *a, size_t na, struct phase_agg *b)
{
    for (int m = AGG_LATENCY; m <= AGG_CLIENT_LAG; m++) {
        struct dstats x, y;
        assert_int_equal(phase_agg_stats(a, na, (enum agg_metric)m, &x), 0);
        assert_int_equal(phase_agg_stats(&b, 1, (enum agg_metric)m, &y), 0);
        assert_int_equal(x.n, y.n);
        const double xs[] = {x.min, x.p50, x.p90, x.p95, x.p99, x.max, x.mean};
        const double ys[] = {y.min, y.p50, y.p90, y.p95, y.p99, y.max, y.mean};
        for (size_t k = 0; x.n && k < sizeof xs / sizeof xs[0]; k++)
            assert_same_ms(xs[k], ys[k]);
    }
}

/* Every row of a real phase reads back as the result the phase kept, and the rows fed to a new
 * aggregate add up to what the phase's threads kept: counts, sums, sets, every statistic,
 * goodput. */
static void test_rows_read_back(void **state)
{
    struct fixture *f = *state;
    char path[512], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/requests.jsonl", f->dir);
    struct slo slo = {0};
    assert_int_equal(slo_parse("ttft_ms=1000,itl_ms=1000", &slo, err), 0);
    struct loadgen lg;
    struct phase_result out;
    run_open_phase(f, path, &slo, &lg, &out);
    assert_int_equal(out.n, N_PROMPTS);
    assert_int_equal(out.errors, 1);
    assert_non_null(out.reqs);

    struct phase_agg again, sum = {0};
    phase_agg_init(&again, f->dir);
    FILE *rows = fopen(path, "r");
    assert_non_null(rows);
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, rows)) > 0) {
        struct row_read r;
        if (row_read(line, (size_t)len, &r, err) < 0)
            fail_msg("row %zu: %s", n + 1, err);
        assert_row_is_result(&r, kept_by_index(&out, r.q.request_index));
        assert_string_equal(r.params_sha256, lg.params_sha256);
        phase_agg_add(&again, &slo, &r.q, r.itl.v, r.itl.n);
        row_read_free(&r);
        n++;
    }
    free(line);
    fclose(rows);
    assert_int_equal(n, N_PROMPTS);

    for (size_t i = 0; i < out.n_aggs; i++)
        phase_agg_sum(&sum, &out.aggs[i]);
    assert_int_equal(again.total, sum.total);
    assert_int_equal(again.ok, sum.ok);
    assert_int_equal(again.err, 1);
    assert_true(again.in_est == sum.in_est && again.out_est == sum.out_est);
    assert_true(again.in_usage == sum.in_usage && again.cached == sum.cached);
    assert_true(again.any_cached && again.any_usage);
    assert_int_equal(again.slo.judged, sum.slo.judged);
    assert_int_equal(again.slo.met, sum.slo.met);
    assert_true(json_equal(again.prompt_sha, sum.prompt_sha));
    assert_true(json_equal(again.identity_sha, sum.identity_sha));
    assert_true(json_equal(again.payload_sha, sum.payload_sha));
    assert_true(again.saw_404_500);
    struct phase_agg *parts[8];
    for (size_t i = 0; i < out.n_aggs; i++)
        parts[i] = &out.aggs[i];
    assert_same_stats(parts, out.n_aggs, &again);
    struct dstats lag;
    assert_int_equal(phase_agg_stats(parts, out.n_aggs, AGG_CLIENT_LAG, &lag), 0);
    assert_int_equal(lag.n, N_PROMPTS); /* an open loop: every row has its client lag */

    phase_agg_free(&again);
    phase_agg_free(&sum);
    phase_result_free(&out);
    loadgen_free(&lg);
}

#define ROW_HEAD                                                                                   \
    "{\"request_index\":3,\"phase\":\"main\",\"worker_idx\":2,"                                    \
    "\"start_ts\":\"2025-01-02T03:04:05.678+00:00\",\"end_ts\":\"2025-01-02T03:04:05.900Z\","

/* Nulls read as "not measured"; an error makes the request failed; an old row without
 * client_lag_ms reads it as NaN. */
static void test_row_nulls(void **state)
{
    (void)state;
    static const char line[] = ROW_HEAD
        "\"schedule_lag_ms\":null,\"latency_ms\":12.5,\"ttft_ms\":null,\"itl_ms\":null,"
        "\"tpot_ms\":null,\"status_code\":0,\"prompt_id\":\"main-00002\",\"prompt_set\":\"short\","
        "\"prompt_target_tokens\":512,\"prompt_tokens_est\":515,\"usage_prompt_tokens\":null,"
        "\"usage_completion_tokens\":null,\"cached_tokens\":null,\"cached_tokens_source\":null,"
        "\"finish_reason\":null,\"server_truncated\":false,\"error\":\"connection refused\"}\n";
    struct row_read r;
    char err[ERR_LEN];
    assert_int_equal(row_read(line, strlen(line), &r, err), 0);
    assert_int_equal(r.q.request_index, 3);
    assert_int_equal(r.q.worker_idx, 1);
    assert_false(r.q.ok);
    assert_string_equal(r.q.error, "connection refused");
    assert_true(isnan(r.q.ttft_ms) && isnan(r.q.tpot_ms) && isnan(r.q.lag_ms));
    assert_true(isnan(r.q.client_lag_ms));
    assert_int_equal(r.q.usage_prompt, -1);
    assert_int_equal(r.q.cached, -1);
    assert_null(r.q.cached_source);
    assert_int_equal(r.itl.n, 0);
    assert_int_equal(r.prompt.est_tokens, 515);
    assert_ptr_equal(r.q.prompt, &r.prompt);
    assert_true(fabs(r.end_s - r.start_s - 0.222) < 1e-6);
    row_read_free(&r);
}

/* Anything kvbench did not write is refused, naming the field. */
static void test_row_errors(void **state)
{
    (void)state;
    static const char TAIL[] = "\"latency_ms\":1,\"status_code\":200,\"prompt_id\":\"p\","
                               "\"prompt_tokens_est\":1,\"error\":null}";
    static const struct {
        const char *row, *want;
    } cases[] = {
        {"{\"request_index\": 1,", "not JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"phase\":\"main\"}", "no request_index"},
        {"{\"request_index\":0,\"phase\":\"main\",\"start_ts\":\"2025-01-02T03:04:05Z\","
         "\"end_ts\":\"2025-01-02T03:04:05Z\",%s",
         "request_index: expected an integer from 1"},
        {"{\"request_index\":\"1\",\"phase\":\"main\"}", "request_index: expected an integer"},
        {"{\"request_index\":1,\"start_ts\":\"2025-01-02T03:04:05Z\"}", "no phase"},
        {"{\"request_index\":1,\"phase\":\"main\",\"start_ts\":\"yesterday\","
         "\"end_ts\":\"2025-01-02T03:04:05Z\",%s",
         "start_ts: not a UTC ISO-8601 time"},
        {ROW_HEAD "\"latency_ms\":\"fast\",\"status_code\":200,\"prompt_id\":\"p\","
                  "\"prompt_tokens_est\":1}",
         "latency_ms: expected a number"},
        {ROW_HEAD "\"itl_ms\":[1,\"x\"],%s", "itl_ms[1]: expected a number"},
        {ROW_HEAD "\"itl_ms\":7,%s", "itl_ms: expected an array or null"},
        {ROW_HEAD "\"server_truncated\":\"no\",%s", "server_truncated: expected true or false"},
        {ROW_HEAD "\"cached_tokens\":-4,%s", "cached_tokens: expected an integer >= 0"},
        {ROW_HEAD "\"status_code\":200,\"prompt_id\":\"p\",\"prompt_tokens_est\":1,"
                  "\"latency_ms\":1,\"error\":42}",
         "error: expected a string or null"},
        {ROW_HEAD "\"status_code\":200,\"prompt_tokens_est\":1,\"latency_ms\":1}", "no prompt_id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[1024], err[ERR_LEN] = "";
        snprintf(line, sizeof line, cases[i].row, TAIL);
        struct row_read r;
        int rc = row_read(line, strlen(line), &r, err);
        row_read_free(&r);
        if (rc == 0 || !strstr(err, cases[i].want))
            fail_msg("case %zu: rc %d, err '%s', want '%s'", i, rc, err, cases[i].want);
        assert_null(strchr(err, '\n'));
    }
}

/* Parse a run command line as `kvbench run` does. */
static void parse_run(struct run_flags *f, struct opt *opts, int argc, char **argv,
                      struct run_config *cfg)
{
    memset(f, 0, sizeof *f);
    memset(opts, 0, sizeof(struct opt) * (RUN_FLAGS_MAX + 1));
    size_t n = 0;
    run_flags_add(f, opts, &n, RUN_FLAGS_MAX, NULL);
    char err[ERR_LEN];
    if (opts_parse(opts, argc, argv, NULL, err) != OPTS_OK ||
        run_flags_config(f, opts, cfg, err) < 0)
        fail_msg("%s", err);
}

/* config.json args give back the configuration they were recorded from, through the run's own
 * rows; a flag at its default is "not given" (the preset's users stay); unknown keys are said. */
static void test_run_args(void **state)
{
    (void)state;
    char *argv[] = {"--scenario", "multi_turn",
                    "--preset",   "lmbench-short",
                    "--rounds",   "3",
                    "--slo",      "ttft_ms=250",
                    "--slo",      "itl_ms=20",
                    "--stream",   "--temperature",
                    "0.3",        "--request-seed",
                    "77",         "--variant-tag",
                    "a",          "--variant-tag",
                    "b",          "--run-id",
                    "orig",       "--kv-mode",
                    "cpu_only",   "--max-concurrency",
                    "3",          "--short-range",
                    "100:200"};
    static struct run_flags f;
    static struct opt opts[RUN_FLAGS_MAX + 1];
    struct run_config want;
    parse_run(&f, opts, (int)(sizeof argv / sizeof argv[0]), argv, &want);
    json_t *args = json_deep_copy(want.flags);
    json_object_set_new(args, "shard", json_string("0/2"));
    json_object_set_new(args, "from_the_future", json_true());
    static const char *const skip[] = {"shard", "run_id", NULL};
    struct run_args ra;
    char err[ERR_LEN];
    if (run_args_config(args, skip, &ra, err) < 0)
        fail_msg("%s", err);
    const struct run_config *c = &ra.cfg;
    assert_string_equal(c->scen.scenario, "multi_turn");
    assert_int_equal(c->scen.users, want.scen.users); /* the preset's, not the row default */
    assert_int_equal(c->scen.rounds, 3);
    assert_int_equal(c->gp.max_tokens, want.gp.max_tokens);
    assert_true(c->gp.stream);
    assert_true(c->gp.temperature == 0.3);
    assert_true(c->gp.has_seed && c->gp.seed == 77);
    assert_true(c->slo.any && c->slo.limit_ms[SLO_TTFT] == 250 && c->slo.limit_ms[SLO_ITL] == 20);
    assert_int_equal(c->scen.n_variant_tags, 2);
    assert_string_equal(c->scen.variant_tags[1], "b");
    assert_int_equal(c->scen.kv_mode, want.scen.kv_mode);
    assert_int_equal(c->scen.max_concurrency, 3);
    assert_int_equal(c->short_range.min, 100);
    assert_string_not_equal(c->run_id, "orig"); /* skipped: a default id */
    assert_int_equal(json_array_size(ra.ignored), 1);
    assert_string_equal(json_string_value(json_array_get(ra.ignored, 0)), "from_the_future");
    run_args_release(&ra);

    /* a recorded value the flags refuse is refused, naming the flag */
    json_object_set_new(args, "concurrency", json_integer(0));
    assert_int_equal(run_args_config(args, skip, &ra, err), -1);
    assert_non_null(strstr(err, "--concurrency"));
    run_args_release(&ra);
    json_decref(args);
    run_flags_release(&want);
    opts_free(opts);
}

/* The merge's configuration leaves the per-shard and the host-local args (those config_sha256
 * leaves out) at their defaults: a tokenizer path or cache directory of another machine is
 * neither needed nor taken as the run's. */
static void test_skip_args(void **state)
{
    (void)state;
    static struct run_flags f;
    static struct opt opts[RUN_FLAGS_MAX + 1];
    struct run_config def;
    char *argv[] = {"--requests", "7"};
    parse_run(&f, opts, 2, argv, &def);
    json_t *args = json_deep_copy(def.flags);
    json_t *host = json_pack("{s:s, s:s, s:b, s:b, s:f, s:s, s:s, s:s}", "tokenizer",
                             "/elsewhere/tokenizer.json", "log_level", "DEBUG", "no_progress", 1,
                             "collect_telemetry", 1, "telemetry_interval_s", 0.25, "telemetry_pid",
                             "1234", "kvbm_cache_dir", "/elsewhere/kv", "container_name", "other");
    json_object_set_new(host, "iostat_device", json_string("sdz"));
    json_object_set_new(host, "phase_io_device", json_string("sdz"));
    json_object_set_new(host, "report_filename", json_string("other.md"));
    json_object_update(args, host);
    struct run_args ra;
    char err[ERR_LEN];
    const char *skip_args[64];
    shard_skip_args(skip_args, sizeof skip_args / sizeof skip_args[0]);
    if (run_args_config(args, skip_args, &ra, err) < 0)
        fail_msg("%s", err);
    const char *key;
    json_t *v;
    json_object_foreach(host, key, v)
    {
        bool skipped = false;
        for (const char *const *k = skip_args; *k && !skipped; k++)
            skipped = strcmp(*k, key) == 0;
        if (!skipped)
            fail_msg("%s is not among the args config_sha256 leaves out", key);
    }
    assert_int_equal(ra.cfg.scen.requests, 7);
    assert_string_equal(ra.cfg.report_filename, def.report_filename);
    assert_false(ra.cfg.collect_telemetry);
    assert_true(ra.cfg.telemetry_interval_s == def.telemetry_interval_s);
    assert_true(ra.cfg.kvbm_cache_dir == NULL ||
                (def.kvbm_cache_dir && strcmp(ra.cfg.kvbm_cache_dir, def.kvbm_cache_dir) == 0));
    assert_true(ra.cfg.scen.container_name == def.scen.container_name ||
                strcmp(ra.cfg.scen.container_name, def.scen.container_name) == 0);
    run_args_release(&ra);
    json_decref(host);
    json_decref(args);
    run_flags_release(&def);
    opts_free(opts);
}

/* A shard directory with this config.json shard object (NULL: none) and summary. */
static void make_shard(const char *dir, const char *shard_json, bool summary)
{
    char err[ERR_LEN], path[600];
    assert_int_equal(fs_mkdir_p(dir, err), 0);
    json_t *c = json_pack("{s:s, s:[]}", "run_id", "x", "phases");
    if (shard_json)
        json_object_set_new(c, "shard", json_loads(shard_json, 0, NULL));
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(json_write_file(path, c, err), 0);
    json_decref(c);
    if (summary) {
        snprintf(path, sizeof path, "%s/summary.json", dir);
        assert_int_equal(fs_write_atomic(path, "{\"run_valid\":true}", 18, err), 0);
    }
}

static void expect_open_error(const char *const *dirs, size_t n, const char *want)
{
    struct merge_set set;
    char err[ERR_LEN] = "";
    int rc = merge_open(dirs, n, &set, err);
    merge_close(&set);
    if (rc == 0 || !strstr(err, want))
        fail_msg("rc %d, err '%s', want '%s'", rc, err, want);
}

/* The directories must be shards of one run: readable, with a shard object, one hash, one
 * count, no index twice; the reference shard is the lowest that finished. */
static void test_merge_open(void **state)
{
    struct fixture *f = *state;
    char a[512], b[512], c[512], d[512], e[512], none[512];
    snprintf(a, sizeof a, "%s/s/a", f->dir);
    snprintf(b, sizeof b, "%s/s/b", f->dir);
    snprintf(c, sizeof c, "%s/s/c", f->dir);
    snprintf(d, sizeof d, "%s/s/d", f->dir);
    snprintf(e, sizeof e, "%s/s/e", f->dir);
    snprintf(none, sizeof none, "%s/s/none", f->dir);
#define SHARD(i, n, h)                                                                             \
    "{\"index\":" #i ",\"count\":" #n ",\"base_run_id\":\"r\",\"config_sha256\":\"" h "\"}"
    make_shard(a, SHARD(0, 3, "h1"), false);
    make_shard(b, SHARD(2, 3, "h1"), true);
    make_shard(c, SHARD(1, 3, "h2"), true);
    make_shard(d, SHARD(1, 4, "h1"), true);
    make_shard(e, NULL, true);
    const char *ok[] = {b, a};
    struct merge_set set;
    char err[ERR_LEN];
    assert_int_equal(merge_open(ok, 2, &set, err), 0);
    assert_int_equal(set.count, 3);
    assert_int_equal(set.shards[0].index, 0); /* in index order */
    assert_null(set.shards[0].summary);       /* a did not finish */
    assert_ptr_equal(set.ref, &set.shards[1]);
    assert_string_equal(set.base_run_id, "r");
    merge_close(&set);
    const char *hash[] = {a, c};
    expect_open_error(hash, 2, "config_sha256");
    const char *count[] = {a, d};
    expect_open_error(count, 2, "a shard of 4");
    const char *twice[] = {a, a};
    expect_open_error(twice, 2, "are both shard 0 of 3");
    const char *plain[] = {e};
    expect_open_error(plain, 1, "no shard object");
    const char *missing[] = {none};
    expect_open_error(missing, 1, "not a directory");
    char bad[512];
    snprintf(bad, sizeof bad, "%s/s/bad", f->dir);
    make_shard(bad, "{\"index\":3,\"count\":3,\"base_run_id\":\"r\",\"config_sha256\":\"h\"}",
               true);
    const char *range[] = {bad};
    expect_open_error(range, 1, "0 <= index < count");
#undef SHARD
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_read_back), cmocka_unit_test(test_row_nulls),
        cmocka_unit_test(test_row_errors),     cmocka_unit_test(test_run_args),
        cmocka_unit_test(test_merge_open),     cmocka_unit_test(test_skip_args),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
