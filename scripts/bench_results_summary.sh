#!/usr/bin/env bash
# One table over the runs: scripts/bench_results_summary.sh "bench/results/*/summary.json"
#   arguments: paths, run directories or quoted globs (default: $BENCH_RESULTS_ROOT/*/summary.json)
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" "$@"
if [[ ${#ARGS[@]} -eq 0 ]]; then
  ARGS=("$BENCH_RESULTS_ROOT/*/summary.json")
fi
run "$KVBENCH" summary "${ARGS[@]}"
