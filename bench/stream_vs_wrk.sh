#!/usr/bin/env bash
# The product's case: streamed completions of 256 tokens at concurrency, against a server kvbench
# did not write. nginx (Debian's nginx-light) serves a static SSE completion - 256 token chunks, a
# usage chunk and [DONE], ~36 KB, the shape of a vLLM stream - on loopback; wrk (1 thread) is the
# transport ceiling; kvbench runs at its default settings. Alternating rounds, medians printed with
# req/s, SSE events/s, the ratio to wrk and the client's CPU per event. Never fails on timing.
#   bench/stream_vs_wrk.sh [KVBENCH] [CONCURRENCY] [SECONDS]
set -euo pipefail
KVBENCH=${1:-build/kvbench}
CONC=${2:-64}
SECS=${3:-5}
if ! command -v wrk >/dev/null 2>&1; then
  echo "stream_vs_wrk: needs wrk (Debian 'wrk'); skipping"
  exit 0
fi
# shellcheck source=bench/lib/static_sse.sh
source "$(dirname "$0")/lib/static_sse.sh"
start_static_sse stream_vs_wrk || exit 0
cat >"$TMP/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"static","prompt":"hello","max_tokens":256,"stream":true}'
wrk.headers["Content-Type"] = "application/json"
LUA

WRKS=() KVBS=() CPUS=() TTFTS=()
for round in 1 2 3; do
  wrk -t 1 -c "$CONC" -d "${SECS}s" -s "$TMP/post.lua" "$BASE/v1/completions" >"$TMP/wrk.txt"
  W=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.txt")
  if grep -q "Non-2xx" "$TMP/wrk.txt"; then
    echo "stream_vs_wrk: nginx answered errors to wrk: $(grep Non-2xx "$TMP/wrk.txt")"
    exit 0
  fi
  WRKS+=("$W")
  /usr/bin/time -f '%U %S' -o "$TMP/time.txt" \
    "$KVBENCH" run --base-url "$BASE" --kv-mode off --allow-missing-kvbm-metrics --requests 1000 \
    --duration-s "$SECS" --warmup 0 --concurrency "$CONC" --max-tokens 256 --stream --short-range 1:1 \
    --prompt-template none --prompt-salt none --results-root "$RES" --run-id "s$round" \
    --no-progress --log-level WARNING >/dev/null 2>"$TMP/kvb.err" || true
  S=$RES/s$round/summary.json
  if [[ ! -s $S ]]; then
    echo "stream_vs_wrk: kvbench wrote no summary: $(head -c 300 "$TMP/kvb.err")"
    exit 0
  fi
  KVBS+=("$(jq '.phase_summaries[0].req_per_s' "$S")")
  TTFTS+=("$(jq '.phase_summaries[0].ttft_ms.p50' "$S")")
  N=$(jq '.phase_summaries[0].total_requests' "$S")
  CPUS+=("$(awk -v n="$N" -v e="$EVENTS" '{ printf "%.3f", ($1 + $2) * 1e6 / (n * e) }' "$TMP/time.txt")")
done
# TTFT at concurrency 1 against the same server: the harness's own queueing shows as the gap.
"$KVBENCH" run --base-url "$BASE" --kv-mode off --allow-missing-kvbm-metrics --requests 2000 \
  --warmup 0 --concurrency 1 --max-tokens 256 --stream --short-range 1:1 --prompt-template none \
  --prompt-salt none --results-root "$RES" --run-id c1 --no-progress --log-level WARNING \
  >/dev/null 2>&1 || true
TTFT1=$(jq '.phase_summaries[0].ttft_ms.p50' "$RES/c1/summary.json" 2>/dev/null || echo null)
# Open loop at 500 requests/s, Poisson arrivals: is the rate kept, and how late are sends?
"$KVBENCH" run --base-url "$BASE" --kv-mode off --allow-missing-kvbm-metrics --requests 2500 \
  --warmup 0 --request-rate 500 --arrival poisson --max-tokens 256 --stream --short-range 1:1 \
  --prompt-template none --prompt-salt none --results-root "$RES" --run-id open \
  --no-progress --log-level WARNING >/dev/null 2>&1 || true
OPEN=$(jq -r '.phase_summaries[0] | "achieved \(.achieved_rate) of \(.target_rate) req/s, lag p50 \(.schedule_lag_ms.p50) ms p99 \(.schedule_lag_ms.p99) ms, TTFT p50 \(.ttft_ms.p50) ms corrected \(.ttft_ms_corrected.p50) ms"' \
  "$RES/open/summary.json" 2>/dev/null || echo "no summary")
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
WRK=$(median "${WRKS[@]}")
KVB=$(median "${KVBS[@]}")
echo "streaming client vs wrk (nginx static SSE, 256 chunks + usage + [DONE], $(wc -c <"$TMP/www/v1/completions") bytes;"
echo "concurrency $CONC, wrk 1 thread, kvbench at its defaults; median of 3 alternating rounds of ~${SECS} s)"
printf '  wrk:     %10.0f requests/s %12.0f events/s   (rounds: %s)\n' "$WRK" \
  "$(awk -v r="$WRK" -v e=$EVENTS 'BEGIN{print r*e}')" "${WRKS[*]}"
printf '  kvbench: %10.0f requests/s %12.0f events/s   (rounds: %s)\n' "$KVB" \
  "$(awk -v r="$KVB" -v e=$EVENTS 'BEGIN{print r*e}')" "${KVBS[*]}"
awk -v a="$KVB" -v b="$WRK" 'BEGIN { printf "  ratio:   %10.2f   (target >= 0.5)\n", a / b }'
printf '  kvbench client CPU per event: %s us   (rounds: %s)\n' "$(median "${CPUS[@]}")" "${CPUS[*]}"
printf '  kvbench TTFT p50: %s ms at concurrency %s, %s ms at concurrency 1 (target: within 2 ms)\n' \
  "$(median "${TTFTS[@]}")" "$CONC" "$TTFT1"
echo "  open loop, poisson at 500 req/s (target 500 +- 5 %): $OPEN"
