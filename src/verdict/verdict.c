/*
 * verdict.c - phase-by-phase comparison of modes and the one decision (verdict.h).
 */
#include "verdict/verdict.h"

#include "scenario/scenario.h"
#include "analysis/stats.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What is compared per phase: a path into a phase summary (and the overall summary). `stats`:
 * a timed or rate figure that gets a ratio and interval; the others are reported as values. */
struct pmetric {
    const char *name, *label, *unit;
    const char *path[3];
    bool higher_is_better, stats, correctable;
};

static const struct pmetric PM[] = {
    {"ttft_p50_ms", "TTFT p50", "ms", {"ttft_ms", "p50"}, false, true, true},
    {"ttft_p95_ms", "TTFT p95", "ms", {"ttft_ms", "p95"}, false, true, true},
    {"ttft_p99_ms", "TTFT p99", "ms", {"ttft_ms", "p99"}, false, true, true},
    {"itl_p50_ms", "ITL p50", "ms", {"itl_ms", "p50"}, false, true, false},
    {"latency_p50_ms", "latency p50", "ms", {"latency_ms", "p50"}, false, true, true},
    {"latency_p95_ms", "latency p95", "ms", {"latency_ms", "p95"}, false, true, true},
    {"req_per_s", "throughput", "req/s", {"req_per_s"}, true, true, false},
    {"slo_attainment", "SLO attainment", "", {"goodput", "attainment"}, true, true, false},
    {"error_rate", "error rate", "", {"error_rate"}, false, false, false},
    {"onboard_blocks_host",
     "blocks onboarded from host",
     "blocks",
     {"kvbm_metrics_delta", "engine_delta", "onboard_blocks_host"},
     true,
     false,
     false},
    {"onboard_blocks_disk",
     "blocks onboarded from disk",
     "blocks",
     {"kvbm_metrics_delta", "engine_delta", "onboard_blocks_disk"},
     true,
     false,
     false},
    {"disk_read_mib", "disk read", "MiB", {"io_delta", "read_mib_delta"}, false, false, false},
    {"disk_write_mib", "disk written", "MiB", {"io_delta", "write_mib_delta"}, false, false, false},
};
#define N_PM     (sizeof PM / sizeof PM[0])
#define RUNS_MAX 1000

static const struct pmetric *pmetric_find(const char *name)
{
    for (size_t k = 0; k < N_PM; k++)
        if (strcmp(PM[k].name, name) == 0)
            return &PM[k];
    return NULL;
}

const char *verdict_label_of(const json_t *m)
{
    return json_get_str(m, "label", json_get_str(m, "mode", "?"));
}

size_t verdict_runs_of(const json_t *m, const json_t **out, size_t max)
{
    const json_t *reps = json_object_get(m, "repeats");
    if (!json_is_array(reps)) {
        out[0] = json_object_get(m, "summary");
        return 1;
    }
    size_t n = 0, i;
    const json_t *s;
    json_array_foreach(reps, i, s) if (n < max) out[n++] = json_is_object(s) ? s : NULL;
    return n;
}

/* A phase of a summary ("overall": the overall summary, unless excluded). */
static const json_t *phase_in(const json_t *s, const char *phase)
{
    if (!s || !json_get_bool(s, "run_valid", false))
        return NULL;
    if (strcmp(phase, "overall") == 0)
        return json_object_get(s, "overall_summary");
    size_t i;
    const json_t *ps;
    json_array_foreach(json_object_get(s, "phase_summaries"), i, ps)
    {
        if (strcmp(json_get_str(ps, "phase", ""), phase) == 0)
            return json_get_bool(ps, "skipped", false) ? NULL : ps;
    }
    return NULL;
}

