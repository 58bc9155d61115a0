/* Unit tests for load/chunk: the scanner reads the shapes real servers send (it must not decline
 * them, or the hot path is jansson again), and wherever it accepts an input it gives exactly the
 * fields jansson gives - text and reasoning included - on a corpus and on thousands of
 * deterministic mutations of it. */
#include "test_common.h"

#include "load/chunk.h"
#include "util/buf.h"

static const char *const SHAPES[] = {
    /* vLLM / SGLang completions */
    "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1700000000,\"model\":\"m\","
    "\"choices\":[{\"index\":0,\"text\":\" the\",\"logprobs\":null,\"finish_reason\":null,"
    "\"stop_reason\":null}],\"usage\":null}",
    "{\"id\":\"cmpl-1\",\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"length\"}]}",
    "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":"
    "812,\"total_tokens\":1068,\"completion_tokens\":256,\"prompt_tokens_details\":"
    "{\"cached_tokens\":768}}}",
    /* chat deltas (TensorRT-LLM, Dynamo), escapes and non-ASCII text */
    "{\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":\"line\\none \\\"q\\\" \\u00e9\\ud83d\\ude00 caf\xc3\xa9\"},"
    "\"finish_reason\":null}]}",
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"whole answer\"},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}",
    /* llama.cpp */
    "{\"choices\":[{\"text\":\"x\",\"index\":0}],\"timings\":{\"prompt_n\":12,\"cache_n\":800,"
    "\"predicted_ms\":1.5}}",
    /* errors */
    "{\"error\":{\"message\":\"max_num_tokens exceeded\",\"type\":\"invalid_request_error\"}}",
    "{\"error\":\"plain string error\"}",
    "{\"error\":{\"code\":500}}",
    "{\"object\":\"error\",\"message\":\"vLLM style\",\"code\":400}",
    "{\"object\":\"error\"}",
    /* odd but valid */
    " { \"choices\" : [ { \"text\" : null , \"delta\" : { \"content\" : \"no\" } } ] } ",
    "{\"choices\":[{\"delta\":{\"content\":\"a\"}},{\"text\":\"second\"}],\"id\":7}",
    "{\"usage\":{\"prompt_tokens\":1.0,\"completion_tokens\":-3}}",
    "{\"choices\":[{\"text\":\"a\"}],\"choices\":[{\"text\":\"b\"}]}",
    "{\"usage\":{\"prompt_tokens\":9},\"usage\":{\"completion_tokens\":4}}",
    "{\"id\":\"\\u0041bc\",\"choices\":{\"text\":\"not an array\"},\"x\":[1,2.5e3,true,false,{}]}",
    "{}",
    /* chat streams: the role-only first delta (vLLM, SGLang, Dynamo), content null */
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]"
    "}",
    "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null}}]}",
    /* reasoning: DeepSeek / SGLang / older vLLM, newer vLLM, both names, a unary answer cut short
     * while reasoning */
    "{\"id\":\"chatcmpl-2\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":"
    "\"Let me \\u00e9 think\"},\"finish_reason\":null}]}",
    "{\"id\":\"chatcmpl-2\",\"choices\":[{\"index\":0,\"delta\":{\"content\":null,"
    "\"reasoning\":\"hmm\"},\"finish_reason\":null}]}",
    "{\"choices\":[{\"delta\":{\"reasoning\":\"twice\",\"reasoning_content\":\"twice\"}}]}",
    "{\"choices\":[{\"delta\":{\"reasoning_content\":null,\"reasoning\":\"second name\"}}]}",
    "{\"choices\":[{\"delta\":{\"reasoning_content\":7,\"content\":\"ans\"},"
    "\"message\":{\"reasoning\":\"from message\"}}]}",
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,"
    "\"reasoning_content\":\"thinking...\"},\"finish_reason\":\"length\"}],"
    "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":16}}",
    "{\"choices\":[{\"delta\":{\"content\":\"both\",\"reasoning_content\":\"at once\"}}]}",
    "{\"choices\":[{\"delta\":[\"reasoning_content\"],\"message\":{\"reasoning\":\"m\"}}]}",
};

