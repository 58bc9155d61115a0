/*
 * compare.c - mode comparisons.
 *
 * Metrics are read from each run's summary.json (the overall summary; for an invalid run, whose
 * overall summary is excluded, the values are null), so a comparison can also be rebuilt from
 * runs made earlier.
 */
#include "analysis/compare.h"
#include "report/html.h"
#include "report/report.h"

#include "analysis/stats.h"
#include "report/sumtable.h"
#include "analysis/verdict.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metric {
    const char *name;  /* in the comparison */
    const char *group; /* overall_summary member, or special */
    const char *key;
    const char *unit;
};

static const struct metric METRICS[] = {
    {"req_per_s", "overall", "req_per_s", "req/s"},
    {"output_tokens_per_s_est", "overall", "output_tokens_per_s_est", "tok/s"},
    {"error_rate", "overall", "error_rate", ""},
    {"ttft_p50_ms", "ttft_ms", "p50", "ms"},
    {"ttft_p95_ms", "ttft_ms", "p95", "ms"},
    {"ttft_p99_ms", "ttft_ms", "p99", "ms"},
    {"itl_p50_ms", "itl_ms", "p50", "ms"},
    {"itl_p95_ms", "itl_ms", "p95", "ms"},
    {"latency_p50_ms", "latency_ms", "p50", "ms"},
    {"latency_p95_ms", "latency_ms", "p95", "ms"},
    {"latency_p99_ms", "latency_ms", "p99", "ms"},
    {"disk_read_mib", "io", "read_mib_delta", "MiB"},
    {"disk_write_mib", "io", "write_mib_delta", "MiB"},
    {"kv_offload_blocks", "kv", "offload_blocks_total_delta", "blocks"},
    {"kv_onboard_blocks", "kv", "onboard_blocks_total_delta", "blocks"},
    {"kv_matched_tokens", "kv", "matched_tokens_total_delta", "tokens"},
};

static bool metric_value(const json_t *s, const struct metric *m, double *v)
{
    if (!s)
        return false;
    const json_t *ov = json_object_get(s, "overall_summary");
    if (json_get_bool(ov, "excluded", false))
        return false;
    if (strcmp(m->group, "overall") == 0)
        return json_get_num_strict(ov, m->key, v);
    if (strcmp(m->group, "kv") == 0) {
        const json_t *km = json_object_get(s, "kvbm_metrics");
        if (!json_get_bool(km, "available", false))
            return false;
        return json_get_num_strict(json_object_get(km, "rollup"), m->key, v);
    }
    if (strcmp(m->group, "io") == 0) {
        /* summed over the phases counted in the overall summary */
        double sum = 0;
        bool any = false;
        size_t i;
        const json_t *ps;
        json_array_foreach(json_object_get(s, "phase_summaries"), i, ps)
        {
            if (!json_get_bool(ps, "included_in_overall", false))
                continue;
            double x;
            if (json_get_num_strict(json_object_get(ps, "io_delta"), m->key, &x)) {
                sum += x;
                any = true;
            }
        }
        *v = sum;
        return any;
    }
    return json_get_num_strict(json_object_get(ov, m->group), m->key, v);
}

#define RUNS_MAX 1000

/* The metric over a mode's valid runs: their values (vals, n returned). */
static size_t run_values(const json_t *m, const struct metric *mt, double *vals)
{
    const json_t *runs[RUNS_MAX];
    size_t n = verdict_runs_of(m, runs, RUNS_MAX), k = 0;
    for (size_t i = 0; i < n; i++) {
        double v;
        if (runs[i] && metric_value(runs[i], mt, &v) && isfinite(v))
            vals[k++] = v;
    }
    return k;
}

/* Which metrics get statistics over repeats, and which way is better. */
static const struct {
    const char *name, *label;
    bool higher_is_better;
} STAT_METRICS[] = {
    {"ttft_p50_ms", "TTFT p50", false},
    {"ttft_p95_ms", "TTFT p95", false},
    {"latency_p50_ms", "latency p50", false},
    {"req_per_s", "throughput", true},
};

static const struct metric *find_metric(const char *name)
{
    for (size_t k = 0; k < sizeof METRICS / sizeof METRICS[0]; k++)
        if (strcmp(METRICS[k].name, name) == 0)
            return &METRICS[k];
    return NULL;
}

