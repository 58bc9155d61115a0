#!/usr/bin/env bash
# Goodput against --slo (docs/GOODPUT.md) on kvbench serve with stalls and injected failures, so
# that some requests meet the SLOs and some do not: a streamed closed-loop run and an open-loop
# run (corrected TTFT and latency), whose attainment, met, goodput req/s and tokens/s and per-SLO
# failure counts must equal those recomputed with jq from requests.jsonl, per phase and overall;
# a run without streaming (TTFT not judgeable: null with a reason; latency alone judged); no
# goodput without --slo; `kvbench summary`'s attainment column; and the flag's one-line errors.
source "$(dirname "$0")/lib.sh"

start_engine --profile tiny --kv-mode off --disk-cache-dir "$TMP/cache" --stall-ms 150 \
  --stall-rate 0.4 --fail-rate 0.1 --seed 7 --log-level WARNING
RES=$TMP/results
COMMON=(--base-url "$BASE" --kv-mode off --allow-missing-kvbm-metrics --max-tokens 16
  --short-range 64:64 --prompt-salt none --tokenizer heuristic --results-root "$RES"
  --max-error-rate 1 --log-level WARNING --no-progress)

# The expected goodput objects, recomputed from the rows: the rules of docs/GOODPUT.md.
cat >"$TMP/goodput.jq" <<'EOF'
def out_tokens: (.usage_completion_tokens // .output_tokens_est);
def lag: (.schedule_lag_ms // 0);
def abs: if . < 0 then -. else . end;
# the objectives a successful row broke
def broken($slo):
  . as $q
  | [$slo | to_entries[] | .key as $k | .value as $lim | select(
      if $k == "ttft_ms" then $q.ttft_ms == null or $q.ttft_ms + ($q | lag) > $lim
      elif $k == "latency_ms" then $q.latency_ms + ($q | lag) > $lim
      elif $k == "tpot_ms" then
        (if $q.tpot_ms == null then ($q | out_tokens) > 1 else $q.tpot_ms > $lim end)
      elif $k == "itl_ms" then
        (if ($q.itl_ms // []) | length == 0 then ($q | out_tokens) > 1
         else ($q.itl_ms | add / length) > $lim end)
      else error("unknown objective \($k)") end) | .key];
def expect($slo; $rows; $d):
  ($rows | map(if .error == null then {ok: true, broken: broken($slo), tok: out_tokens}
               else {ok: false, broken: [], tok: 0} end)) as $j
  | ($j | map(select(.ok and (.broken | length) == 0))) as $met
  | ($slo | with_entries(.key as $k
      | .value = ($j | map(select(.broken | any(. == $k))) | length))) as $failed
  | (["ttft_ms", "itl_ms", "tpot_ms", "latency_ms"] | map(select($failed[.] != null))) as $order
  | ($order | map($failed[.]) | max) as $most
  | {requests: ($j | length), met: ($met | length),
     attainment: (($met | length) / ($j | length)),
     goodput_req_per_s: (($met | length) / $d),
     goodput_tokens_per_s: (($met | map(.tok) | add // 0) / $d),
     failed: $failed,
     failed_most: (if $most > 0 then ($order | map(select($failed[.] == $most)) | .[0])
                   else null end),
     corrected: ($rows | any(.schedule_lag_ms != null))};
# mismatches between kvbench's goodput object $g and the recomputed $e, as lines
def check($name; $g; $e; $d):
  (if $g == null then "\($name): no goodput object" else empty end),
  (["requests", "met", "failed", "failed_most", "corrected"][] as $k
   | select($g[$k] != $e[$k]) | "\($name): \($k) \($g[$k] | tojson) != \($e[$k] | tojson)"),
  (select(($g.attainment - $e.attainment | abs) > 0.00005001)
   | "\($name): attainment \($g.attainment) != \($e.attainment)"),
  # summary.json's duration $d is rounded to the ms: the rates may differ by that much
  (["goodput_req_per_s", "goodput_tokens_per_s"][] as $k
   | select(($g[$k] - $e[$k] | abs) > $e[$k] * 0.0006 / $d + 0.002)
   | "\($name): \($k) \($g[$k]) != \($e[$k])");
. as $s
| ($rows | map(select(.phase as $ph
    | $s.phase_summaries | any(.phase == $ph and .included_in_overall)))) as $incl
| ($s.phase_summaries[] | . as $p
   | check($p.phase; $p.goodput;
           expect($slo; $rows | map(select(.phase == $p.phase)); $p.duration_s); $p.duration_s)),
  ($s.overall_summary.duration_s as $d
   | check("overall"; $s.overall_summary.goodput; expect($slo; $incl; $d); $d))
EOF

# goodput_check RUN SLO_JSON — summary.json's goodput objects against the rows, and the SLO recorded
goodput_check() {
  local d=$RES/$1 out
  jq -e --argjson slo "$2" '.slo == $slo' "$d/config.json" >/dev/null ||
    fail "$1: config.json slo $(jq -c .slo "$d/config.json"), expected $2"
  jq -e --argjson slo "$2" '[.phase_summaries[].goodput.slo, .overall_summary.goodput.slo]
    | all(. == $slo)' "$d/summary.json" >/dev/null || fail "$1: summary's slo is not $2"
  out=$(jq -r --argjson slo "$2" --slurpfile rows "$d/requests.jsonl" \
    -f "$TMP/goodput.jq" "$d/summary.json") ||
    fail "$1: the jq recomputation failed"
  [[ -z $out ]] || fail "$1: goodput differs from requests.jsonl:"$'\n'"$out"
}

# 1. Closed loop, streamed: stalled requests (TTFT >= 150 ms) break ttft_ms and latency_ms, the
#    others meet them; failed ones meet nothing.
SLO1='{"ttft_ms":50,"latency_ms":120,"itl_ms":50,"tpot_ms":50}'
expect_exit 0 "$KVBENCH" run "${COMMON[@]}" --stream --warmup 4 --requests 40 --concurrency 4 \
  --slo ttft_ms=50,latency_ms=120,itl_ms=50,tpot_ms=50 --run-id closed
goodput_check closed "$SLO1"
S=$RES/closed/summary.json
jq -e '.phase_summaries[] | select(.phase == "main") | .goodput
  | .met > 0 and .met < .requests and .failed.ttft_ms > 0 and .corrected == false' "$S" \
  >/dev/null || fail "closed: expected some but not all requests to meet the SLOs: $(jq -c \
  '.phase_summaries[] | select(.phase == "main") | .goodput' "$S")"
jq -e '.overall_summary.goodput.attainment == .phase_summaries[1].goodput.attainment' "$S" \
  >/dev/null || fail "closed: overall is the main phase"
grep -q "^## Goodput against the SLOs" "$RES/closed/report.md" || fail "closed: report.md has no goodput"
grep -q '^| \*\*overall\*\* | ' "$RES/closed/report.md" || fail "closed: report.md has no overall goodput"

# 2. Open loop (one in flight, 8/s: a stalled request delays the next): --slo given twice, in
#    vLLM's spelling, ITL and TPOT limits at the closed run's medians; TTFT and latency judged
#    from the intended send.
R1=$RES/closed/requests.jsonl
ITL=$(jq -s '[.[] | select(.error == null and (.itl_ms | length) > 0) | .itl_ms | add / length]
  | sort | .[length / 2 | floor] * 1000 | round / 1000' "$R1")
TPOT=$(jq -s '[.[] | select(.tpot_ms != null) | .tpot_ms] | sort | .[length / 2 | floor]
  * 1000 | round / 1000' "$R1")
SLO2=$(jq -nc --argjson i "$ITL" --argjson t "$TPOT" \
  '{ttft_ms: 50, latency_ms: 300, itl_ms: $i, tpot_ms: $t}')
expect_exit 0 "$KVBENCH" run "${COMMON[@]}" --stream --warmup 2 --requests 30 --request-rate 8 \
  --arrival constant --max-concurrency 1 --slo "ttft:50 e2el:300" --slo "itl_ms=$ITL,tpot:$TPOT" \
  --run-id open
goodput_check open "$SLO2"
S=$RES/open/summary.json
jq -e '.phase_summaries[] | select(.phase == "main") | .goodput | .corrected == true and
  .met < .requests' "$S" >/dev/null ||
  fail "open: $(jq -c '.phase_summaries[] | select(.phase == "main") | .goodput' "$S")"
# the correction decides: some requests answered within 50 ms were due more than 50 ms before
[[ $(jq -s '[.[] | select(.phase == "main" and .error == null and .ttft_ms <= 50 and
  .ttft_ms + .schedule_lag_ms > 50)] | length' "$RES/open/requests.jsonl") -gt 0 ]] ||
  fail "open: no request where the corrected TTFT decides (the test cannot tell)"

# 3. No streaming: latency alone is judged; a TTFT objective cannot be, and says so.
expect_exit 0 "$KVBENCH" run "${COMMON[@]}" --warmup 0 --requests 8 --concurrency 2 \
  --slo latency_ms=100 --run-id unary-latency
goodput_check unary-latency '{"latency_ms":100}'
expect_exit 0 "$KVBENCH" run "${COMMON[@]}" --warmup 0 --requests 4 --concurrency 2 \
  --slo ttft:50,e2el:100 --run-id unary-ttft
S=$RES/unary-ttft/summary.json
jq -e '[.phase_summaries[].goodput, .overall_summary.goodput] | all(.attainment == null and
  .met == null and .goodput_req_per_s == null and .failed == null and .requests == 4 and
  (.reason | test("--stream")))' "$S" >/dev/null ||
  fail "unary-ttft: $(jq -c .overall_summary.goodput "$S")"
jq -e '.warnings | any(.code == "slo_not_judged")' "$S" >/dev/null || fail "unary-ttft: no warning"
grep -q "not judged: " "$RES/unary-ttft/report.md" || fail "unary-ttft: report.md says nothing"

# 4. Without --slo: no goodput anywhere.
expect_exit 0 "$KVBENCH" run "${COMMON[@]}" --stream --warmup 0 --requests 2 --run-id plain
jq -e '[.phase_summaries[], .overall_summary] | all(has("goodput") | not)' \
  "$RES/plain/summary.json" >/dev/null || fail "plain: a goodput object without --slo"
jq -e '.slo == null' "$RES/plain/config.json" >/dev/null || fail "plain: config.json slo"
grep -q "Goodput" "$RES/plain/report.md" && fail "plain: report.md has a goodput section"
stop_engine

# 5. kvbench summary: the attainment column, and every --json row with the key.
expect_exit 0 "$KVBENCH" summary "$RES"
grep -q "attain" <<<"$OUT" || fail "summary: no attainment column: $OUT"
want=$(jq -r '.overall_summary.goodput.attainment' "$RES/closed/summary.json")
grep -E "^closed " <<<"$OUT" | grep -qF "$(printf '%.4f' "$want")" ||
  fail "summary: closed's attainment $want not in: $OUT"
expect_exit 0 "$KVBENCH" summary --json "$RES"
jq -e --argjson w "$want" 'all(has("attainment")) and
  (map(select(.run_id == "closed"))[0].attainment == $w) and
  (map(select(.run_id == "plain"))[0].attainment == null)' <<<"$OUT" >/dev/null ||
  fail "summary --json: $OUT"

# 6. The flag's errors: one line, exit 2, nothing written; compare takes the flag too.
for bad in "ttfb_ms=100" "ttft_ms=abc" "ttft_ms=0" "ttft_ms=-1" "ttft_ms=1,ttft:2" "" "ttft_ms=1," \
  "ttft_ms"; do
  expect_exit 2 "$KVBENCH" run --base-url http://127.0.0.1:9 --results-root "$RES" \
    --run-id bad --slo "$bad"
  one_line "$ERR"
  grep -q -- "--slo" <<<"$ERR" || fail "--slo '$bad': $ERR"
  [[ ! -e $RES/bad ]] || fail "--slo '$bad' wrote $RES/bad"
done
expect_exit 2 "$KVBENCH" compare --base-url http://127.0.0.1:9 --results-root "$RES" \
  --slo e2el:0
one_line "$ERR"
grep -q -- "--slo" <<<"$ERR" || fail "compare --slo: $ERR"
echo "goodput: ok"
