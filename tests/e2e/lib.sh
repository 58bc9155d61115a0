# Shared helpers for the end-to-end tests. Source it; it sets `set -euo pipefail`, a scratch
# directory, and an EXIT trap that stops every process the test registered, pass or fail.
set -euo pipefail

: "${KVBENCH:?KVBENCH must point at the kvbench binary}"
SRC=${KVBENCH_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TMP=$(mktemp -d /tmp/kvbench-e2e-XXXXXX)
PIDS=()

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do
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
