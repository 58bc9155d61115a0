/* Unit tests for the heuristic tokenizer and token ids (util/tokens). */
#include "test_common.h"

#include "model/tokens.h"

static void test_counts(void **state)
{
    (void)state;
    assert_int_equal(tok_heuristic_count("", 0), 0);
    assert_int_equal(tok_heuristic_count("   \n\t ", 6), 0);
    assert_int_equal(tok_heuristic_count("hello", 5), 1);
    assert_int_equal(tok_heuristic_count("hello world", 11), 2);
    assert_int_equal(tok_heuristic_count("a,b", 3), 3);
    assert_int_equal(tok_heuristic_count("foo_bar42 baz", 13), 2);
    assert_int_equal(tok_heuristic_count("<|eot_id|>", 10), 5); /* < | eot_id | > */
    assert_int_equal(tok_heuristic_count("caf\xc3\xa9 na\xc3\xafve", 12), 2);
    assert_int_equal(tok_heuristic_count("1. Yes!", 7), 4);
}

static void test_encode_matches_count_and_ids_stable(void **state)
{
    (void)state;
    const char *s = "The cache block, reused: 42 times!";
    struct tok_ids ids = {0};
    assert_int_equal(tok_heuristic_encode(s, strlen(s), &ids), 0);
    assert_int_equal(ids.n, tok_heuristic_count(s, strlen(s)));
    assert_int_equal(ids.ids[0], tok_id("The", 3));
    assert_int_equal(ids.ids[2], tok_id("block", 5));
    assert_int_equal(ids.ids[3], tok_id(",", 1));
    /* the same word always has the same id, wherever it appears */
    struct tok_ids ids2 = {0};
    assert_int_equal(tok_heuristic_encode("block", 5, &ids2), 0);
    assert_int_equal(ids2.ids[0], ids.ids[2]);
    tok_ids_free(&ids);
    tok_ids_free(&ids2);
}

static void test_many_tokens_grow(void **state)
{
    (void)state;
    struct tok_ids ids = {0};
    for (uint32_t i = 0; i < 100000; i++)
        assert_int_equal(tok_ids_push(&ids, i), 0);
    assert_int_equal(ids.n, 100000);
    assert_int_equal(ids.ids[99999], 99999);
    tok_ids_free(&ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_encode_matches_count_and_ids_stable),
        cmocka_unit_test(test_many_tokens_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
