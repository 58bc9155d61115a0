/*
 * capacity.c - capacity at SLO as analysis (docs/SWEEP.md). The search is a pure function of
 * what it recorded: the next load depends only on the bracket (lo, hi), so a synthetic
 * attainment function replays it exactly (tests/unit/test_capacity.c). Loads are compared on a
 * geometric scale, because capacities are ratios: the ladder multiplies, bisection takes the
 * geometric midpoint, a mode's capacity is the geometric mean of its searches and two modes are
 * compared by Welch's t on the logs (analysis/stats.c). A difference smaller than the search's
 * own precision is never claimed: two searches on one grid can land one step apart with no spread
 * at all.
 */
#include "verdict/capacity.h"

#include "analysis/stats.h"

#include <math.h>
#include <stdio.h>

enum cap_judgement capacity_judge(const struct cap_step *s, double target, double ttft_ref_ms)
{
    if (!isfinite(s->attainment))
        return CAP_UNJUDGED;
    if (isfinite(s->sent_rate) && isfinite(s->done_rate) &&
        s->done_rate < CAP_BEHIND_SHARE * s->sent_rate) {
        /* the completions' extra span over the sends' is the queue that built up; under a
         * quarter of a request's own latency it is noise (one slow third), not a queue */
        double excess = s->between * (1.0 / s->done_rate - 1.0 / s->sent_rate);
        double lat = isfinite(s->latency_first) ? s->latency_first : 0;
        if (!(excess <= 0.25 * lat))
            return CAP_BEHIND;
    }
    if (s->check_growth && isfinite(s->ttft_first) && isfinite(s->ttft_last)) {
        /* a queue that builds through the step: the last third waits clearly longer than the
         * first, by more than noise (a quarter of the SLO, or of the first third's median) */
        double ref = ttft_ref_ms > 0 ? ttft_ref_ms : s->ttft_first;
        if (s->ttft_last > 1.5 * s->ttft_first + 0.25 * ref)
            return CAP_GROWING;
    }
    return s->attainment >= target ? CAP_PASS : CAP_MISS;
}

const char *capacity_judgement_name(enum cap_judgement j)
{
    static const char *const names[] = {"pass", "miss", "behind", "ttft_growing", "unjudged"};
    return names[j];
}

const char *capacity_end_name(enum cap_end e)
{
    static const char *const names[] = {"searching", "found", "above_max", "below_min",
                                        "out_of_steps"};
    return names[e];
}

void capacity_search_init(struct cap_search *s, double start, double factor, double precision,
                          double min_rate, double max_rate, size_t max_steps, bool accelerate)
{
    *s = (struct cap_search){.start = start,
                             .accelerate = accelerate,
                             .factor = factor > 1 ? factor : 2,
                             .precision = precision,
                             .min_rate = min_rate,
                             .max_rate = max_rate,
                             .max_steps = max_steps,
                             .lo = 0,
                             .hi = INFINITY,
                             .end = CAP_SEARCHING};
}

/* The ladder's factor now: factor, or with accelerate factor^(2^(run - 1)) (capped at x16). */
static double ladder_factor(const struct cap_search *s)
{
    if (!s->accelerate || s->run < 2)
        return s->factor;
    double f = s->factor;
    for (size_t k = 1; k < s->run && f < 16; k++)
        f *= f;
    return fmin(f, 16);
}

bool capacity_search_next(struct cap_search *s, double *rate)
{
    if (s->end != CAP_SEARCHING)
        return false;
    bool have_lo = s->lo > 0, have_hi = isfinite(s->hi);
    double next;
    if (have_lo && have_hi) {
        if (s->hi / s->lo <= 1 + s->precision + 1e-12) {
            s->end = CAP_FOUND;
            return false;
        }
        next = sqrt(s->lo * s->hi);
    } else if (have_lo) {
        if (s->lo >= s->max_rate * (1 - 1e-12)) {
            s->end = CAP_ABOVE_MAX;
            return false;
        }
        next = fmin(s->lo * ladder_factor(s), s->max_rate);
    } else if (have_hi) {
        if (s->hi <= s->min_rate * (1 + 1e-12)) {
            s->end = CAP_BELOW_MIN;
            return false;
        }
        next = fmax(s->hi / ladder_factor(s), s->min_rate);
    } else {
        next = fmin(fmax(s->start, s->min_rate), s->max_rate);
    }
    if (s->steps >= s->max_steps) {
        s->end = CAP_NO_STEPS;
        return false;
    }
    *rate = next;
    return true;
}

