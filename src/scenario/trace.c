/*
 * trace.c - reading a Mooncake trace and making its prompts (see trace.h).
 */
#include "scenario/trace.h"

#include "util/buf.h"
#include "util/err.h"
#include "util/sha256.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lengths of a prompt's last block tried before the closest is kept (see make_text). */
#define LAST_BLOCK_TRIES 3

struct line {
    struct trace_req r;
    size_t line, first_id; /* the file's order (a stable sort), where its ids start */
};

static int by_time(const void *a, const void *b)
{
    const struct line *x = a, *y = b;
    if (x->r.t_ms != y->r.t_ms)
        return x->r.t_ms < y->r.t_ms ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return false;
    return true;
}

/* A non-negative integer member (a JSON integer, or a real with no fraction). */
static bool get_count(const json_t *o, const char *key, double max, double *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        return false;
    double x = json_number_value(v);
    if (!(x >= 0) || x > max || x != floor(x))
        return false;
    *out = x;
    return true;
}

int trace_load(const char *path, size_t block_tokens, struct trace *t, char *err)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(err, "--trace %s: %s", path, strerror(errno));
    int rc = trace_read(f, path, block_tokens, t, err);
    fclose(f);
    return rc;
}

/* The lines read so far, in file order; their block ids in the trace's id_pool. */
struct reader {
    struct line *lines;
    size_t n, cap, n_ids, cap_ids;
    const char *path;
    size_t lineno;
};

/* Room for one more line and `need` more ids. Returns 0, or -1 (err). */
static int reader_grow(struct reader *rd, struct trace *t, size_t need, char *err)
{
    if (rd->n == rd->cap) {
        size_t cap = rd->cap ? rd->cap * 2 : 256;
        struct line *nl = realloc(rd->lines, cap * sizeof *nl);
        if (!nl)
            return err_set(err, "out of memory reading the trace");
        rd->lines = nl;
        rd->cap = cap;
    }
    if (rd->n_ids + need > rd->cap_ids) {
        size_t c = rd->cap_ids ? rd->cap_ids * 2 : 4096;
        while (c < rd->n_ids + need)
            c *= 2;
        uint64_t *np = realloc(t->id_pool, c * sizeof *np);
        if (!np)
            return err_set(err, "out of memory reading the trace");
        t->id_pool = np;
        rd->cap_ids = c;
    }
    return 0;
}

/* One request of the trace, checked and kept. Returns 0, or -1 with a one-line err. */
static int reader_add(struct reader *rd, struct trace *t, const json_t *o, const char *text_err,
                      char *err)
{
    const char *path = rd->path;
    size_t lineno = rd->lineno, block_tokens = t->block_tokens;
    double ts, in, out;
    const json_t *ids = json_object_get(o, "hash_ids");
    if (!o || !json_is_object(o))
        return err_set(err, "--trace %s:%zu: not a JSON object (%s)", path, lineno,
                       o ? "another JSON value" : text_err);
    if (!json_is_number(json_object_get(o, "timestamp")) ||
        !((ts = json_number_value(json_object_get(o, "timestamp"))) >= 0) || ts > 1e15)
        return err_set(err, "--trace %s:%zu: timestamp: expected milliseconds >= 0", path, lineno);
    if (!get_count(o, "input_length", 1e9, &in) || in < 1)
        return err_set(err, "--trace %s:%zu: input_length: expected a token count >= 1", path,
                       lineno);
    if (!get_count(o, "output_length", 1e9, &out) || out < 1)
        return err_set(err, "--trace %s:%zu: output_length: expected a token count >= 1", path,
                       lineno);
    if (!json_is_array(ids))
        return err_set(err, "--trace %s:%zu: hash_ids: expected an array of block ids", path,
                       lineno);
    size_t need = ((size_t)in + block_tokens - 1) / block_tokens;
    if (json_array_size(ids) != need)
        return err_set(err,
                       "--trace %s:%zu: hash_ids has %zu ids, but input_length %.0f needs "
                       "%zu blocks of %zu tokens (--trace-block-tokens)",
                       path, lineno, json_array_size(ids), in, need, block_tokens);
    if (reader_grow(rd, t, need, err) < 0)
        return -1;
    for (size_t k = 0; k < need; k++) {
        const json_t *v = json_array_get(ids, k);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return err_set(err, "--trace %s:%zu: hash_ids[%zu]: expected an integer >= 0", path,
                           lineno, k);
        t->id_pool[rd->n_ids + k] = (uint64_t)json_integer_value(v);
    }
    struct line *l = &rd->lines[rd->n++];
    memset(l, 0, sizeof *l);
    l->r.t_ms = ts;
    l->r.input_len = (size_t)in;
    l->r.output_len = (size_t)out;
    l->r.n_ids = need;
    l->line = lineno;
    l->first_id = rd->n_ids;
    rd->n_ids += need;
    return 0;
}

