#!/usr/bin/env bash
# `kvbench run --collect-telemetry` against `kvbench serve` with a disk tier: the runbook's
# "Expected Evidence for KV Offload" from the run directory alone: disk writes under pressure and
# reads on replay in the iostat CSV, cache-directory churn during pressure_B, process and metrics
# time series, container logs (through a stand-in docker CLI), and collectors that cannot run
# recorded as skipped or failed while the run stays valid.
source "$(dirname "$0")/lib.sh"

CACHE="$TMP/kvbm"
if [[ $(findmnt -n -o FSTYPE -T "$TMP") == tmpfs ]]; then
  CACHE="$SRC/build-e2e-kvbm-tel-$$"
  trap 'rm -rf "$CACHE"; cleanup' EXIT
fi
RES="$TMP/results"
export KVBENCH_GPU_SOURCE=none # keep CI's answer stable even on a machine with a GPU

# a stand-in for the docker CLI: container "dyn" exists, others do not
mkdir -p "$TMP/bin"
cat >"$TMP/bin/docker" <<'SH'
#!/bin/sh
cmd=$1; shift
case "$cmd" in
  inspect) name=$(eval echo \${$#})
           [ "$name" = dyn ] || { echo "Error: No such object: $name" >&2; exit 1; }
           echo "dgx-spark-dynamo-bench:latest|sha256:0123456789abcdef" ;;
  logs)    [ "$1" = dyn ] || exit 1
           echo "worker: KVBM offload enabled"; echo "frontend: listening on 8000" >&2 ;;
  cp)      mkdir -p "$2" && echo "cufile: GDS disabled, compat mode" >"$2/cufile.log" ;;
  *)       exit 2 ;;
esac
SH
chmod +x "$TMP/bin/docker"

start_engine --profile tiny --kv-mode cpu_disk --gpu-cache-blocks 1024 --cpu-cache-blocks 2048 \
  --disk-cache-blocks 65536 --disable-disk-offload-filter --disk-cache-dir "$CACHE" --speedup 4

PATH="$TMP/bin:$PATH" expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" \
  --kvbm-cache-dir "$CACHE" --results-root "$RES" --kv-mode cpu_disk --scenario eviction_replay \
  --warmup 1 --eviction-a-requests 6 --eviction-b-requests 12 --eviction-a-concurrency 2 \
  --eviction-b-concurrency 4 --long-range 6000:7600 --max-tokens 32 --stream \
  --collect-telemetry --telemetry-interval-s 0.2 --telemetry-pid kvbench --container-name dyn \
  --run-id tel
D="$RES/tel"
T="$D/telemetry"
for f in pidstat.csv kvbm_metrics.csv cache_churn.json telemetry_report.json \
  kvbm_run_start_files.txt kvbm_before_pressure_B_files.txt kvbm_after_pressure_B_files.txt \
  kvbm_run_end_files.txt docker_dyn_logs.txt cufile_logs/cufile.log; do
  [[ -s "$T/$f" ]] || fail "telemetry/$f missing"
done
status() { jq -r --arg n "$1" '.collectors[] | select(.name == $n) | .status' "$T/telemetry_report.json"; }
[[ $(status processes) == started ]] || fail "processes collector"
[[ $(status kvbm_metrics) == started ]] || fail "metrics collector"
[[ $(status cache_dir) == started ]] || fail "cache collector"
[[ $(status container_logs) == started ]] || fail "container logs"
[[ $(status cufile_logs) == started ]] || fail "cufile logs"
[[ $(status gpu) == skipped ]] || fail "gpu should be skipped here"
jq -e '.collectors[] | select(.name == "gpu") | .reason | test("KVBENCH_GPU_SOURCE=none")' "$T/telemetry_report.json" >/dev/null || fail "gpu reason"
grep -q "KVBM offload enabled" "$T/docker_dyn_logs.txt" || fail "docker stdout"
# the runbook's section 10 file names, in the layouts of the tools they are named after
[[ -s "$T/pidstat.log" ]] || fail "telemetry/pidstat.log missing"
grep -q "^# Time .* PID .*%usr .*Command" "$T/pidstat.log" || fail "pidstat.log layout"
grep -q " kvbench$" "$T/pidstat.log" || fail "pidstat.log has no kvbench rows"
grep -q "^# no GPU telemetry" "$T/nvidia_smi_dmon.txt" || fail "nvidia_smi_dmon.txt should say why it is empty"
dev=$(jq -r .block_device.name "$D/summary.json")
if [[ -s "$T/iostat_$dev.csv" ]]; then
  grep -q "^Device  *r/s  *rkB/s" "$T/iostat_$dev.log" || fail "iostat_$dev.log layout"
  [[ $(grep -c "^$dev " "$T/iostat_$dev.log") -eq $(($(wc -l <"$T/iostat_$dev.csv") - 1)) ]] ||
    fail "iostat_$dev.log and the CSV disagree on the samples"
