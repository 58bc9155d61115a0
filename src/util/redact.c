/*
 * redact.c - secrets out of everything written. See redact.h.
 */
#include "util/redact.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SECRETS 8

static char *secrets[MAX_SECRETS];
static size_t n_secrets;

void redact_add_secret(const char *secret)
{
    if (!secret || strlen(secret) < 4 || n_secrets >= MAX_SECRETS)
        return;
    for (size_t i = 0; i < n_secrets; i++)
        if (strcmp(secrets[i], secret) == 0)
            return;
    char *s = strdup(secret);
    if (s)
        secrets[n_secrets++] = s;
}

void redact_clear(void)
{
    for (size_t i = 0; i < n_secrets; i++)
        free(secrets[i]);
    n_secrets = 0;
}

/* Length of the match of a secret or a "Bearer <token>" at p (0: none); *keep: bytes of the
 * match to keep ("Bearer "). */
static size_t match_at(const char *p, const char *end, size_t *keep)
{
    *keep = 0;
    size_t left = (size_t)(end - p);
    for (size_t i = 0; i < n_secrets; i++) {
        size_t sl = strlen(secrets[i]);
        if (sl <= left && memcmp(p, secrets[i], sl) == 0)
            return sl;
    }
    if (left > 7 && strncasecmp(p, "Bearer ", 7) == 0) {
        const char *q = p + 7;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        const char *t = q;
        while (t < end && !isspace((unsigned char)*t) && *t != '"' && *t != '\'' && *t != ',' &&
               *t != '\\')
            t++;
        if (t > q &&
            !(t - q == (long)strlen(REDACTED) && memcmp(q, REDACTED, strlen(REDACTED)) == 0)) {
            *keep = (size_t)(q - p);
            return (size_t)(t - p);
        }
    }
    return 0;
}

bool redact_needed(const char *text, size_t len)
{
    const char *end = text + len;
    for (const char *p = text; p < end; p++) {
        size_t keep;
        if (match_at(p, end, &keep))
            return true;
    }
    return false;
}

char *redact_dup(const char *text, size_t len, size_t *out_len)
{
    if (!redact_needed(text, len))
        return NULL;
    struct buf b = BUF_INIT;
    const char *end = text + len, *p = text, *copied = text;
    while (p < end) {
        size_t keep, m = match_at(p, end, &keep);
        if (!m) {
            p++;
            continue;
        }
        buf_append(&b, copied, (size_t)(p - copied) + keep);
        buf_append_str(&b, REDACTED);
        p += m;
        copied = p;
    }
    buf_append(&b, copied, (size_t)(end - copied));
    *out_len = b.len;
    return buf_detach(&b); /* NULL (and freed) when an append failed */
}

int redact_buf(struct buf *b)
{
    size_t n;
    char *r = redact_dup(b->data ? b->data : "", b->len, &n);
    if (!r)
        return redact_needed(b->data ? b->data : "", b->len) ? -1 : 0;
    buf_reset(b);
    buf_append(b, r, n);
    free(r);
    return buf_failed(b) ? -1 : 0;
}
