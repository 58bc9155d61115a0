#!/usr/bin/env bash
# Memory at scale: kvbench's peak RSS while 1,000 streamed completions (256 tokens each) are in
# flight at once against `kvbench serve` (target: <= 64 MiB), and whether 10,000 concurrent
# streams can be opened at all (file-descriptor limit permitting). Prints figures; never fails
# on them.
#   bench/streams_rss.sh [KVBENCH] [STREAMS]
set -euo pipefail
KVBENCH=${1:-build/kvbench}
STREAMS=${2:-1000}
# shellcheck source=bench/lib/serve.sh
source "$(dirname "$0")/lib/serve.sh"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

serve() { # streams: the engine batches them all and serves 2x as many connections
  start_serve --speedup 50 --max-num-seqs "$1" --max-connections $(($1 * 2))
}

measure() { # streams requests run-id
  /usr/bin/time -f '%M' -o "$TMP/rss.txt" "$KVBENCH" run --base-url "$BASE" --kv-mode off \
    --allow-missing-kvbm-metrics --warmup 0 --concurrency "$1" --requests "$2" --stream \
    --max-tokens 256 --short-range 64:64 --prompt-salt none --results-root "$TMP/results" \
    --run-id "$3" --no-progress --log-level WARNING >/dev/null 2>"$TMP/$3.err" || true
  RSS_KIB=$(cat "$TMP/rss.txt")
  S=$TMP/results/$3/summary.json
}

serve "$STREAMS"
measure "$STREAMS" $((STREAMS * 3)) rss
if [[ -s $S ]]; then
  printf 'streams_rss: %d streams of 256 tokens (%d requests): peak RSS %.1f MiB (target <= 64), ' \
    "$STREAMS" $((STREAMS * 3)) "$(awk -v k="$RSS_KIB" 'BEGIN{print k/1024}')"
  jq -r '.phase_summaries[0] | "\(.ok_requests) ok, \(.error_requests) errors, \(.req_per_s) req/s, threads \(.load.threads)"' "$S"
else
  echo "streams_rss: the run wrote no summary: $(head -c 300 "$TMP/rss.err")"
fi
kill "$(cat "$TMP/pid")"
wait 2>/dev/null || true
rm -f "$TMP/ready.json"

# 10,000 at once: possible when the descriptor limit allows (each stream is one connection).
if (($(ulimit -n) >= 10300)); then
  serve 10000
  measure 10000 10000 ten_k
  if [[ -s $S ]]; then
    printf 'streams_rss: 10000 concurrent streams: peak RSS %.1f MiB, ' \
      "$(awk -v k="$RSS_KIB" 'BEGIN{print k/1024}')"
    jq -r '.phase_summaries[0] | "\(.ok_requests) ok, \(.error_requests) errors"' "$S"
  else
    echo "streams_rss: 10000 streams: no summary: $(head -c 300 "$TMP/ten_k.err")"
  fi
else
  echo "streams_rss: 10000 streams skipped: the descriptor limit is $(ulimit -n)"
fi
