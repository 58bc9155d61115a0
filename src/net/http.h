/*
 * http.h - the HTTP client interface: many concurrent requests from one thread.
 *
 * One struct http_client drives many concurrent transfers from one thread: the caller starts
 * requests with http_client_start and turns the crank with http_client_poll, which invokes each
 * request's callbacks as bytes arrive and when it completes. Connections are kept alive and reused
 * across requests, and a struct http_req can be started again after it completed, reusing what
 * its transport keeps for it (libcurl's easy handle).
 *
 * Measurement: every body chunk is handed to on_data with a CLOCK_MONOTONIC timestamp taken when
 * the transport received those bytes, before any parsing; no memory is allocated per chunk (when
 * on_data is NULL the body is collected into req->body_buf, which grows to its working size once).
 *
 * Two transports implement this interface behind one table of functions (net/http_transport.h,
 * wrk's `struct sock`): libcurl's multi interface (net/http_curl.c) and a native HTTP/1.1 client
 * on plain sockets, epoll and libhttp-parser (net/http_native.c, plain http:// URLs only). A
 * client picks one when it is made (http_client_new_for) and every call goes to it; nothing here
 * or in a caller names either library's types.
 *
 * Errors: a transport failure (refused, reset, timeout, truncated body) completes the request with
 * req->error != HTTP_OK and req->error_text; an HTTP status >= 400 is not a transport error
 * (req->status says it). Requests are not retried, but for one case both transports share: a
 * kept-alive connection the server closed as it was reused is replaced once by a fresh one.
 */
#ifndef KVBENCH_NET_HTTP_H
#define KVBENCH_NET_HTTP_H

#include "util/names.h"
#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_client;
struct http_transport_ops;

enum http_error {
    HTTP_OK = 0,
    HTTP_ERR_CONNECT, /* could not connect (refused, unresolvable) */
    HTTP_ERR_TIMEOUT, /* the request's timeout expired */
    HTTP_ERR_RECV,    /* connection reset or closed early, truncated body, send failure */
    HTTP_ERR_ABORTED, /* a callback asked to stop, or the request was cancelled */
    HTTP_ERR_OTHER,
};

/* A request's header lines, each "Name: value" ended by CRLF, in one buffer (the form an HTTP/1.1
 * head carries them in). Sticky: a line that could not be added marks the list failed, and a
 * request whose list failed is refused by http_client_start. */
struct http_headers {
    struct buf lines;
    size_t n;
    bool failed;
};

struct http_req;
/* Return 0 to continue, nonzero to abort the transfer (it completes with HTTP_ERR_ABORTED). */
typedef int (*http_data_fn)(struct http_req *req, const char *data, size_t len, uint64_t t_ns);
typedef void (*http_header_fn)(struct http_req *req, const char *name, size_t name_len,
                               const char *value, size_t value_len);
typedef void (*http_done_fn)(struct http_req *req);

struct http_req {
    /* set by the caller before http_client_start */
    const char *url;
    const char *method; /* NULL: GET, or POST when body is set */
    const char *body;   /* not copied: must live until the request completes */
    size_t body_len;
    double timeout_s;         /* whole transfer; <= 0: none */
    double connect_timeout_s; /* <= 0: 10 s */
    size_t max_body;      /* collected-body cap when on_data is NULL (0: 64 MiB); excess dropped */
    http_data_fn on_data; /* NULL: collect into body */
    http_header_fn on_header;
    http_done_fn on_done;
    void *user;

    /* results, valid in on_done and after */
    long status; /* last HTTP status line seen; 0 = no HTTP answer */
    enum http_error error;
    char error_text[256];
    struct buf body_buf;      /* collected body (on_data == NULL) */
    bool body_truncated;      /* body exceeded max_body: reading stopped, error HTTP_ERR_OTHER */
    uint64_t t_start_ns;      /* when the request was handed to the transport */
    uint64_t t_first_byte_ns; /* first body byte (0 if none) */
    uint64_t t_done_ns;
    size_t bytes_received;

