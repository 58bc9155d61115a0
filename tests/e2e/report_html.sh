#!/usr/bin/env bash
# report.html in a real browser: an eviction_replay run with telemetry, a multi_turn run, a trace
# run and a compare --repeats 2 against `kvbench serve`; each page is opened headless: no console
# message, every chart an SVG with data marks, a screenshot in the scratch directory, nothing
# fetched from anywhere. Also `kvbench report --html` draws the same page again, and its errors.
source "$(dirname "$0")/lib.sh"


CHROME=$(command -v chromium-headless-shell || command -v chromium || true)
[[ -n $CHROME ]] || skip "no chromium-headless-shell or chromium (scripts/install-deps.sh installs it)"

# Each response waits 200 ms before its first token, so that the eviction run lasts long enough
# for several telemetry samples (0.2 s apart) on any machine.
start_engine --profile tiny --kv-mode cpu_disk --gpu-cache-blocks 64 --cpu-cache-blocks 128 \
  --disk-cache-blocks 4096 --disable-disk-offload-filter --disk-cache-dir "$TMP/kv" --stall-ms 200 \
  --log-level WARNING
COMMON=(--base-url "$BASE" --kvbm-metrics-url "$METRICS" --warmup 0 --stream
  --results-root "$TMP/results" --no-progress --log-level WARNING)
R=("${COMMON[@]}" --max-tokens 8)
RES=$TMP/results
expect_exit 0 "$KVBENCH" run "${R[@]}" --scenario eviction_replay --eviction-a-requests 2 \
  --eviction-b-requests 8 --long-range 1024:1024 --collect-telemetry --telemetry-interval-s 0.2 \
  --kvbm-cache-dir "$TMP/kv" --run-id evict
expect_exit 0 "$KVBENCH" run "${COMMON[@]}" --answer-tokens 8 --scenario multi_turn --users 3 --rounds 3 \
  --system-prompt-tokens 64 --history-tokens 512 --run-id mt
printf '%s\n' '{"timestamp": 0, "input_length": 512, "output_length": 4, "hash_ids": [1, 2]}' \
  '{"timestamp": 50, "input_length": 512, "output_length": 4, "hash_ids": [1, 3]}' \
  '{"timestamp": 120, "input_length": 300, "output_length": 4, "hash_ids": [1, 2]}' >"$TMP/t.jsonl"
expect_exit 0 "$KVBENCH" run "${COMMON[@]}" --trace-block-tokens 256 --scenario trace --trace "$TMP/t.jsonl" \
  --trace-window-s 0.1 --run-id tr
expect_exit 0 "$KVBENCH" compare "${R[@]}" --scenario eviction_replay --eviction-a-requests 2 \
  --eviction-b-requests 4 --long-range 1024:1024 --repeats 2 --ready-interval-s 0.1 \
  --compare-id cmp
stop_engine
grep -qF "| replay_A (answers) | TTFT p50 | cpu_disk | 2 |" <<<"$OUT" ||
  fail "compare printed no phase table: $OUT"
# two runs a side are too few for a verdict: said so, with the point estimate
grep -q '^verdict: Cannot tell: insufficient repeats: 2, need >= 3' <<<"$OUT" || fail "verdict line: $OUT"
jq -e '.repeats.runs_per_mode == 2 and (.modes | map(.runs | length) == [2, 2])
  and .repeats.ratios.req_per_s.cpu_disk.verdict == "insufficient repeats: 2, need >= 3"
  and .decision.verdict == "cannot_tell"' "$RES/cmp/comparison.json" >/dev/null ||
  fail "comparison.json: $(jq -c '[.repeats.ratios, .decision]' "$RES/cmp/comparison.json")"

