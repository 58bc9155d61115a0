/*
 * smoke.c - `kvbench smoke`: one Llama 3 templated completion, its text printed; the runbook's
 * check that a server answers a real request. It decides the BOS of its template as `kvbench
 * run` does (model/tokserver.h), so that a server adding its own does not see two.
 */
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

int cmd_smoke(int argc, char **argv)
{
    const char *base_url = NULL, *api_key = NULL, *model_id = NULL, *message = NULL;
    const char *add_bos = NULL;
    long long max_tokens = 0;
    double temperature = 0, timeout_s = 0;
    struct opt_list stop = {0};
    struct opt opts[] = {
        CMD_OPT_BASE_URL(.dest = &base_url),
        {.name = "model-id",
         .type = OPT_STR,
         .dest = &model_id,
         .def = "auto",
         .metavar = "ID",
         .help = "model; auto = first id of /v1/models"},
        {.name = "message",
         .type = OPT_STR,
         .dest = &message,
         .def = "What can you tell me about the band Sleep Token?",
         .metavar = "TEXT",
         .help = "user message, wrapped in the Llama 3 template"},
        {.name = "add-bos",
         .type = OPT_CHOICE,
         .dest = &add_bos,
         .def = "auto",
         .choices = TOKSERVER_BOS_MODES,
         .help = "<|begin_of_text|> in the template: auto leaves it out where one short probe "
                 "shows that the server adds its own (as kvbench run does)"},
        {.name = "max-tokens",
         .type = OPT_INT,
         .dest = &max_tokens,
         .def = "256",
         .min = 1,
         .max = 1000000,
         .help = "max_tokens"},
        {.name = "temperature",
         .type = OPT_FLOAT,
         .dest = &temperature,
         .def = "0.7",
         .min = 0,
         .max = 2,
         .help = "temperature"},
        {.name = "stop",
         .type = OPT_LIST,
         .dest = &stop,
         .def = "<|eot_id|>",
         .metavar = "TEXT",
         .help = "stop string"},
        {.name = "timeout-s",
         .type = OPT_DURATION,
         .dest = &timeout_s,
         .def = "120",
         .help = "request timeout"},
        CMD_OPT_API_KEY(.dest = &api_key),
        {0},
    };
    int rc = cmd_parse("smoke", "kvbench smoke [options]",
                       "Send one completion (the runbook's smoke test: the Llama 3 templated\n"
                       "message, without its <|begin_of_text|> where the server adds its own BOS)\n"
                       "and print the text. Exit 1 on an error or empty text.",
                       opts, argc, argv, NULL);
    if (rc >= 0) {
        opts_free(opts);
        return rc;
    }
    const char *key = api_key && *api_key ? api_key : NULL;
    char model[256], err[ERR_LEN];
    if (strcmp(model_id, "auto") == 0) {
        int n = server_models(base_url, key, 10, model, sizeof model, NULL, err);
        if (n <= 0) {
            fprintf(stderr, "kvbench smoke: no model at %s/v1/models: %s\n", base_url,
                    n == 0 ? "the list is empty" : err);
            opts_free(opts);
            return 1;
        }
    } else {
        snprintf(model, sizeof model, "%s", model_id);
    }
    /* the probe's text ("Hello") is one token by any tokenizer, the heuristic's too */
    struct tokserver_bos bos;
    bool template_bos = tokserver_template_bos(add_bos, base_url, model, key, tokenizer_heuristic(),
                                               timeout_s, &bos);
    static const char bos_text[] = "<|begin_of_text|>";
    char *prompt = workload_llama3_wrap(message);
    const char *sent = prompt;
    if (prompt && !template_bos && strncmp(prompt, bos_text, sizeof bos_text - 1) == 0)
        sent += sizeof bos_text - 1; /* the server puts its own BOS first */
    json_t *st = json_array();
    for (size_t i = 0; i < stop.n; i++)
        json_array_append_new(st, json_string(stop.items[i]));
    json_t *body =
        json_pack("{s:s, s:s, s:I, s:f, s:o, s:b}", "model", model, "prompt", sent, "max_tokens",
                  (json_int_t)max_tokens, "temperature", temperature, "stop", st, "stream", 0);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    free(prompt);
    if (!text) {
        fprintf(stderr, "kvbench smoke: out of memory\n");
        opts_free(opts);
        return 1;
    }
    char url[1024];
    snprintf(url, sizeof url, "%s/v1/completions", base_url);
    struct http_req req;
    http_req_init(&req);
    req.url = url;
    req.body = text;
    req.body_len = strlen(text);
    req.timeout_s = timeout_s;
    http_req_add_header(&req, "Content-Type: application/json");
    if (key) {
        struct buf auth = BUF_INIT;
        buf_printf(&auth, "Authorization: Bearer %s", key);
        http_req_add_header(&req, buf_cstr(&auth));
        buf_free(&auth);
    }
    rc = 1;
    if (http_fetch(&req, err) < 0) {
        fprintf(stderr, "kvbench smoke: %s\n", err);
    } else if (req.error != HTTP_OK) {
        fprintf(stderr, "kvbench smoke: %s\n", req.error_text);
    } else if (req.status != 200) {
        fprintf(stderr, "kvbench smoke: HTTP %ld: %.400s\n", req.status, buf_cstr(&req.body_buf));
    } else {
        json_t *j = json_loadb(buf_cstr(&req.body_buf), req.body_buf.len, 0, NULL);
        const char *out =
            json_get_str(json_array_get(json_object_get(j, "choices"), 0), "text", NULL);
        if (!out)
            fprintf(stderr, "kvbench smoke: the answer has no choices[0].text: %.400s\n",
                    buf_cstr(&req.body_buf));
        else if (!*out)
            fprintf(stderr, "kvbench smoke: empty completion text\n");
        else {
            printf("%s\n", out);
            rc = 0;
        }
        if (rc == 0 && bos.verdict == TOKSERVER_BOS_UNDECIDED)
            fprintf(stderr,
                    "kvbench smoke: note: could not tell whether the server adds its own BOS "
                    "(%s); set --add-bos yes|no\n",
                    bos.evidence);
        json_decref(j);
    }
    http_req_cleanup(&req);
    free(text);
    opts_free(opts);
    return rc;
}