/* The metric in a phase object; corrected TTFT / latency where the phase ran in open loop. */
static bool value_in(const json_t *ph, const struct pmetric *pm, double *v, bool *corrected)
{
    const json_t *o = ph;
    for (size_t d = 0; o && d < 3 && pm->path[d]; d++) {
        const char *key = pm->path[d];
        char alt[64];
        if (d == 0 && pm->correctable) {
            snprintf(alt, sizeof alt, "%s_corrected", key);
            const json_t *c = json_object_get(o, alt);
            if (json_object_size(c)) {
                *corrected = true;
                o = c;
                continue;
            }
        }
        if (d + 1 < 3 && pm->path[d + 1])
            o = json_object_get(o, key);
        else
            return json_get_num_strict(o, key, v) && isfinite(*v);
    }
    return false;
}

/* The metric over a mode's valid runs. */
static size_t values_of(const json_t *m, const char *phase, const struct pmetric *pm, double *vals,
                        bool *corrected)
{
    const json_t *runs[RUNS_MAX];
    size_t n = verdict_runs_of(m, runs, RUNS_MAX), k = 0;
    for (size_t i = 0; i < n; i++) {
        double v;
        const json_t *ph = phase_in(runs[i], phase);
        if (ph && value_in(ph, pm, &v, corrected))
            vals[k++] = v;
    }
    return k;
}

static size_t valid_runs(const json_t *m)
{
    const json_t *runs[RUNS_MAX];
    size_t n = verdict_runs_of(m, runs, RUNS_MAX), k = 0;
    for (size_t i = 0; i < n; i++)
        k += runs[i] && json_get_bool(runs[i], "run_valid", false);
    return k;
}

/* One metric of one phase: values per mode, and each mode against the baseline. */
static json_t *metric_json(const json_t *modes, const char *phase, const struct pmetric *pm,
                           double *a, double *b)
{
    json_t *per = json_object(), *vs = json_object();
    bool corrected = false;
    const json_t *base = json_array_get(modes, 0);
    size_t nb = values_of(base, phase, pm, b, &corrected);
    size_t i;
    const json_t *m;
    json_array_foreach(modes, i, m)
    {
        size_t na = values_of(m, phase, pm, a, &corrected);
        json_t *vals = json_array();
        for (size_t j = 0; j < na; j++)
            json_array_append_new(vals, json_real(a[j]));
        json_object_set_new(per, verdict_label_of(m),
                            json_pack("{s:o, s:o}", "values", vals, "mean",
                                      json_real_or_null(stats_mean(a, na), na > 0)));
        if (i == 0)
            continue;
        double ma = stats_mean(a, na), mbv = stats_mean(b, nb);
        json_t *r =
            json_pack("{s:o}", "point_ratio", json_real_or_null(ma / mbv, na && nb && mbv != 0));
        if (pm->stats) {
            size_t least = na < nb ? na : nb;
            struct ratio_ci ci;
            char verdict[96];
            if (least == 0) {
                snprintf(verdict, sizeof verdict, "unavailable (no value in a mode)");
            } else if (least < COMPARE_MIN_REPEATS) {
                snprintf(verdict, sizeof verdict, "insufficient repeats: %zu, need >= %d", least,
                         COMPARE_MIN_REPEATS);
            } else if (stats_log_ratio_ci(a, na, b, nb, &ci) == 0) {
                json_object_set_new(r, "ratio", json_real(ci.ratio));
                json_object_set_new(r, "ci95_low", json_real(ci.lo));
                json_object_set_new(r, "ci95_high", json_real(ci.hi));
                bool above = ci.lo > 1, below = ci.hi < 1;
                bool better = pm->higher_is_better ? above : below;
                bool worse = pm->higher_is_better ? below : above;
                snprintf(verdict, sizeof verdict, "%s",
                         better  ? "faster"
                         : worse ? "slower"
                                 : "no difference");
            } else {
                snprintf(verdict, sizeof verdict, "unavailable (a value is missing or 0)");
            }
            json_object_set_new(r, "verdict", json_string(verdict));
        }
        json_object_set_new(vs, verdict_label_of(m), r);
    }
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o}", "label", pm->label, "unit", pm->unit,
                     "better", pm->higher_is_better ? "higher" : "lower", "corrected", corrected,
                     "modes", per, "vs_baseline", vs);
}

