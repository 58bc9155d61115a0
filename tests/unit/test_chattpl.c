/* Unit tests for model/chattpl: the three chat templates, their spans, Llama 3's trim, and how a
 * model's own template is recognised (the fixtures' tokenizer_config.json files). */
#include "test_common.h"

#include "model/chattpl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *render(enum chat_template t, bool bos, bool gen, bool literal,
                    const struct chat_msg *m, size_t n, struct chat_span *spans)
{
    struct chat_render_opts o = {.tpl = t, .bos = bos, .gen_prompt = gen, .literal = literal};
    struct buf b = BUF_INIT;
    chat_render(&o, m, n, &b, spans);
    assert_false(buf_failed(&b));
    return buf_detach(&b);
}

#define MSG(r, s)                                                                                  \
    {                                                                                              \
        r, s, sizeof(s) - 1                                                                        \
    }

static void test_llama3_as_its_jinja_renders(void **state)
{
    (void)state;
    struct chat_msg m[] = {MSG(CHAT_SYSTEM, "Be brief."), MSG(CHAT_USER, "  Hi there\n"),
                           MSG(CHAT_ASSISTANT, "Hello!"), MSG(CHAT_USER, "Bye")};
    struct chat_span sp[4];
    char *s = render(CHAT_TPL_LLAMA3, true, true, false, m, 4, sp);
    assert_string_equal(s, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe "
                           "brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi "
                           "there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
                           "Hello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye"
                           "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    /* the spans name each content as rendered: the user's, trimmed */
    assert_int_equal(sp[1].len, strlen("Hi there"));
    assert_memory_equal(s + sp[1].off, "Hi there", sp[1].len);
    assert_memory_equal(s + sp[3].off, "Bye", 3);
    free(s);
    /* literal: kvbench's own completions prompt keeps the content as it is */
    s = render(CHAT_TPL_LLAMA3, false, true, true, &m[1], 1, NULL);
    assert_string_equal(s, "<|start_header_id|>user<|end_header_id|>\n\n  Hi there\n<|eot_id|>"
                           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(s);
}

/* Llama 3.1's template always opens with its dated system block, the system message's content
 * after the preamble; Jinja's trim is Python's str.strip, Unicode white space included. */
static void test_llama31_and_unicode_trim(void **state)
{
    (void)state;
    struct chat_msg m[] = {MSG(CHAT_SYSTEM, "Be brief.\xc2\xa0"),
                           MSG(CHAT_USER, "\xe3\x80\x80Hi\x1f")};
    struct chat_span sp[2];
    char *s = render(CHAT_TPL_LLAMA31, true, true, false, m, 2, sp);
    assert_string_equal(s, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                           "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
                           "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi"
                           "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    assert_memory_equal(s + sp[0].off, "Be brief.", sp[0].len);
    assert_int_equal(sp[0].len, 9);
    assert_memory_equal(s + sp[1].off, "Hi", 2);
    free(s);
    /* no system message: the block holds the preamble alone */
    s = render(CHAT_TPL_LLAMA31, false, false, false, &m[1], 1, NULL);
    assert_string_equal(s, "<|start_header_id|>system<|end_header_id|>\n\n"
                           "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
                           "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
    free(s);
    /* a broken sequence or a non-space character stops the trim; all white space leaves "" */
    struct chat_msg odd[] = {MSG(CHAT_USER, "\xa0x\xc2"), MSG(CHAT_USER, " \xe2\x80\xa8\t")};
    s = render(CHAT_TPL_LLAMA3, false, false, false, odd, 2, NULL);
    assert_string_equal(s, "<|start_header_id|>user<|end_header_id|>\n\n\xa0x\xc2<|eot_id|>"
                           "<|start_header_id|>user<|end_header_id|>\n\n<|eot_id|>");
    free(s);
    assert_int_equal(chat_template_of_jinja("{{'<|start_header_id|>'}} Cutting Knowledge Date: "
                                            "{{'<|eot_id|>'}}"),
                     CHAT_TPL_LLAMA31);
    assert_int_equal(names_value(CHAT_TEMPLATE_NAMES, "llama31"), CHAT_TPL_LLAMA31);
}

static void test_chatml_and_plain(void **state)
{
    (void)state;
    struct chat_msg m[] = {MSG(CHAT_SYSTEM, "S"), MSG(CHAT_USER, "U1"), MSG(CHAT_ASSISTANT, " A1"),
                           MSG(CHAT_USER, "U2")};
    char *s = render(CHAT_TPL_CHATML, true, true, false, m, 4, NULL); /* bos: none in ChatML */
    assert_string_equal(s, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n"
                           "<|im_start|>assistant\n A1<|im_end|>\n<|im_start|>user\nU2<|im_end|>"
                           "\n<|im_start|>assistant\n");
    free(s);
    s = render(CHAT_TPL_PLAIN, false, true, false, m, 4, NULL);
    assert_string_equal(s, "System: S\n\nUser: U1\n\nAssistant: A1\n\nUser: U2\n\nAssistant:");
    free(s);
}

/* A conversation that goes on is rendered as the text before it and more: what a prefix cache
 * exists for. Without the generation prompt, the rendering of the turns so far is a prefix of the
 * next round's prompt. */
static void test_a_growing_conversation_keeps_its_prefix(void **state)
{
    (void)state;
    struct chat_msg m[] = {MSG(CHAT_SYSTEM, "S"), MSG(CHAT_USER, "U1"), MSG(CHAT_ASSISTANT, "A1"),
                           MSG(CHAT_USER, "U2")};
    for (int t = 0; t < 4; t++) {
        char *r1 = render((enum chat_template)t, true, true, false, m, 2, NULL);
        char *done = render((enum chat_template)t, true, false, false, m, 3, NULL);
        char *r2 = render((enum chat_template)t, true, true, false, m, 4, NULL);
        assert_memory_equal(r2, r1, strlen(r1));
        assert_memory_equal(r2, done, strlen(done));
        assert_true(strlen(done) > strlen(r1));
        free(r1);
        free(done);
        free(r2);
    }
}

static void test_names_and_roles(void **state)
{
    (void)state;
    assert_int_equal(names_value(CHAT_TEMPLATE_NAMES, "llama3"), CHAT_TPL_LLAMA3);
    assert_int_equal(names_value(CHAT_TEMPLATE_NAMES, "chatml"), CHAT_TPL_CHATML);
    assert_int_equal(names_value(CHAT_TEMPLATE_NAMES, "plain"), CHAT_TPL_PLAIN);
    assert_int_equal(names_value(CHAT_TEMPLATE_NAMES, "jinja"), -1);
    assert_int_equal(names_value(CHAT_ROLE_NAMES, "developer"), CHAT_SYSTEM);
    assert_int_equal(names_value(CHAT_ROLE_NAMES, "tool"), -1);
    assert_string_equal(chat_role_name(CHAT_ASSISTANT), "assistant");
    assert_string_equal(chat_role_name(CHAT_SYSTEM), "system");
}

static void test_model_families(void **state)
{
    (void)state;
    assert_int_equal(chat_template_of_model("nvidia/Llama-3.1-8B-Instruct-FP8"), CHAT_TPL_LLAMA31);
    assert_int_equal(chat_template_of_model("nvidia/Llama-3.3-70B-Instruct-FP8"), CHAT_TPL_LLAMA31);
    assert_int_equal(chat_template_of_model("meta-llama/Meta-Llama-3-8B-Instruct"),
                     CHAT_TPL_LLAMA3);
    assert_int_equal(chat_template_of_model("Qwen/Qwen3-8B"), CHAT_TPL_CHATML);
    assert_int_equal(chat_template_of_model("kvbench/tiny"), CHAT_TPL_PLAIN);
    assert_int_equal(chat_template_of_model("mistralai/Mistral-7B"), -1);
    assert_int_equal(chat_template_of_model(NULL), -1);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_configs_are_recognised_by_their_markers(void **state)
{
    (void)state;
    char path[4096], why[512];
    test_fixture("tokenizers/llama3/tokenizer_config.json", path, sizeof path);
    assert_int_equal(chat_template_of_config(path, why, sizeof why), CHAT_TPL_LLAMA3);
    test_fixture("tokenizers/qwen3/tokenizer_config.json", path, sizeof path);
    assert_int_equal(chat_template_of_config(path, why, sizeof why), CHAT_TPL_CHATML);
    /* beside a tokenizer.json: the config in its directory, named in why */
    test_fixture("tokenizers/qwen3/tokenizer.json.gz", path, sizeof path);
    assert_int_equal(chat_template_of_tokenizer(path, why, sizeof why), CHAT_TPL_CHATML);
    assert_non_null(strstr(why, "qwen3/tokenizer_config.json"));
    assert_int_equal(chat_template_of_tokenizer(NULL, why, sizeof why), -1);
    assert_string_equal(why, "no tokenizer.json in use");

    char dir[] = "/tmp/kvb-chattpl-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cfg[256], jinja[256];
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    snprintf(jinja, sizeof jinja, "%s/chat_template.jinja", dir);
    /* a list of named templates: the default one */
    write_file(cfg, "{\"chat_template\":[{\"name\":\"tool_use\",\"template\":\"x\"},"
                    "{\"name\":\"default\",\"template\":\"<|im_start|>{{m}}<|im_end|>\"}]}");
    assert_int_equal(chat_template_of_config(cfg, why, sizeof why), CHAT_TPL_CHATML);
    /* none in the file: chat_template.jinja beside it, else an error that says so */
    write_file(cfg, "{\"bos_token\":\"<s>\"}");
    assert_int_equal(chat_template_of_config(cfg, why, sizeof why), -1);
    assert_non_null(strstr(why, "no chat_template"));
    write_file(jinja, "{{'<|start_header_id|>'}}{{'<|eot_id|>'}}");
    assert_int_equal(chat_template_of_config(cfg, why, sizeof why), CHAT_TPL_LLAMA3);
    /* a template of another family: not guessed */
    write_file(cfg, "{\"chat_template\":\"[INST] {{ m }} [/INST]\"}");
    assert_int_equal(chat_template_of_config(cfg, why, sizeof why), -1);
    assert_non_null(strstr(why, "none kvbench knows"));
    /* not JSON, not there */
    write_file(cfg, "{");
    assert_int_equal(chat_template_of_config(cfg, why, sizeof why), -1);
    assert_non_null(strstr(why, "cannot read"));
    unlink(cfg);
    unlink(jinja);
    assert_int_equal(chat_template_of_config(cfg, why, sizeof why), -1);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3_as_its_jinja_renders),
        cmocka_unit_test(test_llama31_and_unicode_trim),
        cmocka_unit_test(test_chatml_and_plain),
        cmocka_unit_test(test_a_growing_conversation_keeps_its_prefix),
        cmocka_unit_test(test_names_and_roles),
        cmocka_unit_test(test_model_families),
        cmocka_unit_test(test_configs_are_recognised_by_their_markers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
