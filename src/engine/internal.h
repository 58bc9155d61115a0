/*
 * internal.h - the types the engine's own modules share (struct engine, struct ereq, the
 * frontend metrics) and the functions of the two leaf modules every other one uses: metrics.c
 * and wire.c. The modules above them have headers of their own, and depend one way:
 *     engine.c (start/stop) -> server.c (server.h) -> sched.c (sched.h) -> kvbm.c (kvbm.h)
 * with wire.c and metrics.c below them all. Nothing outside src/engine includes it (the unit
 * tests and the fuzz target aside).
 */
#ifndef KVBENCH_ENGINE_INTERNAL_H
#define KVBENCH_ENGINE_INTERNAL_H

#include "engine/engine.h"
#include "engine/kvbm.h"
#include "engine/personality.h"
#include "engine/textgen.h"
#include "util/buf.h"
#include "model/tokens.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct MHD_Connection;
struct MHD_Daemon;
struct conn_slot;

/* ------------------------------------------------------------ metrics.c */

struct histo {
    const double *bounds;
    size_t n_bounds;
    uint64_t *counts; /* n_bounds + 1 (the last is +Inf) */
    double sum;
    uint64_t count;
};

struct front_metrics {
    pthread_mutex_t lock;
    uint64_t req_ok_stream, req_ok_unary, req_err_stream, req_err_unary;
    uint64_t inflight;
    struct histo ttft, itl, isl, osl, cached;
    /* the engine-level counters the personalities' metrics are made of (tokens) */
    uint64_t prompt_tokens, generation_tokens, prefix_query_tokens;
    uint64_t hit_tokens_device, hit_tokens_host, hit_tokens_disk;
    uint64_t hit_blocks, miss_blocks; /* TensorRT-LLM's reused / missed blocks */
    uint64_t double_bos;              /* prompts that carried a BOS the server added again */
    uint64_t truncated;               /* prompts cut to the context (llama.cpp) */
};

int metrics_init(struct front_metrics *m);
void metrics_free(struct front_metrics *m);
void histo_observe(struct histo *h, double v);
/* Prometheus text of the frontend metrics (API port /metrics). */
void metrics_render_frontend(struct engine *e, struct buf *out);
/* Prometheus text of the KV manager (metrics port /metrics). */
void metrics_render_kvbm(struct engine *e, struct buf *out);
/* What the personality serves at the API port's /metrics; *json_out: a JSON body (TensorRT-LLM). */
void metrics_render_api(struct engine *e, struct buf *out, bool *json_out);

/* ------------------------------------------------------------ requests */

struct ereq {
    pthread_mutex_t lock; /* guards everything under "shared" */
    int refs;
    struct engine *eng;

    /* immutable after submission */
    char id[80];      /* x-request-id */
    char cmpl_id[96]; /* "cmpl-<id>", or "chatcmpl-<id>" for a chat request */
    char model[160];  /* the model named in answers */
    long long created;
    struct tok_ids prompt;
    size_t max_tokens;
    bool ignore_eos, stream, include_usage;
    bool chat; /* POST /v1/chat/completions: the prompt is the messages rendered through the chat
                  template; the answer is a chat.completion (wire.c) */
    char **stops;
    size_t n_stops, max_stop_len;
    uint64_t seed;
    uint64_t t_arrival_ns;
    uint64_t not_before_ns; /* stall fault: not admitted before this */
    size_t disconnect_at;   /* disconnect fault: cut after this many tokens (0: never) */

    /* scheduler-owned */
    struct kvbm_seq seq;
    struct textgen gen;
    size_t plan_len, generated, cached_tokens;
    size_t cached_host, cached_disk; /* of cached_tokens: onboarded from G2 / G3 */
    bool admitted, prefilled;
    uint64_t t_first_ns, t_last_ns;
    struct ereq *next; /* queue link */

    /* shared */
    struct buf text; /* all text produced (after stop truncation) */
    size_t streamed; /* bytes of text already sent */
    struct buf out;  /* SSE bytes ready for the connection */
    bool done;       /* finished: nothing more will be produced */
    bool role_sent;  /* chat stream: the delta.role chunk went out (before the first content) */
    bool cut;        /* end the connection with an error */
    const char *finish_reason;
    int error_status; /* nonzero: answer this error instead (unary) */
    char error_msg[256];
    bool cancelled; /* the client went away */
    struct MHD_Connection *conn;
    /* Under r->lock: resume whoever waits for this request's output (the server's connection).
     * Set by the server before submission; NULL: nobody waits (tests, the fuzz target). */
    void (*wake_locked)(struct ereq *r);
    bool suspended;
    bool conn_gone;
    /* backpressure: the stream's client left engine_stream_out_limit() bytes unread, so the
     * scheduler gives it no tokens until the stream reader has drained r->out to half of that */
    bool paused;
};

