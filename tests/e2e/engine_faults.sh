#!/usr/bin/env bash
# The engine's fault injection, start-up and drain behaviour, as a client sees them.
source "$(dirname "$0")/lib.sh"

# --- not ready while starting -----------------------------------------------------------------
start_engine --profile tiny --kv-mode off --startup-delay-s 2 --speedup 0
code=$(curl -s -o "$TMP/h" -w '%{http_code}' "$BASE/health")
[[ $code == 503 && $(jq -r .status "$TMP/h") == not_ready ]] || fail "startup health: $code $(cat "$TMP/h")"
[[ $(curl -s "$BASE/v1/models" | jq '.data | length') -eq 0 ]] || fail "models listed while starting"
sleep 2.2
[[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/health") == 200 ]] || fail "not healthy after delay"
stop_engine

# --- --fail-rate 1: every completion is a 500 -------------------------------------------------
start_engine --profile tiny --kv-mode off --fail-rate 1 --speedup 0
[[ $(curl -s -o "$TMP/b" -w '%{http_code}' "$BASE/v1/completions" -d '{"prompt":"x"}') == 500 ]] || fail "fail-rate"
grep -q injected "$TMP/b" || fail "500 body: $(cat "$TMP/b")"
stop_engine

# --- --drop-model-after 2: the model unregisters ----------------------------------------------
start_engine --profile tiny --kv-mode off --drop-model-after 2 --speedup 0
for i in 1 2; do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/completions" -d '{"prompt":"x","max_tokens":2}') == 200 ]] || fail "request $i"
done
[[ $(curl -s "$BASE/v1/models" | jq '.data | length') -eq 0 ]] || fail "model still listed"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/completions" -d '{"prompt":"x"}') == 404 ]] || fail "no 404"
[[ $(curl -s "$BASE/health" | jq '.endpoints | length') -eq 0 ]] || fail "endpoints after drop"
stop_engine

# --- --disconnect-rate 1: streams are cut mid-way ---------------------------------------------
start_engine --profile tiny --kv-mode off --disconnect-rate 1 --speedup 0
set +e
curl -sN "$BASE/v1/completions" -d '{"prompt":"x","max_tokens":50,"ignore_eos":true,"stream":true}' >"$TMP/s" 2>"$TMP/e"
rc=$?
set -e
[[ $rc -ne 0 ]] || fail "cut stream ended cleanly"
grep -q '^data: {' "$TMP/s" || fail "no events before the cut"
grep -q '\[DONE\]' "$TMP/s" && fail "cut stream has [DONE]"
# unary: the connection closes without an answer
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/completions" -d '{"prompt":"x","max_tokens":50,"ignore_eos":true}' || true)
[[ $code == 000 ]] || fail "unary disconnect answered $code"
stop_engine

# --- --stall-ms: the first token waits; a client timeout fires --------------------------------
start_engine --profile tiny --kv-mode off --stall-ms 1500 --speedup 0
set +e
curl -s -m 0.5 "$BASE/v1/completions" -d '{"prompt":"x","max_tokens":2}' >/dev/null
rc=$?
set -e
[[ $rc -eq 28 ]] || fail "expected a client timeout (28), got $rc"
t0=$(date +%s%N)
curl -s "$BASE/v1/completions" -d '{"prompt":"x","max_tokens":2}' >/dev/null
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
(( ms >= 1400 )) || fail "stall not applied ($ms ms)"
stop_engine

# --- SIGTERM (and SIGHUP, alike) drains: an in-flight request finishes, new ones get 503 --------
for sig in TERM HUP; do
  # a request of about 2 s (40 tokens at a tenth of gb10's speed), signalled once the engine has
  # it (its in-flight gauge), however slow the machine
  start_engine --profile tiny --kv-mode off --speedup 0.1 --hardware gb10
  curl -s "$BASE/v1/completions" -d '{"prompt":"x","max_tokens":40,"ignore_eos":true}' >"$TMP/inflight" &
  cpid=$!
  seen=0
  for _ in $(seq 200); do
    curl -s "$BASE/metrics" | grep -Eq '^dynamo_frontend_inflight_requests\{[^}]*\} [1-9]' && { seen=1; break; }
    sleep 0.05
  done
  ((seen)) || fail "the request was never in flight (SIG$sig)"
  kill -$sig "$ENGINE_PID"
  # the new request once the engine says it is draining (or has closed its listener)
  for _ in $(seq 200); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/health" || true) != 200 ]] && break
    sleep 0.05
  done
  code=$(curl -s -o "$TMP/b" -w '%{http_code}' "$BASE/v1/completions" -d '{"prompt":"y"}' || true)
  [[ $code == 503 || $code == 000 ]] || fail "new request during drain (SIG$sig): $code"
  wait "$cpid"
  [[ $(jq .usage.completion_tokens "$TMP/inflight") -eq 40 ]] || fail "in-flight request lost (SIG$sig): $(cat "$TMP/inflight")"
  for _ in $(seq 100); do kill -0 "$ENGINE_PID" 2>/dev/null || break; sleep 0.1; done
  rc=0; wait "$ENGINE_PID" || rc=$?
  [[ $rc -eq 0 ]] || fail "engine exit $rc after drain (SIG$sig)"
  grep -q "received SIG$sig: draining" "$ENGINE_LOG" || fail "SIG$sig not logged"
done

# --- bad flags --------------------------------------------------------------------------------
expect_exit 2 "$KVBENCH" serve --kv-mode gpu
grep -q -- "--kv-mode: expected one of off, cpu_only, cpu_disk" <<<"$ERR" || fail "$ERR"
expect_exit 2 "$KVBENCH" serve --metrics-port abc
one_line "$ERR"
BENCH_KV_MODE=bogus expect_exit 2 "$KVBENCH" serve
grep -q 'BENCH_KV_MODE' <<<"$ERR" || fail "env error does not name the variable: $ERR"
echo "engine_faults: ok"
