#!/usr/bin/env bash
# Runbook step 4: start the Dynamo HTTP frontend in the container on port 8000.
#   BENCH_CONTAINER_NAME, MODEL_HANDLE, BENCH_HTTP_PORT (8000)
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" "$@"
port=${BENCH_HTTP_PORT:-8000}
model_dir="models--${MODEL_HANDLE//\//--}"
run docker exec -d "$BENCH_CONTAINER_NAME" bash -lc "
set -euo pipefail
mkdir -p /tmp/bench-logs
model_path=\$(ls -d /root/.cache/huggingface/hub/$model_dir/snapshots/* | sort | tail -n 1)
test -d \"\$model_path\"
python3 -m dynamo.frontend --http-host 0.0.0.0 --http-port $port --store-kv file \
  --exp-python-factory --model-name $MODEL_HANDLE --model-path \"\$model_path\" \
  > /tmp/bench-logs/frontend.log 2>&1"
