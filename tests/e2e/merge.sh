#!/usr/bin/env bash
# `kvbench merge` end to end against `kvbench serve`: shards run as real processes, merged into
# one run directory whose requests.jsonl holds every shard's rows once, whose phase percentiles
# are jq's over the union of the shards' rows (the same definition as src/analysis/stats.c),
# whose counts are the shards' summed; a merge of one shard gives back that run's own summary;
# a missing, killed or invalid shard and a shard whose clock is off make the merge invalid,
# naming it; shards of different runs, a malformed row and an existing directory write nothing.
source "$(dirname "$0")/lib.sh"

RES="$TMP/results"
start_engine --profile tiny --kv-mode cpu_disk --speedup 50

# --- shards -------------------------------------------------------------------------------------
# make_shards NAME N RUN-FLAGS... — N shards of one run as $RES/NAME-shard<I>of<N>, run at once.
# Each is a whole run of its own (its own --seed, so the shards' prompts differ) stamped with the
# config.json `shard` object that --shard writes (stamp_shard): the merge's own checks and
# arithmetic, apart from how --shard splits a run (tests/e2e/shard_merge.sh merges real shards).
make_shards() {
  local name=$1 n=$2 pids=() i
  shift 2
  for ((i = 0; i < n; i++)); do
    "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --results-root "$RES" \
      --no-progress --seed $((1337 + i)) --run-id "$name-shard${i}of$n" "$@" \
      >"$TMP/$name-$i.out" 2>&1 &
    pids+=($!)
  done
  PIDS+=("${pids[@]}")
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { cat "$TMP/$name-$i.out" >&2; fail "shard $i of $name exited non-zero"; }
    stamp_shard "$RES/$name-shard${i}of$n" "$i" "$n" "$name"
  done
}

# stamp_shard DIR I N BASE — config.json `shard` as kvbench run --shard writes it: config_sha256
# is the sha256 of config.json args (canonical: sorted, compact) without the per-shard entries;
# the emulated shards differ in --seed too, which is left out here for the same reason.
stamp_shard() {
  local sha
  sha=$(jq -cS '.args | del(.shard, .run_id, .results_root, .start_at, .shard_sync, .shard_wait_s, .seed)' \
    "$1/config.json" | sha256sum | cut -d' ' -f1)
  jq --argjson i "$2" --argjson n "$3" --arg b "$4" --arg h "$sha" \
    '.shard = {index: $i, count: $n, base_run_id: $b, start_at: null, sync_dir: null, config_sha256: $h}' \
    "$1/config.json" >"$1/config.json.tmp"
  mv "$1/config.json.tmp" "$1/config.json"
}


RUN=(--requests 12 --warmup 3 --concurrency 2 --max-tokens 16 --stream --prompt-salt s3)
make_shards s3 3 "${RUN[@]}"
S3=("$RES"/s3-shard{0,1,2}of3)

# --- three shards merged: valid, every row once, the union's statistics --------------------------
expect_exit 0 "$KVBENCH" merge "${S3[@]}" --results-root "$RES" --max-skew-s 60
one_line "$OUT"
[[ $OUT == "merge s3: valid, 45 requests from 3 of 3 shards; results in $RES/s3 "* ]] || fail "merge line: $OUT"
M="$RES/s3"
for f in config.json summary.json requests.jsonl report.md report.html kvbm_metrics_snapshots.jsonl; do
  [[ -s $M/$f ]] || fail "merged run lacks $f"
done
S="$M/summary.json"
[[ $(jq -r .run_valid "$S") == true ]] || fail "merged run invalid: $(jq -c .invalid_details "$S")"
# every request exactly once: the merged rows, less their shard, are the shards' rows
cmp <(jq -c 'del(.shard)' "$M/requests.jsonl" | sort) <(cat "${S3[@]/%//requests.jsonl}" | jq -c . | sort) ||
  fail "the merged rows are not the shards' rows, each once"
