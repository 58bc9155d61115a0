/*
 * report.c - `kvbench report RUN_DIR [--csv] [--out DIR]`: a run's report.md rendered again from
 * its summary.json and config.json (printed), or its requests and phase summaries as CSV.
 */
#include "bench/csvexport.h"
#include "bench/report.h"
#include "cmd/cmd.h"
#include "util/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int print_markdown(const char *dir)
{
    char path[4096];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/summary.json", dir);
    json_t *s = json_load_file(path, 0, &jerr);
    if (!json_is_object(s)) {
        fprintf(stderr, "kvbench report: cannot read %s: %s\n", path, jerr.text);
        json_decref(s);
        return 1;
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *config = json_load_file(path, 0, NULL); /* optional: the pressure plan lives there */
    char *md = report_markdown(s, config);
    int rc = md ? 0 : 1;
    if (md)
        fputs(md, stdout);
    else
        fprintf(stderr, "kvbench report: cannot build the report (out of memory)\n");
    free(md);
    json_decref(config);
    json_decref(s);
    return rc;
}

int cmd_report(int argc, char **argv)
{
    bool csv = false;
    const char *out = NULL;
    struct opt opts[] = {
        {.name = "csv",
         .type = OPT_BOOL,
         .dest = &csv,
         .help = "write requests.csv (one row per request) and phases.csv (phase and overall "
                 "summaries) instead of printing report.md"},
        {.name = "out",
         .type = OPT_STR,
         .dest = &out,
         .metavar = "DIR",
         .help = "where --csv writes (default: RUN_DIR)"},
        {0},
    };
    const char *items[1];
    struct opt_positional pos = {.metavar = "RUN_DIR", .max = 1, .items = items};
    int rc = cmd_parse("report", "kvbench report RUN_DIR [--csv [--out DIR]]",
                       "Print a run's report.md, rendered again from its summary.json and\n"
                       "config.json; with --csv, write its requests (requests.jsonl, read a line\n"
                       "at a time) and its phase summaries as CSV for spreadsheets.",
                       opts, argc, argv, &pos);
    if (rc >= 0)
        return rc;
    if (pos.n != 1) {
        fprintf(stderr, "kvbench report: expected one RUN_DIR (see --help)\n");
        return 2;
    }
    const char *dir = items[0];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "kvbench report: %s is not a run directory\n", dir);
        return 1;
    }
    if (out && !csv) {
        fprintf(stderr, "kvbench report: --out applies to --csv\n");
        return 2;
    }
    if (!csv)
        return print_markdown(dir);
    if (!out)
        out = dir;
    struct csv_result res;
    char err[ERR_LEN];
    if (csv_export_run(dir, out, &res, err) < 0) {
        fprintf(stderr, "kvbench report: %s\n", err);
        return 1;
    }
    printf("%s/requests.csv: %zu requests\n%s/phases.csv: %zu rows\n", out, res.requests, out,
           res.phases);
    if (res.skipped)
        fprintf(stderr,
                "kvbench report: %zu lines of requests.jsonl were not whole rows and were "
                "left out\n",
                res.skipped);
    return 0;
}
