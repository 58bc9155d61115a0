/*
 * server.h - probes of an OpenAI-compatible server: its models and its health.
 */
#ifndef KVBENCH_PROBE_SERVER_H
#define KVBENCH_PROBE_SERVER_H

#include <jansson.h>
#include <stdbool.h>

/* What server_models returns when nothing answered at all (refused, reset, closed unanswered). */
#define SERVER_UNREACHABLE (-2)

/* GET <base>/v1/models. Returns the number of models listed (>= 0) and, when first_id is not
 * NULL, copies the first id; or SERVER_UNREACHABLE when no server answered, or -1 with err when
 * the server could not be asked or answered something that is not a model list. body_out (optional)
 * receives the raw body (caller frees). */
int server_models(const char *base_url, const char *api_key, double timeout_s, char *first_id,
                  size_t id_len, char **body_out, char *err);
/* GET <base>/health: returns the HTTP status (0 when unreachable) and, when body_out is not NULL,
 * the body (caller frees). */
long server_health(const char *base_url, const char *api_key, double timeout_s, char **body_out,
                   char *err);

/* GET <base><path>: returns the HTTP status (0 when nothing answered), the body (caller frees;
 * NULL when none) and, when server_hdr is not NULL, the Server header ("" when absent). */
long server_get(const char *base_url, const char *path, const char *api_key, double timeout_s,
                char **body_out, char *server_hdr, size_t hdr_len, char *err);

#endif
