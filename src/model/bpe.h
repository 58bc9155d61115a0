/*
 * bpe.h - an exact tokenizer for Hugging Face tokenizer.json files of the byte-level BPE family
 * (Llama 3, Qwen3, GPT-2 style): added and special tokens matched before anything else, the NFC
 * normalizer, the Sequence pre-tokenizer of a regex Split (PCRE2 with its JIT) and ByteLevel, BPE
 * with ignore_merges and merges given as "a b" or ["a","b"], and the byte-level decoder. A file
 * that uses anything else is refused with a message naming the feature.
 */
#ifndef KVBENCH_MODEL_BPE_H
#define KVBENCH_MODEL_BPE_H

#include "util/buf.h"
#include "model/tokens.h"

#include <stddef.h>
#include <stdint.h>

struct bpe;

/* Load from the text of a tokenizer.json. NULL with err. */
struct bpe *bpe_load(const char *json, size_t len, char *err);
void bpe_free(struct bpe *b);
/* Append the ids of text to out (thread-safe). Returns 0 or -1 (out of memory). */
int bpe_encode(struct bpe *b, const char *text, size_t len, struct tok_ids *out);
size_t bpe_count(struct bpe *b, const char *text, size_t len);
/* Append the bytes of ids to out. Returns 0, or -1 with err for an unknown id. */
int bpe_decode(const struct bpe *b, const uint32_t *ids, size_t n, struct buf *out, char *err);
/* Number of ids (vocabulary and added tokens). */
size_t bpe_vocab_size(const struct bpe *b);
/* Look a token (raw bytes, not byte-level text) up. Returns its id or -1. */
long bpe_token_id(const struct bpe *b, const char *bytes, size_t len);

#endif
