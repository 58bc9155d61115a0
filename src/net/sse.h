/*
 * sse.h - incremental parser for server-sent events (the WHATWG "text/event-stream" format).
 *
 * Bytes can be fed split at any point; lines end in "\n", "\r\n" or "\r"; lines may be any
 * length (the line buffer grows, and then is reused: steady-state parsing does not allocate).
 * Multi-line `data:` fields are joined with "\n"; comment lines (":...") are ignored; an event is
 * dispatched at the blank line that ends it, with its `event:` type ("message" when absent) and
 * its data. "[DONE]" is ordinary data; interpreting it is the caller's business. An unterminated
 * event at end of stream is not dispatched (sse_pending tells that it existed).
 */
#ifndef KVBENCH_NET_SSE_H
#define KVBENCH_NET_SSE_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Return 0 to go on, nonzero to stop parsing (sse_feed then returns that value). */
typedef int (*sse_event_fn)(void *user, const char *event, const char *data, size_t len);

struct sse_parser {
    sse_event_fn on_event;
    void *user;
    struct buf line;  /* the current incomplete line */
    struct buf data;  /* data of the current event */
    struct buf event; /* event type of the current event */
    bool have_data;   /* a data field was seen in the current event */
    const char *pend; /* the event's one data line, still in the bytes being fed (not copied) */
    size_t pend_len;
    bool last_cr; /* the previous byte was '\r' (a following '\n' belongs to it) */
    bool bom_checked;
    size_t events; /* events dispatched so far */
};

void sse_init(struct sse_parser *p, sse_event_fn on_event, void *user);
/* Forget any partial line or event; keeps buffers for reuse. */
void sse_reset(struct sse_parser *p);
/* Feed bytes. Returns 0, the callback's nonzero value, or -1 when out of memory. */
int sse_feed(struct sse_parser *p, const char *bytes, size_t len);
/* True when bytes of an undispatched event or line are buffered (a truncated stream). */
bool sse_pending(const struct sse_parser *p);
void sse_free(struct sse_parser *p);

#endif
