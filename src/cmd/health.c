/*
 * health.c - `kvbench health`: print a server's /health and /v1/models answers; exit non-zero
 * when it is not healthy. The runbook's quick look at a server.
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

int cmd_health(int argc, char **argv)
{
    const char *base_url = NULL, *api_key = NULL;
    double timeout_s = 0;
    struct opt opts[] = {
        CMD_OPT_BASE_URL(.dest = &base_url),
        {.name = "timeout-s",
         .type = OPT_DURATION,
         .dest = &timeout_s,
         .def = "10",
         .help = "per request"},
        CMD_OPT_API_KEY(.dest = &api_key),
        {0},
    };
    int rc = cmd_parse("health", "kvbench health [options]",
                       "Print /health and /v1/models, pretty. Exit 1 when the server is\n"
                       "unreachable, /health is not 2xx or reports an unhealthy status, or\n"
                       "/v1/models does not answer a model list.",
                       opts, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    const char *key = api_key && *api_key ? api_key : NULL;
    char err[ERR_LEN] = "", merr[ERR_LEN] = "";
    char *hbody = NULL, *mbody = NULL;
    long hs = server_health(base_url, key, timeout_s, &hbody, err);
    int models = server_models(base_url, key, timeout_s, NULL, 0, &mbody, merr);
    cmd_print_body("/health", hs, hs ? hbody : NULL);
    if (!hs)
        printf("(unreachable: %s)\n", err);
    cmd_print_body("/v1/models", 0, mbody);
    if (models < 0)
        printf("(%s)\n", merr);
    const char *status;
    int endpoints;
    bool ok = hs >= 200 && hs < 300 && ready_health_ok(hbody, &status, &endpoints) && models >= 0;
    free(hbody);
    free(mbody);
    if (!ok)
        fprintf(stderr, "kvbench health: %s is not healthy\n", base_url);
    return ok ? 0 : 1;
}
