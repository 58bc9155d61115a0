#!/usr/bin/env bash
# Validity round 2 (SPEC §4.5) against real processes: a server that dies mid-phase (a fixed count
# and a --duration-s run), one that restarts, one that never listened; the error-rate rule; reuse
# read from the responses' own fields when no metrics endpoint answers (kvbench serve's llamacpp
# personality without timings.cache_n, its dynamo personality, and a server that is not kvbench);
# the server's context limit and --pressure auto's device-tier check stopping a run before it
# sends; the engine identity and the KV mode where the modes mean nothing.
source "$(dirname "$0")/lib.sh"

RES="$TMP/results"
DEAD="http://127.0.0.1:1/metrics" # nothing listens on port 1
run() { "$KVBENCH" run --results-root "$RES" --no-progress "$@"; }
rows() { wc -l <"$RES/$1/requests.jsonl"; }
# kill_at_first_row ID — SIGKILL the engine once run ID has written a row (its phase is under way,
# however long a busy machine took to get there); after 30 s without one, anyway
kill_at_first_row() {
  for _ in $(seq 600); do [[ -s "$RES/$1/requests.jsonl" ]] && break; sleep 0.05; done
  kill -KILL "$ENGINE_PID"
}

# --- killed mid-phase (a fixed count): server_unreachable, exit 1, a bounded number of rows ------
start_engine --profile tiny --kv-mode cpu_disk --disk-cache-dir "$TMP/kv1" --speedup 20
kill_at_first_row killed &
PIDS+=($!)
t0=$(date +%s)
expect_exit 1 run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --requests 400 --warmup 0 \
  --concurrency 4 --stream --max-tokens 32 --unreachable-timeout-s 3 --run-id killed
t1=$(date +%s)
S="$RES/killed/summary.json"
[[ $(jq -r .invalid_reason "$S") == server_unreachable ]] || fail "killed: $(jq -c .invalid_details "$S")"
jq -e '.invalid_details_kvbench[] | select(.reason == "server_unreachable") | .phase == "main" and
  .requests_failed >= 3 and .gave_up == true and .recovered == false and .health_status == 0 and
  (.went_away_utc | test("^20"))' "$S" >/dev/null || fail "unreachable detail: $(jq -c .invalid_details_kvbench "$S")"
# back-off: after the streak, one probe per back-off step (100 ms doubling to 2 s) for 3 s
failed=$(jq -s '[.[] | select(.error != null)] | length' "$RES/killed/requests.jsonl")
((failed <= 4 + 12)) || fail "killed: $failed error rows in a 3 s outage"
((t1 - t0 < 20)) || fail "killed: the run took $((t1 - t0)) s"
[[ $(jq -r '.phase_summaries[] | select(.phase=="main") | .total_requests < 400' "$S") == true ]] || fail "killed: the phase did not end early"
grep -q 'server_unreachable: the server stopped answering in phase main' "$RES/killed/report.md" || fail "killed: report reason text"
grep -q '`?`' "$RES/killed/report.md" && fail "killed: report prints ? for a reason"

# --- the same with --duration-s: the phase ends at the unreachable timeout, rows stay bounded ---
start_engine --profile tiny --kv-mode cpu_disk --disk-cache-dir "$TMP/kv2" --speedup 20
kill_at_first_row killed_duration &
PIDS+=($!)
expect_exit 1 run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --duration-s 30 --warmup 0 \
  --concurrency 8 --stream --max-tokens 32 --unreachable-timeout-s 2 --run-id killed_duration
S="$RES/killed_duration/summary.json"
[[ $(jq -r .invalid_reason "$S") == server_unreachable ]] || fail "duration: $(jq -c .invalid_details "$S")"
failed=$(jq -s '[.[] | select(.error != null)] | length' "$RES/killed_duration/requests.jsonl")
((failed <= 8 + 12)) || fail "duration: $failed error rows in a 2 s outage"
jq -e '.phase_summaries[] | select(.phase=="main") | .duration_s < 15' "$S" >/dev/null || fail "duration: phase not ended"

