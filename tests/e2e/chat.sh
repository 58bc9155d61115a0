#!/usr/bin/env bash
# `kvbench run --endpoint chat` against `kvbench serve` (cpu_disk): every scenario (standard,
# reuse_verify, eviction_replay, multi_turn, trace) gives the same verdicts as --endpoint
# completions and the same reused-token counts within one block per request; a multi_turn chat
# conversation comes back from the tiers (hit rate >= 0.9 from round 2) and not with kv mode off;
# the artifacts name the endpoint; the chat template is found from the model's
# tokenizer_config.json (prompt counts then equal the engine's usage exactly), named with
# --chat-template, or taken from the model's family; smoke and compare send chat too; bad values
# are one-line errors.
source "$(dirname "$0")/lib.sh"

BLOCK=32 # the engine's KV block (tokens, serve --block-size)
ENGINE=(--profile tiny --gpu-cache-blocks 64 --cpu-cache-blocks 512 --disk-cache-blocks 4096
  --disable-disk-offload-filter --speedup 50 --log-level WARNING)
COMMON=(--results-root "$TMP/results" --no-progress --log-level WARNING)

# signals ID — whether the run is valid, and every verdict (`signal`) of its summary, sorted; not
# the block-device I/O verdict (eviction_replay_signal_io): it reads this machine's disk counters,
# which a parallel test's reads move, so two runs of the same prompts may differ in it
signals() {
  jq -c '[.run_valid, ([del(.. | .eviction_replay_signal_io?) | .. | objects | select(has("signal"))
    | .signal | tostring] | sort)]' "$TMP/results/$1/summary.json"
}
# cached ID — per prompt id, the tokens the server reused (usage cached tokens), in order
cached() {
  jq -s -c 'map(select(.phase != "warmup")) | sort_by(.phase, .prompt_id)
    | map([.phase, .prompt_id, (.cached_tokens // 0)])' "$TMP/results/$1/requests.jsonl"
}

# The same workload both ways: the engine renders chat through Llama 3's template, the one the
# completions prompts are written in, so both send the same tokens.
for ep in completions chat; do
  start_engine "${ENGINE[@]}" --kv-mode cpu_disk --disk-cache-dir "$TMP/kv-$ep" --chat-template llama3
  k=(--base-url "$BASE" --kvbm-metrics-url "$METRICS" --kvbm-cache-dir "$TMP/kv-$ep"
    --kv-mode cpu_disk --endpoint "$ep" --chat-template llama3 "${COMMON[@]}")
  expect_exit 0 "$KVBENCH" run "${k[@]}" --scenario standard --warmup 1 --requests 6 \
    --concurrency 1 --max-tokens 24 --temperature 0 --stream --run-id "std-$ep"
  expect_exit 0 "$KVBENCH" run "${k[@]}" --scenario reuse_verify --reuse-prompt-set short \
    --reuse-repeat-count 3 --max-tokens 16 --temperature 0 --request-seed 1337 --run-id "reuse-$ep"
  expect_exit 0 "$KVBENCH" run "${k[@]}" --scenario eviction_replay --warmup 1 \
    --eviction-a-requests 3 --eviction-b-requests 6 --eviction-a-concurrency 1 \
    --eviction-b-concurrency 1 --long-range 1500:1800 --max-tokens 16 --temperature 0 --stream \
    --run-id "evict-$ep"
  expect_exit 0 "$KVBENCH" run "${k[@]}" --scenario multi_turn --users 4 --rounds 4 \
    --system-prompt-tokens 32 --history-tokens 1500 --answer-tokens 32 --user-qps 8 \
    --max-concurrency 1 --warmup 0 --stream --temperature 0 --run-id "multi-$ep"
  cat >"$TMP/trace.jsonl" <<'JSONL'
{"timestamp": 0, "input_length": 192, "output_length": 8, "hash_ids": [1, 2, 3]}
{"timestamp": 100, "input_length": 160, "output_length": 8, "hash_ids": [1, 2, 4]}
{"timestamp": 200, "input_length": 256, "output_length": 8, "hash_ids": [1, 2, 3, 5]}
{"timestamp": 300, "input_length": 100, "output_length": 8, "hash_ids": [6, 7]}
JSONL
  expect_exit 0 "$KVBENCH" run "${k[@]}" --scenario trace --trace "$TMP/trace.jsonl" \
    --trace-block-tokens 64 --trace-speedup 0 --warmup 0 --stream --run-id "trace-$ep"
  stop_engine
done

for s in std reuse evict multi trace; do
  a=$(signals "$s-completions") b=$(signals "$s-chat")
  [[ $a == "$b" ]] || fail "$s: completions $a, chat $b"
  [[ $a == '[true,'* ]] || fail "$s: not valid: $a"
  # the same prompts reuse the same tokens, within one block each
  jq -e -n --argjson a "$(cached "$s-completions")" --argjson b "$(cached "$s-chat")" \
    --argjson blk "$BLOCK" '($a | length) == ($b | length) and ($a | length) > 0
      and all(range($a | length); $a[.][1] == $b[.][1]
        and ($a[.][2] - $b[.][2] | fabs) <= $blk)' >/dev/null ||
    fail "$s: reused tokens differ: completions $(cached "$s-completions") chat $(cached "$s-chat")"
done
jq -e '.overall_summary.reuse_verify_signal_kvbm.signal == "prefix_reuse_detected"' \
  "$TMP/results/reuse-chat/summary.json" >/dev/null || fail "reuse: $(signals reuse-chat)"

# every artifact names the endpoint; what went out was a chat request
C=$TMP/results/std-chat
jq -e '.endpoint == "chat" and .chat_template.name == "llama3"
  and .chat_template.evidence == "--chat-template llama3" and .args.endpoint == "chat"' \
  "$C/config.json" >/dev/null || fail "config: $(jq -c '[.endpoint, .chat_template]' "$C/config.json")"
jq -e '.endpoint == "completions" and .chat_template == null' \
  "$TMP/results/std-completions/config.json" >/dev/null || fail "completions config"
jq -e -s 'all(.[]; .endpoint == "chat" and .status_code == 200 and .error == null)' "$C/requests.jsonl" >/dev/null ||
  fail "rows: $(jq -c '[.endpoint, .status_code]' "$C/requests.jsonl" | sort | uniq -c)"
jq -e -s 'all(.[]; .endpoint == "completions")' "$TMP/results/std-completions/requests.jsonl" \
  >/dev/null || fail "completions rows"
grep -qF -- '- **Endpoint:** /v1/chat/completions, messages counted through the llama3 chat template' \
  "$C/report.md" || fail "report: $(grep -F Endpoint "$C/report.md")"
grep -qF -- '- **Endpoint:** /v1/completions, prompt template llama3' \
  "$TMP/results/std-completions/report.md" || fail "completions report"
# the prompts were counted through the template: the engine's usage says the same
jq -e -s 'all(.[]; .usage_prompt_tokens != null and .server_truncated == false)' \
  "$C/requests.jsonl" >/dev/null || fail "chat rows truncated or without usage"

# multi_turn over chat: the conversations come back from the tiers, not with kv mode off
jq -e '.multi_turn | (.rounds | length) == 4 and all(.rounds[]; .errors == 0)
  and all(.rounds[1:][]; .hit_rate >= 0.9)' "$TMP/results/multi-chat/summary.json" >/dev/null ||
  fail "multi chat: $(jq -c '[.multi_turn.rounds[] | .hit_rate]' "$TMP/results/multi-chat/summary.json")"
start_engine "${ENGINE[@]}" --kv-mode off --disk-cache-dir "$TMP/kv-off"
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${COMMON[@]}" \
  --kv-mode off --endpoint chat --scenario multi_turn --users 4 --rounds 4 \
  --system-prompt-tokens 32 --history-tokens 1500 --answer-tokens 32 --user-qps 8 \
  --max-concurrency 1 --warmup 0 --stream --temperature 0 --run-id multi-off
# the engine's own template (tiny: plain) is found from the model id
jq -e '.chat_template.name == "plain" and (.chat_template.evidence | test("kvbench/tiny"))' \
  "$TMP/results/multi-off/config.json" >/dev/null ||
  fail "multi off: $(jq -c .chat_template "$TMP/results/multi-off/config.json")"
jq -e -s 'all(.[]; .server_truncated == false and .usage_prompt_tokens == .prompt_tokens_est)' \
  "$TMP/results/multi-off/requests.jsonl" >/dev/null ||
  fail "multi off counts: $(jq -c '[.prompt_tokens_est, .usage_prompt_tokens]' "$TMP/results/multi-off/requests.jsonl")"
jq -e '.multi_turn | (.rounds[1:] | length) > 0 and all(.rounds[1:][]; .hit_rate_source == "usage"
  and .hit_rate < 0.1)' \
  "$TMP/results/multi-off/summary.json" >/dev/null ||
  fail "multi off: $(jq -c '[.multi_turn.rounds[] | .hit_rate]' "$TMP/results/multi-off/summary.json")"
# round 2's messages: the system prompt, the first question, the server's answer, a new question
jq -e -s '[.[] | select(.phase == "round_2")] | length == 4' \
  "$TMP/results/multi-off/requests.jsonl" >/dev/null || fail "multi off: round 2 rows"

# a --duration-s run cycles its chat prompts; an open loop; not streamed: the unary answer
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${COMMON[@]}" \
  --kv-mode off --endpoint chat --requests 3 --duration-s 2 --concurrency 2 --warmup 0 \
  --max-tokens 8 --stream --run-id dur
jq -e -s 'length > 3 and all(.[]; .endpoint == "chat" and .status_code == 200 and .ttft_ms > 0)
  and ([.[] | .prompt_id] | unique | length) == 3' "$TMP/results/dur/requests.jsonl" >/dev/null ||
  fail "duration: $(jq -c '[.prompt_id, .status_code]' "$TMP/results/dur/requests.jsonl" | head -5)"
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${COMMON[@]}" \
  --kv-mode off --endpoint chat --requests 6 --request-rate 20 --warmup 0 --max-tokens 8 \
  --run-id unary
jq -e -s 'length == 6 and all(.[]; .status_code == 200 and .ttft_ms == null
  and .usage_completion_tokens >= 1 and .usage_completion_tokens <= 8 and .output_len_chars > 0)' \
  "$TMP/results/unary/requests.jsonl" >/dev/null ||
  fail "unary: $(jq -c '[.status_code, .usage_completion_tokens, .error]' "$TMP/results/unary/requests.jsonl")"

# smoke and compare send chat too
expect_exit 0 "$KVBENCH" smoke --base-url "$BASE" --endpoint chat --max-tokens 8
[[ -n $OUT ]] || fail "smoke --endpoint chat printed nothing"
expect_exit 0 "$KVBENCH" compare --base-url "$BASE" --kvbm-metrics-url "$METRICS" \
  --results-root "$TMP/results" --no-progress --log-level WARNING --modes off,off --repeats 1 \
  --skip-ready --requests 3 --warmup 0 --concurrency 1 --max-tokens 8 --endpoint chat \
  --compare-id cmp
for r in "$TMP"/results/cmp_*/config.json; do
  jq -e '.endpoint == "chat"' "$r" >/dev/null || fail "compare run $r: $(jq -c .endpoint "$r")"
done
stop_engine

# with the model's tokenizer and its tokenizer_config.json, both sides render Llama 3's template:
# the prompts' counts equal the engine's usage exactly; a named template is used as named
mkdir -p "$TMP/llama3"
gzip -dc "$SRC/tests/fixtures/tokenizers/llama3/tokenizer.json.gz" >"$TMP/llama3/tokenizer.json"
cp "$SRC/tests/fixtures/tokenizers/llama3/tokenizer_config.json" "$TMP/llama3/"
start_engine --profile tiny --tokenizer "$TMP/llama3" --kv-mode off --speedup 0 --log-level WARNING
expect_exit 0 "$KVBENCH" run --base-url "$BASE" "${COMMON[@]}" --endpoint chat \
  --tokenizer "$TMP/llama3" --requests 3 --warmup 0 --short-range 600:700 --max-tokens 8 \
  --allow-missing-kvbm-metrics --run-id exact
E=$TMP/results/exact
jq -e '.chat_template.name == "llama3" and (.chat_template.evidence | test("tokenizer_config.json"))' \
  "$E/config.json" >/dev/null || fail "exact: $(jq -c .chat_template "$E/config.json")"
jq -e -s 'all(.[]; .usage_prompt_tokens == .prompt_tokens_est
  and .prompt_tokens_est == .prompt_target_tokens)' "$E/requests.jsonl" >/dev/null ||
  fail "exact: $(jq -c '[.prompt_target_tokens, .prompt_tokens_est, .usage_prompt_tokens]' "$E/requests.jsonl")"
