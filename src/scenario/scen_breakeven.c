/*
 * scen_breakeven.c - `--scenario breakeven` (docs/WORKLOADS.md): above which context length
 * does bringing KV back from a tier beat recomputing it? For each length L of a ladder
 * (--breakeven-lengths) and each repeat (--breakeven-repeats), one prompt of L tokens, never
 * seen before (its salt names the run, the length and the repeat), is sent alone, streamed, with
 * a small max_tokens, so that its TTFT is its prefill or onboard time:
 *     L<L>_cold_r<k>       the first time: computed
 *     L<L>_prime_r<k>      at once again, not measured: the second sighting, on which an
 *                          engine may offload the prefix (KVBM's disk filter), a cost of its own
 *     L<L>_device_r<k>     at once again: from device memory
 *     L<L>_fill_host_r<k>  filler (not measured) past the device tier's capacity
 *     L<L>_host_r<k>       again: from host memory
 *     L<L>_fill_disk_r<k>  filler past the host tier's capacity
 *     L<L>_disk_r<k>       again: from disk
 * The fillers are sized from the tiers' capacities (struct tier_caps), so a tier whose capacity
 * is unknown, off (kv mode, 0 blocks) or too small for the prefix and its filler is skipped with
 * the reason, as is a length past the input ceiling or the device tier.
 *
 * Each warm row is checked against the engine's counters over its phase (it ran alone): it is
 * `verified` when at least half of its prompt was reused and 90 % of what was reused came from
 * the tier it claims (reused_tokens_<tier>, else onboard_blocks_<tier> x block size, the device
 * share being what the other tiers did not bring); `false` when the counters show otherwise;
 * null, with the reason, when they cannot tell. Only verified rows enter a warm tier's fit; a
 * cold row enters unless it is shown to have been reused.
 *
 * TTFT is fitted against the prompt's tokens per source by least squares (analysis/fit.h), over
 * each length's median of the repeats (one disturbed repeat does not move the line): the cold
 * line gives the prefill cost per token and the fixed cost, each warm line the onboard cost.
 * The break-even length of a tier is where its line falls below the cold one, told as "every
 * measured length", "none of the measured lengths" or the crossing (with an interval from the
 * fits' standard errors); with it the speed-up cold / warm of the medians at each length.
 */
#include "scenario/scenario.h"

#include "analysis/fit.h"
#include "analysis/stats.h"
#include "util/err.h"
#include "util/json.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* max_tokens of every request: the first token is what is timed */
#define BK_MAX_TOKENS 2
/* a warm row is verified when this share of its prompt was reused ... */
#define BK_REUSED_SHARE 0.5
/* ... and this share of what was reused came from the tier it claims */
#define BK_CLAIM_SHARE 0.9

enum { BK_COLD, BK_DEVICE, BK_HOST, BK_DISK, BK_NSRC };
static const char *const BK_SRC[BK_NSRC] = {"cold", "device", "host", "disk"};

struct bk_rung {
    long long length;
    bool measured;
    char why[200]; /* why the length is not measured */
    bool on[BK_NSRC];
    char off[BK_NSRC][240];         /* why a source is skipped at this length */
    long long fill_tokens[BK_NSRC]; /* host, disk: the filler sent before them */
    long long fill_each;            /* tokens per filler prompt */
};

/* A measured phase: which length, source and repeat. */
struct bk_phase {
    size_t phase, rung, repeat;
    int src;
};

struct bk_state {
    struct bk_rung rungs[SCEN_LENGTHS_MAX];
    size_t n_rungs, repeats;
    long long ceiling, block_tokens, blocks[TIER_COUNT], max_tokens;
    struct bk_phase *ph;
    size_t n_ph;
};

static void bk_free(void *state)
{
    struct bk_state *st = state;
    if (st)
        free(st->ph);
    free(st);
}

/* ------------------------------------------------------------ plan */

static long long blocks_of(long long tokens, long long bt)
{
    return (tokens + bt - 1) / bt;
}

