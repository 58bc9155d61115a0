/* Unit tests for util/clock and util/log. */
#include "test_common.h"

#include "util/clock.h"
#include "util/log.h"

#include <regex.h>

static void test_monotonic_advances(void **state)
{
    (void)state;
    uint64_t a = clock_now_ns();
    clock_sleep_ns(2000000, NULL);
    uint64_t b = clock_now_ns();
    assert_true(b > a);
    assert_true(b - a >= 2000000);
}

static void test_iso_format(void **state)
{
    (void)state;
    char out[CLOCK_ISO_LEN];
    /* 2026-11-28T00:51:45.123456Z */
    uint64_t ns = 1795827105ull * 1000000000ull + 123456789ull;
    clock_iso_utc(ns, out);
    assert_string_equal(out, "2026-11-28T00:51:45.123456Z");
    clock_iso_utc(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000000Z");
    char compact[17];
    clock_compact_utc(ns, compact);
    assert_string_equal(compact, "20261128T005145Z");
    /* and back */
    double t;
    assert_int_equal(clock_parse_iso("2026-11-28T00:51:45.123456Z", &t), 0);
    assert_float_equal(t, 1795827105.123456, 1e-6);
    assert_int_equal(clock_parse_iso("1970-01-01T00:00:00Z", &t), 0);
    assert_float_equal(t, 0, 0);
    assert_int_equal(clock_parse_iso("2026-11-28 00:51:45Z", &t), -1);
    assert_int_equal(clock_parse_iso("2026-11-28T00:51:45.1", &t), -1);
    assert_int_equal(clock_parse_iso("2026-13-28T00:51:45Z", &t), -1);
    assert_int_equal(clock_parse_iso("", &t), -1);
}

static void test_iso_now_shape(void **state)
{
    (void)state;
    char out[CLOCK_ISO_LEN];
    clock_iso_utc(clock_wall_ns(), out);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$",
                             REG_EXTENDED),
                     0);
    assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
    regfree(&re);
}

static void test_log_levels(void **state)
{
    (void)state;
    enum log_level l;
    assert_int_equal(log_level_parse("debug", &l), 0);
    assert_int_equal(l, LOG_DEBUG);
    assert_int_equal(log_level_parse("WARNING", &l), 0);
    assert_int_equal(l, LOG_WARNING);
    assert_int_equal(log_level_parse("warn", &l), 0);
    assert_int_equal(l, LOG_WARNING);
    assert_int_equal(log_level_parse("ERROR", &l), 0);
    assert_int_equal(l, LOG_ERROR);
    assert_int_equal(log_level_parse("loud", &l), -1);
}

static void test_log_output_format(void **state)
{
    (void)state;
    /* Redirect stderr to a file and check one formatted line appears, and a filtered one not. */
    char path[] = "/tmp/kvbench-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    log_set_level(LOG_WARNING);
    log_info("hidden %d", 1);
    log_warn("shown %d", 2);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    log_set_level(LOG_INFO);
    char text[512] = {0};
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    assert_null(strstr(text, "hidden"));
    assert_non_null(strstr(text, "Z WARNING shown 2\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monotonic_advances), cmocka_unit_test(test_iso_format),
        cmocka_unit_test(test_iso_now_shape),      cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_log_output_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
