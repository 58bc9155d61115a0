#!/usr/bin/env bash
# `kvbench run --shard I/N` against `kvbench serve`: three shards of a standard run started
# together (--start-at, one --shard-sync directory) send disjoint prompts whose union is a single
# process's with the same salt, their phases start within a second of each other, and their
# config.json records the split; an eviction_replay's phases lined up across shards (pressure_B
# after every shard's warm_A, replay_A of each shard's own A); an open loop's rate divided and its
# constant arrivals interleaved; multi_turn by user and a trace by row; a shard that never comes
# (shard_missing naming it), a shard interrupted at the barrier, a sync directory of an earlier
# run; and the flags' one-line errors (exit 2, nothing written).
source "$(dirname "$0")/lib.sh"

RES="$TMP/results"
start_engine --profile tiny --kv-mode cpu_disk --gpu-cache-blocks 1024 --cpu-cache-blocks 2048 \
  --disk-cache-blocks 8192 --speedup 50 --log-level WARNING
COMMON=(--base-url "$BASE" --kvbm-metrics-url "$METRICS" --results-root "$RES"
  --tokenizer heuristic --log-level WARNING --no-progress --short-range 64:128 --long-range 256:384)

# shards ID N [RUN ARGS...] — start shards 0..N-1 of run ID at once; each must exit 0.
shards() {
  local id=$1 n=$2 pids=() i
  shift 2
  for ((i = 0; i < n; i++)); do
    "$KVBENCH" run "${COMMON[@]}" --run-id "$id" --shard "$i/$n" "$@" >"$TMP/$id.$i.log" 2>&1 &
    pids+=($!)
    PIDS+=($!)
  done
  for ((i = 0; i < n; i++)); do
    wait "${pids[$i]}" || { cat "$TMP/$id.$i.log" >&2; fail "$id: shard $i of $n exited $?"; }
  done
}
# rows DIR... — "phase prompt_id prompt_sha256" of every request, sorted
rows() { cat "${@/%//requests.jsonl}" | jq -r '"\(.phase) \(.prompt_id) \(.prompt_sha256)"' | sort; }
# aligned ID N PHASE... — every phase started within a second across the shards
aligned() {
  local id=$1 n=$2 ph
  shift 2
  for ph in "$@"; do
    jq -e -s --arg p "$ph" '[.[].phase_summaries[] | select(.phase == $p) | .started_at]
      | length == '"$n"' and max - min < 1' "$RES/$id"-shard*of"$n"/summary.json >/dev/null ||
      fail "$id: $ph started at $(jq -c -s --arg p "$ph" \
        '[.[].phase_summaries[] | select(.phase == $p) | .started_at]' \
        "$RES/$id"-shard*of"$n"/summary.json)"
  done
}

# --- the flags' errors: one line, exit 2, nothing written ---------------------------------------
while IFS='|' read -r args want; do
  # shellcheck disable=SC2086
  expect_exit 2 "$KVBENCH" run "${COMMON[@]}" --concurrency 3 $args
  one_line "$ERR"
  grep -qF -- "$want" <<<"$ERR" || fail "$args: $ERR"
done <<'CASES'
--shard 3/3 --run-id e|I must be below N
--shard 1 --run-id e|expected I/N
--shard a/3 --run-id e|expected I/N
--shard 0/0 --run-id e|N must be 1 to
--shard 0/3|give every shard the same --run-id
--shard 0/4 --run-id e|--concurrency 3 is fewer than the 4 shards
--shard 0/2 --run-id e --request-rate 5 --max-concurrency 1|--max-concurrency 1 is fewer
--shard 0/2 --run-id e --scenario eviction_replay --eviction-b-concurrency 1|--eviction-b-concurrency 1 is fewer
--shard 0/3 --run-id e --scenario multi_turn --users 2 --warmup 0|--users 2 is fewer than the 3 shards
--shard 0/3 --run-id e --start-at soon|--start-at: expected a number
--shard 0/3 --start-at 1800000000000|not milliseconds
--shard 0/3 --run-id e --scenario breakeven|breakeven times one request at a time
--shard 0/2 --run-id e --scenario reuse_verify|reuse_verify sends one prompt
--start-at 1800000000 --run-id e|apply with --shard I/N
--shard-sync /tmp --run-id e|apply with --shard I/N
CASES
expect_exit 2 "$KVBENCH" compare --base-url "$BASE" --results-root "$RES" --shard 0/2
one_line "$ERR"
grep -qF "only kvbench run sends a part of a run" <<<"$ERR" || fail "compare --shard: $ERR"
[[ ! -e $RES ]] || fail "a refused run wrote $(ls "$RES")"
# a run id that climbs out of the results root is refused before the sync directory is made
expect_exit 2 "$KVBENCH" run "${COMMON[@]}" --results-root "$TMP/a/b" --run-id ../../evil \
  --shard 0/2 --concurrency 2