/* What one stream whose client does not read may cost the engine: its SSE bytes (r->out) and,
 * per connection, MHD's response block (STREAM_BLOCK_BYTES) and memory pool (MHD's default
 * 32 KiB), the tail of text kept for stop strings, and the smaller buffers r->out outgrew (the
 * allocator keeps them: under 2 x STREAM_EARLY_BYTES, as r->out is then given its whole size at
 * once). r->out is paused at the bound less ENGINE_STREAM_FIXED_BYTES for all of those. A
 * client that then reads nothing for --idle-timeout-s is disconnected by MHD's inactivity
 * timeout, which cancels the request and frees its KV blocks. */
#define ENGINE_STREAM_BOUND_DEFAULT ((size_t)1 << 20)
#define ENGINE_STREAM_FIXED_BYTES   ((size_t)256 << 10)
#define STREAM_BLOCK_BYTES          16384
#define STREAM_EARLY_BYTES          ((size_t)32 << 10)
static inline size_t engine_stream_bound(const struct engine *e)
{
    (void)e;
    return ENGINE_STREAM_BOUND_DEFAULT;
}
static inline size_t engine_stream_out_limit(const struct engine *e)
{
    size_t b = engine_stream_bound(e);
    return b > 2 * ENGINE_STREAM_FIXED_BYTES ? b - ENGINE_STREAM_FIXED_BYTES : b / 2;
}

/* ------------------------------------------------------------ wire.c: every response shape */

/* Append the SSE chunk carrying len bytes of new text (and finish, when finished) to r->out. */
void wire_stream_text(struct ereq *r, const char *text, size_t len, const char *finish);
/* Append the stream's end (the usage chunk where the personality sends one, and [DONE]). */
void wire_stream_end(struct ereq *r);
/* The unary completion object. New reference, NULL when out of memory. */
json_t *wire_unary(const struct ereq *r);
/* An error body in the personality's shape. code: OpenAI's code string, or NULL for the status. */
json_t *wire_error(const struct engine *e, unsigned status, const char *type, const char *param,
                   const char *code, const char *msg);
/* /health: the body (NULL for an empty one) and *status_out. */
json_t *wire_health(const struct engine *e, bool serving, bool draining, bool listed,
                    double uptime_s, unsigned *status_out);
/* One /v1/models entry for the served model. */
json_t *wire_model_object(const struct engine *e);
json_t *wire_props(const struct engine *e);

/* ------------------------------------------------------------ engine */

enum engine_state { ENGINE_STARTING, ENGINE_SERVING, ENGINE_DRAINING };

struct engine {
    struct engine_config cfg;
    /* set once the manager is up (HTTP already serves then): read by the metrics threads */
    struct kvbm *_Atomic kv;
    size_t block_total_g1;

    struct MHD_Daemon *api, *metrics_d;
    int api_fd, metrics_fd;
    int port, metrics_port;

    _Atomic enum engine_state state; /* read by the HTTP threads, set by start and drain */
    uint64_t t_start_ns;
    uint64_t ready_at_ns; /* --startup-delay-s */
    long long created;
    uint64_t instance_id;

    pthread_mutex_t lock; /* scheduler queues and counters below */
    pthread_cond_t wake;
    pthread_cond_t idle;
    struct ereq *wait_head, *wait_tail;
    struct ereq **running;
    size_t n_running;
    struct ereq **step_fresh, **step_batch; /* the scheduler's per-step lists (max_num_seqs) */
    size_t in_flight;                       /* submitted and not yet done */
    size_t live_reqs;                       /* ereq objects alive */
    bool stopping;
    bool sched_kick; /* something the scheduler waits for happened: look again before waiting */
    pthread_t sched;
    bool sched_running;
    uint64_t serial;
    long long accepted; /* completions accepted (for drop_model_after) */
    bool model_dropped;
    uint64_t rng;

    struct front_metrics fm;
    _Atomic unsigned long long refused_connections; /* closed at accept: every slot busy */

    /* server.c: the open API connections (struct conn_slot), for the header deadline, the
     * keep-alive deadline and eviction when --max-connections is reached */
    pthread_mutex_t conns_lock;
    pthread_cond_t conns_cond; /* wakes the reaper (stop) */
    struct conn_slot *conns;   /* list of open API connections */
    unsigned conns_open;       /* open and not being closed by us: what the limit counts */
    bool conns_ready, reaper_running, reaper_stop;
    pthread_t reaper;
    _Atomic unsigned long long evicted_connections; /* idle or header-less, closed for a newcomer */
    _Atomic unsigned long long header_timeouts;     /* closed at the request-header deadline */
    _Atomic unsigned long long non_http_closed;     /* first byte not HTTP (TLS, garbage) */
};

#endif
