/* Unit tests for util/opts, the declarative option parser. */
#include "test_common.h"

#include "util/err.h"
#include "util/opts.h"

enum mode { MODE_OFF, MODE_CPU_ONLY, MODE_CPU_DISK };
static const struct name_entry MODES[] = {
    {"off", MODE_OFF}, {"cpu_only", MODE_CPU_ONLY}, {"cpu_disk", MODE_CPU_DISK}, {NULL, 0}};

struct cfg {
    const char *url;
    long long conc;
    double temp;
    bool stream;
    struct opt_range range;
    int mode; /* enum mode */
    double timeout;
    struct opt_list stop;
    struct opt_list tags;
    const char *key;
};

static struct cfg c;
static struct opt table[] = {
    {.name = "base-url",
     .type = OPT_STR,
     .dest = &c.url,
     .def = "http://127.0.0.1:8000",
     .metavar = "URL",
     .help = "server root"},
    {.name = "concurrency",
     .type = OPT_INT,
     .dest = &c.conc,
     .def = "1",
     .min = 1,
     .max = 4096,
     .help = "requests in flight"},
    {.name = "temperature",
     .type = OPT_FLOAT,
     .dest = &c.temp,
     .def = "0.7",
     .min = 0,
     .max = 2,
     .help = "sampling temperature"},
    {.name = "stream", .type = OPT_BOOL, .dest = &c.stream, .help = "use SSE"},
    {.name = "short-range",
     .type = OPT_RANGE,
     .dest = &c.range,
     .def = "512:2048",
     .min = 1,
     .max = 1000000,
     .help = "token range"},
    {.name = "kv-mode",
     .type = OPT_ENUM,
     .dest = &c.mode,
     .def = "cpu_disk",
     .names = MODES,
     .help = "mode"},
    {.name = "timeout-s",
     .type = OPT_DURATION,
     .dest = &c.timeout,
     .def = "600",
     .help = "timeout"},
    {.name = "stop", .type = OPT_LIST, .dest = &c.stop, .def = "<|eot_id|>", .help = "stop"},
    {.name = "variant-tag", .type = OPT_LIST, .dest = &c.tags, .help = "tags"},
    {.name = "api-key", .type = OPT_STR, .dest = &c.key, .env = "KVB_TEST_KEY", .help = "key"},
    {0},
};

static int parse(char **argv, int argc, char *err)
{
    opts_free(table);
    memset(&c, 0, sizeof c);
    return opts_parse(table, argc, argv, NULL, err);
}

static void test_defaults_applied(void **state)
{
    (void)state;
    char err[ERR_LEN];
    unsetenv("KVB_TEST_KEY");
    assert_int_equal(parse(NULL, 0, err), OPTS_OK);
    assert_string_equal(c.url, "http://127.0.0.1:8000");
    assert_int_equal(c.conc, 1);
    assert_true(c.temp == 0.7);
    assert_false(c.stream);
    assert_int_equal(c.range.min, 512);
    assert_int_equal(c.range.max, 2048);
    assert_int_equal(c.mode, MODE_CPU_DISK);
    assert_true(c.timeout == 600);
    assert_int_equal(c.stop.n, 1);
    assert_string_equal(c.stop.items[0], "<|eot_id|>");
    assert_int_equal(c.tags.n, 0);
    assert_null(c.key);
    assert_false(opts_given(table, &c.conc));
}

static void test_both_forms_and_repeats(void **state)
{
    (void)state;
    char err[ERR_LEN];
    char *argv[] = {"--base-url=http://h:1",
                    "--concurrency",
                    "8",
                    "--stream",
                    "--short-range",
                    "10:20",
                    "--kv-mode=cpu_only",
                    "--timeout-s",
                    "500ms",
                    "--stop",
                    "A",
                    "--stop=B",
                    "--variant-tag",
                    "x",
                    "--temperature",
                    "0"};
    assert_int_equal(parse(argv, 16, err), OPTS_OK);
    assert_string_equal(c.url, "http://h:1");
    assert_int_equal(c.conc, 8);
    assert_true(opts_given(table, &c.conc));
    assert_true(opts_given(table, &c.temp));
    assert_false(opts_given(table, &c.key));
    assert_true(c.stream);
    assert_int_equal(c.range.min, 10);
    assert_int_equal(c.range.max, 20);
    assert_int_equal(c.mode, MODE_CPU_ONLY);
    assert_true(c.timeout > 0.4999 && c.timeout < 0.5001);
    assert_int_equal(c.stop.n, 2); /* the default is dropped at the first explicit --stop */
    assert_string_equal(c.stop.items[0], "A");
    assert_string_equal(c.stop.items[1], "B");
    assert_int_equal(c.tags.n, 1);
    assert_true(c.temp == 0);
}