# --- gone at the end: a server that exits during the last requests, too few failed in a row for an
# outage (a stream its exit cut off had its 200 already), and answers nothing after the last
# phase: the run is server_unreachable all the same, at concurrency 1 and 2 (2 errors in 60, under
# the 5 % error-rate bound: this rule alone makes it invalid)
for conc in 1 2; do
  pf="$TMP/dieat-$conc.port"
  perl "$SRC/tests/e2e/hostile_server.pl" die-at "$pf" 59 &
  PIDS+=($!)
  for _ in $(seq 100); do [[ -s $pf ]] && break; sleep 0.05; done
  expect_exit 1 run --base-url "http://127.0.0.1:$(cat "$pf")" --kv-mode off --engine dynamo \
    --kvbm-metrics-url "$DEAD" --allow-missing-kvbm-metrics --tokenizer heuristic --add-bos no \
    --requests 60 --warmup 0 --concurrency "$conc" --stream --max-tokens 8 --run-id "gone_end_$conc"
  S="$RES/gone_end_$conc/summary.json"
  jq -e '.invalid_reason == "server_unreachable" and .model_count_end == null and
    (.invalid_details_kvbench[] | select(.reason == "server_unreachable") | .phase == "run_end"
      and (.message | test("did not answer after the last phase")))' "$S" >/dev/null ||
    fail "gone at the end (concurrency $conc): $(jq -c '[.invalid_reason, .invalid_details_kvbench]' "$S")"
  ok=$(jq -s 'map(select(.error == null)) | length' "$RES/gone_end_$conc/requests.jsonl")
  ((ok >= 57 && ok <= 58)) || fail "gone at the end (concurrency $conc): $ok answers, expected 58 (57 at 2)"
done

