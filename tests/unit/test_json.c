/* Unit tests for util/json and util/sha256. */
#include "test_common.h"

#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/sha256.h"

static void test_sha256_known_vectors(void **state)
{
    (void)state;
    char hex[SHA256_HEX_LEN];
    assert_int_equal(sha256_hex("", 0, hex), 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(sha256_hex("abc", 3, hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_sha256_file(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[512], hex[SHA256_HEX_LEN], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/f", dir);
    assert_int_equal(fs_write_atomic(path, "abc", 3, err), 0);
    assert_int_equal(sha256_file_hex(path, hex, err), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(sha256_file_hex("/nonexistent/x", hex, err), -1);
    assert_non_null(strstr(err, "/nonexistent/x"));
    fs_remove_tree(dir, NULL);
    free(dir);
}

static void test_canonical_sorted_compact(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:f, s:i, s:[s,s], s:b, s:s}", "temperature", 0.7, "max_tokens", 256,
                          "stop", "<|eot_id|>", "x", "stream", 0, "name", "caf\xc3\xa9");
    char *s = json_canonical(v);
    assert_string_equal(s, "{\"max_tokens\":256,\"name\":\"caf\\u00e9\",\"stop\":[\"<|eot_id|>\","
                           "\"x\"],\"stream\":false,\"temperature\":0.7}");
    /* Insertion order must not matter. */
    json_t *w = json_pack("{s:s, s:b, s:[s,s], s:i, s:f}", "name", "caf\xc3\xa9", "stream", 0,
                          "stop", "<|eot_id|>", "x", "max_tokens", 256, "temperature", 0.7);
    char *t = json_canonical(w);
    assert_string_equal(s, t);
    char h1[65], h2[65];
    assert_int_equal(json_canonical_sha256(v, h1), 0);
    assert_int_equal(json_canonical_sha256(w, h2), 0);
    assert_string_equal(h1, h2);
    free(s);
    free(t);
    json_decref(v);
    json_decref(w);
}

static void test_getters_fallbacks(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:s, s:i, s:f, s:b, s:n}", "s", "v", "i", 5, "f", 2.5, "b", 1, "n");
    assert_string_equal(json_get_str(o, "s", "d"), "v");
    assert_string_equal(json_get_str(o, "i", "d"), "d");
    assert_int_equal(json_get_int(o, "i", -1), 5);
    assert_int_equal(json_get_int(o, "f", -1), -1);
    assert_true(json_get_num(o, "i", 0) == 5.0);
    assert_true(json_get_num(o, "f", 0) == 2.5);
    assert_true(json_get_num(o, "missing", 9) == 9.0);
    assert_true(json_get_bool(o, "b", false));
    assert_false(json_get_bool(o, "s", false));
    double d;
    assert_false(json_get_num_strict(o, "n", &d));
    assert_true(json_get_num(NULL, "x", 3) == 3.0);
    json_decref(o);
}

static void test_nonfinite_become_null(void **state)
{
    (void)state;
    json_t *o = json_object();
    assert_int_equal(json_put_real(o, "nan", 0.0 / 0.0), 0);
    assert_int_equal(json_put_real(o, "inf", 1.0 / 0.0), 0);
    assert_true(json_is_null(json_object_get(o, "nan")));
    assert_true(json_is_null(json_object_get(o, "inf")));
    json_decref(o);
}

static void test_string_lossy(void **state)
{
    (void)state;
    json_t *s = json_string_lossy("ok\xff\xc3(\xe2\x82\xac", 8);
    assert_non_null(s);
    assert_string_equal(json_string_value(s), "ok\xef\xbf\xbd\xef\xbf\xbd(\xe2\x82\xac");
    json_decref(s);
    /* A UTF-8 sequence cut at the end of a truncated body. */
    s = json_string_lossy("ab\xe2\x82", 4);
    assert_string_equal(json_string_value(s), "ab\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(s);
    /* Overlong encoding and surrogates are not valid UTF-8. */
    s = json_string_lossy("\xc0\xaf\xed\xa0\x80", 5);
    assert_non_null(s);
    json_decref(s);
}

static void test_file_roundtrip_and_lines(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[512], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/x.json", dir);
    json_t *v = json_pack("{s:i}", "a", 1);
    assert_int_equal(json_write_file(path, v, err), 0);
    json_t *r = json_read_file(path, err);
    assert_non_null(r);
    assert_true(json_equal(v, r));
    json_decref(r);
    snprintf(path, sizeof path, "%s/rows.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_int_equal(json_write_line(f, v, err), 0);
    assert_int_equal(json_write_line(f, v, err), 0);
    fclose(f);
    struct buf b = BUF_INIT;
    assert_int_equal(fs_read_file(path, &b, 1 << 20, err), 0);
    assert_string_equal(b.data, "{\"a\":1}\n{\"a\":1}\n");
    buf_free(&b);
    snprintf(path, sizeof path, "%s/bad.json", dir);
    assert_int_equal(fs_write_atomic(path, "{nope", 5, err), 0);
    assert_null(json_read_file(path, err));
    assert_non_null(strstr(err, "bad.json"));
    json_decref(v);
    fs_remove_tree(dir, NULL);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_known_vectors),     cmocka_unit_test(test_sha256_file),
        cmocka_unit_test(test_canonical_sorted_compact), cmocka_unit_test(test_getters_fallbacks),
        cmocka_unit_test(test_nonfinite_become_null),    cmocka_unit_test(test_string_lossy),
        cmocka_unit_test(test_file_roundtrip_and_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
