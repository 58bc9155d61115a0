/*
 * http_native.h - the load path's own HTTP/1.1 client (internal to net/http.c).
 *
 * Plain non-blocking sockets, one epoll set per client, responses parsed with Debian's
 * libhttp-parser (the parser wrk uses): keep-alive connections to one origin, request heads
 * written with one sendmsg beside the body, timestamps taken when recv() returns. It serves
 * http:// URLs only; https and anything else stay with libcurl. The public API is net/http.h:
 * a client made for an http:// URL with HTTP_TRANSPORT_AUTO or _NATIVE runs on this.
 */
#ifndef KVBENCH_NET_HTTP_NATIVE_H
#define KVBENCH_NET_HTTP_NATIVE_H

#include "net/http.h"

struct nhttp;

/* NULL with err filled when the URL is not plain http:// or its host does not resolve. */
struct nhttp *nhttp_new(const char *url, size_t max_connections, char *err);
void nhttp_free(struct nhttp *n);
int nhttp_start(struct nhttp *n, struct http_req *req, char *err);
int nhttp_poll(struct nhttp *n, long timeout_us);
int nhttp_active(const struct nhttp *n);
void nhttp_cancel(struct nhttp *n, struct http_req *req);
void nhttp_wakeup(struct nhttp *n);

/* Shared with the libcurl path: hand a body chunk to on_data, or collect it under max_body.
 * Returns 0, or -1 when the transfer must stop (req->error says why). */
int http_deliver_body(struct http_req *req, const char *data, size_t len, uint64_t t_ns);

#endif