/* comparison.json's `repeats` and `verdict` over the whole runs: per metric and mode the runs'
 * values, their mean and its t interval; per other mode the ratio of geometric means to the
 * baseline's with its Welch interval on the logs (stats_log_ratio_ci), and whether the mode is
 * faster, slower or not different; below COMPARE_MIN_REPEATS valid runs a side, "insufficient
 * repeats". The phase-by-phase figures are verdict.c's. */
static void repeat_stats(json_t *out, const json_t *modes, size_t runs_per_mode)
{
    size_t nm = json_array_size(modes);
    json_t *stats = json_object(), *ratios = json_object(), *lines = json_array();
    double *a = malloc(RUNS_MAX * sizeof *a), *b = malloc(RUNS_MAX * sizeof *b);
    const json_t *base = json_array_get(modes, 0);
    const char *base_label = verdict_label_of(base);
    for (size_t k = 0; a && b && k < sizeof STAT_METRICS / sizeof STAT_METRICS[0]; k++) {
        const struct metric *mt = find_metric(STAT_METRICS[k].name);
        json_t *per_mode = json_object(), *per_ratio = json_object();
        size_t nb = run_values(base, mt, b);
        for (size_t i = 0; i < nm; i++) {
            const json_t *m = json_array_get(modes, i);
            const char *label = verdict_label_of(m);
            size_t na = run_values(m, mt, a);
            json_t *vals = json_array();
            double mean = stats_mean(a, na), var = 0;
            for (size_t j = 0; j < na; j++) {
                json_array_append_new(vals, json_real(a[j]));
                var += (a[j] - mean) * (a[j] - mean);
            }
            bool ci = na >= 2;
            double half =
                ci ? stats_t975((double)(na - 1)) * sqrt(var / (double)(na - 1)) / sqrt((double)na)
                   : NAN;
            json_object_set_new(per_mode, label,
                                json_pack("{s:o, s:I, s:o, s:o, s:o}", "values", vals, "runs",
                                          (json_int_t)na, "mean", json_real_or_null(mean, na > 0),
                                          "ci95_low", json_real_or_null(mean - half, ci),
                                          "ci95_high", json_real_or_null(mean + half, ci)));
            if (i == 0)
                continue;
            struct ratio_ci rc = {0};
            size_t least = na < nb ? na : nb;
            bool rci = least >= COMPARE_MIN_REPEATS && stats_log_ratio_ci(a, na, b, nb, &rc) == 0;
            char verdict[96];
            if (least < COMPARE_MIN_REPEATS) {
                snprintf(verdict, sizeof verdict, "insufficient repeats: %zu, need >= %d", least,
                         COMPARE_MIN_REPEATS);
            } else if (!rci) {
                snprintf(verdict, sizeof verdict, "unavailable");
            } else {
                bool above = rc.lo > 1, below = rc.hi < 1;
                bool better = STAT_METRICS[k].higher_is_better ? above : below;
                bool worse = STAT_METRICS[k].higher_is_better ? below : above;
                snprintf(verdict, sizeof verdict, "%s",
                         better  ? "faster"
                         : worse ? "slower"
                                 : "no difference");
            }
            double ma = stats_mean(a, na), mb = stats_mean(b, nb);
            bool have_ratio = na && nb && mb != 0;
            json_object_set_new(
                per_ratio, label,
                json_pack("{s:s, s:o, s:o, s:o, s:s}", "vs", base_label, "ratio",
                          rci ? json_real(rc.ratio) : json_real_or_null(ma / mb, have_ratio),
                          "ci95_low", json_real_or_null(rc.lo, rci), "ci95_high",
                          json_real_or_null(rc.hi, rci), "verdict", verdict));
            char line[320];
            if (rci)
                snprintf(line, sizeof line, "%s vs %s: %s %.2fx [%.2f, %.2f] %s", label, base_label,
                         STAT_METRICS[k].label, rc.ratio, rc.lo, rc.hi, verdict);
            else
                snprintf(line, sizeof line, "%s vs %s: %s: %s", label, base_label,
                         STAT_METRICS[k].label, verdict);
            json_array_append_new(lines, json_string(line));
        }
        json_object_set_new(stats, STAT_METRICS[k].name, per_mode);
        json_object_set_new(ratios, STAT_METRICS[k].name, per_ratio);
    }
    free(a);
    free(b);
    json_object_set_new(
        out, "repeats",
        json_pack("{s:I, s:s, s:I, s:s, s:o, s:o}", "runs_per_mode", (json_int_t)runs_per_mode,
                  "order", "interleaved", "min_repeats", (json_int_t)COMPARE_MIN_REPEATS,
                  "interval",
                  "Welch's t on the logs of the per-run values: the ratio of geometric means "
                  "with its 95 % interval; each mode's mean with its t interval",
                  "stats", stats, "ratios", ratios));
    struct buf t = BUF_INIT;
    size_t i;
    const json_t *l;
    json_array_foreach(lines, i, l) buf_printf(&t, "%s%s", i ? "; " : "", json_string_value(l));
    json_object_set_new(out, "verdict",
                        json_pack("{s:s, s:o}", "summary", buf_cstr(&t), "lines", lines));
    buf_free(&t);
}

