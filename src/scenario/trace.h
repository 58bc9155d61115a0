/*
 * trace.h - a production trace for `--scenario trace` (SPEC §4.4, docs/WORKLOADS.md): Mooncake's
 * JSON lines, one request per line:
 *   {"timestamp": ms, "input_length": tokens, "output_length": tokens, "hash_ids": [ids]}
 * where hash_ids names the prompt's blocks of --trace-block-tokens tokens (the last one may be
 * shorter): two requests with the same leading ids share that prefix.
 *
 * Prompts are made so that the trace's sharing is the prompts' sharing: block id h is a passage
 * of exactly B tokens made from (seed, salt, h), a shorter last block is a prefix of it, and a
 * prompt is its blocks in order. Equal ids give byte-identical blocks; different ids never share
 * one. Where the tokenizer joins tokens across a boundary of blocks, the last block is made that
 * much longer, so that the whole prompt, as the tokenizer counts it, has the trace's input_length.
 * From the trace alone kvbench counts the tokens that *could* be reused: a request's leading blocks
 * that an earlier request already sent as the same prefix (the same ids before them, as an engine's
 * chained block hashes require; Mooncake's ids are such prefix hashes already).
 */
#ifndef KVBENCH_SCENARIO_TRACE_H
#define KVBENCH_SCENARIO_TRACE_H

#include "scenario/workload.h"
#include "model/tokenizer.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Block texts kept for reuse (a few KiB each); past it the cache starts again, so that a trace of
 * many distinct blocks does not hold them all. */
#define TRACE_BLOCK_CACHE_MAX 8192

struct trace_req {
    double t_ms; /* from the trace's first request */
    size_t line; /* its line in the file (for errors) */
    size_t input_len, output_len;
    const uint64_t *ids; /* into trace.id_pool */
    size_t n_ids;
    size_t reusable; /* tokens of leading blocks an earlier request sent (trace_reusable) */
};

struct trace {
    struct trace_req *r; /* in time order (a stable sort of the file's lines) */
    size_t n;
    uint64_t *id_pool;
    size_t block_tokens;
    size_t max_input; /* the longest prompt */
    /* made block texts by id ("<id>" -> text), so that each is made once, for one seed and salt
     * (blocks_seed) and one tokenizer (blocks_tok) */
    json_t *blocks;
    uint64_t blocks_seed;
    const struct tokenizer *blocks_tok;
};

/* Read and check a trace file. Returns 0, or -1 with a one-line err naming the line. */
int trace_load(const char *path, size_t block_tokens, struct trace *t, char *err);
/* The same from an open stream (path names it in errors). */
int trace_read(FILE *f, const char *path, size_t block_tokens, struct trace *t, char *err);
/* Refuse a trace whose replay would wait longer than max_wait_s for a request (its time from the
 * first request ÷ speedup; speedup 0 sends as fast as it can and waits for nothing): err names
 * FILE:LINE. Returns 0 or -1. */
int trace_check_wait(const struct trace *t, const char *path, double speedup, double max_wait_s,
                     char *err);
/* Count each request's reusable tokens (in time order) and return their sum. */
size_t trace_reusable(struct trace *t);
/* Request i's prompt (id "trace-<index>", set "trace", its max_tokens the output length).
 * Returns 0 or -1 (out of memory). */
int trace_prompt(struct trace *t, const struct tokenizer *tok, uint64_t seed, const char *salt,
                 size_t i, struct prompt *out);
/* Warmup prompt k (id "warmup-<k>", set "trace"): the input and output lengths of request
 * k % n, made of blocks that no request of the trace has, so that the warmup looks like the
 * trace to the server but leaves nothing in its cache that the trace could reuse. Returns 0 or
 * -1 (out of memory). */
int trace_warmup_prompt(struct trace *t, const struct tokenizer *tok, uint64_t seed,
                        const char *salt, size_t k, struct prompt *out);
void trace_free(struct trace *t);

#endif
