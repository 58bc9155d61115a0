/*
 * compare.c - `kvbench compare`: the same workload (every workload flag of `kvbench run`, from
 * runflags.c) once per KV mode, the server restarted between modes by the user's command, the
 * modes interleaved over --repeats; ends in one comparison directory, its table and its verdict.
 */
#include "analysis/compare.h"
#include "report/sumtable.h"
#include "cmd/cmd.h"
#include "cmd/runflags.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"
#include "util/proc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ compare */

struct restart_ctx {
    const char *cmd;
    double timeout_s;
};

static int user_restart(const char *mode, void *user, char *err)
{
    struct restart_ctx *r = user;
    struct buf cmd = BUF_INIT;
    for (const char *p = r->cmd; *p;) {
        const char *hit = strstr(p, "{mode}");
        if (!hit) {
            buf_append_str(&cmd, p);
            break;
        }
        buf_append(&cmd, p, (size_t)(hit - p));
        buf_append_str(&cmd, mode);
        p = hit + 6;
    }
    setenv("BENCH_KV_MODE", mode, 1);
    struct proc_result res;
    int rc = proc_run_shell(buf_cstr(&cmd), r->timeout_s, 1 << 20, PROC_MERGE_STDERR, &res, err);
    if (rc == 0) {
        if (res.out.len)
            fputs(buf_cstr(&res.out), stdout);
        if (res.timed_out)
            rc = err_set(err, "--restart-cmd timed out after %.0f s", r->timeout_s);
        else if (!res.exited || res.exit_code != 0)
            rc = err_set(err, "--restart-cmd exited with status %d", res.exit_code);
        proc_result_free(&res);
    }
    buf_free(&cmd);
    return rc;
}

static void compare_event(const char *ev, const char *mode, const char *detail, void *user)
{
    (void)user;
    if (strcmp(ev, "restart") == 0)
        printf("compare: [%s] restarting the server\n", mode);
    else if (strcmp(ev, "ready") == 0)
        printf("compare: [%s] waiting until the server is ready\n", mode);
    else if (strcmp(ev, "run") == 0)
        printf("compare: [%s] run %s\n", mode, detail);
    else if (strcmp(ev, "done") == 0)
        printf("compare: [%s] %s\n", mode, detail);
    else
        printf("compare: [%s] FAILED: %s\n", mode, detail ? detail : "?");
    fflush(stdout);
}

/* The phase-by-phase and whole-run sections of comparison.md, then the one verdict line and the
 * --expect-gain results. Returns false when a gain was expected and not shown. */
static bool print_decision(const char *dir)
{
    char path[PATH_MAX + 32], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/comparison.md", dir);
    struct buf md = BUF_INIT;
    if (fs_read_file(path, &md, 1 << 20, err) == 0) {
        const char *sec = strstr(buf_cstr(&md), "\n## Phase by phase");
        if (sec)
            printf("%s\n", sec);
    }
    buf_free(&md);
    snprintf(path, sizeof path, "%s/comparison.json", dir);
    json_t *c = json_load_file(path, 0, NULL);
    bool shown = true;
    printf("verdict: %s\n",
           json_get_str(json_object_get(c, "decision"), "line", "(no comparison written)"));
    size_t i;
    const json_t *g;
    json_array_foreach(json_object_get(c, "expect_gain"), i, g)
    {
        bool ok = json_get_bool(g, "shown", false);
        shown &= ok;
        printf("expect-gain %s:%s:%g: %s: %s\n", json_get_str(g, "phase", "?"),
               json_get_str(g, "metric", "?"), json_get_num(g, "wanted", 0),
               ok ? "shown" : "NOT SHOWN", json_get_str(g, "why", ""));
    }
    json_decref(c);
    return shown;
}

