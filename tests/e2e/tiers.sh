#!/usr/bin/env bash
# `kvbench tiers` end to end: the real binary on real block files, with no CUDA runtime (the G1
# rows unavailable, with the shim's reason) and with the stand-in CUDA runtime and cuFile (every
# row measured); the break-even from a rate and from a breakeven run's summary.json; bad flags
# (exit 2, one line); a cache directory that is a regular file (its rows errors; exit 1 when
# nothing else could be measured); unified memory; the probe beside an engine that holds the
# directory; its scratch directory gone afterwards every time.
source "$(dirname "$0")/lib.sh"
: "${FAKE_CUDART:?}" "${FAKE_CUFILE:?}"
export KVBENCH_NVFS_DEV_DIR=$TMP # no nvidia-fs: cuFile's compat mode
NOCUDA=(env KVBENCH_CUDART=/nonexistent)
FAKES=(env KVBENCH_CUDART="$FAKE_CUDART" KVBENCH_CUFILE="$FAKE_CUFILE")
SMALL=(--blocks 64 --block-bytes 65536)

# no_scratch DIR — no kvbench-tiers-* directory is left under DIR
no_scratch() {
  local left
  left=$(find "$1" -maxdepth 1 -name 'kvbench-tiers-*' 2>/dev/null) || true
  [[ -z $left ]] || fail "scratch directory left behind: $left"
}

# --- no CUDA: the disk rows measured, the G1 rows unavailable with the reason
expect_exit 0 "${NOCUDA[@]}" "$KVBENCH" tiers --json --disk-cache-dir "$TMP/c" "${SMALL[@]}"
J=$OUT
jq -e '.rows | length == 8' <<<"$J" >/dev/null || fail "rows: $J"
jq -e '[.rows[] | select(.path == "g2_g3")] | length == 2 and all(.status == "ok" and .gb_per_s > 0
      and .batch_p99_us >= .batch_p50_us and .blocks == 64 and .bytes == 64 * 65536
      and (.variant == "o_direct" or .variant == "buffered"))' <<<"$J" >/dev/null ||
  fail "disk rows: $J"
jq -e '[.rows[] | select(.path != "g2_g3")] | length == 6 and all(.status == "unavailable"
      and .gb_per_s == null and .kv_tokens_per_s == null and .batch_p50_us == null
      and (.reason | startswith("no CUDA runtime: KVBENCH_CUDART=/nonexistent")))' <<<"$J" \
  >/dev/null || fail "G1 rows: $J"
jq -e '.cuda == null and (.cuda_reason | startswith("no CUDA runtime")) and .unified_memory == null
      and .break_even == null and .block_bytes == 65536 and .block_tokens == 1
      and .batch_blocks == 16 and .inflight == 4 and .scratch_removed' <<<"$J" >/dev/null ||
  fail "header: $J"
# the disk row's figures agree with each other: bytes / pass time
jq -e '.rows[4] | ((.bytes / .pass_s / 1e9) / .gb_per_s - 1 | fabs) < 1e-9
      and ((.gb_per_s * 1e9 / 65536) / .kv_tokens_per_s - 1 | fabs) < 1e-9' <<<"$J" >/dev/null ||
  fail "figures: $J"
no_scratch "$TMP/c"

# --- the stand-ins: every row measured
expect_exit 0 "${FAKES[@]}" "$KVBENCH" tiers --json --disk-cache-dir "$TMP/c" "${SMALL[@]}"
J=$OUT
jq -e '[.rows[] | .status] == ["ok","ok","ok","ok","ok","ok","ok","ok"]' <<<"$J" >/dev/null ||
  fail "fake rows: $J"
jq -e '[.rows[] | .variant] | .[0:4] == ["pinned","pinned","pageable","pageable"]
      and .[6:8] == ["compat","compat"]' <<<"$J" >/dev/null || fail "variants: $J"
jq -e --arg lib "$FAKE_CUDART" '.cuda.lib == $lib and .cuda.runtime_version == 13000
      and .cufile.mode == "compat" and .unified_memory == false
      and (.unified_memory_reason | startswith("discrete"))' <<<"$J" >/dev/null ||
  fail "cuda: $J"
no_scratch "$TMP/c"

# --no-gpu skips them even where CUDA is there
expect_exit 0 "${FAKES[@]}" "$KVBENCH" tiers --json --no-gpu --disk-cache-dir "$TMP/c" "${SMALL[@]}"
jq -e '[.rows[] | select(.path != "g2_g3") | .status == "unavailable" and .reason == "--no-gpu"]
      | all' <<<"$OUT" >/dev/null || fail "--no-gpu: $OUT"

