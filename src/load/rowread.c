/*
 * rowread.c - a requests.jsonl row back into a struct req_result.
 *
 * One jansson parse per row and one table-free reader per kind of field: a required field that
 * is missing, or any field of the wrong type, is an error naming it (a row kvbench did not write,
 * or one cut short, must not pass as a measured request); a field the row may hold as null reads
 * as the load generator's "absent" (NaN for times, -1 for counts). Numbers are read as jansson
 * parses the row's text, which row_build wrote with 15 significant digits: what the summary of
 * the run that wrote it computed from, to the last digit printed.
 */
#include "load/rowread.h"

#include "util/err.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum need { OPTIONAL, REQUIRED };

/* o[key] as a number: NaN when null (or absent and OPTIONAL). */
static int num_of(const json_t *o, const char *key, enum need need, double *out, char *err)
{
    const json_t *v = json_object_get(o, key);
    *out = NAN;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if ((!v && need == OPTIONAL) || json_is_null(v))
        return 0;
    return err_set(err, v ? "%s: expected a number, got another type" : "no %s", key);
}

/* o[key] as a count >= 0: -1 when null (or absent and OPTIONAL). */
static int count_of(const json_t *o, const char *key, enum need need, long long *out, char *err)
{
    const json_t *v = json_object_get(o, key);
    *out = -1;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (long long)json_integer_value(v);
        return 0;
    }
    if ((!v && need == OPTIONAL) || json_is_null(v))
        return 0;
    return err_set(err, v ? "%s: expected an integer >= 0" : "no %s", key);
}

/* o[key] as a string into out (cap bytes, at most cap - 1 long): "" when null (or absent and
 * OPTIONAL). */
static int str_of(const json_t *o, const char *key, enum need need, char *out, size_t cap,
                  char *err)
{
    const json_t *v = json_object_get(o, key);
    out[0] = '\0';
    if (json_is_string(v)) {
        if (json_string_length(v) >= cap)
            return err_set(err, "%s: longer than %zu characters", key, cap - 1);
        memcpy(out, json_string_value(v), json_string_length(v) + 1);
        return 0;
    }
    if ((!v && need == OPTIONAL) || json_is_null(v))
        return 0;
    return err_set(err, v ? "%s: expected a string" : "no %s", key);
}

/* A UTC ISO time (start_ts, end_ts) as epoch seconds. */
static int time_of(const json_t *o, const char *key, double *out, char *err)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s)
        return err_set(err, "no %s", key);
    if (clock_parse_iso(s, out) < 0)
        return err_set(err, "%s: not a UTC ISO-8601 time: '%.40s'", key, s);
    return 0;
}

static int itl_of(const json_t *o, struct dvec *itl, char *err)
{
    const json_t *a = json_object_get(o, "itl_ms");
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return err_set(err, "itl_ms: expected an array or null");
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_number(v))
            return err_set(err, "itl_ms[%zu]: expected a number", i);
        if (dvec_push(itl, json_number_value(v)) < 0)
            return err_set(err, "out of memory");
    }
    return 0;
}

/* What the request sent: its prompt's identity and the hashes of the request. */
static int prompt_of(const json_t *o, struct row_read *r, char *err)
{
    struct prompt *p = &r->prompt;
    struct req_result *q = &r->q;
    long long target, est;
    if (str_of(o, "prompt_id", REQUIRED, p->id, sizeof p->id, err) < 0 ||
        str_of(o, "prompt_set", OPTIONAL, p->set, sizeof p->set, err) < 0 ||
        count_of(o, "prompt_target_tokens", OPTIONAL, &target, err) < 0 ||
        count_of(o, "prompt_tokens_est", REQUIRED, &est, err) < 0 ||
        str_of(o, "prompt_sha256", OPTIONAL, p->sha256, sizeof p->sha256, err) < 0 ||
        str_of(o, "request_identity_sha256", OPTIONAL, q->identity_sha256,
               sizeof q->identity_sha256, err) < 0 ||
        str_of(o, "request_payload_sha256", OPTIONAL, q->payload_sha256, sizeof q->payload_sha256,
               err) < 0 ||
        str_of(o, "generation_params_sha256", OPTIONAL, r->params_sha256, sizeof r->params_sha256,
               err) < 0)
        return -1;
    if (est < 0)
        return err_set(err, "prompt_tokens_est: expected an integer >= 0, got null");
    p->target = target > 0 ? (size_t)target : 0;
    p->est_tokens = (size_t)est;
    q->prompt = p;
    return 0;
}

