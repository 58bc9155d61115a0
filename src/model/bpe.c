/*
 * bpe.c - byte-level BPE from a tokenizer.json, matching the Hugging Face `tokenizers` library.
 *
 * Loading. The file's small members (normalizer, pre-tokenizer, decoder, added tokens, model
 * settings) are parsed with jansson; the two large ones, model.vocab and model.merges (hundreds
 * of thousands of strings), are located with a bracket-matching scan and read by a streaming
 * string reader here, because a full jansson tree of the file alone costs about 350 ms and 40 MiB
 * for Llama 3, over the load budget (300 ms, 64 MiB). tests/unit/test_bpe.c checks this reader
 * against jansson's parse of the same files.
 *
 * Representation. Vocabulary entries are stored as raw bytes (the byte-level alphabet undone), so
 * encoding works on the text's bytes directly: a word starts as one symbol per byte and merges
 * are looked up by (left id, right id) in an open-addressing table giving (rank, merged id).
 *
 * Encoding follows the library's order: added tokens are matched in the raw text first
 * (leftmost-longest); the rest is normalized (NFC via utf8proc), split by the pre-tokenizer regex
 * (PCRE2, JIT-compiled, Unicode properties; matches and the gaps between them are both pieces,
 * the "Isolated" behaviour), and each piece is BPE-encoded, lowest merge rank first, leftmost on
 * ties. With ignore_merges a piece that is itself in the vocabulary is one token. Recently seen
 * pieces are served from a small cache.
 */
#include "model/bpe.h"

#include "util/err.h"
#include "util/json.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#define CACHE_SLOTS 32768
#define CACHE_KEY   40
#define CACHE_IDS   12
#define NO_RANK     UINT32_MAX

/* GPT-2 style pre-tokenizer regex used by ByteLevel with use_regex: true. */
static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct merge {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty */
    uint32_t rank;
    uint32_t id;
};

struct added {
    char *content;
    size_t len;
    uint32_t id;
    bool normalized;
};

struct cache_entry {
    uint64_t hash;
    uint8_t klen, nids;
    char key[CACHE_KEY];
    uint32_t ids[CACHE_IDS];
};

struct bpe {
    /* vocabulary: id -> raw bytes in arena */
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *tok_off, *tok_len;
    size_t n_ids;
    /* raw bytes -> id */
    uint32_t *vtab; /* id + 1, 0 = empty */
    size_t vtab_mask;
    uint32_t byte_id[256];
    struct merge *mtab;
    size_t mtab_mask;
    bool ignore_merges;
    /* added tokens */
    struct added *added;
    size_t n_added;
    uint16_t first_byte[256][2]; /* [start, count) into added_by_byte */
    uint32_t *added_by_byte;
    bool any_normalized_added;
    /* normalizer and pre-tokenizer */
    bool nfc;
    pcre2_code *re;
    bool jit;
    /* cache */
    pthread_mutex_t cache_lock;
    struct cache_entry *cache;
};

/* ------------------------------------------------------------ byte-level alphabet */

static uint16_t byte_to_cp[256];
static int16_t cp_to_byte[324];
static pthread_once_t alphabet_once = PTHREAD_ONCE_INIT;

static void alphabet_init(void)
{
    int n = 0;
    for (int i = 0; i < 324; i++)
        cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool direct = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        byte_to_cp[b] = (uint16_t)(direct ? b : 256 + n++);
        cp_to_byte[byte_to_cp[b]] = (int16_t)b;
    }
}

/* Byte-level text (UTF-8) -> raw bytes appended to out. Returns 0, -1 if a character is not in
 * the alphabet. */
static int unbytelevel(const char *s, size_t len, struct buf *out)
{
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0 || cp < 0 || cp >= 324 || cp_to_byte[cp] < 0)
            return -1;
        buf_append_char(out, (char)cp_to_byte[cp]);
        if (buf_failed(out))
            return -1;
        i += (size_t)n;
    }
    return 0;
}

/* The same into a fixed buffer, decoding UTF-8 inline (the alphabet needs at most two bytes per
 * character): the merge list calls this hundreds of thousands of times while loading. Returns
 * the length, or -1. */
static long unbytelevel_fast(const char *s, size_t len, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < len; k++) {
        if (k >= cap)
            return -1;
        unsigned c = (unsigned char)s[i];
        unsigned cp;
        if (c < 0x80) {
            cp = c;
            i++;
        } else if ((c >> 5) == 6 && i + 1 < len) {
            cp = (c & 0x1fu) << 6 | ((unsigned char)s[i + 1] & 0x3fu);
            i += 2;
        } else {
            return -1;
        }
        if (cp >= 324 || cp_to_byte[cp] < 0)
            return -1;
        out[k] = (char)cp_to_byte[cp];
    }
    return (long)k;
}

