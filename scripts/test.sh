#!/usr/bin/env bash
# Run every check and test: formatting, lints, unit tests and the integration tests on real veth
# testbeds (root: they create network namespaces, attach XDP and open AF_XDP sockets).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -j2 -- -D warnings
cargo clippy -p xdpstack --all-targets --features tokio -j2 -- -D warnings
cargo test --workspace -j2 -- --test-threads=2
# The tokio integration is behind a feature that `--workspace` does not enable.
cargo test -p xdpstack --features tokio -j2 --test tokio_async -- --test-threads=2
# The benchmark suite in --quick mode on its own testbed, so the benchmarks never rot. Its figures are
# indicative only (seconds per scenario, a shared machine); scripts/bench.sh gives the numbers.
cargo run -p xdpstack-bench -j2 -- --quick --out target/bench-quick
echo "test.sh: all checks passed"
