/*
 * signals.h - the verdicts of SPEC §5.4, as pure functions of the per-phase delta objects so
 * that every branch is unit-tested.
 */
#ifndef KVBENCH_ANALYSIS_SIGNALS_H
#define KVBENCH_ANALYSIS_SIGNALS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* eviction_replay_signal_io from the io_delta objects (NULL when the device was unreadable). */
json_t *signal_eviction_io(const json_t *warm_io, const json_t *pressure_io,
                           const json_t *replay_io);
/* eviction_replay_signal_io from other nodes' disks: the `nodes` objects of warm_A, pressure_B
 * and replay_A ({NAME: {source, available, disk: {read_mib_delta, write_mib_delta, …}}},
 * probe/nodes.h; each may be NULL). Every node whose disk figures both warm_A and replay_A have
 * is judged as signal_eviction_io judges the local device (per_node: {NAME: signal object, or
 * {signal: io_unavailable, reason}}); the verdict is the node that read back most clearly
 * (possible_readback first, then the most MiB read in replay_A), with node: NAME and source
 * ("scrape" or "prometheus"), its interpretation naming it. New reference; NULL when no node
 * has the figures: the local device stays the evidence. */
json_t *signal_eviction_io_nodes(const json_t *warm, const json_t *pressure, const json_t *replay);
/* eviction_replay_signal_kvbm from the kvbm_metrics_delta objects of warm_A, pressure_B and
 * replay_A (each may be {available: false}; the engine's generic fields are read from its
 * engine_delta, else from KVBM's keys) and the cached tokens the responses of replay_A reported
 * (summed; < 0 when none did). A field the engine does not report is never read as 0: an engine
 * with no tier breakdown gets reuse_in_replay_tier_unknown, not a false no_onboard. */
json_t *signal_eviction_kvbm(const json_t *warm, const json_t *pressure, const json_t *replay,
                             double replay_cached);
/* Completes an eviction_replay_signal_kvbm that saw no reuse at all (no_onboard_no_reuse_signal)
 * with what the requests' payload hashes say: replay_hashes distinct payloads were sent in
 * replay_A, in_warm of them also in warm_A (-1: unknown). Fewer in warm_A: the diagnosis is
 * prompts_not_identical; all: engine_reused_nothing (the same bytes came back and the engine
 * matched none of them). */
void signal_eviction_identity(json_t *sig, long replay_hashes, long in_warm);
/* Completes an eviction_replay_signal_kvbm when the engine has no disk tier (why: "kv mode
 * cpu_only", "the engine reports a disk tier of 0 blocks"): nothing can come back from disk, so
 * any diagnosis about the disk (an offload filter, too little pressure) would mislead; the
 * diagnosis is no_disk_tier and the interpretation says what a cpu_only baseline shows. */
void signal_eviction_no_disk_tier(json_t *sig, const char *why);
/* reuse_verify_signal_kvbm from the deltas of reuse_1..reuse_n (n = 2 or 3), the cached tokens
 * each repeat's response reported (usage or llama.cpp timings; -1 when absent) and its TTFT
 * (NaN when not measured; ttft_ms may be NULL). Engine counters or per-response cached tokens
 * decide; the TTFT ratio is reported as indirect evidence only. */
json_t *signal_reuse_kvbm(const json_t *const *deltas, const long long *cached,
                          const double *ttft_ms, size_t n);
/* reuse_verify_identity from the ordered hash lists of the repeats (n strings each). */
json_t *signal_reuse_identity(const char *const *prompt_sha, const char *const *params_sha,
                              const char *const *identity_sha, const char *const *payload_sha,
                              size_t n);

/* The rules that make a run invalid (SPEC §4.5): one row per reason, read by validity_add (a
 * reason outside the table is a bug, logged), by report.md (what the reason means) and checked
 * against docs/RUN.md's table by the tests. */
struct validity_rule {
    const char *reason;
    const char *when; /* one sentence: what happened */
};
extern const struct validity_rule VALIDITY_RULES[]; /* ends with {NULL, NULL} */
const struct validity_rule *validity_rule(const char *reason);

/* Run validity: the first reason recorded wins; every reason adds a detail. */
struct validity {
    const char *reason; /* NULL: valid */
    json_t *details;    /* array */
};
void validity_init(struct validity *v);
void validity_add(struct validity *v, const char *reason, json_t *detail);
void validity_free(struct validity *v);
/* invalid_details as the reference harness writes them: a list of strings (a detail's "errors"
 * strings, else its "message", else its reason). New reference. */
json_t *validity_strings(const struct validity *v);

#endif
