/*
 * restart.c - going from one KV mode to the next for `kvbench compare` and `kvbench sweep`
 * (restart.h): one set of flag rows and one --restart-cmd runner, so that both commands restart
 * and wait for a server the same way.
 */
#include "cmd/restart.h"

#include "cmd/cmd.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RF struct restart_flags

const struct opt RESTART_ROWS[] = {
    {.name = "restart-cmd",
     OPT_AT_STR(RF, cmd),
     .metavar = "SHELL",
     .help = "run before each mode's runs (compare) or search (sweep): {mode} is substituted "
             "and BENCH_KV_MODE exported"},
    {.name = "restart-timeout-s",
     OPT_AT_DURATION(RF, timeout_s),
     .def = "600",
     .help = "limit for --restart-cmd"},
    {.name = "skip-ready",
     OPT_AT_BOOL(RF, skip_ready),
     .env = "BENCH_COMPARE_SKIP_READY",
     .help = "do not wait for readiness between modes"},
    {.name = "ready-timeout-s",
     OPT_AT_DURATION(RF, ready_timeout_s),
     .def = "300",
     .help = "readiness wait per mode"},
    {.name = "ready-interval-s",
     OPT_AT_DURATION(RF, ready_interval_s),
     .def = "5",
     .min = 0.01,
     .max = 3600,
     .help = "readiness poll interval"},
    {.name = "ready-consecutive",
     OPT_AT_INT(RF, ready_consecutive),
     .def = "2",
     .min = 1,
     .max = 1000,
     .help = "good polls in a row"},
    {.name = "require-endpoints",
     OPT_AT_BOOL(RF, require_endpoints),
     .env = "BENCH_COMPARE_READY_REQUIRE_ENDPOINTS",
     .help = "readiness also needs /health endpoints"},
    {0},
};

/* The user's command with {mode} substituted, run with BENCH_KV_MODE exported; its output goes
 * to ours. */
static int run_restart(const char *mode, void *user, char *err)
{
    const struct restart_flags *r = user;
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
    if (buf_failed(&cmd)) { /* never run a user's command cut short */
        buf_free(&cmd);
        return err_set(err, "out of memory building --restart-cmd");
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

void restart_setup(const struct restart_flags *rf, struct compare_config *cc,
                   void (*event)(const char *ev, const char *mode, const char *detail, void *user))
{
    cc->restart = rf->cmd ? run_restart : NULL;
    cc->restart_user = (void *)rf;
    /* a command that names the mode restarts the server in it (else --kv-mode is a label) */
    cc->restart_sets_mode =
        rf->cmd && (strstr(rf->cmd, "{mode}") || strstr(rf->cmd, "BENCH_KV_MODE"));
    cc->skip_ready = rf->skip_ready;
    cc->ready = (struct ready_opts){.base_url = cc->run.base_url,
                                    .api_key = cc->run.api_key,
                                    .timeout_s = rf->ready_timeout_s,
                                    .interval_s = rf->ready_interval_s,
                                    .consecutive = (int)rf->ready_consecutive,
                                    .require_endpoints = rf->require_endpoints,
                                    .stop = &cmd_interrupted};
    cc->event = event;
    cc->interrupted = &cmd_interrupted;
}
