/*
 * loadgen.c - closed-loop load over the HTTP client.
 *
 * One slot per worker owns a reusable struct http_req, an SSE parser and its buffers, so the
 * steady state allocates only what a row needs. Completion of a request (on_done, called from
 * http_client_poll) records the row and immediately starts the slot's next prompt.
 */
#include "bench/loadgen.h"

#include "bench/stats.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/jsonw.h"
#include "util/log.h"
#include "util/redact.h"
#include "util/sha256.h"
#include "util/sse.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct phase_ctx;

struct slot {
    struct http_req http;
    struct sse_parser sse;
    struct phase_ctx *pc;
    size_t worker_idx;
    bool busy;
    /* the current request */
    const struct prompt *prompt;
    const struct prepared *prep;
    size_t request_index;
    uint64_t wall_start_ns;
    struct buf text;
    struct buf errbody;
    struct dvec itl;
    uint64_t t_last_text;
    double ttft_ms;
    bool done_seen;
    char finish[32];
    long long usage_p, usage_c, cached;
    long long t_prompt_n, t_cache_n; /* llama.cpp timings */
    char response_id[160];
    char request_id[160];
    struct buf hints; /* JSON members "name":"value" of hinted headers */
    char event_error[480];
    char sent_id[96];
    uint64_t chunk_t; /* arrival time of the bytes being parsed */
    bool too_large;   /* the response passed --max-response-bytes: aborted, memory freed */
};

/* What a request sends, prepared before the phase's clock starts. */
struct prepared {
    char *body;
    size_t len;
    char payload_sha256[65];
    char identity_sha256[65];
};

struct phase_ctx {
    struct loadgen *lg;
    const char *phase;
    const struct prompt *const *prompts;
    struct prepared *prep;
    size_t n, next;
    struct buf row;
    struct slot *slots;
    size_t n_slots;
    struct http_client *client;
    struct req_result *results;
    size_t n_results;
    bool stopping;
};

/* ------------------------------------------------------------ request setup */

int loadgen_init(struct loadgen *lg, char *err)
{
    const struct gen_params *gp = lg->gp;
    json_t *stop = json_array();
    for (size_t i = 0; i < gp->n_stop; i++)
        json_array_append_new(stop, json_string(gp->stop[i]));
    lg->gen_params_json = json_pack("{s:I, s:f, s:f, s:o, s:b}", "max_tokens",
                                    (json_int_t)gp->max_tokens, "temperature", gp->temperature,
                                    "top_p", gp->top_p, "stop", stop, "stream", gp->stream);
    if (!lg->gen_params_json)
        return err_set(err, "cannot build the generation parameters");
    if (gp->has_seed)
        json_object_set_new(lg->gen_params_json, "seed", json_integer(gp->seed));
    if (json_canonical_sha256(lg->gen_params_json, lg->params_sha256) < 0)
        return err_set(err, "cannot hash the generation parameters");
    lg->gen_params_text = json_dumps(lg->gen_params_json, JSON_DUMP_FLAGS_LINE);
    if (!lg->gen_params_text)
        return err_set(err, "cannot serialise the generation parameters");
    return 0;
}

void loadgen_free(struct loadgen *lg)
{
    json_decref(lg->gen_params_json);
    lg->gen_params_json = NULL;
    free(lg->gen_params_text);
    lg->gen_params_text = NULL;
    for (size_t i = 0; i < lg->n_header_keys; i++)
        free(lg->header_key_list[i]);
    lg->n_header_keys = 0;
}

