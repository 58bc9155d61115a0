/*
 * sweep.c - `kvbench sweep`: capacity at SLO per KV mode (docs/SWEEP.md). Every workload flag of
 * `kvbench run` (runflags.c) but the load itself, which the sweep sets per step (--request-rate,
 * --user-qps or --trace-speedup by scenario), plus compare's modes, restart and readiness flags
 * and the search's own. The search and its output are run/sweep.c's.
 */
#include "run/sweep.h"
#include "verdict/capacity.h"
#include "cmd/cmd.h"
#include "cmd/restart.h"
#include "cmd/runflags.h"
#include "util/clock.h"
#include "util/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sweep_event(const char *ev, const char *mode, const char *detail, void *user)
{
    (void)user;
    if (strcmp(ev, "restart") == 0)
        printf("sweep: [%s] restarting the server\n", mode);
    else if (strcmp(ev, "ready") == 0)
        printf("sweep: [%s] waiting until the server is ready\n", mode);
    else if (strcmp(ev, "run") == 0)
        printf("sweep: [%s] step %s\n", mode, detail);
    else if (strcmp(ev, "step") == 0)
        printf("sweep: [%s] %s\n", mode, detail);
    else
        printf("sweep: [%s] FAILED: %s\n", mode, detail ? detail : "?");
    fflush(stdout);
}

struct sweep_opts {
    struct run_flags f;
    struct opt_list modes;
    struct restart_flags rf; /* --restart-cmd and readiness (cmd/restart.h) */
    const char *sweep_id;
    double target, precision, start, min_rate, max_rate;
    long long repeats, min_requests, max_steps;
};

#define SO struct sweep_opts

static const struct opt SWEEP_ROWS[] = {
    {.name = "modes",
     OPT_AT_LIST(SO, modes),
     .def = "cpu_disk",
     .metavar = "MODES",
     .help = "kv modes to sweep, in order (space or comma separated); the first is the "
             "baseline of the capacity ratios"},
    {.name = "slo-target",
     OPT_AT_FLOAT(SO, target),
     .def = "0.9",
     .min = 0.01,
     .max = 1,
     .help = "a step passes when at least this share of its requests meet every --slo"},
    {.name = "precision",
     OPT_AT_FLOAT(SO, precision),
     .def = "0.05",
     .min = 0.001,
     .max = 1,
     .help = "bisection stops when the failing load is within this share above the passing one"},
    {.name = "start-rate",
     OPT_AT_FLOAT(SO, start),
     .def = "1",
     .min = 1e-6,
     .max = 1e7,
     .help = "the first step's offered load (req/s; trace: x its speed)"},
    {.name = "min-rate",
     OPT_AT_FLOAT(SO, min_rate),
     .def = "0",
     .min = 0,
     .max = 1e7,
     .help = "the lowest load tried before 'below the lowest load' (0: --start-rate / 64)"},
    {.name = "max-rate",
     OPT_AT_FLOAT(SO, max_rate),
     .def = "0",
     .min = 0,
     .max = 1e7,
     .help = "the highest load tried before 'saturation not reached' (0: --start-rate x 1024)"},
    {.name = "min-requests",
     OPT_AT_INT(SO, min_requests),
     .def = "0",
     .min = 0,
     .max = 10000000,
     .help = "standard: requests per step at least (0: --requests); multi_turn: refused "
             "unless --users x --rounds reaches it"},
    {.name = "max-steps",
     OPT_AT_INT(SO, max_steps),
     .def = "20",
     .min = 1,
     .max = 1000,
     .help = "steps per search at most"},
    {.name = "repeats",
     OPT_AT_INT(SO, repeats),
     .def = "3",
     .min = 1,
     .max = CAP_REPEATS_MAX,
     .help = "searches per mode, interleaved (A B A B ...); the later ones re-bracket the "
             "boundary. From 2 the capacity gets a 95 % interval, from 3 the modes a verdict"},
    {.name = "sweep-id",
     OPT_AT_STR(SO, sweep_id),
     .metavar = "ID",
     .help = "sweep directory name (default sweep_<UTC timestamp>)"},
    {0},
};

