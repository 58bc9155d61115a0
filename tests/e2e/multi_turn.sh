#!/usr/bin/env bash
# --scenario multi_turn against `kvbench serve`: 4 users x 4 rounds, where each user's context
# outgrows a device tier of 64 blocks. With the host and disk tiers on, the conversations come
# back (hit rate >= 0.5 from round 2); with kv mode off nothing brings them back (hit rate ~0).
# Also: the rounds' prompts in the manifest, the report's table, --user-qps pacing, the hit rate
# from the engine's counters when responses carry no cached tokens (TensorRT-LLM), a preset, and
# the flags' one-line errors.
source "$(dirname "$0")/lib.sh"

ENGINE=(--profile tiny --gpu-cache-blocks 64 --cpu-cache-blocks 512 --disk-cache-blocks 4096
  --disable-disk-offload-filter --speedup 20 --log-level WARNING)
# One request in flight at a time (--max-concurrency 1): which user's blocks a 64-block device
# keeps is then the same on a busy machine as on an idle one.
RUN=(--scenario multi_turn --users 4 --rounds 4 --system-prompt-tokens 32 --history-tokens 1500
  --answer-tokens 32 --user-qps 8 --max-concurrency 1 --warmup 0 --stream
  --results-root "$TMP/results" --no-progress --log-level WARNING)
rounds() { jq -c '[.multi_turn.rounds[] | .hit_rate]' "$TMP/results/$1/summary.json"; }

for mode in cpu_disk off; do
  start_engine "${ENGINE[@]}" --kv-mode "$mode" --disk-cache-dir "$TMP/kv-$mode"
  expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
    --kv-mode "$mode" --run-id "$mode"
  stop_engine
  S=$TMP/results/$mode/summary.json
  jq -e '[.phase_summaries[] | .phase] == ["round_1", "round_2", "round_3", "round_4"]' "$S" \
    >/dev/null || fail "$mode: phases $(jq -c '[.phase_summaries[] | .phase]' "$S")"
  jq -e '.multi_turn | .users == 4 and (.rounds | length) == 4
    and all(.rounds[]; .requests == 4 and .errors == 0 and .hit_rate_source == "usage"
      and (.ttft_ms | has("p50") and has("p95")) and .prompt_tokens > 6000)
    and .device_tier_tokens == 2048' "$S" >/dev/null || fail "$mode: $(jq -c .multi_turn "$S")"
  # each round's prompts grow by the answer and a question: 32 + 32 tokens and the turns' markup
  jq -e '[.multi_turn.rounds[] | .prompt_tokens / 4] | . as $p
    | all(range(1; 4); $p[.] - $p[. - 1] > 64 and $p[. - 1] + 160 > $p[.])' "$S" >/dev/null ||
    fail "$mode: prompt growth $(jq -c '[.multi_turn.rounds[] | .prompt_tokens]' "$S")"
done
jq -e '.multi_turn | all(.rounds[1:][]; .hit_rate >= 0.5)
  and .verdict.signal == "reuse_holds_past_device_tier"' "$TMP/results/cpu_disk/summary.json" \
  >/dev/null || fail "cpu_disk: $(rounds cpu_disk) $(jq -c .multi_turn.verdict "$TMP/results/cpu_disk/summary.json")"
jq -e '.multi_turn | all(.rounds[1:][]; .hit_rate < 0.1)
  and (.verdict.signal == "no_reuse" or .verdict.signal == "reuse_drops_past_device_tier")' \
  "$TMP/results/off/summary.json" >/dev/null ||
  fail "off: $(rounds off) $(jq -c .multi_turn.verdict "$TMP/results/off/summary.json")"

# every round's prompts are in the manifest, each user's prompts distinct, and each round's prompt
# holds the previous round's answer (stored with --store-responses)
M=$TMP/results/cpu_disk/prompts_manifest.jsonl
[[ $(grep -c '"turn-u0000[0-3]-r00[1-4]"' "$M") -eq 16 ]] || fail "manifest: $(cat "$M")"
[[ $(jq -r .prompt_sha256 "$M" | sort -u | wc -l) -eq 16 ]] || fail "manifest: hashes repeat"
R=$TMP/results/cpu_disk/report.md
grep -qF '### multi_turn: `reuse_holds_past_device_tier`' "$R" || fail "report: no verdict"
grep -qE '^\| 4 \| 4 \| 0 \| [0-9.]+ \| [0-9.]+ \| [0-9]+ \| [0-9]+ \| 0\.[5-9][0-9] \| 0\.9[0-9] \| usage \|$' "$R" ||
  fail "report: no round 4 row: $(grep '^| 4 ' "$R")"

# --user-qps 2: each user sends a round every 0.5 s, users spread over it (0, 125, 250, 375 ms)
start_engine "${ENGINE[@]}" --kv-mode cpu_disk --disk-cache-dir "$TMP/kv-qps"
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
  --rounds 3 --user-qps 2 --store-responses --run-id qps
J=$TMP/results/qps/requests.jsonl
jq -e -s 'all(.[]; .scheduled_ts != null and .schedule_lag_ms >= 0)' "$J" >/dev/null ||
  fail "qps: rows without their schedule"
