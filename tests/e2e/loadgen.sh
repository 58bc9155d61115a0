#!/usr/bin/env bash
# The load generator as a user drives it: threads, both HTTP transports, open loop with its
# coordinated-omission correction (a stalling server makes the corrected figures larger; a
# prompt one leaves them equal), --duration-s, the progress line on a terminal and not in a pipe,
# SIGINT during an open-loop run, a large run whose memory does not grow with its requests (its
# figures checked against the rows), and the flags' one-line errors.
source "$(dirname "$0")/lib.sh"

start_engine --profile tiny --kv-mode off --speedup 0 --max-num-seqs 64 --log-level WARNING
FAST=$BASE
start_engine --profile tiny --kv-mode off --speedup 0 --max-num-seqs 64 --stall-ms 300 \
  --stall-rate 1 --log-level WARNING
STALL=$BASE

COMMON=(--kv-mode off --allow-missing-kvbm-metrics --warmup 0 --max-tokens 32 --stream
  --short-range 64:64 --prompt-salt none --results-root "$TMP/results" --log-level WARNING
  --no-progress)
interrupt() { # PID NAME SECONDS: SIGINT, then it must exit within SECONDS, written as interrupted
  kill -INT "$1"
  local t0
  t0=$(date +%s)
  set +e
  wait "$1"
  set -e
  (($(date +%s) - t0 < $3)) || fail "$2: SIGINT took too long"
  jq -e '.run_valid == false and .invalid_reason == "interrupted"' \
    "$TMP/results/$2/summary.json" >/dev/null || fail "$2: $(cat "$TMP/$2.out")"
}
row_check() { # whole rows, indexes 1..N once each, every field a number where one is due
  local f=$TMP/results/$1/requests.jsonl n=$2
  [[ $(jq -s 'length' "$f") -eq $n ]] || fail "$1: expected $n rows"
  [[ $(jq -s '[.[].request_index] | sort == [range(1; length + 1)]' "$f") == true ]] ||
    fail "$1: request indexes are not 1..$n"
  [[ $(jq -s '[.[] | select(.error == null and (.ttft_ms | type) != "number")] | length' "$f") -eq 0 ]] ||
    fail "$1: a successful streamed row without ttft_ms"
}

# Closed loop on two threads, on each transport: same rows, load recorded.
for tr in native libcurl; do
  expect_exit 0 "$KVBENCH" run --base-url "$FAST" "${COMMON[@]}" --requests 60 --concurrency 8 \
    --threads 2 --transport "$tr" --run-id "closed-$tr"
  row_check "closed-$tr" 60
  S=$TMP/results/closed-$tr/summary.json
  [[ $(jq -r '.phase_summaries[0].load | "\(.mode) \(.threads) \(.transport)"' "$S") == "closed 2 $tr" ]] ||
    fail "closed-$tr: load $(jq -c '.phase_summaries[0].load' "$S")"
  [[ $(jq '[.phase_summaries[0].ok_requests] == [60]' "$S") == true ]] || fail "closed-$tr: errors"
  [[ $(jq '.phase_summaries[0] | has("ttft_ms_corrected")' "$S") == false ]] ||
    fail "a closed loop has no schedule to correct against"
  [[ $(jq -s '[.[].worker_idx] | unique | length' "$TMP/results/closed-$tr/requests.jsonl") -le 8 ]] ||
    fail "closed-$tr: more workers than the concurrency"
done

# Open loop against a server that answers at once: the schedule is kept, corrected ~ uncorrected.
expect_exit 0 "$KVBENCH" run --base-url "$FAST" "${COMMON[@]}" --requests 40 --request-rate 20 \
  --arrival constant --run-id open-fast