# --- restarted mid-run on the same port: it came back, the run is still invalid ------------------
start_engine --profile tiny --kv-mode cpu_disk --disk-cache-dir "$TMP/kv3" --speedup 20
PORT=${BASE##*:}
MPORT=$(sed -E 's#.*:([0-9]+)/metrics#\1#' <<<"$METRICS")
run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --duration-s 8 --warmup 0 --concurrency 2 \
  --stream --max-tokens 16 --unreachable-timeout-s 20 --run-id restarted >"$TMP/restarted.out" 2>&1 &
RUN_PID=$!
PIDS+=("$RUN_PID")
for _ in $(seq 200); do [[ -s "$RES/restarted/requests.jsonl" ]] && break; sleep 0.05; done
kill -KILL "$ENGINE_PID"
sleep 1
"$KVBENCH" serve --port "$PORT" --metrics-port "$MPORT" --profile tiny --kv-mode cpu_disk \
  --disk-cache-dir "$TMP/kv3b" --speedup 20 >"$TMP/restarted.log" 2>&1 &
PIDS+=($!)
rc=0
wait "$RUN_PID" || rc=$?
[[ $rc -eq 1 ]] || { cat "$TMP/restarted.out" >&2; fail "restarted: exit $rc"; }
S="$RES/restarted/summary.json"
[[ $(jq -r .invalid_reason "$S") == server_unreachable ]] || fail "restarted: $(jq -c .invalid_details "$S")"
jq -e '.invalid_details_kvbench[] | select(.reason == "server_unreachable") | .recovered == true and
  .gave_up == false and .away_s > 0.5 and .away_s < 10 and .requests_not_sent == null' "$S" >/dev/null ||
  fail "restarted detail: $(jq -c .invalid_details_kvbench "$S")"
# the run went on against the server that came back
went=$(jq -r '.invalid_details_kvbench[] | select(.reason == "server_unreachable") | .went_away_utc' "$S")
after=$(jq -s --arg t "$went" '[.[] | select(.error == null and .start_ts > $t)] | length' \
  "$RES/restarted/requests.jsonl")
((after > 0)) || fail "restarted: no request succeeded after the server came back"

# --request-rate inf with --duration-s has no schedule to end: a usage error, not a hang
expect_exit 2 run --base-url http://127.0.0.1:1 --request-rate inf --duration-s 5 --run-id inf
one_line "$ERR"

# --- nothing listening: server_unreachable in preflight, nothing sent ---------------------------
NOPORT=${DEAD%/metrics}
expect_exit 1 run --base-url "$NOPORT" --model-resolve-timeout-s 1 --model-resolve-poll-s 0.2 \
  --requests 4 --run-id nothing
S="$RES/nothing/summary.json"
[[ $(jq -r .invalid_reason "$S") == server_unreachable ]] || fail "nothing: $(jq -c .invalid_details "$S")"
[[ $(rows nothing) -eq 0 ]] || fail "nothing: requests were sent"
grep -q 'server_unreachable: nothing answered at' "$RES/nothing/report.md" || fail "nothing: report reason"
grep -q '`?`' "$RES/nothing/report.md" && fail "nothing: report prints ?"
jq -e '.engine.name == "unknown" and (.engine.evidence | test("nothing identified"))' "$S" >/dev/null ||
  fail "nothing: engine $(jq -c .engine "$S")"
# the same with an explicit model id: one look, not a wait
expect_exit 1 run --base-url "$NOPORT" --model-id m --requests 4 --run-id nothing_id
[[ $(jq -r .invalid_reason "$RES/nothing_id/summary.json") == server_unreachable ]] || fail "nothing_id"

# --- error rate: a measured phase above --max-error-rate is invalid; a looser bound is not -------
start_engine --profile tiny --kv-mode cpu_disk --disk-cache-dir "$TMP/kv4" --speedup 20 --fail-rate 0.3 --seed 7
expect_exit 1 run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --requests 40 --warmup 0 \
  --concurrency 2 --max-tokens 8 --run-id errors
S="$RES/errors/summary.json"
[[ $(jq -r .invalid_reason "$S") == error_rate_exceeded ]] || fail "errors: $(jq -c .invalid_details "$S")"
jq -e '.invalid_details_kvbench[] | select(.reason == "error_rate_exceeded") | .phase == "main" and
  .errors > 2 and .requests == 40 and (.first_errors | length) >= 1 and .max_error_rate == 0.05' "$S" \
  >/dev/null || fail "errors detail: $(jq -c .invalid_details_kvbench "$S")"
expect_exit 0 run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --requests 40 --warmup 0 \
  --concurrency 2 --max-tokens 8 --max-error-rate 0.9 --run-id errors_allowed
kill "$ENGINE_PID"
# warmup errors never count, at the default bound (5 %): the warmup fails some of its 20, the one
# measured request succeeds (the engine's faults follow its --seed, so each run is the same)
start_engine --profile tiny --kv-mode cpu_disk --disk-cache-dir "$TMP/kv4w" --speedup 20 --fail-rate 0.3 --seed 7
run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --requests 1 --warmup 20 --max-tokens 8 \
  --run-id warmup_errors >"$TMP/warmup_errors.out" 2>&1 || true
W="$RES/warmup_errors/requests.jsonl"
werr=$(jq -s 'map(select(.phase == "warmup" and .error != null)) | length' "$W")
merr=$(jq -s 'map(select(.phase == "main" and .error != null)) | length' "$W")
((werr > 1 && merr == 0)) || fail "warmup_errors: the case needs warmup errors and a measured success: $werr, $merr"
jq -e '.run_valid and .invalid_reason == null' "$RES/warmup_errors/summary.json" >/dev/null ||
  fail "warmup errors counted: $(jq -c .invalid_details "$RES/warmup_errors/summary.json")"
kill "$ENGINE_PID"

# --- reuse from the responses: llama.cpp without timings.cache_n, no metrics endpoint -----------
start_engine --profile tiny --personality llamacpp --omit-response-field timings.cache_n \
  --disk-cache-dir "$TMP/kv5" --speedup 20
expect_exit 0 run --base-url "$BASE" --kvbm-metrics-url "$DEAD" --scenario reuse_verify \
  --max-tokens 16 --run-id lc_reuse
S="$RES/lc_reuse/summary.json"
jq -e '.run_valid and .overall_summary.reuse_verify_signal_kvbm.signal == "prefix_reuse_detected"' "$S" \
  >/dev/null || fail "lc reuse: $(jq -c '[.invalid_details, .overall_summary.reuse_verify_signal_kvbm.signal]' "$S")"
jq -e -s 'map(select(.request_index > 1)) | length > 0 and all(.cached_tokens > 0 and
  .cached_tokens_source == "usage.prompt_tokens-timings.prompt_n")' "$RES/lc_reuse/requests.jsonl" >/dev/null ||
  fail "lc reuse rows"
