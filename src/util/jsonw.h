/*
 * jsonw.h - a minimal streaming JSON writer over struct buf, for rows written on the hot path
 * (one requests.jsonl row per request) where building a jansson tree per row would cost more
 * than the request it records. Keys are written as given (they are our own ASCII names);
 * string values are escaped; non-finite numbers become null.
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
