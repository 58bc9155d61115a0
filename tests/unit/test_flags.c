/*
 * Unit tests for the flag rows (cmd/runflags.c, util/opts.c): every row has help, reaches
 * config.json `args` through the function the run uses, appears in docs/RUN.md's generated
 * table and covers SPEC's names; every command's --help shows help for each option; and a row
 * added to a table is parsed, shown in --help and recorded in args with no other edit.
 */
#include "test_common.h"

#include "cmd/cmd.h"
#include "cmd/runflags.h"
#include "util/err.h"
#include "util/opts.h"

#include <jansson.h>

/* config.json's key for a flag: its name with '-' as '_'. */
static void args_key(const char *name, char *key, size_t len)
{
    snprintf(key, len, "%s", name);
    for (char *p = key; *p; p++)
        if (*p == '-')
            *p = '_';
}

/* A file of the source tree (found from $KVBENCH_FIXTURES = <src>/tests/fixtures). */
static char *source_file(const char *rel)
{
    const char *fx = getenv("KVBENCH_FIXTURES");
    char path[4096];
    snprintf(path, sizeof path, "%s/../../%s", fx ? fx : "tests/fixtures", rel);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    char chunk[4096];
    size_t n;
    while (m && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    if (m)
        fclose(m);
    fclose(f);
    return text;
}

static void test_every_run_row_has_help(void **state)
{
    (void)state;
    size_t rows = 0;
    for (const struct opt *o = RUN_FLAG_ROWS; o->name; o++, rows++) {
        if (!o->help || !*o->help)
            fail_msg("--%s has no help", o->name);
        if (o->type == OPT_ENUM && !o->names)
            fail_msg("--%s is an enumeration without its name table", o->name);
        if (o->type == OPT_CHOICE && !o->choices && !o->choices_fn)
            fail_msg("--%s has no choices", o->name);
        for (const struct opt *p = RUN_FLAG_ROWS; p < o; p++)
            if (strcmp(p->name, o->name) == 0 || p->off == o->off)
                fail_msg("--%s and --%s: one name or one field for two rows", p->name, o->name);
    }
    assert_true(rows > 50 && rows < RUN_FLAGS_MAX);
}

/* Parse the run flags with argv and derive the run's configuration. */
static int run_config_of(int argc, char **argv, struct run_flags *f, struct opt *opts,
                         struct run_config *cfg, char *err)
{
    memset(f, 0, sizeof *f);
    size_t n = 0;
    run_flags_add(f, opts, &n, RUN_FLAGS_MAX, NULL);
    if (opts_parse(opts, argc, argv, NULL, err) != OPTS_OK)
        return -1;
    return run_flags_config(f, opts, cfg, err);
}

static void test_every_run_row_in_config_args(void **state)
{
    (void)state;
    struct run_flags f;
    struct opt opts[RUN_FLAGS_MAX + 1];
    struct run_config cfg;
    char err[ERR_LEN];
    char *argv[] = {"--api-key", "sk-secret",      "--kv-mode", "cpu_only",     "--arrival",
                    "gamma",     "--request-rate", "4",         "--burstiness", "0.5"};
    assert_int_equal(run_config_of(10, argv, &f, opts, &cfg, err), 0);
    for (const struct opt *o = RUN_FLAG_ROWS; o->name; o++) {
        char key[128];
        args_key(o->name, key, sizeof key);
        bool present = json_object_get(cfg.flags, key) != NULL;
        if (o->flags & OPTF_SECRET)
            assert_false(present); /* --api-key is never written */
        else if (!present)
            fail_msg("--%s is missing from config.json args", o->name);
    }
    /* enumerations are recorded by name, parsed once to their enum */
    assert_string_equal(json_string_value(json_object_get(cfg.flags, "kv_mode")), "cpu_only");
    assert_int_equal(cfg.scen.kv_mode, KV_MODE_CPU_ONLY);
    assert_int_equal(cfg.scen.shape.arrival, ARRIVAL_GAMMA);
    assert_true(cfg.scen.shape.burstiness == 0.5);
    assert_true(json_is_null(json_object_get(cfg.flags, "preset"))); /* no default: null */
    assert_true(json_is_null(json_object_get(cfg.flags, "request_seed")));
    run_flags_release(&cfg);
    opts_free(opts);
}

static void test_given_is_asked_by_the_field(void **state)
{
    (void)state;
    struct run_flags f;
    struct opt opts[RUN_FLAGS_MAX + 1];
    struct run_config cfg;
    char err[ERR_LEN];
    char *a1[] = {"--burstiness", "2"}; /* given without --request-rate: refused */
    assert_int_equal(run_config_of(2, a1, &f, opts, &cfg, err), -1);
    assert_string_equal(err, "--arrival, --burstiness, --ramp-up-s and --max-concurrency shape "
                             "the open loop: give --request-rate too");
    opts_free(opts);
    char *a2[] = {"--users", "3"};
    assert_int_equal(run_config_of(2, a2, &f, opts, &cfg, err), -1);
    assert_string_equal(err, "--users: applies to --scenario multi_turn");
    opts_free(opts);
    char *a3[] = {"--scenario", "multi_turn", "--preset", "lmbench-short", "--users", "3"};
    assert_int_equal(run_config_of(6, a3, &f, opts, &cfg, err), 0);
    assert_int_equal(cfg.scen.users, 3);  /* given: wins over the preset */
    assert_int_equal(cfg.scen.rounds, 4); /* the preset's */
    assert_true(opts_given(opts, &f.cfg.scen.users));
    assert_false(opts_given(opts, &f.cfg.scen.rounds));
    run_flags_release(&cfg);
    opts_free(opts);
}

/* Output of a command's --help (stdout captured). */
static char *help_of(const struct cmd *c)
{
    fflush(stdout);
    char path[] = "/tmp/kvbench-help-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDOUT_FILENO);
    assert_true(dup2(fd, STDOUT_FILENO) >= 0);
    char *argv[] = {"--help", NULL};
    int rc = c->run(1, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    assert_int_equal(rc, 0);
    FILE *f = fdopen(fd, "r");
    rewind(f);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    fclose(f);
    unlink(path);
    return text;
}

static void test_every_command_option_has_help(void **state)
{
    (void)state;
    for (const struct cmd *c = CMD_TABLE; c->name; c++) {
        char *text = help_of(c);
        size_t options = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            if (strncmp(line, "  --", 4) != 0)
                continue;
            options++;
            /* "  --name METAVAR" padded to column 38, then the help (or on the next line) */
            const char *help = strlen(line) > 38 ? line + 38 : strtok(NULL, "\n");
            while (help && *help == ' ')
                help++;
            if (!help || !*help || *help == '(' || *help == '[')
                fail_msg("kvbench %s: an option without help: %s", c->name, line);
        }
        if (strcmp(c->name, "report") != 0 && strcmp(c->name, "summary") != 0)
            assert_true(options > 0);
        free(text);
    }
}

/* A command's own struct, with one flag more than run's: what a new flag costs. */
struct with_extra {
    struct run_flags f;
    long long extra;
};
static const struct opt EXTRA_ROWS[] = {
    {.name = "test-extra",
     OPT_AT_INT(struct with_extra, extra),
     .def = "5",
     .min = 1,
     .max = 9,
     .help = "a flag added by one row"},
    {0},
};

static void test_adding_a_row_is_all_it_takes(void **state)
{
    (void)state;
    struct with_extra w;
    memset(&w, 0, sizeof w);
    struct opt opts[RUN_FLAGS_MAX + 2];
    size_t n = 0;
    run_flags_add(&w.f, opts, &n, RUN_FLAGS_MAX + 1, NULL);
    opts_bind(opts, &n, RUN_FLAGS_MAX + 1, EXTRA_ROWS, &w, NULL);
    char err[ERR_LEN];
    char *argv[] = {"--test-extra", "7"};
    assert_int_equal(opts_parse(opts, 2, argv, NULL, err), OPTS_OK);
    assert_int_equal(w.extra, 7);
    assert_true(opts_given(opts, &w.extra));
    /* in --help */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    opts_help(m, "kvbench test", NULL, opts);
    opts_markdown(m, opts);
    fclose(m);
    const char *line = strstr(text, "\n  --test-extra N ");
    assert_non_null(line);
    assert_non_null(strstr(line, "a flag added by one row (default: 5)\n"));
    assert_non_null(strstr(text, "| `--test-extra N` | `5` | a flag added by one row |\n"));
    free(text);
    /* in config.json args, through the function the run uses */
    struct run_config cfg;
    assert_int_equal(run_flags_config(&w.f, opts, &cfg, err), 0);
    assert_int_equal(json_integer_value(json_object_get(cfg.flags, "test_extra")), 7);
    run_flags_release(&cfg);
    /* and out of range it is refused like any other */
    char *bad[] = {"--test-extra=10"};
    assert_int_equal(opts_parse(opts, 1, bad, NULL, err), OPTS_ERROR);
    assert_string_equal(err, "--test-extra: expected an integer from 1 to 9, got '10'");
    opts_free(opts);
}

/* docs/RUN.md's flag table is opts_markdown over the run rows, between its markers. */
static void test_docs_table_is_generated_from_rows(void **state)
{
    (void)state;
    struct run_flags f;
    struct opt opts[RUN_FLAGS_MAX + 1];
    size_t n = 0;
    run_flags_add(&f, opts, &n, RUN_FLAGS_MAX, NULL);
    char *table = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&table, &len);
    opts_markdown(m, opts);
    fclose(m);
    char *doc = source_file("docs/RUN.md");
    assert_non_null(doc);
    const char *begin = strstr(doc, "<!-- run-flags:begin (generated from RUN_FLAG_ROWS) -->\n");
    const char *end = strstr(doc, "<!-- run-flags:end -->");
    assert_non_null(begin);
    assert_non_null(end);
    begin = strchr(begin, '\n') + 1;
    if ((size_t)(end - begin) != len || memcmp(begin, table, len) != 0) {
        if (getenv("KVBENCH_PRINT_DOCS"))
            fputs(table, stderr);
        fail_msg("docs/RUN.md's flag table differs from the rows (KVBENCH_PRINT_DOCS=1 prints "
                 "the table)");
    }
    for (const struct opt *o = opts; o->name; o++) {
        char needle[128];
        snprintf(needle, sizeof needle, "| `--%s", o->name);
        if (!strstr(begin, needle))
            fail_msg("--%s is not in docs/RUN.md", o->name);
    }
    free(doc);
    free(table);
}

