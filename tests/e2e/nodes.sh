#!/usr/bin/env bash
# Other nodes' metrics (issue 30) with the real exporters: Debian's prometheus-node-exporter
# reads the disk under the engine's disk tier and Debian's prometheus scrapes it (and the engine's
# KV metrics port) every 50 ms, both on loopback ports with a configuration and storage of their
# own under $TMP. One eviction_replay run against `kvbench serve` (cpu_disk, hundreds of MiB
# written and read on its disk tier) reads the node both ways, --scrape and --prometheus-url:
# per phase, the node's disk bytes read and written agree within 10 % with the engine's own disk
# byte counters (kvbm_metrics_delta), the I/O verdict names the node, report.md and telemetry/
# carry them. Then the flags' one-line errors, and nodes and a server that cannot be read: the run
# stays valid and each says why (available: false, the reason, the query).
# The disk counters are the machine's: the test runs alone (RUN_SERIAL in tests/CMakeLists.txt).
source "$(dirname "$0")/lib.sh"

NODE_EXPORTER=$(command -v prometheus-node-exporter || true)
PROMETHEUS=$(command -v prometheus || true)
[[ -n $NODE_EXPORTER && -n $PROMETHEUS ]] ||
  skip "prometheus and prometheus-node-exporter are not installed (scripts/install-deps.sh installs them)"

