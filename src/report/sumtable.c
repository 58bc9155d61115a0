/*
 * sumtable.c - many summaries, one table.
 *
 * Out of memory is never a shorter table: sumtable_collect and sumtable_row return NULL rather
 * than a list or a row with something missing, and sumtable_render marks its output buffer failed
 * (buf's sticky error) rather than leaving it empty.
 */
#include "report/sumtable.h"

#include "scenario/scenario.h"

#include "util/fault.h"
#include "util/json.h"

#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Returns 0, or -1 when out of memory (a summary that cannot be used is a warning, not that). */
static int add_file(json_t *out, json_t *seen, const char *path, sumtable_warn_fn warn, void *user)
{
    char real[4096];
    const char *key = realpath(path, real) ? real : path;
    if (json_object_get(seen, key))
        return 0;
    if (json_object_set_new(seen, key, json_true()) < 0)
        return -1;
    json_error_t jerr;
    json_t *s = json_load_file(path, JSON_DECODE_ANY, &jerr);
    if (!s) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return -1;
        if (warn) {
            char err[512];
            snprintf(err, sizeof err, "%s: %s (line %d)", path, jerr.text, jerr.line);
            warn(path, err, user);
        }
        return 0;
    }
    if (!json_is_object(s) || !json_object_get(s, "run_id") ||
        !json_object_get(s, "overall_summary")) {
        if (warn)
            warn(path, "not a kvbench summary.json (no run_id / overall_summary)", user);
        json_decref(s);
        return 0;
    }
    return json_array_append_new(out, json_pack("{s:s, s:o}", "path", path, "summary", s));
}

/* Returns 0, or -1 when out of memory. */
static int add_path(json_t *out, json_t *seen, const char *path, sumtable_warn_fn warn, void *user)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (warn)
            warn(path, "no such file or directory", user);
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return add_file(out, seen, path, warn, user);
    char p[4096];
    snprintf(p, sizeof p, "%s/summary.json", path);
    if (stat(p, &st) == 0)
        return add_file(out, seen, p, warn, user);
    /* a results root: its run directories */
    snprintf(p, sizeof p, "%s/*/summary.json", path);
    glob_t g;
    int rc = 0, grc = glob(p, 0, NULL, &g);
    if (grc == 0) {
        for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++)
            rc = add_file(out, seen, g.gl_pathv[i], warn, user);
    } else if (grc == GLOB_NOSPACE) {
        rc = -1;
    } else if (warn) {
        warn(path, "directory holds no summary.json", user);
    }
    globfree(&g);
    return rc;
}

json_t *sumtable_collect(const char *const *specs, size_t n, sumtable_warn_fn warn, void *user)
{
    json_t *out = json_array(), *seen = json_object();
    bool oom = !out || !seen;
    for (size_t i = 0; !oom && i < n; i++) {
        glob_t g;
        int rc = glob(specs[i], GLOB_NOCHECK, NULL, &g);
        if (rc == GLOB_NOSPACE) {
            oom = true;
        } else if (rc != 0) {
            if (warn)
                warn(specs[i], "cannot expand the pattern", user);
            continue;
        }
        for (size_t k = 0; !oom && k < g.gl_pathc; k++)
            oom = add_path(out, seen, g.gl_pathv[k], warn, user) < 0;
        globfree(&g);
    }
    json_decref(seen);
    if (oom) {
        json_decref(out);
        return NULL;
    }
    return out;
}

const json_t *sumtable_verdict(const json_t *s)
{
    return scenario_summary_verdict(s); /* the scenario table knows where each keeps it */
}

const char *sumtable_signal(const json_t *s)
{
    return json_get_str(sumtable_verdict(s), "signal", "-");
}

static json_t *stat_of(const json_t *o, const char *metric, const char *p)
{
    const json_t *v = json_object_get(json_object_get(o, metric), p);
    return json_is_number(v) ? json_real(json_number_value(v)) : json_null();
}

