/*
 * wire.c - every response shape of the embedded engine, per personality (the catalogue's rows,
 * model/engines.c): SSE chunks and the unary completion object, for /v1/completions and
 * /v1/chat/completions (r->chat: chat.completion(.chunk), a role chunk first), usage / cached
 * tokens / llama.cpp timings, error bodies, /health and /v1/models. The scheduler hands text to
 * wire_stream_text / wire_stream_end and never formats anything itself; server.c sends what these
 * functions build.
 *
 * Sources for each shape are listed in docs/ENGINES.md.
 */
#include "engine/internal.h"

#include "util/clock.h"
#include "util/json.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ the personality */

const struct personality *personality_find(const char *s)
{
    return engine_personality_find(s);
}

/* The engine's personality: the catalogue's row, Dynamo's when none was chosen. */
static const struct personality *pers(const struct engine *e)
{
    return e->cfg.personality ? e->cfg.personality : ENGINE_DYNAMO.serve;
}

/* ------------------------------------------------------------ usage and timings */

static void usage_members(const struct ereq *r, struct buf *o)
{
    const struct personality *p = pers(r->eng);
    buf_printf(o, "\"usage\":{\"prompt_tokens\":%zu,\"completion_tokens\":%zu,\"total_tokens\":%zu",
               r->prompt.n, r->generated, r->prompt.n + r->generated);
    if (p->usage_details && !r->eng->cfg.omit_usage_details)
        buf_printf(o, ",\"prompt_tokens_details\":{\"cached_tokens\":%zu}", r->cached_tokens);
    buf_append_char(o, '}');
    if (p->timings) {
        /* llama.cpp: prompt_n counts the prompt tokens evaluated, cache_n those reused. */
        double prompt_ms =
            r->t_first_ns > r->t_arrival_ns ? (double)(r->t_first_ns - r->t_arrival_ns) / 1e6 : 0;
        double pred_ms =
            r->t_last_ns > r->t_first_ns ? (double)(r->t_last_ns - r->t_first_ns) / 1e6 : 0;
        size_t evaluated = r->prompt.n - r->cached_tokens;
        buf_append_str(o, ",\"timings\":{");
        if (!r->eng->cfg.omit_cache_n)
            buf_printf(o, "\"cache_n\":%zu,", r->cached_tokens);
        buf_printf(o,
                   "\"prompt_n\":%zu,\"prompt_ms\":%.3f,"
                   "\"prompt_per_token_ms\":%.3f,\"predicted_n\":%zu,\"predicted_ms\":%.3f,"
                   "\"predicted_per_token_ms\":%.3f}",
                   evaluated, prompt_ms, evaluated ? prompt_ms / (double)evaluated : 0.0,
                   r->generated, pred_ms,
                   r->generated > 1 ? pred_ms / (double)(r->generated - 1) : 0.0);
    }
}

/* ------------------------------------------------------------ streams */

/* "text_completion" / "chat.completion.chunk" / "chat.completion". */
static const char *object_name(const struct ereq *r, bool chunk)
{
    if (!r->chat)
        return "text_completion";
    return chunk ? "chat.completion.chunk" : "chat.completion";
}

static void chunk_head(const struct ereq *r, struct buf *o)
{
    buf_printf(o, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":\"",
               r->cmpl_id, object_name(r, true), r->created);
    json_escape_append(o, r->model, strlen(r->model));
    buf_append_str(o, "\",");
}

/* A chat stream's first chunk: the assistant's role, no text yet (content "" as vLLM, SGLang,
 * TensorRT-LLM and Dynamo send it; null under llama.cpp). A client must not read it as a token. */
static void role_chunk(struct ereq *r)
{
    struct buf *o = &r->out;
    chunk_head(r, o);
    buf_printf(o,
               "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":%s},"
               "\"logprobs\":null,\"finish_reason\":null}]}\n\n",
               pers(r->eng)->chat_role_null ? "null" : "\"\"");
    r->role_sent = true;
}

void wire_stream_text(struct ereq *r, const char *text, size_t len, const char *finish)
{
    const struct personality *p = pers(r->eng);
    struct buf *o = &r->out;
    if (r->chat && !r->role_sent)
        role_chunk(r);
    chunk_head(r, o);
    if (!r->chat) {
        buf_append_str(o, "\"choices\":[{\"index\":0,\"text\":\"");
        json_escape_append(o, text, len);
        buf_append_str(o, "\",");
    } else if (len || !finish) {
        buf_append_str(o, "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
        json_escape_append(o, text, len);
        buf_append_str(o, "\"},");
    } else { /* the finish alone: an empty delta, as OpenAI and llama.cpp send it */
        buf_append_str(o, "\"choices\":[{\"index\":0,\"delta\":{},");
    }
    buf_append_str(o, "\"logprobs\":null,\"finish_reason\":");
    if (finish)
        buf_printf(o, "\"%s\"", finish);
    else
        buf_append_str(o, "null");
    buf_append_str(o, "}]");
    if (finish && p->usage_on_last_chunk) {
        buf_append_char(o, ',');
        usage_members(r, o);
    }
    buf_append_str(o, "}\n\n");
}

void wire_stream_end(struct ereq *r)
{
    const struct personality *p = pers(r->eng);
    if (r->include_usage && p->usage_chunk) {
        chunk_head(r, &r->out);
        buf_append_str(&r->out, "\"choices\":[],");
        usage_members(r, &r->out);
        buf_append_str(&r->out, "}\n\n");
    }
    buf_append_str(&r->out, "data: [DONE]\n\n");
}

json_t *wire_unary(const struct ereq *r)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":\"", r->cmpl_id,
               object_name(r, false), r->created);
    json_escape_append(&b, r->model, strlen(r->model));
    buf_append_str(&b, r->chat ? "\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                                 "\"content\":\""
                               : "\",\"choices\":[{\"index\":0,\"text\":\"");
    json_escape_append(&b, r->text.data ? r->text.data : "", r->text.len);
    buf_printf(&b, "\"%s,\"logprobs\":null,\"finish_reason\":\"%s\"}],", r->chat ? "}" : "",
               r->finish_reason ? r->finish_reason : "stop");
    usage_members(r, &b);
    buf_append_char(&b, '}');
    json_t *j = json_loadb(buf_cstr(&b), b.len, 0, NULL);
    buf_free(&b);
    return j;
}

