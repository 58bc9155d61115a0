/*
 * proc.h - child processes: run-to-completion with captured output and a timeout, and
 * long-running children (an engine started by a test or by `kvbench demo`) that are stopped with
 * a signal and a grace period.
 *
 * Children run in their own process group so that a timeout or stop reaches everything they
 * started (a `sh -c` restart command and its children).
 */
#ifndef KVBENCH_UTIL_PROC_H
#define KVBENCH_UTIL_PROC_H

#include "util/buf.h"

#include <stdbool.h>
#include <sys/types.h>

#define PROC_MERGE_STDERR 1 /* capture stderr into the stdout buffer */

struct proc_result {
    bool exited; /* normal exit: exit_code is valid */
    int exit_code;
    bool signaled; /* killed by term_signal */
    int term_signal;
    bool timed_out;     /* we killed it at the timeout */
    struct buf out;     /* captured stdout (and stderr with PROC_MERGE_STDERR) */
    struct buf err_out; /* captured stderr otherwise */
};

/* Run argv[0] (searched in PATH) with argv, feeding stdin_data (may be NULL → /dev/null),
 * capturing at most max_capture bytes of each stream (the rest is read and dropped). After
 * timeout_s (<= 0: none) the process group gets SIGTERM, then SIGKILL one second later.
 * Returns 0 when the child ran (whatever its status) or -1 when it could not be started.
 * Free res with proc_result_free. */
int proc_run(char *const argv[], const char *stdin_data, double timeout_s, size_t max_capture,
             int flags, struct proc_result *res, char *err);
/* Run a shell command line with `sh -c`. */
int proc_run_shell(const char *cmdline, double timeout_s, size_t max_capture, int flags,
                   struct proc_result *res, char *err);
void proc_result_free(struct proc_result *res);

struct proc_child {
    pid_t pid;
    bool reaped;
    int status; /* raw wait status once reaped */
};

/* Start argv in the background with stdout and stderr appended to log_path (NULL → inherit).
 * extra_env: NULL or a NULL-terminated list of "NAME=value" added to the environment. */
int proc_spawn(char *const argv[], const char *log_path, char *const extra_env[],
               struct proc_child *child, char *err);
/* Is it still running? Reaps it when it has exited. */
bool proc_alive(struct proc_child *child);
/* Send sig to the group, wait up to grace_s, then SIGKILL. Returns the exit code (>= 0), or
 * 128+signal when killed by a signal. */
int proc_stop(struct proc_child *child, int sig, double grace_s);

#endif
