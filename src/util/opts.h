/*
 * opts.h - one declarative option parser for every subcommand.
 *
 * A command describes its options in a table of struct opt (name, type, destination, default,
 * limits, help) and calls opts_parse. Defaults are given as text and go through the same parser
 * as user input, so the default printed by --help is exactly the default applied; an option
 * without a default is set to NULL / 0 / false before parsing. An option may
 * take its default from an environment variable (opt.env) when that variable is set and non-empty.
 *
 * Accepted forms: `--name value`, `--name=value`, booleans as `--name`, `--name=true|false`,
 * `--no-name`; `--` ends options; `-h`/`--help` asks for help. Repeated plain options: the last
 * wins; OPT_LIST options collect every occurrence (and drop their default on the first one).
 *
 * Errors are one line naming the flag and what was expected, e.g.
 *   "--concurrency: expected an integer from 1 to 4096, got 'x'"
 * The caller (cmd layer) prints it and exits 2.
 */
#ifndef KVBENCH_UTIL_OPTS_H
#define KVBENCH_UTIL_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum opt_type {
    OPT_BOOL,     /* bool *                                       */
    OPT_STR,      /* const char * (points into argv, env or the table) */
    OPT_INT,      /* long long *, limited to [min, max]            */
    OPT_FLOAT,    /* double *, limited to [min, max]               */
    OPT_RANGE,    /* struct opt_range * from "MIN:MAX" integers    */
    OPT_ENUM,     /* const char * that is one of choices           */
    OPT_DURATION, /* double * seconds, from "1.5", "500ms", "2s", "5m", "1h" */
    OPT_LIST,     /* struct opt_list *: every occurrence, in order */
};

struct opt_range {
    long long min;
    long long max;
};

struct opt_list {
    const char **items;
    size_t n;
};

struct opt {
    const char *name; /* without the leading "--"; NULL ends a table */
    enum opt_type type;
    void *dest;
    const char *def;     /* default as text, NULL for none */
    const char *metavar; /* shown in help, e.g. "URL"; derived from the type when NULL */
    const char *help;
    double min, max;            /* limits for OPT_INT / OPT_FLOAT / OPT_DURATION / OPT_RANGE */
    const char *const *choices; /* OPT_ENUM: NULL-terminated */
    const char *env;            /* environment variable that supplies the default */
    bool seen;                  /* out: given on the command line */
    bool list_from_default;     /* internal: OPT_LIST still holds its default */
};

struct opt_positional {
    const char *metavar; /* e.g. "PATH" */
    size_t max;          /* how many are accepted (0 = none) */
    const char **items;  /* out: caller-provided array of at least max entries */
    size_t n;            /* out */
};

enum { OPTS_OK = 0, OPTS_HELP = 1, OPTS_ERROR = -1 };

/* Parse argv[0..argc) (argv[0] is the first option, not the command name). Returns OPTS_OK,
 * OPTS_HELP (user asked for --help) or OPTS_ERROR with err filled. pos may be NULL when the
 * command takes no positional arguments. Call opts_free afterwards. */
int opts_parse(struct opt *opts, int argc, char **argv, struct opt_positional *pos, char *err);
/* Was this option given on the command line? (A default or env value is not "seen".) */
bool opts_seen(const struct opt *opts, const char *name);
/* Release memory held by OPT_LIST destinations. */
void opts_free(struct opt *opts);
/* Print "Usage: ...", the description and one line per option with its default. */
void opts_help(FILE *out, const char *usage, const char *description, const struct opt *opts);
/* Parse a duration ("250ms", "2s", "1.5", "3m", "1h") to seconds. Returns 0 or -1. */
int opts_parse_duration(const char *s, double *seconds);

#endif
