/*
 * kvsnap.c - metrics snapshots and deltas: a scrape (Prometheus text, or trtllm-serve's JSON)
 * becomes {name: value}; two of them become the per-phase delta object, with KVBM's own keys
 * and, through an engine profile's rules (the catalogue, model/engines.h), the generic fields
 * the signals read. The catalogue is data; reading a scrape by it is done here, next to the
 * parser, so that the catalogue stays below the harness and the engine.
 */
#include "probe/kvsnap.h"

#include "probe/prom.h"
#include "util/clock.h"
#include "util/err.h"
#include "net/http.h"
#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const KV_COUNTERS[] = {
    KVBM_OFFLOAD_D2H,
    KVBM_OFFLOAD_H2D,
    KVBM_OFFLOAD_D2D,
    KVBM_ONBOARD_D2D,
    KVBM_ONBOARD_H2D,
    KVBM_MATCHED_TOKENS,
    KVBM_DISK_BYTES_READ,
    KVBM_DISK_BYTES_WRITTEN,
    KVBM_CACHE_EVICTIONS,
    KVBM_CACHE_PREFETCHES,
    NULL,
};

const char *const KV_GAUGES[] = {
    KVBM_HOST_HIT_RATE,     KVBM_DISK_HIT_RATE,     KVBM_DISK_FETCH_P50_MS,
    KVBM_DISK_FETCH_P95_MS, KVBM_DISK_FETCH_P99_MS, NULL,
};

/* trtllm-serve's /metrics: a JSON list of iteration statistics. The last one's kvCacheStats
 * (cumulative block counters) become trtllm:kvCacheStats.<key> entries; an empty list (no
 * iteration since the last poll) gives no entry. */
static json_t *trtllm_json(const char *body, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);
    if (!j) {
        snprintf(err, errlen, "metrics body is neither Prometheus text nor JSON: %s", jerr.text);
        return NULL;
    }
    json_t *o = json_object();
    const json_t *last = json_is_array(j) ? json_array_get(j, json_array_size(j) - 1) : j;
    const json_t *kv = json_object_get(last, TRTLLM_KV_STATS);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)kv, k, v)
    {
        if (!json_is_number(v))
            continue;
        char key[128];
        snprintf(key, sizeof key, TRTLLM_KV_PREFIX "%s", k);
        json_object_set_new(o, key, json_real(json_number_value(v)));
    }
    json_decref(j);
    return o;
}

void kvsnap_parse(const char *body, size_t len, struct kv_snapshot *out)
{
    if (len && (body[0] == '[' || body[0] == '{')) {
        out->metrics = trtllm_json(body, len, out->error, sizeof out->error);
        out->success = out->metrics != NULL;
        return;
    }
    struct prom_result pr;
    if (prom_parse(body, len, &pr) < 0) {
        snprintf(out->error, sizeof out->error, "out of memory parsing metrics");
        return;
    }
    out->success = true;
    out->metrics = prom_to_json(&pr);
    out->malformed_lines = pr.malformed_lines;
    if (pr.malformed_lines)
        snprintf(out->error, sizeof out->error, "%zu malformed lines skipped (first: %s)",
                 pr.malformed_lines, pr.first_error);
    prom_free(&pr);
}

void kvsnap_take(const char *url, double timeout_s, const char *label, const char *const *families,
                 struct kv_snapshot *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->label, sizeof out->label, "%s", label);
    clock_iso_utc(clock_wall_ns(), out->time);
    struct http_req req;
    char err[ERR_LEN];
    if (http_get(&req, url, timeout_s, 32u << 20, err) < 0)
        snprintf(out->error, sizeof out->error, "%s", err);
    else
        kvsnap_parse(buf_cstr(&req.body_buf), req.body_buf.len, out);
    http_req_cleanup(&req);
    if (out->success && families && families[0] && !engine_has_family(out->metrics, families)) {
        /* An endpoint that answers but is not the KV manager's: not a source of zeros. */
        struct buf b = BUF_INIT;
        for (size_t i = 0; families[i]; i++)
            buf_printf(&b, "%s%s*", i ? ", " : "", families[i]);
        snprintf(out->error, sizeof out->error,
                 "the endpoint answered but carries none of the expected metric families (looked "
                 "for %s)",
                 buf_cstr(&b));
        buf_free(&b);
        out->success = false;
        out->wrong_families = true;
    }
}

