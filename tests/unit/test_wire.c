/*
 * Unit tests for engine/wire.c at its seams: the response shapes of the embedded engine under
 * each personality of the catalogue, built from a request (struct ereq) and an engine whose
 * configuration alone is set (no server, no scheduler). Each body is parsed back as a client
 * would: the unary completion object, the SSE chunks (text, the last chunk, the usage chunk,
 * [DONE]), the chat shapes (chat.completion, the role chunk first, delta.content), usage and
 * cached tokens, llama.cpp's timings, the three error shapes, /health in its
 * three styles and /v1/models' entry.
 */
#include "test_common.h"

#include "engine/internal.h"
#include "util/json.h"

struct fixture {
    struct engine e;
    struct ereq r;
};

static struct fixture *fixture_new(const char *personality)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->e.cfg.model_id = "m1";
    f->e.cfg.host = "127.0.0.1";
    f->e.cfg.endpoint = "dyn://ns1.comp1.generate";
    f->e.cfg.model.max_context = 8192;
    f->e.cfg.max_num_seqs = 4;
    f->e.cfg.personality = personality ? personality_find(personality) : NULL;
    f->e.port = 8123;
    f->e.created = 1700000000;
    f->e.instance_id = 77;
    struct ereq *r = &f->r;
    r->eng = &f->e;
    snprintf(r->cmpl_id, sizeof r->cmpl_id, "cmpl-1");
    snprintf(r->model, sizeof r->model, "m1");
    r->created = 1700000001;
    r->prompt.n = 100;
    r->generated = 5;
    r->cached_tokens = 64;
    r->t_arrival_ns = 1000000000;
    r->t_first_ns = 1050000000; /* 50 ms to the first token */
    r->t_last_ns = 1090000000;  /* 4 gaps of 10 ms */
    r->text = (struct buf)BUF_INIT;
    r->out = (struct buf)BUF_INIT;
    buf_append_str(&r->text, "hello \"world\"");
    assert_false(buf_failed(&r->text));
    return f;
}

static void fixture_free(struct fixture *f)
{
    buf_free(&f->r.text);
    buf_free(&f->r.out);
    free(f);
}

/* The member at a dotted path ("usage.prompt_tokens", "instances.0.namespace"), or NULL. */
static const json_t *json_path(const json_t *o, const char *path)
{
    char key[128];
    snprintf(key, sizeof key, "%s", path);
    const json_t *v = o;
    char *save = NULL;
    for (char *part = strtok_r(key, ".", &save); part && v; part = strtok_r(NULL, ".", &save))
        v = json_is_array(v) ? json_array_get(v, strtoul(part, NULL, 10))
                             : json_object_get(v, part);
    return v;
}

static const char *json_path_str(const json_t *o, const char *path)
{
    const char *s = json_string_value(json_path(o, path));
    if (!s)
        fail_msg("%s is not a string", path);
    return s;
}

static long long get_int(const json_t *o, const char *path)
{
    const json_t *v = json_path(o, path);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    return (long long)json_integer_value(v);
}

/* ------------------------------------------------------------ unary */

