/*
 * workload.c - synthetic documents.
 *
 * Randomness comes from splitmix64 streams seeded by (set seed, prefix, index), never from the
 * C library, so output is identical across platforms. Sentences follow a small grammar over word
 * lists written for kvbench; numbering and section headings make the text read like a document
 * and keep prompts of different seeds apart from their first words.
 */
#include "scenario/workload.h"

#include "util/buf.h"
#include "util/err.h"
#include "util/rng.h"
#include "util/sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ADJ[] = {
    "quiet",    "bright",   "narrow",  "patient",  "early",    "distant", "careful",  "steady",
    "hollow",   "golden",   "crowded", "silent",   "gentle",   "rapid",   "ancient",  "frozen",
    "restless", "humble",   "curious", "fragile",  "vivid",    "modest",  "stubborn", "clever",
    "weary",    "eager",    "plain",   "rusty",    "hidden",   "shallow", "northern", "simple",
    "layered",  "cached",   "warm",    "cold",     "spare",    "dense",   "brief",    "lengthy",
    "ordinary", "peculiar", "sudden",  "familiar", "distinct", "loyal",   "nimble",   "sturdy",
};
static const char *const NOUN[] = {
    "engine",  "river",   "lantern",  "harbor",  "ledger",   "orchard",  "bridge",  "archive",
    "compass", "meadow",  "workshop", "library", "signal",   "corridor", "garden",  "machine",
    "village", "teacher", "captain",  "student", "painter",  "baker",    "courier", "keeper",
    "block",   "cache",   "token",    "memory",  "request",  "window",   "journey", "question",
    "answer",  "letter",  "mountain", "valley",  "market",   "station",  "cabinet", "notebook",
    "melody",  "chorus",  "drummer",  "album",   "festival", "theory",   "measure", "pattern",
};
static const char *const VERB[] = {
    "carries",  "follows",  "records", "gathers", "returns",  "measures", "guards",  "borrows",
    "explains", "arranges", "repairs", "studies", "watches",  "shapes",   "finds",   "keeps",
    "moves",    "reads",    "writes",  "counts",  "compares", "collects", "sorts",   "tests",
    "reaches",  "crosses",  "builds",  "lifts",   "paints",   "teaches",  "answers", "remembers",
};
static const char *const ADV[] = {
    "slowly",   "quietly", "gladly",  "rarely",  "often",  "briefly", "openly", "calmly",
    "suddenly", "firmly",  "lightly", "eagerly", "warmly", "plainly", "boldly", "gently",
};
static const char *const PREP[] = {"across", "beneath", "beside", "within", "toward", "behind",
                                   "around", "through", "near",   "above",  "along",  "past"};
static const char *const DET[] = {"the", "a", "every", "one", "that", "this", "some", "each"};
static const char *const CONJ[] = {"and", "while", "because", "although", "so", "until"};

static uint64_t mix_seed(uint64_t set_seed, const char *prefix, size_t index)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = prefix; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    uint64_t s = set_seed ^ h ^ ((uint64_t)index * 0xd6e8feb86659fd93ull);
    splitmix64(&s);
    return s;
}

static void cap_first(struct buf *b, size_t from)
{
    if (from < b->len && b->data[from] >= 'a' && b->data[from] <= 'z')
        b->data[from] = (char)(b->data[from] - 'a' + 'A');
}

/* Words are drawn in one fixed order on every architecture: the last word of a clause first.
 * (They were once drawn inside one printf's argument list, whose evaluation order C leaves
 * unspecified: gcc on x86-64 went right to left, on aarch64 left to right, so the same seed gave
 * different prompts on a DGX Spark. Right to left keeps every earlier prompt as it was.) */
struct wordlist {
    const char *const *w;
    size_t n;
};
#define WL(arr)                                                                                    \
    {                                                                                              \
        arr, sizeof arr / sizeof arr[0]                                                            \
    }

static void pick_words(uint64_t *rng, const struct wordlist *lists, size_t n, const char **out)
{
    for (size_t i = n; i-- > 0;)
        out[i] = lists[i].w[splitmix64(rng) % lists[i].n];
}

