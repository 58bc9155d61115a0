#!/usr/bin/env bash
# kvbench compare answers the question (issue 24), against kvbench serve restarted in each mode
# with the demo's engine (llama-3.1-8b-fp8 on the gb10 model, G1 160, G2 128, G3 1024 blocks) and
# the demo's eviction_replay workload: --repeats 3 gives the verdict that offload pays in
# replay_A with its interval, --expect-gain passes there and fails when both sides run cpu_only,
# --modes cpu_only,cpu_only is an A/A comparison with runs of its own per side, and bad
# --expect-gain specs are usage errors. (--repeats 2 giving "insufficient repeats": report_html.sh;
# the statistics' coverage on seeded A/A and shifted data: unit_test_stats.)
source "$(dirname "$0")/lib.sh"

CACHE="$TMP/kvbm"
if [[ $(findmnt -n -o FSTYPE -T "$TMP") == tmpfs ]]; then
  CACHE="$SRC/build-e2e-kvbm-compare-$$"
  trap 'rm -rf "$CACHE"; cleanup' EXIT
fi
RES="$TMP/results"
start_engine --profile tiny --kv-mode cpu_disk --speedup 0 --disk-cache-dir "$TMP/probe"
PORT=${BASE##*:}
MPORT=$(sed 's|.*:\([0-9]*\)/metrics|\1|' <<<"$METRICS")
stop_engine
cat >"$TMP/restart.sh" <<SH
#!/bin/sh
# kvbench serve in mode \$1 on the same ports, as the demo restarts it
if [ -s "$TMP/engine.pid" ]; then
  pid=\$(cat "$TMP/engine.pid")
  kill -TERM "\$pid" 2>/dev/null
  while kill -0 "\$pid" 2>/dev/null; do sleep 0.1; done
fi
"$KVBENCH" serve --profile llama-3.1-8b-fp8 --hardware gb10 --kv-mode "\$1" --gpu-cache-blocks 160 \
  --cpu-cache-blocks 128 --disk-cache-blocks 1024 --disable-disk-offload-filter \
  --disk-cache-dir "$CACHE" --port $PORT --metrics-port $MPORT --log-level WARNING \
  >>"$TMP/engine.log" 2>&1 </dev/null &
echo \$! >"$TMP/engine.pid"
SH
chmod +x "$TMP/restart.sh"
PIDFILES+=("$TMP/engine.pid")
# the demo's workload
W=(--base-url "http://127.0.0.1:$PORT" --kvbm-metrics-url "http://127.0.0.1:$MPORT/metrics"
  --kvbm-cache-dir "$CACHE" --results-root "$RES" --scenario eviction_replay --stream
  --max-tokens 16 --long-range 768:1024 --warmup 1 --eviction-a-requests 4 --eviction-b-requests 8
  --eviction-a-concurrency 2 --eviction-b-concurrency 4 --tokenizer heuristic --no-progress
  --log-level WARNING --restart-cmd "$TMP/restart.sh {mode}" --ready-interval-s 0.2)

# --- does offload pay here: yes, in replay_A, with an interval; the gate passes ----------------
expect_exit 0 "$KVBENCH" compare "${W[@]}" --expect-gain replay_A:ttft_p50:1.5 --compare-id pays
C="$RES/pays/comparison.json"
grep -q '^verdict: Offload pays here: replay_A TTFT p50 [0-9.]*x faster (95 % CI' <<<"$OUT" ||
  fail "verdict: $(grep '^verdict' <<<"$OUT")"
grep -q '^expect-gain replay_A:ttft_p50_ms:1.5: shown' <<<"$OUT" || fail "expect-gain line: $OUT"
jq -e '.decision.verdict == "pays" and .statistics.min_repeats == 3
  and (.phases[] | select(.phase == "replay_A") | .answers and
       .metrics.ttft_p50_ms.vs_baseline.cpu_disk.verdict == "faster" and
       .metrics.ttft_p50_ms.vs_baseline.cpu_disk.ci95_high < 1 and
       (.metrics.ttft_p50_ms.modes.cpu_disk.values | length) == 3 and
       .metrics.onboard_blocks_disk.modes.cpu_disk.mean > 0)
  and (.expect_gain[0].shown and .expect_gain[0].gain >= 1.5)' "$C" >/dev/null ||
  fail "comparison: $(jq -c '[.decision, .expect_gain]' "$C")"
grep -q '^\*\*Offload pays here: replay_A' "$RES/pays/comparison.md" || fail "comparison.md verdict"
grep -qF 'Offload pays here' "$RES/pays/report.html" || fail "page verdict"
# every run is there, interleaved
for m in cpu_only cpu_disk; do
  for r in 1 2 3; do [[ -s "$RES/pays_${m}_r$r/summary.json" ]] || fail "run pays_${m}_r$r missing"; done
done

# --- the gate fails when both sides run cpu_only: nothing to gain --------------------------------
expect_exit 1 "$KVBENCH" compare "${W[@]}" --modes cpu_only,cpu_only --expect-gain replay_A:ttft_p50:1.5 \
  --compare-id nogain
grep -q '^expect-gain replay_A:ttft_p50_ms:1.5: NOT SHOWN' <<<"$OUT" || fail "gate: $OUT"
C="$RES/nogain/comparison.json"
# an A/A comparison: labelled sides, runs of their own, said to be A/A
jq -e '.decision.aa and (.modes | map(.label)) == ["cpu_only_1", "cpu_only_2"]
  and (.decision.line | test("^A/A \\(cpu_only twice\\)|^Cannot tell"))
  and (.expect_gain[0].shown | not)' "$C" >/dev/null || fail "A/A: $(jq -c '[.modes, .decision]' "$C")"
for l in cpu_only_1 cpu_only_2; do
  for r in 1 2 3; do [[ -s "$RES/nogain_${l}_r$r/summary.json" ]] || fail "run nogain_${l}_r$r missing"; done
done

# --- bad specs -----------------------------------------------------------------------------------
for spec in replay_A:ttft_p50 replay_A:nope:2 replay_A:ttft_p50:x :ttft_p50:2 replay_A:disk_read_mib:2; do
  expect_exit 2 "$KVBENCH" compare "${W[@]}" --expect-gain "$spec" --compare-id "bad"
  one_line "$ERR"
  grep -q -- '--expect-gain' <<<"$ERR" || fail "bad spec $spec: $ERR"
done
[[ ! -e "$RES/bad" ]] || fail "a refused compare wrote its directory"
echo "compare: ok"
