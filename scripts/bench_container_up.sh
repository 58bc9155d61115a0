#!/usr/bin/env bash
# Runbook step 2: (re)create the serving container with the GPU, the NVMe devices, the cache
# mount and the config, idle until the worker and frontend are started in it.
#   BENCH_CONTAINER_NAME (dyn), BENCH_IMAGE, MODEL_HANDLE, DYN_KVBM_DISK_CACHE_GB,
#   DYN_KVBM_DISK_CACHE_DIR, BENCH_NVME_DEVICES (default "/dev/nvme0n1 /dev/nvme0n1p2")
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" "$@"
BENCH_NVME_DEVICES=${BENCH_NVME_DEVICES:-/dev/nvme0n1 /dev/nvme0n1p2}
dev_args=()
for d in /dev/nvidia-fs*; do
  [[ -e $d ]] && dev_args+=(--device="$d")
done
for d in $BENCH_NVME_DEVICES; do
  dev_args+=(--device="$d")
done
if [[ $DRY_RUN == 1 ]]; then
  echo "+ docker rm -f $BENCH_CONTAINER_NAME"
else
  docker rm -f "$BENCH_CONTAINER_NAME" >/dev/null 2>&1 || true
fi
run docker run -d --name "$BENCH_CONTAINER_NAME" \
  --gpus all --ipc host --network host \
  "${dev_args[@]}" \
  --ulimit memlock=-1 --cap-add IPC_LOCK --cap-add SYS_ADMIN \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
  -e MODEL_HANDLE="$MODEL_HANDLE" \
  -e DYN_KVBM_DISK_CACHE_GB="$DYN_KVBM_DISK_CACHE_GB" \
  -e DYN_KVBM_DISK_CACHE_DIR="$DYN_KVBM_DISK_CACHE_DIR" \
  -e CUFILE_ENV_PATH_JSON=/etc/cufile/cufile.json \
  -v /mnt/nvme:/mnt/nvme:rshared \
  -v "$DYN_KVBM_DISK_CACHE_DIR/kvbm_llm_api_config.yaml:/tmp/kvbm_llm_api_config.yaml:ro" \
  -v "$HOME/.cache/huggingface/:/root/.cache/huggingface/" \
  -v /run/udev:/run/udev:ro -v /dev/disk:/dev/disk:ro \
  "$BENCH_IMAGE" bash -lc "sleep infinity"
run docker ps --filter "name=$BENCH_CONTAINER_NAME"
run docker exec "$BENCH_CONTAINER_NAME" bash -lc "findmnt -T $DYN_KVBM_DISK_CACHE_DIR -o TARGET,SOURCE,FSTYPE,OPTIONS"