json_t *verdict_phases(const json_t *modes)
{
    json_t *out = json_array();
    /* the phases: those of the baseline's first run that has them, in order */
    const json_t *runs[RUNS_MAX], *first = NULL;
    size_t n = verdict_runs_of(json_array_get(modes, 0), runs, RUNS_MAX);
    for (size_t i = 0; i < n && !first; i++)
        if (runs[i] && json_array_size(json_object_get(runs[i], "phase_summaries")))
            first = runs[i];
    const struct scenario *sc = scenario_find(json_get_str(first, "scenario", ""));
    double *a = malloc(RUNS_MAX * sizeof *a), *b = malloc(RUNS_MAX * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return out;
    }
    json_t *names = json_array();
    size_t i;
    const json_t *ps;
    json_array_foreach(json_object_get(first, "phase_summaries"), i, ps)
    {
        const char *name = json_get_str(ps, "phase", "");
        if (*name && strcmp(name, "warmup") != 0)
            json_array_append_new(names, json_string(name));
    }
    json_array_append_new(names, json_string("overall"));
    const json_t *nm;
    json_array_foreach(names, i, nm)
    {
        const char *phase = json_string_value(nm);
        json_t *metrics = json_object();
        for (size_t k = 0; k < N_PM; k++)
            json_object_set_new(metrics, PM[k].name, metric_json(modes, phase, &PM[k], a, b));
        bool answers = sc && sc->answers && sc->answers(phase);
        json_array_append_new(out, json_pack("{s:s, s:b, s:o}", "phase", phase, "answers", answers,
                                             "metrics", metrics));
    }
    json_decref(names);
    free(a);
    free(b);
    return out;
}

/* ------------------------------------------------------------ the decision */

static const json_t *vs_of(const json_t *phase, const char *metric, const char *label)
{
    return json_object_get(
        json_object_get(json_object_get(json_object_get(phase, "metrics"), metric), "vs_baseline"),
        label);
}

static double mode_mean(const json_t *phase, const char *metric, const char *label)
{
    double v;
    const json_t *m = json_object_get(
        json_object_get(json_object_get(json_object_get(phase, "metrics"), metric), "modes"),
        label);
    return json_get_num_strict(m, "mean", &v) ? v : NAN;
}

/* "2.70x faster (95 % CI 2.31-3.15x)" for a lower-is-better ratio r = mode / baseline. */
static void effect_text(char *out, size_t cap, const json_t *r, bool higher_is_better)
{
    double ratio, lo, hi;
    const char *v = json_get_str(r, "verdict", "");
    bool ci = json_get_num_strict(r, "ratio", &ratio) && json_get_num_strict(r, "ci95_low", &lo) &&
              json_get_num_strict(r, "ci95_high", &hi);
    if (!ci) {
        if (json_get_num_strict(r, "point_ratio", &ratio) && ratio > 0)
            snprintf(out, cap, "%.2fx %s (point estimate; %s)",
                     higher_is_better ? ratio : 1 / ratio, "as fast", v);
        else
            snprintf(out, cap, "%s", *v ? v : "unavailable");
        return;
    }
    /* as a speed factor: above 1 is faster */
    double f = higher_is_better ? ratio : 1 / ratio;
    double flo = higher_is_better ? lo : 1 / hi, fhi = higher_is_better ? hi : 1 / lo;
    if (strcmp(v, "faster") == 0)
        snprintf(out, cap, "%.2fx faster (95 %% CI %.2f-%.2fx)", f, flo, fhi);
    else if (strcmp(v, "slower") == 0)
        snprintf(out, cap, "%.2fx slower (95 %% CI %.2f-%.2fx)", 1 / f, 1 / fhi, 1 / flo);
    else
        snprintf(out, cap, "no different (%.2fx as fast, 95 %% CI %.2f-%.2fx)", f, flo, fhi);
}

