/*
 * runflags.c - the flag rows of `kvbench run`, and how parsed flags become a run configuration.
 * Names and defaults are those of the runbook's `python3 -m bench.run_bench`, so every runbook
 * command works with that prefix replaced.
 *
 * RUN_FLAG_ROWS is data: one row per flag, its value at an offset into struct run_flags (the
 * OPT_AT_* macros check the field's type against the row's). run, compare, matrix and demo bind
 * the rows to their own struct run_flags (opts_bind), so the parser, --help, the docs' tables and
 * config.json `args` all read the same rows. run_flags_config derives the run's struct
 * run_config in parts a reader would name: the requests, what is recorded, the load shape, the
 * tiers, multi_turn, trace, and the tokenizer; each asks "was this flag given?" by the field's
 * address, never by the flag's name.
 */
#include "cmd/runflags.h"

#include "model/engines.h"
#include "probe/nodes.h"
#include "run/shard.h"
#include "scenario/scenario.h"
#include "scenario/trace.h"

#include "cmd/cmd.h"
#include "cmd/enums.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "model/tokserver.h"

#include <math.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* multi_turn's presets (docs/WORKLOADS.md), in MT_PRESET_NAMES' order: users, rounds, system,
 * history, answer, user QPS */
static const struct mt_preset {
    long long users, rounds, system, history, answer;
    double user_qps;
} MT_PRESETS[] = {
    /* lmbench-long: LMBenchmark's long-input workload at its lowest QPS (0.5 over 15 users) */
    {15, 20, 1000, 20000, 100, 0.5 / 15},
    /* lmbench-short: a short conversation, about 20 s on the embedded engine's default profile */
    {6, 4, 256, 1024, 32, 0},
};
static const struct name_entry MT_PRESET_NAMES[] = {
    {"lmbench-long", 0}, {"lmbench-short", 1}, {NULL, 0}};

#define BIG 1e12
#define RF  struct run_flags

