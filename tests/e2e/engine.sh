#!/usr/bin/env bash
# `kvbench serve` as a real process: tier moves G1→G2→G3 and a G3→G1 onboard seen in the KVBM
# counters, files in the cache directory and reads on its block device, cached_tokens, the SSE
# format, the error answers, faults, and a clean SIGTERM shutdown that removes the cache.
source "$(dirname "$0")/lib.sh"

CACHE="$TMP/kvbm"
# The cache directory must be on a real disk for the block-device check: /tmp may be tmpfs.
if [[ $(findmnt -n -o FSTYPE -T "$TMP") == tmpfs ]]; then
  CACHE="$SRC/build-e2e-kvbm-$$"
  trap 'rm -rf "$CACHE"; cleanup' EXIT
fi

start_engine --profile tiny --kv-mode cpu_disk --gpu-cache-blocks 64 --cpu-cache-blocks 128 \
  --disk-cache-blocks 4096 --disable-disk-offload-filter --disk-cache-dir "$CACHE" --speedup 50

# --- health, models, live -------------------------------------------------------------------
h=$(curl -s "$BASE/health")
[[ $(jq -r .status <<<"$h") == healthy ]] || fail "health: $h"
[[ $(jq -r '.endpoints[0]' <<<"$h") == dyn://dynamo.tensorrt_llm.generate ]] || fail "endpoints: $h"
[[ $(jq '.instances | length' <<<"$h") -eq 1 ]] || fail "instances: $h"
[[ $(curl -s "$BASE/v1/models" | jq -r '.data[0].id') == kvbench/tiny ]] || fail "models"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/live") == 200 ]] || fail "live"

# --- offload down the tiers and a disk onboard ------------------------------------------------
sectors0=$(disk_read_sectors "$CACHE")
A=$(words a 1000)
r=$(complete "{\"prompt\":\"$A\",\"max_tokens\":8}")
[[ $(jq .usage.prompt_tokens <<<"$r") -eq 1000 ]] || fail "prompt_tokens: $r"
[[ $(jq .usage.prompt_tokens_details.cached_tokens <<<"$r") -eq 0 ]] || fail "first has cache: $r"
for p in b c d e f g; do
  complete "{\"prompt\":\"$(words $p 1000)\",\"max_tokens\":8}" >/dev/null
done
d2h=$(metric kvbm_offload_blocks_d2h)
# host->disk offloads complete on the engine's writer thread, after the answers: wait for them
# (a busy machine delays that thread), then check the count
for _ in $(seq 100); do
  [[ $(metric kvbm_offload_blocks_h2d) -ge 217 ]] && break
  sleep 0.1
done
h2d=$(metric kvbm_offload_blocks_h2d)
[[ $d2h -eq 217 ]] || fail "d2h = $d2h, want 217 (7 prompts x 31 full blocks)"
[[ $h2d -eq 217 ]] || fail "h2d = $h2d, want 217"
files=$(find "$CACHE" -name 'kvbench-*.kvblk' | wc -l)
[[ $files -eq 217 ]] || fail "cache dir holds $files block files, want 217"
[[ $(metric kvbm_cache_evictions) -gt 0 ]] || fail "no host evictions"

r=$(complete "{\"prompt\":\"$A\",\"max_tokens\":8}")
cached=$(jq .usage.prompt_tokens_details.cached_tokens <<<"$r")
[[ $cached -eq 992 ]] || fail "replay cached_tokens = $cached, want 992: $r"
[[ $(metric kvbm_onboard_blocks_d2d) -eq 31 ]] || fail "d2d onboard = $(metric kvbm_onboard_blocks_d2d)"
[[ $(metric kvbm_onboard_blocks_h2d) -eq 0 ]] || fail "unexpected h2d onboard"
[[ $(metric kvbm_matched_tokens) -eq 992 ]] || fail "matched tokens"
[[ $(metric kvbm_disk_bytes_read) -eq $((31 * 32768)) ]] || fail "disk bytes read"
sectors1=$(disk_read_sectors "$CACHE")
if [[ -n $sectors0 && -n $sectors1 ]]; then
  if grep -q 'disk O_DIRECT' "$ENGINE_LOG"; then
    (( sectors1 - sectors0 >= 31 * 64 )) ||
      fail "block device read $((sectors1 - sectors0)) sectors, want >= $((31 * 64))"
  fi
else
  echo "note: no block device statistics for $CACHE; device read check skipped"
fi
# and once more: now from host memory (prefetched), an h2d onboard... but G1 still holds it
r=$(complete "{\"prompt\":\"$A\",\"max_tokens\":8}")
[[ $(jq .usage.prompt_tokens_details.cached_tokens <<<"$r") -eq 992 ]] || fail "G1 reuse"

# --- streaming: OpenAI SSE format with include_usage ------------------------------------------
s=$(curl -sN "$BASE/v1/completions" -H 'x-request-id: my-req-7' -D "$TMP/h" \
  -d '{"prompt":"stream me","max_tokens":6,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}')
grep -qi '^x-request-id: my-req-7' "$TMP/h" || fail "x-request-id not echoed"
grep -qi '^content-type: text/event-stream' "$TMP/h" || fail "content type"
events=$(grep -c '^data: ' <<<"$s")
[[ $events -eq 8 ]] || fail "want 6 text chunks + usage + [DONE], got $events: $s"
[[ $(grep '^data: ' <<<"$s" | tail -1) == "data: [DONE]" ]] || fail "no [DONE]"
usage=$(grep '^data: ' <<<"$s" | tail -2 | head -1 | sed 's/^data: //')
[[ $(jq '.choices | length' <<<"$usage") -eq 0 ]] || fail "usage chunk has choices"
[[ $(jq .usage.completion_tokens <<<"$usage") -eq 6 ]] || fail "usage: $usage"
last=$(grep '^data: ' <<<"$s" | sed -n 6p | sed 's/^data: //')
[[ $(jq -r '.choices[0].finish_reason' <<<"$last") == length ]] || fail "finish_reason: $last"
text=$(grep '^data: {' <<<"$s" | head -6 | sed 's/^data: //' | jq -j '.choices[0].text')
[[ $(wc -w <<<"$text") -ge 5 ]] || fail "streamed text: $text"
# every event is followed by a blank line
[[ $(grep -c '^$' <<<"$s") -ge 7 ]] || fail "events not blank-line separated"

# same request, unary and streamed, gives the same text (deterministic for seed + prompt)
u=$(complete '{"prompt":"determinism","max_tokens":10,"seed":5}' | jq -r '.choices[0].text')
st=$(curl -sN "$BASE/v1/completions" -d '{"prompt":"determinism","max_tokens":10,"seed":5,"stream":true}' |
  grep '^data: {' | sed 's/^data: //' | jq -j '.choices[0].text')
[[ "$u" == "$st" ]] || fail "unary '$u' != streamed '$st'"

# stop strings are honoured and never appear in the text
w=$(complete '{"prompt":"determinism","max_tokens":10,"seed":5}' | jq -r '.choices[0].text' | awk '{print $3}')
r=$(complete "{\"prompt\":\"determinism\",\"max_tokens\":10,\"seed\":5,\"stop\":[\" $w\"]}")
[[ $(jq -r '.choices[0].finish_reason' <<<"$r") == stop ]] || fail "stop: $r"
grep -q " $w" <<<"$(jq -r '.choices[0].text' <<<"$r")" && fail "stop string in text: $r"

# token-id prompts are accepted
r=$(complete '{"prompt":[1,2,3,4,5],"max_tokens":2}')
[[ $(jq .usage.prompt_tokens <<<"$r") -eq 5 ]] || fail "token prompt: $r"

# --- error answers ----------------------------------------------------------------------------
code() { curl -s -o "$TMP/body" -w '%{http_code}' "$BASE/v1/completions" "$@"; }
[[ $(code -d '{"prompt": nope') == 400 ]] || fail "malformed JSON"
jq -e '.error.message and .error.type and .error.code == 400' "$TMP/body" >/dev/null || fail "error object: $(cat "$TMP/body")"
[[ $(code -d '{"max_tokens":4}') == 400 ]] || fail "missing prompt"
grep -q prompt "$TMP/body" || fail "missing prompt message"
[[ $(code -d '{"prompt":"x","max_tokens":"many"}') == 400 ]] || fail "wrong type"
[[ $(code -d '{"prompt":"x","stream":"yes"}') == 400 ]] || fail "wrong type stream"
[[ $(code -d '{"prompt":"x","model":"other/model"}') == 404 ]] || fail "unknown model"
[[ $(code -d "{\"prompt\":\"$(words z 9000)\",\"max_tokens\":4}") == 400 ]] || fail "prompt over max_num_tokens"
grep -q max_num_tokens "$TMP/body" || fail "message lacks max_num_tokens: $(cat "$TMP/body")"
head -c 17000000 /dev/zero | tr '\0' 'a' >"$TMP/big"
[[ $(code --data-binary @"$TMP/big") == 413 ]] || fail "oversized body"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/nope") == 404 ]] || fail "unknown path"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/v1/models") == 405 ]] || fail "method"

