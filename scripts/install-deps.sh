#!/usr/bin/env bash
# Install the Debian packages that building, testing and the demo of kvbench need.
# Runs apt-get as root, or through sudo otherwise; does nothing when everything is present;
# fails with one clear message when it cannot install.
set -euo pipefail

PACKAGES=(
  gcc make cmake pkg-config
  libcurl4-openssl-dev libmicrohttpd-dev libjansson-dev libssl-dev libxxhash-dev libcmocka-dev
  libpcre2-dev libutf8proc-dev libhttp-parser-dev
  curl jq ca-certificates
  # for the tests only: sysstat's iostat is the reference the disk telemetry is checked against;
  # shellcheck checks the runbook scripts
  sysstat shellcheck
  # for the tests only: tests/e2e/k8s_manifests.sh reads docs/k8s/'s Kubernetes manifests with
  # PyYAML (tests/support/k8s_check.py), since CI has no kubectl or cluster
  python3-yaml
  # for the tests only: other nodes' metrics (--scrape, --prometheus-url) are checked against the
  # real exporter and server a cluster runs, started by tests/e2e/nodes.sh on loopback ports
  prometheus prometheus-node-exporter
)

# The OpenAI Node SDK test (tests/e2e/openai_sdk.sh) needs Node.js and npm; a machine that
# already has them (from Debian or elsewhere) keeps its own.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
# The report.html test (tests/e2e/report_html.sh) opens the reports in a real headless browser.
command -v chromium-headless-shell >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1 ||
  PACKAGES+=(chromium-headless-shell)

# --bench: also nginx-light and wrk, which `make bench`'s streaming client benchmark uses (it
# skips with a message without them).
if [[ "${1:-}" == "--bench" ]]; then
  shift
  PACKAGES+=(nginx-light wrk)
fi

# --aarch64: the cross toolchain, the arm64 multiarch -dev packages and qemu-user-static
# (make check-aarch64).
AARCH64=0
if [[ "${1:-}" == "--aarch64" ]]; then
  AARCH64=1
  shift
  PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static file cmake pkg-config
    curl jq libcurl4-openssl-dev:arm64 libmicrohttpd-dev:arm64 libjansson-dev:arm64
    libssl-dev:arm64 libxxhash-dev:arm64 libcmocka-dev:arm64 libpcre2-dev:arm64
    libutf8proc-dev:arm64 libhttp-parser2.9:arm64 libhttp-parser-dev libc6:arm64)
  # libhttp-parser-dev is not Multi-Arch: its :arm64 build would replace the native one that
  # make check needs. Its header is the same on every architecture, so the cross build takes the
  # header from the native package and links the arm64 runtime library (cmake/aarch64-linux-gnu.cmake).
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# --aarch64: a program under qemu-user that starts an aarch64 program (the demo restarting
# kvbench as its engine) needs the kernel to know how to run one: register qemu with
# binfmt_misc, as systemd-binfmt does at boot on a machine that runs systemd.
register_binfmt() {
  [[ $AARCH64 -eq 1 ]] || return 0
  [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] && return 0
  local conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  if [[ ! -r $conf ]] ||
     ! { mountpoint -q /proc/sys/fs/binfmt_misc ||
         as_root mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; } ||
     ! as_root sh -c "cat $conf > /proc/sys/fs/binfmt_misc/register"; then
    echo "install-deps: could not register qemu-aarch64 with binfmt_misc; tests that start a" \
      "second aarch64 process will skip" >&2
  fi
  return 0
}

if [[ ${#missing[@]} -eq 0 ]]; then
  register_binfmt
  exit 0
fi

if [[ "${1:-}" == "--check" ]]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  exit 1
fi

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if [[ $AARCH64 -eq 1 ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  "${SUDO[@]}" dpkg --add-architecture arm64
  "${SUDO[@]}" apt-get update >/tmp/kvbench-apt.log 2>&1 || true
fi
if ! "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/kvbench-apt.log 2>&1; then
  # The package lists may be stale or absent on a fresh machine: refresh once and retry.
  if ! { "${SUDO[@]}" apt-get update >>/tmp/kvbench-apt.log 2>&1 &&
         "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/kvbench-apt.log 2>&1; }; then
    echo "install-deps: apt-get could not install ${missing[*]} (see /tmp/kvbench-apt.log)" >&2
    exit 1
  fi
fi
register_binfmt
