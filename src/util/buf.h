/*
 * buf.h - the one growable, length-tracked byte buffer used for all string building.
 *
 * The contents are always NUL-terminated (data[len] == 0) once anything was appended, so a
 * buffer can be handed to C string functions. A zeroed struct buf is a valid empty buffer.
 *
 * Errors are sticky (curl's dynbuf): an append that cannot grow the buffer marks it failed, and
 * every later append is a no-op, so a row or an artifact is built with plain appends and checked
 * once, with buf_failed(), before it is used. A failed buffer is never written: fs_write_buf and
 * the other consumers refuse it, and buf_detach gives NULL. The appends return nothing, so no
 * caller can ignore a result; the calls whose answer matters are marked warn_unused_result.
 */
#ifndef KVBENCH_UTIL_BUF_H
#define KVBENCH_UTIL_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define BUF_MUST_CHECK __attribute__((warn_unused_result))

struct buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* an append could not grow the buffer; the contents are incomplete */
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0, false                                                                          \
    }

/* Ensure room for at least `extra` more bytes plus the terminator. 0, or -1 (and the buffer
 * marked failed) when it cannot. */
BUF_MUST_CHECK int buf_reserve(struct buf *b, size_t extra);
/* A size hint: grow now to hold `extra` more bytes if memory allows; a failure leaves the buffer
 * as it was, not failed (later appends grow it as they need). */
void buf_reserve_hint(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_append_char(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Whether an append since the buffer was made (or last reset) failed: the contents are not
 * what was asked for and must not be used as if they were. */
BUF_MUST_CHECK static inline bool buf_failed(const struct buf *b)
{
    return b->failed;
}
/* Drop contents and any failure, keep capacity. */
void buf_reset(struct buf *b);
/* Keep the first `len` bytes. */
void buf_truncate(struct buf *b, size_t len);
/* Remove the first `n` bytes. */
void buf_consume(struct buf *b, size_t n);
/* Free memory; the buffer is empty, not failed, and reusable afterwards. */
void buf_free(struct buf *b);
/* Returns the contents as a NUL-terminated heap string the caller frees and leaves the buffer
 * empty; NULL when out of memory or when the buffer had failed (its memory is freed then). */
BUF_MUST_CHECK char *buf_detach(struct buf *b);
/* The contents as a C string; "" for an empty buffer. Valid until the next change. */
const char *buf_cstr(const struct buf *b);

#endif
