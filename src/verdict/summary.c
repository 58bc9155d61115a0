/*
 * summary.c - summary.json (SPEC §5.3) from the run's phase states: per-phase statistics, the
 * overall summary over included phases (or {excluded: true, …} for an invalid run), KV metric
 * deltas and their rollup, the scenario's signals, and request identity; with --slo, goodput
 * (attainment, goodput rates, failures per objective) per phase and overall from the counters the
 * load threads kept (docs/GOODPUT.md).
 */
#include "verdict/summary.h"

#include "scenario/scenario.h"

#include "analysis/stats.h"
#include "probe/fingerprint.h"
#include "probe/nodes.h"
#include "probe/prom.h"
#include "util/json.h"
#include "util/version.h"

#include <math.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

/* The aggregates a summary reads: one phase's threads, or every included phase's (overall). */
struct agg {
    struct phase_agg sum; /* counters only (stores stay in the parts) */
    struct phase_agg **parts;
    size_t n_parts;
    double duration;
    bool lost; /* measured values were lost (a spill failed) */
};

static void agg_add(struct agg *a, const struct phase_result *r, double duration)
{
    a->duration += duration;
    struct phase_agg **np = realloc(a->parts, (a->n_parts + r->n_aggs + 1) * sizeof *np);
    if (!np)
        return;
    a->parts = np;
    for (size_t i = 0; i < r->n_aggs; i++) {
        a->parts[a->n_parts++] = &r->aggs[i];
        phase_agg_sum(&a->sum, &r->aggs[i]);
    }
}

static void agg_free(struct agg *a)
{
    phase_agg_free(&a->sum);
    free(a->parts);
    memset(a, 0, sizeof *a);
}

static json_t *stats_of(struct agg *a, enum agg_metric m)
{
    struct dstats s;
    if (phase_agg_stats(a->parts, a->n_parts, m, &s) < 0)
        a->lost = true;
    return stats_json(&s);
}

static double rate(double x, double seconds)
{
    return seconds > 0 ? x / seconds : 0;
}

static bool phase_agg_has_lag(const struct agg *ag)
{
    for (size_t i = 0; i < ag->n_parts; i++)
        if (ag->parts[i]->lag.n)
            return true;
    return false;
}

/* goodput (docs/GOODPUT.md): the requests that met every objective of --slo, as a share of
 * those judged and per second; how many broke each objective, and which broke most. */
static json_t *goodput_json(const struct scen_config *cfg, const struct agg *ag)
{
    const struct slo_tally *t = &ag->sum.slo;
    json_t *o = json_object();
    json_put(o, "slo", slo_json(cfg->slo));
    char why[256] = "";
    bool judged = slo_judgeable(cfg->slo, cfg->gp->stream, why, sizeof why);
    if (judged && t->judged == 0)
        snprintf(why, sizeof why, "no request finished: nothing to judge");
    json_put_int(o, "requests", (long long)(judged ? t->judged : ag->sum.total));
    if (!judged || t->judged == 0) {
        const char *const NULLS[] = {
            "met",    "attainment", "goodput_req_per_s", "goodput_tokens_per_s",
            "failed", "failed_most"};
        for (size_t i = 0; i < sizeof NULLS / sizeof NULLS[0]; i++)
            json_put(o, NULLS[i], json_null());
        json_put_bool(o, "corrected", false);
        json_put_str(o, "reason", why);
        return o;
    }
    json_put_int(o, "met", (long long)t->met);
    json_put_real(o, "attainment", round_to((double)t->met / (double)t->judged, 4));
    json_put_real(o, "goodput_req_per_s", round_to(rate((double)t->met, ag->duration), 4));
    json_put_real(o, "goodput_tokens_per_s", round_to(rate(t->met_tokens, ag->duration), 3));
    json_t *failed = json_object();
    int most = -1;
    for (int k = 0; k < SLO_KEYS; k++) {
        if (!(cfg->slo->limit_ms[k] > 0))
            continue;
        json_put_int(failed, SLO_NAMES[k], (long long)t->broken[k]);
        /* ties go to the first in SLO_NAMES' order */
        if (t->broken[k] > 0 && (most < 0 || t->broken[k] > t->broken[most]))
            most = k;
    }
    json_put(o, "failed", failed);
    json_put(o, "failed_most", most >= 0 ? json_string(SLO_NAMES[most]) : json_null());
    json_put_bool(o, "corrected", t->corrected > 0);
    return o;
}

