/*
 * opts.c - declarative option parsing, modelled on git's parse-options: the table is the single
 * source of truth for parsing, defaults, validation and help text. Each row is applied by one
 * small function per type; an enumeration becomes its table's int here, once, so no caller
 * compares the name again.
 */
#include "util/opts.h"

#include "util/err.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct opt *find_opt(struct opt *opts, const char *name, size_t len)
{
    for (struct opt *o = opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = prev + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

static const char *closest_name(const struct opt *opts, const char *name)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (const struct opt *o = opts; o->name; o++) {
        size_t d = edit_distance(name, o->name);
        if (d < best_d) {
            best_d = d;
            best = o->name;
        }
    }
    return best;
}

static const char *type_metavar(const struct opt *o)
{
    if (o->metavar)
        return o->metavar;
    switch (o->type) {
    case OPT_INT:
        return "N";
    case OPT_FLOAT:
        return "X";
    case OPT_RANGE:
        return "MIN:MAX";
    case OPT_DURATION:
        return "SECONDS";
    case OPT_ENUM:
    case OPT_CHOICE:
        return "CHOICE";
    default:
        return "VALUE";
    }
}

static int parse_ll(const char *s, long long *out)
{
    if (!*s)
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!*s)
        return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int opts_parse_duration(const char *s, double *seconds)
{
    if (!*s)
        return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v))
        return -1;
    double scale;
    if (*end == '\0' || strcmp(end, "s") == 0)
        scale = 1;
    else if (strcmp(end, "ms") == 0)
        scale = 1e-3;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        scale = 60;
    else if (strcmp(end, "h") == 0)
        scale = 3600;
    else
        return -1;
    *seconds = v * scale;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const T[] = {"1", "true", "yes", "on"};
    static const char *const F[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, T[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, F[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Format a limit without a trailing ".0" for integers. */
static void fmt_num(char *out, size_t n, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(out, n, "%.0f", v);
    else
        snprintf(out, n, "%g", v);
}

static bool has_limits(const struct opt *o)
{
    return o->min != 0 || o->max != 0;
}

/* The choices of an OPT_CHOICE row (a catalogue's own list, or the function that has it). */
static const char *const *choices_of(const struct opt *o)
{
    return o->choices_fn ? o->choices_fn() : o->choices;
}

/* "--x: expected one of a, b, c, got 'v'" for OPT_ENUM (a names table) and OPT_CHOICE. */
static int bad_choice(const struct opt *o, const char *val, const char *origin, char *err)
{
    char list[256] = "";
    size_t used = 0;
    const char *const *c = o->type == OPT_CHOICE ? choices_of(o) : NULL;
    for (int i = 0;; i++) {
        const char *name = c ? c[i] : o->names[i].name;
        if (!name)
            break;
        int n = snprintf(list + used, sizeof list - used, "%s%s", i == 0 ? "" : ", ", name);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    return err_set(err, "%s: expected one of %s, got '%s'", origin, list, val);
}

static int apply_int(struct opt *o, const char *val, const char *origin, char *err)
{
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, o->min);
    fmt_num(hi, sizeof hi, o->max);
    long long v;
    if (parse_ll(val, &v) < 0 || (has_limits(o) && (v < o->min || v > o->max))) {
        if (has_limits(o))
            return err_set(err, "%s: expected an integer from %s to %s, got '%s'", origin, lo, hi,
                           val);
        return err_set(err, "%s: expected an integer, got '%s'", origin, val);
    }
    *(long long *)o->dest = v;
    return 0;
}

static int apply_float(struct opt *o, const char *val, const char *origin, char *err)
{
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, o->min);
    fmt_num(hi, sizeof hi, o->max);
    double v;
    if (parse_double(val, &v) < 0 || (has_limits(o) && (v < o->min || v > o->max))) {
        if (has_limits(o))
            return err_set(err, "%s: expected a number from %s to %s, got '%s'", origin, lo, hi,
                           val);
        return err_set(err, "%s: expected a number, got '%s'", origin, val);
    }
    *(double *)o->dest = v;
    return 0;
}

static int apply_duration(struct opt *o, const char *val, const char *origin, char *err)
{
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, o->min);
    fmt_num(hi, sizeof hi, o->max);
    double v;
    if (opts_parse_duration(val, &v) < 0 || v < 0 ||
        (has_limits(o) && (v < o->min || v > o->max))) {
        if (has_limits(o))
            return err_set(err,
                           "%s: expected a duration from %s to %s seconds (e.g. 30, 500ms, "
                           "2m), got '%s'",
                           origin, lo, hi, val);
        return err_set(err, "%s: expected a duration (e.g. 30, 500ms, 2m), got '%s'", origin, val);
    }
    *(double *)o->dest = v;
    return 0;
}

static int apply_range(struct opt *o, const char *val, const char *origin, char *err)
{
    const char *colon = strchr(val, ':');
    char a[64], b[64];
    long long mn, mx;
    if (!colon || (size_t)(colon - val) >= sizeof a || strlen(colon + 1) >= sizeof b)
        goto bad_range;
    memcpy(a, val, (size_t)(colon - val));
    a[colon - val] = '\0';
    memcpy(b, colon + 1, strlen(colon + 1) + 1); /* length checked above */
    if (parse_ll(a, &mn) < 0 || parse_ll(b, &mx) < 0 || mn > mx)
        goto bad_range;
    if (has_limits(o) && (mn < o->min || mx > o->max))
        goto bad_range;
    ((struct opt_range *)o->dest)->min = mn;
    ((struct opt_range *)o->dest)->max = mx;
    return 0;
bad_range:
    if (has_limits(o)) {
        char lo[32], hi[32];
        fmt_num(lo, sizeof lo, o->min);
        fmt_num(hi, sizeof hi, o->max);
        return err_set(err, "%s: expected MIN:MAX integers with %s <= MIN <= MAX <= %s, got '%s'",
                       origin, lo, hi, val);
    }
    return err_set(err, "%s: expected MIN:MAX integers with MIN <= MAX, got '%s'", origin, val);
}

static int apply_list(struct opt *o, const char *val, const char *origin, bool from_default,
                      char *err)
{
    struct opt_list *l = o->dest;
    if (o->list_from_default && !from_default) {
        l->n = 0;
        o->list_from_default = false;
    }
    const char **items = realloc(l->items, (l->n + 1) * sizeof *items);
    if (!items)
        return err_set(err, "%s: out of memory", origin);
    items[l->n++] = val;
    l->items = items;
    if (from_default)
        o->list_from_default = true;
    return 0;
}

/* Apply one value. `origin` names where it came from for error messages ("--x" or "$X"). */
static int apply_value(struct opt *o, const char *val, const char *origin, bool from_default,
                       char *err)
{
    switch (o->type) {
    case OPT_BOOL: {
        bool b;
        if (parse_bool(val, &b) < 0)
            return err_set(err, "%s: expected true or false, got '%s'", origin, val);
        *(bool *)o->dest = b;
        return 0;
    }
    case OPT_STR:
        *(const char **)o->dest = val;
        return 0;
    case OPT_INT:
        return apply_int(o, val, origin, err);
    case OPT_FLOAT:
        return apply_float(o, val, origin, err);
    case OPT_DURATION:
        return apply_duration(o, val, origin, err);
    case OPT_RANGE:
        return apply_range(o, val, origin, err);
    case OPT_ENUM: {
        int v = names_value(o->names, val);
        if (v < 0)
            return bad_choice(o, val, origin, err);
        *(int *)o->dest = v;
        return 0;
    }
    case OPT_CHOICE:
        for (const char *const *c = choices_of(o); *c; c++) {
            if (strcmp(*c, val) == 0) {
                *(const char **)o->dest = *c;
                return 0;
            }
        }
        return bad_choice(o, val, origin, err);
    case OPT_LIST:
        return apply_list(o, val, origin, from_default, err);
    }
    return err_set(err, "%s: unsupported option type", origin);
}

static int apply_defaults(struct opt *opts, char *err)
{
    for (struct opt *o = opts; o->name; o++) {
        o->seen = false;
        o->list_from_default = false;
        if (o->type == OPT_LIST)
            ((struct opt_list *)o->dest)->n = 0;
        const char *env = o->env ? getenv(o->env) : NULL;
        if (env && *env) {
            char origin[128];
            snprintf(origin, sizeof origin, "$%s (default of --%s)", o->env, o->name);
            if (apply_value(o, env, origin, true, err) < 0)
                return -1;
        } else if (o->def) {
            char origin[128];
            snprintf(origin, sizeof origin, "default of --%s", o->name);
            if (apply_value(o, o->def, origin, true, err) < 0)
                return -1;
        } else {
            /* no default: a well-defined empty value, never whatever the memory held */
            switch (o->type) {
            case OPT_BOOL:
                *(bool *)o->dest = false;
                break;
            case OPT_STR:
            case OPT_CHOICE:
                *(const char **)o->dest = NULL;
                break;
            case OPT_ENUM:
                *(int *)o->dest = -1; /* none: names_name gives NULL */
                break;
            case OPT_INT:
                *(long long *)o->dest = 0;
                break;
            case OPT_FLOAT:
            case OPT_DURATION:
                *(double *)o->dest = 0;
                break;
            case OPT_RANGE:
                *(struct opt_range *)o->dest = (struct opt_range){0, 0};
                break;
            case OPT_LIST:
                break;
            }
        }
    }
    return 0;
}

_Static_assert(OPTS_ERROR == -1, "err_set's return value doubles as OPTS_ERROR");

int opts_parse(struct opt *opts, int argc, char **argv, struct opt_positional *pos, char *err)
{
    if (pos)
        pos->n = 0;
    if (apply_defaults(opts, err) < 0)
        return OPTS_ERROR;
    bool only_positional = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_positional && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0))
            return OPTS_HELP;
        if (!only_positional && strcmp(arg, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (only_positional || arg[0] != '-' || arg[1] == '\0') {
            if (!pos || pos->n >= pos->max) {
                if (!pos || pos->max == 0)
                    return err_set(err, "unexpected argument '%s'", arg);
                return err_set(err, "too many %s arguments (at most %zu)", pos->metavar, pos->max);
            }
            pos->items[pos->n++] = arg;
            continue;
        }
        if (arg[1] != '-')
            return err_set(err, "unknown option '%s' (options are spelled --name)", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        struct opt *o = find_opt(opts, name, name_len);
        bool negated = false;
        if (!o && name_len > 3 && strncmp(name, "no-", 3) == 0) {
            o = find_opt(opts, name + 3, name_len - 3);
            if (o && o->type == OPT_BOOL && !eq)
                negated = true;
            else
                o = NULL;
        }
        if (!o) {
            char bare[128];
            snprintf(bare, sizeof bare, "%.*s", (int)(name_len < 120 ? name_len : 120), name);
            const char *hint = closest_name(opts, bare);
            if (hint)
                return err_set(err, "unknown option --%s (did you mean --%s?)", bare, hint);
            return err_set(err, "unknown option --%s", bare);
        }
        char origin[128];
        snprintf(origin, sizeof origin, "--%s", o->name);
        o->seen = true;
        if (o->type == OPT_BOOL && !eq) {
            *(bool *)o->dest = !negated;
            continue;
        }
        const char *val;
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc)
                return err_set(err, "--%s: missing value (expected %s)", o->name, type_metavar(o));
            val = argv[++i];
        }
        if (apply_value(o, val, origin, false, err) < 0)
            return OPTS_ERROR;
    }
    return OPTS_OK;
}