# --- frontend metrics -------------------------------------------------------------------------
fm=$(curl -s "$BASE/metrics")
grep -q '^dynamo_frontend_requests_total{.*status="success"}' <<<"$fm" || fail "requests_total"
grep -q '^dynamo_frontend_time_to_first_token_seconds_bucket' <<<"$fm" || fail "ttft histogram"
grep -q '^dynamo_frontend_inter_token_latency_seconds_count' <<<"$fm" || fail "itl histogram"
[[ $(metric dynamo_frontend_model_kv_cache_block_size "$BASE/metrics") -eq 32 ]] || fail "block size"

# --- chat: /v1/chat/completions on the same path -------------------------------------------
grep -q 'chat template: plain (from the model id kvbench/tiny)' "$ENGINE_LOG" || fail "chat template log"
req_total() { curl -s "$BASE/metrics" | awk '/^dynamo_frontend_requests_total\{/ {s += $NF} END {print s + 0}'; }
before=$(req_total)
C=$(words c 60)
chat() { curl -sf "$BASE/v1/chat/completions" -d "$1"; }
r=$(chat "{\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},{\"role\":\"user\",\"content\":\"$C\"}],\"max_tokens\":4}")
[[ $(jq -r .object <<<"$r") == chat.completion && $(jq -r '.choices[0].message.role' <<<"$r") == assistant ]] ||
  fail "chat answer: $r"
