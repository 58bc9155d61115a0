/*
 * server.c - /v1/models and /health probes over the shared HTTP client.
 */
#include "probe/server.h"

#include "util/buf.h"
#include "util/err.h"
#include "util/http.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get(const char *base_url, const char *path, const char *api_key, double timeout_s,
               struct http_req *req, char *err)
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
