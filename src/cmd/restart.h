/*
 * restart.h - what `kvbench compare` and `kvbench sweep` share to go from one KV mode to the
 * next: the user's --restart-cmd (run with {mode} substituted and BENCH_KV_MODE exported) and
 * the readiness wait after it, their flag rows, and how they fill a comparison's configuration.
 */
#ifndef KVBENCH_CMD_RESTART_H
#define KVBENCH_CMD_RESTART_H

#include "run/comparison.h"
#include "util/opts.h"

#include <stdbool.h>

struct restart_flags {
    const char *cmd; /* --restart-cmd, or NULL: the server is not restarted */
    double timeout_s, ready_timeout_s, ready_interval_s;
    long long ready_consecutive;
    bool skip_ready, require_endpoints;
};

/* --restart-cmd, --restart-timeout-s, --skip-ready, --ready-*, --require-endpoints: rows bound
 * to a struct restart_flags (opts_bind with its address), ended by {0}. */
extern const struct opt RESTART_ROWS[];

/* Fill cc's restart hook, readiness options, progress events and interrupt from rf (which must
 * outlive cc): the hook runs rf's command before each mode; readiness is awaited at
 * cc->run.base_url unless --skip-ready. */
void restart_setup(const struct restart_flags *rf, struct compare_config *cc,
                   void (*event)(const char *ev, const char *mode, const char *detail, void *user));

#endif
