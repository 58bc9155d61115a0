#!/usr/bin/env bash
# make soak: `kvbench serve` (disk tier on) under a streaming load from `kvbench run` plus
# repeated connection floods (slow headers, garbage request lines), for SECONDS (default 60).
# Prints the engine's RSS and open file handles at start, after warm-up (a quarter of the time)
# and at the end, and fails when either grew past warm-up beyond a margin (RSS +16 MiB and +25 %,
# handles +16), when the engine died, or when the load saw errors.
#   tests/soak/soak.sh [KVBENCH] [SECONDS]
set -euo pipefail
KVBENCH=${1:-build/kvbench}
SECS=${2:-60}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d /tmp/kvbench-soak-XXXXXX)
PIDS=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$?
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT

"$KVBENCH" serve --profile tiny --kv-mode cpu_disk --disk-cache-dir "$TMP/cache" --speedup 20 \
  --port 0 --metrics-port auto --max-connections 256 --ready-file "$TMP/ready.json" \
  --log-level WARNING >"$TMP/engine.log" 2>&1 &
ENGINE=$!
PIDS+=("$ENGINE")
for _ in $(seq 200); do [[ -s $TMP/ready.json ]] && break; sleep 0.05; done
[[ -s $TMP/ready.json ]] || { cat "$TMP/engine.log" >&2; echo "soak: the engine did not start" >&2; exit 1; }
BASE=$(jq -r .base_url "$TMP/ready.json")
PORT=${BASE##*:}

sample() { # "<rss KiB> <open fds>" of the engine
  echo "$(awk '/^VmRSS:/ {print $2}' "/proc/$ENGINE/status") $(find "/proc/$ENGINE/fd" -mindepth 1 -maxdepth 1 | wc -l)"
}
read -r RSS0 FD0 <<<"$(sample)"

"$KVBENCH" run --base-url "$BASE" --kv-mode cpu_disk --allow-missing-kvbm-metrics --warmup 0 \
  --duration-s "$SECS" --requests 64 --concurrency 32 --stream --max-tokens 128 \
  --short-range 256:1024 --prompt-salt none --results-root "$TMP/results" --run-id soak \
  --no-progress --log-level WARNING >"$TMP/run.log" 2>&1 &
RUN=$!
PIDS+=("$RUN")

WARM_AT=$((SECS / 4))
t0=$(date +%s)
RSSW="" FDW="" ROUNDS=0
while kill -0 "$RUN" 2>/dev/null; do
  ROUNDS=$((ROUNDS + 1))
  el=$(($(date +%s) - t0))
  kill -0 "$ENGINE" 2>/dev/null || { echo "soak: the engine died" >&2; cat "$TMP/engine.log" >&2; exit 1; }
  # a flood every round: 100 slow-header connections held 1 s, and a garbage request line
  perl "$SRC/tests/e2e/flood.pl" slow "$PORT" 100 1 >/dev/null 2>&1 || true
  perl "$SRC/tests/e2e/flood.pl" garbage "$PORT" 0 2 >/dev/null 2>&1 || true
  if [[ -z $RSSW ]] && ((el >= WARM_AT)); then
    sleep 1 # let the flood's connections close
    read -r RSSW FDW <<<"$(sample)"
  fi
  sleep 1
done
set +e
wait "$RUN"
set -e
sleep 1
read -r RSS1 FD1 <<<"$(sample)"
[[ -n $RSSW ]] || { RSSW=$RSS0; FDW=$FD0; }
S=$TMP/results/soak/summary.json
printf 'soak: %s s of streaming load (32 streams) plus %s rounds of floods\n' "$SECS" "$ROUNDS"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
printf '  engine RSS   start %6s MiB   after warm-up %6s MiB   end %6s MiB\n' \
  "$(mib "$RSS0")" "$(mib "$RSSW")" "$(mib "$RSS1")"
printf '  open handles start %6d       after warm-up %6d       end %6d\n' "$FD0" "$FDW" "$FD1"
[[ -s $S ]] || { cat "$TMP/run.log" >&2; echo "soak: the load wrote no summary" >&2; exit 1; }
jq -r '.phase_summaries[0] | "  load: \(.total_requests) requests, \(.error_requests) errors, \(.req_per_s) req/s"' "$S"
fail=0
if ((RSS1 > RSSW + 16384 && RSS1 * 4 > RSSW * 5)); then
  echo "soak: FAIL: RSS grew past warm-up ($RSSW -> $RSS1 KiB)" >&2
  fail=1
fi
if ((FD1 > FDW + 16)); then
  echo "soak: FAIL: open handles grew past warm-up ($FDW -> $FD1)" >&2
  fail=1
fi
if [[ $(jq '.phase_summaries[0].error_requests' "$S") != 0 ]]; then
  echo "soak: FAIL: the load saw errors: $(jq -c '[.phase_summaries[0].error_requests]' "$S")" >&2
  jq -r 'select(.error != null) | .error' "$TMP/results/soak/requests.jsonl" | sort | uniq -c | head -5 >&2
  fail=1
fi
exit $fail