static void test_bool_forms(void **state)
{
    (void)state;
    char err[ERR_LEN];
    char *a1[] = {"--stream=false"};
    assert_int_equal(parse(a1, 1, err), OPTS_OK);
    assert_false(c.stream);
    char *a2[] = {"--stream", "--no-stream"};
    assert_int_equal(parse(a2, 2, err), OPTS_OK);
    assert_false(c.stream);
    char *a3[] = {"--stream=maybe"};
    assert_int_equal(parse(a3, 1, err), OPTS_ERROR);
    assert_string_equal(err, "--stream: expected true or false, got 'maybe'");
}

static void expect_error(char **argv, int argc, const char *msg)
{
    char err[ERR_LEN];
    assert_int_equal(parse(argv, argc, err), OPTS_ERROR);
    assert_string_equal(err, msg);
    assert_null(strchr(err, '\n'));
}

static void test_errors_name_flag_and_expectation(void **state)
{
    (void)state;
    char *a1[] = {"--no-such-flag"};
    expect_error(a1, 1, "unknown option --no-such-flag");
    char *a2[] = {"--concurency", "4"};
    expect_error(a2, 2, "unknown option --concurency (did you mean --concurrency?)");
    char *a3[] = {"--concurrency"};
    expect_error(a3, 1, "--concurrency: missing value (expected N)");
    char *a4[] = {"--concurrency", "abc"};
    expect_error(a4, 2, "--concurrency: expected an integer from 1 to 4096, got 'abc'");
    char *a5[] = {"--concurrency", "0"};
    expect_error(a5, 2, "--concurrency: expected an integer from 1 to 4096, got '0'");
    char *a6[] = {"--concurrency", "5x"};
    expect_error(a6, 2, "--concurrency: expected an integer from 1 to 4096, got '5x'");
    char *a7[] = {"--temperature", "nan"};
    expect_error(a7, 2, "--temperature: expected a number from 0 to 2, got 'nan'");
    char *a8[] = {"--short-range", "20:10"};
    expect_error(a8, 2,
                 "--short-range: expected MIN:MAX integers with 1 <= MIN <= MAX <= 1000000, got "
                 "'20:10'");
    char *a9[] = {"--kv-mode", "gpu"};
    expect_error(a9, 2, "--kv-mode: expected one of off, cpu_only, cpu_disk, got 'gpu'");
    char *a10[] = {"--timeout-s", "soon"};
    expect_error(a10, 2, "--timeout-s: expected a duration (e.g. 30, 500ms, 2m), got 'soon'");
    char *a11[] = {"-x"};
    expect_error(a11, 1, "unknown option '-x' (options are spelled --name)");
    char *a12[] = {"stray"};
    expect_error(a12, 1, "unexpected argument 'stray'");
    char *a13[] = {"--short-range", "5"};
    expect_error(a13, 2,
                 "--short-range: expected MIN:MAX integers with 1 <= MIN <= MAX <= 1000000, got "
                 "'5'");
    char *a14[] = {"--concurrency", "99999999999999999999999"};
    expect_error(
        a14, 2, "--concurrency: expected an integer from 1 to 4096, got '99999999999999999999999'");
}

static void test_no_default_is_empty(void **state)
{
    (void)state;
    char err[ERR_LEN];
    unsetenv("KVB_TEST_KEY");
    opts_free(table);
    memset(&c, 0x5a, sizeof c); /* garbage where the values go */
    c.stop.items = NULL;
    c.tags.items = NULL;
    assert_int_equal(opts_parse(table, 0, NULL, NULL, err), OPTS_OK);
    assert_null(c.key); /* no default, no env: NULL, not the garbage */
    assert_false(c.stream);
}

static void test_env_default(void **state)
{
    (void)state;
    char err[ERR_LEN];
    setenv("KVB_TEST_KEY", "secret", 1);
    assert_int_equal(parse(NULL, 0, err), OPTS_OK);
    assert_string_equal(c.key, "secret");
    char *a[] = {"--api-key", "given"};
    assert_int_equal(parse(a, 2, err), OPTS_OK);
    assert_string_equal(c.key, "given");
    unsetenv("KVB_TEST_KEY");
}

static void test_help_and_positional(void **state)
{
    (void)state;
    char err[ERR_LEN];
    char *a1[] = {"--concurrency", "2", "--help"};
    assert_int_equal(parse(a1, 3, err), OPTS_HELP);
    const char *items[2];
    struct opt_positional pos = {.metavar = "PATH", .max = 2, .items = items};
    char *a2[] = {"a", "--stream", "--", "--b"};
    opts_free(table);
    assert_int_equal(opts_parse(table, 4, a2, &pos, err), OPTS_OK);
    assert_int_equal(pos.n, 2);
    assert_string_equal(items[0], "a");
    assert_string_equal(items[1], "--b");
    char *a3[] = {"a", "b", "c"};
    assert_int_equal(opts_parse(table, 3, a3, &pos, err), OPTS_ERROR);
    assert_string_equal(err, "too many PATH arguments (at most 2)");
}

