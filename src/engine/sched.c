/*
 * sched.c - continuous-batching scheduler.
 *
 * One thread runs steps. A step admits waiting requests (FIFO, up to max_num_seqs running, each
 * reserving its G1 blocks through the KV manager, which also onboards any reusable prefix), then
 * advances every running sequence by one token: newly admitted ones finish their prefill and emit
 * their first token, the others decode. The step's modelled duration is
 *     Σ prefill(uncached tokens) + Σ G2→G1 copy time [+ Σ G3 read time at --disk-read-gbps]
 *     + decode(batch, context)
 * divided by --speedup; the scheduler sleeps until the step's start plus that duration, so real
 * time already spent in the step (disk reads for G3 onboards, which are real) is part of it,
 * not added to it. With --g1 cuda the G2→G1 copies are real too (cudaMemcpyAsync, measured):
 * their modelled term is left out, their real time being already spent in the step. Output is
 * handed to each request under its own lock through wire.c (which owns every response shape) and
 * the request's wake_locked hook (set by server.c, which resumes its connection); the scheduler
 * formats nothing and knows nothing of HTTP, and the HTTP side never blocks it.
 */
#include "engine/sched.h"

#include "engine/kvbm.h"

#include "model/blockhash.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/json.h"
#include "util/log.h"
#include "util/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ requests */

struct ereq *ereq_new(struct engine *e)
{
    struct ereq *r = fault_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->refs = 1;
    r->eng = e;
    pthread_mutex_lock(&e->lock);
    e->live_reqs++;
    pthread_mutex_unlock(&e->lock);
    return r;
}

void ereq_ref(struct ereq *r)
{
    pthread_mutex_lock(&r->lock);
    r->refs++;
    pthread_mutex_unlock(&r->lock);
}

void ereq_unref(struct ereq *r)
{
    pthread_mutex_lock(&r->lock);
    int left = --r->refs;
    pthread_mutex_unlock(&r->lock);
    if (left > 0)
        return;
    struct engine *e = r->eng;
    tok_ids_free(&r->prompt);
    for (size_t i = 0; i < r->n_stops; i++)
        free(r->stops[i]);
    free(r->stops);
    buf_free(&r->text);
    buf_free(&r->out);
    pthread_mutex_destroy(&r->lock);
    free(r);
    pthread_mutex_lock(&e->lock);
    e->live_reqs--;
    pthread_cond_broadcast(&e->idle);
    pthread_mutex_unlock(&e->lock);
}

double sched_random(struct engine *e)
{
    pthread_mutex_lock(&e->lock);
    double u = splitmix64_unit(&e->rng);
    pthread_mutex_unlock(&e->lock);
    return u;
}

/* ------------------------------------------------------------ output */

static void wake_locked(struct ereq *r)
{
    if (r->wake_locked)
        r->wake_locked(r);
}

/* Longest suffix of text that is a proper prefix of some stop string: held back from the
 * stream until we know whether the stop string completes. */
static size_t stop_holdback(const struct ereq *r)
{
    size_t best = 0;
    const char *t = r->text.data;
    size_t n = r->text.len;
    for (size_t s = 0; s < r->n_stops; s++) {
        size_t sl = strlen(r->stops[s]);
        for (size_t k = sl > 1 ? sl - 1 : 0; k > best; k--) {
            if (k <= n && memcmp(t + n - k, r->stops[s], k) == 0) {
                best = k;
                break;
            }
        }
    }
    return best;
}

/* Append one generated token. Returns true when a stop string ended the output. (A failed
 * append leaves r->text failed, for the caller to see.) */
static bool append_token(struct ereq *r, const char *tok, size_t len)
{
    size_t before = r->text.len;
    buf_append(&r->text, tok, len);
    if (buf_failed(&r->text))
        return false;
    for (size_t s = 0; s < r->n_stops; s++) {
        size_t sl = strlen(r->stops[s]);
        if (!sl)
            continue;
        size_t from = before + 1 > sl ? before + 1 - sl : 0;
        const char *hit = memmem(r->text.data + from, r->text.len - from, r->stops[s], sl);
        if (hit) {
            buf_truncate(&r->text, (size_t)(hit - r->text.data));
            return true;
        }
    }
    return false;
}