json_t *compare_build(const json_t *modes)
{
    json_t *out = json_object();
    json_t *mode_list = json_array();
    const json_t *first = NULL;
    const char *first_mode = NULL;
    size_t i;
    const json_t *m;
    json_array_foreach(modes, i, m)
    {
        const json_t *s = json_object_get(m, "summary");
        if (i == 0) {
            first = s;
            first_mode = json_get_str(m, "mode", "?");
        }
        json_t *e = json_pack("{s:s, s:s, s:o, s:b, s:o, s:s}", "mode",
                              json_get_str(m, "mode", "?"), "label", verdict_label_of(m), "run_id",
                              json_incref(json_object_get(m, "run_id")), "valid",
                              s && json_get_bool(s, "run_valid", false), "invalid_reason",
                              !s ? json_string(json_get_str(m, "error", "run failed"))
                              : json_object_get(s, "invalid_reason")
                                  ? json_incref(json_object_get(s, "invalid_reason"))
                                  : json_null(),
                              "signal", s ? sumtable_signal(s) : "-");
        const json_t *reps = json_object_get(m, "repeats");
        if (json_is_array(reps)) {
            /* every run: its id, validity and verdict; the mode is valid when all are */
            json_t *runs = json_array();
            bool all = json_array_size(reps) > 0;
            size_t j;
            const json_t *r;
            json_array_foreach(reps, j, r)
            {
                const json_t *ids = json_object_get(m, "run_ids");
                bool ok = json_is_object(r) && json_get_bool(r, "run_valid", false);
                all &= ok;
                json_array_append_new(
                    runs,
                    json_pack("{s:o, s:b, s:s}", "run_id", json_incref(json_array_get(ids, j)),
                              "valid", ok, "signal", json_is_object(r) ? sumtable_signal(r) : "-"));
            }
            json_object_set_new(e, "valid", json_boolean(all));
            json_object_set_new(e, "runs", runs);
        }
        json_array_append_new(mode_list, e);
    }
    json_put(out, "baseline_mode", first_mode ? json_string(first_mode) : json_null());
    json_put(out, "modes", mode_list);
    json_t *metrics = json_array();
    for (size_t k = 0; k < sizeof METRICS / sizeof METRICS[0]; k++) {
        const struct metric *mt = &METRICS[k];
        json_t *values = json_object(), *diff = json_object(), *ratio = json_object();
        double base, vals[RUNS_MAX];
        size_t nb = run_values(json_array_get(modes, 0), mt, vals);
        bool have_base = nb > 0;
        base = stats_mean(vals, nb);
        (void)first;
        json_array_foreach(modes, i, m)
        {
            const char *mode = verdict_label_of(m);
            size_t nv = run_values(m, mt, vals);
            double v = stats_mean(vals, nv);
            bool have = nv > 0;
            json_object_set_new(values, mode, json_real_or_null(v, have));
            json_object_set_new(diff, mode, json_real_or_null(v - base, have && have_base));
            json_object_set_new(ratio, mode,
                                json_real_or_null(v / base, have && have_base && base != 0));
        }
        json_array_append_new(metrics,
                              json_pack("{s:s, s:s, s:o, s:o, s:o}", "metric", mt->name, "unit",
                                        mt->unit, "values", values, "diff_vs_baseline", diff,
                                        "ratio_vs_baseline", ratio));
    }
    json_put(out, "metrics", metrics);
    size_t runs = 1;
    json_array_foreach(modes, i, m)
    {
        size_t r = json_array_size(json_object_get(m, "repeats"));
        runs = r > runs ? r : runs;
    }
    if (runs > 1)
        repeat_stats(out, modes, runs);
    json_t *phases = verdict_phases(modes);
    json_put(out, "statistics",
             json_pack("{s:s, s:I, s:I}", "method",
                       "per phase and metric, one value per run (its percentile or rate); the "
                       "ratio of geometric means with a Welch 95 % interval on the logs",
                       "min_repeats", (json_int_t)COMPARE_MIN_REPEATS, "runs_per_mode",
                       (json_int_t)runs));
    json_put(out, "decision", verdict_decide(phases, modes, NULL));
    json_put(out, "phases", phases);
    return out;
}

