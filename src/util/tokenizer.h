/*
 * tokenizer.h - the token counter everything that counts tokens goes through: prompt tuning,
 * preflight, output token estimates, and the engine's blocks.
 *
 * Two kinds: the heuristic (util/tokens.h; ids are hashes of the token text) and "tokenizer.json"
 * (util/bpe.h: a model's Hugging Face tokenizer file, byte-level BPE, exact). tokenizer_resolve
 * picks one from a --tokenizer value.
 */
#ifndef KVBENCH_UTIL_TOKENIZER_H
#define KVBENCH_UTIL_TOKENIZER_H

#include "util/buf.h"
#include "util/tokens.h"

#include <stddef.h>
#include <stdint.h>

struct bpe;

struct tokenizer {
    const char *kind; /* "heuristic" or "tokenizer.json" */
    char *path;       /* the tokenizer.json used, or NULL */
    char sha256[65];  /* of that file, or "" */
    struct bpe *bpe;  /* NULL for the heuristic */
};

/* The heuristic tokenizer (static storage; tokenizer_free ignores it). */
const struct tokenizer *tokenizer_heuristic(void);
/* Load a tokenizer.json (path to the file or to a directory holding one). Caller frees with
 * tokenizer_free. NULL with err for a missing file, bad JSON, or a feature we do not implement
 * (the message names it). */
struct tokenizer *tokenizer_load(const char *path, char *err);
/* --tokenizer semantics: "heuristic"; a PATH (file or directory; an error if it cannot be
 * loaded); or "auto": $BENCH_TOKENIZER, then $MODEL_HANDLE (a path, or a Hugging Face model id),
 * then the Hugging Face cache ($HF_HOME or ~/.cache/huggingface) for model_id (may be NULL),
 * else the heuristic. *note (may be NULL) receives a sentence on what was chosen and why.
 * Returns NULL with err only when an explicit path fails. */
const struct tokenizer *tokenizer_resolve(const char *spec, const char *model_id, char *note,
                                          size_t note_len, char *err);
void tokenizer_free(const struct tokenizer *t);

/* Token count of text. */
size_t tokenizer_count(const struct tokenizer *t, const char *text, size_t len);
/* Append the ids of text to out. Returns 0 or -1 (out of memory). */
int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_ids *out);
/* Append the text of ids to out. Returns 0, or -1 with err (an id the tokenizer does not have;
 * the heuristic's hashed ids cannot be decoded). */
int tokenizer_decode(const struct tokenizer *t, const uint32_t *ids, size_t n, struct buf *out,
                     char *err);

#endif
