# shellcheck shell=bash
# Sourced by the bench scripts: a scratch directory removed at exit, and `start_serve ARGS...`,
# which starts `$KVBENCH serve --profile tiny --kv-mode off --port 0 --metrics-port 0 ARGS...`,
# waits until it is ready and sets BASE and MODEL. The engine is stopped at exit.
TMP=$(mktemp -d)
trap 'kill $(cat "$TMP/pid" 2>/dev/null) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$TMP"' EXIT

start_serve() {
  rm -f "$TMP/ready.json"
  "$KVBENCH" serve --profile tiny --kv-mode off --port 0 --metrics-port 0 \
    --ready-file "$TMP/ready.json" --log-level WARNING "$@" >"$TMP/engine.log" 2>&1 &
  echo $! >"$TMP/pid"
  for _ in $(seq 200); do [[ -s $TMP/ready.json ]] && break; sleep 0.05; done
  BASE=$(jq -r .base_url "$TMP/ready.json")
  MODEL=$(jq -r .model_id "$TMP/ready.json")
  export BASE MODEL
}