static void num_cell(struct buf *b, const json_t *o, const char *key, const char *fmt)
{
    report_num(b, o, key, fmt, " – |");
}

/* The repeats' section: each mode's mean with its interval, the ratios and the verdicts. */
static void repeats_markdown(struct buf *b, const json_t *c)
{
    const json_t *r = json_object_get(c, "repeats");
    if (!r)
        return;
    buf_printf(b,
               "\n## The whole runs: %lld runs per mode, interleaved\n\nMeans over each mode's "
               "valid runs with their t intervals; the ratio of geometric means to the baseline's "
               "with a Welch 95 %% interval on the logs. A ratio whose interval lies below 1 "
               "(above 1 for throughput) is *faster*, above 1 *slower*; one that spans 1 is *no "
               "difference*; below %lld valid runs a side, *insufficient repeats*.\n\n"
               "| metric | mode | runs | mean | 95 %% CI | ratio | 95 %% CI | verdict |\n"
               "|---|---|---|---|---|---|---|---|\n",
               json_get_int(r, "runs_per_mode", 0), json_get_int(r, "min_repeats", 0));
    for (size_t k = 0; k < sizeof STAT_METRICS / sizeof STAT_METRICS[0]; k++) {
        const char *name = STAT_METRICS[k].name;
        const json_t *st = json_object_get(json_object_get(r, "stats"), name);
        const json_t *ra = json_object_get(json_object_get(r, "ratios"), name);
        size_t i;
        const json_t *m;
        json_array_foreach(json_object_get(c, "modes"), i, m)
        {
            const char *mode = verdict_label_of(m);
            const json_t *ms = json_object_get(st, mode), *mr = json_object_get(ra, mode);
            buf_printf(b, "| %s | %s | %lld |", name, mode, json_get_int(ms, "runs", 0));
            num_cell(b, ms, "mean", " %.2f |");
            double lo, hi;
            if (json_get_num_strict(ms, "ci95_low", &lo) &&
                json_get_num_strict(ms, "ci95_high", &hi))
                buf_printf(b, " %.2f – %.2f |", lo, hi);
            else
                buf_append_str(b, " – |");
            if (!mr) {
                buf_append_str(b, " (baseline) | | |\n");
                continue;
            }
            num_cell(b, mr, "ratio", " %.2fx |");
            if (json_get_num_strict(mr, "ci95_low", &lo) &&
                json_get_num_strict(mr, "ci95_high", &hi))
                buf_printf(b, " %.2f – %.2f |", lo, hi);
            else
                buf_append_str(b, " – |");
            buf_printf(b, " %s |\n", json_get_str(mr, "verdict", "unavailable"));
        }
    }
}

