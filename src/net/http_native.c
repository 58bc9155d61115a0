/*
 * http_native.c - the native transport of net/http.h: HTTP/1.1 over non-blocking sockets, epoll
 * and libhttp-parser (the parser wrk uses), for plain http:// URLs to one origin per client.
 *
 * A connection is CONNECTING (EPOLLOUT until the connect resolves), SENDING (EPOLLOUT while the
 * socket is full), RECEIVING or IDLE (both EPOLLIN: an idle one notices the server closing it).
 * A request takes the most recently idled connection, so closed-loop workers keep theirs, and
 * its head and body go out in one sendmsg. A response is complete at the parser's
 * message-complete; the connection then goes back to the idle stack before on_done runs, so
 * on_done may start the next request at once. A kept-alive connection that the server closed
 * meanwhile (no response byte before EOF or reset) is retried once on a new connection, as curl
 * does. Timeouts are checked by scanning the live connections every TIMEOUT_SCAN_MS.
 */
#include "net/http_transport.h"

#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"

#include <errno.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_SCAN_MS 20
#define READ_BUF        (256 * 1024)
#define MAX_EVENTS      256

enum nstate { NC_CONNECTING, NC_SENDING, NC_RECEIVING, NC_IDLE };

struct nconn {
    struct nhttp *n;
    int fd;
    enum nstate state;
    struct http_req *req;
    http_parser parser;
    struct buf head;  /* request line and headers */
    size_t sent;      /* of head + body */
    bool reused;      /* served a request before: a silent close may be a stale keep-alive */
    bool got_bytes;   /* bytes of the current response arrived */
    bool complete;    /* the response is complete */
    bool skip_1xx;    /* an interim 1xx response is being read */
    bool want_out;    /* EPOLLOUT in the interest set */
    struct buf hname; /* header being assembled (split across reads) */
    struct buf hvalue;
    bool in_value;
    bool dead;       /* closed; freed when the current poll's batch of events is done */
    uint64_t recv_t; /* when the bytes being parsed arrived */
    size_t live_idx; /* position in n->live */
    size_t idle_idx; /* position in n->idle while idle */
    bool is_idle;
    struct nconn *next_dead;
};

struct nhttp {
    int ep, evfd;
    int active;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host[300];      /* Host header value */
    struct nconn **live; /* every open connection */
    size_t n_live, cap_live;
    struct nconn **idle; /* a stack */
    size_t n_idle, cap_idle;
    struct http_req **failed; /* requests that failed in start(), completed by the next poll */
    size_t n_failed, cap_failed;
    struct nconn *dead; /* closed connections, freed after the event batch */
    uint64_t next_scan_ns;
    char *rbuf;
    http_parser_settings settings;
};

static void finish(struct nconn *c, bool keep);

/* ------------------------------------------------------------ small helpers */

static int grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    void **a = arr;
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *p = realloc(*a, nc * elem);
    if (!p)
        return -1;
    *a = p;
    *cap = nc;
    return 0;
}

