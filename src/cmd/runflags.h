/*
 * runflags.h - the workload flags of `kvbench run` (SPEC §2.1), shared by `run`, `compare` and
 * `matrix` so that every command takes them with the same names, defaults and checks.
 */
#ifndef KVBENCH_CMD_RUNFLAGS_H
#define KVBENCH_CMD_RUNFLAGS_H

#include "run/runner.h"
#include "util/opts.h"

#define RUN_FLAGS_MAX 100

struct run_flags {
    const char *base_url, *model_id, *scenario, *prompt_set, *tokenizer, *results_root, *run_id,
        *reuse_prompt_set, *kv_mode, *phase_io_device, *iostat_device, *telemetry_pid,
        *kvbm_cache_dir, *container_name, *kvbm_metrics_url, *report_filename, *log_level,
        *prompt_salt, *api_key, *prompt_template, *request_seed, *engine, *add_bos, *threads,
        *transport, *request_rate, *arrival, *pressure, *tier_blocks, *preset, *trace;
    double model_resolve_timeout_s, model_resolve_poll_s, temperature, top_p, timeout_s,
        cpu_cache_gb, disk_cache_gb, telemetry_interval_s, kvbm_metrics_timeout_s, burstiness,
        ramp_up_s, duration_s, user_qps, trace_speedup, trace_window_s, trace_max_wait_s,
        max_error_rate, unreachable_timeout_s;
    struct opt_range short_range, long_range;
    long long max_response_bytes;
    long long requests, warmup, concurrency, max_tokens, seed, evict_a, evict_b, evict_a_conc,
        evict_b_conc, reuse_repeat, engine_max_input, safety_margin, max_concurrency,
        kv_block_tokens, users, rounds, system_prompt_tokens, history_tokens, answer_tokens,
        trace_block_tokens;
    struct opt_list stop, variant_tags, slo;
    bool stream, store_responses, diag_partial, diag_block, diag_filter, collect_telemetry,
        allow_missing, no_progress;
};

/* Append the run flags to opts (at index *n, at most RUN_FLAGS_MAX entries). Flags named in
 * `skip` (NULL-terminated) are left out. */
void run_flags_add(struct run_flags *f, struct opt *opts, size_t *n, const char *const *skip);
/* Turn parsed flags into a run configuration (derived defaults, cross-flag checks, the
 * tokenizer: an explicit path is loaded here, auto is left to the run). Returns 0, or -1 with a
 * one-line err naming the flag. The caller releases cfg->flags and run_flags_release(cfg). */
int run_flags_config(const struct run_flags *f, const struct opt *opts, struct run_config *cfg,
                     char *err);

/* Free what run_flags_config allocated (a loaded tokenizer). */
void run_flags_release(struct run_config *cfg);

#endif
