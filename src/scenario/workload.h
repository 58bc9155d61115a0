/*
 * workload.h - deterministic prompt synthesis (SPEC §3.1).
 *
 * A prompt is an English-like synthetic document (sections of numbered sentences built from the
 * project's own word lists) sized to a token target and, with the llama3 template, wrapped as
 * <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n SALT \n\n DOC
 * <|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n
 * With --endpoint chat, SALT \n\n DOC is one user message, and the prompt's text is the message
 * rendered through the server's chat template (model/chattpl.h): what the target counts.
 * The same seed, set, ranges, salt and tokenizer give byte-identical prompts on every machine.
 * Tuning: the document grows a sentence at a time and the shortest one whose whole prompt reaches
 * the target is kept, so the heuristic estimate lies in [target, target + 64). With an exact
 * tokenizer the last sentence is then cut, at a word and if need be inside it, so that the prompt
 * has exactly the target's token count.
 */
#ifndef KVBENCH_SCENARIO_WORKLOAD_H
#define KVBENCH_SCENARIO_WORKLOAD_H

#include "load/prompt.h"
#include "model/tokenizer.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct token_range {
    long long min, max;
};

/* How a prompt is written (--endpoint, --chat-template, --prompt-template, --add-bos). */
struct prompt_form {
    bool chat;              /* --endpoint chat: messages, rendered and counted through tpl */
    enum chat_template tpl; /* chat: the template the server applies to the messages */
    bool llama3;            /* completions: the Llama 3 markup (--prompt-template llama3) */
    bool no_bos;            /* completions llama3: no <|begin_of_text|> (the server adds its own) */
};

/* The render options of a prompt of form f: the server's template (its BOS included, content
 * trimmed as the template does) for chat; kvbench's literal Llama 3 completion prompt (SPEC
 * §3.1) otherwise. Only meaningful when f->chat or f->llama3. */
struct chat_render_opts prompt_form_render(const struct prompt_form *f);

struct workload_params {
    uint64_t seed;
    struct token_range short_range, long_range;
    const char *salt; /* "" for none */
    struct prompt_form form;
    const struct tokenizer *tok;
    const volatile sig_atomic_t *stop; /* optional: nonzero stops the synthesis (SIGINT) */
    bool exact; /* cut to the target with the heuristic too (workload_passage) */
};

#define WORKLOAD_STOPPED (-2)

/* Make n prompts of set "short", "long" or "mixed" with ids "<prefix>-00000"…, from set_seed.
 * Returns 0, -1 with err, or WORKLOAD_STOPPED when p->stop became nonzero (checked before each
 * prompt, so within a fraction of a millisecond). The caller frees with prompts_free. */
int workload_make(const struct workload_params *p, const char *prefix, const char *set,
                  uint64_t set_seed, size_t n, struct prompt **out, char *err);
/* Prompt i of a set alone (prompt i depends only on the seed, prefix, set and i): what
 * workload_make makes at index i. Returns 0 or -1 (out of memory). */
int workload_make_one(const struct workload_params *p, const char *prefix, const char *set,
                      uint64_t set_seed, size_t i, struct prompt *out);
/* A bare passage (no template, no salt) of `target` tokens by tok (exactly: cut at a word, or
 * inside one where it must), from (seed, prefix, i): the
 * building block of a conversation (scenario/multiturn.c) and of a trace's blocks
 * (scenario/trace.c). A smaller target from the same (seed, prefix, i) gives a prefix of the same
 * text. The caller frees out->text. Returns 0 or -1 (out of memory). */
int workload_passage(const struct tokenizer *tok, uint64_t seed, const char *prefix, size_t i,
                     size_t target, struct prompt *out);
/* The tokens of prompt p: tok's count of its text, or, for a chat prompt counted by the server
 * (--tokenizer server), the server's count of its messages through its own chat template where
 * its /tokenize takes messages. */
size_t workload_count(const struct tokenizer *tok, const struct prompt *p);
/* With a chat form, make p (a bare text) the one user message of a chat prompt: its text
 * becomes the message rendered through the form's template, recounted by tok and hashed again.
 * Nothing to do otherwise. Returns 0 or -1 (out of memory; p unchanged). */
int workload_as_chat(struct prompt *p, const struct prompt_form *f, const struct tokenizer *tok);
/* The id of prompt i: "<prefix>-<5-digit index>". */
void workload_id(const char *prefix, size_t i, struct prompt *out);
/* The largest target a prompt of the set can have with these ranges. */
size_t workload_max_target(const struct workload_params *p, const char *set);
/* Pick a target for set "short"/"long" from rng state (presets within the range, else uniform). */
size_t workload_pick_target(const struct workload_params *p, const char *set, uint64_t *rng);
/* Wrap a message in the Llama 3 chat template as a completion prompt. Caller frees. */
char *workload_llama3_wrap(const char *message);
/* The manifest row of a prompt. New reference. */
json_t *prompt_manifest_json(const struct prompt *p);

#endif
