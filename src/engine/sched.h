/*
 * sched.h - the engine's continuous-batching scheduler and the life of a request (struct ereq,
 * internal.h) from submission to its end. It knows nothing of HTTP: it hands output to a request
 * under the request's lock and calls the request's wake_locked hook, which the server sets.
 */
#ifndef KVBENCH_ENGINE_SCHED_H
#define KVBENCH_ENGINE_SCHED_H

#include "engine/internal.h"

#include <stddef.h>

/* A new request of e with one reference (the caller's); NULL when out of memory. */
struct ereq *ereq_new(struct engine *e);
void ereq_ref(struct ereq *r);
/* Drop a reference; the last one frees the request. */
void ereq_unref(struct ereq *r);

/* The one "does the request fit" check (context, max_num_tokens, device blocks). */
struct fit {
    const char *param; /* the request field at fault */
    char msg[300];
};
int sched_request_fits(const struct engine *e, size_t prompt_n, size_t max_tokens, struct fit *f);

/* Start the scheduler thread. Returns 0 or -1 with err. */
int sched_start(struct engine *e, char *err);
/* Queue r (its plan_len set) for the scheduler, which takes its own reference. */
void sched_submit(struct engine *e, struct ereq *r);
/* Something the scheduler may wait for happened (a request was cancelled, a paused stream's
 * client took its output): look again before sleeping. */
void sched_kick(struct engine *e);
/* Stop the scheduler thread; requests still in flight are failed. */
void sched_stop(struct engine *e);
/* A random double in [0, 1) from the engine's fault RNG (locks e->lock). */
double sched_random(struct engine *e);

#endif