/* A tier needs the capacities it is sized from. Returns NULL when src may run at all. */
static const char *tier_off(const struct scen_config *cfg, const struct bk_state *st, int src,
                            char *why, size_t cap)
{
    if (src == BK_HOST && cfg->kv_mode == KV_MODE_OFF)
        snprintf(why, cap, "kv mode off: no host tier");
    else if (src == BK_DISK && cfg->kv_mode != KV_MODE_CPU_DISK)
        snprintf(why, cap, "kv mode %s: no disk tier", kv_mode_name(cfg->kv_mode));
    else if (src >= BK_HOST && st->blocks[src - 1] == 0)
        snprintf(why, cap, "the %s tier has 0 blocks", src == BK_HOST ? "host" : "disk");
    else if (src >= BK_HOST && (st->blocks[TIER_DEVICE] < 0 || st->block_tokens <= 0))
        snprintf(why, cap,
                 "the device tier's capacity is unknown, so the filler that pushes the prefix out "
                 "of it cannot be sized (give --tier-blocks and --kv-block-tokens)");
    else if (src == BK_DISK && st->blocks[TIER_HOST] < 0)
        snprintf(why, cap,
                 "the host tier's capacity is unknown, so the filler that pushes the prefix out "
                 "of it cannot be sized (give --tier-blocks)");
    else
        return NULL;
    return why;
}

/* Which sources a length can measure, and its fillers. */
static void bound_rung(const struct scen_config *cfg, struct bk_state *st, struct bk_rung *g)
{
    long long bt = st->block_tokens, g1 = st->blocks[TIER_DEVICE], g2 = st->blocks[TIER_HOST],
              g3 = st->blocks[TIER_DISK];
    if (g->length > st->ceiling) {
        snprintf(g->why, sizeof g->why,
                 "past the input ceiling of %lld tokens (the server's context limit or "
                 "--engine-max-input-tokens, less --max-tokens and the margin)",
                 st->ceiling);
        return;
    }
    long long need = bt > 0 ? blocks_of(g->length, bt) + blocks_of(st->max_tokens, bt) : 0;
    if (bt > 0 && g1 > 0 && need > g1) {
        snprintf(g->why, sizeof g->why, "does not fit the device tier (%lld blocks of %lld tokens)",
                 g1, bt);
        return;
    }
    g->measured = g->on[BK_COLD] = g->on[BK_DEVICE] = true;
    long long each = bt > 0 && g1 > 0 ? (g1 - blocks_of(st->max_tokens, bt) - 1) * bt : 0;
    if (each > st->ceiling)
        each = st->ceiling / (bt > 0 ? bt : 1) * (bt > 0 ? bt : 1);
    g->fill_each = each;
    for (int s = BK_HOST; s <= BK_DISK; s++) {
        if (tier_off(cfg, st, s, g->off[s], sizeof g->off[s]))
            continue;
        /* past the device tier (host), or past the host tier and so the device's too (disk) */
        long long past = s == BK_HOST ? g1 : (g2 > g1 ? g2 : g1);
        long long fill = past + (past / 16 > 2 ? past / 16 : 2);
        long long p = blocks_of(g->length, bt);
        if (each < bt)
            snprintf(g->off[s], sizeof g->off[s],
                     "the device tier (%lld blocks) is too small for a filler prompt", g1);
        else if (s == BK_HOST && fill + p > g2)
            snprintf(g->off[s], sizeof g->off[s],
                     "the host tier (%lld blocks) cannot hold the prefix (%lld blocks) and the "
                     "filler that pushes it out of the device tier (%lld blocks)",
                     g2, p, fill);
        else if (s == BK_DISK && g3 > 0 && p > g3)
            snprintf(g->off[s], sizeof g->off[s],
                     "the disk tier (%lld blocks) cannot hold the prefix (%lld blocks)", g3, p);
        else {
            g->on[s] = true;
            g->fill_tokens[s] = fill * bt;
        }
    }
}

/* The ladder against the ceiling and the tiers. */
static void bound_ladder(const struct planner *p, struct bk_state *st)
{
    const struct scen_config *cfg = p->cfg;
    long long gp_max = cfg->gp ? cfg->gp->max_tokens : 0;
    st->max_tokens = gp_max > 0 && gp_max < BK_MAX_TOKENS ? gp_max : BK_MAX_TOKENS;
    st->ceiling = cfg->input_ceiling > 0 ? cfg->input_ceiling : LLONG_MAX;
    json_int_t srv = p->rs ? json_integer_value(json_object_get(p->rs->ctx_limit, "tokens")) : 0;
    if (srv > 0 && srv - gp_max < st->ceiling)
        st->ceiling = srv - gp_max;
    for (int t = 0; t < TIER_COUNT; t++)
        st->blocks[t] = p->caps ? p->caps->blocks[t] : -1;
    st->block_tokens = p->caps ? p->caps->block_tokens : 0;
    st->repeats = cfg->breakeven_repeats > 0 ? (size_t)cfg->breakeven_repeats : 1;
    st->n_rungs = cfg->n_breakeven_lengths;
    for (size_t k = 0; k < st->n_rungs; k++) {
        st->rungs[k].length = cfg->breakeven_lengths[k];
        bound_rung(cfg, st, &st->rungs[k]);
    }
}