const struct opt RUN_FLAG_ROWS[] = {
    CMD_OPT_BASE_URL(OPT_AT(RF, cfg.base_url, const char *)),
    {.name = "model-id",
     OPT_AT_STR(RF, cfg.model_id),
     .def = "auto",
     .metavar = "ID",
     .help = "model to request; auto = first id of /v1/models, polled"},
    {.name = "model-resolve-timeout-s",
     OPT_AT_DURATION(RF, cfg.model_resolve_timeout_s),
     .def = "180",
     .help = "how long to poll for auto"},
    {.name = "model-resolve-poll-s",
     OPT_AT_DURATION(RF, cfg.model_resolve_poll_s),
     .def = "2",
     .min = 0.01,
     .max = 3600,
     .help = "poll interval for auto"},
    {.name = "scenario",
     OPT_AT_CHOICE(RF, cfg.scen.scenario),
     .choices_fn = scenario_names,
     .def = "standard",
     .help = "phases to run"},
    {.name = "prompt-set",
     OPT_AT_ENUM(RF, prompt_set, PROMPT_SET_NAMES),
     .def = "short",
     .help = "prompt lengths (standard)"},
    {.name = "short-range",
     OPT_AT_RANGE(RF, short_range),
     .def = "512:2048",
     .min = 1,
     .max = 10000000,
     .help = "token targets of short prompts"},
    {.name = "long-range",
     OPT_AT_RANGE(RF, long_range),
     .def = "8192:32768",
     .min = 1,
     .max = 10000000,
     .help = "token targets of long prompts"},
    {.name = "requests",
     OPT_AT_INT(RF, cfg.scen.requests),
     .def = "64",
     .min = 1,
     .max = 10000000,
     .help = "measured requests (standard)"},
    {.name = "warmup",
     OPT_AT_INT(RF, cfg.scen.warmup),
     .def = "8",
     .min = 0,
     .max = 10000000,
     .help = "warmup requests (not in the overall summary)"},
    {.name = "concurrency",
     OPT_AT_INT(RF, cfg.scen.concurrency),
     .def = "1",
     .min = 1,
     .max = 100000,
     .help = "requests in flight at once (closed loop)"},
    {.name = "max-tokens",
     OPT_AT_INT(RF, cfg.gp.max_tokens),
     .def = "256",
     .min = 1,
     .max = 10000000,
     .help = "max_tokens sent"},
    {.name = "temperature",
     OPT_AT_FLOAT(RF, cfg.gp.temperature),
     .def = "0.7",
     .min = 0,
     .max = 2,
     .help = "temperature sent"},
    {.name = "top-p",
     OPT_AT_FLOAT(RF, cfg.gp.top_p),
     .def = "1.0",
     .min = 0,
     .max = 1,
     .help = "top_p sent"},
    {.name = "stop",
     OPT_AT_LIST(RF, stop),
     .def = "<|eot_id|>",
     .metavar = "TEXT",
     .help = "stop string sent"},
    {.name = "stream",
     OPT_AT_BOOL(RF, cfg.gp.stream),
     .help = "stream (SSE); needed for TTFT and ITL"},
    {.name = "timeout-s",
     OPT_AT_DURATION(RF, cfg.timeout_s),
     .def = "600",
     .min = 0.001,
     .max = 1e7,
     .help = "per-request timeout"},
    {.name = "max-response-bytes",
     OPT_AT_INT(RF, max_response_bytes),
     .def = "67108864",
     .min = 1024,
     .max = 1e12,
     .help = "bound on one response (an SSE stream or a body): past it the request is "
             "recorded as response_too_large and its memory freed"},
    {.name = "max-error-rate",
     OPT_AT_FLOAT(RF, cfg.max_error_rate),
     .def = "0.05",
     .min = 0,
     .max = 1,
     .help = "a measured phase whose failed share of requests is above this makes the run "
             "invalid (error_rate_exceeded); 0 allows none"},
    {.name = "unreachable-timeout-s",
     OPT_AT_DURATION(RF, cfg.unreachable_timeout_s),
     .def = "10",
     .min = 0.1,
     .max = 1e6,
     .help = "a server that stops answering (requests refused or cut off in a row) is probed "
             "with back-off; after this long away the phase ends (server_unreachable)"},
    {.name = "seed",
     OPT_AT_INT(RF, cfg.seed),
     .def = "1337",
     .min = 0,
     .max = 9007199254740991.0,
     .help = "prompt synthesis seed"},
    {.name = "request-seed",
     OPT_AT_STR(RF, request_seed),
     .def = "none",
     .metavar = "N",
     .help = "seed sent in each request body (none: not sent)"},
    {.name = "tokenizer",
     OPT_AT_STR(RF, cfg.tokenizer_spec),
     .def = "auto",
     .metavar = "SPEC",
     .help = "token counter: heuristic, auto, PATH (a tokenizer.json) or server (the "
             "server's /tokenize: vLLM, SGLang, llama.cpp)"},
    CMD_OPT_RESULTS_ROOT(OPT_AT(RF, cfg.results_root, const char *), "where run directories go"),
    {.name = "run-id",
     OPT_AT_STR(RF, run_id),
     .metavar = "ID",
     .help = "run directory name (default: UTC YYYYMMDDTHHMMSSZ)"},
    {.name = "shard",
     OPT_AT_STR(RF, shard),
     .metavar = "I/N",
     .help = "kvbench run only: send part I of N of the run from this process (several client "
             "hosts; I from 0, e.g. a Kubernetes Indexed Job's JOB_COMPLETION_INDEX): every "
             "phase's requests at positions p % N == I, concurrency and --request-rate divided "
             "by N, phases lined up with the other shards'; writes <run-id>-shard<I>of<N>; "
             "kvbench merge joins the shards (docs/RUN.md)"},
    {.name = "start-at",
     OPT_AT_FLOAT(RF, cfg.shard.start_at),
     .min = 1,
     .max = 1e13, /* milliseconds get the error that says so (shard_config) */
     .metavar = "EPOCH_S",
     .help = "with --shard: the wall-clock time (epoch seconds) at which every shard starts its "
             "first phase; the run id defaults to shards-<EPOCH_S>"},
    {.name = "shard-sync",
     OPT_AT_STR(RF, cfg.shard.sync_dir),
     .metavar = "DIR",
     .help = "with --shard: a directory every shard reaches (a shared volume) where each writes "
             "when its phases end, so that the next phase starts together (default: "
             "<results-root>/<run-id>.sync)"},
    {.name = "shard-wait-s",
     OPT_AT_DURATION(RF, cfg.shard.wait_s),
     .def = "600",
     .min = 0.1,
     .max = 1e6,
     .help = "with --shard: how long a shard waits for the others between phases; then it skips "
             "the rest and its run is invalid (shard_missing)"},
    {.name = "store-responses",
     OPT_AT_BOOL(RF, cfg.store_responses),
     .help = "write each response text under responses/"},
    {.name = "eviction-a-requests",
     OPT_AT_INT(RF, cfg.scen.evict_a),
     .def = "32",
     .min = 1,
     .max = 10000000,
     .help = "set A size (eviction_replay)"},
    {.name = "eviction-b-requests",
     OPT_AT_INT(RF, cfg.scen.evict_b),
     .def = "64",
     .min = 1,
     .max = 10000000,
     .help = "set B size (eviction_replay)"},
    {.name = "pressure",
     OPT_AT_ENUM(RF, pressure, PRESSURE_NAMES),
     .def = "fixed",
     .help = "eviction_replay set B: fixed (--eviction-b-requests) or auto (sized from the "
             "tiers' capacities so that set A leaves device and host memory and stays on "
             "disk; docs/RUN.md)"},
    {.name = "tier-blocks",
     OPT_AT_STR(RF, tier_blocks),
     .metavar = "D,H,S",
     .help = "--pressure auto, multi_turn and breakeven: device, host and disk tier "
             "capacities in KV blocks (0: tier off; default: read from the engine's metrics)"},
    {.name = "kv-block-tokens",
     OPT_AT_INT(RF, kv_block_tokens),
     .min = 1,
     .max = 1000000,
     .help = "--pressure auto, multi_turn and breakeven: tokens per KV block (default: read "
             "from the engine)"},
    {.name = "eviction-a-concurrency",
     OPT_AT_INT(RF, evict_a_conc),
     .min = 1,
     .max = 100000,
     .help = "warm_A/replay_A concurrency (default: --concurrency)"},
    {.name = "eviction-b-concurrency",
     OPT_AT_INT(RF, evict_b_conc),
     .min = 1,
     .max = 100000,
     .help = "pressure_B concurrency (default: max(A concurrency, 2 x --concurrency))"},
    {.name = "users",
     OPT_AT_INT(RF, cfg.scen.users),
     .def = "10",
     .min = 1,
     .max = 10000,
     .help = "multi_turn: users, each holding one conversation"},
    {.name = "rounds",
     OPT_AT_INT(RF, cfg.scen.rounds),
     .def = "5",
     .min = 1,
     .max = 1000,
     .help = "multi_turn: rounds per user (one phase each: round_1 .. round_R)"},
    {.name = "system-prompt-tokens",
     OPT_AT_INT(RF, cfg.scen.system_prompt_tokens),
     .def = "1000",
     .min = 0,
     .max = 10000000,
     .help = "multi_turn: the system prompt every user shares"},
    {.name = "history-tokens",
     OPT_AT_INT(RF, cfg.scen.history_tokens),
     .def = "2000",
     .min = 0,
     .max = 10000000,
     .help = "multi_turn: each user's own history, sent in round 1 and kept after"},
    {.name = "answer-tokens",
     OPT_AT_INT(RF, cfg.scen.answer_tokens),
     .def = "100",
     .min = 1,
     .max = 1000000,
     .help = "multi_turn: max_tokens of each answer (the answers join the history)"},
    {.name = "user-qps",
     OPT_AT_FLOAT(RF, cfg.scen.user_qps),
     .def = "0",
     .min = 0,
     .max = 1e6,
     .help = "multi_turn: rounds per second per user (a user's next round waits for its "
             "answer and 1/Q s; users spread over it); 0: each round as soon as the last "
             "answers are in"},
    {.name = "preset",
     OPT_AT_ENUM(RF, preset, MT_PRESET_NAMES),
     .help = "multi_turn sizes: lmbench-long (15 users x 20 rounds, 1,000 + 20,000 tokens, "
             "100-token answers) or lmbench-short (about 20 s on kvbench serve); flags given "
             "win"},
    {.name = "trace",
     OPT_AT_STR(RF, cfg.scen.trace_path),
     .metavar = "FILE",
     .help = "trace: a Mooncake trace, one JSON object per line (timestamp ms, "
             "input_length, output_length, hash_ids)"},
    {.name = "trace-block-tokens",
     OPT_AT_INT(RF, cfg.scen.trace_block_tokens),
     .def = "512",
     .min = 1,
     .max = 1000000,
     .help = "trace: tokens per hash id (Mooncake's traces use 512)"},
    {.name = "trace-max-wait-s",
     OPT_AT_DURATION(RF, trace_max_wait_s),
     .def = "3600",
     .min = 0.001,
     .max = 1e9,
     .help = "refuse a trace whose replay would wait longer than this for a request (its "
             "time from the first request / --trace-speedup): a timestamp of 1e15 ms is an "
             "error with its FILE:LINE, not a wait forever"},
    {.name = "trace-speedup",
     OPT_AT_FLOAT(RF, cfg.scen.trace_speedup),
     .def = "1",
     .min = 0,
     .max = 1e6,
     .help = "trace: replay at X times the trace's speed; 0: as fast as --concurrency "
             "allows"},
    {.name = "trace-window-s",
     OPT_AT_DURATION(RF, cfg.scen.trace_window_s),
     .def = "60",
     .min = 0.001,
     .max = 1e9,
     .help = "trace: trace time per phase (window_<k>), where reuse is reported"},
    {.name = "breakeven-lengths",
     OPT_AT_STR(RF, breakeven_lengths),
     .def = "1k,2k,4k,8k,16k,32k",
     .metavar = "LIST",
     .help = "breakeven: the ladder of context lengths in tokens (k = 1024), bounded by the "
             "input ceiling and the tiers' capacities"},
    {.name = "breakeven-repeats",
     OPT_AT_INT(RF, cfg.scen.breakeven_repeats),
     .def = "3",
     .min = 1,
     .max = 20,
     .help = "breakeven: times the whole ladder is measured (intervals need 2 or more)"},
    {.name = "reuse-repeat-count",
     OPT_AT_INT(RF, cfg.scen.reuse_repeat),
     .def = "3",
     .min = 2,
     .max = 3,
     .help = "repeats (reuse_verify)"},
    {.name = "reuse-prompt-set",
     OPT_AT_ENUM(RF, reuse_prompt_set, REUSE_PROMPT_SET_NAMES),
     .def = "short",
     .help = "prompt length (reuse_verify)"},
    {.name = "kv-mode",
     OPT_AT_ENUM(RF, kv_mode, KV_MODE_NAMES),
     .def = "cpu_disk",
     .help = "recorded KV mode"},
    {.name = "kv-cpu-cache-gb",
     OPT_AT_FLOAT(RF, cfg.scen.cpu_cache_gb),
     .def = "8",
     .min = 0,
     .max = BIG,
     .help = "recorded host cache size"},
    {.name = "kv-disk-cache-gb",
     OPT_AT_FLOAT(RF, cfg.scen.disk_cache_gb),
     .def = "32",
     .min = 0,
     .max = BIG,
     .help = "recorded disk cache size"},
    {.name = "variant-tag",
     OPT_AT_LIST(RF, variant_tags),
     .metavar = "TAG",
     .help = "free tag carried into artifacts"},
    {.name = "diagnostic-disable-partial-reuse",
     OPT_AT_BOOL(RF, cfg.scen.diag_disable_partial_reuse),
     .help = "recorded diagnostic toggle"},
    {.name = "diagnostic-disable-block-reuse",
     OPT_AT_BOOL(RF, cfg.scen.diag_disable_block_reuse),
     .help = "recorded diagnostic toggle"},
    {.name = "diagnostic-disable-disk-offload-filter",
     OPT_AT_BOOL(RF, cfg.scen.diag_disable_disk_offload_filter),
     .help = "recorded diagnostic toggle"},
    {.name = "engine-max-input-tokens",
     OPT_AT_INT(RF, cfg.engine_max_input_tokens),
     .def = "8192",
     .min = 1,
     .max = 100000000,
     .help = "the engine's input limit"},
    {.name = "input-token-safety-margin",
     OPT_AT_INT(RF, cfg.input_token_safety_margin),
     .def = "256",
     .min = 0,
     .max = 100000000,
     .help = "preflight ceiling = max input - max tokens - margin"},
    {.name = "phase-io-device",
     OPT_AT_STR(RF, cfg.phase_io_device),
     .def = "auto",
     .metavar = "DEV",
     .help = "block device for phase I/O deltas (auto or e.g. nvme0n1)"},
    {.name = "iostat-device",
     OPT_AT_STR(RF, cfg.iostat_device),
     .def = "auto",
     .metavar = "DEV",
     .help = "block device sampled by --collect-telemetry"},
    {.name = "collect-telemetry",
     OPT_AT_BOOL(RF, cfg.collect_telemetry),
     .help = "run the telemetry collectors (disk, processes, GPU, metrics, cache dir)"},
    {.name = "telemetry-interval-s",
     OPT_AT_DURATION(RF, cfg.telemetry_interval_s),
     .def = "1",
     .min = 0.01,
     .max = 3600,
     .help = "telemetry sampling period"},
    {.name = "telemetry-pid",
     OPT_AT_STR(RF, cfg.telemetry_pid),
     .def = "ALL",
     .metavar = "SPEC",
     .help = "processes to sample: ALL, PIDs (1,2) or a name pattern"},
    {.name = "kvbm-cache-dir",
     OPT_AT_STR(RF, cfg.kvbm_cache_dir),
     .def = "/mnt/nvme/kvbm",
     .metavar = "DIR",
     .help = "disk tier directory"},
    {.name = "container-name",
     OPT_AT_STR(RF, cfg.scen.container_name),
     .def = "dyn",
     .metavar = "NAME",
     .help = "container whose logs are collected (with docker)"},
    {.name = "kvbm-metrics-url",
     OPT_AT_STR(RF, cfg.scen.kvbm_metrics_url),
     .def = "http://127.0.0.1:6880/metrics",
     .metavar = "URL",
     .help = "Prometheus endpoint of the KV manager"},
    {.name = "kvbm-metrics-timeout-s",
     OPT_AT_DURATION(RF, cfg.kvbm_metrics_timeout_s),
     .def = "3",
     .min = 0.01,
     .max = 3600,
     .help = "timeout of each metrics scrape"},
    {.name = "allow-missing-kvbm-metrics",
     OPT_AT_BOOL(RF, cfg.allow_missing_kvbm_metrics),
     .help = "do not invalidate a run whose metrics endpoint is down"},
    {.name = "scrape",
     OPT_AT_LIST(RF, scrape),
     .metavar = "NAME=URL",
     .help = "another node's Prometheus text endpoint (node_exporter, dcgm-exporter, a "
             "worker's KVBM port), scraped before and after each phase (and every "
             "--telemetry-interval-s with --collect-telemetry): per phase its disk, network, "
             "memory, GPU and KV figures, and the cluster's sums; repeat for each node "
             "(docs/TELEMETRY.md)"},
    {.name = "prometheus-url",
     OPT_AT_STR(RF, cfg.prometheus_url),
     .metavar = "URL",
     .help = "a Prometheus server that scrapes the nodes: after the run every phase's window "
             "is read from it (the same figures as --scrape, per node), adding no load on the "
             "nodes"},
    {.name = "prometheus-match",
     OPT_AT_STR(RF, cfg.prometheus_match),
     .metavar = "SELECTOR",
     .help = "--prometheus-url: a label selector merged into every family's query, e.g. "
             "'{job=~\"node|dcgm\"}' (default: none, every series of the family)"},
    {.name = "prometheus-timeout-s",
     OPT_AT_DURATION(RF, cfg.prometheus_timeout_s),
     .def = "30",
     .min = 0.1,
     .max = 3600,
     .help = "--prometheus-url: each query's timeout, and how long to wait for the server to "
             "scrape past the last phase"},
    {.name = "report-filename",
     OPT_AT_STR(RF, cfg.report_filename),
     .def = "report.md",
     .metavar = "NAME",
     .help = "report file name"},
    CMD_OPT_LOG_LEVEL(OPT_AT(RF, log_level, int), "INFO", "log verbosity"),
    {.name = "prompt-salt",
     OPT_AT_STR(RF, cfg.prompt_salt),
     .def = "run",
     .metavar = "SALT",
     .help = "run = the run id, none = no salt, else the text itself"},
    CMD_OPT_API_KEY(OPT_AT(RF, api_key, const char *)),
    {.name = "endpoint",
     OPT_AT_ENUM(RF, endpoint, ENDPOINT_NAMES),
     .def = "completions",
     .help = "completions sends /v1/completions prompts; chat sends /v1/chat/completions "
             "messages (the server applies its chat template)"},
    {.name = "chat-template",
     OPT_AT_ENUM(RF, chat_template, CHAT_TEMPLATE_FLAG_NAMES),
     .def = "auto",
     .help = "--endpoint chat: the template the server applies, which prompts are counted "
             "through; auto reads the model's tokenizer_config.json, else its family"},
    {.name = "prompt-template",
     OPT_AT_ENUM(RF, prompt_template, PROMPT_TEMPLATE_NAMES),
     .def = "llama3",
     .help = "completions: wrap prompts in the Llama 3 template"},
    {.name = "add-bos",
     OPT_AT_CHOICE(RF, cfg.add_bos),
     .choices = TOKSERVER_BOS_MODES,
     .def = "auto",
     .help = "put <|begin_of_text|> in the template: auto asks the server whether it adds "
             "its own BOS (one probe), so a prompt never carries two"},
    {.name = "threads",
     OPT_AT_STR(RF, threads),
     .def = "auto",
     .metavar = "N",
     .help = "load-generator threads; auto = one per 32 streams, at most one per CPU"},
    {.name = "transport",
     OPT_AT_ENUM(RF, transport, TRANSPORT_NAMES),
     .def = "auto",
     .help = "HTTP client of the load path: native (sockets + libhttp-parser) for http://, "
             "libcurl for https://; auto picks by the URL"},
    {.name = "no-progress",
     OPT_AT_BOOL(RF, no_progress),
     .help = "no live progress line (it is off anyway when stderr is not a terminal)"},
    {.name = "request-rate",
     OPT_AT_STR(RF, request_rate),
     .def = "0",
     .metavar = "R",
     .help = "open loop: requests per second, 1e-6 to 1e7 (inf = all at once); 0 = closed loop"},
    {.name = "arrival",
     OPT_AT_ENUM(RF, arrival, ARRIVAL_TABLE),
     .def = "poisson",
     .help = "open loop: gaps between requests"},
    {.name = "burstiness",
     OPT_AT_FLOAT(RF, cfg.scen.shape.burstiness),
     .def = "1",
     .min = 0.01,
     .max = 1000,
     .help = "gamma shape: < 1 burstier than poisson, > 1 more regular"},
    {.name = "ramp-up-s",
     OPT_AT_DURATION(RF, cfg.scen.shape.ramp_up_s),
     .def = "0",
     .min = 0,
     .max = 86400,
     .help = "open loop: the rate rises linearly from 0 over this long"},
    {.name = "max-concurrency",
     OPT_AT_INT(RF, max_concurrency),
     .def = "0",
     .min = 0,
     .max = 100000,
     .help = "open loop: at most this many in flight (0 = no cap)"},
    {.name = "duration-s",
     OPT_AT_DURATION(RF, cfg.duration_s),
     .def = "0",
     .min = 0,
     .max = 31 * 86400.0,
     .help = "run the main phase this long instead of --requests (prompts cycle)"},
    {.name = "slo",
     OPT_AT_LIST(RF, slo),
     .metavar = "K=MS,...",
     .help = "goodput: objectives every request must meet, e.g. ttft_ms=2000,itl_ms=50,"
             "latency_ms=30000 (any of ttft_ms, itl_ms, tpot_ms, latency_ms; vLLM's "
             "ttft:2000 tpot:50 e2el:30000 too); per phase attainment and goodput "
             "(docs/GOODPUT.md)"},
    {.name = "engine",
     OPT_AT_CHOICE(RF, cfg.engine),
     .choices = ENGINE_NAMES,
     .def = "auto",
     .help = "engine profile: which metrics to read and how (docs/ENGINES.md); auto decides "
             "from /v1/models, /health and /metrics and records the evidence"},
    {0},
};

