/*
 * compare.c - `kvbench compare`: the same workload (every workload flag of `kvbench run`, from
 * runflags.c) once per KV mode, the server restarted between modes by the user's command, the
 * modes interleaved over --repeats; ends in one comparison directory, its table and its verdict.
 */
#include "run/comparison.h"
#include "verdict/compare.h"
#include "report/sumtable.h"
#include "cmd/cmd.h"
#include "cmd/restart.h"
#include "cmd/runflags.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ compare */

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

/* What `kvbench compare` reads: its own flags and every workload flag of `kvbench run`. */
struct compare_opts {
    struct run_flags f;
    struct opt_list modes, expect_specs;
    struct restart_flags rf; /* --restart-cmd and readiness (cmd/restart.h) */
    const char *compare_id;
    long long repeats;
};

#define CO struct compare_opts

/* compare's own flags; the run flags follow them in --help. */
static const struct opt COMPARE_ROWS[] = {
    {.name = "modes",
     OPT_AT_LIST(CO, modes),
     .def = "cpu_only cpu_disk",
     .metavar = "MODES",
     .help = "kv modes to compare, in order (space or comma separated)"},
    {.name = "compare-id",
     OPT_AT_STR(CO, compare_id),
     .metavar = "ID",
     .help = "comparison directory name (default compare_<UTC timestamp>)"},
    {.name = "repeats",
     OPT_AT_INT(CO, repeats),
     .def = "3",
     .min = 1,
     .max = 100,
     .help = "runs per mode, interleaved (A B A B ...); from 3 each phase and metric gets "
             "a Welch 95 % interval and a faster / slower / no difference verdict, and the "
             "comparison one verdict (fewer: insufficient repeats)"},
    {.name = "expect-gain",
     OPT_AT_LIST(CO, expect_specs),
     .metavar = "PHASE:METRIC:RATIO",
     .help = "exit 1 unless the second mode shows this gain over the first (e.g. "
             "replay_A:ttft_p50:1.5; with enough repeats its interval must exclude no gain): "
             "a CI gate"},
    {0},
};

static const char DESCRIPTION[] =
    "The same workload once per kv mode (default cpu_only, then cpu_disk):\n"
    "before each mode --restart-cmd restarts the server in that mode (how is\n"
    "yours: {mode} is substituted, BENCH_KV_MODE exported), readiness is\n"
    "awaited, then `kvbench run` runs with --kv-mode set. Runs go to\n"
    "<results-root>/<compare-id>_<mode>/ (with --repeats N,\n"
    "<compare-id>_<mode>_r<k>/, the modes interleaved); the comparison to\n"
    "<results-root>/<compare-id>/comparison.json, comparison.md and\n"
    "report.html. Takes every workload flag of `kvbench run`. Exit 0 when\n"
    "every run is valid.";

/* --modes split and checked into cc->modes (*mv, freed by the caller). Returns -1 to go on, or
 * the exit code after printing the error. */
