/*
 * sweep.h - `kvbench sweep` (docs/SWEEP.md): capacity at SLO per KV mode. For each mode, searches
 * over the offered load (each step one `kvbench run` in an open loop), whole searches interleaved
 * per repeat (mode A, mode B, mode A, ...), each preceded by compare's restart and readiness.
 * Writes <results-root>/<sweep-id>/sweep.json, sweep.md and the charts; each step's run directory
 * is <results-root>/<sweep-id>_<label>_s<NN>/.
 */
#ifndef KVBENCH_RUN_SWEEP_H
#define KVBENCH_RUN_SWEEP_H

#include "run/comparison.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* What the offered load sets, by scenario. */
enum sweep_load {
    SWEEP_LOAD_REQUEST_RATE,  /* standard: --request-rate, req/s */
    SWEEP_LOAD_USER_QPS,      /* multi_turn: --user-qps = offered / --users; offered in req/s */
    SWEEP_LOAD_TRACE_SPEEDUP, /* trace: --trace-speedup, x the trace's own rate */
};

struct sweep_config {
    /* the workload (cmp.run), the modes, restarts, readiness, progress events and interrupts;
     * cmp.compare_id is the sweep's id; cmp.repeats and cmp.expect are not read */
    struct compare_config cmp;
    double target;          /* attainment a step must reach (--slo-target) */
    double precision;       /* the search stops when hi / lo <= 1 + precision */
    double start;           /* the first search's first load */
    double min_rate;        /* the lowest load tried */
    double max_rate;        /* the highest load tried */
    size_t repeats;         /* searches per mode */
    long long min_requests; /* standard: requests per step at least this many */
    size_t max_steps;       /* per search */
};

struct sweep_outcome {
    char dir[PATH_MAX];
    char decision[1200]; /* the verdict line(s) */
    bool steps_ok;       /* every step ran and wrote its run directory */
    bool all_found;      /* every mode's searches bracketed a capacity */
};

/* The load variable of a scenario, or -1 when the scenario cannot be swept. */
int sweep_load_of(const char *scenario);

/* Run the searches and write the sweep directory. Returns 0 when sweep.json was written, -1
 * with err when the sweep could not start or write (e.g. the directory exists). */
int sweep_run(const struct sweep_config *c, struct sweep_outcome *out, char *err);

#endif
