/*
 * loadgen.c - the load generator: event-loop threads, closed or open loop.
 *
 * Each thread (struct worker) owns an HTTP client and its slots; a slot owns a reusable struct
 * http_req, an SSE parser and its buffers. Requests are claimed from the phase through one
 * atomic counter, and everything else a thread touches while requests run is its own: results,
 * ITL values (one growing array per thread), the row being written, the header names seen,
 * the running counters the progress line reads. Rows go to requests.jsonl whole, in batches
 * (at most ROWS_BATCH bytes or ROWS_FLUSH_MS old) under the one lock of the load path; a row that
 * cannot be built or written whole is never written in part but counted lost (rows_lost,
 * row_errors) and the phase stops. The HTTP client is net/http.h's interface: this file sees no
 * transport library, and each slot rebuilds its request's header lines in the memory of the last.
 *
 * Goodput (--slo) is judged where each request is aggregated: one verdict per request, kept as
 * counters in its thread's aggregate (struct slo_tally), so no request is stored for it.
 *
 * SSE events are read by load/chunk.c's scanner (no tree, no allocation per event); body bytes
 * carry the time recv() returned them, taken before any parsing.
 *
 * The two endpoints differ only in the body's input (loadgen_body: a prompt, or messages cut from
 * the prompt's rendered text by its spans) and in the fields a response is read from, which
 * load/chunk.c reads for both; every row names its endpoint.
 */
#include "load/loadgen.h"

#include "load/chunk.h"
#include "analysis/stats.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/jsonw.h"
#include "util/log.h"
#include "util/redact.h"
#include "util/rng.h"
#include "util/sha256.h"
#include "net/sse.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#define ROWS_BATCH              (64 * 1024)
#define ROWS_FLUSH_MS           50
#define HIST_BUCKETS            (64 * 8) /* TTFT histogram: log2 of µs, 8 steps per octave */
#define OPEN_LOOP_MAX_IN_FLIGHT 100000

const struct name_entry ARRIVAL_TABLE[] = {{"constant", ARRIVAL_CONSTANT},
                                           {"poisson", ARRIVAL_POISSON},
                                           {"gamma", ARRIVAL_GAMMA},
                                           {NULL, 0}};

struct worker;
struct phase_ctx;

/* What a request sends: prepared before the phase's clock starts, or at send time for prompts
 * produced during the phase. */
struct prepared {
    char *body;
    size_t len;
    char payload_sha256[65];
    char identity_sha256[65];
};

struct slot {
    struct http_req http;
    struct sse_parser sse;
    struct chunk_tpl tpl; /* the stream's last event around its text */
    struct worker *w;
    size_t worker_idx; /* the row's worker_idx: slot number x threads + thread */
    bool busy;
    /* the current request */
    const struct prompt *prompt;
    struct prompt prompt_copy; /* a ring entry's identity, copied at send (pp->ring) */
    const struct prepared *prep;
    struct prepared own; /* prompts produced during the phase: this request's own body */
    size_t request_index;
    uint64_t wall_start_ns;
    uint64_t due_ns; /* open loop: when it was meant to go out */
    double lag_ms, client_lag_ms;
    struct buf text;      /* the answer (completions text, chat content) */
    struct buf reasoning; /* chat reasoning_content / reasoning, apart from the answer */
    struct buf errbody;
    struct dvec itl;
    uint64_t t_last_text; /* the last output-bearing event (text or reasoning) */
    double ttft_ms;
    bool done_seen;
    char finish[32];
    long long usage_p, usage_c, cached;
    long long t_prompt_n, t_cache_n; /* llama.cpp timings */
    long long meta_cached;           /* SGLang meta_info.cached_tokens */
    char response_id[160];
    char request_id[160];
    struct buf hints; /* JSON members "name":"value" of hinted headers */
    char event_error[480];
    uint64_t chunk_t; /* arrival time of the bytes being parsed */
    bool too_large;   /* the response passed --max-response-bytes: aborted, memory freed */
    bool answered;    /* a status line came back (the server is there) */
    bool probe;       /* sent while the server was away: the one probe in flight */
};

/* Running counters of one thread, read by the progress line (relaxed atomics: a snapshot a few
 * requests stale is fine). */
struct counters {
    atomic_size_t done, errors;
    atomic_uint ttft_hist[HIST_BUCKETS];
};

struct worker {
    struct phase_ctx *pc;
    size_t idx;
    pthread_t tid;
    bool started;
    struct http_client *client;
    struct slot **slots; /* every slot made so far */
    size_t n_slots;
    struct slot **free; /* idle slots (a stack) */
    size_t n_free;
    size_t cap; /* in flight at most */
    size_t in_flight;
    /* the claimed request waiting for its time (open loop) or a slot */
    bool have_pending, exhausted;
    size_t pending_seq;
    uint64_t pending_due;
    atomic_size_t pending_pub; /* pending_seq while a claim is unsent, else SIZE_MAX */
    uint64_t slot_freed_ns;    /* when a slot last became free */
    uint64_t first_send_ns, last_send_ns;
    size_t sent;
    struct req_result *res; /* only when the phase keeps per-request results */
    size_t n_res, cap_res;
    struct phase_agg agg; /* what this thread's requests add up to */
    struct buf row, rows_out;
    uint64_t rows_since_ns;
    size_t rows_pending;
    size_t rows_lost; /* rows not built, queued or written whole (none is written in part) */
    char *header_keys[LOADGEN_MAX_HEADER_KEYS];
    size_t n_header_keys;
    struct counters cnt;
    bool next_is_probe; /* the request about to be sent probes a server that went away */
    char err[ERR_LEN];
};

struct phase_ctx {
    struct loadgen *lg;
    const struct phase_plan *pp;
    struct prepared *prep; /* one per prompt of the plan */
    double *sched;         /* open loop: due offsets in seconds from t0 */
    size_t limit;          /* requests to send at most */
    bool keep;             /* keep per-request results (LOADGEN_KEEP_RESULTS) */
    atomic_size_t next;    /* claim counter (sequence numbers) */
    atomic_size_t sent;    /* request indexes are given at send time */
    size_t index_base;
    uint64_t t0, wall0, end_ns; /* end_ns: --duration-s deadline, 0: none */
    atomic_int stopping;        /* 1: send nothing new; 2: cancel what is in flight */
    /* the server going away (LOADGEN_OUTAGE_STREAK): the streak is read on every send; the rest
     * changes only when a request fails at the connection or the first answer after a streak */
    atomic_size_t streak;                      /* requests failed in a row at the connection */
    atomic_uint_fast64_t down_ns, next_try_ns; /* streak's start; the next probe allowed */
    atomic_int gave_up; /* away for --unreachable-timeout-s: the phase ends */
    atomic_int probing; /* a probe is in flight: no other request goes out */
    pthread_mutex_t outage_lock;
    uint64_t down_wall_ns; /* under outage_lock */
    size_t streak_failed;
    struct phase_outage outage;
    struct worker *workers;
    size_t n_workers;
    const struct slo *slo; /* goodput objectives to judge each request against, or NULL */
};

/* ------------------------------------------------------------ request setup */

int loadgen_init(struct loadgen *lg, char *err)
{
    const struct gen_params *gp = lg->gp;
    json_t *stop = json_array();
    for (size_t i = 0; i < gp->n_stop; i++)
        json_array_append_new(stop, json_string(gp->stop[i]));
    lg->gen_params_json = json_pack("{s:I, s:f, s:f, s:o, s:b}", "max_tokens",
                                    (json_int_t)gp->max_tokens, "temperature", gp->temperature,
                                    "top_p", gp->top_p, "stop", stop, "stream", gp->stream);
    if (!lg->gen_params_json)
        return err_set(err, "cannot build the generation parameters");
    if (gp->has_seed)
        json_object_set_new(lg->gen_params_json, "seed", json_integer(gp->seed));
    if (json_canonical_sha256(lg->gen_params_json, lg->params_sha256) < 0)
        return err_set(err, "cannot hash the generation parameters");
    lg->gen_params_text = json_text(lg->gen_params_json, JSON_DUMP_FLAGS_LINE);
    if (!lg->gen_params_text)
        return err_set(err, "cannot serialise the generation parameters");
    lg->rows_fd = -1;
    pthread_mutex_init(&lg->rows_lock, NULL);
    lg->lock_ready = true;
    return 0;
}

void loadgen_free(struct loadgen *lg)
{
    json_decref(lg->gen_params_json);
    lg->gen_params_json = NULL;
    free(lg->gen_params_text);
    lg->gen_params_text = NULL;
    for (size_t i = 0; i < lg->n_header_keys; i++)
        free(lg->header_key_list[i]);
    lg->n_header_keys = 0;
    char err[ERR_LEN];
    if (loadgen_close_rows(lg, err) < 0)
        log_error("%s", err);
    if (lg->lock_ready)
        pthread_mutex_destroy(&lg->rows_lock);
    lg->lock_ready = false;
}

const struct name_entry ENDPOINT_NAMES[] = {
    {"completions", ENDPOINT_COMPLETIONS}, {"chat", ENDPOINT_CHAT}, {NULL, 0}};

const char *endpoint_path(enum endpoint e)
{
    return e == ENDPOINT_CHAT ? "/v1/chat/completions" : "/v1/completions";
}

/* A chat prompt's messages: one per p->msgs entry (its role, its span of the text), or the whole
 * text as one user message when it has none. New reference; NULL when a span lies outside the
 * text, a content is not UTF-8, or memory ran out. Each content is copied once. */
static json_t *chat_messages(const struct prompt *p)
{
    json_t *msgs = json_array();
    if (!msgs)
        return NULL;
    if (p->n_msgs == 0 && json_array_append_new(msgs, json_pack("{s:s, s:s%}", "role", "user",
                                                                "content", p->text, p->len)) < 0)
        goto fail;
    for (size_t i = 0; i < p->n_msgs; i++) {
        const struct chat_span *sp = &p->msgs[i].span;
        if (sp->off > p->len || sp->len > p->len - sp->off)
            goto fail;
        json_t *m = json_pack("{s:s, s:s%}", "role", chat_role_name(p->msgs[i].role), "content",
                              p->text + sp->off, sp->len);
        if (json_array_append_new(msgs, m) < 0)
            goto fail;
    }
    return msgs;
fail:
    json_decref(msgs);
    return NULL;
}

