/*
 * runner.h - one benchmark run (SPEC §2.1, §4, §5): plan the phases of a scenario, synthesise
 * prompts, preflight them, resolve the model, run each phase with metrics snapshots and
 * block-device counters around it, judge validity, and write the run directory.
 */
#ifndef KVBENCH_RUN_RUNNER_H
#define KVBENCH_RUN_RUNNER_H

#include "model/engines.h"
#include "scenario/runstate.h"
#include "model/kvmode.h"
#include "load/loadgen.h"
#include "analysis/signals.h"
#include "scenario/workload.h"
#include "probe/blockdev.h"
#include "probe/kvsnap.h"
#include "probe/telemetry.h"
#include "run/shard.h"
#include "util/clock.h"
#include "model/tokenizer.h"

#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>

struct run_config {
    /* what the scenarios read (scenario/runstate.h): the scenario, its sizes, the KV mode, the
     * arrival shape … (scen.gp and scen.slo are set when the run starts) */
    struct scen_config scen;
    const char *base_url;
    const char *model_id; /* "auto": resolve from /v1/models */
    double model_resolve_timeout_s, model_resolve_poll_s;
    struct token_range short_range, long_range;
    struct gen_params gp;
    double timeout_s;
    size_t max_response_bytes;
    double max_error_rate;        /* --max-error-rate: above it a measured phase is invalid */
    double unreachable_timeout_s; /* --unreachable-timeout-s */
    long long seed;
    const char *tokenizer_spec;  /* heuristic, auto or a path */
    const struct tokenizer *tok; /* NULL with auto: resolved once the model is known */
    const char *results_root, *run_id;
    bool store_responses;
    long long tier_blocks[3];  /* --tier-blocks device,host,disk; -1: read from the engine */
    long long kv_block_tokens; /* --kv-block-tokens; 0: read from the engine */
    long long engine_max_input_tokens, input_token_safety_margin;
    const char *phase_io_device;
    const char *iostat_device;
    bool collect_telemetry;
    double telemetry_interval_s;
    const char *telemetry_pid;
    const char *procfs_root; /* "/proc" */
    const char *kvbm_cache_dir;
    double kvbm_metrics_timeout_s;
    bool allow_missing_kvbm_metrics;
    const char *report_filename;
    const char *prompt_salt; /* "run", "none" or the salt */
    const char *api_key;
    const char *add_bos;         /* auto, yes, no: <|begin_of_text|> in the template */
    const char *engine;          /* auto or a profile name (model/engines.h) */
    bool kvbm_metrics_url_given; /* --kvbm-metrics-url was set: it wins over the profile's */
    double interrupt_grace_s;
    /* the load generator (SPEC §2, §4.4) */
    size_t threads; /* 0: auto */
    enum http_transport transport;
    bool progress;
    double request_rate;    /* 0: closed loop; INFINITY: all at once */
    double duration_s;      /* > 0: the main phase runs this long (prompts cycle) */
    struct slo slo;         /* --slo: goodput objectives (slo.any false: none) */
    json_t *flags;          /* every flag as given/defaulted (api key excluded), for config.json */
    const char *sysfs_root; /* "/sys" */
    /* other nodes' metrics (run/runnodes.h): --scrape NAME=URL values, --prometheus-url (NULL:
     * none), --prometheus-match (NULL: none), --prometheus-timeout-s */
    const char **scrape;
    size_t n_scrape;
    const char *prometheus_url, *prometheus_match;
    double prometheus_timeout_s;
    /* --shard I/N (run/shard.h): this process sends shard.spec.index's part of the run (count
     * 0: the whole run). run_id is then the base id: the directory is <run_id>-shard<I>of<N>, the
     * prompt salt (--prompt-salt run) the base id. */
    struct shard_config shard;
};

enum { RUN_OK = 0, RUN_FAILED = -1, RUN_USAGE = -2 };

struct run_outcome {
    bool valid;
    char invalid_reason[64];
    char run_dir[PATH_MAX];
    size_t requests_sent;
};

/* Whether id may name a run directory (not empty, no '/' or '..', no control character, at most
 * 127 characters). Returns 0, or -1 with a one-line err naming --run-id. */
int run_id_valid(const char *id, char *err);

/* Run. Returns RUN_OK when the run directory was written (valid or not: see out), RUN_USAGE for
 * a refused run id or an existing run directory (nothing written), RUN_FAILED when the run could
 * not start. `interrupted` becoming nonzero stops the run (SIGINT/SIGTERM). */
int bench_run(const struct run_config *cfg, const volatile sig_atomic_t *interrupted,
              struct run_outcome *out, char *err);

#endif
