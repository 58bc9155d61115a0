/*
 * test_server.c - the engine's HTTP front at its seams: request validation (server_parse_request,
 * what a client gets for each refused field), the framing and size limits answered from the
 * headers, and the request path under allocation failure. The HTTP cases go through the real
 * libmicrohttpd front on 127.0.0.1, port 0, with a raw socket client (so that the test itself
 * allocates nothing the fault hook counts); every test stops its engine on every path (the
 * group teardown).
 *
 * The allocation-failure test arms fault_arm at each allocation index in turn across one
 * /v1/completions request, streamed and not: every outcome must be an error status with an
 * error body, a complete answer, or (a stream already answered 200) a stream that ends with an
 * error, never a hang or a crash; ASan/LSan catch leaks; the next request is served in full.
 */
#include "test_common.h"
#include "support/test_engine.h"

#include "engine/engine.h"
#include "engine/server.h"
#include "model/chattpl.h"
#include "model/tokenizer.h"
#include "util/fault.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#define MAX_BODY 8192

static struct engine *eng;

static struct engine_config test_config(void)
{
    struct engine_config cfg = test_engine_config();
    cfg.model.max_context = 2048;
    cfg.max_body_bytes = MAX_BODY;
    cfg.max_num_tokens = 1024;
    cfg.max_connections = 16;
    cfg.http_threads = 2;
    cfg.max_num_seqs = 4;
    return cfg;
}

