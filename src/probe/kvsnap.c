/*
 * kvsnap.c - metrics snapshots and deltas.
 */
#include "probe/kvsnap.h"

#include "probe/prom.h"
#include "util/clock.h"
#include "util/http.h"
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

void kvsnap_take(const char *url, double timeout_s, const char *label, struct kv_snapshot *out)
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
    json_put_str(o, "time", s->time);
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
    json_put_real(o, "offload_blocks_total_delta", vals[D2H] + vals[H2D] + vals[D2D]);
    json_put_real(o, "onboard_blocks_total_delta", vals[ON_D2D] + vals[ON_H2D]);
    json_put(o, "disk_read_mib_delta", json_real_or_null(vals[DREAD] / 1048576.0, have[DREAD]));
    json_put(o, "disk_write_mib_delta", json_real_or_null(vals[DWRITE] / 1048576.0, have[DWRITE]));
    json_put_bool(o, "disk_rehydrate_counter_positive", vals[ON_D2D] > 0);
    return o;
}