static const char DESCRIPTION[] =
    "Capacity at SLO per kv mode: the highest offered load at which at least\n"
    "--slo-target of the requests meet every --slo. Each step is one open-loop\n"
    "`kvbench run` (its own run id, salt and warm-up); a x2 ladder from\n"
    "--start-rate, then bisection to --precision, a step failing when it misses\n"
    "the target or the server saturates (completions under 95 % of sends, or\n"
    "TTFT growing through the step). The load is --request-rate (standard),\n"
    "--users x --user-qps (multi_turn: --user-qps is set) or --trace-speedup\n"
    "(trace). --repeats searches per mode, interleaved, each after --restart-cmd;\n"
    "with several --modes, the capacity ratio to the first with its interval and\n"
    "a verdict. Output: <results-root>/<sweep-id>/sweep.json, sweep.md and\n"
    "charts; steps in <results-root>/<sweep-id>_<mode>_s<NN>/. Exit 0 when every\n"
    "search found a capacity.";

/* Checks of the sweep's own flags against the run's. Returns -1 to go on, else the exit code. */
static int sweep_checks(struct sweep_opts *so, const struct opt *opts, int load)
{
    const char *why = NULL;
    if (load < 0)
        why = "--scenario: a sweep takes standard, multi_turn or trace";
    else if (opts_given(opts, &so->f.request_rate) || opts_given(opts, &so->f.cfg.scen.user_qps) ||
             opts_given(opts, &so->f.cfg.scen.trace_speedup))
        why = "--request-rate, --user-qps and --trace-speedup are the load the sweep sets per "
              "step: give --start-rate";
    else if (!so->f.slo.n)
        why = "--slo: a sweep needs the objectives a step must meet (e.g. --slo ttft_ms=2000)";
    else if (so->max_rate > 0 && so->max_rate < so->start)
        why = "--max-rate: below --start-rate";
    else if (so->min_rate > so->start)
        why = "--min-rate: above --start-rate";
    if (why) {
        fprintf(stderr, "kvbench sweep: %s\n", why);
        return EXIT_USAGE;
    }
    return -1;
}

