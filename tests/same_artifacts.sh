#!/usr/bin/env bash
# same_artifacts.sh OLD_KVBENCH NEW_KVBENCH — a refactor's proof that behaviour did not change.
#
# Runs the same suite with each binary (its own `kvbench serve` and its own `kvbench run`, tiny
# profile, one request in flight where order matters) into the same paths, then compares every
# artifact after normalising what legitimately differs between two runs of one binary: wall-clock
# timestamps, measured timings and rates, ports, PIDs, byte counts read from /proc, and the
# engine's modelled clock. Everything else — keys, their order, counts, tokens, hashes, verdicts,
# validity, the reports' text with numbers masked — must be byte-identical.
#
# Calibrate first: `same_artifacts.sh OLD OLD` must print "identical"; a difference there is a
# field the normaliser does not yet know to be timing. Exit 0 identical, 1 different (the diff is
# printed), 2 usage.
set -euo pipefail
[[ $# -eq 2 && -x $1 && -x $2 ]] || { echo "usage: same_artifacts.sh OLD_KVBENCH NEW_KVBENCH" >&2; exit 2; }
OLD=$(realpath "$1")
NEW=$(realpath "$2")
export KVBENCH=$OLD
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/e2e/lib.sh"

ENGINE=(--profile tiny --gpu-cache-blocks 64 --cpu-cache-blocks 512 --disk-cache-blocks 4096
  --disable-disk-offload-filter --speedup 50 --log-level WARNING --disk-cache-dir "$TMP/kv")
COMMON=(--results-root "$TMP/results" --no-progress --log-level WARNING)

cat >"$TMP/trace.jsonl" <<'JSONL'
{"timestamp": 0, "input_length": 192, "output_length": 8, "hash_ids": [1, 2, 3]}
{"timestamp": 100, "input_length": 160, "output_length": 8, "hash_ids": [1, 2, 4]}
{"timestamp": 200, "input_length": 256, "output_length": 8, "hash_ids": [1, 2, 3, 5]}
{"timestamp": 300, "input_length": 100, "output_length": 8, "hash_ids": [6, 7]}
JSONL

suite() { # BIN LABEL
  KVBENCH=$1
  rm -rf "$TMP/results" "$TMP/kv"
  start_engine "${ENGINE[@]}" --kv-mode cpu_disk
  local k=(--base-url "$BASE" --kvbm-metrics-url "$METRICS" --kvbm-cache-dir "$TMP/kv" --kv-mode cpu_disk)
  "$KVBENCH" run "${k[@]}" "${COMMON[@]}" --scenario standard --warmup 2 --requests 12 \
    --concurrency 1 --max-tokens 24 --temperature 0 --stream --run-id standard >/dev/null 2>&1 || true
  "$KVBENCH" run "${k[@]}" "${COMMON[@]}" --scenario reuse_verify --reuse-prompt-set short \
    --reuse-repeat-count 3 --max-tokens 16 --temperature 0 --request-seed 1337 --run-id reuse >/dev/null 2>&1 || true
  "$KVBENCH" run "${k[@]}" "${COMMON[@]}" --scenario eviction_replay --warmup 1 \
    --eviction-a-requests 3 --eviction-b-requests 6 --eviction-a-concurrency 1 \
    --eviction-b-concurrency 1 --long-range 1500:1800 --max-tokens 16 --temperature 0 --stream \
    --run-id eviction >/dev/null 2>&1 || true
  "$KVBENCH" run "${k[@]}" "${COMMON[@]}" --scenario multi_turn --users 2 --rounds 3 \
    --system-prompt-tokens 32 --history-tokens 600 --answer-tokens 16 --user-qps 0 --warmup 0 \
    --max-concurrency 1 --stream --run-id multi >/dev/null 2>&1 || true
  "$KVBENCH" run "${k[@]}" "${COMMON[@]}" --scenario trace --trace "$TMP/trace.jsonl" \
    --trace-block-tokens 64 --trace-speedup 0 --warmup 0 --concurrency 1 --stream --run-id trace >/dev/null 2>&1 || true
  # a comparison (no restart: the same engine under both labels), too few repeats to decide;
  # not streamed: whether a 16-token stream has inter-token gaps at all is timing
  "$KVBENCH" compare --base-url "$BASE" --kvbm-metrics-url "$METRICS" --kvbm-cache-dir "$TMP/kv" \
    --results-root "$TMP/results" --no-progress --log-level WARNING --modes cpu_only,cpu_disk --repeats 1 --skip-ready --requests 4 --warmup 0 \
    --concurrency 1 --max-tokens 16 --temperature 0 --compare-id cmp >/dev/null 2>&1 || true
  # an invalid run: the wrong engine named
  "$KVBENCH" run --base-url "$BASE" "${COMMON[@]}" --engine vllm --kv-mode off --requests 2 \
    --warmup 0 --run-id invalid >/dev/null 2>&1 || true
  stop_engine
  # pages and tables made from the runs
  "$KVBENCH" report "$TMP/results/standard" >"$TMP/results/report-again.md" 2>&1 || true
  "$KVBENCH" report "$TMP/results/cmp" >"$TMP/results/comparison-again.md" 2>&1 || true
  "$KVBENCH" report "$TMP/results/multi" --csv --out "$TMP/results/csv" >/dev/null 2>&1 || true
  "$KVBENCH" summary "$TMP/results" >"$TMP/results/summary-table.txt" 2>&1 || true
  "$KVBENCH" summary --json "$TMP/results" >"$TMP/results/summary-table.json" 2>&1 || true
  "$KVBENCH" --help >"$TMP/results/help.txt" 2>&1 || true
  for c in run serve compare matrix demo smoke ready health summary report tokenize; do
    "$KVBENCH" "$c" --help >"$TMP/results/help-$c.txt" 2>&1 || true
  done
  mv "$TMP/results" "$TMP/$2"
}

# Numbers whose value is a measurement of time or of the machine, by key name. The engine writes
# blocks to disk on its own thread, so how many had reached disk when a snapshot was taken is
# timing too (offload, queue, tier_blocks). The build's git_sha differs by design.
TIMING='(^|_)(ts|t|time|utc|at|iso|start|end|started|ended|finished|elapsed|duration|wall|ms|us|ns|s|sec|seconds|ttft|itl|tpot|e2e|latency|rps|qps|tps|throughput|per_s|per_sec|pid|port|bytes_read|bytes_written|read_bytes|write_bytes|cpu|rss|mib|gib|kib|util|utilization|jitter|lag|goodput|attainment|ratio|speedup|tokens_per_s|ci|lo|hi|p50|p90|p95|p99|p999|mean|min|max|stdev|sd|cv|ios|sectors|ticks|merges|in_flight|offload|queue|tier_blocks|git_sha)($|_|\{)'
norm_json() { # FILE — one JSON document or JSON lines
  # (a measured figure inside a sentence is a decimal: masked; hashes and counts stay)
  jq -S --arg re "$TIMING" '
    def mask: if type == "number" or type == "null" then "N" elif type == "string" then
      (gsub("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z?"; "TS") | gsub("127\\.0\\.0\\.1:[0-9]+"; "HOST")
       | gsub("[0-9]+\\.[0-9]+"; "N"))
      else . end;
    walk(if type == "object" then with_entries(
        if (.key | test($re; "i")) then .value |= (if type == "object" or type == "array" then walk(mask)
          elif type == "string" then "S" else mask end)
        else .value |= (if type == "string" then mask else . end) end) else . end)' "$1" 2>/dev/null ||
    sed -E 's/[0-9]+(\.[0-9]+)?/N/g' "$1"
}
norm_text() { # FILE — prose and tables: numbers masked, addresses and paths kept; a chart's
  # axis ticks follow the measured range, so an axis is one word; a table's column widths follow
  # its numbers' widths, so runs of spaces (and of dashes) are one
  sed -E -e 's/^<g class="axis [xy]".*/AXIS/' -e 's/\(([0-9a-f]{12})(-dirty)?\)/(SHA)/g' -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z?/TS/g' -e 's/127\.0\.0\.1:[0-9]+/HOST/g' \
    -e 's/[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/N/g' -e 's/ +/ /g' -e 's/-{3,}/---/g' "$1"
}
normalise() { # DIR OUT
  (cd "$1" && find . -type f | LC_ALL=C sort) | while read -r f; do
    local o="$2/$f"
    mkdir -p "$(dirname "$o")"
    case $f in
      *.json | *.jsonl) norm_json "$1/$f" >"$o" ;;
      *.png | *.gz) echo "binary $(stat -c %s "$1/$f" | sed -E 's/[0-9]+/N/')" >"$o" ;;
      *) norm_text "$1/$f" >"$o" ;;
    esac
  done
}

suite "$OLD" old
suite "$NEW" new
normalise "$TMP/old" "$TMP/norm-old"
normalise "$TMP/new" "$TMP/norm-new"
if diff -r -u "$TMP/norm-old" "$TMP/norm-new" >"$TMP/diff"; then
  echo "identical: $(find "$TMP/norm-old" -type f | wc -l) artifacts"
  exit 0
fi
echo "different artifacts:" >&2
head -n "${SAME_DIFF_LINES:-200}" "$TMP/diff" >&2
exit 1
