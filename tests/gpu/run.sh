#!/usr/bin/env bash
# The GPU checks of issue 29 (make gpu-check), for a machine with an NVIDIA GPU and the CUDA
# toolkit. Each check compares kvbench with an independent reference on the same machine:
#   1. `kvbench tiers`: pinned host<->device within 15 % of a plain cudaMemcpy loop at the same
#      block size (tests/gpu/memcpy_ref.c, built here with the toolkit);
#   2. `kvbench tiers`: host<->disk at least 0.85 x `dd oflag=direct` / `iflag=direct` at the same
#      block size, in the same directory: the medians of ROUNDS (3) alternating rounds, since a
#      shared virtual disk's rate drifts by more than the margin between runs;
#   3. `kvbench tiers`: the cuFile rows name their mode (gds or compat) and moved data (where
#      cuFile refuses the file, what its log and /run/udev say is kept);
#   4. `kvbench demo --g1 cuda`: the eviction_replay act with G1 in GPU memory is valid, detects
#      the disk rehydrate, verified every block (no checksum failure) and its onboards were real
#      copies (the engine's kvbench_g1_* counters).
# Without a GPU it says so and exits 0 having checked nothing (the CI machine has none: the same
# paths run there against stand-in libraries, in make check).
# Env: KVBENCH (default build/kvbench), CUDA_HOME (default /usr/local/cuda), WORK (a scratch dir
# on the disk to measure; default a new one in the repository), OUT (where figures are kept).
set -uo pipefail # no -e: a failed check is counted, the others still run
SRC=$(cd "$(dirname "$0")/../.." && pwd)
KVBENCH=${KVBENCH:-$SRC/build/kvbench}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
if ! { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi -L fails); nothing checked"
  exit 0