/* The statistics shared by phase and overall summaries. */
static void agg_json(json_t *o, struct agg *ag, const struct scen_config *cfg)
{
    const struct phase_agg *a = &ag->sum;
    /* rounded as the reference harness rounds them; requests.jsonl keeps full precision */
    json_put_real(o, "duration_s", round_to(ag->duration, 3));
    json_put_int(o, "total_requests", (long long)a->total);
    json_put_int(o, "ok_requests", (long long)a->ok);
    json_put_int(o, "error_requests", (long long)a->err);
    json_put_real(o, "error_rate", round_to(a->total ? (double)a->err / (double)a->total : 0, 4));
    json_put_int(o, "server_truncated_requests", (long long)a->truncated);
    /* the reference's: every finished request; ok_req_per_s is ours */
    json_put_real(o, "req_per_s", round_to(rate((double)a->total, ag->duration), 4));
    json_put_real(o, "ok_req_per_s", round_to(rate((double)a->ok, ag->duration), 4));
    json_put_real(o, "input_tokens_per_s_est", round_to(rate(a->in_est, ag->duration), 3));
    json_put_real(o, "output_tokens_per_s_est", round_to(rate(a->out_est, ag->duration), 3));
    if (a->any_usage) {
        json_put_real(o, "input_tokens_per_s_usage", round_to(rate(a->in_usage, ag->duration), 3));
        json_put_real(o, "output_tokens_per_s_usage",
                      round_to(rate(a->out_usage, ag->duration), 3));
    }
    json_put(o, "cached_tokens_total", a->any_cached ? json_real(a->cached) : json_null());
    json_put(o, "latency_ms", stats_of(ag, AGG_LATENCY));
    json_put(o, "ttft_ms", stats_of(ag, AGG_TTFT));
    json_put(o, "itl_ms", stats_of(ag, AGG_ITL));
    json_put(o, "tpot_ms", stats_of(ag, AGG_TPOT));
    if (a->total && phase_agg_has_lag(ag)) {
        json_put(o, "latency_ms_corrected", stats_of(ag, AGG_LATENCY_CORRECTED));
        json_put(o, "ttft_ms_corrected", stats_of(ag, AGG_TTFT_CORRECTED));
        json_put(o, "schedule_lag_ms", stats_of(ag, AGG_LAG));
        json_put(o, "client_lag_ms", stats_of(ag, AGG_CLIENT_LAG));
    }
    if (cfg->slo->any)
        json_put(o, "goodput", goodput_json(cfg, ag));
    if (ag->lost) /* the run is invalid too (artifact_write_failed) */
        json_put_bool(o, "measured_values_lost", true);
}

json_t *summary_phase_json(const struct run_state *rs, const struct phase_state *ps)
{
    json_t *o = json_object();
    json_put_str(o, "phase", ps->name);
    json_put_int(o, "concurrency", (long long)ps->concurrency);
    json_put_int(o, "requests", (long long)ps->n);
    json_put_str(o, "prompt_set", ps->set);
    json_put_bool(o, "included_in_overall", ps->included);
    if (ps->skipped)
        json_put_bool(o, "skipped", true);
    struct agg a = {0};
    agg_add(&a, &ps->res, ps->res.duration_s);
    agg_json(o, &a, rs->cfg);
    agg_free(&a);
    const struct phase_result *r = &ps->res;
    const struct scen_config *cfg = rs->cfg;
    if (r->open_loop) {
        json_put(o, "target_rate",
                 isinf(r->target_rate) ? json_string("inf")
                                       : json_real(round_to(r->target_rate, 4)));
        json_put(o, "achieved_rate",
                 json_real_or_null(round_to(r->achieved_rate, 4), !isnan(r->achieved_rate)));
    }
    if (r->threads) {
        json_t *load =
            json_pack("{s:s, s:I, s:s}", "mode", r->open_loop ? "open" : "closed", "threads",
                      (json_int_t)r->threads, "transport", r->transport ? r->transport : "libcurl");
        if (r->open_loop) {
            json_put_str(load, "arrival", names_name(ARRIVAL_TABLE, cfg->shape.arrival));
            json_put_real(load, "burstiness", cfg->shape.burstiness);
            json_put_real(load, "ramp_up_s", cfg->shape.ramp_up_s);
            json_put(load, "max_concurrency",
                     cfg->max_concurrency ? json_integer((json_int_t)cfg->max_concurrency)
                                          : json_null());
        }
        json_put(o, "load", load);
    }
    json_put(o, "kvbm_metrics_delta",
             ps->kv_delta ? json_incref(ps->kv_delta)
                          : json_pack("{s:b, s:s}", "available", 0, "reason", "phase did not run"));
    if (ps->io_delta) {
        json_put_str(o, "block_device", rs->device);
        json_put(o, "io_delta", json_incref(ps->io_delta));
    }
    if (ps->models_after >= 0)
        json_put_int(o, "models_visible_after_phase", ps->models_after);
    if (ps->telemetry)
        json_put(o, "telemetry", json_incref(ps->telemetry));
    if (ps->wall_start_s > 0) {
        json_put_real(o, "started_at", round_to(ps->wall_start_s, 3));
        json_put_real(o, "ended_at", round_to(ps->wall_end_s, 3));
    }
    if (ps->nodes) {
        json_put(o, "nodes", json_incref(ps->nodes));
        json_put(o, "cluster", nodes_cluster_json(ps->nodes));
    }
    return o;
}

