#!/usr/bin/env bash
# Drop-in for the reference harness (SPEC §5.3): every key path that the reference writes in each
# artifact of each scenario (tests/fixtures/reference/schema, from its own runs, same flags) is
# in kvbench's artifacts, with a compatible JSON type (null stands for a figure that cannot exist
# here; a path the reference only wrote as null may hold anything). Zero missing, zero retyped.
source "$(dirname "$0")/lib.sh"
SCHEMA="$SRC/tests/fixtures/reference/schema"
PATHS="$SRC/tests/e2e/jsonpaths.jq"
RES="$TMP/results"
start_engine --profile tiny --kv-mode cpu_disk --gpu-cache-blocks 1024 --cpu-cache-blocks 2048 \
  --disk-cache-blocks 8192 --disable-disk-offload-filter --disk-cache-dir "$TMP/cache" --speedup 0
common=(--base-url "$BASE" --kvbm-metrics-url "$METRICS" --results-root "$RES" --kv-mode cpu_disk
  --kvbm-cache-dir "$TMP/cache" --tokenizer heuristic --log-level WARNING)
# the flags of the reference's runs (schema/README.md)
expect_exit 0 "$KVBENCH" run "${common[@]}" --scenario reuse_verify --reuse-prompt-set short \
  --reuse-repeat-count 3 --max-tokens 64 --temperature 0 --top-p 1 --request-seed 1337 \
  --run-id reuse_verify
expect_exit 0 "$KVBENCH" run "${common[@]}" --scenario eviction_replay --warmup 2 \
  --eviction-a-requests 6 --eviction-b-requests 12 --eviction-a-concurrency 2 \
  --eviction-b-concurrency 4 --long-range 6000:7600 --max-tokens 256 --temperature 0.7 \
  --collect-telemetry --telemetry-interval-s 0.5 --run-id eviction_replay
expect_exit 0 "$KVBENCH" run "${common[@]}" --prompt-set short --requests 16 --warmup 4 \
  --concurrency 4 --max-tokens 256 --temperature 0.7 --collect-telemetry \
  --telemetry-interval-s 0.5 --run-id short_c4
stop_engine

bad=0
for scenario in reuse_verify eviction_replay short_c4; do
  for artifact in summary config requests prompts_manifest kvbm_metrics_snapshots; do
    f="$RES/$scenario/$artifact.json"
    [[ -f $f ]] || f="$RES/$scenario/$artifact.jsonl"
    jq -r -s -f "$PATHS" "$f" >"$TMP/mine.paths" || fail "cannot list $f"
    # PATH<TAB>types of the reference, then of kvbench: report missing and retyped paths
    out=$(awk -F'\t' '
      NR == FNR { ref[$1] = $2; next }
      { mine[$1] = $2 }
      END {
        for (p in ref) {
          if (!(p in mine)) { print "missing " p; continue }
          if (ref[p] == "null") continue
          n = split(mine[p], m, "|")
          for (i = 1; i <= n; i++)
            if (m[i] != "null" && index("|" ref[p] "|", "|" m[i] "|") == 0) {
              print "retyped " p " (reference " ref[p] ", kvbench " mine[p] ")"; break
            }
        }
      }' "$SCHEMA/$scenario.$artifact.paths" "$TMP/mine.paths" | sort)
    if [[ -n $out ]]; then
      echo "== $scenario $artifact: $(wc -l <<<"$out") paths" >&2
      echo "$out" >&2
      bad=1
    fi
  done
done
[[ $bad -eq 0 ]] || fail "kvbench's artifacts miss or retype the reference's key paths (above)"

# The runbook's jq lines (sections 9 and 9a) and the deeper ones users wrote against the reference
# print the same kind of values on kvbench's files as on the reference's own runs.
REF="$SRC/tests/fixtures/reference/runs"
kinds() { jq -c "[$1] | map(type)" "$2"; }
check_jq() { # FILTER ARTIFACT SCENARIO
  local mine ref
  mine=$(kinds "$1" "$RES/$3/$2") || fail "jq '$1' failed on kvbench's $3/$2"
  ref=$(kinds "$1" "$REF/$3/$2") || fail "jq '$1' failed on the reference's $3/$2"
  [[ $mine == "$ref" ]] || fail "jq '$1' on $3/$2: kvbench gives $mine, the reference $ref"
  grep -q null <<<"$mine" && fail "jq '$1' on $3/$2 printed null"
  return 0
}
check_jq '.run_valid, .overall_summary.eviction_replay_signal_kvbm, .overall_summary.eviction_replay_signal_io' summary.json eviction_replay
check_jq '.overall_summary.reuse_verify_signal_kvbm, .request_identity.reuse_verify_identity' summary.json reuse_verify
check_jq '.overall_summary.eviction_replay_signal_kvbm.replay_onboard_blocks, .kvbm_metrics.eviction_replay_signal.signal' summary.json eviction_replay
check_jq '.overall_summary.reuse_verify_signal_kvbm.reuse_2_matched_tokens, .request_identity.phase_identity.reuse_2.request_count' summary.json reuse_verify
check_jq '.phases | length' config.json eviction_replay
check_jq '.args.concurrency, .preflight.failed, .client_request_parameters.max_tokens' config.json short_c4
[[ $(jq '.phases | length' "$RES/eviction_replay/config.json") -eq 4 ]] || fail "phases"
[[ $(jq -s 'map(.request_index) | min' "$RES/short_c4/requests.jsonl") -eq 1 ]] || fail "request_index starts at 1"
jq -e -s 'all(.[]; (.request_payload_sha256 | length) == 64)' "$RES/short_c4/requests.jsonl" >/dev/null || fail "payload hash"
jq -e -s 'all(.[]; .target_tokens > 0)' "$RES/short_c4/prompts_manifest.jsonl" >/dev/null || fail "manifest target_tokens"
# the same verdicts as the reference's runs of the same scenarios
[[ $(jq -r .overall_summary.reuse_verify_signal_kvbm.signal "$RES/reuse_verify/summary.json") == prefix_reuse_detected ]] || fail "reuse verdict"
[[ $(jq -r .overall_summary.eviction_replay_signal_kvbm.signal "$RES/eviction_replay/summary.json") == disk_rehydrate_detected ]] || fail "eviction verdict"
echo "schema: ok"