void kvsnap_free(struct kv_snapshot *s)
{
    json_decref(s->metrics);
    s->metrics = NULL;
}

json_t *kvsnap_json(const struct kv_snapshot *s)
{
    json_t *o = json_object();
    json_put_str(o, "label", s->label);
    json_put_str(o, "timestamp_utc", s->time);
    json_put_bool(o, "success", s->success);
    json_put(o, "error", s->error[0] ? json_string(s->error) : json_null());
    json_put(o, "metrics", s->metrics ? json_incref(s->metrics) : json_null());
    json_put_int(o, "malformed_lines", (long long)s->malformed_lines);
    return o;
}

json_t *kvsnap_delta_json(const struct kv_snapshot *b, const struct kv_snapshot *a)
{
    if (!b || !a || !b->success || !a->success) {
        const struct kv_snapshot *bad = !b || !b->success ? b : a;
        return json_pack("{s:b, s:s, s:s}", "available", 0, "reason",
                         "a metrics snapshot around this phase failed", "error",
                         bad && bad->error[0] ? bad->error : "snapshot missing");
    }
    json_t *o = json_object();
    json_put_bool(o, "available", true);
    double vals[16] = {0};
    bool have[16] = {false};
    for (int i = 0; KV_COUNTERS[i]; i++) {
        double va, vb;
        char key[96];
        snprintf(key, sizeof key, "%s_delta", KV_COUNTERS[i]);
        if (!prom_json_lookup(a->metrics, KV_COUNTERS[i], &va)) {
            json_put(o, key, json_null());
            continue;
        }
        if (!prom_json_lookup(b->metrics, KV_COUNTERS[i], &vb))
            vb = 0;                          /* appeared during the phase */
        double dlt = va >= vb ? va - vb : 0; /* a counter reset reads as 0 */
        vals[i] = dlt;
        have[i] = true;
        json_put_real(o, key, dlt);
    }
    for (int i = 0; KV_GAUGES[i]; i++) {
        double v;
        char key[96];
        snprintf(key, sizeof key, "%s_after", KV_GAUGES[i]);
        json_put(o, key,
                 prom_json_lookup(a->metrics, KV_GAUGES[i], &v) ? json_real_or_null(v, 1)
                                                                : json_null());
    }
    /* indexes into KV_COUNTERS */
    enum { D2H, H2D, D2D, ON_D2D, ON_H2D, MATCHED, DREAD, DWRITE };
    json_put(
        o, "offload_blocks_total_delta",
        json_real_or_null(vals[D2H] + vals[H2D] + vals[D2D], have[D2H] || have[H2D] || have[D2D]));
    json_put(o, "onboard_blocks_total_delta",
             json_real_or_null(vals[ON_D2D] + vals[ON_H2D], have[ON_D2D] || have[ON_H2D]));
    /* MiB to 3 decimals, as the reference rounds them */
    json_put(o, "disk_read_mib_delta",
             json_real_or_null(round(vals[DREAD] / 1048576.0 * 1000.0) / 1000.0, have[DREAD]));
    json_put(o, "disk_write_mib_delta",
             json_real_or_null(round(vals[DWRITE] / 1048576.0 * 1000.0) / 1000.0, have[DWRITE]));
    json_put(o, "disk_rehydrate_counter_positive",
             have[ON_D2D] ? json_boolean(vals[ON_D2D] > 0) : json_null());
    return o;
}

/* The embedded engine's G1 copy counters (kvbench serve --g1 cuda; SPEC §8 metrics). */
static const char *const GPU_COPY_COUNTERS[][2] = {
    {"kvbench_g1_h2d_bytes_total", "h2d_bytes"},
    {"kvbench_g1_d2h_bytes_total", "d2h_bytes"},
    {"kvbench_g1_h2d_seconds_total", "h2d_seconds"},
    {"kvbench_g1_d2h_seconds_total", "d2h_seconds"},
    {"kvbench_g1_h2d_batches_total", "h2d_batches"},
    {"kvbench_g1_d2h_batches_total", "d2h_batches"},
    {"kvbench_g1_copy_errors_total", "copy_errors"},
    {"kvbench_g1_fill_bytes_total", "fill_bytes"},
};

