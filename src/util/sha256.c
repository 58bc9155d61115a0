/*
 * sha256.c - SHA-256 hex digests via the EVP interface of libcrypto.
 */
#include "util/sha256.h"

#include "util/err.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static void to_hex(const unsigned char *md, unsigned len, char *out)
{
    static const char HEX[] = "0123456789abcdef";
    for (unsigned i = 0; i < len; i++) {
        out[2 * i] = HEX[md[i] >> 4];
        out[2 * i + 1] = HEX[md[i] & 15];
    }
    out[2 * len] = '\0';
}

int sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    out[0] = '\0';
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -1;
    to_hex(md, mdlen, out);
    return 0;
}

int sha256_file_hex(const char *path, char out[SHA256_HEX_LEN], char *err)
{
    out[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, "cannot open %s: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = -1;
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        err_set(err, "libcrypto: cannot start SHA-256");
        goto out;
    }
    unsigned char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (EVP_DigestUpdate(ctx, chunk, n) != 1) {
            err_set(err, "libcrypto: SHA-256 update failed");
            goto out;
        }
    }
    if (ferror(f)) {
        err_set(err, "cannot read %s", path);
        goto out;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
        err_set(err, "libcrypto: SHA-256 final failed");
        goto out;
    }
    to_hex(md, mdlen, out);
    rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return rc;
}
