/*
 * loadgen.h - runs a phase: its requests on `threads` event-loop threads, each with its own HTTP
 * client (net/http.h: its native transport for http://, libcurl otherwise) and its own share of the
 * in-flight requests, measuring each request and appending its row to requests.jsonl.
 *
 * Closed loop (SPEC §4): `concurrency` workers; a worker sends its next request as soon as its
 * last one finished. Open loop (§4.4): requests are due at times drawn from the arrival process
 * (constant, poisson, gamma with a burstiness) at `request_rate`, optionally ramped up, capped
 * at `max_concurrency` in flight; a request sent after its due time records the lag, and TTFT
 * and latency are reported from the intended send too (coordinated-omission corrected).
 *
 * Streaming measurement (SPEC §5.1): ttft = send → first SSE event whose text or reasoning is
 * non-empty (a chat stream's role-only first delta is no token); itl = gaps between later events
 * that carry either; the timestamps are those of the bytes' arrival, taken in the HTTP layer
 * before any parsing. Every request gets a row whatever happens (HTTP errors with the body's first
 * 400 characters, transport errors, timeouts, malformed or truncated streams); a request error
 * never stops the phase.
 */
#ifndef KVBENCH_LOAD_LOADGEN_H
#define KVBENCH_LOAD_LOADGEN_H

#include "util/names.h"
#include "analysis/stats.h"
#include "load/vstore.h"
#include "load/prompt.h"
#include "net/http.h"
#include "model/tokenizer.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define LOADGEN_MAX_HEADER_KEYS 64

/* How far usage.prompt_tokens may fall below kvbench's count before the row is flagged
 * server_truncated: 1 token with an exact tokenizer, this share with the heuristic. */
#define LOADGEN_TRUNCATION_TOLERANCE_HEURISTIC 0.20

struct gen_params {
    long long max_tokens;
    double temperature, top_p;
    const char **stop;
    size_t n_stop;
    bool stream;
    bool has_seed;
    long long seed;
};

enum arrival { ARRIVAL_CONSTANT, ARRIVAL_POISSON, ARRIVAL_GAMMA };
/* The names of enum arrival, in its order, NULL-terminated (--arrival's choices). */
extern const struct name_entry ARRIVAL_TABLE[]; /* the arrivals' one table of names */

/* How open-loop requests arrive (--arrival, --burstiness, --ramp-up-s). One struct from the flag
 * rows to the load generator: the flags parse into it, the run and the scenarios carry it, the
 * load generator reads it. */
struct load_shape {
    enum arrival arrival;
    double burstiness; /* gamma shape (1 = poisson) */
    double ramp_up_s;  /* the rate rises linearly from 0 over this long */
};

/* Past this many ms of client lag at p99 (a due request that had a free slot but went out
 * late), the run warns that the client limited the rate. */
#define LOADGEN_CLIENT_LAG_BOUND_MS 5.0

struct req_result {
    size_t request_index;
    size_t worker_idx;
    const struct prompt *prompt;
    bool ok;
    long status;
    enum http_error transport;
    double latency_ms;
    double ttft_ms;       /* NaN when not measured */
    double tpot_ms;       /* NaN when not computable */
    double lag_ms;        /* open loop: actual send - intended send; NaN in closed loop */
    double client_lag_ms; /* the part of lag_ms when a slot was free (the client's own) */
    size_t n_itl;
    long long usage_prompt, usage_completion, cached; /* -1 when absent */
    const char *cached_source;  /* which response field decided `cached` (reuse_evidence), NULL */
    long long timings_prompt_n; /* llama.cpp timings.prompt_n (evaluated), -1 when absent */
    bool unreachable;           /* the request never reached a live server (refused, reset) */
    char finish_reason[32];     /* "" when the server sent none */
    bool server_truncated;      /* usage prompt tokens below the sent count beyond tolerance */
    /* output_len_chars: the answer's characters (completions text, chat content);
     * output_tokens_est: every generated token, the answer's and the reasoning's (as
     * usage.completion_tokens counts them); reasoning_*: the reasoning's part (chat
     * reasoning_content or reasoning, 0 when none) */
    size_t output_tokens_est, output_len_chars;
    size_t reasoning_chars, reasoning_tokens_est;
    char *error; /* NULL when ok */
    char *text;  /* the response text, with phase_plan.keep_text; else NULL */
    char payload_sha256[65];
    char identity_sha256[65];
};

/* Goodput (SPEC §4.6): service-level objectives a request must meet, in milliseconds. A request
 * meets them when it succeeded and every named one holds (docs/GOODPUT.md): TTFT and latency
 * counted from the intended send in an open loop (coordinated-omission corrected), TPOT, and the
 * mean of its inter-token gaps. */