/* ------------------------------------------------------------ JSON scanning */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* p at the opening quote; returns the position after the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    /* memchr to the next quote, then count the backslashes before it: this runs over the
     * multi-megabyte vocabulary several times while loading */
    for (p++; p < end;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            return NULL;
        size_t bs = 0;
        for (const char *b = q - 1; b >= p && *b == '\\'; b--)
            bs++;
        if (bs % 2 == 0)
            return q + 1;
        p = q + 1;
    }
    return NULL;
}

static const char *skip_value(const char *p, const char *end)
{
    p = skip_ws(p, end);
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                if (!p)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
           *p != '\r' && *p != '\t')
        p++;
    return p;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

/* Decode the JSON string at p (opening quote) into out; returns the position after it. */
static const char *read_string(const char *p, const char *end, struct buf *out)
{
    buf_reset(out);
    if (p >= end || *p != '"')
        return NULL;
    p++;
    const char *run = p;
    while (p < end && *p != '"') {
        if (*p != '\\') {
            p++;
            continue;
        }
        buf_append(out, run, (size_t)(p - run));
        if (buf_failed(out) || p + 1 >= end)
            return NULL;
        char e = p[1];
        p += 2;
        char c;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            c = e;
            break;
        case 'b':
            c = '\b';
            break;
        case 'f':
            c = '\f';
            break;
        case 'n':
            c = '\n';
            break;
        case 'r':
            c = '\r';
            break;
        case 't':
            c = '\t';
            break;
        case 'u': {
            unsigned cp;
            if (hex4(p, end, &cp) < 0)
                return NULL;
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                unsigned lo;
                if (hex4(p + 2, end, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
            }
            utf8proc_uint8_t enc[4];
            utf8proc_ssize_t n = utf8proc_encode_char((utf8proc_int32_t)cp, enc);
            if (n <= 0)
                return NULL;
            buf_append(out, enc, (size_t)n);
            if (buf_failed(out))
                return NULL;
            run = p;
            continue;
        }
        default:
            return NULL;
        }
        buf_append_char(out, c);
        if (buf_failed(out))
            return NULL;
        run = p;
    }
    if (p >= end)
        return NULL;
    buf_append(out, run, (size_t)(p - run));
    return buf_failed(out) ? NULL : p + 1;
}

/* Find member `key` of the object at p ('{'); sets [*v0, *v1) to its value. */
static int find_member(const char *p, const char *end, const char *key, const char **v0,
                       const char **v1)
{
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    p++;
    size_t klen = strlen(key);
    for (;;) {
        p = skip_ws(p, end);
        if (p < end && *p == '}')
            return -1;
        if (p >= end || *p != '"')
            return -1;
        const char *ks = p + 1;
        const char *ke = skip_string(p, end);
        if (!ke)
            return -1;
        bool match = (size_t)(ke - 1 - ks) == klen && memcmp(ks, key, klen) == 0;
        p = skip_ws(ke, end);
        if (p >= end || *p != ':')
            return -1;
        p = skip_ws(p + 1, end);
        const char *ve = skip_value(p, end);
        if (!ve)
            return -1;
        if (match) {
            *v0 = p;
            *v1 = ve;
            return 0;
        }
        p = skip_ws(ve, end);
        if (p < end && *p == ',')
            p++;
    }
}

/* ------------------------------------------------------------ tables */

static uint64_t hash_bytes(const char *s, size_t n)
{
    return XXH3_64bits(s, n);
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 1024;
    while (p < n)
        p <<= 1;
    return p;
}

static long vocab_find(const struct bpe *b, const char *s, size_t n)
{
    size_t i = hash_bytes(s, n) & b->vtab_mask;
    for (;; i = (i + 1) & b->vtab_mask) {
        uint32_t e = b->vtab[i];
        if (!e)
            return -1;
        uint32_t id = e - 1;
        if (b->tok_len[id] == n && memcmp(b->arena + b->tok_off[id], s, n) == 0)
            return id;
    }
}

static void vocab_insert(struct bpe *b, uint32_t id)
{
    const char *s = b->arena + b->tok_off[id];
    size_t n = b->tok_len[id];
    size_t i = hash_bytes(s, n) & b->vtab_mask;
    while (b->vtab[i]) {
        uint32_t other = b->vtab[i] - 1;
        if (b->tok_len[other] == n && memcmp(b->arena + b->tok_off[other], s, n) == 0)
            return; /* first id wins */
        i = (i + 1) & b->vtab_mask;
    }
    b->vtab[i] = id + 1;
}

