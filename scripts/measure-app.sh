#!/usr/bin/env bash
# Measure the release desktop app: the time from launch to a usable inbox (the inbox's
# rows painted: the UI reports it once, the app logs `inbox usable`), proportional memory
# (PSS) of the app and its WebKit children when idle on the demo inbox, the binary and
# .deb sizes. No WebDriver is involved. Needs a release build
# (`npx tauri build --bundles deb` from the checkout root, or scripts/run.sh), Xvfb, and a
# D-Bus session with an unlocked keyring (as in scripts/test.sh). Figures go to stdout;
# docs/benchmarks.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
app="$target/release/countersign-desktop"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
display=":$((190 + RANDOM % 50))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
export DISPLAY="$display" NO_AT_BRIDGE=1
export COUNTERSIGN_DATA_DIR="$work/data" XDG_CONFIG_HOME="$work/config" XDG_CACHE_HOME="$work/cache"
sleep 0.5

pss_tree() { # PSS in kB of a process and all its descendants
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    if [ "$p" != "$1" ]; then
      total=$((total + $(pss_tree "$p")))
    else
      total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
    fi
  done
  echo "$total"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
for run in first warm; do
  log="$work/app-$run.log"
  start=$(now_ms)
  COUNTERSIGN_LOG=info "$app" >"$log" 2>&1 &
  app_pid=$!
  pids+=("$app_pid")
  usable=""
  for _ in $(seq 1 3000); do
    if grep -q 'inbox usable' "$log"; then usable=$(( $(now_ms) - start )); break; fi
    sleep 0.005
  done
  clean() { sed 's/\x1b\[[0-9;]*m//g' "$log"; }
  echo "$run launch: usable inbox after ${usable:-?} ms (wall clock, until the log line appeared);" \
    "the app's own count: $(clean | grep -o 'inbox usable.*' | grep -o 'ms=[0-9]*' || echo '?')"
  clean | grep -o 'workspace opened.*' | sed 's/^/  /' || true
  sleep 12
  echo "  idle PSS of app + WebKit children: $(( $(pss_tree "$app_pid") / 1024 )) MB"
  ps -o pid,ppid,rss,comm --ppid "$app_pid" -p "$app_pid" | sed 's/^/  /'
  kill "$app_pid"
  wait "$app_pid" 2>/dev/null || true
done
echo "release binary: $(du -b "$app" | cut -f1) bytes ($(du -h "$app" | cut -f1))"
deb=$(ls -t "$target"/release/bundle/deb/*.deb 2>/dev/null | head -1 || true)
[ -n "$deb" ] && echo ".deb: $(du -b "$deb" | cut -f1) bytes ($(du -h "$deb" | cut -f1)) $deb"
