/*
 * svg.c - the charts of report.html (see svg.h).
 */
#include "report/svg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define W_TOTAL  720.0
#define ML       64.0
#define MR       16.0
#define MT       22.0
#define PLOT_H   220.0
#define MB       40.0
#define LEGEND_H 22.0

/* Colours of different lightness (they stay apart in greyscale), with dash patterns and marker
 * shapes that tell the series apart without colour at all. */
static const char *const COLOUR[SVG_SERIES_MAX] = {"#1f3b73", "#e08214", "#4d9221", "#7b3294",
                                                   "#8c8c8c", "#000000", "#b2182b", "#2166ac"};
static const char *const DASH[SVG_SERIES_MAX] = {"",    "6 3",      "2 2", "8 3 2 3",
                                                 "1 3", "10 2 2 2", "4 4", "12 3"};

void html_escape(struct buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            buf_append_str(b, "&amp;");
            break;
        case '<':
            buf_append_str(b, "&lt;");
            break;
        case '>':
            buf_append_str(b, "&gt;");
            break;
        case '"':
            buf_append_str(b, "&quot;");
            break;
        case '\'':
            buf_append_str(b, "&#39;");
            break;
        default:
            buf_append_char(b, *s);
        }
    }
}

double svg_nice_step(double range, int n)
{
    if (!(range > 0) || !isfinite(range))
        return 1;
    double raw = range / n, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nice * mag;
}

static double X(const struct chart *c, double x)
{
    double span = c->x1 - c->x0;
    return c->ml + (span > 0 ? (x - c->x0) / span : 0.5) * c->w;
}

static double Y(const struct chart *c, double y)
{
    double span = c->y1 - c->y0;
    return c->mt + c->h - (span > 0 ? (y - c->y0) / span : 0) * c->h;
}

static void tick_label(struct buf *b, double v)
{
    if (fabs(v) >= 1e6)
        buf_printf(b, "%.3gM", v / 1e6);
    else if (fabs(v) >= 1e4)
        buf_printf(b, "%.3gk", v / 1e3);
    else
        buf_printf(b, "%.4g", fabs(v) < 1e-12 ? 0.0 : v);
}

static void open_figure(struct chart *c, struct buf *b, const char *id, const char *title)
{
    memset(c, 0, sizeof *c);
    c->b = b;
    c->ml = ML;
    c->mt = MT;
    c->w = W_TOTAL - ML - MR;
    c->h = PLOT_H;
    buf_append_str(b, "<figure class=\"chart\" id=\"");
    html_escape(b, id);
    buf_append_str(b, "\"><figcaption>");
    html_escape(b, title);
    buf_printf(b,
               "</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" "
               "width=\"%.0f\" height=\"%.0f\" role=\"img\" aria-label=\"",
               W_TOTAL, MT + PLOT_H + MB + LEGEND_H, W_TOTAL, MT + PLOT_H + MB + LEGEND_H);
    html_escape(b, title);
    buf_append_str(b, "\">\n");
}

static void axes(struct chart *c, const char *xlabel, const char *ylabel)
{
    struct buf *b = c->b;
    double step = svg_nice_step(c->y1 - c->y0, 5);
    buf_append_str(b, "<g class=\"axis y\" font-size=\"10\" fill=\"#333\">");
    for (double v = ceil(c->y0 / step) * step; v <= c->y1 + step * 1e-9; v += step) {
        double y = Y(c, v);
        buf_printf(b,
                   "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
                   c->ml, c->ml + c->w, y, y, c->ml - 4, y + 3);
        tick_label(b, v);
        buf_append_str(b, "</text>");
    }
    buf_printf(b,
               "<text transform=\"translate(12 %.1f) rotate(-90)\" text-anchor=\"middle\" "
               "font-size=\"11\">",
               c->mt + c->h / 2);
    html_escape(b, ylabel);
    buf_append_str(b, "</text></g>\n<g class=\"axis x\" font-size=\"10\" fill=\"#333\">");
    if (!c->categorical) {
        double xs = svg_nice_step(c->x1 - c->x0, 8);
        for (double v = ceil(c->x0 / xs) * xs; v <= c->x1 + xs * 1e-9; v += xs) {
            double x = X(c, v);
            buf_printf(b,
                       "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                       x, x, c->mt + c->h, c->mt + c->h + 4, x, c->mt + c->h + 15);
            tick_label(b, v);
            buf_append_str(b, "</text>");
        }
    }
    buf_printf(b,
               "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>"
               "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>",
               c->ml, c->ml + c->w, c->mt + c->h, c->mt + c->h, c->ml, c->ml, c->mt, c->mt + c->h);
    if (xlabel) {
        buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">",
                   c->ml + c->w / 2, c->mt + c->h + 32);
        html_escape(b, xlabel);
        buf_append_str(b, "</text>");
    }
    buf_append_str(b, "</g>\n");
}