static void test_unary_per_personality(void **state)
{
    (void)state;
    struct fixture *f = fixture_new("dynamo");
    json_t *j = wire_unary(&f->r);
    assert_non_null(j);
    assert_string_equal(json_get_str(j, "object", ""), "text_completion");
    assert_string_equal(json_get_str(j, "model", ""), "m1");
    const json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(json_get_str(c0, "text", ""), "hello \"world\"");
    assert_string_equal(json_get_str(c0, "finish_reason", ""), "stop");
    assert_int_equal(get_int(j, "usage.prompt_tokens"), 100);
    assert_int_equal(get_int(j, "usage.completion_tokens"), 5);
    assert_int_equal(get_int(j, "usage.total_tokens"), 105);
    assert_int_equal(get_int(j, "usage.prompt_tokens_details.cached_tokens"), 64);
    assert_null(json_object_get(j, "timings"));
    json_decref(j);
    /* a build that does not send the details */
    f->e.cfg.omit_usage_details = true;
    j = wire_unary(&f->r);
    assert_null(json_path(j, "usage.prompt_tokens_details"));
    json_decref(j);
    fixture_free(f);

    /* vLLM: no details unless asked for (--enable-prompt-tokens-details), no timings */
    f = fixture_new("vllm");
    f->r.finish_reason = "length";
    j = wire_unary(&f->r);
    assert_null(json_path(j, "usage.prompt_tokens_details"));
    assert_null(json_object_get(j, "timings"));
    c0 = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(json_get_str(c0, "finish_reason", ""), "length");
    json_decref(j);
    fixture_free(f);

    /* llama.cpp: timings, prompt_n counting the evaluated tokens and cache_n the reused ones */
    f = fixture_new("llamacpp");
    j = wire_unary(&f->r);
    assert_int_equal(get_int(j, "timings.cache_n"), 64);
    assert_int_equal(get_int(j, "timings.prompt_n"), 36);
    assert_int_equal(get_int(j, "timings.predicted_n"), 5);
    assert_true(json_number_value(json_path(j, "timings.prompt_ms")) == 50.0);
    assert_true(json_number_value(json_path(j, "timings.predicted_per_token_ms")) == 10.0);
    json_decref(j);
    f->e.cfg.omit_cache_n = true; /* an old build */
    j = wire_unary(&f->r);
    assert_null(json_path(j, "timings.cache_n"));
    assert_int_equal(get_int(j, "timings.prompt_n"), 36);
    json_decref(j);
    fixture_free(f);
}

/* ------------------------------------------------------------ streams */

/* The SSE events of out: each "data: …" payload, parsed (NULL for [DONE]). */
static size_t events(const struct buf *out, json_t **ev, size_t max, bool *done)
{
    size_t n = 0;
    *done = false;
    const char *p = buf_cstr(out);
    while (*p) {
        assert_true(strncmp(p, "data: ", 6) == 0);
        p += 6;
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        if (strncmp(p, "[DONE]", 6) == 0) {
            *done = true;
            assert_string_equal(end + 2, ""); /* nothing after [DONE] */
        } else {
            assert_true(n < max);
            ev[n] = json_loadb(p, (size_t)(end - p), 0, NULL);
            assert_non_null(ev[n]);
            n++;
        }
        p = end + 2;
    }
    return n;
}

static void stream(struct fixture *f, bool include_usage)
{
    f->r.include_usage = include_usage;
    wire_stream_text(&f->r, "he", 2, NULL);
    wire_stream_text(&f->r, "llo", 3, "stop");
    wire_stream_end(&f->r);
    assert_false(buf_failed(&f->r.out));
}

static void test_stream_chunks_and_usage(void **state)
{
    (void)state;
    json_t *ev[8];
    bool done;
    const char *names[] = {"dynamo", "vllm", "sglang", "trtllm"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        struct fixture *f = fixture_new(names[k]);
        stream(f, true);
        size_t n = events(&f->r.out, ev, 8, &done);
        assert_true(done);
        assert_int_equal(n, 3); /* two text chunks and the usage chunk */
        const json_t *c0 = json_array_get(json_object_get(ev[0], "choices"), 0);
        assert_string_equal(json_get_str(c0, "text", ""), "he");
        assert_true(json_is_null(json_object_get(c0, "finish_reason")));
        assert_null(json_object_get(ev[0], "usage"));
        const json_t *c1 = json_array_get(json_object_get(ev[1], "choices"), 0);
        assert_string_equal(json_get_str(c1, "finish_reason", ""), "stop");
        assert_null(json_object_get(ev[1], "usage"));
        assert_int_equal(json_array_size(json_object_get(ev[2], "choices")), 0);
        assert_int_equal(get_int(ev[2], "usage.prompt_tokens"), 100);
        assert_true((json_path(ev[2], "usage.prompt_tokens_details") != NULL) ==
                    (strcmp(names[k], "dynamo") == 0));
        for (size_t i = 0; i < n; i++)
            json_decref(ev[i]);
        fixture_free(f);

        /* without stream_options.include_usage: no usage chunk */
        f = fixture_new(names[k]);
        stream(f, false);
        n = events(&f->r.out, ev, 8, &done);
        assert_true(done);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++)
            json_decref(ev[i]);
        fixture_free(f);
    }

    /* llama.cpp: usage and timings on the last text chunk, always; never a usage chunk */
    struct fixture *f = fixture_new("llamacpp");
    stream(f, true);
    size_t n = events(&f->r.out, ev, 8, &done);
    assert_true(done);
    assert_int_equal(n, 2);
    assert_null(json_object_get(ev[0], "usage"));
    assert_int_equal(get_int(ev[1], "usage.completion_tokens"), 5);
    assert_int_equal(get_int(ev[1], "timings.cache_n"), 64);
    for (size_t i = 0; i < n; i++)
        json_decref(ev[i]);
    fixture_free(f);
}