enum slo_key { SLO_TTFT, SLO_ITL, SLO_TPOT, SLO_LATENCY, SLO_KEYS };
/* The canonical names of enum slo_key, in its order: "ttft_ms", "itl_ms", "tpot_ms",
 * "latency_ms" (summary.json's keys). */
extern const char *const SLO_NAMES[SLO_KEYS];

struct slo {
    double limit_ms[SLO_KEYS]; /* 0: not named */
    bool any;                  /* at least one is named */
};

/* Add the objectives of one --slo value to *slo (zero it before the first): pairs KEY=MS or
 * KEY:MS separated by commas or spaces; KEY is a canonical name or vLLM bench's ttft, tpot,
 * e2el; MS a number > 0. Returns 0, or -1 with a one-line err (unknown key, bad number, a key
 * named twice, nothing given). */
int slo_parse(const char *text, struct slo *slo, char *err);
/* The named limits, {ttft_ms: 2000, ...}. New reference. */
json_t *slo_json(const struct slo *slo);
/* Whether a run can judge the objectives at all: without streaming there is no TTFT, ITL or TPOT.
 * False with why (one sentence) when it cannot. */
bool slo_judgeable(const struct slo *slo, bool stream, char *why, size_t why_len);

/* What judging a phase's requests against the objectives adds up to (counters only). */
struct slo_tally {
    size_t judged;           /* requests judged: every finished request, failed ones too */
    size_t met;              /* ... that succeeded and met every named objective */
    double met_tokens;       /* output tokens of the met ones (usage, else the estimate) */
    size_t broken[SLO_KEYS]; /* successful requests that broke each objective */
    size_t corrected;        /* requests judged from their intended send (open loop) */
};

/* Judge one finished request (itl: its inter-token gaps). Returns whether it met every named
 * objective; *broken gets a bit (1u << key) for each objective a successful request broke. A
 * failed request meets nothing and breaks no objective (it is an error, counted as such). */
bool slo_judge(const struct slo *slo, const struct req_result *q, const double *itl, size_t n_itl,
               unsigned *broken);
/* Judge a request and count it into t. */
void slo_tally_add(struct slo_tally *t, const struct slo *slo, const struct req_result *q,
                   const double *itl, size_t n_itl);

/* Per-request results are kept for phases of at most this many requests (the reuse and eviction
 * phases read them); every phase keeps its aggregate (struct phase_agg), whose memory does not
 * grow with the number of requests. */
#define LOADGEN_KEEP_RESULTS 10000
/* Distinct identity hashes kept per set and phase; past it the set is marked capped. */
#define LOADGEN_IDENTITY_MAX  10000
#define LOADGEN_TRUNC_SAMPLES 10
/* The first failed requests of a phase kept per thread, for the reasons of an invalid run. */
#define LOADGEN_ERROR_SAMPLES 3
/* A server that fails this many requests in a row at the connection (refused, reset, closed
 * before answering) has gone away: from then on one request at a time probes it, spaced by an
 * exponential back-off from LOADGEN_BACKOFF_MIN_MS to LOADGEN_BACKOFF_MAX_MS, and the phase ends
 * once it has been away for --unreachable-timeout-s. */
#define LOADGEN_OUTAGE_STREAK         3
#define LOADGEN_BACKOFF_MIN_MS        100
#define LOADGEN_BACKOFF_MAX_MS        2000
#define LOADGEN_UNREACHABLE_TIMEOUT_S 10.0

/* What a phase's requests add up to, gathered as each finishes (one per thread): the summary's
 * counts and sums, the measured values (stores that spill to disk), the invalidation evidence. */
struct phase_agg {
    struct vstore lat, ttft, itl, tpot;
    struct vstore lat_c, ttft_c, lag, clag; /* open loop: from the intended send; lags */
    size_t total, ok, err, truncated, refused;
    double in_est, out_est, in_usage, out_usage, cached;
    bool any_usage, any_cached;
    bool saw_404_500;  /* an answer with status 404 or 500 */
    char *limit_error; /* the first error naming max_num_tokens */
    struct trunc_sample {
        char prompt_id[32];
        long long sent, usage;
    } trunc[LOADGEN_TRUNC_SAMPLES]; /* the first server-truncated requests */
    size_t n_trunc;
    struct err_sample {
        size_t request_index;
        char text[240];
    } errs[LOADGEN_ERROR_SAMPLES]; /* the first failed requests */
    size_t n_errs;
    /* distinct hashes: prompt, request identity, payload (objects used as sets) */
    json_t *prompt_sha, *identity_sha, *payload_sha;
    bool identity_capped; /* a set reached LOADGEN_IDENTITY_MAX */
    struct slo_tally slo; /* goodput, when the loadgen has objectives to judge */
};

