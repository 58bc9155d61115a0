/*
 * ready.c - `kvbench ready`: poll a server until /v1/models lists a model (and, asked, /health
 * lists endpoints) on several polls in a row; the runbook's "is it up yet" step. On giving up it
 * prints the last answers and one line that says why, so a failed CI step explains itself.
 */
#include "run/ready.h"
#include "scenario/workload.h"
#include "cmd/cmd.h"
#include "probe/server.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "net/http.h"
#include "util/json.h"
#include "model/tokserver.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* What `ready` waits with, and the last poll it saw (to say why it gave up). */
struct ready_watch {
    struct ready_opts o;
    struct ready_poll last;
};

static void progress(const struct ready_poll *p, void *user)
{
    struct ready_watch *w = user;
    w->last = *p;
    printf("ready: poll %d: models=%d health=%ld%s%s endpoints=%d -> %s (streak %d/%d)%s%s\n",
           p->attempt, p->models, p->health_status, p->health ? " " : "",
           p->health ? p->health : "", p->endpoints, p->ok ? "ok" : "not ready", p->streak,
           w->o.consecutive, p->ok ? "" : ": ", p->ok ? "" : p->why);
    fflush(stdout);
}

/* One line on stderr: what ready waited for, how long, and why it gave up. */
static void ready_gave_up(const struct ready_watch *w, double waited_s)
{
    const struct ready_opts *o = &w->o;
    const struct ready_poll *p = &w->last;
    char why[300];
    if (stop_flag)
        snprintf(why, sizeof why, "interrupted");
    else if (p->attempt == 0)
        snprintf(why, sizeof why, "no poll was made");
    else if (!p->ok)
        snprintf(why, sizeof why, "%s", p->why);
    else
        snprintf(why, sizeof why, "only %d good polls in a row", p->streak);
    fprintf(stderr,
            "kvbench ready: %s not ready after %.1f s: %s (waited for /v1/models to list a "
            "model%s on %d polls in a row; %d polls made)\n",
            o->base_url, waited_s, why,
            o->require_endpoints ? " and /health to list endpoints and say healthy" : "",
            o->consecutive, p->attempt);
}

int cmd_ready(int argc, char **argv)
{
    const char *base_url = NULL, *api_key = NULL;
    double timeout_s = 0, interval_s = 0;
    long long consecutive = 0;
    bool require = false;
    struct opt opts[] = {
        CMD_OPT_BASE_URL(.dest = &base_url),
        {.name = "timeout-s",
         .type = OPT_DURATION,
         .dest = &timeout_s,
         .def = "300",
         .help = "give up after this long"},
        {.name = "interval-s",
         .type = OPT_DURATION,
         .dest = &interval_s,
         .def = "5",
         .min = 0.01,
         .max = 3600,
         .help = "time between polls"},
        {.name = "consecutive",
         .type = OPT_INT,
         .dest = &consecutive,
         .def = "2",
         .min = 1,
         .max = 1000,
         .help = "good polls in a row needed"},
        {.name = "require-endpoints",
         .type = OPT_BOOL,
         .dest = &require,
         .help = "also require /health to list endpoints and say healthy"},
        CMD_OPT_API_KEY(.dest = &api_key),
        {0},
    };
    int rc =
        cmd_parse("ready", "kvbench ready [options]",
                  "Wait until the server is ready: /v1/models lists a model (and with\n"
                  "--require-endpoints /health lists endpoints and says healthy) on\n"
                  "--consecutive polls in a row. Exit 0 when ready; on timeout print the last\n"
                  "/health and /v1/models answers and exit 1.",
                  opts, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct ready_watch w = {.o = {.base_url = base_url,
                                  .api_key = api_key && *api_key ? api_key : NULL,
                                  .timeout_s = timeout_s,
                                  .interval_s = interval_s,
                                  .consecutive = (int)consecutive,
                                  .require_endpoints = require,
                                  .stop = &stop_flag,
                                  .progress = progress}};
    w.o.user = &w;
    char *health = NULL, *models = NULL;
    uint64_t t0 = clock_now_ns();
    rc = ready_wait(&w.o, &health, &models);
    if (rc == 0) {
        printf("ready: %s is ready\n", base_url);
    } else {
        printf("ready: %s not ready after %.0f s\n", base_url, timeout_s);
        cmd_print_body("last /health", 0, health);
        cmd_print_body("last /v1/models", 0, models);
        fflush(stdout);
        ready_gave_up(&w, (double)(clock_now_ns() - t0) / 1e9);
    }
    free(health);
    free(models);
    return rc == 0 ? 0 : 1;
}
