#!/usr/bin/env bash
# End-to-end tests: the built desktop app in a real window on a virtual display (Xvfb),
# driven over WebDriver (tauri-driver → WebKitWebDriver). Screenshots of every screen go
# to target/e2e-screenshots/ in the checkout (whatever CARGO_TARGET_DIR is). Each test runs
# in a D-Bus session with an unlocked gnome-keyring of its own, with its own tauri-driver
# (scripts/lib/e2e-one.sh): the app puts the demo store's token in the OS keyring.
# Expects the app to be built (cargo build -p countersign-desktop); APP_BIN picks another
# build (e.g. the release binary, to measure launch time). Arguments filter the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
app="${APP_BIN:-$target/debug/countersign-desktop}"
[ -x "$app" ] || { echo "e2e: $app is missing; build it with cargo build -p countersign-desktop" >&2; exit 1; }
if ! command -v tauri-driver >/dev/null 2>&1; then
  cargo install tauri-driver --version '^2' --locked
fi

# shellcheck source=scripts/lib/display.sh
. scripts/lib/display.sh
start_xvfb 90 100 "$work/xvfb.log"
# The team journey's nats-server (tests/team.rs), found before the cache moves below.
if [ -z "${COUNTERSIGN_NATS_SERVER:-}" ]; then
  nats="$(ls "${XDG_CACHE_HOME:-$HOME/.cache}"/countersign/nats-server-*/bin/nats-server 2>/dev/null | tail -n 1 || true)"
  if [ -n "$nats" ]; then export COUNTERSIGN_NATS_SERVER="$nats"; fi
fi
# The signal encoder's base (scripts/fetch-encoder.sh), found before the cache moves below.
export COUNTERSIGN_ENCODER_DIR="${COUNTERSIGN_ENCODER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/countersign/all-MiniLM-L6-v2}"
# A fresh app: its own data, config (window state) and logs.
export COUNTERSIGN_DATA_DIR="$work/data"
export XDG_CONFIG_HOME="$work/config"
export XDG_CACHE_HOME="$work/cache"
export NO_AT_BRIDGE=1
export APP_BIN="$(realpath "$app")"
export E2E_SCREENSHOTS="$PWD/target/e2e-screenshots"
export E2E_WORK="$work"
cargo build --locked -p countersign-e2e --tests --quiet

# Each test in a D-Bus session and gnome-keyring of its own, with a tauri-driver started in
# it (the app inherits the driver's session): one daemon for the whole suite died once
# (a GLib trap) after enough tests had stored the demo store's token in it, and the daemon
# D-Bus started in its place found the keyring locked and failed the tests after it.
status=0
ran=0
for file in tests/e2e/tests/*.rs; do
  suite="$(basename "$file" .rs)"
  listed="$(cargo test --locked -p countersign-e2e --test "$suite" -- --list --format terse "$@")"
  for name in $(echo "$listed" | sed -n 's/: test$//p'); do
    echo "== e2e $suite::$name"
    ran=$((ran + 1))
    if ! scripts/lib/keyring-session.sh bash scripts/lib/e2e-one.sh "$suite" "$name"; then
      status=1
    fi
  done
done
if [ "$ran" -eq 0 ] && [ $# -eq 0 ]; then
  echo "e2e: no test was listed" >&2
  exit 1
fi
echo "== e2e: $ran tests run"
exit $status