static inline uint64_t pair_key(uint32_t l, uint32_t r)
{
    return ((uint64_t)l << 32 | r) + 1;
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static const struct merge *merge_find(const struct bpe *b, uint32_t l, uint32_t r)
{
    uint64_t key = pair_key(l, r);
    size_t i = mix64(key) & b->mtab_mask;
    for (;; i = (i + 1) & b->mtab_mask) {
        const struct merge *m = &b->mtab[i];
        if (!m->key)
            return NULL;
        if (m->key == key)
            return m;
    }
}

static void merge_insert(struct bpe *b, uint32_t l, uint32_t r, uint32_t rank, uint32_t id)
{
    uint64_t key = pair_key(l, r);
    size_t i = mix64(key) & b->mtab_mask;
    while (b->mtab[i].key) {
        if (b->mtab[i].key == key)
            return; /* the earliest (lowest-rank) merge of a pair wins */
        i = (i + 1) & b->mtab_mask;
    }
    b->mtab[i] = (struct merge){key, rank, id};
}

static int set_token(struct bpe *b, uint32_t id, const char *bytes, size_t n)
{
    if (id >= b->n_ids)
        return -1;
    if (b->arena_len + n > b->arena_cap) {
        size_t cap = b->arena_cap ? b->arena_cap * 2 : 1 << 20;
        while (cap < b->arena_len + n)
            cap *= 2;
        char *a = realloc(b->arena, cap);
        if (!a)
            return -1;
        b->arena = a;
        b->arena_cap = cap;
    }
    memcpy(b->arena + b->arena_len, bytes, n);
    b->tok_off[id] = (uint32_t)b->arena_len;
    b->tok_len[id] = (uint32_t)n;
    b->arena_len += n;
    return 0;
}

/* ------------------------------------------------------------ feature checks */

static int refuse(char *err, const char *what)
{
    return err_set(err, "tokenizer.json uses %s, which kvbench does not implement", what);
}

static const char *type_of(const json_t *o)
{
    return json_get_str(o, "type", "?");
}

static int check_pretokenizer(struct bpe *b, const json_t *pt, const char **regex, char *err)
{
    char what[256];
    if (json_is_null(pt) || !pt)
        return refuse(err, "no pre-tokenizer (only a regex Split + ByteLevel is supported)");
    const char *t = type_of(pt);
    if (strcmp(t, "ByteLevel") == 0) {
        if (json_get_bool(pt, "add_prefix_space", false))
            return refuse(err, "the ByteLevel pre-tokenizer option add_prefix_space: true");
        if (!json_get_bool(pt, "use_regex", true))
            return refuse(err, "a ByteLevel pre-tokenizer without a regex split");
        *regex = GPT2_REGEX;
        return 0;
    }
    if (strcmp(t, "Sequence") != 0) {
        snprintf(what, sizeof what, "the pre-tokenizer '%s'", t);
        return refuse(err, what);
    }
    const json_t *list = json_object_get(pt, "pretokenizers");
    if (json_array_size(list) != 2)
        return refuse(err, "a pre-tokenizer Sequence other than [Split, ByteLevel]");
    const json_t *split = json_array_get(list, 0), *bl = json_array_get(list, 1);
    if (strcmp(type_of(split), "Split") != 0 || strcmp(type_of(bl), "ByteLevel") != 0) {
        snprintf(what, sizeof what, "a pre-tokenizer Sequence of %s, %s", type_of(split),
                 type_of(bl));
        return refuse(err, what);
    }
    const char *re = json_get_str(json_object_get(split, "pattern"), "Regex", NULL);
    if (!re)
        return refuse(err, "a Split pre-tokenizer on a plain string pattern");
    if (strcmp(json_get_str(split, "behavior", ""), "Isolated") != 0) {
        snprintf(what, sizeof what, "the Split behavior '%s'",
                 json_get_str(split, "behavior", "?"));
        return refuse(err, what);
    }
    if (json_get_bool(split, "invert", false))
        return refuse(err, "an inverted Split pre-tokenizer");
    if (json_get_bool(bl, "add_prefix_space", false))
        return refuse(err, "the ByteLevel pre-tokenizer option add_prefix_space: true");
    if (json_get_bool(bl, "use_regex", false))
        return refuse(err, "a ByteLevel pre-tokenizer with its own regex after a Split");
    *regex = re;
    (void)b;
    return 0;
}

static int check_features(struct bpe *b, const json_t *root, const char **regex, char *err)
{
    char what[256];
    const json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm)) {
        const char *t = type_of(norm);
        if (strcmp(t, "NFC") == 0) {
            b->nfc = true;
        } else if (strcmp(t, "Sequence") == 0 &&
                   json_array_size(json_object_get(norm, "normalizers")) == 1 &&
                   strcmp(type_of(json_array_get(json_object_get(norm, "normalizers"), 0)),
                          "NFC") == 0) {
            b->nfc = true;
        } else {
            snprintf(what, sizeof what, "the normalizer '%s'", t);
            return refuse(err, what);
        }
    }
    if (check_pretokenizer(b, json_object_get(root, "pre_tokenizer"), regex, err) < 0)
        return -1;
    const json_t *dec = json_object_get(root, "decoder");
    if (dec && !json_is_null(dec) && strcmp(type_of(dec), "ByteLevel") != 0) {
        snprintf(what, sizeof what, "the decoder '%s'", type_of(dec));
        return refuse(err, what);
    }
    const json_t *m = json_object_get(root, "model");
    if (strcmp(type_of(m), "BPE") != 0) {
        snprintf(what, sizeof what, "the model type '%s' (only BPE)", type_of(m));
        return refuse(err, what);
    }
    if (json_get_bool(m, "byte_fallback", false))
        return refuse(err, "BPE byte_fallback");
    const json_t *dropout = json_object_get(m, "dropout");
    if (dropout && !json_is_null(dropout) && json_number_value(dropout) != 0)
        return refuse(err, "BPE dropout");
    const char *csp = json_get_str(m, "continuing_subword_prefix", NULL);
    const char *eow = json_get_str(m, "end_of_word_suffix", NULL);
    if ((csp && *csp) || (eow && *eow))
        return refuse(err, "BPE continuing_subword_prefix / end_of_word_suffix");
    b->ignore_merges = json_get_bool(m, "ignore_merges", false);
    return 0;
}

