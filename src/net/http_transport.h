/*
 * http_transport.h - the table a transport of net/http.h fills (private to src/net).
 *
 * net/http.c picks one table per client when the client is made and calls through it from then
 * on (wrk's `struct sock`, Redis's ae_epoll.c): no transport test on any call. The two tables are
 * http_curl_ops (net/http_curl.c) and http_native_ops (net/http_native.c); neither file includes
 * the other, and both share only what net/http_body.c holds. A transport:
 * - completes every started request exactly once, through req->on_done, with req->active false
 *   and t_done_ns set, after releasing the connection (on_done may start the next request);
 * - hands body bytes to http_deliver_body with the time recv() returned them;
 * - reads the request's header lines from req->headers (already checked, CRLF-ended).
 */
#ifndef KVBENCH_NET_HTTP_TRANSPORT_H
#define KVBENCH_NET_HTTP_TRANSPORT_H

#include "net/http.h"

struct http_transport_ops {
    const char *name; /* "libcurl", "native" (phase_result.transport, summary.json) */
    /* Once per process; NULL when there is nothing to do. Returns 0 or -1. */
    int (*global_init)(void);
    /* A client for url's origin (NULL: any URL). NULL with err filled when it cannot serve it. */
    void *(*client_new)(const char *url, size_t max_connections, char *err);
    void (*client_free)(void *client);
    /* req's results are reset and req->client set; the transport sets t_start_ns and active. */
    int (*start)(void *client, struct http_req *req, char *err);
    int (*poll)(void *client, long timeout_us);
    int (*active)(const void *client);
    void (*cancel)(void *client, struct http_req *req);
    void (*wakeup)(void *client);
    /* Free req->impl (the request is not active). */
    void (*req_release)(struct http_req *req);
};

extern const struct http_transport_ops http_curl_ops;
extern const struct http_transport_ops http_native_ops;

/* Hand a body chunk to on_data, or collect it under max_body (net/http_body.c). Returns 0, or -1
 * when the transfer must stop (req->error says why). */
int http_deliver_body(struct http_req *req, const char *data, size_t len, uint64_t t_ns);

#endif
