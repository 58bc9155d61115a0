#!/usr/bin/env bash
# Nothing shared by accident, nothing unbounded, nothing secret (issue: hardening run and serve):
# two engines on one --disk-cache-dir (the second refuses, the first keeps every file), clean-up
# that only touches kvbench's own block files, and a deleted cache directory made again.
source "$(dirname "$0")/lib.sh"

CACHE="$TMP/kvbm"
mkdir -p "$CACHE"
# a file named like a block file that is not one: clean-up must leave it alone
printf 'not a kv block, somebody else'"'"'s data\n' >"$CACHE/kvbench-0123456789abcdef.kvblk"

start_engine --profile tiny --kv-mode cpu_disk --gpu-cache-blocks 64 --cpu-cache-blocks 128 \
  --disk-cache-blocks 4096 --disable-disk-offload-filter --disk-cache-dir "$CACHE" --speedup 0
FIRST_PID=$ENGINE_PID
FIRST_LOG=$ENGINE_LOG
grep -q "left 1 files .* do not carry kvbench's block header" "$FIRST_LOG" || fail "foreign file not reported"
[[ -f "$CACHE/kvbench-0123456789abcdef.kvblk" ]] || fail "a foreign file was deleted at start"
# fill the disk tier: distinct long prompts push blocks G1 -> G2 -> G3
for i in $(seq 6); do
  complete "{\"prompt\": \"$(words "p$i" 1500)\", \"max_tokens\": 2}" >/dev/null
done
for _ in $(seq 100); do
  n=$(find "$CACHE" -name 'kvbench-*.kvblk' | wc -l)
  (( n > 1 )) && break
  sleep 0.1
done
find "$CACHE" -name 'kvbench-*.kvblk' | sort >"$TMP/before.list"
before=$(wc -l <"$TMP/before.list")
(( before > 1 )) || fail "no block files written"
[[ $(cat "$CACHE/.kvbench.lock") == "$FIRST_PID" ]] || fail "the lock does not name the holder"

# a second engine on the same directory refuses, naming the holder, and touches nothing
expect_exit 1 "$KVBENCH" serve --port 0 --metrics-port 0 --profile tiny --kv-mode cpu_disk \
  --disk-cache-dir "$CACHE" --log-level ERROR
one_line "$ERR"
grep -q "in use by another kvbench serve (pid $FIRST_PID)" <<<"$ERR" || fail "second engine: $ERR"
# (the first engine may still be writing more: every file that was there must still be there)
find "$CACHE" -name 'kvbench-*.kvblk' | sort >"$TMP/after.list"
gone=$(comm -23 "$TMP/before.list" "$TMP/after.list" | wc -l)
[[ $gone -eq 0 ]] || fail "the second engine deleted $gone of the first one's $before files"
kill -0 "$FIRST_PID" || fail "the first engine died"
[[ $(metric kvbench_disk_read_errors) -eq 0 ]] || fail "read errors in the first engine"

# the cache directory deleted under a running engine is made again for the next writes
rm -rf "$CACHE"
for i in $(seq 7 9); do
  complete "{\"prompt\": \"$(words "q$i" 1500)\", \"max_tokens\": 2}" >/dev/null
done
for _ in $(seq 100); do [[ -d $CACHE ]] && break; sleep 0.1; done
[[ -d $CACHE ]] || fail "a deleted cache directory was not made again"
grep -q "was missing and was made again" "$ENGINE_LOG" || fail "not logged"
stop_engine "$FIRST_PID"
# stopped: our blocks and lock are gone
[[ $(find "$CACHE" -name 'kvbench-*.kvblk' | wc -l) -eq 0 ]] || fail "blocks left behind"
[[ ! -e "$CACHE/.kvbench.lock" ]] || fail "lock file left behind"

