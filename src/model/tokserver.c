/*
 * tokserver.c - `--tokenizer server`: token counts from the server's own /tokenize endpoint, for
 * a model whose tokenizer.json is not at hand. One body serves every dialect of the engine
 * catalogue (model/engines.h, TOKENIZE_DIALECTS): vLLM and SGLang read {model, prompt,
 * add_special_tokens} and answer {count, tokens, max_model_len}; llama.cpp reads {content,
 * add_special} and answers {tokens}. Special tokens are not added, as
 * with kvbench's other counters (the server's own BOS is --add-bos's business: below, one short
 * completion whose usage.prompt_tokens says whether the server counts a BOS of its own, which
 * any OpenAI-compatible server answers, /tokenize or not).
 */
#include "model/tokserver.h"

#include "model/chattpl.h"
#include "model/engines.h"

#include "util/json.h"
#include "util/err.h"
#include "net/http.h"
#include "util/log.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tokserver {
    char url[600];
    char model[256];
    char auth[600];
    bool have_auth;
    _Atomic unsigned long failures; /* counts asked of one server from several threads */
    _Atomic int messages; /* /tokenize with messages: 0 not asked yet, 1 taken, -1 refused */
};

/* POST body to url; the parsed answer of an HTTP 200 (new reference), or NULL with err. auth is
 * an Authorization header or NULL. *status (NULL: not wanted) gets the HTTP status, 0 when no
 * answer came. */
static json_t *post_json(const char *url, const char *auth, const json_t *body, double timeout_s,
                         long *status, char *err)
{
    if (status)
        *status = 0;
    char *text = json_text(body, JSON_COMPACT);
    if (!text) {
        err_set(err, "out of memory");
        return NULL;
    }
    struct http_req req;
    http_req_init(&req);
    req.url = url;
    req.method = "POST";
    req.body = text;
    req.body_len = strlen(text);
    req.timeout_s = timeout_s;
    req.connect_timeout_s = 10;
    req.max_body = 64u << 20;
    http_req_add_header(&req, "Content-Type: application/json");
    if (auth)
        http_req_add_header(&req, auth);
    json_t *j = NULL;
    if (http_fetch(&req, err) < 0) {
        j = NULL;
    } else if (req.error != HTTP_OK) {
        err_set(err, "%s: %s", url, req.error_text);
    } else if (req.status != 200) {
        if (status)
            *status = req.status;
        err_set(err, "%s answered HTTP %ld", url, req.status);
    } else {
        if (status)
            *status = 200;
        if (!(j = json_loadb(buf_cstr(&req.body_buf), req.body_buf.len, 0, NULL)))
            err_set(err, "%s answered with no JSON", url);
    }
    http_req_cleanup(&req);
    free(text);
    return j;
}

/* One /tokenize body every dialect of the catalogue reads (TOKENIZE_DIALECTS: each takes its
 * members and ignores the others'), special tokens off. New reference, NULL when out of memory. */
static json_t *tokenize_body(const struct tokserver *s, const char *text, size_t len)
{
    json_t *b = json_object();
    bool ok = b != NULL;
    const struct tokenize_dialect *d;
    for (d = TOKENIZE_DIALECTS; ok && d->style != TOKENIZE_NONE; d++)
        if (d->model_key && !json_object_get(b, d->model_key))
            ok = json_object_set_new(b, d->model_key, json_string(s->model)) == 0;
    for (d = TOKENIZE_DIALECTS; ok && d->style != TOKENIZE_NONE; d++)
        ok = json_object_set_new(b, d->text_key, json_stringn(text, len)) == 0;
    for (d = TOKENIZE_DIALECTS; ok && d->style != TOKENIZE_NONE; d++)
        ok = json_object_set_new(b, d->special_key, json_false()) == 0;
    if (!ok) {
        json_decref(b);
        return NULL;
    }
    return b;
}

/* The token count in a /tokenize answer of any dialect (its count, else its tokens array), or
 * -1. */
