/*
 * Unit tests for the byte-level BPE: merge order (lowest rank first, leftmost on ties),
 * ignore_merges, added tokens (leftmost-longest, before pre-tokenization), gap pieces, NFC,
 * JSON escapes in the vocabulary, invalid UTF-8 input, decoding, thread safety of the cache,
 * and the streaming vocabulary reader checked against jansson on the real Llama 3 file.
 */
#include "test_common.h"

#include "model/bpe.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"

#include <pthread.h>

/* A small byte-level tokenizer: all 256 byte tokens (ids 0..255 in byte-level order), plus
 * merged tokens from `extra` (byte-level strings) and merges. */
static char *make_json(const char *extra_vocab, const char *merges, const char *added,
                       const char *normalizer, bool ignore_merges)
{
    /* GPT-2 byte-level alphabet */
    struct buf b = BUF_INIT;
    buf_append_str(&b, "{\"version\":\"1.0\",\"added_tokens\":[");
    buf_append_str(&b, added ? added : "");
    buf_printf(&b, "],\"normalizer\":%s,", normalizer ? normalizer : "null");
    buf_append_str(&b, "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":"
                       "\"Split\",\"pattern\":{\"Regex\":\" ?\\\\p{L}+|\\\\p{N}+| ?[^\\\\s\\\\p{L}"
                       "\\\\p{N}]+|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":"
                       "\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,"
                       "\"use_regex\":false}]},\"post_processor\":null,\"decoder\":{\"type\":"
                       "\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":"
                       "null,\"byte_fallback\":false,");
    buf_printf(&b, "\"ignore_merges\":%s,\"vocab\":{", ignore_merges ? "true" : "false");
    int n = 0;
    for (int byte = 0; byte < 256; byte++) {
        bool direct = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) ||
                      (byte >= 174 && byte <= 255);
        int cp = direct ? byte : 256 + n++;
        char u[8];
        if (cp == '"' || cp == '\\')
            snprintf(u, sizeof u, "\\%c", cp);
        else if (cp < 0x80)
            snprintf(u, sizeof u, "%c", cp);
        else
            snprintf(u, sizeof u, "\\u%04x", cp); /* escapes exercise the reader */
        buf_printf(&b, "%s\"%s\":%d", byte ? "," : "", u, byte);
    }
    buf_append_str(&b, extra_vocab ? extra_vocab : "");
    buf_printf(&b, "},\"merges\":[%s]}}", merges ? merges : "");
    return buf_detach(&b);
}

static struct bpe *load(char *json)
{
    char err[ERR_LEN];
    struct bpe *b = bpe_load(json, strlen(json), err);
    if (!b)
        fail_msg("bpe_load: %s", err);
    free(json);
    return b;
}

static size_t encode(struct bpe *b, const char *s, uint32_t *out, size_t max)
{
    struct tok_ids ids = {0};
    assert_int_equal(bpe_encode(b, s, strlen(s), &ids), 0);
    size_t n = ids.n < max ? ids.n : max;
    if (n)
        memcpy(out, ids.ids, n * sizeof *out);
    size_t total = ids.n;
    tok_ids_free(&ids);
    return total;
}

static void test_merge_order(void **state)
{
    (void)state;
    /* tokens: 256 "ab", 257 "bc", 258 "abc"; ranks: b c (0) before a b (1), then ab c (2) */
    struct bpe *b = load(make_json(",\"ab\":256,\"bc\":257,\"abc\":258,\"aa\":259",
                                   "\"b c\",\"a b\",\"ab c\",\"a a\"", NULL, NULL, false));
    uint32_t ids[16];
    /* "abc": b c merges first (rank 0) -> a bc; "a bc" is not a merge: [a, bc] */
    assert_int_equal(encode(b, "abc", ids, 16), 2);
    assert_int_equal(ids[0], 'a');
    assert_int_equal(ids[1], 257);
    /* "abd": a b -> ab */
    assert_int_equal(encode(b, "abd", ids, 16), 2);
    assert_int_equal(ids[0], 256);
    /* "aaa": leftmost on ties: [aa, a] */
    assert_int_equal(encode(b, "aaa", ids, 16), 2);
    assert_int_equal(ids[0], 259);
    assert_int_equal(ids[1], 'a');
    /* pre-tokens are separate words: " ab" is [space-prefix? no merge for "Ġa"] */
    assert_int_equal(encode(b, "ab ab", ids, 16), 3);
    bpe_free(b);
}

static void test_ignore_merges(void **state)
{
    (void)state;
    /* "abc" is in the vocabulary but no merge path reaches it from [a, bc] */
    struct bpe *b =
        load(make_json(",\"ab\":256,\"bc\":257,\"abc\":258", "\"b c\",\"a b\"", NULL, NULL, true));
    uint32_t ids[8];
    assert_int_equal(encode(b, "abc", ids, 8), 1);
    assert_int_equal(ids[0], 258);
    bpe_free(b);
}

static void test_added_tokens(void **state)
{
    (void)state;
    const char *added = "{\"id\":300,\"content\":\"<|x|>\",\"single_word\":false,\"lstrip\":false,"
                        "\"rstrip\":false,\"normalized\":false,\"special\":true},"
                        "{\"id\":301,\"content\":\"<|x|>y\",\"single_word\":false,\"lstrip\":"
                        "false,\"rstrip\":false,\"normalized\":false,\"special\":true}";
    struct bpe *b = load(make_json(NULL, NULL, added, NULL, false));
    uint32_t ids[16];
    /* leftmost-longest: "<|x|>y" wins over "<|x|>" */
    assert_int_equal(encode(b, "a<|x|>yb<|x|>", ids, 16), 4);
    assert_int_equal(ids[0], 'a');
    assert_int_equal(ids[1], 301);
    assert_int_equal(ids[2], 'b');
    assert_int_equal(ids[3], 300);
    struct buf out = BUF_INIT;
    char err[ERR_LEN];
    assert_int_equal(bpe_decode(b, ids, 4, &out, err), 0);
    assert_string_equal(out.data, "a<|x|>yb<|x|>");
    uint32_t bad = 5000;
    assert_int_equal(bpe_decode(b, &bad, 1, &out, err), -1);
    assert_non_null(strstr(err, "5000"));
    buf_free(&out);
    bpe_free(b);
}

