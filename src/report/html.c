/*
 * html.c - report.html for a run or a comparison (see html.h).
 *
 * A page is built whole in one struct buf and written atomically by fs_write_buf, which refuses a
 * buffer whose sticky error is set. Every failure while building a page therefore ends up there:
 * an append that runs out of memory sets it itself, and the page's other allocations (a chart's
 * arrays, a CDF, the markdown of the report) set it through page_fail. A run whose inputs could
 * not be read whole for want of memory (a series that lost a point, a line jansson reported out
 * of memory on) is refused before the page is built. A page that lost a point, a chart or a
 * section is never written: the caller gets an error instead. (jansson's parser can itself lose a
 * byte of a string without an error when an allocation fails: see tests/unit/test_faults.c.)
 */
#include "report/html.h"
#include "model/engines.h"

#include "analysis/stats.h"

#include "report/report.h"
#include "scenario/scenario.h"
#include "report/svg.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/json.h"

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ failures */

/* Something the page needed could not be allocated: mark the page's buffer failed, as an append
 * that ran out of memory would, so that the page is refused when it is written. */
static void page_fail(struct buf *b)
{
    b->failed = true;
}

/* json_loads of one input line; *oom is set when it failed for want of memory (the line is then
 * not malformed, and skipping it would draw a chart with a point missing). */
static json_t *load_line(const char *line, bool *oom)
{
    json_error_t e;
    json_t *o = json_loads(line, 0, &e);
    if (!o && json_error_code(&e) == json_error_out_of_memory)
        *oom = true;
    return o;
}

/* ------------------------------------------------------------ markdown */

/* len bytes of s, escaped (s need not be NUL-terminated). */
static void escape_n(struct buf *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char one[2] = {s[i], '\0'};
        html_escape(b, one);
    }
}

/* Inline: `code`, **bold**; the rest escaped. */
static void inline_md(struct buf *b, const char *s, size_t len)
{
    bool code = false, strong = false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '`') {
            buf_append_str(b, code ? "</code>" : "<code>");
            code = !code;
        } else if (!code && ch == '*' && i + 1 < len && s[i + 1] == '*') {
            buf_append_str(b, strong ? "</strong>" : "<strong>");
            strong = !strong;
            i++;
        } else {
            escape_n(b, &ch, 1);
        }
    }
    if (code)
        buf_append_str(b, "</code>");
    if (strong)
        buf_append_str(b, "</strong>");
}

static void table_row(struct buf *b, const char *line, size_t len, bool head)
{
    buf_append_str(b, "<tr>");
    size_t i = 0;
    if (i < len && line[i] == '|')
        i++;
    while (i < len) {
        size_t j = i;
        while (j < len && line[j] != '|')
            j++;
        if (j == len && j == i)
            break;
        size_t a = i, z = j;
        while (a < z && line[a] == ' ')
            a++;
        while (z > a && line[z - 1] == ' ')
            z--;
        buf_append_str(b, head ? "<th>" : "<td>");
        inline_md(b, line + a, z - a);
        buf_append_str(b, head ? "</th>" : "</td>");
        i = j + 1;
    }
    buf_append_str(b, "</tr>\n");
}

void html_from_markdown(struct buf *out, const char *md)
{
    enum { NONE, PARA, LIST, TABLE, FENCE } mode = NONE;
    bool table_head = false;
    const char *p = md;
    while (p && *p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *next = e ? e + 1 : p + len;
        bool is_table = len > 0 && p[0] == '|', is_item = len > 1 && p[0] == '-' && p[1] == ' ';
        bool is_fence = len >= 3 && strncmp(p, "```", 3) == 0;
        if (mode == FENCE) {
            if (is_fence) {
                buf_append_str(out, "</pre>\n");
                mode = NONE;
            } else {
                escape_n(out, p, len);
                buf_append_char(out, '\n');
            }
            p = next;
            continue;
        }
        /* close what this line does not continue */
        if ((mode == PARA && (len == 0 || is_table || is_item || p[0] == '#' || is_fence)) ||
            (mode == LIST && !is_item) || (mode == TABLE && !is_table)) {
            buf_append_str(out, mode == PARA   ? "</p>\n"
                                : mode == LIST ? "</ul>\n"
                                               : "</tbody></table></div>\n");
            mode = NONE;
        }
        if (len == 0) {
        } else if (is_fence) {
            buf_append_str(out, "<pre>");
            mode = FENCE;
        } else if (p[0] == '#') {
            int level = 0;
            while (level < 6 && p[level] == '#')
                level++;
            const char *t = p + level;
            while (*t == ' ')
                t++;
            buf_printf(out, "<h%d>", level + 1); /* the page's own title is the h1 */
            inline_md(out, t, len - (size_t)(t - p));
            buf_printf(out, "</h%d>\n", level + 1);
        } else if (is_table) {
            bool sep = true;
            for (size_t i = 0; i < len; i++)
                sep &= strchr("|-: ", p[i]) != NULL;
            if (mode != TABLE) {
                buf_append_str(out, "<div class=\"table\"><table><thead>\n");
                mode = TABLE;
                table_head = true;
            }
            if (sep) {
                if (table_head)
                    buf_append_str(out, "</thead><tbody>\n");
                table_head = false;
            } else {
                table_row(out, p, len, table_head);
            }
        } else if (is_item) {
            if (mode != LIST)
                buf_append_str(out, "<ul>\n");
            mode = LIST;
            buf_append_str(out, "<li>");
            inline_md(out, p + 2, len - 2);
            buf_append_str(out, "</li>\n");
        } else {
            if (mode != PARA)
                buf_append_str(out, "<p>");
            else
                buf_append_char(out, ' ');
            mode = PARA;
            inline_md(out, p, len);
        }
        p = next;
    }
    if (mode != NONE)
        buf_append_str(out, mode == PARA    ? "</p>\n"
                            : mode == LIST  ? "</ul>\n"
                            : mode == FENCE ? "</pre>\n"
                                            : "</tbody></table></div>\n");
}

/* ------------------------------------------------------------ page */

