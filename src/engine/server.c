/*
 * server.c - the engine's HTTP front, on libmicrohttpd with its internal epoll thread(s).
 *
 * Connections never block a thread. A streamed completion is a callback response: its reader
 * copies whatever SSE bytes the scheduler has produced and, when there are none yet, suspends
 * the connection and returns 0 (the pattern microhttpd.h prescribes); the scheduler resumes it
 * when it adds output. A unary completion suspends in the access handler until the scheduler
 * finishes it, and is answered when the handler runs again after the resume. Both sides use the
 * request's lock and its `suspended` flag, so a resume always matches a suspend, and a
 * connection that has completed (`conn_gone`) is never touched again. A stream whose client
 * stops reading is bounded: the scheduler pauses it when engine_stream_out_limit() bytes wait
 * (internal.h), and the reader unpauses it once the client has taken half of them.
 *
 * What the headers alone decide is answered from the access handler's first call, before any
 * body is read (request framing); how long a connection may take over its headers or idle
 * between requests, and whose slot a newcomer takes when all are in use, is the connection
 * table's (connection hygiene).
 *
 * The listening sockets are opened here (not by MHD) so that a busy port is a clear error and
 * port 0 picks a free port that we can report.
 */
#include "engine/server.h"

#include "engine/internal.h"
#include "engine/sched.h"

#include "util/clock.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/json.h"
#include "util/log.h"
#include "util/version.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

struct hctx {
    struct buf body;
    bool submitted;
    struct ereq *req;
};

/* ------------------------------------------------------------ helpers */

/* Every response names the embedded engine, whatever personality it shows: a harness that reads
 * it (kvbench run's engine detection) knows it measures kvbench serve, not the engine imitated. */
