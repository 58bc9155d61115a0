/*
 * promapi.c - Prometheus' HTTP API as a source of node snapshots.
 *
 * A phase's figures need each counter's value at the phase's two ends, and a scraper samples
 * only every scrape interval: a query_range step (or an instant query) at an end gives the last
 * scrape before it, off by up to one interval of traffic, which for a disk writing at full speed
 * through a few-second phase is more than the figure's worth. So each family is asked for its raw
 * samples around the window (`family<match>[W]` evaluated at the window's end plus a margin: the
 * samples with their own timestamps), and the value at an end is interpolated between the two
 * samples around it, a counter's after correcting resets (a drop counts from 0, as Prometheus'
 * increase() does). The answers are kept as they came (raw) for the run directory.
 *
 * Before the first window is read, the server must have scraped past the last one's end, or the
 * end would fall after the last sample: promapi_wait_past polls each family's newest sample
 * (max(timestamp(family<match>))) until every family with series is past it. It waits on the
 * families read, not on up: a target none of them comes from (or one with a slow interval whose
 * families are not read) holds nothing up.
 */
#include "probe/promapi.h"

#include "probe/nodes.h"
#include "net/http.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How far around a window the samples are read. A value at an end needs a sample on each side
 * of it, so the margin must hold at least two scrape intervals: 300 s is Prometheus' own
 * lookback delta (a series with no sample for that long is stale to it), enough for any
 * interval up to 150 s. A longer interval reads as a series that began during the window: no
 * figure, and the family is listed as missing with why, never a delta counted from 0. */
#define MARGIN_S 300.0

void promapi_family_query(const struct promapi_config *cfg, const char *family, char *out,
                          size_t cap)
{
    snprintf(out, cap, "%s%s", family, cfg->match ? cfg->match : "");
}

static void url_encode(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            buf_append_char(b, (char)c);
        else
            buf_printf(b, "%%%02X", c);
    }
}

/* GET /api/v1/query?query=q&time=t. Returns the answer's `data` (new reference), or NULL with
 * err: not reachable, an HTTP status without Prometheus' error body, or its error. *answer (may
 * be NULL) gets the whole answer when there was one. */
static json_t *query(const struct promapi_config *cfg, const char *q, double t, json_t **answer,
                     char *err)
{
    struct buf url = BUF_INIT;
    size_t ul = strlen(cfg->url);
    while (ul && cfg->url[ul - 1] == '/')
        ul--;
    buf_append(&url, cfg->url, ul);
    buf_append_str(&url, "/api/v1/query?query=");
    url_encode(&url, q);
    buf_printf(&url, "&time=%.3f", t);
    if (answer)
        *answer = NULL;
    if (buf_failed(&url)) {
        buf_free(&url);
        err_set(err, "out of memory");
        return NULL;
    }
    struct http_req req;
    http_req_init(&req);
    req.url = buf_cstr(&url);
    req.timeout_s = cfg->timeout_s;
    req.connect_timeout_s = cfg->timeout_s;
    req.max_body = 64u << 20;
    char ferr[ERR_LEN];
    json_t *j = NULL, *data = NULL;
    if (http_fetch(&req, ferr) < 0)
        err_set(err, "%.*s: %s", (int)ul, cfg->url, ferr);
    else if (req.error != HTTP_OK)
        err_set(err, "%.*s: %s", (int)ul, cfg->url, req.error_text);
    else if (!(j = json_loadb(buf_cstr(&req.body_buf), req.body_buf.len, 0, NULL)))
        err_set(err, "HTTP %ld from %.*s, not Prometheus' API (no JSON answer)", req.status,
                (int)ul, cfg->url);
    else if (strcmp(json_get_str(j, "status", ""), "success") != 0)
        err_set(err, "Prometheus refused the query (HTTP %ld, %s): %s", req.status,
                json_get_str(j, "errorType", "?"), json_get_str(j, "error", "no reason given"));
    else if (!json_is_array(json_object_get(json_object_get(j, "data"), "result")))
        err_set(err, "HTTP %ld from %.*s: an answer without data.result", req.status, (int)ul,
                cfg->url);
    else
        data = json_incref(json_object_get(j, "data"));
    http_req_cleanup(&req);
    buf_free(&url);
    if (answer && j)
        *answer = json_incref(j);
    json_decref(j);
    return data;
}

/* How many families promapi_wait_past can follow (NODE_FAMILIES has fewer). */
#define FAMILIES_MAX 64

static void newest_query(const struct promapi_config *cfg, const char *family, char *q, size_t qcap)
{
    char sel[512];
    promapi_family_query(cfg, family, sel, sizeof sel);
    snprintf(q, qcap, "max(timestamp(%s))", sel);
}

