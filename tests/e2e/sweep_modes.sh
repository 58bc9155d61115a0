#!/usr/bin/env bash
# kvbench sweep --modes cpu_only,cpu_disk (docs/SWEEP.md) on a multi_turn workload whose
# conversations outgrow the host tier: kvbench serve restarted in each mode before each search;
# cpu_only re-prefills every round, cpu_disk onboards the history from disk, and the sweep reports
# a capacity ratio above 1 with its 95 % interval above 1 and the verdict "more".
source "$(dirname "$0")/lib.sh"

# 4 users x ~4,000 tokens at 64-token blocks: about 260 blocks, against 128 device + 64 host.
# The answers are 2 tokens and a decode step is cheap (--weights-gb 1), so that a round's time is
# its prefill, not the answers' decode, which no KV tier shortens (with the default 100-token
# answers the decode dominated and the ratio came out near 1). A cold prefill of one conversation
# is ~60 ms (8,000 tokens/s / --speedup 8): cpu_only pays it every round, so it keeps up to about
# 4 users / 4 x 60 ms = 16 req/s; cpu_disk pays it in round 1 only (4 users at once, well within
# ttft_ms=400) and then onboards the history from disk, so its capacity is several times more.
ENGINE=(--profile llama-3.1-8b-fp8 --hardware gb10 --speedup 8 --kv-bytes-per-token 2048
  --weights-gb 1 --block-size 64 --gpu-cache-blocks 128 --cpu-cache-blocks 64
  --disk-cache-blocks 4096 --disable-disk-offload-filter --tokenizer heuristic --log-level WARNING)
start_engine "${ENGINE[@]}" --kv-mode cpu_only
PORT=${BASE##*:}
MPORT=$(sed 's|.*:\([0-9]*\)/metrics|\1|' <<<"$METRICS")
stop_engine

cat >"$TMP/restart.sh" <<SH
#!/bin/sh
if [ -s "$TMP/engine.pid" ]; then
  pid=\$(cat "$TMP/engine.pid")
  kill -TERM "\$pid" 2>/dev/null
  while kill -0 "\$pid" 2>/dev/null; do sleep 0.1; done
fi
"$KVBENCH" serve ${ENGINE[*]} --kv-mode "\$1" --disk-cache-dir "$TMP/kvbm" --port $PORT \
  --metrics-port $MPORT >>"$TMP/engine.log" 2>&1 </dev/null &
echo \$! >"$TMP/engine.pid"
SH
chmod +x "$TMP/restart.sh"
PIDFILES+=("$TMP/engine.pid")

RES=$TMP/results
expect_exit 0 "$KVBENCH" sweep --base-url "$BASE" --kvbm-metrics-url "$METRICS" --stream \
  --tokenizer heuristic --results-root "$RES" --no-progress --log-level WARNING \
  --scenario multi_turn --users 4 --rounds 8 --system-prompt-tokens 64 --history-tokens 4000 \
  --answer-tokens 2 --warmup 4 --slo ttft_ms=400 --start-rate 8 --precision 0.1 \
  --ready-interval-s 0.2 --modes cpu_only,cpu_disk --restart-cmd "$TMP/restart.sh {mode}" \
  --sweep-id modes
J=$RES/modes/sweep.json
FIG=$(jq -c '[(.modes[] | [.label, .capacity.value, .capacity.ci95_low, .capacity.ci95_high]),
  (.ratios[0] | [.ratio, .ci95_low, .ci95_high])]' "$J")
grep -q '^verdict: cpu_disk serves [0-9.]*x the load of cpu_only (95 % CI [0-9.]*-[0-9.]*x) with 90 % of requests within ttft_ms <= 400$' <<<"$OUT" ||
  fail "verdict: $(grep '^verdict' <<<"$OUT") $FIG"
[[ $(grep -c 'restarting the server' <<<"$OUT") -eq 6 ]] || fail "6 restarts expected"
# the mechanism: cpu_only finds next to nothing of a conversation again (the host tier is too
# small; a step of high load may keep a little of it between rounds: hit rate 0.13 once, 0.014
# as a rule), cpu_disk onboards the histories from disk in every step
STEPS=$(jq -c '[.modes[] | [.label, [.searches[].steps[] | [.offered, .judgement,
  .kv_hit_rate, .onboard_blocks_disk]]]]' "$J")
jq -e '[.modes[] | .capacity | .end == "found" and .searches == 3] == [true, true]
  and ([.modes[0].searches[].steps[] | .onboard_blocks_disk == 0] | all)
  and ([.modes[0].searches[].steps[] | .kv_hit_rate] | add / length < 0.1)
  and ([.modes[1].searches[].steps[] | .onboard_blocks_disk > 0] | all)
  and ([.modes[1].searches[].steps[] | .kv_hit_rate] | add / length > 0.5)' \
  "$J" >/dev/null || fail "modes: $FIG; steps [offered, judgement, hit rate, disk onboards]: $STEPS"
jq -e '.decision.verdict == "more" and (.ratios[0] | .mode == "cpu_disk" and .baseline == "cpu_only"
  and .verdict == "more" and .ratio > 1 and .ci95_low > 1 and .ci95_low <= .ratio)' "$J" \
  >/dev/null || fail "ratio: $(jq -c .ratios "$J")"
echo "sweep_modes: [cpu_only, cpu_disk capacities (req/s, ci95)], [ratio, ci95]: $FIG"