# open PAGE EXPECTED_CHART_IDS... — no console messages, the charts with data, a screenshot
mkdir -p "$TMP/shots"
open_page() {
  local page=$1 name
  shift
  name=$(basename "$(dirname "$page")")
  [[ -s $page ]] || fail "$page missing"
  # self-contained: nothing to fetch (no src/href to another place, no link, import or url())
  if grep -qiE '(src|href)="(https?:)?//|<link |<script src|@import|url\(' "$page"; then
    fail "$name: the page refers to something outside it"
  fi
  timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 \
    --dump-dom "file://$page" >"$TMP/$name.dom" 2>"$TMP/$name.log" || fail "$name: browser failed"
  if grep -q 'CONSOLE' "$TMP/$name.log"; then
    fail "$name: console messages: $(grep CONSOLE "$TMP/$name.log")"
  fi
  node - "$TMP/$name.dom" "$@" <<'JS' || fail "$name: charts"
const fs = require('fs');
const [dom, ...want] = process.argv.slice(2);
const html = fs.readFileSync(dom, 'utf8');
const figs = [...html.matchAll(/<figure class="chart" id="([^"]+)">([\s\S]*?)<\/figure>/g)];
if (!figs.length) { console.error('no charts'); process.exit(1); }
for (const [, id, body] of figs) {
  const svg = body.match(/<svg[\s\S]*<\/svg>/);
  const marks = (body.match(/class="mark/g) || []).length;
  if (!svg || !marks) { console.error(`${id}: no svg or no data marks`); process.exit(1); }
  if (!/<g class="legend"[^>]*>[\s\S]*<text/.test(body)) { console.error(`${id}: no legend`); process.exit(1); }
  if (!/<g class="axis y"[^>]*>[\s\S]*<text/.test(body)) { console.error(`${id}: no y axis`); process.exit(1); }
}
const ids = figs.map(f => f[1]);
for (const w of want) if (!ids.includes(w)) { console.error(`missing ${w} in ${ids}`); process.exit(1); }
if (!/id="verdict"/.test(html)) { console.error('no verdict banner'); process.exit(1); }
JS
  timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1200,4000 --screenshot="$TMP/shots/$name.png" "file://$page" >/dev/null 2>&1 ||
    fail "$name: no screenshot"
  [[ $(stat -c %s "$TMP/shots/$name.png") -gt 20000 ]] || fail "$name: empty screenshot"
}
open_page "$RES/evict/report.html" chart-requests chart-latency-cdf chart-ttft-cdf chart-disk \
  chart-cache-dir chart-kv-blocks chart-reused-tokens
grep -qF 'disk_rehydrate_detected' "$TMP/evict.dom" || fail "evict: verdict not on the page"
open_page "$RES/mt/report.html" chart-requests chart-rounds-hit chart-rounds-ttft
open_page "$RES/tr/report.html" chart-requests chart-trace-windows
open_page "$RES/cmp/report.html" chart-mode-ttft_p50_ms chart-mode-req_per_s chart-mode-readback
grep -qF '95 % CI' "$TMP/cmp.dom" || fail "compare: no intervals on the page"
# the modes are the legend (never "value"), the phases the groups, the verdict in the banner
grep -q '<g class="legend"[^>]*>.*>cpu_only</text>.*>cpu_disk</text>' "$TMP/cmp.dom" ||
  fail "compare: the modes are not the legend"
grep -qF '>value</text>' "$TMP/cmp.dom" && fail "compare: a legend reads value"
grep -qF '>replay_A</text>' "$TMP/cmp.dom" || fail "compare: no phase groups"
grep -qF 'Cannot tell: insufficient repeats' "$TMP/cmp.dom" || fail "compare: no verdict banner"
grep -qF 'href="../cmp_cpu_only_r1/report.html"' "$TMP/cmp.dom" || fail "compare: not every run listed"
grep -qF 'href="../cmp_cpu_disk_r2/report.html"' "$TMP/cmp.dom" || fail "compare: no link to runs"
# the facts of report.md are on the page: its phase table
grep -qF '<th>phase</th>' "$TMP/evict.dom" || fail "evict: no phase table"

# kvbench report --html draws the same page again
cp "$RES/evict/report.html" "$TMP/before.html"
rm "$RES/evict/report.html"
expect_exit 0 "$KVBENCH" report "$RES/evict" --html
[[ $OUT == "$RES/evict/report.html" ]] || fail "report --html printed: $OUT"
cmp -s "$TMP/before.html" "$RES/evict/report.html" || fail "report --html drew another page"
expect_exit 0 "$KVBENCH" report "$RES/cmp" --html
expect_exit 0 "$KVBENCH" report "$RES/cmp"
grep -qF '## The whole runs: 2 runs per mode, interleaved' <<<"$OUT" || fail "report of a comparison"
expect_exit 2 "$KVBENCH" report "$RES/evict" --html --csv
one_line "$ERR"
expect_exit 2 "$KVBENCH" report "$RES/cmp" --csv
one_line "$ERR"
expect_exit 1 "$KVBENCH" report "$TMP/nowhere" --html
one_line "$ERR"
mkdir "$TMP/empty"
expect_exit 1 "$KVBENCH" report "$TMP/empty" --html
one_line "$ERR"
echo "report_html: ok ($(ls "$TMP/shots" | wc -l) screenshots)"