static const char *const DECLINED[] = {
    "[1,2]",                                    /* top level not an object */
    "{\"choices\":[{\"text\":\"a\\u0000b\"}]}", /* NUL */
    "{\"n\":123456789012345678901234}",         /* may not fit */
    "{\"a\":1e999}",
};

static const char *const MALFORMED[] = {
    "",
    "{",
    "{\"a\":}",
    "{\"a\":1,}",
    "{\"a\":\"\x01\"}",
    "{\"a\":\"\xff\"}",
    "{\"a\":01}",
    "{\"a\":\"\\ud800\"}",
    "{\"a\":1} x",
    "{\"a\":tru}",
    "{\"a\":\"\\q\"}",
};

static void same_fields(const struct chunk *a, const struct chunk *b)
{
    assert_int_equal(a->has_text, b->has_text);
    assert_int_equal(a->text_len, b->text_len);
    assert_int_equal(a->has_reasoning, b->has_reasoning);
    assert_int_equal(a->reasoning_len, b->reasoning_len);
    assert_int_equal(a->has_finish, b->has_finish);
    assert_string_equal(a->finish, b->finish);
    assert_int_equal(a->has_id, b->has_id);
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->usage_prompt, b->usage_prompt);
    assert_int_equal(a->usage_completion, b->usage_completion);
    assert_int_equal(a->cached, b->cached);
    assert_int_equal(a->timings_prompt_n, b->timings_prompt_n);
    assert_int_equal(a->timings_cache_n, b->timings_cache_n);
    assert_int_equal(a->meta_cached, b->meta_cached);
    assert_int_equal(a->has_error, b->has_error);
    assert_string_equal(a->error, b->error);
}

static void same_bytes(const struct buf *a, const struct buf *b)
{
    assert_int_equal(a->len, b->len);
    assert_memory_equal(buf_cstr(a), buf_cstr(b), a->len);
}

/* Both readers on s; when the scanner accepts, everything must agree. Returns the scan rc. */
static int compare(const char *s, size_t len)
{
    struct chunk a, b;
    struct buf ta = BUF_INIT, tb = BUF_INIT, ra = BUF_INIT, rb = BUF_INIT;
    int rc = chunk_scan(s, len, &a, &ta, &ra, CHUNK_ALL);
    int jrc = chunk_read_jansson(s, len, &b, &tb, &rb, CHUNK_ALL);
    if (rc == 0) {
        assert_int_equal(jrc, 0); /* never accept what jansson rejects */
        same_fields(&a, &b);
        same_bytes(&ta, &tb);
        same_bytes(&ra, &rb);
    } else {
        /* a declined input leaves the text and the reasoning alone */
        assert_int_equal(ta.len, 0);
        assert_int_equal(ra.len, 0);
    }
    buf_free(&ta);
    buf_free(&tb);
    buf_free(&ra);
    buf_free(&rb);
    return rc;
}

static void test_real_shapes_take_the_fast_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++) {
        assert_int_equal(compare(SHAPES[i], strlen(SHAPES[i])), 0);
    }
    struct chunk c;
    struct buf t = BUF_INIT, r = BUF_INIT;
    assert_int_equal(chunk_read(SHAPES[3], strlen(SHAPES[3]), &c, &t, &r, CHUNK_ALL), 0);
    assert_string_equal(buf_cstr(&t), "line\none \"q\" \xc3\xa9\xf0\x9f\x98\x80 caf\xc3\xa9");
    buf_reset(&t);
    assert_int_equal(chunk_read(SHAPES[2], strlen(SHAPES[2]), &c, &t, &r, CHUNK_ALL), 0);
    assert_int_equal(c.usage_prompt, 812);
    assert_int_equal(c.usage_completion, 256);
    assert_int_equal(c.cached, 768);
    assert_false(c.has_text);
    assert_int_equal(chunk_read(SHAPES[9], strlen(SHAPES[9]), &c, &t, &r, CHUNK_ALL), 0);
    assert_true(c.has_error);
    assert_string_equal(c.error, "vLLM style");
    assert_int_equal(chunk_read(SHAPES[11], strlen(SHAPES[11]), &c, &t, &r, CHUNK_ALL), 0);
    assert_false(c.has_text); /* "text": null is present, so delta is not consulted */
    assert_int_equal(chunk_read(SHAPES[14], strlen(SHAPES[14]), &c, &t, &r, CHUNK_ALL), 0);
    assert_string_equal(buf_cstr(&t), "b"); /* the last duplicate wins */
    assert_int_equal(r.len, 0);
    buf_free(&t);
    buf_free(&r);
}