fi
grep -q "listening on 8000" "$T/docker_dyn_logs.txt" || fail "docker stderr"
S="$D/summary.json"
[[ $(jq -r .fingerprint.container_image "$S") == dgx-spark-dynamo-bench:latest ]] || fail "fingerprint image"
[[ $(jq -r .fingerprint.container_image_digest "$S") == sha256:0123456789abcdef ]] || fail "fingerprint digest"

# cache churn: files created during pressure_B
created=$(jq .pressure_B.files_created "$T/cache_churn.json")
(( created > 0 )) || fail "no files created during pressure_B: $(jq -c .pressure_B "$T/cache_churn.json")"
[[ $(jq '.phase_summaries[] | select(.phase=="pressure_B") | .telemetry.cache_churn.files_created' "$S") -eq $created ]] || fail "churn in summary"
# metrics time series: offloads rise during the run
last=$(tail -1 "$T/kvbm_metrics.csv" | cut -d, -f5)
awk "BEGIN { exit !($last > 0) }" || fail "kvbm_metrics.csv shows no offload"
# processes: the engine (a kvbench process) shows up with CPU time
grep -q ',kvbench,' "$T/pidstat.csv" || fail "no kvbench rows in pidstat.csv"

# disk: writes during pressure, reads during replay (when the cache sits on a real disk)
dev=$(jq -r .block_device.name "$S")
if [[ -s "$T/iostat_$dev.csv" ]] && grep -q 'disk O_DIRECT' "$ENGINE_LOG" &&
   [[ $(jq -r .block_device.resolved_by "$S") == mount ]]; then
  col() { head -1 "$T/iostat_$dev.csv" | tr ',' '\n' | grep -nx "$1" | cut -d: -f1; }
  W=$(col wMB_s); R=$(col rMB_s); L=$(col label)
  pw=$(awk -F, -v l="$L" -v c="$W" '$l == "pressure_B" && $c > m { m = $c } END { print m + 0 }' "$T/iostat_$dev.csv")
  # a phase change closes the sample that ends there, so a replay_A shorter than the interval
  # still has a row of its own holding its reads
  rr=$(awk -F, -v l="$L" -v c="$R" '$l == "replay_A" && $c > m { m = $c } END { print m + 0 }' "$T/iostat_$dev.csv")
  awk "BEGIN { exit !($pw > 0) }" || fail "no disk writes during pressure_B in iostat_$dev.csv"
  awk "BEGIN { exit !($rr > 0) }" || fail "no disk reads during replay_A in iostat_$dev.csv"
  mr=$(jq '.phase_summaries[] | select(.phase=="replay_A") | .telemetry.disk.mean_read_mb_s' "$S")
  awk "BEGIN { exit !($mr > 0) }" || fail "the summary says replay_A read nothing: $mr MB/s"
  [[ $(jq '.phase_summaries[] | select(.phase=="pressure_B") | .telemetry.disk.peak_write_mb_s > 0' "$S") == true ]] || fail "peak write MB/s"
  [[ $(status disk) == started ]] || fail "disk collector"
else
  echo "note: cache directory not on a block device with O_DIRECT; disk checks skipped"
fi
grep -q "Disk and cache directory per phase" "$D/report.md" || fail "report lacks the telemetry table"
[[ $(jq '.telemetry.report.sampler.cpu_pct_of_one_core' "$S") != null ]] || fail "sampler overhead not reported"

# collectors that cannot run are recorded; the run stays valid
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" \
  --kvbm-cache-dir "$TMP/no-such-dir" --results-root "$RES" --kv-mode cpu_disk --requests 3 \
  --warmup 0 --max-tokens 8 --collect-telemetry --telemetry-interval-s 0.2 \
  --iostat-device no-such-disk --container-name nosuch --run-id tel_fail
T="$RES/tel_fail/telemetry"
[[ $(status disk) == skipped ]] || fail "disk with a bad device: $(status disk)"
jq -e '.collectors[] | select(.name == "disk") | .reason | test("no-such-disk")' "$T/telemetry_report.json" >/dev/null || fail "disk reason"
[[ $(status cache_dir) == failed ]] || fail "missing cache dir: $(status cache_dir)"
grep -q '# error: cannot open' "$T/kvbm_run_start_files.txt" || fail "snapshot error not written"
[[ $(status container_logs) == skipped ]] || fail "docker absent or container missing"
PATH="$TMP/bin:$PATH" expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" \
  --kvbm-cache-dir "$CACHE" --results-root "$RES" --kv-mode cpu_disk --requests 2 --warmup 0 \
  --max-tokens 8 --collect-telemetry --container-name other --run-id tel_nocontainer
jq -e '.collectors[] | select(.name == "container_logs") | .reason | test("No such object")' \
  "$RES/tel_nocontainer/telemetry/telemetry_report.json" >/dev/null || fail "missing container reason"
grep -q "no container logs: .*No such object" "$RES/tel_nocontainer/telemetry/docker_other_logs.txt" || fail "docker_other_logs.txt should say why"
stop_engine
echo "telemetry: ok"
