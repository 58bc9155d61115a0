#!/usr/bin/env bash
# The disk tier and the cache directory against a hostile machine (issue 25, items 3, 4, 7):
# a block file replaced by a FIFO costs one block (the request that needs it recomputes, every
# other request is answered, one log line, counted); the directory's lock holds with its lock file
# deleted and after `rm -rf` of the directory; SIGHUP is a clean shutdown; tier sizes past the
# machine's memory or disk warn (--strict: exit 2); a ready file that cannot be written is exit 1.
source "$(dirname "$0")/lib.sh"

TIER=(--profile tiny --kv-mode cpu_disk --gpu-cache-blocks 64 --cpu-cache-blocks 64
  --disk-cache-blocks 4096 --disable-disk-offload-filter --speedup 0)

# block_files DIR — the regular kvbench block files in DIR, sorted
block_files() { find "$1" -maxdepth 1 -type f -name 'kvbench-*.kvblk' | sort; }

# wait_h2d N — until the engine has written N blocks to disk (its writer thread runs after the
# answers)
wait_h2d() {
  for _ in $(seq 200); do
    [[ $(metric kvbm_offload_blocks_h2d) -ge $1 ]] && return
    sleep 0.05
  done
  fail "only $(metric kvbm_offload_blocks_h2d) of $1 blocks reached the disk"
}

# ============================================================================================
# 3. A block file replaced by a FIFO
# ============================================================================================
CACHE="$TMP/kvbm-fifo"
start_engine "${TIER[@]}" --disk-cache-dir "$CACHE"
P=$(words p 1500) # 1500 tokens: 46 full blocks
r=$(complete "{\"prompt\":\"$P\",\"max_tokens\":2}")
[[ $(jq .usage.prompt_tokens <<<"$r") -eq 1500 ]] || fail "prompt: $r"
wait_h2d 46
block_files "$CACHE" >"$TMP/p.list"
[[ $(wc -l <"$TMP/p.list") -eq 46 ]] || fail "P wrote $(wc -l <"$TMP/p.list") block files, want 46"
# three other prompts (138 blocks) push P out of G1 (64) and G2 (64): P lives on disk only
for q in q r s; do complete "{\"prompt\":\"$(words $q 1500)\",\"max_tokens\":2}" >/dev/null; done
wait_h2d 184
# one of P's blocks becomes a FIFO (nobody will ever open its other end)
VICTIM=$(sed -n 20p "$TMP/p.list")
rm -f "$VICTIM"
mkfifo "$VICTIM"
# P again (its prefix needs the FIFO's block) and, at the same time, requests that do not
t0=$(date +%s%N)
curl -s -m 20 "$BASE/v1/completions" -d "{\"prompt\":\"$P\",\"max_tokens\":2}" >"$TMP/p.json" &
ppid=$!
others=()
for u in u v w; do
  curl -s -m 20 -o "$TMP/$u.json" -w '%{http_code}' "$BASE/v1/completions" \
    -d "{\"prompt\":\"$(words $u 200)\",\"max_tokens\":4}" >"$TMP/$u.code" &
  others+=($!)
done
for pid in "${others[@]}"; do wait "$pid" || fail "an unrelated request got no answer (curl $?)"; done
ms_others=$(( ($(date +%s%N) - t0) / 1000000 ))
wait "$ppid" || fail "the request that needs the FIFO's block got no answer (curl $?)"
ms_p=$(( ($(date +%s%N) - t0) / 1000000 ))
for u in u v w; do [[ $(cat "$TMP/$u.code") == 200 ]] || fail "unrelated request: $(cat "$TMP/$u.json")"; done
echo "unrelated requests answered in $ms_others ms, the FIFO's in $ms_p ms"
cached=$(jq .usage.prompt_tokens_details.cached_tokens "$TMP/p.json")
[[ $(jq .usage.completion_tokens "$TMP/p.json") -eq 2 ]] || fail "P: $(cat "$TMP/p.json")"
(( cached < 46 * 32 )) || fail "P reused all its blocks ($cached tokens) past a FIFO"
echo "P reused $cached of $((46 * 32)) tokens; the rest was recomputed"
# one log line, counted, the FIFO left where it is, the engine still serving
[[ $(grep -c "refused .*: it is a FIFO, not a regular file" "$ENGINE_LOG") -eq 1 ]] ||
  fail "want one log line for the FIFO: $(grep -i fifo "$ENGINE_LOG")"
