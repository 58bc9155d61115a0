#!/usr/bin/env bash
# Backpressure in kvbench serve (issue 25, item 2): a stream whose client stops reading costs the
# engine at most the per-stream bound. 50 clients that never read: the engine's RSS grows by at
# most 50 x the bound, each stream is paused at it, other requests are served meanwhile, and at
# --idle-timeout-s the engine drops them (request cancelled, KV blocks released). A client that
# reads late gets its whole stream.
source "$(dirname "$0")/lib.sh"

CLIENT="$SRC/tests/e2e/slow_client.pl"
BOUND=$((1 << 20)) # ENGINE_STREAM_BOUND_DEFAULT (src/engine/internal.h)
N=50
# AddressSanitizer's quarantine holds freed memory back on purpose (up to 256 MB): it is not
# memory the engine keeps, so it is turned off for this engine's RSS to mean the engine's.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"
start_engine --profile tiny --kv-mode off --speedup 0 --metrics-port 0 --idle-timeout-s 8 \
  --log-level DEBUG --disk-cache-dir "$TMP/kv"
PORT=${BASE##*:}

# rss_kb — the engine's VmRSS less AddressSanitizer's shadow memory (none in a release build; in
# a sanitizer build it is an eighth of the heap on top, which a release build does not have)
rss_kb() {
  perl -e '
    my $pid = shift;
    open(my $st, "<", "/proc/$pid/status") or die "status: $!";
    my $vm = 0;
    while (<$st>) { $vm = $1 if /^VmRSS:\s+(\d+)/ }
    open(my $sm, "<", "/proc/$pid/smaps") or die "smaps: $!";
    my ($shadow, $in) = (0, 0);
    while (<$sm>) {
      if (/^([0-9a-f]+)-[0-9a-f]+\s/) { my $a = hex $1; $in = $a >= 0x7fff8000 && $a < 0x10007fff8000; next }
      $shadow += $1 if $in && /^Rss:\s+(\d+)/;
    }
    print $vm - $shadow, " ", $vm, "\n";' "$ENGINE_PID"
}
api_metric() { metric "$1" "$BASE/metrics"; }
paused_ids() { grep -o 'DEBUG [^ ]* paused' "$ENGINE_LOG" | sort -u | wc -l; }

# warm up every path a stream takes (the allocator's arenas, MHD's pools)
for _ in 1 2 3; do
  curl -sf "$BASE/v1/completions" -d '{"prompt":"warm up","max_tokens":3000,"ignore_eos":true,"stream":true}' >/dev/null ||
    fail "warm-up stream"
done
sleep 0.5
read -r base_kb base_vm <<<"$(rss_kb)"

# 50 streams of 32768 tokens (about 6 MB of SSE each) whose clients never read
printf '{"prompt":"tell me a very long story","max_tokens":32768,"ignore_eos":true,"stream":true}' >"$TMP/stream.json"
READY="$TMP/ready" perl "$CLIENT" noread "$PORT" "$N" "$TMP/stream.json" 40 >"$TMP/noread.out" &
NOREAD=$!
PIDS+=("$NOREAD")
peak_kb=$base_kb
peak_vm=$base_vm
for _ in $(seq 120); do # until every stream is paused (60 s at most), sampling RSS
  read -r kb vm <<<"$(rss_kb)"
  (( kb > peak_kb )) && peak_kb=$kb
  (( vm > peak_vm )) && peak_vm=$vm
  (( $(paused_ids) >= N )) && break
  sleep 0.5
done
(( $(paused_ids) >= N )) || fail "$(paused_ids) of $N streams were paused"
for _ in $(seq 4); do # and it stays there
  sleep 0.5
  read -r kb vm <<<"$(rss_kb)"
  (( kb > peak_kb )) && peak_kb=$kb
  (( vm > peak_vm )) && peak_vm=$vm
done
growth=$((peak_kb - base_kb))
echo "$N non-reading streams: engine RSS $base_kb -> $peak_kb kB at most (growth $growth kB," \
  "$((growth * 1024 / N)) bytes a stream; bound $BOUND bytes a stream, $((N * BOUND / 1024)) kB for $N;" \
  "VmRSS with any sanitizer shadow $base_vm -> $peak_vm kB)"
(( growth * 1024 <= N * BOUND )) || fail "RSS grew $growth kB for $N non-reading streams (bound $((N * BOUND / 1024)) kB)"
[[ $(api_metric dynamo_frontend_inflight_requests) -eq $N ]] || fail "the paused streams are not in flight"

# the scheduler is not held up by them
t0=$(date +%s%3N)
code=$(curl -s -o "$TMP/unary.json" -w '%{http_code}' --max-time 5 "$BASE/v1/completions" \
  -d '{"prompt":"meanwhile","max_tokens":16}')
[[ $code == 200 ]] || fail "a completion while $N streams are paused: $code $(cat "$TMP/unary.json")"
echo "a completion while $N streams are paused: 200 in $(( $(date +%s%3N) - t0 )) ms"

# --idle-timeout-s 8: a client that reads nothing that long is dropped and its request cancelled
for _ in $(seq 300); do
  [[ $(api_metric dynamo_frontend_inflight_requests) -eq 0 ]] && break
  sleep 0.1
done
[[ $(api_metric dynamo_frontend_inflight_requests) -eq 0 ]] || fail "the paused streams were never cancelled"
errors=$(curl -sf "$BASE/metrics" | awk '/^dynamo_frontend_requests_total/ && /request_type="stream"/ && /status="error"/ { print $NF }')
[[ $errors -eq $N ]] || fail "$errors streams ended in error, expected the $N non-reading ones"
sleep 0.5
read -r after_kb _ <<<"$(rss_kb)"
echo "after --idle-timeout-s: all $N cancelled, RSS $after_kb kB"
kill "$NOREAD" 2>/dev/null || true
wait "$NOREAD" 2>/dev/null || true

# a client that reads only after 3 s: paused meanwhile, then resumed, and the stream is whole
before=$(paused_ids)
R=$(perl "$CLIENT" late "$PORT" "$TMP/stream.json" 3 60)
echo "a stream read after 3 s: $R"
(( $(paused_ids) > before )) || fail "the late reader's stream was not paused"
[[ $R == "events 32768 done 1 "* ]] || fail "the late reader's stream is not whole: $R"
stop_engine
echo "backpressure: ok"
