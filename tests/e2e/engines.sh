#!/usr/bin/env bash
# Every engine profile against the embedded engine wearing that engine's personality (SPEC §4.5,
# docs/ENGINES.md): each scenario gives the right verdict, --engine auto names the engine, no
# prompt carries two BOS tokens; and the failure paths: a server stopped mid-run gives
# no_successful_requests (exit 1), a metrics URL serving unrelated metrics is unavailable (never
# "no reuse"), a truncating server gives server_truncated_prompts, a trailing slash and a /v1
# suffix on --base-url work, an unlisted --model-id is a warning.
source "$(dirname "$0")/lib.sh"
RES="$TMP/results"
mkdir -p "$RES"
TIERS=(--kv-mode cpu_disk --gpu-cache-blocks 1024 --cpu-cache-blocks 2048 --disk-cache-blocks 8192
  --disable-disk-offload-filter --speedup 0)
sig() { jq -r "$1" "$RES/$2/summary.json"; }

declare -A REUSE_EVIDENCE=([dynamo]=engine_counters [vllm]=engine_counters [sglang]=engine_counters
  [llamacpp]=per_request_cached_tokens [trtllm]=engine_counters)
declare -A EVICTION=([dynamo]=disk_rehydrate_detected [vllm]=onboard_detected_tier_unknown
  [sglang]=disk_rehydrate_detected [llamacpp]=reuse_in_replay_tier_unknown
  [trtllm]=reuse_in_replay_tier_unknown)

for p in dynamo vllm sglang llamacpp trtllm; do
  start_engine --profile tiny --personality "$p" --disk-cache-dir "$TMP/cache-$p" "${TIERS[@]}"
  # --kvbm-metrics-url as the ready file says (KVBM's port for dynamo, the API port otherwise);
  # the profile must find the same place by itself, so only dynamo gets it.
  mflag=()
  [[ $p == dynamo ]] && mflag=(--kvbm-metrics-url "$METRICS")
  common=(--results-root "$RES" --kv-mode cpu_disk --tokenizer heuristic --max-tokens 16 --stream)

  # reuse_verify, with a trailing slash on --base-url
  expect_exit 0 "$KVBENCH" run --base-url "$BASE/" "${mflag[@]}" "${common[@]}" \
    --scenario reuse_verify --run-id "reuse_$p"
  [[ $(sig .engine.name "reuse_$p") == "$p" ]] || fail "$p: engine detected as $(sig .engine "reuse_$p")"
  [[ $(sig .overall_summary.reuse_verify_signal_kvbm.signal "reuse_$p") == prefix_reuse_detected ]] ||
    fail "$p reuse: $(sig .overall_summary.reuse_verify_signal_kvbm "reuse_$p")"
  [[ $(sig .overall_summary.reuse_verify_signal_kvbm.evidence_source "reuse_$p") == "${REUSE_EVIDENCE[$p]}" ]] ||
    fail "$p reuse evidence: $(sig .overall_summary.reuse_verify_signal_kvbm.evidence_source "reuse_$p")"
  # finish_reason is recorded on every row
  [[ $(jq -s 'map(select(.finish_reason == null)) | length' "$RES/reuse_$p/requests.jsonl") -eq 0 ]] ||
    fail "$p: rows without finish_reason"
  # the BOS decision: servers that add their own get none from the template
  tb=$(jq -r .bos.template_bos "$RES/reuse_$p/config.json")
  if [[ $p == dynamo ]]; then [[ $tb == true ]] || fail "dynamo adds no BOS: template must"
  else [[ $tb == false ]] || fail "$p adds its own BOS: template must not ($(jq -c .bos "$RES/reuse_$p/config.json"))"; fi

  # eviction_replay, with a /v1 suffix on --base-url
  expect_exit 0 "$KVBENCH" run --base-url "$BASE/v1" "${mflag[@]}" "${common[@]}" \
    --scenario eviction_replay --warmup 1 --eviction-a-requests 6 --eviction-b-requests 12 \
    --eviction-a-concurrency 2 --eviction-b-concurrency 4 --long-range 6000:7600 --run-id "evict_$p"
  grep -q "the /v1 suffix was dropped" <<<"$ERR" || fail "no note about the /v1 suffix"
  [[ $(sig .overall_summary.eviction_replay_signal_kvbm.signal "evict_$p") == "${EVICTION[$p]}" ]] ||
    fail "$p eviction: $(sig .overall_summary.eviction_replay_signal_kvbm "evict_$p")"
  if [[ $p == llamacpp || $p == trtllm ]]; then
    # no tier breakdown: the report says what it cannot tell instead of a zero
    grep -q "not reported by this engine" "$RES/evict_$p/report.md" || fail "$p report hides missing fields"
  fi

  # standard
  expect_exit 0 "$KVBENCH" run --base-url "$BASE" "${mflag[@]}" "${common[@]}" --scenario standard \
    --prompt-set short --requests 8 --warmup 1 --concurrency 4 --run-id "std_$p"
  [[ $(sig .run_valid "std_$p") == true ]] || fail "$p standard: $(sig .invalid_details "std_$p")"
  [[ $(sig .overall_summary.ok_requests "std_$p") -eq 8 ]] || fail "$p standard ok requests"

  # never two BOS tokens: the engine warns on every prompt that carried its own
  grep -q "2 BOS tokens" "$ENGINE_LOG" && fail "$p: a prompt carried two BOS tokens"
  stop_engine
