/*
 * chattpl.c - the chat templates (chattpl.h). Each is a few constant strings around each
 * message, so rendering is appends into one buffer; the only rule beyond concatenation is
 * Llama 3's trim. Recognising a model's own template reads its tokenizer_config.json with
 * jansson and looks for the markers that only that family's template writes.
 */
#include "model/chattpl.h"

#include "util/fs.h"

#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

const struct name_entry CHAT_TEMPLATE_NAMES[] = {{"llama3", CHAT_TPL_LLAMA3},
                                                 {"llama31", CHAT_TPL_LLAMA31},
                                                 {"chatml", CHAT_TPL_CHATML},
                                                 {"plain", CHAT_TPL_PLAIN},
                                                 {NULL, 0}};

const struct name_entry CHAT_ROLE_NAMES[] = {{"system", CHAT_SYSTEM},
                                             {"user", CHAT_USER},
                                             {"assistant", CHAT_ASSISTANT},
                                             {"developer", CHAT_SYSTEM},
                                             {NULL, 0}};

const char *chat_role_name(enum chat_role r)
{
    const char *n = names_name(CHAT_ROLE_NAMES, (int)r);
    return n ? n : "user";
}

/* The code point of the UTF-8 sequence at s[0..len) (*n: its bytes), or -1 when there is none. */
static long utf8_at(const unsigned char *s, size_t len, size_t *n)
{
    if (len == 0)
        return -1;
    *n = s[0] < 0x80 ? 1 : s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
    if (*n == 0 || *n > len)
        return -1;
    if (*n == 1)
        return s[0];
    long cp = s[0] & (0x7f >> *n);
    for (size_t i = 1; i < *n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    return cp;
}

/* Python's str.isspace: Unicode White_Space and the separators \x1c-\x1f. */
static bool py_space(long cp)
{
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* Jinja's trim: white space off both ends, as Python's str.strip() (Unicode white space). */
static void trim(const char **s, size_t *len)
{
    size_t n;
    long cp;
    while ((cp = utf8_at((const unsigned char *)*s, *len, &n)) >= 0 && py_space(cp)) {
        *s += n;
        *len -= n;
    }
    while (*len) {
        /* the last sequence: back over continuation bytes to its lead */
        size_t k = *len - 1;
        while (k > 0 && *len - k < 4 && ((unsigned char)(*s)[k] & 0xc0) == 0x80)
            k--;
        cp = utf8_at((const unsigned char *)*s + k, *len - k, &n);
        if (cp < 0 || k + n != *len || !py_space(cp))
            break;
        *len = k;
    }
}

static void content(struct buf *out, const char *s, size_t len, struct chat_span *span)
{
    if (span) {
        span->off = out->len;
        span->len = len;
    }
    buf_append(out, s, len);
}

/* Llama 3.1's system block, always written: its dated preamble, then the first message's content
 * when that is a system message. Returns how many messages it took (0 or 1). */
static size_t llama31_system(const struct chat_msg *msgs, size_t n, struct buf *out,
                             struct chat_span *spans)
{
    buf_append_str(out, LLAMA3_HDR("system") LLAMA31_PREAMBLE);
    bool sys = n > 0 && msgs[0].role == CHAT_SYSTEM;
    const char *s = sys && msgs[0].text ? msgs[0].text : "";
    size_t len = sys && msgs[0].text ? msgs[0].len : 0;
    trim(&s, &len);
    content(out, s, len, sys && spans ? &spans[0] : NULL);
    buf_append_str(out, LLAMA3_EOT);
    return sys ? 1 : 0;
}

void chat_render(const struct chat_render_opts *o, const struct chat_msg *msgs, size_t n,
                 struct buf *out, struct chat_span *spans)
{
    static const char *const PLAIN_HEAD[] = {"System: ", "User: ", "Assistant:"};
    bool llama = o->tpl == CHAT_TPL_LLAMA3 || o->tpl == CHAT_TPL_LLAMA31;
    if (llama && o->bos)
        buf_append_str(out, LLAMA3_BOS);
    size_t first = o->tpl == CHAT_TPL_LLAMA31 ? llama31_system(msgs, n, out, spans) : 0;
    for (size_t i = first; i < n; i++) {
        const struct chat_msg *m = &msgs[i];
        const char *s = m->text ? m->text : "";
        size_t len = m->text ? m->len : 0;
        const char *role = chat_role_name(m->role);
        struct chat_span *sp = spans ? &spans[i] : NULL;
        switch (o->tpl) {
        case CHAT_TPL_LLAMA3:
        case CHAT_TPL_LLAMA31:
            if (!o->literal)
                trim(&s, &len);
            buf_printf(out, "<|start_header_id|>%s<|end_header_id|>\n\n", role);
            content(out, s, len, sp);
            buf_append_str(out, LLAMA3_EOT);
            break;
        case CHAT_TPL_CHATML:
            buf_printf(out, "<|im_start|>%s\n", role);
            content(out, s, len, sp);
            buf_append_str(out, "<|im_end|>\n");
            break;
        case CHAT_TPL_PLAIN:
        default:
            buf_append_str(out, PLAIN_HEAD[m->role <= CHAT_ASSISTANT ? m->role : CHAT_USER]);
            content(out, s, len, sp);
            buf_append_str(out, "\n\n");
            break;
        }
    }
    if (!o->gen_prompt)
        return;
    switch (o->tpl) {
    case CHAT_TPL_LLAMA3:
    case CHAT_TPL_LLAMA31:
        buf_append_str(out, LLAMA3_HDR("assistant"));
        break;
    case CHAT_TPL_CHATML:
        buf_append_str(out, "<|im_start|>assistant\n");
        break;
    case CHAT_TPL_PLAIN:
    default:
        buf_append_str(out, "Assistant:");
        break;
    }
}

int chat_template_of_jinja(const char *jinja)
{
    if (!jinja)
        return -1;
    if (strstr(jinja, "<|start_header_id|>") && strstr(jinja, "<|eot_id|>"))
        return strstr(jinja, "Cutting Knowledge Date") ? CHAT_TPL_LLAMA31 : CHAT_TPL_LLAMA3;
    if (strstr(jinja, "<|im_start|>") && strstr(jinja, "<|im_end|>"))
        return CHAT_TPL_CHATML;
    return -1;
}

/* The Jinja text of a tokenizer_config.json's chat_template: a string, or the "default" entry
 * of a list of {name, template}. */
static const char *config_jinja(const json_t *cfg)
{
    const json_t *ct = json_object_get(cfg, "chat_template");
    if (json_is_string(ct))
        return json_string_value(ct);
    size_t i;
    const json_t *e;
    json_array_foreach(ct, i, e)
    {
        const json_t *name = json_object_get(e, "name");
        const json_t *tpl = json_object_get(e, "template");
        if (json_is_string(name) && strcmp(json_string_value(name), "default") == 0 &&
            json_is_string(tpl))
            return json_string_value(tpl);
    }
    return NULL;
}

/* chat_template.jinja in the directory of path (newer Hugging Face snapshots keep it there). */
static int jinja_beside(const char *path, char *why, size_t cap)
{
    const char *slash = strrchr(path, '/');
    char file[4096];
    snprintf(file, sizeof file, "%.*schat_template.jinja", slash ? (int)(slash - path + 1) : 0,
             path);
    struct buf b = BUF_INIT;
    char err[256];
    if (fs_read_file(file, &b, (size_t)4 << 20, err) < 0) {
        buf_free(&b);
        snprintf(why, cap, "%s has no chat_template and there is no %s", path, file);
        return -1;
    }
    int t = chat_template_of_jinja(buf_cstr(&b));
    buf_free(&b);
    if (t < 0)
        snprintf(why, cap, "the chat template in %s is none kvbench knows (llama3, chatml)", file);
    return t;
}

int chat_template_of_config(const char *path, char *why, size_t cap)
{
    json_error_t jerr;
    /* real numbers for integers: model_max_length is often 1e30, past json_int_t */
    json_t *cfg = json_load_file(path, JSON_DECODE_INT_AS_REAL, &jerr);
    if (!cfg) {
        snprintf(why, cap, "cannot read %s: %s", path, jerr.text);
        return -1;
    }
    const char *jinja = config_jinja(cfg);
    int t = jinja ? chat_template_of_jinja(jinja) : jinja_beside(path, why, cap);
    if (jinja && t < 0)
        snprintf(why, cap, "the chat_template of %s is none kvbench knows (llama3, chatml)", path);
    json_decref(cfg);
    return t;
}

int chat_template_of_tokenizer(const char *tokenizer_json, char *why, size_t cap)
{
    if (!tokenizer_json) {
        snprintf(why, cap, "no tokenizer.json in use");
        return -1;
    }
    const char *slash = strrchr(tokenizer_json, '/');
    char cfgpath[4096];
    snprintf(cfgpath, sizeof cfgpath, "%.*stokenizer_config.json",
             slash ? (int)(slash - tokenizer_json + 1) : 0, tokenizer_json);
    int t = chat_template_of_config(cfgpath, why, cap);
    if (t >= 0)
        snprintf(why, cap, "the chat_template of %s", cfgpath);
    return t;
}

int chat_template_of_model(const char *model_id)
{
    if (!model_id)
        return -1;
    static const struct {
        const char *mark;
        enum chat_template tpl;
    } FAMILIES[] = {{"llama-3.1", CHAT_TPL_LLAMA31}, {"llama-3.2", CHAT_TPL_LLAMA31},
                    {"llama-3.3", CHAT_TPL_LLAMA31}, {"llama3.1", CHAT_TPL_LLAMA31},
                    {"llama-3", CHAT_TPL_LLAMA3},    {"llama3", CHAT_TPL_LLAMA3},
                    {"qwen", CHAT_TPL_CHATML},       {"kvbench/tiny", CHAT_TPL_PLAIN}};
    char low[256];
    size_t n = strlen(model_id);
    if (n >= sizeof low)
        n = sizeof low - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)model_id[i]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++)
        if (strstr(low, FAMILIES[i].mark))
            return (int)FAMILIES[i].tpl;
    return -1;
}
