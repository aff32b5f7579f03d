#!/usr/bin/env bash
# Install what building and testing Countersign needs on Debian/Ubuntu.
# Idempotent: installs only what is missing. Needs root (or sudo) for apt.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v git >/dev/null 2>&1 || need+=(git)
# The OS keyring: libdbus for the Secret Service client, and for tests a real
# gnome-keyring inside a private D-Bus session.
pkg-config --exists dbus-1 2>/dev/null || need+=(libdbus-1-dev)
command -v dbus-run-session >/dev/null 2>&1 || need+=(dbus)
command -v gnome-keyring-daemon >/dev/null 2>&1 || need+=(gnome-keyring)
# The browser connector's tests drive a real Chromium (headless) over the DevTools protocol.
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found. Install Rust 1.95 with rustup (https://rustup.rs) and re-run." >&2
  exit 1
fi