json_t *sumtable_row(const json_t *s)
{
    const json_t *ov = json_object_get(s, "overall_summary");
    bool valid = json_get_bool(s, "run_valid", false);
    json_t *r = json_object();
    /* every put is counted: a row that lost a cell for want of memory is no row */
    int bad = !r;
    bad |= json_put_str(r, "run_id", json_get_str(s, "run_id", "?"));
    bad |= json_put_str(r, "scenario", json_get_str(s, "scenario", "?"));
    const json_t *sh = json_object_get(s, "shard"); /* one shard of a run (kvbench run --shard) */
    if (sh)
        bad |= json_put(r, "shard",
                        json_pack("{s:I, s:I}", "index", (json_int_t)json_get_int(sh, "index", -1),
                                  "count", (json_int_t)json_get_int(sh, "count", -1)));
    bad |= json_put_str(r, "kv_mode", json_get_str(json_object_get(s, "kv_mode"), "mode", "?"));
    bad |= json_put_bool(r, "valid", valid);
    bad |= json_put(r, "invalid_reason",
                    json_incref(json_object_get(s, "invalid_reason")
                                    ? json_object_get(s, "invalid_reason")
                                    : json_null()));
    double v;
    bad |= json_put(r, "req_per_s",
                    json_get_num_strict(ov, "req_per_s", &v) ? json_real(v) : json_null());
    bad |= json_put(r, "ttft_p50_ms", stat_of(ov, "ttft_ms", "p50"));
    bad |= json_put(r, "ttft_p95_ms", stat_of(ov, "ttft_ms", "p95"));
    bad |= json_put(r, "latency_p50_ms", stat_of(ov, "latency_ms", "p50"));
    bad |= json_put(r, "latency_p95_ms", stat_of(ov, "latency_ms", "p95"));
    bad |= json_put(r, "error_rate",
                    json_get_num_strict(ov, "error_rate", &v) ? json_real(v) : json_null());
    bad |= json_put_str(r, "signal", sumtable_signal(s));
    /* goodput (--slo): the overall attainment; null when it could not be judged */
    const json_t *g = json_object_get(ov, "goodput");
    if (g)
        bad |= json_put(r, "attainment",
                        json_get_num_strict(g, "attainment", &v) ? json_real(v) : json_null());
    if (bad) {
        json_decref(r);
        return NULL;
    }
    return r;
}

bool sumtable_fill_attainment(json_t *rows)
{
    size_t i;
    json_t *r;
    bool any = false;
    json_array_foreach(rows, i, r) any |= json_object_get(r, "attainment") != NULL;
    json_array_foreach(rows, i, r) if (any && !json_object_get(r, "attainment"))
        json_object_set_new(r, "attainment", json_null());
    return any;
}

static void cell(char *out, size_t n, const json_t *v, const char *fmt)
{
    if (json_is_number(v))
        snprintf(out, n, fmt, json_number_value(v));
    else
        snprintf(out, n, "-");
}

void sumtable_render(const json_t *rows, struct buf *b)
{
    static const char *const HEAD[] = {"run_id",  "scenario", "kv_mode",  "valid",
                                       "req/s",   "ttft_p50", "ttft_p95", "lat_p50",
                                       "lat_p95", "err_rate", "attain",   "signal"};
    enum { NC = 12, ATTAIN = 10 };
    size_t n = json_array_size(rows);
    bool attain = false; /* the column only when some run had --slo */
    for (size_t i = 0; i < n; i++)
        attain |= json_object_get(json_array_get(rows, i), "attainment") != NULL;
    char(*cells)[NC][96] = fault_calloc(n + 1, sizeof *cells);
    if (!cells) {
        b->failed =
            true; /* as an append that ran out of memory would: the caller's check sees it */
        return;
    }
    size_t width[NC];
    for (int c = 0; c < NC; c++) {
        snprintf(cells[0][c], 96, "%s", HEAD[c]);
        width[c] = strlen(HEAD[c]);
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(rows, i);
        char(*row)[96] = cells[i + 1];
        snprintf(row[0], 96, "%s", json_get_str(r, "run_id", "?"));
        const json_t *sh = json_object_get(r, "shard");
        if (sh)
            snprintf(row[1], 96, "%s, shard %lld of %lld", json_get_str(r, "scenario", "?"),
                     json_get_int(sh, "index", -1), json_get_int(sh, "count", -1));
        else
            snprintf(row[1], 96, "%s", json_get_str(r, "scenario", "?"));
        snprintf(row[2], 96, "%s", json_get_str(r, "kv_mode", "?"));
        if (json_get_bool(r, "valid", false))
            snprintf(row[3], 96, "yes");
        else
            snprintf(row[3], 96, "no:%s", json_get_str(r, "invalid_reason", "?"));
        cell(row[4], 96, json_object_get(r, "req_per_s"), "%.2f");
        cell(row[5], 96, json_object_get(r, "ttft_p50_ms"), "%.1f");
        cell(row[6], 96, json_object_get(r, "ttft_p95_ms"), "%.1f");
        cell(row[7], 96, json_object_get(r, "latency_p50_ms"), "%.1f");
        cell(row[8], 96, json_object_get(r, "latency_p95_ms"), "%.1f");
        cell(row[9], 96, json_object_get(r, "error_rate"), "%.3f");
        cell(row[10], 96, json_object_get(r, "attainment"), "%.4f");
        snprintf(row[11], 96, "%s", json_get_str(r, "signal", "-"));
        for (int c = 0; c < NC; c++)
            if (strlen(row[c]) > width[c])
                width[c] = strlen(row[c]);
    }
    for (size_t i = 0; i <= n; i++) {
        for (int c = 0; c < NC; c++) {
            if (c == ATTAIN && !attain)
                continue;
            bool numeric = c >= 4 && c <= ATTAIN;
            if (numeric)
                buf_printf(b, "%*s", (int)width[c], cells[i][c]);
            else if (c + 1 < NC)
                buf_printf(b, "%-*s", (int)width[c], cells[i][c]);
            else
                buf_append_str(b, cells[i][c]);
            buf_append_str(b, c + 1 < NC ? "  " : "\n");
        }
    }
    free(cells);
}
