/*
 * multiturn.c - the conversations of `--scenario multi_turn` (see multiturn.h).
 */
#include "scenario/multiturn.h"

#include "util/err.h"
#include "util/sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* How the conversation is written: the server's chat template (chat), kvbench's literal Llama 3
 * completion prompt, or the plain template's "System:" / "User:" / "Assistant:" lines. */
static struct chat_render_opts render_opts(const struct prompt_form *f)
{
    if (f->chat || f->llama3)
        return prompt_form_render(f);
    return (struct chat_render_opts){.tpl = CHAT_TPL_PLAIN, .gen_prompt = true, .literal = true};
}

/* Append a turn to a user's conversation. */
static void conv_add(struct mt_conv *c, enum chat_role role, const char *text, size_t len)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        struct mt_turn *t = realloc(c->turns, cap * sizeof *t);
        if (!t) {
            c->failed = true;
            return;
        }
        c->turns = t;
        c->cap = cap;
    }
    c->turns[c->n++] = (struct mt_turn){role, c->text.len, len};
    buf_append(&c->text, text, len);
    if (buf_failed(&c->text))
        c->failed = true;
}

/* Render the first n turns of c into out (spans: where each content lies, NULL: not wanted).
 * Returns 0 or -1 (out of memory). */
static int conv_render(const struct multiturn *m, const struct mt_conv *c, size_t n, bool gen,
                       struct buf *out, struct chat_span *spans)
{
    if (c->failed)
        return -1;
    struct chat_msg *msgs = calloc(n ? n : 1, sizeof *msgs);
    if (!msgs)
        return -1;
    for (size_t i = 0; i < n; i++)
        msgs[i] =
            (struct chat_msg){c->turns[i].role, c->text.data + c->turns[i].off, c->turns[i].len};
    struct chat_render_opts o = m->render;
    o.gen_prompt = gen;
    chat_render(&o, msgs, n, out, spans);
    free(msgs);
    return buf_failed(out) ? -1 : 0;
}

/* A conversation in chat form leaves out a system message with nothing in it. */
static bool has_system(const struct multiturn *m)
{
    return !m->form.chat || m->system[0];
}

int mt_init(struct multiturn *m, const struct mt_params *mp, const struct tokenizer *tok,
            const struct prompt_form *f, uint64_t seed, const char *salt, char *err)
{
    m->mp = *mp;
    m->tok = tok;
    m->form = *f;
    m->render = render_opts(f);
    m->seed = seed;
    snprintf(m->salt, sizeof m->salt, "%s", salt ? salt : "");
    size_t u = mp->users;
    m->conv = calloc(u ? u : 1, sizeof *m->conv);
    m->schedule = calloc(u ? u : 1, sizeof *m->schedule);
    char *sys = passage(m, "mt-system", 0, mp->system_tokens);
    bool ok = m->conv && m->schedule && sys;
    struct buf b = BUF_INIT;
    if (m->salt[0])
        buf_printf(&b, "%s\n\n", m->salt);
    buf_append_str(&b, sys ? sys : "");
    free(sys);
    m->system = ok ? buf_detach(&b) : NULL;
    buf_free(&b);
    if (!m->system) {
        mt_free(m);
        return err_set(err, "out of memory making the conversations");
    }
    if (has_system(m)) {
        struct chat_msg s = {CHAT_SYSTEM, m->system, strlen(m->system)};
        struct chat_render_opts o = m->render;
        o.gen_prompt = false;
        chat_render(&o, &s, 1, &b, NULL);
        m->system_est = buf_failed(&b) ? 0 : tokenizer_count(tok, b.data, b.len);
        buf_free(&b);
    }
    for (size_t k = 0; k < u; k++)
        m->schedule[k] = mp->user_qps > 0 ? (double)k / ((double)u * mp->user_qps) : 0;
    return 0;
}

/* The prompt of user u's conversation so far (its text, its messages in chat form, its id and
 * counts). Returns 0 or -1 (out of memory). */
static int conv_prompt(const struct multiturn *m, const struct mt_conv *c, size_t u, size_t r,
                       struct prompt *p)
{
    struct buf text = BUF_INIT;
    struct chat_span *spans = calloc(c->n ? c->n : 1, sizeof *spans);
    int rc = spans ? conv_render(m, c, c->n, true, &text, spans) : -1;
    p->text = rc == 0 ? buf_detach(&text) : NULL;
    buf_free(&text);
    p->len = p->text ? strlen(p->text) : 0;
    if (p->text && m->form.chat) {
        enum chat_role *roles = calloc(c->n ? c->n : 1, sizeof *roles);
        for (size_t i = 0; roles && i < c->n; i++)
            roles[i] = c->turns[i].role;
        rc = roles ? prompt_set_msgs(p, roles, spans, c->n) : -1;
        free(roles);
    }
    free(spans);
    if (!p->text || rc < 0)
        return -1;
    snprintf(p->id, sizeof p->id, "turn-u%05zu-r%03zu", u, r + 1);
    snprintf(p->set, sizeof p->set, "turn");
    p->est_tokens = workload_count(m->tok, p);
    p->target = p->est_tokens;
    return sha256_hex(p->text, p->len, p->sha256);
}

/* Round r's new turns of user u: the system message and the first question with the user's
 * history (r = 0), or the answer to the last round and a new question. */
static int add_round(struct multiturn *m, size_t u, size_t r, const char *answer, size_t *reusable)
{
    struct mt_conv *c = &m->conv[u];
    if (r == 0) {
        buf_reset(&c->text);
        c->n = 0;
        c->failed = false;
        if (has_system(m))
            conv_add(c, CHAT_SYSTEM, m->system, strlen(m->system));
        *reusable = 0;
    } else {
        /* the answer closes the previous round: what the server has already seen */
        conv_add(c, CHAT_ASSISTANT, answer, strlen(answer));
        struct buf b = BUF_INIT;
        *reusable = conv_render(m, c, c->n, false, &b, NULL) < 0
                        ? 0
                        : tokenizer_count(m->tok, b.data, b.len);
        buf_free(&b);
    }
    char *q = passage(m, "mt-question", u * 100000 + r, MT_QUESTION_TOKENS);
    char *h = r == 0 ? passage(m, "mt-history", u, m->mp.history_tokens) : NULL;
    int rc = q && (r > 0 || h) ? 0 : -1;
    if (rc == 0) {
        struct buf msg = BUF_INIT;
        buf_printf(&msg, "%s%s%s", h ? h : "", h && *h ? "\n\n" : "", q);
        if (buf_failed(&msg))
            c->failed = true; /* the turn is incomplete: so is the conversation */
        else
            conv_add(c, CHAT_USER, msg.data, msg.len);
        buf_free(&msg);
    }
    free(q);
    free(h);
    return rc;
}

int mt_round(struct multiturn *m, size_t r, const char *const *answers, struct prompt *out,
             size_t *reusable, char *err)
{
    for (size_t u = 0; u < m->mp.users; u++) {
        struct prompt *p = &out[u];
        memset(p, 0, sizeof *p);
        const char *a = r > 0 && answers && answers[u] ? answers[u] : "";
        if (add_round(m, u, r, a, &reusable[u]) < 0 || conv_prompt(m, &m->conv[u], u, r, p) < 0)
            return err_set(err, "out of memory making round %zu", r + 1);
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
    for (size_t u = 0; m->conv && u < m->mp.users; u++) {
        buf_free(&m->conv[u].text);
        free(m->conv[u].turns);
    }
    free(m->conv);
    free(m->schedule);
    free(m->system);
    memset(m, 0, sizeof *m);
}