char *loadgen_body(const struct loadgen *lg, const struct prompt *p)
{
    const struct gen_params *gp = lg->gp;
    json_t *stop = json_array();
    for (size_t i = 0; i < gp->n_stop; i++)
        json_array_append_new(stop, json_string(gp->stop[i]));
    json_t *b = json_pack("{s:s, s:s%, s:I, s:f, s:f, s:o, s:b}", "model", lg->model, "prompt",
                          p->text, p->len, "max_tokens", (json_int_t)gp->max_tokens, "temperature",
                          gp->temperature, "top_p", gp->top_p, "stop", stop, "stream", gp->stream);
    if (!b)
        return NULL;
    if (gp->stream)
        json_object_set_new(b, "stream_options", json_pack("{s:b}", "include_usage", 1));
    if (gp->has_seed)
        json_object_set_new(b, "seed", json_integer(gp->seed));
    char *s = json_dumps(b, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(b);
    return s;
}

/* ------------------------------------------------------------ response parsing */

/* llama.cpp's per-response timings: prompt_n evaluated, cache_n reused. */
static void take_timings(struct slot *s, const json_t *t)
{
    const json_t *v;
    if (json_is_integer(v = json_object_get(t, "prompt_n")))
        s->t_prompt_n = (long long)json_integer_value(v);
    if (json_is_integer(v = json_object_get(t, "cache_n")))
        s->t_cache_n = (long long)json_integer_value(v);
}

static void take_usage(struct slot *s, const json_t *usage)
{
    if (!json_is_object(usage))
        return;
    const json_t *v;
    if (json_is_integer(v = json_object_get(usage, "prompt_tokens")))
        s->usage_p = (long long)json_integer_value(v);
    if (json_is_integer(v = json_object_get(usage, "completion_tokens")))
        s->usage_c = (long long)json_integer_value(v);
    const json_t *d = json_object_get(usage, "prompt_tokens_details");
    if (json_is_integer(v = json_object_get(d, "cached_tokens")))
        s->cached = (long long)json_integer_value(v);
}

static void note_error(struct slot *s, const char *fmt, const char *detail)
{
    if (!s->event_error[0])
        snprintf(s->event_error, sizeof s->event_error, fmt, detail);
}

/* The error message inside an OpenAI / vLLM error object, or NULL. */
static const char *error_message(const json_t *j)
{
    const json_t *e = json_object_get(j, "error");
    if (json_is_string(e))
        return json_string_value(e);
    if (json_is_object(e)) {
        const char *m = json_get_str(e, "message", NULL);
        return m ? m : "error object without a message";
    }
    if (json_is_string(json_object_get(j, "object")) &&
        strcmp(json_string_value(json_object_get(j, "object")), "error") == 0)
        return json_get_str(j, "message", "error");
    return NULL;
}

/* Text of choices[0] (completions: text; chat: delta.content or message.content). */
static const json_t *choice_text(const json_t *j, const json_t **finish)
{
    const json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    *finish = json_object_get(c, "finish_reason");
    const json_t *t = json_object_get(c, "text");
    if (!t)
        t = json_object_get(json_object_get(c, "delta"), "content");
    if (!t)
        t = json_object_get(json_object_get(c, "message"), "content");
    return json_is_string(t) ? t : NULL;
}

static int on_event(void *user, const char *event, const char *data, size_t len)
{
    (void)event;
    struct slot *s = user;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        s->done_seen = true;
        return 0;
    }
    json_error_t jerr;
    json_t *j = json_loadb(data, len, 0, &jerr);
    if (!j) {
        note_error(s, "malformed stream event: %s", jerr.text);
        return 0;
    }
    const char *em = error_message(j);
    if (em)
        note_error(s, "error event in stream: %.400s", em);
    const json_t *id = json_object_get(j, "id");
    if (json_is_string(id) && !s->response_id[0])
        snprintf(s->response_id, sizeof s->response_id, "%s", json_string_value(id));
    const json_t *finish = NULL;
    const json_t *txt = choice_text(j, &finish);
    if (json_is_string(finish))
        snprintf(s->finish, sizeof s->finish, "%s", json_string_value(finish));
    take_usage(s, json_object_get(j, "usage"));
    take_timings(s, json_object_get(j, "timings"));
    if (txt && json_string_length(txt) > 0) {
        buf_append(&s->text, json_string_value(txt), json_string_length(txt));
        uint64_t now = s->chunk_t; /* when the bytes carrying this event arrived */
        if (isnan(s->ttft_ms))
            s->ttft_ms = (double)(now - s->http.t_start_ns) / 1e6;
        else
            dvec_push(&s->itl, (double)(now - s->t_last_text) / 1e6);
        s->t_last_text = now;
    }
    json_decref(j);
    return 0;
}