static long long tokenize_count(const json_t *answer)
{
    const struct tokenize_dialect *d;
    for (d = TOKENIZE_DIALECTS; d->style != TOKENIZE_NONE; d++) {
        const json_t *c = d->count_key ? json_object_get(answer, d->count_key) : NULL;
        if (json_is_integer(c))
            return (long long)json_integer_value(c);
    }
    for (d = TOKENIZE_DIALECTS; d->style != TOKENIZE_NONE; d++) {
        const json_t *t = json_object_get(answer, d->tokens_key);
        if (json_is_array(t))
            return (long long)json_array_size(t);
    }
    return -1;
}

/* Tokens of text by the server, or -1 with err. */
static long long ask(struct tokserver *s, const char *text, size_t len, char *err)
{
    json_t *b = tokenize_body(s, text, len);
    if (!b)
        return err_set(err, "out of memory");
    json_t *j = post_json(s->url, s->have_auth ? s->auth : NULL, b, 30, NULL, err);
    json_decref(b);
    if (!j)
        return -1;
    long long n = tokenize_count(j);
    if (n < 0)
        err_set(err, "%s answered without count or tokens", s->url);
    json_decref(j);
    return n;
}

struct tokenizer *tokenizer_server(const char *base_url, const char *model, const char *api_key,
                                   char *err)
{
    struct tokserver *s = calloc(1, sizeof *s);
    struct tokenizer *t = calloc(1, sizeof *t);
    if (!s || !t) {
        free(s);
        free(t);
        err_set(err, "out of memory");
        return NULL;
    }
    snprintf(s->url, sizeof s->url, "%s/tokenize", base_url);
    snprintf(s->model, sizeof s->model, "%s", model ? model : "");
    if (api_key) {
        snprintf(s->auth, sizeof s->auth, "Authorization: Bearer %s", api_key);
        s->have_auth = true;
    }
    char sub[ERR_LEN];
    if (ask(s, "Hello world", 11, sub) < 0) {
        err_set(err,
                "--tokenizer server: %s has no usable /tokenize (%s); use --tokenizer PATH "
                "or heuristic",
                base_url, sub);
        free(s);
        free(t);
        return NULL;
    }
    t->kind = "server";
    t->path = strdup(s->url);
    if (!t->path) {
        err_set(err, "out of memory");
        free(s);
        free(t);
        return NULL;
    }
    t->remote = s;
    return t;
}

size_t tokserver_count(struct tokserver *s, const char *text, size_t len)
{
    char err[ERR_LEN];
    long long n = ask(s, text, len, err);
    if (n >= 0)
        return (size_t)n;
    if (s->failures++ % 100 == 0)
        log_warn("server token count failed (%s); counting this text with the heuristic", err);
    return tok_heuristic_count(text, len);
}

