#!/usr/bin/env bash
# eviction_replay with --pressure auto against `kvbench serve`: set B is sized from the tiers the
# engine reports (no hand-tuned set sizes) and replay_A reads set A back from disk, where a fixed
# set B that is too small does not; small disk tiers give the pressure_impossible warning with the
# figures; the engine's disk offload filter on names the filter as the cause; capacities from
# flags; an engine that reports none gives pressure_auto_unavailable and
# keeps --eviction-b-requests; and the flags' one-line errors.
source "$(dirname "$0")/lib.sh"

# The engine's own disk offload filter is off here: with it, set A reaches the disk only when it is
# seen twice, which is the diagnosis tested in test_signals, not the sizing tested here.
ENGINE=(--profile tiny --kv-mode cpu_disk --gpu-cache-blocks 64 --cpu-cache-blocks 128
  --disable-disk-offload-filter --speedup 50 --log-level WARNING)
RUN=(--scenario eviction_replay --eviction-a-requests 2 --long-range 1024:1024 --warmup 0
  --max-tokens 8 --stream --results-root "$TMP/results" --no-progress --log-level WARNING)
kv() { jq -r ".overall_summary.eviction_replay_signal_kvbm.$2" "$TMP/results/$1/summary.json"; }

start_engine "${ENGINE[@]}" --disk-cache-blocks 4096 --disk-cache-dir "$TMP/kv1"
# a set B of one prompt leaves set A in the faster tiers: no read-back from disk
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
  --eviction-b-requests 1 --run-id fixed
[[ $(kv fixed disk_onboard_in_replay) == false ]] || fail "fixed: a one-prompt set B read A from disk"
[[ $(jq -r '.pressure_plan.mode' "$TMP/results/fixed/config.json") == fixed ]] || fail "fixed: plan"

expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
  --pressure auto --run-id auto
P=$TMP/results/auto/config.json
jq -e '.pressure_plan | .mode == "auto" and .feasible == true and .block_tokens == 32
  and .capacity_blocks == {device: 64, host: 128, disk: 4096}
  and .sources.device == "kvbench_tier_capacity_blocks"
  and .set_b.blocks > 192 and .set_a.blocks + .set_b.blocks <= 4096' "$P" >/dev/null ||
  fail "auto: plan $(jq -c .pressure_plan "$P")"
nb=$(jq '.pressure_plan.set_b.requests' "$P")
[[ $(jq '[.phase_summaries[] | select(.phase == "pressure_B")][0].requests' \
  "$TMP/results/auto/summary.json") -eq $nb ]] || fail "auto: pressure_B did not send the planned $nb"
[[ $(kv auto signal) == disk_rehydrate_detected && $(kv auto disk_onboard_in_replay) == true ]] ||
  fail "auto: $(kv auto interpretation)"
# shellcheck disable=SC2016 # backticks of the Markdown heading
grep -qF '### Pressure plan (`--pressure auto`): feasible' "$TMP/results/auto/report.md" ||
  fail "auto: the report has no pressure plan"

# capacities from flags win over the engine's
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
  --pressure auto --tier-blocks 32,0,4096 --kv-block-tokens 64 --run-id flags
jq -e '.pressure_plan | .capacity_blocks == {device: 32, host: 0, disk: 4096} and .block_tokens == 64
  and .sources.host == "flag --tier-blocks"' "$TMP/results/flags/config.json" >/dev/null ||
  fail "flags: $(jq -c .pressure_plan "$TMP/results/flags/config.json")"
stop_engine

# a disk tier too small for set A and the pressure: the warning, with the figures
start_engine "${ENGINE[@]}" --disk-cache-blocks 200 --disk-cache-dir "$TMP/kv2"
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
  --pressure auto --run-id small
S=$TMP/results/small/summary.json
jq -e '[.warnings[] | select(.code == "pressure_impossible")] | length == 1' "$S" >/dev/null ||
  fail "small: no pressure_impossible warning: $(jq -c .warnings "$S")"
jq -e '.pressure_plan.feasible == false and (.pressure_plan.reason | test("disk tier \\(200 blocks\\)"))' \
  "$TMP/results/small/config.json" >/dev/null || fail "small: $(jq -c .pressure_plan "$TMP/results/small/config.json")"
stop_engine

# the engine's disk offload filter on (its default, and the runbook's section 9 case): set A is
# sized out of the faster tiers, yet never reached the disk: the verdict names the filter, with
# the figures (the same as the runbook's command verbatim against the default engine gives)
start_engine --profile tiny --kv-mode cpu_disk --gpu-cache-blocks 64 --cpu-cache-blocks 128 \
  --disk-cache-blocks 4096 --disk-cache-dir "$TMP/kv3" --speedup 50 --log-level WARNING
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" "${RUN[@]}" \
  --pressure auto --run-id filter
jq -e '.overall_summary.eviction_replay_signal_kvbm
  | .signal != "disk_rehydrate_detected" and .diagnosis.cause == "set_a_never_reached_disk"
    and .diagnosis.warm_offload_blocks_disk == 0 and .diagnosis.warm_offload_blocks_host > 0
    and .diagnosis.replay_offload_blocks_disk > 0
    and (.interpretation | test("disk offload filter admits a block only on its second sighting"))' \
  "$TMP/results/filter/summary.json" >/dev/null ||
  fail "filter: $(jq -c .overall_summary.eviction_replay_signal_kvbm "$TMP/results/filter/summary.json")"
stop_engine

# an engine that reports no capacities (metrics elsewhere): said, and set B stays as given
start_engine --profile tiny --kv-mode off --speedup 50 --log-level WARNING
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "http://127.0.0.1:1/metrics" \
  --allow-missing-kvbm-metrics --kvbm-metrics-timeout-s 1 "${RUN[@]}" --pressure auto \
  --kv-mode off --run-id unknown
S=$TMP/results/unknown/summary.json
jq -e '[.warnings[] | select(.code == "pressure_auto_unavailable")] | length == 1' "$S" >/dev/null ||
  fail "unknown: $(jq -c .warnings "$S")"
[[ $(jq '[.phase_summaries[] | select(.phase == "pressure_B")][0].requests' "$S") -eq 64 ]] ||
  fail "unknown: set B is not --eviction-b-requests' default"

# one-line errors
for bad in "--pressure auto" "--scenario eviction_replay --pressure auto --eviction-b-requests 9" \
  "--scenario eviction_replay --tier-blocks 1,2,3" \
  "--scenario eviction_replay --pressure auto --tier-blocks 1,2" \
  "--scenario eviction_replay --pressure auto --tier-blocks 1,-2,3" "--pressure sometimes"; do
  # shellcheck disable=SC2086
  expect_exit 2 "$KVBENCH" run --base-url "$BASE" $bad
  one_line "$ERR"
done
echo "pressure: ok"
