#!/usr/bin/env bash
# The README's main command: build flowsentry and replay the bundled demo capture
# (a real nmap scan and a real periodic HTTP client recorded in network namespaces by
# captures/make-captures.sh), printing the alerts on stdout (readable lines at a terminal,
# JSON Lines when piped or with --json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh build
cargo build --release --locked --quiet --bin flowsentry
# The demo network: the beaconing client 192.0.2.30 is "ours"; scanner and server are outside.
exec target/release/flowsentry replay --home-net 192.0.2.0/24 "$@" captures/demo.pcap
