#!/usr/bin/env bash
# `kvbench run` end to end against `kvbench serve` (real processes, tiny profile): the three
# scenarios and their verdicts, artifacts and summary keys, the runbook's jq checks, and every
# invalidation rule.
source "$(dirname "$0")/lib.sh"

CACHE="$TMP/kvbm"
if [[ $(findmnt -n -o FSTYPE -T "$TMP") == tmpfs ]]; then
  CACHE="$SRC/build-e2e-kvbm-run-$$"
  trap 'rm -rf "$CACHE"; cleanup' EXIT
fi
RES="$TMP/results"

start_engine --profile tiny --kv-mode cpu_disk --gpu-cache-blocks 1024 --cpu-cache-blocks 2048 \
  --disk-cache-blocks 65536 --disable-disk-offload-filter --disk-cache-dir "$CACHE" --speedup 50

kv() { echo --kvbm-metrics-url "$METRICS" --kvbm-cache-dir "$CACHE" --results-root "$RES"; }

# --- 9a: reuse_verify --------------------------------------------------------------------------
expect_exit 0 "$KVBENCH" run --base-url "$BASE" $(kv) --kv-mode cpu_disk --scenario reuse_verify \
  --reuse-prompt-set short --reuse-repeat-count 3 --max-tokens 64 --temperature 0 --top-p 1 \
  --request-seed 1337 --stop "<|eot_id|>" --run-id "reuse_verify_test"
S="$RES/reuse_verify_test/summary.json"
[[ $(jq -r .overall_summary.reuse_verify_signal_kvbm.signal "$S") == prefix_reuse_detected ]] || fail "reuse signal"
[[ $(jq -r .request_identity.reuse_verify_identity.verdict "$S") == identical_inputs_confirmed ]] || fail "identity"
# the runbook's jq line prints two non-null values
out=$(jq '.overall_summary.reuse_verify_signal_kvbm, .request_identity.reuse_verify_identity' "$RES"/reuse_verify_*/summary.json)
grep -q '^null$' <<<"$out" && fail "runbook 9a jq printed null"
[[ $(wc -l <"$RES/reuse_verify_test/requests.jsonl") -eq 3 ]] || fail "reuse rows"

# --- 9: eviction_replay, A pushed out of G1 and G2, read back from disk -------------------------
# What the engine itself read from its block device (/proc/<pid>/io read_bytes; the device-wide
# counters move with every other process on the machine, so the test asserts nothing on them).
engine_read_bytes() { awk '$1 == "read_bytes:" { print $2 }' "/proc/$ENGINE_PID/io" 2>/dev/null || true; }
r0=$(engine_read_bytes)
expect_exit 0 "$KVBENCH" run --base-url "$BASE" $(kv) --kv-mode cpu_disk --scenario eviction_replay \
  --warmup 2 --eviction-a-requests 6 --eviction-b-requests 12 --eviction-a-concurrency 2 \
  --eviction-b-concurrency 4 --long-range 6000:7600 --max-tokens 32 --temperature 0.7 \
  --stop "<|eot_id|>" --stream --run-id "eviction_replay_test"
S="$RES/eviction_replay_test/summary.json"
[[ $(jq -r .run_valid "$S") == true ]] || fail "eviction run invalid: $(jq -c .invalid_details "$S")"
[[ $(jq -r .overall_summary.eviction_replay_signal_kvbm.signal "$S") == disk_rehydrate_detected ]] ||
  fail "kvbm signal: $(jq -c .overall_summary.eviction_replay_signal_kvbm "$S")"
[[ $(jq -r '.overall_summary.eviction_replay_signal_kvbm.replay_onboard_blocks_d2d > 0' "$S") == true ]] || fail "no d2d in replay"
r1=$(engine_read_bytes)
# the device-wide verdict is computed (its value depends on the machine's other readers too)
jq -e '.overall_summary.eviction_replay_signal_io | (.signal | IN("possible_readback",
  "weak_read_signal", "no_clear_readback")) and (.replay_read_mib | type == "number")' "$S" \
  >/dev/null || fail "io signal: $(jq -c .overall_summary.eviction_replay_signal_io "$S")"
if grep -q 'disk O_DIRECT' "$ENGINE_LOG" && [[ -n $r0 && -n $r1 ]]; then
  # with O_DIRECT the engine's block reads reach the device: at least what its KV counters say
  # it read back from disk in replay_A
  want=$(jq '[.phase_summaries[] | select(.phase=="replay_A")][0].kvbm_metrics_delta.kvbm_disk_bytes_read_delta' "$S")
  ((want > 0 && r1 - r0 >= want)) ||
    fail "the engine read $((r1 - r0)) bytes from its device; its counters say $want in replay_A"
