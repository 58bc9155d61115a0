#!/usr/bin/env bash
# The operator subcommands against `kvbench serve`: ready, health, smoke, summary and matrix, in
# their normal and failure paths (not ready yet, model missing, unreachable, malformed summaries).
source "$(dirname "$0")/lib.sh"
RES="$TMP/results"
DEAD="http://127.0.0.1:$( "$KVBENCH" serve --help >/dev/null; echo 9)"

# --- ready: waits through a slow start, then succeeds ------------------------------------------
start_engine --profile tiny --kv-mode off --startup-delay-s 1.5 --speedup 0
expect_exit 0 "$KVBENCH" ready --base-url "$BASE" --interval-s 0.2 --consecutive 2 --timeout-s 20 --require-endpoints
grep -q "not ready (streak 0/2): /v1/models lists no model yet" <<<"$OUT" || fail "no not-ready progress: $OUT"
grep -q "(streak 2/2)" <<<"$OUT" || fail "no streak: $OUT"
grep -q "is ready" <<<"$OUT" || fail "ready line"
# health and smoke on a healthy server
expect_exit 0 "$KVBENCH" health --base-url "$BASE"
grep -q '== /health (HTTP 200)' <<<"$OUT" || fail "health output: $OUT"
grep -q '"status": "healthy"' <<<"$OUT" || fail "pretty health"
grep -q '"id": "kvbench/tiny"' <<<"$OUT" || fail "models printed"
expect_exit 0 "$KVBENCH" smoke --base-url "$BASE" --max-tokens 32
[[ -n $OUT ]] || fail "smoke printed nothing"
stop_engine

# --- ready times out while the worker never registers; prints the last answers ------------------
start_engine --profile tiny --kv-mode off --startup-delay-s 60 --speedup 0
expect_exit 1 "$KVBENCH" ready --base-url "$BASE" --interval-s 0.2 --timeout-s 1
grep -q "not ready after" <<<"$OUT" || fail "timeout line: $OUT"
grep -q '== last /health' <<<"$OUT" && grep -q 'not_ready' <<<"$OUT" || fail "last health body: $OUT"
grep -q '== last /v1/models' <<<"$OUT" || fail "last models body"
expect_exit 1 "$KVBENCH" health --base-url "$BASE"
grep -q "HTTP 503" <<<"$OUT" || fail "503 not shown: $OUT"
one_line "$ERR"
expect_exit 1 "$KVBENCH" smoke --base-url "$BASE"
grep -q "the list is empty" <<<"$ERR" || fail "smoke without model: $ERR"
stop_engine

# --- the model drops: ready with --require-endpoints and smoke fail ------------------------------
start_engine --profile tiny --kv-mode off --drop-model-after 2 --speedup 0
expect_exit 0 "$KVBENCH" smoke --base-url "$BASE" --max-tokens 4
expect_exit 1 "$KVBENCH" ready --base-url "$BASE" --interval-s 0.1 --timeout-s 0.5 --require-endpoints
expect_exit 1 "$KVBENCH" smoke --base-url "$BASE" --model-id kvbench/tiny
grep -q "HTTP 404" <<<"$ERR" || fail "smoke 404: $ERR"
stop_engine

# --- unreachable -----------------------------------------------------------------------------------
expect_exit 1 "$KVBENCH" ready --base-url "$DEAD" --interval-s 0.1 --timeout-s 0.3
grep -q "connect failed" <<<"$OUT" || fail "unreachable reason: $OUT"
expect_exit 1 "$KVBENCH" health --base-url "$DEAD"
grep -q "unreachable" <<<"$OUT" || fail "health unreachable: $OUT"
expect_exit 1 "$KVBENCH" smoke --base-url "$DEAD"
expect_exit 2 "$KVBENCH" ready --consecutive 0

# --- matrix: the runbook's sweeps, scaled down ----------------------------------------------------
start_engine --profile tiny --kv-mode cpu_disk --gpu-cache-blocks 2048 --cpu-cache-blocks 4096 \
  --disk-cache-blocks 65536 --disable-disk-offload-filter --disk-cache-dir "$TMP/kvbm" --speedup 0
expect_exit 0 "$KVBENCH" matrix --base-url "$BASE" --kvbm-metrics-url "$METRICS" --kvbm-cache-dir "$TMP/kvbm" \
  --results-root "$RES" --concurrencies "1,2" --short-requests 2 --short-warmup 0 --long-requests 1 \
  --long-warmup 0 --eviction-warmup 0 --eviction-a-requests 2 --eviction-b-requests 2 --max-tokens 4 \
  --stamp t1