void run_flags_add(struct run_flags *f, struct opt *opts, size_t *n, size_t cap,
                   const void *const *skip)
{
    opts_bind(opts, n, cap, RUN_FLAG_ROWS, f, skip);
}

/* multi_turn's sizes: the preset's, then the flags given; answers are its max_tokens. */
static int multi_turn_config(const struct run_flags *f, const struct opt *opts,
                             const struct scenario *sc, struct run_config *c, char *err)
{
    const void *const own[] = {&f->cfg.scen.users,
                               &f->cfg.scen.rounds,
                               &f->cfg.scen.system_prompt_tokens,
                               &f->cfg.scen.history_tokens,
                               &f->cfg.scen.answer_tokens,
                               &f->cfg.scen.user_qps,
                               &f->preset};
    bool mt = sc == &SCEN_MULTI_TURN;
    for (size_t k = 0; !mt && k < sizeof own / sizeof own[0]; k++)
        if (opts_given(opts, own[k]))
            return err_set(err, "--%s: applies to --scenario multi_turn",
                           opts_find((struct opt *)opts, own[k])->name);
    if (!mt)
        return 0;
    if (f->preset >= 0) {
        const struct mt_preset *p = &MT_PRESETS[f->preset];
        c->scen.users = opts_given(opts, &f->cfg.scen.users) ? f->cfg.scen.users : p->users;
        c->scen.rounds = opts_given(opts, &f->cfg.scen.rounds) ? f->cfg.scen.rounds : p->rounds;
        c->scen.system_prompt_tokens = opts_given(opts, &f->cfg.scen.system_prompt_tokens)
                                           ? f->cfg.scen.system_prompt_tokens
                                           : p->system;
        c->scen.history_tokens =
            opts_given(opts, &f->cfg.scen.history_tokens) ? f->cfg.scen.history_tokens : p->history;
        c->scen.answer_tokens =
            opts_given(opts, &f->cfg.scen.answer_tokens) ? f->cfg.scen.answer_tokens : p->answer;
        c->scen.user_qps =
            opts_given(opts, &f->cfg.scen.user_qps) ? f->cfg.scen.user_qps : p->user_qps;
    }
    if (opts_given(opts, &f->cfg.gp.max_tokens))
        return err_set(err, "--max-tokens: multi_turn's answers are --answer-tokens long");
    if (opts_given(opts, &f->cfg.scen.requests))
        return err_set(err, "--requests: multi_turn sends --users x --rounds requests");
    if (c->request_rate > 0)
        return err_set(err, "--request-rate: multi_turn paces each user with --user-qps");
    c->gp.max_tokens = c->scen.answer_tokens;
    return 0;
}

