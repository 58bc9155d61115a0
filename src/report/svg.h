/*
 * svg.h - the charts of report.html, drawn as inline SVG by kvbench (no script, no font, no
 * network): axes with ticks at 1-2-5 steps and their units, a legend, phase bands, and series
 * told apart by marker shape and dash pattern as well as colour, so that they survive greyscale
 * printing. Every mark carries a <title>: the browser shows it on hover.
 *
 * Everything here appends to the chart's struct buf and returns nothing: a failure is the
 * buffer's sticky error, checked once by whoever writes the page (html.c, through fs_write_buf).
 */
#ifndef KVBENCH_REPORT_SVG_H
#define KVBENCH_REPORT_SVG_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>

#define SVG_SERIES_MAX 8

struct chart {
    struct buf *b;
    double x0, x1, y0, y1; /* data ranges */
    double w, h;           /* plot area */
    double ml, mt;         /* its offset in the svg */
    const char *names[SVG_SERIES_MAX];
    size_t n_names;
    bool categorical; /* bars: x is the category index */
};

/* Append s to b, escaped for HTML text and attribute values. */
void html_escape(struct buf *b, const char *s);

/* Begin a chart figure: id, title, the caption under it, axis labels with units, and the data
 * ranges (widened to nice ticks; y starts at 0 unless y0 < 0). */
void chart_begin(struct chart *c, struct buf *b, const char *id, const char *title,
                 const char *xlabel, const char *ylabel, double x0, double x1, double y0,
                 double y1);
/* A categorical chart: n categories along x (grouped bars). */
void chart_begin_bars(struct chart *c, struct buf *b, const char *id, const char *title,
                      const char *ylabel, const char *const *categories, size_t n, double ymax);
/* A shaded band over [x0, x1) labelled at the top (a phase); k alternates the shade. */
void chart_band(struct chart *c, double x0, double x1, const char *label, size_t k);
/* Points of series s (marker by s), each with its hover text (NULL: the values). */
void chart_points(struct chart *c, size_t s, const char *name, const double *x, const double *y,
                  size_t n);
/* A line of series s (dash pattern by s); step draws it as a staircase (a CDF). */
void chart_line(struct chart *c, size_t s, const char *name, const double *x, const double *y,
                size_t n, bool step);
/* Bars of series s of n_series in each category (value NAN: no bar), with optional error
 * whiskers lo..hi (NULL: none). */
void chart_bars(struct chart *c, size_t s, size_t n_series, const char *name, const double *v,
                const double *lo, const double *hi, size_t n);
/* The legend and the closing tags. */
void chart_end(struct chart *c);

/* A nice step for a range split in about n parts (1, 2 or 5 x 10^k). */
double svg_nice_step(double range, int n);

#endif
