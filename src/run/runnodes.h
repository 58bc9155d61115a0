/*
 * runnodes.h - other nodes' metrics in a run (`--scrape NAME=URL`, `--prometheus-url URL`):
 * every node scraped before and after each phase (phase_state.nodes), or, with a Prometheus
 * server, every phase's window asked of it once the last phase is over; summary.json carries
 * them per phase with the cluster's roll-up (verdict/summary.c), eviction_replay's I/O verdict
 * reads their disks (scenario/scen_eviction_replay.c). A node that cannot be read says why
 * (available: false) and never fails the run.
 */
#ifndef KVBENCH_RUN_RUNNODES_H
#define KVBENCH_RUN_RUNNODES_H

#include "probe/nodes.h"
#include "scenario/runstate.h"

#include <jansson.h>
#include <signal.h>

struct run_nodes;

/* What the run asked for (struct run_config's fields of the same names). */
struct run_nodes_config {
    const char **scrape; /* NAME=URL */
    size_t n_scrape;
    const char *prometheus_url, *prometheus_match; /* NULL: none */
    double prometheus_timeout_s;
    double scrape_timeout_s; /* each scrape's (--kvbm-metrics-timeout-s) */
};

/* The nodes of cfg (copied; its strings must outlive the result); NULL when it names none, or
 * (err) when a --scrape value is malformed (run_flags_config has refused those already). */
struct run_nodes *run_nodes_new(const struct run_nodes_config *cfg, char *err);
/* The --scrape targets (for the telemetry sampler); borrowed, valid until run_nodes_free. */
const struct node_target *run_nodes_targets(const struct run_nodes *rn, size_t *n);
/* Scrape every --scrape node: the snapshots before a phase. */
void run_nodes_before(struct run_nodes *rn);
/* Scrape them again and set ps->nodes ({NAME: the node's figures, source "scrape", url}). */
void run_nodes_after(struct run_nodes *rn, struct phase_state *ps);
/* --prometheus-url: wait until the server has scraped past the last phase (an interrupted run,
 * *stop nonzero, waits no longer), then every phase that ran gets its nodes' figures over its
 * window (merged into ps->nodes); the server's answers go to
 * <run_dir>/telemetry/prometheus_<family>.json ({phase: answer}). What went wrong is one
 * {code, message} in warnings. */
void run_nodes_prometheus(struct run_nodes *rn, struct run_state *rs, const char *run_dir,
                          const volatile sig_atomic_t *stop, json_t *warnings);
void run_nodes_free(struct run_nodes *rn);

#endif