for id in short_c1_t1 short_c2_t1 long_c1_t1 long_c2_t1 eviction_replay_t1; do
  [[ -s "$RES/$id/summary.json" ]] || fail "matrix run $id missing"
  grep -q "^$id " <<<"$OUT" || fail "matrix table lacks $id"
done
[[ $(jq '.phase_summaries[] | select(.phase == "main") | .concurrency' "$RES/short_c2_t1/summary.json") -eq 2 ]] || fail "concurrency"
[[ $(jq -r '.args.long_range' "$RES/long_c1_t1/config.json") == "6000:7600" ]] || fail "matrix long range default"
[[ $(jq '.phases[] | select(.name == "warm_A") | .concurrency' "$RES/eviction_replay_t1/config.json") -eq 4 ]] || fail "eviction A concurrency 4"
expect_exit 2 "$KVBENCH" matrix --concurrencies "1 x"

# --- summary: globs, directories, --json, malformed files ------------------------------------------
expect_exit 0 "$KVBENCH" summary "$RES/*/summary.json"
[[ $(grep -c '^short_c\|^long_c\|^eviction_replay' <<<"$OUT") -eq 5 ]] || fail "summary rows: $OUT"
head -1 <<<"$OUT" | grep -q 'run_id  *scenario  *kv_mode  *valid  *req/s  *ttft_p50  *ttft_p95  *lat_p50  *lat_p95  *err_rate  *signal' || fail "header"
grep -q 'eviction_replay_t1 .* eviction_replay .* cpu_disk' <<<"$OUT" || fail "eviction row"
expect_exit 0 "$KVBENCH" summary "$RES"            # a directory of runs
[[ $(grep -c '_t1' <<<"$OUT") -eq 5 ]] || fail "directory of runs"
expect_exit 0 "$KVBENCH" summary "$RES/short_c1_t1" # one run directory
expect_exit 0 "$KVBENCH" summary --json "$RES/*/summary.json"
[[ $(jq length <<<"$OUT") -eq 5 ]] || fail "json rows"
jq -e '.[0] | has("run_id") and has("req_per_s") and has("signal") and has("path")' <<<"$OUT" >/dev/null || fail "json keys"
mkdir -p "$RES/broken" "$RES/notours"
echo '{"run_id": ' >"$RES/broken/summary.json"
echo '{"hello": 1}' >"$RES/notours/summary.json"
expect_exit 0 "$KVBENCH" summary "$RES/*/summary.json"
grep -q "skipping .*broken/summary.json" <<<"$ERR" || fail "malformed not reported: $ERR"
grep -q "skipping .*notours/summary.json: not a kvbench summary" <<<"$ERR" || fail "foreign not reported"
[[ $(grep -c '_t1' <<<"$OUT") -eq 5 ]] || fail "good rows lost"
expect_exit 1 "$KVBENCH" summary "$TMP/nothing-here/*/summary.json"
# a user's old runs (the reference harness's) and new ones (kvbench's) in one table
REF="$SRC/tests/fixtures/reference/runs"
expect_exit 0 "$KVBENCH" summary "$REF" "$RES/short_c1_t1" "$RES/eviction_replay_t1"
for row in 'eviction_replay_X .*yes .*disk_rehydrate_detected' 'reuse_verify_X .*yes .*prefix_reuse_detected' \
  'nometrics .*no:kvbm_metrics_unavailable' 'preflight .*no:prompt_preflight_failed' \
  'promptlimit .*no:engine_prompt_limit_exceeded' 'short_c4_X .*yes' '^short_c1_t1 ' '^eviction_replay_t1 '; do
  grep -q "$row" <<<"$OUT" || fail "one table over both: no row '$row' in: $OUT"
done
KVBENCH="$KVBENCH" expect_exit 0 bash "$SRC/scripts/bench_results_summary.sh" "$REF/*/summary.json" "$RES/short_c1_t1"
[[ $(grep -c '_X \|^short_c1_t1 \|^nometrics\|^preflight\|^promptlimit' <<<"$OUT") -eq 7 ]] ||
  fail "bench_results_summary.sh over both: $OUT"
stop_engine
echo "workflow: ok"
