/* libFuzzer target: the SSE parser, fed the input whole and split at a position the input
 * chooses; the two must give the same events. */
#include "util/buf.h"
#include "net/sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int record(void *user, const char *event, const char *data, size_t len)
{
    struct buf *b = user;
    buf_append_str(b, event);
    buf_append_char(b, 0);
    buf_append(b, data, len);
    buf_append_char(b, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0] % size;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (split > n)
        split = n;
    struct buf a = BUF_INIT, b = BUF_INIT;
    struct sse_parser p;
    sse_init(&p, record, &a);
    sse_feed(&p, s, n);
    sse_free(&p);
    sse_init(&p, record, &b);
    sse_feed(&p, s, split);
    sse_feed(&p, s + split, n - split);
    sse_free(&p);
    if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
        abort();
    buf_free(&a);
    buf_free(&b);
    return 0;
}
