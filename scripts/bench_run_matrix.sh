#!/usr/bin/env bash
# Runbook steps 7-9: short and long sweeps over BENCH_CONCURRENCIES and one eviction/replay run.
#   BENCH_BASE_URL, BENCH_KV_MODE, BENCH_CONCURRENCIES ("1 4 8"), BENCH_CONTAINER_NAME,
#   DYN_KVBM_DISK_CACHE_DIR, BENCH_KVBM_METRICS_URL, BENCH_RESULTS_ROOT, BENCH_MATRIX_EXTRA_ARGS
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" "$@"
read -r -a extra <<<"${BENCH_MATRIX_EXTRA_ARGS:-}"
run "$KVBENCH" matrix --base-url "$BENCH_BASE_URL" --kv-mode "$BENCH_KV_MODE" \
  --concurrencies "${BENCH_CONCURRENCIES:-1 4 8}" --max-tokens 256 --temperature 0.7 \
  --stop "<|eot_id|>" --collect-telemetry --container-name "$BENCH_CONTAINER_NAME" \
  --kvbm-cache-dir "$DYN_KVBM_DISK_CACHE_DIR" --kvbm-metrics-url "$BENCH_KVBM_METRICS_URL" \
  --results-root "$BENCH_RESULTS_ROOT" "${extra[@]+"${extra[@]}"}"