/* Why the runs cannot answer, or NULL. */
static const char *cannot_tell(const json_t *modes, const json_t *warnings, char *why, size_t cap)
{
    size_t i;
    const json_t *w;
    json_array_foreach(warnings, i,
                       w) if (strcmp(json_get_str(w, "code", ""), "kv_modes_not_applicable") == 0)
    {
        snprintf(why, cap, "%s", json_get_str(w, "message", "the modes are not applicable here"));
        return why;
    }
    const json_t *m;
    size_t least = SIZE_MAX;
    json_array_foreach(modes, i, m)
    {
        if (i >= 2)
            break; /* the decision compares the first two modes */
        const json_t *runs[RUNS_MAX];
        size_t n = verdict_runs_of(m, runs, RUNS_MAX), ok = valid_runs(m);
        if (ok < n) {
            const char *reason = "the run failed";
            for (size_t k = 0; k < n; k++)
                if (runs[k] && !json_get_bool(runs[k], "run_valid", false)) {
                    reason = json_get_str(runs[k], "invalid_reason", "invalid");
                    break;
                }
            snprintf(why, cap, "%zu of %zu runs of %s are invalid (%s)", n - ok, n,
                     verdict_label_of(m), reason);
            return why;
        }
        if (ok < least)
            least = ok;
    }
    if (least < COMPARE_MIN_REPEATS) {
        snprintf(why, cap, "insufficient repeats: %zu, need >= %d (--repeats %d)", least,
                 COMPARE_MIN_REPEATS, COMPARE_MIN_REPEATS);
        return why;
    }
    return NULL;
}

/* How many tiers a mode (a name read from a run's summary) offloads to: off 0, cpu_only 1,
 * cpu_disk 2; a name that is no mode counts as one tier, as cpu_only. */
static int tiers_of(const char *mode)
{
    enum kv_mode m = KV_MODE_CPU_ONLY;
    (void)kv_mode_parse(mode, &m);
    return kv_mode_tiers(m);
}

/* r as seen from the other side (baseline and mode swapped): ratios and interval inverted,
 * faster and slower exchanged. New reference. */
static json_t *flipped(const json_t *r)
{
    json_t *f = json_object();
    double x, lo, hi;
    if (json_get_num_strict(r, "point_ratio", &x) && x != 0)
        json_object_set_new(f, "point_ratio", json_real(1 / x));
    if (json_get_num_strict(r, "ratio", &x) && json_get_num_strict(r, "ci95_low", &lo) &&
        json_get_num_strict(r, "ci95_high", &hi) && x > 0 && lo > 0 && hi > 0) {
        json_object_set_new(f, "ratio", json_real(1 / x));
        json_object_set_new(f, "ci95_low", json_real(1 / hi));
        json_object_set_new(f, "ci95_high", json_real(1 / lo));
    }
    const char *v = json_get_str(r, "verdict", "");
    json_object_set_new(f, "verdict",
                        json_string(strcmp(v, "faster") == 0   ? "slower"
                                    : strcmp(v, "slower") == 0 ? "faster"
                                                               : v));
    return f;
}

/* What the phases say, gathered for the decision: the answering phases' TTFT p50 verdicts and
 * the blocks they read back, the cost side's slower tails. */
struct tally {
    const char *ol, *off_label; /* the compared mode's label; the offloading side's */
    bool flip;                  /* the baseline is the side with more tiers */
    json_t *answer, *cost;      /* comparison.json's decision.answer and .cost */
    struct buf ans, costs;      /* the same, as text for the line */
    size_t n_faster, n_slower, n_answer, n_judged;
    double back_disk, back_host;
    bool tiers_known;
    char unmeasured[300], too_wide[300];
};

/* The verdict of metric in phase ph for the compared mode, from the offloading side. New. */
static json_t *side_verdict(const struct tally *t, const json_t *ph, const char *metric)
{
    return t->flip ? flipped(vs_of(ph, metric, t->ol))
                   : json_incref((json_t *)vs_of(ph, metric, t->ol));
}