static int append_sentence(struct buf *b, uint64_t *rng, unsigned number)
{
    static const struct wordlist MAIN[] = {WL(DET),  WL(ADJ),  WL(NOUN), WL(VERB), WL(DET),
                                           WL(NOUN), WL(PREP), WL(DET),  WL(NOUN)};
    static const struct wordlist TAIL[] = {WL(CONJ), WL(DET), WL(NOUN), WL(VERB), WL(ADV)};
    const char *w[9];
    size_t start;
    buf_printf(b, "%u. ", number);
    start = b->len;
    pick_words(rng, MAIN, 9, w);
    buf_printf(b, "%s %s %s %s %s %s %s %s %s", w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
               w[8]);
    if (splitmix64(rng) % 2) {
        pick_words(rng, TAIL, 5, w);
        buf_printf(b, ", %s %s %s %s %s", w[0], w[1], w[2], w[3], w[4]);
    }
    buf_append_str(b, ".\n");
    if (buf_failed(b))
        return -1;
    cap_first(b, start);
    return 0;
}

static int append_heading(struct buf *b, uint64_t *rng, unsigned section)
{
    static const struct wordlist ADJ1[] = {WL(ADJ)}, NOUNS[] = {WL(NOUN), WL(NOUN)};
    const char *a[1], *w[2];
    pick_words(rng, ADJ1, 1, a);
    pick_words(rng, NOUNS, 2, w);
    char adj[32];
    snprintf(adj, sizeof adj, "%s", a[0]);
    adj[0] = (char)(adj[0] - 'a' + 'A');
    buf_printf(b, "\nSection %u: %s %s of the %s\n", section, adj, w[0], w[1]);
    return buf_failed(b) ? -1 : 0;
}

char *workload_llama3_wrap(const char *message)
{
    struct buf b = BUF_INIT;
    struct chat_render_opts o = {
        .tpl = CHAT_TPL_LLAMA3, .bos = true, .gen_prompt = true, .literal = true};
    struct chat_msg m = {CHAT_USER, message, strlen(message)};
    chat_render(&o, &m, 1, &b, NULL);
    return buf_detach(&b); /* NULL when an append failed */
}

struct chat_render_opts prompt_form_render(const struct prompt_form *f)
{
    if (f->chat)
        return (struct chat_render_opts){.tpl = f->tpl, .bos = true, .gen_prompt = true};
    return (struct chat_render_opts){
        .tpl = CHAT_TPL_LLAMA3, .bos = !f->no_bos, .gen_prompt = true, .literal = true};
}

/* The presets of a set that lie in its range (SPEC §3.1); returns how many. */
static size_t presets_in_range(const struct workload_params *p, const char *set,
                               struct token_range *r, size_t in_range[5])
{
    static const size_t SHORT[] = {512, 768, 1024, 1536, 2048};
    static const size_t LONG[] = {8192, 12288, 16384, 24576, 32768};
    bool is_long = strcmp(set, "long") == 0;
    const size_t *presets = is_long ? LONG : SHORT;
    *r = is_long ? p->long_range : p->short_range;
    size_t n = 0;
    for (int i = 0; i < 5; i++)
        if ((long long)presets[i] >= r->min && (long long)presets[i] <= r->max)
            in_range[n++] = presets[i];
    return n;
}

size_t workload_pick_target(const struct workload_params *p, const char *set, uint64_t *rng)
{
    struct token_range r;
    size_t in_range[5];
    size_t n = presets_in_range(p, set, &r, in_range);
    uint64_t x = splitmix64(rng);
    if (n)
        return in_range[x % n];
    return (size_t)r.min + (size_t)(x % (uint64_t)(r.max - r.min + 1));
}

/* Build the full prompt text for a document of the given length (bytes of doc): the salt and
 * the document, bare or as the one user message of the form's template. span (NULL: not
 * wanted) gets where the message's content lies in out. */
static int compose(const struct workload_params *p, const char *doc, size_t doc_len,
                   struct buf *out, struct chat_span *span)
{
    buf_reset(out);
    bool wrap = p->form.chat || p->form.llama3;
    struct buf content = BUF_INIT;
    struct buf *c = wrap ? &content : out;
    if (p->salt && *p->salt) {
        buf_append_str(c, p->salt);
        buf_append_str(c, "\n\n");
    }
    buf_append(c, doc, doc_len);
    if (wrap) {
        struct chat_render_opts o = prompt_form_render(&p->form);
        struct chat_msg m = {CHAT_USER, buf_cstr(&content), content.len};
        if (buf_failed(&content))
            out->failed = true;
        else
            chat_render(&o, &m, 1, out, span);
        buf_free(&content);
    } else if (span) {
        *span = (struct chat_span){0, out->len};
    }
    return buf_failed(out) ? -1 : 0;
}

