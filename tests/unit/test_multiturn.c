/*
 * Unit tests for bench/multiturn: each round's prompt begins with the whole previous round and
 * the answer given to it (what a prefix cache can reuse, counted in `reusable`), the system turn
 * is shared and salted, histories are the users' own, a failed answer continues the conversation
 * with an empty one, both templates, the users' schedule, the preflight bound, and determinism.
 */
#include "test_common.h"

#include "scenario/multiturn.h"

static const struct prompt_form LLAMA3 = {.llama3 = true};
static const struct prompt_form LLAMA3_NO_BOS = {.llama3 = true, .no_bos = true};
static const struct prompt_form PLAIN = {0};

static const struct mt_params MP = {
    .users = 3,
    .rounds = 3,
    .system_tokens = 100,
    .history_tokens = 300,
    .answer_tokens = 20,
    .user_qps = 0,
};

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void free_round(struct prompt *ps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        prompt_drop_text(&ps[i]);
}

static void test_rounds_grow_from_the_last(void **state)
{
    (void)state;
    const struct tokenizer *tok = tokenizer_heuristic();
    struct multiturn m = {0};
    char err[256];
    assert_int_equal(mt_init(&m, &MP, tok, &LLAMA3, 7, "salt-1", err), 0);
    struct prompt r0[3], r1[3], r2[3];
    size_t reuse[3];
    assert_int_equal(mt_round(&m, 0, NULL, r0, reuse, err), 0);
    const char *sys = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nsalt-1\n\n";
    for (size_t u = 0; u < 3; u++) {
        assert_true(starts_with(r0[u].text, sys));
        assert_int_equal(reuse[u], 0);
        /* system 100 + history 300 + question 32, and the turns' markup */
        assert_in_range(r0[u].est_tokens, 432, 432 + 64 + 40);
        assert_string_equal(r0[u].set, "turn");
        assert_int_equal(strlen(r0[u].text), r0[u].len);
        assert_non_null(strstr(r0[u].text, "<|start_header_id|>assistant<|end_header_id|>\n\n"));
    }
    assert_string_equal(r0[1].id, "turn-u00001-r001");
    /* the system turn is shared; what follows it is each user's own */
    const char *eot0 = strstr(r0[0].text, "<|eot_id|>");
    size_t sys_len = (size_t)(eot0 - r0[0].text) + strlen("<|eot_id|>");
    assert_memory_equal(r0[0].text, r0[2].text, sys_len);
    assert_string_not_equal(r0[0].text + sys_len, r0[2].text + sys_len);
    assert_string_not_equal(r0[0].sha256, r0[1].sha256);

    const char *answers[3] = {"Answer of zero.", NULL, "Answer of two."};
    assert_int_equal(mt_round(&m, 1, answers, r1, reuse, err), 0);
    for (size_t u = 0; u < 3; u++) {
        /* round 2 = round 1 + the answer + end of turn + a new user turn */
        assert_true(starts_with(r1[u].text, r0[u].text));
        const char *rest = r1[u].text + r0[u].len;
        const char *a = answers[u] ? answers[u] : "";
        assert_true(starts_with(rest, a));
        assert_true(starts_with(rest + strlen(a), "<|eot_id|><|start_header_id|>user"));
        /* reusable: the tokens of round 1's prompt and its answer */
        struct buf b = BUF_INIT;
        buf_printf(&b, "%s%s<|eot_id|>", r0[u].text, a);
        assert_int_equal(reuse[u], tokenizer_count(tok, b.data, b.len));
        buf_free(&b);
        assert_true(r1[u].est_tokens > r0[u].est_tokens + 32);
    }
    assert_string_equal(r1[0].id, "turn-u00000-r002");
    /* the round's question is new: round 3 differs from round 2 past round 2's end */
    const char *answers2[3] = {"x", "y", "z"};
    assert_int_equal(mt_round(&m, 2, answers2, r2, reuse, err), 0);
    assert_true(starts_with(r2[1].text, r1[1].text));
    /* the bound the preflight uses holds for answers of answer_tokens */
    assert_true(mt_max_prompt_tokens(&m) >= r2[0].est_tokens);
    free_round(r0, 3);
    free_round(r1, 3);
    free_round(r2, 3);
    mt_free(&m);
}

static void test_plain_template_no_bos_and_determinism(void **state)
{
    (void)state;
    const struct tokenizer *tok = tokenizer_heuristic();
    struct multiturn a = {0}, b = {0}, c = {0};
    char err[256];
    assert_int_equal(mt_init(&a, &MP, tok, &PLAIN, 7, "", err), 0);
    assert_int_equal(mt_init(&b, &MP, tok, &PLAIN, 7, "", err), 0);
    assert_int_equal(mt_init(&c, &MP, tok, &LLAMA3_NO_BOS, 7, "", err), 0);
    struct prompt pa[3], pb[3], pc[3];
    size_t reuse[3];
    assert_int_equal(mt_round(&a, 0, NULL, pa, reuse, err), 0);
    assert_int_equal(mt_round(&b, 0, NULL, pb, reuse, err), 0);
    assert_int_equal(mt_round(&c, 0, NULL, pc, reuse, err), 0);
    for (size_t u = 0; u < 3; u++) {
        assert_string_equal(pa[u].text, pb[u].text); /* same seed: same bytes */
        assert_true(starts_with(pa[u].text, "System: "));
        assert_non_null(strstr(pa[u].text, "\n\nUser: "));
        size_t n = strlen(pa[u].text);
        assert_string_equal(pa[u].text + n - strlen("\n\nAssistant:"), "\n\nAssistant:");
        /* no BOS text: the server adds its own */
        assert_true(starts_with(pc[u].text, "<|start_header_id|>system"));
    }
    const char *ans[3] = {" Yes.", " No.", ""};
    free_round(pb, 3);
    assert_int_equal(mt_round(&a, 1, ans, pb, reuse, err), 0);
    assert_true(starts_with(pb[0].text, pa[0].text));
    assert_true(starts_with(pb[0].text + pa[0].len, " Yes.\n\nUser: "));
    free_round(pa, 3);
    free_round(pb, 3);
    free_round(pc, 3);
    mt_free(&a);
    mt_free(&b);
    mt_free(&c);
}

