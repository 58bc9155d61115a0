/* libFuzzer target: loading a tokenizer.json (the streaming vocabulary and merges reader and
 * the feature checks) and, when it loads, encoding and decoding a string with it. */
#include "model/bpe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct bpe *b = bpe_load((const char *)data, size, err);
    if (!b)
        return 0;
    struct tok_ids ids = {0};
    const char *text = "Hello, World! <|eot_id|> caf\xc3\xa9 123456 \xff";
    if (bpe_encode(b, text, strlen(text), &ids) == 0) {
        struct buf out = BUF_INIT;
        bpe_decode(b, ids.ids, ids.n, &out, err);
        buf_free(&out);
    }
    tok_ids_free(&ids);
    bpe_free(b);
    return 0;
}