/* When and how long: the times and the measured values. */
static int timing_of(const json_t *o, struct row_read *r, char *err)
{
    struct req_result *q = &r->q;
    if (time_of(o, "start_ts", &r->start_s, err) < 0 || time_of(o, "end_ts", &r->end_s, err) < 0 ||
        num_of(o, "latency_ms", REQUIRED, &q->latency_ms, err) < 0 ||
        num_of(o, "ttft_ms", OPTIONAL, &q->ttft_ms, err) < 0 ||
        num_of(o, "tpot_ms", OPTIONAL, &q->tpot_ms, err) < 0 ||
        num_of(o, "schedule_lag_ms", OPTIONAL, &q->lag_ms, err) < 0 ||
        num_of(o, "client_lag_ms", OPTIONAL, &q->client_lag_ms, err) < 0 ||
        itl_of(o, &r->itl, err) < 0)
        return -1;
    if (isnan(q->latency_ms))
        return err_set(err, "latency_ms: expected a number, got null");
    q->n_itl = r->itl.n;
    return 0;
}

/* What came back: status, usage, reuse, the answer's size, the error. */
static int answer_of(const json_t *o, struct row_read *r, char *err)
{
    struct req_result *q = &r->q;
    long long status, out_chars, out_tokens, r_chars, r_tokens;
    const json_t *trunc = json_object_get(o, "server_truncated");
    const json_t *e = json_object_get(o, "error");
    if (count_of(o, "status_code", REQUIRED, &status, err) < 0 ||
        count_of(o, "usage_prompt_tokens", OPTIONAL, &q->usage_prompt, err) < 0 ||
        count_of(o, "usage_completion_tokens", OPTIONAL, &q->usage_completion, err) < 0 ||
        count_of(o, "cached_tokens", OPTIONAL, &q->cached, err) < 0 ||
        str_of(o, "cached_tokens_source", OPTIONAL, r->cached_source, sizeof r->cached_source,
               err) < 0 ||
        count_of(o, "timings_prompt_n", OPTIONAL, &q->timings_prompt_n, err) < 0 ||
        str_of(o, "finish_reason", OPTIONAL, q->finish_reason, sizeof q->finish_reason, err) < 0 ||
        count_of(o, "output_len_chars", OPTIONAL, &out_chars, err) < 0 ||
        count_of(o, "output_tokens_est", OPTIONAL, &out_tokens, err) < 0 ||
        count_of(o, "reasoning_chars", OPTIONAL, &r_chars, err) < 0 ||
        count_of(o, "reasoning_tokens_est", OPTIONAL, &r_tokens, err) < 0)
        return -1;
    if (status < 0)
        return err_set(err, "status_code: expected an integer >= 0, got null");
    if (trunc && !json_is_boolean(trunc))
        return err_set(err, "server_truncated: expected true or false");
    if (e && !json_is_null(e) && !json_is_string(e))
        return err_set(err, "error: expected a string or null");
    q->status = (long)status;
    q->server_truncated = json_is_true(trunc);
    q->cached_source = r->cached_source[0] ? r->cached_source : NULL;
    q->output_len_chars = out_chars > 0 ? (size_t)out_chars : 0;
    q->output_tokens_est = out_tokens > 0 ? (size_t)out_tokens : 0;
    q->reasoning_chars = r_chars > 0 ? (size_t)r_chars : 0;
    q->reasoning_tokens_est = r_tokens > 0 ? (size_t)r_tokens : 0;
    q->transport = HTTP_OK;
    q->ok = !json_is_string(e); /* every failed request has its error, every other none */
    if (json_is_string(e) && !(q->error = strdup(json_string_value(e))))
        return err_set(err, "out of memory");
    return 0;
}

int row_read(const char *line, size_t len, struct row_read *out, char *err)
{
    memset(out, 0, sizeof *out);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    if (!o)
        return err_set(err, "not JSON: %s", je.text);
    int rc = -1;
    long long index, worker;
    if (!json_is_object(o)) {
        err_set(err, "not a JSON object");
    } else if (count_of(o, "request_index", REQUIRED, &index, err) == 0 &&
               count_of(o, "worker_idx", OPTIONAL, &worker, err) == 0 &&
               str_of(o, "phase", REQUIRED, out->phase, sizeof out->phase, err) == 0 &&
               prompt_of(o, out, err) == 0 && timing_of(o, out, err) == 0 &&
               answer_of(o, out, err) == 0) {
        if (index < 1 || !out->phase[0])
            err_set(err, index < 1 ? "request_index: expected an integer from 1" : "phase: empty");
        else
            rc = 0;
        out->q.request_index = index > 0 ? (size_t)index : 0;
        out->q.worker_idx = worker > 0 ? (size_t)(worker - 1) : 0; /* rows count from 1 */
    }
    json_decref(o);
    return rc;
}

void row_read_free(struct row_read *r)
{
    free(r->q.error);
    r->q.error = NULL;
    dvec_free(&r->itl);
}