static void test_nfc_and_bytes(void **state)
{
    (void)state;
    struct bpe *b = load(make_json(NULL, NULL, NULL, "{\"type\":\"NFC\"}", false));
    uint32_t a[8], c[8];
    /* e + combining acute composes to U+00E9 before tokenizing */
    size_t na = encode(b, "e\xcc\x81", a, 8);
    size_t nc = encode(b, "\xc3\xa9", c, 8);
    assert_int_equal(na, nc);
    assert_memory_equal(a, c, na * sizeof *a);
    /* invalid UTF-8 is tokenized byte by byte, never a crash */
    uint32_t ids[8];
    assert_int_equal(encode(b, "a\xff\xfe", ids, 8), 3);
    assert_int_equal(ids[1], 0xff);
    assert_int_equal(encode(b, "", ids, 8), 0);
    bpe_free(b);
}

static void test_refusals(void **state)
{
    (void)state;
    char err[ERR_LEN];
    char *j = make_json(NULL, "\"x y\"", NULL, NULL, false);
    assert_null(bpe_load(j, strlen(j), err)); /* merge of tokens not in the vocabulary */
    assert_non_null(strstr(err, "is not in the vocabulary"));
    free(j);
    j = make_json(NULL, NULL, NULL, "{\"type\":\"Lowercase\"}", false);
    assert_null(bpe_load(j, strlen(j), err));
    assert_non_null(strstr(err, "the normalizer 'Lowercase'"));
    free(j);
    assert_null(bpe_load("{}", 2, err));
    assert_null(bpe_load("{\"model\": {\"vocab\": {}, \"merges\": []", 35, err));
    assert_null(bpe_load("", 0, err));
}

struct worker {
    struct bpe *b;
    size_t want;
    int ok;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    w->ok = 1;
    for (int i = 0; i < 2000; i++) {
        struct tok_ids ids = {0};
        const char *s = i % 2 ? "abd abc aaa" : "aaa abd abc";
        if (bpe_encode(w->b, s, strlen(s), &ids) < 0 || ids.n != w->want)
            w->ok = 0;
        tok_ids_free(&ids);
    }
    return NULL;
}

static void test_threads_share_the_cache(void **state)
{
    (void)state;
    struct bpe *b = load(make_json(",\"ab\":256,\"bc\":257,\"abc\":258,\"aa\":259",
                                   "\"b c\",\"a b\",\"ab c\",\"a a\"", NULL, NULL, false));
    pthread_t t[4];
    struct worker w[4];
    uint32_t ids[32];
    size_t want = encode(b, "abd abc aaa", ids, 32);
    assert_int_equal(want, encode(b, "aaa abd abc", ids, 32));
    assert_int_equal(want, 8); /* [ab d] [Ġ a bc] [Ġ aa a] */
    for (int i = 0; i < 4; i++) {
        w[i].b = b;
        w[i].want = want;
        pthread_create(&t[i], NULL, hammer, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_true(w[i].ok);
    }
    bpe_free(b);
}

static void test_vocab_reader_matches_jansson(void **state)
{
    (void)state;
    /* Every vocabulary entry of the real Llama 3 file, as jansson reads it, maps to the same id
     * through the streaming reader (after undoing the byte-level alphabet). */
    char path[512], cmd[1100], err[ERR_LEN];
    test_fixture("tokenizers/llama3/tokenizer.json.gz", path, sizeof path);
    snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    struct buf text = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&text, chunk, n);
    assert_int_equal(pclose(f), 0);
    struct bpe *b = bpe_load(text.data, text.len, err);
    assert_non_null(b);
    json_t *root = json_loadb(text.data, text.len, 0, NULL);
    assert_non_null(root);
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    size_t checked = 0;
    const char *key;
    json_t *v;
    /* the byte-level alphabet, inverted */
    int cp_to_byte[324];
    for (int i = 0, k = 0; i < 256; i++) {
        bool direct = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255);
        cp_to_byte[direct ? i : 256 + k++] = i;
    }
    json_object_foreach(vocab, key, v)
    {
        struct buf raw = BUF_INIT;
        for (const unsigned char *p = (const unsigned char *)key; *p;) {
            int cp, len = 1;
            if (*p < 0x80)
                cp = *p;
            else if ((*p >> 5) == 6) {
                cp = (*p & 0x1f) << 6 | (p[1] & 0x3f);
                len = 2;
            } else {
                cp = 0xfffd;
                len = 3;
            }
            assert_true(cp < 324);
            buf_append_char(&raw, (char)cp_to_byte[cp]);
            p += len;
        }
        assert_int_equal(bpe_token_id(b, raw.data, raw.len), json_integer_value(v));
        buf_free(&raw);
        checked++;
    }
    assert_int_equal(checked, 128000);
    assert_int_equal(bpe_vocab_size(b), 128256);
    json_decref(root);
    bpe_free(b);
    buf_free(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_order),
        cmocka_unit_test(test_ignore_merges),
        cmocka_unit_test(test_added_tokens),
        cmocka_unit_test(test_nfc_and_bytes),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_threads_share_the_cache),
        cmocka_unit_test(test_vocab_reader_matches_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
