/*
 * Unit tests for the load generator on /v1/chat/completions (--endpoint chat).
 *
 * The body: one message per span of a chat prompt (its role, its content escaped), the whole
 * text as one user message when the prompt has none, the completions body unchanged.
 *
 * The measurement, through loadgen_run_phase against a real server on 127.0.0.1 (testsrv) that
 * streams the way chat servers do: a first chunk with only delta.role (content ""), then a pause
 * of 500 ms, then the output. The role chunk is no token, so TTFT is at least the pause; output
 * that starts as reasoning (delta.reasoning_content, or delta.reasoning as newer vLLM sends it)
 * counts from its first byte (the answer comes another 500 ms later), is kept apart from the
 * answer, and is counted in the output tokens. A stream that ends without output, on finish_reason
 * "abort" / "error" or an SSE error event, is a failed request; the stream ends at [DONE].
 */
#include "test_common.h"

#include "load/loadgen.h"
#include "model/tokenizer.h"
#include "support/testsrv.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/sha256.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>

#define PAUSE_MS 500

/* ------------------------------------------------------------ bodies */

static const char *STOP[] = {"<|eot_id|>", "\n\n"};
static const struct gen_params GP_STREAM = {.max_tokens = 16,
                                            .temperature = 0.5,
                                            .top_p = 1,
                                            .stop = STOP,
                                            .n_stop = 2,
                                            .stream = true,
                                            .has_seed = true,
                                            .seed = 42};

/* A prompt of text (copied), with one message per (role, piece of text) when n > 0: each piece
 * is found in the text and becomes a span. */
static void make_prompt(struct prompt *p, const char *text, const enum chat_role *roles,
                        const char *const *pieces, size_t n)
{
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "chat-00000");
    snprintf(p->set, sizeof p->set, "short");
    p->text = strdup(text);
    assert_non_null(p->text);
    p->len = strlen(text);
    sha256_hex(p->text, p->len, p->sha256);
    p->target = p->est_tokens = 8;
    if (!n)
        return;
    struct chat_span spans[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        const char *at = strstr(p->text, pieces[i]);
        assert_non_null(at);
        spans[i].off = (size_t)(at - p->text);
        spans[i].len = strlen(pieces[i]);
    }
    assert_int_equal(prompt_set_msgs(p, roles, spans, n), 0);
}

static void body_is(const struct loadgen *lg, const struct prompt *p, const char *want)
{
    char *got = loadgen_body(lg, p);
    assert_non_null(got);
    assert_string_equal(got, want);
    /* and it is JSON */
    json_error_t je;
    json_t *j = json_loads(got, 0, &je);
    assert_non_null(j);
    json_decref(j);
    free(got);
}

/* Each message its role and its span of the text, escaped: quotes, newlines, tabs, backslashes;
 * non-ASCII text as UTF-8. */
static void test_chat_body_messages(void **state)
{
    (void)state;
    struct loadgen lg = {.endpoint = ENDPOINT_CHAT, .model = "tiny", .gp = &GP_STREAM};
    static const char text[] = "<s>You are \"kind\"\n</s><u>caf\xc3\xa9 \xf0\x9f\x98\x80 \\ tab\t"
                               "</u><a>ok</a><u>again</u>";
    enum chat_role roles[] = {CHAT_SYSTEM, CHAT_USER, CHAT_ASSISTANT, CHAT_USER};
    const char *pieces[] = {"You are \"kind\"\n", "caf\xc3\xa9 \xf0\x9f\x98\x80 \\ tab\t", "ok",
                            "again"};
    struct prompt p;
    make_prompt(&p, text, roles, pieces, 4);
    body_is(&lg, &p,
            "{\"model\":\"tiny\",\"messages\":[{\"role\":\"system\",\"content\":\"You are "
            "\\\"kind\\\"\\n\"},{\"role\":\"user\",\"content\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 "
            "\\\\ tab\\t\"},{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\","
            "\"content\":\"again\"}],\"max_tokens\":16,\"temperature\":0.5,\"top_p\":1.0,"
            "\"stop\":[\"<|eot_id|>\",\"\\n\\n\"],\"stream\":true,\"stream_options\":"
            "{\"include_usage\":true},\"seed\":42}");
    /* a request of its own length (a trace's output_length) */
    p.max_tokens = 3;
    char *b = loadgen_body(&lg, &p);
    assert_non_null(strstr(b, "\"max_tokens\":3,"));
    free(b);
    /* a span that lies outside the text, or cuts a character in two: no body */
    p.msgs[3].span.len = 99;
    assert_null(loadgen_body(&lg, &p));
    p.msgs[3].span.len = 5;
    p.msgs[1].span.len = 4; /* "caf" and half of the é */
    assert_null(loadgen_body(&lg, &p));
    prompt_drop_text(&p);
}

