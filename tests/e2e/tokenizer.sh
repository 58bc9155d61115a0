#!/usr/bin/env bash
# The exact tokenizer: every conformance row of Llama 3 and Qwen3 identical to the Hugging Face
# reference, `kvbench tokenize` in each mode, features we do not implement refused by name,
# --tokenizer auto resolution, and a run whose prompt counts equal what `kvbench serve
# --tokenizer` reports for the same file.
source "$(dirname "$0")/lib.sh"
FX="$SRC/tests/fixtures/tokenizers"
for m in llama3 qwen3; do
  mkdir -p "$TMP/$m"
  gzip -dc "$FX/$m/tokenizer.json.gz" >"$TMP/$m/tokenizer.json"
  gzip -dc "$FX/$m/expected_ids.jsonl.gz" >"$TMP/$m/expected.jsonl"
done

# --- conformance: every row -------------------------------------------------------------------
for m in llama3 qwen3; do
  # the rows without the reference's ids: what comes back was computed here
  jq -c 'del(.ids)' "$TMP/$m/expected.jsonl" >"$TMP/$m/input.jsonl"
  "$KVBENCH" tokenize --jsonl --tokenizer "$TMP/$m" "$TMP/$m/input.jsonl" >"$TMP/$m/got.jsonl"
  rows=$(wc -l <"$TMP/$m/expected.jsonl")
  [[ $(wc -l <"$TMP/$m/got.jsonl") -eq $rows ]] || fail "$m: row count"
  # the rows come back as given, with "ids" added: compare line by line
  bad=$(jq -n --slurpfile e "$TMP/$m/expected.jsonl" --slurpfile g "$TMP/$m/got.jsonl" \
    '[range(0; $e | length) | select(($g[.].ids | type) != "array" or $e[.].ids != $g[.].ids
      or $e[.].text != $g[.].text) | $e[.].id] | length')
  [[ $bad -eq 0 ]] || fail "$m: $bad of $rows rows differ from the reference"
  echo "$m: $rows/$rows rows identical to Hugging Face tokenizers"
done

# --- the modes ---------------------------------------------------------------------------------
T="$TMP/llama3/tokenizer.json"
printf 'Hello, World!' >"$TMP/hw.txt"
expect_exit 0 "$KVBENCH" tokenize --tokenizer "$T" <"$TMP/hw.txt"
[[ $OUT == "9906 11 4435 0" ]] || fail "--ids: $OUT"
expect_exit 0 "$KVBENCH" tokenize --count --tokenizer "$TMP/llama3" "$TMP/hw.txt"
[[ $OUT == 4 ]] || fail "--count: $OUT"
expect_exit 0 "$KVBENCH" tokenize --decode --tokenizer "$T" <<<"[9906, 11, 4435, 0, 128009]"
[[ $OUT == "Hello, World!<|eot_id|>" ]] || fail "--decode: $OUT"
# round trip through both tokenizers on every conformance text
checked=0
for m in llama3 qwen3; do
  while IFS= read -r row; do
    text=$(jq -j .text <<<"$row"; printf x)
    text=${text%x}
    ids=$(jq -c .ids <<<"$row")
    back=$("$KVBENCH" tokenize --decode --tokenizer "$TMP/$m" <<<"$ids"; printf x)
    [[ "${back%x}" == "$text" ]] || fail "$m decode($ids) != text"
    checked=$((checked + 1))
  done < <(head -40 "$TMP/$m/expected.jsonl")
done
[[ $checked -eq 80 ]] || fail "round trips checked: $checked"
expect_exit 1 "$KVBENCH" tokenize --decode --tokenizer "$T" <<<"999999999"
grep -q "not in the vocabulary" <<<"$ERR" || fail "unknown id: $ERR"
expect_exit 1 "$KVBENCH" tokenize --decode --tokenizer heuristic <<<"1 2"
grep -q "cannot be decoded" <<<"$ERR" || fail "heuristic decode: $ERR"
expect_exit 2 "$KVBENCH" tokenize --ids --count
expect_exit 1 "$KVBENCH" tokenize --jsonl --tokenizer "$T" <<<'{"no_text": 1}'
grep -q 'line 1: no "text" string' <<<"$ERR" || fail "jsonl without text: $ERR"