/* ------------------------------------------------------------ chat */

static void test_chat_unary(void **state)
{
    (void)state;
    const char *names[] = {"dynamo", "vllm", "sglang", "llamacpp", "trtllm"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        struct fixture *f = fixture_new(names[k]);
        f->r.chat = true;
        snprintf(f->r.cmpl_id, sizeof f->r.cmpl_id, "chatcmpl-1");
        json_t *j = wire_unary(&f->r);
        assert_non_null(j);
        assert_string_equal(json_get_str(j, "object", ""), "chat.completion");
        assert_string_equal(json_get_str(j, "id", ""), "chatcmpl-1");
        assert_string_equal(json_path_str(j, "choices.0.message.role"), "assistant");
        assert_string_equal(json_path_str(j, "choices.0.message.content"), "hello \"world\"");
        assert_string_equal(json_path_str(j, "choices.0.finish_reason"), "stop");
        assert_null(json_path(j, "choices.0.text"));
        assert_int_equal(get_int(j, "usage.prompt_tokens"), 100);
        assert_int_equal(get_int(j, "usage.completion_tokens"), 5);
        /* cached tokens and timings where the personality sends them, as for completions */
        assert_true((json_path(j, "usage.prompt_tokens_details.cached_tokens") != NULL) ==
                    (strcmp(names[k], "dynamo") == 0));
        assert_true((json_object_get(j, "timings") != NULL) == (strcmp(names[k], "llamacpp") == 0));
        json_decref(j);
        fixture_free(f);
    }
}

/* A chat stream: the role chunk first (no text), then delta.content chunks, the finish; the
 * usage chunk (choices []) with stream_options.include_usage where the personality sends one,
 * llama.cpp's usage and timings on the finish chunk. */
static void test_chat_stream(void **state)
{
    (void)state;
    json_t *ev[8];
    bool done;
    const char *names[] = {"dynamo", "vllm", "sglang", "llamacpp", "trtllm"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        bool llama = strcmp(names[k], "llamacpp") == 0;
        for (int iu = 0; iu < 2; iu++) {
            struct fixture *f = fixture_new(names[k]);
            f->r.chat = true;
            stream(f, iu);
            size_t n = events(&f->r.out, ev, 8, &done);
            assert_true(done);
            assert_int_equal(n, iu && !llama ? 4u : 3u);
            for (size_t i = 0; i < n; i++)
                assert_string_equal(json_get_str(ev[i], "object", ""), "chat.completion.chunk");
            /* the role chunk: content "" (null under llama.cpp), no finish, no usage */
            assert_string_equal(json_path_str(ev[0], "choices.0.delta.role"), "assistant");
            const json_t *c = json_path(ev[0], "choices.0.delta.content");
            assert_true(llama ? json_is_null(c) : json_is_string(c) && !*json_string_value(c));
            assert_true(json_is_null(json_path(ev[0], "choices.0.finish_reason")));
            assert_null(json_object_get(ev[0], "usage"));
            /* the text, without the role */
            assert_string_equal(json_path_str(ev[1], "choices.0.delta.content"), "he");
            assert_null(json_path(ev[1], "choices.0.delta.role"));
            assert_true(json_is_null(json_path(ev[1], "choices.0.finish_reason")));
            assert_string_equal(json_path_str(ev[2], "choices.0.delta.content"), "llo");
            assert_string_equal(json_path_str(ev[2], "choices.0.finish_reason"), "stop");
            assert_true((json_object_get(ev[2], "usage") != NULL) == llama);
            assert_true((json_object_get(ev[2], "timings") != NULL) == llama);
            if (n == 4) {
                assert_int_equal(json_array_size(json_object_get(ev[3], "choices")), 0);
                assert_int_equal(get_int(ev[3], "usage.total_tokens"), 105);
                assert_true((json_path(ev[3], "usage.prompt_tokens_details") != NULL) ==
                            (strcmp(names[k], "dynamo") == 0));
            }
            for (size_t i = 0; i < n; i++)
                json_decref(ev[i]);
            fixture_free(f);
        }
    }
    /* a finish with no text left: an empty delta; the role chunk still comes first */
    struct fixture *f = fixture_new("vllm");
    f->r.chat = true;
    wire_stream_text(&f->r, "", 0, "length");
    wire_stream_end(&f->r);
    size_t n = events(&f->r.out, ev, 8, &done);
    assert_int_equal(n, 2);
    assert_string_equal(json_path_str(ev[0], "choices.0.delta.role"), "assistant");
    assert_int_equal(json_object_size(json_path(ev[1], "choices.0.delta")), 0);
    assert_string_equal(json_path_str(ev[1], "choices.0.finish_reason"), "length");
    for (size_t i = 0; i < n; i++)
        json_decref(ev[i]);
    fixture_free(f);
}

