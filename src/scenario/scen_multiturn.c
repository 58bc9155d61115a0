/*
 * scen_multiturn.c - `--scenario multi_turn` (SPEC §4.4, docs/WORKLOADS.md): one phase per
 * round (round_1 .. round_R), each sending every user's next prompt, made from the answers of
 * the round before; the per-round figures (summary.json multi_turn.rounds[]) and the verdict:
 * does reuse hold as the conversations grow past the device tier?
 *
 * Pacing, as LMBenchmark's users: with --user-qps Q a round sends user u at u / (U x Q) s, so
 * that each user sends a round every 1 / Q s; a round starts when every answer of the one before
 * is in and no sooner than 1 / Q s after that one started. Without it, a round is sent at once.
 */
#include "scenario/multiturn.h"
#include "scenario/scenario.h"
#include "analysis/stats.h"

#include "util/err.h"
#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A round keeps its reuse when its hit rate reaches this share of what it could reuse. */
#define MT_HOLD_SHARE 0.5
/* Below this hit rate in every later round, nothing was reused. */
#define MT_NONE_RATE 0.05

struct mt_state {
    struct multiturn m;
    size_t first;       /* the phase index of round_1 */
    struct prompt **ps; /* per round: its prompts (the run owns them) */
    size_t *reusable;   /* rounds x users: tokens the user's earlier rounds sent or were told */
    long long device_tokens; /* the device tier in tokens; -1: unknown */
    /* a merged run's (kvbench merge): per round, the tokens its users could reuse, summed over
     * the shards (ps and reusable are then not kept); NULL in a run */
    double *merged_reusable;
};

static void multiturn_free(void *state)
{
    struct mt_state *st = state;
    if (!st)
        return;
    mt_free(&st->m);
    free(st->ps);
    free(st->reusable);
    free(st->merged_reusable);
    free(st);
}

/* Make round r's prompts, hand them to the run and to phase `phase`. */
static int make_round(struct planner *p, struct mt_state *st, size_t r, const char *const *answers,
                      size_t phase, char *err)
{
    size_t u = st->m.mp.users;
    struct prompt *ps = calloc(u, sizeof *ps);
    if (!ps)
        return err_set(err, "out of memory");
    if (mt_round(&st->m, r, answers, ps, &st->reusable[r * u], err) < 0) {
        prompts_free(ps, u);
        return -1;
    }
    if (p->add_set(p->ctx, ps, u, err) < 0)
        return -1; /* add_set freed them */
    st->ps[r] = ps;
    p->fill_phase(p->ctx, phase, ps, u);
    return 0;
}

static int multiturn_plan(struct planner *p, char *err)
{
    const struct scen_config *cfg = p->cfg;
    if (plan_warmup(p, "short", err) < 0)
        return -1;
    struct mt_state *st = calloc(1, sizeof *st);
    if (!st)
        return err_set(err, "out of memory");
    p->rs->scenario_state = st;
    struct mt_params mp = {
        .users = (size_t)cfg->users,
        .rounds = (size_t)cfg->rounds,
        .system_tokens = (size_t)cfg->system_prompt_tokens,
        .history_tokens = (size_t)cfg->history_tokens,
        .answer_tokens = (size_t)cfg->answer_tokens,
        .user_qps = cfg->user_qps,
    };
    if (mt_init(&st->m, &mp, p->tok, p->form, p->seed, p->salt, err) < 0)
        return -1;
    st->ps = calloc(mp.rounds, sizeof *st->ps);
    st->reusable = calloc(mp.rounds * mp.users, sizeof *st->reusable);
    if (!st->ps || !st->reusable)
        return err_set(err, "out of memory");
    const struct tier_caps *caps = p->caps;
    st->device_tokens = caps && caps->blocks[TIER_DEVICE] > 0 && caps->block_tokens > 0
                            ? caps->blocks[TIER_DEVICE] * caps->block_tokens
                            : -1;
    st->first = p->rs->n_phases;
    for (size_t r = 0; r < mp.rounds; r++) {
        char name[32];
        snprintf(name, sizeof name, "round_%zu", r + 1);
        /* every user at once, or at most --max-concurrency of them in flight */
        size_t conc = cfg->max_concurrency && cfg->max_concurrency < mp.users ? cfg->max_concurrency
                                                                              : mp.users;
        if (p->add_phase(p->ctx, name, conc, NULL, mp.users, true, "turn", err) < 0)
            return -1;
        size_t i = p->rs->n_phases - 1;
        if (mp.user_qps > 0 && p->set_schedule(p->ctx, i, st->m.schedule, mp.users, err) < 0)
            return -1;
        p->rs->phases[i].keep_text = r + 1 < mp.rounds; /* the next round is made from them */
    }
    if (make_round(p, st, 0, NULL, st->first, err) < 0)
        return -1;
    if (mp.rounds > 1) {
        char what[48];
        snprintf(what, sizeof what, "turn-*-r002..r%03zu", mp.rounds);
        p->bound(p->ctx, what, mp.users * (mp.rounds - 1), mt_max_prompt_tokens(&st->m));
    }
    return 0;
}

