/*
 * http.c - the client front of net/http.h: one transport chosen per client, requests and their
 * header lists.
 *
 * A client is a table of transport functions and that transport's own state, picked once in
 * http_client_new_for (the native client for plain http:// unless a proxy is asked for, libcurl
 * otherwise) and called through from then on (net/http_transport.h). What is the same for every
 * transport lives here: the request's header list (CRLF-ended lines in one struct buf, checked as
 * they are added, so a transport never sees a malformed one), the reset of a request's results
 * before each start, and http_fetch's one-request client for probes.
 */
#include "net/http.h"

#include "net/http_transport.h"
#include "util/err.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_client {
    const struct http_transport_ops *ops;
    void *impl;
};

/* Every transport, for the once-per-process initialisation. */
static const struct http_transport_ops *const TRANSPORTS[] = {&http_curl_ops, &http_native_ops};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc = -1;

static void global_init_once(void)
{
    global_rc = 0;
    for (size_t i = 0; i < sizeof TRANSPORTS / sizeof TRANSPORTS[0]; i++)
        if (TRANSPORTS[i]->global_init && TRANSPORTS[i]->global_init() < 0)
            global_rc = -1;
}

int http_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_rc;
}

const char *http_error_name(enum http_error e)
{
    switch (e) {
    case HTTP_OK:
        return "ok";
    case HTTP_ERR_CONNECT:
        return "connect_error";
    case HTTP_ERR_TIMEOUT:
        return "timeout";
    case HTTP_ERR_RECV:
        return "connection_error";
    case HTTP_ERR_ABORTED:
        return "aborted";
    case HTTP_ERR_OTHER:
        break;
    }
    return "transport_error";
}

/* ------------------------------------------------------------ clients */

static struct http_client *client_on(const struct http_transport_ops *ops, const char *url,
                                     size_t max_connections, char *err)
{
    if (http_global_init() < 0) {
        err_set(err, "HTTP transport initialisation failed");
        return NULL;
    }
    struct http_client *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(err, "out of memory");
        return NULL;
    }
    c->ops = ops;
    c->impl = ops->client_new(url, max_connections, err);
    if (!c->impl) {
        free(c);
        return NULL;
    }
    return c;
}

struct http_client *http_client_new(size_t max_connections, char *err)
{
    return client_on(&http_curl_ops, NULL, max_connections, err);
}

/* A proxy the environment asks for (libcurl honours it; the native client does not speak to
 * proxies): any of the usual variables, unless the URL is for loopback. */
static bool proxied(const char *url)
{
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    bool any = false;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        any |= getenv(vars[i]) && *getenv(vars[i]);
    if (!any)
        return false;
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    return strncmp(h, "127.", 4) != 0 && strncmp(h, "localhost", 9) != 0 &&
           strncmp(h, "[::1]", 5) != 0;
}

struct http_client *http_client_new_for(const char *url, size_t max_connections,
                                        enum http_transport t, char *err)
{
    if (t == HTTP_TRANSPORT_AUTO && proxied(url))
        t = HTTP_TRANSPORT_CURL;
    if (t != HTTP_TRANSPORT_CURL) {
        char nerr[ERR_LEN];
        struct http_client *c = client_on(&http_native_ops, url, max_connections, nerr);
        if (c)
            return c;
        if (t == HTTP_TRANSPORT_NATIVE) {
            err_set(err, "the native HTTP client cannot serve %s: %s", url, nerr);
            return NULL;
        }
    }
    return http_client_new(max_connections, err);
}

const struct name_entry TRANSPORT_NAMES[] = {{"auto", HTTP_TRANSPORT_AUTO},
                                             {"native", HTTP_TRANSPORT_NATIVE},
                                             {"libcurl", HTTP_TRANSPORT_CURL},
                                             {NULL, 0}};

const char *http_client_transport(const struct http_client *c)
{
    return c->ops->name;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    c->ops->client_free(c->impl);
    free(c);
}

static void reset_results(struct http_req *req)
{
    req->status = 0;
    req->error = HTTP_OK;
    req->error_text[0] = '\0';
    req->body_truncated = false;
    req->retried = false;
    req->t_first_byte_ns = req->t_done_ns = 0;
    req->bytes_received = 0;
    buf_reset(&req->body_buf);
}