/* trace: the file is read and checked here, so that a bad one fails before the run starts. */
static int trace_config(const struct run_flags *f, const struct opt *opts,
                        const struct scenario *sc, struct run_config *c, char *err)
{
    const void *const own[] = {&f->cfg.scen.trace_path, &f->cfg.scen.trace_block_tokens,
                               &f->cfg.scen.trace_speedup, &f->cfg.scen.trace_window_s,
                               &f->trace_max_wait_s};
    bool tr = sc == &SCEN_TRACE;
    for (size_t k = 0; !tr && k < sizeof own / sizeof own[0]; k++)
        if (opts_given(opts, own[k]))
            return err_set(err, "--%s: applies to --scenario trace",
                           opts_find((struct opt *)opts, own[k])->name);
    if (!tr)
        return 0;
    if (!f->cfg.scen.trace_path)
        return err_set(err, "--scenario trace: give the trace file with --trace FILE");
    if (opts_given(opts, &f->cfg.gp.max_tokens))
        return err_set(err, "--max-tokens: a trace's requests use each line's output_length");
    if (opts_given(opts, &f->cfg.scen.requests))
        return err_set(err, "--requests: a trace sends its own requests");
    if (c->request_rate > 0)
        return err_set(err, "--request-rate: a trace is replayed at its own times "
                            "(--trace-speedup)");
    struct trace t;
    if (trace_load(f->cfg.scen.trace_path, (size_t)f->cfg.scen.trace_block_tokens, &t, err) < 0)
        return -1;
    int rc = trace_check_wait(&t, f->cfg.scen.trace_path, f->cfg.scen.trace_speedup,
                              f->trace_max_wait_s, err);
    trace_free(&t);
    return rc;
}

