#!/usr/bin/env bash
# Run one program in a private D-Bus session with a fresh, unlocked gnome-keyring of its
# own (its keyrings in a scratch XDG_DATA_HOME, removed after). scripts/test.sh makes it
# cargo's target runner, so every test binary gets its own keyring daemon: one daemon
# for the whole suite crashed (a GLib trap) once enough tests had stored their desks'
# keys in it, and the daemon D-Bus then started in its place found the keyring locked and
# failed every later test asking for a prompt it cannot show.
# It waits until the daemon serves the Secret Service before it starts the program.
# Usage: keyring-session.sh PROGRAM [ARGS…]
set -euo pipefail
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export XDG_DATA_HOME="$scratch"
export NO_AT_BRIDGE=1
dbus-run-session -- bash -c '
  set -euo pipefail
  eval "$(printf countersign-ci | gnome-keyring-daemon --unlock --components=secrets)"
  export GNOME_KEYRING_CONTROL
  # The daemon takes its bus name a moment after it has answered: a request before that
  # would have D-Bus start a second daemon, which finds the keyring locked.
  for _ in $(seq 1 100); do
    dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
      org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
      grep -q "boolean true" && exec "$@"
    sleep 0.05
  done
  echo "keyring-session: gnome-keyring-daemon did not take org.freedesktop.secrets within 5 s" >&2
  exit 1
' keyring-session "$@" 2> >(grep --line-buffered -v "Failed to set fd limit" >&2)
