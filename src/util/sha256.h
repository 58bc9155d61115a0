/*
 * sha256.h - SHA-256 as lowercase hex, through OpenSSL's libcrypto.
 */
#ifndef KVBENCH_UTIL_SHA256_H
#define KVBENCH_UTIL_SHA256_H

#include <stddef.h>

#define SHA256_HEX_LEN 65 /* 64 hex digits + NUL */

/* Hash len bytes of data into out. Returns 0, or -1 if libcrypto failed (out is then ""). */
int sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN]);
/* Hash a whole file. Returns 0, or -1 with err filled. */
int sha256_file_hex(const char *path, char out[SHA256_HEX_LEN], char *err);

#endif
