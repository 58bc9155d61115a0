/*
 * scenario.c - the scenario table (SPEC §3, docs/WORKLOADS.md) and what the scenarios share: the
 * warmup phase, a phase's reuse, finding a phase by name, and the markdown cells of their
 * report.md sections. Each scenario is a row defined in its own scen_<name>.c.
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

const struct phase_state *scenario_find_phase(const struct run_state *rs, const char *name)
{
    for (size_t i = 0; i < rs->n_phases; i++)
        if (strcmp(rs->phases[i].name, name) == 0 && rs->phases[i].ran)
            return &rs->phases[i];
    return NULL;
}

bool scenario_numbered_from_2(const char *phase, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(phase, prefix, n) != 0)
        return false;
    char *end;
    long k = strtol(phase + n, &end, 10);
    return end != phase + n && !*end && k >= 2;
}

void scenario_md_num(struct buf *b, const json_t *o, const char *key, const char *fmt,
                     const char *absent)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_number(v))
        buf_printf(b, fmt, json_number_value(v));
    else
        buf_append_str(b, absent);
}

void scenario_md_verdict(struct buf *b, const char *name, const json_t *verdict)
{
    buf_printf(b, "### %s: `%s`\n\n%s.\n\n", name, json_get_str(verdict, "signal", "?"),
               json_get_str(verdict, "interpretation", ""));
}

void scenario_md_signal(struct buf *b, const char *title, const json_t *sig)
{
    if (!sig)
        return;
    buf_printf(b, "### %s: `%s`\n\n%s\n\n", title, json_get_str(sig, "signal", "?"),
               json_get_str(sig, "interpretation", ""));
}

const json_t *scenario_summary_verdict(const json_t *summary)
{
    const struct scenario *sc = scenario_find(json_get_str(summary, "scenario", ""));
    if (!sc)
        return NULL;
    const json_t *v = NULL;
    if (sc->kvbm_key)
        v = json_object_get(json_object_get(summary, "overall_summary"), sc->kvbm_key);
    if (!v && sc->signal_key) /* an invalid run keeps it under kvbm_metrics */
        v = json_object_get(json_object_get(summary, "kvbm_metrics"), sc->signal_key);
    if (!v && sc->extra_key) /* multi_turn, trace: in the scenario's own object */
        v = json_object_get(json_object_get(summary, sc->extra_key), "verdict");
    return json_is_object(v) ? v : NULL;
}

const char *scenario_summary_signal(const json_t *summary)
{
    return json_get_str(scenario_summary_verdict(summary), "signal", "-");
}

/* The table: one row per scenario, each defined in its own scen_<name>.c. */
static const struct scenario *const TABLE[] = {
    &SCEN_STANDARD,   &SCEN_EVICTION_REPLAY, &SCEN_REUSE_VERIFY,
    &SCEN_MULTI_TURN, &SCEN_TRACE,           &SCEN_BREAKEVEN,
};

#define N_SCENARIOS (sizeof TABLE / sizeof TABLE[0])

const struct scenario *scenario_find(const char *name)
{
    for (size_t i = 0; name && i < N_SCENARIOS; i++)
        if (strcmp(TABLE[i]->name, name) == 0)
            return TABLE[i];
    return NULL;
}

const char *const *scenario_names(void)
{
    static const char *names[N_SCENARIOS + 1];
    for (size_t i = 0; i < N_SCENARIOS; i++)
        names[i] = TABLE[i]->name;
    return names;
}
