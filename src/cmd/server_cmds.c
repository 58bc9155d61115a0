/*
 * server_cmds.c - `kvbench ready`, `kvbench health` and `kvbench smoke`: the runbook's checks
 * that a server is up, healthy, and answers a real completion. Smoke decides the BOS of its
 * Llama 3 template as `kvbench run` does (model/tokserver.h), so that a server adding its own does
 * not see two.
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

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void print_body(const char *title, long status, const char *body)
{
    printf("== %s", title);
    if (status > 0)
        printf(" (HTTP %ld)", status);
    printf("\n");
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    if (j) {
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s ? s : "");
        free(s);
        json_decref(j);
    } else {
        printf("%s\n", body && *body ? body : "(no answer)");
    }
}

/* What `ready` waits with, and the last poll it saw (to say why it gave up). */
struct ready_watch {
    struct ready_opts o;
    struct ready_poll last;
};

static void progress(const struct ready_poll *p, void *user)
{
    struct ready_watch *w = user;
    w->last = *p;
    printf("ready: poll %d: models=%d health=%ld%s%s endpoints=%d -> %s (streak %d/%d)%s%s\n",
           p->attempt, p->models, p->health_status, p->health ? " " : "",
           p->health ? p->health : "", p->endpoints, p->ok ? "ok" : "not ready", p->streak,
           w->o.consecutive, p->ok ? "" : ": ", p->ok ? "" : p->why);
    fflush(stdout);
}

/* One line on stderr: what ready waited for, how long, and why it gave up. */
static void ready_gave_up(const struct ready_watch *w, double waited_s)
{
    const struct ready_opts *o = &w->o;
    const struct ready_poll *p = &w->last;
    char why[300];
    if (stop_flag)
        snprintf(why, sizeof why, "interrupted");
    else if (p->attempt == 0)
        snprintf(why, sizeof why, "no poll was made");
    else if (!p->ok)
        snprintf(why, sizeof why, "%s", p->why);
    else
        snprintf(why, sizeof why, "only %d good polls in a row", p->streak);
    fprintf(stderr,
            "kvbench ready: %s not ready after %.1f s: %s (waited for /v1/models to list a "
            "model%s on %d polls in a row; %d polls made)\n",
            o->base_url, waited_s, why,
            o->require_endpoints ? " and /health to list endpoints and say healthy" : "",
            o->consecutive, p->attempt);
}

int cmd_ready(int argc, char **argv)
{
    const char *base_url = NULL, *api_key = NULL;
    double timeout_s = 0, interval_s = 0;
    long long consecutive = 0;
    bool require = false;
    struct opt opts[] = {
        CMD_OPT_BASE_URL(&base_url),
        {.name = "timeout-s",
         .type = OPT_DURATION,
         .dest = &timeout_s,
         .def = "300",
         .help = "give up after this long"},
        {.name = "interval-s",
         .type = OPT_DURATION,
         .dest = &interval_s,
         .def = "5",
         .min = 0.01,
         .max = 3600,
         .help = "time between polls"},
        {.name = "consecutive",
         .type = OPT_INT,
         .dest = &consecutive,
         .def = "2",
         .min = 1,
         .max = 1000,
         .help = "good polls in a row needed"},
        {.name = "require-endpoints",
         .type = OPT_BOOL,
         .dest = &require,
         .help = "also require /health to list endpoints and say healthy"},
        CMD_OPT_API_KEY(&api_key),
        {0},
    };
    int rc =
        cmd_parse("ready", "kvbench ready [options]",
                  "Wait until the server is ready: /v1/models lists a model (and with\n"
                  "--require-endpoints /health lists endpoints and says healthy) on\n"
                  "--consecutive polls in a row. Exit 0 when ready; on timeout print the last\n"
                  "/health and /v1/models answers and exit 1.",
                  opts, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct ready_watch w = {.o = {.base_url = base_url,
                                  .api_key = api_key && *api_key ? api_key : NULL,
                                  .timeout_s = timeout_s,
                                  .interval_s = interval_s,
                                  .consecutive = (int)consecutive,
                                  .require_endpoints = require,
                                  .stop = &stop_flag,
                                  .progress = progress}};
    w.o.user = &w;
    char *health = NULL, *models = NULL;
    uint64_t t0 = clock_now_ns();
    rc = ready_wait(&w.o, &health, &models);
    if (rc == 0) {
        printf("ready: %s is ready\n", base_url);
    } else {
        printf("ready: %s not ready after %.0f s\n", base_url, timeout_s);
        print_body("last /health", 0, health);
        print_body("last /v1/models", 0, models);
        fflush(stdout);
        ready_gave_up(&w, (double)(clock_now_ns() - t0) / 1e9);
    }
    free(health);
    free(models);
    return rc == 0 ? 0 : 1;
}

int cmd_health(int argc, char **argv)
{
    const char *base_url = NULL, *api_key = NULL;
    double timeout_s = 0;
    struct opt opts[] = {
        CMD_OPT_BASE_URL(&base_url),
        {.name = "timeout-s",
         .type = OPT_DURATION,
         .dest = &timeout_s,
         .def = "10",
         .help = "per request"},
        CMD_OPT_API_KEY(&api_key),
        {0},
    };
    int rc = cmd_parse("health", "kvbench health [options]",
                       "Print /health and /v1/models, pretty. Exit 1 when the server is\n"
                       "unreachable, /health is not 2xx or reports an unhealthy status, or\n"
                       "/v1/models does not answer a model list.",
                       opts, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    const char *key = api_key && *api_key ? api_key : NULL;
    char err[ERR_LEN] = "", merr[ERR_LEN] = "";
    char *hbody = NULL, *mbody = NULL;
    long hs = server_health(base_url, key, timeout_s, &hbody, err);
    int models = server_models(base_url, key, timeout_s, NULL, 0, &mbody, merr);
    print_body("/health", hs, hs ? hbody : NULL);
    if (!hs)
        printf("(unreachable: %s)\n", err);
    print_body("/v1/models", 0, mbody);
    if (models < 0)
        printf("(%s)\n", merr);
    const char *status;
    int endpoints;
    bool ok = hs >= 200 && hs < 300 && ready_health_ok(hbody, &status, &endpoints) && models >= 0;
    free(hbody);
    free(mbody);
    if (!ok)
        fprintf(stderr, "kvbench health: %s is not healthy\n", base_url);
    return ok ? 0 : 1;
}

int cmd_smoke(int argc, char **argv)
{
    const char *base_url = NULL, *api_key = NULL, *model_id = NULL, *message = NULL;
    const char *add_bos = NULL;
    long long max_tokens = 0;
    double temperature = 0, timeout_s = 0;
    struct opt_list stop = {0};
    struct opt opts[] = {
        CMD_OPT_BASE_URL(&base_url),
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
         .type = OPT_ENUM,
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
        CMD_OPT_API_KEY(&api_key),
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