/* The messages as a request writes them. New reference, NULL when out of memory. */
static json_t *messages_json(const struct chat_msg *msgs, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *m = json_pack("{s:s, s:s%}", "role", chat_role_name(msgs[i].role), "content",
                              msgs[i].text ? msgs[i].text : "", msgs[i].text ? msgs[i].len : 0);
        if (!m || json_array_append_new(a, m) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

long long tokenizer_count_messages(const struct tokenizer *t, const struct chat_msg *msgs, size_t n)
{
    struct tokserver *s = t ? t->remote : NULL;
    if (!s || n == 0 || atomic_load(&s->messages) < 0)
        return -1;
    json_t *b = json_pack("{s:s, s:o, s:b}", "model", s->model, "messages", messages_json(msgs, n),
                          "add_generation_prompt", 1);
    char err[ERR_LEN] = "out of memory";
    long status = 0;
    json_t *j = b ? post_json(s->url, s->have_auth ? s->auth : NULL, b, 30, &status, err) : NULL;
    json_decref(b);
    long long count = j ? tokenize_count(j) : -1;
    json_decref(j);
    if (count > 0) {
        atomic_store(&s->messages, 1);
        return count;
    }
    /* An answer that says the server does not take messages: a refusal (4xx), or an answer
     * without a count, or no tokens for a conversation that has some (llama.cpp's /tokenize
     * answers {"tokens": []} to a body without its "content"). It is not asked again, and chat
     * prompts are counted from their rendering through the chat template. A failure that says
     * nothing of the kind (no answer, 5xx) counts this prompt from its rendering only. */
    bool refused = (status >= 400 && status < 500) || (status == 200 && count <= 0);
    if (refused && atomic_exchange(&s->messages, -1) >= 0)
        log_info("the server's /tokenize takes no chat messages (%s): chat prompts are counted "
                 "from their rendering through the chat template",
                 status == 200 ? "it answered no tokens for them" : err);
    else if (!refused && s->failures++ % 100 == 0)
        log_warn("server token count of chat messages failed (%s); counting this prompt from "
                 "its rendering through the chat template",
                 err);
    return -1;
}

void tokserver_free(struct tokserver *s)
{
    free(s);
}

/* ------------------------------------------------------------ the server's BOS */

const char *const TOKSERVER_BOS_MODES[] = {"auto", "yes", "no", NULL};

/* One short completion: does usage.prompt_tokens count a BOS that tok's count has not? */
static void probe_bos(const char *base_url, const char *model, const char *api_key,
                      const struct tokenizer *tok, double timeout_s, struct tokserver_bos *out)
{
    static const char probe[] = "Hello";
    out->count = (long long)tokenizer_count(tok, probe, sizeof probe - 1);
    out->usage = -1;
    char url[600], auth[600], err[ERR_LEN] = "out of memory";
    // cppcheck-suppress ctunullpointer ; a command's --base-url has a default (cmd/*)
    snprintf(url, sizeof url, "%s/v1/completions", base_url);
    if (api_key)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", api_key);
    json_t *body = json_pack("{s:s, s:s, s:i, s:f, s:b}", "model", model, "prompt", probe,
                             "max_tokens", 1, "temperature", 0.0, "stream", 0);
    json_t *j = body ? post_json(url, api_key ? auth : NULL, body, timeout_s, NULL, err) : NULL;
    const json_t *u = json_object_get(json_object_get(j, "usage"), "prompt_tokens");
    if (json_is_integer(u))
        out->usage = (long long)json_integer_value(u);
    else if (j)
        err_set(err, "the answer has no usage.prompt_tokens");
    json_decref(j);
    json_decref(body);
    if (out->usage >= 0 && out->usage == out->count + 1) {
        out->verdict = TOKSERVER_BOS_ADDS;
        snprintf(out->evidence, sizeof out->evidence,
                 "probe \"%s\": usage.prompt_tokens %lld = kvbench's count %lld + 1, so the server "
                 "adds its own BOS",
                 probe, out->usage, out->count);
    } else if (out->usage >= 0 && out->usage == out->count) {
        out->verdict = TOKSERVER_BOS_NONE;
        snprintf(out->evidence, sizeof out->evidence,
                 "probe \"%s\": usage.prompt_tokens %lld = kvbench's count, so the server adds "
                 "no BOS",
                 probe, out->usage);
    } else if (out->usage >= 0) {
        out->verdict = TOKSERVER_BOS_UNDECIDED;
        snprintf(out->evidence, sizeof out->evidence,
                 "undecided: probe \"%s\": usage.prompt_tokens %lld against kvbench's count "
                 "%lld; BOS kept in the template",
                 probe, out->usage, out->count);
    } else {
        out->verdict = TOKSERVER_BOS_UNDECIDED;
        snprintf(out->evidence, sizeof out->evidence,
                 "undecided: the probe \"%s\" failed (%.250s); BOS kept in the template", probe,
                 err);
    }
}

bool tokserver_template_bos(const char *mode, const char *base_url, const char *model,
                            const char *api_key, const struct tokenizer *tok, double timeout_s,
                            struct tokserver_bos *out)
{
    memset(out, 0, sizeof *out);
    out->usage = out->count = -1;
    if (mode && strcmp(mode, "auto") != 0) {
        out->verdict = TOKSERVER_BOS_NOT_ASKED;
        snprintf(out->evidence, sizeof out->evidence, "--add-bos %s", mode);
        return strcmp(mode, "yes") == 0;
    }
    probe_bos(base_url, model, api_key, tok, timeout_s, out);
    return out->verdict != TOKSERVER_BOS_ADDS;
}