n=$(jq .usage.prompt_tokens <<<"$r")
# the plain template's text through /v1/completions is the same prompt, and finds its blocks
rendered=$(jq -n --arg c "$C" '"System: sys\n\nUser: " + $c + "\n\nAssistant:"')
r=$(complete "{\"prompt\":$rendered,\"max_tokens\":4}")
[[ $(jq .usage.prompt_tokens <<<"$r") -eq $n ]] || fail "chat prompt $n tokens, rendered text: $r"
[[ $(jq .usage.prompt_tokens_details.cached_tokens <<<"$r") -ge $((n / 32 * 32 - 32)) ]] ||
  fail "the rendered text did not reuse the chat's blocks: $r"
s=$(curl -sN "$BASE/v1/chat/completions" -d '{"messages":[{"role":"user","content":"stream me"}],"max_completion_tokens":5,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}')
ev=$(grep '^data: {' <<<"$s" | sed 's/^data: //')
[[ $(jq -sc '.[0].choices[0].delta' <<<"$ev") == '{"role":"assistant","content":""}' ]] || fail "role chunk: $s"
[[ $(jq -s '[.[1:][] | .choices[]?.delta.role // empty] | length' <<<"$ev") -eq 0 ]] || fail "role twice: $s"
[[ $(jq -s '[.[] | select(.choices | length > 0) | .choices[0].delta.content // empty] | length' <<<"$ev") -eq 6 ]] ||
  fail "want the role chunk + 5 content chunks: $s"
[[ $(jq -s '.[-1].usage.completion_tokens' <<<"$ev") -eq 5 && $(jq -s '.[-1].choices | length' <<<"$ev") -eq 0 ]] ||
  fail "usage chunk: $s"