fi
out=$(jq '.run_valid, .overall_summary.eviction_replay_signal_kvbm, .overall_summary.eviction_replay_signal_io' "$RES"/eviction_replay_*/summary.json)
grep -q '^null$' <<<"$out" && fail "runbook 9 jq printed null"
[[ $(jq -r '.phase_summaries | map(.phase) | join(",")' "$S") == "warmup,warm_A,pressure_B,replay_A" ]] || fail "phases"
[[ $(jq '.overall_summary.total_requests' "$S") -eq 24 ]] || fail "overall excludes warmup"
grep -q "disk_rehydrate_detected" "$RES/eviction_replay_test/report.md" || fail "report lacks the verdict"
grep -q "from disk" "$RES/eviction_replay_test/report.md" || fail "report lacks the KV story"

# --- 7: standard --stream: TTFT, ITL, every key of SPEC 5.3 -------------------------------------
expect_exit 0 "$KVBENCH" run --base-url "$BASE" $(kv) --kv-mode cpu_disk --scenario standard \
  --prompt-set short --requests 12 --warmup 3 --concurrency 4 --max-tokens 24 --temperature 0.7 \
  --stop "<|eot_id|>" --stream --store-responses --api-key sk-very-secret-42 --variant-tag e2e \
  --run-id "short_c4_test"
D="$RES/short_c4_test"
S="$D/summary.json"
for k in run_id created_utc run_valid invalid_reason invalid_details model_id model_count_end scenario \
  stream kv_mode variant_tags phase_summaries overall_summary kvbm_metrics request_identity fingerprint notes; do
  jq -e "has(\"$k\")" "$S" >/dev/null || fail "summary.json lacks $k"
done
for k in phase concurrency requests duration_s total_requests ok_requests error_requests error_rate \
  req_per_s input_tokens_per_s_est output_tokens_per_s_est latency_ms ttft_ms itl_ms tpot_ms \
  kvbm_metrics_delta block_device io_delta; do
  jq -e ".phase_summaries[1] | has(\"$k\")" "$S" >/dev/null || fail "phase summary lacks $k"
done
for k in min p50 p90 p95 p99 max mean; do
  jq -e ".overall_summary.ttft_ms | has(\"$k\")" "$S" >/dev/null || fail "ttft_ms lacks $k"
done
jq -e '.kvbm_metrics | has("available") and has("snapshot_count") and has("phase_deltas") and has("kv_mode") and has("rollup")' "$S" >/dev/null || fail "kvbm_metrics keys"
jq -e '.kv_mode | has("mode") and has("kvbm_enabled") and has("cpu_cache_gb") and has("disk_cache_gb") and (.diagnostic | has("disable_partial_reuse"))' "$S" >/dev/null || fail "kv_mode keys"
[[ $(wc -l <"$D/requests.jsonl") -eq 15 ]] || fail "want 15 rows"
[[ $(jq -s '[.[] | select(.ttft_ms == null or (.itl_ms | length) == 0)] | length' "$D/requests.jsonl") -eq 0 ]] || fail "rows without TTFT/ITL"
[[ $(jq -s '[.[] | select(.usage_completion_tokens != .output_tokens_est)] | length' "$D/requests.jsonl") -eq 0 ]] || fail "usage != estimate"
for k in request_index phase worker_idx start_ts end_ts latency_ms ttft_ms itl_ms tpot_ms status_code request_id \
  response_id prompt_id prompt_set prompt_target_tokens prompt_tokens_est usage_prompt_tokens \
  usage_completion_tokens cached_tokens prompt_sha256 generation_params_sha256 request_identity_sha256 \
  request_payload_sha256 generation_params output_len_chars output_tokens_est error stream response_path response_header_hints; do
  jq -e "has(\"$k\")" <(head -1 "$D/requests.jsonl") >/dev/null || fail "row lacks $k"
done
[[ $(ls "$D/responses" | wc -l) -eq 15 ]] || fail "responses not stored"
[[ $(jq -r '.variant_tags[0]' "$S") == e2e ]] || fail "variant tag"
[[ $(wc -l <"$D/prompts_manifest.jsonl") -eq 15 ]] || fail "manifest rows"
grep -rq "sk-very-secret-42" "$D" && fail "the API key leaked into an artifact"
jq -e '.args.concurrency == 4 and .phases[1].name == "main" and .api_key_set' "$D/config.json" >/dev/null || fail "config.json"
[[ $(jq '.overall_summary.ttft_ms.p50 > 0 and .overall_summary.itl_ms.p50 >= 0' "$S") == true ]] || fail "ttft stats"

# --- 8: long prompts within the engine's limit ---------------------------------------------------
expect_exit 0 "$KVBENCH" run --base-url "$BASE" $(kv) --kv-mode cpu_disk --scenario standard \
  --prompt-set long --long-range 6000:7600 --requests 3 --warmup 1 --concurrency 2 --max-tokens 16 \
  --temperature 0.7 --stop "<|eot_id|>" --run-id "long_c2_test"