/* The newest sample's time of one family (max(timestamp(family<match>))) into *seen; NAN when
 * the family has no series. Returns 0, or -1 with err (the query named) when the server failed. */
static int family_newest(const struct promapi_config *cfg, const char *family, char *q, size_t qcap,
                         double *seen, char *err)
{
    char qerr[ERR_LEN];
    newest_query(cfg, family, q, qcap);
    json_t *data = query(cfg, q, (double)clock_wall_ns() / 1e9, NULL, qerr);
    if (!data)
        return err_set(err, "%s (query %s)", qerr, q);
    /* result: [{metric: {}, value: [t, "seconds"]}], or [] when nothing matched */
    const json_t *first = json_array_get(json_object_get(data, "result"), 0);
    const json_t *v = json_array_get(json_object_get(first, "value"), 1);
    *seen = json_is_string(v) ? strtod(json_string_value(v), NULL) : NAN;
    json_decref(data);
    return 0;
}

int promapi_wait_past(const struct promapi_config *cfg, double t_s, char *q, size_t qcap, char *err)
{
    /* the families still to wait for: those with series whose newest sample is not past t_s */
    bool pending[FAMILIES_MAX], any = false;
    size_t n = 0;
    for (; n < FAMILIES_MAX && NODE_FAMILIES[n].name; n++)
        pending[n] = true;
    uint64_t deadline = clock_now_ns() + (uint64_t)(cfg->timeout_s * 1e9);
    for (;;) {
        double worst = INFINITY;
        size_t worst_i = 0, left = 0;
        for (size_t i = 0; i < n; i++) {
            double seen = NAN;
            if (!pending[i])
                continue;
            if (family_newest(cfg, NODE_FAMILIES[i].name, q, qcap, &seen, err) < 0)
                return PROMAPI_UNAVAILABLE;
            any |= !isnan(seen);
            /* past t_s, or no series (nothing of it to wait for): done with it */
            if (isnan(seen) || seen > t_s) {
                pending[i] = false;
                continue;
            }
            left++;
            if (seen < worst) {
                worst = seen;
                worst_i = i;
            }
        }
        newest_query(cfg, NODE_FAMILIES[any ? worst_i : 0].name, q, qcap);
        if (!any) {
            err_set(err,
                    "no series of any known family matches: %s found nothing, nor did the "
                    "other families'",
                    q);
            return PROMAPI_UNAVAILABLE;
        }
        if (left == 0)
            return 0;
        bool stopped = cfg->stop && *cfg->stop;
        if (clock_now_ns() >= deadline || stopped) {
            char waited[64];
            if (stopped)
                snprintf(waited, sizeof waited, "when the run was interrupted");
            else
                snprintf(waited, sizeof waited, "after %.0f s", cfg->timeout_s);
            err_set(err,
                    "%s the newest sample of %s was still %.1f s before the last phase's end "
                    "(%s)",
                    waited, NODE_FAMILIES[worst_i].name, t_s - worst, q);
            return PROMAPI_BEHIND;
        }
        clock_sleep_ns(200000000u, NULL);
    }
}

/* ------------------------------------------------------------ samples */

bool promapi_value_at(const json_t *values, double t, bool counter, double *out)
{
    size_t n = json_array_size(values);
    double prev_t = 0, prev_raw = 0, prev = 0, off = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(values, i);
        const json_t *ts = json_array_get(s, 0), *sv = json_array_get(s, 1);
        if (!json_is_number(ts) || !json_is_string(sv))
            return false;
        double st = json_number_value(ts), raw = strtod(json_string_value(sv), NULL);
        if (counter && i && raw < prev_raw)
            off += prev_raw; /* a reset: what it had counted stays counted */
        double v = counter ? raw + off : raw;
        if (st >= t) {
            if (i == 0 && st > t)
                return false; /* the series began after t */
            if (st == t || !counter)
                *out = st == t ? v : prev;
            else
                *out = prev + (v - prev) * (t - prev_t) / (st - prev_t);
            return true;
        }
        prev_t = st;
        prev_raw = raw;
        prev = v;
    }
    if (n == 0)
        return false;
    *out = prev; /* past the last sample: as it last was */
    return true;
}