static int setup(void **state)
{
    (void)state;
    struct engine_config cfg = test_config();
    char err[256] = "";
    if (engine_start(&cfg, &eng, err) < 0) {
        fprintf(stderr, "engine_start: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fault_disarm();
    engine_stop(eng);
    eng = NULL;
    return 0;
}

/* ------------------------------------------------------------ validation */

struct body_case {
    const char *body;
    unsigned status;
    const char *param; /* the field named in the error ("" none) */
    const char *msg;   /* a part of the message */
};

static void check_case(const struct body_case *c)
{
    unsigned status = 0;
    char param[64] = "?", msg[512] = "?";
    int rc = server_parse_request(eng, c->body, strlen(c->body), &status, param, msg, sizeof msg);
    if (status != c->status || strcmp(param, c->param) != 0 || !strstr(msg, c->msg))
        fprintf(stderr, "body %.80s: got %u [%s] '%s', want %u [%s] '%s'\n", c->body, status, param,
                msg, c->status, c->param, c->msg);
    assert_int_equal(status, c->status);
    assert_int_equal(rc, c->status == 200 ? 0 : -1);
    assert_string_equal(param, c->param);
    assert_non_null(strstr(msg, c->msg));
}

/* The same for a /v1/chat/completions body. */
static void check_chat_case(const struct body_case *c)
{
    unsigned status = 0;
    char param[64] = "?", msg[512] = "?";
    int rc = server_parse_body(eng, true, c->body, strlen(c->body), &status, param, msg, sizeof msg,
                               NULL);
    if (status != c->status || strcmp(param, c->param) != 0 || !strstr(msg, c->msg))
        fprintf(stderr, "chat body %.80s: got %u [%s] '%s', want %u [%s] '%s'\n", c->body, status,
                param, msg, c->status, c->param, c->msg);
    assert_int_equal(status, c->status);
    assert_int_equal(rc, c->status == 200 ? 0 : -1);
    assert_string_equal(param, c->param);
    assert_non_null(strstr(msg, c->msg));
}

/* A body whose prompt is n token ids, and max_tokens mt. */
static char *ids_body(size_t n, size_t mt)
{
    size_t cap = 64 + n * 4;
    char *b = malloc(cap);
    assert_non_null(b);
    size_t k = (size_t)snprintf(b, cap, "{\"max_tokens\":%zu,\"prompt\":[", mt);
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(b + k, cap - k, "%s%zu", i ? "," : "", 100 + i % 50);
    snprintf(b + k, cap - k, "]}");
    return b;
}

static void test_valid_bodies(void **state)
{
    (void)state;
    static const struct body_case ok[] = {
        {"{\"prompt\":\"hello world\",\"max_tokens\":4}", 200, "", ""},
        {"{\"model\":\"m\",\"prompt\":[1,2,3],\"stream\":true,\"stream_options\":"
         "{\"include_usage\":true},\"seed\":7,\"temperature\":0,\"top_p\":1,\"n\":1,"
         "\"stop\":[\"a\",\"\"],\"ignore_eos\":false}",
         200, "", ""},
        /* no-op values of fields the engine does not implement are accepted */
        {"{\"prompt\":\"x\",\"echo\":false,\"best_of\":1,\"logit_bias\":{},"
         "\"presence_penalty\":0,\"frequency_penalty\":0,\"user\":\"u\",\"logprobs\":null}",
         200, "", ""},
        {"{\"prompt\":[\"one prompt in a list\"],\"model\":null,\"stop\":\"s\"}", 200, "", ""},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        check_case(&ok[i]);
}

static void test_refused_fields(void **state)
{
    (void)state;
    char long_stop[400];
    snprintf(long_stop, sizeof long_stop, "{\"prompt\":\"x\",\"stop\":\"%0257d\"}", 0);
    const struct body_case bad[] = {
        {"not json", 400, "", "request body is not valid JSON"},
        {"[1,2]", 400, "", "request body must be a JSON object"},
        {"{\"model\":5,\"prompt\":\"x\"}", 400, "model", "model must be a string"},
        {"{\"model\":\"other\",\"prompt\":\"x\"}", 404, "model",
         "The model `other` does not exist"},
        {"{\"prompt\":\"x\",\"frobnicate\":1}", 400, "frobnicate", "`frobnicate` is not supported"},
        {"{\"prompt\":\"x\",\"echo\":true}", 400, "echo", "`echo` is not supported"},
        {"{\"prompt\":\"x\",\"best_of\":2}", 400, "best_of", "is not supported"},
        {"{}", 400, "prompt", "prompt is required"},
        {"{\"prompt\":\"\"}", 400, "prompt", "prompt must not be empty"},
        {"{\"prompt\":[]}", 400, "prompt", "prompt must not be empty"},
        {"{\"prompt\":[\"a\",\"b\"]}", 400, "prompt", "batched prompts"},
        {"{\"prompt\":[1,-2]}", 400, "prompt", "a list of token ids (integers >= 0)"},
        {"{\"prompt\":{}}", 400, "prompt", "prompt must be a string or a list of token ids"},
        {"{\"prompt\":\"x\",\"max_tokens\":0}", 400, "max_tokens", "an integer >= 1"},
        {"{\"prompt\":\"x\",\"max_tokens\":\"4\"}", 400, "max_tokens", "an integer >= 1"},
        {"{\"prompt\":\"x\",\"max_tokens\":5000}", 400, "max_tokens", "at most 4096"},
        {"{\"prompt\":\"x\",\"temperature\":3}", 400, "temperature", "from 0 to 2"},
        {"{\"prompt\":\"x\",\"temperature\":\"hot\"}", 400, "temperature", "from 0 to 2"},
        {"{\"prompt\":\"x\",\"top_p\":0}", 400, "top_p", "in (0, 1]"},
        {"{\"prompt\":\"x\",\"n\":2}", 400, "n", "only n = 1"},
        {"{\"prompt\":\"x\",\"stop\":5}", 400, "stop", "a string or a list of strings"},
        {"{\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\","
         "\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}",
         400, "stop", "at most 16 stop strings"},
        {long_stop, 400, "stop", "limited to 256 bytes"},
        {"{\"prompt\":\"x\",\"stream\":\"yes\"}", 400, "stream", "stream must be a boolean"},
        {"{\"prompt\":\"x\",\"ignore_eos\":1}", 400, "ignore_eos", "ignore_eos must be a boolean"},
        {"{\"prompt\":\"x\",\"stream_options\":1}", 400, "stream_options", "include_usage"},
        {"{\"prompt\":\"x\",\"stream_options\":{\"include_usage\":\"y\"}}", 400, "stream_options",
         "include_usage"},
        {"{\"prompt\":\"x\",\"seed\":1.5}", 400, "seed", "seed must be an integer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_case(&bad[i]);
}

/* The one fit check, each of its three limits: max_num_tokens, the context, the device blocks. */
static void test_request_limits(void **state)
{
    (void)state;
    char *b = ids_body(1100, 4);
    check_case(&(struct body_case){b, 400, "prompt", "exceeds max_num_tokens (1024)"});
    free(b);
    b = ids_body(100, 2000);
    check_case(&(struct body_case){b, 400, "max_tokens", "maximum context length is 2048"});
    free(b);
    b = ids_body(100, 1500); /* 50 blocks of 32 > 48 */
    check_case(&(struct body_case){b, 400, "max_tokens", "the device cache holds 48"});
    free(b);
    b = ids_body(100, 1400); /* 47 blocks: fits */
    check_case(&(struct body_case){b, 200, "", ""});
    free(b);
}

/* ------------------------------------------------------------ chat */

#define U1 "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static void test_chat_valid_bodies(void **state)
{
    (void)state;
    static const struct body_case ok[] = {
        {"{" U1 "}", 200, "", ""},
        /* every accepted field, their no-op values, a developer message, text parts, a name */
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"d\"},"
         "{\"role\":\"user\",\"name\":\"ann\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
         "{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"assistant\",\"content\":null},"
         "{\"role\":\"user\",\"content\":\"again\"}],\"max_tokens\":4,"
         "\"max_completion_tokens\":5,\"temperature\":0,\"top_p\":1,\"n\":1,\"stop\":[\"x\"],"
         "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"seed\":3,"
         "\"ignore_eos\":true,\"user\":\"u\",\"presence_penalty\":0,\"frequency_penalty\":0,"
         "\"logit_bias\":{},\"logprobs\":false,\"top_logprobs\":null,\"tools\":null,"
         "\"response_format\":{\"type\":\"text\"},\"parallel_tool_calls\":true}",
         200, "", ""},
        /* a conversation that ends with the assistant: rendered with the generation prompt */
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
         "\"content\":\"a\"}]}",
         200, "", ""},
        /* a system message alone, empty content */
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"\"}]}", 200, "", ""},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        check_chat_case(&ok[i]);
}

static void test_chat_refused(void **state)
{
    (void)state;
    const struct body_case bad[] = {
        {"{}", 400, "messages", "messages is required"},
        {"{\"messages\":null}", 400, "messages", "messages is required"},
        {"{\"messages\":[]}", 400, "messages", "must not be empty"},
        {"{\"messages\":\"hi\"}", 400, "messages", "a list of messages"},
        {"{\"messages\":[\"hi\"]}", 400, "messages[0]", "must be an object"},
        {"{\"messages\":[{\"content\":\"hi\"}]}", 400, "messages[0].role", "must be one of"},
        {"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\",\"tool_call_id\":\"1\"}]}", 400,
         "messages[0].role", "role 'tool' are not supported"},
        {"{\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}", 400, "messages[0].role",
         "role 'function'"},
        {"{\"messages\":[{\"role\":\"user\"}]}", 400, "messages[0].content", "is required"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, "messages[0].content",
         "a string or a list of text parts"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"http://x\"}}]}]}",
         400, "messages[0].content[0].type", "'image_url' are not supported"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
         "{\"type\":\"input_audio\"}]}]}",
         400, "messages[0].content[1].type", "'input_audio'"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}", 400,
         "messages[0].content[0].text", "a text part is"},
        {"{\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]}]}", 400,
         "messages[0].tool_calls", "is not supported"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"name\":5}]}", 400,
         "messages[0].name", "is not supported"},
        {"{" U1 ",\"tools\":[{\"type\":\"function\"}]}", 400, "tools", "`tools` is not supported"},
        {"{" U1 ",\"tool_choice\":\"auto\"}", 400, "tool_choice", "is not supported"},
        {"{" U1 ",\"functions\":[]}", 400, "functions", "is not supported"},
        {"{" U1 ",\"function_call\":\"auto\"}", 400, "function_call", "is not supported"},
        {"{" U1 ",\"response_format\":{\"type\":\"json_object\"}}", 400, "response_format",
         "is not supported"},
        {"{" U1 ",\"n\":2}", 400, "n", "only n = 1"},
        {"{" U1 ",\"logprobs\":true}", 400, "logprobs", "is not supported"},
        {"{" U1 ",\"top_logprobs\":2}", 400, "top_logprobs", "is not supported"},
        {"{" U1 ",\"audio\":{}}", 400, "audio", "is not supported"},
        {"{" U1 ",\"modalities\":[\"text\"]}", 400, "modalities", "is not supported"},
        {"{" U1 ",\"prediction\":{}}", 400, "prediction", "is not supported"},
        {"{" U1 ",\"prompt\":\"x\"}", 400, "prompt", "is not supported"},
        {"{" U1 ",\"echo\":false}", 400, "echo", "is not supported"},
        {"{" U1 ",\"max_completion_tokens\":0}", 400, "max_completion_tokens", ">= 1"},
        {"{" U1 ",\"max_tokens\":99999}", 400, "max_tokens", "at most 4096"},
        {"{" U1 ",\"stop\":5}", 400, "stop", "a string or a list"},
        {"{" U1 ",\"model\":\"other\"}", 404, "model", "does not exist"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_chat_case(&bad[i]);
}

/* The fit check: a conversation too long for max_num_tokens names messages; max_completion_tokens
 * past the context names itself. */
static void test_chat_limits(void **state)
{
    (void)state;
    size_t cap = 16384;
    char *b = malloc(cap);
    assert_non_null(b);
    size_t k = (size_t)snprintf(b, cap, "{\"messages\":[{\"role\":\"user\",\"content\":\"");
    for (size_t i = 0; i < 1100; i++)
        k += (size_t)snprintf(b + k, cap - k, "w%zu ", i % 10);
    snprintf(b + k, cap - k, "\"}]}");
    check_chat_case(&(struct body_case){b, 400, "messages", "exceeds max_num_tokens (1024)"});
    free(b);
    check_chat_case(&(struct body_case){"{" U1 ",\"max_completion_tokens\":2040}", 400,
                                        "max_completion_tokens", "maximum context length is 2048"});
    /* max_completion_tokens wins over max_tokens */
    check_chat_case(&(struct body_case){"{" U1 ",\"max_tokens\":2040,\"max_completion_tokens\":8}",
                                        200, "", ""});
}

/* The messages' prompt is their rendering through the template, tokenized: the same ids as the
 * rendered text sent to /v1/completions (no BOS of the server's added under Dynamo). */
static void test_chat_prompt_is_rendered_text(void **state)
{
    (void)state;
    static const char body[] =
        "{\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},{\"role\":\"developer\","
        "\"content\":\" dev \"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
        "{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"assistant\",\"content\":null}]}";
    struct tok_ids chat = {0}, text = {0};
    unsigned status;
    char msg[256];
    assert_int_equal(
        server_parse_body(eng, true, body, strlen(body), &status, NULL, msg, sizeof msg, &chat), 0);
    const char *rendered = LLAMA3_BOS LLAMA3_HDR("system") "sys" LLAMA3_EOT LLAMA3_HDR(
        "system") "dev" LLAMA3_EOT LLAMA3_HDR("user") "a\nb" LLAMA3_EOT LLAMA3_HDR("assistant")
        LLAMA3_EOT LLAMA3_HDR("assistant");
    json_t *cj = json_pack("{s:s}", "prompt", rendered);
    char *cb = json_dumps(cj, JSON_COMPACT);
    json_decref(cj);
    assert_int_equal(
        server_parse_body(eng, false, cb, strlen(cb), &status, NULL, msg, sizeof msg, &text), 0);
    free(cb);
    assert_true(chat.n > 10);
    assert_int_equal(chat.n, text.n);
    assert_memory_equal(chat.ids, text.ids, chat.n * sizeof *chat.ids);
    tok_ids_free(&chat);
    tok_ids_free(&text);
}

/* ------------------------------------------------------------ the real front */

struct resp {
    char data[65536];
    size_t len;
    unsigned status; /* 0: no status line came */
    bool timed_out;
};

/* Send req on a new connection and read until the server closes it (30 s at most). */
static void exchange(const char *req, size_t req_len, struct resp *out)
{
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)engine_port(eng))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    for (size_t sent = 0; sent < req_len;) {
        ssize_t w = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* closed by the server (a body over the limit) */
        sent += (size_t)w;
    }
    for (;;) {
        ssize_t r = recv(fd, out->data + out->len, sizeof out->data - 1 - out->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            out->timed_out = true;
        if (r <= 0 || out->len + (size_t)r >= sizeof out->data - 1)
            break;
        out->len += (size_t)r;
    }
    out->data[out->len] = '\0';
    close(fd);
    if (sscanf(out->data, "HTTP/1.%*d %u", &out->status) != 1)
        out->status = 0;
}

#define COMPLETIONS "/v1/completions"
#define CHAT        "/v1/chat/completions"

static void post_to(const char *path, const char *body, struct resp *out)
{
    char req[MAX_BODY + 512];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     path, strlen(body), body);
    assert_true(n > 0 && (size_t)n < sizeof req);
    exchange(req, (size_t)n, out);
}

static void post(const char *body, struct resp *out)
{
    post_to(COMPLETIONS, body, out);
}

static const char *body_of(const struct resp *r)
{
    const char *p = strstr(r->data, "\r\n\r\n");
    return p ? p + 4 : "";
}

/* A streamed answer in full: its last event, then chunked encoding's last chunk. */
static bool stream_complete(const struct resp *r)
{
    return r->status == 200 && strstr(r->data, "data: [DONE]") && r->len >= 5 &&
           memcmp(r->data + r->len - 5, "0\r\n\r\n", 5) == 0;
}

static bool unary_complete(const struct resp *r)
{
    const char *b = body_of(r);
    return r->status == 200 &&
           (strstr(b, "\"text_completion\"") || strstr(b, "\"chat.completion\"")) && b[0] == '{' &&
           r->data[r->len - 1] == '}';
}

static const char UNARY[] = "{\"prompt\":\"hello there, engine\",\"max_tokens\":6,\"seed\":1,"
                            "\"stop\":[\"never said\"]}";
static const char STREAM[] = "{\"prompt\":\"hello there, engine\",\"max_tokens\":6,\"seed\":1,"
                             "\"stop\":[\"never said\"],\"stream\":true}";

static const char CHAT_UNARY[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\","
    "\"content\":[{\"type\":\"text\",\"text\":\"hello\"},{\"type\":\"text\",\"text\":\"there\"}]}],"
    "\"max_tokens\":6,\"seed\":1,\"stop\":[\"never said\"]}";
static const char CHAT_STREAM[] =
    "{\"messages\":[{\"role\":\"user\",\"content\":\"hello there, engine\"}],"
    "\"max_completion_tokens\":6,\"seed\":1,\"stream\":true,"
    "\"stream_options\":{\"include_usage\":true}}";

static void test_http_answers(void **state)
{
    (void)state;
    struct resp r;
    post(UNARY, &r);
    assert_true(unary_complete(&r));
    assert_non_null(strstr(r.data, "x-request-id: kvb-"));
    post(STREAM, &r);
    assert_true(stream_complete(&r));
    /* a refused field through the front: its status and the field named in the body */
    post("{\"prompt\":\"x\",\"n\":3}", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(body_of(&r), "\"param\":\"n\""));
    assert_non_null(strstr(body_of(&r), "only n = 1"));

    /* chat, on the same path */
    post_to(CHAT, CHAT_UNARY, &r);
    assert_true(unary_complete(&r));
    assert_non_null(strstr(body_of(&r), "\"id\":\"chatcmpl-kvb-"));
    assert_non_null(strstr(body_of(&r), "\"message\":{\"role\":\"assistant\",\"content\":"));
    post_to(CHAT, CHAT_STREAM, &r);
    assert_true(stream_complete(&r));
    const char *role = strstr(r.data, "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}");
    const char *content = strstr(r.data, "\"delta\":{\"content\":");
    assert_non_null(role);
    assert_non_null(content);
    assert_true(role < content);              /* the role chunk before the first text */
    assert_null(strstr(content, "\"role\"")); /* once */
    assert_non_null(strstr(r.data, "\"choices\":[],\"usage\":"));
    post_to(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(body_of(&r), "\"param\":\"n\""));
    static const char get[] = "GET /v1/chat/completions HTTP/1.1\r\nHost: t\r\n"
                              "Connection: close\r\n\r\n";
    exchange(get, sizeof get - 1, &r);
    assert_int_equal(r.status, 405);
}

/* usage's numbers of a unary answer */
static size_t usage_of(const struct resp *r, const char *key)
{
    json_t *j = json_loads(body_of(r), 0, NULL);
    assert_non_null(j);
    const json_t *u = json_object_get(j, "usage");
    const json_t *v = strcmp(key, "cached_tokens") == 0
                          ? json_object_get(json_object_get(u, "prompt_tokens_details"), key)
                          : json_object_get(u, key);
    assert_true(json_is_integer(v));
    size_t n = (size_t)json_integer_value(v);
    json_decref(j);
    return n;
}

/* A conversation sent to /v1/chat/completions and its rendered text sent to /v1/completions are
 * one prompt: the second finds the first's KV blocks (cached_tokens), either way round. */
static void test_chat_prefix_reuse_across_endpoints(void **state)
{
    (void)state;
    for (int chat_first = 0; chat_first < 2; chat_first++) {
        char conv[512], chat[1024], rendered[1024];
        snprintf(conv, sizeof conv,
                 "turn %d: the quick brown fox jumps over the lazy dog while the engine keeps its "
                 "blocks, again and again, so that a repeat of this conversation finds them all "
                 "in the cache of the device once more",
                 chat_first);
        snprintf(chat, sizeof chat,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":2}", conv);
        snprintf(rendered, sizeof rendered,
                 LLAMA3_BOS LLAMA3_HDR("user") "%s" LLAMA3_EOT LLAMA3_HDR("assistant"), conv);
        json_t *cj = json_pack("{s:s, s:i}", "prompt", rendered, "max_tokens", 2);
        char *completion = json_dumps(cj, JSON_COMPACT);
        json_decref(cj);
        struct resp r1, r2;
        post_to(chat_first ? CHAT : COMPLETIONS, chat_first ? chat : completion, &r1);
        post_to(chat_first ? COMPLETIONS : CHAT, chat_first ? completion : chat, &r2);
        free(completion);
        assert_true(unary_complete(&r1));
        assert_true(unary_complete(&r2));
        size_t n = usage_of(&r1, "prompt_tokens");
        assert_true(n > 64);
        assert_int_equal(usage_of(&r2, "prompt_tokens"), n);
        assert_int_equal(usage_of(&r1, "cached_tokens"), 0);
        assert_true(usage_of(&r2, "cached_tokens") >= (n - 1) / 32 * 32);
    }
}

static void test_body_limits(void **state)
{
    (void)state;
    struct resp r;
    /* a body at the limit is read and served */
    char *body = malloc(MAX_BODY + 1);
    assert_non_null(body);
    int head = snprintf(body, MAX_BODY + 1, "{\"prompt\":\"x\",\"max_tokens\":2}");
    memset(body + head, ' ', MAX_BODY - (size_t)head);
    body[MAX_BODY] = '\0';
    post(body, &r);
    assert_true(unary_complete(&r));
    free(body);

    /* over it by its Content-Length: refused from the headers, before the body */
    static const char big[] = "POST /v1/completions HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                              "Content-Length: 8193\r\n\r\n";
    exchange(big, sizeof big - 1, &r);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(body_of(&r), "request body exceeds 8192 bytes"));

    /* over it in chunks: the connection is closed where the body passes the limit */
    static const char chunked_head[] = "POST /v1/completions HTTP/1.1\r\nHost: t\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n";
    size_t cap = sizeof chunked_head + 3 * (4096 + 16) + 8;
    char *req = malloc(cap);
    assert_non_null(req);
    size_t n = (size_t)snprintf(req, cap, "%s", chunked_head);
    for (int k = 0; k < 3; k++) {
        n += (size_t)snprintf(req + n, cap - n, "1000\r\n");
        memset(req + n, ' ', 4096);
        n += 4096;
        n += (size_t)snprintf(req + n, cap - n, "\r\n");
    }
    n += (size_t)snprintf(req + n, cap - n, "0\r\n\r\n");
    exchange(req, n, &r);
    free(req);
    assert_false(r.timed_out);
    assert_int_equal(r.status, 0);

    /* framing a proxy could read differently is refused */
    static const char two_lengths[] = "POST /v1/completions HTTP/1.1\r\nHost: t\r\nConnection: "
                                      "close\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}";
    exchange(two_lengths, sizeof two_lengths - 1, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(body_of(&r), "conflicting Content-Length"));
    static const char gzip[] = "POST /v1/completions HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                               "Transfer-Encoding: gzip\r\n\r\n";
    exchange(gzip, sizeof gzip - 1, &r);
    assert_int_equal(r.status, 501);

    /* and the server goes on serving */
    post(UNARY, &r);
    assert_true(unary_complete(&r));
}

/* ------------------------------------------------------------ allocation failure */

/* The generated text of an answer: every "text" member's value in order (the SSE events of a
 * stream, the one choice of a unary answer), or every "content" one of a chat answer, escapes
 * left as they are. */
static void answer_text(const struct resp *r, char *out, size_t cap)
{
    size_t n = 0;
    const char *key = strstr(r->data, "chat.completion") ? "\"content\":\"" : "\"text\":\"";
    for (const char *p = strstr(r->data, key); p; p = strstr(p, key)) {
        p += strlen(key);
        for (; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1] && n + 1 < cap)
                out[n++] = *p++;
            if (n + 1 < cap)
                out[n++] = *p;
        }
    }
    out[n] = '\0';
}

