#!/usr/bin/env bash
# Set up and run Countersign on the demo workspace (or the one in
# $COUNTERSIGN_WORKSPACE): the demo cases go through the policy and every
# decision is recorded in the evidence log. Extra arguments go to `countersign`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p countersign
if [ $# -eq 0 ]; then
  set -- demo
fi
exec "${CARGO_TARGET_DIR:-target}/release/countersign" "$@"