/* A prompt without messages goes as one user message of its whole text; not streamed, no seed:
 * neither stream_options nor seed. */
static void test_chat_body_without_messages(void **state)
{
    (void)state;
    static const struct gen_params gp = {.max_tokens = 8, .temperature = 0.7, .top_p = 0.9};
    struct loadgen lg = {.endpoint = ENDPOINT_CHAT, .model = "m/x", .gp = &gp};
    struct prompt p;
    make_prompt(&p, "one \"whole\"\ntext", NULL, NULL, 0);
    body_is(&lg, &p,
            "{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\",\"content\":\"one \\\"whole\\\"\\n"
            "text\"}],\"max_tokens\":8,\"temperature\":0.7,\"top_p\":0.9,\"stop\":[],"
            "\"stream\":false}");
    prompt_drop_text(&p);
}

/* The completions body is what it was before chat existed (the bytes request_payload_sha256
 * hashes), messages or not. */
static void test_completions_body_unchanged(void **state)
{
    (void)state;
    struct loadgen lg = {.endpoint = ENDPOINT_COMPLETIONS, .model = "tiny", .gp = &GP_STREAM};
    enum chat_role roles[] = {CHAT_USER};
    const char *pieces[] = {"caf\xc3\xa9"};
    struct prompt p;
    make_prompt(&p, "a \"caf\xc3\xa9\"\n\t\\ prompt", roles, pieces, 1);
    static const char want[] =
        "{\"model\":\"tiny\",\"prompt\":\"a \\\"caf\xc3\xa9\\\"\\n\\t\\\\ "
        "prompt\",\"max_tokens\":16,"
        "\"temperature\":0.5,\"top_p\":1.0,\"stop\":[\"<|eot_id|>\",\"\\n\\n\"],\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"seed\":42}";
    body_is(&lg, &p, want);
    /* the same as jansson packs the prompt with "s%", as the body was built before */
    json_t *stop = json_pack("[s,s]", STOP[0], STOP[1]);
    json_t *old = json_pack("{s:s, s:s%, s:I, s:f, s:f, s:o, s:b}", "model", "tiny", "prompt",
                            p.text, p.len, "max_tokens", (json_int_t)16, "temperature", 0.5,
                            "top_p", 1.0, "stop", stop, "stream", 1);
    assert_non_null(old);
    json_object_set_new(old, "stream_options", json_pack("{s:b}", "include_usage", 1));
    json_object_set_new(old, "seed", json_integer(42));
    char *s = json_dumps(old, JSON_COMPACT | JSON_REAL_PRECISION(15));
    assert_string_equal(s, want);
    free(s);
    json_decref(old);
    prompt_drop_text(&p);
}

/* ------------------------------------------------------------ a chat server */

enum mode {
    MODE_CONTENT,           /* role chunk, pause, content */
    MODE_REASONING_CONTENT, /* role chunk, pause, delta.reasoning_content, then content */
    MODE_REASONING,         /* ... delta.reasoning (newer vLLM) */
    MODE_UNARY,             /* not streamed: message.reasoning_content and content */
    MODE_UNARY_THINKING,    /* not streamed: cut short while reasoning (content null) */
    MODE_EMPTY,             /* [DONE] alone: no output, no finish_reason */
    MODE_ABORT,             /* "Hello", then finish_reason "abort" (vLLM's failed generation) */
    MODE_FAILED,            /* "Hello", then finish_reason "error" */
    MODE_ERROR_EVENT,       /* "Hello", an `event: error`, then finish_reason "stop" */
    MODE_AFTER_DONE,        /* a keep-alive, the answer, "[DONE] ", then more text */
    MODE_CJK,               /* six events of one Chinese character each, no usage */
    MODE_JSON_ERROR,        /* asked to stream: 200 with a JSON error body, no event */
    MODE_USAGE_LOW,         /* three output events, usage.completion_tokens 1 */
};

struct server {
    enum mode mode;
    pthread_mutex_t lock;
    char path[512];
    char *body; /* the last request's body */
};