/* The requests in time order, timed from the first. Returns 0, or -1 (err). */
static int reader_finish(struct reader *rd, struct trace *t, char *err)
{
    size_t n = rd->n;
    qsort(rd->lines, n, sizeof *rd->lines, by_time);
    t->r = calloc(n, sizeof *t->r);
    t->blocks = json_object();
    if (!t->r || !t->blocks)
        return err_set(err, "out of memory reading the trace");
    double t0 = rd->lines[0].r.t_ms;
    for (size_t i = 0; i < n; i++) {
        t->r[i] = rd->lines[i].r;
        t->r[i].t_ms -= t0;
        t->r[i].line = rd->lines[i].line;
        t->r[i].ids = t->id_pool + rd->lines[i].first_id;
        if (t->r[i].input_len > t->max_input)
            t->max_input = t->r[i].input_len;
    }
    t->n = n;
    return 0;
}

int trace_read(FILE *f, const char *path, size_t block_tokens, struct trace *t, char *err)
{
    memset(t, 0, sizeof *t);
    t->block_tokens = block_tokens;
    struct reader rd = {.path = path};
    char *text = NULL;
    size_t text_cap = 0;
    int rc = 0;
    while (rc == 0 && getline(&text, &text_cap, f) >= 0) {
        rd.lineno++;
        if (blank(text))
            continue;
        json_error_t je;
        json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
        rc = reader_add(&rd, t, o, je.text, err);
        json_decref(o);
    }
    if (rc == 0 && ferror(f))
        rc = err_set(err, "--trace %s: %s", path, strerror(errno));
    if (rc == 0 && rd.n == 0)
        rc = err_set(err, "--trace %s: no requests in the file", path);
    free(text);
    if (rc == 0)
        rc = reader_finish(&rd, t, err);
    free(rd.lines);
    if (rc < 0)
        trace_free(t);
    return rc;
}

/* Tokens of block k of request r. */
static size_t block_len(const struct trace *t, const struct trace_req *r, size_t k)
{
    return k + 1 < r->n_ids ? t->block_tokens : r->input_len - k * t->block_tokens;
}

/* The identity of a request's first k+1 blocks: its ids chained, as an engine's block hashes
 * chain the prefix (an id seen at another position is another block to an engine). */