#define SERVER_HEADER "Server"
static pthread_once_t server_header_once = PTHREAD_ONCE_INIT;
static char server_header_value[64];
static void server_header_init(void)
{
    snprintf(server_header_value, sizeof server_header_value, "kvbench-serve/%s", KVBENCH_VERSION);
}
static void server_header(struct MHD_Response *resp)
{
    pthread_once(&server_header_once, server_header_init);
    MHD_add_response_header(resp, SERVER_HEADER, server_header_value);
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *ctype,
                                 const char *body, size_t len, const char *request_id)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ctype);
    server_header(resp);
    if (request_id && *request_id)
        MHD_add_response_header(resp, "x-request-id", request_id);
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *v,
                                 const char *request_id)
{
    if (!v)
        return send_text(c, status, "application/json", "", 0, request_id);
    char *s = json_text(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(v);
    if (!s) {
        /* the answer could not be serialised: a fixed error that needs no memory to build */
        static const char OOM[] = "{\"error\":{\"message\":\"out of memory building the "
                                  "response\",\"type\":\"server_error\",\"code\":500}}";
        return send_text(c, 500, "application/json", OOM, sizeof OOM - 1, request_id);
    }
    enum MHD_Result rc = send_text(c, status, "application/json", s, strlen(s), request_id);
    free(s);
    return rc;
}

/* An error in the personality's shape (wire.c). code: OpenAI's code string or NULL. */
static enum MHD_Result send_error(struct engine *e, struct MHD_Connection *c, unsigned status,
                                  const char *type, const char *param, const char *code,
                                  const char *msg, const char *request_id)
{
    return send_json(c, status, wire_error(e, status, type, param, code, msg), request_id);
}

/* A request's wake_locked hook: resume its connection if it waits for output. */
static void conn_wake_locked(struct ereq *r)
{
    if (r->suspended && !r->conn_gone) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
}

/* STARTING until the KV manager is up and --startup-delay-s has passed. */
static enum engine_state current_state(struct engine *e)
{
    enum engine_state st = e->state;
    if (st == ENGINE_SERVING && clock_now_ns() < e->ready_at_ns)
        return ENGINE_STARTING;
    return st;
}

static bool model_listed(struct engine *e)
{
    if (current_state(e) != ENGINE_SERVING)
        return false;
    pthread_mutex_lock(&e->lock);
    bool dropped = e->model_dropped;
    pthread_mutex_unlock(&e->lock);
    return !dropped;
}

static enum MHD_Result handle_health(struct engine *e, struct MHD_Connection *c)
{
    enum engine_state st = current_state(e);
    unsigned status;
    json_t *body = wire_health(e, st == ENGINE_SERVING, st == ENGINE_DRAINING, model_listed(e),
                               (double)(clock_now_ns() - e->t_start_ns) / 1e9, &status);
    return send_json(c, status, body, NULL);
}

static enum MHD_Result handle_models(struct engine *e, struct MHD_Connection *c, const char *id)
{
    if (id) {
        if (model_listed(e) && strcmp(id, e->cfg.model_id) == 0)
            return send_json(c, MHD_HTTP_OK, wire_model_object(e), NULL);
        char msg[320];
        snprintf(msg, sizeof msg, "The model `%.200s` does not exist.", id);
        return send_error(e, c, MHD_HTTP_NOT_FOUND, "invalid_request_error", "model",
                          "model_not_found", msg, NULL);
    }
    json_t *data = json_array();
    if (model_listed(e))
        json_array_append_new(data, wire_model_object(e));
    return send_json(c, MHD_HTTP_OK, json_pack("{s:s, s:o}", "object", "list", "data", data), NULL);
}

static enum MHD_Result handle_metrics(struct engine *e, struct MHD_Connection *c, bool kv)
{
    struct buf b = BUF_INIT;
    bool json = false;
    if (kv)
        metrics_render_kvbm(e, &b);
    else
        metrics_render_api(e, &b, &json);
    if (buf_failed(&b)) { /* a page missing counters would read as counters that did not move */
        buf_free(&b);
        return send_error(e, c, 500, "server_error", NULL, NULL,
                          "out of memory rendering the metrics", NULL);
    }
    enum MHD_Result rc =
        send_text(c, MHD_HTTP_OK, json ? "application/json" : "text/plain; version=0.0.4",
                  buf_cstr(&b), b.len, NULL);
    buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------ completions */

struct verr {
    unsigned status;
    const char *type;
    char param[64];   /* copied: it may name a key of the body, freed before the answer */
    const char *code; /* OpenAI's code string, or NULL */
    char msg[400];
};

static int bad(struct verr *v, unsigned status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(struct verr *v, unsigned status, const char *param, const char *fmt, ...)
{
    v->status = status;
    v->type = status >= 500 ? "internal_server_error" : "invalid_request_error";
    snprintf(v->param, sizeof v->param, "%s", param ? param : "");
    v->code = status == 404 ? "model_not_found" : NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->msg, sizeof v->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_prompt(const json_t *p, struct ereq *r, struct verr *v)
{
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0)))
        p = json_array_get(p, 0);
    if (json_is_string(p)) {
        size_t len = json_string_length(p);
        if (len == 0)
            return bad(v, 400, "prompt", "prompt must not be empty");
        if (tokenizer_encode(r->eng->cfg.tok, json_string_value(p), len, &r->prompt) < 0)
            return bad(v, 500, "prompt", "out of memory tokenizing the prompt");
        if (r->prompt.n == 0)
            return bad(v, 400, "prompt", "prompt has no tokens");
        return 0;
    }
    if (json_is_array(p)) {
        size_t n = json_array_size(p);
        if (n == 0)
            return bad(v, 400, "prompt", "prompt must not be empty");
        size_t i;
        json_t *t;
        json_array_foreach(p, i, t)
        {
            if (json_is_string(t) || json_is_array(t))
                return bad(v, 400, "prompt",
                           "batched prompts (a list of several prompts) are not supported");
            if (!json_is_integer(t) || json_integer_value(t) < 0 ||
                json_integer_value(t) > (json_int_t)UINT32_MAX)
                return bad(v, 400, "prompt",
                           "prompt must be a string or a list of token ids (integers >= 0)");
            if (tok_ids_push(&r->prompt, (uint32_t)json_integer_value(t)) < 0)
                return bad(v, 500, "prompt", "out of memory");
        }
        return 0;
    }
    return bad(v, 400, "prompt", "prompt must be a string or a list of token ids");
}

static int add_stop(struct ereq *r, const json_t *s, struct verr *v)
{
    if (!json_is_string(s))
        return bad(v, 400, "stop", "stop must be a string or a list of strings");
    size_t len = json_string_length(s);
    if (len == 0)
        return 0;
    if (len > 256)
        return bad(v, 400, "stop", "stop strings are limited to 256 bytes");
    char **st = fault_realloc(r->stops, (r->n_stops + 1) * sizeof *st);
    if (!st)
        return bad(v, 500, "stop", "out of memory");
    r->stops = st;
    r->stops[r->n_stops] = fault_malloc(len + 1);
    if (!r->stops[r->n_stops])
        return bad(v, 500, "stop", "out of memory");
    memcpy(r->stops[r->n_stops], json_string_value(s), len + 1);
    r->n_stops++;
    if (len > r->max_stop_len)
        r->max_stop_len = len;
    return 0;
}

/* A no-op value of a field the engine does not implement: accepted (n 1, echo false, best_of 1,
 * penalties 0, an empty logit_bias; for chat also logprobs false, response_format text and
 * parallel_tool_calls, which means nothing without tools). */
static bool noop_field(const char *k, const json_t *val, bool chat)
{
    if ((strcmp(k, "presence_penalty") == 0 || strcmp(k, "frequency_penalty") == 0) &&
        json_is_number(val) && json_number_value(val) == 0)
        return true;
    if (strcmp(k, "logit_bias") == 0 && json_is_object(val) && json_object_size(val) == 0)
        return true;
    if (!chat)
        return (strcmp(k, "echo") == 0 && json_is_false(val)) ||
               (strcmp(k, "best_of") == 0 && json_is_integer(val) && json_integer_value(val) == 1);
    if (strcmp(k, "response_format") == 0) {
        const json_t *t = json_is_object(val) ? json_object_get(val, "type") : NULL;
        return json_object_size(val) == 1 && json_is_string(t) &&
               strcmp(json_string_value(t), "text") == 0;
    }
    return (strcmp(k, "logprobs") == 0 && json_is_false(val)) ||
           (strcmp(k, "parallel_tool_calls") == 0 && json_is_boolean(val));
}

/* The request fields the engine implements; anything else is refused, never ignored. Fields
 * with a no-op value (noop_field), a null value, and user are accepted. */
static int check_fields(const json_t *j, bool chat, struct verr *v)
{
    static const char *const known[] = {"model", "max_tokens", "temperature", "top_p",
                                        "n",     "stop",       "stream",      "stream_options",
                                        "seed",  "ignore_eos", "user",        NULL};
    const char *k;
    const json_t *val;
    json_object_foreach((json_t *)j, k, val)
    {
        bool ok = chat ? strcmp(k, "messages") == 0 || strcmp(k, "max_completion_tokens") == 0
                       : strcmp(k, "prompt") == 0;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(k, known[i]) == 0;
        if (ok || json_is_null(val) || noop_field(k, val, chat))
            continue;
        return bad(v, 400, k, "`%.64s` is not supported by this server", k);
    }
    return 0;
}

/* A server that puts its own BOS before a text prompt (vLLM, SGLang, llama.cpp, TensorRT-LLM
 * with a Llama 3 tokenizer). A prompt that already starts with the BOS text gets a second one,
 * as those servers do (llama.cpp warns on every such request). */
static void add_bos(struct engine *e, struct ereq *r, const char *text)
{
    static const char bos_text[] = "<|begin_of_text|>";
    uint32_t bos = 128000; /* Llama 3's <|begin_of_text|> */
    if (tok_ids_push(&r->prompt, 0) < 0)
        return;
    memmove(r->prompt.ids + 1, r->prompt.ids, (r->prompt.n - 1) * sizeof *r->prompt.ids);
    r->prompt.ids[0] = bos;
    if (strncmp(text, bos_text, sizeof bos_text - 1) == 0) {
        pthread_mutex_lock(&e->fm.lock);
        uint64_t n = ++e->fm.double_bos;
        pthread_mutex_unlock(&e->fm.lock);
        if (n == 1 || n % 1000 == 0)
            log_warn("the prompt already starts with %s and the server adds its own: the prompt "
                     "now has 2 BOS tokens (%llu such prompts)",
                     bos_text, (unsigned long long)n);
    }
}

/* llama.cpp's context shift for a prompt over the slot's context: keep n_keep (0) tokens, drop
 * whole blocks of half the remaining context from the front until prompt + max_tokens fits. The
 * client is not told; usage reports the tokens actually evaluated. */
static void truncate_prompt(struct engine *e, struct ereq *r)
{
    size_t n_ctx = e->cfg.model.max_context;
    if (r->prompt.n + r->max_tokens <= n_ctx || r->max_tokens >= n_ctx)
        return;
    size_t block = n_ctx / 2;
    size_t room = n_ctx - r->max_tokens;
    size_t erased_blocks = (r->prompt.n - room + block - 1) / block;
    size_t drop = erased_blocks * block;
    if (drop >= r->prompt.n)
        drop = r->prompt.n - room;
    memmove(r->prompt.ids, r->prompt.ids + drop, (r->prompt.n - drop) * sizeof *r->prompt.ids);
    size_t before = r->prompt.n;
    r->prompt.n -= drop;
    pthread_mutex_lock(&e->fm.lock);
    e->fm.truncated++;
    pthread_mutex_unlock(&e->fm.lock);
    log_warn("prompt truncated to the context: %zu -> %zu tokens (n_ctx %zu)", before, r->prompt.n,
             n_ctx);
}

/* "model": the served model's id, or (llama.cpp) whatever the client names. */
static int parse_model(struct engine *e, const json_t *j, struct ereq *r, struct verr *v)
{
    const struct personality *pers = e->cfg.personality;
    snprintf(r->model, sizeof r->model, "%s", e->cfg.model_id);
    const json_t *model = json_object_get(j, "model");
    if (!model || json_is_null(model))
        return 0;
    if (!json_is_string(model))
        return bad(v, 400, "model", "model must be a string");
    if (pers && pers->model_ignored) {
        /* llama.cpp serves its one model whatever the field says, and echoes the field */
        snprintf(r->model, sizeof r->model, "%s", json_string_value(model));
    } else if (strcmp(json_string_value(model), e->cfg.model_id) != 0) {
        return bad(v, 404, "model", "The model `%.200s` does not exist.", json_string_value(model));
    }
    return 0;
}

/* max_tokens, temperature (into *temperature), top_p and n. */
static int parse_sampling(struct engine *e, const json_t *j, struct ereq *r, double *temperature,
                          struct verr *v)
{
    r->max_tokens = 16;
    /* chat: max_completion_tokens (OpenAI's newer name) wins over max_tokens, as in vLLM */
    static const char *const KEYS[] = {"max_tokens", "max_completion_tokens"};
    for (size_t i = 0; i < (r->chat ? 2u : 1u); i++) {
        const char *key = KEYS[i];
        const json_t *mt = json_object_get(j, key);
        if (!mt || json_is_null(mt))
            continue;
        if (!json_is_integer(mt) || json_integer_value(mt) < 1)
            return bad(v, 400, key, "%s must be an integer >= 1", key);
        if ((size_t)json_integer_value(mt) > e->cfg.max_tokens_limit)
            return bad(v, 400, key, "%s must be at most %zu", key, e->cfg.max_tokens_limit);
        r->max_tokens = (size_t)json_integer_value(mt);
    }
    *temperature = 1.0;
    const json_t *t = json_object_get(j, "temperature");
    if (t && !json_is_null(t)) {
        if (!json_is_number(t) || json_number_value(t) < 0 || json_number_value(t) > 2)
            return bad(v, 400, "temperature", "temperature must be a number from 0 to 2");
        *temperature = json_number_value(t);
    }
    const json_t *tp = json_object_get(j, "top_p");
    if (tp && !json_is_null(tp) &&
        (!json_is_number(tp) || json_number_value(tp) <= 0 || json_number_value(tp) > 1))
        return bad(v, 400, "top_p", "top_p must be a number in (0, 1]");
    const json_t *n = json_object_get(j, "n");
    if (n && !json_is_null(n) && !(json_is_integer(n) && json_integer_value(n) == 1))
        return bad(v, 400, "n", "only n = 1 is supported");
    return 0;
}

/* "stop": a string or a list of at most 16. */
static int parse_stops(const json_t *j, struct ereq *r, struct verr *v)
{
    const json_t *stop = json_object_get(j, "stop");
    if (!stop || json_is_null(stop))
        return 0;
    if (!json_is_array(stop))
        return add_stop(r, stop, v);
    if (json_array_size(stop) > 16)
        return bad(v, 400, "stop", "at most 16 stop strings are supported");
    size_t i;
    json_t *s;
    json_array_foreach(stop, i, s)
    {
        if (add_stop(r, s, v) < 0)
            return -1;
    }
    return 0;
}

/* A boolean field into *out (left as it is when absent or null). */
static int parse_bool(const json_t *j, const char *key, bool *out, struct verr *v)
{
    const json_t *b = json_object_get(j, key);
    if (!b || json_is_null(b))
        return 0;
    if (!json_is_boolean(b))
        return bad(v, 400, key, "%s must be a boolean", key);
    *out = json_is_true(b);
    return 0;
}

/* stream, ignore_eos and stream_options. */
static int parse_stream(const json_t *j, struct ereq *r, struct verr *v)
{
    if (parse_bool(j, "stream", &r->stream, v) < 0 ||
        parse_bool(j, "ignore_eos", &r->ignore_eos, v) < 0)
        return -1;
    const json_t *so = json_object_get(j, "stream_options");
    if (so && !json_is_null(so)) {
        const json_t *iu = json_is_object(so) ? json_object_get(so, "include_usage") : NULL;
        if (!json_is_object(so) || (iu && !json_is_null(iu) && !json_is_boolean(iu)))
            return bad(v, 400, "stream_options",
                       "stream_options must be {\"include_usage\": bool}");
        r->include_usage = iu && json_is_true(iu);
    }
    return 0;
}

/* The request's seed (the client's, 0 for greedy sampling, else a fresh one); the output is a
 * function of (seed, prompt). */
static int parse_seed(struct engine *e, const json_t *j, struct ereq *r, double temperature,
                      struct verr *v)
{
    uint64_t seed;
    const json_t *sd = json_object_get(j, "seed");
    if (sd && !json_is_null(sd)) {
        if (!json_is_integer(sd))
            return bad(v, 400, "seed", "seed must be an integer");
        seed = (uint64_t)json_integer_value(sd);
    } else if (temperature == 0) {
        seed = 0;
    } else {
        pthread_mutex_lock(&e->lock);
        seed = e->cfg.seed ^ (++e->serial * 0x9e3779b97f4a7c15ull);
        pthread_mutex_unlock(&e->lock);
    }
    r->seed = seed ^ XXH3_64bits(r->prompt.ids, r->prompt.n * sizeof *r->prompt.ids);
    textgen_init(&r->gen, r->seed);
    return 0;
}

/* ------------------------------------------------------------ chat messages */

/* A message's content: a string, or a list of {"type":"text","text":…} parts joined with "\n"
 * (as vLLM joins them) into joined, *off_out then being where it starts there. Absent or null
 * content is an empty message for the assistant (OpenAI allows it beside tool calls, which are
 * refused here), an error for the other roles. */
static int message_content(const json_t *m, size_t i, enum chat_role role, struct chat_msg *out,
                           struct buf *joined, size_t *off_out, struct verr *v)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    const json_t *c = json_object_get(m, "content");
    if (!c || json_is_null(c)) {
        if (role != CHAT_ASSISTANT)
            return bad(v, 400, param, "%s is required", param);
        return 0;
    }
    if (json_is_string(c)) {
        out->text = json_string_value(c);
        out->len = json_string_length(c);
        return 0;
    }
    if (!json_is_array(c))
        return bad(v, 400, param, "%s must be a string or a list of text parts", param);
    *off_out = joined->len;
    size_t k;
    const json_t *part;
    json_array_foreach(c, k, part)
    {
        snprintf(param, sizeof param, "messages[%zu].content[%zu].type", i, k);
        const json_t *type = json_object_get(part, "type");
        if (!json_is_string(type))
            return bad(v, 400, param, "%s must be \"text\"", param);
        if (strcmp(json_string_value(type), "text") != 0)
            return bad(v, 400, param, "content parts of type '%.40s' are not supported (text only)",
                       json_string_value(type));
        snprintf(param, sizeof param, "messages[%zu].content[%zu].text", i, k);
        const json_t *text = json_object_get(part, "text");
        if (!json_is_string(text) || json_object_size(part) != 2)
            return bad(v, 400, param, "a text part is {\"type\":\"text\",\"text\":string}");
        if (k)
            buf_append_char(joined, '\n');
        buf_append(joined, json_string_value(text), json_string_length(text));
    }
    out->len = joined->len - *off_out;
    return 0;
}