done

# --- a metrics URL that serves unrelated metrics: unavailable, never "no reuse" ---------------
start_engine --profile tiny --personality vllm --disk-cache-dir "$TMP/cache-x" "${TIERS[@]}"
expect_exit 1 "$KVBENCH" run --base-url "$BASE" --engine dynamo --kvbm-metrics-url "$BASE/metrics" \
  --results-root "$RES" --kv-mode cpu_disk --tokenizer heuristic --max-tokens 8 --stream \
  --scenario reuse_verify --run-id unrelated
[[ $(sig .invalid_reason unrelated) == kvbm_metrics_unavailable ]] || fail "unrelated: $(sig .invalid_reason unrelated)"
[[ $(sig .overall_summary.excluded unrelated) == true ]] || fail "unrelated: overall not excluded"
grep -q "none of the expected metric families" "$RES/unrelated/kvbm_metrics_snapshots.jsonl" ||
  fail "snapshots do not say the families were missing"
s=$(sig .overall_summary.reuse_verify_signal_kvbm.signal unrelated)
[[ $s == kvbm_metrics_unavailable ]] || fail "unrelated metrics gave the verdict $s"
[[ $(sig '.kvbm_metrics.rollup.matched_tokens_total_delta' unrelated) == null ]] || fail "absent read as a number"

# --- an unlisted --model-id is a warning ---------------------------------------------------------
stop_engine
start_engine --profile tiny --personality llamacpp --kv-mode off --speedup 0
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --model-id not-the-model --results-root "$RES" \
  --kv-mode off --tokenizer heuristic --max-tokens 8 --stream --requests 2 --warmup 0 --run-id unlisted
[[ $(sig '.warnings[0].code' unlisted) == model_not_listed ]] || fail "no model_not_listed warning"
grep -q 'Warning (`model_not_listed`)' "$RES/unlisted/report.md" || fail "warning not atop the report"
stop_engine

# --- --tokenizer server: exact counts from the server's /tokenize ------------------------------
for p in llamacpp vllm; do
  start_engine --profile tiny --personality "$p" --kv-mode off --speedup 0
  expect_exit 0 "$KVBENCH" run --base-url "$BASE" --results-root "$RES" --kv-mode off \
    --tokenizer server --max-tokens 8 --stream --prompt-set long --long-range 3000:3200 \
    --requests 3 --warmup 0 --run-id "tokserver_$p"
  [[ $(jq -r .tokenizer "$RES/tokserver_$p/config.json") == server ]] || fail "$p: tokenizer kind"
  # the server adds its own BOS (and the template none): usage = kvbench's count + 1, exactly
  [[ $(jq -s 'map(select(.usage_prompt_tokens != .prompt_tokens_est + 1)) | length' \
    "$RES/tokserver_$p/requests.jsonl") -eq 0 ]] || fail "$p: server counts differ from usage"
  # prompts cut to their target exactly, as with a tokenizer.json (it overshot by 7-11 tokens)
  [[ $(jq -s 'map(select(.prompt_tokens_est != .target_tokens)) | length' \
    "$RES/tokserver_$p/prompts_manifest.jsonl") -eq 0 ]] ||
    fail "$p: prompts off their targets: $(jq -c '[.target_tokens, .prompt_tokens_est]' "$RES/tokserver_$p/prompts_manifest.jsonl")"
  stop_engine