static int multiturn_before_phase(struct planner *p, size_t i, char *err)
{
    struct mt_state *st = p->rs->scenario_state;
    if (!st || i <= st->first || i >= st->first + st->m.mp.rounds)
        return 0; /* the warmup, or round 1 (made with the plan) */
    size_t r = i - st->first, u = st->m.mp.users;
    const struct phase_state *prev = &p->rs->phases[i - 1];
    const char **answers = calloc(u, sizeof *answers);
    if (!answers)
        return err_set(err, "out of memory");
    /* each answer to its user: the result's prompt is one of the previous round's */
    for (size_t k = 0; prev->res.reqs && k < prev->res.n; k++) {
        const struct req_result *q = &prev->res.reqs[k];
        if (!q->ok || !q->prompt || q->prompt < st->ps[r - 1] || q->prompt >= st->ps[r - 1] + u)
            continue;
        answers[q->prompt - st->ps[r - 1]] = q->text;
    }
    int rc = make_round(p, st, r, answers, i, err);
    free(answers);
    if (rc == 0 && st->m.mp.user_qps > 0) {
        /* the previous round's zero: when its first user was due */
        uint64_t zero = prev->res.t0_ns ? prev->res.t0_ns : prev->t_start_ns;
        p->rs->phases[i].t0_ns = zero + (uint64_t)(1e9 / st->m.mp.user_qps);
    }
    return rc;
}

/* ------------------------------------------------------------ summary */

static json_t *ttft_json(const struct phase_state *ph)
{
    struct phase_agg *parts[64];
    size_t n = ph->res.n_aggs < 64 ? ph->res.n_aggs : 64;
    for (size_t k = 0; k < n; k++)
        parts[k] = &ph->res.aggs[k];
    struct dstats s;
    if (n == 0 || phase_agg_stats(parts, n, AGG_TTFT, &s) < 0 || s.n == 0)
        return json_object();
    return json_pack("{s:f, s:f}", "p50", round(s.p50 * 1000) / 1000, "p95",
                     round(s.p95 * 1000) / 1000);
}

static json_t *round_json(const struct run_state *rs, const struct mt_state *st, size_t r)
{
    const struct phase_state *ph = &rs->phases[st->first + r];
    struct phase_reuse pr;
    phase_reuse_of(rs, st->first + r, &pr);
    double in_est = 0;
    for (size_t k = 0; k < ph->res.n_aggs; k++)
        in_est += ph->res.aggs[k].in_est;
    double prompt = pr.prompt_tokens, cached = pr.reused_tokens;
    const char *src = pr.source;
    size_t total = pr.requests, errors = pr.errors;
    bool any_usage = pr.prompt_from_usage;
    size_t u = st->m.mp.users;
    /* over the users this phase sent (with --shard, a shard's own; merged, the shards' sum) */
    double reusable = st->merged_reusable ? st->merged_reusable[r] : 0;
    for (size_t k = 0; !st->merged_reusable && k < ph->n && st->ps[r]; k++)
        reusable += (double)st->reusable[r * u + (size_t)(ph->prompts[k] - st->ps[r])];
    json_t *o = json_object();
    json_put_int(o, "round", (long long)r + 1);
    json_put_int(o, "requests", (long long)total);
    json_put_int(o, "errors", (long long)errors);
    json_put(o, "ttft_ms", ttft_json(ph));
    json_put_real(o, "prompt_tokens", prompt);
    json_put_str(o, "prompt_tokens_source", any_usage ? "usage" : "estimate");
    json_put(o, "cached_tokens", src ? json_real(cached) : json_null());
    json_put(o, "hit_rate",
             json_real_or_null(round(cached / prompt * 1e4) / 1e4, src && prompt > 0));
    json_put(o, "hit_rate_source", src ? json_string(src) : json_null());
    json_put_real(o, "reusable_tokens", reusable);
    json_put(o, "reusable_rate",
             json_real_or_null(round(reusable / in_est * 1e4) / 1e4, in_est > 0 && r > 0));
    /* what all users' KV takes (kvbench's count): the shared system turn once */
    double shared = (double)st->m.system_est * (double)(ph->n ? ph->n - 1 : 0);
    json_put_real(o, "context_tokens", in_est > shared ? in_est - shared : in_est);
    const json_t *d = ph->kv_delta;
    double onb;
    json_put(o, "onboard_blocks",
             json_get_bool(d, "available", false) &&
                     json_get_num_strict(d, "onboard_blocks_total_delta", &onb)
                 ? json_real(onb)
                 : json_null());
    return o;
}

