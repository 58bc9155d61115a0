/*
 * opts.h - one declarative option parser for every subcommand.
 *
 * A command describes its options in a table of struct opt (name, type, destination, default,
 * limits, help) and calls opts_parse. A flag is one row: where its value lives is either a
 * pointer (.dest) or, for tables kept as file-level data, an offset into the struct the command
 * reads (.off, written with OPT_AT so that the field's C type is checked against the row's
 * type), resolved by opts_bind. "Was this flag given?" is asked by the value's address
 * (opts_given), never by a name spelled again. Enumerations parse once, here, to the int of a
 * struct name_entry table (util/names.h); OPT_CHOICE keeps a name (const char *) for lists that a
 * catalogue owns and looks up itself (engines, personalities, scenarios). The same rows print
 * --help (opts_help) and the docs' tables (opts_markdown).
 *
 * Defaults are given as text and go through the same parser as user input, so the default
 * printed by --help is exactly the default applied; an option without a default is set to
 * NULL / 0 / false (an OPT_ENUM to -1) before parsing. An option may take its default from an
 * environment variable (opt.env) when that variable is set and non-empty.
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

#include "util/names.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum opt_type {
    OPT_BOOL,     /* bool *                                       */
    OPT_STR,      /* const char * (points into argv, env or the table) */
    OPT_INT,      /* long long *, limited to [min, max]            */
    OPT_FLOAT,    /* double *, limited to [min, max]               */
    OPT_RANGE,    /* struct opt_range * from "MIN:MAX" integers    */
    OPT_ENUM,     /* int: the value of the name given, from .names */
    OPT_CHOICE,   /* const char * that is one of .choices (a catalogue's own name list) */
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
    double min, max;                /* limits for OPT_INT / OPT_FLOAT / OPT_DURATION / OPT_RANGE */
    const struct name_entry *names; /* OPT_ENUM: the enumeration's one table */
    const char *const *choices;     /* OPT_CHOICE: NULL-terminated */
    const char *const *(*choices_fn)(void); /* OPT_CHOICE: the list, when only a function has it */
    const char *env;                        /* environment variable that supplies the default */
    size_t off;     /* with .dest NULL: offset of the value in the base given to opts_bind */
    unsigned flags; /* OPTF_* */
    bool seen;      /* out: given on the command line */
    bool list_from_default; /* internal: OPT_LIST still holds its default */
};

struct opt_positional {
    const char *metavar; /* e.g. "PATH" */
    size_t max;          /* how many are accepted (0 = none) */
    const char **items;  /* out: caller-provided array of at least max entries */
    size_t n;            /* out */
};

enum {
    OPTF_SECRET = 1u << 0,     /* never written: left out of config.json args, redacted in logs */
    OPTF_SERVER_URL = 1u << 1, /* a server root: normalised by the cmd layer */
};

/* The offset of T's `field`, a compile error unless the field's type is `ctype`. */
#define OPT_OFFSET(T, field, ctype)                                                                \
    (offsetof(T, field) + 0 * sizeof((ctype *){0} = &((T *)0)->field))
/* A row's type and where its value lives in T (see opts_bind). */
#define OPT_AT_BOOL(T, f)        .type = OPT_BOOL, .off = OPT_OFFSET(T, f, bool)
#define OPT_AT_STR(T, f)         .type = OPT_STR, .off = OPT_OFFSET(T, f, const char *)
#define OPT_AT_INT(T, f)         .type = OPT_INT, .off = OPT_OFFSET(T, f, long long)
#define OPT_AT_FLOAT(T, f)       .type = OPT_FLOAT, .off = OPT_OFFSET(T, f, double)
#define OPT_AT_DURATION(T, f)    .type = OPT_DURATION, .off = OPT_OFFSET(T, f, double)
#define OPT_AT_RANGE(T, f)       .type = OPT_RANGE, .off = OPT_OFFSET(T, f, struct opt_range)
#define OPT_AT_LIST(T, f)        .type = OPT_LIST, .off = OPT_OFFSET(T, f, struct opt_list)
#define OPT_AT_ENUM(T, f, table) .type = OPT_ENUM, .off = OPT_OFFSET(T, f, int), .names = (table)
#define OPT_AT_CHOICE(T, f)      .type = OPT_CHOICE, .off = OPT_OFFSET(T, f, const char *)

enum { OPTS_OK = 0, OPTS_HELP = 1, OPTS_ERROR = -1 };

/* Parse argv[0..argc) (argv[0] is the first option, not the command name). Returns OPTS_OK,
 * OPTS_HELP (user asked for --help) or OPTS_ERROR with err filled. pos may be NULL when the
 * command takes no positional arguments. Call opts_free afterwards. */
int opts_parse(struct opt *opts, int argc, char **argv, struct opt_positional *pos, char *err);
/* Copy rows (ended by a NULL name) to out[*n ...], at most cap entries in all, resolving each
 * row without .dest to base + .off; rows whose value would live at an address in `skip`
 * (NULL-terminated, may be NULL) are left out. out stays terminated by a zeroed row when room is
 * left. Returns the number of rows copied. */
size_t opts_bind(struct opt *out, size_t *n, size_t cap, const struct opt *rows, void *base,
                 const void *const *skip);
/* The row whose value lives at dest, or NULL (a row left out). */
struct opt *opts_find(struct opt *opts, const void *dest);
/* Was the option whose value lives at dest given on the command line? (A default or env value
 * is not "given"; nor is an option the table does not have.) */
bool opts_given(const struct opt *opts, const void *dest);
/* Replace the default (text) of the option whose value lives at dest; before opts_parse. */
void opts_set_default(struct opt *opts, const void *dest, const char *def);
/* Release memory held by OPT_LIST destinations. */
void opts_free(struct opt *opts);
/* Print "Usage: ...", the description and one line per option with its default. */
void opts_help(FILE *out, const char *usage, const char *description, const struct opt *opts);
/* One Markdown table row per option ("| `--name METAVAR` | default | help [choices] |") under a
 * header, from the same rows as opts_help: the docs' flag tables are this output. */
void opts_markdown(FILE *out, const struct opt *opts);
/* Parse a duration ("250ms", "2s", "1.5", "3m", "1h") to seconds. Returns 0 or -1. */
int opts_parse_duration(const char *s, double *seconds);

#endif
