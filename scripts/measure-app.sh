#!/usr/bin/env bash
# Measure the release desktop app: the time from launch to a usable inbox (the inbox's
# rows painted: the UI reports it once, the app logs `inbox usable`), proportional memory
# (PSS) of the app and its WebKit children when idle on the demo inbox, the binary and
# .deb sizes. No WebDriver is involved. Needs a release build
# (`npx tauri build --bundles deb` from the checkout root, or scripts/run.sh), Xvfb, and a
# D-Bus session with an unlocked keyring (as in scripts/test.sh). Figures go to stdout;
# docs/benchmarks.md records them. RUNS (default 5) first launches on fresh directories, each
# followed by a warm one; IDLE_S (default 12) seconds idle before PSS is read.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
app="$target/release/countersign-desktop"
# shellcheck source=scripts/lib/display.sh
. scripts/lib/display.sh
start_xvfb 190 50 /dev/null
export NO_AT_BRIDGE=1
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
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "?"}'; }
max() { sort -n | tail -1; }

# One launch: prints "wall_ms app_ms pss_kb" and kills the app. $1 names the run.
launch() {
  local log="$work/app-$1.log" start app_pid usable="" own pss
  start=$(now_ms)
  COUNTERSIGN_LOG=info "$app" >"$log" 2>&1 &
  app_pid=$!
  pids+=("$app_pid")
  for _ in $(seq 1 3000); do
    if grep -q 'inbox usable' "$log"; then usable=$(( $(now_ms) - start )); break; fi
    sleep 0.005
  done
  own=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -o 'inbox usable ms=[0-9]*' | grep -o '[0-9]*$' || echo '?')
  sleep "$idle"
  if ! kill -0 "$app_pid" 2>/dev/null; then
    echo "measure-app: the app (run $1) exited before its memory was read; its log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  pss=$(pss_tree "$app_pid")
  kill "$app_pid"
  wait "$app_pid" 2>/dev/null || true
  echo "${usable:-?} $own $pss"
}

# RUNS first launches, each on a fresh data, config and cache directory (the demo store is
# seeded, WebKit starts with empty caches), each followed by a warm launch on the same
# directories. Medians are what docs/benchmarks.md reports; every sample is printed.
# The signal encoder's base stays where scripts/fetch-encoder.sh put it.
export COUNTERSIGN_ENCODER_DIR="${COUNTERSIGN_ENCODER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/countersign/all-MiniLM-L6-v2}"
runs="${RUNS:-5}"
idle="${IDLE_S:-12}"
: >"$work/first"; : >"$work/warm"
for i in $(seq 1 "$runs"); do
  export COUNTERSIGN_DATA_DIR="$work/$i/data" XDG_CONFIG_HOME="$work/$i/config" XDG_CACHE_HOME="$work/$i/cache"
  for kind in first warm; do
    read -r wall own pss < <(launch "$i-$kind")
    echo "$wall $own $pss" >>"$work/$kind"
    echo "run $i $kind: usable inbox after $wall ms wall (the app's own count $own ms); idle PSS $(( pss / 1024 )) MB"
  done
done
for kind in first warm; do
  echo "$kind launch, median of $runs: $(cut -d' ' -f1 "$work/$kind" | median) ms wall" \
    "(max $(cut -d' ' -f1 "$work/$kind" | max)), app's own count $(cut -d' ' -f2 "$work/$kind" | median) ms;" \
    "idle PSS $(( $(cut -d' ' -f3 "$work/$kind" | median) / 1024 )) MB (max $(( $(cut -d' ' -f3 "$work/$kind" | max) / 1024 )) MB)"
done
echo "release binary: $(du -b "$app" | cut -f1) bytes ($(du -h "$app" | cut -f1))"
deb=$(ls -t "$target"/release/bundle/deb/*.deb 2>/dev/null | head -1 || true)
[ -n "$deb" ] && echo ".deb: $(du -b "$deb" | cut -f1) bytes ($(du -h "$deb" | cut -f1)) $deb"