/* One message: an object with a role (system, user, assistant, developer = system), content and
 * optionally a name (accepted; no template renders it). Anything else is refused. */
static int parse_message(const json_t *m, size_t i, struct chat_msg *out, struct buf *joined,
                         size_t *off_out, struct verr *v)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%zu]", i);
    if (!json_is_object(m))
        return bad(v, 400, param, "%s must be an object", param);
    snprintf(param, sizeof param, "messages[%zu].role", i);
    const json_t *role = json_object_get(m, "role");
    int rv = json_is_string(role) ? names_value(CHAT_ROLE_NAMES, json_string_value(role)) : -1;
    if (!json_is_string(role))
        return bad(v, 400, param, "%s must be one of system, user, assistant, developer", param);
    if (rv < 0)
        return bad(v, 400, param,
                   "messages of role '%.40s' are not supported (system, user, assistant, "
                   "developer)",
                   json_string_value(role));
    out->role = (enum chat_role)rv;
    const char *k;
    const json_t *val;
    json_object_foreach((json_t *)m, k, val)
    {
        bool ok = strcmp(k, "role") == 0 || strcmp(k, "content") == 0 || json_is_null(val) ||
                  (strcmp(k, "name") == 0 && json_is_string(val));
        if (ok)
            continue;
        snprintf(param, sizeof param, "messages[%zu].%.40s", i, k);
        return bad(v, 400, param, "`%s` is not supported by this server", param);
    }
    return message_content(m, i, out->role, out, joined, off_out, v);
}

/* "messages" rendered through the engine's chat template (with its BOS, and the generation
 * prompt when gen_prompt) into *text. */
