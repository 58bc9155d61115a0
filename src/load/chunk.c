/*
 * chunk.c - reading completion chunks: a one-pass scanner for the hot path, jansson for the rest.
 *
 * The scanner walks the whole JSON text (so it rejects what is not JSON) but keeps only the spans
 * of the strings and the integers that struct chunk needs; the chosen text is decoded into the
 * caller's buffer at the end. Duplicate keys behave as in jansson: the last one wins. Whenever
 * the scanner is unsure it declines, and jansson reads the bytes; it never accepts what jansson
 * would reject.
 *
 * Reasoning (a chat model's thinking, streamed beside the answer) is read as its own string: both
 * readers take the first string of delta.reasoning_content, delta.reasoning,
 * message.reasoning_content, message.reasoning, never two of them (servers that send both names
 * send the same text under each).
 */
#include "load/chunk.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MAX_DEPTH 32

static void chunk_reset(struct chunk *c)
{
    memset(c, 0, sizeof *c);
    c->usage_prompt = c->usage_completion = c->cached = -1;
    c->timings_prompt_n = c->timings_cache_n = c->meta_cached = -1;
}

static void copy_str(char *dst, size_t cap, const char *s, size_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* ------------------------------------------------------------ jansson */

static long long int_or(const json_t *obj, const char *key, long long keep)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : keep;
}

/* A delta's or message's reasoning string: reasoning_content, else reasoning; NULL: none. */
static const json_t *reasoning_of(const json_t *holder)
{
    const json_t *r = json_object_get(holder, "reasoning_content");
    if (json_is_string(r))
        return r;
    r = json_object_get(holder, "reasoning");
    return json_is_string(r) ? r : NULL;
}

/* Append a string's value to b. Returns 0 or -1 (out of memory). */
static int take_string(const json_t *s, struct buf *b, size_t *len)
{
    *len = json_string_length(s);
    buf_append(b, json_string_value(s), *len);
    return buf_failed(b) ? -1 : 0;
}

int chunk_read_jansson(const char *data, size_t len, struct chunk *c, struct buf *text,
                       struct buf *reasoning, unsigned want)
{
    chunk_reset(c);
    json_error_t jerr;
    json_t *j = json_loadb(data, len, 0, &jerr);
    if (!j) {
        snprintf(c->malformed, sizeof c->malformed, "%s", jerr.text);
        return -1;
    }
    const json_t *e = json_object_get(j, "error");
    const char *em = NULL;
    if (json_is_string(e)) {
        em = json_string_value(e);
    } else if (json_is_object(e)) {
        const json_t *m = json_object_get(e, "message");
        em = json_is_string(m) ? json_string_value(m) : "error object without a message";
    } else {
        const json_t *o = json_object_get(j, "object");
        if (json_is_string(o) && strcmp(json_string_value(o), "error") == 0) {
            const json_t *m = json_object_get(j, "message");
            em = json_is_string(m) ? json_string_value(m) : "error";
        }
    }
    if (em) {
        c->has_error = true;
        copy_str(c->error, sizeof c->error, em, strlen(em));
    }
    const json_t *id = json_object_get(j, "id");
    if (json_is_string(id) && (want & CHUNK_ID)) {
        c->has_id = true;
        copy_str(c->id, sizeof c->id, json_string_value(id), json_string_length(id));
    }
    const json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    const json_t *fin = json_object_get(ch, "finish_reason");
    if (json_is_string(fin)) {
        c->has_finish = true;
        copy_str(c->finish, sizeof c->finish, json_string_value(fin), json_string_length(fin));
    }
    const json_t *t = json_object_get(ch, "text");
    if (!t)
        t = json_object_get(json_object_get(ch, "delta"), "content");
    if (!t)
        t = json_object_get(json_object_get(ch, "message"), "content");
    if (json_is_string(t)) {
        c->has_text = true;
        if (take_string(t, text, &c->text_len) < 0) {
            json_decref(j);
            return -1;
        }
    }
    const json_t *r = reasoning_of(json_object_get(ch, "delta"));
    if (!r)
        r = reasoning_of(json_object_get(ch, "message"));
    if (r) {
        c->has_reasoning = true;
        if (take_string(r, reasoning, &c->reasoning_len) < 0) {
            json_decref(j);
            return -1;
        }
    }
    const json_t *u = json_object_get(j, "usage");
    if (json_is_object(u)) {
        c->usage_prompt = int_or(u, "prompt_tokens", -1);
        c->usage_completion = int_or(u, "completion_tokens", -1);
        c->cached = int_or(json_object_get(u, "prompt_tokens_details"), "cached_tokens", -1);
    }
    const json_t *tm = json_object_get(j, "timings");
    c->timings_prompt_n = int_or(tm, "prompt_n", -1);
    c->timings_cache_n = int_or(tm, "cache_n", -1);
    c->meta_cached = int_or(json_object_get(j, "meta_info"), "cached_tokens", -1);
    json_decref(j);
    return 0;
}