json_t *summary_kv_mode_json(const struct scen_config *c, const struct run_state *rs)
{
    bool cpu = c->kv_mode != KV_MODE_OFF;
    bool disk = c->kv_mode == KV_MODE_CPU_DISK;
    if (rs && rs->engine && !rs->kv_modes_apply) {
        /* the recorded mode says nothing about this engine: say so instead of tier sizes */
        char why[400];
        snprintf(why, sizeof why,
                 "not applicable on %s: kvbench's KV modes are not settable there; "
                 "it has %s",
                 rs->engine_id.title, rs->engine->kv_modes_instead);
        return json_pack("{s:s, s:b, s:s, s:n, s:n, s:{s:b, s:b, s:b}}", "mode",
                         kv_mode_name(c->kv_mode), "applies", false, "not_applicable", why,
                         "cpu_cache_gb", "disk_cache_gb", "diagnostic", "disable_partial_reuse",
                         c->diag_disable_partial_reuse, "disable_block_reuse",
                         c->diag_disable_block_reuse, "disable_disk_offload_filter",
                         c->diag_disable_disk_offload_filter);
    }
    return json_pack("{s:s, s:b, s:f, s:f, s:{s:b, s:b, s:b}}", "mode", kv_mode_name(c->kv_mode),
                     "kvbm_enabled", cpu, "cpu_cache_gb", cpu ? c->cpu_cache_gb : 0.0,
                     "disk_cache_gb", disk ? c->disk_cache_gb : 0.0, "diagnostic",
                     "disable_partial_reuse", c->diag_disable_partial_reuse, "disable_block_reuse",
                     c->diag_disable_block_reuse, "disable_disk_offload_filter",
                     c->diag_disable_disk_offload_filter);
}

/* ------------------------------------------------------------ identity */

static void set_add(json_t *set, const char *s)
{
    if (s && *s)
        json_object_set_new(set, s, json_true());
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The set's members, sorted: the threads add them in whatever order requests finish. */
static json_t *set_list(const json_t *set)
{
    json_t *a = json_array();
    size_t n = json_object_size(set), k = 0;
    const char **keys = n ? malloc(n * sizeof *keys) : NULL;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)set, key, v)
    {
        (void)v;
        if (keys)
            keys[k++] = key;
        else
            json_array_append_new(a, json_string(key));
    }
    if (keys) {
        qsort(keys, k, sizeof *keys, cmp_str);
        for (size_t i = 0; i < k; i++)
            json_array_append_new(a, json_string(keys[i]));
    }
    free(keys);
    return a;
}

/* from's members into `into`, up to max members (0: no limit); true when some did not fit */
static bool set_merge(json_t *into, const json_t *from, size_t max)
{
    const char *k;
    json_t *v;
    bool capped = false;
    json_object_foreach((json_t *)from, k, v)
    {
        (void)v;
        if (max && json_object_size(into) >= max && !json_object_get(into, k))
            capped = true;
        else
            set_add(into, k);
    }
    return capped;
}

