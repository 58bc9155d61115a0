/*
 * server.h - the engine's HTTP front (libmicrohttpd): the API and metrics listeners, request
 * framing and validation, and connection hygiene. It submits requests to the scheduler
 * (sched.h); nothing below it calls back into it except through a request's wake_locked hook.
 */
#ifndef KVBENCH_ENGINE_SERVER_H
#define KVBENCH_ENGINE_SERVER_H

#include "engine/internal.h"

#include <stdbool.h>
#include <stddef.h>

/* Open the listeners (e->cfg.host, port, metrics_port) and start serving. Returns 0 or -1 with
 * err; on failure nothing is left running. */
int server_start(struct engine *e, char *err);
/* Stop both daemons and close every connection. No connection may be suspended. */
void server_stop(struct engine *e);
/* Validate a completion request body as the server does, without serving it (the fuzz target,
 * the unit tests). Returns 0 (status 200) or -1 with the HTTP status, the request field at
 * fault (param: 64 bytes or NULL; "" when none) and the message the client would get. */
int server_parse_request(struct engine *e, const char *body, size_t len, unsigned *status,
                         char *param, char *msg, size_t cap);
/* The same for either endpoint: chat, a /v1/chat/completions body (messages rendered through
 * the engine's chat template). ids (NULL: not wanted) gets the prompt's token ids as the
 * scheduler would see them. */
int server_parse_body(struct engine *e, bool chat, const char *body, size_t len, unsigned *status,
                      char *param, char *msg, size_t cap, struct tok_ids *ids);

#endif