char *loadgen_body(const struct loadgen *lg, const struct prompt *p)
{
    const struct gen_params *gp = lg->gp;
    /* completions: the prompt; chat: the messages, in the prompt's place */
    bool chat = lg->endpoint == ENDPOINT_CHAT;
    json_t *input = chat ? chat_messages(p) : json_stringn(p->text, p->len);
    if (!input)
        return NULL;
    json_t *stop = json_array();
    for (size_t i = 0; i < gp->n_stop; i++)
        json_array_append_new(stop, json_string(gp->stop[i]));
    json_t *b = json_pack(
        "{s:s, s:o, s:I, s:f, s:f, s:o, s:b}", "model", lg->model, chat ? "messages" : "prompt",
        input, "max_tokens", (json_int_t)(p->max_tokens > 0 ? p->max_tokens : gp->max_tokens),
        "temperature", gp->temperature, "top_p", gp->top_p, "stop", stop, "stream", gp->stream);
    if (!b)
        return NULL;
    if (gp->stream)
        json_object_set_new(b, "stream_options", json_pack("{s:b}", "include_usage", 1));
    if (gp->has_seed)
        json_object_set_new(b, "seed", json_integer(gp->seed));
    char *s = json_text(b, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(b);
    return s;
}

/* ------------------------------------------------------------ rows file */

int loadgen_open_rows(struct loadgen *lg, const char *path, char *err)
{
    lg->rows_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (lg->rows_fd < 0)
        return err_set(err, "cannot create %s: %s", path, strerror(errno));
    lg->rows_size = 0;
    return 0;
}

int loadgen_close_rows(struct loadgen *lg, char *err)
{
    if (lg->rows_fd < 0)
        return 0;
    int rc = close(lg->rows_fd);
    lg->rows_fd = -1;
    if (rc < 0)
        return err_set(err, "requests.jsonl: %s", strerror(errno));
    return 0;
}

/* Write a thread's batch of whole rows; on failure the file is cut back to before the batch so
 * that no torn row survives, and the rows count as lost. */
static void rows_flush(struct worker *w)
{
    struct loadgen *lg = w->pc->lg;
    if (!w->rows_out.len)
        return;
    pthread_mutex_lock(&lg->rows_lock);
    size_t off = 0;
    int e = 0;
    while (off < w->rows_out.len) {
        ssize_t k = write(lg->rows_fd, w->rows_out.data + off, w->rows_out.len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            e = k < 0 ? errno : ENOSPC;
            break;
        }
        off += (size_t)k;
    }
    if (e) {
        if (ftruncate(lg->rows_fd, (off_t)lg->rows_size) < 0 && lg->row_errors == 0)
            log_error("requests.jsonl: cannot cut back a partial write: %s", strerror(errno));
        /* once: the phase stops sending (what is measured can no longer be kept), and the
         * later failures are counted, not logged one by one */
        if (lg->row_errors == 0) {
            snprintf(lg->row_error, sizeof lg->row_error, "%s", strerror(e));
            log_error("requests.jsonl: %s (%zu rows lost): stopping the phase; later losses are "
                      "counted in the summary",
                      strerror(e), w->rows_pending);
        }
        lg->row_errors += w->rows_pending;
        w->rows_lost += w->rows_pending;
        atomic_store(&w->pc->stopping, 1);
    } else {
        lg->rows_size += (long long)off;
        lg->rows_written += w->rows_pending;
    }
    pthread_mutex_unlock(&lg->rows_lock);
    buf_reset(&w->rows_out);
    w->rows_pending = 0;
}

/* ------------------------------------------------------------ response parsing */

static void note_error(struct slot *s, const char *fmt, const char *detail)
{
    if (!s->event_error[0])
        snprintf(s->event_error, sizeof s->event_error, fmt, detail);
}

/* Fold a chunk's fields into the slot (stream events and unary bodies alike). */
static void take_chunk(struct slot *s, const struct chunk *c)
{
    if (c->has_error)
        note_error(s, "error event in stream: %.400s", c->error);
    if (c->has_id && !s->response_id[0])
        snprintf(s->response_id, sizeof s->response_id, "%s", c->id);
    if (c->has_finish)
        snprintf(s->finish, sizeof s->finish, "%s", c->finish);
    if (c->usage_prompt >= 0)
        s->usage_p = c->usage_prompt;
    if (c->usage_completion >= 0)
        s->usage_c = c->usage_completion;
    if (c->cached >= 0)
        s->cached = c->cached;
    if (c->timings_prompt_n >= 0)
        s->t_prompt_n = c->timings_prompt_n;
    if (c->timings_cache_n >= 0)
        s->t_cache_n = c->timings_cache_n;
    if (c->meta_cached >= 0)
        s->meta_cached = c->meta_cached;
}

/* Whether an event's data is the stream's end, "[DONE]" (trailing blanks allowed, as the OpenAI
 * SDK allows them). */
static bool is_done(const char *data, size_t len)
{
    while (len > 0 && (data[len - 1] == ' ' || data[len - 1] == '\t' || data[len - 1] == '\r'))
        len--;
    return len == 6 && memcmp(data, "[DONE]", 6) == 0;
}

static int on_event(void *user, const char *event, const char *data, size_t len)
{
    struct slot *s = user;
    if (s->done_seen)
        return 0; /* the stream ended at [DONE]: what a server sends after it is no output */
    if (is_done(data, len)) {
        s->done_seen = true;
        return 0;
    }
    if (event && strcmp(event, "error") == 0) { /* an SSE error event, whatever its data */
        char excerpt[400];
        snprintf(excerpt, sizeof excerpt, "%.*s", (int)(len < 399 ? len : 399), data);
        note_error(s, "error event in stream: %s", excerpt);
        return 0;
    }
    if (len == 0)
        return 0; /* an empty data line (a keep-alive): nothing to read */
    struct chunk c;
    if (chunk_read_tpl(&s->tpl, data, len, &c, &s->text, &s->reasoning,
                       s->response_id[0] ? 0 : CHUNK_ID) < 0) {
        note_error(s, "malformed stream event: %s", c.malformed[0] ? c.malformed : "out of memory");
        return 0;
    }
    take_chunk(s, &c);
    /* output: answer text or reasoning; an event with neither (a chat stream's first, role-only
     * delta, an empty content, the usage chunk) is no token */
    if (c.text_len > 0 || c.reasoning_len > 0) {
        uint64_t now = s->chunk_t; /* when the bytes carrying this event arrived */
        if (isnan(s->ttft_ms))
            s->ttft_ms = (double)(now - s->http.t_start_ns) / 1e6;
        else
            dvec_push(&s->itl, (double)(now - s->t_last_text) / 1e6);
        s->t_last_text = now;
    }
    return 0;
}

static int on_data(struct http_req *r, const char *data, size_t len, uint64_t t_ns)
{
    struct slot *s = r->user;
    const struct loadgen *lg = s->w->pc->lg;
    size_t cap = lg->max_response_bytes ? lg->max_response_bytes : (size_t)64 << 20;
    if (r->bytes_received > cap) {
        /* whatever it is (an endless SSE line, a huge body), it is not a completion we can
         * measure: stop reading and give the memory back now */
        s->too_large = true;
        sse_free(&s->sse); /* the buffers go; the parser stays usable */
        buf_free(&s->text);
        buf_free(&s->reasoning);
        buf_free(&s->errbody);
        return 1;
    }
    if (r->status >= 400 || (r->status && r->status < 200)) {
        /* an error answer: keep its first bytes for the row */
        if (s->errbody.len < 4096)
            buf_append(&s->errbody, data, len < 4096 ? len : 4096);
        return 0;
    }
    if (!lg->gp->stream) {
        buf_append(&s->errbody, data, len); /* the whole JSON answer */
        return 0;
    }
    s->chunk_t = t_ns;
    if (s->sse.events == 0 && s->errbody.len < 400) /* the start, in case it is no event stream */
        buf_append(&s->errbody, data, len < 400 - s->errbody.len ? len : 400 - s->errbody.len);
    return sse_feed(&s->sse, data, len) < 0;
}

bool loadgen_hint_header(const char *name, size_t len)
{
    if (len >= 2 && strncasecmp(name, "x-", 2) == 0)
        return true;
    for (size_t i = 0; i + 5 <= len; i++) {
        if (strncasecmp(name + i, "trace", 5) == 0)
            return true;
        if (i + 7 <= len && strncasecmp(name + i, "request", 7) == 0)
            return true;
    }
    return false;
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

static char *dup_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A request's error message (heap). Out of memory, a short fixed message instead; NULL only when
 * even that cannot be had: whether the request failed is decided apart from its message. */
static char *dup_error(const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    char *s = buf_detach(&b);
    return s ? s : strdup("failed (out of memory describing the error)");
}

/* A printable, single-line excerpt of an error body (first 400 characters). */
static char *body_excerpt(const struct buf *b)
{
    size_t n = b->len < 400 ? b->len : 400;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = b->data[i];
        out[i] = c == '\n' || c == '\r' || c == '\t' ? ' ' : c;
    }
    out[n] = '\0';
    return out;
}

static void free_prepared(struct prepared *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        free(p[i].body);
    free(p);
}

/* The body and identity hashes of one request. Returns 0 or -1 (out of memory). */
static int prepare_one(const struct loadgen *lg, const struct prompt *p, struct prepared *out)
{
    out->body = loadgen_body(lg, p);
    if (!out->body)
        return -1;
    out->len = strlen(out->body);
    sha256_hex(out->body, out->len, out->payload_sha256);
    /* identity: {model, prompt_sha256, generation_params} */
    json_t *ident = json_pack("{s:s, s:s, s:O}", "model", lg->model, "prompt_sha256", p->sha256,
                              "generation_params", lg->gen_params_json);
    if (ident && p->max_tokens > 0) /* a request of its own length (a trace's) */
        json_object_set_new(ident, "max_tokens", json_integer(p->max_tokens));
    if (!ident || json_canonical_sha256(ident, out->identity_sha256) < 0)
        out->identity_sha256[0] = '\0';
    json_decref(ident);
    return 0;
}

/* Bodies and identity hashes of every request of the phase, before its clock starts. */
static int prepare(struct loadgen *lg, const struct prompt *const *prompts, size_t n,
                   struct prepared *out)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && prompts[i - 1] == prompts[i]) {
            out[i] = out[i - 1];
            out[i].body = strdup(out[i - 1].body);
            if (!out[i].body)
                return -1;
            continue;
        }
        if (prepare_one(lg, prompts[i], &out[i]) < 0)
            return -1;
    }
    return 0;
}

static void note_header_key(struct worker *w, const char *key)
{
    for (size_t i = 0; i < w->n_header_keys; i++)
        if (strcmp(w->header_keys[i], key) == 0)
            return;
    if (w->n_header_keys < LOADGEN_MAX_HEADER_KEYS) {
        char *k = strdup(key);
        if (k)
            w->header_keys[w->n_header_keys++] = k;
    }
}

static void outage_note(struct phase_ctx *pc, bool unreachable, uint64_t now);

