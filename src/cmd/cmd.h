/*
 * cmd.h - the subcommands (one src/cmd/<name>.c each), their table, and what every cmd_* shares.
 *
 * Only this layer prints to the user and chooses exit codes:
 *   0 success / valid run, 1 failed or invalid run, 2 usage error (bad flag or value).
 */
#ifndef KVBENCH_CMD_CMD_H
#define KVBENCH_CMD_CMD_H

#include "cmd/enums.h"
#include "util/opts.h"

#include <jansson.h>
#include "util/version.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#define EXIT_USAGE 2

struct cmd {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the first argument after the name */
    const char *summary;
};

/* One entry point per subcommand, each in src/cmd/<name>.c. */
int cmd_run(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_ready(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_smoke(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_matrix(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_tiers(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_merge(int argc, char **argv);

extern const struct cmd CMD_TABLE[];
const struct cmd *cmd_find(const char *name);
/* Run command c: the process-wide set-up every command needs (the HTTP transports), then
 * c->run. Returns the command's exit code. */
int cmd_dispatch(const struct cmd *c, int argc, char **argv);

/* Parse options for `kvbench <name>`. Returns -1 to go on, or the exit code to return now:
 * 0 after printing --help to stdout, 2 after printing "kvbench <name>: <error>" to stderr. */
int cmd_parse(const char *name, const char *usage, const char *description, struct opt *opts,
              int argc, char **argv, struct opt_positional *pos);

/* (cmd_parse applies it to every --base-url.) The server root from what a user may type:
 * trailing slashes removed, and a trailing /v1 (an OpenAI client's base URL) removed with
 * *had_v1 set. Returns 0, or -1 when in is not an http:// or https:// URL with a host. */
int base_url_normalize(const char *in, char *out, size_t len, bool *had_v1);

/* Every option's value as JSON (for config.json `args`), keyed by the option's name with '-' as
 * '_' (the reference harness's argparse names), ranges as "MIN:MAX", enumerations by their name,
 * leaving out secret rows (OPTF_SECRET: --api-key). New reference, or NULL when out of memory. */
json_t *cmd_opts_json(const struct opt *opts);

/* The rows that several commands share, spelled once so that --help reads the same everywhere.
 * `where` says where the value lives: `.dest = &x`, or `OPT_AT(T, field, ctype)` in a row table
 * kept as file-level data (opts_bind). */
#define OPT_AT(T, field, ctype) .off = OPT_OFFSET(T, field, ctype)
#define CMD_OPT_BASE_URL(where)                                                                    \
    {                                                                                              \
        .name = "base-url", .type = OPT_STR, where, .def = "http://127.0.0.1:8000",                \
        .metavar = "URL", .help = "server root", .flags = OPTF_SERVER_URL                          \
    }
#define CMD_OPT_API_KEY(where)                                                                     \
    {                                                                                              \
        .name = "api-key", .type = OPT_STR, where, .env = "OPENAI_API_KEY", .metavar = "KEY",      \
        .help = "sent as Authorization: Bearer; never written", .flags = OPTF_SECRET               \
    }
/* --log-level (an int of enum log_level, from LOG_LEVEL_NAMES) with the command's default. */
#define CMD_OPT_LOG_LEVEL(where, def_, help_)                                                      \
    {                                                                                              \
        .name = "log-level", .type = OPT_ENUM, where, .def = (def_), .names = LOG_LEVEL_NAMES,     \
        .help = (help_)                                                                            \
    }
#define CMD_OPT_RESULTS_ROOT(where, help_)                                                         \
    {                                                                                              \
        .name = "results-root", .type = OPT_STR, where, .def = "bench/results", .metavar = "DIR",  \
        .help = (help_)                                                                            \
    }

/* Set by SIGINT/SIGTERM once cmd_catch_signals() ran; long-running commands stop at the next
 * request boundary and still write what they measured. */
extern volatile sig_atomic_t cmd_interrupted;

/* Route SIGINT/SIGTERM to cmd_interrupted and ignore SIGPIPE (a server closing mid-write). */
void cmd_catch_signals(void);

/* Print "== title (HTTP status)" and the body, pretty-printed when it is JSON (ready, health). */
void cmd_print_body(const char *title, long status, const char *body);

/* Split list items on spaces and commas ("cpu_only cpu_disk", "1,4,8") into *out (n_out
 * strings). Returns 0, or -1 when out of memory (nothing allocated). Free with cmd_free_list. */
int cmd_split_list(const struct opt_list *l, char ***out, size_t *n_out);
void cmd_free_list(char **v, size_t n);

/* The summary table over <results_root>/<id>/summary.json for each id, on stdout. */
void cmd_print_runs_table(const char *results_root, char *const *ids, size_t n);

/* Apply a --log-level value (an enum log_level from LOG_LEVEL_NAMES). */
void cmd_set_log_level(int level);

#endif