# unified memory (DGX Spark, GH200): the G1<->G2 rows say it is no PCIe copy
expect_exit 0 "${FAKES[@]}" FAKECUDA_INTEGRATED=1 "$KVBENCH" tiers --json --disk-cache-dir "$TMP/c" \
  "${SMALL[@]}"
jq -e '.unified_memory == true and (.unified_memory_reason | contains("integrated"))
      and ([.rows[0:4][] | .status == "ok"
        and (.reason | startswith("unified memory: not a PCIe copy ("))] | all)' <<<"$OUT" \
  >/dev/null || fail "unified: $OUT"

# --- the profile sizes the block (tiny: 1 KiB per token, 32 tokens)
expect_exit 0 "${NOCUDA[@]}" "$KVBENCH" tiers --json --profile tiny --blocks 64 --disk-cache-dir "$TMP/c"
jq -e '.profile == "tiny" and .block_bytes == 32768 and .block_tokens == 32
      and .kv_bytes_per_token == 1024 and .rows[4].bytes == 64 * 32768' <<<"$OUT" >/dev/null ||
  fail "tiny: $OUT"
# both given: they set the KV bytes per token
expect_exit 0 "${NOCUDA[@]}" "$KVBENCH" tiers --json --block-tokens 16 --disk-cache-dir "$TMP/c" \
  "${SMALL[@]}"
jq -e '.block_tokens == 16 and .kv_bytes_per_token == 4096' <<<"$OUT" >/dev/null ||
  fail "tokens and bytes: $OUT"

# --- break-even: a rate below every tier's (onboarding wins from some length) ...
expect_exit 0 "${FAKES[@]}" "$KVBENCH" tiers --json --prefill-tokens-per-s 100 \
  --disk-cache-dir "$TMP/c" "${SMALL[@]}"
jq -e '.prefill_tokens_per_s == 100 and .prefill_source == "--prefill-tokens-per-s"
      and ([.break_even[] | .tier] == ["host","disk_via_host","disk_direct"])
      and ([.break_even[] | .status == "ok" and (.break_even_tokens | type) == "number"
        and .break_even_tokens > 0 and (.formula | startswith("L* = fixed / (1/X - 1/R)"))
        and ([.speedup[] | .tokens] == [1024, 4096, 16384, 32768])] | all)' <<<"$OUT" >/dev/null ||
  fail "break-even: $OUT"
# L* = fixed / (1/X - 1/R), from the row's own figures
jq -e '.break_even[0] as $b | .rows[1] as $r | ($b.fixed_us == $r.batch_p50_us)
      and (($b.break_even_tokens / (($r.batch_p50_us / 1e6) / (1 / 100 - 1 / $r.kv_tokens_per_s))
           - 1) | fabs) < 1e-9' <<<"$OUT" >/dev/null || fail "L*: $OUT"
# ... and one above every tier's: never
expect_exit 0 "${NOCUDA[@]}" "$KVBENCH" tiers --json --prefill-tokens-per-s 1e12 \
  --disk-cache-dir "$TMP/c" "${SMALL[@]}"
jq -e '.break_even[1].break_even_tokens == "never" and (.break_even[1].speedup[0].speedup < 1)
      and .break_even[0].status == "unavailable" and .break_even[0].break_even_tokens == null' \
  <<<"$OUT" >/dev/null || fail "never: $OUT"
# the table says the same
expect_exit 0 "${FAKES[@]}" "$KVBENCH" tiers --prefill-tokens-per-s 100 --disk-cache-dir "$TMP/c" \
  "${SMALL[@]}"
for want in '^g1_g2  write     pinned ' '^g2_g3  read ' '^g1_g3  read      compat ' \
  '^unified memory: no ' '^cuFile: compat ' '^break-even against recomputing at X = 100 ' \
  '^disk_via_host  g2_g3 read'; do
  grep -q "$want" <<<"$OUT" || fail "table lacks '$want': $OUT"
done

# --- --from-breakeven: X = 1e6 / prefill_us_per_token of a breakeven run
mkdir -p "$TMP/run"
echo '{"breakeven": {"prefill_us_per_token": 125.0}}' >"$TMP/run/summary.json"
expect_exit 0 "${NOCUDA[@]}" "$KVBENCH" tiers --json --from-breakeven "$TMP/run" \
  --disk-cache-dir "$TMP/c" "${SMALL[@]}"