static int render_messages(struct engine *e, const json_t *msgs, bool gen_prompt, struct buf *text,
                           struct verr *v)
{
    if (!msgs || json_is_null(msgs))
        return bad(v, 400, "messages", "messages is required");
    if (!json_is_array(msgs))
        return bad(v, 400, "messages", "messages must be a list of messages");
    size_t n = json_array_size(msgs);
    if (n == 0)
        return bad(v, 400, "messages", "messages must not be empty");
    struct chat_msg *cm = fault_calloc(n, sizeof *cm);
    size_t *off = fault_calloc(n, sizeof *off);
    struct buf joined = BUF_INIT;
    int rc = cm && off ? 0 : bad(v, 500, "messages", "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        off[i] = SIZE_MAX;
        rc = parse_message(json_array_get(msgs, i), i, &cm[i], &joined, &off[i], v);
    }
    if (rc == 0 && buf_failed(&joined))
        rc = bad(v, 500, "messages", "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (off[i] != SIZE_MAX) /* the parts were joined: joined no longer moves */
            cm[i].text = joined.data + off[i];
    if (rc == 0) {
        struct chat_render_opts o = {
            .tpl = e->cfg.chat_tpl, .bos = true, .gen_prompt = gen_prompt, .literal = false};
        chat_render(&o, cm, n, text, NULL);
        if (buf_failed(text))
            rc = bad(v, 500, "messages", "out of memory rendering the messages");
    }
    buf_free(&joined);
    free(off);
    free(cm);
    return rc;
}

/* The chat request's prompt: its messages rendered, then tokenized with the engine's tokenizer.
 * No BOS is added: the template writes its own. */
static int parse_messages(struct engine *e, const json_t *j, struct ereq *r, struct verr *v)
{
    struct buf text = BUF_INIT;
    int rc = render_messages(e, json_object_get(j, "messages"), true, &text, v);
    if (rc == 0 && tokenizer_encode(e->cfg.tok, buf_cstr(&text), text.len, &r->prompt) < 0)
        rc = bad(v, 500, "messages", "out of memory tokenizing the messages");
    if (rc == 0 && r->prompt.n == 0)
        rc = bad(v, 400, "messages", "the messages have no tokens");
    buf_free(&text);
    return rc;
}

/* ------------------------------------------------------------ the request */

/* The prompt of a completions request (prompt, with the personality's BOS before a text). */
static int parse_text_prompt(struct engine *e, const json_t *j, struct ereq *r, struct verr *v)
{
    const struct personality *pers = e->cfg.personality;
    const json_t *prompt = json_object_get(j, "prompt");
    if (!prompt || json_is_null(prompt))
        return bad(v, 400, "prompt", "prompt is required");
    if (parse_prompt(prompt, r, v) < 0)
        return -1;
    if (pers && pers->adds_bos && json_is_string(prompt))
        add_bos(e, r, json_string_value(prompt));
    return 0;
}

/* The request object's fields into r, in the order a client sees their errors. Completions and
 * chat differ only in where the prompt comes from (prompt, or messages through the template). */
static int parse_fields(struct engine *e, const json_t *j, struct ereq *r, struct verr *v)
{
    const struct personality *pers = e->cfg.personality;
    if (parse_model(e, j, r, v) < 0 || check_fields(j, r->chat, v) < 0)
        return -1;
    if ((r->chat ? parse_messages(e, j, r, v) : parse_text_prompt(e, j, r, v)) < 0)
        return -1;
    double temperature = 1.0; /* parse_sampling sets it; the default keeps -O2 sure of it */
    if (parse_sampling(e, j, r, &temperature, v) < 0 || parse_stops(j, r, v) < 0 ||
        parse_stream(j, r, v) < 0 || parse_seed(e, j, r, temperature, v) < 0)
        return -1;
    if (pers && pers->truncate_prompt)
        truncate_prompt(e, r);
    struct fit f;
    if (sched_request_fits(e, r->prompt.n, r->max_tokens, &f) < 0) {
        const char *param = f.param;
        if (r->chat && strcmp(param, "prompt") == 0)
            param = "messages";
        else if (r->chat && strcmp(param, "max_tokens") == 0 &&
                 json_is_integer(json_object_get(j, "max_completion_tokens")))
            param = "max_completion_tokens";
        return bad(v, 400, param, "%s", f.msg);
    }
    return 0;
}

/* Validate the body into r. Returns 0 or -1 with v filled. */
static int parse_completion(struct engine *e, const char *body, size_t len, struct ereq *r,
                            struct verr *v)
{
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);
    if (!j)
        return bad(v, 400, NULL, "request body is not valid JSON: %s (line %d, column %d)",
                   jerr.text, jerr.line, jerr.column);
    int rc = json_is_object(j) ? parse_fields(e, j, r, v)
                               : bad(v, 400, NULL, "request body must be a JSON object");
    json_decref(j);
    return rc;
}

int server_parse_body(struct engine *e, bool chat, const char *body, size_t len, unsigned *status,
                      char *param, char *msg, size_t cap, struct tok_ids *ids)
{
    struct ereq *r = ereq_new(e);
    if (!r)
        return -1;
    r->chat = chat;
    struct verr v = {0};
    int rc = parse_completion(e, body, len, r, &v);
    *status = rc == 0 ? 200 : v.status;
    if (param)
        snprintf(param, sizeof v.param, "%s", rc == 0 ? "" : v.param);
    snprintf(msg, cap, "%s", rc == 0 ? "" : v.msg);
    if (rc == 0 && ids) {
        for (size_t i = 0; i < r->prompt.n && rc == 0; i++)
            rc = tok_ids_push(ids, r->prompt.ids[i]);
        if (rc < 0)
            *status = 500;
    }
    ereq_unref(r);
    return rc;
}

int server_parse_request(struct engine *e, const char *body, size_t len, unsigned *status,
                         char *param, char *msg, size_t cap)
{
    return server_parse_body(e, false, body, len, status, param, msg, cap, NULL);
}

/* MHD asks for more of a stream when its client has taken what it had: copy what the scheduler
 * produced, or suspend until it produces more. A stream the scheduler paused (its client left
 * engine_stream_out_limit() bytes unread) is given tokens again once half of that is read. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct ereq *r = cls;
    pthread_mutex_lock(&r->lock);
    if (r->out.len) {
        size_t n = r->out.len < max ? r->out.len : max;
        memcpy(out, r->out.data, n);
        buf_consume(&r->out, n);
        bool unpause = r->paused && r->out.len <= engine_stream_out_limit(r->eng) / 2;
        if (unpause)
            r->paused = false;
        pthread_mutex_unlock(&r->lock);
        if (unpause) /* (never under r->lock: the scheduler takes e->lock before a request's) */
            sched_kick(r->eng);
        return (ssize_t)n;
    }
    if (r->done) {
        bool cut = r->cut;
        pthread_mutex_unlock(&r->lock);
        return cut ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
    }
    r->suspended = true;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static void stream_free(void *cls)
{
    ereq_unref(cls);
}

/* The request's id: the client's x-request-id when it is a sane one, else a new one. */
static void request_id(struct engine *e, struct MHD_Connection *c, char *id, size_t cap)
{
    const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-request-id");
    bool ok = given && *given && strlen(given) < cap;
    for (const char *p = given; ok && *p; p++)
        ok = *p > 0x20 && *p < 0x7f && *p != '"' && *p != '\\';
    if (ok) {
        snprintf(id, cap, "%s", given);
    } else {
        pthread_mutex_lock(&e->lock);
        uint64_t n = ++e->serial;
        pthread_mutex_unlock(&e->lock);
        snprintf(id, cap, "kvb-%016llx-%llu", (unsigned long long)e->instance_id,
                 (unsigned long long)n);
    }
}

static void set_request_id(struct engine *e, struct MHD_Connection *c, struct ereq *r)
{
    request_id(e, c, r->id, sizeof r->id);
    snprintf(r->cmpl_id, sizeof r->cmpl_id, "%s-%s", r->chat ? "chatcmpl" : "cmpl", r->id);
}