void chart_begin(struct chart *c, struct buf *b, const char *id, const char *title,
                 const char *xlabel, const char *ylabel, double x0, double x1, double y0, double y1)
{
    open_figure(c, b, id, title);
    if (!(x1 > x0)) {
        x0 -= 0.5;
        x1 = x0 + 1;
    }
    if (!(y0 < 0))
        y0 = 0;
    if (!(y1 > y0))
        y1 = y0 + 1;
    double ys = svg_nice_step(y1 - y0, 5);
    c->x0 = x0;
    c->x1 = x1;
    c->y0 = floor(y0 / ys) * ys;
    c->y1 = ceil(y1 / ys) * ys;
    axes(c, xlabel, ylabel);
}

void chart_begin_bars(struct chart *c, struct buf *b, const char *id, const char *title,
                      const char *ylabel, const char *const *categories, size_t n, double ymax)
{
    open_figure(c, b, id, title);
    c->categorical = true;
    c->x0 = 0;
    c->x1 = n ? (double)n : 1;
    double ys = svg_nice_step(ymax > 0 ? ymax : 1, 5);
    c->y0 = 0;
    c->y1 = ymax > 0 ? ceil(ymax / ys) * ys : 1;
    axes(c, NULL, ylabel);
    buf_append_str(b, "<g class=\"categories\" font-size=\"10\" fill=\"#333\">");
    for (size_t i = 0; i < n; i++) {
        buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", X(c, (double)i + 0.5),
                   c->mt + c->h + 14);
        html_escape(b, categories[i]);
        buf_append_str(b, "</text>");
    }
    buf_append_str(b, "</g>\n");
}

void chart_band(struct chart *c, double x0, double x1, const char *label, size_t k)
{
    if (x1 < c->x0 || x0 > c->x1)
        return;
    double a = X(c, x0 < c->x0 ? c->x0 : x0), z = X(c, x1 > c->x1 ? c->x1 : x1);
    buf_printf(c->b,
               "<g class=\"band\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
               "fill=\"#000\" fill-opacity=\"%s\"/><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" "
               "y2=\"%.1f\" stroke=\"#888\" stroke-dasharray=\"2 2\"/><text x=\"%.1f\" "
               "y=\"%.1f\" font-size=\"9\" fill=\"#444\">",
               a, c->mt, z - a > 0 ? z - a : 0, c->h, k % 2 ? "0.09" : "0.04", a, a, c->mt,
               c->mt + c->h, a + 2, c->mt - 4 + (double)(k % 2) * 0);
    html_escape(c->b, label);
    buf_append_str(c->b, "</text><title>phase ");
    html_escape(c->b, label);
    buf_printf(c->b, ": %.2f to %.2f</title></g>\n", x0, x1);
}

static void name_series(struct chart *c, size_t s, const char *name)
{
    while (c->n_names <= s && c->n_names < SVG_SERIES_MAX)
        c->names[c->n_names++] = NULL;
    if (s < SVG_SERIES_MAX)
        c->names[s] = name;
}

static void marker(struct buf *b, size_t s, double x, double y, bool mark)
{
    const char *col = COLOUR[s % SVG_SERIES_MAX];
    const char *cls = mark ? " class=\"mark\"" : "";
    switch (s % 5) {
    case 0:
        buf_printf(b, "<circle%s cx=\"%.1f\" cy=\"%.1f\" r=\"2.4\" fill=\"%s\">", cls, x, y, col);
        break;
    case 1:
        buf_printf(b,
                   "<rect%s x=\"%.1f\" y=\"%.1f\" width=\"4.6\" height=\"4.6\" "
                   "fill=\"none\" stroke=\"%s\" stroke-width=\"1.2\">",
                   cls, x - 2.3, y - 2.3, col);
        break;
    case 2:
        buf_printf(b,
                   "<path%s d=\"M%.1f %.1fl3 5h-6z\" fill=\"none\" stroke=\"%s\" "
                   "stroke-width=\"1.2\">",
                   cls, x, y - 3, col);
        break;
    case 3:
        buf_printf(b, "<path%s d=\"M%.1f %.1fl3 3l-3 3l-3 -3z\" fill=\"%s\">", cls, x, y - 3, col);
        break;
    default:
        buf_printf(b,
                   "<path%s d=\"M%.1f %.1fl5 5m0 -5l-5 5\" stroke=\"%s\" "
                   "stroke-width=\"1.2\">",
                   cls, x - 2.5, y - 2.5, col);
    }
}

static const char *const CLOSE[5] = {"</circle>", "</rect>", "</path>", "</path>", "</path>"};

