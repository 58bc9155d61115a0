# Shared helpers for the end-to-end tests. Source it; it sets `set -euo pipefail`, a scratch
# directory, and an EXIT trap that stops every process the test registered, pass or fail.
set -euo pipefail

: "${KVBENCH:?KVBENCH must point at the kvbench binary}"
SRC=${KVBENCH_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TMP=$(mktemp -d /tmp/kvbench-e2e-XXXXXX)
PIDS=()
PIDFILES=() # files holding the PID of a process some command started for the test

cleanup() {
  local rc=$?
  for f in "${PIDFILES[@]+"${PIDFILES[@]}"}"; do
    [[ -s $f ]] && PIDS+=("$(cat "$f")")
  done
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [[ $rc -ne 0 && -n "${KEEP_TMP:-}" ]]; then
    echo "kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit $rc
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# CTest reports exit code 77 as skipped (SKIP_RETURN_CODE in tests/CMakeLists.txt).
skip() {
  echo "SKIP: $*"
  exit 77
}

# expect_exit CODE CMD...  — run CMD, capture stdout/stderr in $OUT/$ERR, check its exit code.
expect_exit() {
  local want=$1
  shift
  set +e
  "$@" >"$TMP/out" 2>"$TMP/err"
  local got=$?
  set -e
  OUT=$(cat "$TMP/out")
  ERR=$(cat "$TMP/err")
  if [[ $got -ne $want ]]; then
    echo "stdout: $OUT" >&2
    echo "stderr: $ERR" >&2
    fail "'$*' exited $got, expected $want"
  fi
}

# one_line TEXT — assert TEXT is exactly one line.
one_line() {
  [[ $(printf '%s\n' "$1" | wc -l) -eq 1 ]] || fail "expected one line, got: $1"
}

# start_engine [SERVE ARGS...] — start `kvbench serve` on free ports (loopback), wait until it
# serves, and set ENGINE_PID, BASE (API root), METRICS (KV metrics URL), ENGINE_LOG.
# Unless the arguments name one, the engine gets a --disk-cache-dir of its own under $TMP: a test
# never reaches for the default /tmp/kvbench-kvbm, which a user's engine (or CI's fixture) holds.
start_engine() {
  local rf="$TMP/ready-$RANDOM.json" own=()
  ENGINE_LOG="$TMP/engine-$RANDOM.log"
  [[ " $* " == *" --disk-cache-dir "* ]] || own=(--disk-cache-dir "$TMP/kvbm-$RANDOM")
  "$KVBENCH" serve --port 0 --metrics-port auto --ready-file "$rf" "${own[@]}" "$@" >"$ENGINE_LOG" 2>&1 &
  ENGINE_PID=$!
  PIDS+=("$ENGINE_PID")
  for _ in $(seq 200); do
    [[ -s $rf ]] && break
    kill -0 "$ENGINE_PID" 2>/dev/null || { cat "$ENGINE_LOG" >&2; fail "engine exited at start"; }
    sleep 0.05
  done
  [[ -s $rf ]] || { cat "$ENGINE_LOG" >&2; fail "engine did not start"; }
  BASE=$(jq -r .base_url "$rf")
  METRICS=$(jq -r '.metrics_url // empty' "$rf")
}

# stop_engine [PID] — SIGTERM and wait; fails if it does not exit 0 within 20 s.
stop_engine() {
  local pid=${1:-$ENGINE_PID}
  kill -TERM "$pid"
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "engine $pid did not stop on SIGTERM"
  local rc=0
  wait "$pid" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$ENGINE_LOG" >&2; fail "engine exited $rc"; }
}

# metric NAME [URL] — the sum of every sample of NAME (all label sets) at URL (default $METRICS).
metric() {
  curl -sf "${2:-$METRICS}" | awk -v n="$1" '
    $1 == n || index($1, n "{") == 1 { s += $NF; found = 1 }
    END { if (!found) { print "missing"; exit } printf "%.0f\n", s }'
}

# words PREFIX N — N distinct words, a prompt of N heuristic tokens that shares nothing with other
# prefixes.
words() {
  awk -v p="$1" -v n="$2" 'BEGIN { for (i = 1; i <= n; i++) printf "%s%d ", p, i }'
}

# complete JSON — POST to /v1/completions, body on stdout.
complete() {
  curl -s "$BASE/v1/completions" -H 'Content-Type: application/json' -d "$1"
}

# disk_read_sectors DIR — sectors read so far on the block device holding DIR ("" if unknown).
disk_read_sectors() {
  local mm
  mm=$(findmnt -n -o MAJ:MIN -T "$1" 2>/dev/null | tr -d ' ') || true
  [[ -n $mm && -r /sys/dev/block/$mm/stat ]] || { echo ""; return; }
  awk '{ print $3 }' "/sys/dev/block/$mm/stat"
}

# UNION_STATS_JQ (jq -s over requests.jsonl rows, --arg ph PHASE): the phase's latency, TTFT, ITL
# and TPOT statistics over the rows' raw values, as summary.json gives them (UNION_STATS selects
# them from a phase summary): the same percentile as src/analysis/stats.c (linear between the
# ranks floor/ceil of p/100 x (n-1)), rounded to the microsecond as summary.json is; the mean sums
# the sorted values.
UNION_STATS_JQ='
def pct($p): length as $n | if $n == 1 then .[0] else ($p / 100 * ($n - 1)) as $r | ($r | floor) as $lo
  | if $lo >= $n - 1 then .[$n - 1] else .[$lo] + (.[$lo + 1] - .[$lo]) * ($r - $lo) end end;
def r3: (. * 1000 | round) / 1000;
def stats: if length == 0 then {} else sort | {min: (.[0] | r3), p50: (pct(50) | r3),
  p90: (pct(90) | r3), p95: (pct(95) | r3), p99: (pct(99) | r3), max: (.[-1] | r3),
  mean: ((add / length) | r3)} end;
[.[] | select(.phase == $ph and .error == null)]
| {latency_ms: ([.[].latency_ms] | stats), ttft_ms: ([.[].ttft_ms | select(. != null)] | stats),
   itl_ms: ([.[].itl_ms[]?] | stats), tpot_ms: ([.[].tpot_ms | select(. != null)] | stats)}'
UNION_STATS='{latency_ms, ttft_ms, itl_ms, tpot_ms}'