/* A complete answer with the text a request without faults gets (want). */
static bool answer_complete(const struct resp *r, bool stream, const char *want)
{
    char got[4096];
    answer_text(r, got, sizeof got);
    return (stream ? stream_complete(r) : unary_complete(r)) && strcmp(got, want) == 0;
}

static void fault_sweep(const char *path, const char *body, bool stream)
{
    struct resp r;
    char want[4096];
    post_to(path, body, &r);
    assert_true(stream ? stream_complete(&r) : unary_complete(&r));
    answer_text(&r, want, sizeof want);
    assert_true(want[0] != '\0');
    long reached = 0, n_complete = 0, n_error = 0, n_cut = 0, nth;
    for (nth = 1; nth <= 400; nth++) {
        fault_arm(nth, false);
        post_to(path, body, &r);
        fault_disarm();
        long failed = fault_failures();
        assert_false(r.timed_out);
        if (failed == 0) {
            /* every allocation of the request has been failed once: this run failed none */
            assert_true(answer_complete(&r, stream, want));
            break;
        }
        reached++;
        bool complete = answer_complete(&r, stream, want);
        bool error = r.status >= 500 && r.status < 600 && strstr(body_of(&r), "\"error\"");
        /* a stream already answered 200 ends with an error: no last event, no last chunk */
        bool cut = stream && r.status == 200 && !strstr(r.data, "data: [DONE]") &&
                   !(r.len >= 5 && memcmp(r.data + r.len - 5, "0\r\n\r\n", 5) == 0);
        if (!complete && !error && !cut)
            fprintf(stderr, "allocation %ld of a %s request: unclear outcome:\n%s\n", nth,
                    stream ? "streamed" : "unary", r.data);
        assert_true(complete || error || cut);
        n_complete += complete;
        n_error += error;
        n_cut += cut;
        /* the memory is back: the next request is served in full */
        post_to(path, body, &r);
        assert_true(answer_complete(&r, stream, want));
    }
    fprintf(stderr, "%s: %ld allocations failed in turn: %ld errors, %ld cut, %ld complete\n",
            stream ? "streamed" : "unary", reached, n_error, n_cut, n_complete);
    assert_true(nth <= 400);  /* the sweep reached a run with no allocation left to fail */
    assert_true(reached > 3); /* and the failures did reach the request path */
}

