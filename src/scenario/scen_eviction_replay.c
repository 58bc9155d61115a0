/*
 * scen_eviction_replay.c - `--scenario eviction_replay` (docs/WORKLOADS.md): does a
 * block evicted to disk come back? warm_A fills the cache with set A, pressure_B (another seed,
 * sized by --pressure) pushes it out of the faster tiers, replay_A sends set A again. The
 * verdicts read the engine's KV counters (summary.json eviction_replay_signal_kvbm) and the block
 * device (eviction_replay_signal_io) over those phases; replay_A answers the question in
 * `kvbench compare`.
 */
#include "scenario/scenario.h"
#include "model/engines.h"

#include "analysis/signals.h"
#include "probe/prom.h"
#include "util/json.h"

#include <stdio.h>
#include <string.h>

#define NODE_TITLE_MAX 200

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

/* Cached tokens the responses of a phase reported (usage or llama.cpp timings), summed; -1 when
 * no response carried them. */
static double phase_cached(const struct phase_state *ps)
{
    double sum = 0;
    bool any = false;
    for (size_t i = 0; ps && i < ps->res.n_aggs; i++) {
        sum += ps->res.aggs[i].cached;
        any |= ps->res.aggs[i].any_cached;
    }
    return any ? sum : -1;
}

/* from's members (a set: an object of keys) into `into`. */
static void merge_keys(json_t *into, const json_t *from)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)from, k, v)
    {
        (void)v;
        if (*k)
            json_object_set_new(into, k, json_true());
    }
}

/* Distinct payload hashes of replay_A, and how many of them warm_A sent too (-1: unknown). */
static void replay_payloads(const struct phase_state *w, const struct phase_state *r, long *n,
                            long *in_warm)
{
    *n = *in_warm = -1;
    if (!w || !r)
        return;
    json_t *warm = json_object(), *replay = json_object();
    bool capped = false;
    for (size_t i = 0; i < w->res.n_aggs; i++) {
        merge_keys(warm, w->res.aggs[i].payload_sha);
        capped |= w->res.aggs[i].identity_capped;
    }
    for (size_t i = 0; i < r->res.n_aggs; i++) {
        merge_keys(replay, r->res.aggs[i].payload_sha);
        capped |= r->res.aggs[i].identity_capped;
    }
    if (!capped) { /* a capped set cannot say a hash is absent */
        const char *k;
        json_t *v;
        *n = (long)json_object_size(replay);
        *in_warm = 0;
        json_object_foreach(replay, k, v)
        {
            (void)v;
            *in_warm += json_object_get(warm, k) != NULL;
        }
    }
    json_decref(warm);
    json_decref(replay);
}

/* Successful requests of a phase. */
static size_t phase_ok(const struct phase_state *ps)
{
    size_t ok = 0;
    for (size_t i = 0; ps && i < ps->res.n_aggs; i++)
        ok += ps->res.aggs[i].ok;
    return ok;
}

static json_t *eviction_kvbm(const struct run_state *rs)
{
    const struct phase_state *w = scenario_find_phase(rs, "warm_A"),
                             *p = scenario_find_phase(rs, "pressure_B"),
                             *r = scenario_find_phase(rs, "replay_A");
    json_t *sig = signal_eviction_kvbm(w ? w->kv_delta : NULL, p ? p->kv_delta : NULL,
                                       r ? r->kv_delta : NULL, phase_cached(r));
    /* a phase in which nothing succeeded cannot show reuse or its absence */
    const struct phase_state *empty = !w || phase_ok(w) == 0   ? w
                                      : !r || phase_ok(r) == 0 ? r
                                                               : NULL;
    if (!w || !r || empty) {
        char text[300];
        if (empty)
            snprintf(text, sizeof text,
                     "No request of %s succeeded (%zu sent): whether set A was brought back "
                     "cannot be judged.",
                     empty->name, empty->res.n);
        else
            snprintf(text, sizeof text, "warm_A and replay_A did not both run: nothing to judge.");
        json_object_set_new(sig, "signal", json_string("unavailable"));
        json_object_set_new(sig, "interpretation", json_string(text));
        json_object_del(sig, "diagnosis");
        return sig;
    }
    enum kv_mode kv_mode = rs->cfg->kv_mode;
    double g3 = -1;
    const struct phase_state *any = r ? r : w;
    if (kv_mode_tiers(kv_mode) < 2) {
        char why[64];
        snprintf(why, sizeof why, "kv mode %s", kv_mode_name(kv_mode));
        signal_eviction_no_disk_tier(sig, why);
    } else if (any && any->after.success &&
               prom_json_lookup(any->after.metrics, KVBENCH_TIER_CAPACITY "{tier=\"g3\"}", &g3) &&
               g3 == 0) {
        signal_eviction_no_disk_tier(sig, "the engine reports a disk tier of 0 blocks");
    } else {
        long n, in_warm;
        replay_payloads(w, r, &n, &in_warm);
        signal_eviction_identity(sig, n, in_warm);
    }
    return sig;
}

