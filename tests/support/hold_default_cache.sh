#!/usr/bin/env bash
# A CTest fixture (tests/CMakeLists.txt): while the e2e tests run, a `kvbench serve` holds the
# default disk cache directory (/tmp/kvbench-kvbm), as a user's engine on the same machine would.
# A test that reaches for the global path instead of a --disk-cache-dir of its own then fails in
# CI, not on a user's machine.
#   hold_default_cache.sh start STATE_DIR   start it (or note that another engine holds it)
#   hold_default_cache.sh stop STATE_DIR    stop it, and remove the directory if it made it
set -euo pipefail
: "${KVBENCH:?KVBENCH must point at the kvbench binary}"
what=${1:?start or stop}
state=${2:?state directory}
DIR=/tmp/kvbench-kvbm
case $what in
start)
  mkdir -p "$state"
  rm -f "$state/pid" "$state/ready.json" "$state/made"
  [[ -e $DIR ]] || touch "$state/made"
  # detached from CTest's pipes (it waits for them to close) and from its process group
  setsid "$KVBENCH" serve --profile tiny --kv-mode cpu_disk --port 0 --metrics-port 0 \
    --speedup 0 --ready-file "$state/ready.json" --log-level WARNING \
    </dev/null >"$state/engine.log" 2>&1 &
  echo $! >"$state/pid"
  for _ in $(seq 100); do
    [[ -s $state/ready.json ]] && { echo "holding $DIR (pid $(cat "$state/pid"))"; exit 0; }
    kill -0 "$(cat "$state/pid")" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q 'in use by another kvbench serve' "$state/engine.log"; then
    echo "$DIR is held by another engine already: the tests run beside it"
    rm -f "$state/pid" "$state/made"
    exit 0
  fi
  cat "$state/engine.log" >&2
  echo "the engine holding $DIR did not start" >&2
  exit 1
  ;;
stop)
  if [[ -s $state/pid ]]; then
    pid=$(cat "$state/pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$state/pid"
  fi
  # only what this fixture made: an empty directory once its engine cleaned up
  [[ -e $state/made ]] && rmdir "$DIR" 2>/dev/null || true
  rm -f "$state/made"
  echo "released $DIR"
  ;;
*)
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
  ;;
esac
