#!/usr/bin/env bash
# --scenario trace against `kvbench serve`: a hand-written Mooncake trace whose reusable tokens are
# counted here by hand, replayed at its own times (two windows) and as fast as one stream allows;
# the server's reuse within 10 % of it on an engine that keeps everything; the prompts' lengths
# and max_tokens from the trace; another run's prompts share nothing; the engine's counters where
# responses carry no cached tokens; a warmup of the trace's shape and size; prompts of exactly the
# trace's lengths by an exact tokenizer too; the trace's verdict in the summary table; and the
# file's and flags' one-line errors.
source "$(dirname "$0")/lib.sh"

# blocks of 64 tokens; the engine's blocks are 32, so a shared block is two engine blocks
cat >"$TMP/trace.jsonl" <<'JSONL'
{"timestamp": 0, "input_length": 192, "output_length": 8, "hash_ids": [1, 2, 3]}
{"timestamp": 100, "input_length": 160, "output_length": 8, "hash_ids": [1, 2, 4]}
{"timestamp": 200, "input_length": 256, "output_length": 8, "hash_ids": [1, 2, 3, 5]}

{"timestamp": 300, "input_length": 100, "output_length": 8, "hash_ids": [6, 7]}
{"timestamp": 400, "input_length": 128, "output_length": 8, "hash_ids": [6, 8]}
{"timestamp": 500, "input_length": 64, "output_length": 8, "hash_ids": [2]}
{"timestamp": 700, "input_length": 160, "output_length": 3, "hash_ids": [1, 2, 4]}
{"timestamp": 600, "input_length": 200, "output_length": 8, "hash_ids": [1, 2, 3, 9]}
JSONL
# By hand, in time order (the last two lines are out of order in the file):
#   192 [1 2 3]    nothing seen                                   0
#   160 [1 2 4]    1 2 seen (64 + 64); 4 new                      128
#   256 [1 2 3 5]  1 2 3 seen                                     192
#   100 [6 7]      new                                            0
#   128 [6 8]      6 seen                                         64
#    64 [2]        2 was only ever sent after 1: another prefix   0
#   200 [1 2 3 9]  1 2 3 seen                                     192
#   160 [1 2 4]    all seen, 4 with its 32 tokens                 160
# = 736; windows of 0.4 s: [0, 0.4) 320, [0.4, 0.8) 416
RUN=(--scenario trace --trace "$TMP/trace.jsonl" --trace-block-tokens 64 --warmup 0 --stream
  --results-root "$TMP/results" --no-progress --log-level WARNING)

start_engine --profile tiny --log-level WARNING
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
  --trace-window-s 0.4 --trace-speedup 0.5 --run-id timed
S=$TMP/results/timed/summary.json
jq -e '.trace | .requests == 8 and .trace_requests == 8 and .reusable_tokens == 736
  and .reused_source == "usage" and .reused_tokens >= 662 and .reused_tokens <= 736
  and .verdict.signal == "reuse_matches_trace"
  and ([.windows[] | [.window, .requests, .reusable_tokens]] == [[1, 4, 320], [2, 4, 416]])' \
  "$S" >/dev/null || fail "timed: $(jq -c .trace "$S")"
jq -e '[.phase_summaries[] | .phase] == ["window_1", "window_2"]' "$S" >/dev/null ||
  fail "timed: phases"
J=$TMP/results/timed/requests.jsonl
# each prompt has the trace's length exactly (the engine counts as kvbench does), and asks for
# its output_length
jq -e -s '[.[] | .usage_prompt_tokens] == [192, 160, 256, 100, 128, 64, 200, 160]
  and .[7].usage_completion_tokens <= 3' "$J" >/dev/null ||
  fail "timed: lengths $(jq -c -s '[.[] | [.usage_prompt_tokens, .usage_completion_tokens]]' "$J")"
# sent at the trace's times, slowed down twice (--trace-speedup 0.5, so that on a busy machine a
# request has finished before the next that shares its blocks): 200 ms apart
ts=$(jq -r .scheduled_ts "$J" | while read -r t; do date -d "$t" +%s.%N; done)
awk 'NR == 1 { t0 = $1 } { d = ($1 - t0) * 1000 - (NR - 1) * 200; if (d < -1 || d > 1) bad = 1 }
  END { exit bad }' <<<"$ts" || fail "timed: not at the trace's times: $ts"