static int on_data(struct http_req *r, const char *data, size_t len, uint64_t t_ns)
{
    struct slot *s = r->user;
    size_t cap = s->pc->lg->max_response_bytes ? s->pc->lg->max_response_bytes : (size_t)64 << 20;
    if (r->bytes_received > cap) {
        /* whatever it is (an endless SSE line, a huge body), it is not a completion we can
         * measure: stop reading and give the memory back now */
        s->too_large = true;
        sse_free(&s->sse); /* the buffers go; the parser stays usable */
        buf_free(&s->text);
        buf_free(&s->errbody);
        return 1;
    }
    if (r->status >= 400 || (r->status && r->status < 200)) {
        /* an error answer: keep its first bytes for the row */
        if (s->errbody.len < 4096)
            buf_append(&s->errbody, data, len < 4096 ? len : 4096);
        return 0;
    }
    if (!s->pc->lg->gp->stream) {
        buf_append(&s->errbody, data, len); /* the whole JSON answer */
        return 0;
    }
    s->chunk_t = t_ns;
    return sse_feed(&s->sse, data, len) < 0;
}

static bool hint_header(const char *name, size_t len)
{
    if (len >= 2 && strncasecmp(name, "x-", 2) == 0)
        return true;
    for (size_t i = 0; i + 5 <= len; i++) {
        if (strncasecmp(name + i, "trace", 5) == 0)
            return true;
        if (i + 7 <= len && strncasecmp(name + i, "request", 7) == 0)
            return true;
    }
    return false;
}

static void note_header_key(struct loadgen *lg, const char *key)
{
    for (size_t i = 0; i < lg->n_header_keys; i++)
        if (strcmp(lg->header_key_list[i], key) == 0)
            return;
    if (lg->n_header_keys < LOADGEN_MAX_HEADER_KEYS) {
        char *k = strdup(key);
        if (k)
            lg->header_key_list[lg->n_header_keys++] = k;
    }
}