/* What is requested: the server, the model, the workload's sizes and the body's parameters. */
static int requests_config(const struct run_flags *f, const struct opt *opts, struct run_config *c,
                           char *err)
{
    size_t bl = strlen(f->cfg.base_url);
    if (bl == 0 || (strncmp(f->cfg.base_url, "http://", 7) != 0 &&
                    strncmp(f->cfg.base_url, "https://", 8) != 0))
        return err_set(err, "--base-url: expected an http:// or https:// URL, got '%s'",
                       f->cfg.base_url);
    c->scen.prompt_set = names_name(PROMPT_SET_NAMES, f->prompt_set);
    c->short_range = (struct token_range){f->short_range.min, f->short_range.max};
    c->long_range = (struct token_range){f->long_range.min, f->long_range.max};
    c->scen.warmup_given = opts_given(opts, &f->cfg.scen.warmup);
    c->gp.stop = f->stop.items;
    c->gp.n_stop = f->stop.n;
    if (strcmp(f->request_seed, "none") != 0) {
        char *end;
        long long v = strtoll(f->request_seed, &end, 10);
        if (*end || end == f->request_seed)
            return err_set(err, "--request-seed: expected an integer or none, got '%s'",
                           f->request_seed);
        c->gp.has_seed = true;
        c->gp.seed = v;
    }
    return 0;
}