static void test_help_text_shows_defaults(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    opts_help(f, "kvbench test [options]", "Does things.", table);
    fclose(f);
    assert_non_null(strstr(text, "Usage: kvbench test [options]"));
    assert_non_null(strstr(text, "--base-url URL"));
    assert_non_null(strstr(text, "(default: http://127.0.0.1:8000)"));
    assert_non_null(strstr(text, "[off|cpu_only|cpu_disk]"));
    assert_non_null(strstr(text, "(repeatable)"));
    assert_non_null(strstr(text, "$KVB_TEST_KEY"));
    free(text);
}

static void test_durations(void **state)
{
    (void)state;
    double s;
    assert_int_equal(opts_parse_duration("2m", &s), 0);
    assert_true(s == 120);
    assert_int_equal(opts_parse_duration("1h", &s), 0);
    assert_true(s == 3600);
    assert_int_equal(opts_parse_duration("0.25", &s), 0);
    assert_true(s == 0.25);
    assert_int_equal(opts_parse_duration("", &s), -1);
    assert_int_equal(opts_parse_duration("5 s", &s), -1);
}

static int teardown(void **state)
{
    (void)state;
    opts_free(table);
    return 0;
}

/* Rows kept as file-level data: values at offsets into a struct, bound by opts_bind. */
struct bound {
    long long n;
    int mode; /* enum mode; -1 when not given and no default */
    const char *pick;
    double x;
};
static const char *const PICKS[] = {"left", "right", NULL};
static const char *const *picks(void)
{
    return PICKS;
}
static const struct opt ROWS[] = {
    {.name = "n", OPT_AT_INT(struct bound, n), .def = "3", .min = 1, .max = 9, .help = "n"},
    {.name = "mode", OPT_AT_ENUM(struct bound, mode, MODES), .help = "mode"},
    {.name = "pick",
     OPT_AT_CHOICE(struct bound, pick),
     .choices_fn = picks,
     .def = "left",
     .help = "pick"},
    {.name = "x", OPT_AT_FLOAT(struct bound, x), .def = "1.5", .help = "x"},
    {0},
};

static void test_bound_rows(void **state)
{
    (void)state;
    char err[ERR_LEN];
    struct bound b1, b2;
    struct opt o1[8], o2[8];
    size_t n1 = 0, n2 = 0;
    assert_int_equal(opts_bind(o1, &n1, 7, ROWS, &b1, NULL), 4);
    const void *const skip[] = {&b2.x, NULL};
    assert_int_equal(opts_bind(o2, &n2, 7, ROWS, &b2, skip), 3);
    assert_ptr_equal(o1[0].dest, &b1.n);
    assert_ptr_equal(o2[1].dest, &b2.mode);
    assert_null(opts_find(o2, &b2.x)); /* left out */
    assert_null(o1[4].name);           /* terminated */
    opts_set_default(o2, &b2.n, "7");
    char *a[] = {"--mode", "cpu_only", "--pick=right"};
    assert_int_equal(opts_parse(o1, 3, a, NULL, err), OPTS_OK);
    assert_int_equal(opts_parse(o2, 0, NULL, NULL, err), OPTS_OK);
    assert_int_equal(b1.n, 3);
    assert_int_equal(b2.n, 7);
    assert_int_equal(b1.mode, MODE_CPU_ONLY);
    assert_int_equal(b2.mode, -1); /* no default: none, not the first name */
    assert_string_equal(b1.pick, "right");
    assert_string_equal(b2.pick, "left");
    assert_true(b1.x == 1.5);
    assert_true(opts_given(o1, &b1.mode));
    assert_false(opts_given(o1, &b1.n));
    assert_false(opts_given(o2, &b2.mode));
    char *bad[] = {"--pick", "middle"};
    assert_int_equal(opts_parse(o1, 2, bad, NULL, err), OPTS_ERROR);
    assert_string_equal(err, "--pick: expected one of left, right, got 'middle'");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    opts_help(f, "t", NULL, o1);
    fclose(f);
    assert_non_null(strstr(text, "--mode CHOICE"));
    assert_non_null(strstr(text, "[off|cpu_only|cpu_disk]"));
    assert_non_null(strstr(text, "[left|right] (default: left)"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_applied),
        cmocka_unit_test(test_both_forms_and_repeats),
        cmocka_unit_test(test_bool_forms),
        cmocka_unit_test(test_errors_name_flag_and_expectation),
        cmocka_unit_test(test_no_default_is_empty),
        cmocka_unit_test(test_env_default),
        cmocka_unit_test(test_help_and_positional),
        cmocka_unit_test(test_help_text_shows_defaults),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_bound_rows),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