jq -e --arg p "$TMP/run/summary.json" '.prefill_tokens_per_s == 8000
      and (.prefill_source | startswith($p)) and (.break_even | length == 3)' <<<"$OUT" \
  >/dev/null || fail "--from-breakeven: $OUT"
echo '{"breakeven": {"prefill_us_per_token": null}}' >"$TMP/run/summary.json"
expect_exit 2 "$KVBENCH" tiers --from-breakeven "$TMP/run" --disk-cache-dir "$TMP/c"
one_line "$ERR"
grep -q 'no breakeven.prefill_us_per_token' <<<"$ERR" || fail "no fit: $ERR"
expect_exit 2 "$KVBENCH" tiers --from-breakeven "$TMP/nothing" --disk-cache-dir "$TMP/c"
one_line "$ERR"

# --- bad flags: exit 2, one line, nothing measured
for bad in "--blocks 0" "--profile nope" "--bogus" "--batch-blocks x" "--block-bytes 10" \
  "--batch-blocks 4096 --inflight 64" \
  "--prefill-tokens-per-s 0" "--prefill-tokens-per-s 5 --from-breakeven $TMP/run"; do
  # shellcheck disable=SC2086
  expect_exit 2 "$KVBENCH" tiers $bad --disk-cache-dir "$TMP/c"
  one_line "$ERR"
  [[ -z $OUT ]] || fail "'$bad' printed: $OUT"
done
[[ ! -e $TMP/c ]] || no_scratch "$TMP/c"

# --- a cache directory that is a regular file: the disk rows are errors with the reason
echo keep >"$TMP/file"
expect_exit 1 "${NOCUDA[@]}" "$KVBENCH" tiers --json --disk-cache-dir "$TMP/file" "${SMALL[@]}"
jq -e --arg f "$TMP/file" '[.rows[] | select(.path == "g2_g3")] | all(.status == "error"
      and (.reason | contains($f)) and .gb_per_s == null)' <<<"$OUT" >/dev/null ||
  fail "file as directory: $OUT"
grep -q 'no path could be measured' <<<"$ERR" || fail "exit 1 without a word: $ERR"
expect_exit 0 "${FAKES[@]}" "$KVBENCH" tiers --json --disk-cache-dir "$TMP/file" "${SMALL[@]}"
jq -e '[.rows[] | .status] == ["ok","ok","ok","ok","error","error","error","error"]' <<<"$OUT" \
  >/dev/null || fail "file as directory, with CUDA: $OUT"
[[ $(cat "$TMP/file") == keep ]] || fail "the file was touched"

# --- a directory in memory: the rows say they measured memory, not a disk
if [[ -d /dev/shm && $(findmnt -n -o FSTYPE -T /dev/shm) == tmpfs ]]; then
  SHM=$(mktemp -d /dev/shm/kvbench-tiers-e2e-XXXXXX)
  expect_exit 0 "${NOCUDA[@]}" "$KVBENCH" tiers --json --disk-cache-dir "$SHM" "${SMALL[@]}"
  rmdir "$SHM"
  jq -e '.rows[4].reason | test("is tmpfs \\(memory\\): these are memory speeds")' <<<"$OUT" \
    >/dev/null || fail "tmpfs not named: $(jq -c '.rows[4]' <<<"$OUT")"
fi

expect_exit 2 "$KVBENCH" tiers --no-gpu --cuda-device 0 --disk-cache-dir "$TMP/never"
[[ $ERR == "kvbench tiers: --cuda-device and --no-gpu contradict each other" ]] || fail "$ERR"

# --- beside an engine that holds the directory: the probe's subdirectory is its own
start_engine --kv-mode cpu_disk --profile tiny --disk-cache-dir "$TMP/e"
expect_exit 0 "${NOCUDA[@]}" "$KVBENCH" tiers --json --disk-cache-dir "$TMP/e" "${SMALL[@]}"
jq -e '.rows[4].status == "ok" and .rows[5].status == "ok"' <<<"$OUT" >/dev/null ||
  fail "beside an engine: $OUT"
[[ -e $TMP/e/.kvbench.lock ]] || fail "the engine's lock file went"
no_scratch "$TMP/e"
curl -sf "$BASE/health" >/dev/null || fail "the engine stopped answering"
stop_engine

echo "tiers: ok"