jq -e '.engine.title == "kvbench serve (llamacpp personality)" and .kv_mode.mode == "cpu_disk"' "$S" >/dev/null ||
  fail "lc engine: $(jq -c .engine.title "$S")"
expect_exit 0 run --base-url "$BASE" --kvbm-metrics-url "$DEAD" --scenario multi_turn --users 2 \
  --rounds 2 --system-prompt-tokens 64 --history-tokens 256 --answer-tokens 16 --run-id lc_multi
jq -e '.multi_turn.rounds[1].hit_rate > 0.5' "$RES/lc_multi/summary.json" >/dev/null ||
  fail "lc multi_turn: $(jq -c .multi_turn.rounds "$RES/lc_multi/summary.json")"
printf '%s\n' '{"timestamp":0,"input_length":64,"output_length":8,"hash_ids":[1,2]}' \
  '{"timestamp":300,"input_length":64,"output_length":8,"hash_ids":[1,2]}' >"$TMP/t.jsonl"
expect_exit 0 run --base-url "$BASE" --kvbm-metrics-url "$DEAD" --scenario trace --trace "$TMP/t.jsonl" \
  --trace-block-tokens 32 --warmup 0 --run-id lc_trace
jq -e '.trace.reused_tokens > 0' "$RES/lc_trace/summary.json" >/dev/null ||
  fail "lc trace: $(jq -c .trace "$RES/lc_trace/summary.json")"

# --- the context limit it publishes (/props) stops a run before it sends -------------------------
kill "$ENGINE_PID"
start_engine --profile tiny --personality llamacpp --max-context 2048 --disk-cache-dir "$TMP/kv6"
expect_exit 1 run --base-url "$BASE" --requests 4 --warmup 0 --short-range 1800:3000 --max-tokens 64 \
  --run-id ctx
S="$RES/ctx/summary.json"
[[ $(jq -r .invalid_reason "$S") == prompt_preflight_failed ]] || fail "ctx: $(jq -c .invalid_details "$S")"
[[ $(rows ctx) -eq 0 ]] || fail "ctx: requests were sent"
jq -e '.server_context_limit == {"tokens": 2048, "source": "GET /props default_generation_settings.n_ctx"}' \
  "$RES/ctx/config.json" >/dev/null || fail "ctx config: $(jq -c .server_context_limit "$RES/ctx/config.json")"
expect_exit 0 run --base-url "$BASE" --requests 2 --warmup 0 --short-range 512:1024 --max-tokens 64 \
  --kvbm-metrics-url "$DEAD" --run-id ctx_fits
kill "$ENGINE_PID"

# --- --pressure auto on a device tier its prompts cannot fit: refused before sending -------------
start_engine --profile tiny --gpu-cache-blocks 64 --block-size 32 --cpu-cache-blocks 128 \
  --disk-cache-blocks 1024 --disk-cache-dir "$TMP/kv7"
expect_exit 1 run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --scenario eviction_replay \
  --pressure auto --long-range 3000:3400 --eviction-a-requests 4 --warmup 0 --max-tokens 32 --run-id tight
S="$RES/tight/summary.json"
[[ $(jq -r .invalid_reason "$S") == prompt_preflight_failed ]] || fail "tight: $(jq -c .invalid_details "$S")"
[[ $(rows tight) -eq 0 ]] || fail "tight: requests were sent"
jq -e '.pressure_plan.feasible == false and .pressure_plan.fits_device == false and
  (.pressure_plan.reason | test("device tier holds 64"))' "$RES/tight/config.json" >/dev/null || fail "tight plan"

# --- dynamo personality, no metrics endpoint: valid from usage cached tokens ---------------------
kill "$ENGINE_PID"
start_engine --profile tiny --disk-cache-dir "$TMP/kv8" --speedup 20
expect_exit 0 run --base-url "$BASE" --kvbm-metrics-url "$DEAD" --scenario reuse_verify --max-tokens 16 \
  --run-id dyn_nometrics
