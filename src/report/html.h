/*
 * html.h - report.html: one self-contained page per run directory or comparison directory (no
 * network, no external script or font; inline SVG drawn by kvbench, <title> hover details;
 * printable). A run's page: the verdict banner and validity, charts (TTFT and latency of every
 * request against time with phase bands; latency and TTFT CDFs per phase; disk MB/s and
 * cache-directory size against time; KV counters and reused tokens per phase; multi_turn's rounds;
 * a trace's windows), then the facts of report.md. A comparison's: the modes side by side (with
 * confidence intervals over repeats), the disk read-back per phase in each mode, and
 * comparison.md. Charts of runs with more than HTML_POINTS_MAX requests draw every k-th request;
 * the tables keep the exact figures.
 */
#ifndef KVBENCH_REPORT_HTML_H
#define KVBENCH_REPORT_HTML_H

#include "util/buf.h"

#define HTML_POINTS_MAX 20000

/* Write <run_dir>/report.html from the run's files. Returns 0, or -1 with err: an input that
 * cannot be read for want of memory, or a page that could not be built whole (any allocation
 * failed) or written. A failed page is never written: what is at the path is a whole page or the
 * one that was there before. */
BUF_MUST_CHECK int html_write_run(const char *run_dir, char *err);
/* Write <dir>/report.html for a comparison (comparison.json and its runs under results_root:
 * the directory's parent). Returns 0, or -1 with err. */
BUF_MUST_CHECK int html_write_compare(const char *dir, char *err);
/* Markdown as report.md and comparison.md write it, to HTML (headings, lists, tables,
 * paragraphs, `code`, **bold**, fenced blocks). Appended to out; a failure is out's sticky
 * error (check buf_failed). */
void html_from_markdown(struct buf *out, const char *md);

#endif