static json_t *request_identity(const struct run_state *rs)
{
    size_t total = 0;
    for (size_t i = 0; i < rs->n_phases; i++)
        total += rs->phases[i].ran ? rs->phases[i].res.n : 0;
    if (total == 0) /* as the reference writes it */
        return json_pack("{s:b, s:s, s:i}", "available", 0, "reason", "no_requests",
                         "total_requests", 0);
    json_t *p = json_object(), *g = json_object(), *id = json_object(), *pl = json_object();
    json_t *per_phase = json_object();
    bool capped = false;
    for (size_t i = 0; i < rs->n_phases; i++) {
        const struct phase_state *ps = &rs->phases[i];
        if (!ps->ran)
            continue;
        json_t *pp = json_object(), *pid = json_object(), *ppl = json_object();
        bool phase_capped = false;
        for (size_t k = 0; k < ps->res.n_aggs; k++) {
            const struct phase_agg *a = &ps->res.aggs[k];
            phase_capped |= set_merge(pp, a->prompt_sha, LOADGEN_IDENTITY_MAX);
            phase_capped |= set_merge(pid, a->identity_sha, LOADGEN_IDENTITY_MAX);
            phase_capped |= set_merge(ppl, a->payload_sha, LOADGEN_IDENTITY_MAX);
            phase_capped |= a->identity_capped;
        }
        if (ps->res.n)
            set_add(g, rs->params_sha256);
        set_merge(p, pp, 0);
        set_merge(id, pid, 0);
        set_merge(pl, ppl, 0);
        json_t *o =
            json_pack("{s:I, s:o, s:o, s:o, s:[s]}", "request_count", (json_int_t)ps->res.n,
                      "unique_prompt_sha256", set_list(pp), "unique_request_identity_sha256",
                      set_list(pid), "unique_request_payload_sha256", set_list(ppl),
                      "unique_generation_params_sha256", rs->params_sha256);
        if (phase_capped) /* the lists hold the first LOADGEN_IDENTITY_MAX distinct values */
            json_put_int(o, "unique_hashes_capped_at", LOADGEN_IDENTITY_MAX);
        capped |= phase_capped;
        json_object_set_new(per_phase, ps->name, o);
        json_decref(pp);
        json_decref(pid);
        json_decref(ppl);
    }
    /* the hint headers, as the reference lists them; every name seen is ours */
    json_t *keys = json_object(), *all = json_object();
    for (size_t i = 0; i < rs->n_header_keys; i++) {
        set_add(all, rs->header_keys[i]);
        if (loadgen_hint_header(rs->header_keys[i], strlen(rs->header_keys[i])))
            set_add(keys, rs->header_keys[i]);
    }
    json_t *o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "available", total > 0,
                          "total_requests", (json_int_t)total, "unique_prompt_sha256_count",
                          (json_int_t)json_object_size(p), "unique_generation_params_sha256_count",
                          (json_int_t)json_object_size(g), "unique_request_identity_sha256_count",
                          (json_int_t)json_object_size(id), "unique_request_payload_sha256_count",
                          (json_int_t)json_object_size(pl), "response_header_keys_seen",
                          set_list(keys), "phase_identity", per_phase);
    json_put(o, "response_header_keys_all", set_list(all));
    if (capped) /* the counts are lower bounds: a phase had more distinct hashes than it kept */
        json_put_bool(o, "unique_counts_are_lower_bounds", true);
    json_decref(keys);
    json_decref(all);
    json_decref(p);
    json_decref(g);
    json_decref(id);
    json_decref(pl);
    return o;
}

/* ------------------------------------------------------------ kvbm_metrics */

