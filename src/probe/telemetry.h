/*
 * telemetry.h - the collectors behind `kvbench run --collect-telemetry` (SPEC §6): a sampler
 * thread that every interval writes one row per device / process / GPU / metrics scrape to CSV
 * files, cache-directory snapshots taken when asked, and container logs collected at the end.
 * Telemetry knows nothing of scenarios: the caller names the current period with a label (a
 * phase name) and asks for snapshots by label. A collector that fails records why in
 * telemetry_report.json and never fails the run.
 */
#ifndef KVBENCH_PROBE_TELEMETRY_H
#define KVBENCH_PROBE_TELEMETRY_H

#include "probe/nodes.h"

#include <jansson.h>
#include <stdbool.h>

struct telemetry_config {
    const char *out_dir; /* created; e.g. <run>/telemetry */
    double interval_s;
    const char *device;       /* block device to sample, or NULL */
    const char *device_error; /* why there is none */
    const char *pid_spec;     /* ALL, PIDs, or a name pattern */
    const char *metrics_url;  /* NULL: no metrics time series */
    double metrics_timeout_s;
    const char *cache_dir;
    const char *container; /* docker container name */
    const char *procfs;    /* "/proc" */
    double container_timeout_s;
    /* other nodes scraped every interval (--scrape): raw series to nodes_<NAME>.csv; the
     * targets must outlive the telemetry */
    const struct node_target *nodes;
    size_t n_nodes;
};

struct telemetry;

/* Create the output directory and start the sampler. NULL with err when the directory cannot be
 * created (the caller goes on without telemetry). */
struct telemetry *telemetry_start(const struct telemetry_config *cfg, char *err);
/* Rows sampled from now on carry this label. The disk row that ends at the change is taken at
 * once and carries the label that ends, so a row never spans two labels. */
void telemetry_set_label(struct telemetry *t, const char *label);
/* Snapshot the cache directory as kvbm_<label>_files.txt and keep it for churn. */
void telemetry_cache_snapshot(struct telemetry *t, const char *label);
/* Churn between two snapshots taken earlier. New reference. */
json_t *telemetry_cache_churn(struct telemetry *t, const char *before, const char *after);
/* Disk figures of the samples that carried label: {samples, peak_read_mb_s, peak_write_mb_s,
 * mean_read_mb_s, mean_write_mb_s, peak_util_pct}; the means weighted by the seconds each sample
 * spans. New reference. */
json_t *telemetry_label_stats(struct telemetry *t, const char *label);
/* GPU figures of the samples that carried label: {samples, peak_mem_used_mib (summed over the
 * GPUs), mean_util_pct, peak_util_pct (the busiest GPU's)}; NULL when no GPU is sampled. New
 * reference. */
json_t *telemetry_label_gpu(struct telemetry *t, const char *label);
/* Stop the sampler and collect container logs. */
void telemetry_stop(struct telemetry *t);
/* Container image and id for the fingerprint, or NULL. Borrowed. */
const json_t *telemetry_container(const struct telemetry *t);
/* Write cache_churn.json (the given per-phase object) and telemetry_report.json. */
int telemetry_write_reports(struct telemetry *t, const json_t *churn, char *err);
/* The latest disk sample's read and write MB/s; false before the first one. */
bool telemetry_disk_now(struct telemetry *t, double *read_mb_s, double *write_mb_s);
void telemetry_free(struct telemetry *t);

#endif
