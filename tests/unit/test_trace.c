/*
 * Unit tests for bench/trace: reading a Mooncake trace (time order, checks), the reusable tokens
 * (leading blocks of the same prefix only), and prompts whose blocks are byte-identical for equal
 * ids, exactly the block's tokens long, a shorter last block a prefix of the full one, different
 * ids sharing nothing, another salt giving other bytes; whole prompts of exactly the trace's
 * length by an exact tokenizer too (which joins tokens across blocks); and warmup prompts of the
 * trace's lengths that share nothing with it.
 */
#include "test_common.h"

#include "scenario/trace.h"
#include "util/err.h"

/* The scratch directories made here, removed when the group ends (pass or fail). */
static char *made[64];
static size_t n_made;

static char *scratch(void)
{
    char *dir = test_tmpdir();
    assert_non_null(dir);
    if (n_made < sizeof made / sizeof made[0])
        made[n_made++] = strdup(dir);
    return dir;
}

static int remove_scratch(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_made; i++) {
        test_rmtree(made[i]);
        free(made[i]);
    }
    n_made = 0;
    return 0;
}

static char *write_trace(const char *text)
{
    char *dir = scratch();
    static char path[256];
    snprintf(path, sizeof path, "%s/t.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(dir);
    return path;
}

static void test_load_and_reusable(void **state)
{
    (void)state;
    const char *path = write_trace(
        "{\"timestamp\": 50, \"input_length\": 20, \"output_length\": 2, \"hash_ids\": [7, 8]}\n"
        "\n"
        "{\"timestamp\": 10, \"input_length\": 30, \"output_length\": 5, \"hash_ids\": [7, 8, 9]}\n"
        "{\"timestamp\": 50, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [8]}\n"
        "{\"timestamp\": 90, \"input_length\": 25, \"output_length\": 1, \"hash_ids\": [7, 8, "
        "9]}\n");
    struct trace t;
    char err[256];
    assert_int_equal(trace_load(path, 10, &t, err), 0);
    assert_int_equal(t.n, 4);
    /* time order from the first request; equal times keep the file's order */
    assert_float_equal(t.r[0].t_ms, 0, 0);
    assert_int_equal(t.r[0].input_len, 30);
    assert_int_equal(t.r[1].input_len, 20);
    assert_int_equal(t.r[2].input_len, 10);
    assert_float_equal(t.r[3].t_ms, 80, 0);
    assert_int_equal(t.max_input, 30);
    /* 0; [7 8] seen: 20; [8] first is another prefix: 0; [7 8] + 9 of 5 tokens, seen with 10: 25 */
    assert_int_equal(trace_reusable(&t), 45);
    assert_int_equal(t.r[1].reusable, 20);
    assert_int_equal(t.r[2].reusable, 0);
    assert_int_equal(t.r[3].reusable, 25);
    trace_free(&t);

    path = write_trace("{\"timestamp\": 0, \"input_length\": 21, \"output_length\": 1, "
                       "\"hash_ids\": [1, 2]}\n");
    assert_int_equal(trace_load(path, 10, &t, err), -1);
    assert_non_null(strstr(err, ":1: hash_ids has 2 ids, but input_length 21 needs 3 blocks"));
    path = write_trace("[1]\n");
    assert_int_equal(trace_load(path, 10, &t, err), -1);
    assert_non_null(strstr(err, ":1: not a JSON object"));
    path = write_trace("{\"timestamp\": 0, \"input_length\": 2.5, \"output_length\": 1, "
                       "\"hash_ids\": [1]}\n");
    assert_int_equal(trace_load(path, 10, &t, err), -1);
    assert_non_null(strstr(err, "input_length: expected a token count"));
}

static void test_prompts(void **state)
{
    (void)state;
    const char *path = write_trace(
        "{\"timestamp\": 0, \"input_length\": 128, \"output_length\": 9, \"hash_ids\": [1, 2]}\n"
        "{\"timestamp\": 1, \"input_length\": 100, \"output_length\": 9, \"hash_ids\": [1, 2]}\n"
        "{\"timestamp\": 2, \"input_length\": 128, \"output_length\": 9, \"hash_ids\": [1, 3]}\n"
        "{\"timestamp\": 3, \"input_length\": 64, \"output_length\": 9, \"hash_ids\": [4]}\n");
    struct trace t;
    char err[256];
    assert_int_equal(trace_load(path, 64, &t, err), 0);
    const struct tokenizer *tok = tokenizer_heuristic();
    struct prompt p[4], q;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(trace_prompt(&t, tok, 5, "salt", i, &p[i]), 0);
        /* exactly the trace's length, with its own max_tokens */
        assert_int_equal(p[i].est_tokens, t.r[i].input_len);
        assert_int_equal(p[i].max_tokens, 9);
    }
    assert_string_equal(p[2].id, "trace-00002");
    /* block 1 is the same bytes in 0, 1 and 2; request 1's block 2 (36 tokens) is a prefix of
     * request 0's (64) */
    size_t b1 = 0;
    while (b1 < p[0].len && p[0].text[b1] == p[2].text[b1])
        b1++;
    assert_true(b1 > 0 && b1 < p[0].len);
    assert_int_equal(tokenizer_count(tok, p[0].text, b1) >= 63, true);
    assert_memory_equal(p[0].text, p[1].text, p[1].len);
    assert_true(p[1].len < p[0].len);
    /* a block of another id shares no more than its heading's first tokens with block 1: far
     * less than an engine's block */
    size_t common = 0;
    while (common < p[3].len && p[3].text[common] == p[0].text[common])
        common++;
    assert_true(tokenizer_count(tok, p[0].text, common) <= 6);
    /* another salt: other bytes */
    assert_int_equal(trace_prompt(&t, tok, 5, "other", 0, &q), 0);
    assert_string_not_equal(q.sha256, p[0].sha256);
    free(q.text);
    for (size_t i = 0; i < 4; i++)
        free(p[i].text);
    trace_free(&t);
}

