#!/usr/bin/env bash
# Set up, build and launch the Countersign desktop app on the demo workspace (or the one
# in $COUNTERSIGN_WORKSPACE). With no display ($DISPLAY / $WAYLAND_DISPLAY unset), or with
# arguments, it runs the command line instead: `bash scripts/run.sh log verify`.
set -euo pipefail
cd "$(dirname "$0")/.."
# `run.sh team`: a team on this machine (a NATS server, the team service, an agent's and a
# lead's desktop enrolled in it): scripts/team-demo.sh.
if [ $# -eq 1 ] && [ "$1" = team ]; then
  exec bash scripts/team-demo.sh
fi
scripts/setup.sh
target="${CARGO_TARGET_DIR:-target}"
if [ $# -eq 0 ] && { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; }; then
  (cd ui && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build)
  cargo build --release --locked -p countersign-desktop
  # The demo seller center's simulated buyers write every minute, so the demo inbox is
  # alive (the demo workspace's `buyers` script); COUNTERSIGN_DEMO_BUYERS= turns them off.
  export COUNTERSIGN_DEMO_BUYERS="${COUNTERSIGN_DEMO_BUYERS-60}"
  exec "$target/release/countersign-desktop"
fi
cargo build --release --locked -p countersign
if [ $# -eq 0 ]; then
  echo "run: no display; running the command-line demo instead of the app" >&2
  set -- demo
fi
exec "$target/release/countersign" "$@"
