#!/usr/bin/env bash
# Wait until the server is ready (models listed on consecutive polls).
#   BENCH_BASE_URL, BENCH_READY_TIMEOUT_S (300), BENCH_READY_INTERVAL_S (5),
#   BENCH_READY_CONSECUTIVE (2), BENCH_READY_REQUIRE_ENDPOINTS (0/1)
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" "$@"
extra=()
[[ ${BENCH_READY_REQUIRE_ENDPOINTS:-0} == 1 ]] && extra+=(--require-endpoints)
run "$KVBENCH" ready --base-url "$BENCH_BASE_URL" --timeout-s "${BENCH_READY_TIMEOUT_S:-300}" \
  --interval-s "${BENCH_READY_INTERVAL_S:-5}" --consecutive "${BENCH_READY_CONSECUTIVE:-2}" \
  "${extra[@]+"${extra[@]}"}"