/* ------------------------------------------------------------ loading */

static int load_vocab(struct bpe *b, const char *p, const char *end, char *err)
{
    struct buf key = BUF_INIT, raw = BUF_INIT;
    int rc = -1;
    p = skip_ws(p, end);
    if (p >= end || *p != '{') {
        err_set(err, "model.vocab is not an object");
        goto out;
    }
    p++;
    for (;;) {
        p = skip_ws(p, end);
        if (p < end && *p == '}')
            break;
        p = read_string(p, end, &key);
        if (!p) {
            err_set(err, "model.vocab: malformed key");
            goto out;
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ':') {
            err_set(err, "model.vocab: expected ':'");
            goto out;
        }
        p = skip_ws(p + 1, end);
        char *num_end;
        long id = strtol(p, &num_end, 10);
        if (num_end == p || id < 0 || (size_t)id >= b->n_ids) {
            err_set(err, "model.vocab: bad id for '%s'", buf_cstr(&key));
            goto out;
        }
        p = skip_ws(num_end, end);
        buf_reset(&raw);
        if (unbytelevel(key.data, key.len, &raw) < 0) {
            err_set(err,
                    "model.vocab: '%s' is not byte-level text (a ByteLevel vocabulary "
                    "is required)",
                    buf_cstr(&key));
            goto out;
        }
        if (set_token(b, (uint32_t)id, buf_cstr(&raw), raw.len) < 0) {
            err_set(err, "out of memory");
            goto out;
        }
        if (p < end && *p == ',')
            p++;
    }
    rc = 0;
out:
    buf_free(&key);
    buf_free(&raw);
    return rc;
}