/* Phase by phase: the answering phases first, then the cost side, the timed metrics. */
static void phases_markdown(struct buf *b, const json_t *c)
{
    const json_t *phases = json_object_get(c, "phases"), *modes = json_object_get(c, "modes");
    if (!json_array_size(phases) || json_array_size(modes) < 2)
        return;
    const json_t *dec = json_object_get(c, "decision");
    const json_t *st = json_object_get(c, "statistics");
    buf_printf(b,
               "\n## Phase by phase\n\nThe phases that answer the question (%s) first, then "
               "the others (the cost side) and the whole run. Per run one value (its percentile "
               "or rate); the ratio of geometric means against %s with a Welch 95 %% interval on "
               "the logs, a verdict from %lld valid runs a side.\n\n"
               "| phase | metric | mode | runs | mean | vs baseline | 95 %% CI | verdict |\n"
               "|---|---|---|---|---|---|---|---|\n",
               json_get_str(dec, "answer_phases", "?"), json_get_str(c, "baseline_mode", "?"),
               json_get_int(st, "min_repeats", 0));
    static const char *const SHOWN[] = {"ttft_p50_ms",   "ttft_p95_ms",    "latency_p95_ms",
                                        "req_per_s",     "slo_attainment", "onboard_blocks_disk",
                                        "disk_read_mib", "disk_write_mib"};
    for (int pass = 0; pass < 2; pass++) {
        size_t i;
        const json_t *ph;
        json_array_foreach(phases, i, ph)
        {
            if (json_get_bool(ph, "answers", false) != (pass == 0))
                continue;
            const char *name = json_get_str(ph, "phase", "?");
            for (size_t k = 0; k < sizeof SHOWN / sizeof SHOWN[0]; k++) {
                const json_t *mt = json_object_get(json_object_get(ph, "metrics"), SHOWN[k]);
                size_t j;
                const json_t *m;
                bool any = false;
                json_array_foreach(modes, j, m) any |= json_is_number(json_object_get(
                    json_object_get(json_object_get(mt, "modes"), verdict_label_of(m)), "mean"));
                if (!any)
                    continue;
                json_array_foreach(modes, j, m)
                {
                    const char *l = verdict_label_of(m);
                    const json_t *mm = json_object_get(json_object_get(mt, "modes"), l);
                    const json_t *vs = json_object_get(json_object_get(mt, "vs_baseline"), l);
                    buf_printf(b, "| %s%s | %s%s | %s | %zu |", name, pass == 0 ? " (answers)" : "",
                               json_get_str(mt, "label", SHOWN[k]),
                               json_get_bool(mt, "corrected", false) ? " (corrected)" : "", l,
                               json_array_size(json_object_get(mm, "values")));
                    num_cell(b, mm, "mean", " %.2f |");
                    if (j == 0) {
                        buf_append_str(b, " (baseline) | | |\n");
                        continue;
                    }
                    double r, lo, hi;
                    if (json_get_num_strict(vs, "ratio", &r) ||
                        json_get_num_strict(vs, "point_ratio", &r))
                        buf_printf(b, " %.2fx |", r);
                    else
                        buf_append_str(b, " – |");
                    if (json_get_num_strict(vs, "ci95_low", &lo) &&
                        json_get_num_strict(vs, "ci95_high", &hi))
                        buf_printf(b, " %.2f – %.2f |", lo, hi);
                    else
                        buf_append_str(b, " – |");
                    buf_printf(b, " %s |\n", json_get_str(vs, "verdict", "(values only)"));
                }
            }
        }
    }
}

char *compare_markdown(const json_t *c)
{
    struct buf b = BUF_INIT;
    const json_t *modes = json_object_get(c, "modes");
    const char *base = json_get_str(c, "baseline_mode", "?");
    buf_printf(&b, "# kvbench compare %s\n\n", json_get_str(c, "compare_id", ""));
    const json_t *dec = json_object_get(c, "decision");
    if (dec)
        buf_printf(&b, "**%s**\n\n", json_get_str(dec, "line", ""));
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(c, "warnings"), i, m)
        buf_printf(&b, "- **Warning (`%s`):** %s\n\n", json_get_str(m, "code", "?"),
                   json_get_str(m, "message", ""));
    buf_append_str(&b, "| mode | run | valid | verdict |\n|---|---|---|---|\n");
    json_array_foreach(modes, i, m)
    {
        bool valid = json_get_bool(m, "valid", false);
        buf_printf(&b, "| %s | %s | %s%s | %s |\n", verdict_label_of(m),
                   json_get_str(m, "run_id", "-"),
                   valid ? "yes" : "no: ", valid ? "" : json_get_str(m, "invalid_reason", "?"),
                   json_get_str(m, "signal", "-"));
    }
    buf_append_str(&b, "\n| metric |");
    json_array_foreach(modes, i, m) buf_printf(&b, " %s |", verdict_label_of(m));
    json_array_foreach(modes, i, m) if (i > 0)
        buf_printf(&b, " %s / %s |", verdict_label_of(m), base);
    buf_append_str(&b, "\n|---|");
    for (size_t k = 0; k + 1 < json_array_size(modes) * 2; k++)
        buf_append_str(&b, "---|");
    buf_append_str(&b, "\n");
    const json_t *mt;
    json_array_foreach(json_object_get(c, "metrics"), i, mt)
    {
        const char *unit = json_get_str(mt, "unit", "");
        buf_printf(&b, "| %s%s%s%s |", json_get_str(mt, "metric", "?"), *unit ? " (" : "", unit,
                   *unit ? ")" : "");
        const json_t *vals = json_object_get(mt, "values"),
                     *ratio = json_object_get(mt, "ratio_vs_baseline");
        size_t k;
        json_array_foreach(modes, k, m)
        {
            const json_t *v = json_object_get(vals, verdict_label_of(m));
            if (json_is_number(v))
                buf_printf(&b, " %.2f |", json_number_value(v));
            else
                buf_append_str(&b, " – |");
        }
        json_array_foreach(modes, k, m)
        {
            if (k == 0)
                continue;
            const json_t *v = json_object_get(ratio, verdict_label_of(m));
            if (json_is_number(v))
                buf_printf(&b, " %.2fx |", json_number_value(v));
            else
                buf_append_str(&b, " – |");
        }
        buf_append_str(&b, "\n");
    }
    phases_markdown(&b, c);
    repeats_markdown(&b, c);
    return buf_detach(&b);
}

