/*
 * http.h - HTTP client over libcurl's multi interface.
 *
 * One struct http_client drives many concurrent transfers from one thread: the caller starts
 * requests with http_client_start and turns the crank with http_client_poll, which invokes each
 * request's callbacks as bytes arrive and when it completes. Connections are kept alive and reused
 * across requests (curl's connection cache lives in the multi handle), and a struct http_req can
 * be started again after it completed, reusing its easy handle.
 *
 * Measurement: every body chunk is handed to on_data with a CLOCK_MONOTONIC timestamp taken when
 * curl delivered those bytes, before any parsing; no memory is allocated per chunk (when on_data
 * is NULL the body is collected into req->body, which grows to its working size once).
 *
 * The load path can run on net/http_native.c instead (http_client_new_for): the same requests and
 * callbacks over plain sockets, epoll and libhttp-parser, for plain http:// URLs.
 *
 * Errors: a transport failure (refused, reset, timeout, truncated body) completes the request with
 * req->error != HTTP_OK and req->error_text; an HTTP status >= 400 is not a transport error
 * (req->status says it). Requests are never retried.
 */
#ifndef KVBENCH_NET_HTTP_H
#define KVBENCH_NET_HTTP_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_client;
struct curl_slist;

enum http_error {
    HTTP_OK = 0,
    HTTP_ERR_CONNECT, /* could not connect (refused, unresolvable) */
    HTTP_ERR_TIMEOUT, /* the request's timeout expired */
    HTTP_ERR_RECV,    /* connection reset or closed early, truncated body, send failure */
    HTTP_ERR_ABORTED, /* a callback asked to stop, or the request was cancelled */
    HTTP_ERR_OTHER,
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
    uint64_t t_start_ns;      /* when the request was handed to curl */
    uint64_t t_first_byte_ns; /* first body byte (0 if none) */
    uint64_t t_done_ns;
    size_t bytes_received;

    /* private */
    struct curl_slist *headers;
    void *easy;
    void *conn;   /* the native client's connection while active */
    bool retried; /* the native client retried it once on a fresh connection */
    struct http_client *client;
    bool active;
    char curl_errbuf[256];
};

/* Once per process, before any thread starts. Returns 0 or -1. */
int http_global_init(void);

enum http_transport {
    HTTP_TRANSPORT_AUTO,   /* native for plain http:// URLs, libcurl otherwise */
    HTTP_TRANSPORT_CURL,   /* libcurl's multi interface for everything */
    HTTP_TRANSPORT_NATIVE, /* net/http_native.c; http:// only, one origin per client */
};

/* max_connections: size of the keep-alive cache (use the planned concurrency). libcurl. */
struct http_client *http_client_new(size_t max_connections, char *err);
/* A client for requests to url's origin on the given transport (the load path's). NATIVE for
 * a URL it cannot serve fails with err filled; AUTO falls back to libcurl. */
struct http_client *http_client_new_for(const char *url, size_t max_connections,
                                        enum http_transport t, char *err);
/* "native" or "libcurl". */
const char *http_client_transport(const struct http_client *c);
/* Frees the client. Every request must have completed or been cancelled first. */
void http_client_free(struct http_client *c);

void http_req_init(struct http_req *req);
/* Add a header line "Name: value". Returns 0 or -1. */
int http_req_add_header(struct http_req *req, const char *line);
void http_req_clear_headers(struct http_req *req);
/* Free everything the request holds (easy handle, headers, body). It must not be active. */
void http_req_cleanup(struct http_req *req);

/* Start req (resetting its results). Returns 0 or -1 with err filled. */
int http_client_start(struct http_client *c, struct http_req *req, char *err);
/* Wait up to timeout_ms for progress, run callbacks. Returns the number of transfers still
 * active, or -1 on a curl failure. */
int http_client_poll(struct http_client *c, int timeout_ms);
/* The same with a timeout in microseconds (the open loop's due times; libcurl rounds it up to
 * milliseconds). */
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

const char *http_error_name(enum http_error e);

#endif
