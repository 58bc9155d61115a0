/*
 * tokserver.h - what the server itself does with a prompt's tokens, asked over HTTP: whether it
 * puts its own BOS before a text prompt (the Llama 3 template must then leave out
 * <|begin_of_text|>, or the prompt starts with two). `kvbench run` and `kvbench smoke` decide
 * their template's BOS here, the same way. (The /tokenize counter, tokenizer_server, is declared
 * in model/tokenizer.h.)
 */
#ifndef KVBENCH_MODEL_TOKSERVER_H
#define KVBENCH_MODEL_TOKSERVER_H

#include "model/tokenizer.h"

#include <stdbool.h>

/* --add-bos: its values, NULL-terminated (for a flag's choices). */
extern const char *const TOKSERVER_BOS_MODES[];

enum tokserver_bos_verdict {
    TOKSERVER_BOS_NOT_ASKED, /* --add-bos yes|no decided without the server */
    TOKSERVER_BOS_ADDS,      /* usage.prompt_tokens = kvbench's count + 1 */
    TOKSERVER_BOS_NONE,      /* usage.prompt_tokens = kvbench's count */
    TOKSERVER_BOS_UNDECIDED, /* another count, or the probe failed (evidence says which) */
};

struct tokserver_bos {
    enum tokserver_bos_verdict verdict;
    long long usage;    /* the probe's usage.prompt_tokens; -1 when none came back */
    long long count;    /* kvbench's count of the probe (tok) */
    char evidence[400]; /* one sentence: what decided, for config.json and the user */
};

/* The Llama 3 template's BOS for --add-bos mode ("auto", "yes" or "no"): yes and no decide
 * alone; auto sends one completion ("Hello", max_tokens 1, temperature 0) to
 * <base_url>/v1/completions for model and compares its usage.prompt_tokens with tok's count of
 * the text: one more means the server adds its own BOS. Returns whether the template should
 * carry <|begin_of_text|>: false only when the server adds its own (or mode is "no"); kept when
 * undecided. api_key may be NULL. */
bool tokserver_template_bos(const char *mode, const char *base_url, const char *model,
                            const char *api_key, const struct tokenizer *tok, double timeout_s,
                            struct tokserver_bos *out);

#endif
