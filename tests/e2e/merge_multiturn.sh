#!/usr/bin/env bash
# kvbench merge of scenarios with a summary object of their own: multi_turn (`rounds[]`, its
# verdict) and trace (`windows[]`, its verdict). Two real shards (`kvbench run --shard I/2`,
# started together through the ready barrier of one --shard-sync directory) merged, against one
# process with the same prompt salt: the merged object is the union's, rebuilt by the scenario's
# own code (every round's requests, prompt, context and reusable tokens the single process's, the
# same verdict), never shard 0's, and it agrees with the merged run's own phase_summaries.
source "$(dirname "$0")/lib.sh"

RES="$TMP/results"
ENGINE=(--profile tiny --kv-mode cpu_disk --gpu-cache-blocks 1024 --cpu-cache-blocks 2048
  --disk-cache-blocks 8192 --speedup 50 --log-level WARNING)
COMMON=(--results-root "$RES" --tokenizer heuristic --log-level WARNING --no-progress
  --kv-mode cpu_disk --temperature 0 --prompt-salt s --warmup 0)

# shards ID N [RUN ARGS...] — shards 0..N-1 of run ID at once (the ready barrier); each exits 0
shards() {
  local id=$1 n=$2 pids=() i
  shift 2
  for ((i = 0; i < n; i++)); do
    "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${COMMON[@]}" --run-id "$id" \
      --shard "$i/$n" --shard-sync "$TMP/$id.sync" "$@" >"$TMP/$id.$i.log" 2>&1 &
    pids+=($!)
    PIDS+=($!)
  done
  for ((i = 0; i < n; i++)); do
    wait "${pids[$i]}" || { cat "$TMP/$id.$i.log" >&2; fail "$id: shard $i of $n exited non-zero"; }
  done
}
single() {
  local id=$1
  shift
  expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${COMMON[@]}" \
    --run-id "$id" "$@"
}

# --- multi_turn: 4 users, 2 rounds ---------------------------------------------------------------
MT=(--scenario multi_turn --users 4 --rounds 2 --system-prompt-tokens 64 --history-tokens 128
  --answer-tokens 16 --max-concurrency 4)
start_engine "${ENGINE[@]}" --disk-cache-dir "$TMP/kv-mt1"
single mt1 "${MT[@]}"
stop_engine
start_engine "${ENGINE[@]}" --disk-cache-dir "$TMP/kv-mt2"
shards mt 2 "${MT[@]}"
stop_engine
expect_exit 0 "$KVBENCH" merge "$RES"/mt-shard{0,1}of2 --results-root "$RES"
M=$RES/mt/summary.json S=$RES/mt1/summary.json
# the counted figures of each round: the single process's
figs='[.multi_turn.rounds[] | {round, requests, errors, prompt_tokens, reusable_tokens, context_tokens}]'
[[ $(jq -c "$figs" "$M") == "$(jq -c "$figs" "$S")" ]] ||
  fail "multi_turn rounds: merged $(jq -c "$figs" "$M"), single $(jq -c "$figs" "$S")"
# and the merged run's own phases
jq -e '[.phase_summaries[] | select(.phase | startswith("round_")) | .total_requests]
  == [.multi_turn.rounds[] | .requests]' "$M" >/dev/null ||
  fail "merged rounds disagree with phase_summaries: $(jq -c '[.multi_turn.rounds[] | .requests]' "$M")"
jq -e '.multi_turn.rounds | all(.[]; .requests == 4)' "$M" >/dev/null || fail "merged: not 4 users a round"
[[ $(jq -c .multi_turn.verdict.signal "$M") == "$(jq -c .multi_turn.verdict.signal "$S")" ]] ||
  fail "multi_turn verdict: merged $(jq -c .multi_turn.verdict "$M"), single $(jq -c .multi_turn.verdict "$S")"
jq -e '[.merge.notes[] | select(test("multi_turn"))] | any(.[]; test("rebuilt by the scenario"))
  and all(.[]; test("not rebuilt") | not)' "$M" >/dev/null ||
  fail "notes: $(jq -c .merge.notes "$M")"

# --- trace: 4 rows in 2 windows --------------------------------------------------------------------
# sent at the trace's times, 300 ms apart, so that each request has finished and left its blocks
# before the next that shares them starts, in the single run and across the shards alike: the
# verdict compared below then rests on the trace, not on which of two racing requests won
printf '%s\n' '{"timestamp": 0, "input_length": 128, "output_length": 4, "hash_ids": [1, 2]}' \
  '{"timestamp": 300, "input_length": 128, "output_length": 4, "hash_ids": [1, 3]}' \
  '{"timestamp": 600, "input_length": 64, "output_length": 4, "hash_ids": [1]}' \
  '{"timestamp": 1500, "input_length": 128, "output_length": 4, "hash_ids": [1, 2]}' >"$TMP/trace.jsonl"
TR=(--scenario trace --trace "$TMP/trace.jsonl" --trace-block-tokens 64 --trace-speedup 1
  --trace-window-s 1 --concurrency 2)
start_engine "${ENGINE[@]}" --disk-cache-dir "$TMP/kv-tr1"
single tr1 "${TR[@]}"
stop_engine
start_engine "${ENGINE[@]}" --disk-cache-dir "$TMP/kv-tr2"
shards tr 2 "${TR[@]}"
stop_engine
expect_exit 0 "$KVBENCH" merge "$RES"/tr-shard{0,1}of2 --results-root "$RES"
M=$RES/tr/summary.json S=$RES/tr1/summary.json
tf='[.trace | .requests, .trace_requests, .reusable_tokens, .prompt_tokens, (.windows[] | [.window, .requests, .reusable_tokens, .prompt_tokens])]'
[[ $(jq -c "$tf" "$M") == "$(jq -c "$tf" "$S")" ]] ||
  fail "trace: merged $(jq -c "$tf" "$M"), single $(jq -c "$tf" "$S")"
[[ $(jq -c .trace.verdict.signal "$M") == "$(jq -c .trace.verdict.signal "$S")" ]] ||
  fail "trace verdict: merged $(jq -c .trace.verdict "$M"), single $(jq -c .trace.verdict "$S")"
echo "merge_multiturn: ok; trace verdict $(jq -c .trace.verdict.signal "$M") merged and single"
