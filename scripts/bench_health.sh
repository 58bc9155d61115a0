#!/usr/bin/env bash
# Print /health and /v1/models; non-zero when the server is not healthy.
#   BENCH_BASE_URL
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" "$@"
run "$KVBENCH" health --base-url "$BENCH_BASE_URL"
