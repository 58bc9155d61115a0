/*
 * comparison.h - `kvbench compare` (SPEC §2): the same workload once per KV mode, or --repeats N
 * times per mode interleaved (A B A B ...): before each run a restart hook (the user's command,
 * or the demo's own engine restart), readiness unless skipped, then a run with --kv-mode set to
 * the mode. Writes compare_<id>/comparison.json, comparison.md and report.html.
 */
#ifndef KVBENCH_RUN_COMPARISON_H
#define KVBENCH_RUN_COMPARISON_H

#include "verdict/verdict.h"
#include "run/ready.h"
#include "run/runner.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>

/* Restart the server for mode. Returns 0, or -1 with err (the mode is then recorded as failed). */
typedef int (*compare_restart_fn)(const char *mode, void *user, char *err);
/* Progress for the user ("restart", "ready", "run", "done"). */
typedef void (*compare_event_fn)(const char *event, const char *mode, const char *detail,
                                 void *user);

struct compare_config {
    struct run_config run; /* the workload; kv_mode and run_id are set per mode */
    const char *const *modes;
    size_t n_modes;
    const char *compare_id; /* e.g. compare_20261128T010203Z */
    compare_restart_fn restart;
    void *restart_user;
    /* the restart puts the server in each mode (its command names {mode} or $BENCH_KV_MODE, or it
     * is kvbench's own engine): on an engine where kvbench's KV modes are not settable, modes
     * compared without it ran one configuration twice, and the comparison warns */
    bool restart_sets_mode;
    bool skip_ready;
    struct ready_opts ready; /* base_url etc. */
    compare_event_fn event;
    void *event_user;
    const volatile sig_atomic_t *interrupted;
    size_t repeats; /* runs per mode, interleaved A B A B ...; 0 or 1: one each */
    /* --expect-gain: gains the comparison must show (a CI gate); none: n_expect 0 */
    const struct expect_gain *expect;
    size_t n_expect;
};

struct compare_outcome {
    bool all_valid;
    bool gains_shown;    /* every --expect-gain was shown (true without any) */
    char decision[1200]; /* the one verdict line */
    char dir[PATH_MAX];
};

/* Put the server in mode before runs of it: the restart hook (when set), then readiness (unless
 * skipped), each announced through the event hook. Returns 0, or -1 with err (interrupted, the
 * restart failed, the server not ready). `kvbench sweep` shares it (run/sweep.c). */
int compare_prepare_mode(const struct compare_config *c, const char *mode, char *err);

/* Run every mode and write the comparison. Returns 0 when the comparison was written, -1 with
 * err when it could not start (e.g. the directory exists). */
int compare_run(const struct compare_config *c, struct compare_outcome *out, char *err);
#endif
