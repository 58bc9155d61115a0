#!/usr/bin/env bash
# One Llama 3 templated completion (runbook step 6); prints the text, non-zero when empty.
#   BENCH_BASE_URL, BENCH_SMOKE_MESSAGE
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" "$@"
msg=${BENCH_SMOKE_MESSAGE:-What can you tell me about the band Sleep Token?}
run "$KVBENCH" smoke --base-url "$BENCH_BASE_URL" --message "$msg" --max-tokens 256 \
  --temperature 0.7 --stop "<|eot_id|>"
