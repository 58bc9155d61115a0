/*
 * sweep.c - `kvbench sweep` (docs/SWEEP.md): capacity at SLO per KV mode. A step is one whole
 * `kvbench run` (bench_run) at one offered load, in an open loop, with its own run id: the
 * default --prompt-salt (the run id) gives every step prompts of its own, so one step's cache
 * does not serve the next, and every step does its own warm-up. The step is judged from what its
 * run wrote (summary.json for attainment, corrected TTFT and the tiers' onboarded blocks;
 * requests.jsonl for the send and completion rates and the TTFT of the first and last third),
 * and verdict/capacity.c decides pass or fail and the next load.
 *
 * Repeats: the first search per mode climbs a x2 ladder from --start-rate; each later search
 * re-brackets the boundary from just under the latest estimate with a finer ladder (x (1 + 3
 * precision), squared on each further step the same way), its start shifted by a fraction of the
 * precision per repeat so that searches do not all test one grid. Whole searches are interleaved
 * (A, B, A, B, ...), the server restarted before each (compare_prepare_mode), so that drift falls
 * on every mode alike and a restart per step is not needed.
 */
#include "run/sweep.h"

#include "verdict/capacity.h"
#include "verdict/compare.h"
#include "report/sweep_md.h"
#include "analysis/stats.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sweep_load_of(const char *scenario)
{
    if (!scenario)
        return -1;
    if (strcmp(scenario, "standard") == 0)
        return SWEEP_LOAD_REQUEST_RATE;
    if (strcmp(scenario, "multi_turn") == 0)
        return SWEEP_LOAD_USER_QPS;
    if (strcmp(scenario, "trace") == 0)
        return SWEEP_LOAD_TRACE_SPEEDUP;
    return -1;
}

static void event(const struct sweep_config *c, const char *ev, const char *mode,
                  const char *detail)
{
    if (c->cmp.event)
        c->cmp.event(ev, mode, detail, c->cmp.event_user);
}

struct sweep_mode {
    const char *mode;
    char label[80];
    struct cap_mode cm;
    json_t *searches; /* [{repeat, start, factor, end, estimate, steps: [...]}] */
    size_t n_steps;
};

/* ------------------------------------------------------------ one step's measurements */

struct row {
    double due, end, ttft_c;
    bool ok;
};

static int cmp_due(const void *a, const void *b)
{
    double x = ((const struct row *)a)->due, y = ((const struct row *)b)->due;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of field (0: corrected TTFT, 1: due time, 2: completion) over rows[from, to) of
 * the successful requests (due times: all); NAN when none. */
static double third_median(const struct row *rows, size_t from, size_t to, int field)
{
    double v[to > from ? to - from : 1];
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        double x = field == 0 ? rows[i].ttft_c : field == 1 ? rows[i].due : rows[i].end;
        if ((field == 1 || rows[i].ok) && isfinite(x))
            v[n++] = x;
    }
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof v[0], cmp_double);
    return stats_percentile_sorted(v, n, 50);
}

static bool phase_included(const json_t *included, const char *phase)
{
    size_t i;
    const json_t *p;
    json_array_foreach(included, i,
                       p) if (phase && strcmp(json_string_value(p), phase) == 0) return true;
    return false;
}

/* One row of requests.jsonl into *r (and the hit-rate sums); false when it is not measured. */
static bool row_of(const json_t *j, const json_t *included, struct row *r, double *cached,
                   double *prompt)
{
    if (!phase_included(included, json_get_str(j, "phase", NULL)))
        return false;
    double due, end;
    const char *ts = json_get_str(j, "scheduled_ts", NULL);
    if (!ts)
        ts = json_get_str(j, "start_ts", NULL);
    if (!ts || clock_parse_iso(ts, &due) < 0)
        return false;
    const char *te = json_get_str(j, "end_ts", NULL);
    if (!te || clock_parse_iso(te, &end) < 0)
        end = NAN;
    const json_t *ttft = json_object_get(j, "ttft_ms");
    r->due = due;
    r->end = end;
    r->ok = json_is_null(json_object_get(j, "error")) && isfinite(end);
    r->ttft_c = json_is_number(ttft)
                    ? json_number_value(ttft) + json_get_num(j, "schedule_lag_ms", 0)
                    : NAN;
    double p = json_get_num(j, "usage_prompt_tokens", json_get_num(j, "prompt_tokens_est", 0));
    *prompt += p;
    *cached += json_get_num(j, "cached_tokens", 0);
    return true;
}

