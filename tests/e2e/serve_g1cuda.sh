#!/usr/bin/env bash
# `kvbench serve --g1 cuda` end to end on the stand-in CUDA runtime (tests/support/fakecuda.c,
# loaded by the real binary through KVBENCH_CUDART): the refusals before anything listens (no
# runtime, no device, too little device memory, a --g1 it does not know), then an engine whose G1
# lives in "device" memory serves kvbench's eviction_replay: a valid run with disk rehydrate
# detected, /metrics showing real copies both ways in block-sized copies, and a clean stop (the
# sanitizer build checks every CUDA allocation was freed). The model backend serves the same
# families at 0.
source "$(dirname "$0")/lib.sh"
: "${FAKE_CUDART:?FAKE_CUDART must point at the stand-in libcudart (CTest sets it)}"

# --- refusals: exit 2 with one line, before the cache directory or the ready file is made ----
refused() {
  expect_exit 2 env "$@" "$KVBENCH" serve --g1 cuda --profile tiny --port 0 --metrics-port 0 \
    --gpu-cache-blocks 1024 --cpu-cache-blocks 64 --disk-cache-blocks 64 \
    --disk-cache-dir "$TMP/refused" --ready-file "$TMP/refused.json"
  one_line "$ERR"
  [[ ! -e $TMP/refused && ! -e $TMP/refused.json ]] || fail "a refused engine made its files"
}
refused KVBENCH_CUDART=/nonexistent
[[ $ERR == "kvbench serve: --g1 cuda: no CUDA runtime: KVBENCH_CUDART=/nonexistent: "* ]] ||
  fail "no runtime: $ERR"
refused KVBENCH_CUDART="$FAKE_CUDART" FAKECUDA_DEVICES=0
[[ $ERR == "kvbench serve: --g1 cuda: no CUDA device: "* ]] || fail "no device: $ERR"
refused KVBENCH_CUDART="$FAKE_CUDART" FAKECUDA_MEM_MB=16
[[ $ERR == "kvbench serve: --g1 cuda: G1 needs 1024 blocks x 32768 bytes = 32.0 MiB of device memory, but CUDA device 0 has 16.0 MiB free of 16.0 MiB; lower --gpu-cache-gb or --gpu-cache-blocks" ]] ||
  fail "no room: $ERR"
expect_exit 2 "$KVBENCH" serve --g1 bogus --port 0 --disk-cache-dir "$TMP/refused"
one_line "$ERR"
[[ $ERR == *"--g1"*"bogus"* ]] || fail "--g1 bogus: $ERR"

# --- an engine with G1 on the device serves eviction_replay ------------------------------------
CUDALOG="$TMP/cuda.log"
RES="$TMP/results"
KVBENCH_CUDART="$FAKE_CUDART" FAKECUDA_LOG="$CUDALOG" start_engine --g1 cuda --profile tiny \
  --kv-mode cpu_disk --gpu-cache-blocks 1024 --cpu-cache-blocks 2048 --disk-cache-blocks 65536 \
  --disable-disk-offload-filter --speedup 50
grep -q "G1 (cuda): CUDA device 0 ($FAKE_CUDART, runtime 13.0, driver 13.0): 1024 blocks, 32.0 MiB of device memory" \
  "$ENGINE_LOG" || fail "the start-up log does not say where G1 lives: $(cat "$ENGINE_LOG")"

expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --results-root "$RES" \
  --kv-mode cpu_disk --scenario eviction_replay --warmup 2 --eviction-a-requests 6 \
  --eviction-b-requests 12 --eviction-a-concurrency 2 --eviction-b-concurrency 4 \
  --long-range 6000:7600 --max-tokens 32 --temperature 0.7 --stream --run-id g1cuda
S="$RES/g1cuda/summary.json"
[[ $(jq -r .run_valid "$S") == true ]] || fail "run invalid: $(jq -c .invalid_details "$S")"
[[ $(jq -r .overall_summary.eviction_replay_signal_kvbm.signal "$S") == disk_rehydrate_detected ]] ||
  fail "kvbm signal: $(jq -c .overall_summary.eviction_replay_signal_kvbm "$S")"

# the run's own account of the copies: replay_A brought blocks back into G1, as real copies
gc=$(jq -c '.phase_summaries[] | select(.phase == "replay_A") | .kvbm_metrics_delta.gpu_copies' "$S")
[[ $(jq '.h2d_bytes > 0 and .h2d_seconds > 0 and .h2d_gb_per_s > 0 and .copy_errors == 0' <<<"$gc") == true ]] ||
  fail "replay_A's gpu_copies: $gc"
