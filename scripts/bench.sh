#!/usr/bin/env bash
# The standard benchmark suite on a fresh veth testbed: xdpstack-bench with every pairing (kernel and
# xdpstack clients and servers, the floors), blocking and busy-poll, UDP/TCP ping-pong, UDP echo, TCP
# bulk and connection rate, then the unmodified sockperf client against the kernel's sockperf server
# and against xdpstack's sockperf service. Prints the table (every figure with its ratio to the
# kernel); writes results.json, table.txt, .hgrm histograms and SVG/PNG plots to bench-results/.
#
#   scripts/bench.sh              full run (the numbers; about 10 minutes on 2 cores)
#   scripts/bench.sh --quick      a few seconds per scenario (what CI runs: nothing rots)
#   scripts/bench.sh --help       every option of xdpstack-bench
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "bench.sh: run as root (the benchmarks create network namespaces, attach XDP and open AF_XDP sockets)" >&2
  exit 1
fi
scripts/setup.sh
export CARGO_TERM_COLOR=never
cargo build --release -j2 -p xdpstack-bench
exec target/release/xdpstack-bench "$@"