/* Where the run writes, what it records about the setup, and what it watches while it runs. */
static int recorded_config(const struct run_flags *f, const struct opt *opts, struct run_config *c,
                           char *err)
{
    static __thread char default_id[17];
    if (f->run_id) {
        c->run_id = f->run_id;
    } else {
        clock_compact_utc(clock_wall_ns(), default_id);
        c->run_id = default_id;
    }
    c->scen.evict_a_conc = opts_given(opts, &f->evict_a_conc) ? f->evict_a_conc : 0;
    c->scen.evict_b_conc = opts_given(opts, &f->evict_b_conc) ? f->evict_b_conc : 0;
    c->scen.reuse_prompt_set = names_name(REUSE_PROMPT_SET_NAMES, f->reuse_prompt_set);
    c->scen.kv_mode = (enum kv_mode)f->kv_mode;
    c->scen.variant_tags = f->variant_tags.items;
    c->scen.n_variant_tags = f->variant_tags.n;
    c->procfs_root = "/proc";
    if (!*f->cfg.report_filename || strchr(f->cfg.report_filename, '/'))
        return err_set(err, "--report-filename: expected a file name without '/', got '%s'",
                       f->cfg.report_filename);
    c->api_key = f->api_key && *f->api_key ? f->api_key : NULL;
    c->scen.llama3_template = f->prompt_template == PROMPT_TEMPLATE_LLAMA3;
    c->scen.endpoint = (enum endpoint)f->endpoint;
    c->scen.chat_template = f->chat_template == CHAT_TEMPLATE_FLAG_AUTO ? -1 : f->chat_template;
    c->kvbm_metrics_url_given = opts_given(opts, &f->cfg.scen.kvbm_metrics_url);
    c->interrupt_grace_s = 3;
    return 0;
}

/* --threads: auto (0) or 1..256. */
static int threads_config(const struct run_flags *f, struct run_config *c, char *err)
{
    if (strcmp(f->threads, "auto") == 0) {
        c->threads = 0;
        return 0;
    }
    char *end;
    long long t = strtoll(f->threads, &end, 10);
    if (*end || end == f->threads || t < 1 || t > 256)
        return err_set(err, "--threads: expected auto or 1..256, got '%s'", f->threads);
    c->threads = (size_t)t;
    return 0;
}

/* The load generator: threads, transport, closed or open loop and the open loop's shape. */
static int load_config(const struct run_flags *f, const struct opt *opts, const struct scenario *sc,
                       struct run_config *c, char *err)
{
    if (threads_config(f, c, err) < 0)
        return -1;
    c->transport = (enum http_transport)f->transport;
    if (c->transport == HTTP_TRANSPORT_NATIVE && strncmp(f->cfg.base_url, "http://", 7) != 0)
        return err_set(err, "--transport native: serves http:// only; use auto or libcurl for %s",
                       f->cfg.base_url);
    c->progress = !f->no_progress;
    if (strcmp(f->request_rate, "inf") == 0) {
        c->request_rate = INFINITY;
    } else {
        char *end;
        double r = strtod(f->request_rate, &end);
        /* below 1e-6/s (11.6 days between requests) a gap would overflow the schedule's
         * nanosecond clock: refused rather than sent all at once */
        if (*end || end == f->request_rate || !(r >= 0) || r > 1e7 || (r > 0 && r < 1e-6))
            return err_set(err,
                           "--request-rate: expected requests/s (0 for a closed loop, or "
                           "1e-6..1e7) or inf, got '%s'",
                           f->request_rate);
        c->request_rate = r;
    }
    c->scen.shape.arrival = (enum arrival)f->arrival;
    if (c->scen.shape.arrival != ARRIVAL_GAMMA)
        c->scen.shape.burstiness = 1;
    c->scen.max_concurrency = (size_t)f->max_concurrency;
    bool open = c->request_rate > 0;
    /* trace and multi_turn pace their own requests; --max-concurrency caps them too */
    bool traced = sc == &SCEN_TRACE || sc == &SCEN_MULTI_TURN;
    if (!open &&
        (opts_given(opts, &f->arrival) || opts_given(opts, &f->cfg.scen.shape.burstiness) ||
         opts_given(opts, &f->cfg.scen.shape.ramp_up_s) ||
         (opts_given(opts, &f->max_concurrency) && !traced)))
        return err_set(err, "--arrival, --burstiness, --ramp-up-s and --max-concurrency shape the "
                            "open loop: give --request-rate too");
    if (opts_given(opts, &f->cfg.scen.shape.burstiness) && c->scen.shape.arrival != ARRIVAL_GAMMA)
        return err_set(err, "--burstiness: applies to --arrival gamma");
    if (c->duration_s > 0 && isinf(c->request_rate))
        return err_set(err, "--request-rate inf sends --requests all at once: give --requests, "
                            "not --duration-s");
    if (c->duration_s > 0 && !(sc && sc->duration))
        return err_set(err, "--duration-s: applies to --scenario standard (its main phase)");
    return 0;
}

