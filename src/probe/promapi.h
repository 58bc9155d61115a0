/*
 * promapi.h - other nodes' metrics from a Prometheus server (`kvbench run --prometheus-url`):
 * instead of scraping the nodes, ask the server that already scrapes them, for every known family
 * (probe/nodes.h NODE_FAMILIES) over a time window, and turn its answers into the same per-node
 * objects a scrape gives. Nothing here fails a run: a server that does not answer, or a query it
 * refuses, is an object that says so (available: false, the reason and the query).
 */
#ifndef KVBENCH_PROBE_PROMAPI_H
#define KVBENCH_PROBE_PROMAPI_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct promapi_config {
    const char *url;   /* the server's root, e.g. http://prometheus:9090 (a trailing / is fine) */
    const char *match; /* a selector merged into every family's ("{job=~\"node|dcgm\"}"), or NULL */
    double timeout_s;  /* each request's, and how long promapi_wait_past waits */
    const volatile sig_atomic_t *stop; /* nonzero: promapi_wait_past stops waiting; may be NULL */
};

/* The query of a family: family<match>. */
void promapi_family_query(const struct promapi_config *cfg, const char *family, char *out,
                          size_t cap);

enum { PROMAPI_BEHIND = -1, PROMAPI_UNAVAILABLE = -2 };

/* Wait until every known family with series (family<match>) has a sample later than t_s,
 * polling each one's max(timestamp(family<match>)), at most cfg->timeout_s; a family with no
 * series waits for nothing. Returns 0; PROMAPI_BEHIND with err when the time ran out (or
 * cfg->stop was set) first (the family furthest behind, how far: the windows can be read, their
 * last samples are older); PROMAPI_UNAVAILABLE with err when the server did not answer, refused
 * the query or no family has a series (nothing can be read). q (qcap) gets the query err is about.
 */
int promapi_wait_past(const struct promapi_config *cfg, double t_s, char *q, size_t qcap,
                      char *err);

/* The nodes' figures over [start_s, end_s]: {NODE: nodes_phase_json + {source: "prometheus",
 * url, instances: [...], missing: [{family, query[, error]}]}}, a node being the series'
 * `node`, `kubernetes_node`, `hostname` or `Hostname` label, else its instance without the port.
 * Each family is read as its raw samples around the window (a range selector at end + a margin),
 * and its value at each end interpolated between the two samples around it (a counter, reset-
 * corrected; a gauge: the last sample at or before it). When no node can be read (the server is
 * not reachable, every query failed, or nothing matched): {"prometheus": {source, url, available:
 * false, reason, query}}. raw, when not NULL, gets {family: the API's answer}. New reference. */
json_t *promapi_window_nodes(const struct promapi_config *cfg, double start_s, double end_s,
                             json_t *raw);

/* The value at t of samples [[ts, "v"], …] (ascending ts), as promapi_window_nodes reads them;
 * counter: reset-corrected (a drop counts from 0) and interpolated. False before the first
 * sample (the series did not exist yet) or when the samples are not numbers. */
bool promapi_value_at(const json_t *values, double t, bool counter, double *out);

#endif