/* Push what the client may see now; with finish set, everything and the stream's end. */
static void flush_output_locked(struct ereq *r, const char *finish)
{
    if (!r->stream)
        return;
    size_t safe = r->text.len;
    if (!finish)
        safe -= stop_holdback(r);
    if (safe > r->streamed || finish) {
        wire_stream_text(r, r->text.data ? r->text.data + r->streamed : "", safe - r->streamed,
                         finish);
        r->streamed = safe;
    }
    if (finish)
        wire_stream_end(r);
}

/* A stream keeps of its text only what is not sent yet and the tail a stop string may still
 * end in (append_token, stop_holdback), so that a long stream holds no more than its output
 * buffer. Dropped in 4 KiB steps or more, to keep the copying rare. */
static void trim_streamed_locked(struct ereq *r)
{
    if (!r->stream || r->text.len < r->max_stop_len)
        return;
    size_t drop = r->text.len - r->max_stop_len;
    if (drop > r->streamed)
        drop = r->streamed;
    if (drop < 4096)
        return;
    buf_consume(&r->text, drop);
    r->streamed -= drop;
}

static void observe_done(struct engine *e, struct ereq *r, bool ok)
{
    struct front_metrics *m = &e->fm;
    pthread_mutex_lock(&m->lock);
    if (ok) {
        if (r->stream)
            m->req_ok_stream++;
        else
            m->req_ok_unary++;
        if (r->t_first_ns)
            histo_observe(&m->ttft, (double)(r->t_first_ns - r->t_arrival_ns) / 1e9);
        histo_observe(&m->isl, (double)r->prompt.n);
        histo_observe(&m->osl, (double)r->generated);
        histo_observe(&m->cached, (double)r->cached_tokens);
        m->generation_tokens += r->generated;
    } else {
        if (r->stream)
            m->req_err_stream++;
        else
            m->req_err_unary++;
    }
    if (m->inflight)
        m->inflight--;
    pthread_mutex_unlock(&m->lock);
}

/* The request is over: release its KV blocks, tell the connection, drop the scheduler's ref. */
static void finish(struct engine *e, struct ereq *r, const char *reason, bool cut, int status,
                   const char *msg)
{
    if (r->admitted) {
        kvbm_release(e->kv, &r->seq);
        r->admitted = false;
    }
    pthread_mutex_lock(&r->lock);
    if (status) {
        r->error_status = status;
        snprintf(r->error_msg, sizeof r->error_msg, "%s", msg);
    }
    r->finish_reason = reason;
    if (!cut && !status) {
        flush_output_locked(r, reason);
        if (buf_failed(&r->out)) /* the stream's end is lost: end it with an error */
            cut = true;
    }
    r->cut = cut;
    r->done = true;
    bool ok = !cut && !status && !r->cancelled;
    wake_locked(r);
    pthread_mutex_unlock(&r->lock);
    observe_done(e, r, ok);
    pthread_mutex_lock(&e->lock);
    e->in_flight--;
    pthread_cond_broadcast(&e->idle);
    pthread_mutex_unlock(&e->lock);
    ereq_unref(r);
}

struct token_outcome {
    bool done;
    bool cut;
    bool oom; /* the output could not be kept: fail the request */
    const char *reason;
};

