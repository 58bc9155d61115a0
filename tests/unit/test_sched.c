/*
 * test_sched.c - the continuous-batching scheduler at its seam: requests built as the server
 * builds them (struct ereq) are submitted with sched_submit to a small engine (2 sequences at
 * most, 48 device blocks of 32 tokens, no modelled time), and the test reads what the scheduler
 * did from each request: when its first and last tokens came (one `now` per step, so two
 * requests with the same first-token time were in the same step), how many it got, how it ended.
 * Checked: a step batches up to max_num_seqs, in arrival order; a request that does not fit in
 * the free device blocks waits for a release; a stream whose client left the bound unread is
 * paused and resumes when its output is taken; a cancelled request ends (waiting or running)
 * and gives its blocks back.
 */
#include "test_common.h"
#include "support/test_engine.h"

#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/sched.h"
#include "model/tokenizer.h"
#include "util/clock.h"

static struct engine *eng;

static int setup(void **state)
{
    (void)state;
    struct engine_config cfg = test_engine_config();
    char err[256] = "";
    if (engine_start(&cfg, &eng, err) < 0) {
        fprintf(stderr, "engine_start: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    engine_stop(eng);
    eng = NULL;
    return 0;
}

/* A request as the server makes one: prompt_n distinct token ids from base, max_tokens tokens
 * to generate (ignore_eos: exactly that many), admitted no earlier than delay_ms from now. */
static struct ereq *make_req(uint32_t base, size_t prompt_n, size_t max_tokens, bool stream,
                             double delay_ms)
{
    struct ereq *r = ereq_new(eng);
    assert_non_null(r);
    snprintf(r->id, sizeof r->id, "t-%u", base);
    snprintf(r->cmpl_id, sizeof r->cmpl_id, "cmpl-t-%u", base);
    snprintf(r->model, sizeof r->model, "m");
    for (size_t i = 0; i < prompt_n; i++)
        assert_int_equal(tok_ids_push(&r->prompt, base + (uint32_t)i), 0);
    r->max_tokens = max_tokens;
    r->ignore_eos = true;
    r->stream = stream;
    r->seed = base;
    textgen_init(&r->gen, r->seed);
    r->plan_len = textgen_plan_length(&r->gen, r->max_tokens, r->ignore_eos);
    r->t_arrival_ns = clock_now_ns();
    r->not_before_ns = r->t_arrival_ns + (uint64_t)(delay_ms * 1e6);
    return r;
}

static bool is_done(struct ereq *r)
{
    pthread_mutex_lock(&r->lock);
    bool done = r->done;
    pthread_mutex_unlock(&r->lock);
    return done;
}

/* Wait up to timeout_ms for r to finish. */
static bool wait_done(struct ereq *r, int timeout_ms)
{
    for (int i = 0; i < timeout_ms; i++) {
        if (is_done(r))
            return true;
        clock_sleep_ns(1000000, NULL);
    }
    return is_done(r);
}

static void assert_finished(struct ereq *r, size_t tokens)
{
    assert_true(wait_done(r, 10000));
    pthread_mutex_lock(&r->lock);
    assert_false(r->cut);
    assert_int_equal(r->error_status, 0);
    assert_int_equal(r->generated, tokens);
    assert_string_equal(r->finish_reason, "length");
    pthread_mutex_unlock(&r->lock);
}

/* max_num_seqs 2: the first two arrivals share their steps, the third starts when they end. */
static void test_batching_in_arrival_order(void **state)
{
    (void)state;
    struct ereq *r[3];
    for (int i = 0; i < 3; i++) /* all eligible at once, 200 ms from now */
        r[i] = make_req(1000u * (uint32_t)(i + 1), 64, 4, false, 200);
    for (int i = 0; i < 3; i++)
        sched_submit(eng, r[i]);
    for (int i = 0; i < 3; i++)
        assert_finished(r[i], 4);
    assert_true(r[0]->t_first_ns == r[1]->t_first_ns);
    assert_true(r[0]->t_last_ns == r[1]->t_last_ns);
    assert_true(r[2]->t_first_ns > r[0]->t_last_ns);
    assert_true(r[0]->t_first_ns >= r[0]->not_before_ns);
    for (int i = 0; i < 3; i++)
        ereq_unref(r[i]);
    assert_int_equal(engine_wait_idle(eng, 5), 0);
}

/* Two requests of 30 blocks each in 48: the second waits for the first's release. */
static void test_admission_waits_for_blocks(void **state)
{
    (void)state;
    struct ereq *a = make_req(5000, 64, 896, false, 0);
    struct ereq *b = make_req(9000, 64, 896, false, 0);
    sched_submit(eng, a);
    sched_submit(eng, b);
    assert_finished(a, 896);
    assert_finished(b, 896);
    assert_true(b->t_first_ns > a->t_last_ns);
    ereq_unref(a);
    ereq_unref(b);
    assert_int_equal(engine_wait_idle(eng, 5), 0);
}

/* A stream whose client left the bound unread: as the scheduler sees it after its first token. */
static struct ereq *paused_stream(uint32_t base, size_t max_tokens)
{
    struct ereq *s = make_req(base, 64, max_tokens, true, 0);
    size_t limit = engine_stream_out_limit(eng);
    char *junk = malloc(limit);
    assert_non_null(junk);
    memset(junk, 'x', limit);
    buf_append(&s->out, junk, limit); /* unread bytes already waiting */
    free(junk);
    assert_false(buf_failed(&s->out));
    sched_submit(eng, s);
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&s->lock);
        bool paused = s->paused;
        pthread_mutex_unlock(&s->lock);
        if (paused)
            return s;
        clock_sleep_ns(1000000, NULL);
    }
    fail_msg("the stream was not paused");
    return NULL;
}

