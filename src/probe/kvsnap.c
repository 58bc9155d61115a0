/*
 * kvsnap.c - metrics snapshots and deltas.
 */
#include "probe/kvsnap.h"

#include "probe/prom.h"
#include "util/clock.h"
#include "net/http.h"
#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const KV_COUNTERS[] = {
    "kvbm_offload_blocks_d2h",
    "kvbm_offload_blocks_h2d",
    "kvbm_offload_blocks_d2d",
    "kvbm_onboard_blocks_d2d",
    "kvbm_onboard_blocks_h2d",
    "kvbm_matched_tokens",
    "kvbm_disk_bytes_read",
    "kvbm_disk_bytes_written",
    "kvbm_cache_evictions",
    "kvbm_cache_prefetches",
    NULL,
};

const char *const KV_GAUGES[] = {
    "kvbm_host_cache_hit_rate", "kvbm_disk_cache_hit_rate", "kvbm_disk_fetch_p50_ms",
    "kvbm_disk_fetch_p95_ms",   "kvbm_disk_fetch_p99_ms",   NULL,
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
    const json_t *kv = json_object_get(last, "kvCacheStats");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)kv, k, v)
    {
        if (!json_is_number(v))
            continue;
        char key[128];
        snprintf(key, sizeof key, "trtllm:kvCacheStats.%s", k);
        json_object_set_new(o, key, json_real(json_number_value(v)));
    }
    json_decref(j);
    return o;
}

bool kvsnap_has_family(const json_t *metrics, const char *const *families)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)metrics, k, v)
    {
        (void)v;
        for (size_t i = 0; families[i]; i++)
            if (strncmp(k, families[i], strlen(families[i])) == 0)
                return true;
    }
    return false;
}

void kvsnap_take(const char *url, double timeout_s, const char *label, const char *const *families,
                 struct kv_snapshot *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->label, sizeof out->label, "%s", label);
    clock_iso_utc(clock_wall_ns(), out->time);
    struct http_req req;
    http_req_init(&req);
    req.url = url;
    req.timeout_s = timeout_s;
    req.connect_timeout_s = timeout_s;
    req.max_body = 32u << 20;
    char err[512];
    if (http_fetch(&req, err) < 0) {
        snprintf(out->error, sizeof out->error, "%s", err);
    } else if (req.error != HTTP_OK) {
        snprintf(out->error, sizeof out->error, "%s", req.error_text);
    } else if (req.status != 200) {
        snprintf(out->error, sizeof out->error, "HTTP %ld from %s", req.status, url);
    } else if (req.body_buf.len && (req.body_buf.data[0] == '[' || req.body_buf.data[0] == '{')) {
        out->metrics =
            trtllm_json(buf_cstr(&req.body_buf), req.body_buf.len, out->error, sizeof out->error);
        out->success = out->metrics != NULL;
    } else {
        struct prom_result pr;
        if (prom_parse(buf_cstr(&req.body_buf), req.body_buf.len, &pr) < 0) {
            snprintf(out->error, sizeof out->error, "out of memory parsing metrics");
        } else {
            out->success = true;
            out->metrics = prom_to_json(&pr);
            out->malformed_lines = pr.malformed_lines;
            if (pr.malformed_lines)
                snprintf(out->error, sizeof out->error, "%zu malformed lines skipped (first: %s)",
                         pr.malformed_lines, pr.first_error);
            prom_free(&pr);
        }
    }
    http_req_cleanup(&req);
    if (out->success && families && families[0] && !kvsnap_has_family(out->metrics, families)) {
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
