/* libFuzzer target: encoding arbitrary bytes with the real Llama 3 tokenizer (decompressed from
 * the test fixtures into $KVBENCH_FUZZ_TOKENIZER, see `make fuzz`), then decoding: the decode of
 * the encode must give the input back. */
#include "model/bpe.h"
#include "util/buf.h"
#include "util/fs.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct bpe *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *path = getenv("KVBENCH_FUZZ_TOKENIZER");
    struct buf text = BUF_INIT;
    char err[512];
    if (!path || fs_read_file(path, &text, 1 << 30, err) < 0)
        abort();
    tok = bpe_load(text.data, text.len, err);
    buf_free(&text);
    if (!tok)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tok_ids ids = {0};
    if (bpe_encode(tok, (const char *)data, size, &ids) < 0)
        abort();
    struct buf out = BUF_INIT;
    char err[512];
    if (bpe_decode(tok, ids.ids, ids.n, &out, err) < 0)
        abort();
    /* Byte-level BPE is lossless, except that NFC is not applied by Llama 3 (no normalizer): the
     * bytes must round-trip exactly. */
    if (out.len != size || (size && memcmp(out.data, data, size) != 0))
        abort();
    buf_free(&out);
    tok_ids_free(&ids);
    return 0;
}