void chart_points(struct chart *c, size_t s, const char *name, const double *x, const double *y,
                  size_t n)
{
    name_series(c, s, name);
    buf_printf(c->b, "<g class=\"series\" data-series=\"%zu\">", s);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]))
            continue;
        marker(c->b, s, X(c, x[i]), Y(c, y[i] > c->y1 ? c->y1 : y[i]), true);
        buf_append_str(c->b, "<title>");
        html_escape(c->b, name);
        buf_printf(c->b, ": %.4g at %.4g</title>%s", y[i], x[i], CLOSE[s % 5]);
    }
    buf_append_str(c->b, "</g>\n");
}

void chart_line(struct chart *c, size_t s, const char *name, const double *x, const double *y,
                size_t n, bool step)
{
    name_series(c, s, name);
    struct buf *b = c->b;
    buf_printf(b,
               "<path class=\"mark line\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" "
               "stroke-dasharray=\"%s\" d=\"",
               COLOUR[s % SVG_SERIES_MAX], DASH[s % SVG_SERIES_MAX]);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]))
            continue;
        double px = X(c, x[i]), py = Y(c, y[i]);
        if (first)
            buf_printf(b, "M%.1f %.1f", px, py);
        else if (step)
            buf_printf(b, "H%.1fV%.1f", px, py);
        else
            buf_printf(b, "L%.1f %.1f", px, py);
        first = false;
    }
    buf_append_str(b, "\"><title>");
    html_escape(b, name);
    buf_append_str(b, "</title></path>\n");
}

void chart_bars(struct chart *c, size_t s, size_t n_series, const char *name, const double *v,
                const double *lo, const double *hi, size_t n)
{
    name_series(c, s, name);
    struct buf *b = c->b;
    double cw = c->w / (c->x1 - c->x0), gw = cw * 0.8, bw = gw / (double)(n_series ? n_series : 1);
    buf_printf(b, "<g class=\"series\" data-series=\"%zu\">", s);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        double x = c->ml + cw * (double)i + (cw - gw) / 2 + bw * (double)s;
        double top = Y(c, v[i] > c->y1 ? c->y1 : v[i]), base = Y(c, 0);
        double hgt = base - top;
        buf_printf(b,
                   "<rect class=\"mark bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                   "height=\"%.1f\" fill=\"%s\" fill-opacity=\"%s\" stroke=\"%s\" "
                   "stroke-width=\"0.8\"><title>",
                   x + 1, hgt > 0.5 ? top : base - 0.5, bw > 3 ? bw - 2 : bw, hgt > 0.5 ? hgt : 0.5,
                   COLOUR[s % SVG_SERIES_MAX], s % 2 ? "0.45" : "0.9", COLOUR[s % SVG_SERIES_MAX]);
        html_escape(b, name);
        buf_printf(b, ": %.4g", v[i]);
        if (lo && hi && isfinite(lo[i]) && isfinite(hi[i]))
            buf_printf(b, " (95%% CI %.4g to %.4g)", lo[i], hi[i]);
        buf_append_str(b, "</title></rect>");
        if (lo && hi && isfinite(lo[i]) && isfinite(hi[i])) {
            double cx = x + bw / 2, yl = Y(c, lo[i]), yh = Y(c, hi[i] > c->y1 ? c->y1 : hi[i]);
            buf_printf(b,
                       "<path class=\"ci\" d=\"M%.1f %.1fV%.1fM%.1f %.1fh6M%.1f %.1fh6\" "
                       "stroke=\"#000\" stroke-width=\"1.2\"/>",
                       cx, yl, yh, cx - 3, yl, cx - 3, yh);
        }
    }
    buf_append_str(b, "</g>\n");
}

void chart_end(struct chart *c)
{
    struct buf *b = c->b;
    double x = c->ml, y = c->mt + c->h + MB + 8;
    buf_append_str(b, "<g class=\"legend\" font-size=\"11\">");
    for (size_t s = 0; s < c->n_names; s++) {
        if (!c->names[s])
            continue;
        if (c->categorical)
            buf_printf(b,
                       "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"9\" fill=\"%s\" "
                       "fill-opacity=\"%s\" stroke=\"%s\"/>",
                       x, y - 8, COLOUR[s % SVG_SERIES_MAX], s % 2 ? "0.45" : "0.9",
                       COLOUR[s % SVG_SERIES_MAX]);
        else
            buf_printf(b,
                       "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                       "stroke-width=\"1.6\" stroke-dasharray=\"%s\"/>",
                       x, x + 18, y - 4, y - 4, COLOUR[s % SVG_SERIES_MAX],
                       DASH[s % SVG_SERIES_MAX]);
        if (!c->categorical) {
            marker(b, s, x + 9, y - 4, false);
            buf_printf(b, "%s", CLOSE[s % 5]);
        }
        buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 22, y);
        html_escape(b, c->names[s]);
        buf_append_str(b, "</text>");
        x += 30 + 6.5 * (double)strlen(c->names[s]);
    }
    buf_append_str(b, "</g>\n</svg></figure>\n");
}