static json_t *kvbm_metrics(const struct run_state *rs, const struct scenario *sc,
                            json_t *scenario_signal)
{
    json_t *deltas = json_object();
    double off = 0, on = 0, matched = 0;
    bool have_off = false, have_on = false, have_matched = false; /* absent is null, not 0 */
    for (size_t i = 0; i < rs->n_phases; i++) {
        const struct phase_state *ps = &rs->phases[i];
        if (!ps->ran || !ps->kv_delta)
            continue;
        json_object_set(deltas, ps->name, ps->kv_delta);
        if (ps->included && json_get_bool(ps->kv_delta, "available", false)) {
            const json_t *v;
            if (json_is_number(v = json_object_get(ps->kv_delta, "offload_blocks_total_delta"))) {
                off += json_number_value(v);
                have_off = true;
            }
            if (json_is_number(v = json_object_get(ps->kv_delta, "onboard_blocks_total_delta"))) {
                on += json_number_value(v);
                have_on = true;
            }
            const json_t *ed = json_object_get(ps->kv_delta, "engine_delta");
            if (json_is_number(v = json_object_get(ed, "reused_tokens"))) {
                matched += json_number_value(v);
                have_matched = true;
            }
        }
    }
    json_t *o = json_object();
    json_put_bool(o, "available", rs->snapshot_ok > 0);
    json_put_int(o, "snapshot_count", (long long)rs->snapshot_count);
    json_put_int(o, "snapshot_ok_count", (long long)rs->snapshot_ok);
    json_put_str(o, "metrics_url",
                 rs->metrics_url[0] ? rs->metrics_url : rs->cfg->kvbm_metrics_url);
    json_put(o, "phase_deltas", deltas);
    json_put_str(o, "kv_mode",
                 kv_mode_name(rs->cfg->kv_mode)); /* the object is summary.json's kv_mode */
    json_put(o, "rollup",
             json_pack("{s:o, s:o, s:o}", "offload_blocks_total_delta",
                       json_real_or_null(off, have_off), "onboard_blocks_total_delta",
                       json_real_or_null(on, have_on), "matched_tokens_total_delta",
                       json_real_or_null(matched, have_matched)));
    if (scenario_signal && sc && sc->signal_key)
        /* the reference harness's names here; overall_summary carries the same object as
         * *_signal_kvbm, as the reference does */
        json_object_set(o, sc->signal_key, scenario_signal);
    return o;
}

json_t *summary_block_device_json(const struct run_state *rs)
{
    return rs->device ? json_pack("{s:s, s:s}", "name", rs->device, "resolved_by", rs->device_how)
                      : json_pack("{s:n, s:s}", "name", "unavailable", rs->device_error);
}

/* ------------------------------------------------------------ the whole summary */

/* summary.json's overall_summary: the included phases together, or, on an invalid run, why it
 * is excluded; and the scenario's verdicts, which stay visible on an invalid run too, as the
 * reference keeps them. */
static json_t *overall_json(const struct run_state *rs, const struct validity *v, json_t *details,
                            const struct scenario *sc, const struct scenario_verdicts *vd)
{
    json_t *overall = json_object();
    json_put_str(overall, "phase", "overall");
    json_put_str(overall, "scenario", rs->cfg->scenario);
    if (v->reason) {
        json_put_bool(overall, "excluded", true);
        json_put_str(overall, "reason", v->reason);
        json_object_set(overall, "details", details);
    } else {
        struct agg a = {0};
        size_t conc = 0, planned = 0;
        for (size_t i = 0; i < rs->n_phases; i++) {
            const struct phase_state *ps = &rs->phases[i];
            if (!ps->included || !ps->ran)
                continue;
            /* the phases' durations as their summaries record them: the overall is their sum
             * to the millisecond, which a reader or `kvbench merge` adding them gets back */
            agg_add(&a, &ps->res, round_to(ps->res.duration_s, 3));
            planned += ps->n;
            if (ps->concurrency > conc)
                conc = ps->concurrency;
        }
        json_put_int(overall, "concurrency", (long long)conc);
        json_put_int(overall, "requests", (long long)planned);
        agg_json(overall, &a, rs->cfg);
        agg_free(&a);
    }
    if (sc && sc->io_key && vd->io)
        json_object_set(overall, sc->io_key, vd->io);
    if (sc && sc->kvbm_key && vd->kvbm)
        json_object_set(overall, sc->kvbm_key, vd->kvbm);
    if (sc && sc->identity_key && vd->identity)
        json_object_set(overall, sc->identity_key, vd->identity);
    return overall;
}

/* The machine and kvbench (fingerprint), with the serving container (docker inspect) under the
 * reference harness's names. */