row_check open-fast 40
S=$TMP/results/open-fast/summary.json
R=$TMP/results/open-fast/requests.jsonl
[[ $(jq -s '[.[] | select((.schedule_lag_ms | type) != "number" or .schedule_lag_ms < 0 or
  (.scheduled_ts | type) != "string")] | length' "$R") -eq 0 ]] || fail "open-fast: rows lack the schedule"
jq -e '.phase_summaries[0] | .target_rate == 20 and (.achieved_rate | type) == "number" and
  .load.mode == "open" and .load.arrival == "constant"' "$S" >/dev/null ||
  fail "open-fast: $(jq -c '.phase_summaries[0] | {target_rate, achieved_rate, load}' "$S")"
# corrected = uncorrected + lag, so never below it; with a prompt server the lag is small
jq -e '.phase_summaries[0] | .ttft_ms_corrected.p50 >= .ttft_ms.p50 and
  .ttft_ms_corrected.p50 - .ttft_ms.p50 < 50' "$S" >/dev/null ||
  fail "open-fast: corrected vs uncorrected $(jq -c '.phase_summaries[0] | [.ttft_ms.p50, .ttft_ms_corrected.p50]' "$S")"
# the schedule spans ~2 s at 20/s: sends are spread over it, not all at once
[[ $(jq -s '(map(.start_ts | sub("\\.[0-9]+(Z|\\+00:00)$"; "Z") | fromdate) | max - min)' "$R") -ge 1 ]] ||
  fail "open-fast: requests were not spread over the schedule"
grep -q "Open loop" "$TMP/results/open-fast/report.md" || fail "report without the open-loop table"

# Open loop against a stalling server with a cap of 2 in flight: requests queue for a slot, the
# corrected figures carry that wait, and the run says the rate was not reached.
expect_exit 0 "$KVBENCH" run --base-url "$STALL" "${COMMON[@]}" --requests 20 --request-rate 20 \
  --arrival poisson --max-concurrency 2 --run-id open-stall
row_check open-stall 20
S=$TMP/results/open-stall/summary.json
jq -e '.phase_summaries[0] | .ttft_ms_corrected.p50 > .ttft_ms.p50 + 300 and
  .latency_ms_corrected.p95 > .latency_ms.p95 + 300 and .schedule_lag_ms.max > 300' "$S" >/dev/null ||
  fail "open-stall: $(jq -c '.phase_summaries[0] | [.ttft_ms.p50, .ttft_ms_corrected.p50, .schedule_lag_ms]' "$S")"
want=rate_not_achieved
[[ $(jq '.phase_summaries[0].client_lag_ms.p99 > 5' "$S") == true ]] && want=client_limited_rate
[[ $(jq -r --arg w "$want" '[.warnings[] | select(.code == $w)] | length' "$S") -eq 1 ]] ||
  fail "open-stall: no $want warning: $(jq -c .warnings "$S")"

# --duration-s: the main phase runs for the time given, prompts cycling.
expect_exit 0 "$KVBENCH" run --base-url "$FAST" "${COMMON[@]}" --requests 4 --concurrency 2 \
  --duration-s 1.5 --run-id dur
S=$TMP/results/dur/summary.json
jq -e '.phase_summaries[0] | .duration_s >= 1.4 and .duration_s < 30 and .total_requests > 4' "$S" \
  >/dev/null || fail "dur: $(jq -c '.phase_summaries[0] | [.duration_s, .total_requests]' "$S")"

# The progress line: on a terminal (script(1) gives one), never in a pipe.
NOPROG=()
for a in "${COMMON[@]}"; do [[ $a == --no-progress ]] || NOPROG+=("$a"); done
script -qec "$KVBENCH run --base-url $FAST ${NOPROG[*]} --requests 30 --concurrency 4 --run-id tty" \
  "$TMP/tty.log" >/dev/null
grep -q $'\r\e\\[K' "$TMP/tty.log" || fail "no progress line on a terminal"
grep -qE "main.{0,5} 30/30" "$TMP/tty.log" || fail "the progress line does not count the phase"
NO_COLOR=1 script -qec "$KVBENCH run --base-url $FAST ${NOPROG[*]} --requests 5 --run-id nocolor" \
  "$TMP/nocolor.log" >/dev/null
grep -q $'\e\\[1m' "$TMP/nocolor.log" && fail "NO_COLOR is ignored"
"$KVBENCH" run --base-url "$FAST" "${NOPROG[@]}" --requests 30 --concurrency 4 --run-id pipe \
  2>"$TMP/pipe.err" | cat >/dev/null
grep -q $'\r' "$TMP/pipe.err" && fail "a progress line in a pipe"

# SIGINT during an open-loop run: it stops within the grace period, rows whole, run invalid.
"$KVBENCH" run --base-url "$STALL" "${COMMON[@]}" --requests 500 --request-rate 50 \
  --run-id sigint >"$TMP/sigint.out" 2>&1 &
RUN_PID=$!
PIDS+=("$RUN_PID")
for _ in $(seq 100); do
  [[ -s $TMP/results/sigint/requests.jsonl ]] && break
  sleep 0.1
done
interrupt "$RUN_PID" sigint 15
jq -s 'length' "$TMP/results/sigint/requests.jsonl" >/dev/null || fail "sigint: a torn row"

# SIGINT while prompts are being made (a large warmup set is made before anything is sent): it
# stops at once, written as interrupted.
"$KVBENCH" run --base-url "$FAST" "${COMMON[@]}" --warmup 100000 --requests 10 \
  --run-id bigplan >"$TMP/bigplan.out" 2>&1 &
RUN_PID=$!
PIDS+=("$RUN_PID")
sleep 1
interrupt "$RUN_PID" bigplan 5

# A million requests: the main set is produced while the run sends, so rows come at once; SIGINT
# stops it; the manifest has a row for every prompt sent.
"$KVBENCH" run --base-url "$FAST" "${COMMON[@]}" --requests 1000000 --concurrency 8 \
  --run-id million >"$TMP/million.out" 2>&1 &
RUN_PID=$!
PIDS+=("$RUN_PID")
for _ in $(seq 200); do
  [[ -s $TMP/results/million/requests.jsonl ]] && break
  sleep 0.1
done
[[ -s $TMP/results/million/requests.jsonl ]] || fail "million: nothing sent within 20 s"
interrupt "$RUN_PID" million 5
M=$TMP/results/million
sent=$(jq -s '[.[].prompt_id] | unique | length' "$M/requests.jsonl")
listed=$(jq -s --slurpfile r <(jq -s '[.[].prompt_id] | unique' "$M/requests.jsonl") \
  '[.[].prompt_id] as $m | $r[0] - $m | length' "$M/prompts_manifest.jsonl")
[[ $sent -gt 0 && $listed -eq 0 ]] || fail "million: $listed sent prompts missing from the manifest"

# A large run to the end: its prompts come from a ring of 1024 entries reused as requests go
# out, and its 1.3 million ITL values spill to disk and are selected, not sorted in memory (past
# 2^20 values). Every prompt is sent once and matches its manifest row, and the summary's
# percentiles are exactly those of the rows (numpy's linear interpolation, rounded to 3 places).
expect_exit 0 "$KVBENCH" run --base-url "$FAST" "${COMMON[@]}" --requests 25000 --concurrency 16 \
  --max-tokens 64 --short-range 16:16 --run-id large
L=$TMP/results/large
jq -r '[.prompt_id, .prompt_sha256] | @tsv' "$L/requests.jsonl" | sort >"$TMP/large.sent"
jq -r '[.prompt_id, .prompt_sha256] | @tsv' "$L/prompts_manifest.jsonl" | sort >"$TMP/large.made"
[[ $(wc -l <"$TMP/large.sent") -eq 25000 && $(cut -f1 "$TMP/large.sent" | uniq | wc -l) -eq 25000 ]] ||
  fail "large: not 25000 distinct prompts sent"
cmp -s "$TMP/large.sent" "$TMP/large.made" || fail "large: a sent prompt differs from its manifest row"
# shellcheck disable=SC2016 # a jq program, not shell
PCT='def r3: (. * 1000 | round) / 1000;
  def pct($p): ((length - 1) * $p / 100) as $rk | ($rk | floor) as $lo |
    if $lo >= length - 1 then .[length - 1] else .[$lo] + (.[$lo + 1] - .[$lo]) * ($rk - $lo) end;
  sort | {min: .[0] | r3, p50: pct(50) | r3, p90: pct(90) | r3, p95: pct(95) | r3,
          p99: pct(99) | r3, max: .[length - 1] | r3}'
for m in itl_ms ttft_ms latency_ms; do
  want=$(jq -Scs "[.[] | select(.error == null) | .$m] | flatten | $PCT" "$L/requests.jsonl")
  got=$(jq -Sc ".phase_summaries[] | select(.phase == \"main\") | .$m | del(.mean)" "$L/summary.json")
  [[ $want == "$got" ]] || fail "large: $m from the rows $want, in the summary $got"
done
[[ $(jq '[.phase_summaries[] | select(.phase == "main") | .itl_ms] | length' "$L/summary.json") -eq 1 ]] ||
  fail "large: no main phase"
(($(jq -s '[.[].itl_ms | length] | add' "$L/requests.jsonl") > 1048576)) ||
  fail "large: too few ITL values to leave the in-memory path"
# its report.html draws one request in 2 (at most 20,000 points a series) and says so
pts=$(grep -o '<circle class="mark"' "$L/report.html" | wc -l) # TTFT points, none elsewhere here
((pts == 12500)) || fail "large: $pts TTFT points drawn"
grep -qF 'One request in 2 is drawn (12500 of the run)' "$L/report.html" ||
  fail "large: report.html does not say it draws a sample"

# Bad flags: one line, exit 2.
for bad in "--request-rate fast" "--request-rate -3" "--request-rate 1e-12" "--arrival poisson" "--threads 0" \
  "--threads many" "--max-concurrency 4" "--request-rate 5 --burstiness 2" \
  "--duration-s 2 --scenario reuse_verify"; do
  # shellcheck disable=SC2086
  expect_exit 2 "$KVBENCH" run --base-url "$FAST" $bad
  one_line "$ERR"
done
expect_exit 2 "$KVBENCH" run --base-url https://127.0.0.1:1 --transport native
one_line "$ERR"
echo "loadgen: ok"
