/*
 * tokserver.c - `--tokenizer server`: token counts from the server's own /tokenize endpoint, for
 * a model whose tokenizer.json is not at hand. One body serves the three dialects: vLLM and
 * SGLang read {model, prompt, add_special_tokens} and answer {count, tokens, max_model_len};
 * llama.cpp reads {content, add_special} and answers {tokens}. Special tokens are not added, as
 * with kvbench's other counters (the server's own BOS is --add-bos's business).
 */
#include "util/tokenizer.h"

#include "util/err.h"
#include "util/http.h"
#include "util/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tokserver {
    char url[600];
    char model[256];
    char auth[600];
    bool have_auth;
    unsigned long failures;
};

/* Tokens of text by the server, or -1 with err. */
static long long ask(struct tokserver *s, const char *text, size_t len, char *err)
{
    json_t *b = json_pack("{s:s, s:s%, s:s%, s:b, s:b}", "model", s->model, "prompt", text, len,
                          "content", text, len, "add_special_tokens", 0, "add_special", 0);
    char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (!body)
        return err_set(err, "out of memory");
    struct http_req req;
    http_req_init(&req);
    req.url = s->url;
    req.method = "POST";
    req.body = body;
    req.body_len = strlen(body);
    req.timeout_s = 30;
    req.connect_timeout_s = 10;
    req.max_body = 64u << 20;
    http_req_add_header(&req, "Content-Type: application/json");
    if (s->have_auth)
        http_req_add_header(&req, s->auth);
    long long n = -1;
    if (http_fetch(&req, err) < 0) {
        n = -1;
    } else if (req.error != HTTP_OK) {
        err_set(err, "%s: %s", s->url, req.error_text);
    } else if (req.status != 200) {
        err_set(err, "%s answered HTTP %ld", s->url, req.status);
    } else {
        json_t *j = json_loadb(buf_cstr(&req.body_buf), req.body_buf.len, 0, NULL);
        const json_t *c = json_object_get(j, "count");
        const json_t *t = json_object_get(j, "tokens");
        if (json_is_integer(c))
            n = (long long)json_integer_value(c);
        else if (json_is_array(t))
            n = (long long)json_array_size(t);
        else
            err_set(err, "%s answered without count or tokens", s->url);
        json_decref(j);
    }
    http_req_cleanup(&req);
    free(body);
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

void tokserver_free(struct tokserver *s)
{
    free(s);
}
