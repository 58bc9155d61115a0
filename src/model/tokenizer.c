/*
 * tokenizer.c - the heuristic and tokenizer.json behind one interface, and --tokenizer
 * resolution (heuristic | auto | PATH).
 */
#include "model/tokenizer.h"

#include "model/bpe.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/sha256.h"

#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct tokenizer HEURISTIC = {"heuristic", NULL, "", NULL, NULL};

const struct tokenizer *tokenizer_heuristic(void)
{
    return &HEURISTIC;
}

struct tokenizer *tokenizer_load(const char *path, char *err)
{
    char file[PATH_MAX];
    if (fs_is_dir(path))
        snprintf(file, sizeof file, "%s/tokenizer.json", path);
    else
        snprintf(file, sizeof file, "%s", path);
    struct buf text = BUF_INIT;
    if (fs_read_file(file, &text, (size_t)1 << 30, err) < 0) {
        buf_free(&text);
        return NULL;
    }
    char sub[ERR_LEN];
    struct bpe *b = bpe_load(buf_cstr(&text), text.len, sub);
    if (!b) {
        err_set(err, "%s: %s", file, sub);
        buf_free(&text);
        return NULL;
    }
    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        bpe_free(b);
        buf_free(&text);
        err_set(err, "out of memory");
        return NULL;
    }
    t->kind = "tokenizer.json";
    t->bpe = b;
    t->path = realpath(file, NULL);
    if (!t->path)
        t->path = strdup(file);
    /* the path and the hash name the tokenizer in config.json: without them it is not loaded */
    if (!t->path || sha256_hex(text.data, text.len, t->sha256) < 0) {
        buf_free(&text);
        tokenizer_free(t);
        err_set(err, "out of memory loading %s", file);
        return NULL;
    }
    buf_free(&text);
    return t;
}

void tokenizer_free(const struct tokenizer *t)
{
    if (!t || t == &HEURISTIC)
        return;
    struct tokenizer *m = (struct tokenizer *)t;
    bpe_free(m->bpe);
    tokserver_free(m->remote);
    free(m->path);
    free(m);
}

/* The newest snapshot of org/name in a Hugging Face cache that holds a tokenizer.json. */
static bool hf_cache_lookup(const char *model_id, char *out, size_t len)
{
    if (!model_id || !strchr(model_id, '/'))
        return false;
    /* org/name -> models--org--name */
    const char *slash = strchr(model_id, '/');
    char name[512];
    snprintf(name, sizeof name, "models--%.*s--%s", (int)(slash - model_id), model_id, slash + 1);
    const char *roots[3];
    char r1[PATH_MAX], r2[PATH_MAX], r3[PATH_MAX];
    size_t nr = 0;
    const char *hub = getenv("HF_HUB_CACHE");
    const char *hf = getenv("HF_HOME");
    const char *home = getenv("HOME");
    if (hub && *hub) {
        snprintf(r1, sizeof r1, "%s", hub);
        roots[nr++] = r1;
    }
    if (hf && *hf) {
        snprintf(r2, sizeof r2, "%s/hub", hf);
        roots[nr++] = r2;
    }
    if (home && *home) {
        snprintf(r3, sizeof r3, "%s/.cache/huggingface/hub", home);
        roots[nr++] = r3;
    }
    for (size_t i = 0; i < nr; i++) {
        char pattern[PATH_MAX + 600];
        snprintf(pattern, sizeof pattern, "%s/%s/snapshots/*/tokenizer.json", roots[i], name);
        glob_t g;
        if (glob(pattern, 0, NULL, &g) != 0)
            continue;
        time_t best_t = 0;
        const char *best = NULL;
        for (size_t k = 0; k < g.gl_pathc; k++) {
            struct stat st;
            if (stat(g.gl_pathv[k], &st) == 0 && (!best || st.st_mtime > best_t)) {
                best = g.gl_pathv[k];
                best_t = st.st_mtime;
            }
        }
        if (best)
            snprintf(out, len, "%s", best);
        globfree(&g);
        if (best)
            return true;
    }
    return false;
}

static void set_note(char *note, size_t len, const char *fmt, const char *a, const char *b)
{
    if (note && len)
        snprintf(note, len, fmt, a, b ? b : "");
}

const struct tokenizer *tokenizer_resolve(const char *spec, const char *model_id, char *note,
                                          size_t note_len, char *err)
{
    if (!spec || strcmp(spec, "heuristic") == 0) {
        set_note(note, note_len, "heuristic token counts%s%s", "", NULL);
        return &HEURISTIC;
    }
    if (strcmp(spec, "auto") != 0) {
        struct tokenizer *t = tokenizer_load(spec, err);
        if (t)
            set_note(note, note_len, "exact counts from %s%s", t->path, NULL);
        return t;
    }
    char found[PATH_MAX];
    const char *why = NULL;
    const char *env = getenv("BENCH_TOKENIZER");
    const char *mh = getenv("MODEL_HANDLE");
    if (env && *env) {
        snprintf(found, sizeof found, "%s", env);
        why = "$BENCH_TOKENIZER";
    } else if (mh && *mh && fs_exists(mh)) {
        snprintf(found, sizeof found, "%s", mh);
        why = "$MODEL_HANDLE";
    } else if (mh && *mh && hf_cache_lookup(mh, found, sizeof found)) {
        why = "the Hugging Face cache for $MODEL_HANDLE";
    } else if (hf_cache_lookup(model_id, found, sizeof found)) {
        why = "the Hugging Face cache for the served model";
    }
    if (why) {
        char sub[ERR_LEN];
        struct tokenizer *t = tokenizer_load(found, sub);
        if (t) {
            if (note && note_len)
                snprintf(note, note_len, "exact counts from %s (found through %s)", t->path, why);
            return t;
        }
        log_warn("tokenizer from %s unusable (%s); using the heuristic", why, sub);
        if (note && note_len)
            snprintf(note, note_len,
                     "heuristic token counts (the tokenizer found through %s "
                     "could not be used: %.200s)",
                     why, sub);
        return &HEURISTIC;
    }
    log_warn("no tokenizer.json found ($BENCH_TOKENIZER, $MODEL_HANDLE, Hugging Face cache%s%s); "
             "token counts use the heuristic",
             model_id ? " for " : "", model_id ? model_id : "");
    set_note(note, note_len,
             "heuristic token counts: no tokenizer.json found for %s%s (set --tokenizer PATH or "
             "$BENCH_TOKENIZER for exact counts)",
             model_id ? model_id : "the model", NULL);
    return &HEURISTIC;
}

size_t tokenizer_count(const struct tokenizer *t, const char *text, size_t len)
{
    if (t->remote)
        return tokserver_count(t->remote, text, len);
    return t->bpe ? bpe_count(t->bpe, text, len) : tok_heuristic_count(text, len);
}

size_t tokenizer_count_fast(const struct tokenizer *t, const char *text, size_t len)
{
    return t->bpe ? bpe_count(t->bpe, text, len) : tok_heuristic_count(text, len);
}

int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_ids *out)
{
    return t->bpe ? bpe_encode(t->bpe, text, len, out) : tok_heuristic_encode(text, len, out);
}

int tokenizer_decode(const struct tokenizer *t, const uint32_t *ids, size_t n, struct buf *out,
                     char *err)
{
    if (!t->bpe)
        return err_set(err, "the heuristic tokenizer's ids are hashes and cannot be decoded; "
                            "use --tokenizer PATH");
    return bpe_decode(t->bpe, ids, n, out, err);
}
