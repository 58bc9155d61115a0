#!/usr/bin/env bash
# The GPU collector's source selection. Without a GPU (CI): unavailable, with the reason naming
# both NVML and nvidia-smi. With a fake nvidia-smi on PATH: the nvidia-smi path, parsed. With a
# real GPU: NVML, or nvidia-smi when asked (KVBENCH_GPU_SOURCE=nvidia-smi).
source "$(dirname "$0")/lib.sh"
: "${KVBENCH_GPU_PROBE:?}"

if ldconfig -p 2>/dev/null | grep -q libnvidia-ml.so.1 || command -v nvidia-smi >/dev/null; then
  out=$("$KVBENCH_GPU_PROBE")
  grep -q '^source: nvml' <<<"$out" || fail "GPU machine without NVML: $out"
  grep -q '^gpu 0: ' <<<"$out" || fail "no GPU sample: $out"
  echo "gpu_probe: ok (real GPU)"
  exit 0
fi

out=$("$KVBENCH_GPU_PROBE")
grep -q '^source: unavailable' <<<"$out" || fail "unexpected: $out"
grep -q 'libnvidia-ml.so.1' <<<"$out" || fail "reason lacks NVML: $out"
grep -q 'nvidia-smi is not on PATH' <<<"$out" || fail "reason lacks nvidia-smi: $out"

# a stand-in nvidia-smi that answers the query in the documented CSV format
mkdir -p "$TMP/bin"
cat >"$TMP/bin/nvidia-smi" <<SH
#!/bin/sh
case "\$*" in
  *--query-gpu=index,name,utilization.gpu,utilization.memory,memory.used,memory.total,power.draw,clocks.sm,temperature.gpu*--format=csv,noheader,nounits*)
    cat "$KVBENCH_FIXTURES/proc/nvidia_smi.csv" ;;
  *) echo "unexpected arguments: \$*" >&2; exit 9 ;;
esac
SH
chmod +x "$TMP/bin/nvidia-smi"
out=$(PATH="$TMP/bin:$PATH" "$KVBENCH_GPU_PROBE")
grep -q '^source: nvidia-smi' <<<"$out" || fail "fallback not used: $out"
grep -q '^gpu 0: NVIDIA H100 80GB HBM3 | util 87% | mem util 35% | mem 61234 / 81559 MiB | power 512.3 W | sm 1980 MHz | temp 63 C' <<<"$out" || fail "gpu 0: $out"
grep -q '^gpu 1: NVIDIA GB10 | util 12% | mem util nan% | mem nan / nan MiB' <<<"$out" || fail "gpu 1 [N/A]: $out"
# a failing nvidia-smi is reported, not fatal
printf '#!/bin/sh\necho "NVIDIA-SMI has failed" >&2\nexit 6\n' >"$TMP/bin/nvidia-smi"
out=$(PATH="$TMP/bin:$PATH" "$KVBENCH_GPU_PROBE")
grep -q 'sample: failed (nvidia-smi failed: NVIDIA-SMI has failed' <<<"$out" || fail "failure: $out"
out=$(KVBENCH_GPU_SOURCE=none "$KVBENCH_GPU_PROBE")
grep -q 'disabled by KVBENCH_GPU_SOURCE=none' <<<"$out" || fail "none: $out"
echo "gpu_probe: ok (no GPU; nvidia-smi fallback checked with a stand-in)"
