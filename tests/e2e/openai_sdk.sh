#!/usr/bin/env bash
# `kvbench serve` driven by the OpenAI Node SDK (npm `openai`, pinned in tests/node/package.json):
# models.retrieve, completions streamed and not, and the SDK's error classes for refused
# parameters, under the default (Dynamo) and the vLLM personalities.
source "$(dirname "$0")/lib.sh"
NODE_DIR="$SRC/tests/node"
command -v node >/dev/null && command -v npm >/dev/null ||
  fail "node and npm are needed (scripts/install-deps.sh installs them)"
if [[ ! -d "$NODE_DIR/node_modules/openai" ]]; then
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund >"$TMP/npm.log" 2>&1) ||
    { cat "$TMP/npm.log" >&2; fail "npm ci in tests/node failed"; }
fi
for p in dynamo vllm; do
  start_engine --profile tiny --personality "$p" --kv-mode off --speedup 0
  model=$(curl -sf "$BASE/v1/models" | jq -r '.data[0].id')
  node "$NODE_DIR/sdk_test.mjs" "$BASE" "$model" || fail "the OpenAI SDK failed against the $p personality"
  stop_engine
done
echo "openai_sdk: ok"