static void set_interest(struct nconn *c, bool out)
{
    if (c->want_out == out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(c->n->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static void idle_push(struct nhttp *n, struct nconn *c)
{
    c->is_idle = true;
    c->idle_idx = n->n_idle;
    n->idle[n->n_idle++] = c;
}

static struct nconn *idle_pop(struct nhttp *n)
{
    struct nconn *c = n->idle[--n->n_idle];
    c->is_idle = false;
    return c;
}

/* Close c now; its memory goes when the current batch of events is done (an event for it may
 * still be waiting in that batch). */
static void conn_close(struct nconn *c)
{
    struct nhttp *n = c->n;
    if (c->dead)
        return;
    c->dead = true;
    epoll_ctl(n->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    size_t i = c->live_idx;
    n->live[i] = n->live[--n->n_live];
    n->live[i]->live_idx = i;
    if (c->is_idle) {
        size_t k = c->idle_idx;
        n->idle[k] = n->idle[--n->n_idle];
        n->idle[k]->idle_idx = k;
        c->is_idle = false;
    }
    c->next_dead = n->dead;
    n->dead = c;
}

static void bury(struct nhttp *n)
{
    while (n->dead) {
        struct nconn *c = n->dead;
        n->dead = c->next_dead;
        buf_free(&c->head);
        buf_free(&c->hname);
        buf_free(&c->hvalue);
        free(c);
    }
}

static void fail_req(struct http_req *req, enum http_error e, const char *fmt, const char *detail)
{
    req->error = e;
    snprintf(req->error_text, sizeof req->error_text, fmt, detail);
}

/* ------------------------------------------------------------ parser callbacks */

static void emit_header(struct nconn *c)
{
    struct http_req *r = c->req;
    if (c->hname.len && r && r->on_header && !c->skip_1xx) {
        const char *v = buf_cstr(&c->hvalue);
        size_t vl = c->hvalue.len;
        while (vl && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        r->on_header(r, c->hname.data, c->hname.len, v, vl);
    }
    buf_reset(&c->hname);
    buf_reset(&c->hvalue);
    c->in_value = false;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct nconn *c = p->data;
    if (c->in_value)
        emit_header(c);
    buf_append(&c->hname, at, len);
    return buf_failed(&c->hname) ? -1 : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct nconn *c = p->data;
    c->in_value = true;
    buf_append(&c->hvalue, at, len);
    return buf_failed(&c->hvalue) ? -1 : 0;
}

static int on_headers_complete(http_parser *p)
{
    struct nconn *c = p->data;
    c->skip_1xx = p->status_code >= 100 && p->status_code < 200 && p->status_code != 101;
    emit_header(c);
    if (!c->skip_1xx && c->req)
        c->req->status = p->status_code;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct nconn *c = p->data;
    if (c->skip_1xx || !c->req)
        return 0;
    return http_deliver_body(c->req, at, len, c->recv_t) < 0 ? -1 : 0;
}

static int on_message_complete(http_parser *p)
{
    struct nconn *c = p->data;
    if (c->skip_1xx) {
        c->skip_1xx = false; /* the real response follows */
        return 0;
    }
    c->complete = true;
    http_parser_pause(p, 1); /* stop here: bytes after the response are not ours */
    return 0;
}

/* ------------------------------------------------------------ client */

static int parse_origin(const char *url, char *host, size_t hcap, char *port, size_t pcap,
                        const char **path)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7;
    const char *end = h + strcspn(h, "/?#");
    if (memchr(h, '@', (size_t)(end - h)))
        return -1; /* credentials in the URL: libcurl's business */
    const char *colon = NULL;
    const char *hs = h, *he;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb)
            return -1;
        hs = h + 1;
        he = rb;
        if (rb + 1 < end && rb[1] == ':')
            colon = rb + 1;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        he = colon ? colon : end;
    }
    if (he == hs || (size_t)(he - hs) >= hcap)
        return -1;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (colon) {
        size_t pl = (size_t)(end - colon - 1);
        if (pl == 0 || pl >= pcap || strspn(colon + 1, "0123456789") < pl)
            return -1;
        memcpy(port, colon + 1, pl);
        port[pl] = '\0';
    } else {
        snprintf(port, pcap, "80");
    }
    if (path)
        *path = end;
    return 0;
}

static void nhttp_free(void *client);

static void *nhttp_new(const char *url, size_t max_connections, char *err)
{
    (void)max_connections;
    char host[256], port[16];
    const char *path;
    if (parse_origin(url, host, sizeof host, port, sizeof port, &path) < 0) {
        err_set(err, "not a plain http:// URL");
        return NULL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        err_set(err, "cannot resolve %s: %s", host, gai_strerror(gai));
        return NULL;
    }
    struct nhttp *n = calloc(1, sizeof *n);
    if (!n) {
        freeaddrinfo(ai);
        err_set(err, "out of memory");
        return NULL;
    }
    memcpy(&n->addr, ai->ai_addr, ai->ai_addrlen);
    n->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    const char *h = url + 7;
    snprintf(n->host, sizeof n->host, "%.*s", (int)strcspn(h, "/?#"), h);
    n->ep = epoll_create1(EPOLL_CLOEXEC);
    n->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    n->rbuf = malloc(READ_BUF);
    if (n->ep < 0 || n->evfd < 0 || !n->rbuf) {
        err_set(err, "cannot set up the event loop: %s", strerror(errno));
        nhttp_free(n);
        return NULL;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(n->ep, EPOLL_CTL_ADD, n->evfd, &ev);
    http_parser_settings_init(&n->settings);
    n->settings.on_header_field = on_header_field;
    n->settings.on_header_value = on_header_value;
    n->settings.on_headers_complete = on_headers_complete;
    n->settings.on_body = on_body;
    n->settings.on_message_complete = on_message_complete;
    return n;
}

static void nhttp_free(void *client)
{
    struct nhttp *n = client;
    if (!n)
        return;
    while (n->n_live)
        conn_close(n->live[n->n_live - 1]);
    bury(n);
    free(n->live);
    free(n->idle);
    free(n->failed);
    free(n->rbuf);
    if (n->ep >= 0)
        close(n->ep);
    if (n->evfd >= 0)
        close(n->evfd);
    free(n);
}

static int nhttp_active(const void *client)
{
    const struct nhttp *n = client;
    return n->active;
}

static void nhttp_wakeup(void *client)
{
    struct nhttp *n = client;
    uint64_t one = 1;
    ssize_t w = write(n->evfd, &one, sizeof one);
    (void)w;
}

/* A new, connecting connection, or NULL (errno set). */
static struct nconn *conn_open(struct nhttp *n)
{
    if (grow(&n->live, &n->cap_live, n->n_live + 1, sizeof *n->live) < 0 ||
        grow(&n->idle, &n->cap_idle, n->n_live + 1, sizeof *n->idle) < 0) {
        errno = ENOMEM;
        return NULL;
    }
    int fd = socket(n->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&n->addr, n->addrlen) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    struct nconn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    c->n = n;
    c->fd = fd;
    c->state = NC_CONNECTING;
    c->want_out = true;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(n->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        close(fd);
        free(c);
        errno = e;
        return NULL;
    }
    c->live_idx = n->n_live;
    n->live[n->n_live++] = c;
    return c;
}

/* The request head for req on c. Returns 0 or -1. */
static int build_head(struct nconn *c, struct http_req *req)
{
    const char *path = NULL;
    char host[256], port[16];
    if (parse_origin(req->url, host, sizeof host, port, sizeof port, &path) < 0)
        return -1;
    const char *method = req->method ? req->method : req->body ? "POST" : "GET";
    struct buf *h = &c->head;
    buf_reset(h);
    buf_printf(h, "%s %s%s HTTP/1.1\r\nHost: %s\r\n", method, *path == '/' ? "" : "/", path,
               c->n->host);
    buf_append(h, req->headers.lines.data, req->headers.lines.len); /* CRLF-ended lines */
    if (req->body || strcmp(method, "POST") == 0)
        buf_printf(h, "Content-Length: %zu\r\n", req->body ? req->body_len : 0);
    buf_append(h, "\r\n", 2);
    return buf_failed(h) ? -1 : 0;
}

/* Write what is left of head + body. Returns 0 (all sent or would block), -1 on an error. */
static int send_some(struct nconn *c)
{
    struct http_req *r = c->req;
    size_t hl = c->head.len, bl = r->body ? r->body_len : 0;
    while (c->sent < hl + bl) {
        struct iovec iov[2];
        int k = 0;
        if (c->sent < hl) {
            iov[k].iov_base = c->head.data + c->sent;
            iov[k++].iov_len = hl - c->sent;
            if (bl) {
                iov[k].iov_base = (void *)r->body;
                iov[k++].iov_len = bl;
            }
        } else {
            iov[k].iov_base = (void *)(r->body + (c->sent - hl));
            iov[k++].iov_len = hl + bl - c->sent;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_interest(c, true);
                return 0;
            }
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->sent += (size_t)w;
    }
    c->state = NC_RECEIVING;
    set_interest(c, false);
    return 0;
}

static void begin_on(struct nconn *c, struct http_req *req)
{
    c->req = req;
    req->conn = c;
    c->sent = 0;
    c->got_bytes = c->complete = c->skip_1xx = c->in_value = false;
    buf_reset(&c->hname);
    buf_reset(&c->hvalue);
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
}

static int queue_failed(struct nhttp *n, struct http_req *req)
{
    if (grow(&n->failed, &n->cap_failed, n->n_failed + 1, sizeof *n->failed) < 0)
        return -1;
    n->failed[n->n_failed++] = req;
    return 0;
}

/* Start req on an idle connection or a new one. Returns 0, or -1 with errno (nothing started). */
static int dispatch(struct nhttp *n, struct http_req *req)
{
    while (n->n_idle) {
        struct nconn *c = idle_pop(n);
        begin_on(c, req);
        c->state = NC_SENDING;
        if (build_head(c, req) < 0) {
            errno = EINVAL;
            return -1;
        }
        if (send_some(c) == 0)
            return 0;
        /* a stale keep-alive connection refused the write: drop it and try the next */
        c->req = NULL;
        conn_close(c);
    }
    struct nconn *c = conn_open(n);
    if (!c)
        return -1;
    begin_on(c, req);
    if (build_head(c, req) < 0) {
        c->req = NULL;
        conn_close(c);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

static int nhttp_start(void *client, struct http_req *req, char *err)
{
    struct nhttp *n = client;
    req->t_start_ns = clock_now_ns();
    req->active = true;
    n->active++;
    if (dispatch(n, req) < 0) {
        int e = errno;
        req->conn = NULL;
        fail_req(req, e == EINVAL ? HTTP_ERR_OTHER : HTTP_ERR_CONNECT,
                 e == EINVAL ? "%s" : "connect failed: %s",
                 e == EINVAL ? "the URL is not for this client's origin" : strerror(e));
        if (queue_failed(n, req) < 0) {
            req->active = false;
            n->active--;
            return err_set(err, "out of memory");
        }
    }
    return 0;
}

/* Complete c's request; the connection is kept for the next one or closed. */
static void finish(struct nconn *c, bool keep)
{
    struct nhttp *n = c->n;
    struct http_req *req = c->req;
    c->req = NULL;
    if (keep) {
        c->state = NC_IDLE;
        c->reused = true;
        set_interest(c, false);
        idle_push(n, c);
    } else {
        conn_close(c);
    }
    if (!req)
        return;
    req->conn = NULL;
    req->active = false;
    n->active--;
    req->t_done_ns = clock_now_ns();
    if (req->on_done)
        req->on_done(req);
}

/* The connection failed before the response completed. */
static void conn_failed(struct nconn *c, enum http_error e, const char *fmt, const char *detail)
{
    struct http_req *req = c->req;
    struct nhttp *n = c->n;
    if (req && !c->got_bytes && c->reused && !req->retried && e == HTTP_ERR_RECV) {
        /* the server closed a kept-alive connection as we reused it: once more, afresh */
        req->retried = true;
        c->req = NULL;
        conn_close(c);
        struct nconn *nc = conn_open(n);
        if (nc) {
            begin_on(nc, req);
            if (build_head(nc, req) == 0)
                return;
            nc->req = NULL;
            conn_close(nc);
        }
        fail_req(req, HTTP_ERR_CONNECT, "connect failed: %s", strerror(errno));
        queue_failed(n, req);
        return;
    }
    if (req && req->error == HTTP_OK)
        fail_req(req, e, fmt, detail);
    finish(c, false);
}

static void on_readable(struct nconn *c)
{
    struct nhttp *n = c->n;
    for (int rounds = 0; rounds < 4; rounds++) {
        ssize_t got = recv(c->fd, n->rbuf, READ_BUF, 0);
        uint64_t t = clock_now_ns();
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            if (!c->req) {
                conn_close(c);
                return;
            }
            conn_failed(c, HTTP_ERR_RECV, "connection closed or reset: %s", strerror(errno));
            return;
        }
        if (!c->req) {
            conn_close(c); /* an idle connection: closed by the server, or bytes nobody asked for */
            return;
        }
        if (got == 0) {
            http_parser_execute(&c->parser, &n->settings, NULL, 0); /* EOF ends read-to-close */
            if (c->complete) {
                finish(c, false);
            } else {
                conn_failed(c, HTTP_ERR_RECV, "connection closed or reset: %s",
                            c->got_bytes ? "the response was cut short"
                                         : "the server closed the connection without answering");
            }
            return;
        }
        c->got_bytes = true;
        struct http_req *req = c->req;
        size_t len = (size_t)got;
        c->recv_t = t;
        size_t done = http_parser_execute(&c->parser, &n->settings, n->rbuf, len);
        enum http_errno he = HTTP_PARSER_ERRNO(&c->parser);
        if (c->complete) {
            bool keep = done == len && http_should_keep_alive(&c->parser) && req->error == HTTP_OK;
            http_parser_pause(&c->parser, 0);
            finish(c, keep);
            return;
        }
        if (he != HPE_OK) {
            if (req->error == HTTP_ERR_ABORTED || req->error == HTTP_ERR_OTHER) {
                /* on_data stopped it, or the collected body passed its cap */
                if (!req->error_text[0])
                    snprintf(req->error_text, sizeof req->error_text, "aborted by the client");
                finish(c, false);
                return;
            }
            conn_failed(c, HTTP_ERR_OTHER, "malformed HTTP response: %s",
                        http_errno_description(he));
            return;
        }
    }
}

static void on_writable(struct nconn *c)
{
    if (c->state == NC_CONNECTING) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            struct http_req *req = c->req;
            if (req)
                fail_req(req, HTTP_ERR_CONNECT, "connect failed: %s", strerror(soerr));
            finish(c, false);
            return;
        }
        c->state = NC_SENDING;
    }
    if (c->state == NC_SENDING && c->req && send_some(c) < 0)
        conn_failed(c, HTTP_ERR_RECV, "connection closed or reset: %s", strerror(errno));
}

static void scan_timeouts(struct nhttp *n, uint64_t now)
{
    for (size_t i = 0; i < n->n_live;) {
        struct nconn *c = n->live[i];
        struct http_req *r = c->req;
        if (r) {
            double conn_s = r->connect_timeout_s > 0 ? r->connect_timeout_s : 10;
            double age_s = (double)(now - r->t_start_ns) / 1e9;
            if (c->state == NC_CONNECTING && age_s >= conn_s) {
                fail_req(r, HTTP_ERR_TIMEOUT, "timeout: %s",
                         "no connection within the connect timeout");
                finish(c, false);
                continue; /* live[i] now holds another connection */
            }
            if (r->timeout_s > 0 && age_s >= r->timeout_s) {
                char d[96];
                snprintf(d, sizeof d, "no complete response after %.1f s (%zu bytes received)",
                         age_s, r->bytes_received);
                fail_req(r, HTTP_ERR_TIMEOUT, "timeout: %s", d);
                finish(c, false);
                continue;
            }
        }
        i++;
    }
}

/* epoll_pwait2 (Linux 5.11) waits in microseconds, which an open-loop schedule needs. Older
 * kernels, and emulators such as Debian 12's qemu-user, answer ENOSYS: then epoll_wait, with the
 * wait rounded up to whole milliseconds (sends are never early, at most 1 ms late). */
static atomic_bool pwait2_missing;

static int native_epoll_wait(int ep, struct epoll_event *evs, int max, long timeout_us)
{
    if (!atomic_load_explicit(&pwait2_missing, memory_order_relaxed)) {
        struct timespec ts = {.tv_sec = timeout_us / 1000000L,
                              .tv_nsec = (timeout_us % 1000000L) * 1000L};
        int k = epoll_pwait2(ep, evs, max, &ts, NULL);
        if (k >= 0 || errno != ENOSYS)
            return k;
        atomic_store_explicit(&pwait2_missing, true, memory_order_relaxed);
    }
    return epoll_wait(ep, evs, max, (int)((timeout_us + 999) / 1000));
}

static int nhttp_poll(void *client, long timeout_us)
{
    struct nhttp *n = client;
    /* requests that could not start complete here, outside nhttp_start */
    while (n->n_failed) {
        struct http_req *req = n->failed[--n->n_failed];
        req->active = false;
        n->active--;
        req->t_done_ns = clock_now_ns();
        if (req->on_done)
            req->on_done(req);
    }
    if (timeout_us > TIMEOUT_SCAN_MS * 1000L)
        timeout_us = TIMEOUT_SCAN_MS * 1000L;
    if (timeout_us < 0 || n->n_failed)
        timeout_us = 0;
    struct epoll_event evs[MAX_EVENTS];
    int k = native_epoll_wait(n->ep, evs, MAX_EVENTS, timeout_us);
    if (k < 0 && errno != EINTR)
        return -1;
    for (int i = 0; i < k; i++) {
        struct nconn *c = evs[i].data.ptr;
        if (c && c->dead)
            continue;
        if (!c) {
            uint64_t v;
            ssize_t r = read(n->evfd, &v, sizeof v);
            (void)r;
            continue;
        }
        if (evs[i].events & (EPOLLOUT | EPOLLERR) && c->state != NC_RECEIVING &&
            c->state != NC_IDLE) {
            on_writable(c);
            continue;
        }
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            on_readable(c);
    }
    uint64_t now = clock_now_ns();
    if (now >= n->next_scan_ns) {
        scan_timeouts(n, now);
        n->next_scan_ns = now + (uint64_t)TIMEOUT_SCAN_MS * 1000000u;
    }
    bury(n);
    return n->active;
}

static void nhttp_cancel(void *client, struct http_req *req)
{
    struct nhttp *n = client;
    if (!req->active)
        return;
    req->error = HTTP_ERR_ABORTED;
    snprintf(req->error_text, sizeof req->error_text, "aborted by the client");
    struct nconn *c = req->conn;
    if (c) {
        finish(c, false);
        return;
    }
    for (size_t i = 0; i < n->n_failed; i++) {
        if (n->failed[i] == req) {
            n->failed[i] = n->failed[--n->n_failed];
            break;
        }
    }
    req->active = false;
    n->active--;
    req->t_done_ns = clock_now_ns();
    if (req->on_done)
        req->on_done(req);
}

/* Nothing per request outside the connection serving it (req->conn). */
static void nhttp_req_release(struct http_req *req)
{
    req->impl = NULL;
}

const struct http_transport_ops http_native_ops = {
    .name = "native",
    .global_init = NULL,
    .client_new = nhttp_new,
    .client_free = nhttp_free,
    .start = nhttp_start,
    .poll = nhttp_poll,
    .active = nhttp_active,
    .cancel = nhttp_cancel,
    .wakeup = nhttp_wakeup,
    .req_release = nhttp_req_release,
};
