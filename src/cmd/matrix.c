/*
 * matrix.c - `kvbench matrix`: the runbook's matrix — short and long sweeps over
 * --concurrencies and one eviction_replay run — with the workload flags of `kvbench run`
 * (runflags.c); ends with one summary table over the runs.
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

/* ------------------------------------------------------------ matrix */

int cmd_matrix(int argc, char **argv)
{
    struct run_flags f;
    memset(&f, 0, sizeof f);
    struct opt_list concs = {0};
    long long short_req = 0, short_warm = 0, long_req = 0, long_warm = 0, evict_warm = 0;
    bool skip_short = false, skip_long = false, skip_eviction = false;
    const char *stamp = NULL;
    struct opt opts[RUN_FLAGS_MAX + 16];
    memset(opts, 0, sizeof opts);
    size_t n = 0;
    const struct opt own[] = {
        {.name = "concurrencies",
         .type = OPT_LIST,
         .dest = &concs,
         .def = "1 4 8",
         .env = "BENCH_CONCURRENCIES",
         .metavar = "LIST",
         .help = "concurrencies of the short and long sweeps"},
        {.name = "short-requests",
         .type = OPT_INT,
         .dest = &short_req,
         .def = "64",
         .min = 1,
         .max = 10000000,
         .help = "requests per short run"},
        {.name = "short-warmup",
         .type = OPT_INT,
         .dest = &short_warm,
         .def = "8",
         .min = 0,
         .max = 10000000,
         .help = "warmup per short run"},
        {.name = "long-requests",
         .type = OPT_INT,
         .dest = &long_req,
         .def = "24",
         .min = 1,
         .max = 10000000,
         .help = "requests per long run"},
        {.name = "long-warmup",
         .type = OPT_INT,
         .dest = &long_warm,
         .def = "4",
         .min = 0,
         .max = 10000000,
         .help = "warmup per long run"},
        {.name = "eviction-warmup",
         .type = OPT_INT,
         .dest = &evict_warm,
         .def = "4",
         .min = 0,
         .max = 10000000,
         .help = "warmup of the eviction/replay run"},
        {.name = "skip-short", .type = OPT_BOOL, .dest = &skip_short, .help = "no short sweep"},
        {.name = "skip-long", .type = OPT_BOOL, .dest = &skip_long, .help = "no long sweep"},
        {.name = "skip-eviction",
         .type = OPT_BOOL,
         .dest = &skip_eviction,
         .help = "no eviction/replay run"},
        {.name = "stamp",
         .type = OPT_STR,
         .dest = &stamp,
         .metavar = "TEXT",
         .help = "suffix of the run ids (default: UTC timestamp)"},
    };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        opts[n++] = own[i];
    const void *const skip[] = {&f.scenario,    &f.prompt_set, &f.requests, &f.warmup,
                                &f.concurrency, &f.run_id,     NULL};
    run_flags_add(&f, opts, &n, sizeof opts / sizeof opts[0] - 1, skip);
    /* the runbook's matrix: a long range capped under max_num_tokens, and its eviction sizes */
    opts_set_default(opts, &f.long_range, "6000:7600");
    opts_set_default(opts, &f.evict_a, "24");
    opts_set_default(opts, &f.evict_b, "48");
    int rc = cmd_parse("matrix", "kvbench matrix [options]",
                       "The runbook's matrix: short runs (64 requests, 8 warmup) and long runs\n"
                       "(--long-range 6000:7600, 24 requests, 4 warmup) at each of\n"
                       "--concurrencies, then one eviction_replay run (A 24 at concurrency 4,\n"
                       "B 48 at concurrency 8). Run ids: short_c<N>_<stamp>, long_c<N>_<stamp>,\n"
                       "eviction_replay_<stamp>. Ends with a summary table; exit 0 when every\n"
                       "run is valid.",
                       opts, argc, argv, NULL);
    if (rc >= 0) {
        opts_free(opts);
        return rc;
    }
    cmd_set_log_level(f.log_level);
    char err[ERR_LEN];
    struct run_config base;
    f.scenario = "standard";
    f.prompt_set = PROMPT_SET_SHORT;
    f.requests = 1;
    f.concurrency = 1;
    if (!opts_given(opts, &f.evict_a_conc))
        f.evict_a_conc = 4;
    if (!opts_given(opts, &f.evict_b_conc))
        f.evict_b_conc = 8;
    if (run_flags_config(&f, opts, &base, err) < 0) {
        fprintf(stderr, "kvbench matrix: %s\n", err);
        opts_free(opts);
        return EXIT_USAGE;
    }
    base.evict_a_conc = opts_given(opts, &f.evict_a_conc) ? f.evict_a_conc : 4;
    base.evict_b_conc = opts_given(opts, &f.evict_b_conc) ? f.evict_b_conc : 8;
    char **cv;
    size_t nc;
    if (cmd_split_list(&concs, &cv, &nc) < 0) {
        fprintf(stderr, "kvbench matrix: --concurrencies: out of memory\n");
        run_flags_release(&base);
        opts_free(opts);
        return 1;
    }
    long long cvals[64];
    size_t ncv = 0;
    for (size_t i = 0; i < nc; i++) {
        char *end;
        long long v = strtoll(cv[i], &end, 10);
        if (*end || v < 1 || v > 100000 || ncv == 64) {
            fprintf(stderr,
                    "kvbench matrix: --concurrencies: expected integers from 1 to 100000, "
                    "got '%s'\n",
                    cv[i]);
            cmd_free_list(cv, nc);
            run_flags_release(&base);
            opts_free(opts);
            return EXIT_USAGE;
        }
        cvals[ncv++] = v;
    }
    cmd_free_list(cv, nc);
    char ts[17];
    clock_compact_utc(clock_wall_ns(), ts);
    if (!stamp)
        stamp = ts;
    cmd_catch_signals();
    char *ids[160];
    size_t nids = 0;
    bool all_valid = true;
    for (int kind = 0; kind < 3 && !cmd_interrupted; kind++) {
        if ((kind == 0 && skip_short) || (kind == 1 && skip_long) || (kind == 2 && skip_eviction))
            continue;
        size_t reps = kind == 2 ? 1 : ncv;
        for (size_t i = 0; i < reps && !cmd_interrupted; i++) {
            struct run_config rc_i = base;
            char id[256];
            if (kind == 0) {
                rc_i.scenario = "standard";
                rc_i.prompt_set = names_name(PROMPT_SET_NAMES, PROMPT_SET_SHORT);
                rc_i.requests = short_req;
                rc_i.warmup = short_warm;
                rc_i.concurrency = cvals[i];
                snprintf(id, sizeof id, "short_c%lld_%s", cvals[i], stamp);
            } else if (kind == 1) {
                rc_i.scenario = "standard";
                rc_i.prompt_set = names_name(PROMPT_SET_NAMES, PROMPT_SET_LONG);
                rc_i.requests = long_req;
                rc_i.warmup = long_warm;
                rc_i.concurrency = cvals[i];
                snprintf(id, sizeof id, "long_c%lld_%s", cvals[i], stamp);
            } else {
                rc_i.scenario = "eviction_replay";
                rc_i.warmup = evict_warm;
                rc_i.concurrency = 1;
                snprintf(id, sizeof id, "eviction_replay_%s", stamp);
            }
            rc_i.run_id = id;
            printf("matrix: run %s\n", id);
            fflush(stdout);
            struct run_outcome out;
            int r = bench_run(&rc_i, &cmd_interrupted, &out, err);
            if (r != RUN_OK) {
                fprintf(stderr, "kvbench matrix: %s: %s\n", id, err);
                all_valid = false;
                if (r == RUN_USAGE)
                    break;
                continue;
            }
            printf("matrix: %s %s\n", id, out.valid ? "valid" : out.invalid_reason);
            all_valid &= out.valid;
            if (nids < 160 && !(ids[nids++] = strdup(id))) {
                fprintf(stderr, "kvbench matrix: %s: out of memory\n", id);
                nids--;
            }
        }
    }
    if (nids)
        cmd_print_runs_table(base.results_root, ids, nids);
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    run_flags_release(&base);
    opts_free(opts);
    return all_valid && !cmd_interrupted ? 0 : 1;
}
