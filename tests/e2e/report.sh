#!/usr/bin/env bash
# `kvbench report`: report.md printed again from the artifacts, and --csv read back with an
# RFC 4180 parser (Node) against requests.jsonl and summary.json: every row, every request's
# numbers and its error text (commas, quotes) exactly, the ITL figures, the phase percentiles; a
# torn last line left out and counted; missing inputs give a one-line error.
source "$(dirname "$0")/lib.sh"
command -v node >/dev/null || fail "node is needed (scripts/install-deps.sh installs it)"

# an engine that refuses max_tokens above 8: the errored rows carry JSON bodies (commas, quotes)
start_engine --profile tiny --kv-mode off --speedup 50 --max-tokens-limit 8 --log-level WARNING
COMMON=(--base-url "$BASE" --kv-mode off --allow-missing-kvbm-metrics --warmup 2 --stream
  --short-range 64:64 --results-root "$TMP/results" --no-progress --log-level WARNING)
expect_exit 0 "$KVBENCH" run "${COMMON[@]}" --requests 30 --concurrency 4 --max-tokens 8 --run-id ok
expect_exit 1 "$KVBENCH" run "${COMMON[@]}" --requests 3 --max-tokens 64 --run-id refused
R=$TMP/results

expect_exit 0 "$KVBENCH" report "$R/ok"
grep -q '^# kvbench run ok' <<<"$OUT" || fail "report: not the run's report.md"
[[ $OUT == "$(cat "$R/ok/report.md")" ]] || fail "report: differs from the run's report.md"

check() { # RUN_DIR CSV_DIR ROWS
  node - "$1" "$2" "$3" <<'JS'
const fs = require('fs');
const [dir, out, want] = process.argv.slice(2);
function parse(text) { // RFC 4180
  const rows = []; let row = [], f = '', q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) { if (c === '"') { if (text[i + 1] === '"') { f += '"'; i++; } else q = false; } else f += c; }
    else if (c === '"') q = true;
    else if (c === ',') { row.push(f); f = ''; }
    else if (c === '\n') { row.push(f); rows.push(row); row = []; f = ''; }
    else f += c;
  }
  if (q || f !== '' || row.length) throw new Error('unterminated last record');
  return rows;
}
const fail = (m) => { console.error('FAIL: ' + m); process.exit(1); };
const csv = parse(fs.readFileSync(out + '/requests.csv', 'utf8'));
const head = csv.shift();
const col = (n) => { const i = head.indexOf(n); if (i < 0) fail('no column ' + n); return i; };
const rows = fs.readFileSync(dir + '/requests.jsonl', 'utf8').split('\n').filter((l) => l)
  .map((l) => { try { return JSON.parse(l); } catch (e) { return null; } }).filter((r) => r);
if (csv.length !== rows.length || csv.length !== Number(want)) fail(`${csv.length} csv rows, ${rows.length} json rows, want ${want}`);
csv.forEach((c, k) => {
  if (c.length !== head.length) fail(`row ${k}: ${c.length} fields, header ${head.length}`);
  const j = rows[k];
  if (Number(c[col('request_index')]) !== j.request_index) fail('request_index ' + k);
  if (c[col('error')] !== (j.error === null ? '' : j.error)) fail(`error ${k}: ${c[col('error')]}`);
  for (const n of ['latency_ms', 'ttft_ms'])
    if (j[n] != null && Math.abs(Number(c[col(n)]) - j[n]) > 1e-6) fail(`${n} ${k}`);
  const itl = j.itl_ms || [];
  if (Number(c[col('itl_count')]) !== itl.length) fail('itl_count ' + k);
  if (itl.length && Math.abs(Number(c[col('itl_max_ms')]) - Math.max(...itl)) > 1e-6) fail('itl_max ' + k);
});
const s = JSON.parse(fs.readFileSync(dir + '/summary.json', 'utf8'));
const ph = parse(fs.readFileSync(out + '/phases.csv', 'utf8'));
const ph_head = ph.shift();
for (const p of s.phase_summaries) {
  const r = ph.find((x) => x[ph_head.indexOf('phase')] === p.phase);
  if (!r) fail('no phase row ' + p.phase);
  const v = r[ph_head.indexOf('ttft_ms_p50')];
  if ((p.ttft_ms.p50 === undefined ? '' : String(p.ttft_ms.p50)) !== v) fail(`ttft p50 ${p.phase}: ${v}`);
}
console.log(`csv: ${csv.length} requests, ${ph.length} phase rows checked`);
JS
}
expect_exit 0 "$KVBENCH" report "$R/ok" --csv
check "$R/ok" "$R/ok" 32
# errors with commas and quotes, written to another directory
mkdir "$TMP/csv"
expect_exit 0 "$KVBENCH" report "$R/refused" --csv --out "$TMP/csv"
grep -q '"' "$TMP/csv/requests.csv" || fail "refused: no quoted field"
check "$R/refused" "$TMP/csv" 5
# a torn last line (kill -9 mid-write) is left out and counted, never a crash
printf '{"request_index": 99, "lat' >>"$R/ok/requests.jsonl"
expect_exit 0 "$KVBENCH" report "$R/ok" --csv --out "$TMP/csv"
grep -q "1 lines of requests.jsonl were not whole rows" <<<"$ERR" || fail "torn line not reported: $ERR"
[[ $(($(wc -l <"$TMP/csv/requests.csv") - 1)) -eq 32 ]] || fail "torn line: wrong row count"
# bad input: one line, non-zero
expect_exit 1 "$KVBENCH" report "$TMP/nothing-here"
one_line "$ERR"
mkdir "$TMP/empty"
expect_exit 1 "$KVBENCH" report "$TMP/empty" --csv
one_line "$ERR"
[[ ! -e $TMP/empty/phases.csv && -z $(ls "$TMP/empty") ]] || fail "a failed export left files behind"
expect_exit 2 "$KVBENCH" report "$R/ok" --out "$TMP/csv"
one_line "$ERR"
echo "report: ok"
