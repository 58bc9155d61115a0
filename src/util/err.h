/*
 * err.h - the error-message convention.
 *
 * Functions that can fail return 0 (or a count) on success and a negative value on failure, and
 * describe the failure in a caller-provided `char err[ERR_LEN]` (which may be NULL when the caller
 * does not care). Only the cmd layer prints these messages.
 */
#ifndef KVBENCH_UTIL_ERR_H
#define KVBENCH_UTIL_ERR_H

#define ERR_LEN 512

/* printf into err (if non-NULL); always returns -1 so `return err_set(err, ...)` reads well. */
int err_set(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
