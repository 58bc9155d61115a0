/*
 * scenario.h - the scenarios as one table (as git's commands[] maps names to functions): each
 * has its phase plan, its verdicts for summary.json and its section of report.md, so that a new
 * scenario is one entry and its functions, not another branch in every file.
 */
#ifndef KVBENCH_SCENARIO_SCENARIO_H
#define KVBENCH_SCENARIO_SCENARIO_H

#include "scenario/pressure.h"
#include "scenario/runstate.h"
#include "scenario/workload.h"
#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a plan function gets from the runner: the configuration, seeds, and how to make a prompt
 * set and add a phase (runner.c's make_set and add_phase). A phase's requests are positions of
 * the set it is given; the runner decides which of them this process sends (all, or a shard's:
 * run/shard.h), so a scenario never fills or paces a phase but through these functions. */
struct planner {
    const struct scen_config *cfg;
    uint64_t seed, warm_seed, b_seed;
    void *ctx;
    struct prompt *(*make_set)(void *ctx, const char *prefix, const char *set, uint64_t seed,
                               size_t n, char *err);
    int (*add_phase)(void *ctx, const char *name, size_t conc, struct prompt *ps, size_t n,
                     bool included, const char *set, char *err);
    const struct tier_caps *caps; /* --pressure auto, multi_turn */
    json_t **pressure_plan;       /* set by a plan that sizes a set from the tiers */
    /* for scenarios that make prompts themselves (multi_turn, trace) */
    struct run_state *rs;           /* its phases, and scenario_state for the scenario's own */
    const struct tokenizer *tok;    /* the tokenizer in use */
    const char *salt;               /* the run's prompt salt ("" for none) */
    const struct prompt_form *form; /* how prompts are written (endpoint, template, BOS) */
    /* Hand prompts made by the scenario to the run (it frees them and writes their manifest
     * rows, at once when the manifest is already written). */
    int (*add_set)(void *ctx, struct prompt *ps, size_t n, char *err);
    /* Prompts made only while the run goes (later rounds): n of them, each at most max_tokens
     * estimated tokens, checked by the preflight like the others. */
    void (*bound)(void *ctx, const char *what, size_t n, size_t max_tokens);
    /* Fill phase i (added with ps NULL and n requests) from ps[0..n), as add_phase fills a
     * phase: with --shard only this shard's positions go into it (ph->n of them). */
    void (*fill_phase)(void *ctx, size_t phase, struct prompt *ps, size_t n);
    /* Give phase i the due offsets of its n requests (an array the scenario keeps; with --shard
     * the runner keeps those of this shard's positions). Returns 0 or -1 (out of memory). */
    int (*set_schedule)(void *ctx, size_t phase, const double *schedule, size_t n, char *err);
};

/* A scenario's verdicts, new references (NULL: none). */
struct scenario_verdicts {
    json_t *kvbm;     /* overall_summary.<kvbm_key>, kvbm_metrics.<signal_key> */
    json_t *io;       /* overall_summary.<io_key> */
    json_t *identity; /* overall_summary.<identity_key>, request_identity.<identity_key> */
};

struct scenario {
    const char *name;
    const char *what; /* one line, for docs and errors */
    int (*plan)(struct planner *p, char *err);
    void (*verdicts)(const struct run_state *rs, struct scenario_verdicts *v); /* NULL: none */
    const char *kvbm_key, *io_key, *identity_key, *signal_key; /* summary.json names */
    /* report.md's Signals section: the summary, the object holding the verdicts (overall, or
     * kvbm_metrics on an invalid run) and config.json */
    void (*report)(struct buf *b, const json_t *summary, const json_t *src, const json_t *config);
    bool duration; /* --duration-s applies (a main phase of cycling prompts) */
    bool pressure; /* --pressure auto applies */
    bool tiers;    /* reads the tiers' capacities (--tier-blocks, --kv-block-tokens, metrics) */
    /* Before phase i runs: make what depends on the phases before it (multi_turn's next round
     * from the answers). NULL: none. Returns 0, or -1 to stop the run (err). */
    int (*before_phase)(struct planner *p, size_t i, char *err);
    /* summary.json <extra_key>: the scenario's own figures and verdict. NULL: none. */
    json_t *(*extra)(const struct run_state *rs);
    const char *extra_key;
    /* kvbench merge: rs->scenario_state of a run merged from shards (rs: the union's phases and
     * configuration) rebuilt from the shards' <extra_key> objects parts[0..n), one per shard, so
     * that extra() writes the union's object by the same code. NULL: not rebuildable. Returns 0,
     * or -1 with a one-line err saying what the parts lack. */
    int (*merge_state)(struct run_state *rs, const json_t *const *parts, size_t n, char *err);
    void (*free_state)(void *state); /* frees rs->scenario_state */
    /* The phases that answer the scenario's question (kvbench compare reads them first, and
     * reports the others as the cost side), and how to say which they are. */
    bool (*answers)(const char *phase);
    const char *answer_phases;
};

/* The warmup phase (--warmup prompts of `set` at --concurrency, another seed, not in the
 * overall figures), when --warmup > 0. Returns 0 or -1 (err). */
int plan_warmup(struct planner *p, const char *set, char *err);

/* What a phase's responses and the engine say about its prompt tokens and their reuse. */
struct phase_reuse {
    size_t requests, errors;
    double prompt_tokens; /* from usage where the responses had it, else kvbench's count */
    bool prompt_from_usage;
    double reused_tokens; /* valid when source != NULL */
    const char *source;   /* "usage" (the responses), "engine_counters" or NULL: unknown */
};
void phase_reuse_of(const struct run_state *rs, size_t phase, struct phase_reuse *out);

/* The scenario named name, or NULL. */
const struct scenario *scenario_find(const char *name);
/* The names, NULL-terminated (for the --scenario choices). */
const char *const *scenario_names(void);

/* The scenario's verdict in a summary.json, {signal, interpretation}: overall_summary.<kvbm_key>,
 * kvbm_metrics.<signal_key> (an invalid run), or <extra_key>.verdict (multi_turn, trace).
 * Borrowed; NULL when the summary has none (standard). */
const json_t *scenario_summary_verdict(const json_t *summary);
/* Its signal ("-" when none). */
const char *scenario_summary_signal(const json_t *summary);

/* The phase named name that ran, or NULL. */
const struct phase_state *scenario_find_phase(const struct run_state *rs, const char *name);
/* Whether phase is prefix<k> with k >= 2 (reuse_2, round_3 ...): the repeats after the first. */
bool scenario_numbered_from_2(const char *phase, const char *prefix);

/* A scenario's report.md section, written with the cells every section (and report.md,
 * comparison.md) shares:
 * o[key] formatted with fmt (one double), or `absent` when it is missing or null; */
void scenario_md_num(struct buf *b, const json_t *o, const char *key, const char *fmt,
                     const char *absent);
/* a verdict heading: "### name: `signal`" and its interpretation (one sentence, a full stop
 * added); */
void scenario_md_verdict(struct buf *b, const char *name, const json_t *verdict);
/* a signal's heading and interpretation as it is written (nothing when sig is NULL). */
void scenario_md_signal(struct buf *b, const char *title, const json_t *sig);

/* The rows, one per scen_<name>.c. */
extern const struct scenario SCEN_STANDARD, SCEN_EVICTION_REPLAY, SCEN_REUSE_VERIFY,
    SCEN_MULTI_TURN, SCEN_TRACE, SCEN_BREAKEVEN;

#endif