# --- refused: features we do not implement, named ------------------------------------------------
refuse() { # JQ-EDIT EXPECTED-WORDS
  jq -c "$1" "$T" >"$TMP/bad.json"
  expect_exit 1 "$KVBENCH" tokenize --count --tokenizer "$TMP/bad.json" <<<"x"
  one_line "$ERR"
  grep -q "$2" <<<"$ERR" || fail "refusal of '$1' does not name '$2': $ERR"
}
refuse '.normalizer = {"type": "NFKC"}' "the normalizer 'NFKC'"
refuse '.model.byte_fallback = true' "BPE byte_fallback"
refuse '.model.type = "WordPiece"' "the model type 'WordPiece'"
refuse '.pre_tokenizer = {"type": "Metaspace"}' "the pre-tokenizer 'Metaspace'"
refuse '.pre_tokenizer.pretokenizers[0].behavior = "Removed"' "the Split behavior 'Removed'"
refuse '.decoder = {"type": "WordPiece"}' "the decoder 'WordPiece'"
refuse '.added_tokens[0].lstrip = true' "lstrip, rstrip or single_word"
refuse '.model.merges[0] = "nosuch token"' "is not in the vocabulary"
echo '{"model": ' >"$TMP/broken.json"
expect_exit 1 "$KVBENCH" tokenize --count --tokenizer "$TMP/broken.json" <<<"x"
expect_exit 1 "$KVBENCH" tokenize --count --tokenizer "$TMP/nothing-here" <<<"x"
grep -q "nothing-here/tokenizer.json\|nothing-here" <<<"$ERR" || fail "missing file: $ERR"
expect_exit 2 "$KVBENCH" run --tokenizer "$TMP/nothing-here"
grep -q -- "--tokenizer" <<<"$ERR" || fail "run --tokenizer bad path: $ERR"

# --- auto: $BENCH_TOKENIZER, $MODEL_HANDLE, the Hugging Face cache, else the heuristic ----------
BENCH_TOKENIZER="$TMP/qwen3" expect_exit 0 "$KVBENCH" tokenize --count <"$TMP/hw.txt"
[[ $OUT == 4 ]] || fail "BENCH_TOKENIZER: $OUT"
BENCH_TOKENIZER="$TMP/qwen3" expect_exit 0 "$KVBENCH" tokenize <"$TMP/hw.txt"
[[ $OUT == "9707 11 4337 0" ]] || fail "BENCH_TOKENIZER picked the wrong file: $OUT"
snap="$TMP/hf/hub/models--meta-llama--Llama-3.1-8B-Instruct/snapshots/abc123"
mkdir -p "$snap" && cp "$T" "$snap/"
unset BENCH_TOKENIZER MODEL_HANDLE HF_HUB_CACHE
HF_HOME="$TMP/hf" MODEL_HANDLE=meta-llama/Llama-3.1-8B-Instruct \
  expect_exit 0 "$KVBENCH" tokenize <"$TMP/hw.txt"
[[ $OUT == "9906 11 4435 0" ]] || fail "HF cache lookup: $OUT"
HF_HOME="$TMP/empty" HOME="$TMP/empty" \
  expect_exit 0 "$KVBENCH" tokenize --count <"$TMP/hw.txt"
[[ $OUT == 4 ]] || fail "heuristic fallback count: $OUT"
grep -q "no tokenizer.json found" <<<"$ERR" || fail "no warning on fallback: $ERR"

# --- a run with the Llama 3 file against serve --tokenizer with the same file ---------------------
start_engine --profile tiny --kv-mode off --speedup 0 --tokenizer "$T"
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --kv-mode off \
  --tokenizer "$T" --prompt-set mixed --long-range 2000:6000 --requests 8 --warmup 0 --max-tokens 8 \
  --results-root "$TMP/results" --run-id tok
R="$TMP/results/tok/requests.jsonl"
[[ $(jq -s '[.[] | select(.prompt_tokens_est != .usage_prompt_tokens)] | length' "$R") -eq 0 ]] ||
  fail "estimate != engine's count: $(jq -c '[.prompt_tokens_est, .usage_prompt_tokens]' "$R")"
[[ $(jq -s '[.[] | select(.prompt_tokens_est != .prompt_target_tokens)] | length' "$R") -eq 0 ]] ||
  fail "tuning missed the target: $(jq -c '[.prompt_target_tokens, .prompt_tokens_est]' "$R")"
jq -e '.tokenizer == "tokenizer.json" and (.tokenizer_file.sha256 | length) == 64' \
  "$TMP/results/tok/config.json" >/dev/null || fail "config.json tokenizer"
[[ $(jq -r .tokenizer_file.sha256 "$TMP/results/tok/config.json") == $(sha256sum "$T" | cut -d' ' -f1) ]] || fail "sha256"
stop_engine
echo "tokenizer: ok"
