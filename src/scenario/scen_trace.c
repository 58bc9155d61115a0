/*
 * scen_trace.c - `--scenario trace --trace FILE` (SPEC §4.4, docs/WORKLOADS.md): a Mooncake
 * trace replayed at its own times (--trace-speedup X divides them) or, with --trace-speedup 0,
 * as fast as --concurrency allows. Each --trace-window-s of trace time is a phase (window_<k>),
 * so that the server's reuse in it is read from the responses or, where they carry none, from
 * the engine's counters over the phase; its prompts are made just before it runs and their texts
 * dropped once it ran. summary.json `trace` sets the tokens the trace could reuse beside the
 * tokens the server reused, overall and per window. The warmup before it is of the trace's own
 * shape and size (trace_warmup), not the standard scenario's.
 */
#include "scenario/scenario.h"
#include "scenario/trace.h"

#include "util/err.h"
#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The server reused at least this share of what the trace offers: it matches the trace. */
#define TRACE_MATCH_SHARE 0.9
#define TRACE_LOW_SHARE   0.5

struct window {
    size_t phase;     /* its phase index */
    size_t index;     /* k of window_k: floor(time / window) + 1 */
    size_t first, n;  /* its requests, in trace order */
    double *schedule; /* due offsets from the window's start (timed replay) */
    struct prompt *ps;
    size_t reusable;
};

struct trace_state {
    struct trace tr;
    struct window *w;
    size_t n_w;
    size_t reusable;
    const char *salt;
    uint64_t seed;
    const struct tokenizer *tok;
    const struct prompt_form *form;
};

static void trace_state_free(void *state)
{
    struct trace_state *st = state;
    if (!st)
        return;
    for (size_t i = 0; i < st->n_w; i++)
        free(st->w[i].schedule);
    free(st->w);
    trace_free(&st->tr);
    free(st);
}

/* The warmup: requests of the trace's own shape (the lengths of its first requests, none of its
 * blocks); by default at most one per request of the trace, so that it stays in proportion to
 * the trace (the standard warmup, short prompts of 256 output tokens each, once took 133 s
 * before a trace of 1.6 s). An explicit --warmup N sends N, the lengths cycling. */
static int trace_warmup(struct planner *p, struct trace_state *st, char *err)
{
    const struct scen_config *cfg = p->cfg;
    size_t n = cfg->warmup > 0 ? (size_t)cfg->warmup : 0;
    if (n > st->tr.n && !cfg->warmup_given)
        n = st->tr.n;
    if (n == 0)
        return 0;
    struct prompt *ps = calloc(n, sizeof *ps);
    if (!ps)
        return err_set(err, "out of memory");
    for (size_t k = 0; k < n; k++)
        if (trace_warmup_prompt(&st->tr, p->tok, p->warm_seed, p->salt, k, &ps[k]) < 0 ||
            workload_as_chat(&ps[k], p->form, p->tok) < 0) {
            prompts_free(ps, n);
            return err_set(err, "out of memory making the trace's warmup prompts");
        }
    if (p->add_set(p->ctx, ps, n, err) < 0) {
        prompts_free(ps, n);
        return -1;
    }
    return p->add_phase(p->ctx, "warmup", (size_t)cfg->concurrency, ps, n, false, "trace", err);
}

