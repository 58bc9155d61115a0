/*
 * http_body.c - what both transports do with response body bytes.
 *
 * A chunk goes to the request's on_data with its arrival time, or, without one, into the
 * collected body under max_body. It lives below both transports so that neither calls the other
 * nor the client front (net/http.c): the one piece of request handling they share.
 */
#include "net/http_transport.h"

#include <stdio.h>

int http_deliver_body(struct http_req *req, const char *ptr, size_t len, uint64_t t)
{
    if (!req->t_first_byte_ns && len)
        req->t_first_byte_ns = t;
    req->bytes_received += len;
    if (req->on_data) {
        if (req->on_data(req, ptr, len, t) != 0) {
            req->error = HTTP_ERR_ABORTED;
            return -1;
        }
        return 0;
    }
    size_t cap = req->max_body ? req->max_body : (size_t)64 << 20;
    size_t room = req->body_buf.len < cap ? cap - req->body_buf.len : 0;
    size_t take = len < room ? len : room;
    if (take)
        buf_append(&req->body_buf, ptr, take);
    if (buf_failed(&req->body_buf)) {
        req->error = HTTP_ERR_OTHER;
        snprintf(req->error_text, sizeof req->error_text, "out of memory collecting the body");
        return -1;
    }
    if (take < len) {
        /* past the cap: stop reading (a server sending without end must not keep us busy) */
        req->body_truncated = true;
        req->error = HTTP_ERR_OTHER;
        snprintf(req->error_text, sizeof req->error_text, "the body is larger than %zu bytes", cap);
        return -1;
    }
    return 0;
}
