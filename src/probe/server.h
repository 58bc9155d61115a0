/*
 * server.h - probes of an OpenAI-compatible server: its models and its health.
 */
#ifndef KVBENCH_PROBE_SERVER_H
#define KVBENCH_PROBE_SERVER_H

#include <jansson.h>
#include <stdbool.h>

/* GET <base>/v1/models. Returns the number of models listed (>= 0) and, when first_id is not
 * NULL, copies the first id; or -1 with err when the server could not be asked or answered
 * something that is not a model list. body_out (optional) receives the raw body (caller frees). */
int server_models(const char *base_url, const char *api_key, double timeout_s, char *first_id,
                  size_t id_len, char **body_out, char *err);
/* GET <base>/health: returns the HTTP status (0 when unreachable) and, when body_out is not NULL,
 * the body (caller frees). */
long server_health(const char *base_url, const char *api_key, double timeout_s, char **body_out,
                   char *err);

#endif