static size_t out_len(struct ereq *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->out.len;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static void test_backpressure_pause(void **state)
{
    (void)state;
    struct ereq *s = paused_stream(20000, 8);
    /* others go on while it waits */
    struct ereq *o = make_req(30000, 64, 4, false, 0);
    sched_submit(eng, o);
    assert_finished(o, 4);
    size_t held = out_len(s);
    clock_sleep_ns(100000000, NULL);
    assert_false(is_done(s));
    assert_int_equal(out_len(s), held); /* no token while paused */
    /* its client takes the output (what the stream reader does): it resumes to its end */
    pthread_mutex_lock(&s->lock);
    buf_consume(&s->out, s->out.len);
    s->paused = false;
    pthread_mutex_unlock(&s->lock);
    sched_kick(eng);
    assert_finished(s, 8);
    assert_non_null(strstr(buf_cstr(&s->out), "data: [DONE]"));
    ereq_unref(s);
    ereq_unref(o);
    assert_int_equal(engine_wait_idle(eng, 5), 0);
}

static void cancel(struct ereq *r)
{
    pthread_mutex_lock(&r->lock);
    r->cancelled = true;
    pthread_mutex_unlock(&r->lock);
    sched_kick(eng);
}

static void assert_cut(struct ereq *r, int within_ms)
{
    assert_true(wait_done(r, within_ms));
    pthread_mutex_lock(&r->lock);
    assert_true(r->cut);
    pthread_mutex_unlock(&r->lock);
}

static void test_cancellation(void **state)
{
    (void)state;
    /* waiting (stalled 10 s): it ends now, not after the stall */
    struct ereq *w = make_req(40000, 64, 4, false, 10000);
    sched_submit(eng, w);
    clock_sleep_ns(50000000, NULL);
    assert_false(is_done(w));
    cancel(w);
    assert_cut(w, 2000);
    assert_int_equal(w->generated, 0);

    /* running (a paused stream holding 3 blocks): a request for all 48 waits until it ends */
    struct ereq *s = paused_stream(50000, 8);
    struct ereq *big = make_req(60000, 64, 48 * 32 - 64, false, 0);
    sched_submit(eng, big);
    clock_sleep_ns(100000000, NULL);
    assert_false(is_done(big));
    cancel(s);
    assert_cut(s, 2000);
    assert_finished(big, 48 * 32 - 64); /* the cancelled stream's blocks were given back */
    ereq_unref(w);
    ereq_unref(s);
    ereq_unref(big);
    assert_int_equal(engine_wait_idle(eng, 5), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batching_in_arrival_order),
        cmocka_unit_test(test_admission_waits_for_blocks),
        cmocka_unit_test(test_backpressure_pause),
        cmocka_unit_test(test_cancellation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