static void event(const struct compare_config *c, const char *ev, const char *mode,
                  const char *detail)
{
    if (c->event)
        c->event(ev, mode, detail, c->event_user);
}

/* One run of mode: restart, readiness, the run. Its summary (new reference), or NULL with e. */
static json_t *one_run(const struct compare_config *c, const char *mode, const char *run_id,
                       struct compare_outcome *out, char *e)
{
    if (c->interrupted && *c->interrupted) {
        snprintf(e, ERR_LEN, "interrupted");
        out->all_valid = false;
        return NULL;
    }
    if (c->restart) {
        event(c, "restart", mode, NULL);
        if (c->restart(mode, c->restart_user, e) < 0) {
            event(c, "failed", mode, e);
            out->all_valid = false;
            return NULL;
        }
    }
    if (!c->skip_ready) {
        event(c, "ready", mode, NULL);
        if (ready_wait(&c->ready, NULL, NULL) < 0) {
            snprintf(e, ERR_LEN, "the server was not ready within %.0f s", c->ready.timeout_s);
            event(c, "failed", mode, e);
            out->all_valid = false;
            return NULL;
        }
    }
    struct run_config rc_mode = c->run;
    rc_mode.kv_mode = mode;
    rc_mode.run_id = run_id;
    struct run_outcome ro;
    event(c, "run", mode, run_id);
    int r = bench_run(&rc_mode, c->interrupted, &ro, e);
    if (r != RUN_OK) {
        event(c, "failed", mode, e);
        out->all_valid = false;
        return NULL;
    }
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/summary.json", ro.run_dir);
    json_t *s = json_read_file(path, e);
    if (!ro.valid || !s)
        out->all_valid = false;
    event(c, "done", mode, ro.valid ? "valid" : ro.invalid_reason);
    return s;
}

void compare_label(const char *const *modes, size_t n, size_t i, char *out, size_t cap)
{
    bool twice = false;
    for (size_t j = 0; j < n; j++)
        twice |= j != i && strcmp(modes[j], modes[i]) == 0;
    if (twice)
        snprintf(out, cap, "%s_%zu", modes[i], i + 1);
    else
        snprintf(out, cap, "%s", modes[i]);
}

