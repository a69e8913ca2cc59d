#!/usr/bin/env bash
# Install the system packages xdpstack builds and tests with. Idempotent: installs only what is missing.
set -euo pipefail

packages=(
  clang llvm libelf-dev zlib1g-dev pkg-config   # building the XDP program and libbpf
  iproute2 ethtool iputils-ping                 # the veth testbed
  socat netcat-openbsd curl python3             # kernel-side clients and servers in tests
  tshark tcpdump                                # captures
  sockperf util-linux                           # sockperf client/server (tests, benchmarks), taskset
  fonts-dejavu-core                             # the font the benchmark plots are drawn with
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs packages with apt-get; the tests need root for namespaces and XDP)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "setup.sh: cargo not found; install Rust with rustup" >&2; exit 1; }