one_line "$ERR"
grep -qF -- "--run-id must not contain" <<<"$ERR" || fail "--run-id ../../evil: $ERR"
[[ ! -e $TMP/evil.sync && ! -e $TMP/a ]] || fail "a refused run id made $(ls -d "$TMP"/evil.sync "$TMP"/a 2>&1)"

# --- standard: three shards started together, and one process at the same load ----------------
AT=$(($(date +%s) + 4))
shards std 3 --start-at "$AT" --shard-sync "$TMP/sync-std" --requests 13 --warmup 4 --concurrency 4 \
  --max-tokens 8
expect_exit 0 "$KVBENCH" run "${COMMON[@]}" --run-id single --prompt-salt std --requests 13 \
  --warmup 4 --concurrency 4 --max-tokens 8
D=("$RES"/std-shard{0,1,2}of3)
# each shard's first phase was gated by --start-at; a shard not ready by then (a busy host) must
# have started at once and said so (start_late past a second): the run reports a late start, it
# does not wait for a time that has passed
late=0
for d in "${D[@]}"; do
  jq -e '.shard.barriers[0] | .after == "--start-at" and .start_at == '"$AT"'' "$d/summary.json" \
    >/dev/null || fail "$d: first barrier: $(jq -c '.shard.barriers[0]' "$d/summary.json")"
  jq -e '.shard.barriers[0] | .ready_at <= .start_at' "$d/summary.json" >/dev/null && continue
  late=1
  jq -e '(.shard.barriers[0] | .ready_at <= .start_at + 1)
    or ([.warnings[].code] | index("start_late"))' "$d/summary.json" >/dev/null ||
    fail "$d: ready after --start-at, no start_late: $(jq -c '.shard.barriers[0], .warnings' "$d/summary.json")"
done
for i in 0 1 2; do
  grep -q "run std, shard $i of 3: valid" "$TMP/std.$i.log" || fail "shard $i: $(cat "$TMP/std.$i.log")"
  jq -e --argjson i "$i" '.shard | .index == $i and .count == 3 and .base_run_id == "std"
    and .start_at == '"$AT"' and (.sync_dir | endswith("sync-std"))
    and (.config_sha256 | length) == 64 and .split.concurrency.run == 4
    and (.clock_offset_s | type == "number" and fabs < 1)
    and .split.concurrency.shard == (if $i == 0 then 2 else 1 end) and .split.request_rate == null
    and [.phases[] | [.name, .requests, .concurrency]] == [["warmup", 4, 4], ["main", 13, 4]]' \
    "${D[$i]}/config.json" >/dev/null || fail "shard $i config: $(jq -c .shard "${D[$i]}/config.json")"
  jq -e --argjson i "$i" '.shard.index == $i and .run_id == "std-shard\($i)of3"' \
    "${D[$i]}/summary.json" >/dev/null || fail "shard $i summary: $(jq -c .shard "${D[$i]}/summary.json")"
  grep -q "^- \*\*Shard:\*\* $i of 3 " "${D[$i]}/report.md" || fail "shard $i: report.md"
done
[[ $(jq -s '[.[].shard.config_sha256] | unique | length' "${D[@]/%//config.json}") -eq 1 ]] ||
  fail "shards of one run with different config_sha256"
