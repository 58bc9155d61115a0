/*
 * shard.h - one run driven from several client processes: `kvbench run --shard I/N` (docs/RUN.md
 * "Several client hosts: --shard"). Shards never talk to each other. Each computes from the same
 * flags, alike, which part of the load is its own (positions p with p % N == I of every phase's
 * requests, C/N of a concurrency, R/N of a rate), the name of its run directory and a hash of
 * the flags that says which shards belong together; and each starts its phases at wall-clock
 * times that every shard derives alike from files in a directory they all reach (--shard-sync):
 * after phase k each writes its end, and phase k+1 starts at the latest end + 0.5 s.
 */
#ifndef KVBENCH_RUN_SHARD_H
#define KVBENCH_RUN_SHARD_H

#include "analysis/signals.h"
#include "load/loadgen.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHARD_COUNT_MAX 4096
/* A phase starts this long after the last shard ended the one before (the files' latest end). */
#define SHARD_BARRIER_MARGIN_S 0.5

/* A barrier's start ahead of this host's clock by more than this (or --shard-wait-s, if less)
 * beyond the margin: a shard's clock is off (shard_skew), and no shard sleeps until then. */
#define SHARD_AHEAD_MAX_S 10.0

/* --shard I/N: shard `index` of `count` (0 <= index < count). count 0: not sharded, and every
 * function below then leaves the load whole. */
struct shard_spec {
    size_t index, count;
};

/* Parse "I/N" (decimal, 0 <= I < N <= SHARD_COUNT_MAX). Returns 0, or -1 with a one-line err. */
int shard_parse(const char *text, struct shard_spec *out, char *err);
/* This shard's part of a closed-loop concurrency (or any count of slots): total / N, the
 * remainder to the lowest indices; total when not sharded. */
size_t shard_split(size_t total, const struct shard_spec *s);
/* How many of the positions 0..n-1 are this shard's (p % N == I); n when not sharded. */
size_t shard_count(size_t n, const struct shard_spec *s);
/* The position of this shard's k-th request (I + k * N); k when not sharded. */
size_t shard_pos(size_t k, const struct shard_spec *s);
/* The shard's run directory name: "<base>-shard<I>of<N>". Returns 0, or -1 when it does not fit
 * cap. */
int shard_dir_name(const char *base, const struct shard_spec *s, char *out, size_t cap);
/* The keys of config.json `args` that differ between the shards of one run (NULL-terminated):
 * shard, run_id, results_root, start_at, shard_sync, shard_wait_s. */
extern const char *const SHARD_PER_SHARD_ARGS[];
/* The host-local keys of config.json `args` (NULL-terminated): logging, progress, telemetry, the
 * tokenizer's path, the local devices and directories, the report's file name. They differ from
 * host to host and change nothing of the load; config_sha256 leaves them out, and so does kvbench
 * merge when it rebuilds the run's configuration. */
extern const char *const SHARD_HOST_ARGS[];
/* Both lists in one, NULL-terminated, into out (cap entries, the NULL included): the args that
 * config_sha256 leaves out and that kvbench merge leaves at their defaults. Returns the count. */
size_t shard_skip_args(const char **out, size_t cap);
/* config.json shard.config_sha256: the SHA-256 of the canonical JSON of the run's `args` without
 * the entries that differ between the shards of one run (shard, run_id, results_root, start_at,
 * shard_sync, shard_wait_s) and the host-local ones (SHARD_HOST_ARGS). Returns 0 or -1. */
int shard_config_sha256(const json_t *args, char out[65]);

/* --shard and its barrier's flags, as the run is given them (run_config.shard). */
struct shard_config {
    struct shard_spec spec; /* count 0: not sharded */
    double start_at;        /* --start-at: epoch seconds of the first phase's start; 0: none */
    const char *sync_dir;   /* --shard-sync: the barrier's directory; NULL: <root>/<id>.sync */
    double wait_s;          /* --shard-wait-s: how long a shard waits for the others */
};

