/*
 * summary.c - `kvbench summary [PATH|GLOB…]`: one table over many runs.
 */
#include "report/sumtable.h"
#include "cmd/cmd.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>

static void warn(const char *path, const char *why, void *user)
{
    int *bad = user;
    (*bad)++;
    fprintf(stderr, "kvbench summary: skipping %s: %s\n", path, why);
}

int cmd_summary(int argc, char **argv)
{
    bool as_json = false;
    struct opt opts[] = {
        {.name = "json", .type = OPT_BOOL, .dest = &as_json, .help = "print JSON rows"},
        {0},
    };
    const char *items[256];
    struct opt_positional pos = {.metavar = "PATH", .max = 256, .items = items};
    int rc = cmd_parse("summary", "kvbench summary [options] [PATH|GLOB...]",
                       "One table over many runs: run id, scenario, kv mode, valid, req/s, TTFT\n"
                       "p50/p95 (ms), latency p50/p95 (ms), error rate, goodput attainment\n"
                       "(when a run had --slo), and the scenario's verdict. PATH may be a\n"
                       "summary.json, a run directory or a directory of runs; quote globs to\n"
                       "let kvbench expand them. Default: bench/results/*/summary.json.\n"
                       "Unreadable or malformed files are reported on stderr and skipped; exit 1\n"
                       "when no summary could be read.",
                       opts, argc, argv, &pos);
    if (rc >= 0)
        return rc;
    static const char *const DEFAULT[] = {"bench/results/*/summary.json"};
    const char *const *specs = pos.n ? items : DEFAULT;
    size_t n = pos.n ? pos.n : 1;
    int bad = 0;
    json_t *found = sumtable_collect(specs, n, warn, &bad);
    json_t *rows = json_array();
    bool oom = !found || !rows;
    size_t i;
    json_t *f;
    json_array_foreach(found, i, f)
    {
        json_t *row = sumtable_row(json_object_get(f, "summary"));
        oom |= !row || json_object_set(row, "path", json_object_get(f, "path")) < 0 ||
               json_array_append_new(rows, row) < 0;
    }
    sumtable_fill_attainment(rows);
    char *text = NULL;
    struct buf b = BUF_INIT;
    if (!oom && as_json) {
        text = json_text(rows, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        oom = !text;
    } else if (!oom && json_array_size(rows)) {
        sumtable_render(rows, &b);
        oom = buf_failed(&b);
    }
    if (oom) {
        fprintf(stderr, "kvbench summary: out of memory building the table\n");
        rc = 1;
    } else {
        if (as_json)
            printf("%s\n", text);
        else
            fputs(buf_cstr(&b), stdout);
        rc = json_array_size(rows) ? 0 : 1;
        if (rc)
            fprintf(stderr, "kvbench summary: no summary.json found\n");
    }
    free(text);
    buf_free(&b);
    json_decref(rows);
    json_decref(found);
    return rc;
}
