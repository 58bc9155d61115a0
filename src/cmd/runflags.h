/*
 * runflags.h - the workload flags of `kvbench run` (SPEC §2.1), shared by `run`, `compare`,
 * `matrix` and `demo` so that every command takes them with the same names, defaults and checks.
 *
 * Each flag is one row of RUN_FLAG_ROWS (file-level data in runflags.c): name, type, default,
 * help, and where its value lives. A value the run uses as given lives in the run's own
 * configuration (f->cfg, a struct run_config: the row points straight at its field, no copy);
 * the few that are converted first (enumerations, ranges, lists, "auto" values) live beside it.
 * run_flags_config starts from f->cfg and adds the derived values and the cross-flag checks,
 * asking "was this flag given?" of the parser by the field's address (opts_given).
 */
#ifndef KVBENCH_CMD_RUNFLAGS_H
#define KVBENCH_CMD_RUNFLAGS_H

#include "run/runner.h"
#include "util/opts.h"

#define RUN_FLAGS_MAX 128

struct run_flags {
    /* the run's configuration: a row whose value needs no conversion points straight into it */
    struct run_config cfg;
    /* values converted or checked before they reach cfg */
    const char *run_id, *api_key, *request_seed, *threads, *request_rate, *tier_blocks;
    const char *breakeven_lengths;
    /* enumerations, as the int of their name table (cmd/enums.h); -1: not given, no default */
    int prompt_set, reuse_prompt_set, kv_mode, log_level, prompt_template, transport, arrival,
        pressure, preset, endpoint, chat_template;
    double trace_max_wait_s;
    struct opt_range short_range, long_range;
    long long max_response_bytes;
    long long evict_a_conc, evict_b_conc, max_concurrency, kv_block_tokens;
    struct opt_list stop, variant_tags, slo;
    bool no_progress;
    struct opt_list scrape; /* --scrape NAME=URL, every one given */
    const char *shard;      /* --shard I/N, parsed into cfg.shard */
    /* set by a command that drives a part of a run (kvbench run); the others refuse --shard */
    bool shard_allowed;
};

/* The run flags, one row each, ended by a row whose name is NULL; values at offsets into
 * struct run_flags. */
extern const struct opt RUN_FLAG_ROWS[];

/* Append the run flags, bound to f, to opts (at index *n, up to cap entries; opts stays
 * terminated when room is left). Flags whose value lives at an address in `skip` (fields of f,
 * NULL-terminated, may be NULL) are left out. */
void run_flags_add(struct run_flags *f, struct opt *opts, size_t *n, size_t cap,
                   const void *const *skip);
/* Turn parsed flags into a run configuration (derived defaults, cross-flag checks, the
 * tokenizer: an explicit path is loaded here, auto is left to the run). Returns 0, or -1 with a
 * one-line err naming the flag. The caller releases cfg with run_flags_release. */
int run_flags_config(const struct run_flags *f, const struct opt *opts, struct run_config *cfg,
                     char *err);

/* config.json `args`: every option of opts by name (secrets left out), --request-seed as the
 * number sent or null. New reference, or NULL when out of memory. */
json_t *run_flags_args(const struct opt *opts, const struct run_config *cfg);

/* Free what run_flags_config allocated (a loaded tokenizer, the args). */
void run_flags_release(struct run_config *cfg);

#endif
