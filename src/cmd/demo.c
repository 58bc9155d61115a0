/*
 * demo.c - `kvbench demo`: the whole story on the embedded engine, for a machine with no GPU.
 *
 * It starts `kvbench serve` (the llama-3.1-8b-fp8 profile on the gb10 hardware model) as a child
 * process, with tiers sized so that an eviction/replay workload pushes set A out of device and
 * host memory: G1 160 blocks, G2 128 blocks (256 MiB of real host memory), G3 1024 blocks of
 * 2 MiB files with the disk filter off. Then reuse_verify, eviction_replay (with telemetry), a
 * short multi_turn (4 users x 4 rounds whose contexts outgrow G1), and a cpu_only vs cpu_disk
 * compare of the same eviction_replay workload, restarting its own engine in each mode on the
 * same ports. It prints the verdicts, a summary table and where the reports
 * are, stops the engine and removes its cache. About 1.5 GiB is written to disk in all.
 */
#include "run/comparison.h"
#include "run/sweep.h"
#include "scenario/scenario.h"
#include "verdict/compare.h"
#include "verdict/verdict.h"
#include "run/ready.h"
#include "report/sumtable.h"
#include "cmd/cmd.h"
#include "cmd/runflags.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"
#include "engine/kvbm.h"
#include "util/proc.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct demo {
    char self[PATH_MAX];
    char cache[PATH_MAX];
    char ready_file[PATH_MAX];
    char log[PATH_MAX];
    char base_url[64], metrics_url[96];
    int port, metrics_port;
    double speedup;
    const char *g1; /* serve --g1: model or cuda */
    struct proc_child engine;
    bool running;
};

/* The last non-empty line of the engine's log (its one-line refusal when it would not start),
 * without the "kvbench serve: " prefix; "" when there is none. */
static void last_log_line(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    struct buf b = BUF_INIT;
    if (fs_read_file(path, &b, 1 << 20, NULL) == 0 && b.len) {
        size_t end = b.len;
        while (end > 0 && (b.data[end - 1] == '\n' || b.data[end - 1] == '\r'))
            end--;
        size_t start = end;
        while (start > 0 && b.data[start - 1] != '\n')
            start--;
        const char *line = b.data + start;
        size_t n = end - start;
        if (n > 15 && strncmp(line, "kvbench serve: ", 15) == 0) {
            line += 15;
            n -= 15;
        }
        snprintf(out, cap, "%.*s", (int)n, line);
    }
    buf_free(&b);
}

static int engine_start(struct demo *d, const char *mode, char *err)
{
    unlink(d->ready_file);
    char port[16], mport[16], speed[32];
    snprintf(port, sizeof port, "%d", d->port);
    if (d->metrics_port > 0)
        snprintf(mport, sizeof mport, "%d", d->metrics_port);
    else
        snprintf(mport, sizeof mport, "auto");
    snprintf(speed, sizeof speed, "%g", d->speedup);
    char *argv[] = {d->self,
                    "serve",
                    "--profile",
                    "llama-3.1-8b-fp8",
                    "--hardware",
                    "gb10",
                    "--kv-mode",
                    (char *)mode,
                    "--gpu-cache-blocks",
                    "160",
                    "--cpu-cache-blocks",
                    "128",
                    "--disk-cache-blocks",
                    "1024",
                    "--disable-disk-offload-filter",
                    "--disk-cache-dir",
                    d->cache,
                    "--port",
                    port,
                    "--metrics-port",
                    mport,
                    "--ready-file",
                    d->ready_file,
                    "--speedup",
                    speed,
                    "--log-level",
                    (char *)names_name(LOG_LEVEL_NAMES, LOG_WARNING),
                    "--g1",
                    (char *)d->g1,
                    NULL};
    if (proc_spawn(argv, d->log, NULL, &d->engine, err) < 0)
        return -1;
    d->running = true;
    for (int i = 0; i < 300; i++) {
        json_t *rf = json_read_file(d->ready_file, NULL);
        if (rf) {
            d->port = (int)json_get_int(rf, "port", 0);
            d->metrics_port = (int)json_get_int(rf, "metrics_port", 0);
            json_decref(rf);
            snprintf(d->base_url, sizeof d->base_url, "http://127.0.0.1:%d", d->port);
            snprintf(d->metrics_url, sizeof d->metrics_url, "http://127.0.0.1:%d/metrics",
                     d->metrics_port);
            return 0;
        }
        if (!proc_alive(&d->engine)) {
            d->running = false;
            char last[400];
            last_log_line(d->log, last, sizeof last);
            return err_set(err, "the engine exited at start%s%s (see %s)", last[0] ? ": " : "",
                           last, d->log);
        }
        clock_sleep_ns(50000000, NULL);
    }
    return err_set(err, "the engine did not start within 15 s (see %s)", d->log);
}