/* ------------------------------------------------------------ errors */

static void test_error_shapes(void **state)
{
    (void)state;
    struct fixture *f = fixture_new("vllm");
    json_t *j = wire_error(&f->e, 400, "invalid_request_error", "max_tokens", NULL, "too many");
    assert_string_equal(json_path_str(j, "error.message"), "too many");
    assert_string_equal(json_path_str(j, "error.type"), "invalid_request_error");
    assert_string_equal(json_path_str(j, "error.param"), "max_tokens");
    assert_int_equal(get_int(j, "error.code"), 400); /* no code string: the status */
    json_decref(j);
    j = wire_error(&f->e, 404, "invalid_request_error", NULL, "model_not_found", "no such model");
    assert_string_equal(json_path_str(j, "error.code"), "model_not_found");
    assert_true(json_is_null(json_path(j, "error.param")));
    json_decref(j);
    fixture_free(f);

    f = fixture_new("sglang"); /* {"object":"error", …} */
    j = wire_error(&f->e, 400, "BadRequestError", "prompt", "x", "bad prompt");
    assert_string_equal(json_get_str(j, "object", ""), "error");
    assert_string_equal(json_get_str(j, "message", ""), "bad prompt");
    assert_string_equal(json_get_str(j, "param", ""), "prompt");
    assert_int_equal(get_int(j, "code"), 400);
    assert_null(json_object_get(j, "error"));
    json_decref(j);
    fixture_free(f);

    f = fixture_new("llamacpp"); /* {"error":{"code":<status>,"message","type"}} */
    j = wire_error(&f->e, 503, "unavailable_error", "model", "x", "Loading model");
    assert_int_equal(get_int(j, "error.code"), 503);
    assert_string_equal(json_path_str(j, "error.message"), "Loading model");
    assert_string_equal(json_path_str(j, "error.type"), "unavailable_error");
    assert_null(json_path(j, "error.param"));
    json_decref(j);
    fixture_free(f);
}

/* ------------------------------------------------------------ /health */