/* The send and completion rates and the TTFT thirds from requests.jsonl; the KV hit rate
 * (cached / prompt tokens) in *hit. */
static void step_rows(const char *run_dir, const json_t *included, struct cap_step *cs, double *hit)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/requests.jsonl", run_dir);
    cs->sent_rate = cs->done_rate = cs->ttft_first = cs->ttft_last = *hit = NAN;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    struct row *rows = NULL;
    size_t n = 0, cap = 0;
    double cached = 0, prompt = 0;
    char *line = NULL;
    size_t llen = 0;
    while (getline(&line, &llen, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        struct row r;
        if (j && row_of(j, included, &r, &cached, &prompt)) {
            if (n == cap) {
                struct row *g = realloc(rows, (cap ? cap * 2 : 256) * sizeof *rows);
                if (!g) {
                    json_decref(j);
                    break;
                }
                rows = g;
                cap = cap ? cap * 2 : 256;
            }
            rows[n++] = r;
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    if (prompt > 0)
        *hit = cached / prompt;
    if (n >= 6) {
        /* the first and last third by due time: their medians, robust to one slow request,
         * where the ends of the step are not */
        qsort(rows, n, sizeof *rows, cmp_due);
        size_t k = n / 3;
        double d0 = third_median(rows, 0, k, 1), d1 = third_median(rows, n - k, n, 1);
        double e0 = third_median(rows, 0, k, 2), e1 = third_median(rows, n - k, n, 2);
        double between = (double)(n - k); /* requests from one third's middle to the other's */
        cs->between = between;
        cs->latency_first = e0 - d0;
        if (d1 > d0)
            cs->sent_rate = between / (d1 - d0);
        if (e1 > e0)
            cs->done_rate = between / (e1 - e0);
        cs->ttft_first = third_median(rows, 0, k, 0);
        cs->ttft_last = third_median(rows, n - k, n, 0);
    }
    free(rows);
}

/* Attainment over the included phases (met / judged, from each phase's goodput: an invalid run
 * has no overall goodput), their names in *included and the onboarded blocks per tier in step. */
static double step_summary(const json_t *s, json_t *included, json_t *step)
{
    double met = 0, judged = 0, host = 0, disk = 0;
    bool tiers = false;
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(s, "phase_summaries"), i, p)
    {
        if (!json_get_bool(p, "included_in_overall", false))
            continue;
        json_array_append_new(included, json_string(json_get_str(p, "phase", "")));
        const json_t *g = json_object_get(p, "goodput");
        if (json_is_number(json_object_get(g, "met"))) {
            met += json_get_num(g, "met", 0);
            judged += json_get_num(g, "requests", 0);
        }
        const json_t *ed =
            json_object_get(json_object_get(p, "kvbm_metrics_delta"), "engine_delta");
        if (json_is_number(json_object_get(ed, "onboard_blocks_host"))) {
            tiers = true;
            host += json_get_num(ed, "onboard_blocks_host", 0);
            disk += json_get_num(ed, "onboard_blocks_disk", 0);
        }
    }
    json_object_set_new(step, "onboard_blocks_host", tiers ? json_real(host) : json_null());
    json_object_set_new(step, "onboard_blocks_disk", tiers ? json_real(disk) : json_null());
    const json_t *o = json_object_get(s, "overall_summary");
    const json_t *tc = json_object_get(o, "ttft_ms_corrected");
    json_object_set_new(step, "ttft_p50_ms", json_copy(json_object_get(tc, "p50")));
    json_object_set_new(step, "ttft_p90_ms", json_copy(json_object_get(tc, "p90")));
    json_object_set_new(step, "requests", json_real(judged));
    return judged > 0 ? met / judged : NAN;
}

static json_t *num_or_null(double v, int decimals)
{
    return isfinite(v) ? json_real(round_to(v, decimals)) : json_null();
}

/* ------------------------------------------------------------ one step */

/* The run configuration of a step at rate (the caller's copy of the workload). */
static void step_config(const struct sweep_config *c, double rate, struct run_config *rc)
{
    switch (sweep_load_of(rc->scen.scenario)) {
    case SWEEP_LOAD_REQUEST_RATE:
        rc->request_rate = rate;
        if (rc->scen.requests < c->min_requests)
            rc->scen.requests = c->min_requests;
        break;
    case SWEEP_LOAD_USER_QPS:
        rc->scen.user_qps = rate / (double)rc->scen.users;
        break;
    default:
        rc->scen.trace_speedup = rate;
        break;
    }
}

/* Run the step of mode m at rate; its judgement in *pass. Its json entry (new reference), or
 * NULL when the run could not be made (e, and the sweep stops). */
static json_t *run_step(const struct sweep_config *c, struct sweep_mode *m, double rate, bool *pass,
                        char *e)
{
    struct run_config rc = c->cmp.run;
    if (kv_mode_parse(m->mode, &rc.scen.kv_mode) < 0) {
        snprintf(e, ERR_LEN, "unknown kv mode '%s'", m->mode);
        return NULL;
    }
    step_config(c, rate, &rc);
    char run_id[256];
    snprintf(run_id, sizeof run_id, "%s_%s_s%02zu", c->cmp.compare_id, m->label, ++m->n_steps);
    rc.run_id = run_id;
    event(c, "run", m->mode, run_id);
    struct run_outcome ro;
    if (bench_run(&rc, c->cmp.interrupted, &ro, e) != RUN_OK)
        return NULL;
    if (ro.requests_sent == 0) { /* the workload, not the load: no other load would do better */
        snprintf(e, ERR_LEN, "step %s sent no request (%s)", run_id,
                 ro.invalid_reason[0] ? ro.invalid_reason : "nothing to send");
        return NULL;
    }
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/summary.json", ro.run_dir);
    json_t *s = json_read_file(path, e);
    if (!s)
        return NULL;
    int load = sweep_load_of(rc.scen.scenario);
    json_t *step = json_pack("{s:s, s:f, s:b}", "run_id", run_id, "offered", round_to(rate, 4),
                             "valid", ro.valid);
    json_t *included = json_array();
    struct cap_step cs = {.offered = rate, .check_growth = load == SWEEP_LOAD_REQUEST_RATE};
    cs.attainment = step_summary(s, included, step);
    double hit;
    step_rows(ro.run_dir, included, &cs, &hit);
    json_decref(included);
    json_decref(s);
    const struct slo *slo = &c->cmp.run.slo;
    enum cap_judgement j = capacity_judge(&cs, c->target, slo->limit_ms[SLO_TTFT]);
    *pass = j == CAP_PASS;
    json_object_set_new(step, "attainment", num_or_null(cs.attainment, 4));
    json_object_set_new(step, "achieved_req_per_s", num_or_null(cs.done_rate, 3));
    json_object_set_new(step, "sent_req_per_s", num_or_null(cs.sent_rate, 3));
    json_object_set_new(step, "ttft_first_third_ms", num_or_null(cs.ttft_first, 3));
    json_object_set_new(step, "ttft_last_third_ms", num_or_null(cs.ttft_last, 3));
    json_object_set_new(step, "kv_hit_rate", num_or_null(hit, 4));
    json_object_set_new(step, "judgement", json_string(capacity_judgement_name(j)));
    char detail[200];
    snprintf(detail, sizeof detail, "offered %.4g: %s (attainment %.3f)", rate,
             capacity_judgement_name(j), cs.attainment);
    event(c, "step", m->mode, detail);
    return step;
}

/* ------------------------------------------------------------ searches */

/* One search of mode m (repeat rep). Returns 0, or -1 with e when a step could not run. */
static int run_search(const struct sweep_config *c, struct sweep_mode *m, size_t rep, char *e)
{
    double start = c->start, factor = 2;
    bool accelerate = rep > 0;
    if (rep > 0) {
        /* re-bracket the boundary: just under the latest estimate, a finer ladder, the start
         * shifted by a fraction of the precision per repeat */
        factor = 1 + 3 * c->precision;
        start = m->cm.est[m->cm.n - 1] / factor *
                pow(1 + c->precision, (double)rep / (double)c->repeats);
    }
    struct cap_search s;
    capacity_search_init(&s, start, factor, c->precision, c->min_rate, c->max_rate, c->max_steps,
                         accelerate);
    json_t *steps = json_array();
    json_t *entry = json_pack("{s:I, s:f, s:f, s:o}", "repeat", (json_int_t)(rep + 1), "start",
                              round_to(start, 4), "factor", round_to(factor, 4), "steps", steps);
    json_array_append_new(m->searches, entry);
    double rate;
    while (capacity_search_next(&s, &rate)) {
        if (c->cmp.interrupted && *c->cmp.interrupted)
            return err_set(e, "interrupted");
        bool pass = false;
        json_t *step = run_step(c, m, rate, &pass, e);
        if (!step)
            return -1;
        json_object_set_new(step, "repeat", json_integer((json_int_t)(rep + 1)));
        json_array_append_new(steps, step);
        capacity_search_record(&s, rate, pass);
    }
    json_object_set_new(entry, "end", json_string(capacity_end_name(s.end)));
    json_object_set_new(entry, "estimate", s.lo > 0 ? json_real(round_to(s.lo, 4)) : json_null());
    if (m->cm.n < CAP_REPEATS_MAX) {
        m->cm.est[m->cm.n] = s.lo;
        m->cm.end[m->cm.n++] = s.end;
    }
    return 0;
}

/* Every search, interleaved per repeat. A mode whose first search found no capacity is not
 * searched again (a bound is not refined by repeating it). */
static int run_searches(const struct sweep_config *c, struct sweep_mode *ms, char *err)
{
    for (size_t rep = 0; rep < c->repeats; rep++) {
        for (size_t i = 0; i < c->cmp.n_modes; i++) {
            struct sweep_mode *m = &ms[i];
            if (rep > 0 && m->cm.end[0] != CAP_FOUND)
                continue;
            if (compare_prepare_mode(&c->cmp, m->mode, err) < 0)
                return -1;
            if (run_search(c, m, rep, err) < 0) {
                event(c, "failed", m->mode, err);
                return -1;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------ sweep.json */

/* How the SLO reads in a verdict: "90 % of requests within ttft_ms <= 2000". */
static void slo_text(const struct sweep_config *c, char *out, size_t len)
{
    size_t o = (size_t)snprintf(out, len, "%.4g %% of requests within", c->target * 100);
    const char *sep = " ";
    for (int k = 0; k < SLO_KEYS && o < len; k++) {
        if (c->cmp.run.slo.limit_ms[k] <= 0)
            continue;
        o += (size_t)snprintf(out + o, len - o, "%s%s <= %.6g", sep, SLO_NAMES[k],
                              c->cmp.run.slo.limit_ms[k]);
        sep = ", ";
    }
}

static json_t *capacity_json(const struct cap_mode *cm)
{
    json_t *est = json_array();
    for (size_t i = 0; i < cm->n; i++)
        json_array_append_new(est, num_or_null(cm->est[i] > 0 ? cm->est[i] : NAN, 4));
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:s}", "value", num_or_null(cm->capacity, 4),
                     "ci95_low", num_or_null(cm->lo, 4), "ci95_high", num_or_null(cm->hi, 4),
                     "estimates", est, "searches", (json_int_t)cm->n, "end",
                     capacity_end_name(cm->censored));
}

/* The ratios of every mode to the first, their verdicts, and the decision (its lines joined). */
static json_t *decision_json(const struct sweep_config *c, struct sweep_mode *ms, json_t *ratios,
                             struct sweep_outcome *out)
{
    char slo[300];
    slo_text(c, slo, sizeof slo);
    const char *verdict = c->cmp.n_modes > 1 ? NULL : "single_mode";
    size_t o = 0;
    for (size_t i = 1; i < c->cmp.n_modes; i++) {
        char line[600];
        struct cap_ratio r;
        enum cap_verdict v = capacity_compare(&ms[0].cm, ms[0].label, &ms[i].cm, ms[i].label,
                                              c->precision, slo, &r, line, sizeof line);
        json_array_append_new(ratios,
                              json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s}", "mode",
                                        ms[i].mode, "label", ms[i].label, "baseline", ms[0].label,
                                        "ratio", num_or_null(r.ratio, 4), "ci95_low",
                                        num_or_null(r.lo, 4), "ci95_high", num_or_null(r.hi, 4),
                                        "verdict", capacity_verdict_name(v), "line", line));
        if (!verdict || v == CAP_V_CANNOT)
            verdict = capacity_verdict_name(v);
        o += (size_t)snprintf(out->decision + o,
                              o < sizeof out->decision ? sizeof out->decision - o : 0, "%s%s",
                              i > 1 ? "; " : "", line);
    }
    if (c->cmp.n_modes == 1) {
        const struct cap_mode *cm = &ms[0].cm;
        const char *unit =
            sweep_load_of(c->cmp.run.scen.scenario) == SWEEP_LOAD_TRACE_SPEEDUP ? "x" : "req/s";
        if (cm->censored != CAP_FOUND)
            snprintf(out->decision, sizeof out->decision, "cannot tell: %s's search ended %s",
                     ms[0].label, capacity_end_name(cm->censored));
        else if (cm->has_ci)
            snprintf(out->decision, sizeof out->decision,
                     "%s serves %.4g %s (95 %% CI %.4g-%.4g) with %s", ms[0].label, cm->capacity,
                     unit, cm->lo, cm->hi, slo);
        else
            snprintf(out->decision, sizeof out->decision,
                     "%s serves %.4g %s with %s (one search: no interval)", ms[0].label,
                     cm->capacity, unit, slo);
    }
    return json_pack("{s:s, s:s}", "verdict", verdict, "line", out->decision);
}

static const char *const LOAD_VARIABLES[] = {"request_rate", "user_qps", "trace_speedup"};

static json_t *sweep_json(const struct sweep_config *c, struct sweep_mode *ms,
                          struct sweep_outcome *out)
{
    int load = sweep_load_of(c->cmp.run.scen.scenario);
    json_t *modes = json_array();
    out->all_found = true;
    for (size_t i = 0; i < c->cmp.n_modes; i++) {
        capacity_mode_summarise(&ms[i].cm);
        out->all_found &= ms[i].cm.n > 0 && ms[i].cm.censored == CAP_FOUND;
        json_array_append_new(modes, json_pack("{s:s, s:s, s:O, s:o}", "mode", ms[i].mode, "label",
                                               ms[i].label, "searches", ms[i].searches, "capacity",
                                               capacity_json(&ms[i].cm)));
    }
    json_t *ratios = json_array();
    json_t *decision = decision_json(c, ms, ratios, out);
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:s, s:o}, s:o, s:f, s:f, s:I, s:o, s:o, s:o, s:b}", "sweep_id",
        c->cmp.compare_id, "scenario", c->cmp.run.scen.scenario, "base_url", c->cmp.run.base_url,
        "load", "variable", LOAD_VARIABLES[load], "unit",
        load == SWEEP_LOAD_TRACE_SPEEDUP ? "x" : "req/s", "users",
        load == SWEEP_LOAD_USER_QPS ? json_integer((json_int_t)c->cmp.run.scen.users) : json_null(),
        "slo", slo_json(&c->cmp.run.slo), "slo_target", c->target, "precision", c->precision,
        "repeats", (json_int_t)c->repeats, "modes", modes, "ratios", ratios, "decision", decision,
        "steps_ok", out->steps_ok);
    return j;
}

