#!/usr/bin/env bash
# Set up and run every check CI runs: formatting, lints, all tests (unit,
# integration, property tests, the schema drift check).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

echo "== cargo test (inside a private D-Bus session with an unlocked gnome-keyring)"
export XDG_DATA_HOME="$(mktemp -d)"
export NO_AT_BRIDGE=1
dbus-run-session -- bash -c '
  set -euo pipefail
  eval "$(printf countersign-ci | gnome-keyring-daemon --unlock --components=secrets)"
  export GNOME_KEYRING_CONTROL
  cargo test --locked
' 2> >(grep -v "Failed to set fd limit" >&2)
