# shellcheck shell=bash
# Shared by the runbook scripts: --dry-run handling, the kvbench binary, and the environment
# variables of the runbook with their defaults. Source it; do not run it.

DRY_RUN=${DRY_RUN:-0}
ARGS=()
for arg in "$@"; do
  if [[ $arg == --dry-run ]]; then
    DRY_RUN=1
  else
    ARGS+=("$arg")
  fi
done

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${KVBENCH:-} ]]; then
  if [[ -x $REPO_ROOT/build/kvbench ]]; then
    KVBENCH=$REPO_ROOT/build/kvbench
  else
    KVBENCH=kvbench
  fi
fi

BENCH_BASE_URL=${BENCH_BASE_URL:-http://127.0.0.1:8000}
BENCH_KV_MODE=${BENCH_KV_MODE:-cpu_disk}
BENCH_CONTAINER_NAME=${BENCH_CONTAINER_NAME:-dyn}
BENCH_IMAGE=${BENCH_IMAGE:-dgx-spark-dynamo-bench:latest}
BENCH_RESULTS_ROOT=${BENCH_RESULTS_ROOT:-bench/results}
BENCH_KVBM_METRICS_URL=${BENCH_KVBM_METRICS_URL:-http://127.0.0.1:6880/metrics}
MODEL_HANDLE=${MODEL_HANDLE:-nvidia/Llama-3.1-8B-Instruct-FP8}
DYN_KVBM_DISK_CACHE_DIR=${DYN_KVBM_DISK_CACHE_DIR:-/mnt/nvme/kvbm}
DYN_KVBM_DISK_CACHE_GB=${DYN_KVBM_DISK_CACHE_GB:-32}
DYN_KVBM_CPU_CACHE_GB=${DYN_KVBM_CPU_CACHE_GB:-8}

# run CMD...: print the command (shell-quoted, so it can be pasted) and run it unless --dry-run.
run() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if [[ $DRY_RUN != 1 ]]; then
    "$@"
  fi
}

utc_stamp() {
  date -u +%Y%m%dT%H%M%SZ
}