static void test_declined_and_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof DECLINED / sizeof *DECLINED; i++)
        assert_int_equal(compare(DECLINED[i], strlen(DECLINED[i])), 1);
    for (size_t i = 0; i < sizeof MALFORMED / sizeof *MALFORMED; i++) {
        struct chunk c;
        struct buf t = BUF_INIT, r = BUF_INIT;
        assert_int_equal(chunk_read(MALFORMED[i], strlen(MALFORMED[i]), &c, &t, &r, CHUNK_ALL), -1);
        assert_true(c.malformed[0] != '\0');
        assert_int_equal(t.len, 0);
        assert_int_equal(r.len, 0);
        buf_free(&t);
        buf_free(&r);
    }
}

/* Deterministic mutations: byte flips, deletions, insertions of JSON-significant bytes. */
static void test_mutations_agree(void **state)
{
    (void)state;
    static const char SIG[] = "{}[]\",:\\u0123456789.eE-+ tnfalsr\x80\xc3\xff\x01";
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char m[1024];
    size_t accepted = 0, total = 0;
    for (size_t round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++) {
            size_t n = strlen(SHAPES[i]);
            memcpy(m, SHAPES[i], n);
            for (int k = 0; k < 1 + (int)(round % 3); k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                size_t pos = n ? (size_t)(x % n) : 0;
                char ch = SIG[(x >> 32) % (sizeof SIG - 1)];
                switch ((x >> 40) % 3) {
                case 0:
                    if (n)
                        m[pos] = ch;
                    break;
                case 1:
                    if (n) {
                        memmove(m + pos, m + pos + 1, n - pos - 1);
                        n--;
                    }
                    break;
                default:
                    if (n + 1 < sizeof m) {
                        memmove(m + pos + 1, m + pos, n - pos);
                        m[pos] = ch;
                        n++;
                    }
                }
            }
            total++;
            if (compare(m, n) == 0)
                accepted++;
        }
    }
    /* both branches were exercised */
    assert_true(accepted > total / 20);
    assert_true(accepted < total);
}

/* Through a template primed with one event, every other event reads as it reads alone. */
static void tpl_agrees(const char *prime, const char *s, size_t len)
{
    struct chunk_tpl t = {0};
    struct chunk a, b;
    struct buf ta = BUF_INIT, tb = BUF_INIT, ra = BUF_INIT, rb = BUF_INIT;
    chunk_read_tpl(&t, prime, strlen(prime), &a, &ta, &ra, CHUNK_ALL);
    buf_reset(&ta);
    buf_reset(&ra);
    int rc = chunk_read_tpl(&t, s, len, &a, &ta, &ra, CHUNK_ALL);
    int jrc = chunk_read_jansson(s, len, &b, &tb, &rb, CHUNK_ALL);
    assert_int_equal(rc, jrc);
    if (rc == 0) {
        same_fields(&a, &b);
        same_bytes(&ta, &tb);
        same_bytes(&ra, &rb);
    }
    chunk_tpl_free(&t);
    buf_free(&ta);
    buf_free(&tb);
    buf_free(&ra);
    buf_free(&rb);
}

