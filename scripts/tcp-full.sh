#!/usr/bin/env bash
# The full-size TCP runs that CI sizes down: 1 GiB each way through seeded loss of 1% and 5% in both
# directions, SHA-256 checked at both ends, in the release profile. Expect minutes (5% loss is
# retransmission-timeout bound; see the README).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export XDPSTACK_BULK_MB=${XDPSTACK_BULK_MB:-1024} XDPSTACK_LOSSY_MB=${XDPSTACK_LOSSY_MB:-1024}
cargo test --release -p xdpstack --test tcp_interop -- --test-threads=1 --nocapture \
  one_gib_each_way transfer_survives
