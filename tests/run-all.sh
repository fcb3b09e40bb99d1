#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, and runs every test layer
# (unit tests beside the code, replay tests over captures, end-to-end CLI and live tests).
# Live tests need root (network namespaces); they skip on a laptop unless
# FLOWSENTRY_REQUIRE_ROOT_TESTS=1 is set, in which case they must run (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh test
export CARGO_TERM_COLOR=never
cargo build --release --locked --bins
cargo test --release --locked -- --test-threads=2
if [ -f tests/reference/sentinel_rules.py ]; then
  python3 tests/reference/sentinel_rules.py --self-test
fi