/* An answering phase: TTFT p50 (corrected in open loop) decides. */
static void tally_answer(struct tally *t, const json_t *ph, const char *name)
{
    json_t *r = side_verdict(t, ph, "ttft_p50_ms");
    const char *v = json_get_str(r, "verdict", "");
    t->n_answer++;
    t->n_faster += strcmp(v, "faster") == 0;
    t->n_slower += strcmp(v, "slower") == 0;
    bool judged = strcmp(v, "faster") == 0 || strcmp(v, "slower") == 0 ||
                  strcmp(v, "no difference") == 0 || strncmp(v, "insufficient", 12) == 0;
    t->n_judged += judged;
    if (!judged && !t->unmeasured[0])
        snprintf(t->unmeasured, sizeof t->unmeasured, "%s TTFT p50: %s", name, *v ? v : "no value");
    char eff[200];
    effect_text(eff, sizeof eff, r, false);
    /* "no difference" that still allows a large gain is not "no gain" */
    double lo_r, hi_r;
    if (strcmp(v, "no difference") == 0 && !t->too_wide[0] &&
        json_get_num_strict(r, "ci95_low", &lo_r) && json_get_num_strict(r, "ci95_high", &hi_r) &&
        lo_r > 0 && 1 / lo_r > VERDICT_NO_GAIN_BOUND)
        snprintf(t->too_wide, sizeof t->too_wide, "%s TTFT p50 %s", name, eff);
    json_decref(r);
    json_array_append_new(t->answer, json_pack("{s:s, s:s, s:s}", "phase", name, "metric",
                                               "ttft_p50_ms", "effect", eff));
    if (t->ans.len < 300)
        buf_printf(&t->ans, "%s%s TTFT p50 %s", t->ans.len ? "; " : "", name, eff);
    double d = mode_mean(ph, "onboard_blocks_disk", t->off_label),
           h = mode_mean(ph, "onboard_blocks_host", t->off_label);
    if (!isnan(d) || !isnan(h))
        t->tiers_known = true;
    t->back_disk += isnan(d) ? 0 : d;
    t->back_host += isnan(h) ? 0 : h;
}

/* A phase on the cost side: tail latency where offload writes (the first slower tail). */
static void tally_cost(struct tally *t, const json_t *ph, const char *name)
{
    static const char *const COST[] = {"ttft_p95_ms", "latency_p95_ms"};
    for (size_t k = 0; k < 2; k++) {
        json_t *r = side_verdict(t, ph, COST[k]);
        if (strcmp(json_get_str(r, "verdict", ""), "slower") != 0) {
            json_decref(r);
            continue;
        }
        char eff[200];
        effect_text(eff, sizeof eff, r, false);
        json_decref(r);
        json_array_append_new(
            t->cost, json_pack("{s:s, s:s, s:s}", "phase", name, "metric", COST[k], "effect", eff));
        buf_printf(&t->costs, "%s%s %s %s", t->costs.len ? "; " : "", name,
                   pmetric_find(COST[k])->label, eff);
        break;
    }
}

/* The two sides as the decision names them. */
struct sides {
    const char *bmode, *omode;       /* the baseline's and the compared mode's */
    const char *off_mode, *ref_mode; /* the side with more offload tiers, and the other */
    bool aa;                         /* one mode twice */
};

/* The decision and its line from the tally; `no` is why the runs cannot answer (NULL: they
 * can). Returns the verdict's name. */