int cmd_compare(int argc, char **argv)
{
    struct run_flags f;
    memset(&f, 0, sizeof f);
    struct opt_list modes = {0};
    const char *restart_cmd = NULL, *compare_id = NULL;
    double restart_timeout = 0, ready_timeout = 0, ready_interval = 0;
    long long ready_consecutive = 0, repeats = 1;
    struct opt_list expect_specs = {0};
    bool skip_ready = false, require_endpoints = false;
    struct opt opts[RUN_FLAGS_MAX + 16];
    memset(opts, 0, sizeof opts);
    size_t n = 0;
    const struct opt own[] = {
        {.name = "modes",
         .type = OPT_LIST,
         .dest = &modes,
         .def = "cpu_only cpu_disk",
         .metavar = "MODES",
         .help = "kv modes to compare, in order (space or comma separated)"},
        {.name = "restart-cmd",
         .type = OPT_STR,
         .dest = &restart_cmd,
         .metavar = "SHELL",
         .help = "run before each mode: {mode} is substituted and BENCH_KV_MODE exported"},
        {.name = "restart-timeout-s",
         .type = OPT_DURATION,
         .dest = &restart_timeout,
         .def = "600",
         .help = "limit for --restart-cmd"},
        {.name = "skip-ready",
         .type = OPT_BOOL,
         .dest = &skip_ready,
         .env = "BENCH_COMPARE_SKIP_READY",
         .help = "do not wait for readiness between modes"},
        {.name = "ready-timeout-s",
         .type = OPT_DURATION,
         .dest = &ready_timeout,
         .def = "300",
         .help = "readiness wait per mode"},
        {.name = "ready-interval-s",
         .type = OPT_DURATION,
         .dest = &ready_interval,
         .def = "5",
         .min = 0.01,
         .max = 3600,
         .help = "readiness poll interval"},
        {.name = "ready-consecutive",
         .type = OPT_INT,
         .dest = &ready_consecutive,
         .def = "2",
         .min = 1,
         .max = 1000,
         .help = "good polls in a row"},
        {.name = "require-endpoints",
         .type = OPT_BOOL,
         .dest = &require_endpoints,
         .env = "BENCH_COMPARE_READY_REQUIRE_ENDPOINTS",
         .help = "readiness also needs /health endpoints"},
        {.name = "compare-id",
         .type = OPT_STR,
         .dest = &compare_id,
         .metavar = "ID",
         .help = "comparison directory name (default compare_<UTC timestamp>)"},
        {.name = "repeats",
         .type = OPT_INT,
         .dest = &repeats,
         .def = "3",
         .min = 1,
         .max = 100,
         .help = "runs per mode, interleaved (A B A B ...); from 3 each phase and metric gets "
                 "a Welch 95 % interval and a faster / slower / no difference verdict, and the "
                 "comparison one verdict (fewer: insufficient repeats)"},
        {.name = "expect-gain",
         .type = OPT_LIST,
         .dest = &expect_specs,
         .metavar = "PHASE:METRIC:RATIO",
         .help = "exit 1 unless the second mode shows this gain over the first (e.g. "
                 "replay_A:ttft_p50:1.5; with enough repeats its interval must exclude no gain): "
                 "a CI gate"},
    };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        opts[n++] = own[i];
    const void *const skip[] = {&f.kv_mode, &f.run_id, NULL};
    run_flags_add(&f, opts, &n, sizeof opts / sizeof opts[0] - 1, skip);
    f.kv_mode = KV_MODE_CPU_DISK;
    int rc = cmd_parse("compare", "kvbench compare [options]",
                       "The same workload once per kv mode (default cpu_only, then cpu_disk):\n"
                       "before each mode --restart-cmd restarts the server in that mode (how is\n"
                       "yours: {mode} is substituted, BENCH_KV_MODE exported), readiness is\n"
                       "awaited, then `kvbench run` runs with --kv-mode set. Runs go to\n"
                       "<results-root>/<compare-id>_<mode>/ (with --repeats N,\n"
                       "<compare-id>_<mode>_r<k>/, the modes interleaved); the comparison to\n"
                       "<results-root>/<compare-id>/comparison.json, comparison.md and\n"
                       "report.html. Takes every workload flag of `kvbench run`. Exit 0 when\n"
                       "every run is valid.",
                       opts, argc, argv, NULL);
    if (rc >= 0) {
        opts_free(opts);
        return rc;
    }
    cmd_set_log_level(f.log_level);
    char err[ERR_LEN];
    struct compare_config cc;
    memset(&cc, 0, sizeof cc);
    if (run_flags_config(&f, opts, &cc.run, err) < 0) {
        fprintf(stderr, "kvbench compare: %s\n", err);
        opts_free(opts);
        return EXIT_USAGE;
    }
    char **mv;
    size_t nm;
    if (cmd_split_list(&modes, &mv, &nm) < 0) {
        fprintf(stderr, "kvbench compare: --modes: out of memory\n");
        run_flags_release(&cc.run);
        opts_free(opts);
        return 1;
    }
    for (size_t i = 0; i < nm; i++) {
        if (names_value(KV_MODE_NAMES, mv[i]) < 0) {
            char expected[64];
            fprintf(stderr, "kvbench compare: --modes: expected %s, got '%s'\n",
                    enums_sentence(KV_MODE_NAMES, expected, sizeof expected), mv[i]);
            cmd_free_list(mv, nm);
            run_flags_release(&cc.run);
            opts_free(opts);
            return EXIT_USAGE;
        }
    }
    if (nm == 0) {
        fprintf(stderr, "kvbench compare: --modes: expected at least one mode\n");
        cmd_free_list(mv, nm);
        run_flags_release(&cc.run);
        opts_free(opts);
        return EXIT_USAGE;
    }
    char default_id[64];
    if (!compare_id) {
        char ts[17];
        clock_compact_utc(clock_wall_ns(), ts);
        snprintf(default_id, sizeof default_id, "compare_%s", ts);
        compare_id = default_id;
    }
    if (strchr(compare_id, '/') || strstr(compare_id, "..") || !*compare_id) {
        fprintf(stderr, "kvbench compare: --compare-id must not be empty or contain '/' or '..'\n");
        cmd_free_list(mv, nm);
        run_flags_release(&cc.run);
        opts_free(opts);
        return EXIT_USAGE;
    }
    cmd_catch_signals();
    struct restart_ctx rctx = {restart_cmd, restart_timeout};
    cc.modes = (const char *const *)mv;
    cc.n_modes = nm;
    cc.compare_id = compare_id;
    cc.restart = restart_cmd ? user_restart : NULL;
    cc.restart_user = &rctx;
    cc.restart_sets_mode =
        restart_cmd && (strstr(restart_cmd, "{mode}") || strstr(restart_cmd, "BENCH_KV_MODE"));
    cc.skip_ready = skip_ready;
    cc.ready = (struct ready_opts){.base_url = cc.run.base_url,
                                   .api_key = cc.run.api_key,
                                   .timeout_s = ready_timeout,
                                   .interval_s = ready_interval,
                                   .consecutive = (int)ready_consecutive,
                                   .require_endpoints = require_endpoints,
                                   .stop = &cmd_interrupted};
    cc.event = compare_event;
    cc.interrupted = &cmd_interrupted;
    cc.repeats = (size_t)repeats;
    struct expect_gain *gains = calloc(expect_specs.n ? expect_specs.n : 1, sizeof *gains);
    for (size_t k = 0; gains && k < expect_specs.n; k++)
        if (verdict_parse_expect_gain(expect_specs.items[k], &gains[k], err) < 0) {
            fprintf(stderr, "kvbench compare: %s\n", err);
            free(gains);
            cmd_free_list(mv, nm);
            run_flags_release(&cc.run);
            opts_free(opts);
            return EXIT_USAGE;
        }
    if (expect_specs.n && nm < 2) {
        fprintf(stderr, "kvbench compare: --expect-gain needs two modes\n");
        free(gains);
        cmd_free_list(mv, nm);
        run_flags_release(&cc.run);
        opts_free(opts);
        return EXIT_USAGE;
    }
    cc.expect = gains;
    cc.n_expect = gains ? expect_specs.n : 0;
    struct compare_outcome out;
    rc = compare_run(&cc, &out, err);
    free(gains);
    if (rc < 0) {
        fprintf(stderr, "kvbench compare: %s\n", err);
        rc = out.dir[0] && strstr(err, "already exists") ? EXIT_USAGE : 1;
    } else {
        size_t nr = nm * (size_t)repeats;
        char **ids = malloc(nr * sizeof *ids);
        for (size_t k = 0; ids && k < nr; k++) {
            char label[80];
            compare_label((const char *const *)mv, nm, k % nm, label, sizeof label);
            ids[k] = malloc(256);
            if (!ids[k])
                continue;
            if (repeats > 1)
                snprintf(ids[k], 256, "%s_%s_r%zu", compare_id, label, k / nm + 1);
            else
                snprintf(ids[k], 256, "%s_%s", compare_id, label);
        }
        if (ids) {
            cmd_print_runs_table(cc.run.results_root, ids, nr);
            cmd_free_list(ids, nr);
        }
        bool shown = print_decision(out.dir);
        printf("comparison: %s/comparison.md (and comparison.json, report.html)\n", out.dir);
        rc = out.all_valid && shown ? 0 : 1;
    }
    cmd_free_list(mv, nm);
    run_flags_release(&cc.run);
    opts_free(opts);
    return rc;
}
