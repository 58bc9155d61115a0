#!/usr/bin/env bash
# The runbook scripts: shellcheck, every script in --dry-run (prints commands, runs none), and
# the ones that need no docker for real against `kvbench serve`, including the mode compare with
# a restart command that restarts the engine in each mode.
source "$(dirname "$0")/lib.sh"
S="$SRC/scripts"
SCRIPTS=(bench_prepare_host bench_container_up bench_start_worker bench_start_frontend
  bench_wait_ready bench_health bench_smoke_completion bench_run_smoke bench_run_matrix
  bench_run_mode_compare bench_results_summary)

if command -v shellcheck >/dev/null; then
  (cd "$SRC" && shellcheck -x scripts/*.sh) || fail "shellcheck"
else
  fail "shellcheck is not installed (scripts/install-deps.sh installs it)"
fi

# --dry-run prints and runs nothing: a kvbench or docker that would fail proves it.
mkdir -p "$TMP/bin"
printf '#!/bin/sh\necho "docker must not run in --dry-run" >&2\nexit 99\n' >"$TMP/bin/docker"
chmod +x "$TMP/bin/docker"
for s in "${SCRIPTS[@]}"; do
  [[ -x "$S/$s.sh" ]] || fail "$s.sh missing or not executable"
  PATH="$TMP/bin:$PATH" KVBENCH=/bin/false DYN_KVBM_DISK_CACHE_DIR="$TMP/nope/kvbm" \
    expect_exit 0 "$S/$s.sh" --dry-run
  grep -q '^+ ' <<<"$OUT" || fail "$s --dry-run printed no command"
  [[ ! -e "$TMP/nope" ]] || fail "$s --dry-run changed the filesystem"
done
PATH="$TMP/bin:$PATH" expect_exit 0 "$S/bench_run_mode_compare.sh" --dry-run
grep -q -- '--modes cpu_only\\ cpu_disk' <<<"$OUT" || fail "default modes: $OUT"
BENCH_COMPARE_SKIP_READY=1 BENCH_KV_MODE_LIST="off cpu_only" PATH="$TMP/bin:$PATH" \
  expect_exit 0 "$S/bench_run_mode_compare.sh" --dry-run
grep -q -- '--skip-ready' <<<"$OUT" || fail "BENCH_COMPARE_SKIP_READY"
grep -q -- 'off\\ cpu_only' <<<"$OUT" || fail "BENCH_KV_MODE_LIST"
BENCH_KV_MODE=off PATH="$TMP/bin:$PATH" expect_exit 0 "$S/bench_start_worker.sh" --dry-run
grep -q 'DYN_KVBM_CPU_CACHE_GB=0 DYN_KVBM_DISK_CACHE_GB=0' <<<"$OUT" || fail "off mode tiers"
BENCH_KV_MODE=bogus expect_exit 2 "$S/bench_start_worker.sh" --dry-run
# prepare_host for real into a scratch directory
DYN_KVBM_DISK_CACHE_DIR="$TMP/kvbm-host" expect_exit 0 "$S/bench_prepare_host.sh"
[[ -s "$TMP/kvbm-host/kvbm_llm_api_config.yaml" ]] || fail "prepare_host"

# --- for real against kvbench serve --------------------------------------------------------------
CACHE="$TMP/kvbm"
export KVBENCH DYN_KVBM_DISK_CACHE_DIR="$CACHE" BENCH_RESULTS_ROOT="$TMP/results"
# a fixed pair of ports, so the engine can be restarted in another mode at the same address
start_engine --profile tiny --kv-mode cpu_disk --speedup 0
PORT=${BASE##*:}
MPORT=$(sed 's|.*:\([0-9]*\)/metrics|\1|' <<<"$METRICS")
stop_engine
export BENCH_BASE_URL="http://127.0.0.1:$PORT" BENCH_KVBM_METRICS_URL="http://127.0.0.1:$MPORT/metrics"
cat >"$TMP/restart-engine.sh" <<SH
#!/bin/sh
# restart kvbench serve in mode \$1 on the same ports (what a Dynamo user's --restart-cmd does
# to the worker); returns once the new engine is started, its output in a log file
if [ -s "$TMP/engine.pid" ]; then
  pid=\$(cat "$TMP/engine.pid")
  kill -TERM "\$pid" 2>/dev/null
  while kill -0 "\$pid" 2>/dev/null; do sleep 0.1; done
fi
echo "restarting in \$1 (BENCH_KV_MODE=\$BENCH_KV_MODE)"
"$KVBENCH" serve --profile tiny --kv-mode "\$1" --port $PORT --metrics-port $MPORT \
  --gpu-cache-blocks 256 --cpu-cache-blocks 256 --disk-cache-blocks 65536 \
  --disable-disk-offload-filter --disk-cache-dir "$CACHE" --speedup 0 \
  >>"$TMP/engine-restarts.log" 2>&1 </dev/null &
echo \$! >"$TMP/engine.pid"
SH
chmod +x "$TMP/restart-engine.sh"
PIDFILES+=("$TMP/engine.pid")
"$TMP/restart-engine.sh" cpu_disk >/dev/null

BENCH_READY_INTERVAL_S=0.2 expect_exit 0 "$S/bench_wait_ready.sh"
grep -q "is ready" <<<"$OUT" || fail "wait_ready: $OUT"
expect_exit 0 "$S/bench_health.sh"
grep -q "HTTP 200" <<<"$OUT" || fail "health: $OUT"
expect_exit 0 "$S/bench_smoke_completion.sh"
[[ $(wc -w <<<"$OUT") -gt 3 ]] || fail "smoke text: $OUT"
BENCH_SMOKE_REQUESTS=3 expect_exit 0 "$S/bench_run_smoke.sh"
ls "$TMP/results"/smoke_*/summary.json >/dev/null || fail "run_smoke wrote no run"

BENCH_COMPARE_RESTART_CMD="$TMP/restart-engine.sh {mode}" \
BENCH_COMPARE_EXTRA_ARGS="--repeats 1 --long-range 1500:2000 --warmup 0 --eviction-a-requests 3 --eviction-b-requests 12 --eviction-a-concurrency 1 --eviction-b-concurrency 2 --max-tokens 4 --ready-interval-s 0.2 --compare-id cmp1" \
  expect_exit 0 "$S/bench_run_mode_compare.sh"
C="$TMP/results/cmp1/comparison.json"
[[ -s $C ]] || fail "no comparison.json: $OUT"
[[ -s "$TMP/results/cmp1/comparison.md" ]] || fail "no comparison.md"
grep -q "restarting in cpu_only (BENCH_KV_MODE=cpu_only)" <<<"$OUT" || fail "restart hook not run per mode: $OUT"
[[ $(jq -r '.modes | map(.mode) | join(",")' "$C") == cpu_only,cpu_disk ]] || fail "modes"
[[ $(jq -r '.modes[0].run_id' "$C") == cmp1_cpu_only ]] || fail "run ids"
[[ $(jq -r .kv_mode.mode "$TMP/results/cmp1_cpu_disk/summary.json") == cpu_disk ]] || fail "mode passed to run"
[[ $(jq -r '.modes[1].signal' "$C") == disk_rehydrate_detected ]] || fail "cpu_disk verdict: $(jq -c .modes "$C")"
[[ $(jq -r '.modes[0].signal' "$C") != disk_rehydrate_detected ]] || fail "cpu_only should not rehydrate"
# each mode against the baseline (the first): its measured value over the baseline's and less
# it; TTFT is not measured (the script does not stream), so it has no value and no ratio
jq -e '(.metrics[] | select(.metric == "latency_p50_ms") | .values as $v
    | $v.cpu_only > 0 and $v.cpu_disk > 0 and .ratio_vs_baseline.cpu_only == 1
    and ((.ratio_vs_baseline.cpu_disk - $v.cpu_disk / $v.cpu_only) | fabs) < 1e-9
    and ((.diff_vs_baseline.cpu_disk - ($v.cpu_disk - $v.cpu_only)) | fabs) < 1e-6)
  and (.metrics[] | select(.metric == "ttft_p50_ms") | .values.cpu_only == null
    and .ratio_vs_baseline.cpu_disk == null)' "$C" >/dev/null ||
  fail "baseline ratio: $(jq -c '.metrics[] | select(.metric | test("(ttft|latency)_p50"))' "$C")"
jq -e '.metrics[] | select(.metric == "kv_onboard_blocks") | .values.cpu_disk > 0' "$C" >/dev/null || fail "onboard metric"

expect_exit 0 "$S/bench_results_summary.sh" "$TMP/results/*/summary.json"
grep -q "cmp1_cpu_disk" <<<"$OUT" || fail "results summary: $OUT"
expect_exit 0 "$S/bench_results_summary.sh"
grep -q "smoke_" <<<"$OUT" || fail "results summary default glob"
echo "scripts: ok"