static void test_template_reads_like_the_scanner(void **state)
{
    (void)state;
    static const char *const STREAM[] = {
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"text\":\" a\",\"finish_reason\":null}]}",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"text\":\" "
        "\\u00e9\\n\",\"finish_reason\":null}]}",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":null}]}",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"text\":\"x\",\"finish_reason\":\"length\"}]}",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"text\":\"a\"b\",\"finish_reason\":null}]}",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"text\":\"a\",\"b\":\"\",\"finish_reason\":null}]"
        "}",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"text\":\"\x01\",\"finish_reason\":null}]}",
        "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}",
    };
    size_t n = sizeof STREAM / sizeof *STREAM;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            tpl_agrees(STREAM[i], STREAM[j], strlen(STREAM[j]));
    /* the fast path is taken: the same bytes around a new text */
    struct chunk_tpl t = {0};
    struct chunk c;
    struct buf tx = BUF_INIT, rx = BUF_INIT;
    assert_int_equal(chunk_read_tpl(&t, STREAM[0], strlen(STREAM[0]), &c, &tx, &rx, 0), 0);
    assert_true(t.ok);
    assert_false(c.has_id); /* not wanted */
    const char *saved = t.bytes.data;
    assert_int_equal(chunk_read_tpl(&t, STREAM[1], strlen(STREAM[1]), &c, &tx, &rx, CHUNK_ID), 0);
    assert_ptr_equal(t.bytes.data, saved);
    assert_memory_equal(t.bytes.data, STREAM[0], strlen(STREAM[0])); /* template unchanged */
    assert_string_equal(c.id, "c");
    assert_string_equal(buf_cstr(&tx), " a \xc3\xa9\n");
    assert_int_equal(rx.len, 0);
    chunk_tpl_free(&t);
    buf_free(&tx);
    buf_free(&rx);
}

/* What chunk_read gives for s (the scanner must take it, and agree with jansson); text and
 * reasoning go to t and r (reset first). */
static struct chunk read_one(const char *s, struct buf *t, struct buf *r)
{
    assert_int_equal(compare(s, strlen(s)), 0);
    buf_reset(t);
    buf_reset(r);
    struct chunk c;
    assert_int_equal(chunk_read(s, strlen(s), &c, t, r, CHUNK_ALL), 0);
    return c;
}

/* A chat stream's role-only first delta carries no output; reasoning is read apart from the
 * text, under either name, once, from the delta before the message. */
static void test_chat_role_and_reasoning(void **state)
{
    (void)state;
    struct buf t = BUF_INIT, r = BUF_INIT;
    struct chunk c = read_one("{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                              "\"content\":\"\"}}]}",
                              &t, &r);
    assert_true(c.has_text);
    assert_int_equal(c.text_len, 0);
    assert_false(c.has_reasoning);
    assert_int_equal(c.reasoning_len, 0);
    c = read_one("{\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}", &t, &r);
    assert_false(c.has_text);
    assert_false(c.has_reasoning);
    c = read_one("{\"choices\":[{\"delta\":{\"content\":null,\"reasoning_content\":\"a\\nb\"}}]}",
                 &t, &r);
    assert_false(c.has_text);
    assert_true(c.has_reasoning);
    assert_int_equal(c.reasoning_len, 3);
    assert_string_equal(buf_cstr(&r), "a\nb");
    assert_int_equal(t.len, 0);
    c = read_one("{\"choices\":[{\"delta\":{\"reasoning\":\"vllm\"}}]}", &t, &r);
    assert_string_equal(buf_cstr(&r), "vllm");
    /* both names: the text once, reasoning_content's */
    c = read_one("{\"choices\":[{\"delta\":{\"reasoning\":\"x\",\"reasoning_content\":\"yy\"}}]}",
                 &t, &r);
    assert_int_equal(c.reasoning_len, 2);
    assert_string_equal(buf_cstr(&r), "yy");
    c = read_one("{\"choices\":[{\"delta\":{\"reasoning_content\":null,\"reasoning\":\"z\"}}]}", &t,
                 &r);
    assert_string_equal(buf_cstr(&r), "z");
    c = read_one("{\"choices\":[{\"delta\":{\"content\":\"ans\",\"reasoning\":\"why\"}}]}", &t, &r);
    assert_string_equal(buf_cstr(&t), "ans");
    assert_string_equal(buf_cstr(&r), "why");
    /* a unary answer cut short while reasoning: content null, reasoning in the message */
    c = read_one("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,"
                 "\"reasoning_content\":\"thinking\"},\"finish_reason\":\"length\"}]}",
                 &t, &r);
    assert_false(c.has_text);
    assert_true(c.has_reasoning);
    assert_string_equal(buf_cstr(&r), "thinking");
    assert_string_equal(c.finish, "length");
    /* the delta's reasoning comes before the message's; a non-string is none */
    c = read_one(
        "{\"choices\":[{\"message\":{\"reasoning\":\"m\"},\"delta\":{\"reasoning\":\"d\"}}]}", &t,
        &r);
    assert_string_equal(buf_cstr(&r), "d");
    c = read_one("{\"choices\":[{\"delta\":{\"reasoning\":5},\"message\":{\"reasoning\":\"m\"}}]}",
                 &t, &r);
    assert_string_equal(buf_cstr(&r), "m");
    /* only choices[0] */
    c = read_one("{\"choices\":[{\"delta\":{}},{\"delta\":{\"reasoning\":\"second\"}}]}", &t, &r);
    assert_false(c.has_reasoning);
    buf_free(&t);
    buf_free(&r);
}