static void on_header(struct http_req *r, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    struct slot *s = r->user;
    /* the server answered (a status line came): it is back, whatever the rest of the answer */
    if (r->status > 0 && !s->answered) {
        s->answered = true;
        outage_note(s->w->pc, false, clock_now_ns());
    }
    char key[128];
    if (nlen >= sizeof key)
        return;
    for (size_t i = 0; i < nlen; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    key[nlen] = '\0';
    note_header_key(s->w, key);
    if (strcmp(key, "x-request-id") == 0)
        snprintf(s->request_id, sizeof s->request_id, "%.*s", (int)(vlen < 159 ? vlen : 159),
                 value);
    if (loadgen_hint_header(key, nlen)) {
        if (s->hints.len)
            buf_append_char(&s->hints, ',');
        buf_append_char(&s->hints, '"');
        json_escape_append(&s->hints, key, nlen);
        buf_append(&s->hints, "\":\"", 3);
        json_escape_append(&s->hints, value, vlen);
        buf_append_char(&s->hints, '"');
    }
}

/* ------------------------------------------------------------ rows */

/* The request's row, whole and redacted, into w->row. Returns 0, or -1 when it could not be
 * built whole (out of memory). */
static int row_build(struct worker *w, struct slot *s, const struct req_result *res,
                     uint64_t wall_end, const char *response_path)
{
    struct phase_ctx *pc = w->pc;
    struct loadgen *lg = pc->lg;
    char ts0[CLOCK_ISO_MS_LEN], ts1[CLOCK_ISO_MS_LEN];
    clock_iso_utc_ms(s->wall_start_ns, ts0); /* the reference's format */
    clock_iso_utc_ms(wall_end, ts1);
    struct buf *b = &w->row;
    buf_reset(b);
    struct jsonw jw;
    jw_open(&jw, b);
    jw_int(&jw, "request_index", (long long)res->request_index); /* from 1, as the reference */
    jw_str(&jw, "phase", pc->pp->name);
    jw_int(&jw, "worker_idx", (long long)s->worker_idx + 1); /* from 1, as the reference */
    jw_str(&jw, "start_ts", ts0);
    jw_str(&jw, "end_ts", ts1);
    if (pc->sched) {
        char tsd[CLOCK_ISO_MS_LEN];
        clock_iso_utc_ms(pc->wall0 + (s->due_ns - pc->t0), tsd);
        jw_str(&jw, "scheduled_ts", tsd);
        jw_num(&jw, "schedule_lag_ms", res->lag_ms);
        jw_num(&jw, "client_lag_ms", res->client_lag_ms);
    } else {
        jw_null(&jw, "scheduled_ts");
        jw_null(&jw, "schedule_lag_ms");
        jw_null(&jw, "client_lag_ms");
    }
    jw_num(&jw, "latency_ms", res->latency_ms);
    jw_num(&jw, "ttft_ms", res->ttft_ms);
    if (lg->gp->stream) {
        jw_begin_array(&jw, "itl_ms");
        for (size_t i = 0; i < s->itl.n; i++)
            jw_elem_num(&jw, s->itl.v[i]);
        jw_end_array(&jw);
    } else {
        jw_null(&jw, "itl_ms");
    }
    jw_num(&jw, "tpot_ms", res->tpot_ms);
    jw_int(&jw, "status_code", res->status);
    jw_str(&jw, "request_id", s->request_id[0] ? s->request_id : NULL);
    jw_str(&jw, "response_id", s->response_id[0] ? s->response_id : NULL);
    jw_str(&jw, "endpoint", names_name(ENDPOINT_NAMES, (int)lg->endpoint));
    jw_str(&jw, "prompt_id", s->prompt->id);
    jw_str(&jw, "prompt_set", s->prompt->set);
    jw_int(&jw, "prompt_target_tokens", (long long)s->prompt->target);
    jw_int(&jw, "prompt_tokens_est", (long long)s->prompt->est_tokens);
    if (res->usage_prompt >= 0)
        jw_int(&jw, "usage_prompt_tokens", res->usage_prompt);
    else
        jw_null(&jw, "usage_prompt_tokens");
    if (res->usage_completion >= 0)
        jw_int(&jw, "usage_completion_tokens", res->usage_completion);
    else
        jw_null(&jw, "usage_completion_tokens");
    if (res->cached >= 0)
        jw_int(&jw, "cached_tokens", res->cached);
    else
        jw_null(&jw, "cached_tokens");
    jw_str(&jw, "cached_tokens_source", res->cached_source);
    if (res->timings_prompt_n >= 0)
        jw_int(&jw, "timings_prompt_n", res->timings_prompt_n);
    else
        jw_null(&jw, "timings_prompt_n");
    jw_str(&jw, "finish_reason", res->finish_reason[0] ? res->finish_reason : NULL);
    jw_bool(&jw, "server_truncated", res->server_truncated);
    jw_str(&jw, "prompt_sha256", s->prompt->sha256);
    jw_str(&jw, "generation_params_sha256", lg->params_sha256);
    jw_str(&jw, "request_identity_sha256", res->identity_sha256);
    jw_str(&jw, "request_payload_sha256", res->payload_sha256);
    jw_raw(&jw, "generation_params", lg->gen_params_text);
    jw_int(&jw, "output_len_chars", (long long)res->output_len_chars);
    jw_int(&jw, "output_tokens_est", (long long)res->output_tokens_est);
    jw_int(&jw, "reasoning_chars", (long long)res->reasoning_chars);
    jw_int(&jw, "reasoning_tokens_est", (long long)res->reasoning_tokens_est);
    jw_str(&jw, "error", res->error);
    jw_bool(&jw, "stream", lg->gp->stream);
    jw_str(&jw, "response_path", response_path);
    jw_object_raw(&jw, "response_header_hints", buf_cstr(&s->hints), s->hints.len);
    jw_close(&jw);
    buf_append_char(b, '\n');
    /* a hints member cut short by a failed append would make the row invalid JSON */
    if (buf_failed(b) || buf_failed(&s->hints))
        return -1;
    /* a server may echo the key back in an error body or a header: unredacted, no row */
    if ((res->error || s->hints.len) && redact_buf(b) < 0)
        return -1;
    return 0;
}

/* A row that could not be built or queued whole: it is not written at all (never in part) and
 * counts as lost, as rows a failed write loses do (rows_flush): the phase stops, the run is marked
 * artifact_write_failed, and the phase result counts it. */
static void row_lost(struct worker *w, const char *why)
{
    struct loadgen *lg = w->pc->lg;
    w->rows_lost++;
    pthread_mutex_lock(&lg->rows_lock);
    if (lg->row_errors == 0) {
        snprintf(lg->row_error, sizeof lg->row_error, "%s", why);
        log_error("requests.jsonl: a row was lost (%s): stopping the phase; later losses are "
                  "counted in the summary",
                  why);
    }
    lg->row_errors++;
    pthread_mutex_unlock(&lg->rows_lock);
    atomic_store(&w->pc->stopping, 1);
}

/* Build the request's row and queue it whole for the next batch write. */
static void write_row(struct worker *w, struct slot *s, const struct req_result *res,
                      uint64_t wall_end, const char *response_path)
{
    if (row_build(w, s, res, wall_end, response_path) < 0) {
        row_lost(w, "out of memory building a row");
        return;
    }
    const struct buf *b = &w->row;
    /* room first, so that a failed append never leaves half a row in the batch */
    buf_reserve_hint(&w->rows_out, b->len);
    if (w->rows_out.cap - w->rows_out.len <= b->len) {
        row_lost(w, "out of memory queueing a row");
        return;
    }
    if (!w->rows_out.len)
        w->rows_since_ns = clock_now_ns();
    buf_append(&w->rows_out, b->data, b->len);
    w->rows_pending++;
    if (w->rows_out.len >= ROWS_BATCH)
        rows_flush(w);
}

/* ------------------------------------------------------------ requests */

static unsigned hist_bucket(double ms)
{
    double us = ms * 1000.0;
    if (!(us >= 1.0))
        return 0;
    double b = log2(us) * 8.0;
    return b >= HIST_BUCKETS - 1 ? HIST_BUCKETS - 1 : (unsigned)b;
}

/* ------------------------------------------------------------ goodput */

const char *const SLO_NAMES[SLO_KEYS] = {"ttft_ms", "itl_ms", "tpot_ms", "latency_ms"};

/* --slo's spellings: kvbench's names, then vLLM bench's --goodput names. */
static const struct slo_spelling {
    const char *name;
    enum slo_key key;
} SLO_SPELLINGS[] = {
    {"ttft_ms", SLO_TTFT}, {"itl_ms", SLO_ITL}, {"tpot_ms", SLO_TPOT}, {"latency_ms", SLO_LATENCY},
    {"ttft", SLO_TTFT},    {"tpot", SLO_TPOT},  {"e2el", SLO_LATENCY},
};

#define SLO_MAX_MS 1e9 /* about 11.6 days: past it a limit is a typo */

static int slo_pair(const char *pair, size_t len, struct slo *slo, char *err)
{
    const char *sep = memchr(pair, '=', len);
    if (!sep)
        sep = memchr(pair, ':', len);
    if (!sep)
        return err_set(err, "--slo: '%.*s': expected KEY=MS (or KEY:MS), e.g. ttft_ms=2000",
                       (int)len, pair);
    size_t klen = (size_t)(sep - pair);
    const struct slo_spelling *sp = NULL;
    for (size_t i = 0; i < sizeof SLO_SPELLINGS / sizeof SLO_SPELLINGS[0] && !sp; i++)
        if (strlen(SLO_SPELLINGS[i].name) == klen && memcmp(SLO_SPELLINGS[i].name, pair, klen) == 0)
            sp = &SLO_SPELLINGS[i];
    if (!sp)
        return err_set(err,
                       "--slo: unknown objective '%.*s' (expected ttft_ms, itl_ms, tpot_ms, "
                       "latency_ms, or vLLM's ttft, tpot, e2el)",
                       (int)klen, pair);
    char num[64];
    size_t vlen = len - klen - 1;
    char *end = NULL;
    double v = NAN;
    if (vlen > 0 && vlen < sizeof num) {
        memcpy(num, sep + 1, vlen);
        num[vlen] = '\0';
        errno = 0;
        v = strtod(num, &end);
    }
    if (vlen == 0 || vlen >= sizeof num || *end || errno || !(v > 0) || v > SLO_MAX_MS)
        return err_set(err, "--slo: %.*s: expected milliseconds > 0 (at most %.0f), got '%.*s'",
                       (int)klen, pair, SLO_MAX_MS, (int)vlen, sep + 1);
    if (slo->limit_ms[sp->key] > 0)
        return err_set(err, "--slo: %s given twice", SLO_NAMES[sp->key]);
    slo->limit_ms[sp->key] = v;
    slo->any = true;
    return 0;
}

int slo_parse(const char *text, struct slo *slo, char *err)
{
    const char *p = text ? text : "";
    bool need_pair = false; /* after a comma, another pair must follow */
    size_t pairs = 0;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == ',') {
            if (need_pair || *p == ',' || pairs == 0)
                return err_set(err,
                               "--slo: %s; expected e.g. ttft_ms=2000,itl_ms=50 or "
                               "ttft:2000 tpot:50",
                               pairs == 0 && !*p ? "empty" : "an empty objective between commas");
            return 0;
        }
        size_t len = strcspn(p, ", \t\n\r\v\f");
        if (slo_pair(p, len, slo, err) < 0)
            return -1;
        pairs++;
        p += len;
        while (isspace((unsigned char)*p))
            p++;
        need_pair = *p == ',';
        if (need_pair)
            p++;
    }
}

json_t *slo_json(const struct slo *slo)
{
    json_t *o = json_object();
    for (int k = 0; k < SLO_KEYS; k++)
        if (slo->limit_ms[k] > 0)
            json_object_set_new(o, SLO_NAMES[k], json_real(slo->limit_ms[k]));
    return o;
}

