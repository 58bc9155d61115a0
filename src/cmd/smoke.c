/*
 * smoke.c - `kvbench smoke`: one Llama 3 templated completion, its text printed; the runbook's
 * check that a server answers a real request. It decides the BOS of its template as `kvbench
 * run` does (model/tokserver.h), so that a server adding its own does not see two. With
 * --endpoint chat the message goes to /v1/chat/completions as one user message, and the server
 * applies its own chat template (no BOS to decide).
 */
#include "load/loadgen.h"
#include "run/ready.h"
#include "scenario/workload.h"
#include "cmd/cmd.h"
#include "probe/server.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "net/http.h"
#include "util/json.h"
#include "model/tokserver.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What `kvbench smoke` reads. */
struct smoke_opts {
    const char *base_url, *api_key, *model_id, *message, *add_bos;
    int endpoint;
    long long max_tokens;
    double temperature, timeout_s;
    struct opt_list stop;
};

#define SM struct smoke_opts

static const struct opt SMOKE_ROWS[] = {
    CMD_OPT_BASE_URL(OPT_AT(SM, base_url, const char *)),
    {.name = "model-id",
     OPT_AT_STR(SM, model_id),
     .def = "auto",
     .metavar = "ID",
     .help = "model; auto = first id of /v1/models"},
    {.name = "message",
     OPT_AT_STR(SM, message),
     .def = "What can you tell me about the band Sleep Token?",
     .metavar = "TEXT",
     .help = "user message, wrapped in the Llama 3 template (completions)"},
    {.name = "endpoint",
     OPT_AT_ENUM(SM, endpoint, ENDPOINT_NAMES),
     .def = "completions",
     .help = "completions sends the templated prompt; chat sends the message to "
             "/v1/chat/completions"},
    {.name = "add-bos",
     OPT_AT_CHOICE(SM, add_bos),
     .def = "auto",
     .choices = TOKSERVER_BOS_MODES,
     .help = "<|begin_of_text|> in the template: auto leaves it out where one short probe "
             "shows that the server adds its own (as kvbench run does)"},
    {.name = "max-tokens",
     OPT_AT_INT(SM, max_tokens),
     .def = "256",
     .min = 1,
     .max = 1000000,
     .help = "max_tokens"},
    {.name = "temperature",
     OPT_AT_FLOAT(SM, temperature),
     .def = "0.7",
     .min = 0,
     .max = 2,
     .help = "temperature"},
    {.name = "stop",
     OPT_AT_LIST(SM, stop),
     .def = "<|eot_id|>",
     .metavar = "TEXT",
     .help = "stop string"},
    {.name = "timeout-s", OPT_AT_DURATION(SM, timeout_s), .def = "120", .help = "request timeout"},
    CMD_OPT_API_KEY(OPT_AT(SM, api_key, const char *)),
    {0},
};

/* The model to ask: --model-id, or the first of /v1/models for auto. Returns 0, or -1 after
 * printing the error. */
static int smoke_model(const struct smoke_opts *o, const char *key, char *model, size_t len)
{
    char err[ERR_LEN];
    if (strcmp(o->model_id, "auto") != 0) {
        snprintf(model, len, "%s", o->model_id);
        return 0;
    }
    int n = server_models(o->base_url, key, 10, model, len, NULL, err);
    if (n <= 0) {
        fprintf(stderr, "kvbench smoke: no model at %s/v1/models: %s\n", o->base_url,
                n == 0 ? "the list is empty" : err);
        return -1;
    }
    return 0;
}

/* The request body: the templated message, without its BOS where the server adds its own.
 * Returns a new string (free), or NULL when out of memory. */
static char *smoke_body(const struct smoke_opts *o, const char *model, bool template_bos)
{
    static const char bos_text[] = "<|begin_of_text|>";
    char *prompt = workload_llama3_wrap(o->message);
    const char *sent = prompt;
    if (prompt && !template_bos && strncmp(prompt, bos_text, sizeof bos_text - 1) == 0)
        sent += sizeof bos_text - 1; /* the server puts its own BOS first */
    json_t *st = json_array();
    for (size_t i = 0; st && i < o->stop.n; i++)
        json_array_append_new(st, json_string(o->stop.items[i]));
    /* the input second, as it always was: a completions body stays byte-identical */
    bool chat = o->endpoint == ENDPOINT_CHAT;
    json_t *body =
        prompt && st
            ? json_pack("{s:s, s:o, s:I, s:f, s:o, s:b}", "model", model,
                        chat ? "messages" : "prompt",
                        chat ? json_pack("[{s:s, s:s}]", "role", "user", "content", o->message)
                             : json_string(sent),
                        "max_tokens", (json_int_t)o->max_tokens, "temperature", o->temperature,
                        "stop", st, "stream", 0)
            : NULL;
    if (!prompt || !st)
        json_decref(st); /* json_pack was not called: it did not take st */
    char *text = body ? json_text(body, JSON_COMPACT) : NULL;
    json_decref(body);
    free(prompt);
    return text;
}

