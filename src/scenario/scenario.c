/*
 * scenario.c - the scenario table and each scenario's phase plan (SPEC §3, docs/WORKLOADS.md).
 */
#include "scenario/scenario.h"

#include "util/err.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int plan_warmup(struct planner *p, const char *set, char *err)
{
    const struct scen_config *cfg = p->cfg;
    if (cfg->warmup <= 0)
        return 0;
    struct prompt *w = p->make_set(p->ctx, "warmup", set, p->warm_seed, (size_t)cfg->warmup, err);
    if (!w || p->add_phase(p->ctx, "warmup", (size_t)cfg->concurrency, w, (size_t)cfg->warmup,
                           false, set, err) < 0)
        return -1;
    return 0;
}

void phase_reuse_of(const struct run_state *rs, size_t phase, struct phase_reuse *out)
{
    const struct phase_state *ph = &rs->phases[phase];
    double cached = 0, in_usage = 0, in_est = 0;
    bool any_cached = false, any_usage = false;
    memset(out, 0, sizeof *out);
    for (size_t k = 0; k < ph->res.n_aggs; k++) {
        const struct phase_agg *a = &ph->res.aggs[k];
        cached += a->cached;
        in_usage += a->in_usage;
        in_est += a->in_est;
        any_cached |= a->any_cached;
        any_usage |= a->any_usage;
        out->requests += a->total;
        out->errors += a->err;
    }
    out->prompt_tokens = any_usage ? in_usage : in_est;
    out->prompt_from_usage = any_usage;
    if (any_cached) {
        out->reused_tokens = cached;
        out->source = "usage";
        return;
    }
    /* the engine's counters over the phase: its requests alone ran then */
    const json_t *ed = json_object_get(ph->kv_delta, "engine_delta");
    if (json_get_num_strict(ed, "reused_tokens", &out->reused_tokens))
        out->source = "engine_counters";
}

/* standard: warmup (another seed, not in the overall figures), then main. */
static int plan_standard(struct planner *p, char *err)
{
    const struct scen_config *cfg = p->cfg;
    size_t conc = (size_t)cfg->concurrency;
    if (plan_warmup(p, cfg->prompt_set, err) < 0)
        return -1;
    struct prompt *m =
        p->make_set(p->ctx, "main", cfg->prompt_set, p->seed, (size_t)cfg->requests, err);
    if (!m || p->add_phase(p->ctx, "main", conc, m, (size_t)cfg->requests, true, cfg->prompt_set,
                           err) < 0)
        return -1;
    return 0;
}

/* eviction_replay: warmup, warm_A, pressure_B (far-away seed; sized by --pressure), replay_A. */
static int plan_eviction(struct planner *p, char *err)
{
    const struct scen_config *cfg = p->cfg;
    size_t conc = (size_t)cfg->concurrency;
    size_t ca = cfg->evict_a_conc > 0 ? (size_t)cfg->evict_a_conc : conc;
    size_t cb = cfg->evict_b_conc > 0 ? (size_t)cfg->evict_b_conc : (ca > 2 * conc ? ca : 2 * conc);
    /* warmup at --concurrency, as the reference harness runs it */
    if (plan_warmup(p, "long", err) < 0)
        return -1;
    size_t n_a = (size_t)cfg->evict_a;
    struct prompt *a = p->make_set(p->ctx, "A", "long", p->seed, n_a, err);
    size_t n_b = (size_t)cfg->evict_b;
    json_decref(*p->pressure_plan);
    if (a && cfg->pressure_auto) {
        size_t sized;
        *p->pressure_plan = pressure_plan(p->caps, a, n_a, &sized);
        if (sized)
            n_b = sized;
    } else {
        *p->pressure_plan = json_pack("{s:s}", "mode", "fixed");
    }
    struct prompt *b = a ? p->make_set(p->ctx, "B", "long", p->b_seed, n_b, err) : NULL;
    if (a && b && cfg->pressure_auto)
        pressure_fit(*p->pressure_plan, p->caps, a, n_a, b, n_b, cfg->gp->max_tokens);
    /* drawn from the long set; labelled as the reference harness labels them */
    for (size_t i = 0; a && i < n_a; i++)
        snprintf(a[i].set, sizeof a[i].set, "replay_a");
    for (size_t i = 0; b && i < n_b; i++)
        snprintf(b[i].set, sizeof b[i].set, "replay_b");
    if (!a || !b || p->add_phase(p->ctx, "warm_A", ca, a, n_a, true, "replay_a", err) < 0 ||
        p->add_phase(p->ctx, "pressure_B", cb, b, n_b, true, "replay_b", err) < 0 ||
        p->add_phase(p->ctx, "replay_A", ca, a, n_a, true, "replay_a", err) < 0)
        return -1;
    return 0;
}

