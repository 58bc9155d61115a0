/*
 * multiturn.c - the conversations of `--scenario multi_turn` (see multiturn.h).
 */
#include "scenario/multiturn.h"

#include "util/err.h"
#include "util/sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOS      "<|begin_of_text|>"
#define HDR(r)   "<|start_header_id|>" r "<|end_header_id|>\n\n"
#define EOT      "<|eot_id|>"
#define MT_SLACK 32 /* per turn: markup, and an answer that re-tokenizes longer */

/* A passage's text alone (its struct prompt's other fields are not needed). */
static char *passage(const struct multiturn *m, const char *prefix, size_t i, size_t target)
{
    if (target == 0)
        return strdup("");
    struct prompt p;
    if (workload_passage(m->tok, m->seed, prefix, i, target, &p) < 0)
        return NULL;
    return p.text;
}

int mt_init(struct multiturn *m, const struct mt_params *mp, const struct tokenizer *tok,
            bool llama3, bool no_bos, uint64_t seed, const char *salt, char *err)
{
    m->mp = *mp;
    m->tok = tok;
    m->llama3 = llama3;
    m->no_bos = no_bos;
    m->seed = seed;
    snprintf(m->salt, sizeof m->salt, "%s", salt ? salt : "");
    size_t u = mp->users;
    m->conv = calloc(u ? u : 1, sizeof *m->conv);
    m->schedule = calloc(u ? u : 1, sizeof *m->schedule);
    char *sys = passage(m, "mt-system", 0, mp->system_tokens);
    struct buf b = BUF_INIT;
    int rc = !m->conv || !m->schedule || !sys ? -1 : 0;
    if (rc == 0) {
        if (llama3)
            buf_append_str(&b, no_bos ? HDR("system") : BOS HDR("system"));
        else
            buf_append_str(&b, "System: ");
        if (m->salt[0])
            buf_printf(&b, "%s\n\n", m->salt);
        buf_append_str(&b, sys);
        buf_append_str(&b, llama3 ? EOT : "\n\n");
    }
    free(sys);
    m->system = rc == 0 ? buf_detach(&b) : NULL;
    buf_free(&b);
    m->system_est = m->system ? tokenizer_count(tok, m->system, strlen(m->system)) : 0;
    if (!m->system) {
        mt_free(m);
        return err_set(err, "out of memory making the conversations");
    }
    for (size_t k = 0; k < u; k++)
        m->schedule[k] = mp->user_qps > 0 ? (double)k / ((double)u * mp->user_qps) : 0;
    return 0;
}

/* The user turn with msg, and the assistant's header the server answers after. */
static void add_turn(const struct multiturn *m, struct buf *b, const char *msg)
{
    if (m->llama3)
        buf_printf(b, HDR("user") "%s" EOT HDR("assistant"), msg);
    else
        buf_printf(b, "User: %s\n\nAssistant:", msg);
}

int mt_round(struct multiturn *m, size_t r, const char *const *answers, struct prompt *out,
             size_t *reusable, char *err)
{
    for (size_t u = 0; u < m->mp.users; u++) {
        struct buf *conv = &m->conv[u];
        struct prompt *p = &out[u];
        memset(p, 0, sizeof *p);
        if (r == 0) {
            buf_reset(conv);
            buf_append_str(conv, m->system);
            reusable[u] = 0;
        } else {
            /* the answer closes the previous round: what the server has already seen */
            const char *a = answers && answers[u] ? answers[u] : "";
            buf_append_str(conv, a);
            buf_append_str(conv, m->llama3 ? EOT : "\n\n");
            reusable[u] = buf_failed(conv) ? 0 : tokenizer_count(m->tok, conv->data, conv->len);
        }
        char *q = passage(m, "mt-question", u * 100000 + r, MT_QUESTION_TOKENS);
        char *h = r == 0 ? passage(m, "mt-history", u, m->mp.history_tokens) : NULL;
        if (!q || (r == 0 && !h)) {
            free(q);
            free(h);
            return err_set(err, "out of memory making round %zu", r + 1);
        }
        if (r == 0) {
            struct buf msg = BUF_INIT;
            buf_printf(&msg, "%s%s%s", h, *h ? "\n\n" : "", q);
            if (buf_failed(&msg))
                conv->failed = true; /* the turn is incomplete: so is the conversation */
            add_turn(m, conv, buf_cstr(&msg));
            buf_free(&msg);
        } else {
            add_turn(m, conv, q);
        }
        free(q);
        free(h);
        p->text = buf_failed(conv) ? NULL : strndup(conv->data, conv->len);
        if (!p->text)
            return err_set(err, "out of memory making round %zu", r + 1);
        p->len = conv->len;
        snprintf(p->id, sizeof p->id, "turn-u%05zu-r%03zu", u, r + 1);
        snprintf(p->set, sizeof p->set, "turn");
        p->est_tokens = tokenizer_count(m->tok, p->text, p->len);
        p->target = p->est_tokens;
        if (sha256_hex(p->text, p->len, p->sha256) < 0)
            return err_set(err, "cannot hash a prompt");
    }
    return 0;
}

size_t mt_max_prompt_tokens(const struct multiturn *m)
{
    const struct mt_params *mp = &m->mp;
    size_t turns = mp->rounds ? mp->rounds : 1;
    return mp->system_tokens + 64 + mp->history_tokens + turns * (MT_QUESTION_TOKENS + MT_SLACK) +
           (turns - 1) * (mp->answer_tokens + mp->answer_tokens / 4 + MT_SLACK);
}

void mt_free(struct multiturn *m)
{
    for (size_t u = 0; m->conv && u < m->mp.users; u++)
        buf_free(&m->conv[u]);
    free(m->conv);
    free(m->schedule);
    free(m->system);
    memset(m, 0, sizeof *m);
}