[[ $(jq '[.phase_summaries[1].total_requests, .phase_summaries[1].error_requests] == [3,0]' "$RES/long_c2_test/summary.json") == true ]] || fail "long run"

# --- refusals: existing run directory, bad run id, bad flags -----------------------------------
expect_exit 2 "$KVBENCH" run --base-url "$BASE" $(kv) --run-id "long_c2_test" --requests 1
one_line "$ERR"; grep -q "already exists" <<<"$ERR" || fail "existing dir: $ERR"
expect_exit 2 "$KVBENCH" run --base-url "$BASE" $(kv) --run-id "../escape"
one_line "$ERR"; grep -q -- "--run-id" <<<"$ERR" || fail "bad run id: $ERR"
[[ ! -e "$TMP/escape" ]] || fail "wrote outside the results root"
expect_exit 2 "$KVBENCH" run --short-range 10:5
expect_exit 2 "$KVBENCH" run --scenario nope
expect_exit 2 "$KVBENCH" run --base-url ftp://x

# --- preflight: prompts over the ceiling never reach the server ---------------------------------
before=$(metric dynamo_frontend_requests_total "$BASE/metrics")
expect_exit 1 "$KVBENCH" run --base-url "$BASE" $(kv) --prompt-set long --long-range 9000:9500 \
  --requests 2 --warmup 0 --run-id preflight_test
S="$RES/preflight_test/summary.json"
[[ $(jq -r .invalid_reason "$S") == prompt_preflight_failed ]] || fail "preflight reason"
# invalid_details: strings, as the reference writes them; kvbench's structured details beside
[[ $(jq '.invalid_details | length' "$S") -eq 2 ]] || fail "offenders listed: $(jq -c .invalid_details "$S")"
jq -e '.invalid_details[0] | test("^main-00000: estimated_tokens=[0-9]+ exceeds ceiling=[0-9]+$")' "$S" >/dev/null ||
  fail "detail string: $(jq -c '.invalid_details[0]' "$S")"
[[ $(jq -r '.invalid_details_kvbench[0].reason' "$S") == prompt_preflight_failed ]] || fail "structured details"
[[ $(jq -r '.overall_summary.excluded' "$S") == true ]] || fail "overall not excluded"
[[ ! -s "$RES/preflight_test/requests.jsonl" ]] || fail "requests were sent"
[[ $(metric dynamo_frontend_requests_total "$BASE/metrics") -eq $before ]] || fail "server saw requests"
expect_exit 1 "$KVBENCH" run --base-url "$BASE" $(kv) --max-tokens 8000 --requests 1 --warmup 0 --run-id ceiling_test
[[ $(jq -r .invalid_reason "$RES/ceiling_test/summary.json") == prompt_preflight_failed ]] || fail "ceiling <= 0"

# --- 500s are recorded per request; the run goes on ---------------------------------------------
stop_engine
start_engine --profile tiny --kv-mode off --fail-rate 0.5 --speedup 0 --seed 3
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --results-root "$RES" \
  --kv-mode off --requests 20 --warmup 0 --concurrency 3 --max-tokens 4 --max-error-rate 1 \
  --run-id errors_test
R="$RES/errors_test/requests.jsonl"
[[ $(wc -l <"$R") -eq 20 ]] || fail "rows"
n500=$(jq -s '[.[] | select(.status_code == 500)] | length' "$R")
(( n500 > 0 && n500 < 20 )) || fail "500s: $n500"
jq -s -e '[.[] | select(.status_code == 500)][0].error | startswith("HTTP 500: ")' "$R" >/dev/null || fail "error text"
[[ $(jq '.phase_summaries[0].error_requests' "$RES/errors_test/summary.json") -eq $n500 ]] || fail "error count"
[[ $(jq '.phase_summaries[0].models_visible_after_phase' "$RES/errors_test/summary.json") -eq 1 ]] || fail "models rechecked"
stop_engine

# --- the engine's prompt limit -> engine_prompt_limit_exceeded, later phases skipped -----------
start_engine --profile tiny --kv-mode off --max-num-tokens 600 --speedup 0
expect_exit 1 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --results-root "$RES" \
  --kv-mode off --requests 2 --warmup 2 --run-id limit_test
S="$RES/limit_test/summary.json"
[[ $(jq -r .invalid_reason "$S") == engine_prompt_limit_exceeded ]] || fail "limit: $(jq -c .invalid_details "$S")"
[[ $(jq '[.phase_summaries[] | select(.phase=="main")][0].skipped' "$S") == true ]] || fail "main not skipped"
grep -q max_num_tokens "$RES/limit_test/requests.jsonl" || fail "row lacks the server's message"
stop_engine

