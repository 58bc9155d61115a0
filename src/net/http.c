/*
 * http.c - libcurl multi driver.
 *
 * Each struct http_req owns one easy handle for its lifetime; starting it again re-applies the
 * options and re-adds it to the multi handle, which keeps the connection pool. Completion is
 * detected with curl_multi_info_read after curl_multi_perform; the easy handle is removed from the
 * multi before on_done runs, so on_done may start the same request again (closed-loop workers).
 */
#include "net/http.h"

#include "util/clock.h"
#include "util/err.h"
#include "net/http_native.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct http_client {
    CURLM *multi;
    int active;
    struct nhttp *nat; /* non-NULL: every request runs on the native client */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc = -1;

static void global_init_once(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
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

struct http_client *http_client_new(size_t max_connections, char *err)
{
    if (http_global_init() < 0) {
        err_set(err, "libcurl initialisation failed");
        return NULL;
    }
    struct http_client *c = calloc(1, sizeof *c);
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
        struct nhttp *n = nhttp_new(url, max_connections, nerr);
        if (n) {
            struct http_client *c = calloc(1, sizeof *c);
            if (!c) {
                nhttp_free(n);
                err_set(err, "out of memory");
                return NULL;
            }
            c->nat = n;
            return c;
        }
        if (t == HTTP_TRANSPORT_NATIVE) {
            err_set(err, "the native HTTP client cannot serve %s: %s", url, nerr);
            return NULL;
        }
    }
    return http_client_new(max_connections, err);
}

const char *http_client_transport(const struct http_client *c)
{
    return c->nat ? "native" : "libcurl";
}

void http_req_init(struct http_req *req)
{
    memset(req, 0, sizeof *req);
}

int http_req_add_header(struct http_req *req, const char *line)
{
    struct curl_slist *l = curl_slist_append(req->headers, line);
    if (!l)
        return -1;
    req->headers = l;
    return 0;
}

void http_req_clear_headers(struct http_req *req)
{
    curl_slist_free_all(req->headers);
    req->headers = NULL;
}

void http_req_cleanup(struct http_req *req)
{
    if (req->active && req->client)
        http_client_cancel(req->client, req);
    if (req->easy)
        curl_easy_cleanup(req->easy);
    req->easy = NULL;
    http_req_clear_headers(req);
    buf_free(&req->body_buf);
}

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

static void reset_results(struct http_req *req)
{
    req->status = 0;
    req->error = HTTP_OK;
    req->error_text[0] = '\0';
    req->curl_errbuf[0] = '\0';
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
    reset_results(req);
    req->client = c;
    if (c->nat)
        return nhttp_start(c->nat, req, err);
    bool fresh = false;
    if (!req->easy) {
        req->easy = curl_easy_init();
        if (!req->easy)
            return err_set(err, "curl_easy_init failed");
        fresh = true;
    }
    CURL *e = req->easy;

    const char *method = req->method ? req->method : req->body ? "POST" : "GET";
    bool post = strcmp(method, "POST") == 0;
    if (fresh) {
        /* options that never change for this handle */
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->curl_errbuf);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header_line);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
        curl_easy_setopt(e, CURLOPT_PRIVATE, req);
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL); /* identity: we time the raw stream */
    }
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     req->timeout_s > 0 ? (long)(req->timeout_s * 1000) : 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_s > 0 ? (long)(req->connect_timeout_s * 1000) : 10000L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    if (post) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
    }
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
    const char *detail = req->curl_errbuf[0] ? req->curl_errbuf : curl_easy_strerror(rc);
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

static void finish(struct http_client *c, struct http_req *req, CURLcode rc)
{
    curl_multi_remove_handle(c->multi, req->easy);
    req->active = false;
    c->active--;
    req->t_done_ns = clock_now_ns();
    long code = 0;
    if (curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code)
        req->status = code;
    classify(req, rc);
    if (req->on_done)
        req->on_done(req);
}

int http_client_poll_us(struct http_client *c, long timeout_us)
{
    if (c->nat)
        return nhttp_poll(c->nat, timeout_us);
    return http_client_poll(c, (int)((timeout_us + 999) / 1000));
}

int http_client_poll(struct http_client *c, int timeout_ms)
{
    if (c->nat)
        return nhttp_poll(c->nat, (long)timeout_ms * 1000);
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

int http_client_active(const struct http_client *c)
{
    return c->nat ? nhttp_active(c->nat) : c->active;
}

void http_client_cancel(struct http_client *c, struct http_req *req)
{
    if (!req->active)
        return;
    if (c->nat) {
        nhttp_cancel(c->nat, req);
        return;
    }
    req->error = HTTP_ERR_ABORTED;
    finish(c, req, CURLE_ABORTED_BY_CALLBACK);
}

void http_client_wakeup(struct http_client *c)
{
    if (c->nat)
        nhttp_wakeup(c->nat);
    else
        curl_multi_wakeup(c->multi);
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    if (c->nat)
        nhttp_free(c->nat);
    else
        curl_multi_cleanup(c->multi);
    free(c);
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
    /* The easy handle outlives the client; detach it from the dead multi. */
    req->client = NULL;
    http_client_free(c);
    return 0;
}
