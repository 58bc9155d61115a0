#!/usr/bin/env bash
# The harness is never the bottleneck: kvbench's load generator against wrk (Debian's wrk, the
# reference HTTP load generator) on the same server, the embedded engine with no modelled time.
# Prints both request rates and their ratio (target: kvbench >= 0.5 x wrk). Never fails on time.
#   bench/loadgen_vs_wrk.sh [KVBENCH] [CONCURRENCY] [SECONDS]
set -euo pipefail
KVBENCH=${1:-build/kvbench}
CONC=${2:-32}
SECS=${3:-5}
if ! command -v wrk >/dev/null 2>&1; then
  echo "loadgen_vs_wrk: wrk is not installed (Debian package 'wrk'); skipping the comparison"
  exit 0
fi
# shellcheck source=bench/lib/serve.sh
source "$(dirname "$0")/lib/serve.sh"
start_serve --speedup 0 --max-num-seqs 256
BODY="{\"model\":\"$MODEL\",\"prompt\":\"hello there\",\"max_tokens\":1}"
cat >"$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
LUA
# Alternate the two clients for three rounds and compare medians: the server shares the machine's
# cores with whichever client runs, and a 2-core VM is noisy.
WRKS=() KVBS=()
for round in 1 2 3; do
  wrk -t 1 -c "$CONC" -d "${SECS}s" -s "$TMP/post.lua" "$BASE/v1/completions" >"$TMP/wrk.txt"
  W=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.txt")
  WRKS+=("$W")
  # the same duration as wrk's (1000 distinct prompts, cycled)
  "$KVBENCH" run --base-url "$BASE" --kv-mode off --allow-missing-kvbm-metrics --requests 1000 \
    --duration-s "$SECS" --warmup 0 --concurrency "$CONC" --no-progress --max-tokens 1 --short-range 1:1 --prompt-template none \
    --prompt-salt none --results-root "$TMP/results" --run-id "lg$round" --log-level WARNING \
    >/dev/null || true
  KVBS+=("$(jq '.phase_summaries[0].req_per_s' "$TMP/results/lg$round/summary.json")")
done
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
WRK=$(median "${WRKS[@]}")
KVB=$(median "${KVBS[@]}")
echo "loadgen vs wrk (wrk 1 thread, kvbench at its defaults, concurrency $CONC, unary max_tokens=1, kvbench serve --speedup 0;"
echo "median of 3 alternating rounds of ${SECS} s; kvbench measures every request and writes its row)"
printf '  wrk:     %10.0f requests/s   (rounds: %s)\n' "$WRK" "${WRKS[*]}"
printf '  kvbench: %10.0f requests/s   (rounds: %s)\n' "$KVB" "${KVBS[*]}"
awk -v a="$KVB" -v b="$WRK" 'BEGIN { printf "  ratio:   %10.2f   (target >= 0.5)\n", a / b }'
