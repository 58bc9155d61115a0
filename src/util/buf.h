/*
 * buf.h - the one growable, length-tracked byte buffer used for all string building.
 *
 * The contents are always NUL-terminated (data[len] == 0) once anything was appended, so a
 * buffer can be handed to C string functions. A zeroed struct buf is a valid empty buffer.
 * Growth failures are reported, never ignored: every append returns 0 or -1 (out of memory),
 * and after a failure the buffer keeps its previous contents.
 */
#ifndef KVBENCH_UTIL_BUF_H
#define KVBENCH_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Ensure room for at least `extra` more bytes plus the terminator. */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_append_char(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Drop contents, keep capacity. */
void buf_reset(struct buf *b);
/* Keep the first `len` bytes. */
void buf_truncate(struct buf *b, size_t len);
/* Remove the first `n` bytes. */
void buf_consume(struct buf *b, size_t n);
/* Free memory; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);
/* Returns the contents as a NUL-terminated heap string the caller frees (never NULL unless out
 * of memory) and leaves the buffer empty. */
char *buf_detach(struct buf *b);
/* The contents as a C string; "" for an empty buffer. Valid until the next change. */
const char *buf_cstr(const struct buf *b);

#endif