static void on_header(struct http_req *r, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    struct slot *s = r->user;
    char key[128];
    if (nlen >= sizeof key)
        return;
    for (size_t i = 0; i < nlen; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    key[nlen] = '\0';
    note_header_key(s->pc->lg, key);
    if (strcmp(key, "x-request-id") == 0)
        snprintf(s->request_id, sizeof s->request_id, "%.*s", (int)(vlen < 159 ? vlen : 159),
                 value);
    if (hint_header(key, nlen)) {
        if (s->hints.len)
            buf_append_char(&s->hints, ',');
        buf_append_char(&s->hints, '"');
        json_escape_append(&s->hints, key, nlen);
        buf_append(&s->hints, "\":\"", 3);
        json_escape_append(&s->hints, value, vlen);
        buf_append_char(&s->hints, '"');
    }
}

/* ------------------------------------------------------------ rows */

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

static void write_row(struct phase_ctx *pc, struct slot *s, struct req_result *res,
                      uint64_t wall_end, const char *response_path)
{
    struct loadgen *lg = pc->lg;
    char ts0[CLOCK_ISO_LEN], ts1[CLOCK_ISO_LEN];
    clock_iso_utc(s->wall_start_ns, ts0);
    clock_iso_utc(wall_end, ts1);
    struct buf *b = &pc->row;
    buf_reset(b);
    struct jsonw w;
    jw_open(&w, b);
    jw_int(&w, "request_index", (long long)res->request_index); /* from 1, as the reference */
    jw_str(&w, "phase", pc->phase);
    jw_int(&w, "worker_idx", (long long)s->worker_idx);
    jw_str(&w, "start_ts", ts0);
    jw_str(&w, "end_ts", ts1);
    jw_num(&w, "latency_ms", res->latency_ms);
    jw_num(&w, "ttft_ms", res->ttft_ms);
    if (lg->gp->stream) {
        jw_begin_array(&w, "itl_ms");
        for (size_t i = 0; i < res->n_itl; i++)
            jw_elem_num(&w, res->itl[i]);
        jw_end_array(&w);
    } else {
        jw_null(&w, "itl_ms");
    }
    jw_num(&w, "tpot_ms", res->tpot_ms);
    jw_int(&w, "status_code", res->status);
    jw_str(&w, "request_id", s->request_id[0] ? s->request_id : NULL);
    jw_str(&w, "response_id", s->response_id[0] ? s->response_id : NULL);
    jw_str(&w, "prompt_id", s->prompt->id);
    jw_str(&w, "prompt_set", s->prompt->set);
    jw_int(&w, "prompt_target_tokens", (long long)s->prompt->target);
    jw_int(&w, "prompt_tokens_est", (long long)s->prompt->est_tokens);
    if (res->usage_prompt >= 0)
        jw_int(&w, "usage_prompt_tokens", res->usage_prompt);
    else
        jw_null(&w, "usage_prompt_tokens");
    if (res->usage_completion >= 0)
        jw_int(&w, "usage_completion_tokens", res->usage_completion);
    else
        jw_null(&w, "usage_completion_tokens");
    if (res->cached >= 0)
        jw_int(&w, "cached_tokens", res->cached);
    else
        jw_null(&w, "cached_tokens");
    jw_str(&w, "cached_tokens_source", res->cached_source);
    if (res->timings_prompt_n >= 0)
        jw_int(&w, "timings_prompt_n", res->timings_prompt_n);
    else
        jw_null(&w, "timings_prompt_n");
    jw_str(&w, "finish_reason", res->finish_reason[0] ? res->finish_reason : NULL);
    jw_bool(&w, "server_truncated", res->server_truncated);
    jw_str(&w, "prompt_sha256", s->prompt->sha256);
    jw_str(&w, "generation_params_sha256", lg->params_sha256);
    jw_str(&w, "request_identity_sha256", res->identity_sha256);
    jw_str(&w, "request_payload_sha256", res->payload_sha256);
    jw_raw(&w, "generation_params", lg->gen_params_text);
    jw_int(&w, "output_len_chars", (long long)res->output_len_chars);
    jw_int(&w, "output_tokens_est", (long long)res->output_tokens_est);
    jw_str(&w, "error", res->error);
    jw_bool(&w, "stream", lg->gp->stream);
    jw_str(&w, "response_path", response_path);
    jw_object_raw(&w, "response_header_hints", buf_cstr(&s->hints), s->hints.len);
    jw_close(&w);
    buf_append_char(b, '\n');
    redact_buf(b); /* a server may echo the key back in an error body */
    if (fs_append_whole(lg->rows, b->data, b->len) < 0) { /* whole rows or nothing */
        if (lg->row_errors++ == 0)
            snprintf(lg->row_error, sizeof lg->row_error, "%s", strerror(errno));
        log_error("requests.jsonl: %s", strerror(errno));
    } else {
        lg->rows_written++;
    }
}

/* ------------------------------------------------------------ slots */

static int start_next(struct phase_ctx *pc, struct slot *s);

static char *dup_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *dup_error(const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return buf_detach(&b);
}

/* A printable, single-line excerpt of an error body (first 400 characters). */
static char *body_excerpt(const struct buf *b)
{
    size_t n = b->len < 400 ? b->len : 400;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = b->data[i];
        out[i] = c == '\n' || c == '\r' || c == '\t' ? ' ' : c;
    }
    out[n] = '\0';
    return out;
}

