#!/usr/bin/env bash
# One run from three client processes (`kvbench run --shard I/3`, started together) merged with
# `kvbench merge`, against one process at the same total load, each on a fresh `kvbench serve` in
# cpu_disk: the merged run holds every request of the single run exactly once (the same prompt
# ids and texts), its phase percentiles are jq's over the union of the shards' rows, and its
# verdicts are the single run's. A shard killed (SIGKILL) mid-run makes the merge invalid, naming
# it. A timed (--duration-s) run: every shard sends for the duration, its own prompts only.
source "$(dirname "$0")/lib.sh"

RES="$TMP/results"
ENGINE=(--profile tiny --kv-mode cpu_disk --gpu-cache-blocks 1024 --cpu-cache-blocks 2048
  --disk-cache-blocks 8192 --disable-disk-offload-filter --speedup 50)
# eviction_replay at a total concurrency of 3 (one stream per shard when split)
RUN=(--results-root "$RES" --no-progress --kv-mode cpu_disk --tokenizer heuristic --max-tokens 16
  --stream --temperature 0 --scenario eviction_replay --warmup 3 --concurrency 3
  --eviction-a-requests 6 --eviction-b-requests 12 --eviction-a-concurrency 3
  --eviction-b-concurrency 3 --long-range 6000:7600 --prompt-salt same)

# signals DIR — whether the run is valid and every verdict (`signal`) of its summary, sorted; not
# the block-device I/O verdict (eviction_replay_signal_io): it reads this machine's disk counters,
# which other processes move and the page cache hides, so it may differ between two runs
signals() {
  jq -c '[.run_valid, ([del(.. | .eviction_replay_signal_io?) | .. | objects | select(has("signal"))
    | .signal | tostring] | sort)]' "$1/summary.json"
}

# --- one process ---------------------------------------------------------------------------------
start_engine "${ENGINE[@]}" --disk-cache-dir "$TMP/kv-single"
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" --run-id single
stop_engine

# --- three shards, started together by the ready barrier (no --start-at to miss on a busy CI) ---
start_engine "${ENGINE[@]}" --disk-cache-dir "$TMP/kv-shards"
pids=()
for i in 0 1 2; do
  "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" --run-id sh \
    --shard "$i/3" >"$TMP/shard$i.log" 2>&1 &
  pids+=($!)
done
PIDS+=("${pids[@]}")
for i in 0 1 2; do
  wait "${pids[$i]}" || { cat "$TMP/shard$i.log" >&2; fail "shard $i exited non-zero"; }
done
stop_engine
SH=("$RES"/sh-shard{0,1,2}of3)
expect_exit 0 "$KVBENCH" merge "${SH[@]}" --results-root "$RES"
one_line "$OUT"
M="$RES/sh"
[[ $(jq -r .run_valid "$M/summary.json") == true ]] || fail "merged run invalid: $(jq -c .invalid_details "$M/summary.json")"

# every request of the single run exactly once: the same (phase, prompt id, prompt text)
rows() { jq -s -c 'map([.phase, .prompt_id, .prompt_sha256]) | sort' "$1/requests.jsonl"; }
[[ $(rows "$M") == "$(rows "$RES/single")" ]] || fail "the merged run's requests are not the single run's"
[[ $(jq -s 'map([.phase, .prompt_id]) | unique | length' "$M/requests.jsonl") -eq $(wc -l <"$M/requests.jsonl") ]] ||
  fail "a request twice in the merged run"
# the shards' own parts were disjoint: each sent a third of every phase
for i in 0 1 2; do
  [[ $(wc -l <"${SH[$i]}/requests.jsonl") -eq 9 ]] || fail "shard $i sent $(wc -l <"${SH[$i]}/requests.jsonl") requests, not 9"
done

# percentiles of the union of the shards' raw values, counts summed, per phase
for ph in warmup warm_A pressure_B replay_A; do
  want=$(cat "${SH[@]/%//requests.jsonl}" | jq -s -S -c --arg ph "$ph" "$UNION_STATS_JQ")
  got=$(jq -S -c --arg ph "$ph" ".phase_summaries[] | select(.phase == \$ph) | $UNION_STATS" "$M/summary.json")
  [[ $want == "$got" ]] || fail "$ph statistics: merged $got, jq over the union $want"
  n=$(jq --arg ph "$ph" '.phase_summaries[] | select(.phase == $ph) | .total_requests' "$M/summary.json")
  single=$(jq --arg ph "$ph" '.phase_summaries[] | select(.phase == $ph) | .total_requests' "$RES/single/summary.json")
  [[ $n -eq $single ]] || fail "$ph: merged $n requests, single $single"
