/*
 * tokens.c - the heuristic tokenizer: a single pass over the bytes with a character-class test,
 * no allocation for counting.
 */
#include "model/tokens.h"

#include <stdlib.h>
#include <xxhash.h>

static inline int is_word(unsigned char c)
{
    return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

static inline int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

size_t tok_heuristic_count(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = 0, i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (is_space(c)) {
            i++;
        } else if (is_word(c)) {
            n++;
            while (i < len && is_word(s[i]))
                i++;
        } else {
            n++;
            i++;
        }
    }
    return n;
}

uint32_t tok_id(const char *text, size_t len)
{
    return (uint32_t)XXH3_64bits(text, len);
}

int tok_ids_push(struct tok_ids *out, uint32_t id)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 256;
        uint32_t *p = realloc(out->ids, cap * sizeof *p);
        if (!p)
            return -1;
        out->ids = p;
        out->cap = cap;
    }
    out->ids[out->n++] = id;
    return 0;
}

int tok_heuristic_encode(const char *text, size_t len, struct tok_ids *out)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (is_space(c)) {
            i++;
            continue;
        }
        size_t start = i;
        if (is_word(c)) {
            while (i < len && is_word(s[i]))
                i++;
        } else {
            i++;
        }
        if (tok_ids_push(out, tok_id(text + start, i - start)) < 0)
            return -1;
    }
    return 0;
}

void tok_ids_free(struct tok_ids *ids)
{
    free(ids->ids);
    ids->ids = NULL;
    ids->n = ids->cap = 0;
}