static void engine_stop(struct demo *d)
{
    if (d->running)
        proc_stop(&d->engine, SIGTERM, 30);
    d->running = false;
}

static int restart(const char *mode, void *user, char *err)
{
    struct demo *d = user;
    engine_stop(d);
    printf("demo: engine restarted in %s mode\n", mode);
    fflush(stdout);
    return engine_start(d, mode, err);
}

static void event(const char *ev, const char *mode, const char *detail, void *user)
{
    (void)user;
    if (strcmp(ev, "done") == 0 || strcmp(ev, "failed") == 0)
        printf("demo: compare [%s] %s\n", mode, detail ? detail : "");
    fflush(stdout);
}

static void sweep_event(const char *ev, const char *mode, const char *detail, void *user)
{
    (void)user;
    if (strcmp(ev, "step") == 0 || strcmp(ev, "failed") == 0)
        printf("demo: sweep [%s] %s\n", mode, detail ? detail : "");
    fflush(stdout);
}

static json_t *load_summary(const char *root, const char *id)
{
    char path[PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s/summary.json", root, id);
    return json_read_file(path, NULL);
}

static const char *sig_of(const json_t *s, const char *key)
{
    const json_t *o = json_object_get(json_object_get(s, "overall_summary"), key);
    if (!o)
        o = json_object_get(json_object_get(s, "kvbm_metrics"), key);
    if (!o)
        o = json_object_get(s, key);
    return json_get_str(o, "signal", json_get_str(o, "verdict", "-"));
}

/* The demo's own flags. */
/* The demo's runs, by their slot in its tables of ids and summaries. */
enum { RUN_REUSE, RUN_EVICT, RUN_CMP_ONLY, RUN_CMP_DISK, RUN_MULTI, RUN_BREAKEVEN, DEMO_RUNS };
#define DEMO_ACTS 6

struct demo_opts {
    const char *results_root, *demo_id;
    int level;    /* enum log_level */
    int endpoint; /* enum endpoint */
    int g1;       /* index into DEMO_G1_NAMES */
    double speedup;
    bool keep;
    long long repeats;
};

#define DO struct demo_opts

static const struct name_entry DEMO_G1_NAMES[] = {{"model", 0}, {"cuda", 1}, {NULL, 0}};

static const struct opt DEMO_ROWS[] = {
    CMD_OPT_RESULTS_ROOT(OPT_AT(DO, results_root, const char *),
                         "where the demo's runs and reports go"),
    {.name = "demo-id",
     OPT_AT_STR(DO, demo_id),
     .metavar = "ID",
     .help = "prefix of the run ids (default demo_<UTC timestamp>)"},
    {.name = "speedup",
     OPT_AT_FLOAT(DO, speedup),
     .def = "1",
     .min = 0,
     .max = 1e6,
     .help = "divide the engine's modelled time"},
    {.name = "keep-cache", OPT_AT_BOOL(DO, keep), .help = "keep the engine's cache directory"},
    {.name = "repeats",
     OPT_AT_INT(DO, repeats),
     .def = "3",
     .min = 1,
     .max = 20,
     .help = "runs per mode in the compare act, interleaved; from 3, Welch 95 % intervals "
             "and a verdict (each adds about 0.7 GiB written and 15 s)"},
    {.name = "endpoint",
     OPT_AT_ENUM(DO, endpoint, ENDPOINT_NAMES),
     .def = "completions",
     .help = "what every act sends: completions prompts, or chat messages"},
    {.name = "g1",
     OPT_AT_ENUM(DO, g1, DEMO_G1_NAMES),
     .def = "model",
     .help = "the engine's device tier: modelled, or real GPU memory with real copies "
             "(serve --g1 cuda; needs a CUDA GPU)"},
    CMD_OPT_LOG_LEVEL(OPT_AT(DO, level, int), "WARNING", "log verbosity of the runs"),
    {0},
};

/* Where the demo's engine files go, next to its runs; `self` is this executable. Returns -1 to
 * go on, or the exit code after printing the error. */
static int demo_prepare(struct demo *d, const struct demo_opts *o, char *err)
{
    ssize_t n = readlink("/proc/self/exe", d->self, sizeof d->self - 1);
    if (n <= 0) {
        fprintf(stderr, "kvbench demo: cannot find my own executable\n");
        return 1;
    }
    d->self[n] = '\0';
    if (fs_mkdir_p(o->results_root, err) < 0) {
        fprintf(stderr, "kvbench demo: %s\n", err);
        return 1;
    }
    snprintf(d->cache, sizeof d->cache, "%s/.%s-kvbm-cache", o->results_root, o->demo_id);
    snprintf(d->ready_file, sizeof d->ready_file, "%s/.%s-engine.json", o->results_root,
             o->demo_id);
    snprintf(d->log, sizeof d->log, "%s/%s_engine.log", o->results_root, o->demo_id);
    return -1;
}

/* The workload: run's defaults (its rows, parsed with no arguments), with the demo's sizes.
 * Returns run_flags_config's result; the caller releases base and frees ropts. */
static int demo_workload(const struct demo *d, const struct demo_opts *o, struct run_flags *f,
                         struct opt *ropts, struct run_config *base, char *err)
{
    memset(f, 0, sizeof *f);
    size_t nr = 0;
    run_flags_add(f, ropts, &nr, RUN_FLAGS_MAX, NULL);
    char *no_args[] = {NULL};
    opts_parse(ropts, 0, no_args, NULL, err);
    f->cfg.base_url = d->base_url;
    f->cfg.scen.kvbm_metrics_url = d->metrics_url;
    f->cfg.kvbm_cache_dir = d->cache;
    f->cfg.results_root = o->results_root;
    f->log_level = o->level;
    f->endpoint = o->endpoint;
    f->cfg.gp.max_tokens = 16;
    f->cfg.gp.stream = true;
    f->long_range = (struct opt_range){768, 1024};
    f->short_range = (struct opt_range){512, 512};
    f->cfg.scen.warmup = 1;
    f->cfg.scen.evict_a = 4;
    f->cfg.scen.evict_b = 8;
    f->cfg.tokenizer_spec =
        "heuristic"; /* the demo's model has no tokenizer.json on this machine */
    int rc = run_flags_config(f, ropts, base, err);
    base->scen.evict_a_conc = 2;
    base->scen.evict_b_conc = 4;
    return rc;
}

/* Act 4: break-even, on the same engine: TTFT of one prefix cold and warm from each tier at
 * 1k and 2k tokens, once each (the fillers that push each length out of the device and host
 * tiers write about 0.45 GiB: two lengths, about 0.9 GiB of the demo's 4.2). Returns whether it
 * was valid. */
static bool demo_breakeven(const struct run_config *base, const char *id)
{
    char err[ERR_LEN];
    struct run_config r = *base;
    r.scen.scenario = SCEN_BREAKEVEN.name;
    r.scen.kv_mode = KV_MODE_CPU_DISK;
    r.scen.warmup = 0;
    r.scen.n_breakeven_lengths = 2;
    r.scen.breakeven_lengths[0] = 1024;
    r.scen.breakeven_lengths[1] = 2048;
    r.scen.breakeven_repeats = 1;
    r.run_id = id;
    struct run_outcome out;
    printf("demo: [4/%d] breakeven: one prefix cold, then warm from device, host and disk, at "
           "1k and 2k tokens\n",
           DEMO_ACTS);
    fflush(stdout);
    return bench_run(&r, &cmd_interrupted, &out, err) == RUN_OK && out.valid;
}

/* Acts 1 to 4: reuse_verify, eviction_replay with telemetry, multi_turn, breakeven. Returns
 * whether all were valid (given all_valid so far). */
static bool demo_runs(const struct run_config *base, char ids[DEMO_RUNS][192], bool all_valid)
{
    char err[ERR_LEN];
    if (all_valid && !cmd_interrupted) {
        struct run_config r = *base;
        r.scen.scenario = SCEN_REUSE_VERIFY.name;
        r.scen.reuse_repeat = 3;
        r.gp.temperature = 0;
        r.gp.has_seed = true;
        r.gp.seed = 1337;
        r.scen.kv_mode = KV_MODE_CPU_DISK;
        r.run_id = ids[RUN_REUSE];
        struct run_outcome out;
        printf("demo: [1/%d] reuse_verify: one prompt three times\n", DEMO_ACTS);
        fflush(stdout);
        all_valid &= bench_run(&r, &cmd_interrupted, &out, err) == RUN_OK && out.valid;
    }
    if (!cmd_interrupted) {
        struct run_config r = *base;
        r.scen.scenario = SCEN_EVICTION_REPLAY.name;
        r.scen.kv_mode = KV_MODE_CPU_DISK;
        r.run_id = ids[RUN_EVICT];
        r.collect_telemetry = true;
        r.telemetry_interval_s = 0.5;
        r.telemetry_pid = "kvbench";
        struct run_outcome out;
        printf("demo: [2/%d] eviction_replay: warm set A, push it out with set B, replay A\n",
               DEMO_ACTS);
        fflush(stdout);
        all_valid &= bench_run(&r, &cmd_interrupted, &out, err) == RUN_OK && out.valid;
    }
    if (!cmd_interrupted) {
        /* 4 conversations of ~1,400 tokens and a shared system prompt outgrow G1's 5,120 */
        struct run_config r = *base;
        r.scen.scenario = SCEN_MULTI_TURN.name;
        r.scen.kv_mode = KV_MODE_CPU_DISK;
        r.run_id = ids[RUN_MULTI];
        r.scen.warmup = 0;
        r.scen.users = 4;
        r.scen.rounds = 4;
        r.scen.system_prompt_tokens = 256;
        r.scen.history_tokens = 1280;
        r.scen.answer_tokens = 16;
        r.gp.max_tokens = 16;
        r.scen.user_qps = 0;
        struct run_outcome out;
        printf("demo: [3/%d] multi_turn: 4 users x 4 rounds, each resending its conversation\n",
               DEMO_ACTS);
        fflush(stdout);
        all_valid &= bench_run(&r, &cmd_interrupted, &out, err) == RUN_OK && out.valid;
    }
    if (!cmd_interrupted)
        all_valid &= demo_breakeven(base, ids[RUN_BREAKEVEN]);
    return all_valid;
}

/* Act 4: cpu_only vs cpu_disk on the same eviction_replay workload, restarting the engine. */
static bool demo_compare(struct demo *d, const struct run_config *base, const struct ready_opts *ro,
                         const char *cmp_id, long long repeats, struct compare_outcome *cout)
{
    char err[ERR_LEN];
    const char *const modes[] = {names_name(KV_MODE_NAMES, KV_MODE_CPU_ONLY),
                                 names_name(KV_MODE_NAMES, KV_MODE_CPU_DISK)};
    struct compare_config cc;
    memset(&cc, 0, sizeof cc);
    cc.run = *base;
    cc.run.scen.scenario = SCEN_EVICTION_REPLAY.name;
    cc.modes = modes;
    cc.n_modes = 2;
    cc.compare_id = cmp_id;
    cc.restart = restart;
    cc.restart_user = d;
    cc.restart_sets_mode = true; /* kvbench serve restarted in each mode */
    cc.ready = *ro;
    cc.event = event;
    cc.interrupted = &cmd_interrupted;
    cc.repeats = (size_t)repeats;
    printf("demo: [5/%d] compare cpu_only vs cpu_disk (the same eviction_replay workload)\n",
           DEMO_ACTS);
    fflush(stdout);
    if (compare_run(&cc, cout, err) < 0) {
        fprintf(stderr, "kvbench demo: %s\n", err);
        return false;
    }
    return cout->all_valid;
}

/* Act 6: the capacity of the engine as it runs (cpu_disk) at TTFT <= 500 ms for 90 % of the
 * requests: one search (x2 ladder from 4 req/s, then bisection to 25 %), steps of 16 short
 * prompts. The prompts are the same at every step (--prompt-salt none: the cached workload of a
 * chat front page), so that their KV blocks are written to disk once, not once a step (at 64
 * KiB a token the demo's model writes 32 MiB a prompt). Returns whether every step ran. */
static bool demo_sweep(const struct run_config *base, const char *id, struct sweep_outcome *out)
{
    char err[ERR_LEN];
    static const char *const mode[] = {"cpu_disk"};
    struct sweep_config sc;
    memset(&sc, 0, sizeof sc);
    struct run_config *r = &sc.cmp.run;
    *r = *base;
    r->scen.scenario = SCEN_STANDARD.name;
    r->scen.kv_mode = KV_MODE_CPU_DISK;
    r->scen.warmup = 1;
    r->scen.requests = 16;
    r->short_range = (struct token_range){256, 256};
    r->prompt_salt = "none";
    r->slo = (struct slo){0};
    if (slo_parse("ttft_ms=500", &r->slo, err) < 0)
        return false;
    sc.cmp.modes = mode;
    sc.cmp.n_modes = 1;
    sc.cmp.compare_id = id;
    sc.cmp.skip_ready = true; /* the engine is not restarted: it is ready */
    sc.cmp.event = sweep_event;
    sc.cmp.interrupted = &cmd_interrupted;
    sc.target = 0.9;
    sc.precision = 0.25;
    sc.start = 4;
    sc.min_rate = 0.5;
    sc.max_rate = 512;
    sc.repeats = 1;
    sc.min_requests = 16;
    sc.max_steps = 12;
    printf("demo: [6/%d] sweep: the highest load at which 90 %% of requests see TTFT <= 500 ms "
           "(one search)\n",
           DEMO_ACTS);
    fflush(stdout);
    if (sweep_run(&sc, out, err) < 0) {
        fprintf(stderr, "kvbench demo: sweep: %s\n", err);
        return false;
    }
    return out->steps_ok;
}

/* The break-even act's answer ("host at every measured length, disk from 6000 tokens"), into
 * out ("" when it measured none). */
static void break_even_words(const json_t *s, char *out, size_t cap)
{
    struct buf b = BUF_INIT;
    verdict_break_even_words(json_object_get(json_object_get(s, "breakeven"), "break_even"), &b);
    snprintf(out, cap, "%s", buf_failed(&b) ? "" : buf_cstr(&b));
    buf_free(&b);
}

/* The verdicts of every act, one line each. */
static void print_verdicts(json_t *const all[DEMO_RUNS], const struct sweep_outcome *sout)
{
    const json_t *s0 = all[RUN_REUSE], *s1 = all[RUN_EVICT], *s2 = all[RUN_CMP_ONLY],
                 *s3 = all[RUN_CMP_DISK], *s4 = all[RUN_MULTI], *s5 = all[RUN_BREAKEVEN];
    printf("\n== verdicts\n");
    printf("reuse_verify (cpu_disk):     %s; inputs %s\n",
           s0 ? sig_of(s0, "reuse_verify_signal_kvbm") : "-",
           s0 ? json_get_str(json_object_get(json_object_get(s0, "request_identity"),
                                             "reuse_verify_identity"),
                             "verdict", "-")
              : "-");
    printf("eviction_replay (cpu_disk):  %s (KV metrics); %s (block device)\n",
           s1 ? sig_of(s1, "eviction_replay_signal_kvbm") : "-",
           s1 ? sig_of(s1, "eviction_replay_signal_io") : "-");
    const json_t *mt = json_object_get(s4, "multi_turn");
    printf("multi_turn (cpu_disk):       %s; hit rate by round",
           mt ? json_get_str(json_object_get(mt, "verdict"), "signal", "-") : "-");
    size_t ri;
    const json_t *rd;
    json_array_foreach(json_object_get(mt, "rounds"), ri, rd)
    {
        double h;
        if (json_get_num_strict(rd, "hit_rate", &h))
            printf(" %.2f", h);
        else
            printf(" -");
    }
    printf("\n");
    const json_t *bk = json_object_get(s5, "breakeven");
    char words[300];
    break_even_words(s5, words, sizeof words);
    printf("breakeven (cpu_disk):        %s; prefill %.1f µs/token; %s\n",
           bk ? json_get_str(json_object_get(bk, "verdict"), "signal", "-") : "-",
           json_get_num(bk, "prefill_us_per_token", NAN), words[0] ? words : "no break-even");
    printf("compare, cpu_only:           %s\n",
           s2 ? sig_of(s2, "eviction_replay_signal_kvbm") : "-");
    printf("compare, cpu_disk:           %s\n",
           s3 ? sig_of(s3, "eviction_replay_signal_kvbm") : "-");
    printf("sweep:                       %s\n", sout->decision[0] ? sout->decision : "-");
}

/* The summary table, the comparison, where the reports are, and how it ended. */
static void print_outcome(const struct demo *d, const struct demo_opts *o, char ids[DEMO_RUNS][192],
                          json_t *const all[DEMO_RUNS], const struct compare_outcome *cout,
                          const struct sweep_outcome *sout, bool all_valid, uint64_t t0)
{
    char err[ERR_LEN];
    json_t *rows = json_array();
    bool oom = !rows;
    for (int i = 0; rows && i < DEMO_RUNS; i++)
        if (all[i])
            oom |= json_array_append_new(rows, sumtable_row(all[i])) < 0; /* a NULL row too */
    printf("\n== summary\n");
    struct buf b = BUF_INIT;
    if (!oom)
        sumtable_render(rows, &b);
    if (oom || buf_failed(&b))
        printf("(out of memory building the table)\n");
    else
        fputs(buf_cstr(&b), stdout);
    buf_free(&b);
    if (cout->dir[0]) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/comparison.md", cout->dir);
        struct buf md = BUF_INIT;
        if (fs_read_file(path, &md, 1 << 20, err) == 0)
            printf("\n== comparison (%s)\n%s", path, buf_cstr(&md));
        buf_free(&md);
    }
    printf("\n== reports\n");
    for (int i = 0; i < DEMO_RUNS; i++)
        printf("%s/%s/report.md (and report.html)\n", o->results_root, ids[i]);
    if (cout->dir[0])
        printf("%s/comparison.md\n", cout->dir);
    if (sout->dir[0])
        printf("%s/sweep.md\n", sout->dir);
    printf("engine log: %s\n", d->log);
    printf("\ndemo %s in %.0f s\n", all_valid && !cmd_interrupted ? "finished" : "FAILED",
           (double)(clock_now_ns() - t0) / 1e9);
    if (cout->decision[0])
        printf("\n== does offload pay here?\n%s\n", cout->decision);
    char words[300];
    break_even_words(all[RUN_BREAKEVEN], words, sizeof words);
    if (words[0])
        printf("Break-even (cpu_disk): onboarding beats recomputing: %s\n", words);
    if (sout->decision[0])
        printf("Capacity: %s\n", sout->decision);
    /* last, where a reader looks: the page that shows it all, the disk read-back in replay_A */
    if (cout->dir[0])
        printf("open in a browser: %s/report.html\n", cout->dir);
    json_decref(rows);
}