/* The node a series belongs to, into name; its instance into inst. */
static void node_of(const json_t *metric, char *name, size_t cap, char *inst, size_t icap)
{
    static const char *const BY[] = {"node", "kubernetes_node", "hostname", "Hostname"};
    snprintf(inst, icap, "%s", json_get_str(metric, "instance", ""));
    for (size_t i = 0; i < sizeof BY / sizeof BY[0]; i++) {
        const char *v = json_get_str(metric, BY[i], NULL);
        if (v && *v) {
            snprintf(name, cap, "%s", v);
            return;
        }
    }
    /* host:port, [v6]:port: the host (exporters of one host on several ports are one node) */
    size_t n = strlen(inst);
    const char *colon = strrchr(inst, ':');
    bool port = colon && colon[1] && (inst[0] != '[' || colon[-1] == ']');
    for (const char *p = colon ? colon + 1 : inst + n; port && *p; p++)
        port = isdigit((unsigned char)*p) != 0;
    n = port ? (size_t)(colon - inst) : n;
    snprintf(name, cap, "%.*s", (int)n, n ? inst : "unknown");
}

/* The node's accumulator in acc: {before: {key: v}, after: {key: v}, instances: {inst: true},
 * families: {family: true} (any series), started: {family: true} (a series with values at both
 * ends), resets: [key], collided: N}. */
static json_t *node_acc(json_t *acc, const char *name)
{
    json_t *n = json_object_get(acc, name);
    if (!n) {
        n = json_pack("{s:{}, s:{}, s:{}, s:{}, s:{}, s:[], s:i}", "before", "after", "instances",
                      "families", "started", "resets", "collided", 0);
        json_object_set_new(acc, name, n);
    }
    return n;
}

/* A counter's reset between two samples that straddle part of [t0, t1]. */
static bool reset_within(const json_t *values, double t0, double t1)
{
    double prev_t = 0, prev = 0;
    size_t i;
    const json_t *s;
    json_array_foreach(values, i, s)
    {
        double t = json_number_value(json_array_get(s, 0));
        double v = strtod(json_string_value(json_array_get(s, 1)), NULL);
        if (i && v < prev && t > t0 && prev_t < t1)
            return true;
        prev_t = t;
        prev = v;
    }
    return false;
}

/* A series' values at both ends into its node's before / after series. */
static int add_series(json_t *acc, const struct node_family *f, const json_t *r, double start,
                      double end)
{
    const json_t *metric = json_object_get(r, "metric"), *values = json_object_get(r, "values");
    char name[NODE_NAME_MAX * 2], inst[256];
    node_of(metric, name, sizeof name, inst, sizeof inst);
    struct node_label labels[32];
    size_t n = 0;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)metric, k, v)
    {
        if (n < 32 && json_is_string(v))
            labels[n++] = (struct node_label){k, strlen(k), json_string_value(v)};
    }
    struct buf key = BUF_INIT;
    if (nodes_series_key(&key, f->name, labels, n) < 0) {
        buf_free(&key);
        return -1;
    }
    json_t *node = node_acc(acc, name);
    json_object_set_new(json_object_get(node, "families"), f->name, json_true());
    if (*inst)
        json_object_set_new(json_object_get(node, "instances"), inst, json_true());
    const char *k0 = buf_cstr(&key);
    json_t *before = json_object_get(node, "before"), *after = json_object_get(node, "after");
    if (json_object_get(before, k0) || json_object_get(after, k0)) {
        /* another series of this node with the same identity (two exporters of one host): the
         * first one stays, the two are not summed */
        json_object_set_new(
            node, "collided",
            json_integer(json_integer_value(json_object_get(node, "collided")) + 1));
        buf_free(&key);
        return 0;
    }
    bool counter = f->kind == NODE_COUNTER;
    double vb, va;
    bool hb = promapi_value_at(values, start, counter, &vb);
    bool ha = promapi_value_at(values, end, counter, &va);
    if (hb)
        json_object_set_new(before, k0, json_real(vb));
    if (ha)
        json_object_set_new(after, k0, json_real(va));
    if (ha && (hb || !counter))
        json_object_set_new(json_object_get(node, "started"), f->name, json_true());
    if (counter && hb && reset_within(values, start, end))
        json_array_append_new(json_object_get(node, "resets"), json_string(k0));
    buf_free(&key);
    return 0;
}

