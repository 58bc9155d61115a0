/*
 * signals.h - the verdicts of SPEC §5.4, as pure functions of the per-phase delta objects so
 * that every branch is unit-tested.
 */
#ifndef KVBENCH_BENCH_SIGNALS_H
#define KVBENCH_BENCH_SIGNALS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* eviction_replay_signal_io from the io_delta objects (NULL when the device was unreadable). */
json_t *signal_eviction_io(const json_t *warm_io, const json_t *pressure_io,
                           const json_t *replay_io);
/* eviction_replay_signal_kvbm from the kvbm_metrics_delta objects of warm_A, pressure_B and
 * replay_A (each may be {available: false}). */
json_t *signal_eviction_kvbm(const json_t *warm, const json_t *pressure, const json_t *replay);
/* reuse_verify_signal_kvbm from the deltas of reuse_1..reuse_n (n = 2 or 3) and the
 * cached_tokens the server reported for each repeat (-1 when absent). */
json_t *signal_reuse_kvbm(const json_t *const *deltas, const long long *cached, size_t n);
/* reuse_verify_identity from the ordered hash lists of the repeats (n strings each). */
json_t *signal_reuse_identity(const char *const *prompt_sha, const char *const *params_sha,
                              const char *const *identity_sha, const char *const *payload_sha,
                              size_t n);

/* Run validity: the first reason recorded wins; every reason adds a detail. */
struct validity {
    const char *reason; /* NULL: valid */
    json_t *details;    /* array */
};
void validity_init(struct validity *v);
void validity_add(struct validity *v, const char *reason, json_t *detail);
void validity_free(struct validity *v);

#endif