static int load_merges(struct bpe *b, const char *p, const char *end, char *err)
{
    struct buf s1 = BUF_INIT, s2 = BUF_INIT;
    int rc = -1;
    uint32_t rank = 0;
    p = skip_ws(p, end);
    if (p >= end || *p != '[') {
        err_set(err, "model.merges is not an array");
        goto out;
    }
    p++;
    for (;; rank++) {
        p = skip_ws(p, end);
        if (p < end && *p == ']')
            break;
        const char *a, *c;
        size_t an, cn;
        if (p < end && *p == '"') {
            p = read_string(p, end, &s1);
            const char *sp = p ? memchr(s1.data ? s1.data : "", ' ', s1.len) : NULL;
            if (!sp) {
                err_set(err, "model.merges[%u]: expected \"a b\"", rank);
                goto out;
            }
            a = s1.data;
            an = (size_t)(sp - s1.data);
            c = sp + 1;
            cn = s1.len - an - 1;
        } else if (p < end && *p == '[') {
            p = skip_ws(p + 1, end);
            p = read_string(p, end, &s1);
            p = p ? skip_ws(p, end) : NULL;
            if (!p || *p != ',') {
                err_set(err, "model.merges[%u]: expected [\"a\", \"b\"]", rank);
                goto out;
            }
            p = read_string(skip_ws(p + 1, end), end, &s2);
            p = p ? skip_ws(p, end) : NULL;
            if (!p || *p != ']') {
                err_set(err, "model.merges[%u]: expected [\"a\", \"b\"]", rank);
                goto out;
            }
            p++;
            a = s1.data;
            an = s1.len;
            c = s2.data;
            cn = s2.len;
        } else {
            err_set(err, "model.merges[%u]: expected a string or a pair", rank);
            goto out;
        }
        char raw[512];
        long la = unbytelevel_fast(a, an, raw, sizeof raw / 2);
        long lc = la < 0 ? -1 : unbytelevel_fast(c, cn, raw + la, sizeof raw / 2);
        long l = la < 0 ? -1 : vocab_find(b, raw, (size_t)la);
        long r = lc < 0 ? -1 : vocab_find(b, raw + la, (size_t)lc);
        long m = l < 0 || r < 0 ? -1 : vocab_find(b, raw, (size_t)(la + lc));
        if (l < 0 || r < 0 || m < 0) {
            err_set(err, "model.merges[%u]: '%.*s' + '%.*s' is not in the vocabulary", rank,
                    (int)an, a, (int)cn, c);
            goto out;
        }
        merge_insert(b, (uint32_t)l, (uint32_t)r, rank, (uint32_t)m);
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p++;
    }
    rc = 0;
out:
    buf_free(&s1);
    buf_free(&s2);
    return rc;
}