static enum MHD_Result answer_unary(struct engine *e, struct MHD_Connection *c, struct ereq *r)
{
    pthread_mutex_lock(&r->lock);
    bool cut = r->cut;
    int status = r->error_status;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", r->error_msg);
    json_t *body = !cut && !status ? wire_unary(r) : NULL;
    pthread_mutex_unlock(&r->lock);
    if (cut)
        return MHD_NO; /* injected disconnect or shutdown: close without an answer */
    if (status)
        return send_error(e, c, (unsigned)status,
                          status >= 500 ? "internal_server_error" : "invalid_request_error", NULL,
                          NULL, msg, r->id);
    if (!body)
        return send_error(e, c, 500, "internal_server_error", NULL, NULL,
                          "cannot build the response", r->id);
    return send_json(c, MHD_HTTP_OK, body, r->id);
}

static void count_rejected(struct engine *e, bool stream)
{
    pthread_mutex_lock(&e->fm.lock);
    if (stream)
        e->fm.req_err_stream++;
    else
        e->fm.req_err_unary++;
    pthread_mutex_unlock(&e->fm.lock);
}

/* POST /v1/completions and /v1/chat/completions (chat): one path, the body's parser and the
 * answer's shape (wire.c) aside. */
static enum MHD_Result handle_completion(struct engine *e, struct MHD_Connection *c, struct hctx *h,
                                         bool chat)
{
    if (h->submitted) {
        /* Resumed after the scheduler finished a unary request. */
        return answer_unary(e, c, h->req);
    }
    struct ereq *r = ereq_new(e);
    if (!r)
        return send_error(e, c, 500, "internal_server_error", NULL, NULL, "out of memory", NULL);
    h->req = r;
    r->chat = chat;
    set_request_id(e, c, r);
    enum engine_state st = current_state(e);
    if (st == ENGINE_DRAINING) {
        count_rejected(e, false);
        return send_error(e, c, MHD_HTTP_SERVICE_UNAVAILABLE, "service_unavailable", NULL, NULL,
                          "the server is shutting down", r->id);
    }
    if (st == ENGINE_STARTING) {
        count_rejected(e, false);
        return send_error(e, c, MHD_HTTP_SERVICE_UNAVAILABLE, "service_unavailable", NULL, NULL,
                          "the model is not ready yet", r->id);
    }
    struct verr v = {0};
    if (parse_completion(e, buf_cstr(&h->body), h->body.len, r, &v) < 0) {
        count_rejected(e, r->stream);
        return send_error(e, c, v.status, v.type, v.param[0] ? v.param : NULL, v.code, v.msg,
                          r->id);
    }
    pthread_mutex_lock(&e->lock);
    bool dropped = e->model_dropped;
    if (!dropped) {
        e->accepted++;
        if (e->cfg.drop_model_after >= 0 && e->accepted >= e->cfg.drop_model_after) {
            e->model_dropped = true;
            log_warn("fault: the model unregisters after %lld requests", e->accepted);
        }
    }
    pthread_mutex_unlock(&e->lock);
    if (dropped) {
        count_rejected(e, r->stream);
        char msg[256];
        snprintf(msg, sizeof msg, "Model not found: %s", e->cfg.model_id);
        return send_error(e, c, MHD_HTTP_NOT_FOUND, "invalid_request_error", "model",
                          "model_not_found", msg, r->id);
    }
    if (e->cfg.fail_rate > 0 && sched_random(e) < e->cfg.fail_rate) {
        count_rejected(e, r->stream);
        return send_error(e, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_server_error", NULL, NULL,
                          "injected failure (--fail-rate)", r->id);
    }
    r->created = (long long)(clock_wall_ns() / 1000000000ull);
    r->t_arrival_ns = clock_now_ns();
    if (e->cfg.stall_ms > 0 && (e->cfg.stall_rate >= 1 || sched_random(e) < e->cfg.stall_rate))
        r->not_before_ns = r->t_arrival_ns + (uint64_t)(e->cfg.stall_ms * 1e6);
    r->conn = c;
    r->wake_locked = conn_wake_locked;
    r->plan_len = textgen_plan_length(&r->gen, r->max_tokens, r->ignore_eos);
    if (e->cfg.disconnect_rate > 0 && sched_random(e) < e->cfg.disconnect_rate)
        r->disconnect_at = 1 + (size_t)(sched_random(e) * (double)r->plan_len) / 2;
    h->submitted = true;
    sched_submit(e, r);
    if (r->stream) {
        ereq_ref(r); /* held by the response */
        struct MHD_Response *resp = MHD_create_response_from_callback(
            MHD_SIZE_UNKNOWN, STREAM_BLOCK_BYTES, stream_reader, r, stream_free);
        if (!resp) {
            ereq_unref(r);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        server_header(resp);
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "x-request-id", r->id);
        enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    pthread_mutex_lock(&r->lock);
    if (!r->done) {
        r->suspended = true;
        MHD_suspend_connection(c);
        pthread_mutex_unlock(&r->lock);
        return MHD_YES;
    }
    pthread_mutex_unlock(&r->lock);
    return answer_unary(e, c, r);
}

/* vLLM's /tokenize of a chat: {model, messages, add_generation_prompt (default true),
 * add_special_tokens (default false)} rendered through the chat template, as vLLM's
 * TokenizeChatRequest does. Returns 0, or -1 with v filled. */
static int tokenize_chat(struct engine *e, const json_t *j, struct tok_ids *ids, struct verr *v)
{
    bool gen = true, special = false;
    if (parse_bool(j, "add_generation_prompt", &gen, v) < 0 ||
        parse_bool(j, "add_special_tokens", &special, v) < 0)
        return -1;
    struct buf text = BUF_INIT;
    int rc = render_messages(e, json_object_get(j, "messages"), gen, &text, v);
    if (rc == 0 && special && e->cfg.personality->adds_bos)
        tok_ids_push(ids, 128000); /* as for a prompt: the template's own BOS stays */
    if (rc == 0 && tokenizer_encode(e->cfg.tok, buf_cstr(&text), text.len, ids) < 0)
        rc = bad(v, 500, "messages", "out of memory");
    buf_free(&text);
    return rc;
}

/* POST /tokenize in the personality's dialect; special tokens (the BOS) only when asked for.
 * Under a dialect that takes them (vLLM), a body with messages is a chat (tokenize_chat). */
static enum MHD_Result handle_tokenize(struct engine *e, struct MHD_Connection *c, struct hctx *h)
{
    const struct personality *p = e->cfg.personality;
    const struct tokenize_dialect *d = tokenize_dialect(p->tokenize); /* the catalogue's keys */
    json_t *j = json_loadb(buf_cstr(&h->body), h->body.len, 0, NULL);
    const json_t *text = json_object_get(j, d->text_key);
    bool chat = p->tokenize_messages && json_object_get(j, "messages") && !text;
    struct tok_ids ids = {0};
    if (chat) {
        struct verr v = {0};
        if (tokenize_chat(e, j, &ids, &v) < 0) {
            json_decref(j);
            tok_ids_free(&ids);
            return send_error(e, c, v.status, v.type, v.param[0] ? v.param : NULL, NULL, v.msg,
                              NULL);
        }
    } else if (!json_is_string(text)) {
        json_decref(j);
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be a string", d->text_key);
        return send_error(e, c, 400, "invalid_request_error", d->text_key, NULL, msg, NULL);
    } else {
        const json_t *sp = json_object_get(j, d->special_key);
        bool special = sp ? json_is_true(sp) : d->special_default;
        if (special && p->adds_bos)
            tok_ids_push(&ids, 128000);
        tokenizer_encode(e->cfg.tok, json_string_value(text), json_string_length(text), &ids);
    }
    json_decref(j);
    json_t *tokens = json_array();
    for (size_t i = 0; i < ids.n; i++)
        json_array_append_new(tokens, json_integer(ids.ids[i]));
    json_t *body = d->count_key ? json_pack("{s:I, s:I, s:o}", d->count_key, (json_int_t)ids.n,
                                            "max_model_len", (json_int_t)e->cfg.model.max_context,
                                            d->tokens_key, tokens)
                                : json_pack("{s:o}", d->tokens_key, tokens);
    tok_ids_free(&ids);
    return send_json(c, MHD_HTTP_OK, body, NULL);
}

/* ------------------------------------------------------------ connection hygiene */

/*
 * Every API connection has a slot (MHD's socket context) in e->conns, in one of three phases:
 *   HEADERS  connected, or the next request line came in: the request line and headers are
 *            due by a deadline (--request-read-timeout-s) that no trickle of bytes extends;
 *   ACTIVE   a request is being served: MHD's inactivity timeout (--idle-timeout-s) applies;
 *   IDLE     kept alive between requests: closed --idle-timeout-s after the last answer.
 * The reaper thread closes a connection whose deadline passed. A new connection that finds
 * every slot taken closes the connection idle longest, else the one that has been sending its
 * headers longest (once that is longer than a client needs), and is refused only when every
 * slot serves a request. A first byte that cannot begin an HTTP request (a TLS ClientHello,
 * binary garbage) closes the connection at once; the listener defers accept until the first
 * bytes are in (TCP_DEFER_ACCEPT) so that they can be looked at.
 *
 * Closing is shutdown(2) of the socket, under conns_lock: MHD, which owns the socket, then reads
 * the end of the stream and closes the connection its usual way (NOTIFY_CLOSED, which unlinks
 * the slot under the same lock, comes before MHD closes the socket, so the descriptor shut down
 * is always still this connection's).
 */
enum conn_phase { CONN_HEADERS, CONN_ACTIVE, CONN_IDLE };

struct conn_slot {
    struct conn_slot *prev, *next;
    int fd;
    enum conn_phase phase;
    uint64_t since_ns;    /* when the phase began */
    uint64_t deadline_ns; /* HEADERS and IDLE: closed at this time */
    bool closing;         /* shut down by us: no longer counted against the limit */
};

#define NS_PER_S 1000000000ull

static unsigned read_timeout_s(const struct engine *e)
{
    return e->cfg.request_read_timeout_s ? e->cfg.request_read_timeout_s : 10u;
}

static unsigned idle_timeout_s(const struct engine *e)
{
    return e->cfg.idle_timeout_s ? e->cfg.idle_timeout_s : 600u;
}

/* How long a connection must have been sending its headers before a newcomer may take its
 * slot: far longer than any client needs on a working link. */
static uint64_t header_evict_age_ns(const struct engine *e)
{
    uint64_t half = (uint64_t)read_timeout_s(e) * NS_PER_S / 2;
    return half < NS_PER_S ? half : NS_PER_S;
}

/* Under conns_lock. */
static void slot_close_locked(struct engine *e, struct conn_slot *s)
{
    if (s->closing)
        return;
    s->closing = true;
    e->conns_open--;
    shutdown(s->fd, SHUT_RDWR);
}

static struct conn_slot *conn_slot_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The connection's request moves on: HEADERS (its request line came in), ACTIVE (its headers
 * are in) or IDLE (answered, kept alive). */