/* ------------------------------------------------------------ errors */

/* OpenAI's code strings where one exists for the case; else the status. */
json_t *wire_error(const struct engine *e, unsigned status, const char *type, const char *param,
                   const char *code, const char *msg)
{
    const struct personality *p = pers(e);
    json_t *jparam = param ? json_string(param) : json_null();
    json_t *jcode = code ? json_string(code) : json_integer((json_int_t)status);
    switch (p->errors) {
    case ERROR_OBJECT:
        json_decref(jcode);
        return json_pack("{s:s, s:s, s:s, s:o, s:i}", "object", "error", "message", msg, "type",
                         type, "param", jparam, "code", (int)status);
    case ERROR_LLAMACPP:
        json_decref(jcode);
        json_decref(jparam);
        return json_pack("{s:{s:i, s:s, s:s}}", "error", "code", (int)status, "message", msg,
                         "type", type);
    case ERROR_OPENAI:
    default:
        return json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", msg, "type", type, "param",
                         jparam, "code", jcode);
    }
}

/* ------------------------------------------------------------ /health and /v1/models */

json_t *wire_model_object(const struct engine *e)
{
    const struct personality *p = pers(e);
    json_t *m = json_pack("{s:s, s:s, s:I, s:s}", "id", e->cfg.model_id, "object", "model",
                          "created", (json_int_t)e->created, "owned_by", p->owned_by);
    if (p->models_max_len) {
        json_object_set_new(m, "root", json_string(e->cfg.model_id));
        json_object_set_new(m, "max_model_len", json_integer((json_int_t)e->cfg.model.max_context));
    }
    if (p->models_meta)
        json_object_set_new(m, "meta",
                            json_pack("{s:I, s:I}", "n_ctx_train",
                                      (json_int_t)e->cfg.model.max_context, "n_vocab",
                                      (json_int_t)128256));
    return m;
}

/* The name of a chat template ("llama3", "chatml", "plain"). */
static const char *chat_tpl_name(enum chat_template t)
{
    const char *n = names_name(CHAT_TEMPLATE_NAMES, (int)t);
    return n ? n : "";
}

/* llama.cpp's GET /props: the server's settings, its context size among them (the harness's
 * preflight reads default_generation_settings.n_ctx there). chat_template is the Jinja text in
 * llama.cpp; kvbench has no Jinja, so it is the name of the template /v1/chat/completions
 * renders with. */
json_t *wire_props(const struct engine *e)
{
    return json_pack("{s:{s:I, s:I}, s:I, s:s, s:s}", "default_generation_settings", "n_ctx",
                     (json_int_t)e->cfg.model.max_context, "n_predict", (json_int_t)-1,
                     "total_slots", (json_int_t)e->cfg.max_num_seqs, "model_path", e->cfg.model_id,
                     "chat_template", chat_tpl_name(e->cfg.chat_tpl));
}

/* status_out: the HTTP status; returns the body (NULL: an empty body). */
json_t *wire_health(const struct engine *e, bool serving, bool draining, bool listed,
                    double uptime_s, unsigned *status_out)
{
    const struct personality *p = pers(e);
    *status_out = serving ? 200 : 503;
    switch (p->health) {
    case HEALTH_EMPTY:
        return NULL;
    case HEALTH_LLAMACPP:
        if (serving)
            return json_pack("{s:s}", "status", "ok");
        return json_pack("{s:{s:i, s:s, s:s}}", "error", "code", 503, "message",
                         draining ? "Server is shutting down" : "Loading model", "type",
                         "unavailable_error");
    case HEALTH_DYNAMO:
    default:
        break;
    }
    json_t *eps = json_array(), *inst = json_array();
    if (listed) {
        char addr[64];
        snprintf(addr, sizeof addr, "%s:%d", e->cfg.host, e->port);
        json_array_append_new(eps, json_string(e->cfg.endpoint));
        const char *ep =
            strncmp(e->cfg.endpoint, "dyn://", 6) == 0 ? e->cfg.endpoint + 6 : e->cfg.endpoint;
        char ns[64] = "dynamo", comp[64] = "kvbench", name[64];
        const char *d1 = strchr(ep, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        if (d1 && d2) {
            snprintf(ns, sizeof ns, "%.*s", (int)(d1 - ep), ep);
            snprintf(comp, sizeof comp, "%.*s", (int)(d2 - d1 - 1), d1 + 1);
            snprintf(name, sizeof name, "%s", d2 + 1);
        } else {
            snprintf(name, sizeof name, "%s", ep);
        }
        json_array_append_new(inst,
                              json_pack("{s:s, s:s, s:s, s:I, s:{s:s}}", "namespace", ns,
                                        "component", comp, "endpoint", name, "instance_id",
                                        (json_int_t)e->instance_id, "transport", "http", addr));
    }
    const char *status = draining ? "shutting_down" : serving ? "healthy" : "not_ready";
    return json_pack("{s:s, s:o, s:o, s:f}", "status", status, "endpoints", eps, "instances", inst,
                     "uptime_s", uptime_s);
}