/* ------------------------------------------------------------ scanner */

struct span {
    const char *s; /* inside the quotes; NULL: absent */
    size_t len;
    bool esc; /* contains escapes */
};

/* What a choice's delta or message holds: its content and its reasoning strings. */
struct holder {
    struct span content, reasoning_content, reasoning;
    bool content_key; /* present with any type */
};

struct scan {
    const char *p, *end;
    /* what the walk found (last duplicate wins) */
    struct span id, finish, text, err_str, err_msg, object, message;
    struct holder delta, msg;
    bool text_key; /* present with any type */
    bool err_is_obj;
    long long up, uc, cached, tp, tc, mc;
};

static inline void ws(struct scan *s)
{
    if (s->p < s->end && (unsigned char)*s->p > ' ')
        return; /* compact JSON: the common case */
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v |= (unsigned)(ch - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (as jansson checks it: no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Bytes a string scan must stop at. */
static const unsigned char SPECIAL[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* A string at s->p (the opening quote). Fills sp when non-NULL. Returns 0 or -1 (decline). */
static int str_at(const char **at, const char *end, struct span *sp)
{
    const char *p = *at; /* a local: the scan loop keeps it in a register */
    if (p >= end || *p != '"')
        return -1;
    const char *start = ++p;
    bool esc = false;
    for (;;) {
        /* plain bytes: anything but '"', '\\', a control byte or a non-ASCII one */
        while (p < end && !SPECIAL[(unsigned char)*p])
            p++;
        if (p >= end)
            return -1;
        unsigned char ch = (unsigned char)*p;
        if (ch == '"')
            break;
        if (ch < 0x20)
            return -1;
        if (ch == '\\') {
            esc = true;
            if (end - p < 2)
                return -1;
            char e = p[1];
            if (e == 'u') {
                unsigned u;
                if (end - p < 6 || hex4(p + 2, &u) < 0 || u == 0)
                    return -1;
                p += 6;
                if (u >= 0xdc00 && u <= 0xdfff)
                    return -1;
                if (u >= 0xd800 && u <= 0xdbff) {
                    unsigned lo;
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) < 0 ||
                        lo < 0xdc00 || lo > 0xdfff)
                        return -1;
                    p += 6;
                }
                continue;
            }
            if (e == '\0' || !strchr("\"\\/bfnrt", e))
                return -1;
            p += 2;
            continue;
        }
        size_t n = utf8_seq((const unsigned char *)p, (const unsigned char *)end);
        if (!n)
            return -1;
        p += n;
    }
    if (sp) {
        sp->s = start;
        sp->len = (size_t)(p - start);
        sp->esc = esc;
    }
    *at = p + 1;
    return 0;
}

static int str(struct scan *s, struct span *sp)
{
    return str_at(&s->p, s->end, sp);
}

static void put_utf8(struct buf *b, unsigned cp)
{
    char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        o[0] = (char)(0xf0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_append(b, o, n);
}

/* Append the decoded value of a validated span. Returns 0 or -1 (out of memory). */
static int decode(const struct span *sp, struct buf *out)
{
    if (!sp->esc) {
        buf_append(out, sp->s, sp->len);
        return buf_failed(out) ? -1 : 0;
    }
    if (buf_reserve(out, sp->len) < 0)
        return -1; /* decoding never grows the text */
    const char *p = sp->s, *end = sp->s + sp->len;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        if (!bs) {
            buf_append(out, p, (size_t)(end - p));
            return buf_failed(out) ? -1 : 0;
        }
        buf_append(out, p, (size_t)(bs - p));
        char e = bs[1];
        p = bs + 2;
        if (e == 'u') {
            unsigned u = 0, lo = 0;
            hex4(p, &u);
            p += 4;
            if (u >= 0xd800 && u <= 0xdbff) {
                hex4(p + 2, &lo);
                p += 6;
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            }
            put_utf8(out, u);
            continue;
        }
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        buf_append_char(out, to[strchr(from, e) - from]);
    }
    return buf_failed(out) ? -1 : 0;
}

/* A decoded span into a fixed char array (bounded, NUL-terminated). Escaped ids and messages
 * are rare: they are decoded through a heap buffer. */
static void span_to(const struct span *sp, char *dst, size_t cap)
{
    if (!sp->esc) {
        copy_str(dst, cap, sp->s, sp->len);
        return;
    }
    struct buf tmp = BUF_INIT;
    if (decode(sp, &tmp) == 0)
        copy_str(dst, cap, buf_cstr(&tmp), tmp.len);
    else
        dst[0] = '\0';
    buf_free(&tmp);
}

/* An integer or a real; *iv set (and *is_int true) for an integer that fits. */
static int num(struct scan *s, long long *iv, bool *is_int)
{
    const char *p = s->p;
    bool neg = false;
    if (p < s->end && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= s->end || *p < '0' || *p > '9')
        return -1;
    const char *digits = p;
    if (*p == '0')
        p++;
    else
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    size_t nd = (size_t)(p - digits);
    bool real = false;
    if (p < s->end && *p == '.') {
        real = true;
        p++;
        const char *f = p;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
        if (p == f)
            return -1;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        if (p < s->end && (*p == '+' || *p == '-'))
            p++;
        const char *x = p;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
        if (p == x || p - x > 2) /* no exponent, or one big enough to overflow: jansson decides */
            return -1;
    }
    if (nd > 18 || (size_t)(p - s->p) > 64)
        return -1; /* may not fit: jansson decides */
    *is_int = !real;
    if (!real) {
        long long v = 0;
        for (const char *d = digits; d < digits + nd; d++)
            v = v * 10 + (*d - '0');
        *iv = neg ? -v : v;
    }
    s->p = p;
    return 0;
}

static int lit(struct scan *s, const char *w, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int skip(struct scan *s, int depth);

/* After a member or an element: 1 when a ',' follows (another comes), 0 at the closing bracket,
 * -1 for anything else. */
static int next_or_close(struct scan *s, char close)
{
    ws(s);
    if (s->p >= s->end)
        return -1;
    char ch = *s->p++;
    return ch == ',' ? 1 : ch == close ? 0 : -1;
}

/* Walk an array; elem (NULL: skip) consumes each element and gets its index. */
typedef int (*elem_fn)(struct scan *s, size_t index, void *ctx, int depth);

static int array(struct scan *s, elem_fn elem, void *ctx, int depth)
{
    if (depth > SCAN_MAX_DEPTH || s->p >= s->end || *s->p != '[')
        return -1;
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return 0;
    }
    for (size_t i = 0;; i++) {
        ws(s);
        if ((elem ? elem(s, i, ctx, depth + 1) : skip(s, depth + 1)) < 0)
            return -1;
        int more = next_or_close(s, ']');
        if (more <= 0)
            return more;
    }
}

/* Walk an object; for each key call fn (which must consume the value). */
typedef int (*member_fn)(struct scan *s, const struct span *key, void *ctx, int depth);

static int object(struct scan *s, member_fn fn, void *ctx, int depth)
{
    if (depth > SCAN_MAX_DEPTH || s->p >= s->end || *s->p != '{')
        return -1;
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        struct span key = {0};
        ws(s);
        if (str(s, &key) < 0 || key.esc)
            return -1; /* escaped keys: let jansson compare them */
        ws(s);
        if (s->p >= s->end || *s->p != ':')
            return -1;
        s->p++;
        ws(s);
        if ((fn ? fn(s, &key, ctx, depth + 1) : skip(s, depth + 1)) < 0)
            return -1;
        int more = next_or_close(s, '}');
        if (more <= 0)
            return more;
    }
}

static int skip(struct scan *s, int depth)
{
    if (depth > SCAN_MAX_DEPTH || s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{':
        return object(s, NULL, NULL, depth);
    case '[':
        return array(s, NULL, NULL, depth);
    case '"':
        return str(s, NULL);
    case 't':
        return lit(s, "true", 4);
    case 'f':
        return lit(s, "false", 5);
    case 'n':
        return lit(s, "null", 4);
    default: {
        long long iv;
        bool is_int;
        return num(s, &iv, &is_int);
    }
    }
}

static bool key_is(const struct span *k, const char *name)
{
    size_t n = strlen(name);
    return k->len == n && memcmp(k->s, name, n) == 0;
}

/* A string value into sp, or any other value skipped (sp cleared). */
static int str_or_skip(struct scan *s, struct span *sp, int depth)
{
    memset(sp, 0, sizeof *sp);
    if (s->p < s->end && *s->p == '"')
        return str(s, sp);
    return skip(s, depth);
}

/* An integer value into *out, any other value skipped (*out = -1). */
static int int_or_skip(struct scan *s, long long *out, int depth)
{
    *out = -1;
    if (s->p < s->end && (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))) {
        long long v = 0;
        bool is_int = false;
        if (num(s, &v, &is_int) < 0)
            return -1;
        if (is_int)
            *out = v;
        return 0;
    }
    return skip(s, depth);
}

static int holder_member(struct scan *s, const struct span *k, void *ctx, int depth)
{
    struct holder *h = ctx;
    if (key_is(k, "content")) {
        h->content_key = true;
        return str_or_skip(s, &h->content, depth);
    }
    if (key_is(k, "reasoning_content"))
        return str_or_skip(s, &h->reasoning_content, depth);
    if (key_is(k, "reasoning"))
        return str_or_skip(s, &h->reasoning, depth);
    return skip(s, depth);
}

/* delta / message: an object whose content and reasoning we keep; another type means neither. */
static int content_holder(struct scan *s, struct holder *h, int depth)
{
    memset(h, 0, sizeof *h);
    if (s->p < s->end && *s->p == '{')
        return object(s, holder_member, h, depth);
    return skip(s, depth);
}

/* A holder's reasoning string (reasoning_content, else reasoning), NULL: none. */
static const struct span *holder_reasoning(const struct holder *h)
{
    if (h->reasoning_content.s)
        return &h->reasoning_content;
    return h->reasoning.s ? &h->reasoning : NULL;
}

static int choice_member(struct scan *s, const struct span *k, void *ctx, int depth)
{
    struct scan *sc = ctx;
    if (key_is(k, "text")) {
        sc->text_key = true;
        return str_or_skip(s, &sc->text, depth);
    }
    if (key_is(k, "finish_reason"))
        return str_or_skip(s, &sc->finish, depth);
    if (key_is(k, "delta"))
        return content_holder(s, &sc->delta, depth);
    if (key_is(k, "message"))
        return content_holder(s, &sc->msg, depth);
    return skip(s, depth);
}

static void clear_choice(struct scan *sc)
{
    memset(&sc->text, 0, sizeof sc->text);
    memset(&sc->finish, 0, sizeof sc->finish);
    memset(&sc->delta, 0, sizeof sc->delta);
    memset(&sc->msg, 0, sizeof sc->msg);
    sc->text_key = false;
}

/* One element of choices: element 0 is read when it is an object, the rest skipped. */
static int choice_elem(struct scan *s, size_t index, void *ctx, int depth)
{
    if (index == 0 && s->p < s->end && *s->p == '{')
        return object(s, choice_member, ctx, depth);
    return skip(s, depth);
}

/* choices: only element 0 counts, and only when it is an object. */
static int choices(struct scan *s, struct scan *sc, int depth)
{
    clear_choice(sc);
    if (s->p >= s->end || *s->p != '[')
        return skip(s, depth);
    return array(s, choice_elem, sc, depth);
}

static int details_member(struct scan *s, const struct span *k, void *ctx, int depth)
{
    struct scan *sc = ctx;
    if (key_is(k, "cached_tokens"))
        return int_or_skip(s, &sc->cached, depth);
    return skip(s, depth);
}

static int usage_member(struct scan *s, const struct span *k, void *ctx, int depth)
{
    struct scan *sc = ctx;
    if (key_is(k, "prompt_tokens"))
        return int_or_skip(s, &sc->up, depth);
    if (key_is(k, "completion_tokens"))
        return int_or_skip(s, &sc->uc, depth);
    if (key_is(k, "prompt_tokens_details")) {
        sc->cached = -1;
        if (s->p < s->end && *s->p == '{')
            return object(s, details_member, sc, depth);
        return skip(s, depth);
    }
    return skip(s, depth);
}

static int timings_member(struct scan *s, const struct span *k, void *ctx, int depth)
{
    struct scan *sc = ctx;
    if (key_is(k, "prompt_n"))
        return int_or_skip(s, &sc->tp, depth);
    if (key_is(k, "cache_n"))
        return int_or_skip(s, &sc->tc, depth);
    return skip(s, depth);
}

static int meta_member(struct scan *s, const struct span *k, void *ctx, int depth)
{
    struct scan *sc = ctx;
    if (key_is(k, "cached_tokens"))
        return int_or_skip(s, &sc->mc, depth);
    return skip(s, depth);
}

static int error_member(struct scan *s, const struct span *k, void *ctx, int depth)
{
    struct scan *sc = ctx;
    if (key_is(k, "message"))
        return str_or_skip(s, &sc->err_msg, depth);
    return skip(s, depth);
}

static int top_member(struct scan *s, const struct span *k, void *ctx, int depth)
{
    struct scan *sc = ctx;
    if (key_is(k, "id"))
        return str_or_skip(s, &sc->id, depth);
    if (key_is(k, "choices"))
        return choices(s, sc, depth);
    if (key_is(k, "usage")) {
        sc->up = sc->uc = sc->cached = -1;
        if (s->p < s->end && *s->p == '{')
            return object(s, usage_member, sc, depth);
        return skip(s, depth);
    }
    if (key_is(k, "timings")) {
        sc->tp = sc->tc = -1;
        if (s->p < s->end && *s->p == '{')
            return object(s, timings_member, sc, depth);
        return skip(s, depth);
    }
    if (key_is(k, "meta_info")) {
        sc->mc = -1;
        if (s->p < s->end && *s->p == '{')
            return object(s, meta_member, sc, depth);
        return skip(s, depth);
    }
    if (key_is(k, "error")) {
        memset(&sc->err_msg, 0, sizeof sc->err_msg);
        memset(&sc->err_str, 0, sizeof sc->err_str);
        sc->err_is_obj = false;
        if (s->p < s->end && *s->p == '{') {
            sc->err_is_obj = true;
            return object(s, error_member, sc, depth);
        }
        return str_or_skip(s, &sc->err_str, depth);
    }
    if (key_is(k, "object"))
        return str_or_skip(s, &sc->object, depth);
    if (key_is(k, "message"))
        return str_or_skip(s, &sc->message, depth);
    return skip(s, depth);
}

/* Decode a chosen string into out; *n gets the bytes appended. Returns 0 or -1 (out of memory). */
static int decode_len(const struct span *sp, struct buf *out, size_t *n)
{
    size_t before = out->len;
    if (decode(sp, out) < 0)
        return -1;
    *n = out->len - before;
    return 0;
}

/* The scanner; *tspan and *rspan (when non-NULL) get the raw spans of the chosen text and
 * reasoning, if any. */
static int scan_full(const char *data, size_t len, struct chunk *c, struct buf *text,
                     struct buf *reasoning, unsigned want, struct span *tspan, struct span *rspan)
{
    chunk_reset(c);
    struct scan sc;
    memset(&sc, 0, sizeof sc);
    sc.p = data;
    sc.end = data + len;
    sc.up = sc.uc = sc.cached = sc.tp = sc.tc = sc.mc = -1;
    ws(&sc);
    if (object(&sc, top_member, &sc, 1) < 0)
        return 1;
    ws(&sc);
    if (sc.p != sc.end)
        return 1;

    if (sc.err_str.s) {
        c->has_error = true;
        span_to(&sc.err_str, c->error, sizeof c->error);
    } else if (sc.err_is_obj) {
        c->has_error = true;
        if (sc.err_msg.s)
            span_to(&sc.err_msg, c->error, sizeof c->error);
        else
            copy_str(c->error, sizeof c->error, "error object without a message", 30);
    } else if (sc.object.s && !sc.object.esc && sc.object.len == 5 &&
               memcmp(sc.object.s, "error", 5) == 0) {
        c->has_error = true;
        if (sc.message.s)
            span_to(&sc.message, c->error, sizeof c->error);
        else
            copy_str(c->error, sizeof c->error, "error", 5);
    } else if (sc.object.s && sc.object.esc) {
        return 1; /* "object": "err\u006fr" - let jansson compare */
    }
    if (sc.id.s && (want & CHUNK_ID)) {
        c->has_id = true;
        span_to(&sc.id, c->id, sizeof c->id);
    }
    if (sc.finish.s) {
        c->has_finish = true;
        span_to(&sc.finish, c->finish, sizeof c->finish);
    }
    const struct span *t = NULL;
    if (sc.text_key)
        t = sc.text.s ? &sc.text : NULL;
    else if (sc.delta.content_key)
        t = sc.delta.content.s ? &sc.delta.content : NULL;
    else if (sc.msg.content_key)
        t = sc.msg.content.s ? &sc.msg.content : NULL;
    if (t) {
        c->has_text = true;
        if (decode_len(t, text, &c->text_len) < 0)
            return -1;
        if (tspan)
            *tspan = *t;
    }
    const struct span *r = holder_reasoning(&sc.delta);
    if (!r)
        r = holder_reasoning(&sc.msg);
    if (r) {
        c->has_reasoning = true;
        if (decode_len(r, reasoning, &c->reasoning_len) < 0)
            return -1;
        if (rspan)
            *rspan = *r;
    }
    c->usage_prompt = sc.up;
    c->usage_completion = sc.uc;
    c->cached = sc.cached;
    c->timings_prompt_n = sc.tp;
    c->timings_cache_n = sc.tc;
    c->meta_cached = sc.mc;
    return 0;
}

long long reuse_evidence(const struct reuse_fields *f, const char **source)
{
    *source = NULL;
    if (f->details_cached >= 0) {
        *source = "usage.prompt_tokens_details.cached_tokens";
        return f->details_cached;
    }
    if (f->timings_cache_n >= 0) {
        *source = "timings.cache_n";
        return f->timings_cache_n;
    }
    /* prompt_n counts the prompt tokens the server evaluated; the rest it took from its cache */
    if (f->usage_prompt >= 0 && f->timings_prompt_n >= 0 &&
        f->timings_prompt_n <= f->usage_prompt) {
        *source = "usage.prompt_tokens-timings.prompt_n";
        return f->usage_prompt - f->timings_prompt_n;
    }
    if (f->meta_cached >= 0) {
        *source = "meta_info.cached_tokens";
        return f->meta_cached;
    }
    return -1;
}

int chunk_scan(const char *data, size_t len, struct chunk *c, struct buf *text,
               struct buf *reasoning, unsigned want)
{
    return scan_full(data, len, c, text, reasoning, want, NULL, NULL);
}

void chunk_tpl_reset(struct chunk_tpl *t)
{
    t->ok = false;
}

void chunk_tpl_free(struct chunk_tpl *t)
{
    buf_free(&t->bytes);
    t->ok = false;
}

/* The fast path: data has the template's bytes around a valid JSON string, which is read into the
 * buffer of the string that varies. Returns 0, -1 (out of memory), or 1 (not the template's). */
static int tpl_hit(const struct chunk_tpl *t, const char *data, size_t len, struct chunk *c,
                   struct buf *text, struct buf *reasoning, unsigned want)
{
    if (!t->ok || len < t->pre + t->suf + 2 || memcmp(data, t->bytes.data, t->pre) != 0 ||
        memcmp(data + len - t->suf, t->bytes.data + t->bytes.len - t->suf, t->suf) != 0)
        return 1;
    const char *at = data + t->pre;
    struct span sp;
    if (str_at(&at, data + len, &sp) < 0 || at != data + len - t->suf)
        return 1;
    /* the same bytes around another string: only that string is new */
    const struct chunk *f = &t->fields;
    memcpy(c, f, offsetof(struct chunk, finish)); /* the flags and numbers */
    c->finish[0] = c->id[0] = c->error[0] = c->malformed[0] = '\0';
    if (f->has_finish)
        memcpy(c->finish, f->finish, sizeof c->finish);
    c->has_id = f->has_id && (want & CHUNK_ID);
    if (c->has_id)
        memcpy(c->id, f->id, sizeof c->id);
    if (f->has_error)
        memcpy(c->error, f->error, sizeof c->error);
    /* the other string is among the fixed bytes, and empty (or absent) in the template */
    if (t->reasoning)
        return decode_len(&sp, reasoning, &c->reasoning_len);
    return decode_len(&sp, text, &c->text_len);
}

int chunk_read_tpl(struct chunk_tpl *t, const char *data, size_t len, struct chunk *c,
                   struct buf *text, struct buf *reasoning, unsigned want)
{
    int hit = tpl_hit(t, data, len, c, text, reasoning, want);
    if (hit <= 0)
        return hit;
    struct span sp = {0}, rp = {0};
    int rc = scan_full(data, len, c, text, reasoning, want | CHUNK_ID, &sp, &rp);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return chunk_read_jansson(data, len, c, text, reasoning, want);
    /* the string that varies: the non-empty one of text and reasoning (none when both are) */
    const struct span *var = NULL;
    if (rp.s && rp.len > 0)
        var = sp.s && sp.len > 0 ? NULL : &rp;
    else
        var = sp.s ? &sp : rp.s ? &rp : NULL;
    if (var) {
        /* remember the event around that string for the next one */
        buf_reset(&t->bytes);
        buf_append(&t->bytes, data, len);
        t->ok = !buf_failed(&t->bytes);
        if (t->ok) {
            t->pre = (size_t)(var->s - 1 - data);
            t->suf = len - (size_t)(var->s + var->len + 1 - data);
            t->reasoning = var == &rp;
            t->fields = *c;
        }
    }
    if (!(want & CHUNK_ID)) {
        c->has_id = false;
        c->id[0] = '\0';
    }
    return 0;
}

int chunk_read(const char *data, size_t len, struct chunk *c, struct buf *text,
               struct buf *reasoning, unsigned want)
{
    int rc = chunk_scan(data, len, c, text, reasoning, want);
    if (rc <= 0)
        return rc;
    return chunk_read_jansson(data, len, c, text, reasoning, want);
}
