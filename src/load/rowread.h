/*
 * rowread.h - a requests.jsonl row read back into what the load generator measured: the struct
 * req_result it was written from (with the struct prompt fields it points at, and its ITL
 * values), so that the aggregate (phase_agg_add) and the scenarios' verdicts can be fed again
 * from the artifact alone. kvbench merge reads its shards' rows through it.
 *
 * The row is loadgen.c's row_build, read field by field under the same names. What a row does
 * not carry is left at what says "unknown": the transport error (HTTP_OK; a failed request is
 * still failed, by its `error`), `unreachable` (false), the response text (NULL). A row written
 * before `client_lag_ms` existed reads it as NaN.
 */
#ifndef KVBENCH_LOAD_ROWREAD_H
#define KVBENCH_LOAD_ROWREAD_H

#include "analysis/stats.h"
#include "load/loadgen.h"
#include "load/prompt.h"
#include "util/clock.h"

#include <stdbool.h>
#include <stddef.h>

struct row_read {
    struct req_result q;  /* q.prompt points at prompt; q.error is owned (row_read_free) */
    struct prompt prompt; /* id, set, target, est_tokens, sha256 (no text) */
    struct dvec itl;      /* itl_ms (empty when the row's is null) */
    char phase[32];
    double start_s, end_s;  /* start_ts / end_ts as epoch seconds */
    char params_sha256[65]; /* generation_params_sha256 */
    char cached_source[64]; /* q.cached_source points here when the row names one */
};

/* Read one row (line[0..len), its newline optional) into out (zeroed first; free with
 * row_read_free, also after a failure). Returns 0, or -1 with a one-line err naming the field
 * that is missing, of the wrong type or out of range, or saying the line is not JSON. */
int row_read(const char *line, size_t len, struct row_read *out, char *err);
void row_read_free(struct row_read *r);

#endif