# counted through ChatML while the server renders Llama 3: ChatML's markers are no special tokens
# of Llama 3's, so the counts come out above the server's and the run says so
expect_exit 1 "$KVBENCH" run --base-url "$BASE" "${COMMON[@]}" --endpoint chat \
  --chat-template chatml --tokenizer "$TMP/llama3" --requests 2 --warmup 0 \
  --short-range 600:700 --max-tokens 8 --allow-missing-kvbm-metrics --run-id named
jq -e '.chat_template == {"name": "chatml", "evidence": "--chat-template chatml"}' \
  "$TMP/results/named/config.json" >/dev/null || fail "named: $(jq -c .chat_template "$TMP/results/named/config.json")"
jq -e -s 'all(.[]; .usage_prompt_tokens < .prompt_tokens_est and .server_truncated)' \
  "$TMP/results/named/requests.jsonl" >/dev/null || fail "named: counts equal through another template"
jq -e '.run_valid == false and .invalid_reason == "server_truncated_prompts"' \
  "$TMP/results/named/summary.json" >/dev/null || fail "named: $(jq -c .invalid_reason "$TMP/results/named/summary.json")"
stop_engine
# --tokenizer server where /tokenize takes messages (vLLM): the server's own template counts, so
# even a wrongly named template leaves the counts equal to the usage
start_engine --profile tiny --personality vllm --tokenizer "$TMP/llama3" --kv-mode off --speedup 0 \
  --log-level WARNING
