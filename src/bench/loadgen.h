/*
 * loadgen.h - runs a phase: its prompts through `concurrency` closed-loop workers on one libcurl
 * multi client (a worker sends its next request as soon as its last one finished), measuring
 * each request and appending its row to requests.jsonl the moment it completes.
 *
 * Streaming measurement (SPEC §5.1): ttft = send → first SSE event whose text is non-empty;
 * itl = gaps between later text-bearing events; the timestamps are those of the bytes' arrival,
 * taken in the HTTP layer before any parsing. Every request gets a row whatever happens (HTTP
 * errors with the body's first 400 characters, transport errors, timeouts, malformed or
 * truncated streams); a request error never stops the phase.
 */
#ifndef KVBENCH_BENCH_LOADGEN_H
#define KVBENCH_BENCH_LOADGEN_H

#include "bench/workload.h"
#include "util/http.h"
#include "util/tokenizer.h"

#include <jansson.h>
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

struct req_result {
    size_t request_index;
    size_t worker_idx;
    const struct prompt *prompt;
    bool ok;
    long status;
    enum http_error transport;
    double latency_ms;
    double ttft_ms; /* NaN when not measured */
    double tpot_ms; /* NaN when not computable */
    double *itl;
    size_t n_itl;
    long long usage_prompt, usage_completion, cached; /* -1 when absent */
    const char *cached_source;  /* "usage" (prompt_tokens_details), "timings" (llama.cpp), NULL */
    long long timings_prompt_n; /* llama.cpp timings.prompt_n (evaluated), -1 when absent */
    char finish_reason[32];     /* "" when the server sent none */
    bool server_truncated;      /* usage prompt tokens below the sent count beyond tolerance */
    size_t output_tokens_est, output_len_chars;
    char *error; /* NULL when ok */
    char payload_sha256[65];
    char identity_sha256[65];
};

struct phase_result {
    struct req_result *reqs;
    size_t n;
    double duration_s;
    bool interrupted;
};

struct loadgen {
    /* set by the caller */
    char completions_url[512];
    const char *model;
    const char *api_key; /* NULL: no Authorization header */
    double timeout_s;
    const struct gen_params *gp;
    const char *run_id;
    const char *responses_dir; /* NULL unless --store-responses */
    FILE *rows;                /* requests.jsonl */
    const volatile sig_atomic_t *interrupted;
    double grace_s;            /* after an interrupt, how long in-flight requests may finish */
    size_t max_response_bytes; /* --max-response-bytes: past it, response_too_large; 0: 64 MiB */
    const struct tokenizer *tok;
    /* state */
    size_t next_index;       /* the last request index given (they start at 1) */
    json_t *gen_params_json; /* the generation params object */
    char *gen_params_text;   /* ... serialised once for the rows */
    char params_sha256[65];
    char *header_key_list[LOADGEN_MAX_HEADER_KEYS]; /* response header names seen */
    size_t n_header_keys;
    size_t rows_written, row_errors;
    char row_error[128]; /* the first row write error */
};

/* Prepare lg for use (gen params JSON and hash). Returns 0 or -1. */
int loadgen_init(struct loadgen *lg, char *err);
void loadgen_free(struct loadgen *lg);
/* Run one phase. Fills out (free with phase_result_free). Returns 0, or -1 when the phase could
 * not run at all (err filled). */
int loadgen_run_phase(struct loadgen *lg, const char *phase, const struct prompt *const *prompts,
                      size_t n, size_t concurrency, struct phase_result *out, char *err);
void phase_result_free(struct phase_result *r);
/* The JSON body sent for a prompt. Caller frees. */
char *loadgen_body(const struct loadgen *lg, const struct prompt *p);

#endif