    /* set with http_req_add_header; the transport reads them at start */
    struct http_headers headers;

    /* private to net/ */
    const struct http_transport_ops *ops; /* the transport that last ran it (owns impl) */
    void *impl;   /* that transport's per-request state (reused across starts), or NULL */
    void *conn;   /* the connection serving it while active (the native client's) */
    bool retried; /* retried once on a fresh connection (a stale keep-alive) */
    struct http_client *client;
    bool active;
};

/* Once per process, before any thread starts. Returns 0 or -1. */
int http_global_init(void);

enum http_transport {
    HTTP_TRANSPORT_AUTO,   /* native for plain http:// URLs, libcurl otherwise */
    HTTP_TRANSPORT_CURL,   /* libcurl's multi interface for everything */
    HTTP_TRANSPORT_NATIVE, /* net/http_native.c; http:// only, one origin per client */
};

/* A libcurl client for any URL (probes, http_fetch). max_connections: size of the keep-alive cache
 * (use the planned concurrency). */
struct http_client *http_client_new(size_t max_connections, char *err);
/* A client for requests to url's origin on the given transport (the load path's). NATIVE for
 * a URL it cannot serve fails with err filled; AUTO falls back to libcurl. */
struct http_client *http_client_new_for(const char *url, size_t max_connections,
                                        enum http_transport t, char *err);
/* "native" or "libcurl". */
/* The transports' one table of names (--transport). */
extern const struct name_entry TRANSPORT_NAMES[];
const char *http_client_transport(const struct http_client *c);
/* Frees the client. Every request must have completed or been cancelled first. */
void http_client_free(struct http_client *c);

void http_req_init(struct http_req *req);
/* Add a header line "Name: value" (no CR or LF in it). Returns 0, or -1 when it is malformed or
 * memory ran out; either way the list is marked failed and the request will not start. */
int http_req_add_header(struct http_req *req, const char *line);
/* The same, the line formatted printf-style (no temporary copy). */
int http_req_add_headerf(struct http_req *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drop every header line and any failure; the memory is kept for the next lines (a request
 * rebuilt for each send allocates nothing once warm). */
void http_req_reset_headers(struct http_req *req);
/* Drop every header line and free their memory. */
void http_req_clear_headers(struct http_req *req);
/* Free everything the request holds (transport state, headers, body); an active request is
 * cancelled first. */
void http_req_cleanup(struct http_req *req);

/* Start req (resetting its results). Returns 0 or -1 with err filled (a failed header list, a
 * request already active, no URL, or the transport refused it). */
int http_client_start(struct http_client *c, struct http_req *req, char *err);
/* Wait up to timeout_ms for progress, run callbacks. Returns the number of transfers still
 * active, or -1 when the transport's event loop failed. */
int http_client_poll(struct http_client *c, int timeout_ms);
/* The same with a timeout in microseconds (the open loop's due times; libcurl rounds it up to
 * milliseconds). Returns the active transfers, or -1. */
int http_client_poll_us(struct http_client *c, long timeout_us);
/* Number of active transfers. */
int http_client_active(const struct http_client *c);
/* Stop an active request now; it completes with HTTP_ERR_ABORTED and on_done is called. */
void http_client_cancel(struct http_client *c, struct http_req *req);
/* Make a blocked http_client_poll return early. Safe from another thread. */
void http_client_wakeup(struct http_client *c);

/* Run one request to completion on a private client (for probes: /v1/models, /metrics).
 * Returns 0 when it completed (check req->error and req->status) or -1 if it could not start. */
int http_fetch(struct http_req *req, char *err);
/* GET url on a private client (a scrape of /metrics and the like): req is initialised here and
 * is the caller's to clean up, also on failure. Returns 0 when the server answered 200 (the body
 * in req->body_buf, at most max_body bytes), else -1 with err naming the URL and what went wrong
 * (the transport's error, or the HTTP status). */
int http_get(struct http_req *req, const char *url, double timeout_s, size_t max_body, char *err);

const char *http_error_name(enum http_error e);

#endif
