/*
 * tokens.h - token counting and token ids shared by the harness and the engine.
 *
 * The heuristic tokenizer (SPEC §3.2): one token per maximal run of word characters (ASCII
 * letters, digits, underscore, and any byte >= 0x80) and one per other non-space character;
 * whitespace separates tokens and is not one. A token's id is a stable 32-bit hash of its text
 * (XXH3-64 of the bytes, low 32 bits), so the same text always gives the same ids everywhere.
 */
#ifndef KVBENCH_MODEL_TOKENS_H
#define KVBENCH_MODEL_TOKENS_H

#include <stddef.h>
#include <stdint.h>

struct tok_ids {
    uint32_t *ids;
    size_t n;
    size_t cap;
};

/* Number of heuristic tokens in text. */
size_t tok_heuristic_count(const char *text, size_t len);
/* Append the heuristic token ids of text to out. Returns 0 or -1 (out of memory). */
int tok_heuristic_encode(const char *text, size_t len, struct tok_ids *out);
/* The id of one token's text. */
uint32_t tok_id(const char *text, size_t len);
/* Append one id. Returns 0 or -1. */
int tok_ids_push(struct tok_ids *out, uint32_t id);
void tok_ids_free(struct tok_ids *ids);

#endif
