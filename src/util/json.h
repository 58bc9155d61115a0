/*
 * json.h - helpers over jansson.
 *
 * Canonical serialisation (sorted keys, no spaces, ASCII-escaped, reals with 15 significant
 * digits) is what identity hashes are computed over, so equal values always give equal bytes.
 * The typed getters never fail: they return the given fallback when a key is missing or has the
 * wrong type, and *_strict variants say which one happened.
 */
#ifndef KVBENCH_UTIL_JSON_H
#define KVBENCH_UTIL_JSON_H

#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#define JSON_DUMP_FLAGS_PRETTY (JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15))
#define JSON_DUMP_FLAGS_LINE   (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* Append v serialised with jansson's flags to b (what json_dumps gives). Returns 0, or -1 when v
 * cannot be serialised or memory ran out (b is then failed). Use it rather than json_dumps: a
 * failed append inside jansson's json_dumps can drop text without an error. */
BUF_MUST_CHECK int json_dump_buf(struct buf *b, const json_t *v, size_t flags);
/* v serialised with jansson's flags, as a heap string the caller frees; NULL when v cannot be
 * serialised or memory ran out. The drop-in for json_dumps (see json_dump_buf). */
BUF_MUST_CHECK char *json_text(const json_t *v, size_t flags);
/* Canonical text of v. Caller frees. NULL only when out of memory. */
char *json_canonical(const json_t *v);
/* SHA-256 hex of the canonical text of v. Returns 0 or -1. */
BUF_MUST_CHECK int json_canonical_sha256(const json_t *v, char out[65]);
/* Write v pretty-printed (plus a newline) to path atomically (fs_write_atomic: redacted, a
 * temporary file renamed into place). Returns 0, or -1 with err when v cannot be serialised (out
 * of memory) or written; nothing is left at path then. */
BUF_MUST_CHECK int json_write_file(const char *path, const json_t *v, char *err);
/* Append v (redacted) as one compact line to f and flush it: the whole line or nothing (see
 * fs_append_whole). Returns 0, or -1 with err. (Not yet BUF_MUST_CHECK: runner.c's manifest
 * writer ignores it.) */
int json_write_line(FILE *f, const json_t *v, char *err);
/* Parse a whole file. Returns a new reference or NULL with err filled. */
BUF_MUST_CHECK json_t *json_read_file(const char *path, char *err);

const char *json_get_str(const json_t *obj, const char *key, const char *fallback);
long long json_get_int(const json_t *obj, const char *key, long long fallback);
/* Accepts integers and reals. */
double json_get_num(const json_t *obj, const char *key, double fallback);
bool json_get_bool(const json_t *obj, const char *key, bool fallback);
/* True when key holds a number (integer or real), stored in *out. */
bool json_get_num_strict(const json_t *obj, const char *key, double *out);

/* A real, or null when !valid or not finite (e.g. a percentile of an empty set). New ref. */
json_t *json_real_or_null(double v, bool valid);
/* A JSON string from bytes that may not be valid UTF-8 (server bodies, truncated text): invalid
 * bytes become U+FFFD. NUL bytes too. New reference, NULL only when out of memory. */
json_t *json_string_lossy(const char *s, size_t len);
/* Append s as the inside of a JSON string (no quotes): ", \\ and control bytes escaped; other
 * bytes copied as they are. For hand-built hot-path JSON (SSE chunks). Like every append, a
 * failure is the buffer's sticky error (buf_failed). */
void json_escape_append(struct buf *b, const char *s, size_t len);
/* Set obj[key] = v, stealing the reference; ignores a NULL v. Returns 0 or -1. */
int json_put(json_t *obj, const char *key, json_t *v);
/* Convenience setters that steal nothing and never fail silently (they return -1). */
int json_put_str(json_t *obj, const char *key, const char *s);
int json_put_int(json_t *obj, const char *key, long long v);
int json_put_real(json_t *obj, const char *key, double v); /* NaN/Inf become null */
int json_put_bool(json_t *obj, const char *key, bool v);

#endif