/* One node's phase object from its accumulator. */
static json_t *node_json(const struct promapi_config *cfg, const json_t *node, double start,
                         double end, const json_t *failed)
{
    struct node_snap b = {.ok = true, .wall_s = start}, a = {.ok = true, .wall_s = end};
    b.series = json_object_get(node, "before");
    a.series = json_object_get(node, "after");
    a.collided = (size_t)json_integer_value(json_object_get(node, "collided"));
    json_t *o = nodes_phase_json(&b, &a);
    /* the values at the ends are reset-corrected already: the resets are the samples' */
    if (json_array_size(json_object_get(node, "resets"))) {
        json_t *r = json_object_get(o, "counter_resets");
        if (!r)
            json_object_set_new(o, "counter_resets", r = json_array());
        json_array_extend(r, json_object_get(node, "resets"));
    }
    json_t *head = json_pack("{s:s, s:s}", "source", "prometheus", "url", cfg->url);
    json_t *inst = json_array(), *missing = json_array();
    const char *k;
    const json_t *v;
    json_object_foreach(json_object_get(node, "instances"), k, v)
    {
        json_array_append_new(inst, json_string(k));
    }
    const json_t *fams = json_object_get(node, "families");
    const json_t *started = json_object_get(node, "started");
    for (const struct node_family *f = NODE_FAMILIES; f->name; f++) {
        if (json_object_get(started, f->name))
            continue;
        char q[512];
        promapi_family_query(cfg, f->name, q, sizeof q);
        json_t *m = json_pack("{s:s, s:s}", "family", f->name, "query", q);
        const json_t *why = json_object_get(failed, f->name);
        if (why)
            json_object_set(m, "error", (json_t *)why);
        else if (json_object_get(fams, f->name))
            json_object_set_new(
                m, "reason",
                json_string(f->kind == NODE_COUNTER
                                ? "no sample at or before the phase's start: its series began "
                                  "during the phase (or the scrape interval is longer than the "
                                  "margin read around it), so there is no delta"
                                : "no sample at or before the phase's end"));
        json_array_append_new(missing, m);
    }
    json_object_set_new(head, "instances", inst);
    json_object_update(head, o); /* source and url first, as a scraped node's */
    json_decref(o);
    json_object_set_new(head, "missing", missing);
    return head;
}

/* Every family's samples around [start, end] into acc ({node: accumulator}); failed gets
 * {family: error} for the queries that failed. Returns -1 (err) when the server was not
 * reachable at all (the rest would fail alike), else 0. */
static int read_families(const struct promapi_config *cfg, double start, double end, json_t *acc,
                         json_t *failed, json_t *raw, char *err)
{
    long long range_ms = (long long)ceil((end - start + 2 * MARGIN_S) * 1000);
    for (const struct node_family *f = NODE_FAMILIES; f->name; f++) {
        char q[640], sel[512], qerr[ERR_LEN];
        promapi_family_query(cfg, f->name, sel, sizeof sel);
        snprintf(q, sizeof q, "%s[%lldms]", sel, range_ms);
        json_t *answer;
        json_t *data = query(cfg, q, end + MARGIN_S, &answer, qerr);
        if (raw && answer)
            json_object_set_new(raw, f->name, answer);
        else
            json_decref(answer);
        if (!data && !answer)
            return err_set(err, "%s (query %s)", qerr, q);
        if (!data) {
            json_object_set_new(failed, f->name, json_string(qerr));
            continue;
        }
        size_t i;
        const json_t *r;
        json_array_foreach(json_object_get(data, "result"), i, r)
        {
            if (add_series(acc, f, r, start, end) < 0) {
                json_decref(data);
                return err_set(err, "out of memory");
            }
        }
        json_decref(data);
    }
    return 0;
}

json_t *promapi_window_nodes(const struct promapi_config *cfg, double start_s, double end_s,
                             json_t *raw)
{
    json_t *acc = json_object(), *failed = json_object(), *out = json_object();
    char err[ERR_LEN] = "";
    char q0[512];
    promapi_family_query(cfg, NODE_FAMILIES[0].name, q0, sizeof q0);
    if (read_families(cfg, start_s, end_s, acc, failed, raw, err) == 0 &&
        json_object_size(acc) == 0) {
        const char *fam;
        const json_t *why;
        json_object_foreach(failed, fam, why)
        {
            snprintf(err, sizeof err, "%zu queries failed and none found a series; %s: %s",
                     json_object_size(failed), fam, json_string_value(why));
            break;
        }
        if (!*err)
            snprintf(err, sizeof err,
                     "no series of any known family matched (e.g. %s found nothing)", q0);
    }
    if (*err) {
        json_object_set_new(out, "prometheus",
                            json_pack("{s:s, s:s, s:b, s:s, s:s}", "source", "prometheus", "url",
                                      cfg->url, "available", 0, "reason", err, "query", q0));
    } else {
        const char *name;
        const json_t *node;
        json_object_foreach(acc, name, node)
        {
            json_object_set_new(out, name, node_json(cfg, node, start_s, end_s, failed));
        }
    }
    json_decref(acc);
    json_decref(failed);
    return out;
}