# each shard's part: positions p % 3 == i of each phase, at its share of the concurrency
jq -e -s '[.[].phases[] | select(.name == "main") | [.requests, .concurrency]]
  == [[5, 2], [4, 1], [4, 1]]' "${D[@]/%//config.json}" >/dev/null ||
  fail "split: $(jq -c -s '[.[].phases]' "${D[@]/%//config.json}")"
for i in 0 1 2; do
  jq -e -s --argjson i "$i" 'all(.[]; (.prompt_id | ltrimstr("warmup-") | ltrimstr("main-")
    | tonumber) % 3 == $i)' "${D[$i]}/requests.jsonl" >/dev/null || fail "shard $i sent another's prompt"
done
rows "${D[@]}" >"$TMP/std.rows"
rows "$RES/single" >"$TMP/single.rows"
[[ -z $(cut -d' ' -f1,2 "$TMP/std.rows" | uniq -d) ]] || fail "a prompt was sent by two shards"
[[ $(wc -l <"$TMP/std.rows") -eq 17 ]] || fail "$(wc -l <"$TMP/std.rows") rows, expected 17"
diff "$TMP/std.rows" "$TMP/single.rows" >/dev/null ||
  fail "the shards' union differs from one process's: $(diff "$TMP/std.rows" "$TMP/single.rows" | head -5)"
# the first phase lines up at --start-at unless a shard was late for it; the next by the barrier
if ((late)); then aligned std 3 main; else aligned std 3 warmup main; fi
# the barrier: every shard wrote its end of each phase
for f in phase0 phase1; do
  for i in 0 1 2; do
    jq -e '.skipped == false and .end > 0' "$TMP/sync-std/$f.shard$i" >/dev/null || fail "$f.shard$i"
  done
done
# kvbench summary says which shard a run is
"$KVBENCH" summary "${D[1]}" | grep -q "standard, shard 1 of 3" || fail "summary table"

# --- eviction_replay: the phases lined up, each shard replaying its own part of set A ----------
shards ev 2 --scenario eviction_replay --eviction-a-requests 6 --eviction-b-requests 8 \
  --warmup 2 --concurrency 2 --max-tokens 8
E=("$RES"/ev-shard{0,1}of2)
aligned ev 2 warmup warm_A pressure_B replay_A
for p in "warm_A pressure_B" "pressure_B replay_A"; do
  read -r before after <<<"$p"
  jq -e -s --arg b "$before" --arg a "$after" '
    ([.[].phase_summaries[] | select(.phase == $b) | .ended_at] | max) as $last
    | all(.[].phase_summaries[] | select(.phase == $a); .started_at >= $last)' \
    "${E[@]/%//summary.json}" >/dev/null || fail "$after started before every shard's $before ended"
done
for d in "${E[@]}"; do
  w=$(jq -r 'select(.phase == "warm_A") | .prompt_id' "$d/requests.jsonl" | sort | tr '\n' ' ')
  r=$(jq -r 'select(.phase == "replay_A") | .prompt_id' "$d/requests.jsonl" | sort | tr '\n' ' ')
  [[ -n $w && $w == "$r" ]] || fail "$d: replay_A ($r) is not warm_A ($w)"
done
[[ $(cat "${E[@]/%//requests.jsonl}" | jq -r 'select(.phase == "warm_A") | .prompt_id' |
  sort -u | wc -l) -eq 6 ]] || fail "set A not sent whole across the shards"

# --- open loop: the rate divided, constant arrivals interleaved ---------------------------------
shards ol 3 --request-rate 30 --arrival constant --requests 12 --warmup 0 --concurrency 3 \
  --max-tokens 8
for i in 0 1 2; do
  jq -e --argjson i "$i" '.shard.split | .request_rate == {run: 30, shard: 10}
    and (.arrival_offset_s - $i / 30 | fabs) < 1e-9' "$RES/ol-shard${i}of3/config.json" \
    >/dev/null || fail "ol $i: $(jq -c .shard.split "$RES/ol-shard${i}of3/config.json")"
done
# the union's scheduled sends are 1/30 s apart (ms stamps: 33 or 34 ms)
cat "$RES"/ol-shard*of3/requests.jsonl | jq -r '.scheduled_ts' | sort >"$TMP/ol.ts"
python3 - "$TMP/ol.ts" <<'PY' || fail "open loop: scheduled sends not evenly spaced: $(cat "$TMP/ol.ts")"
import sys, datetime
ts = [datetime.datetime.fromisoformat(l.strip()).timestamp() for l in open(sys.argv[1])]
gaps = [round((b - a) * 1000) for a, b in zip(ts, ts[1:])]
sys.exit(0 if len(ts) == 12 and all(32 <= g <= 35 for g in gaps) else 1)
PY

