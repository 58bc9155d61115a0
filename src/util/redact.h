/*
 * redact.h - the one redaction step every text kvbench writes passes through (artifacts, logs,
 * stored responses): each registered secret (the API key) and every "Bearer <token>" value
 * become [REDACTED], wherever they appear — also where a server echoed them back in an error
 * body. Secrets are registered once, before any thread starts.
 */
#ifndef KVBENCH_UTIL_REDACT_H
#define KVBENCH_UTIL_REDACT_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>

#define REDACTED "[REDACTED]"

/* Register a secret (ignored when shorter than 4 bytes; at most 8 are kept). */
void redact_add_secret(const char *secret);
/* Forget every secret (tests). */
void redact_clear(void);
/* Whether text holds anything to redact (a registered secret, or a Bearer value). */
bool redact_needed(const char *text, size_t len);
/* Redact b in place. Returns 0, or -1 when out of memory (b is then left as it was). */
int redact_buf(struct buf *b);
/* A redacted copy of text (caller frees), or NULL when nothing needed redacting or out of
 * memory; *out_len receives its length. */
char *redact_dup(const char *text, size_t len, size_t *out_len);

#endif