static void conn_enter(struct engine *e, struct MHD_Connection *c, enum conn_phase phase)
{
    struct conn_slot *s = conn_slot_of(c);
    if (!s)
        return;
    uint64_t now = clock_now_ns();
    pthread_mutex_lock(&e->conns_lock);
    if (phase == CONN_HEADERS) {
        /* a new connection's deadline runs from its accept, not from its request line */
        if (s->phase == CONN_IDLE) {
            s->phase = CONN_HEADERS;
            s->since_ns = now;
            s->deadline_ns = now + read_timeout_s(e) * NS_PER_S;
        }
    } else if (phase == CONN_ACTIVE) {
        s->phase = CONN_ACTIVE;
        s->since_ns = now;
        s->deadline_ns = 0;
    } else {
        s->phase = CONN_IDLE;
        s->since_ns = now;
        s->deadline_ns = now + idle_timeout_s(e) * NS_PER_S;
    }
    pthread_mutex_unlock(&e->conns_lock);
}

/* Under conns_lock: the connection a newcomer may close to take its slot, or NULL. */
static struct conn_slot *pick_victim_locked(struct engine *e, uint64_t now)
{
    struct conn_slot *idle = NULL, *slow = NULL;
    uint64_t min_age = header_evict_age_ns(e);
    for (struct conn_slot *s = e->conns; s; s = s->next) {
        if (s->closing)
            continue;
        if (s->phase == CONN_IDLE && (!idle || s->since_ns < idle->since_ns))
            idle = s;
        else if (s->phase == CONN_HEADERS && now >= s->since_ns + min_age &&
                 (!slow || s->since_ns < slow->since_ns))
            slow = s;
    }
    return idle ? idle : slow;
}

/* Accept policy: a free slot, or one taken from an idle or header-trickling connection. (Our
 * limit, not MHD's, which stops listening at its limit and leaves the queue in CLOSE-WAIT.) */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addr;
    (void)addrlen;
    struct engine *e = cls;
    bool ok = true;
    pthread_mutex_lock(&e->conns_lock);
    if (e->conns_open >= e->cfg.max_connections) {
        struct conn_slot *victim = pick_victim_locked(e, clock_now_ns());
        if (victim) {
            slot_close_locked(e, victim);
            atomic_fetch_add(&e->evicted_connections, 1);
        } else {
            ok = false;
        }
    }
    pthread_mutex_unlock(&e->conns_lock);
    if (!ok) {
        atomic_fetch_add(&e->refused_connections, 1);
        return MHD_NO;
    }
    return MHD_YES;
}

/* Can b begin an HTTP request? A method is a token; an empty line before it is tolerated. */
static bool http_first_byte(unsigned char b)
{
    if (b == '\r' || b == '\n')
        return true;
    return b > 0x20 && b < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", b);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct engine *e = cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        struct conn_slot *s = *socket_context;
        if (!s)
            return;
        pthread_mutex_lock(&e->conns_lock);
        if (s->prev)
            s->prev->next = s->next;
        else
            e->conns = s->next;
        if (s->next)
            s->next->prev = s->prev;
        if (!s->closing)
            e->conns_open--;
        pthread_mutex_unlock(&e->conns_lock);
        free(s);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct conn_slot *s = ci ? calloc(1, sizeof *s) : NULL;
    if (!s)
        return; /* out of memory: served, but not counted or timed */
    s->fd = ci->connect_fd;
    s->phase = CONN_HEADERS;
    s->since_ns = clock_now_ns();
    s->deadline_ns = s->since_ns + read_timeout_s(e) * NS_PER_S;
    /* (MHD has read nothing yet: its first read comes after this notification) */
    unsigned char first;
    bool not_http = recv(s->fd, &first, 1, MSG_PEEK | MSG_DONTWAIT) == 1 && !http_first_byte(first);
    pthread_mutex_lock(&e->conns_lock);
    s->next = e->conns;
    if (e->conns)
        e->conns->prev = s;
    e->conns = s;
    e->conns_open++;
    if (not_http)
        slot_close_locked(e, s);
    pthread_mutex_unlock(&e->conns_lock);
    if (not_http)
        atomic_fetch_add(&e->non_http_closed, 1);
    *socket_context = s;
}