size_t opts_bind(struct opt *out, size_t *n, size_t cap, const struct opt *rows, void *base,
                 const void *const *skip)
{
    size_t copied = 0;
    const struct opt *r = rows;
    for (; r->name && *n < cap; r++) {
        struct opt o = *r;
        if (!o.dest)
            o.dest = (char *)base + o.off;
        bool skipped = false;
        for (const void *const *s = skip; s && *s && !skipped; s++)
            skipped = *s == o.dest;
        if (skipped)
            continue;
        out[(*n)++] = o;
        copied++;
    }
    if (r->name) { /* a table larger than its caller's array: a flag would silently vanish */
        fprintf(stderr, "kvbench: internal error: more option rows than room (%zu)\n", cap);
        abort();
    }
    if (*n < cap)
        out[*n] = (struct opt){0};
    return copied;
}

struct opt *opts_find(struct opt *opts, const void *dest)
{
    for (struct opt *o = opts; o->name; o++)
        if (o->dest == dest)
            return o;
    return NULL;
}

bool opts_given(const struct opt *opts, const void *dest)
{
    for (const struct opt *o = opts; o->name; o++)
        if (o->dest == dest)
            return o->seen;
    return false;
}

void opts_set_default(struct opt *opts, const void *dest, const char *def)
{
    struct opt *o = opts_find(opts, dest);
    if (o)
        o->def = def;
}

