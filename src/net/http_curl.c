/*
 * http_curl.c - the libcurl transport of net/http.h (its multi interface).
 *
 * Each struct http_req owns one easy handle for its lifetime (in its per-request state, with the
 * error buffer and the header list handed to curl); starting it again re-applies the options and
 * re-adds it to the multi handle, which keeps the connection pool. The header list curl reads is
 * built over a private copy of the request's lines, in nodes this file owns, so that a request
 * rebuilt for each send allocates nothing once warm. Completion is detected with
 * curl_multi_info_read after curl_multi_perform; the easy handle is removed from the multi before
 * on_done runs, so on_done may start the same request again (closed-loop workers). This is the
 * only file that includes <curl/curl.h>.
 */
#include "net/http_transport.h"

#include "util/clock.h"
#include "util/err.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct curl_client {
    CURLM *multi;
    int active;
};

/* A request's libcurl state (req->impl). */
struct curl_req {
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
    struct buf lines;         /* the header lines, each ended by NUL instead of CRLF */
    struct curl_slist *nodes; /* one per line, linked over `lines` */
    size_t cap_nodes;
};

static int curl_global(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static void *curl_client_new(const char *url, size_t max_connections, char *err)
{
    (void)url;
    struct curl_client *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(err, "out of memory");
        return NULL;
    }
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        err_set(err, "curl_multi_init failed");
        return NULL;
    }
    long conns = max_connections ? (long)max_connections : 8;
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, conns + 4);
    return c;
}

static void curl_client_free(void *client)
{
    struct curl_client *c = client;
    curl_multi_cleanup(c->multi);
    free(c);
}

static void curl_req_release(struct http_req *req)
{
    struct curl_req *cr = req->impl;
    if (!cr)
        return;
    if (cr->easy)
        curl_easy_cleanup(cr->easy);
    buf_free(&cr->lines);
    free(cr->nodes);
    free(cr);
    req->impl = NULL;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    size_t len = size * nmemb;
    /* 0 makes curl fail the transfer with CURLE_WRITE_ERROR */
    return http_deliver_body(userdata, ptr, len, clock_now_ns()) < 0 ? 0 : len;
}

static size_t on_header_line(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct http_req *req = userdata;
    size_t len = size * nmemb;
    size_t n = len;
    while (n && (ptr[n - 1] == '\n' || ptr[n - 1] == '\r'))
        n--;
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        /* A new status line (e.g. after 100 Continue): "HTTP/1.1 200 OK". */
        const char *sp = memchr(ptr, ' ', n);
        long status = 0;
        if (sp) {
            for (const char *p = sp + 1; p < ptr + n && *p >= '0' && *p <= '9'; p++)
                status = status * 10 + (*p - '0');
        }
        req->status = status;
        return len;
    }
    const char *colon = memchr(ptr, ':', n);
    if (!colon || !req->on_header)
        return len;
    size_t name_len = (size_t)(colon - ptr);
    const char *value = colon + 1;
    size_t value_len = n - name_len - 1;
    while (value_len && (*value == ' ' || *value == '\t')) {
        value++;
        value_len--;
    }
    while (value_len && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    req->on_header(req, ptr, name_len, value, value_len);
    return len;
}

/* The request's libcurl state, made on its first start (easy handle and its fixed options). */
static struct curl_req *req_state(struct http_req *req, char *err)
{
    if (req->impl)
        return req->impl;
    struct curl_req *cr = calloc(1, sizeof *cr);
    if (!cr || !(cr->easy = curl_easy_init())) {
        free(cr);
        err_set(err, "curl_easy_init failed");
        return NULL;
    }
    CURL *e = cr->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, cr->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header_line);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL); /* identity: we time the raw stream */
    req->impl = cr;
    return cr;
}

/* curl's view of the request's header lines: NULL for none, else nodes over a private copy.
 * Returns 0 or -1 (out of memory). */
static int header_list(struct curl_req *cr, const struct http_headers *h, struct curl_slist **out)
{
    *out = NULL;
    if (!h->n)
        return 0;
    if (h->n > cr->cap_nodes) {
        struct curl_slist *nn = realloc(cr->nodes, h->n * sizeof *nn);
        if (!nn)
            return -1;
        cr->nodes = nn;
        cr->cap_nodes = h->n;
    }
    buf_reset(&cr->lines);
    buf_append(&cr->lines, h->lines.data, h->lines.len);
    if (buf_failed(&cr->lines))
        return -1;
    char *p = cr->lines.data;
    for (size_t i = 0; i < h->n; i++) {
        char *eol = strstr(p, "\r\n"); /* present: http.c ended every line so */
        *eol = '\0';
        cr->nodes[i].data = p;
        cr->nodes[i].next = i + 1 < h->n ? &cr->nodes[i + 1] : NULL;
        p = eol + 2;
    }
    *out = cr->nodes;
    return 0;
}