static int modes_config(const struct compare_opts *co, char ***mv, size_t *nm)
{
    if (cmd_split_list(&co->modes, mv, nm) < 0) {
        fprintf(stderr, "kvbench compare: --modes: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < *nm; i++) {
        if (names_value(KV_MODE_NAMES, (*mv)[i]) < 0) {
            char expected[64];
            fprintf(stderr, "kvbench compare: --modes: expected %s, got '%s'\n",
                    enums_sentence(KV_MODE_NAMES, expected, sizeof expected), (*mv)[i]);
            return EXIT_USAGE;
        }
    }
    if (*nm == 0) {
        fprintf(stderr, "kvbench compare: --modes: expected at least one mode\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* The comparison's id (default compare_<UTC timestamp>, in id_buf), checked. */
static int compare_id_config(struct compare_opts *co, char *id_buf, size_t len)
{
    if (!co->compare_id) {
        char ts[17];
        clock_compact_utc(clock_wall_ns(), ts);
        snprintf(id_buf, len, "compare_%s", ts);
        co->compare_id = id_buf;
    }
    if (strchr(co->compare_id, '/') || strstr(co->compare_id, "..") || !*co->compare_id) {
        fprintf(stderr, "kvbench compare: --compare-id must not be empty or contain '/' or '..'\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* --expect-gain parsed into *gains (freed by the caller). Returns -1 to go on, or the exit
 * code after printing the error. */
static int gains_config(const struct compare_opts *co, size_t nm, struct expect_gain **gains)
{
    char err[ERR_LEN];
    *gains = calloc(co->expect_specs.n ? co->expect_specs.n : 1, sizeof **gains);
    if (!*gains) {
        fprintf(stderr, "kvbench compare: --expect-gain: out of memory\n");
        return 1;
    }
    for (size_t k = 0; k < co->expect_specs.n; k++)
        if (verdict_parse_expect_gain(co->expect_specs.items[k], &(*gains)[k], err) < 0) {
            fprintf(stderr, "kvbench compare: %s\n", err);
            return EXIT_USAGE;
        }
    if (co->expect_specs.n && nm < 2) {
        fprintf(stderr, "kvbench compare: --expect-gain needs two modes\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* How the comparison restarts, waits for and reports each mode. */
static void compare_setup(const struct compare_opts *co, struct compare_config *cc)
{
    cc->compare_id = co->compare_id;
    restart_setup(&co->rf, cc, compare_event);
    cc->repeats = (size_t)co->repeats;
}

/* The table over every run of the comparison, then its decision. Returns the exit code. */
static int print_outcome(const struct compare_opts *co, const struct compare_config *cc,
                         const struct compare_outcome *out)
{
    size_t nm = cc->n_modes, nr = nm * (size_t)co->repeats;
    char **ids = calloc(nr, sizeof *ids);
    bool have_ids = ids != NULL;
    for (size_t k = 0; have_ids && k < nr; k++) {
        char label[80];
        compare_label(cc->modes, nm, k % nm, label, sizeof label);
        if (!(ids[k] = malloc(256))) {
            have_ids = false;
            break;
        }
        if (co->repeats > 1)
            snprintf(ids[k], 256, "%s_%s_r%zu", co->compare_id, label, k / nm + 1);
        else
            snprintf(ids[k], 256, "%s_%s", co->compare_id, label);
    }
    if (have_ids)
        cmd_print_runs_table(cc->run.results_root, ids, nr);
    else
        fprintf(stderr, "kvbench compare: no summary table: out of memory\n");
    cmd_free_list(ids, nr);
    bool shown = print_decision(out->dir);
    printf("comparison: %s/comparison.md (and comparison.json, report.html)\n", out->dir);
    return out->all_valid && shown ? 0 : 1;
}

int cmd_compare(int argc, char **argv)
{
    struct compare_opts co;
    memset(&co, 0, sizeof co);
    co.repeats = 1;
    struct opt opts[RUN_FLAGS_MAX + 16];
    size_t n = 0;
    opts_bind(opts, &n, sizeof opts / sizeof opts[0] - 1, COMPARE_ROWS, &co, NULL);
    opts_bind(opts, &n, sizeof opts / sizeof opts[0] - 1, RESTART_ROWS, &co.rf, NULL);
    const void *const skip[] = {&co.f.kv_mode, &co.f.run_id, NULL};
    run_flags_add(&co.f, opts, &n, sizeof opts / sizeof opts[0] - 1, skip);
    co.f.kv_mode = KV_MODE_CPU_DISK;
    int rc = cmd_parse("compare", "kvbench compare [options]", DESCRIPTION, opts, argc, argv, NULL);
    if (rc >= 0) {
        opts_free(opts);
        return rc;
    }
    cmd_set_log_level(co.f.log_level);
    char err[ERR_LEN];
    struct compare_config cc;
    memset(&cc, 0, sizeof cc);
    if (run_flags_config(&co.f, opts, &cc.run, err) < 0) {
        fprintf(stderr, "kvbench compare: %s\n", err);
        opts_free(opts);
        return EXIT_USAGE;
    }
    char **mv = NULL, default_id[64];
    size_t nm = 0;
    struct expect_gain *gains = NULL;
    rc = modes_config(&co, &mv, &nm);
    if (rc < 0)
        rc = compare_id_config(&co, default_id, sizeof default_id);
    if (rc >= 0)
        goto done;
    cmd_catch_signals();
    cc.modes = (const char *const *)mv;
    cc.n_modes = nm;
    compare_setup(&co, &cc);
    rc = gains_config(&co, nm, &gains);
    if (rc >= 0)
        goto done;
    cc.expect = gains;
    cc.n_expect = co.expect_specs.n;
    struct compare_outcome out;
    if (compare_run(&cc, &out, err) < 0) {
        fprintf(stderr, "kvbench compare: %s\n", err);
        rc = out.dir[0] && strstr(err, "already exists") ? EXIT_USAGE : 1;
    } else {
        rc = print_outcome(&co, &cc, &out);
    }
done:
    free(gains);
    cmd_free_list(mv, nm);
    run_flags_release(&cc.run);
    opts_free(opts);
    return rc;
}