/* Modes and the sweep id checked; the run configuration's per-scenario checks. */
static int sweep_config_of(struct sweep_opts *so, struct sweep_config *sc, char ***mv, size_t *nm,
                           char *id_buf, size_t id_len)
{
    if (cmd_split_list(&so->modes, mv, nm) < 0) {
        fprintf(stderr, "kvbench sweep: --modes: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < *nm; i++)
        if (names_value(KV_MODE_NAMES, (*mv)[i]) < 0) {
            char expected[64];
            fprintf(stderr, "kvbench sweep: --modes: expected %s, got '%s'\n",
                    enums_sentence(KV_MODE_NAMES, expected, sizeof expected), (*mv)[i]);
            return EXIT_USAGE;
        }
    if (*nm == 0) {
        fprintf(stderr, "kvbench sweep: --modes: expected at least one mode\n");
        return EXIT_USAGE;
    }
    if (!so->sweep_id) {
        char ts[17];
        clock_compact_utc(clock_wall_ns(), ts);
        snprintf(id_buf, id_len, "sweep_%s", ts);
        so->sweep_id = id_buf;
    }
    if (strchr(so->sweep_id, '/') || strstr(so->sweep_id, "..") || !*so->sweep_id) {
        fprintf(stderr, "kvbench sweep: --sweep-id must not be empty or contain '/' or '..'\n");
        return EXIT_USAGE;
    }
    const struct run_config *rc = &sc->cmp.run;
    char why[300];
    if (!slo_judgeable(&rc->slo, rc->gp.stream, why, sizeof why)) {
        fprintf(stderr, "kvbench sweep: --slo: %s\n", why);
        return EXIT_USAGE;
    }
    if (sweep_load_of(rc->scen.scenario) == SWEEP_LOAD_USER_QPS &&
        rc->scen.users * rc->scen.rounds < so->min_requests) {
        fprintf(stderr,
                "kvbench sweep: --min-requests: multi_turn sends --users x --rounds = %lld "
                "requests per step; raise --users or --rounds\n",
                rc->scen.users * rc->scen.rounds);
        return EXIT_USAGE;
    }
    return -1;
}

static void sweep_setup(const struct sweep_opts *so, struct sweep_config *sc)
{
    struct compare_config *cc = &sc->cmp;
    cc->compare_id = so->sweep_id;
    restart_setup(&so->rf, cc, sweep_event);
    sc->target = so->target;
    sc->precision = so->precision;
    sc->start = so->start;
    sc->min_rate = so->min_rate > 0 ? so->min_rate : so->start / 64;
    sc->max_rate = so->max_rate > 0 ? so->max_rate : so->start * 1024;
    sc->repeats = (size_t)so->repeats;
    sc->min_requests = so->min_requests;
    sc->max_steps = (size_t)so->max_steps;
}

/* Parse and check; cfg filled. Returns -1 to go on, else the exit code. */
static int sweep_parse(struct sweep_opts *so, struct opt *opts, int argc, char **argv,
                       struct run_config *cfg)
{
    int rc = cmd_parse("sweep", "kvbench sweep --slo K=MS,... [options]", DESCRIPTION, opts, argc,
                       argv, NULL);
    if (rc >= 0)
        return rc;
    cmd_set_log_level(so->f.log_level);
    int load = sweep_load_of(so->f.cfg.scen.scenario);
    if ((rc = sweep_checks(so, opts, load)) >= 0)
        return rc;
    /* the open loop's flags are checked against a rate: the start's stands in for the steps' */
    static char rate[32];
    snprintf(rate, sizeof rate, "%.17g", so->start);
    if (load == SWEEP_LOAD_REQUEST_RATE)
        so->f.request_rate = rate;
    if (load == SWEEP_LOAD_USER_QPS)
        so->f.cfg.scen.user_qps = so->start / (double)so->f.cfg.scen.users;
    if (load == SWEEP_LOAD_TRACE_SPEEDUP)
        so->f.cfg.scen.trace_speedup = so->start;
    char err[ERR_LEN];
    if (run_flags_config(&so->f, opts, cfg, err) < 0) {
        fprintf(stderr, "kvbench sweep: %s\n", err);
        return EXIT_USAGE;
    }
    return -1;
}

int cmd_sweep(int argc, char **argv)
{
    struct sweep_opts so;
    memset(&so, 0, sizeof so);
    struct opt opts[RUN_FLAGS_MAX + 24];
    size_t n = 0;
    opts_bind(opts, &n, sizeof opts / sizeof opts[0] - 1, SWEEP_ROWS, &so, NULL);
    opts_bind(opts, &n, sizeof opts / sizeof opts[0] - 1, RESTART_ROWS, &so.rf, NULL);
    const void *const skip[] = {&so.f.kv_mode, &so.f.run_id, NULL};
    run_flags_add(&so.f, opts, &n, sizeof opts / sizeof opts[0] - 1, skip);
    so.f.kv_mode = KV_MODE_CPU_DISK;
    struct sweep_config sc;
    memset(&sc, 0, sizeof sc);
    int rc = sweep_parse(&so, opts, argc, argv, &sc.cmp.run);
    if (rc >= 0) {
        run_flags_release(&sc.cmp.run);
        opts_free(opts);
        return rc;
    }
    char **mv = NULL, id_buf[64], err[ERR_LEN];
    size_t nm = 0;
    rc = sweep_config_of(&so, &sc, &mv, &nm, id_buf, sizeof id_buf);
    if (rc < 0) {
        cmd_catch_signals();
        sc.cmp.modes = (const char *const *)mv;
        sc.cmp.n_modes = nm;
        sweep_setup(&so, &sc);
        struct sweep_outcome out;
        if (sweep_run(&sc, &out, err) < 0) {
            fprintf(stderr, "kvbench sweep: %s\n", err);
            rc = strstr(err, "exists") ? EXIT_USAGE : 1;
        } else {
            printf("verdict: %s\n", out.decision);
            printf("sweep: %s/sweep.md (and sweep.json, sweep_attainment.svg, sweep_ttft.svg)\n",
                   out.dir);
            rc = out.steps_ok && out.all_found ? 0 : 1;
        }
    }
    cmd_free_list(mv, nm);
    run_flags_release(&sc.cmp.run);
    opts_free(opts);
    return rc;
}