static void send_chunk(int fd, const char *data)
{
    char h[32];
    size_t len = strlen(data);
    snprintf(h, sizeof h, "%zx\r\n", len);
    testsrv_write_str(fd, h);
    testsrv_write(fd, data, len);
    testsrv_write_str(fd, "\r\n");
}

static void send_event(int fd, const char *json)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "data: %s\n\n", json);
    assert_false(buf_failed(&b));
    send_chunk(fd, buf_cstr(&b));
    buf_free(&b);
}

#define CHUNK_HEAD                                                                                 \
    "{\"id\":\"chatcmpl-t\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"

#define CONTENT_EVENT(text)                                                                        \
    CHUNK_HEAD "\"delta\":{\"content\":\"" text "\"},\"finish_reason\":null}]}"
#define FINISH_EVENT(why) CHUNK_HEAD "\"delta\":{},\"finish_reason\":\"" why "\"}]}"

/* How a stream may end other than well: without output, on a failure, after [DONE]. */
static void stream_ending(int fd, enum mode mode)
{
    if (mode == MODE_AFTER_DONE)
        send_chunk(fd, "data: \n\n"); /* an empty keep-alive event */
    if (mode == MODE_CJK) {
        static const char *const HAN[] = {"\xe4\xbd\xa0", "\xe5\xa5\xbd", "\xe4\xb8\x96",
                                          "\xe7\x95\x8c", "\xe4\xbd\xa0", "\xe5\xa5\xbd"};
        for (size_t i = 0; i < 6; i++) {
            char ev[256];
            snprintf(ev, sizeof ev,
                     CHUNK_HEAD "\"delta\":{\"content\":\"%s\"},\"finish_reason\":null}]}", HAN[i]);
            send_event(fd, ev);
        }
        send_event(fd, FINISH_EVENT("stop"));
    } else if (mode == MODE_USAGE_LOW) {
        send_event(fd, CONTENT_EVENT("Hello"));
        send_event(fd, CONTENT_EVENT(" big"));
        send_event(fd, CONTENT_EVENT(" world"));
        send_event(fd, FINISH_EVENT("stop"));
        send_event(fd, "{\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1}}");
    } else if (mode != MODE_EMPTY)
        send_event(fd, CONTENT_EVENT("Hello"));
    if (mode == MODE_ABORT)
        send_event(fd, FINISH_EVENT("abort"));
    else if (mode == MODE_FAILED)
        send_event(fd, FINISH_EVENT("error"));
    else if (mode == MODE_ERROR_EVENT) {
        send_chunk(fd, "event: error\ndata: {\"message\":\"worker died\"}\n\n");
        send_event(fd, FINISH_EVENT("stop"));
    } else if (mode == MODE_AFTER_DONE) {
        send_event(fd, CONTENT_EVENT(" world"));
        send_event(fd, FINISH_EVENT("stop"));
        send_chunk(fd, "data: [DONE] \n\n");
        send_event(fd, CONTENT_EVENT(" more"));
        send_event(fd, CONTENT_EVENT(" text"));
    }
    if (mode != MODE_AFTER_DONE)
        send_event(fd, "[DONE]");
    send_chunk(fd, "");
}

static void stream_answer(int fd, enum mode mode)
{
    testsrv_write_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n");
    if (mode >= MODE_EMPTY) {
        stream_ending(fd, mode);
        return;
    }
    send_event(fd, CHUNK_HEAD "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                              "\"logprobs\":null,\"finish_reason\":null}]}");
    testsrv_sleep_ms(PAUSE_MS);
    if (mode == MODE_REASONING_CONTENT) {
        send_event(fd, CHUNK_HEAD "\"delta\":{\"reasoning_content\":\"Let me\"},"
                                  "\"finish_reason\":null}]}");
        send_event(fd, CHUNK_HEAD "\"delta\":{\"reasoning_content\":\" think\"},"
                                  "\"finish_reason\":null}]}");
    } else if (mode == MODE_REASONING) {
        send_event(fd, CHUNK_HEAD "\"delta\":{\"content\":null,\"reasoning\":\"Let me\"},"
                                  "\"finish_reason\":null}]}");
        send_event(fd, CHUNK_HEAD "\"delta\":{\"content\":null,\"reasoning\":\" think\"},"
                                  "\"finish_reason\":null}]}");
    }
    if (mode != MODE_CONTENT)
        testsrv_sleep_ms(PAUSE_MS); /* the answer comes a while after the reasoning */
    send_event(fd, CHUNK_HEAD "\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}");
    send_event(fd, CHUNK_HEAD "\"delta\":{\"content\":\" world\"},\"finish_reason\":null}]}");
    send_event(fd, CHUNK_HEAD "\"delta\":{},\"finish_reason\":\"stop\"}]}");
    send_event(fd, "{\"id\":\"chatcmpl-t\",\"object\":\"chat.completion.chunk\",\"choices\":[],"
                   "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":4,\"total_tokens\":11}}");
    send_event(fd, "[DONE]");
    send_chunk(fd, "");
}