grep -q "^## GPU per phase" "$RES/g1cuda/report.md" || fail "report.md has no GPU table"
grep -q "^| replay_A | – | – | [0-9.]* | [0-9.]* |" "$RES/g1cuda/report.md" ||
  fail "GPU row of replay_A: $(grep '^| replay_A' "$RES/g1cuda/report.md")"

page=$(curl -sf "$METRICS")
sample() { awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print "missing" }' <<<"$page"; }
grep -qx 'kvbench_g1_backend_info{backend="cuda",device="0"} 1' <<<"$page" || fail "backend info"
h2d=$(sample kvbench_g1_h2d_bytes_total)
d2h=$(sample kvbench_g1_d2h_bytes_total)
fill=$(sample kvbench_g1_fill_bytes_total)
[[ $h2d =~ ^[0-9]+$ && $h2d -gt 0 ]] || fail "no host-to-device copies: $h2d"
[[ $d2h =~ ^[0-9]+$ && $d2h -gt 0 ]] || fail "no device-to-host copies: $d2h"
[[ $fill =~ ^[0-9]+$ && $fill -gt 0 ]] || fail "no fills: $fill"
((h2d % 32768 == 0 && d2h % 32768 == 0)) || fail "copies not of whole blocks: $h2d $d2h"
[[ $(sample kvbench_g1_copy_errors_total) == 0 ]] || fail "copy errors: $(sample kvbench_g1_copy_errors_total)"
[[ $(sample kvbench_g1_device_bytes) == 33554432 ]] || fail "device bytes: $(sample kvbench_g1_device_bytes)"
batches=$(sample kvbench_g1_h2d_batches_total)
((batches > 0 && h2d / 32768 <= 16 * batches)) || fail "h2d: $h2d bytes in $batches batches"
# the G3 onboards went through the device: every block read back from disk was copied into G1
d2d=$(sample kvbm_onboard_blocks_d2d)
onb=$(sample kvbm_onboard_blocks_h2d)
((d2d > 0 && h2d == (d2d + onb) * 32768)) || fail "h2d $h2d bytes for $d2d + $onb onboards"
# what the runtime saw: block-sized copies each way, nothing else
awk '$1 != "h2d" && $1 != "d2h" || $2 != 32768 { bad++ } END { exit bad > 0 }' "$CUDALOG" ||
  fail "unexpected copies: $(sort "$CUDALOG" | uniq -c)"
grep -q '^h2d ' "$CUDALOG" || fail "no host-to-device copies logged by the runtime"
grep -q '^d2h ' "$CUDALOG" || fail "no device-to-host copies logged by the runtime"
stop_engine
grep -q "AddressSanitizer\|LeakSanitizer" "$ENGINE_LOG" && fail "sanitizer report: $(cat "$ENGINE_LOG")"

# --- the model backend: no copy families (it copies nothing) ---------------------------------
start_engine --profile tiny --kv-mode cpu_only --gpu-cache-blocks 64 --cpu-cache-blocks 64
page=$(curl -sf "$METRICS")
grep -qx 'kvbench_g1_backend_info{backend="model",device="none"} 1' <<<"$page" || fail "model info"
[[ $(sample kvbench_g1_h2d_bytes_total) == missing ]] || fail "model copies"
[[ $(sample kvbench_g1_device_bytes) == missing ]] || fail "model device bytes"
grep -q "G1 (model): modelled" "$ENGINE_LOG" || fail "model log line"
stop_engine

# --- the demo passes --g1 to its engine, and says why its engine would not start ---------------
out=$(KVBENCH_CUDART=/nonexistent "$KVBENCH" demo --g1 cuda --results-root "$TMP/demo" 2>&1) &&
  fail "demo --g1 cuda without CUDA succeeded: $out"
grep -q "^kvbench demo: the engine exited at start: --g1 cuda: no CUDA runtime: " <<<"$out" ||
  fail "demo's refusal: $out"
expect_exit 2 "$KVBENCH" demo --g1 bogus --results-root "$TMP/demo"
# a device for a tier that has none is a contradiction, not a silently ignored flag
expect_exit 2 "$KVBENCH" serve --cuda-device 1 --disk-cache-dir "$TMP/never"
[[ $ERR == "kvbench serve: --cuda-device needs --g1 cuda (the model has no device)" ]] || fail "$ERR"
[[ ! -e $TMP/never ]] || fail "a refused serve made its cache directory"
echo "ok"
