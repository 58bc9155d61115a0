/*
 * merge.h - one run from its shards (kvbench merge, docs/MERGE.md): the run directories that
 * `kvbench run --shard I/N` wrote on several client hosts, checked to belong together, become
 * one run directory like any run's, its summary built by the run's own summary code
 * (verdict/summary.c, the scenarios' verdicts) over a struct run_state rebuilt from the shards'
 * artifacts: every row of requests.jsonl fed to the phase aggregates again, the percentiles of
 * the union of the raw values, the engine's KV deltas once per phase.
 */
#ifndef KVBENCH_RUN_MERGE_H
#define KVBENCH_RUN_MERGE_H

#include "run/runner.h"

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

struct merge_shard {
    char dir[PATH_MAX];
    json_t *config;  /* config.json */
    json_t *summary; /* summary.json; NULL: the shard never finished (killed, or still running) */
    long long index;
};

struct merge_set {
    struct merge_shard *shards; /* in index order */
    size_t n;
    long long count; /* N, the same in every shard */
    char base_run_id[128];
    /* the shard whose record stands for the run where one record is taken (its configuration,
     * engine, node telemetry): the lowest index with a summary.json, else the lowest index */
    const struct merge_shard *ref;
};

/* Read the shards' config.json (and summary.json where there is one) and check that they are
 * shards of one run: each directory readable with a config.json `shard` object, the same
 * config_sha256, count and base_run_id, indices within 0..N-1 and none given twice. Returns 0,
 * or -1 with a one-line err naming the directory (nothing may be written then). Release with
 * merge_close, also after a failure. */
int merge_open(const char *const *dirs, size_t n, struct merge_set *set, char *err);
void merge_close(struct merge_set *set);

struct merge_options {
    const char *results_root;
    const char *run_id; /* NULL: the shards' base_run_id */
    double max_skew_s;  /* the phases' starts may lie this far apart */
    /* the run's configuration, rebuilt from the reference shard's config.json args */
    const struct run_config *cfg;
    const json_t *notes; /* strings for summary.json merge.notes (the caller's), or NULL */
};

struct merge_outcome {
    bool valid;
    char invalid_reason[64];
    char run_dir[PATH_MAX];
    size_t requests; /* rows merged */
};

/* Merge the shards into <results_root>/<run_id>. Returns RUN_OK when the run directory was
 * written (valid or not: see out), RUN_USAGE when nothing was written because the input cannot
 * be merged (a refused run id, an existing directory, a malformed row or snapshot: err names
 * FILE:LINE), RUN_FAILED when writing failed (err). */
int merge_write(const struct merge_set *set, const struct merge_options *o,
                struct merge_outcome *out, char *err);

#endif
