/*
 * runargs.c - config.json `args` back into a run configuration.
 *
 * The recorded object is turned into the command line that gives it (`--name=value` for every
 * value that differs from the flag's default, one `--name=item` per list item) and that command
 * line goes through the run's own rows, parser and run_flags_config. Going through text keeps
 * one parser: a recorded value the flags would refuse today is refused the same way, naming the
 * flag. The defaults are the rows' own, parsed here, so that a value is "not given" exactly when
 * the run would have had it without the flag.
 */
#include "cmd/runargs.h"

#include "cmd/cmd.h"
#include "util/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* args' key of a row: its name with '-' as '_' (cmd_opts_json's). */
static void key_of(const struct opt *o, char key[64])
{
    snprintf(key, 64, "%s", o->name);
    for (char *p = key; *p; p++)
        if (*p == '-')
            *p = '_';
}

static bool skipped(const char *key, const char *const *skip)
{
    for (const char *const *s = skip; s && *s; s++)
        if (strcmp(*s, key) == 0)
            return true;
    return false;
}

/* Recorded and default values alike: numbers by value (1 and 1.0 are one value). */
static bool same_value(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal(a, b);
}

static int push_arg(struct run_args *ra, const char *name, const char *text, char *err)
{
    char **nv = realloc(ra->argv, (size_t)(ra->argc + 1) * sizeof *nv);
    if (!nv)
        return err_set(err, "out of memory");
    ra->argv = nv;
    size_t len = strlen(name) + strlen(text) + 4;
    if (!(ra->argv[ra->argc] = malloc(len)))
        return err_set(err, "out of memory");
    snprintf(ra->argv[ra->argc++], len, "--%s=%s", name, text);
    return 0;
}

/* One scalar of a row as the text a user would type for it. Returns 0, or -1 when v is no value
 * of the row's type (err). */
static int scalar_text(const struct opt *o, const json_t *v, char *out, size_t cap, char *err)
{
    if (json_is_boolean(v) && o->type == OPT_BOOL) {
        snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_string(v) && o->type != OPT_BOOL) {
        snprintf(out, cap, "%s", json_string_value(v));
    } else if (json_is_integer(v)) { /* --request-seed is recorded as the number it names */
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v) && isfinite(json_real_value(v))) {
        snprintf(out, cap, "%.17g", json_real_value(v));
    } else {
        return err_set(err, "args.%s: a value of the wrong type for --%s", o->name, o->name);
    }
    return 0;
}

/* The flags that give the recorded value v of row o (nothing when it is the default, or null:
 * an unset value is what the row has without the flag). */
static int add_flag(struct run_args *ra, const struct opt *o, const json_t *v, const json_t *def,
                    char *err)
{
    if (!v || json_is_null(v) || same_value(v, def))
        return 0;
    char text[4096];
    if (o->type != OPT_LIST) {
        if (scalar_text(o, v, text, sizeof text, err) < 0)
            return -1;
        return push_arg(ra, o->name, text, err);
    }
    if (!json_is_array(v))
        return err_set(err, "args.%s: expected a list for --%s", o->name, o->name);
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return err_set(err, "args.%s[%zu]: expected a string", o->name, i);
        if (push_arg(ra, o->name, json_string_value(item), err) < 0)
            return -1;
    }
    return 0;
}

/* Bind the rows to ra->f afresh. */
static void bind_rows(struct run_args *ra)
{
    memset(&ra->f, 0, sizeof ra->f);
    memset(ra->opts, 0, sizeof ra->opts);
    size_t n = 0;
    run_flags_add(&ra->f, ra->opts, &n, RUN_FLAGS_MAX, NULL);
}

/* Every row's default, as args would record it. New reference, or NULL (err). */
static json_t *defaults_json(struct run_args *ra, char *err)
{
    bind_rows(ra);
    if (opts_parse(ra->opts, 0, NULL, NULL, err) != OPTS_OK)
        return NULL;
    json_t *d = cmd_opts_json(ra->opts);
    opts_free(ra->opts);
    if (!d)
        err_set(err, "out of memory");
    return d;
}

/* The command line that gives args (ra->argv), and args' keys no row has (ra->ignored). */
static int rebuild_argv(struct run_args *ra, const json_t *args, const char *const *skip,
                        const json_t *defaults, char *err)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)args, key, v)
    {
        if (skipped(key, skip))
            continue;
        const struct opt *row = NULL;
        char k[64];
        for (const struct opt *o = ra->opts; o->name && !row; o++) {
            key_of(o, k);
            if (strcmp(k, key) == 0 && !(o->flags & OPTF_SECRET))
                row = o;
        }
        if (!row) {
            json_array_append_new(ra->ignored, json_string(key));
            continue;
        }
        if (add_flag(ra, row, v, json_object_get(defaults, key), err) < 0)
            return -1;
    }
    return 0;
}

int run_args_config(const json_t *args, const char *const *skip, struct run_args *ra, char *err)
{
    memset(ra, 0, sizeof *ra);
    if (!json_is_object(args))
        return err_set(err, "args: expected an object of flags");
    if (!(ra->ignored = json_array()))
        return err_set(err, "out of memory");
    json_t *defaults = defaults_json(ra, err);
    if (!defaults)
        return -1;
    int rc = rebuild_argv(ra, args, skip, defaults, err);
    json_decref(defaults);
    if (rc < 0)
        return -1;
    bind_rows(ra);
    rc = opts_parse(ra->opts, ra->argc, ra->argv, NULL, err);
    if (rc != OPTS_OK)
        return rc == OPTS_HELP ? err_set(err, "args: a flag asks for --help") : -1;
    if (run_flags_config(&ra->f, ra->opts, &ra->cfg, err) < 0)
        return -1;
    ra->have_cfg = true;
    return 0;
}

void run_args_release(struct run_args *ra)
{
    if (ra->have_cfg)
        run_flags_release(&ra->cfg);
    ra->have_cfg = false;
    opts_free(ra->opts);
    for (int i = 0; i < ra->argc; i++)
        free(ra->argv[i]);
    free(ra->argv);
    ra->argv = NULL;
    ra->argc = 0;
    json_decref(ra->ignored);
    ra->ignored = NULL;
}