/* The tiers' sizes for --pressure auto and multi_turn: given, or -1 / 0 to read them later. */
static int tiers_config(const struct run_flags *f, const struct opt *opts,
                        const struct scenario *sc, struct run_config *c, char *err)
{
    c->scen.pressure_auto = f->pressure == PRESSURE_AUTO;
    c->tier_blocks[0] = c->tier_blocks[1] = c->tier_blocks[2] = -1;
    c->kv_block_tokens = opts_given(opts, &f->kv_block_tokens) ? f->kv_block_tokens : 0;
    if (c->scen.pressure_auto && !(sc && sc->pressure))
        return err_set(err, "--pressure auto: applies to --scenario eviction_replay");
    if (c->scen.pressure_auto && opts_given(opts, &f->cfg.scen.evict_b))
        return err_set(err, "--pressure auto sizes set B itself: drop --eviction-b-requests");
    if (!c->scen.pressure_auto && !(sc && sc->tiers) &&
        (f->tier_blocks || opts_given(opts, &f->kv_block_tokens)))
        return err_set(err, "--tier-blocks and --kv-block-tokens give the tiers' sizes to "
                            "--pressure auto, multi_turn and breakeven");
    if (!f->tier_blocks)
        return 0;
    const char *p = f->tier_blocks;
    for (int t = 0; t < 3; t++) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || (t < 2 && *end != ',') || (t == 2 && *end))
            return err_set(err,
                           "--tier-blocks: expected DEVICE,HOST,DISK block counts (0: tier "
                           "off), got '%s'",
                           f->tier_blocks);
        c->tier_blocks[t] = v;
        p = end + 1;
    }
    return 0;
}

/* Whether --concurrency sizes some phase: the warmup, or a closed loop at it. */
static bool uses_concurrency(const struct scenario *sc, const struct run_config *c)
{
    if (c->scen.warmup > 0)
        return true;
    if (sc == &SCEN_TRACE)
        return c->scen.trace_speedup == 0;
    return c->request_rate == 0 && (sc == &SCEN_STANDARD || sc == &SCEN_EVICTION_REPLAY);
}

/* --shard I/N and its barrier's flags: the run id every shard agrees on without talking, and a
 * workload every shard has a part of (at least one stream of each concurrency, one user). */
static int shard_config(const struct run_flags *f, const struct opt *opts,
                        const struct scenario *sc, struct run_config *c, char *err)
{
    static __thread char default_id[48];
    if (!f->shard) {
        if (opts_given(opts, &f->cfg.shard.start_at) || opts_given(opts, &f->cfg.shard.sync_dir) ||
            opts_given(opts, &f->cfg.shard.wait_s))
            return err_set(err, "--start-at, --shard-sync and --shard-wait-s apply with --shard "
                                "I/N (one process alone: --shard 0/1)");
        c->shard.start_at = 0;
        return 0;
    }
    if (!f->shard_allowed)
        return err_set(err, "--shard: only kvbench run sends a part of a run (this command runs "
                            "whole runs one after another and compares them; shard a run with "
                            "kvbench run --shard I/N and join the parts with kvbench merge)");
    if (shard_parse(f->shard, &c->shard.spec, err) < 0)
        return -1;
    size_t n = c->shard.spec.count;
    if (sc == &SCEN_BREAKEVEN)
        return err_set(err, "--shard: breakeven times one request at a time per context length; "
                            "it cannot be split over client processes");
    if (sc == &SCEN_REUSE_VERIFY && n > 1)
        return err_set(err,
                       "--shard: reuse_verify sends one prompt at concurrency 1; it cannot "
                       "be split over %zu shards",
                       n);
    double now = (double)clock_wall_ns() / 1e9;
    if (opts_given(opts, &f->cfg.shard.start_at) && c->shard.start_at - now > 86400)
        return err_set(err,
                       "--start-at %.0f is %.0f s from now: give epoch seconds (date +%%s), not "
                       "milliseconds, at most a day ahead",
                       c->shard.start_at, c->shard.start_at - now);
    if (!f->run_id && !opts_given(opts, &f->cfg.shard.start_at))
        return err_set(err, "--shard: give every shard the same --run-id (or --start-at, whose "
                            "run id is shards-<EPOCH_S>): the shards of one run must agree on it");
    if (!f->run_id) {
        snprintf(default_id, sizeof default_id, "shards-%.3f", c->shard.start_at);
        for (char *e = default_id + strlen(default_id) - 1; *e == '0' || *e == '.'; e--) {
            bool dot = *e == '.';
            *e = '\0';
            if (dot)
                break;
        }
        c->run_id = default_id;
    }
    const struct {
        const char *flag;
        long long v;
        bool applies;
    } conc[] = {
        {"--concurrency", c->scen.concurrency, uses_concurrency(sc, c)},
        {"--eviction-a-concurrency", c->scen.evict_a_conc, c->scen.evict_a_conc > 0},
        {"--eviction-b-concurrency", c->scen.evict_b_conc, c->scen.evict_b_conc > 0},
        {"--max-concurrency", (long long)c->scen.max_concurrency, c->scen.max_concurrency > 0},
        {"--users", c->scen.users, sc == &SCEN_MULTI_TURN},
    };
    for (size_t i = 0; i < sizeof conc / sizeof conc[0]; i++)
        if (conc[i].applies && conc[i].v < (long long)n)
            return err_set(err,
                           "%s %lld is fewer than the %zu shards: each shard takes a share of it "
                           "(at least one)",
                           conc[i].flag, conc[i].v, n);
    return 0;
}

