#!/usr/bin/env bash
# `kvbench serve` driven by the OpenAI Node SDK (npm `openai`): models.retrieve, completions and
# chat.completions streamed (with stream_options.include_usage) and not, and the SDK's error
# classes for refused parameters, under every personality, with two SDK versions: the one pinned
# in tests/node/package.json and the newer one pinned in tests/node-current/package.json.
source "$(dirname "$0")/lib.sh"
command -v node >/dev/null && command -v npm >/dev/null ||
  fail "node and npm are needed (scripts/install-deps.sh installs them)"
SDKS=()
for dir in node node-current; do
  NODE_DIR="$SRC/tests/$dir"
  if [[ ! -d "$NODE_DIR/node_modules/openai" ]]; then
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund >"$TMP/npm-$dir.log" 2>&1) ||
      { cat "$TMP/npm-$dir.log" >&2; fail "npm ci in tests/$dir failed"; }
  fi
  # the script beside this SDK's node_modules, so that its `import 'openai'` finds this one
  mkdir -p "$TMP/$dir"
  cp "$SRC/tests/node/sdk_test.mjs" "$TMP/$dir/"
  ln -s "$NODE_DIR/node_modules" "$TMP/$dir/node_modules"
  SDKS+=("$dir")
done
for p in dynamo vllm sglang llamacpp trtllm; do
  start_engine --profile tiny --personality "$p" --kv-mode off --speedup 0
  model=$(curl -sf "$BASE/v1/models" | jq -r '.data[0].id')
  for dir in "${SDKS[@]}"; do
    version=$(jq -r .version "$SRC/tests/$dir/node_modules/openai/package.json")
    node "$TMP/$dir/sdk_test.mjs" "$BASE" "$model" "$p" ||
      fail "the OpenAI SDK $version (tests/$dir) failed against the $p personality"
    echo "openai_sdk: openai $version against $p: ok"
  done
  stop_engine
done
echo "openai_sdk: ok"