static const char STYLE[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1120px;"
    "margin:1.5em auto;padding:0 1em;color:#111;line-height:1.4}"
    "h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.25em;border-bottom:1px solid #ccc;"
    "margin-top:1.6em}h3{font-size:1.1em}h4{font-size:1em}"
    ".banner{border:3px solid #1a7f37;border-left-width:12px;padding:.6em 1em;margin:1em 0;"
    "background:#f4faf5}.banner.invalid{border-color:#b42318;background:#fdf3f2}"
    ".banner.unknown{border-color:#8a6d00;background:#fffbe6}.banner .sig{font-size:1.2em;"
    "font-weight:700;font-family:ui-monospace,monospace}"
    "figure.chart{margin:1em 0 1.6em;break-inside:avoid;page-break-inside:avoid}"
    "figure.chart figcaption{font-weight:600;margin-bottom:.3em}figure.chart svg{max-width:100%;"
    "height:auto;font-family:system-ui,sans-serif}.charts .note{color:#555;font-style:italic}"
    "div.table{overflow-x:auto}table{border-collapse:collapse;font-size:.85em;margin:.5em 0}"
    "th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f0f0f0}"
    "td:first-child,th:first-child{text-align:left}code{font-family:ui-monospace,monospace;"
    "font-size:.92em;background:#f3f3f3;padding:0 2px}pre{background:#f6f6f6;padding:.5em;"
    "overflow-x:auto}footer{color:#666;font-size:.8em;margin-top:2em}"
    "@media print{body{max-width:none;margin:0}.banner{background:none}a{color:#000}"
    "h2{break-after:avoid}}";

static void page_open(struct buf *b, const char *title)
{
    buf_append_str(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                      "<title>");
    html_escape(b, title);
    buf_printf(b, "</title><style>%s</style></head>\n<body>\n<h1>", STYLE);
    html_escape(b, title);
    buf_append_str(b, "</h1>\n");
}

static void page_close(struct buf *b)
{
    buf_append_str(b, "<footer>Written by kvbench. Every chart is inline SVG; hover a mark for its "
                      "figures.</footer>\n</body></html>\n");
}

static int write_page(const char *dir, struct buf *b, char *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/report.html", dir);
    return fs_write_buf(path, b, err);
}

/* ------------------------------------------------------------ series */

struct series {
    double *x, *y;
    size_t n, cap;
    bool failed; /* a point could not be added: the series is incomplete (sticky, like buf's) */
};

static void ser_add(struct series *s, double x, double y)
{
    if (s->failed)
        return;
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 256;
        double *nx = fault_realloc(s->x, c * sizeof *nx);
        if (nx)
            s->x = nx;
        double *ny = nx ? fault_realloc(s->y, c * sizeof *ny) : NULL;
        if (!ny) {
            s->failed = true;
            return;
        }
        s->y = ny;
        s->cap = c;
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
}

static void ser_free(struct series *s)
{
    free(s->x);
    free(s->y);
    memset(s, 0, sizeof *s);
}

static double ser_max(const struct series *s, bool y)
{
    double m = 0;
    for (size_t i = 0; i < s->n; i++) {
        double v = y ? s->y[i] : s->x[i];
        if (isfinite(v) && v > m)
            m = v;
    }
    return m;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A CDF of the values in s->y: at most 200 steps (out->failed when out of memory). */
static void cdf_of(const struct series *s, struct series *out)
{
    if (!s->n)
        return;
    double *v = fault_malloc(s->n * sizeof *v);
    if (!v) {
        out->failed = true;
        return;
    }
    memcpy(v, s->y, s->n * sizeof *v);
    qsort(v, s->n, sizeof *v, cmp_double);
    size_t step = s->n > 200 ? s->n / 200 : 1;
    ser_add(out, v[0], 0);
    for (size_t i = 0; i < s->n; i += step)
        ser_add(out, v[i], (double)(i + 1) / (double)s->n);
    ser_add(out, v[s->n - 1], 1);
    free(v);
}

/* ------------------------------------------------------------ a run */

#define PHASES_MAX 64

struct run_data {
    char dir[PATH_MAX];
    json_t *summary, *config;
    double origin; /* epoch s of the run's start: the charts' zero */
    struct {
        char name[40];
        double t0, t1;
        struct series ttft, lat; /* values (y) for the CDFs */
    } ph[PHASES_MAX];
    size_t n_ph;
    struct series ttft, lat, failed; /* against time */
    size_t rows, stride;
    struct series rd, wr, cache; /* telemetry */
    bool have_disk, have_cache;
    bool oom; /* an input line or a copy could not be allocated: the data are incomplete */
};

static size_t phase_index(struct run_data *d, const char *name)
{
    for (size_t i = 0; i < d->n_ph; i++)
        if (strcmp(d->ph[i].name, name) == 0)
            return i;
    if (d->n_ph == PHASES_MAX)
        return SIZE_MAX;
    snprintf(d->ph[d->n_ph].name, sizeof d->ph[0].name, "%s", name);
    d->ph[d->n_ph].t0 = d->ph[d->n_ph].t1 = NAN;
    return d->n_ph++;
}

/* The phases' spans, from the metrics snapshots (before_<phase> .. after_<phase>). */
static void read_snapshots(struct run_data *d)
{
    char path[PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/kvbm_metrics_snapshots.jsonl", d->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        json_t *o = load_line(line, &d->oom);
        const char *label = json_get_str(o, "label", "");
        double t;
        if (o && clock_parse_iso(json_get_str(o, "timestamp_utc", ""), &t) == 0) {
            if (!(d->origin > 0) || strcmp(label, "run_start") == 0)
                d->origin = t; /* the run's start, else the first snapshot */
            bool before = strncmp(label, "before_", 7) == 0,
                 after = strncmp(label, "after_", 6) == 0;
            if (before || after) {
                size_t i = phase_index(d, label + (before ? 7 : 6));
                if (i != SIZE_MAX) {
                    if (before)
                        d->ph[i].t0 = t;
                    else
                        d->ph[i].t1 = t;
                }
            }
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
}

/* Every request (every k-th past HTML_POINTS_MAX): TTFT and latency against its start. */
static void read_requests(struct run_data *d)
{
    size_t total = 0, i;
    const json_t *ps;
    json_array_foreach(json_object_get(d->summary, "phase_summaries"), i, ps) total +=
        (size_t)json_get_int(ps, "total_requests", 0);
    d->stride = total > HTML_POINTS_MAX ? (total + HTML_POINTS_MAX - 1) / HTML_POINTS_MAX : 1;
    char path[PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/requests.jsonl", d->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0, k = 0;
    while (getline(&line, &cap, f) >= 0) {
        if (k++ % d->stride)
            continue;
        json_t *o = load_line(line, &d->oom);
        double t, ttft, lat;
        if (o && clock_parse_iso(json_get_str(o, "start_ts", ""), &t) == 0) {
            if (!(d->origin > 0))
                d->origin = t;
            t -= d->origin;
            bool ok = json_is_null(json_object_get(o, "error"));
            size_t pi = phase_index(d, json_get_str(o, "phase", "?"));
            if (json_get_num_strict(o, "latency_ms", &lat)) {
                ser_add(ok ? &d->lat : &d->failed, t, lat);
                if (ok && pi != SIZE_MAX)
                    ser_add(&d->ph[pi].lat, t, lat);
            }
            if (ok && json_get_num_strict(o, "ttft_ms", &ttft)) {
                ser_add(&d->ttft, t, ttft);
                if (pi != SIZE_MAX)
                    ser_add(&d->ph[pi].ttft, t, ttft);
            }
            d->rows++;
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
}

/* The value of column `name` in a CSV row (split in place), or NULL. */
static const char *csv_col(char **cols, size_t n, char **head, size_t nh, const char *name)
{
    for (size_t i = 0; i < nh && i < n; i++)
        if (strcmp(head[i], name) == 0)
            return cols[i];
    return NULL;
}

static size_t split(char *line, char **cols, size_t max)
{
    size_t n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line; n < max; n++) {
        cols[n] = p;
        char *c = strchr(p, ',');
        if (!c) {
            n++;
            break;
        }
        *c = '\0';
        p = c + 1;
    }
    return n;
}

/* Telemetry: disk MB/s from iostat_<dev>.csv, the cache directory's size from its snapshots. */
static void read_telemetry(struct run_data *d)
{
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/telemetry", d->dir);
    DIR *dh = opendir(dir);
    if (!dh)
        return;
    struct dirent *de;
    while ((de = readdir(dh))) {
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t nl = strlen(de->d_name);
        bool iostat = strncmp(de->d_name, "iostat_", 7) == 0 && nl > 4 &&
                      strcmp(de->d_name + nl - 4, ".csv") == 0;
        bool snap = strncmp(de->d_name, "kvbm_", 5) == 0 && nl > 10 &&
                    strcmp(de->d_name + nl - 10, "_files.txt") == 0;
        if (!iostat && !snap)
            continue;
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char *line = NULL, *head = NULL;
        size_t cap = 0;
        char *hcols[32], *cols[32];
        size_t nh = 0;
        double t = NAN, bytes = NAN;
        while (getline(&line, &cap, f) >= 0) {
            if (snap) {
                if (strncmp(line, "# time: ", 8) == 0) {
                    line[strcspn(line, "\r\n")] = '\0';
                    if (clock_parse_iso(line + 8, &t) < 0)
                        t = NAN;
                } else if (strncmp(line, "# bytes: ", 9) == 0) {
                    bytes = strtod(line + 9, NULL);
                } else if (line[0] != '#') {
                    break;
                }
                continue;
            }
            if (!head) {
                head = strdup(line);
                if (!head) {
                    d->oom = true;
                    break;
                }
                nh = split(head, hcols, 32);
                continue;
            }
            size_t n = split(line, cols, 32);
            const char *ts = csv_col(cols, n, hcols, nh, "time_utc");
            const char *r = csv_col(cols, n, hcols, nh, "rMB_s");
            const char *w = csv_col(cols, n, hcols, nh, "wMB_s");
            double at;
            /* samples from before the run started (telemetry starts first) are left out */
            if (ts && r && w && clock_parse_iso(ts, &at) == 0 && d->origin > 0 && at >= d->origin) {
                ser_add(&d->rd, at - d->origin, strtod(r, NULL));
                ser_add(&d->wr, at - d->origin, strtod(w, NULL));
                d->have_disk = true;
            }
        }
        if (snap && isfinite(t) && isfinite(bytes) && d->origin > 0) {
            ser_add(&d->cache, t - d->origin, bytes / 1048576.0);
            d->have_cache = true;
        }
        free(line);
        free(head);
        fclose(f);
    }
    closedir(dh);
}

/* Sort a series by x (the cache snapshots come in directory order). */
static void ser_sort_x(struct series *s)
{
    for (size_t i = 1; i < s->n; i++)
        for (size_t j = i; j > 0 && s->x[j - 1] > s->x[j]; j--) {
            double tx = s->x[j], ty = s->y[j];
            s->x[j] = s->x[j - 1];
            s->y[j] = s->y[j - 1];
            s->x[j - 1] = tx;
            s->y[j - 1] = ty;
        }
}

static void bands(struct chart *c, const struct run_data *d)
{
    size_t k = 0;
    for (size_t i = 0; i < d->n_ph; i++)
        if (isfinite(d->ph[i].t0) && isfinite(d->ph[i].t1))
            chart_band(c, d->ph[i].t0 - d->origin, d->ph[i].t1 - d->origin, d->ph[i].name, k++);
}

static double span_end(const struct run_data *d)
{
    double end = 0;
    for (size_t i = 0; i < d->n_ph; i++)
        if (isfinite(d->ph[i].t1) && d->ph[i].t1 - d->origin > end)
            end = d->ph[i].t1 - d->origin;
    double m = ser_max(&d->lat, false);
    return m > end ? m : end;
}

static void note(struct buf *b, const char *text)
{
    buf_append_str(b, "<p class=\"note\">");
    html_escape(b, text);
    buf_append_str(b, "</p>\n");
}

static void chart_time(struct buf *b, struct run_data *d)
{
    if (!d->ttft.n && !d->lat.n && !d->failed.n) {
        note(b, "No request has a latency to draw.");
        return;
    }
    double ymax = ser_max(&d->lat, true), f = ser_max(&d->failed, true);
    struct chart c;
    chart_begin(&c, b, "chart-requests", "Per-request TTFT and latency against time",
                "time since the run started (s)", "milliseconds", 0, span_end(d), 0,
                f > ymax ? f : ymax);
    bands(&c, d);
    if (d->lat.n)
        chart_points(&c, 1, "latency (ms)", d->lat.x, d->lat.y, d->lat.n);
    if (d->ttft.n)
        chart_points(&c, 0, "TTFT (ms)", d->ttft.x, d->ttft.y, d->ttft.n);
    if (d->failed.n)
        chart_points(&c, 4, "failed request: latency (ms)", d->failed.x, d->failed.y, d->failed.n);
    chart_end(&c);
    if (d->stride > 1) {
        char t[160];
        snprintf(t, sizeof t,
                 "One request in %zu is drawn (%zu of the run); the tables below "
                 "use every request.",
                 d->stride, d->rows);
        note(b, t);
    }
}

static void chart_cdf(struct buf *b, struct run_data *d, bool ttft)
{
    struct series cdf[PHASES_MAX];
    memset(cdf, 0, sizeof cdf);
    double xmax = 0;
    size_t drawn = 0;
    for (size_t i = 0; i < d->n_ph; i++) {
        cdf_of(ttft ? &d->ph[i].ttft : &d->ph[i].lat, &cdf[i]);
        if (cdf[i].failed)
            page_fail(b);
        double m = ser_max(&cdf[i], false);
        xmax = m > xmax ? m : xmax;
        drawn += cdf[i].n > 0;
    }
    if (drawn) {
        struct chart c;
        chart_begin(
            &c, b, ttft ? "chart-ttft-cdf" : "chart-latency-cdf",
            ttft ? "TTFT distribution per phase (CDF)" : "Latency distribution per phase (CDF)",
            ttft ? "TTFT (ms)" : "latency (ms)", "share of the phase's requests", 0, xmax, 0, 1);
        size_t s = 0;
        for (size_t i = 0; i < d->n_ph; i++)
            if (cdf[i].n)
                chart_line(&c, s++, d->ph[i].name, cdf[i].x, cdf[i].y, cdf[i].n, true);
        chart_end(&c);
    } else {
        note(b, ttft ? "No TTFT was measured (stream off, or no request succeeded)."
                     : "No request succeeded: no latency distribution.");
    }
    for (size_t i = 0; i < d->n_ph; i++)
        ser_free(&cdf[i]);
}

static void chart_disk(struct buf *b, struct run_data *d)
{
    if (!d->have_disk && !d->have_cache) {
        note(b, "No disk or cache-directory telemetry in this run (--collect-telemetry).");
        return;
    }
    double end = span_end(d);
    if (d->have_disk) {
        double r = ser_max(&d->rd, true), w = ser_max(&d->wr, true);
        double xr = ser_max(&d->rd, false);
        struct chart c;
        chart_begin(&c, b, "chart-disk", "Disk read and write throughput (telemetry)",
                    "time since the run started (s)", "MB/s (MiB/s, as iostat -m)", 0,
                    xr > end ? xr : end, 0, r > w ? r : w);
        bands(&c, d);
        chart_line(&c, 0, "read MB/s", d->rd.x, d->rd.y, d->rd.n, false);
        chart_line(&c, 1, "write MB/s", d->wr.x, d->wr.y, d->wr.n, false);
        chart_end(&c);
    }
    if (d->have_cache) {
        ser_sort_x(&d->cache);
        double xc = ser_max(&d->cache, false);
        struct chart c;
        chart_begin(&c, b, "chart-cache-dir", "KV cache directory size (snapshots around phases)",
                    "time since the run started (s)", "MiB on disk", 0, xc > end ? xc : end, 0,
                    ser_max(&d->cache, true));
        bands(&c, d);
        chart_line(&c, 0, "cache directory (MiB)", d->cache.x, d->cache.y, d->cache.n, true);
        chart_points(&c, 0, "cache directory (MiB)", d->cache.x, d->cache.y, d->cache.n);
        chart_end(&c);
    }
}

/* KV counters per phase, and reused prompt tokens per phase. */
static void chart_kv(struct buf *b, struct run_data *d)
{
    const json_t *phases = json_object_get(d->summary, "phase_summaries");
    size_t n = json_array_size(phases);
    if (!n)
        return;
    static const struct {
        const char *key, *name;
    } K[] = {
        {KVBM_OFFLOAD_D2H "_delta", "offload device→host"},
        {KVBM_OFFLOAD_H2D "_delta", "offload host→disk"},
        {KVBM_ONBOARD_H2D "_delta", "onboard host→device"},
        {KVBM_ONBOARD_D2D "_delta", "onboard disk→device"},
    };
    const char **cats = fault_calloc(n, sizeof *cats);
    double *v = fault_calloc(n * 6, sizeof *v);
    if (!cats || !v) {
        free(cats);
        free(v);
        page_fail(b);
        return;
    }
    double ymax = 0, tmax = 0;
    bool any = false, any_tok = false;
    for (size_t i = 0; i < n; i++) {
        const json_t *ps = json_array_get(phases, i);
        cats[i] = json_get_str(ps, "phase", "?");
        const json_t *dl = json_object_get(ps, "kvbm_metrics_delta");
        bool avail = json_get_bool(dl, "available", false);
        for (size_t k = 0; k < 4; k++) {
            double x = NAN;
            if (avail && json_get_num_strict(dl, K[k].key, &x)) {
                any = true;
                ymax = x > ymax ? x : ymax;
            }
            v[k * n + i] = x;
        }
        double r = NAN, u = NAN;
        const json_t *ed = json_object_get(dl, "engine_delta");
        if (!(avail && json_get_num_strict(ed, "reused_tokens", &r)) && avail)
            json_get_num_strict(dl, KVBM_MATCHED_TOKENS "_delta", &r);
        json_get_num_strict(ps, "cached_tokens_total", &u);
        v[4 * n + i] = r;
        v[5 * n + i] = u;
        for (int k = 4; k < 6; k++)
            if (isfinite(v[k * n + i])) {
                any_tok = true;
                tmax = v[k * n + i] > tmax ? v[k * n + i] : tmax;
            }
    }
    if (any) {
        struct chart c;
        chart_begin_bars(&c, b, "chart-kv-blocks", "KV blocks moved per phase (engine counters)",
                         "blocks", cats, n, ymax);
        for (size_t k = 0; k < 4; k++)
            chart_bars(&c, k, 4, K[k].name, v + k * n, NULL, NULL, n);
        chart_end(&c);
    } else {
        note(b, "The engine's KV counters were not available: no blocks-moved chart.");
    }
    if (any_tok) {
        struct chart c;
        chart_begin_bars(&c, b, "chart-reused-tokens", "Reused prompt tokens per phase", "tokens",
                         cats, n, tmax);
        chart_bars(&c, 0, 2, "engine counters", v + 4 * n, NULL, NULL, n);
        chart_bars(&c, 1, 2, "responses (cached_tokens)", v + 5 * n, NULL, NULL, n);
        chart_end(&c);
    }
    free(cats);
    free(v);
}

static void chart_multi_turn(struct buf *b, const json_t *mt)
{
    const json_t *rounds = json_object_get(mt, "rounds");
    size_t n = json_array_size(rounds);
    if (!n)
        return;
    struct series hit = {0}, could = {0}, p50 = {0}, p95 = {0};
    size_t i;
    const json_t *o;
    json_array_foreach(rounds, i, o)
    {
        double r = (double)json_get_int(o, "round", 0), x;
        if (json_get_num_strict(o, "hit_rate", &x))
            ser_add(&hit, r, x);
        if (json_get_num_strict(o, "reusable_rate", &x))
            ser_add(&could, r, x);
        const json_t *t = json_object_get(o, "ttft_ms");
        if (json_get_num_strict(t, "p50", &x))
            ser_add(&p50, r, x);
        if (json_get_num_strict(t, "p95", &x))
            ser_add(&p95, r, x);
    }
    if (hit.failed || could.failed || p50.failed || p95.failed)
        page_fail(b);
    if (hit.n || could.n) {
        struct chart c;
        chart_begin(&c, b, "chart-rounds-hit", "multi_turn: prefix-cache hit rate per round",
                    "round", "cached ÷ prompt tokens", 1, (double)n, 0, 1);
        if (could.n)
            chart_line(&c, 1, "could be reused", could.x, could.y, could.n, false);
        if (hit.n) {
            chart_line(&c, 0, "hit rate", hit.x, hit.y, hit.n, false);
            chart_points(&c, 0, "hit rate", hit.x, hit.y, hit.n);
        }
        chart_end(&c);
    }
    if (p50.n) {
        struct chart c;
        chart_begin(&c, b, "chart-rounds-ttft", "multi_turn: TTFT per round", "round", "TTFT (ms)",
                    1, (double)n, 0, ser_max(&p95, true));
        chart_line(&c, 0, "TTFT p50", p50.x, p50.y, p50.n, false);
        chart_points(&c, 0, "TTFT p50", p50.x, p50.y, p50.n);
        chart_line(&c, 1, "TTFT p95", p95.x, p95.y, p95.n, false);
        chart_points(&c, 1, "TTFT p95", p95.x, p95.y, p95.n);
        chart_end(&c);
    }
    ser_free(&hit);
    ser_free(&could);
    ser_free(&p50);
    ser_free(&p95);
}

static void chart_trace(struct buf *b, const json_t *t)
{
    const json_t *ws = json_object_get(t, "windows");
    size_t n = json_array_size(ws);
    if (!n)
        return;
    const char **cats = fault_calloc(n, sizeof *cats);
    char(*names)[16] = fault_calloc(n, sizeof *names);
    double *v = fault_calloc(2 * n, sizeof *v);
    if (!cats || !names || !v)
        page_fail(b);
    if (cats && names && v) {
        double ymax = 0;
        for (size_t i = 0; i < n; i++) {
            const json_t *w = json_array_get(ws, i);
            snprintf(names[i], sizeof names[i], "%lld", json_get_int(w, "window", 0));
            cats[i] = names[i];
            v[i] = json_get_num(w, "reusable_tokens", NAN);
            double r;
            v[n + i] = json_get_num_strict(w, "reused_tokens", &r) ? r : NAN;
            for (int k = 0; k < 2; k++)
                if (isfinite(v[k * n + i]) && v[k * n + i] > ymax)
                    ymax = v[k * n + i];
        }
        struct chart c;
        chart_begin_bars(&c, b, "chart-trace-windows",
                         "trace: tokens that could be reused and were, per window", "tokens", cats,
                         n, ymax);
        chart_bars(&c, 0, 2, "could be reused (from the trace)", v, NULL, NULL, n);
        chart_bars(&c, 1, 2, "reused by the server", v + n, NULL, NULL, n);
        chart_end(&c);
    }
    free(cats);
    free(names);
    free(v);
}

/* breakeven: TTFT against context length per source (the rows in the fits), the fitted lines,
 * and each tier's break-even where its line crosses the cold one within the measured lengths. */
static void chart_breakeven(struct buf *b, const json_t *bk)
{
    static const char *const SRC[] = {"cold", "device", "host", "disk"};
    struct series pts[4] = {{0}};
    double x0 = INFINITY, x1 = 0, y1 = 0;
    size_t i;
    const json_t *o;
    json_array_foreach(json_object_get(bk, "rows"), i, o)
    {
        double x, y;
        const char *src = json_get_str(o, "source", "");
        if (!json_is_true(json_object_get(o, "in_fit")) ||
            !json_get_num_strict(o, "prompt_tokens", &x) || !json_get_num_strict(o, "ttft_ms", &y))
            continue;
        for (size_t s = 0; s < 4; s++)
            if (strcmp(src, SRC[s]) == 0)
                ser_add(&pts[s], x, y);
        x0 = x < x0 ? x : x0;
        x1 = x > x1 ? x : x1;
        y1 = y > y1 ? y : y1;
    }
    bool failed = false;
    for (size_t s = 0; s < 4; s++)
        failed |= pts[s].failed;
    if (failed)
        page_fail(b);
    if (x1 > x0) {
        char names[6][64]; /* the chart keeps the names until chart_end */
        struct chart c;
        chart_begin(&c, b, "chart-breakeven",
                    "breakeven: TTFT against context length, cold and warm from each tier",
                    "prompt tokens", "TTFT (ms)", x0, x1, 0, y1);
        for (size_t s = 0; s < 4; s++) {
            const json_t *f = json_object_get(json_object_get(bk, "fits"), SRC[s]);
            double a, k;
            char *name = names[s];
            if (!pts[s].n)
                continue;
            snprintf(name, sizeof names[s], "%s: repeats, and the line fitted to their medians",
                     SRC[s]);
            chart_points(&c, s, name, pts[s].x, pts[s].y, pts[s].n);
            if (json_get_num_strict(f, "fixed_ms", &a) &&
                json_get_num_strict(f, "per_token_us", &k)) {
                double lx[2] = {x0, x1}, ly[2] = {a + k * x0 / 1000, a + k * x1 / 1000};
                chart_line(&c, s, name, lx, ly, 2, false);
            }
        }
        for (size_t s = 2; s < 4; s++) {
            const json_t *be = json_object_get(json_object_get(bk, "break_even"), SRC[s]);
            double at;
            if (!json_get_num_strict(be, "length_tokens", &at) || at < x0 || at > x1)
                continue;
            char *name = names[s + 2];
            snprintf(name, sizeof names[s + 2], "break-even, %s: %.0f tokens", SRC[s], at);
            double lx[2] = {at, at}, ly[2] = {0, y1};
            chart_line(&c, s + 2, name, lx, ly, 2, false);
        }
        chart_end(&c);
    }
    for (size_t s = 0; s < 4; s++)
        ser_free(&pts[s]);
}

/* The verdict the scenario gives, and its interpretation. */
static void verdict_of(const json_t *s, const char **sig, const char **text)
{
    *sig = NULL;
    *text = NULL;
    const struct scenario *sc = scenario_find(json_get_str(s, "scenario", ""));
    if (!sc)
        return;
    const json_t *ov = json_object_get(s, "overall_summary");
    const json_t *v = NULL;
    if (sc->kvbm_key)
        v = json_object_get(ov, sc->kvbm_key);
    if (!v && sc->signal_key)
        v = json_object_get(json_object_get(s, "kvbm_metrics"), sc->signal_key);
    if (!v && sc->extra_key)
        v = json_object_get(json_object_get(s, sc->extra_key), "verdict");
    if (!v)
        return;
    *sig = json_get_str(v, "signal", NULL);
    *text = json_get_str(v, "interpretation", NULL);
}

static void banner(struct buf *b, const json_t *s)
{
    bool valid = json_get_bool(s, "run_valid", false);
    const char *sig, *text;
    verdict_of(s, &sig, &text);
    bool unknown = sig && (strstr(sig, "unavailable") || strstr(sig, "unknown"));
    buf_printf(b, "<div class=\"banner%s\" id=\"verdict\"><div>Run <strong>%s</strong>",
               !valid    ? " invalid"
               : unknown ? " unknown"
                         : "",
               valid ? "VALID" : "INVALID");
    if (!valid) {
        buf_append_str(b, " — <code>");
        html_escape(b, json_get_str(s, "invalid_reason", "?"));
        buf_append_str(b, "</code>");
    }
    buf_append_str(b, " · scenario <code>");
    html_escape(b, json_get_str(s, "scenario", "?"));
    buf_append_str(b, "</code></div>");
    if (sig) {
        buf_append_str(b, "<div>Verdict: <span class=\"sig\">");
        html_escape(b, sig);
        buf_append_str(b, "</span></div>");
        if (text) {
            buf_append_str(b, "<div>");
            html_escape(b, text);
            buf_append_str(b, "</div>");
        }
    } else {
        buf_append_str(b, "<div>This scenario gives no offload verdict; the charts and tables "
                          "show what happened.</div>");
    }
    size_t i;
    const json_t *w;
    json_array_foreach(json_object_get(s, "warnings"), i, w)
    {
        buf_append_str(b, "<div>Warning <code>");
        html_escape(b, json_get_str(w, "code", "?"));
        buf_append_str(b, "</code>: ");
        html_escape(b, json_get_str(w, "message", ""));
        buf_append_str(b, "</div>");
    }
    buf_append_str(b, "</div>\n");
}

/* Whether the run's data came in whole: no line, copy or point was lost for want of memory. */
static bool run_data_failed(const struct run_data *d)
{
    bool failed = d->oom || d->ttft.failed || d->lat.failed || d->failed.failed || d->rd.failed ||
                  d->wr.failed || d->cache.failed;
    for (size_t i = 0; i < d->n_ph; i++)
        failed |= d->ph[i].ttft.failed || d->ph[i].lat.failed;
    return failed;
}

static void run_data_free(struct run_data *d)
{
    json_decref(d->summary);
    json_decref(d->config);
    for (size_t i = 0; i < d->n_ph; i++) {
        ser_free(&d->ph[i].ttft);
        ser_free(&d->ph[i].lat);
    }
    ser_free(&d->ttft);
    ser_free(&d->lat);
    ser_free(&d->failed);
    ser_free(&d->rd);
    ser_free(&d->wr);
    ser_free(&d->cache);
}

int html_write_run(const char *run_dir, char *err)
{
    struct run_data *d = fault_calloc(1, sizeof *d);
    if (!d)
        return err_set(err, "out of memory");
    snprintf(d->dir, sizeof d->dir, "%s", run_dir);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    d->summary = json_read_file(path, err);
    if (!d->summary) {
        free(d);
        return -1;
    }
    snprintf(path, sizeof path, "%s/config.json", run_dir);
    json_error_t jerr;
    d->config =
        json_load_file(path, JSON_DECODE_ANY, &jerr); /* a run without one still has a page */
    if (!d->config && json_error_code(&jerr) == json_error_out_of_memory)
        d->oom = true;
    if (!d->config && !(d->config = json_object()))
        d->oom = true;
    read_snapshots(d);
    read_requests(d);
    read_telemetry(d);
    if (run_data_failed(d)) {
        run_data_free(d);
        free(d);
        return err_set(err, "%s/report.html: not written: out of memory reading the run", run_dir);
    }

    struct buf b = BUF_INIT;
    char title[200];
    snprintf(title, sizeof title, "kvbench run %s", json_get_str(d->summary, "run_id", "?"));
    page_open(&b, title);
    banner(&b, d->summary);
    buf_append_str(&b, "<section class=\"charts\" id=\"charts\"><h2>Charts</h2>\n");
    chart_time(&b, d);
    chart_cdf(&b, d, false);
    chart_cdf(&b, d, true);
    chart_disk(&b, d);
    chart_kv(&b, d);
    const json_t *mt = json_object_get(d->summary, "multi_turn");
    if (mt)
        chart_multi_turn(&b, mt);
    const json_t *tr = json_object_get(d->summary, "trace");
    if (tr)
        chart_trace(&b, tr);
    const json_t *bk = json_object_get(d->summary, "breakeven");
    if (bk)
        chart_breakeven(&b, bk);
    buf_append_str(&b, "</section>\n<section id=\"report\">\n");
    char *md = report_markdown(d->summary, d->config);
    if (!md)
        page_fail(&b); /* NULL only when out of memory: the page would lack its report */
    /* report.md's own title is the page's */
    const char *body = md ? strchr(md, '\n') : NULL;
    html_from_markdown(&b, body ? body + 1 : "");
    free(md);
    buf_append_str(&b, "</section>\n");
    page_close(&b);
    int rc = write_page(run_dir, &b, err);
    buf_free(&b);
    run_data_free(d);
    free(d);
    return rc;
}

/* ------------------------------------------------------------ a comparison */

/* The mode's name as the comparison labels it. */
static const char *mode_label(const json_t *m)
{
    return json_get_str(m, "label", json_get_str(m, "mode", "?"));
}

/* The decision, the validity of the runs, the warnings and each mode's signal. */
static void compare_banner(struct buf *b, const json_t *cmp)
{
    bool all_valid = json_get_bool(cmp, "all_valid", false);
    const json_t *dec = json_object_get(cmp, "decision");
    buf_printf(b, "<div class=\"banner%s\" id=\"verdict\">",
               all_valid && strcmp(json_get_str(dec, "verdict", ""), "cannot_tell") != 0
                   ? ""
                   : " invalid");
    if (dec) {
        buf_append_str(b, "<div><strong>");
        html_escape(b, json_get_str(dec, "line", ""));
        buf_append_str(b, "</strong></div>");
    }
    buf_printf(b, "<div>%s · scenario <code>",
               all_valid ? "Every run <strong>VALID</strong>"
                         : "<strong>Not every run is valid</strong>");
    html_escape(b, json_get_str(cmp, "scenario", "?"));
    buf_append_str(b, "</code></div>");
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(cmp, "warnings"), i, m)
    {
        buf_append_str(b, "<div>Warning: ");
        html_escape(b, json_get_str(m, "message", ""));
        buf_append_str(b, "</div>");
    }
    json_array_foreach(json_object_get(cmp, "modes"), i, m)
    {
        buf_append_str(b, "<div><code>");
        html_escape(b, mode_label(m));
        buf_append_str(b, "</code>: <span class=\"sig\">");
        html_escape(b, json_get_str(m, "signal", "–"));
        buf_append_str(b, "</span></div>");
    }
    buf_append_str(b, "</div>\n");
}

/* One bar per phase: the mean of a mode's values of the metric, its whisker the t 95 % interval
 * of that mean (none with one run). */
struct bar_row {
    double *val, *lo, *hi;
};

/* The bars of mode `label` for `metric` over the phases; returns the tallest top (0 when none)
 * and sets *any when a bar has a value. */
static double mode_bars(const json_t *phases, const char *metric, const char *label,
                        struct bar_row *r, bool *any)
{
    double ymax = 0;
    size_t q;
    const json_t *ph;
    json_array_foreach(phases, q, ph)
    {
        const json_t *vals = json_object_get(
            json_object_get(
                json_object_get(json_object_get(json_object_get(ph, "metrics"), metric), "modes"),
                label),
            "values");
        size_t n = json_array_size(vals);
        double sum = 0, sq = 0;
        for (size_t k = 0; k < n; k++)
            sum += json_number_value(json_array_get(vals, k));
        double mean = n ? sum / (double)n : NAN;
        for (size_t k = 0; k < n; k++) {
            double d = json_number_value(json_array_get(vals, k)) - mean;
            sq += d * d;
        }
        double half =
            n >= 2 ? stats_t975((double)(n - 1)) * sqrt(sq / (double)(n - 1) / (double)n) : NAN;
        r->val[q] = mean;
        r->lo[q] = mean - half > 0 ? mean - half : 0; /* no negative times or rates */
        r->hi[q] = mean + half;
        if (isfinite(mean)) {
            *any = true;
            double top = isfinite(r->hi[q]) ? r->hi[q] : mean;
            ymax = top > ymax ? top : ymax;
        }
    }
    return ymax;
}

/* Phase by phase: one chart per metric, the phases as groups and the modes as the legend. */
static void compare_mode_charts(struct buf *b, const json_t *cmp)
{
    static const struct {
        const char *metric, *title, *unit;
    } M[] = {
        {"ttft_p50_ms", "TTFT p50 per phase, by mode", "ms"},
        {"ttft_p95_ms", "TTFT p95 per phase, by mode", "ms"},
        {"latency_p50_ms", "Latency p50 per phase, by mode", "ms"},
        {"req_per_s", "Throughput per phase, by mode", "requests/s"},
    };
    const json_t *modes = json_object_get(cmp, "modes"), *phases = json_object_get(cmp, "phases");
    size_t nm = json_array_size(modes), np = json_array_size(phases), i;
    if (!np)
        return;
    const char **cats = fault_calloc(np, sizeof *cats);
    struct bar_row r = {fault_calloc(np, sizeof(double)), fault_calloc(np, sizeof(double)),
                        fault_calloc(np, sizeof(double))};
    if (!cats || !r.val || !r.lo || !r.hi) {
        page_fail(b);
        goto out;
    }
    const json_t *ph, *m;
    json_array_foreach(phases, i, ph) cats[i] = json_get_str(ph, "phase", "?");
    for (size_t k = 0; k < sizeof M / sizeof M[0]; k++) {
        double ymax = 0;
        bool any = false;
        json_array_foreach(modes, i, m)
        {
            double top = mode_bars(phases, M[k].metric, mode_label(m), &r, &any);
            ymax = top > ymax ? top : ymax;
        }
        if (!any)
            continue;
        char id[64];
        snprintf(id, sizeof id, "chart-mode-%s", M[k].metric);
        struct chart c;
        chart_begin_bars(&c, b, id, M[k].title, M[k].unit, cats, np, ymax);
        json_array_foreach(modes, i, m)
        {
            mode_bars(phases, M[k].metric, mode_label(m), &r, &any);
            chart_bars(&c, i, nm, mode_label(m), r.val, r.lo, r.hi, np);
        }
        chart_end(&c);
    }
out:
    free(cats);
    free(r.val);
    free(r.lo);
    free(r.hi);
}

/* The runs' summaries, one per mode (NULL where one cannot be read), and the names of their
 * phases in order of first appearance. Returns 0, or -1 when out of memory. */
static int read_mode_summaries(const json_t *modes, const char *root, json_t **sums,
                               json_t *phase_names)
{
    size_t i;
    const json_t *m;
    json_array_foreach(modes, i, m)
    {
        char p[PATH_MAX * 2];
        snprintf(p, sizeof p, "%s/%s/summary.json", root, json_get_str(m, "run_id", ""));
        json_error_t jerr;
        sums[i] = json_load_file(p, JSON_DECODE_ANY, &jerr); /* a run may be missing */
        if (!sums[i] && json_error_code(&jerr) == json_error_out_of_memory)
            return -1;
        size_t j;
        const json_t *ps;
        json_array_foreach(json_object_get(sums[i], "phase_summaries"), j, ps)
        {
            const char *name = json_get_str(ps, "phase", "?");
            bool seen = false;
            size_t q;
            const json_t *pn;
            json_array_foreach(phase_names, q, pn) seen |= strcmp(json_string_value(pn), name) == 0;
            if (!seen && json_array_append_new(phase_names, json_string(name)) < 0)
                return -1;
        }
    }
    return 0;
}

/* The blocks a mode's run read back from disk in each phase (NAN where its counters did not
 * say); returns whether any phase had a value, and the largest in *ymax. */
static bool mode_readback(const json_t *sum, const char *const *pc, size_t np, double *ob,
                          double *ymax)
{
    bool any = false;
    for (size_t q = 0; q < np; q++) {
        ob[q] = NAN;
        size_t j;
        const json_t *ps;
        json_array_foreach(json_object_get(sum, "phase_summaries"), j, ps)
        {
            const json_t *dl = json_object_get(ps, "kvbm_metrics_delta");
            double x;
            if (strcmp(json_get_str(ps, "phase", ""), pc[q]) == 0 &&
                json_get_bool(dl, "available", false) &&
                json_get_num_strict(dl, KVBM_ONBOARD_D2D "_delta", &x))
                ob[q] = x;
        }
        if (isfinite(ob[q])) {
            any = true;
            *ymax = ob[q] > *ymax ? ob[q] : *ymax;
        }
    }
    return any;
}

/* The disk read-back, phase by phase, in each mode (from the runs' own summaries). */
static void compare_readback_chart(struct buf *b, const json_t *modes, json_t *const *sums,
                                   const json_t *phase_names)
{
    size_t np = json_array_size(phase_names), nm = json_array_size(modes), i;
    if (!np)
        return;
    const char **pc = fault_calloc(np, sizeof *pc);
    double *ob = fault_calloc(np, sizeof *ob);
    if (!pc || !ob) {
        page_fail(b);
        goto out;
    }
    for (size_t q = 0; q < np; q++)
        pc[q] = json_string_value(json_array_get(phase_names, q));
    double ymax = 0;
    bool any = false;
    const json_t *m;
    json_array_foreach(modes, i, m) any |= mode_readback(sums[i], pc, np, ob, &ymax);
    if (!any) {
        note(b, "No mode's engine counters said how many blocks came back from disk.");
        goto out;
    }
    struct chart c;
    chart_begin_bars(&c, b, "chart-mode-readback", "Blocks read back from disk per phase, by mode",
                     "blocks", pc, np, ymax);
    json_array_foreach(modes, i, m)
    {
        double unused = 0;
        mode_readback(sums[i], pc, np, ob, &unused);
        chart_bars(&c, i, nm, mode_label(m), ob, NULL, NULL, np);
    }
    chart_end(&c);
out:
    free(pc);
    free(ob);
}

/* Links to every run of every mode (with repeats: each one). */
static void compare_runs(struct buf *b, const json_t *modes)
{
    buf_append_str(b, "<h2>Runs</h2>\n<ul>\n");
    size_t i;
    const json_t *m;
    json_array_foreach(modes, i, m)
    {
        buf_append_str(b, "<li><code>");
        html_escape(b, mode_label(m));
        buf_append_str(b, "</code>:");
        const json_t *runs = json_object_get(m, "runs");
        size_t nr = json_is_array(runs) ? json_array_size(runs) : 1;
        for (size_t j = 0; j < nr; j++) {
            const json_t *r = json_is_array(runs) ? json_array_get(runs, j) : m;
            const char *id = json_get_str(r, "run_id", "");
            buf_append_str(b, " <a href=\"../");
            html_escape(b, id);
            buf_append_str(b, "/report.html\">");
            html_escape(b, id);
            buf_append_str(b, "</a>");
        }
        buf_append_str(b, "</li>\n");
    }
    buf_append_str(b, "</ul>\n");
}

/* The page of a comparison read from cmp, its runs under root. */
static void compare_page(struct buf *b, const json_t *cmp, const char *root)
{
    const json_t *modes = json_object_get(cmp, "modes");
    size_t nm = json_array_size(modes);
    char title[200];
    snprintf(title, sizeof title, "kvbench compare %s", json_get_str(cmp, "compare_id", "?"));
    page_open(b, title);
    compare_banner(b, cmp);
    buf_append_str(b, "<section class=\"charts\" id=\"charts\"><h2>Charts</h2>\n");
    compare_mode_charts(b, cmp);
    json_t *phase_names = json_array();
    json_t **sums = fault_calloc(nm ? nm : 1, sizeof *sums);
    if (!phase_names || !sums || read_mode_summaries(modes, root, sums, phase_names) < 0)
        page_fail(b);
    else
        compare_readback_chart(b, modes, sums, phase_names);
    for (size_t k = 0; sums && k < nm; k++)
        json_decref(sums[k]);
    free(sums);
    json_decref(phase_names);
    buf_append_str(b, "</section>\n<section id=\"report\">\n");
    compare_runs(b, modes);
    char *md = compare_markdown(cmp);
    if (!md)
        page_fail(b); /* NULL only when out of memory: the page would lack the comparison */
    const char *body = md ? strchr(md, '\n') : NULL;
    html_from_markdown(b, body ? body + 1 : "");
    free(md);
    buf_append_str(b, "</section>\n");
    page_close(b);
}

int html_write_compare(const char *dir, char *err)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/comparison.json", dir);
    json_t *cmp = json_read_file(path, err);
    if (!cmp)
        return -1;
    /* the runs sit beside the comparison's directory */
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s", dir);
    char *slash = strrchr(root, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(root, sizeof root, ".");
    struct buf b = BUF_INIT;
    compare_page(&b, cmp, root);
    int rc = write_page(dir, &b, err);
    buf_free(&b);
    json_decref(cmp);
    return rc;
}
