#!/usr/bin/env bash
# --scenario breakeven against `kvbench serve`, whose time model is known (docs/ENGINE.md,
# src/engine/sched.c): a prompt of L tokens of which m are found in a tier costs
#     (L - m) x P  +  m x C_tier           (modelled, then / --speedup)
#     P      = 2 x params / prefill FLOP/s              prefill, per token
#     C_host = KV bytes per token / --h2d-gbps          G2 -> G1 copy, per token
#     C_disk = KV bytes per token / --disk-read-gbps    G3 read (a slow disk), per token
#     C_device = 0
# With the ladder's lengths multiples of the 32-token block, m = L - 32 (the last block is
# computed), so warm beats cold exactly when C_tier < P: at every length, or at none (the lines
# cross at 32 P / (P - C) tokens, below the ladder). Here: llama-3.1-8b-fp8 on gb10 (8.03e9
# params, 128 TFLOP/s: P = 125.47 µs), KV 1024 bytes/token, h2d 0.125 GB/s (C_host = 8.19 µs),
# --speedup 5, measured in wall time: P = 25.09 µs, C_host = 1.64 µs. Two settings:
#     disk 0.0125 GB/s: C_disk = 81.9 / 5 = 16.38 µs < P   disk pays at every length
#     disk 0.005 GB/s:  C_disk = 204.8 / 5 = 40.96 µs > P  disk pays at none
# The scenario must recover P within ±15 %, order device < host < disk, find the break-even kind
# (every / none: within one ladder step of the engine's, which lies below the first step), and
# each warm row must be verified from the engine's tier counters. Then: kv mode cpu_only skips
# the disk with its reason; an engine that does not say which tier served (vLLM's face) leaves
# the host rows unverified (null, never claimed); the flags' one-line errors.
source "$(dirname "$0")/lib.sh"

ENGINE=(--profile llama-3.1-8b-fp8 --hardware gb10 --speedup 5 --kv-bytes-per-token 1024
  --h2d-gbps 0.125 --gpu-cache-blocks 300 --cpu-cache-blocks 700 --disk-cache-blocks 4000
  --tokenizer heuristic --max-num-tokens 8448 --log-level WARNING)
RUN=(--scenario breakeven --breakeven-lengths 1k,2k,4k,8k --breakeven-repeats 3 --max-tokens 2
  --engine-max-input-tokens 8448 --input-token-safety-margin 0 --tokenizer heuristic --stream
  --warmup 0 --results-root "$TMP/results" --no-progress --log-level WARNING)
P=25.09

for setting in pays:0.0125:16.38:offload_pays:every_measured_length \
  slow:0.005:40.96:offload_does_not_pay:none_of_the_measured_lengths; do
  IFS=: read -r name gbps cdisk signal kind <<<"$setting"
  start_engine "${ENGINE[@]}" --disk-read-gbps "$gbps"
  expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
    --run-id "$name"
  stop_engine
  S=$TMP/results/$name/summary.json
  B=$(jq -c '.breakeven | del(.rows, .ladder)' "$S")
  echo "$name: prefill $(jq .breakeven.prefill_us_per_token "$S") µs/token (expected $P)," \
    "disk $(jq .breakeven.fits.disk.per_token_us "$S") (expected $cdisk)," \
    "break-even $(jq -c '.breakeven.break_even | map_values(.kind)' "$S")"
  # 4 lengths x 3 repeats x (cold, device, host, disk), each verified from the counters
  jq -e '.breakeven.rows | length == 48 and all(.[]; .verified == true and .in_fit)' "$S" \
    >/dev/null || fail "$name: rows $(jq -c '[.breakeven.rows[] | select(.verified != true)]' "$S")"
  jq -e --argjson p "$P" '.breakeven | (.prefill_us_per_token / $p - 1) | fabs <= 0.15' "$S" \
    >/dev/null || fail "$name: prefill not within 15 % of $P: $B"
  jq -e --argjson c "$cdisk" '.breakeven.fits.disk.per_token_us / $c - 1 | fabs <= 0.15' "$S" \
    >/dev/null || fail "$name: disk onboard not within 15 % of $cdisk: $B"
  jq -e '.breakeven.fits | .device.per_token_us < .host.per_token_us
    and .host.per_token_us < .disk.per_token_us' "$S" >/dev/null || fail "$name: tier order: $B"
  jq -e --arg k "$kind" --arg s "$signal" '.breakeven
    | .break_even.host.kind == "every_measured_length" and .break_even.disk.kind == $k
    and .verdict.signal == $s and .verdict.tier == "disk"
    and (.break_even.disk.speedup | length == 4)' "$S" >/dev/null || fail "$name: $B"
  # the fillers and the primes are not in the overall figures, and not the answer to compare
  jq -e '.breakeven.ladder | all(.[]; .measured and .skipped == {} and .filler_disk_tokens > 0)' \
    "$S" >/dev/null || fail "$name: ladder $(jq -c .breakeven.ladder "$S")"
  R=$TMP/results/$name/report.md
  grep -qF "### breakeven: \`$signal\`" "$R" || fail "$name: report.md has no verdict"
  grep -qF '| disk | 4 |' "$R" || fail "$name: report.md has no fit table"
  grep -q 'id="chart-breakeven"' "$TMP/results/$name/report.html" || fail "$name: no chart"