static const char *decide_line(const struct tally *t, const struct sides *sd, const char *no,
                               const char *reached, char *line, size_t cap)
{
    /* a list cut short by a failed append is not passed off as the whole list */
    static const char OOM[] = "(the list was lost: out of memory)";
    const char *ans = buf_failed(&t->ans) ? OOM : buf_cstr(&t->ans);
    const char *costs = buf_failed(&t->costs) ? OOM : buf_cstr(&t->costs);
    bool has_costs = t->costs.len > 0, has_reached = *reached != '\0';
    if (!t->ol) {
        snprintf(line, cap, "Cannot tell: one mode only; compare needs two");
        return "cannot_tell";
    }
    if (no) {
        snprintf(line, cap, "Cannot tell: %s%s%s", no, t->ans.len ? ". Point estimate: " : "", ans);
        return "cannot_tell";
    }
    if (t->n_answer == 0) {
        snprintf(line, cap,
                 "Cannot tell: no phase that answers the scenario's question ran in every mode");
        return "cannot_tell";
    }
    if (t->n_judged == 0) {
        snprintf(line, cap,
                 "Cannot tell: the figure that decides was not measured (%s); TTFT needs --stream",
                 t->unmeasured);
        return "cannot_tell";
    }
    if (sd->aa) {
        bool any = t->n_faster || t->n_slower || has_costs;
        snprintf(line, cap,
                 any ? "A/A (%s twice): a difference was found where none exists: %s%s%s; treat "
                       "differences of this size as noise on this machine"
                     : "A/A (%s twice): no difference, as expected: %s%s%s",
                 sd->bmode, ans, has_costs ? "; " : "", costs);
        return any ? "aa_difference" : "aa_no_difference";
    }
    if (t->tiers_known && t->back_disk + t->back_host <= 0 && tiers_of(sd->off_mode) > 0) {
        snprintf(line, cap,
                 "Cannot tell: %s brought no block back from host memory or disk in the answering "
                 "phases: the workload never reached the offload tiers (%s)",
                 sd->off_mode, ans);
        return "cannot_tell";
    }
    if (!t->n_faster && !t->n_slower && t->too_wide[0]) {
        snprintf(line, cap,
                 "Cannot tell: the interval is too wide to tell a gain from none (%s); more "
                 "--repeats, or a quieter machine",
                 t->too_wide);
        return "cannot_tell";
    }
    bool pays = t->n_faster && !t->n_slower;
    snprintf(line, cap, "%s: %s with %s against %s%s%s%s%s",
             pays ? "Offload pays here" : "Offload does not pay here", ans, sd->off_mode,
             sd->ref_mode, has_reached ? ", " : "", reached,
             has_costs ? "; cost: " : (pays ? "; no cost found in the other phases" : ""), costs);
    return pays ? "pays" : "does_not_pay";
}

/* One tier's break-even as a run's summary states it (breakeven.break_even.<tier>), in words:
 * "host at every measured length", "disk from 6000 tokens"; nothing when it was not measured. */
static void be_cite(const json_t *be, const char *tier, struct buf *out)
{
    const json_t *t = json_object_get(be, tier);
    const char *kind = json_get_str(t, "kind", "unknown");
    double len = json_get_num(t, "length_tokens", NAN);
    const char *sep = out->len ? ", " : "";
    if (strcmp(kind, "every_measured_length") == 0)
        buf_printf(out, "%s%s at every measured length", sep, tier);
    else if (strcmp(kind, "none_of_the_measured_lengths") == 0)
        buf_printf(out, "%s%s at none of the measured lengths", sep, tier);
    else if (strcmp(kind, "from_length") == 0 && isfinite(len))
        buf_printf(out, "%s%s from %.0f tokens", sep, tier, len);
    else if (strcmp(kind, "below_length") == 0 && isfinite(len))
        buf_printf(out, "%s%s below %.0f tokens", sep, tier, len);
}

void verdict_break_even_words(const json_t *break_even, struct buf *out)
{
    be_cite(break_even, "host", out);
    be_cite(break_even, "disk", out);
}

/* Where the runs of the mode that offloads measured a break-even (--scenario breakeven): which
 * tier's onboarding beats recomputing from which context length, from its first valid run.
 * Appends "; break-even in <mode>: host …, disk …" to line; new reference of what was cited,
 * or NULL. */