static int trace_plan(struct planner *p, char *err)
{
    const struct scen_config *cfg = p->cfg;
    struct trace_state *st = calloc(1, sizeof *st);
    if (!st)
        return err_set(err, "out of memory");
    p->rs->scenario_state = st;
    st->salt = p->salt;
    st->seed = p->seed;
    st->tok = p->tok;
    st->form = p->form;
    if (trace_load(cfg->trace_path, (size_t)cfg->trace_block_tokens, &st->tr, err) < 0 ||
        trace_warmup(p, st, err) < 0)
        return -1;
    st->reusable = trace_reusable(&st->tr);
    double span_ms = cfg->trace_window_s * 1000;
    const struct trace *t = &st->tr;
    st->w = calloc(t->n, sizeof *st->w); /* at most one window per request */
    if (!st->w)
        return err_set(err, "out of memory");
    for (size_t i = 0; i < t->n; i++) {
        size_t k = (size_t)floor(t->r[i].t_ms / span_ms) + 1;
        if (!st->n_w || st->w[st->n_w - 1].index != k)
            st->w[st->n_w++] = (struct window){.index = k, .first = i};
        struct window *w = &st->w[st->n_w - 1];
        w->n++;
        w->reusable += t->r[i].reusable;
    }
    bool timed = cfg->trace_speedup > 0;
    for (size_t i = 0; i < st->n_w; i++) {
        struct window *w = &st->w[i];
        char name[32];
        snprintf(name, sizeof name, "window_%zu", w->index);
        w->phase = p->rs->n_phases;
        if (p->add_phase(p->ctx, name, timed ? w->n : (size_t)cfg->concurrency, NULL, w->n, true,
                         "trace", err) < 0)
            return -1;
        if (!timed)
            continue;
        w->schedule = malloc(w->n * sizeof *w->schedule);
        if (!w->schedule)
            return err_set(err, "out of memory");
        double start_ms = (double)(w->index - 1) * span_ms;
        for (size_t k = 0; k < w->n; k++)
            w->schedule[k] = (t->r[w->first + k].t_ms - start_ms) / 1000 / cfg->trace_speedup;
        if (p->set_schedule(p->ctx, w->phase, w->schedule, w->n, err) < 0)
            return -1;
    }
    /* each prompt is its blocks, cut to the exact token count (and, sent as chat, the template's
     * markup around them) */
    p->bound(p->ctx, "trace-*", t->n, t->max_input + 16 + (p->form->chat ? 32 : 0));
    return 0;
}

static int trace_before_phase(struct planner *p, size_t i, char *err)
{
    struct trace_state *st = p->rs->scenario_state;
    struct window *w = NULL;
    for (size_t k = 0; st && k < st->n_w && !w; k++)
        if (st->w[k].phase == i)
            w = &st->w[k];
    if (!w)
        return 0; /* the warmup */
    size_t wi = (size_t)(w - st->w);
    /* the last window's prompts were sent: their texts can go (their identities stay) */
    for (size_t k = 0; wi > 0 && st->w[wi - 1].ps && k < st->w[wi - 1].n; k++)
        prompt_drop_text(&st->w[wi - 1].ps[k]);
    struct prompt *ps = calloc(w->n, sizeof *ps);
    if (!ps)
        return err_set(err, "out of memory");
    for (size_t k = 0; k < w->n; k++)
        if (trace_prompt(&st->tr, st->tok, st->seed, st->salt, w->first + k, &ps[k]) < 0 ||
            workload_as_chat(&ps[k], st->form, st->tok) < 0) {
            prompts_free(ps, w->n);
            return err_set(err, "out of memory making the trace's prompts");
        }
    if (p->add_set(p->ctx, ps, w->n, err) < 0)
        return -1;
    w->ps = ps;
    p->fill_phase(p->ctx, i, ps, w->n);
    struct phase_state *ph = &p->rs->phases[i];
    const struct scen_config *cfg = p->cfg;
    if (cfg->trace_speedup > 0 && wi > 0) {
        /* the replay's zero: when the first window's first request was due */
        const struct phase_state *first = &p->rs->phases[st->w[0].phase];
        double at_s =
            (double)(w->index - st->w[0].index) * cfg->trace_window_s / cfg->trace_speedup;
        if (first->res.t0_ns)
            ph->t0_ns = first->res.t0_ns + (uint64_t)(at_s * 1e9);
    }
    return 0;
}

/* ------------------------------------------------------------ summary */

static json_t *ratio(double a, double b)
{
    return json_real_or_null(round(a / b * 1e4) / 1e4, b > 0);
}

/* The tokens a window's requests that the phase sent could reuse (with --shard a shard's own
 * rows; else the window's). */
static size_t window_reusable(const struct trace_state *st, const struct window *w,
                              const struct phase_state *ph)
{
    if (!w->ps)
        return w->reusable;
    size_t sum = 0;
    for (size_t k = 0; k < ph->n; k++)
        sum += st->tr.r[w->first + (size_t)(ph->prompts[k] - w->ps)].reusable;
    return sum;
}

