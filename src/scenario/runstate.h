/*
 * runstate.h - the record of one run as the scenarios, the summary and the reports read it: what
 * was asked (struct scen_config, the parts of the run's configuration read below the runner),
 * each phase's plan and results (struct phase_state) and the run as a whole (struct run_state).
 * The runner (run/runner.c) fills them; a scenario reads and extends them through its planner
 * (scenario.h), so that no scenario reaches up into the runner.
 */
#ifndef KVBENCH_SCENARIO_RUNSTATE_H
#define KVBENCH_SCENARIO_RUNSTATE_H

#include "model/kvmode.h"
#include "load/loadgen.h"
#include "model/engines.h"
#include "probe/blockdev.h"
#include "probe/kvsnap.h"
#include "scenario/workload.h"
#include "util/clock.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The run's configuration as the scenarios, the summary and the reports read it. struct
 * run_config holds it (cfg->scen: the flags parse into it); the runner points gp and slo at the
 * run's own when the run starts (run/runner.c, scen_config_of). */
#define SCEN_LENGTHS_MAX 16

struct scen_config {
    const char *scenario;   /* its table name */
    const char *prompt_set; /* short, long, mixed */
    long long requests, warmup, concurrency;
    bool warmup_given; /* --warmup was set (a scenario's own warmup size defers to it) */
    const struct gen_params *gp;
    size_t max_concurrency;
    /* eviction_replay */
    long long evict_a, evict_b, evict_a_conc, evict_b_conc;
    bool pressure_auto;
    /* reuse_verify */
    long long reuse_repeat;
    const char *reuse_prompt_set;
    /* multi_turn */
    long long users, rounds, system_prompt_tokens, history_tokens, answer_tokens;
    double user_qps;
    /* trace */
    const char *trace_path;
    long long trace_block_tokens;
    double trace_speedup, trace_window_s;
    /* breakeven: the ladder of context lengths (ascending), repeats, and the preflight's input
     * ceiling (--engine-max-input-tokens - --max-tokens - --input-token-safety-margin) */
    long long breakeven_lengths[SCEN_LENGTHS_MAX];
    size_t n_breakeven_lengths;
    long long breakeven_repeats;
    long long input_ceiling;
    /* how prompts are sent: --endpoint, --prompt-template (completions), --chat-template (chat;
     * -1: auto, decided when the run starts) */
    enum endpoint endpoint;
    bool llama3_template;
    int chat_template;
    /* recorded in summary.json */
    enum kv_mode kv_mode;
    double cpu_cache_gb, disk_cache_gb;
    const char **variant_tags;
    size_t n_variant_tags;
    bool diag_disable_partial_reuse, diag_disable_block_reuse, diag_disable_disk_offload_filter;
    const char *container_name;
    const char *kvbm_metrics_url;
    struct load_shape shape;
    const struct slo *slo;
};

struct phase_state {
    char name[32];
    size_t concurrency;
    const struct prompt **prompts;
    size_t n;
    size_t ring; /* > 0: prompts[] has this many entries, prompt i at i % ring (a large set) */
    char first_prompt_id[32];
    bool included;   /* counts in the overall summary */
    const char *set; /* prompt set label */
    bool ran, skipped;
    struct phase_result res;
    struct kv_snapshot before, after;
    bool have_snaps;
    bool io_ok;
    struct blockdev_stat io_before, io_after;
    long models_after; /* -1: not checked */
    json_t *kv_delta;  /* kvbm_metrics_delta */
    json_t *io_delta;  /* NULL when the device was unreadable */
    json_t *telemetry; /* {disk: peak/mean MB/s, cache_churn} with --collect-telemetry */
    /* set by the scenario (multi_turn, trace) */
    const double *schedule; /* an open loop on these due offsets (loadgen's phase_plan) */
    uint64_t t0_ns;         /* the schedule's zero; the phase waits for it. 0: its start */
    bool keep_text;         /* keep the response texts (the next round is made from them) */
    uint64_t t_start_ns;    /* when it started (clock_now_ns) */
    /* wall clock (epoch seconds) of the phase's start and end; 0 when it did not run. Shards'
     * phases are lined up and merged by them (kvbench merge), and --prometheus-url queries
     * their windows. */
    double wall_start_s, wall_end_s;
    /* other nodes' metrics in this phase (--scrape, --prometheus-url): {NAME: node phase
     * object} (probe/nodes.h); NULL without either */
    json_t *nodes;
};

struct run_state {
    const struct scen_config *cfg; /* what the run was asked for (the parts read here) */
    char run_id[128];
    char created_utc[CLOCK_ISO_MS_LEN];
    char model[256];
    long model_count_end;
    struct phase_state *phases;
    size_t n_phases;
    const char *device; /* resolved block device, or NULL */
    const char *device_how;
    char device_error[256];
    size_t snapshot_count, snapshot_ok;
    const char *const *header_keys; /* response header names seen (the load generator's) */
    size_t n_header_keys;
    char params_sha256[65];
    json_t *preflight;
    json_t *telemetry;                   /* summary's telemetry object, or NULL */
    const struct engine_profile *engine; /* engine_id.profile */
    struct engine_id engine_id;          /* who answers: title, evidence, kvbench serve or not */
    bool kv_modes_apply;                 /* kvbench's KV modes mean something on it */
    json_t *ctx_limit;                   /* {tokens, source} or {tokens: null, reason} */
    char metrics_url[512];               /* where the engine's KV metrics were read */
    json_t *warnings;                    /* [{code, message}] */
    json_t *bos;                         /* {mode, template_bos, evidence} */
    const json_t *container;             /* docker inspect of the serving container, or NULL */
    void *scenario_state;                /* the scenario's own (struct scenario's free_state) */
    json_t *shard; /* --shard: summary.json shard, as config.json's (run/shard.h); NULL: none */
};

#endif