/* reuse_verify: one prompt sent reuse_1 … reuse_N at concurrency 1. */
static int plan_reuse(struct planner *p, char *err)
{
    const struct scen_config *cfg = p->cfg;
    struct prompt *r = p->make_set(p->ctx, "reuse", cfg->reuse_prompt_set, p->seed, 1, err);
    if (!r)
        return -1;
    for (long long k = 1; k <= cfg->reuse_repeat; k++) {
        char name[32];
        snprintf(name, sizeof name, "reuse_%lld", k);
        if (p->add_phase(p->ctx, name, 1, r, 1, true, cfg->reuse_prompt_set, err) < 0)
            return -1;
    }
    return 0;
}

/* The phases that answer each scenario's question (SPEC §4.6). */
static bool numbered_from_2(const char *phase, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(phase, prefix, n) != 0)
        return false;
    char *end;
    long k = strtol(phase + n, &end, 10);
    return end != phase + n && !*end && k >= 2;
}
static bool answers_standard(const char *phase)
{
    return strcmp(phase, "main") == 0;
}
static bool answers_eviction(const char *phase)
{
    return strcmp(phase, "replay_A") == 0;
}
static bool answers_reuse(const char *phase)
{
    return numbered_from_2(phase, "reuse_");
}
static bool answers_multi_turn(const char *phase)
{
    return numbered_from_2(phase, "round_");
}
static bool answers_trace(const char *phase)
{
    return strncmp(phase, "window_", 7) == 0;
}

static const struct scenario TABLE[] = {
    {
        .name = "standard",
        .what = "throughput and latency at a load: warmup, then main",
        .plan = plan_standard,
        .report = report_standard_section,
        .duration = true,
        .answers = answers_standard,
        .answer_phases = "main",
    },
    {
        .name = "eviction_replay",
        .what = "does a block evicted to disk come back: warm_A, pressure_B, replay_A",
        .plan = plan_eviction,
        .verdicts = summary_eviction_verdicts,
        .kvbm_key = "eviction_replay_signal_kvbm",
        .io_key = "eviction_replay_signal_io",
        .signal_key = "eviction_replay_signal",
        .report = report_eviction_section,
        .pressure = true,
        .answers = answers_eviction,
        .answer_phases = "replay_A",
    },
    {
        .name = "reuse_verify",
        .what = "is a repeated prompt reused: reuse_1 .. reuse_N",
        .plan = plan_reuse,
        .verdicts = summary_reuse_verdicts,
        .kvbm_key = "reuse_verify_signal_kvbm",
        .identity_key = "reuse_verify_identity",
        .signal_key = "reuse_verify_signal",
        .report = report_reuse_section,
        .answers = answers_reuse,
        .answer_phases = "the repeats (reuse_2 ..)",
    },
    {
        .name = "multi_turn",
        .what = "do conversations keep their reuse as they grow: round_1 .. round_R of U users",
        .plan = multiturn_plan,
        .report = multiturn_report,
        .tiers = true,
        .before_phase = multiturn_before_phase,
        .extra = multiturn_summary,
        .extra_key = "multi_turn",
        .free_state = multiturn_free,
        .answers = answers_multi_turn,
        .answer_phases = "rounds 2 .. R",
    },
    {
        .name = "trace",
        .what = "a production trace (Mooncake JSON lines): what could be reused, what was",
        .plan = trace_plan,
        .report = trace_report,
        .before_phase = trace_before_phase,
        .extra = trace_summary,
        .extra_key = "trace",
        .free_state = trace_state_free,
        .answers = answers_trace,
        .answer_phases = "its windows",
    },
};

#define N_SCENARIOS (sizeof TABLE / sizeof TABLE[0])

const struct scenario *scenario_find(const char *name)
{
    for (size_t i = 0; name && i < N_SCENARIOS; i++)
        if (strcmp(TABLE[i].name, name) == 0)
            return &TABLE[i];
    return NULL;
}

const char *const *scenario_names(void)
{
    static const char *names[N_SCENARIOS + 1];
    for (size_t i = 0; i < N_SCENARIOS; i++)
        names[i] = TABLE[i].name;
    return names;
}