static json_t *trace_summary(const struct run_state *rs)
{
    const struct trace_state *st = rs->scenario_state;
    if (!st)
        return NULL;
    const struct scen_config *cfg = rs->cfg;
    json_t *windows = json_array();
    double reusable = 0, reused = 0, prompt = 0;
    size_t requests = 0, measured = 0;
    const char *source = NULL;
    for (size_t i = 0; i < st->n_w; i++) {
        const struct window *w = &st->w[i];
        const struct phase_state *ph = &rs->phases[w->phase];
        if (!ph->ran)
            continue;
        struct phase_reuse pr;
        phase_reuse_of(rs, w->phase, &pr);
        size_t w_reusable = window_reusable(st, w, ph);
        double r = pr.reused_tokens, pt = pr.prompt_tokens;
        const char *src = pr.source;
        bool have = src != NULL;
        size_t sent = pr.requests;
        requests += sent;
        reusable += (double)w_reusable;
        prompt += pt;
        if (have) {
            reused += r;
            measured++;
            source = source && strcmp(source, src) != 0 ? "mixed" : src;
        }
        json_t *o = json_object();
        json_put_int(o, "window", (long long)w->index);
        json_put_real(o, "start_s", (double)(w->index - 1) * cfg->trace_window_s);
        json_put_real(o, "end_s", (double)w->index * cfg->trace_window_s);
        json_put_int(o, "requests", (long long)sent);
        json_put_real(o, "prompt_tokens", pt);
        json_put_int(o, "reusable_tokens", (long long)w_reusable);
        json_put(o, "reused_tokens", have ? json_real(r) : json_null());
        json_put(o, "reuse_ratio", have ? ratio(r, (double)w_reusable) : json_null());
        json_array_append_new(windows, o);
    }
    bool have = measured > 0 && measured == json_array_size(windows);
    const char *sig;
    char text[400];
    double q = reusable > 0 ? reused / reusable : 0;
    if (json_array_size(windows) == 0) {
        sig = "unavailable";
        snprintf(text, sizeof text,
                 "no window of the trace ran (the run stopped before: see invalid_reason)");
    } else if (!have) {
        sig = "unavailable";
        snprintf(text, sizeof text,
                 "the responses carried no cached-token counts and the engine's counters had no "
                 "reused tokens%s: kvbench cannot tell what the server reused",
                 measured ? " in every window" : "");
    } else if (reusable == 0) {
        sig = "nothing_reusable";
        snprintf(text, sizeof text,
                 "no request of the trace begins with blocks an earlier one "
                 "sent: there was nothing to reuse");
    } else if (q >= TRACE_MATCH_SHARE) {
        sig = "reuse_matches_trace";
        snprintf(text, sizeof text,
                 "the server reused %.0f %% of the prompt tokens the trace could reuse", q * 100);
    } else {
        sig = q >= TRACE_LOW_SHARE ? "reuse_partial" : "reuse_below_trace";
        snprintf(text, sizeof text,
                 "the server reused %.0f %% of the prompt tokens the trace could reuse: the cache "
                 "did not keep every shared prefix until it came back (capacity, eviction), or "
                 "requests sharing a prefix ran at the same time",
                 q * 100);
    }
    json_t *o = json_object();
    json_put_str(o, "file", cfg->trace_path);
    json_put_int(o, "block_tokens", cfg->trace_block_tokens);
    json_put_real(o, "speedup", cfg->trace_speedup);
    json_put_real(o, "window_s", cfg->trace_window_s);
    json_put_int(o, "trace_requests", (long long)st->tr.n);
    json_put_int(o, "requests", (long long)requests);
    json_put_real(o, "prompt_tokens", prompt);
    json_put_real(o, "reusable_tokens", reusable);
    json_put(o, "reused_tokens", have ? json_real(reused) : json_null());
    json_put(o, "reuse_ratio", have ? ratio(reused, reusable) : json_null());
    json_put(o, "reused_source", have ? json_string(source) : json_null());
    json_put(o, "verdict", json_pack("{s:s, s:s}", "signal", sig, "interpretation", text));
    json_put(o, "windows", windows);
    return o;
}

/* A merged run's state from its shards' trace objects: a window per window_<k> phase of the
 * merged run, each with what its rows could reuse summed over the shards (the trace file itself
 * need not be on the merging machine). */