bool slo_judgeable(const struct slo *slo, bool stream, char *why, size_t why_len)
{
    if (stream)
        return true;
    char names[64] = "";
    size_t used = 0;
    for (int k = SLO_TTFT; k <= SLO_TPOT; k++)
        if (slo->limit_ms[k] > 0)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "",
                                     SLO_NAMES[k]);
    if (!used)
        return true;
    snprintf(why, why_len,
             "the run did not stream (--stream), so no request has a TTFT, ITL or TPOT: %s "
             "cannot be judged",
             names);
    return false;
}

bool slo_judge(const struct slo *slo, const struct req_result *q, const double *itl, size_t n_itl,
               unsigned *broken)
{
    *broken = 0;
    if (!q->ok)
        return false;
    /* in an open loop, from when the request was due: time queued for a slot counts */
    double lag = isnan(q->lag_ms) ? 0 : q->lag_ms;
    long long out =
        q->usage_completion >= 0 ? q->usage_completion : (long long)q->output_tokens_est;
    const double *lim = slo->limit_ms;
    /* a request without a first token (no text) cannot have met a TTFT objective */
    if (lim[SLO_TTFT] > 0 && (isnan(q->ttft_ms) || q->ttft_ms + lag > lim[SLO_TTFT]))
        *broken |= 1u << SLO_TTFT;
    if (lim[SLO_LATENCY] > 0 && q->latency_ms + lag > lim[SLO_LATENCY])
        *broken |= 1u << SLO_LATENCY;
    /* TPOT and ITL: a request of at most one token has no gap to be late (vLLM counts its TPOT
     * as 0); one of more tokens with no measured gap (all text in one event) cannot show it met
     * them */
    if (lim[SLO_TPOT] > 0 && (isnan(q->tpot_ms) ? out > 1 : q->tpot_ms > lim[SLO_TPOT]))
        *broken |= 1u << SLO_TPOT;
    if (lim[SLO_ITL] > 0) {
        double sum = 0;
        for (size_t i = 0; i < n_itl; i++)
            sum += itl[i];
        if (n_itl ? sum / (double)n_itl > lim[SLO_ITL] : out > 1)
            *broken |= 1u << SLO_ITL;
    }
    return *broken == 0;
}

void slo_tally_add(struct slo_tally *t, const struct slo *slo, const struct req_result *q,
                   const double *itl, size_t n_itl)
{
    unsigned broken;
    t->judged++;
    t->corrected += !isnan(q->lag_ms);
    if (slo_judge(slo, q, itl, n_itl, &broken)) {
        t->met++;
        t->met_tokens +=
            q->usage_completion >= 0 ? (double)q->usage_completion : (double)q->output_tokens_est;
    }
    for (int k = 0; k < SLO_KEYS; k++)
        t->broken[k] += (broken >> k) & 1u;
}

/* ------------------------------------------------------------ aggregates */

void phase_agg_init(struct phase_agg *a, const char *dir)
{
    memset(a, 0, sizeof *a);
    struct vstore *all[] = {&a->lat,   &a->ttft,   &a->itl, &a->tpot,
                            &a->lat_c, &a->ttft_c, &a->lag, &a->clag};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        vstore_init(all[i], dir);
}

struct vstore *phase_agg_store(struct phase_agg *a, enum agg_metric m)
{
    switch (m) {
    case AGG_LATENCY:
        return &a->lat;
    case AGG_TTFT:
        return &a->ttft;
    case AGG_ITL:
        return &a->itl;
    case AGG_TPOT:
        return &a->tpot;
    case AGG_LATENCY_CORRECTED:
        return &a->lat_c;
    case AGG_TTFT_CORRECTED:
        return &a->ttft_c;
    case AGG_LAG:
        return &a->lag;
    case AGG_CLIENT_LAG:
        break;
    }
    return &a->clag;
}

void phase_agg_free(struct phase_agg *a)
{
    for (int m = AGG_LATENCY; m <= AGG_CLIENT_LAG; m++)
        vstore_free(phase_agg_store(a, (enum agg_metric)m));
    free(a->limit_error);
    json_decref(a->prompt_sha);
    json_decref(a->identity_sha);
    json_decref(a->payload_sha);
    memset(a, 0, sizeof *a);
}

static void set_add_capped(json_t **set, const char *key, bool *capped)
{
    if (!key || !*key)
        return;
    if (!*set)
        *set = json_object();
    if (!*set || json_object_get(*set, key))
        return;
    if (json_object_size(*set) >= LOADGEN_IDENTITY_MAX) {
        *capped = true;
        return;
    }
    json_object_set_new(*set, key, json_true());
}

static void set_merge_capped(json_t **into, const json_t *from, bool *capped)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)from, k, v)
    {
        (void)v;
        set_add_capped(into, k, capped);
    }
}

void phase_agg_sum(struct phase_agg *into, const struct phase_agg *a)
{
    into->total += a->total;
    into->ok += a->ok;
    into->err += a->err;
    into->truncated += a->truncated;
    into->refused += a->refused;
    into->in_est += a->in_est;
    into->out_est += a->out_est;
    into->in_usage += a->in_usage;
    into->out_usage += a->out_usage;
    into->cached += a->cached;
    into->any_usage |= a->any_usage;
    into->any_cached |= a->any_cached;
    into->saw_404_500 |= a->saw_404_500;
    if (!into->limit_error && a->limit_error)
        into->limit_error = strdup(a->limit_error);
    for (size_t i = 0; i < a->n_trunc && into->n_trunc < LOADGEN_TRUNC_SAMPLES; i++)
        into->trunc[into->n_trunc++] = a->trunc[i];
    for (size_t i = 0; i < a->n_errs && into->n_errs < LOADGEN_ERROR_SAMPLES; i++)
        into->errs[into->n_errs++] = a->errs[i];
    into->identity_capped |= a->identity_capped;
    into->slo.judged += a->slo.judged;
    into->slo.met += a->slo.met;
    into->slo.met_tokens += a->slo.met_tokens;
    into->slo.corrected += a->slo.corrected;
    for (int k = 0; k < SLO_KEYS; k++)
        into->slo.broken[k] += a->slo.broken[k];
    set_merge_capped(&into->prompt_sha, a->prompt_sha, &into->identity_capped);
    set_merge_capped(&into->identity_sha, a->identity_sha, &into->identity_capped);
    set_merge_capped(&into->payload_sha, a->payload_sha, &into->identity_capped);
}

