/*
 * textgen.h - the engine's output: deterministic pseudo-text.
 *
 * A generator seeded from (request seed, prompt) emits one token at a time: a word with a leading
 * space, or a full stop that ends a sentence. Each token is exactly one heuristic token, so the
 * harness's own count of the text equals the engine's completion_tokens. The planned length is
 * drawn from the same seed: max_tokens with ignore_eos, else about half the requests run to
 * max_tokens and the rest stop ("EOS") uniformly between a quarter of it and all of it.
 */
#ifndef KVBENCH_ENGINE_TEXTGEN_H
#define KVBENCH_ENGINE_TEXTGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct textgen {
    uint64_t state;
    bool sentence_start;
    unsigned words_in_sentence;
};

void textgen_init(struct textgen *g, uint64_t seed);
/* Planned number of output tokens (1..max_tokens). */
size_t textgen_plan_length(struct textgen *g, size_t max_tokens, bool ignore_eos);
/* The next token's text (static storage or out). Returns its length. */
size_t textgen_next(struct textgen *g, char out[32]);

#endif
