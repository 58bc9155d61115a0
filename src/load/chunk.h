/*
 * chunk.h - what kvbench measures in an OpenAI-compatible completion chunk (one SSE event's data)
 * or a whole unary response: the text of choices[0] (completions `text`, chat `delta.content` or
 * `message.content`), its reasoning (chat `reasoning_content`, or `reasoning` as newer vLLM names
 * it, in `delta` or `message`), `finish_reason`, `id`, `usage` (prompt, completion and cached
 * tokens), llama.cpp's `timings` (prompt_n, cache_n), and an error object.
 *
 * chunk_read() first runs a purpose-built scanner over the bytes: one pass, no tree, no heap
 * allocation (the text is decoded straight into the caller's buffer). Anything the scanner does
 * not accept - malformed JSON, a top level that is not an object, nesting deeper than it follows,
 * a `\u0000` - goes to jansson instead, which either reads it the same way or names the syntax
 * error. The two readers give identical fields on every input (tests/unit/test_chunk.c and
 * fuzz/fuzz_chunk.c check it).
 */
#ifndef KVBENCH_LOAD_CHUNK_H
#define KVBENCH_LOAD_CHUNK_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>

struct chunk {
    size_t text_len; /* bytes of choices[0] text appended to the caller's buffer (0: none) */
    bool has_text;   /* choices[0] carried a text string, maybe empty */
    /* bytes of choices[0] reasoning appended to the caller's reasoning buffer (0: none): the
     * string of delta.reasoning_content, else delta.reasoning, else message.reasoning_content,
     * else message.reasoning (a server that sends both names sends the same text twice) */
    size_t reasoning_len;
    bool has_reasoning; /* ... a reasoning string was there, maybe empty */
    bool has_finish, has_id, has_error;
    long long usage_prompt, usage_completion, cached; /* -1: absent (or not an integer) */
    long long timings_prompt_n, timings_cache_n;      /* -1: absent */
    long long meta_cached; /* SGLang's meta_info.cached_tokens, -1: absent */
    /* the strings last: a template hit copies only those that are set */
    char finish[32];
    char id[160];
    char error[420];     /* the error object's message */
    char malformed[160]; /* non-empty: the bytes are not JSON (the parser's message) */
};

/* What a response said about its prompt (the last value of each field over its events; -1:
 * absent), for reuse_evidence. */
struct reuse_fields {
    long long usage_prompt;                      /* usage.prompt_tokens */
    long long details_cached;                    /* usage.prompt_tokens_details.cached_tokens */
    long long timings_cache_n, timings_prompt_n; /* llama.cpp's timings */
    long long meta_cached;                       /* SGLang's meta_info.cached_tokens */
};

/* The prompt tokens a response says the server reused instead of computing (SPEC §4.5), and the
 * field that decided it (*source; NULL with -1 when the response carried none), read in this
 * order: usage.prompt_tokens_details.cached_tokens; timings.cache_n; usage.prompt_tokens -
 * timings.prompt_n (servers whose timings lack cache_n); meta_info.cached_tokens. One function
 * for every signal and workload. */
long long reuse_evidence(const struct reuse_fields *f, const char **source);

/* What the caller needs beyond the rest: CHUNK_ID copies `id` (a stream repeats it in every
 * event; one copy is enough). */
#define CHUNK_ID  1u
#define CHUNK_ALL CHUNK_ID

/* Read data into c (reset first); the text of choices[0] is appended to text, its reasoning to
 * reasoning. Returns 0, or -1 when the bytes are malformed (c->malformed says why) or memory ran
 * out. */
int chunk_read(const char *data, size_t len, struct chunk *c, struct buf *text,
               struct buf *reasoning, unsigned want);

/* Events of one stream differ mostly in their text: a template remembers the last event the
 * scanner read around its text or its reasoning (the bytes before and after that string, and the
 * event's fields). An event with the same bytes around a valid JSON string is the same JSON with
 * another string there, so only that string is scanned; anything else is read in full and becomes
 * the template. An event whose text and reasoning are both non-empty makes no template (only one
 * string may vary). */
struct chunk_tpl {
    struct buf bytes;
    size_t pre, suf; /* bytes before the string's opening quote, after its closing one */
    bool reasoning;  /* the string that varies is the reasoning (else the text) */
    struct chunk fields;
    bool ok;
};

void chunk_tpl_reset(struct chunk_tpl *t);
void chunk_tpl_free(struct chunk_tpl *t);
/* chunk_read through the template t (a zeroed struct is an empty one). */
int chunk_read_tpl(struct chunk_tpl *t, const char *data, size_t len, struct chunk *c,
                   struct buf *text, struct buf *reasoning, unsigned want);

/* The two readers on their own (for the tests and the fuzz target). chunk_scan returns 1 when it
 * declined the input (nothing appended), 0 when it read it, -1 out of memory. */
int chunk_scan(const char *data, size_t len, struct chunk *c, struct buf *text,
               struct buf *reasoning, unsigned want);
int chunk_read_jansson(const char *data, size_t len, struct chunk *c, struct buf *text,
                       struct buf *reasoning, unsigned want);

#endif