int phase_agg_stats(struct phase_agg *const *aggs, size_t n, enum agg_metric m, struct dstats *s)
{
    struct vstore *stack[64] = {0}, **vs = n <= 64 ? stack : malloc(n * sizeof *vs);
    if (!vs) {
        memset(s, 0, sizeof *s);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        vs[i] = phase_agg_store(aggs[i], m);
    int rc = vstore_stats(vs, n, s);
    if (vs != stack)
        free(vs);
    return rc;
}

void phase_agg_add(struct phase_agg *a, const struct slo *slo, const struct req_result *q,
                   const double *itl, size_t n_itl)
{
    a->total++;
    if (slo)
        slo_tally_add(&a->slo, slo, q, itl, n_itl);
    a->truncated += q->server_truncated;
    a->refused += q->transport == HTTP_ERR_CONNECT;
    if (q->status == 404 || q->status == 500)
        a->saw_404_500 = true;
    if (q->error && !a->limit_error && strstr(q->error, "max_num_tokens"))
        a->limit_error = strdup(q->error);
    if (q->server_truncated && a->n_trunc < LOADGEN_TRUNC_SAMPLES) {
        struct trunc_sample *t = &a->trunc[a->n_trunc++];
        snprintf(t->prompt_id, sizeof t->prompt_id, "%s", q->prompt->id);
        t->sent = (long long)q->prompt->est_tokens;
        t->usage = q->usage_prompt;
    }
    set_add_capped(&a->prompt_sha, q->prompt->sha256, &a->identity_capped);
    set_add_capped(&a->identity_sha, q->identity_sha256, &a->identity_capped);
    set_add_capped(&a->payload_sha, q->payload_sha256, &a->identity_capped);
    bool open = !isnan(q->lag_ms);
    if (open) {
        vstore_push(&a->lag, q->lag_ms);
        if (!isnan(q->client_lag_ms)) /* known whenever the request was due (row readers: NaN
                                       * for a row written without it) */
            vstore_push(&a->clag, q->client_lag_ms);
    }
    if (open && q->ok) {
        /* coordinated-omission corrected: measured from when the request was due */
        vstore_push(&a->lat_c, q->latency_ms + q->lag_ms);
        if (!isnan(q->ttft_ms))
            vstore_push(&a->ttft_c, q->ttft_ms + q->lag_ms);
    }
    if (!q->ok) {
        a->err++;
        if (a->n_errs < LOADGEN_ERROR_SAMPLES) {
            struct err_sample *e = &a->errs[a->n_errs++];
            e->request_index = q->request_index;
            snprintf(e->text, sizeof e->text, "%s", q->error ? q->error : "failed");
        }
        return;
    }
    a->ok++;
    vstore_push(&a->lat, q->latency_ms);
    if (!isnan(q->ttft_ms))
        vstore_push(&a->ttft, q->ttft_ms);
    if (!isnan(q->tpot_ms))
        vstore_push(&a->tpot, q->tpot_ms);
    vstore_push_n(&a->itl, itl, n_itl);
    a->in_est += (double)q->prompt->est_tokens;
    a->out_est += (double)q->output_tokens_est;
    if (q->usage_prompt >= 0 || q->usage_completion >= 0) {
        a->any_usage = true;
        a->in_usage += q->usage_prompt > 0 ? (double)q->usage_prompt : 0;
        a->out_usage += q->usage_completion > 0 ? (double)q->usage_completion : 0;
    }
    if (q->cached >= 0) {
        a->any_cached = true;
        a->cached += (double)q->cached;
    }
}

/* ------------------------------------------------------------ the server going away */

/* A request failed at the connection (t: when; now: clock_now_ns), or got an answer. */
static void outage_note(struct phase_ctx *pc, bool unreachable, uint64_t now)
{
    if (!unreachable && atomic_load_explicit(&pc->streak, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&pc->outage_lock);
    size_t k = atomic_load(&pc->streak);
    if (unreachable) {
        if (k == 0) {
            atomic_store(&pc->down_ns, now);
            pc->down_wall_ns = clock_wall_ns();
            pc->streak_failed = 0;
        }
        pc->streak_failed++;
        atomic_store(&pc->streak, k + 1);
        if (k + 1 == LOADGEN_OUTAGE_STREAK) {
            struct phase_outage *o = &pc->outage;
            if (!o->seen)
                o->since_wall_ns = pc->down_wall_ns;
            o->seen = true;
            o->outages++;
            log_warn("the server stopped answering (%d requests in a row failed to connect or "
                     "were cut off); backing off",
                     LOADGEN_OUTAGE_STREAK);
        }
    } else if (k) {
        if (k >= LOADGEN_OUTAGE_STREAK) {
            double away = (double)(now - atomic_load(&pc->down_ns)) / 1e9;
            pc->outage.down_s += away;
            pc->outage.requests_failed += pc->streak_failed;
            pc->outage.recovered = true;
            log_warn("the server answered again after %.1f s away", away);
        }
        atomic_store(&pc->streak, 0);
        atomic_store(&pc->down_ns, 0);
        atomic_store(&pc->next_try_ns, 0);
        pc->streak_failed = 0;
    }
    pthread_mutex_unlock(&pc->outage_lock);
}

/* May a request go out now? While the server is away, one probe at a time, backing off; once it
 * has been away for the timeout the phase gives up. *until: when to look again. */
static bool outage_pass(struct phase_ctx *pc, uint64_t now, uint64_t *until, bool *probe)
{
    *probe = false;
    size_t k = atomic_load_explicit(&pc->streak, memory_order_relaxed);
    if (k < LOADGEN_OUTAGE_STREAK)
        return true;
    uint64_t down = atomic_load(&pc->down_ns);
    double limit_s = pc->lg->unreachable_timeout_s > 0 ? pc->lg->unreachable_timeout_s
                                                       : LOADGEN_UNREACHABLE_TIMEOUT_S;
    if (down && now > down && (double)(now - down) / 1e9 >= limit_s) {
        if (!atomic_exchange(&pc->gave_up, 1))
            log_error("the server has not answered for %.0f s (--unreachable-timeout-s): ending "
                      "phase %s",
                      limit_s, pc->pp->name);
        atomic_store(&pc->stopping, 1);
        *until = now;
        return false;
    }
    if (atomic_load(&pc->probing)) {
        *until = now + 5000000u; /* the probe out there decides */
        return false;
    }
    uint64_t next = atomic_load(&pc->next_try_ns);
    if (now < next) {
        *until = next;
        return false;
    }
    size_t over = k - LOADGEN_OUTAGE_STREAK;
    uint64_t step_ms =
        over >= 5 ? LOADGEN_BACKOFF_MAX_MS : (uint64_t)LOADGEN_BACKOFF_MIN_MS << over;
    if (step_ms > LOADGEN_BACKOFF_MAX_MS)
        step_ms = LOADGEN_BACKOFF_MAX_MS;
    if (!atomic_compare_exchange_strong(&pc->next_try_ns, &next, now + step_ms * 1000000u)) {
        *until = now + 1000000u; /* another thread took this probe */
        return false;
    }
    int idle = 0;
    if (!atomic_compare_exchange_strong(&pc->probing, &idle, 1)) {
        *until = now + 1000000u;
        return false;
    }
    *probe = true;
    return true;
}

/* At the phase's end: what the outage bookkeeping says (an outage still on counts to now). */
static void outage_result(struct phase_ctx *pc, struct phase_outage *out)
{
    pthread_mutex_lock(&pc->outage_lock);
    *out = pc->outage;
    size_t k = atomic_load(&pc->streak);
    if (k >= LOADGEN_OUTAGE_STREAK) {
        uint64_t down = atomic_load(&pc->down_ns), now = clock_now_ns();
        out->down_s += down && now > down ? (double)(now - down) / 1e9 : 0;
        out->requests_failed += pc->streak_failed;
        out->recovered = false;
    }
    out->gave_up = atomic_load(&pc->gave_up) != 0;
    pthread_mutex_unlock(&pc->outage_lock);
}

/* Where a finished request's result goes: the next kept result, or *tmp when the phase keeps
 * none (or memory for one ran out: the row is still written). Zeroed. */
static struct req_result *result_slot(struct worker *w, struct req_result *tmp)
{
    if (w->pc->keep && w->n_res == w->cap_res) {
        size_t nc = w->cap_res ? w->cap_res * 2 : 256;
        struct req_result *nr = realloc(w->res, nc * sizeof *nr);
        if (!nr) {
            log_error("out of memory keeping a result; the row is still written");
        } else {
            w->res = nr;
            w->cap_res = nc;
        }
    }
    struct req_result *res = w->pc->keep && w->n_res < w->cap_res ? &w->res[w->n_res++] : tmp;
    memset(res, 0, sizeof *res);
    return res;
}

/* A unary (non-streaming) answer's JSON: its fields into the slot, its error into res. Returns
 * whether the request failed. */
static bool read_unary(struct slot *s, struct req_result *res)
{
    struct chunk c;
    if (buf_failed(&s->errbody)) {
        res->error = dup_error("out of memory collecting the response");
        return true;
    }
    if (chunk_read(buf_cstr(&s->errbody), s->errbody.len, &c, &s->text, &s->reasoning, CHUNK_ALL) <
        0) {
        res->error =
            dup_error("malformed response: %s", c.malformed[0] ? c.malformed : "out of memory");
        return true;
    }
    /* a chat answer cut short while the model reasoned has reasoning and a null content */
    bool failed = c.has_error || (!c.has_text && !c.has_reasoning);
    if (c.has_error)
        res->error = dup_error("error in response: %.400s", c.error);
    else if (failed)
        res->error = dup_error("response has no %s", s->w->pc->lg->endpoint == ENDPOINT_CHAT
                                                         ? "choices[0].message.content"
                                                         : "choices[0].text");
    if (c.has_id)
        snprintf(s->response_id, sizeof s->response_id, "%s", c.id);
    c.has_error = false;
    take_chunk(s, &c);
    res->usage_prompt = s->usage_p;
    res->usage_completion = s->usage_c;
    res->cached = s->cached;
    return failed;
}

/* Why the request failed, if it did (res->error). Returns whether it failed: that is decided
 * here, never from whether the message could be allocated. */
static bool result_error(struct slot *s, const struct http_req *r, struct req_result *res)
{
    struct phase_ctx *pc = s->w->pc;
    const struct loadgen *lg = pc->lg;
    if (s->too_large) {
        size_t cap = lg->max_response_bytes ? lg->max_response_bytes : (size_t)64 << 20;
        res->error = dup_error("response_too_large: the response passed --max-response-bytes "
                               "(%zu bytes) and was dropped",
                               cap);
        return true;
    }
    if (r->error != HTTP_OK) {
        if (r->error == HTTP_ERR_ABORTED && atomic_load(&pc->stopping))
            res->error = dup_error("interrupted before completion (%s)", r->error_text);
        else
            res->error = dup_error("%s", r->error_text);
        return true;
    }
    if (r->status < 200 || r->status >= 400) {
        char *ex = body_excerpt(&s->errbody);
        res->error = dup_error("HTTP %ld: %s", r->status, ex ? ex : "");
        free(ex);
        return true;
    }
    if (!lg->gp->stream)
        return read_unary(s, res);
    if (s->event_error[0])
        res->error = dup_error("%s", s->event_error);
    else if (!s->done_seen && !s->finish[0] && s->sse.events == 0 && s->errbody.len) {
        /* a 200 whose body was no event stream (a JSON error, plain text): what it said */
        char *ex = body_excerpt(&s->errbody);
        res->error =
            dup_error("not an event stream: HTTP %ld with no SSE event; the body began: %s",
                      r->status, ex ? ex : "");
        free(ex);
    } else if (!s->done_seen && !s->finish[0])
        res->error = dup_error("truncated stream: it ended without a finish_reason or [DONE]");
    else if (strcmp(s->finish, "abort") == 0 || strcmp(s->finish, "error") == 0)
        /* vLLM's and SGLang's generation that stopped on a failure, not a finished answer */
        res->error = dup_error("the server ended the generation with finish_reason \"%s\" after "
                               "%zu bytes of output",
                               s->finish, s->text.len + s->reasoning.len);
    else if (!s->finish[0] && s->text.len == 0 && s->reasoning.len == 0)
        res->error = dup_error("empty stream: [DONE] came without any text, reasoning or "
                               "finish_reason");
    else
        return false;
    return true;
}

/* The request's result: what the slot gathered while it ran, its error, and the figures derived
 * from them (reuse evidence, truncation, output size, TPOT). */
static void fill_result(struct slot *s, const struct http_req *r, struct req_result *res)
{
    const struct loadgen *lg = s->w->pc->lg;
    res->request_index = s->request_index;
    res->worker_idx = s->worker_idx;
    res->prompt = s->prompt;
    res->status = r->status;
    res->transport = r->error;
    res->latency_ms = (double)(r->t_done_ns - r->t_start_ns) / 1e6;
    res->ttft_ms = s->ttft_ms;
    res->tpot_ms = NAN;
    res->lag_ms = s->lag_ms;
    res->client_lag_ms = s->client_lag_ms;
    res->usage_prompt = s->usage_p;
    res->usage_completion = s->usage_c;
    res->cached = s->cached;
    memcpy(res->payload_sha256, s->prep->payload_sha256, sizeof res->payload_sha256);
    memcpy(res->identity_sha256, s->prep->identity_sha256, sizeof res->identity_sha256);
    bool failed = result_error(s, r, res);
    struct reuse_fields rf = {.usage_prompt = res->usage_prompt,
                              .details_cached = res->cached,
                              .timings_cache_n = s->t_cache_n,
                              .timings_prompt_n = s->t_prompt_n,
                              .meta_cached = s->meta_cached};
    res->cached = reuse_evidence(&rf, &res->cached_source);
    res->timings_prompt_n = s->t_prompt_n;
    snprintf(res->finish_reason, sizeof res->finish_reason, "%s", s->finish);
    res->ok = !failed;
    /* Not an answer: refused, reset, or cut off before or while answering (the server died).
     * A request cancelled by the phase's own stop is neither an answer nor a failure. */
    res->unreachable = !s->too_large && (r->error == HTTP_ERR_CONNECT || r->error == HTTP_ERR_RECV);
    if (res->ok && res->usage_prompt >= 0) {
        long long sent = (long long)s->prompt->est_tokens;
        long long tol = strcmp(lg->tok->kind, "heuristic") == 0
                            ? (long long)ceil(LOADGEN_TRUNCATION_TOLERANCE_HEURISTIC * (double)sent)
                            : 1;
        res->server_truncated = res->usage_prompt < sent - tol;
    }
    res->output_len_chars = utf8_chars(buf_cstr(&s->text), s->text.len);
    res->reasoning_chars = utf8_chars(buf_cstr(&s->reasoning), s->reasoning.len);
    res->reasoning_tokens_est =
        tokenizer_count_fast(lg->tok, buf_cstr(&s->reasoning), s->reasoning.len);
    /* every generated token, as usage.completion_tokens counts them: the answer's and the
     * reasoning's */
    res->output_tokens_est =
        tokenizer_count_fast(lg->tok, buf_cstr(&s->text), s->text.len) + res->reasoning_tokens_est;
    /* each streamed event that carried output carried at least one token: text without spaces
     * (Chinese, Japanese, emoji: the heuristic's one word) is counted by its events */
    size_t events = isnan(res->ttft_ms) ? 0 : s->itl.n + 1;
    if (res->output_tokens_est < events)
        res->output_tokens_est = events;
    if (res->ok && res->usage_completion >= 0 && (size_t)res->usage_completion < events)
        atomic_fetch_add(&s->w->pc->lg->usage_below_events, 1);
    res->n_itl = s->itl.n;
    long long out_tokens =
        res->usage_completion >= 0 ? res->usage_completion : (long long)res->output_tokens_est;
    if (!isnan(res->ttft_ms) && out_tokens > 1)
        res->tpot_ms = (res->latency_ms - res->ttft_ms) / (double)(out_tokens - 1);
}

/* --store-responses: the response text into its file. Returns the row's response_path (in rel),
 * or NULL when not stored. */
static const char *store_response(struct slot *s, char *rel, size_t rel_cap)
{
    struct phase_ctx *pc = s->w->pc;
    struct loadgen *lg = pc->lg;
    if (!lg->responses_dir)
        return NULL;
    char path[4096], err[ERR_LEN];
    snprintf(rel, rel_cap, "responses/%06zu.txt", s->request_index);
    snprintf(path, sizeof path, "%s/%06zu.txt", lg->responses_dir, s->request_index);
    if (fs_write_buf(path, &s->text, err) == 0)
        return rel;
    if (atomic_fetch_add(&lg->response_write_failures, 1) == 0) {
        /* the first only: the phase stops, as for a row it cannot write */
        log_error("cannot store a response: %s: stopping the phase", err);
        atomic_store(&pc->stopping, 1);
    }
    return NULL;
}

/* The thread's running counters (the progress line's). */
static void count_result(struct worker *w, const struct req_result *res)
{
    atomic_fetch_add_explicit(&w->cnt.done, 1, memory_order_relaxed);
    if (!res->ok)
        atomic_fetch_add_explicit(&w->cnt.errors, 1, memory_order_relaxed);
    else if (!isnan(res->ttft_ms))
        atomic_fetch_add_explicit(&w->cnt.ttft_hist[hist_bucket(res->ttft_ms)], 1,
                                  memory_order_relaxed);
}

/* on_done: a request completed (answered, failed or cancelled): its result, its row, its share
 * of the aggregate; the slot goes back to the free stack. */
static void finish_request(struct http_req *r)
{
    struct slot *s = r->user;
    struct worker *w = s->w;
    struct phase_ctx *pc = w->pc;
    uint64_t wall_end = clock_wall_ns();
    struct req_result tmp, *res = result_slot(w, &tmp);
    fill_result(s, r, res);
    if (s->probe) {
        s->probe = false;
        atomic_store(&pc->probing, 0);
    }
    if (res->unreachable || r->status > 0)
        outage_note(pc, res->unreachable, clock_now_ns());
    char rel[64];
    const char *response_path = store_response(s, rel, sizeof rel);
    write_row(w, s, res, wall_end, response_path);
    phase_agg_add(&w->agg, pc->slo, res, s->itl.v, s->itl.n);
    count_result(w, res);
    if (res == &tmp) {
        free(tmp.error);
    } else if (pc->pp->keep_text) {
        res->text = strndup(buf_cstr(&s->text), s->text.len);
        if (!res->text)
            log_error("out of memory keeping a response text");
    }
    s->busy = false;
    w->in_flight--;
    w->free[w->n_free++] = s;
    w->slot_freed_ns = clock_now_ns();
}

static void reset_slot(struct slot *s)
{
    free(s->own.body);
    s->own.body = NULL;
    sse_reset(&s->sse);
    chunk_tpl_reset(&s->tpl);
    buf_reset(&s->text);
    buf_reset(&s->reasoning);
    buf_reset(&s->errbody);
    s->itl.n = 0;
    s->t_last_text = 0;
    s->ttft_ms = NAN;
    s->done_seen = false;
    s->finish[0] = '\0';
    s->usage_p = s->usage_c = s->cached = -1;
    s->t_prompt_n = s->t_cache_n = s->meta_cached = -1;
    s->response_id[0] = s->request_id[0] = '\0';
    s->event_error[0] = '\0';
    s->too_large = false;
    s->answered = false;
    buf_reset(&s->hints);
}

/* A free slot of w (made when none is idle), or NULL when out of memory. */
static struct slot *take_slot(struct worker *w)
{
    if (w->n_free)
        return w->free[--w->n_free];
    struct slot **ns = realloc(w->slots, (w->n_slots + 1) * sizeof *ns);
    if (!ns)
        return NULL;
    w->slots = ns;
    struct slot **nf = realloc(w->free, (w->n_slots + 1) * sizeof *nf);
    if (!nf)
        return NULL;
    w->free = nf;
    struct slot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    http_req_init(&s->http);
    sse_init(&s->sse, on_event, s);
    s->w = w;
    s->worker_idx = w->n_slots * w->pc->n_workers + w->idx;
    w->slots[w->n_slots++] = s;
    return s;
}

/* The request's header lines, rebuilt for each send in the memory of the last (nothing is
 * allocated once the slot is warm). Returns 0 or -1 (out of memory). */
static int set_headers(const struct loadgen *lg, struct http_req *r, size_t request_index)
{
    http_req_reset_headers(r);
    int rc = http_req_add_header(r, "Content-Type: application/json");
    rc |= http_req_add_header(r, lg->gp->stream ? "Accept: text/event-stream"
                                                : "Accept: application/json");
    if (lg->api_key)
        rc |= http_req_add_headerf(r, "Authorization: Bearer %s", lg->api_key);
    rc |= http_req_add_headerf(r, "x-request-id: %.40s-%zu", lg->run_id, request_index);
    return rc < 0 ? -1 : 0;
}

/* Send request number seq of the phase (due at due_ns; now is the time). Returns 0 or -1. */
static int send_request(struct worker *w, size_t seq, uint64_t due_ns, uint64_t now)
{
    struct phase_ctx *pc = w->pc;
    struct loadgen *lg = pc->lg;
    struct slot *s = take_slot(w);
    if (!s) {
        snprintf(w->err, sizeof w->err, "out of memory for a request slot");
        return -1;
    }
    reset_slot(s);
    s->probe = w->next_is_probe;
    w->next_is_probe = false;
    size_t k = seq % pc->pp->n;
    /* a ring holds request seq at seq % ring (a --duration-s run's producer goes past n) */
    s->prompt = pc->pp->prompts[pc->pp->ring ? seq % pc->pp->ring : k];
    if (pc->prep) {
        s->prep = &pc->prep[k];
    } else {
        /* a prompt produced during the phase: its body now, its text no longer needed after */
        if (prepare_one(lg, s->prompt, &s->own) < 0) {
            snprintf(w->err, sizeof w->err, "out of memory for a request body");
            w->free[w->n_free++] = s;
            return -1;
        }
        s->prep = &s->own;
        if (pc->pp->duration_s <= 0 || (pc->pp->ring && pc->pp->ring < pc->pp->n))
            prompt_drop_text((struct prompt *)s->prompt); /* made again when it comes round */
        if (pc->pp->ring) {
            /* the ring entry is reused once this request is sent: keep its identity here */
            s->prompt_copy = *s->prompt;
            s->prompt_copy.text = NULL;
            s->prompt_copy.msgs = NULL;
            s->prompt_copy.n_msgs = 0;
            s->prompt = &s->prompt_copy;
        }
    }
    s->request_index = pc->index_base + atomic_fetch_add(&pc->sent, 1) + 1;
    s->due_ns = due_ns;
    if (pc->sched) {
        s->lag_ms = (double)(now - due_ns) / 1e6;
        uint64_t could = w->slot_freed_ns > due_ns ? w->slot_freed_ns : due_ns;
        s->client_lag_ms = now > could ? (double)(now - could) / 1e6 : 0;
    } else {
        s->lag_ms = s->client_lag_ms = NAN;
    }
    struct http_req *r = &s->http;
    if (set_headers(lg, r, s->request_index) < 0) {
        snprintf(w->err, sizeof w->err,
                 "cannot build the request header lines (out of memory, or CR/LF in the API key)");
        w->free[w->n_free++] = s;
        return -1;
    }
    r->url = lg->completions_url;
    r->method = "POST";
    r->body = s->prep->body;
    r->body_len = s->prep->len;
    r->timeout_s = lg->timeout_s;
    r->on_data = on_data;
    r->on_header = on_header;
    r->on_done = finish_request;
    r->user = s;
    s->wall_start_ns = clock_wall_ns();
    s->busy = true;
    w->in_flight++;
    if (!w->sent++)
        w->first_send_ns = now;
    w->last_send_ns = now;
    if (http_client_start(w->client, r, w->err) < 0) {
        s->busy = false;
        w->in_flight--;
        w->free[w->n_free++] = s;
        return -1;
    }
    return 0;
}

/* The next sequence number to send, or false when the phase has sent all it will. */
/* Every request below the mark has been sent (its prompt copied) or never will be: the lowest
 * unsent claim of any thread, else the next claim. For the prompt producer (pp->claimed). */
static void publish_low_water(struct phase_ctx *pc)
{
    if (!pc->pp->claimed)
        return;
    size_t low = atomic_load(&pc->next);
    for (size_t i = 0; i < pc->n_workers; i++) {
        size_t p = atomic_load(&pc->workers[i].pending_pub);
        if (p < low)
            low = p;
    }
    size_t seen = atomic_load(pc->pp->claimed);
    while (seen < low && !atomic_compare_exchange_weak(pc->pp->claimed, &seen, low)) {
    }
}

static bool claim(struct worker *w, uint64_t now)
{
    struct phase_ctx *pc = w->pc;
    if (w->exhausted || atomic_load_explicit(&pc->stopping, memory_order_relaxed))
        return false;
    if (pc->end_ns && !pc->sched && now >= pc->end_ns) {
        w->exhausted = true;
        return false;
    }
    /* published before the claim, so that no low-water mark passes it (publish_low_water) */
    atomic_store(&w->pending_pub, atomic_load(&pc->next));
    size_t seq = atomic_fetch_add(&pc->next, 1);
    if (seq >= pc->limit) {
        atomic_store(&w->pending_pub, SIZE_MAX);
        w->exhausted = true;
        return false;
    }
    atomic_store(&w->pending_pub, seq);
    w->have_pending = true;
    w->pending_seq = seq;
    w->pending_due = pc->sched ? pc->t0 + (uint64_t)(pc->sched[seq] * 1e9) : now;
    return true;
}

static void cancel_all(struct worker *w)
{
    for (size_t i = 0; i < w->n_slots; i++)
        if (w->slots[i]->busy)
            http_client_cancel(w->client, &w->slots[i]->http);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct phase_ctx *pc = w->pc;
    bool cancelled = false;
    for (;;) {
        uint64_t now = clock_now_ns();
        int stop = atomic_load_explicit(&pc->stopping, memory_order_relaxed);
        if (stop >= 2 && !cancelled) {
            cancelled = true;
            cancel_all(w);
        }
        if (stop)
            w->have_pending = false;
        bool waiting_prompt = false;
        uint64_t gate_until = 0;
        while (!stop && w->in_flight < w->cap) {
            if (!w->have_pending && !claim(w, now))
                break;
            if (w->pending_due > now)
                break;
            /* produced yet? A ring smaller than the set counts every request (it cycles) */
            bool cycling = pc->pp->ring && pc->pp->ring < pc->pp->n;
            size_t need = cycling || w->pending_seq < pc->pp->n ? w->pending_seq : pc->pp->n - 1;
            if (pc->pp->ready && need >= atomic_load(pc->pp->ready)) {
                /* not produced yet: wait for it, or give up when no more will come */
                if (atomic_load(pc->pp->producer_done) && need >= atomic_load(pc->pp->ready)) {
                    w->have_pending = false;
                    w->exhausted = true;
                } else {
                    waiting_prompt = true;
                }
                break;
            }
            if (pc->end_ns && !pc->sched && now >= pc->end_ns) {
                /* --duration-s is over (a claim held at the outage gate): not sent */
                w->have_pending = false;
                w->exhausted = true;
                break;
            }
            bool probe;
            if (!outage_pass(pc, now, &gate_until, &probe))
                break; /* the server is away: the claim waits for the next probe */
            w->have_pending = false;
            w->next_is_probe = probe;
            if (send_request(w, w->pending_seq, w->pending_due, now) < 0) {
                if (probe)
                    atomic_store(&pc->probing, 0);
                log_error("cannot start a request: %s", w->err);
                w->exhausted = true;
                break;
            }
            now = clock_now_ns();
        }
        if (!w->have_pending)
            atomic_store(&w->pending_pub, SIZE_MAX);
        publish_low_water(pc);
        if (w->in_flight == 0 && !w->have_pending && (w->exhausted || stop))
            break;
        long wait_us = waiting_prompt ? 500 : 20000;
        if (gate_until) {
            wait_us = gate_until > now ? (long)((gate_until - now) / 1000) : 0;
            if (wait_us > 20000)
                wait_us = 20000;
        } else if (!waiting_prompt && w->have_pending && w->in_flight < w->cap) {
            uint64_t due = w->pending_due;
            wait_us = due > now ? (long)((due - now) / 1000) : 0;
            if (wait_us > 20000)
                wait_us = 20000;
        }
        if (w->rows_out.len && now - w->rows_since_ns >= (uint64_t)ROWS_FLUSH_MS * 1000000u)
            rows_flush(w);
        if (http_client_poll_us(w->client, wait_us) < 0) {
            log_error("HTTP client failure; cancelling this thread's requests");
            w->exhausted = true;
            w->have_pending = false;
            cancel_all(w);
            cancelled = true;
        }
    }
    rows_flush(w);
    return NULL;
}

/* ------------------------------------------------------------ open-loop schedule */

/* A standard normal (Box-Muller) and a Gamma(k, 1) variate (Marsaglia-Tsang; k < 1 boosted). */
static double normal01(uint64_t *st)
{
    double u1 = splitmix64_unit(st), u2 = splitmix64_unit(st);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double gamma_k(double k, uint64_t *st)
{
    if (k < 1.0) {
        double u = splitmix64_unit(st);
        return gamma_k(k + 1.0, st) * pow(u > 0 ? u : 1e-300, 1.0 / k);
    }
    double d = k - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = normal01(st), v = 1.0 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = splitmix64_unit(st);
        if (u < 1.0 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v;
    }
}

/* Operational time x (expected arrivals) → seconds, for a rate ramped linearly over ramp s. */
static double ramp_invert(double x, double rate, double ramp)
{
    if (ramp <= 0)
        return x / rate;
    double head = rate * ramp / 2.0;
    return x <= head ? sqrt(2.0 * ramp * x / rate) : ramp + (x - head) / rate;
}

/* Due offsets (seconds from the phase's start) of up to max requests, or those before
 * duration_s when it is > 0. Returns the array (caller frees) and its length in *n. */
static double *make_schedule(const struct loadgen *lg, size_t max, double duration_s, size_t *n)
{
    size_t cap = max ? max : 1024;
    double *t = malloc(cap * sizeof *t);
    if (!t)
        return NULL;
    uint64_t st = lg->arrival_seed ? lg->arrival_seed : 0x6b76626568636e65ull;
    double rate = lg->request_rate, x = lg->arrival_offset;
    size_t k = 0;
    for (;;) {
        if (max && k >= max)
            break;
        double at = isinf(rate) ? 0 : ramp_invert(x, rate, lg->shape.ramp_up_s);
        if (duration_s > 0 && at >= duration_s)
            break;
        if (k == cap) {
            double *nt = realloc(t, cap * 2 * sizeof *t);
            if (!nt) {
                free(t);
                return NULL;
            }
            t = nt;
            cap *= 2;
        }
        t[k++] = at;
        if (isinf(rate))
            continue;
        /* gaps in operational time have mean 1 */
        switch (lg->shape.arrival) {
        case ARRIVAL_CONSTANT:
            x += 1.0;
            break;
        case ARRIVAL_POISSON: {
            double u = splitmix64_unit(&st);
            x += -log(1.0 - u);
            break;
        }
        case ARRIVAL_GAMMA:
            x += gamma_k(lg->shape.burstiness, &st) / lg->shape.burstiness;
            break;
        }
    }
    *n = k;
    return t;
}

/* ------------------------------------------------------------ progress */

static bool progress_tty(const struct loadgen *lg)
{
    return lg->progress && isatty(STDERR_FILENO);
}

static void progress_line(struct phase_ctx *pc, bool final)
{
    size_t done = 0, errors = 0;
    unsigned long long hist[HIST_BUCKETS] = {0}, nt = 0;
    for (size_t i = 0; i < pc->n_workers; i++) {
        struct counters *c = &pc->workers[i].cnt;
        done += atomic_load_explicit(&c->done, memory_order_relaxed);
        errors += atomic_load_explicit(&c->errors, memory_order_relaxed);
        for (size_t b = 0; b < HIST_BUCKETS; b++) {
            unsigned v = atomic_load_explicit(&c->ttft_hist[b], memory_order_relaxed);
            hist[b] += v;
            nt += v;
        }
    }
    double p50 = NAN;
    for (size_t b = 0, acc = 0; nt && b < HIST_BUCKETS; b++) {
        acc += hist[b];
        if (acc * 2 >= nt) {
            p50 = exp2(((double)b + 0.5) / 8.0) / 1000.0; /* bucket middle, ms */
            break;
        }
    }
    double el = (double)(clock_now_ns() - pc->t0) / 1e9;
    char total[32], eta[32] = "";
    if (pc->end_ns) {
        double d = (double)(pc->end_ns - pc->t0) / 1e9;
        snprintf(total, sizeof total, "%.0fs", d);
        if (!final && el < d)
            snprintf(eta, sizeof eta, " ETA %.0fs", d - el);
    } else {
        snprintf(total, sizeof total, "%zu", pc->limit);
        if (!final && done > 0 && done < pc->limit)
            snprintf(eta, sizeof eta, " ETA %.0fs", el * (double)(pc->limit - done) / (double)done);
    }
    char ttft[32] = "-";
    if (!isnan(p50))
        snprintf(ttft, sizeof ttft, "%.1fms", p50);
    bool color = pc->lg->color && !getenv("NO_COLOR");
    char extra[96] = "";
    if (pc->lg->progress_extra)
        pc->lg->progress_extra(pc->lg->progress_user, extra, sizeof extra);
    fprintf(stderr, "\r\033[K%s%s%s %zu/%s  %.0f req/s  TTFT p50 %s  %s%zu errors%s  %.0fs%s%s%s",
            color ? "\033[1m" : "", pc->pp->name, color ? "\033[0m" : "", done, total,
            el > 0 ? (double)done / el : 0.0, ttft, color && errors ? "\033[31m" : "", errors,
            color && errors ? "\033[0m" : "", el, eta, extra, final ? "\n" : "");
    fflush(stderr);
}

/* ------------------------------------------------------------ phases */

size_t loadgen_auto_threads(size_t in_flight)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t t = (in_flight + 31) / 32;
    if (t < 1)
        t = 1;
    if (cpus > 0 && t > (size_t)cpus)
        t = (size_t)cpus;
    return t;
}

int loadgen_reserve_fds(size_t streams, char *err)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    rlim_t need = (rlim_t)streams + 256; /* connections, plus files, pipes, the metrics probes */
    if (rl.rlim_cur >= need)
        return 0;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || want < need)
        return err_set(err,
                       "%zu streams need %llu file descriptors but the limit is %llu (hard limit "
                       "%llu); raise it with `ulimit -n %llu` (as root, or in limits.conf)",
                       streams, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
                       (unsigned long long)rl.rlim_max, (unsigned long long)need);
    return 0;
}

