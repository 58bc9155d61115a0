/*
 * comparison_md.c - comparison.md from comparison.json: the decision line and warnings, the modes
 * with their validity, the metrics side by side with their ratios to the baseline, then phase by
 * phase (the answering phases first, the cost side after) and, with repeats, each mode's mean,
 * interval and verdict. It reads only the JSON, so a comparison made earlier renders the same.
 */
#include "report/report.h"

#include "verdict/compare.h"
#include "verdict/verdict.h"
#include "scenario/scenario.h"
#include "util/buf.h"
#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void num_cell(struct buf *b, const json_t *o, const char *key, const char *fmt)
{
    scenario_md_num(b, o, key, fmt, " – |");
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
    for (const char *const *mn = compare_stat_metrics(); *mn; mn++) {
        const char *name = *mn;
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
    if (buf_failed(&b)) { /* never a short comparison.md */
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b);
}
