/*
 * csvexport.h - a run's requests and phase summaries as CSV for spreadsheets (`kvbench report
 * --csv`): requests.csv from requests.jsonl (one row per request, read a line at a time) and
 * phases.csv from summary.json. RFC 4180: comma separated, CRLF-free \n lines, a field quoted
 * when it holds a comma, a quote or a line break, quotes doubled; an absent value is empty.
 */
#ifndef KVBENCH_REPORT_CSVEXPORT_H
#define KVBENCH_REPORT_CSVEXPORT_H

#include "util/buf.h"

#include <jansson.h>
#include <stddef.h>

/* Append one field (not the separator). Failures are b's sticky error (check buf_failed). */
void csv_field(struct buf *b, const char *s, size_t len);
/* Append a JSON value as a field: a string as itself, a number as written (reals to the
 * microsecond, trailing zeros dropped), true/false, null or absent as empty. */
void csv_json_field(struct buf *b, const json_t *v);

struct csv_result {
    size_t requests; /* rows written to requests.csv */
    size_t skipped;  /* requests.jsonl lines that were not a JSON object (a torn last line) */
    size_t phases;   /* rows written to phases.csv */
};

/* Write requests.csv and phases.csv for the run in run_dir into out_dir (atomically each).
 * Returns 0, or -1 with err (a missing or unreadable input, out of memory, a failed write); a
 * file that could not be written whole is removed, never left short at its final path. */
BUF_MUST_CHECK int csv_export_run(const char *run_dir, const char *out_dir, struct csv_result *res,
                                  char *err);

#endif