/* The Llama 3 tokenizer of the fixtures, decompressed into a scratch directory. */
static struct tokenizer *llama3(void)
{
    char gz[512], cmd[1400], err[ERR_LEN];
    char *dir = test_tmpdir();
    assert_non_null(dir);
    test_fixture("tokenizers/llama3/tokenizer.json.gz", gz, sizeof gz);
    snprintf(cmd, sizeof cmd, "gzip -dc '%s' > '%s/tokenizer.json'", gz, dir);
    assert_int_equal(system(cmd), 0);
    struct tokenizer *tok = tokenizer_load(dir, err);
    assert_non_null(tok);
    snprintf(cmd, sizeof cmd, "%s/tokenizer.json", dir);
    unlink(cmd);
    rmdir(dir);
    free(dir);
    return tok;
}

static void test_prompts_exact_across_blocks(void **state)
{
    (void)state;
    /* Requests of three blocks of 64 tokens, none shared, the last block 8 to 64 tokens long.
     * Every block starts with a newline, which Llama 3 joins with a block ending in "." or a
     * newline: a prompt of exact blocks was then a token short. */
    char *dir = scratch();
    char path[300];
    snprintf(path, sizeof path, "%s/blocks.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 57; i++)
        fprintf(f,
                "{\"timestamp\": %d, \"input_length\": %d, \"output_length\": 4, "
                "\"hash_ids\": [%d, %d, %d]}\n",
                i, 136 + i, 3 * i, 3 * i + 1, 3 * i + 2);
    fclose(f);
    free(dir);
    struct trace t;
    char err[256];
    struct tokenizer *exact = llama3();
    const struct tokenizer *toks[] = {tokenizer_heuristic(), exact};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(trace_load(path, 64, &t, err), 0);
        size_t off = 0;
        for (size_t i = 0; i < t.n; i++) {
            struct prompt p;
            assert_int_equal(trace_prompt(&t, toks[k], 5, "salt", i, &p), 0);
            size_t n = tokenizer_count(toks[k], p.text, p.len);
            assert_int_equal(p.est_tokens, n);
            if (n != t.r[i].input_len) {
                print_message("%s: request %zu: %zu tokens, the trace says %zu\n", toks[k]->kind, i,
                              n, t.r[i].input_len);
                off++;
            }
            free(p.text);
        }
        assert_int_equal(off, 0);
        if (k == 0)
            trace_free(&t);
    }
    /* another tokenizer on the same trace makes its own blocks (none kept from the other) */
    struct prompt a, b;
    struct trace t2;
    assert_int_equal(trace_load(path, 64, &t2, err), 0);
    assert_int_equal(trace_prompt(&t, toks[0], 5, "salt", 56, &a), 0);
    assert_int_equal(trace_prompt(&t2, toks[0], 5, "salt", 56, &b), 0);
    assert_string_equal(a.sha256, b.sha256);
    free(a.text);
    free(b.text);
    trace_free(&t2);
    /* the full blocks are still the same bytes wherever they come */
    assert_int_equal(trace_prompt(&t, exact, 5, "salt", 56, &a), 0);
    trace_free(&t);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"timestamp\": 0, \"input_length\": 140, \"output_length\": 4, "
          "\"hash_ids\": [168, 169, 900]}\n",
          f);
    fclose(f);
    assert_int_equal(trace_load(path, 64, &t, err), 0);
    assert_int_equal(trace_prompt(&t, exact, 5, "salt", 0, &b), 0);
    size_t same = 0;
    while (same < a.len && same < b.len && a.text[same] == b.text[same])
        same++;
    assert_true(tokenizer_count(exact, a.text, same) >= 128);
    free(a.text);
    free(b.text);
    trace_free(&t);
    tokenizer_free(exact);
}

