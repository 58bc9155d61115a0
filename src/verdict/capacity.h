/*
 * capacity.h - capacity at SLO (`kvbench sweep`, docs/SWEEP.md) as analysis: how one open-loop
 * step is judged (met the target, missed it, or the server saturated), the search over offered
 * loads (a geometric ladder, then bisection to a precision), one mode's capacity from its
 * repeated searches with an interval, and the capacity ratio between modes with its interval and
 * verdict line. Nothing here runs a request: run/sweep.c feeds it what the steps measured.
 */
#ifndef KVBENCH_VERDICT_CAPACITY_H
#define KVBENCH_VERDICT_CAPACITY_H

#include <stdbool.h>
#include <stddef.h>

/* Saturation: a step whose completions came at under this share of its sends fell behind. */
#define CAP_BEHIND_SHARE 0.95

/* What one step measured, as the judgement reads it. NAN: not measured. */
struct cap_step {
    double offered;    /* the load asked for (req/s, or the trace's speed-up) */
    double attainment; /* the share of requests that met every SLO */
    /* requests by due time, first and last third: the rate between the thirds' median due
     * times and between their median completions (a server that keeps up completes at the rate
     * it is sent), and their median corrected TTFT (ms) */
    double sent_rate, done_rate;
    double between; /* requests between the two thirds' medians (the rates' numerator) */
    double ttft_first, ttft_last;
    double latency_first; /* the first third's median corrected latency, s: completions may lag
                           * sends by noise of about this much before the lag means a queue */
    bool check_growth;    /* requests are alike over time: TTFT growing through the step means
                           * a queue (not multi_turn, whose context grows by round) */
};

enum cap_judgement { CAP_PASS, CAP_MISS, CAP_BEHIND, CAP_GROWING, CAP_UNJUDGED };

/* Judge a step against the attainment target; ttft_ref_ms scales what counts as growth (the
 * TTFT SLO, or 0: the first third's median). A step passes only when it met the target and the
 * server kept up. */
enum cap_judgement capacity_judge(const struct cap_step *s, double target, double ttft_ref_ms);
/* "pass", "miss", "behind", "ttft_growing", "unjudged". */
const char *capacity_judgement_name(enum cap_judgement j);

enum cap_end {
    CAP_SEARCHING,
    CAP_FOUND,     /* bracketed to the precision: the capacity is the highest passing load */
    CAP_ABOVE_MAX, /* passed at --max-rate: the capacity is at least that (censored) */
    CAP_BELOW_MIN, /* failed at the lowest load tried: the capacity is below it */
    CAP_NO_STEPS,  /* the step budget ran out before the bracket closed */
};
/* "searching", "found", "above_max", "below_min", "out_of_steps". */
const char *capacity_end_name(enum cap_end e);

/* One search: a ladder from start by factor (up while steps pass, down while they fail) until a
 * pass and a fail bracket the capacity, then geometric bisection until hi / lo <= 1 + precision.
 * lo: the highest passing load (0: none yet); hi: the lowest failing (INFINITY: none yet). */
struct cap_search {
    double start, factor, precision, min_rate, max_rate;
    bool accelerate; /* the ladder's factor squares on each further step the same way (a
                      * re-bracketing search: fine steps near its start, few far from it) */
    size_t max_steps, steps, run; /* run: ladder steps in a row the same way */
    bool last_pass;
    double lo, hi;
    enum cap_end end;
};

void capacity_search_init(struct cap_search *s, double start, double factor, double precision,
                          double min_rate, double max_rate, size_t max_steps, bool accelerate);
/* The next load to try in *rate; false (and s->end set) when the search is over. */
bool capacity_search_next(struct cap_search *s, double *rate);
/* Record the step at rate. */
void capacity_search_record(struct cap_search *s, double rate, bool pass);

#define CAP_REPEATS_MAX 32

/* One mode's searches and its capacity: the geometric mean of the searches' estimates (their lo)
 * with a t interval on the logs (from 2 searches). */
struct cap_mode {
    double est[CAP_REPEATS_MAX];
    enum cap_end end[CAP_REPEATS_MAX];
    size_t n;
    double capacity, lo, hi; /* NAN: unknown */
    bool has_ci;
    enum cap_end censored; /* CAP_ABOVE_MAX / CAP_BELOW_MIN / CAP_NO_STEPS when any search ended
                            * so (its capacity is a bound, no estimate), else CAP_FOUND */
};

/* Fill capacity, lo, hi, has_ci and censored from est/end. */
void capacity_mode_summarise(struct cap_mode *m);

enum cap_verdict { CAP_V_MORE, CAP_V_LESS, CAP_V_SAME, CAP_V_CANNOT };
/* "more", "less", "no_difference", "cannot_tell". */
const char *capacity_verdict_name(enum cap_verdict v);

/* The verdicts need this many searches per mode (as compare's: from 3 repeats). */
#define CAP_MIN_REPEATS 3

struct cap_ratio {
    bool ok;
    double ratio, lo, hi; /* other / base, by Welch's t on the logs */
};

/* other against base: the ratio of capacities with its 95 % interval, and the verdict line in
 * line, e.g. "cpu_disk serves 1.62x the load of cpu_only (95 % CI 1.41-1.86x) with 90 % of
 * requests within ttft_ms <= 2000". A difference is claimed only when the interval excludes 1
 * and the ratio is beyond the search's precision; "cannot tell: ..." when a side is censored or
 * has fewer than CAP_MIN_REPEATS searches. slo_text: how the SLO reads ("90 % of requests within
 * ttft_ms <= 2000"). */
enum cap_verdict capacity_compare(const struct cap_mode *base, const char *base_name,
                                  const struct cap_mode *other, const char *other_name,
                                  double precision, const char *slo_text, struct cap_ratio *r,
                                  char *line, size_t len);

#endif