int http_client_start(struct http_client *c, struct http_req *req, char *err)
{
    if (req->active)
        return err_set(err, "request already active");
    if (!req->url)
        return err_set(err, "request has no URL");
    if (req->headers.failed)
        return err_set(err, "the request's header lines could not be built");
    if (req->ops != c->ops) {
        /* it ran on the other transport before: that one's state goes */
        if (req->ops && req->impl)
            req->ops->req_release(req);
        req->impl = NULL;
        req->ops = c->ops;
    }
    reset_results(req);
    req->client = c;
    return c->ops->start(c->impl, req, err);
}

int http_client_poll_us(struct http_client *c, long timeout_us)
{
    return c->ops->poll(c->impl, timeout_us);
}

int http_client_poll(struct http_client *c, int timeout_ms)
{
    return c->ops->poll(c->impl, (long)timeout_ms * 1000);
}

int http_client_active(const struct http_client *c)
{
    return c->ops->active(c->impl);
}

void http_client_cancel(struct http_client *c, struct http_req *req)
{
    if (req->active)
        c->ops->cancel(c->impl, req);
}

void http_client_wakeup(struct http_client *c)
{
    c->ops->wakeup(c->impl);
}

int http_fetch(struct http_req *req, char *err)
{
    struct http_client *c = http_client_new(1, err);
    if (!c)
        return -1;
    if (http_client_start(c, req, err) < 0) {
        http_client_free(c);
        return -1;
    }
    while (req->active) {
        if (http_client_poll(c, 100) < 0) {
            http_client_cancel(c, req);
            break;
        }
    }
    /* The request's transport state outlives the client (released by http_req_cleanup). */
    req->client = NULL;
    http_client_free(c);
    return 0;
}

int http_get(struct http_req *req, const char *url, double timeout_s, size_t max_body, char *err)
{
    http_req_init(req);
    req->url = url;
    req->timeout_s = timeout_s;
    req->connect_timeout_s = timeout_s;
    req->max_body = max_body;
    char ferr[ERR_LEN];
    if (http_fetch(req, ferr) < 0)
        return err_set(err, "%s: %s", url, ferr);
    if (req->error != HTTP_OK)
        return err_set(err, "%s: %s", url, req->error_text);
    if (req->status != 200)
        return err_set(err, "HTTP %ld from %s", req->status, url);
    return 0;
}

/* ------------------------------------------------------------ requests */

void http_req_init(struct http_req *req)
{
    memset(req, 0, sizeof *req);
}

/* The line just appended at `from` ends the list's n-th entry: no CR or LF inside it. */
static int header_close(struct http_headers *h, size_t from)
{
    struct buf *b = &h->lines;
    if (!buf_failed(b) && b->len > from && memchr(b->data + from, '\r', b->len - from) == NULL &&
        memchr(b->data + from, '\n', b->len - from) == NULL) {
        buf_append(b, "\r\n", 2);
        if (!buf_failed(b)) {
            h->n++;
            return 0;
        }
    }
    h->failed = true;
    return -1;
}

int http_req_add_header(struct http_req *req, const char *line)
{
    size_t from = req->headers.lines.len;
    buf_append_str(&req->headers.lines, line);
    return header_close(&req->headers, from);
}

int http_req_add_headerf(struct http_req *req, const char *fmt, ...)
{
    size_t from = req->headers.lines.len;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&req->headers.lines, fmt, ap);
    va_end(ap);
    return header_close(&req->headers, from);
}

void http_req_reset_headers(struct http_req *req)
{
    buf_reset(&req->headers.lines);
    req->headers.n = 0;
    req->headers.failed = false;
}

void http_req_clear_headers(struct http_req *req)
{
    buf_free(&req->headers.lines);
    req->headers.n = 0;
    req->headers.failed = false;
}

void http_req_cleanup(struct http_req *req)
{
    if (req->active && req->client)
        http_client_cancel(req->client, req);
    if (req->ops && req->impl)
        req->ops->req_release(req);
    req->impl = NULL;
    http_req_clear_headers(req);
    buf_free(&req->body_buf);
}
