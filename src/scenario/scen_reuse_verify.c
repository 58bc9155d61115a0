/*
 * scen_reuse_verify.c - `--scenario reuse_verify` (docs/WORKLOADS.md): is a repeated
 * prompt reused? One prompt sent reuse_1 .. reuse_N at concurrency 1. The verdicts: the engine's
 * KV counters and the responses' cached tokens over the first repeats
 * (reuse_verify_signal_kvbm), and whether the repeats were byte-identical requests
 * (request_identity.reuse_verify_identity), without which no reuse can be expected. The repeats
 * from reuse_2 on answer the question in `kvbench compare`.
 */
#include "scenario/scenario.h"

#include "analysis/signals.h"
#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static json_t *reuse_kvbm(const struct run_state *rs)
{
    const json_t *deltas[3] = {NULL, NULL, NULL};
    long long cached[3] = {-1, -1, -1};
    double ttft[3] = {NAN, NAN, NAN};
    size_t n = 0;
    for (size_t i = 0; i < rs->n_phases && n < 3; i++) {
        const struct phase_state *ps = &rs->phases[i];
        if (strncmp(ps->name, "reuse_", 6) != 0 || !ps->ran)
            continue;
        deltas[n] = ps->kv_delta;
        bool ok = ps->res.n && ps->res.reqs && ps->res.reqs[0].ok;
        cached[n] = ok ? ps->res.reqs[0].cached : -1;
        ttft[n] = ok ? ps->res.reqs[0].ttft_ms : NAN;
        n++;
    }
    return signal_reuse_kvbm(deltas, cached, ttft, n);
}

static json_t *reuse_identity(const struct run_state *rs)
{
    const char *prompt[3], *params[3], *ident[3], *payload[3];
    size_t n = 0;
    for (size_t i = 0; i < rs->n_phases && n < 3; i++) {
        const struct phase_state *ps = &rs->phases[i];
        if (strncmp(ps->name, "reuse_", 6) != 0 || !ps->ran || ps->res.n == 0 || !ps->res.reqs)
            continue;
        const struct req_result *q = &ps->res.reqs[0];
        prompt[n] = q->prompt->sha256;
        params[n] = rs->params_sha256;
        ident[n] = q->identity_sha256;
        payload[n] = q->payload_sha256;
        n++;
    }
    return signal_reuse_identity(prompt, params, ident, payload, n);
}

static void reuse_verdicts(const struct run_state *rs, struct scenario_verdicts *v)
{
    v->kvbm = reuse_kvbm(rs);
    v->identity = reuse_identity(rs);
}

/* ------------------------------------------------------------ report */

static void report_reuse(struct buf *b, const json_t *s, const json_t *src, const json_t *config)
{
    (void)config;
    scenario_md_signal(b, "Prefix reuse (KV metrics)",
                       json_object_get(src, "reuse_verify_signal_kvbm"));
    const json_t *id =
        json_object_get(json_object_get(s, "request_identity"), "reuse_verify_identity");
    if (id)
        buf_printf(b, "### Identity: `%s`\n\nThe repeats sent %s.\n\n",
                   json_get_str(id, "verdict", "?"),
                   json_get_bool(id, "identical_request_payload", false)
                       ? "byte-identical requests (prompt, parameters and payload)"
                       : "requests that differ: reuse cannot be expected");
}

static bool answers_reuse(const char *phase)
{
    return scenario_numbered_from_2(phase, "reuse_");
}

const struct scenario SCEN_REUSE_VERIFY = {
    .name = "reuse_verify",
    .what = "is a repeated prompt reused: reuse_1 .. reuse_N",
    .plan = plan_reuse,
    .verdicts = reuse_verdicts,
    .kvbm_key = "reuse_verify_signal_kvbm",
    .identity_key = "reuse_verify_identity",
    .signal_key = "reuse_verify_signal",
    .report = report_reuse,
    .answers = answers_reuse,
    .answer_phases = "the repeats (reuse_2 ..)",
};