/* A reasoning stream takes the template's fast path too, and reads as jansson reads it; an event
 * with both a text and a reasoning makes no template. */
static void test_template_reasoning(void **state)
{
    (void)state;
    static const char *const STREAM[] = {
        "{\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
        "\"\"},"
        "\"finish_reason\":null}]}",
        "{\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Let\"},"
        "\"finish_reason\":null}]}",
        "{\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\" me \\u00e9\"},"
        "\"finish_reason\":null}]}",
        "{\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Answer\"},"
        "\"finish_reason\":null}]}",
        "{\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\",\"reasoning\":\"hm\"},"
        "\"finish_reason\":null}]}",
        "{\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\",\"reasoning\":\"\"},"
        "\"finish_reason\":null}]}",
        "{\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\",\"reasoning\":\"y\"},"
        "\"finish_reason\":null}]}",
        "{\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\",\"reasoning\":\"\"},"
        "\"finish_reason\":null}]}",
        "{\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\",\"reasoning\":\"y\"},"
        "\"finish_reason\":null}]}",
        "{\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{\"content\":null,\"reasoning\":\"y\"},"
        "\"finish_reason\":null}]}",
        "{\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"z\",\"reasoning\":null},"
        "\"finish_reason\":null}]}",
        "{\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}",
    };
    size_t n = sizeof STREAM / sizeof *STREAM;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            tpl_agrees(STREAM[i], STREAM[j], strlen(STREAM[j]));
    struct chunk_tpl t = {0};
    struct chunk c;
    struct buf tx = BUF_INIT, rx = BUF_INIT;
    assert_int_equal(chunk_read_tpl(&t, STREAM[1], strlen(STREAM[1]), &c, &tx, &rx, 0), 0);
    assert_true(t.ok);
    assert_true(t.reasoning);
    const char *saved = t.bytes.data;
    assert_int_equal(chunk_read_tpl(&t, STREAM[2], strlen(STREAM[2]), &c, &tx, &rx, 0), 0);
    assert_ptr_equal(t.bytes.data, saved);
    assert_memory_equal(t.bytes.data, STREAM[1], strlen(STREAM[1])); /* the fast path */
    assert_int_equal(c.reasoning_len, 6);
    assert_false(c.has_text);
    assert_string_equal(buf_cstr(&rx), "Let me \xc3\xa9");
    assert_int_equal(tx.len, 0);
    /* an event with both: read in full, the template stays the last one-string event */
    assert_int_equal(chunk_read_tpl(&t, STREAM[6], strlen(STREAM[6]), &c, &tx, &rx, 0), 0);
    assert_memory_equal(t.bytes.data, STREAM[1], strlen(STREAM[1]));
    assert_int_equal(c.text_len, 1);
    assert_int_equal(c.reasoning_len, 1);
    /* an empty text beside a reasoning: the reasoning is the string that varies */
    assert_int_equal(chunk_read_tpl(&t, STREAM[8], strlen(STREAM[8]), &c, &tx, &rx, 0), 0);
    assert_true(t.reasoning);
    assert_int_equal(chunk_read_tpl(&t, STREAM[4], strlen(STREAM[4]), &c, &tx, &rx, 0), 0);
    assert_int_equal(c.reasoning_len, 2);
    assert_true(c.has_text);
    assert_int_equal(c.text_len, 0);
    assert_string_equal(buf_cstr(&rx), "Let me \xc3\xa9yyhm");
    assert_string_equal(buf_cstr(&tx), "x");
    chunk_tpl_free(&t);
    buf_free(&tx);
    buf_free(&rx);
}