grep -qF '### trace: `reuse_matches_trace`' "$TMP/results/timed/report.md" || fail "report"
grep -qE '^\| all \| \| 8 \| 1260 \| 736 \| [0-9]+ \| 0\.9[0-9] \|$' "$TMP/results/timed/report.md" ||
  fail "report: $(grep '^| all' "$TMP/results/timed/report.md")"
[[ $(grep -c '"trace-0000[0-7]"' "$TMP/results/timed/prompts_manifest.jsonl") -eq 8 ]] ||
  fail "manifest"
# the summary table shows the trace's verdict
expect_exit 0 "$KVBENCH" summary "$TMP/results/timed"
grep -qE '^timed .* reuse_matches_trace$' <<<"$OUT" || fail "summary: no verdict in: $OUT"

# as fast as one stream allows; another run's salt: nothing of the first run is reused
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
  --trace-speedup 0 --concurrency 1 --run-id closed
S=$TMP/results/closed/summary.json
jq -e '.trace | .reusable_tokens == 736 and .reused_tokens >= 662 and .reused_tokens <= 736
  and (.windows | length) == 1' "$S" >/dev/null || fail "closed: $(jq -c .trace "$S")"
jq -e '.phase_summaries[0].load.mode == "closed" and .phase_summaries[0].concurrency == 1' "$S" \
  >/dev/null || fail "closed: load"
[[ $(jq -s '.[0].cached_tokens' "$TMP/results/closed/requests.jsonl") -eq 0 ]] ||
  fail "closed: the first request reused the other run's blocks"

# the default warmup has the trace's shape and size: as many requests as the trace (at most
# --warmup), each with a request's lengths and none of its blocks; --warmup sets how many
head -3 "$TMP/trace.jsonl" >"$TMP/three.jsonl"
W=(--scenario trace --trace "$TMP/three.jsonl" --trace-block-tokens 64 --trace-speedup 0 --stream
  --results-root "$TMP/results" --no-progress --log-level WARNING)
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${W[@]}" --run-id warm
J=$TMP/results/warm/requests.jsonl
jq -e -s '[.[] | select(.phase == "warmup") | [.prompt_id, .usage_prompt_tokens]]
  == [["warmup-00000", 192], ["warmup-00001", 160], ["warmup-00002", 256]]
  and ([.[] | select(.phase == "warmup") | .usage_completion_tokens <= 8] | all)' "$J" >/dev/null ||
  fail "warmup: $(jq -c -s 'map([.phase, .prompt_id, .usage_prompt_tokens, .usage_completion_tokens])' "$J")"
jq -e -s '[.[] | select(.phase == "window_1")][0].cached_tokens == 0' "$J" >/dev/null ||
  fail "warmup: the trace reused the warmup's blocks"
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${W[@]}" --warmup 1 \
  --run-id warm1
[[ $(jq -s '[.[] | select(.phase == "warmup")] | length' "$TMP/results/warm1/requests.jsonl") -eq 1 ]] ||
  fail "--warmup 1"
stop_engine

# an exact tokenizer (Llama 3) joins the "." ending a block with the newline starting the next:
# each prompt still has the trace's length, as the engine counts it with the same tokenizer
gzip -dc "$SRC/tests/fixtures/tokenizers/llama3/tokenizer.json.gz" >"$TMP/tokenizer.json"
for i in $(seq 0 19); do
  printf '{"timestamp": %d, "input_length": %d, "output_length": 1, "hash_ids": [%d, %d, %d]}\n' \
    "$i" $((136 + i)) $((3 * i)) $((3 * i + 1)) $((3 * i + 2))
done >"$TMP/blocks.jsonl"
start_engine --profile tiny --tokenizer "$TMP/tokenizer.json" --log-level WARNING
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --scenario trace \
  --trace "$TMP/blocks.jsonl" --trace-block-tokens 64 --trace-speedup 0 --warmup 0 \
  --tokenizer "$TMP/tokenizer.json" --results-root "$TMP/results" --no-progress \
  --log-level WARNING --run-id exact
jq -e -s '[.[] | .usage_prompt_tokens] == [range(136; 156)]' "$TMP/results/exact/requests.jsonl" \
  >/dev/null || fail "exact: $(jq -c -s '[.[] | .usage_prompt_tokens]' "$TMP/results/exact/requests.jsonl")"
stop_engine

# TensorRT-LLM: no cached tokens in the responses, its block counters per window
start_engine --personality trtllm --profile tiny --log-level WARNING
expect_exit 0 "$KVBENCH" run --base-url "$BASE" "${RUN[@]}" --trace-speedup 0 --run-id trt
jq -e '.trace | .reused_source == "engine_counters" and .reused_tokens >= 662
  and .reused_tokens <= 736' "$TMP/results/trt/summary.json" >/dev/null ||
  fail "trtllm: $(jq -c .trace "$TMP/results/trt/summary.json")"
