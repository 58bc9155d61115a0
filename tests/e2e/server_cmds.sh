#!/usr/bin/env bash
# `kvbench ready` and `kvbench smoke` beside `kvbench serve`, and the summary table's verdicts:
# ready says on one line of stderr what it waited for and why it gave up; smoke leaves the
# template's <|begin_of_text|> out where the server adds its own BOS (--add-bos auto, as run
# decides it), and keeps it with --add-bos yes; `kvbench summary` shows a multi_turn run's verdict.
source "$(dirname "$0")/lib.sh"

# --- ready: nothing listening ------------------------------------------------------------------
DEAD=http://127.0.0.1:9
expect_exit 1 "$KVBENCH" ready --base-url "$DEAD" --interval-s 0.1 --timeout-s 0.3
one_line "$ERR"
grep -qE "^kvbench ready: $DEAD not ready after [0-9.]+ s: /v1/models: connect failed" <<<"$ERR" ||
  fail "ready, nothing listening: $ERR"
grep -qF "(waited for /v1/models to list a model on 2 polls in a row;" <<<"$ERR" ||
  fail "ready does not say what it waited for: $ERR"

# --- ready: a server whose worker never registers -----------------------------------------------
start_engine --profile tiny --kv-mode off --startup-delay-s 60 --speedup 0
expect_exit 1 "$KVBENCH" ready --base-url "$BASE" --interval-s 0.2 --timeout-s 0.5 \
  --require-endpoints
one_line "$ERR"
want="/v1/models lists no model yet (waited for /v1/models to list a model and /health to list"
grep -qF "$want endpoints and say healthy on 2 polls in a row;" <<<"$ERR" ||
  fail "ready, never registers: $ERR"
stop_engine

# --- smoke: a server that adds its own BOS (llama.cpp's personality warns of a doubled one) ------
start_engine --profile tiny --kv-mode off --personality llamacpp --speedup 0
doubled() { grep -c "now has 2 BOS tokens" "$ENGINE_LOG" || true; }
expect_exit 0 "$KVBENCH" smoke --base-url "$BASE" --max-tokens 4
[[ -n $OUT && -z $ERR ]] || fail "smoke: out '$OUT', err '$ERR'"
[[ $(doubled) -eq 0 ]] || fail "smoke --add-bos auto sent a second BOS"
expect_exit 0 "$KVBENCH" smoke --base-url "$BASE" --max-tokens 4 --add-bos no
[[ $(doubled) -eq 0 ]] || fail "smoke --add-bos no sent a second BOS"
expect_exit 0 "$KVBENCH" smoke --base-url "$BASE" --max-tokens 4 --add-bos yes
[[ $(doubled) -eq 1 ]] || fail "smoke --add-bos yes: the template's BOS did not reach the server"
expect_exit 2 "$KVBENCH" smoke --base-url "$BASE" --add-bos maybe
one_line "$ERR"
grep -qF -- "--add-bos: expected one of auto, yes, no, got 'maybe'" <<<"$ERR" || fail "$ERR"
stop_engine

# --- summary: multi_turn's verdict in the signal column -----------------------------------------
start_engine --profile tiny --kv-mode cpu_disk --disk-cache-dir "$TMP/kv" --speedup 0 \
  --log-level WARNING
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" --kv-mode cpu_disk \
  --scenario multi_turn --users 2 --rounds 2 --system-prompt-tokens 32 --history-tokens 256 \
  --answer-tokens 4 --warmup 0 --results-root "$TMP/results" --no-progress --log-level WARNING \
  --run-id mt
stop_engine
sig=$(jq -r .multi_turn.verdict.signal "$TMP/results/mt/summary.json")
[[ -n $sig && $sig != null ]] || fail "multi_turn: no verdict in summary.json"
expect_exit 0 "$KVBENCH" summary "$TMP/results/mt"
grep -qE "^mt .* multi_turn .* $sig\$" <<<"$OUT" || fail "summary: not '$sig' in: $OUT"
expect_exit 0 "$KVBENCH" summary --json "$TMP/results/mt"
[[ $(jq -r '.[0].signal' <<<"$OUT") == "$sig" ]] || fail "summary --json: $OUT"
echo "server_cmds: ok"
