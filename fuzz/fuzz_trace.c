/* libFuzzer target: Mooncake trace files (--trace): the reader, the reusable count and the
 * prompts of the first requests, which must have exactly the trace's token counts. */
#include "scenario/trace.h"
#include "util/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fmemopen((void *)data, size ? size : 1, "r");
    if (!f)
        return 0;
    struct trace t;
    char err[ERR_LEN];
    int rc = trace_read(f, "fuzz", 16, &t, err);
    fclose(f);
    if (rc < 0)
        return 0;
    size_t total = trace_reusable(&t), sum = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (t.r[i].reusable > t.r[i].input_len)
            abort();
        sum += t.r[i].reusable;
    }
    if (sum != total)
        abort();
    const struct tokenizer *tok = tokenizer_heuristic();
    for (size_t i = 0; i < t.n && i < 4; i++) {
        if (t.r[i].input_len > 2048)
            continue;
        struct prompt p;
        if (trace_prompt(&t, tok, 1, "fuzz", i, &p) < 0)
            continue;
        if (p.est_tokens != t.r[i].input_len) /* blocks are cut to their exact length */
            abort();
        free(p.text);
    }
    trace_free(&t);
    return 0;
}
