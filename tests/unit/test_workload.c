/* Unit tests for prompt synthesis: determinism, tuning tolerance, targets, salt and template. */
#include "test_common.h"

#include "scenario/workload.h"
#include "util/err.h"
#include "util/sha256.h"
#include "model/tokens.h"

#define GOLDEN_0 "99b42fcd4ee9ebaa71449f25d5e450b50d6125a1293da191b6253fdc131d8c02"
#define GOLDEN_1 "08d220114cba3131b6063014e91597d27058d37acf555ed6a897e2ca74ffaa84"

static struct workload_params params(const char *salt, bool tmpl)
{
    struct workload_params p = {
        .seed = 1337,
        .short_range = {512, 2048},
        .long_range = {8192, 32768},
        .salt = salt,
        .form = {.llama3 = tmpl},
        .tok = tokenizer_heuristic(),
    };
    return p;
}

static void test_deterministic_golden(void **state)
{
    (void)state;
    struct workload_params p = params("", true);
    struct prompt *a, *b;
    char err[ERR_LEN];
    assert_int_equal(workload_make(&p, "main", "short", 1337, 3, &a, err), 0);
    assert_int_equal(workload_make(&p, "main", "short", 1337, 3, &b, err), 0);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(a[i].sha256, b[i].sha256);
        assert_int_equal(a[i].len, b[i].len);
    }
    /* Golden values: a change here means prompts differ from earlier kvbench versions, and
     * results stop being comparable. Update only on purpose. */
    assert_string_equal(a[0].sha256, GOLDEN_0);
    assert_string_equal(a[1].sha256, GOLDEN_1);
    assert_string_equal(a[0].id, "main-00000");
    assert_string_equal(a[2].id, "main-00002");
    /* different seeds and prefixes give different prompts */
    struct prompt *c;
    assert_int_equal(workload_make(&p, "warmup", "short", 1337 + 100003, 1, &c, err), 0);
    assert_string_not_equal(c[0].sha256, a[0].sha256);
    prompts_free(a, 3);
    prompts_free(b, 3);
    prompts_free(c, 1);
}

static void test_tuning_tolerance(void **state)
{
    (void)state;
    struct workload_params p = params("20261128T000000Z", true);
    struct prompt *ps;
    char err[ERR_LEN];
    assert_int_equal(workload_make(&p, "main", "mixed", 7, 40, &ps, err), 0);
    for (int i = 0; i < 40; i++) {
        /* the estimate is what the tokenizer counts, in [target, target + 64) */
        assert_int_equal(ps[i].est_tokens, tok_heuristic_count(ps[i].text, ps[i].len));
        assert_true(ps[i].est_tokens >= ps[i].target);
        assert_true(ps[i].est_tokens < ps[i].target + 64);
        char sha[65];
        sha256_hex(ps[i].text, ps[i].len, sha);
        assert_string_equal(sha, ps[i].sha256);
    }
    prompts_free(ps, 40);
}

static void test_targets_presets_and_ranges(void **state)
{
    (void)state;
    struct workload_params p = params("", false);
    uint64_t rng = 99;
    for (int i = 0; i < 200; i++) {
        size_t t = workload_pick_target(&p, "short", &rng);
        assert_true(t == 512 || t == 768 || t == 1024 || t == 1536 || t == 2048);
        t = workload_pick_target(&p, "long", &rng);
        assert_true(t == 8192 || t == 12288 || t == 16384 || t == 24576 || t == 32768);
    }
    /* the runbook's capped long range holds no preset: uniform in it */
    p.long_range = (struct token_range){6000, 7600};
    for (int i = 0; i < 200; i++) {
        size_t t = workload_pick_target(&p, "long", &rng);
        assert_true(t >= 6000 && t <= 7600);
    }
    p.short_range = (struct token_range){700, 1100};
    for (int i = 0; i < 200; i++) {
        size_t t = workload_pick_target(&p, "short", &rng);
        assert_true(t == 768 || t == 1024);
    }
}