static int trace_merge_state(struct run_state *rs, const json_t *const *parts, size_t n, char *err)
{
    struct trace_state *st = calloc(1, sizeof *st);
    if (!st || !(st->w = calloc(rs->n_phases ? rs->n_phases : 1, sizeof *st->w))) {
        free(st);
        return err_set(err, "out of memory");
    }
    int rc = n ? 0 : err_set(err, "no shard's trace object");
    st->tr.n = n ? (size_t)json_get_int(parts[0], "trace_requests", 0) : 0;
    for (size_t i = 0; rc == 0 && i < rs->n_phases; i++) {
        char *end = NULL;
        const char *name = rs->phases[i].name;
        unsigned long long k = strncmp(name, "window_", 7) == 0 ? strtoull(name + 7, &end, 10) : 0;
        if (k == 0 || *end)
            continue;
        struct window *w = &st->w[st->n_w++];
        *w = (struct window){.phase = i, .index = (size_t)k};
        for (size_t p = 0; p < n; p++) {
            size_t j;
            const json_t *o;
            json_array_foreach(json_object_get(parts[p], "windows"), j, o)
            {
                if (json_get_int(o, "window", 0) == (long long)k)
                    w->reusable += (size_t)json_get_int(o, "reusable_tokens", 0);
            }
        }
    }
    if (rc < 0) {
        trace_state_free(st);
        return -1;
    }
    rs->scenario_state = st;
    return 0;
}

/* ------------------------------------------------------------ report */

static void num(struct buf *b, const json_t *o, const char *key, const char *fmt)
{
    scenario_md_num(b, o, key, fmt, "– | ");
}

static void trace_report(struct buf *b, const json_t *s, const json_t *src, const json_t *config)
{
    (void)src;
    (void)config;
    const json_t *t = json_object_get(s, "trace");
    if (!t) {
        buf_append_str(b, "No window of the trace ran.\n\n");
        return;
    }
    scenario_md_verdict(b, "trace", json_object_get(t, "verdict"));
    buf_printf(b, "%s: %lld requests sent of %lld, blocks of %lld tokens, ",
               json_get_str(t, "file", "?"), json_get_int(t, "requests", 0),
               json_get_int(t, "trace_requests", 0), json_get_int(t, "block_tokens", 0));
    double sp = json_get_num(t, "speedup", 0);
    if (sp > 0)
        buf_printf(b, "replayed at %gx the trace's speed.\n\n", sp);
    else
        buf_append_str(b, "replayed as fast as --concurrency allowed.\n\n");
    buf_append_str(b, "| window | from s | requests | prompt tokens | could reuse | reused | "
                      "reused / could |\n|---|---|---|---|---|---|---|\n");
    size_t i;
    const json_t *w;
    json_array_foreach(json_object_get(t, "windows"), i, w)
    {
        buf_printf(b, "| %lld | %g | %lld | ", json_get_int(w, "window", 0),
                   json_get_num(w, "start_s", 0), json_get_int(w, "requests", 0));
        num(b, w, "prompt_tokens", "%.0f | ");
        num(b, w, "reusable_tokens", "%.0f | ");
        num(b, w, "reused_tokens", "%.0f | ");
        num(b, w, "reuse_ratio", "%.2f |");
        buf_append_str(b, "\n");
    }
    buf_append_str(b, "| all | | ");
    buf_printf(b, "%lld | ", json_get_int(t, "requests", 0));
    num(b, t, "prompt_tokens", "%.0f | ");
    num(b, t, "reusable_tokens", "%.0f | ");
    num(b, t, "reused_tokens", "%.0f | ");
    num(b, t, "reuse_ratio", "%.2f |");
    buf_append_str(b, "\n\n*Could reuse*: tokens of a request's leading blocks that an earlier "
                      "request of the trace already sent (from the trace alone); *reused*: what "
                      "the server reported it served from its cache.\n\n");
}

static bool answers_trace(const char *phase)
{
    return strncmp(phase, "window_", 7) == 0;
}

const struct scenario SCEN_TRACE = {
    .name = "trace",
    .what = "a production trace (Mooncake JSON lines): what could be reused, what was",
    .plan = trace_plan,
    .report = trace_report,
    .before_phase = trace_before_phase,
    .extra = trace_summary,
    .extra_key = "trace",
    .merge_state = trace_merge_state,
    .free_state = trace_state_free,
    .answers = answers_trace,
    .answer_phases = "its windows",
};
