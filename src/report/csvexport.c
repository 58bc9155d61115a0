/*
 * csvexport.c - requests.csv and phases.csv from a run's artifacts.
 *
 * requests.jsonl is read a line at a time and requests.csv written as it goes (a million rows
 * need no more memory than one), into a temporary file renamed into place once complete.
 *
 * Rows are built in a struct buf with plain appends; its sticky error is checked before each
 * write (out_write), so a row that lost a field for want of memory is never written, and the
 * temporary file is then removed instead of renamed: a CSV at its final path is always whole. An
 * input line that jansson could not parse for want of memory is that same error, not a torn line.
 */
#include "report/csvexport.h"

#include "util/err.h"
#include "util/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void csv_field(struct buf *b, const char *s, size_t len)
{
    bool quote = false;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        buf_append(b, s, len);
        return;
    }
    buf_append(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            buf_append(b, "\"", 1);
        buf_append(b, &s[i], 1);
    }
    buf_append(b, "\"", 1);
}

/* A finite real to the microsecond, trailing zeros dropped. */
static void csv_real(struct buf *b, double x)
{
    char num[64];
    int n = snprintf(num, sizeof num, "%.6f", x);
    while (n > 1 && num[n - 1] == '0')
        n--;
    if (n > 0 && num[n - 1] == '.')
        n--;
    buf_append(b, num, (size_t)n);
}

void csv_json_field(struct buf *b, const json_t *v)
{
    if (json_is_string(v)) {
        csv_field(b, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        buf_printf(b, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v) && isfinite(json_real_value(v))) {
        csv_real(b, json_real_value(v));
    } else if (json_is_boolean(v)) {
        buf_append_str(b, json_is_true(v) ? "true" : "false");
    } else if (json_is_array(v) || json_is_object(v)) {
        struct buf s = BUF_INIT;
        if (json_dump_buf(&s, v, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0)
            csv_field(b, s.data, s.len);
        else
            b->failed = true; /* out of memory: the field would be missing, so the row is lost */
        buf_free(&s);
    }
}

/* A file written under a temporary name and renamed into place once complete. */
struct out {
    FILE *f;
    char path[4096], tmp[4200];
};

static int out_open(struct out *o, const char *dir, const char *name, char *err)
{
    snprintf(o->path, sizeof o->path, "%s/%s", dir, name);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", o->path, (long)getpid());
    o->f = fopen(o->tmp, "w");
    if (!o->f)
        return err_set(err, "cannot create %s: %s", o->tmp, strerror(errno));
    return 0;
}

static int out_write(struct out *o, struct buf *b, char *err)
{
    if (buf_failed(b))
        return err_set(err, "%s: not written: out of memory while building it", o->path);
    if (b->len && fwrite(b->data, 1, b->len, o->f) != b->len)
        return err_set(err, "cannot write %s: %s", o->tmp, strerror(errno));
    buf_reset(b);
    return 0;
}

static int out_close(struct out *o, bool ok, char *err)
{
    if (!o->f)
        return 0;
    bool good = ok && fflush(o->f) == 0 && fsync(fileno(o->f)) == 0;
    int e = errno;
    good = fclose(o->f) == 0 && good;
    o->f = NULL;
    if (good && rename(o->tmp, o->path) == 0)
        return 0;
    unlink(o->tmp);
    return ok ? err_set(err, "cannot write %s: %s", o->path, strerror(e ? e : errno)) : -1;
}

/* requests.jsonl's fields, in the order of SPEC §5 (lists and objects as compact JSON); then
 * three figures made from the row's ITL list. */
static const char *const REQUEST_COLUMNS[] = {
    "request_index",
    "phase",
    "worker_idx",
    "start_ts",
    "end_ts",
    "scheduled_ts",
    "schedule_lag_ms",
    "client_lag_ms",
    "latency_ms",
    "ttft_ms",
    "tpot_ms",
    "status_code",
    "error",
    "request_id",
    "response_id",
    "endpoint",
    "prompt_id",
    "prompt_set",
    "prompt_target_tokens",
    "prompt_tokens_est",
    "usage_prompt_tokens",
    "usage_completion_tokens",
    "cached_tokens",
    "finish_reason",
    "output_len_chars",
    "output_tokens_est",
    "reasoning_chars",
    "reasoning_tokens_est",
    "server_truncated",
    "prompt_sha256",
    "request_payload_sha256",
    "response_path",
    NULL,
};

static void itl_figures(struct buf *b, const json_t *itl)
{
    size_t n = json_array_size(itl), i;
    double sum = 0, max = 0;
    json_t *v;
    json_array_foreach(itl, i, v)
    {
        double x = json_number_value(v);
        sum += x;
        if (x > max)
            max = x;
    }
    buf_printf(b, ",%zu,", n);
    if (n) {
        /* as csv_json_field writes a real (an infinite one is an empty field) */
        double mean = sum / (double)n;
        if (isfinite(mean))
            csv_real(b, mean);
        buf_append(b, ",", 1);
        if (isfinite(max))
            csv_real(b, max);
    } else {
        buf_append(b, ",", 1);
    }
}

static int export_requests(const char *run_dir, const char *out_dir, struct csv_result *res,
                           char *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/requests.jsonl", run_dir);
    FILE *in = fopen(path, "r");
    if (!in)
        return err_set(err, "cannot read %s: %s", path, strerror(errno));
    struct out o = {0};
    if (out_open(&o, out_dir, "requests.csv", err) < 0) {
        fclose(in);
        return -1;
    }
    struct buf b = BUF_INIT;
    for (size_t c = 0; REQUEST_COLUMNS[c]; c++)
        buf_printf(&b, "%s%s", c ? "," : "", REQUEST_COLUMNS[c]);
    buf_append_str(&b, ",itl_count,itl_mean_ms,itl_max_ms\n");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, in)) > 0) {
        json_error_t jerr;
        json_t *row = json_loadb(line, (size_t)len, 0, &jerr);
        if (!row && json_error_code(&jerr) == json_error_out_of_memory) {
            rc = err_set(err, "%s: not written: out of memory reading %s", o.path, path);
            break;
        }
        if (!json_is_object(row)) {
            res->skipped++; /* a torn last line after kill -9, say */
            json_decref(row);
            continue;
        }
        for (size_t c = 0; REQUEST_COLUMNS[c]; c++) {
            if (c)
                buf_append(&b, ",", 1);
            csv_json_field(&b, json_object_get(row, REQUEST_COLUMNS[c]));
        }
        itl_figures(&b, json_object_get(row, "itl_ms"));
        buf_append(&b, "\n", 1);
        json_decref(row);
        res->requests++;
        if (b.len >= 1 << 16)
            rc = out_write(&o, &b, err);
    }
    if (rc == 0 && ferror(in))
        rc = err_set(err, "cannot read %s: %s", path, strerror(errno));
    if (rc == 0)
        rc = out_write(&o, &b, err);
    rc = out_close(&o, rc == 0, err) < 0 ? -1 : rc;
    free(line);
    buf_free(&b);
    fclose(in);
    return rc;
}