/* Produce the next token of r. The caller finishes r when the outcome says done. */
static struct token_outcome step_token(struct engine *e, struct ereq *r, uint64_t now)
{
    char tok[32];
    size_t len = textgen_next(&r->gen, tok);
    if (r->generated > 0 && r->t_last_ns) {
        pthread_mutex_lock(&e->fm.lock);
        histo_observe(&e->fm.itl, (double)(now - r->t_last_ns) / 1e9);
        pthread_mutex_unlock(&e->fm.lock);
    }
    if (!r->t_first_ns)
        r->t_first_ns = now;
    r->t_last_ns = now;
    r->generated++;
    pthread_mutex_lock(&r->lock);
    bool stopped = append_token(r, tok, len);
    bool last = stopped || r->generated >= r->plan_len;
    bool oom = buf_failed(&r->text);
    if (!last && !oom && r->stream) {
        /* A stream whose client lags gets its whole buffer at once: grown by doubling, it
         * would leave the allocator holding each smaller buffer it outgrew (as much again). */
        size_t limit = engine_stream_out_limit(e);
        if (r->out.len >= STREAM_EARLY_BYTES && r->out.cap <= 2 * STREAM_EARLY_BYTES &&
            r->out.cap < limit)
            buf_reserve_hint(&r->out, limit - r->out.len); /* a failure leaves it to grow */
        flush_output_locked(r, NULL);
        /* (checked here, under the lock: the reader's buf_consume may reset the buffer) */
        oom = buf_failed(&r->out);
        trim_streamed_locked(r);
        wake_locked(r); /* a unary answer waits for finish() */
        /* backpressure: its client has not taken the bound; no more tokens until it does
         * (the stream reader unpauses it) */
        if (r->out.len >= limit && !r->paused) {
            r->paused = true;
            log_debug("%s paused: its client left %zu bytes unread", r->id, r->out.len);
        }
    }
    pthread_mutex_unlock(&r->lock);
    struct token_outcome out = {false, false, false, NULL};
    if (oom) {
        out.done = true;
        out.oom = true;
        out.cut = r->stream; /* a stream already answered 200: it ends with an error */
    } else if (last) {
        out.done = true;
        out.reason = stopped || r->generated < r->max_tokens ? "stop" : "length";
    } else if (r->disconnect_at && r->generated >= r->disconnect_at) {
        out.done = true;
        out.cut = true; /* injected fault: the stream is cut mid-way */
    }
    return out;
}

/* ------------------------------------------------------------ cost model */

static double prefill_s(const struct engine *e, size_t tokens)
{
    return (double)tokens * 2.0 * e->cfg.model.params / e->cfg.hw.eff_flops;
}

static double decode_s(const struct engine *e, size_t batch, size_t context_tokens)
{
    if (!batch)
        return 0;
    return e->cfg.hw.step_overhead_s + e->cfg.model.weight_bytes / e->cfg.hw.mem_bw +
           (double)context_tokens * (double)e->cfg.model.kv_bytes_per_token / e->cfg.hw.mem_bw;
}

/* ------------------------------------------------------------ the loop */

static struct ereq *pop_wait_locked(struct engine *e, struct ereq *prev, struct ereq *r)
{
    if (prev)
        prev->next = r->next;
    else
        e->wait_head = r->next;
    if (e->wait_tail == r)
        e->wait_tail = prev;
    r->next = NULL;
    return r;
}

static void sleep_until(uint64_t target_ns)
{
    uint64_t now = clock_now_ns();
    if (target_ns > now)
        clock_sleep_ns(target_ns - now, NULL);
}

