/*
 * compare.c - mode comparisons.
 *
 * Metrics are read from each run's summary.json (the overall summary; for an invalid run, whose
 * overall summary is excluded, the values are null), so a comparison can also be rebuilt from
 * runs made earlier.
 */
#include "bench/compare.h"

#include "bench/sumtable.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metric {
    const char *name;  /* in the comparison */
    const char *group; /* overall_summary member, or special */
    const char *key;
    const char *unit;
};

static const struct metric METRICS[] = {
    {"req_per_s", "overall", "req_per_s", "req/s"},
    {"output_tokens_per_s_est", "overall", "output_tokens_per_s_est", "tok/s"},
    {"error_rate", "overall", "error_rate", ""},
    {"ttft_p50_ms", "ttft_ms", "p50", "ms"},
    {"ttft_p95_ms", "ttft_ms", "p95", "ms"},
    {"ttft_p99_ms", "ttft_ms", "p99", "ms"},
    {"itl_p50_ms", "itl_ms", "p50", "ms"},
    {"itl_p95_ms", "itl_ms", "p95", "ms"},
    {"latency_p50_ms", "latency_ms", "p50", "ms"},
    {"latency_p95_ms", "latency_ms", "p95", "ms"},
    {"latency_p99_ms", "latency_ms", "p99", "ms"},
    {"disk_read_mib", "io", "read_mib_delta", "MiB"},
    {"disk_write_mib", "io", "write_mib_delta", "MiB"},
    {"kv_offload_blocks", "kv", "offload_blocks_total_delta", "blocks"},
    {"kv_onboard_blocks", "kv", "onboard_blocks_total_delta", "blocks"},
    {"kv_matched_tokens", "kv", "matched_tokens_total_delta", "tokens"},
};

static bool metric_value(const json_t *s, const struct metric *m, double *v)
{
    if (!s)
        return false;
    const json_t *ov = json_object_get(s, "overall_summary");
    if (json_get_bool(ov, "excluded", false))
        return false;
    if (strcmp(m->group, "overall") == 0)
        return json_get_num_strict(ov, m->key, v);
    if (strcmp(m->group, "kv") == 0) {
        const json_t *km = json_object_get(s, "kvbm_metrics");
        if (!json_get_bool(km, "available", false))
            return false;
        return json_get_num_strict(json_object_get(km, "rollup"), m->key, v);
    }
    if (strcmp(m->group, "io") == 0) {
        /* summed over the phases counted in the overall summary */
        double sum = 0;
        bool any = false;
        size_t i;
        const json_t *ps;
        json_array_foreach(json_object_get(s, "phase_summaries"), i, ps)
        {
            if (!json_get_bool(ps, "included_in_overall", false))
                continue;
            double x;
            if (json_get_num_strict(json_object_get(ps, "io_delta"), m->key, &x)) {
                sum += x;
                any = true;
            }
        }
        *v = sum;
        return any;
    }
    return json_get_num_strict(json_object_get(ov, m->group), m->key, v);
}

json_t *compare_build(const json_t *modes)
{
    json_t *out = json_object();
    json_t *mode_list = json_array();
    const json_t *first = NULL;
    const char *first_mode = NULL;
    size_t i;
    const json_t *m;
    json_array_foreach(modes, i, m)
    {
        const json_t *s = json_object_get(m, "summary");
        if (i == 0) {
            first = s;
            first_mode = json_get_str(m, "mode", "?");
        }
        json_t *e = json_pack("{s:s, s:o, s:b, s:o, s:s}", "mode", json_get_str(m, "mode", "?"),
                              "run_id", json_incref(json_object_get(m, "run_id")), "valid",
                              s && json_get_bool(s, "run_valid", false), "invalid_reason",
                              s ? json_incref(json_object_get(s, "invalid_reason"))
                                : json_string(json_get_str(m, "error", "run failed")),
                              "signal", s ? sumtable_signal(s) : "-");
        json_array_append_new(mode_list, e);
    }
    json_put(out, "baseline_mode", first_mode ? json_string(first_mode) : json_null());
    json_put(out, "modes", mode_list);
    json_t *metrics = json_array();
    for (size_t k = 0; k < sizeof METRICS / sizeof METRICS[0]; k++) {
        const struct metric *mt = &METRICS[k];
        json_t *values = json_object(), *diff = json_object(), *ratio = json_object();
        double base;
        bool have_base = metric_value(first, mt, &base);
        json_array_foreach(modes, i, m)
        {
            const char *mode = json_get_str(m, "mode", "?");
            double v;
            bool have = metric_value(json_object_get(m, "summary"), mt, &v);
            json_object_set_new(values, mode, json_real_or_null(v, have));
            json_object_set_new(diff, mode, json_real_or_null(v - base, have && have_base));
            json_object_set_new(ratio, mode,
                                json_real_or_null(v / base, have && have_base && base != 0));
        }
        json_array_append_new(metrics,
                              json_pack("{s:s, s:s, s:o, s:o, s:o}", "metric", mt->name, "unit",
                                        mt->unit, "values", values, "diff_vs_baseline", diff,
                                        "ratio_vs_baseline", ratio));
    }
    json_put(out, "metrics", metrics);
    return out;
}