expect_exit 0 "$KVBENCH" run --base-url "$BASE" "${COMMON[@]}" --endpoint chat \
  --chat-template chatml --tokenizer server --requests 2 --warmup 0 --short-range 600:700 \
  --max-tokens 8 --allow-missing-kvbm-metrics --run-id server-count
jq -e -s 'all(.[]; .usage_prompt_tokens == .prompt_tokens_est and .server_truncated == false)' \
  "$TMP/results/server-count/requests.jsonl" >/dev/null ||
  fail "server count: $(jq -c '[.prompt_tokens_est, .usage_prompt_tokens]' "$TMP/results/server-count/requests.jsonl")"
stop_engine
# llama.cpp's /tokenize takes no messages: the rendering is counted through the server instead
start_engine --profile tiny --personality llamacpp --kv-mode off --speedup 0 --log-level WARNING
expect_exit 0 "$KVBENCH" run --base-url "$BASE" "${COMMON[@]}" --endpoint chat --log-level INFO \
  --tokenizer server --requests 2 --warmup 0 --short-range 600:700 --max-tokens 8 \
  --allow-missing-kvbm-metrics --add-bos no --run-id server-text
[[ $ERR == *"takes no chat messages"* ]] || fail "server text: no word of the fallback: $ERR"
jq -e -s 'all(.[]; .usage_prompt_tokens == .prompt_tokens_est and .server_truncated == false)' \
  "$TMP/results/server-text/requests.jsonl" >/dev/null ||
  fail "server text: $(jq -c '[.prompt_tokens_est, .usage_prompt_tokens]' "$TMP/results/server-text/requests.jsonl")"