/* Admit what can start now. Returns the modelled prefill + onboard time of the admitted. */
static double admit(struct engine *e, struct ereq **fresh, size_t *n_fresh, uint64_t now,
                    uint64_t *next_wake)
{
    double cost = 0;
    size_t bs = e->cfg.kv.block_tokens;
    pthread_mutex_lock(&e->lock);
    struct ereq *prev = NULL, *r = e->wait_head;
    while (r && e->n_running < e->cfg.max_num_seqs) {
        struct ereq *next = r->next;
        pthread_mutex_lock(&r->lock);
        bool cancelled = r->cancelled;
        pthread_mutex_unlock(&r->lock);
        if (cancelled) {
            pop_wait_locked(e, prev, r);
            pthread_mutex_unlock(&e->lock);
            finish(e, r, NULL, true, 0, NULL);
            pthread_mutex_lock(&e->lock);
            r = next;
            continue;
        }
        if (r->not_before_ns > now) {
            if (!*next_wake || r->not_before_ns < *next_wake)
                *next_wake = r->not_before_ns;
            prev = r;
            r = next;
            continue;
        }
        pthread_mutex_unlock(&e->lock);
        size_t n_full = r->prompt.n / bs;
        uint64_t *hashes = fault_malloc((n_full ? n_full : 1) * sizeof *hashes);
        int rc = KVBM_ADMIT_NOMEM;
        struct kvbm_admit_result res;
        if (hashes) {
            blockhash_chain(r->prompt.ids, r->prompt.n, bs, hashes);
            /* at least one prompt token is always computed */
            size_t matchable = (r->prompt.n - 1) / bs;
            size_t total = (r->prompt.n + r->max_tokens + bs - 1) / bs;
            rc = kvbm_admit(e->kv, hashes, n_full, matchable, total, &r->seq, &res);
            free(hashes);
        }
        pthread_mutex_lock(&e->lock);
        if (rc == 0)
            break; /* not enough G1 now: FIFO waits for a release */
        pop_wait_locked(e, prev, r);
        if (rc < 0) {
            pthread_mutex_unlock(&e->lock);
            if (rc == KVBM_ADMIT_NOMEM) /* (a stream already answered 200: cut it) */
                finish(e, r, NULL, r->stream, 500, "out of memory admitting the request");
            else
                finish(e, r, NULL, false, 400, "request does not fit in the device KV cache");
            pthread_mutex_lock(&e->lock);
            r = next;
            continue;
        }
        r->admitted = true;
        r->cached_tokens = res.matched_blocks * bs;
        r->cached_host = res.g2_onboards * bs;
        r->cached_disk = res.g3_onboards * bs;
        pthread_mutex_lock(&e->fm.lock);
        e->fm.prompt_tokens += r->prompt.n;
        e->fm.prefix_query_tokens += r->prompt.n;
        e->fm.hit_tokens_device += res.g1_hits * bs;
        e->fm.hit_tokens_host += r->cached_host;
        e->fm.hit_tokens_disk += r->cached_disk;
        e->fm.hit_blocks += res.matched_blocks;
        e->fm.miss_blocks += (r->prompt.n + bs - 1) / bs - res.matched_blocks;
        pthread_mutex_unlock(&e->fm.lock);
        cost += prefill_s(e, r->prompt.n - r->cached_tokens);
        if (e->cfg.kv.g1 == KVBM_G1_MODEL) /* --g1 cuda: the copies were real (res.g1_h2d_s) */
            cost += (double)res.g2_bytes / e->cfg.hw.h2d_bw;
        if (e->cfg.disk_read_bw > 0) /* --disk-read-gbps: a modelled, slower disk */
            cost += (double)res.g3_onboards * (double)e->cfg.kv.block_bytes / e->cfg.disk_read_bw;
        e->running[e->n_running++] = r;
        fresh[(*n_fresh)++] = r;
        log_debug("admit %s: prompt %zu tokens, %zu cached (G1 %zu, G2 %zu, G3 %zu blocks, "
                  "%.2f ms disk)",
                  r->id, r->prompt.n, r->cached_tokens, res.g1_hits, res.g2_onboards,
                  res.g3_onboards, res.g3_read_s * 1e3);
        if (e->cfg.kv.g1 == KVBM_G1_CUDA)
            log_debug("admit %s: %.3f ms copying %zu blocks into G1 on the device", r->id,
                      res.g1_h2d_s * 1e3, res.g2_onboards + res.g3_onboards);
        r = next;
    }
    pthread_mutex_unlock(&e->lock);
    return cost;
}

static void remove_running_locked(struct engine *e, size_t i)
{
    e->running[i] = e->running[--e->n_running];
}

/* Running requests whose client left end now. */
static void end_cancelled(struct engine *e)
{
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->n_running;) {
        struct ereq *r = e->running[i];
        pthread_mutex_lock(&r->lock);
        bool gone = r->cancelled;
        pthread_mutex_unlock(&r->lock);
        if (gone) {
            remove_running_locked(e, i);
            pthread_mutex_unlock(&e->lock);
            finish(e, r, NULL, true, 0, NULL);
            pthread_mutex_lock(&e->lock);
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&e->lock);
}

