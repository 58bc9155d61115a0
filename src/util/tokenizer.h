/*
 * tokenizer.h - the token counter everything that counts tokens goes through: prompt tuning,
 * preflight, output token estimates, and the engine's blocks.
 *
 * The heuristic (util/tokens.h) is the built-in counter; the struct leaves room for exact
 * tokenizers loaded from a model's tokenizer.json.
 */
#ifndef KVBENCH_UTIL_TOKENIZER_H
#define KVBENCH_UTIL_TOKENIZER_H

#include <stddef.h>

struct tokenizer {
    const char *kind; /* "heuristic" */
    const char *path; /* tokenizer.json used, or NULL */
    char sha256[65];  /* of that file, or "" */
    size_t (*count)(const struct tokenizer *t, const char *text, size_t len);
};

/* The heuristic tokenizer (static storage). */
const struct tokenizer *tokenizer_heuristic(void);

static inline size_t tokenizer_count(const struct tokenizer *t, const char *text, size_t len)
{
    return t->count(t, text, len);
}

#endif
