#!/usr/bin/env bash
# Memory against the number of requests: kvbench's peak RSS for the same streamed workload at
# 64 streams with 20,000 and then 10x as many requests against `kvbench serve`. Prompts come from a
# ring, per-request results are not kept past LOADGEN_KEEP_RESULTS and measured values spill to
# the run's directory, so the two peaks should be about equal (target: ratio <= 1.25). Prints
# figures; never fails on them.
#   bench/rss_vs_requests.sh [KVBENCH] [REQUESTS]
set -euo pipefail
KVBENCH=${1:-build/kvbench}
SMALL=${2:-20000}
# shellcheck source=bench/lib/serve.sh
source "$(dirname "$0")/lib/serve.sh"
start_serve --speedup 0 --max-num-seqs 64

peak() { # requests -> KiB
  /usr/bin/time -f '%M %e' -o "$TMP/rss.txt" "$KVBENCH" run --base-url "$BASE" --kv-mode off \
    --allow-missing-kvbm-metrics --warmup 0 --concurrency 64 --requests "$1" --stream \
    --max-tokens 16 --short-range 64:64 --prompt-salt none --results-root "$TMP/results" \
    --run-id "r$1" --no-progress --log-level WARNING >/dev/null 2>"$TMP/r$1.err" || true
  read -r kib secs <"$TMP/rss.txt"
  local s=$TMP/results/r$1/summary.json
  printf 'rss_vs_requests: %7d requests: peak RSS %6.1f MiB, %5.1f s, %s\n' "$1" \
    "$(awk -v k="$kib" 'BEGIN{print k/1024}')" "$secs" \
    "$( [[ -s $s ]] && jq -r '"\(.overall_summary.ok_requests) ok, \(.request_identity.total_requests) rows"' "$s" || echo "no summary")" >&2
  echo "$kib"
}
a=$(peak "$SMALL")
b=$(peak $((SMALL * 10)))
awk -v a="$a" -v b="$b" 'BEGIN{printf "rss_vs_requests: %dx the requests, %.2fx the peak RSS (target <= 1.25)\n", 10, b/a}'