stop_engine

# errors: one line, exit 2, nothing sent
B=(--base-url http://127.0.0.1:9 --results-root "$TMP/results" --scenario trace)
bad() { # bad NAME CONTENT EXPECTED
  printf '%s\n' "$2" >"$TMP/$1.jsonl"
  expect_exit 2 "$KVBENCH" run "${B[@]}" --trace "$TMP/$1.jsonl"
  one_line "$ERR"
  grep -qF -- "$3" <<<"$ERR" || fail "$1: $ERR"
}
bad json '{"timestamp": 0, "input_length": 64, "output_length": 1, "hash_ids": [1]}
{"timestamp": 1' "json.jsonl:2: not a JSON object"
bad ids '{"timestamp": 0, "input_length": 1000, "output_length": 1, "hash_ids": [1]}' \
  "ids.jsonl:1: hash_ids has 1 ids, but input_length 1000 needs 2 blocks of 512 tokens"
bad neg '{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [-1]}' \
  "neg.jsonl:1: hash_ids[0]: expected an integer >= 0"
bad len '{"timestamp": 0, "input_length": 0, "output_length": 1, "hash_ids": []}' \
  "len.jsonl:1: input_length: expected a token count >= 1"
bad ts '{"timestamp": "noon", "input_length": 1, "output_length": 1, "hash_ids": [1]}' \
  "ts.jsonl:1: timestamp: expected milliseconds >= 0"
bad empty '' "empty.jsonl: no requests in the file"
# a timestamp far in the future is refused with its line, not waited for (1e15 ms: 31,000 years)
bad far '{"timestamp": 5, "input_length": 8, "output_length": 1, "hash_ids": [1]}
{"timestamp": 1e15, "input_length": 8, "output_length": 1, "hash_ids": [2]}' \
  "far.jsonl:2: timestamp 999999999999995 ms after the first request: at --trace-speedup 1 it would be sent after 1000000000000 s, past --trace-max-wait-s 3600"
# the same trace sent as fast as it can (--trace-speedup 0) waits for nothing: accepted
printf '%s\n' '{"timestamp": 0, "input_length": 8, "output_length": 1, "hash_ids": [1]}' \
  '{"timestamp": 7200000, "input_length": 8, "output_length": 1, "hash_ids": [2]}' >"$TMP/twohours.jsonl"
expect_exit 2 "$KVBENCH" run "${B[@]}" --trace "$TMP/twohours.jsonl"
grep -qF "twohours.jsonl:2: timestamp 7200000 ms" <<<"$ERR" || fail "two hours: $ERR"
expect_exit 2 "$KVBENCH" run "${B[@]}" --trace "$TMP/twohours.jsonl" --trace-max-wait-s 1h --trace-speedup 1
grep -qF -- "past --trace-max-wait-s 3600" <<<"$ERR" || fail "1h: $ERR"
expect_exit 2 "$KVBENCH" run --base-url http://127.0.0.1:9 --trace-max-wait-s 5
grep -qF -- "--trace-max-wait-s: applies to --scenario trace" <<<"$ERR" || fail "$ERR"
expect_exit 2 "$KVBENCH" run "${B[@]}" --trace "$TMP/missing.jsonl"
grep -qF "missing.jsonl: No such file or directory" <<<"$ERR" || fail "missing: $ERR"
expect_exit 2 "$KVBENCH" run "${B[@]}"
grep -qF -- "--scenario trace: give the trace file with --trace FILE" <<<"$ERR" || fail "$ERR"
expect_exit 2 "$KVBENCH" run "${B[@]}" --trace "$TMP/trace.jsonl" --max-tokens 8
grep -qF -- "--max-tokens: a trace's requests use each line's output_length" <<<"$ERR" || fail "$ERR"
expect_exit 2 "$KVBENCH" run --base-url http://127.0.0.1:9 --trace "$TMP/trace.jsonl"
grep -qF -- "--trace: applies to --scenario trace" <<<"$ERR" || fail "$ERR"
# a bad trace fails before the run starts: no run directory
[[ -z $(find "$TMP/results" -maxdepth 1 -newer "$TMP/json.jsonl" -type d) ]] ||
  fail "a run directory was made for a bad trace"
echo "trace: ok"