done
start_engine --profile tiny --personality trtllm --kv-mode off --speedup 0
expect_exit 1 "$KVBENCH" run --base-url "$BASE" --results-root "$RES" --kv-mode off \
  --tokenizer server --requests 1 --warmup 0 --log-level ERROR --run-id tokserver_none
one_line "$ERR"
grep -q "has no usable /tokenize" <<<"$ERR" || fail "no clear error without /tokenize: $ERR"
stop_engine

# --- a server that truncates prompts to its context ----------------------------------------------
# (an old build without /props: the preflight cannot know the context, the responses tell)
start_engine --profile tiny --personality llamacpp --kv-mode off --max-context 2048 --speedup 0 \
  --omit-response-field /props
expect_exit 1 "$KVBENCH" run --base-url "$BASE" --results-root "$RES" --kv-mode off \
  --tokenizer heuristic --max-tokens 8 --stream --prompt-set long --long-range 3000:3500 \
  --requests 4 --warmup 0 --engine-max-input-tokens 8192 --run-id truncated
[[ $(sig .invalid_reason truncated) == server_truncated_prompts ]] || fail "truncation: $(sig .invalid_reason truncated)"
[[ $(jq '.invalid_details_kvbench[0].requests' "$RES/truncated/summary.json") -eq 4 ]] || fail "truncated count"
[[ $(jq -s 'map(select(.server_truncated)) | length' "$RES/truncated/requests.jsonl") -eq 4 ]] || fail "rows not flagged"
stop_engine

# --- the server stops mid-run: nothing measured succeeded, so the run is invalid -----------------
start_engine --profile tiny --kv-mode off --speedup 1
"$KVBENCH" run --base-url "$BASE" --results-root "$RES" --kv-mode off --tokenizer heuristic \
  --max-tokens 400 --stream --requests 20 --warmup 0 --concurrency 2 --timeout-s 30 --unreachable-timeout-s 2 \
  --run-id killed >"$TMP/killed.out" 2>&1 &
RUN_PID=$!
PIDS+=("$RUN_PID")
for _ in $(seq 600); do # up to 30 s: a busy machine may be slow to reach the phase
  [[ -s "$RES/killed/requests.jsonl" ]] || grep -q "phase main" "$TMP/killed.out" && break
  sleep 0.05
done
kill -KILL "$ENGINE_PID"
wait "$ENGINE_PID" 2>/dev/null || true
rc=0
wait "$RUN_PID" || rc=$?
[[ $rc -eq 1 ]] || { cat "$TMP/killed.out" >&2; fail "a run whose server died exited $rc"; }
[[ $(sig .run_valid killed) == false ]] || fail "killed server: run valid"
jq -e '.invalid_details_kvbench | map(.reason) | index("no_successful_requests") and
  index("server_unreachable")' "$RES/killed/summary.json" >/dev/null ||
  fail "killed server: $(sig .invalid_details killed)"
# every request sent has a row; the rest were not sent once the server was gone, and say so
sent=$(jq -s length "$RES/killed/requests.jsonl")
jq -e --argjson sent "$sent" '.invalid_details_kvbench[] | select(.reason == "server_unreachable") |
  .requests_sent + .requests_not_sent == 20 and .requests_sent == $sent' "$RES/killed/summary.json" \
  >/dev/null || fail "killed server: rows $sent, $(jq -c .invalid_details_kvbench "$RES/killed/summary.json")"
echo "engines: ok"