static void unary_answer(int fd, enum mode mode)
{
    const char *body =
        mode == MODE_UNARY
            ? "{\"id\":\"chatcmpl-u\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
              "\"message\":{\"role\":\"assistant\",\"content\":\"Hello world\","
              "\"reasoning_content\":\"Let me think\"},\"finish_reason\":\"stop\"}],"
              "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5}}"
            : "{\"id\":\"chatcmpl-u\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
              "\"message\":{\"role\":\"assistant\",\"content\":null,"
              "\"reasoning_content\":\"Let me think\"},\"finish_reason\":\"length\"}],"
              "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}";
    char h[160];
    snprintf(h, sizeof h,
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             strlen(body));
    testsrv_write_str(fd, h);
    testsrv_write_str(fd, body);
}

static bool handler(int fd, const struct testsrv_request *req, void *user)
{
    struct server *sv = user;
    pthread_mutex_lock(&sv->lock);
    snprintf(sv->path, sizeof sv->path, "%s", req->path);
    free(sv->body);
    sv->body = strndup(req->body ? req->body : "", req->body_len);
    enum mode mode = sv->mode;
    pthread_mutex_unlock(&sv->lock);
    if (strcmp(req->method, "POST") != 0 || strcmp(req->path, "/v1/chat/completions") != 0) {
        testsrv_write_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        return true;
    }
    if (mode == MODE_JSON_ERROR) {
        static const char b[] = "{\"error\":{\"message\":\"model overloaded\"}}";
        char h[160];
        snprintf(h, sizeof h,
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 strlen(b));
        testsrv_write_str(fd, h);
        testsrv_write_str(fd, b);
    } else if (mode == MODE_UNARY || mode == MODE_UNARY_THINKING)
        unary_answer(fd, mode);
    else
        stream_answer(fd, mode);
    return true;
}

/* ------------------------------------------------------------ phases against it */

struct fixture {
    struct server sv;
    struct testsrv *srv;
    char *dir;
    struct prompt prompt;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || http_global_init() < 0)
        return -1;
    pthread_mutex_init(&f->sv.lock, NULL);
    f->srv = testsrv_start(handler, &f->sv);
    f->dir = test_tmpdir();
    if (!f->srv || !f->dir)
        return -1;
    static const char text[] = "<s>be brief</s><u>say hello</u>";
    enum chat_role roles[] = {CHAT_SYSTEM, CHAT_USER};
    const char *pieces[] = {"be brief", "say hello"};
    make_prompt(&f->prompt, text, roles, pieces, 2);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    testsrv_stop(f->srv);
    prompt_drop_text(&f->prompt);
    free(f->sv.body);
    pthread_mutex_destroy(&f->sv.lock);
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static const volatile sig_atomic_t not_interrupted = 0;

/* One request of the fixture's prompt to the server in `mode`, with the response text kept; the
 * request's row parsed into *row (caller decrefs). */