static size_t count_entries(const char *p, const char *end)
{
    /* an upper bound: commas at depth 1 + 1 */
    size_t n = 1;
    int depth = 0;
    while (p < end) {
        if (*p == '"') {
            p = skip_string(p, end);
            if (!p)
                break;
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if (*p == '}' || *p == ']')
            depth--;
        else if (*p == ',' && depth == 1)
            n++;
        p++;
    }
    return n;
}

static int load_added(struct bpe *b, const json_t *list, char *err)
{
    size_t n = json_array_size(list);
    b->added = calloc(n ? n : 1, sizeof *b->added);
    b->added_by_byte = calloc(n ? n : 1, sizeof *b->added_by_byte);
    if (!b->added || !b->added_by_byte)
        return err_set(err, "out of memory");
    size_t i;
    const json_t *t;
    json_array_foreach(list, i, t)
    {
        const json_t *c = json_object_get(t, "content");
        json_int_t id = json_get_int(t, "id", -1);
        if (!json_is_string(c) || json_string_length(c) == 0 || id < 0)
            return err_set(err, "added_tokens[%zu]: needs an id and non-empty content", i);
        if (json_get_bool(t, "lstrip", false) || json_get_bool(t, "rstrip", false) ||
            json_get_bool(t, "single_word", false))
            return refuse(err, "added tokens with lstrip, rstrip or single_word");
        struct added *a = &b->added[b->n_added++];
        a->len = json_string_length(c);
        a->content = malloc(a->len);
        if (!a->content)
            return err_set(err, "out of memory");
        memcpy(a->content, json_string_value(c), a->len);
        a->id = (uint32_t)id;
        a->normalized = json_get_bool(t, "normalized", !json_get_bool(t, "special", false));
        b->any_normalized_added |= a->normalized;
        if ((size_t)id < b->n_ids && b->tok_len[id] == 0 &&
            set_token(b, (uint32_t)id, a->content, a->len) < 0)
            return err_set(err, "out of memory");
    }
    /* index by first byte, longest first (leftmost-longest matching) */
    size_t k = 0;
    for (int byte = 0; byte < 256; byte++) {
        b->first_byte[byte][0] = (uint16_t)k;
        size_t start = k;
        for (size_t j = 0; j < b->n_added; j++)
            if ((unsigned char)b->added[j].content[0] == byte)
                b->added_by_byte[k++] = (uint32_t)j;
        for (size_t x = start + 1; x < k; x++) /* insertion sort by length, descending */
            for (size_t y = x; y > start && b->added[b->added_by_byte[y]].len >
                                                b->added[b->added_by_byte[y - 1]].len;
                 y--) {
                uint32_t tmp = b->added_by_byte[y];
                b->added_by_byte[y] = b->added_by_byte[y - 1];
                b->added_by_byte[y - 1] = tmp;
            }
        b->first_byte[byte][1] = (uint16_t)(k - start);
    }
    return 0;
}

/* The document without its two big members (vocab and merges, replaced by empty ones), parsed by
 * jansson. New reference, or NULL with err. */
static json_t *load_skeleton(const char *json, size_t len, const char *v0, const char *v1,
                             const char *g0, const char *g1, char *err)
{
    size_t first = (size_t)((v0 < g0 ? v0 : g0) - json),
           first_end = (size_t)((v0 < g0 ? v1 : g1) - json);
    size_t second = (size_t)((v0 < g0 ? g0 : v0) - json),
           second_end = (size_t)((v0 < g0 ? g1 : v1) - json);
    struct buf skel = BUF_INIT;
    buf_append(&skel, json, first);
    buf_append_str(&skel, v0 < g0 ? "{}" : "[]");
    buf_append(&skel, json + first_end, second - first_end);
    buf_append_str(&skel, v0 < g0 ? "[]" : "{}");
    buf_append(&skel, json + second_end, len - second_end);
    if (buf_failed(&skel)) {
        buf_free(&skel);
        err_set(err, "out of memory");
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(buf_cstr(&skel), skel.len, 0, &jerr);
    buf_free(&skel);
    if (!root)
        err_set(err, "tokenizer.json is not valid JSON: %s (line %d)", jerr.text, jerr.line);
    return root;
}

/* Size the id and hash tables for the vocabulary (v0..v1), the added tokens and the merges
 * (g0..g1). Returns 0 or -1 with err. */
static int alloc_tables(struct bpe *b, const json_t *root, const char *v0, const char *v1,
                        const char *g0, const char *g1, char *err)
{
    size_t max_id = count_entries(v0, v1);
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(root, "added_tokens"), i, t)
    {
        json_int_t id = json_get_int(t, "id", 0);
        if (id >= 0 && (size_t)id + 1 > max_id)
            max_id = (size_t)id + 1;
    }
    b->n_ids = max_id;
    b->tok_off = calloc(max_id, sizeof *b->tok_off);
    b->tok_len = calloc(max_id, sizeof *b->tok_len);
    b->vtab_mask = pow2_at_least(max_id * 2) - 1;
    b->vtab = calloc(b->vtab_mask + 1, sizeof *b->vtab);
    size_t n_merges = count_entries(g0, g1);
    b->mtab_mask = pow2_at_least(n_merges + n_merges / 2) -
                   1; /* load <= 2/3: a smaller table misses cache less */
    b->mtab = calloc(b->mtab_mask + 1, sizeof *b->mtab);
    b->cache = calloc(CACHE_SLOTS, sizeof *b->cache);
    if (!b->tok_off || !b->tok_len || !b->vtab || !b->mtab || !b->cache)
        return err_set(err, "out of memory");
    return 0;
}

/* Index the vocabulary by text and find the token of each of the 256 bytes. */
static int index_vocab(struct bpe *b, char *err)
{
    for (uint32_t id = 0; id < b->n_ids; id++)
        if (b->tok_len[id])
            vocab_insert(b, id);
    for (int byte = 0; byte < 256; byte++) {
        char c = (char)byte;
        long id = vocab_find(b, &c, 1);
        if (id < 0)
            return err_set(err,
                           "tokenizer.json: the vocabulary has no token for byte 0x%02x (a "
                           "byte-level BPE needs all 256)",
                           byte);
        b->byte_id[byte] = (uint32_t)id;
    }
    return 0;
}

static int compile_pretokenizer(struct bpe *b, const char *regex, char *err)
{
    int ecode;
    PCRE2_SIZE eoff;
    b->re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ecode, &eoff, NULL);
    if (!b->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        return err_set(err, "tokenizer.json: the pre-tokenizer regex does not compile at %zu: %s",
                       (size_t)eoff, (char *)msg);
    }
    b->jit = pcre2_jit_compile(b->re, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

struct bpe *bpe_load(const char *json, size_t len, char *err)
{
    pthread_once(&alphabet_once, alphabet_init);
    const char *end = json + len;
    const char *m0, *m1, *v0, *v1, *g0, *g1;
    if (find_member(json, end, "model", &m0, &m1) < 0) {
        err_set(err, "not a tokenizer.json: no \"model\" object");
        return NULL;
    }
    if (find_member(m0, m1, "vocab", &v0, &v1) < 0 || find_member(m0, m1, "merges", &g0, &g1) < 0) {
        err_set(err, "tokenizer.json: model has no vocab or merges (only BPE is supported)");
        return NULL;
    }
    /* everything but the two big members, for jansson */
    json_t *root = load_skeleton(json, len, v0, v1, g0, g1, err);
    if (!root)
        return NULL;
    struct bpe *b = calloc(1, sizeof *b);
    const char *regex = NULL;
    if (!b) {
        err_set(err, "out of memory");
        json_decref(root);
        return NULL;
    }
    pthread_mutex_init(&b->cache_lock, NULL);
    if (check_features(b, root, &regex, err) < 0 ||
        alloc_tables(b, root, v0, v1, g0, g1, err) < 0 || load_vocab(b, v0, v1, err) < 0 ||
        index_vocab(b, err) < 0 || load_merges(b, g0, g1, err) < 0 ||
        load_added(b, json_object_get(root, "added_tokens"), err) < 0 ||
        compile_pretokenizer(b, regex, err) < 0) {
        json_decref(root);
        bpe_free(b);
        return NULL;
    }
    json_decref(root);
    return b;
}

void bpe_free(struct bpe *b)
{
    if (!b)
        return;
    free(b->arena);
    free(b->tok_off);
    free(b->tok_len);
    free(b->vtab);
    free(b->mtab);
    for (size_t i = 0; i < b->n_added; i++)
        free(b->added[i].content);
    free(b->added);
    free(b->added_by_byte);
    free(b->cache);
    if (b->re)
        pcre2_code_free(b->re);
    pthread_mutex_destroy(&b->cache_lock);
    free(b);
}

size_t bpe_vocab_size(const struct bpe *b)
{
    return b->n_ids;
}

long bpe_token_id(const struct bpe *b, const char *bytes, size_t len)
{
    return vocab_find(b, bytes, len);
}

/* ------------------------------------------------------------ encoding */

struct scratch {
    uint32_t *sym;
    uint32_t *rank;
    size_t cap;
};

static int scratch_reserve(struct scratch *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n)
        cap *= 2;
    uint32_t *a = realloc(s->sym, cap * sizeof *a);
    if (!a)
        return -1;
    s->sym = a;
    uint32_t *r = realloc(s->rank, cap * sizeof *r);
    if (!r)
        return -1;
    s->rank = r;
    s->cap = cap;
    return 0;
}

static uint32_t pair_rank(const struct bpe *b, uint32_t l, uint32_t r)
{
    const struct merge *m = merge_find(b, l, r);
    return m ? m->rank : NO_RANK;
}

/* BPE of one piece; ids appended to out. */
static int encode_piece(struct bpe *b, const char *s, size_t n, struct tok_ids *out,
                        struct scratch *sc)
{
    if (n == 0)
        return 0;
    if (b->ignore_merges || n == 1) {
        long id = vocab_find(b, s, n);
        if (id >= 0)
            return tok_ids_push(out, (uint32_t)id);
    }
    uint64_t h = 0;
    struct cache_entry *ce = NULL;
    if (n <= CACHE_KEY) {
        h = hash_bytes(s, n) | 1;
        ce = &b->cache[h & (CACHE_SLOTS - 1)];
        pthread_mutex_lock(&b->cache_lock);
        if (ce->hash == h && ce->klen == n && memcmp(ce->key, s, n) == 0) {
            uint32_t ids[CACHE_IDS];
            size_t k = ce->nids;
            memcpy(ids, ce->ids, k * sizeof *ids);
            pthread_mutex_unlock(&b->cache_lock);
            for (size_t i = 0; i < k; i++)
                if (tok_ids_push(out, ids[i]) < 0)
                    return -1;
            return 0;
        }
        pthread_mutex_unlock(&b->cache_lock);
    }
    if (scratch_reserve(sc, n) < 0)
        return -1;
    uint32_t *sym = sc->sym, *rank = sc->rank;
    for (size_t i = 0; i < n; i++)
        sym[i] = b->byte_id[(unsigned char)s[i]];
    size_t m = n;
    for (size_t i = 0; i + 1 < m; i++)
        rank[i] = pair_rank(b, sym[i], sym[i + 1]);
    for (;;) {
        uint32_t best = NO_RANK;
        size_t at = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            if (rank[i] < best) {
                best = rank[i];
                at = i;
            }
        }
        if (best == NO_RANK)
            break;
        sym[at] = merge_find(b, sym[at], sym[at + 1])->id;
        memmove(sym + at + 1, sym + at + 2, (m - at - 2) * sizeof *sym);
        memmove(rank + at + 1, rank + at + 2, (m - at - 2) * sizeof *rank);
        m--;
        if (at > 0)
            rank[at - 1] = pair_rank(b, sym[at - 1], sym[at]);
        if (at + 1 < m)
            rank[at] = pair_rank(b, sym[at], sym[at + 1]);
    }
    if (ce && m <= CACHE_IDS) {
        pthread_mutex_lock(&b->cache_lock);
        ce->hash = h;
        ce->klen = (uint8_t)n;
        ce->nids = (uint8_t)m;
        memcpy(ce->key, s, n);
        memcpy(ce->ids, sym, m * sizeof *sym);
        pthread_mutex_unlock(&b->cache_lock);
    }
    for (size_t i = 0; i < m; i++)
        if (tok_ids_push(out, sym[i]) < 0)
            return -1;
    return 0;
}

