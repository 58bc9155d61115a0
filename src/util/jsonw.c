/*
 * jsonw.c - see jsonw.h. Numbers use %.15g, the precision of every other JSON kvbench writes,
 * or more digits where 15 would not read back as the same double.
 * Nothing here checks an append: the buffer's sticky error carries a failure to the one
 * buf_failed() check the caller makes per row. Only code that reads back what it appended
 * (num's ".0" test) looks at the failure first, since a failed buffer holds no text to read.
 */
#include "util/jsonw.h"

#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void key(struct jsonw *w, const char *k)
{
    if (!w->first)
        buf_append_char(w->b, ',');
    w->first = false;
    buf_append_char(w->b, '"');
    buf_append_str(w->b, k);
    buf_append(w->b, "\":", 2);
}

void jw_open(struct jsonw *w, struct buf *b)
{
    w->b = b;
    w->first = true;
    buf_append_char(b, '{');
}

void jw_close(struct jsonw *w)
{
    buf_append_char(w->b, '}');
}

void jw_strn(struct jsonw *w, const char *k, const char *value, size_t len)
{
    key(w, k);
    if (!value) {
        buf_append(w->b, "null", 4);
        return;
    }
    buf_append_char(w->b, '"');
    json_escape_append(w->b, value, len);
    buf_append_char(w->b, '"');
}

void jw_str(struct jsonw *w, const char *k, const char *value)
{
    jw_strn(w, k, value, value ? strlen(value) : 0);
}

void jw_int(struct jsonw *w, const char *k, long long value)
{
    key(w, k);
    buf_printf(w->b, "%lld", value);
}

static void num(struct buf *b, double v)
{
    if (!isfinite(v)) {
        buf_append(b, "null", 4);
        return;
    }
    double av = fabs(v);
    if (av == 0) {
        buf_append(b, "0.0", 3); /* what %.15g + ".0" gives; a common ITL (one read, many events) */
        return;
    }
    if (av >= 1e-4 && av < 1e9) {
        /* Durations in ms from ns clocks are k/1e6: print those without printf (a streamed row
         * carries hundreds of them). The digits are those %.15g gives in this range. */
        double scaled = av * 1e6;
        long long k = llround(scaled);
        if ((double)k / 1e6 == av) {
            char tmp[32];
            int n = sizeof tmp;
            long long ip = k / 1000000, fp = k % 1000000;
            int digits = 6;
            while (digits > 0 && fp % 10 == 0) {
                fp /= 10;
                digits--;
            }
            if (digits == 0)
                tmp[--n] = '0';
            for (int i = 0; i < digits; i++, fp /= 10)
                tmp[--n] = (char)('0' + fp % 10);
            tmp[--n] = '.';
            do {
                tmp[--n] = (char)('0' + ip % 10);
                ip /= 10;
            } while (ip);
            if (v < 0)
                tmp[--n] = '-';
            buf_append(b, tmp + n, sizeof tmp - (size_t)n);
            return;
        }
    }
    /* the fewest digits from 15 that read back as v: a value another tool or `kvbench merge`
     * recomputes from the rows must be the one the run computed with (%.17g always is) */
    char digits[32];
    int prec = 15;
    snprintf(digits, sizeof digits, "%.*g", prec, v);
    while (prec < 17 && strtod(digits, NULL) != v)
        snprintf(digits, sizeof digits, "%.*g", ++prec, v);
    size_t before = b->len;
    buf_append(b, digits, strlen(digits));
    if (buf_failed(b))
        return; /* nothing to read back; the caller's check sees the failure */
    /* keep it a JSON real like jansson does: 3 → 3.0 */
    if (!memchr(b->data + before, '.', b->len - before) &&
        !memchr(b->data + before, 'e', b->len - before))
        buf_append(b, ".0", 2);
}

void jw_num(struct jsonw *w, const char *k, double value)
{
    key(w, k);
    num(w->b, value);
}

void jw_bool(struct jsonw *w, const char *k, bool value)
{
    key(w, k);
    buf_append_str(w->b, value ? "true" : "false");
}

void jw_null(struct jsonw *w, const char *k)
{
    key(w, k);
    buf_append(w->b, "null", 4);
}

void jw_raw(struct jsonw *w, const char *k, const char *json)
{
    key(w, k);
    buf_append_str(w->b, json);
}

void jw_begin_array(struct jsonw *w, const char *k)
{
    key(w, k);
    buf_append_char(w->b, '[');
    w->first = true;
}

void jw_elem_num(struct jsonw *w, double value)
{
    if (!w->first)
        buf_append_char(w->b, ',');
    w->first = false;
    num(w->b, value);
}

void jw_end_array(struct jsonw *w)
{
    buf_append_char(w->b, ']');
    w->first = false;
}

void jw_object_raw(struct jsonw *w, const char *k, const char *members, size_t len)
{
    key(w, k);
    buf_append_char(w->b, '{');
    buf_append(w->b, members, len);
    buf_append_char(w->b, '}');
}