/* MHD has the next request line of a connection (its URI log hook). */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)uri;
    conn_enter(cls, c, CONN_HEADERS);
    return NULL; /* the access handler's first call still sees *req_cls == NULL */
}

/* Closes connections whose header or keep-alive deadline has passed. It sleeps until the next
 * deadline, at most a second: every deadline is set at least a second ahead (both timeouts are
 * whole seconds), so none is missed by more than the wake-up's latency. */
static void *reaper_main(void *arg)
{
    struct engine *e = arg;
    pthread_mutex_lock(&e->conns_lock);
    while (!e->reaper_stop) {
        uint64_t now = clock_now_ns(), next = now + NS_PER_S;
        for (struct conn_slot *s = e->conns; s; s = s->next) {
            if (s->closing || !s->deadline_ns)
                continue;
            if (s->deadline_ns <= now) {
                if (s->phase == CONN_HEADERS)
                    atomic_fetch_add(&e->header_timeouts, 1);
                slot_close_locked(e, s);
            } else if (s->deadline_ns < next) {
                next = s->deadline_ns;
            }
        }
        struct timespec ts = {.tv_sec = (time_t)(next / NS_PER_S),
                              .tv_nsec = (long)(next % NS_PER_S)};
        pthread_cond_timedwait(&e->conns_cond, &e->conns_lock, &ts);
    }
    pthread_mutex_unlock(&e->conns_lock);
    return NULL;
}

static int conns_init(struct engine *e, char *err)
{
    pthread_mutex_init(&e->conns_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->conns_cond, &ca);
    pthread_condattr_destroy(&ca);
    e->conns_ready = true;
    if (pthread_create(&e->reaper, NULL, reaper_main, e) != 0)
        return err_set(err, "cannot start the connection reaper thread");
    e->reaper_running = true;
    return 0;
}

static void reaper_stop(struct engine *e)
{
    if (!e->reaper_running)
        return;
    pthread_mutex_lock(&e->conns_lock);
    e->reaper_stop = true;
    pthread_cond_signal(&e->conns_cond);
    pthread_mutex_unlock(&e->conns_lock);
    pthread_join(e->reaper, NULL);
    e->reaper_running = false;
}

/* After the daemon stopped (every connection closed and unlinked). */
static void conns_free(struct engine *e)
{
    if (!e->conns_ready)
        return;
    while (e->conns) { /* none unless MHD skipped a notification */
        struct conn_slot *s = e->conns;
        e->conns = s->next;
        free(s);
    }
    pthread_cond_destroy(&e->conns_cond);
    pthread_mutex_destroy(&e->conns_lock);
    e->conns_ready = false;
}

/* Room for --max-connections sockets (and MHD's margin, and the engine's own files). */
static void raise_fd_limit(const struct engine *e)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)e->cfg.max_connections + 512;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            want = 0;
    }
    if (want < need)
        log_warn("the open-file limit (%llu) is below --max-connections + 512: connections past "
                 "it will fail (raise it with ulimit -n)",
                 (unsigned long long)(want ? want : rl.rlim_cur));
}

/* ------------------------------------------------------------ request framing */

/* What the request line and headers alone decide, answered before a byte of the body is read
 * (an answer queued in the access handler's first call also means no "100 Continue"): the
 * framing a proxy and this server could read differently (request smuggling) is refused, and so
 * is a body over the limit, from its Content-Length. */
struct framing {
    const char *length;     /* the first Content-Length */
    bool length_conflict;   /* another one that disagrees */
    const char *bad_coding; /* a Transfer-Encoding other than chunked */
    bool chunked;
};

static enum MHD_Result each_framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                           const char *value)
{
    (void)kind;
    struct framing *f = cls;
    if (!value)
        value = "";
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (!f->length)
            f->length = value;
        else if (strcmp(f->length, value) != 0)
            f->length_conflict = true;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        if (strcasecmp(value, "chunked") == 0)
            f->chunked = true;
        else if (!f->bad_coding)
            f->bad_coding = value;
    }
    return MHD_YES;
}

/* Returns 0 when the request may be read on, else the status to answer with msg filled. */
static unsigned check_framing(struct engine *e, struct MHD_Connection *c, const char *version,
                              char *msg, size_t cap)
{
    if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
        !MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)) {
        snprintf(msg, cap, "an HTTP/1.1 request must carry a Host header");
        return MHD_HTTP_BAD_REQUEST;
    }
    struct framing f = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, each_framing_header, &f);
    if (f.bad_coding) {
        snprintf(msg, cap, "Transfer-Encoding '%.60s' is not implemented (only chunked)",
                 f.bad_coding);
        return MHD_HTTP_NOT_IMPLEMENTED;
    }
    if (f.length_conflict) {
        snprintf(msg, cap, "conflicting Content-Length headers");
        return MHD_HTTP_BAD_REQUEST;
    }
    if (f.chunked && f.length) {
        snprintf(msg, cap, "both Transfer-Encoding and Content-Length");
        return MHD_HTTP_BAD_REQUEST;
    }
    if (f.length) {
        const char *p = f.length;
        unsigned long long n = 0;
        bool ok = *p != '\0';
        for (; ok && *p; p++) {
            ok = *p >= '0' && *p <= '9' && n <= (ULLONG_MAX - 9) / 10;
            n = n * 10 + (unsigned long long)(*p - '0');
        }
        if (!ok) {
            snprintf(msg, cap, "Content-Length is not a number");
            return MHD_HTTP_BAD_REQUEST;
        }
        if (n > e->cfg.max_body_bytes) {
            snprintf(msg, cap, "request body exceeds %zu bytes", e->cfg.max_body_bytes);
            return MHD_HTTP_CONTENT_TOO_LARGE;
        }
    }
    return 0;
}

#define COMPLETIONS_PATH "/v1/completions"
#define CHAT_PATH        "/v1/chat/completions"

/* The paths that generate (and count in the request metrics). */
static bool generates(const char *url)
{
    return strcmp(url, COMPLETIONS_PATH) == 0 || strcmp(url, CHAT_PATH) == 0;
}

/* The first call of the access handler for a request: its headers are all in. */
static enum MHD_Result on_headers(struct engine *e, struct MHD_Connection *c, const char *url,
                                  const char *version)
{
    conn_enter(e, c, CONN_ACTIVE);
    /* from now on the idle timeout applies (MHD's, an inactivity timeout: a body that stops
     * coming, a stream whose client stops reading) */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, idle_timeout_s(e));
    char msg[160];
    unsigned status = check_framing(e, c, version, msg, sizeof msg);
    if (!status)
        return MHD_YES;
    char id[80] = "";
    if (generates(url)) {
        request_id(e, c, id, sizeof id);
        count_rejected(e, false);
    }
    return send_error(e, c, status,
                      status >= 500 ? "internal_server_error" : "invalid_request_error", NULL, NULL,
                      msg, id);
}

/* ------------------------------------------------------------ MHD callbacks */

