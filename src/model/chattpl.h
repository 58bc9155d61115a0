/*
 * chattpl.h - the chat templates kvbench knows: how a list of messages becomes the one text an
 * engine tokenizes (SPEC §4.6, docs/RUN.md "Chat"). Both sides read it: the embedded engine
 * renders a /v1/chat/completions request's messages through it before tokenizing, and the
 * harness renders what it sends through the same template to count the prompt's tokens and to
 * tune its prompts to their targets.
 *
 * No Jinja interpreter: three templates are written out, and a model's own template
 * (tokenizer_config.json's chat_template) is recognised by the markers it uses.
 *   llama3  Llama 3's: <|begin_of_text|> then per message
 *           <|start_header_id|>ROLE<|end_header_id|>\n\n + content (trimmed) + <|eot_id|>,
 *           then <|start_header_id|>assistant<|end_header_id|>\n\n (the generation prompt).
 *           Content is trimmed of white space at both ends (Unicode's, as Python's str.strip), as
 *           the template's `| trim` does.
 *   llama31 Llama 3.1's (3.2, 3.3): as llama3, but the first block is always the system one:
 *           its dated preamble ("Cutting Knowledge Date: December 2023\nToday Date: 26 Jul
 *           2024\n\n") and then the system message's content, if the first message is one.
 *   chatml  ChatML (Qwen): per message <|im_start|>ROLE\n + content + <|im_end|>\n, then
 *           <|im_start|>assistant\n. No BOS.
 *   plain   for models without one (the engine's `tiny`): per message "System: ", "User: " or
 *           "Assistant:" + content + "\n\n", then "Assistant:".
 * A `developer` message is a system message (OpenAI's newer name for it).
 */
#ifndef KVBENCH_MODEL_CHATTPL_H
#define KVBENCH_MODEL_CHATTPL_H

#include "util/buf.h"
#include "util/names.h"

#include <stdbool.h>
#include <stddef.h>

/* Llama 3's markup, spelled once (the completions prompt of SPEC §3.1 is written with it too) */
#define LLAMA3_BOS       "<|begin_of_text|>"
#define LLAMA3_HDR(role) "<|start_header_id|>" role "<|end_header_id|>\n\n"
#define LLAMA3_EOT       "<|eot_id|>"

enum chat_template {
    CHAT_TPL_LLAMA3 = 0,
    CHAT_TPL_CHATML = 1,
    CHAT_TPL_PLAIN = 2,
    CHAT_TPL_LLAMA31 = 3
};

/* Llama 3.1's system block opens with this (3.2 and 3.3 write the date of the day, of the same
 * shape) */
#define LLAMA31_PREAMBLE "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"

/* "llama3", "llama31", "chatml", "plain" */
extern const struct name_entry CHAT_TEMPLATE_NAMES[];

enum chat_role { CHAT_SYSTEM = 0, CHAT_USER = 1, CHAT_ASSISTANT = 2 };

/* "system", "user", "assistant", and "developer" (a system message) */
extern const struct name_entry CHAT_ROLE_NAMES[];
/* The role's name as a request writes it ("system", "user", "assistant"). */
const char *chat_role_name(enum chat_role r);

struct chat_msg {
    enum chat_role role;
    const char *text;
    size_t len;
};

/* Where a message's content lies in the rendered text (after trimming, for llama3). */
struct chat_span {
    size_t off, len;
};

struct chat_render_opts {
    enum chat_template tpl;
    bool bos;        /* llama3: write <|begin_of_text|> first (the others have none) */
    bool gen_prompt; /* end with the assistant's header the model answers after */
    bool literal;    /* keep content as given (no trim): kvbench's own completions prompts */
};

/* Append the rendering of msgs[0..n) to out. spans (NULL: not wanted) gets, per message, where
 * its content lies in out (offsets from out's start). Nothing is returned: out's error is sticky
 * (buf_failed). */
void chat_render(const struct chat_render_opts *o, const struct chat_msg *msgs, size_t n,
                 struct buf *out, struct chat_span *spans);

/* The template a Hugging Face chat_template (Jinja text) is, by its markers; -1 when it is none
 * of them. */
int chat_template_of_jinja(const char *jinja);

/* The template of the model whose tokenizer_config.json is at path (its chat_template string,
 * the "default" one of a list, or a chat_template.jinja beside it). Returns the template, or -1
 * with why filled (no file, no chat_template, markers not recognised). */
int chat_template_of_config(const char *path, char *why, size_t cap);

/* The template of the tokenizer_config.json beside a tokenizer.json (its path). Returns the
 * template with why naming the file, or -1 with why saying what was missing. */
int chat_template_of_tokenizer(const char *tokenizer_json, char *why, size_t cap);

/* The template a model id's family uses (Llama 3.1, 3.2, 3.3 → llama31; other Llama 3 → llama3;
 * Qwen → chatml; kvbench/tiny → plain); -1 when the name says nothing. */
int chat_template_of_model(const char *model_id);

#endif