static void finish_request(struct http_req *r)
{
    struct slot *s = r->user;
    struct phase_ctx *pc = s->pc;
    struct loadgen *lg = pc->lg;
    uint64_t wall_end = clock_wall_ns();
    struct req_result *res = &pc->results[pc->n_results++];
    memset(res, 0, sizeof *res);
    res->request_index = s->request_index;
    res->worker_idx = s->worker_idx;
    res->prompt = s->prompt;
    res->status = r->status;
    res->transport = r->error;
    res->latency_ms = (double)(r->t_done_ns - r->t_start_ns) / 1e6;
    res->ttft_ms = s->ttft_ms;
    res->tpot_ms = NAN;
    res->usage_prompt = s->usage_p;
    res->usage_completion = s->usage_c;
    res->cached = s->cached;
    memcpy(res->payload_sha256, s->prep->payload_sha256, sizeof res->payload_sha256);
    memcpy(res->identity_sha256, s->prep->identity_sha256, sizeof res->identity_sha256);

    if (s->too_large) {
        size_t cap = lg->max_response_bytes ? lg->max_response_bytes : (size_t)64 << 20;
        res->error = dup_error("response_too_large: the response passed --max-response-bytes "
                               "(%zu bytes) and was dropped",
                               cap);
    } else if (r->error != HTTP_OK) {
        if (r->error == HTTP_ERR_ABORTED && pc->stopping)
            res->error = dup_error("interrupted before completion (%s)", r->error_text);
        else
            res->error = dup_error("%s", r->error_text);
    } else if (r->status < 200 || r->status >= 400) {
        char *ex = body_excerpt(&s->errbody);
        res->error = dup_error("HTTP %ld: %s", r->status, ex ? ex : "");
        free(ex);
    } else if (lg->gp->stream) {
        if (s->event_error[0])
            res->error = dup_error("%s", s->event_error);
        else if (!s->done_seen && !s->finish[0])
            res->error = dup_error("truncated stream: it ended without a finish_reason or "
                                   "[DONE]");
    } else {
        json_error_t jerr;
        json_t *j = json_loadb(buf_cstr(&s->errbody), s->errbody.len, 0, &jerr);
        if (!j) {
            res->error = dup_error("malformed response: %s", jerr.text);
        } else {
            const char *em = error_message(j);
            const json_t *finish = NULL;
            const json_t *txt = choice_text(j, &finish);
            if (em)
                res->error = dup_error("error in response: %.400s", em);
            else if (!txt)
                res->error = dup_error("response has no choices[0].text");
            else
                buf_append(&s->text, json_string_value(txt), json_string_length(txt));
            const json_t *id = json_object_get(j, "id");
            if (json_is_string(id))
                snprintf(s->response_id, sizeof s->response_id, "%s", json_string_value(id));
            take_usage(s, json_object_get(j, "usage"));
            take_timings(s, json_object_get(j, "timings"));
            if (json_is_string(finish))
                snprintf(s->finish, sizeof s->finish, "%s", json_string_value(finish));
            res->usage_prompt = s->usage_p;
            res->usage_completion = s->usage_c;
            res->cached = s->cached;
            json_decref(j);
        }
    }
    if (res->cached >= 0) {
        res->cached_source = "usage";
    } else if (s->t_cache_n >= 0) {
        res->cached = s->t_cache_n;
        res->cached_source = "timings";
    }
    res->timings_prompt_n = s->t_prompt_n;
    snprintf(res->finish_reason, sizeof res->finish_reason, "%s", s->finish);
    res->ok = res->error == NULL;
    if (res->ok && res->usage_prompt >= 0) {
        long long sent = (long long)s->prompt->est_tokens;
        long long tol = strcmp(lg->tok->kind, "heuristic") == 0
                            ? (long long)ceil(LOADGEN_TRUNCATION_TOLERANCE_HEURISTIC * (double)sent)
                            : 1;
        res->server_truncated = res->usage_prompt < sent - tol;
    }
    res->output_len_chars = utf8_chars(buf_cstr(&s->text), s->text.len);
    res->output_tokens_est = tokenizer_count_fast(lg->tok, buf_cstr(&s->text), s->text.len);
    if (s->itl.n) {
        res->itl = malloc(s->itl.n * sizeof *res->itl);
        if (res->itl) {
            memcpy(res->itl, s->itl.v, s->itl.n * sizeof *res->itl);
            res->n_itl = s->itl.n;
        }
    }
    long long out_tokens =
        res->usage_completion >= 0 ? res->usage_completion : (long long)res->output_tokens_est;
    if (!isnan(res->ttft_ms) && out_tokens > 1)
        res->tpot_ms = (res->latency_ms - res->ttft_ms) / (double)(out_tokens - 1);

    char rel[64];
    const char *response_path = NULL;
    if (lg->responses_dir) {
        char path[4096], err[ERR_LEN];
        snprintf(rel, sizeof rel, "responses/%06zu.txt", s->request_index);
        snprintf(path, sizeof path, "%s/%06zu.txt", lg->responses_dir, s->request_index);
        if (fs_write_atomic(path, buf_cstr(&s->text), s->text.len, err) == 0)
            response_path = rel;
        else
            log_warn("cannot store a response: %s", err);
    }
    write_row(pc, s, res, wall_end, response_path);
    s->busy = false;
    if (!pc->stopping)
        start_next(pc, s);
}