# --- a slow node scrape before each phase delays neither the barrier's start nor the schedule -----
# A node that never answers (a socket that is never accepted) makes each scrape wait out its
# 2 s timeout. The shard reads its "before" figures once the barrier has passed and before the
# phase's start, and its schedule starts when its load does: no request is due before it began.
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True); time.sleep(300)' >"$TMP/mute.port" &
PIDS+=($!)
for _ in $(seq 100); do [[ -s $TMP/mute.port ]] && break; sleep 0.05; done
shards slow 2 --request-rate 20 --arrival constant --requests 8 --warmup 2 --concurrency 2 \
  --max-tokens 8 --scrape "mute=http://127.0.0.1:$(cat "$TMP/mute.port")/metrics" \
  --kvbm-metrics-timeout-s 2
for i in 0 1; do
  d="$RES/slow-shard${i}of2"
  python3 - "$d" <<'PY' || fail "slow scrape: shard $i's schedule began before its phase started"
import sys, json, datetime
d = sys.argv[1]
started = {p["phase"]: p["started_at"] for p in json.load(open(d + "/summary.json"))["phase_summaries"]}
due = {}
for line in open(d + "/requests.jsonl"):
    r = json.loads(line)
    if r["scheduled_ts"] is None:  # closed loop (warmup): no schedule
        continue
    t = datetime.datetime.fromisoformat(r["scheduled_ts"]).timestamp()
    due[r["phase"]] = min(due.get(r["phase"], t), t)
bad = {p: (due[p], started[p]) for p in due if due[p] < started[p] - 0.002}
print(bad, file=sys.stderr)
sys.exit(1 if bad or "main" not in due else 0)
PY
  jq -e '[.warnings[].code] | index("shard_phase_late")' "$d/summary.json" >/dev/null ||
    fail "slow scrape: shard $i: no shard_phase_late: $(jq -c .warnings "$d/summary.json")"
done

# --- multi_turn by user, trace by row -----------------------------------------------------------
shards mt 2 --scenario multi_turn --users 4 --rounds 2 --system-prompt-tokens 16 \
  --history-tokens 64 --answer-tokens 8 --user-qps 4 --warmup 0
for i in 0 1; do
  got=$(jq -r '.prompt_id' "$RES/mt-shard${i}of2/requests.jsonl" | sort | tr '\n' ' ')
  want=$(for u in $i $((i + 2)); do for r in 1 2; do printf 'turn-u%05d-r%03d\n' "$u" "$r"; done; done |
    sort | tr '\n' ' ')
  [[ $got == "$want" ]] || fail "multi_turn shard $i sent $got, expected $want"
done
printf '%s\n' '{"timestamp": 0, "input_length": 64, "output_length": 4, "hash_ids": [1]}' \
  '{"timestamp": 10, "input_length": 64, "output_length": 4, "hash_ids": [1]}' \
  '{"timestamp": 20, "input_length": 64, "output_length": 4, "hash_ids": [2]}' >"$TMP/trace.jsonl"
shards tr 2 --scenario trace --trace "$TMP/trace.jsonl" --trace-block-tokens 64 \
  --trace-speedup 0 --warmup 0 --concurrency 2
[[ $(jq -r .prompt_id "$RES/tr-shard0of2/requests.jsonl" | sort | tr '\n' ' ') == \
  "trace-00000 trace-00002 " ]] || fail "trace shard 0: $(jq -r .prompt_id "$RES/tr-shard0of2/requests.jsonl")"
[[ $(jq -r .prompt_id "$RES/tr-shard1of2/requests.jsonl") == trace-00001 ]] || fail "trace shard 1"
# a timed window of one row (its planned concurrency is its row count): shard 1 has no share, so
# it plans 0 and the shards' concurrencies add up to the run's (1), not one per shard
printf '%s\n' '{"timestamp": 0, "input_length": 64, "output_length": 4, "hash_ids": [1]}' \
  '{"timestamp": 10, "input_length": 64, "output_length": 4, "hash_ids": [1]}' \
  '{"timestamp": 3000, "input_length": 64, "output_length": 4, "hash_ids": [2]}' >"$TMP/trace2.jsonl"
