/*
 * tokenize.c - `kvbench tokenize`: encode text to ids, count tokens, decode ids, or annotate
 * JSON lines with their ids (the format of the conformance files, so anyone can check a
 * tokenizer against the Hugging Face reference).
 */
#include "cmd/cmd.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "model/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_all(const char *path, struct buf *out, char *err)
{
    if (path && strcmp(path, "-") != 0)
        return fs_read_file(path, out, (size_t)4 << 30, err);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        buf_append(out, chunk, n);
    if (buf_failed(out))
        return err_set(err, "out of memory reading stdin");
    if (ferror(stdin))
        return err_set(err, "cannot read stdin");
    return 0;
}

static int do_jsonl(const struct tokenizer *t, const struct buf *in, char *err)
{
    size_t lineno = 0;
    const char *p = buf_cstr(in), *end = p + in->len;
    struct tok_ids ids = {0};
    int rc = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        if (len == 0 || (len == 1 && *p == '\r')) {
            p += len + 1;
            continue;
        }
        json_error_t jerr;
        json_t *row = json_loadb(p, len, 0, &jerr);
        const json_t *text = json_object_get(row, "text");
        if (!row || !json_is_string(text)) {
            rc = err_set(err, "line %zu: %s", lineno, row ? "no \"text\" string" : jerr.text);
            json_decref(row);
            break;
        }
        ids.n = 0;
        if (tokenizer_encode(t, json_string_value(text), json_string_length(text), &ids) < 0) {
            rc = err_set(err, "line %zu: out of memory", lineno);
            json_decref(row);
            break;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < ids.n; i++)
            json_array_append_new(arr, json_integer(ids.ids[i]));
        json_object_set_new(row, "ids", arr);
        char *s = json_text(row, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        printf("%s\n", s ? s : "");
        free(s);
        json_decref(row);
        p += len + 1;
    }
    tok_ids_free(&ids);
    return rc;
}

/* --decode: ids (space, comma or a JSON array) in, their text out. Returns the exit code. */
static int do_decode(const struct tokenizer *t, const struct buf *in)
{
    char err[ERR_LEN];
    int rc = 0;
    struct tok_ids ids = {0};
    for (const char *p = in->data ? in->data : ""; *p;) {
        if (*p >= '0' && *p <= '9') {
            char *end;
            unsigned long v = strtoul(p, &end, 10);
            if (v > UINT32_MAX) {
                fprintf(stderr, "kvbench tokenize: id %lu out of range\n", v);
                rc = 1;
                break;
            }
            if (tok_ids_push(&ids, (uint32_t)v) < 0) {
                fprintf(stderr, "kvbench tokenize: out of memory\n");
                rc = 1;
                break;
            }
            p = end;
        } else if (strchr(" \t\r\n,[]", *p)) {
            p++;
        } else {
            fprintf(stderr, "kvbench tokenize: --decode expects ids, found '%c'\n", *p);
            rc = 1;
            break;
        }
    }
    struct buf out = BUF_INIT;
    if (rc == 0 && tokenizer_decode(t, ids.ids, ids.n, &out, err) < 0) {
        fprintf(stderr, "kvbench tokenize: %s\n", err);
        rc = 1;
    }
    if (rc == 0)
        fwrite(out.data ? out.data : "", 1, out.len, stdout);
    buf_free(&out);
    tok_ids_free(&ids);
    return rc;
}

/* --ids (the default) or --count. Returns the exit code. */
static int do_encode(const struct tokenizer *t, const struct buf *in, bool count)
{
    int rc = 0;
    struct tok_ids ids = {0};
    if (tokenizer_encode(t, buf_cstr(in), in->len, &ids) < 0) {
        fprintf(stderr, "kvbench tokenize: out of memory\n");
        rc = 1;
    } else if (count) {
        printf("%zu\n", ids.n);
    } else {
        for (size_t i = 0; i < ids.n; i++)
            printf("%s%u", i ? " " : "", ids.ids[i]);
        printf("\n");
    }
    tok_ids_free(&ids);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    bool ids_mode = false, count = false, decode = false, jsonl = false;
    const char *spec = NULL;
    struct opt opts[] = {
        {.name = "ids",
         .type = OPT_BOOL,
         .dest = &ids_mode,
         .help = "print the token ids, space separated (the default)"},
        {.name = "count", .type = OPT_BOOL, .dest = &count, .help = "print the number of tokens"},
        {.name = "decode",
         .type = OPT_BOOL,
         .dest = &decode,
         .help = "read ids (space, comma or JSON array) and print their text"},
        {.name = "jsonl",
         .type = OPT_BOOL,
         .dest = &jsonl,
         .help = "read JSON lines with a \"text\" field; write each back with \"ids\" added"},
        {.name = "tokenizer",
         .type = OPT_STR,
         .dest = &spec,
         .def = "auto",
         .metavar = "SPEC",
         .help = "heuristic, auto, or a tokenizer.json (or its directory)"},
        {0},
    };
    const char *files[1];
    struct opt_positional pos = {.metavar = "FILE", .max = 1, .items = files};
    int rc =
        cmd_parse("tokenize", "kvbench tokenize [--ids|--count|--decode|--jsonl] [options] [FILE]",
                  "Tokenize stdin or FILE with the tokenizer kvbench would use. auto looks at\n"
                  "$BENCH_TOKENIZER, then $MODEL_HANDLE (a path or a Hugging Face model id in\n"
                  "the cache), else falls back to the heuristic (with a warning).",
                  opts, argc, argv, &pos);
    if (rc >= 0)
        return rc;
    if (ids_mode + count + decode + jsonl > 1) {
        fprintf(stderr, "kvbench tokenize: choose one of --ids, --count, --decode, --jsonl\n");
        return EXIT_USAGE;
    }
    char err[ERR_LEN];
    const struct tokenizer *t = tokenizer_resolve(spec, NULL, NULL, 0, err);
    if (!t) {
        fprintf(stderr, "kvbench tokenize: %s\n", err);
        return 1;
    }
    struct buf in = BUF_INIT;
    if (read_all(pos.n ? files[0] : NULL, &in, err) < 0) {
        fprintf(stderr, "kvbench tokenize: %s\n", err);
        buf_free(&in);
        tokenizer_free(t);
        return 1;
    }
    rc = 0;
    if (jsonl) {
        if (do_jsonl(t, &in, err) < 0) {
            fprintf(stderr, "kvbench tokenize: %s\n", err);
            rc = 1;
        }
    } else if (decode) {
        rc = do_decode(t, &in);
    } else {
        rc = do_encode(t, &in, count);
    }
    buf_free(&in);
    tokenizer_free(t);
    return rc;
}
