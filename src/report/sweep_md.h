/*
 * sweep_md.h - what a reader reads of a sweep (`kvbench sweep`, docs/SWEEP.md): sweep.md (the
 * verdict line, capacities and ratios, the curve per mode) and its two charts, attainment and
 * TTFT p90 against the offered load per mode, as standalone SVG files drawn by report/svg.c.
 */
#ifndef KVBENCH_REPORT_SWEEP_MD_H
#define KVBENCH_REPORT_SWEEP_MD_H

#include "util/buf.h"

#include <jansson.h>

/* sweep.md's text from sweep.json's content. New string (free), or NULL when out of memory. */
char *sweep_markdown(const json_t *sweep);

/* Write sweep.md, sweep_attainment.svg and sweep_ttft.svg into dir. Returns 0, or -1 with err
 * (the first file that could not be written; nothing is written short). */
BUF_MUST_CHECK int sweep_report_write(const char *dir, const json_t *sweep, char *err);

#endif