[[ $(grep '^data: ' <<<"$s" | tail -1) == "data: [DONE]" ]] || fail "chat stream without [DONE]"
[[ $(jq -rs '.[0].object' <<<"$ev") == chat.completion.chunk ]] || fail "chunk object"
[[ $(curl -s -o "$TMP/body" -w '%{http_code}' "$BASE/v1/chat/completions" -d '{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}') == 400 ]] ||
  fail "tools accepted"
[[ $(jq -r .error.param "$TMP/body") == tools ]] || fail "tools refusal: $(cat "$TMP/body")"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/chat/completions") == 405 ]] || fail "chat GET"
# the request counters count chat requests as completions ones (2 chat, 1 completion, 1 refused)
[[ $(req_total) -eq $((before + 4)) ]] || fail "requests_total: $before -> $(req_total)"

# --- a busy port is a clear error -------------------------------------------------------------
port=${BASE##*:}
expect_exit 1 "$KVBENCH" serve --profile tiny --port "$port" --metrics-port 0 --kv-mode off
grep -q "port $port on 127.0.0.1 is already in use" <<<"$ERR" || fail "busy port message: $ERR"

# --- shutdown removes the cache ---------------------------------------------------------------
stop_engine
[[ $(find "$CACHE" -name 'kvbench-*.kvblk' | wc -l) -eq 0 ]] || fail "cache files left behind"
grep -q "ERROR: AddressSanitizer\|LeakSanitizer" "$ENGINE_LOG" && fail "sanitizer report in engine log"

# --- chat with a real tokenizer: the template from its tokenizer_config.json ------------------
TOKDIR="$TMP/llama3"
mkdir -p "$TOKDIR"
gzip -dc "$SRC/tests/fixtures/tokenizers/llama3/tokenizer.json.gz" >"$TOKDIR/tokenizer.json"
cp "$SRC/tests/fixtures/tokenizers/llama3/tokenizer_config.json" "$TOKDIR/"
start_engine --profile tiny --personality vllm --kv-mode off --tokenizer "$TOKDIR"
grep -q "chat template: llama3 (from the chat_template of $TOKDIR/tokenizer_config.json)" "$ENGINE_LOG" ||
  fail "chat template from tokenizer_config.json: $(cat "$ENGINE_LOG")"
M='[{"role":"system","content":"Be brief."},{"role":"user","content":"How are you today?"}]'
r=$(chat "{\"messages\":$M,\"max_tokens\":2}")
n=$(jq .usage.prompt_tokens <<<"$r")
# vLLM's /tokenize of the messages counts the same prompt; without the generation prompt, fewer
t=$(curl -sf "$BASE/tokenize" -d "{\"messages\":$M}")
[[ $(jq .count <<<"$t") -eq $n && $(jq '.tokens[0]' <<<"$t") -eq 128000 ]] || fail "tokenize messages: $t vs $n"
t=$(curl -sf "$BASE/tokenize" -d "{\"messages\":$M,\"add_generation_prompt\":false}")
[[ $(jq .count <<<"$t") -eq $((n - 4)) ]] || fail "tokenize without the generation prompt: $t"
# the text of the template without its BOS through /v1/completions (vLLM adds its own BOS): the
# same token count
p='"<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHow are you today?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"'
r=$(complete "{\"prompt\":$p,\"max_tokens\":2}")
[[ $(jq .usage.prompt_tokens <<<"$r") -eq $n ]] || fail "the rendered text without BOS: $r vs $n"
stop_engine
start_engine --profile tiny --personality llamacpp --kv-mode off --chat-template chatml
grep -q 'chat template: chatml (from --chat-template)' "$ENGINE_LOG" || fail "--chat-template log"
[[ $(curl -sf "$BASE/props" | jq -r .chat_template) == chatml ]] || fail "/props chat_template"
s=$(curl -sN "$BASE/v1/chat/completions" -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true}')
[[ $(grep '^data: {' <<<"$s" | head -1 | sed 's/^data: //' | jq -c '.choices[0].delta') == '{"role":"assistant","content":null}' ]] ||
  fail "llama.cpp role chunk: $s"
grep '^data: {' <<<"$s" | tail -1 | sed 's/^data: //' | jq -e '.timings.prompt_n and .usage.prompt_tokens' >/dev/null ||
  fail "llama.cpp timings on the last chat chunk: $s"
stop_engine
echo "engine: ok"