static void test_health_styles(void **state)
{
    (void)state;
    unsigned status = 0;
    struct fixture *f = fixture_new(NULL); /* no personality: Dynamo's */
    json_t *j = wire_health(&f->e, true, false, true, 1.5, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_get_str(j, "status", ""), "healthy");
    assert_string_equal(json_path_str(j, "endpoints.0"), "dyn://ns1.comp1.generate");
    assert_string_equal(json_path_str(j, "instances.0.namespace"), "ns1");
    assert_string_equal(json_path_str(j, "instances.0.component"), "comp1");
    assert_string_equal(json_path_str(j, "instances.0.endpoint"), "generate");
    assert_int_equal(get_int(j, "instances.0.instance_id"), 77);
    assert_string_equal(json_path_str(j, "instances.0.transport.http"), "127.0.0.1:8123");
    json_decref(j);
    j = wire_health(&f->e, false, false, false, 0, &status);
    assert_int_equal(status, 503);
    assert_string_equal(json_get_str(j, "status", ""), "not_ready");
    assert_int_equal(json_array_size(json_object_get(j, "instances")), 0);
    json_decref(j);
    j = wire_health(&f->e, false, true, true, 0, &status);
    assert_string_equal(json_get_str(j, "status", ""), "shutting_down");
    json_decref(j);
    fixture_free(f);

    const char *empty[] = {"vllm", "sglang", "trtllm"};
    for (size_t k = 0; k < 3; k++) {
        f = fixture_new(empty[k]);
        assert_null(wire_health(&f->e, true, false, true, 0, &status));
        assert_int_equal(status, 200);
        assert_null(wire_health(&f->e, false, false, true, 0, &status));
        assert_int_equal(status, 503);
        fixture_free(f);
    }

    f = fixture_new("llamacpp");
    j = wire_health(&f->e, true, false, true, 0, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_get_str(j, "status", ""), "ok");
    json_decref(j);
    j = wire_health(&f->e, false, false, true, 0, &status);
    assert_int_equal(status, 503);
    assert_string_equal(json_path_str(j, "error.message"), "Loading model");
    json_decref(j);
    j = wire_health(&f->e, false, true, true, 0, &status);
    assert_string_equal(json_path_str(j, "error.message"), "Server is shutting down");
    json_decref(j);
    fixture_free(f);
}

/* ------------------------------------------------------------ /v1/models and /props */

static void test_model_object(void **state)
{
    (void)state;
    struct {
        const char *pers, *owned_by;
        bool max_len, meta;
    } rows[] = {
        {"dynamo", "kvbench", false, false},      {"vllm", "vllm", true, false},
        {"sglang", "sglang", true, false},        {"llamacpp", "llamacpp", false, true},
        {"trtllm", "tensorrt_llm", false, false},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        struct fixture *f = fixture_new(rows[k].pers);
        json_t *m = wire_model_object(&f->e);
        assert_string_equal(json_get_str(m, "id", ""), "m1");
        assert_string_equal(json_get_str(m, "object", ""), "model");
        assert_string_equal(json_get_str(m, "owned_by", ""), rows[k].owned_by);
        /* the owner is what identifies the engine to kvbench run (engine_detect) */
        const struct engine_profile *p = engine_profile_find(rows[k].pers);
        if (p->owned_by)
            assert_string_equal(p->owned_by, rows[k].owned_by);
        assert_int_equal(get_int(m, "created"), 1700000000);
        if (rows[k].max_len) {
            assert_int_equal(get_int(m, "max_model_len"), 8192);
            assert_string_equal(json_get_str(m, "root", ""), "m1");
        } else {
            assert_null(json_object_get(m, "max_model_len"));
        }
        if (rows[k].meta)
            assert_int_equal(get_int(m, "meta.n_ctx_train"), 8192);
        else
            assert_null(json_object_get(m, "meta"));
        json_decref(m);
        fixture_free(f);
    }
    struct fixture *f = fixture_new("llamacpp");
    json_t *p = wire_props(&f->e);
    assert_int_equal(get_int(p, "default_generation_settings.n_ctx"), 8192);
    assert_int_equal(get_int(p, "total_slots"), 4);
    /* the harness's context-limit source for llama.cpp reads it */
    const struct engine_profile *lp = engine_profile_find("llamacpp");
    assert_int_equal(engine_ctx_limit_in(&lp->ctx_limits[0], p, "m1"), 8192);
    json_decref(p);
    /* chat_template: the name of the template /v1/chat/completions renders with */
    f->e.cfg.chat_tpl = CHAT_TPL_PLAIN;
    p = wire_props(&f->e);
    assert_string_equal(json_get_str(p, "chat_template", ""), "plain");
    json_decref(p);
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary_per_personality),
        cmocka_unit_test(test_stream_chunks_and_usage),
        cmocka_unit_test(test_chat_unary),
        cmocka_unit_test(test_chat_stream),
        cmocka_unit_test(test_error_shapes),
        cmocka_unit_test(test_health_styles),
        cmocka_unit_test(test_model_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