static void test_allocation_failures_unary(void **state)
{
    (void)state;
    fault_sweep(COMPLETIONS, UNARY, false);
    fault_sweep(CHAT, CHAT_UNARY, false);
}

static void test_allocation_failures_stream(void **state)
{
    (void)state;
    fault_sweep(COMPLETIONS, STREAM, true);
    fault_sweep(CHAT, CHAT_STREAM, true);
}

/* A second engine started at each allocation in turn: out of memory, or running; nothing left
 * behind either way (LSan). */
static void test_start_allocation_failures(void **state)
{
    (void)state;
    struct engine_config cfg = test_config();
    cfg.kv.mode = KV_MODE_CPU_ONLY;
    cfg.kv.g2_blocks = 16;
    long nth, reached = 0;
    for (nth = 1; nth <= 200; nth++) {
        struct engine *e2 = NULL;
        char err[256] = "";
        fault_arm(nth, false);
        int rc = engine_start(&cfg, &e2, err);
        fault_disarm();
        if (fault_failures() == 0) {
            assert_int_equal(rc, 0);
            engine_stop(e2);
            break;
        }
        reached++;
        if (rc == 0) /* a failure it could do without (a size hint) */
            engine_stop(e2);
        else
            assert_non_null(strstr(err, "out of memory"));
    }
    assert_true(nth <= 200);
    assert_true(reached >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_bodies),
        cmocka_unit_test(test_refused_fields),
        cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_chat_valid_bodies),
        cmocka_unit_test(test_chat_refused),
        cmocka_unit_test(test_chat_limits),
        cmocka_unit_test(test_chat_prompt_is_rendered_text),
        cmocka_unit_test(test_http_answers),
        cmocka_unit_test(test_chat_prefix_reuse_across_endpoints),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_allocation_failures_unary),
        cmocka_unit_test(test_allocation_failures_stream),
        cmocka_unit_test(test_start_allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
