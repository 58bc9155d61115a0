#!/usr/bin/env bash
# A --duration-s run over a set larger than the prompt ring (--requests 20000 and more is produced
# while the run sends): prompts come from a ring of entries and, once the run has sent them all,
# are made again from their index, so memory follows the concurrency, not the run's length. Every
# row's prompt is the one the manifest lists for its id (same bytes when made again), the
# manifest lists each prompt once, and the requests past the set's size reuse its ids in order.
source "$(dirname "$0")/lib.sh"

start_engine --profile tiny --kv-mode off --speedup 0 --max-num-seqs 64 --log-level WARNING
R="$TMP/results"
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --results-root "$R" \
  --kv-mode off --warmup 0 --concurrency 32 --requests 20000 --duration-s 20 --max-tokens 1 \
  --short-range 16:16 --tokenizer heuristic --add-bos yes --no-progress --log-level WARNING \
  --run-id ring
M="$R/ring/prompts_manifest.jsonl"
Q="$R/ring/requests.jsonl"
rows=$(wc -l <"$Q")
echo "duration: $rows requests in 20 s over a set of 20000"
# the case is the set coming round: 20000 in 20 s needs 1000 requests/s, a third of what this
# engine (--speedup 0, one token) serves an ASan build on a busy 2-core machine
((rows > 20000)) || fail "the set never came round: only $rows requests in 20 s"
# each prompt once in the manifest, however often it was made
[[ $(jq -r .prompt_id "$M" | sort | uniq -d | wc -l) -eq 0 ]] || fail "the manifest lists a prompt twice"
# every row's prompt is the manifest's prompt of that id, byte for byte
jq -n --slurpfile m "$M" --slurpfile q "$Q" '
  ($m | map({(.prompt_id): .prompt_sha256}) | add) as $sha
  | [$q[] | select($sha[.prompt_id] != .prompt_sha256)] | length' >"$TMP/bad"
[[ $(cat "$TMP/bad") -eq 0 ]] || fail "$(cat "$TMP/bad") rows carry another prompt than the manifest's"
# request i sends prompt (i - 1) % 20000: past the set's size, the ids come round again
jq -e -s 'all(.[]; .prompt_id == ("main-" + ((.request_index - 1) % 20000 | tostring |
  ("00000" + .)[-5:])))' "$Q" >/dev/null || fail "a request sent another prompt than its index says"
echo "duration: the set came round ($((rows - 20000)) requests made their prompts again)"
stop_engine
echo "duration: ok"