[[ $(jq -s 'map([.shard, .request_index]) | unique | length' "$M/requests.jsonl") -eq 45 ]] || fail "a (shard, request) twice"
jq -s -e 'map(.start_ts) | . == sort' "$M/requests.jsonl" >/dev/null || fail "rows not in start order"
# the percentiles of the union of the shards' raw values, and the counts summed
for ph in warmup main; do
  want=$(cat "${S3[@]/%//requests.jsonl}" | jq -s -S -c --arg ph "$ph" "$UNION_STATS_JQ")
  got=$(jq -S -c --arg ph "$ph" ".phase_summaries[] | select(.phase == \$ph) | $UNION_STATS" "$S")
  [[ $want == "$got" ]] || fail "$ph statistics: merged $got, jq over the union $want"
  for k in total_requests ok_requests error_requests; do
    sum=$(jq -s --arg ph "$ph" "map(.phase_summaries[] | select(.phase == \$ph) | .$k) | add" "${S3[@]/%//summary.json}")
    [[ $(jq --arg ph "$ph" ".phase_summaries[] | select(.phase == \$ph) | .$k" "$S") -eq $sum ]] || fail "$ph $k not summed"
  done
done
[[ $(jq .overall_summary.total_requests "$S") -eq 36 ]] || fail "overall: $(jq -c .overall_summary "$S")"
jq -e '.phase_summaries[] | select(.phase == "main") | .concurrency == 6 and .requests == 36' "$S" >/dev/null ||
  fail "planned concurrency and requests not summed"
jq -e '.merge | .count == 3 and (.shards | map(.index) == [0, 1, 2]) and (.shards | all(.valid and .requests == 15))
  and (.skew_s | type == "number")' "$S" >/dev/null || fail "merge object: $(jq -c .merge "$S")"
jq -e '.merge.count == 3 and (has("shard") | not) and .run_id == "s3"' "$M/config.json" >/dev/null || fail "config.json"
# the engine's KV deltas once: one before and one after each phase stand for the run
[[ $(jq -s 'map(.label) | join(",")' "$M/kvbm_metrics_snapshots.jsonl") == '"run_start,before_warmup,after_warmup,before_main,after_main,run_end"' ]] ||
  fail "snapshots: $(jq -c .label "$M/kvbm_metrics_snapshots.jsonl")"
jq -e '.kvbm_metrics.phase_deltas.main.available == true' "$S" >/dev/null || fail "no KV delta"
grep -q '^# kvbench run s3' "$M/report.md" || fail "report.md"
grep -q '^- \*\*Merged:\*\* 3 of 3 shards of `s3`' "$M/report.md" || fail "report.md does not say it was merged"
jq -e --slurpfile a "${S3[0]}/summary.json" '.fingerprint == $a[0].fingerprint and (.merge.merged_by | type == "object")
  and .client.clients == 3' "$S" >/dev/null || fail "fingerprint, client"

# --- one shard: the merge gives back the run's own summary ---------------------------------------
make_shards one 1 --scenario eviction_replay --warmup 2 --eviction-a-requests 4 \
  --eviction-b-requests 8 --eviction-a-concurrency 2 --eviction-b-concurrency 4 \
  --long-range 3000:4000 --max-tokens 16 --stream --kv-mode cpu_disk
expect_exit 0 "$KVBENCH" merge "$RES/one-shard0of1" --results-root "$RES"
A="$RES/one-shard0of1/summary.json" B="$RES/one/summary.json"
# everything but the run's name and what only a merge has; rates are compared below, within the
# millisecond the shards' phase durations are recorded to
SAME='del(.run_id, .merge, .client) | walk(if type == "object" then
  with_entries(select(.key | test("per_s") | not)) else . end)'
