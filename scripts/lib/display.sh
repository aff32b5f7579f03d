# Sourced (not run) by the scripts that start the desktop app on a virtual display
# (e2e.sh, measure-app.sh): a scratch directory `$work`, the background processes in
# `pids` stopped and `$work` removed at exit, and `start_xvfb`.

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# start_xvfb FIRST SPAN LOG: Xvfb (1280x800) on a random display from :FIRST to
# :FIRST+SPAN-1 (each script its own range, so they can run side by side), its output to
# LOG; exports DISPLAY.
start_xvfb() {
  local display=":$(($1 + RANDOM % $2))"
  Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >"$3" 2>&1 &
  pids+=($!)
  export DISPLAY="$display"
}
