/*
 * sweep_md.c - sweep.md and the sweep's charts from sweep.json's content alone, so that a sweep
 * is re-drawn from its file. The curve is every step of every search of a mode, sorted by
 * offered load: repeated searches test nearby loads, and the table shows where the boundary's
 * steps passed and failed. The charts are report/svg.c's, written as standalone files (the
 * <svg> element of its figure: it carries its own colours, no page style is needed).
 */
#include "report/sweep_md.h"

#include "report/svg.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ the curve */

struct point {
    double offered, attainment, p50, p90, achieved, hit, host, disk;
    const char *judgement, *run_id;
};

static int cmp_offered(const void *a, const void *b)
{
    double x = ((const struct point *)a)->offered, y = ((const struct point *)b)->offered;
    return (x > y) - (x < y);
}

static double num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Every step of mode m, sorted by offered load, in *pts (free). Returns the count. */
static size_t curve(const json_t *m, struct point **pts)
{
    size_t n = 0, i, k;
    const json_t *s, *st;
    json_array_foreach(json_object_get(m, "searches"), i, s) n +=
        json_array_size(json_object_get(s, "steps"));
    *pts = calloc(n ? n : 1, sizeof **pts);
    if (!*pts)
        return 0;
    n = 0;
    json_array_foreach(json_object_get(m, "searches"), i, s)
    {
        json_array_foreach(json_object_get(s, "steps"), k, st)
        {
            (*pts)[n++] = (struct point){num(st, "offered"),
                                         num(st, "attainment"),
                                         num(st, "ttft_p50_ms"),
                                         num(st, "ttft_p90_ms"),
                                         num(st, "achieved_req_per_s"),
                                         num(st, "kv_hit_rate"),
                                         num(st, "onboard_blocks_host"),
                                         num(st, "onboard_blocks_disk"),
                                         json_get_str(st, "judgement", "?"),
                                         json_get_str(st, "run_id", "?")};
        }
    }
    qsort(*pts, n, sizeof **pts, cmp_offered);
    return n;
}

static void cell(struct buf *b, double v, const char *fmt)
{
    buf_append_str(b, " | ");
    if (isfinite(v))
        buf_printf(b, fmt, v);
    else
        buf_append_str(b, "—");
}

static void curve_table(struct buf *b, const json_t *m, const char *unit)
{
    struct point *p;
    size_t n = curve(m, &p);
    buf_printf(b, "\n### %s\n\n", json_get_str(m, "label", "?"));
    buf_printf(b,
               "| offered (%s) | attainment | TTFT p50 ms | TTFT p90 ms | achieved req/s | "
               "KV hit rate | onboarded host | onboarded disk | step | run |\n",
               unit);
    buf_append_str(b, "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        buf_printf(b, "| %.4g", p[i].offered);
        cell(b, p[i].attainment, "%.3f");
        cell(b, p[i].p50, "%.1f");
        cell(b, p[i].p90, "%.1f");
        cell(b, p[i].achieved, "%.3g");
        cell(b, p[i].hit, "%.3f");
        cell(b, p[i].host, "%.0f");
        cell(b, p[i].disk, "%.0f");
        buf_printf(b, " | %s | [`%s`](../%s/report.md) |\n", p[i].judgement, p[i].run_id,
                   p[i].run_id);
    }
    free(p);
}

char *sweep_markdown(const json_t *sw)
{
    struct buf b = BUF_INIT;
    const char *unit = json_get_str(json_object_get(sw, "load"), "unit", "req/s");
    buf_printf(&b, "# Sweep %s: capacity at SLO\n\n", json_get_str(sw, "sweep_id", "?"));
    buf_printf(&b, "**%s**\n\n",
               json_get_str(json_object_get(sw, "decision"), "line", "(no decision)"));
    buf_printf(&b,
               "Scenario `%s`, offered load by `%s` (%s); a step passes when at least %.4g %% "
               "of its requests meet",
               json_get_str(sw, "scenario", "?"),
               json_get_str(json_object_get(sw, "load"), "variable", "?"), unit,
               json_get_num(sw, "slo_target", 0) * 100);
    const char *key, *sep = " ";
    const json_t *lim;
    json_object_foreach((json_t *)json_object_get(sw, "slo"), key, lim)
    {
        buf_printf(&b, "%s%s ≤ %.6g", sep, key, json_number_value(lim));
        sep = ", ";
    }
    buf_printf(&b, " and the server keeps up; search precision %.4g %%, %lld searches per mode.\n",
               json_get_num(sw, "precision", 0) * 100, (long long)json_get_num(sw, "repeats", 0));
    if (json_object_get(sw, "stopped"))
        buf_printf(&b, "\n**The sweep stopped early:** %s\n", json_get_str(sw, "stopped", "?"));
    buf_printf(&b,
               "\n## Capacity per mode\n\n| mode | capacity (%s) | 95 %% CI | searches | "
               "estimates | search end |\n|---|---:|---|---:|---|---|\n",
               unit);
    size_t i;
    const json_t *m, *r;
    json_array_foreach(json_object_get(sw, "modes"), i, m)
    {
        const json_t *c = json_object_get(m, "capacity");
        buf_printf(&b, "| %s", json_get_str(m, "label", "?"));
        cell(&b, num(c, "value"), "%.4g");
        if (isfinite(num(c, "ci95_low")))
            buf_printf(&b, " | %.4g–%.4g", num(c, "ci95_low"), num(c, "ci95_high"));
        else
            buf_append_str(&b, " | —");
        buf_printf(&b, " | %lld |", (long long)num(c, "searches"));
        size_t e;
        const json_t *x;
        json_array_foreach(json_object_get(c, "estimates"), e, x)
        {
            if (json_is_number(x))
                buf_printf(&b, "%s%.4g", e ? ", " : " ", json_number_value(x));
            else
                buf_printf(&b, "%s—", e ? ", " : " ");
        }
        buf_printf(&b, " | %s |", json_get_str(c, "end", "?"));
        buf_append_str(&b, "\n");
    }
    if (json_array_size(json_object_get(sw, "ratios"))) {
        buf_append_str(&b, "\n## Capacity ratios\n\n| mode | vs | ratio | 95 % CI | verdict |\n"
                           "|---|---|---:|---|---|\n");
        json_array_foreach(json_object_get(sw, "ratios"), i, r)
        {
            buf_printf(&b, "| %s | %s", json_get_str(r, "label", "?"),
                       json_get_str(r, "baseline", "?"));
            cell(&b, num(r, "ratio"), "%.3f");
            if (isfinite(num(r, "ci95_low")))
                buf_printf(&b, " | %.3f–%.3f", num(r, "ci95_low"), num(r, "ci95_high"));
            else
                buf_append_str(&b, " | —");
            buf_printf(&b, " | %s |\n", json_get_str(r, "verdict", "?"));
        }
    }
    buf_append_str(&b, "\n## Curves\n\n![attainment against offered load](sweep_attainment.svg)\n"
                       "![TTFT p90 against offered load](sweep_ttft.svg)\n");
    json_array_foreach(json_object_get(sw, "modes"), i, m) curve_table(&b, m, unit);
    if (buf_failed(&b)) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b);
}