# the rounds start at least 0.5 s apart (a user's next round waits 1/Q after its last)
firsts=$(jq -r -s 'group_by(.phase) | map(map(.scheduled_ts) | min) | .[]' "$J" |
  while read -r ts; do date -d "$ts" +%s.%N; done)
awk 'NR > 1 && $1 - prev < 0.499 { bad = 1 } { prev = $1 } END { exit bad }' <<<"$firsts" ||
  fail "qps: rounds less than 0.5 s apart: $firsts"
jq -e '[.phase_summaries[] | .load.mode == "open" and .target_rate == 8] | all' \
  "$TMP/results/qps/summary.json" >/dev/null ||
  fail "qps: $(jq -c '[.phase_summaries[] | [.load.mode, .target_rate]]' "$TMP/results/qps/summary.json")"
# round 2's prompt of a user = round 1's prompt + that user's answer + a question: its token count
# is round 1's + the answer's + more; the answers were stored
n1=$(jq -s '[.[] | select(.phase == "round_1")] | length' "$J")
[[ $n1 -eq 4 && $(find "$TMP/results/qps/responses" -name '*.txt' | wc -l) -eq 12 ]] ||
  fail "qps: responses"
stop_engine

# TensorRT-LLM's responses carry no cached tokens: the hit rate comes from its block counters
start_engine --personality trtllm --profile tiny --speedup 20 --log-level WARNING
expect_exit 0 "$KVBENCH" run --base-url "$BASE" "${RUN[@]}" --rounds 2 --run-id trt
jq -e '.multi_turn.rounds[1] | .hit_rate_source == "engine_counters" and .hit_rate >= 0.5' \
  "$TMP/results/trt/summary.json" >/dev/null ||
  fail "trtllm: $(jq -c .multi_turn.rounds "$TMP/results/trt/summary.json")"
# a preset, with a flag given winning over it
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --scenario multi_turn --preset lmbench-short \
  --rounds 2 --warmup 0 --stream --results-root "$TMP/results" --no-progress --log-level WARNING \
  --run-id preset
jq -e '.multi_turn | .users == 6 and .rounds_planned == 2 and .system_prompt_tokens == 256
  and .history_tokens == 1024 and .answer_tokens == 32' "$TMP/results/preset/summary.json" \
  >/dev/null || fail "preset: $(jq -c 'del(.multi_turn.rounds)' "$TMP/results/preset/summary.json")"
stop_engine

# requests that fail: their users go on (an empty answer), every round sends all users
start_engine --profile tiny --fail-rate 0.3 --log-level WARNING
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
  --max-error-rate 1 --run-id faults
jq -e '.multi_turn.rounds | length == 4 and all(.[]; .requests == 4)
  and (map(.errors) | add) > 0' "$TMP/results/faults/summary.json" >/dev/null ||
  fail "faults: $(jq -c '.multi_turn.rounds | map([.requests, .errors])' "$TMP/results/faults/summary.json")"
jq -e -s '[.[] | select(.error != null)] | length > 0 and all(.[]; .error | startswith("HTTP 500"))' \
  "$TMP/results/faults/requests.jsonl" >/dev/null || fail "faults: the failed rows"
stop_engine

# one-line errors
B=(--base-url http://127.0.0.1:9 --results-root "$TMP/results")
expect_exit 2 "$KVBENCH" run "${B[@]}" --users 4
one_line "$ERR"
grep -q -- "--users: applies to --scenario multi_turn" <<<"$ERR" || fail "users: $ERR"
expect_exit 2 "$KVBENCH" run "${B[@]}" --preset lmbench-long
grep -q -- "--preset: applies to --scenario multi_turn" <<<"$ERR" || fail "preset: $ERR"
expect_exit 2 "$KVBENCH" run "${B[@]}" --scenario multi_turn --max-tokens 8
grep -q -- "--max-tokens: multi_turn's answers are --answer-tokens long" <<<"$ERR" || fail "$ERR"
expect_exit 2 "$KVBENCH" run "${B[@]}" --scenario multi_turn --requests 8
grep -q -- "--requests: multi_turn sends --users x --rounds requests" <<<"$ERR" || fail "$ERR"
expect_exit 2 "$KVBENCH" run "${B[@]}" --scenario multi_turn --preset nope
one_line "$ERR"
expect_exit 2 "$KVBENCH" run "${B[@]}" --scenario multi_turn --users 0
one_line "$ERR"
# the last round's prompts are bounded before anything is sent: a ceiling they pass fails the run
start_engine --profile tiny --log-level WARNING
expect_exit 1 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
  --rounds 30 --answer-tokens 200 --engine-max-input-tokens 6000 --run-id ceiling
jq -e '.invalid_reason == "prompt_preflight_failed"
  and (.invalid_details_kvbench[0].errors | any(test("turn-\\*-r002..r030: up to")))' \
  "$TMP/results/ceiling/summary.json" >/dev/null ||
  fail "ceiling: $(jq -c .invalid_details_kvbench "$TMP/results/ceiling/summary.json")"
[[ $(jq -s length "$TMP/results/ceiling/requests.jsonl") -eq 0 ]] || fail "ceiling: requests were sent"
stop_engine
echo "multi_turn: ok"