/* The running requests past prefill that decode in this step, less the streams paused for their
 * client (they keep their KV blocks and wait, at no cost to the step). Returns their number;
 * *context: the tokens they attend to. */
static size_t decode_batch(struct engine *e, struct ereq **batch, size_t *context)
{
    size_t n_batch = 0;
    *context = 0;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->n_running; i++) {
        struct ereq *r = e->running[i];
        if (!r->prefilled)
            continue;
        pthread_mutex_lock(&r->lock);
        bool paused = r->paused;
        pthread_mutex_unlock(&r->lock);
        if (!paused) {
            batch[n_batch++] = r;
            *context += r->prompt.n + r->generated;
        }
    }
    pthread_mutex_unlock(&e->lock);
    return n_batch;
}

/* Nothing can run: wait for an arrival, a cancel, an unpaused stream (each sets sched_kick, so
 * one that came while this step looked is not slept through) or a stall to expire (next_wake,
 * 0: none). */
static void wait_for_work(struct engine *e, uint64_t next_wake)
{
    pthread_mutex_lock(&e->lock);
    if (!e->stopping && !e->sched_kick) {
        if (next_wake) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
            uint64_t wait = next_wake > now ? next_wake - now : 0;
            uint64_t abs = now + (wait < 100000000ull ? wait : 100000000ull);
            ts.tv_sec = (time_t)(abs / 1000000000ull);
            ts.tv_nsec = (long)(abs % 1000000000ull);
            pthread_cond_timedwait(&e->wake, &e->lock, &ts);
        } else {
            pthread_cond_wait(&e->wake, &e->lock);
        }
    }
    e->sched_kick = false;
    pthread_mutex_unlock(&e->lock);
}

/* One token for every sequence of the step (fresh ones: their first, after their prefill);
 * those that end are finished. */
static void emit_tokens(struct engine *e, struct ereq **batch, size_t n_batch, struct ereq **fresh,
                        size_t n_fresh, uint64_t now)
{
    for (size_t i = 0; i < n_fresh; i++) {
        struct ereq *r = fresh[i];
        kvbm_register(e->kv, &r->seq);
        r->prefilled = true;
    }
    for (size_t i = 0; i < n_fresh; i++)
        batch[n_batch++] = fresh[i];
    for (size_t i = 0; i < n_batch; i++) {
        struct ereq *r = batch[i];
        struct token_outcome out = step_token(e, r, now);
        if (!out.done)
            continue;
        pthread_mutex_lock(&e->lock);
        for (size_t k = 0; k < e->n_running; k++) {
            if (e->running[k] == r) {
                remove_running_locked(e, k);
                break;
            }
        }
        pthread_mutex_unlock(&e->lock);
        if (out.oom)
            finish(e, r, NULL, out.cut, 500, "out of memory producing the output");
        else
            finish(e, r, out.reason, out.cut, 0, NULL);
    }
}

/* Stopping: fail everything still queued or running. */
static void fail_all(struct engine *e)
{
    for (;;) {
        pthread_mutex_lock(&e->lock);
        struct ereq *r = NULL;
        if (e->n_running) {
            r = e->running[--e->n_running];
        } else if (e->wait_head) {
            r = pop_wait_locked(e, NULL, e->wait_head);
        }
        pthread_mutex_unlock(&e->lock);
        if (!r)
            break;
        finish(e, r, NULL, true, 503, "the server is shutting down");
    }
}

/* One step: end the cancelled, admit what fits, sleep out the step's modelled cost, emit a token
 * for every sequence. fresh and batch hold max_num_seqs each. */