/* --endpoint chat: each round is the messages themselves (system, user, assistant, …, user),
 * each a span of the prompt's text, which is their rendering through the server's template. */
static void test_chat_rounds_are_messages(void **state)
{
    (void)state;
    const struct tokenizer *tok = tokenizer_heuristic();
    struct prompt_form f = {.chat = true, .tpl = CHAT_TPL_LLAMA3};
    struct multiturn m = {0};
    char err[256];
    assert_int_equal(mt_init(&m, &MP, tok, &f, 7, "salt-2", err), 0);
    struct prompt r0[3], r1[3];
    size_t reuse[3];
    assert_int_equal(mt_round(&m, 0, NULL, r0, reuse, err), 0);
    const char *answers[3] = {" Answer zero. ", NULL, "Two"};
    assert_int_equal(mt_round(&m, 1, answers, r1, reuse, err), 0);
    for (size_t u = 0; u < 3; u++) {
        assert_int_equal(r0[u].n_msgs, 2);
        assert_int_equal(r0[u].msgs[0].role, CHAT_SYSTEM);
        assert_int_equal(r0[u].msgs[1].role, CHAT_USER);
        assert_memory_equal(r0[u].text + r0[u].msgs[0].span.off, "salt-2\n\n", 8);
        assert_int_equal(r1[u].n_msgs, 4);
        enum chat_role want[4] = {CHAT_SYSTEM, CHAT_USER, CHAT_ASSISTANT, CHAT_USER};
        for (int i = 0; i < 4; i++)
            assert_int_equal(r1[u].msgs[i].role, want[i]);
        /* the answer as the server gave it, trimmed as Llama 3's template does */
        const struct chat_span *a = &r1[u].msgs[2].span;
        const char *given = u == 0 ? "Answer zero." : u == 2 ? "Two" : "";
        assert_int_equal(a->len, strlen(given));
        assert_memory_equal(r1[u].text + a->off, given, a->len);
        /* round 2 begins with round 1 without its generation prompt, then the answer */
        const char *hdr = "<|start_header_id|>assistant<|end_header_id|>\n\n";
        assert_memory_equal(r1[u].text, r0[u].text, r0[u].len);
        assert_memory_equal(r0[u].text + r0[u].len - strlen(hdr), hdr, strlen(hdr));
        assert_true(reuse[u] > 0 && reuse[u] < r1[u].est_tokens);
        assert_int_equal(r1[u].est_tokens, tokenizer_count(tok, r1[u].text, r1[u].len));
    }
    free_round(r0, 3);
    free_round(r1, 3);
    mt_free(&m);
    /* no system prompt and no salt: a chat conversation has no empty system message */
    struct mt_params mp = MP;
    mp.system_tokens = 0;
    assert_int_equal(mt_init(&m, &mp, tok, &f, 7, "", err), 0);
    assert_int_equal(mt_round(&m, 0, NULL, r0, reuse, err), 0);
    assert_int_equal(r0[0].n_msgs, 1);
    assert_int_equal(r0[0].msgs[0].role, CHAT_USER);
    free_round(r0, 3);
    mt_free(&m);
}

static void test_schedule(void **state)
{
    (void)state;
    struct mt_params mp = MP;
    mp.users = 4;
    mp.user_qps = 2; /* each user every 0.5 s: users at 0, 0.125, 0.25, 0.375 s */
    struct multiturn m = {0};
    char err[256];
    assert_int_equal(mt_init(&m, &mp, tokenizer_heuristic(), &LLAMA3, 1, "", err), 0);
    for (size_t u = 0; u < 4; u++)
        assert_float_equal(m.schedule[u], 0.125 * (double)u, 1e-12);
    mt_free(&m);
    /* no system prompt and no history: the conversation is the questions and answers */
    mp.system_tokens = mp.history_tokens = 0;
    assert_int_equal(mt_init(&m, &mp, tokenizer_heuristic(), &LLAMA3, 1, "", err), 0);
    struct prompt p[4];
    size_t reuse[4];
    assert_int_equal(mt_round(&m, 0, NULL, p, reuse, err), 0);
    assert_in_range(p[0].est_tokens, 32, 32 + 64 + 40);
    free_round(p, 4);
    mt_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounds_grow_from_the_last),
        cmocka_unit_test(test_plain_template_no_bos_and_determinism),
        cmocka_unit_test(test_chat_rounds_are_messages),
        cmocka_unit_test(test_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