static json_t *cite_break_even(const json_t *modes, const char *off_mode, char *line, size_t cap)
{
    size_t i;
    const json_t *m;
    json_array_foreach(modes, i, m)
    {
        if (strcmp(json_get_str(m, "mode", ""), off_mode) != 0)
            continue;
        const json_t *runs[64];
        size_t n = verdict_runs_of(m, runs, 64);
        for (size_t k = 0; k < n; k++) {
            const json_t *be = json_object_get(json_object_get(runs[k], "breakeven"), "break_even");
            if (!runs[k] || !json_get_bool(runs[k], "run_valid", false) || !be)
                continue;
            struct buf words = BUF_INIT;
            verdict_break_even_words(be, &words);
            json_t *cited = NULL;
            size_t used = strlen(line);
            if (words.len && !buf_failed(&words) && used < cap) {
                snprintf(line + used, cap - used, "; break-even in %s: %s", off_mode,
                         buf_cstr(&words));
                cited = json_incref((json_t *)be);
            }
            buf_free(&words);
            return cited;
        }
    }
    return NULL;
}

json_t *verdict_decide(const json_t *phases, const json_t *modes, const json_t *warnings)
{
    const json_t *base = json_array_get(modes, 0), *other = json_array_get(modes, 1);
    struct sides sd = {.bmode = json_get_str(base, "mode", "?"),
                       .omode = json_get_str(other, "mode", "?")};
    sd.aa = other && strcmp(sd.bmode, sd.omode) == 0;
    struct tally t = {.ol = other ? verdict_label_of(other) : NULL,
                      .answer = json_array(),
                      .cost = json_array(),
                      .ans = BUF_INIT,
                      .costs = BUF_INIT};
    /* the verdict speaks of the side with more offload tiers, whichever --modes named first */
    t.flip = other && tiers_of(sd.omode) < tiers_of(sd.bmode);
    sd.off_mode = t.flip ? sd.bmode : sd.omode;
    sd.ref_mode = t.flip ? sd.omode : sd.bmode;
    t.off_label = t.flip ? verdict_label_of(base) : t.ol;
    size_t i;
    const json_t *ph;
    json_array_foreach(phases, i, ph)
    {
        const char *name = json_get_str(ph, "phase", "");
        if (!t.ol || strcmp(name, "overall") == 0)
            continue;
        if (json_get_bool(ph, "answers", false))
            tally_answer(&t, ph, name);
        else
            tally_cost(&t, ph, name);
    }
    char reached[400] = "", why[600], line[1200];
    if (t.tiers_known)
        snprintf(reached, sizeof reached,
                 "%.0f blocks read back from disk and %.0f from host memory per run", t.back_disk,
                 t.back_host);
    const char *no = cannot_tell(modes, warnings, why, sizeof why);
    const char *verdict = decide_line(&t, &sd, no, reached, line, sizeof line);
    json_t *be = t.ol && !sd.aa ? cite_break_even(modes, sd.off_mode, line, sizeof line) : NULL;
    buf_free(&t.ans);
    buf_free(&t.costs);
    const json_t *r0 = json_array_get(json_object_get(base, "repeats"), 0);
    const struct scenario *sc =
        scenario_find(json_get_str(r0 ? r0 : json_object_get(base, "summary"), "scenario", ""));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:b, s:o}", "verdict", verdict,
                     "line", line, "offload_mode", t.ol ? sd.off_mode : "", "baseline", sd.bmode,
                     "mode", t.ol ? sd.omode : "", "answer_phases",
                     sc && sc->answer_phases ? sc->answer_phases : "?", "answer", t.answer, "cost",
                     t.cost, "aa", sd.aa, "break_even", be ? be : json_null());
}

/* ------------------------------------------------------------ --expect-gain */