int compare_run(const struct compare_config *c, struct compare_outcome *out, char *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->dir, sizeof out->dir, "%s/%s", c->run.results_root, c->compare_id);
    int rc = fs_mkdir_new(out->dir, err);
    if (rc < 0)
        return -1;
    json_t *modes = json_array();
    out->all_valid = true;
    out->gains_shown = true;
    size_t repeats = c->repeats > 1 ? c->repeats : 1;
    /* a mode named twice (an A/A comparison) gets a label and run ids of its own per side */
    char(*labels)[80] = calloc(c->n_modes ? c->n_modes : 1, sizeof *labels);
    if (!labels) {
        json_decref(modes);
        return err_set(err, "out of memory");
    }
    for (size_t i = 0; i < c->n_modes; i++)
        compare_label(c->modes, c->n_modes, i, labels[i], sizeof labels[i]);
    for (size_t i = 0; i < c->n_modes; i++) {
        char run_id[256];
        if (repeats > 1)
            snprintf(run_id, sizeof run_id, "%s_%s_r1", c->compare_id, labels[i]);
        else
            snprintf(run_id, sizeof run_id, "%s_%s", c->compare_id, labels[i]);
        json_t *entry =
            json_pack("{s:s, s:s, s:s}", "mode", c->modes[i], "label", labels[i], "run_id", run_id);
        if (repeats > 1) {
            json_object_set_new(entry, "repeats", json_array());
            json_object_set_new(entry, "run_ids", json_array());
        }
        json_array_append_new(modes, entry);
    }
    /* interleaved: every mode once, then every mode again, so that drift over time (thermal,
     * the page cache, other load) falls on all modes alike */
    for (size_t rep = 0; rep < repeats; rep++) {
        for (size_t i = 0; i < c->n_modes; i++) {
            const char *mode = c->modes[i];
            json_t *entry = json_array_get(modes, i);
            char run_id[256], e[ERR_LEN] = "";
            if (repeats > 1)
                snprintf(run_id, sizeof run_id, "%s_%s_r%zu", c->compare_id, labels[i], rep + 1);
            else
                snprintf(run_id, sizeof run_id, "%s_%s", c->compare_id, labels[i]);
            json_t *s = one_run(c, mode, run_id, out, e);
            if (rep == 0) {
                if (s)
                    json_object_set(entry, "summary", s);
                else
                    json_object_set_new(entry, "error", json_string(e));
            }
            if (repeats > 1) {
                json_array_append_new(json_object_get(entry, "run_ids"), json_string(run_id));
                json_array_append(json_object_get(entry, "repeats"), s ? s : json_null());
            }
            json_decref(s);
        }
    }
    free(labels);
    json_t *cmp = compare_build(modes);
    json_t *warnings = json_array();
    const json_t *km = NULL;
    for (size_t i = 0; i < json_array_size(modes) && !km; i++) {
        const json_t *k =
            json_object_get(json_object_get(json_array_get(modes, i), "summary"), "kv_mode");
        if (json_is_false(json_object_get(k, "applies")))
            km = k;
    }
    if (km && !c->restart_sets_mode) {
        char msg[700];
        snprintf(msg, sizeof msg,
                 "the modes are %s, and no --restart-cmd set each mode ({mode} or "
                 "$BENCH_KV_MODE): both sides ran the same server configuration, so a difference "
                 "here is noise",
                 json_get_str(km, "not_applicable", "not applicable on this engine"));
        json_array_append_new(
            warnings, json_pack("{s:s, s:s}", "code", "kv_modes_not_applicable", "message", msg));
        log_warn("compare: %s", msg);
    }
    json_object_set_new(cmp, "warnings", warnings);
    /* the decision again, now that the warnings are known */
    json_object_set_new(cmp, "decision",
                        verdict_decide(json_object_get(cmp, "phases"), modes, warnings));
    snprintf(out->decision, sizeof out->decision, "%s",
             json_get_str(json_object_get(cmp, "decision"), "line", ""));
    json_t *gains = json_array();
    for (size_t k = 0; k < c->n_expect; k++) {
        json_t *g = verdict_expect_gain(json_object_get(cmp, "phases"), modes, &c->expect[k]);
        out->gains_shown &= json_get_bool(g, "shown", false);
        json_array_append_new(gains, g);
    }
    json_object_set_new(cmp, "expect_gain", gains);
    json_object_set_new(cmp, "compare_id", json_string(c->compare_id));
    json_object_set_new(cmp, "scenario", json_string(c->run.scenario));
    json_object_set_new(cmp, "base_url", json_string(c->run.base_url));
    json_object_set_new(cmp, "all_valid", json_boolean(out->all_valid));
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/comparison.json", out->dir);
    rc = json_write_file(path, cmp, err);
    char *md = compare_markdown(cmp);
    snprintf(path, sizeof path, "%s/comparison.md", out->dir);
    if (rc == 0 && md && fs_write_atomic(path, md, strlen(md), err) < 0)
        rc = -1;
    free(md);
    if (rc == 0 && html_write_compare(out->dir, err) < 0)
        rc = -1;
    json_decref(cmp);
    json_decref(modes);
    return rc;
}