void capacity_search_record(struct cap_search *s, double rate, bool pass)
{
    s->steps++;
    /* a ladder step the same way as the last one lengthens the run */
    bool ladder = !(s->lo > 0 && isfinite(s->hi));
    if (ladder)
        s->run = (s->run && s->last_pass == pass) ? s->run + 1 : 1;
    s->last_pass = pass;
    if (pass && rate > s->lo)
        s->lo = rate;
    else if (!pass && rate < s->hi)
        s->hi = rate;
}

void capacity_mode_summarise(struct cap_mode *m)
{
    m->capacity = m->lo = m->hi = NAN;
    m->has_ci = false;
    m->censored = CAP_FOUND;
    for (size_t i = 0; i < m->n; i++)
        if (m->end[i] != CAP_FOUND && m->censored == CAP_FOUND)
            m->censored = m->end[i];
    if (m->n == 0 || m->censored != CAP_FOUND)
        return;
    double s = 0, ss = 0;
    for (size_t i = 0; i < m->n; i++)
        s += log(m->est[i]);
    double mean = s / (double)m->n;
    m->capacity = exp(mean);
    if (m->n < 2)
        return;
    for (size_t i = 0; i < m->n; i++)
        ss += (log(m->est[i]) - mean) * (log(m->est[i]) - mean);
    double half = stats_t975((double)(m->n - 1)) * sqrt(ss / (double)(m->n - 1) / (double)m->n);
    m->lo = exp(mean - half);
    m->hi = exp(mean + half);
    m->has_ci = true;
}

const char *capacity_verdict_name(enum cap_verdict v)
{
    static const char *const names[] = {"more", "less", "no_difference", "cannot_tell"};
    return names[v];
}

/* Why a side cannot be judged, in why; false when it can. */
static bool side_unjudgeable(const struct cap_mode *m, const char *name, char *why, size_t len)
{
    if (m->n == 0) {
        snprintf(why, len, "%s has no completed search", name);
        return true;
    }
    if (m->censored == CAP_ABOVE_MAX) {
        snprintf(why, len, "%s met the target up to --max-rate (saturation not reached)", name);
        return true;
    }
    if (m->censored == CAP_BELOW_MIN) {
        snprintf(why, len, "%s missed the target at the lowest load tried", name);
        return true;
    }
    if (m->censored == CAP_NO_STEPS) {
        snprintf(why, len, "%s's search ran out of steps before bracketing its capacity", name);
        return true;
    }
    if (m->n < CAP_MIN_REPEATS) {
        snprintf(why, len, "insufficient repeats (%s: %zu searches, %d needed)", name, m->n,
                 CAP_MIN_REPEATS);
        return true;
    }
    return false;
}

enum cap_verdict capacity_compare(const struct cap_mode *base, const char *base_name,
                                  const struct cap_mode *other, const char *other_name,
                                  double precision, const char *slo_text, struct cap_ratio *r,
                                  char *line, size_t len)
{
    *r = (struct cap_ratio){.ok = false, .ratio = NAN, .lo = NAN, .hi = NAN};
    char why[200];
    if (side_unjudgeable(base, base_name, why, sizeof why) ||
        side_unjudgeable(other, other_name, why, sizeof why)) {
        snprintf(line, len, "cannot tell: %s", why);
        return CAP_V_CANNOT;
    }
    struct ratio_ci ci;
    if (stats_log_ratio_ci(other->est, other->n, base->est, base->n, &ci) < 0) {
        snprintf(line, len, "cannot tell: the capacity ratio is undefined");
        return CAP_V_CANNOT;
    }
    *r = (struct cap_ratio){.ok = true, .ratio = ci.ratio, .lo = ci.lo, .hi = ci.hi};
    double step = 1 + precision;
    bool more = ci.lo > 1 && ci.ratio > step, less = ci.hi < 1 && ci.ratio < 1 / step;
    if (!more && !less) {
        snprintf(line, len,
                 "no difference at this confidence: %s serves %.2fx the load of %s (95 %% CI "
                 "%.2f-%.2fx) with %s",
                 other_name, ci.ratio, base_name, ci.lo, ci.hi, slo_text);
        return CAP_V_SAME;
    }
    snprintf(line, len, "%s serves %.2fx the load of %s (95 %% CI %.2f-%.2fx) with %s", other_name,
             ci.ratio, base_name, ci.lo, ci.hi, slo_text);
    return more ? CAP_V_MORE : CAP_V_LESS;
}
