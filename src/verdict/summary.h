/*
 * summary.h - summary.json (SPEC §5.3) from the run's record (struct run_state), and the artifact
 * objects that config.json shares with it, each written by one function here.
 */
#ifndef KVBENCH_VERDICT_SUMMARY_H
#define KVBENCH_VERDICT_SUMMARY_H

#include "analysis/signals.h"
#include "scenario/runstate.h"

#include <jansson.h>

json_t *summary_phase_json(const struct run_state *rs, const struct phase_state *ps);
json_t *summary_build(const struct run_state *rs, const struct validity *v, json_t *notes);
/* {mode, kvbm_enabled, cpu_cache_gb, disk_cache_gb, diagnostic: {…}} */
/* The kv_mode object: the recorded mode and tier sizes, or, on an engine where kvbench's KV modes
 * are not settable (rs given and its engine known), {applies: false, not_applicable: why}. */
json_t *summary_kv_mode_json(const struct scen_config *c, const struct run_state *rs);
/* {name, resolved_by} or {name: null, unavailable: why} */
json_t *summary_block_device_json(const struct run_state *rs);

#endif