[[ $(metric kvbench_disk_read_errors) -eq 1 ]] || fail "read errors: $(metric kvbench_disk_read_errors)"
[[ $(metric kvbench_checksum_failures) -eq 0 ]] || fail "checksum failures"
[[ -p $VICTIM ]] || fail "the FIFO was removed"
[[ $(curl -s -m 5 -o /dev/null -w '%{http_code}' "$BASE/health") == 200 ]] || fail "health after the FIFO"
# P once more: the blocks before the FIFO's come from disk again, the engine does not stall
curl -sf -m 20 "$BASE/v1/completions" -d "{\"prompt\":\"$P\",\"max_tokens\":2}" >/dev/null ||
  fail "P again"
stop_engine
# clean shutdown removed our block files and the lock, and left the FIFO (not ours) alone
[[ -z $(block_files "$CACHE") ]] || fail "block files left: $(block_files "$CACHE" | wc -l)"
[[ -p $VICTIM ]] || fail "shutdown removed the FIFO"
[[ ! -e $CACHE/.kvbench.lock ]] || fail "lock left"
rm -f "$VICTIM"

# ============================================================================================
# 4. The lock holds the directory: lock file deleted, directory removed; SIGHUP
# ============================================================================================
CACHE="$TMP/kvbm-lock"
start_engine "${TIER[@]}" --disk-cache-dir "$CACHE"
FIRST=$ENGINE_PID
for q in a b; do complete "{\"prompt\":\"$(words $q 1000)\",\"max_tokens\":2}" >/dev/null; done
wait_h2d 62
block_files "$CACHE" >"$TMP/before.list"
[[ $(wc -l <"$TMP/before.list") -eq 62 ]] || fail "want 62 block files"
[[ $(cat "$CACHE/.kvbench.lock") == "$FIRST" ]] || fail "the lock file does not name the holder"

second_refused() { # $1: what happened to the directory
  # (timeout: an engine that wrongly starts serves until killed)
  expect_exit 1 timeout 20 "$KVBENCH" serve --port 0 --metrics-port 0 "${TIER[@]}" \
    --disk-cache-dir "$CACHE" --log-level ERROR
  one_line "$ERR"
  grep -q "disk cache directory $CACHE is in use by another kvbench serve (pid $FIRST)" <<<"$ERR" ||
    fail "second engine ($1): $ERR"
}

rm "$CACHE/.kvbench.lock"
second_refused "lock file deleted"
block_files "$CACHE" >"$TMP/after.list"
gone=$(comm -23 "$TMP/before.list" "$TMP/after.list" | wc -l)
[[ $gone -eq 0 ]] || fail "the refused engine removed $gone of the first one's block files"
[[ ! -e $CACHE/.kvbench.lock ]] || fail "the refused engine made a lock file"
kill -0 "$FIRST" || fail "the first engine died"
[[ $(metric kvbench_disk_read_errors) -eq 0 ]] || fail "read errors in the first engine"

# rm -rf: the first engine makes the directory again and locks it (within a second), says so
rm -rf "$CACHE"
for _ in $(seq 100); do [[ -s $CACHE/.kvbench.lock ]] && break; sleep 0.05; done
[[ $(cat "$CACHE/.kvbench.lock" 2>/dev/null) == "$FIRST" ]] || fail "the removed directory was not made again and locked"
grep -q "was missing and was made again; it is locked again" "$ENGINE_LOG" || fail "not logged"
second_refused "directory removed"
# and it goes on using it
complete "{\"prompt\":\"$(words c 1000)\",\"max_tokens\":2}" >/dev/null
wait_h2d 93
[[ $(block_files "$CACHE" | wc -l) -eq 31 ]] || fail "new blocks not in the made-again directory"
[[ $(metric kvbench_disk_write_errors) -eq 0 ]] || fail "write errors after the directory came back"