/* Pre-tokenize one normalized segment and encode its pieces. */
static int encode_normalized(struct bpe *b, const char *s, size_t n, struct tok_ids *out,
                             struct scratch *sc, pcre2_match_data *md)
{
    size_t off = 0;
    while (off < n) {
        int rc = b->jit ? pcre2_jit_match(b->re, (PCRE2_SPTR)s, n, off, 0, md, NULL)
                        : PCRE2_ERROR_JIT_STACKLIMIT;
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(b->re, (PCRE2_SPTR)s, n, off, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            return encode_piece(b, s + off, n - off, out, sc);
        if (rc < 0)
            return -1;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms > off && encode_piece(b, s + off, ms - off, out, sc) < 0)
            return -1;
        if (me == ms) { /* an empty match: take one character as a gap */
            size_t step = 1;
            while (ms + step < n && ((unsigned char)s[ms + step] & 0xc0) == 0x80)
                step++;
            if (encode_piece(b, s + ms, step, out, sc) < 0)
                return -1;
            me = ms + step;
        } else if (encode_piece(b, s + ms, me - ms, out, sc) < 0) {
            return -1;
        }
        off = me;
    }
    return 0;
}

static bool all_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

/* Find the leftmost-longest added token in s[from..n) among those with normalized == want.
 * Returns its index in b->added, or -1; *at receives the position. */
