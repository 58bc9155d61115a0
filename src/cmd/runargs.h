/*
 * runargs.h - a run's configuration rebuilt from what its config.json recorded (`args`: every
 * flag by name, cmd_opts_json / run_flags_args), through the same flag rows and the same
 * run_flags_config as `kvbench run`, so that a command reading a finished run (kvbench merge)
 * judges it with the configuration the run had, not a second reading of the flags.
 *
 * A recorded value equal to the flag's default is taken as not given (args does not say which
 * flags were typed): a check that asks "was --x given?" then sees what a run without it would
 * have seen; where a flag given at its default value changes what another flag means (a
 * multi_turn --preset with --users at its default), the preset wins.
 */
#ifndef KVBENCH_CMD_RUNARGS_H
#define KVBENCH_CMD_RUNARGS_H

#include "cmd/runflags.h"

#include <jansson.h>

struct run_args {
    struct run_flags f;
    struct opt opts[RUN_FLAGS_MAX + 1];
    char **argv; /* the flags rebuilt from args (the parsed strings point into them) */
    int argc;
    struct run_config cfg; /* valid after run_args_config returned 0 */
    bool have_cfg;
    json_t *ignored; /* args' keys that are no flag of this kvbench, left out: [names] */
};

/* Rebuild the configuration of a run from its config.json args. Keys in `skip` (args' names,
 * NULL-terminated, may be NULL) are left at their defaults. Returns 0, or -1 with a one-line
 * err (a value the flags refuse, a check of run_flags_config). Release with run_args_release,
 * also after a failure. */
int run_args_config(const json_t *args, const char *const *skip, struct run_args *ra, char *err);
void run_args_release(struct run_args *ra);

#endif