static enum MHD_Result on_api(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
    struct engine *e = cls;
    struct hctx *h = *req_cls;
    if (!h) {
        h = fault_calloc(1, sizeof *h);
        if (!h) /* answered at once: MHD then reads no body and closes the connection */
            return send_error(e, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_server_error", NULL,
                              NULL, "out of memory", NULL);
        *req_cls = h;
        return on_headers(e, c, url, version);
    }
    if (*upload_size) {
        /* A body with a Content-Length over the limit was refused with its headers; a chunked
         * one has none, and MHD cannot answer in the middle of a body: the connection is
         * closed where the body passes the limit, rather than read to its end. */
        bool over = h->body.len + *upload_size > e->cfg.max_body_bytes;
        if (!over && !buf_failed(&h->body)) /* (a body that could not be kept is answered 500) */
            buf_append(&h->body, upload, *upload_size);
        if (over) {
            log_debug("closing a connection whose chunked body passed %zu bytes",
                      e->cfg.max_body_bytes);
            if (generates(url))
                count_rejected(e, false);
            return MHD_NO;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (buf_failed(&h->body)) {
        if (generates(url))
            count_rejected(e, false);
        return send_error(e, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_server_error", NULL, NULL,
                          "out of memory reading the request body", NULL);
    }
    /* HEAD wherever GET is served: MHD sends the headers GET would get, without the body */
    bool get =
        strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    const char *what = NULL; /* the method a known path wants */
    bool tokenize = e->cfg.personality && e->cfg.personality->tokenize != TOKENIZE_NONE;
    bool props = e->cfg.personality && e->cfg.personality->props && !e->cfg.omit_props;
    if (generates(url)) {
        if (post)
            return handle_completion(e, c, h, strcmp(url, CHAT_PATH) == 0);
        what = "POST";
    } else if (tokenize && strcmp(url, "/tokenize") == 0) {
        if (post)
            return handle_tokenize(e, c, h);
        what = "POST";
    } else if (strcmp(url, "/health") == 0 || strcmp(url, "/live") == 0 ||
               strcmp(url, "/v1/models") == 0 || strncmp(url, "/v1/models/", 11) == 0 ||
               strcmp(url, "/metrics") == 0 || (props && strcmp(url, "/props") == 0)) {
        what = "GET";
    }
    if (!what)
        return send_error(e, c, MHD_HTTP_NOT_FOUND, "invalid_request_error", NULL, NULL,
                          "no such endpoint", NULL);
    if (strcmp(what, "GET") == 0 && !get) {
        char msg[96];
        snprintf(msg, sizeof msg, "use GET for %.60s", url);
        return send_error(e, c, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error", NULL, NULL,
                          msg, NULL);
    }
    if (strcmp(what, "POST") == 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "use POST for %.60s", url);
        return send_error(e, c, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error", NULL, NULL,
                          msg, NULL);
    }
    if (strcmp(url, "/health") == 0)
        return handle_health(e, c);
    if (strcmp(url, "/live") == 0)
        return send_json(c, MHD_HTTP_OK, json_pack("{s:s}", "status", "live"), NULL);
    if (strcmp(url, "/v1/models") == 0)
        return handle_models(e, c, NULL);
    if (strncmp(url, "/v1/models/", 11) == 0)
        return handle_models(e, c, url + 11);
    if (strcmp(url, "/props") == 0)
        return send_json(c, MHD_HTTP_OK, wire_props(e), NULL);
    return handle_metrics(e, c, false);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    struct engine *e = cls;
    conn_enter(e, c, CONN_IDLE);
    struct hctx *h = *req_cls;
    if (!h)
        return;
    *req_cls = NULL;
    if (h->req) {
        struct ereq *r = h->req;
        pthread_mutex_lock(&r->lock);
        r->conn_gone = true;
        bool was_done = r->done;
        if (!was_done)
            r->cancelled = true;
        pthread_mutex_unlock(&r->lock);
        if (!was_done)
            sched_kick(e);
        ereq_unref(r);
    }
    buf_free(&h->body);
    free(h);
}

static enum MHD_Result on_metrics(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    (void)version;
    (void)upload;
    struct engine *e = cls;
    if (!*req_cls) {
        *req_cls = (void *)1;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0)
        return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n", 19,
                         NULL);
    if (strcmp(url, "/metrics") == 0)
        return handle_metrics(e, c, true);
    return send_text(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10, NULL);
}

/* ------------------------------------------------------------ start / stop */

/* defer_s > 0: accept only once the first bytes are in (or after defer_s). */
static int open_listener(const char *host, int port, int defer_s, int *fd_out, int *port_out,
                         char *err)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    const char *h = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    if (inet_pton(AF_INET, h, &a.sin_addr) != 1) {
        return err_set(err, "--host: expected an IPv4 address such as 127.0.0.1, got '%s'", host);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return err_set(err, "socket: %s", strerror(errno));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (defer_s > 0) /* (an optimisation: without it the first-byte check sees less) */
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof defer_s);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        if (e == EADDRINUSE)
            return err_set(err, "port %d on %s is already in use", port, host);
        return err_set(err, "cannot bind %s:%d: %s", host, port, strerror(e));
    }
    socklen_t len = sizeof a;
    if (listen(fd, 1024) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        err_set(err, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    *fd_out = fd;
    *port_out = ntohs(a.sin_port);
    return 0;
}

static struct MHD_Daemon *start_daemon(struct engine *e, int fd, MHD_AccessHandlerCallback cb,
                                       unsigned threads, bool api)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    /* The daemon-wide timeout is the short one, an inactivity timeout until the request's
     * headers are in (the reaper's deadline bounds their total time); then the connection gets
     * the idle timeout (on_headers). */
    unsigned read_s = read_timeout_s(e);
    /* MHD's own limit is only a backstop above ours (on_accept): connections we shut down to
     * make room stay open for a moment until their thread closes them. */
    if (api)
        return MHD_start_daemon(
            flags, 0, on_accept, e, cb, e, MHD_OPTION_LISTEN_SOCKET, fd,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, e, MHD_OPTION_NOTIFY_CONNECTION,
            on_connection, e, MHD_OPTION_URI_LOG_CALLBACK, on_request_line, e,
            MHD_OPTION_CONNECTION_LIMIT, e->cfg.max_connections + 256u, MHD_OPTION_THREAD_POOL_SIZE,
            threads, MHD_OPTION_CONNECTION_TIMEOUT, read_s, MHD_OPTION_END);
    /* the metrics listener: its own connections and a short timeout, so a burst on the API port
     * or here never keeps a scraper out for long */
    return MHD_start_daemon(flags, 0, NULL, NULL, cb, e, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_TIMEOUT,
                            read_s < 5 ? read_s : 5u, MHD_OPTION_END);
}

int server_start(struct engine *e, char *err)
{
    e->api_fd = e->metrics_fd = -1;
    if (conns_init(e, err) < 0)
        return -1;
    raise_fd_limit(e);
    if (open_listener(e->cfg.host, e->cfg.port, (int)read_timeout_s(e), &e->api_fd, &e->port, err) <
        0)
        return -1;
    if (e->cfg.metrics_port >= 0 && open_listener(e->cfg.host, e->cfg.metrics_port, 0,
                                                  &e->metrics_fd, &e->metrics_port, err) < 0) {
        close(e->api_fd);
        e->api_fd = -1;
        return -1;
    }
    e->api = start_daemon(e, e->api_fd, on_api, e->cfg.http_threads, true);
    if (e->api)
        e->api_fd = -1; /* the daemon owns (and closes) it now */
    if (!e->api) {
        err_set(err, "cannot start the HTTP server on port %d", e->port);
        server_stop(e);
        return -1;
    }
    if (e->metrics_fd >= 0) {
        e->metrics_d = start_daemon(e, e->metrics_fd, on_metrics, 1, false);
        if (e->metrics_d)
            e->metrics_fd = -1;
        if (!e->metrics_d) {
            err_set(err, "cannot start the metrics server on port %d", e->metrics_port);
            server_stop(e);
            return -1;
        }
    }
    return 0;
}

void server_stop(struct engine *e)
{
    reaper_stop(e);
    if (e->api)
        MHD_stop_daemon(e->api);
    if (e->metrics_d)
        MHD_stop_daemon(e->metrics_d);
    e->api = e->metrics_d = NULL;
    if (e->api_fd >= 0)
        close(e->api_fd);
    if (e->metrics_fd >= 0)
        close(e->metrics_fd);
    e->api_fd = e->metrics_fd = -1;
    conns_free(e);
}