diff <(jq -S "$SAME" "$A") <(jq -S "$SAME" "$B") >"$TMP/one.diff" || { cat "$TMP/one.diff" >&2; fail "one shard: the merge's summary differs from the run's"; }
jq -n -e --slurpfile a "$A" --slurpfile b "$B" '[$a[0].phase_summaries, $b[0].phase_summaries] | transpose
  | all(.[0].req_per_s as $x | .[1].req_per_s as $y | (($x - $y) | fabs) <= 0.01 * $x + 0.001)' >/dev/null ||
  fail "one shard: rates differ beyond the durations' rounding"
[[ $(jq -r .overall_summary.eviction_replay_signal_kvbm.signal "$B") == $(jq -r .overall_summary.eviction_replay_signal_kvbm.signal "$A") ]] ||
  fail "one shard: the verdict differs"

# --- a missing shard, a killed one, an invalid one, one whose clock is off: invalid, named --------
expect_exit 1 "$KVBENCH" merge "${S3[0]}" "${S3[2]}" --results-root "$RES" --run-id missing --max-skew-s 60
[[ $OUT == *"INVALID (shard_incomplete)"* ]] || fail "missing: $OUT"
jq -e '.invalid_reason == "shard_incomplete" and (.invalid_details_kvbench[0] | .index == 1 and .dir == null
  and (.message | startswith("shard 1 of 3 missing")) and .expected_dir == "s3-shard1of3")' \
  "$RES/missing/summary.json" >/dev/null || fail "missing: $(jq -c .invalid_details_kvbench "$RES/missing/summary.json")"

KILLED="$TMP/killed-shard1of3"
cp -r "${S3[1]}" "$KILLED"
rm "$KILLED/summary.json" # a shard killed before it wrote its summary: its last row torn too
truncate -s -5 "$KILLED/requests.jsonl"
expect_exit 1 "$KVBENCH" merge "${S3[0]}" "$KILLED" "${S3[2]}" --results-root "$RES" --run-id killed --max-skew-s 60
jq -e --arg d "$KILLED" '.invalid_reason == "shard_incomplete" and (.invalid_details_kvbench[0] | .dir == $d
  and .index == 1 and .requests == 14) and (.invalid_details[0] | contains($d))' "$RES/killed/summary.json" >/dev/null ||
  fail "killed: $(jq -c .invalid_details_kvbench "$RES/killed/summary.json")"
[[ $(wc -l <"$RES/killed/requests.jsonl") -eq 44 ]] || fail "killed: its whole rows are merged, the torn one left out"
jq -e '.merge.notes | any(test("torn last row"))' "$RES/killed/summary.json" >/dev/null || fail "killed: the torn row unsaid"

# an invalid shard: a run interrupted by SIGINT once it has sent something
"$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --results-root "$RES" --no-progress \
  --run-id int-shard1of3 "${RUN[@]}" --requests 4 --duration-s 60 >"$TMP/int.out" 2>&1 &
INT_PID=$!
PIDS+=("$INT_PID")
for _ in $(seq 400); do [[ -s "$RES/int-shard1of3/requests.jsonl" ]] && break; sleep 0.05; done
kill -INT "$INT_PID"
wait "$INT_PID" && fail "the interrupted shard exited 0"
stamp_shard "$RES/int-shard1of3" 1 3 s3
jq --arg h "$(jq -r .shard.config_sha256 "${S3[0]}/config.json")" '.shard.config_sha256 = $h' \
  "$RES/int-shard1of3/config.json" >"$TMP/c.json" && mv "$TMP/c.json" "$RES/int-shard1of3/config.json"
expect_exit 1 "$KVBENCH" merge "${S3[0]}" "$RES/int-shard1of3" "${S3[2]}" --results-root "$RES" --run-id invalid --max-skew-s 600
jq -e --arg d "$RES/int-shard1of3" '.invalid_reason == "shard_invalid" and (.invalid_details_kvbench[0] | .dir == $d
  and .index == 1 and .shard_reason == "interrupted")' "$RES/invalid/summary.json" >/dev/null ||
  fail "invalid shard: $(jq -c .invalid_details_kvbench "$RES/invalid/summary.json")"