/* The verdict over rounds 2..R (round 1 has no history of its own to reuse). */
/* What the rounds after the first show, for the verdict. */
struct mt_tally {
    size_t n, measured, held, none; /* rounds; with a hit rate; that kept reuse; with almost none */
    double onboards;                /* blocks brought back in the rounds past the device tier */
    bool onboards_known;
    long long first_low, first_past, past_low; /* rounds: reuse fell; past the device; both */
    double low_rate, low_could, low_ctx;       /* the first round where reuse fell */
};

static void tally_rounds(const struct mt_state *st, const json_t *rounds, struct mt_tally *t)
{
    *t = (struct mt_tally){.n = json_array_size(rounds),
                           .onboards_known = true,
                           .first_low = -1,
                           .first_past = -1,
                           .past_low = -1};
    for (size_t k = 1; k < t->n; k++) {
        const json_t *o = json_array_get(rounds, k);
        double ctx = json_get_num(o, "context_tokens", 0);
        long long round = json_get_int(o, "round", 0);
        if (st->device_tokens > 0 && ctx > (double)st->device_tokens && t->first_past < 0)
            t->first_past = round;
        double ob;
        if (t->first_past > 0) {
            if (json_get_num_strict(o, "onboard_blocks", &ob))
                t->onboards += ob;
            else
                t->onboards_known = false;
        }
        double hr, could = json_get_num(o, "reusable_rate", 0);
        if (!json_get_num_strict(o, "hit_rate", &hr))
            continue;
        t->measured++;
        if (hr < MT_NONE_RATE)
            t->none++;
        if (hr >= MT_HOLD_SHARE * could) {
            t->held++;
        } else if (t->first_low < 0) {
            t->first_low = round;
            t->low_rate = hr;
            t->low_could = could;
            t->low_ctx = ctx;
        }
        if (hr < MT_HOLD_SHARE * could && t->first_past > 0 && t->past_low < 0)
            t->past_low = round;
    }
}

/* Reuse held in every round: whether past the device tier, and what the engine says of it. */
static const char *held_text(const struct mt_state *st, const struct mt_tally *t, char *text,
                             size_t cap)
{
    /* past the device tier only if something came back from another tier, or the engine does
     * not say */
    bool past = t->first_past > 0 && (!t->onboards_known || t->onboards > 0);
    if (past && t->onboards_known)
        snprintf(text, cap,
                 "reuse held in every round, also from round %lld on, where the users' "
                 "contexts passed the device tier (%lld tokens): the offload tiers brought "
                 "%.0f blocks back",
                 t->first_past, st->device_tokens, t->onboards);
    else if (past)
        snprintf(text, cap,
                 "reuse held in every round, also from round %lld on, where the users' "
                 "contexts passed the device tier (%lld tokens); the engine's counters do "
                 "not say which tier served them",
                 t->first_past, st->device_tokens);
    else if (t->first_past > 0)
        snprintf(text, cap,
                 "reuse held in every round; from round %lld the contexts passed the device "
                 "tier (%lld tokens) by kvbench's count, yet the engine brought nothing back "
                 "from another tier: the device kept what was reused",
                 t->first_past, st->device_tokens);
    else
        snprintf(text, cap,
                 "reuse held in every round (hit rate at least half of what each round could "
                 "reuse)%s",
                 st->device_tokens > 0
                     ? "; the contexts stayed within the device tier, so the offload tiers "
                       "were not needed"
                     : "; the device tier's size is unknown (give --tier-blocks and "
                       "--kv-block-tokens to tell whether the offload tiers were needed)");
    return past ? "reuse_holds_past_device_tier" : "reuse_holds";
}