static void set_method(CURL *e, const struct http_req *req)
{
    const char *method = req->method ? req->method : req->body ? "POST" : "GET";
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
    }
}

static int curl_start(void *client, struct http_req *req, char *err)
{
    struct curl_client *c = client;
    struct curl_req *cr = req_state(req, err);
    if (!cr)
        return -1;
    cr->errbuf[0] = '\0';
    struct curl_slist *headers;
    if (header_list(cr, &req->headers, &headers) < 0)
        return err_set(err, "out of memory for the header list");
    CURL *e = cr->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     req->timeout_s > 0 ? (long)(req->timeout_s * 1000) : 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_s > 0 ? (long)(req->connect_timeout_s * 1000) : 10000L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    set_method(e, req);
    req->t_start_ns = clock_now_ns();
    CURLMcode mc = curl_multi_add_handle(c->multi, e);
    if (mc != CURLM_OK)
        return err_set(err, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
    req->active = true;
    c->active++;
    return 0;
}

static void classify(struct http_req *req, CURLcode rc)
{
    if (rc == CURLE_OK)
        return;
    if (req->error == HTTP_ERR_ABORTED) {
        snprintf(req->error_text, sizeof req->error_text, "aborted by the client");
        return;
    }
    if (req->error == HTTP_ERR_OTHER && req->error_text[0])
        return;
    const struct curl_req *cr = req->impl;
    const char *detail = cr->errbuf[0] ? cr->errbuf : curl_easy_strerror(rc);
    const char *what;
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        req->error = HTTP_ERR_CONNECT;
        what = "connect failed";
        break;
    case CURLE_OPERATION_TIMEDOUT:
        req->error = HTTP_ERR_TIMEOUT;
        what = "timeout";
        break;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
        req->error = HTTP_ERR_RECV;
        what = "connection closed or reset";
        break;
    default:
        req->error = HTTP_ERR_OTHER;
        what = "transport error";
        break;
    }
    snprintf(req->error_text, sizeof req->error_text, "%s: %.200s", what, detail);
}

static void finish(struct curl_client *c, struct http_req *req, CURLcode rc)
{
    struct curl_req *cr = req->impl;
    curl_multi_remove_handle(c->multi, cr->easy);
    req->active = false;
    c->active--;
    req->t_done_ns = clock_now_ns();
    long code = 0;
    if (curl_easy_getinfo(cr->easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code)
        req->status = code;
    classify(req, rc);
    if (req->on_done)
        req->on_done(req);
}

static int curl_poll(void *client, long timeout_us)
{
    struct curl_client *c = client;
    int timeout_ms = (int)((timeout_us + 999) / 1000);
    int running = 0;
    CURLMcode mc = curl_multi_perform(c->multi, &running);
    if (mc != CURLM_OK)
        return -1;
    if (running > 0 || c->active == 0) {
        mc = curl_multi_poll(c->multi, NULL, 0, timeout_ms, NULL);
        if (mc != CURLM_OK)
            return -1;
        mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK)
            return -1;
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct http_req *req = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        if (req)
            finish(c, req, msg->data.result);
    }
    return c->active;
}

static int curl_active(const void *client)
{
    const struct curl_client *c = client;
    return c->active;
}

static void curl_cancel(void *client, struct http_req *req)
{
    req->error = HTTP_ERR_ABORTED;
    finish(client, req, CURLE_ABORTED_BY_CALLBACK);
}

static void curl_wakeup(void *client)
{
    struct curl_client *c = client;
    curl_multi_wakeup(c->multi);
}

const struct http_transport_ops http_curl_ops = {
    .name = "libcurl",
    .global_init = curl_global,
    .client_new = curl_client_new,
    .client_free = curl_client_free,
    .start = curl_start,
    .poll = curl_poll,
    .active = curl_active,
    .cancel = curl_cancel,
    .wakeup = curl_wakeup,
    .req_release = curl_req_release,
};
