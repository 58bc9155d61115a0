#!/usr/bin/env bash
# Runbook step 3: start (or with --restart, restart) the TensorRT-LLM worker in the container,
# its KVBM tiers set by BENCH_KV_MODE: off (no KVBM tiers), cpu_only (host memory),
# cpu_disk (host memory and disk). `kvbench compare --restart-cmd` uses it between modes.
#   BENCH_CONTAINER_NAME, BENCH_KV_MODE, MODEL_HANDLE, BENCH_MODEL_PATH (default: the newest
#   snapshot of MODEL_HANDLE in the container's Hugging Face cache), DYN_KVBM_CPU_CACHE_GB,
#   DYN_KVBM_DISK_CACHE_GB, DYN_KVBM_DISK_CACHE_DIR
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" "$@"
restart=0
for a in "${ARGS[@]+"${ARGS[@]}"}"; do
  [[ $a == --restart ]] && restart=1
done
case $BENCH_KV_MODE in
  off) cpu_gb=0 disk_gb=0 ;;
  cpu_only) cpu_gb=$DYN_KVBM_CPU_CACHE_GB disk_gb=0 ;;
  cpu_disk) cpu_gb=$DYN_KVBM_CPU_CACHE_GB disk_gb=$DYN_KVBM_DISK_CACHE_GB ;;
  *) echo "bench_start_worker: BENCH_KV_MODE must be off, cpu_only or cpu_disk" >&2; exit 2 ;;
esac
model_dir="models--${MODEL_HANDLE//\//--}"
model_path=${BENCH_MODEL_PATH:-"\$(ls -d /root/.cache/huggingface/hub/$model_dir/snapshots/* | sort | tail -n 1)"}
if [[ $restart == 1 ]]; then
  run docker exec "$BENCH_CONTAINER_NAME" bash -lc "pkill -f '[d]ynamo.trtllm' || true; sleep 5"
fi
run docker exec -d "$BENCH_CONTAINER_NAME" bash -lc "
set -euo pipefail
mkdir -p /tmp/bench-logs
export DYN_KVBM_CPU_CACHE_GB=$cpu_gb DYN_KVBM_DISK_CACHE_GB=$disk_gb
export DYN_KVBM_DISK_CACHE_DIR=$DYN_KVBM_DISK_CACHE_DIR DYN_KVBM_METRICS=true
extra=()
[ $BENCH_KV_MODE = off ] || extra=(--extra-engine-args /tmp/kvbm_llm_api_config.yaml)
python3 -m dynamo.trtllm --model-path $model_path \
  --endpoint dyn://dynamo.tensorrt_llm.generate \"\${extra[@]}\" --store-kv file \
  > /tmp/bench-logs/worker.log 2>&1"