static int cmp_index(const void *a, const void *b)
{
    const struct req_result *x = a, *y = b;
    return (x->request_index > y->request_index) - (x->request_index < y->request_index);
}

static void free_worker(struct worker *w)
{
    for (size_t i = 0; i < w->n_slots; i++) {
        struct slot *s = w->slots[i];
        reset_slot(s);
        http_req_cleanup(&s->http);
        sse_free(&s->sse);
        chunk_tpl_free(&s->tpl);
        buf_free(&s->text);
        buf_free(&s->reasoning);
        buf_free(&s->errbody);
        buf_free(&s->hints);
        dvec_free(&s->itl);
        free(s);
    }
    free(w->slots);
    free(w->free);
    http_client_free(w->client);
    buf_free(&w->row);
    buf_free(&w->rows_out);
    for (size_t i = 0; i < w->n_header_keys; i++)
        free(w->header_keys[i]);
}

/* Gather the threads' results into out: their aggregates, and the per-request results (in
 * request_index order) when the phase keeps them. */
static int merge(struct phase_ctx *pc, struct phase_result *out)
{
    size_t n = 0, total = 0;
    for (size_t i = 0; i < pc->n_workers; i++) {
        n += pc->workers[i].n_res;
        total += pc->workers[i].agg.total;
    }
    out->aggs = calloc(pc->n_workers, sizeof *out->aggs);
    out->reqs = pc->keep ? calloc(n ? n : 1, sizeof *out->reqs) : NULL;
    if (!out->aggs || (pc->keep && !out->reqs))
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < pc->n_workers; i++) {
        struct worker *w = &pc->workers[i];
        out->errors += atomic_load(&w->cnt.errors);
        out->aggs[out->n_aggs++] = w->agg; /* the stores move; the worker's copy is cleared */
        memset(&w->agg, 0, sizeof w->agg);
        for (size_t j = 0; j < w->n_res; j++)
            out->reqs[k++] = w->res[j];
        free(w->res);
        w->res = NULL;
        w->n_res = 0;
    }
    out->n = total;
    if (out->reqs && n != total) {
        /* a result could not be kept (out of memory): the per-request view is incomplete */
        for (size_t i = 0; i < n; i++) {
            free(out->reqs[i].error);
            free(out->reqs[i].text);
        }
        free(out->reqs);
        out->reqs = NULL;
    }
    if (out->reqs)
        qsort(out->reqs, n, sizeof *out->reqs, cmp_index);
    return 0;
}