char *compare_markdown(const json_t *c)
{
    struct buf b = BUF_INIT;
    const json_t *modes = json_object_get(c, "modes");
    const char *base = json_get_str(c, "baseline_mode", "?");
    buf_printf(&b, "# kvbench compare %s\n\n| mode | run | valid | verdict |\n|---|---|---|---|\n",
               json_get_str(c, "compare_id", ""));
    size_t i;
    const json_t *m;
    json_array_foreach(modes, i, m)
    {
        bool valid = json_get_bool(m, "valid", false);
        buf_printf(&b, "| %s | %s | %s%s | %s |\n", json_get_str(m, "mode", "?"),
                   json_get_str(m, "run_id", "-"),
                   valid ? "yes" : "no: ", valid ? "" : json_get_str(m, "invalid_reason", "?"),
                   json_get_str(m, "signal", "-"));
    }
    buf_append_str(&b, "\n| metric |");
    json_array_foreach(modes, i, m) buf_printf(&b, " %s |", json_get_str(m, "mode", "?"));
    json_array_foreach(modes, i, m) if (i > 0)
        buf_printf(&b, " %s / %s |", json_get_str(m, "mode", "?"), base);
    buf_append_str(&b, "\n|---|");
    for (size_t k = 0; k < json_array_size(modes) * 2 - 1; k++)
        buf_append_str(&b, "---|");
    buf_append_str(&b, "\n");
    const json_t *mt;
    json_array_foreach(json_object_get(c, "metrics"), i, mt)
    {
        const char *unit = json_get_str(mt, "unit", "");
        buf_printf(&b, "| %s%s%s%s |", json_get_str(mt, "metric", "?"), *unit ? " (" : "", unit,
                   *unit ? ")" : "");
        const json_t *vals = json_object_get(mt, "values"),
                     *ratio = json_object_get(mt, "ratio_vs_baseline");
        size_t k;
        json_array_foreach(modes, k, m)
        {
            const json_t *v = json_object_get(vals, json_get_str(m, "mode", ""));
            if (json_is_number(v))
                buf_printf(&b, " %.2f |", json_number_value(v));
            else
                buf_append_str(&b, " – |");
        }
        json_array_foreach(modes, k, m)
        {
            if (k == 0)
                continue;
            const json_t *v = json_object_get(ratio, json_get_str(m, "mode", ""));
            if (json_is_number(v))
                buf_printf(&b, " %.2fx |", json_number_value(v));
            else
                buf_append_str(&b, " – |");
        }
        buf_append_str(&b, "\n");
    }
    return buf_detach(&b);
}

static void event(const struct compare_config *c, const char *ev, const char *mode,
                  const char *detail)
{
    if (c->event)
        c->event(ev, mode, detail, c->event_user);
}

int compare_run(const struct compare_config *c, struct compare_outcome *out, char *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->dir, sizeof out->dir, "%s/%s", c->run.results_root, c->compare_id);
    int rc = fs_mkdir_new(out->dir, err);
    if (rc < 0)
        return -1;
    json_t *modes = json_array();
    out->all_valid = true;
    for (size_t i = 0; i < c->n_modes; i++) {
        const char *mode = c->modes[i];
        char run_id[256], e[ERR_LEN] = "";
        snprintf(run_id, sizeof run_id, "%s_%s", c->compare_id, mode);
        json_t *entry = json_pack("{s:s, s:s}", "mode", mode, "run_id", run_id);
        json_array_append_new(modes, entry);
        if (c->interrupted && *c->interrupted) {
            json_object_set_new(entry, "error", json_string("interrupted"));
            out->all_valid = false;
            continue;
        }
        if (c->restart) {
            event(c, "restart", mode, NULL);
            if (c->restart(mode, c->restart_user, e) < 0) {
                event(c, "failed", mode, e);
                json_object_set_new(entry, "error", json_string(e));
                out->all_valid = false;
                continue;
            }
        }
        if (!c->skip_ready) {
            event(c, "ready", mode, NULL);
            if (ready_wait(&c->ready, NULL, NULL) < 0) {
                snprintf(e, sizeof e, "the server was not ready within %.0f s", c->ready.timeout_s);
                event(c, "failed", mode, e);
                json_object_set_new(entry, "error", json_string(e));
                out->all_valid = false;
                continue;
            }
        }
        struct run_config rc_mode = c->run;
        rc_mode.kv_mode = mode;
        rc_mode.run_id = run_id;
        struct run_outcome ro;
        event(c, "run", mode, run_id);
        int r = bench_run(&rc_mode, c->interrupted, &ro, e);
        if (r != RUN_OK) {
            event(c, "failed", mode, e);
            json_object_set_new(entry, "error", json_string(e));
            out->all_valid = false;
            continue;
        }
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/summary.json", ro.run_dir);
        json_t *s = json_read_file(path, e);
        if (s)
            json_object_set_new(entry, "summary", s);
        if (!ro.valid)
            out->all_valid = false;
        event(c, "done", mode, ro.valid ? "valid" : ro.invalid_reason);
    }
    json_t *cmp = compare_build(modes);
    json_object_set_new(cmp, "compare_id", json_string(c->compare_id));
    json_object_set_new(cmp, "scenario", json_string(c->run.scenario));
    json_object_set_new(cmp, "base_url", json_string(c->run.base_url));
    json_object_set_new(cmp, "all_valid", json_boolean(out->all_valid));
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/comparison.json", out->dir);
    rc = json_write_file(path, cmp, err);
    char *md = compare_markdown(cmp);
    snprintf(path, sizeof path, "%s/comparison.md", out->dir);
    if (rc == 0 && md && fs_write_atomic(path, md, strlen(md), err) < 0)
        rc = -1;
    free(md);
    json_decref(cmp);
    json_decref(modes);
    return rc;
}