fi
OUT=${OUT:-$(mktemp -d /tmp/kvbench-gpu-out-XXXXXX)}
WORK=${WORK:-$(mktemp -d "$SRC/.gpu-work-XXXXXX")} # on the repository's disk, not a tmpfs /tmp
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
fails=0
check() { # check NAME CONDITION-EXIT-STATUS MESSAGE
  if [[ $2 -eq 0 ]]; then echo "ok   $1: $3"; else echo "FAIL $1: $3"; fails=$((fails + 1)); fi
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$CUDA_HOME/lib64

BLOCK=${BLOCK:-2097152} # llama-3.1-8b-fp8: 32 tokens x 64 KiB
BLOCKS=${BLOCKS:-512}   # 1 GiB per pass
"$KVBENCH" tiers --json --block-bytes "$BLOCK" --blocks "$BLOCKS" \
  --disk-cache-dir "$WORK/tiers" >"$OUT/tiers.json" 2>"$OUT/tiers.err" ||
  { echo "gpu-check: kvbench tiers failed: $(cat "$OUT/tiers.err")"; exit 1; }
"$KVBENCH" tiers --block-bytes "$BLOCK" --blocks "$BLOCKS" --disk-cache-dir "$WORK/tiers" \
  --prefill-tokens-per-s 20000 >"$OUT/tiers.txt" 2>&1 || true
cat "$OUT/tiers.txt"
row() { jq -r --arg p "$1" --arg d "$2" --arg v "$3" \
  '[.rows[] | select(.path == $p and .direction == $d and ($v == "" or .variant == $v))][0].'"$4" \
  "$OUT/tiers.json"; }

# 1. pinned host<->device against a plain cudaMemcpy loop
cc -O2 -o "$WORK/memcpy_ref" "$SRC/tests/gpu/memcpy_ref.c" -I"$CUDA_HOME/include" \
  -L"$CUDA_HOME/lib64" -lcudart || { echo "gpu-check: cannot build the cudaMemcpy reference"; exit 1; }
"$WORK/memcpy_ref" "$BLOCK" "$BLOCKS" | tee "$OUT/memcpy_ref.json"
for dir in read:h2d write:d2h; do
  k=${dir%%:*} r=${dir##*:}
  got=$(row g1_g2 "$k" pinned gb_per_s)
  ref=$(jq -r ".${r}_loop_gb_s" "$OUT/memcpy_ref.json")
  big=$(jq -r ".${r}_big_gb_s" "$OUT/memcpy_ref.json")
  awk -v g="$got" -v r="$ref" 'BEGIN { exit !(g > 0 && g >= 0.85 * r && g <= 1.15 * r) }'
  check "g1_g2 $k" $? "kvbench $got GB/s, cudaMemcpy loop $ref GB/s (one ${BLOCKS}-block copy: $big GB/s)"
done

# 2. host<->disk against dd with O_DIRECT at the same block size. A shared virtual disk's rate
# drifts from one second to the next, so dd and the probe's disk passes (--no-gpu) alternate for
# ROUNDS rounds in the same directory and their medians are compared; every round is kept.
ROUNDS=${ROUNDS:-3}
mkdir -p "$WORK/dd"
dd if=/dev/urandom of="$WORK/src.bin" bs="$BLOCK" count=16 status=none
for _ in $(seq $((BLOCKS / 16))); do cat "$WORK/src.bin"; done >"$WORK/dd/pattern.bin"
ddrate() { # GB/s from dd's last line
  LC_ALL=C dd "$@" 2>&1 | awk '/bytes/ { for (i = 1; i <= NF; i++) if ($i == "s,") s = $(i-1); print $1 / s / 1e9 }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: >"$OUT/disk_rounds.txt"; : >"$OUT/disk.jsonl"
for r in $(seq "$ROUNDS"); do
  wr=$(ddrate if="$WORK/dd/pattern.bin" of="$WORK/dd/out.bin" bs="$BLOCK" count="$BLOCKS" oflag=direct conv=fsync)
  rd=$(ddrate if="$WORK/dd/out.bin" of=/dev/null bs="$BLOCK" count="$BLOCKS" iflag=direct)
  rm -f "$WORK/dd/out.bin"
  "$KVBENCH" tiers --no-gpu --json --block-bytes "$BLOCK" --blocks "$BLOCKS" \
    --disk-cache-dir "$WORK/tiers" >"$OUT/tiers_disk_$r.json" 2>/dev/null
  kw=$(jq -r '[.rows[] | select(.path == "g2_g3" and .direction == "write")][0].gb_per_s' "$OUT/tiers_disk_$r.json")
  kr=$(jq -r '[.rows[] | select(.path == "g2_g3" and .direction == "read")][0].gb_per_s' "$OUT/tiers_disk_$r.json")
  echo "round $r: dd write $wr read $rd GB/s; kvbench write $kw read $kr GB/s" | tee -a "$OUT/disk_rounds.txt"
done
for k in write read; do
  col=$([[ $k == write ]] && echo 5 || echo 7)
  kcol=$([[ $k == write ]] && echo 11 || echo 13)
  ref=$(awk -v c="$col" '{ print $c }' "$OUT/disk_rounds.txt" | median)
  got=$(awk -v c="$kcol" '{ print $c }' "$OUT/disk_rounds.txt" | median)
  echo "{\"dd_${k}_gb_s\": $ref, \"kvbench_${k}_gb_s\": $got}" >>"$OUT/disk.jsonl"
  awk -v g="$got" -v r="$ref" 'BEGIN { exit !(g >= 0.85 * r) }'
  check "g2_g3 $k" $? "median of $ROUNDS alternating rounds: kvbench $got GB/s, dd $ref GB/s ($(awk -v g="$got" -v r="$ref" 'BEGIN { printf "%.2f", g / r }')x)"
done

# 3. cuFile: the mode it runs in is named, and data moved through it both ways
for k in write read; do
  st=$(row g1_g3 "$k" "" status)
  mode=$(row g1_g3 "$k" "" variant)
  [[ $mode == gds || $mode == compat ]]
  check "g1_g3 $k mode" $? "mode $mode"
  [[ $st == ok ]]
  check "g1_g3 $k moved" $? "status $st, $(row g1_g3 "$k" "" gb_per_s) GB/s; $(row g1_g3 "$k" "" reason)"
done
if [[ $(row g1_g3 read "" status) != ok ]]; then # what cuFile wrote of why
  ls -ld /run/udev/data 2>&1 | tee "$OUT/udev.txt"
  find "$SRC" "$WORK" -maxdepth 2 -name cufile.log -exec tail -n 40 {} + 2>/dev/null | tee "$OUT/cufile_log_tail.txt"
fi

# 4. the demo with G1 in GPU memory
"$KVBENCH" demo --g1 cuda --repeats 1 --results-root "$WORK/demo" --demo-id gpu \
  >"$OUT/demo.txt" 2>&1
check "demo --g1 cuda" $? "exit status (log in demo.txt)"
S="$WORK/demo/gpu_eviction_replay/summary.json"
cp "$S" "$OUT/eviction_summary.json" 2>/dev/null || true
cp "$WORK/demo/gpu_eviction_replay/report.md" "$OUT/eviction_report.md" 2>/dev/null || true
[[ $(jq -r .run_valid "$S") == true ]]
check "eviction_replay valid" $? "run_valid $(jq -r .run_valid "$S")"
h2d=$(jq '[.phase_summaries[] | select(.phase == "replay_A") | .kvbm_metrics_delta.gpu_copies.h2d_bytes][0] // 0' "$S")
awk -v v="$h2d" 'BEGIN { exit !(v > 0) }'
check "real onboard copies" $? "replay_A copied $h2d bytes host->device ($(jq -c '[.phase_summaries[] | select(.phase == "replay_A") | .kvbm_metrics_delta.gpu_copies][0]' "$S"))"
sig=$(jq -r .overall_summary.eviction_replay_signal_kvbm.signal "$S")
[[ $sig == disk_rehydrate_detected ]]
check "disk rehydrate" $? "eviction_replay_signal_kvbm: $sig"
last="$WORK/demo/gpu_eviction_replay/kvbm_metrics_snapshots.jsonl"
cf=$(tail -1 "$last" | jq '.metrics.kvbench_checksum_failures // .metrics.kvbench_checksum_failures_total // "absent"')
awk -v v="$cf" 'BEGIN { exit !(v == "0" || v == "0.0") }'
check "blocks verified" $? "kvbench_checksum_failures at the end of the run: $cf"
be=$(tail -1 "$last" | jq -c '.metrics | with_entries(select(.key | startswith("kvbench_g1")))')
echo "engine G1 counters at the end: $be" | tee "$OUT/g1_counters.txt"
echo "gpu-check: $fails failed; figures in $OUT"
exit $((fails > 0))