shards tw 2 --scenario trace --trace "$TMP/trace2.jsonl" --trace-block-tokens 64 \
  --trace-speedup 10 --trace-window-s 1 --warmup 0 --concurrency 2
jq -e -s '[.[].phase_summaries[] | [.phase, .concurrency]]
  == [["window_1", 1], ["window_4", 1], ["window_1", 1], ["window_4", 0]]' \
  "$RES"/tw-shard{0,1}of2/summary.json >/dev/null ||
  fail "timed trace windows' concurrency: $(jq -c -s '[.[].phase_summaries[] | [.phase, .concurrency]]' \
    "$RES"/tw-shard{0,1}of2/summary.json)"

# --- a shard that never comes -------------------------------------------------------------------
expect_exit 1 "$KVBENCH" run "${COMMON[@]}" --run-id miss --shard 0/2 --shard-wait-s 2 \
  --requests 4 --warmup 2 --concurrency 2 --max-tokens 8
S="$RES/miss-shard0of2/summary.json"
jq -e '.invalid_reason == "shard_missing" and .invalid_details_kvbench[0].missing[0].shard == 1
  and .invalid_details_kvbench[0].phase == "warmup"
  and all(.phase_summaries[]; .skipped)' "$S" >/dev/null ||
  fail "missing shard: $(jq -c '.invalid_reason, .invalid_details_kvbench' "$S")"
jq -r '.invalid_details[0]' "$S" | grep -q "shard 1 of 2 did not reach the barrier before phase warmup" ||
  fail "missing shard: $(jq -r '.invalid_details[0]' "$S")"
[[ ! -s $RES/miss-shard0of2/requests.jsonl ]] || fail "a shard alone sent requests"
# it marked its phases skipped: a late shard 1 goes on alone instead of waiting, and says so
jq -e '.skipped' "$RES/miss.sync/phase1.shard0" >/dev/null || fail "no skipped marker"
expect_exit 0 "$KVBENCH" run "${COMMON[@]}" --run-id miss --shard 1/2 --shard-wait-s 2 \
  --requests 4 --warmup 2 --concurrency 2 --max-tokens 8
jq -e '[.warnings[].code] | index("shard_peer_stopped")' "$RES/miss-shard1of2/summary.json" \
  >/dev/null || fail "late shard: $(jq -c .warnings "$RES/miss-shard1of2/summary.json")"
# the same shard again over that sync directory: its files of the earlier run are refused
expect_exit 2 "$KVBENCH" run "${COMMON[@]}" --run-id miss --shard 0/2 --results-root "$TMP/again" \
  --shard-sync "$RES/miss.sync" --requests 4 --warmup 2 --concurrency 2
one_line "$ERR"
grep -qF "already holds shard 0's" <<<"$ERR" || fail "stale sync dir: $ERR"

# --- SIGINT while a shard waits at the barrier ---------------------------------------------------
"$KVBENCH" run "${COMMON[@]}" --run-id int --shard 0/2 --requests 4 --warmup 2 \
  --concurrency 2 >"$TMP/int.log" 2>&1 &
pid=$!
PIDS+=("$pid")
for _ in $(seq 200); do [[ -s $RES/int.sync/start.shard0 ]] && break; sleep 0.05; done
[[ -s $RES/int.sync/start.shard0 ]] || fail "shard did not reach the barrier: $(cat "$TMP/int.log")"
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[[ $rc -eq 1 ]] || fail "interrupted shard exited $rc"
jq -e '.invalid_reason == "interrupted"' "$RES/int-shard0of2/summary.json" >/dev/null ||
  fail "interrupted shard: $(jq -c .invalid_reason "$RES/int-shard0of2/summary.json")"
jq -e '.skipped' "$RES/int.sync/phase0.shard0" >/dev/null || fail "interrupted: no skipped marker"

stop_engine
echo "shard: ok"