/* breakeven: the ladder (ascending, distinct; "4k" = 4096) and the preflight's input ceiling. */
static int breakeven_config(const struct run_flags *f, const struct opt *opts,
                            const struct scenario *sc, struct run_config *c, char *err)
{
    c->scen.input_ceiling =
        c->engine_max_input_tokens - c->gp.max_tokens - c->input_token_safety_margin;
    bool mine = sc == &SCEN_BREAKEVEN;
    if (!mine && (opts_given(opts, &f->breakeven_lengths) ||
                  opts_given(opts, &f->cfg.scen.breakeven_repeats)))
        return err_set(err, "--breakeven-lengths and --breakeven-repeats apply to --scenario "
                            "breakeven");
    const char *p = f->breakeven_lengths;
    size_t n = 0;
    while (mine && p && *p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end != p && (*end == 'k' || *end == 'K')) {
            v *= 1024;
            end++;
        }
        if (end == p || errno || v < 16 || v > 100000000 || (*end && *end != ',') ||
            n == SCEN_LENGTHS_MAX || (n && v <= c->scen.breakeven_lengths[n - 1]))
            return err_set(err,
                           "--breakeven-lengths: expected up to %d ascending lengths of 16 tokens "
                           "or more, e.g. 1k,2k,4k (k = 1024), got '%s'",
                           SCEN_LENGTHS_MAX, f->breakeven_lengths);
        c->scen.breakeven_lengths[n++] = v;
        p = *end ? end + 1 : end;
    }
    c->scen.n_breakeven_lengths = n;
    return 0;
}

/* Other nodes: --scrape NAME=URL (each checked, names distinct), --prometheus-url and its
 * companions. */
static int nodes_config(const struct run_flags *f, const struct opt *opts, struct run_config *c,
                        char *err)
{
    c->scrape = f->scrape.items;
    c->n_scrape = f->scrape.n;
    for (size_t i = 0; i < f->scrape.n; i++) {
        struct node_target t, prev;
        if (nodes_target_parse(f->scrape.items[i], &t, err) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (nodes_target_parse(f->scrape.items[k], &prev, NULL) == 0 &&
                strcmp(t.name, prev.name) == 0)
                return err_set(err, "--scrape: the node name '%s' is given twice", t.name);
    }
    const char *u = f->cfg.prometheus_url;
    if (u && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
        return err_set(err, "--prometheus-url: expected an http:// or https:// URL, got '%s'", u);
    if (!u && (opts_given(opts, &f->cfg.prometheus_match) ||
               opts_given(opts, &f->cfg.prometheus_timeout_s)))
        return err_set(err, "--prometheus-match and --prometheus-timeout-s apply to "
                            "--prometheus-url");
    const char *m = f->cfg.prometheus_match;
    size_t ml = m ? strlen(m) : 0;
    if (m && (ml < 2 || m[0] != '{' || m[ml - 1] != '}'))
        return err_set(err,
                       "--prometheus-match: expected a label selector in braces, e.g. "
                       "'{job=~\"node|dcgm\"}', got '%s'",
                       m);
    return 0;
}

/* heuristic, auto / server (resolved by the run once the model id is known), or a file. */
static int tokenizer_config(const struct run_flags *f, struct run_config *c, char *err)
{
    if (strcmp(f->cfg.tokenizer_spec, "heuristic") == 0) {
        c->tok = tokenizer_heuristic();
    } else if (strcmp(f->cfg.tokenizer_spec, "auto") == 0 ||
               strcmp(f->cfg.tokenizer_spec, "server") == 0) {
        c->tok = NULL;
    } else {
        char sub[ERR_LEN];
        c->tok = tokenizer_load(f->cfg.tokenizer_spec, sub);
        if (!c->tok)
            return err_set(err, "--tokenizer: %s", sub);
    }
    return 0;
}

json_t *run_flags_args(const struct opt *opts, const struct run_config *cfg)
{
    json_t *args = cmd_opts_json(opts);
    /* --request-seed is typed as text ("none" or a number); args records the number, or null */
    json_t *seed = cfg->gp.has_seed ? json_integer(cfg->gp.seed) : json_null();
    if (!args || !seed || json_object_set_new(args, "request_seed", seed) < 0) {
        json_decref(args);
        return NULL;
    }
    return args;
}

int run_flags_config(const struct run_flags *f, const struct opt *opts, struct run_config *c,
                     char *err)
{
    *c = f->cfg; /* the flags whose rows point into it; the rest is derived below */
    const struct scenario *sc = scenario_find(f->cfg.scen.scenario);
    if (requests_config(f, opts, c, err) < 0 || recorded_config(f, opts, c, err) < 0 ||
        load_config(f, opts, sc, c, err) < 0 || tiers_config(f, opts, sc, c, err) < 0 ||
        multi_turn_config(f, opts, sc, c, err) < 0 || trace_config(f, opts, sc, c, err) < 0 ||
        breakeven_config(f, opts, sc, c, err) < 0 || nodes_config(f, opts, c, err) < 0 ||
        shard_config(f, opts, sc, c, err) < 0)
        return -1;
    for (size_t i = 0; i < f->slo.n; i++)
        if (slo_parse(f->slo.items[i], &c->slo, err) < 0)
            return -1;
    c->max_response_bytes = (size_t)f->max_response_bytes;
    c->sysfs_root = "/sys";
    c->flags = run_flags_args(opts, c);
    if (!c->flags)
        return err_set(err, "config.json args: out of memory");
    /* last, so that no earlier check can leave a loaded tokenizer behind */
    if (tokenizer_config(f, c, err) < 0) {
        run_flags_release(c);
        return -1;
    }
    return 0;
}

void run_flags_release(struct run_config *cfg)
{
    tokenizer_free(cfg->tok);
    cfg->tok = NULL;
    json_decref(cfg->flags);
    cfg->flags = NULL;
}