static void test_template_and_salt(void **state)
{
    (void)state;
    struct workload_params p = params("my-salt", true);
    struct prompt *ps;
    char err[ERR_LEN];
    assert_int_equal(workload_make(&p, "A", "short", 1, 1, &ps, err), 0);
    const char *head = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nmy-salt\n\n";
    assert_memory_equal(ps[0].text, head, strlen(head));
    const char *tail = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    assert_string_equal(ps[0].text + ps[0].len - strlen(tail), tail);
    assert_non_null(strstr(ps[0].text, "Section 1: "));
    assert_non_null(strstr(ps[0].text, "\n1. "));
    /* no template, no salt: the bare document */
    struct workload_params q = params("", false);
    struct prompt *qs;
    assert_int_equal(workload_make(&q, "A", "short", 1, 1, &qs, err), 0);
    assert_memory_equal(qs[0].text, "\nSection 1: ", 12);
    char *w = workload_llama3_wrap("hi");
    assert_string_equal(w, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi"
                           "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    free(w);
    json_t *row = prompt_manifest_json(&ps[0]);
    assert_string_equal(json_string_value(json_object_get(row, "prompt_id")), "A-00000");
    assert_int_equal(json_integer_value(json_object_get(row, "prompt_chars")),
                     (json_int_t)ps[0].len);
    json_decref(row);
    prompts_free(ps, 1);
    prompts_free(qs, 1);
}

/* --endpoint chat: the salt and the document are one user message, and the prompt's text is that
 * message rendered through the server's template: what the target and the count are of. */
static void test_chat_prompts_are_rendered_messages(void **state)
{
    (void)state;
    for (int t = 0; t < 3; t++) {
        struct workload_params p = params("salt-9", false);
        p.form = (struct prompt_form){.chat = true, .tpl = (enum chat_template)t};
        struct prompt *ps;
        char err[ERR_LEN];
        assert_int_equal(workload_make(&p, "main", "short", 11, 3, &ps, err), 0);
        for (int i = 0; i < 3; i++) {
            struct prompt *q = &ps[i];
            assert_int_equal(q->n_msgs, 1);
            assert_int_equal(q->msgs[0].role, CHAT_USER);
            const struct chat_span *sp = &q->msgs[0].span;
            assert_true(sp->off + sp->len <= q->len);
            assert_memory_equal(q->text + sp->off, "salt-9\n\n", 8);
            /* rendering the message again gives the prompt's text */
            struct chat_msg m = {CHAT_USER, q->text + sp->off, sp->len};
            struct chat_render_opts o = prompt_form_render(&p.form);
            struct buf b = BUF_INIT;
            chat_render(&o, &m, 1, &b, NULL);
            assert_int_equal(b.len, q->len);
            assert_memory_equal(b.data, q->text, q->len);
            buf_free(&b);
            assert_int_equal(q->est_tokens, tokenizer_count(p.tok, q->text, q->len));
            assert_in_range(q->est_tokens, q->target, q->target + 63);
        }
        if (t == CHAT_TPL_LLAMA3)
            assert_memory_equal(ps[0].text, "<|begin_of_text|><|start_header_id|>user", 40);
        prompts_free(ps, 3);
    }
    /* completions prompts carry no messages */
    struct workload_params p = params("", true);
    struct prompt *ps;
    char err[ERR_LEN];
    assert_int_equal(workload_make(&p, "main", "short", 11, 1, &ps, err), 0);
    assert_int_equal(ps[0].n_msgs, 0);
    assert_null(ps[0].msgs);
    prompts_free(ps, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_golden),
        cmocka_unit_test(test_tuning_tolerance),
        cmocka_unit_test(test_targets_presets_and_ranges),
        cmocka_unit_test(test_template_and_salt),
        cmocka_unit_test(test_chat_prompts_are_rendered_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
