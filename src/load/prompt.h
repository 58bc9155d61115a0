/*
 * prompt.h - one prompt as the load generator sends it: its text and what identifies it in the
 * artifacts. The scenarios make prompts (scenario/workload.c synthesises them, a trace or a
 * conversation builds them); the load generator only reads them, so the type lives here, below
 * both.
 */
#ifndef KVBENCH_LOAD_PROMPT_H
#define KVBENCH_LOAD_PROMPT_H

#include <stddef.h>

struct prompt {
    char id[32];  /* "<prefix>-<5-digit index>" */
    char set[16]; /* "short" or "long" (a mixed set picks one per prompt); eviction_replay
                   * labels its sets "replay_a" / "replay_b", as the reference harness */
    size_t target;
    size_t est_tokens;
    char *text;
    size_t len;
    char sha256[65];
    long long max_tokens; /* > 0: this request's max_tokens (a trace's output_length) */
};

/* Free an array of n prompts and their texts (NULL: nothing). */
void prompts_free(struct prompt *prompts, size_t n);
/* Free a prompt's text, keeping what identifies it (id, set, counts, hash). */
void prompt_drop_text(struct prompt *p);

#endif
