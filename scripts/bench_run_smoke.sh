#!/usr/bin/env bash
# A short benchmark run to check the whole path (requests, metrics, artifacts) before the matrix.
#   BENCH_BASE_URL, BENCH_KV_MODE, BENCH_KVBM_METRICS_URL, DYN_KVBM_DISK_CACHE_DIR,
#   BENCH_RESULTS_ROOT, BENCH_SMOKE_REQUESTS (8), BENCH_ALLOW_MISSING_KVBM_METRICS (0/1)
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" "$@"
extra=()
[[ ${BENCH_ALLOW_MISSING_KVBM_METRICS:-0} == 1 ]] && extra+=(--allow-missing-kvbm-metrics)
run "$KVBENCH" run --base-url "$BENCH_BASE_URL" --kv-mode "$BENCH_KV_MODE" \
  --scenario standard --prompt-set short --requests "${BENCH_SMOKE_REQUESTS:-8}" --warmup 2 \
  --concurrency 1 --max-tokens 64 --temperature 0.7 --stop "<|eot_id|>" --stream \
  --kvbm-metrics-url "$BENCH_KVBM_METRICS_URL" --kvbm-cache-dir "$DYN_KVBM_DISK_CACHE_DIR" \
  --results-root "$BENCH_RESULTS_ROOT" --run-id "smoke_$(utc_stamp)" "${extra[@]+"${extra[@]}"}"