/* Reuse fell in some round: where, and whether the contexts had just passed the device tier. */
static const char *drop_text(const struct mt_state *st, const struct mt_tally *t,
                             enum kv_mode kv_mode, char *text, size_t cap)
{
    bool past = t->past_low > 0 && t->past_low == t->first_low;
    int w = snprintf(text, cap,
                     "reuse fell in round %lld: hit rate %.2f where %.2f could be reused "
                     "(contexts %.0f tokens)",
                     t->first_low, t->low_rate, t->low_could, t->low_ctx);
    if (w > 0 && (size_t)w < cap && past)
        snprintf(text + w, cap - (size_t)w,
                 ", once the contexts passed the device tier (%lld tokens): %s", st->device_tokens,
                 kv_mode == KV_MODE_OFF
                     ? "with kv mode off there is no offload tier to bring them back from"
                     : "blocks that left it did not come back from the offload tiers");
    return past ? "reuse_drops_past_device_tier" : "reuse_drops";
}

static json_t *verdict(const struct mt_state *st, const json_t *rounds, enum kv_mode kv_mode)
{
    struct mt_tally t;
    tally_rounds(st, rounds, &t);
    char text[640];
    const char *sig;
    if (t.n == 0) {
        sig = "unavailable";
        snprintf(text, sizeof text, "no round ran (the run stopped before: see invalid_reason)");
    } else if (t.n < 2) {
        sig = "unavailable";
        snprintf(text, sizeof text, "one round only: nothing of a conversation came back");
    } else if (t.measured == 0) {
        sig = "unavailable";
        snprintf(text, sizeof text,
                 "the responses carried no cached-token counts and the engine's counters had no "
                 "reused tokens: kvbench cannot tell whether the conversations were reused");
    } else if (t.none == t.measured) {
        sig = "no_reuse";
        snprintf(text, sizeof text,
                 "from round 2 on, almost nothing was served from the cache (hit rate below "
                 "%.0f %% in every round) although each prompt began with the whole previous "
                 "round: prefix caching is off, or every conversation was evicted between its "
                 "rounds",
                 MT_NONE_RATE * 100);
    } else if (t.held == t.measured) {
        sig = held_text(st, &t, text, sizeof text);
    } else {
        sig = drop_text(st, &t, kv_mode, text, sizeof text);
    }
    return json_pack("{s:s, s:s, s:f}", "signal", sig, "interpretation", text,
                     "hold_share_of_reusable", MT_HOLD_SHARE);
}

static json_t *multiturn_summary(const struct run_state *rs)
{
    const struct mt_state *st = rs->scenario_state;
    if (!st)
        return NULL;
    const struct mt_params *mp = &st->m.mp;
    json_t *rounds = json_array();
    for (size_t r = 0; r < mp->rounds; r++) {
        const struct phase_state *ph = &rs->phases[st->first + r];
        if (ph->ran)
            json_array_append_new(rounds, round_json(rs, st, r));
    }
    json_t *o =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "users", (json_int_t)mp->users,
                  "rounds_planned", (json_int_t)mp->rounds, "system_prompt_tokens",
                  (json_int_t)mp->system_tokens, "history_tokens", (json_int_t)mp->history_tokens,
                  "answer_tokens", (json_int_t)mp->answer_tokens, "question_tokens",
                  (json_int_t)MT_QUESTION_TOKENS, "user_qps", mp->user_qps);
    json_put(o, "device_tier_tokens",
             st->device_tokens > 0 ? json_integer(st->device_tokens) : json_null());
    /* the shared system turn by kvbench's count (once in context_tokens; kvbench merge reads it
     * back) */
    json_put_int(o, "system_turn_tokens", (long long)st->m.system_est);
    json_put(o, "verdict", verdict(st, rounds, rs->cfg->kv_mode));
    json_put(o, "rounds", rounds);
    return o;
}

/* A merged run's state from its shards' multi_turn objects: the conversations' parameters from
 * the run's configuration, what only the conversations knew (each round's reusable tokens, the
 * system turn's count, the device tier) from the shards' figures, which add up. */
