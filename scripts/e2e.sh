#!/usr/bin/env bash
# End-to-end tests: the built desktop app in a real window on a virtual display (Xvfb),
# driven over WebDriver (tauri-driver → WebKitWebDriver). Screenshots of every screen go
# to target/e2e-screenshots/ in the checkout (whatever CARGO_TARGET_DIR is). Run inside a
# D-Bus session with an unlocked gnome-keyring (scripts/test.sh does): the app puts the
# demo store's token in the OS keyring.
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
# A fresh app: its own data, config (window state) and logs.
export COUNTERSIGN_DATA_DIR="$work/data"
export XDG_CONFIG_HOME="$work/config"
export XDG_CACHE_HOME="$work/cache"
export NO_AT_BRIDGE=1
port=$((4400 + RANDOM % 500))
tauri-driver --port "$port" --native-port "$((port + 1))" >"$work/driver.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

export APP_BIN="$(realpath "$app")"
export WEBDRIVER_URL="http://127.0.0.1:$port"
export E2E_SCREENSHOTS="$PWD/target/e2e-screenshots"
status=0
cargo test --locked -p countersign-e2e -- --test-threads=1 --nocapture "$@" || status=$?
if [ $status -ne 0 ]; then
  echo "== e2e failed; tauri-driver log:"; tail -n 50 "$work/driver.log" || true
fi
exit $status
