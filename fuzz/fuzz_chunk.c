/* libFuzzer target: the completion-chunk scanner against jansson. Whenever the scanner accepts
 * an input, jansson must accept it too and every field must be equal, the text and the reasoning
 * included. The input is also split at its first newline into two events: the second, read
 * through a template primed with the first, must read as jansson reads it alone. */
#include "load/chunk.h"
#include "util/buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool same(const struct buf *a, const struct buf *b)
{
    return a->len == b->len && (!a->len || memcmp(a->data, b->data, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct chunk a, b;
    struct buf ta = BUF_INIT, tb = BUF_INIT, ra = BUF_INIT, rb = BUF_INIT;
    int rc = chunk_scan(s, size, &a, &ta, &ra, CHUNK_ALL);
    int jrc = chunk_read_jansson(s, size, &b, &tb, &rb, CHUNK_ALL);
    if (rc == 0) {
        if (jrc != 0 || a.has_text != b.has_text || a.text_len != b.text_len || !same(&ta, &tb) ||
            a.has_reasoning != b.has_reasoning || a.reasoning_len != b.reasoning_len ||
            !same(&ra, &rb) || a.has_finish != b.has_finish || strcmp(a.finish, b.finish) != 0 ||
            a.has_id != b.has_id || strcmp(a.id, b.id) != 0 || a.usage_prompt != b.usage_prompt ||
            a.usage_completion != b.usage_completion || a.cached != b.cached ||
            a.timings_prompt_n != b.timings_prompt_n || a.timings_cache_n != b.timings_cache_n ||
            a.meta_cached != b.meta_cached || a.has_error != b.has_error ||
            strcmp(a.error, b.error) != 0)
            abort();
    } else if (ta.len != 0 || ra.len != 0) {
        abort();
    }
    buf_free(&ta);
    buf_free(&tb);
    buf_free(&ra);
    buf_free(&rb);
    const char *nl = memchr(s, '\n', size);
    if (nl) {
        size_t n1 = (size_t)(nl - s), n2 = size - n1 - 1;
        struct chunk_tpl t = {0};
        struct buf x = BUF_INIT, y = BUF_INIT, xr = BUF_INIT, yr = BUF_INIT;
        chunk_read_tpl(&t, s, n1, &a, &x, &xr, CHUNK_ALL);
        buf_reset(&x);
        buf_reset(&xr);
        int r1 = chunk_read_tpl(&t, nl + 1, n2, &a, &x, &xr, CHUNK_ALL);
        int r2 = chunk_read_jansson(nl + 1, n2, &b, &y, &yr, CHUNK_ALL);
        if (r1 != r2 ||
            (r1 == 0 && (a.has_text != b.has_text || a.text_len != b.text_len || !same(&x, &y) ||
                         a.has_reasoning != b.has_reasoning || a.reasoning_len != b.reasoning_len ||
                         !same(&xr, &yr) || strcmp(a.finish, b.finish) != 0 ||
                         strcmp(a.id, b.id) != 0 || a.usage_prompt != b.usage_prompt ||
                         a.cached != b.cached || strcmp(a.error, b.error) != 0)))
            abort();
        chunk_tpl_free(&t);
        buf_free(&x);
        buf_free(&y);
        buf_free(&xr);
        buf_free(&yr);
    }
    return 0;
}
