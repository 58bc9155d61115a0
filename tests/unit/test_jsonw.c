/* Unit tests for util/jsonw: the streaming row writer. Each written text is also parsed back with
 * jansson, so a test fails on invalid JSON as well as on the wrong bytes. */
#include "test_common.h"

#include "util/buf.h"
#include "util/fault.h"
#include "util/jsonw.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>

/* The text is valid JSON; returns the parsed value (caller decrefs). */
static json_t *parsed(const struct buf *b)
{
    json_error_t e;
    json_t *v = json_loads(buf_cstr(b), JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("not JSON (%s): %s", e.text, buf_cstr(b));
    return v;
}

static void test_scalars(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct jsonw w;
    jw_open(&w, &b);
    jw_str(&w, "s", "text");
    jw_str(&w, "none", NULL);
    jw_int(&w, "i", -42);
    jw_num(&w, "ms", 12.5);
    jw_num(&w, "whole", 3);
    jw_num(&w, "zero", 0);
    jw_bool(&w, "t", true);
    jw_bool(&w, "f", false);
    jw_null(&w, "n");
    jw_close(&w);
    assert_false(buf_failed(&b));
    assert_string_equal(buf_cstr(&b), "{\"s\":\"text\",\"none\":null,\"i\":-42,\"ms\":12.5,"
                                      "\"whole\":3.0,\"zero\":0.0,\"t\":true,\"f\":false,"
                                      "\"n\":null}");
    json_t *v = parsed(&b);
    assert_true(json_is_real(json_object_get(v, "whole"))); /* a real, as jansson writes it */
    json_decref(v);
    buf_free(&b);
}

static void test_escaping(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct jsonw w;
    jw_open(&w, &b);
    jw_str(&w, "e", "q\"b\\n\nt\tc\x01 é");
    jw_strn(&w, "nul", "a\0b", 3);
    jw_close(&w);
    assert_false(buf_failed(&b));
    assert_string_equal(buf_cstr(&b),
                        "{\"e\":\"q\\\"b\\\\n\\nt\\tc\\u0001 é\",\"nul\":\"a\\u0000b\"}");
    json_t *v = parsed(&b);
    assert_string_equal(json_string_value(json_object_get(v, "e")), "q\"b\\n\nt\tc\x01 é");
    assert_int_equal(json_string_length(json_object_get(v, "nul")), 3);
    json_decref(v);
    buf_free(&b);
}

static void test_non_finite_is_null(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct jsonw w;
    jw_open(&w, &b);
    jw_num(&w, "nan", NAN);
    jw_num(&w, "inf", INFINITY);
    jw_num(&w, "ninf", -INFINITY);
    jw_begin_array(&w, "a");
    jw_elem_num(&w, NAN);
    jw_elem_num(&w, 1.25);
    jw_end_array(&w);
    jw_close(&w);
    assert_false(buf_failed(&b));
    assert_string_equal(buf_cstr(&b),
                        "{\"nan\":null,\"inf\":null,\"ninf\":null,\"a\":[null,1.25]}");
    json_decref(parsed(&b));
    buf_free(&b);
}

static void test_numbers_match_printf(void **state)
{
    (void)state;
    /* the fast path (ms from ns clocks) and the printf path give the digits of %.15g, or of
     * %.16g / %.17g where 15 would not read back as the same double (0.1 + 0.2, a TPOT as a
     * ratio of two durations), kept a JSON real (".0" added to a whole number) */
    static const double V[] = {0.000123,    1.5,  17.000001,      -2.25,
                               999999999.5, 1e-7, 1e21,           123456789012.0,
                               0.1 + 0.2,   1e23, 12.3456789 / 7, -1.0 / 3};
    for (size_t i = 0; i < sizeof V / sizeof V[0]; i++) {
        struct buf b = BUF_INIT;
        struct jsonw w;
        jw_open(&w, &b);
        jw_num(&w, "x", V[i]);
        jw_close(&w);
        assert_false(buf_failed(&b));
        char want[64];
        int prec = 15, n;
        do
            n = snprintf(want, sizeof want, "{\"x\":%.*g", prec, V[i]);
        while (strtod(want + 5, NULL) != V[i] && ++prec <= 17);
        if (!strpbrk(want + 5, ".e"))
            n += snprintf(want + n, sizeof want - (size_t)n, ".0");
        snprintf(want + n, sizeof want - (size_t)n, "}");
        assert_string_equal(buf_cstr(&b), want);
        json_t *o = parsed(&b);
        assert_true(json_real_value(json_object_get(o, "x")) == V[i]); /* read back exactly */
        json_decref(o);
        buf_free(&b);
    }
    /* the two that 15 digits would have changed */
    struct buf b = BUF_INIT;
    struct jsonw w;
    jw_open(&w, &b);
    jw_num(&w, "a", 0.1 + 0.2);
    jw_num(&w, "b", 1.0 / 3);
    jw_close(&w);
    assert_string_equal(buf_cstr(&b), "{\"a\":0.30000000000000004,\"b\":0.3333333333333333}");
    buf_free(&b);
}

static void test_nesting_arrays_and_raw(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct jsonw w;
    jw_open(&w, &b);
    jw_begin_array(&w, "empty");
    jw_end_array(&w);
    jw_begin_array(&w, "itl");
    jw_elem_num(&w, 1);
    jw_elem_num(&w, 2.5);
    jw_end_array(&w);
    jw_raw(&w, "pre", "{\"k\":[1,2]}");
    jw_object_raw(&w, "obj", "\"a\":1,\"b\":\"x\"", strlen("\"a\":1,\"b\":\"x\""));
    jw_object_raw(&w, "none", "", 0);
    jw_int(&w, "after", 7); /* a member after the nested ones still gets its comma */
    jw_close(&w);
    assert_false(buf_failed(&b));
    assert_string_equal(buf_cstr(&b), "{\"empty\":[],\"itl\":[1.0,2.5],\"pre\":{\"k\":[1,2]},"
                                      "\"obj\":{\"a\":1,\"b\":\"x\"},\"none\":{},\"after\":7}");
    json_t *v = parsed(&b);
    assert_int_equal(json_array_size(json_object_get(v, "itl")), 2);
    assert_int_equal(json_integer_value(json_object_get(v, "after")), 7);
    json_decref(v);
    buf_free(&b);
}

static void test_empty_object(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct jsonw w;
    jw_open(&w, &b);
    jw_close(&w);
    assert_false(buf_failed(&b));
    assert_string_equal(buf_cstr(&b), "{}");
    buf_free(&b);
}

/* A row like the requests.jsonl row, built with every allocation index failed in turn: the
 * buffer says it failed whenever an allocation did, and when none failed the row is whole. */
static void build_row(struct buf *b)
{
    struct jsonw w;
    jw_open(&w, b);
    jw_int(&w, "request_index", 17);
    jw_str(&w, "phase", "warm_A");
    jw_num(&w, "latency_ms", 123.456);
    jw_num(&w, "ttft_ms", NAN);
    jw_str(&w, "error", NULL);
    jw_begin_array(&w, "itl_ms");
    for (int i = 0; i < 400; i++)
        jw_elem_num(&w, 0.5 + i * 1e-3);
    jw_end_array(&w);
    jw_str(&w, "text", "a long enough value \"quoted\" to need its own growth of the buffer");
    jw_close(&w);
}

static void test_failed_append_is_seen(void **state)
{
    (void)state;
    struct buf whole = BUF_INIT;
    build_row(&whole);
    assert_false(buf_failed(&whole));
    bool succeeded = false;
    for (long n = 1; n < 200 && !succeeded; n++) {
        struct buf b = BUF_INIT;
        fault_arm(n, false);
        build_row(&b);
        fault_disarm();
        if (fault_failures() > 0) {
            assert_true(buf_failed(&b));
            assert_null(buf_detach(&b)); /* a failed row cannot be taken as text */
        } else {
            assert_false(buf_failed(&b));
            assert_string_equal(buf_cstr(&b), buf_cstr(&whole));
            succeeded = true;
        }
        buf_free(&b);
    }
    assert_true(succeeded);
    buf_free(&whole);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_non_finite_is_null),
        cmocka_unit_test(test_numbers_match_printf),
        cmocka_unit_test(test_nesting_arrays_and_raw),
        cmocka_unit_test(test_empty_object),
        cmocka_unit_test(test_failed_append_is_seen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
