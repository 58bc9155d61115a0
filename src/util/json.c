/*
 * json.c - jansson helpers.
 *
 * Every text jansson serialises for us goes through dump_to_buf: jansson's dump callback appends
 * to a struct buf, whose error is sticky. json_dumps is not used, because jansson 2.14 drops the
 * result of some of its own appends (an object's key, in dump.c), so under memory pressure it can
 * return a text with a key missing and no error; a callback into a sticky buffer sees that.
 */
#include "util/json.h"

#include "util/redact.h"

#include "util/err.h"
#include "util/fs.h"
#include "util/sha256.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int dump_cb(const char *text, size_t len, void *data)
{
    struct buf *b = data;
    buf_append(b, text, len);
    return buf_failed(b) ? -1 : 0;
}

int json_dump_buf(struct buf *b, const json_t *v, size_t flags)
{
    if (json_dump_callback(v, dump_cb, b, flags) < 0 || buf_failed(b))
        return -1;
    return 0;
}

char *json_text(const json_t *v, size_t flags)
{
    struct buf b = BUF_INIT;
    if (json_dump_buf(&b, v, flags) < 0) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b);
}

static bool dump_to_buf(struct buf *b, const json_t *v, size_t flags)
{
    return json_dump_buf(b, v, flags) == 0;
}

char *json_canonical(const json_t *v)
{
    struct buf b = BUF_INIT;
    if (!dump_to_buf(&b, v,
                     JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY |
                         JSON_REAL_PRECISION(15))) {
        buf_free(&b);
        return NULL;
    }
    char *s = buf_detach(&b);
    /* jansson writes \u00E9; Python's json.dumps writes \u00e9. Use the lower-case form so the
     * identity hashes agree with the reference harness for the same request. */
    for (char *p = s; p && *p; p++) {
        if (*p != '\\')
            continue;
        p++;
        if (*p == 'u') {
            for (int i = 1; i <= 4 && p[i]; i++)
                if (p[i] >= 'A' && p[i] <= 'F')
                    p[i] = (char)(p[i] - 'A' + 'a');
        }
    }
    return s;
}

int json_canonical_sha256(const json_t *v, char out[65])
{
    char *s = json_canonical(v);
    if (!s) {
        out[0] = '\0';
        return -1;
    }
    int rc = sha256_hex(s, strlen(s), out);
    free(s);
    return rc;
}

int json_write_file(const char *path, const json_t *v, char *err)
{
    struct buf b = BUF_INIT;
    bool ok = dump_to_buf(&b, v, JSON_DUMP_FLAGS_PRETTY | JSON_ENCODE_ANY);
    buf_append_char(&b, '\n');
    int rc = ok && !buf_failed(&b) ? fs_write_buf(path, &b, err) /* redacts */
                                   : err_set(err, "cannot serialise JSON for %s", path);
    buf_free(&b);
    return rc;
}

int json_write_line(FILE *f, const json_t *v, char *err)
{
    struct buf b = BUF_INIT;
    int rc = 0;
    if (!dump_to_buf(&b, v, JSON_DUMP_FLAGS_LINE | JSON_ENCODE_ANY))
        rc = err_set(err, "cannot serialise JSON row");
    else if (redact_buf(&b) < 0) /* never written unredacted */
        rc = err_set(err, "out of memory redacting a JSON row");
    buf_append_char(&b, '\n');
    if (rc == 0 && buf_failed(&b))
        rc = err_set(err, "out of memory writing a JSON row");
    if (rc == 0 && fs_append_whole(f, b.data, b.len) < 0) /* whole lines or nothing */
        rc = err_set(err, "cannot write JSON row: %s", strerror(errno));
    buf_free(&b);
    return rc;
}

json_t *json_read_file(const char *path, char *err)
{
    json_error_t jerr;
    json_t *v = json_load_file(path, JSON_DECODE_ANY, &jerr);
    if (!v)
        err_set(err, "%s: %s (line %d)", path, jerr.text, jerr.line);
    return v;
}

const char *json_get_str(const json_t *obj, const char *key, const char *fallback)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : fallback;
}

long long json_get_int(const json_t *obj, const char *key, long long fallback)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : fallback;
}

double json_get_num(const json_t *obj, const char *key, double fallback)
{
    double d;
    return json_get_num_strict(obj, key, &d) ? d : fallback;
}

bool json_get_num_strict(const json_t *obj, const char *key, double *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

bool json_get_bool(const json_t *obj, const char *key, bool fallback)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : fallback;
}

json_t *json_real_or_null(double v, bool valid)
{
    return valid && isfinite(v) ? json_real(v) : json_null();
}

json_t *json_string_lossy(const char *s, size_t len)
{
    struct buf b = BUF_INIT;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = n > 0 && i + n <= len && c != 0;
        for (size_t k = 1; ok && k < n; k++)
            ok = ((unsigned char)s[i + k] >> 6) == 2;
        if (ok && n > 1) {
            /* reject overlong forms and surrogates, as jansson does */
            unsigned cp = n == 2   ? (c & 0x1fu) << 6 | ((unsigned char)s[i + 1] & 0x3fu)
                          : n == 3 ? (c & 0x0fu) << 12 | ((unsigned char)s[i + 1] & 0x3fu) << 6 |
                                         ((unsigned char)s[i + 2] & 0x3fu)
                                   : (c & 0x07u) << 18 | ((unsigned char)s[i + 1] & 0x3fu) << 12 |
                                         ((unsigned char)s[i + 2] & 0x3fu) << 6 |
                                         ((unsigned char)s[i + 3] & 0x3fu);
            ok = !(n == 2 && cp < 0x80) && !(n == 3 && cp < 0x800) &&
                 !(n == 4 && (cp < 0x10000 || cp > 0x10ffff)) && !(cp >= 0xd800 && cp <= 0xdfff);
        }
        if (ok) {
            buf_append(&b, s + i, n);
            if (buf_failed(&b))
                goto oom;
            i += n;
        } else {
            buf_append(&b, "\xef\xbf\xbd", 3);
            if (buf_failed(&b))
                goto oom;
            i++;
        }
    }
    json_t *v = json_stringn(buf_cstr(&b), b.len);
    buf_free(&b);
    return v;
oom:
    buf_free(&b);
    return NULL;
}

int json_put(json_t *obj, const char *key, json_t *v)
{
    if (!v)
        return -1;
    return json_object_set_new(obj, key, v);
}

int json_put_str(json_t *obj, const char *key, const char *s)
{
    return json_put(obj, key, s ? json_string(s) : json_null());
}

int json_put_int(json_t *obj, const char *key, long long v)
{
    return json_put(obj, key, json_integer(v));
}

int json_put_real(json_t *obj, const char *key, double v)
{
    return json_put(obj, key, json_real_or_null(v, true));
}

int json_put_bool(json_t *obj, const char *key, bool v)
{
    return json_put(obj, key, json_boolean(v));
}

void json_escape_append(struct buf *b, const char *s, size_t len)
{
    static const char HEX[] = "0123456789abcdef";
    if (buf_reserve(b, len + 2) < 0)
        return;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_append(b, s + start, i - start);
        if (buf_failed(b))
            return;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = HEX[c >> 4];
            esc[5] = HEX[c & 15];
            n = 6;
        }
        buf_append(b, esc, n);
        if (buf_failed(b))
            return;
        start = i + 1;
    }
    buf_append(b, s + start, len - start);
}