static int multiturn_merge_state(struct run_state *rs, const json_t *const *parts, size_t n,
                                 char *err)
{
    const struct scen_config *cfg = rs->cfg;
    size_t rounds = (size_t)cfg->rounds;
    long first = -1;
    for (size_t i = 0; i < rs->n_phases && first < 0; i++)
        if (strcmp(rs->phases[i].name, "round_1") == 0)
            first = (long)i;
    if (first < 0 || (size_t)first + rounds > rs->n_phases || n == 0)
        return err_set(err, "the merged run has no round_1 .. round_%zu", rounds);
    struct mt_state *st = calloc(1, sizeof *st);
    double *sum = calloc(rounds ? rounds : 1, sizeof *sum);
    if (!st || !sum) {
        free(st);
        free(sum);
        return err_set(err, "out of memory");
    }
    st->merged_reusable = sum;
    st->first = (size_t)first;
    st->m.mp = (struct mt_params){(size_t)cfg->users,
                                  rounds,
                                  (size_t)cfg->system_prompt_tokens,
                                  (size_t)cfg->history_tokens,
                                  (size_t)cfg->answer_tokens,
                                  cfg->user_qps};
    const json_t *dt = json_object_get(parts[0], "device_tier_tokens");
    st->device_tokens = json_is_integer(dt) ? json_integer_value(dt) : -1;
    const json_t *se = json_object_get(parts[0], "system_turn_tokens");
    int rc = json_is_integer(se) ? 0 : err_set(err, "no system_turn_tokens (an older kvbench)");
    st->m.system_est = rc == 0 ? (size_t)json_integer_value(se) : 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        size_t i;
        const json_t *o;
        json_array_foreach(json_object_get(parts[k], "rounds"), i, o)
        {
            long long r = json_get_int(o, "round", 0);
            double v;
            if (r < 1 || (size_t)r > rounds || !json_get_num_strict(o, "reusable_tokens", &v))
                rc =
                    err_set(err, "rounds[%zu] has no round 1..%zu with reusable_tokens", i, rounds);
            else
                sum[r - 1] += v;
        }
    }
    if (rc < 0) {
        multiturn_free(st);
        return -1;
    }
    rs->scenario_state = st;
    return 0;
}

/* ------------------------------------------------------------ report */

static void multiturn_report(struct buf *b, const json_t *s, const json_t *src,
                             const json_t *config)
{
    (void)src;
    (void)config;
    const json_t *mt = json_object_get(s, "multi_turn");
    if (!mt) {
        buf_append_str(b, "No round ran.\n\n");
        return;
    }
    scenario_md_verdict(b, "multi_turn", json_object_get(mt, "verdict"));
    buf_printf(b,
               "%lld users, %lld rounds planned: system prompt %lld tokens, history %lld, "
               "answers up to %lld, questions %lld; device tier ",
               json_get_int(mt, "users", 0), json_get_int(mt, "rounds_planned", 0),
               json_get_int(mt, "system_prompt_tokens", 0), json_get_int(mt, "history_tokens", 0),
               json_get_int(mt, "answer_tokens", 0), json_get_int(mt, "question_tokens", 0));
    const json_t *dt = json_object_get(mt, "device_tier_tokens");
    if (json_is_integer(dt))
        buf_printf(b, "%lld tokens.\n\n", (long long)json_integer_value(dt));
    else
        buf_append_str(b, "unknown.\n\n");
    buf_append_str(b, "| round | requests | errors | TTFT p50 ms | TTFT p95 ms | prompt tokens | "
                      "cached tokens | hit rate | could reuse | source |\n"
                      "|---|---|---|---|---|---|---|---|---|---|\n");
    size_t i;
    const json_t *o;
    json_array_foreach(json_object_get(mt, "rounds"), i, o)
    {
        const json_t *t = json_object_get(o, "ttft_ms");
        buf_printf(b, "| %lld | %lld | %lld | ", json_get_int(o, "round", 0),
                   json_get_int(o, "requests", 0), json_get_int(o, "errors", 0));
        scenario_md_num(b, t, "p50", "%.1f | ", "– | ");
        scenario_md_num(b, t, "p95", "%.1f | ", "– | ");
        scenario_md_num(b, o, "prompt_tokens", "%.0f | ", "– | ");
        scenario_md_num(b, o, "cached_tokens", "%.0f | ", "– | ");
        scenario_md_num(b, o, "hit_rate", "%.2f | ", "– | ");
        scenario_md_num(b, o, "reusable_rate", "%.2f | ", "– | ");
        buf_printf(b, "%s |\n", json_get_str(o, "hit_rate_source", "–"));
    }
    buf_append_str(b, "\n*Hit rate* = cached ÷ prompt tokens of the round; *could reuse* = the "
                      "share of the round's prompts that the same users had already sent or "
                      "been answered.\n\n");
}

static bool answers_multi_turn(const char *phase)
{
    return scenario_numbered_from_2(phase, "round_");
}

const struct scenario SCEN_MULTI_TURN = {
    .name = "multi_turn",
    .what = "do conversations keep their reuse as they grow: round_1 .. round_R of U users",
    .plan = multiturn_plan,
    .report = multiturn_report,
    .tiers = true,
    .before_phase = multiturn_before_phase,
    .extra = multiturn_summary,
    .extra_key = "multi_turn",
    .merge_state = multiturn_merge_state,
    .free_state = multiturn_free,
    .answers = answers_multi_turn,
    .answer_phases = "rounds 2 .. R",
};