/* The server going away during a phase (LOADGEN_OUTAGE_STREAK failures in a row). */
struct phase_outage {
    bool seen;              /* it went away at least once */
    bool recovered;         /* ... and answered again before the phase ended */
    bool gave_up;           /* the phase ended early: away for --unreachable-timeout-s */
    size_t outages;         /* how many times it went away */
    uint64_t since_wall_ns; /* when it first went away (the first failed request's end) */
    double down_s;          /* how long it was away, summed (to the phase's end if it stayed) */
    size_t requests_failed; /* requests spent on it while it was away (the streaks' own too) */
};

struct phase_result {
    struct req_result *reqs; /* in request_index order; NULL when n > LOADGEN_KEEP_RESULTS */
    size_t n;
    size_t errors;          /* from the threads' running counters */
    struct phase_agg *aggs; /* one per thread; phase_agg_stats reads their union */
    size_t n_aggs;
    double duration_s;
    uint64_t t0_ns; /* the phase's time zero (clock_now_ns): its schedule's, else its start */
    bool interrupted;
    /* how the load was made */
    bool open_loop;
    double target_rate;   /* open loop: requests/s (INFINITY: all at once) */
    double achieved_rate; /* open loop: sends per second over the sending span; NaN if < 2 */
    size_t threads;
    const char *transport; /* "native" or "libcurl" */
    struct phase_outage outage;
    /* requests.jsonl rows of this phase that could not be built or written whole: none is
     * written in part, the phase stops, and the run is to be marked artifact_write_failed (they
     * are in loadgen.row_errors too) */
    size_t rows_lost;
};

/* What one phase sends. */
struct phase_plan {
    const char *name;
    const struct prompt *const *prompts; /* cycled when duration_s > 0 */
    size_t n;
    size_t concurrency; /* closed loop: workers */
    bool open_loop;     /* requests at the loadgen's request_rate */
    double duration_s;  /* > 0: send until then instead of n requests */
    /* Prompts produced during the phase (a large set, SPEC §3.1): prompts[i] may be sent once
     * i < *ready, and producer_done says no more will come. Their bodies are built at send time
     * and their text dropped once sent (unless duration_s cycles them). NULL: all ready. */
    const atomic_size_t *ready;
    const atomic_bool *producer_done;
    /* > 0: prompts[] has `ring` entries and prompt i is at i % ring; the producer reuses an
     * entry once its request was sent (each request copies what it needs of its prompt). */
    size_t ring;
    /* When set, a low-water mark the load generator keeps: every request below it has been sent
     * (or never will be). The producer stays a bounded distance ahead of it and reuses ring
     * entries below it. */
    atomic_size_t *claimed;
    /* An open loop on a given schedule (multi_turn's users, a trace's timestamps): request i is
     * due schedule[i] seconds after t0_ns (clock_now_ns time; 0: the phase's start). Lags are
     * measured from it as for --request-rate; --max-concurrency caps it. NULL: none. */
    const double *schedule;
    uint64_t t0_ns;
    bool keep_text; /* kept results carry the response text (req_result.text) */
};

/* Which OpenAI endpoint the requests go to (--endpoint, SPEC §4.6): completions send a prompt
 * (struct prompt's text), chat sends messages (its msgs, or the whole text as one user message
 * when it has none). */
enum endpoint { ENDPOINT_COMPLETIONS = 0, ENDPOINT_CHAT = 1 };
extern const struct name_entry ENDPOINT_NAMES[]; /* "completions", "chat" */
/* The endpoint's path below the base URL: "/v1/completions", "/v1/chat/completions". */
const char *endpoint_path(enum endpoint e);