# --- the flags: one line, exit 2, nothing run -------------------------------------------------
B=(--base-url http://127.0.0.1:9 --results-root "$TMP/never" --no-progress)
while IFS='|' read -r args want; do
  read -ra a <<<"$args"
  expect_exit 2 "$KVBENCH" run "${B[@]}" "${a[@]}"
  one_line "$ERR"
  [[ $ERR == "kvbench run: $want" ]] || fail "$args: got '$ERR', want '$want'"
done <<'EOF'
--scrape node|--scrape: expected NAME=URL, got 'node'
--scrape =http://x/metrics|--scrape: the node's name before '=' is empty in '=http://x/metrics'
--scrape a/b=http://x/metrics|--scrape: the node's name may hold letters, digits, '_', '.' and '-' only (it names a file), got 'a/b'
--scrape n=ftp://x/metrics|--scrape n: expected an http:// or https:// URL, got 'ftp://x/metrics'
--scrape n=http://a/metrics --scrape n=http://b/metrics|--scrape: the node name 'n' is given twice
--prometheus-url prom:9090|--prometheus-url: expected an http:// or https:// URL, got 'prom:9090'
--prometheus-match {job="node"}|--prometheus-match and --prometheus-timeout-s apply to --prometheus-url
--prometheus-url http://p:9090 --prometheus-match job="node"|--prometheus-match: expected a label selector in braces, e.g. '{job=~"node|dcgm"}', got 'job="node"'
--prometheus-url http://p:9090 --prometheus-timeout-s 0|--prometheus-timeout-s: expected a duration from 0.1 to 3600 seconds (e.g. 30, 500ms, 2m), got '0'
EOF
[[ ! -e $TMP/never ]] || fail "a refused run wrote something"

# --- where the disk tier lives ------------------------------------------------------------------
CACHE="$TMP/kvbm"
if [[ $(findmnt -n -o FSTYPE -T "$TMP") == tmpfs ]]; then
  # a disk tier in memory moves no disk: the build tree is on a disk
  CACHE="$SRC/build-e2e-kvbm-nodes-$$"
  # cleanup exits with the status it finds in $?: hand it the test's, not rm's
  trap 'rc=$?; rm -rf "$CACHE"; (exit $rc); cleanup' EXIT
fi
mkdir -p "$CACHE"

# phys DEV — the whole disks under a block device: a partition's disk, the disks a device-mapper
# or md device sits on
phys() {
  local d=$1 s
  [[ -e /sys/class/block/$d/partition ]] && d=$(basename "$(dirname "$(readlink -f "/sys/class/block/$d")")")
  local slaves=("/sys/class/block/$d/slaves/"*)
  if [[ -e ${slaves[0]} ]]; then
    for s in "${slaves[@]}"; do phys "$(basename "$s")"; done
  else
    echo "$d"
  fi
}
mm=$(findmnt -n -o MAJ:MIN -T "$CACHE" | tr -d ' ')
[[ -e /sys/dev/block/$mm ]] || skip "the disk tier's directory $CACHE is on no block device ($(findmnt -n -o FSTYPE -T "$CACHE"))"
DISKS=$(phys "$(basename "$(readlink -f "/sys/dev/block/$mm")")" | sort -u | paste -sd'|')
echo "the disk tier $CACHE is on: $DISKS"

# free_port — a TCP port nothing listens on, on 127.0.0.1
free_port() {
  perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'
}

# --- the engine, the exporter, the server -------------------------------------------------------
# llama-3.1-8b-fp8: 2 MiB per 32-token block; set A (6 x 2048 tokens, 768 MiB) leaves device and
# host memory for disk under set B (4 x 2048 tokens), and replay_A reads it back from disk
start_engine --profile llama-3.1-8b-fp8 --kv-mode cpu_disk --gpu-cache-blocks 128 \
  --cpu-cache-blocks 32 --disk-cache-blocks 4096 --disable-disk-offload-filter --speedup 0 \
  --disk-cache-dir "$CACHE" --log-level WARNING
NE_PORT=$(free_port)
"$NODE_EXPORTER" --web.listen-address="127.0.0.1:$NE_PORT" --collector.disable-defaults \
  --collector.diskstats --collector.meminfo --collector.netdev \
  --collector.diskstats.device-exclude= --collector.diskstats.device-include="^($DISKS)\$" \
  >"$TMP/node_exporter.log" 2>&1 &
PIDS+=($!)
NODE="http://127.0.0.1:$NE_PORT/metrics"
for _ in $(seq 100); do curl -sf "$NODE" >"$TMP/node.txt" && break; sleep 0.1; done
grep -q '^node_disk_read_bytes_total{device=' "$TMP/node.txt" ||
  { cat "$TMP/node_exporter.log" >&2; fail "node_exporter serves no disk counters"; }

PROM_PORT=$(free_port)
PROM="http://127.0.0.1:$PROM_PORT"
KV_TARGET=${METRICS#http://}
KV_TARGET=${KV_TARGET%/metrics}
cat >"$TMP/prometheus.yml" <<YML
global:
  scrape_interval: 50ms
  scrape_timeout: 45ms
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:$NE_PORT']
  - job_name: kvbm
    static_configs:
      - targets: ['$KV_TARGET']
YML
"$PROMETHEUS" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)
# both targets scraped and up (Prometheus takes its targets a few seconds after it starts)
up=0
for _ in $(seq 300); do
  up=$(curl -s "$PROM/api/v1/query" --data-urlencode 'query=sum(up)' 2>/dev/null |
    jq -r '.data.result[0].value[1] // 0' 2>/dev/null || echo 0)
  [[ $up == 2 ]] && break
  sleep 0.1
done
[[ $up == 2 ]] || { tail -5 "$TMP/prometheus.log" >&2; fail "prometheus does not scrape both targets (up: $up)"; }

# --- one run, the node read both ways -----------------------------------------------------------
RUN=(--base-url "$BASE" --kvbm-metrics-url "$METRICS" --kvbm-cache-dir "$CACHE"
  --results-root "$TMP/results" --scenario eviction_replay --max-tokens 4 --long-range 2048:2048
  --warmup 0 --eviction-a-requests 6 --eviction-b-requests 4 --tokenizer heuristic --no-progress
  --log-level WARNING --scrape "node=$NODE" --prometheus-url "$PROM" --prometheus-timeout-s 20
  --collect-telemetry --telemetry-interval-s 0.5)

# agree RUN_DIR — per phase, the engine's disk bytes against the node's (scrape and Prometheus):
# within 10 % where the engine moved 64 MiB or more (smaller figures are printed, not judged:
# the machine's other writes are a larger share of them)
agree() {
  jq -r '.phase_summaries[] | .phase as $p | .kvbm_metrics_delta as $k | .nodes as $n |
    (["read", $k.kvbm_disk_bytes_read_delta, $n.node.disk.read_bytes, $n["127.0.0.1"].disk.read_bytes],
     ["written", $k.kvbm_disk_bytes_written_delta, $n.node.disk.written_bytes,
      $n["127.0.0.1"].disk.written_bytes]) | [$p] + . | map(tostring) | @tsv' "$1/summary.json" |
    awk -F'\t' '
      BEGIN { bad = 0; printf "%-11s %-8s %12s %12s %7s %12s %7s\n", "phase", "bytes", "engine", "scrape", "diff", "prometheus", "diff" }
      {
        e = $3 + 0
        if ($4 == "null" || $5 == "null" || $3 == "null") { print "missing figure: " $0; bad = 1; next }
        ds = e > 0 ? ($4 - e) / e * 100 : 0; dp = e > 0 ? ($5 - e) / e * 100 : 0
        judged = e >= 64 * 1048576
        printf "%-11s %-8s %12.0f %12.0f %6.1f%% %12.0f %6.1f%%%s\n", $1, $2, e, $4, ds, $5, dp, judged ? "" : "  (small: not judged)"
        if (judged && (ds > 10 || ds < -10 || dp > 10 || dp < -10)) bad = 1
      }
      END { exit bad }'
}
ok=0
for attempt in 1 2; do
  # what other processes left dirty is written back now, not in the middle of a phase (the
  # kernel writes dirty pages back once they are 30 s old: none of the run's own age that long)
  sync
  expect_exit 0 "$KVBENCH" run "${RUN[@]}" --run-id "node$attempt"
  D="$TMP/results/node$attempt"
  # enough bytes for 10 % to mean something
  jq -e '[.phase_summaries[] | {(.phase): .kvbm_metrics_delta}] | add |
    .warm_A.kvbm_disk_bytes_written_delta >= 268435456 and
    .pressure_B.kvbm_disk_bytes_written_delta >= 268435456 and
    .replay_A.kvbm_disk_bytes_read_delta >= 268435456' "$D/summary.json" >/dev/null ||
    fail "the engine moved too few disk bytes: $(jq -c '[.phase_summaries[] | [.phase, .kvbm_metrics_delta.kvbm_disk_bytes_written_delta, .kvbm_metrics_delta.kvbm_disk_bytes_read_delta]]' "$D/summary.json")"
  if agree "$D"; then
    ok=1
    break
  fi
  # who else wrote while it ran (the run's own pidstat, every process, 0.5 s rows)
  others=$(awk -F, 'NR > 1 && $5 != "kvbench" && $3 != "between" { mb[$3] += $11 * 0.5 / 1024 }
    END { for (l in mb) printf "%s %.0f MiB; ", l, mb[l] }' "$D/telemetry/pidstat.csv")
  echo "attempt $attempt: out of 10 %; other processes wrote: ${others:-nothing seen}; once more"
done
[[ $ok == 1 ]] || fail "the node's disk bytes disagree with the engine's by more than 10 %"
S="$D/summary.json"
# the wait is on the families' own series, scraped every 50 ms: never behind
jq -e '.warnings | map(.code) | index("prometheus_behind") == null' "$S" >/dev/null ||
  fail "warnings: $(jq -c .warnings "$S")"

# the per-node objects, the cluster (one node read two ways is one disk: the scraped one is summed,
# the Prometheus one named in not_summed), the verdict naming the node
jq -e '.phase_summaries[] | select(.phase == "replay_A") |
  .nodes.node.source == "scrape" and .nodes.node.available and
  .nodes.node.url == "'"$NODE"'" and .nodes.node.disk.devices == ("'"$DISKS"'" | split("|")) and
  .nodes["127.0.0.1"].source == "prometheus" and .nodes["127.0.0.1"].available and
  .nodes["127.0.0.1"].instances == ["127.0.0.1:'"$NE_PORT"'", "'"$KV_TARGET"'"] and
  (.nodes["127.0.0.1"].kv.kvbm_disk_bytes_read_delta > 0) and
  (.nodes["127.0.0.1"].missing | map(.family) | index("DCGM_FI_DEV_GPU_UTIL")) != null and
  (.nodes["127.0.0.1"].missing[] | select(.family == "DCGM_FI_DEV_GPU_UTIL") | .query) ==
    "DCGM_FI_DEV_GPU_UTIL" and
  .nodes.node.gpu == null and .nodes.node.kv == null and
  .cluster.source == "scrape" and .cluster.nodes == 1 and .cluster.nodes_available == 1 and
  .cluster.not_summed == ["127.0.0.1"] and
  (.cluster.disk.read_bytes - .nodes.node.disk.read_bytes | fabs) < 1' \
  "$S" >/dev/null || fail "replay_A's nodes: $(jq -c '.phase_summaries[-1] | {nodes, cluster}' "$S" | head -c 3000)"
jq -e '.overall_summary.eviction_replay_signal_io as $v |
  $v.signal == "possible_readback" and ($v.node == "node" or $v.node == "127.0.0.1") and
  $v.source == (if $v.node == "node" then "scrape" else "prometheus" end) and
  ($v.per_node | keys) == ["127.0.0.1", "node"] and
  ($v.interpretation | startswith("Node " + $v.node + " (" + $v.source + "): Replay read "))' \
  "$S" >/dev/null || fail "I/O verdict: $(jq -c .overall_summary.eviction_replay_signal_io "$S")"
grep -q '^## Other nodes per phase' "$D/report.md" || fail "report.md has no nodes section"
grep -q '^| replay_A | node | scrape | ' "$D/report.md" || fail "report.md: no replay_A row for node"
grep -q "^### Replay from disk (node .*'s disks, via " "$D/report.md" || fail "report.md: the verdict does not name the node"
# telemetry: the node's raw series through the run, the server's answers per phase
T="$D/telemetry"
first=${DISKS%%|*}
grep -q "^[0-9.]*,warm_A,\"node_disk_written_bytes_total{device=\"\"$first\"\"}\",[0-9]" "$T/nodes_node.csv" ||
  fail "nodes_node.csv: $(head -3 "$T/nodes_node.csv")"
head -1 "$T/nodes_node.csv" | grep -qx 't_s,label,series,value' || fail "nodes_node.csv header"
jq -e '.collectors[] | select(.name == "nodes") | .status == "started" and .samples > 0' \
  "$T/telemetry_report.json" >/dev/null || fail "nodes collector: $(jq -c '.collectors[-1]' "$T/telemetry_report.json")"
jq -e '(keys | sort) == ["pressure_B", "replay_A", "warm_A"] and all(.[]; .status == "success")' \
  "$T/prometheus_node_disk_read_bytes_total.json" >/dev/null || fail "prometheus raw answers"

# --- nodes and a server that cannot be read: the run is valid and says why --------------------
DEAD=$(free_port)
expect_exit 0 "$KVBENCH" run --base-url "$BASE" --kvbm-metrics-url "$METRICS" \
  --kvbm-cache-dir "$CACHE" --results-root "$TMP/results" --run-id down --requests 2 \
  --warmup 0 --short-range 64:64 --max-tokens 2 --tokenizer heuristic --no-progress \
  --log-level ERROR --scrape "dead=http://127.0.0.1:$DEAD/metrics" \
  --scrape "notexporter=$BASE/v1/models" --scrape "nopath=$BASE/nope" \
  --prometheus-url "http://127.0.0.1:$DEAD"
S="$TMP/results/down/summary.json"
N() { jq -r ".phase_summaries[] | select(.phase == \"main\") | .nodes$1" "$S"; }
[[ $(jq -r .run_valid "$S") == true ]] || fail "run invalid: $(jq -c .invalid_details "$S")"
[[ $(N .dead.available) == false ]] || fail "dead: $(N .dead)"
grep -qiE "connect|refused" <<<"$(N .dead.reason)" || fail "dead reason: $(N .dead.reason)"
[[ $(N .dead.disk) == null ]] || fail "an unreachable node has figures"
[[ $(N .notexporter.reason) == *"none of the known families"* ]] || fail "notexporter: $(N .notexporter)"
[[ $(N .nopath.reason) == "before the phase: HTTP 404 from $BASE/nope" ]] ||
  fail "nopath: $(N .nopath.reason)"
[[ $(N .prometheus.available) == false && $(N .prometheus.query) == "max(timestamp(node_disk_read_bytes_total))" ]] ||
  fail "prometheus: $(N .prometheus)"
[[ $(N .prometheus.reason) == *"127.0.0.1:$DEAD"* ]] || fail "prometheus reason: $(N .prometheus.reason)"
jq -e '.warnings | map(.code) | index("prometheus_unavailable") != null' "$S" >/dev/null ||
  fail "warnings: $(jq -c .warnings "$S")"
[[ $(jq -r '.phase_summaries[] | select(.phase == "main") | .cluster | "\(.nodes) \(.nodes_available) \(.disk.read_bytes) \(.not_summed)"' "$S") == '3 0 null ["prometheus"]' ]] ||
  fail "cluster: $(jq -c '.phase_summaries[-1].cluster' "$S")"
grep -q '^| main | dead | scrape | – | .* unavailable: ' "$TMP/results/down/report.md" ||
  fail "report.md: no unavailable row"
echo "nodes: ok"