jq -e '.merge.shards[1] | .valid == false and .invalid_reason == "interrupted"' "$RES/invalid/summary.json" >/dev/null || fail "invalid: merge.shards"

# a shard whose clock is 30 s ahead: its phases' started_at say so
AHEAD="$TMP/ahead-shard2of3"
cp -r "${S3[2]}" "$AHEAD"
jq '.phase_summaries |= map(.started_at += 30 | .ended_at += 30)' "${S3[2]}/summary.json" >"$AHEAD/summary.json"
expect_exit 1 "$KVBENCH" merge "${S3[0]}" "${S3[1]}" "$AHEAD" --results-root "$RES" --run-id skewed --max-skew-s 20
jq -e --arg d "$AHEAD" '.invalid_reason == "shard_skew" and (.invalid_details_kvbench[0] | .latest.dir == $d
  and .latest.index == 2 and .skew_s > 20 and .max_skew_s == 20) and .merge.skew_s > 20' "$RES/skewed/summary.json" >/dev/null ||
  fail "skew: $(jq -c .invalid_details_kvbench "$RES/skewed/summary.json")"

# the shards' clocks (shard.clock_offset_s: a shard's wall clock minus the sync directory's):
# set_offset DIR OFFSET NAME — a copy of DIR as $TMP/NAME whose config.json and summary.json
# record OFFSET
set_offset() {
  local d=$TMP/$3
  rm -rf "$d" && cp -r "$1" "$d"
  jq --argjson o "$2" '.shard.clock_offset_s = $o' "$1/config.json" >"$d/config.json"
  jq --argjson o "$2" '.shard.clock_offset_s = $o' "$1/summary.json" >"$d/summary.json"
}
# every shard's offset known and close: valid, the offsets and their spread recorded
set_offset "${S3[0]}" 0.10 c0-shard0of3 && set_offset "${S3[1]}" 0.25 c1-shard1of3 && set_offset "${S3[2]}" -0.05 c2-shard2of3
C=("$TMP"/c0-shard0of3 "$TMP"/c1-shard1of3 "$TMP"/c2-shard2of3)
expect_exit 0 "$KVBENCH" merge "${C[@]}" --results-root "$RES" --run-id clocks --max-skew-s 60
jq -e '.merge | (.shards | map(.clock_offset_s) == [0.1, 0.25, -0.05]) and .clock_spread_s == 0.3' \
  "$RES/clocks/summary.json" >/dev/null || fail "clocks: $(jq -c .merge "$RES/clocks/summary.json")"
# one clock 30 s ahead of the others: shard_skew names it and the offsets
set_offset "${S3[2]}" 30.2 c2-shard2of3
expect_exit 1 "$KVBENCH" merge "${C[@]}" --results-root "$RES" --run-id clockskew --max-skew-s 20
[[ $OUT == *"INVALID (shard_skew)"* ]] || fail "clock skew: $OUT"
jq -e --arg d "$TMP/c2-shard2of3" '.merge.clock_spread_s == 30.1 and (.invalid_details_kvbench
  | any(.reason == "shard_skew" and .clock_spread_s == 30.1 and (.outliers | map(.dir)) == [$d]
    and .outliers[0].clock_offset_s == 30.2 and (.message | contains($d) and contains("30.2"))))' \
  "$RES/clockskew/summary.json" >/dev/null || fail "clock skew: $(jq -c .invalid_details_kvbench "$RES/clockskew/summary.json")"
# a shard whose clock is 5 s behind started its first phase at the same --start-at on its own
# clock, so 5 s late: its started_at, read on the sync directory's clock, say so
set_offset "${S3[0]}" 0 c0-shard0of3 && set_offset "${S3[1]}" 0 c1-shard1of3 && set_offset "${S3[2]}" -5 c2-shard2of3
first=$(jq -r '.phase_summaries[0].phase' "${S3[0]}/summary.json")
for i in 0 1 2; do # every shard's phases at the same times on its own clock, as --start-at makes them
  jq --slurpfile a "${S3[0]}/summary.json" '.phase_summaries |= ([., $a[0].phase_summaries] | transpose
    | map(.[0] + {started_at: .[1].started_at, ended_at: .[1].ended_at}))' "${C[$i]}/summary.json" >"$TMP/s.json"
  mv "$TMP/s.json" "${C[$i]}/summary.json"