static void test_warmup_prompts(void **state)
{
    (void)state;
    const char *path = write_trace(
        "{\"timestamp\": 0, \"input_length\": 100, \"output_length\": 7, \"hash_ids\": [1, 2]}\n"
        "{\"timestamp\": 5, \"input_length\": 30, \"output_length\": 3, \"hash_ids\": [1]}\n");
    struct trace t;
    char err[256];
    assert_int_equal(trace_load(path, 64, &t, err), 0);
    const struct tokenizer *tok = tokenizer_heuristic();
    struct prompt w[3], p;
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(trace_warmup_prompt(&t, tok, 9, "salt", k, &w[k]), 0);
        /* the lengths of request k % 2 */
        assert_int_equal(w[k].est_tokens, t.r[k % 2].input_len);
        assert_int_equal(w[k].max_tokens, t.r[k % 2].output_len);
    }
    assert_string_equal(w[2].id, "warmup-00002");
    assert_string_equal(w[0].set, "trace");
    /* none of the trace's blocks, nor each other's: at most a heading's first tokens in common */
    assert_int_equal(trace_prompt(&t, tok, 9, "salt", 0, &p), 0);
    const struct prompt *pairs[][2] = {{&w[0], &p}, {&w[1], &p}, {&w[0], &w[2]}};
    for (size_t k = 0; k < 3; k++) {
        const struct prompt *x = pairs[k][0], *y = pairs[k][1];
        size_t common = 0;
        while (common < x->len && common < y->len && x->text[common] == y->text[common])
            common++;
        assert_true(tokenizer_count(tok, x->text, common) <= 6);
    }
    free(p.text);
    for (size_t k = 0; k < 3; k++)
        free(w[k].text);
    trace_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_reusable),
        cmocka_unit_test(test_prompts),
        cmocka_unit_test(test_prompts_exact_across_blocks),
        cmocka_unit_test(test_warmup_prompts),
    };
    return cmocka_run_group_tests(tests, NULL, remove_scratch);
}