# SIGHUP: a clean shutdown, no block file and no lock left
kill -HUP "$FIRST"
for _ in $(seq 200); do kill -0 "$FIRST" 2>/dev/null || break; sleep 0.1; done
kill -0 "$FIRST" 2>/dev/null && fail "SIGHUP did not stop the engine"
rc=0
wait "$FIRST" || rc=$?
[[ $rc -eq 0 ]] || fail "exit $rc after SIGHUP"
grep -q "received SIGHUP: draining" "$ENGINE_LOG" || fail "SIGHUP not logged"
[[ -z $(block_files "$CACHE") ]] || fail "SIGHUP left block files"
[[ ! -e $CACHE/.kvbench.lock ]] || fail "SIGHUP left the lock"
# free again: the next engine starts
start_engine "${TIER[@]}" --disk-cache-dir "$CACHE"
stop_engine

# ============================================================================================
# 7. Tier sizes past the machine, and the ready file
# ============================================================================================
# (the default profile's 2 MiB blocks keep the bookkeeping of a 100 TB tier small)
start_engine --kv-mode cpu_only --cpu-cache-gb 100000 --speedup 0
grep -q "WARNING the host tier (G2: .*) is larger than the memory available to this engine" "$ENGINE_LOG" ||
  fail "no memory warning: $(cat "$ENGINE_LOG")"
[[ $(grep -c "is larger than the" "$ENGINE_LOG") -eq 1 ]] || fail "want one warning line"
stop_engine
expect_exit 2 "$KVBENCH" serve --port 0 --metrics-port 0 --kv-mode cpu_only --cpu-cache-gb 100000 --strict
one_line "$ERR"
grep -q -- "--strict: the host tier (G2: .*) is larger than the memory available" <<<"$ERR" || fail "strict memory: $ERR"

start_engine --kv-mode cpu_disk --cpu-cache-gb 1 --disk-cache-gb 1000000 --speedup 0 \
  --disk-cache-dir "$TMP/kvbm-big"
grep -q "WARNING the disk tier (G3: .*) is larger than the free space under $TMP/kvbm-big" "$ENGINE_LOG" ||
  fail "no disk warning: $(cat "$ENGINE_LOG")"
stop_engine
expect_exit 2 "$KVBENCH" serve --port 0 --metrics-port 0 --kv-mode cpu_disk --cpu-cache-gb 1 \
  --disk-cache-gb 1000000 --disk-cache-dir "$TMP/kvbm-strict" --strict
one_line "$ERR"
grep -q -- "--strict: the disk tier (G3: .*) is larger than the free space" <<<"$ERR" || fail "strict disk: $ERR"
[[ ! -e $TMP/kvbm-strict ]] || fail "a refused engine made its cache directory"
# sizes that fit: no warning, --strict starts
start_engine "${TIER[@]}" --disk-cache-dir "$TMP/kvbm-fits" --strict
grep -q "is larger than the" "$ENGINE_LOG" && fail "a warning for tiers that fit: $(cat "$ENGINE_LOG")"
stop_engine

# a ready file that cannot be written: exit 1, one line, nothing left running or made
ready_refused() { # $1: the path
  expect_exit 1 timeout 20 "$KVBENCH" serve --port 0 --metrics-port 0 "${TIER[@]}" \
    --disk-cache-dir "$TMP/kvbm-rf" --ready-file "$1"
  one_line "$ERR"
  grep -q -- "cannot write --ready-file $1" <<<"$ERR" || fail "ready file $1: $ERR"
  [[ ! -e $TMP/kvbm-rf ]] || fail "an engine that could not write its ready file made its cache directory"
}
ready_refused /nonexistent/dir/f
mkdir "$TMP/ro"
chmod 555 "$TMP/ro"
if touch "$TMP/ro/x" 2>/dev/null; then
  # root writes anyway: a directory the kernel refuses to root as well
  rm -f "$TMP/ro/x"
  if [[ -d /sys ]] && ! touch /sys/kvbench-ready 2>/dev/null; then
    ready_refused /sys/kvbench-ready
  else
    echo "note: no read-only directory to try here"
  fi
else
  ready_refused "$TMP/ro/ready.json"
fi
chmod 755 "$TMP/ro"
echo "disk_tier: ok"