static void reset_slot(struct slot *s)
{
    sse_reset(&s->sse);
    buf_reset(&s->text);
    buf_reset(&s->errbody);
    s->itl.n = 0;
    s->t_last_text = 0;
    s->ttft_ms = NAN;
    s->done_seen = false;
    s->finish[0] = '\0';
    s->usage_p = s->usage_c = s->cached = -1;
    s->t_prompt_n = s->t_cache_n = -1;
    s->response_id[0] = s->request_id[0] = '\0';
    s->event_error[0] = '\0';
    s->too_large = false;
    buf_reset(&s->hints);
}

/* Start the next prompt on s. Returns 1 started, 0 nothing left, -1 error (recorded). */
static int start_next(struct phase_ctx *pc, struct slot *s)
{
    struct loadgen *lg = pc->lg;
    if (pc->next >= pc->n)
        return 0;
    reset_slot(s);
    s->prep = &pc->prep[pc->next];
    s->prompt = pc->prompts[pc->next++];
    s->request_index = ++lg->next_index; /* from 1, as the reference harness */
    struct http_req *r = &s->http;
    if (!r->headers) {
        /* Built once per worker. The last header, x-request-id, is rewritten in place for each
         * request: its buffer was sized for the longest id. */
        http_req_add_header(r, "Content-Type: application/json");
        http_req_add_header(r, lg->gp->stream ? "Accept: text/event-stream"
                                              : "Accept: application/json");
        if (lg->api_key) {
            struct buf auth = BUF_INIT;
            buf_printf(&auth, "Authorization: Bearer %s", lg->api_key);
            http_req_add_header(r, buf_cstr(&auth));
            buf_free(&auth);
        }
        memset(s->sent_id, 'x', sizeof s->sent_id - 1);
        s->sent_id[sizeof s->sent_id - 1] = '\0';
        http_req_add_header(r, s->sent_id);
    }
    struct curl_slist *last = r->headers;
    while (last->next)
        last = last->next;
    snprintf(last->data, sizeof s->sent_id, "x-request-id: %.40s-%zu", lg->run_id,
             s->request_index);
    r->url = lg->completions_url;
    r->method = "POST";
    r->body = s->prep->body;
    r->body_len = s->prep->len;
    r->timeout_s = lg->timeout_s;
    r->on_data = on_data;
    r->on_header = on_header;
    r->on_done = finish_request;
    r->user = s;
    s->wall_start_ns = clock_wall_ns();
    s->busy = true;
    char err[ERR_LEN];
    if (http_client_start(pc->client, r, err) < 0) {
        log_error("cannot start a request: %s", err);
        s->busy = false;
        return -1;
    }
    return 1;
}

static void free_prepared(struct prepared *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        free(p[i].body);
    free(p);
}

/* Bodies and identity hashes of every request of the phase, before its clock starts. */
static int prepare(struct loadgen *lg, const struct prompt *const *prompts, size_t n,
                   struct prepared *out)
{
    for (size_t i = 0; i < n; i++) {
        const struct prompt *p = prompts[i];
        if (i > 0 && prompts[i - 1] == p) {
            out[i] = out[i - 1];
            out[i].body = strdup(out[i - 1].body);
            if (!out[i].body)
                return -1;
            continue;
        }
        out[i].body = loadgen_body(lg, p);
        if (!out[i].body)
            return -1;
        out[i].len = strlen(out[i].body);
        sha256_hex(out[i].body, out[i].len, out[i].payload_sha256);
        /* identity: {model, prompt_sha256, generation_params} */
        json_t *ident = json_pack("{s:s, s:s, s:O}", "model", lg->model, "prompt_sha256", p->sha256,
                                  "generation_params", lg->gen_params_json);
        if (!ident || json_canonical_sha256(ident, out[i].identity_sha256) < 0)
            out[i].identity_sha256[0] = '\0';
        json_decref(ident);
    }
    return 0;
}

