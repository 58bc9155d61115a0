/* Unit tests for util/names: the one lookup every enumeration table goes through. */
#include "test_common.h"

#include "util/names.h"

enum colour { RED, GREEN, BLUE = 7 };
static const struct name_entry COLOURS[] = {
    {"red", RED}, {"green", GREEN}, {"blue", BLUE}, {NULL, 0}};

static void test_value_and_name_round_trip(void **state)
{
    (void)state;
    for (int i = 0; COLOURS[i].name != NULL; i++) {
        assert_int_equal(names_value(COLOURS, COLOURS[i].name), COLOURS[i].value);
        assert_string_equal(names_name(COLOURS, COLOURS[i].value), COLOURS[i].name);
    }
    assert_int_equal(names_count(COLOURS), 3);
}

static void test_unknown_is_refused(void **state)
{
    (void)state;
    assert_int_equal(names_value(COLOURS, "Red"), -1); /* exact match only */
    assert_int_equal(names_value(COLOURS, "re"), -1);
    assert_int_equal(names_value(COLOURS, ""), -1);
    assert_int_equal(names_value(COLOURS, NULL), -1);
    assert_null(names_name(COLOURS, 3));
}

static void test_list_joins_in_order(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    names_list(COLOURS, "|", &b);
    assert_string_equal(buf_cstr(&b), "red|green|blue");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_and_name_round_trip),
        cmocka_unit_test(test_unknown_is_refused),
        cmocka_unit_test(test_list_joins_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
