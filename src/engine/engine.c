/*
 * engine.c - start and stop of the embedded engine: HTTP first (so /health can say not_ready
 * while the rest comes up), then the KV manager and the scheduler. Stop runs in reverse and
 * makes sure no connection is left suspended before libmicrohttpd is stopped (stopping a daemon
 * with suspended connections is an API violation).
 */
#include "engine/engine.h"

#include "engine/internal.h"
#include "engine/sched.h"
#include "engine/server.h"

#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int engine_start(const struct engine_config *cfg, struct engine **out, char *err)
{
    if (cfg->max_num_seqs == 0)
        return err_set(err, "max_num_seqs must be at least 1");
    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return err_set(err, "out of memory");
    e->cfg = *cfg;
    if (!e->cfg.tok)
        e->cfg.tok = tokenizer_heuristic();
    e->t_start_ns = clock_now_ns();
    e->ready_at_ns = e->t_start_ns + (uint64_t)(cfg->startup_delay_s * 1e9);
    e->created = (long long)(clock_wall_ns() / 1000000000ull);
    e->instance_id = (clock_wall_ns() ^ ((uint64_t)getpid() << 32)) & 0x7fffffffffffffffull;
    e->rng = cfg->seed ^ 0x5bd1e995u;
    e->state = ENGINE_STARTING;
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->wake, &ca);
    pthread_cond_init(&e->idle, &ca);
    pthread_condattr_destroy(&ca);
    if (metrics_init(&e->fm) < 0) {
        free(e);
        return err_set(err, "out of memory");
    }
    if (server_start(e, err) < 0)
        goto fail;
    struct kvbm *kv;
    if (kvbm_create(&e->cfg.kv, &kv, err) < 0)
        goto fail;
    e->kv = kv; /* published to the HTTP threads (an atomic store) */
    if (sched_start(e, err) < 0)
        goto fail;
    e->state = ENGINE_SERVING;
    *out = e;
    return 0;
fail:
    engine_stop(e);
    return -1;
}

int engine_port(const struct engine *e)
{
    return e->port;
}

int engine_metrics_port(const struct engine *e)
{
    return e->metrics_d ? e->metrics_port : -1;
}

struct kvbm *engine_kvbm(struct engine *e)
{
    return e->kv;
}

void engine_begin_drain(struct engine *e)
{
    e->state = ENGINE_DRAINING;
}

size_t engine_wait_idle(struct engine *e, double timeout_s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t deadline =
        (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + (uint64_t)(timeout_s * 1e9);
    ts.tv_sec = (time_t)(deadline / 1000000000ull);
    ts.tv_nsec = (long)(deadline % 1000000000ull);
    pthread_mutex_lock(&e->lock);
    while (e->in_flight > 0) {
        if (pthread_cond_timedwait(&e->idle, &e->lock, &ts) != 0)
            break;
    }
    size_t left = e->in_flight;
    pthread_mutex_unlock(&e->lock);
    return left;
}

void engine_stop(struct engine *e)
{
    if (!e)
        return;
    e->state = ENGINE_DRAINING;
    /* Fails whatever is still queued or running, which resumes every suspended connection. */
    sched_stop(e);
    /* Give those connections a moment to send their last bytes and complete. */
    uint64_t deadline = clock_now_ns() + 2000000000ull;
    for (;;) {
        pthread_mutex_lock(&e->lock);
        size_t live = e->live_reqs;
        pthread_mutex_unlock(&e->lock);
        if (live == 0 || clock_now_ns() > deadline)
            break;
        clock_sleep_ns(5000000, NULL);
    }
    server_stop(e);
    if (e->kv) {
        kvbm_destroy(e->kv, e->cfg.keep_cache);
        e->kv = NULL;
    }
    metrics_free(&e->fm);
    pthread_cond_destroy(&e->wake);
    pthread_cond_destroy(&e->idle);
    pthread_mutex_destroy(&e->lock);
    free(e);
}