void opts_free(struct opt *opts)
{
    for (struct opt *o = opts; o->name; o++) {
        if (o->type == OPT_LIST) {
            struct opt_list *l = o->dest;
            free(l->items);
            l->items = NULL;
            l->n = 0;
        }
    }
}

void opts_help(FILE *out, const char *usage, const char *description, const struct opt *opts)
{
    fprintf(out, "Usage: %s\n", usage);
    if (description && *description)
        fprintf(out, "\n%s\n", description);
    if (!opts || !opts->name)
        return;
    fprintf(out, "\nOptions:\n");
    for (const struct opt *o = opts; o->name; o++) {
        char left[96];
        if (o->type == OPT_BOOL)
            snprintf(left, sizeof left, "  --%s", o->name);
        else
            snprintf(left, sizeof left, "  --%s %s", o->name, type_metavar(o));
        fprintf(out, "%-38s%s%s", left,
                strlen(left) >= 38 ? "\n                                      " : "",
                o->help ? o->help : "");
        if (o->type == OPT_ENUM) {
            fprintf(out, " [");
            for (const struct name_entry *e = o->names; e->name; e++)
                fprintf(out, "%s%s", e == o->names ? "" : "|", e->name);
            fprintf(out, "]");
        }
        if (o->type == OPT_CHOICE) {
            const char *const *choices = choices_of(o);
            fprintf(out, " [");
            for (const char *const *c = choices; *c; c++)
                fprintf(out, "%s%s", c == choices ? "" : "|", *c);
            fprintf(out, "]");
        }
        if (o->type == OPT_LIST)
            fprintf(out, " (repeatable)");
        if (o->env && o->def && o->type != OPT_BOOL)
            fprintf(out, " (default: $%s, else %s)", o->env, o->def);
        else if (o->env)
            fprintf(out, " (default: $%s)", o->env);
        else if (o->def && o->type != OPT_BOOL)
            fprintf(out, " (default: %s)", *o->def ? o->def : "\"\"");
        fputc('\n', out);
    }
}