/* Count of the prompt whose document is doc[0..len). */
static size_t count_at(const struct workload_params *p, const struct buf *doc, size_t len,
                       struct buf *full)
{
    if (compose(p, buf_cstr(doc), len, full, NULL) < 0)
        return SIZE_MAX;
    return tokenizer_count(p->tok, full->data, full->len);
}

/* With an exact tokenizer, cut the last sentence (doc[from..to)) so that the prompt has exactly
 * target tokens where that is possible: first at a word boundary (counts are additive over
 * pre-tokens, so they grow with every word), then inside the last word, character by
 * character. Returns the document length to use. */
static size_t refine_exact(const struct workload_params *p, const struct buf *doc, size_t from,
                           size_t to, size_t target, struct buf *full)
{
    size_t cuts[128], n = 0;
    for (size_t i = from; i < to && n < 127; i++)
        if (doc->data[i] == ' ')
            cuts[n++] = i; /* before each space: the prefix ends after a word */
    cuts[n++] = to;
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (count_at(p, doc, cuts[mid], full) >= target)
            hi = mid;
        else
            lo = mid + 1;
    }
    size_t best = cuts[lo];
    size_t c = count_at(p, doc, best, full);
    if (c <= target)
        return best;
    /* inside the last word: the shortest cut that still reaches the target, preferring exact */
    size_t start = lo ? cuts[lo - 1] + 1 : from;
    for (size_t len = start; len < best; len++) {
        if (((unsigned char)doc->data[len] & 0xc0) == 0x80)
            continue; /* not a character boundary */
        size_t k = count_at(p, doc, len, full);
        if (k == target)
            return len;
        if (k > target)
            break;
    }
    return best;
}

static int make_one(const struct workload_params *p, uint64_t rng, size_t target,
                    struct prompt *out)
{
    struct buf doc = BUF_INIT, full = BUF_INIT;
    size_t *ends = NULL, n_ends = 0, cap_ends = 0;
    int rc = -1;
    /* Grow the document a sentence at a time, remembering where each sentence ends, until its
     * (additive) heuristic estimate passes the target with room to spare. */
    size_t base = 0;
    if (compose(p, "", 0, &full, NULL) < 0)
        goto out;
    base = tokenizer_count(p->tok, full.data, full.len);
    size_t est = base;
    unsigned section = 0, number = 0;
    /* the sum of per-sentence counts approximates the whole prompt's count (exactly for the
     * heuristic); an exact tokenizer is checked on the whole text below and more is added when
     * the approximation fell short */
    for (int round = 0; round < 64; round++) {
        if (round > 0) {
            if (count_at(p, &doc, doc.len, &full) >= target)
                break;
            est = target; /* grow by a little more than the margin, then check again */
        }
        while (est < target + 8 + (round ? 64u : 0u)) {
            size_t before = doc.len;
            if (number % 8 == 0 && append_heading(&doc, &rng, ++section) < 0)
                goto out;
            if (append_sentence(&doc, &rng, ++number) < 0)
                goto out;
            est += tokenizer_count_fast(p->tok, doc.data + before, doc.len - before);
            if (n_ends == cap_ends) {
                cap_ends = cap_ends ? cap_ends * 2 : 256;
                size_t *e = realloc(ends, cap_ends * sizeof *e);
                if (!e)
                    goto out;
                ends = e;
            }
            ends[n_ends++] = doc.len;
        }
    }
    /* The shortest document whose whole prompt reaches the target (binary search: the count only
     * grows with the document). */
    size_t lo = 0, hi = n_ends ? n_ends - 1 : 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (compose(p, doc.data, ends[mid], &full, NULL) < 0)
            goto out;
        if (tokenizer_count(p->tok, full.data, full.len) >= target)
            hi = mid;
        else
            lo = mid + 1;
    }
    size_t doc_len = n_ends ? ends[lo] : 0;
    if ((p->tok->bpe || p->tok->remote || p->exact) && n_ends)
        doc_len = refine_exact(p, &doc, lo ? ends[lo - 1] : 0, doc_len, target, &full);
    struct chat_span span;
    if (compose(p, buf_cstr(&doc), doc_len, &full, &span) < 0)
        goto out;
    out->target = target;
    out->est_tokens = tokenizer_count(p->tok, full.data, full.len);
    out->len = full.len;
    out->text = buf_detach(&full);
    if (!out->text || sha256_hex(out->text, out->len, out->sha256) < 0)
        goto out;
    enum chat_role user = CHAT_USER;
    if (p->form.chat && prompt_set_msgs(out, &user, &span, 1) < 0)
        goto out;
    if (out->n_msgs)
        out->est_tokens = workload_count(p->tok, out);
    rc = 0;