static void run_one(struct fixture *f, enum mode mode, enum http_transport t, struct loadgen *lg,
                    struct phase_result *out, json_t **row)
{
    static const struct gen_params streamed = {.max_tokens = 8, .top_p = 1, .stream = true};
    static const struct gen_params unary = {.max_tokens = 8, .top_p = 1};
    bool is_unary = mode == MODE_UNARY || mode == MODE_UNARY_THINKING;
    pthread_mutex_lock(&f->sv.lock);
    f->sv.mode = mode;
    pthread_mutex_unlock(&f->sv.lock);
    memset(lg, 0, sizeof *lg);
    lg->endpoint = ENDPOINT_CHAT;
    snprintf(lg->completions_url, sizeof lg->completions_url, "http://127.0.0.1:%d%s",
             testsrv_port(f->srv), endpoint_path(ENDPOINT_CHAT));
    lg->model = "tiny";
    lg->timeout_s = 10;
    lg->gp = is_unary ? &unary : &streamed;
    lg->run_id = "run";
    lg->spill_dir = f->dir;
    lg->interrupted = &not_interrupted;
    lg->tok = tokenizer_heuristic();
    lg->threads = 1;
    lg->transport = t;
    char err[ERR_LEN], path[512];
    snprintf(path, sizeof path, "%s/requests-%d-%d.jsonl", f->dir, (int)mode, (int)t);
    assert_int_equal(loadgen_init(lg, err), 0);
    assert_int_equal(loadgen_open_rows(lg, path, err), 0);
    const struct prompt *ptrs[] = {&f->prompt};
    struct phase_plan pp = {
        .name = "p", .prompts = ptrs, .n = 1, .concurrency = 1, .keep_text = true};
    assert_int_equal(loadgen_run_phase(lg, &pp, out, err), 0);
    assert_int_equal(loadgen_close_rows(lg, err), 0);
    assert_int_equal(out->n, 1);
    assert_non_null(out->reqs);
    struct buf b = BUF_INIT;
    assert_int_equal(fs_read_file(path, &b, 1 << 20, err), 0);
    json_error_t je;
    *row = json_loadb(buf_cstr(&b), b.len, 0, &je);
    buf_free(&b);
    assert_non_null(*row);
}

static long long row_int(const json_t *row, const char *key)
{
    const json_t *v = json_object_get(row, key);
    assert_true(json_is_integer(v));
    return (long long)json_integer_value(v);
}

/* What the server received: the chat body, on the chat path. */
static void sent_messages(struct fixture *f)
{
    pthread_mutex_lock(&f->sv.lock);
    assert_string_equal(f->sv.path, "/v1/chat/completions");
    json_t *j = json_loads(f->sv.body, 0, NULL);
    pthread_mutex_unlock(&f->sv.lock);
    assert_non_null(j);
    const json_t *m = json_object_get(j, "messages");
    assert_int_equal(json_array_size(m), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "role")), "system");
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "content")),
                        "say hello");
    assert_null(json_object_get(j, "prompt"));
    json_decref(j);
}

/* The role-only first chunk is no token: the first token is the content after the pause. */
static void test_role_chunk_is_not_the_first_token(void **state)
{
    struct fixture *f = *state;
    enum http_transport ts[] = {HTTP_TRANSPORT_NATIVE, HTTP_TRANSPORT_CURL};
    for (size_t k = 0; k < 2; k++) {
        struct loadgen lg;
        struct phase_result out;
        json_t *row;
        run_one(f, MODE_CONTENT, ts[k], &lg, &out, &row);
        const struct req_result *q = &out.reqs[0];
        assert_true(q->ok);
        assert_false(isnan(q->ttft_ms));
        assert_true(q->ttft_ms >= PAUSE_MS);
        assert_int_equal(q->n_itl, 1); /* " world" after "Hello" */
        assert_string_equal(q->text, "Hello world");
        assert_int_equal(q->reasoning_chars, 0);
        assert_int_equal(q->usage_completion, 4);
        assert_string_equal(q->finish_reason, "stop");
        sent_messages(f);
        assert_string_equal(json_string_value(json_object_get(row, "endpoint")), "chat");
        assert_true(json_number_value(json_object_get(row, "ttft_ms")) >= PAUSE_MS);
        assert_int_equal(row_int(row, "reasoning_chars"), 0);
        assert_int_equal(row_int(row, "reasoning_tokens_est"), 0);
        assert_int_equal(row_int(row, "output_len_chars"), 11);
        assert_string_equal(json_string_value(json_object_get(row, "response_id")), "chatcmpl-t");
        json_decref(row);
        phase_result_free(&out);
        loadgen_free(&lg);
    }
}

/* Output that starts as reasoning: the first reasoning byte is the first token, every event that
 * carries reasoning or content is a gap of ITL, the reasoning is recorded apart from the answer
 * and counted in the output tokens. Under either name. */