# a new engine after the first: the lock is free again
start_engine --profile tiny --kv-mode cpu_disk --disk-cache-dir "$TMP/kvbm2" --speedup 0
stop_engine
# --- serve under floods: slow headers, over-limit bursts, garbage, conflicting lengths ---------
start_engine --profile tiny --kv-mode off --speedup 0 --max-connections 64 --request-read-timeout-s 1
fds() { find "/proc/$ENGINE_PID/fd" -mindepth 1 2>/dev/null | wc -l; }
sleep 0.3
base_fds=$(fds)
PORT=${BASE##*:}
# 300 slow-header connections (64 take every slot, the rest are closed at accept), held 60 s:
# a client served while the flood still holds them was served because the server closed them
perl "$SRC/tests/e2e/flood.pl" slow "$PORT" 300 60 >"$TMP/flood1.out" &
FLOOD=$!
PIDS+=("$FLOOD")
sleep 2 # past --request-read-timeout-s: the slow ones are gone
t0=$(date +%s%N)
# (a busy CI machine may be slow to run the timeouts: a few tries, never a timing assertion)
ok=0
for _ in $(seq 10); do curl -sf --max-time 2 "$BASE/health" >/dev/null && { ok=1; break; }; sleep 0.5; done
[[ $ok -eq 1 ]] || fail "a normal client was not served during a slow-header flood"
kill -0 "$FLOOD" 2>/dev/null || fail "the flood ended before the client was served"
echo "served $(( ($(date +%s%N) - t0) / 1000000 )) ms into a slow-header flood"
# the metrics listener is independent of the API's connections
ok=0
for _ in $(seq 10); do curl -sf --max-time 2 "$METRICS" >/dev/null && { ok=1; break; }; sleep 0.5; done
[[ $ok -eq 1 ]] || fail "metrics port unavailable during the flood"
kill "$FLOOD" 2>/dev/null || true
wait "$FLOOD" || true
# a second over-limit burst, then everything is given back
perl "$SRC/tests/e2e/flood.pl" slow "$PORT" 200 1 >/dev/null
refused=$(metric kvbench_refused_connections_total "$BASE/metrics")
(( refused > 0 )) || fail "no connection was refused over --max-connections"
for _ in $(seq 150); do (( $(fds) <= base_fds + 2 )) && break; sleep 0.1; done
(( $(fds) <= base_fds + 2 )) || fail "file handles $base_fds -> $(fds) after the floods"
curl -sf --max-time 5 "$BASE/health" >/dev/null || fail "not served after the floods"
echo "refused $refused connections over the limit; handles back to $(fds) (baseline $base_fds)"
# a garbage request line is answered (or closed) at once, not held open
reply=$(perl "$SRC/tests/e2e/flood.pl" garbage "$PORT" 0 3)
[[ $reply != "no reply" ]] || fail "a garbage request line was held open with no reply"
echo "garbage request line: ${reply%$'\r'}"
# two Content-Length headers that disagree: 400
code=$(curl -s -o "$TMP/cl.out" -w '%{http_code}' "$BASE/v1/completions" -H 'Content-Type: application/json' \
  -H 'Content-Length: 2' -H 'Content-Length: 5' --data-binary '{}' || true)
[[ $code == 400 || $code == 000 ]] || fail "conflicting Content-Length answered $code"
# an unknown path is 404 whatever the method
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/nope") == 404 ]] || fail "POST unknown path"
stop_engine

# --- nothing unbounded: a server that sends one endless SSE line or body -------------------------
hostile() { # MODE -> sets HOST_PID, HOST_URL
  local pf="$TMP/hostile-$RANDOM.port"
  perl "$SRC/tests/e2e/hostile_server.pl" "$1" "$pf" &
  HOST_PID=$!
  PIDS+=("$HOST_PID")
  for _ in $(seq 100); do [[ -s $pf ]] && break; sleep 0.05; done
  HOST_URL="http://127.0.0.1:$(cat "$pf")"
}
hostile endless
for stream in --stream --no-stream; do
  # (--engine dynamo and a closed metrics port: only the completions are big here; metrics
  # pages have their own 32 MiB cap)
  expect_exit 1 "$KVBENCH" run --base-url "$HOST_URL" --results-root "$TMP/res" --kv-mode off \
    --engine dynamo --kvbm-metrics-url http://127.0.0.1:9/metrics \
    --tokenizer heuristic --add-bos yes --requests 2 --warmup 0 --concurrency 2 --max-tokens 8 \
    --max-response-bytes 1048576 $stream --log-level ERROR --run-id "big$stream"
  rss=$(jq .client.peak_rss_kib "$TMP/res/big$stream/summary.json")
  R="$TMP/res/big$stream/requests.jsonl"
  [[ $(jq -s 'map(select(.error | test("^response_too_large"))) | length' "$R") -eq 2 ]] ||
    fail "rows: $(jq -c .error "$R")"
  [[ $(jq -r .invalid_reason "$TMP/res/big$stream/summary.json") == no_successful_requests ]] || fail "validity"
  # 2 x 300 MB sent; the client holds at most the bound per request plus a constant
  echo "peak RSS with two 300 MB responses, bound 1 MiB ($stream): $((rss / 1024)) MiB"
  # (a sanitizer build's shadow memory is part of its RSS; 300 MB held would be far above)
  (( rss < 64 * 1024 )) || fail "peak RSS $rss kB: the response bound did not hold"
done
# --- secrets: a server that echoes the Authorization header leaves no trace of the key ----------
hostile echo-key
KEY=sk-hardening-secret-7f3a9
expect_exit 1 "$KVBENCH" run --base-url "$HOST_URL" --results-root "$TMP/res" --kv-mode off \
  --tokenizer heuristic --add-bos yes --requests 3 --warmup 0 --max-tokens 8 --stream \
  --store-responses --api-key "$KEY" --log-level DEBUG --run-id echo_key
grep -q "invalid credentials: Bearer \[REDACTED\]" "$TMP/res/echo_key/requests.jsonl" ||
  fail "the error body was not recorded (redacted): $(head -c 600 "$TMP/res/echo_key/requests.jsonl")"
if grep -rq "$KEY" "$TMP/res/echo_key" <<<"" || grep -q "$KEY" <<<"$OUT$ERR"; then
  fail "the API key is in an artifact or the log"
fi
# --- a results directory that fills up during the run: invalid, every row whole ----------------
SMALL="$TMP/small"
mkdir -p "$SMALL"
if mount -t tmpfs -o size=96k tmpfs "$SMALL" 2>/dev/null; then
  # the test's own exit status goes on to cleanup (which exits with it): without (exit $rc),
  # umount's status would be taken for the test's and a failure below would pass
  trap 'rc=$?; umount "$SMALL" 2>/dev/null || true; (exit $rc); cleanup' EXIT
  start_engine --profile tiny --kv-mode off --speedup 0
  # a --duration-s run that would go on for 60 s: the first failed write ends it within seconds,
  # with a few lines on stderr, not one per lost batch
  for store in "" --store-responses; do
    rm -rf "$SMALL/full"
    set +e
    t0=$(date +%s)
    "$KVBENCH" run --base-url "$BASE" --results-root "$SMALL" --kv-mode off --tokenizer heuristic \
      --add-bos yes --prompt-set short --short-range 512:512 --duration-s 60 --warmup 0 \
      --concurrency 4 --max-tokens 4 --stream --log-level WARNING $store --run-id full \
      >"$TMP/full.out" 2>"$TMP/full.err"
    rc=$?
    took=$(( $(date +%s) - t0 ))
    set -e
    [[ $rc -eq 1 ]] || { cat "$TMP/full.out" "$TMP/full.err" >&2; fail "a run on a full disk exited $rc"; }
    ((took < 15)) || fail "a run on a full disk went on for ${took}s"
    [[ $(wc -l <"$TMP/full.err") -le 8 ]] || fail "stderr: $(wc -l <"$TMP/full.err") lines: $(head -20 "$TMP/full.err")"
    # the last line names only files that exist
    last=$(tail -n 1 "$TMP/full.out")
    for f in summary.json report.md report.html; do
      if grep -q "$f" <<<"$last"; then [[ -e "$SMALL/full/$f" ]] || fail "'$last' names $f, which is not there"; fi
    done
    grep -q "the run is invalid: .* artifact writes failed" "$TMP/full.err" || fail "no reason on stderr ($store)"
    R="$SMALL/full/requests.jsonl"
    # the rows written before the disk filled are kept (responses stored beside them may take
    # the space first), and every row that is there is a whole JSON line
    [[ -n $store || -s $R ]] || fail "no rows kept before the disk filled"
    if [[ -s $R ]]; then
      [[ $(tail -c 1 "$R" | od -An -c | tr -d ' ') == '\n' ]] || fail "requests.jsonl ends with a torn line ($store)"
      jq -e . "$R" >/dev/null || fail "requests.jsonl has a broken row ($store)"
    fi
    # a summary that could be written says why the run is invalid; where none could, the last line
    # says so itself (and, above, names only the files that are there: report.md may be)
    if [[ -s "$SMALL/full/summary.json" ]]; then
      jq -e '.run_valid == false and (.invalid_details_kvbench | map(.reason) | index("artifact_write_failed"))' \
        "$SMALL/full/summary.json" >/dev/null || fail "summary: $(jq -c .invalid_details "$SMALL/full/summary.json")"
    else
      [[ $last == *"INVALID (artifact_write_failed)"* && $last != *summary.json* ]] ||
        fail "no summary.json, and the last line does not say why: $last"
    fi
    echo "full disk ($store): ended after ${took}s, $(wc -l <"$TMP/full.err") lines on stderr, $(wc -l <"$R" 2>/dev/null || echo 0) rows: $last"
  done
  stop_engine
  umount "$SMALL"
  trap cleanup EXIT
else
  echo "note: cannot mount a small tmpfs here (not root?); the full-disk case is not checked"
fi
echo "hardening: ok"
