/*
 * matrix.c - `kvbench matrix`: the runbook's matrix — short and long sweeps over
 * --concurrencies and one eviction_replay run — with the workload flags of `kvbench run`
 * (runflags.c); ends with one summary table over the runs.
 */
#include "verdict/compare.h"
#include "report/sumtable.h"
#include "cmd/cmd.h"
#include "scenario/scenario.h"
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

/* ------------------------------------------------------------ matrix */

/* What `kvbench matrix` reads: its own flags and the workload flags of `kvbench run`. */
struct matrix_opts {
    struct run_flags f;
    struct opt_list concs;
    long long short_req, short_warm, long_req, long_warm, evict_warm;
    bool skip_short, skip_long, skip_eviction;
    const char *stamp;
};

#define MO struct matrix_opts

/* matrix's own flags; the run flags follow them in --help. */
static const struct opt MATRIX_ROWS[] = {
    {.name = "concurrencies",
     OPT_AT_LIST(MO, concs),
     .def = "1 4 8",
     .env = "BENCH_CONCURRENCIES",
     .metavar = "LIST",
     .help = "concurrencies of the short and long sweeps"},
    {.name = "short-requests",
     OPT_AT_INT(MO, short_req),
     .def = "64",
     .min = 1,
     .max = 10000000,
     .help = "requests per short run"},
    {.name = "short-warmup",
     OPT_AT_INT(MO, short_warm),
     .def = "8",
     .min = 0,
     .max = 10000000,
     .help = "warmup per short run"},
    {.name = "long-requests",
     OPT_AT_INT(MO, long_req),
     .def = "24",
     .min = 1,
     .max = 10000000,
     .help = "requests per long run"},
    {.name = "long-warmup",
     OPT_AT_INT(MO, long_warm),
     .def = "4",
     .min = 0,
     .max = 10000000,
     .help = "warmup per long run"},
    {.name = "eviction-warmup",
     OPT_AT_INT(MO, evict_warm),
     .def = "4",
     .min = 0,
     .max = 10000000,
     .help = "warmup of the eviction/replay run"},
    {.name = "skip-short", OPT_AT_BOOL(MO, skip_short), .help = "no short sweep"},
    {.name = "skip-long", OPT_AT_BOOL(MO, skip_long), .help = "no long sweep"},
    {.name = "skip-eviction", OPT_AT_BOOL(MO, skip_eviction), .help = "no eviction/replay run"},
    {.name = "stamp",
     OPT_AT_STR(MO, stamp),
     .metavar = "TEXT",
     .help = "suffix of the run ids (default: UTC timestamp)"},
    {0},
};

static const char DESCRIPTION[] =
    "The runbook's matrix: short runs (64 requests, 8 warmup) and long runs\n"
    "(--long-range 6000:7600, 24 requests, 4 warmup) at each of\n"
    "--concurrencies, then one eviction_replay run (A 24 at concurrency 4,\n"
    "B 48 at concurrency 8). Run ids: short_c<N>_<stamp>, long_c<N>_<stamp>,\n"
    "eviction_replay_<stamp>. Ends with a summary table; exit 0 when every\n"
    "run is valid.";

#define MATRIX_MAX_CONC 64
#define MATRIX_MAX_RUNS 160

/* --concurrencies into cvals. Returns -1 to go on, or the exit code after printing the error. */
static int concurrencies(const struct matrix_opts *mo, long long *cvals, size_t *ncv)
{
    char **cv;
    size_t nc;
    if (cmd_split_list(&mo->concs, &cv, &nc) < 0) {
        fprintf(stderr, "kvbench matrix: --concurrencies: out of memory\n");
        return 1;
    }
    *ncv = 0;
    for (size_t i = 0; i < nc; i++) {
        char *end;
        long long v = strtoll(cv[i], &end, 10);
        if (*end || v < 1 || v > 100000 || *ncv == MATRIX_MAX_CONC) {
            fprintf(stderr,
                    "kvbench matrix: --concurrencies: expected integers from 1 to 100000, "
                    "got '%s'\n",
                    cv[i]);
            cmd_free_list(cv, nc);
            return EXIT_USAGE;
        }
        cvals[(*ncv)++] = v;
    }
    cmd_free_list(cv, nc);
    return -1;
}

/* The runs of the matrix so far: their ids (for the table) and whether all were valid. */
struct matrix_runs {
    char *ids[MATRIX_MAX_RUNS];
    size_t n;
    bool all_valid;
    bool stop; /* a run refused as a usage error: no more of its kind */
};

enum matrix_kind { MATRIX_SHORT, MATRIX_LONG, MATRIX_EVICTION };

