/* Unit tests for util/buf. */
#include "test_common.h"

#include "util/buf.h"
#include "util/fault.h"

static void test_append_and_terminate(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_string_equal(buf_cstr(&b), "");
    buf_append_str(&b, "hello");
    buf_append_char(&b, ' ');
    buf_printf(&b, "%d-%s", 42, "x");
    assert_false(buf_failed(&b));
    assert_int_equal(b.len, strlen("hello 42-x"));
    assert_string_equal(b.data, "hello 42-x");
    assert_int_equal(b.data[b.len], '\0');
    buf_free(&b);
}

static void test_growth_keeps_contents(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    for (int i = 0; i < 10000; i++)
        buf_append_char(&b, (char)('a' + i % 26));
    assert_false(buf_failed(&b));
    assert_int_equal(b.len, 10000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(b.data[i], 'a' + i % 26);
    size_t cap = b.cap;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap); /* reset keeps capacity: refilling does not allocate */
    buf_free(&b);
}

static void test_long_printf(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_printf(&b, "<%s>", big);
    assert_false(buf_failed(&b));
    assert_int_equal(b.len, 1001);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[1000], '>');
    buf_free(&b);
}

static void test_consume_truncate_detach(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_append_str(&b, "abcdef");
    buf_consume(&b, 2);
    assert_string_equal(b.data, "cdef");
    buf_truncate(&b, 2);
    assert_string_equal(b.data, "cd");
    buf_consume(&b, 10);
    assert_int_equal(b.len, 0);
    buf_append(&b, "xyz", 3);
    char *s = buf_detach(&b);
    assert_string_equal(s, "xyz");
    assert_null(b.data);
    free(s);
    char *empty = buf_detach(&b);
    assert_non_null(empty);
    assert_string_equal(empty, "");
    free(empty);
}

static void test_embedded_nul(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_append(&b, "a\0b", 3);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 3);
    buf_free(&b);
}

/* A failed growth is sticky: later appends do nothing, the contents stay what they were, and
 * neither detach nor the check lets the short text pass for the whole. */
static void test_failure_is_sticky(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_append_str(&b, "kept");
    char big[300];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fault_arm(1, false); /* the next growth fails, once */
    buf_printf(&b, "%s", big);
    fault_disarm();
    assert_true(buf_failed(&b));
    assert_string_equal(buf_cstr(&b), "kept");
    buf_append_str(&b, "more"); /* memory is back, but the row is already incomplete */
    assert_true(buf_failed(&b));
    assert_string_equal(buf_cstr(&b), "kept");
    assert_null(buf_detach(&b)); /* and the buffer is freed */
    assert_null(b.data);
    assert_false(buf_failed(&b));
    buf_append_str(&b, "fresh");
    assert_false(buf_failed(&b));
    assert_string_equal(buf_cstr(&b), "fresh");
    buf_free(&b);
}

/* Reset starts a new text: the failure of the last one does not stick to it. A size hint that
 * cannot be met is not a failure. */
static void test_reset_clears_and_hint_never_fails(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    fault_arm(1, false);
    buf_append_str(&b, "x");
    fault_disarm();
    assert_true(buf_failed(&b));
    buf_reset(&b);
    assert_false(buf_failed(&b));
    buf_append_str(&b, "y");
    fault_arm(1, false);
    buf_reserve_hint(&b, 1 << 20);
    fault_disarm();
    assert_false(buf_failed(&b));
    assert_string_equal(buf_cstr(&b), "y");
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -1); /* impossible: refused and marked */
    assert_true(buf_failed(&b));
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_terminate),
        cmocka_unit_test(test_growth_keeps_contents),
        cmocka_unit_test(test_long_printf),
        cmocka_unit_test(test_consume_truncate_detach),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_failure_is_sticky),
        cmocka_unit_test(test_reset_clears_and_hint_never_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