/* The phase's shape: its schedule (open loop), how many requests it sends at most (pc->limit) and
 * how many may be in flight. Returns 0 or -1 (out of memory). */
static int plan_load(struct phase_ctx *pc, bool open, size_t *in_flight, char *err)
{
    const struct loadgen *lg = pc->lg;
    const struct phase_plan *pp = pc->pp;
    if (pp->schedule) {
        pc->sched = malloc(pp->n * sizeof *pc->sched);
        if (!pc->sched)
            return err_set(err, "cannot plan the arrivals (out of memory)");
        memcpy(pc->sched, pp->schedule, pp->n * sizeof *pc->sched);
        pc->limit = pp->n;
        *in_flight =
            lg->max_concurrency && lg->max_concurrency < pp->n ? lg->max_concurrency : pp->n;
        if (*in_flight > OPEN_LOOP_MAX_IN_FLIGHT)
            *in_flight = OPEN_LOOP_MAX_IN_FLIGHT;
    } else if (open) {
        size_t n_sched = 0;
        pc->sched = make_schedule(lg, pp->duration_s > 0 ? 0 : pp->n, pp->duration_s, &n_sched);
        if (!pc->sched)
            return err_set(err, "cannot plan the arrivals (out of memory)");
        pc->limit = n_sched;
        *in_flight = lg->max_concurrency ? lg->max_concurrency : OPEN_LOOP_MAX_IN_FLIGHT;
        if (*in_flight > n_sched)
            *in_flight = n_sched ? n_sched : 1;
    } else {
        pc->limit = pp->duration_s > 0 ? SIZE_MAX : pp->n;
        *in_flight = pp->concurrency ? pp->concurrency : 1;
        if (pp->duration_s <= 0 && *in_flight > pp->n)
            *in_flight = pp->n;
    }
    return 0;
}