static void test_reasoning_is_output(void **state)
{
    struct fixture *f = *state;
    enum mode modes[] = {MODE_REASONING_CONTENT, MODE_REASONING};
    for (size_t k = 0; k < 2; k++) {
        struct loadgen lg;
        struct phase_result out;
        json_t *row;
        run_one(f, modes[k], HTTP_TRANSPORT_NATIVE, &lg, &out, &row);
        const struct req_result *q = &out.reqs[0];
        assert_true(q->ok);
        assert_true(q->ttft_ms >= PAUSE_MS);
        /* the first token was the reasoning: the answer came a pause after it. The server slept
         * PAUSE_MS between them, but a client woken late for the reasoning sees a shorter gap
         * (CI saw 480 of 500 ms); had the first token been the answer, the gap would be ~0. */
        assert_true(q->latency_ms - q->ttft_ms >= PAUSE_MS / 2);
        assert_int_equal(q->n_itl, 3); /* four output events: two of reasoning, two of content */
        assert_string_equal(q->text, "Hello world"); /* the answer alone */
        assert_int_equal(q->output_len_chars, 11);
        assert_int_equal(q->reasoning_chars, 12); /* "Let me think" */
        size_t answer_est = tokenizer_count_fast(lg.tok, "Hello world", 11);
        size_t reasoning_est = tokenizer_count_fast(lg.tok, "Let me think", 12);
        assert_int_equal(q->reasoning_tokens_est, reasoning_est);
        assert_int_equal(q->output_tokens_est, answer_est + reasoning_est);
        assert_int_equal(row_int(row, "reasoning_chars"), 12);
        assert_int_equal(row_int(row, "reasoning_tokens_est"), (long long)reasoning_est);
        assert_int_equal(row_int(row, "output_tokens_est"),
                         (long long)(answer_est + reasoning_est));
        assert_int_equal(json_array_size(json_object_get(row, "itl_ms")), 3);
        json_decref(row);
        phase_result_free(&out);
        loadgen_free(&lg);
    }
}

/* A stream that ends without an answer, or on the server's failure, is a failed request, with
 * why in its row: [DONE] alone; finish_reason "abort" or "error"; an SSE `event: error`; a 200
 * that is no event stream, what it said kept. */