/* Run one of the matrix: kind at concurrency conc (short and long sweeps). */
static void run_one(const struct matrix_opts *mo, const struct run_config *base,
                    enum matrix_kind kind, long long conc, struct matrix_runs *runs)
{
    struct run_config rc_i = *base;
    char id[256], err[ERR_LEN];
    if (kind == MATRIX_SHORT) {
        rc_i.scen.scenario = SCEN_STANDARD.name;
        rc_i.scen.prompt_set = names_name(PROMPT_SET_NAMES, PROMPT_SET_SHORT);
        rc_i.scen.requests = mo->short_req;
        rc_i.scen.warmup = mo->short_warm;
        rc_i.scen.concurrency = conc;
        snprintf(id, sizeof id, "short_c%lld_%s", conc, mo->stamp);
    } else if (kind == MATRIX_LONG) {
        rc_i.scen.scenario = SCEN_STANDARD.name;
        rc_i.scen.prompt_set = names_name(PROMPT_SET_NAMES, PROMPT_SET_LONG);
        rc_i.scen.requests = mo->long_req;
        rc_i.scen.warmup = mo->long_warm;
        rc_i.scen.concurrency = conc;
        snprintf(id, sizeof id, "long_c%lld_%s", conc, mo->stamp);
    } else {
        rc_i.scen.scenario = SCEN_EVICTION_REPLAY.name;
        rc_i.scen.warmup = mo->evict_warm;
        rc_i.scen.concurrency = 1;
        snprintf(id, sizeof id, "eviction_replay_%s", mo->stamp);
    }
    rc_i.run_id = id;
    printf("matrix: run %s\n", id);
    fflush(stdout);
    struct run_outcome out;
    int r = bench_run(&rc_i, &cmd_interrupted, &out, err);
    if (r != RUN_OK) {
        fprintf(stderr, "kvbench matrix: %s: %s\n", id, err);
        runs->all_valid = false;
        runs->stop = r == RUN_USAGE;
        return;
    }
    printf("matrix: %s %s\n", id, out.valid ? "valid" : out.invalid_reason);
    runs->all_valid &= out.valid;
    if (runs->n < MATRIX_MAX_RUNS && !(runs->ids[runs->n++] = strdup(id))) {
        fprintf(stderr, "kvbench matrix: %s: out of memory\n", id);
        runs->n--;
    }
}

int cmd_matrix(int argc, char **argv)
{
    struct matrix_opts mo;
    memset(&mo, 0, sizeof mo);
    struct opt opts[RUN_FLAGS_MAX + 16];
    size_t n = 0;
    opts_bind(opts, &n, sizeof opts / sizeof opts[0] - 1, MATRIX_ROWS, &mo, NULL);
    struct run_flags *f = &mo.f;
    const void *const skip[] = {&f->cfg.scen.scenario,
                                &f->prompt_set,
                                &f->cfg.scen.requests,
                                &f->cfg.scen.warmup,
                                &f->cfg.scen.concurrency,
                                &f->run_id,
                                NULL};
    run_flags_add(f, opts, &n, sizeof opts / sizeof opts[0] - 1, skip);
    /* the runbook's matrix: a long range capped under max_num_tokens, and its eviction sizes */
    opts_set_default(opts, &f->long_range, "6000:7600");
    opts_set_default(opts, &f->cfg.scen.evict_a, "24");
    opts_set_default(opts, &f->cfg.scen.evict_b, "48");
    int rc = cmd_parse("matrix", "kvbench matrix [options]", DESCRIPTION, opts, argc, argv, NULL);
    if (rc >= 0) {
        opts_free(opts);
        return rc;
    }
    cmd_set_log_level(f->log_level);
    char err[ERR_LEN];
    struct run_config base;
    f->cfg.scen.scenario = SCEN_STANDARD.name;
    f->prompt_set = PROMPT_SET_SHORT;
    f->cfg.scen.requests = 1;
    f->cfg.scen.concurrency = 1;
    if (!opts_given(opts, &f->evict_a_conc))
        f->evict_a_conc = 4;
    if (!opts_given(opts, &f->evict_b_conc))
        f->evict_b_conc = 8;
    if (run_flags_config(f, opts, &base, err) < 0) {
        fprintf(stderr, "kvbench matrix: %s\n", err);
        opts_free(opts);
        return EXIT_USAGE;
    }
    base.scen.evict_a_conc = opts_given(opts, &f->evict_a_conc) ? f->evict_a_conc : 4;
    base.scen.evict_b_conc = opts_given(opts, &f->evict_b_conc) ? f->evict_b_conc : 8;
    long long cvals[MATRIX_MAX_CONC];
    size_t ncv = 0;
    rc = concurrencies(&mo, cvals, &ncv);
    if (rc >= 0) {
        run_flags_release(&base);
        opts_free(opts);
        return rc;
    }
    char ts[17];
    clock_compact_utc(clock_wall_ns(), ts);
    if (!mo.stamp)
        mo.stamp = ts;
    cmd_catch_signals();
    struct matrix_runs runs = {.all_valid = true};
    const bool skipped[] = {mo.skip_short, mo.skip_long, mo.skip_eviction};
    for (int kind = MATRIX_SHORT; kind <= MATRIX_EVICTION && !cmd_interrupted; kind++) {
        if (skipped[kind])
            continue;
        size_t reps = kind == MATRIX_EVICTION ? 1 : ncv;
        runs.stop = false;
        for (size_t i = 0; i < reps && !cmd_interrupted && !runs.stop; i++)
            run_one(&mo, &base, (enum matrix_kind)kind, i < ncv ? cvals[i] : 1, &runs);
    }
    if (runs.n)
        cmd_print_runs_table(base.results_root, runs.ids, runs.n);
    for (size_t i = 0; i < runs.n; i++)
        free(runs.ids[i]);
    run_flags_release(&base);
    opts_free(opts);
    return runs.all_valid && !cmd_interrupted ? 0 : 1;
}