json_t *kvsnap_gpu_copies_json(const struct kv_snapshot *b, const struct kv_snapshot *a,
                               double duration_s)
{
    double probe;
    if (!b || !a || !b->success || !a->success ||
        !prom_json_lookup(a->metrics, GPU_COPY_COUNTERS[0][0], &probe))
        return NULL;
    json_t *o = json_object();
    double d[8];
    for (size_t i = 0; i < 8; i++) {
        double va = 0, vb = 0;
        bool have = prom_json_lookup(a->metrics, GPU_COPY_COUNTERS[i][0], &va);
        if (!prom_json_lookup(b->metrics, GPU_COPY_COUNTERS[i][0], &vb))
            vb = 0;
        d[i] = va >= vb ? va - vb : 0;
        json_put(o, GPU_COPY_COUNTERS[i][1], json_real_or_null(d[i], have));
    }
    /* bytes over the transfers' wall time on the engine's scheduler thread (the copies and the
     * disk reads and checksum checks of the blocks they carry: what onboarding cost, not the
     * bare link, which `kvbench tiers` measures), and the traffic averaged over the phase */
    json_put(o, "h2d_gb_per_s", json_real_or_null(d[0] / d[2] / 1e9, d[2] > 0));
    json_put(o, "d2h_gb_per_s", json_real_or_null(d[1] / d[3] / 1e9, d[3] > 0));
    json_put(o, "h2d_mb_s", json_real_or_null(d[0] / duration_s / 1e6, duration_s > 0));
    json_put(o, "d2h_mb_s", json_real_or_null(d[1] / duration_s / 1e6, duration_s > 0));
    double dev;
    json_put(o, "device_bytes_after",
             prom_json_lookup(a->metrics, "kvbench_g1_device_bytes", &dev) ? json_real(dev)
                                                                           : json_null());
    return o;
}

/* ------------------------------------------------------------ generic fields by the catalogue */

/* The value of metric (with a trailing '*': the sum of every entry with that prefix). */
static bool lookup(const json_t *metrics, const char *metric, double *out)
{
    size_t n = strlen(metric);
    if (n && metric[n - 1] == '*') {
        bool any = false;
        double sum = 0;
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)metrics, k, v)
        {
            if (strncmp(k, metric, n - 1) == 0 && json_is_number(v)) {
                sum += json_number_value(v);
                any = true;
            }
        }
        *out = sum;
        return any;
    }
    return prom_json_lookup(metrics, metric, out);
}

json_t *engine_delta(const struct engine_profile *p, const json_t *before, const json_t *after)
{
    double val[KF_COUNT] = {0};
    bool have[KF_COUNT] = {false};
    for (const struct kv_rule *r = p->rules; r->metric; r++) {
        double a, b = 0, v;
        if (!lookup(after, r->metric, &a))
            continue;
        if (r->field == KF_CACHE_USAGE) {
            v = a;
        } else {
            if (!lookup(before, r->metric, &b))
                b = 0;              /* appeared during the phase */
            v = a >= b ? a - b : 0; /* a counter reset reads as 0 */
        }
        double scale = r->scale;
        if (r->scale_metric) {
            double s;
            if (!lookup(after, r->scale_metric, &s))
                continue;
            scale *= s;
        }
        val[r->field] += v * scale;
        have[r->field] = true;
    }
    json_t *o = json_object();
    json_put_str(o, "engine", p->name);
    for (int f = 0; f < KF_COUNT; f++)
        json_put(o, KV_FIELD_NAMES[f], have[f] ? json_real(val[f]) : json_null());
    return o;
}

json_t *kvsnap_phase_delta(const struct engine_profile *p, const struct kv_snapshot *before,
                           const struct kv_snapshot *after, double duration_s)
{
    json_t *d = kvsnap_delta_json(before, after);
    if (!json_get_bool(d, "available", false))
        return d;
    json_object_set_new(d, "engine_delta", engine_delta(p, before->metrics, after->metrics));
    json_t *gc = kvsnap_gpu_copies_json(before, after, duration_s);
    if (gc) /* only an engine that copies between real device and host memory has them */
        json_object_set_new(d, "gpu_copies", gc);
    return d;
}
