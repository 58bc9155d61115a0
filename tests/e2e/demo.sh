#!/usr/bin/env bash
# `kvbench demo` end to end, as `make demo` runs it: within its 3-minute bound on a 2-core
# machine, under 5 GiB written (three interleaved compare runs a mode, about 3.3 GiB, and the
# break-even act's fillers, about 0.9 GiB), offload pays in replay_A with
# an interval, cpu_disk shows disk rehydrate and cpu_only does not, and nothing
# (engine process, cache directory) is left behind.
#
# The bytes written are the demo's own, not the device's: other tests (ctest -j) and other work
# write to the same disk. The kernel adds a reaped child's I/O counters to its parent's, so this
# shell's /proc/$$/io write_bytes, read after `kvbench demo` (and the engine it started) have
# exited and been reaped, grows by exactly what they wrote, plus this script's own few bytes.
source "$(dirname "$0")/lib.sh"
# The demo starts its engine by executing itself again: under qemu-user (make check-aarch64)
# the kernel must know to run an aarch64 program through qemu (scripts/install-deps.sh --aarch64).
if [[ -n ${KVBENCH_EMULATOR:-} && ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
  skip "qemu-aarch64 is not registered with binfmt_misc"
fi
RES="$TMP/results"
mkdir -p "$RES"
own_written_bytes() {
  [[ -r /proc/$$/io ]] && awk '$1 == "write_bytes:" { print $2 }' "/proc/$$/io" || echo ""
}
w0=$(own_written_bytes)
t0=$(date +%s)
set +e
timeout 180 "$KVBENCH" demo --results-root "$RES" --demo-id d1 >"$TMP/demo.out" 2>"$TMP/demo.err"
rc=$?
set -e
elapsed=$(( $(date +%s) - t0 ))
w1=$(own_written_bytes)
OUT=$(cat "$TMP/demo.out")
[[ $rc -eq 0 ]] || { cat "$TMP/demo.out" "$TMP/demo.err" >&2; fail "demo exited $rc after ${elapsed}s"; }
echo "demo took ${elapsed}s"
grep -q '^reuse_verify (cpu_disk): *prefix_reuse_detected; inputs identical_inputs_confirmed' <<<"$OUT" || fail "reuse verdict"
grep -q '^eviction_replay (cpu_disk): *disk_rehydrate_detected' <<<"$OUT" || fail "eviction verdict"
grep -q '^compare, cpu_disk: *disk_rehydrate_detected' <<<"$OUT" || fail "cpu_disk verdict"
grep -q '^compare, cpu_only:' <<<"$OUT" || fail "no cpu_only verdict"
grep '^compare, cpu_only:' <<<"$OUT" | grep -q disk_rehydrate_detected && fail "cpu_only must not rehydrate"
grep -q '^== summary' <<<"$OUT" || fail "no summary table"
grep -q 'd1_compare_cpu_disk_r1 .*disk_rehydrate_detected' <<<"$OUT" || fail "table row"
# the answer, from three interleaved runs a mode: replay_A faster with its interval (on a machine
# busy enough to spread the runs, an honest "cannot tell: the interval is too wide" naming
# replay_A; never "does not pay")
verdict=$(grep -A1 '^== does offload pay here?' <<<"$OUT" | tail -n 1)
grep -qE '^Offload pays here: replay_A TTFT p50 [0-9.]*x faster \(95 % CI [0-9.]*-[0-9.]*x\) with cpu_disk against cpu_only, [0-9]* blocks read back from disk|^Cannot tell: the interval is too wide to tell a gain from none \(replay_A TTFT p50 ' <<<"$verdict" ||
  fail "the demo's verdict: $verdict"
echo "demo verdict: $verdict"
grep -q '^== comparison' <<<"$OUT" || fail "no comparison"
grep -q '^multi_turn (cpu_disk): *reuse_holds' <<<"$OUT" || fail "multi_turn verdict"
# the break-even act: disk onboarding beats recomputing on the modelled DGX Spark (host: its tier
# is smaller than the device's, so it is skipped with its reason)
grep -qE '^breakeven \(cpu_disk\): *offload_pays; prefill [0-9.]+ µs/token; disk at every measured length' \
  <<<"$OUT" || fail "breakeven verdict: $(grep '^breakeven' <<<"$OUT")"
grep -q '^Break-even (cpu_disk): onboarding beats recomputing: disk at every measured length' \
  <<<"$OUT" || fail "break-even answer"
jq -e '.breakeven.ladder | all(.[]; .skipped.host | test("cannot hold"))' \
  "$RES/d1_breakeven/summary.json" >/dev/null || fail "breakeven: host not skipped with a reason"
# the sweep act: one search for the engine's capacity at TTFT <= 500 ms, every step a run
grep -qE '^sweep: *cpu_disk serves [0-9.]+ req/s with 90 % of requests within ttft_ms <= 500 \(one search: no interval\)$' \
  <<<"$OUT" || fail "sweep verdict: $(grep '^sweep' <<<"$OUT")"
grep -q '^Capacity: cpu_disk serves' <<<"$OUT" || fail "no capacity answer"
jq -e '.steps_ok and .decision.verdict == "single_mode" and (.modes[0].searches | length) == 1
  and .modes[0].capacity.value > 0' "$RES/d1_sweep/sweep.json" >/dev/null ||
  fail "sweep.json: $(jq -c '{steps_ok, decision}' "$RES/d1_sweep/sweep.json")"
# the last line: the comparison's page, which shows the read-back in replay_A
[[ $(tail -n 1 <<<"$OUT") == "open in a browser: $RES/d1_compare/report.html" ]] ||
  fail "the demo did not end with the comparison's report.html: $(tail -n 1 <<<"$OUT")"
grep -q 'chart-mode-readback' "$RES/d1_compare/report.html" || fail "no read-back chart"
for f in d1_reuse_verify/report.md d1_eviction_replay/report.md d1_compare/comparison.md \
  d1_compare/comparison.json d1_eviction_replay/telemetry/telemetry_report.json \
  d1_multi_turn/report.md d1_eviction_replay/report.html d1_compare/report.html; do
  [[ -s "$RES/$f" ]] || fail "$f missing"
  grep -q "$f" <<<"$OUT" || [[ $f == *telemetry* || $f == *.json || $f == *.html ]] ||
    fail "report path $f not printed"
done
[[ ! -e "$RES/.d1-kvbm-cache" ]] || fail "the engine's cache was left behind"
pgrep -f "kvbench serve.*d1-kvbm-cache" >/dev/null && fail "an engine is still running"
if [[ -n $w0 && -n $w1 ]]; then
  written=$(( w1 - w0 ))
  echo "demo wrote $((written / 1048576)) MiB (its own processes' write_bytes)"
  (( written < 5 * 1024 * 1024 * 1024 )) || fail "demo wrote $written bytes (limit 5 GiB)"
else
  echo "note: /proc/$$/io unreadable (no task I/O accounting); write bound not checked"
fi
(( elapsed <= 180 )) || fail "demo took ${elapsed}s"
echo "demo: ok"
