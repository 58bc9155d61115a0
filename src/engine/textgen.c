/*
 * textgen.c - word-salad generator over a fixed vocabulary of plain English words.
 */
#include "engine/textgen.h"
#include "util/rng.h"

#include <string.h>

static const char *const WORDS[] = {
    "the",     "cache",    "block",   "memory",  "token",    "model",   "layer",   "offload",
    "disk",    "host",     "device",  "prefix",  "reuse",    "request", "latency", "through",
    "quickly", "slowly",   "because", "while",   "every",    "system",  "engine",  "server",
    "answer",  "question", "music",   "band",    "sound",    "album",   "record",  "stage",
    "light",   "night",    "morning", "river",   "mountain", "forest",  "city",    "road",
    "window",  "garden",   "story",   "history", "future",   "moment",  "simple",  "careful",
    "bright",  "quiet",    "strong",  "gentle",  "early",    "later",   "always",  "never",
    "often",   "rarely",   "many",    "few",     "some",     "each",    "other",   "another",
    "is",      "was",      "becomes", "remains", "seems",    "holds",   "moves",   "returns",
    "reads",   "writes",   "keeps",   "finds",   "brings",   "takes",   "makes",   "shows",
    "and",     "but",      "or",      "so",      "yet",      "with",    "from",    "into",
    "over",    "under",    "between", "across",  "after",    "before",  "during",  "within",
    "a",       "an",       "this",    "that",    "these",    "those",   "its",     "their",
    "first",   "second",   "third",   "last",    "next",     "final",   "whole",   "half",
};
#define N_WORDS (sizeof WORDS / sizeof WORDS[0])

static uint64_t next_u64(struct textgen *g)
{
    return splitmix64(&g->state);
}

void textgen_init(struct textgen *g, uint64_t seed)
{
    g->state = seed;
    g->sentence_start = true;
    g->words_in_sentence = 0;
}

size_t textgen_plan_length(struct textgen *g, size_t max_tokens, bool ignore_eos)
{
    if (max_tokens == 0)
        return 0;
    uint64_t r = next_u64(g);
    if (ignore_eos || (r & 1))
        return max_tokens;
    size_t lo = max_tokens / 4 ? max_tokens / 4 : 1;
    size_t span = max_tokens - lo + 1;
    return lo + (size_t)((r >> 1) % span);
}

size_t textgen_next(struct textgen *g, char out[32])
{
    if (!g->sentence_start && g->words_in_sentence >= 6 && next_u64(g) % 8 == 0) {
        g->sentence_start = true;
        g->words_in_sentence = 0;
        out[0] = '.';
        out[1] = '\0';
        return 1;
    }
    const char *w = WORDS[next_u64(g) % N_WORDS];
    size_t len = strlen(w);
    out[0] = ' ';
    memcpy(out + 1, w, len + 1);
    if (g->sentence_start && out[1] >= 'a' && out[1] <= 'z')
        out[1] = (char)(out[1] - 'a' + 'A');
    g->sentence_start = false;
    g->words_in_sentence++;
    return len + 1;
}
