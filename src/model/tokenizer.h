/*
 * tokenizer.h - the token counter everything that counts tokens goes through: prompt tuning,
 * preflight, output token estimates, and the engine's blocks.
 *
 * Two kinds: the heuristic (model/tokens.h; ids are hashes of the token text) and "tokenizer.json"
 * (model/bpe.h: a model's Hugging Face tokenizer file, byte-level BPE, exact). tokenizer_resolve
 * picks one from a --tokenizer value.
 */
#ifndef KVBENCH_MODEL_TOKENIZER_H
#define KVBENCH_MODEL_TOKENIZER_H

#include "util/buf.h"
#include "model/tokens.h"

#include <stddef.h>
#include <stdint.h>

struct bpe;
struct tokserver;

struct tokenizer {
    const char *kind; /* "heuristic", "tokenizer.json" or "server" */
    char *path;       /* the tokenizer.json used (the /tokenize URL for "server"), or NULL */
    char sha256[65];  /* of that file, or "" */
    struct bpe *bpe;  /* NULL for the heuristic */
    struct tokserver *remote; /* "server": counts through the server's /tokenize */
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

/* --tokenizer server: counts through <base_url>/tokenize (vLLM, SGLang, llama.cpp), checked with
 * one request here. Caller frees with tokenizer_free. NULL with a one-line err when the server
 * has no usable /tokenize. Encoding and decoding use the heuristic. */
struct tokenizer *tokenizer_server(const char *base_url, const char *model, const char *api_key,
                                   char *err);
size_t tokserver_count(struct tokserver *s, const char *text, size_t len);
void tokserver_free(struct tokserver *s);

struct chat_msg;
/* The tokens of a chat conversation as the server itself renders it (its own chat template, the
 * generation prompt included): /tokenize with {model, messages, add_generation_prompt}, which
 * vLLM takes. -1 when t is not a server tokenizer or the server does not take messages (asked
 * once: a server that refused is not asked again). */
long long tokenizer_count_messages(const struct tokenizer *t, const struct chat_msg *msgs,
                                   size_t n);

/* Token count of text. */
size_t tokenizer_count(const struct tokenizer *t, const char *text, size_t len);
/* A count for hot or many-piece paths (prompt growth sentence by sentence, output estimates):
 * the same as tokenizer_count, except that a server tokenizer is not asked (the heuristic). */
size_t tokenizer_count_fast(const struct tokenizer *t, const char *text, size_t len);
/* Append the ids of text to out. Returns 0 or -1 (out of memory). */
int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_ids *out);
/* Append the text of ids to out. Returns 0, or -1 with err (an id the tokenizer does not have;
 * the heuristic's hashed ids cannot be decoded). */
int tokenizer_decode(const struct tokenizer *t, const uint32_t *ids, size_t n, struct buf *out,
                     char *err);

#endif