/* The threads' state, each with its share of the in-flight requests and its own HTTP client
 * (pc->workers holds n_workers entries even when this fails, for free_phase). Returns 0 or -1. */
static int make_workers(struct phase_ctx *pc, size_t in_flight, char *err)
{
    struct loadgen *lg = pc->lg;
    size_t threads = pc->n_workers;
    for (size_t i = 0; i < threads; i++) {
        struct worker *w = &pc->workers[i];
        w->pc = pc;
        w->idx = i;
        atomic_init(&w->pending_pub, SIZE_MAX);
        phase_agg_init(&w->agg, lg->spill_dir);
        w->cap = in_flight / threads + (i < in_flight % threads);
        w->client = http_client_new_for(lg->completions_url, w->cap, lg->transport, err);
        if (!w->client)
            return -1;
    }
    return 0;
}

/* How the load is made (the result's description) and the phase's clock: t0, its wall time, the
 * --duration-s deadline. */
static void start_clock(struct phase_ctx *pc, bool open, struct phase_result *out)
{
    struct loadgen *lg = pc->lg;
    const struct phase_plan *pp = pc->pp;
    lg->transport_used = http_client_transport(pc->workers[0].client);
    out->threads = pc->n_workers;
    out->transport = lg->transport_used;
    out->open_loop = open;
    out->target_rate = open ? lg->request_rate : NAN;
    if (pp->schedule) /* the schedule's own rate: sends over its span */
        out->target_rate = pp->n >= 2 && pc->sched[pp->n - 1] > pc->sched[0]
                               ? (double)(pp->n - 1) / (pc->sched[pp->n - 1] - pc->sched[0])
                               : INFINITY;
    pc->t0 = pp->t0_ns ? pp->t0_ns : clock_now_ns();
    out->t0_ns = pc->t0;
    uint64_t now0 = clock_now_ns(), wall_now = clock_wall_ns();
    /* the wall time of t0 (the schedule's zero may lie before or after this moment) */
    pc->wall0 = now0 >= pc->t0 ? wall_now - (now0 - pc->t0) : wall_now + (pc->t0 - now0);
    if (pp->duration_s > 0)
        pc->end_ns = pc->t0 + (uint64_t)(pp->duration_s * 1e9);
}

/* Start the threads. Returns 0, or -1 (those started are told to stop and cancel). */
static int start_workers(struct phase_ctx *pc, char *err)
{
    for (size_t i = 0; i < pc->n_workers; i++) {
        struct worker *w = &pc->workers[i];
        int e = pthread_create(&w->tid, NULL, worker_main, w);
        if (e != 0) {
            err_set(err, "cannot start a load thread: %s", strerror(e));
            atomic_store(&pc->stopping, 2);
            return -1;
        }
        w->started = true;
    }
    return 0;
}

/* This thread watches until every load thread has ended: interrupts, the grace period, the
 * progress line. Returns whether it saw an interrupt. */
static bool watch_phase(struct phase_ctx *pc)
{
    struct loadgen *lg = pc->lg;
    bool tty = progress_tty(lg), interrupt_seen = false;
    uint64_t grace_deadline = 0, next_progress = 0;
    for (;;) {
        bool all_done = true;
        for (size_t i = 0; i < pc->n_workers; i++) {
            struct worker *w = &pc->workers[i];
            if (w->started && pthread_tryjoin_np(w->tid, NULL) == 0)
                w->started = false;
            all_done &= !w->started;
        }
        if (all_done)
            break;
        uint64_t now = clock_now_ns();
        if (*lg->interrupted && !interrupt_seen) {
            interrupt_seen = true;
            atomic_store(&pc->stopping, 1);
            if (lg->also_stop)
                atomic_store(lg->also_stop, 1);
            grace_deadline = now + (uint64_t)(lg->grace_s * 1e9);
            if (tty)
                fputc('\n', stderr);
            log_warn("interrupted: waiting up to %.0f s for the in-flight requests", lg->grace_s);
        }
        if (grace_deadline && now >= grace_deadline)
            atomic_store(&pc->stopping, 2);
        if (tty && now >= next_progress) {
            progress_line(pc, false);
            next_progress = now + 250000000u;
        }
        clock_sleep_ns(10000000u, NULL);
    }
    if (tty)
        progress_line(pc, true);
    return interrupt_seen;
}

/* Open loop: sends per second over the span from the first send to the last; NaN if < 2. */
static double achieved_rate(const struct phase_ctx *pc, bool open)
{
    uint64_t first = 0, last = 0;
    size_t sent = 0;
    for (size_t i = 0; i < pc->n_workers; i++) {
        const struct worker *w = &pc->workers[i];
        if (!w->sent)
            continue;
        if (!sent || w->first_send_ns < first)
            first = w->first_send_ns;
        if (w->last_send_ns > last)
            last = w->last_send_ns;
        sent += w->sent;
    }
    return open && sent >= 2 && last > first ? (double)(sent - 1) / ((double)(last - first) / 1e9)
                                             : NAN;
}

/* The threads' response header names into the loadgen's list (ownership moves). */
static void gather_header_keys(struct phase_ctx *pc)
{
    struct loadgen *lg = pc->lg;
    for (size_t i = 0; i < pc->n_workers; i++) {
        struct worker *w = &pc->workers[i];
        for (size_t k = 0; k < w->n_header_keys; k++) {
            bool seen = false;
            for (size_t j = 0; j < lg->n_header_keys && !seen; j++)
                seen = strcmp(lg->header_key_list[j], w->header_keys[k]) == 0;
            if (!seen && lg->n_header_keys < LOADGEN_MAX_HEADER_KEYS) {
                lg->header_key_list[lg->n_header_keys++] = w->header_keys[k];
                w->header_keys[k] = NULL;
            }
        }
    }
}

/* What the threads measured, into out. Returns 0 or -1 (out of memory). */
static int gather(struct phase_ctx *pc, bool open, bool interrupt_seen, struct phase_result *out,
                  char *err)
{
    struct loadgen *lg = pc->lg;
    out->duration_s = (double)(clock_now_ns() - pc->t0) / 1e9;
    out->interrupted = interrupt_seen || *lg->interrupted;
    outage_result(pc, &out->outage);
    out->achieved_rate = achieved_rate(pc, open);
    lg->next_index += atomic_load(&pc->sent);
    for (size_t i = 0; i < pc->n_workers; i++)
        out->rows_lost += pc->workers[i].rows_lost;
    if (out->rows_lost)
        log_error("phase %s: %zu rows of requests.jsonl lost (none written in part)", pc->pp->name,
                  out->rows_lost);
    gather_header_keys(pc);
    if (merge(pc, out) < 0)
        return err_set(err, "out of memory gathering the results");
    return 0;
}

static void free_phase(struct phase_ctx *pc)
{
    for (size_t i = 0; pc->workers && i < pc->n_workers; i++) {
        struct worker *w = &pc->workers[i];
        for (size_t j = 0; j < w->n_res; j++) {
            free(w->res[j].error);
            free(w->res[j].text);
        }
        free(w->res);
        phase_agg_free(&w->agg);
        free_worker(w);
    }
    free(pc->workers);
    free_prepared(pc->prep, pc->pp->n);
    free(pc->sched);
    pthread_mutex_destroy(&pc->outage_lock);
}

int loadgen_run_phase(struct loadgen *lg, const struct phase_plan *pp, struct phase_result *out,
                      char *err)
{
    memset(out, 0, sizeof *out);
    struct phase_ctx pc = {.lg = lg, .pp = pp, .index_base = lg->next_index};
    char why[256];
    if (lg->slo && lg->slo->any && slo_judgeable(lg->slo, lg->gp->stream, why, sizeof why))
        pc.slo = lg->slo;
    if (pp->n == 0)
        return 0;
    bool open = pp->schedule || (pp->open_loop && lg->request_rate > 0);
    size_t in_flight = 0;
    if (plan_load(&pc, open, &in_flight, err) < 0)
        return -1;
    size_t threads = lg->threads ? lg->threads : loadgen_auto_threads(in_flight);
    if (threads > in_flight)
        threads = in_flight;
    if (loadgen_reserve_fds(open && !lg->max_concurrency ? 1024 : in_flight, err) < 0) {
        free(pc.sched);
        return -1;
    }
    pc.prep = pp->ready ? NULL : calloc(pp->n, sizeof *pc.prep);
    pc.workers = calloc(threads, sizeof *pc.workers);
    if ((!pp->ready && (!pc.prep || prepare(lg, pp->prompts, pp->n, pc.prep) < 0)) || !pc.workers) {
        free_prepared(pc.prep, pp->n);
        free(pc.workers);
        free(pc.sched);
        return err_set(err, "cannot build the request bodies (out of memory)");
    }
    pc.n_workers = threads;
    /* a ring's entries are reused, so its results could not point at their prompts */
    pc.keep = pp->n <= LOADGEN_KEEP_RESULTS && pp->duration_s <= 0 && !pp->ring;
    pthread_mutex_init(&pc.outage_lock, NULL);
    int rc = make_workers(&pc, in_flight, err);
    if (rc == 0) {
        start_clock(&pc, open, out);
        rc = start_workers(&pc, err);
        bool interrupt_seen = watch_phase(&pc);
        if (gather(&pc, open, interrupt_seen, out, err) < 0)
            rc = -1;
    }
    free_phase(&pc);
    return rc;
}

void phase_result_free(struct phase_result *r)
{
    for (size_t i = 0; r->reqs && i < r->n; i++) {
        free(r->reqs[i].error);
        free(r->reqs[i].text);
    }
    free(r->reqs);
    for (size_t i = 0; i < r->n_aggs; i++)
        phase_agg_free(&r->aggs[i]);
    free(r->aggs);
    memset(r, 0, sizeof *r);
}
