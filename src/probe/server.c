/*
 * server.c - /v1/models and /health probes over the shared HTTP client.
 */
#include "probe/server.h"

#include "util/buf.h"
#include "util/err.h"
#include "net/http.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void prep(const char *base_url, const char *path, const char *api_key, double timeout_s,
                 struct http_req *req)
{
    static __thread char url[1024];
    snprintf(url, sizeof url, "%s%s", base_url, path);
    http_req_init(req);
    req->url = url;
    req->timeout_s = timeout_s;
    req->connect_timeout_s = timeout_s;
    req->max_body = 8u << 20;
    if (api_key) {
        struct buf auth = BUF_INIT;
        buf_printf(&auth, "Authorization: Bearer %s", api_key);
        http_req_add_header(req, buf_cstr(&auth));
        buf_free(&auth);
    }
}

static int get(const char *base_url, const char *path, const char *api_key, double timeout_s,
               struct http_req *req, char *err)
{
    prep(base_url, path, api_key, timeout_s, req);
    return http_fetch(req, err);
}

static char *dup_body(const struct http_req *req)
{
    return strndup(buf_cstr(&req->body_buf), req->body_buf.len);
}

int server_models(const char *base_url, const char *api_key, double timeout_s, char *first_id,
                  size_t id_len, char **body_out, char *err)
{
    struct http_req req;
    if (first_id && id_len)
        first_id[0] = '\0';
    if (body_out)
        *body_out = NULL;
    if (get(base_url, "/v1/models", api_key, timeout_s, &req, err) < 0) {
        http_req_cleanup(&req);
        return -1;
    }
    int rc = -1;
    if (body_out)
        *body_out = dup_body(&req);
    if (req.error != HTTP_OK) {
        err_set(err, "%s", req.error_text);
        if (req.status == 0 && (req.error == HTTP_ERR_CONNECT || req.error == HTTP_ERR_RECV))
            rc = SERVER_UNREACHABLE;
        goto out;
    }
    if (req.status != 200) {
        err_set(err, "/v1/models answered HTTP %ld", req.status);
        goto out;
    }
    json_error_t jerr;
    json_t *j = json_loadb(buf_cstr(&req.body_buf), req.body_buf.len, 0, &jerr);
    const json_t *data = json_object_get(j, "data");
    if (!json_is_array(data)) {
        err_set(err, "/v1/models did not answer a model list");
        json_decref(j);
        goto out;
    }
    rc = (int)json_array_size(data);
    const char *id = json_get_str(json_array_get(data, 0), "id", NULL);
    if (first_id && id)
        snprintf(first_id, id_len, "%s", id);
    if (rc > 0 && !id) {
        err_set(err, "/v1/models lists a model without an id");
        rc = -1;
    }
    json_decref(j);
out:
    http_req_cleanup(&req);
    return rc;
}

long server_health(const char *base_url, const char *api_key, double timeout_s, char **body_out,
                   char *err)
{
    struct http_req req;
    if (body_out)
        *body_out = NULL;
    if (get(base_url, "/health", api_key, timeout_s, &req, err) < 0) {
        http_req_cleanup(&req);
        return 0;
    }
    long status = 0;
    if (req.error != HTTP_OK)
        err_set(err, "%s", req.error_text);
    else
        status = req.status;
    if (body_out)
        *body_out = dup_body(&req);
    http_req_cleanup(&req);
    return status;
}

struct hdr_want {
    char *out;
    size_t len;
};

static void on_server_header(struct http_req *r, const char *name, size_t nlen, const char *value,
                             size_t vlen)
{
    struct hdr_want *w = r->user;
    if (nlen == 6 && strncasecmp(name, "server", 6) == 0)
        snprintf(w->out, w->len, "%.*s", (int)vlen, value);
}

long server_get(const char *base_url, const char *path, const char *api_key, double timeout_s,
                char **body_out, char *server_hdr, size_t hdr_len, char *err)
{
    struct http_req req;
    struct hdr_want want = {server_hdr, hdr_len};
    char scratch[8];
    if (!server_hdr) {
        want.out = scratch;
        want.len = sizeof scratch;
    }
    want.out[0] = '\0';
    *body_out = NULL;
    prep(base_url, path, api_key, timeout_s, &req);
    req.on_header = on_server_header;
    req.user = &want;
    long status = 0;
    if (http_fetch(&req, err) == 0) {
        if (req.error != HTTP_OK)
            err_set(err, "%s", req.error_text);
        else
            *body_out = dup_body(&req);
        status = req.error == HTTP_OK ? req.status : 0;
    }
    http_req_cleanup(&req);
    return status;
}