/* n prompts of `tokens` each (the last `last` tokens when last > 0), never seen before: the salt
 * names the run and the prefix. Handed to the run. */
static struct prompt *make_prompts(struct planner *p, const struct bk_state *st, const char *prefix,
                                   size_t n, long long tokens, long long last, char *err)
{
    char salt[400];
    snprintf(salt, sizeof salt, "%s%s%s/%s", p->salt ? p->salt : "", p->salt && *p->salt ? "/" : "",
             p->rs ? p->rs->run_id : "", prefix);
    struct prompt *ps = calloc(n, sizeof *ps);
    if (!ps) {
        err_set(err, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        long long t = i + 1 == n && last > 0 ? last : tokens;
        struct workload_params wp = {.seed = p->seed,
                                     .short_range = {t, t},
                                     .long_range = {t, t},
                                     .salt = salt,
                                     .form = *p->form,
                                     .tok = p->tok,
                                     .exact = true};
        if (workload_make_one(&wp, prefix, "long", p->seed, i, &ps[i]) < 0) {
            prompts_free(ps, n);
            err_set(err, "out of memory");
            return NULL;
        }
        ps[i].max_tokens = st->max_tokens;
    }
    if (p->add_set(p->ctx, ps, n, err) < 0)
        return NULL; /* add_set freed them */
    return ps;
}

static int add_measured(struct planner *p, struct bk_state *st, size_t k, size_t r, int src,
                        struct prompt *pr, char *err)
{
    char name[32];
    snprintf(name, sizeof name, "L%lld_%s_r%zu", st->rungs[k].length, BK_SRC[src], r + 1);
    st->ph[st->n_ph] =
        (struct bk_phase){.phase = p->rs->n_phases, .rung = k, .repeat = r, .src = src};
    if (p->add_phase(p->ctx, name, 1, pr, 1, true, "breakeven", err) < 0)
        return -1;
    st->n_ph++;
    return 0;
}

/* The filler before src: fresh prompts adding up to the rung's filler tokens. */
static int add_filler(struct planner *p, struct bk_state *st, size_t k, size_t r, int src,
                      char *err)
{
    const struct bk_rung *g = &st->rungs[k];
    long long total = g->fill_tokens[src], each = g->fill_each;
    size_t n = (size_t)((total + each - 1) / each);
    long long last = total - (long long)(n - 1) * each;
    if (last < st->block_tokens)
        last = st->block_tokens;
    char prefix[24], name[32];
    snprintf(prefix, sizeof prefix, "bk-L%lld-r%zu-f%s", g->length, r + 1, BK_SRC[src]);
    snprintf(name, sizeof name, "L%lld_fill_%s_r%zu", g->length, BK_SRC[src], r + 1);
    struct prompt *f = make_prompts(p, st, prefix, n, each, last, err);
    if (!f || p->add_phase(p->ctx, name, 1, f, n, false, "breakeven_filler", err) < 0)
        return -1;
    return 0;
}

static int plan_rung(struct planner *p, struct bk_state *st, size_t k, size_t r, char *err)
{
    const struct bk_rung *g = &st->rungs[k];
    char prefix[24];
    snprintf(prefix, sizeof prefix, "bk-L%lld-r%zu", g->length, r + 1);
    struct prompt *pr = make_prompts(p, st, prefix, 1, g->length, 0, err);
    char prime[32];
    snprintf(prime, sizeof prime, "L%lld_prime_r%zu", g->length, r + 1);
    /* the second sighting, not measured: an engine may offload the prefix then (KVBM writes a
     * block to disk when it is seen twice), a cost that is not the device tier's */
    if (!pr || add_measured(p, st, k, r, BK_COLD, pr, err) < 0 ||
        p->add_phase(p->ctx, prime, 1, pr, 1, false, "breakeven_filler", err) < 0 ||
        add_measured(p, st, k, r, BK_DEVICE, pr, err) < 0)
        return -1;
    for (int s = BK_HOST; s <= BK_DISK; s++)
        if (g->on[s] &&
            (add_filler(p, st, k, r, s, err) < 0 || add_measured(p, st, k, r, s, pr, err) < 0))
            return -1;
    return 0;
}

static int bk_plan(struct planner *p, char *err)
{
    if (!p->rs)
        return err_set(err, "breakeven: no run state");
    struct bk_state *st = calloc(1, sizeof *st);
    if (!st)
        return err_set(err, "out of memory");
    p->rs->scenario_state = st;
    bound_ladder(p, st);
    if (st->n_rungs == 0)
        return err_set(err, "--breakeven-lengths: no length given");
    st->ph = calloc(st->n_rungs * st->repeats * BK_NSRC, sizeof *st->ph);
    if (!st->ph)
        return err_set(err, "out of memory");
    size_t measured = 0;
    for (size_t k = 0; k < st->n_rungs; k++)
        measured += st->rungs[k].measured;
    if (measured == 0)
        return err_set(err, "breakeven: no length of the ladder can be measured (%lld: %s)",
                       st->rungs[0].length, st->rungs[0].why);
    /* a repeat goes through the whole ladder, so that a drift spreads over every length */
    for (size_t r = 0; r < st->repeats; r++)
        for (size_t k = 0; k < st->n_rungs; k++)
            if (st->rungs[k].measured && plan_rung(p, st, k, r, err) < 0)
                return -1;
    return 0;
}

/* ------------------------------------------------------------ summary */

#define BK_REPEATS_MAX 20

/* What the rows give the fits: per source and length, the in-fit TTFTs, and the points. */
struct bk_data {
    double v[BK_NSRC][SCEN_LENGTHS_MAX][BK_REPEATS_MAX];
    size_t nv[BK_NSRC][SCEN_LENGTHS_MAX];
    double x[SCEN_LENGTHS_MAX]; /* the prompt's tokens at each length */
    struct linfit fit[BK_NSRC];
};

/* What the engine's counters over a phase say of each tier's share of the reused tokens. */
struct bk_tiers {
    double reused, tok[3];
    bool reused_known, known[3];
};

static void read_tiers(const json_t *ed, long long bt, double cached, struct bk_tiers *t)
{
    static const char *const REUSED[3] = {"reused_tokens_device", "reused_tokens_host",
                                          "reused_tokens_disk"};
    static const char *const ONBOARD[3] = {NULL, "onboard_blocks_host", "onboard_blocks_disk"};
    memset(t, 0, sizeof *t);
    t->reused_known = cached >= 0 || json_get_num_strict(ed, "reused_tokens", &t->reused);
    if (cached >= 0)
        t->reused = cached;
    for (int k = 0; k < 3; k++) {
        double b;
        t->known[k] = json_get_num_strict(ed, REUSED[k], &t->tok[k]);
        if (!t->known[k] && ONBOARD[k] && bt > 0 && json_get_num_strict(ed, ONBOARD[k], &b)) {
            t->tok[k] = b * (double)bt;
            t->known[k] = true;
        }
    }
    if (!t->known[0] && t->known[1] && t->known[2] && t->reused_known) {
        double d = t->reused - t->tok[1] - t->tok[2];
        t->tok[0] = d > 0 ? d : 0;
        t->known[0] = true;
    }
}

/* 1 verified, 0 shown otherwise, -1 cannot tell; why says which. */
static int verify(int src, double prompt, const struct bk_tiers *t, char *why, size_t cap)
{
    static const char *const TIER[3] = {"device", "host", "disk"};
    if (!t->reused_known) {
        snprintf(why, cap,
                 "neither the response (cached tokens) nor the engine's counters say "
                 "what was reused");
        return -1;
    }
    if (src == BK_COLD) {
        bool cold = t->reused <= 0.1 * prompt;
        snprintf(why, cap,
                 cold ? "%.0f of %.0f prompt tokens reused: computed"
                      : "%.0f of %.0f prompt tokens reused: not cold",
                 t->reused, prompt);
        return cold;
    }
    if (t->reused < BK_REUSED_SHARE * prompt) {
        snprintf(why, cap, "only %.0f of %.0f prompt tokens were reused: recomputed, not served",
                 t->reused, prompt);
        return 0;
    }
    int k = src - BK_DEVICE;
    if (!t->known[k]) {
        snprintf(why, cap,
                 "%.0f tokens reused, but the engine does not say from which tier (no "
                 "reused-token or onboarded-block counter for it)",
                 t->reused);
        return -1;
    }
    bool ok = t->tok[k] >= BK_CLAIM_SHARE * t->reused;
    snprintf(why, cap, "%s%.0f of %.0f reused tokens came from the %s tier", ok ? "" : "only ",
             t->tok[k], t->reused, TIER[k]);
    return ok;
}

static json_t *tri_json(int v)
{
    return v < 0 ? json_null() : json_boolean(v);
}

static json_t *row_json(const struct run_state *rs, const struct bk_state *st,
                        const struct bk_phase *m, struct bk_data *d)
{
    const struct phase_state *ph = &rs->phases[m->phase];
    const struct req_result *q = ph->res.reqs && ph->res.n ? &ph->res.reqs[0] : NULL;
    double x = q && q->prompt ? (double)q->prompt->est_tokens : (double)st->rungs[m->rung].length;
    double prompt = q && q->usage_prompt > 0 ? (double)q->usage_prompt : x;
    double ttft = q && q->ok ? q->ttft_ms : NAN;
    double cached = q && q->ok && q->cached >= 0 ? (double)q->cached : -1;
    struct bk_tiers t;
    read_tiers(json_object_get(ph->kv_delta, "engine_delta"), st->block_tokens, cached, &t);
    char why[240];
    int v = verify(m->src, prompt, &t, why, sizeof why);
    if (!q || !q->ok)
        snprintf(why, sizeof why, "the request failed: %s", q && q->error ? q->error : "not sent");
    bool in_fit = isfinite(ttft) && (m->src == BK_COLD ? v != 0 : v == 1);
    if (in_fit) {
        size_t *n = &d->nv[m->src][m->rung];
        if (*n < BK_REPEATS_MAX)
            d->v[m->src][m->rung][(*n)++] = ttft;
        d->x[m->rung] = x;
    }
    json_t *o = json_pack("{s:s, s:I, s:I, s:s}", "phase", ph->name, "length",
                          (json_int_t)st->rungs[m->rung].length, "repeat",
                          (json_int_t)m->repeat + 1, "source", BK_SRC[m->src]);
    json_put_real(o, "prompt_tokens", prompt);
    json_put_real(o, "ttft_ms", isfinite(ttft) ? round(ttft * 1000) / 1000 : NAN);
    json_put(o, "cached_tokens", json_real_or_null(cached, cached >= 0));
    json_t *tiers = json_object();
    static const char *const TIER[3] = {"device", "host", "disk"};
    for (int k = 0; k < 3; k++)
        json_put(tiers, TIER[k], json_real_or_null(t.tok[k], t.known[k]));
    json_put(o, "reused_tokens_by_tier", tiers);
    json_put(o, "verified", q && q->ok ? tri_json(v) : json_false());
    json_put_str(o, "evidence", why);
    json_put(o, "in_fit", json_boolean(in_fit));
    return o;
}

static json_t *fit_json(const struct linfit *f)
{
    json_t *o = json_pack("{s:I, s:b}", "lengths", (json_int_t)f->n, "ok", f->ok);
    if (!f->ok)
        return o;
    double t = stats_t975((double)f->n - 2);
    json_put_real(o, "fixed_ms", round_to(f->a, 4));
    json_put_real(o, "fixed_ms_se", round_to(f->se_a, 4));
    json_put_real(o, "per_token_us", round_to(f->b * 1000, 4));
    json_put_real(o, "per_token_us_se", round_to(f->se_b * 1000, 4));
    json_put(o, "per_token_us_ci95",
             isfinite(t) && isfinite(f->se_b)
                 ? json_pack("[f, f]", round_to((f->b - t * f->se_b) * 1000, 4),
                             round_to((f->b + t * f->se_b) * 1000, 4))
                 : json_null());
    json_put_real(o, "r2", round_to(f->r2, 4));
    return o;
}

static double median_of(const double *v, size_t n)
{
    double s[BK_REPEATS_MAX];
    memcpy(s, v, n * sizeof *s);
    struct dstats ds;
    stats_compute(s, n, &ds);
    return ds.p50;
}

/* The speed-up cold / warm of the medians at each length both measured, with the interval of
 * the ratio (Welch's t on the logs) where each side has two repeats or more. */
static json_t *speedups(const struct bk_state *st, const struct bk_data *d, int src)
{
    json_t *a = json_array();
    for (size_t k = 0; k < st->n_rungs; k++) {
        size_t nc = d->nv[BK_COLD][k], nw = d->nv[src][k];
        if (!nc || !nw)
            continue;
        double c = median_of(d->v[BK_COLD][k], nc), w = median_of(d->v[src][k], nw);
        json_t *o = json_pack("{s:I, s:f, s:f}", "length", (json_int_t)st->rungs[k].length,
                              "cold_ms", round_to(c, 3), "warm_ms", round_to(w, 3));
        json_put(o, "speedup", json_real_or_null(round_to(c / w, 3), w > 0));
        struct ratio_ci ci;
        json_put(o, "speedup_ci95",
                 stats_log_ratio_ci(d->v[BK_COLD][k], nc, d->v[src][k], nw, &ci) == 0
                     ? json_pack("[f, f]", round_to(ci.lo, 3), round_to(ci.hi, 3))
                     : json_null());
        json_array_append_new(a, o);
    }
    return a;
}

/* A warm tier against cold: where onboarding beats recomputing, by the fitted lines at the
 * lengths both measured; with the speed-up at each length. */
static json_t *break_even_json(const struct bk_state *st, const struct bk_data *d, int src,
                               struct breakeven *be)
{
    double xs[SCEN_LENGTHS_MAX];
    size_t n = 0;
    for (size_t k = 0; k < st->n_rungs; k++)
        if (d->nv[BK_COLD][k] && d->nv[src][k])
            xs[n++] = d->x[k];
    fit_breakeven(&d->fit[src], &d->fit[BK_COLD], xs, n, be);
    json_t *o = json_pack("{s:s}", "kind", breakeven_kind_name(be->kind));
    bool cross = be->kind == BE_FROM || be->kind == BE_BELOW;
    json_put(o, "length_tokens", json_real_or_null(round(be->crossing), cross));
    json_put(o, "crossing_tokens", json_real_or_null(round(be->crossing), isfinite(be->crossing)));
    json_put(o, "crossing_ci95",
             isfinite(be->lo) ? json_pack("[f, f]", round(be->lo), round(be->hi)) : json_null());
    json_put(o, "measured_tokens", n ? json_pack("[f, f]", xs[0], xs[n - 1]) : json_null());
    json_put(o, "speedup", speedups(st, d, src));
    return o;
}

/* One tier's break-even in words: "every measured length (1024–8192 tokens)". */
static void be_words(const struct breakeven *be, const json_t *o, char *out, size_t cap)
{
    const json_t *m = json_object_get(o, "measured_tokens");
    double lo = json_number_value(json_array_get(m, 0)),
           hi = json_number_value(json_array_get(m, 1));
    switch (be->kind) {
    case BE_EVERY:
        snprintf(out, cap, "at every measured length (%.0f–%.0f tokens)", lo, hi);
        break;
    case BE_NONE:
        snprintf(out, cap, "at none of the measured lengths (%.0f–%.0f tokens)", lo, hi);
        break;
    case BE_FROM:
        snprintf(out, cap, "from about %.0f tokens on (measured %.0f–%.0f)", be->crossing, lo, hi);
        break;
    case BE_BELOW:
        snprintf(out, cap, "below about %.0f tokens only (measured %.0f–%.0f)", be->crossing, lo,
                 hi);
        break;
    default:
        snprintf(out, cap, "cannot tell (too few verified lengths to fit)");
    }
}

static json_t *bk_verdict(const struct bk_data *d, const json_t *be_all,
                          const struct breakeven be[BK_NSRC])
{
    static const char *const SIG[] = {"unavailable", "offload_pays", "offload_does_not_pay",
                                      "offload_pays_from_length", "offload_pays_below_length"};
    char text[900];
    int w = 0;
    int deepest = -1;
    for (int s = BK_DISK; s >= BK_HOST; s--)
        if (be[s].kind != BE_UNKNOWN && deepest < 0)
            deepest = s;
    if (!d->fit[BK_COLD].ok) {
        snprintf(text, sizeof text,
                 "the cold (recomputed) TTFTs could not be fitted: fewer than "
                 "two measured lengths");
        return json_pack("{s:s, s:s}", "signal", "unavailable", "interpretation", text);
    }
    w = snprintf(text, sizeof text, "prefill %.2f µs/token", d->fit[BK_COLD].b * 1000);
    for (int s = BK_HOST; s <= BK_DISK && w > 0 && (size_t)w < sizeof text; s++) {
        char words[200];
        const json_t *o = json_object_get(be_all, BK_SRC[s]);
        if (!o)
            continue;
        be_words(&be[s], o, words, sizeof words);
        w += snprintf(text + w, sizeof text - (size_t)w,
                      "; from %s (%s): onboarding beats "
                      "recomputing %s",
                      BK_SRC[s], d->fit[s].ok ? "fitted" : "not fitted", words);
        if (d->fit[s].ok && w > 0 && (size_t)w < sizeof text)
            w += snprintf(text + w, sizeof text - (size_t)w, ", onboard %.2f µs/token",
                          d->fit[s].b * 1000);
    }
    if (deepest < 0 && w > 0 && (size_t)w < sizeof text)
        snprintf(text + w, sizeof text - (size_t)w,
                 "; no offload tier was measured and verified, so none is claimed");
    return json_pack("{s:s, s:s?, s:s}", "signal",
                     deepest < 0 ? "unavailable" : SIG[be[deepest].kind], "tier",
                     deepest < 0 ? NULL : BK_SRC[deepest], "interpretation", text);
}

/* The ladder as planned: each length measured or why not, and each source skipped there. */
static json_t *ladder_json(const struct bk_state *st)
{
    json_t *a = json_array();
    for (size_t k = 0; k < st->n_rungs; k++) {
        const struct bk_rung *g = &st->rungs[k];
        json_t *o =
            json_pack("{s:I, s:b}", "length", (json_int_t)g->length, "measured", g->measured);
        if (!g->measured) {
            json_put_str(o, "reason", g->why);
        } else {
            json_t *sk = json_object();
            for (int s = BK_HOST; s <= BK_DISK; s++)
                if (!g->on[s])
                    json_put_str(sk, BK_SRC[s], g->off[s]);
            json_put(o, "skipped", sk);
            json_put_int(o, "filler_host_tokens", g->fill_tokens[BK_HOST]);
            json_put_int(o, "filler_disk_tokens", g->fill_tokens[BK_DISK]);
        }
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *bk_summary(const struct run_state *rs)
{
    const struct bk_state *st = rs->scenario_state;
    struct bk_data *d = st ? calloc(1, sizeof *d) : NULL;
    if (!d)
        return NULL;
    json_t *rows = json_array();
    for (size_t i = 0; i < st->n_ph; i++)
        if (rs->phases[st->ph[i].phase].ran)
            json_array_append_new(rows, row_json(rs, st, &st->ph[i], d));
    json_t *fits = json_object(), *be_all = json_object();
    struct breakeven be[BK_NSRC];
    memset(be, 0, sizeof be);
    for (int s = 0; s < BK_NSRC; s++) {
        double x[SCEN_LENGTHS_MAX], y[SCEN_LENGTHS_MAX];
        size_t n = 0;
        for (size_t k = 0; k < st->n_rungs; k++)
            if (d->nv[s][k]) {
                x[n] = d->x[k];
                y[n++] = median_of(d->v[s][k], d->nv[s][k]);
            }
        fit_line(x, y, NULL, n, &d->fit[s]);
        json_put(fits, BK_SRC[s], fit_json(&d->fit[s]));
        if (s != BK_COLD)
            json_put(be_all, BK_SRC[s], break_even_json(st, d, s, &be[s]));
    }
    json_t *o = json_pack("{s:I, s:I, s:I}", "repeats", (json_int_t)st->repeats, "max_tokens",
                          (json_int_t)st->max_tokens, "block_tokens", (json_int_t)st->block_tokens);
    json_put(o, "input_ceiling_tokens",
             st->ceiling < LLONG_MAX ? json_integer(st->ceiling) : json_null());
    json_put(o, "verdict", bk_verdict(d, be_all, be));
    json_put(o, "prefill_us_per_token",
             json_real_or_null(round_to(d->fit[BK_COLD].b * 1000, 4), d->fit[BK_COLD].ok));
    json_put(o, "fits", fits);
    json_put(o, "break_even", be_all);
    json_put(o, "ladder", ladder_json(st));
    json_put(o, "rows", rows);
    free(d);
    return o;
}

/* ------------------------------------------------------------ report */

static void report_fits(struct buf *b, const json_t *bk)
{
    buf_append_str(b, "| source | lengths | fixed cost ms | ± SE | µs per token | ± SE | 95 % "
                      "interval | R² |\n|---|---|---|---|---|---|---|---|\n");
    for (int s = 0; s < BK_NSRC; s++) {
        const json_t *f = json_object_get(json_object_get(bk, "fits"), BK_SRC[s]);
        if (!f)
            continue;
        buf_printf(b, "| %s | %lld | ", BK_SRC[s], json_get_int(f, "lengths", 0));
        scenario_md_num(b, f, "fixed_ms", "%.3f | ", "– | ");
        scenario_md_num(b, f, "fixed_ms_se", "%.3f | ", "– | ");
        scenario_md_num(b, f, "per_token_us", "%.3f | ", "– | ");
        scenario_md_num(b, f, "per_token_us_se", "%.3f | ", "– | ");
        const json_t *ci = json_object_get(f, "per_token_us_ci95");
        if (json_is_array(ci))
            buf_printf(b, "%.3f – %.3f | ", json_number_value(json_array_get(ci, 0)),
                       json_number_value(json_array_get(ci, 1)));
        else
            buf_append_str(b, "– | ");
        scenario_md_num(b, f, "r2", "%.4f |\n", "– |\n");
    }
    buf_append_str(b, "\n");
}

static void report_break_even(struct buf *b, const json_t *bk)
{
    buf_append_str(b, "| tier | onboarding beats recomputing | crossing tokens | 95 % interval | "
                      "speed-up cold ÷ warm at each length |\n|---|---|---|---|---|\n");
    const char *k;
    const json_t *o;
    json_object_foreach((json_t *)json_object_get(bk, "break_even"), k, o)
    {
        buf_printf(b, "| %s | %s | ", k, json_get_str(o, "kind", "?"));
        scenario_md_num(b, o, "crossing_tokens", "%.0f | ", "– | ");
        const json_t *ci = json_object_get(o, "crossing_ci95");
        if (json_is_array(ci))
            buf_printf(b, "%.0f – %.0f | ", json_number_value(json_array_get(ci, 0)),
                       json_number_value(json_array_get(ci, 1)));
        else
            buf_append_str(b, "– | ");
        size_t i;
        const json_t *sp;
        json_array_foreach(json_object_get(o, "speedup"), i, sp)
        {
            buf_printf(b, "%s%lld: ", i ? ", " : "", json_get_int(sp, "length", 0));
            scenario_md_num(b, sp, "speedup", "%.2f×", "–");
        }
        buf_append_str(b, " |\n");
    }
    buf_append_str(b, "\n");
}

static void report_rows(struct buf *b, const json_t *bk)
{
    buf_append_str(b, "| phase | TTFT ms | cached tokens | verified | evidence |\n"
                      "|---|---|---|---|---|\n");
    size_t i;
    const json_t *o;
    json_array_foreach(json_object_get(bk, "rows"), i, o)
    {
        const json_t *v = json_object_get(o, "verified");
        buf_printf(b, "| %s | ", json_get_str(o, "phase", "?"));
        scenario_md_num(b, o, "ttft_ms", "%.2f | ", "– | ");
        scenario_md_num(b, o, "cached_tokens", "%.0f | ", "– | ");
        buf_printf(b, "%s | %s |\n",
                   json_is_true(v)    ? "yes"
                   : json_is_false(v) ? "**no**"
                                      : "–",
                   json_get_str(o, "evidence", ""));
    }
    buf_append_str(b, "\n");
    json_array_foreach(json_object_get(bk, "ladder"), i, o)
    {
        if (!json_is_true(json_object_get(o, "measured"))) {
            buf_printf(b, "- %lld tokens: not measured: %s.\n", json_get_int(o, "length", 0),
                       json_get_str(o, "reason", ""));
            continue;
        }
        const char *k;
        const json_t *why;
        json_object_foreach((json_t *)json_object_get(o, "skipped"), k, why)
            buf_printf(b, "- %lld tokens, %s: skipped: %s.\n", json_get_int(o, "length", 0), k,
                       json_string_value(why));
    }
    buf_append_str(b, "\n");
}

static void bk_report(struct buf *b, const json_t *s, const json_t *src, const json_t *config)
{
    (void)src;
    (void)config;
    const json_t *bk = json_object_get(s, "breakeven");
    if (!bk) {
        buf_append_str(b, "No length was measured.\n\n");
        return;
    }
    scenario_md_verdict(b, "breakeven", json_object_get(bk, "verdict"));
    buf_printf(b,
               "TTFT of one prompt per length, alone, max_tokens %lld, %lld repeat(s): cold "
               "(computed), then warm from each tier (the fillers between are not measured). "
               "Lines fitted by least squares over the verified rows.\n\n",
               json_get_int(bk, "max_tokens", 0), json_get_int(bk, "repeats", 0));
    report_fits(b, bk);
    report_break_even(b, bk);
    report_rows(b, bk);
}

static bool answers_breakeven(const char *phase)
{
    return phase[0] == 'L' && !strstr(phase, "_cold_") && !strstr(phase, "_fill_") &&
           !strstr(phase, "_prime_");
}

const struct scenario SCEN_BREAKEVEN = {
    .name = "breakeven",
    .what = "from which context length does onboarding from each tier beat recomputing: "
            "L<n>_cold, _device, _host, _disk per length",
    .plan = bk_plan,
    .report = bk_report,
    .tiers = true,
    .extra = bk_summary,
    .extra_key = "breakeven",
    .free_state = bk_free,
    .answers = answers_breakeven,
    .answer_phases = "the warm repeats (L<n>_device, _host, _disk)",
};
