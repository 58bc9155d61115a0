/*
 * nodes.h - other nodes' metrics (`kvbench run --scrape NAME=URL`, `--prometheus-url`): what a
 * node's exporters say at one instant (struct node_snap: every series of the known families),
 * read from a Prometheus text endpoint here or from a Prometheus server (probe/promapi.h); one
 * node's per-phase object from two of them (disk, network, memory, GPU and KV figures), and the
 * cluster roll-up over the nodes of a phase. The known families are one table (NODE_FAMILIES):
 * node_exporter's disk, network and memory, dcgm-exporter's GPU, KVBM's and kvbench serve's KV.
 */
#ifndef KVBENCH_PROBE_NODES_H
#define KVBENCH_PROBE_NODES_H

#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define NODE_NAME_MAX 64

/* One --scrape NAME=URL. */
struct node_target {
    char name[NODE_NAME_MAX]; /* [A-Za-z0-9_.-]+: it names telemetry/nodes_<NAME>.csv */
    const char *url;          /* http:// or https://; points into the spec */
};

/* One node's metrics at one instant: every sample of the known families, keyed by the series'
 * identity "family{k="v",…}" (label names sorted; Prometheus' own target labels instance/job and
 * __name__ dropped) → value. */
struct node_snap {
    bool ok;
    char error[256]; /* why not ok: connection refused, HTTP 404, no known family, the query */
    double wall_s;   /* epoch seconds the values belong to */
    json_t *series;  /* {"node_disk_read_bytes_total{device=\"sda\"}": 1234, …}; NULL when !ok */
    size_t collided; /* samples left out: their key was another series' (the first one is kept) */
};

enum node_kind { NODE_COUNTER, NODE_GAUGE };
enum node_section { NODE_DISK, NODE_NETWORK, NODE_MEMORY, NODE_GPU, NODE_KV };

struct node_family {
    const char *name; /* as the table spells it; a sample named with or without _total matches */
    enum node_kind kind;
    enum node_section section;
};

/* Every known family, ended by {NULL}. */
extern const struct node_family NODE_FAMILIES[];

/* The known family a sample's name belongs to (its name, or its name with or without one
 * "_total": never "x_total_total"), or NULL. */
const struct node_family *nodes_family(const char *name, size_t len);

/* Parse "NAME=URL" (NAME: 1 to 63 of [A-Za-z0-9_.-]; URL: http:// or https://). Returns 0, or -1
 * with a one-line err naming --scrape. */
int nodes_target_parse(const char *spec, struct node_target *out, char *err);

/* One label of a series, for nodes_series_key. */
struct node_label {
    const char *name;
    size_t name_len;
    const char *value; /* unescaped, NUL-terminated */
};

/* The series' identity into out: family{k="v",…} with the labels sorted by name (labels may be
 * reordered), values escaped as in the text format, instance, job and __name__ left out. Returns
 * 0, or -1 when out failed. */
int nodes_series_key(struct buf *out, const char *family, struct node_label *labels, size_t n);
/* A label's value in a series key (unescaped into out, cut to cap - 1). False when absent. */
bool nodes_key_label(const char *key, const char *label, char *out, size_t cap);

/* The known families' series of a Prometheus text body into out->series; out->ok false (with
 * why) when it carries none of them. out->wall_s is left as it is. */
void nodes_parse(const char *body, size_t len, struct node_snap *out);
/* Scrape url (timeout_s): never fails; a failed scrape is a snap with ok == false and why
 * (connection refused, HTTP 404, no known family). wall_s: the middle of the request. */
void nodes_scrape(const char *url, double timeout_s, struct node_snap *out);
void node_snap_free(struct node_snap *s);

/* One node's figures over a phase, from its snaps before and after:
 *   {available: true, seconds,
 *    disk: {read_bytes, written_bytes, reads_completed, writes_completed, read_mib_delta,
 *           write_mib_delta, read_mb_s, write_mb_s, devices: [counted], by_device: {dev: {…}}},
 *    network: {receive_bytes, transmit_bytes, by_device},
 *    memory: {<family>_after}, gpu: {gpus, <family>_after, by_gpu},
 *    kv: {the kvbm_metrics_delta keys of probe/kvsnap.h, kvbench_*_delta},
 *    counter_resets: [series],   (only when a counter went back)
 *    series_without_start: [series], (only when a counter had no value before the phase)
 *    collided_series: N}         (only when series shared a key: the first one was kept)
 * A section is null when the node carries none of its families; a figure whose family is
 * missing is null, never 0. Counters: a series absent before has no delta (it began during the
 * phase; from 0 it would count everything since boot): it stays out of every figure and is named
 * in series_without_start, and a figure none of whose series started is null; one that went
 * back (a restart) counts from 0 again, never negative. The disk and network totals leave out what
 * stacks on other devices or is not a disk (nodes.c: device-mapper dm-*, md*, loop*, ram*,
 * zram*, a partition of a disk also listed; the network's lo), kept in by_device.
 * Either snap not ok: {available: false, reason}. New reference. */
json_t *nodes_phase_json(const struct node_snap *before, const struct node_snap *after);

/* The roll-up of one phase's nodes ({NAME: nodes_phase_json + {source, …}}) over one source
 * (a node read both by --scrape and by --prometheus-url would count twice): the scraped nodes
 * when there is one, else the Prometheus ones. {source, nodes, nodes_available (of that source),
 * not_summed: [NAME] (the other source's; only when any), disk: {read_bytes, written_bytes,
 * read_mib_delta, write_mib_delta}, network: {receive_bytes, transmit_bytes}, kv: {<key>_delta
 * summed}}; each sum null when no available node had it. A node without source counts as
 * scraped. New reference. */
json_t *nodes_cluster_json(const json_t *nodes);

#endif