/* A shard's part of one run, for shard_run_open (strings borrowed for the run's life). */
struct shard_open {
    const struct shard_config *cfg;
    const char *base_run_id, *results_root;
    char config_sha256[65];
    json_t *warnings; /* summary.json's: start_late, shard_peer_stopped */
    /* the whole run's load as asked (config.json shard.split) */
    double request_rate;
    long long concurrency;
    size_t max_concurrency;
    enum arrival arrival;
};

struct shard_run;

/* Start a shard's part of the run: the barrier directory (made when missing), the load split.
 * Returns 0; SHARD_REFUSED when the directory holds this shard's files of an earlier run (a
 * barrier would pass at once), or -1 when it cannot be made (err; *out NULL). */
#define SHARD_REFUSED (-2)
int shard_run_open(const struct shard_open *o, struct shard_run **out, char *err);
void shard_run_free(struct shard_run *s);
/* The load generator's open loop split: --request-rate R/N, --max-concurrency split, constant
 * arrivals offset by I/R s (so that the shards' union is evenly spaced), and an arrival seed of
 * the shard's own (independent Poisson or gamma streams of R/N add up to one of R). Nothing when
 * s is NULL (not sharded). */
void shard_load(const struct shard_run *s, struct loadgen *lg);
/* Record phase k of the whole run (before the split), for config.json shard.phases. */
void shard_note_phase(struct shard_run *s, size_t k, const char *name, size_t requests,
                      size_t concurrency);
/* A filtered copy of a scenario's schedule of n due offsets: those of this shard's positions
 * (owned by s). NULL when out of memory. */
const double *shard_schedule(struct shard_run *s, const double *schedule, size_t n);

/* Before phase k (named phase): when it may start. Phase 0 starts at --start-at, or, without it,
 * once every shard is ready; phase k > 0 once every shard has ended phase k-1. *t0_ns (in: the
 * scenario's own start, clock_now_ns time, 0: none) becomes the later of it and that time.
 * Returns 0; or -1 when the phase must not run: interrupted, a shard did not come within
 * --shard-wait-s (v gets shard_missing naming the shards and the phase), or the start the files
 * give is further ahead of this host's clock than shard_ahead_limit_s (v gets shard_skew naming
 * the shard whose clock is ahead). */
int shard_gate(struct shard_run *s, size_t k, const char *phase,
               const volatile sig_atomic_t *interrupted, struct validity *v, uint64_t *t0_ns);
/* The phase that the last shard_gate let through starts its load now (now_ns, clock_now_ns time;
 * now_wall_s, epoch seconds), its "before" readings taken after the barrier: returns its
 * schedule's zero: t0_ns, or now when t0_ns passed more than SHARD_BARRIER_MARGIN_S ago (the
 * readings, node scrapes, overran the margin), so that time spent reading is not charged to its
 * first requests' schedule lag (a warning shard_phase_late says so). The barrier's record gets
 * started_at and late_s. */
uint64_t shard_started(struct shard_run *s, uint64_t t0_ns, uint64_t now_ns, double now_wall_s);
/* How far ahead of this host's clock a barrier's start may be: SHARD_BARRIER_MARGIN_S plus the
 * lesser of --shard-wait-s and SHARD_AHEAD_MAX_S. Further, shard_gate fails with shard_skew. */
double shard_ahead_limit_s(double wait_s);
/* Phase k ended at end_wall_s (epoch seconds): tell the other shards. Returns 0; or -1 when its
 * barrier file could not be written (v gets shard_missing naming this shard, the file and why:
 * the others will miss it, so it must not go on as if it were there). */
int shard_done(struct shard_run *s, size_t k, double end_wall_s, struct validity *v);
/* The run is over for this shard: phases k.. of n_phases that it did not end are marked skipped,
 * so that no other shard waits for them. */
void shard_finish(struct shard_run *s, size_t n_phases);
/* config.json and summary.json `shard`: {index, count, base_run_id, start_at, sync_dir,
 * config_sha256, split, phases}. New reference. */
json_t *shard_json(const struct shard_run *s);

#endif