static void run_step(struct engine *e, struct ereq **fresh, struct ereq **batch)
{
    uint64_t step_start = clock_now_ns();
    end_cancelled(e);
    size_t n_fresh = 0;
    uint64_t next_wake = 0;
    double cost = admit(e, fresh, &n_fresh, step_start, &next_wake);
    size_t context;
    size_t n_batch = decode_batch(e, batch, &context);
    cost += decode_s(e, n_batch, context);
    if (n_fresh == 0 && n_batch == 0) {
        wait_for_work(e, next_wake);
        return;
    }
    if (e->cfg.speedup > 0)
        sleep_until(step_start + (uint64_t)(cost / e->cfg.speedup * 1e9));
    emit_tokens(e, batch, n_batch, fresh, n_fresh, clock_now_ns());
}

static void *sched_main(void *arg)
{
    struct engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->lock);
        while (!e->stopping && !e->wait_head && e->n_running == 0)
            pthread_cond_wait(&e->wake, &e->lock);
        bool stopping = e->stopping;
        pthread_mutex_unlock(&e->lock);
        if (stopping)
            break;
        run_step(e, e->step_fresh, e->step_batch);
    }
    fail_all(e);
    return NULL;
}

static void sched_free_lists(struct engine *e)
{
    free(e->running);
    free(e->step_fresh);
    free(e->step_batch);
    e->running = e->step_fresh = e->step_batch = NULL;
}

int sched_start(struct engine *e, char *err)
{
    size_t n = e->cfg.max_num_seqs;
    e->running = fault_calloc(n, sizeof *e->running);
    e->step_fresh = fault_calloc(n, sizeof *e->step_fresh);
    e->step_batch = fault_calloc(n, sizeof *e->step_batch);
    if (!e->running || !e->step_fresh || !e->step_batch) {
        sched_free_lists(e);
        return err_set(err, "out of memory");
    }
    if (pthread_create(&e->sched, NULL, sched_main, e) != 0) {
        sched_free_lists(e);
        return err_set(err, "cannot start the scheduler thread");
    }
    e->sched_running = true;
    return 0;
}

void sched_submit(struct engine *e, struct ereq *r)
{
    ereq_ref(r); /* the scheduler's reference, dropped in finish() */
    pthread_mutex_lock(&e->fm.lock);
    e->fm.inflight++;
    pthread_mutex_unlock(&e->fm.lock);
    pthread_mutex_lock(&e->lock);
    e->in_flight++;
    if (e->wait_tail)
        e->wait_tail->next = r;
    else
        e->wait_head = r;
    e->wait_tail = r;
    e->sched_kick = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

void sched_stop(struct engine *e)
{
    if (!e->sched_running)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    pthread_cond_broadcast(&e->wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->sched, NULL);
    e->sched_running = false;
    sched_free_lists(e);
}

void sched_kick(struct engine *e)
{
    pthread_mutex_lock(&e->lock);
    e->sched_kick = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

int sched_request_fits(const struct engine *e, size_t prompt_n, size_t max_tokens, struct fit *f)
{
    size_t bs = e->cfg.kv.block_tokens;
    size_t blocks = (prompt_n + max_tokens + bs - 1) / bs;
    f->param = NULL;
    f->msg[0] = '\0';
    if (prompt_n > e->cfg.max_num_tokens) {
        f->param = "prompt";
        snprintf(f->msg, sizeof f->msg,
                 "The prompt length (%zu tokens) exceeds max_num_tokens (%zu); shorten the prompt "
                 "or raise max_num_tokens",
                 prompt_n, e->cfg.max_num_tokens);
    } else if (prompt_n + max_tokens > e->cfg.model.max_context) {
        f->param = "max_tokens";
        snprintf(f->msg, sizeof f->msg,
                 "This model's maximum context length is %zu tokens; the prompt (%zu) plus "
                 "max_tokens (%zu) exceeds it",
                 e->cfg.model.max_context, prompt_n, max_tokens);
    } else if (blocks > e->cfg.kv.g1_blocks) {
        f->param = "max_tokens";
        snprintf(f->msg, sizeof f->msg,
                 "the request needs %zu KV blocks (prompt + max_tokens) but the device cache holds "
                 "%zu",
                 blocks, e->cfg.kv.g1_blocks);
    }
    return f->param ? -1 : 0;
}