out:
    buf_free(&doc);
    buf_free(&full);
    free(ends);
    return rc;
}

size_t workload_count(const struct tokenizer *tok, const struct prompt *p)
{
    if (p->n_msgs && tok->remote) {
        struct chat_msg *m = calloc(p->n_msgs, sizeof *m);
        for (size_t i = 0; m && i < p->n_msgs; i++)
            m[i] = (struct chat_msg){p->msgs[i].role, p->text + p->msgs[i].span.off,
                                     p->msgs[i].span.len};
        long long n = m ? tokenizer_count_messages(tok, m, p->n_msgs) : -1;
        free(m);
        if (n >= 0)
            return (size_t)n;
    }
    return tokenizer_count(tok, p->text, p->len);
}

int workload_as_chat(struct prompt *p, const struct prompt_form *f, const struct tokenizer *tok)
{
    if (!f->chat)
        return 0;
    struct chat_render_opts o = prompt_form_render(f);
    struct chat_msg m = {CHAT_USER, p->text, p->len};
    struct chat_span span;
    struct buf b = BUF_INIT;
    chat_render(&o, &m, 1, &b, &span);
    char *text = buf_failed(&b) ? NULL : buf_detach(&b);
    buf_free(&b);
    enum chat_role user = CHAT_USER;
    if (!text || prompt_set_msgs(p, &user, &span, 1) < 0) {
        free(text);
        return -1;
    }
    free(p->text);
    p->text = text;
    p->len = strlen(text);
    p->est_tokens = workload_count(tok, p);
    return sha256_hex(p->text, p->len, p->sha256) < 0 ? -1 : 0;
}

void workload_id(const char *prefix, size_t i, struct prompt *out)
{
    snprintf(out->id, sizeof out->id, "%s-%05zu", prefix, i);
}

int workload_make_one(const struct workload_params *p, const char *prefix, const char *set,
                      uint64_t set_seed, size_t i, struct prompt *out)
{
    uint64_t rng = mix_seed(set_seed, prefix, i);
    const char *which = set;
    if (strcmp(set, "mixed") == 0)
        which = splitmix64(&rng) & 1 ? "long" : "short";
    size_t target = workload_pick_target(p, which, &rng);
    workload_id(prefix, i, out);
    snprintf(out->set, sizeof out->set, "%s", which);
    return make_one(p, rng, target, out);
}

int workload_passage(const struct tokenizer *tok, uint64_t seed, const char *prefix, size_t i,
                     size_t target, struct prompt *out)
{
    struct workload_params p = {.salt = "", .tok = tok, .exact = true};
    memset(out, 0, sizeof *out);
    workload_id(prefix, i, out);
    return make_one(&p, mix_seed(seed, prefix, i), target, out);
}

size_t workload_max_target(const struct workload_params *p, const char *set)
{
    if (strcmp(set, "mixed") == 0) {
        size_t a = workload_max_target(p, "short"), b = workload_max_target(p, "long");
        return a > b ? a : b;
    }
    /* the largest preset in the range, else the range's top (pick_target's two cases) */
    struct token_range r;
    size_t in_range[5];
    size_t n = presets_in_range(p, set, &r, in_range);
    return n ? in_range[n - 1] : (size_t)r.max;
}

int workload_make(const struct workload_params *p, const char *prefix, const char *set,
                  uint64_t set_seed, size_t n, struct prompt **out, char *err)
{
    *out = NULL;
    if (n == 0)
        return 0;
    struct prompt *ps = calloc(n, sizeof *ps);
    if (!ps)
        return err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (p->stop && *p->stop) {
            prompts_free(ps, n);
            err_set(err, "interrupted while synthesising prompts (%zu of %zu made)", i, n);
            return WORKLOAD_STOPPED;
        }
        if (workload_make_one(p, prefix, set, set_seed, i, &ps[i]) < 0) {
            prompts_free(ps, n);
            return err_set(err, "out of memory synthesising prompts");
        }
    }
    *out = ps;
    return 0;
}

json_t *prompt_manifest_json(const struct prompt *p)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "prompt_id", p->id, "prompt_set", p->set,
                     "target_tokens", (json_int_t)p->target, "prompt_tokens_est",
                     (json_int_t)p->est_tokens, "prompt_chars", (json_int_t)p->len, "prompt_sha256",
                     p->sha256);
}
