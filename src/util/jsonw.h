/*
 * jsonw.h - a minimal streaming JSON writer over struct buf, for rows written on the hot path
 * (one requests.jsonl row per request) where building a jansson tree per row would cost more
 * than the request it records. Keys are written as given (they are our own ASCII names);
 * string values are escaped; non-finite numbers become null.
 *
 * Errors: the jw_* calls return nothing on purpose. They append to a struct buf, whose error is
 * sticky (util/buf.h): an append that runs out of memory marks the buffer failed and every later
 * append is a no-op. The caller builds a whole row or object with plain jw_* calls and checks
 * buf_failed(b) once, after jw_close, before the text is used or written; a failed row is never
 * written (fs_write_buf and buf_detach refuse it). There is no other failure: a NULL string is
 * written as null, a non-finite number as null.
 */
#ifndef KVBENCH_UTIL_JSONW_H
#define KVBENCH_UTIL_JSONW_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>

struct jsonw {
    struct buf *b;
    bool first; /* no member written yet at the current level */
};

void jw_open(struct jsonw *w, struct buf *b);                     /* "{" */
void jw_close(struct jsonw *w);                                   /* "}" */
void jw_str(struct jsonw *w, const char *key, const char *value); /* NULL → null */
void jw_strn(struct jsonw *w, const char *key, const char *value, size_t len);
void jw_int(struct jsonw *w, const char *key, long long value);
void jw_num(struct jsonw *w, const char *key, double value); /* NaN/Inf → null */
void jw_bool(struct jsonw *w, const char *key, bool value);
void jw_null(struct jsonw *w, const char *key);
/* A value that is already JSON text (e.g. a pre-serialised object). */
void jw_raw(struct jsonw *w, const char *key, const char *json);
/* Start a nested array member; append elements with jw_elem_num; end with jw_end_array. */
void jw_begin_array(struct jsonw *w, const char *key);
void jw_elem_num(struct jsonw *w, double value);
void jw_end_array(struct jsonw *w);
/* A nested object member whose members are already JSON text ("a":1,"b":"x"), possibly empty. */
void jw_object_raw(struct jsonw *w, const char *key, const char *members, size_t len);

#endif
