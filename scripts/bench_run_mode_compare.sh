#!/usr/bin/env bash
# Runbook step 9b: the same workload per KV mode, restarting the worker between modes.
#   BENCH_KV_MODE_LIST ("cpu_only cpu_disk"), BENCH_COMPARE_SKIP_READY (0/1),
#   BENCH_COMPARE_READY_REQUIRE_ENDPOINTS (0/1), BENCH_COMPARE_MODEL_RESOLVE_TIMEOUT_S (180),
#   BENCH_COMPARE_RESTART_CMD (default: scripts/bench_start_worker.sh --restart with
#   BENCH_KV_MODE={mode}), BENCH_COMPARE_SCENARIO (eviction_replay), BENCH_COMPARE_EXTRA_ARGS,
#   BENCH_BASE_URL, BENCH_KVBM_METRICS_URL, DYN_KVBM_DISK_CACHE_DIR, BENCH_RESULTS_ROOT
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" "$@"
default_restart="BENCH_KV_MODE={mode} $REPO_ROOT/scripts/bench_start_worker.sh --restart"
restart=${BENCH_COMPARE_RESTART_CMD:-$default_restart}
extra=()
[[ ${BENCH_COMPARE_SKIP_READY:-0} == 1 ]] && extra+=(--skip-ready)
[[ ${BENCH_COMPARE_READY_REQUIRE_ENDPOINTS:-0} == 1 ]] && extra+=(--require-endpoints)
read -r -a more <<<"${BENCH_COMPARE_EXTRA_ARGS:-}"
scenario=${BENCH_COMPARE_SCENARIO:-eviction_replay}
run "$KVBENCH" compare --modes "${BENCH_KV_MODE_LIST:-cpu_only cpu_disk}" \
  --restart-cmd "$restart" --base-url "$BENCH_BASE_URL" --scenario "$scenario" \
  --model-resolve-timeout-s "${BENCH_COMPARE_MODEL_RESOLVE_TIMEOUT_S:-180}" \
  --kvbm-metrics-url "$BENCH_KVBM_METRICS_URL" --kvbm-cache-dir "$DYN_KVBM_DISK_CACHE_DIR" \
  --results-root "$BENCH_RESULTS_ROOT" --long-range 6000:7600 --max-tokens 256 \
  --stop "<|eot_id|>" "${extra[@]+"${extra[@]}"}" "${more[@]+"${more[@]}"}"