static long find_added(const struct bpe *b, const char *s, size_t n, size_t from, bool want,
                       size_t *at)
{
    for (size_t i = from; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t k0 = b->first_byte[c][0], cnt = b->first_byte[c][1];
        for (size_t k = k0; k < k0 + cnt; k++) {
            const struct added *a = &b->added[b->added_by_byte[k]];
            if (a->normalized == want && a->len <= n - i &&
                memcmp(s + i, a->content, a->len) == 0) {
                *at = i;
                return (long)b->added_by_byte[k];
            }
        }
    }
    return -1;
}

/* A segment with no raw-matched added tokens: normalize, split on normalized added tokens,
 * encode. */
static int encode_segment(struct bpe *b, const char *s, size_t n, struct tok_ids *out,
                          struct scratch *sc, pcre2_match_data *md)
{
    if (n == 0)
        return 0;
    utf8proc_uint8_t *norm = NULL;
    if (b->nfc && !all_ascii(s, n)) {
        utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &norm,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r >= 0) {
            s = (const char *)norm;
            n = (size_t)r;
        } else {
            norm = NULL; /* invalid UTF-8: left as it is */
        }
    }
    int rc = 0;
    size_t pos = 0;
    while (rc == 0 && pos < n) {
        size_t at = n;
        long k = b->any_normalized_added ? find_added(b, s, n, pos, true, &at) : -1;
        if (k < 0)
            at = n;
        rc = encode_normalized(b, s + pos, at - pos, out, sc, md);
        if (rc == 0 && k >= 0) {
            rc = tok_ids_push(out, b->added[k].id);
            pos = at + b->added[k].len;
        } else {
            pos = n;
        }
    }
    free(norm);
    return rc;
}

int bpe_encode(struct bpe *b, const char *text, size_t len, struct tok_ids *out)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(b->re, NULL);
    if (!md)
        return -1;
    struct scratch sc = {0};
    int rc = 0;
    size_t pos = 0;
    while (rc == 0 && pos < len) {
        size_t at = len;
        long k = b->n_added ? find_added(b, text, len, pos, false, &at) : -1;
        if (k < 0)
            at = len;
        rc = encode_segment(b, text + pos, at - pos, out, &sc, md);
        if (rc == 0 && k >= 0) {
            rc = tok_ids_push(out, b->added[k].id);
            pos = at + b->added[k].len;
        } else {
            pos = len;
        }
    }
    free(sc.sym);
    free(sc.rank);
    pcre2_match_data_free(md);
    return rc;
}

size_t bpe_count(struct bpe *b, const char *text, size_t len)
{
    struct tok_ids ids = {0};
    size_t n = bpe_encode(b, text, len, &ids) == 0 ? ids.n : 0;
    tok_ids_free(&ids);
    return n;
}

int bpe_decode(const struct bpe *b, const uint32_t *ids, size_t n, struct buf *out, char *err)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= b->n_ids || (b->tok_len[ids[i]] == 0))
            return err_set(err, "token id %u is not in the vocabulary", ids[i]);
        buf_append(out, b->arena + b->tok_off[ids[i]], b->tok_len[ids[i]]);
        if (buf_failed(out))
            return err_set(err, "out of memory");
    }
    return 0;
}