/* Text in a Markdown table cell: '|' escaped, so a choice list does not split the row. */
static void md_cell(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

void opts_markdown(FILE *out, const struct opt *opts)
{
    fprintf(out, "| flag | default | meaning |\n|---|---|---|\n");
    for (const struct opt *o = opts; o->name; o++) {
        fprintf(out, "| `--%s", o->name);
        if (o->type != OPT_BOOL)
            fprintf(out, " %s", type_metavar(o));
        fprintf(out, "` | ");
        if (o->env)
            fprintf(out, "`$%s`%s", o->env, o->def && o->type != OPT_BOOL ? ", else " : "");
        if (o->type == OPT_BOOL && !o->env)
            fprintf(out, "off");
        else if (o->def && o->type != OPT_BOOL) {
            fputc('`', out);
            md_cell(out, o->def);
            fputc('`', out);
        }
        fprintf(out, " | ");
        md_cell(out, o->help);
        if (o->type == OPT_ENUM || o->type == OPT_CHOICE) {
            fprintf(out, ": ");
            const char *const *c = o->type == OPT_CHOICE ? choices_of(o) : NULL;
            for (int i = 0;; i++) {
                const char *name = c ? c[i] : o->names[i].name;
                if (!name)
                    break;
                fprintf(out, "%s`%s`", i ? ", " : "", name);
            }
        }
        if (o->type == OPT_LIST)
            fprintf(out, " (repeatable)");
        fprintf(out, " |\n");
    }
}