stop_engine

# a server that is not kvbench sends a role-only chunk 500 ms before the first content (or
# reasoning): the role is not the first token; reasoning is output, recorded apart
for mode in content reasoning_content reasoning; do
  pf="$TMP/chat-$mode.port"
  perl "$SRC/tests/e2e/chat_server.pl" "$pf" "$mode" 60 "$TMP/bodies-$mode.jsonl" &
  PIDS+=($!)
  for _ in $(seq 100); do [[ -s $pf ]] && break; sleep 0.05; done
  [[ -s $pf ]] || fail "chat_server $mode did not start"
  expect_exit 0 "$KVBENCH" run --base-url "http://127.0.0.1:$(cat "$pf")" "${COMMON[@]}" \
    --endpoint chat --tokenizer heuristic --requests 4 --concurrency 2 --warmup 1 --stream \
    --max-tokens 16 --allow-missing-kvbm-metrics --run-id "role-$mode"
  J=$TMP/results/role-$mode/requests.jsonl
  jq -e -s 'length == 5 and all(.[]; .status_code == 200 and .ttft_ms >= 500
    and .usage_completion_tokens == .output_tokens_est and .server_truncated == false)' "$J" \
    >/dev/null || fail "$mode: $(jq -c '[.ttft_ms, .output_tokens_est, .usage_completion_tokens]' "$J")"
  if [[ $mode == content ]]; then
    jq -e -s 'all(.[]; .reasoning_chars == 0)' "$J" >/dev/null || fail "$mode: reasoning"
  else
    jq -e -s 'all(.[]; .reasoning_chars > 0 and .reasoning_tokens_est == 3)' "$J" >/dev/null ||
      fail "$mode: $(jq -c '[.reasoning_chars, .reasoning_tokens_est]' "$J")"
  fi
  # what went out: one user message, the salt first, counted through the plain template
  jq -e -s 'all(.[]; (.messages | length) == 1 and .messages[0].role == "user"
    and (.messages[0].content | startswith("role-")) and .max_tokens == 16 and .stream)' \
    "$TMP/bodies-$mode.jsonl" >/dev/null || fail "$mode: bodies $(head -c 300 "$TMP/bodies-$mode.jsonl")"
done

# bad values: one line, exit 2
expect_exit 2 "$KVBENCH" run --endpoint responses --base-url http://127.0.0.1:9
one_line "$ERR"
[[ $ERR == *"--endpoint"*"completions"*"chat"* ]] || fail "endpoint error: $ERR"
expect_exit 2 "$KVBENCH" run --chat-template jinja --base-url http://127.0.0.1:9
one_line "$ERR"
[[ $ERR == *"--chat-template"* ]] || fail "chat-template error: $ERR"
expect_exit 2 "$KVBENCH" smoke --endpoint nope
one_line "$ERR"
echo "chat: ok"
