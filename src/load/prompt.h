/*
 * prompt.h - one prompt as the load generator sends it: its text and what identifies it in the
 * artifacts. The scenarios make prompts (scenario/workload.c synthesises them, a trace or a
 * conversation builds them); the load generator only reads them, so the type lives here, below
 * both.
 */
#ifndef KVBENCH_LOAD_PROMPT_H
#define KVBENCH_LOAD_PROMPT_H

#include "model/chattpl.h"

#include <stddef.h>

/* One message of a chat prompt: its role and where its content lies in the prompt's text. */
struct prompt_msg {
    enum chat_role role;
    struct chat_span span;
};

struct prompt {
    char id[32];  /* "<prefix>-<5-digit index>" */
    char set[16]; /* "short" or "long" (a mixed set picks one per prompt); eviction_replay
                   * labels its sets "replay_a" / "replay_b", as the reference harness */
    size_t target;
    size_t est_tokens;
    char *text; /* a completion prompt; --endpoint chat: the messages rendered through the chat
                 * template (what est_tokens counts and sha256 hashes) */
    size_t len;
    /* --endpoint chat: the messages sent, as spans of text (NULL, 0: text is sent as a
     * completion prompt). Owned with the text, dropped with it. */
    struct prompt_msg *msgs;
    size_t n_msgs;
    char sha256[65];
    long long max_tokens; /* > 0: this request's max_tokens (a trace's output_length) */
};

/* Free an array of n prompts and their texts (NULL: nothing). */
void prompts_free(struct prompt *prompts, size_t n);
/* Free a prompt's text and messages, keeping what identifies it (id, set, counts, hash). */
void prompt_drop_text(struct prompt *p);
/* Make p a chat prompt of one message per span: msgs[i]'s content is text[spans[i]] and its
 * role roles[i] (copied). Returns 0 or -1 (out of memory; p unchanged). */
int prompt_set_msgs(struct prompt *p, const enum chat_role *roles, const struct chat_span *spans,
                    size_t n);

#endif