static void test_failed_stream_endings(void **state)
{
    struct fixture *f = *state;
    static const struct {
        enum mode mode;
        const char *error;
    } cases[] = {
        {MODE_EMPTY, "empty stream: [DONE] came without any text, reasoning or finish_reason"},
        {MODE_ABORT, "the server ended the generation with finish_reason \"abort\" after 5 bytes"},
        {MODE_FAILED, "the server ended the generation with finish_reason \"error\" after 5 bytes"},
        {MODE_ERROR_EVENT, "error event in stream: {\"message\":\"worker died\"}"},
        {MODE_JSON_ERROR, "not an event stream: HTTP 200 with no SSE event; the body began: "
                          "{\"error\":{\"message\":\"model overloaded\"}}"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct loadgen lg;
        struct phase_result out;
        json_t *row;
        run_one(f, cases[k].mode, k % 2 ? HTTP_TRANSPORT_CURL : HTTP_TRANSPORT_NATIVE, &lg, &out,
                &row);
        const struct req_result *q = &out.reqs[0];
        assert_false(q->ok);
        assert_false(q->unreachable); /* the server answered: it is no outage */
        assert_non_null(q->error);
        if (strncmp(q->error, cases[k].error, strlen(cases[k].error)) != 0)
            fail_msg("case %zu: error \"%s\", expected it to start \"%s\"", k, q->error,
                     cases[k].error);
        const char *re = json_string_value(json_object_get(row, "error"));
        assert_non_null(re);
        assert_string_equal(re, q->error);
        json_decref(row);
        phase_result_free(&out);
        loadgen_free(&lg);
    }
}

/* The stream ends at [DONE], trailing blanks and all: what a server sends after it is neither
 * output nor time between tokens; an empty keep-alive event before the answer is nothing. */
static void test_stream_ends_at_done(void **state)
{
    struct fixture *f = *state;
    struct loadgen lg;
    struct phase_result out;
    json_t *row;
    run_one(f, MODE_AFTER_DONE, HTTP_TRANSPORT_NATIVE, &lg, &out, &row);
    const struct req_result *q = &out.reqs[0];
    assert_true(q->ok);
    assert_null(q->error);
    assert_string_equal(q->text, "Hello world");
    assert_int_equal(q->n_itl, 1);
    assert_string_equal(q->finish_reason, "stop");
    assert_int_equal(row_int(row, "output_len_chars"), 11);
    json_decref(row);
    phase_result_free(&out);
    loadgen_free(&lg);
}

/* Text without spaces is one heuristic word however long: six streamed events of one Chinese
 * character each are six output tokens (each event carries at least one), and TPOT is measured
 * over them; the heuristic alone would count one token and no TPOT. */
static void test_output_tokens_at_least_events(void **state)
{
    struct fixture *f = *state;
    struct loadgen lg;
    struct phase_result out;
    json_t *row;
    run_one(f, MODE_CJK, HTTP_TRANSPORT_NATIVE, &lg, &out, &row);
    const struct req_result *q = &out.reqs[0];
    assert_true(q->ok);
    assert_int_equal(tokenizer_count_fast(lg.tok, q->text, strlen(q->text)), 1);
    assert_int_equal(q->n_itl, 5);
    assert_int_equal(q->output_tokens_est, 6);
    assert_int_equal(row_int(row, "output_tokens_est"), 6);
    assert_int_equal(row_int(row, "output_len_chars"), 6);
    assert_false(isnan(q->tpot_ms));
    assert_int_equal(atomic_load(&lg.usage_below_events), 0); /* no usage: nothing to doubt */
    json_decref(row);
    phase_result_free(&out);
    loadgen_free(&lg);
}

/* usage.completion_tokens below the answer's output events (1 for three): the server's usage
 * under-counts; the answer is kept and counted for the run's warning (usage_below_stream). */
static void test_usage_below_events_counted(void **state)
{
    struct fixture *f = *state;
    struct loadgen lg;
    struct phase_result out;
    json_t *row;
    run_one(f, MODE_USAGE_LOW, HTTP_TRANSPORT_NATIVE, &lg, &out, &row);
    const struct req_result *q = &out.reqs[0];
    assert_true(q->ok);
    assert_int_equal(q->usage_completion, 1);
    assert_int_equal(q->output_tokens_est, 3);
    assert_int_equal(atomic_load(&lg.usage_below_events), 1);
    json_decref(row);
    phase_result_free(&out);
    loadgen_free(&lg);
}

/* Not streamed: message.reasoning_content is recorded; an answer cut short while reasoning
 * (content null) is an answer, not a failure. */
static void test_unary_reasoning(void **state)
{
    struct fixture *f = *state;
    struct loadgen lg;
    struct phase_result out;
    json_t *row;
    run_one(f, MODE_UNARY, HTTP_TRANSPORT_NATIVE, &lg, &out, &row);
    const struct req_result *q = &out.reqs[0];
    assert_true(q->ok);
    assert_true(isnan(q->ttft_ms));
    assert_string_equal(q->text, "Hello world");
    assert_int_equal(q->reasoning_chars, 12);
    assert_true(json_is_null(json_object_get(row, "error")));
    assert_string_equal(json_string_value(json_object_get(row, "endpoint")), "chat");
    json_decref(row);
    phase_result_free(&out);
    loadgen_free(&lg);

    run_one(f, MODE_UNARY_THINKING, HTTP_TRANSPORT_NATIVE, &lg, &out, &row);
    q = &out.reqs[0];
    assert_true(q->ok);
    assert_string_equal(q->text, "");
    assert_int_equal(q->output_len_chars, 0);
    assert_int_equal(q->reasoning_chars, 12);
    assert_true(q->output_tokens_est > 0);
    assert_string_equal(q->finish_reason, "length");
    json_decref(row);
    phase_result_free(&out);
    loadgen_free(&lg);
}

int main(void)
{
    const struct CMUnitTest body_tests[] = {
        cmocka_unit_test(test_chat_body_messages),
        cmocka_unit_test(test_chat_body_without_messages),
        cmocka_unit_test(test_completions_body_unchanged),
    };
    const struct CMUnitTest wire_tests[] = {
        cmocka_unit_test(test_role_chunk_is_not_the_first_token),
        cmocka_unit_test(test_reasoning_is_output),
        cmocka_unit_test(test_failed_stream_endings),
        cmocka_unit_test(test_stream_ends_at_done),
        cmocka_unit_test(test_output_tokens_at_least_events),
        cmocka_unit_test(test_usage_below_events_counted),
        cmocka_unit_test(test_unary_reasoning),
    };
    int rc = cmocka_run_group_tests_name("bodies", body_tests, NULL, NULL);
    return rc | cmocka_run_group_tests_name("wire", wire_tests, setup, teardown);
}