# --- the model drops -> model_dropped ------------------------------------------------------------
start_engine --profile tiny --kv-mode off --drop-model-after 3 --speedup 0
# --add-bos yes: no BOS probe, so the engine's first 3 completions are the run's
expect_exit 1 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --results-root "$RES" \
  --kv-mode off --requests 6 --warmup 0 --max-tokens 4 --add-bos yes --run-id drop_test
S="$RES/drop_test/summary.json"
[[ $(jq -r .invalid_reason "$S") == model_dropped ]] || fail "drop: $(jq -c .invalid_details "$S")"
[[ $(jq .model_count_end "$S") -eq 0 ]] || fail "model_count_end"
[[ $(jq -s '[.[] | select(.status_code == 404)] | length' "$RES/drop_test/requests.jsonl") -eq 3 ]] || fail "404 rows"
stop_engine

# --- no metrics endpoint and no cached tokens in the responses -> kvbm_metrics_unavailable, unless
# allowed (with cached tokens in the responses the run is valid: tests/e2e/validity.sh)
start_engine --profile tiny --kv-mode cpu_only --metrics-port 0 --speedup 0 \
  --omit-response-field usage.prompt_tokens_details
NOPE="http://127.0.0.1:$(( ${BASE##*:} == 1 ? 2 : 1 ))/metrics"
expect_exit 1 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$NOPE" --results-root "$RES" \
  --kv-mode cpu_only --requests 2 --warmup 0 --max-tokens 4 --kvbm-metrics-timeout-s 1 --run-id nometrics_test
[[ $(jq -r .invalid_reason "$RES/nometrics_test/summary.json") == kvbm_metrics_unavailable ]] || fail "metrics reason"
[[ $(jq -s '.[0].success' "$RES/nometrics_test/kvbm_metrics_snapshots.jsonl") == false ]] || fail "failed snapshots not recorded"
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$NOPE" --results-root "$RES" \
  --kv-mode cpu_only --requests 2 --warmup 0 --max-tokens 4 --kvbm-metrics-timeout-s 1 \
  --allow-missing-kvbm-metrics --run-id nometrics_allowed_test
[[ $(jq -r .kvbm_metrics.available "$RES/nometrics_allowed_test/summary.json") == false ]] || fail "available"

# --- model never resolves; nothing listening -----------------------------------------------------
stop_engine
DEAD="http://127.0.0.1:$(( ${BASE##*:} ))"
expect_exit 1 "$KVBENCH" run --base-url "$DEAD" --results-root "$RES" --kv-mode off --requests 1 \
  --model-resolve-timeout-s 1 --model-resolve-poll-s 0.2 --run-id noserver_test
[[ $(jq -r .invalid_reason "$RES/noserver_test/summary.json") == server_unreachable ]] || fail "no server"
# with a model id: one look at /v1/models before anything is sent
expect_exit 1 "$KVBENCH" run --base-url "$DEAD" --results-root "$RES" --kv-mode off --requests 3 \
  --warmup 0 --model-id some/model --run-id refused_test
[[ $(jq -r .invalid_reason "$RES/refused_test/summary.json") == server_unreachable ]] || fail "refused"
[[ $(wc -l <"$RES/refused_test/requests.jsonl") -eq 0 ]] || fail "refused: requests were sent"

# --- SIGINT mid-run -> interrupted, one row per request sent ------------------------------------
# (--add-bos yes: no BOS probe, so every completion the engine saw is a row)
start_engine --profile tiny --kv-mode off --speedup 1 --hardware gb10
"$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --results-root "$RES" --kv-mode off \
  --requests 500 --warmup 0 --concurrency 4 --max-tokens 200 --stream --add-bos yes \
  --run-id sigint_test \
  >"$TMP/sigint.out" 2>&1 &
rp=$!
PIDS+=("$rp")
for _ in $(seq 100); do [[ -s "$RES/sigint_test/requests.jsonl" ]] && break; sleep 0.1; done
kill -INT "$rp"
rc=0; wait "$rp" || rc=$?
[[ $rc -eq 1 ]] || { cat "$TMP/sigint.out"; fail "interrupted run exited $rc"; }
S="$RES/sigint_test/summary.json"
[[ $(jq -r .invalid_reason "$S") == interrupted ]] || fail "reason"
rows=$(wc -l <"$RES/sigint_test/requests.jsonl")
sleep 0.5
seen=$(metric dynamo_frontend_requests_total "$BASE/metrics")
[[ $rows -eq $seen ]] || fail "rows $rows != requests the engine saw $seen"
(( rows < 500 )) || fail "the run was not interrupted"
[[ -s "$RES/sigint_test/report.md" ]] || fail "no report after interrupt"
echo "run: ok"