static uint64_t chain(uint64_t h, uint64_t id)
{
    h ^= id + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

size_t trace_reusable(struct trace *t)
{
    json_t *seen = json_object(); /* prefix chain -> the longest last block of it sent */
    size_t total = 0;
    char key[24];
    for (size_t i = 0; i < t->n; i++) {
        struct trace_req *r = &t->r[i];
        r->reusable = 0;
        bool leading = true;
        uint64_t h = 0;
        for (size_t k = 0; k < r->n_ids; k++) {
            h = chain(h, r->ids[k]);
            snprintf(key, sizeof key, "%" PRIx64, h);
            size_t len = block_len(t, r, k);
            size_t had = (size_t)json_integer_value(json_object_get(seen, key));
            if (leading && had >= len)
                r->reusable += len;
            else
                leading = false; /* unseen, or seen shorter: the shared prefix ends here */
            if (had < len)
                json_object_set_new(seen, key, json_integer((json_int_t)len));
        }
        total += r->reusable;
    }
    json_decref(seen);
    return total;
}

/* FNV-1a of the salt: mixed into the blocks' seed, so that another run's blocks differ. */
static uint64_t salt_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Append a block to b: the passage (s, prefix, id) of len tokens. A full block of the trace's
 * own is kept by id (keep), so that each is made once. */
static int append_block(struct trace *t, const struct tokenizer *tok, uint64_t s,
                        const char *prefix, uint64_t id, size_t len, bool keep, struct buf *b)
{
    char key[24];
    keep = keep && len == t->block_tokens;
    snprintf(key, sizeof key, "%" PRIu64, id);
    const json_t *have = keep ? json_object_get(t->blocks, key) : NULL;
    if (have) {
        buf_append(b, json_string_value(have), json_string_length(have));
        return buf_failed(b) ? -1 : 0;
    }
    struct prompt p;
    /* a shorter block is a prefix of the full one (the same passage, cut sooner) */
    if (workload_passage(tok, s, prefix, (size_t)id, len, &p) < 0)
        return -1;
    buf_append(b, p.text, p.len);
    int rc = buf_failed(b) ? -1 : 0;
    if (rc == 0 && keep)
        rc = json_object_set_new(t->blocks, key, json_stringn_nocheck(p.text, p.len));
    free(p.text);
    return rc;
}

static size_t distance(size_t a, size_t b)
{
    return a > b ? a - b : b - a;
}

/* The text of a prompt of r's lengths into b, and its token count by tok into *count: r's
 * blocks (warm: as many fresh ones, of a prefix no block of the trace has), the last one tuned.
 * Every block begins with a newline, and a tokenizer may join it with the end of the block
 * before (Llama 3 reads "." "\n" as one token ".\n", and ".\n" "\n" as ".\n\n"): a prompt of exact
 * blocks is then a token short per join. So the last block, which nothing follows, is made
 * longer by what is missing (or shorter by what is over), and the closest length kept.
 * Returns 0 or -1 (out of memory). */
static int make_text(struct trace *t, const struct tokenizer *tok, uint64_t s,
                     const struct trace_req *r, bool warm, size_t warm_index, struct buf *b,
                     size_t *count)
{
    const char *prefix = warm ? "trace-warmup" : "trace-block";
    size_t last = r->n_ids - 1;
    for (size_t k = 0; k < last; k++) {
        uint64_t id = warm ? ((uint64_t)warm_index << 32) | k : r->ids[k];
        if (append_block(t, tok, s, prefix, id, t->block_tokens, !warm, b) < 0)
            return -1;
    }
    uint64_t last_id = warm ? ((uint64_t)warm_index << 32) | last : r->ids[last];
    size_t want = r->input_len, head = b->len, len = block_len(t, r, last);
    size_t tried = 0, best_len = len, best = 0;
    for (int round = 0; round < LAST_BLOCK_TRIES; round++) {
        buf_truncate(b, head);
        if (append_block(t, tok, s, prefix, last_id, len, !warm, b) < 0)
            return -1;
        tried = len;
        size_t n = tokenizer_count(tok, b->data, b->len);
        if (round == 0 || distance(n, want) < distance(best, want)) {
            best = n;
            best_len = len;
        }
        if (n == want)
            break;
        if (n < want)
            len += want - n;
        else if (n - want < len)
            len -= n - want;
        else
            break;
    }
    *count = best;
    if (tried == best_len)
        return 0;
    buf_truncate(b, head);
    return append_block(t, tok, s, prefix, last_id, best_len, !warm, b);
}

/* Request i's prompt, or (warm) warmup k's of request i's lengths. */
static int make_prompt(struct trace *t, const struct tokenizer *tok, uint64_t seed,
                       const char *salt, size_t i, bool warm, size_t k, struct prompt *out)
{
    const struct trace_req *r = &t->r[i];
    uint64_t s = seed ^ salt_hash(salt);
    if (!warm && (s != t->blocks_seed || tok != t->blocks_tok ||
                  json_object_size(t->blocks) >= TRACE_BLOCK_CACHE_MAX)) {
        /* another seed's or tokenizer's blocks, or as many as memory should hold: made again
         * when needed */
        json_object_clear(t->blocks);
        t->blocks_seed = s;
        t->blocks_tok = tok;
    }
    struct buf b = BUF_INIT;
    size_t count = 0;
    memset(out, 0, sizeof *out);
    if (make_text(t, tok, s, r, warm, k, &b, &count) < 0 || !(out->text = buf_detach(&b))) {
        buf_free(&b);
        return -1;
    }
    out->len = strlen(out->text);
    if (warm)
        workload_id("warmup", k, out);
    else
        workload_id("trace", i, out);
    snprintf(out->set, sizeof out->set, "trace");
    out->target = r->input_len;
    out->est_tokens = count;
    out->max_tokens = (long long)r->output_len;
    return sha256_hex(out->text, out->len, out->sha256) < 0 ? -1 : 0;
}

int trace_prompt(struct trace *t, const struct tokenizer *tok, uint64_t seed, const char *salt,
                 size_t i, struct prompt *out)
{
    return make_prompt(t, tok, seed, salt, i, false, 0, out);
}

int trace_warmup_prompt(struct trace *t, const struct tokenizer *tok, uint64_t seed,
                        const char *salt, size_t k, struct prompt *out)
{
    return make_prompt(t, tok, seed, salt, k % t->n, true, k, out);
}

int trace_check_wait(const struct trace *t, const char *path, double speedup, double max_wait_s,
                     char *err)
{
    if (!(speedup > 0))
        return 0;
    for (size_t i = 0; i < t->n; i++) {
        double wait_s = t->r[i].t_ms / 1000.0 / speedup;
        if (wait_s > max_wait_s)
            return err_set(err,
                           "--trace %s:%zu: timestamp %.0f ms after the first request: at "
                           "--trace-speedup %g it would be sent after %.0f s, past "
                           "--trace-max-wait-s %g",
                           path, t->r[i].line, t->r[i].t_ms, speedup, wait_s, max_wait_s);
    }
    return 0;
}

void trace_free(struct trace *t)
{
    free(t->r);
    free(t->id_pool);
    json_decref(t->blocks);
    memset(t, 0, sizeof *t);
}