/* ------------------------------------------------------------ charts */

/* The chart of field (attainment or ttft_p90) per mode, one series each, with the line at limit
 * (the target, the TTFT SLO; NAN: none); the bare <svg> element in out. False when out of
 * memory. */
static bool chart_of(const json_t *sw, bool ttft, struct buf *out)
{
    const char *unit = json_get_str(json_object_get(sw, "load"), "unit", "req/s");
    double x0 = INFINITY, x1 = 0, y1 = ttft ? 0 : 1;
    size_t i, n_modes = json_array_size(json_object_get(sw, "modes"));
    struct point *pts[SVG_SERIES_MAX] = {0};
    size_t np[SVG_SERIES_MAX] = {0};
    const json_t *m;
    json_array_foreach(json_object_get(sw, "modes"), i, m)
    {
        if (i + 1 >= SVG_SERIES_MAX)
            break;
        np[i] = curve(m, &pts[i]);
        for (size_t k = 0; k < np[i]; k++) {
            x0 = fmin(x0, pts[i][k].offered);
            x1 = fmax(x1, pts[i][k].offered);
            if (ttft && isfinite(pts[i][k].p90))
                y1 = fmax(y1, pts[i][k].p90);
        }
    }
    double limit = ttft ? num(json_object_get(sw, "slo"), "ttft_ms") : num(sw, "slo_target");
    if (ttft && isfinite(limit))
        y1 = fmax(y1, limit * 1.1);
    struct buf fig = BUF_INIT;
    struct chart c;
    char xlabel[64];
    snprintf(xlabel, sizeof xlabel, "offered load (%s)", unit);
    chart_begin(&c, &fig, ttft ? "sweep-ttft" : "sweep-attainment",
                ttft ? "TTFT p90 (corrected) against offered load"
                     : "SLO attainment against offered load",
                xlabel, ttft ? "TTFT p90 (ms)" : "attainment", isfinite(x0) ? x0 * 0.9 : 0,
                x1 * 1.05, 0, y1);
    json_array_foreach(json_object_get(sw, "modes"), i, m)
    {
        if (i + 1 >= SVG_SERIES_MAX)
            break;
        double x[np[i] + 1], y[np[i] + 1];
        for (size_t k = 0; k < np[i]; k++) {
            x[k] = pts[i][k].offered;
            y[k] = ttft ? pts[i][k].p90 : pts[i][k].attainment;
        }
        const char *label = json_get_str(m, "label", "?");
        chart_line(&c, i, label, x, y, np[i], false);
        chart_points(&c, i, label, x, y, np[i]);
        free(pts[i]);
    }
    if (isfinite(limit) && isfinite(x0)) {
        double lx[2] = {x0 * 0.9, x1 * 1.05}, ly[2] = {limit, limit};
        chart_line(&c, n_modes < SVG_SERIES_MAX ? n_modes : SVG_SERIES_MAX - 1,
                   ttft ? "TTFT SLO" : "target", lx, ly, 2, false);
    }
    chart_end(&c);
    bool ok = !buf_failed(&fig);
    const char *s = ok ? buf_cstr(&fig) : NULL, *a = s ? strstr(s, "<svg") : NULL;
    const char *z = a ? strstr(a, "</svg>") : NULL;
    if (a && z) {
        buf_append(out, a, (size_t)(z - a) + 6);
        buf_append_str(out, "\n");
    }
    buf_free(&fig);
    return ok && a && z;
}

int sweep_report_write(const char *dir, const json_t *sweep, char *err)
{
    char path[PATH_MAX + 32];
    char *md = sweep_markdown(sweep);
    if (!md)
        return err_set(err, "sweep.md: out of memory");
    snprintf(path, sizeof path, "%s/sweep.md", dir);
    int rc = fs_write_atomic(path, md, strlen(md), err);
    free(md);
    for (int t = 0; rc == 0 && t < 2; t++) {
        struct buf b = BUF_INIT;
        snprintf(path, sizeof path, "%s/%s", dir, t ? "sweep_ttft.svg" : "sweep_attainment.svg");
        if (!chart_of(sweep, t == 1, &b))
            rc = err_set(err, "%s: out of memory", path);
        else
            rc = fs_write_buf(path, &b, err);
        buf_free(&b);
    }
    return rc;
}