done

# the verdicts are the single process's
a=$(signals "$RES/single") b=$(signals "$M")
[[ $a == "$b" ]] || fail "verdicts: single $a, merged $b"
[[ $(jq -r .overall_summary.eviction_replay_signal_kvbm.signal "$M/summary.json") == disk_rehydrate_detected ]] ||
  fail "merged eviction verdict: $(jq -c .overall_summary.eviction_replay_signal_kvbm "$M/summary.json")"
echo "shard_merge: single $a, merged $b"

# --- a timed run (--duration-s): every shard sends for the duration, its own prompts only ---------
start_engine --profile tiny --kv-mode cpu_disk --speedup 50 --disk-cache-dir "$TMP/kv-timed"
pids=()
for i in 0 1; do
  "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --results-root "$RES" \
    --no-progress --kv-mode cpu_disk --max-tokens 16 --stream --requests 8 --warmup 0 \
    --concurrency 2 --duration-s 2 --run-id timed --shard "$i/2" >"$TMP/t$i.log" 2>&1 &
  pids+=($!)
done
PIDS+=("${pids[@]}")
for i in 0 1; do
  wait "${pids[$i]}" || { cat "$TMP/t$i.log" >&2; fail "timed shard $i exited non-zero"; }
done
stop_engine
T=("$RES"/timed-shard{0,1}of2)
ids() { jq -r .prompt_id "$1/requests.jsonl" | sort -u; }
[[ -z $(comm -12 <(ids "${T[0]}") <(ids "${T[1]}")) ]] || fail "timed shards sent the same prompt ids"
for d in "${T[@]}"; do
  jq -e '.phase_summaries[] | select(.phase == "main") | .duration_s >= 1.9 and .total_requests > 8' \
    "$d/summary.json" >/dev/null || fail "$d: not a 2 s run cycling its prompts: $(jq -c '.phase_summaries[] | {phase, duration_s, total_requests}' "$d/summary.json")"
done
expect_exit 0 "$KVBENCH" merge "${T[@]}" --results-root "$RES"
n=$(cat "${T[@]/%//requests.jsonl}" | wc -l)
[[ $(jq .overall_summary.total_requests "$RES/timed/summary.json") -eq $n ]] || fail "timed merge: not every row counted"

# --- a shard killed mid-run: the merge is invalid and names it -----------------------------------
start_engine --profile tiny --kv-mode cpu_disk --speedup 1 --disk-cache-dir "$TMP/kv-killed"
pids=()
for i in 0 1 2; do
  "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --results-root "$RES" \
    --no-progress --kv-mode cpu_disk --max-tokens 64 --stream --requests 30 --warmup 0 \
    --concurrency 3 --run-id k --shard "$i/3" --shard-wait-s 20 \
    >"$TMP/k$i.log" 2>&1 &
  pids+=($!)
done
PIDS+=("${pids[@]}")
K1="$RES/k-shard1of3"
for _ in $(seq 300); do # until shard 1 has answers in its main phase
  [[ -s $K1/requests.jsonl ]] && break
  sleep 0.05
done
[[ -s $K1/requests.jsonl ]] || fail "shard 1 wrote no row"
kill -KILL "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
for i in 0 2; do
  wait "${pids[$i]}" || { cat "$TMP/k$i.log" >&2; fail "shard $i exited non-zero"; }
done
stop_engine
[[ ! -e $K1/summary.json ]] || fail "the killed shard wrote a summary"
expect_exit 1 "$KVBENCH" merge "$RES"/k-shard{0,1,2}of3 --results-root "$RES"
[[ $OUT == *"INVALID (shard_incomplete)"* ]] || fail "killed: $OUT"
jq -e --arg d "$K1" '.run_valid == false and .invalid_reason == "shard_incomplete"
  and (.invalid_details_kvbench[0] | .index == 1 and .dir == $d)' "$RES/k/summary.json" >/dev/null ||
  fail "killed: $(jq -c '[.invalid_reason, .invalid_details_kvbench]' "$RES/k/summary.json")"
echo "shard_merge: ok"
