#!/usr/bin/env bash
# Runbook step 1: the KVBM disk-cache directory and the worker's LLM API config on the host.
#   DYN_KVBM_DISK_CACHE_DIR (default /mnt/nvme/kvbm)
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh" "$@"
run mkdir -p "$DYN_KVBM_DISK_CACHE_DIR"
run cp "$REPO_ROOT/configs/kvbm_llm_api_config.yaml" "$DYN_KVBM_DISK_CACHE_DIR/kvbm_llm_api_config.yaml"
run test -r "$DYN_KVBM_DISK_CACHE_DIR/kvbm_llm_api_config.yaml"
