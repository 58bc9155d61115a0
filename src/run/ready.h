/*
 * ready.h - waiting until a server is really ready: /v1/models lists a model (and, when asked,
 * /health lists endpoints and says healthy where it reports a status) on N consecutive polls.
 * The runbook's lesson: a frontend answers before its worker registers, and a worker can
 * register and drop; one good poll proves little.
 */
#ifndef KVBENCH_RUN_READY_H
#define KVBENCH_RUN_READY_H

#include <signal.h>
#include <stdbool.h>

struct ready_poll {
    int attempt;
    int models;         /* -1: /v1/models failed */
    long health_status; /* HTTP status of /health, 0 when unreachable */
    const char *health; /* "status" field of /health, or NULL */
    int endpoints;      /* entries of /health's "endpoints", -1 when absent */
    bool ok;            /* this poll counts toward the streak */
    int streak;
    char why[256]; /* why this poll did not count */
};

struct ready_opts {
    const char *base_url, *api_key;
    double timeout_s, interval_s;
    int consecutive;
    bool require_endpoints;
    const volatile sig_atomic_t *stop; /* may be NULL */
    void (*progress)(const struct ready_poll *p, void *user);
    void *user;
};

/* Poll until ready (returns 0) or timeout (returns -1). last_health / last_models receive the
 * last bodies seen (caller frees; may be NULL). */
int ready_wait(const struct ready_opts *o, char **last_health, char **last_models);
/* Judge one /health body: sets status (NULL if absent) and endpoint count (-1 if absent).
 * Returns true when it reports no status or a healthy one. */
bool ready_health_ok(const char *body, const char **status, int *endpoints);

#endif