int cmd_demo(int argc, char **argv)
{
    struct demo_opts o = {.level = LOG_WARNING, .repeats = 3};
    struct opt opts[sizeof DEMO_ROWS / sizeof DEMO_ROWS[0]];
    size_t n = 0;
    opts_bind(opts, &n, sizeof opts / sizeof opts[0], DEMO_ROWS, &o, NULL);
    int rc =
        cmd_parse("demo", "kvbench demo [options]",
                  "The whole story on the embedded engine, no GPU needed: start kvbench serve\n"
                  "(llama-3.1-8b-fp8 on the gb10 model), run reuse_verify, eviction_replay, a\n"
                  "short multi_turn, a short breakeven, a cpu_only vs cpu_disk compare\n"
                  "(restarting the engine between modes) and one short sweep, print\n"
                  "the verdicts, a summary table and the report paths, then stop the engine\n"
                  "and remove its cache. About 95 s on two cores; about 4.2 GiB written.",
                  opts, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    cmd_set_log_level(o.level);
    cmd_catch_signals();

    char ts[17], id[128], err[ERR_LEN];
    clock_compact_utc(clock_wall_ns(), ts);
    if (!o.demo_id) {
        snprintf(id, sizeof id, "demo_%s", ts);
        o.demo_id = id;
    }
    struct demo d;
    memset(&d, 0, sizeof d);
    d.speedup = o.speedup;
    d.g1 = names_name(DEMO_G1_NAMES, o.g1);
    rc = demo_prepare(&d, &o, err);
    if (rc >= 0)
        return rc;
    uint64_t t0 = clock_now_ns();
    printf("demo: starting kvbench serve (llama-3.1-8b-fp8 on gb10, cpu_disk; G1 160, G2 128, "
           "G3 1024 blocks of 2 MiB%s)\n",
           o.g1 ? "; G1 in GPU memory, real copies" : "");
    fflush(stdout);
    if (engine_start(&d, names_name(KV_MODE_NAMES, KV_MODE_CPU_DISK), err) < 0) {
        fprintf(stderr, "kvbench demo: %s\n", err);
        engine_stop(&d);
        fs_remove_tree(d.cache, NULL);
        return 1;
    }
    struct ready_opts ro = {.base_url = d.base_url,
                            .timeout_s = 60,
                            .interval_s = 0.2,
                            .consecutive = 2,
                            .require_endpoints = true,
                            .stop = &cmd_interrupted};
    bool ok = ready_wait(&ro, NULL, NULL) == 0;
    printf("demo: engine %s at %s (KV metrics %s)\n", ok ? "ready" : "NOT ready", d.base_url,
           d.metrics_url);
    fflush(stdout);

    struct run_flags f;
    struct opt ropts[RUN_FLAGS_MAX + 1];
    struct run_config base;
    rc = demo_workload(&d, &o, &f, ropts, &base, err);
    char ids[DEMO_RUNS][192];
    snprintf(ids[RUN_REUSE], sizeof ids[0], "%s_reuse_verify", o.demo_id);
    snprintf(ids[RUN_EVICT], sizeof ids[0], "%s_eviction_replay", o.demo_id);
    /* the compare's runs (with --repeats, its first round) */
    snprintf(ids[RUN_CMP_ONLY], sizeof ids[0], "%s_compare_cpu_only%s", o.demo_id,
             o.repeats > 1 ? "_r1" : "");
    snprintf(ids[RUN_CMP_DISK], sizeof ids[0], "%s_compare_cpu_disk%s", o.demo_id,
             o.repeats > 1 ? "_r1" : "");
    snprintf(ids[RUN_MULTI], sizeof ids[0], "%s_multi_turn", o.demo_id);
    snprintf(ids[RUN_BREAKEVEN], sizeof ids[0], "%s_breakeven", o.demo_id);
    bool all_valid = demo_runs(&base, ids, ok && rc == 0);
    char cmp_id[192];
    snprintf(cmp_id, sizeof cmp_id, "%s_compare", o.demo_id);
    struct compare_outcome cout = {0};
    if (!cmd_interrupted)
        all_valid &= demo_compare(&d, &base, &ro, cmp_id, o.repeats, &cout);
    char sweep_id[192];
    snprintf(sweep_id, sizeof sweep_id, "%s_sweep", o.demo_id);
    struct sweep_outcome sout = {0};
    if (!cmd_interrupted)
        all_valid &= demo_sweep(&base, sweep_id, &sout);
    engine_stop(&d);
    unlink(d.ready_file);
    if (!o.keep)
        fs_remove_tree(d.cache, NULL);

    json_t *all[DEMO_RUNS];
    for (int i = 0; i < DEMO_RUNS; i++)
        all[i] = load_summary(o.results_root, ids[i]);
    print_verdicts(all, &sout);
    print_outcome(&d, &o, ids, all, &cout, &sout, all_valid, t0);
    for (int i = 0; i < DEMO_RUNS; i++)
        json_decref(all[i]);
    run_flags_release(&base);
    opts_free(ropts);
    return all_valid && !cmd_interrupted ? 0 : 1;
}