int sweep_run(const struct sweep_config *c, struct sweep_outcome *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (sweep_load_of(c->cmp.run.scen.scenario) < 0)
        return err_set(err, "scenario %s cannot be swept (standard, multi_turn or trace)",
                       c->cmp.run.scen.scenario);
    snprintf(out->dir, sizeof out->dir, "%s/%s", c->cmp.run.results_root, c->cmp.compare_id);
    if (fs_mkdir_new(out->dir, err) < 0)
        return -1;
    struct sweep_mode *ms = calloc(c->cmp.n_modes ? c->cmp.n_modes : 1, sizeof *ms);
    if (!ms)
        return err_set(err, "out of memory");
    for (size_t i = 0; i < c->cmp.n_modes; i++) {
        ms[i].mode = c->cmp.modes[i];
        compare_label(c->cmp.modes, c->cmp.n_modes, i, ms[i].label, sizeof ms[i].label);
        ms[i].searches = json_array();
    }
    char e[ERR_LEN] = "";
    out->steps_ok = run_searches(c, ms, e) == 0;
    if (!out->steps_ok)
        log_warn("sweep: stopped: %s", e);
    json_t *j = sweep_json(c, ms, out);
    if (!out->steps_ok)
        json_object_set_new(j, "stopped", json_string(e));
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/sweep.json", out->dir);
    int rc = !j                                  ? err_set(err, "sweep.json: out of memory")
             : json_write_file(path, j, err) < 0 ? -1
                                                 : sweep_report_write(out->dir, j, err);
    json_decref(j);
    for (size_t i = 0; i < c->cmp.n_modes; i++)
        json_decref(ms[i].searches);
    free(ms);
    return rc;
}