static json_t *fingerprint_of(const struct run_state *rs)
{
    const struct scen_config *c = rs->cfg;
    json_t *fp = fingerprint_json(KVBENCH_VERSION, KVBENCH_GIT_SHA, rs->created_utc);
    json_put(fp, "container_name",
             c->container_name ? json_string(c->container_name) : json_null());
    const char *img = rs->container ? json_get_str(rs->container, "image", NULL) : NULL;
    const char *dig = rs->container ? json_get_str(rs->container, "image_id", NULL) : NULL;
    json_put(fp, "container_image", img ? json_string(img) : json_null());
    json_put(fp, "container_image_digest", dig ? json_string(dig) : json_null());
    return fp;
}

/* The run's identity and settings: id, validity, warnings, model, engine, scenario, KV mode. */
static void head_json(json_t *s, const struct run_state *rs, const struct validity *v,
                      json_t *details)
{
    const struct scen_config *c = rs->cfg;
    json_put_str(s, "run_id", rs->run_id);
    json_put_str(s, "created_utc", rs->created_utc);
    json_put_bool(s, "run_valid", v->reason == NULL);
    json_put(s, "invalid_reason", v->reason ? json_string(v->reason) : json_null());
    json_put(s, "invalid_details", details); /* strings, as the reference harness writes them */
    json_put(s, "invalid_details_kvbench", json_incref(v->details));
    json_put(s, "warnings", json_incref(rs->warnings));
    json_put(s, "model_id", rs->model[0] ? json_string(rs->model) : json_null());
    if (rs->engine)
        json_put(s, "engine",
                 json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "name", rs->engine->name, "title",
                           rs->engine_id.title, "evidence", rs->engine_id.evidence, "metrics_url",
                           rs->metrics_url, "per_request_reuse", rs->engine->reuse_source,
                           "tier_breakdown", rs->engine->tier_breakdown));
    json_put(s, "model_count_end",
             rs->model_count_end >= 0 ? json_integer(rs->model_count_end) : json_null());
    if (rs->shard) /* one of several client processes of one run (kvbench merge joins them) */
        json_put(s, "shard", json_incref(rs->shard));
    json_put_str(s, "scenario", c->scenario);
    json_put_bool(s, "stream", c->gp->stream);
    json_put(s, "kv_mode", summary_kv_mode_json(c, rs));
    json_t *tags = json_array();
    for (size_t i = 0; i < c->n_variant_tags; i++)
        json_array_append_new(tags, json_string(c->variant_tags[i]));
    json_put(s, "variant_tags", tags);
}

json_t *summary_build(const struct run_state *rs, const struct validity *v, json_t *notes)
{
    json_t *s = json_object();
    json_t *details = validity_strings(v);
    head_json(s, rs, v, details);
    json_t *phases = json_array();
    for (size_t i = 0; i < rs->n_phases; i++)
        if (rs->phases[i].ran || rs->phases[i].skipped)
            json_array_append_new(phases, summary_phase_json(rs, &rs->phases[i]));
    json_put(s, "phase_summaries", phases);

    const struct scenario *sc = scenario_find(rs->cfg->scenario);
    struct scenario_verdicts vd = {NULL, NULL, NULL};
    if (sc && sc->verdicts)
        sc->verdicts(rs, &vd);
    json_put(s, "overall_summary", overall_json(rs, v, details, sc, &vd));
    json_put(s, "kvbm_metrics", kvbm_metrics(rs, sc, vd.kvbm));
    json_t *ident = request_identity(rs);
    if (sc && sc->identity_key && vd.identity)
        json_object_set(ident, sc->identity_key, vd.identity);
    json_put(s, "request_identity", ident);
    if (sc && sc->extra && sc->extra_key)
        json_put(s, sc->extra_key, sc->extra(rs));
    json_put(s, "fingerprint", fingerprint_of(rs));
    json_put(s, "telemetry",
             rs->telemetry ? json_incref(rs->telemetry) : json_pack("{s:b}", "enabled", 0));
    json_put(s, "block_device", summary_block_device_json(rs));
    /* the client's own cost, so a reader can tell it was not the bottleneck */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        json_put(s, "client",
                 json_pack("{s:I, s:f, s:f}", "peak_rss_kib", (json_int_t)ru.ru_maxrss,
                           "cpu_user_s", (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
                           "cpu_sys_s", (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6));
    json_put(s, "notes", json_incref(notes));
    json_decref(vd.kvbm);
    json_decref(vd.io);
    json_decref(vd.identity);
    return s;
}