int loadgen_run_phase(struct loadgen *lg, const char *phase, const struct prompt *const *prompts,
                      size_t n, size_t concurrency, struct phase_result *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (concurrency == 0)
        concurrency = 1;
    struct phase_ctx pc = {.lg = lg, .phase = phase, .prompts = prompts, .n = n};
    pc.n_slots = concurrency < n ? concurrency : n;
    pc.results = calloc(n ? n : 1, sizeof *pc.results);
    pc.slots = calloc(pc.n_slots ? pc.n_slots : 1, sizeof *pc.slots);
    pc.client = http_client_new(pc.n_slots, err);
    if (!pc.results || !pc.slots || !pc.client) {
        free(pc.results);
        free(pc.slots);
        http_client_free(pc.client);
        return err_set(err, "cannot set up the phase (out of memory)");
    }
    pc.prep = calloc(n ? n : 1, sizeof *pc.prep);
    if (!pc.prep || prepare(lg, prompts, n, pc.prep) < 0) {
        free_prepared(pc.prep, n);
        free(pc.results);
        free(pc.slots);
        http_client_free(pc.client);
        return err_set(err, "cannot build the request bodies (out of memory)");
    }
    for (size_t i = 0; i < pc.n_slots; i++) {
        struct slot *s = &pc.slots[i];
        http_req_init(&s->http);
        sse_init(&s->sse, on_event, s);
        s->pc = &pc;
        s->worker_idx = i;
    }
    uint64_t t0 = clock_now_ns();
    for (size_t i = 0; i < pc.n_slots && !*lg->interrupted; i++)
        start_next(&pc, &pc.slots[i]);
    uint64_t grace_deadline = 0;
    while (http_client_active(pc.client) > 0) {
        if (http_client_poll(pc.client, 100) < 0) {
            log_error("HTTP client failure; cancelling the phase's requests");
            pc.stopping = true;
            for (size_t i = 0; i < pc.n_slots; i++)
                if (pc.slots[i].busy)
                    http_client_cancel(pc.client, &pc.slots[i].http);
            break;
        }
        if (*lg->interrupted && !pc.stopping) {
            pc.stopping = true;
            grace_deadline = clock_now_ns() + (uint64_t)(lg->grace_s * 1e9);
            log_warn("interrupted: waiting up to %.0f s for %d in-flight requests", lg->grace_s,
                     http_client_active(pc.client));
        }
        if (pc.stopping && grace_deadline && clock_now_ns() >= grace_deadline) {
            for (size_t i = 0; i < pc.n_slots; i++)
                if (pc.slots[i].busy)
                    http_client_cancel(pc.client, &pc.slots[i].http);
        }
    }
    out->duration_s = (double)(clock_now_ns() - t0) / 1e9;
    out->interrupted = pc.stopping || *lg->interrupted;
    for (size_t i = 0; i < pc.n_slots; i++) {
        struct slot *s = &pc.slots[i];
        reset_slot(s);
        http_req_cleanup(&s->http);
        sse_free(&s->sse);
        buf_free(&s->text);
        buf_free(&s->errbody);
        buf_free(&s->hints);
        dvec_free(&s->itl);
    }
    free(pc.slots);
    free_prepared(pc.prep, n);
    buf_free(&pc.row);
    http_client_free(pc.client);
    out->reqs = pc.results;
    out->n = pc.n_results;
    return 0;
}

void phase_result_free(struct phase_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->reqs[i].itl);
        free(r->reqs[i].error);
    }
    free(r->reqs);
    memset(r, 0, sizeof *r);
}
