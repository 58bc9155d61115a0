/*
 * multiturn.h - the conversations of `--scenario multi_turn` (SPEC §4.4, docs/WORKLOADS.md).
 *
 * U users each hold a conversation of R rounds. Round 1's prompt is a system prompt shared by
 * every user (S tokens, salted per run), the user's own history (H tokens) and a first question;
 * round r's prompt is round r-1's prompt, the answer the server gave to it, and a new question,
 * so that every round's prompt begins with the whole of the previous one: what a chat client
 * sends and what a prefix cache exists for. With the Llama 3 template the turns are its system,
 * user and assistant messages; without it, "System:", "User:" and "Assistant:" lines (the plain
 * chat template). With --endpoint chat each round is the messages themselves (system, user,
 * assistant, …, user: the server's real answers as the assistant turns), and the prompt's text
 * is their rendering through the server's chat template, which its counts are of.
 */
#ifndef KVBENCH_SCENARIO_MULTITURN_H
#define KVBENCH_SCENARIO_MULTITURN_H

#include "scenario/workload.h"
#include "util/buf.h"
#include "model/tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_QUESTION_TOKENS 32 /* each round's new question */

struct mt_params {
    size_t users, rounds;
    size_t system_tokens, history_tokens, answer_tokens;
    double user_qps; /* each user's rounds per second; 0: a round as soon as the answers are in */
};

/* One turn of a user's conversation: its role and where its content lies in the user's text. */
struct mt_turn {
    enum chat_role role;
    size_t off, len;
};

/* One user's conversation so far: the turns' contents end to end, and the turns. */
struct mt_conv {
    struct buf text;
    struct mt_turn *turns;
    size_t n, cap;
    bool failed; /* a turn could not be stored: the conversation is incomplete */
};

struct multiturn {
    struct mt_params mp;
    const struct tokenizer *tok;
    struct prompt_form form;
    struct chat_render_opts render; /* how a conversation becomes the prompt's text */
    uint64_t seed;
    char salt[160];
    char *system;         /* the system message's content, shared by every user */
    size_t system_est;    /* the system turn's tokens (counted once in the users' contexts) */
    struct mt_conv *conv; /* per user: the conversation so far (up to the last answer) */
    double *schedule;     /* a round's due offsets: user u at u / (U x Q) s (user_qps > 0) */
};

/* Set up m (the caller zeroes it first) to write its prompts in form f. Returns 0 or -1 with
 * err. */
int mt_init(struct multiturn *m, const struct mt_params *mp, const struct tokenizer *tok,
            const struct prompt_form *f, uint64_t seed, const char *salt, char *err);
/* Round r's prompts (r from 0), one per user, into out[0..users): answers[u] is the text the
 * server gave user u in round r-1 (NULL or "" when that request failed; ignored for r = 0).
 * reusable[u] gets the tokens of prompt u that the user's earlier round already sent or was
 * answered (0 in round 0). Returns 0 or -1 (out of memory, err). */
int mt_round(struct multiturn *m, size_t r, const char *const *answers, struct prompt *out,
             size_t *reusable, char *err);
/* An upper bound on the tokens of the last round's prompts (for the preflight): system,
 * history, every question and every answer at --answer-tokens, with a margin for the turns'
 * markup and an answer that re-tokenizes longer than it was generated. */
size_t mt_max_prompt_tokens(const struct multiturn *m);
void mt_free(struct multiturn *m);

#endif
