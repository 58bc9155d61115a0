/*
 * report.c - `kvbench report DIR [--html | --csv [--out DIR]]`: a run's report.md rendered again
 * from its summary.json and config.json (printed), its report.html drawn again, or its requests
 * and phase summaries as CSV; for a comparison's directory, its comparison.md or report.html.
 */
#include "verdict/compare.h"
#include "report/csvexport.h"
#include "report/html.h"
#include "report/report.h"
#include "cmd/cmd.h"
#include "util/err.h"
#include "util/json.h"

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

static bool has_file(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A comparison's directory: comparison.md printed again from comparison.json, or report.html. */
static int compare_dir(const char *dir, bool html)
{
    char err[ERR_LEN];
    if (html) {
        if (html_write_compare(dir, err) < 0) {
            fprintf(stderr, "kvbench report: %s\n", err);
            return 1;
        }
        printf("%s/report.html\n", dir);
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/comparison.json", dir);
    json_t *cmp = json_read_file(path, err);
    if (!cmp) {
        fprintf(stderr, "kvbench report: %s\n", err);
        return 1;
    }
    char *md = compare_markdown(cmp);
    if (md)
        fputs(md, stdout);
    free(md);
    json_decref(cmp);
    return md ? 0 : 1;
}

int cmd_report(int argc, char **argv)
{
    bool csv = false, html = false;
    const char *out = NULL;
    struct opt opts[] = {
        {.name = "csv",
         .type = OPT_BOOL,
         .dest = &csv,
         .help = "write requests.csv (one row per request) and phases.csv (phase and overall "
                 "summaries) instead of printing report.md"},
        {.name = "html",
         .type = OPT_BOOL,
         .dest = &html,
         .help = "write report.html (charts and the report, one self-contained page) into the "
                 "directory and print its path"},
        {.name = "out",
         .type = OPT_STR,
         .dest = &out,
         .metavar = "DIR",
         .help = "where --csv writes (default: RUN_DIR)"},
        {0},
    };
    const char *items[1];
    struct opt_positional pos = {.metavar = "RUN_DIR|COMPARE_DIR", .max = 1, .items = items};
    int rc = cmd_parse("report", "kvbench report RUN_DIR|COMPARE_DIR [--html | --csv [--out DIR]]",
                       "Print a run's report.md, rendered again from its summary.json and\n"
                       "config.json; with --html, draw its report.html again (runs, compare and\n"
                       "matrix write it themselves); with --csv, write its requests\n"
                       "(requests.jsonl, read a line at a time) and its phase summaries as CSV\n"
                       "for spreadsheets. A comparison's directory (kvbench compare) gives its\n"
                       "comparison.md, or with --html its report.html.",
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
        fprintf(stderr, "kvbench report: %s is not a run or comparison directory\n", dir);
        return 1;
    }
    if (out && !csv) {
        fprintf(stderr, "kvbench report: --out applies to --csv\n");
        return 2;
    }
    if (csv && html) {
        fprintf(stderr, "kvbench report: --csv and --html: give one\n");
        return 2;
    }
    if (has_file(dir, "comparison.json") && !has_file(dir, "summary.json")) {
        if (csv) {
            fprintf(stderr, "kvbench report: --csv applies to a run directory; a comparison's "
                            "runs are beside it\n");
            return 2;
        }
        return compare_dir(dir, html);
    }
    if (html) {
        char err[ERR_LEN];
        if (html_write_run(dir, err) < 0) {
            fprintf(stderr, "kvbench report: %s\n", err);
            return 1;
        }
        printf("%s/report.html\n", dir);
        return 0;
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