done
expect_exit 1 "$KVBENCH" merge "${C[@]}" --results-root "$RES" --run-id late --max-skew-s 2
jq -e --arg d "$TMP/c2-shard2of3" --arg p "$first" '.invalid_details_kvbench | any(.reason == "shard_skew"
  and .phase == $p and .latest.dir == $d and .skew_s == 5)' "$RES/late/summary.json" >/dev/null ||
  fail "late first phase: $(jq -c .invalid_details_kvbench "$RES/late/summary.json")"
# the node figures and the I/O verdict are one shard's windows: said
jq -e '.merge.notes | any(test("nodes, io_delta and the I/O verdict are shard 0.s phase windows"))' "$S" >/dev/null ||
  fail "node windows unsaid: $(jq -c .merge.notes "$S")"
# no offset recorded (an older kvbench): not judged, and said
jq -e '.merge | .clock_spread_s == null and (.shards | all(.clock_offset_s == null))
  and (.notes | any(test("clock_offset_s")))' "$S" >/dev/null || fail "no offsets: $(jq -c .merge "$S")"

# --- not shards of one run, a malformed row, an existing directory: one line, nothing written -----
OTHER="$TMP/other-shard2of3"
cp -r "${S3[2]}" "$OTHER"
jq '.shard.config_sha256 = "0000"' "${S3[2]}/config.json" >"$OTHER/config.json"
expect_exit 2 "$KVBENCH" merge "${S3[0]}" "${S3[1]}" "$OTHER" --results-root "$RES" --run-id mixed
one_line "$ERR"
[[ $ERR == *"$OTHER: config_sha256"*"not shards of one run"* ]] || fail "hash: $ERR"
[[ ! -e $RES/mixed ]] || fail "a mismatched merge wrote a directory"
jq '.shard.count = 4' "${S3[2]}/config.json" >"$OTHER/config.json"
expect_exit 2 "$KVBENCH" merge "${S3[0]}" "$OTHER" --results-root "$RES" --run-id mixed
one_line "$ERR"
[[ $ERR == *"a shard of 4"* ]] || fail "count: $ERR"
expect_exit 2 "$KVBENCH" merge "${S3[0]}" "$RES/one" --results-root "$RES" --run-id mixed
[[ $ERR == *"no shard object"* ]] || fail "not a shard: $ERR"
expect_exit 2 "$KVBENCH" merge "${S3[0]}" "$TMP/nowhere" --results-root "$RES" --run-id mixed
[[ $ERR == *"$TMP/nowhere: not a directory"* ]] || fail "no dir: $ERR"
cp "${S3[2]}/config.json" "$OTHER/config.json"
sed -i '4s/"latency_ms":[0-9.]*/"latency_ms":"slow"/' "$OTHER/requests.jsonl"
expect_exit 2 "$KVBENCH" merge "${S3[0]}" "${S3[1]}" "$OTHER" --results-root "$RES" --run-id mixed
one_line "$ERR"
[[ $ERR == *"$OTHER/requests.jsonl:4: latency_ms: expected a number"* ]] || fail "malformed row: $ERR"
[[ ! -e $RES/mixed ]] || fail "a malformed merge wrote a directory"
expect_exit 2 "$KVBENCH" merge "${S3[@]}" --results-root "$RES"
[[ $ERR == *"$RES/s3 exists"* ]] || fail "existing: $ERR"
expect_exit 2 "$KVBENCH" merge --results-root "$RES"
expect_exit 0 "$KVBENCH" merge --help
for f in --results-root --run-id --max-skew-s; do [[ $OUT == *"$f"* ]] || fail "--help lacks $f"; done
echo "merge: ok"