static json_t *eviction_io(const struct run_state *rs)
{
    const struct phase_state *w = scenario_find_phase(rs, "warm_A"),
                             *p = scenario_find_phase(rs, "pressure_B"),
                             *r = scenario_find_phase(rs, "replay_A");
    /* other nodes' disks, when given, are where the disk tier is: the verdict names the node */
    json_t *sig =
        signal_eviction_io_nodes(w ? w->nodes : NULL, p ? p->nodes : NULL, r ? r->nodes : NULL);
    if (sig)
        return sig;
    sig =
        signal_eviction_io(w ? w->io_delta : NULL, p ? p->io_delta : NULL, r ? r->io_delta : NULL);
    if ((w && w->nodes) || (r && r->nodes))
        json_object_set_new(sig, "nodes_note",
                            json_string("no other node's disk figures cover both warm_A and "
                                        "replay_A: the local block device is the evidence"));
    return sig;
}

static void eviction_verdicts(const struct run_state *rs, struct scenario_verdicts *v)
{
    v->kvbm = eviction_kvbm(rs);
    v->io = eviction_io(rs);
}

/* ------------------------------------------------------------ report */

static void json_int_or_dash(const json_t *v, char *out, size_t n)
{
    if (json_is_integer(v))
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
    else
        snprintf(out, n, "unknown");
}

/* --pressure auto: how set B was sized, and whether the tiers allowed a read-back at all. */
static void pressure_section(struct buf *b, const json_t *plan)
{
    if (!plan || strcmp(json_get_str(plan, "mode", ""), "auto") != 0)
        return;
    const json_t *cap = json_object_get(plan, "capacity_blocks");
    const json_t *f = json_object_get(plan, "feasible");
    const char *verdict = json_is_true(f)    ? "feasible"
                          : json_is_false(f) ? "**impossible with these tiers**"
                                             : "not decided";
    buf_printf(b, "### Pressure plan (`--pressure auto`): %s\n\n", verdict);
    char d[32], h[32], k[32];
    json_int_or_dash(json_object_get(cap, "device"), d, sizeof d);
    json_int_or_dash(json_object_get(cap, "host"), h, sizeof h);
    json_int_or_dash(json_object_get(cap, "disk"), k, sizeof k);
    buf_printf(b, "Tiers (KV blocks): device %s, host %s, disk %s.", d, h, k);
    const json_t *sa = json_object_get(plan, "set_a"), *sb = json_object_get(plan, "set_b");
    if (sa && sb)
        buf_printf(b,
                   " Set A: %lld requests, %lld blocks; set B: %lld requests, about %lld blocks.",
                   (long long)json_integer_value(json_object_get(sa, "requests")),
                   (long long)json_integer_value(json_object_get(sa, "blocks")),
                   (long long)json_integer_value(json_object_get(sb, "requests")),
                   (long long)json_integer_value(json_object_get(sb, "blocks")));
    buf_printf(b, " %s.\n\n", json_get_str(plan, "reason", ""));
}

static void report_eviction(struct buf *b, const json_t *s, const json_t *src, const json_t *config)
{
    const json_t *ov = json_object_get(s, "overall_summary");
    scenario_md_signal(b, "Replay from disk (KV metrics)",
                       json_object_get(src, "eviction_replay_signal_kvbm"));
    const json_t *io = json_object_get(ov, "eviction_replay_signal_io");
    if (!io)
        io = json_object_get(s, "eviction_replay_signal_io");
    char title[NODE_TITLE_MAX];
    if (json_is_string(json_object_get(io, "node")))
        snprintf(title, sizeof title, "Replay from disk (node %s's disks, via %s)",
                 json_get_str(io, "node", "?"), json_get_str(io, "source", "?"));
    else
        snprintf(title, sizeof title, "Replay from disk (block device)");
    scenario_md_signal(b, title, io);
    pressure_section(b, json_object_get(config, "pressure_plan"));
}

static bool answers_eviction(const char *phase)
{
    return strcmp(phase, "replay_A") == 0;
}

const struct scenario SCEN_EVICTION_REPLAY = {
    .name = "eviction_replay",
    .what = "does a block evicted to disk come back: warm_A, pressure_B, replay_A",
    .plan = plan_eviction,
    .verdicts = eviction_verdicts,
    .kvbm_key = "eviction_replay_signal_kvbm",
    .io_key = "eviction_replay_signal_io",
    .signal_key = "eviction_replay_signal",
    .report = report_eviction,
    .pressure = true,
    .answers = answers_eviction,
    .answer_phases = "replay_A",
};
