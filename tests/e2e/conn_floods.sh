#!/usr/bin/env bash
# Connection hygiene in kvbench serve (issue 25, item 1) under floods bigger than its 1,024 slots:
# /health is answered within a second while 1,100 connections trickle their headers, and while
# 1,100 idle keep-alive connections are held; afterwards every connection is given back.
source "$(dirname "$0")/lib.sh"

CLIENT="$SRC/tests/e2e/slow_client.pl"

# the engine's and the client's descriptors (both inherit this shell's limit)
need=4096
cur=$(ulimit -n)
if [[ $cur != unlimited ]] && (( cur < need )); then
  ulimit -n "$need" 2>/dev/null || skip "cannot raise the open-file limit to $need (it is $cur)"
fi
start_engine --profile tiny --kv-mode off --speedup 0 --metrics-port 0 --max-connections 1024 \
  --request-read-timeout-s 10 --idle-timeout-s 60 --disk-cache-dir "$TMP/kv"
PORT=${BASE##*:}
fds() { find "/proc/$ENGINE_PID/fd" -mindepth 1 2>/dev/null | wc -l; }
base_fds=$(fds)
# probe NAME AFTER — /health answered within 1 s: once with curl, then 5 times 0.5 s apart from
# connections that stay open afterwards (AFTER: idle, or trickling a next request), so that
# each one finds every slot taken
probe() {
  local code ms
  read -r code ms < <(curl -s -o /dev/null --max-time 1 -w '%{http_code} %{time_total}\n' "$BASE/health" || true)
  ms=$(awk -v t="${ms:-9}" 'BEGIN { printf "%d", t * 1000 }')
  [[ $code == 200 ]] || fail "$1: curl /health answered '$code' after $ms ms"
  R=$(perl "$CLIENT" probe "$PORT" 5 0.5 "$2")
  grep -q '^answered 5 of 5 ' <<<"$R" || fail "$1: $R"
  echo "$1: /health answered within 1 s 6 of 6 times (curl $ms ms; then $(tail -1 <<<"$R"))"
}
# held_by_flood FILE — the flood did hold the slots while the probes ran (1,024 less what the
# probes took: the probes were answered by taking slots, not by finding free ones)
held_by_flood() {
  local still
  still=$(tail -1 "$1" | awk '{ for (i = 1; i < NF; i++) if ($i == "still") print $(i + 1) }')
  (( still >= 1000 && still <= 1020 )) || fail "the flood held $still connections: $(tail -1 "$1")"
}
# wait_ready FILE PID — until the client says all its connections are open
wait_ready() {
  for _ in $(seq 600); do
    [[ -s $1 ]] && return 0
    kill -0 "$2" 2>/dev/null || fail "the client exited early: $(cat "$TMP/client.out")"
    sleep 0.05
  done
  fail "the client did not open its connections in 30 s"
}

# 1,100 connections that send a header line a second (the header deadline is 10 s: they are all
# still trickling while the probes run)
READY="$TMP/ready.trickle" perl "$CLIENT" trickle "$PORT" 1100 1 7 >"$TMP/client.out" &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")
wait_ready "$TMP/ready.trickle" "$CLIENT_PID"
sleep 1.2 # the trickling connections are older than any client needs to send its headers
probe "1,100 trickling connections" trickle
wait "$CLIENT_PID" || fail "trickle client: $(cat "$TMP/client.out")"
echo "  trickle client: $(tail -1 "$TMP/client.out")"
held_by_flood "$TMP/client.out"

# 1,100 keep-alive connections that each had their answer and now idle (--idle-timeout-s 60)
READY="$TMP/ready.idle" perl "$CLIENT" idle "$PORT" 1100 6 >"$TMP/client.out" &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")
wait_ready "$TMP/ready.idle" "$CLIENT_PID"
probe "1,100 idle keep-alive connections" idle
wait "$CLIENT_PID" || fail "idle client: $(cat "$TMP/client.out")"
echo "  idle client: $(tail -1 "$TMP/client.out")"
grep -q ' answered 1100$' "$TMP/client.out" || fail "not every keep-alive request was answered"
held_by_flood "$TMP/client.out"

# every connection given back
for _ in $(seq 100); do (( $(fds) <= base_fds + 2 )) && break; sleep 0.1; done
(( $(fds) <= base_fds + 2 )) || fail "file handles $base_fds -> $(fds) after the floods"
stop_engine

echo "conn_floods: ok"
