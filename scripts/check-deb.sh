#!/usr/bin/env bash
# Build the desktop app's .deb as a release is built, and check what ships:
# - the UI and a release build, bundled by the Tauri CLI (`tauri build --bundles deb`), with
#   the updater artifacts signed by an updater key pair made for this run (never kept);
# - the .deb unpacked (dpkg -x) into ROOT: its binary answers --version with the product
#   name and the package's version (no display needed), carries this run's updater public
#   key, and finds the demo workspace in ROOT/usr/lib/Countersign;
# - the .deb.sig updater signature verifies with minisign (and names the version it was
#   signed for, which the app requires); a copy with one byte changed does not;
# - a release directory (scripts/release.sh) signed by an admin key made for this run
#   verifies with `countersign admin verify-release`; a copy with one byte of the .deb
#   changed is refused, naming the file.
#
# Usage: scripts/check-deb.sh ROOT
#        COUNTERSIGN_BIN=path/to/countersign scripts/check-deb.sh ROOT   (else the CLI is built)
#   ROOT  a directory to unpack the .deb into; ROOT/usr/bin/countersign-desktop is then the
#         installed app (scripts/test.sh runs the end-to-end tests on it).
set -euo pipefail
cd "$(dirname "$0")/.."
root="${1:?usage: scripts/check-deb.sh ROOT}"
target="${CARGO_TARGET_DIR:-target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() {
  echo "check-deb: $*" >&2
  exit 1
}
flip_byte() { # change one byte in the middle of a file
  python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 1; open(p, "wb").write(b)' "$1"
}

tauri="$PWD/ui/node_modules/.bin/tauri"
[ -x "$tauri" ] || (cd ui && npm ci --no-audit --no-fund --loglevel=error)

echo "== .deb: an updater key pair for this run only"
pass="$(head -c 24 /dev/urandom | base64)"
"$tauri" signer generate --ci -p "$pass" -w "$work/updater.key" >/dev/null
pubkey="$(tr -d '\n' <"$work/updater.key.pub")"

echo "== .deb: release build and bundle (tauri build --bundles deb, updater artifacts signed)"
rm -rf "$target/release/bundle/deb"
started=$SECONDS
TAURI_SIGNING_PRIVATE_KEY="$work/updater.key" TAURI_SIGNING_PRIVATE_KEY_PASSWORD="$pass" \
  "$tauri" build --ci --bundles deb \
  --config "{\"bundle\":{\"createUpdaterArtifacts\":true},\"plugins\":{\"updater\":{\"pubkey\":\"$pubkey\"}}}"
debs=("$target"/release/bundle/deb/*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "expected one .deb in $target/release/bundle/deb: ${debs[*]}"
deb="${debs[0]}"
name="$(basename "$deb")"
echo "   built in $((SECONDS - started)) s: $name $(du -b "$deb" | cut -f1) bytes," \
  "binary $(du -b "$target/release/countersign-desktop" | cut -f1) bytes"

echo "== .deb: unpacked; the installed binary's --version"
mkdir -p "$root"
dpkg -x "$deb" "$root"
app="$root/usr/bin/countersign-desktop"
[ -x "$app" ] || fail "usr/bin/countersign-desktop is not in $name"
want="Countersign $(dpkg-deb -f "$deb" Version)"
got="$(env -u DISPLAY -u WAYLAND_DISPLAY "$app" --version)"
[ "$got" = "$want" ] || fail "--version printed '$got', expected '$want'"
env -u DISPLAY -u WAYLAND_DISPLAY "$app" --help | grep -q "^Usage: countersign-desktop" || fail "--help shows no usage"
[ -f "$root/usr/lib/Countersign/demo/demo/workspace.toml" ] || fail "the demo workspace is not in usr/lib/Countersign"
grep -qF "$pubkey" "$app" || fail "the installed binary does not carry this run's updater public key"
echo "   $got"

echo "== .deb: its updater signature (.deb.sig), checked with minisign"
[ -f "$deb.sig" ] || fail "no updater signature $deb.sig"
base64 -d "$deb.sig" >"$work/deb.minisig"
raw_pub="$(base64 -d <<<"$pubkey" | tail -n 1)"
checked="$(minisign -V -m "$deb" -x "$work/deb.minisig" -P "$raw_pub")" || fail "the .deb's updater signature does not verify"
# The app requires the version in the signed (trusted) comment (requireSignedVersion).
grep -q "version:$(dpkg-deb -f "$deb" Version)" <<<"$checked" || fail "the signature does not name the version: $checked"
cp "$deb" "$work/changed.deb"
flip_byte "$work/changed.deb"
if minisign -Vq -m "$work/changed.deb" -x "$work/deb.minisig" -P "$raw_pub" 2>/dev/null; then
  fail "a changed .deb passed the updater signature check"
fi
echo "   verifies; a copy with one byte changed does not"

echo "== release directory: SHA256SUMS signed by an admin key for this run"
cli="${COUNTERSIGN_BIN:-}"
if [ -z "$cli" ]; then
  cargo build --locked -q -p countersign
  cli="$target/debug/countersign"
fi
"$cli" admin keygen --out "$work/admin.key" --pub "$work/admin.pub" --label "CI run only" >/dev/null 2>&1
scripts/release.sh --out "$work/release" --key "$work/admin.key" --trust "$work/admin.pub" --bin "$cli" \
  "$deb" "$deb.sig" "$cli" >/dev/null
"$cli" admin verify-release "$work/release" --trust "$work/admin.pub" >/dev/null || fail "the release does not verify"
cp -r "$work/release" "$work/tampered"
flip_byte "$work/tampered/$name"
set +e
out="$("$cli" admin verify-release "$work/tampered" --trust "$work/admin.pub")"
status=$?
set -e
[ $status -eq 1 ] || fail "a release with a changed .deb exited $status, expected 1: $out"
grep -q "mismatch: $name" <<<"$out" || fail "the changed .deb is not named: $out"
echo "   verifies; a copy with one byte of the .deb changed is refused (mismatch: $name)"
