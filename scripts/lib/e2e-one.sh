#!/usr/bin/env bash
# One end-to-end test (scripts/e2e.sh runs each in a keyring session of its own): a
# tauri-driver in this session on a free port, then the test. Usage: e2e-one.sh SUITE NAME
set -euo pipefail
suite="$1"
name="$2"
log="$E2E_WORK/driver-$suite-$name.log"
port=$((4400 + RANDOM % 500))
# Set before the driver starts: the app inherits its environment. A test named
# `without_the_signal_encoder…` starts the app with an empty folder for the signal
# encoder's base and an address on a port of its own to fetch it from, where the test
# serves the real base's files (E2E_ENCODER_BASE).
case "$name" in
  without_the_signal_encoder*)
    export E2E_ENCODER_BASE="${COUNTERSIGN_ENCODER_DIR:-}"
    export E2E_ENCODER_PORT=$((port + 2))
    export COUNTERSIGN_ENCODER_URL="http://127.0.0.1:$E2E_ENCODER_PORT/encoder.zip"
    export COUNTERSIGN_ENCODER_DIR="$E2E_WORK/encoder-$suite-$name"
    mkdir -p "$COUNTERSIGN_ENCODER_DIR"
    ;;
esac
tauri-driver --port "$port" --native-port "$((port + 1))" >"$log" 2>&1 &
driver=$!
# The driver and the WebKitWebDriver it starts.
trap 'pkill -P "$driver" 2>/dev/null || true; kill "$driver" 2>/dev/null || true; wait "$driver" 2>/dev/null || true' EXIT
up=0
for _ in $(seq 1 100); do
  if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
  sleep 0.1
done
if [ $up -eq 0 ]; then
  echo "e2e: tauri-driver did not listen on $port within 10 s:" >&2
  cat "$log" >&2
  exit 1
fi
status=0
WEBDRIVER_URL="http://127.0.0.1:$port" \
  cargo test --locked -p countersign-e2e --test "$suite" -- --exact "$name" --test-threads=1 --nocapture || status=$?
if [ $status -ne 0 ]; then
  echo "== e2e $suite::$name failed; tauri-driver log:"
  tail -n 50 "$log" || true
fi
exit $status