struct loadgen {
    /* set by the caller */
    char completions_url[512]; /* the base URL + endpoint_path(endpoint) */
    enum endpoint endpoint;
    const char *model;
    const char *api_key; /* NULL: no Authorization header */
    double timeout_s;
    const struct gen_params *gp;
    const char *run_id;
    const char *responses_dir; /* NULL unless --store-responses */
    const char *spill_dir; /* where measured values spill (the run's directory); NULL: $TMPDIR */
    const volatile sig_atomic_t *interrupted; /* read by the calling thread only */
    atomic_int *also_stop; /* set to 1 when the phase sees the interrupt (the prompt producer) */
    double grace_s;        /* after an interrupt, how long in-flight requests may finish */
    size_t max_response_bytes;    /* --max-response-bytes: past it, response_too_large; 0: 64 MiB */
    double unreachable_timeout_s; /* a server away this long ends the phase; 0: the default */
    const struct tokenizer *tok;
    size_t threads; /* 0: auto (loadgen_auto_threads) */
    enum http_transport transport;
    bool progress; /* one updating line per phase on stderr */
    /* appended to the progress line when set (disk MB/s from the telemetry) */
    void (*progress_extra)(void *user, char *out, size_t cap);
    void *progress_user;
    bool color;
    /* open loop */
    double request_rate; /* requests/s; INFINITY: all due at once */
    struct load_shape shape;
    size_t max_concurrency; /* 0: no cap */
    uint64_t arrival_seed;
    /* where the first arrival falls, in mean gaps (operational time): 0 at the start; a shard's
     * I/N puts its constant arrivals between the other shards' (run/shard.h) */
    double arrival_offset;
    /* goodput: the objectives each request is judged against; NULL: none (or not judgeable) */
    const struct slo *slo;
    /* state */
    int rows_fd; /* requests.jsonl, owned (loadgen_open_rows) */
    long long rows_size;
    pthread_mutex_t rows_lock;
    bool lock_ready;
    size_t next_index;       /* the last request index given (they start at 1) */
    json_t *gen_params_json; /* the generation params object */
    char *gen_params_text;   /* ... serialised once for the rows */
    char params_sha256[65];
    char *header_key_list[LOADGEN_MAX_HEADER_KEYS]; /* response header names seen */
    size_t n_header_keys;
    size_t rows_written, row_errors;
    atomic_size_t response_write_failures; /* --store-responses files that could not be written */
    /* answers whose usage.completion_tokens was below their output-bearing stream events (each
     * carries a token or more: the server's usage under-counts) */
    atomic_size_t usage_below_events;
    char row_error[128]; /* the first row write error */
    const char *transport_used;
};

/* Prepare lg for use (gen params JSON and hash). Returns 0 or -1. */
int loadgen_init(struct loadgen *lg, char *err);
/* Create requests.jsonl at path (owned by lg from now on). Returns 0 or -1. */
int loadgen_open_rows(struct loadgen *lg, const char *path, char *err);
/* Close the rows file. Returns 0, or -1 when closing failed (err filled). */
int loadgen_close_rows(struct loadgen *lg, char *err);
void loadgen_free(struct loadgen *lg);
/* Threads for `in_flight` requests when --threads is auto: one per 32 streams, at most one per
 * online CPU (the server under test usually shares the machine). */
size_t loadgen_auto_threads(size_t in_flight);
/* Raise RLIMIT_NOFILE for `streams` connections. Returns 0, or -1 with a one-line error naming
 * the limit and how to raise it. */
int loadgen_reserve_fds(size_t streams, char *err);
/* Run one phase. Fills out (free with phase_result_free). Returns 0, or -1 when the phase could
 * not run at all (err filled). */
int loadgen_run_phase(struct loadgen *lg, const struct phase_plan *pp, struct phase_result *out,
                      char *err);
void phase_result_free(struct phase_result *r);

/* An empty aggregate whose stores spill to dir (NULL: the system's temporary directory). */
void phase_agg_init(struct phase_agg *a, const char *dir);
/* One finished request into an aggregate (what the summary reports): its counters, sets and
 * measured values; itl: its inter-token gaps; slo: the objectives to judge it against, NULL for
 * none. The load threads add each request as it finishes; kvbench merge adds the rows of
 * requests.jsonl read back (load/rowread.h), so both count alike. */
void phase_agg_add(struct phase_agg *a, const struct slo *slo, const struct req_result *q,
                   const double *itl, size_t n_itl);
/* Aggregates: a's counters into `into` (sets merged, stores left where they are). */
void phase_agg_sum(struct phase_agg *into, const struct phase_agg *a);
void phase_agg_free(struct phase_agg *a);
/* Which store of a phase_agg (for the union over threads and phases). */
enum agg_metric {
    AGG_LATENCY,
    AGG_TTFT,
    AGG_ITL,
    AGG_TPOT,
    AGG_LATENCY_CORRECTED,
    AGG_TTFT_CORRECTED,
    AGG_LAG,
    AGG_CLIENT_LAG,
};
struct vstore *phase_agg_store(struct phase_agg *a, enum agg_metric m);
/* Statistics of metric m over the union of n aggregates. 0, or -1 (s->n == 0) when values were
 * lost (a spill failed). */
int phase_agg_stats(struct phase_agg *const *aggs, size_t n, enum agg_metric m, struct dstats *s);
/* Whether a response header is one whose value rows keep (response_header_hints): x-*, or a name
 * with "trace" or "request" in it, as the reference harness picks them. */
bool loadgen_hint_header(const char *name, size_t len);
/* The JSON body sent for a prompt. Caller frees. */
char *loadgen_body(const struct loadgen *lg, const struct prompt *p);

#endif