done

# kv mode cpu_only: no disk tier, said so; the host is still measured
start_engine "${ENGINE[@]}" --kv-mode cpu_only
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
  --breakeven-lengths 1k,2k,4k --breakeven-repeats 1 --kv-mode cpu_only --run-id cpu_only
stop_engine
S=$TMP/results/cpu_only/summary.json
jq -e '.breakeven | all(.ladder[]; .skipped.disk == "kv mode cpu_only: no disk tier")
  and ([.rows[] | .source] | index("disk") == null) and .verdict.tier == "host"
  and .break_even.disk.kind == "unknown"' "$S" >/dev/null ||
  fail "cpu_only: $(jq -c '.breakeven | del(.rows)' "$S")"

# an engine that does not say which tier served (vLLM's metrics): host rows null, not claimed
start_engine "${ENGINE[@]}" --personality vllm
expect_exit 0 "$KVBENCH" run --base-url "$BASE" "${RUN[@]}" --breakeven-lengths 1k,2k,4k \
  --breakeven-repeats 1 --tier-blocks 300,700,4000 --kv-block-tokens 32 --run-id vllm
stop_engine
S=$TMP/results/vllm/summary.json
jq -e '.breakeven | all(.rows[] | select(.source == "host" or .source == "disk");
    .verified == null and (.in_fit | not) and (.evidence | test("does not say from which tier")))
  and .break_even.host.kind == "unknown" and .verdict.signal == "unavailable"' "$S" >/dev/null ||
  fail "vllm: $(jq -c '.breakeven | del(.ladder)' "$S")"

# kvbench compare over break-even runs: the verdict cites where onboarding beats recomputing in
# the mode that offloads (one engine under both labels, --skip-ready: the cpu_only label's runs
# measure the disk too, but only the offloading mode's break-even is cited)
start_engine "${ENGINE[@]}" --disk-read-gbps 0.0125
expect_exit 0 "$KVBENCH" compare --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
  --breakeven-lengths 1k,2k,4k --breakeven-repeats 1 --modes cpu_only,cpu_disk --repeats 1 \
  --skip-ready --compare-id cmp
stop_engine
C=$TMP/results/cmp/comparison.json
jq -e '.decision.break_even.disk.kind == "every_measured_length"
  and (.decision.line | test("; break-even in cpu_disk: host at every measured length, disk at every measured length$"))' \
  "$C" >/dev/null || fail "compare: $(jq -c '.decision | {line, break_even}' "$C")"
grep -qF 'break-even in cpu_disk: host at every measured length' "$TMP/results/cmp/comparison.md" ||
  fail "comparison.md: no break-even"

# one-line errors
expect_exit 2 "$KVBENCH" run --base-url http://127.0.0.1:9 --scenario breakeven \
  --breakeven-lengths 2k,1k
one_line "$ERR"
[[ $ERR == *"--breakeven-lengths: expected up to 16 ascending lengths"* ]] || fail "$ERR"
expect_exit 2 "$KVBENCH" run --base-url http://127.0.0.1:9 --breakeven-repeats 2
one_line "$ERR"
[[ $ERR == *"apply to --scenario breakeven"* ]] || fail "$ERR"
echo "PASS breakeven"