S="$RES/dyn_nometrics/summary.json"
jq -e '.run_valid and .overall_summary.reuse_verify_signal_kvbm.signal == "prefix_reuse_detected" and
  .overall_summary.reuse_verify_signal_kvbm.evidence_source == "per_request_cached_tokens" and
  any(.warnings[]; .code == "tier_detail_unavailable")' "$S" >/dev/null || fail "dynamo without metrics"
# and without any per-response evidence it stays invalid (--omit-response-field)
kill "$ENGINE_PID"
start_engine --profile tiny --omit-response-field usage.prompt_tokens_details --disk-cache-dir "$TMP/kv9" --speedup 20
expect_exit 1 run --base-url "$BASE" --kvbm-metrics-url "$DEAD" --scenario reuse_verify --max-tokens 16 \
  --run-id dyn_blind
[[ $(jq -r .invalid_reason "$RES/dyn_blind/summary.json") == kvbm_metrics_unavailable ]] || fail "blind run"
kill "$ENGINE_PID"

# --- a server that is not kvbench: its identity, and KV modes that mean nothing there ------------
for owner in llamacpp someone; do
  pf="$TMP/foreign-$owner.port"
  perl "$SRC/tests/e2e/foreign_server.pl" "$owner" "$pf" &
  PIDS+=($!)
  for _ in $(seq 100); do [[ -s $pf ]] && break; sleep 0.05; done
  FB="http://127.0.0.1:$(cat "$pf")"
  expect_exit 0 run --base-url "$FB" --kvbm-metrics-url "$DEAD" --scenario reuse_verify --max-tokens 8 \
    --tokenizer heuristic --add-bos no --run-id "foreign_$owner"
  S="$RES/foreign_$owner/summary.json"
  jq -e '.run_valid and .overall_summary.reuse_verify_signal_kvbm.signal == "prefix_reuse_detected"
    and .kv_mode.applies == false and (.kv_mode.not_applicable | test("not applicable on"))' "$S" \
    >/dev/null || fail "foreign $owner: $(jq -c '[.invalid_details, .kv_mode]' "$S")"
  grep -q 'KV mode:\*\* not applicable on' "$RES/foreign_$owner/report.md" || fail "foreign $owner report"
done
# compare of modes there, no restart that sets a mode: both sides ran one configuration, says so
expect_exit 0 "$KVBENCH" compare --base-url "$FB" --kvbm-metrics-url "$DEAD" --skip-ready \
  --scenario reuse_verify --max-tokens 8 --tokenizer heuristic --add-bos no --results-root "$RES" \
  --no-progress --compare-id cmp_foreign
jq -e '.warnings | any(.code == "kv_modes_not_applicable" and (.message | test("same server configuration")))' \
  "$RES/cmp_foreign/comparison.json" >/dev/null || fail "compare warning: $(jq -c .warnings "$RES/cmp_foreign/comparison.json")"
grep -q 'kv_modes_not_applicable' "$RES/cmp_foreign/comparison.md" || fail "compare warning in comparison.md"
# with a restart command that sets the mode, no warning
expect_exit 0 "$KVBENCH" compare --base-url "$FB" --kvbm-metrics-url "$DEAD" --skip-ready \
  --restart-cmd 'true {mode}' --scenario reuse_verify --max-tokens 8 --tokenizer heuristic \
  --add-bos no --results-root "$RES" --no-progress --compare-id cmp_foreign_restart
jq -e '.warnings == []' "$RES/cmp_foreign_restart/comparison.json" >/dev/null || fail "compare: warned with a restart"
jq -e '.engine.name == "llamacpp" and .engine.title == "llama.cpp llama-server"' \
  "$RES/foreign_llamacpp/summary.json" >/dev/null || fail "foreign llamacpp identity"
jq -e '.engine.name == "unknown" and .engine.title == "unknown engine" and
  (.engine.evidence | test("owned_by \"someone\""))' "$RES/foreign_someone/summary.json" >/dev/null ||
  fail "foreign unknown identity: $(jq -c .engine "$RES/foreign_someone/summary.json")"
grep -q 'Dynamo' "$RES/foreign_someone/report.md" && fail "an unknown engine reported as Dynamo"
echo "validity: all checks passed"