static int export_phases(const char *run_dir, const char *out_dir, struct csv_result *res,
                         char *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    json_error_t jerr;
    json_t *s = json_load_file(path, 0, &jerr);
    if (!s && json_error_code(&jerr) == json_error_out_of_memory)
        return err_set(err, "cannot read %s: out of memory", path);
    if (!json_is_object(s)) {
        json_decref(s);
        return err_set(err, "cannot read %s: %s", path, jerr.text);
    }
    static const char *const SCALARS[] = {
        "phase",
        "concurrency",
        "requests",
        "duration_s",
        "total_requests",
        "ok_requests",
        "error_requests",
        "error_rate",
        "server_truncated_requests",
        "req_per_s",
        "input_tokens_per_s_est",
        "output_tokens_per_s_est",
        "cached_tokens_total",
        "target_rate",
        "achieved_rate",
        NULL,
    };
    static const char *const STATS[] = {"latency_ms", "ttft_ms",           "itl_ms",
                                        "tpot_ms",    "ttft_ms_corrected", NULL};
    static const char *const FIELDS[] = {"p50", "p90", "p95", "p99", "mean", "min", "max", NULL};
    struct buf b = BUF_INIT;
    buf_append_str(&b, "run_id,scenario,run_valid");
    for (size_t c = 0; SCALARS[c]; c++)
        buf_printf(&b, ",%s", SCALARS[c]);
    for (size_t m = 0; STATS[m]; m++)
        for (size_t f = 0; FIELDS[f]; f++)
            buf_printf(&b, ",%s_%s", STATS[m], FIELDS[f]);
    buf_append(&b, "\n", 1);
    const json_t *rows[64];
    size_t n = 0, i;
    json_t *ps;
    json_array_foreach(json_object_get(s, "phase_summaries"), i, ps) if (n < 63) rows[n++] = ps;
    rows[n++] = json_object_get(s, "overall_summary");
    for (size_t r = 0; r < n; r++) {
        const json_t *p = rows[r];
        if (!json_is_object(p) || json_is_true(json_object_get(p, "excluded")))
            continue;
        csv_json_field(&b, json_object_get(s, "run_id"));
        buf_append(&b, ",", 1);
        csv_json_field(&b, json_object_get(s, "scenario"));
        buf_append(&b, ",", 1);
        csv_json_field(&b, json_object_get(s, "run_valid"));
        for (size_t c = 0; SCALARS[c]; c++) {
            buf_append(&b, ",", 1);
            csv_json_field(&b, json_object_get(p, SCALARS[c]));
        }
        for (size_t m = 0; STATS[m]; m++)
            for (size_t f = 0; FIELDS[f]; f++) {
                buf_append(&b, ",", 1);
                csv_json_field(&b, json_object_get(json_object_get(p, STATS[m]), FIELDS[f]));
            }
        buf_append(&b, "\n", 1);
        res->phases++;
    }
    json_decref(s);
    struct out o = {0};
    int rc = out_open(&o, out_dir, "phases.csv", err);
    if (rc == 0)
        rc = out_write(&o, &b, err);
    rc = out_close(&o, rc == 0, err) < 0 ? -1 : rc;
    buf_free(&b);
    return rc;
}

int csv_export_run(const char *run_dir, const char *out_dir, struct csv_result *res, char *err)
{
    memset(res, 0, sizeof *res);
    if (export_phases(run_dir, out_dir, res, err) < 0)
        return -1;
    return export_requests(run_dir, out_dir, res, err);
}
