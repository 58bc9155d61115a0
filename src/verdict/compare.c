/*
 * compare.c - mode comparisons: comparison.json's content from the per-mode entries (the
 * metrics, the repeats' statistics, the phases and the decision). Running the modes is
 * run/comparison.c's, and comparison.md is report/comparison_md.c's.
 *
 * Metrics are read from each run's summary.json (the overall summary; for an invalid run, whose
 * overall summary is excluded, the values are null), so a comparison can also be rebuilt from
 * runs made earlier.
 */
#include "verdict/compare.h"

#include "analysis/stats.h"
#include "verdict/verdict.h"
#include "scenario/scenario.h"
#include "util/json.h"

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

const char *const *compare_stat_metrics(void)
{
    static const char *names[sizeof STAT_METRICS / sizeof STAT_METRICS[0] + 1];
    for (size_t k = 0; k < sizeof STAT_METRICS / sizeof STAT_METRICS[0]; k++)
        names[k] = STAT_METRICS[k].name;
    return names;
}

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
    /* a summary cut short is no summary: the lines are still there, whole */
    json_object_set_new(
        out, "verdict",
        json_pack("{s:s?, s:o}", "summary", buf_failed(&t) ? NULL : buf_cstr(&t), "lines", lines));
    buf_free(&t);
}

json_t *compare_build(const json_t *modes)
{
    json_t *out = json_object();
    json_t *mode_list = json_array();
    const char *first_mode = NULL;
    size_t i;
    const json_t *m;
    json_array_foreach(modes, i, m)
    {
        const json_t *s = json_object_get(m, "summary");
        if (i == 0)
            first_mode = json_get_str(m, "mode", "?");
        json_t *e = json_pack("{s:s, s:s, s:o, s:b, s:o, s:s}", "mode",
                              json_get_str(m, "mode", "?"), "label", verdict_label_of(m), "run_id",
                              json_incref(json_object_get(m, "run_id")), "valid",
                              s && json_get_bool(s, "run_valid", false), "invalid_reason",
                              !s ? json_string(json_get_str(m, "error", "run failed"))
                              : json_object_get(s, "invalid_reason")
                                  ? json_incref(json_object_get(s, "invalid_reason"))
                                  : json_null(),
                              "signal", s ? scenario_summary_signal(s) : "-");
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
                    runs, json_pack("{s:o, s:b, s:s}", "run_id",
                                    json_incref(json_array_get(ids, j)), "valid", ok, "signal",
                                    json_is_object(r) ? scenario_summary_signal(r) : "-"));
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