/* Print the answer's text. Returns the exit code: 0 for a non-empty text. */
static int smoke_answer(const struct http_req *req, bool chat, const struct tokserver_bos *bos)
{
    int rc = 1;
    json_t *j = json_loadb(buf_cstr(&req->body_buf), req->body_buf.len, 0, NULL);
    const json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    const char *out = chat ? json_get_str(json_object_get(choice, "message"), "content", NULL)
                           : json_get_str(choice, "text", NULL);
    if (!out)
        fprintf(stderr, "kvbench smoke: the answer has no choices[0].%s: %.400s\n",
                chat ? "message.content" : "text", buf_cstr(&req->body_buf));
    else if (!*out)
        fprintf(stderr, "kvbench smoke: empty completion text\n");
    else {
        printf("%s\n", out);
        rc = 0;
    }
    if (rc == 0 && bos->verdict == TOKSERVER_BOS_UNDECIDED)
        fprintf(stderr,
                "kvbench smoke: note: could not tell whether the server adds its own BOS "
                "(%s); set --add-bos yes|no\n",
                bos->evidence);
    json_decref(j);
    return rc;
}

/* POST the body to the endpoint and print what came back. Returns the exit code. */
static int smoke_send(const struct smoke_opts *o, const char *key, const char *text,
                      const struct tokserver_bos *bos)
{
    char url[1024], err[ERR_LEN];
    snprintf(url, sizeof url, "%s%s", o->base_url, endpoint_path((enum endpoint)o->endpoint));
    struct http_req req;
    http_req_init(&req);
    req.url = url;
    req.body = text;
    req.body_len = strlen(text);
    req.timeout_s = o->timeout_s;
    bool headers_ok = http_req_add_header(&req, "Content-Type: application/json") == 0;
    if (key) {
        struct buf auth = BUF_INIT;
        buf_printf(&auth, "Authorization: Bearer %s", key);
        headers_ok =
            headers_ok && !buf_failed(&auth) && http_req_add_header(&req, buf_cstr(&auth)) == 0;
        buf_free(&auth);
    }
    int rc = 1;
    if (!headers_ok)
        fprintf(stderr, "kvbench smoke: out of memory\n");
    else if (http_fetch(&req, err) < 0)
        fprintf(stderr, "kvbench smoke: %s\n", err);
    else if (req.error != HTTP_OK)
        fprintf(stderr, "kvbench smoke: %s\n", req.error_text);
    else if (req.status != 200)
        fprintf(stderr, "kvbench smoke: HTTP %ld: %.400s\n", req.status, buf_cstr(&req.body_buf));
    else
        rc = smoke_answer(&req, o->endpoint == ENDPOINT_CHAT, bos);
    http_req_cleanup(&req);
    return rc;
}

int cmd_smoke(int argc, char **argv)
{
    struct smoke_opts o;
    memset(&o, 0, sizeof o);
    struct opt opts[sizeof SMOKE_ROWS / sizeof SMOKE_ROWS[0]];
    size_t n = 0;
    opts_bind(opts, &n, sizeof opts / sizeof opts[0], SMOKE_ROWS, &o, NULL);
    int rc = cmd_parse("smoke", "kvbench smoke [options]",
                       "Send one completion (the runbook's smoke test: the Llama 3 templated\n"
                       "message, without its <|begin_of_text|> where the server adds its own BOS;\n"
                       "--endpoint chat: the message as a chat request) and print the text.\n"
                       "Exit 1 on an error or empty text.",
                       opts, argc, argv, NULL);
    if (rc >= 0) {
        opts_free(opts);
        return rc;
    }
    const char *key = o.api_key && *o.api_key ? o.api_key : NULL;
    char model[256];
    if (smoke_model(&o, key, model, sizeof model) < 0) {
        opts_free(opts);
        return 1;
    }
    /* the probe's text ("Hello") is one token by any tokenizer, the heuristic's too; chat has
     * the server's template, which writes its own BOS */
    struct tokserver_bos bos = {.verdict = TOKSERVER_BOS_NOT_ASKED};
    bool template_bos = o.endpoint == ENDPOINT_CHAT ||
                        tokserver_template_bos(o.add_bos, o.base_url, model, key,
                                               tokenizer_heuristic(), o.timeout_s, &bos);
    char *text = smoke_body(&o, model, template_bos);
    if (!text) {
        fprintf(stderr, "kvbench smoke: out of memory\n");
        opts_free(opts);
        return 1;
    }
    rc = smoke_send(&o, key, text, &bos);
    free(text);
    opts_free(opts);
    return rc;
}