int verdict_parse_expect_gain(const char *spec, struct expect_gain *out, char *err)
{
    memset(out, 0, sizeof *out);
    const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    char *end;
    if (!c1 || !c2 || c1 == spec || c2 == c1 + 1 || (size_t)(c1 - spec) >= sizeof out->phase ||
        (size_t)(c2 - c1 - 1) + 4 >= sizeof out->metric)
        return err_set(err,
                       "--expect-gain: expected PHASE:METRIC:RATIO (e.g. "
                       "replay_A:ttft_p50:1.5), got '%s'",
                       spec);
    snprintf(out->phase, sizeof out->phase, "%.*s", (int)(c1 - spec), spec);
    char m[64];
    snprintf(m, sizeof m, "%.*s", (int)(c2 - c1 - 1), c1 + 1);
    out->ratio = strtod(c2 + 1, &end);
    if (*end || end == c2 + 1 || !(out->ratio > 0) || !isfinite(out->ratio))
        return err_set(err, "--expect-gain: RATIO must be a number above 0, got '%s'", c2 + 1);
    /* ttft_p50 or ttft_p50_ms; req_per_s as it is */
    snprintf(out->metric, sizeof out->metric, "%s", m);
    const struct pmetric *pm = pmetric_find(out->metric);
    if (!pm) {
        snprintf(out->metric, sizeof out->metric, "%s_ms", m);
        pm = pmetric_find(out->metric);
    }
    if (!pm || !pm->stats)
        return err_set(
            err,
            "--expect-gain: METRIC must be one of ttft_p50, ttft_p95, ttft_p99, itl_p50, "
            "latency_p50, latency_p95, req_per_s, slo_attainment; got '%s'",
            m);
    return 0;
}

json_t *verdict_expect_gain(const json_t *phases, const json_t *modes,
                            const struct expect_gain *want)
{
    const json_t *other = json_array_get(modes, 1);
    const struct pmetric *pm = pmetric_find(want->metric);
    const json_t *ph = NULL, *p;
    size_t i;
    json_array_foreach(phases, i, p) if (strcmp(json_get_str(p, "phase", ""), want->phase) == 0)
        ph = p;
    char why[300];
    bool shown = false;
    double gain = NAN, glo = NAN;
    const json_t *r = other && pm ? vs_of(ph, want->metric, verdict_label_of(other)) : NULL;
    double ratio, lo, hi;
    if (!ph) {
        snprintf(why, sizeof why, "no phase %s in the comparison", want->phase);
    } else if (!r || !json_get_num_strict(r, "point_ratio", &ratio) || !(ratio > 0)) {
        snprintf(why, sizeof why, "%s %s has no value in every mode", want->phase, want->metric);
    } else {
        gain = pm->higher_is_better ? ratio : 1 / ratio;
        bool ci =
            json_get_num_strict(r, "ci95_low", &lo) && json_get_num_strict(r, "ci95_high", &hi);
        if (ci)
            glo = pm->higher_is_better ? lo : 1 / hi;
        if (gain < want->ratio)
            snprintf(why, sizeof why, "gain %.2fx is below the expected %.2fx", gain, want->ratio);
        else if (ci && !(glo > 1))
            snprintf(why, sizeof why,
                     "gain %.2fx, but its 95 %% interval reaches %.2fx: not shown at this "
                     "confidence",
                     gain, glo);
        else if (!ci)
            snprintf(why, sizeof why, "gain %.2fx >= %.2fx (point estimate: %s)", gain, want->ratio,
                     json_get_str(r, "verdict", "no interval"));
        else
            snprintf(why, sizeof why, "gain %.2fx >= %.2fx, 95 %% interval from %.2fx", gain,
                     want->ratio, glo);
        shown = gain >= want->ratio && (!ci || glo > 1);
    }
    return json_pack("{s:s, s:s, s:f, s:o, s:o, s:b, s:s}", "phase", want->phase, "metric",
                     want->metric, "wanted", want->ratio, "gain",
                     json_real_or_null(gain, !isnan(gain)), "gain_ci95_low",
                     json_real_or_null(glo, !isnan(glo)), "shown", shown, "why", why);
}
