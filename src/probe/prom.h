/*
 * prom.h - Prometheus text exposition parser.
 *
 * Handles every metric family type (the parser does not need TYPE lines), labels with escaped
 * values (\\, \", \n), comments, blank lines, NaN / +Inf / -Inf values and optional timestamps.
 * Samples of one name are summed across label sets, which is how kvbench reads KVBM counters that
 * a deployment may split by worker or tier. Malformed lines are skipped and counted, never fatal.
 * A sample carrying one of PROM_SPLIT_LABELS is also counted under `name{label="value"}`, so that
 * an engine's per-tier split (SGLang's cache_source, KVBM's tier) can be read.
 */
#ifndef KVBENCH_PROBE_PROM_H
#define KVBENCH_PROBE_PROM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct prom_entry {
    char *name;
    double sum; /* sum over label sets (NaN if any sample was NaN) */
    size_t samples;
};

struct prom_result {
    struct prom_entry *entries;
    size_t n, cap;
    size_t *index;          /* open-addressing table: entry position + 1, 0 = empty */
    size_t index_cap;       /* power of two, > 2 n */
    size_t samples;         /* sample lines accepted */
    size_t malformed_lines; /* lines skipped */
    char first_error[160];  /* description of the first malformed line */
};

extern const char *const PROM_SPLIT_LABELS[];

/* One sample line as scanned: the name, the label block (from '{' to past '}', validated; NULL
 * when the sample has none) and the value; pointers into the text. */
struct prom_sample {
    const char *name;
    size_t name_len;
    const char *labels, *labels_end;
    double value;
};
typedef int (*prom_sample_fn)(const struct prom_sample *s, void *user);

struct prom_scan_stats {
    size_t samples;         /* sample lines accepted */
    size_t malformed_lines; /* lines skipped */
    char first_error[160];  /* description of the first malformed line */
};

/* Scan text, calling fn for every sample line in order (comments, blank and malformed lines are
 * skipped; st counts them, zeroed first). Returns 0, or the first nonzero value fn returned (the
 * scan stops there). */
int prom_scan(const char *text, size_t len, prom_sample_fn fn, void *user,
              struct prom_scan_stats *st);
/* The next label of a validated label block: *pos starts at the block ('{') and moves past each
 * label; name points into the block, the value is unescaped into value (cut to cap - 1 bytes).
 * False after the last one. */
bool prom_label_next(const char **pos, const char *end, const char **name, size_t *name_len,
                     char *value, size_t cap);
/* Parse text into out (zeroed first). Returns 0, or -1 when out of memory. */
int prom_parse(const char *text, size_t len, struct prom_result *out);
void prom_free(struct prom_result *r);
/* Look a metric up by name; a name with a `_total` suffix also matches the bare counter and
 * vice versa. */
bool prom_lookup(const struct prom_result *r, const char *name, double *value);
/* {name: summed value} with null for NaN / infinities. New reference. */
json_t *prom_to_json(const struct prom_result *r);
/* The same lookup rule over a {name: value} object as prom_to_json produces. False when absent
 * or null. */
bool prom_json_lookup(const json_t *metrics, const char *name, double *value);

#endif