/* Mutations of each shape through a template primed with the shape itself. */
static void test_template_mutations_agree(void **state)
{
    (void)state;
    uint64_t x = 0x2545f4914f6cdd1dull;
    char m[1024];
    for (size_t round = 0; round < 100; round++) {
        for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++) {
            size_t n = strlen(SHAPES[i]);
            memcpy(m, SHAPES[i], n);
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (n) {
                size_t pos = (size_t)(x % n);
                m[pos] = "\"\\x{}:, \x01\x80"[(x >> 32) % 11];
            }
            tpl_agrees(SHAPES[i], m, n);
        }
    }
}

/* Which field decides a response's reused prompt tokens, in order, and that both readers find
 * SGLang's meta_info. */
static void test_reuse_evidence(void **state)
{
    (void)state;
    const char *src;
    struct reuse_fields f = {-1, -1, -1, -1, -1};
    assert_int_equal(reuse_evidence(&f, &src), -1);
    assert_null(src);
    f.usage_prompt = 100; /* usage alone says nothing about reuse */
    assert_int_equal(reuse_evidence(&f, &src), -1);
    f.timings_prompt_n = 36; /* an older llama.cpp: evaluated 36 of 100 */
    assert_int_equal(reuse_evidence(&f, &src), 64);
    assert_string_equal(src, "usage.prompt_tokens-timings.prompt_n");
    f.timings_prompt_n = 101; /* more evaluated than sent: not evidence */
    assert_int_equal(reuse_evidence(&f, &src), -1);
    f.meta_cached = 12;
    assert_int_equal(reuse_evidence(&f, &src), 12);
    assert_string_equal(src, "meta_info.cached_tokens");
    f.timings_cache_n = 40;
    assert_int_equal(reuse_evidence(&f, &src), 40);
    assert_string_equal(src, "timings.cache_n");
    f.details_cached = 0; /* an explicit 0 is evidence too, and comes first */
    assert_int_equal(reuse_evidence(&f, &src), 0);
    assert_string_equal(src, "usage.prompt_tokens_details.cached_tokens");

    static const char body[] =
        "{\"choices\":[{\"text\":\"x\"}],\"meta_info\":{\"cached_tokens\":77,\"id\":\"a\"}}";
    struct chunk a, b;
    struct buf ta = BUF_INIT, tb = BUF_INIT, ra = BUF_INIT, rb = BUF_INIT;
    assert_int_equal(chunk_scan(body, sizeof body - 1, &a, &ta, &ra, CHUNK_ALL), 0);
    assert_int_equal(chunk_read_jansson(body, sizeof body - 1, &b, &tb, &rb, CHUNK_ALL), 0);
    assert_int_equal(a.meta_cached, 77);
    same_fields(&a, &b);
    buf_free(&ta);
    buf_free(&tb);
    buf_free(&ra);
    buf_free(&rb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_shapes_take_the_fast_path),
        cmocka_unit_test(test_declined_and_malformed),
        cmocka_unit_test(test_reuse_evidence),
        cmocka_unit_test(test_mutations_agree),
        cmocka_unit_test(test_template_reads_like_the_scanner),
        cmocka_unit_test(test_template_mutations_agree),
        cmocka_unit_test(test_chat_role_and_reasoning),
        cmocka_unit_test(test_template_reasoning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
