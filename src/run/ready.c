/*
 * ready.c - the readiness loop over probe/server.
 */
#include "run/ready.h"

#include "probe/server.h"
#include "util/clock.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool ready_health_ok(const char *body, const char **status, int *endpoints)
{
    static __thread char st[64];
    *status = NULL;
    *endpoints = -1;
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    if (!j)
        return true; /* a plain-text health page reports no status */
    const json_t *s = json_object_get(j, "status");
    bool ok = true;
    if (json_is_string(s)) {
        snprintf(st, sizeof st, "%s", json_string_value(s));
        *status = st;
        ok = strcasecmp(st, "healthy") == 0 || strcasecmp(st, "ok") == 0 ||
             strcasecmp(st, "ready") == 0;
    }
    const json_t *e = json_object_get(j, "endpoints");
    if (json_is_array(e))
        *endpoints = (int)json_array_size(e);
    json_decref(j);
    return ok;
}

int ready_wait(const struct ready_opts *o, char **last_health, char **last_models)
{
    uint64_t deadline = clock_now_ns() + (uint64_t)(o->timeout_s * 1e9);
    struct ready_poll p;
    memset(&p, 0, sizeof p);
    if (last_health)
        *last_health = NULL;
    if (last_models)
        *last_models = NULL;
    double per_call = o->interval_s > 1 ? o->interval_s : 1;
    if (per_call > 10)
        per_call = 10;
    for (;;) {
        p.attempt++;
        char err[512] = "", id[256];
        char *models_body = NULL, *health_body = NULL;
        p.models =
            server_models(o->base_url, o->api_key, per_call, id, sizeof id, &models_body, err);
        char herr[512] = "";
        p.health_status = server_health(o->base_url, o->api_key, per_call, &health_body, herr);
        bool healthy = ready_health_ok(health_body, &p.health, &p.endpoints);
        p.ok = false;
        if (p.models < 0)
            snprintf(p.why, sizeof p.why, "/v1/models: %s", err);
        else if (p.models == 0)
            snprintf(p.why, sizeof p.why, "/v1/models lists no model yet");
        else if (o->require_endpoints && p.health_status == 0)
            snprintf(p.why, sizeof p.why, "/health unreachable: %s", herr);
        else if (o->require_endpoints && !healthy)
            snprintf(p.why, sizeof p.why, "/health says %s", p.health ? p.health : "?");
        else if (o->require_endpoints && p.endpoints <= 0)
            snprintf(p.why, sizeof p.why, "/health lists no endpoints");
        else if (o->require_endpoints && (p.health_status < 200 || p.health_status >= 300))
            snprintf(p.why, sizeof p.why, "/health answered HTTP %ld", p.health_status);
        else
            p.ok = true;
        p.streak = p.ok ? p.streak + 1 : 0;
        if (last_health) {
            free(*last_health);
            *last_health = health_body;
            health_body = NULL;
        }
        if (last_models) {
            free(*last_models);
            *last_models = models_body;
            models_body = NULL;
        }
        free(health_body);
        free(models_body);
        if (o->progress)
            o->progress(&p, o->user);
        if (p.streak >= o->consecutive)
            return 0;
        if ((o->stop && *o->stop) || clock_now_ns() >= deadline)
            return -1;
        uint64_t wait = (uint64_t)(o->interval_s * 1e9);
        uint64_t left = deadline - clock_now_ns();
        clock_sleep_ns(wait < left ? wait : left, (const volatile int *)o->stop);
    }
}