/* Every run flag SPEC.md names (its §2.1 table: "| `--name` ..." rows) is a row here. */
static void test_spec_names_are_rows(void **state)
{
    (void)state;
    const char *spec_path = getenv("KVBENCH_SPEC");
    char path[4096];
    if (!spec_path) {
        const char *fx = getenv("KVBENCH_FIXTURES");
        snprintf(path, sizeof path, "%s/../../../shared/SPEC.md", fx ? fx : ".");
        spec_path = access(path, R_OK) == 0 ? path : "/work/shared/SPEC.md";
    }
    FILE *f = fopen(spec_path, "r");
    if (!f)
        skip(); /* SPEC.md lives beside the repository, not in it */
    char line[4096];
    bool in_run = false;
    size_t named = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "#", 1) == 0)
            in_run = strstr(line, "kvbench run") != NULL || strstr(line, "2.1") != NULL;
        if (!in_run || strncmp(line, "| `--", 5) != 0)
            continue;
        /* the first cell: `--a` / `--b`, `--c` (repeatable) */
        char *cell_end = strchr(line + 1, '|');
        if (cell_end)
            *cell_end = '\0';
        for (char *p = strstr(line, "`--"); p; p = strstr(p + 1, "`--")) {
            char name[96];
            if (sscanf(p + 3, "%95[a-z0-9-]", name) != 1)
                continue;
            bool found = false;
            for (const struct opt *o = RUN_FLAG_ROWS; o->name && !found; o++)
                found = strcmp(o->name, name) == 0;
            if (!found)
                fail_msg("SPEC names --%s; no run flag row has it", name);
            named++;
        }
    }
    fclose(f);
    assert_true(named > 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_run_row_has_help),
        cmocka_unit_test(test_every_run_row_in_config_args),
        cmocka_unit_test(test_given_is_asked_by_the_field),
        cmocka_unit_test(test_every_command_option_has_help),
        cmocka_unit_test(test_adding_a_row_is_all_it_takes),
        cmocka_unit_test(test_docs_table_is_generated_from_rows),
        cmocka_unit_test(test_spec_names_are_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
