#!/usr/bin/env bash
# Memory against a run's duration: kvbench's peak RSS for the same streamed load at full speed
# (64 streams, --duration-s) against a server it did not write (nginx's static SSE completion,
# bench/lib/static_sse.sh), for a 10 s and a 60 s run. Per-request state lives only while a
# request is in flight, measured values spill to the run's directory and prompts come from a
# ring, so the two peaks should be within 10 % (and under 100 MiB). Prints figures; never fails
# on them.
#   bench/rss_vs_duration.sh [KVBENCH] [SHORT_S] [LONG_S] [CONCURRENCY]
set -euo pipefail
KVBENCH=${1:-build/kvbench}
SHORT=${2:-10}
LONG=${3:-60}
CONC=${4:-64}
# shellcheck source=bench/lib/static_sse.sh
source "$(dirname "$0")/lib/static_sse.sh"
start_static_sse rss_vs_duration || exit 0

peak() { # seconds requests -> KiB (requests: how many distinct prompts the run may cycle)
  /usr/bin/time -f '%M %e' -o "$TMP/rss.txt" "$KVBENCH" run --base-url "$BASE" --kv-mode off \
    --allow-missing-kvbm-metrics --warmup 0 --concurrency "$CONC" --duration-s "$1" \
    --requests "$2" --stream --max-tokens 256 --short-range 1:1 --prompt-template none \
    --results-root "$RES" --run-id "d$1-$2" --no-progress --log-level WARNING \
    >/dev/null 2>"$TMP/d$1.err" || true
  read -r kib secs <"$TMP/rss.txt"
  local s=$RES/d$1-$2/summary.json
  printf 'rss_vs_duration: %3d s, %7d prompts: peak RSS %6.1f MiB, %5.1f s, %s\n' "$1" "$2" \
    "$(awk -v k="$kib" 'BEGIN{print k/1024}')" "$secs" \
    "$([[ -s $s ]] && jq -r '"\(.overall_summary.total_requests) requests"' "$s" || echo "no summary: $(head -c 200 "$TMP/d$1.err")")" >&2
  rm -rf "${RES:?}/d$1-$2"
  echo "$kib"
}
for prompts in 64 1000000; do
  a=$(peak "$SHORT" "$prompts")
  b=$(peak "$LONG" "$prompts")
  awk -v a="$a" -v b="$b" -v s="$SHORT" -v l="$LONG" -v p="$prompts" 'BEGIN{printf "rss_vs_duration: %d prompts: %d s vs %d s: %.2fx the peak RSS (target <= 1.10, and under 100 MiB)\n", p, l, s, b/a}'
done
