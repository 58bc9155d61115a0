/*
 * sse.c - server-sent events.
 *
 * Lines are scanned with memchr over each fed chunk; a line that lies wholly inside the chunk is
 * processed in place, and only a line that straddles chunks is copied into the line buffer. An
 * event's single data line is handed to the callback where it lies in the fed bytes; it is copied
 * only when a second data line follows or the bytes end before the event does. So a normal stream
 * (whole events per TCP read) is parsed without copying anything.
 */
#include "net/sse.h"

#include <string.h>

void sse_init(struct sse_parser *p, sse_event_fn on_event, void *user)
{
    memset(p, 0, sizeof *p);
    p->on_event = on_event;
    p->user = user;
}

void sse_reset(struct sse_parser *p)
{
    buf_reset(&p->line);
    buf_reset(&p->data);
    buf_reset(&p->event);
    p->have_data = false;
    p->pend = NULL;
    p->last_cr = false;
    p->bom_checked = false;
    p->events = 0;
}

void sse_free(struct sse_parser *p)
{
    buf_free(&p->line);
    buf_free(&p->data);
    buf_free(&p->event);
}

bool sse_pending(const struct sse_parser *p)
{
    return p->line.len > 0 || p->have_data;
}

/* Copy a data line still in the fed bytes into the data buffer. Returns 0 or -1. */
static int keep_pending(struct sse_parser *p)
{
    if (!p->pend)
        return 0;
    buf_append(&p->data, p->pend, p->pend_len);
    p->pend = NULL;
    return buf_failed(&p->data) ? -1 : 0;
}

static int dispatch(struct sse_parser *p)
{
    int rc = 0;
    if (p->have_data) {
        p->events++;
        const char *type = p->event.len ? buf_cstr(&p->event) : "message";
        if (p->pend)
            rc = p->on_event(p->user, type, p->pend, p->pend_len);
        else
            rc = p->on_event(p->user, type, buf_cstr(&p->data), p->data.len);
    }
    p->pend = NULL;
    buf_reset(&p->data);
    buf_reset(&p->event);
    p->have_data = false;
    return rc;
}

/* One complete line, without its terminator; inplace: it lies in the bytes being fed. */
static int process_line(struct sse_parser *p, const char *line, size_t len, bool inplace)
{
    if (len == 0)
        return dispatch(p);
    if (line[0] == ':')
        return 0; /* comment */
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = colon ? len - name_len - 1 : 0;
    if (value_len && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        if (!p->have_data && inplace) {
            p->pend = value;
            p->pend_len = value_len;
            p->have_data = true;
            return 0;
        }
        if (keep_pending(p) < 0)
            return -1;
        if (p->have_data)
            buf_append_char(&p->data, '\n');
        buf_append(&p->data, value, value_len);
        if (buf_failed(&p->data))
            return -1;
        p->have_data = true;
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        buf_reset(&p->event);
        buf_append(&p->event, value, value_len);
        if (buf_failed(&p->event))
            return -1;
    }
    /* id, retry and unknown fields carry nothing we measure. */
    return 0;
}

static int feed(struct sse_parser *p, const char *bytes, size_t len);

int sse_feed(struct sse_parser *p, const char *bytes, size_t len)
{
    int rc = feed(p, bytes, len);
    /* the bytes are the caller's: a data line of an unfinished event is copied before return */
    if (keep_pending(p) < 0 && rc == 0)
        rc = -1;
    return rc;
}

static int feed(struct sse_parser *p, const char *bytes, size_t len)
{
    size_t i = 0;
    if (!p->bom_checked && len > 0) {
        /* A UTF-8 byte-order mark may open the stream; it can arrive split too. */
        static const char BOM[3] = {'\xef', '\xbb', '\xbf'};
        size_t have = p->line.len;
        while (have < 3 && i < len && bytes[i] == BOM[have]) {
            buf_append_char(&p->line, bytes[i]);
            if (buf_failed(&p->line))
                return -1;
            have++;
            i++;
        }
        if (have == 3) {
            buf_reset(&p->line);
            p->bom_checked = true;
        } else if (i < len) {
            p->bom_checked = true; /* not a BOM: keep what was buffered as line text */
        } else {
            return 0; /* still could be a BOM */
        }
    }
    while (i < len) {
        if (p->last_cr) {
            p->last_cr = false;
            if (bytes[i] == '\n') {
                i++;
                continue;
            }
        }
        const char *start = bytes + i;
        size_t left = len - i;
        const char *nl = memchr(start, '\n', left);
        const char *cr = memchr(start, '\r', nl ? (size_t)(nl - start) : left);
        const char *end = cr ? cr : nl;
        if (!end) {
            buf_append(&p->line, start, left);
            if (buf_failed(&p->line))
                return -1;
            return 0;
        }
        size_t seg = (size_t)(end - start);
        int rc;
        if (p->line.len) {
            buf_append(&p->line, start, seg);
            if (buf_failed(&p->line))
                return -1;
            rc = process_line(p, p->line.data, p->line.len, false);
            buf_reset(&p->line);
        } else {
            rc = process_line(p, start, seg, true);
        }
        i += seg + 1;
        if (end == cr)
            p->last_cr = true;
        if (rc)
            return rc;
    }
    return 0;
}
