#!/usr/bin/env bash
# Set up and run every check CI runs: formatting, lints, all tests (unit,
# integration, property tests, the schema and UI-bindings drift checks), the UI's
# type check and unit tests (Vitest), the desktop app's .deb (built, unpacked, its
# signatures and a signed release checked), and that installed app end to end in a real window.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== UI: npm ci, type check, unit tests (Vitest), build"
(
  cd ui
  npm ci --no-audit --no-fund --loglevel=error
  npm run --silent check
  npm test --silent
  npm run --silent build
)

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
cargo clippy --locked --all-targets -p countersign-e2e -- -D warnings

echo "== cargo test (each test binary in a D-Bus session of its own with a fresh, unlocked gnome-keyring)"
# cargo's target runner for this machine's own target: scripts/lib/keyring-session.sh.
host="$(rustc -vV | sed -n 's/^host: //p')"
runner_var="CARGO_TARGET_$(echo "$host" | tr 'a-z.-' 'A-Z__')_RUNNER"
export "$runner_var=$PWD/scripts/lib/keyring-session.sh"
cargo test --locked
unset "$runner_var"

echo "== desktop app: the .deb, built and checked as it ships (scripts/check-deb.sh)"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
# The CLI that cargo test built signs and checks the release directory, in a keyring
# session of its own as well; the installed app end to end gets one per test (e2e.sh).
COUNTERSIGN_BIN="${CARGO_TARGET_DIR:-target}/debug/countersign" \
  scripts/lib/keyring-session.sh bash scripts/check-deb.sh "$root"
echo "== desktop app: end to end under Xvfb over WebDriver, on the binary installed from the .deb"
APP_BIN="$root/usr/bin/countersign-desktop" bash scripts/e2e.sh
