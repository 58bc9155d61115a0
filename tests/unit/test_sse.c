/* Unit tests for util/sse: events must be identical however the input is split. */
#include "test_common.h"

#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "net/sse.h"

/* Events recorded as "type|data\x1e" so whole sequences compare as strings. */
static int record(void *user, const char *event, const char *data, size_t len)
{
    struct buf *out = user;
    buf_append_str(out, event);
    buf_append_char(out, '|');
    buf_append(out, data, len);
    buf_append_char(out, '\x1e');
    return 0;
}

static void parse_whole(const char *s, size_t len, struct buf *out)
{
    struct sse_parser p;
    sse_init(&p, record, out);
    assert_int_equal(sse_feed(&p, s, len), 0);
    sse_free(&p);
}

static struct buf load_fixture(void)
{
    char path[512], err[ERR_LEN];
    struct buf b = BUF_INIT;
    assert_int_equal(
        fs_read_file(test_fixture("sse/openai_stream.txt", path, sizeof path), &b, 1 << 20, err),
        0);
    return b;
}

static void test_fixture_events(void **state)
{
    (void)state;
    struct buf in = load_fixture();
    struct buf out = BUF_INIT;
    struct sse_parser p;
    sse_init(&p, record, &out);
    assert_int_equal(sse_feed(&p, in.data, in.len), 0);
    assert_int_equal(p.events, 9);
    assert_false(sse_pending(&p));
    assert_non_null(strstr(out.data, "message|first line\nsecond line\x1e"));
    assert_non_null(strstr(out.data, "message|[DONE]\x1e"));
    assert_non_null(strstr(out.data, "\"cached_tokens\":32"));
    /* no event carries a stray CR */
    assert_null(strchr(out.data, '\r'));
    sse_free(&p);
    buf_free(&in);
    buf_free(&out);
}

static void test_every_split_gives_identical_events(void **state)
{
    (void)state;
    struct buf in = load_fixture();
    struct buf ref = BUF_INIT;
    parse_whole(in.data, in.len, &ref);
    struct buf got = BUF_INIT;
    struct sse_parser p;
    sse_init(&p, record, &got);
    for (size_t k = 0; k <= in.len; k++) {
        sse_reset(&p);
        buf_reset(&got);
        assert_int_equal(sse_feed(&p, in.data, k), 0);
        assert_int_equal(sse_feed(&p, in.data + k, in.len - k), 0);
        if (got.len != ref.len || memcmp(got.data, ref.data, ref.len) != 0)
            fail_msg("events differ when split at byte %zu", k);
    }
    /* and one byte at a time */
    sse_reset(&p);
    buf_reset(&got);
    for (size_t k = 0; k < in.len; k++)
        assert_int_equal(sse_feed(&p, in.data + k, 1), 0);
    assert_int_equal(got.len, ref.len);
    assert_memory_equal(got.data, ref.data, ref.len);
    sse_free(&p);
    buf_free(&got);
    buf_free(&ref);
    buf_free(&in);
}

static void test_line_endings_and_fields(void **state)
{
    (void)state;
    const char *s = "data:a\r\rdata: b\r\n\r\ndata\n\nevent: ping\ndata: x\n\n: only comment\n\n"
                    "id: 1\n\ndata:  two spaces\n\n";
    struct buf out = BUF_INIT;
    parse_whole(s, strlen(s), &out);
    assert_string_equal(out.data, "message|a\x1emessage|b\x1emessage|\x1eping|x\x1emessage| two "
                                  "spaces\x1e");
    buf_free(&out);
}

static void test_cr_split_before_lf(void **state)
{
    (void)state;
    /* "\r" ends one chunk and "\n" starts the next: still one line end, not two. */
    struct buf out = BUF_INIT;
    struct sse_parser p;
    sse_init(&p, record, &out);
    assert_int_equal(sse_feed(&p, "data: a\r", 8), 0);
    assert_int_equal(sse_feed(&p, "\ndata: b\r", 9), 0);
    assert_int_equal(sse_feed(&p, "\n\r", 2), 0);
    assert_int_equal(sse_feed(&p, "\n", 1), 0);
    assert_string_equal(out.data, "message|a\nb\x1e");
    sse_free(&p);
    buf_free(&out);
}

static void test_bom_and_truncation(void **state)
{
    (void)state;
    struct buf out = BUF_INIT;
    struct sse_parser p;
    sse_init(&p, record, &out);
    assert_int_equal(sse_feed(&p, "\xef\xbb", 2), 0);
    assert_int_equal(sse_feed(&p,
                              "\xbf"
                              "data: x\n\ndata: cut",
                              19),
                     0);
    assert_string_equal(out.data, "message|x\x1e");
    assert_true(sse_pending(&p)); /* the truncated event is not dispatched */
    sse_free(&p);
    buf_free(&out);
}

static void test_huge_line(void **state)
{
    (void)state;
    size_t n = 4u << 20; /* a 4 MiB data line */
    char *big = malloc(n + 16);
    memcpy(big, "data: ", 6);
    memset(big + 6, 'q', n);
    memcpy(big + 6 + n, "\n\n", 2);
    struct buf out = BUF_INIT;
    struct sse_parser p;
    sse_init(&p, record, &out);
    for (size_t off = 0; off < n + 8; off += 1000) {
        size_t len = n + 8 - off < 1000 ? n + 8 - off : 1000;
        assert_int_equal(sse_feed(&p, big + off, len), 0);
    }
    assert_int_equal(p.events, 1);
    assert_int_equal(out.len, strlen("message|") + n + 1);
    sse_free(&p);
    buf_free(&out);
    free(big);
}

static int stop_after_first(void *user, const char *event, const char *data, size_t len)
{
    (void)event;
    (void)data;
    (void)len;
    int *count = user;
    return ++*count == 1 ? 5 : 0;
}

static void test_callback_can_stop(void **state)
{
    (void)state;
    int count = 0;
    struct sse_parser p;
    sse_init(&p, stop_after_first, &count);
    assert_int_equal(sse_feed(&p, "data: 1\n\ndata: 2\n\n", 18), 5);
    assert_int_equal(count, 1);
    sse_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_events),
        cmocka_unit_test(test_every_split_gives_identical_events),
        cmocka_unit_test(test_line_endings_and_fields),
        cmocka_unit_test(test_cr_split_before_lf),
        cmocka_unit_test(test_bom_and_truncation),
        cmocka_unit_test(test_huge_line),
        cmocka_unit_test(test_callback_can_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
