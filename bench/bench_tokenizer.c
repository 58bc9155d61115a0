/*
 * bench_tokenizer - the exact tokenizer's figures: load time and memory of a tokenizer.json, and
 * encode throughput in tokens/s on a large English document, one thread, both as one string and
 * line by line. The document is synthesised by kvbench's own prompt generator (sections of
 * numbered English sentences) so the reference library can be run on the very same bytes
 * (bench/tokenizer_reference.py, where the Hugging Face `tokenizers` library is installed).
 * Targets: load <= 300 ms and <= 64 MiB for Llama 3; encoding >= 3x the reference.
 *   bench_tokenizer TOKENIZER_JSON [--mb N] [--write-corpus FILE] [--corpus FILE]
 */
#include "scenario/workload.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "model/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            v = atol(line + n + 1);
    if (f)
        fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_tokenizer TOKENIZER_JSON [--mb N] [--write-corpus FILE] "
                        "[--corpus FILE]\n");
        return 2;
    }
    const char *path = argv[1], *write_to = NULL, *corpus = NULL;
    double mb = 20;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mb") == 0)
            mb = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--write-corpus") == 0)
            write_to = argv[i + 1];
        else if (strcmp(argv[i], "--corpus") == 0)
            corpus = argv[i + 1];
    }
    char err[ERR_LEN];
    long rss0 = status_kb("VmRSS:");
    uint64_t t0 = clock_now_ns();
    struct tokenizer *t = tokenizer_load(path, err);
    uint64_t t1 = clock_now_ns();
    if (!t) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    long rss1 = status_kb("VmRSS:"), hwm = status_kb("VmHWM:");
    printf("tokenizer %s\n", t->path);
    printf("  load: %.0f ms, resident +%.1f MiB after loading (process peak %.1f MiB)  "
           "[target <= 300 ms, <= 64 MiB]\n",
           (double)(t1 - t0) / 1e6, (double)(rss1 - rss0) / 1024.0, (double)hwm / 1024.0);

    struct buf text = BUF_INIT;
    if (corpus) {
        if (fs_read_file(corpus, &text, (size_t)1 << 32, err) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    } else {
        /* English-like text from the prompt generator, one document after another */
        struct workload_params wp = {.seed = 7,
                                     .short_range = {2048, 2048},
                                     .long_range = {32768, 32768},
                                     .salt = "",
                                     .tok = tokenizer_heuristic()};
        for (size_t k = 0; text.len < (size_t)(mb * 1048576); k++) {
            struct prompt *ps;
            if (workload_make(&wp, "corpus", "long", k, 1, &ps, err) < 0)
                return 1;
            buf_append(&text, ps[0].text, ps[0].len);
            prompts_free(ps, 1);
        }
    }
    if (write_to && fs_write_atomic(write_to, text.data, text.len, err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct tok_ids ids = {0};
    uint64_t a = clock_now_ns();
    tokenizer_encode(t, text.data, text.len, &ids);
    uint64_t b = clock_now_ns();
    size_t whole = ids.n;
    size_t lines = 0, line_tokens = 0;
    uint64_t c = clock_now_ns();
    for (const char *p = text.data, *end = text.data + text.len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        ids.n = 0;
        tokenizer_encode(t, p, len, &ids);
        line_tokens += ids.n;
        lines++;
        p += len;
    }
    uint64_t d = clock_now_ns();
    printf("  corpus: %.1f MB, %zu lines\n", (double)text.len / 1e6, lines);
    printf("  one string:   %9zu tokens in %.2f s = %.3f M tokens/s\n", whole,
           (double)(b - a) / 1e9, (double)whole / ((double)(b - a) / 1e9) / 1e6);
    printf("  line by line: %9zu tokens in %.2f s = %.3f M tokens/s\n", line_tokens,
           (double)(d - c) / 1e9, (double)line_tokens / ((double)(d - c) / 1e9) / 1e6);
    tok_ids_free(&ids);
    buf_free(&text);
    tokenizer_free(t);
    return 0;
}
